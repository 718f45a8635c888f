/* screen_sense.c - the sense screen: one sense in detail, and its neighbours. */
#include "screen_sense.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *sense_init(Ui *ui, BpError *err) {
    (void)ui;
    SenseScreen *sv = ui_state_alloc(sizeof *sv, err);
    if (sv) sv->token = -1;
    return sv;
}

int sense_waits_for_index(const SenseScreen *sv) { return sv->near_pending; }

/* Fills the neighbours once the index is ready (waits for it when ui->wait_for_index). */
static void sense_try_nearest(SenseScreen *sv, Ui *ui) {
    if (!sv->near_pending) return;
    if (!ui->loader) ui->loader = index_loader_start(ui->db_path);
    if (!ui->loader) {
        sv->near_pending = 0;
        sv->near_error = 1;
        snprintf(sv->near_msg, sizeof sv->near_msg, "cannot start loading the nearest-neighbour index");
        return;
    }
    IndexState state = index_loader_poll(ui->loader, NULL);
    if (state == INDEX_LOADING && ui->wait_for_index) {
        ui->key_note = "index-load";
        state = index_loader_wait(ui->loader);
    }
    if (state == INDEX_LOADING) return;
    sv->near_pending = 0;
    if (state == INDEX_FAILED) {
        sv->near_error = 1;
        snprintf(sv->near_msg, sizeof sv->near_msg, "%s", index_loader_error(ui->loader));
        return;
    }
    /* the query is the sense in force, read through the main store */
    BpError err = {0};
    float *query = calloc((size_t)ui->k * ui->d, sizeof(float));
    int m = -1;
    if (!query)
        bp_fail(&err, "out of memory");
    else if (store_sense_vector(ui->store, sv->token, sv->sense, STORE_IN_FORCE,
                                query + (size_t)sv->sense * ui->d, &err) == 0)
        m = store_nearest(index_loader_store(ui->loader), query, sv->sense, sv->token, SENSE_WORDS,
                          sv->near, &err);
    free(query);
    if (m < 0) {
        sv->near_error = 1;
        snprintf(sv->near_msg, sizeof sv->near_msg, "%s", err.msg);
        return;
    }
    sv->n_near = m;
    for (int i = 0; i < m; i++) {
        int got = store_sense_words(ui->store, sv->near[i].id, sv->sense, SENSE_NEIGHBOUR_WORDS,
                                    sv->near_top[i], NULL, &err);
        for (int j = got < 0 ? 0 : got; j < SENSE_NEIGHBOUR_WORDS; j++) sv->near_top[i][j].id = -1;
    }
    list_set_count(&sv->lists[2], sv->n_near);
}

static int sense_load(SenseScreen *sv, Ui *ui, int token, int sense) {
    if (token < 0 || token >= ui->V || sense < 0 || sense >= ui->k) {
        ui_message(ui, 1, "no sense %d of token %d", sense, token);
        return -1;
    }
    if (sv->token == token && sv->sense == sense && sv->generation == ui->generation) return 0;
    BpError err = {0};
    int n = ui->info->top_n < SENSE_WORDS ? ui->info->top_n : SENSE_WORDS;
    if (n < 1) n = SENSE_WORDS;
    int got;
    if (store_sense_info(ui->store, token, sense, &sv->info, &err) != 0 ||
        (got = store_sense_words(ui->store, token, sense, n, sv->top, sv->bottom, &err)) < 0) {
        sv->token = -1;
        ui_message(ui, 1, "%s", err.msg);
        return -1;
    }
    sv->n_top = sv->n_bottom = got;
    sv->token = token;
    sv->sense = sense;
    sv->generation = ui->generation;
    /* nearest neighbours by this sense's cosine, and their same sense: when the index is in */
    sv->near_error = 0;
    sv->n_near = 0;
    sv->near_pending = 1;
    list_set_count(&sv->lists[0], sv->n_top);
    list_set_count(&sv->lists[1], sv->n_bottom);
    list_set_count(&sv->lists[2], 0);
    sense_try_nearest(sv, ui);
    return 0;
}

static int sense_enter(void *self, Ui *ui, const Place *at) {
    if (sense_load(self, ui, at->token, at->sense) != 0) return -1;
    ui->token = at->token;
    ui->sense = at->sense;
    return 0;
}

