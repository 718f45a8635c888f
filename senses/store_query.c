/* store_query.c - the senses of a database: vectors and weights in force, norms, top and
 * bottom words, E. */
#include <math.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_private.h"

float store_cosine(const float *a, const float *b, int d) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < d; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    if (aa == 0 || bb == 0) return 0.0f;
    return (float)(ab / sqrt(aa * bb));
}

/* Eight partial sums (lane j takes i = j mod 8), each product and sum rounded on its
 * own (no fused multiply-add), added pairwise: the AVX-512 path and the portable one
 * give the same bits. */
float store_exact_score(const float *e, const float *c, int d) {
    double acc[8] = {0}, tail = 0;
    int i = 0;
#if defined(__AVX512F__)
    __m512d v = _mm512_setzero_pd();
    for (; i + 8 <= d; i += 8) {
        const __m512d x = _mm512_cvtps_pd(_mm256_loadu_ps(e + i)), y = _mm512_cvtps_pd(_mm256_loadu_ps(c + i));
        v = _mm512_add_pd(v, _mm512_mul_pd(x, y));
    }
    _mm512_storeu_pd(acc, v);
#else
    for (; i + 8 <= d; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += (double)e[i + j] * c[i + j];
#endif
    for (; i < d; i++) tail += (double)e[i] * c[i];
    return (float)((((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))) + tail);
}

/* Ties go to the lower id: an element is better when its score is higher (top). */
static void insert_top(WordScore *list, int *count, int n, int id, float score) {
    int i = *count < n ? (*count)++ : n - 1;
    while (i > 0 && list[i - 1].score < score) {
        list[i] = list[i - 1];
        i--;
    }
    list[i].id = id;
    list[i].score = score;
}

static void insert_bottom(WordScore *list, int *count, int n, int id, float score) {
    int i = *count < n ? (*count)++ : n - 1;
    while (i > 0 && list[i - 1].score > score) {
        list[i] = list[i - 1];
        i--;
    }
    list[i].id = id;
    list[i].score = score;
}

void float_heap_push(float *heap, int *size, int n, float x) {
    if (*size < n) {
        int i = (*size)++;
        while (i > 0 && heap[(i - 1) / 2] > x) {
            heap[i] = heap[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        heap[i] = x;
        return;
    }
    if (!(x > heap[0])) return;
    int i = 0;
    for (;;) {  /* replace the root and sift down */
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap[c + 1] < heap[c]) c++;
        if (!(heap[c] < x)) break;
        heap[i] = heap[c];
        i = c;
    }
    heap[i] = x;
}

void select_extremes(const float *scores, int V, int n, WordScore *top, WordScore *bottom) {
    if (n > V) n = V;
    if (n <= 0) return;
    int n_top = 0, n_bottom = 0;
    float top_threshold = -INFINITY, bottom_threshold = INFINITY;
    const int block = 64;
    for (int start = 0; start < V; start += block) {
        int end = start + block < V ? start + block : V;
        /* Most blocks hold neither a top nor a bottom score: one SIMD max/min decides. */
        if ((!top || n_top == n) && (!bottom || n_bottom == n)) {
            float hi = -INFINITY, lo = INFINITY;
#pragma omp simd reduction(max : hi) reduction(min : lo)
            for (int i = start; i < end; i++) {
                hi = scores[i] > hi ? scores[i] : hi;
                lo = scores[i] < lo ? scores[i] : lo;
            }
            if ((!top || !(hi > top_threshold)) && (!bottom || !(lo < bottom_threshold))) continue;
        }
        for (int i = start; i < end; i++) {
            float x = scores[i];
            if (top && (n_top < n || x > top_threshold)) {
                insert_top(top, &n_top, n, i, x);
                if (n_top == n) top_threshold = top[n - 1].score;
            }
            if (bottom && (n_bottom < n || x < bottom_threshold)) {
                insert_bottom(bottom, &n_bottom, n, i, x);
                if (n_bottom == n) bottom_threshold = bottom[n - 1].score;
            }
        }
    }
}

/* ---- senses ----------------------------------------------------------------------- */

static int check_sense(const SenseStore *s, int token, int sense, BpError *err) {
    if (token < 0 || token >= s->V)
        return bp_fail(err, "token id %d out of range (vocabulary 0..%d)", token, s->V - 1);
    if (sense < 0 || sense >= s->k)
        return bp_fail(err, "sense %d out of range (this model has senses 0..%d)", sense, s->k - 1);
    return 0;
}

static int exported_vector(SenseStore *s, int token, int sense, float *out, BpError *err) {
    sqlite3_stmt *st = s->st_vector;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)token * s->k + sense);
    int rc = sqlite3_step(st);
    int bad = rc != SQLITE_ROW ||
              blob_to_floats(sqlite3_column_blob(st, 0), sqlite3_column_bytes(st, 0), out, s->d);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_sql_fail(s, err, "reading a sense vector");
    if (bad) return bp_fail(err, "%s: sense %d of token %d is missing or damaged", s->info.path, sense, token);
    return 0;
}

