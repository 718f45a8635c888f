/* bpe_train.c - training a byte-level BPE tokenizer (tokenizer_train, see tokenizer.h).
 *
 * 1. Count words: every document of every file (docstream.h) is cut into pre-tokens by
 *    the GPT-2 regex; each distinct pre-token is a word with a count (a hash map).
 * 2. Each word becomes a sequence of symbols (token ids), first its bytes. Pair counts
 *    (a hash map of (left, right) -> pair record) sum the word counts over every
 *    adjacent pair, and each pair keeps the list of words it occurs in.
 * 3. Repeat: take the pair with the highest count (a max-heap with lazy deletion: an
 *    entry whose count is stale is re-pushed with the current count), ties broken by
 *    the smaller (left id, right id); merge it in each word of its list, updating only
 *    the counts of the pairs around each merged occurrence.
 * Deterministic: no iteration order of a hash map reaches the result.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fileio.h"
#include "docstream.h"
#include "hashmap.h"
#include "pretok.h"
#include "tokenizer.h"

typedef struct {
    int64_t count;
    int left, right;
    int *words;          /* words the pair occurs (or occurred) in; may repeat */
    int n_words, cap_words;
    int touched_step;    /* the last merge step that raised the count */
} PairRecord;

typedef struct {
    int64_t count;
    int left, right;
} HeapEntry;

typedef struct {
    /* words */
    ByteMap word_index;          /* pre-token bytes -> word index */
    int64_t *word_count;
    size_t n_words, cap_words;
    int64_t total_words;
    Pretokenizer pretok;
    /* symbols of word w: sym[sym_start[w] .. sym_start[w] + sym_len[w]) */
    int *sym;
    size_t *sym_start;
    int *sym_len;
    /* pairs */
    PairMap pair_index;          /* pair_key -> index into pairs */
    PairRecord *pairs;
    size_t n_pairs, cap_pairs;
    HeapEntry *heap;
    size_t heap_n, heap_cap;
    int step;                    /* merges done so far + 1 */
    size_t *touched;             /* pairs whose count rose in this step */
    size_t n_touched, cap_touched;
    /* the vocabulary being built: raw bytes of each id */
    char **tok_bytes;
    int *tok_len;
    int n_tokens, cap_tokens;
    ByteMap tok_index;           /* raw bytes -> id */
    int (*merges)[2];
    int n_merges;
    ByteAlphabet alphabet;
} Trainer;

/* --- counting words ------------------------------------------------------------------ */

static int count_word(void *ctx, const char *s, size_t len, BpError *err) {
    Trainer *tr = ctx;
    int inserted;
    int64_t *v = bytemap_put(&tr->word_index, s, len, (int64_t)tr->n_words, &inserted);
    if (!v) return bp_fail(err, "tokenizer train: out of memory");
    if (inserted) {
        if (tr->n_words == tr->cap_words) {
            size_t cap = tr->cap_words ? tr->cap_words * 2 : 1 << 14;
            int64_t *grown = realloc(tr->word_count, cap * sizeof *grown);
            if (!grown) return bp_fail(err, "tokenizer train: out of memory");
            tr->word_count = grown;
            tr->cap_words = cap;
        }
        tr->word_count[tr->n_words++] = 0;
    }
    tr->word_count[*v]++;
    tr->total_words++;
    return 0;
}

static int count_piece(void *ctx, const char *text, size_t len, BpError *err) {
    Trainer *tr = ctx;
    return pretok_split(&tr->pretok, text, len, count_word, tr, err);
}

static int count_doc_end(void *ctx, BpError *err) {
    (void)ctx;
    (void)err;
    return 0;
}

/* --- pairs and the heap -------------------------------------------------------------- */

static int heap_greater(const HeapEntry *a, const HeapEntry *b) {
    if (a->count != b->count) return a->count > b->count;
    if (a->left != b->left) return a->left < b->left;
    return a->right < b->right;
}

