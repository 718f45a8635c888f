/* infer.c - one token at a time: the spec's computation for the newest position only,
 * with everything earlier positions contribute kept in caches.
 *
 * Per layer l the transformer keeps the keys and values of every earlier position
 * (key_cache, value_cache: (L, max_len, d), head h in columns [h d_h, (h+1) d_h)).
 * The Backpack part keeps, per position j, the sense-weight key K[j] (sense_keys:
 * (max_len, d), sense l in columns [l d_k, (l+1) d_k)), the sense vectors C(x_j)
 * (sense_vectors: (max_len, k, d), edit vectors already substituted) and the product
 * of the edit weights that apply to (x_j, l) (edit_scale, carved from scratch).
 * A new token then costs O(context * d) for attention and mixing plus the matrix-
 * vector products of one position; its sense network runs only the first time the
 * token appears in the context (C(x) depends on x alone).
 *
 * Mixing sums the alphas of repeated words first, so it reads each distinct word's
 * k sense rows once.
 *
 * All buffers are allocated by infer_build: infer_step does not allocate (only the
 * first infer_step_greedy builds its bfloat16 table). At batch 1 every product is a
 * matrix-vector product bound by reading the weights; the kernels below split them
 * over the OpenMP threads (AVX-512 where compiled for it) rather than calling
 * OpenBLAS, whose sgemv was 1.5-2x slower here and would add a second thread pool.
 * The loops over the context are small and stay on the calling thread.
 */
#include "infer.h"
#include "layers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* Views into s->scratch. S = sense_intermediate_scale * d. */
typedef struct {
    float *x;          /* (d) the residual stream of the new position */
    float *xn;         /* (d) a LayerNorm's output */
    float *qkv;        /* (3d) query, key, value of the new position */
    float *att;        /* (H, max_len) attention probabilities of every head */
    float *atty;       /* (d) concat_h(P_h V_h) */
    float *hidden;     /* (max(4d, S)) an MLP's hidden layer */
    float *h;          /* (d) LN_f(X) of the new position */
    float *z;          /* (2d) sense-weight query | key */
    float *o;          /* (d) sum_l sum_j alpha_l[j] C(x_j)_l */
    float *mix;        /* (max_len k) summed alphas of each distinct word's senses */
    float *r1, *r2;    /* (d) sense-network residuals */
    float *edit_scale; /* (max_len, k) product of edit weights for (x_j, l); 1 = none */
} Scratch;

static size_t scratch_floats(const BackpackConfig *c, int max_len) {
    size_t d = (size_t)c->n_embd, k = (size_t)c->num_senses, n = (size_t)max_len;
    size_t S = (size_t)c->sense_intermediate_scale * d;
    size_t hidden = 4 * d > S ? 4 * d : S;
    return d + d + 3 * d + (size_t)c->n_head * n + d + hidden + d + 2 * d + d + n * k + d + d +
           n * k;
}

static Scratch scratch_views(const InferState *s) {
    const BackpackConfig *c = &s->model->config;
    size_t d = (size_t)c->n_embd, k = (size_t)c->num_senses, n = (size_t)s->max_len;
    size_t S = (size_t)c->sense_intermediate_scale * d;
    size_t hidden = 4 * d > S ? 4 * d : S;
    Scratch v;
    float *p = s->scratch;
    v.x = p;          p += d;
    v.xn = p;         p += d;
    v.qkv = p;        p += 3 * d;
    v.att = p;        p += (size_t)c->n_head * n;
    v.atty = p;       p += d;
    v.hidden = p;     p += hidden;
    v.h = p;          p += d;
    v.z = p;          p += 2 * d;
    v.o = p;          p += d;
    v.mix = p;        p += n * k;
    v.r1 = p;         p += d;
    v.r2 = p;         p += d;
    v.edit_scale = p;
    return v;
}

