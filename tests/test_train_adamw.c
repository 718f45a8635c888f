/* AdamW against a hand-computed two-step update, weight decay on matrices only,
 * the global gradient norm and the clipping factor adamw_step applies, and the
 * learning-rate schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../train/adamw.h"

/* Two steps on 4 parameters, lr 0.1, wd 0.1 on [2, 4), betas (0.9, 0.999), eps 1e-8.
 * Step 1: m_hat = g, v_hat = g^2, so each update is sign(g) (+ wd p where decayed):
 *   p0 = 1 - 0.1 = 0.9; p1 = -2 + 0.1 = -1.9; p2 = 0.5 - 0.1 (0 + 0.1 * 0.5) = 0.495;
 *   p3 = 3 - 0.1 (1 + 0.1 * 3) = 2.87.
 * Step 2 (bias corrections 0.19 and 0.001999):
 *   p0: m = 0.019, v = 1.999e-5 -> m_hat 0.1, v_hat 0.01 -> update 1 -> 0.8
 *   p1: m = 0.002, v = 7.996e-5 -> 0.0105263 / 0.2 = 0.0526316 -> -1.9052632
 *   p2: g = 0 -> only decay: 0.495 (1 - 0.01) = 0.49005
 *   p3: m = -0.01, v = 0.001999 -> -0.0526316 + 0.1 * 2.87 -> 2.87 - 0.02343684 = 2.8465632 */
static void test_adamw_two_steps_by_hand(void **state) {
    (void)state;
    float p[4] = {1.0f, -2.0f, 0.5f, 3.0f};
    const float g1[4] = {0.1f, -0.2f, 0.0f, 1.0f}, g2[4] = {0.1f, 0.2f, 0.0f, -1.0f};
    ParamRange decay = {.offset = 2, .length = 2};
    AdamWConfig cfg = adamw_default_config();
    assert_float_equal(cfg.beta1, 0.9f, 0);
    assert_float_equal(cfg.beta2, 0.999f, 0);
    assert_float_equal(cfg.weight_decay, 0.1f, 0);
    AdamW opt;
    BpError err = {{0}};
    assert_int_equal(adamw_build(&opt, &cfg, 4, &decay, 1, &err), 0);
    adamw_step(&opt, p, g1, 1.0f, 0.1f);
    assert_int_equal(opt.t, 1);
    assert_float_equal(p[0], 0.9f, 1e-6);
    assert_float_equal(p[1], -1.9f, 1e-6);
    assert_float_equal(p[2], 0.495f, 1e-6);
    assert_float_equal(p[3], 2.87f, 1e-6);
    assert_float_equal(opt.m[3], 0.1f, 1e-7);
    assert_float_equal(opt.v[3], 0.001f, 1e-7);
    adamw_step(&opt, p, g2, 1.0f, 0.1f);
    assert_float_equal(p[0], 0.8f, 1e-6);
    assert_float_equal(p[1], -1.9052632f, 1e-6);
    assert_float_equal(p[2], 0.49005f, 1e-6);
    assert_float_equal(p[3], 2.8465632f, 1e-6);
    adamw_free(&opt);
}

static void test_adamw_rejects_bad_range(void **state) {
    (void)state;
    ParamRange decay = {.offset = 3, .length = 2};
    AdamWConfig cfg = adamw_default_config();
    AdamW opt;
    BpError err = {{0}};
    assert_int_equal(adamw_build(&opt, &cfg, 4, &decay, 1, &err), -1);
    assert_non_null(strstr(err.msg, "decay range"));
}

/* The model's decayed ranges are exactly its matrices: not wte, wpe, biases, LNs. */
static void test_adamw_decays_matrices_only(void **state) {
    (void)state;
    BackpackConfig c = {.arch = ARCH_BACKPACK, .vocab_size = 50, .n_embd = 16, .n_layer = 2,
                        .n_head = 2, .num_senses = 4, .n_positions = 8,
                        .sense_intermediate_scale = 4};
    Backpack m;
    BpError err = {{0}};
    assert_int_equal(backpack_build(&m, &c, &err), 0);
    AdamWConfig cfg = adamw_default_config();
    AdamW opt;
    assert_int_equal(adamw_build_for_model(&opt, &cfg, &m, &err), 0);
    size_t d = 16, L = 2, S = 64, k = 4, decayed = 0;
    for (int i = 0; i < opt.num_decay; i++) decayed += opt.decay[i].length;
    size_t expect = L * (d * 3 * d + d * d + d * 4 * d + 4 * d * d)  /* qkv, attproj, fc, fcproj */
                    + d * S + S * d + d * S + S * k * d              /* sense MLPs */
                    + 2 * d * d;                                      /* sense_qkw */
    assert_int_equal(decayed, expect);
    size_t wte = (size_t)(m.params.wte - m.params_memory), wpe = (size_t)(m.params.wpe - m.params_memory);
    size_t lnfw = (size_t)(m.params.lnfw - m.params_memory);
    for (int i = 0; i < opt.num_decay; i++)
        for (size_t x = 0; x < 3; x++) {
            size_t at = x == 0 ? wte : x == 1 ? wpe : lnfw;
            assert_false(at >= opt.decay[i].offset && at < opt.decay[i].offset + opt.decay[i].length);
        }
    /* One step with zero gradients moves only decayed parameters (p -= lr wd p). */
    for (size_t i = 0; i < m.num_parameters; i++) m.params_memory[i] = 1.0f;
    float *zeros = calloc(m.num_parameters, sizeof(float));
    adamw_step(&opt, m.params_memory, zeros, 1.0f, 0.5f);
    assert_float_equal(m.params.wte[0], 1.0f, 0);
    assert_float_equal(m.params.qkvw[5], 1.0f - 0.5f * 0.1f, 1e-7);
    assert_float_equal(m.params.sense_qkw[0], 0.95f, 1e-7);
    assert_float_equal(m.params.sense_qkb[0], 1.0f, 0);
    free(zeros);
    adamw_free(&opt);
    backpack_free(&m);
}

