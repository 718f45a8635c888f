/* screen_prompt.h - the prompt screen (--model): a prompt's next-token predictions and,
 * for the selected one, the (context word, sense) pairs that caused it. The prompt and
 * the runs on it live in the model runs (model_runs.h), shared with the edit screen. */
#ifndef BP_TUI_SCREEN_PROMPT_H
#define BP_TUI_SCREEN_PROMPT_H

#include "screen.h"

typedef struct {
    LineEdit input;
    int column;                 /* 0 predictions, 1 contributions */
    ListView lists[2];
} PromptScreen;

extern const ScreenClass prompt_screen;

#endif
