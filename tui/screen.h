/* screen.h - what a screen of the sense browser is, and what it receives from the app.
 *
 * Like htop's panels, each screen is one file (screen_<name>.c) with its own state
 * struct, draw function and key table, behind the ScreenClass below. The app (app.h)
 * owns the list of screens and the shared services, the Ui: the sense store, the
 * model runs (model_runs.h), the status line, the line editor, the history and the
 * current word and sense. A screen receives the Ui as an argument, calls the ui_*
 * functions declared here (ui.c) and never includes app.h or another screen: to show
 * another screen it asks for it by id (ui_open), and that screen's `enter` loads it.
 * So the dependencies run one way: app.c -> screen_*.c -> ui.c, model_runs.c.
 *
 * Screens draw on a Canvas (canvas.h) and never touch the terminal, so the scripted
 * mode and the tests see exactly what a person sees. What a screen shows is computed
 * when its subject changes (a word, a sense, a prompt, an edit) and cached, so moving
 * the cursor only redraws.
 *
 * A key goes to the open line editor first, then to the current screen's table, then
 * to its `key` function, then to its list (j/k/PgDn...), then to the app's global
 * table. The help screen is built from these same tables, so it never disagrees with
 * what the keys do.
 */
#ifndef BP_TUI_SCREEN_H
#define BP_TUI_SCREEN_H

#include <stddef.h>

#include "../senses/store.h"
#include "canvas.h"
#include "index_loader.h"
#include "keys.h"
#include "model_runs.h"

#define UI_MIN_ROWS 24
#define UI_MIN_COLS 80
#define UI_TEXT_MAX 1024  /* bytes of a line editor's text (a prompt, a search) */
#define UI_HISTORY_MAX 64

typedef enum {
    SCREEN_SEARCH = 0,
    SCREEN_WORD,
    SCREEN_SENSE,
    SCREEN_PROMPT,
    SCREEN_EDIT,
    SCREEN_EDITS,
    SCREEN_RUN,
    SCREEN_HELP,
    SCREEN_COUNT
} ScreenId;

typedef struct Ui Ui;

/* One row of a key table; tables end with a row whose action is NULL. The action gets
 * the state of the screen whose table it is in (NULL for the app's global keys). */
typedef struct {
    int keys[4];            /* up to four keys, 0-terminated */
    const char *label;      /* as shown in help: "j Down" */
    const char *help;
    void (*action)(void *self, Ui *ui);
} KeyBinding;

/* A scrolling list: count items, a cursor, the first visible item. */
typedef struct {
    int count, cursor, top;
} ListView;

/* A one-line text field (search, prompt, edit values), owned by a screen. */
typedef struct {
    int active;
    char text[UI_TEXT_MAX];
    int len;                /* bytes */
    const char *label;      /* "search: " */
    void *owner;            /* the screen state the callbacks get */
    void (*changed)(void *owner, Ui *ui);            /* after each edit; may be NULL */
    void (*done)(void *owner, Ui *ui, int accepted); /* Enter (1) or Esc (0) */
} LineEdit;

/* A screen and its subject: where the user was (the history that Backspace walks back
 * through), and what ui_open asks a screen to show. */
typedef struct {
    ScreenId screen;
    int token, sense;       /* -1: none */
    int cursor;             /* of the screen's list */
    int returning;          /* 1: ui_back comes back here (the screen shows it as it was) */
} Place;

typedef struct {
    const char *name;       /* the status line's mode and the help's title: "word" */
    const char *summary;    /* one line for the help screen */
    const KeyBinding *keys;
    /* The screen's state (malloc'ed), or NULL with err set. */
    void *(*init)(Ui *ui, BpError *err);
    void (*free)(void *self);
    /* Arriving on the screen to show at->token, at->sense (-1: keep what it shows).
     * Returns 0, or -1 after a message to stay where the user was. May be NULL. */
    int (*enter)(void *self, Ui *ui, const Place *at);
    void (*draw)(void *self, Ui *ui, Canvas *c);
    /* A key not in the table (typing into the screen); returns 1 if used. May be NULL. */
    int (*key)(void *self, Ui *ui, int key);
    /* The list the navigation keys move, or NULL. May be NULL. */
    ListView *(*list)(void *self);
    /* The status line's subject after the mode (" | ␣bank #3331 sense 2/16"); writes ""
     * for none. May be NULL. */
    void (*title)(void *self, Ui *ui, char *out, size_t out_size);
} ScreenClass;

