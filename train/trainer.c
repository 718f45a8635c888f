/* trainer.c - train_run: the training loop (see trainer.h), in the steps of one run:
 * join the processes, build or load the model, open the optimizer, the data and the
 * output directory, then step until the budget or a stop, evaluating and saving on the
 * way. The pieces with a job of their own are beside it: dist.c (the processes and their
 * collectives), agreement.c (what they must share), train_state.c (train_state.bin),
 * metrics.c (metrics.jsonl), eta.c (budget, ETA, progress line), run_dir.c (the output
 * directory).
 *
 * Data parallelism (llm.c's train_gpt2 over MPI): every process holds the whole model
 * and trains on its slice of the global batch; after the last micro-batch of a step one
 * allreduce sums the flat gradient buffer (1/processes is folded into the gradient
 * scale), so clipping and AdamW see the same numbers everywhere and the replicas stay
 * bit-identical. With ZeRO-1 the sum is reduce-scattered instead, each process updates
 * its shard of the parameters with its shard of the moments, and an allgather brings
 * the parameters back together. Rank 0 alone touches the output directory. */
#include "trainer.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/fileio.h"
#include "../common/rng.h"
#include "../model/checkpoint.h"
#include "../text/tokenizer.h"
#include "../text/tokfile.h"
#include "adamw.h"
#include "agreement.h"
#include "dataloader.h"
#include "dist.h"
#include "eta.h"
#include "evaluate.h"
#include "metrics.h"
#include "run_dir.h"
#include "train_state.h"

void train_config_defaults(TrainConfig *c) {
    memset(c, 0, sizeof *c);
    c->model.arch = ARCH_BACKPACK;
    c->model.vocab_size = 0;
    c->model.n_embd = 256;
    c->model.n_layer = 4;
    c->model.n_head = 4;
    c->model.num_senses = 16;
    c->model.n_positions = 128;
    c->model.sense_intermediate_scale = 4;
    c->batch = 16;
    c->context = 128;
    c->accum = 1;
    c->max_steps = 1000;
    c->lr = 6e-4f;
    c->warmup = 100;
    c->weight_decay = 0.1f;
    c->clip = 1.0f;
    c->dropout = 0.0f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->seed = 1337;
    c->threads = 0;
    c->eval_every = 200;
    c->eval_batches = 20;
    c->save_every = 1000;
}

typedef struct {
    TrainConfig cfg;            /* batch is per process */
    Dist dist;
    Backpack model;
    AdamW opt;                  /* the whole optimizer, or this process's shard (ZeRO-1) */
    size_t shard_offset;        /* ZeRO-1: the parameters this process updates */
    size_t shard_length;
    float *grad_shard;          /* ZeRO-1: (shard_length) the summed gradient of the shard */
    float *full_m, *full_v;     /* the whole moments while a save writes them */
    DataLoader train;           /* this process's slice of each global batch */
    TokFile val;
    int val_open;
    TrainProgress prog;         /* global, the same on every process */
    const char *tokenizer_src;  /* where checkpoints copy vocab.json and merges.txt from */
    Metrics metrics;            /* written by rank 0 only */
    const TrainHooks *hooks;
    int quiet;                  /* no output (tests, and every rank but 0) */
    int progress_line_shown;
    FILE *replica_log;          /* BACKPACK_REPLICA_LOG: the weights hash after every step */
    /* this session */
    uint64_t step_tokens;       /* training tokens per optimizer step, all processes */
    double session_start;
    double elapsed_before;      /* training time of earlier sessions */
    double train_seconds;       /* time inside steps (the rate excludes evaluation and saves) */
    uint64_t session_start_step;
    uint64_t last_eval_step, last_save_step;
    StepReport report;          /* of the last step */
} Trainer;

static int is_root(const Trainer *tr) { return tr->dist.rank == 0; }

/* After a phase every process ran: 0 when it succeeded on all of them; otherwise -1 on
 * all of them, with the message of the first that failed (naming its rank when there
 * are several), so that every process reports the same one-line error. */
