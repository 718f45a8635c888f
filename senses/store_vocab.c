/* store_vocab.c - the vocabulary of a sense database: token strings, lookup by bytes,
 * type-ahead, closest words, and resolving what a user typed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fileio.h"
#include "../text/tokenizer.h"
#include "store_private.h"

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

int store_load_vocab(SenseStore *s, BpError *err) {
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
    /* bytes -> id; several ids with the same bytes: the lower id wins */
    if (bytemap_init(&s->by_bytes, (size_t)V)) return bp_fail(err, "%s: out of memory for the vocabulary", s->info.path);
    for (int id = 0; id < V; id++) {
        if (!s->tok_bytes_len[id]) continue;
        if (!bytemap_put(&s->by_bytes, s->pool + s->tok_bytes[id], s->tok_bytes_len[id], id, NULL))
            return bp_fail(err, "%s: out of memory for the vocabulary", s->info.path);
    }
    for (int i = 0; i < V; i++) s->by_text[i] = i;
    qsort_r(s->by_text, V, sizeof(int), cmp_by_text, s);
    return 0;
}

void store_free_vocab(SenseStore *s) {
    if (s->tokenizer) tokenizer_free(s->tokenizer);
    free(s->pool);
    free(s->tok_string);
    free(s->tok_text);
    free(s->tok_bytes);
    free(s->tok_bytes_len);
    bytemap_free(&s->by_bytes);
    free(s->by_text);
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
    const int64_t *id = bytemap_get(&s->by_bytes, bytes, len);
    return id ? (int)*id : -1;
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
