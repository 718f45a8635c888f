/* real.h - the scalar type of the numeric code (layers.c, net.c).
 *
 * The model is float32. The gradient check (tests/test_model_gradcheck.c) compiles the very
 * same layers.c and net.c a second time with BP_REAL_DOUBLE defined: `real` becomes
 * double, cblas_sgemm becomes cblas_dgemm, and every external function name gets the
 * suffix _f64 (layers.h and net.h map the plain names), so both copies can be linked
 * into one test binary and finite differences are exact to ~1e-10. Math functions
 * come from <tgmath.h>, so exp/tanh/sqrt follow `real`; write constants as R(0.5).
 */
#ifndef BP_REAL_H
#define BP_REAL_H

#include <cblas.h>
#include <tgmath.h>

#ifdef BP_REAL_DOUBLE
typedef double real;
#define BP_GEMM cblas_dgemm
#else
typedef float real;
#define BP_GEMM cblas_sgemm
#endif

#define R(x) ((real)(x))

/* Loops with less work than this (elements, or multiply-adds) run on one thread: a
 * parallel region costs microseconds, and much more when the cores are shared. */
#define BP_PAR_MIN 32768

#endif
