/* store.c - opening a sense database, its vocabulary, senses and nearest neighbours.
 * (Export is in export.c, edits in store_edits.c.) */
#include <cblas.h>
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "../text/tokenizer.h"
#include "store_private.h"

/* ---- helpers ------------------------------------------------------------------------ */

int store_sql_fail(const SenseStore *s, BpError *err, const char *what) {
    int code = sqlite3_extended_errcode(s->db) & 0xff;
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
        return bp_fail(err, "%s: database is locked by another process (waited %d ms) while %s",
                       s->info.path, s->busy_timeout_ms, what);
    if (code == SQLITE_READONLY)
        return bp_fail(err, "%s: database is read-only while %s", s->info.path, what);
    return bp_fail(err, "%s: %s while %s", s->info.path, sqlite3_errmsg(s->db), what);
}

int blob_to_floats(const void *blob, int bytes, float *out, int n) {
    if (!blob || bytes != (int)(n * sizeof(float))) return -1;
    memcpy(out, blob, (size_t)n * sizeof(float));  /* little-endian host (x86-64) */
    return 0;
}

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

/* ---- validation and opening ------------------------------------------------------ */

static int pragma_int(sqlite3 *db, const char *sql, int *out) {
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static int validate_fail(sqlite3 *db, const char *path, int rc, BpError *err) {
    int code = rc & 0xff;
    if (code == SQLITE_NOTADB) return bp_fail(err, "%s: not a sense database (not an SQLite file)", path);
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
        return bp_fail(err, "%s: database is locked by another process (waited %d ms)", path,
                       STORE_BUSY_TIMEOUT_MS);
    return bp_fail(err, "%s: cannot read database: %s", path, sqlite3_errmsg(db));
}

int store_validate_db(sqlite3 *db, const char *path, BpError *err) {
    int app_id = 0, version = 0, rc;
    if ((rc = pragma_int(db, "PRAGMA application_id", &app_id)) != SQLITE_OK)
        return validate_fail(db, path, rc, err);
    if (app_id != STORE_APPLICATION_ID)
        return bp_fail(err, "%s: not a sense database (SQLite, but not written by backpack export)", path);
    if ((rc = pragma_int(db, "PRAGMA user_version", &version)) != SQLITE_OK)
        return validate_fail(db, path, rc, err);
    if (version != STORE_SCHEMA_VERSION)
        return bp_fail(err, "%s: sense database schema version %d, this backpack reads version %d", path,
                       version, STORE_SCHEMA_VERSION);
    int complete = 0;
    rc = pragma_int(db, "SELECT value = '1' FROM meta WHERE key = 'complete'", &complete);
    if (rc != SQLITE_OK) return validate_fail(db, path, rc, err);
    if (!complete) return bp_fail(err, "%s: incomplete sense database (an interrupted export)", path);
    return 0;
}

static int read_meta(SenseStore *s, BpError *err) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT key, value FROM meta", -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, err, "reading meta");
    StoreInfo *in = &s->info;
    BackpackConfig *c = &in->config;
    memset(c, 0, sizeof *c);
    c->arch = -1;
    in->schema_version = STORE_SCHEMA_VERSION;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        const char *value = (const char *)sqlite3_column_text(st, 1);
        if (!key || !value) continue;
        long v = strtol(value, NULL, 10);
        if (!strcmp(key, "vocab_size")) c->vocab_size = (int)v;
        else if (!strcmp(key, "n_embd")) c->n_embd = (int)v;
        else if (!strcmp(key, "n_layer")) c->n_layer = (int)v;
        else if (!strcmp(key, "n_head")) c->n_head = (int)v;
        else if (!strcmp(key, "num_senses")) c->num_senses = (int)v;
        else if (!strcmp(key, "n_positions")) c->n_positions = (int)v;
        else if (!strcmp(key, "sense_intermediate_scale")) c->sense_intermediate_scale = (int)v;
        else if (!strcmp(key, "arch")) c->arch = (ModelArch)v;
        else if (!strcmp(key, "top_n")) in->top_n = (int)v;
        else if (!strcmp(key, "created")) in->created = strtod(value, NULL);
        else if (!strcmp(key, "weights_hash")) snprintf(in->weights_hash, sizeof in->weights_hash, "%s", value);
        else if (!strcmp(key, "model_dir")) snprintf(in->model_dir, sizeof in->model_dir, "%s", value);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return store_sql_fail(s, err, "reading meta");
    if (c->vocab_size <= 0 || c->n_embd <= 0 || c->num_senses <= 0 || c->n_embd > 1 << 16 ||
        c->num_senses > 1024 || in->top_n <= 0 || strlen(in->weights_hash) != 16)
        return bp_fail(err, "%s: sense database meta table is damaged (shape or hash missing)", in->path);
    s->V = c->vocab_size;
    s->d = c->n_embd;
    s->k = c->num_senses;
    return 0;
}

