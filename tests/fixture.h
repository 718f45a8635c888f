/* fixture.h - the temporary directory every suite that writes files works in:
 * /tmp/bp-test-SUITE-XXXXXX, made by the group setup, removed with everything in it by
 * the group teardown. Header-only; include it after <cmocka.h>.
 *
 *     static int setup(void **state) { (void)state; return temp_dir_create(&tmp, "corpus"); }
 *     ...
 *     char path[512];
 *     temp_dir_path(&tmp, "out.txt", path, sizeof path);   // tmp.path + "/out.txt"
 *     temp_dir_write(&tmp, "in.txt", "a b\n", 4, path, sizeof path);
 *     ...
 *     return cmocka_run_group_tests(tests, setup, temp_dir_teardown);
 *
 * BP_TEST_KEEP=1 in the environment keeps the directory (its path on stderr), to look
 * at what a suite wrote.
 */
#ifndef BP_TEST_FIXTURE_H
#define BP_TEST_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fileio.h"

typedef struct {
    char path[256];
} TempDir;

/* The suite's directory (one per suite: the group setup makes it). */
static TempDir tmp;

/* Makes /tmp/bp-test-SUITE-XXXXXX. Returns 0, or -1 with a line on stderr (a group
 * setup returns it, and cmocka reports the suite as failed). */
static inline int temp_dir_create(TempDir *t, const char *suite) {
    snprintf(t->path, sizeof t->path, "/tmp/bp-test-%s-XXXXXX", suite);
    if (mkdtemp(t->path)) return 0;
    fprintf(stderr, "cannot make a temporary directory %s\n", t->path);
    t->path[0] = '\0';
    return -1;
}

/* DIR/name into out, which it returns; fails the test if it does not fit. */
static inline const char *temp_dir_path(const TempDir *t, const char *name, char *out, size_t size) {
    BpError err = {0};
    if (path_join(out, size, t->path, name, &err) != 0) fail_msg("%s", err.msg);
    return out;
}

/* Writes len bytes to DIR/name (atomically), its path into out; fails the test if it
 * cannot. */
static inline const char *temp_dir_write(const TempDir *t, const char *name, const void *data, size_t len,
                                         char *out, size_t size) {
    BpError err = {0};
    temp_dir_path(t, name, out, size);
    if (write_file_atomic(out, data, len, &err) != 0) fail_msg("%s", err.msg);
    return out;
}

/* Removes the directory and everything in it (unless BP_TEST_KEEP is set). */
static inline void temp_dir_remove(TempDir *t) {
    if (!t->path[0]) return;
    if (getenv("BP_TEST_KEEP")) fprintf(stderr, "kept %s\n", t->path);
    else remove_tree(t->path);
    t->path[0] = '\0';
}

/* The group teardown of a suite that has nothing else to free. */
static inline int temp_dir_teardown(void **state) {
    (void)state;
    temp_dir_remove(&tmp);
    return 0;
}

#endif
