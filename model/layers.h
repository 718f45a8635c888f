/* layers.h - the forward/backward pairs the model is made of (llm.c style), over the
 * scalar type `real` (real.h: float for the model, double for the gradient check).
 *
 * Conventions. Shapes in comments: N rows (B*T positions, or distinct words), C
 * input channels, OC output channels. Backward functions ACCUMULATE (+=) into
 * parameter gradients; into input gradients they OVERWRITE (=), except
 * layernorm_backward, which accumulates (+=) because its input is a residual stream
 * whose gradient already holds the skip path. Every function is parallel inside
 * (OpenMP over rows / (batch, head)); the matrix products are cblas gemm calls.
 *
 * Dropout is a hash of (seed, site, element index), so masks need no storage and no
 * shared generator: backward regenerates them, results do not depend on threads.
 */
#ifndef BP_LAYERS_H
#define BP_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "real.h"

#ifdef BP_REAL_DOUBLE
#define encoder_forward encoder_forward_f64
#define encoder_backward encoder_backward_f64
#define dropout_apply dropout_apply_f64
#define layernorm_forward layernorm_forward_f64
#define layernorm_backward layernorm_backward_f64
#define matmul_forward matmul_forward_f64
#define matmul_backward matmul_backward_f64
#define linear_forward linear_forward_f64
#define linear_backward linear_backward_f64
#define gelu_forward gelu_forward_f64
#define gelu_backward gelu_backward_f64
#define residual_forward residual_forward_f64
#define softmax_forward softmax_forward_f64
#define attention_forward attention_forward_f64
#define attention_backward attention_backward_f64
#define sense_weights_forward sense_weights_forward_f64
#define sense_weights_backward sense_weights_backward_f64
#define mix_forward mix_forward_f64
#define mix_backward mix_backward_f64
#define crossentropy_forward crossentropy_forward_f64
#define crossentropy_backward crossentropy_backward_f64
#define synth_mixture_weights synth_mixture_weights_f64
#define synth_scores synth_scores_f64
#define synth_attention_forward synth_attention_forward_f64
#define synth_attention_backward synth_attention_backward_f64
#define synth_scores_backward synth_scores_backward_f64
#define headwise_forward headwise_forward_f64
#define headwise_backward headwise_backward_f64
#define relu_forward relu_forward_f64
#define relu_backward relu_backward_f64
#endif

/* Positions of each distinct word of a batch, grouped (CSR): word u = words[u] occurs
 * at positions pos[off[u] .. off[u+1]). Lets gradients that scatter into embedding
 * rows run in parallel without conflicts. */
typedef struct {
    int count;          /* U distinct words */
    const int *words;   /* (U) vocabulary ids */
    const int *off;     /* (U+1) */
    const int *pos;     /* (N) positions, grouped by word */
} WordGroups;

/* out (B,T,C) = wte[inp] + wpe[t] */
void encoder_forward(real *out, const int *inp, const real *wte, const real *wpe, int B,
                     int T, int C);
/* dwte[words] += grouped sums of dout; dwpe[t] += sum_b dout[b,t] */
void encoder_backward(real *dwte, real *dwpe, const real *dout, const WordGroups *g, int B,
                      int T, int C);

/* Inverted dropout in place on x (rows, width): x *= keep / (1 - p), where keep is a
 * hash of (seed, site, id(r) * width + c) and id(r) = row_ids ? row_ids[r] : r.
 * The same call on the gradient is the backward. p = 0 does nothing. */
void dropout_apply(real *x, int rows, int width, const int *row_ids, real p, uint64_t seed,
                   uint64_t site);

/* The mask hash is linear in the element index (seed + index * DROPOUT_INDEX_STRIDE, then
 * mixed), so the masks of a batch that starts `first` elements into a larger batch are
 * those of the larger one with the seed dropout_seed_from(seed, first). Data-parallel
 * training uses it to draw, on each process, the masks of its rows of the global batch. */
#define DROPOUT_INDEX_STRIDE 0xD1B54A32D192ED69ULL
static inline uint64_t dropout_seed_from(uint64_t seed, uint64_t first) {
    return seed + first * DROPOUT_INDEX_STRIDE;
}

/* out (N,C) = (inp - mean) * rstd * weight + bias; eps 1e-5, biased variance.
 * mean, rstd (N) are kept for backward. */
void layernorm_forward(real *out, real *mean, real *rstd, const real *inp, const real *weight,
                       const real *bias, int N, int C);
