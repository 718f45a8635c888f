/* The whole model's gradient against central finite differences, in double precision,
 * for both architectures, with and without dropout, and with sense edits.
 *
 * model/layers.c and model/net.c are compiled into this test a second time with
 * BP_REAL_DOUBLE (see model/real.h): the code checked is the model's own, only its
 * scalar type differs. The float model from libmodel.a is then compared with the
 * double one on the same parameters, so the float build is tied to the checked code.
 * Configuration: d=16, L=2, H=2, k=4, V=50, n=8, B=2.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define BP_REAL_DOUBLE 1
#include "../model/layers.c"
#include "../model/net.c"
#include "../model/backpack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

#define TOL 1e-6
#define STEP 1e-5
#define PER_TENSOR 24

/* LayerNorm gains are drawn around 1 rather than 0 */
static int is_gain(int f) { return backpack_param_info[f].kind == PARAM_GAIN; }

typedef struct {
    BackpackConfig cfg;
    size_t sizes[BP_NUM_PARAM_TENSORS], total;
    double *params, *grads;
    NetF64 net;
    int B, T;
    int inputs[16], targets[16];
    double dropout;
} Model;

static BackpackConfig tiny_config(ModelArch arch, unsigned attention) {
    BackpackConfig c = {arch, 50, 16, 2, 2, 4, 8, 4, attention, 0};
    return c;
}

static void model_init_attention(Model *m, ModelArch arch, double dropout, unsigned attention) {
    memset(m, 0, sizeof *m);
    m->cfg = tiny_config(arch, attention);
    m->total = backpack_param_sizes(&m->cfg, m->sizes);
    m->params = malloc(m->total * sizeof(double));
    m->grads = calloc(m->total, sizeof(double));
    unsigned st = 777 + arch;
    double *p = m->params;
    for (int f = 0; f < BP_NUM_PARAM_TENSORS; f++) {
        if (is_gain(f))
            fill_uniform(p, m->sizes[f], 0.7, 1.3, &st);
        else
            fill_uniform(p, m->sizes[f], -0.3, 0.3, &st);
        p += m->sizes[f];
    }
    net_init(&m->net, &m->cfg, m->params, m->grads);
    m->B = 2;
    m->T = 8;
    /* words from a small range so that words repeat within and across rows */
    for (int i = 0; i < 16; i++) {
        st = st * 1103515245u + 12345u;
        m->inputs[i] = (int)((st >> 8) % 12);
        st = st * 1103515245u + 12345u;
        m->targets[i] = (int)((st >> 8) % 50);
    }
    m->dropout = dropout;
}

static void model_init(Model *m, ModelArch arch, double dropout) {
    model_init_attention(m, arch, dropout, ATTN_DOT);
}

static void model_free(Model *m) {
    net_free(&m->net);
    free(m->params);
    free(m->grads);
}

static double model_loss(void *ctx) {
    Model *m = ctx;
    BpError err;
    int rc = net_forward(&m->net, m->inputs, m->targets, m->B, m->T, m->dropout, 4242, &err);
    assert_int_equal(rc, 0);
    return m->net.mean_loss;
}

static void model_grad(Model *m) {
    BpError err;
    memset(m->grads, 0, m->total * sizeof(double));
    model_loss(m);
    assert_int_equal(net_backward(&m->net, &err), 0);
}

