/* Every layer's backward against central finite differences, in double precision.
 *
 * The layers checked are the model's own: model/layers.c is compiled into this test a
 * second time with BP_REAL_DOUBLE (real = double, names suffixed _f64, see
 * model/real.h), so no re-implementation stands between the check and the code.
 * Each case draws random inputs, takes the scalar loss sum(out * R) for a fixed random
 * R, runs the backward with dout = R and compares every input's gradient.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define BP_REAL_DOUBLE 1
#include "../model/layers.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"

#define TOL 1e-7
#define H 1e-5

static unsigned rng_state = 12345;

static double *vec(size_t n, double lo, double hi) {
    double *x = malloc(n * sizeof(double));
    fill_uniform(x, n, lo, hi, &rng_state);
    return x;
}

static double *zeros(size_t n) { return calloc(n, sizeof(double)); }

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static void expect(const char *what, GradCheck g) {
    printf("  %-34s rel %.2e  (max |diff| %.2e, max |grad| %.2e, %d entries)\n", what,
           g.rel_error, g.max_abs_diff, g.max_abs_grad, g.checked);
    assert_true(g.max_abs_grad > 1e-6); /* the gradient is not trivially zero */
    assert_true(g.rel_error < TOL);
}

/* ------------------------------------------------------------------------------------ */

typedef struct {
    int N, C;
    double *x, *w, *b, *out, *mean, *rstd, *R;
} LnCase;

static double ln_loss(void *p) {
    LnCase *c = p;
    layernorm_forward(c->out, c->mean, c->rstd, c->x, c->w, c->b, c->N, c->C);
    return dot(c->out, c->R, (size_t)c->N * c->C);
}