static uint64_t hash_bytes(const char *b, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)b[i]) * 1099511628211ULL;
    return h;
}

static const char *strip_space(const char *t) { return *t == ' ' ? t + 1 : t; }

static int cmp_by_text(const void *a, const void *b, void *ctx) {
    const SenseStore *s = ctx;
    int ia = *(const int *)a, ib = *(const int *)b;
    int c = strcmp(strip_space(s->pool + s->tok_text[ia]), strip_space(s->pool + s->tok_text[ib]));
    return c ? c : (ia > ib) - (ia < ib);
}

static int pool_add(char **pool, size_t *len, size_t *cap, const void *data, size_t n, size_t *at) {
    if (*len + n + 1 > *cap) {
        size_t nc = (*cap ? *cap * 2 : 1 << 16);
        while (nc < *len + n + 1) nc *= 2;
        char *p = realloc(*pool, nc);
        if (!p) return -1;
        *pool = p;
        *cap = nc;
    }
    *at = *len;
    if (n) memcpy(*pool + *len, data, n);
    (*pool)[*len + n] = 0;
    *len += n + 1;
    return 0;
}

static int load_vocab(SenseStore *s, BpError *err) {
    int V = s->V;
    s->tok_string = calloc(V, sizeof(size_t));
    s->tok_text = calloc(V, sizeof(size_t));
    s->tok_bytes = calloc(V, sizeof(size_t));
    s->tok_bytes_len = calloc(V, sizeof(size_t));
    s->by_text = malloc(V * sizeof(int));
    if (!s->tok_string || !s->tok_text || !s->tok_bytes || !s->tok_bytes_len || !s->by_text)
        return bp_fail(err, "%s: out of memory for the vocabulary", s->info.path);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT id, token, text, bytes FROM tokens ORDER BY id", -1, &st, NULL) !=
        SQLITE_OK)
        return store_sql_fail(s, err, "reading tokens");
    size_t len = 0, cap = 0;
    int expect = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int id = sqlite3_column_int(st, 0);
        if (id != expect || id >= V) break;
        const char *tok = (const char *)sqlite3_column_text(st, 1);
        const char *text = (const char *)sqlite3_column_text(st, 2);
        const void *bytes = sqlite3_column_blob(st, 3);
        size_t nb = (size_t)sqlite3_column_bytes(st, 3);
        if (pool_add(&s->pool, &len, &cap, tok ? tok : "", tok ? strlen(tok) : 0, &s->tok_string[id]) ||
            pool_add(&s->pool, &len, &cap, text ? text : "", text ? strlen(text) : 0, &s->tok_text[id]) ||
            pool_add(&s->pool, &len, &cap, bytes, bytes ? nb : 0, &s->tok_bytes[id])) {
            sqlite3_finalize(st);
            return bp_fail(err, "%s: out of memory for the vocabulary", s->info.path);
        }
        s->tok_bytes_len[id] = bytes ? nb : 0;
        expect++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return store_sql_fail(s, err, "reading tokens");
    if (expect != V)
        return bp_fail(err, "%s: tokens table is damaged (%d rows in order, meta says %d)", s->info.path, expect, V);
    s->hash_cap = 16;
    while (s->hash_cap < (size_t)V * 2) s->hash_cap *= 2;
    s->hash_slots = malloc(s->hash_cap * sizeof(int));
    if (!s->hash_slots) return bp_fail(err, "%s: out of memory for the vocabulary", s->info.path);
    memset(s->hash_slots, 0xff, s->hash_cap * sizeof(int));
    for (int id = 0; id < V; id++) {
        if (!s->tok_bytes_len[id]) continue;
        size_t slot = hash_bytes(s->pool + s->tok_bytes[id], s->tok_bytes_len[id]) & (s->hash_cap - 1);
        int dup = 0;
        while (s->hash_slots[slot] >= 0) {
            int o = s->hash_slots[slot];
            if (s->tok_bytes_len[o] == s->tok_bytes_len[id] &&
                !memcmp(s->pool + s->tok_bytes[o], s->pool + s->tok_bytes[id], s->tok_bytes_len[id])) {
                dup = 1;  /* the lower id wins */
                break;
            }
            slot = (slot + 1) & (s->hash_cap - 1);
        }
        if (!dup) s->hash_slots[slot] = id;
    }
    for (int i = 0; i < V; i++) s->by_text[i] = i;
    qsort_r(s->by_text, V, sizeof(int), cmp_by_text, s);
    return 0;
}

