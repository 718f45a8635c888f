/* The pieces of data-parallel training that one process can check: the sharded data
 * loader (N slices of batch B are one process's batch N x B, and a run may change N on
 * a resume without serving a window twice in an epoch), dropout masks of a slice equal
 * to the global batch's rows, the ZeRO-1 optimizer shard, sharded validation, and
 * train/dist.h's single-process behaviour without an MPI launcher. The runs over
 * several processes are tests/train_mpi.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "../train/adamw.h"
#include "../train/dataloader.h"
#include "../train/dist.h"
#include "../train/evaluate.h"
#include "train_fixture.h"

static int setup(void **state) {
    (void)state;
    return setup_train_fixture("train-dist");
}

static void train_path(char *out, size_t n) { temp_dir_path(&tmp, "data.train.tok", out, n); }

/* Slices r of N (batch B) serve, together, the windows of one loader with batch N x B,
 * in the same order, across epoch ends. */
static void test_slices_make_the_global_batch(void **state) {
    (void)state;
    BpError err = {{0}};
    char path[512];
    train_path(path, sizeof path);
    const int T = 16, sizes[] = {2, 4};
    for (int k = 0; k < 2; k++) {
        int N = sizes[k], B = 8 / N;
        DataLoader whole, part[4];
        ASSERT_OK(dataloader_open(&whole, path, N * B, T, 1, 11, V, &err));
        for (int r = 0; r < N; r++) {
            ASSERT_OK(dataloader_open(&part[r], path, B, T, 1, 11, V, &err));
            dataloader_shard(&part[r], r, N);
        }
        for (int step = 0; step < 60; step++) {  /* 480 windows: past the first epoch's 187 */
            dataloader_next(&whole);
            for (int r = 0; r < N; r++) {
                dataloader_next(&part[r]);
                assert_memory_equal(part[r].starts, whole.starts + r * B, B * sizeof(uint64_t));
                assert_memory_equal(part[r].inputs, whole.inputs + r * B * T, (size_t)B * T * sizeof(int));
                assert_memory_equal(part[r].targets, whole.targets + r * B * T, (size_t)B * T * sizeof(int));
                assert_memory_equal(&part[r].pos, &whole.pos, sizeof whole.pos);
            }
        }
        assert_true(whole.pos.epoch >= 2);
        dataloader_close(&whole);
        for (int r = 0; r < N; r++) dataloader_close(&part[r]);
    }
}

/* 2 processes of batch 4 for a while, then 4 processes of batch 2 from the saved
 * position: every window of the epoch is served exactly once. */
static void test_resume_on_other_process_count_serves_each_window_once(void **state) {
    (void)state;
    BpError err = {{0}};
    char path[512];
    train_path(path, sizeof path);
    const int T = 16;
    DataLoader two[2], four[4];
    for (int r = 0; r < 2; r++) {
        ASSERT_OK(dataloader_open(&two[r], path, 4, T, 1, 3, V, &err));
        dataloader_shard(&two[r], r, 2);
    }
    const uint64_t windows = two[0].num_windows;  /* epoch 0: (3000 - 1) / 16 = 187 */
    assert_int_equal(windows, 187);
    int *served = calloc(windows * T, sizeof(int));  /* by start token */
    assert_non_null(served);
    for (int step = 0; step < 10; step++)
        for (int r = 0; r < 2; r++) {
            dataloader_next(&two[r]);
            for (int b = 0; b < 4; b++) served[two[r].starts[b]]++;
        }
    DataPosition saved = two[0].pos;
    assert_int_equal(saved.index, 80);
    for (int r = 0; r < 4; r++) {
        ASSERT_OK(dataloader_open(&four[r], path, 2, T, 1, 3, V, &err));
        dataloader_shard(&four[r], r, 4);
        dataloader_seek(&four[r], saved);
    }
    /* global index g of a step's 8 windows is r * 2 + b; those below the epoch's end are
     * epoch 0's */
    for (uint64_t served_so_far = saved.index; served_so_far < windows; served_so_far += 8)
        for (int r = 0; r < 4; r++) {
            dataloader_next(&four[r]);
            for (int b = 0; b < 2; b++)
                if (served_so_far + (uint64_t)(r * 2 + b) < windows) served[four[r].starts[b]]++;
        }
    for (uint64_t w = 0; w < windows; w++) assert_int_equal(served[w * T], 1);
    free(served);
    for (int r = 0; r < 2; r++) dataloader_close(&two[r]);
    for (int r = 0; r < 4; r++) dataloader_close(&four[r]);
}

