/* layers.c - forward/backward pairs of the model's layers (see layers.h). Written
 * over `real` so that the gradient check compiles this same file in double. */
#include "layers.h"

#include <omp.h>
#include <string.h>

/* ------------------------------------------------------------------------------------ */
/* exp without libm calls, so that loops over it vectorize (#pragma omp simd): the
 * softmaxes, the cross-entropy over V and GELU spend most of their time in exp. In
 * float: Cephes' expf (relative error < 1e-7 on [-87.3, 88.3], 0 below, NaN stays
 * NaN); in double (the gradient check) libm's exp. */

#ifdef BP_REAL_DOUBLE
static inline real exp_fast(real x) { return exp(x); }
#else
static inline float exp_fast(float x) {
    /* Written so that NaN clamps into range here (no undefined conversion below) and is
     * passed through at the end: a NaN loss must stay visible to the trainer. */
    float xc = x < 88.37f ? x : 88.37f;                 /* e^88.37 < FLT_MAX */
    xc = xc > -87.33f ? xc : -87.33f;
    /* n = round(x / ln2) (adding 1.5 * 2^23 rounds to an integer; floorf would not
     * vectorize without -fno-trapping-math); x = n ln2 + r, |r| <= ln2 / 2 */
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
    float r2 = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r2 + r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23; /* 2^n, n in [-126, 128) */
    float two_n;
    memcpy(&two_n, &bits, sizeof two_n);
    return x != x ? x : x < -87.33f ? 0.0f : p * two_n;
}
#endif

/* ------------------------------------------------------------------------------------ */
/* embeddings */

void encoder_forward(real *out, const int *inp, const real *wte, const real *wpe, int B,
                     int T, int C) {
#pragma omp parallel for collapse(2) if ((size_t)B * T * C >= BP_PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            real *o = out + ((size_t)b * T + t) * C;         // (C)
            const real *e = wte + (size_t)inp[b * T + t] * C; // (C)
            const real *p = wpe + (size_t)t * C;              // (C)
            for (int c = 0; c < C; c++) o[c] = e[c] + p[c];
        }
}

void encoder_backward(real *dwte, real *dwpe, const real *dout, const WordGroups *g, int B,
                      int T, int C) {
#pragma omp parallel for schedule(dynamic, 16) if ((size_t)B * T * C >= BP_PAR_MIN)
    for (int u = 0; u < g->count; u++) {
        real *dw = dwte + (size_t)g->words[u] * C;
        for (int q = g->off[u]; q < g->off[u + 1]; q++) {
            const real *d = dout + (size_t)g->pos[q] * C;
            for (int c = 0; c < C; c++) dw[c] += d[c];
        }
    }
#pragma omp parallel for if ((size_t)B * T * C >= BP_PAR_MIN)
    for (int t = 0; t < T; t++) {
        real *dp = dwpe + (size_t)t * C;
        for (int b = 0; b < B; b++) {
            const real *d = dout + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++) dp[c] += d[c];
        }
    }
}

/* ------------------------------------------------------------------------------------ */
/* dropout */

/* 1 when element `index` of dropout site `site` is kept (probability 1 - p, with
 * threshold = p * 2^24). */
static inline int dropout_keep(uint64_t seed, uint64_t site, uint64_t index, uint32_t threshold) {
    uint64_t z = seed + site * 0x9E3779B97F4A7C15ULL + index * DROPOUT_INDEX_STRIDE;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (uint32_t)(z >> 40) >= threshold;
}

static inline uint32_t dropout_threshold(real p) { return (uint32_t)(p * R(16777216.0)); }

void dropout_apply(real *x, int rows, int width, const int *row_ids, real p, uint64_t seed,
                   uint64_t site) {
    if (p == 0) return;
    uint32_t threshold = dropout_threshold(p);
    real scale = R(1) / (R(1) - p);
#pragma omp parallel for if ((size_t)rows * width >= BP_PAR_MIN)
    for (int r = 0; r < rows; r++) {
        uint64_t base = (uint64_t)(row_ids ? row_ids[r] : r) * (uint64_t)width;
        real *xr = x + (size_t)r * width;
        for (int c = 0; c < width; c++)
            xr[c] = dropout_keep(seed, site, base + c, threshold) ? xr[c] * scale : R(0);
    }
}

/* ------------------------------------------------------------------------------------ */
/* layernorm */

void layernorm_forward(real *out, real *mean, real *rstd, const real *inp, const real *weight,
                       const real *bias, int N, int C) {
    const real eps = R(1e-5);
#pragma omp parallel for if ((size_t)N * C >= BP_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C;
        real m = 0;
#pragma omp simd reduction(+ : m)
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        real v = 0;
#pragma omp simd reduction(+ : v)
        for (int c = 0; c < C; c++) {
            real dx = x[c] - m;
            v += dx * dx;
        }
        v /= C;
        real s = R(1) / sqrt(v + eps);
        real *o = out + (size_t)n * C;
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = (x[c] - m) * s * weight[c] + bias[c];
        mean[n] = m;
        rstd[n] = s;
    }
}

