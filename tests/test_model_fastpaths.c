/* The fast paths of model/layers.c equal the plain computation.
 *
 * 1. Causal blocking: attention, sense weights and mixing skip the 64 x 64 blocks that
 *    lie wholly above the diagonal. test_model_layer_gradcheck checks gradients on T <= 16 (one
 *    block); here T = 150 (three blocks, the last one partial) and every output and
 *    gradient is compared with plain loops over the full T x T square, in double
 *    (layers.c compiled a second time with BP_REAL_DOUBLE, as in test_model_layer_gradcheck).
 * 2. Row-chunked products: tall matrix products run as row chunks over the threads;
 *    matmul and linear, forward and backward, against plain loops (N = 1030 rows).
 * 3. The vectorizable exp of the float build: GELU and its derivative, the causal
 *    softmax and the fused cross-entropy (float, the model library) against the same
 *    formulas in double with libm, including inputs far into both tails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define BP_REAL_DOUBLE 1
#include "../model/layers.c"
/* below, these names are the float functions; the double ones are called _f64 */
#undef gelu_forward
#undef gelu_backward
#undef crossentropy_forward
#undef crossentropy_backward
#undef sense_weights_forward

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The float functions of the model library (layers.h without the _f64 mapping). */
void gelu_forward(float *out, const float *inp, size_t n);
void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);
float crossentropy_forward(float *lse, const float *logits, const int *targets, int N, int V);
void crossentropy_backward(float *logits, const float *lse, const int *targets, int N, int V,
                           float dloss);
void sense_weights_forward(float *alpha, const float *qk, int B, int T, int C, int K);

#define T_LONG 150

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static double uniform(double lo, double hi) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return lo + (hi - lo) * (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

static double *vec(size_t n, double lo, double hi) {
    double *x = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) x[i] = uniform(lo, hi);
    return x;
}

static double *zeros(size_t n) { return calloc(n, sizeof(double)); }

static double max_abs_diff(const double *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

/* ------------------------------------------------------------------------------------ */
/* plain references over the full square */

/* P (T,T) = causal softmax(scale X Y^T); X, Y rows of width n with strides. */
static void plain_softmax_scores(double *P, int T, int n, double scale, const double *X,
                                 int ldx, const double *Y, int ldy) {
    for (int i = 0; i < T; i++) {
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j <= i; j++) {
            double s = 0;
            for (int c = 0; c < n; c++) s += X[(size_t)i * ldx + c] * Y[(size_t)j * ldy + c];
            P[(size_t)i * T + j] = s * scale;
            mx = fmax(mx, s * scale);
        }
        for (int j = 0; j <= i; j++) sum += P[(size_t)i * T + j] = exp(P[(size_t)i * T + j] - mx);
        for (int j = 0; j < T; j++) P[(size_t)i * T + j] = j <= i ? P[(size_t)i * T + j] / sum : 0;
    }
}

/* Out (T,n) (+)= P (T,T) Y (T,n), full square. */
static void plain_rows(double *Out, int ldo, int T, int n, const double *P, const double *Y,
                       int ldy, int accumulate) {
    for (int i = 0; i < T; i++)
        for (int c = 0; c < n; c++) {
            double s = accumulate ? Out[(size_t)i * ldo + c] : 0;
            for (int j = 0; j < T; j++) s += P[(size_t)i * T + j] * Y[(size_t)j * ldy + c];
            Out[(size_t)i * ldo + c] = s;
        }
}

/* Out (T,n) = P^T Y, full square. */
static void plain_cols(double *Out, int ldo, int T, int n, const double *P, const double *Y,
                       int ldy) {
    for (int j = 0; j < T; j++)
        for (int c = 0; c < n; c++) {
            double s = 0;
            for (int i = 0; i < T; i++) s += P[(size_t)i * T + j] * Y[(size_t)i * ldy + c];
            Out[(size_t)j * ldo + c] = s;
        }
}

/* dS (T,T) = P (dP - rowsum(P dP)) scale, with dP = D Y^T over the full square. */
static void plain_softmax_backward(double *dS, int T, int n, double scale, const double *P,
                                   const double *D, int ldd, const double *Y, int ldy) {
    for (int i = 0; i < T; i++) {
        double dot = 0;
        for (int j = 0; j < T; j++) {
            double s = 0;
            for (int c = 0; c < n; c++) s += D[(size_t)i * ldd + c] * Y[(size_t)j * ldy + c];
            dS[(size_t)i * T + j] = s;
            dot += P[(size_t)i * T + j] * s;
        }
        for (int j = 0; j < T; j++)
            dS[(size_t)i * T + j] = P[(size_t)i * T + j] * (dS[(size_t)i * T + j] - dot) * scale;
    }
}

