/* The math of senses/geometry.h: the exact law of angles between random directions
 * (against the seed text's figures and an independent numerical integral), the Monte
 * Carlo estimate, the Welch bound (never beaten: random, simplex and optimized sets),
 * the associative memory's recall, PCA, participation ratio and angle statistics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../senses/geometry.h"

static void test_incomplete_beta_closed_forms(void **state) {
    (void)state;
    for (double x = 0.05; x < 1; x += 0.1) {
        assert_true(fabs(geometry_incomplete_beta(1, 1, x) - x) < 1e-13);
        /* I_x(2, 3) = 6x^2 - 8x^3 + 3x^4 */
        double want = 6 * x * x - 8 * x * x * x + 3 * x * x * x * x;
        assert_true(fabs(geometry_incomplete_beta(2, 3, x) - want) < 1e-12);
        /* symmetry I_x(a, b) = 1 - I_{1-x}(b, a) */
        assert_true(fabs(geometry_incomplete_beta(7.5, 3, x) - (1 - geometry_incomplete_beta(3, 7.5, 1 - x))) < 1e-12);
    }
    assert_true(fabs(geometry_incomplete_beta(4999.5, 4999.5, 0.5) - 0.5) < 1e-10);
    assert_true(geometry_incomplete_beta(3, 3, 0) == 0 && geometry_incomplete_beta(3, 3, 1) == 1);
}

/* Simpson's rule on the density of the cosine, c_d (1 - t^2)^((d-3)/2) with
 * c_d = Gamma(d/2) / (sqrt(pi) Gamma((d-1)/2)): an independent route to the same number. */
static double band_by_integral(int d, double lo_deg, double hi_deg) {
    double a = cos(hi_deg * M_PI / 180), b = cos(lo_deg * M_PI / 180);
    double log_c = lgamma(d / 2.0) - 0.5 * log(M_PI) - lgamma((d - 1) / 2.0);
    int n = 20000;
    double h = (b - a) / n, sum = 0;
    for (int i = 0; i <= n; i++) {
        double t = a + i * h, f = exp(log_c + (d - 3) / 2.0 * log1p(-t * t));
        sum += f * (i == 0 || i == n ? 1 : i % 2 ? 4 : 2);
    }
    return sum * h / 3;
}

/* The seed's figures: ~1% at 2 and 3 dims, ~14% at 100, over 40% at 1000, over 90% at
 * 10000; exactly 2/180 at d = 2 (uniform angle) and sin(1 degree) at d = 3 (uniform cosine). */
static void test_band_exact_values(void **state) {
    (void)state;
    assert_true(fabs(geometry_band_exact(2, 89, 91) - 2.0 / 180) < 1e-12);
    assert_true(fabs(geometry_band_exact(3, 89, 91) - sin(M_PI / 180)) < 1e-12);
    assert_true(fabs(geometry_band_exact(100, 89, 91) - 0.1375) < 5e-5);
    assert_true(fabs(geometry_band_exact(1000, 89, 91) - 0.4187) < 5e-5);
    assert_true(fabs(geometry_band_exact(10000, 89, 91) - 0.9191) < 5e-5);
    int dims[] = {4, 10, 64, 100, 768, 1000, 10000};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        double e = geometry_band_exact(dims[i], 89, 91), s = band_by_integral(dims[i], 89, 91);
        if (fabs(e - s) > 1e-9) fail_msg("d = %d: beta %.12f, integral %.12f", dims[i], e, s);
    }
    /* the whole half-circle has probability 1, a band and its mirror the same */
    assert_true(fabs(geometry_band_exact(50, 0, 180) - 1) < 1e-12);
    assert_true(fabs(geometry_band_exact(50, 30, 60) - geometry_band_exact(50, 120, 150)) < 1e-12);
}

/* 10^6 pairs: the standard error is under 0.0005, so 0.003 is six of them. */
static void test_band_sample_matches_exact(void **state) {
    (void)state;
    int dims[2] = {100, 1000};
    for (int i = 0; i < 2; i++) {
        double f;
        BpError err = {{0}};
        assert_int_equal(geometry_band_sample(dims[i], 89, 91, 1000000, 42, &f, &err), 0);
        double e = geometry_band_exact(dims[i], 89, 91);
        if (fabs(f - e) > 0.003) fail_msg("d = %d: sampled %.5f, exact %.5f", dims[i], f, e);
    }
    double f;
    BpError err = {{0}};
    /* in 2 dims the angle is uniform: a 10-degree band holds 1/18 */
    assert_int_equal(geometry_band_sample(2, 40, 50, 400000, 3, &f, &err), 0);
    assert_true(fabs(f - 10.0 / 180) < 0.003);
    assert_int_equal(geometry_band_sample(1, 89, 91, 10, 1, &f, &err), -1);
    assert_int_equal(geometry_band_sample(10, 89, 91, 0, 1, &f, &err), -1);
}