/* edited_senses row: *has_row, *weight, and the vector into out when it has one
 * (*has_vector). */
static int edited_row(SenseStore *s, int token, int sense, int *has_row, float *weight, int *has_vector,
                      float *out, BpError *err) {
    sqlite3_stmt *st = s->st_edited;
    sqlite3_bind_int(st, 1, token);
    sqlite3_bind_int(st, 2, sense);
    int rc = sqlite3_step(st);
    *has_row = rc == SQLITE_ROW;
    *has_vector = 0;
    *weight = 1.0f;
    int bad = 0;
    if (*has_row) {
        *weight = (float)sqlite3_column_double(st, 0);
        if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
            *has_vector = 1;
            bad = blob_to_floats(sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1), out, s->d);
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_sql_fail(s, err, "reading the edits in force");
    if (bad) return bp_fail(err, "%s: edited vector of token %d sense %d is damaged", s->info.path, token, sense);
    return 0;
}

int store_state(SenseStore *s, int token, int sense, float *vector, float *weight, BpError *err) {
    if (check_sense(s, token, sense, err)) return -1;
    int has_row, has_vector;
    if (edited_row(s, token, sense, &has_row, weight, &has_vector, vector, err)) return -1;
    if (!has_vector) return exported_vector(s, token, sense, vector, err);
    return 0;
}

int store_sense_vector(SenseStore *s, int token, int sense, StoreVersion which, float *out, BpError *err) {
    if (check_sense(s, token, sense, err)) return -1;
    if (which == STORE_EXPORTED) return exported_vector(s, token, sense, out, err);
    float w;
    return store_state(s, token, sense, out, &w, err);
}

int store_sense_info(SenseStore *s, int token, int sense, SenseInfo *out, BpError *err) {
    if (check_sense(s, token, sense, err)) return -1;
    memset(out, 0, sizeof *out);
    out->token = token;
    out->sense = sense;
    sqlite3_stmt *st = s->st_info;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)token * s->k + sense);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) out->exported_norm = (float)sqlite3_column_double(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) return store_sql_fail(s, err, "reading a sense norm");
    float *v = malloc(s->d * sizeof(float));
    if (!v) return bp_fail(err, "out of memory");
    int has_row, has_vector;
    int r = edited_row(s, token, sense, &has_row, &out->weight, &has_vector, v, err);
    if (!r) {
        out->vector_edited = has_vector;
        if (has_vector) {
            double nn = 0;
            for (int i = 0; i < s->d; i++) nn += (double)v[i] * v[i];
            out->norm = (float)sqrt(nn);
        } else {
            out->norm = out->exported_norm;
        }
    }
    free(v);
    return r;
}

int store_word_senses(SenseStore *s, const StoreWord *w, float *out, BpError *err) {
    int k = s->k, d = s->d;
    float weight;
    if (w->n_tokens < 1) return bp_fail(err, "empty word");
    if (w->n_tokens == 1) {  /* exactly the stored floats */
        for (int l = 0; l < k; l++)
            if (store_state(s, w->tokens[0], l, out + (size_t)l * d, &weight, err)) return -1;
        return 0;
    }
    float *v = malloc(d * sizeof(float));
    double *acc = calloc((size_t)k * d, sizeof(double));
    if (!v || !acc) {
        free(v);
        free(acc);
        return bp_fail(err, "out of memory");
    }
    int r = 0;
    for (int t = 0; t < w->n_tokens && !r; t++)
        for (int l = 0; l < k && !r; l++) {
            r = store_state(s, w->tokens[t], l, v, &weight, err);
            for (int i = 0; i < d && !r; i++) acc[(size_t)l * d + i] += v[i];
        }
    if (!r)
        for (size_t i = 0; i < (size_t)k * d; i++) out[i] = (float)(acc[i] / w->n_tokens);
    free(v);
    free(acc);
    return r;
}

