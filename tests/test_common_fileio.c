/* Atomic file and directory writes, and error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"

#include <dirent.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "../common/rng.h"


static int setup(void **state) {
    (void)state;
    return temp_dir_create(&tmp, "fileio");
}

static int teardown(void **state) {
    (void)state;
    temp_dir_remove(&tmp);
    return 0;
}

static void test_write_then_read(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/a.txt", tmp.path);
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
    snprintf(path, sizeof path, "%s/b.txt", tmp.path);
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
    snprintf(dir, sizeof dir, "%s/ckpt", tmp.path);
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
    snprintf(dir, sizeof dir, "%s/keep", tmp.path);
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
    snprintf(target, sizeof target, "%s/target.txt", tmp.path);
    snprintf(link, sizeof link, "%s/link.txt", tmp.path);
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
    snprintf(dangling, sizeof dangling, "%s/dangling.txt", tmp.path);
    snprintf(missing, sizeof missing, "%s/missing.txt", tmp.path);
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

static void write_text(const char *dir, const char *name, const char *text) {
    char path[1024];
    BpError err = {0};
    assert_int_equal(path_join(path, sizeof path, dir, name, &err), 0);
    if (write_file_atomic(path, text, strlen(text), &err) != 0) fail_msg("%s", err.msg);
}

static int holds(const char *dir, const char *name, const char *text) {
    char path[1024], *data;
    size_t len;
    BpError err = {0};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (read_file(path, &data, &len, &err) != 0) return 0;
    int same = !strcmp(data, text);
    free(data);
    return same;
}

/* Entries of dir whose name starts with prefix. */
static int count_prefixed(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL) n += !strncmp(e->d_name, prefix, strlen(prefix));
    closedir(d);
    return n;
}

/* A save to a directory that is a symbolic link keeps the link and replaces what it
 * points at; the next save works too (it used to find its own dangling staging link and
 * fail with "File exists"). */