int infer_build(InferState *s, const Backpack *m, int max_len, BpError *err) {
    memset(s, 0, sizeof *s);
    const BackpackConfig *c = &m->config;
    if (max_len < 1 || max_len > c->n_positions)
        return bp_fail(err, "context length %d out of range [1, %d] (n_positions)", max_len,
                       c->n_positions);
    size_t d = (size_t)c->n_embd, L = (size_t)c->n_layer, n = (size_t)max_len;
    int backpack = c->arch == ARCH_BACKPACK;
    size_t k = backpack ? (size_t)c->num_senses : 0;
    s->model = m;
    s->max_len = max_len;
    s->edits = m->edits;
    s->tokens = malloc(n * sizeof(int));
    s->key_cache = malloc(L * n * d * sizeof(float));
    s->value_cache = malloc(L * n * d * sizeof(float));
    s->logits = malloc((size_t)c->vocab_size * sizeof(float));
    s->scratch = malloc(scratch_floats(c, max_len) * sizeof(float));
    int ok = s->tokens && s->key_cache && s->value_cache && s->logits && s->scratch;
    if (backpack) {
        s->sense_keys = malloc(n * d * sizeof(float));
        s->sense_vectors = malloc(n * k * d * sizeof(float));
        s->alpha = malloc(k * n * sizeof(float));
        s->first_position = malloc(n * sizeof(int));
        s->mix_rows = malloc(n * k * sizeof(int));
        ok = ok && s->sense_keys && s->sense_vectors && s->alpha && s->first_position &&
             s->mix_rows;
    }
    if (!ok) {
        infer_free(s);
        return bp_fail(err, "out of memory for the caches of a %d-token context", max_len);
    }
    return 0;
}

void infer_free(InferState *s) {
    free(s->tokens);
    free(s->key_cache);
    free(s->value_cache);
    free(s->sense_keys);
    free(s->sense_vectors);
    free(s->alpha);
    free(s->logits);
    free(s->scratch);
    free(s->first_position);
    free(s->mix_rows);
    free(s->wte_bf16);
    free(s->wte_norm);
    memset(s, 0, sizeof *s);
}

void infer_reset(InferState *s) { s->len = 0; }

void infer_set_edits(InferState *s, const SenseEdits *edits) { s->edits = edits; }

/* ---------------------------------------------------------------------------------- */
/* the pieces of one position */

/* One row of the training path's LayerNorm and GELU (model/layers.h), so that the
 * incremental and the full forward share their numerics. */
static void layernorm(float *out, const float *x, const float *w, const float *b, int d) {
    float mean, rstd;
    layernorm_forward(out, &mean, &rstd, x, w, b, 1, d);
}

static void gelu(float *x, int n) { gelu_forward(x, x, (size_t)n); }

/* ---------------------------------------------------------------------------------- */
/* matrix-vector products: batch 1 is bound by reading the weights, so large products
 * are split over the threads (dynamic schedule: a core busy elsewhere does not hold up
 * the other for long). A product is split only when its matrix holds at least 1 MB:
 * waking a thread costs microseconds when the workers spin and far more when they
 * sleep (OMP_WAIT_POLICY=PASSIVE) or the other core is busy, as much as a smaller
 * product takes from the L3 cache. In configurations A and B that leaves some ten
 * parallel regions per token (the MLPs, the sense network, the vocabulary product)
 * instead of twenty; the largest gain of two threads is on the vocabulary product,
 * which streams from memory. */

#define PARALLEL_MIN_FLOATS ((size_t)1 << 18)

/* y[r] = row[r] . x for the 4 rows of `row` (cols long each). Every row gets the same
 * sequence of operations whatever its neighbours, so a logit is bit-identical whether
 * it is computed with all the others (matvec_rows) or alone (the greedy check). */
