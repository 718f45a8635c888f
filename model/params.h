/* params.h - the model's parameter tensors: ONE table (an X-macro) from which the
 * ParameterTensors fields, the float and double views (backpack.h, net.h), the layout
 * of the one allocation, the Hugging Face checkpoint table, the initialization and
 * the tests' lists are all generated. Adding a tensor is one line here.
 *
 * Every matrix is stored exactly as in the Hugging Face checkpoint, so loading and
 * saving are plain copies: Conv1D weights are [in, out] (y = x W + b); the one
 * nn.Linear, sense_qkw (sense_weight_net.c_attn.weight), is [out, in] = [2d, d].
 */
#ifndef BP_PARAMS_H
#define BP_PARAMS_H

#include <stddef.h>

#include "config.h"

/* X(field, group, when, name, rows, cols, kind), in the order of the allocation:
 *   group  GPT: named "<g>.<name>" where <g> is "backpack.gpt2_model" for the Backpack
 *               and "transformer" for the baseline;
 *          LAYER: one (rows, cols) slice per layer, stacked along a leading L axis in
 *               memory, named "<g>.h.<l>.<name>" (the checkpoint lists them layer by
 *               layer, where the first LAYER tensor stands);
 *          BACKPACK: named "backpack.<name>".
 *   when   the tensor exists (else it has size 0 and a NULL view): 1, bp (the
 *          Backpack architecture), has(KIND) (the attention uses ATTN_KIND), or
 *          nmix > 1 (a mixture of nmix attention kinds).
 *   rows, cols  the stored shape (cols 0: a vector of rows), in the dimensions
 *          V, d, P = n = n_positions, S = sense_intermediate_scale * d,
 *          k = num_senses, H = n_head, Q = 3 with dot-product attention (query, key,
 *          value) else 1 (values only), fa fb = n and r (synth_factor_a, synth_rank).
 *   kind   EMBED: N(0, 0.02), no weight decay (embeddings, learned score tables);
 *          MATRIX: N(0, 0.02), decayed; RESIDUAL: a residual projection,
 *          N(0, 0.02 / sqrt(2L)), decayed; BIAS: 0; GAIN: a LayerNorm gain, 1;
 *          FIXED: N(0, 1), never trained (its gradient stays 0, not decayed). */
