/* Overfitting one batch: a tiny model, trained by a minimal Adam loop on a single
 * batch, drives the loss near zero (the trainer's real AdamW lives in train/). Also the
 * float model's invariants that need no finite differences: parameter table, init,
 * hash, and the batch-size independence of the forward. */
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

static BackpackConfig small_config(ModelArch arch) {
    BackpackConfig c = {arch, 40, 32, 2, 2, 4, 16, 4, ATTN_DOT, 0};
    return c;
}

static void random_tokens(int *x, int n, int V, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < n; i++) x[i] = (int)rng_below(&r, (uint64_t)V);
}

/* Adam (no weight decay) for `steps` steps on one batch; returns the last loss. */
static float overfit(ModelArch arch, int steps, float *first) {
    BackpackConfig c = small_config(arch);
    Backpack m;
    BpError err;
    assert_int_equal(backpack_build(&m, &c, &err), 0);
    backpack_init_weights(&m, 1);
    enum { B = 2, T = 12 };
    int inputs[B * T], targets[B * T];
    random_tokens(inputs, B * T, c.vocab_size, 10);
    random_tokens(targets, B * T, c.vocab_size, 11);
    size_t n = m.num_parameters;
    float *mom = calloc(n, sizeof(float)), *var = calloc(n, sizeof(float));
    const float lr = 3e-3f, b1 = 0.9f, b2 = 0.999f;
    float loss = 0;
    /* one thread: this test is about convergence (test_threads_agree covers threads),
     * and hundreds of tiny parallel steps crawl when the cores are shared */
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    for (int s = 1; s <= steps; s++) {
        backpack_zero_grad(&m);
        assert_int_equal(backpack_forward(&m, inputs, targets, B, T, NULL, &err), 0);
        loss = m.mean_loss;
        if (s == 1) *first = loss;
        assert_int_equal(backpack_backward(&m, &err), 0);
        float c1 = 1 - powf(b1, (float)s), c2 = 1 - powf(b2, (float)s);
        for (size_t i = 0; i < n; i++) {
            float g = m.grads_memory[i];
            mom[i] = b1 * mom[i] + (1 - b1) * g;
            var[i] = b2 * var[i] + (1 - b2) * g * g;
            m.params_memory[i] -= lr * (mom[i] / c1) / (sqrtf(var[i] / c2) + 1e-8f);
        }
    }
    omp_set_num_threads(threads);
    free(mom);
    free(var);
    backpack_free(&m);
    return loss;
}

static void test_overfit_backpack(void **state) {
    (void)state;
    float first, last = overfit(ARCH_BACKPACK, 300, &first);
    printf("  backpack: loss %.4f -> %.4f after 300 Adam steps\n", first, last);
    assert_true(first > 3.0f);  /* ln 40 = 3.69 at init */
    assert_true(last < 0.05f);
}

static void test_overfit_transformer(void **state) {
    (void)state;
    float first, last = overfit(ARCH_TRANSFORMER, 300, &first);
    printf("  transformer: loss %.4f -> %.4f after 300 Adam steps\n", first, last);
    assert_true(first > 3.0f);
    assert_true(last < 0.05f);
}

/* ------------------------------------------------------------------------------------ */

