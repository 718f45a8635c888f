#include "tokenize.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "docstream.h"
#include "tokfile.h"

int tokenize_is_validation(uint64_t doc_index, double val_fraction) {
    return floor((double)(doc_index + 1) * val_fraction) > floor((double)doc_index * val_fraction);
}

/* Does the text of token id end a line (or a document)? */
static int ends_line(const Tokenizer *tok, uint32_t id) {
    if ((int)id == tokenizer_eot(tok)) return 1;
    size_t len;
    const char *bytes = tokenizer_token_bytes(tok, (int)id, &len);
    return bytes && len && bytes[len - 1] == '\n';
}

/* Where the tail of train (about val_fraction of its ids) starts: the line end nearest to
 * the exact share, so that both parts keep at least one id; the exact share when the
 * ids hold no line end. */
static uint64_t tail_start(const Tokenizer *tok, const TokFile *tf, double val_fraction, int *at_line) {
    uint64_t n = tf->count;
    uint64_t target = n - (uint64_t)llround((double)n * val_fraction);
    if (target < 1) target = 1;
    if (target > n - 1) target = n - 1;
    *at_line = 1;
    /* a cut at c keeps ids [0, c) in train: the id at c - 1 must end a line */
    for (uint64_t d = 0;; d++) {
        int in_range = 0;
        if (target + d <= n - 1) {
            in_range = 1;
            if (ends_line(tok, tokfile_get(tf, target + d - 1))) return target + d;
        }
        if (target >= d + 1) {
            in_range = 1;
            if (ends_line(tok, tokfile_get(tf, target - d - 1))) return target - d;
        }
        if (!in_range) break;
    }
    *at_line = 0;
    return target;
}

/* Commits train and validation (the writers are consumed); on failure neither file is
 * left behind. */
static int commit_both(TokFileWriter *w[2], char path[2][4096], BpError *err) {
    TokFileWriter *train = w[0], *val = w[1];
    w[0] = w[1] = NULL;
    if (tokfile_writer_commit(train, err) != 0) {
        tokfile_writer_abort(val);
        return -1;
    }
    if (tokfile_writer_commit(val, err) != 0) {
        remove(path[0]);
        return -1;
    }
    return 0;
}

static int copy_ids(TokFileWriter *w, const TokFile *tf, uint64_t from, uint64_t to, BpError *err) {
    int buf[4096];
    while (from < to) {
        size_t n = 0;
        while (n < sizeof buf / sizeof buf[0] && from < to) buf[n++] = (int)tokfile_get(tf, from++);
        if (tokfile_writer_append(w, buf, n, err) != 0) return -1;
    }
    return 0;
}

/* Too few documents for a validation document: train (committed at path[0]) is split
 * into its head (train) and its tail (validation). On failure path[0] is removed. */
static int split_tail(const Tokenizer *tok, char path[2][4096], double val_fraction,
                      TokenizeStats *stats, BpError *err) {
    TokFile tf;
    if (tokfile_open(&tf, path[0], err) != 0) {
        remove(path[0]);
        return -1;
    }
    int rc = -1;
    TokFileWriter *w[2] = {NULL, NULL};
    if (tf.count < 2) {
        bp_fail(err, "%s: %llu ids, too few to hold out a validation tail", path[0],
                (unsigned long long)tf.count);
        goto done;
    }
    uint64_t cut = tail_start(tok, &tf, val_fraction, &stats->tail_at_line);
    if (tokfile_writer_open(&w[1], path[1], tf.vocab_size, err) != 0 ||
        copy_ids(w[1], &tf, cut, tf.count, err) != 0 ||
        tokfile_writer_open(&w[0], path[0], tf.vocab_size, err) != 0 ||
        copy_ids(w[0], &tf, 0, cut, err) != 0)
        goto done;
    tokfile_writer_set_tokenizer_hash(w[0], tf.tokenizer_hash);
    tokfile_writer_set_tokenizer_hash(w[1], tf.tokenizer_hash);
    if (commit_both(w, path, err) != 0) goto done;
    stats->ids[0] = cut;
    stats->ids[1] = tf.count - cut;
    stats->tail_split = 1;
    rc = 0;
done:
    tokfile_writer_abort(w[0]);
    tokfile_writer_abort(w[1]);
    tokfile_close(&tf);
    if (rc != 0) remove(path[0]);
    return rc;
}

typedef struct {
    const Tokenizer *tok;
    TokFileWriter *out[2];
    double val_fraction;
    TokenizeStats *stats;
    uint64_t doc_index;       /* non-empty documents so far */
    int doc_split;            /* -1 until the document has text */
    int *ids;
    size_t n_ids, cap_ids;
} TokenizeRun;

