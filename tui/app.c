/* app.c - the browser's frame: opening, the screen list, key dispatch, the header and
 * status lines. The screens live in screen_*.c, the services they share in ui.c. */
#include "app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "screen_edit.h"
#include "screen_edits.h"
#include "screen_help.h"
#include "screen_prompt.h"
#include "screen_run.h"
#include "screen_search.h"
#include "screen_sense.h"
#include "screen_word.h"

const ScreenClass *const app_screens[SCREEN_COUNT] = {
    [SCREEN_SEARCH] = &search_screen, [SCREEN_WORD] = &word_screen,   [SCREEN_SENSE] = &sense_screen,
    [SCREEN_PROMPT] = &prompt_screen, [SCREEN_EDIT] = &edit_screen,   [SCREEN_EDITS] = &edits_screen,
    [SCREEN_RUN] = &run_screen,       [SCREEN_HELP] = &help_screen,
};

/* ---- opening and closing ----------------------------------------------------------- */

int app_open(App *app, const char *db_path, const char *model_dir, BpError *err) {
    memset(app, 0, sizeof *app);
    Ui *ui = &app->ui;
    ui->token = ui->sense = -1;
    ui->db_path = db_path;
    ui->screens = app_screens;
    ui->states = app->state;
    ui->global_keys = app_global_keys;
    struct stat st;
    if (stat(db_path, &st) != 0) return bp_fail_errno(err, "%s", db_path);
    if (S_ISDIR(st.st_mode)) return bp_fail(err, "%s: is a directory, not a sense database", db_path);
    /* read-write when we may write, so edits can be saved; else browse read-only */
    ui->db_mode = access(db_path, W_OK) == 0 ? STORE_READ_WRITE : STORE_READ_ONLY;
    if (store_open(&ui->store, db_path, ui->db_mode, err) != 0) return -1;
    ui->info = store_info(ui->store);
    ui->V = store_vocab_size(ui->store);
    ui->k = ui->info->config.num_senses;
    ui->d = ui->info->config.n_embd;
    if (model_dir) {
        app->model_dir = model_dir;
        if (runs_open(&app->runs, model_dir, ui->store, err) != 0) goto fail;
        ui->model = &app->runs;
        ui->run_dir = model_dir;
        /* E now rather than on the first edit preview (154 MB for the small shape) */
        if (!store_embeddings(ui->store, err)) goto fail;
    }
    for (int s = 0; s < SCREEN_COUNT; s++)
        if (!(app->state[s] = app_screens[s]->init(ui, err))) goto fail;
    ui->screen = SCREEN_SEARCH;
    return 0;
fail:
    app_close(app);
    return -1;
}

void app_close(App *app) {
    for (int s = 0; s < SCREEN_COUNT; s++)
        if (app->state[s]) app_screens[s]->free(app->state[s]);
    if (app->ui.model) runs_close(&app->runs);
    index_loader_free(app->ui.loader, !app->exit_fast);
    if (app->ui.store) store_close(app->ui.store);
    memset(app, 0, sizeof *app);
}

void *app_screen_state(App *app, ScreenId screen) { return app->state[screen]; }

int app_waits_for_index(App *app) {
    return app->ui.screen == SCREEN_SENSE && sense_waits_for_index(app->state[SCREEN_SENSE]);
}

int model_busy(App *app) { return app->ui.model ? runs_busy(app->ui.model) : 0; }
int model_work(App *app) { return app->ui.model ? runs_work(app->ui.model) : 0; }
void model_drain(App *app) {
    if (app->ui.model) runs_drain(app->ui.model);
}

/* ---- global keys ----------------------------------------------------------------------- */

