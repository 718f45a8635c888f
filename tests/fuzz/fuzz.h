/* fuzz.h - what the fuzz targets share (tests/fuzz/README.md says how they run).
 *
 * Each target tests/fuzz/fuzz_<module>_<loader>.c defines LLVMFuzzerTestOneInput: the
 * input is what a hostile user could put in the file the loader reads. A target must
 * never crash, leak, or trip a sanitizer whatever the input; a loader that refuses the
 * input must say why in one line (fuzz_check_error). The same target is linked with
 * libFuzzer by clang (`make fuzz`) and with tests/fuzz/replay.c by gcc, which replays the
 * committed corpus and crashers under ASan and UBSan in `make test`. */
#ifndef BP_FUZZ_H
#define BP_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A private directory for the files a target writes, made on first use and removed at
 * exit (in /dev/shm when there is one: the targets write a file per input). */
const char *fuzz_scratch_dir(void);

/* scratch/name, written with data[0..size). Returns the path (static storage, one per
 * name slot 0..3). */
const char *fuzz_write_file(int slot, const char *name, const void *data, size_t size);

/* Removes path's SQLite side files (-wal, -shm), so that each input's database is read
 * alone. */
void fuzz_remove_sqlite_side_files(const char *path);

/* A refusal's message must be one non-empty line of printable text (error.h). Aborts
 * otherwise, so the fuzzer reports it. */
void fuzz_check_error(const BpError *err);

#endif