#define BP_PARAMETER_TENSORS(X)                                                          \
    /* the contextualization transformer (GPT-2) */                                      \
    X(wte,               GPT,      1,  "wte.weight",                      V,     d,     EMBED)    /* E */ \
    X(wpe,               GPT,      1,  "wpe.weight",                      P,     d,     EMBED)    \
    X(ln1w,              LAYER,    1,  "ln_1.weight",                     d,     0,     GAIN)     \
    X(ln1b,              LAYER,    1,  "ln_1.bias",                       d,     0,     BIAS)     \
    X(qkvw,              LAYER,    1,  "attn.c_attn.weight",              d,     Q * d, MATRIX)   \
    X(qkvb,              LAYER,    1,  "attn.c_attn.bias",                Q * d, 0,     BIAS)     \
    X(attprojw,          LAYER,    1,  "attn.c_proj.weight",              d,     d,     RESIDUAL) \
    X(attprojb,          LAYER,    1,  "attn.c_proj.bias",                d,     0,     BIAS)     \
    X(ln2w,              LAYER,    1,  "ln_2.weight",                     d,     0,     GAIN)     \
    X(ln2b,              LAYER,    1,  "ln_2.bias",                       d,     0,     BIAS)     \
    X(fcw,               LAYER,    1,  "mlp.c_fc.weight",                 d,     4 * d, MATRIX)   \
    X(fcb,               LAYER,    1,  "mlp.c_fc.bias",                   4 * d, 0,     BIAS)     \
    X(fcprojw,           LAYER,    1,  "mlp.c_proj.weight",               4 * d, d,     RESIDUAL) \
    X(fcprojb,           LAYER,    1,  "mlp.c_proj.bias",                 d,     0,     BIAS)     \
    X(lnfw,              GPT,      1,  "ln_f.weight",                     d,     0,     GAIN)     \
    X(lnfb,              GPT,      1,  "ln_f.bias",                       d,     0,     BIAS)     \
    /* the sense network */                                                              \
    X(sense_lnw,         BACKPACK, bp, "sense_network.ln.weight",         d,     0,     GAIN)     /* LN_s */ \
    X(sense_lnb,         BACKPACK, bp, "sense_network.ln.bias",           d,     0,     BIAS)     \
    X(sense_ln1w,        BACKPACK, bp, "sense_network.block.ln_1.weight", d,     0,     GAIN)     /* LN_b1 */ \
    X(sense_ln1b,        BACKPACK, bp, "sense_network.block.ln_1.bias",   d,     0,     BIAS)     \
    X(sense_fcw,         BACKPACK, bp, "sense_network.block.mlp.c_fc.weight",   d, S,   MATRIX)   /* U_1 */ \
    X(sense_fcb,         BACKPACK, bp, "sense_network.block.mlp.c_fc.bias",     S, 0,   BIAS)     /* c_1 */ \
    X(sense_projw,       BACKPACK, bp, "sense_network.block.mlp.c_proj.weight", S, d,   RESIDUAL) /* U_2 */ \
    X(sense_projb,       BACKPACK, bp, "sense_network.block.mlp.c_proj.bias",   d, 0,   BIAS)     /* c_2 */ \
    X(sense_ln2w,        BACKPACK, bp, "sense_network.block.ln_2.weight", d,     0,     GAIN)     /* LN_b2 */ \
    X(sense_ln2b,        BACKPACK, bp, "sense_network.block.ln_2.bias",   d,     0,     BIAS)     \
    X(sense_final_fcw,   BACKPACK, bp, "sense_network.final_mlp.c_fc.weight",   d, S,   MATRIX)   /* F_1 */ \
    X(sense_final_fcb,   BACKPACK, bp, "sense_network.final_mlp.c_fc.bias",     S, 0,   BIAS)     /* f_1 */ \
    X(sense_final_projw, BACKPACK, bp, "sense_network.final_mlp.c_proj.weight", S, k * d, RESIDUAL) /* F_2 */ \
    X(sense_final_projb, BACKPACK, bp, "sense_network.final_mlp.c_proj.bias",   k * d, 0, BIAS)   /* f_2 */ \
    /* the sense weights: nn.Linear, stored [out, in] */                                 \
    X(sense_qkw,         BACKPACK, bp, "sense_weight_net.c_attn.weight",  2 * d, d,     MATRIX)   /* W_c */ \
    X(sense_qkb,         BACKPACK, bp, "sense_weight_net.c_attn.bias",    2 * d, 0,     BIAS)     /* b_c */ \
    /* Synthesizer attention (docs/synthesizer.md): head h owns rows [h d_h, (h+1) d_h)    \
     * of the d-row matrices and rows [h n, (h+1) n) of the H n-row tables */            \
    X(syn_dense_w1,      LAYER, has(DENSE), "attn.dense_synthesizer.c_fc.weight",   d, d,  MATRIX) /* W_1 */ \
    X(syn_dense_b1,      LAYER, has(DENSE), "attn.dense_synthesizer.c_fc.bias",     d, 0,  BIAS)   /* b_1 */ \
    X(syn_dense_w2,      LAYER, has(DENSE), "attn.dense_synthesizer.c_proj.weight", d, n,  MATRIX) /* W_2 */ \
    X(syn_dense_b2,      LAYER, has(DENSE), "attn.dense_synthesizer.c_proj.bias",   H, n,  BIAS)   /* b_2 */ \
    X(syn_random,        LAYER, has(RANDOM), "attn.random_synthesizer.weight",      H * n, n, EMBED) /* R */ \
    X(syn_fixed_random,  LAYER, has(FIXED_RANDOM), "attn.fixed_random_synthesizer.weight", H * n, n, FIXED) \
    X(syn_fdense_w1,     LAYER, has(FACTORIZED_DENSE), "attn.factorized_dense_synthesizer.c_fc.weight", d, d, MATRIX) \
    X(syn_fdense_b1,     LAYER, has(FACTORIZED_DENSE), "attn.factorized_dense_synthesizer.c_fc.bias",   d, 0, BIAS) \
    X(syn_fdense_wa,     LAYER, has(FACTORIZED_DENSE), "attn.factorized_dense_synthesizer.c_proj_a.weight", d, fa, MATRIX) \
    X(syn_fdense_ba,     LAYER, has(FACTORIZED_DENSE), "attn.factorized_dense_synthesizer.c_proj_a.bias",   H, fa, BIAS) \
    X(syn_fdense_wb,     LAYER, has(FACTORIZED_DENSE), "attn.factorized_dense_synthesizer.c_proj_b.weight", d, fb, MATRIX) \
    X(syn_fdense_bb,     LAYER, has(FACTORIZED_DENSE), "attn.factorized_dense_synthesizer.c_proj_b.bias",   H, fb, BIAS) \
    X(syn_frandom_r1,    LAYER, has(FACTORIZED_RANDOM), "attn.factorized_random_synthesizer.r_1", H * n, r, EMBED) \
    X(syn_frandom_r2,    LAYER, has(FACTORIZED_RANDOM), "attn.factorized_random_synthesizer.r_2", H * n, r, EMBED) \
    X(syn_mix,           LAYER, nmix > 1, "attn.mixture.weight", H, nmix, BIAS) /* v: w = softmax(v) per head */