void layernorm_backward(real *dinp, real *dweight, real *dbias, const real *dout,
                        const real *inp, const real *weight, const real *mean,
                        const real *rstd, int N, int C) {
#pragma omp parallel for if ((size_t)N * C >= BP_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        real m = mean[n], s = rstd[n];
        real dnorm_mean = 0, dnorm_norm_mean = 0;
#pragma omp simd reduction(+ : dnorm_mean, dnorm_norm_mean)
        for (int c = 0; c < C; c++) {
            real norm = (x[c] - m) * s, dnorm = weight[c] * d[c];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * norm;
        }
        dnorm_mean /= C;
        dnorm_norm_mean /= C;
        real *di = dinp + (size_t)n * C;
#pragma omp simd
        for (int c = 0; c < C; c++) {
            real norm = (x[c] - m) * s, dnorm = weight[c] * d[c];
            di[c] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
        }
    }
    /* parameter gradients: column blocks, so threads never share an output */
    enum { CB = 32 };
#pragma omp parallel for if ((size_t)N * C >= BP_PAR_MIN)
    for (int c0 = 0; c0 < C; c0 += CB) {
        int w = C - c0 < CB ? C - c0 : CB;
        real dw[CB] = {0}, db[CB] = {0};
        for (int n = 0; n < N; n++) {
            const real *x = inp + (size_t)n * C + c0, *d = dout + (size_t)n * C + c0;
            real m = mean[n], s = rstd[n];
#pragma omp simd
            for (int c = 0; c < w; c++) {
                dw[c] += (x[c] - m) * s * d[c];
                db[c] += d[c];
            }
        }
        for (int c = 0; c < w; c++) {
            dweight[c0 + c] += dw[c];
            dbias[c0 + c] += db[c];
        }
    }
}

/* ------------------------------------------------------------------------------------ */
/* matrix products */

static void bias_rows(real *out, const real *bias, int N, int OC) {
#pragma omp parallel for if ((size_t)N * OC >= BP_PAR_MIN)
    for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, (size_t)OC * sizeof(real));
}

static void bias_backward(real *dbias, const real *dout, int N, int OC) {
    enum { CB = 64 };
#pragma omp parallel for if ((size_t)N * OC >= BP_PAR_MIN)
    for (int c0 = 0; c0 < OC; c0 += CB) {
        int w = OC - c0 < CB ? OC - c0 : CB;
        real acc[CB] = {0};
        for (int n = 0; n < N; n++) {
            const real *d = dout + (size_t)n * OC + c0;
#pragma omp simd
            for (int c = 0; c < w; c++) acc[c] += d[c];
        }
        for (int c = 0; c < w; c++) dbias[c0 + c] += acc[c];
    }
}

/* C (M,N) = alpha op(A) op(B) + beta C, row-major. Tall products with a short inner
 * dimension are cut into row chunks that the OpenMP threads take dynamically, each a
 * single-threaded BLAS call (OpenBLAS runs single-threaded inside a parallel region):
 * no synchronization inside BLAS, and a thread that loses its core on a shared machine
 * hands its chunks to the other. Each chunk packs op(B) again, which costs ~1/(2 rows)
 * of the work per chunk, so only chunks of >= 256 rows and K <= 4096 are cut; other
 * products use BLAS's own threads. */
static void gemm_rows(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, real alpha,
                      const real *A, int lda, const real *B, int ldb, real beta, real *C,
                      int ldc) {
    int threads = omp_get_max_threads();
    int chunks = 2 * threads, rows = (M + chunks - 1) / chunks;
    rows = (rows + 15) / 16 * 16;
    if (threads < 2 || rows < 256 || K > 4096 || omp_in_parallel()) {
        BP_GEMM(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int i0 = 0; i0 < M; i0 += rows) {
        int m = M - i0 < rows ? M - i0 : rows;
        const real *Ai = ta == CblasNoTrans ? A + (size_t)i0 * lda : A + i0;
        BP_GEMM(CblasRowMajor, ta, tb, m, N, K, alpha, Ai, lda, B, ldb, beta,
                C + (size_t)i0 * ldc, ldc);
    }
}

void matmul_forward(real *out, const real *inp, const real *weight, const real *bias, int N,
                    int C, int OC) {
    if (bias) bias_rows(out, bias, N, OC);
    gemm_rows(CblasNoTrans, CblasNoTrans, N, OC, C, R(1), inp, C, weight, OC,
              bias ? R(1) : R(0), out, OC);
}

void matmul_backward(real *dinp, real *dweight, real *dbias, const real *dout,
                     const real *inp, const real *weight, int N, int C, int OC) {
    if (dinp)  // (N,C) = (N,OC) (OC,C)
        gemm_rows(CblasNoTrans, CblasTrans, N, C, OC, R(1), dout, OC, weight, OC, R(0), dinp, C);
    // (C,OC) += (C,N) (N,OC)
    BP_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, C, OC, N, R(1), inp, C, dout, OC, R(1),
            dweight, OC);
    if (dbias) bias_backward(dbias, dout, N, OC);
}

