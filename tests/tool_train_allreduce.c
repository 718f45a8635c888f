/* tool_train_allreduce - the gradient allreduce by itself, for bench/bench_mpi.sh. Not a
 * test: it measures.
 *
 *   mpirun -np N tool_train_allreduce P ITERS
 *
 * Sums a buffer of P floats over the N processes ITERS times after one untimed warm-up,
 * with the call the trainer makes once per step (train/dist.h dist_sum_floats), and
 * prints on rank 0 one line of JSON: ranks, floats, seconds of each call, their median,
 * and bus_GBps = 2 (N - 1) / N x 4P bytes / median, the bytes each process sends and
 * receives in a ring allreduce per second.
 */
#include <stdio.h>
#include <stdlib.h>

#include "../common/fileio.h"
#include "../train/dist.h"

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: mpirun -np N tool_train_allreduce P ITERS\n");
        return 2;
    }
    size_t P = strtoull(argv[1], NULL, 10);
    int iters = atoi(argv[2]);
    BpError err = {{0}};
    Dist d;
    if (P == 0 || iters < 1 || iters > 10000) return fprintf(stderr, "tool_train_allreduce: bad P or ITERS\n"), 2;
    if (dist_init(&d, &err) != 0) return fprintf(stderr, "tool_train_allreduce: %s\n", err.msg), 1;
    float *buf = malloc(P * sizeof(float));
    double *seconds = malloc((size_t)iters * sizeof(double));
    if (dist_first_failure(&d, !buf || !seconds) >= 0) return fprintf(stderr, "tool_train_allreduce: out of memory\n"), 1;
    for (size_t i = 0; i < P; i++) buf[i] = (float)(i % 97) * 1e-3f;
    dist_sum_floats(&d, buf, P);
    for (int k = 0; k < iters; k++) {
        dist_first_failure(&d, 0);  /* start together */
        double t0 = now_seconds();
        dist_sum_floats(&d, buf, P);
        seconds[k] = now_seconds() - t0;
    }
    if (d.rank == 0) {
        printf("{\"ranks\": %d, \"floats\": %zu, \"seconds\": [", d.size, P);
        for (int k = 0; k < iters; k++) printf("%s%.6f", k ? ", " : "", seconds[k]);
        qsort(seconds, (size_t)iters, sizeof *seconds, by_value);
        double median = seconds[iters / 2];
        double bytes = 2.0 * (d.size - 1) / d.size * 4.0 * (double)P;
        printf("], \"median_s\": %.6f, \"bus_GBps\": %.3f}\n", median, bytes / median / 1e9);
    }
    free(buf);
    free(seconds);
    return 0;
}