/* ------------------------------------------------------------------------------------ */

static void test_attention_blocks(void **state) {
    (void)state;
    int B = 2, T = T_LONG, C = 12, NH = 3, hs = C / NH, C3 = 3 * C;
    double scale = 0.4;
    size_t nqkv = (size_t)B * T * C3, nout = (size_t)B * T * C, natt = (size_t)B * NH * T * T;
    double *qkv = vec(nqkv, -1.5, 1.5), *dout = vec(nout, -1, 1);
    double *out = zeros(nout), *att = zeros(natt), *dqkv = zeros(nqkv);
    double *scratch = zeros((size_t)omp_get_max_threads() * 2 * T * T);
    attention_forward(out, att, qkv, B, T, C, NH, scale, 0, 0, 0, scratch);
    attention_backward(dqkv, dout, qkv, att, B, T, C, NH, scale, 0, 0, 0, scratch);

    double *P = zeros((size_t)T * T), *dS = zeros((size_t)T * T);
    double *want_out = zeros(nout), *want_dqkv = zeros(nqkv);
    double worst_att = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const double *q = qkv + (size_t)b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
            double *dq = want_dqkv + (size_t)b * T * C3 + h * hs, *dk = dq + C, *dv = dq + 2 * C;
            const double *d = dout + (size_t)b * T * C + h * hs;
            plain_softmax_scores(P, T, hs, scale, q, C3, k, C3);
            worst_att = fmax(worst_att, max_abs_diff(P, att + ((size_t)b * NH + h) * T * T,
                                                     (size_t)T * T));
            plain_rows(want_out + (size_t)b * T * C + h * hs, C, T, hs, P, v, C3, 0);
            plain_cols(dv, C3, T, hs, P, d, C);
            plain_softmax_backward(dS, T, hs, scale, P, d, C, v, C3);
            plain_rows(dq, C3, T, hs, dS, k, C3, 0);
            plain_cols(dk, C3, T, hs, dS, q, C3);
        }
    double e_out = max_abs_diff(out, want_out, nout), e_d = max_abs_diff(dqkv, want_dqkv, nqkv);
    printf("  attention T=%d: att %.1e, out %.1e, dqkv %.1e\n", T, worst_att, e_out, e_d);
    assert_true(worst_att < 1e-12 && e_out < 1e-12 && e_d < 1e-12);
    free(qkv), free(dout), free(out), free(att), free(dqkv), free(scratch), free(P), free(dS);
    free(want_out), free(want_dqkv);
}

static void test_sense_weights_and_mix_blocks(void **state) {
    (void)state;
    int B = 2, T = T_LONG, C = 8, K = 4, dk = C / K, C2 = 2 * C;
    size_t nqk = (size_t)B * T * C2, na = (size_t)B * K * T * T, ns = (size_t)B * T * K * C,
           no = (size_t)B * T * C;
    double *qk = vec(nqk, -2, 2), *senses = vec(ns, -1, 1), *dout = vec(no, -1, 1);
    double *alpha = zeros(na), *out = zeros(no), *dalpha = zeros(na), *dsenses = zeros(ns),
           *dqk = zeros(nqk);
    sense_weights_forward_f64(alpha, qk, B, T, C, K);
    mix_forward(out, alpha, senses, B, T, C, K);
    mix_backward(dalpha, dsenses, dout, alpha, senses, B, T, C, K);
    /* above the diagonal, dalpha must not reach the scores' gradient */
    for (size_t i = 0; i < na; i++) {
        size_t r = (i / T) % T, col = i % T;
        if (col > r) dalpha[i] = uniform(-1e3, 1e3);
    }
    sense_weights_backward(dqk, dalpha, qk, alpha, B, T, C, K);

    double *want_alpha = zeros(na), *want_out = zeros(no), *want_dsenses = zeros(ns),
           *want_dqk = zeros(nqk), *dS = zeros((size_t)T * T);
    double scale = 1 / sqrt((double)dk);
    for (int b = 0; b < B; b++)
        for (int l = 0; l < K; l++) {
            const double *q = qk + (size_t)b * T * C2 + l * dk, *k = q + C;
            double *P = want_alpha + ((size_t)b * K + l) * T * T;
            const double *S = senses + (size_t)b * T * K * C + l * C;
            const double *d = dout + (size_t)b * T * C;
            plain_softmax_scores(P, T, dk, scale, q, C2, k, C2);
            plain_rows(want_out + (size_t)b * T * C, C, T, C, P, S, K * C, l > 0);
            plain_cols(want_dsenses + (size_t)b * T * K * C + l * C, K * C, T, C, P, d, C);
            /* the scores' gradient through dalpha = dout S^T */
            plain_softmax_backward(dS, T, C, scale, P, d, C, S, K * C);
            double *dq = want_dqk + (size_t)b * T * C2 + l * dk;
            plain_rows(dq, C2, T, dk, dS, k, C2, 0);
            plain_cols(dq + C, C2, T, dk, dS, q, C2);
        }
    double e_a = max_abs_diff(alpha, want_alpha, na), e_o = max_abs_diff(out, want_out, no),
           e_s = max_abs_diff(dsenses, want_dsenses, ns), e_q = max_abs_diff(dqk, want_dqk, nqk);
    printf("  sense weights + mix T=%d: alpha %.1e, out %.1e, dsenses %.1e, dqk %.1e\n", T, e_a,
           e_o, e_s, e_q);
    assert_true(e_a < 1e-12 && e_o < 1e-12 && e_s < 1e-12 && e_q < 1e-11);
    free(qk), free(senses), free(dout), free(alpha), free(out), free(dalpha), free(dsenses);
    free(dqk), free(want_alpha), free(want_out), free(want_dsenses), free(want_dqk), free(dS);
}

