/* induction_data.c - the induction task's vocabulary, statistics and sequences. */
#include "induction_data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "../text/corpus_brown.h"
#include "../text/tokenizer.h"
#include "../text/tokfile.h"

void induction_stats_free(InductionStats *s) {
    free(s->unigram);
    free(s->bigram);
    free(s->unigram_cdf);
    free(s->bigram_cdf);
    memset(s, 0, sizeof *s);
}

static void cumulate(const double *p, int n, double *cdf) {
    double acc = 0;
    for (int i = 0; i < n; i++) cdf[i] = (acc += p[i]);
    cdf[n - 1] = 1.0;   /* rounding must never leave a draw past the end */
}

int induction_stats_from_text(InductionStats *s, const char *text, size_t len, int n,
                              BpError *err) {
    memset(s, 0, sizeof *s);
    if (n < 2 || n > INDUCTION_MAX_VOCAB)
        return bp_fail(err, "--n %d: the vocabulary must have 2 to %d symbols", n, INDUCTION_MAX_VOCAB);
    if (len < 2) return bp_fail(err, "corpus: %zu bytes, too short to estimate bigrams", len);
    double byte_count[256] = {0};
    for (size_t i = 0; i < len; i++) byte_count[(unsigned char)text[i]]++;
    int order[256];
    for (int b = 0; b < 256; b++) order[b] = b;
    /* insertion sort: by count descending, then byte ascending */
    for (int i = 1; i < 256; i++) {
        int b = order[i], j = i;
        while (j > 0 && byte_count[order[j - 1]] < byte_count[b]) order[j] = order[j - 1], j--;
        order[j] = b;
    }
    s->n = n;
    for (int i = 0; i < n; i++) s->byte_of_symbol[i] = -1;
    memset(s->symbol_of_byte, n - 1, sizeof s->symbol_of_byte);
    for (int i = 0; i < n - 1 && byte_count[order[i]] > 0; i++) {
        s->symbol_of_byte[order[i]] = (unsigned char)i;
        s->byte_of_symbol[i] = order[i];
    }
    s->unigram = calloc((size_t)n, sizeof *s->unigram);
    s->bigram = calloc((size_t)n * n, sizeof *s->bigram);
    s->unigram_cdf = malloc((size_t)n * sizeof *s->unigram_cdf);
    s->bigram_cdf = malloc((size_t)n * n * sizeof *s->bigram_cdf);
    if (!s->unigram || !s->bigram || !s->unigram_cdf || !s->bigram_cdf) {
        induction_stats_free(s);
        return bp_fail(err, "corpus statistics: out of memory");
    }
    for (size_t i = 0; i < len; i++) {
        int a = s->symbol_of_byte[(unsigned char)text[i]];
        s->unigram[a] += 1;
        if (i + 1 < len) s->bigram[(size_t)a * n + s->symbol_of_byte[(unsigned char)text[i + 1]]] += 1;
    }
    for (int i = 0; i < n; i++) s->unigram[i] /= (double)len;
    for (int i = 0; i < n; i++) {
        double *row = s->bigram + (size_t)i * n, total = 0;
        for (int j = 0; j < n; j++) total += row[j];
        for (int j = 0; j < n; j++) row[j] = total > 0 ? row[j] / total : s->unigram[j];
        cumulate(row, n, s->bigram_cdf + (size_t)i * n);
    }
    cumulate(s->unigram, n, s->unigram_cdf);
    for (int i = 0; i < n; i++) s->by_frequency[i] = i;
    for (int i = 1; i < n; i++) {
        int a = s->by_frequency[i], j = i;
        while (j > 0 && s->unigram[s->by_frequency[j - 1]] < s->unigram[a])
            s->by_frequency[j] = s->by_frequency[j - 1], j--;
        s->by_frequency[j] = a;
    }
    return 0;
}

