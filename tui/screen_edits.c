/* screen_edits.c - the edits screen: the list of stored edits; open or undo one. */
#include "screen_edits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *edits_init(Ui *ui, BpError *err) {
    (void)ui;
    return ui_state_alloc(sizeof(EditsScreen), err);
}

static void edits_free(void *self) {
    EditsScreen *es = self;
    if (!es) return;
    free(es->records);
    free(es);
}

static void edits_refresh(EditsScreen *es, Ui *ui) {
    free(es->records);
    es->records = NULL;
    es->count = 0;
    BpError err = {0};
    if (store_edit_list(ui->store, &es->records, &es->count, &err) != 0) {
        ui_message(ui, 1, "%s", err.msg);
        es->count = 0;
    }
    list_set_count(&es->list, es->count);
}

static int edits_enter(void *self, Ui *ui, const Place *at) {
    (void)at;
    edits_refresh(self, ui);
    return 0;
}

static void edits_draw(void *self, Ui *ui, Canvas *c) {
    EditsScreen *es = self;
    int row = ui_top_row(c), bottom = ui_bottom_row(c);
    int in_force = 0;
    for (int i = 0; i < es->count; i++) in_force += !es->records[i].undone;
    canvas_printf(c, row++, 1, -1, STYLE_TITLE, "Edits in %s: %d, %d in force", ui->db_path, es->count,
                  in_force);
    if (es->count == 0) {
        canvas_text(c, row + 1, 2, -1, STYLE_NORMAL,
                    "No edits yet. On a word or sense, e opens the edit screen (needs --model).");
        return;
    }
    canvas_text(c, row++, 1, -1, STYLE_DIM, "   id  when              kind     word              sense  description");
    list_scroll(&es->list, bottom - row);
    for (int i = es->list.top; i < es->count && row < bottom; i++, row++) {
        const EditRecord *r = &es->records[i];
        int sel = i == es->list.cursor;
        CanvasStyle st = sel ? STYLE_SELECTED : r->undone ? STYLE_DIM : STYLE_NORMAL;
        if (sel) canvas_fill(c, row, 0, c->cols, STYLE_SELECTED);
        char when[32] = "?", label[160], sense[16];
        time_t t = (time_t)r->created;
        struct tm tm;
        if (localtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
        if (r->sense >= 0) snprintf(sense, sizeof sense, "%d", r->sense);
        else snprintf(sense, sizeof sense, "all");
        canvas_printf(c, row, 1, 6, st, "%5lld", (long long)r->id);
        canvas_text(c, row, 7, 18, st, when);
        canvas_text(c, row, 25, 9, st, edit_kind_name(r->kind));
        /* a group (steer topic/debias) names several words: its description says which */
        if (r->token < 0) snprintf(label, sizeof label, "(group)");
        else ui_word_label(ui, r->token, label, sizeof label);
        canvas_text(c, row, 34, 17, st, label);
        canvas_text(c, row, 52, 6, st, sense);
        int x = canvas_text(c, row, 59, -1, st, r->description);
        if (r->undone) canvas_text(c, row, 60 + x, -1, st, "(undone)");
    }
}

static void act_edits_open(void *self, Ui *ui) {
    EditsScreen *es = self;
    if (es->count == 0) return;
    const EditRecord *r = &es->records[es->list.cursor];
    if (r->token < 0) ui_message(ui, 0, "edit #%lld changes many words: %s", (long long)r->id, r->description);
    else if (r->sense >= 0) ui_open(ui, SCREEN_SENSE, r->token, r->sense);
    else ui_open(ui, SCREEN_WORD, r->token, -1);
}

static void act_edits_undo(void *self, Ui *ui) {
    EditsScreen *es = self;
    if (es->count == 0) return;
    if (ui->db_mode == STORE_READ_ONLY) {
        ui_message(ui, 1, "%s is read-only", ui->db_path);
        return;
    }
    const EditRecord *r = &es->records[es->list.cursor];
    BpError err = {0};
    int64_t id = 0;
    if (store_edit_undo(ui->store, r->id, &id, &err) != 0) {
        ui_message(ui, 1, "%s", err.msg);
        return;
    }
    if (ui_edits_changed(ui, &err) != 0) ui_message(ui, 1, "%s", err.msg);
    edits_refresh(es, ui);
    ui_message(ui, 0, "undid edit #%lld", (long long)id);
}

static const KeyBinding edits_keys[] = {
    {{BK_ENTER, 'l', BK_RIGHT}, "Enter l Right", "open the edited word or sense", act_edits_open},
    {{'u', 0}, "u", "undo the selected edit", act_edits_undo},
    {{0}, NULL, NULL, NULL},
};

static ListView *edits_list(void *self) { return &((EditsScreen *)self)->list; }

const ScreenClass edits_screen = {
    .name = "edits",
    .summary = "the edits stored in the database",
    .keys = edits_keys,
    .init = edits_init,
    .free = edits_free,
    .enter = edits_enter,
    .draw = edits_draw,
    .list = edits_list,
    .title = ui_title_word,
};
