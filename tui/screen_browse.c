/* screen_browse.c - the screens that need only the database: search, word, sense. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

/* ---- shared drawing ------------------------------------------------------------------ */

/* "label +1.23" in a style by sign; returns columns drawn. */
static int draw_word_score(App *app, Canvas *c, int row, int col, int max, const WordScore *ws,
                           int selected, const char *fmt) {
    char label[160], score[32];
    app_word_label(app, ws->id, label, sizeof label);
    snprintf(score, sizeof score, fmt, ws->score);
    CanvasStyle st = selected ? STYLE_SELECTED : ws->score >= 0 ? STYLE_PROMOTED : STYLE_SUPPRESSED;
    if (selected) canvas_fill(c, row, col, max, STYLE_SELECTED);
    int x = canvas_text(c, row, col, max, st, label);
    if (x + 1 < max) x += 1 + canvas_text(c, row, col + x + 1, max - x - 1, selected ? st : STYLE_DIM, score);
    return x;
}

/* ---- search ------------------------------------------------------------------------- */

static void search_update(App *app) {
    SearchView *sv = &app->search;
    const char *q = sv->input.text;
    sv->count = 0;
    sv->closest = 0;
    if (q[0] == '#' && q[1]) {  /* "#123": a token id */
        char *end;
        long id = strtol(q + 1, &end, 10);
        if (!*end && id >= 0 && id < app->V) sv->ids[sv->count++] = (int)id;
    } else if (q[0]) {
        sv->count = store_prefix_search(app->store, q, sv->ids, APP_SEARCH_MAX);
        if (sv->count == 0) {
            sv->count = store_closest_tokens(app->store, q, sv->ids, 20);
            sv->closest = 1;
        }
    }
    sv->list.cursor = sv->list.top = 0;
    list_set_count(&sv->list, sv->count);
}

static void search_done(App *app, int accepted) {
    SearchView *sv = &app->search;
    if (!accepted) return;
    if (sv->count == 0) {
        app_message(app, 1, "no word matches '%s'", sv->input.text);
        return;
    }
    app_open_word(app, sv->ids[sv->list.cursor]);
}

void search_start(App *app) {
    app_goto(app, SCREEN_SEARCH);
    SearchView *sv = &app->search;
    sv->input.changed = search_update;
    sv->input.done = search_done;
    app_open_input(app, &sv->input, "search: ", "");
    search_update(app);
}

void search_step(App *app, int direction) {
    SearchView *sv = &app->search;
    if (sv->count == 0) {
        app_message(app, 0, "no search results: / to search");
        return;
    }
    int i = sv->list.cursor + direction;
    if (i >= sv->count) {
        i = 0;
        app_message(app, 0, "search wrapped to the first result");
    } else if (i < 0) {
        i = sv->count - 1;
        app_message(app, 0, "search wrapped to the last result");
    }
    sv->list.cursor = i;
    if (app->screen == SCREEN_SEARCH) return;
    char keep[256];
    snprintf(keep, sizeof keep, "%s", app->message);
    app_open_word(app, sv->ids[i]);
    if (keep[0] && !app->message[0]) app_message(app, 0, "%s", keep);
}

static void act_search_open(App *app) {
    SearchView *sv = &app->search;
    if (sv->count == 0) {
        app_message(app, 0, "no results: / to search");
        return;
    }
    app_open_word(app, sv->ids[sv->list.cursor]);
}

static void act_search_next(App *app) {
    SearchView *sv = &app->search;
    if (sv->count) sv->list.cursor = (sv->list.cursor + 1) % sv->count;
}
static void act_search_prev(App *app) {
    SearchView *sv = &app->search;
    if (sv->count) sv->list.cursor = (sv->list.cursor + sv->count - 1) % sv->count;
}

const KeyBinding search_keys[] = {
    {{BK_ENTER, 'l', BK_RIGHT}, "Enter l Right", "open the selected word", act_search_open},
    {{'n', 0}, "n", "next result", act_search_next},
    {{'N', 0}, "N", "previous result", act_search_prev},
    {{0}, NULL, NULL, NULL},
};