void linear_forward(real *out, const real *inp, const real *weight, const real *bias, int N,
                    int C, int OC) {
    if (bias) bias_rows(out, bias, N, OC);
    gemm_rows(CblasNoTrans, CblasTrans, N, OC, C, R(1), inp, C, weight, C, bias ? R(1) : R(0),
              out, OC);
}

void linear_backward(real *dinp, real *dweight, real *dbias, const real *dout,
                     const real *inp, const real *weight, int N, int C, int OC) {
    if (dinp)  // (N,C) = (N,OC) (OC,C)
        gemm_rows(CblasNoTrans, CblasNoTrans, N, C, OC, R(1), dout, OC, weight, C, R(0), dinp,
                  C);
    // (OC,C) += (OC,N) (N,C)
    BP_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, R(1), dout, OC, inp, C, R(1),
            dweight, C);
    if (dbias) bias_backward(dbias, dout, N, OC);
}

/* ------------------------------------------------------------------------------------ */
/* gelu (tanh form) and residual */

#define GELU_SCALE R(0.7978845608028654) /* sqrt(2 / pi) */

/* gelu(x) = 0.5 x (1 + tanh(z)) = x sigmoid(2z), z = sqrt(2/pi) (x + 0.044715 x^3):
 * the same function, written with one exp so that it vectorizes. */
void gelu_forward(real *out, const real *inp, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= BP_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        real x = inp[i];
        real z = GELU_SCALE * (x + R(0.044715) * x * x * x);
        out[i] = x / (R(1) + exp_fast(R(-2) * z));
    }
}

/* d gelu / dx = s + 2 x s (1 - s) dz/dx with s = sigmoid(2z) (= (1 + tanh z) / 2). */
void gelu_backward(real *dinp, const real *inp, const real *dout, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= BP_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        real x = inp[i];
        real z = GELU_SCALE * (x + R(0.044715) * x * x * x);
        real s = R(1) / (R(1) + exp_fast(R(-2) * z));
        real dz = GELU_SCALE * (R(1) + R(3 * 0.044715) * x * x);
        dinp[i] = (s + R(2) * x * s * (R(1) - s) * dz) * dout[i];
    }
}

void residual_forward(real *out, const real *a, const real *b, size_t n) {
#pragma omp parallel for if (n >= BP_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* ------------------------------------------------------------------------------------ */
/* causal softmax over rows of (T,T) score matrices */

/* row (T): softmax over [0, i], zeros after. */
static void causal_softmax_row(real *row, int i, int T) {
    real mx = row[0];
#pragma omp simd reduction(max : mx)
    for (int j = 1; j <= i; j++) mx = row[j] > mx ? row[j] : mx;
    real sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j <= i; j++) {
        real e = exp_fast(row[j] - mx);
        row[j] = e;
        sum += e;
    }
    real inv = R(1) / sum;
#pragma omp simd
    for (int j = 0; j <= i; j++) row[j] *= inv;
    for (int j = i + 1; j < T; j++) row[j] = 0;
}

void softmax_forward(real *x, int n) { causal_softmax_row(x, n - 1, n); }

/* dscore (T,T) from dprob (T,T) in place: p (dp - sum_j p dp) * scale, zero above. */
static void causal_softmax_backward(real *dp, const real *p, int T, real scale) {
    for (int i = 0; i < T; i++) {
        real *d = dp + (size_t)i * T;
        const real *pr = p + (size_t)i * T;
        real dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j <= i; j++) dot += pr[j] * d[j];
#pragma omp simd
        for (int j = 0; j <= i; j++) d[j] = pr[j] * (d[j] - dot) * scale;
        for (int j = i + 1; j < T; j++) d[j] = 0;
    }
}

/* ------------------------------------------------------------------------------------ */
/* causal products: the (T,T) matrices of attention and sense weights are zero above the
 * diagonal, so products with them run over row blocks of CAUSAL_BLOCK and skip the
 * blocks that lie wholly above the diagonal (about 40% of the work at T = 256). */

#define CAUSAL_BLOCK 64

/* S (T,T) = scale X Y^T on the blocks on or below the diagonal: row block [i0, i1)
 * gets columns [0, i1). X, Y (T,n) with strides ldx, ldy. Entries right of a row
 * block's last column are not written. */
static void causal_scores(real *S, int T, int n, real scale, const real *X, int ldx,
                          const real *Y, int ldy) {
    for (int i0 = 0; i0 < T; i0 += CAUSAL_BLOCK) {
        int i1 = i0 + CAUSAL_BLOCK < T ? i0 + CAUSAL_BLOCK : T;
        BP_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, i1 - i0, i1, n, scale,
                X + (size_t)i0 * ldx, ldx, Y, ldy, R(0), S + (size_t)i0 * T, T);
    }
}

/* Out (T,n) = P Y (+ beta Out) for P (T,T) zero above the diagonal: row block [i0, i1)
 * reads columns [0, i1) of P. */