/* Checks every parameter tensor; returns the worst relative error. */
static double check_all(Model *m, const char *label) {
    model_grad(m);
    double worst = 0;
    double *p = m->params, *g = m->grads;
    printf("  %s (loss %.6f)\n", label, model_loss(m));
    for (int f = 0; f < BP_NUM_PARAM_TENSORS; f++) {
        size_t n = m->sizes[f];
        if (n && backpack_param_info[f].kind == PARAM_FIXED) {  /* never trained */
            for (size_t i = 0; i < n; i++) assert_true(g[i] == 0.0);
            printf("    %-18s gradient 0 (fixed)\n", backpack_param_info[f].field);
        } else if (n) {
            GradCheck r = gradcheck(p, g, n, PER_TENSOR, model_loss, m, STEP, 100 + f);
            printf("    %-18s rel %.2e  max |diff| %.2e  max |grad| %.2e  (%d of %zu)\n",
                   backpack_param_info[f].field, r.rel_error, r.max_abs_diff, r.max_abs_grad, r.checked, n);
            if (r.rel_error > worst) worst = r.rel_error;
            assert_true(r.rel_error < TOL);
        }
        p += n;
        g += n;
    }
    printf("    worst rel %.2e\n", worst);
    return worst;
}

static void test_backpack_grad(void **state) {
    (void)state;
    Model m;
    model_init(&m, ARCH_BACKPACK, 0);
    check_all(&m, "backpack");
    model_free(&m);
}

static void test_backpack_grad_dropout(void **state) {
    (void)state;
    Model m;
    model_init(&m, ARCH_BACKPACK, 0.2);
    check_all(&m, "backpack, dropout 0.2");
    model_free(&m);
}

static void test_backpack_grad_edits(void **state) {
    (void)state;
    Model m;
    model_init(&m, ARCH_BACKPACK, 0);
    float vec[16];
    for (int i = 0; i < 16; i++) vec[i] = 0.1f * (float)(i - 8);
    SenseEdit items[3] = {{m.inputs[0], 1, NULL, 0.5f}, {m.inputs[3], 2, vec, 1.0f},
                          {m.inputs[5], 0, vec, 0.0f}};
    SenseEdits edits = {items, 3};
    double plain = model_loss(&m);
    m.net.edits = &edits;
    double edited = model_loss(&m);
    assert_true(fabs(plain - edited) > 1e-6);  /* the edits change the model */
    check_all(&m, "backpack with edits");
    model_free(&m);
}

static void test_transformer_grad(void **state) {
    (void)state;
    Model m;
    model_init(&m, ARCH_TRANSFORMER, 0);
    check_all(&m, "transformer");
    model_free(&m);
}

static void test_transformer_grad_dropout(void **state) {
    (void)state;
    Model m;
    model_init(&m, ARCH_TRANSFORMER, 0.2);
    check_all(&m, "transformer, dropout 0.2");
    model_free(&m);
}

/* Synthesizer attention (docs/synthesizer.md): every variant on the baseline, and a
 * mixture of each of them in the Backpack. T = 6 < n_positions = 8, so the score
 * tables' top-left blocks are what the sequence reads. */
static void check_attention(ModelArch arch, const char *name, double dropout) {
    unsigned kinds;
    BpError err;
    assert_int_equal(attention_parse(name, &kinds, &err), 0);
    Model m;
    model_init_attention(&m, arch, dropout, kinds);
    m.T = 6;
    char label[160];
    snprintf(label, sizeof label, "%s, attention %s%s", arch ? "transformer" : "backpack", name,
             dropout > 0 ? ", dropout 0.2" : "");
    check_all(&m, label);
    model_free(&m);
}

/* Without the last block's MLP residual (config no_last_residual), both architectures. */
static void check_no_last_residual(ModelArch arch, const char *label) {
    Model m;
    model_init(&m, arch, 0.2);
    double with = model_loss(&m);
    m.net.config.no_last_residual = 1;
    assert_true(fabs(model_loss(&m) - with) > 1e-6);  /* the flag changes the model */
    check_all(&m, label);
    model_free(&m);
}

static void test_synthesizer_grad(void **state) {
    (void)state;
    const char *variants[] = {"dense", "random", "fixed-random", "factorized-dense",
                              "factorized-random", "mix:random+dot"};
    for (size_t i = 0; i < sizeof variants / sizeof *variants; i++)
        check_attention(ARCH_TRANSFORMER, variants[i], 0);
}

