/* The sense database as a file among processes: export never replaces a database that
 * another store has open (whose later edits would be lost), read-only commands work on
 * a read-only mount and leave no -wal/-shm files, databases of earlier backpacks in WAL
 * mode still open, and the leftovers of killed exports are removed on the next write
 * (and nothing else is). */
#include "senses_fixture.h"
#include "../cli/commands.h"

#include <errno.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "../model/checkpoint.h"

static int wal_and_shm_absent(const char *db) {
    char p[500];
    snprintf(p, sizeof p, "%s-wal", db);
    if (file_exists(p)) return 0;
    snprintf(p, sizeof p, "%s-shm", db);
    return !file_exists(p);
}

/* bytes 18 and 19 of the SQLite header: 1 = rollback journal, 2 = WAL */
static int header_mode(const char *db) {
    unsigned char h[20] = {0};
    FILE *f = fopen(db, "rb");
    assert_non_null(f);
    assert_int_equal(fread(h, 1, sizeof h, f), sizeof h);
    fclose(f);
    assert_int_equal(h[18], h[19]);
    return h[18];
}

static int count_edits_in_force(const char *db) {
    SenseStore *s;
    BpError err = {0};
    if (store_open(&s, db, STORE_READ_ONLY, &err)) fail_msg("%s", err.msg);
    SenseEdits e;
    assert_int_equal(store_sense_edits(s, &e, &err), 0);
    int n = e.count;
    sense_edits_free(&e);
    store_close(s);
    return n;
}

/* A copy of the database in WAL mode, as earlier backpacks left them. */
static void make_wal_copy(const char *path) {
    BpError err = {0};
    char *data;
    size_t len;
    assert_int_equal(read_file(dbpath, &data, &len, &err), 0);
    assert_int_equal(write_file_atomic(path, data, len, &err), 0);
    free(data);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(header_mode(path), 2);
}

/* ---- export --force while the database is open -------------------------------------- */

static void test_export_refuses_open_database(void **state) {
    (void)state;
    char path[400];
    snprintf(path, sizeof path, "%s/open.db", tmpdir);
    BpError err = {0};
    assert_int_equal(export_to(&model, path, 0, &err), 0);
    /* a browser has it open (read-write, as the browser opens a writable database) */
    SenseStore *browser;
    assert_int_equal(store_open(&browser, path, STORE_READ_WRITE, &err), 0);
    assert_int_equal(export_to(&model, path, 1, &err), -1);
    assert_non_null(strstr(err.msg, "open in another backpack process"));
    assert_non_null(strstr(err.msg, "open.db"));
    /* the browser's later edit lands in the file that is at the path */
    EditRequest r = {.kind = EDIT_SCALE, .token = 259, .sense = 0, .value = 2};
    assert_int_equal(store_edit_commit(browser, &r, NULL, &err), 0);
    assert_int_equal(count_edits_in_force(path), 1);
    /* a read-only reader blocks it just the same */
    store_close(browser);
    SenseStore *reader;
    assert_int_equal(store_open(&reader, path, STORE_READ_ONLY, &err), 0);
    assert_int_equal(export_to(&model, path, 1, &err), -1);
    store_close(reader);
    assert_int_equal(count_edits_in_force(path), 1);
    /* once nobody has it open, --force replaces it (and drops its edits) */
    assert_int_equal(export_to(&model, path, 1, &err), 0);
    assert_int_equal(count_edits_in_force(path), 0);
    /* no temporary left by the refused exports */
    char tmp[500];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
    assert_false(file_exists(tmp));
}

/* ---- journal mode and files left behind -------------------------------------------- */

