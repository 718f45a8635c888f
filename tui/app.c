/* app.c - the browser's frame: opening, key dispatch, history, header and status
 * lines, list and line-editor helpers. The screens live in screen_*.c. */
#include "app.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "../model/checkpoint.h"
#include "../senses/edits.h"

/* ---- opening and closing ----------------------------------------------------------- */

int app_open(App *app, const char *db_path, const char *model_dir, BpError *err) {
    memset(app, 0, sizeof *app);
    app->token = app->sense = -1;
    app->word.token = -1;
    app->sense_view.token = -1;
    app->db_path = db_path;
    struct stat st;
    if (stat(db_path, &st) != 0) return bp_fail_errno(err, "%s", db_path);
    if (S_ISDIR(st.st_mode)) return bp_fail(err, "%s: is a directory, not a sense database", db_path);
    /* read-write when we may write, so edits can be saved; else browse read-only */
    app->db_mode = access(db_path, W_OK) == 0 ? STORE_READ_WRITE : STORE_READ_ONLY;
    if (store_open(&app->store, db_path, app->db_mode, err) != 0) return -1;
    app->info = store_info(app->store);
    app->V = store_vocab_size(app->store);
    app->k = app->info->config.num_senses;
    app->d = app->info->config.n_embd;
    if (model_dir) {
        app->model_dir = model_dir;
        if (checkpoint_load(&app->model, model_dir, err) != 0) goto fail;
        app->have_model = 1;
        if (app->model.config.arch != ARCH_BACKPACK) {
            bp_fail(err, "%s: not a Backpack model (a Transformer has no senses)", model_dir);
            goto fail;
        }
        if (store_check_model(app->store, &app->model, err) != 0) goto fail;
        /* without tokenizer files the senses still browse; only prompts need them */
        BpError tok_err = {0};
        if (tokenizer_load(&app->tokenizer, model_dir, &tok_err) != 0) {
            app->tokenizer = NULL;
            snprintf(app->tokenizer_error, sizeof app->tokenizer_error, "%s", tok_err.msg);
        }
        int max_len = app->model.config.n_positions < 256 ? app->model.config.n_positions : 256;
        if (infer_build(&app->infer, &app->model, max_len, err) != 0) goto fail;
        /* the prompt and its continuation share the context: the continuation takes at
         * most half of it, so a prompt always keeps at least one token */
        app->prompt.continuation_len = max_len / 2 < APP_CONTINUATION ? max_len / 2 : APP_CONTINUATION;
        app->prompt.tokens = malloc((size_t)max_len * sizeof(int));
        if (!app->prompt.tokens) {
            bp_fail(err, "out of memory");
            goto fail;
        }
        if (app_reload_edits(app, err) != 0) goto fail;
        /* E now rather than on the first edit preview (154 MB for the small shape) */
        if (!store_embeddings(app->store, err)) goto fail;
    }
    app->screen = SCREEN_SEARCH;
    return 0;
fail:
    app_close(app);
    return -1;
}

void app_close(App *app) {
    if (app->have_model) {
        infer_free(&app->infer);
        backpack_free(&app->model);
    }
    model_job_free(app);
    if (app->tokenizer) tokenizer_free(app->tokenizer);
    sense_edits_free(&app->edits_in_force);
    free(app->prompt.tokens);
    free(app->word.info);
    free(app->word.top);
    free(app->word.bottom);
    store_edit_preview_free(&app->edit.preview);
    free(app->edits.records);
    index_loader_free(app->loader, !app->exit_fast);
    if (app->store) store_close(app->store);
    memset(app, 0, sizeof *app);
}

int app_reload_edits(App *app, BpError *err) {
    SenseEdits fresh = {0};
    if (store_sense_edits(app->store, &fresh, err) != 0) return -1;
    sense_edits_free(&app->edits_in_force);
    app->edits_in_force = fresh;
    app->generation++;
    return 0;
}

/* ---- messages, places, history ------------------------------------------------------ */

