/* store_nearest.c - nearest neighbours of a sense by cosine over every word's senses. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>

#include "store_private.h"

/* ---- nearest neighbours ------------------------------------------------------------ */

void store_free_index(SenseStore *s) {
    free(s->index);
    s->index = NULL;
}

int store_load_index(SenseStore *s, StoreProgress progress, void *ctx, BpError *err) {
    if (s->index) return 0;
    size_t rows = (size_t)s->V * s->k;
    float *index = malloc(rows * s->d * sizeof(float));
    if (!index) return bp_fail(err, "out of memory for the nearest-neighbour index (%zu MB)", rows * s->d * 4 >> 20);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT id, vector FROM senses ORDER BY id", -1, &st, NULL) != SQLITE_OK) {
        free(index);
        return store_sql_fail(s, err, "reading the sense vectors");
    }
    int rc, bad = 0;
    size_t expect = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        float *row = index + expect * s->d;
        if ((size_t)sqlite3_column_int64(st, 0) != expect ||
            blob_to_floats(sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1), row, s->d)) {
            bad = 1;
            break;
        }
        double nn = 0;
        for (int i = 0; i < s->d; i++) nn += (double)row[i] * row[i];
        float inv = nn > 0 ? (float)(1.0 / sqrt(nn)) : 0.0f;
        for (int i = 0; i < s->d; i++) row[i] *= inv;
        expect++;
        if (progress && expect % 4096 == 0) progress((double)expect / rows, ctx);
        if (expect == rows) break;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        free(index);
        return store_sql_fail(s, err, "reading the sense vectors");
    }
    if (bad || expect != rows) {
        free(index);
        return bp_fail(err, "%s: the senses table is damaged", s->info.path);
    }
    if (progress) progress(1.0, ctx);
    s->index = index;
    return 0;
}

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
        double nn = 0;
        for (int i = 0; i < s->d; i++) nn += (double)v[i] * v[i];
        float inv = nn > 0 ? (float)(1.0 / sqrt(nn)) : 0.0f;
        for (int i = 0; i < s->d; i++) v[i] *= inv;
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

/* The normalized vector in force of row key. */
static const float *index_row(const SenseStore *s, const EditedSet *e, int64_t key) {
    int lo = 0, hi = e->count;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (e->keys[mid] < key) lo = mid + 1;
        else hi = mid;
    }
    if (lo < e->count && e->keys[lo] == key) return e->vectors + (size_t)lo * s->d;
    return s->index + (size_t)key * s->d;
}

static float dot(const float *a, const float *b, int d) {
    float acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int i = 0; i < d; i++) acc += a[i] * b[i];
    return acc;
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

int store_nearest(SenseStore *s, const float *query, int sense, int exclude, int n, WordScore *out,
                  BpError *err) {
    int V = s->V, k = s->k, d = s->d;
    if (sense < -1 || sense >= k)
        return bp_fail(err, "sense %d out of range (this model has senses 0..%d)", sense, k - 1);
    if (n <= 0) return 0;
    if (store_load_index(s, NULL, NULL, err)) return -1;
    EditedSet edited;
    if (load_edited_set(s, &edited, err)) {
        free_edited_set(&edited);
        return -1;
    }
    int first = sense >= 0 ? sense : 0;
    /* normalized query rows */
    float *q = malloc((size_t)k * d * sizeof(float));
    float *scores = malloc(V * sizeof(float));
    Candidate *cand = NULL;
    if (!q || !scores) {
        free(q);
        free(scores);
        free_edited_set(&edited);
        return bp_fail(err, "out of memory");
    }
    for (int l = 0; l < k; l++) {
        if (sense >= 0 && l != sense) continue;
        const float *src = query + (size_t)l * d;
        double nn = 0;
        for (int i = 0; i < d; i++) nn += (double)src[i] * src[i];
        float inv = nn > 0 ? (float)(1.0 / sqrt(nn)) : 0.0f;
        for (int i = 0; i < d; i++) q[(size_t)l * d + i] = src[i] * inv;
    }
    /* cos_first(y) for every y: one gemv over the rows of sense `first` (stride k*d) */
    cblas_sgemv(CblasRowMajor, CblasNoTrans, V, d, 1.0f, s->index + (size_t)first * d, k * d,
                q + (size_t)first * d, 1, 0.0f, scores, 1);  // (V)
    for (int i = 0; i < edited.count; i++)
        if (edited.keys[i] % k == first)
            scores[edited.keys[i] / k] = dot(edited.vectors + (size_t)i * d, q + (size_t)first * d, d);
    if (exclude >= 0 && exclude < V) scores[exclude] = -INFINITY;
    int want = n < V ? n : V;
    int got = 0;
    if (sense >= 0) {
        WordScore *top = malloc(want * sizeof(WordScore));
        if (!top) goto oom;
        select_extremes(scores, V, want, top, NULL);
        for (int i = 0; i < want; i++)
            if (top[i].score > -INFINITY) out[got++] = top[i];
        free(top);
    } else {
        /* Sim_min: min_l cos_l <= cos_first, so visit words by cos_first descending and
         * stop once the bound cannot beat the n-th best exact minimum. */
        cand = malloc(V * sizeof(Candidate));
        if (!cand) goto oom;
        int nc = 0;
        for (int y = 0; y < V; y++)
            if (scores[y] > -INFINITY) cand[nc++] = (Candidate){scores[y], y};
        qsort(cand, nc, sizeof(Candidate), cmp_candidate);
        const int batch = 512;
        float exact[512];
        for (int start = 0; start < nc; start += batch) {
            if (got == want && cand[start].bound < out[want - 1].score) break;
            int end = start + batch < nc ? start + batch : nc;
#pragma omp parallel for schedule(static)
            for (int c = start; c < end; c++) {
                int y = cand[c].id;
                float m = cand[c].bound;
                for (int l = 0; l < k; l++) {
                    if (l == first) continue;
                    float cl = dot(index_row(s, &edited, (int64_t)y * k + l), q + (size_t)l * d, d);
                    if (cl < m) m = cl;
                }
                exact[c - start] = m;
            }
            for (int c = start; c < end; c++) {
                float m = exact[c - start];
                int y = cand[c].id;
                if (got < want || m > out[want - 1].score ||
                    (m == out[want - 1].score && y < out[want - 1].id)) {
                    int j = got < want ? got++ : want - 1;
                    while (j > 0 && (out[j - 1].score < m || (out[j - 1].score == m && out[j - 1].id > y))) {
                        out[j] = out[j - 1];
                        j--;
                    }
                    out[j] = (WordScore){y, m};
                }
            }
        }
    }
    free(cand);
    free(q);
    free(scores);
    free_edited_set(&edited);
    return got;
oom:
    free(q);
    free(scores);
    free_edited_set(&edited);
    return bp_fail(err, "out of memory");
}
