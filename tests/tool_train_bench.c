/* tool_train_bench - the C side of the training benchmark against PyTorch (bench/run.sh).
 * Not a test: it measures. Three modes, each one process so that peak RSS is per mode:
 *
 *   tool_train_bench prepare --out DIR [--vocab V] [--d D] [--layers L] [--heads H]
 *                    [--senses K] [--ctx N] [--batch B] [--batches S] [--seed X]
 *                    [--data zipf|uniform] [--arch backpack|transformer]
 *       DIR/model/          a random model of the spec's initialization (checkpoint.h)
 *       DIR/tokens.bin      S batches of B windows of N+1 tokens, int32 little-endian:
 *                           batch s, window b is tokens [(s B + b)(N+1), ... + N + 1)
 *       Both sides (this tool and bench/torch_model.py) read the same two files, so they
 *       train the same weights on the same data and their losses can be compared.
 *       Data "zipf" draws ids with P(rank r) ~ 1/(r+1) (rank -> id by a random
 *       permutation), like the word frequencies of text; "uniform" draws them uniformly.
 *
 *   tool_train_bench train --dir DIR [--warmup W] [--steps M] [--threads T]
 *       W untimed then M timed training steps on batches 0, 1, ... (wrapping): forward,
 *       backward, gradient clipping at 1.0 and AdamW (lr 6e-4, the spec's betas and
 *       weight decay), without dropout. Prints one line of JSON: tokens_per_s (B N M over
 *       the M timed steps' wall time), the CPU seconds per timed step (all threads),
 *       every step's seconds and loss, peak RSS (KiB).
 *
 *   tool_train_bench generate --dir DIR [--new T] [--runs R] [--threads T] [--int8 G]
 *       Greedy generation, batch 1, through model/infer.h as `backpack generate` does it:
 *       feed the prompt token 0, then T times take the argmax (lowest id on ties) and
 *       feed it, with infer_step_greedy (the exact argmax of infer_step's logits, found
 *       without the full-precision V x d product; T calls in all). R timed runs after
 *       one warm-up.
 *       Prints one line of JSON: tokens_per_s of each run, CPU seconds per token (all
 *       threads, timed runs), the greedy ids, peak RSS.
 *       --int8 G generates with the int8 copies of model/quant.h, G inputs per scale
 *       (0: one per row), built before the runs (not timed).
 */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "../common/fileio.h"
#include "../common/rng.h"
#include "../model/backpack.h"
#include "../model/checkpoint.h"
#include "../model/infer.h"
#include "../model/quant.h"
#include "../train/adamw.h"

typedef struct {
    const char *mode;
    const char *out, *dir, *data;
    BackpackConfig model;
    int batch, batches, warmup, steps, threads, new_tokens, runs, int8_group; /* -1: float */
    uint64_t seed;
} Options;

static int fail(const char *msg) {
    fprintf(stderr, "tool_train_bench: %s\n", msg);
    return 1;
}

/* CPU seconds of all the process's threads (work, without time spent waiting for a core). */
static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static long peak_rss_kib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss; /* KiB on Linux */
}

static int parse(int argc, char **argv, Options *o) {
    *o = (Options){.data = "zipf", .batch = 8, .batches = 8, .warmup = 2, .steps = 5,
                   .threads = 2, .new_tokens = 256, .runs = 3, .seed = 1, .int8_group = -1};
    o->model = (BackpackConfig){ARCH_BACKPACK, 8192, 256, 4, 4, 16, 256, 4, ATTN_DOT, 0};
    if (argc < 2) return -1;
    o->mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) {
            fprintf(stderr, "tool_train_bench: %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--dir")) o->dir = v;
        else if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--arch"))
            o->model.arch = !strcmp(v, "transformer") ? ARCH_TRANSFORMER : ARCH_BACKPACK;
        else if (!strcmp(a, "--vocab")) o->model.vocab_size = atoi(v);
        else if (!strcmp(a, "--d")) o->model.n_embd = atoi(v);
        else if (!strcmp(a, "--layers")) o->model.n_layer = atoi(v);
        else if (!strcmp(a, "--heads")) o->model.n_head = atoi(v);
        else if (!strcmp(a, "--senses")) o->model.num_senses = atoi(v);
        else if (!strcmp(a, "--ctx")) o->model.n_positions = atoi(v);
        else if (!strcmp(a, "--batch")) o->batch = atoi(v);
        else if (!strcmp(a, "--batches")) o->batches = atoi(v);
        else if (!strcmp(a, "--warmup")) o->warmup = atoi(v);
        else if (!strcmp(a, "--steps")) o->steps = atoi(v);
        else if (!strcmp(a, "--threads")) o->threads = atoi(v);
        else if (!strcmp(a, "--new")) o->new_tokens = atoi(v);
        else if (!strcmp(a, "--runs")) o->runs = atoi(v);
        else if (!strcmp(a, "--int8")) o->int8_group = atoi(v);
        else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 10);
        else {
            fprintf(stderr, "tool_train_bench: unknown option %s\n", a);
            return -1;
        }
    }
    if (o->batch < 1 || o->batches < 1 || o->warmup < 0 || o->steps < 1 || o->threads < 1 ||
        o->new_tokens < 1 || o->runs < 1) {
        fprintf(stderr, "tool_train_bench: counts must be positive\n");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Token ids with Zipf-like frequencies: rank r has weight 1/(r+1); ranks map to ids
 * through a random permutation. */
static void draw_tokens(int *out, size_t n, int V, int zipf, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    if (!zipf) {
        for (size_t i = 0; i < n; i++) out[i] = (int)rng_below(&rng, (uint64_t)V);
        return;
    }
    double *cdf = malloc((size_t)V * sizeof(double));
    int *perm = malloc((size_t)V * sizeof(int));
    double total = 0;
    for (int r = 0; r < V; r++) cdf[r] = total += 1.0 / (r + 1);
    for (int r = 0; r < V; r++) perm[r] = r;
    for (int r = V - 1; r > 0; r--) {
        int j = (int)rng_below(&rng, (uint64_t)r + 1), t = perm[r];
        perm[r] = perm[j];
        perm[j] = t;
    }
    for (size_t i = 0; i < n; i++) {
        double u = (double)(rng_next(&rng) >> 11) * (1.0 / 9007199254740992.0) * total;
        int lo = 0, hi = V - 1; /* first r with cdf[r] > u */
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (cdf[mid] > u) hi = mid;
            else lo = mid + 1;
        }
        out[i] = perm[lo];
    }
    free(cdf);
    free(perm);
}

