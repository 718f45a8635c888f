/* sgemm - OpenBLAS sgemm GFLOP/s on the matrix products of one Backpack training step
 * (bench/run.sh): the limit the model's own GFLOP/s is compared with.
 *
 *   sgemm [--threads T] [--n N] [--d D] [--vocab V] [--senses K] [--unique U]
 *         [--seconds S]
 *
 * N = B*T positions, U distinct words (the sense network's rows; default N). Every
 * product is timed in the three orientations training uses, row-major as the model
 * stores them: forward out = in W (NN), input gradient din = dout W^T (NT) and weight
 * gradient dW = in^T dout (TN); the tied output reads E (V, d) transposed, so its three
 * are NT, NN and TN. Each is repeated for at least S seconds (default 0.3) after one
 * warm-up call. Prints one JSON line: each product's GFLOP/s and the combined rate
 * (total flops / total time, as if one step did each product once: the products' share
 * of the step weights them as in the model).
 */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    const char *name;
    int M, K, N;              /* C (M,N) = op(A) (M,K) op(B) (K,N) */
    CBLAS_TRANSPOSE ta, tb;
} Product;

/* Seconds per call of one product (median-free: total time / calls). */
static double time_product(const Product *p, float *A, float *B, float *C, double min_seconds) {
    int lda = p->ta == CblasNoTrans ? p->K : p->M;
    int ldb = p->tb == CblasNoTrans ? p->N : p->K;
    cblas_sgemm(CblasRowMajor, p->ta, p->tb, p->M, p->N, p->K, 1.0f, A, lda, B, ldb, 0.0f, C, p->N);
    int calls = 0;
    double t0 = now(), t;
    do {
        cblas_sgemm(CblasRowMajor, p->ta, p->tb, p->M, p->N, p->K, 1.0f, A, lda, B, ldb, 0.0f, C,
                    p->N);
        calls++;
        t = now() - t0;
    } while (t < min_seconds);
    return t / calls;
}

int main(int argc, char **argv) {
    int threads = 2, n = 2048, d = 256, V = 8192, k = 16, U = -1;
    double seconds = 0.3;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--n")) n = atoi(v);
        else if (!strcmp(a, "--d")) d = atoi(v);
        else if (!strcmp(a, "--vocab")) V = atoi(v);
        else if (!strcmp(a, "--senses")) k = atoi(v);
        else if (!strcmp(a, "--unique")) U = atoi(v);
        else if (!strcmp(a, "--seconds")) seconds = atof(v);
        else {
            fprintf(stderr, "sgemm: unknown option %s\n", a);
            return 2;
        }
    }
    if (U < 0) U = n;
    if (threads < 1 || n < 1 || d < 1 || V < 1 || k < 1 || U < 1) {
        fprintf(stderr, "sgemm: sizes must be positive\n");
        return 2;
    }
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    int S = 4 * d;
    /* (rows, in, out) of each weight product, rows-major y = x W */
    struct { const char *name; int rows, in, out; int tied; } w[] = {
        {"qkv", n, d, 3 * d, 0},       {"attn_proj", n, d, d, 0},
        {"mlp_fc", n, d, 4 * d, 0},    {"mlp_proj", n, 4 * d, d, 0},
        {"sense_fc", U, d, S, 0},      {"sense_proj", U, S, d, 0},
        {"sense_final_fc", U, d, S, 0}, {"sense_final_proj", U, S, k * d, 0},
        {"sense_qk", n, d, 2 * d, 0},  {"logits", n, d, V, 1},
    };
    int nw = (int)(sizeof w / sizeof w[0]);
    size_t maxel = 0;
    for (int i = 0; i < nw; i++) {
        size_t a = (size_t)w[i].rows * w[i].in, b = (size_t)w[i].in * w[i].out,
               c = (size_t)w[i].rows * w[i].out;
        if (a > maxel) maxel = a;
        if (b > maxel) maxel = b;
        if (c > maxel) maxel = c;
    }
    float *A = malloc(maxel * sizeof(float)), *B = malloc(maxel * sizeof(float)),
          *C = malloc(maxel * sizeof(float));
    if (!A || !B || !C) {
        fprintf(stderr, "sgemm: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < maxel; i++) {
        A[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
        B[i] = (float)((i * 40503u) % 1000) * 1e-3f - 0.5f;
    }
    double total_flops = 0, total_time = 0;
    printf("{\"threads\": %d, \"blas_core\": \"%s\", \"products\": {", threads,
           openblas_get_corename());
    for (int i = 0; i < nw; i++) {
        int r = w[i].rows, in = w[i].in, out = w[i].out;
        /* forward, input gradient, weight gradient */
        Product p[3];
        if (!w[i].tied) {
            p[0] = (Product){"fwd", r, in, out, CblasNoTrans, CblasNoTrans};
            p[1] = (Product){"dinp", r, out, in, CblasNoTrans, CblasTrans};
            p[2] = (Product){"dw", in, r, out, CblasTrans, CblasNoTrans};
        } else { /* E (V, d) = (out, in) */
            p[0] = (Product){"fwd", r, in, out, CblasNoTrans, CblasTrans};
            p[1] = (Product){"dinp", r, out, in, CblasNoTrans, CblasNoTrans};
            p[2] = (Product){"dw", out, r, in, CblasTrans, CblasNoTrans};
        }
        printf("%s\"%s\": {\"shape\": [%d, %d, %d]", i ? ", " : "", w[i].name, r, in, out);
        for (int j = 0; j < 3; j++) {
            double sec = time_product(&p[j], A, B, C, seconds);
            double flops = 2.0 * p[j].M * p[j].K * p[j].N;
            total_flops += flops;
            total_time += sec;
            printf(", \"%s\": %.1f", p[j].name, flops / sec * 1e-9);
        }
        printf("}");
        fflush(stdout);
    }
    printf("}, \"combined_gflops\": %.1f}\n", total_flops / total_time * 1e-9);
    free(A);
    free(B);
    free(C);
    return 0;
}
