/* model_runs.h - the browser's model (--model): the prompt, its next-token predictions
 * and their causes, and the scheduler that computes them one token at a time between
 * keys, so the screens answer keys while a prompt or an edit preview runs.
 *
 * A prediction explains itself: word x_j's sense l adds alpha_l[last, j] *
 * (E C(x_j)_l)[t] to the logit of token t, and the logit is exactly the sum of these
 * over (j, l) (model/infer.h), so the largest terms are the (context word, sense) pairs
 * that caused it.
 *
 * Two runs are wanted: the prompt with the edits in force ("before", with the
 * contributions), and, while an edit is pending, the prompt with the edits in force
 * plus the pending one ("after"). Each result is keyed by what it was made for (the
 * prompt, the edits in force, the pending edit), so a change drops a stale run and the
 * next runs_work starts the one now wanted.
 *
 * The prompt and its greedy continuation share the model's context (at most 256
 * positions here): the continuation takes at most half of it, so a prompt always keeps
 * at least one token, and a longer prompt keeps its last tokens.
 */
#ifndef BP_TUI_MODEL_RUNS_H
#define BP_TUI_MODEL_RUNS_H

#include "../model/infer.h"
#include "../senses/store.h"
#include "../text/tokenizer.h"

#define RUNS_TOP_PREDICTIONS 10
#define RUNS_CONTRIBUTIONS 12   /* (context word, sense) pairs kept per prediction */
#define RUNS_CONTINUATION 8     /* greedy tokens after the prompt, at most */
#define RUNS_MAX_CONTEXT 256    /* positions the caches hold, at most */

typedef struct {
    int context_pos;        /* j */
    int token;              /* x_j */
    int sense;              /* l */
    float alpha;            /* alpha_l[last, j] */
    float score;            /* (E C(x_j)_l)[t] */
    float contribution;     /* alpha * score */
} Contribution;

/* What a run was made for: a prompt, the edits in force, the pending edit (0: none). */
typedef struct {
    long prompt_version, edits_version, preview_id;
} RunKey;

/* A run on the prompt: next-token top predictions and a greedy continuation. */
typedef struct {
    int valid;              /* complete (or failed: error set) for `key` */
    RunKey key;
    WordScore top[RUNS_TOP_PREDICTIONS];  /* score = probability */
    int n_top;
    int continuation[RUNS_CONTINUATION];
    int n_continuation;
    char error[BP_ERROR_MAX];
} Prediction;

typedef enum { JOB_NONE = 0, JOB_PROMPT, JOB_AFTER } JobKind;

/* The run under way. */
typedef struct {
    JobKind kind;
    RunKey key;
    int fed;                /* prompt tokens fed */
    const float *logits;    /* of the last step */
    Prediction result;
    SenseEdit *composed;    /* JOB_AFTER: the edits in force with the pending edit on top */
    SenseEdits edits;
} ModelJob;

typedef struct {
    Backpack model;
    Tokenizer *tokenizer;   /* NULL when the model directory has none */
    char tokenizer_error[BP_ERROR_MAX];
    InferState infer;
    SenseEdits edits_in_force;
    long edits_version;     /* bumped by every reload of the edits in force */

    /* the prompt */
    int *tokens;            /* (infer.max_len - continuation_len) */
    int n_tokens;
    int continuation_len;
    long prompt_version;    /* bumped by every new prompt */
    Prediction pred;        /* with the edits in force */
    Contribution contrib[RUNS_TOP_PREDICTIONS][RUNS_CONTRIBUTIONS];  /* largest first */
    int n_contrib[RUNS_TOP_PREDICTIONS];
    float logit[RUNS_TOP_PREDICTIONS];  /* the sum of all contributions */

    /* the pending edit (borrowed: its owner clears it before freeing it) */
    const EditPreview *preview;
    long preview_id;
    Prediction after;       /* with the edits in force plus the pending edit */

    ModelJob job;
    LayerPlan plan;         /* with --layers (model.plan points here) */
} ModelRuns;

/* Loads the model in model_dir, checks it against the store (the model the database
 * was exported from) and reads the edits in force. Without tokenizer files it still
 * opens (the senses browse); only prompts need them. */
int runs_open(ModelRuns *r, const char *model_dir, SenseStore *store, BpError *err);
void runs_close(ModelRuns *r);
/* Runs the model's blocks as plan_text (model/plan.h) from now on; before any prompt.
 * On error the message quotes the plan and points at the bad character. */
int runs_set_layers(ModelRuns *r, const char *plan_text, BpError *err);
/* Rereads the edits in force from the store (after a save or an undo). */
int runs_reload_edits(ModelRuns *r, SenseStore *store, BpError *err);

/* Encodes text as the new prompt. Empty text clears the prompt. A prompt longer than
 * the context leaves for it keeps its last tokens: *kept is then their count, else 0. */
int runs_set_prompt(ModelRuns *r, const char *text, size_t len, int *kept, BpError *err);
/* The pending edit, or NULL for none. */
void runs_set_preview(ModelRuns *r, const EditPreview *preview);

/* The results are complete for the prompt, the edits in force (and the pending edit). */
int runs_prompt_current(const ModelRuns *r);
int runs_after_current(const ModelRuns *r);
/* ... and the prompt's run did not fail. */
int runs_prompt_ready(const ModelRuns *r);
/* Tokens through the model so far, of the total, for the run that computes `kind`. */
void runs_progress(const ModelRuns *r, JobKind kind, int *done, int *total);

/* 1 while a run is wanted or under way. */
int runs_busy(ModelRuns *r);
/* One step (one token through the model); returns runs_busy(). */
int runs_work(ModelRuns *r);
/* All of it (the scripted mode and the tests: screens that do not depend on timing). */
void runs_drain(ModelRuns *r);

#endif
