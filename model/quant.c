/* quant.c - int8 copies of a model's matrices and their products (quant.h). */
#include "quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* q[i] = round(x[i] / s) in [-127, 127] for one group, s = max |x| / 127 (0 when the
 * group is all zero or not finite: its q are 0). */
static float quantize_group(int8_t *q, const float *x, int n) {
    float max_abs = 0.0f;
    for (int i = 0; i < n; i++) max_abs = fabsf(x[i]) > max_abs ? fabsf(x[i]) : max_abs;
    const float s = max_abs / 127.0f;
    const int usable = s > 0.0f && isfinite(s);
    for (int i = 0; i < n; i++) {
        long r = usable ? lrintf(x[i] / s) : 0;
        q[i] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
    }
    return usable ? s : 0.0f;
}

/* One row of inputs (cols floats) into q (cols_pad) and its n_groups scales. */
static void quantize_row(const QuantMatrix *qm, const float *x, int8_t *q, float *scale) {
    memset(q, 0, (size_t)qm->cols_pad);
    for (int g = 0; g < qm->n_groups; g++) {
        const int begin = g * qm->group;
        const int n = begin >= qm->cols ? 0 : qm->cols - begin < qm->group ? qm->cols - begin
                                                                           : qm->group;
        scale[g] = n > 0 ? quantize_group(q + begin, x + begin, n) : 0.0f;
    }
}

void quant_matrix_free(QuantMatrix *qm) {
    free(qm->q);
    free(qm->scale);
    memset(qm, 0, sizeof *qm);
}

#define TILE_ROWS 32 /* output rows gathered at a time from a transposed matrix */

int quant_matrix_build(QuantMatrix *qm, const float *W, int rows, int cols, int transposed,
                       int group, BpError *err) {
    memset(qm, 0, sizeof *qm);
    qm->source = W;
    qm->rows = rows;
    qm->cols = cols;
    if (group < 0 || group % 64 != 0)
        return bp_fail(err, "quantization group %d is not a multiple of 64", group);
    /* the last group of a row may be shorter (a multiple of 64 bytes all the same) */
    qm->cols_pad = (cols + 63) / 64 * 64;
    qm->group = group > 0 && group < qm->cols_pad ? group : qm->cols_pad;
    qm->n_groups = (qm->cols_pad + qm->group - 1) / qm->group;
    qm->q = aligned_alloc(64, (size_t)rows * qm->cols_pad);
    qm->scale = malloc((size_t)rows * qm->n_groups * sizeof(float));
    if (!qm->q || !qm->scale) {
        quant_matrix_free(qm);
        return bp_fail(err, "out of memory for an int8 copy of a %d x %d matrix", rows, cols);
    }
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        /* a transposed matrix is gathered TILE_ROWS output rows at a time, reading
         * W's rows contiguously */
        float *tile = transposed ? malloc((size_t)TILE_ROWS * cols * sizeof(float)) : NULL;
        if (transposed && !tile) failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (int r0 = 0; r0 < rows; r0 += TILE_ROWS) {
            if (transposed && !tile) continue;
            const int nr = rows - r0 < TILE_ROWS ? rows - r0 : TILE_ROWS;
            if (transposed)
                for (int i = 0; i < cols; i++)
                    for (int r = 0; r < nr; r++) tile[(size_t)r * cols + i] = W[(size_t)i * rows + r0 + r];
            for (int r = 0; r < nr; r++) {
                const float *x = transposed ? tile + (size_t)r * cols : W + (size_t)(r0 + r) * cols;
                quantize_row(qm, x, qm->q + (size_t)(r0 + r) * qm->cols_pad,
                             qm->scale + (size_t)(r0 + r) * qm->n_groups);
            }
        }
        free(tile);
    }
    if (failed) {
        quant_matrix_free(qm);
        return bp_fail(err, "out of memory while quantizing a %d x %d matrix", rows, cols);
    }
    return 0;
}

void quant_vector(const QuantMatrix *qm, const float *x, int8_t *x_q, float *t) {
    quantize_row(qm, x, x_q, t);
}

/* ---------------------------------------------------------------------------------- */
/* products */

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
/* vpdpbusd multiplies unsigned by signed bytes: |w| times x with w's sign moved onto x
 * (both in [-127, 127], so neither overflows). Four rows share each load of x. */