static void test_param_table(void **state) {
    (void)state;
    BackpackConfig c = small_config(ARCH_BACKPACK);
    Backpack m;
    BpError err;
    assert_int_equal(backpack_build(&m, &c, &err), 0);
    int n = backpack_num_param_entries(&c);
    assert_int_equal(n, 20 + 12 * 2);
    ParamEntry *e = calloc((size_t)n, sizeof *e);
    backpack_param_entries(&m, &m.params, e);
    size_t total = 0;
    int matrices = 0;
    for (int i = 0; i < n; i++) {
        total += (size_t)e[i].shape[0] * (e[i].ndim == 2 ? (size_t)e[i].shape[1] : 1);
        matrices += e[i].is_matrix;
        assert_true(e[i].data >= m.params_memory && e[i].data < m.params_memory + m.num_parameters);
    }
    assert_int_equal(total, m.num_parameters); /* the table covers the allocation exactly */
    assert_int_equal(matrices, 4 * 2 + 5);
    assert_string_equal(e[0].name, "backpack.gpt2_model.wte.weight");
    assert_string_equal(e[2 + 12 + 4].name, "backpack.gpt2_model.h.1.attn.c_proj.weight");
    assert_int_equal(e[2 + 12 + 4].data - m.params_memory, m.params.attprojw + 32 * 32 - m.params_memory);
    assert_string_equal(e[n - 3].name, "backpack.sense_network.final_mlp.c_proj.bias");
    assert_int_equal(e[n - 3].shape[0], 4 * 32);
    assert_string_equal(e[n - 2].name, "backpack.sense_weight_net.c_attn.weight");
    assert_int_equal(e[n - 2].shape[0], 64);
    assert_int_equal(e[n - 2].shape[1], 32);
    free(e);
    backpack_free(&m);

    c = small_config(ARCH_TRANSFORMER);
    assert_int_equal(backpack_build(&m, &c, &err), 0);
    n = backpack_num_param_entries(&c);
    assert_int_equal(n, 4 + 12 * 2);
    e = calloc((size_t)n, sizeof *e);
    backpack_param_entries(&m, &m.params, e);
    assert_string_equal(e[1].name, "transformer.wpe.weight");
    assert_string_equal(e[2].name, "transformer.h.0.ln_1.weight");
    assert_string_equal(e[n - 1].name, "transformer.ln_f.bias");
    assert_null(m.params.sense_qkw);
    free(e);
    backpack_free(&m);
}

static void test_config_validate(void **state) {
    (void)state;
    BpError err;
    BackpackConfig c = small_config(ARCH_BACKPACK);
    assert_int_equal(backpack_config_validate(&c, &err), 0);
    c.num_senses = 5;
    assert_int_equal(backpack_config_validate(&c, &err), -1);
    assert_non_null(strstr(err.msg, "num_senses"));
    c = small_config(ARCH_BACKPACK);
    c.n_head = 3;
    assert_int_equal(backpack_config_validate(&c, &err), -1);
    assert_non_null(strstr(err.msg, "n_head"));
    c = small_config(ARCH_BACKPACK);
    c.vocab_size = 0;
    assert_int_equal(backpack_config_validate(&c, &err), -1);
    assert_non_null(strstr(err.msg, "vocab_size"));
    c = small_config(ARCH_TRANSFORMER);
    c.num_senses = 0;  /* ignored by the baseline */
    assert_int_equal(backpack_config_validate(&c, &err), 0);
}

static void test_init_and_hash(void **state) {
    (void)state;
    BackpackConfig c = {ARCH_BACKPACK, 500, 64, 4, 4, 4, 32, 4, ATTN_DOT, 0};
    Backpack m, m2;
    BpError err;
    assert_int_equal(backpack_build(&m, &c, &err), 0);
    assert_int_equal(backpack_build(&m2, &c, &err), 0);
    backpack_init_weights(&m, 5);
    backpack_init_weights(&m2, 5);
    char h1[17], h2[17];
    backpack_weights_hash(&m, h1);
    backpack_weights_hash(&m2, h2);
    assert_int_equal(strlen(h1), 16);
    assert_string_equal(h1, h2);
    m2.params_memory[12345] += 1e-6f;
    backpack_weights_hash(&m2, h2);
    assert_string_not_equal(h1, h2);
    /* standard deviations: wte 0.02, the residual projections 0.02 / sqrt(2 L) = 0.00707 */
    double s = 0, s2 = 0;
    size_t n = (size_t)500 * 64;
    for (size_t i = 0; i < n; i++) s += m.params.wte[i], s2 += m.params.wte[i] * m.params.wte[i];
    assert_true(fabs(sqrt(s2 / n) - 0.02) < 0.001);
    s2 = 0;
    n = (size_t)4 * 64 * 64;
    for (size_t i = 0; i < n; i++) s2 += m.params.attprojw[i] * m.params.attprojw[i];
    assert_true(fabs(sqrt(s2 / n) - 0.02 / sqrt(8.0)) < 0.0003);
    s2 = 0;
    n = (size_t)4 * 256 * 64;
    for (size_t i = 0; i < n; i++) s2 += m.params.sense_final_projw[i] * m.params.sense_final_projw[i];
    assert_true(fabs(sqrt(s2 / n) - 0.02 / sqrt(8.0)) < 0.0003);
    assert_true(m.params.ln1w[17] == 1.0f && m.params.sense_ln2w[3] == 1.0f);
    assert_true(m.params.qkvb[5] == 0.0f && m.params.sense_qkb[9] == 0.0f);
    backpack_free(&m);
    backpack_free(&m2);
}

