/* screen_word.c - the word screen: a word's k senses at once. */
#include "screen_word.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *word_init(Ui *ui, BpError *err) {
    WordScreen *wv = calloc(1, sizeof *wv);
    if (wv) {
        wv->token = -1;
        wv->info = calloc((size_t)ui->k, sizeof *wv->info);
        wv->top = calloc((size_t)ui->k * WORD_WORDS, sizeof *wv->top);
        wv->bottom = calloc((size_t)ui->k * WORD_WORDS, sizeof *wv->bottom);
    }
    if (!wv || !wv->info || !wv->top || !wv->bottom) {
        if (wv) {
            free(wv->info);
            free(wv->top);
            free(wv->bottom);
        }
        free(wv);
        bp_fail(err, "out of memory");
        return NULL;
    }
    return wv;
}

static void word_free(void *self) {
    WordScreen *wv = self;
    if (!wv) return;
    free(wv->info);
    free(wv->top);
    free(wv->bottom);
    free(wv);
}

static int word_load(WordScreen *wv, Ui *ui, int token) {
    if (token < 0 || token >= ui->V) {
        ui_message(ui, 1, "token %d is out of range", token);
        return -1;
    }
    if (wv->token == token && wv->generation == ui->generation) return 0;
    int k = ui->k, n = WORD_WORDS;
    BpError err = {0};
    for (int l = 0; l < k; l++) {
        if (store_sense_info(ui->store, token, l, &wv->info[l], &err) != 0 ||
            store_sense_words(ui->store, token, l, n, wv->top + l * n, wv->bottom + l * n, &err) < 0) {
            wv->token = -1;
            ui_message(ui, 1, "%s", err.msg);
            return -1;
        }
    }
    wv->token = token;
    wv->generation = ui->generation;
    wv->k = k;
    wv->n = n;
    list_set_count(&wv->list, k);
    return 0;
}

static int word_enter(void *self, Ui *ui, const Place *at) {
    WordScreen *wv = self;
    if (word_load(wv, ui, at->token) != 0) return -1;
    ui->token = at->token;
    if (at->returning) {
        ui->sense = at->sense;
        return 0;
    }
    if (ui->sense < 0 || ui->sense >= ui->k) ui->sense = 0;
    wv->list.cursor = ui->sense;
    return 0;
}

static void draw_sense_mark(Canvas *c, int row, int col, const SenseInfo *si, CanvasStyle st) {
    if (si->vector_edited || si->weight != 1.0f)
        canvas_text(c, row, col, 1, st == STYLE_SELECTED ? st : STYLE_ERROR, "*");
}

static void word_draw(void *self, Ui *ui, Canvas *c) {
    WordScreen *wv = self;
    int row = ui_top_row(c), bottom = ui_bottom_row(c);
    if (wv->token < 0) {
        canvas_text(c, row + 1, 2, -1, STYLE_NORMAL, "No word yet: press / to search.");
        return;
    }
    char label[160];
    canvas_printf(c, row, 1, -1, STYLE_TITLE, "%s  #%d  %s  (%d senses)",
                  ui_word_label(ui, wv->token, label, sizeof label), wv->token,
                  store_token_string(ui->store, wv->token), wv->k);
    row++;
    int words_col = 14, half = (c->cols - words_col) / 2;
    canvas_text(c, row, 1, -1, STYLE_DIM, "sense   norm");
    canvas_text(c, row, words_col, half, STYLE_DIM, "top words: E C(x)_l highest");
    canvas_text(c, row, words_col + half, -1, STYLE_DIM, "bottom words: lowest");
    row++;
    /* the senses take what the detail of the selected sense (4 rows) leaves */
    int visible = bottom - row - 5;
    if (visible > wv->k) visible = wv->k;
    if (visible < 3) visible = bottom - row;
    list_scroll(&wv->list, visible);
    for (int i = wv->list.top; i < wv->k && row < bottom && i < wv->list.top + visible; i++, row++) {
        int sel = i == wv->list.cursor;
        const SenseInfo *si = &wv->info[i];
        if (sel) canvas_fill(c, row, 0, c->cols, STYLE_SELECTED);
        canvas_printf(c, row, 1, 5, sel ? STYLE_SELECTED : STYLE_NORMAL, "%3d", i);
        draw_sense_mark(c, row, 4, si, sel ? STYLE_SELECTED : STYLE_NORMAL);
        canvas_printf(c, row, 5, 8, sel ? STYLE_SELECTED : STYLE_NORMAL, "%7.2f", si->norm);
        for (int side = 0; side < 2; side++) {
            const WordScore *ws = (side ? wv->bottom : wv->top) + i * wv->n;
            int x = words_col + side * half, end = words_col + (side + 1) * half - 2;
            for (int j = 0; j < wv->n; j++) {
                char wl[160], entry[200];
                snprintf(entry, sizeof entry, "%s %+.1f", ui_word_label(ui, ws[j].id, wl, sizeof wl),
                         ws[j].score);
                int w = utf8_display_width(entry);
                if (x + w > end) break;
                CanvasStyle st = sel ? STYLE_SELECTED : side ? STYLE_SUPPRESSED : STYLE_PROMOTED;
                x += canvas_text(c, row, x, w, st, wl);
                char num[32];
                snprintf(num, sizeof num, " %+.1f", ws[j].score);
                x += canvas_text(c, row, x, -1, sel ? STYLE_SELECTED : STYLE_DIM, num);
                x += 2;
            }
        }
    }
    /* the selected sense in detail */
    int l = wv->list.cursor;
    const SenseInfo *si = &wv->info[l];
    row++;
    if (row + 3 > bottom) return;
    canvas_printf(c, row++, 1, -1, STYLE_TITLE, "sense %d: norm %.3f%s, weight %.2f%s", l, si->norm,
                  si->vector_edited ? " (edited)" : "", si->weight, "   Enter: open   e: edit");
    for (int side = 0; side < 2 && row < bottom; side++, row++) {
        const WordScore *ws = (side ? wv->bottom : wv->top) + l * wv->n;
        int x = 1 + canvas_text(c, row, 1, -1, STYLE_DIM, side ? "bottom:" : "top:   ");
        for (int j = 0; j < wv->n && x < c->cols; j++)
            x += 2 + ui_draw_word_score(ui, c, row, x + 1, c->cols - x - 1, &ws[j], 0, "%+.3f");
    }
}

static void act_word_open(void *self, Ui *ui) {
    WordScreen *wv = self;
    if (wv->token >= 0) ui_open(ui, SCREEN_SENSE, wv->token, wv->list.cursor);
}
static void act_word_edit(void *self, Ui *ui) {
    WordScreen *wv = self;
    if (wv->token >= 0) ui_open(ui, SCREEN_EDIT, wv->token, wv->list.cursor);
}

static const KeyBinding word_keys[] = {
    {{BK_ENTER, 'l', BK_RIGHT}, "Enter l Right", "open the selected sense", act_word_open},
    {{'e', 0}, "e", "edit the selected sense", act_word_edit},
    {{0}, NULL, NULL, NULL},
};

static ListView *word_list(void *self) { return &((WordScreen *)self)->list; }

const ScreenClass word_screen = {
    .name = "word",
    .summary = "a word's k senses: top and bottom words, norms",
    .keys = word_keys,
    .init = word_init,
    .free = word_free,
    .enter = word_enter,
    .draw = word_draw,
    .list = word_list,
    .title = ui_title_word_sense,
};
