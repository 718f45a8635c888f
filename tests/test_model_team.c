/* The job-sharing team of model/team.h: every chunk of every job runs exactly once, its
 * effects are visible when team_run returns, the helper takes part, and nothing waits
 * for a helper that is not running. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../model/team.h"

enum { MAX_CHUNKS = 64 };

typedef struct {
    int job;                        /* which job this is */
    int runs[MAX_CHUNKS];           /* times each chunk ran (plain ints: one writer each) */
    int ran_on[MAX_CHUNKS];         /* the thread that ran it */
    int seen_job[MAX_CHUNKS];       /* ctx->job as the chunk saw it */
} Job;

static void count_chunk(void *ctx, int chunk, int thread) {
    Job *j = ctx;
    j->runs[chunk]++;
    j->ran_on[chunk] = thread;
    j->seen_job[chunk] = j->job;
    /* a little work, so that both threads get chunks */
    volatile double x = 0;
    for (int i = 0; i < 200; i++) x = x + i * 0.5;
}

static void check_job(const Job *j, int n) {
    for (int c = 0; c < n; c++) {
        assert_int_equal(j->runs[c], 1);
        assert_int_equal(j->seen_job[c], j->job);
    }
    for (int c = n; c < MAX_CHUNKS; c++) assert_int_equal(j->runs[c], 0);
}

static void test_without_helpers(void **state) {
    (void)state;
    Team team, *t = &team;
    team_begin(t);
    Job j = {.job = 7};
    team_run(t, count_chunk, &j, 13);
    check_job(&j, 13);
    for (int c = 0; c < 13; c++) assert_int_equal(j.ran_on[c], 0);
    team_run(t, count_chunk, &j, 0); /* nothing to do */
    check_job(&j, 13);
    team_finish(t);
}

/* Runs lead(t, ctx) on thread 0 of a two-thread region while the other thread serves,
 * after waiting for ready(ctx) when ready is given; returns the region's thread count. */
static int with_team(Team *t, void (*lead)(Team *, void *), int (*ready)(void *), void *ctx) {
    int threads = 0;
    team_begin(t);
#pragma omp parallel num_threads(2)
    {
        if (omp_get_thread_num() == 0) {
            threads = omp_get_num_threads();
            lead(t, ctx);
            team_finish(t);
        } else {
            if (ready)
                while (!ready(ctx)) {}
            team_serve(t);
        }
    }
    return threads;
}

enum { JOBS = 4000, ALONE_JOBS = 50 };

static void many_jobs(Team *t, void *ctx) {
    Job *jobs = ctx;
    for (int i = 0; i < JOBS; i++) {
        jobs[i].job = i;
        const int n = 1 + i % MAX_CHUNKS;
        team_run(t, count_chunk, &jobs[i], n);
        /* every chunk is done and visible now */
        int total = 0;
        for (int c = 0; c < n; c++) total += jobs[i].runs[c];
        if (total != n) jobs[i].job = -1; /* reported after the region */
    }
}

/* Many jobs of varying size through two threads: exactly-once, visibility, and the
 * helper's share. */
static void test_two_threads(void **state) {
    (void)state;
    Team team;
    Job *jobs = calloc(JOBS, sizeof *jobs);
    const int threads = with_team(&team, many_jobs, NULL, jobs);
    int helper_chunks = 0;
    for (int i = 0; i < JOBS; i++) {
        assert_int_equal(jobs[i].job, i);
        check_job(&jobs[i], 1 + i % MAX_CHUNKS);
        for (int c = 0; c < 1 + i % MAX_CHUNKS; c++) helper_chunks += jobs[i].ran_on[c] != 0;
    }
    print_message("%d threads; the helper ran %d chunks\n", threads, helper_chunks);
    if (threads == 2) assert_true(helper_chunks > 0);
    free(jobs);
}

typedef struct {
    Job jobs[ALONE_JOBS];
    Job late;
    atomic_int alone_done;
} AloneRun;

static void jobs_alone_then_late(Team *t, void *ctx) {
    AloneRun *r = ctx;
    for (int i = 0; i < ALONE_JOBS; i++) {
        r->jobs[i].job = i;
        team_run(t, count_chunk, &r->jobs[i], MAX_CHUNKS);
    }
    atomic_store(&r->alone_done, 1);
    r->late.job = ALONE_JOBS;
    team_run(t, count_chunk, &r->late, MAX_CHUNKS); /* the helper may join now */
}

static int alone_done(void *ctx) { return atomic_load(&((AloneRun *)ctx)->alone_done); }

/* A helper that is not running holds nothing up: thread 0 finishes its jobs alone while
 * the helper waits for it (were team_run to wait for the helper, this would hang). */
static void test_absent_helper(void **state) {
    (void)state;
    Team team;
    AloneRun *r = calloc(1, sizeof *r);
    const int threads = with_team(&team, jobs_alone_then_late, alone_done, r);
    for (int i = 0; i < ALONE_JOBS; i++) {
        check_job(&r->jobs[i], MAX_CHUNKS);
        for (int c = 0; c < MAX_CHUNKS; c++) assert_int_equal(r->jobs[i].ran_on[c], 0);
    }
    check_job(&r->late, MAX_CHUNKS);
    print_message("%d threads\n", threads);
    free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_without_helpers),
        cmocka_unit_test(test_two_threads),
        cmocka_unit_test(test_absent_helper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