static int on_piece(void *ctx, const char *text, size_t len, BpError *err) {
    TokenizeRun *r = ctx;
    if (r->doc_split < 0) r->doc_split = tokenize_is_validation(r->doc_index, r->val_fraction);
    r->n_ids = 0;
    if (tokenizer_encode(r->tok, text, len, &r->ids, &r->n_ids, &r->cap_ids, err) != 0) return -1;
    r->stats->bytes += len;
    r->stats->ids[r->doc_split] += r->n_ids;
    return tokfile_writer_append(r->out[r->doc_split], r->ids, r->n_ids, err);
}

static int on_doc_end(void *ctx, BpError *err) {
    TokenizeRun *r = ctx;
    if (r->doc_split < 0) return 0;   /* empty document */
    int eot = tokenizer_eot(r->tok);
    if (tokfile_writer_append(r->out[r->doc_split], &eot, 1, err) != 0) return -1;
    r->stats->ids[r->doc_split]++;
    r->stats->docs[r->doc_split]++;
    r->doc_index++;
    r->doc_split = -1;
    return 0;
}

int tokenize_corpus(const Tokenizer *tok, const char *const *files, int n_files, const char *out_prefix,
                    double val_fraction, TokenizeStats *stats, BpError *err) {
    memset(stats, 0, sizeof *stats);
    if (!(val_fraction >= 0.0 && val_fraction <= 1.0))
        return bp_fail(err, "--val-fraction %g: must be between 0 and 1", val_fraction);
    if (n_files < 1) return bp_fail(err, "%s: no input files", out_prefix);
    if (tokenizer_eot(tok) < 0)
        return bp_fail(err, "tokenizer has no <|endoftext|> token (needed between documents)");
    /* Fail on an unreadable input before writing anything. */
    for (int f = 0; f < n_files; f++) {
        struct stat st;
        FILE *fp = fopen(files[f], "rb");
        if (!fp) return bp_fail_errno(err, "%s: cannot open", files[f]);
        int is_dir = fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode);
        fclose(fp);
        if (is_dir) return bp_fail(err, "%s: is a directory, not a text file", files[f]);
    }
    char path[2][4096];
    if (snprintf(path[0], sizeof path[0], "%s.train.tok", out_prefix) >= (int)sizeof path[0] ||
        snprintf(path[1], sizeof path[1], "%s.val.tok", out_prefix) >= (int)sizeof path[1])
        return bp_fail(err, "%s: path too long", out_prefix);
    TokenizeRun r = {.tok = tok, .val_fraction = val_fraction, .stats = stats, .doc_split = -1};
    int rc = -1;
    uint32_t vocab = (uint32_t)tokenizer_vocab_size(tok);
    if (tokfile_writer_open(&r.out[0], path[0], vocab, err) != 0 ||
        tokfile_writer_open(&r.out[1], path[1], vocab, err) != 0)
        goto done;
    uint64_t hash = tokfile_tokenizer_hash(tok);
    tokfile_writer_set_tokenizer_hash(r.out[0], hash);
    tokfile_writer_set_tokenizer_hash(r.out[1], hash);
    for (int f = 0; f < n_files; f++)
        if (docstream_read(files[f], on_piece, on_doc_end, &r, err) != 0) goto done;
    if (stats->docs[0] + stats->docs[1] == 0) {
        if (n_files == 1) bp_fail(err, "%s: empty corpus (no text to tokenize)", files[0]);
        else bp_fail(err, "%s (and %d more files): empty corpus (no text to tokenize)", files[0], n_files - 1);
        goto done;
    }
    if (commit_both(r.out, path, err) != 0) goto done;
    if (val_fraction > 0 && stats->docs[1] == 0 && split_tail(tok, path, val_fraction, stats, err) != 0) {
        remove(path[1]);
        goto done;
    }
    rc = 0;
done:
    tokfile_writer_abort(r.out[0]);
    tokfile_writer_abort(r.out[1]);
    free(r.ids);
    return rc;
}

int tokenize_parse_ids(const char *text, const char *name, int vocab_size, int **ids_out, size_t *n_out,
                       BpError *err) {
    int *ids = NULL;
    size_t n = 0, cap = 0;
    const char *p = text;
    char *end;
    for (;;) {
        while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' || *p == ',') p++;
        if (!*p) break;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v >= vocab_size) {
            free(ids);
            int shown = (int)strcspn(p, " \t\r\n,");   /* the word, not the next line */
            return bp_fail(err, "%s: '%.*s' is not a token id (0..%d)", name, shown < 20 ? shown : 20, p,
                           vocab_size - 1);
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            int *grown = realloc(ids, cap * sizeof *grown);
            if (!grown) {
                free(ids);
                return bp_fail(err, "%s: out of memory", name);
            }
            ids = grown;
        }
        ids[n++] = (int)v;
        p = end;
    }
    *ids_out = ids;
    *n_out = n;
    return 0;
}