static int agree(Trainer *tr, int rc, BpError *err) {
    int first = dist_first_failure(&tr->dist, rc != 0);
    if (first < 0) return 0;
    if (tr->dist.size == 1) return -1;
    char msg[BP_ERROR_MAX] = "";
    if (err && rc != 0) memcpy(msg, err->msg, sizeof msg);
    dist_broadcast(&tr->dist, first, msg, sizeof msg);
    msg[sizeof msg - 1] = '\0';
    return bp_fail(err, "rank %d: %s", first, msg);
}

/* A failure inside a step, where the other processes already wait in a collective. */
static int fail_mid_step(Trainer *tr, BpError *err) {
    if (tr->dist.size > 1) dist_abort(&tr->dist, err ? err->msg : "a step failed");
    return -1;
}

/* ---- setting up ---------------------------------------------------------------------- */

static int check_config(const TrainConfig *c, BpError *err) {
    if (c->batch < 1) return bp_fail(err, "--batch must be at least 1 (got %d)", c->batch);
    if (c->accum < 1) return bp_fail(err, "--accum must be at least 1 (got %d)", c->accum);
    if (c->context < 1 || c->context > c->model.n_positions)
        return bp_fail(err, "--context %d: must be between 1 and the model's n_positions %d",
                       c->context, c->model.n_positions);
    if (!c->max_steps && !c->max_tokens && !(c->max_minutes > 0))
        return bp_fail(err, "no budget: give --steps, --tokens or --minutes");
    if (!(c->lr > 0) || !isfinite(c->lr)) return bp_fail(err, "--lr must be positive (got %g)", c->lr);
    if (!(c->weight_decay >= 0)) return bp_fail(err, "--weight-decay must be >= 0");
    if (!(c->clip >= 0)) return bp_fail(err, "--clip must be >= 0");
    if (!(c->dropout >= 0 && c->dropout < 1)) return bp_fail(err, "--dropout must be in [0, 1)");
    if (c->eval_batches < 1) return bp_fail(err, "--eval-batches must be at least 1");
    if (c->eval_every < 0 || c->save_every < 0) return bp_fail(err, "--eval-every and --save-every must be >= 0");
    if (c->zero < 0 || c->zero > 1) return bp_fail(err, "--zero must be 0 or 1 (got %d)", c->zero);
    if (!c->out_dir[0]) return bp_fail(err, "--out is required");
    if (!c->data_prefix[0]) return bp_fail(err, "--data is required");
    return 0;
}

static int same_model(const BackpackConfig *a, const BackpackConfig *b) {
    return a->arch == b->arch && a->vocab_size == b->vocab_size && a->n_embd == b->n_embd &&
           a->n_layer == b->n_layer && a->n_head == b->n_head && a->n_positions == b->n_positions &&
           a->sense_intermediate_scale == b->sense_intermediate_scale &&
           (a->arch == ARCH_TRANSFORMER || a->num_senses == b->num_senses);
}

/* Joins the other processes (if any) and checks that they were all given the same
 * configuration as rank 0. */
static int join_processes(Trainer *tr, BpError *err) {
    if (dist_init(&tr->dist, err) != 0) return -1;
    if (!is_root(tr)) tr->quiet = 1;
    const char *log = getenv("BACKPACK_REPLICA_LOG");
    int rc = 0;
    if (log && log[0]) {
        char path[4096];
        snprintf(path, sizeof path, "%s.%d", log, tr->dist.rank);
        tr->replica_log = fopen(path, "w");
        if (!tr->replica_log) rc = bp_fail_errno(err, "%s: cannot open", path);
    }
    if (agree(tr, rc, err) != 0) return -1;
    if (tr->dist.size == 1) return 0;
    TrainConfig root = tr->cfg;
    dist_broadcast(&tr->dist, 0, &root, sizeof root);
    const char *flag = train_config_difference(&root, &tr->cfg);
    if (flag) rc = bp_fail(err, "%s differs from rank 0's: every process must be given the same", flag);
    return agree(tr, rc, err);
}

/* Rank 0's part of building the model: loaded from resume_dir, or the vocabulary size of
 * a new one from the tokenizer. */