/* Rows of a batch do not see each other, a position does not see the future, and the
 * same input gives bit-identical logits alone or in a bigger batch. */
static void test_forward_is_causal_and_batch_independent(void **state) {
    (void)state;
    BackpackConfig c = small_config(ARCH_BACKPACK);
    Backpack m;
    BpError err;
    assert_int_equal(backpack_build(&m, &c, &err), 0);
    backpack_init_weights(&m, 3);
    int x[3 * 10];
    random_tokens(x, 30, c.vocab_size, 4);
    assert_int_equal(backpack_forward(&m, x, NULL, 3, 10, NULL, &err), 0);
    assert_true(m.mean_loss == -1.0f);
    int V = c.vocab_size;
    float *big = malloc(30 * (size_t)V * sizeof(float));
    memcpy(big, backpack_logits(&m), 30 * (size_t)V * sizeof(float));
    int y[10];
    memcpy(y, x + 10, sizeof y);
    y[9] = (y[9] + 1) % V;  /* change the future of position 8 */
    assert_int_equal(backpack_forward(&m, y, NULL, 1, 10, NULL, &err), 0);
    const float *small = backpack_logits(&m);
    double worst = 0;
    for (int i = 0; i < 9 * V; i++) worst = fmax(worst, fabs(small[i] - big[10 * V + i]));
    assert_true(worst < 1e-5);
    /* out-of-range input and a too long sequence are errors, not crashes */
    y[0] = V;
    assert_int_equal(backpack_forward(&m, y, NULL, 1, 10, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "input token"));
    int z[17] = {0};
    assert_int_equal(backpack_forward(&m, z, NULL, 1, 17, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "n_positions"));
    free(big);
    backpack_free(&m);
}

/* compute_senses equals what the forward mixes: one position with the word alone. */
static void test_compute_senses(void **state) {
    (void)state;
    BackpackConfig c = small_config(ARCH_BACKPACK);
    Backpack m;
    BpError err;
    assert_int_equal(backpack_build(&m, &c, &err), 0);
    backpack_init_weights(&m, 8);
    int d = c.n_embd, k = c.num_senses, V = c.vocab_size;
    int words[2] = {7, 7};
    float *C = malloc(2 * (size_t)k * d * sizeof(float));
    backpack_compute_senses(&m, words, 2, C);
    assert_memory_equal(C, C + k * d, (size_t)k * d * sizeof(float));
    /* one position: alpha = 1 for every sense, so logits = E sum_l C(x)_l */
    assert_int_equal(backpack_forward(&m, words, NULL, 1, 1, NULL, &err), 0);
    const float *logits = backpack_logits(&m);
    double worst = 0;
    for (int v = 0; v < V; v++) {
        double want = 0;
        for (int l = 0; l < k; l++)
            for (int i = 0; i < d; i++) want += (double)m.params.wte[v * d + i] * C[l * d + i];
        worst = fmax(worst, fabs(want - logits[v]));
    }
    assert_true(worst < 1e-5);
    /* an edit vector replaces the sense; a weight 0 removes it from the mixture */
    float vec[32];
    for (int i = 0; i < d; i++) vec[i] = 0.01f * i;
    SenseEdit items[2] = {{7, 2, vec, 1.0f}, {7, 3, NULL, 0.0f}};
    SenseEdits edits = {items, 2};
    m.edits = &edits;
    backpack_compute_senses(&m, words, 1, C);
    assert_memory_equal(C + 2 * d, vec, (size_t)d * sizeof(float));
    assert_int_equal(backpack_forward(&m, words, NULL, 1, 1, NULL, &err), 0);
    worst = 0;
    for (int v = 0; v < V; v++) {
        double want = 0;
        for (int l = 0; l < 3; l++)
            for (int i = 0; i < d; i++) want += (double)m.params.wte[v * d + i] * C[l * d + i];
        worst = fmax(worst, fabs(want - logits[v]));
    }
    assert_true(worst < 1e-5);
    free(C);
    backpack_free(&m);
}