void app_message(App *app, int is_error, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(app->message, sizeof app->message, fmt, ap);
    va_end(ap);
    app->message_error = is_error;
}

static Place current_place(App *app) {
    Place p = {app->screen, app->token, app->sense, 0};
    ListView *l = app_current_list(app);
    if (l) p.cursor = l->cursor;
    return p;
}

static void push_history(App *app) {
    if (app->screen == SCREEN_HELP) return;
    Place here = current_place(app);
    if (app->history_len > 0) {  /* the same place twice in a row is one step back */
        Place *last = &app->history[app->history_len - 1];
        if (last->screen == here.screen && last->token == here.token && last->sense == here.sense) {
            *last = here;
            return;
        }
    }
    if (app->history_len == APP_HISTORY_MAX) {
        memmove(app->history, app->history + 1, (APP_HISTORY_MAX - 1) * sizeof(Place));
        app->history_len--;
    }
    app->history[app->history_len++] = here;
}

void app_goto(App *app, ScreenId screen) {
    if (screen == app->screen) return;
    push_history(app);
    app->screen = screen;
}

void app_open_word(App *app, int token) {
    if (word_load(app, token) != 0) return;
    push_history(app);
    app->token = token;
    if (app->sense < 0 || app->sense >= app->k) app->sense = 0;
    app->word.list.cursor = app->sense;
    app->screen = SCREEN_WORD;
}

void app_open_sense(App *app, int token, int sense) {
    if (sense_load(app, token, sense) != 0) return;
    push_history(app);
    app->token = token;
    app->sense = sense;
    app->screen = SCREEN_SENSE;
}

void app_back(App *app) {
    if (app->screen == SCREEN_HELP) {
        app->screen = app->help_return;
        return;
    }
    if (app->history_len == 0) {
        app_message(app, 0, "at the start of the history");
        return;
    }
    Place p = app->history[--app->history_len];
    app->screen = p.screen;
    app->token = p.token;
    app->sense = p.sense;
    if (p.screen == SCREEN_WORD && p.token >= 0) word_load(app, p.token);
    if (p.screen == SCREEN_SENSE && p.token >= 0) sense_load(app, p.token, p.sense);
    if (p.screen == SCREEN_EDIT && (app->edit.token != p.token || app->edit.sense != p.sense)) {
        /* the edit screen holds one edit: an older one comes back as its word */
        app->screen = p.token >= 0 ? SCREEN_WORD : SCREEN_SEARCH;
        if (p.token >= 0) word_load(app, p.token);
    }
    if (p.screen == SCREEN_EDITS) edits_refresh(app);
    ListView *l = app_current_list(app);
    if (l) {
        l->cursor = p.cursor;
        list_set_count(l, l->count);
    }
}

/* ---- the line editor ---------------------------------------------------------------- */

void app_open_input(App *app, LineEdit *input, const char *label, const char *initial) {
    input->active = 1;
    input->label = label;
    if (initial != input->text) snprintf(input->text, sizeof input->text, "%s", initial ? initial : "");
    input->len = (int)strlen(input->text);
    app->input = input;
}

/* Returns 1 when the key was the editor's. */
static int input_key(App *app, int key) {
    LineEdit *in = app->input;
    if (!in || !in->active) return 0;
    if (key == BK_ENTER || key == BK_ESC) {
        in->active = 0;
        app->input = NULL;
        if (in->done) in->done(app, key == BK_ENTER);
        return 1;
    }
    if (key == BK_BACKSPACE) {
        if (in->len > 0) {  /* remove one whole UTF-8 character */
            do in->len--;
            while (in->len > 0 && ((unsigned char)in->text[in->len] & 0xC0) == 0x80);
            in->text[in->len] = 0;
            if (in->changed) in->changed(app);
        }
        return 1;
    }
    if (key == BK_CTRL('u')) {
        in->len = 0;
        in->text[0] = 0;
        if (in->changed) in->changed(app);
        return 1;
    }
    if (key >= 0x20 && key < BK_SPECIAL) {
        char utf8[4];
        int n = utf8_encode(key, utf8);
        if (n > 0 && in->len + n < (int)sizeof in->text) {
            memcpy(in->text + in->len, utf8, (size_t)n);
            in->len += n;
            in->text[in->len] = 0;
            if (in->changed) in->changed(app);
        }
        return 1;
    }
    /* list keys (Up/Down on the search results) fall through to the screen */
    return !(key == BK_UP || key == BK_DOWN || key == BK_PGUP || key == BK_PGDN || key == BK_TAB ||
             key == BK_CTRL('c'));
}