static void causal_rows(real *Out, int ldo, int T, int n, const real *P, const real *Y,
                        int ldy, real beta) {
    for (int i0 = 0; i0 < T; i0 += CAUSAL_BLOCK) {
        int i1 = i0 + CAUSAL_BLOCK < T ? i0 + CAUSAL_BLOCK : T;
        BP_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, i1 - i0, n, i1, R(1),
                P + (size_t)i0 * T, T, Y, ldy, beta, Out + (size_t)i0 * ldo, ldo);
    }
}

/* Out (T,n) = P^T Y for P (T,T) zero above the diagonal: output row block [j0, j1)
 * reads rows [j0, T) of P. */
static void causal_cols(real *Out, int ldo, int T, int n, const real *P, const real *Y,
                        int ldy) {
    for (int j0 = 0; j0 < T; j0 += CAUSAL_BLOCK) {
        int j1 = j0 + CAUSAL_BLOCK < T ? j0 + CAUSAL_BLOCK : T;
        BP_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, j1 - j0, n, T - j0, R(1),
                P + (size_t)j0 * T + j0, T, Y + (size_t)j0 * ldy, ldy, R(0),
                Out + (size_t)j0 * ldo, ldo);
    }
}

/* ------------------------------------------------------------------------------------ */
/* attention */

/* dst (T,T) = src with the dropout of block (b,h) applied. */
static void dropout_block(real *dst, const real *src, int T, size_t block, real p,
                          uint64_t seed, uint64_t site) {
    uint32_t threshold = dropout_threshold(p);
    real scale = R(1) / (R(1) - p);
    uint64_t base = (uint64_t)block * T * T;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            size_t q = (size_t)i * T + j;
            dst[q] = j <= i && dropout_keep(seed, site, base + q, threshold) ? src[q] * scale
                                                                              : R(0);
        }
}

void attention_forward(real *out, real *att, const real *qkv, int B, int T, int C, int NH,
                       real scale, real p, uint64_t seed, uint64_t site, real *scratch) {
    int hs = C / NH, C3 = 3 * C;
#pragma omp parallel for collapse(2) if ((size_t)B * NH * T * T * (C / NH) >= BP_PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const real *q = qkv + (size_t)b * T * C3 + h * hs;  // (T,hs) stride 3C
            const real *k = q + C, *v = q + 2 * C;
            real *a = att + ((size_t)b * NH + h) * T * T;      // (T,T)
            causal_scores(a, T, hs, scale, q, C3, k, C3);
            for (int i = 0; i < T; i++) causal_softmax_row(a + (size_t)i * T, i, T);
            const real *pa = a;
            if (p > 0) {
                real *s = scratch + (size_t)omp_get_thread_num() * 2 * T * T;
                dropout_block(s, a, T, (size_t)b * NH + h, p, seed, site);
                pa = s;
            }
            // out_h (T,hs) = P (T,T) V_h (T,hs)
            causal_rows(out + (size_t)b * T * C + h * hs, C, T, hs, pa, v, C3, R(0));
        }
}

/* One (b,h) block of attention's backward: dv (T,hs) = P^T dout_h and dp (T,T) = the
 * gradient of the scores (times scale), through the dropout and the softmax. s: the
 * thread's scratch (T T) for the dropped-out P. */
static void attention_block_backward(real *dp, real *dv, int ldv, const real *d, int ldd,
                                     const real *v, const real *a, int T, int hs,
                                     size_t block, real scale, real p, uint64_t seed,
                                     uint64_t site, real *s) {
    const real *pa = a;
    if (p > 0) {
        dropout_block(s, a, T, block, p, seed, site);
        pa = s;
    }
    // dP (T,T) = dout_h V_h^T (on and below the diagonal blocks)
    causal_scores(dp, T, hs, R(1), d, ldd, v, ldv);
    // dV_h (T,hs) = P^T dout_h
    causal_cols(dv, ldv, T, hs, pa, d, ldd);
    if (p > 0) dropout_block(dp, dp, T, block, p, seed, site);
    causal_softmax_backward(dp, a, T, scale);
}

void attention_backward(real *dqkv, const real *dout, const real *qkv, const real *att,
                        int B, int T, int C, int NH, real scale, real p, uint64_t seed,
                        uint64_t site, real *scratch) {
    int hs = C / NH, C3 = 3 * C;
#pragma omp parallel for collapse(2) if ((size_t)B * NH * T * T * (C / NH) >= BP_PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const real *q = qkv + (size_t)b * T * C3 + h * hs;
            const real *k = q + C, *v = q + 2 * C;
            real *dq = dqkv + (size_t)b * T * C3 + h * hs, *dk = dq + C, *dv = dq + 2 * C;
            const real *a = att + ((size_t)b * NH + h) * T * T;
            const real *d = dout + (size_t)b * T * C + h * hs;  // (T,hs) stride C
            real *s = scratch + (size_t)omp_get_thread_num() * 2 * T * T;
            real *dp = s + (size_t)T * T;                        // (T,T)
            attention_block_backward(dp, dv, C3, d, C, v, a, T, hs, (size_t)b * NH + h, scale,
                                     p, seed, site, s);
            // dQ = dS K, dK = dS^T Q
            causal_rows(dq, C3, T, hs, dp, k, C3, R(0));
            causal_cols(dk, C3, T, hs, dp, q, C3);
        }
}