/* dinp += ..., dweight += ..., dbias += ... */
void layernorm_backward(real *dinp, real *dweight, real *dbias, const real *dout,
                        const real *inp, const real *weight, const real *mean,
                        const real *rstd, int N, int C);

/* Conv1D: out (N,OC) = inp (N,C) weight (C,OC) + bias (OC); bias may be NULL. */
void matmul_forward(real *out, const real *inp, const real *weight, const real *bias, int N,
                    int C, int OC);
/* dinp (N,C) = dout weight^T (skipped when dinp is NULL); dweight += inp^T dout;
 * dbias += column sums of dout (when dbias is not NULL). */
void matmul_backward(real *dinp, real *dweight, real *dbias, const real *dout,
                     const real *inp, const real *weight, int N, int C, int OC);

/* nn.Linear: out (N,OC) = inp (N,C) weight^T + bias, weight stored (OC,C). */
void linear_forward(real *out, const real *inp, const real *weight, const real *bias, int N,
                    int C, int OC);
void linear_backward(real *dinp, real *dweight, real *dbias, const real *dout,
                     const real *inp, const real *weight, int N, int C, int OC);

/* out = gelu(inp) (tanh form), n elements; backward: dinp = dout * gelu'(inp). */
void gelu_forward(real *out, const real *inp, size_t n);
void gelu_backward(real *dinp, const real *inp, const real *dout, size_t n);

/* out = a + b, n elements (backward is the identity on both inputs). */
void residual_forward(real *out, const real *a, const real *b, size_t n);

/* In-place softmax of one row x[0..n), n >= 1: the numerics of the attention and
 * sense-weight softmaxes below, for the one-position-at-a-time path (model/infer.c). */
void softmax_forward(real *x, int n);

/* Causal multi-head self-attention on qkv (B,T,3C) (Q|K|V, head h at columns
 * [h hs, (h+1) hs) of each): att (B,NH,T,T) = softmax_j<=i(scale Q K^T) (zeros above
 * the diagonal), out (B,T,C) = dropout(att) V. scratch: (threads, 2 T T). */
void attention_forward(real *out, real *att, const real *qkv, int B, int T, int C, int NH,
                       real scale, real p, uint64_t seed, uint64_t site, real *scratch);
/* dqkv (B,T,3C) = ... (overwritten) */
void attention_backward(real *dqkv, const real *dout, const real *qkv, const real *att,
                        int B, int T, int C, int NH, real scale, real p, uint64_t seed,
                        uint64_t site, real *scratch);

/* The Backpack's sense weights on qk (B,T,2C) (queries | keys, sense l at columns
 * [l C/K, (l+1) C/K) of each): alpha (B,K,T,T) = softmax_j<=i(Q_l K_l^T / sqrt(C/K)). */
void sense_weights_forward(real *alpha, const real *qk, int B, int T, int C, int K);
/* dqk (B,T,2C) (overwritten); dalpha is consumed (overwritten with the scores' grad). */
void sense_weights_backward(real *dqk, real *dalpha, const real *qk, const real *alpha, int B,
                            int T, int C, int K);

/* out (B,T,C): o_i = sum_l sum_j alpha (B,K,T,T)[b,l,i,j] senses (B,T,K,C)[b,j,l].
 * alpha must be causal (zero above the diagonal, as sense_weights_forward makes it):
 * blocks of 64 x 64 wholly above the diagonal are not read. */
void mix_forward(real *out, const real *alpha, const real *senses, int B, int T, int C, int K);
/* dalpha (B,K,T,T), dsenses (B,T,K,C), both overwritten (dalpha is 0 in the blocks
 * wholly above the diagonal; elsewhere above the diagonal it holds the true products,
 * which sense_weights_backward ignores). */
void mix_backward(real *dalpha, real *dsenses, const real *dout, const real *alpha,
                  const real *senses, int B, int T, int C, int K);

/* ------------------------------------------------------------------------------------ */
/* Synthesizer attention (docs/synthesizer.md): per head, scores B (T,T) from one or more
 * kinds (AttentionKind); with several, B = sum_c w_c B_c, w = softmax(v) per head.
 * Then P = dropout(causal softmax(B)) and out = P V, as for dot-product attention
 * (the pure dot model keeps attention_forward above). A sequence of T < n positions
 * uses the top-left (T,T) block of the (n,n) score tables. */