/* ------------------------------------------------------------------------------------ */
/* row-chunked products */

static void test_chunked_products(void **state) {
    (void)state;
    int N = 1030, C = 20, OC = 24;
    double *x = vec((size_t)N * C, -1, 1), *w = vec((size_t)C * OC, -1, 1), *b = vec(OC, -1, 1);
    double *dout = vec((size_t)N * OC, -1, 1), *out = zeros((size_t)N * OC);
    double *want = zeros((size_t)N * OC), *dx = zeros((size_t)N * C), *want_dx = zeros((size_t)N * C);
    double *dw = zeros((size_t)C * OC), *want_dw = zeros((size_t)C * OC), *db = zeros(OC),
           *want_db = zeros(OC);
    for (int linear = 0; linear <= 1; linear++) {
        /* Conv1D: W (C,OC), y = x W + b; nn.Linear: W (OC,C), y = x W^T + b */
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) {
                double s = b[o];
                for (int c = 0; c < C; c++)
                    s += x[(size_t)n * C + c] * (linear ? w[(size_t)o * C + c] : w[(size_t)c * OC + o]);
                want[(size_t)n * OC + o] = s;
            }
        memset(want_dx, 0, (size_t)N * C * sizeof(double));
        memset(want_dw, 0, (size_t)C * OC * sizeof(double));
        memset(want_db, 0, OC * sizeof(double));
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) {
                double g = dout[(size_t)n * OC + o];
                want_db[o] += g;
                for (int c = 0; c < C; c++) {
                    size_t wi = linear ? (size_t)o * C + c : (size_t)c * OC + o;
                    want_dx[(size_t)n * C + c] += g * w[wi];
                    want_dw[wi] += g * x[(size_t)n * C + c];
                }
            }
        memset(dw, 0, (size_t)C * OC * sizeof(double));
        memset(db, 0, OC * sizeof(double));
        if (linear) {
            linear_forward(out, x, w, b, N, C, OC);
            linear_backward(dx, dw, db, dout, x, w, N, C, OC);
        } else {
            matmul_forward(out, x, w, b, N, C, OC);
            matmul_backward(dx, dw, db, dout, x, w, N, C, OC);
        }
        double e = fmax(fmax(max_abs_diff(out, want, (size_t)N * OC),
                             max_abs_diff(dx, want_dx, (size_t)N * C)),
                        fmax(max_abs_diff(dw, want_dw, (size_t)C * OC), max_abs_diff(db, want_db, OC)));
        printf("  %s N=%d (%d threads): max |diff| %.1e\n", linear ? "linear" : "matmul", N,
               omp_get_max_threads(), e);
        assert_true(e < 1e-11);
    }
    free(x), free(w), free(b), free(dout), free(out), free(want), free(dx), free(want_dx);
    free(dw), free(want_dw), free(db), free(want_db);
}

/* ------------------------------------------------------------------------------------ */
/* float exp */

