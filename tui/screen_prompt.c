/* screen_prompt.c - the prompt screen: predictions and their causes. */
#include "screen_prompt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *prompt_init(Ui *ui, BpError *err) {
    (void)ui;
    return ui_state_alloc(sizeof(PromptScreen), err);
}

static void prompt_done(void *self, Ui *ui, int accepted) {
    PromptScreen *ps = self;
    if (!accepted) return;
    BpError err = {0};
    int kept = 0;
    if (runs_set_prompt(ui->model, ps->input.text, (size_t)ps->input.len, &kept, &err) != 0) {
        ui_message(ui, 1, "%s", err.msg);
        return;
    }
    if (kept) ui_message(ui, 0, "prompt cut to its last %d tokens", kept);
    ps->lists[0].cursor = ps->lists[1].cursor = 0;
    ps->column = 0;
}

static void start_typing(PromptScreen *ps, Ui *ui) {
    if (!ui->model) {
        ui_message(ui, 1, "the prompt screen needs --model");
        return;
    }
    ps->input.owner = ps;
    ps->input.done = prompt_done;
    ps->input.changed = NULL;
    ui_open_input(ui, &ps->input, "prompt: ", ps->input.text);
}

/* With no prompt yet there is nothing to do but type one: the line opens at once. */
static int prompt_enter(void *self, Ui *ui, const Place *at) {
    if (!at->returning && ui->model && ui->model->n_tokens == 0) start_typing(self, ui);
    return 0;
}

static void act_prompt_type(void *self, Ui *ui) { start_typing(self, ui); }

static void act_prompt_column(void *self, Ui *ui) {
    (void)ui;
    PromptScreen *ps = self;
    ps->column = 1 - ps->column;
}

static void act_prompt_open(void *self, Ui *ui) {
    PromptScreen *ps = self;
    const ModelRuns *r = ui->model;
    if (!r || !runs_prompt_ready(r)) {
        start_typing(ps, ui);
        return;
    }
    int p = ps->lists[0].cursor;
    if (ps->column == 0) {
        ui_open(ui, SCREEN_WORD, r->pred.top[p].id, -1);
    } else if (r->n_contrib[p] > 0) {
        const Contribution *ct = &r->contrib[p][ps->lists[1].cursor];
        ui_open(ui, SCREEN_SENSE, ct->token, ct->sense);
    }
}

static void act_prompt_edit(void *self, Ui *ui) {
    PromptScreen *ps = self;
    const ModelRuns *r = ui->model;
    if (!r || !runs_prompt_ready(r)) return;
    int p = ps->lists[0].cursor;
    if (ps->column == 1 && r->n_contrib[p] > 0) {
        const Contribution *ct = &r->contrib[p][ps->lists[1].cursor];
        ui_open(ui, SCREEN_EDIT, ct->token, ct->sense);
    } else {
        ui_message(ui, 0, "select a (word, sense) pair with Tab first");
    }
}

static const KeyBinding prompt_keys[] = {
    {{'i', 0}, "i", "edit the prompt (Enter runs it, an empty one clears it)", act_prompt_type},
    {{BK_TAB, BK_BTAB}, "Tab", "switch between predictions and their causes", act_prompt_column},
    {{BK_ENTER, 'l', BK_RIGHT}, "Enter l Right",
     "open the predicted word, or the selected (word, sense)", act_prompt_open},
    {{'e', 0}, "e", "edit the selected (word, sense)", act_prompt_edit},
    {{0}, NULL, NULL, NULL},
};

/* The tokens of the prompt in one line: "␣The│␣bank│...". */
static void draw_tokens(Ui *ui, Canvas *c, int row, int col, int width, const int *tokens, int n) {
    int x = 0;
    for (int i = 0; i < n && x < width; i++) {
        char label[160];
        ui_word_label(ui, tokens[i], label, sizeof label);
        if (i) x += canvas_text(c, row, col + x, width - x, STYLE_DIM, "\xe2\x94\x82"); /* │ */
        x += canvas_text(c, row, col + x, width - x, i % 2 ? STYLE_PROMOTED : STYLE_NORMAL, label);
    }
}