static int heap_push(Trainer *tr, HeapEntry e) {
    if (tr->heap_n == tr->heap_cap) {
        size_t cap = tr->heap_cap ? tr->heap_cap * 2 : 1 << 14;
        HeapEntry *grown = realloc(tr->heap, cap * sizeof *grown);
        if (!grown) return -1;
        tr->heap = grown;
        tr->heap_cap = cap;
    }
    size_t i = tr->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_greater(&e, &tr->heap[parent])) break;
        tr->heap[i] = tr->heap[parent];
        i = parent;
    }
    tr->heap[i] = e;
    return 0;
}

static HeapEntry heap_pop(Trainer *tr) {
    HeapEntry top = tr->heap[0], last = tr->heap[--tr->heap_n];
    size_t i = 0, n = tr->heap_n;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && heap_greater(&tr->heap[child + 1], &tr->heap[child])) child++;
        if (!heap_greater(&tr->heap[child], &last)) break;
        tr->heap[i] = tr->heap[child];
        i = child;
    }
    if (n) tr->heap[i] = last;
    return top;
}

static PairRecord *pair_get(Trainer *tr, int left, int right, int create) {
    int inserted;
    int64_t *v = create ? pairmap_put(&tr->pair_index, pair_key(left, right), (int64_t)tr->n_pairs, &inserted)
                        : pairmap_get(&tr->pair_index, pair_key(left, right));
    if (!v) return NULL;
    if (create && inserted) {
        if (tr->n_pairs == tr->cap_pairs) {
            size_t cap = tr->cap_pairs ? tr->cap_pairs * 2 : 1 << 14;
            PairRecord *grown = realloc(tr->pairs, cap * sizeof *grown);
            if (!grown) return NULL;
            tr->pairs = grown;
            tr->cap_pairs = cap;
        }
        PairRecord *p = &tr->pairs[tr->n_pairs++];
        memset(p, 0, sizeof *p);
        p->left = left;
        p->right = right;
    }
    return &tr->pairs[*v];
}

/* Adds delta (> 0) occurrences of (left, right) in word w. */
static int pair_add(Trainer *tr, int left, int right, int w, int64_t delta) {
    PairRecord *p = pair_get(tr, left, right, 1);
    if (!p) return -1;
    p->count += delta;
    if (p->touched_step != tr->step) {
        p->touched_step = tr->step;
        if (tr->n_touched == tr->cap_touched) {
            size_t cap = tr->cap_touched ? tr->cap_touched * 2 : 1024;
            size_t *grown = realloc(tr->touched, cap * sizeof *grown);
            if (!grown) return -1;
            tr->touched = grown;
            tr->cap_touched = cap;
        }
        tr->touched[tr->n_touched++] = (size_t)(p - tr->pairs);
    }
    if (p->n_words == 0 || p->words[p->n_words - 1] != w) {
        if (p->n_words == p->cap_words) {
            int cap = p->cap_words ? p->cap_words * 2 : 4;
            int *grown = realloc(p->words, (size_t)cap * sizeof *grown);
            if (!grown) return -1;
            p->words = grown;
            p->cap_words = cap;
        }
        p->words[p->n_words++] = w;
    }
    return 0;
}

static void pair_sub(Trainer *tr, int left, int right, int64_t delta) {
    PairRecord *p = pair_get(tr, left, right, 0);
    if (p) p->count -= delta;
}

/* --- the vocabulary ------------------------------------------------------------------ */

static int add_token(Trainer *tr, const char *bytes, int len, int *id) {
    int inserted;
    int64_t *v = bytemap_put(&tr->tok_index, bytes, (size_t)len, tr->n_tokens, &inserted);
    if (!v) return -1;
    if (!inserted) {
        *id = (int)*v;
        return 0;
    }
    if (tr->n_tokens == tr->cap_tokens) {
        int cap = tr->cap_tokens ? tr->cap_tokens * 2 : 1024;
        char **b = realloc(tr->tok_bytes, (size_t)cap * sizeof *b);
        if (b) tr->tok_bytes = b;
        int *l = realloc(tr->tok_len, (size_t)cap * sizeof *l);
        if (l) tr->tok_len = l;
        if (!b || !l) return -1;
        tr->cap_tokens = cap;
    }
    char *copy = malloc((size_t)len);
    if (!copy) return -1;
    memcpy(copy, bytes, (size_t)len);
    tr->tok_bytes[tr->n_tokens] = copy;
    tr->tok_len[tr->n_tokens] = len;
    *id = tr->n_tokens++;
    return 0;
}

