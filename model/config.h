/* config.h - what a model is (its configuration) and the edits that steer it: the
 * types every part of model/ shares, with no code of the model behind them.
 */
#ifndef BP_CONFIG_H
#define BP_CONFIG_H

#include <stddef.h>

#include "../common/error.h"

typedef enum {
    ARCH_BACKPACK = 0,     /* the Backpack LM of the spec */
    ARCH_TRANSFORMER = 1,  /* GPT-2 with the output tied to wte, applied to h = LN_f(X) */
} ModelArch;

/* How the transformer blocks score positions (docs/synthesizer.md): a set of kinds;
 * with two or more, each head mixes their scores with learned weights softmax(v). */
typedef enum {
    ATTN_DOT = 1 << 0,               /* (X W_q)(X W_k)^T / sqrt(d_h): the published model */
    ATTN_DENSE = 1 << 1,             /* relu(X W_1 + b_1) W_2 + b_2: each row from its token */
    ATTN_RANDOM = 1 << 2,            /* R (n, n), trained */
    ATTN_FIXED_RANDOM = 1 << 3,      /* R (n, n), random at initialization, never trained */
    ATTN_FACTORIZED_DENSE = 1 << 4,  /* B_1 (n, a) x B_2 (n, b) from two dense heads, a b = n */
    ATTN_FACTORIZED_RANDOM = 1 << 5, /* R_1 R_2^T, R_1, R_2 (n, r) */
} AttentionKind;
#define ATTN_NUM_KINDS 6
#define ATTN_ALL ((1u << ATTN_NUM_KINDS) - 1)

typedef struct {
    ModelArch arch;
    int vocab_size;                /* V */
    int n_embd;                    /* d */
    int n_layer;                   /* L */
    int n_head;                    /* H, divides d */
    int num_senses;                /* k, divides d (ignored by ARCH_TRANSFORMER) */
    int n_positions;               /* maximum context length */
    int sense_intermediate_scale;  /* 4: the sense network's MLPs are d -> scale*d */
    unsigned attention;            /* a set of AttentionKind; 0 means ATTN_DOT */
    int no_last_residual;          /* 1: block L-1 outputs its MLP branch alone, without the
                                    * residual around it (docs/layer-plans.md) */
} BackpackConfig;

/* Checks ranges and divisibility; the message names the offending key. */
int backpack_config_validate(const BackpackConfig *c, BpError *err);

/* The attention kinds of c (ATTN_DOT for 0) and how many there are. */
static inline unsigned attention_kinds(const BackpackConfig *c) {
    return c->attention ? c->attention : ATTN_DOT;
}
static inline int attention_count(unsigned kinds) { return __builtin_popcount(kinds); }

/* The Synthesizer's dimensions for a context of n = n_positions: the factorized dense
 * factors a b = n (a the largest divisor of n with a a <= n), and the rank r of the
 * factorized random one (8, or n if smaller). */
static inline int synth_factor_a(int n) {
    int a = 1;
    for (int x = 1; x * x <= n; x++)
        if (n % x == 0) a = x;
    return a;
}
#define SYNTH_RANK 8
static inline int synth_rank(int n) { return n < SYNTH_RANK ? n : SYNTH_RANK; }

/* Names: "dot", "dense", "random", "fixed-random", "factorized-dense",
 * "factorized-random", and "mix:A+B[+...]" of two or more of those (any order; each
 * at most once). attention_parse sets *kinds, or fails naming the bad part;
 * attention_name writes the canonical name (mixture parts in the order above). */
int attention_parse(const char *name, unsigned *kinds, BpError *err);
void attention_name(unsigned kinds, char *out, size_t size);

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

#endif