void search_draw(App *app, Canvas *c) {
    SearchView *sv = &app->search;
    int row = app_top_row(c) + 1, bottom = app_bottom_row(c);
    if (!sv->input.text[0] && !sv->input.active) {
        canvas_text(c, row, 2, -1, STYLE_TITLE, "Sense browser");
        canvas_printf(c, row + 2, 2, -1, STYLE_NORMAL,
                      "%d words, %d senses each. Press / and type the start of a word;", app->V,
                      app->k);
        canvas_text(c, row + 3, 2, -1, STYLE_NORMAL,
                    "Enter opens it. #123 finds token 123. ? lists every key, q quits.");
        if (!app->have_model)
            canvas_text(c, row + 5, 2, -1, STYLE_DIM,
                        "No --model: the prompt and edit screens are unavailable.");
        return;
    }
    if (sv->closest)
        canvas_printf(c, row, 2, -1, STYLE_TITLE, "No word starts with '%s'; the closest words:",
                      sv->input.text);
    else
        canvas_printf(c, row, 2, -1, STYLE_TITLE, "%d%s words start with '%s'", sv->count,
                      sv->count == APP_SEARCH_MAX ? "+" : "", sv->input.text);
    row += 2;
    int visible = bottom - row;
    list_scroll(&sv->list, visible);
    for (int i = sv->list.top; i < sv->count && row < bottom; i++, row++) {
        int sel = i == sv->list.cursor;
        CanvasStyle st = sel ? STYLE_SELECTED : STYLE_NORMAL;
        char label[160];
        if (sel) canvas_fill(c, row, 0, c->cols, STYLE_SELECTED);
        canvas_printf(c, row, 2, 8, sel ? st : STYLE_DIM, "#%d", sv->ids[i]);
        canvas_text(c, row, 10, 40, st, app_word_label(app, sv->ids[i], label, sizeof label));
        canvas_text(c, row, 52, -1, sel ? st : STYLE_DIM, store_token_string(app->store, sv->ids[i]));
    }
}

/* ---- word ------------------------------------------------------------------------------ */

int word_load(App *app, int token) {
    WordView *wv = &app->word;
    if (token < 0 || token >= app->V) {
        app_message(app, 1, "token %d is out of range", token);
        return -1;
    }
    if (wv->token == token && wv->generation == app->generation) return 0;
    int k = app->k, n = APP_WORD_WORDS;
    if (!wv->info) {
        wv->info = calloc((size_t)k, sizeof *wv->info);
        wv->top = calloc((size_t)k * n, sizeof *wv->top);
        wv->bottom = calloc((size_t)k * n, sizeof *wv->bottom);
        if (!wv->info || !wv->top || !wv->bottom) {
            app_message(app, 1, "out of memory");
            return -1;
        }
    }
    BpError err = {0};
    for (int l = 0; l < k; l++) {
        if (store_sense_info(app->store, token, l, &wv->info[l], &err) != 0 ||
            store_sense_words(app->store, token, l, n, wv->top + l * n, wv->bottom + l * n, &err) < 0) {
            wv->token = -1;
            app_message(app, 1, "%s", err.msg);
            return -1;
        }
    }
    wv->token = token;
    wv->generation = app->generation;
    wv->k = k;
    wv->n = n;
    list_set_count(&wv->list, k);
    return 0;
}

static void draw_sense_mark(Canvas *c, int row, int col, const SenseInfo *si, CanvasStyle st) {
    if (si->vector_edited || si->weight != 1.0f)
        canvas_text(c, row, col, 1, st == STYLE_SELECTED ? st : STYLE_ERROR, "*");
}

void word_draw(App *app, Canvas *c) {
    WordView *wv = &app->word;
    int row = app_top_row(c), bottom = app_bottom_row(c);
    if (wv->token < 0) {
        canvas_text(c, row + 1, 2, -1, STYLE_NORMAL, "No word yet: press / to search.");
        return;
    }
    char label[160];
    canvas_printf(c, row, 1, -1, STYLE_TITLE, "%s  #%d  %s  (%d senses)",
                  app_word_label(app, wv->token, label, sizeof label), wv->token,
                  store_token_string(app->store, wv->token), wv->k);
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
                snprintf(entry, sizeof entry, "%s %+.1f", app_word_label(app, ws[j].id, wl, sizeof wl),
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
                  si->vector_edited ? " (edited)" : "", si->weight,
                  "   Enter: open   e: edit");
    for (int side = 0; side < 2 && row < bottom; side++, row++) {
        const WordScore *ws = (side ? wv->bottom : wv->top) + l * wv->n;
        int x = 1 + canvas_text(c, row, 1, -1, STYLE_DIM, side ? "bottom:" : "top:   ");
        for (int j = 0; j < wv->n && x < c->cols; j++)
            x += 2 + draw_word_score(app, c, row, x + 1, c->cols - x - 1, &ws[j], 0, "%+.3f");
    }
}