static int cmd_prepare(const Options *o) {
    if (!o->out) return fail("prepare needs --out DIR");
    BpError err = {0};
    BackpackConfig c = o->model;
    Backpack m;
    if (backpack_config_validate(&c, &err) || backpack_build(&m, &c, &err)) return fail(err.msg);
    backpack_init_weights(&m, o->seed);
    char path[4096];
    if (make_dirs(o->out, &err) || path_join(path, sizeof path, o->out, "model", &err) ||
        checkpoint_save(&m, path, NULL, NULL, NULL, &err))
        return fail(err.msg);
    backpack_free(&m);
    size_t n = (size_t)o->batches * o->batch * (c.n_positions + 1);
    int *tokens = malloc(n * sizeof(int));
    if (!tokens) return fail("out of memory");
    draw_tokens(tokens, n, c.vocab_size, strcmp(o->data, "uniform") != 0, o->seed + 1);
    if (path_join(path, sizeof path, o->out, "tokens.bin", &err) ||
        write_file_atomic(path, tokens, n * sizeof(int), &err))
        return fail(err.msg);
    /* distinct words per batch: how much the once-per-word sense network saves */
    char *seen = calloc((size_t)c.vocab_size, 1);
    size_t T = c.n_positions, per = (size_t)o->batch * (T + 1), distinct = 0;
    for (size_t i = 0; i < per; i++)
        if (i % (T + 1) != T && !seen[tokens[i]]) seen[tokens[i]] = 1, distinct++;
    printf("{\"tokens\": %zu, \"distinct_in_batch0\": %zu, \"positions_per_batch\": %zu}\n",
           n, distinct, (size_t)o->batch * T);
    free(seen);
    free(tokens);
    return 0;
}

/* Loads DIR/model and DIR/tokens.bin. */
static int load(const Options *o, Backpack *m, int **tokens, size_t *count) {
    if (!o->dir) return fail("needs --dir DIR (made by prepare)");
    BpError err = {0};
    char path[4096];
    if (path_join(path, sizeof path, o->dir, "model", &err) || checkpoint_load(m, path, &err))
        return fail(err.msg);
    char *raw;
    size_t len;
    if (path_join(path, sizeof path, o->dir, "tokens.bin", &err) ||
        read_file(path, &raw, &len, &err))
        return fail(err.msg);
    *tokens = (int *)raw;
    *count = len / sizeof(int);
    for (size_t i = 0; i < *count; i++)
        if ((*tokens)[i] < 0 || (*tokens)[i] >= m->config.vocab_size)
            return fail("tokens.bin: token out of the model's vocabulary");
    return 0;
}

