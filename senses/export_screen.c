/* export_screen.c - the top and bottom words of many sense vectors, exactly, through an
 * int8 screen (the export's score product: (V k) x d x V, 6.2e13 flops in float for the
 * published small shape).
 *
 * The score of word y for a vector c is store_exact_score(E[y], c) (store_private.h):
 * the float rounding of the double sum of the float products. The screen must give the
 * lists a scan of every exact score gives (score_extremes_exact), ties to the lower id.
 *
 * E's rows and c are rounded to int8 with one scale per row (quantize_int8, shared
 * with model/'s greedy screen): e = s_e q_e + r_e, c = s_c q_c + r_c, so
 *     c . e = a + (s_c q_c) . r_e + r_c . e,    a = s_c s_e (q_c . q_e),
 * and by Cauchy-Schwarz |c . e - a| <= |s_c q_c|_2 |r_e|_2 + |r_c|_2 |e|_2. B(c, y) is
 * that bound with margins: 1e-6 relative for the float arithmetic of the bound itself,
 * plus 2^-19 (|c|_2 + |r_c|_2) max_y |e|_2, which covers the float rounding of a, of U
 * and L below, of the double sum, and one float ulp of the scores. So every word has
 * U = a + B and L = a - B with U - ulp > score > L + ulp, and a word with U below the
 * L of n others scores strictly below those n after rounding (it cannot even tie).
 * The scan keeps, per vector, the n largest L seen so far (a heap; their minimum T only
 * grows) and every word whose U >= T. At the end the words with U >= the final T
 * remain: about 300 per list at the published shape (the int8 bound is 0.4 standard
 * deviations of the scores wide). They get a float dot product, within
 * gamma_d |e|_2 |c|_2 of the exact score (gamma_d = d 2^-24 / (1 - d 2^-24), any order
 * of summation), and the same argument with that much narrower interval leaves n words
 * and their near ties, which are scored exactly and sorted by (score, id). The float
 * dots run word by word over the whole chunk, so that E (154 MB) is read once per chunk.
 * Bottom lists alike, with the n smallest U. Vectors or rows of E the bounds cannot
 * cover (not finite, or beyond 1e15) are scanned exactly.
 *
 * The integer products: vpdpbusd (AVX-512 VNNI) multiplies unsigned by signed bytes
 * and adds groups of four into int32 lanes, so q_c is offset by 128 and 128 sum_i q_e[i]
 * is subtracted back (exact in int32: 255 * 127 * d < 2^31 for d < 66,000). E is packed
 * in panels of 64 words, per group of 4 dimensions 64 x 4 bytes (PACKED_AT); a tile is
 * 4 vectors x 64 words in 16 zmm accumulators. Each thread screens GROUP_ROWS vectors against all
 * panels (the vectors stay in L2, a panel is 48 KB at d = 768). Without VNNI (and in the
 * sanitizer build) the screen is the float product by sgemm instead, with the interval
 * gamma_d |c|_2 |e|_2 of a float dot product in any order: the same selection.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512VNNI__)
#include <immintrin.h>
#endif

#include "../model/infer.h"
#include "store_private.h"

#define PANEL 64        /* words per panel */
#define TILE_ROWS 4     /* vectors per tile */
#define GROUP_ROWS 256  /* vectors one thread screens against all of E at a time */
/* Where dimension i of panel word j is: the 4 bytes of a group of 4 dimensions
 * together, as vpdpbusd reads them. */
#define PACKED_AT(i, j) (((size_t)(i) / 4 * PANEL + (j)) * 4 + (i) % 4)
#define HUGE_VALUE 1e15f  /* beyond it, float bounds could overflow: scanned exactly */

struct ScoreScreen {
    const float *E;      /* (V, d) as given to build: the portable screen's float product reads it */
    int V, d, d4;        /* d4: d rounded up to a multiple of 4 */
    int panels;          /* ceil(V / PANEL) */
    int8_t *packed;      /* (panels, d4 / 4, PANEL, 4) q_e */
    int32_t *offset;     /* (panels PANEL) 128 sum_i q_e[i] */
    float *scale;        /* (panels PANEL) s_e; NaN for padding words and rows left to the exact scan */
    float *resid;        /* (panels PANEL) |r_e|_2, rounded up */
    float *norm;         /* (panels PANEL) |e|_2, rounded up */
    int *exact_rows;     /* words the bounds cannot cover, scored exactly for every vector */
    int n_exact_rows;
    double max_norm;     /* max_y |e|_2 */
};