static void act_word_open(App *app) {
    if (app->word.token >= 0) app_open_sense(app, app->word.token, app->word.list.cursor);
}
static void act_word_edit(App *app) {
    if (app->word.token >= 0) edit_begin(app, app->word.token, app->word.list.cursor);
}

const KeyBinding word_keys[] = {
    {{BK_ENTER, 'l', BK_RIGHT}, "Enter l Right", "open the selected sense", act_word_open},
    {{'e', 0}, "e", "edit the selected sense", act_word_edit},
    {{0}, NULL, NULL, NULL},
};

/* ---- sense ------------------------------------------------------------------------------ */

int sense_try_nearest(App *app) {
    SenseView *sv = &app->sense_view;
    if (!sv->near_pending) return 0;
    if (!app->loader) app->loader = index_loader_start(app->db_path);
    if (!app->loader) {
        sv->near_pending = 0;
        sv->near_error = 1;
        snprintf(sv->near_msg, sizeof sv->near_msg, "cannot start loading the nearest-neighbour index");
        return 0;
    }
    IndexState state = index_loader_poll(app->loader, NULL);
    if (state == INDEX_LOADING && app->wait_for_index) {
        app->key_note = "index-load";
        state = index_loader_wait(app->loader);
    }
    if (state == INDEX_LOADING) return 1;
    sv->near_pending = 0;
    if (state == INDEX_FAILED) {
        sv->near_error = 1;
        snprintf(sv->near_msg, sizeof sv->near_msg, "%s", index_loader_error(app->loader));
        return 0;
    }
    /* the query is the sense in force, read through the main store */
    BpError err = {0};
    float *query = calloc((size_t)app->k * app->d, sizeof(float));
    int m = -1;
    if (!query)
        bp_fail(&err, "out of memory");
    else if (store_sense_vector(app->store, sv->token, sv->sense, STORE_IN_FORCE,
                                query + (size_t)sv->sense * app->d, &err) == 0)
        m = store_nearest(index_loader_store(app->loader), query, sv->sense, sv->token, APP_LIST_WORDS,
                          sv->near, &err);
    free(query);
    if (m < 0) {
        sv->near_error = 1;
        snprintf(sv->near_msg, sizeof sv->near_msg, "%s", err.msg);
        return 0;
    }
    sv->n_near = m;
    for (int i = 0; i < m; i++) {
        int got = store_sense_words(app->store, sv->near[i].id, sv->sense, APP_NEIGHBOUR_WORDS,
                                    sv->near_top[i], NULL, &err);
        for (int j = got < 0 ? 0 : got; j < APP_NEIGHBOUR_WORDS; j++) sv->near_top[i][j].id = -1;
    }
    list_set_count(&sv->lists[2], sv->n_near);
    return 0;
}

int sense_load(App *app, int token, int sense) {
    SenseView *sv = &app->sense_view;
    if (token < 0 || token >= app->V || sense < 0 || sense >= app->k) {
        app_message(app, 1, "no sense %d of token %d", sense, token);
        return -1;
    }
    if (sv->token == token && sv->sense == sense && sv->generation == app->generation) return 0;
    BpError err = {0};
    int n = app->info->top_n < APP_LIST_WORDS ? app->info->top_n : APP_LIST_WORDS;
    if (n < 1) n = APP_LIST_WORDS;
    int got;
    if (store_sense_info(app->store, token, sense, &sv->info, &err) != 0 ||
        (got = store_sense_words(app->store, token, sense, n, sv->top, sv->bottom, &err)) < 0) {
        sv->token = -1;
        app_message(app, 1, "%s", err.msg);
        return -1;
    }
    sv->n_top = sv->n_bottom = got;
    sv->token = token;
    sv->sense = sense;
    sv->generation = app->generation;
    /* nearest neighbours by this sense's cosine, and their same sense: when the index is in */
    sv->near_error = 0;
    sv->n_near = 0;
    sv->near_pending = 1;
    list_set_count(&sv->lists[0], sv->n_top);
    list_set_count(&sv->lists[1], sv->n_bottom);
    list_set_count(&sv->lists[2], 0);
    sense_try_nearest(app);
    return 0;
}