void quant_matvec_rows(const QuantMatrix *qm, float *y, const int8_t *x_q, const float *t,
                       int r0, int r1) {
    const int cols_pad = qm->cols_pad, G = qm->n_groups;
    const __m512i zero = _mm512_setzero_si512();
    int r = r0;
    for (; r + 4 <= r1; r += 4) {
        const int8_t *w0 = qm->q + (size_t)r * cols_pad, *w1 = w0 + cols_pad,
                     *w2 = w1 + cols_pad, *w3 = w2 + cols_pad;
        const float *s0 = qm->scale + (size_t)r * G, *s1 = s0 + G, *s2 = s1 + G, *s3 = s2 + G;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int g = 0; g < G; g++) {
            __m512i i0 = zero, i1 = zero, i2 = zero, i3 = zero;
            const int begin = g * qm->group;
            const int e = begin + qm->group < cols_pad ? begin + qm->group : cols_pad;
            for (int c = begin; c < e; c += 64) {
                const __m512i x = _mm512_load_si512((const void *)(x_q + c));
#define QUANT_DOT(i, w)                                                                    \
    do {                                                                                   \
        const __m512i wv = _mm512_load_si512((const void *)((w) + c));                     \
        const __m512i xs = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(wv), zero, x);      \
        i = _mm512_dpbusd_epi32(i, _mm512_abs_epi8(wv), xs);                                \
    } while (0)
                QUANT_DOT(i0, w0);
                QUANT_DOT(i1, w1);
                QUANT_DOT(i2, w2);
                QUANT_DOT(i3, w3);
#undef QUANT_DOT
            }
            const __m512 tg = _mm512_set1_ps(t[g]);
            a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i0), _mm512_mul_ps(_mm512_set1_ps(s0[g]), tg), a0);
            a1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i1), _mm512_mul_ps(_mm512_set1_ps(s1[g]), tg), a1);
            a2 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i2), _mm512_mul_ps(_mm512_set1_ps(s2[g]), tg), a2);
            a3 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i3), _mm512_mul_ps(_mm512_set1_ps(s3[g]), tg), a3);
        }
        y[r] = _mm512_reduce_add_ps(a0);
        y[r + 1] = _mm512_reduce_add_ps(a1);
        y[r + 2] = _mm512_reduce_add_ps(a2);
        y[r + 3] = _mm512_reduce_add_ps(a3);
    }
    for (; r < r1; r++) { /* the last rows, one at a time */
        const int8_t *w = qm->q + (size_t)r * cols_pad;
        const float *s = qm->scale + (size_t)r * G;
        __m512 a = _mm512_setzero_ps();
        for (int g = 0; g < G; g++) {
            __m512i acc = zero;
            const int begin = g * qm->group;
            const int e = begin + qm->group < cols_pad ? begin + qm->group : cols_pad;
            for (int c = begin; c < e; c += 64) {
                const __m512i x = _mm512_load_si512((const void *)(x_q + c));
                const __m512i wv = _mm512_load_si512((const void *)(w + c));
                const __m512i xs = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(wv), zero, x);
                acc = _mm512_dpbusd_epi32(acc, _mm512_abs_epi8(wv), xs);
            }
            a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(s[g] * t[g]), a);
        }
        y[r] = _mm512_reduce_add_ps(a);
    }
}
#else
/* Portable: each group's integer sum exactly, then a float sum over the groups. */
void quant_matvec_rows(const QuantMatrix *qm, float *y, const int8_t *x_q, const float *t,
                       int r0, int r1) {
    for (int r = r0; r < r1; r++) {
        const int8_t *w = qm->q + (size_t)r * qm->cols_pad;
        const float *s = qm->scale + (size_t)r * qm->n_groups;
        float sum = 0.0f;
        for (int g = 0; g < qm->n_groups; g++) {
            int32_t acc = 0;
            const int begin = g * qm->group;
            const int end = begin + qm->group < qm->cols_pad ? begin + qm->group : qm->cols_pad;
#pragma omp simd reduction(+ : acc)
            for (int i = begin; i < end; i++) acc += (int32_t)w[i] * (int32_t)x_q[i];
            sum += (float)acc * (s[g] * t[g]);
        }
        y[r] = sum;
    }
}
#endif

