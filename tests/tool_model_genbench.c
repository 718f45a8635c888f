/* tool_model_genbench - greedy generation speed of a randomly initialized model,
 * batch 1, with the caches of model/infer.h. Not a test: prints tokens/s.
 *
 *   tool_model_genbench [--arch backpack|transformer] [--vocab V] [--d D] [--layers L]
 *                       [--heads H] [--senses K] [--ctx N] [--new T] [--runs R]
 *                       [--seed S] [--exact] [--print-tokens] [--int8] [--group G]
 *
 * Defaults are the benchmark's configuration A (bench/run.sh: V 8192, d 256, L 4, H 4,
 * k 16, context 256, 256 new tokens). Each run feeds the one-token prompt 0 and then
 * generates T tokens greedily (T steps, so the context holds 1 + T - 1 = T positions);
 * the first run is a warm-up. Prints each run's tokens/s, the median, and a hash of the greedy tokens.
 * By default tokens come from infer_step_greedy; --exact uses infer_step (all V
 * logits) and sample_token at temperature 0: the tokens must be the same.
 * --int8 generates with the int8 copies of model/quant.h (groups of G inputs per scale,
 * default QUANT_DEFAULT_GROUP; 0: one scale per row); the copy is built before the
 * runs and not timed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fileio.h"
#include "../common/hash.h"
#include "../model/backpack.h"
#include "../model/infer.h"
#include "../model/quant.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    BackpackConfig c = {ARCH_BACKPACK, 8192, 256, 4, 4, 16, 256, 4, ATTN_DOT, 0};
    int new_tokens = 256, runs = 4, print_tokens = 0, exact = 0, int8 = 0, group = QUANT_DEFAULT_GROUP;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--print-tokens")) { print_tokens = 1; continue; }
        if (!strcmp(a, "--exact")) { exact = 1; continue; }
        if (!strcmp(a, "--int8")) { int8 = 1; continue; }
        if (!val) { fprintf(stderr, "genbench: %s needs a value\n", a); return 2; }
        i++;
        if (!strcmp(a, "--arch")) {
            if (!strcmp(val, "backpack")) c.arch = ARCH_BACKPACK;
            else if (!strcmp(val, "transformer")) c.arch = ARCH_TRANSFORMER;
            else { fprintf(stderr, "genbench: --arch %s: want backpack or transformer\n", val); return 2; }
        } else if (!strcmp(a, "--vocab")) c.vocab_size = atoi(val);
        else if (!strcmp(a, "--d")) c.n_embd = atoi(val);
        else if (!strcmp(a, "--layers")) c.n_layer = atoi(val);
        else if (!strcmp(a, "--heads")) c.n_head = atoi(val);
        else if (!strcmp(a, "--senses")) c.num_senses = atoi(val);
        else if (!strcmp(a, "--ctx")) c.n_positions = atoi(val);
        else if (!strcmp(a, "--new")) new_tokens = atoi(val);
        else if (!strcmp(a, "--runs")) runs = atoi(val);
        else if (!strcmp(a, "--group")) group = atoi(val);
        else if (!strcmp(a, "--seed")) seed = strtoull(val, NULL, 10);
        else { fprintf(stderr, "genbench: unknown option %s\n", a); return 2; }
    }
    BpError err = {0};
    Backpack m;
    if (backpack_config_validate(&c, &err) || backpack_build(&m, &c, &err)) {
        fprintf(stderr, "genbench: %s\n", err.msg);
        return 1;
    }
    if (new_tokens < 1 || new_tokens > c.n_positions || runs < 1) {
        fprintf(stderr, "genbench: --new must be in [1, ctx] and --runs >= 1\n");
        return 1;
    }
    backpack_init_weights(&m, seed);
    InferState s;
    if (infer_build(&s, &m, c.n_positions, &err)) {
        fprintf(stderr, "genbench: %s\n", err.msg);
        return 1;
    }
    QuantModel *quant = NULL;
    if (int8) {
        if (!(quant = quant_build(&m, group, &err))) {
            fprintf(stderr, "genbench: %s\n", err.msg);
            return 1;
        }
        infer_set_quant(&s, quant);
    }
    int *out = malloc((size_t)new_tokens * sizeof(int));
    double *rates = malloc((size_t)runs * sizeof(double));
    SamplerConfig greedy = {0.0f, 0, 1.0f};
    Rng rng;
    rng_seed(&rng, seed);
    for (int r = 0; r <= runs; r++) { /* run 0 warms up */
        infer_reset(&s);
        int token = 0;
        double t0 = now_seconds();
        for (int i = 0; i < new_tokens; i++) {
            if (exact) {
                const float *logits = infer_step(&s, token, &err);
                token = logits ? sample_token(logits, c.vocab_size, &greedy, &rng) : -1;
            } else {
                token = infer_step_greedy(&s, token, &err);
            }
            if (token < 0) {
                fprintf(stderr, "genbench: %s\n", err.msg);
                return 1;
            }
            out[i] = token;
        }
        double dt = now_seconds() - t0;
        if (r > 0) {
            rates[r - 1] = new_tokens / dt;
            printf("run %d: %d tokens in %.3f s, %.1f tokens/s\n", r, new_tokens, dt,
                   rates[r - 1]);
        }
    }
    uint64_t hash = hash64(out, (size_t)new_tokens * sizeof *out); /* of the greedy tokens */
    for (int i = 0; i < new_tokens && print_tokens; i++) printf("%d%c", out[i], i + 1 < new_tokens ? ' ' : '\n');
    qsort(rates, (size_t)runs, sizeof(double), cmp_double);
    printf("%s%s%s V=%d d=%d L=%d H=%d k=%d ctx=%d: median %.1f tokens/s (min %.1f, max %.1f) over %d runs, tokens hash %016llx\n",
           c.arch == ARCH_BACKPACK ? "backpack" : "transformer", exact ? " (exact)" : "",
           int8 ? " (int8)" : "", c.vocab_size, c.n_embd,
           c.n_layer, c.n_head, c.num_senses, c.n_positions, rates[runs / 2], rates[0],
           rates[runs - 1], runs, (unsigned long long)hash);
    free(out);
    free(rates);
    infer_free(&s);
    quant_free(quant);
    backpack_free(&m);
    return 0;
}