/* ---- lists ---------------------------------------------------------------------------- */

void list_set_count(ListView *l, int count) {
    l->count = count < 0 ? 0 : count;
    if (l->cursor >= l->count) l->cursor = l->count - 1;
    if (l->cursor < 0) l->cursor = 0;
    if (l->top > l->cursor) l->top = l->cursor;
    if (l->top < 0) l->top = 0;
}

int list_key(ListView *l, int key, int page) {
    if (page < 1) page = 1;
    switch (key) {
    case 'j': case BK_DOWN: l->cursor++; break;
    case 'k': case BK_UP: l->cursor--; break;
    case BK_PGDN: case BK_CTRL('f'): case ' ': l->cursor += page; break;
    case BK_PGUP: case BK_CTRL('b'): l->cursor -= page; break;
    case 'g': case BK_HOME: l->cursor = 0; break;
    case 'G': case BK_END: l->cursor = l->count - 1; break;
    default: return 0;
    }
    list_set_count(l, l->count);
    return 1;
}

void list_scroll(ListView *l, int visible) {
    if (visible < 1) visible = 1;
    if (l->cursor < l->top) l->top = l->cursor;
    if (l->cursor >= l->top + visible) l->top = l->cursor - visible + 1;
    if (l->top > l->count - visible) l->top = l->count - visible;
    if (l->top < 0) l->top = 0;
}

ListView *app_current_list(App *app) {
    switch (app->screen) {
    case SCREEN_SEARCH: return &app->search.list;
    case SCREEN_WORD: return &app->word.list;
    case SCREEN_SENSE: return &app->sense_view.lists[app->sense_view.column];
    case SCREEN_PROMPT: return &app->prompt.lists[app->prompt.column];
    case SCREEN_EDITS: return &app->edits.list;
    case SCREEN_HELP: return &app->help;
    default: return NULL;
    }
}

/* ---- global keys ----------------------------------------------------------------------- */

static void act_quit(App *app) { app->quit = 1; }
static void act_help(App *app) {
    if (app->screen == SCREEN_HELP) {
        app->screen = app->help_return;
        return;
    }
    app->help_return = app->screen;
    app->screen = SCREEN_HELP;
    app->help.cursor = app->help.top = 0;
}
static void act_back(App *app) { app_back(app); }
static void act_search(App *app) { search_start(app); }
static void act_next(App *app) { search_step(app, +1); }
static void act_prev(App *app) { search_step(app, -1); }
static void act_prompt(App *app) {
    app_goto(app, SCREEN_PROMPT);
    if (app->have_model && app->prompt.n_tokens == 0) prompt_start_typing(app);
}
static void act_edits(App *app) {
    edits_refresh(app);
    app_goto(app, SCREEN_EDITS);
}
static void act_word(App *app) {
    if (app->token >= 0) app_open_word(app, app->token);
    else app_message(app, 0, "no word yet: search with /");
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
    {{0}, NULL, NULL, NULL},
};

