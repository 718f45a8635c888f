/* app.h - the sense browser: the list of screens and the data they share.
 *
 * The app opens the database (and with --model the model runs), makes every screen's
 * state through its ScreenClass (screen.h), fills in the Ui the screens receive, and
 * routes keys and drawing to the screen on show. It draws the frame around the
 * screens: the header, the status line and the "terminal too small" notice. It knows
 * a screen by its class only; the one exception is the global n/N, which steps
 * through the search screen's results from any screen.
 */
#ifndef BP_TUI_APP_H
#define BP_TUI_APP_H

#include "screen.h"

typedef struct {
    Ui ui;                  /* what the screens receive */
    const char *model_dir;
    ModelRuns runs;         /* with --model (ui.model points here) */
    void *state[SCREEN_COUNT];  /* each screen's, made by its class (ui.states) */
    int quit;
    int exit_fast;          /* 1: app_close does not wait for a loading index */
} App;

extern const ScreenClass *const app_screens[SCREEN_COUNT];
extern const KeyBinding app_global_keys[];

/* Opens what the browser needs: the database, and with model_dir the model (checked
 * against the database) and its tokenizer. Read-write when the file permits. */
int app_open(App *app, const char *db_path, const char *model_dir, BpError *err);
void app_close(App *app);

/* One key; then the caller draws. */
void app_key(App *app, int key);
/* Draws the whole screen (header, the current screen or the too-small notice, status). */
void app_draw(App *app, Canvas *c);

/* A screen's state: its struct is in screen_<name>.h. */
void *app_screen_state(App *app, ScreenId screen);
/* 1 while the screen on show waits for the nearest-neighbour index. */
int app_waits_for_index(App *app);

/* The model runs, when there is a model (each 0 / nothing without): 1 while a run is
 * wanted or under way; one step of it; all of it. */
int model_busy(App *app);
int model_work(App *app);
void model_drain(App *app);

#endif
