/* cmd_train.c - `backpack init` and `backpack train`: argument parsing, signals and the
 * terminal; the work is in trainer.c. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "../common/fileio.h"
#include "../model/checkpoint.h"
#include "../text/tokenizer.h"
#include "../common/args.h"
#include "../train/compat.h"
#include "../train/init.h"
#include "../train/trainer.h"

static const char train_synopsis[] =
    "usage: backpack train --data PREFIX --tokenizer DIR --out DIR [options]\n"
    "       backpack train --resume DIR [--out DIR] [budget, threads, intervals]\n"
    "\n"
    "Reads PREFIX.train.tok and PREFIX.val.tok (backpack tokenize). Writes a checkpoint\n"
    "directory with train_state.bin and metrics.jsonl. Ctrl-C finishes the step, saves and\n"
    "exits; --resume continues (bit-identical losses with the same seed and threads).\n"
    "AdamW betas (0.9, 0.999), eps 1e-8; linear warmup, then linear decay to 0 over the\n"
    "budget; the first budget limit reached ends the run (default 1000 steps).\n"
    "Under mpirun -np N: data parallel, --batch per process, global batch N x B\n"
    "(docs/distributed.md).\n";

static const char init_synopsis[] =
    "usage: backpack init --out DIR [--tokenizer DIR | --vocab V] [--seed S] [--force]\n"
    "                     [--arch backpack|transformer] [--d N] [--layers N] [--heads N]\n"
    "                     [--senses N] [--context N]\n"
    "Writes a randomly initialized model (the spec's initialization). With --tokenizer the\n"
    "vocabulary size is the tokenizer's and its files are copied into DIR.\n";

/* Flags that shape the model or the optimization: a resumed run must not change them. */
enum {
    GIVEN_ARCH = 1 << 0, GIVEN_D = 1 << 1, GIVEN_LAYERS = 1 << 2, GIVEN_HEADS = 1 << 3,
    GIVEN_SENSES = 1 << 4, GIVEN_CONTEXT = 1 << 5, GIVEN_BATCH = 1 << 6, GIVEN_ACCUM = 1 << 7,
    GIVEN_LR = 1 << 8, GIVEN_WARMUP = 1 << 9, GIVEN_WD = 1 << 10, GIVEN_CLIP = 1 << 11,
    GIVEN_DROPOUT = 1 << 12, GIVEN_SEED = 1 << 13, GIVEN_BUDGET = 1 << 14, GIVEN_THREADS = 1 << 15,
    GIVEN_EVAL_EVERY = 1 << 16, GIVEN_EVAL_BATCHES = 1 << 17, GIVEN_SAVE_EVERY = 1 << 18,
    GIVEN_DATA = 1 << 19, GIVEN_OUT = 1 << 20, GIVEN_TOKENIZER = 1 << 21, GIVEN_VOCAB = 1 << 22,
    GIVEN_ZERO = 1 << 23, GIVEN_ATTENTION = 1 << 24,
};

/* The rows of the model's shape, shared by init and train. */
#define MODEL_OPTIONS(arch, attention, m, context)                                                    \
    {"--arch", ARG_STRING, &(arch), .meta = "backpack|transformer", .help = "the model (backpack)",      \
     .given_bit = GIVEN_ARCH},                                                                         \
    {"--d", ARG_INT, &(m).n_embd, 1, 65536, "N", "model width (256)", GIVEN_D},                       \
    {"--layers", ARG_INT, &(m).n_layer, 1, 1024, "N", "Transformer layers (4)", GIVEN_LAYERS},         \
    {"--heads", ARG_INT, &(m).n_head, 1, 1024, "N", "attention heads (4)", GIVEN_HEADS},               \
    {"--senses", ARG_INT, &(m).num_senses, 1, 1024, "N", "senses per word (16)", GIVEN_SENSES},        \
    {"--context", ARG_INT, &(context), 1, 1 << 20, "N", "window and n_positions (128)", GIVEN_CONTEXT}, \
    {"--attention", ARG_STRING, &(attention),                                                          \
     .meta = "dot|dense|random|fixed-random|factorized-dense|factorized-random|mix:A+B",              \
     .help = "attention of every block (dot; docs/synthesizer.md)", .given_bit = GIVEN_ATTENTION}, \
    {"--no-last-residual", ARG_FLAG, &(m).no_last_residual, .help = "the last block without the residual around its MLP"}