static float up(double x) { return (float)(x * (1.0 + 1e-6)); }

void score_screen_free(ScoreScreen *g) {
    if (!g) return;
    free(g->packed);
    free(g->offset);
    free(g->scale);
    free(g->resid);
    free(g->norm);
    free(g->exact_rows);
    free(g);
}

static int finite_row(const float *x, int d) {
    for (int i = 0; i < d; i++)
        if (!(fabsf(x[i]) <= HUGE_VALUE)) return 0;
    return 1;
}

/* q, s, |s q|_2 and |r|_2 of a row; the residual norm in double, rounded up. */
static void quantize_row(const float *x, int d, int8_t *q, float *s, double *q_norm, double *r_norm,
                         double *norm, int32_t *q_sum) {
    float max_abs = 0.0f;
    for (int i = 0; i < d; i++) max_abs = fabsf(x[i]) > max_abs ? fabsf(x[i]) : max_abs;
    *s = max_abs / 127.0f;
    quantize_int8(q, x, (size_t)d, *s);
    double qq = 0, rr = 0, xx = 0;
    int32_t sum = 0;
    for (int i = 0; i < d; i++) {
        double r = (double)x[i] - (double)*s * q[i];
        qq += (double)q[i] * q[i];
        rr += r * r;
        xx += (double)x[i] * x[i];
        sum += q[i];
    }
    *q_norm = (double)*s * sqrt(qq);
    *r_norm = sqrt(rr);
    *norm = sqrt(xx);
    if (q_sum) *q_sum = sum;
}

ScoreScreen *score_screen_build(const float *E, int V, int d, BpError *err) {
    ScoreScreen *g = calloc(1, sizeof *g);
    if (!g) {
        bp_fail(err, "out of memory for the int8 copy of E");
        return NULL;
    }
    g->E = E;
    g->V = V;
    g->d = d;
    g->d4 = (d + 3) & ~3;
    g->panels = (V + PANEL - 1) / PANEL;
    size_t words = (size_t)g->panels * PANEL;
    g->packed = aligned_alloc(64, words * g->d4);
    g->offset = malloc(words * sizeof(int32_t));
    g->scale = malloc(words * sizeof(float));
    g->resid = malloc(words * sizeof(float));
    g->norm = malloc(words * sizeof(float));
    g->exact_rows = malloc((size_t)V * sizeof(int));
    int8_t *q = malloc((size_t)d);
    if (!g->packed || !g->offset || !g->scale || !g->resid || !g->norm || !g->exact_rows || !q) {
        free(q);
        score_screen_free(g);
        bp_fail(err, "out of memory for the int8 copy of E (%zu MB)", words * g->d4 >> 20);
        return NULL;
    }
    memset(g->packed, 0, words * g->d4);
    const int groups = g->d4 / 4;
    for (size_t y = 0; y < words; y++) {
        g->offset[y] = 0;
        g->scale[y] = NAN;  /* never a candidate: U and L are NaN */
        g->resid[y] = g->norm[y] = 0.0f;
        if (y >= (size_t)V) continue;
        const float *e = E + y * d;
        if (!finite_row(e, d)) {
            g->exact_rows[g->n_exact_rows++] = (int)y;
            continue;
        }
        float s;
        double q_norm, r_norm, norm;
        int32_t sum;
        quantize_row(e, d, q, &s, &q_norm, &r_norm, &norm, &sum);
        int8_t *panel = g->packed + (y / PANEL) * (size_t)groups * PANEL * 4;
        for (int i = 0; i < d; i++) panel[PACKED_AT(i, y % PANEL)] = q[i];
        g->offset[y] = 128 * sum;
        g->scale[y] = s;
        g->resid[y] = up(r_norm);
        g->norm[y] = up(norm);
        if (norm > g->max_norm) g->max_norm = norm;
    }
    g->max_norm *= 1.0 + 1e-6;
    free(q);
    return g;
}

