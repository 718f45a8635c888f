/* team.c - see team.h.
 *
 * The claim word packs the job's sequence number (24 bits), its chunk count and the
 * next unclaimed chunk (20 bits each). A thread claims chunk i by compare-and-swap
 * from (seq, n, i) to (seq, n, i + 1); a thread that loaded the word of an older job
 * fails the swap, since thread 0 publishes a new job only after every chunk of the
 * last one is done. For the same reason fn and ctx, read after a successful claim,
 * belong to the claimed job and stay valid until that chunk is counted done.
 * (A helper descheduled between its load and its swap for exactly 2^24 jobs could
 * misclaim; at some twenty jobs per token that is 800,000 tokens without a time slice.) */
#include "team.h"

#include <omp.h>
#include <sched.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define CHUNK_BITS 20
#define CHUNK_MASK ((1u << CHUNK_BITS) - 1)
#define SEQ_MASK 0xFFFFFFu
#define SPINS_BEFORE_YIELD 4096

static uint32_t claim_next(uint64_t c) { return (uint32_t)(c & CHUNK_MASK); }
static uint32_t claim_count(uint64_t c) { return (uint32_t)((c >> CHUNK_BITS) & CHUNK_MASK); }

void team_begin(Team *t) {
    t->seq = 0;
    t->fn = NULL;
    t->ctx = NULL;
    atomic_store_explicit(&t->done, 0, memory_order_relaxed);
    atomic_store_explicit(&t->stop, 0, memory_order_relaxed);
    atomic_store_explicit(&t->claim, 0, memory_order_release); /* job 0: no chunks */
}

/* Claims and runs one chunk of the job in `*c`; returns 0 when it has none left. */
static int work_one(Team *t, uint64_t c, int thread) {
    if (claim_next(c) >= claim_count(c)) return 0;
    if (atomic_compare_exchange_weak_explicit(&t->claim, &c, c + 1, memory_order_acq_rel,
                                              memory_order_acquire)) {
        t->fn(t->ctx, (int)claim_next(c), thread);
        atomic_fetch_add_explicit(&t->done, 1, memory_order_release);
    }
    return 1;
}

void team_run(Team *t, TeamJob fn, void *ctx, int n_chunks) {
    if (n_chunks <= 0) return;
    /* nothing to share, or more chunks than the claim word holds: run them here */
    if (n_chunks == 1 || n_chunks > (int)CHUNK_MASK) {
        for (int i = 0; i < n_chunks; i++) fn(ctx, i, 0);
        return;
    }
    t->fn = fn;
    t->ctx = ctx;
    t->seq = (t->seq + 1) & SEQ_MASK;
    atomic_store_explicit(&t->done, 0, memory_order_relaxed);
    atomic_store_explicit(&t->claim,
                          ((uint64_t)t->seq << (2 * CHUNK_BITS)) |
                              ((uint64_t)n_chunks << CHUNK_BITS),
                          memory_order_release);
    while (work_one(t, atomic_load_explicit(&t->claim, memory_order_acquire), 0)) {}
    /* only chunks a helper holds remain */
    while (atomic_load_explicit(&t->done, memory_order_acquire) < (uint32_t)n_chunks) cpu_relax();
}

void team_finish(Team *t) { atomic_store_explicit(&t->stop, 1, memory_order_release); }

void team_serve(Team *t) {
    const int thread = omp_get_thread_num();
    for (int idle = 0;;) {
        if (work_one(t, atomic_load_explicit(&t->claim, memory_order_acquire), thread)) {
            idle = 0;
            continue;
        }
        if (atomic_load_explicit(&t->stop, memory_order_acquire)) return;
        if (++idle < SPINS_BEFORE_YIELD) cpu_relax();
        else sched_yield();
    }
}
