/* geometry.c - the math of geometry.h, in double precision. */
#include "geometry.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "../common/rng.h"

/* LAPACK (in OpenBLAS): eigenvalues and eigenvectors of a symmetric matrix. */
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
            double *work, const int *lwork, int *info);

int geometry_pca(const float *X, int n, int d, int n_components, double *coords, double *eigenvalues,
                 BpError *err) {
    if (n < 1 || d < 1 || d > 8192 || n_components < 0 || n_components > d)
        return bp_fail(err, "pca: bad shape (%d rows, %d dims, %d components)", n, d, n_components);
    double *mean = calloc((size_t)d, sizeof *mean);
    double *Xc = malloc(sizeof *Xc * (size_t)n * d);
    double *cov = malloc(sizeof *cov * (size_t)d * d);
    double *w = malloc(sizeof *w * (size_t)d);
    double *work = NULL;
    int rc = -1;
    if (!mean || !Xc || !cov || !w) {
        bp_fail(err, "pca: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) mean[j] += X[(size_t)i * d + j];
    for (int j = 0; j < d; j++) mean[j] /= n;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) {
            double v = X[(size_t)i * d + j];
            if (!isfinite(v)) {
                bp_fail(err, "pca: row %d holds a non-finite value", i);
                goto done;
            }
            Xc[(size_t)i * d + j] = v - mean[j];
        }
    /* cov = Xc^T Xc / n (upper triangle in row-major = lower in LAPACK's column-major) */
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, n, 1.0 / n, Xc, d, 0.0, cov, d);
    int info, lwork = -1, dd = d;
    double query;
    dsyev_("V", "L", &dd, cov, &dd, w, &query, &lwork, &info);
    lwork = info == 0 ? (int)query : 3 * d;
    work = malloc(sizeof *work * (size_t)lwork);
    if (!work) {
        bp_fail(err, "pca: out of memory");
        goto done;
    }
    dsyev_("V", "L", &dd, cov, &dd, w, work, &lwork, &info);
    if (info != 0) {
        bp_fail(err, "pca: LAPACK dsyev failed (info %d)", info);
        goto done;
    }
    /* dsyev: ascending eigenvalues; column-major eigenvector j is row j of cov here. */
    if (eigenvalues)
        for (int j = 0; j < d; j++) eigenvalues[j] = w[d - 1 - j] > 0 ? w[d - 1 - j] : 0;
    if (coords)
        for (int i = 0; i < n; i++)
            for (int c = 0; c < n_components; c++) {
                const double *axis = cov + (size_t)(d - 1 - c) * d;
                coords[(size_t)i * n_components + c] = cblas_ddot(d, Xc + (size_t)i * d, 1, axis, 1);
            }
    rc = 0;
done:
    free(mean), free(Xc), free(cov), free(w), free(work);
    return rc;
}

double geometry_participation_ratio(const double *eig, int d) {
    double s = 0, s2 = 0;
    for (int i = 0; i < d; i++) s += eig[i], s2 += eig[i] * eig[i];
    return s2 > 0 ? s * s / s2 : 0;
}

/* ---- angles ------------------------------------------------------------------------- */

#define RAD_TO_DEG 57.29577951308232

void angle_stats_init(AngleStats *a, double lo, double hi) {
    memset(a, 0, sizeof *a);
    a->band_lo = lo, a->band_hi = hi;
}

void angle_stats_add(AngleStats *a, double c) {
    if (!isfinite(c)) return;
    if (c > 1) c = 1;
    if (c < -1) c = -1;
    double deg = acos(c) * RAD_TO_DEG;
    int bin = (int)deg;
    a->count[bin < 0 ? 0 : bin >= GEOMETRY_BINS ? GEOMETRY_BINS - 1 : bin]++;
    a->pairs++;
    a->in_band += deg >= a->band_lo && deg <= a->band_hi;
    a->sum_deg += deg, a->sum_deg2 += deg * deg;
    if (fabs(c) > a->max_abs_cos) a->max_abs_cos = fabs(c);
}

double angle_stats_band(const AngleStats *a) { return a->pairs ? (double)a->in_band / a->pairs : NAN; }
double angle_stats_mean(const AngleStats *a) { return a->pairs ? a->sum_deg / a->pairs : NAN; }
double angle_stats_sd(const AngleStats *a) {
    if (a->pairs < 2) return NAN;
    double m = a->sum_deg / a->pairs, v = a->sum_deg2 / a->pairs - m * m;
    return v > 0 ? sqrt(v) : 0;
}

