/* steer.h - steering a Backpack through its sense weights, the paper's two uses
 * (Hewitt et al. 2023, "Backpack Language Models", sections on control and debiasing):
 * topic control and gender debiasing, and the measures of both. docs/steering.md gives
 * the commands and what we measured.
 *
 * Every steering edit is a sense-weight scaling (store.h EDIT_WEIGHT: alpha_l[i, j] is
 * multiplied by w wherever x_j == x), so its effect on the logits is exact and linear:
 * logits' = logits + sum over the changed (x_j, l) of (w - 1) alpha_l[i, j] E C(x_j)_l.
 * Steering edits are written as ONE edit group (store_edit_commit_group) that one
 * `edit --undo` takes back whole.
 *
 * Topic (the paper's rule, from its code): with t the indicator of the topic words over
 * the vocabulary, every sense (x, l) gets the score
 *     score(x, l) = sum_{w in topic} (E C(x)_l)[w] / max_v (E C(x)_l)[v]
 * (its output-space logits normalized by their largest). The scores of all V k senses
 * are cut at their 60th, 80th and 95th percentiles, and the senses above the 60th get
 * the weights of steer_topic_factors: the paper's table for strengths 1, 2, 3
 * ([1.5 1.5 1.3], [2.2 2.2 1.5], [3.3 3.3 3.0] for the bands >95, 80-95, 60-80),
 * linear between them, 1 at strength 0. The paper also fades the weights during
 * generation once topic words appear ("annealing"); a stored edit is static, so we
 * do not.
 *
 * Debiasing (the paper's method): a list of profession nouns, templates such as
 * "The {} came into the room. When", and two pronouns (he, she). The bias of one
 * (profession, template) is max(p(he)/p(she), p(she)/p(he)) for the next token after
 * the template; the bias of a set is its mean (1 = unbiased). The paper localized the
 * gender to one sense index (its sense 10) by inspection; we pick it by rule: the sense
 * l whose contribution alpha_l E C(x)_l to the logit gap log p(he) - log p(she) is
 * largest in magnitude, averaged over the training pairs. One scalar weight w of that
 * sense, shared by every profession, is then fitted on the training templates to
 * minimize mean bias + |1 - w| (the paper's objective, its regularizer included; the
 * commands' --regularization changes its factor), by a
 * grid over [0, STEER_MAX_WEIGHT] and a golden-section refinement: deterministic. As
 * only the profession's sense changes, log p(he)/p(she) at weight w is
 * gap + (w - 1) delta for each pair, exact, so the fit needs one forward per pair.
 *
 * Word lists (topic words, professions): one word per line; blank lines and lines
 * starting with '#' are skipped; leading and trailing blanks are ignored. A word is the
 * token " word" (GPT-2's mid-sentence form) or else the token "word". Every word can be
 * encoded by a byte-level BPE, so a word is "unknown" exactly when it is no single
 * token: such a word is SKIPPED with a one-line note naming the file, line and its
 * pieces (a sense weight belongs to one token; the paper's code filters its profession
 * list the same way). A list left empty is an error. A line with two words, a NUL byte,
 * invalid UTF-8 or more than STEER_MAX_WORD bytes is an error "FILE:LINE: problem".
 */
#ifndef BP_SENSES_STEER_H
#define BP_SENSES_STEER_H

#include <stdint.h>
#include <stdio.h>

#include "../common/error.h"
#include "../model/backpack.h"
#include "../text/tokenizer.h"
#include "store.h"

#define STEER_MAX_WORD 64        /* bytes of one word in a list */
#define STEER_MAX_TEMPLATE 256   /* bytes of one template */
#define STEER_MAX_STRENGTH 3.0f  /* the paper's strongest setting */
#define STEER_MAX_WEIGHT 3.0     /* the debias fit searches weights in [0, this] */

/* ---- word lists ---------------------------------------------------------------------- */

typedef struct {
    int *tokens;        /* (count) distinct, in file order */
    int count;
    int skipped;        /* words that were no single token */
} SteerWords;

/* Reads a word list by the rules above. Notes about skipped words go to notes (may be
 * NULL), one line each. */
int steer_read_words(const char *path, const Tokenizer *tok, SteerWords *out, FILE *notes,
                     BpError *err);
void steer_words_free(SteerWords *w);
/* The single token of `word` (" word", else "word"), or -1 with err set. */
int steer_word_token(const Tokenizer *tok, const char *word, BpError *err);

/* ---- topic ----------------------------------------------------------------------------- */

/* One sense and the factor its weight is multiplied by. */
typedef struct {
    int token, sense;
    float factor;
} SteerWeight;

typedef struct {
    SteerWeight *items;  /* (count), by token then sense */
    int count;
    float cut[3];        /* the 60th, 80th, 95th percentiles of the scores */
    float factors[3];    /* the bands' factors: 60-80, 80-95, >95 */
} SteerPlan;

/* The band factors for a strength in [0, STEER_MAX_STRENGTH]: 60-80, 80-95, >95. */
void steer_topic_factors(float strength, float factors[3]);

/* score(x, l) for every sense in force of the store, into scores (V, k): the sense
 * vectors and their largest logits are read from the store. */
int steer_topic_scores(SenseStore *s, const SteerWords *topic, float *scores, BpError *err);

/* The senses above the 60th percentile of scores (V, k) with their factors for
 * strength (none when every factor is 1). */
int steer_topic_plan(const float *scores, int V, int k, float strength, SteerPlan *out, BpError *err);
void steer_plan_free(SteerPlan *p);

/* The plan as in-memory edits for the model (weights only, vectors NULL), for
 * measuring without writing: weight = factor (on an unedited model). items is
 * malloc'ed: free(out->items). */