static int read_list(const SenseStore *s, sqlite3_stmt *st, int col, int n, WordScore *out) {
    const int32_t *ids = sqlite3_column_blob(st, col);
    int nb = sqlite3_column_bytes(st, col);
    const float *scores = sqlite3_column_blob(st, col + 1);
    int ns = sqlite3_column_bytes(st, col + 1);
    if (!ids || !scores || nb != ns || nb < n * 4) return -1;
    for (int i = 0; i < n; i++) {
        int32_t id;
        float sc;
        memcpy(&id, ids + i, 4);
        memcpy(&sc, scores + i, 4);
        if (id < 0 || id >= s->V) return -1;
        out[i].id = id;
        out[i].score = sc;
    }
    return 0;
}

int store_sense_words(SenseStore *s, int token, int sense, int n, WordScore *top, WordScore *bottom,
                      BpError *err) {
    if (check_sense(s, token, sense, err)) return -1;
    if (n > s->V) n = s->V;
    if (n <= 0) return 0;
    float *v = malloc(s->d * sizeof(float));
    if (!v) return bp_fail(err, "out of memory");
    int has_row, has_vector;
    float weight;
    if (edited_row(s, token, sense, &has_row, &weight, &has_vector, v, err)) {
        free(v);
        return -1;
    }
    if (!has_vector && n <= s->info.top_n) {
        free(v);
        sqlite3_stmt *st = s->st_lists;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)token * s->k + sense);
        int rc = sqlite3_step(st);
        int bad = rc != SQLITE_ROW || (top && read_list(s, st, 0, n, top)) || (bottom && read_list(s, st, 2, n, bottom));
        sqlite3_reset(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_sql_fail(s, err, "reading top words");
        if (bad) return bp_fail(err, "%s: top words of token %d sense %d are missing or damaged", s->info.path, token, sense);
        return n;
    }
    int r = has_vector ? 0 : exported_vector(s, token, sense, v, err);
    if (!r) r = store_score_vector(s, v, n, top, bottom, err);
    free(v);
    return r;
}

const float *store_embeddings(SenseStore *s, BpError *err) {
    if (s->wte) return s->wte;
    float *wte = malloc((size_t)s->V * s->d * sizeof(float));
    if (!wte) {
        bp_fail(err, "out of memory for E (%d x %d)", s->V, s->d);
        return NULL;
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT id, vector FROM wte ORDER BY id", -1, &st, NULL) != SQLITE_OK) {
        free(wte);
        store_sql_fail(s, err, "reading E");
        return NULL;
    }
    int rc, expect = 0, bad = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_int(st, 0) != expect ||
            blob_to_floats(sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1), wte + (size_t)expect * s->d, s->d)) {
            bad = 1;
            break;
        }
        if (++expect == s->V) break;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        free(wte);
        store_sql_fail(s, err, "reading E");
        return NULL;
    }
    if (bad || expect != s->V) {
        free(wte);
        bp_fail(err, "%s: the wte table is damaged", s->info.path);
        return NULL;
    }
    s->wte = wte;
    return wte;
}

int store_wte_row(SenseStore *s, int id, float *out, BpError *err) {
    if (id < 0 || id >= s->V) return bp_fail(err, "token id %d out of range", id);
    if (s->wte) {
        memcpy(out, s->wte + (size_t)id * s->d, s->d * sizeof(float));
        return 0;
    }
    sqlite3_stmt *st = s->st_wte;
    sqlite3_bind_int(st, 1, id);
    int rc = sqlite3_step(st);
    int bad = rc != SQLITE_ROW || blob_to_floats(sqlite3_column_blob(st, 0), sqlite3_column_bytes(st, 0), out, s->d);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_sql_fail(s, err, "reading E");
    if (bad) return bp_fail(err, "%s: row %d of E is missing or damaged", s->info.path, id);
    return 0;
}

int store_score_vector(SenseStore *s, const float *vector, int n, WordScore *top, WordScore *bottom,
                       BpError *err) {
    const float *E = store_embeddings(s, err);
    if (!E) return -1;
    float *scores = malloc(s->V * sizeof(float));
    if (!scores) return bp_fail(err, "out of memory");
    const int V = s->V, d = s->d;
#pragma omp parallel for schedule(static)
    for (int y = 0; y < V; y++) scores[y] = store_exact_score(E + (size_t)y * d, vector, d);  // (V)
    if (n > V) n = V;
    select_extremes(scores, V, n, top, bottom);
    free(scores);
    return n;
}
