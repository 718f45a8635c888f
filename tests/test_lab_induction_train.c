/* The induction lab end to end, in seconds: the ideal memories solve the task without
 * training; a seeded small 2-layer run learns it (and its W_O2 memory) while a 1-layer
 * run cannot; the metrics file has one line per measure; bad options are refused.
 * The corpus is a made-up Markov chain (each of 40 letters prefers four successors), so
 * the suite needs nothing outside the repository. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "../lab/induction_train.h"

#include <cblas.h>
#include <omp.h>

static InductionStats stats;

static int setup(void **state) {
    (void)state;
    /* Small products: one thread is faster than many on a shared machine. */
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
    enum { LETTERS = 40, LEN = 40000 };
    char *text = malloc(LEN);
    int next[LETTERS][4];
    Rng r;
    rng_seed(&r, 2023);
    for (int i = 0; i < LETTERS; i++)
        for (int j = 0; j < 4; j++) next[i][j] = (int)rng_below(&r, LETTERS);
    int c = 0;
    for (int i = 0; i < LEN; i++) {
        float u = rng_uniform(&r);
        c = u < 0.4f ? next[c][0] : u < 0.7f ? next[c][1] : u < 0.9f ? next[c][2] : u < 0.97f ? next[c][3]
                                                                                     : (int)rng_below(&r, LETTERS);
        text[i] = (char)('0' + c);
    }
    BpError err = {{0}};
    int rc = induction_stats_from_text(&stats, text, LEN, 32, &err);
    free(text);
    return rc == 0 ? temp_dir_create(&tmp, "induction-train") : -1;
}

static int teardown(void **state) {
    (void)state;
    induction_stats_free(&stats);
    temp_dir_remove(&tmp);
    return 0;
}

static InductionMeasure run(InductionRun *r) {
    InductionMeasure m;
    BpError err = {{0}};
    if (induction_run(r, &stats, NULL, NULL, &m, &err) != 0) fail_msg("%s", err.msg);
    return m;
}

/* Small: N = 32, T = 33, K = 3, batch 32. */
static InductionRun small_run(int layers, int steps) {
    InductionRun r;
    induction_run_defaults(&r);
    r.model.d = 64;
    r.model.n_layer = layers;
    r.task = (InductionTask){.n_triggers = 3, .seq_len = 33};
    r.batch = 32;
    r.steps = steps;
    r.eval_every = 0;
    r.eval_seqs = 128;
    r.seed = 7;
    return r;
}

static void test_ideal_memories(void **state) {
    (void)state;
    InductionRun r;
    induction_run_defaults(&r);
    r.task = (InductionTask){.n_triggers = 5, .seq_len = 65};
    r.ideal = 1;
    r.eval_seqs = 128;
    InductionMeasure m = run(&r);
    assert_int_equal(m.step, 0);
    assert_true(m.n_in_context > 500);
    if (!(m.accuracy >= 0.95)) fail_msg("ideal memories: in-context accuracy %.3f", m.accuracy);
    assert_true(m.recalls.wo2 == 1.0 && m.recalls.wk2 == 1.0 && m.recalls.wk1 == 1.0);
    /* The same at unit-norm embeddings (the spec's N(0, 1/d)). */
    r.model.embed_std = 0;
    r.ideal_gamma = 10;
    m = run(&r);
    if (!(m.accuracy >= 0.95)) fail_msg("ideal memories, unit embeddings: in-context accuracy %.3f", m.accuracy);
    /* A 1-layer model has no ideal memories. */
    r.model.n_layer = 1;
    BpError err = {{0}};
    assert_int_equal(induction_run(&r, &stats, NULL, NULL, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "2 layers"));
}

static void test_two_layers_learn_one_does_not(void **state) {
    (void)state;
    InductionRun r = small_run(2, 300);
    InductionMeasure before = {0};
    r.steps = 0;
    before = run(&r);
    r.steps = 300;
    InductionMeasure two = run(&r);
    r = small_run(1, 300);
    InductionMeasure one = run(&r);
    printf("untrained %.3f, 2 layers %.3f (W_O2 %.3f W_K2 %.3f W_K1 %.3f), 1 layer %.3f\n", before.accuracy,
           two.accuracy, two.recalls.wo2, two.recalls.wk2, two.recalls.wk1, one.accuracy);
    assert_true(before.accuracy < 0.2);
    assert_true(two.accuracy >= 0.9);
    assert_true(two.recalls.wo2 >= 0.9);
    assert_true(one.accuracy <= 0.5);
    assert_true(one.recalls.wk2 == -1);   /* undefined with one layer */
}

static void test_metrics_file_and_freeze(void **state) {
    (void)state;
    InductionRun r = small_run(2, 20);
    r.eval_every = 10;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/run", tmp.path);
    r.out_dir = dir;
    /* W_K1 frozen the whole run: it keeps its random value, so its recall does not move */
    r.n_freezes = 1;
    r.freeze_mask[0] = INDUCTION_TRAIN_WK1;
    r.freeze_until[0] = 1000;
    InductionMeasure m = run(&r);
    r.steps = 0;
    r.out_dir = NULL;
    InductionMeasure m0 = run(&r);
    assert_true(m.recalls.wk1 == m0.recalls.wk1);
    char path[600], *text;
    size_t len;
    BpError err = {{0}};
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    assert_int_equal(read_file(path, &text, &len, &err), 0);
    int lines = 0;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    assert_int_equal(lines, 3);   /* steps 0, 10, 20 */
    assert_non_null(strstr(text, "{\"step\": 0, \"train_loss\": null, \"accuracy\": "));
    assert_non_null(strstr(text, "{\"step\": 20, "));
    free(text);
}

static void test_rejects_bad_runs(void **state) {
    (void)state;
    BpError err = {{0}};
    InductionRun r = small_run(2, 1);
    r.task.n_triggers = 32;
    assert_int_equal(induction_run(&r, &stats, NULL, NULL, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "--k 32"));
    r = small_run(4, 1);
    assert_int_equal(induction_run(&r, &stats, NULL, NULL, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "--layers 4"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ideal_memories),
        cmocka_unit_test(test_two_layers_learn_one_does_not),
        cmocka_unit_test(test_metrics_file_and_freeze),
        cmocka_unit_test(test_rejects_bad_runs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
