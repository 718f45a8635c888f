/* Atomic file and directory writes, and error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "../common/rng.h"

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bp-test-fileio-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    remove_tree(tmpdir);
    return 0;
}

static void test_write_then_read(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/a.txt", tmpdir);
    BpError err = {0};
    assert_int_equal(write_file_atomic(path, "hello", 5, &err), 0);
    char *data;
    size_t len;
    assert_int_equal(read_file(path, &data, &len, &err), 0);
    assert_int_equal(len, 5);
    assert_string_equal(data, "hello");
    free(data);
}

static void test_abort_keeps_old_content(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/b.txt", tmpdir);
    BpError err = {0};
    assert_int_equal(write_file_atomic(path, "old", 3, &err), 0);
    AtomicFile af;
    assert_int_equal(atomic_open(&af, path, &err), 0);
    assert_int_equal(atomic_write(&af, "new content", 11, &err), 0);
    atomic_abort(&af);
    char *data;
    size_t len;
    assert_int_equal(read_file(path, &data, &len, &err), 0);
    assert_string_equal(data, "old");
    free(data);
    assert_false(file_exists(af.tmp_path));
}

static void test_missing_file_names_path(void **state) {
    (void)state;
    BpError err = {0};
    char *data;
    size_t len;
    assert_int_equal(read_file("/nonexistent/x.json", &data, &len, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/x.json"));
    assert_non_null(strstr(err.msg, "No such file"));
}

static void test_full_disk_is_an_error(void **state) {
    (void)state;
    if (access("/dev/full", W_OK) != 0) skip();
    /* /dev/full cannot be renamed over, but the write itself must fail first. */
    AtomicFile af = {0};
    BpError err = {0};
    af.fp = fopen("/dev/full", "wb");
    assert_non_null(af.fp);
    snprintf(af.path, sizeof af.path, "/dev/full");
    char big[1 << 16] = {0};
    int rc = atomic_write(&af, big, sizeof big, &err);
    if (rc == 0) rc = atomic_commit(&af, &err);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err.msg, "No space left"));
}

static void test_dir_commit_swaps_whole_directory(void **state) {
    (void)state;
    char dir[512], staging[600], path[700];
    BpError err = {0};
    snprintf(dir, sizeof dir, "%s/ckpt", tmpdir);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(dir_stage(dir, staging, sizeof staging, &err), 0);
        char content[32];
        snprintf(content, sizeof content, "round %d", round);
        path_join(path, sizeof path, staging, "f.txt", &err);
        assert_int_equal(write_file_atomic(path, content, strlen(content), &err), 0);
        assert_int_equal(dir_commit(staging, dir, &err), 0);
        path_join(path, sizeof path, dir, "f.txt", &err);
        char *data;
        size_t len;
        assert_int_equal(read_file(path, &data, &len, &err), 0);
        assert_string_equal(data, content);
        free(data);
        assert_false(dir_exists(staging));
    }
}

static void test_dir_abort_leaves_old(void **state) {
    (void)state;
    char dir[512], staging[600], path[700];
    BpError err = {0};
    snprintf(dir, sizeof dir, "%s/keep", tmpdir);
    assert_int_equal(dir_stage(dir, staging, sizeof staging, &err), 0);
    path_join(path, sizeof path, staging, "f.txt", &err);
    assert_int_equal(write_file_atomic(path, "v1", 2, &err), 0);
    assert_int_equal(dir_commit(staging, dir, &err), 0);
    assert_int_equal(dir_stage(dir, staging, sizeof staging, &err), 0);
    dir_abort(staging);
    assert_false(dir_exists(staging));
    path_join(path, sizeof path, dir, "f.txt", &err);
    assert_true(file_exists(path));
}

static void test_write_through_link_and_device(void **state) {
    (void)state;
    char target[512], link[512];
    BpError err = {0};
    snprintf(target, sizeof target, "%s/target.txt", tmpdir);
    snprintf(link, sizeof link, "%s/link.txt", tmpdir);
    assert_int_equal(write_file_atomic(target, "old", 3, &err), 0);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(write_file_atomic(link, "new", 3, &err), 0);
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    char *data;
    size_t len;
    assert_int_equal(read_file(target, &data, &len, &err), 0);
    assert_string_equal(data, "new");
    free(data);
    /* A dangling link gets its target created. */
    char dangling[512], missing[512];
    snprintf(dangling, sizeof dangling, "%s/dangling.txt", tmpdir);
    snprintf(missing, sizeof missing, "%s/missing.txt", tmpdir);
    assert_int_equal(symlink("missing.txt", dangling), 0);
    assert_int_equal(write_file_atomic(dangling, "made", 4, &err), 0);
    assert_int_equal(read_file(missing, &data, &len, &err), 0);
    assert_string_equal(data, "made");
    free(data);
    /* A device is written in place, never renamed over. */
    assert_int_equal(write_file_atomic("/dev/null", "x", 1, &err), 0);
    assert_int_equal(stat("/dev/null", &st), 0);
    assert_true(S_ISCHR(st.st_mode));
}

static void test_rng_is_deterministic_and_normal(void **state) {
    (void)state;
    Rng a, b;
    rng_seed(&a, 42);
    rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) assert_true(rng_next(&a) == rng_next(&b));
    double sum = 0, sumsq = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        double x = rng_normal(&a);
        sum += x;
        sumsq += x * x;
    }
    assert_true(fabs(sum / n) < 0.01);
    assert_true(fabs(sumsq / n - 1.0) < 0.02);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_then_read),
        cmocka_unit_test(test_abort_keeps_old_content),
        cmocka_unit_test(test_missing_file_names_path),
        cmocka_unit_test(test_full_disk_is_an_error),
        cmocka_unit_test(test_dir_commit_swaps_whole_directory),
        cmocka_unit_test(test_dir_abort_leaves_old),
        cmocka_unit_test(test_write_through_link_and_device),
        cmocka_unit_test(test_rng_is_deterministic_and_normal),
    };
    return cmocka_run_group_tests_name("common/fileio", tests, setup, teardown);
}
