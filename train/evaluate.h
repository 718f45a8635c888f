/* evaluate.h - mean loss and perplexity of a model on a sequence of tokens.
 *
 * How the text is cut: windows of T = context tokens (T = min(context, n - 1)). Window
 * w feeds tokens [wT, wT + T) and scores the predictions of tokens [wT + 1, wT + T + 1),
 * so every token after the first is predicted exactly once, with between 0 and T - 1
 * tokens of context. When the windows do not divide the text, the last window is the
 * final T + 1 tokens of the text and scores only the predictions no earlier window made
 * (they get more context, not less). Windows run in batches of `batch` (padded with
 * repeats that are not scored), all of one shape (batch, T), without dropout, with
 * m->edits in force.
 *
 * mean loss = (sum of -log p(x_{i+1} | window prefix)) / (number of predictions), summed
 * in double (a batch whose every position is scored adds the model's mean loss times
 * its positions; other batches add each scored position's loss from the logits);
 * perplexity = exp(mean loss).
 */
#ifndef BP_EVALUATE_H
#define BP_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "../model/backpack.h"
#include "../text/tokfile.h"

typedef struct {
    double loss_sum;       /* of the predictions scored */
    double mean_loss;
    double perplexity;
    uint64_t predictions;  /* tokens scored */
    uint64_t windows;
} EvalResult;

/* Reads the ids through `get(ctx, i)` so token files (mmap) and int arrays both work.
 * max_windows > 0 stops after that many windows (the trainer's validation subset). */
typedef uint32_t (*TokenGetter)(const void *ctx, uint64_t i);

int evaluate(Backpack *m, TokenGetter get, const void *ctx, uint64_t n, int context, int batch,
             uint64_t max_windows, EvalResult *out, BpError *err);

/* The same on an int array and on an open token file. */
int evaluate_ids(Backpack *m, const int *ids, size_t n, int context, int batch,
                 uint64_t max_windows, EvalResult *out, BpError *err);
int evaluate_tokfile(Backpack *m, const TokFile *tf, int context, int batch,
                     uint64_t max_windows, EvalResult *out, BpError *err);

/* Slice `shard` of `shards` of evaluate_tokfile's windows (contiguous, the first
 * windows % shards slices one window more), in batches of `batch`: the loss_sum and
 * predictions of the slices add up to the whole evaluation's (data-parallel validation).
 * A slice may be empty (predictions 0, mean_loss NaN). */
int evaluate_tokfile_shard(Backpack *m, const TokFile *tf, int context, int batch,
                           uint64_t max_windows, int shard, int shards, EvalResult *out,
                           BpError *err);

#endif
