/* quant.h - int8 copies of a model's large matrices, for generation with
 * `--quantize int8` (infer_set_quant, infer.h).
 *
 * Each matrix is stored as its output rows (a Conv1D weight [in, out] is transposed
 * once, at build time), each row in int8 with one float scale per group of `group`
 * inputs (a multiple of 64; like llama.cpp's Q8_0, whose groups are 32):
 *     q[r, i] = round(W[r, i] / s[r, g]),  s[r, g] = max_{i in g} |W[r, i]| / 127.
 * Rows are zero-padded to a multiple of 64 bytes; a row's last group may be shorter. Per step, each product's input
 * vector x is rounded the same way (one scale per group), and
 *     y[r] = sum_g s[r, g] t[g] (sum_{i in g} q[r, i] q_x[i])
 * with the inner sums exact in int32 (AVX-512 VNNI vpdpbusd, 64 bytes per
 * instruction; a portable loop without it) and the outer sum in float.
 *
 * Error of the kernel against the same quantities computed exactly (the documented
 * bound tests/test_model_quant.c checks; `quant_matvec_reference` is the plain
 * dequantize-then-float computation):
 *     |y_kernel[r] - y_exact[r]| <= (n_groups + 6) 2^-24 sum_i |s q[r, i]| |t q_x[i]|,
 * i.e. float rounding only: the int8 rounding itself is the approximation chosen, and
 * its effect on a trained model is measured (bench/README.md, int8 generation).
 *
 * Quantized: the transformer's four matrices per layer, the sense network's four, the
 * sense-weight projection W_c and the output embedding E (the logits of infer_step;
 * the Synthesizer attention variants' own matrices are not quantized);
 * everything else (embeddings read by row, LayerNorms, biases, attention over the
 * caches, mixing) stays float. A QuantModel reads its Backpack only while it is built;
 * the model's weights are not changed, and the float path does not depend on whether
 * a QuantModel exists. One QuantModel may serve several InferStates at once.
 */
#ifndef BP_QUANT_H
#define BP_QUANT_H

#include <stdint.h>

#include "backpack.h"

typedef struct {
    const float *source; /* the float matrix this copies (its identity in lookups) */
    int rows, cols;      /* output rows, inputs per row */
    int cols_pad;        /* cols rounded up to 64: the row stride of q */
    int group;           /* inputs per scale, a multiple of 64, at most cols_pad */
    int n_groups;        /* ceil(cols_pad / group) */
    int8_t *q;           /* (rows, cols_pad) */
    float *scale;        /* (rows, n_groups) */
} QuantMatrix;

typedef struct QuantModel {
    int group;           /* as passed to quant_build */
    int reference;       /* 1: products by quant_matvec_reference (tests) */
    int count;
    QuantMatrix *mats;   /* (count) */
    size_t bytes;        /* int8 weights and scales */
} QuantModel;

/* The group `--quantize int8` uses (chosen by perplexity: bench/README.md). */
#define QUANT_DEFAULT_GROUP 64

/* group: inputs per scale, a positive multiple of 64, or 0 for one scale per row
 * (per output channel). NULL with err set on a bad group or out of memory. */
QuantModel *quant_build(const Backpack *m, int group, BpError *err);
void quant_free(QuantModel *q);

/* The copy of the matrix whose float storage starts at W, or NULL. */
const QuantMatrix *quant_find(const QuantModel *q, const float *W);

/* Quantizes a float matrix given as rows (row-major, (rows, cols)) or, with
 * transposed, as the Conv1D layout (cols, rows). 0, or -1 with err set. */
int quant_matrix_build(QuantMatrix *qm, const float *W, int rows, int cols, int transposed,
                       int group, BpError *err);
void quant_matrix_free(QuantMatrix *qm);

/* x rounded per group: x_q (cols_pad, zero-padded) and its scales t (n_groups). */
void quant_vector(const QuantMatrix *qm, const float *x, int8_t *x_q, float *t);

/* y[r] for rows [r0, r1) from a quantized x (the kernel: VNNI when compiled for it). */
void quant_matvec_rows(const QuantMatrix *qm, float *y, const int8_t *x_q, const float *t,
                       int r0, int r1);

/* The same product as plain C: each weight and input dequantized to float (s q and
 * t q_x), then a float dot product per row in input order. */
void quant_matvec_reference(const QuantMatrix *qm, float *y, const int8_t *x_q, const float *t,
                            int r0, int r1);

/* The documented bound above for row r, in double. */
double quant_error_bound(const QuantMatrix *qm, const int8_t *x_q, const float *t, int r);

#endif
