#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int read_file(const char *path, char **data, size_t *len, BpError *err) {
    *data = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return bp_fail_errno(err, "%s: cannot open", path);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(fp);
        return bp_fail(err, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            cap *= 2;
            char *grown = realloc(buf, cap + 1);
            if (!grown) {
                free(buf);
                fclose(fp);
                return bp_fail(err, "%s: out of memory", path);
            }
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0) break;
    }
    if (ferror(fp)) {
        free(buf);
        fclose(fp);
        return bp_fail_errno(err, "%s: read error", path);
    }
    fclose(fp);
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

static int fsync_parent_dir(const char *path) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) dir[1] = '\0';
    else if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int path_resolve_links(const char *path, char *out, size_t out_size, BpError *err) {
    char cur[4096], next[4096], target[4096];
    if (snprintf(cur, sizeof cur, "%s", path) >= (int)sizeof cur)
        return bp_fail(err, "%s: path too long", path);
    size_t n = strlen(cur);
    while (n > 1 && cur[n - 1] == '/') cur[--n] = '\0';
    /* A link to a link: follow the chain (dangling ones included) as the kernel does,
     * with its limit of 40. */
    for (int depth = 0;; depth++) {
        struct stat st;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode)) break;
        if (depth == 40) return bp_fail(err, "%s: too many levels of symbolic links", path);
        if (realpath(cur, next)) {  /* the whole chain resolves */
            snprintf(cur, sizeof cur, "%s", next);
            break;
        }
        ssize_t len = readlink(cur, target, sizeof target - 1);
        if (len < 0) return bp_fail_errno(err, "%s: cannot resolve link", path);
        target[len] = '\0';
        const char *slash = strrchr(cur, '/');
        int fits = (target[0] == '/' || !slash)
                       ? snprintf(next, sizeof next, "%s", target)
                       : snprintf(next, sizeof next, "%.*s/%s", (int)(slash - cur), cur, target);
        if (fits < 0 || fits >= (int)sizeof next) return bp_fail(err, "%s: path too long", path);
        snprintf(cur, sizeof cur, "%s", next);
        n = strlen(cur);
        while (n > 1 && cur[n - 1] == '/') cur[--n] = '\0';
    }
    if (snprintf(out, out_size, "%s", cur) >= (int)out_size)
        return bp_fail(err, "%s: path too long", path);
    return 0;
}

int atomic_open(AtomicFile *af, const char *path, BpError *err) {
    memset(af, 0, sizeof *af);
    if (snprintf(af->path, sizeof af->path, "%s", path) >= (int)sizeof af->path)
        return bp_fail(err, "%s: path too long", path);
    /* Renaming over a symbolic link would replace the link, and over a device or FIFO
     * (/dev/null, /dev/stderr) the device itself: write through a link to its target, and
     * into anything that is not a regular file directly. */
    if (path_resolve_links(path, af->path, sizeof af->path, err) != 0) return -1;
    struct stat st;
    if (stat(af->path, &st) == 0 && !S_ISREG(st.st_mode)) {
        af->direct = 1;
        af->fp = fopen(af->path, "wb");
        if (!af->fp) return bp_fail_errno(err, "%s: cannot open for writing", path);
        return 0;
    }
    if (snprintf(af->tmp_path, sizeof af->tmp_path, "%s.tmp-%ld", af->path, (long)getpid()) >=
        (int)sizeof af->tmp_path)
        return bp_fail(err, "%s: path too long", path);
    af->fp = fopen(af->tmp_path, "wb");
    if (!af->fp) return bp_fail_errno(err, "%s: cannot create", af->tmp_path);
    return 0;
}

int atomic_write(AtomicFile *af, const void *data, size_t len, BpError *err) {
    if (len && fwrite(data, 1, len, af->fp) != len) {
        int rc = bp_fail_errno(err, "%s: write failed", af->path);
        atomic_abort(af);
        return rc;
    }
    return 0;
}

