/* cmd_browse.c - `backpack browse`: the sense browser on a terminal, or scripted.
 *
 *   backpack browse --db FILE [--model DIR]
 *   backpack browse --db FILE [--model DIR] --keys KEYS|@FILE --screen-out FILE|-
 *                   [--size COLSxROWS] [--each-key] [--timing FILE]
 *
 * The scripted mode draws on the in-memory canvas instead of the terminal, feeds the
 * keys (syntax in keys.h; @FILE reads them from a file) and writes the screen as text
 * after the last key, or after every key with --each-key (each screen preceded by a
 * line "--- key N: NAME ---"). --timing writes one line per key:
 *     N NAME REDRAW_MS TOTAL_MS [index-load]
 * REDRAW_MS: from the key to the first complete redraw (what a person waits for);
 * TOTAL_MS: until model runs it started (prompt, edit preview) are done too - on a
 * terminal those fill the screen in one token at a time while keys keep working;
 * "index-load" marks the key that waited for the nearest-neighbour index (once per
 * run). bench/bench_tui.sh reads it.
 *
 * The terminal is restored on every way out: normal exit, errors, and fatal signals.
 */
#include <ncursesw/curses.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../cli/commands.h"
#include "../common/fileio.h"
#include "app.h"

static const char usage_text[] =
    "usage: backpack browse --db FILE [--model DIR]\n"
    "       backpack browse --db FILE [--model DIR] --keys KEYS|@FILE --screen-out FILE|-\n"
    "                       [--size COLSxROWS] [--each-key] [--timing FILE]\n"
    "The sense browser: search words (/), read their senses, explain and edit predictions\n"
    "(with --model; the model the database was exported from). ? inside shows every key.\n"
    "Scripted keys: text types itself; <Enter> <Esc> <Up> <Down> <Left> <Right> <PgUp>\n"
    "<PgDn> <Home> <End> <BS> <Del> <Tab> <S-Tab> <Space> <lt> <C-x> <Resize:COLSxROWS>.\n";

typedef struct {
    const char *db, *model, *keys, *screen_out, *timing;
    int rows, cols, each_key;
} BrowseOptions;

static int parse_options(int argc, char **argv, BrowseOptions *o, BpError *err) {
    memset(o, 0, sizeof *o);
    o->rows = 30;
    o->cols = 100;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = !strcmp(a, "--db")           ? &o->db
                            : !strcmp(a, "--model")      ? &o->model
                            : !strcmp(a, "--keys")       ? &o->keys
                            : !strcmp(a, "--screen-out") ? &o->screen_out
                            : !strcmp(a, "--timing")     ? &o->timing
                                                         : NULL;
        if (slot) {
            if (i + 1 >= argc) return bp_fail(err, "browse: %s needs a value", a);
            *slot = argv[++i];
        } else if (!strcmp(a, "--size")) {
            char tail;
            if (i + 1 >= argc || sscanf(argv[i + 1], "%dx%d%c", &o->cols, &o->rows, &tail) != 2 ||
                o->cols < 1 || o->rows < 1 || o->cols > 1000 || o->rows > 1000)
                return bp_fail(err, "browse: --size wants COLSxROWS, e.g. 100x30");
            i++;
        } else if (!strcmp(a, "--each-key")) {
            o->each_key = 1;
        } else {
            return bp_fail(err, "browse: unknown option '%s' (backpack browse --help)", a);
        }
    }
    if (!o->db) return bp_fail(err, "browse: --db FILE is required (backpack browse --help)");
    if (!o->keys != !o->screen_out)
        return bp_fail(err, "browse: the scripted mode needs both --keys and --screen-out");
    if ((o->each_key || o->timing) && !o->keys)
        return bp_fail(err, "browse: --each-key and --timing belong to the scripted mode (--keys)");
    return 0;
}

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

static int run_scripted(App *app, const BrowseOptions *o, BpError *err) {
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

static int run_terminal(App *app, BpError *err) {
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

int cmd_browse(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
    BpError err = {0};
    BrowseOptions o;
    if (parse_options(argc, argv, &o, &err) != 0) return cli_error(err.msg);
    canvas_init_locale();
    App *app = calloc(1, sizeof *app);
    if (!app) return cli_error("out of memory");
    /* the database and model first: their errors matter more than the terminal's */
    if (app_open(app, o.db, o.model, &err) != 0) {
        free(app);
        return cli_error(err.msg);
    }
    if (!o.keys && (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))) {
        app_close(app);
        free(app);
        return cli_error("browse: stdin and stdout must be a terminal (or use the scripted mode: "
                         "--keys KEYS --screen-out FILE)");
    }
    int rc = o.keys ? run_scripted(app, &o, &err) : run_terminal(app, &err);
    app_close(app);
    free(app);
    if (rc != 0) return cli_error(err.msg);
    return 0;
}
