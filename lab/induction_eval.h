/* induction_eval.h - in-context accuracy of a checkpoint of the full models (a Backpack
 * or the Transformer baseline, model/checkpoint.h) on induction-task files
 * (induction_data.h): each sequence of PREFIX.val.tok is run through the model's
 * training forward from its start, and the argmax after z_{t-1} is compared with z_t
 * at every in-context target (mark >= 2 in PREFIX.val.marks). */
#ifndef BP_LAB_INDUCTION_EVAL_H
#define BP_LAB_INDUCTION_EVAL_H

#include "../common/error.h"

typedef struct {
    double accuracy;          /* on the in-context targets */
    double loss_in_context;   /* mean cross-entropy on them */
    double loss_global;       /* ... on the tokens drawn from pi_b (mark 0) */
    long n_in_context, n_global, n_seqs;
} InductionScore;

/* max_seqs > 0 evaluates only the first max_seqs sequences. */
int induction_eval_checkpoint(const char *model_dir, const char *prefix, int max_seqs,
                              InductionScore *score, BpError *err);

#endif
