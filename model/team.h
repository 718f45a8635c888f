/* team.h - the OpenMP threads of one parallel region, sharing jobs without barriers.
 *
 * Batch-1 inference is a chain of small steps: a matrix-vector product of a few
 * hundred microseconds, some serial work on one vector, the next product. An OpenMP
 * parallel region per product costs a thread wake-up each time (tens of microseconds
 * with OMP_WAIT_POLICY=PASSIVE, far more when the other core is busy), as much as the
 * product itself gains. A Team instead opens one region for a whole token: thread 0
 * runs the step and publishes each product as a job of independent chunks; every
 * thread, thread 0 included, claims chunks until none is left, and thread 0 goes on
 * once all are done. Nothing waits for a thread that is not running: a helper that
 * was never scheduled leaves its chunks to thread 0, so a busy machine costs at most
 * the chunk a descheduled helper holds.
 *
 * Use, inside `#pragma omp parallel`:
 *     if (omp_get_thread_num() == 0) { ... team_run(t, fn, ctx, n) ...; team_finish(t); }
 *     else team_serve(t);
 * after team_begin(t) outside the region. team_run works the same with no helpers (a
 * region of one thread, or no region at all). Helpers spin briefly between jobs, then
 * yield the core. */
#ifndef BP_TEAM_H
#define BP_TEAM_H

#include <stdatomic.h>
#include <stdint.h>

/* Runs chunk `chunk` of a job on thread `thread` (0 = the caller of team_run). */
typedef void (*TeamJob)(void *ctx, int chunk, int thread);

typedef struct Team {
    /* (job sequence number << 32) | next unclaimed chunk; a chunk is claimed by
     * compare-and-swap, so a slow helper can never claim a chunk of a newer job. */
    _Atomic uint64_t claim;
    _Atomic uint32_t done;     /* chunks of the current job finished */
    _Atomic int stop;          /* set by team_finish: helpers return */
    uint32_t seq;              /* the current job's sequence number (thread 0's) */
    TeamJob fn;                /* the current job, valid while its chunks are claimable */
    void *ctx;
    /* int8 copies of the weights the products of this region read (quant.h), or NULL:
     * set by the step before its products (infer_kernels.h) */
    const struct QuantModel *quant;
} Team;

void team_begin(Team *t);
/* Thread 0: runs chunks 0..n_chunks-1 of fn over the team, returns when all are done.
 * The effects of every chunk are visible to the caller on return. */
void team_run(Team *t, TeamJob fn, void *ctx, int n_chunks);
/* Thread 0: ends the region's jobs; the helpers' team_serve returns. */
void team_finish(Team *t);
/* Threads other than 0: runs claimed chunks until team_finish. */
void team_serve(Team *t);

#endif
