/* screen_edit.h - the edit screen (--model): a pending edit of one sense, before and
 * after side by side (its top words; on the prompt, the next-token distribution and a
 * greedy continuation), saved to the database or discarded. */
#ifndef BP_TUI_SCREEN_EDIT_H
#define BP_TUI_SCREEN_EDIT_H

#include "screen.h"

#define EDIT_TOP_WORDS 5

typedef struct {
    int token, sense;           /* what is being edited */
    LineEdit input;             /* the value of the pending edit kind */
    EditKind pending_kind;
    int have_preview;
    EditRequest request;
    EditPreview preview;        /* lent to the model runs while have_preview */
    WordScore top_before[EDIT_TOP_WORDS], top_after[EDIT_TOP_WORDS];
    int n_before, n_after;
    char error[BP_ERROR_MAX];
} EditScreen;

extern const ScreenClass edit_screen;

#endif
