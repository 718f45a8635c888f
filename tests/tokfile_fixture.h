/* tokfile_fixture.h - token files written by hand from the documented format
 * (text/tokfile.h), not through the writer under test, so tests can also write broken
 * ones. Header-only, for the suites that need token data. */
#ifndef BP_TOKFILE_FIXTURE_H
#define BP_TOKFILE_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../text/tokfile.h"

/* Writes a version-1 token file of uint16 ids: ids (count). The vocab size in the header is
 * `vocab`, whatever the ids are. Returns 0, or -1 if the file cannot be written. */
static inline int write_token_file(const char *path, uint32_t vocab, const uint16_t *ids,
                                   uint64_t count) {
    unsigned char header[TOKFILE_HEADER_SIZE] = {0};
    uint32_t magic = TOKFILE_MAGIC, version = TOKFILE_VERSION, width = 2;
    memcpy(header, &magic, 4);
    memcpy(header + 4, &version, 4);
    memcpy(header + 8, &vocab, 4);
    memcpy(header + 12, &width, 4);
    memcpy(header + 16, &count, 8);
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    int bad = fwrite(header, 1, sizeof header, fp) != sizeof header;
    bad |= count && fwrite(ids, 2, count, fp) != count;
    bad |= fclose(fp) != 0;
    return bad ? -1 : 0;
}

#endif
