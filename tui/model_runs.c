/* model_runs.c - the browser's model: the prompt, the runs on it and their scheduler. */
#include "model_runs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/checkpoint.h"
#include "../senses/edits.h"

/* ---- opening ------------------------------------------------------------------------- */

int runs_open(ModelRuns *r, const char *model_dir, SenseStore *store, BpError *err) {
    memset(r, 0, sizeof *r);
    if (checkpoint_load(&r->model, model_dir, err) != 0) return -1;
    if (r->model.config.arch != ARCH_BACKPACK) {
        bp_fail(err, "%s: not a Backpack model (a Transformer has no senses)", model_dir);
        goto fail;
    }
    if (store_check_model(store, &r->model, err) != 0) goto fail;
    BpError tok_err = {0};
    if (tokenizer_load(&r->tokenizer, model_dir, &tok_err) != 0) {
        r->tokenizer = NULL;
        snprintf(r->tokenizer_error, sizeof r->tokenizer_error, "%s", tok_err.msg);
    }
    int max_len = r->model.config.n_positions < RUNS_MAX_CONTEXT ? r->model.config.n_positions
                                                                 : RUNS_MAX_CONTEXT;
    if (infer_build(&r->infer, &r->model, max_len, err) != 0) goto fail;
    r->continuation_len = max_len / 2 < RUNS_CONTINUATION ? max_len / 2 : RUNS_CONTINUATION;
    r->tokens = malloc((size_t)(max_len - r->continuation_len) * sizeof(int));
    if (!r->tokens) {
        bp_fail(err, "out of memory");
        goto fail;
    }
    if (runs_reload_edits(r, store, err) != 0) goto fail;
    return 0;
fail:
    runs_close(r);
    return -1;
}

static void job_free(ModelRuns *r) {
    free(r->job.composed);
    memset(&r->job, 0, sizeof r->job);
}

void runs_close(ModelRuns *r) {
    job_free(r);
    infer_free(&r->infer);
    backpack_free(&r->model);
    if (r->tokenizer) tokenizer_free(r->tokenizer);
    sense_edits_free(&r->edits_in_force);
    free(r->tokens);
    layer_plan_free(&r->plan);
    memset(r, 0, sizeof *r);
}

int runs_set_layers(ModelRuns *r, const char *plan_text, BpError *err) {
    LayerPlan plan;
    if (layer_plan_parse(&plan, plan_text, r->model.config.n_layer, err) != 0) return -1;
    int max_len = r->infer.max_len;
    const SenseEdits *edits = r->infer.edits;
    infer_free(&r->infer);  /* its caches are per block run: rebuilt for the plan */
    layer_plan_free(&r->plan);
    r->plan = plan;
    r->model.plan = &r->plan;
    if (infer_build(&r->infer, &r->model, max_len, err) != 0) return -1;
    infer_set_edits(&r->infer, edits);
    return 0;
}

int runs_reload_edits(ModelRuns *r, SenseStore *store, BpError *err) {
    SenseEdits fresh = {0};
    if (store_sense_edits(store, &fresh, err) != 0) return -1;
    sense_edits_free(&r->edits_in_force);
    r->edits_in_force = fresh;
    r->edits_version++;
    return 0;
}

/* ---- the prompt and the pending edit ---------------------------------------------------- */

int runs_set_prompt(ModelRuns *r, const char *text, size_t len, int *kept, BpError *err) {
    *kept = 0;
    if (!r->tokenizer) return bp_fail(err, "cannot encode a prompt: %s", r->tokenizer_error);
    size_t n = 0, cap = 0;
    int *ids = NULL;
    if (tokenizer_encode(r->tokenizer, text, len, &ids, &n, &cap, err) != 0) {
        free(ids);
        return -1;
    }
    size_t room = (size_t)(r->infer.max_len - r->continuation_len);  /* >= 1 (runs_open) */
    if (n > room) {
        memmove(ids, ids + (n - room), room * sizeof(int));
        n = room;
        *kept = (int)room;
    }
    if (n > 0) memcpy(r->tokens, ids, n * sizeof(int));
    r->n_tokens = (int)n;
    free(ids);
    r->prompt_version++;
    return 0;
}