static int read_model_source(Trainer *tr, const char *resume_dir, BpError *err) {
    TrainConfig *c = &tr->cfg;
    if (resume_dir) {
        if (checkpoint_load(&tr->model, resume_dir, err) != 0) return -1;
        if (c->model.vocab_size == 0) c->model.vocab_size = tr->model.config.vocab_size;
        if (!same_model(&c->model, &tr->model.config))
            return bp_fail(err, "%s: the model's configuration differs from the training state's", resume_dir);
        c->model = tr->model.config;
        /* The checkpoint's own copy of the tokenizer (a model may have none). */
        char vocab[4096];
        tr->tokenizer_src = path_join(vocab, sizeof vocab, resume_dir, "vocab.json", NULL) == 0 &&
                                    file_exists(vocab) ? resume_dir : NULL;
        return 0;
    }
    if (c->model.vocab_size == 0) {
        Tokenizer *tok;
        if (!c->tokenizer_dir[0]) return bp_fail(err, "--tokenizer is required for a new run");
        if (tokenizer_load(&tok, c->tokenizer_dir, err) != 0) return -1;
        c->model.vocab_size = tokenizer_vocab_size(tok);
        tokenizer_free(tok);
    }
    tr->tokenizer_src = c->tokenizer_dir[0] ? c->tokenizer_dir : NULL;
    return 0;
}

/* The model, the same on every process: rank 0's loaded checkpoint, or rank 0's
 * initialization of a new one. */
static int build_model(Trainer *tr, const char *resume_dir, BpError *err) {
    TrainConfig *c = &tr->cfg;
    int rc = is_root(tr) ? read_model_source(tr, resume_dir, err) : 0;
    if (agree(tr, rc, err) != 0) return -1;
    dist_broadcast(&tr->dist, 0, &c->model, sizeof c->model);
    rc = check_config(c, err);
    if (rc == 0 && !(is_root(tr) && resume_dir))
        rc = backpack_config_validate(&c->model, err) != 0 || backpack_build(&tr->model, &c->model, err) != 0;
    if (agree(tr, rc, err) != 0) return -1;
    if (!resume_dir) {
        if (is_root(tr)) backpack_init_weights(&tr->model, c->seed);
        rng_seed(&tr->prog.dropout_rng, c->seed ^ 0xd1b54a32d192ed03ULL);
    }
    dist_broadcast(&tr->dist, 0, tr->model.params_memory, tr->model.num_parameters * sizeof(float));
    return 0;
}

/* A resumed run keeps its global batch. cfg.batch is the per-process batch, or (when
 * --batch was not given) the saved global batch, then shared out over the processes. */
static int resolve_batch(Trainer *tr, int saved_global, BpError *err) {
    int n = tr->dist.size, *b = &tr->cfg.batch;
    if ((int64_t)*b * n == saved_global) return 0;
    if (saved_global % n != 0)
        return bp_fail(err, "--resume: the run's global batch of %d windows does not divide among %d processes",
                       saved_global, n);
    if (*b == saved_global) {
        *b = saved_global / n;
        return 0;
    }
    return bp_fail(err, "--resume: the run's global batch is %d windows, not %d processes x --batch %d: give --batch %d",
                   saved_global, n, *b, saved_global / n);
}

/* AdamW, with rank 0's saved state on a resume; under ZeRO-1 each process then keeps
 * only its shard of the moments. */
static int build_optimizer(Trainer *tr, const char *resume_dir, BpError *err) {
    const TrainConfig *c = &tr->cfg;
    const size_t P = tr->model.num_parameters;
    AdamWConfig ac = {.beta1 = c->beta1, .beta2 = c->beta2, .eps = c->eps,
                      .weight_decay = c->weight_decay};
    int rc = adamw_build_for_model(&tr->opt, &ac, &tr->model, err);
    if (agree(tr, rc, err) != 0) return -1;
    if (resume_dir) {
        TrainConfig saved;
        TrainMoments mom = {.m = tr->opt.m, .v = tr->opt.v};
        if (is_root(tr)) rc = train_state_read(resume_dir, &tr->model, &mom, &tr->prog, &saved, err);
        if (agree(tr, rc, err) != 0) return -1;
        tr->opt.t = mom.t;
        dist_broadcast(&tr->dist, 0, &saved.batch, sizeof saved.batch);
        dist_broadcast(&tr->dist, 0, &tr->prog, sizeof tr->prog);
        dist_broadcast(&tr->dist, 0, &tr->opt.t, sizeof tr->opt.t);
        dist_broadcast(&tr->dist, 0, tr->opt.m, P * sizeof(float));
        dist_broadcast(&tr->dist, 0, tr->opt.v, P * sizeof(float));
        if (resolve_batch(tr, saved.batch, err) != 0) return -1;
    }
    if (!c->zero) return 0;
    if (P > dist_max_shard_elements(&tr->dist))
        return bp_fail(err, "--zero 1: %zu parameters, more than MPI's counts reach", P);
    dist_shard(P, tr->dist.size, tr->dist.rank, &tr->shard_offset, &tr->shard_length);
    rc = adamw_shard(&tr->opt, tr->shard_offset, tr->shard_length, err);
    if (rc == 0 && !(tr->grad_shard = malloc((tr->shard_length ? tr->shard_length : 1) * sizeof(float))))
        rc = bp_fail(err, "out of memory for the gradient shard");
    return agree(tr, rc, err);
}