static void test_layernorm(void **state) {
    (void)state;
    LnCase c = {5, 7, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    size_t n = 35;
    c.x = vec(n, -2, 2);
    c.w = vec(7, 0.5, 1.5);
    c.b = vec(7, -0.5, 0.5);
    c.out = zeros(n);
    c.mean = zeros(5);
    c.rstd = zeros(5);
    c.R = vec(n, -1, 1);
    ln_loss(&c);
    /* the forward itself: each row normalized (weight 1, bias 0 gives mean 0, var 1) */
    double *ones = vec(7, 1, 1), *nul = vec(7, 0, 0), *o = zeros(n);
    for (int i = 0; i < 7; i++) ones[i] = 1, nul[i] = 0;
    layernorm_forward(o, c.mean, c.rstd, c.x, ones, nul, 5, 7);
    for (int r = 0; r < 5; r++) {
        double m = 0, v = 0;
        for (int i = 0; i < 7; i++) m += o[r * 7 + i] / 7;
        for (int i = 0; i < 7; i++) v += (o[r * 7 + i] - m) * (o[r * 7 + i] - m) / 7;
        assert_true(fabs(m) < 1e-12);
        assert_true(fabs(v - 1) < 1e-4); /* eps = 1e-5 keeps it just under 1 */
    }
    ln_loss(&c);
    double *dx = zeros(n), *dw = zeros(7), *db = zeros(7);
    layernorm_backward(dx, dw, db, c.R, c.x, c.w, c.mean, c.rstd, 5, 7);
    expect("layernorm dinp", gradcheck(c.x, dx, n, n, ln_loss, &c, H, 1));
    expect("layernorm dweight", gradcheck(c.w, dw, 7, 7, ln_loss, &c, H, 2));
    expect("layernorm dbias", gradcheck(c.b, db, 7, 7, ln_loss, &c, H, 3));
    free(ones), free(nul), free(o), free(dx), free(dw), free(db);
    free(c.x), free(c.w), free(c.b), free(c.out), free(c.mean), free(c.rstd), free(c.R);
}

/* ------------------------------------------------------------------------------------ */

typedef struct {
    int N, C, OC, linear;
    double *x, *w, *b, *out, *R;
} MmCase;

static double mm_loss(void *p) {
    MmCase *c = p;
    if (c->linear)
        linear_forward(c->out, c->x, c->w, c->b, c->N, c->C, c->OC);
    else
        matmul_forward(c->out, c->x, c->w, c->b, c->N, c->C, c->OC);
    return dot(c->out, c->R, (size_t)c->N * c->OC);
}

static void check_matmul(int linear) {
    MmCase c = {4, 5, 6, linear, NULL, NULL, NULL, NULL, NULL};
    c.x = vec(20, -1, 1);
    c.w = vec(30, -1, 1);
    c.b = vec(6, -1, 1);
    c.out = zeros(24);
    c.R = vec(24, -1, 1);
    /* one entry by hand: out[1][2] = sum_i x[1][i] W(i,2) + b[2] */
    mm_loss(&c);
    double want = c.b[2];
    for (int i = 0; i < 5; i++) want += c.x[5 + i] * (linear ? c.w[2 * 5 + i] : c.w[i * 6 + 2]);
    assert_true(fabs(c.out[6 + 2] - want) < 1e-12);
    double *dx = zeros(20), *dw = zeros(30), *db = zeros(6);
    if (linear)
        linear_backward(dx, dw, db, c.R, c.x, c.w, 4, 5, 6);
    else
        matmul_backward(dx, dw, db, c.R, c.x, c.w, 4, 5, 6);
    expect(linear ? "linear dinp" : "matmul dinp", gradcheck(c.x, dx, 20, 20, mm_loss, &c, H, 4));
    expect(linear ? "linear dweight" : "matmul dweight",
           gradcheck(c.w, dw, 30, 30, mm_loss, &c, H, 5));
    expect(linear ? "linear dbias" : "matmul dbias", gradcheck(c.b, db, 6, 6, mm_loss, &c, H, 6));
    free(dx), free(dw), free(db), free(c.x), free(c.w), free(c.b), free(c.out), free(c.R);
}

static void test_matmul(void **state) {
    (void)state;
    check_matmul(0);
}

static void test_linear(void **state) {
    (void)state;
    check_matmul(1);
}

/* ------------------------------------------------------------------------------------ */

typedef struct {
    size_t n;
    double *x, *out, *R;
} GeluCase;

static double gelu_loss(void *p) {
    GeluCase *c = p;
    gelu_forward(c->out, c->x, c->n);
    return dot(c->out, c->R, c->n);
}

static void test_gelu(void **state) {
    (void)state;
    GeluCase c = {40, vec(40, -4, 4), zeros(40), vec(40, -1, 1)};
    /* the tanh form at 1: 0.5 (1 + tanh(sqrt(2/pi) 1.044715)) */
    double one = 1, g;
    gelu_forward(&g, &one, 1);
    assert_true(fabs(g - 0.8411919906082768) < 1e-12);
    double *dx = zeros(40);
    gelu_backward(dx, c.x, c.R, 40);
    expect("gelu dinp", gradcheck(c.x, dx, 40, 40, gelu_loss, &c, H, 7));
    free(dx), free(c.x), free(c.out), free(c.R);
}

/* ------------------------------------------------------------------------------------ */

typedef struct {
    int B, T, C, NH;
    double scale, p;
    double *qkv, *att, *out, *R, *scratch;
} AttCase;

static double att_loss(void *p) {
    AttCase *c = p;
    attention_forward(c->out, c->att, c->qkv, c->B, c->T, c->C, c->NH, c->scale, c->p, 99, 7,
                      c->scratch);
    return dot(c->out, c->R, (size_t)c->B * c->T * c->C);
}

static void check_attention(double p) {
    AttCase c = {2, 5, 6, 2, 0.35, p, NULL, NULL, NULL, NULL, NULL};
    size_t nqkv = 2 * 5 * 18, nout = 2 * 5 * 6;
    c.qkv = vec(nqkv, -1.5, 1.5);
    c.att = zeros(2 * 2 * 25);
    c.out = zeros(nout);
    c.R = vec(nout, -1, 1);
    c.scratch = zeros((size_t)omp_get_max_threads() * 2 * 25);
    att_loss(&c);
    /* causal rows sum to 1 and nothing above the diagonal */
    for (int bh = 0; bh < 4; bh++)
        for (int i = 0; i < 5; i++) {
            double s = 0;
            for (int j = 0; j < 5; j++) {
                double a = c.att[bh * 25 + i * 5 + j];
                if (j > i) assert_true(a == 0);
                s += a;
            }
            assert_true(fabs(s - 1) < 1e-12);
        }
    double *dqkv = zeros(nqkv);
    attention_backward(dqkv, c.R, c.qkv, c.att, 2, 5, 6, 2, c.scale, p, 99, 7, c.scratch);
    expect(p > 0 ? "attention dqkv (dropout 0.3)" : "attention dqkv",
           gradcheck(c.qkv, dqkv, nqkv, nqkv, att_loss, &c, H, 8));
    free(dqkv), free(c.qkv), free(c.att), free(c.out), free(c.R), free(c.scratch);
}

static void test_attention(void **state) {
    (void)state;
    check_attention(0);
    check_attention(0.3);
}

/* ------------------------------------------------------------------------------------ */

typedef struct {
    int B, T, C, K;
    double *qk, *alpha, *R;
} SwCase;

static double sw_loss(void *p) {
    SwCase *c = p;
    sense_weights_forward(c->alpha, c->qk, c->B, c->T, c->C, c->K);
    return dot(c->alpha, c->R, (size_t)c->B * c->K * c->T * c->T);
}

static void test_sense_weights(void **state) {
    (void)state;
    SwCase c = {2, 5, 8, 4, NULL, NULL, NULL};
    size_t nqk = 2 * 5 * 16, na = 2 * 4 * 25;
    c.qk = vec(nqk, -1.5, 1.5);
    c.alpha = zeros(na);
    c.R = vec(na, -1, 1);
    sw_loss(&c);
    /* alpha_l[i,j] by hand for b=1, l=2, i=3: softmax over j<=3 of q.k / sqrt(2) */
    double sc[4], mx = -1e300, sum = 0;
    for (int j = 0; j <= 3; j++) {
        const double *q = c.qk + (1 * 5 + 3) * 16 + 2 * 2, *k = c.qk + (1 * 5 + j) * 16 + 8 + 2 * 2;
        sc[j] = (q[0] * k[0] + q[1] * k[1]) / sqrt(2.0);
        if (sc[j] > mx) mx = sc[j];
    }
    for (int j = 0; j <= 3; j++) sum += exp(sc[j] - mx);
    for (int j = 0; j < 5; j++) {
        double want = j <= 3 ? exp(sc[j] - mx) / sum : 0;
        assert_true(fabs(c.alpha[((1 * 4 + 2) * 5 + 3) * 5 + j] - want) < 1e-12);
    }
    double *dqk = zeros(nqk), *dalpha = malloc(na * sizeof(double));
    memcpy(dalpha, c.R, na * sizeof(double));
    sense_weights_backward(dqk, dalpha, c.qk, c.alpha, 2, 5, 8, 4);
    expect("sense weights dqk", gradcheck(c.qk, dqk, nqk, nqk, sw_loss, &c, H, 9));
    free(dqk), free(dalpha), free(c.qk), free(c.alpha), free(c.R);
}

/* ------------------------------------------------------------------------------------ */

typedef struct {
    int B, T, C, K;
    double *alpha, *senses, *out, *R;
} MixCase;

static double mix_loss(void *p) {
    MixCase *c = p;
    mix_forward(c->out, c->alpha, c->senses, c->B, c->T, c->C, c->K);
    return dot(c->out, c->R, (size_t)c->B * c->T * c->C);
}

static void test_mix(void **state) {
    (void)state;
    MixCase c = {2, 4, 3, 2, NULL, NULL, NULL, NULL};
    size_t na = 2 * 2 * 16, ns = 2 * 4 * 2 * 3, no = 2 * 4 * 3;
    c.alpha = vec(na, 0, 1);
    c.senses = vec(ns, -1, 1);
    c.out = zeros(no);
    c.R = vec(no, -1, 1);
    mix_loss(&c);
    /* o[b=1][i=2][x=1] = sum_l sum_j alpha[1,l,2,j] senses[1,j,l,1] */
    double want = 0;
    for (int l = 0; l < 2; l++)
        for (int j = 0; j < 4; j++)
            want += c.alpha[((1 * 2 + l) * 4 + 2) * 4 + j] * c.senses[((1 * 4 + j) * 2 + l) * 3 + 1];
    assert_true(fabs(c.out[(1 * 4 + 2) * 3 + 1] - want) < 1e-12);
    double *dalpha = zeros(na), *dsenses = zeros(ns);
    mix_backward(dalpha, dsenses, c.R, c.alpha, c.senses, 2, 4, 3, 2);
    expect("mix dalpha", gradcheck(c.alpha, dalpha, na, na, mix_loss, &c, H, 10));
    expect("mix dsenses", gradcheck(c.senses, dsenses, ns, ns, mix_loss, &c, H, 11));
    free(dalpha), free(dsenses), free(c.alpha), free(c.senses), free(c.out), free(c.R);
}

/* ------------------------------------------------------------------------------------ */

typedef struct {
    int N, V;
    double *logits, *lse;
    int *targets;
} CeCase;

static double ce_loss(void *p) {
    CeCase *c = p;
    return crossentropy_forward(c->lse, c->logits, c->targets, c->N, c->V);
}

static void test_crossentropy(void **state) {
    (void)state;
    int targets[3] = {4, 0, 6};
    CeCase c = {3, 7, vec(21, -3, 3), zeros(3), targets};
    double loss = ce_loss(&c), want = 0;
    for (int n = 0; n < 3; n++) {
        double s = 0;
        for (int v = 0; v < 7; v++) s += exp(c.logits[n * 7 + v]);
        want += (log(s) - c.logits[n * 7 + targets[n]]) / 3;
    }
    assert_true(fabs(loss - want) < 1e-12);
    double *d = malloc(21 * sizeof(double));
    memcpy(d, c.logits, 21 * sizeof(double));
    crossentropy_backward(d, c.lse, targets, 3, 7, 1.0);
    expect("softmax+cross-entropy dlogits", gradcheck(c.logits, d, 21, 21, ce_loss, &c, H, 12));
    free(d), free(c.logits), free(c.lse);
}

/* ------------------------------------------------------------------------------------ */

typedef struct {
    int B, T, C;
    const int *inp;
    double *wte, *wpe, *out, *R;
} EncCase;

static double enc_loss(void *p) {
    EncCase *c = p;
    encoder_forward(c->out, c->inp, c->wte, c->wpe, c->B, c->T, c->C);
    return dot(c->out, c->R, (size_t)c->B * c->T * c->C);
}

static void test_encoder(void **state) {
    (void)state;
    /* word 2 occurs three times: its gradient is the sum over positions */
    int inp[6] = {2, 0, 2, 3, 2, 0};
    int words[3] = {2, 0, 3}, off[4] = {0, 3, 5, 6}, pos[6] = {0, 2, 4, 1, 5, 3};
    WordGroups g = {3, words, off, pos};
    EncCase c = {2, 3, 4, inp, vec(5 * 4, -1, 1), vec(3 * 4, -1, 1), zeros(24), vec(24, -1, 1)};
    enc_loss(&c);
    double *dwte = zeros(20), *dwpe = zeros(12);
    encoder_backward(dwte, dwpe, c.R, &g, 2, 3, 4);
    for (int i = 0; i < 4; i++) assert_true(dwte[1 * 4 + i] == 0 && dwte[4 * 4 + i] == 0);
    expect("encoder dwte", gradcheck(c.wte, dwte, 20, 20, enc_loss, &c, H, 13));
    expect("encoder dwpe", gradcheck(c.wpe, dwpe, 12, 12, enc_loss, &c, H, 14));
    free(dwte), free(dwpe), free(c.wte), free(c.wpe), free(c.out), free(c.R);
}

static void test_dropout(void **state) {
    (void)state;
    size_t n = 20000;
    double *x = zeros(n);
    for (size_t i = 0; i < n; i++) x[i] = 1;
    dropout_apply(x, 100, 200, NULL, 0.25, 42, 3);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(x[i] == 0 || fabs(x[i] - 1 / 0.75) < 1e-12);
        kept += x[i] != 0;
    }
    assert_true(fabs((double)kept / n - 0.75) < 0.02);
    /* the same (seed, site) gives the same mask; another site another one */
    double *y = zeros(n), *z = zeros(n);
    for (size_t i = 0; i < n; i++) y[i] = z[i] = 1;
    dropout_apply(y, 100, 200, NULL, 0.25, 42, 3);
    dropout_apply(z, 100, 200, NULL, 0.25, 42, 4);
    assert_memory_equal(x, y, n * sizeof(double));
    assert_memory_not_equal(x, z, n * sizeof(double));
    /* row ids: a row's mask follows its id, not its place */
    int ids[2] = {7, 3};
    double a[2 * 50], b[2 * 50];
    for (int i = 0; i < 100; i++) a[i] = b[i] = 1;
    dropout_apply(a, 2, 50, ids, 0.5, 1, 2);
    int ids_rev[2] = {3, 7};
    dropout_apply(b, 2, 50, ids_rev, 0.5, 1, 2);
    assert_memory_equal(a, b + 50, 50 * sizeof(double));
    free(x), free(y), free(z);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layernorm),     cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_linear),        cmocka_unit_test(test_gelu),
        cmocka_unit_test(test_attention),     cmocka_unit_test(test_sense_weights),
        cmocka_unit_test(test_mix),           cmocka_unit_test(test_crossentropy),
        cmocka_unit_test(test_encoder),       cmocka_unit_test(test_dropout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