int atomic_commit(AtomicFile *af, BpError *err) {
    if (!af->fp) return bp_fail(err, "%s: write already aborted", af->path);
    if (af->direct) {
        int failed = fflush(af->fp) != 0;
        failed |= fclose(af->fp) != 0;
        af->fp = NULL;
        return failed ? bp_fail_errno(err, "%s: write failed", af->path) : 0;
    }
    if (fflush(af->fp) != 0 || fsync(fileno(af->fp)) != 0) {
        int rc = bp_fail_errno(err, "%s: write failed", af->path);
        atomic_abort(af);
        return rc;
    }
    if (fclose(af->fp) != 0) {
        af->fp = NULL;
        int rc = bp_fail_errno(err, "%s: write failed", af->path);
        unlink(af->tmp_path);
        return rc;
    }
    af->fp = NULL;
    if (rename(af->tmp_path, af->path) != 0) {
        int rc = bp_fail_errno(err, "%s: cannot rename into place", af->path);
        unlink(af->tmp_path);
        return rc;
    }
    fsync_parent_dir(af->path);
    return 0;
}

void atomic_abort(AtomicFile *af) {
    if (af->fp) {
        fclose(af->fp);
        af->fp = NULL;
    }
    if (af->tmp_path[0] && !af->direct) unlink(af->tmp_path);
}

int write_file_atomic(const char *path, const void *data, size_t len, BpError *err) {
    AtomicFile af;
    if (atomic_open(&af, path, err) != 0) return -1;
    if (atomic_write(&af, data, len, err) != 0) return -1;
    return atomic_commit(&af, err);
}

int copy_file_atomic(const char *src, const char *dst, BpError *err) {
    FILE *in = fopen(src, "rb");
    if (!in) return bp_fail_errno(err, "%s: cannot open", src);
    AtomicFile af;
    if (atomic_open(&af, dst, err) != 0) {
        fclose(in);
        return -1;
    }
    char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, in)) > 0) {
        if (atomic_write(&af, buf, got, err) != 0) {
            fclose(in);
            return -1;
        }
    }
    int read_failed = ferror(in);
    fclose(in);
    if (read_failed) {
        atomic_abort(&af);
        return bp_fail(err, "%s: read error", src);
    }
    return atomic_commit(&af, err);
}

int make_dirs(const char *path, BpError *err) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return bp_fail(err, "%s: path too long", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return bp_fail_errno(err, "%s: cannot create directory", buf);
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return bp_fail_errno(err, "%s: cannot create directory", buf);
    if (!dir_exists(buf)) return bp_fail(err, "%s: exists and is not a directory", buf);
    return 0;
}

int remove_tree(const char *path) {
    /* A link (or a file) is removed itself, never what it points to. */
    struct stat top;
    if (lstat(path, &top) != 0) return -1;
    if (!S_ISDIR(top.st_mode)) return unlink(path);
    DIR *d = opendir(path);
    if (!d) return -1;
    struct dirent *ent;
    char child[4096];
    while ((ent = readdir(d)) != NULL) {
        if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, "..")) continue;
        snprintf(child, sizeof child, "%s/%s", path, ent->d_name);
        struct stat st;
        if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(child);
        else unlink(child);
    }
    closedir(d);
    return rmdir(path);
}

#define STAGING_INFIX ".staging-"

/* Removes "<base>.staging-<pid>" directories beside `dir` whose process is gone (a save
 * killed before its swap): each is a whole checkpoint's size. Only that exact name, only
 * real directories, and only when kill(pid, 0) says no such process. */
static void remove_stale_staging(const char *dir) {
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    const char *base = slash ? dir + (slash - parent) + 1 : dir;
    if (slash == parent) parent[1] = '\0';
    else if (slash) *slash = '\0';
    else snprintf(parent, sizeof parent, ".");
    char prefix[4096];
    if (snprintf(prefix, sizeof prefix, "%s" STAGING_INFIX, base) >= (int)sizeof prefix) return;
    size_t np = strlen(prefix);
    DIR *d = opendir(parent);
    if (!d) return;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        if (strncmp(ent->d_name, prefix, np) != 0) continue;
        const char *digits = ent->d_name + np;
        char *end;
        errno = 0;
        long pid = strtol(digits, &end, 10);
        if (end == digits || *end || errno || pid <= 0 || !(*digits >= '1' && *digits <= '9')) continue;
        if (pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno != ESRCH)) continue;
        char child[8200];
        snprintf(child, sizeof child, "%s/%s", parent, ent->d_name);
        struct stat st;
        if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(child);
    }
    closedir(d);
}