/* The rows of X scaled to unit length (zero rows stay zero), malloc'ed. */
static float *unit_rows(const float *X, int n, int d) {
    float *U = malloc(sizeof *U * (size_t)n * d);
    if (!U) return NULL;
    for (int i = 0; i < n; i++) {
        const float *x = X + (size_t)i * d;
        double nn = 0;
        for (int j = 0; j < d; j++) nn += (double)x[j] * x[j];
        float inv = nn > 0 && isfinite(nn) ? (float)(1 / sqrt(nn)) : 0;
        for (int j = 0; j < d; j++) U[(size_t)i * d + j] = x[j] * inv;
    }
    return U;
}

#define COS_BLOCK 256

/* Calls visit(ctx, i, cos_row) for every row i with cos_row[j] = cos(X_i, X_j), j < n. */
static int for_each_cos_row(const float *X, int n, int d, void (*visit)(void *, int, const float *),
                            void *ctx, BpError *err) {
    if (n < 1 || d < 1) return bp_fail(err, "angles: bad shape (%d rows, %d dims)", n, d);
    float *U = unit_rows(X, n, d);
    float *G = malloc(sizeof *G * (size_t)COS_BLOCK * n);
    if (!U || !G) {
        free(U), free(G);
        return bp_fail(err, "angles: out of memory (%d x %d)", n, d);
    }
    for (int i0 = 0; i0 < n; i0 += COS_BLOCK) {
        int rows = n - i0 < COS_BLOCK ? n - i0 : COS_BLOCK;
        /* G (rows, n) = U[i0:i0+rows] U^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, d, 1.0f, U + (size_t)i0 * d, d, U, d,
                    0.0f, G, n);
        for (int r = 0; r < rows; r++) visit(ctx, i0 + r, G + (size_t)r * n);
    }
    free(U), free(G);
    return 0;
}

typedef struct {
    int n;
    const int *group;
    AngleStats *all, *nearest;
    double max_abs;
} PairVisit;

static void visit_pairs(void *ctx, int i, const float *row) {
    PairVisit *v = ctx;
    int gi = v->group ? v->group[i] : -1;
    double best = -2;
    for (int j = 0; j < v->n; j++) {
        if (j == i || (gi >= 0 && v->group[j] == gi)) continue;
        if (j > i) {
            if (v->all) angle_stats_add(v->all, row[j]);
            if (fabs(row[j]) > v->max_abs) v->max_abs = fabs(row[j]);
        }
        if (row[j] > best) best = row[j];
    }
    if (v->nearest && best > -2) angle_stats_add(v->nearest, best);
}

int geometry_pair_angles(const float *X, int n, int d, const int *group, AngleStats *all_pairs,
                         AngleStats *nearest, BpError *err) {
    PairVisit v = {n, group, all_pairs, nearest, 0};
    return for_each_cos_row(X, n, d, visit_pairs, &v, err);
}

int geometry_max_abs_cos(const float *X, int n, int d, double *out, BpError *err) {
    if (n < 2) return bp_fail(err, "max |cos|: needs at least 2 vectors, got %d", n);
    PairVisit v = {n, NULL, NULL, NULL, 0};
    if (for_each_cos_row(X, n, d, visit_pairs, &v, err) != 0) return -1;
    *out = v.max_abs;
    return 0;
}

double geometry_welch_bound(long n, int d) {
    if (n <= d || d < 1) return 0;
    return sqrt((double)(n - d) / ((double)d * (double)(n - 1)));
}

/* ---- random directions ----------------------------------------------------------------- */

/* The continued fraction of I_x(a, b) (Numerical Recipes' betacf, modified Lentz). */
static double beta_cf(double a, double b, double x) {
    const double eps = 1e-15, tiny = 1e-300;
    double qab = a + b, qap = a + 1, qam = a - 1, c = 1, d = 1 - qab * x / qap;
    if (fabs(d) < tiny) d = tiny;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 1000000; m++) {
        int m2 = 2 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny) d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny) d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < eps) break;
    }
    return h;
}

double geometry_incomplete_beta(double a, double b, double x) {
    if (!(x > 0)) return 0;
    if (!(x < 1)) return 1;
    double front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x));
    if (x < (a + 1) / (a + b + 2)) return front * beta_cf(a, b, x) / a;
    return 1 - front * beta_cf(b, a, 1 - x) / b;
}

double geometry_band_exact(int d, double lo_deg, double hi_deg) {
    if (d < 2 || !(hi_deg >= lo_deg)) return NAN;
    double a = (d - 1) / 2.0;
    double t_lo = cos(hi_deg / RAD_TO_DEG), t_hi = cos(lo_deg / RAD_TO_DEG);
    return geometry_incomplete_beta(a, a, (1 + t_hi) / 2) - geometry_incomplete_beta(a, a, (1 + t_lo) / 2);
}

