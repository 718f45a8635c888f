/* geometry.h - how vectors sit in a high-dimensional space: principal components, the
 * effective dimensionality, angles between random directions (exact and sampled), the
 * Welch bound on how orthogonal N vectors in d dimensions can be, and an outer-product
 * associative memory. geometry.c is plain math (no SQLite); geometry_store.c samples
 * a sense database (store.h) for `backpack geometry senses` and `backpack plot senses`.
 */
#ifndef BP_SENSES_GEOMETRY_H
#define BP_SENSES_GEOMETRY_H

#include <stdint.h>

#include "../common/error.h"
#include "store.h"

/* ---- principal components ------------------------------------------------------------ */

/* Centers the n rows of X (n x d, row-major) and diagonalizes their d x d covariance
 * (LAPACK dsyev). coords (n x n_components, may be NULL) receives each row's projection
 * on the top n_components principal axes (n_components <= d); eigenvalues (d, may be
 * NULL) the covariance's eigenvalues, largest first (s_i^2 / n for the singular values
 * s_i of the centered X). d at most 8192. */
int geometry_pca(const float *X, int n, int d, int n_components, double *coords, double *eigenvalues,
                 BpError *err);

/* Effective dimensionality of a set of vectors: the participation ratio of the singular
 * values s_i of their centered matrix, (sum s^2)^2 / sum s^4, from geometry_pca's
 * eigenvalues (lambda_i = s_i^2 / n): d for an isotropic cloud of many points, 1 when
 * all variance lies on one axis. */
double geometry_participation_ratio(const double *eigenvalues, int d);

/* ---- angles ------------------------------------------------------------------------- */

#define GEOMETRY_BINS 180   /* histograms of angles: 1-degree bins from 0 to 180 */

/* An accumulator of angles between pairs of vectors, given by their cosines. */
typedef struct {
    double band_lo, band_hi;        /* degrees, the band whose share is counted */
    long count[GEOMETRY_BINS];
    long pairs, in_band;
    double sum_deg, sum_deg2;
    double max_abs_cos;
} AngleStats;

void angle_stats_init(AngleStats *a, double band_lo_deg, double band_hi_deg);
void angle_stats_add(AngleStats *a, double cosine);
/* Share of the pairs in the band, the mean and standard deviation of the angle (degrees). */
double angle_stats_band(const AngleStats *a);
double angle_stats_mean(const AngleStats *a);
double angle_stats_sd(const AngleStats *a);

/* Angles of all pairs i < j of rows of X (n x d) into all_pairs, and of each row to its
 * nearest other row (highest cosine) into nearest (either may be NULL). Cosines come
 * from BLAS sgemm on the normalized rows, a block of rows at a time (a zero row has
 * cosine 0 with everything). Rows with the same
 * group[i] >= 0 (e.g. senses of one word) are not each other's nearest neighbours and
 * are not counted as pairs (group may be NULL). */
int geometry_pair_angles(const float *X, int n, int d, const int *group, AngleStats *all_pairs,
                         AngleStats *nearest, BpError *err);

/* The largest |cos| over all pairs of the n rows of X (n >= 2). */
int geometry_max_abs_cos(const float *X, int n, int d, double *out, BpError *err);

/* The Welch bound: no n unit vectors in d dimensions have all |cos| below
 * sqrt((n - d) / (d (n - 1))) (0 when n <= d: an orthonormal set exists). */
double geometry_welch_bound(long n, int d);

/* ---- random directions ----------------------------------------------------------------- */

/* The regularized incomplete beta function I_x(a, b) (continued fraction, Lentz's method).
 * Absolute error ~1e-13 for small a, b, growing with lgamma's cancellation in the prefactor
 * to ~1e-11 at a = b = 5000 (d = 10000) and ~1e-9 at 5e5 (d = 1e6). */
double geometry_incomplete_beta(double a, double b, double x);

/* The exact probability that the angle between two independent uniformly random
 * directions in d >= 2 dimensions lies in [lo_deg, hi_deg]: the cosine t has density
 * proportional to (1 - t^2)^((d-3)/2), i.e. (1 + t) / 2 ~ Beta((d-1)/2, (d-1)/2). */
double geometry_band_exact(int d, double lo_deg, double hi_deg);

/* Monte Carlo: the share of random pairs of directions in d dimensions whose angle lies
 * in [lo_deg, hi_deg]. Draws m standard Gaussian vectors (seeded) and takes the first
 * `pairs` pairs i < j of them (m the least with m (m - 1) / 2 >= pairs); pairs that share
 * a vector are uncorrelated here (given one direction, the other's angle has the same
 * law), so the estimate has the variance of independent pairs, p (1 - p) / pairs. */
int geometry_band_sample(int d, double lo_deg, double hi_deg, long pairs, uint64_t seed, double *fraction,
                         BpError *err);

/* m x d standard Gaussian entries (Box-Muller, both outputs used), seeded. */
void geometry_gaussian(float *out, size_t count, uint64_t seed);

/* ---- associative memory ---------------------------------------------------------------- */

/* An outer-product associative memory W = sum_k v_k u_k^T of n_pairs random Gaussian
 * key/value embeddings (entries N(0, 1/d)) in d dimensions: the share of keys k for
 * which argmax_j v_j . (W u_k) == k. */
int geometry_memory_recall(int d, int n_pairs, uint64_t seed, double *accuracy, BpError *err);

/* ---- sense databases (geometry_store.c) ------------------------------------------------ */

/* n_words distinct real words (not padding rows) drawn uniformly without replacement
 * (seeded; fewer if the vocabulary is smaller: *got), their k sense vectors in force
 * into senses (got * k * d floats, word-major) and their embeddings E[x] into
 * embeddings (got * d floats); tokens receives the ids. */
int geometry_sample_store(SenseStore *s, int n_words, uint64_t seed, int *tokens, float *senses,
                          float *embeddings, int *got, BpError *err);

#endif