void runs_set_preview(ModelRuns *r, const EditPreview *preview) {
    r->preview = preview;
    r->preview_id++;
}

/* ---- what is wanted ---------------------------------------------------------------------- */

static int key_equal(RunKey a, RunKey b) {
    return a.prompt_version == b.prompt_version && a.edits_version == b.edits_version &&
           a.preview_id == b.preview_id;
}

static RunKey prompt_key(const ModelRuns *r) { return (RunKey){r->prompt_version, r->edits_version, 0}; }
static RunKey after_key(const ModelRuns *r) {
    return (RunKey){r->prompt_version, r->edits_version, r->preview_id};
}

static int prediction_current(const Prediction *p, RunKey key) { return p->valid && key_equal(p->key, key); }

int runs_prompt_current(const ModelRuns *r) { return prediction_current(&r->pred, prompt_key(r)); }
int runs_after_current(const ModelRuns *r) { return prediction_current(&r->after, after_key(r)); }
int runs_prompt_ready(const ModelRuns *r) { return runs_prompt_current(r) && !r->pred.error[0]; }

static JobKind wanted_job(const ModelRuns *r) {
    if (r->n_tokens == 0) return JOB_NONE;
    if (!runs_prompt_current(r)) return JOB_PROMPT;
    if (r->preview && !runs_after_current(r)) return JOB_AFTER;
    return JOB_NONE;
}

void runs_progress(const ModelRuns *r, JobKind kind, int *done, int *total) {
    *total = r->n_tokens + r->continuation_len;
    *done = r->job.kind == kind ? r->job.fed + r->job.result.n_continuation : 0;
}

/* ---- one run, one token at a time ---------------------------------------------------------- */

/* The edits in force with the preview's changes on top (each change replaces the
 * state of its sense: vector and weight). */
