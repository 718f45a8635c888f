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

/* ---- principal components ------------------------------------------------------------ */

/* Centers the n rows of X (n x d, row-major) and diagonalizes their d x d covariance
 * (LAPACK dsyev). coords (n x n_components, may be NULL) receives each row's projection
 * on the top n_components principal axes (n_components <= d); eigenvalues (d, may be
 * NULL) the covariance's eigenvalues, largest first (s_i^2 / n for the singular values
 * s_i of the centered X). d at most 8192. */
int geometry_pca(const float *X, int n, int d, int n_components, double *coords, double *eigenvalues,
                 BpError *err);

#endif
