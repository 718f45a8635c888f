#include "evaluate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* -log softmax(logits)[target] in double. */
static double token_loss(const float *logits, int V, int target) {
    float maxv = logits[0];
    for (int v = 1; v < V; v++)
        if (logits[v] > maxv) maxv = logits[v];
    double sum = 0.0;
    for (int v = 0; v < V; v++) sum += exp((double)logits[v] - (double)maxv);
    return log(sum) + (double)maxv - (double)logits[target];
}

/* Windows [w_begin, w_end) of the num_windows of evaluate(). */
static int evaluate_windows(Backpack *m, TokenGetter get, const void *ctx, uint64_t n, int context,
                            int batch, uint64_t max_windows, int shard, int shards,
                            EvalResult *out, BpError *err) {
    memset(out, 0, sizeof *out);
    const int V = m->config.vocab_size;
    if (n < 2) return bp_fail(err, "evaluation needs at least 2 tokens, got %llu", (unsigned long long)n);
    if (context < 1 || batch < 1) return bp_fail(err, "evaluation: context %d, batch %d", context, batch);
    if (context > m->config.n_positions) context = m->config.n_positions;
    const uint64_t T = (uint64_t)context < n - 1 ? (uint64_t)context : n - 1;
    const uint64_t preds_total = n - 1;
    uint64_t num_windows = (preds_total + T - 1) / T;
    if (max_windows > 0 && num_windows > max_windows) num_windows = max_windows;
    const uint64_t per = num_windows / (uint64_t)shards, extra = num_windows % (uint64_t)shards;
    const uint64_t s = (uint64_t)shard;
    const uint64_t w_begin = s * per + (s < extra ? s : extra);
    const uint64_t w_end = w_begin + per + (s < extra);
    for (uint64_t i = 0; i < n; i++)
        if (get(ctx, i) >= (uint32_t)V)
            return bp_fail(err, "token %llu has id %u, outside the model's vocabulary of %d",
                           (unsigned long long)i, get(ctx, i), V);

    int *inputs = malloc((size_t)batch * T * sizeof(int));
    int *targets = malloc((size_t)batch * T * sizeof(int));
    uint64_t *first_scored = malloc((size_t)batch * sizeof(uint64_t));
    uint64_t *starts = malloc((size_t)batch * sizeof(uint64_t));
    int rc = -1;
    if (!inputs || !targets || !first_scored || !starts) {
        bp_fail(err, "evaluation: out of memory");
        goto done;
    }
    double loss_sum = 0.0;
    uint64_t predictions = 0;
    for (uint64_t w0 = w_begin; w0 < w_end; w0 += (uint64_t)batch) {
        int rows = (int)((w_end - w0) < (uint64_t)batch ? (w_end - w0) : (uint64_t)batch);
        for (int b = 0; b < batch; b++) {
            uint64_t w = w0 + (uint64_t)(b < rows ? b : 0);
            uint64_t start = w * T, scored_from = 0;
            if (start + T > preds_total) {  /* the last, partial window: end-align it */
                start = preds_total - T;
                scored_from = w * T - start;
            }
            starts[b] = start;
            first_scored[b] = scored_from;
            for (uint64_t t = 0; t < T; t++) {
                inputs[(size_t)b * T + t] = (int)get(ctx, start + t);
                targets[(size_t)b * T + t] = (int)get(ctx, start + t + 1);
            }
        }
        if (backpack_forward(m, inputs, targets, batch, (int)T, NULL, err) != 0) goto done;
        int whole = rows == batch;
        for (int b = 0; b < rows; b++) whole = whole && first_scored[b] == 0;
        if (whole) {  /* every position scored: the model's own mean loss serves */
            loss_sum += (double)m->mean_loss * (double)batch * (double)T;
            predictions += (uint64_t)batch * T;
            out->windows += (uint64_t)rows;
            continue;
        }
        const float *logits = backpack_logits(m);
        for (int b = 0; b < rows; b++)
            for (uint64_t t = first_scored[b]; t < T; t++) {
                int target = (int)get(ctx, starts[b] + t + 1);
                loss_sum += token_loss(logits + ((size_t)b * T + t) * (size_t)V, V, target);
                predictions++;
            }
        out->windows += (uint64_t)rows;
    }
    out->loss_sum = loss_sum;
    out->predictions = predictions;
    out->mean_loss = predictions ? loss_sum / (double)predictions : NAN;
    out->perplexity = exp(out->mean_loss);
    rc = 0;
done:
    free(inputs);
    free(targets);
    free(first_scored);
    free(starts);
    return rc;
}

int evaluate(Backpack *m, TokenGetter get, const void *ctx, uint64_t n, int context, int batch,
             uint64_t max_windows, EvalResult *out, BpError *err) {
    return evaluate_windows(m, get, ctx, n, context, batch, max_windows, 0, 1, out, err);
}

static uint32_t get_int_array(const void *ctx, uint64_t i) { return (uint32_t)((const int *)ctx)[i]; }
static uint32_t get_tokfile(const void *ctx, uint64_t i) { return tokfile_get((const TokFile *)ctx, i); }

int evaluate_ids(Backpack *m, const int *ids, size_t n, int context, int batch,
                 uint64_t max_windows, EvalResult *out, BpError *err) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0) return bp_fail(err, "token %zu has negative id %d", i, ids[i]);
    return evaluate(m, get_int_array, ids, n, context, batch, max_windows, out, err);
}

int evaluate_tokfile(Backpack *m, const TokFile *tf, int context, int batch,
                     uint64_t max_windows, EvalResult *out, BpError *err) {
    return evaluate(m, get_tokfile, tf, tf->count, context, batch, max_windows, out, err);
}

int evaluate_tokfile_shard(Backpack *m, const TokFile *tf, int context, int batch,
                           uint64_t max_windows, int shard, int shards, EvalResult *out,
                           BpError *err) {
    if (shards < 1 || shard < 0 || shard >= shards)
        return bp_fail(err, "evaluation: slice %d of %d", shard, shards);
    return evaluate_windows(m, get_tokfile, tf, tf->count, context, batch, max_windows, shard,
                            shards, out, err);
}
