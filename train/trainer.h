/* trainer.h - the training loop of `backpack train`: data, AdamW, schedule, evaluation,
 * checkpoints with their training state, progress, metrics, stopping and resuming.
 *
 * A run writes into out_dir (model/checkpoint.h's directory) at step 0, every save_every
 * steps, at the end and when stopped by a signal:
 *   config.json, model.safetensors, vocab.json, merges.txt   (checkpoint_save)
 *   train_state.bin    the AdamW moments, step, tokens, elapsed time, dropout RNG, data
 *                      position, the TrainConfig, the byte length of metrics.jsonl and
 *                      the hash of the weights it belongs to (format in trainer.c)
 *   metrics.jsonl      one JSON object per line, appended as training goes:
 *                      {"step","loss","lr","grad_norm","tokens","elapsed","tokens_per_s"}
 *                      per step and {"step","val_loss","val_ppl","tokens","elapsed"} per
 *                      evaluation
 * Everything else in out_dir (files, subdirectories, symbolic links) is carried over into
 * every new checkpoint (the directory is swapped whole; run_dir.h), so nothing placed
 * there is lost.
 *
 * Determinism: with the same config, seed and thread count the losses are a function of
 * the step alone, and a run stopped at step s and resumed gives bit-identical losses to
 * an uninterrupted one (the budget should then be steps or tokens: a time budget makes
 * the schedule depend on the clock).
 *
 * A NaN or infinite loss or gradient norm stops the run with an error naming the step;
 * nothing is saved after the last good checkpoint, which stays loadable.
 *
 * Several processes (mpirun -np N; dist.h, docs/distributed.md): each trains on its slice
 * of the global batch of N x batch windows (the windows one process with batch N x B
 * would train on, in the same order, with the same dropout masks) and the gradients are
 * summed across them once per step, so the run computes what one process would, to
 * rounding, and the parameters stay bit-identical on every process. The processes
 * agree on the configuration and the data before training, and every step on the clock
 * and on stopping (a budget, a stop signal to any of them, a divergence). Rank 0 alone
 * writes the output directory; train_state.bin saves the global batch, so a run may
 * resume on another number of processes that keeps it. Without mpirun the run is one
 * process, as before.
 * BACKPACK_REPLICA_LOG=PATH (tests) makes every rank write "step hash" of its weights
 * after each step into PATH.<rank>.
 */
#ifndef BP_TRAINER_H
#define BP_TRAINER_H

#include <signal.h>
#include <stdint.h>

#include "../common/error.h"
#include "../model/backpack.h"

#define TRAIN_STATE_FILE "train_state.bin"
#define TRAIN_METRICS_FILE "metrics.jsonl"

typedef struct {
    BackpackConfig model;       /* vocab_size 0: taken from the tokenizer (new runs) */
    char data_prefix[2048];     /* PREFIX.train.tok and PREFIX.val.tok */
    char tokenizer_dir[2048];   /* vocab.json + merges.txt, copied into every checkpoint */
    char out_dir[2048];
    int batch;                  /* B windows per micro-batch and process */
    int context;                /* T tokens per window (<= model.n_positions) */
    int accum;                  /* micro-batches per optimizer step */
    /* budget: training stops at whichever set limit comes first (0 = not set) */
    uint64_t max_steps;
    uint64_t max_tokens;
    double max_minutes;
    float lr;                   /* peak learning rate */
    uint64_t warmup;            /* warmup steps */
    float weight_decay;         /* on matrices only */
    float clip;                 /* global gradient norm limit (0 = off) */
    float dropout;
    float beta1, beta2, eps;
    uint64_t seed;
    int threads;                /* OpenMP/OpenBLAS threads (0 = their default) */
    int eval_every;             /* steps between validation evaluations (0 = only at the end) */
    int eval_batches;           /* validation batches of B x T per evaluation */
    int save_every;             /* steps between checkpoints (0 = only at the end) */
    int zero;                   /* 1: ZeRO-1, the optimizer state sharded over the processes
                                 * (not saved: a run may resume with or without it) */
} TrainConfig;

/* The defaults of `backpack train` (model size included; see cmd_train.c --help). */
void train_config_defaults(TrainConfig *c);

/* One optimizer step, as reported to the hook and written to metrics.jsonl. */
typedef struct {
    uint64_t step;              /* steps done, counting this one */
    double loss;                /* mean training loss of the step */
    double val_loss;            /* NaN unless this step ran an evaluation */
    float lr;
    double grad_norm;           /* before clipping */
    uint64_t tokens;            /* training tokens seen so far */
    double elapsed;             /* seconds of training, over all sessions */
    double tokens_per_s;        /* of this session */
    Backpack *model;            /* the model being trained (tests inspect it, or break it) */
} StepReport;

typedef struct {
    volatile sig_atomic_t *stop;  /* non-NULL: when set, finish the step, save, return 0 */
    int progress_line;            /* 1: a live progress line on stderr (a terminal) */
    int quiet;                    /* 1: no progress output at all (tests) */
    /* Called after every step; a non-zero return stops the run like *stop (tests). */
    int (*on_step)(const StepReport *r, void *ctx);
    void *ctx;
} TrainHooks;

typedef struct {
    uint64_t steps;             /* total steps done (over all sessions) */
    double last_loss;
    double last_val_loss;       /* NaN if never evaluated */
    int stopped;                /* 1: stopped early by *stop or the hook */
    int diverged;               /* 1: stopped on a NaN/Inf (the call returned -1) */
} TrainOutcome;

/* Runs training. resume_dir NULL starts a new model (out_dir must not hold one);
 * otherwise continues from resume_dir's checkpoint and train_state.bin (cfg must agree
 * with the saved one on the model and the optimizer; train_state_read_config gives it).
 * On a resume cfg->batch is either the per-process batch (processes x batch must be the
 * saved global batch) or the saved global batch itself, then shared out. */
int train_run(const TrainConfig *cfg, const char *resume_dir, const TrainHooks *hooks,
              TrainOutcome *out, BpError *err);

/* Reads the TrainConfig saved in dir/train_state.bin (validated whole); its batch is the
 * global batch. */
int train_state_read_config(const char *dir, TrainConfig *cfg, BpError *err);

#endif