/* The model flags after parsing: --arch and --attention by name, --context into n_positions. */
static int apply_model_flags(const char *arch, const char *attention, unsigned given, TrainConfig *c,
                             BpError *err) {
    if (attention && attention_parse(attention, &c->model.attention, err) != 0) return -1;
    if (arch) {
        if (!strcmp(arch, "backpack")) c->model.arch = ARCH_BACKPACK;
        else if (!strcmp(arch, "transformer")) c->model.arch = ARCH_TRANSFORMER;
        else return bp_fail(err, "--arch: expected backpack or transformer, got '%s'", arch);
    }
    if (given & GIVEN_CONTEXT) c->model.n_positions = c->context;
    return 0;
}

static int copy_path(char *dst, size_t n, const char *flag, const char *v, BpError *err) {
    if (v && snprintf(dst, n, "%s", v) >= (int)n) return bp_fail(err, "%s: path too long", flag);
    return 0;
}

int cmd_init(int argc, char **argv) {
    BpError err = {{0}};
    TrainConfig c;
    train_config_defaults(&c);
    const char *out = NULL, *tokdir = NULL, *arch = NULL, *attention = NULL;
    uint64_t seed = c.seed;
    int force = 0;
    unsigned given = 0;
    const ArgOption opts[] = {
        {"--out", ARG_STRING, &out, .meta = "DIR", .help = "the model directory (new, or empty)"},
        {"--tokenizer", ARG_STRING, &tokdir, .meta = "DIR", .help = "the tokenizer: its vocabulary size, its files copied"},
        {"--vocab", ARG_INT, &c.model.vocab_size, 1, 1 << 24, "V", "vocabulary size (at least the tokenizer's)", GIVEN_VOCAB},
        {"--seed", ARG_U64, &seed, 0, 0, "S", "seed of the initialization (1337)", 0},
        {"--force", ARG_FLAG, &force, .help = "replace a model in DIR"},
        MODEL_OPTIONS(arch, attention, c.model, c.context),
        {0}};
    const ArgSpec spec = {"init", init_synopsis, opts, .given = &given};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    if (apply_model_flags(arch, attention, given, &c, &err) != 0) return cli_usage_error(err.msg);
    if (!out) return cli_usage_error("init: --out DIR is required");
    if (!tokdir && !(given & GIVEN_VOCAB)) return cli_usage_error("init: give --tokenizer DIR or --vocab V");
    ModelInitOptions init = {.model = c.model, .seed = seed, .out_dir = out, .tokenizer_dir = tokdir,
                             .force = force};
    if (!(given & GIVEN_VOCAB)) init.model.vocab_size = 0;
    size_t n;
    if (model_init_write(&init, &n, &err) != 0) {
        bp_error_prefix(&err, "init");
        return cli_error(err.msg);
    }
    printf("%s: a random %s with %zu parameters (seed %llu)\n", out,
           c.model.arch == ARCH_TRANSFORMER ? "Transformer" : "Backpack", n, (unsigned long long)seed);
    return 0;
}

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
    (void)sig;
    stop_requested = 1;  /* SA_RESETHAND: a second Ctrl-C kills at once (the last checkpoint stays) */
}

/* A resumed run: flags that shape the model or the optimizer must equal the saved ones. */
static int check_resume_flags(const TrainConfig *saved, const TrainConfig *asked, unsigned given,
                              BpError *err) {
    const BackpackConfig *s = &saved->model, *a = &asked->model;
#define SAME(bit, cond, flag) \
    if ((given & (bit)) && !(cond)) return bp_fail(err, "--resume: %s differs from the run being resumed", flag)
    SAME(GIVEN_ARCH, s->arch == a->arch, "--arch");
    SAME(GIVEN_D, s->n_embd == a->n_embd, "--d");
    SAME(GIVEN_LAYERS, s->n_layer == a->n_layer, "--layers");
    SAME(GIVEN_HEADS, s->n_head == a->n_head, "--heads");
    SAME(GIVEN_SENSES, s->arch == ARCH_TRANSFORMER || s->num_senses == a->num_senses, "--senses");
    SAME(GIVEN_CONTEXT, saved->context == asked->context, "--context");
    SAME(GIVEN_ACCUM, saved->accum == asked->accum, "--accum");
    SAME(GIVEN_LR, saved->lr == asked->lr, "--lr");
    SAME(GIVEN_WARMUP, saved->warmup == asked->warmup, "--warmup");
    SAME(GIVEN_WD, saved->weight_decay == asked->weight_decay, "--weight-decay");
    SAME(GIVEN_CLIP, saved->clip == asked->clip, "--clip");
    SAME(GIVEN_DROPOUT, saved->dropout == asked->dropout, "--dropout");
    SAME(GIVEN_SEED, saved->seed == asked->seed, "--seed");
#undef SAME
    return 0;
}

