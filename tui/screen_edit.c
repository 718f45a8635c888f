/* screen_edit.c - the edit screen: one sense's pending edit, before and after. The
 * model runs the prompt twice, with the edits in force and with them plus the pending
 * edit, token by token between keys (model_runs.h). */
#include "screen_edit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *edit_init(Ui *ui, BpError *err) {
    (void)ui;
    return ui_state_alloc(sizeof(EditScreen), err);
}

/* Drops the pending edit (and takes it back from the model runs). */
static void drop_preview(EditScreen *ev, Ui *ui) {
    if (ev->have_preview && ui->model) runs_set_preview(ui->model, NULL);
    store_edit_preview_free(&ev->preview);
    ev->have_preview = 0;
}

static void edit_free(void *self) {
    EditScreen *ev = self;
    if (!ev) return;
    store_edit_preview_free(&ev->preview);
    free(ev);
}

static void load_before(EditScreen *ev, Ui *ui) {
    BpError err = {0};
    int got = store_sense_words(ui->store, ev->token, ev->sense, EDIT_TOP_WORDS, ev->top_before, NULL, &err);
    ev->n_before = got < 0 ? 0 : got;
}

static int edit_enter(void *self, Ui *ui, const Place *at) {
    EditScreen *ev = self;
    /* the screen holds one edit: an older one does not come back */
    if (at->returning && (at->token != ev->token || at->sense != ev->sense)) return -1;
    if (ev->token != at->token || ev->sense != at->sense) drop_preview(ev, ui);
    ev->token = at->token;
    ev->sense = at->sense;
    ui->token = at->token;
    ui->sense = at->sense;
    if (at->returning) return 0;
    ev->error[0] = 0;
    load_before(ev, ui);
    return 0;
}

/* A new pending edit: its preview (what it changes) now; the model's "after" runs
 * token by token. */
static void edit_compute(EditScreen *ev, Ui *ui) {
    BpError err = {0};
    ev->error[0] = 0;
    drop_preview(ev, ui);
    if (store_edit_preview(ui->store, &ev->request, &ev->preview, &err) != 0) {
        snprintf(ev->error, sizeof ev->error, "%s", err.msg);
        if (ui->model) runs_set_preview(ui->model, NULL);  /* a new (failed) preview */
        return;
    }
    ev->have_preview = 1;
    if (ui->model) runs_set_preview(ui->model, &ev->preview);
    ev->n_after = 0;
    for (int i = 0; i < ev->preview.count; i++) {
        const SenseChange *ch = &ev->preview.changes[i];
        if (ch->token == ev->token && ch->sense == ev->sense) {
            int got = store_score_vector(ui->store, ch->vector_after, EDIT_TOP_WORDS, ev->top_after, NULL, &err);
            ev->n_after = got < 0 ? 0 : got;
        }
    }
}

