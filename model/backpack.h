/* backpack.h - the Backpack language model (docs/backpack-spec.md) and its
 * Transformer baseline: building, initialization, training forward and backward.
 * The configuration and the edits are config.h's; the parameter tensors, their
 * layout and checkpoint names are params.h's one table.
 *
 * Layout follows llm.c's train_gpt2.c: one allocation holds every parameter, and
 * ParameterTensors are named views into it; gradients and the optimizer's moments use
 * the same layout (the same offsets into allocations of num_parameters floats).
 *
 * The model knows nothing of files, SQLite or curses: checkpoint.h reads and writes it,
 * infer.h runs it one token at a time, senses/ and tui/ use those.
 */
#ifndef BP_BACKPACK_H
#define BP_BACKPACK_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "../common/rng.h"
#include "config.h"
#include "params.h"
#include "plan.h"

/* Dropout and other training-time switches.
 * Dropout sites are those of the Hugging Face code: the transformer's embeddings,
 * attention probabilities, attention and MLP outputs; in the sense network its input
 * embedding, the LN_s branch, the block MLP (mlp and residual dropout) and the final
 * MLP. The sense network runs once per distinct word of the batch, so a word's
 * sense-network masks are shared by its occurrences in one batch. A forward draws one
 * 64-bit seed from rng; every mask element is a hash of (seed, site, index), so the
 * masks do not depend on the thread count and backward regenerates them. */
typedef struct {
    float dropout;            /* 0 disables; in [0, 1) */
    Rng *rng;                 /* dropout masks; required when dropout > 0 */
    uint64_t first_row;       /* the batch is rows [first_row, first_row + B) of a larger
                               * one split over processes: the position-indexed masks are
                               * that batch's (the sense network's are per word anyway) */
} TrainOptions;

typedef struct BackpackActivations BackpackActivations;  /* private to backpack.c */

typedef struct {
    BackpackConfig config;
    ParameterTensors params;
    float *params_memory;     /* (num_parameters) the one allocation */
    size_t num_parameters;
    ParameterTensors grads;
    float *grads_memory;      /* (num_parameters) allocated lazily by backward */
    BackpackActivations *acts;/* sized for (B, T) on first forward; private */
    int batch_size, seq_len;  /* of the last forward */
    float mean_loss;          /* of the last forward with targets, else -1 */
    const SenseEdits *edits;  /* NULL in training; eval --edits sets it */
    const LayerPlan *plan;    /* NULL: blocks 0..L-1; else the forward passes and infer.h
                               * run the contextualization blocks as it says (plan.h;
                               * no backward under a plan) */
} Backpack;

/* Allocates the parameters (zeroed) for a validated config. */
int backpack_build(Backpack *m, const BackpackConfig *c, BpError *err);
void backpack_free(Backpack *m);

/* The spec's initialization: N(0, 0.02), the residual projections N(0, 0.02/sqrt(2L)),
 * biases 0, LayerNorm gains 1. */
void backpack_init_weights(Backpack *m, uint64_t seed);

/* The checkpoint tensor table (params.h) of m, with views into `tensors`, which is
 * m->params or m->grads - the latter only once allocated by backpack_zero_grad or
 * backpack_backward. `out` must hold backpack_num_param_entries() items. */
void backpack_param_entries(const Backpack *m, const ParameterTensors *tensors, ParamEntry *out);

/* Training forward on inputs (B, T) token ids; targets (B, T) or NULL. With targets,
 * sets m->mean_loss to the mean cross-entropy. opts may be NULL (no dropout). Applies
 * m->edits (Backpack only). Fails, without touching the model, on ids outside
 * [0, V), T > n_positions, or an edit naming a word or sense out of range.
 * Activations are sized for the largest (B, T) seen; smaller batches reuse them, so a
 * training loop allocates only on its first step. The sense network runs once per
 * distinct word of the batch. */
int backpack_forward(Backpack *m, const int *inputs, const int *targets, int B, int T,
                     const TrainOptions *opts, BpError *err);

/* Logits (B, T, V) of the last forward. backpack_backward reuses this buffer for the
 * logits' gradient (it would otherwise double the largest activation), so read the
 * logits before calling backward. */
const float *backpack_logits(const Backpack *m);

/* The residual stream after each block, (L, B, T, d), of the last forward if it ran
 * without a plan; else NULL. For the layer-similarity matrix (docs/layer-plans.md). */
const float *backpack_block_outputs(const Backpack *m);

/* Zeroes m->grads (allocating them on first use). */
void backpack_zero_grad(Backpack *m);
/* Accumulates d(mean_loss)/d(params) into m->grads (after a forward with targets; one
 * backward per forward). Allocates the gradients on first use. */
int backpack_backward(Backpack *m, BpError *err);

/* The sense network on n word ids: out (n, k, d) = C(x) (m->edits with a vector
 * replace the computed rows). Context-free, so it serves export and generation; no
 * dropout; parallel inside. Ids outside [0, V) get zero rows. ARCH_TRANSFORMER has no
 * senses and leaves out untouched. */
void backpack_compute_senses(const Backpack *m, const int *tokens, int n, float *out);

/* A 64-bit hash of every parameter's bytes, as 16 hex digits + NUL: identifies a model
 * (the sense store records it so that edits never meet another model's senses). */
void backpack_weights_hash(const Backpack *m, char hex[17]);

#endif