/* The constants of one vector (a tile row) and of one panel's words. */
typedef struct {
    float s, c_n, d_c, slack;     /* s_c, |s_c q_c|_2, |r_c|_2 (rounded up), the margin */
    float top_floor, bottom_ceil; /* keep a word when U >= top_floor or L <= bottom_ceil */
} RowBound;

typedef struct {
    const int32_t *offset;
    const float *scale, *resid, *norm;
} PanelWords;

/* For 4 vectors (cq offset by 128) and the 64 words of a panel: U and L of every word,
 * and hits[r] bit j set when word j may enter vector r's top or bottom list. */
static void tile_screen(const uint8_t *const cq[TILE_ROWS], const float *const products[TILE_ROWS],
                        const int8_t *panel, int groups, const RowBound rb[TILE_ROWS], const PanelWords *w,
                        float upper[TILE_ROWS][PANEL], float lower[TILE_ROWS][PANEL], uint64_t hits[TILE_ROWS]) {
#if defined(__AVX512VNNI__)
    (void)products;
    __m512i acc00 = _mm512_setzero_si512(), acc01 = acc00, acc02 = acc00, acc03 = acc00;
    __m512i acc10 = acc00, acc11 = acc00, acc12 = acc00, acc13 = acc00;
    __m512i acc20 = acc00, acc21 = acc00, acc22 = acc00, acc23 = acc00;
    __m512i acc30 = acc00, acc31 = acc00, acc32 = acc00, acc33 = acc00;
    for (int k = 0; k < groups; k++) {
        const int8_t *b = panel + (size_t)k * PANEL * 4;
        __m512i b0 = _mm512_load_si512((const void *)b), b1 = _mm512_load_si512((const void *)(b + 64));
        __m512i b2 = _mm512_load_si512((const void *)(b + 128)), b3 = _mm512_load_si512((const void *)(b + 192));
        /* in registers, loaded once for the four vectors (not folded into each vpdpbusd) */
        __asm__("" : "+v"(b0), "+v"(b1), "+v"(b2), "+v"(b3));
        int32_t f0, f1, f2, f3;
        memcpy(&f0, cq[0] + 4 * k, 4);
        memcpy(&f1, cq[1] + 4 * k, 4);
        memcpy(&f2, cq[2] + 4 * k, 4);
        memcpy(&f3, cq[3] + 4 * k, 4);
        const __m512i a0 = _mm512_set1_epi32(f0), a1 = _mm512_set1_epi32(f1);
        const __m512i a2 = _mm512_set1_epi32(f2), a3 = _mm512_set1_epi32(f3);
#define DP(r, j) acc##r##j = _mm512_dpbusd_epi32(acc##r##j, a##r, b##j)
        DP(0, 0); DP(0, 1); DP(0, 2); DP(0, 3);
        DP(1, 0); DP(1, 1); DP(1, 2); DP(1, 3);
        DP(2, 0); DP(2, 1); DP(2, 2); DP(2, 3);
        DP(3, 0); DP(3, 1); DP(3, 2); DP(3, 3);
#undef DP
    }
    const __m512i acc[TILE_ROWS][4] = {{acc00, acc01, acc02, acc03}, {acc10, acc11, acc12, acc13},
                                       {acc20, acc21, acc22, acc23}, {acc30, acc31, acc32, acc33}};
    for (int r = 0; r < TILE_ROWS; r++) {
        const __m512 s = _mm512_set1_ps(rb[r].s), c_n = _mm512_set1_ps(rb[r].c_n), d_c = _mm512_set1_ps(rb[r].d_c);
        const __m512 slack = _mm512_set1_ps(rb[r].slack), top = _mm512_set1_ps(rb[r].top_floor);
        const __m512 bottom = _mm512_set1_ps(rb[r].bottom_ceil);
        uint64_t h = 0;
        for (int j = 0; j < 4; j++) {
            const __m512i i = _mm512_sub_epi32(acc[r][j], _mm512_loadu_si512((const void *)(w->offset + 16 * j)));
            const __m512 a = _mm512_mul_ps(_mm512_cvtepi32_ps(i), _mm512_mul_ps(s, _mm512_loadu_ps(w->scale + 16 * j)));
            const __m512 b = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(c_n, _mm512_loadu_ps(w->resid + 16 * j)),
                                                         _mm512_mul_ps(d_c, _mm512_loadu_ps(w->norm + 16 * j))),
                                           slack);
            const __m512 u = _mm512_add_ps(a, b), l = _mm512_sub_ps(a, b);
            const __mmask16 m = _mm512_cmp_ps_mask(u, top, _CMP_GE_OQ) | _mm512_cmp_ps_mask(l, bottom, _CMP_LE_OQ);
            if (m) {
                _mm512_storeu_ps(upper[r] + 16 * j, u);
                _mm512_storeu_ps(lower[r] + 16 * j, l);
                h |= (uint64_t)m << (16 * j);
            }
        }
        hits[r] = h;
    }
