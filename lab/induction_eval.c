/* induction_eval.c - the full models on the induction task. */
#include "induction_eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/backpack.h"
#include "../model/checkpoint.h"
#include "../text/tokfile.h"
#include "induction_data.h"

/* Sequences per forward: enough to fill the sgemms, little memory. */
#define EVAL_BATCH 8

int induction_eval_checkpoint(const char *model_dir, const char *prefix, int max_seqs,
                              InductionScore *score, BpError *err) {
    char tok_path[4096], marks_path[4096];
    memset(score, 0, sizeof *score);
    if (snprintf(tok_path, sizeof tok_path, "%s.val.tok", prefix) >= (int)sizeof tok_path ||
        snprintf(marks_path, sizeof marks_path, "%s.val.marks", prefix) >= (int)sizeof marks_path)
        return bp_fail(err, "%s: path too long", prefix);
    TokFile tf;
    InductionMarks mk;
    Backpack m;
    if (tokfile_open(&tf, tok_path, err) != 0) return -1;
    if (induction_marks_read(&mk, marks_path, err) != 0) {
        tokfile_close(&tf);
        return -1;
    }
    int rc = -1;
    int *inputs = NULL;
    if (mk.count != tf.count) {
        bp_fail(err, "%s: %llu marks for the %llu tokens of %s", marks_path,
                (unsigned long long)mk.count, (unsigned long long)tf.count, tok_path);
        goto close_data;
    }
    if (checkpoint_load(&m, model_dir, err) != 0) goto close_data;
    int T = (int)mk.seq_len, P = T - 1, V = m.config.vocab_size;
    if (P > m.config.n_positions) {
        bp_fail(err, "%s: sequences of %d tokens need %d positions, the model has %d", marks_path, T, P,
                m.config.n_positions);
        goto free_model;
    }
    if (tf.vocab_size > (uint32_t)V) {
        bp_fail(err, "%s: token file vocabulary %u is larger than the model's %d", tok_path, tf.vocab_size, V);
        goto free_model;
    }
    long n_seqs = (long)(mk.count / mk.seq_len);
    if (max_seqs > 0 && max_seqs < n_seqs) n_seqs = max_seqs;
    inputs = malloc((size_t)EVAL_BATCH * P * sizeof *inputs);
    if (!inputs) {
        bp_fail(err, "%s: out of memory", tok_path);
        goto free_model;
    }
    double lic = 0, lg = 0;
    long correct = 0;
    for (long first = 0; first < n_seqs; first += EVAL_BATCH) {
        int B = n_seqs - first < EVAL_BATCH ? (int)(n_seqs - first) : EVAL_BATCH;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < P; t++) inputs[b * P + t] = (int)tokfile_get(&tf, (uint64_t)(first + b) * T + t);
        if (backpack_forward(&m, inputs, NULL, B, P, NULL, err) != 0) goto free_model;
        const float *logits = backpack_logits(&m);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < P; t++) {
                uint64_t at = (uint64_t)(first + b) * T + t + 1;
                int target = (int)tokfile_get(&tf, at), mark = mk.marks[at];
                if (mark == 1) continue;
                const float *row = logits + ((size_t)b * P + t) * V;
                int best = 0;
                for (int j = 1; j < V; j++)
                    if (row[j] > row[best]) best = j;
                double sum = 0;
                for (int j = 0; j < V; j++) sum += exp((double)row[j] - row[best]);
                double nll = log(sum) - ((double)row[target] - row[best]);
                if (mark >= 2) lic += nll, score->n_in_context++, correct += best == target;
                else lg += nll, score->n_global++;
            }
    }
    score->n_seqs = n_seqs;
    score->accuracy = score->n_in_context ? (double)correct / score->n_in_context : NAN;
    score->loss_in_context = score->n_in_context ? lic / score->n_in_context : NAN;
    score->loss_global = score->n_global ? lg / score->n_global : NAN;
    rc = 0;
free_model:
    backpack_free(&m);
close_data:
    free(inputs);
    induction_marks_free(&mk);
    tokfile_close(&tf);
    return rc;
}
