/* tokenize.h - a text corpus into token files for training (backpack tokenize).
 *
 * Documents: each input file, and each "<|endoftext|>"-separated part of a file
 * (docstream.h: one newline next to a separator is not part of a document). Empty
 * documents are skipped. Each document's ids are followed by the <|endoftext|> id in
 * the file of its split.
 * Split (deterministic, by document): the documents are numbered 0, 1, 2, ... in input
 * order; document i goes to validation when floor((i + 1) * F) > floor(i * F), i.e.
 * every (1/F)-th document: an exact share F of the documents, spread evenly over the
 * corpus (for Brown, whose files are grouped by genre, every genre is in both splits).
 * Too few documents (none goes to validation, e.g. one large text file): the tail of
 * the training ids, a share F of them, becomes the validation file instead, cut at the
 * line end nearest to the exact share (at the exact share when there is none); the
 * stats say so (tail_split), and the document counts stay those of the documents.
 * Streaming: files are read in chunks (docstream.h) and ids are appended to the output
 * as they come; memory does not grow with the corpus. Outputs are written atomically
 * (PREFIX.train.tok, PREFIX.val.tok); on any error neither is left behind.
 */
#ifndef BP_TEXT_TOKENIZE_H
#define BP_TEXT_TOKENIZE_H

#include <stdint.h>

#include "../common/error.h"
#include "tokenizer.h"

typedef struct {
    uint64_t docs[2];      /* documents in train, validation */
    uint64_t ids[2];       /* ids written to train, validation (separators included) */
    uint64_t bytes;        /* text bytes encoded */
    int tail_split;        /* 1: validation is the tail of the ids, not whole documents */
    int tail_at_line;      /* 1: that tail starts after a line end */
} TokenizeStats;

/* Is document i a validation document for fraction f? */
int tokenize_is_validation(uint64_t doc_index, double val_fraction);

int tokenize_corpus(const Tokenizer *tok, const char *const *files, int n_files, const char *out_prefix,
                    double val_fraction, TokenizeStats *stats, BpError *err);

/* Token ids written as text (backpack tokenizer decode): decimal ids separated by
 * whitespace or commas, each below vocab_size. *ids (malloc'ed) gets *n ids; an error
 * names `name` and the text that is not an id. */
int tokenize_parse_ids(const char *text, const char *name, int vocab_size, int **ids, size_t *n,
                       BpError *err);

#endif