static void test_dir_commit_through_link(void **state) {
    (void)state;
    char base[512], target[600], link[600], staging[700];
    BpError err = {0};
    snprintf(base, sizeof base, "%s/linked", tmp.path);
    assert_int_equal(make_dirs(base, &err), 0);
    snprintf(target, sizeof target, "%s/real", base);
    snprintf(link, sizeof link, "%s/link", base);
    assert_int_equal(make_dirs(target, &err), 0);
    write_text(target, "f.txt", "old");
    assert_int_equal(symlink("real", link), 0);
    for (int round = 0; round < 2; round++) {
        char content[16];
        snprintf(content, sizeof content, "new %d", round);
        /* the second time with a trailing slash, which names the same link */
        char with_slash[700];
        snprintf(with_slash, sizeof with_slash, "%s/", link);
        const char *name = round ? with_slash : link;
        if (dir_stage(name, staging, sizeof staging, &err) != 0) fail_msg("%s", err.msg);
        write_text(staging, "f.txt", content);
        if (dir_commit(staging, name, &err) != 0) fail_msg("%s", err.msg);
        struct stat st;
        assert_int_equal(lstat(link, &st), 0);
        assert_true(S_ISLNK(st.st_mode));
        char to[64];
        ssize_t n = readlink(link, to, sizeof to - 1);
        assert_true(n > 0);
        to[n] = '\0';
        assert_string_equal(to, "real");
        assert_true(holds(target, "f.txt", content));
        assert_int_equal(count_prefixed(base, "link."), 0);
        assert_int_equal(count_prefixed(base, "real."), 0);
    }
    /* A dangling link: its target is created, the link kept. */
    char dangling[600];
    snprintf(dangling, sizeof dangling, "%s/dangling", base);
    assert_int_equal(symlink("made", dangling), 0);
    assert_int_equal(dir_stage(dangling, staging, sizeof staging, &err), 0);
    write_text(staging, "f.txt", "made");
    assert_int_equal(dir_commit(staging, dangling, &err), 0);
    struct stat st;
    assert_int_equal(lstat(dangling, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    char made[700];
    snprintf(made, sizeof made, "%s/made", base);
    assert_true(holds(made, "f.txt", "made"));
}

/* remove_tree on a link removes the link, not what it points at. */
static void test_remove_tree_keeps_link_target(void **state) {
    (void)state;
    char target[512], link[512];
    BpError err = {0};
    snprintf(target, sizeof target, "%s/precious", tmp.path);
    snprintf(link, sizeof link, "%s/precious-link", tmp.path);
    assert_int_equal(make_dirs(target, &err), 0);
    write_text(target, "keep.txt", "keep");
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(remove_tree(link), 0);
    struct stat st;
    assert_int_equal(lstat(link, &st), -1);
    assert_true(holds(target, "keep.txt", "keep"));
}

/* The pid of a process that has exited. */
static long dead_pid(void) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    return (long)pid;
}

/* A save removes the staging directories that killed saves of the same directory left,
 * and nothing else. */
static void test_stale_staging_removed(void **state) {
    (void)state;
    char base[512], dir[600], name[800], staging[800], outside[600];
    BpError err = {0};
    snprintf(base, sizeof base, "%s/stale", tmp.path);
    assert_int_equal(make_dirs(base, &err), 0);
    snprintf(dir, sizeof dir, "%s/ckpt", base);
    long dead = dead_pid();
    snprintf(name, sizeof name, "%s.staging-%ld", dir, dead);  /* a killed save */
    assert_int_equal(make_dirs(name, &err), 0);
    write_text(name, "model.safetensors", "stale");
    snprintf(name, sizeof name, "%s.staging-%ld", dir, (long)getppid());  /* a live save */
    assert_int_equal(make_dirs(name, &err), 0);
    snprintf(name, sizeof name, "%s.staging-x%ld", dir, dead);  /* not our pattern */
    assert_int_equal(make_dirs(name, &err), 0);
    snprintf(name, sizeof name, "%s/other.staging-%ld", base, dead);  /* another directory's */
    assert_int_equal(make_dirs(name, &err), 0);
    /* a link with our name: removed as a name only if it were a directory, so kept */
    snprintf(outside, sizeof outside, "%s/outside", base);
    assert_int_equal(make_dirs(outside, &err), 0);
    write_text(outside, "keep.txt", "keep");
    long dead2 = dead_pid();
    snprintf(name, sizeof name, "%s.staging-%ld", dir, dead2);
    assert_int_equal(symlink(outside, name), 0);

    assert_int_equal(dir_stage(dir, staging, sizeof staging, &err), 0);
    write_text(staging, "f.txt", "x");
    assert_int_equal(dir_commit(staging, dir, &err), 0);
    snprintf(name, sizeof name, "%s.staging-%ld", dir, dead);
    assert_false(dir_exists(name));
    snprintf(name, sizeof name, "%s.staging-%ld", dir, (long)getppid());
    assert_true(dir_exists(name));
    snprintf(name, sizeof name, "%s.staging-x%ld", dir, dead);
    assert_true(dir_exists(name));
    snprintf(name, sizeof name, "%s/other.staging-%ld", base, dead);
    assert_true(dir_exists(name));
    assert_true(holds(outside, "keep.txt", "keep"));
    assert_int_equal(count_prefixed(base, "ckpt.staging-"), 3);
}

/* Untrusted text reaches a message only escaped: no control bytes, valid UTF-8. */
static void test_error_messages_are_escaped(void **state) {
    (void)state;
    BpError err = {0};
    assert_int_equal(bp_fail(&err, "%s: bad '%s'", "f.json", "a\x1b[2Jb\nc\xff\xc3\xa9\xc2\x9b\x7f"), -1);
    assert_string_equal(err.msg, "f.json: bad 'a\\x1b[2Jb\\x0ac\\xff\xc3\xa9\\xc2\\x9b\\x7f'");
    /* prefixing does not escape twice */
    assert_int_equal(bp_error_prefix(&err, "%s", "dir"), -1);
    assert_string_equal(err.msg, "dir: f.json: bad 'a\\x1b[2Jb\\x0ac\\xff\xc3\xa9\\xc2\\x9b\\x7f'");
    /* overlong, surrogate and cut-off sequences are bytes */
    assert_int_equal(bp_fail(&err, "%s", "\xc0\xaf \xed\xa0\x80 \xe2\x82"), -1);
    assert_string_equal(err.msg, "\\xc0\\xaf \\xed\\xa0\\x80 \\xe2\\x82");
    /* a long message is cut at a whole character */
    char longer[2000];
    for (size_t i = 0; i + 2 < sizeof longer; i += 2) memcpy(longer + i, "\xc3\xa9", 2);
    longer[sizeof longer - 2] = '\0';
    assert_int_equal(bp_fail(&err, "%s", longer), -1);
    size_t n = strlen(err.msg);
    assert_true(n > BP_ERROR_MAX - 4 && n < BP_ERROR_MAX);
    assert_int_equal(n % 2, 0);
    char escaped[BP_ERROR_MAX];
    bp_escape(escaped, sizeof escaped, err.msg, n);
    assert_string_equal(escaped, err.msg);
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
        cmocka_unit_test(test_dir_commit_through_link),
        cmocka_unit_test(test_remove_tree_keeps_link_target),
        cmocka_unit_test(test_stale_staging_removed),
        cmocka_unit_test(test_error_messages_are_escaped),
        cmocka_unit_test(test_rng_is_deterministic_and_normal),
    };
    return cmocka_run_group_tests_name("common/fileio", tests, setup, teardown);
}
