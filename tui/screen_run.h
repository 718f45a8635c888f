/* screen_run.h - the run screen (R, with --model DIR of a training run): the run's loss
 * curves from DIR/metrics.jsonl (plot/metrics.h), drawn in braille dots by
 * plot_term_lines (plot/plot.h) at the size of the terminal: training and validation
 * loss against tokens seen, and below them the learning rate or the gradient norm. */
#ifndef BP_TUI_SCREEN_RUN_H
#define BP_TUI_SCREEN_RUN_H

#include "../plot/metrics.h"
#include "../plot/plot.h"
#include "screen.h"

typedef enum { RUN_PANEL_LR = 0, RUN_PANEL_GRAD_NORM, RUN_PANEL_COUNT } RunPanel;

typedef struct {
    char path[4096];            /* DIR/metrics.jsonl */
    RunMetrics metrics;         /* read on entering (R) and on r */
    int loaded;
    RunPanel panel;             /* what the lower chart shows (g switches) */
    /* the charts as drawn last, rendered again when the size or the data changes */
    PlotText loss_text, panel_text;
    int text_width, loss_height, panel_height;
    RunPanel text_panel;
} RunScreen;

extern const ScreenClass run_screen;

/* The lower chart's title for a panel ("learning rate"). */
const char *run_panel_title(RunPanel panel);

#endif