static int open_data(Trainer *tr, BpError *err) {
    char path[4096];
    const TrainConfig *c = &tr->cfg;
    if (snprintf(path, sizeof path, "%s.train.tok", c->data_prefix) >= (int)sizeof path)
        return bp_fail(err, "%s: path too long", c->data_prefix);
    if (dataloader_open(&tr->train, path, c->batch, c->context, 1, c->seed, c->model.vocab_size, err) != 0)
        return -1;
    dataloader_shard(&tr->train, tr->dist.rank, tr->dist.size);
    snprintf(path, sizeof path, "%s.val.tok", c->data_prefix);
    if (tokfile_open(&tr->val, path, err) != 0) return -1;
    tr->val_open = 1;
    if (tr->val.count < (uint64_t)c->context + 1)
        return bp_fail(err, "%s: %llu tokens, too short for one validation window of context %d (needs %d)",
                       path, (unsigned long long)tr->val.count, c->context, c->context + 1);
    if (tr->val.vocab_size > (uint32_t)c->model.vocab_size)
        return bp_fail(err, "%s: token file vocabulary %u is larger than the model's %d", path,
                       tr->val.vocab_size, c->model.vocab_size);
    return 0;
}

/* Every process must read the same token files (each reads its own copy). */
static int check_same_data(Trainer *tr, BpError *err) {
    const int n = tr->dist.size;
    if (n == 1) return 0;
    TokFileFingerprint mine[2] = {tokfile_fingerprint(&tr->train.file), tokfile_fingerprint(&tr->val)};
    TokFileFingerprint *all = malloc((size_t)n * sizeof mine);
    if (dist_first_failure(&tr->dist, all == NULL) >= 0) {
        free(all);
        return bp_fail(err, "out of memory");
    }
    dist_allgather(&tr->dist, mine, all, sizeof mine);
    int rc = 0;
    for (int r = 1; r < n && rc == 0; r++)
        for (int f = 0; f < 2 && rc == 0; f++) {
            const TokFileFingerprint *a = &all[f], *b = &all[2 * r + f];
            if (a->count != b->count || a->vocab_size != b->vocab_size || a->hash != b->hash)
                rc = bp_fail(err, "the %s data differs between rank 0 (%llu tokens, hash %016llx) and rank %d (%llu tokens, hash %016llx): every process must read the same files",
                             f ? "validation" : "training", (unsigned long long)a->count,
                             (unsigned long long)a->hash, r, (unsigned long long)b->count,
                             (unsigned long long)b->hash);
        }
    free(all);
    return rc;  /* the same verdict on every process */
}

/* Touches the output directory only now, with everything else checked (rank 0). */
static int prepare_out_dir(Trainer *tr, const char *resume_dir, BpError *err) {
    const char *out = tr->cfg.out_dir;
    if (metrics_init(&tr->metrics, out, err) != 0) return -1;
    if (!is_root(tr)) return 0;
    if (resume_dir) {
        struct stat a, b;
        int same_dir = stat(resume_dir, &a) == 0 && stat(out, &b) == 0 &&
                       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
        if (!same_dir && run_dir_check_new(out, err) != 0) return -1;
        if (metrics_rewind(&tr->metrics, resume_dir, tr->prog.metrics_bytes, err) != 0) return -1;
    } else if (run_dir_check_new(out, err) != 0) {
        return -1;
    }
    return metrics_open(&tr->metrics, err);
}

