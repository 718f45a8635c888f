/* Incremental inference (model/infer.c) against the full forward (model/backpack.c),
 * the exact effect of sense edits, and the sampler (model/sample.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/backpack.h"
#include "../model/infer.h"

enum { TINY_V = 50, TINY_D = 16, TINY_L = 2, TINY_H = 2, TINY_K = 4, TINY_N = 12 };

static BackpackConfig tiny_config(ModelArch arch) {
    BackpackConfig c = {
        .arch = arch,
        .vocab_size = TINY_V,
        .n_embd = TINY_D,
        .n_layer = TINY_L,
        .n_head = TINY_H,
        .num_senses = TINY_K,
        .n_positions = TINY_N,
        .sense_intermediate_scale = 4,
    };
    return c;
}

/* A tiny model with every parameter N(0, 0.3): far from the published initialization
 * on purpose, so that the logits are of order 1 and a wrong scaling, a missing bias or
 * a wrong mask moves them by much more than the tolerance. */
static void build_random(Backpack *m, ModelArch arch, uint64_t seed) {
    BackpackConfig c = tiny_config(arch);
    BpError err = {0};
    assert_int_equal(backpack_build(m, &c, &err), 0);
    Rng rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < m->num_parameters; i++) m->params_memory[i] = 0.3f * rng_normal(&rng);
}

static const int context[TINY_N] = {3, 17, 3, 42, 8, 8, 49, 0, 17, 3, 25, 11};

/* Full-forward logits (T, V) of context[0..T), copied out. */
static float *full_logits(Backpack *m, int T) {
    BpError err = {0};
    int rc = backpack_forward(m, context, NULL, 1, T, NULL, &err);
    if (rc) fail_msg("backpack_forward: %s", err.msg);
    float *out = malloc((size_t)T * TINY_V * sizeof(float));
    memcpy(out, backpack_logits(m), (size_t)T * TINY_V * sizeof(float));
    return out;
}

/* max |a - b| over n floats, and max |a| so that a test can check it is not vacuous. */
static double max_abs_diff(const float *a, const float *b, int n) {
    double mx = 0.0;
    for (int i = 0; i < n; i++) mx = fmax(mx, fabs((double)a[i] - b[i]));
    return mx;
}

static double max_abs(const float *a, int n) {
    double mx = 0.0;
    for (int i = 0; i < n; i++) mx = fmax(mx, fabs((double)a[i]));
    return mx;
}

static void check_incremental_equals_full(ModelArch arch) {
    Backpack m;
    build_random(&m, arch, 1234 + arch);
    float *full = full_logits(&m, TINY_N);
    InferState s;
    BpError err = {0};
    assert_int_equal(infer_build(&s, &m, TINY_N, &err), 0);
    double worst = 0.0, scale = 0.0;
    for (int t = 0; t < TINY_N; t++) {
        const float *logits = infer_step(&s, context[t], &err);
        assert_non_null(logits);
        assert_int_equal(s.len, t + 1);
        worst = fmax(worst, max_abs_diff(logits, full + (size_t)t * TINY_V, TINY_V));
        scale = fmax(scale, max_abs(logits, TINY_V));
    }
    print_message("arch %d: max |incremental - full| = %.3g, max |logit| = %.3g\n", arch, worst,
                  scale);
    assert_true(worst <= 1e-5);
    assert_true(scale > 0.5); /* the comparison is not between near-zero numbers */
    if (arch == ARCH_TRANSFORMER) {
        assert_null(infer_alpha(&s));
        assert_null(infer_context_senses(&s));
    }

    /* reset gives a fresh context: bit-identical logits; feed == step without logits */
    infer_reset(&s);
    assert_int_equal(s.len, 0);
    for (int t = 0; t < TINY_N - 1; t++) assert_int_equal(infer_feed(&s, context[t], &err), 0);
    const float *last = infer_step(&s, context[TINY_N - 1], &err);
    assert_non_null(last);
    assert_true(max_abs_diff(last, full + (size_t)(TINY_N - 1) * TINY_V, TINY_V) <= 1e-5);
    infer_free(&s);
    free(full);
    backpack_free(&m);
}

static void test_incremental_equals_full_backpack(void **state) {
    (void)state;
    check_incremental_equals_full(ARCH_BACKPACK);
}