/* The shared services. The app fills in the data and the screen list (app.h); ui.c
 * implements the functions below on nothing but these fields, so the screens depend on
 * ui.c and never on the app. Screens read the fields; they change them through the
 * functions, except that a screen's enter sets token and sense to what it shows and
 * the sense screen starts the index loader when it needs it. */
struct Ui {
    SenseStore *store;
    const StoreInfo *info;
    const char *db_path;
    StoreMode db_mode;
    int V, k, d;
    long generation;        /* bumped whenever the edits in force change: caches recompute */
    ModelRuns *model;       /* with --model, else NULL */
    const char *run_dir;    /* the --model directory, where a training run keeps its
                             * metrics.jsonl (the run screen reads it), else NULL */
    ScreenId screen;        /* the screen on show */
    int token, sense;       /* the current word and sense (-1: none yet): a screen's enter
                             * sets them to what it shows */
    Canvas *canvas;         /* the last one drawn on (NULL before the first draw) */
    IndexLoader *loader;    /* the nearest-neighbour index, loading in the background */
    int wait_for_index;     /* 1: a sense screen waits for the index (scripted mode) */
    const char *key_note;   /* set by a key that did one-time work ("index-load"), for --timing */
    /* every screen's class and state by ScreenId, and the keys that work everywhere */
    const ScreenClass *const *screens;
    void **states;
    const KeyBinding *global_keys;

    /* the services' own state (ui.c): screens go through the functions below */
    char message[256];      /* the status line's message, until the next key */
    int message_error;
    LineEdit *input;        /* the open line editor, or NULL */
    Place history[UI_HISTORY_MAX];
    int history_len;
    ScreenId help_return;   /* the screen the help was opened on */
};

/* The status line's message until the next key. */
void ui_message(Ui *ui, int is_error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Shows a screen on token and sense (-1: what it showed last), remembering the current
 * place for Backspace. Returns 0, or -1 when the screen refused (it said why). */
int ui_open(Ui *ui, ScreenId screen, int token, int sense);
/* Back through the history (from the help: to the screen it was opened on). */
void ui_back(Ui *ui);
/* Shows the help screen over the current one. */
void ui_open_help(Ui *ui);
/* The list the navigation keys move on the screen on show, or NULL. */
ListView *ui_current_list(Ui *ui);
/* Gives a key to the open line editor; returns 1 when it was the editor's. */
int ui_input_key(Ui *ui, int key);
/* Opens the line editor on input (its owner and callbacks set by the caller). */
void ui_open_input(Ui *ui, LineEdit *input, const char *label, const char *initial);
/* The edits in the database changed (saved, undone): reloads those in force and bumps
 * the generation, so every cached view and model run recomputes. */
int ui_edits_changed(Ui *ui, BpError *err);
/* ScreenClass.title for screens about the current word: " | bank #3331", and with
 * its sense: " | bank #3331 sense 2/16". */
void ui_title_word(void *self, Ui *ui, char *out, size_t out_size);
void ui_title_word_sense(void *self, Ui *ui, char *out, size_t out_size);
/* A screen's zeroed state, or NULL with err set ("out of memory"). */
void *ui_state_alloc(size_t size, BpError *err);

/* A token's readable text (" the", "\\n" for a newline), for running text. */
const char *ui_token_text(const Ui *ui, int id, char *out, size_t out_size);
/* A word as shown: the readable text with a leading space drawn as '␣'. */
const char *ui_word_label(const Ui *ui, int id, char *out, size_t out_size);
/* The content area: rows [ui_top_row, ui_bottom_row). */
int ui_top_row(const Canvas *c);
int ui_bottom_row(const Canvas *c);
/* "label +1.23" (fmt formats the score) in a style by the score's sign, or selected;
 * returns the columns drawn. */
int ui_draw_word_score(const Ui *ui, Canvas *c, int row, int col, int max, const WordScore *ws,
                       int selected, const char *fmt);
/* "The prompt screen needs --model" and how to give it. */
void ui_draw_needs_model(Canvas *c, const char *what);
/* With --model: "running the model: token 3/12" for the run that computes `kind`; the
 * prompt's last tokens dimmed, then p's greedy continuation. */
void ui_draw_progress(const Ui *ui, Canvas *c, int row, int col, int width, JobKind kind);
void ui_draw_continuation(const Ui *ui, Canvas *c, int row, int col, int width, const Prediction *p);

/* List helpers: clamp, move by a key (j/k/arrows/PgUp/PgDn/g/G), keep the cursor in
 * the `visible` rows. list_key returns 1 if the key moved the list. */
void list_set_count(ListView *l, int count);
int list_key(ListView *l, int key, int page);
void list_scroll(ListView *l, int visible);

#endif