static void dot_rows4(float y[4], const float *const row[4], const float *x, int cols) {
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

/* y (rows) = A x, A (rows, cols) row-major: the layout of wte and of nn.Linear. */
static void matvec_rows(float *y, const float *A, const float *x, int rows, int cols) {
    const int groups = (rows + 3) / 4;
#pragma omp parallel for schedule(dynamic, 32) if ((size_t)rows * cols >= PARALLEL_MIN_FLOATS)
    for (int g = 0; g < groups; g++) {
        const int r0 = 4 * g, nr = rows - r0 < 4 ? rows - r0 : 4;
        const float *row[4];
        float out[4];
        for (int r = 0; r < 4; r++) row[r] = A + (size_t)(r0 + (r < nr ? r : 0)) * cols;
        dot_rows4(out, row, x, cols);
        for (int r = 0; r < nr; r++) y[r0 + r] = out[r];
    }
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

/* y (n_out) += x (n_in) W, W (n_in, n_out) row-major: the Conv1D layout [in, out].
 * With rows != NULL, x[i] multiplies row rows[i] of W. */
static void matvec_cols(float *y, const float *x, const float *W, int n_in, int n_out,
                        const int *rows) {
    const int blocks = (n_out + 127) / 128;
#pragma omp parallel for schedule(dynamic, 1) if ((size_t)n_in * n_out >= PARALLEL_MIN_FLOATS)
    for (int b = 0; b < blocks; b++) {
        const int c0 = 128 * b, nc = n_out - c0 < 128 ? n_out - c0 : 128;
        axpy_block(y + c0, x, W + c0, (size_t)n_out, n_in, nc, rows);
    }
}

/* out (n_out) = x (n_in) W + b, W stored [in, out] (Conv1D). With accumulate the
 * product is added to out instead (b still added). */
static void conv1d(float *out, const float *x, const float *W, const float *b, int n_in,
                   int n_out, int accumulate) {
    if (!accumulate) memcpy(out, b, (size_t)n_out * sizeof(float));
    else
        for (int i = 0; i < n_out; i++) out[i] += b[i];
    matvec_cols(out, x, W, n_in, n_out, NULL);
}

/* In-place softmax of x[0..n). */
static void softmax(float *x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > mx) mx = x[i];
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++) x[i] *= inv;
}

/* The transformer for position pos = s->len: fills the caches of every layer and
 * leaves h = LN_f(X[pos]) in v->h. */
static void transformer_step(InferState *s, const Scratch *v, int token) {
    const Backpack *m = s->model;
    const ParameterTensors *p = &m->params;
    const int d = m->config.n_embd, L = m->config.n_layer, H = m->config.n_head;
    const int dh = d / H, pos = s->len, n = pos + 1;
    const size_t layer_cache = (size_t)s->max_len * d;

    const float *e = p->wte + (size_t)token * d, *pe = p->wpe + (size_t)pos * d;
    for (int i = 0; i < d; i++) v->x[i] = e[i] + pe[i];

    for (int l = 0; l < L; l++) {
        float *kc = s->key_cache + l * layer_cache, *vc = s->value_cache + l * layer_cache;
        layernorm(v->xn, v->x, p->ln1w + (size_t)l * d, p->ln1b + (size_t)l * d, d);
        conv1d(v->qkv, v->xn, p->qkvw + (size_t)l * d * 3 * d, p->qkvb + (size_t)l * 3 * d, d,
               3 * d, 0);
        memcpy(kc + (size_t)pos * d, v->qkv + d, (size_t)d * sizeof(float));
        memcpy(vc + (size_t)pos * d, v->qkv + 2 * d, (size_t)d * sizeof(float));
        /* the spec's scaling: 1/sqrt(d_h) and the extra 1/(l+1) */
        const float scale = 1.0f / (sqrtf((float)dh) * (float)(l + 1));
        /* Scores of every head, then values of every head: each sweep reads the
         * cached rows (d floats per position) in order, once. att is (H, n). */
        for (int j = 0; j < n; j++) {
            const float *kj = kc + (size_t)j * d;
            for (int hd = 0; hd < H; hd++) {
                const float *q = v->qkv + hd * dh, *kh = kj + hd * dh;
                float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                for (int i = 0; i < dh; i++) dot += q[i] * kh[i];
                v->att[(size_t)hd * n + j] = dot * scale;
            }
        }
        for (int hd = 0; hd < H; hd++) softmax(v->att + (size_t)hd * n, n);
        memset(v->atty, 0, (size_t)d * sizeof(float));
        for (int j = 0; j < n; j++) {
            const float *vj = vc + (size_t)j * d;
            for (int hd = 0; hd < H; hd++) {
                const float a = v->att[(size_t)hd * n + j];
                float *y = v->atty + hd * dh;
                const float *vh = vj + hd * dh;
#pragma omp simd
                for (int i = 0; i < dh; i++) y[i] += a * vh[i];
            }
        }
        conv1d(v->x, v->atty, p->attprojw + (size_t)l * d * d, p->attprojb + (size_t)l * d, d, d,
               1);
        layernorm(v->xn, v->x, p->ln2w + (size_t)l * d, p->ln2b + (size_t)l * d, d);
        conv1d(v->hidden, v->xn, p->fcw + (size_t)l * d * 4 * d, p->fcb + (size_t)l * 4 * d, d,
               4 * d, 0);
        gelu(v->hidden, 4 * d);
        conv1d(v->x, v->hidden, p->fcprojw + (size_t)l * 4 * d * d, p->fcprojb + (size_t)l * d,
               4 * d, d, 1);
    }
    layernorm(v->h, v->x, p->lnfw, p->lnfb, d);
}