/* The vocab.json form of a token (malloc'ed). */
static char *token_unicode(const Trainer *tr, int id) {
    int len = tr->tok_len[id];
    char *s = malloc((size_t)len * 2 + 1), *o = s;
    if (!s) return NULL;
    for (int i = 0; i < len; i++) o += utf8_put(o, tr->alphabet.byte_to_cp[(unsigned char)tr->tok_bytes[id][i]]);
    *o = '\0';
    return s;
}

/* --- merging ------------------------------------------------------------------------- */

/* Merges (a, b) -> m in word w (count c), updating the neighbouring pairs. */
static int merge_in_word(Trainer *tr, int w, int a, int b, int m) {
    int *s = tr->sym + tr->sym_start[w];
    int n = tr->sym_len[w];
    int64_t c = tr->word_count[w];
    for (int i = 0; i + 1 < n; i++) {
        if (s[i] != a || s[i + 1] != b) continue;
        pair_sub(tr, a, b, c);
        if (i > 0) {
            pair_sub(tr, s[i - 1], a, c);
            if (pair_add(tr, s[i - 1], m, w, c) != 0) return -1;
        }
        if (i + 2 < n) {
            pair_sub(tr, b, s[i + 2], c);
            if (pair_add(tr, m, s[i + 2], w, c) != 0) return -1;
        }
        s[i] = m;
        memmove(s + i + 1, s + i + 2, (size_t)(n - i - 2) * sizeof *s);
        n--;
    }
    tr->sym_len[w] = n;
    return 0;
}

static int write_outputs(Trainer *tr, const char *out_dir, BpError *err) {
    char vocab_path[4096], merges_path[4096];
    if (make_dirs(out_dir, err) != 0 ||
        path_join(vocab_path, sizeof vocab_path, out_dir, "vocab.json", err) != 0 ||
        path_join(merges_path, sizeof merges_path, out_dir, "merges.txt", err) != 0)
        return -1;
    char **uni = calloc((size_t)tr->n_tokens, sizeof *uni);
    if (!uni) return bp_fail(err, "%s: out of memory", out_dir);
    int rc = -1;
    json_t *vocab = json_object();
    for (int id = 0; id < tr->n_tokens; id++) {
        uni[id] = token_unicode(tr, id);
        if (!uni[id] || !vocab || json_object_set_new(vocab, uni[id], json_integer(id)) != 0) {
            bp_fail(err, "%s: out of memory", vocab_path);
            goto done;
        }
    }
    /* merges.txt first: a vocab.json only ever sits next to the merges it was made with
     * or older ones that are a prefix of them. */
    AtomicFile af;
    if (atomic_open(&af, merges_path, err) != 0) goto done;
    fputs("#version: 0.2\n", af.fp);
    for (int i = 0; i < tr->n_merges; i++)
        fprintf(af.fp, "%s %s\n", uni[tr->merges[i][0]], uni[tr->merges[i][1]]);
    if (ferror(af.fp)) {
        bp_fail(err, "%s: write failed", merges_path);
        atomic_abort(&af);
        goto done;
    }
    if (atomic_commit(&af, err) != 0) goto done;
    char *text = json_dumps(vocab, JSON_PRESERVE_ORDER | JSON_COMPACT);
    if (!text) {
        bp_fail(err, "%s: out of memory", vocab_path);
        goto done;
    }
    size_t text_len = strlen(text);
    text[text_len] = '\n';   /* replaces the NUL; json_dumps' buffer has only that byte */
    rc = write_file_atomic(vocab_path, text, text_len + 1, err);
    free(text);
done:
    for (int id = 0; id < tr->n_tokens; id++) free(uni[id]);
    free(uni);
    json_decref(vocab);
    return rc;
}

static void trainer_free(Trainer *tr) {
    bytemap_free(&tr->word_index);
    free(tr->word_count);
    pretok_free(&tr->pretok);
    free(tr->sym);
    free(tr->sym_start);
    free(tr->sym_len);
    pairmap_free(&tr->pair_index);
    for (size_t i = 0; i < tr->n_pairs; i++) free(tr->pairs[i].words);
    free(tr->pairs);
    free(tr->heap);
    free(tr->touched);
    for (int i = 0; i < tr->n_tokens; i++) free(tr->tok_bytes[i]);
    free(tr->tok_bytes);
    free(tr->tok_len);
    bytemap_free(&tr->tok_index);
    free(tr->merges);
}

