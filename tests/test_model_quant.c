/* int8 weights (model/quant.c) and generation with them (infer_set_quant): the kernel
 * against the exact value of its own quantities within quant.h's bound, the fast
 * generation against the plain dequantize-then-float reference, int8 logits near the
 * float ones, and the float path bit for bit unchanged. */
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
#include "../model/quant.h"

/* The exact value of the quantized product for row r: sum_i s q[r,i] t q_x[i] in double
 * (each term is exact in double, and the sum's rounding is ~1e-16 relative). */
static double exact_row(const QuantMatrix *qm, const int8_t *x_q, const float *t, int r) {
    double sum = 0.0;
    for (int i = 0; i < qm->cols; i++) {
        const int g = i / qm->group;
        sum += (double)qm->scale[(size_t)r * qm->n_groups + g] * qm->q[(size_t)r * qm->cols_pad + i] *
               ((double)t[g] * x_q[i]);
    }
    return sum;
}

static void fill_normal(float *x, size_t n, float sd, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) x[i] = sd * rng_normal(&rng);
}

/* Kernel and reference within the bound of the exact value, for shapes with a partial
 * last group (300 = 256 + 44), a group longer than the row, a tail of rows that is not a multiple of 4,
 * one scale per row, and an input with an outlier. */
static void test_kernel_within_bound(void **state) {
    (void)state;
    const struct { int rows, cols, group; } shapes[] = {
        {37, 100, 64}, {8, 768, 64}, {13, 768, 128}, {6, 3072, 0}, {4, 200, 256}, {3, 64, 64},
        {5, 100, 256}, {7, 300, 0}, {9, 300, 256}};
    double worst = 0.0;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const int rows = shapes[k].rows, cols = shapes[k].cols;
        float *W = malloc((size_t)rows * cols * sizeof(float));
        float *x = malloc((size_t)cols * sizeof(float));
        fill_normal(W, (size_t)rows * cols, 0.05f, 10 + k);
        fill_normal(x, (size_t)cols, 1.0f, 20 + k);
        x[cols / 3] = 40.0f; /* an outlier: its group's scale grows, the others keep theirs */
        QuantMatrix qm;
        BpError err = {0};
        assert_int_equal(quant_matrix_build(&qm, W, rows, cols, 0, shapes[k].group, &err), 0);
        /* every weight within half a step of its original, and the step is max/127 */
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < cols; i++) {
                const float s = qm.scale[(size_t)r * qm.n_groups + i / qm.group];
                const double w = (double)s * qm.q[(size_t)r * qm.cols_pad + i];
                assert_true(fabs(w - W[(size_t)r * cols + i]) <= 0.5 * s * (1 + 1e-6));
            }
        _Alignas(64) int8_t x_q[3072];
        float t[64], y[64], y_ref[64];
        quant_vector(&qm, x, x_q, t);
        for (int i = cols; i < qm.cols_pad; i++) assert_int_equal(x_q[i], 0);
        quant_matvec_rows(&qm, y, x_q, t, 0, rows);
        quant_matvec_reference(&qm, y_ref, x_q, t, 0, rows);
        float y_part[64]; /* rows split unevenly: the same values (rows are independent) */
        quant_matvec_rows(&qm, y_part, x_q, t, 0, rows / 3);
        quant_matvec_rows(&qm, y_part, x_q, t, rows / 3, rows);
        for (int r = 0; r < rows; r++) {
            const double exact = exact_row(&qm, x_q, t, r), bound = quant_error_bound(&qm, x_q, t, r);
            assert_true(bound > 0.0);
            assert_true(fabs(y[r] - exact) <= bound);
            assert_true(fabs(y_ref[r] - exact) <= bound);
            assert_memory_equal(&y_part[r], &y[r], sizeof(float));
            /* and the quantized product approximates the float one: each weight is
             * within s/2 and each input within t/2 of its int8 copy, so
             * |y - W x| <= sum_i s/2 |x_i| + t/2 |s q_i| plus the kernel's bound */
            double fl = 0.0, rounding = 0.0;
            for (int i = 0; i < cols; i++) {
                const int g = i / qm.group;
                const double s = qm.scale[(size_t)r * qm.n_groups + g];
                fl += (double)W[(size_t)r * cols + i] * x[i];
                rounding += 0.5 * s * fabs(x[i]) +
                            0.5 * t[g] * fabs(s * qm.q[(size_t)r * qm.cols_pad + i]);
            }
            assert_true(fabs(y[r] - fl) <= rounding * (1 + 1e-6) + bound);
            assert_true(fabs(y[r] - fl) > 0.0); /* not the float product */
            if (fabs(y[r] - exact) / bound > worst) worst = fabs(y[r] - exact) / bound;
        }
        quant_matrix_free(&qm);
        free(W);
        free(x);
    }
    printf("quant kernel: worst |kernel - exact| / bound = %.3g\n", worst);
}