static void test_incremental_equals_full_transformer(void **state) {
    (void)state;
    check_incremental_equals_full(ARCH_TRANSFORMER);
}

/* Widths that are not multiples of the 16-float vectors, a vocabulary that is not a
 * multiple of 4 rows, and a model large enough for the two-thread step (model/team.h:
 * over 2^20 weights read per token): the kernels' tails and parallel paths against the
 * full forward, and the greedy path. Two threads and one give bit-identical logits
 * (every chunk computes the same operations whichever thread takes it). */
static void test_incremental_equals_full_wide(void **state) {
    (void)state;
    BackpackConfig c = {.arch = ARCH_BACKPACK, .vocab_size = 4099, .n_embd = 264, .n_layer = 1,
                        .n_head = 2, .num_senses = 8, .n_positions = 20,
                        .sense_intermediate_scale = 4};
    Backpack m;
    BpError err = {0};
    assert_int_equal(backpack_build(&m, &c, &err), 0);
    Rng rng;
    rng_seed(&rng, 2024);
    for (size_t i = 0; i < m.num_parameters; i++) m.params_memory[i] = 0.05f * rng_normal(&rng);
    enum { T = 20 };
    int tokens[T];
    for (int t = 0; t < T; t++) tokens[t] = (int)rng_below(&rng, 40) * 100; /* repeats */
    assert_int_equal(backpack_forward(&m, tokens, NULL, 1, T, NULL, &err), 0);
    const float *full = backpack_logits(&m);
    InferState s, g, one;
    assert_int_equal(infer_build(&s, &m, T, &err), 0);
    assert_int_equal(infer_build(&g, &m, T, &err), 0);
    assert_int_equal(infer_build(&one, &m, T, &err), 0);
    SamplerConfig greedy = {0.0f, 0, 1.0f};
    double worst = 0.0, scale = 0.0;
    const int threads = omp_get_max_threads();
    for (int t = 0; t < T; t++) {
        omp_set_num_threads(1);
        const float *alone = infer_step(&one, tokens[t], &err);
        omp_set_num_threads(2);
        const float *logits = infer_step(&s, tokens[t], &err);
        assert_non_null(logits);
        assert_non_null(alone);
        assert_memory_equal(logits, alone, (size_t)c.vocab_size * sizeof(float));
        worst = fmax(worst, max_abs_diff(logits, full + (size_t)t * c.vocab_size, c.vocab_size));
        scale = fmax(scale, max_abs(logits, c.vocab_size));
        assert_int_equal(infer_step_greedy(&g, tokens[t], &err),
                         sample_token(logits, c.vocab_size, &greedy, &rng));
    }
    omp_set_num_threads(threads);
    print_message("wide: max |incremental - full| = %.3g, max |logit| = %.3g\n", worst, scale);
    assert_true(worst <= 1e-5);
    assert_true(scale > 0.5);
    assert_memory_equal(infer_alpha(&s), infer_alpha(&one), (size_t)c.num_senses * T * sizeof(float));
    infer_free(&s);
    infer_free(&g);
    infer_free(&one);
    backpack_free(&m);
}

static void test_reset_is_bit_identical(void **state) {
    (void)state;
    Backpack m;
    build_random(&m, ARCH_BACKPACK, 77);
    InferState s;
    BpError err = {0};
    assert_int_equal(infer_build(&s, &m, TINY_N, &err), 0);
    float first[TINY_N][TINY_V];
    for (int t = 0; t < TINY_N; t++)
        memcpy(first[t], infer_step(&s, context[t], &err), sizeof first[t]);
    infer_reset(&s);
    for (int t = 0; t < TINY_N; t++)
        assert_memory_equal(first[t], infer_step(&s, context[t], &err), sizeof first[t]);
    infer_free(&s);
    backpack_free(&m);
}

/* (E v)[t] for t < V in double: the direction a sense vector pushes the logits. */
static void project(const Backpack *m, const float *v, double *out) {
    const int d = m->config.n_embd;
    for (int t = 0; t < m->config.vocab_size; t++) {
        double acc = 0.0;
        for (int i = 0; i < d; i++) acc += (double)m->params.wte[(size_t)t * d + i] * v[i];
        out[t] = acc;
    }
}