static void describe_files(char *out, size_t size, const char *const *files, int n_files) {
    if (n_files == 1) snprintf(out, size, "%s", files[0]);
    else snprintf(out, size, "%s (and %d more files)", files[0], n_files - 1);
}

int tokenizer_train(const char *const *files, int n_files, int vocab_size, const char *out_dir,
                    int verbose, BpError *err) {
    if (vocab_size < 257)
        return bp_fail(err, "%s: vocab size %d is below 257 (256 bytes + <|endoftext|>)", out_dir,
                       vocab_size);
    if (n_files < 1) return bp_fail(err, "%s: no input files", out_dir);
    Trainer tr;
    memset(&tr, 0, sizeof tr);
    byte_alphabet_init(&tr.alphabet);
    int rc = -1;
    double t0 = now_seconds();
    if (bytemap_init(&tr.word_index, 1 << 16) != 0 || bytemap_init(&tr.tok_index, (size_t)vocab_size) != 0 ||
        pairmap_init(&tr.pair_index, 1 << 16) != 0) {
        bp_fail(err, "%s: out of memory", out_dir);
        goto done;
    }
    if (pretok_init(&tr.pretok, err) != 0) goto done;
    for (int f = 0; f < n_files; f++)
        if (docstream_read(files[f], count_piece, count_doc_end, &tr, err) != 0) goto done;
    if (tr.n_words == 0) {
        char names[1024];
        describe_files(names, sizeof names, files, n_files);
        bp_fail(err, "%s: empty corpus (no text to train on)", names);
        goto done;
    }
    if (verbose)
        fprintf(stderr, "tokenizer train: %lld words, %zu distinct (%.1f s)\n", (long long)tr.total_words,
                tr.n_words, now_seconds() - t0);

    /* The 256 byte tokens, in GPT-2's id order. */
    for (int i = 0; i < 256; i++) {
        char byte = (char)tr.alphabet.byte_order[i];
        int id;
        if (add_token(&tr, &byte, 1, &id) != 0) goto oom;
    }
    int byte_id[256];
    for (int i = 0; i < 256; i++) byte_id[tr.alphabet.byte_order[i]] = i;

    /* Words as symbol sequences, and the initial pair counts. */
    size_t total_syms = 0;
    tr.sym_start = malloc(tr.n_words * sizeof *tr.sym_start);
    tr.sym_len = malloc(tr.n_words * sizeof *tr.sym_len);
    if (!tr.sym_start || !tr.sym_len) goto oom;
    for (size_t i = 0; i < tr.word_index.cap; i++) {
        ByteMapSlot *s = &tr.word_index.slots[i];
        if (s->key_off == SIZE_MAX) continue;
        tr.sym_start[s->value] = s->key_off;   /* words are laid out like the arena */
        tr.sym_len[s->value] = (int)s->key_len;
    }
    total_syms = tr.word_index.arena_len;
    tr.sym = malloc((total_syms ? total_syms : 1) * sizeof *tr.sym);
    if (!tr.sym) goto oom;
    for (size_t i = 0; i < total_syms; i++) tr.sym[i] = byte_id[(unsigned char)tr.word_index.arena[i]];
    for (size_t w = 0; w < tr.n_words; w++) {
        int *s = tr.sym + tr.sym_start[w];
        for (int i = 0; i + 1 < tr.sym_len[w]; i++)
            if (pair_add(&tr, s[i], s[i + 1], (int)w, tr.word_count[w]) != 0) goto oom;
    }
    /* Heap entries in pair-creation order, which depends only on the word order; the
     * heap's total order (count, left, right) makes the pops independent of it anyway. */
    for (size_t p = 0; p < tr.n_pairs; p++) {
        HeapEntry e = {tr.pairs[p].count, tr.pairs[p].left, tr.pairs[p].right};
        if (heap_push(&tr, e) != 0) goto oom;
    }

    int target = vocab_size - 1;   /* the last id is <|endoftext|> */
    int cap_merges = target - 256 + 64;   /* more when merges reuse existing tokens */
    tr.merges = malloc((size_t)cap_merges * sizeof *tr.merges);
    if (!tr.merges) goto oom;
    while (tr.n_tokens < target && tr.heap_n) {
        HeapEntry e = heap_pop(&tr);
        PairRecord *p = pair_get(&tr, e.left, e.right, 0);
        if (p->count != e.count) {
            /* Stale: counts only fall between pushes; a rise pushed a new entry. */
            if (p->count > 0 && p->count < e.count) {
                HeapEntry again = {p->count, e.left, e.right};
                if (heap_push(&tr, again) != 0) goto oom;
            }
            continue;
        }
        if (e.count <= 0) continue;
        int a = e.left, b = e.right;
        char buf[1024], *joined = buf;
        int len = tr.tok_len[a] + tr.tok_len[b];
        if (len > (int)sizeof buf && !(joined = malloc((size_t)len))) goto oom;
        memcpy(joined, tr.tok_bytes[a], (size_t)tr.tok_len[a]);
        memcpy(joined + tr.tok_len[a], tr.tok_bytes[b], (size_t)tr.tok_len[b]);
        int m;
        int add_rc = add_token(&tr, joined, len, &m);
        if (joined != buf) free(joined);
        if (add_rc != 0) goto oom;
        if (tr.n_merges == cap_merges) {
            cap_merges *= 2;
            int (*grown)[2] = realloc(tr.merges, (size_t)cap_merges * sizeof *grown);
            if (!grown) goto oom;
            tr.merges = grown;
        }
        tr.merges[tr.n_merges][0] = a;
        tr.merges[tr.n_merges][1] = b;
        tr.n_merges++;
        /* Take the word list: merging adds pairs and may move the pair records. */
        size_t p_index = (size_t)(p - tr.pairs);
        int *words = p->words, n_words = p->n_words;
        p->words = NULL;
        p->n_words = p->cap_words = 0;
        tr.step++;
        tr.n_touched = 0;
        for (int i = 0; i < n_words; i++) {
            if (i > 0 && words[i] == words[i - 1]) continue;
            if (merge_in_word(&tr, words[i], a, b, m) != 0) {
                free(words);
                goto oom;
            }
        }
        free(words);
        tr.pairs[p_index].count = 0;
        /* Pairs whose count rose in this step (those with the new symbol) get a heap
         * entry with their count; the others only lost counts (see the stale rule). */
        for (size_t k = 0; k < tr.n_touched; k++) {
            size_t q = tr.touched[k];
            if (tr.pairs[q].count <= 0) continue;
            HeapEntry ne = {tr.pairs[q].count, tr.pairs[q].left, tr.pairs[q].right};
            if (heap_push(&tr, ne) != 0) goto oom;
        }
        if (verbose && (tr.n_merges % 1000 == 0 || tr.n_tokens == target)) {
            char *shown = token_unicode(&tr, m);
            fprintf(stderr, "tokenizer train: merge %d, vocab %d/%d: \"%s\" (count %lld, %.1f s)\n",
                    tr.n_merges, tr.n_tokens + 1, vocab_size, shown ? shown : "?",
                    (long long)e.count, now_seconds() - t0);
            free(shown);
        }
    }
    int eot;   /* the last id: no merge can make these bytes (the regex splits them) */
    if (add_token(&tr, PRETOK_EOT_TEXT, PRETOK_EOT_LEN, &eot) != 0) goto oom;
    if (verbose && tr.n_tokens < vocab_size)
        fprintf(stderr, "tokenizer train: no pairs left: vocab size %d instead of %d\n", tr.n_tokens,
                vocab_size);
    rc = write_outputs(&tr, out_dir, err);
    if (rc == 0 && verbose)
        fprintf(stderr, "tokenizer train: wrote %s (%d tokens, %d merges, %.1f s)\n", out_dir,
                tr.n_tokens, tr.n_merges, now_seconds() - t0);
    goto done;
oom:
    bp_fail(err, "%s: tokenizer train: out of memory", out_dir);
done:
    trainer_free(&tr);
    return rc;
}
