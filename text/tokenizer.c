/* tokenizer.c - GPT-2 byte-level BPE: loading, encoding, decoding.
 *
 * Encoding: split the text on "<|endoftext|>" (when the vocabulary has it), run the
 * GPT-2 pre-tokenizer (pretok.h) on each part, and BPE each pre-token: start from its
 * bytes as single-byte tokens and repeatedly merge the adjacent pair of lowest merge
 * rank, all of its non-overlapping occurrences left to right in one step, exactly as
 * OpenAI's encoder.py does. A heap of candidate pairs keyed by (rank, position) makes
 * that O(n log n) instead of encoder.py's O(n^2), so a megabyte-long pre-token costs no
 * more than it should. Results of pre-tokens up to CACHE_MAX_TOKEN_BYTES long are kept
 * in a hash map: ordinary text is mostly cache hits.
 */
#include "tokenizer.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fileio.h"
#include "hashmap.h"
#include "pretok.h"

#define CACHE_MAX_TOKEN_BYTES 255
#define CACHE_MAX_ENTRIES (1u << 20)
#define CACHE_MAX_IDS (8u << 20)

typedef struct {
    int rank, pos, left, right, merged;
} PairCandidate;

struct Tokenizer {
    int vocab_size;
    int eot;
    ByteAlphabet alphabet;
    int byte_id[256];              /* id of the single-byte token of each byte */
    char **token_string;           /* vocab.json form, NUL-terminated */
    char *string_pool;
    size_t *bytes_off;             /* raw bytes of id i: bytes_pool[bytes_off[i] .. bytes_off[i+1]) */
    char *bytes_pool;
    ByteMap bytes_to_id;
    PairMap merges;                /* pair_key(left, right) -> rank << 32 | merged id */
    int n_merges;

    /* Encoding state, guarded by lock: tokenizer_encode may be called from several
     * threads on one const Tokenizer. */
    pthread_mutex_t lock;
    Pretokenizer pretok;
    ByteMap cache;                 /* pre-token bytes -> cache_ids offset << 16 | count */
    int *cache_ids;
    size_t cache_n, cache_cap;
    int *sym, *next, *prev, *word_ids;
    PairCandidate *heap, *batch;
    int *merged_at;
    size_t scratch_cap;
};

/* --- loading --------------------------------------------------------------------- */

/* Converts a vocab.json-form string to raw bytes (out has room for strlen(s) bytes);
 * returns the length, or -1 naming the first code point outside the byte alphabet. */
static long unicode_to_bytes(const ByteAlphabet *a, const char *s, size_t len, char *out,
                             uint32_t *bad_cp) {
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = utf8_get((const unsigned char *)s + i, len - i, &cp);
        if (k == 0) {
            *bad_cp = (unsigned char)s[i];
            return -1;
        }
        if (cp >= 324 || a->cp_to_byte[cp] < 0) {
            *bad_cp = cp;
            return -1;
        }
        out[n++] = (char)a->cp_to_byte[cp];
        i += (size_t)k;
    }
    return (long)n;
}

