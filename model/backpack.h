/* backpack.h - the Backpack language model (../shared/backpack-spec.md) and its
 * Transformer baseline: configuration, parameters, training forward and backward.
 *
 * Layout follows llm.c's train_gpt2.c: one allocation holds every parameter, and
 * ParameterTensors are named views into it; gradients and the optimizer's moments use
 * the same layout (the same offsets into allocations of num_parameters floats).
 * Every matrix is stored exactly as in the Hugging Face checkpoint, so loading and
 * saving are plain copies: Conv1D weights are [in, out] (y = x W + b); the one
 * nn.Linear, sense_qkw (sense_weight_net.c_attn.weight), is [out, in] = [2d, d].
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

typedef enum {
    ARCH_BACKPACK = 0,     /* the Backpack LM of the spec */
    ARCH_TRANSFORMER = 1,  /* GPT-2 with the output tied to wte, applied to h = LN_f(X) */
} ModelArch;

typedef struct {
    ModelArch arch;
    int vocab_size;                /* V */
    int n_embd;                    /* d */
    int n_layer;                   /* L */
    int n_head;                    /* H, divides d */
    int num_senses;                /* k, divides d (ignored by ARCH_TRANSFORMER) */
    int n_positions;               /* maximum context length */
    int sense_intermediate_scale;  /* 4: the sense network's MLPs are d -> scale*d */
} BackpackConfig;

/* Checks ranges and divisibility; the message names the offending key. */
int backpack_config_validate(const BackpackConfig *c, BpError *err);

/* Parameters. Per-layer tensors are stacked along a leading L axis. Shapes are as
 * stored in the checkpoint (S = sense_intermediate_scale * d). For ARCH_TRANSFORMER
 * the sense tensors have zero size and their pointers are NULL. */
typedef struct {
    /* contextualization transformer (GPT-2) */
    float *wte;               /* (V, d)  E: input embedding, sense-network input, tied output */
    float *wpe;               /* (n_positions, d) */
    float *ln1w, *ln1b;       /* (L, d) */
    float *qkvw;              /* (L, d, 3d) */
    float *qkvb;              /* (L, 3d) */
    float *attprojw;          /* (L, d, d) */
    float *attprojb;          /* (L, d) */
    float *ln2w, *ln2b;       /* (L, d) */
    float *fcw;               /* (L, d, 4d) */
    float *fcb;               /* (L, 4d) */
    float *fcprojw;           /* (L, 4d, d) */
    float *fcprojb;           /* (L, d) */
    float *lnfw, *lnfb;       /* (d) */
    /* sense network */
    float *sense_lnw, *sense_lnb;         /* (d) LN_s */
    float *sense_ln1w, *sense_ln1b;       /* (d) LN_b1 */
    float *sense_fcw;                     /* (d, S) U_1 */
    float *sense_fcb;                     /* (S) c_1 */
    float *sense_projw;                   /* (S, d) U_2 */
    float *sense_projb;                   /* (d) c_2 */
    float *sense_ln2w, *sense_ln2b;       /* (d) LN_b2 */
    float *sense_final_fcw;               /* (d, S) F_1 */
    float *sense_final_fcb;               /* (S) f_1 */
    float *sense_final_projw;             /* (S, k*d) F_2 */
    float *sense_final_projb;             /* (k*d) f_2 */
    /* sense weights */
    float *sense_qkw;                     /* (2d, d) W_c as nn.Linear [out, in] */
    float *sense_qkb;                     /* (2d) b_c */
} ParameterTensors;

/* The fields of ParameterTensors in order: the layout of the one allocation. */
#define BP_NUM_PARAM_TENSORS 32

/* Element count of each ParameterTensors field, in field order (0 for the sense
 * tensors of ARCH_TRANSFORMER); returns the total. The config must be valid. */
size_t backpack_param_sizes(const BackpackConfig *c, size_t sizes[BP_NUM_PARAM_TENSORS]);

/* Points every field of t into memory (which holds backpack_param_sizes() floats);
 * fields of size 0 become NULL. */
void backpack_point_tensors(const BackpackConfig *c, float *memory, ParameterTensors *t);

/* One checkpoint tensor: its Hugging Face name, stored shape and view. Per-layer
 * tensors appear once per layer ("backpack.gpt2_model.h.3.ln_1.weight"). For
 * ARCH_TRANSFORMER the names are GPT-2's ("transformer.h.3.ln_1.weight"). */
#define PARAM_NAME_MAX 96
typedef struct {
    char name[PARAM_NAME_MAX];
    int ndim;
    int shape[2];
    float *data;              /* points into the params (or grads) allocation */
    int is_matrix;            /* 1: AdamW weight decay applies (not biases, LNs, embeddings) */
} ParamEntry;

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

/* Edits that steer the model (the paper's interventions), applied by the forward pass
 * and by infer.h. The sense store (senses/) composes its edit rows into this form. */
typedef struct {
    int token;                /* vocabulary id x */
    int sense;                /* sense index l */
    const float *vector;      /* (d) replaces C(x)_l, or NULL to keep the computed one */
    float weight;             /* multiplies alpha_l[i, j] wherever x_j == x (1 = none) */
} SenseEdit;

typedef struct {
    const SenseEdit *items;
    int count;
} SenseEdits;

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
} Backpack;

/* Allocates the parameters (zeroed) for a validated config. */
int backpack_build(Backpack *m, const BackpackConfig *c, BpError *err);
void backpack_free(Backpack *m);

/* The spec's initialization: N(0, 0.02), the residual projections N(0, 0.02/sqrt(2L)),
 * biases 0, LayerNorm gains 1. */
void backpack_init_weights(Backpack *m, uint64_t seed);

/* Number of checkpoint tensors and their table (views into `tensors`, which is
 * m->params or m->grads - the latter only once allocated by backpack_zero_grad or
 * backpack_backward). `out` must hold backpack_num_param_entries() items, in the
 * order of the spec's tensor list, layer by layer. */
int backpack_num_param_entries(const BackpackConfig *c);
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