static double gelu_ref(double x) {
    return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

static double gelu_grad_ref(double x) {
    double t = tanh(0.7978845608028654 * (x + 0.044715 * x * x * x));
    return 0.5 * (1 + t) +
           0.5 * x * (1 - t * t) * 0.7978845608028654 * (1 + 3 * 0.044715 * x * x);
}

static void test_gelu_float(void **state) {
    (void)state;
    int n = 20001;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float)),
          *ones = malloc(n * sizeof(float)), *dy = malloc(n * sizeof(float));
    for (int i = 0; i < n; i++) {
        x[i] = -60.0f + 120.0f * i / (n - 1);
        ones[i] = 1;
    }
    gelu_forward(y, x, n);
    gelu_backward(dy, x, ones, n);
    double worst = 0, worst_d = 0;
    for (int i = 0; i < n; i++) {
        /* relative to max(|gelu|, 1e-3): absolute error where gelu is tiny */
        worst = fmax(worst, fabs(y[i] - gelu_ref(x[i])) / fmax(fabs(gelu_ref(x[i])), 1e-3));
        worst_d = fmax(worst_d, fabs(dy[i] - gelu_grad_ref(x[i])));
        assert_true(isfinite(y[i]) && isfinite(dy[i]));
    }
    printf("  float gelu: rel %.1e, derivative abs %.1e\n", worst, worst_d);
    assert_true(worst < 5e-6 && worst_d < 5e-6); /* float rounding, not exp: ~1e-6 */
    float nan_in = NAN, nan_out;
    gelu_forward(&nan_out, &nan_in, 1);
    assert_true(isnan(nan_out));
    free(x), free(y), free(ones), free(dy);
}

static void test_crossentropy_float(void **state) {
    (void)state;
    int N = 3, V = 1000;
    float *logits = malloc((size_t)N * V * sizeof(float)), lse[3];
    int targets[3] = {5, 999, 0};
    for (int n = 0; n < N; n++)
        for (int v = 0; v < V; v++)
            /* row 0 moderate, row 1 large and spread (tails reach e^-150), row 2 one spike */
            logits[n * V + v] = n == 0   ? (float)uniform(-3, 3)
                                : n == 1 ? (float)uniform(-80, 70)
                                         : (v == 0 ? 30.0f : (float)uniform(-1, 1));
    double want_loss = 0, want_lse[3];
    for (int n = 0; n < N; n++) {
        double mx = -INFINITY, s = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, logits[n * V + v]);
        for (int v = 0; v < V; v++) s += exp((double)logits[n * V + v] - mx);
        want_lse[n] = mx + log(s);
        want_loss += (want_lse[n] - logits[n * V + targets[n]]) / N;
    }
    float *probs = malloc((size_t)N * V * sizeof(float));
    memcpy(probs, logits, (size_t)N * V * sizeof(float));
    float loss = crossentropy_forward(lse, logits, targets, N, V);
    crossentropy_backward(probs, lse, targets, N, V, 1.0f);
    double worst_p = 0;
    for (int n = 0; n < N; n++) {
        assert_true(fabs(lse[n] - want_lse[n]) < 1e-5 * fmax(1, fabs(want_lse[n])));
        for (int v = 0; v < V; v++) {
            double p = exp((double)logits[n * V + v] - want_lse[n]) / N - (v == targets[n]) / (double)N;
            worst_p = fmax(worst_p, fabs(probs[n * V + v] - p));
        }
    }
    printf("  float cross-entropy: loss %.7f vs %.7f, gradient abs %.1e\n", loss, want_loss, worst_p);
    assert_true(fabs(loss - want_loss) < 1e-5 * fmax(1, fabs(want_loss)));
    assert_true(worst_p < 5e-7);
    free(logits), free(probs);
}

static void test_softmax_float(void **state) {
    (void)state;
    /* float sense weights: rows sum to 1, zeros above the diagonal, values as in double */
    int B = 1, T = 70, C = 4, K = 2;
    float *qk = malloc((size_t)T * 2 * C * sizeof(float)), *alpha = malloc((size_t)K * T * T * sizeof(float));
    double *qkd = malloc((size_t)T * 2 * C * sizeof(double)), *P = malloc((size_t)T * T * sizeof(double));
    for (int i = 0; i < T * 2 * C; i++) qkd[i] = qk[i] = (float)uniform(-6, 6);
    sense_weights_forward(alpha, qk, B, T, C, K);
    double worst = 0;
    for (int l = 0; l < K; l++) {
        plain_softmax_scores(P, T, C / K, 1 / sqrt(C / (double)K), qkd + l * (C / K), 2 * C,
                             qkd + C + l * (C / K), 2 * C);
        for (int i = 0; i < T * T; i++) worst = fmax(worst, fabs(alpha[(size_t)l * T * T + i] - P[i]));
    }
    printf("  float causal softmax: abs %.1e\n", worst);
    assert_true(worst < 1e-5);
    free(qk), free(alpha), free(qkd), free(P);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention_blocks),
        cmocka_unit_test(test_sense_weights_and_mix_blocks),
        cmocka_unit_test(test_chunked_products),
        cmocka_unit_test(test_gelu_float),
        cmocka_unit_test(test_crossentropy_float),
        cmocka_unit_test(test_softmax_float),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
