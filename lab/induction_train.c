/* induction_train.c - the training loop and the measures of the induction lab. */
#include "induction_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fileio.h"

void induction_run_defaults(InductionRun *r) {
    memset(r, 0, sizeof *r);
    r->model = (InductionConfig){.vocab_size = 65, .d = 256, .seq_len = 129, .n_layer = 2, .embed_std = 1};
    r->task = (InductionTask){.n_triggers = 5, .seq_len = 129};
    r->batch = 64;
    r->steps = 300;
    r->lr = 0.03;
    r->momentum = 0.9;
    r->weight_decay = 1e-4;
    r->seed = 42;
    r->eval_every = 10;
    r->eval_seqs = 256;
    r->ideal_beta = 10;
    r->ideal_gamma = 30;
}

/* Sequences (n, T) and their marks. */
static void draw_batch(const InductionStats *s, const InductionTask *t, Rng *rng, int n, int *tokens,
                       unsigned char *marks) {
    for (int i = 0; i < n; i++)
        induction_sequence(s, t, rng, tokens + (size_t)i * t->seq_len, marks + (size_t)i * t->seq_len,
                           NULL, NULL);
}

static int measure(InductionModel *m, const InductionRun *r, const InductionStats *s,
                   const int *tokens, const unsigned char *marks, InductionMeasure *out, BpError *err) {
    double lic = 0, lg = 0;
    long nic = 0, ng = 0, correct = 0;
    int T = r->task.seq_len;
    for (int i = 0; i < r->eval_seqs; i += r->batch) {
        int n = r->eval_seqs - i < r->batch ? r->eval_seqs - i : r->batch;
        if (induction_forward(m, tokens + (size_t)i * T, marks + (size_t)i * T, n, err) != 0) return -1;
        const InductionBatchStats *st = &m->stats;
        lic += st->loss_in_context * st->n_in_context, nic += st->n_in_context;
        lg += st->loss_global * st->n_global, ng += st->n_global;
        correct += st->in_context_correct;
    }
    out->accuracy = nic ? (double)correct / nic : NAN;
    out->loss_in_context = nic ? lic / nic : NAN;
    out->loss_global = ng ? lg / ng : NAN;
    out->n_in_context = nic;
    out->global_floor = induction_global_floor(s, &r->task, tokens, marks, r->eval_seqs);
    int triggers[INDUCTION_MAX_VOCAB];
    induction_fixed_triggers(s, &r->task, triggers);
    /* With fixed triggers only they are ever queried in layer 2 (the authors' probe). */
    induction_recalls(m, r->task.random_triggers ? NULL : triggers, r->task.n_triggers, &out->recalls);
    return 0;
}

static void json_number(char *buf, size_t size, double v) {
    if (isfinite(v)) snprintf(buf, size, "%.6g", v);
    else snprintf(buf, size, "null");
}

/* Appends one measure to the metrics text and rewrites metrics.jsonl. */
static int write_metrics(const InductionRun *r, char **text, size_t *len, const InductionMeasure *m,
                         BpError *err) {
    char v[8][32], line[512];
    double vals[8] = {m->train_loss, m->accuracy, m->loss_in_context, m->loss_global,
                      m->recalls.wo2 < 0 ? NAN : m->recalls.wo2, m->recalls.wk2 < 0 ? NAN : m->recalls.wk2,
                      m->recalls.wk1 < 0 ? NAN : m->recalls.wk1, m->seconds};
    for (int i = 0; i < 8; i++) json_number(v[i], sizeof v[i], vals[i]);
    int n = snprintf(line, sizeof line,
                     "{\"step\": %d, \"train_loss\": %s, \"accuracy\": %s, \"loss_in_context\": %s, "
                     "\"loss_global\": %s, \"wo2\": %s, \"wk2\": %s, \"wk1\": %s, \"seconds\": %s}\n",
                     m->step, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]);
    char *grown = realloc(*text, *len + (size_t)n + 1);
    if (!grown) return bp_fail(err, "metrics: out of memory");
    memcpy(grown + *len, line, (size_t)n + 1);
    *text = grown, *len += (size_t)n;
    if (!r->out_dir) return 0;
    char path[4096];
    if (path_join(path, sizeof path, r->out_dir, "metrics.jsonl", err) != 0) return -1;
    return write_file_atomic(path, *text, *len, err);
}

int induction_run(const InductionRun *r, const InductionStats *s, InductionReport report,
                  void *ctx, InductionMeasure *last, BpError *err) {
    InductionConfig mc = r->model;
    mc.vocab_size = s->n;
    mc.seq_len = r->task.seq_len;
    if (induction_task_validate(&r->task, s->n, err) != 0 || induction_config_validate(&mc, err) != 0)
        return -1;
    if (r->batch < 1 || r->eval_seqs < 1 || r->steps < 0 || r->eval_every < 0)
        return bp_fail(err, "--batch and --eval-seqs must be at least 1, --steps and --eval-every at least 0");
    if (r->out_dir && make_dirs(r->out_dir, err) != 0) return -1;
    int T = r->task.seq_len, rows = r->batch > r->eval_seqs ? r->batch : r->eval_seqs;
    InductionModel m;
    if (induction_model_build(&m, &mc, r->seed, err) != 0) return -1;
    int *tokens = malloc((size_t)rows * T * sizeof *tokens);
    int *eval_tokens = malloc((size_t)r->eval_seqs * T * sizeof *eval_tokens);
    unsigned char *marks = malloc((size_t)rows * T), *eval_marks = malloc((size_t)r->eval_seqs * T);
    char *metrics = NULL;
    size_t metrics_len = 0;
    int rc = -1;
    if (!tokens || !eval_tokens || !marks || !eval_marks) {
        bp_fail(err, "induction: out of memory");
        goto done;
    }
    Rng data_rng, eval_rng;
    rng_seed(&data_rng, r->seed ^ 0x243f6a8885a308d3ULL);
    rng_seed(&eval_rng, r->seed ^ 0x13198a2e03707344ULL);
    draw_batch(s, &r->task, &eval_rng, r->eval_seqs, eval_tokens, eval_marks);
    if (r->ideal && induction_set_ideal(&m, r->ideal_beta, r->ideal_gamma, err) != 0) goto done;
    int steps = r->ideal ? 0 : r->steps;
    double start = now_seconds(), train_loss = NAN;
    for (int step = 0;; step++) {
        if (step == steps || (r->eval_every > 0 && step % r->eval_every == 0)) {
            InductionMeasure me = {.step = step, .train_loss = train_loss};
            if (measure(&m, r, s, eval_tokens, eval_marks, &me, err) != 0) goto done;
            me.seconds = now_seconds() - start;
            if (write_metrics(r, &metrics, &metrics_len, &me, err) != 0) goto done;
            if (report) report(&me, ctx);
            if (last) *last = me;
        }
        if (step == steps) break;
        draw_batch(s, &r->task, &data_rng, r->batch, tokens, marks);
        if (induction_forward(&m, tokens, marks, r->batch, err) != 0) goto done;
        train_loss = m.stats.loss;
        induction_backward(&m);
        unsigned mask = INDUCTION_TRAIN_ALL;
        for (int i = 0; i < r->n_freezes; i++)
            if (step < r->freeze_until[i]) mask &= ~r->freeze_mask[i];
        induction_sgd_step(&m, r->lr, r->momentum, r->weight_decay, mask);
    }
    rc = 0;
done:
    free(tokens);
    free(eval_tokens);
    free(marks);
    free(eval_marks);
    free(metrics);
    induction_model_free(&m);
    return rc;
}