#else
    /* the float products of this panel's words (the group's sgemm, screen_group) */
    (void)cq, (void)panel, (void)groups;
    for (int r = 0; r < TILE_ROWS; r++) {
        uint64_t h = 0;
        for (int j = 0; j < PANEL; j++) {
            const float a = products[r][j];
            const float b = rb[r].c_n * w->resid[j] + rb[r].d_c * w->norm[j] + rb[r].slack;
            upper[r][j] = a + b;
            lower[r][j] = a - b;
            if (isnan(w->scale[j])) continue;  /* padding, or a row left to the exact scan */
            if (upper[r][j] >= rb[r].top_floor || lower[r][j] <= rb[r].bottom_ceil) h |= 1ULL << j;
        }
        hits[r] = h;
    }
#endif
}

/* ---- one vector's scan state ---------------------------------------------------------- */

typedef struct {
    int id;
    float bound;  /* U for a top candidate, L for a bottom one */
} Candidate;

typedef struct {
    Candidate *items;
    int count, cap;
} CandidateList;

typedef struct {
    float *heap;  /* the n largest L (top) / n largest -U (bottom) so far: a min-heap */
    int size;
    CandidateList cand;
} Side;

static void heap_push(Side *s, int n, float x) { float_heap_push(s->heap, &s->size, n, x); }

/* The threshold: the n-th largest so far, -inf until there are n. */
static float heap_floor(const Side *s, int n) { return s->size == n ? s->heap[0] : -INFINITY; }

/* Appends a candidate with key `bound` (compared as "keep while bound >= floor");
 * drops the ones below the floor when full. -1 when out of memory. */
static int candidate_push(CandidateList *l, int id, float bound, float floor) {
    if (l->count == l->cap) {
        int kept = 0;
        for (int i = 0; i < l->count; i++)
            if (l->items[i].bound >= floor) l->items[kept++] = l->items[i];
        l->count = kept;
        if (kept > l->cap / 2) {
            int cap = l->cap * 2;
            Candidate *p = realloc(l->items, (size_t)cap * sizeof *p);
            if (!p) return -1;
            l->items = p;
            l->cap = cap;
        }
    }
    l->items[l->count++] = (Candidate){id, bound};
    return 0;
}

