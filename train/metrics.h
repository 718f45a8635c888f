/* metrics.h - metrics.jsonl of a run: one JSON object per line, appended as training
 * goes (the line formats are in trainer.h). The file lives in the checkpoint directory,
 * which every save swaps whole, so the writer reopens it after each save. */
#ifndef BP_METRICS_H
#define BP_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "../common/error.h"
#include "trainer.h"

typedef struct {
    char path[4096];            /* out_dir/metrics.jsonl */
    FILE *fp;                   /* NULL: closed, writes are dropped */
} Metrics;

/* Sets the path under out_dir; opens nothing. */
int metrics_init(Metrics *mt, const char *out_dir, BpError *err);
/* Opens (or reopens, after a save swapped the directory) for appending. */
int metrics_open(Metrics *mt, BpError *err);
void metrics_close(Metrics *mt);

/* A resumed run: brings resume_dir's metrics.jsonl over when the output directory is
 * another one, and truncates it to `bytes` (the lines after the checkpoint describe
 * steps that are about to be redone). */
int metrics_rewind(Metrics *mt, const char *resume_dir, uint64_t bytes, BpError *err);

/* Flushes and returns the file's length (0 when it does not exist). */
uint64_t metrics_bytes(Metrics *mt);

void metrics_step(Metrics *mt, const StepReport *r);
void metrics_eval(Metrics *mt, uint64_t step, double val_loss, uint64_t tokens, double elapsed);

#endif