/* C(token) (k, d) into out: the spec's sense network for one word. */
static void sense_network(const InferState *s, const Scratch *v, int token, float *out) {
    const Backpack *m = s->model;
    const ParameterTensors *p = &m->params;
    const int d = m->config.n_embd, k = m->config.num_senses;
    const int S = m->config.sense_intermediate_scale * d;
    const float *e = p->wte + (size_t)token * d;

    layernorm(v->r1, e, p->sense_lnw, p->sense_lnb, d);
    for (int i = 0; i < d; i++) v->r1[i] += e[i];                       /* r1 = e + LN_s(e) */
    layernorm(v->xn, v->r1, p->sense_ln1w, p->sense_ln1b, d);
    conv1d(v->hidden, v->xn, p->sense_fcw, p->sense_fcb, d, S, 0);
    gelu(v->hidden, S);
    memcpy(v->r2, v->r1, (size_t)d * sizeof(float));
    conv1d(v->r2, v->hidden, p->sense_projw, p->sense_projb, S, d, 1);  /* r2 = r1 + MLP */
    layernorm(v->xn, v->r2, p->sense_ln2w, p->sense_ln2b, d);
    conv1d(v->hidden, v->xn, p->sense_final_fcw, p->sense_final_fcb, d, S, 0);
    gelu(v->hidden, S);
    conv1d(out, v->hidden, p->sense_final_projw, p->sense_final_projb, S, k * d, 0);
}

/* The sense vectors and edit scales of position pos = s->len holding `token`. */
static void append_senses(InferState *s, const Scratch *v, int token) {
    const BackpackConfig *c = &s->model->config;
    const int d = c->n_embd, k = c->num_senses, pos = s->len;
    const size_t row = (size_t)k * d;
    float *out = s->sense_vectors + (size_t)pos * row;
    float *scale = v->edit_scale + (size_t)pos * k;

    int earlier = -1;
    for (int j = pos - 1; j >= 0; j--)
        if (s->tokens[j] == token) {
            earlier = j;
            break;
        }
    s->first_position[pos] = earlier >= 0 ? s->first_position[earlier] : pos;
    if (earlier >= 0) { /* same word, same (edited) senses */
        memcpy(out, s->sense_vectors + (size_t)earlier * row, row * sizeof(float));
        memcpy(scale, v->edit_scale + (size_t)earlier * k, (size_t)k * sizeof(float));
        return;
    }
    sense_network(s, v, token, out);
    for (int l = 0; l < k; l++) scale[l] = 1.0f;
    if (!s->edits) return;
    for (int i = 0; i < s->edits->count; i++) {
        const SenseEdit *ed = &s->edits->items[i];
        if (ed->token != token || ed->sense < 0 || ed->sense >= k) continue;
        if (ed->vector) memcpy(out + (size_t)ed->sense * d, ed->vector, (size_t)d * sizeof(float));
        scale[ed->sense] *= ed->weight;
    }
}