static int cmp_desc(const void *a, const void *b) {
    const WordScore *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

static int cmp_asc(const void *a, const void *b) {
    const WordScore *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Screens vectors [begin, end) of C against every panel: on return sides[2 i] and
 * sides[2 i + 1] (i from begin) hold the top and bottom candidates of vector i with
 * their heaps; exact[i] marks vectors left to the exact scan. -1 when out of memory. */
static int screen_group(const ScoreScreen *g, const float *C, int begin, int end, int n, Side *sides, int *exact) {
    const int d = g->d, d4 = g->d4, groups = d4 / 4, rows = end - begin;
    const size_t words = (size_t)g->panels * PANEL;
    float *products = NULL;  /* (rows, words): the portable screen's float products */
#if !defined(__AVX512VNNI__)
    products = malloc((size_t)rows * words * sizeof(float));
    if (!products) return -1;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, g->V, d, 1.0f, C + (size_t)begin * d, d, g->E, d, 0.0f,
                products, (int)words);
#endif
    uint8_t *cq = malloc((size_t)rows * d4);
    int8_t *q = malloc((size_t)d);
    RowBound *bounds = calloc(rows, sizeof *bounds);
    int r = !cq || !q || !bounds ? -1 : 0;
    sides += 2 * (size_t)begin;
    exact += begin;
    for (int i = 0; i < rows && !r; i++) {
        const float *c = C + (size_t)(begin + i) * d;
        uint8_t *row = cq + (size_t)i * d4;
        memset(row, 128, d4);  /* 128 + 0: meets E's zero padding */
        if (!finite_row(c, d)) {
            exact[i] = 1;
            continue;
        }
        float s;
        double q_norm, r_norm, norm;
        quantize_row(c, d, q, &s, &q_norm, &r_norm, &norm, NULL);
        for (int j = 0; j < d; j++) row[j] = (uint8_t)(q[j] + 128);
        bounds[i] = (RowBound){s, up(q_norm), up(r_norm), up(0x1p-19 * (norm + r_norm) * g->max_norm + 1e-30), 0, 0};
#if !defined(__AVX512VNNI__)
        /* a float product in any order is within gamma_d |c|_2 |e|_2 of the exact one */
        bounds[i].c_n = 0.0f;
        bounds[i].d_c = up(d * 0x1p-24 / (1.0 - d * 0x1p-24) * norm);
#endif
    }
    float upper[TILE_ROWS][PANEL], lower[TILE_ROWS][PANEL];
    RowBound rb[TILE_ROWS];
    for (int p = 0; p < g->panels && !r; p++) {
        const int8_t *panel = g->packed + (size_t)p * groups * PANEL * 4;
        const int base = p * PANEL;
        const PanelWords w = {g->offset + base, g->scale + base, g->resid + base, g->norm + base};
        for (int r0 = 0; r0 < rows && !r; r0 += TILE_ROWS) {
            const uint8_t *tile[TILE_ROWS];
            const float *prods[TILE_ROWS];
            for (int t = 0; t < TILE_ROWS; t++) {
                const int i = r0 + t < rows ? r0 + t : r0;
                tile[t] = cq + (size_t)i * d4;
                prods[t] = products ? products + (size_t)i * words + base : NULL;
                rb[t] = bounds[i];
                rb[t].top_floor = heap_floor(&sides[2 * i], n);
                rb[t].bottom_ceil = -heap_floor(&sides[2 * i + 1], n);
                if (exact[i] || r0 + t >= rows) rb[t].top_floor = rb[t].bottom_ceil = NAN;  /* no hits */
            }
            uint64_t hits[TILE_ROWS];
            tile_screen(tile, prods, panel, groups, rb, &w, upper, lower, hits);
            for (int t = 0; t < TILE_ROWS && r0 + t < rows && !r; t++) {
                Side *hi = &sides[2 * (r0 + t)], *lo = &sides[2 * (r0 + t) + 1];
                for (uint64_t h = hits[t]; h && !r; h &= h - 1) {
                    const int j = __builtin_ctzll(h);
                    if (upper[t][j] >= heap_floor(hi, n)) {
                        heap_push(hi, n, lower[t][j]);
                        r = candidate_push(&hi->cand, base + j, upper[t][j], heap_floor(hi, n));
                    }
                    if (!r && lower[t][j] <= -heap_floor(lo, n)) {
                        heap_push(lo, n, -upper[t][j]);
                        r = candidate_push(&lo->cand, base + j, -lower[t][j], heap_floor(lo, n));
                    }
                }
            }
        }
    }
    free(products);
    free(cq);
    free(q);
    free(bounds);
    return r;
}

/* A side's survivors of the final floor, with E's rows left to the exact scan; their
 * bound fields are then overwritten by float dots. -1 when out of memory. */
static int cut_side(const ScoreScreen *g, Side *s, int n) {
    const float floor = heap_floor(s, n);
    int kept = 0;
    for (int i = 0; i < s->cand.count; i++)
        if (s->cand.items[i].bound >= floor) s->cand.items[kept++] = s->cand.items[i];
    s->cand.count = kept;
    for (int i = 0; i < g->n_exact_rows; i++)
        if (candidate_push(&s->cand, g->exact_rows[i], INFINITY, -INFINITY)) return -1;
    return 0;
}

/* A float dot product in any order: within gamma_d sum_i |e_i c_i| <= gamma_d |e|_2 |c|_2
 * of the exact one, gamma_d = d 2^-24 / (1 - d 2^-24). */
static float float_dot(const float *e, const float *c, int d) {
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int i = 0; i < d; i++) acc += e[i] * c[i];
    return acc;
}

