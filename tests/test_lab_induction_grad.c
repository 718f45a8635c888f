/* The simplified induction model's gradient against central finite differences, in
 * double precision: lab/induction_model.c is compiled into this test a second time with
 * INDUCTION_REAL_DOUBLE (the code checked is the lab's own, only its scalar type
 * differs), and the float model from liblab.a is compared with it on the same weights.
 * Every trained matrix (each W_K, the last W_O, W_F) of 1, 2 and 3 layers, with the
 * loss on the in-context targets and on every token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define INDUCTION_REAL_DOUBLE 1
#include "../lab/induction_model.c"
/* Now the float declarations, under the plain names. */
#undef INDUCTION_REAL_DOUBLE
#undef InductionModel
#undef induction_model_build
#undef induction_model_free
#undef induction_forward
#undef induction_backward
#undef induction_sgd_step
#undef induction_recalls
#undef induction_set_ideal
#undef induction_config_validate
#include "../lab/induction_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

#define NB 2
#define NT 9
#define TOL 1e-6
#define STEP 1e-5

typedef struct {
    InductionModelF64 m;
    int tokens[NB * NT];
    unsigned char marks[NB * NT];
} Case;

static double loss_of(void *ctx) {
    Case *c = ctx;
    BpError err = {{0}};
    if (induction_forward_f64(&c->m, c->tokens, c->marks, NB, &err) != 0) fail_msg("%s", err.msg);
    return c->m.stats.loss;
}

static void check_case(int layers, int ffn, int loss_all) {
    InductionConfig cfg = {.vocab_size = 7, .d = 8, .seq_len = NT, .n_layer = layers,
                           .ffn = ffn, .loss_all = loss_all};
    Case c;
    BpError err = {{0}};
    if (induction_model_build_f64(&c.m, &cfg, 11 + layers, &err) != 0) fail_msg("%s", err.msg);
    /* Larger weights than at initialization, so that attention is far from uniform and
     * every term of the backward matters. */
    for (size_t i = 0; i < c.m.num_params; i++) c.m.params[i] *= layers == 3 ? 1.5 : 2.5;
    unsigned s = 7;
    for (int i = 0; i < NB * NT; i++) {
        s = s * 1103515245u + 12345u;
        c.tokens[i] = (int)((s >> 8) % 7);
        c.marks[i] = (unsigned char)((s >> 20) % 4);   /* 0..3: about half are targets */
    }
    double base = loss_of(&c);
    assert_true(c.m.stats.n_in_context > 0);
    assert_true(isfinite(base) && base > 0);
    induction_backward_f64(&c.m);
    size_t dd = (size_t)cfg.d * cfg.d;
    struct { const char *name; double *w, *g; } mats[INDUCTION_MAX_LAYERS + 2];
    int n = 0;
    for (int l = 0; l < layers; l++)
        mats[n].name = "W_K", mats[n].w = c.m.wk + l * dd, mats[n].g = c.m.dwk + l * dd, n++;
    mats[n].name = "W_O", mats[n].w = c.m.wo + (layers - 1) * dd, mats[n].g = c.m.dwo, n++;
    if (ffn) mats[n].name = "W_F", mats[n].w = c.m.wf, mats[n].g = c.m.dwf, n++;
    /* the analytic gradient is overwritten by the forwards of the check: keep a copy */
    double *analytic = malloc(c.m.num_grads * sizeof *analytic);
    memcpy(analytic, c.m.grads, c.m.num_grads * sizeof *analytic);
    for (int i = 0; i < n; i++) {
        GradCheck r = gradcheck(mats[i].w, analytic + (mats[i].g - c.m.grads), dd, dd, loss_of, &c,
                                STEP, 3);
        if (!(r.rel_error < TOL) || !(r.max_abs_grad > 1e-6))
            fail_msg("layers %d ffn %d loss_all %d: %s #%d rel error %.3g (max grad %.3g)", layers,
                     ffn, loss_all, mats[i].name, i, r.rel_error, r.max_abs_grad);
    }

    /* The float model on the same weights: the same loss and gradient to float rounding. */
    InductionModel f;
    if (induction_model_build(&f, &cfg, 1, &err) != 0) fail_msg("%s", err.msg);
    for (size_t i = 0; i < f.num_params; i++) f.params[i] = (float)c.m.params[i];
    if (induction_forward(&f, c.tokens, c.marks, NB, &err) != 0) fail_msg("%s", err.msg);
    assert_true(fabs(f.stats.loss - base) < 1e-4 * (1 + fabs(base)));
    induction_backward(&f);
    double gmax = 0, diff = 0;
    for (size_t i = 0; i < f.num_grads; i++) {
        if (fabs(analytic[i]) > gmax) gmax = fabs(analytic[i]);
        if (fabs(analytic[i] - f.grads[i]) > diff) diff = fabs(analytic[i] - f.grads[i]);
    }
    assert_true(diff < 1e-3 * gmax);
    induction_model_free(&f);
    free(analytic);
    induction_model_free_f64(&c.m);
}

static void test_two_layers(void **state) {
    (void)state;
    check_case(2, 0, 0);
    check_case(2, 0, 1);
}
static void test_two_layers_ffn(void **state) {
    (void)state;
    check_case(2, 1, 1);
    check_case(2, 1, 0);
}
static void test_one_and_three_layers(void **state) {
    (void)state;
    check_case(1, 0, 0);
    check_case(3, 0, 1);
    check_case(3, 1, 0);
}

/* SGD with momentum and weight decay as torch.optim.SGD, two steps by hand; a matrix
 * outside the mask keeps its weights. */
static void test_sgd_step(void **state) {
    (void)state;
    InductionConfig cfg = {.vocab_size = 5, .d = 2, .seq_len = 4, .n_layer = 2};
    InductionModel m;
    BpError err = {{0}};
    if (induction_model_build(&m, &cfg, 3, &err) != 0) fail_msg("%s", err.msg);
    float w0 = m.wk[0], wo0 = m.wo[4], wk2 = m.wk[4];
    m.grads[0] = 0.5f;        /* dW_K^1[0] */
    m.grads[8] = 0.25f;       /* dW_O^2[0] */
    induction_sgd_step(&m, 0.1, 0.9, 0.01, INDUCTION_TRAIN_WK1 | INDUCTION_TRAIN_WO);
    float buf = 0.5f + 0.01f * w0, w1 = w0 - 0.1f * buf;
    assert_float_equal(m.wk[0], w1, 1e-6);
    float buf2 = 0.9f * buf + (0.5f + 0.01f * w1);
    induction_sgd_step(&m, 0.1, 0.9, 0.01, INDUCTION_TRAIN_WK1);
    assert_float_equal(m.wk[0], w1 - 0.1f * buf2, 1e-6);
    float wo1 = wo0 - 0.1f * (0.25f + 0.01f * wo0);
    assert_float_equal(m.wo[4], wo1, 1e-6);   /* frozen in the second step */
    assert_true(m.wk[4] == wk2);   /* W_K^2: outside both masks */
    induction_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_layers),
        cmocka_unit_test(test_two_layers_ffn),
        cmocka_unit_test(test_one_and_three_layers),
        cmocka_unit_test(test_sgd_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
