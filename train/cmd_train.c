/* cmd_train.c - `backpack init` and `backpack train`: argument parsing, signals and the
 * terminal; the work is in trainer.c. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli/commands.h"
#include "../common/fileio.h"
#include "../model/checkpoint.h"
#include "../text/tokenizer.h"
#include "../common/args.h"
#include "trainer.h"

static const char train_usage[] =
    "usage: backpack train --data PREFIX --tokenizer DIR --out DIR [options]\n"
    "       backpack train --resume DIR [--out DIR] [budget, threads, intervals]\n"
    "\n"
    "Reads PREFIX.train.tok and PREFIX.val.tok (backpack tokenize). Writes a checkpoint\n"
    "directory with train_state.bin and metrics.jsonl. Ctrl-C finishes the step, saves and\n"
    "exits; --resume continues (bit-identical losses with the same seed and threads).\n"
    "\n"
    "model:     --arch backpack|transformer (backpack)  --d N (256)  --layers N (4)\n"
    "           --heads N (4)  --senses N (16)  --context N (128: window and n_positions)\n"
    "           --attention dot|dense|random|fixed-random|factorized-dense|\n"
    "                       factorized-random|mix:A+B  (dot; docs/synthesizer.md)\n"
    "batch:     --batch B (16)  --accum N (1: micro-batches per step)\n"
    "budget:    --steps N | --tokens N | --minutes M   (1000 steps; the first limit ends it)\n"
    "optimizer: --lr X (6e-4)  --warmup STEPS (100)  --weight-decay X (0.1, matrices only)\n"
    "           --clip X (1.0, global norm; 0 off)  --dropout X (0)\n"
    "           AdamW betas (0.9, 0.999), eps 1e-8; linear warmup, then linear decay to 0\n"
    "           over the budget\n"
    "run:       --seed S (1337)  --threads N (OpenMP default)  --eval-every N (200)\n"
    "           --eval-batches N (20)  --save-every N (1000)\n";

static const char init_usage[] =
    "usage: backpack init --out DIR [--tokenizer DIR | --vocab V] [--seed S] [--force]\n"
    "                     [--arch backpack|transformer] [--d N] [--layers N] [--heads N]\n"
    "                     [--senses N] [--context N] [--attention VARIANT]\n"
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
    GIVEN_ATTENTION = 1 << 23,
};

static int copy_path(char *dst, size_t n, const char *flag, const char *v, BpError *err) {
    if (snprintf(dst, n, "%s", v) >= (int)n) return bp_fail(err, "%s: path too long", flag);
    return 0;
}

/* Parses one model flag into c; returns 1 if argv[*i] was one, 0 if not, -1 on error. */
static int parse_model_flag(int argc, char **argv, int *i, BackpackConfig *m, int *context,
                            unsigned *given, BpError *err) {
    const char *f = argv[*i], *v;
    int is = !strcmp(f, "--arch") || !strcmp(f, "--d") || !strcmp(f, "--layers") ||
             !strcmp(f, "--heads") || !strcmp(f, "--senses") || !strcmp(f, "--context") ||
             !strcmp(f, "--attention");
    if (!is) return 0;
    if (!(v = arg_value(argc, argv, i, err))) return -1;
    if (!strcmp(f, "--attention")) { /* docs/synthesizer.md */
        *given |= GIVEN_ATTENTION;
        return attention_parse(v, &m->attention, err) ? -1 : 1;
    }
    if (!strcmp(f, "--arch")) {
        if (!strcmp(v, "backpack")) m->arch = ARCH_BACKPACK;
        else if (!strcmp(v, "transformer")) m->arch = ARCH_TRANSFORMER;
        else return bp_fail(err, "--arch: expected backpack or transformer, got '%s'", v);
        *given |= GIVEN_ARCH;
        return 1;
    }
    if (!strcmp(f, "--d")) {
        *given |= GIVEN_D;
        return arg_int(f, v, 1, 65536, &m->n_embd, err) ? -1 : 1;
    }
    if (!strcmp(f, "--layers")) {
        *given |= GIVEN_LAYERS;
        return arg_int(f, v, 1, 1024, &m->n_layer, err) ? -1 : 1;
    }
    if (!strcmp(f, "--heads")) {
        *given |= GIVEN_HEADS;
        return arg_int(f, v, 1, 1024, &m->n_head, err) ? -1 : 1;
    }
    if (!strcmp(f, "--senses")) {
        *given |= GIVEN_SENSES;
        return arg_int(f, v, 1, 1024, &m->num_senses, err) ? -1 : 1;
    }
    *given |= GIVEN_CONTEXT;
    if (arg_int(f, v, 1, 1 << 20, context, err)) return -1;
    m->n_positions = *context;
    return 1;
}