static int cmd_train(const Options *o) {
    Backpack m;
    int *tokens;
    size_t count;
    if (load(o, &m, &tokens, &count)) return 1;
    BpError err = {0};
    int B = o->batch, T = m.config.n_positions;
    size_t per_batch = (size_t)B * (T + 1);
    size_t nbatches = count / per_batch;
    if (nbatches < 1) return fail("tokens.bin holds less than one batch of this shape");
    AdamW opt;
    AdamWConfig ac = adamw_default_config();
    if (adamw_build_for_model(&opt, &ac, &m, &err)) return fail(err.msg);
    int *inputs = malloc((size_t)B * T * sizeof(int)), *targets = malloc((size_t)B * T * sizeof(int));
    int total = o->warmup + o->steps;
    double *secs = malloc((size_t)total * sizeof(double)), *losses = malloc((size_t)total * sizeof(double));
    double timed = 0, cpu = 0;
    for (int s = 0; s < total; s++) {
        const int *win = tokens + (size_t)(s % nbatches) * per_batch;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                inputs[b * T + t] = win[(size_t)b * (T + 1) + t];
                targets[b * T + t] = win[(size_t)b * (T + 1) + t + 1];
            }
        double t0 = now_seconds(), c0 = cpu_seconds();
        backpack_zero_grad(&m);
        if (backpack_forward(&m, inputs, targets, B, T, NULL, &err) || backpack_backward(&m, &err))
            return fail(err.msg);
        const double norm = grad_norm(m.grads_memory, m.num_parameters);
        adamw_step(&opt, m.params_memory, m.grads_memory, clip_factor(norm, 1.0), 6e-4f);
        secs[s] = now_seconds() - t0;
        losses[s] = m.mean_loss;
        if (s >= o->warmup) timed += secs[s], cpu += cpu_seconds() - c0;
    }
    printf("{\"tokens_per_s\": %.2f, \"cpu_seconds_per_step\": %.4f, \"threads\": %d, "
           "\"peak_rss_kib\": %ld, \"step_seconds\": [",
           (double)B * T * o->steps / timed, cpu / o->steps, omp_get_max_threads(), peak_rss_kib());
    for (int s = 0; s < total; s++) printf("%s%.4f", s ? ", " : "", secs[s]);
    printf("], \"losses\": [");
    for (int s = 0; s < total; s++) printf("%s%.6f", s ? ", " : "", losses[s]);
    printf("], \"warmup\": %d}\n", o->warmup);
    adamw_free(&opt);
    backpack_free(&m);
    free(tokens);
    free(inputs);
    free(targets);
    free(secs);
    free(losses);
    return 0;
}

static int cmd_generate(const Options *o) {
    Backpack m;
    int *tokens;
    size_t count;
    if (load(o, &m, &tokens, &count)) return 1;
    BpError err = {0};
    int n = o->new_tokens;
    if (n > m.config.n_positions) return fail("--new exceeds the model's context");
    InferState s;
    if (infer_build(&s, &m, n, &err)) return fail(err.msg);
    QuantModel *quant = NULL;
    if (o->int8_group >= 0 && !(quant = quant_build(&m, o->int8_group, &err))) return fail(err.msg);
    infer_set_quant(&s, quant);
    int *out = malloc((size_t)n * sizeof(int));
    double *rates = malloc((size_t)o->runs * sizeof(double)), cpu = 0.0;
    for (int r = 0; r <= o->runs; r++) { /* run 0 warms up */
        infer_reset(&s);
        int token = 0;
        double t0 = now_seconds(), c0 = cpu_seconds();
        for (int i = 0; i < n; i++) {
            token = infer_step_greedy(&s, token, &err);
            if (token < 0) return fail(err.msg);
            out[i] = token;
        }
        double dt = now_seconds() - t0;
        if (r > 0) rates[r - 1] = n / dt;
        if (r > 0) cpu += cpu_seconds() - c0;
    }
    printf("{\"tokens_per_s\": [");
    for (int r = 0; r < o->runs; r++) printf("%s%.2f", r ? ", " : "", rates[r]);
    qsort(rates, (size_t)o->runs, sizeof(double), cmp_double);
    printf("], \"median_tokens_per_s\": %.2f, \"cpu_seconds_per_token\": %.5f, \"peak_rss_kib\": %ld, "
           "\"int8_group\": %d, \"tokens\": [",
           rates[o->runs / 2], cpu / ((double)n * o->runs), peak_rss_kib(), o->int8_group);
    for (int i = 0; i < n; i++) printf("%s%d", i ? ", " : "", out[i]);
    printf("]}\n");
    infer_free(&s);
    quant_free(quant);
    backpack_free(&m);
    free(tokens);
    free(out);
    free(rates);
    return 0;
}

int main(int argc, char **argv) {
    Options o;
    if (parse(argc, argv, &o)) {
        fprintf(stderr, "usage: tool_train_bench prepare|train|generate [options] (see the source)\n");
        return 2;
    }
    omp_set_num_threads(o.threads);
    openblas_set_num_threads(o.threads);
    if (!strcmp(o.mode, "prepare")) return cmd_prepare(&o);
    if (!strcmp(o.mode, "train")) return cmd_train(&o);
    if (!strcmp(o.mode, "generate")) return cmd_generate(&o);
    fprintf(stderr, "tool_train_bench: unknown mode %s\n", o.mode);
    return 2;
}
