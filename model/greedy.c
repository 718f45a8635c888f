/* greedy.c - the greedy choice with an int8 copy of E (greedy.h).
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
#include "greedy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "infer_kernels.h"

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

void greedy_screen_free(GreedyScreen *g) {
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

GreedyScreen *greedy_screen_build(const Backpack *m, BpError *err) {
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
        greedy_screen_free(g);
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
void dot_rows4_int8(int32_t y[4], const int8_t *const row[4], const uint8_t *o_q, int d_pad) {
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

static int argmax_exact(const Backpack *m, Team *team, float *logits, const float *o) {
    const BackpackConfig *c = &m->config;
    matvec_rows(team, logits, m->params.wte, o, c->vocab_size, c->n_embd);
    int best = 0;
    for (int v = 1; v < c->vocab_size; v++)
        if (logits[v] > logits[best]) best = v;
    return best;
}

int greedy_screen_choose(GreedyScreen *g, const Backpack *m, Team *team, float *logits,
                         const float *o) {
    const BackpackConfig *c = &m->config;
    const int V = c->vocab_size, d = c->n_embd, d_pad = g->d_pad;
    const float *E = m->params.wte;

    double o_l2 = 0.0, o_l1 = 0.0;
    float o_max = 0.0f;
    for (int i = 0; i < d; i++) {
        o_l2 += (double)o[i] * o[i];
        o_l1 += fabs((double)o[i]);
        if (fabsf(o[i]) > o_max) o_max = fabsf(o[i]);
    }
    o_l2 = sqrt(o_l2);
    if (g->exact_only || !isfinite(o_l2) || o_max == 0.0f) return argmax_exact(m, team, logits, o);
    /* o rounded to q_o, and max |o - t q_o|; then offset by 128 for vpdpbusd (as bytes,
     * adding 128 to a two's-complement int8 flips its top bit) */
    const float t = o_max / 127.0f;
    const double o_residual = quantize_int8((int8_t *)g->o_q, o, (size_t)d, t);
    for (int i = 0; i < d; i++) g->o_q[i] ^= 0x80;
    memset(g->o_q + d, 128, (size_t)(d_pad - d)); /* meets zero padding in q */

    const double gamma = d * 0x1p-24 / (1.0 - d * 0x1p-24);
    ScreenJob job = {g, t, o_residual * 1.01, o_l1 * 1.01, gamma * o_l2 * 1.01, V};
    const int chunks = (V + SCREEN_ROWS - 1) / SCREEN_ROWS;
    team_run(team, screen_chunk, &job, chunks);
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