/* A Conv1D matrix [in, out] quantized as its transpose gives the same copy. */
static void test_transposed_layout(void **state) {
    (void)state;
    const int n_in = 130, n_out = 70;
    float *W = malloc((size_t)n_in * n_out * sizeof(float)), *Wt = malloc((size_t)n_in * n_out * sizeof(float));
    fill_normal(W, (size_t)n_in * n_out, 0.1f, 3);
    for (int i = 0; i < n_in; i++)
        for (int o = 0; o < n_out; o++) Wt[(size_t)o * n_in + i] = W[(size_t)i * n_out + o];
    QuantMatrix a, b;
    BpError err = {0};
    assert_int_equal(quant_matrix_build(&a, W, n_out, n_in, 1, 64, &err), 0);
    assert_int_equal(quant_matrix_build(&b, Wt, n_out, n_in, 0, 64, &err), 0);
    assert_memory_equal(a.q, b.q, (size_t)n_out * a.cols_pad);
    assert_memory_equal(a.scale, b.scale, (size_t)n_out * a.n_groups * sizeof(float));
    quant_matrix_free(&a);
    assert_int_equal(quant_matrix_build(&a, W, n_out, n_in, 1, 32, &err), -1);
    assert_non_null(strstr(err.msg, "multiple of 64"));
    quant_matrix_free(&b);
    free(W);
    free(Wt);
}

enum { QV = 300, QD = 128, QL = 2, QH = 2, QK = 4, QN = 24 };

static void build_model(Backpack *m, ModelArch arch, unsigned attention) {
    BackpackConfig c = {.arch = arch, .vocab_size = QV, .n_embd = QD, .n_layer = QL, .n_head = QH,
                        .num_senses = QK, .n_positions = QN, .sense_intermediate_scale = 4,
                        .attention = attention};
    BpError err = {0};
    assert_int_equal(backpack_build(m, &c, &err), 0);
    Rng rng;
    rng_seed(&rng, 7);
    /* N(0, 0.1): logits of order 1, so that tolerances below are not vacuous */
    for (size_t i = 0; i < m->num_parameters; i++) m->params_memory[i] = 0.1f * rng_normal(&rng);
}

/* Tokens fed: a fixed text with repeats (the sense cache's reuse is exercised). */
static const int text[QN] = {3, 17, 3, 42, 8, 8, 49, 0, 17, 3, 25, 11,
                             299, 5, 3, 120, 77, 8, 250, 17, 1, 2, 3, 4};