/* ------------------------------------------------------------------------------------ */
/* the Backpack's sense weights and mixing */

/* The spec masks j > i with -10000 rather than -inf; exp(-10000 + score) is exactly 0
 * in float32 and float64 for any sane score, so both are this causal softmax. */
void sense_weights_forward(real *alpha, const real *qk, int B, int T, int C, int K) {
    int dk = C / K, C2 = 2 * C;
    real scale = R(1) / sqrt(R(dk));
#pragma omp parallel for collapse(2) if ((size_t)B * T * T * C >= BP_PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int l = 0; l < K; l++) {
            const real *q = qk + (size_t)b * T * C2 + l * dk, *k = q + C;
            real *a = alpha + ((size_t)b * K + l) * T * T;
            causal_scores(a, T, dk, scale, q, C2, k, C2);
            for (int i = 0; i < T; i++) causal_softmax_row(a + (size_t)i * T, i, T);
        }
}

void sense_weights_backward(real *dqk, real *dalpha, const real *qk, const real *alpha, int B,
                            int T, int C, int K) {
    int dk = C / K, C2 = 2 * C;
    real scale = R(1) / sqrt(R(dk));
#pragma omp parallel for collapse(2) if ((size_t)B * T * T * C >= BP_PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int l = 0; l < K; l++) {
            const real *q = qk + (size_t)b * T * C2 + l * dk, *k = q + C;
            real *dq = dqk + (size_t)b * T * C2 + l * dk, *dkk = dq + C;
            size_t blk = ((size_t)b * K + l) * T * T;
            real *ds = dalpha + blk;
            causal_softmax_backward(ds, alpha + blk, T, scale);
            causal_rows(dq, C2, T, dk, ds, k, C2, R(0));
            causal_cols(dkk, C2, T, dk, ds, q, C2);
        }
}

void mix_forward(real *out, const real *alpha, const real *senses, int B, int T, int C, int K) {
    size_t KC = (size_t)K * C;
#pragma omp parallel for if ((size_t)B * T * T * C >= BP_PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int l = 0; l < K; l++)
            // out_b (T,C) += alpha_bl (T,T) senses_bl (T,C) stride KC
            causal_rows(out + (size_t)b * T * C, C, T, C, alpha + ((size_t)b * K + l) * T * T,
                        senses + (size_t)b * T * KC + l * C, (int)KC, l ? R(1) : R(0));
}

void mix_backward(real *dalpha, real *dsenses, const real *dout, const real *alpha,
                  const real *senses, int B, int T, int C, int K) {
    size_t KC = (size_t)K * C;
#pragma omp parallel for collapse(2) if ((size_t)B * T * T * C >= BP_PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int l = 0; l < K; l++) {
            const real *d = dout + (size_t)b * T * C;
            size_t blk = ((size_t)b * K + l) * T * T;
            // dalpha_bl (T,T) = dout_b (T,C) senses_bl^T, zero right of the blocks
            causal_scores(dalpha + blk, T, C, R(1), d, C, senses + (size_t)b * T * KC + l * C,
                          (int)KC);
            for (int i0 = 0; i0 + CAUSAL_BLOCK < T; i0 += CAUSAL_BLOCK)
                for (int i = i0; i < i0 + CAUSAL_BLOCK; i++)
                    memset(dalpha + blk + (size_t)i * T + i0 + CAUSAL_BLOCK, 0,
                           (size_t)(T - i0 - CAUSAL_BLOCK) * sizeof(real));
            // dsenses_bl (T,C) = alpha_bl^T dout_b
            causal_cols(dsenses + (size_t)b * T * KC + l * C, (int)KC, T, C, alpha + blk, d, C);
        }
}

/* ------------------------------------------------------------------------------------ */
/* Synthesizer attention */

void synth_mixture_weights(real *w, const real *v, int NH, int count) {
    for (int h = 0; h < NH; h++) {
        memcpy(w + (size_t)h * count, v + (size_t)h * count, (size_t)count * sizeof(real));
        softmax_forward(w + (size_t)h * count, count);
    }
}