/* Without edits alpha rows sum to 1, and the logits are exactly the sum over (j, l) of
 * alpha_l[j] E C(x_j)_l: the decomposition the browser shows. */
static void test_alpha_and_contributions(void **state) {
    (void)state;
    Backpack m;
    build_random(&m, ARCH_BACKPACK, 99);
    const int d = TINY_D, k = TINY_K;
    InferState s;
    BpError err = {0};
    assert_int_equal(infer_build(&s, &m, TINY_N, &err), 0);
    double proj[TINY_V], sum[TINY_V];
    for (int t = 0; t < TINY_N; t++) {
        const float *logits = infer_step(&s, context[t], &err);
        assert_non_null(logits);
        const float *alpha = infer_alpha(&s), *senses = infer_context_senses(&s);
        for (int l = 0; l < k; l++) {
            double row = 0.0;
            for (int j = 0; j <= t; j++) {
                float a = alpha[l * s.max_len + j];
                assert_true(a >= 0.0f && a <= 1.0f);
                row += a;
            }
            assert_true(fabs(row - 1.0) <= 1e-5);
        }
        for (int v = 0; v < TINY_V; v++) sum[v] = 0.0;
        for (int j = 0; j <= t; j++)
            for (int l = 0; l < k; l++) {
                project(&m, senses + ((size_t)j * k + l) * d, proj);
                for (int v = 0; v < TINY_V; v++) sum[v] += alpha[l * s.max_len + j] * proj[v];
            }
        for (int v = 0; v < TINY_V; v++) assert_true(fabs(sum[v] - logits[v]) <= 1e-5);
    }
    /* context vectors of repeated words are the same (cached from the first occurrence) */
    const float *senses = infer_context_senses(&s);
    assert_memory_equal(senses + 0 * k * d, senses + 2 * k * d, (size_t)k * d * sizeof(float));
    infer_free(&s);
    backpack_free(&m);
}

/* A context of one word x: alpha_l[0, 0] = 1 for every sense, so the logits are
 * sum_l E C(x)_l and an edit's effect is known exactly. */
static void test_edit_effect_one_word(void **state) {
    (void)state;
    Backpack m;
    build_random(&m, ARCH_BACKPACK, 5);
    const int d = TINY_D, k = TINY_K, x = 17, sense = 2;
    InferState s;
    BpError err = {0};
    assert_int_equal(infer_build(&s, &m, 4, &err), 0);
    float base[TINY_V], cx[TINY_D];
    memcpy(base, infer_step(&s, x, &err), sizeof base);
    memcpy(cx, infer_context_senses(&s) + (size_t)sense * d, sizeof cx);

    /* vector edit: logits change by E (C'(x)_l - C(x)_l) */
    float replacement[TINY_D], delta[TINY_D];
    Rng rng;
    rng_seed(&rng, 3);
    for (int i = 0; i < d; i++) {
        replacement[i] = rng_normal(&rng);
        delta[i] = replacement[i] - cx[i];
    }
    SenseEdit vec_edit = {.token = x, .sense = sense, .vector = replacement, .weight = 1.0f};
    SenseEdits edits = {&vec_edit, 1};
    infer_set_edits(&s, &edits);
    infer_reset(&s);
    const float *edited = infer_step(&s, x, &err);
    double want[TINY_V];
    project(&m, delta, want);
    double moved = 0.0;
    for (int v = 0; v < TINY_V; v++) {
        assert_true(fabs((edited[v] - base[v]) - want[v]) <= 1e-4);
        moved = fmax(moved, fabs(want[v]));
    }
    assert_true(moved > 0.1);
    assert_memory_equal(infer_context_senses(&s) + (size_t)sense * d, replacement,
                        sizeof replacement);

    /* weight edit: logits change by (w - 1) E C(x)_l; alpha is scaled, not renormalized */
    const float w = 0.25f;
    SenseEdit weight_edit = {.token = x, .sense = sense, .vector = NULL, .weight = w};
    edits = (SenseEdits){&weight_edit, 1};
    infer_reset(&s);
    edited = infer_step(&s, x, &err);
    project(&m, cx, want);
    for (int v = 0; v < TINY_V; v++)
        assert_true(fabs((edited[v] - base[v]) - (w - 1.0f) * want[v]) <= 1e-4);
    assert_true(fabsf(infer_alpha(&s)[sense * s.max_len] - w) <= 1e-6f);
    assert_true(fabsf(infer_alpha(&s)[(sense + 1) * s.max_len] - 1.0f) <= 1e-6f);

    /* an edit of another word changes nothing */
    weight_edit.token = x + 1;
    infer_reset(&s);
    assert_memory_equal(infer_step(&s, x, &err), base, sizeof base);

    /* edits out of range are ignored, never read out of bounds */
    SenseEdit bad[2] = {{.token = TINY_V + 5, .sense = 0, .vector = NULL, .weight = 0.0f},
                        {.token = x, .sense = k, .vector = NULL, .weight = 0.0f}};
    edits = (SenseEdits){bad, 2};
    infer_reset(&s);
    assert_memory_equal(infer_step(&s, x, &err), base, sizeof base);
    infer_free(&s);
    backpack_free(&m);
}