double induction_bigram_entropy(const InductionStats *s) {
    double h = 0;
    for (int i = 0; i < s->n; i++)
        for (int j = 0; j < s->n; j++) {
            double p = s->bigram[(size_t)i * s->n + j];
            if (p > 0) h -= s->unigram[i] * p * log(p);
        }
    return h;
}

double induction_global_floor(const InductionStats *s, const InductionTask *t, const int *tokens,
                              const unsigned char *marks, int n) {
    double sum = 0;
    long count = 0;
    for (size_t i = 0; i < (size_t)n * t->seq_len; i++) {
        if (i % (size_t)t->seq_len == 0 || marks[i] != 0) continue;
        const double *row = s->bigram + (size_t)tokens[i - 1] * s->n;
        for (int j = 0; j < s->n; j++)
            if (row[j] > 0) sum -= row[j] * log(row[j]);
        count++;
    }
    return count ? sum / count : NAN;
}

int induction_stats_from_brown(InductionStats *s, const char *dir, int n, BpError *err) {
    char tmp[] = "/tmp/backpack-induction-XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0) return bp_fail_errno(err, "%s: cannot create a temporary file", tmp);
    close(fd);
    int docs;
    size_t bytes;
    char *text = NULL;
    size_t len = 0;
    int rc = corpus_brown_convert(dir, tmp, &docs, &bytes, err);
    if (rc == 0) rc = read_file(tmp, &text, &len, err);
    unlink(tmp);
    if (rc == 0) rc = induction_stats_from_text(s, text, len, n, err);
    free(text);
    return rc;
}

int induction_task_validate(const InductionTask *t, int n, BpError *err) {
    if (t->n_triggers < 1 || t->n_triggers >= n)
        return bp_fail(err, "--k %d: the number of triggers must be from 1 to N-1 = %d", t->n_triggers, n - 1);
    if (t->trigger_offset < 0 || t->trigger_offset + t->n_triggers > n)
        return bp_fail(err, "--trigger-offset %d: with %d triggers it must be from 0 to N-K = %d",
                       t->trigger_offset, t->n_triggers, n - t->n_triggers);
    if (t->seq_len < 2 || t->seq_len > INDUCTION_MAX_SEQ_LEN)
        return bp_fail(err, "--t %d: the sequence length must be from 2 to %d", t->seq_len, INDUCTION_MAX_SEQ_LEN);
    return 0;
}

