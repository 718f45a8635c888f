/* ui.c - the services every screen shares (screen.h): navigation and history, the
 * status line's message, the line editor, drawing and list helpers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "screen.h"

/* ---- navigation, messages, the line editor ---------------------------------------------- */

int ui_edits_changed(Ui *ui, BpError *err) {
    if (ui->model && runs_reload_edits(ui->model, ui->store, err) != 0) return -1;
    ui->generation++;
    return 0;
}

/* ---- messages, places, history ------------------------------------------------------ */

void ui_message(Ui *ui, int is_error, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ui->message, sizeof ui->message, fmt, ap);
    va_end(ap);
    ui->message_error = is_error;
}

ListView *ui_current_list(Ui *ui) {
    const ScreenClass *sc = ui->screens[ui->screen];
    return sc->list ? sc->list(ui->states[ui->screen]) : NULL;
}

static Place current_place(Ui *ui) {
    Place p = {ui->screen, ui->token, ui->sense, 0, 0};
    ListView *l = ui_current_list(ui);
    if (l) p.cursor = l->cursor;
    return p;
}

static void push_history(Ui *ui, Place here) {
    if (here.screen == SCREEN_HELP) return;
    if (ui->history_len > 0) {  /* the same place twice in a row is one step back */
        Place *last = &ui->history[ui->history_len - 1];
        if (last->screen == here.screen && last->token == here.token && last->sense == here.sense) {
            *last = here;
            return;
        }
    }
    if (ui->history_len == UI_HISTORY_MAX) {
        memmove(ui->history, ui->history + 1, (UI_HISTORY_MAX - 1) * sizeof(Place));
        ui->history_len--;
    }
    ui->history[ui->history_len++] = here;
}

int ui_open(Ui *ui, ScreenId screen, int token, int sense) {
    Place here = current_place(ui), at = {screen, token, sense, 0, 0};
    const ScreenClass *sc = ui->screens[screen];
    if (sc->enter && sc->enter(ui->states[screen], ui, &at) != 0) return -1;
    /* showing the same screen again on no new subject is no step in the history */
    if (screen != here.screen || token >= 0) push_history(ui, here);
    ui->screen = screen;
    return 0;
}

void ui_open_help(Ui *ui) {
    const ScreenClass *sc = ui->screens[SCREEN_HELP];
    ui->help_return = ui->screen;
    if (sc->enter) sc->enter(ui->states[SCREEN_HELP], ui, &(Place){SCREEN_HELP, -1, -1, 0, 0});
    ui->screen = SCREEN_HELP;
}

void ui_back(Ui *ui) {
    if (ui->screen == SCREEN_HELP) {
        ui->screen = ui->help_return;
        return;
    }
    if (ui->history_len == 0) {
        ui_message(ui, 0, "at the start of the history");
        return;
    }
    Place p = ui->history[--ui->history_len];
    p.returning = 1;
    ui->token = p.token;
    ui->sense = p.sense;
    const ScreenClass *sc = ui->screens[p.screen];
    if (sc->enter && sc->enter(ui->states[p.screen], ui, &p) != 0) {
        /* a place its screen cannot show again (the edit screen holds one edit): its
         * word, or the search */
        p.screen = p.token >= 0 && p.screen != SCREEN_WORD ? SCREEN_WORD : SCREEN_SEARCH;
        sc = ui->screens[p.screen];
        if (sc->enter) sc->enter(ui->states[p.screen], ui, &p);
    }
    ui->screen = p.screen;
    ListView *l = ui_current_list(ui);
    if (l) {
        l->cursor = p.cursor;
        list_set_count(l, l->count);
    }
}

/* ---- the line editor ---------------------------------------------------------------- */

void ui_open_input(Ui *ui, LineEdit *input, const char *label, const char *initial) {
    input->active = 1;
    input->label = label;
    if (initial != input->text) snprintf(input->text, sizeof input->text, "%s", initial ? initial : "");
    input->len = (int)strlen(input->text);
    ui->input = input;
}

int ui_input_key(Ui *ui, int key) {
    LineEdit *in = ui->input;
    if (!in || !in->active) return 0;
    if (key == BK_ENTER || key == BK_ESC) {
        in->active = 0;
        ui->input = NULL;
        if (in->done) in->done(in->owner, ui, key == BK_ENTER);
        return 1;
    }
    if (key == BK_BACKSPACE) {
        if (in->len > 0) {  /* remove one whole UTF-8 character */
            do in->len--;
            while (in->len > 0 && ((unsigned char)in->text[in->len] & 0xC0) == 0x80);
            in->text[in->len] = 0;
            if (in->changed) in->changed(in->owner, ui);
        }
        return 1;
    }
    if (key == BK_CTRL('u')) {
        in->len = 0;
        in->text[0] = 0;
        if (in->changed) in->changed(in->owner, ui);
        return 1;
    }
    if (key >= 0x20 && key < BK_SPECIAL) {
        char utf8[4];
        int n = utf8_encode(key, utf8);
        if (n > 0 && in->len + n < (int)sizeof in->text) {
            memcpy(in->text + in->len, utf8, (size_t)n);
            in->len += n;
            in->text[in->len] = 0;
            if (in->changed) in->changed(in->owner, ui);
        }
        return 1;
    }
    /* list keys (Up/Down on the search results) fall through to the screen */
    return !(key == BK_UP || key == BK_DOWN || key == BK_PGUP || key == BK_PGDN || key == BK_TAB ||
             key == BK_CTRL('c'));
}