/* A side's first n words, from its candidates' float dots (in the bound fields): the
 * float dot's error bound (plus a float ulp of the scores, as in the screen) leaves the
 * words that may still be among the first n, typically n and a few near ties; those
 * get exact scores and are sorted. */
static int finish_side(const ScoreScreen *g, const float *E, const float *c, const Side *s, int n, int descending,
                       WordScore *out) {
    const int d = g->d, count = s->cand.count;
    double cc = 0;
    for (int i = 0; i < d; i++) cc += (double)c[i] * c[i];
    const double gamma = d * 0x1p-24 / (1.0 - d * 0x1p-24);
    const double c_norm = sqrt(cc) * (1.0 + 1e-6), margin = 0x1p-21 * c_norm * g->max_norm + 1e-30;
    WordScore *all = malloc(((size_t)count + 1) * sizeof *all);
    float *key = malloc(((size_t)count + 1) * sizeof *key), *heap = malloc((size_t)n * sizeof *heap);
    if (!all || !key || !heap) {
        free(all);
        free(key);
        free(heap);
        return -1;
    }
    /* key: the far end of each word's interval, signed so that larger is better */
    Side h = {heap, 0, {NULL, 0, 0}};
    const float sign = descending ? 1.0f : -1.0f;
    for (int i = 0; i < count; i++) {
        const int y = s->cand.items[i].id;
        const float f = sign * s->cand.items[i].bound;
        const float b = (float)((gamma * c_norm * g->norm[y]) * (1.0 + 1e-6) + margin);
        key[i] = f + b;
        if (isfinite(f) && !isnan(g->scale[y])) heap_push(&h, n, f - b);
        else key[i] = INFINITY;  /* a row left to the exact scan: always scored exactly */
    }
    const float floor = heap_floor(&h, n);
    int m = 0;
    for (int i = 0; i < count; i++)
        if (key[i] >= floor) {
            const int y = s->cand.items[i].id;
            all[m++] = (WordScore){y, store_exact_score(E + (size_t)y * d, c, d)};
        }
    qsort(all, m, sizeof *all, descending ? cmp_desc : cmp_asc);
    memcpy(out, all, (size_t)(m < n ? m : n) * sizeof *out);
    free(all);
    free(key);
    free(heap);
    return 0;
}

/* Float dots of every (vector, candidate) pair of the chunk, word by word, so that each
 * row of E is read once per chunk rather than once per vector that needs it. */
static int score_candidates(const ScoreScreen *g, const float *E, const float *C, Side *sides, int n_sides) {
    const int V = g->V, d = g->d;
    size_t total = 0;
    int *start = calloc((size_t)V + 1, sizeof(int));
    if (!start) return -1;
    for (int s = 0; s < n_sides; s++)
        for (int i = 0; i < sides[s].cand.count; i++) start[sides[s].cand.items[i].id + 1]++;
    for (int y = 0; y < V; y++) start[y + 1] += start[y];
    total = (size_t)start[V];
    int *pair_side = malloc((total + 1) * sizeof(int)), *pair_slot = malloc((total + 1) * sizeof(int));
    int *fill = malloc((size_t)V * sizeof(int));
    if (!pair_side || !pair_slot || !fill) {
        free(start);
        free(pair_side);
        free(pair_slot);
        free(fill);
        return -1;
    }
    memcpy(fill, start, (size_t)V * sizeof(int));
    for (int s = 0; s < n_sides; s++)
        for (int i = 0; i < sides[s].cand.count; i++) {
            int at = fill[sides[s].cand.items[i].id]++;
            pair_side[at] = s;
            pair_slot[at] = i;
        }
#pragma omp parallel for schedule(dynamic, 256)
    for (int y = 0; y < V; y++)
        for (int p = start[y]; p < start[y + 1]; p++) {
            Candidate *c = &sides[pair_side[p]].cand.items[pair_slot[p]];
            c->bound = float_dot(E + (size_t)y * d, C + (size_t)(pair_side[p] / 2) * d, d);
        }
    free(start);
    free(pair_side);
    free(pair_slot);
    free(fill);
    return 0;
}