/* alpha_l[pos, j] for every sense and j <= pos into s->alpha (edit weights applied),
 * and o = sum alpha C into v->o. */
static void sense_weights_and_mix(InferState *s, const Scratch *v) {
    const Backpack *m = s->model;
    const ParameterTensors *p = &m->params;
    const int d = m->config.n_embd, k = m->config.num_senses, dk = d / k;
    const int pos = s->len, n = pos + 1, max_len = s->max_len;

    /* Z = W_c h + b_c, W_c stored [out, in] = (2d, d) */
    matvec_rows(v->z, p->sense_qkw, v->h, 2 * d, d);
    for (int i = 0; i < 2 * d; i++) v->z[i] += p->sense_qkb[i];
    memcpy(s->sense_keys + (size_t)pos * d, v->z + d, (size_t)d * sizeof(float));

    const float scale = 1.0f / sqrtf((float)dk);
    for (int l = 0; l < k; l++) {
        const float *q = v->z + l * dk;
        float *a = s->alpha + (size_t)l * max_len;
        for (int j = 0; j < n; j++) {
            const float *kj = s->sense_keys + (size_t)j * d + l * dk;
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int i = 0; i < dk; i++) dot += q[i] * kj[i];
            a[j] = dot * scale;
        }
        softmax(a, n);
        /* sense-weight scaling: multiply, do not renormalize (the spec) */
        for (int j = 0; j < n; j++) a[j] *= v->edit_scale[(size_t)j * k + l];
    }
    /* o = sum_{j,l} alpha_l[j] C(x_j)_l. Positions holding the same word share its
     * sense vectors, so their alphas are summed first (at the word's first position)
     * and each distinct word's k rows are read once. */
    const int *first = s->first_position;
    for (int j = 0; j < n; j++)
        if (first[j] == j)
            for (int l = 0; l < k; l++) v->mix[(size_t)j * k + l] = 0.0f;
    for (int j = 0; j < n; j++)
        for (int l = 0; l < k; l++)
            v->mix[(size_t)first[j] * k + l] += s->alpha[(size_t)l * max_len + j];
    int rows = 0; /* compact in place: rows <= j k + l */
    for (int j = 0; j < n; j++)
        if (first[j] == j)
            for (int l = 0; l < k; l++) {
                v->mix[rows] = v->mix[(size_t)j * k + l];
                s->mix_rows[rows++] = j * k + l;
            }
    memset(v->o, 0, (size_t)d * sizeof(float));
    matvec_cols(v->o, v->mix, s->sense_vectors, rows, d, s->mix_rows);
}

static int advance(InferState *s, int token, int want_logits, BpError *err) {
    const Backpack *m = s->model;
    const BackpackConfig *c = &m->config;
    if (token < 0 || token >= c->vocab_size)
        return bp_fail(err, "token id %d out of range [0, %d)", token, c->vocab_size);
    if (s->len >= s->max_len)
        return bp_fail(err, "context full: %d of %d tokens", s->len, s->max_len);
    Scratch v = scratch_views(s);
    transformer_step(s, &v, token);
    const float *out = v.h;
    if (c->arch == ARCH_BACKPACK) {
        append_senses(s, &v, token);
        sense_weights_and_mix(s, &v);
        out = v.o;
    }
    s->tokens[s->len++] = token;
    /* logits = E out, E (V, d) */
    if (want_logits)
        matvec_rows(s->logits, m->params.wte, out, c->vocab_size, c->n_embd);
    return 0;
}