void geometry_gaussian(float *out, size_t count, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < count; i += 2) {
        double u1 = ((double)(rng_next(&r) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
        double u2 = (double)(rng_next(&r) >> 11) * (1.0 / 9007199254740992.0);
        double rad = sqrt(-2.0 * log(u1)), s, c;
        sincos(6.283185307179586 * u2, &s, &c);
        out[i] = (float)(rad * c);
        if (i + 1 < count) out[i + 1] = (float)(rad * s);
    }
}

int geometry_band_sample(int d, double lo_deg, double hi_deg, long pairs, uint64_t seed, double *fraction,
                         BpError *err) {
    if (d < 2 || d > 1000000) return bp_fail(err, "--dims: %d out of range (2 to 1000000)", d);
    if (pairs < 1 || pairs > 20000000) return bp_fail(err, "--pairs: %ld out of range (1 to 20000000)", pairs);
    long m = 2;
    while (m * (m - 1) / 2 < pairs) m++;
    if ((double)m * d > 1e8)   /* 400 MB of floats */
        return bp_fail(err, "%ld pairs in %d dims need %ld vectors of %d floats: too much memory", pairs, d, m, d);
    float *X = malloc(sizeof *X * (size_t)m * d);
    float *G = malloc(sizeof *G * (size_t)COS_BLOCK * m);
    if (!X || !G) {
        free(X), free(G);
        return bp_fail(err, "out of memory (%ld vectors of %d dims)", m, d);
    }
    geometry_gaussian(X, (size_t)m * d, seed);
    float *U = unit_rows(X, (int)m, d);
    free(X);
    if (!U) {
        free(G);
        return bp_fail(err, "out of memory (%ld vectors of %d dims)", m, d);
    }
    double t_lo = cos(hi_deg / RAD_TO_DEG), t_hi = cos(lo_deg / RAD_TO_DEG);
    long seen = 0, in_band = 0;
    for (long i0 = 0; i0 < m && seen < pairs; i0 += COS_BLOCK) {
        int rows = m - i0 < COS_BLOCK ? (int)(m - i0) : COS_BLOCK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, (int)m, d, 1.0f, U + (size_t)i0 * d, d, U, d,
                    0.0f, G, (int)m);
        for (int r = 0; r < rows && seen < pairs; r++)
            for (long j = i0 + r + 1; j < m && seen < pairs; j++, seen++) {
                double c = G[(size_t)r * m + j];
                in_band += c >= t_lo && c <= t_hi;
            }
    }
    free(U), free(G);
    *fraction = (double)in_band / (double)seen;
    return 0;
}

/* ---- associative memory ---------------------------------------------------------------- */

int geometry_memory_recall(int d, int n, uint64_t seed, double *accuracy, BpError *err) {
    if (d < 1 || d > 16384) return bp_fail(err, "memory: d = %d out of range (1 to 16384)", d);
    if (n < 1 || n > 65536) return bp_fail(err, "memory: %d pairs out of range (1 to 65536)", n);
    size_t nd = (size_t)n * d;
    float *U = malloc(sizeof *U * nd), *V = malloc(sizeof *V * nd), *W = malloc(sizeof *W * (size_t)d * d);
    float *R = malloc(sizeof *R * nd), *S = malloc(sizeof *S * (size_t)n * n);
    if (!U || !V || !W || !R || !S) {
        free(U), free(V), free(W), free(R), free(S);
        return bp_fail(err, "memory: out of memory (%d pairs, d = %d)", n, d);
    }
    geometry_gaussian(U, nd, seed);
    geometry_gaussian(V, nd, seed ^ 0x9e3779b97f4a7c15ULL);
    float scale = (float)(1 / sqrt((double)d));
    for (size_t i = 0; i < nd; i++) U[i] *= scale, V[i] *= scale;
    /* W (d, d) = sum_k v_k u_k^T = V^T U */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, n, 1.0f, V, d, U, d, 0.0f, W, d);
    /* R (n, d): row k = W u_k = (U W^T)_k */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, d, d, 1.0f, U, d, W, d, 0.0f, R, d);
    /* S (n, n): S[k][j] = v_j . W u_k */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, d, 1.0f, R, d, V, d, 0.0f, S, n);
    long right = 0;
    for (int k = 0; k < n; k++) {
        const float *row = S + (size_t)k * n;
        int best = 0;
        for (int j = 1; j < n; j++)
            if (row[j] > row[best]) best = j;
        right += best == k;
    }
    *accuracy = (double)right / n;
    free(U), free(V), free(W), free(R), free(S);
    return 0;
}
