/* The data loader: windows and targets, determinism from the seed, saved positions,
 * epochs, and clear errors for empty, short and bad token files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "../train/dataloader.h"
#include "fixture.h"
#include "tokfile_fixture.h"

static int setup(void **state) {
    (void)state;
    return temp_dir_create(&tmp, "train-data");
}

/* ids i % vocab, except vocab + 3 (out of range) at bad_id_at. */
static void write_tokens(const char *path, uint32_t vocab, uint64_t count, uint32_t bad_id_at) {
    uint16_t *ids = malloc((count ? count : 1) * sizeof *ids);
    assert_non_null(ids);
    for (uint64_t i = 0; i < count; i++) ids[i] = (uint16_t)(i == bad_id_at ? vocab + 3 : i % vocab);
    assert_int_equal(write_token_file(path, vocab, ids, count), 0);
    free(ids);
}

static void path_in_tmp(char *out, size_t n, const char *name) { temp_dir_path(&tmp, name, out, n); }

static void test_windows_and_targets(void **state) {
    (void)state;
    char path[512];
    path_in_tmp(path, sizeof path, "a.tok");
    const uint32_t V = 1000;
    write_tokens(path, V, 501, UINT32_MAX);  /* 500 predictions: 500 / 10 = 50 windows */
    DataLoader dl;
    BpError err = {{0}};
    assert_int_equal(dataloader_open(&dl, path, 4, 10, 1, 7, 1000, &err), 0);
    assert_int_equal(dataloader_num_tokens(&dl), 501);
    assert_int_equal(dl.num_windows, 50);
    /* Epoch 0 visits every window once (shift 0): starts are multiples of 10. */
    int seen[50] = {0};
    for (int batch = 0; batch < 12; batch++) {  /* 48 windows */
        dataloader_next(&dl);
        for (int b = 0; b < 4; b++) {
            int first = dl.inputs[b * 10];
            assert_int_equal(first % 10, 0);
            seen[first / 10]++;
            for (int t = 0; t < 10; t++) {
                assert_int_equal(dl.inputs[b * 10 + t], first + t);
                assert_int_equal(dl.targets[b * 10 + t], first + t + 1);
            }
        }
    }
    int visited = 0;
    for (int w = 0; w < 50; w++) {
        assert_true(seen[w] <= 1);
        visited += seen[w];
    }
    assert_int_equal(visited, 48);
    /* The next batch crosses into epoch 1. */
    dataloader_next(&dl);
    assert_int_equal(dl.pos.epoch, 1);
    assert_int_equal(dl.pos.index, 2);
    dataloader_close(&dl);
}

static void test_same_seed_same_batches_and_seek(void **state) {
    (void)state;
    char path[512];
    path_in_tmp(path, sizeof path, "b.tok");
    write_tokens(path, 5000, 3001, UINT32_MAX);
    DataLoader a, b, c;
    BpError err = {{0}};
    assert_int_equal(dataloader_open(&a, path, 3, 16, 1, 42, 5000, &err), 0);
    assert_int_equal(dataloader_open(&b, path, 3, 16, 1, 42, 5000, &err), 0);
    assert_int_equal(dataloader_open(&c, path, 3, 16, 1, 43, 5000, &err), 0);
    int differs = 0;
    DataPosition saved = {0};
    int *after = malloc(200 * 48 * sizeof(int));
    for (int i = 0; i < 200; i++) {  /* ~3 epochs of 187 windows */
        dataloader_next(&a);
        dataloader_next(&b);
        dataloader_next(&c);
        assert_memory_equal(a.inputs, b.inputs, 48 * sizeof(int));
        assert_memory_equal(a.targets, b.targets, 48 * sizeof(int));
        differs |= memcmp(a.inputs, c.inputs, 48 * sizeof(int)) != 0;
        if (i == 77) saved = a.pos;
        if (i > 77) memcpy(after + (i - 78) * 48, a.inputs, 48 * sizeof(int));
    }
    assert_true(differs);  /* another seed, another order */
    assert_true(a.pos.epoch >= 3);
    /* A fresh loader moved to the saved position serves the same batches. */
    DataLoader d;
    assert_int_equal(dataloader_open(&d, path, 3, 16, 1, 42, 5000, &err), 0);
    dataloader_seek(&d, saved);
    for (int i = 78; i < 200; i++) {
        dataloader_next(&d);
        assert_memory_equal(d.inputs, after + (i - 78) * 48, 48 * sizeof(int));
    }
    free(after);
    dataloader_close(&a);
    dataloader_close(&b);
    dataloader_close(&c);
    dataloader_close(&d);
}