/* Logits (QN, QV) of the text through a state with quant q (NULL: float). */
static float *run_text(const Backpack *m, const QuantModel *q) {
    InferState s;
    BpError err = {0};
    assert_int_equal(infer_build(&s, m, QN, &err), 0);
    infer_set_quant(&s, q);
    float *out = malloc((size_t)QN * QV * sizeof(float));
    for (int i = 0; i < QN; i++) {
        const float *l = infer_step(&s, text[i], &err);
        assert_non_null(l);
        memcpy(out + (size_t)i * QV, l, QV * sizeof(float));
    }
    infer_free(&s);
    return out;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* The fast int8 generation against the plain C dequantize-then-float reference of the
 * same int8 model. Both round every product's input to int8 the same way; their
 * products differ by float rounding only (the kernel bound), but a rounding difference
 * can move a later activation across a rounding boundary of its int8 copy (one unit,
 * 1/127 of its group's largest value). The tolerance, 1e-3 of the logits' scale, covers
 * a few such flips; the measured difference is printed. Greedy steps must agree. */
static void check_against_reference(ModelArch arch, unsigned attention) {
    Backpack m;
    build_model(&m, arch, attention);
    BpError err = {0};
    QuantModel *q = quant_build(&m, 64, &err);
    assert_non_null(q);
    float *fast = run_text(&m, q);
    q->reference = 1;
    float *ref = run_text(&m, q);
    q->reference = 0;
    float *fl = run_text(&m, NULL);
    double max_diff = 0.0, max_ref = 0.0, max_float_diff = 0.0;
    for (size_t i = 0; i < (size_t)QN * QV; i++) {
        max_diff = fmax(max_diff, fabs(fast[i] - ref[i]));
        max_ref = fmax(max_ref, fabs(ref[i]));
        max_float_diff = fmax(max_float_diff, fabs(fast[i] - fl[i]));
    }
    printf("quant %s: max |fast - reference| %.3g, max |int8 - float| %.3g, max |logit| %.3g\n",
           arch == ARCH_BACKPACK ? "backpack" : "transformer", max_diff, max_float_diff, max_ref);
    assert_true(max_ref > 0.5);
    assert_true(max_diff <= 1e-3 * max_ref);
    /* int8 approximates the float model, and is not the float model */
    assert_true(max_float_diff <= 0.05 * max_ref);
    assert_true(max_float_diff > 0.0);
    for (int i = 0; i < QN; i++)
        assert_int_equal(argmax(fast + (size_t)i * QV, QV), argmax(ref + (size_t)i * QV, QV));

    /* greedy in int8 is the argmax of the int8 logits, and does not depend on threads */
    InferState s;
    assert_int_equal(infer_build(&s, &m, QN, &err), 0);
    infer_set_quant(&s, q);
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        infer_reset(&s);
        for (int i = 0; i < QN; i++)
            assert_int_equal(infer_step_greedy(&s, text[i], &err), argmax(fast + (size_t)i * QV, QV));
    }
    infer_free(&s);
    free(fast);
    free(ref);
    free(fl);
    quant_free(q);
    backpack_free(&m);
}

static void test_generation_matches_reference_backpack(void **state) {
    (void)state;
    check_against_reference(ARCH_BACKPACK, 0);
}

static void test_generation_matches_reference_transformer(void **state) {
    (void)state;
    check_against_reference(ARCH_TRANSFORMER, 0);
}

/* A Synthesizer variant without dot-product attention: its qkv projection is V alone
 * (d x d), its own matrices stay float. */
static void test_generation_matches_reference_synthesizer(void **state) {
    (void)state;
    check_against_reference(ARCH_BACKPACK, ATTN_RANDOM);
}

/* Building and using an int8 copy changes neither the model nor the float path: the
 * logits of a state that ran in int8 and was switched back are bit-identical to a
 * state that never saw a QuantModel. */
static void test_float_path_unchanged(void **state) {
    (void)state;
    Backpack m;
    build_model(&m, ARCH_BACKPACK, 0);
    float *before = malloc(m.num_parameters * sizeof(float));
    memcpy(before, m.params_memory, m.num_parameters * sizeof(float));
    float *plain = run_text(&m, NULL);
    BpError err = {0};
    QuantModel *q = quant_build(&m, 0, &err);
    assert_non_null(q);
    assert_memory_equal(before, m.params_memory, m.num_parameters * sizeof(float));
    InferState s;
    assert_int_equal(infer_build(&s, &m, QN, &err), 0);
    infer_set_quant(&s, q);
    for (int i = 0; i < 5; i++) assert_non_null(infer_step(&s, text[i], &err));
    infer_set_quant(&s, NULL);
    infer_reset(&s);
    for (int i = 0; i < QN; i++) {
        const float *l = infer_step(&s, text[i], &err);
        assert_memory_equal(l, plain + (size_t)i * QV, QV * sizeof(float));
    }
    infer_free(&s);
    quant_free(q);
    free(plain);
    free(before);
    backpack_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernel_within_bound),
        cmocka_unit_test(test_transposed_layout),
        cmocka_unit_test(test_generation_matches_reference_backpack),
        cmocka_unit_test(test_generation_matches_reference_transformer),
        cmocka_unit_test(test_generation_matches_reference_synthesizer),
        cmocka_unit_test(test_float_path_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
