/* dist.c - data-parallel collectives over MPI (see dist.h). */
#include "dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int launched_by_mpi(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

static void finalize_at_exit(void) {
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
}

int dist_init(Dist *d, BpError *err) {
    *d = (Dist){.rank = 0, .size = 1, .mpi = 0};
    if (!launched_by_mpi()) return 0;
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
        int provided;
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return bp_fail(err, "MPI_Init failed");
        atexit(finalize_at_exit);
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    d->mpi = 1;
    return 0;
}

int dist_first_failure(const Dist *d, int failed) {
    if (!d->mpi || d->size == 1) return failed ? 0 : -1;
    int mine = failed ? d->rank : d->size, first;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return first < d->size ? first : -1;
}

void dist_abort(const Dist *d, const char *msg) {
    fprintf(stderr, "backpack: rank %d: %s\n", d->rank, msg);
    fflush(stderr);
    if (d->mpi) MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

/* Large buffers go in pieces of at most 2^30 elements (MPI counts are int). */
#define CHUNK ((size_t)1 << 30)

void dist_sum_floats(const Dist *d, float *buf, size_t n) {
    if (!d->mpi || d->size == 1) return;
    for (size_t i = 0; i < n; i += CHUNK) {
        int count = (int)(n - i < CHUNK ? n - i : CHUNK);
        MPI_Allreduce(MPI_IN_PLACE, buf + i, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
}

void dist_sum_doubles(const Dist *d, double *buf, int n) {
    if (d->mpi && d->size > 1) MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

void dist_max_doubles(const Dist *d, double *buf, int n) {
    if (d->mpi && d->size > 1) MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
}

void dist_broadcast(const Dist *d, int root, void *buf, size_t bytes) {
    if (!d->mpi || d->size == 1) return;
    for (size_t i = 0; i < bytes; i += CHUNK) {
        int count = (int)(bytes - i < CHUNK ? bytes - i : CHUNK);
        MPI_Bcast((char *)buf + i, count, MPI_BYTE, root, MPI_COMM_WORLD);
    }
}

void dist_allgather(const Dist *d, const void *mine, void *all, size_t bytes) {
    if (!d->mpi || d->size == 1) {
        memmove(all, mine, bytes);
        return;
    }
    MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
}

void dist_shard(size_t n, int size, int rank, size_t *offset, size_t *length) {
    size_t base = n / (size_t)size, extra = n % (size_t)size, r = (size_t)rank;
    *length = base + (r < extra);
    *offset = r * base + (r < extra ? r : extra);
}

size_t dist_max_shard_elements(const Dist *d) {
    return d->mpi && d->size > 1 ? (size_t)INT_MAX : SIZE_MAX;
}

/* counts (size ints) then displacements (size ints) of every rank's shard, for the
 * v-collectives (n <= dist_max_shard_elements); the caller frees. */
static int *shard_layout(const Dist *d, size_t n) {
    int *counts = malloc((size_t)d->size * 2 * sizeof(int));
    if (!counts) dist_abort(d, "out of memory for the shard layout");
    for (int r = 0; r < d->size; r++) {
        size_t off, len;
        dist_shard(n, d->size, r, &off, &len);
        counts[r] = (int)len;
        counts[d->size + r] = (int)off;
    }
    return counts;
}

void dist_reduce_scatter(const Dist *d, const float *full, float *shard, size_t n) {
    size_t off, len;
    dist_shard(n, d->size, d->rank, &off, &len);
    if (!d->mpi || d->size == 1) {
        memmove(shard, full + off, len * sizeof(float));
        return;
    }
    int *counts = shard_layout(d, n);
    MPI_Reduce_scatter(full, shard, counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    free(counts);
}

void dist_allgather_shards(const Dist *d, float *full, size_t n) {
    if (!d->mpi || d->size == 1) return;
    int *counts = shard_layout(d, n);
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, full, counts, counts + d->size, MPI_FLOAT,
                   MPI_COMM_WORLD);
    free(counts);
}

void dist_gather_shards(const Dist *d, const float *shard, float *full, size_t n) {
    size_t off, len;
    dist_shard(n, d->size, d->rank, &off, &len);
    if (!d->mpi || d->size == 1) {
        memmove(full + off, shard, len * sizeof(float));
        return;
    }
    int *counts = shard_layout(d, n);
    MPI_Gatherv(shard, (int)len, MPI_FLOAT, full, counts, counts + d->size, MPI_FLOAT, 0,
                MPI_COMM_WORLD);
    free(counts);
}
