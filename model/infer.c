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
 * first infer_step_greedy builds its int8 table). At batch 1 every product is a
 * matrix-vector product bound by reading the weights. One token is one OpenMP
 * parallel region (run_step): the calling thread runs the step and hands each large
 * product to the region's threads as a job of independent chunks (model/team.h), so
 * the threads wake once per token, not once per product. The kernels below are our
 * own (AVX-512 where compiled for it) rather than OpenBLAS's sgemv, which was 1.5-2x
 * slower here and would add a second thread pool. The loops over the context are
 * small and stay on the calling thread.
 */
#include "infer.h"
#include "layers.h"
#include "team.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

static void free_screen(GreedyScreen *g);

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
    s->team = aligned_alloc(64, (sizeof(Team) + 63) / 64 * 64); /* its own cache lines */
    int ok = s->tokens && s->key_cache && s->value_cache && s->logits && s->scratch && s->team;
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
    free_screen(s->screen);
    free(s->team);
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
/* matrix-vector products, as team jobs: chunks of about 64K weights (256 KB), so that
 * the two threads of a 256-wide model share even the attention products, while the
 * claims (one atomic each) stay rare next to the reading. */

#define CHUNK_FLOATS 65536

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

/* y (rows) = A x, A (rows, cols) row-major: the layout of wte and of nn.Linear. */
static void matvec_rows(Team *team, float *y, const float *A, const float *x, int rows,
                        int cols) {
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
static void matvec_cols(Team *team, float *y, const float *x, const float *W, int n_in,
                        int n_out, const int *rows) {
    ColsJob job = {y, x, W, rows, n_in, n_out};
    team_run(team, cols_chunk, &job, (n_out + 127) / 128);
}

/* out (n_out) = x (n_in) W + b, W stored [in, out] (Conv1D). With accumulate the
 * product is added to out instead (b still added). */
static void conv1d(Team *team, float *out, const float *x, const float *W, const float *b,
                   int n_in, int n_out, int accumulate) {
    if (!accumulate) memcpy(out, b, (size_t)n_out * sizeof(float));
    else
        for (int i = 0; i < n_out; i++) out[i] += b[i];
    matvec_cols(team, out, x, W, n_in, n_out, NULL);
}

/* The transformer for position pos = s->len: fills the caches of every layer and
 * leaves h = LN_f(X[pos]) in v->h. */
static void transformer_step(InferState *s, const Scratch *v, int token) {
    const Backpack *m = s->model;
    Team *team = s->team;
    const ParameterTensors *p = &m->params;
    const int d = m->config.n_embd, L = m->config.n_layer, H = m->config.n_head;
    const int dh = d / H, pos = s->len, n = pos + 1;
    const size_t layer_cache = (size_t)s->max_len * d;

    const float *e = p->wte + (size_t)token * d, *pe = p->wpe + (size_t)pos * d;
    for (int i = 0; i < d; i++) v->x[i] = e[i] + pe[i];

    for (int l = 0; l < L; l++) {
        float *kc = s->key_cache + l * layer_cache, *vc = s->value_cache + l * layer_cache;
        layernorm(v->xn, v->x, p->ln1w + (size_t)l * d, p->ln1b + (size_t)l * d, d);
        conv1d(team, v->qkv, v->xn, p->qkvw + (size_t)l * d * 3 * d, p->qkvb + (size_t)l * 3 * d, d,
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
        for (int hd = 0; hd < H; hd++) softmax_forward(v->att + (size_t)hd * n, n);
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
        conv1d(team, v->x, v->atty, p->attprojw + (size_t)l * d * d, p->attprojb + (size_t)l * d, d, d,
               1);
        layernorm(v->xn, v->x, p->ln2w + (size_t)l * d, p->ln2b + (size_t)l * d, d);
        conv1d(team, v->hidden, v->xn, p->fcw + (size_t)l * d * 4 * d, p->fcb + (size_t)l * 4 * d, d,
               4 * d, 0);
        gelu(v->hidden, 4 * d);
        conv1d(team, v->x, v->hidden, p->fcprojw + (size_t)l * 4 * d * d, p->fcprojb + (size_t)l * d,
               4 * d, d, 1);
    }
    layernorm(v->h, v->x, p->lnfw, p->lnfb, d);
}

/* C(token) (k, d) into out: the spec's sense network for one word. */
static void sense_network(const InferState *s, const Scratch *v, int token, float *out) {
    const Backpack *m = s->model;
    Team *team = s->team;
    const ParameterTensors *p = &m->params;
    const int d = m->config.n_embd, k = m->config.num_senses;
    const int S = m->config.sense_intermediate_scale * d;
    const float *e = p->wte + (size_t)token * d;

    layernorm(v->r1, e, p->sense_lnw, p->sense_lnb, d);
    for (int i = 0; i < d; i++) v->r1[i] += e[i];                       /* r1 = e + LN_s(e) */
    layernorm(v->xn, v->r1, p->sense_ln1w, p->sense_ln1b, d);
    conv1d(team, v->hidden, v->xn, p->sense_fcw, p->sense_fcb, d, S, 0);
    gelu(v->hidden, S);
    memcpy(v->r2, v->r1, (size_t)d * sizeof(float));
    conv1d(team, v->r2, v->hidden, p->sense_projw, p->sense_projb, S, d, 1);  /* r2 = r1 + MLP */
    layernorm(v->xn, v->r2, p->sense_ln2w, p->sense_ln2b, d);
    conv1d(team, v->hidden, v->xn, p->sense_final_fcw, p->sense_final_fcb, d, S, 0);
    gelu(v->hidden, S);
    conv1d(team, out, v->hidden, p->sense_final_projw, p->sense_final_projb, S, k * d, 0);
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
    matvec_rows(s->team, v->z, p->sense_qkw, v->h, 2 * d, d);
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
        softmax_forward(a, n);
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
    matvec_cols(s->team, v->o, v->mix, s->sense_vectors, rows, d, s->mix_rows);
}

/* ---------------------------------------------------------------------------------- */
/* one token: validation, then the step in one parallel region */

typedef enum { STEP_FEED, STEP_LOGITS, STEP_GREEDY } StepKind;

static int greedy_choice(InferState *s, const float *o);

/* The vector the logits are E times: o for the Backpack, h for the Transformer. */
static const float *output_vector(const InferState *s) {
    Scratch v = scratch_views(s);
    return s->model->config.arch == ARCH_BACKPACK ? v.o : v.h;
}

/* Thread 0's part of run_step. Returns the greedy token for STEP_GREEDY, else 0. */
static int step_body(InferState *s, int token, StepKind kind) {
    const BackpackConfig *c = &s->model->config;
    Scratch v = scratch_views(s);
    transformer_step(s, &v, token);
    if (c->arch == ARCH_BACKPACK) {
        append_senses(s, &v, token);
        sense_weights_and_mix(s, &v);
    }
    s->tokens[s->len++] = token;
    if (kind == STEP_LOGITS) /* logits = E out, E (V, d) */
        matvec_rows(s->team, s->logits, s->model->params.wte, output_vector(s), c->vocab_size,
                    c->n_embd);
    return kind == STEP_GREEDY ? greedy_choice(s, output_vector(s)) : 0;
}

/* Models whose weights read per token are below this many floats run on the calling
 * thread alone: waking a second thread would cost more than it saves. */
#define PARALLEL_MIN_FLOATS ((size_t)1 << 20)

static int run_step(InferState *s, int token, StepKind kind) {
    const BackpackConfig *c = &s->model->config;
    const size_t d = (size_t)c->n_embd;
    const size_t per_token = 12 * d * d * (size_t)c->n_layer + (size_t)c->vocab_size * d;
    Team *team = s->team;
    int result = 0;
    team_begin(team);
#pragma omp parallel if (per_token >= PARALLEL_MIN_FLOATS)
    {
        if (omp_get_thread_num() == 0) {
            result = step_body(s, token, kind);
            team_finish(team);
        } else
            team_serve(team);
    }
    return result;
}

static int check_step(const InferState *s, int token, BpError *err) {
    const BackpackConfig *c = &s->model->config;
    if (token < 0 || token >= c->vocab_size)
        return bp_fail(err, "token id %d out of range [0, %d)", token, c->vocab_size);
    if (s->len >= s->max_len)
        return bp_fail(err, "context full: %d of %d tokens", s->len, s->max_len);
    return 0;
}

const float *infer_step(InferState *s, int token, BpError *err) {
    if (check_step(s, token, err)) return NULL;
    run_step(s, token, STEP_LOGITS);
    return s->logits;
}

int infer_feed(InferState *s, int token, BpError *err) {
    if (check_step(s, token, err)) return -1;
    run_step(s, token, STEP_FEED);
    return 0;
}

const float *infer_alpha(const InferState *s) { return s->alpha; }

const float *infer_context_senses(const InferState *s) { return s->sense_vectors; }

/* ---------------------------------------------------------------------------------- */
/* greedy choice with an int8 copy of E
 *
 * Row v of E is stored as int8 q_v with one scale per row, s_v = max_i |E[v,i]| / 127;
 * each token's o is rounded the same way (q_o, scale t). The integer dot product
 * I_v = q_v . q_o is exact, and with the residuals e_v = E[v] - s_v q_v and
 * r = o - t q_o, the real dot product is
 *     E[v] . o = s_v t I_v + s_v (q_v . r) + e_v . o,
 * so a_v = s_v t I_v is within s_v |q_v|_1 max|r| + max|e_v| |o|_1 of it. The float
 * logit f_v that matvec_rows computes (dot_rows4: the same operations whichever rows
 * share the call) is within g |E[v]|_2 |o|_2 of it, g = d 2^-24 / (1 - d 2^-24) (a
 * float dot product of length d in any order). With B_v the sum of the two bounds, the
 * argmax w of f has a_w + B_w >= f_w >= f_v >= a_v - B_v for every v, so it is among
 * the candidates {v : a_v + B_v >= max_u (a_u - B_u)}, whose exact logits decide, in
 * increasing id order (the lowest id wins ties). The bounds are evaluated in double
 * with a further 1% margin (the per-row constants are floats rounded up), 1e-15 |a_v|
 * for the rounding of a_v itself, and an absolute 1e-30 for underflowed products.
 *
 * Scoring reads V d bytes, a quarter of the float E; with AVX-512 VNNI the integer
 * products run 64 at a time (vpdpbusd multiplies unsigned by signed bytes, so q_o is
 * offset by 128 and 128 sum_i q_v[i] is subtracted back). */

#define SCREEN_ROWS 1024 /* rows per chunk of the scoring job: 256 KB of int8 at d = 256 */

struct GreedyScreen {
    int d_pad;        /* d rounded up to 64: the row stride of q, zero-padded */
    int exact_only;   /* 1: E holds values the bounds cannot cover (inf, NaN, > 1e30) */
    int8_t *q;        /* (V, d_pad) round(E / s_v) */
    float *scale;     /* (V) s_v */
    int32_t *q_sum;   /* (V) sum_i q_v[i] */
    float *q_l1;      /* (V) s_v |q_v|_1, rounded up */
    float *residual;  /* (V) max_i |E[v,i] - s_v q_v[i]|, rounded up */
    float *norm;      /* (V) |E[v]|_2, rounded up */
    uint8_t *o_q;     /* (d_pad) q_o + 128 of the current token */
    double *upper;    /* (V) a_v + B_v of the current token */
    double *chunk_floor; /* (chunks) max (a_v - B_v) over each chunk's rows */
};

static void free_screen(GreedyScreen *g) {
    if (!g) return;
    free(g->q);
    free(g->scale);
    free(g->q_sum);
    free(g->q_l1);
    free(g->residual);
    free(g->norm);
    free(g->o_q);
    free(g->upper);
    free(g->chunk_floor);
    free(g);
}

static float round_up(double x) { return (float)(x * (1.0 + 1e-6)); }

/* The one int8 rounding of both E's rows and each token's o (infer.h). */
double quantize_int8(int8_t *q, const float *x, size_t n, float s) {
    const int usable = s > 0.0f && isfinite(s);
    double residual = 0.0;
    for (size_t i = 0; i < n; i++) {
        long r = usable ? lrintf(x[i] / s) : 0;
        r = r > 127 ? 127 : r < -127 ? -127 : r;
        q[i] = (int8_t)r;
        double res = fabs((double)x[i] - (double)s * (double)r);
        if (res > residual) residual = res;
    }
    return residual;
}

static GreedyScreen *build_screen(const Backpack *m, BpError *err) {
    const size_t V = (size_t)m->config.vocab_size, d = (size_t)m->config.n_embd;
    const size_t d_pad = (d + 63) / 64 * 64;
    const float *E = m->params.wte;
    GreedyScreen *g = calloc(1, sizeof *g);
    if (g) {
        g->d_pad = (int)d_pad;
        g->q = aligned_alloc(64, V * d_pad);
        g->o_q = aligned_alloc(64, d_pad);
        g->scale = malloc(V * sizeof(float));
        g->q_sum = malloc(V * sizeof(int32_t));
        g->q_l1 = malloc(V * sizeof(float));
        g->residual = malloc(V * sizeof(float));
        g->norm = malloc(V * sizeof(float));
        g->upper = malloc(V * sizeof(double));
        g->chunk_floor = malloc((V / SCREEN_ROWS + 1) * sizeof(double));
    }
    if (!g || !g->q || !g->o_q || !g->scale || !g->q_sum || !g->q_l1 || !g->residual ||
        !g->norm || !g->upper || !g->chunk_floor) {
        free_screen(g);
        bp_fail(err, "out of memory for the int8 copy of a %zu x %zu embedding", V, d);
        return NULL;
    }
    int exact_only = 0;
#pragma omp parallel for schedule(static) reduction(| : exact_only)
    for (size_t v = 0; v < V; v++) {
        const float *e = E + v * d;
        int8_t *q = g->q + v * d_pad;
        float max_abs = 0.0f;
        for (size_t i = 0; i < d; i++) {
            if (!isfinite(e[i]) || fabsf(e[i]) > 1e30f) exact_only = 1;
            if (fabsf(e[i]) > max_abs) max_abs = fabsf(e[i]);
        }
        const float s = max_abs / 127.0f;
        const double resid = quantize_int8(q, e, d, s);
        double sq = 0.0, l1 = 0.0;
        int32_t sum = 0;
        for (size_t i = 0; i < d; i++) {
            sum += q[i];
            l1 += abs(q[i]);
            sq += (double)e[i] * e[i];
        }
        memset(q + d, 0, d_pad - d);
        g->scale[v] = s;
        g->q_sum[v] = sum;
        g->q_l1[v] = round_up((double)s * l1);
        g->residual[v] = round_up(resid);
        g->norm[v] = round_up(sqrt(sq));
    }
    g->exact_only = exact_only;
    return g;
}

/* The greedy screen's 4-row int8 dot product (infer.h). */
void dot_rows4_int8(int32_t y[4], const int8_t *const row[4], const uint8_t *o_q,
                           int d_pad) {
#if defined(__AVX512VNNI__)
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
    for (int c = 0; c < d_pad; c += 64) {
        const __m512i u = _mm512_load_si512((const void *)(o_q + c));
        s0 = _mm512_dpbusd_epi32(s0, u, _mm512_load_si512((const void *)(row[0] + c)));
        s1 = _mm512_dpbusd_epi32(s1, u, _mm512_load_si512((const void *)(row[1] + c)));
        s2 = _mm512_dpbusd_epi32(s2, u, _mm512_load_si512((const void *)(row[2] + c)));
        s3 = _mm512_dpbusd_epi32(s3, u, _mm512_load_si512((const void *)(row[3] + c)));
    }
    /* the four horizontal sums at once: interleave and add pairs of rows, then pairs
     * of pairs, leaving [y0 y1 y2 y3] in each 128-bit lane, and add the lanes */
    const __m512i t01 = _mm512_add_epi32(_mm512_unpacklo_epi32(s0, s1),
                                         _mm512_unpackhi_epi32(s0, s1));
    const __m512i t23 = _mm512_add_epi32(_mm512_unpacklo_epi32(s2, s3),
                                         _mm512_unpackhi_epi32(s2, s3));
    const __m512i t = _mm512_add_epi32(_mm512_unpacklo_epi64(t01, t23),
                                       _mm512_unpackhi_epi64(t01, t23));
    const __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(t), _mm512_extracti64x4_epi64(t, 1));
    const __m128i q = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    _mm_storeu_si128((__m128i *)y, q);
#else
    for (int r = 0; r < 4; r++) {
        int32_t sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int c = 0; c < d_pad; c++) sum += (int32_t)o_q[c] * (int32_t)row[r][c];
        y[r] = sum;
    }
#endif
}