static void announce(const Trainer *tr, const char *resume_dir) {
    const TrainConfig *c = &tr->cfg;
    if (tr->quiet) return;
    int transformer = c->model.arch == ARCH_TRANSFORMER;
    char procs[96] = "";
    if (tr->dist.size > 1)
        snprintf(procs, sizeof procs, " on each of %d processes (global batch %d%s)", tr->dist.size,
                 c->batch * tr->dist.size, c->zero ? ", ZeRO-1" : "");
    fprintf(stderr, "%s %s at step %llu: %zu parameters (d %d, layers %d, heads %d, senses %d, "
            "vocab %d), %llu training tokens, batch %d x %d x accum %d%s\n",
            resume_dir ? "resuming" : "training", transformer ? "Transformer" : "Backpack",
            (unsigned long long)tr->prog.step, tr->model.num_parameters, c->model.n_embd,
            c->model.n_layer, c->model.n_head, transformer ? 0 : c->model.num_senses,
            c->model.vocab_size, (unsigned long long)dataloader_num_tokens(&tr->train), c->batch,
            c->context, c->accum, procs);
}

static void trainer_free(Trainer *tr) {
    metrics_close(&tr->metrics);
    if (tr->replica_log) fclose(tr->replica_log);
    dataloader_close(&tr->train);
    if (tr->val_open) tokfile_close(&tr->val);
    adamw_free(&tr->opt);
    free(tr->grad_shard);
    backpack_free(&tr->model);
}

/* ---- saving and evaluating ------------------------------------------------------------ */

/* The CheckpointExtraWriter: the training state, the metrics so far, and everything
 * else the output directory holds. */
static int write_extra(const char *staging, void *ctx, BpError *err) {
    Trainer *tr = ctx;
    tr->prog.metrics_bytes = metrics_bytes(&tr->metrics);
    TrainConfig saved = tr->cfg;
    saved.batch = tr->cfg.batch * tr->dist.size;  /* the global batch: one format for any N */
    TrainMoments mom = {.t = tr->opt.t, .m = tr->full_m, .v = tr->full_v};
    if (train_state_write(staging, &saved, &tr->model, &mom, &tr->prog, err) != 0) return -1;
    if (file_exists(tr->metrics.path)) {
        char dst[4096];
        if (path_join(dst, sizeof dst, staging, TRAIN_METRICS_FILE, err) != 0) return -1;
        if (link(tr->metrics.path, dst) != 0 && copy_file_atomic(tr->metrics.path, dst, err) != 0)
            return -1;
    }
    return run_dir_carry_over(tr->cfg.out_dir, staging, err);
}

/* A checkpoint, written by rank 0 (under ZeRO-1 after gathering the moments there). */
static int save(Trainer *tr, BpError *err) {
    const size_t P = tr->model.num_parameters;
    int rc = 0;
    tr->full_m = tr->opt.m;
    tr->full_v = tr->opt.v;
    if (tr->cfg.zero) {
        tr->full_m = tr->full_v = NULL;
        if (is_root(tr) && (!(tr->full_m = malloc(P * sizeof(float))) || !(tr->full_v = malloc(P * sizeof(float)))))
            rc = bp_fail(err, "out of memory gathering the optimizer state");
        if (agree(tr, rc, err) != 0) goto done;
        dist_gather_shards(&tr->dist, tr->opt.m, tr->full_m, P);
        dist_gather_shards(&tr->dist, tr->opt.v, tr->full_v, P);
    }
    if (is_root(tr)) {
        rc = checkpoint_save(&tr->model, tr->cfg.out_dir, tr->tokenizer_src, write_extra, tr, err);
        /* The directory was swapped: append to the new directory's metrics.jsonl. */
        if (rc == 0) rc = metrics_open(&tr->metrics, err);
    }
    if ((rc = agree(tr, rc, err)) == 0) tr->last_save_step = tr->prog.step;
done:
    if (tr->cfg.zero) {
        free(tr->full_m);
        free(tr->full_v);
    }
    tr->full_m = tr->full_v = NULL;
    return rc;
}

/* Validation loss over the first eval_batches global batches of the validation file,
 * each process evaluating its slice of the windows, recorded. */