const Screen app_screens[SCREEN_COUNT] = {
    [SCREEN_SEARCH] = {"search", "type-ahead search over the vocabulary", search_keys, search_draw,
                       NULL},
    [SCREEN_WORD] = {"word", "a word's k senses: top and bottom words, norms", word_keys, word_draw,
                     NULL},
    [SCREEN_SENSE] = {"sense", "one sense: top, bottom and nearest words", sense_keys, sense_draw,
                      NULL},
    [SCREEN_PROMPT] = {"prompt", "a prompt's next-token predictions and their causes", prompt_keys,
                       prompt_draw, NULL},
    [SCREEN_EDIT] = {"edit", "edit a sense: before and after", edit_keys, edit_draw, NULL},
    [SCREEN_EDITS] = {"edits", "the edits stored in the database", edits_keys, edits_draw, NULL},
    [SCREEN_HELP] = {"help", "keys", help_keys, help_draw, NULL},
};

static const KeyBinding *find_binding(const KeyBinding *table, int key) {
    for (const KeyBinding *b = table; b && b->action; b++)
        for (int i = 0; i < 4 && b->keys[i]; i++)
            if (b->keys[i] == key) return b;
    return NULL;
}

static int page_rows(const App *app) {
    int rows = app->canvas ? app_bottom_row(app->canvas) - app_top_row(app->canvas) - 4 : 10;
    return rows < 1 ? 1 : rows;
}

void app_key(App *app, int key) {
    if (key == BK_RESIZE) return;
    /* the same key whether it came as a control byte or a named key */
    if (key == '\t') key = BK_TAB;
    else if (key == '\n' || key == '\r') key = BK_ENTER;
    else if (key == 27) key = BK_ESC;
    else if (key == 127 || key == BK_CTRL('h')) key = BK_BACKSPACE;
    app->message[0] = 0;
    if (app->canvas && (app->canvas->rows < APP_MIN_ROWS || app->canvas->cols < APP_MIN_COLS)) {
        /* too small to show anything: only quitting makes sense */
        if (key == 'q' || key == BK_CTRL('c')) app->quit = 1;
        return;
    }
    if (input_key(app, key)) return;
    const Screen *s = &app_screens[app->screen];
    const KeyBinding *b = find_binding(s->keys, key);
    if (b) {
        b->action(app);
        return;
    }
    if (s->text_key && s->text_key(app, key)) return;
    ListView *l = app_current_list(app);
    if (l && list_key(l, key, page_rows(app))) return;
    b = find_binding(app_global_keys, key);
    if (b) {
        b->action(app);
        return;
    }
    char name[32];
    app_message(app, 0, "key %s does nothing here (? for help)", bk_key_name(key, name, sizeof name));
}

/* ---- drawing ------------------------------------------------------------------------------ */

int app_top_row(const Canvas *c) {
    (void)c;
    return 1;
}
int app_bottom_row(const Canvas *c) { return c->rows - 1; }

const char *app_token_text(const App *app, int id, char *out, size_t out_size) {
    const char *text = store_token_text(app->store, id);
    /* a database exported without a tokenizer names tokens "<id N>": the model's
     * tokenizer, when there is one, knows better */
    if (text && !strncmp(text, "<id ", 4) && app->tokenizer && id < tokenizer_vocab_size(app->tokenizer))
        return tokenizer_token_readable(app->tokenizer, id, out, out_size);
    snprintf(out, out_size, "%s", text ? text : "");
    return out;
}