/* The parallel code paths (sizes above BP_PAR_MIN) give the same logits, loss and
 * gradients on one thread and on two, with dropout: no races, and dropout masks that
 * do not depend on the thread count. */
static void run_once(Backpack *m, const int *x, const int *y, int B, int T, int threads,
                     float *logits, float *grads, float *loss) {
    BpError err;
    omp_set_num_threads(threads);
    Rng r;
    rng_seed(&r, 99);
    TrainOptions opts = {.dropout = 0.1f, .rng = &r};
    backpack_zero_grad(m);
    assert_int_equal(backpack_forward(m, x, y, B, T, &opts, &err), 0);
    *loss = m->mean_loss;
    memcpy(logits, backpack_logits(m), (size_t)B * T * m->config.vocab_size * sizeof(float));
    assert_int_equal(backpack_backward(m, &err), 0);
    memcpy(grads, m->grads_memory, m->num_parameters * sizeof(float));
}

static void test_threads_agree(void **state) {
    (void)state;
    int saved = omp_get_max_threads();
    for (int arch = 0; arch < 2; arch++) {
        BackpackConfig c = {arch, 300, 128, 2, 4, 4, 64, 4, ATTN_DOT, 0};
        Backpack m;
        BpError err;
        assert_int_equal(backpack_build(&m, &c, &err), 0);
        backpack_init_weights(&m, 21);
        enum { B = 4, T = 64 };
        int x[B * T], y[B * T];
        random_tokens(x, B * T, 150, 22);  /* repeated words */
        random_tokens(y, B * T, 300, 23);
        size_t nl = (size_t)B * T * c.vocab_size, np = m.num_parameters;
        float *l1 = malloc(nl * sizeof(float)), *l2 = malloc(nl * sizeof(float));
        float *g1 = malloc(np * sizeof(float)), *g2 = malloc(np * sizeof(float));
        float loss1, loss2;
        run_once(&m, x, y, B, T, 1, l1, g1, &loss1);
        run_once(&m, x, y, B, T, 2, l2, g2, &loss2);
        double dl = 0, dg = 0, gmax = 0;
        for (size_t i = 0; i < nl; i++) dl = fmax(dl, fabs(l1[i] - l2[i]));
        for (size_t i = 0; i < np; i++) {
            dg = fmax(dg, fabs(g1[i] - g2[i]));
            gmax = fmax(gmax, fabs(g1[i]));
        }
        printf("  %s: 1 vs 2 threads: loss %.7f / %.7f, max |logit diff| %.1e, max |grad diff| %.1e\n",
               arch ? "transformer" : "backpack", loss1, loss2, dl, dg);
        assert_true(fabs(loss1 - loss2) < 1e-6);
        assert_true(dl < 1e-5);
        assert_true(dg <= 1e-5 * gmax);
        free(l1), free(l2), free(g1), free(g2);
        backpack_free(&m);
    }
    omp_set_num_threads(saved);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_param_table),
        cmocka_unit_test(test_config_validate),
        cmocka_unit_test(test_init_and_hash),
        cmocka_unit_test(test_forward_is_causal_and_batch_independent),
        cmocka_unit_test(test_compute_senses),
        cmocka_unit_test(test_overfit_backpack),
        cmocka_unit_test(test_overfit_transformer),
        cmocka_unit_test(test_threads_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