/* The full forward with m->edits and the incremental path with the same edits agree,
 * on a context where the edited word occurs several times. */
static void test_edits_match_full_forward(void **state) {
    (void)state;
    Backpack m;
    build_random(&m, ARCH_BACKPACK, 11);
    float replacement[TINY_D];
    Rng rng;
    rng_seed(&rng, 8);
    for (int i = 0; i < TINY_D; i++) replacement[i] = rng_normal(&rng);
    SenseEdit items[3] = {
        {.token = 3, .sense = 1, .vector = replacement, .weight = 1.0f},
        {.token = 3, .sense = 0, .vector = NULL, .weight = 0.0f},
        {.token = 8, .sense = 3, .vector = NULL, .weight = 2.5f},
    };
    SenseEdits edits = {items, 3};
    float *plain = full_logits(&m, TINY_N);
    m.edits = &edits;
    float *full = full_logits(&m, TINY_N);
    InferState s;
    BpError err = {0};
    assert_int_equal(infer_build(&s, &m, TINY_N, &err), 0); /* starts with m.edits */
    assert_ptr_equal(s.edits, &edits);
    double worst = 0.0;
    for (int t = 0; t < TINY_N; t++) {
        const float *logits = infer_step(&s, context[t], &err);
        worst = fmax(worst, max_abs_diff(logits, full + (size_t)t * TINY_V, TINY_V));
    }
    print_message("edited: max |incremental - full| = %.3g, edits moved the logits by %.3g\n",
                  worst, max_abs_diff(plain, full, TINY_N * TINY_V));
    assert_true(max_abs_diff(plain, full, TINY_N * TINY_V) > 0.1);
    assert_true(worst <= 1e-5);
    infer_free(&s);
    free(full);
    free(plain);
    backpack_free(&m);
}