static int parse_float(const char *s, float *out) {
    char *end;
    float v = strtof(s, &end);
    while (*end == ' ') end++;
    if (end == s || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static void edit_value_done(void *self, Ui *ui, int accepted) {
    EditScreen *ev = self;
    if (!accepted) return;
    EditRequest req = {.kind = ev->pending_kind, .token = ev->token, .sense = ev->sense, .value = 1};
    BpError err = {0};
    const char *text = ev->input.text;
    switch (ev->pending_kind) {
    case EDIT_SCALE:
    case EDIT_WEIGHT:
        if (parse_float(text, &req.value) != 0) {
            ui_message(ui, 1, "'%s' is not a number", text);
            return;
        }
        break;
    case EDIT_REPLACE: {
        const char *colon = strchr(text, ':');
        char old_word[UI_TEXT_MAX];
        if (!colon || colon == text || !colon[1]) {
            ui_message(ui, 1, "write OLD:NEW, e.g. Paris:Rome");
            return;
        }
        snprintf(old_word, sizeof old_word, "%.*s", (int)(colon - text), text);
        if (store_resolve_token(ui->store, old_word, &req.old_token, &err) != 0 ||
            store_resolve_token(ui->store, colon + 1, &req.new_token, &err) != 0) {
            ui_message(ui, 1, "%s", err.msg);
            return;
        }
        break;
    }
    case EDIT_COPY: {
        char word[UI_TEXT_MAX];
        snprintf(word, sizeof word, "%s", text);
        req.src_sense = ev->sense;
        char *colon = strrchr(word, ':');
        if (colon && colon[1]) {
            char *end;
            long l = strtol(colon + 1, &end, 10);
            if (!*end) {
                req.src_sense = (int)l;
                *colon = 0;
            }
        }
        if (store_resolve_token(ui->store, word, &req.src_token, &err) != 0) {
            ui_message(ui, 1, "%s", err.msg);
            return;
        }
        break;
    }
    case EDIT_RESET:
        break;
    }
    ev->request = req;
    edit_compute(ev, ui);
}

static void edit_ask(EditScreen *ev, Ui *ui, EditKind kind, const char *label) {
    if (!ui->model) {
        ui_message(ui, 1, "the edit screen needs --model");
        return;
    }
    ev->pending_kind = kind;
    ev->input.owner = ev;
    ev->input.done = edit_value_done;
    ev->input.changed = NULL;
    ui_open_input(ui, &ev->input, label, "");
}

static void act_edit_scale(void *self, Ui *ui) { edit_ask(self, ui, EDIT_SCALE, "scale the sense vector by: "); }
static void act_edit_weight(void *self, Ui *ui) {
    edit_ask(self, ui, EDIT_WEIGHT, "sense weight (alpha multiplier): ");
}
static void act_edit_replace(void *self, Ui *ui) {
    edit_ask(self, ui, EDIT_REPLACE, "replace OLD:NEW (every sense): ");
}
static void act_edit_copy(void *self, Ui *ui) { edit_ask(self, ui, EDIT_COPY, "copy from WORD[:SENSE]: "); }
static void act_edit_reset(void *self, Ui *ui) {
    EditScreen *ev = self;
    if (!ui->model) {
        ui_message(ui, 1, "the edit screen needs --model");
        return;
    }
    ev->pending_kind = EDIT_RESET;
    ev->input.text[0] = 0;
    ev->input.len = 0;
    edit_value_done(ev, ui, 1);
}

static void after_store_change(EditScreen *ev, Ui *ui) {
    BpError err = {0};
    if (ui_edits_changed(ui, &err) != 0) ui_message(ui, 1, "%s", err.msg);
    load_before(ev, ui);
}

static void act_edit_save(void *self, Ui *ui) {
    EditScreen *ev = self;
    if (!ev->have_preview) {
        ui_message(ui, 0, "no pending edit: s, w, r, c or x first");
        return;
    }
    if (ui->db_mode == STORE_READ_ONLY) {
        ui_message(ui, 1, "%s is read-only: the edit cannot be saved", ui->db_path);
        return;
    }
    BpError err = {0};
    int64_t id = 0;
    if (store_edit_commit(ui->store, &ev->request, &id, &err) != 0) {
        ui_message(ui, 1, "%s", err.msg);
        return;
    }
    char description[256];
    snprintf(description, sizeof description, "%s", ev->preview.description);
    drop_preview(ev, ui);
    after_store_change(ev, ui);
    ui_message(ui, 0, "saved edit #%lld: %s", (long long)id, description);
}

static void act_edit_discard(void *self, Ui *ui) {
    EditScreen *ev = self;
    if (!ev->have_preview) {
        ui_message(ui, 0, "nothing to discard");
        return;
    }
    drop_preview(ev, ui);
    ui_message(ui, 0, "edit discarded");
}

static void act_edit_undo(void *self, Ui *ui) {
    if (ui->db_mode == STORE_READ_ONLY) {
        ui_message(ui, 1, "%s is read-only", ui->db_path);
        return;
    }
    BpError err = {0};
    int64_t id = 0;
    if (store_edit_undo(ui->store, 0, &id, &err) != 0) {
        ui_message(ui, 1, "%s", err.msg);
        return;
    }
    after_store_change(self, ui);
    ui_message(ui, 0, "undid edit #%lld", (long long)id);
}

static const KeyBinding edit_keys[] = {
    {{'s', 0}, "s", "scale the sense vector by W", act_edit_scale},
    {{'w', 0}, "w", "set the sense weight (multiplies alpha where the word occurs)", act_edit_weight},
    {{'r', 0}, "r", "replace OLD:NEW in every sense (the paper's knowledge edit)", act_edit_replace},
    {{'c', 0}, "c", "copy another word's sense: WORD[:SENSE]", act_edit_copy},
    {{'x', 0}, "x", "reset the sense to the export", act_edit_reset},
    {{BK_ENTER, 'S', 0}, "Enter S", "save the pending edit to the database", act_edit_save},
    {{'d', BK_ESC, 0}, "d Esc", "discard the pending edit", act_edit_discard},
    {{'u', 0}, "u", "undo the latest saved edit", act_edit_undo},
    {{0}, NULL, NULL, NULL},
};

static void draw_prediction(Ui *ui, Canvas *c, int row, int col, int width, int bottom,
                            const Prediction *p, const Prediction *other) {
    char label[160];
    for (int i = 0; i < p->n_top && row < bottom; i++, row++) {
        /* a word whose probability rose against the other side is promoted */
        float before = 0;
        int found = 0;
        for (int j = 0; other && j < other->n_top; j++)
            if (other->top[j].id == p->top[i].id) before = other->top[j].score, found = 1;
        CanvasStyle st = !other ? STYLE_NORMAL
                         : !found || p->top[i].score > before * 1.001f ? STYLE_PROMOTED
                         : p->top[i].score < before * 0.999f ? STYLE_SUPPRESSED : STYLE_NORMAL;
        canvas_printf(c, row, col, 9, STYLE_NORMAL, p->top[i].score >= 1e-3f ? "%7.4f" : "%7.1e",
                      p->top[i].score);
        canvas_text(c, row, col + 9, width - 9, st, ui_word_label(ui, p->top[i].id, label, sizeof label));
    }
}

static void edit_draw(void *self, Ui *ui, Canvas *c) {
    EditScreen *ev = self;
    const ModelRuns *r = ui->model;
    int row = ui_top_row(c), bottom = ui_bottom_row(c);
    if (!r) {
        ui_draw_needs_model(c, "edit");
        return;
    }
    char label[160];
    SenseInfo si = {0};
    BpError err = {0};
    store_sense_info(ui->store, ev->token, ev->sense, &si, &err);
    canvas_printf(c, row++, 1, -1, STYLE_TITLE, "edit %s  #%d  sense %d   norm %.3f%s  weight %.2f",
                  ui_word_label(ui, ev->token, label, sizeof label), ev->token, ev->sense, si.norm,
                  si.vector_edited ? " (edited)" : "", si.weight);
    canvas_text(c, row++, 1, -1, STYLE_DIM, "s scale  w weight  r replace OLD:NEW  c copy WORD[:SENSE]  x reset");
    canvas_text(c, row++, 1, -1, STYLE_DIM, "Enter save to the database  d discard  u undo the last saved edit");
    if (ev->error[0])
        canvas_text(c, row, 1, -1, STYLE_ERROR, ev->error);
    else if (ev->have_preview)
        canvas_printf(c, row, 1, -1, STYLE_NORMAL, "pending: %s  (Enter saves, d discards)",
                      ev->preview.description);
    else
        canvas_text(c, row, 1, -1, STYLE_NORMAL, "no edit pending");
    row += 2;
    int half = c->cols / 2, w = half - 2;
    canvas_text(c, row, 1, w, STYLE_TITLE, "BEFORE (edits in force)");
    canvas_text(c, row, half + 1, w, STYLE_TITLE, ev->have_preview ? "AFTER (with this edit)" : "AFTER");
    row++;
    canvas_printf(c, row, 1, w, STYLE_DIM, "sense %d top words:", ev->sense);
    canvas_printf(c, row, half + 1, w, STYLE_DIM, "sense %d top words:", ev->sense);
    row++;
    for (int side = 0; side < 2; side++) {
        const WordScore *ws = side ? ev->top_after : ev->top_before;
        int n = side ? (ev->have_preview ? ev->n_after : 0) : ev->n_before;
        int x = side ? half + 1 : 1;
        for (int i = 0; i < n && x < (side ? c->cols : half); i++) {
            x += canvas_text(c, row, x, (side ? c->cols : half) - x, STYLE_PROMOTED,
                             ui_word_label(ui, ws[i].id, label, sizeof label));
            x += 2;
        }
    }
    row += 2;
    if (r->n_tokens == 0) {
        canvas_text(c, row, 1, -1, STYLE_NORMAL,
                    "No prompt: press p, type one, then come back (e on a sense) to see the next-token");
        canvas_text(c, row + 1, 1, -1, STYLE_NORMAL, "distribution and a greedy continuation before and after.");
        return;
    }
    canvas_text(c, row, 1, w, STYLE_DIM, "next token:");
    canvas_text(c, row, half + 1, w, STYLE_DIM, "next token:");
    row++;
    if (!ev->have_preview) {
        canvas_text(c, row, 1, -1, STYLE_NORMAL, "choose an edit (s w r c x) to see before and after");
        return;
    }
    /* before = the prompt screen's run with the edits in force; after = with this edit */
    const Prediction *before = &r->pred, *after = &r->after;
    int before_ok = runs_prompt_current(r), after_ok = runs_after_current(r);
    int rows = RUNS_TOP_PREDICTIONS;
    if (row + rows + 2 > bottom) rows = bottom - row - 2;
    for (int side = 0; side < 2; side++) {
        const Prediction *p = side ? after : before;
        int col = side ? half + 1 : 1;
        if (!(side ? after_ok : before_ok))
            ui_draw_progress(ui, c, row, col + 1, w - 1, side ? JOB_AFTER : JOB_PROMPT);
        else if (p->error[0])
            canvas_text(c, row, col, w, STYLE_ERROR, p->error);
        else
            draw_prediction(ui, c, row, col, w, row + rows, p, side && before_ok ? before : NULL);
    }
    row += rows + 1;
    if (row < bottom && before_ok && after_ok) {
        canvas_text(c, row, 1, -1, STYLE_DIM, "greedy:");
        ui_draw_continuation(ui, c, row, 9, half - 10, before);
        ui_draw_continuation(ui, c, row, half + 1, w, after);
    }
}

const ScreenClass edit_screen = {
    .name = "edit",
    .summary = "edit a sense: before and after",
    .keys = edit_keys,
    .init = edit_init,
    .free = edit_free,
    .enter = edit_enter,
    .draw = edit_draw,
    .title = ui_title_word_sense,
};