/* BP_PARAM_<field>: the index of each tensor in the table; BP_NUM_PARAM_TENSORS. */
#define BP_PARAM_INDEX_(field, ...) BP_PARAM_##field,
enum { BP_PARAMETER_TENSORS(BP_PARAM_INDEX_) BP_NUM_PARAM_TENSORS };
#undef BP_PARAM_INDEX_

/* Named views into the one parameter allocation (or the gradients', or the optimizer
 * moments': the same layout). Per-layer tensors are stacked along a leading L axis.
 * Absent tensors (size 0) are NULL. */
#define BP_PARAM_FIELD_(field, ...) float *field;
typedef struct {
    BP_PARAMETER_TENSORS(BP_PARAM_FIELD_)
} ParameterTensors;
#undef BP_PARAM_FIELD_

typedef enum { PARAM_GPT, PARAM_LAYER, PARAM_BACKPACK } ParamGroup;
typedef enum {
    PARAM_EMBED, PARAM_MATRIX, PARAM_RESIDUAL, PARAM_BIAS, PARAM_GAIN, PARAM_FIXED
} ParamKind;

/* The table's constant columns, by index. */
typedef struct {
    const char *field;   /* "wte" */
    const char *name;    /* "wte.weight", without its group's prefix */
    ParamGroup group;
    ParamKind kind;
} ParamInfo;
extern const ParamInfo backpack_param_info[BP_NUM_PARAM_TENSORS];

/* Element count of each tensor, in table order (0 when absent); returns the total.
 * The config must be valid. */
size_t backpack_param_sizes(const BackpackConfig *c, size_t sizes[BP_NUM_PARAM_TENSORS]);

/* Points every field of t into memory (which holds backpack_param_sizes() floats);
 * absent tensors, or all when memory is NULL, become NULL. */
void backpack_point_tensors(const BackpackConfig *c, float *memory, ParameterTensors *t);

/* BP_POINT_TENSORS(c, memory, t): the same for views of any element type (net.h's
 * double views): t->field = memory + offset, in table order. */
#define BP_POINT_TENSORS(c, memory, t)                                                   \
    do {                                                                                 \
        size_t bp_sizes_[BP_NUM_PARAM_TENSORS], bp_off_ = 0;                             \
        int bp_i_ = 0;                                                                   \
        __typeof__(t) bp_t_ = (t);                                                       \
        __typeof__(memory) bp_mem_ = (memory);                                           \
        backpack_param_sizes((c), bp_sizes_);                                            \
        BP_PARAMETER_TENSORS(BP_POINT_ONE_)                                              \
        (void)bp_off_;                                                                   \
    } while (0)
#define BP_POINT_ONE_(field, ...)                                                        \
    bp_t_->field = bp_sizes_[bp_i_] && bp_mem_ ? bp_mem_ + bp_off_ : NULL;                \
    bp_off_ += bp_sizes_[bp_i_++];

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

/* Number of checkpoint tensors, and their table for views t (in the order of the
 * spec's tensor list, layer by layer): out holds backpack_num_param_entries() items. */
int backpack_num_param_entries(const BackpackConfig *c);
void backpack_param_table(const BackpackConfig *c, const ParameterTensors *t, ParamEntry *out);

#endif