/* The vector the logits are E times: o for the Backpack, h for the Transformer. */
static const float *output_vector(const InferState *s) {
    Scratch v = scratch_views(s);
    return s->model->config.arch == ARCH_BACKPACK ? v.o : v.h;
}

const float *infer_step(InferState *s, int token, BpError *err) {
    return advance(s, token, 1, err) ? NULL : s->logits;
}

int infer_feed(InferState *s, int token, BpError *err) { return advance(s, token, 0, err); }

const float *infer_alpha(const InferState *s) { return s->alpha; }

const float *infer_context_senses(const InferState *s) { return s->sense_vectors; }

/* ---------------------------------------------------------------------------------- */
/* greedy choice with a bfloat16 copy of E
 *
 * For word v let f_v be the float logit matvec_rows computes (dot_rows4: the same
 * operations whichever rows share the call) and a_v the float score with bf16(E[v]).
 * With u_b = 2^-8 (bfloat16 keeps 8 significant bits, round to nearest) and
 * g = d 2^-24 / (1 - d 2^-24) (a float dot product of length d in any order):
 *     |f_v - a_v| <= (u_b + 2.01 g) sum_i |E[v,i] o_i| <= (u_b + 2.01 g) |E[v]| |o| = B_v.
 * The argmax w of f has a_w + B_w >= f_w >= f_v >= a_v - B_v for every v, so it is
 * among the candidates {v : a_v + B_v >= max_u (a_u - B_u)}, whose exact logits
 * decide. The bounds are evaluated in double with a further 1% margin (the norms are
 * floats rounded up) plus an absolute 1e-30 for underflowed products. */

static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u += 0x7FFFu + ((u >> 16) & 1u); /* round to nearest even; inf stays inf */
    return (uint16_t)(u >> 16);
}

static int build_greedy_tables(InferState *s, BpError *err) {
    const BackpackConfig *c = &s->model->config;
    const size_t V = (size_t)c->vocab_size, d = (size_t)c->n_embd;
    const float *E = s->model->params.wte;
    s->wte_bf16 = malloc(V * d * sizeof(uint16_t));
    s->wte_norm = malloc(V * sizeof(float));
    if (!s->wte_bf16 || !s->wte_norm) {
        free(s->first_position);
    free(s->mix_rows);
    free(s->wte_bf16);
        free(s->wte_norm);
        s->wte_bf16 = NULL;
        s->wte_norm = NULL;
        return bp_fail(err, "out of memory for the bfloat16 copy of a %zu x %zu embedding", V, d);
    }
    int exact_only = 0;
#pragma omp parallel for schedule(static) reduction(| : exact_only)
    for (size_t v = 0; v < V; v++) {
        double sq = 0.0;
        for (size_t i = 0; i < d; i++) {
            float e = E[v * d + i];
            if (!isfinite(e) || fabsf(e) > 1e30f) exact_only = 1; /* bf16 rounding could overflow */
            s->wte_bf16[v * d + i] = to_bf16(e);
            sq += (double)e * e;
        }
        s->wte_norm[v] = (float)(sqrt(sq) * (1.0 + 1e-6));
    }
    s->greedy_exact_only = exact_only;
    return 0;
}