void synth_scores(real *S, const SynthScores *s, unsigned kind, int b, int h, int T, int C,
                  int NH) {
    const int hs = C / NH, n = s->n;
    switch (kind) {
    case ATTN_DOT: {
        const real *q = s->qkv + (size_t)b * T * s->qkv_width + h * hs;
        causal_scores(S, T, hs, s->dot_scale, q, s->qkv_width, q + C, s->qkv_width);
        break;
    }
    case ATTN_DENSE: {
        // S (T,T) = act_h (T,hs) W_2[h rows, :T] (hs,T) + b_2[h, :T]
        const real *b2 = s->dense_b2 + (size_t)h * n;
        for (int i = 0; i < T; i++) memcpy(S + (size_t)i * T, b2, (size_t)T * sizeof(real));
        BP_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, T, hs, R(1),
                s->dense_act + (size_t)b * T * C + h * hs, C, s->dense_w2 + (size_t)h * hs * n,
                n, R(1), S, T);
        break;
    }
    case ATTN_RANDOM:
    case ATTN_FIXED_RANDOM: {
        const real *R = (kind == ATTN_RANDOM ? s->random : s->fixed_random) + (size_t)h * n * n;
        for (int i = 0; i < T; i++)
            memcpy(S + (size_t)i * T, R + (size_t)i * n, (size_t)T * sizeof(real));
        break;
    }
    case ATTN_FACTORIZED_RANDOM: {
        // S (T,T) = R_1[h, :T] (T,r) R_2[h, :T]^T
        const real *r1 = s->fr1 + (size_t)h * n * s->rank, *r2 = s->fr2 + (size_t)h * n * s->rank;
        BP_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, s->rank, R(1), r1, s->rank, r2,
                s->rank, R(0), S, T);
        break;
    }
    case ATTN_FACTORIZED_DENSE: {
        // S[i, j] = B_1[i, j / b] B_2[i, j % b]: every (p, q) pair once per row
        const int fa = s->fa, fb = s->fb;
        for (int i = 0; i < T; i++) {
            const real *x = s->fd_a + ((size_t)b * T + i) * NH * fa + (size_t)h * fa;
            const real *y = s->fd_b + ((size_t)b * T + i) * NH * fb + (size_t)h * fb;
            for (int j = 0; j < T; j++) S[(size_t)i * T + j] = x[j / fb] * y[j % fb];
        }
        break;
    }
    }
}

/* a (T,T) = the scores of block (b,h): one kind, or the mixture sum_c w_c B_c (tmp:
 * (T,T) scratch). */
static void synth_block_scores(real *a, real *tmp, const SynthScores *s, int b, int h, int T,
                               int C, int NH) {
    if (!s->mix) {
        synth_scores(a, s, s->kinds, b, h, T, C, NH);
        return;
    }
    const int count = __builtin_popcount(s->kinds);
    const real *w = s->mix + (size_t)h * count;
    int c = 0;
    for (unsigned kind = 1; kind <= s->kinds; kind <<= 1) {
        if (!(s->kinds & kind)) continue;
        synth_scores(tmp, s, kind, b, h, T, C, NH);
        for (int i = 0; i < T; i++)
            for (int j = 0; j <= i; j++) {
                size_t q = (size_t)i * T + j;
                a[q] = c ? a[q] + w[c] * tmp[q] : w[c] * tmp[q];
            }
        c++;
    }
}

void synth_attention_forward(real *out, real *att, const SynthScores *s, int B, int T, int C,
                             int NH, real p, uint64_t seed, uint64_t site, real *scratch) {
    const int hs = C / NH, lv = s->qkv_width, voff = s->kinds & ATTN_DOT ? 2 * C : 0;
#pragma omp parallel for collapse(2) if ((size_t)B * NH * T * T * hs >= BP_PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            real *a = att + ((size_t)b * NH + h) * T * T;
            real *sc = scratch + (size_t)omp_get_thread_num() * 2 * T * T;
            synth_block_scores(a, sc, s, b, h, T, C, NH);
            for (int i = 0; i < T; i++) causal_softmax_row(a + (size_t)i * T, i, T);
            const real *pa = a;
            if (p > 0) {
                dropout_block(sc, a, T, (size_t)b * NH + h, p, seed, site);
                pa = sc;
            }
            causal_rows(out + (size_t)b * T * C + h * hs, C, T, hs, pa,
                        s->qkv + (size_t)b * T * lv + voff + h * hs, lv, R(0));
        }
}

void synth_attention_backward(real *dscores, real *dqkv, const real *dout, const SynthScores *s,
                              const real *att, int B, int T, int C, int NH, real p,
                              uint64_t seed, uint64_t site, real *scratch) {
    const int hs = C / NH, lv = s->qkv_width, voff = s->kinds & ATTN_DOT ? 2 * C : 0;
#pragma omp parallel for collapse(2) if ((size_t)B * NH * T * T * hs >= BP_PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            size_t block = (size_t)b * NH + h, at = (size_t)b * T * lv + voff + h * hs;
            attention_block_backward(dscores + block * T * T, dqkv + at, lv,
                                     dout + (size_t)b * T * C + h * hs, C, s->qkv + at,
                                     att + block * T * T, T, hs, block, R(1), p, seed, site,
                                     scratch + (size_t)omp_get_thread_num() * 2 * T * T);
        }
}