void sense_draw(App *app, Canvas *c) {
    SenseView *sv = &app->sense_view;
    int row = app_top_row(c), bottom = app_bottom_row(c);
    sense_try_nearest(app);  /* the index may have come in since the last draw */
    if (sv->token < 0) {
        canvas_text(c, row + 1, 2, -1, STYLE_NORMAL, "No sense yet: press / to search.");
        return;
    }
    char label[160];
    canvas_printf(c, row, 1, -1, STYLE_TITLE, "%s  #%d  sense %d/%d   norm %.3f%s  weight %.2f",
                  app_word_label(app, sv->token, label, sizeof label), sv->token, sv->sense, app->k,
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
            if (app->loader) index_loader_poll(app->loader, &fraction);
            canvas_printf(c, row, xs[2], ws[2], STYLE_DIM, "loading the index of all senses: %.0f%%",
                          fraction * 100);
            continue;
        }
        const WordScore *list = col == 0 ? sv->top : col == 1 ? sv->bottom : sv->near;
        for (int i = l->top, r = row; i < l->count && r < bottom; i++, r++) {
            int sel = col == sv->column && i == l->cursor;
            if (col < 2) {
                draw_word_score(app, c, r, xs[col], ws[col], &list[i], sel, "%+.2f");
                continue;
            }
            /* neighbour, cosine, then the top words of its same sense */
            char wl[160];
            CanvasStyle st = sel ? STYLE_SELECTED : STYLE_NORMAL;
            if (sel) canvas_fill(c, r, xs[2], 24, STYLE_SELECTED);
            canvas_text(c, r, xs[2], 16, st, app_word_label(app, list[i].id, wl, sizeof wl));
            canvas_printf(c, r, xs[2] + 17, 6, sel ? st : STYLE_DIM, "%.3f", list[i].score);
            int x = 25;
            for (int j = 0; j < APP_NEIGHBOUR_WORDS && sv->near_top[i][j].id >= 0 && x < ws[2]; j++) {
                app_word_label(app, sv->near_top[i][j].id, wl, sizeof wl);
                x += 2 + canvas_text(c, r, xs[2] + x, ws[2] - x, STYLE_PROMOTED, wl);
            }
        }
    }
}

static const WordScore *sense_selected(App *app) {
    SenseView *sv = &app->sense_view;
    ListView *l = &sv->lists[sv->column];
    if (l->count == 0) return NULL;
    const WordScore *list = sv->column == 0 ? sv->top : sv->column == 1 ? sv->bottom : sv->near;
    return &list[l->cursor];
}

static void act_sense_open(App *app) {
    const WordScore *ws = sense_selected(app);
    if (ws) app_open_word(app, ws->id);
}
static void act_sense_same(App *app) {
    const WordScore *ws = sense_selected(app);
    if (ws) app_open_sense(app, ws->id, app->sense_view.sense);
}
static void act_sense_column_next(App *app) { app->sense_view.column = (app->sense_view.column + 1) % 3; }
static void act_sense_column_prev(App *app) { app->sense_view.column = (app->sense_view.column + 2) % 3; }
static void act_sense_step(App *app, int delta) {
    SenseView *sv = &app->sense_view;
    int l = sv->sense + delta;
    if (l < 0 || l >= app->k) return;
    /* stepping through a word's senses is not history: replace the place */
    if (sense_load(app, sv->token, l) == 0) app->sense = l;
}
static void act_sense_next(App *app) { act_sense_step(app, +1); }
static void act_sense_prev(App *app) { act_sense_step(app, -1); }
static void act_sense_edit(App *app) {
    if (app->sense_view.token >= 0) edit_begin(app, app->sense_view.token, app->sense_view.sense);
}

const KeyBinding sense_keys[] = {
    {{BK_ENTER, 'l', BK_RIGHT}, "Enter l Right", "open the selected word", act_sense_open},
    {{'o', 0}, "o", "open the same sense of the selected word", act_sense_same},
    {{BK_TAB, 0}, "Tab", "next column (top, bottom, nearest)", act_sense_column_next},
    {{BK_BTAB, 0}, "S-Tab", "previous column", act_sense_column_prev},
    {{']', 0}, "]", "next sense of this word", act_sense_next},
    {{'[', 0}, "[", "previous sense of this word", act_sense_prev},
    {{'e', 0}, "e", "edit this sense", act_sense_edit},
    {{0}, NULL, NULL, NULL},
};