/* Logits of rows [2, 4) of a batch of 4 under dropout: run as part of the whole batch
 * (whole, (4, T, V)), or alone with first_row `first` (part, (2, T, V)); returns the
 * largest difference between the two. */
static double slice_difference(Backpack *m, uint64_t first, float *whole, float *part) {
    BpError err = {{0}};
    const int B = 4, T = 16;
    int in[4 * 16], tg[4 * 16];
    for (int i = 0; i < B * T; i++) in[i] = (i * 7) % V, tg[i] = (i * 5 + 1) % V;
    size_t row = (size_t)T * V;
    Rng rng;
    rng_seed(&rng, 21);
    TrainOptions all = {.dropout = 0.3f, .rng = &rng};
    ASSERT_OK(backpack_forward(m, in, tg, B, T, &all, &err));
    memcpy(whole, backpack_logits(m), B * row * sizeof(float));
    rng_seed(&rng, 21);
    TrainOptions slice = {.dropout = 0.3f, .rng = &rng, .first_row = first};
    ASSERT_OK(backpack_forward(m, in + 2 * T, tg + 2 * T, 2, T, &slice, &err));
    memcpy(part, backpack_logits(m), 2 * row * sizeof(float));
    double worst = 0;
    for (size_t i = 0; i < 2 * row; i++) worst = fmax(worst, fabs((double)part[i] - whole[2 * row + i]));
    return worst;
}

/* A process holding rows [2, 4) of the global batch (first_row 2) draws that batch's
 * dropout masks: the same logits as those rows of the whole batch. In the Transformer
 * every mask is by position, so the wrong first row shows. */
static void test_dropout_masks_follow_the_global_row(void **state) {
    (void)state;
    BpError err = {{0}};
    float *whole = malloc(4 * 16 * V * sizeof(float)), *part = malloc(2 * 16 * V * sizeof(float));
    assert_true(whole && part);
    for (int arch = 0; arch < 2; arch++) {
        Backpack m;
        BackpackConfig c = tiny_model();
        if (arch) c.arch = ARCH_TRANSFORMER;
        ASSERT_OK(backpack_build(&m, &c, &err));
        backpack_init_weights(&m, 8);
        assert_true(slice_difference(&m, 2, whole, part) < 1e-6);
        double wrong = slice_difference(&m, 0, whole, part);
        if (arch) assert_true(wrong > 1e-2);
        else assert_true(wrong > 1e-6);
        backpack_free(&m);
    }
    free(whole);
    free(part);
}

/* AdamW on the shards of the parameters, one after the other, is AdamW on the whole. */
static void test_optimizer_shards_equal_the_whole(void **state) {
    (void)state;
    BpError err = {{0}};
    enum { P = 1000, N = 3 };
    ParamRange decay[2] = {{100, 250}, {600, 300}};
    AdamWConfig ac = adamw_default_config();
    float whole_p[P], part_p[P], grads[P];
    for (int i = 0; i < P; i++) whole_p[i] = part_p[i] = sinf((float)i), grads[i] = cosf(0.3f * (float)i);
    AdamW whole, shard[N];
    size_t off[N], len[N];
    ASSERT_OK(adamw_build(&whole, &ac, P, decay, 2, &err));
    for (int r = 0; r < N; r++) {
        dist_shard(P, N, r, &off[r], &len[r]);
        ASSERT_OK(adamw_build(&shard[r], &ac, P, decay, 2, &err));
        ASSERT_OK(adamw_shard(&shard[r], off[r], len[r], &err));
    }
    assert_int_equal(off[0], 0);
    assert_int_equal(len[0] + len[1] + len[2], P);
    assert_int_equal(off[2] + len[2], P);
    for (int step = 0; step < 3; step++) {
        adamw_step(&whole, whole_p, grads, 0.5f, 1e-2f);
        for (int r = 0; r < N; r++) adamw_step(&shard[r], part_p + off[r], grads + off[r], 0.5f, 1e-2f);
    }
    assert_memory_equal(whole_p, part_p, sizeof whole_p);
    for (int r = 0; r < N; r++) {
        assert_memory_equal(shard[r].m, whole.m + off[r], len[r] * sizeof(float));
        adamw_free(&shard[r]);
    }
    adamw_free(&whole);
}

