/* store_file.c - the sense database as a file among processes: the lock that keeps an
 * export from replacing a database someone has open, the journal mode, and the
 * leftovers of killed exports.
 *
 * The lock: every open SenseStore holds flock(LOCK_SH) on the database file for its
 * lifetime; an export takes flock(LOCK_EX | LOCK_NB) on the database it replaces and
 * renames the new file over it while holding that lock, so it either replaces a file
 * nobody has open or refuses. A store that opened the old file just before the rename
 * sees, once it holds its lock, that the path now names another file, and opens again.
 * flock locks are separate from SQLite's POSIX locks on local file systems; on NFS,
 * where Linux emulates flock with POSIX locks, this protocol is not supported.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_private.h"

int store_lock_open(const char *path, int *fd_out, BpError *err) {
    *fd_out = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return bp_fail_errno(err, "%s: cannot open", path);
    while (flock(fd, LOCK_SH) != 0) {
        if (errno == EINTR) continue;
        if (errno == ENOLCK || errno == EOPNOTSUPP) break;  /* a file system without locks */
        int e = errno;
        close(fd);
        errno = e;
        return bp_fail_errno(err, "%s: cannot lock", path);
    }
    *fd_out = fd;
    return 0;
}

int store_lock_still_current(int fd, const char *path) {
    struct stat a, b;
    if (fstat(fd, &a) || stat(path, &b)) return 0;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int store_lock_for_replace(const char *path, int *fd_out, BpError *err) {
    *fd_out = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        return bp_fail_errno(err, "%s: cannot open", path);
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 && errno != ENOLCK && errno != EOPNOTSUPP) {
        close(fd);
        return bp_fail(err,
                       "%s: is open in another backpack process (a browser, an edit, generate --edits); "
                       "not replacing it: close that first, or export to another file",
                       path);
    }
    *fd_out = fd;
    return 0;
}

void store_unlock(int fd) {
    if (fd >= 0) close(fd);  /* closing the descriptor releases its flock */
}

int store_header_is_wal(const char *path) {
    unsigned char h[20];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, h, sizeof h);
    close(fd);
    /* bytes 18 and 19 of an SQLite header: file format write/read version, 2 = WAL */
    return n == (ssize_t)sizeof h && !memcmp(h, "SQLite format 3", 16) && h[18] == 2 && h[19] == 2;
}

void store_remove_db_files(const char *path) {
    char p[4200];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-journal", path);
    unlink(p);
}

/* "<base>.tmp-<pid>" with an optional "-wal", "-shm" or "-journal": the pid, or 0. */
static long temporary_pid(const char *name, const char *prefix, size_t np) {
    if (strncmp(name, prefix, np)) return 0;
    char *end;
    long pid = strtol(name + np, &end, 10);
    if (end == name + np || pid <= 0 || name[np] == '+' || name[np] == '-' || name[np] == ' ') return 0;
    if (*end && strcmp(end, "-wal") && strcmp(end, "-shm") && strcmp(end, "-journal")) return 0;
    return pid;
}

void store_remove_stale_temporaries(const char *db_path) {
    char dir[4200], prefix[4200];
    snprintf(dir, sizeof dir, "%s", db_path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : db_path;
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    if (!dir[0]) snprintf(dir, sizeof dir, "/");
    snprintf(prefix, sizeof prefix, "%s.tmp-", base);
    size_t np = strlen(prefix);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid = temporary_pid(e->d_name, prefix, np);
        if (pid <= 0 || pid == getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;  /* alive, or not ours to judge */
        char path[8500];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode)) unlink(path);
    }
    closedir(d);
}