static int load_vocab(Tokenizer *t, const char *path, BpError *err) {
    json_error_t jerr;
    FILE *fp = fopen(path, "rb");
    if (!fp) return bp_fail_errno(err, "%s: cannot open", path);
    json_t *root = json_loadf(fp, JSON_REJECT_DUPLICATES, &jerr);
    fclose(fp);
    if (!root) {
        if (jerr.line <= 0) return bp_fail(err, "%s: %s", path, jerr.text);
        return bp_fail(err, "%s:%d: %s", path, jerr.line, jerr.text);
    }
    int rc = -1;
    const char **key_of_id = NULL;
    size_t n = json_is_object(root) ? json_object_size(root) : 0;
    if (!json_is_object(root)) {
        bp_fail(err, "%s: not a JSON object of token -> id", path);
        goto done;
    }
    if (n < 256 || n > (1u << 30)) {
        bp_fail(err, "%s: %zu tokens; a byte-level vocabulary has 256 to 2^30", path, n);
        goto done;
    }
    key_of_id = calloc(n, sizeof *key_of_id);
    size_t pool_len = 0;
    const char *key;
    json_t *value;
    if (!key_of_id) goto oom;
    json_object_foreach(root, key, value) {
        json_int_t id = json_is_integer(value) ? json_integer_value(value) : -1;
        if (id < 0 || (size_t)id >= n) {
            bp_fail(err, "%s: key \"%s\": id must be an integer in 0..%zu (ids are 0..N-1 for N tokens)",
                    path, key, n - 1);
            goto done;
        }
        if (key_of_id[id]) {
            bp_fail(err, "%s: key \"%s\": id %lld is also the id of \"%s\"", path, key,
                    (long long)id, key_of_id[id]);
            goto done;
        }
        key_of_id[id] = key;
        pool_len += strlen(key) + 1;
    }
    t->vocab_size = (int)n;
    t->token_string = malloc(n * sizeof *t->token_string);
    t->string_pool = malloc(pool_len);
    t->bytes_off = malloc((n + 1) * sizeof *t->bytes_off);
    t->bytes_pool = malloc(pool_len);
    if (!t->token_string || !t->string_pool || !t->bytes_off || !t->bytes_pool ||
        bytemap_init(&t->bytes_to_id, n) != 0)
        goto oom;
    size_t s_off = 0, b_off = 0;
    for (size_t id = 0; id < n; id++) {
        size_t len = strlen(key_of_id[id]);
        memcpy(t->string_pool + s_off, key_of_id[id], len + 1);
        t->token_string[id] = t->string_pool + s_off;
        s_off += len + 1;
        uint32_t bad;
        long blen = unicode_to_bytes(&t->alphabet, key_of_id[id], len, t->bytes_pool + b_off, &bad);
        if (blen <= 0) {
            if (blen == 0) bp_fail(err, "%s: key \"\" (id %zu): empty token", path, id);
            else bp_fail(err, "%s: key \"%s\" (id %zu): character U+%04X is not in the GPT-2 byte alphabet",
                         path, key_of_id[id], id, (unsigned)bad);
            goto done;
        }
        t->bytes_off[id] = b_off;
        int inserted;
        int64_t *v = bytemap_put(&t->bytes_to_id, t->bytes_pool + b_off, (size_t)blen, (int64_t)id, &inserted);
        if (!v) goto oom;
        b_off += (size_t)blen;
    }
    t->bytes_off[n] = b_off;
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        int64_t *v = bytemap_get(&t->bytes_to_id, &c, 1);
        if (!v) {
            char shown[8];
            shown[utf8_put(shown, t->alphabet.byte_to_cp[b])] = '\0';
            bp_fail(err, "%s: no token for byte 0x%02x (\"%s\"): a byte-level vocabulary needs all 256",
                    path, b, shown);
            goto done;
        }
        t->byte_id[b] = (int)*v;
    }
    int64_t *eot = bytemap_get(&t->bytes_to_id, PRETOK_EOT_TEXT, PRETOK_EOT_LEN);
    t->eot = eot ? (int)*eot : -1;
    rc = 0;
    goto done;
oom:
    bp_fail(err, "%s: out of memory", path);
done:
    free(key_of_id);
    json_decref(root);
    return rc;
}

static int load_merges(Tokenizer *t, const char *path, BpError *err) {
    char *data;
    size_t len;
    if (read_file(path, &data, &len, err) != 0) return -1;
    int rc = -1;
    char *buf = malloc(len + 1);
    if (!buf || pairmap_init(&t->merges, 1024) != 0) {
        bp_fail(err, "%s: out of memory", path);
        goto done;
    }
    int line_no = 0, rank = 0;
    size_t pos = 0;
    while (pos < len) {
        char *line = data + pos;
        char *nl = memchr(line, '\n', len - pos);
        size_t line_len = nl ? (size_t)(nl - line) : len - pos;
        pos += line_len + (nl ? 1 : 0);
        line_no++;
        if (line_len && line[line_len - 1] == '\r') line_len--;
        if (line_no == 1 && line_len >= 8 && !memcmp(line, "#version", 8)) continue;
        if (line_len == 0) {
            /* Blank lines are allowed only at the end of the file. */
            size_t rest = pos;
            while (rest < len && (data[rest] == '\n' || data[rest] == '\r')) rest++;
            if (rest == len) break;
            bp_fail(err, "%s:%d: empty line (expected two tokens separated by one space)", path, line_no);
            goto done;
        }
        char *space = memchr(line, ' ', line_len);
        if (!space || space == line || space == line + line_len - 1 ||
            memchr(space + 1, ' ', line_len - (size_t)(space - line) - 1) || memchr(line, '\t', line_len)) {
            bp_fail(err, "%s:%d: expected two tokens separated by one space, got \"%.*s\"", path,
                    line_no, (int)(line_len > 80 ? 80 : line_len), line);
            goto done;
        }
        const char *part[2] = {line, space + 1};
        size_t part_len[2] = {(size_t)(space - line), line_len - (size_t)(space - line) - 1};
        int id[2];
        size_t off = 0;
        for (int k = 0; k < 2; k++) {
            uint32_t bad;
            long blen = unicode_to_bytes(&t->alphabet, part[k], part_len[k], buf + off, &bad);
            int64_t *v = blen > 0 ? bytemap_get(&t->bytes_to_id, buf + off, (size_t)blen) : NULL;
            if (!v) {
                bp_fail(err, "%s:%d: token \"%.*s\" is not in vocab.json", path, line_no,
                        (int)part_len[k], part[k]);
                goto done;
            }
            id[k] = (int)*v;
            off += (size_t)blen;
        }
        int64_t *merged = bytemap_get(&t->bytes_to_id, buf, off);
        if (!merged) {
            bp_fail(err, "%s:%d: merged token \"%.*s%.*s\" is not in vocab.json", path, line_no,
                    (int)part_len[0], part[0], (int)part_len[1], part[1]);
            goto done;
        }
        int inserted;
        int64_t *v = pairmap_put(&t->merges, pair_key(id[0], id[1]), ((int64_t)rank << 32) | *merged,
                                 &inserted);
        if (!v) {
            bp_fail(err, "%s: out of memory", path);
            goto done;
        }
        if (!inserted) {
            bp_fail(err, "%s:%d: duplicate merge \"%.*s\" (rank %d)", path, line_no, (int)line_len,
                    line, (int)(*v >> 32));
            goto done;
        }
        rank++;
    }
    t->n_merges = rank;
    rc = 0;
done:
    free(buf);
    free(data);
    return rc;
}

