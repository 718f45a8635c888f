/* ui.c - the drawing and list helpers every screen shares (screen.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "screen.h"

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