static void test_synthesizer_grad_backpack_mixture(void **state) {
    (void)state;
    /* every kind in a mixture of three (with all six at once, 1/6 weights shrink the
     * factorized dense gradients to where finite differences are mostly rounding) */
    check_attention(ARCH_BACKPACK, "mix:dot+dense+factorized-dense", 0);
    check_attention(ARCH_BACKPACK, "mix:random+fixed-random+factorized-random", 0);
    check_attention(ARCH_BACKPACK, "mix:dense+random+dot", 0.2);
}

static void test_backpack_grad_no_last_residual(void **state) {
    (void)state;
    check_no_last_residual(ARCH_BACKPACK, "backpack, no last residual, dropout 0.2");
}

static void test_transformer_grad_no_last_residual(void **state) {
    (void)state;
    check_no_last_residual(ARCH_TRANSFORMER, "transformer, no last residual, dropout 0.2");
}

/* The float model (libmodel.a, through the public API) against the double one on the
 * same parameters: loss, logits and every gradient agree to float rounding. */
static void check_float_matches_double(ModelArch arch, unsigned attention) {
    Model m;
    model_init_attention(&m, arch, 0, attention);
    model_grad(&m);
    Backpack f;
    BpError err;
    assert_int_equal(backpack_build(&f, &m.cfg, &err), 0);
    assert_int_equal(f.num_parameters, m.total);
    for (size_t i = 0; i < m.total; i++) f.params_memory[i] = (float)m.params[i];
    backpack_zero_grad(&f);
    assert_int_equal(backpack_forward(&f, m.inputs, m.targets, 2, 8, NULL, &err), 0);
    printf("  %s: loss float %.7f double %.7f\n", arch ? "transformer" : "backpack",
           (double)f.mean_loss, m.net.mean_loss);
    assert_true(fabs(f.mean_loss - m.net.mean_loss) < 1e-5);
    /* logits: the double model's were overwritten by its backward; recompute */
    model_loss(&m);
    const float *lf = backpack_logits(&f);
    double worst_logit = 0;
    for (size_t i = 0; i < 16 * 50; i++)
        worst_logit = fmax(worst_logit, fabs(lf[i] - m.net.logits[i]));
    assert_true(worst_logit < 1e-5);
    assert_int_equal(backpack_backward(&f, &err), 0);
    model_grad(&m);
    double gmax = 0, dmax = 0;
    for (size_t i = 0; i < m.total; i++) {
        gmax = fmax(gmax, fabs(m.grads[i]));
        dmax = fmax(dmax, fabs(f.grads_memory[i] - m.grads[i]));
    }
    printf("  max |logit diff| %.2e, max |grad diff| %.2e (max |grad| %.2e)\n", worst_logit,
           dmax, gmax);
    assert_true(dmax < 1e-4 * gmax);
    backpack_free(&f);
    model_free(&m);
}

static void test_float_matches_double(void **state) {
    (void)state;
    check_float_matches_double(ARCH_BACKPACK, ATTN_DOT);
    check_float_matches_double(ARCH_TRANSFORMER, ATTN_DOT);
    check_float_matches_double(ARCH_BACKPACK, ATTN_ALL);
    check_float_matches_double(ARCH_TRANSFORMER, ATTN_DENSE | ATTN_FACTORIZED_RANDOM);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backpack_grad),        cmocka_unit_test(test_backpack_grad_dropout),
        cmocka_unit_test(test_backpack_grad_edits),  cmocka_unit_test(test_transformer_grad),
        cmocka_unit_test(test_transformer_grad_dropout), cmocka_unit_test(test_float_matches_double),
        cmocka_unit_test(test_synthesizer_grad),
        cmocka_unit_test(test_synthesizer_grad_backpack_mixture),
        cmocka_unit_test(test_backpack_grad_no_last_residual),
        cmocka_unit_test(test_transformer_grad_no_last_residual),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
