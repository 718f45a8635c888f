/* screen_word.h - the word screen: a word's k senses, each with its norm and its top
 * and bottom words. */
#ifndef BP_TUI_SCREEN_WORD_H
#define BP_TUI_SCREEN_WORD_H

#include "screen.h"

#define WORD_WORDS 8            /* top and bottom words per sense */

typedef struct {
    int token;                  /* -1: nothing loaded */
    long generation;            /* ui->generation when computed */
    int k, n;                   /* senses, words per list */
    SenseInfo *info;            /* (k) */
    WordScore *top, *bottom;    /* (k, WORD_WORDS) */
    ListView list;              /* cursor = sense */
} WordScreen;

extern const ScreenClass word_screen;

#endif