/* The slices of a validation add up to the whole: loss sums and prediction counts. */
static void test_sharded_validation_adds_up(void **state) {
    (void)state;
    BpError err = {{0}};
    Backpack m;
    BackpackConfig c = tiny_model();
    ASSERT_OK(backpack_build(&m, &c, &err));
    backpack_init_weights(&m, 9);
    TokFile val;
    char path[512];
    temp_dir_path(&tmp, "data.val.tok", path, sizeof path);
    ASSERT_OK(tokfile_open(&val, path, &err));
    EvalResult whole, part;
    ASSERT_OK(evaluate_tokfile(&m, &val, 16, 4, 0, &whole, &err));  /* all 25 windows */
    assert_int_equal(whole.windows, 25);
    for (int n = 2; n <= 3; n++) {
        double sum = 0;
        uint64_t preds = 0, windows = 0;
        for (int r = 0; r < n; r++) {
            ASSERT_OK(evaluate_tokfile_shard(&m, &val, 16, 4, 0, r, n, &part, &err));
            sum += part.loss_sum;
            preds += part.predictions;
            windows += part.windows;
        }
        assert_int_equal(preds, whole.predictions);
        assert_int_equal(windows, whole.windows);
        assert_true(fabs(sum - whole.loss_sum) < 1e-5 * whole.loss_sum);
    }
    assert_int_equal(evaluate_tokfile_shard(&m, &val, 16, 4, 0, 2, 2, &part, &err), -1);
    tokfile_close(&val);
    backpack_free(&m);
}

/* Without an MPI launcher: one process, and every collective a copy or nothing. */
static void test_single_process_without_launcher(void **state) {
    (void)state;
    BpError err = {{0}};
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("PMIX_RANK");
    unsetenv("PMI_RANK");
    Dist d;
    ASSERT_OK(dist_init(&d, &err));
    assert_int_equal(d.rank, 0);
    assert_int_equal(d.size, 1);
    assert_int_equal(d.mpi, 0);
    float buf[5] = {1, 2, 3, 4, 5}, shard[5] = {0};
    dist_sum_floats(&d, buf, 5);
    assert_true(buf[4] == 5.0f);
    dist_reduce_scatter(&d, buf, shard, 5);
    assert_memory_equal(shard, buf, sizeof buf);
    double x[2] = {2.5, -1};
    dist_max_doubles(&d, x, 2);
    assert_true(x[0] == 2.5 && x[1] == -1);
    assert_int_equal(dist_first_failure(&d, 0), -1);
    assert_int_equal(dist_first_failure(&d, 1), 0);
    size_t off, len;
    dist_shard(10, 4, 1, &off, &len);  /* 3 3 2 2 */
    assert_int_equal(off, 3);
    assert_int_equal(len, 3);
    dist_shard(10, 4, 3, &off, &len);
    assert_int_equal(off, 8);
    assert_int_equal(len, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slices_make_the_global_batch),
        cmocka_unit_test(test_resume_on_other_process_count_serves_each_window_once),
        cmocka_unit_test(test_dropout_masks_follow_the_global_row),
        cmocka_unit_test(test_optimizer_shards_equal_the_whole),
        cmocka_unit_test(test_sharded_validation_adds_up),
        cmocka_unit_test(test_single_process_without_launcher),
    };
    return cmocka_run_group_tests(tests, setup, temp_dir_teardown);
}
