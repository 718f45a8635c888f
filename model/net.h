/* net.h - the whole network's training forward and backward over `real` (real.h).
 *
 * backpack.c wraps a float instance of this for the public API; the gradient check
 * compiles net.c again in double (BP_REAL_DOUBLE) and drives it directly. A Net
 * does not own the parameters: it holds views into memory of backpack_param_sizes()
 * reals, and its own activations, sized for the largest (B, T) seen and never
 * reallocated for smaller batches (no mallocs per step).
 */
#ifndef BP_NET_H
#define BP_NET_H

#include <stdint.h>

#include "config.h"
#include "layers.h"
#include "params.h"
#include "plan.h"

#ifdef BP_REAL_DOUBLE
/* ParameterTensors, in double: the same table, the same fields in the same order. */
#define BP_PARAM_FIELD_F64_(field, ...) double *field;
typedef struct {
    BP_PARAMETER_TENSORS(BP_PARAM_FIELD_F64_)
} ParameterTensorsF64;
#undef BP_PARAM_FIELD_F64_
#define RealTensors ParameterTensorsF64
#define SenseActs SenseActsF64
#define NetActs NetActsF64
#define NetGrads NetGradsF64
#define Net NetF64
#define net_point_tensors net_point_tensors_f64
#define net_init net_init_f64
#define net_point net_point_f64
#define net_free net_free_f64
#define net_forward net_forward_f64
#define net_backward net_backward_f64
#define net_compute_senses net_compute_senses_f64
#else
#define RealTensors ParameterTensors
#endif

/* The sense network's activations for U distinct words (S = scale * d). */
typedef struct {
    real *e;                              /* (U,d) E[x], after dropout */
    real *lns, *lns_mean, *lns_rstd;      /* (U,d), (U), (U) LN_s(e) (after dropout) */
    real *r1;                             /* (U,d) e + LN_s(e) */
    real *ln1, *ln1_mean, *ln1_rstd;      /* (U,d) LN_b1(r1) */
    real *fch, *fch_gelu;                 /* (U,S) */
    real *r2;                             /* (U,d) r1 + MLP */
    real *ln2, *ln2_mean, *ln2_rstd;      /* (U,d) LN_b2(r2) */
    real *ffch, *ffch_gelu;               /* (U,S) */
    real *out;                            /* (U,k,d) C(x) */
} SenseActs;

typedef struct {
    /* transformer */
    real *encoded;                        /* (B,T,d) */
    real *ln1, *ln1_mean, *ln1_rstd;      /* (L,B,T,d), (L,B,T), (L,B,T) */
    real *qkv;                            /* (L,B,T,3d) */
    real *att;                            /* (L,B,H,T,T) before dropout */
    real *atty;                           /* (L,B,T,d) */
    real *residual2;                      /* (L,B,T,d) */
    real *ln2, *ln2_mean, *ln2_rstd;      /* (L,B,T,d), (L,B,T), (L,B,T) */
    real *fch, *fch_gelu;                 /* (L,B,T,4d) */
    real *residual3;                      /* (L,B,T,d) */
    real *lnf, *lnf_mean, *lnf_rstd;      /* (B,T,d), (B,T), (B,T): h */
    /* Synthesizer attention (absent for ATTN_DOT alone) */
    real *syn_dense_pre, *syn_dense_act;  /* (L,B,T,d) ln1 W_1 + b_1 and its relu */
    real *syn_fd_pre, *syn_fd_act;        /* (L,B,T,d) the same for factorized dense */
    real *syn_fd_a, *syn_fd_b;            /* (L,B,T,H fa), (L,B,T,H fb) B_1, B_2 */
    real *syn_mix;                        /* (L,H,count) softmax(v) */
    /* backpack */
    real *qk;                             /* (B,T,2d) Z = h W_c^T + b_c */
    real *alpha;                          /* (B,k,T,T) sense weights (before edit weights) */
    SenseActs sense;                      /* (U, ...) per distinct word */
    real *senses_pos;                     /* (B,T,k,d) C(x_j)_l times its edit weight */
    real *posw;                           /* (B,T,k) edit weights (1 without edits) */
    real *mixed;                          /* (B,T,d) o */
    /* output */
    real *lse;                            /* (B,T) log-sum-exp of the logits */
    real *scratch;                        /* (threads, 2, T, T) */
} NetActs;