/* Everything one layer's scores read (B sequences of T positions, C channels, NH
 * heads of hs = C/NH). Pointers of kinds not in `kinds` are not read. */
typedef struct {
    unsigned kinds;               /* AttentionKind set */
    int n;                        /* n_positions: row length of R and W_2 */
    int fa, fb, rank;             /* factorized dense a, b (a b = n); factorized random r */
    real dot_scale;               /* 1 / (sqrt(hs) (l+1)) */
    const real *qkv;              /* (B,T,qkv_width): Q | K | V with ATTN_DOT, else V */
    int qkv_width;                /* 3C or C */
    const real *dense_act;        /* (B,T,C) relu(X W_1 + b_1); head h: columns h hs.. */
    const real *dense_w2;         /* (C,n) W_2; head h: rows h hs.. */
    const real *dense_b2;         /* (NH,n) */
    const real *random;           /* (NH n, n) R */
    const real *fixed_random;     /* (NH n, n) */
    const real *fd_a, *fd_b;      /* (B,T,NH fa), (B,T,NH fb): B_1, B_2 of every head */
    const real *fr1, *fr2;        /* (NH n, rank) R_1, R_2 */
    const real *mix;              /* (NH, count) w = softmax(v), NULL for one kind */
} SynthScores;

/* Their gradients: "+=" accumulate (parameters), "=" overwrite (activations). */
typedef struct {
    real *dqkv;                   /* = Q and K parts (ATTN_DOT); V is attention's */
    real *ddense_act;             /* = (B,T,C) */
    real *ddense_w2, *ddense_b2;  /* += */
    real *drandom;                /* += (the fixed random table gets none) */
    real *dfd_a, *dfd_b;          /* = */
    real *dfr1, *dfr2;            /* += */
    real *dmix;                   /* += (NH, count) d loss / d v */
} SynthGrads;

/* w (NH, count) = softmax of each row of v (NH, count). */
void synth_mixture_weights(real *w, const real *v, int NH, int count);

/* S (T,T) = B_kind of sequence b, head h (entries above the diagonal unspecified). */
void synth_scores(real *S, const SynthScores *s, unsigned kind, int b, int h, int T, int C,
                  int NH);

/* att (B,NH,T,T) = P (zeros above the diagonal), out (B,T,C) = P V, V read from s->qkv.
 * scratch: (threads, 2 T T). */
void synth_attention_forward(real *out, real *att, const SynthScores *s, int B, int T, int C,
                             int NH, real p, uint64_t seed, uint64_t site, real *scratch);
/* dscores (B,NH,T,T) = d loss / d B (zeros above the diagonal) and the V part of
 * dqkv (B,T,qkv_width), both overwritten. */
void synth_attention_backward(real *dscores, real *dqkv, const real *dout, const SynthScores *s,
                              const real *att, int B, int T, int C, int NH, real p,
                              uint64_t seed, uint64_t site, real *scratch);
/* From dscores, every kind's gradients into g. scratch: (threads, 2 T T). */
void synth_scores_backward(const SynthGrads *g, const real *dscores, const SynthScores *s,
                           int B, int T, int C, int NH, real *scratch);

/* Per head linear maps: out (N, NH OC) = head h of inp (N, NH IC) times weight rows
 * [h IC, (h+1) IC) of (NH IC, OC), plus bias (NH, OC). */
void headwise_forward(real *out, const real *inp, const real *weight, const real *bias, int N,
                      int NH, int IC, int OC);
/* dinp (N, NH IC) += ..., dweight += ..., dbias += ... */
void headwise_backward(real *dinp, real *dweight, real *dbias, const real *dout,
                       const real *inp, const real *weight, int N, int NH, int IC, int OC);

/* out = max(inp, 0); backward: dinp = dout where inp > 0, else 0 (n elements). */
void relu_forward(real *out, const real *inp, size_t n);
void relu_backward(real *dinp, const real *inp, const real *dout, size_t n);

/* Mean cross-entropy of logits (N,V) against targets (N); keeps lse (N), the log-sum-exp
 * of each row, for the fused backward. */
real crossentropy_forward(real *lse, const real *logits, const int *targets, int N, int V);
/* logits (N,V) becomes d(dloss * mean loss)/dlogits = dloss (softmax - onehot) / N. */
void crossentropy_backward(real *logits, const real *lse, const int *targets, int N, int V,
                           real dloss);

#endif