static int prepare(SenseStore *s, sqlite3_stmt **st, const char *sql, BpError *err) {
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
        return store_sql_fail(s, err, "preparing a query");
    return 0;
}

int store_open(SenseStore **out, const char *path, StoreMode mode, BpError *err) {
    *out = NULL;
    if (!file_exists(path)) return bp_fail(err, "%s: no such sense database", path);
    SenseStore *s = calloc(1, sizeof *s);
    if (!s) return bp_fail(err, "%s: out of memory", path);
    s->mode = mode;
    snprintf(s->info.path, sizeof s->info.path, "%s", path);
    int flags = mode == STORE_READ_WRITE ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        bp_fail(err, "%s: cannot open: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        store_close(s);
        return -1;
    }
    store_set_busy_timeout(s, STORE_BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(s->db, 1);
    if (store_validate_db(s->db, path, err) || read_meta(s, err) || load_vocab(s, err) ||
        prepare(s, &s->st_vector, "SELECT vector FROM senses WHERE id = ?1", err) ||
        prepare(s, &s->st_info, "SELECT norm FROM senses WHERE id = ?1", err) ||
        prepare(s, &s->st_lists,
                "SELECT top_ids, top_scores, bottom_ids, bottom_scores FROM senses WHERE id = ?1", err) ||
        prepare(s, &s->st_edited, "SELECT weight, vector FROM edited_senses WHERE token = ?1 AND sense = ?2",
                err) ||
        prepare(s, &s->st_wte, "SELECT vector FROM wte WHERE id = ?1", err)) {
        store_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void store_close(SenseStore *s) {
    if (!s) return;
    sqlite3_finalize(s->st_vector);
    sqlite3_finalize(s->st_info);
    sqlite3_finalize(s->st_lists);
    sqlite3_finalize(s->st_edited);
    sqlite3_finalize(s->st_wte);
    sqlite3_close(s->db);
    if (s->tokenizer) tokenizer_free(s->tokenizer);
    free(s->pool);
    free(s->tok_string);
    free(s->tok_text);
    free(s->tok_bytes);
    free(s->tok_bytes_len);
    free(s->hash_slots);
    free(s->by_text);
    free(s->wte);
    free(s->index);
    free(s);
}

void store_set_busy_timeout(SenseStore *s, int ms) {
    s->busy_timeout_ms = ms;
    sqlite3_busy_timeout(s->db, ms);
}

const StoreInfo *store_info(const SenseStore *s) { return &s->info; }

int store_check_model(const SenseStore *s, const Backpack *m, BpError *err) {
    const BackpackConfig *a = &s->info.config, *b = &m->config;
    if (a->arch != b->arch || a->vocab_size != b->vocab_size || a->n_embd != b->n_embd ||
        a->n_layer != b->n_layer || a->n_head != b->n_head || a->num_senses != b->num_senses ||
        a->n_positions != b->n_positions || a->sense_intermediate_scale != b->sense_intermediate_scale)
        return bp_fail(err,
                       "%s: exported from another model (shape V=%d d=%d L=%d H=%d k=%d, this model V=%d d=%d "
                       "L=%d H=%d k=%d)",
                       s->info.path, a->vocab_size, a->n_embd, a->n_layer, a->n_head, a->num_senses,
                       b->vocab_size, b->n_embd, b->n_layer, b->n_head, b->num_senses);
    char hash[17];
    backpack_weights_hash(m, hash);
    if (strcmp(hash, s->info.weights_hash))
        return bp_fail(err, "%s: exported from another model (weights hash %s, this model %s)", s->info.path,
                       s->info.weights_hash, hash);
    return 0;
}

/* ---- vocabulary ------------------------------------------------------------------- */

int store_vocab_size(const SenseStore *s) { return s->V; }

const char *store_token_text(const SenseStore *s, int id) {
    return id >= 0 && id < s->V ? s->pool + s->tok_text[id] : "";
}

const char *store_token_string(const SenseStore *s, int id) {
    return id >= 0 && id < s->V ? s->pool + s->tok_string[id] : "";
}

const char *store_token_bytes(const SenseStore *s, int id, size_t *len) {
    if (id < 0 || id >= s->V) return NULL;
    if (len) *len = s->tok_bytes_len[id];
    return s->pool + s->tok_bytes[id];
}

int store_lookup_bytes(const SenseStore *s, const char *bytes, size_t len) {
    if (!len) return -1;
    size_t slot = hash_bytes(bytes, len) & (s->hash_cap - 1);
    while (s->hash_slots[slot] >= 0) {
        int id = s->hash_slots[slot];
        if (s->tok_bytes_len[id] == len && !memcmp(s->pool + s->tok_bytes[id], bytes, len)) return id;
        slot = (slot + 1) & (s->hash_cap - 1);
    }
    return -1;
}

int store_prefix_search(const SenseStore *s, const char *prefix, int *ids, int max) {
    if (max <= 0) return 0;
    prefix = strip_space(prefix);
    size_t plen = strlen(prefix);
    /* lower bound of prefix in by_text */
    int lo = 0, hi = s->V;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (strcmp(strip_space(s->pool + s->tok_text[s->by_text[mid]]), prefix) < 0) lo = mid + 1;
        else hi = mid;
    }
    int n = 0;
    for (int i = lo; i < s->V; i++) {
        int id = s->by_text[i];
        const char *t = strip_space(s->pool + s->tok_text[id]);
        if (strncmp(t, prefix, plen)) break;
        if (!s->tok_bytes_len[id]) continue;  /* padding rows */
        /* keep the max shortest, then lowest id: insertion into a sorted list */
        size_t len = strlen(t);
        int j = n < max ? n++ : max;
        if (j == max) {
            int last = ids[max - 1];
            size_t ll = strlen(strip_space(s->pool + s->tok_text[last]));
            if (ll < len || (ll == len && last < id)) continue;
            j = max - 1;
        }
        while (j > 0) {
            int o = ids[j - 1];
            size_t ol = strlen(strip_space(s->pool + s->tok_text[o]));
            if (ol < len || (ol == len && o < id)) break;
            ids[j] = o;
            j--;
        }
        ids[j] = id;
    }
    return n;
}

/* Optimal-string-alignment distance (insert, delete, substitute, swap two neighbours:
 * "bnak" is 1 from "bank"), giving up with limit + 1 once every cell exceeds limit. */
static int edit_distance(const char *a, size_t na, const char *b, size_t nb, int limit) {
    int rows[3][129];
    if (na > 128) na = 128;
    int *prev2 = rows[0], *prev = rows[1], *row = rows[2];
    for (size_t j = 0; j <= na; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= nb; i++) {
        row[0] = (int)i;
        int best = row[0];
        for (size_t j = 1; j <= na; j++) {
            int sub = prev[j - 1] + (a[j - 1] != b[i - 1]);
            int del = prev[j] + 1, ins = row[j - 1] + 1;
            int v = sub < del ? sub : del;
            if (ins < v) v = ins;
            if (i > 1 && j > 1 && a[j - 1] == b[i - 2] && a[j - 2] == b[i - 1] && prev2[j - 2] + 1 < v)
                v = prev2[j - 2] + 1;
            row[j] = v;
            if (v < best) best = v;
        }
        if (best > limit) return limit + 1;
        int *t = prev2;
        prev2 = prev;
        prev = row;
        row = t;
    }
    return prev[na];
}

int store_closest_tokens(const SenseStore *s, const char *word, int *ids, int max) {
    if (max <= 0) return 0;
    if (max > 64) max = 64;
    word = strip_space(word);
    size_t nw = strlen(word);
    int dist[64], n = 0;
    for (int id = 0; id < s->V; id++) {
        if (!s->tok_bytes_len[id]) continue;
        const char *t = strip_space(s->pool + s->tok_text[id]);
        size_t nt = strlen(t);
        int limit = n == max ? dist[max - 1] : 1 << 20;
        int lendiff = (int)(nt > nw ? nt - nw : nw - nt);
        if (lendiff > limit) continue;
        int dd = edit_distance(word, nw, t, nt > 128 ? 128 : nt, limit);
        if (n == max && dd >= limit) continue;
        int j = n < max ? n++ : max - 1;
        while (j > 0 && dist[j - 1] > dd) {
            dist[j] = dist[j - 1];
            ids[j] = ids[j - 1];
            j--;
        }
        dist[j] = dd;
        ids[j] = id;
    }
    return n;
}

/* The stored tokenizer, materialized in a private temporary directory just to load it. */
static Tokenizer *store_tokenizer(SenseStore *s) {
    if (s->tokenizer || s->tokenizer_failed) return s->tokenizer;
    s->tokenizer_failed = 1;
    char dir[] = "/tmp/backpack-tokenizer-XXXXXX";
    if (!mkdtemp(dir)) return NULL;
    sqlite3_stmt *st;
    int ok = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT name, data FROM files WHERE name IN ('vocab.json', 'merges.txt')", -1,
                           &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            char path[600];
            snprintf(path, sizeof path, "%s/%s", dir, (const char *)sqlite3_column_text(st, 0));
            const void *data = sqlite3_column_blob(st, 1);
            if (write_file_atomic(path, data ? data : "", (size_t)sqlite3_column_bytes(st, 1), NULL) == 0) ok++;
        }
        sqlite3_finalize(st);
    }
    Tokenizer *t = NULL;
    if (ok == 2 && tokenizer_load(&t, dir, NULL) == 0) {
        s->tokenizer = t;
        s->tokenizer_failed = 0;
    }
    remove_tree(dir);
    return s->tokenizer;
}