/* Gradients of activations: one buffer per kind, reused by every layer. */
typedef struct {
    real *dres, *dbranch, *dln, *datty;   /* (B,T,d) */
    real *dqkv;                           /* (B,T,3d) */
    real *dfch, *dfch_gelu;               /* (B,T,4d) */
    real *dqk;                            /* (B,T,2d) */
    real *dalpha;                         /* (B,k,T,T) */
    real *dsenses_pos;                    /* (B,T,k,d) */
    real *dmixed;                         /* (B,T,d) */
    real *dscores;                        /* (B,H,T,T) Synthesizer: d loss / d scores */
    real *dsyn_act, *dsyn_fd_act, *dsyn_in;  /* (B,T,d) */
    real *dsyn_fd_a, *dsyn_fd_b;          /* (B,T,H fa), (B,T,H fb) */
    SenseActs dsense;                     /* (U, ...) (no means/rstds) */
} NetGrads;

typedef struct {
    BackpackConfig config;
    real *params_memory;                  /* not owned */
    real *grads_memory;                   /* not owned; NULL until the caller sets it */
    RealTensors params, grads;
    const SenseEdits *edits;              /* read by net_forward */
    const LayerPlan *plan;                /* read by net_forward; NULL: blocks 0..L-1 */
    real *plan_memory;                    /* (plan buffers, B, T, d) while a plan runs */
    size_t plan_cap;
    /* the last forward */
    int B, T, has_targets;
    real dropout;
    uint64_t seed;
    uint64_t first_row;                   /* of a larger batch (TrainOptions.first_row) */
    real mean_loss;
    const SenseEdits *fwd_edits;
    int fwd_plan;                         /* the last forward ran a plan */
    /* activations, sized for cap_B x cap_T */
    int cap_B, cap_T, cap_threads;
    real *acts_memory, *grads_acts_memory;
    int grads_cap_B, grads_cap_T;
    NetActs acts;
    NetGrads gacts;
    real *logits;                         /* (B,T,V); the logits' gradient after backward */
    int *inputs, *targets;                /* (B,T) copies */
    /* distinct words of the batch */
    int *word_slot;                       /* (V) slot of a word in words, or -1 */
    int *words, *word_off, *word_pos;     /* WordGroups arrays: (U), (U+1), (B,T) */
    int *pos_word;                        /* (B,T) slot of each position's word */
    int num_words;                        /* U */
} Net;

/* Points t into memory (layout of backpack_param_sizes, params.h). */
void net_point_tensors(const BackpackConfig *c, real *memory, RealTensors *t);
/* c must be valid; grads_memory may be NULL (set n->grads_memory, then net_point). */
void net_init(Net *n, const BackpackConfig *c, real *params_memory, real *grads_memory);
void net_point(Net *n);
void net_free(Net *n);
/* targets may be NULL (no loss). dropout in [0,1), masks from seed. Under n->plan the
 * blocks run as the plan says (plan.h); such a forward has no backward, and the
 * per-block activations hold each block's last run. */
int net_forward(Net *n, const int *inputs, const int *targets, int B, int T, real dropout,
                uint64_t seed, BpError *err);
/* Accumulates d(mean loss)/d(params) into n->grads; needs a forward with targets. */
int net_backward(Net *n, BpError *err);
/* out (count,k,d) = C(tokens) with the edits' vectors; tokens must be in range. */
void net_compute_senses(const Net *n, const SenseEdits *edits, const int *tokens, int count,
                        real *out);

#endif
