/* adamw.h - the optimizer of the spec: AdamW with decoupled weight decay on matrices
 * only, gradient clipping at a global norm, and the learning-rate schedule.
 *
 * The moments m and v are two allocations of num_parameters floats in the same layout
 * as the parameters (llm.c): element i of m and v belongs to element i of params.
 * Which elements are decayed is a list of ranges (offset, length) into that layout,
 * taken from the model's ParamEntry.is_matrix (biases, LayerNorms and the embeddings
 * are not decayed, as in the published training).
 *
 * One step, for every parameter p with gradient g (t counts steps from 1):
 *     m = b1 m + (1 - b1) g
 *     v = b2 v + (1 - b2) g^2
 *     p = p - lr (m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps) + wd p)    wd only on matrices
 * which is PyTorch's torch.optim.AdamW (p *= 1 - lr wd, then the Adam update) to rounding.
 */
#ifndef BP_ADAMW_H
#define BP_ADAMW_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "../model/backpack.h"

typedef struct {
    float beta1;          /* 0.9 */
    float beta2;          /* 0.999 */
    float eps;            /* 1e-8 */
    float weight_decay;   /* 0.1, on the decayed ranges only */
} AdamWConfig;

/* The spec's defaults: (0.9, 0.999), 1e-8, 0.1. */
AdamWConfig adamw_default_config(void);

typedef struct {
    size_t offset;
    size_t length;
} ParamRange;

typedef struct {
    AdamWConfig config;
    size_t num_parameters;
    float *m;             /* (num_parameters) first moment */
    float *v;             /* (num_parameters) second moment */
    uint64_t t;           /* steps taken */
    ParamRange *decay;    /* ranges that get weight decay */
    int num_decay;
} AdamW;

/* Zeroed moments for n parameters; decay ranges are copied. */
int adamw_build(AdamW *opt, const AdamWConfig *cfg, size_t num_parameters,
                const ParamRange *decay, int num_decay, BpError *err);
/* Builds for a model: the decayed ranges are its ParamEntries with is_matrix set. */
int adamw_build_for_model(AdamW *opt, const AdamWConfig *cfg, const Backpack *m, BpError *err);
void adamw_free(AdamW *opt);

/* Keeps only the moments of parameters [offset, offset + length) (a ZeRO-1 shard): m and
 * v shrink to length elements and the decay ranges move into the shard's coordinates, so
 * adamw_step(opt, params + offset, shard_grads, ...) updates the shard. */
int adamw_shard(AdamW *opt, size_t offset, size_t length, BpError *err);

/* One update of params with the gradient grad_scale * grads (each element multiplied as
 * a float) at learning rate lr; t advances by one. grad_scale carries clipping and the
 * mean over accumulated micro-batches, so the gradients are read once. */
void adamw_step(AdamW *opt, float *params, const float *grads, float grad_scale, float lr);

/* Global L2 norm of grads, accumulated in double in fixed blocks: the same value for any
 * number of threads. NaN or Inf when a gradient is. */
double grad_norm(const float *grads, size_t n);

/* Gradient clipping: max_norm / norm when max_norm > 0 and the (finite) norm exceeds it,
 * else 1. */
float clip_factor(double norm, double max_norm);

/* Learning rate at a point of the run: linear warmup over the first warmup_steps steps
 * (step counts from 0; step s uses (s+1)/warmup_steps of max_lr), then linear decay to 0
 * as `progress` (the fraction of the budget spent, 0..1) goes from `warmup_progress`
 * (the fraction spent when warmup ended) to 1:
 *     lr = max_lr (1 - progress) / (1 - warmup_progress)
 * With a step budget progress = step / total_steps and warmup_progress =
 * warmup_steps / total_steps, the classic warmup-then-linear-decay; with a time budget
 * progress is the fraction of the time spent, so the rate still reaches 0 at the end. */
float lr_schedule(float max_lr, uint64_t step, uint64_t warmup_steps, double progress,
                  double warmup_progress);

#endif