/* infer_step_greedy chooses exactly argmax(infer_step's logits), lowest id on ties. */
static void check_greedy_matches_argmax(ModelArch arch) {
    Backpack m;
    build_random(&m, arch, 31 + arch);
    const int d = TINY_D;
    InferState exact, fast;
    BpError err = {0};
    SamplerConfig greedy = {0.0f, 0, 1.0f};
    Rng rng;
    rng_seed(&rng, 1);
    /* The word that wins most often gets a twin (the next id) with the same embedding
     * row: their logits then tie exactly, and the lower id must be chosen. */
    int wins[TINY_V] = {0}, w = 0;
    assert_int_equal(infer_build(&exact, &m, TINY_N, &err), 0);
    for (int start = 0; start < TINY_V; start++) {
        infer_reset(&exact);
        for (int t = 0, a = start; t < TINY_N; t++) {
            a = sample_token(infer_step(&exact, a, &err), TINY_V, &greedy, &rng);
            wins[a]++;
        }
    }
    infer_free(&exact);
    for (int v = 0; v < TINY_V; v++)
        if (wins[v] > wins[w]) w = v;
    const int twin = (w + 1) % TINY_V, tie_winner = w < twin ? w : twin;
    memcpy(m.params.wte + (size_t)twin * d, m.params.wte + (size_t)w * d, d * sizeof(float));
    /* A rival whose row differs from w's by about half a bfloat16 step per entry: w's
     * row is made exactly representable in bfloat16, and each rival entry sits 0.49 or
     * 0.51 of a step away (random side), so bfloat16 rounds some differences away and
     * doubles others. The approximate scores then often order w and the rival
     * differently from the exact logits, by about the size of the rounding error. */
    const int rival = (w + 2) % TINY_V;
    for (int i = 0; i < d; i++) {
        float *we = m.params.wte + (size_t)w * d + i, *re = m.params.wte + (size_t)rival * d + i;
        int e;
        frexpf(*we, &e);
        float step = ldexpf(1.0f, e - 8);           /* bfloat16 spacing at |w_i| */
        *we = step * nearbyintf(*we / step);         /* representable in bfloat16 */
        float frac = (rng_next(&rng) & 1) ? 0.49f : 0.51f;
        *re = *we + ((rng_next(&rng) & 1) ? frac : -frac) * step;
        m.params.wte[(size_t)twin * d + i] = *we;
    }

    assert_int_equal(infer_build(&exact, &m, TINY_N, &err), 0);
    assert_int_equal(infer_build(&fast, &m, TINY_N, &err), 0);
    int ties = 0, steps = 0, rivals = 0;
    for (int start = 0; start < TINY_V; start++) {
        infer_reset(&exact);
        infer_reset(&fast);
        int a = start, b = start;
        for (int t = 0; t < TINY_N; t++, steps++) {
            const float *logits = infer_step(&exact, a, &err);
            assert_non_null(logits);
            a = sample_token(logits, TINY_V, &greedy, &rng);
            b = infer_step_greedy(&fast, b, &err);
            assert_int_equal(a, b);
            assert_true(logits[w] == logits[twin]);
            assert_int_not_equal(a, tie_winner == w ? twin : w);
            ties += a == tie_winner;
            rivals += a == rival;
        }
        /* the caches were updated alike */
        if (arch == ARCH_BACKPACK)
            assert_memory_equal(infer_alpha(&exact), infer_alpha(&fast),
                                (size_t)TINY_K * TINY_N * sizeof(float));
    }
    print_message("arch %d: %d greedy steps agree, %d of them ties %d = %d, %d won by the rival\n",
                  arch, steps, ties, w, twin, rivals);
    assert_true(ties > 0 && rivals > 0);
    infer_free(&exact);
    infer_free(&fast);
    backpack_free(&m);
}

static void test_greedy_matches_argmax_backpack(void **state) {
    (void)state;
    check_greedy_matches_argmax(ARCH_BACKPACK);
}

static void test_greedy_matches_argmax_transformer(void **state) {
    (void)state;
    check_greedy_matches_argmax(ARCH_TRANSFORMER);
}

/* Rows the int8 copy handles at its edges: all zeros, a huge dynamic range (one entry
 * 1e3 times the others, which round to 0), and then an entry beyond 1e30, which sends
 * every step to the exact float path. The greedy ids stay the argmax of the logits. */
static void test_greedy_degenerate_rows(void **state) {
    (void)state;
    Backpack m;
    build_random(&m, ARCH_BACKPACK, 5);
    const int d = TINY_D;
    SamplerConfig greedy = {0.0f, 0, 1.0f};
    Rng rng;
    rng_seed(&rng, 3);
    memset(m.params.wte + 5 * d, 0, d * sizeof(float));
    for (int i = 0; i < d; i++) m.params.wte[7 * d + i] *= 1e-3f;
    m.params.wte[7 * d + 3] = 2.0f;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) m.params.wte[9 * d + 1] = 3e31f;
        InferState exact, fast;
        BpError err = {0};
        assert_int_equal(infer_build(&exact, &m, TINY_N, &err), 0);
        assert_int_equal(infer_build(&fast, &m, TINY_N, &err), 0);
        int chosen[TINY_V] = {0};
        for (int start = 0; start < TINY_V; start += 3) {
            infer_reset(&exact);
            infer_reset(&fast);
            for (int t = 0, a = start, b = start; t < TINY_N; t++) {
                const float *logits = infer_step(&exact, a, &err);
                assert_non_null(logits);
                a = sample_token(logits, TINY_V, &greedy, &rng);
                b = infer_step_greedy(&fast, b, &err);
                assert_int_equal(a, b);
                chosen[a]++;
            }
        }
        int distinct = 0;
        for (int v = 0; v < TINY_V; v++) distinct += chosen[v] > 0;
        assert_true(distinct > 1); /* not one word all along */
        infer_free(&exact);
        infer_free(&fast);
    }
    backpack_free(&m);
}