static void test_read_only_leaves_no_files(void **state) {
    (void)state;
    BpError err = {0};
    assert_int_equal(header_mode(dbpath), 1);
    SenseStore *s;
    assert_int_equal(store_open(&s, dbpath, STORE_READ_ONLY, &err), 0);
    WordScore top[5], near[5];
    assert_int_equal(store_sense_words(s, 259, 1, 5, top, NULL, &err), 5);
    float query[K * D];
    memcpy(query, senses + (size_t)259 * K * D, sizeof query);
    assert_int_equal(store_nearest(s, query, 1, 259, 5, near, &err), 5);
    assert_true(wal_and_shm_absent(dbpath));
    store_close(s);
    assert_true(wal_and_shm_absent(dbpath));
    /* the commands */
    char msg[1024];
    char *senses_cmd[] = {"senses", "--db", dbpath, "bank", NULL};
    assert_int_equal(run_captured(cmd_senses, 4, senses_cmd, msg, sizeof msg), 0);
    char *nearest_cmd[] = {"nearest", "--db", dbpath, "bank", "--sense", "1", NULL};
    assert_int_equal(run_captured(cmd_nearest, 6, nearest_cmd, msg, sizeof msg), 0);
    assert_true(wal_and_shm_absent(dbpath));
    /* an edit uses a rollback journal and leaves nothing either */
    s = open_rw();
    EditRequest r = {.kind = EDIT_SCALE, .token = 259, .sense = 0, .value = 2};
    assert_int_equal(store_edit_commit(s, &r, NULL, &err), 0);
    undo_all(s);
    store_close(s);
    assert_true(wal_and_shm_absent(dbpath));
    assert_int_equal(header_mode(dbpath), 1);
}

static void test_wal_database_of_earlier_versions(void **state) {
    (void)state;
    char path[400];
    snprintf(path, sizeof path, "%s/wal.db", tmpdir);
    make_wal_copy(path);
    BpError err = {0};
    SenseStore *s;
    assert_int_equal(store_open(&s, path, STORE_READ_ONLY, &err), 0);
    WordScore top[5];
    assert_int_equal(store_sense_words(s, 259, 1, 5, top, NULL, &err), 5);
    store_close(s);
    /* switched to rollback-journal mode where writable, and nothing left beside it */
    assert_int_equal(header_mode(path), 1);
    assert_true(wal_and_shm_absent(path));
}

/* ---- a read-only mount ---------------------------------------------------------------- */

static int write_text(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* In a child: a private mount namespace in which dir is mounted read-only (as root, or
 * in a user namespace). 0, or -1 when this machine does not allow it. */
static int enter_read_only_view(const char *dir) {
    if (unshare(CLONE_NEWNS) != 0) {
        char map[64];
        uid_t uid = getuid();
        gid_t gid = getgid();
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return -1;
        write_text("/proc/self/setgroups", "deny");
        snprintf(map, sizeof map, "0 %d 1", (int)uid);
        if (write_text("/proc/self/uid_map", map)) return -1;
        snprintf(map, sizeof map, "0 %d 1", (int)gid);
        if (write_text("/proc/self/gid_map", map)) return -1;
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) || mount(dir, dir, NULL, MS_BIND | MS_REC, NULL) ||
        mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL))
        return -1;
    char probe[600];
    snprintf(probe, sizeof probe, "%s/probe", dir);
    int fd = open(probe, O_WRONLY | O_CREAT, 0644);
    if (fd >= 0 || errno != EROFS) {
        if (fd >= 0) close(fd);
        return -1;
    }
    return 0;
}