const char *app_word_label(const App *app, int id, char *out, size_t out_size) {
    char readable[160];
    const char *text = app_token_text(app, id, readable, sizeof readable);
    if (!text || !*text) {
        snprintf(out, out_size, "#%d", id);
        return out;
    }
    if (text[0] == ' ')
        snprintf(out, out_size, "\xe2\x90\xa3%s", text + 1); /* U+2423 OPEN BOX */
    else
        snprintf(out, out_size, "%s", text);
    return out;
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

static void draw_header(App *app, Canvas *c) {
    canvas_fill(c, 0, 0, c->cols, STYLE_HEADER);
    /* the edit count at the right, so a long path never hides it */
    char right[64] = "";
    if (app->have_model) snprintf(right, sizeof right, "edits in force: %d ", app->edits_in_force.count);
    int right_w = utf8_display_width(right), room = c->cols - right_w - 1;
    int x = canvas_text(c, 0, 0, room, STYLE_HEADER, " backpack");
    x += canvas_printf(c, 0, x, room - x, STYLE_HEADER, "  db: %s (V=%d k=%d d=%d%s)",
                       base_name(app->db_path), app->V, app->k, app->d,
                       app->db_mode == STORE_READ_ONLY ? ", read-only" : "");
    canvas_printf(c, 0, x, room - x, STYLE_HEADER, "  model: %s",
                  app->have_model ? base_name(app->model_dir) : "none");
    if (right[0]) canvas_text(c, 0, c->cols - right_w, -1, STYLE_HEADER, right);
}

static void draw_status(App *app, Canvas *c) {
    int row = c->rows - 1;
    canvas_fill(c, row, 0, c->cols, STYLE_STATUS);
    if (app->input) {
        int x = canvas_text(c, row, 0, -1, STYLE_INPUT, app->input->label);
        /* show the end of a long text */
        const char *t = app->input->text;
        while (utf8_display_width(t) > c->cols - x - 2 && *t) t++;
        x += canvas_text(c, row, x, -1, STYLE_INPUT, t);
        canvas_text(c, row, x, 1, STYLE_SELECTED, " ");
        const char *hint = "Enter accept  Esc cancel ";
        int w = utf8_display_width(hint);
        if (c->cols - w > x + 2) canvas_text(c, row, c->cols - w, -1, STYLE_STATUS, hint);
        return;
    }
    char left[256], word[160];
    int n = snprintf(left, sizeof left, " %s", app_screens[app->screen].name);
    if (app->token >= 0 && app->screen != SCREEN_HELP)
        n += snprintf(left + n, sizeof left - (size_t)n, " | %s #%d",
                      app_word_label(app, app->token, word, sizeof word), app->token);
    if (app->token >= 0 && app->sense >= 0 &&
        (app->screen == SCREEN_SENSE || app->screen == SCREEN_WORD || app->screen == SCREEN_EDIT))
        n += snprintf(left + n, sizeof left - (size_t)n, " sense %d/%d", app->sense, app->k);
    ListView *l = app_current_list(app);
    if (l && l->count > 0)
        snprintf(left + n, sizeof left - (size_t)n, " | %d/%d", l->cursor + 1, l->count);
    int x = canvas_text(c, row, 0, -1, STYLE_STATUS, left);
    if (app->message[0])
        canvas_text(c, row, x + 2, -1, app->message_error ? STYLE_ERROR : STYLE_STATUS, app->message);
    else {
        const char *hint = "? help  q quit ";
        int w = utf8_display_width(hint);
        if (c->cols - w > x + 2) canvas_text(c, row, c->cols - w, -1, STYLE_STATUS, hint);
    }
}

static void draw_too_small(Canvas *c) {
    char line[96];
    snprintf(line, sizeof line, "terminal too small: %dx%d, need at least %dx%d", c->cols, c->rows,
             APP_MIN_COLS, APP_MIN_ROWS);
    int row = c->rows / 2, w = (int)strlen(line);
    int col = (c->cols - w) / 2;
    canvas_text(c, row > 0 ? row - 1 : 0, col < 0 ? 0 : col, -1, STYLE_ERROR, line);
    const char *hint = "enlarge the window, or q to quit";
    col = (c->cols - (int)strlen(hint)) / 2;
    canvas_text(c, row + 1 < c->rows ? row + 1 : row, col < 0 ? 0 : col, -1, STYLE_NORMAL, hint);
}

void app_draw(App *app, Canvas *c) {
    app->canvas = c;
    canvas_clear(c);
    if (c->rows < APP_MIN_ROWS || c->cols < APP_MIN_COLS) {
        draw_too_small(c);
        canvas_present(c);
        return;
    }
    draw_header(app, c);
    app_screens[app->screen].draw(app, c);
    draw_status(app, c);
    canvas_present(c);
}
