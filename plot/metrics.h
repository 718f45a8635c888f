/* metrics.h - a training run's metrics.jsonl read back for plotting.
 *
 * train/trainer.c appends one JSON object a line: after every step
 *     {"step": N, "loss": X, "lr": X, "grad_norm": X, "tokens": N, "elapsed": S, "tokens_per_s": X}
 * and after every evaluation
 *     {"step": N, "val_loss": X, "val_ppl": X, "tokens": N, "elapsed": S}
 * (elapsed: seconds of training over all sessions). Other keys are ignored.
 *
 * The file is untrusted. An incomplete LAST line (a run killed mid-write, or one still
 * writing) is skipped and described in `note`; any other line that is not such an
 * object is an error "FILE:LINE: <problem>", and so is a file without one valid line.
 */
#ifndef BP_PLOT_METRICS_H
#define BP_PLOT_METRICS_H

#include <stddef.h>

#include "../common/error.h"

typedef struct {
    /* training steps, in file order */
    double *step, *tokens, *elapsed, *loss, *lr, *grad_norm;
    int n;
    /* evaluations */
    double *val_step, *val_tokens, *val_elapsed, *val_loss;
    int n_val;
    char note[BP_ERROR_MAX];   /* non-empty when a line was skipped */
} RunMetrics;

/* Reads path (a metrics.jsonl file). On failure *out is empty (free is still safe). */
int run_metrics_read(const char *path, RunMetrics *out, BpError *err);
void run_metrics_free(RunMetrics *m);

#endif
