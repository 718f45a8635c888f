/* store_nearest.c - nearest neighbours of a sense by cosine over every word's senses,
 * screened with the int8 index (store_index.c) and re-scored exactly.
 *
 * The cosine of a word's vector x with the query q is store_exact_score(x^, q^) of the
 * normalized vectors (store_normalize), a value that is not a number counting as -inf:
 * the brute-force definition, which the screen must reproduce exactly.
 *
 * Screen: q^ is rounded to int8 (q^ = s_q q_q + r_q) and each index row holds
 * x^ = s_x q_x + r_x, so as in export_screen.c
 *     |q^ . x^ - s_q s_x (q_q . q_x)| <= |s_q q_q|_2 |r_x|_2 + |r_q|_2 |x^|_2,
 * plus a margin 2^-19 (|q^|_2 + |r_q|_2) max |x^|_2 for float rounding and one ulp of
 * the cosines: every word gets an interval [L, U] that holds its exact cosine with a
 * float ulp to spare. Vectors in force that differ from the export (edits) are scored
 * exactly (L = U); rows that are not finite get [-inf, inf].
 *   One sense: T = the n-th largest L; the words with U >= T, by U descending, are
 * scored exactly until U falls below the n-th best exact cosine.
 *   Sim_min (the minimum over senses): the minimum of the intervals bounds it; the
 * same selection, and a candidate's senses are scored exactly in increasing order of U
 * until its running minimum falls below the n-th best (it cannot enter).
 * Exact scores read the vector in force from the database (store_state). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../model/infer.h"
#include "store_private.h"

/* The edited vectors in force, normalized, sorted by key = token * k + sense. */
typedef struct {
    int64_t *keys;
    float *vectors;  /* (count, d) normalized */
    int count;
} EditedSet;

static int load_edited_set(SenseStore *s, EditedSet *e, BpError *err) {
    memset(e, 0, sizeof *e);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT token, sense, vector FROM edited_senses WHERE vector IS NOT NULL "
                           "ORDER BY token, sense",
                           -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, err, "reading the edits in force");
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (e->count == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *nk = realloc(e->keys, cap * sizeof(int64_t));
            if (nk) e->keys = nk;
            float *nv = realloc(e->vectors, (size_t)cap * s->d * sizeof(float));
            if (nv) e->vectors = nv;
            if (!nk || !nv) {
                sqlite3_finalize(st);
                return bp_fail(err, "out of memory");
            }
        }
        int token = sqlite3_column_int(st, 0), sense = sqlite3_column_int(st, 1);
        float *v = e->vectors + (size_t)e->count * s->d;
        if (token < 0 || token >= s->V || sense < 0 || sense >= s->k ||
            blob_to_floats(sqlite3_column_blob(st, 2), sqlite3_column_bytes(st, 2), v, s->d))
            continue;
        store_normalize(v, s->d, v);
        e->keys[e->count++] = (int64_t)token * s->k + sense;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return store_sql_fail(s, err, "reading the edits in force");
    return 0;
}

static void free_edited_set(EditedSet *e) {
    free(e->keys);
    free(e->vectors);
}

static float exact_cosine(const float *x, const float *q, int d) {
    float c = store_exact_score(x, q, d);
    return isnan(c) ? -INFINITY : c;
}

/* The query rounded to int8 for the screen. */
typedef struct {
    const float *q;    /* q^ (d) */
    uint8_t *u;        /* (d_pad) q_q + 128, 128 past d; 64-byte aligned */
    float s, q_norm, r_norm, slack;
    int usable;        /* 0: q^ is not finite; every interval is [-inf, inf] */
} Query;