static void test_errors_are_clean(void **state) {
    (void)state;
    Backpack m;
    build_random(&m, ARCH_BACKPACK, 1);
    InferState s;
    BpError err = {0};
    assert_int_equal(infer_build(&s, &m, TINY_N + 1, &err), -1);
    assert_non_null(strstr(err.msg, "n_positions"));
    assert_int_equal(infer_build(&s, &m, 0, &err), -1);
    assert_int_equal(infer_build(&s, &m, 3, &err), 0);
    assert_null(infer_step(&s, -1, &err));
    assert_non_null(strstr(err.msg, "out of range"));
    assert_null(infer_step(&s, TINY_V, &err));
    assert_int_equal(s.len, 0);
    for (int t = 0; t < 3; t++) assert_non_null(infer_step(&s, context[t], &err));
    err.msg[0] = 0;
    assert_null(infer_step(&s, 1, &err));
    assert_non_null(strstr(err.msg, "context full"));
    assert_int_equal(infer_feed(&s, 1, &err), -1);
    assert_int_equal(infer_step_greedy(&s, 1, &err), -1);
    assert_int_equal(s.len, 3);
    infer_reset(&s); /* usable again */
    assert_non_null(infer_step(&s, 1, &err));
    infer_free(&s);
    infer_free(&s); /* freeing twice is harmless */
    backpack_free(&m);
}

/* ---------------------------------------------------------------------------------- */
/* sampler */

static void test_greedy(void **state) {
    (void)state;
    const float logits[6] = {0.5f, 2.0f, -1.0f, 2.0f, 1.9f, -3.0f};
    SamplerConfig greedy = {.temperature = 0.0f, .top_k = 0, .top_p = 1.0f};
    Rng rng, before;
    rng_seed(&rng, 1);
    before = rng;
    assert_int_equal(sample_token(logits, 6, &greedy, &rng), 1); /* tie 1 vs 3: lowest id */
    assert_memory_equal(&rng, &before, sizeof rng);            /* greedy draws nothing */
    const float one[1] = {-5.0f};
    assert_int_equal(sample_token(one, 1, &greedy, &rng), 0);
    /* top-k 1 is greedy at any temperature */
    SamplerConfig top1 = {.temperature = 1.5f, .top_k = 1, .top_p = 1.0f};
    for (int i = 0; i < 200; i++) assert_int_equal(sample_token(logits, 6, &top1, &rng), 1);
}

/* Sampling n times; counts per id. */
static void histogram(const float *logits, int V, const SamplerConfig *cfg, uint64_t seed,
                      int n, int *counts) {
    Rng rng;
    rng_seed(&rng, seed);
    for (int i = 0; i < V; i++) counts[i] = 0;
    for (int i = 0; i < n; i++) {
        int t = sample_token(logits, V, cfg, &rng);
        assert_true(t >= 0 && t < V);
        counts[t]++;
    }
}

