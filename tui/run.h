/* run.h - the sense browser's two ways of running, on an opened App (app.h).
 *
 * On a terminal: ncurses; the terminal is restored on every way out (normal exit,
 * errors, fatal signals); the nearest-neighbour index loads in the background.
 *
 * Scripted: draws on the in-memory canvas instead of the terminal, feeds the keys
 * (syntax in keys.h; "@FILE" reads them from a file) and writes the screen as text
 * after the last key, or after every key with each_key (each screen preceded by a line
 * "--- key N: NAME ---"). timing writes one line per key:
 *     N NAME REDRAW_MS TOTAL_MS [index-load]
 * REDRAW_MS: from the key to the first complete redraw (what a person waits for);
 * TOTAL_MS: until model runs it started (prompt, edit preview) are done too - on a
 * terminal those fill the screen in one token at a time while keys keep working;
 * "index-load" marks the key that waited for the nearest-neighbour index (once per
 * run). bench/bench_tui.sh reads it. Outputs named "-" go to stdout.
 */
#ifndef BP_TUI_RUN_H
#define BP_TUI_RUN_H

#include "../common/error.h"
#include "app.h"

typedef struct {
    const char *keys;        /* KEYS or @FILE */
    const char *screen_out;  /* FILE or "-" */
    const char *timing;      /* NULL or FILE or "-" */
    int rows, cols;          /* the canvas */
    int each_key;
} TuiScript;

int tui_run_scripted(App *app, const TuiScript *script, BpError *err);
int tui_run_terminal(App *app, BpError *err);

#endif
