/* gradcheck.h - central finite differences in double precision, shared by
 * test_model_layer_gradcheck.c and test_model_gradcheck.c (header-only, test code).
 *
 * A check perturbs entries of a tensor x by +-h, re-evaluates the scalar loss through
 * a callback, and compares (f(x+h) - f(x-h)) / 2h with the analytic gradient. The
 * error reported is max |analytic - numeric| / max(max |numeric|, 1e-8) over the
 * entries checked: relative to the tensor's gradient scale, so that entries whose
 * gradient is (nearly) zero do not turn rounding noise into huge ratios.
 */
#ifndef BP_TEST_GRADCHECK_H
#define BP_TEST_GRADCHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef double (*LossFn)(void *ctx);

typedef struct {
    double max_abs_diff;
    double max_abs_grad;
    double rel_error;
    int checked;
} GradCheck;

/* Checks `count` entries of x (n entries; all when count >= n, else a spread of
 * positions driven by a simple LCG with `seed`). */
static inline GradCheck gradcheck(double *x, const double *analytic, size_t n, size_t count,
                                  LossFn loss, void *ctx, double h, unsigned seed) {
    GradCheck r = {0, 0, 0, 0};
    unsigned long long s = seed * 2654435761ULL + 1;
    for (size_t c = 0; c < (count < n ? count : n); c++) {
        size_t i = c;
        if (count < n) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            i = (size_t)((s >> 33) % n);
        }
        double saved = x[i];
        x[i] = saved + h;
        double fp = loss(ctx);
        x[i] = saved - h;
        double fm = loss(ctx);
        x[i] = saved;
        double numeric = (fp - fm) / (2 * h);
        double diff = fabs(numeric - analytic[i]);
        if (diff > r.max_abs_diff) r.max_abs_diff = diff;
        if (fabs(numeric) > r.max_abs_grad) r.max_abs_grad = fabs(numeric);
        r.checked++;
    }
    r.rel_error = r.max_abs_diff / (r.max_abs_grad > 1e-8 ? r.max_abs_grad : 1e-8);
    return r;
}

static inline void fill_uniform(double *x, size_t n, double lo, double hi, unsigned *state) {
    for (size_t i = 0; i < n; i++) {
        *state = *state * 1103515245u + 12345u;
        x[i] = lo + (hi - lo) * ((*state >> 8) & 0xFFFFFF) / 16777216.0;
    }
}

#endif
