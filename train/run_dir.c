/* run_dir.c - the output directory of a run (see run_dir.h). */
#include "run_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "trainer.h"

int run_dir_check_new(const char *dir, BpError *err) {
    if (!dir_exists(dir)) {
        if (file_exists(dir)) return bp_fail(err, "%s: exists and is not a directory", dir);
        return make_dirs(dir, err);
    }
    char model[4096];
    if (path_join(model, sizeof model, dir, "model.safetensors", err) != 0) return -1;
    struct stat st;
    if (lstat(model, &st) == 0)
        return bp_fail(err, "%s already holds a model: continue it with --resume %s, or choose another --out",
                       dir, dir);
    return 0;
}

/* Files the save writes itself (checkpoint_save and the trainer), and the temporaries of
 * an interrupted atomic write. */
static int is_checkpoint_file(const char *name) {
    static const char *const own[] = {"config.json", "model.safetensors", "vocab.json",
                                      "merges.txt", TRAIN_STATE_FILE, TRAIN_METRICS_FILE};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (!strcmp(name, own[i])) return 1;
    return strstr(name, ".tmp-") != NULL;
}

/* dst becomes another name for src's entry (not following a symbolic link); a regular
 * file on another filesystem is copied. */
static int link_entry(const char *src, const char *dst, const struct stat *st, BpError *err) {
    if (linkat(AT_FDCWD, src, AT_FDCWD, dst, 0) == 0) return 0;
    if (S_ISREG(st->st_mode)) return copy_file_atomic(src, dst, err);
    return bp_fail_errno(err, "%s: cannot carry over into the new checkpoint", src);
}

/* Mirrors directory src into the (existing) directory dst; top: skip checkpoint files. */
static int mirror_dir(const char *src, const char *dst, int top, BpError *err) {
    DIR *d = opendir(src);
    if (!d) return bp_fail_errno(err, "%s: cannot open", src);
    struct dirent *ent;
    char from[4096], to[4096];
    int rc = 0;
    while (rc == 0 && (ent = readdir(d)) != NULL) {
        if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, "..")) continue;
        if (top && is_checkpoint_file(ent->d_name)) continue;
        if (path_join(from, sizeof from, src, ent->d_name, err) != 0 ||
            path_join(to, sizeof to, dst, ent->d_name, err) != 0) {
            rc = -1;
            break;
        }
        struct stat st, there;
        if (lstat(from, &st) != 0) continue;  /* removed meanwhile */
        if (lstat(to, &there) == 0) continue; /* written by the save itself */
        if (S_ISDIR(st.st_mode)) {
            /* writable while filling it, then the original's mode */
            if (mkdir(to, 0700) != 0)
                rc = bp_fail_errno(err, "%s: cannot create directory", to);
            else if ((rc = mirror_dir(from, to, 0, err)) == 0 && chmod(to, st.st_mode & 07777) != 0)
                rc = bp_fail_errno(err, "%s: cannot set its mode", to);
        } else {
            rc = link_entry(from, to, &st, err);
        }
    }
    closedir(d);
    return rc;
}

int run_dir_carry_over(const char *dir, const char *staging, BpError *err) {
    if (!dir_exists(dir)) return 0;
    return mirror_dir(dir, staging, 1, err);
}
