/* infer_kernels.c - the matrix-vector products of one position (infer_kernels.h). */
#include "infer_kernels.h"
#include "quant.h"

#include <stddef.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#define CHUNK_FLOATS 65536 /* weights per chunk of a job (infer_kernels.h) */

/* y[r] = row[r] . x for the 4 rows of `row` (cols long each). Every row gets the same
 * sequence of operations whatever its neighbours, so a logit is bit-identical whether
 * it is computed with all the others (matvec_rows) or alone (the greedy check). */
void dot_rows4(float y[4], const float *const row[4], const float *x, int cols) {
#if defined(__AVX512F__)
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int c = 0;
    for (; c + 16 <= cols; c += 16) {
        __m512 xv = _mm512_loadu_ps(x + c);
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(row[0] + c), xv, s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(row[1] + c), xv, s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(row[2] + c), xv, s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(row[3] + c), xv, s3);
    }
    if (c < cols) {
        __mmask16 m = (__mmask16)((1u << (cols - c)) - 1);
        __m512 xv = _mm512_maskz_loadu_ps(m, x + c);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, row[0] + c), xv, s0);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, row[1] + c), xv, s1);
        s2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, row[2] + c), xv, s2);
        s3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, row[3] + c), xv, s3);
    }
    y[0] = _mm512_reduce_add_ps(s0);
    y[1] = _mm512_reduce_add_ps(s1);
    y[2] = _mm512_reduce_add_ps(s2);
    y[3] = _mm512_reduce_add_ps(s3);
#else
    for (int r = 0; r < 4; r++) {
        const float *a = row[r];
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int c = 0; c < cols; c++) s += a[c] * x[c];
        y[r] = s;
    }
#endif
}

/* Rows per chunk: a multiple of 4 holding about CHUNK_FLOATS weights. */
static int rows_per_chunk(int cols) {
    int rows = CHUNK_FLOATS / (cols > 0 ? cols : 1) / 4 * 4;
    return rows > 4 ? rows : 4;
}

typedef struct {
    float *y;
    const float *A, *x;
    int rows, cols, chunk_rows;
} RowsJob;

static void rows_chunk(void *ctx, int chunk, int thread) {
    (void)thread;
    const RowsJob *j = ctx;
    const int begin = chunk * j->chunk_rows;
    const int end = begin + j->chunk_rows < j->rows ? begin + j->chunk_rows : j->rows;
    for (int r0 = begin; r0 < end; r0 += 4) {
        const int nr = end - r0 < 4 ? end - r0 : 4;
        const float *row[4];
        float out[4];
        for (int r = 0; r < 4; r++) row[r] = j->A + (size_t)(r0 + (r < nr ? r : 0)) * j->cols;
        dot_rows4(out, row, j->x, j->cols);
        for (int r = 0; r < nr; r++) j->y[r0 + r] = out[r];
    }
}

typedef struct {
    const QuantMatrix *qm;
    float *y;
    const int8_t *x_q;
    const float *t;
    int chunk_rows, reference;
} QuantJob;

static void quant_chunk(void *ctx, int chunk, int thread) {
    (void)thread;
    const QuantJob *j = ctx;
    const int begin = chunk * j->chunk_rows;
    const int end = begin + j->chunk_rows < j->qm->rows ? begin + j->chunk_rows : j->qm->rows;
    (j->reference ? quant_matvec_reference : quant_matvec_rows)(j->qm, j->y, j->x_q, j->t, begin, end);
}

/* y (qm->rows) = the int8 product of qm and x (quant.h), as a team job. The rounded x
 * lives on the caller's stack for the job's duration. */
static void quant_matvec(Team *team, float *y, const QuantMatrix *qm, const float *x) {
    _Alignas(64) int8_t x_q[qm->cols_pad];
    float t[qm->n_groups];
    quant_vector(qm, x, x_q, t);
    int chunk_rows = CHUNK_FLOATS / qm->cols_pad / 4 * 4;
    chunk_rows = chunk_rows > 4 ? chunk_rows : 4;
    QuantJob job = {qm, y, x_q, t, chunk_rows, team->quant->reference};
    team_run(team, quant_chunk, &job, (qm->rows + chunk_rows - 1) / chunk_rows);
}

/* The int8 copy of W when the team's step has one. */
static const QuantMatrix *quant_copy(const Team *team, const float *W) {
    return team->quant ? quant_find(team->quant, W) : NULL;
}

/* y (rows) = A x, A (rows, cols) row-major: the layout of wte and of nn.Linear. */
void matvec_rows(Team *team, float *y, const float *A, const float *x, int rows, int cols) {
    const QuantMatrix *qm = quant_copy(team, A);
    if (qm && qm->rows == rows && qm->cols == cols) {
        quant_matvec(team, y, qm, x);
        return;
    }
    RowsJob job = {y, A, x, rows, cols, rows_per_chunk(cols)};
    team_run(team, rows_chunk, &job, (rows + job.chunk_rows - 1) / job.chunk_rows);
}