static void prompt_draw(void *self, Ui *ui, Canvas *c) {
    PromptScreen *ps = self;
    const ModelRuns *r = ui->model;
    int row = ui_top_row(c), bottom = ui_bottom_row(c);
    if (!r) {
        ui_draw_needs_model(c, "prompt");
        return;
    }
    if (r->n_tokens == 0) {
        canvas_text(c, row + 1, 2, -1, STYLE_NORMAL,
                    "Type a prompt and press Enter (i types again): the next-token predictions");
        canvas_text(c, row + 2, 2, -1, STYLE_NORMAL,
                    "appear with the (context word, sense) pairs that caused them.");
        return;
    }
    /* steering edits act through the weights: alpha below already includes them */
    if (r->edits_in_force.count > 0)
        canvas_printf(c, row++, 1, -1, STYLE_TITLE, "prompt (%d tokens), with %d edited senses in force:",
                      r->n_tokens, r->edits_in_force.count);
    else
        canvas_printf(c, row++, 1, -1, STYLE_TITLE, "prompt (%d tokens):", r->n_tokens);
    draw_tokens(ui, c, row++, 2, c->cols - 3, r->tokens, r->n_tokens);
    if (!runs_prompt_current(r)) {
        ui_draw_progress(ui, c, row + 1, 2, -1, JOB_PROMPT);
        return;
    }
    if (r->pred.error[0]) {
        canvas_text(c, row + 1, 2, -1, STYLE_ERROR, r->pred.error);
        return;
    }
    int x = canvas_text(c, row, 2, -1, STYLE_DIM, "greedy: ");
    ui_draw_continuation(ui, c, row, 2 + x, c->cols - 3 - x, &r->pred);
    row += 2;
    /* predictions on the left; on the right the (word, sense) pairs behind the selected
     * one: the logit is exactly the sum of alpha x score over all pairs */
    list_set_count(&ps->lists[0], r->pred.n_top);
    int left = 24, x1 = left + 2;
    int p = ps->lists[0].cursor;
    char label[160];
    canvas_text(c, row, 1, left, ps->column == 0 ? STYLE_TITLE : STYLE_DIM, "next token       prob");
    canvas_printf(c, row, x1, -1, ps->column == 1 ? STYLE_TITLE : STYLE_DIM,
                  "why %s? logit %.3f = sum of the contributions",
                  ui_word_label(ui, r->pred.top[p].id, label, sizeof label), r->logit[p]);
    row++;
    canvas_text(c, row, x1, -1, STYLE_DIM, "word[pos]          sense alpha x   score = contrib");
    row++;
    list_set_count(&ps->lists[1], r->n_contrib[p]);
    list_scroll(&ps->lists[1], bottom - row);
    for (int i = 0; i < r->pred.n_top && row + i < bottom; i++) {
        int sel = i == p;
        CanvasStyle st = sel ? (ps->column == 0 ? STYLE_SELECTED : STYLE_TITLE) : STYLE_NORMAL;
        if (sel && ps->column == 0) canvas_fill(c, row + i, 1, left, STYLE_SELECTED);
        canvas_text(c, row + i, 2, 13, st, ui_word_label(ui, r->pred.top[i].id, label, sizeof label));
        canvas_printf(c, row + i, 15, 9, st, r->pred.top[i].score >= 1e-3f ? "%8.4f" : "%8.1e",
                      r->pred.top[i].score);
    }
    ListView *cl = &ps->lists[1];
    for (int i = cl->top, rr = row; i < r->n_contrib[p] && rr < bottom; i++, rr++) {
        const Contribution *ct = &r->contrib[p][i];
        int sel = ps->column == 1 && i == cl->cursor;
        CanvasStyle st = sel ? STYLE_SELECTED : ct->contribution >= 0 ? STYLE_PROMOTED : STYLE_SUPPRESSED;
        if (sel) canvas_fill(c, rr, x1, c->cols - x1, STYLE_SELECTED);
        char pos[16];
        int pos_w = snprintf(pos, sizeof pos, "[%d]", ct->context_pos);
        int w = canvas_text(c, rr, x1, 18 - pos_w, st, ui_word_label(ui, ct->token, label, sizeof label));
        canvas_text(c, rr, x1 + w, -1, sel ? st : STYLE_DIM, pos);
        canvas_printf(c, rr, x1 + 19, -1, sel ? st : STYLE_NORMAL, "%3d %6.3f x %+7.3f = %+7.3f",
                      ct->sense, ct->alpha, ct->score, ct->contribution);
    }
}

static ListView *prompt_list(void *self) {
    PromptScreen *ps = self;
    return &ps->lists[ps->column];
}

/* The word's title, and the layer plan the model runs under (browse --layers). */
static void prompt_title(void *self, Ui *ui, char *out, size_t out_size) {
    ui_title_word(self, ui, out, out_size);
    size_t n = strlen(out);
    if (ui->model && ui->model->model.plan && n < out_size)
        snprintf(out + n, out_size - n, " | layers %s", ui->model->plan.text);
}

const ScreenClass prompt_screen = {
    .name = "prompt",
    .summary = "a prompt's next-token predictions and their causes",
    .keys = prompt_keys,
    .init = prompt_init,
    .free = free,
    .enter = prompt_enter,
    .draw = prompt_draw,
    .list = prompt_list,
    .title = prompt_title,
};