static void sense_draw(void *self, Ui *ui, Canvas *c) {
    SenseScreen *sv = self;
    int row = ui_top_row(c), bottom = ui_bottom_row(c);
    sense_try_nearest(sv, ui);  /* the index may have come in since the last draw */
    if (sv->token < 0) {
        canvas_text(c, row + 1, 2, -1, STYLE_NORMAL, "No sense yet: press / to search.");
        return;
    }
    char label[160];
    canvas_printf(c, row, 1, -1, STYLE_TITLE, "%s  #%d  sense %d/%d   norm %.3f%s  weight %.2f",
                  ui_word_label(ui, sv->token, label, sizeof label), sv->token, sv->sense, ui->k,
                  sv->info.norm, sv->info.vector_edited ? " (edited)" : "", sv->info.weight);
    row += 1;
    /* narrower word columns on a narrow terminal leave the neighbours room */
    int w0 = c->cols >= 110 ? 26 : 20, w1 = w0, x2 = 1 + w0 + w1;
    const char *heads[3] = {"top words", "bottom words", NULL};
    char near_head[96];
    snprintf(near_head, sizeof near_head, "nearest (cos of sense %d)  their sense %d's top words",
             sv->sense, sv->sense);
    heads[2] = near_head;
    int xs[3] = {1, 1 + w0, x2}, ws[3] = {w0 - 1, w1 - 1, c->cols - x2};
    for (int i = 0; i < 3; i++)
        canvas_text(c, row, xs[i], ws[i], sv->column == i ? STYLE_TITLE : STYLE_DIM, heads[i]);
    row++;
    int visible = bottom - row;
    for (int col = 0; col < 3; col++) {
        ListView *l = &sv->lists[col];
        list_scroll(l, visible);
        if (col == 2 && sv->near_error) {
            canvas_text(c, row, xs[2], ws[2], STYLE_ERROR, sv->near_msg);
            continue;
        }
        if (col == 2 && sv->near_pending) {
            double fraction = 0;
            if (ui->loader) index_loader_poll(ui->loader, &fraction);
            canvas_printf(c, row, xs[2], ws[2], STYLE_DIM, "loading the index of all senses: %.0f%%",
                          fraction * 100);
            continue;
        }
        const WordScore *list = col == 0 ? sv->top : col == 1 ? sv->bottom : sv->near;
        for (int i = l->top, r = row; i < l->count && r < bottom; i++, r++) {
            int sel = col == sv->column && i == l->cursor;
            if (col < 2) {
                ui_draw_word_score(ui, c, r, xs[col], ws[col], &list[i], sel, "%+.2f");
                continue;
            }
            /* neighbour, cosine, then the top words of its same sense */
            char wl[160];
            CanvasStyle st = sel ? STYLE_SELECTED : STYLE_NORMAL;
            if (sel) canvas_fill(c, r, xs[2], 24, STYLE_SELECTED);
            canvas_text(c, r, xs[2], 16, st, ui_word_label(ui, list[i].id, wl, sizeof wl));
            canvas_printf(c, r, xs[2] + 17, 6, sel ? st : STYLE_DIM, "%.3f", list[i].score);
            int x = 25;
            for (int j = 0; j < SENSE_NEIGHBOUR_WORDS && sv->near_top[i][j].id >= 0 && x < ws[2]; j++) {
                ui_word_label(ui, sv->near_top[i][j].id, wl, sizeof wl);
                x += 2 + canvas_text(c, r, xs[2] + x, ws[2] - x, STYLE_PROMOTED, wl);
            }
        }
    }
}

static const WordScore *sense_selected(SenseScreen *sv) {
    ListView *l = &sv->lists[sv->column];
    if (l->count == 0) return NULL;
    const WordScore *list = sv->column == 0 ? sv->top : sv->column == 1 ? sv->bottom : sv->near;
    return &list[l->cursor];
}

static void act_sense_open(void *self, Ui *ui) {
    const WordScore *ws = sense_selected(self);
    if (ws) ui_open(ui, SCREEN_WORD, ws->id, -1);
}
static void act_sense_same(void *self, Ui *ui) {
    SenseScreen *sv = self;
    const WordScore *ws = sense_selected(sv);
    if (ws) ui_open(ui, SCREEN_SENSE, ws->id, sv->sense);
}
static void act_sense_column_next(void *self, Ui *ui) {
    (void)ui;
    SenseScreen *sv = self;
    sv->column = (sv->column + 1) % 3;
}
static void act_sense_column_prev(void *self, Ui *ui) {
    (void)ui;
    SenseScreen *sv = self;
    sv->column = (sv->column + 2) % 3;
}
static void sense_step(SenseScreen *sv, Ui *ui, int delta) {
    int l = sv->sense + delta;
    if (l < 0 || l >= ui->k) return;
    /* stepping through a word's senses is not history: replace the place */
    if (sense_load(sv, ui, sv->token, l) == 0) ui->sense = l;
}
static void act_sense_next(void *self, Ui *ui) { sense_step(self, ui, +1); }
static void act_sense_prev(void *self, Ui *ui) { sense_step(self, ui, -1); }
static void act_sense_edit(void *self, Ui *ui) {
    SenseScreen *sv = self;
    if (sv->token >= 0) ui_open(ui, SCREEN_EDIT, sv->token, sv->sense);
}

static const KeyBinding sense_keys[] = {
    {{BK_ENTER, 'l', BK_RIGHT}, "Enter l Right", "open the selected word", act_sense_open},
    {{'o', 0}, "o", "open the same sense of the selected word", act_sense_same},
    {{BK_TAB, 0}, "Tab", "next column (top, bottom, nearest)", act_sense_column_next},
    {{BK_BTAB, 0}, "S-Tab", "previous column", act_sense_column_prev},
    {{']', 0}, "]", "next sense of this word", act_sense_next},
    {{'[', 0}, "[", "previous sense of this word", act_sense_prev},
    {{'e', 0}, "e", "edit this sense", act_sense_edit},
    {{0}, NULL, NULL, NULL},
};

static ListView *sense_list(void *self) {
    SenseScreen *sv = self;
    return &sv->lists[sv->column];
}

const ScreenClass sense_screen = {
    .name = "sense",
    .summary = "one sense: top, bottom and nearest words",
    .keys = sense_keys,
    .init = sense_init,
    .free = free,
    .enter = sense_enter,
    .draw = sense_draw,
    .list = sense_list,
    .title = ui_title_word_sense,
};
