/* fileio.h - reading files whole, and writing files and directories atomically.
 *
 * The rule of the project: a reader of a path sees either the old content or the new,
 * never a half-written file, whatever happens during the write (Ctrl-C, kill -9, a
 * full disk). Files are written under a temporary name in the same directory, flushed,
 * fsync'ed, and renamed over the target; the directory is fsync'ed after the rename.
 * A symbolic link is written through (its target is replaced, the link kept); a target
 * that is not a regular file (/dev/null, a FIFO) is written in place.
 * Directories (checkpoints) are built whole in a sibling staging directory and swapped
 * in with one rename (see dir_commit).
 */
#ifndef BP_FILEIO_H
#define BP_FILEIO_H

#include <stdint.h>
#include <stdio.h>

#include "error.h"

/* Reads a whole file into a malloc'ed buffer with a terminating NUL (not counted in
 * *len). Caller frees *data. */
int read_file(const char *path, char **data, size_t *len, BpError *err);

/* An atomic file write in progress: write with fwrite(af.fp) or atomic_write, then
 * atomic_commit (or atomic_abort, which removes the temporary file). */
typedef struct {
    FILE *fp;
    char path[4096];      /* the final name */
    char tmp_path[4096];  /* the temporary name in the same directory */
    int direct;           /* the target is a device or FIFO: written in place, not renamed */
} AtomicFile;

int atomic_open(AtomicFile *af, const char *path, BpError *err);
/* fwrite with error checking (ENOSPC is reported with the final path). */
int atomic_write(AtomicFile *af, const void *data, size_t len, BpError *err);
/* Flushes, fsyncs, closes and renames into place; on any failure removes the
 * temporary file and leaves the old target untouched. */
int atomic_commit(AtomicFile *af, BpError *err);
void atomic_abort(AtomicFile *af);

/* Writes `len` bytes to `path` atomically in one call. */
int write_file_atomic(const char *path, const void *data, size_t len, BpError *err);

/* Copies a file atomically (used to copy tokenizer files into a checkpoint). */
int copy_file_atomic(const char *src, const char *dst, BpError *err);

/* mkdir -p. */
int make_dirs(const char *path, BpError *err);

/* Removes a directory tree (used on staging directories only). A symbolic link is
 * removed itself: nothing outside the tree is touched. */
int remove_tree(const char *path);

/* Staged directory writes: dir_stage creates an empty sibling directory
 * "<dir>.staging-<pid>" and returns its path in `staging` (first removing the staging
 * directories of earlier saves of dir whose process is gone: a save killed before its
 * swap); the caller writes every file
 * into it (plain writes are fine: nothing reads a staging directory); dir_commit
 * fsyncs the files and swaps the staging directory in place of `dir` atomically
 * (renameat2 RENAME_EXCHANGE, falling back to two renames with "<dir>.old" kept until
 * the new directory is in place) and removes the old one. dir_abort removes staging.
 * When dir is a symbolic link, the staging directory is made beside its target and the
 * target is swapped: the link is kept and points at the new checkpoint. The old
 * directory is removed whole, so a caller that must keep other files in dir carries
 * them into staging first (train/run_dir.h). */
int dir_stage(const char *dir, char *staging, size_t staging_size, BpError *err);
int dir_commit(const char *staging, const char *dir, BpError *err);
void dir_abort(const char *staging);

/* `path` with symbolic links in its last component followed, also dangling ones (the
 * path a write through the link creates), and trailing slashes dropped; `path` itself
 * when it is not a link. Writers use it so that a link is written through, never
 * replaced. */
int path_resolve_links(const char *path, char *out, size_t out_size, BpError *err);

/* Joins a directory and a file name into out ("dir/name"); fails if it does not fit. */
int path_join(char *out, size_t out_size, const char *dir, const char *name, BpError *err);

int file_exists(const char *path);
int dir_exists(const char *path);

/* Seconds since an arbitrary start, monotonic. */
double now_seconds(void);

#endif
