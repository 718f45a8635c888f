/* fuzz.c - helpers shared by the fuzz targets (fuzz.h). */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/fileio.h"

static char scratch[256];

static void remove_scratch(void) {
    if (scratch[0]) remove_tree(scratch);
}

const char *fuzz_scratch_dir(void) {
    if (scratch[0]) return scratch;
    struct stat st;
    const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
                           ? "/dev/shm"
                           : "/tmp";
    snprintf(scratch, sizeof scratch, "%s/bp-fuzz-XXXXXX", base);
    if (!mkdtemp(scratch)) {
        perror("fuzz: mkdtemp");
        abort();
    }
    atexit(remove_scratch);
    return scratch;
}

const char *fuzz_write_file(int slot, const char *name, const void *data, size_t size) {
    static char paths[4][512];
    if (slot < 0 || slot >= 4) abort();
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", fuzz_scratch_dir(), name);
    FILE *fp = fopen(paths[slot], "wb");
    if (!fp || (size && fwrite(data, 1, size, fp) != size) || fclose(fp) != 0) {
        perror(paths[slot]);
        abort();
    }
    return paths[slot];
}

void fuzz_remove_sqlite_side_files(const char *path) {
    char side[4200];
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

void fuzz_check_error(const BpError *err) {
    size_t n = strnlen(err->msg, sizeof err->msg);
    if (n == 0 || n == sizeof err->msg) {
        fprintf(stderr, "fuzz: a refusal without a message\n");
        abort();
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)err->msg[i] < 0x20 || err->msg[i] == 0x7f) {
            fprintf(stderr, "fuzz: a control byte 0x%02x in the message: %s\n", (unsigned char)err->msg[i],
                    err->msg);
            abort();
        }
    char escaped[BP_ERROR_MAX];
    bp_escape(escaped, sizeof escaped, err->msg, n);
    if (strcmp(escaped, err->msg) != 0) {
        fprintf(stderr, "fuzz: the message is not printable UTF-8: %s\n", escaped);
        abort();
    }
}
