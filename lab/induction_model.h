/* induction_model.h - the simplified transformer of "Birth of a Transformer: a memory
 * viewpoint" (docs/induction.md), forward and backward written out.
 *
 * Attention only, one head per layer, no LayerNorm, no MLP. On a sequence z_0..z_{T-1}
 * it reads the first T-1 tokens and predicts the last T-1 (positions t = 0..T-2):
 *     x_t = E[z_t] + P[t]
 *     per layer l: score(t, s) = x_t . (W_K^l x_s) / sqrt(d) for s <= t,
 *                  a = softmax_s(score),  x_t += W_O^l W_V^l sum_s a(t, s) x_s
 *     (--ffn) x_t += W_F x_t after the last layer
 *     logits_t = W_U x_t
 * E, P (entries N(0, 1/d), or N(0, embed_std^2)), W_U and every W_V^l, W_O^l (entries
 * N(0, 1/d)) are random and frozen, except the last layer's W_O, which is trained with every W_K^l and W_F
 * (these start N(0, 1/d) too, or zero with zero_init).
 * Loss: mean cross-entropy over the in-context targets (mark >= 2, induction_data.h) of
 * the batch, or over every predicted token with loss_all.
 *
 * The numeric code is over `ireal`: float normally; the gradient check compiles this
 * file again with INDUCTION_REAL_DOUBLE, which makes it double and renames the public
 * functions with the suffix _f64, so both copies link into one test.
 */
#ifndef BP_LAB_INDUCTION_MODEL_H
#define BP_LAB_INDUCTION_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

#define INDUCTION_MAX_LAYERS 3

typedef struct {
    int vocab_size;   /* N */
    int d;
    int seq_len;      /* T tokens per sequence: T-1 positions */
    int n_layer;      /* 1 to INDUCTION_MAX_LAYERS */
    int ffn;          /* W_F after the last layer */
    int loss_all;     /* loss on every token, not only the in-context targets */
    int zero_init;    /* trained matrices start at zero */
    double embed_std; /* E and P entries N(0, embed_std^2); 0: 1/sqrt(d) (unit norms, the
                         spec); 1 is the authors' code (nn.Embedding, torch.randn) */
} InductionConfig;

/* The trained matrices, as bits of a mask (for freezing). */
enum {
    INDUCTION_TRAIN_WK1 = 1 << 0,   /* W_K of layer 1; layer l is 1 << (l-1) */
    INDUCTION_TRAIN_WO = 1 << 4,    /* W_O of the last layer */
    INDUCTION_TRAIN_WF = 1 << 5,
    INDUCTION_TRAIN_ALL = 0x3f,
};

/* What the last forward measured (over the batch). */
typedef struct {
    double loss;            /* the training loss (mean over the selected tokens) */
    double loss_in_context; /* mean cross-entropy on the in-context targets */
    double loss_global;     /* ... on the tokens drawn from pi_b (mark 0) */
    long n_in_context, n_global;
    long in_context_correct;/* argmax == target on the in-context targets */
} InductionBatchStats;

/* Memory recalls (induction_recalls). */
typedef struct {
    double wo2, wk2, wk1;
} InductionRecalls;

#endif /* BP_LAB_INDUCTION_MODEL_H: what does not depend on the scalar type */

/* The declarations over ireal, once per scalar type. */
#ifdef INDUCTION_REAL_DOUBLE
#ifndef BP_LAB_INDUCTION_MODEL_F64
#define BP_LAB_INDUCTION_MODEL_F64
#define INDUCTION_DECLARE
#endif
#else
#ifndef BP_LAB_INDUCTION_MODEL_F32
#define BP_LAB_INDUCTION_MODEL_F32
#define INDUCTION_DECLARE
#endif
#endif