typedef struct {
    GreedyScreen *g;
    double t;                                  /* the scale of q_o */
    double per_q_l1, per_residual, per_norm;   /* B_v = sum of these times the row's constants */
    int V;
} ScreenJob;

/* Scores, bounds and the upper ends a_v + B_v of one chunk's rows; the chunk's largest
 * lower end a_v - B_v into g->chunk_floor. The integer products first, then one
 * vectorizable pass for the bounds. */
static void screen_chunk(void *ctx, int chunk, int thread) {
    (void)thread;
    const ScreenJob *j = ctx;
    GreedyScreen *g = j->g;
    const int d_pad = g->d_pad, begin = chunk * SCREEN_ROWS;
    const int end = begin + SCREEN_ROWS < j->V ? begin + SCREEN_ROWS : j->V;
    int32_t dots[SCREEN_ROWS + 3];
    for (int r0 = begin; r0 < end; r0 += 4) {
        const int8_t *row[4];
        for (int r = 0; r < 4; r++) row[r] = g->q + (size_t)(r0 + r < end ? r0 + r : r0) * d_pad;
        dot_rows4_int8(dots + (r0 - begin), row, g->o_q, d_pad);
    }
    double floor = -INFINITY;
    const float *scale = g->scale, *q_l1 = g->q_l1, *residual = g->residual, *norm = g->norm;
    const int32_t *q_sum = g->q_sum;
    double *upper = g->upper;
#pragma omp simd reduction(max : floor)
    for (int v = begin; v < end; v++) {
        const double a = (double)scale[v] * j->t * (double)(dots[v - begin] - 128 * q_sum[v]);
        const double bound = q_l1[v] * j->per_q_l1 + residual[v] * j->per_residual +
                             norm[v] * j->per_norm + 1e-15 * fabs(a) + 1e-30;
        upper[v] = a + bound;
        floor = a - bound > floor ? a - bound : floor;
    }
    g->chunk_floor[chunk] = floor;
}