static int validate(Trainer *tr, BpError *err) {
    const TrainConfig *c = &tr->cfg;
    EvalResult res;
    uint64_t windows = (uint64_t)c->eval_batches * (uint64_t)c->batch * (uint64_t)tr->dist.size;
    int rc = evaluate_tokfile_shard(&tr->model, &tr->val, c->context, c->batch, windows,
                                    tr->dist.rank, tr->dist.size, &res, err);
    if (rc != 0) bp_error_prefix(err, "validation");
    if (agree(tr, rc, err) != 0) return -1;
    double sums[2] = {res.loss_sum, (double)res.predictions};
    dist_sum_doubles(&tr->dist, sums, 2);
    tr->prog.last_val_loss = sums[0] / sums[1];
    tr->last_eval_step = tr->prog.step;
    metrics_eval(&tr->metrics, tr->prog.step, tr->prog.last_val_loss, tr->prog.tokens, tr->prog.elapsed);
    return 0;
}

/* ---- the loop ------------------------------------------------------------------------- */

static void start_session(Trainer *tr, const char *resume_dir) {
    const TrainConfig *c = &tr->cfg;
    tr->step_tokens = (uint64_t)c->batch * (uint64_t)tr->dist.size * (uint64_t)c->context *
                      (uint64_t)c->accum;
    tr->session_start = now_seconds();
    tr->elapsed_before = tr->prog.elapsed;
    tr->session_start_step = tr->prog.step;
    tr->last_eval_step = UINT64_MAX;
    tr->last_save_step = resume_dir ? tr->prog.step : 0;
}

static void update_elapsed(Trainer *tr) {
    tr->prog.elapsed = tr->elapsed_before + (now_seconds() - tr->session_start);
}

static int budget_spent(const Trainer *tr) {
    const TrainConfig *c = &tr->cfg;
    return (c->max_steps && tr->prog.step >= c->max_steps) ||
           (c->max_tokens && tr->prog.tokens >= c->max_tokens);
}

/* 1 when the run ends before another step: the budget is spent or a stop was asked (on
 * any process). The processes agree on the elapsed time (the slowest clock), so a time
 * budget and its learning-rate schedule are the same for all. */
static int should_stop(Trainer *tr, TrainOutcome *out) {
    const TrainConfig *c = &tr->cfg;
    update_elapsed(tr);
    double local[2] = {(tr->hooks && tr->hooks->stop && *tr->hooks->stop) || out->stopped,
                       tr->prog.elapsed};
    dist_max_doubles(&tr->dist, local, 2);
    tr->prog.elapsed = local[1];
    if (budget_spent(tr)) return 1;
    if (c->max_minutes > 0 && tr->prog.elapsed >= c->max_minutes * 60.0) return 1;
    if (local[0] != 0) {
        out->stopped = 1;
        return 1;
    }
    return 0;
}

static float step_lr(Trainer *tr) {
    const TrainConfig *c = &tr->cfg;
    TrainProgress *p = &tr->prog;
    double progress = budget_progress(c, p->step, p->tokens, p->elapsed);
    if (p->step == c->warmup) p->warmup_progress = progress;
    return lr_schedule(c->lr, p->step, c->warmup, progress,
                       p->step >= c->warmup ? p->warmup_progress : 0.0);
}

/* Forward and backward over the step's micro-batches (this process's rows of each); the
 * gradients are summed in the model's buffer and the mean loss returned. Every process
 * draws the same dropout seed per micro-batch and masks its rows as the global batch's. */
static int accumulate_gradients(Trainer *tr, double *loss, BpError *err) {
    const TrainConfig *c = &tr->cfg;
    TrainOptions opts = {.dropout = c->dropout, .rng = &tr->prog.dropout_rng,
                         .first_row = (uint64_t)tr->dist.rank * (uint64_t)c->batch};
    backpack_zero_grad(&tr->model);
    double sum = 0.0;
    for (int a = 0; a < c->accum; a++) {
        dataloader_next(&tr->train);
        if (backpack_forward(&tr->model, tr->train.inputs, tr->train.targets, c->batch, c->context,
                             &opts, err) != 0 ||
            backpack_backward(&tr->model, err) != 0)
            return -1;
        sum += tr->model.mean_loss;
    }
    *loss = sum / c->accum;
    return 0;
}