static void act_quit(void *self, Ui *ui) {
    (void)ui;
    ((App *)self)->quit = 1;
}
static void act_help(void *self, Ui *ui) {
    (void)self;
    if (ui->screen == SCREEN_HELP) ui_back(ui);
    else ui_open_help(ui);
}
static void act_back(void *self, Ui *ui) {
    (void)self;
    ui_back(ui);
}
static void act_search(void *self, Ui *ui) {
    (void)self;
    ui_open(ui, SCREEN_SEARCH, -1, -1);
}
static void act_next(void *self, Ui *ui) {
    (void)self;
    search_step(ui->states[SCREEN_SEARCH], ui, +1);
}
static void act_prev(void *self, Ui *ui) {
    (void)self;
    search_step(ui->states[SCREEN_SEARCH], ui, -1);
}
static void act_prompt(void *self, Ui *ui) {
    (void)self;
    ui_open(ui, SCREEN_PROMPT, -1, -1);
}
static void act_edits(void *self, Ui *ui) {
    (void)self;
    ui_open(ui, SCREEN_EDITS, -1, -1);
}
static void act_run(void *self, Ui *ui) {
    (void)self;
    ui_open(ui, SCREEN_RUN, -1, -1);
}
static void act_word(void *self, Ui *ui) {
    (void)self;
    if (ui->token >= 0) ui_open(ui, SCREEN_WORD, ui->token, -1);
    else ui_message(ui, 0, "no word yet: search with /");
}

const KeyBinding app_global_keys[] = {
    {{'q', BK_CTRL('c')}, "q", "quit", act_quit},
    {{'?', 0}, "?", "this help (built from the live key tables)", act_help},
    {{'/', 0}, "/", "search the vocabulary (type-ahead)", act_search},
    {{'n', 0}, "n", "open the next search result", act_next},
    {{'N', 0}, "N", "open the previous search result", act_prev},
    {{BK_BACKSPACE, 'h', BK_LEFT}, "BS h Left", "back (history)", act_back},
    {{'w', 0}, "w", "the current word's senses", act_word},
    {{'p', 0}, "p", "the prompt screen; with no prompt yet, type one at once (needs --model)",
     act_prompt},
    {{'E', 0}, "E", "the list of edits in the database", act_edits},
    {{'R', 0}, "R", "the training run's loss curves (--model DIR with metrics.jsonl)", act_run},
    {{0}, NULL, NULL, NULL},
};

static const KeyBinding *find_binding(const KeyBinding *table, int key) {
    for (const KeyBinding *b = table; b && b->action; b++)
        for (int i = 0; i < 4 && b->keys[i]; i++)
            if (b->keys[i] == key) return b;
    return NULL;
}

static int page_rows(const App *app) {
    const Canvas *c = app->ui.canvas;
    int rows = c ? ui_bottom_row(c) - ui_top_row(c) - 4 : 10;
    return rows < 1 ? 1 : rows;
}

void app_key(App *app, int key) {
    if (key == BK_RESIZE) return;
    /* the same key whether it came as a control byte or a named key */
    if (key == '\t') key = BK_TAB;
    else if (key == '\n' || key == '\r') key = BK_ENTER;
    else if (key == 27) key = BK_ESC;
    else if (key == 127 || key == BK_CTRL('h')) key = BK_BACKSPACE;
    app->ui.message[0] = 0;
    const Canvas *c = app->ui.canvas;
    if (c && (c->rows < UI_MIN_ROWS || c->cols < UI_MIN_COLS)) {
        /* too small to show anything: only quitting makes sense */
        if (key == 'q' || key == BK_CTRL('c')) app->quit = 1;
        return;
    }
    if (ui_input_key(&app->ui, key)) return;
    ScreenId screen = app->ui.screen;
    const ScreenClass *sc = app_screens[screen];
    const KeyBinding *b = find_binding(sc->keys, key);
    if (b) {
        b->action(app->state[screen], &app->ui);
        return;
    }
    if (sc->key && sc->key(app->state[screen], &app->ui, key)) return;
    ListView *l = ui_current_list(&app->ui);
    if (l && list_key(l, key, page_rows(app))) return;
    b = find_binding(app_global_keys, key);
    if (b) {
        b->action(app, &app->ui);
        return;
    }
    char name[32];
    ui_message(&app->ui, 0, "key %s does nothing here (? for help)", bk_key_name(key, name, sizeof name));
}

/* ---- drawing ------------------------------------------------------------------------------ */

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

