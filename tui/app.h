/* app.h - the sense browser's state, its screens and their key tables.
 *
 * Like htop, the browser is a set of screens; each has a draw function, a key table
 * and (for screens where one types) a text handler. A key goes to the line editor
 * when one is open, then to the current screen's table, then to the global table;
 * the help screen (`?`) is built from these same tables, so it never disagrees with
 * what the keys do. Screens draw on a Canvas (canvas.h) and never touch the terminal,
 * so the scripted mode and the tests see exactly what a person sees.
 *
 * Data: the sense store (senses/store.h) for everything about words and senses; with
 * --model, the model (model/infer.h) for the prompt and edit screens. What a screen
 * shows is computed when its subject changes (a word, a sense, a prompt, an edit) and
 * cached, so moving the cursor only redraws.
 */
#ifndef BP_TUI_APP_H
#define BP_TUI_APP_H

#include "../model/infer.h"
#include "../senses/store.h"
#include "../text/tokenizer.h"
#include "canvas.h"
#include "index_loader.h"
#include "keys.h"

#define APP_MIN_ROWS 24
#define APP_MIN_COLS 80
#define APP_HISTORY_MAX 64
#define APP_SEARCH_MAX 500     /* type-ahead results kept */
#define APP_LIST_WORDS 50      /* words per list on the sense screen */
#define APP_WORD_WORDS 8       /* top and bottom words per sense on the word screen */
#define APP_NEIGHBOUR_WORDS 3  /* top words shown for each neighbour's sense */
#define APP_TOP_PREDICTIONS 10
#define APP_CONTRIBUTIONS 12   /* (context word, sense) pairs shown per prediction */
#define APP_CONTINUATION 8     /* tokens of greedy continuation, at most (a small context gets fewer) */
#define APP_PROMPT_MAX 1024    /* bytes of prompt text */

typedef enum {
    SCREEN_SEARCH = 0,
    SCREEN_WORD,
    SCREEN_SENSE,
    SCREEN_PROMPT,
    SCREEN_EDIT,
    SCREEN_EDITS,
    SCREEN_HELP,
    SCREEN_COUNT
} ScreenId;

typedef struct App App;

/* One row of a key table; tables end with a row whose action is NULL. */
typedef struct {
    int keys[4];            /* up to four keys, 0-terminated */
    const char *label;      /* as shown in help: "j Down" */
    const char *help;
    void (*action)(App *app);
} KeyBinding;

typedef struct {
    const char *name;       /* "word": the status line's mode */
    const char *summary;    /* one line for the help screen */
    const KeyBinding *keys;
    void (*draw)(App *app, Canvas *c);
    /* Keys not in a table (typing into the screen); returns 1 if used. May be NULL. */
    int (*text_key)(App *app, int key);
} Screen;

/* A scrolling list: count items, a cursor, the first visible item. */
typedef struct {
    int count, cursor, top;
} ListView;

/* A one-line text field (search, prompt, edit values). */
typedef struct {
    int active;
    char text[APP_PROMPT_MAX];
    int len;                /* bytes */
    const char *label;      /* "search: " */
    void (*changed)(App *app);           /* after each edit of the text; may be NULL */
    void (*done)(App *app, int accepted);/* Enter (1) or Esc (0) */
} LineEdit;

/* Where the user was: the history that Backspace / h walks back through. */
typedef struct {
    ScreenId screen;
    int token, sense;
    int cursor;
} Place;

/* ---- per-screen state ---- */

typedef struct {
    LineEdit input;
    int ids[APP_SEARCH_MAX];
    int count;
    int closest;            /* 1: no prefix matched; ids are the closest words */
    ListView list;
} SearchView;

typedef struct {
    int token;              /* -1: nothing loaded */
    long generation;        /* app->generation when computed */
    int k, n;               /* senses, words per list */
    SenseInfo *info;        /* (k) */
    WordScore *top, *bottom;/* (k, APP_WORD_WORDS) */
    ListView list;          /* cursor = sense */
} WordView;