/* Sums the gradients over the processes (the whole buffer, or reduce-scattered into this
 * process's shard under ZeRO-1) and averages the loss; returns the norm of the mean
 * gradient (over micro-batches and processes), the same on every process. */
static double reduce_gradients(Trainer *tr, double *loss) {
    const size_t P = tr->model.num_parameters;
    const int n = tr->dist.size;
    const double mean = 1.0 / ((double)tr->cfg.accum * n);
    double sums[2] = {*loss, 0.0};
    if (tr->cfg.zero) {
        dist_reduce_scatter(&tr->dist, tr->model.grads_memory, tr->grad_shard, P);
        double shard_norm = grad_norm(tr->grad_shard, tr->shard_length);
        sums[1] = shard_norm * shard_norm;
        dist_sum_doubles(&tr->dist, sums, 2);
        *loss = sums[0] / n;
        return sqrt(sums[1]) * mean;
    }
    dist_sum_floats(&tr->dist, tr->model.grads_memory, P);
    dist_sum_doubles(&tr->dist, sums, 1);
    *loss = sums[0] / n;
    return grad_norm(tr->model.grads_memory, P) * mean;
}

/* AdamW with the gradient grad_scale times the summed one. */
static void update_parameters(Trainer *tr, float grad_scale, float lr) {
    float *params = tr->model.params_memory;
    if (tr->cfg.zero) {
        adamw_step(&tr->opt, params + tr->shard_offset, tr->grad_shard, grad_scale, lr);
        dist_allgather_shards(&tr->dist, params, tr->model.num_parameters);
    } else {
        adamw_step(&tr->opt, params, tr->model.grads_memory, grad_scale, lr);
    }
}

/* One optimizer step. A NaN or infinite loss or norm fails (on every process alike) with
 * out->diverged set. */
static int train_step(Trainer *tr, TrainOutcome *out, BpError *err) {
    const TrainConfig *c = &tr->cfg;
    double t0 = now_seconds();
    float lr = step_lr(tr);
    double loss;
    if (accumulate_gradients(tr, &loss, err) != 0) return fail_mid_step(tr, err);
    double norm = reduce_gradients(tr, &loss);
    if (!isfinite(loss) || !isfinite(norm)) {
        if (tr->progress_line_shown) fputc('\n', stderr);
        out->diverged = 1;
        return bp_fail(err, "training diverged at step %llu (loss %g, gradient norm %g): stopped; the last good checkpoint (step %llu) is kept in %s",
                       (unsigned long long)tr->prog.step + 1, loss, norm,
                       (unsigned long long)tr->last_save_step, c->out_dir);
    }
    /* the mean over micro-batches and processes, clipped */
    const double mean = 1.0 / ((double)c->accum * tr->dist.size);
    update_parameters(tr, (float)(mean * clip_factor(norm, c->clip)), lr);
    tr->prog.step++;
    tr->prog.tokens += tr->step_tokens;
    tr->prog.data = tr->train.pos;
    tr->train_seconds += now_seconds() - t0;
    update_elapsed(tr);
    uint64_t steps = tr->prog.step - tr->session_start_step;
    tr->report = (StepReport){
        .step = tr->prog.step, .loss = loss, .val_loss = NAN, .lr = lr, .grad_norm = norm,
        .tokens = tr->prog.tokens, .elapsed = tr->prog.elapsed,
        .tokens_per_s = (double)steps * (double)tr->step_tokens /
                        (tr->train_seconds > 0 ? tr->train_seconds : 1e-9),
        .model = &tr->model};
    if (tr->replica_log) {
        char hash[17];
        backpack_weights_hash(&tr->model, hash);
        fprintf(tr->replica_log, "%llu %s\n", (unsigned long long)tr->prog.step, hash);
        fflush(tr->replica_log);
    }
    return 0;
}