static int argmax_exact(InferState *s, const float *o) {
    const BackpackConfig *c = &s->model->config;
    matvec_rows(s->team, s->logits, s->model->params.wte, o, c->vocab_size, c->n_embd);
    int best = 0;
    for (int v = 1; v < c->vocab_size; v++)
        if (s->logits[v] > s->logits[best]) best = v;
    return best;
}

/* argmax_v of the float logits E o (lowest id on ties), through the screen. */
static int greedy_choice(InferState *s, const float *o) {
    GreedyScreen *g = s->screen;
    const BackpackConfig *c = &s->model->config;
    const int V = c->vocab_size, d = c->n_embd, d_pad = g->d_pad;
    const float *E = s->model->params.wte;

    double o_l2 = 0.0, o_l1 = 0.0;
    float o_max = 0.0f;
    for (int i = 0; i < d; i++) {
        o_l2 += (double)o[i] * o[i];
        o_l1 += fabs((double)o[i]);
        if (fabsf(o[i]) > o_max) o_max = fabsf(o[i]);
    }
    o_l2 = sqrt(o_l2);
    if (g->exact_only || !isfinite(o_l2) || o_max == 0.0f) return argmax_exact(s, o);
    /* o rounded to q_o, and max |o - t q_o|; then offset by 128 for vpdpbusd (as bytes,
     * adding 128 to a two's-complement int8 flips its top bit) */
    const float t = o_max / 127.0f;
    const double o_residual = quantize_int8((int8_t *)g->o_q, o, (size_t)d, t);
    for (int i = 0; i < d; i++) g->o_q[i] ^= 0x80;
    memset(g->o_q + d, 128, (size_t)(d_pad - d)); /* meets zero padding in q */

    const double gamma = d * 0x1p-24 / (1.0 - d * 0x1p-24);
    ScreenJob job = {g, t, o_residual * 1.01, o_l1 * 1.01, gamma * o_l2 * 1.01, V};
    const int chunks = (V + SCREEN_ROWS - 1) / SCREEN_ROWS;
    team_run(s->team, screen_chunk, &job, chunks);
    double floor = -INFINITY; /* max_u (a_u - B_u) */
    for (int i = 0; i < chunks; i++)
        if (g->chunk_floor[i] > floor) floor = g->chunk_floor[i];

    /* the candidates, in increasing id order, scored exactly four at a time */
    int best = -1, cand[4], nc = 0;
    float best_logit = 0.0f;
    for (int v = 0; v <= V; v++) {
        if (v < V) {
            if (g->upper[v] < floor) continue;
            cand[nc++] = v;
        }
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

int infer_step_greedy(InferState *s, int token, BpError *err) {
    if (check_step(s, token, err)) return -1;
    if (!s->screen && !(s->screen = build_screen(s->model, err))) return -1;
    return run_step(s, token, STEP_GREEDY);
}
