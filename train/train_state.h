/* train_state.h - train_state.bin, what a checkpoint needs beyond the weights to continue
 * a run exactly: the optimizer moments, the progress counters, the dropout RNG, the data
 * position and the TrainConfig. The format (native byte order, no padding):
 *   char[8]  "BPTRAIN\0"        u32 version (2)
 *   char[17] weights hash (backpack_weights_hash of the model saved beside it)
 *   u64 num_parameters
 *   the TrainConfig, field by field (strings as u32 length + bytes; floats as their bits)
 *   u64 step, u64 tokens, f64 elapsed, f64 warmup_progress, f64 last_val_loss
 *   u64[4] dropout RNG state, u64 data epoch, u64 data index
 *   u64 metrics_bytes (length of metrics.jsonl when saved: a resume truncates to it)
 *   u64 adam t, f32[num_parameters] m, f32[num_parameters] v
 *   u64 hash64 (common/hash.h) of every byte before it (version 1 had byte-wise FNV-1a)
 * The moments are always whole (a sharded optimizer gathers them first) and the saved
 * TrainConfig's batch is the global batch (processes x per-process batch: what one
 * process would use), so the file is the same whatever the number of processes.
 */
#ifndef BP_TRAIN_STATE_H
#define BP_TRAIN_STATE_H

#include <stdint.h>

#include "../common/error.h"
#include "../common/rng.h"
#include "../model/backpack.h"
#include "dataloader.h"
#include "trainer.h"

typedef struct {
    uint64_t step;
    uint64_t tokens;
    double elapsed;
    double warmup_progress;     /* progress when warmup ended (valid once step >= warmup) */
    double last_val_loss;
    Rng dropout_rng;
    DataPosition data;          /* global: windows served to all processes together */
    uint64_t metrics_bytes;
} TrainProgress;

/* AdamW's state, whole: m and v hold num_parameters floats each. */
typedef struct {
    uint64_t t;
    float *m;
    float *v;
} TrainMoments;

/* Writes dir/TRAIN_STATE_FILE (atomically) for the model m. */
int train_state_write(const char *dir, const TrainConfig *cfg, const Backpack *m,
                      const TrainMoments *mom, const TrainProgress *p, BpError *err);

/* Reads dir/TRAIN_STATE_FILE, checking that it belongs to the weights of m (same
 * parameter count and hash), into *p and into mom->m, mom->v (num_parameters each), and
 * the saved configuration into *saved unless NULL. */
int train_state_read(const char *dir, const Backpack *m, TrainMoments *mom, TrainProgress *p,
                     TrainConfig *saved, BpError *err);

#endif