static SenseEdit *compose_edits(const ModelRuns *r, int *count) {
    const SenseEdits *in = &r->edits_in_force;
    const EditPreview *pv = r->preview;
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

static int job_start(ModelRuns *r, JobKind kind, BpError *err) {
    ModelJob *j = &r->job;
    job_free(r);
    j->kind = kind;
    if (kind == JOB_PROMPT) {
        j->key = prompt_key(r);
        j->edits = r->edits_in_force;
    } else {
        j->key = after_key(r);
        int count = 0;
        j->composed = compose_edits(r, &count);
        if (!j->composed) return bp_fail(err, "out of memory");
        j->edits = (SenseEdits){j->composed, count};
    }
    infer_set_edits(&r->infer, &j->edits);
    infer_reset(&r->infer);
    return 0;
}

static float dot(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Right after the prompt's last token: every prediction's largest contributions. */
static void compute_contributions(ModelRuns *r, const Prediction *pred) {
    const float *alpha = infer_alpha(&r->infer);
    const float *senses = infer_context_senses(&r->infer);
    int k = r->model.config.num_senses, d = r->model.config.n_embd;
    int n = r->infer.len, max_len = r->infer.max_len;
    for (int p = 0; p < pred->n_top; p++) {
        const float *e = r->model.params.wte + (size_t)pred->top[p].id * d;
        Contribution *best = r->contrib[p];
        int count = 0;
        float logit = 0;
        for (int j = 0; j < n; j++)
            for (int l = 0; l < k; l++) {
                float a = alpha[l * max_len + j];
                float score = dot(e, senses + ((size_t)j * k + l) * d, d);
                Contribution cand = {j, r->tokens[j], l, a, score, a * score};
                logit += cand.contribution;
                if (count == RUNS_CONTRIBUTIONS && cand.contribution <= best[count - 1].contribution)
                    continue;
                int i = count < RUNS_CONTRIBUTIONS ? count++ : count - 1;
                while (i > 0 && best[i - 1].contribution < cand.contribution) {
                    best[i] = best[i - 1];
                    i--;
                }
                best[i] = cand;
            }
        r->n_contrib[p] = count;
        r->logit[p] = logit;
    }
}

static void top_predictions(const float *logits, int V, Prediction *out) {
    int ids[RUNS_TOP_PREDICTIONS];
    float probs[RUNS_TOP_PREDICTIONS];
    int n = V < RUNS_TOP_PREDICTIONS ? V : RUNS_TOP_PREDICTIONS;
    top_probabilities(logits, V, n, ids, probs);
    for (int i = 0; i < n; i++) {
        out->top[i].id = ids[i];
        out->top[i].score = probs[i];
    }
    out->n_top = n;
}

/* One token through the model. Returns 1 when the job is complete, -1 on failure. */
static int job_step(ModelRuns *r, BpError *err) {
    ModelJob *j = &r->job;
    InferState *s = &r->infer;
    int V = r->model.config.vocab_size, n = r->n_tokens;
    if (j->fed < n - 1) {
        if (infer_feed(s, r->tokens[j->fed], err) != 0) return -1;
        j->fed++;
        return 0;
    }
    if (j->fed == n - 1) {
        j->logits = infer_step(s, r->tokens[n - 1], err);
        if (!j->logits) return -1;
        j->fed++;
        top_predictions(j->logits, V, &j->result);
        if (j->kind == JOB_PROMPT) compute_contributions(r, &j->result);
        return 0;
    }
    /* the greedy continuation: temperature 0 is the argmax, lowest id on ties, and draws
     * nothing from an Rng */
    if (j->result.n_continuation >= r->continuation_len) return 1;
    const SamplerConfig greedy = {0};
    int next = sample_token(j->logits, V, &greedy, NULL);
    j->result.continuation[j->result.n_continuation++] = next;
    if (j->result.n_continuation == r->continuation_len || s->len >= s->max_len) return 1;
    j->logits = infer_step(s, next, err);
    return j->logits ? 0 : -1;
}

/* ---- the scheduler ------------------------------------------------------------------------- */

int runs_busy(ModelRuns *r) {
    if (r->job.kind != JOB_NONE) {
        RunKey want = r->job.kind == JOB_PROMPT ? prompt_key(r) : after_key(r);
        if (key_equal(r->job.key, want) && r->n_tokens > 0 && (r->job.kind == JOB_PROMPT || r->preview))
            return 1;
        job_free(r);  /* what it was computing changed: drop it */
    }
    return wanted_job(r) != JOB_NONE;
}

int runs_work(ModelRuns *r) {
    if (!runs_busy(r)) return 0;
    BpError err = {0};
    if (r->job.kind == JOB_NONE && job_start(r, wanted_job(r), &err) != 0) {
        /* record the failure for what was wanted, so it is not retried forever */
        int prompt = wanted_job(r) == JOB_PROMPT;
        Prediction *target = prompt ? &r->pred : &r->after;
        memset(target, 0, sizeof *target);
        target->valid = 1;
        target->key = prompt ? prompt_key(r) : after_key(r);
        snprintf(target->error, sizeof target->error, "%s", err.msg);
        job_free(r);
        return runs_busy(r);
    }
    int rc = job_step(r, &err);
    if (rc != 0) {
        ModelJob *j = &r->job;
        Prediction *target = j->kind == JOB_PROMPT ? &r->pred : &r->after;
        *target = j->result;
        target->valid = 1;
        target->key = j->key;
        if (rc < 0) snprintf(target->error, sizeof target->error, "%s", err.msg);
        job_free(r);
    }
    return runs_busy(r);
}

void runs_drain(ModelRuns *r) {
    while (runs_work(r)) {
    }
}
