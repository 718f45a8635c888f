/* dataloader.h - batches of training windows from a token file (text/tokfile.h, mmap'ed).
 *
 * A batch is B windows of T+1 consecutive tokens: inputs (B, T) are tokens [s, s+T) and
 * targets (B, T) are tokens [s+1, s+T+1) of each window start s.
 *
 * Shuffled order (training): each epoch cuts the file into non-overlapping windows
 * starting at shift + w*T (shift in [0, T) drawn per epoch, 0 in epoch 0, so window
 * boundaries move between epochs) and visits them in a random permutation. Both the
 * shift and the permutation are functions of (seed, epoch) alone, so the loader's whole
 * position is (epoch, index): saving and restoring those two numbers gives the same
 * batches again. Batches run across epoch ends without a gap.
 *
 * Sequential order (validation): windows at 0, T, 2T, ... in file order, wrapping.
 *
 * Data-parallel training (dataloader_shard): with S processes of B windows each, the
 * global batch is the next S x B windows of the stream above, and process r takes
 * windows [r B, r B + B) of it. The position stays global, so S processes serve the
 * windows one process with batch S x B would, in the same order, each exactly once per
 * epoch, and a run saved with one S may continue with another of the same S x B.
 */
#ifndef BP_DATALOADER_H
#define BP_DATALOADER_H

#include <stdint.h>

#include "../common/error.h"
#include "../text/tokfile.h"

typedef struct {
    uint64_t epoch;       /* epochs completed */
    uint64_t index;       /* windows of this epoch already served */
} DataPosition;

typedef struct {
    TokFile file;
    char path[4096];
    int B, T;
    int shard, shards;    /* this process's slice of a global batch of shards x B */
    int shuffle;
    uint64_t seed;
    DataPosition pos;
    /* the current epoch's windows */
    uint64_t shift;       /* first window start */
    uint64_t num_windows; /* windows in this epoch */
    uint64_t *order;      /* (max windows) window numbers in visiting order */
    uint64_t order_cap;
    int *inputs;          /* (B, T) */
    int *targets;         /* (B, T) */
    uint64_t *starts;     /* (B) first token of each window of the batch */
} DataLoader;

/* Opens path (tokfile_open checks every id against the file's vocabulary) and checks
 * that it has at least T+1 tokens and, when vocab_size > 0, that the file's vocabulary
 * is no larger than the model's vocab_size. */
int dataloader_open(DataLoader *dl, const char *path, int B, int T, int shuffle, uint64_t seed,
                    int vocab_size, BpError *err);
void dataloader_close(DataLoader *dl);

/* Makes this loader serve slice `shard` of `shards` (0 of 1 when never called). */
void dataloader_shard(DataLoader *dl, int shard, int shards);

/* Fills dl->inputs and dl->targets with the next batch and advances the position (past
 * the whole global batch). */
void dataloader_next(DataLoader *dl);

/* Moves to a saved position (from dl->pos). */
void dataloader_seek(DataLoader *dl, DataPosition pos);

/* Tokens in the file. */
static inline uint64_t dataloader_num_tokens(const DataLoader *dl) { return dl->file.count; }

#endif
