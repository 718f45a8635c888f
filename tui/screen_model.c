/* screen_model.c - the screens that run the model (--model): prompt and edit.
 *
 * The prompt screen explains a prediction: word x_j's sense l adds
 * alpha_l[last, j] * (E C(x_j)_l)[t] to the logit of token t, and the logit is exactly
 * the sum of these over (j, l) (model/infer.h), so the largest terms are the
 * (context word, sense) pairs that caused it. The edit screen runs the prompt twice,
 * with the edits in force and with them plus the pending edit, and shows both. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

/* ---- running the model ---------------------------------------------------------------- */

/* Top predictions (probabilities) of logits into out. */
static void top_predictions(const float *logits, int V, Prediction *out) {
    int ids[APP_TOP_PREDICTIONS];
    float probs[APP_TOP_PREDICTIONS];
    int n = V < APP_TOP_PREDICTIONS ? V : APP_TOP_PREDICTIONS;
    top_probabilities(logits, V, n, ids, probs);
    for (int i = 0; i < n; i++) {
        out->top[i].id = ids[i];
        out->top[i].score = probs[i];
    }
    out->n_top = n;
}

/* ---- prompt ---------------------------------------------------------------------------- */

static void draw_continuation(App *app, Canvas *c, int row, int col, int width, const int *prompt,
                              int n_prompt, const Prediction *p);