static void test_grad_norm_and_clip_factor(void **state) {
    (void)state;
    const float g[2] = {3.0f, 4.0f};
    assert_float_equal(grad_norm(g, 2), 5.0, 1e-12);
    assert_float_equal(clip_factor(5.0, 1.0), 0.2f, 1e-7);
    assert_float_equal(clip_factor(5.0, 10.0), 1.0f, 0);  /* under the limit */
    assert_float_equal(clip_factor(5.0, 0.0), 1.0f, 0);   /* 0 disables */
    const float bad[3] = {1.0f, NAN, 2.0f};
    assert_true(isnan(grad_norm(bad, 3)));
    assert_float_equal(clip_factor(NAN, 1.0), 1.0f, 0);   /* the trainer stops on NaN itself */
    assert_float_equal(grad_norm(g, 0), 0.0, 0);
}

/* The norm is the same double for any thread count (blocks of 2^16, the last partial),
 * and equals a plain double sum to rounding. */
static void test_grad_norm_independent_of_threads(void **state) {
    (void)state;
    const size_t n = 3 * 65536 + 5;
    float *g = malloc(n * sizeof(float));
    double plain = 0.0;
    for (size_t i = 0; i < n; i++) {
        g[i] = (float)((double)((i * 2654435761u) % 1000) / 997.0 - 0.5);
        plain += (double)g[i] * g[i];
    }
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const double one = grad_norm(g, n);
    omp_set_num_threads(2);
    const double two = grad_norm(g, n);
    omp_set_num_threads(threads);
    assert_memory_equal(&one, &two, sizeof one);
    assert_float_equal(one, sqrt(plain), 1e-12 * sqrt(plain));
    free(g);
}

/* adamw_step with grad_scale s is bit for bit the step on the gradients multiplied by s
 * beforehand, decayed and undecayed ranges alike. */
static void test_adamw_grad_scale(void **state) {
    (void)state;
    enum { N = 37 };
    float p1[N], p2[N], g[N], scaled[N];
    for (int i = 0; i < N; i++) {
        p1[i] = p2[i] = 0.1f * (float)(i - 18);
        g[i] = 0.37f * (float)((i * 7) % 11) - 1.7f;
    }
    const float s = 0.3183f;
    for (int i = 0; i < N; i++) scaled[i] = g[i] * s;
    ParamRange decay = {.offset = 10, .length = 20};
    AdamWConfig cfg = adamw_default_config();
    AdamW a, b;
    BpError err = {{0}};
    assert_int_equal(adamw_build(&a, &cfg, N, &decay, 1, &err), 0);
    assert_int_equal(adamw_build(&b, &cfg, N, &decay, 1, &err), 0);
    for (int step = 0; step < 3; step++) {
        adamw_step(&a, p1, g, s, 0.01f);
        adamw_step(&b, p2, scaled, 1.0f, 0.01f);
    }
    assert_memory_equal(p1, p2, sizeof p1);
    assert_memory_equal(a.m, b.m, N * sizeof(float));
    assert_memory_equal(a.v, b.v, N * sizeof(float));
    assert_true(p1[3] != 0.1f * (float)(3 - 18)); /* it moved */
    adamw_free(&a);
    adamw_free(&b);
}

static void test_lr_schedule(void **state) {
    (void)state;
    /* 100 steps, 10 of warmup, peak 1. */
    double wp = 10.0 / 100.0;
    assert_float_equal(lr_schedule(1.0f, 0, 10, 0.0, 0.0), 0.1f, 1e-7);
    assert_float_equal(lr_schedule(1.0f, 4, 10, 0.04, 0.0), 0.5f, 1e-7);
    assert_float_equal(lr_schedule(1.0f, 9, 10, 0.09, 0.0), 1.0f, 1e-7);
    assert_float_equal(lr_schedule(1.0f, 10, 10, 0.10, wp), 1.0f, 1e-7);
    assert_float_equal(lr_schedule(1.0f, 55, 10, 0.55, wp), 0.5f, 1e-6);
    assert_float_equal(lr_schedule(1.0f, 99, 10, 0.99, wp), 0.01f / 0.9f, 1e-6);
    assert_float_equal(lr_schedule(1.0f, 100, 10, 1.0, wp), 0.0f, 0);
    assert_float_equal(lr_schedule(1.0f, 120, 10, 1.2, wp), 0.0f, 0);
    /* No warmup: decay from the first step. */
    assert_float_equal(lr_schedule(2.0f, 0, 0, 0.0, 0.0), 2.0f, 1e-7);
    assert_float_equal(lr_schedule(2.0f, 25, 0, 0.25, 0.0), 1.5f, 1e-6);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_two_steps_by_hand),
        cmocka_unit_test(test_adamw_rejects_bad_range),
        cmocka_unit_test(test_adamw_decays_matrices_only),
        cmocka_unit_test(test_grad_norm_and_clip_factor),
        cmocka_unit_test(test_grad_norm_independent_of_threads),
        cmocka_unit_test(test_adamw_grad_scale),
        cmocka_unit_test(test_lr_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
