/* induction_data.h - the synthetic task of "Birth of a Transformer: a memory viewpoint"
 * (docs/induction.md): character bigram sequences in which K trigger tokens are always
 * followed by an output token that is new in each sequence.
 *
 * Vocabulary: the N-1 most frequent bytes of a corpus (ids 0..N-2, most frequent first,
 * ties by byte value) and one "other" symbol (id N-1) for every remaining byte.
 * pi_u and pi_b(.|i) are the unigram and bigram frequencies of the folded corpus; a
 * symbol never followed by anything gets pi_b(.|i) = pi_u.
 *
 * A sequence of T tokens z_0..z_{T-1}: K distinct triggers q_k (fixed: the K symbols of
 * largest pi_u, ties by id, or those ranked M..M+K-1 with trigger_offset M; random: drawn from pi_u without replacement per sequence),
 * an output o_k per trigger (uniform over the N symbols, or drawn from pi_b(.|q_k)),
 * z_0 ~ pi_u, then z_t = o_k when z_{t-1} = q_k, else z_t ~ pi_b(.|z_{t-1}).
 * The mark of z_t is the occurrence number c of the trigger that produced it (z_{t-1} is
 * the c-th occurrence of q_k in the sequence, capped at 255), 0 for a token drawn from
 * pi_u or pi_b. The in-context targets are the tokens with mark >= 2: the first
 * occurrence of a trigger cannot tell its output, every later one can.
 *
 * Files written by induction_write_data (PREFIX = --out):
 *   PREFIX.train.tok, PREFIX.val.tok     token files (text/tokfile.h), the sequences one
 *                                        after the other: ids 0..N-1, the header's
 *                                        vocabulary N or the one given (a tokenizer's)
 *   PREFIX.train.marks, PREFIX.val.marks one mark byte per token of the token file:
 *     offset 0   uint32 magic   0x4D4B4942 ("BIKM")
 *     offset 4   uint32 version 1
 *     offset 8   uint32 seq_len T
 *     offset 12  uint32 n_triggers K
 *     offset 16  uint64 count   number of marks, equal to the token file's count
 *     offset 24  uint32 vocab_size N
 *     offset 28  ...   reserved, zero, up to offset 64
 *     offset 64  count marks (uint8), count a multiple of T
 * Everything is a function of (corpus, N, task, seed): the same arguments write the same
 * bytes. */
#ifndef BP_LAB_INDUCTION_DATA_H
#define BP_LAB_INDUCTION_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "../common/rng.h"

#define INDUCTION_MAX_VOCAB 256
#define INDUCTION_MARKS_MAGIC 0x4D4B4942u
#define INDUCTION_MARKS_VERSION 1u
#define INDUCTION_MARKS_HEADER 64
#define INDUCTION_MAX_SEQ_LEN 65536

typedef struct {
    int n;                          /* N symbols */
    unsigned char symbol_of_byte[256];
    int byte_of_symbol[INDUCTION_MAX_VOCAB]; /* -1 for "other" */
    double *unigram;                /* (N) pi_u */
    double *bigram;                 /* (N, N) row i is pi_b(.|i) */
    double *unigram_cdf;            /* (N) cumulative, for sampling */
    double *bigram_cdf;             /* (N, N) */
    int by_frequency[INDUCTION_MAX_VOCAB]; /* symbols by decreasing pi_u, ties by id */
} InductionStats;

/* Folds text to n symbols (2 <= n <= 256) and estimates pi_u and pi_b. */
int induction_stats_from_text(InductionStats *s, const char *text, size_t len, int n,
                              BpError *err);
/* The same from the tagged Brown corpus directory (text/corpus_brown.h's conversion). */
int induction_stats_from_brown(InductionStats *s, const char *dir, int n, BpError *err);
void induction_stats_free(InductionStats *s);

/* sum_i pi_u(i) H(pi_b(.|i)) in nats: the corpus' bigram entropy. */
double induction_bigram_entropy(const InductionStats *s);


typedef struct {
    int n_triggers;       /* K, 1 <= K < N */
    int seq_len;          /* T, 2 <= T <= INDUCTION_MAX_SEQ_LEN */
    int random_triggers;  /* 0: the K most frequent symbols; 1: drawn from pi_u per sequence */
    int trigger_offset;   /* fixed triggers: skip the M most frequent symbols first (rarer
                             triggers; the authors' special_toks_offset) */
    int bigram_outputs;   /* 0: outputs uniform; 1: drawn from pi_b(.|q_k) */
} InductionTask;

int induction_task_validate(const InductionTask *t, int n, BpError *err);

/* The mean of H(pi_b(.|z_{t-1})) over the tokens z_t of mark 0 (t >= 1) of n sequences
 * (n, T): the least mean loss a model can have on those global-bigram tokens. */
double induction_global_floor(const InductionStats *s, const InductionTask *t, const int *tokens,
                              const unsigned char *marks, int n);

/* One sequence: tokens (T) and marks (T); triggers and outputs (K each) may be NULL. */
void induction_sequence(const InductionStats *s, const InductionTask *t, Rng *rng, int *tokens,
                        unsigned char *marks, int *triggers, int *outputs);

/* The fixed triggers (K symbols by decreasing pi_u from rank trigger_offset), into
 * triggers (K). */
void induction_fixed_triggers(const InductionStats *s, const InductionTask *t, int *triggers);

/* Writes PREFIX.{train,val}.{tok,marks} (atomically). The token files declare the
 * vocabulary file_vocab (0: N; else at least N) and record tokenizer_hash (0: none), so
 * that they can name a tokenizer (tokfile_tokenizer_hash) that `backpack train` checks. */
int induction_write_data(const InductionStats *s, const InductionTask *t, const char *prefix,
                         int train_seqs, int val_seqs, uint64_t seed, uint32_t file_vocab,
                         uint64_t tokenizer_hash, BpError *err);

/* Writes PREFIX.tokenizer/ (vocab.json, merges.txt): GPT-2's 256 byte tokens and
 * <|endoftext|>, 257 ids. It encodes nothing of the task; it exists so that
 * `backpack train --tokenizer PREFIX.tokenizer` builds a model whose vocabulary (257)
 * holds the task's N <= 256 ids. */
int induction_write_tokenizer(const char *prefix, BpError *err);

/* A marks file read whole and validated against its header. */
typedef struct {
    uint32_t seq_len, n_triggers, vocab_size;
    uint64_t count;
    unsigned char *marks;   /* (count) */
    char *data;             /* private: the file */
} InductionMarks;

int induction_marks_read(InductionMarks *m, const char *path, BpError *err);
void induction_marks_free(InductionMarks *m);

#endif
