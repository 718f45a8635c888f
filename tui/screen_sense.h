/* screen_sense.h - the sense screen: one sense's top and bottom words, its nearest
 * words by this sense's cosine, and the same sense of those neighbours. */
#ifndef BP_TUI_SCREEN_SENSE_H
#define BP_TUI_SCREEN_SENSE_H

#include "screen.h"

#define SENSE_WORDS 50          /* words per list */
#define SENSE_NEIGHBOUR_WORDS 3 /* top words shown for each neighbour's sense */

typedef struct {
    int token, sense;           /* token -1: nothing loaded */
    long generation;
    SenseInfo info;
    int n_top, n_bottom, n_near;
    WordScore top[SENSE_WORDS], bottom[SENSE_WORDS], near[SENSE_WORDS];
    /* the same sense of each neighbour: its top words */
    WordScore near_top[SENSE_WORDS][SENSE_NEIGHBOUR_WORDS];
    int near_pending;           /* waiting for the nearest-neighbour index */
    int near_error;             /* nearest neighbours unavailable (message in near_msg) */
    char near_msg[BP_ERROR_MAX];
    int column;                 /* 0 top, 1 bottom, 2 nearest */
    ListView lists[3];
} SenseScreen;

extern const ScreenClass sense_screen;

/* 1 while the screen waits for the nearest-neighbour index (a terminal then wakes up
 * to show the progress). */
int sense_waits_for_index(const SenseScreen *sv);

#endif