void quant_matvec_reference(const QuantMatrix *qm, float *y, const int8_t *x_q, const float *t,
                            int r0, int r1) {
    for (int r = r0; r < r1; r++) {
        const int8_t *w = qm->q + (size_t)r * qm->cols_pad;
        const float *s = qm->scale + (size_t)r * qm->n_groups;
        float sum = 0.0f;
        for (int i = 0; i < qm->cols; i++) {
            const int g = i / qm->group;
            const float wi = s[g] * (float)w[i], xi = t[g] * (float)x_q[i];
            sum += wi * xi;
        }
        y[r] = sum;
    }
}

double quant_error_bound(const QuantMatrix *qm, const int8_t *x_q, const float *t, int r) {
    const int8_t *w = qm->q + (size_t)r * qm->cols_pad;
    const float *s = qm->scale + (size_t)r * qm->n_groups;
    double sum = 0.0;
    for (int i = 0; i < qm->cols; i++) {
        const int g = i / qm->group;
        sum += fabs((double)s[g] * w[i]) * fabs((double)t[g] * x_q[i]);
    }
    return (qm->n_groups + 6) * 0x1p-24 * sum;
}

/* ---------------------------------------------------------------------------------- */
/* the model's matrices */

void quant_free(QuantModel *q) {
    if (!q) return;
    for (int i = 0; i < q->count; i++) quant_matrix_free(&q->mats[i]);
    free(q->mats);
    free(q);
}

const QuantMatrix *quant_find(const QuantModel *q, const float *W) {
    for (int i = 0; q && i < q->count; i++)
        if (q->mats[i].source == W) return &q->mats[i];
    return NULL;
}

/* a matrix to copy: rows = outputs, cols = inputs, transposed: stored [in, out] */
typedef struct {
    const float *W;
    int rows, cols, transposed;
} QuantSource;

QuantModel *quant_build(const Backpack *m, int group, BpError *err) {
    const BackpackConfig *c = &m->config;
    const ParameterTensors *p = &m->params;
    const int d = c->n_embd, L = c->n_layer, V = c->vocab_size;
    const int S = c->sense_intermediate_scale * d, k = c->num_senses;
    /* the qkv projection's width (params.h): Q K V with dot-product attention, else V;
     * the synthesizers' own matrices stay float */
    const int Q = attention_kinds(c) & ATTN_DOT ? 3 : 1;
    if (group < 0 || group % 64 != 0) {
        bp_fail(err, "quantization group %d is not a multiple of 64", group);
        return NULL;
    }
    QuantSource list[4 * 64 + 8];
    int n = 0;
    if (L > 64) {
        bp_fail(err, "int8 quantization supports at most 64 layers, the model has %d", L);
        return NULL;
    }
    for (int l = 0; l < L; l++) {
        list[n++] = (QuantSource){p->qkvw + (size_t)l * d * Q * d, Q * d, d, 1};
        list[n++] = (QuantSource){p->attprojw + (size_t)l * d * d, d, d, 1};
        list[n++] = (QuantSource){p->fcw + (size_t)l * d * 4 * d, 4 * d, d, 1};
        list[n++] = (QuantSource){p->fcprojw + (size_t)l * 4 * d * d, d, 4 * d, 1};
    }
    list[n++] = (QuantSource){p->wte, V, d, 0};
    if (c->arch == ARCH_BACKPACK) {
        list[n++] = (QuantSource){p->sense_fcw, S, d, 1};
        list[n++] = (QuantSource){p->sense_projw, d, S, 1};
        list[n++] = (QuantSource){p->sense_final_fcw, S, d, 1};
        list[n++] = (QuantSource){p->sense_final_projw, k * d, S, 1};
        list[n++] = (QuantSource){p->sense_qkw, 2 * d, d, 0};
    }
    QuantModel *q = calloc(1, sizeof *q);
    if (q) q->mats = calloc((size_t)n, sizeof(QuantMatrix));
    if (!q || !q->mats) {
        quant_free(q);
        bp_fail(err, "out of memory for the int8 copy of the model");
        return NULL;
    }
    q->group = group;
    for (int i = 0; i < n; i++) {
        if (quant_matrix_build(&q->mats[i], list[i].W, list[i].rows, list[i].cols,
                               list[i].transposed, group, err)) {
            quant_free(q);
            return NULL;
        }
        q->count++;
        q->bytes += (size_t)list[i].rows * (q->mats[i].cols_pad + q->mats[i].n_groups * sizeof(float));
    }
    return q;
}
