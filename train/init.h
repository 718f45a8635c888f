/* init.h - a randomly initialized model written as a checkpoint (backpack init).
 *
 * The vocabulary: with a tokenizer directory, the model's vocab_size is the tokenizer's
 * unless given (vocab_size > 0), and then it must be at least the tokenizer's; the
 * tokenizer's files are copied into the checkpoint.
 * The directory: missing or empty, or one that holds only a checkpoint's own files
 * (config.json, model.safetensors, vocab.json, merges.txt, train_state.bin,
 * metrics.jsonl). A model there is replaced only with force. Any other file or
 * directory is refused, force or not: saving swaps in a whole new directory, and the
 * user's files must not go with the old one. */
#ifndef BP_TRAIN_INIT_H
#define BP_TRAIN_INIT_H

#include <stdint.h>

#include "../model/backpack.h"

typedef struct {
    BackpackConfig model;        /* vocab_size 0: the tokenizer's */
    uint64_t seed;
    const char *out_dir;
    const char *tokenizer_dir;   /* NULL: none (then model.vocab_size must be set) */
    int force;                   /* replace a model in out_dir */
} ModelInitOptions;

/* Writes the model; *n_params (may be NULL) gets its parameter count. */
int model_init_write(const ModelInitOptions *o, size_t *n_params, BpError *err);

#endif