int tokenizer_load(Tokenizer **out, const char *dir, BpError *err) {
    *out = NULL;
    char vocab_path[4096], merges_path[4096];
    if (path_join(vocab_path, sizeof vocab_path, dir, "vocab.json", err) != 0 ||
        path_join(merges_path, sizeof merges_path, dir, "merges.txt", err) != 0)
        return -1;
    Tokenizer *t = calloc(1, sizeof *t);
    if (!t) return bp_fail(err, "%s: out of memory", dir);
    byte_alphabet_init(&t->alphabet);
    pthread_mutex_init(&t->lock, NULL);
    if (load_vocab(t, vocab_path, err) != 0 || load_merges(t, merges_path, err) != 0 ||
        pretok_init(&t->pretok, err) != 0) {
        tokenizer_free(t);
        return -1;
    }
    if (bytemap_init(&t->cache, 1 << 14) != 0) {
        tokenizer_free(t);
        return bp_fail(err, "%s: out of memory", dir);
    }
    *out = t;
    return 0;
}

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    free(t->token_string);
    free(t->string_pool);
    free(t->bytes_off);
    free(t->bytes_pool);
    bytemap_free(&t->bytes_to_id);
    pairmap_free(&t->merges);
    pretok_free(&t->pretok);
    bytemap_free(&t->cache);
    free(t->cache_ids);
    free(t->sym);
    free(t->next);
    free(t->prev);
    free(t->word_ids);
    free(t->heap);
    free(t->batch);
    free(t->merged_at);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

int tokenizer_vocab_size(const Tokenizer *t) { return t->vocab_size; }
int tokenizer_eot(const Tokenizer *t) { return t->eot; }
int tokenizer_n_merges(const Tokenizer *t) { return t->n_merges; }

const char *tokenizer_token_bytes(const Tokenizer *t, int id, size_t *len) {
    if (id < 0 || id >= t->vocab_size) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = t->bytes_off[id + 1] - t->bytes_off[id];
    return t->bytes_pool + t->bytes_off[id];
}

const char *tokenizer_token_string(const Tokenizer *t, int id) {
    return id < 0 || id >= t->vocab_size ? NULL : t->token_string[id];
}

int tokenizer_lookup_bytes(const Tokenizer *t, const char *bytes, size_t len) {
    int64_t *v = bytemap_get(&t->bytes_to_id, bytes, len);
    return v ? (int)*v : -1;
}

char *tokenizer_token_readable(const Tokenizer *t, int id, char *out, size_t out_size) {
    if (!out_size) return out;
    size_t len, n = 0;
    const unsigned char *s = (const unsigned char *)tokenizer_token_bytes(t, id, &len);
    if (!s) len = 0;
    for (size_t i = 0; i < len;) {
        char piece[8];
        size_t k;
        uint32_t cp;
        int u = utf8_get(s + i, len - i, &cp);
        if (s[i] == '\n') k = 2, memcpy(piece, "\\n", 2), u = 1;
        else if (s[i] == '\t') k = 2, memcpy(piece, "\\t", 2), u = 1;
        else if (u == 0 || cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) {
            k = (size_t)snprintf(piece, sizeof piece, "\\x%02x", s[i]);
            u = 1;
        } else {
            k = (size_t)u;
            memcpy(piece, s + i, k);
        }
        if (n + k + 1 > out_size) break;
        memcpy(out + n, piece, k);
        n += k;
        i += (size_t)u;
    }
    out[n] = '\0';
    return out;
}