/* Uniform in [0, 1) with 53 random bits. */
static double uniform53(Rng *r) { return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

/* The first i with cdf[i] > u. */
static int draw(const double *cdf, int n, Rng *r) {
    double u = uniform53(r);
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cdf[mid] > u) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

void induction_fixed_triggers(const InductionStats *s, const InductionTask *t, int *triggers) {
    for (int i = 0; i < t->n_triggers; i++) triggers[i] = s->by_frequency[t->trigger_offset + i];
}

/* K distinct symbols from pi_u, each draw from pi_u restricted to the symbols not yet
 * drawn (numpy's choice without replacement). */
static void draw_triggers(const InductionStats *s, int k, Rng *r, int *triggers) {
    unsigned char taken[INDUCTION_MAX_VOCAB] = {0};
    for (int i = 0; i < k; i++) {
        double left = 0;
        for (int j = 0; j < s->n; j++) left += taken[j] ? 0 : s->unigram[j];
        double u = uniform53(r) * left, acc = 0;
        int pick = -1;
        for (int j = 0; j < s->n && !(acc > u); j++)
            if (!taken[j] && s->unigram[j] > 0) acc += s->unigram[j], pick = j;
        /* every symbol of positive frequency taken: the first free one */
        for (int j = 0; pick < 0; j++)
            if (!taken[j]) pick = j;
        taken[pick] = 1;
        triggers[i] = pick;
    }
}

void induction_sequence(const InductionStats *s, const InductionTask *t, Rng *rng, int *tokens,
                        unsigned char *marks, int *triggers, int *outputs) {
    int n = s->n, k = t->n_triggers;
    int q[INDUCTION_MAX_VOCAB], o[INDUCTION_MAX_VOCAB], seen[INDUCTION_MAX_VOCAB] = {0};
    int trigger_of[INDUCTION_MAX_VOCAB];   /* symbol -> trigger number, or -1 */
    if (t->random_triggers) draw_triggers(s, k, rng, q);
    else induction_fixed_triggers(s, t, q);
    for (int i = 0; i < n; i++) trigger_of[i] = -1;
    for (int i = 0; i < k; i++) {
        trigger_of[q[i]] = i;
        o[i] = t->bigram_outputs ? draw(s->bigram_cdf + (size_t)q[i] * n, n, rng) : (int)rng_below(rng, (uint64_t)n);
    }
    tokens[0] = draw(s->unigram_cdf, n, rng);
    marks[0] = 0;
    for (int i = 1; i < t->seq_len; i++) {
        int prev = tokens[i - 1], trig = trigger_of[prev];
        if (trig >= 0) {
            tokens[i] = o[trig];
            seen[trig]++;
            marks[i] = (unsigned char)(seen[trig] < 255 ? seen[trig] : 255);
        } else {
            tokens[i] = draw(s->bigram_cdf + (size_t)prev * n, n, rng);
            marks[i] = 0;
        }
    }
    if (triggers) memcpy(triggers, q, (size_t)k * sizeof *q);
    if (outputs) memcpy(outputs, o, (size_t)k * sizeof *o);
}

static void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

static int write_split(const InductionStats *s, const InductionTask *t, const char *prefix,
                       const char *split, int n_seqs, uint64_t seed, uint32_t file_vocab,
                       uint64_t tokenizer_hash, BpError *err) {
    char tok_path[4096], marks_path[4096];
    if (snprintf(tok_path, sizeof tok_path, "%s.%s.tok", prefix, split) >= (int)sizeof tok_path ||
        snprintf(marks_path, sizeof marks_path, "%s.%s.marks", prefix, split) >= (int)sizeof marks_path)
        return bp_fail(err, "%s: path too long", prefix);
    int T = t->seq_len;
    int *tokens = malloc((size_t)T * sizeof *tokens);
    unsigned char header[INDUCTION_MARKS_HEADER] = {0};
    unsigned char *marks = malloc((size_t)T);
    if (!tokens || !marks) {
        free(tokens);
        free(marks);
        return bp_fail(err, "%s: out of memory", tok_path);
    }
    TokFileWriter *w = NULL;
    AtomicFile af;
    int rc = tokfile_writer_open(&w, tok_path, file_vocab, err);
    if (rc == 0 && tokenizer_hash) tokfile_writer_set_tokenizer_hash(w, tokenizer_hash);
    if (rc == 0 && (rc = atomic_open(&af, marks_path, err)) != 0) tokfile_writer_abort(w);
    if (rc == 0) {
        put_u32(header, INDUCTION_MARKS_MAGIC);
        put_u32(header + 4, INDUCTION_MARKS_VERSION);
        put_u32(header + 8, (uint32_t)T);
        put_u32(header + 12, (uint32_t)t->n_triggers);
        put_u64(header + 16, (uint64_t)n_seqs * (uint64_t)T);
        put_u32(header + 24, (uint32_t)s->n);
        Rng rng;
        rng_seed(&rng, seed);
        rc = atomic_write(&af, header, sizeof header, err);
        for (int i = 0; rc == 0 && i < n_seqs; i++) {
            induction_sequence(s, t, &rng, tokens, marks, NULL, NULL);
            rc = tokfile_writer_append(w, tokens, (size_t)T, err);
            if (rc == 0) rc = atomic_write(&af, marks, (size_t)T, err);
        }
        if (rc == 0) rc = atomic_commit(&af, err);
        else atomic_abort(&af);
        if (rc == 0) rc = tokfile_writer_commit(w, err);
        else tokfile_writer_abort(w);
    }
    free(tokens);
    free(marks);
    return rc;
}

int induction_write_data(const InductionStats *s, const InductionTask *t, const char *prefix,
                         int train_seqs, int val_seqs, uint64_t seed, uint32_t file_vocab,
                         uint64_t tokenizer_hash, BpError *err) {
    if (induction_task_validate(t, s->n, err) != 0) return -1;
    if (file_vocab == 0) file_vocab = (uint32_t)s->n;
    if (file_vocab < (uint32_t)s->n)
        return bp_fail(err, "%s: a token file vocabulary of %u cannot hold the task's %d symbols", prefix,
                       file_vocab, s->n);
    if (train_seqs < 1 || val_seqs < 1) return bp_fail(err, "--train-seqs and --val-seqs must be at least 1");
    /* The validation split has its own stream, so its sequences do not depend on how
     * many training sequences were asked for. */
    if (write_split(s, t, prefix, "train", train_seqs, seed, file_vocab, tokenizer_hash, err) != 0) return -1;
    return write_split(s, t, prefix, "val", val_seqs, seed ^ 0x5851f42d4c957f2dULL, file_vocab, tokenizer_hash,
                       err);
}

void induction_marks_free(InductionMarks *m) {
    free(m->data);
    memset(m, 0, sizeof *m);
}

int induction_marks_read(InductionMarks *m, const char *path, BpError *err) {
    memset(m, 0, sizeof *m);
    size_t len;
    if (read_file(path, &m->data, &len, err) != 0) return -1;
    const unsigned char *h = (const unsigned char *)m->data;
    uint32_t magic = 0, version = 0;
    if (len >= INDUCTION_MARKS_HEADER) {
        memcpy(&magic, h, 4);
        memcpy(&version, h + 4, 4);
        memcpy(&m->seq_len, h + 8, 4);
        memcpy(&m->n_triggers, h + 12, 4);
        memcpy(&m->count, h + 16, 8);
        memcpy(&m->vocab_size, h + 24, 4);
    }
    const char *problem = NULL;
    if (len < INDUCTION_MARKS_HEADER || magic != INDUCTION_MARKS_MAGIC) problem = "not an induction marks file (bad magic)";
    else if (version != INDUCTION_MARKS_VERSION) problem = "unsupported version";
    else if (m->seq_len < 2 || m->seq_len > INDUCTION_MAX_SEQ_LEN) problem = "sequence length out of range";
    else if (m->count != len - INDUCTION_MARKS_HEADER) problem = "size does not match the mark count in the header";
    else if (m->count % m->seq_len != 0) problem = "mark count is not a multiple of the sequence length";
    if (problem) {
        induction_marks_free(m);
        return bp_fail(err, "%s: %s", path, problem);
    }
    m->marks = (unsigned char *)m->data + INDUCTION_MARKS_HEADER;
    return 0;
}

int induction_write_tokenizer(const char *prefix, BpError *err) {
    char dir[4096], tmp[] = "/tmp/backpack-induction-XXXXXX";
    if (snprintf(dir, sizeof dir, "%s.tokenizer", prefix) >= (int)sizeof dir)
        return bp_fail(err, "%s: path too long", prefix);
    int fd = mkstemp(tmp);
    if (fd < 0) return bp_fail_errno(err, "%s: cannot create a temporary file", tmp);
    close(fd);
    /* 256 byte tokens and <|endoftext|>: no merge is trained at 257 ids. */
    const char *files[1] = {tmp};
    int rc = write_file_atomic(tmp, "ab\n", 3, err);
    if (rc == 0) rc = make_dirs(dir, err);
    if (rc == 0) rc = tokenizer_train(files, 1, 257, dir, 0, err);
    unlink(tmp);
    return rc;
}