/* y[r] = bf16 row[r] . x for 4 rows. */
static void dot_rows4_bf16(float y[4], const uint16_t *const row[4], const float *x, int cols) {
    int c = 0;
#if defined(__AVX512F__)
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
#define BF16_LOAD(p)                                                                   \
    _mm512_castsi512_ps(                                                               \
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
    for (; c + 16 <= cols; c += 16) {
        __m512 xv = _mm512_loadu_ps(x + c);
        s0 = _mm512_fmadd_ps(BF16_LOAD(row[0] + c), xv, s0);
        s1 = _mm512_fmadd_ps(BF16_LOAD(row[1] + c), xv, s1);
        s2 = _mm512_fmadd_ps(BF16_LOAD(row[2] + c), xv, s2);
        s3 = _mm512_fmadd_ps(BF16_LOAD(row[3] + c), xv, s3);
    }
#undef BF16_LOAD
    y[0] = _mm512_reduce_add_ps(s0);
    y[1] = _mm512_reduce_add_ps(s1);
    y[2] = _mm512_reduce_add_ps(s2);
    y[3] = _mm512_reduce_add_ps(s3);
#else
    y[0] = y[1] = y[2] = y[3] = 0.0f;
#endif
    for (int r = 0; r < 4; r++)
        for (int i = c; i < cols; i++) {
            uint32_t u = (uint32_t)row[r][i] << 16;
            float e;
            memcpy(&e, &u, sizeof e);
            y[r] += e * x[i];
        }
}

static int argmax_exact(InferState *s, const float *o) {
    const BackpackConfig *c = &s->model->config;
    matvec_rows(s->logits, s->model->params.wte, o, c->vocab_size, c->n_embd);
    int best = 0;
    for (int v = 1; v < c->vocab_size; v++)
        if (s->logits[v] > s->logits[best]) best = v;
    return best;
}

int infer_step_greedy(InferState *s, int token, BpError *err) {
    if (!s->wte_bf16 && build_greedy_tables(s, err)) return -1;
    if (advance(s, token, 0, err)) return -1;
    const BackpackConfig *c = &s->model->config;
    const int V = c->vocab_size, d = c->n_embd;
    const float *o = output_vector(s), *E = s->model->params.wte;
    double o_norm = 0.0;
    for (int i = 0; i < d; i++) o_norm += (double)o[i] * o[i];
    o_norm = sqrt(o_norm);
    if (s->greedy_exact_only || !isfinite(o_norm)) return argmax_exact(s, o);

    float *score = s->logits; /* (V) approximate scores a_v */
    const int groups = (V + 3) / 4;
#pragma omp parallel for schedule(dynamic, 32) if ((size_t)V * d >= PARALLEL_MIN_FLOATS)
    for (int g = 0; g < groups; g++) {
        const int r0 = 4 * g, nr = V - r0 < 4 ? V - r0 : 4;
        const uint16_t *row[4];
        float out[4];
        for (int r = 0; r < 4; r++) row[r] = s->wte_bf16 + (size_t)(r0 + (r < nr ? r : 0)) * d;
        dot_rows4_bf16(out, row, o, d);
        for (int r = 0; r < nr; r++) score[r0 + r] = out[r];
    }
    const double g = d * 0x1p-24 / (1.0 - d * 0x1p-24);
    const double K = (0x1p-8 + 2.01 * g) * 1.01 * o_norm;
    double floor = -INFINITY;
    for (int v = 0; v < V; v++) {
        double lo = (double)score[v] - (K * s->wte_norm[v] + 1e-30);
        if (lo > floor) floor = lo;
    }
    /* the candidates, in increasing id order, scored exactly four at a time */
    int best = -1, cand[4], nc = 0;
    float best_logit = 0.0f;
    for (int v = 0; v <= V; v++) {
        if (v < V && (double)score[v] + (K * s->wte_norm[v] + 1e-30) < floor) continue;
        if (v < V) cand[nc++] = v;
        if (nc == 4 || (v == V && nc > 0)) {
            const float *row[4];
            float exact[4];
            for (int r = 0; r < 4; r++) row[r] = E + (size_t)cand[r < nc ? r : 0] * d;
            dot_rows4(exact, row, o, d);
            for (int r = 0; r < nc; r++)
                if (best < 0 || exact[r] > best_logit) {
                    best = cand[r];
                    best_logit = exact[r];
                }
            nc = 0;
        }
    }
    return best;
}