typedef struct {
    int token, sense;
    long generation;
    SenseInfo info;
    int n_top, n_bottom, n_near;
    WordScore top[APP_LIST_WORDS], bottom[APP_LIST_WORDS], near[APP_LIST_WORDS];
    /* the same sense of each neighbour: its top words */
    WordScore near_top[APP_LIST_WORDS][APP_NEIGHBOUR_WORDS];
    int near_pending;       /* waiting for the nearest-neighbour index */
    int near_error;         /* nearest neighbours unavailable (message in near_msg) */
    char near_msg[BP_ERROR_MAX];
    int column;             /* 0 top, 1 bottom, 2 nearest */
    ListView lists[3];
} SenseView;

typedef struct {
    int context_pos;        /* j */
    int token;              /* x_j */
    int sense;              /* l */
    float alpha;            /* alpha_l[last, j] */
    float score;            /* (E C(x_j)_l)[t] */
    float contribution;     /* alpha * score */
} Contribution;

/* What a model run was made for: a prompt (its version), the edits in force (the
 * generation) and, for the edit screen's "after", the pending edit. */
typedef struct {
    long prompt_version, generation, preview_id;
} RunKey;

/* A model run on the prompt: next-token top predictions and a greedy continuation. */
typedef struct {
    int valid;              /* complete (or failed: error set) for `key` */
    RunKey key;
    WordScore top[APP_TOP_PREDICTIONS];  /* score = probability */
    int n_top;
    int continuation[APP_CONTINUATION];
    int n_continuation;
    char error[BP_ERROR_MAX];
} Prediction;

typedef struct {
    LineEdit input;
    int *tokens;            /* (max_len - continuation_len) */
    int n_tokens;
    int continuation_len;   /* greedy tokens after the prompt: they share the model's context */
    long version;           /* bumped by every new prompt */
    Prediction pred;        /* with the edits in force (the edit screen's "before") */
    Contribution contrib[APP_TOP_PREDICTIONS][APP_CONTRIBUTIONS];
    int n_contrib[APP_TOP_PREDICTIONS];
    float logit[APP_TOP_PREDICTIONS];
    int column;             /* 0 predictions, 1 contributions */
    ListView lists[2];
} PromptView;

typedef struct {
    int token, sense;       /* what is being edited */
    LineEdit input;         /* the value of the pending edit kind */
    EditKind pending_kind;
    int have_preview;
    long preview_id;        /* bumped by every new preview */
    EditRequest request;
    EditPreview preview;
    WordScore top_before[5], top_after[5];
    int n_before, n_after;
    Prediction after;       /* the prompt with the edits in force plus the pending one */
    char error[BP_ERROR_MAX];
} EditView;

/* The model runs one token step at a time between keys (screen_model.c), so the
 * screen answers keys while a prompt or an edit preview is computed. */
typedef enum { JOB_NONE = 0, JOB_PROMPT, JOB_AFTER } JobKind;

typedef struct {
    JobKind kind;
    RunKey key;
    int fed, produced;      /* prompt tokens fed, continuation tokens made */
    const float *logits;    /* of the last step */
    Prediction result;
    SenseEdit *composed;    /* JOB_AFTER: the edits in force with the preview on top */
    SenseEdits edits;
} ModelJob;

typedef struct {
    EditRecord *records;
    int count;
    ListView list;
} EditsView;

struct App {
    /* data */
    SenseStore *store;
    const StoreInfo *info;
    const char *db_path;
    int V, k, d;
    StoreMode db_mode;
    /* the model, with --model */
    int have_model;
    const char *model_dir;
    Backpack model;
    Tokenizer *tokenizer;   /* NULL when the model directory has none */
    char tokenizer_error[BP_ERROR_MAX];
    InferState infer;
    SenseEdits edits_in_force;
    long generation;        /* bumped whenever the edits in force change */
    ModelJob job;

