/* geometry.c - the math of geometry.h, in double precision. */
#include "geometry.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

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