int tokenizer_decode(const Tokenizer *t, const int *ids, size_t n, char **out, size_t *out_len,
                     BpError *err) {
    size_t total = 0;
    *out = NULL;
    *out_len = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->vocab_size)
            return bp_fail(err, "token id %d at position %zu is out of range (vocab size %d)", ids[i],
                           i, t->vocab_size);
        total += t->bytes_off[ids[i] + 1] - t->bytes_off[ids[i]];
    }
    char *buf = malloc(total + 1);
    if (!buf) return bp_fail(err, "decode: out of memory");
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = t->bytes_off[ids[i] + 1] - t->bytes_off[ids[i]];
        memcpy(buf + pos, t->bytes_pool + t->bytes_off[ids[i]], len);
        pos += len;
    }
    buf[pos] = '\0';
    *out = buf;
    *out_len = pos;
    return 0;
}

/* --- BPE of one pre-token ------------------------------------------------------------ */

static int candidate_less(const PairCandidate *a, const PairCandidate *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(PairCandidate *heap, size_t *n, PairCandidate c) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!candidate_less(&c, &heap[parent])) break;
        heap[i] = heap[parent];
        i = parent;
    }
    heap[i] = c;
}

static PairCandidate heap_pop(PairCandidate *heap, size_t *n) {
    PairCandidate top = heap[0], last = heap[--*n];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= *n) break;
        if (child + 1 < *n && candidate_less(&heap[child + 1], &heap[child])) child++;
        if (!candidate_less(&heap[child], &last)) break;
        heap[i] = heap[child];
        i = child;
    }
    if (*n) heap[i] = last;
    return top;
}

static void push_pair_at(Tokenizer *t, size_t *heap_n, int pos) {
    int right = t->next[pos];
    if (pos < 0 || right < 0) return;
    int64_t *v = pairmap_get(&t->merges, pair_key(t->sym[pos], t->sym[right]));
    if (!v) return;
    PairCandidate c = {(int)(*v >> 32), pos, t->sym[pos], t->sym[right], (int)(*v & 0xFFFFFFFF)};
    heap_push(t->heap, heap_n, c);
}

static int ensure_scratch(Tokenizer *t, size_t n) {
    if (n <= t->scratch_cap) return 0;
    size_t cap = t->scratch_cap ? t->scratch_cap : 64;
    while (cap < n) cap *= 2;
    int *sym = realloc(t->sym, cap * sizeof *sym);
    if (sym) t->sym = sym;
    int *next = realloc(t->next, cap * sizeof *next);
    if (next) t->next = next;
    int *prev = realloc(t->prev, cap * sizeof *prev);
    if (prev) t->prev = prev;
    int *word_ids = realloc(t->word_ids, cap * sizeof *word_ids);
    if (word_ids) t->word_ids = word_ids;
    int *merged_at = realloc(t->merged_at, cap * sizeof *merged_at);
    if (merged_at) t->merged_at = merged_at;
    /* n - 1 initial candidates, at most 2 per merge, at most n - 1 merges. */
    PairCandidate *heap = realloc(t->heap, 3 * cap * sizeof *heap);
    if (heap) t->heap = heap;
    PairCandidate *batch = realloc(t->batch, 3 * cap * sizeof *batch);
    if (batch) t->batch = batch;
    if (!sym || !next || !prev || !word_ids || !merged_at || !heap || !batch) return -1;
    t->scratch_cap = cap;
    return 0;
}