static void test_temperature_top_k_top_p(void **state) {
    (void)state;
    /* probabilities 0.5 0.3 0.1 0.05 0.03 0.02, shuffled over the ids */
    const double p[6] = {0.1, 0.5, 0.02, 0.3, 0.05, 0.03};
    float logits[6];
    for (int i = 0; i < 6; i++) logits[i] = (float)log(p[i]) + 7.0f;
    const int n = 20000;
    int counts[6];

    /* temperature 1, no filter: the distribution itself (4 sigma bands) */
    SamplerConfig plain = {.temperature = 1.0f, .top_k = 0, .top_p = 1.0f};
    histogram(logits, 6, &plain, 42, n, counts);
    for (int i = 0; i < 6; i++) {
        double sd = sqrt(n * p[i] * (1 - p[i]));
        assert_true(fabs(counts[i] - n * p[i]) <= 4 * sd);
    }

    /* top-p 0.75: the nucleus is {0.5, 0.3} (0.5 < 0.75 <= 0.8) */
    SamplerConfig nucleus = {.temperature = 1.0f, .top_k = 0, .top_p = 0.75f};
    histogram(logits, 6, &nucleus, 43, n, counts);
    assert_int_equal(counts[0] + counts[2] + counts[4] + counts[5], 0);
    double q = 0.5 / 0.8;
    assert_true(fabs(counts[1] - n * q) <= 4 * sqrt(n * q * (1 - q)));
    /* top-p 0.5 keeps only the first word */
    nucleus.top_p = 0.5f;
    histogram(logits, 6, &nucleus, 44, n, counts);
    assert_int_equal(counts[1], n);

    /* top-k 3: {0.5, 0.3, 0.1} renormalized */
    SamplerConfig topk = {.temperature = 1.0f, .top_k = 3, .top_p = 1.0f};
    histogram(logits, 6, &topk, 45, n, counts);
    assert_int_equal(counts[2] + counts[4] + counts[5], 0);
    q = 0.1 / 0.9;
    assert_true(fabs(counts[0] - n * q) <= 4 * sqrt(n * q * (1 - q)));

    /* top-k 3 then top-p 0.85 over the renormalized {5/9, 3/9, 1/9}: {0.5, 0.3} */
    topk.top_p = 0.85f;
    histogram(logits, 6, &topk, 46, n, counts);
    assert_int_equal(counts[0] + counts[2] + counts[4] + counts[5], 0);
    assert_true(counts[1] > 0 && counts[3] > 0);

    /* temperature 2 flattens: p ~ sqrt(p) */
    SamplerConfig hot = {.temperature = 2.0f, .top_k = 0, .top_p = 1.0f};
    histogram(logits, 6, &hot, 47, n, counts);
    double z = 0.0;
    for (int i = 0; i < 6; i++) z += sqrt(p[i]);
    for (int i = 0; i < 6; i++) {
        double pi = sqrt(p[i]) / z;
        assert_true(fabs(counts[i] - n * pi) <= 4 * sqrt(n * pi * (1 - pi)));
    }
}

static void test_top_probabilities(void **state) {
    (void)state;
    const float logits[5] = {1.0f, 3.0f, 3.0f, 0.0f, 2.0f};
    int ids[3];
    float probs[3];
    top_probabilities(logits, 5, 3, ids, probs);
    /* ties go to the lower id, as in sample_token */
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 2);
    assert_int_equal(ids[2], 4);
    double total = 0;
    for (int v = 0; v < 5; v++) total += exp(logits[v]);
    for (int i = 0; i < 3; i++) assert_float_equal(probs[i], exp(logits[ids[i]]) / total, 1e-7);
    /* n = V ranks everything */
    int all[5];
    float all_probs[5];
    top_probabilities(logits, 5, 5, all, all_probs);
    const int want[5] = {1, 2, 4, 0, 3};
    assert_memory_equal(all, want, sizeof want);
}

static void test_sampler_deterministic(void **state) {
    (void)state;
    enum { V = 1000 };
    float logits[V];
    Rng gen;
    rng_seed(&gen, 9);
    for (int i = 0; i < V; i++) logits[i] = 3.0f * rng_normal(&gen);
    SamplerConfig cfg = {.temperature = 0.8f, .top_k = 50, .top_p = 0.9f};
    Rng a, b;
    rng_seed(&a, 123);
    rng_seed(&b, 123);
    int differs_from_greedy = 0;
    for (int i = 0; i < 300; i++) {
        int x = sample_token(logits, V, &cfg, &a);
        assert_int_equal(x, sample_token(logits, V, &cfg, &b));
        differs_from_greedy += x != sample_token(logits, V, &(SamplerConfig){0, 0, 1.0f}, &a);
    }
    assert_true(differs_from_greedy > 0);
    assert_memory_equal(&a, &b, sizeof a); /* one draw per non-greedy call, none for greedy */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_incremental_equals_full_backpack),
        cmocka_unit_test(test_incremental_equals_full_transformer),
        cmocka_unit_test(test_incremental_equals_full_wide),
        cmocka_unit_test(test_reset_is_bit_identical),
        cmocka_unit_test(test_alpha_and_contributions),
        cmocka_unit_test(test_edit_effect_one_word),
        cmocka_unit_test(test_edits_match_full_forward),
        cmocka_unit_test(test_greedy_matches_argmax_backpack),
        cmocka_unit_test(test_greedy_matches_argmax_transformer),
        cmocka_unit_test(test_greedy_degenerate_rows),
        cmocka_unit_test(test_errors_are_clean),
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_temperature_top_k_top_p),
        cmocka_unit_test(test_top_probabilities),
        cmocka_unit_test(test_sampler_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
