/* stats.c - average ranks and Spearman's rho. */
#include <math.h>
#include <stdlib.h>

#include "stats.h"

static int cmp_by_value(const void *a, const void *b, void *ctx) {
    const double *x = ctx;
    int i = *(const int *)a, j = *(const int *)b;
    if (x[i] != x[j]) return x[i] < x[j] ? -1 : 1;
    return (i > j) - (i < j);
}

void average_ranks(const double *x, int n, double *ranks) {
    int *order = malloc((n > 0 ? n : 1) * sizeof(int));
    if (!order) {
        for (int i = 0; i < n; i++) ranks[i] = NAN;
        return;
    }
    for (int i = 0; i < n; i++) order[i] = i;
    qsort_r(order, n, sizeof(int), cmp_by_value, (void *)x);
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && x[order[j + 1]] == x[order[i]]) j++;
        double r = (i + j) / 2.0 + 1.0;  /* the mean of ranks i+1 .. j+1 */
        for (int t = i; t <= j; t++) ranks[order[t]] = r;
        i = j + 1;
    }
    free(order);
}

double spearman(const double *x, const double *y, int n) {
    if (n < 2) return NAN;
    double *rx = malloc(n * sizeof(double)), *ry = malloc(n * sizeof(double));
    if (!rx || !ry) {
        free(rx);
        free(ry);
        return NAN;
    }
    average_ranks(x, n, rx);
    average_ranks(y, n, ry);
    double mx = 0, my = 0;
    for (int i = 0; i < n; i++) {
        mx += rx[i];
        my += ry[i];
    }
    mx /= n;
    my /= n;
    double sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) {
        sxy += (rx[i] - mx) * (ry[i] - my);
        sxx += (rx[i] - mx) * (rx[i] - mx);
        syy += (ry[i] - my) * (ry[i] - my);
    }
    free(rx);
    free(ry);
    if (sxx == 0 || syy == 0) return NAN;
    return sxy / sqrt(sxx * syy);
}