/* y[0..nc) += x W[:, 0..nc) for one block of nc <= 128 columns of W (row stride ld);
 * with rows != NULL, x[i] multiplies row rows[i] of W instead of row i. */
static void axpy_block(float *y, const float *x, const float *W, size_t ld, int n_in, int nc,
                       const int *rows) {
#if defined(__AVX512F__)
    __mmask16 m[8];
    for (int q = 0; q < 8; q++) {
        int rem = nc - 16 * q;
        m[q] = rem >= 16 ? (__mmask16)0xFFFF : rem > 0 ? (__mmask16)((1u << rem) - 1) : 0;
    }
    __m512 a0 = _mm512_maskz_loadu_ps(m[0], y), a1 = _mm512_maskz_loadu_ps(m[1], y + 16),
           a2 = _mm512_maskz_loadu_ps(m[2], y + 32), a3 = _mm512_maskz_loadu_ps(m[3], y + 48),
           a4 = _mm512_maskz_loadu_ps(m[4], y + 64), a5 = _mm512_maskz_loadu_ps(m[5], y + 80),
           a6 = _mm512_maskz_loadu_ps(m[6], y + 96), a7 = _mm512_maskz_loadu_ps(m[7], y + 112);
    for (int i = 0; i < n_in; i++) {
        const float *w = W + (size_t)(rows ? rows[i] : i) * ld;
        const __m512 xi = _mm512_set1_ps(x[i]);
        a0 = _mm512_fmadd_ps(xi, _mm512_maskz_loadu_ps(m[0], w), a0);
        a1 = _mm512_fmadd_ps(xi, _mm512_maskz_loadu_ps(m[1], w + 16), a1);
        a2 = _mm512_fmadd_ps(xi, _mm512_maskz_loadu_ps(m[2], w + 32), a2);
        a3 = _mm512_fmadd_ps(xi, _mm512_maskz_loadu_ps(m[3], w + 48), a3);
        a4 = _mm512_fmadd_ps(xi, _mm512_maskz_loadu_ps(m[4], w + 64), a4);
        a5 = _mm512_fmadd_ps(xi, _mm512_maskz_loadu_ps(m[5], w + 80), a5);
        a6 = _mm512_fmadd_ps(xi, _mm512_maskz_loadu_ps(m[6], w + 96), a6);
        a7 = _mm512_fmadd_ps(xi, _mm512_maskz_loadu_ps(m[7], w + 112), a7);
    }
    _mm512_mask_storeu_ps(y, m[0], a0);
    _mm512_mask_storeu_ps(y + 16, m[1], a1);
    _mm512_mask_storeu_ps(y + 32, m[2], a2);
    _mm512_mask_storeu_ps(y + 48, m[3], a3);
    _mm512_mask_storeu_ps(y + 64, m[4], a4);
    _mm512_mask_storeu_ps(y + 80, m[5], a5);
    _mm512_mask_storeu_ps(y + 96, m[6], a6);
    _mm512_mask_storeu_ps(y + 112, m[7], a7);
#else
    for (int i = 0; i < n_in; i++) {
        const float *w = W + (size_t)(rows ? rows[i] : i) * ld;
        const float xi = x[i];
#pragma omp simd
        for (int c = 0; c < nc; c++) y[c] += xi * w[c];
    }
#endif
}

typedef struct {
    float *y;
    const float *x, *W;
    const int *rows;
    int n_in, n_out;
} ColsJob;

static void cols_chunk(void *ctx, int chunk, int thread) {
    (void)thread;
    const ColsJob *j = ctx;
    const int c0 = 128 * chunk, nc = j->n_out - c0 < 128 ? j->n_out - c0 : 128;
    axpy_block(j->y + c0, j->x, j->W + c0, (size_t)j->n_out, j->n_in, nc, j->rows);
}

/* y (n_out) += x (n_in) W, W (n_in, n_out) row-major: the Conv1D layout [in, out].
 * With rows != NULL, x[i] multiplies row rows[i] of W. A chunk is a block of 128
 * columns. */
void matvec_cols(Team *team, float *y, const float *x, const float *W, int n_in, int n_out,
                 const int *rows) {
    ColsJob job = {y, x, W, rows, n_in, n_out};
    team_run(team, cols_chunk, &job, (n_out + 127) / 128);
}

/* out (n_out) = x (n_in) W + b, W stored [in, out] (Conv1D). With accumulate the
 * product is added to out instead (b still added). */
void conv1d(Team *team, float *out, const float *x, const float *W, const float *b, int n_in,
            int n_out, int accumulate) {
    const QuantMatrix *qm = quant_copy(team, W);
    if (qm && qm->rows == n_out && qm->cols == n_in) {
        float y[n_out];
        quant_matvec(team, y, qm, x);
        for (int i = 0; i < n_out; i++) out[i] = (accumulate ? out[i] + b[i] : b[i]) + y[i];
        return;
    }
    if (!accumulate) memcpy(out, b, (size_t)n_out * sizeof(float));
    else
        for (int i = 0; i < n_out; i++) out[i] += b[i];
    matvec_cols(team, out, x, W, n_in, n_out, NULL);
}
