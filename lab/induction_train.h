/* induction_train.h - training the simplified induction model (induction_model.h) on
 * fresh sequences of the task (induction_data.h), as the paper does: every step draws a
 * new batch, so there is no epoch and no overfitting.
 *
 * Every eval_every steps (and after the last) it measures, on a fixed held-out set of
 * eval_seqs sequences: in-context accuracy, the loss on in-context targets and on
 * global-bigram tokens (mark 0), and the memory recalls; each measure goes to the
 * report callback and, as one JSON object per line, to out_dir/metrics.jsonl
 * (rewritten atomically after each measure):
 *   {"step": 40, "train_loss": 2.91, "accuracy": 0.31, "loss_in_context": 2.9,
 *    "loss_global": 3.1, "wo2": 0.8, "wk2": 0.1, "wk1": 0.02, "seconds": 3.2}
 * The report also gets the least possible loss_global of the held-out set.
 * A recall that is undefined for the configuration (W_K2 with one layer) is null.
 */
#ifndef BP_LAB_INDUCTION_TRAIN_H
#define BP_LAB_INDUCTION_TRAIN_H

#include <stdint.h>

#include "induction_data.h"
#include "induction_model.h"

#define INDUCTION_MAX_FREEZES 8

typedef struct {
    InductionConfig model;
    InductionTask task;
    int batch, steps;
    double lr, momentum, weight_decay;
    uint64_t seed;           /* weights, training batches and the held-out set */
    int eval_every, eval_seqs;
    int ideal;               /* set the ideal memories and do not train */
    double ideal_beta, ideal_gamma;
    int n_freezes;           /* matrices (mask bits of induction_model.h) frozen before a step */
    unsigned freeze_mask[INDUCTION_MAX_FREEZES];
    int freeze_until[INDUCTION_MAX_FREEZES];
    const char *out_dir;     /* metrics.jsonl goes here; NULL: nowhere */
} InductionRun;

/* The paper's recipe scaled to this machine; see docs/induction.md. */
void induction_run_defaults(InductionRun *r);

typedef struct {
    int step;
    double train_loss;       /* of the last training batch (NAN before the first step) */
    double accuracy;         /* on the in-context targets of the held-out set */
    double loss_in_context, loss_global;
    long n_in_context;
    InductionRecalls recalls;
    double global_floor;     /* the least possible loss_global (induction_global_floor) */
    double seconds;
} InductionMeasure;

typedef void (*InductionReport)(const InductionMeasure *m, void *ctx);

/* Trains (or sets the ideal memories) and measures; *last gets the final measure. */
int induction_run(const InductionRun *r, const InductionStats *s, InductionReport report,
                  void *ctx, InductionMeasure *last, BpError *err);

#endif
