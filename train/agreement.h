/* agreement.h - what the processes of a data-parallel run must share before they train
 * together: the same configuration (every flag that changes the arithmetic) and the same
 * data. Each process describes its own; the trainer compares them with rank 0's and
 * names the first difference. */
#ifndef BP_AGREEMENT_H
#define BP_AGREEMENT_H

#include <stdint.h>

#include "../text/tokfile.h"
#include "trainer.h"

/* The flag (e.g. "--batch") by which b differs from a in what the processes must share,
 * or NULL. Paths and --threads may differ (a node has its own file system and cores). */
const char *train_config_difference(const TrainConfig *a, const TrainConfig *b);

/* A token file, as far as a comparison needs: its header and the FNV-1a hash of up to
 * 2^20 ids spread evenly over it (all of a smaller file). */
typedef struct {
    uint64_t count;
    uint64_t vocab_size;
    uint64_t hash;
} TokFileFingerprint;

TokFileFingerprint tokfile_fingerprint(const TokFile *tf);

#endif