int steer_plan_edits(const SteerPlan *p, SenseEdits *out, BpError *err);

/* Writes the plan as one edit group: each sense's weight in force times its factor. */
int steer_plan_commit(SenseStore *s, const SteerPlan *p, const char *description, int64_t *edit_id,
                      BpError *err);

/* ---- debiasing ----------------------------------------------------------------------- */

typedef struct {
    char (*train)[STEER_MAX_TEMPLATE];
    int n_train;
    char (*test)[STEER_MAX_TEMPLATE];
    int n_test;
} SteerTemplates;

/* Reads a templates file: lines "train: TEXT" or "test: TEXT", TEXT holding exactly one
 * "{}" where the profession goes; '#' lines and blank lines skipped; at least one of
 * each. path NULL gives the paper's templates (5 train, 13 test). */
int steer_read_templates(const char *path, SteerTemplates *out, BpError *err);
void steer_templates_free(SteerTemplates *t);

/* One (profession, template): the logit gap log p(he) - log p(she) after the template,
 * with the model's edits in force, and for every sense l the part of that gap that the
 * profession's sense l contributes: delta[l] = sum_j alpha_l[last, j] (E[he] - E[she])
 * . C(x)_l over the positions j holding the profession. */
typedef struct {
    int profession;
    float gap;
    float *delta;        /* (k) */
} BiasPair;

typedef struct {
    BiasPair *pairs;
    int count;
    int k;
    float *storage;      /* private */
} BiasPairs;

/* The pairs of professions x templates, one forward each (m->edits in force). A
 * template whose encoding does not contain the profession's token (BPE merged it with
 * a neighbour) is skipped with a note. Backpack models only. */
int steer_bias_pairs(const Backpack *m, const Tokenizer *tok, const SteerWords *professions,
                     char (*templates)[STEER_MAX_TEMPLATE], int n_templates, int he, int she,
                     BiasPairs *out, FILE *notes, BpError *err);
void steer_bias_pairs_free(BiasPairs *p);

/* Mean bias of the pairs when sense `sense` of the professions has its weight in force
 * multiplied by w (sense -1 or w 1: as they are). */
double steer_bias(const BiasPairs *p, int sense, double w);

/* The sense index by the rule above (largest mean |delta|). */
int steer_pick_sense(const BiasPairs *train);

/* Minimizes f(w) + reg |1 - w| over [0, STEER_MAX_WEIGHT] (reg 1 is the paper's
 * objective; 0 minimizes the bias alone): a grid of step 0.01, then 40 golden-section
 * steps around its best. f is called with ctx. */
double steer_fit_weight(double (*f)(double w, void *ctx), void *ctx, double reg);

/* The fitted weight for `sense` on the training pairs. */
double steer_fit_sense_weight(const BiasPairs *train, int sense, double reg);

/* Writes the debiasing edit as one group: the weight in force of `sense` of every
 * profession times w. */
int steer_debias_commit(SenseStore *s, const SteerWords *professions, int sense, double w,
                        const char *description, int64_t *edit_id, BpError *err);

/* ---- the Transformer baseline: projecting the pronoun direction out -------------------- */

/* Mean bias of a model of either architecture over professions x templates, computed by
 * full forwards (no shortcut), for the measures. */
int steer_bias_forward(const Backpack *m, const Tokenizer *tok, const SteerWords *professions,
                       char (*templates)[STEER_MAX_TEMPLATE], int n_templates, int he, int she,
                       double *bias, BpError *err);

/* The paper's baseline for a Transformer: the input embedding e of every profession
 * becomes e - (1 - w) (e . g / g . g) g with g = E[she] - E[he] (w = 0 projects the
 * direction out), w fitted on the training templates like the Backpack's weight. The
 * model is restored bit for bit before returning. Reports the held-out bias at w = 1
 * and at the fitted w. */
typedef struct {
    double weight;
    double bias_before, bias_after;
    double train_before, train_after;
} ProjectionResult;
int steer_projection_baseline(Backpack *m, const Tokenizer *tok, const SteerWords *professions,
                              const SteerTemplates *t, int he, int she, double reg, ProjectionResult *out,
                              BpError *err);

/* ---- topic measure ------------------------------------------------------------------- */

typedef struct {
    int samples;         /* per prompt */
    int max_tokens;      /* new tokens per sample */
    float temperature, top_p;
    uint64_t seed;
    int eot;             /* the end-of-text token, which ends a sample; -1: none */
} TopicMeasureConfig;

typedef struct {
    int generations;
    double hit_share;    /* generations with at least one topic token */
    double perplexity;   /* of the generated tokens under the unedited model */
} TopicMeasure;

/* Reads prompts, one per line ('#' lines and blank lines skipped), encoded with tok:
 * ids[i] (lens[i] tokens, at least one) malloc'ed; free with steer_prompts_free. path
 * NULL gives one prompt, the end-of-text token alone (the paper's unconditional
 * samples). */
int steer_read_prompts(const char *path, const Tokenizer *tok, int ***ids, int **lens, int *n, BpError *err);
void steer_prompts_free(int **ids, int *lens, int n);

/* Samples cfg->samples continuations of every prompt with `edits` in force (NULL: none)
 * and scores them. prompts are token ids (each at least one token). Deterministic for
 * a seed. */
int steer_measure_topic(const Backpack *m, const SenseEdits *edits, const SteerWords *topic,
                        int *const *prompts, const int *prompt_lens, int n_prompts,
                        const TopicMeasureConfig *cfg, TopicMeasure *out, BpError *err);

#endif