#ifdef INDUCTION_DECLARE
#undef INDUCTION_DECLARE
#undef ireal
#ifdef INDUCTION_REAL_DOUBLE
#define ireal double
#define InductionModel InductionModelF64
#define induction_model_build induction_model_build_f64
#define induction_model_free induction_model_free_f64
#define induction_forward induction_forward_f64
#define induction_backward induction_backward_f64
#define induction_sgd_step induction_sgd_step_f64
#define induction_recalls induction_recalls_f64
#define induction_set_ideal induction_set_ideal_f64
#define induction_config_validate induction_config_validate_f64
#else
#define ireal float
#endif

typedef struct {
    InductionConfig config;
    int n_pos;              /* T-1 */
    /* parameters: one allocation, named views */
    ireal *params;
    size_t num_params;
    ireal *emb;             /* (N, d) E */
    ireal *pos;             /* (n_pos, d) P */
    ireal *unemb;           /* (N, d) W_U: logits = W_U x */
    ireal *wk, *wv, *wo;    /* (L, d, d) each: y = W x with W[i][j] at i*d + j */
    ireal *wf;              /* (d, d) or NULL */
    /* gradients and momentum of the trained matrices: one allocation each, same layout */
    ireal *grads, *momentum;
    size_t num_grads;
    ireal *dwk;             /* (L, d, d) */
    ireal *dwo;             /* (d, d) the last layer's */
    ireal *dwf;             /* (d, d) or NULL */
    /* activations, sized for the largest batch seen (private layout in the .c) */
    ireal *acts;
    int acts_batch;
    int batch;              /* of the last forward */
    const int *tokens;      /* (batch, T) of the last forward, borrowed */
    float *loss_weight;     /* (batch, n_pos) 1/count on the selected targets */
    InductionBatchStats stats;
} InductionModel;

int induction_config_validate(const InductionConfig *c, BpError *err);

/* Allocates and draws every matrix from seed. */
int induction_model_build(InductionModel *m, const InductionConfig *c, uint64_t seed, BpError *err);
void induction_model_free(InductionModel *m);

/* Forward on tokens (B, T) with their marks (B, T); fills m->stats. tokens must stay
 * valid until the backward. Fails on an id out of [0, N). */
int induction_forward(InductionModel *m, const int *tokens, const unsigned char *marks, int B,
                      BpError *err);
/* Gradients of m->stats.loss into m->grads (overwritten), after a forward. */
void induction_backward(InductionModel *m);

/* SGD as torch.optim.SGD: g += wd * w; buf = momentum * buf + g; w -= lr * buf, on the
 * matrices whose bit is in `train_mask` (the others keep their weights and momentum). */
void induction_sgd_step(InductionModel *m, double lr, double momentum, double weight_decay,
                        unsigned train_mask);

/* The memory recalls of the spec (each a share in [0, 1], or -1 where undefined):
 *   wo2: tokens k with argmax_j w_U(j) . W_O^L W_V^L E[k] = k (the last layer);
 *   wk2: tokens k with argmax_j E[k] . W_K^L W_O^{L-1} W_V^{L-1} E[j] = k, over the
 *        `tokens` given (NULL: all N) - needs L >= 2;
 *   wk1: positions t in 1..P-1 (P = T-1) with argmax over s in 0..P-2 of
 *        P[t] . W_K^1 P[s] equal to t-1 (every s, not only s < t: the authors' probe). */
void induction_recalls(const InductionModel *m, const int *tokens, int n_tokens, InductionRecalls *r);

/* Sets the trained matrices to the ideal memories (needs L = 2), with s^2 = d embed_std^2
 * the squared norm of an embedding: W_K^1 = beta sqrt(d) / s^4 sum_t P[t] P[t-1]^T,
 * W_K^2 = beta sqrt(d) / s^4 sum_k E[k] (W_O^1 W_V^1 E[k])^T,
 * W_O^2 = gamma / s^2 sum_k w_U(k) (W_V^2 E[k])^T, W_F = 0: each stored pair scores
 * beta (attention) or gamma (logit) whatever the embeddings' scale. */
int induction_set_ideal(InductionModel *m, double beta, double gamma, BpError *err);

#endif /* the declarations over ireal */