static int query_build(Query *qq, const float *qn, int d, int d_pad) {
    memset(qq, 0, sizeof *qq);
    qq->q = qn;
    qq->u = aligned_alloc(64, (size_t)d_pad);
    int8_t *q = malloc((size_t)d);
    if (!qq->u || !q) {
        free(q);
        return -1;
    }
    float max_abs = 0.0f;
    qq->usable = 1;
    for (int i = 0; i < d; i++) {
        if (!isfinite(qn[i])) qq->usable = 0;
        if (fabsf(qn[i]) > max_abs) max_abs = fabsf(qn[i]);
    }
    qq->s = max_abs / 127.0f;
    quantize_int8(q, qn, (size_t)d, qq->s);
    double qq2 = 0, rr = 0, nn = 0;
    for (int i = 0; i < d; i++) {
        double r = (double)qn[i] - (double)qq->s * q[i];
        qq2 += (double)q[i] * q[i];
        rr += r * r;
        nn += (double)qn[i] * qn[i];
        qq->u[i] = (uint8_t)(q[i] + 128);
    }
    memset(qq->u + d, 128, (size_t)(d_pad - d));
    qq->q_norm = (float)(qq->s * sqrt(qq2) * (1.0 + 1e-6));
    qq->r_norm = (float)(sqrt(rr) * (1.0 + 1e-6));
    /* the index's rows have |x^|_2 <= 1 + 1e-6 (normalized, rounded up) */
    qq->slack = (float)(0x1p-19 * (sqrt(nn) + sqrt(rr)) * 1.01 + 1e-30);
    free(q);
    return 0;
}

/* [lower, upper] of every word's cosine for one sense. */
static void sense_intervals(const NearIndex *x, int sense, const Query *qq, int V, float *upper, float *lower) {
    NearRows rows;
    near_index_rows(x, sense, &rows);
    if (!qq->usable) {
        for (int y = 0; y < V; y++) {
            upper[y] = INFINITY;
            lower[y] = -INFINITY;
        }
        return;
    }
#pragma omp parallel for schedule(static)
    for (int y0 = 0; y0 < V; y0 += 4) {
        const int8_t *row[4];
        int32_t dots[4];
        for (int r = 0; r < 4; r++) row[r] = rows.q + (size_t)(y0 + r < V ? y0 + r : y0) * rows.d_pad;
        dot_rows4_int8(dots, row, qq->u, rows.d_pad);
        for (int r = 0; r < 4 && y0 + r < V; r++) {
            const int y = y0 + r;
            if (isnan(rows.scale[y])) {
                upper[y] = INFINITY;
                lower[y] = -INFINITY;
                continue;
            }
            const double a = (double)qq->s * rows.scale[y] * (double)(dots[r] - 128 * rows.q_sum[y]);
            const double b = (double)qq->q_norm * rows.resid[y] + (double)qq->r_norm * rows.norm[y] + qq->slack;
            upper[y] = (float)(a + b);
            lower[y] = (float)(a - b);
        }
    }
}

/* The exact cosine of word y's sense vector in force with q^. */
static int exact_word_cosine(SenseStore *s, const EditedSet *e, int y, int sense, const float *qn, float *v,
                             float *out, BpError *err) {
    const int64_t key = (int64_t)y * s->k + sense;
    int lo = 0, hi = e->count;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (e->keys[mid] < key) lo = mid + 1;
        else hi = mid;
    }
    if (lo < e->count && e->keys[lo] == key) {
        *out = exact_cosine(e->vectors + (size_t)lo * s->d, qn, s->d);
        return 0;
    }
    float w;
    if (store_state(s, y, sense, v, &w, err)) return -1;
    store_normalize(v, s->d, v);
    *out = exact_cosine(v, qn, s->d);
    return 0;
}

typedef struct {
    float bound;
    int id;
} Candidate;

