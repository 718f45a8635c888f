/* screen_search.c - the search screen: type-ahead over the vocabulary. */
#include "screen_search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void search_update(void *self, Ui *ui) {
    SearchScreen *sv = self;
    const char *q = sv->input.text;
    sv->count = 0;
    sv->closest = 0;
    if (q[0] == '#' && q[1]) {  /* "#123": a token id */
        char *end;
        long id = strtol(q + 1, &end, 10);
        if (!*end && id >= 0 && id < ui->V) sv->ids[sv->count++] = (int)id;
    } else if (q[0]) {
        sv->count = store_prefix_search(ui->store, q, sv->ids, SEARCH_MAX);
        if (sv->count == 0) {
            sv->count = store_closest_tokens(ui->store, q, sv->ids, 20);
            sv->closest = 1;
        }
    }
    sv->list.cursor = sv->list.top = 0;
    list_set_count(&sv->list, sv->count);
}

static void search_done(void *self, Ui *ui, int accepted) {
    SearchScreen *sv = self;
    if (!accepted) return;
    if (sv->count == 0) {
        ui_message(ui, 1, "no word matches '%s'", sv->input.text);
        return;
    }
    ui_open(ui, SCREEN_WORD, sv->ids[sv->list.cursor], -1);
}

static void *search_init(Ui *ui, BpError *err) {
    (void)ui;
    return ui_state_alloc(sizeof(SearchScreen), err);
}

static int search_enter(void *self, Ui *ui, const Place *at) {
    SearchScreen *sv = self;
    if (at->returning) return 0;  /* back through the history: the results as they were */
    sv->input.owner = sv;
    sv->input.changed = search_update;
    sv->input.done = search_done;
    ui_open_input(ui, &sv->input, "search: ", "");
    search_update(sv, ui);
    return 0;
}

void search_step(SearchScreen *sv, Ui *ui, int direction) {
    if (sv->count == 0) {
        ui_message(ui, 0, "no search results: / to search");
        return;
    }
    int i = sv->list.cursor + direction;
    const char *wrapped = NULL;
    if (i >= sv->count) {
        i = 0;
        wrapped = "search wrapped to the first result";
    } else if (i < 0) {
        i = sv->count - 1;
        wrapped = "search wrapped to the last result";
    }
    sv->list.cursor = i;
    if (wrapped) ui_message(ui, 0, "%s", wrapped);
    if (ui->screen == SCREEN_SEARCH) return;
    ui_open(ui, SCREEN_WORD, sv->ids[i], -1);
}

static void act_search_open(void *self, Ui *ui) {
    SearchScreen *sv = self;
    if (sv->count == 0) {
        ui_message(ui, 0, "no results: / to search");
        return;
    }
    ui_open(ui, SCREEN_WORD, sv->ids[sv->list.cursor], -1);
}

static void act_search_next(void *self, Ui *ui) {
    (void)ui;
    SearchScreen *sv = self;
    if (sv->count) sv->list.cursor = (sv->list.cursor + 1) % sv->count;
}
static void act_search_prev(void *self, Ui *ui) {
    (void)ui;
    SearchScreen *sv = self;
    if (sv->count) sv->list.cursor = (sv->list.cursor + sv->count - 1) % sv->count;
}

static const KeyBinding search_keys[] = {
    {{BK_ENTER, 'l', BK_RIGHT}, "Enter l Right", "open the selected word", act_search_open},
    {{'n', 0}, "n", "next result", act_search_next},
    {{'N', 0}, "N", "previous result", act_search_prev},
    {{0}, NULL, NULL, NULL},
};

static void search_draw(void *self, Ui *ui, Canvas *c) {
    SearchScreen *sv = self;
    int row = ui_top_row(c) + 1, bottom = ui_bottom_row(c);
    if (!sv->input.text[0] && !sv->input.active) {
        canvas_text(c, row, 2, -1, STYLE_TITLE, "Sense browser");
        canvas_printf(c, row + 2, 2, -1, STYLE_NORMAL,
                      "%d words, %d senses each. Press / and type the start of a word;", ui->V, ui->k);
        canvas_text(c, row + 3, 2, -1, STYLE_NORMAL,
                    "Enter opens it. #123 finds token 123. ? lists every key, q quits.");
        if (!ui->model)
            canvas_text(c, row + 5, 2, -1, STYLE_DIM,
                        "No --model: the prompt and edit screens are unavailable.");
        return;
    }
    if (sv->closest)
        canvas_printf(c, row, 2, -1, STYLE_TITLE, "No word starts with '%s'; the closest words:",
                      sv->input.text);
    else
        canvas_printf(c, row, 2, -1, STYLE_TITLE, "%d%s words start with '%s'", sv->count,
                      sv->count == SEARCH_MAX ? "+" : "", sv->input.text);
    row += 2;
    int visible = bottom - row;
    list_scroll(&sv->list, visible);
    for (int i = sv->list.top; i < sv->count && row < bottom; i++, row++) {
        int sel = i == sv->list.cursor;
        CanvasStyle st = sel ? STYLE_SELECTED : STYLE_NORMAL;
        char label[160];
        if (sel) canvas_fill(c, row, 0, c->cols, STYLE_SELECTED);
        canvas_printf(c, row, 2, 8, sel ? st : STYLE_DIM, "#%d", sv->ids[i]);
        canvas_text(c, row, 10, 40, st, ui_word_label(ui, sv->ids[i], label, sizeof label));
        canvas_text(c, row, 52, -1, sel ? st : STYLE_DIM, store_token_string(ui->store, sv->ids[i]));
    }
}

static ListView *search_list(void *self) { return &((SearchScreen *)self)->list; }

const ScreenClass search_screen = {
    .name = "search",
    .summary = "type-ahead search over the vocabulary",
    .keys = search_keys,
    .init = search_init,
    .free = free,
    .enter = search_enter,
    .draw = search_draw,
    .list = search_list,
    .title = ui_title_word,
};