/* G (T,T) = w times the sum over the batch of head h's dscores. */
static void batch_sum(real *G, const real *dscores, real w, int h, int B, int T, int NH) {
    size_t TT = (size_t)T * T;
    for (size_t q = 0; q < TT; q++) G[q] = 0;
    for (int b = 0; b < B; b++) {
        const real *d = dscores + ((size_t)b * NH + h) * TT;
        for (size_t q = 0; q < TT; q++) G[q] += d[q];
    }
    for (size_t q = 0; q < TT; q++) G[q] *= w;
}

void synth_scores_backward(const SynthGrads *g, const real *dscores, const SynthScores *s,
                           int B, int T, int C, int NH, real *scratch) {
    const int hs = C / NH, n = s->n, count = __builtin_popcount(s->kinds);
    const size_t TT = (size_t)T * T;
    const int big = (size_t)B * NH * TT * hs >= BP_PAR_MIN;
    int c = 0;
    for (unsigned kind = 1; kind <= s->kinds; kind <<= 1) {
        if (!(s->kinds & kind)) continue;
        const int ci = c++;
#define WEIGHT(h) (s->mix ? s->mix[(size_t)(h) * count + ci] : R(1))
        if (kind == ATTN_DOT) {
            const int lq = s->qkv_width;
#pragma omp parallel for collapse(2) if (big)
            for (int b = 0; b < B; b++)
                for (int h = 0; h < NH; h++) {
                    real *G = scratch + (size_t)omp_get_thread_num() * 2 * TT;
                    const real *d = dscores + ((size_t)b * NH + h) * TT;
                    real w = WEIGHT(h) * s->dot_scale;
                    for (size_t q = 0; q < TT; q++) G[q] = w * d[q];
                    const real *q = s->qkv + (size_t)b * T * lq + h * hs, *k = q + C;
                    real *dq = g->dqkv + (size_t)b * T * lq + h * hs, *dk = dq + C;
                    causal_rows(dq, lq, T, hs, G, k, lq, R(0));  // dQ = G K
                    causal_cols(dk, lq, T, hs, G, q, lq);        // dK = G^T Q
                }
        } else if (kind == ATTN_DENSE) {
#pragma omp parallel for if (big)
            for (int h = 0; h < NH; h++) {
                real w = WEIGHT(h);
                real *dw2 = g->ddense_w2 + (size_t)h * hs * n, *db2 = g->ddense_b2 + (size_t)h * n;
                const real *w2 = s->dense_w2 + (size_t)h * hs * n;
                for (int b = 0; b < B; b++) {
                    const real *d = dscores + ((size_t)b * NH + h) * TT;
                    const real *act = s->dense_act + (size_t)b * T * C + h * hs;
                    // dW_2[h rows, :T] += w act_h^T dS; dact_h = w dS W_2[h rows, :T]^T
                    BP_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, hs, T, T, w, act, C, d, T,
                            R(1), dw2, n);
                    BP_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, T, hs, T, w, d, T, w2, n,
                            R(0), g->ddense_act + (size_t)b * T * C + h * hs, C);
                    for (int i = 0; i < T; i++)
                        for (int j = 0; j <= i; j++) db2[j] += w * d[(size_t)i * T + j];
                }
            }
        } else if (kind == ATTN_RANDOM) {
#pragma omp parallel for if (big)
            for (int h = 0; h < NH; h++) {
                real *G = scratch + (size_t)omp_get_thread_num() * 2 * TT;
                batch_sum(G, dscores, WEIGHT(h), h, B, T, NH);
                real *dR = g->drandom + (size_t)h * n * n;
                for (int i = 0; i < T; i++)
                    for (int j = 0; j <= i; j++) dR[(size_t)i * n + j] += G[(size_t)i * T + j];
            }
        } else if (kind == ATTN_FACTORIZED_RANDOM) {
            const int r = s->rank;
#pragma omp parallel for if (big)
            for (int h = 0; h < NH; h++) {
                real *G = scratch + (size_t)omp_get_thread_num() * 2 * TT;
                batch_sum(G, dscores, WEIGHT(h), h, B, T, NH);
                size_t off = (size_t)h * n * r;
                // dR_1[:T] += G R_2[:T]; dR_2[:T] += G^T R_1[:T]
                BP_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, r, T, R(1), G, T,
                        s->fr2 + off, r, R(1), g->dfr1 + off, r);
                BP_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, T, r, T, R(1), G, T,
                        s->fr1 + off, r, R(1), g->dfr2 + off, r);
            }
        } else if (kind == ATTN_FACTORIZED_DENSE) {
            const int fa = s->fa, fb = s->fb;
#pragma omp parallel for collapse(2) if (big)
            for (int b = 0; b < B; b++)
                for (int h = 0; h < NH; h++) {
                    real w = WEIGHT(h);
                    const real *d = dscores + ((size_t)b * NH + h) * TT;
                    for (int i = 0; i < T; i++) {
                        size_t row = (size_t)b * T + i;
                        const real *x = s->fd_a + row * NH * fa + (size_t)h * fa;
                        const real *y = s->fd_b + row * NH * fb + (size_t)h * fb;
                        real *dx = g->dfd_a + row * NH * fa + (size_t)h * fa;
                        real *dy = g->dfd_b + row * NH * fb + (size_t)h * fb;
                        for (int q = 0; q < fa; q++) dx[q] = 0;
                        for (int q = 0; q < fb; q++) dy[q] = 0;
                        for (int j = 0; j <= i; j++) {
                            real dj = w * d[(size_t)i * T + j];
                            dx[j / fb] += dj * y[j % fb];
                            dy[j % fb] += dj * x[j / fb];
                        }
                    }
                }
        }