int cmd_train(int argc, char **argv) {
    BpError err = {{0}};
    TrainConfig c;
    train_config_defaults(&c);
    const char *resume = NULL, *data = NULL, *tokdir = NULL, *out = NULL, *arch = NULL,
               *attention = NULL;
    unsigned given = 0;
    uint64_t steps = 0, tokens = 0;
    double minutes = 0;
    const ArgOption opts[] = {
        {"--data", ARG_STRING, &data, .meta = "PREFIX", .help = "PREFIX.train.tok and PREFIX.val.tok", .given_bit = GIVEN_DATA},
        {"--tokenizer", ARG_STRING, &tokdir, .meta = "DIR", .help = "the tokenizer the data was made with", .given_bit = GIVEN_TOKENIZER},
        {"--out", ARG_STRING, &out, .meta = "DIR", .help = "the checkpoint directory", .given_bit = GIVEN_OUT},
        {"--resume", ARG_STRING, &resume, .meta = "DIR", .help = "continue the run saved in DIR"},
        {"model:", ARG_SECTION, .value = NULL},
        MODEL_OPTIONS(arch, attention, c.model, c.context),
        {"batch:", ARG_SECTION, .value = NULL},
        {"--batch", ARG_INT, &c.batch, 1, 65536, "B", "windows per micro-batch (16)", GIVEN_BATCH},
        {"--accum", ARG_INT, &c.accum, 1, 65536, "N", "micro-batches per step (1)", GIVEN_ACCUM},
        {"budget:", ARG_SECTION, .value = NULL},
        {"--steps", ARG_U64, &steps, 1, 0, "N", "optimizer steps (1000)", GIVEN_BUDGET},
        {"--tokens", ARG_U64, &tokens, 1, 0, "N", "training tokens", GIVEN_BUDGET},
        {"--minutes", ARG_DOUBLE, &minutes, 1e-6, 1e7, "M", "minutes of training", GIVEN_BUDGET},
        {"optimizer:", ARG_SECTION, .value = NULL},
        {"--lr", ARG_FLOAT, &c.lr, 1e-12, 1e3, "X", "peak learning rate (6e-4)", GIVEN_LR},
        {"--warmup", ARG_U64, &c.warmup, 0, 0, "STEPS", "linear warmup (100)", GIVEN_WARMUP},
        {"--weight-decay", ARG_FLOAT, &c.weight_decay, 0, 1e3, "X", "on matrices only (0.1)", GIVEN_WD},
        {"--clip", ARG_FLOAT, &c.clip, 0, 1e9, "X", "global gradient norm limit (1.0; 0 off)", GIVEN_CLIP},
        {"--dropout", ARG_FLOAT, &c.dropout, 0, 0.99, "X", "dropout probability (0)", GIVEN_DROPOUT},
        {"run:", ARG_SECTION, .value = NULL},
        {"--seed", ARG_U64, &c.seed, 0, 0, "S", "seed of initialization, batches and dropout (1337)", GIVEN_SEED},
        {"--threads", ARG_INT, &c.threads, 0, 1024, "N", "threads (0: OpenMP's default)", GIVEN_THREADS},
        {"--eval-every", ARG_INT, &c.eval_every, 0, 1 << 30, "N", "steps between validations (200; 0: at the end)", GIVEN_EVAL_EVERY},
        {"--eval-batches", ARG_INT, &c.eval_batches, 1, 1 << 20, "N", "validation batches (20)", GIVEN_EVAL_BATCHES},
        {"--save-every", ARG_INT, &c.save_every, 0, 1 << 30, "N", "steps between checkpoints (1000; 0: at the end)", GIVEN_SAVE_EVERY},
        {"--zero", ARG_INT, &c.zero, 0, 1, "N", "1: shard the optimizer state over the processes (0)", GIVEN_ZERO},
        {0}};
    const ArgSpec spec = {"train", train_synopsis, opts, .given = &given};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    if (apply_model_flags(arch, attention, given, &c, &err) != 0) return cli_usage_error(err.msg);
    if (copy_path(c.data_prefix, sizeof c.data_prefix, "--data", data, &err) != 0 ||
        copy_path(c.tokenizer_dir, sizeof c.tokenizer_dir, "--tokenizer", tokdir, &err) != 0 ||
        copy_path(c.out_dir, sizeof c.out_dir, "--out", out, &err) != 0)
        return cli_usage_error(err.msg);
    if (given & GIVEN_BUDGET) {  /* the given limits replace the default step budget */
        c.max_steps = steps;
        c.max_tokens = tokens;
        c.max_minutes = minutes;
    }
    if ((given & GIVEN_CONTEXT) == 0) c.model.n_positions = c.context;

    if (resume) {
        TrainConfig saved;
        if (train_state_read_config(resume, &saved, &err) != 0) return cli_error(err.msg);
        if (check_resume_flags(&saved, &c, given, &err) != 0) return cli_error(err.msg);
        BackpackConfig model; /* the attention is the checkpoint's (config.json) */
        if ((given & GIVEN_ATTENTION) &&
            (checkpoint_read_config(resume, &model, &err) != 0 ||
             attention_kinds(&model) != attention_kinds(&c.model)))
            return cli_error(err.msg[0] ? err.msg
                                        : "--resume: --attention differs from the run being resumed");
        /* What may change on a resume: budget, threads, intervals, data and output paths. */
        if (given & GIVEN_BUDGET) {
            saved.max_steps = c.max_steps;
            saved.max_tokens = c.max_tokens;
            saved.max_minutes = c.max_minutes;
        }
        if (given & GIVEN_THREADS) saved.threads = c.threads;
        /* the saved batch is the global one; train_run shares it out or checks --batch */
        if (given & GIVEN_BATCH) saved.batch = c.batch;
        saved.zero = c.zero;
        if (given & GIVEN_EVAL_EVERY) saved.eval_every = c.eval_every;
        if (given & GIVEN_EVAL_BATCHES) saved.eval_batches = c.eval_batches;
        if (given & GIVEN_SAVE_EVERY) saved.save_every = c.save_every;
        if (given & GIVEN_DATA) memcpy(saved.data_prefix, c.data_prefix, sizeof c.data_prefix);
        if (given & GIVEN_TOKENIZER) memcpy(saved.tokenizer_dir, c.tokenizer_dir, sizeof c.tokenizer_dir);
        if (given & GIVEN_OUT) memcpy(saved.out_dir, c.out_dir, sizeof c.out_dir);
        else snprintf(saved.out_dir, sizeof saved.out_dir, "%s", resume);
        c = saved;
    } else {
        if (!c.data_prefix[0]) return cli_usage_error("train: --data PREFIX is required");
        if (!c.tokenizer_dir[0]) return cli_usage_error("train: --tokenizer DIR is required");
        if (!c.out_dir[0]) return cli_usage_error("train: --out DIR is required");
    }

    /* the data must be the tokenizer's, and the tokenizer the model's */
    char tokenizer_of_run[4096 + 16];
    snprintf(tokenizer_of_run, sizeof tokenizer_of_run, "%s", c.tokenizer_dir);
    if (resume && !(given & GIVEN_TOKENIZER)) {
        snprintf(tokenizer_of_run, sizeof tokenizer_of_run, "%s/vocab.json", resume);
        if (file_exists(tokenizer_of_run)) snprintf(tokenizer_of_run, sizeof tokenizer_of_run, "%s", resume);
        else tokenizer_of_run[0] = 0;   /* a model without its tokenizer: nothing to check against */
    }
    if (tokenizer_of_run[0] &&
        compat_check_data(c.data_prefix, tokenizer_of_run, c.model.vocab_size, &err) != 0)
        return cli_error(err.msg);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    stop_requested = 0;

    TrainHooks hooks = {.stop = &stop_requested, .progress_line = isatty(STDERR_FILENO)};
    TrainOutcome outcome;
    int rc = train_run(&c, resume, &hooks, &outcome, &err);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (rc != 0) return cli_error(err.msg);
    return 0;
}
