/* run.c - the browser's two ways of running (run.h). */
#include "run.h"

#include <ncursesw/curses.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fileio.h"

/* ---- scripted mode ------------------------------------------------------------------- */

static int append(char **buf, size_t *len, const char *text) {
    size_t n = strlen(text);
    char *grown = realloc(*buf, *len + n + 1);
    if (!grown) return -1;
    memcpy(grown + *len, text, n + 1);
    *buf = grown;
    *len += n;
    return 0;
}

static int write_out(const char *path, const char *data, size_t len, BpError *err) {
    if (!strcmp(path, "-")) {
        if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0)
            return bp_fail_errno(err, "browse: writing the screen to stdout");
        return 0;
    }
    return write_file_atomic(path, data, len, err);
}

int tui_run_scripted(App *app, const TuiScript *o, BpError *err) {
    char *script = NULL;
    size_t script_len = 0;
    if (o->keys[0] == '@') {
        if (read_file(o->keys + 1, &script, &script_len, err) != 0) return -1;
    } else {
        script = strdup(o->keys);
        if (!script) return bp_fail(err, "out of memory");
    }
    KeyEvent *events = NULL;
    int n_events = 0;
    int rc = keys_parse(script, &events, &n_events, err);
    free(script);
    if (rc != 0) return -1;

    Canvas *c = canvas_memory_new(o->rows, o->cols);
    char *out = NULL, *timing = NULL;
    size_t out_len = 0, timing_len = 0;
    if (!c) {
        free(events);
        return bp_fail(err, "out of memory");
    }
    app->ui.canvas = c;
    app->ui.wait_for_index = 1;  /* the same screens on every run */
    app_draw(app, c);
    for (int i = 0; i < n_events && !app->quit; i++) {
        double t0 = now_seconds();
        app->ui.key_note = NULL;
        if (events[i].key == BK_RESIZE) canvas_memory_resize(c, events[i].rows, events[i].cols);
        app_key(app, events[i].key);
        if (app->quit) break;
        app_draw(app, c);
        /* what a person waits for is the first redraw; model runs then fill the screen
         * in token by token (a terminal takes keys meanwhile); here they complete */
        double redraw_ms = (now_seconds() - t0) * 1000.0;
        if (model_busy(app)) {
            model_drain(app);
            app_draw(app, c);
        }
        double ms = (now_seconds() - t0) * 1000.0;
        char name[32], line[96];
        bk_key_name(events[i].key, name, sizeof name);
        if (o->timing) {
            snprintf(line, sizeof line, "%d %s %.3f %.3f%s%s\n", i + 1, name, redraw_ms, ms,
                     app->ui.key_note ? " " : "", app->ui.key_note ? app->ui.key_note : "");
            append(&timing, &timing_len, line);
        }
        if (o->each_key) {
            snprintf(line, sizeof line, "--- key %d: %s ---\n", i + 1, name);
            char *screen = canvas_memory_text(c);
            if (append(&out, &out_len, line) != 0 || !screen || append(&out, &out_len, screen) != 0) {
                free(screen);
                rc = bp_fail(err, "out of memory");
                break;
            }
            free(screen);
        }
    }
    if (rc == 0 && !o->each_key) {
        out = canvas_memory_text(c);
        out_len = out ? strlen(out) : 0;
        if (!out) rc = bp_fail(err, "out of memory");
    }
    if (rc == 0) rc = write_out(o->screen_out, out ? out : "", out_len, err);
    if (rc == 0 && o->timing) rc = write_out(o->timing, timing ? timing : "", timing_len, err);
    free(out);
    free(timing);
    free(events);
    canvas_destroy(c);
    app->ui.canvas = NULL;
    return rc;
}

/* ---- the terminal ----------------------------------------------------------------------- */

static volatile sig_atomic_t curses_active;

static void restore_terminal(void) {
    if (curses_active) {
        curses_active = 0;
        endwin();
    }
}

/* A fatal signal must not leave the terminal in raw mode: restore it, then die of the
 * signal as we would have (htop does the same). */
static void fatal_signal(int sig) {
    restore_terminal();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int map_curses_key(int rc, wint_t ch) {
    if (rc == OK) return (int)ch;
    switch (ch) {
    case KEY_UP: return BK_UP;
    case KEY_DOWN: return BK_DOWN;
    case KEY_LEFT: return BK_LEFT;
    case KEY_RIGHT: return BK_RIGHT;
    case KEY_PPAGE: return BK_PGUP;
    case KEY_NPAGE: return BK_PGDN;
    case KEY_HOME: return BK_HOME;
    case KEY_END: return BK_END;
    case KEY_BACKSPACE: return BK_BACKSPACE;
    case KEY_DC: return BK_DELETE;
    case KEY_ENTER: return BK_ENTER;
    case KEY_BTAB: return BK_BTAB;
    case KEY_RESIZE: return BK_RESIZE;
    default: return BK_NONE;
    }
}

int tui_run_terminal(App *app, BpError *err) {
    SCREEN *screen = newterm(NULL, stdout, stdin);
    if (!screen) return bp_fail(err, "browse: cannot start the terminal (TERM=%s)",
                                getenv("TERM") ? getenv("TERM") : "unset");
    curses_active = 1;
    atexit(restore_terminal);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGSEGV, SIGBUS, SIGABRT, SIGFPE};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], fatal_signal);
    raw();     /* Ctrl-C arrives as a key and quits cleanly */
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    set_escdelay(25);
    curs_set(0);
    Canvas *c = canvas_curses_new();
    if (!c) {
        restore_terminal();
        delscreen(screen);
        return bp_fail(err, "out of memory");
    }
    app->ui.canvas = c;
    /* load the nearest-neighbour index while the user searches; quitting does not wait */
    app->ui.loader = index_loader_start(app->ui.db_path);
    app->exit_fast = 1;
    while (!app->quit) {
        app_draw(app, c);
        /* model work goes one token per turn while no key waits; the sense screen
         * waiting for the index wakes up to show its progress */
        int busy = model_busy(app);
        timeout(busy ? 0 : app_waits_for_index(app) ? 100 : -1);
        wint_t ch;
        int rc = get_wch(&ch);
        if (rc == ERR) {
            if (busy) model_work(app);
            continue;
        }
        int key = map_curses_key(rc, ch);
        if (key == BK_RESIZE) canvas_curses_resize(c);
        if (key != BK_NONE) app_key(app, key);
    }
    canvas_destroy(c);
    app->ui.canvas = NULL;
    restore_terminal();
    delscreen(screen);
    return 0;
}