const char *ui_token_text(const Ui *ui, int id, char *out, size_t out_size) {
    const char *text = store_token_text(ui->store, id);
    const Tokenizer *tok = ui->model ? ui->model->tokenizer : NULL;
    /* a database exported without a tokenizer names tokens "<id N>": the model's
     * tokenizer, when there is one, knows better */
    if (text && !strncmp(text, "<id ", 4) && tok && id < tokenizer_vocab_size(tok))
        return tokenizer_token_readable(tok, id, out, out_size);
    snprintf(out, out_size, "%s", text ? text : "");
    return out;
}

const char *ui_word_label(const Ui *ui, int id, char *out, size_t out_size) {
    char readable[160];
    const char *text = ui_token_text(ui, id, readable, sizeof readable);
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

static void title_word(const Ui *ui, int with_sense, char *out, size_t out_size) {
    out[0] = 0;
    if (ui->token < 0) return;
    char word[160];
    int n = snprintf(out, out_size, " | %s #%d", ui_word_label(ui, ui->token, word, sizeof word), ui->token);
    if (with_sense && ui->sense >= 0 && n > 0 && (size_t)n < out_size)
        snprintf(out + n, out_size - (size_t)n, " sense %d/%d", ui->sense, ui->k);
}

void ui_title_word(void *self, Ui *ui, char *out, size_t out_size) {
    (void)self;
    title_word(ui, 0, out, out_size);
}

void ui_title_word_sense(void *self, Ui *ui, char *out, size_t out_size) {
    (void)self;
    title_word(ui, 1, out, out_size);
}

void *ui_state_alloc(size_t size, BpError *err) {
    void *state = calloc(1, size);
    if (!state) bp_fail(err, "out of memory");
    return state;
}

int ui_top_row(const Canvas *c) {
    (void)c;
    return 1;
}
int ui_bottom_row(const Canvas *c) { return c->rows - 1; }

int ui_draw_word_score(const Ui *ui, Canvas *c, int row, int col, int max, const WordScore *ws,
                       int selected, const char *fmt) {
    char label[160], score[32];
    ui_word_label(ui, ws->id, label, sizeof label);
    snprintf(score, sizeof score, fmt, ws->score);
    CanvasStyle st = selected ? STYLE_SELECTED : ws->score >= 0 ? STYLE_PROMOTED : STYLE_SUPPRESSED;
    if (selected) canvas_fill(c, row, col, max, STYLE_SELECTED);
    int x = canvas_text(c, row, col, max, st, label);
    if (x + 1 < max) x += 1 + canvas_text(c, row, col + x + 1, max - x - 1, selected ? st : STYLE_DIM, score);
    return x;
}

void ui_draw_needs_model(Canvas *c, const char *what) {
    int row = ui_top_row(c) + 1;
    canvas_printf(c, row, 2, -1, STYLE_ERROR, "The %s screen needs --model.", what);
    canvas_text(c, row + 2, 2, -1, STYLE_NORMAL,
                "Run: backpack browse --db FILE --model DIR (the model the database was");
    canvas_text(c, row + 3, 2, -1, STYLE_NORMAL,
                "exported from). Without it, senses can be browsed: / searches, w shows a word.");
}

void ui_draw_progress(const Ui *ui, Canvas *c, int row, int col, int width, JobKind kind) {
    int done, total;
    runs_progress(ui->model, kind, &done, &total);
    canvas_printf(c, row, col, width, STYLE_DIM, "running the model: token %d/%d", done, total);
}

void ui_draw_continuation(const Ui *ui, Canvas *c, int row, int col, int width, const Prediction *p) {
    /* the prompt's last tokens dimmed, then the continuation */
    const ModelRuns *r = ui->model;
    int x = 0;
    char text[160];
    for (int i = r->n_tokens > 2 ? r->n_tokens - 2 : 0; i < r->n_tokens; i++)
        x += canvas_text(c, row, col + x, width - x, STYLE_DIM, ui_token_text(ui, r->tokens[i], text, sizeof text));
    for (int i = 0; i < p->n_continuation && x < width; i++) {
        ui_token_text(ui, p->continuation[i], text, sizeof text);
        x += canvas_text(c, row, col + x, width - x, STYLE_PROMOTED, text);
    }
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