static void closest_list(const SenseStore *s, const char *word, char *out, size_t size) {
    int ids[6];
    int n = store_closest_tokens(s, word, ids, 6);
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; i < n && used + 4 < size; i++) {
        int w = snprintf(out + used, size - used, "%s'%s'", i ? ", " : "", store_token_text(s, ids[i]));
        if (w < 0) break;
        used += (size_t)w < size - used ? (size_t)w : size - used - 1;
    }
}

static int unknown_word(const SenseStore *s, const char *word, const char *why, BpError *err) {
    char list[300];
    closest_list(s, word, list, sizeof list);
    return bp_fail(err, "unknown word '%.100s'%s%s; closest: %s", word, why ? " " : "", why ? why : "",
                   list[0] ? list : "none");
}

int store_resolve_word(SenseStore *s, const char *word, StoreWord *out, BpError *err) {
    memset(out, 0, sizeof *out);
    snprintf(out->text, sizeof out->text, "%s", word);
    size_t n = strlen(word);
    if (n == 0) return bp_fail(err, "empty word");
    if (n > 100) return bp_fail(err, "word '%.40s...' is too long", word);
    if (word[0] == '#' && n > 1 && strspn(word + 1, "0123456789") == n - 1) {
        long id = strtol(word + 1, NULL, 10);
        if (id < 0 || id >= s->V) return bp_fail(err, "token id %s out of range (vocabulary 0..%d)", word, s->V - 1);
        out->n_tokens = 1;
        out->tokens[0] = (int)id;
        return 0;
    }
    char spaced[128];
    const char *encode_text = word;
    if (word[0] != ' ') {
        snprintf(spaced, sizeof spaced, " %s", word);
        int id = store_lookup_bytes(s, spaced, n + 1);
        if (id < 0) id = store_lookup_bytes(s, word, n);
        if (id >= 0) {
            out->n_tokens = 1;
            out->tokens[0] = id;
            return 0;
        }
        encode_text = spaced;
    } else {
        int id = store_lookup_bytes(s, word, n);
        if (id >= 0) {
            out->n_tokens = 1;
            out->tokens[0] = id;
            return 0;
        }
    }
    Tokenizer *t = store_tokenizer(s);
    if (!t) return unknown_word(s, word, "(and the database has no tokenizer to split it)", err);
    int *ids = NULL;
    size_t nids = 0, cap = 0;
    if (tokenizer_encode(t, encode_text, strlen(encode_text), &ids, &nids, &cap, NULL) || nids == 0) {
        free(ids);
        return unknown_word(s, word, NULL, err);
    }
    if (nids > STORE_MAX_WORD_TOKENS) {
        free(ids);
        return bp_fail(err, "word '%.60s' is %zu tokens (at most %d)", word, nids, STORE_MAX_WORD_TOKENS);
    }
    for (size_t i = 0; i < nids; i++) {
        if (ids[i] < 0 || ids[i] >= s->V) {
            free(ids);
            return unknown_word(s, word, "(a token outside the model's vocabulary)", err);
        }
        out->tokens[i] = ids[i];
    }
    out->n_tokens = (int)nids;
    free(ids);
    return 0;
}

int store_resolve_token(SenseStore *s, const char *word, int *token, BpError *err) {
    StoreWord w;
    if (store_resolve_word(s, word, &w, err)) return -1;
    if (w.n_tokens != 1) {
        char parts[200] = "";
        size_t used = 0;
        for (int i = 0; i < w.n_tokens && used < sizeof parts - 8; i++)
            used += (size_t)snprintf(parts + used, sizeof parts - used, "%s'%s'", i ? " " : "",
                                     store_token_text(s, w.tokens[i]));
        char list[300];
        closest_list(s, word, list, sizeof list);
        return bp_fail(err, "'%.60s' is not one token (it is %d: %s); closest single tokens: %s", word,
                       w.n_tokens, parts, list);
    }
    *token = w.tokens[0];
    return 0;
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
    cblas_sgemv(CblasRowMajor, CblasNoTrans, s->V, s->d, 1.0f, E, s->d, vector, 1, 0.0f, scores, 1);  // (V)
    if (n > s->V) n = s->V;
    select_extremes(scores, s->V, n, top, bottom);
    free(scores);
    return n;
}

/* ---- nearest neighbours ------------------------------------------------------------ */

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