#undef WEIGHT
    }
    if (!s->mix) return;
    /* d loss / d w_c = sum dS B_c; through the softmax: dv_c = w_c (dw_c - sum w dw) */
#pragma omp parallel for if (big)
    for (int h = 0; h < NH; h++) {
        real *tmp = scratch + (size_t)omp_get_thread_num() * 2 * TT;
        real dw[ATTN_NUM_KINDS] = {0};
        const real *w = s->mix + (size_t)h * count;
        int ci = 0;
        for (unsigned kind = 1; kind <= s->kinds; kind <<= 1) {
            if (!(s->kinds & kind)) continue;
            for (int b = 0; b < B; b++) {
                synth_scores(tmp, s, kind, b, h, T, C, NH);
                const real *d = dscores + ((size_t)b * NH + h) * TT;
                for (int i = 0; i < T; i++)
                    for (int j = 0; j <= i; j++) {
                        size_t q = (size_t)i * T + j;
                        dw[ci] += d[q] * tmp[q];
                    }
            }
            ci++;
        }
        real dot = 0;
        for (int k = 0; k < count; k++) dot += w[k] * dw[k];
        for (int k = 0; k < count; k++) g->dmix[(size_t)h * count + k] += w[k] * (dw[k] - dot);
    }
}

void headwise_forward(real *out, const real *inp, const real *weight, const real *bias, int N,
                      int NH, int IC, int OC) {
    for (int h = 0; h < NH; h++) {
        real *o = out + (size_t)h * OC;
        const real *b = bias + (size_t)h * OC;
        for (int r = 0; r < N; r++) memcpy(o + (size_t)r * NH * OC, b, (size_t)OC * sizeof(real));
        BP_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, OC, IC, R(1), inp + (size_t)h * IC,
                NH * IC, weight + (size_t)h * IC * OC, OC, R(1), o, NH * OC);
    }
}

void headwise_backward(real *dinp, real *dweight, real *dbias, const real *dout,
                       const real *inp, const real *weight, int N, int NH, int IC, int OC) {
    for (int h = 0; h < NH; h++) {
        const real *d = dout + (size_t)h * OC;
        BP_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, N, IC, OC, R(1), d, NH * OC,
                weight + (size_t)h * IC * OC, OC, R(1), dinp + (size_t)h * IC, NH * IC);
        BP_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, IC, OC, N, R(1), inp + (size_t)h * IC,
                NH * IC, d, NH * OC, R(1), dweight + (size_t)h * IC * OC, OC);
        real *db = dbias + (size_t)h * OC;
        for (int r = 0; r < N; r++)
            for (int c = 0; c < OC; c++) db[c] += d[(size_t)r * NH * OC + c];
    }
}

void relu_forward(real *out, const real *inp, size_t n) {
#pragma omp parallel for simd if (n >= BP_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0 ? inp[i] : R(0);
}

void relu_backward(real *dinp, const real *inp, const real *dout, size_t n) {
#pragma omp parallel for simd if (n >= BP_PAR_MIN)
    for (size_t i = 0; i < n; i++) dinp[i] = inp[i] > 0 ? dout[i] : R(0);
}

/* ------------------------------------------------------------------------------------ */
/* fused softmax + cross-entropy */

real crossentropy_forward(real *lse, const real *logits, const int *targets, int N, int V) {
#pragma omp parallel for if ((size_t)N * V >= BP_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const real *x = logits + (size_t)n * V;
        real mx = x[0];
#pragma omp simd reduction(max : mx)
        for (int v = 1; v < V; v++) mx = x[v] > mx ? x[v] : mx;
        real sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int v = 0; v < V; v++) sum += exp_fast(x[v] - mx);
        lse[n] = mx + log(sum);
    }
    /* summed in order (in double), so the loss does not depend on threads or timing */
    double total = 0;
    for (int n = 0; n < N; n++) total += lse[n] - logits[(size_t)n * V + targets[n]];
    return (real)(total / N);
}

void crossentropy_backward(real *logits, const real *lse, const int *targets, int N, int V,
                           real dloss) {
    real scale = dloss / N;
#pragma omp parallel for if ((size_t)N * V >= BP_PAR_MIN)
    for (int n = 0; n < N; n++) {
        real *x = logits + (size_t)n * V;
        real l = lse[n];
#pragma omp simd
        for (int v = 0; v < V; v++) x[v] = exp_fast(x[v] - l) * scale;
        x[targets[n]] -= scale;
    }
}