static double max_abs_cos(const float *X, int n, int d) {
    double m;
    BpError err = {{0}};
    assert_int_equal(geometry_max_abs_cos(X, n, d, &m, &err), 0);
    return m;
}

/* Minimizes sum_{i<j} cos_ij^8 by gradient steps on the sphere: a set spread as evenly as
 * a few hundred steps manage (the kind of optimization the seed mentions). */
static void spread_out(float *X, int n, int d) {
    double *g = malloc(sizeof *g * (size_t)n * d);
    for (int it = 0; it < 800; it++) {
        for (int i = 0; i < n; i++) {
            double nn = 0;
            for (int k = 0; k < d; k++) nn += (double)X[i * d + k] * X[i * d + k];
            for (int k = 0; k < d; k++) X[i * d + k] /= (float)sqrt(nn);
        }
        memset(g, 0, sizeof *g * (size_t)n * d);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                if (i == j) continue;
                double c = 0;
                for (int k = 0; k < d; k++) c += (double)X[i * d + k] * X[j * d + k];
                for (int k = 0; k < d; k++) g[i * d + k] += 8 * pow(c, 7) * X[j * d + k];
            }
        for (size_t k = 0; k < (size_t)n * d; k++) X[k] -= (float)(0.05 * g[k]);
    }
    free(g);
}