static int cmp_candidate(const void *a, const void *b) {
    const Candidate *x = a, *y = b;
    if (x->bound != y->bound) return x->bound < y->bound ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Inserts (y, score) into the best-first list out[0..*got) of at most n. */
static void insert_best(WordScore *out, int *got, int n, int y, float score) {
    if (*got == n && (score < out[n - 1].score || (score == out[n - 1].score && y > out[n - 1].id))) return;
    int j = *got < n ? (*got)++ : n - 1;
    while (j > 0 && (out[j - 1].score < score || (out[j - 1].score == score && out[j - 1].id > y))) {
        out[j] = out[j - 1];
        j--;
    }
    out[j] = (WordScore){y, score};
}

/* The n-th largest of x over the words other than exclude (-inf when fewer). */
static float nth_largest(const float *x, int V, int exclude, int n) {
    float *heap = malloc((size_t)n * sizeof *heap);
    if (!heap) return -INFINITY;
    int size = 0;
    for (int y = 0; y < V; y++)
        if (y != exclude) float_heap_push(heap, &size, n, x[y]);
    float t = size == n ? heap[0] : -INFINITY;
    free(heap);
    return t;
}

int store_nearest(SenseStore *s, const float *query, int sense, int exclude, int n, WordScore *out,
                  BpError *err) {
    const int V = s->V, k = s->k, d = s->d;
    if (sense < -1 || sense >= k)
        return bp_fail(err, "sense %d out of range (this model has senses 0..%d)", sense, k - 1);
    if (n <= 0) return 0;
    if (exclude >= 0 && exclude < V && V == 1) return 0;
    if (n > V - (exclude >= 0 && exclude < V)) n = V - (exclude >= 0 && exclude < V);
    if (store_load_index(s, NULL, NULL, err)) return -1;
    const NearIndex *x = s->near;
    const int d_pad = (d + 63) / 64 * 64;
    const int first = sense >= 0 ? sense : 0, last = sense >= 0 ? sense : k - 1;
    const int n_senses = last - first + 1;
    EditedSet edited;
    float *qn = malloc((size_t)k * d * sizeof(float)), *v = malloc(d * sizeof(float));
    float *upper = malloc((size_t)n_senses * V * sizeof(float)), *lower = malloc((size_t)n_senses * V * sizeof(float));
    float *top_u = malloc(V * sizeof(float)), *top_l = malloc(V * sizeof(float));
    Candidate *cand = malloc(V * sizeof(Candidate));
    Query *qq = calloc(n_senses, sizeof(Query));
    int r = load_edited_set(s, &edited, err), got = 0;
    if (!r && (!qn || !v || !upper || !lower || !top_u || !top_l || !cand || !qq)) r = bp_fail(err, "out of memory");
    /* intervals per sense, then of the quantity ranked: the cosine, or the minimum */
    for (int l = first; l <= last && !r; l++) {
        const int li = l - first;
        float *qnl = qn + (size_t)l * d, *up = upper + (size_t)li * V, *lo = lower + (size_t)li * V;
        store_normalize(query + (size_t)l * d, d, qnl);
        if (query_build(&qq[li], qnl, d, d_pad)) {
            r = bp_fail(err, "out of memory");
            break;
        }
        sense_intervals(x, l, &qq[li], V, up, lo);
        for (int i = 0; i < edited.count; i++) {
            if (edited.keys[i] % k != l) continue;
            const int y = (int)(edited.keys[i] / k);
            up[y] = lo[y] = exact_cosine(edited.vectors + (size_t)i * d, qnl, d);
        }
        for (int y = 0; y < V; y++) {
            top_u[y] = li == 0 || up[y] < top_u[y] ? up[y] : top_u[y];
            top_l[y] = li == 0 || lo[y] < top_l[y] ? lo[y] : top_l[y];
        }
    }
    if (!r) {
        const float floor = nth_largest(top_l, V, exclude, n);
        int nc = 0;
        for (int y = 0; y < V; y++)
            if (y != exclude && !(top_u[y] < floor)) cand[nc++] = (Candidate){top_u[y], y};
        qsort(cand, nc, sizeof *cand, cmp_candidate);
        int order[1024];
        for (int c = 0; c < nc && !r; c++) {
            const int y = cand[c].id;
            if (got == n && cand[c].bound < out[n - 1].score) break;  /* nothing below can enter */
            float m = INFINITY;
            if (n_senses == 1) {
                r = exact_word_cosine(s, &edited, y, first, qn + (size_t)first * d, v, &m, err);
            } else {
                /* senses by increasing upper bound: the minimum drops fastest */
                int ns = n_senses < 1024 ? n_senses : 1024;
                for (int i = 0; i < ns; i++) order[i] = i;
                for (int i = 1; i < ns; i++)
                    for (int j = i; j > 0 && upper[(size_t)order[j] * V + y] < upper[(size_t)order[j - 1] * V + y]; j--) {
                        int t = order[j];
                        order[j] = order[j - 1];
                        order[j - 1] = t;
                    }
                for (int i = 0; i < n_senses && !r; i++) {
                    const int l = first + (i < ns ? order[i] : i);
                    float c_l;
                    r = exact_word_cosine(s, &edited, y, l, qn + (size_t)l * d, v, &c_l, err);
                    if (c_l < m) m = c_l;
                    if (got == n && m < out[n - 1].score) break;  /* cannot enter */
                }
            }
            if (!r) insert_best(out, &got, n, y, m);
        }
    }
    for (int i = 0; qq && i < n_senses; i++) free(qq[i].u);
    free(qq);
    free(qn);
    free(v);
    free(upper);
    free(lower);
    free(top_u);
    free(top_l);
    free(cand);
    free_edited_set(&edited);
    return r ? -1 : got;
}