static void test_later_epochs_shift_windows(void **state) {
    (void)state;
    char path[512];
    path_in_tmp(path, sizeof path, "c.tok");
    write_tokens(path, 60000, 2001, UINT32_MAX);
    DataLoader dl;
    BpError err = {{0}};
    assert_int_equal(dataloader_open(&dl, path, 1, 20, 1, 3, 60000, &err), 0);
    int shifted = 0;
    for (int i = 0; i < 100 * 6; i++) {
        dataloader_next(&dl);
        int first = dl.inputs[0];
        assert_true(first + 20 <= 2000);  /* the target of the last input exists */
        if (dl.pos.epoch > 0 && first % 20 != 0) shifted = 1;
    }
    assert_true(shifted);
    dataloader_close(&dl);
}

static void test_sequential_order(void **state) {
    (void)state;
    char path[512];
    path_in_tmp(path, sizeof path, "d.tok");
    write_tokens(path, 100, 41, UINT32_MAX);  /* 4 windows of 10 */
    DataLoader dl;
    BpError err = {{0}};
    assert_int_equal(dataloader_open(&dl, path, 2, 10, 0, 9, 100, &err), 0);
    int firsts[6];
    for (int i = 0; i < 3; i++) {
        dataloader_next(&dl);
        firsts[2 * i] = dl.inputs[0];
        firsts[2 * i + 1] = dl.inputs[10];
    }
    int expect[6] = {0, 10, 20, 30, 0, 10};
    assert_memory_equal(firsts, expect, sizeof expect);
    dataloader_close(&dl);
}

static void test_bad_files(void **state) {
    (void)state;
    char path[512];
    DataLoader dl;
    BpError err = {{0}};

    path_in_tmp(path, sizeof path, "empty.tok");
    write_tokens(path, 100, 0, UINT32_MAX);
    assert_int_equal(dataloader_open(&dl, path, 2, 8, 1, 1, 100, &err), -1);
    assert_non_null(strstr(err.msg, "empty.tok"));
    assert_non_null(strstr(err.msg, "empty"));

    path_in_tmp(path, sizeof path, "short.tok");
    write_tokens(path, 100, 8, UINT32_MAX);  /* needs 9 for one window of 8 */
    assert_int_equal(dataloader_open(&dl, path, 2, 8, 1, 1, 100, &err), -1);
    assert_non_null(strstr(err.msg, "short.tok"));
    assert_non_null(strstr(err.msg, "too short"));
    write_tokens(path, 100, 9, UINT32_MAX);  /* exactly one window: fine */
    assert_int_equal(dataloader_open(&dl, path, 2, 8, 1, 1, 100, &err), 0);
    dataloader_next(&dl);
    assert_int_equal(dl.inputs[0], 0);
    assert_int_equal(dl.inputs[8], 0);  /* the one window again, next epoch */
    dataloader_close(&dl);

    path_in_tmp(path, sizeof path, "badid.tok");
    write_tokens(path, 100, 50, 17);
    assert_int_equal(dataloader_open(&dl, path, 2, 8, 1, 1, 100, &err), -1);
    assert_non_null(strstr(err.msg, "badid.tok"));
    assert_non_null(strstr(err.msg, "17"));  /* the position of the bad id */

    path_in_tmp(path, sizeof path, "bigvocab.tok");
    write_tokens(path, 500, 50, UINT32_MAX);
    assert_int_equal(dataloader_open(&dl, path, 2, 8, 1, 1, 100, &err), -1);
    assert_non_null(strstr(err.msg, "vocabulary"));

    path_in_tmp(path, sizeof path, "missing.tok");
    assert_int_equal(dataloader_open(&dl, path, 2, 8, 1, 1, 100, &err), -1);
    assert_non_null(strstr(err.msg, "missing.tok"));

    path_in_tmp(path, sizeof path, "garbage.tok");
    assert_int_equal(write_file_atomic(path, "not a token file at all", 23, &err), 0);
    assert_int_equal(dataloader_open(&dl, path, 2, 8, 1, 1, 100, &err), -1);
    assert_non_null(strstr(err.msg, "garbage.tok"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_windows_and_targets),
        cmocka_unit_test(test_same_seed_same_batches_and_seek),
        cmocka_unit_test(test_later_epochs_shift_windows),
        cmocka_unit_test(test_sequential_order),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, setup, temp_dir_teardown);
}