static float dot(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Right after the prompt's last token: every prediction's largest contributions. */
static void compute_contributions(App *app, const Prediction *pred) {
    PromptView *pv = &app->prompt;
    const float *alpha = infer_alpha(&app->infer);
    const float *senses = infer_context_senses(&app->infer);
    int k = app->k, d = app->d, n = app->infer.len, max_len = app->infer.max_len;
    for (int p = 0; p < pred->n_top; p++) {
        const float *e = app->model.params.wte + (size_t)pred->top[p].id * d;
        Contribution *best = pv->contrib[p];
        int count = 0;
        float logit = 0;
        for (int j = 0; j < n; j++)
            for (int l = 0; l < k; l++) {
                float a = alpha[l * max_len + j];
                float score = dot(e, senses + ((size_t)j * k + l) * d, d);
                Contribution cand = {j, pv->tokens[j], l, a, score, a * score};
                logit += cand.contribution;
                if (count == APP_CONTRIBUTIONS && cand.contribution <= best[count - 1].contribution)
                    continue;
                int i = count < APP_CONTRIBUTIONS ? count++ : count - 1;
                while (i > 0 && best[i - 1].contribution < cand.contribution) {
                    best[i] = best[i - 1];
                    i--;
                }
                best[i] = cand;
            }
        pv->n_contrib[p] = count;
        pv->logit[p] = logit;
    }
}

/* ---- model work, one token at a time ----------------------------------------------------- */

static int key_equal(RunKey a, RunKey b) {
    return a.prompt_version == b.prompt_version && a.generation == b.generation &&
           a.preview_id == b.preview_id;
}

static RunKey prompt_key(const App *app) {
    return (RunKey){app->prompt.version, app->generation, 0};
}
static RunKey after_key(const App *app) {
    return (RunKey){app->prompt.version, app->generation, app->edit.preview_id};
}

static int prediction_current(const Prediction *p, RunKey key) {
    return p->valid && key_equal(p->key, key);
}

/* What the screens want computed next, or JOB_NONE. */
static JobKind wanted_job(const App *app) {
    if (!app->have_model || app->prompt.n_tokens == 0) return JOB_NONE;
    if (!prediction_current(&app->prompt.pred, prompt_key(app))) return JOB_PROMPT;
    if (app->edit.have_preview && !prediction_current(&app->edit.after, after_key(app))) return JOB_AFTER;
    return JOB_NONE;
}

void model_job_free(App *app) {
    free(app->job.composed);
    memset(&app->job, 0, sizeof app->job);
}

/* The edits in force with the preview's changes on top (each change replaces the
 * state of its sense: vector and weight). */
static SenseEdit *compose_edits(App *app, const EditPreview *pv, int *count) {
    const SenseEdits *in = &app->edits_in_force;
    SenseEdit *out = malloc((size_t)(in->count + pv->count + 1) * sizeof *out);
    if (!out) return NULL;
    int n = 0;
    for (int i = 0; i < in->count; i++) {
        int replaced = 0;
        for (int c = 0; c < pv->count; c++)
            if (pv->changes[c].token == in->items[i].token && pv->changes[c].sense == in->items[i].sense)
                replaced = 1;
        if (!replaced) out[n++] = in->items[i];
    }
    for (int c = 0; c < pv->count; c++) {
        const SenseChange *ch = &pv->changes[c];
        out[n++] = (SenseEdit){ch->token, ch->sense, ch->vector_after, ch->weight_after};
    }
    *count = n;
    return out;
}

static int job_start(App *app, JobKind kind, BpError *err) {
    ModelJob *j = &app->job;
    model_job_free(app);
    j->kind = kind;
    if (kind == JOB_PROMPT) {
        j->key = prompt_key(app);
        j->edits = app->edits_in_force;
    } else {
        j->key = after_key(app);
        int count = 0;
        j->composed = compose_edits(app, &app->edit.preview, &count);
        if (!j->composed) return bp_fail(err, "out of memory");
        j->edits = (SenseEdits){j->composed, count};
    }
    infer_set_edits(&app->infer, &j->edits);
    infer_reset(&app->infer);
    return 0;
}

/* One token through the model. Returns 1 when the job is complete. */
static int job_step(App *app, BpError *err) {
    ModelJob *j = &app->job;
    PromptView *pv = &app->prompt;
    InferState *s = &app->infer;
    int V = app->model.config.vocab_size, n = pv->n_tokens;
    if (j->fed < n - 1) {
        if (infer_feed(s, pv->tokens[j->fed], err) != 0) return -1;
        j->fed++;
        return 0;
    }
    if (j->fed == n - 1) {
        j->logits = infer_step(s, pv->tokens[n - 1], err);
        if (!j->logits) return -1;
        j->fed++;
        top_predictions(j->logits, V, &j->result);
        if (j->kind == JOB_PROMPT) compute_contributions(app, &j->result);
        return 0;
    }
    /* the greedy continuation: temperature 0 is the argmax, lowest id on ties, and draws
     * nothing from an Rng */
    if (j->result.n_continuation >= pv->continuation_len) return 1;
    const SamplerConfig greedy = {0};
    int next = sample_token(j->logits, V, &greedy, NULL);
    j->result.continuation[j->result.n_continuation++] = next;
    if (j->result.n_continuation == pv->continuation_len || s->len >= s->max_len) return 1;
    j->logits = infer_step(s, next, err);
    return j->logits ? 0 : -1;
}

int model_busy(App *app) {
    if (app->job.kind != JOB_NONE) {
        RunKey want = app->job.kind == JOB_PROMPT ? prompt_key(app) : after_key(app);
        if (key_equal(app->job.key, want) && app->prompt.n_tokens > 0 &&
            (app->job.kind == JOB_PROMPT || app->edit.have_preview))
            return 1;
        model_job_free(app);  /* what it was computing changed: drop it */
    }
    return wanted_job(app) != JOB_NONE;
}

int model_work(App *app) {
    if (!model_busy(app)) return 0;
    BpError err = {0};
    if (app->job.kind == JOB_NONE && job_start(app, wanted_job(app), &err) != 0) {
        /* record the failure for what was wanted, so it is not retried forever */
        Prediction *target = wanted_job(app) == JOB_PROMPT ? &app->prompt.pred : &app->edit.after;
        memset(target, 0, sizeof *target);
        target->valid = 1;
        target->key = wanted_job(app) == JOB_PROMPT ? prompt_key(app) : after_key(app);
        snprintf(target->error, sizeof target->error, "%s", err.msg);
        model_job_free(app);
        return model_busy(app);
    }
    int rc = job_step(app, &err);
    if (rc != 0) {
        ModelJob *j = &app->job;
        Prediction *target = j->kind == JOB_PROMPT ? &app->prompt.pred : &app->edit.after;
        *target = j->result;
        target->valid = 1;
        target->key = j->key;
        if (rc < 0) snprintf(target->error, sizeof target->error, "%s", err.msg);
        if (j->kind == JOB_PROMPT) {
            PromptView *pv = &app->prompt;
            list_set_count(&pv->lists[0], target->n_top);
            list_set_count(&pv->lists[1], pv->n_contrib[pv->lists[0].cursor]);
        }
        model_job_free(app);
    }
    return model_busy(app);
}

void model_drain(App *app) {
    while (model_work(app)) {
    }
}

/* The prompt's predictions are computed, for this prompt and the edits in force. */
static int prompt_ready(const App *app) {
    return prediction_current(&app->prompt.pred, prompt_key(app)) && !app->prompt.pred.error[0];
}

/* "running the model: 3/12" while a job computes this prediction. */
static void draw_progress(App *app, Canvas *c, int row, int col, int width, JobKind kind) {
    const ModelJob *j = &app->job;
    int total = app->prompt.n_tokens + app->prompt.continuation_len, done = 0;
    if (j->kind == kind) done = j->fed + j->result.n_continuation;
    canvas_printf(c, row, col, width, STYLE_DIM, "running the model: token %d/%d", done, total);
}

static void prompt_done(App *app, int accepted) {
    PromptView *pv = &app->prompt;
    if (!accepted) return;
    if (!app->tokenizer) {
        app_message(app, 1, "cannot encode a prompt: %s", app->tokenizer_error);
        return;
    }
    size_t n = 0, cap = 0;
    int *ids = NULL;
    BpError err = {0};
    if (tokenizer_encode(app->tokenizer, pv->input.text, (size_t)pv->input.len, &ids, &n, &cap,
                         &err) != 0) {
        app_message(app, 1, "%s", err.msg);
        free(ids);
        return;
    }
    /* keep room for the greedy continuation (app_open made it leave at least one token) */
    size_t room = (size_t)(app->infer.max_len - pv->continuation_len);
    if (n > room) {
        app_message(app, 0, "prompt cut to its last %zu tokens", room);
        memmove(ids, ids + (n - room), room * sizeof(int));
        n = room;
    }
    if (n > 0) memcpy(pv->tokens, ids, n * sizeof(int));
    pv->n_tokens = (int)n;
    free(ids);
    pv->lists[0].cursor = pv->lists[1].cursor = 0;
    pv->column = 0;
    /* a new version: the predictions (and a pending edit's after) are recomputed */
    pv->version++;
}

void prompt_start_typing(App *app) {
    if (!app->have_model) {
        app_message(app, 1, "the prompt screen needs --model");
        return;
    }
    app->prompt.input.done = prompt_done;
    app->prompt.input.changed = NULL;
    app_open_input(app, &app->prompt.input, "prompt: ", app->prompt.input.text);
}

static void act_prompt_column(App *app) {
    PromptView *pv = &app->prompt;
    pv->column = 1 - pv->column;
}

static void act_prompt_open(App *app) {
    PromptView *pv = &app->prompt;
    if (!prompt_ready(app)) {
        prompt_start_typing(app);
        return;
    }
    int p = pv->lists[0].cursor;
    if (pv->column == 0) {
        app_open_word(app, pv->pred.top[p].id);
    } else if (pv->n_contrib[p] > 0) {
        const Contribution *ct = &pv->contrib[p][pv->lists[1].cursor];
        app_open_sense(app, ct->token, ct->sense);
    }
}

static void act_prompt_edit(App *app) {
    PromptView *pv = &app->prompt;
    if (!prompt_ready(app)) return;
    int p = pv->lists[0].cursor;
    if (pv->column == 1 && pv->n_contrib[p] > 0) {
        const Contribution *ct = &pv->contrib[p][pv->lists[1].cursor];
        edit_begin(app, ct->token, ct->sense);
    } else {
        app_message(app, 0, "select a (word, sense) pair with Tab first");
    }
}

const KeyBinding prompt_keys[] = {
    {{'i', 0}, "i", "edit the prompt (Enter runs it, an empty one clears it)", prompt_start_typing},
    {{BK_TAB, BK_BTAB}, "Tab", "switch between predictions and their causes", act_prompt_column},
    {{BK_ENTER, 'l', BK_RIGHT}, "Enter l Right",
     "open the predicted word, or the selected (word, sense)", act_prompt_open},
    {{'e', 0}, "e", "edit the selected (word, sense)", act_prompt_edit},
    {{0}, NULL, NULL, NULL},
};

static void draw_needs_model(App *app, Canvas *c, const char *what) {
    (void)app;
    int row = app_top_row(c) + 1;
    canvas_printf(c, row, 2, -1, STYLE_ERROR, "The %s screen needs --model.", what);
    canvas_text(c, row + 2, 2, -1, STYLE_NORMAL,
                "Run: backpack browse --db FILE --model DIR (the model the database was");
    canvas_text(c, row + 3, 2, -1, STYLE_NORMAL,
                "exported from). Without it, senses can be browsed: / searches, w shows a word.");
}

/* The tokens of the prompt in one line: "␣The│␣bank│...". */
static int draw_tokens(App *app, Canvas *c, int row, int col, int width, const int *tokens, int n,
                       CanvasStyle a, CanvasStyle b) {
    int x = 0;
    for (int i = 0; i < n && x < width; i++) {
        char label[160];
        app_word_label(app, tokens[i], label, sizeof label);
        if (i) x += canvas_text(c, row, col + x, width - x, STYLE_DIM, "\xe2\x94\x82"); /* │ */
        x += canvas_text(c, row, col + x, width - x, i % 2 ? b : a, label);
    }
    return x;
}

void prompt_draw(App *app, Canvas *c) {
    PromptView *pv = &app->prompt;
    int row = app_top_row(c), bottom = app_bottom_row(c);
    if (!app->have_model) {
        draw_needs_model(app, c, "prompt");
        return;
    }
    if (pv->n_tokens == 0) {
        canvas_text(c, row + 1, 2, -1, STYLE_NORMAL,
                    "Type a prompt and press Enter (i types again): the next-token predictions");
        canvas_text(c, row + 2, 2, -1, STYLE_NORMAL,
                    "appear with the (context word, sense) pairs that caused them.");
        return;
    }
    canvas_printf(c, row++, 1, -1, STYLE_TITLE, "prompt (%d tokens):", pv->n_tokens);
    draw_tokens(app, c, row++, 2, c->cols - 3, pv->tokens, pv->n_tokens, STYLE_NORMAL, STYLE_PROMOTED);
    if (!prediction_current(&pv->pred, prompt_key(app))) {
        draw_progress(app, c, row + 1, 2, -1, JOB_PROMPT);
        return;
    }
    if (pv->pred.error[0]) {
        canvas_text(c, row + 1, 2, -1, STYLE_ERROR, pv->pred.error);
        return;
    }
    int x = canvas_text(c, row, 2, -1, STYLE_DIM, "greedy: ");
    draw_continuation(app, c, row, 2 + x, c->cols - 3 - x, pv->tokens, pv->n_tokens, &pv->pred);
    row += 2;
    /* predictions on the left; on the right the (word, sense) pairs behind the selected
     * one: the logit is exactly the sum of alpha x score over all pairs */
    int left = 24, x1 = left + 2;
    int p = pv->lists[0].cursor;
    char label[160];
    canvas_text(c, row, 1, left, pv->column == 0 ? STYLE_TITLE : STYLE_DIM, "next token       prob");
    canvas_printf(c, row, x1, -1, pv->column == 1 ? STYLE_TITLE : STYLE_DIM,
                  "why %s? logit %.3f = sum of the contributions",
                  app_word_label(app, pv->pred.top[p].id, label, sizeof label), pv->logit[p]);
    row++;
    canvas_text(c, row, x1, -1, STYLE_DIM, "word[pos]          sense alpha x   score = contrib");
    row++;
    list_set_count(&pv->lists[1], pv->n_contrib[p]);
    list_scroll(&pv->lists[1], bottom - row);
    for (int i = 0; i < pv->pred.n_top && row + i < bottom; i++) {
        int sel = i == p;
        CanvasStyle st = sel ? (pv->column == 0 ? STYLE_SELECTED : STYLE_TITLE) : STYLE_NORMAL;
        if (sel && pv->column == 0) canvas_fill(c, row + i, 1, left, STYLE_SELECTED);
        canvas_text(c, row + i, 2, 13, st, app_word_label(app, pv->pred.top[i].id, label, sizeof label));
        canvas_printf(c, row + i, 15, 9, st, pv->pred.top[i].score >= 1e-3f ? "%8.4f" : "%8.1e",
                      pv->pred.top[i].score);
    }
    ListView *cl = &pv->lists[1];
    for (int i = cl->top, r = row; i < pv->n_contrib[p] && r < bottom; i++, r++) {
        const Contribution *ct = &pv->contrib[p][i];
        int sel = pv->column == 1 && i == cl->cursor;
        CanvasStyle st = sel ? STYLE_SELECTED : ct->contribution >= 0 ? STYLE_PROMOTED : STYLE_SUPPRESSED;
        if (sel) canvas_fill(c, r, x1, c->cols - x1, STYLE_SELECTED);
        char pos[16];
        int pos_w = snprintf(pos, sizeof pos, "[%d]", ct->context_pos);
        int x = canvas_text(c, r, x1, 18 - pos_w, st, app_word_label(app, ct->token, label, sizeof label));
        canvas_text(c, r, x1 + x, -1, sel ? st : STYLE_DIM, pos);
        canvas_printf(c, r, x1 + 19, -1, sel ? st : STYLE_NORMAL, "%3d %6.3f x %+7.3f = %+7.3f",
                      ct->sense, ct->alpha, ct->score, ct->contribution);
    }
}

/* ---- edit ----------------------------------------------------------------------------------- */

void edit_begin(App *app, int token, int sense) {
    EditView *ev = &app->edit;
    if (ev->token != token || ev->sense != sense) {
        store_edit_preview_free(&ev->preview);
        ev->have_preview = 0;
    }
    ev->token = token;
    ev->sense = sense;
    ev->error[0] = 0;
    app_goto(app, SCREEN_EDIT);
    app->token = token;
    app->sense = sense;
    BpError err = {0};
    int got = store_sense_words(app->store, token, sense, 5, ev->top_before, NULL, &err);
    ev->n_before = got < 0 ? 0 : got;
}

/* A new pending edit: its preview (what it changes) now; the model's "after" runs
 * token by token (model_work). */
static void edit_compute(App *app) {
    EditView *ev = &app->edit;
    BpError err = {0};
    ev->error[0] = 0;
    store_edit_preview_free(&ev->preview);
    ev->have_preview = 0;
    ev->preview_id++;
    if (store_edit_preview(app->store, &ev->request, &ev->preview, &err) != 0) {
        snprintf(ev->error, sizeof ev->error, "%s", err.msg);
        return;
    }
    ev->have_preview = 1;
    ev->n_after = 0;
    for (int i = 0; i < ev->preview.count; i++) {
        const SenseChange *ch = &ev->preview.changes[i];
        if (ch->token == ev->token && ch->sense == ev->sense) {
            int got = store_score_vector(app->store, ch->vector_after, 5, ev->top_after, NULL, &err);
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

static void edit_value_done(App *app, int accepted) {
    EditView *ev = &app->edit;
    if (!accepted) return;
    EditRequest req = {.kind = ev->pending_kind, .token = ev->token, .sense = ev->sense, .value = 1};
    BpError err = {0};
    const char *text = ev->input.text;
    switch (ev->pending_kind) {
    case EDIT_SCALE:
    case EDIT_WEIGHT:
        if (parse_float(text, &req.value) != 0) {
            app_message(app, 1, "'%s' is not a number", text);
            return;
        }
        break;
    case EDIT_REPLACE: {
        const char *colon = strchr(text, ':');
        char old_word[APP_PROMPT_MAX];
        if (!colon || colon == text || !colon[1]) {
            app_message(app, 1, "write OLD:NEW, e.g. Paris:Rome");
            return;
        }
        snprintf(old_word, sizeof old_word, "%.*s", (int)(colon - text), text);
        if (store_resolve_token(app->store, old_word, &req.old_token, &err) != 0 ||
            store_resolve_token(app->store, colon + 1, &req.new_token, &err) != 0) {
            app_message(app, 1, "%s", err.msg);
            return;
        }
        break;
    }
    case EDIT_COPY: {
        char word[APP_PROMPT_MAX];
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
        if (store_resolve_token(app->store, word, &req.src_token, &err) != 0) {
            app_message(app, 1, "%s", err.msg);
            return;
        }
        break;
    }
    case EDIT_RESET:
        break;
    }
    ev->request = req;
    edit_compute(app);
}

static void edit_ask(App *app, EditKind kind, const char *label) {
    EditView *ev = &app->edit;
    if (!app->have_model) {
        app_message(app, 1, "the edit screen needs --model");
        return;
    }
    ev->pending_kind = kind;
    ev->input.done = edit_value_done;
    ev->input.changed = NULL;
    app_open_input(app, &ev->input, label, "");
}

static void act_edit_scale(App *app) { edit_ask(app, EDIT_SCALE, "scale the sense vector by: "); }
static void act_edit_weight(App *app) { edit_ask(app, EDIT_WEIGHT, "sense weight (alpha multiplier): "); }
static void act_edit_replace(App *app) { edit_ask(app, EDIT_REPLACE, "replace OLD:NEW (every sense): "); }
static void act_edit_copy(App *app) { edit_ask(app, EDIT_COPY, "copy from WORD[:SENSE]: "); }
static void act_edit_reset(App *app) {
    if (!app->have_model) {
        app_message(app, 1, "the edit screen needs --model");
        return;
    }
    app->edit.pending_kind = EDIT_RESET;
    app->edit.input.text[0] = 0;
    app->edit.input.len = 0;
    edit_value_done(app, 1);
}

static void after_store_change(App *app) {
    BpError err = {0};
    if (app_reload_edits(app, &err) != 0) app_message(app, 1, "%s", err.msg);
    EditView *ev = &app->edit;
    int got = store_sense_words(app->store, ev->token, ev->sense, 5, ev->top_before, NULL, &err);
    ev->n_before = got < 0 ? 0 : got;
}

static void act_edit_save(App *app) {
    EditView *ev = &app->edit;
    if (!ev->have_preview) {
        app_message(app, 0, "no pending edit: s, w, r, c or x first");
        return;
    }
    if (app->db_mode == STORE_READ_ONLY) {
        app_message(app, 1, "%s is read-only: the edit cannot be saved", app->db_path);
        return;
    }
    BpError err = {0};
    int64_t id = 0;
    if (store_edit_commit(app->store, &ev->request, &id, &err) != 0) {
        app_message(app, 1, "%s", err.msg);
        return;
    }
    char description[256];
    snprintf(description, sizeof description, "%s", ev->preview.description);
    store_edit_preview_free(&ev->preview);
    ev->have_preview = 0;
    after_store_change(app);
    app_message(app, 0, "saved edit #%lld: %s", (long long)id, description);
}

static void act_edit_discard(App *app) {
    EditView *ev = &app->edit;
    if (!ev->have_preview) {
        app_message(app, 0, "nothing to discard");
        return;
    }
    store_edit_preview_free(&ev->preview);
    ev->have_preview = 0;
    app_message(app, 0, "edit discarded");
}

static void act_edit_undo(App *app) {
    if (app->db_mode == STORE_READ_ONLY) {
        app_message(app, 1, "%s is read-only", app->db_path);
        return;
    }
    BpError err = {0};
    int64_t id = 0;
    if (store_edit_undo(app->store, 0, &id, &err) != 0) {
        app_message(app, 1, "%s", err.msg);
        return;
    }
    after_store_change(app);
    app_message(app, 0, "undid edit #%lld", (long long)id);
}

const KeyBinding edit_keys[] = {
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

static void draw_prediction(App *app, Canvas *c, int row, int col, int width, int bottom,
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
        canvas_text(c, row, col + 9, width - 9, st,
                    app_word_label(app, p->top[i].id, label, sizeof label));
    }
}

static void draw_continuation(App *app, Canvas *c, int row, int col, int width, const int *prompt,
                              int n_prompt, const Prediction *p) {
    /* the prompt's last tokens dimmed, then the continuation */
    int x = 0;
    char text[160];
    int from = n_prompt > 2 ? n_prompt - 2 : 0;
    for (int i = from; i < n_prompt; i++) {
        x += canvas_text(c, row, col + x, width - x, STYLE_DIM, app_token_text(app, prompt[i], text, sizeof text));
    }
    for (int i = 0; i < p->n_continuation && x < width; i++) {
        app_token_text(app, p->continuation[i], text, sizeof text);
        x += canvas_text(c, row, col + x, width - x, STYLE_PROMOTED, text);
    }
}

void edit_draw(App *app, Canvas *c) {
    EditView *ev = &app->edit;
    int row = app_top_row(c), bottom = app_bottom_row(c);
    if (!app->have_model) {
        draw_needs_model(app, c, "edit");
        return;
    }
    char label[160];
    SenseInfo si = {0};
    BpError err = {0};
    store_sense_info(app->store, ev->token, ev->sense, &si, &err);
    canvas_printf(c, row++, 1, -1, STYLE_TITLE, "edit %s  #%d  sense %d   norm %.3f%s  weight %.2f",
                  app_word_label(app, ev->token, label, sizeof label), ev->token, ev->sense, si.norm,
                  si.vector_edited ? " (edited)" : "", si.weight);
    canvas_text(c, row++, 1, -1, STYLE_DIM,
                "s scale  w weight  r replace OLD:NEW  c copy WORD[:SENSE]  x reset");
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
                             app_word_label(app, ws[i].id, label, sizeof label));
            x += 2;
        }
    }
    row += 2;
    PromptView *pv = &app->prompt;
    if (pv->n_tokens == 0) {
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
    const Prediction *before = &pv->pred, *after = &ev->after;
    int before_ok = prediction_current(before, prompt_key(app));
    int after_ok = prediction_current(after, after_key(app));
    int rows = APP_TOP_PREDICTIONS;
    if (row + rows + 2 > bottom) rows = bottom - row - 2;
    for (int side = 0; side < 2; side++) {
        const Prediction *p = side ? after : before;
        int col = side ? half + 1 : 1;
        if (!(side ? after_ok : before_ok))
            draw_progress(app, c, row, col + 1, w - 1, side ? JOB_AFTER : JOB_PROMPT);
        else if (p->error[0])
            canvas_text(c, row, col, w, STYLE_ERROR, p->error);
        else
            draw_prediction(app, c, row, col, w, row + rows, p, side && before_ok ? before : NULL);
    }
    row += rows + 1;
    if (row < bottom && before_ok && after_ok) {
        canvas_text(c, row, 1, -1, STYLE_DIM, "greedy:");
        draw_continuation(app, c, row, 9, half - 10, pv->tokens, pv->n_tokens, before);
        draw_continuation(app, c, row, half + 1, w, pv->tokens, pv->n_tokens, after);
    }
}