int dir_stage(const char *dir, char *staging, size_t staging_size, BpError *err) {
    char target[4096];
    if (path_resolve_links(dir, target, sizeof target, err) != 0) return -1;
    if (snprintf(staging, staging_size, "%s" STAGING_INFIX "%ld", target, (long)getpid()) >=
        (int)staging_size)
        return bp_fail(err, "%s: path too long", dir);
    struct stat st;
    if (lstat(target, &st) == 0 && !S_ISDIR(st.st_mode))
        return bp_fail(err, "%s: exists and is not a directory", dir);
    /* The parent must exist for the sibling to be created. */
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", target);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        if (make_dirs(parent, err) != 0) return -1;
    }
    remove_stale_staging(target);
    if (lstat(staging, &st) == 0) remove_tree(staging);
    if (mkdir(staging, 0755) != 0) return bp_fail_errno(err, "%s: cannot create directory", staging);
    return 0;
}

static int fsync_dir_files(const char *path) {
    DIR *d = opendir(path);
    if (!d) return -1;
    struct dirent *ent;
    char child[4096];
    int rc = 0;
    while ((ent = readdir(d)) != NULL) {
        if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, "..")) continue;
        snprintf(child, sizeof child, "%s/%s", path, ent->d_name);
        int fd = open(child, O_RDONLY);
        if (fd < 0) continue;
        if (fsync(fd) != 0) rc = -1;
        close(fd);
    }
    closedir(d);
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        if (fsync(fd) != 0) rc = -1;
        close(fd);
    }
    return rc;
}

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

int dir_commit(const char *staging, const char *dir, BpError *err) {
    /* The swap happens at the link's target (as dir_stage staged beside it): renaming
     * over the link itself would replace the link and leave its target behind. */
    char clean[4096];
    if (path_resolve_links(dir, clean, sizeof clean, err) != 0) {
        dir_abort(staging);
        return -1;
    }
    if (fsync_dir_files(staging) != 0) {
        int rc = bp_fail_errno(err, "%s: fsync failed", staging);
        dir_abort(staging);
        return rc;
    }
    if (!dir_exists(clean)) {
        if (rename(staging, clean) != 0) {
            int rc = bp_fail_errno(err, "%s: cannot rename into place", clean);
            dir_abort(staging);
            return rc;
        }
        fsync_parent_dir(clean);
        return 0;
    }
    /* Atomic swap: after it, `clean` is the new directory and `staging` the old one. */
    if (syscall(SYS_renameat2, AT_FDCWD, staging, AT_FDCWD, clean, RENAME_EXCHANGE) == 0) {
        fsync_parent_dir(clean);
        remove_tree(staging);
        return 0;
    }
    /* Filesystems without RENAME_EXCHANGE: keep the old directory as <dir>.old until the
     * new one is in place, so a crash between the renames loses nothing. */
    char old[4096 + 8];
    snprintf(old, sizeof old, "%s.old", clean);
    if (dir_exists(old)) remove_tree(old);
    if (rename(clean, old) != 0) {
        int rc = bp_fail_errno(err, "%s: cannot move aside", clean);
        dir_abort(staging);
        return rc;
    }
    if (rename(staging, clean) != 0) {
        int rc = bp_fail_errno(err, "%s: cannot rename into place", clean);
        rename(old, clean);
        dir_abort(staging);
        return rc;
    }
    fsync_parent_dir(clean);
    remove_tree(old);
    return 0;
}

void dir_abort(const char *staging) {
    if (staging && staging[0]) remove_tree(staging);
}

int path_join(char *out, size_t out_size, const char *dir, const char *name, BpError *err) {
    size_t dl = strlen(dir);
    const char *sep = (dl > 0 && dir[dl - 1] == '/') ? "" : "/";
    if (snprintf(out, out_size, "%s%s%s", dir, sep, name) >= (int)out_size)
        return bp_fail(err, "%s/%s: path too long", dir, name);
    return 0;
}

int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