/* BPE of bytes s[0..n) into t->word_ids; returns the number of ids or -1 (memory). */
static long bpe_word(Tokenizer *t, const unsigned char *s, size_t n) {
    if (ensure_scratch(t, n) != 0) return -1;
    for (size_t i = 0; i < n; i++) {
        t->sym[i] = t->byte_id[s[i]];
        t->next[i] = i + 1 < n ? (int)i + 1 : -1;
        t->prev[i] = (int)i - 1;
    }
    size_t heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair_at(t, &heap_n, (int)i);
    while (heap_n) {
        /* Every occurrence of the lowest-ranked pair, leftmost first: one encoder.py step. */
        int rank = t->heap[0].rank;
        size_t batch_n = 0, merged_n = 0;
        while (heap_n && t->heap[0].rank == rank) t->batch[batch_n++] = heap_pop(t->heap, &heap_n);
        for (size_t b = 0; b < batch_n; b++) {
            PairCandidate *c = &t->batch[b];
            int q = t->next[c->pos];
            if (t->sym[c->pos] != c->left || q < 0 || t->sym[q] != c->right) continue;
            t->sym[c->pos] = c->merged;
            t->sym[q] = -1;
            t->next[c->pos] = t->next[q];
            if (t->next[q] >= 0) t->prev[t->next[q]] = c->pos;
            t->merged_at[merged_n++] = c->pos;
        }
        for (size_t m = 0; m < merged_n; m++) {
            int pos = t->merged_at[m];
            if (t->prev[pos] >= 0) push_pair_at(t, &heap_n, t->prev[pos]);
            push_pair_at(t, &heap_n, pos);
        }
    }
    long k = 0;
    for (int i = 0; i >= 0; i = t->next[i]) t->word_ids[k++] = t->sym[i];
    return k;
}

/* --- encoding -------------------------------------------------------------------------- */

typedef struct {
    Tokenizer *t;
    int **ids;
    size_t *n, *cap;
} EncodeOut;

static int append_ids(EncodeOut *o, const int *ids, size_t k, BpError *err) {
    if (*o->n + k > *o->cap) {
        size_t cap = *o->cap ? *o->cap : 256;
        while (cap < *o->n + k) cap *= 2;
        int *grown = realloc(*o->ids, cap * sizeof *grown);
        if (!grown) return bp_fail(err, "encode: out of memory");
        *o->ids = grown;
        *o->cap = cap;
    }
    memcpy(*o->ids + *o->n, ids, k * sizeof *ids);
    *o->n += k;
    return 0;
}

static int encode_pretoken(void *ctx, const char *s, size_t len, BpError *err) {
    EncodeOut *o = ctx;
    Tokenizer *t = o->t;
    if (len == 1) return append_ids(o, &t->byte_id[(unsigned char)s[0]], 1, err);
    int cacheable = len <= CACHE_MAX_TOKEN_BYTES;
    if (cacheable) {
        int64_t *v = bytemap_get(&t->cache, s, len);
        if (v) return append_ids(o, t->cache_ids + (*v >> 16), (size_t)(*v & 0xFFFF), err);
    }
    long k = bpe_word(t, (const unsigned char *)s, len);
    if (k < 0) return bp_fail(err, "encode: out of memory");
    if (cacheable) {
        if (t->cache.count >= CACHE_MAX_ENTRIES || t->cache_n + (size_t)k > CACHE_MAX_IDS) {
            bytemap_clear(&t->cache);
            t->cache_n = 0;
        }
        if (t->cache_n + (size_t)k > t->cache_cap) {
            size_t cap = t->cache_cap ? t->cache_cap * 2 : 1 << 16;
            while (cap < t->cache_n + (size_t)k) cap *= 2;
            int *grown = realloc(t->cache_ids, cap * sizeof *grown);
            if (!grown) return bp_fail(err, "encode: out of memory");
            t->cache_ids = grown;
            t->cache_cap = cap;
        }
        if (!bytemap_put(&t->cache, s, len, ((int64_t)t->cache_n << 16) | k, NULL))
            return bp_fail(err, "encode: out of memory");
        memcpy(t->cache_ids + t->cache_n, t->word_ids, (size_t)k * sizeof(int));
        t->cache_n += (size_t)k;
    }
    return append_ids(o, t->word_ids, (size_t)k, err);
}

int tokenizer_encode(const Tokenizer *tc, const char *text, size_t len, int **ids, size_t *n,
                     size_t *cap, BpError *err) {
    Tokenizer *t = (Tokenizer *)tc;   /* the cache and scratch buffers, under the lock */
    EncodeOut o = {t, ids, n, cap};
    int rc = 0;
    pthread_mutex_lock(&t->lock);
    size_t pos = 0;
    while (pos < len && rc == 0) {
        const char *eot = t->eot >= 0 ? memmem(text + pos, len - pos, PRETOK_EOT_TEXT, PRETOK_EOT_LEN) : NULL;
        size_t end = eot ? (size_t)(eot - text) : len;
        if (end > pos) rc = pretok_split(&t->pretok, text + pos, end - pos, encode_pretoken, &o, err);
        if (rc == 0 && eot) rc = append_ids(&o, &t->eot, 1, err);
        pos = eot ? end + PRETOK_EOT_LEN : len;
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}