int score_screen_extremes(const ScoreScreen *g, const float *E, const float *C, int rows, int n, WordScore *top,
                          WordScore *bottom, BpError *err) {
    if (n > g->V) n = g->V;
    if (n <= 0 || rows <= 0) return 0;
    const int n_sides = 2 * rows, cap = 4 * n > 256 ? 4 * n : 256;
    Side *sides = calloc((size_t)n_sides, sizeof *sides);
    float *heaps = malloc((size_t)n_sides * n * sizeof(float));
    int *exact = calloc(rows, sizeof(int));
    int failed = !sides || !heaps || !exact;
    for (int i = 0; i < n_sides && !failed; i++) {
        sides[i].heap = heaps + (size_t)i * n;
        sides[i].cand.cap = cap;
        if (!(sides[i].cand.items = malloc((size_t)cap * sizeof(Candidate)))) failed = 1;
    }
    const int n_groups = (rows + GROUP_ROWS - 1) / GROUP_ROWS;
#pragma omp parallel for schedule(dynamic, 1)
    for (int grp = 0; grp < n_groups; grp++) {
        int stop;
#pragma omp atomic read
        stop = failed;
        if (stop) continue;
        int begin = grp * GROUP_ROWS, end = begin + GROUP_ROWS < rows ? begin + GROUP_ROWS : rows;
        if (screen_group(g, C, begin, end, n, sides, exact)) {
#pragma omp atomic write
            failed = 1;
        }
    }
    for (int i = 0; i < n_sides && !failed; i++)
        if (!exact[i / 2] && cut_side(g, &sides[i], n)) failed = 1;
    if (!failed && score_candidates(g, E, C, sides, n_sides)) failed = 1;
#pragma omp parallel
    {
        float *scratch = NULL;
#pragma omp for schedule(dynamic, 16)
        for (int i = 0; i < rows; i++) {
            int stop;
#pragma omp atomic read
            stop = failed;
            if (stop) continue;
            WordScore *t = top ? top + (size_t)i * n : NULL, *b = bottom ? bottom + (size_t)i * n : NULL;
            int bad = 0;
            if (exact[i]) {
                if (!scratch) scratch = malloc((size_t)g->V * sizeof(float));
                if (scratch) score_extremes_exact(E, g->V, g->d, C + (size_t)i * g->d, n, t, b, scratch);
                bad = !scratch;
            } else {
                const float *c = C + (size_t)i * g->d;
                bad = (t && finish_side(g, E, c, &sides[2 * i], n, 1, t)) ||
                      (b && finish_side(g, E, c, &sides[2 * i + 1], n, 0, b));
            }
            if (bad) {
#pragma omp atomic write
                failed = 1;
            }
        }
        free(scratch);
    }
    for (int i = 0; sides && i < n_sides; i++) free(sides[i].cand.items);
    free(sides);
    free(heaps);
    free(exact);
    if (failed) return bp_fail(err, "out of memory while screening the top words");
    return 0;
}

void score_extremes_exact(const float *E, int V, int d, const float *c, int n, WordScore *top, WordScore *bottom,
                          float *scores) {
    for (int y = 0; y < V; y++) scores[y] = store_exact_score(E + (size_t)y * d, c, d);
    select_extremes(scores, V, n, top, bottom);
}