static void show_progress(Trainer *tr) {
    const TrainHooks *h = tr->hooks;
    if (tr->quiet) return;
    const StepReport *r = &tr->report;
    /* the nearest limit at this session's pace */
    double per_step = (now_seconds() - tr->session_start) / (double)(tr->prog.step - tr->session_start_step);
    double eta = eta_seconds(&tr->cfg, tr->prog.step, tr->prog.tokens, tr->prog.elapsed,
                             tr->step_tokens, per_step);
    int live = h && h->progress_line;
    int newline = !isnan(r->val_loss) && !live;
    progress_print(r, tr->cfg.max_steps, tr->prog.last_val_loss, eta, live, newline);
    tr->progress_line_shown = live && !newline;
}

/* What follows a step: its metrics line, an evaluation and a save when due, the hook. */
static int after_step(Trainer *tr, TrainOutcome *out, BpError *err) {
    const TrainConfig *c = &tr->cfg;
    metrics_step(&tr->metrics, &tr->report);
    if ((c->eval_every && tr->prog.step % (uint64_t)c->eval_every == 0) || budget_spent(tr)) {
        if (validate(tr, err) != 0) return -1;
        tr->report.val_loss = tr->prog.last_val_loss;
    }
    if (tr->hooks && tr->hooks->on_step && tr->hooks->on_step(&tr->report, tr->hooks->ctx) != 0)
        out->stopped = 1;
    show_progress(tr);
    if (c->save_every && tr->prog.step % (uint64_t)c->save_every == 0 && save(tr, err) != 0) return -1;
    return 0;
}

/* The end of the run: a last evaluation (unless stopped) and a last save. */
static int finish(Trainer *tr, TrainOutcome *out, BpError *err) {
    const TrainConfig *c = &tr->cfg;
    if (tr->prog.step > 0 && tr->last_eval_step != tr->prog.step && !out->stopped &&
        validate(tr, err) != 0)
        return -1;
    if (tr->progress_line_shown) fputc('\n', stderr);
    tr->progress_line_shown = 0;
    if ((tr->last_save_step != tr->prog.step || out->stopped || tr->prog.step == 0) && save(tr, err) != 0)
        return -1;
    if (tr->quiet) return 0;
    if (out->stopped)
        fprintf(stderr, "stopped at step %llu: saved to %s (continue with --resume %s)\n",
                (unsigned long long)tr->prog.step, c->out_dir, c->out_dir);
    else
        fprintf(stderr, "done: %llu steps, val loss %.4f (perplexity %.2f), saved to %s\n",
                (unsigned long long)tr->prog.step, tr->prog.last_val_loss,
                exp(tr->prog.last_val_loss), c->out_dir);
    return 0;
}

int train_run(const TrainConfig *cfg, const char *resume_dir, const TrainHooks *hooks,
              TrainOutcome *out, BpError *err) {
    memset(out, 0, sizeof *out);
    out->last_val_loss = NAN;
    Trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return bp_fail(err, "out of memory");
    tr->cfg = *cfg;
    tr->hooks = hooks;
    tr->quiet = hooks && hooks->quiet;
    tr->prog.last_val_loss = NAN;
    if (tr->cfg.threads > 0) {
        omp_set_num_threads(tr->cfg.threads);
        openblas_set_num_threads(tr->cfg.threads);
    }
    int rc = -1;
    if (join_processes(tr, err) != 0 || build_model(tr, resume_dir, err) != 0 ||
        build_optimizer(tr, resume_dir, err) != 0 || agree(tr, open_data(tr, err), err) != 0 ||
        check_same_data(tr, err) != 0 || agree(tr, prepare_out_dir(tr, resume_dir, err), err) != 0)
        goto done;
    dataloader_seek(&tr->train, tr->prog.data);
    announce(tr, resume_dir);
    if (!resume_dir && save(tr, err) != 0) goto done;  /* a loadable checkpoint from the start */
    start_session(tr, resume_dir);
    while (!should_stop(tr, out))
        if (train_step(tr, out, err) != 0 || after_step(tr, out, err) != 0) goto done;
    if (finish(tr, out, err) != 0) goto done;
    rc = 0;
done:
    /* an error after a live progress line starts a line of its own */
    if (rc != 0 && tr->progress_line_shown) fputc('\n', stderr);
    out->steps = tr->prog.step;
    out->last_loss = tr->report.loss;
    out->last_val_loss = tr->prog.last_val_loss;
    trainer_free(tr);
    free(tr);
    return rc;
}