int cmd_init(int argc, char **argv) {
    BpError err = {{0}};
    TrainConfig c;
    train_config_defaults(&c);
    char out[4096] = "", tokdir[4096] = "";
    uint64_t seed = c.seed;
    int force = 0;
    unsigned given = 0;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v;
        int r = parse_model_flag(argc, argv, &i, &c.model, &c.context, &given, &err);
        if (r < 0) return cli_error(err.msg);
        if (r > 0) continue;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            fputs(init_usage, stdout);
            return 0;
        } else if (!strcmp(f, "--force")) {
            force = 1;
        } else if (!strcmp(f, "--out") || !strcmp(f, "--tokenizer") || !strcmp(f, "--seed") ||
                   !strcmp(f, "--vocab")) {
            if (!(v = arg_value(argc, argv, &i, &err))) return cli_error(err.msg);
            int rc = 0;
            if (!strcmp(f, "--out")) rc = copy_path(out, sizeof out, f, v, &err);
            else if (!strcmp(f, "--tokenizer")) rc = copy_path(tokdir, sizeof tokdir, f, v, &err);
            else if (!strcmp(f, "--seed")) rc = arg_u64(f, v, 0, UINT64_MAX, &seed, &err);
            else {
                rc = arg_int(f, v, 1, 1 << 24, &c.model.vocab_size, &err);
                given |= GIVEN_VOCAB;
            }
            if (rc) return cli_error(err.msg);
        } else {
            fprintf(stderr, "backpack: init: unknown option '%s'\n%s", f, init_usage);
            return 2;
        }
    }
    if (!out[0]) return cli_error("init: --out DIR is required");
    if (tokdir[0]) {
        Tokenizer *tok;
        if (tokenizer_load(&tok, tokdir, &err) != 0) return cli_error(err.msg);
        int tv = tokenizer_vocab_size(tok);
        tokenizer_free(tok);
        if ((given & GIVEN_VOCAB) && c.model.vocab_size < tv) {
            snprintf(err.msg, sizeof err.msg, "init: --vocab %d is smaller than the tokenizer's %d",
                     c.model.vocab_size, tv);
            return cli_error(err.msg);
        }
        if (!(given & GIVEN_VOCAB)) c.model.vocab_size = tv;
    } else if (!(given & GIVEN_VOCAB)) {
        return cli_error("init: give --tokenizer DIR or --vocab V");
    }
    char st[4096 + 32];
    snprintf(st, sizeof st, "%s/model.safetensors", out);
    if (!force && file_exists(st)) {
        snprintf(err.msg, sizeof err.msg, "init: %s already holds a model (--force replaces it)", out);
        return cli_error(err.msg);
    }
    if (backpack_config_validate(&c.model, &err) != 0) return cli_error(err.msg);
    Backpack m;
    if (backpack_build(&m, &c.model, &err) != 0) return cli_error(err.msg);
    backpack_init_weights(&m, seed);
    int rc = checkpoint_save(&m, out, tokdir[0] ? tokdir : NULL, NULL, NULL, &err);
    size_t n = m.num_parameters;
    backpack_free(&m);
    if (rc != 0) return cli_error(err.msg);
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
    SAME(GIVEN_BATCH, saved->batch == asked->batch, "--batch");
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
    char resume[4096] = "";
    unsigned given = 0;
    uint64_t steps = 0, tokens = 0;
    double minutes = 0;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v;
        int r = parse_model_flag(argc, argv, &i, &c.model, &c.context, &given, &err);
        if (r < 0) return cli_error(err.msg);
        if (r > 0) continue;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            fputs(train_usage, stdout);
            return 0;
        }
        static const char *const valued[] = {
            "--data", "--tokenizer", "--out", "--resume", "--batch", "--accum", "--steps",
            "--tokens", "--minutes", "--lr", "--warmup", "--weight-decay", "--clip", "--dropout",
            "--seed", "--threads", "--eval-every", "--eval-batches", "--save-every"};
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) known |= !strcmp(f, valued[k]);
        if (!known) {
            fprintf(stderr, "backpack: train: unknown option '%s'\n%s", f, train_usage);
            return 2;
        }
        if (!(v = arg_value(argc, argv, &i, &err))) return cli_error(err.msg);
        int rc = 0;
        if (!strcmp(f, "--data")) rc = copy_path(c.data_prefix, sizeof c.data_prefix, f, v, &err), given |= GIVEN_DATA;
        else if (!strcmp(f, "--tokenizer")) rc = copy_path(c.tokenizer_dir, sizeof c.tokenizer_dir, f, v, &err), given |= GIVEN_TOKENIZER;
        else if (!strcmp(f, "--out")) rc = copy_path(c.out_dir, sizeof c.out_dir, f, v, &err), given |= GIVEN_OUT;
        else if (!strcmp(f, "--resume")) rc = copy_path(resume, sizeof resume, f, v, &err);
        else if (!strcmp(f, "--batch")) rc = arg_int(f, v, 1, 65536, &c.batch, &err), given |= GIVEN_BATCH;
        else if (!strcmp(f, "--accum")) rc = arg_int(f, v, 1, 65536, &c.accum, &err), given |= GIVEN_ACCUM;
        else if (!strcmp(f, "--steps")) rc = arg_u64(f, v, 1, UINT64_MAX, &steps, &err), given |= GIVEN_BUDGET;
        else if (!strcmp(f, "--tokens")) rc = arg_u64(f, v, 1, UINT64_MAX, &tokens, &err), given |= GIVEN_BUDGET;
        else if (!strcmp(f, "--minutes")) rc = arg_double(f, v, 1e-6, 1e7, &minutes, &err), given |= GIVEN_BUDGET;
        else if (!strcmp(f, "--lr")) rc = arg_float(f, v, 1e-12, 1e3, &c.lr, &err), given |= GIVEN_LR;
        else if (!strcmp(f, "--warmup")) rc = arg_u64(f, v, 0, UINT64_MAX, &c.warmup, &err), given |= GIVEN_WARMUP;
        else if (!strcmp(f, "--weight-decay")) rc = arg_float(f, v, 0, 1e3, &c.weight_decay, &err), given |= GIVEN_WD;
        else if (!strcmp(f, "--clip")) rc = arg_float(f, v, 0, 1e9, &c.clip, &err), given |= GIVEN_CLIP;
        else if (!strcmp(f, "--dropout")) rc = arg_float(f, v, 0, 0.99, &c.dropout, &err), given |= GIVEN_DROPOUT;
        else if (!strcmp(f, "--seed")) rc = arg_u64(f, v, 0, UINT64_MAX, &c.seed, &err), given |= GIVEN_SEED;
        else if (!strcmp(f, "--threads")) rc = arg_int(f, v, 0, 1024, &c.threads, &err), given |= GIVEN_THREADS;
        else if (!strcmp(f, "--eval-every")) rc = arg_int(f, v, 0, 1 << 30, &c.eval_every, &err), given |= GIVEN_EVAL_EVERY;
        else if (!strcmp(f, "--eval-batches")) rc = arg_int(f, v, 1, 1 << 20, &c.eval_batches, &err), given |= GIVEN_EVAL_BATCHES;
        else if (!strcmp(f, "--save-every")) rc = arg_int(f, v, 0, 1 << 30, &c.save_every, &err), given |= GIVEN_SAVE_EVERY;
        if (rc) return cli_error(err.msg);
    }
    if (given & GIVEN_BUDGET) {  /* the given limits replace the default step budget */
        c.max_steps = steps;
        c.max_tokens = tokens;
        c.max_minutes = minutes;
    }
    if ((given & GIVEN_CONTEXT) == 0) c.model.n_positions = c.context;

    if (resume[0]) {
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
        if (given & GIVEN_EVAL_EVERY) saved.eval_every = c.eval_every;
        if (given & GIVEN_EVAL_BATCHES) saved.eval_batches = c.eval_batches;
        if (given & GIVEN_SAVE_EVERY) saved.save_every = c.save_every;
        if (given & GIVEN_DATA) memcpy(saved.data_prefix, c.data_prefix, sizeof c.data_prefix);
        if (given & GIVEN_TOKENIZER) memcpy(saved.tokenizer_dir, c.tokenizer_dir, sizeof c.tokenizer_dir);
        if (given & GIVEN_OUT) memcpy(saved.out_dir, c.out_dir, sizeof c.out_dir);
        else snprintf(saved.out_dir, sizeof saved.out_dir, "%s", resume);
        c = saved;
    } else {
        if (!c.data_prefix[0]) return cli_error("train: --data PREFIX is required");
        if (!c.tokenizer_dir[0]) return cli_error("train: --tokenizer DIR is required");
        if (!c.out_dir[0]) return cli_error("train: --out DIR is required");
    }

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
    int rc = train_run(&c, resume[0] ? resume : NULL, &hooks, &outcome, &err);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (rc != 0) return cli_error(err.msg);
    return 0;
}