    /* ui */
    Canvas *canvas;
    ScreenId screen;
    ScreenId help_return;   /* the screen `?` was pressed on */
    int quit;
    char message[256];
    int message_error;
    Place history[APP_HISTORY_MAX];
    int history_len;
    int token, sense;       /* the current word and sense (-1: none yet) */

    SearchView search;
    WordView word;
    SenseView sense_view;
    PromptView prompt;
    EditView edit;
    EditsView edits;
    ListView help;
    LineEdit *input;        /* the open line editor, or NULL */
    IndexLoader *loader;    /* the nearest-neighbour index, loading in the background */
    int wait_for_index;     /* 1: a sense screen waits for the index (scripted mode) */
    int exit_fast;          /* 1: app_close does not wait for a loading index */
    const char *key_note;   /* set by a key that did one-time work ("index-load"), for --timing */
};

extern const Screen app_screens[SCREEN_COUNT];
extern const KeyBinding app_global_keys[];

/* Opens what the browser needs: the database, and with model_dir the model (checked
 * against the database) and its tokenizer. Read-write when the file permits. */
int app_open(App *app, const char *db_path, const char *model_dir, BpError *err);
void app_close(App *app);

/* One key; then the caller draws. */
void app_key(App *app, int key);
/* Draws the whole screen (header, the current screen or the too-small notice, status). */
void app_draw(App *app, Canvas *c);

/* ---- for the screens ---- */

void app_message(App *app, int is_error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Goes to a screen, remembering the current place for Backspace. */
void app_goto(App *app, ScreenId screen);
void app_open_word(App *app, int token);
void app_open_sense(App *app, int token, int sense);
void app_back(App *app);
void app_open_input(App *app, LineEdit *input, const char *label, const char *initial);

/* A token's readable text (" the", "\\n" for a newline), for running text. */
const char *app_token_text(const App *app, int id, char *out, size_t out_size);
/* A word as shown: the readable text with a leading space drawn as '␣'. */
const char *app_word_label(const App *app, int id, char *out, size_t out_size);
/* The content area: rows [app_top_row, app_bottom_row). */
int app_top_row(const Canvas *c);
int app_bottom_row(const Canvas *c);

/* List helpers: clamp, move by a key (j/k/arrows/PgUp/PgDn/g/G), keep the cursor in
 * the `visible` rows. list_key returns 1 if the key moved the list. */
void list_set_count(ListView *l, int count);
int list_key(ListView *l, int key, int page);
void list_scroll(ListView *l, int visible);

/* The list the navigation keys move on the current screen, or NULL. */
ListView *app_current_list(App *app);

/* screen_browse.c */
void search_draw(App *app, Canvas *c);
void word_draw(App *app, Canvas *c);
void sense_draw(App *app, Canvas *c);
void search_start(App *app);
void search_step(App *app, int direction);
extern const KeyBinding search_keys[], word_keys[], sense_keys[];
int word_load(App *app, int token);
int sense_load(App *app, int token, int sense);
/* Fills the sense screen's neighbours once the index is ready (waits for it when
 * app->wait_for_index). Returns 1 while still waiting. */
int sense_try_nearest(App *app);

/* screen_model.c */
void prompt_draw(App *app, Canvas *c);
void edit_draw(App *app, Canvas *c);
extern const KeyBinding prompt_keys[], edit_keys[];
/* Opens the prompt's line editor (Enter runs the model on it). */
void prompt_start_typing(App *app);
void edit_begin(App *app, int token, int sense);
/* After a commit or undo: reload the edits in force, bump the generation (the model's
 * predictions are then recomputed). */
int app_reload_edits(App *app, BpError *err);
/* 1 while a model run is wanted or under way. */
int model_busy(App *app);
/* One step of model work (one token through the model); returns model_busy(). */
int model_work(App *app);
/* All of it (the scripted mode and the tests: screens that do not depend on timing). */
void model_drain(App *app);
void model_job_free(App *app);

/* screen_lists.c */
void edits_draw(App *app, Canvas *c);
void help_draw(App *app, Canvas *c);
void edits_refresh(App *app);
extern const KeyBinding edits_keys[], help_keys[];

#endif