/* Runs backpack with argv in a grandchild; its exit status. */
static int run_backpack(const char *backpack, char *const argv[]) {
    pid_t pid = fork();
    if (pid == 0) {
        execv(backpack, argv);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void test_read_only_mount(void **state) {
    (void)state;
    const char *backpack = getenv("BACKPACK");
    if (!backpack) skip();  /* run by `make run-tests`, which sets it */
    char dir[400], db[500], wal_db[500], model_dir[500], pairs[500];
    snprintf(dir, sizeof dir, "%s/ro", tmpdir);
    snprintf(db, sizeof db, "%s/senses.db", dir);
    snprintf(wal_db, sizeof wal_db, "%s/wal.db", dir);
    snprintf(model_dir, sizeof model_dir, "%s/model", tmpdir);
    snprintf(pairs, sizeof pairs, "%s/pairs.tsv", dir);
    BpError err = {0};
    assert_int_equal(make_dirs(dir, &err), 0);
    chmod(tmpdir, 0755);  /* reachable from a user namespace */
    assert_int_equal(export_to(&model, db, 0, &err), 0);
    make_wal_copy(wal_db);
    assert_int_equal(checkpoint_save(&model, model_dir, tokdir, NULL, NULL, &err), 0);
    const char *text = "bank\triver\t3\ncat\tdog\t7\nthe\tmoney\t1\n";
    assert_int_equal(write_file_atomic(pairs, text, strlen(text), &err), 0);
    pid_t child = fork();
    if (child == 0) {
        if (enter_read_only_view(dir)) _exit(77);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);  /* stderr stays: a failure shows its message */
        const char *dbs[] = {db, wal_db};
        for (int i = 0; i < 2; i++) {
            char *d = (char *)dbs[i];
            char *senses_cmd[] = {"backpack", "senses", "--db", d, "bank", NULL};
            char *nearest_cmd[] = {"backpack", "nearest", "--db", d, "bank", "--min", NULL};
            char *sim_cmd[] = {"backpack", "similarity", "--db", d, pairs, NULL};
            char *gen_cmd[] = {"backpack", "generate", "--model", model_dir, "--edits", d, "--prompt", " the",
                               "--max-tokens", "3", "--temperature", "0", NULL};
            if (run_backpack(backpack, senses_cmd) || run_backpack(backpack, nearest_cmd) ||
                run_backpack(backpack, sim_cmd) || run_backpack(backpack, gen_cmd))
                _exit(1);
        }
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) skip();  /* no mount namespaces here */
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(wal_and_shm_absent(db));
    assert_true(wal_and_shm_absent(wal_db));
}

/* ---- leftovers of killed exports ------------------------------------------------------ */

static pid_t dead_pid(void) {
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0);
    return child;
}

static void touch(const char *path) {
    BpError err = {0};
    assert_int_equal(write_file_atomic(path, "partial", 7, &err), 0);
}

static void test_stale_temporaries_removed_on_write(void **state) {
    (void)state;
    pid_t dead = dead_pid();
    char stale[500], stale_journal[500], alive[500], other_name[500], not_a_pid[500];
    snprintf(stale, sizeof stale, "%s.tmp-%d", dbpath, (int)dead);
    snprintf(stale_journal, sizeof stale_journal, "%s.tmp-%d-journal", dbpath, (int)dead);
    snprintf(alive, sizeof alive, "%s.tmp-%d", dbpath, (int)getppid());
    snprintf(other_name, sizeof other_name, "%s/other.db.tmp-%d", tmpdir, (int)dead);
    snprintf(not_a_pid, sizeof not_a_pid, "%s.tmp-%dx", dbpath, (int)dead);
    const char *all[] = {stale, stale_journal, alive, other_name, not_a_pid};
    for (int i = 0; i < 5; i++) touch(all[i]);
    /* reading is not writing: nothing removed */
    SenseStore *s;
    BpError err = {0};
    assert_int_equal(store_open(&s, dbpath, STORE_READ_ONLY, &err), 0);
    store_close(s);
    assert_true(file_exists(stale));
    /* the next edit removes exactly the dead process's files of our naming pattern */
    s = open_rw();
    EditRequest r = {.kind = EDIT_SCALE, .token = 264, .sense = 2, .value = 0.5f};
    assert_int_equal(store_edit_commit(s, &r, NULL, &err), 0);
    undo_all(s);
    store_close(s);
    assert_false(file_exists(stale));
    assert_false(file_exists(stale_journal));
    assert_true(file_exists(alive));
    assert_true(file_exists(other_name));
    assert_true(file_exists(not_a_pid));
    for (int i = 2; i < 5; i++) unlink(all[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_export_refuses_open_database),
        cmocka_unit_test(test_read_only_leaves_no_files),
        cmocka_unit_test(test_wal_database_of_earlier_versions),
        cmocka_unit_test(test_read_only_mount),
        cmocka_unit_test(test_stale_temporaries_removed_on_write),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