static void draw_header(App *app, Canvas *c) {
    const Ui *ui = &app->ui;
    canvas_fill(c, 0, 0, c->cols, STYLE_HEADER);
    /* the edit count at the right, so a long path never hides it */
    char right[64] = "";
    if (ui->model) snprintf(right, sizeof right, "edits in force: %d ", ui->model->edits_in_force.count);
    int right_w = utf8_display_width(right), room = c->cols - right_w - 1;
    int x = canvas_text(c, 0, 0, room, STYLE_HEADER, " backpack");
    x += canvas_printf(c, 0, x, room - x, STYLE_HEADER, "  db: %s (V=%d k=%d d=%d%s)",
                       base_name(ui->db_path), ui->V, ui->k, ui->d,
                       ui->db_mode == STORE_READ_ONLY ? ", read-only" : "");
    canvas_printf(c, 0, x, room - x, STYLE_HEADER, "  model: %s",
                  ui->model ? base_name(app->model_dir) : "none");
    if (right[0]) canvas_text(c, 0, c->cols - right_w, -1, STYLE_HEADER, right);
}

static void draw_status(App *app, Canvas *c) {
    int row = c->rows - 1;
    canvas_fill(c, row, 0, c->cols, STYLE_STATUS);
    if (app->ui.input) {
        int x = canvas_text(c, row, 0, -1, STYLE_INPUT, app->ui.input->label);
        /* show the end of a long text */
        const char *t = app->ui.input->text;
        while (utf8_display_width(t) > c->cols - x - 2 && *t) t++;
        x += canvas_text(c, row, x, -1, STYLE_INPUT, t);
        canvas_text(c, row, x, 1, STYLE_SELECTED, " ");
        const char *hint = "Enter accept  Esc cancel ";
        int w = utf8_display_width(hint);
        if (c->cols - w > x + 2) canvas_text(c, row, c->cols - w, -1, STYLE_STATUS, hint);
        return;
    }
    ScreenId screen = app->ui.screen;
    const ScreenClass *sc = app_screens[screen];
    char left[320], title[256] = "";
    if (sc->title) sc->title(app->state[screen], &app->ui, title, sizeof title);
    int n = snprintf(left, sizeof left, " %s%s", sc->name, title);
    ListView *l = ui_current_list(&app->ui);
    if (l && l->count > 0 && n > 0 && (size_t)n < sizeof left)
        snprintf(left + n, sizeof left - (size_t)n, " | %d/%d", l->cursor + 1, l->count);
    int x = canvas_text(c, row, 0, -1, STYLE_STATUS, left);
    if (app->ui.message[0])
        canvas_text(c, row, x + 2, -1, app->ui.message_error ? STYLE_ERROR : STYLE_STATUS, app->ui.message);
    else {
        const char *hint = "? help  q quit ";
        int w = utf8_display_width(hint);
        if (c->cols - w > x + 2) canvas_text(c, row, c->cols - w, -1, STYLE_STATUS, hint);
    }
}

static void draw_too_small(Canvas *c) {
    char line[96];
    snprintf(line, sizeof line, "terminal too small: %dx%d, need at least %dx%d", c->cols, c->rows,
             UI_MIN_COLS, UI_MIN_ROWS);
    int row = c->rows / 2, w = (int)strlen(line);
    int col = (c->cols - w) / 2;
    canvas_text(c, row > 0 ? row - 1 : 0, col < 0 ? 0 : col, -1, STYLE_ERROR, line);
    const char *hint = "enlarge the window, or q to quit";
    col = (c->cols - (int)strlen(hint)) / 2;
    canvas_text(c, row + 1 < c->rows ? row + 1 : row, col < 0 ? 0 : col, -1, STYLE_NORMAL, hint);
}

void app_draw(App *app, Canvas *c) {
    app->ui.canvas = c;
    canvas_clear(c);
    if (c->rows < UI_MIN_ROWS || c->cols < UI_MIN_COLS) {
        draw_too_small(c);
        canvas_present(c);
        return;
    }
    draw_header(app, c);
    app_screens[app->ui.screen]->draw(app->state[app->ui.screen], &app->ui, c);
    draw_status(app, c);
    canvas_present(c);
}
