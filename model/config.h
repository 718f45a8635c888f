/* config.h - what a model is (its configuration) and the edits that steer it: the
 * types every part of model/ shares, with no code of the model behind them.
 */
#ifndef BP_CONFIG_H
#define BP_CONFIG_H

#include "../common/error.h"

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
    int no_last_residual;          /* 1: block L-1 outputs its MLP branch alone, without the
                                    * residual around it (docs/layer-plans.md) */
} BackpackConfig;

/* Checks ranges and divisibility; the message names the offending key. */
int backpack_config_validate(const BackpackConfig *c, BpError *err);

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