static void test_welch_bound_is_never_beaten(void **state) {
    (void)state;
    /* random sets */
    int shapes[][2] = {{30, 3}, {50, 10}, {200, 16}, {1000, 64}};
    for (int s = 0; s < 4; s++) {
        int n = shapes[s][0], d = shapes[s][1];
        float *X = malloc(sizeof *X * (size_t)n * d);
        geometry_gaussian(X, (size_t)n * d, 100 + s);
        double m = max_abs_cos(X, n, d), w = geometry_welch_bound(n, d);
        if (!(m >= w)) fail_msg("random %d x %d: max |cos| %.4f below Welch %.4f", n, d, m, w);
        free(X);
    }
    /* the regular simplex: d + 1 unit vectors in a d-dimensional subspace with every
     * cosine -1/d, which meets the bound (1/d) exactly */
    for (int d = 2; d <= 12; d += 5) {
        int n = d + 1, D = d + 1;
        float *X = calloc((size_t)n * D, sizeof *X);
        for (int i = 0; i < n; i++)
            for (int k = 0; k < D; k++) X[i * D + k] = (float)((i == k) - 1.0 / n);
        double m = max_abs_cos(X, n, D), w = geometry_welch_bound(n, d);
        assert_true(fabs(w - 1.0 / d) < 1e-12);
        assert_true(m >= w - 1e-6);
        assert_true(fabs(m - w) < 1e-6);
        free(X);
    }
    /* an orthonormal basis: 0 and 0 */
    float I[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    assert_true(max_abs_cos(I, 3, 3) < 1e-7 && geometry_welch_bound(3, 3) == 0);
    /* optimized: far better than random, still not below the bound */
    int n = 24, d = 8;
    float *X = malloc(sizeof *X * (size_t)n * d);
    geometry_gaussian(X, (size_t)n * d, 7);
    double before = max_abs_cos(X, n, d);
    spread_out(X, n, d);
    double after = max_abs_cos(X, n, d), w = geometry_welch_bound(n, d);
    if (!(after < before - 0.15)) fail_msg("optimization did not spread: %.4f -> %.4f", before, after);
    if (!(after >= w)) fail_msg("optimized set %.4f beats Welch %.4f", after, w);
    free(X);
}

/* Recall is perfect well below capacity and falls as N grows past d. */
static void test_memory_recall(void **state) {
    (void)state;
    BpError err = {{0}};
    double a65, a256, a1024, a2048, a4096;
    assert_int_equal(geometry_memory_recall(256, 65, 1, &a65, &err), 0);
    assert_true(a65 == 1.0);
    assert_int_equal(geometry_memory_recall(256, 256, 1, &a256, &err), 0);
    assert_int_equal(geometry_memory_recall(256, 1024, 1, &a1024, &err), 0);
    assert_int_equal(geometry_memory_recall(256, 2048, 1, &a2048, &err), 0);
    assert_int_equal(geometry_memory_recall(256, 4096, 1, &a4096, &err), 0);
    if (!(a256 >= a1024 && a1024 > a2048 && a2048 > a4096 && a4096 < 0.8))
        fail_msg("recall at d = 256: N 256 %.3f, 1024 %.3f, 2048 %.3f, 4096 %.3f", a256, a1024, a2048, a4096);
    double small, crowded;
    assert_int_equal(geometry_memory_recall(64, 8, 1, &small, &err), 0);
    assert_int_equal(geometry_memory_recall(64, 1024, 1, &crowded, &err), 0);
    assert_true(small == 1.0 && crowded < 0.2);
    assert_int_equal(geometry_memory_recall(0, 8, 1, &small, &err), -1);
}

/* Points (+-3, +-1, 0, 0, 0): principal axes e1 (variance 9) and e2 (1); participation
 * ratio (9 + 1)^2 / (81 + 1). */
static void test_pca_and_participation_ratio(void **state) {
    (void)state;
    int d = 5;
    float X[4 * 5] = {3, 1, 0, 0, 0, 3, -1, 0, 0, 0, -3, 1, 0, 0, 0, -3, -1, 0, 0, 0};
    double coords[8], eig[5];
    BpError err = {{0}};
    assert_int_equal(geometry_pca(X, 4, d, 2, coords, eig, &err), 0);
    assert_true(fabs(eig[0] - 9) < 1e-9 && fabs(eig[1] - 1) < 1e-9 && fabs(eig[2]) < 1e-9);
    for (int i = 0; i < 4; i++) {
        assert_true(fabs(fabs(coords[2 * i]) - 3) < 1e-9);
        assert_true(fabs(fabs(coords[2 * i + 1]) - 1) < 1e-9);
    }
    assert_true(fabs(geometry_participation_ratio(eig, d) - 100.0 / 82) < 1e-9);
    /* an isotropic cloud fills (nearly) all of its dimensions */
    int n = 20000, dd = 10;
    float *G = malloc(sizeof *G * (size_t)n * dd);
    geometry_gaussian(G, (size_t)n * dd, 5);
    double e2[10];
    assert_int_equal(geometry_pca(G, n, dd, 0, NULL, e2, &err), 0);
    double pr = geometry_participation_ratio(e2, dd);
    assert_true(pr > 9.9 && pr <= 10);
    free(G);
    assert_int_equal(geometry_pca(X, 4, d, 6, coords, eig, &err), -1);
}

/* e1, e2 and their bisector: pairs at 90, 45, 45 degrees; every nearest neighbour at 45. */
static void test_pair_angles(void **state) {
    (void)state;
    float X[9] = {1, 0, 0, 0, 1, 0, 0.70710678f, 0.70710678f, 0};
    AngleStats all, near;
    angle_stats_init(&all, 89, 91);
    angle_stats_init(&near, 89, 91);
    BpError err = {{0}};
    assert_int_equal(geometry_pair_angles(X, 3, 3, NULL, &all, &near, &err), 0);
    assert_int_equal(all.pairs, 3);
    assert_true(fabs(angle_stats_mean(&all) - 60) < 1e-3);
    assert_true(fabs(angle_stats_band(&all) - 1.0 / 3) < 1e-12);
    assert_int_equal(all.count[90] + all.count[89], 1);
    assert_int_equal(near.pairs, 3);
    assert_true(fabs(angle_stats_mean(&near) - 45) < 1e-3 && angle_stats_sd(&near) < 1e-2);
    /* rows 0 and 1 in one group: their pair is skipped, and they are not neighbours */
    int group[3] = {0, 0, 1};
    angle_stats_init(&all, 89, 91);
    angle_stats_init(&near, 89, 91);
    assert_int_equal(geometry_pair_angles(X, 3, 3, group, &all, &near, &err), 0);
    assert_int_equal(all.pairs, 2);
    assert_true(fabs(angle_stats_mean(&all) - 45) < 1e-3);
    assert_true(angle_stats_band(&all) == 0);
    assert_true(fabs(angle_stats_mean(&near) - 45) < 1e-3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_incomplete_beta_closed_forms),
        cmocka_unit_test(test_band_exact_values),
        cmocka_unit_test(test_band_sample_matches_exact),
        cmocka_unit_test(test_welch_bound_is_never_beaten),
        cmocka_unit_test(test_memory_recall),
        cmocka_unit_test(test_pca_and_participation_ratio),
        cmocka_unit_test(test_pair_angles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
