/* dist.h - the processes of a data-parallel run, as the trainer sees them: a rank and a
 * world size, and the few collective operations data parallelism needs. Behind it is
 * MPI (Open MPI); no other code of the project calls MPI.
 *
 * MPI is initialized only when the process was started by an MPI launcher (mpirun,
 * mpiexec or srun set OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_RANK); otherwise the run is
 * one process (rank 0 of 1) and every operation below is a copy or nothing, so the
 * binary trains without mpirun exactly as a build without MPI would.
 *
 * Every operation is collective: all ranks call it, in the same order. A rank that dies
 * makes its peers' next operation fail, and MPI's default error handler then aborts the
 * whole job (mpirun exits non-zero). Results are identical on every rank (each element
 * of a sum is reduced once and then distributed), which keeps the replicas of the
 * parameters bit-identical.
 */
#ifndef BP_DIST_H
#define BP_DIST_H

#include <stddef.h>

#include "../common/error.h"

typedef struct {
    int rank;       /* 0 .. size - 1; rank 0 writes checkpoints and metrics */
    int size;       /* number of processes */
    int mpi;        /* 1: MPI is in use */
} Dist;

/* Joins the job (MPI_Init on the first call when launched by MPI; finalized at exit). */
int dist_init(Dist *d, BpError *err);

/* The lowest rank whose `failed` is non-zero, or -1 when none is. */
int dist_first_failure(const Dist *d, int failed);

/* For a failure in the middle of a step, where the peers are already waiting in a
 * collective: prints "backpack: rank R: msg" and ends the whole job, non-zero. */
void dist_abort(const Dist *d, const char *msg) __attribute__((noreturn));

/* Element-wise sum (max) over the ranks, in place, the same result on every rank. */
void dist_sum_floats(const Dist *d, float *buf, size_t n);
void dist_sum_doubles(const Dist *d, double *buf, int n);
void dist_max_doubles(const Dist *d, double *buf, int n);

/* root's bytes into everyone's buf. */
void dist_broadcast(const Dist *d, int root, void *buf, size_t bytes);

/* all (size x bytes): rank r's `mine` at all + r * bytes, on every rank. */
void dist_allgather(const Dist *d, const void *mine, void *all, size_t bytes);

/* The shards of a flat buffer of n floats: rank r owns [offset, offset + length), the
 * first n % size ranks one element more. */
void dist_shard(size_t n, int size, int rank, size_t *offset, size_t *length);

/* shard = this rank's shard of the sum over ranks of `full` (n floats each). */
void dist_reduce_scatter(const Dist *d, const float *full, float *shard, size_t n);
/* Every rank's shard of `full` (its own part, in place) into everyone's full. */
void dist_allgather_shards(const Dist *d, float *full, size_t n);
/* Rank 0's full (n floats) receives every rank's shard (length of this rank's shard). */
void dist_gather_shards(const Dist *d, const float *shard, float *full, size_t n);

/* The largest n the shard operations take (MPI counts are int). */
size_t dist_max_shard_elements(const Dist *d);

#endif
