/* infer_kernels.h - the matrix-vector products of one position, for the incremental
 * step (infer.c) and the greedy screen (greedy.c); private to model/.
 *
 * At batch 1 every product is a matrix-vector product bound by reading the weights.
 * Each is a team job (team.h) of chunks of about 64K weights (256 KB), so that the
 * two threads of a 256-wide model share even the attention products, while the claims
 * (one atomic each) stay rare next to the reading. These kernels are our own (AVX-512
 * where compiled for it) rather than OpenBLAS's sgemv, which was 1.5-2x slower here
 * and would add a second thread pool. Results do not depend on the number of threads.
 *
 * When team->quant holds an int8 copy of a product's matrix (found by its float
 * pointer, quant.h), matvec_rows and conv1d use it instead: the input vector is rounded
 * to int8 per group on the calling thread, and the rows are shared as chunks of about
 * 64K int8 weights. matvec_cols (the mixing over the context's sense vectors) and
 * dot_rows4 stay float.
 */
#ifndef BP_INFER_KERNELS_H
#define BP_INFER_KERNELS_H

#include "team.h"

/* y[r] = row[r] . x for the 4 rows of `row` (cols long each). Every row gets the same
 * sequence of operations whatever its neighbours, so a logit is bit-identical whether
 * it is computed with all the others (matvec_rows) or alone (the greedy check). */
void dot_rows4(float y[4], const float *const row[4], const float *x, int cols);

/* y (rows) = A x, A (rows, cols) row-major: the layout of wte and of nn.Linear. */
void matvec_rows(Team *team, float *y, const float *A, const float *x, int rows, int cols);

/* y (n_out) += x (n_in) W, W (n_in, n_out) row-major: the Conv1D layout [in, out].
 * With rows != NULL, x[i] multiplies row rows[i] of W. */
void matvec_cols(Team *team, float *y, const float *x, const float *W, int n_in, int n_out,
                 const int *rows);

/* out (n_out) = x (n_in) W + b, W stored [in, out] (Conv1D). With accumulate the
 * product is added to out instead (b still added). */
void conv1d(Team *team, float *out, const float *x, const float *W, const float *b, int n_in,
           int n_out, int accumulate);

#endif
