/* tokfile.h - token files: the tokenized corpus that training and eval read.
 *
 * Format (little-endian), documented in README.md:
 *   offset 0   uint32 magic    0x4B504B42 ("BKPK")
 *   offset 4   uint32 version  1
 *   offset 8   uint32 vocab_size
 *   offset 12  uint32 id_width 2 or 4 (bytes per id: uint16 when vocab_size <= 65536)
 *   offset 16  uint64 count    number of ids
 *   offset 24  uint64 tokenizer_hash   tokfile_tokenizer_hash of the tokenizer that
 *                              made the ids; 0: not recorded (files of older versions)
 *   offset 32  ...             reserved, zero, up to offset 64
 *   offset 64  count ids
 * The file size must equal 64 + count * id_width.
 */
#ifndef BP_TOKFILE_H
#define BP_TOKFILE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "tokenizer.h"

#define TOKFILE_MAGIC 0x4B504B42u
#define TOKFILE_VERSION 1u
#define TOKFILE_HEADER_SIZE 64

typedef struct {
    uint32_t vocab_size;
    uint32_t id_width;
    uint64_t count;
    uint64_t tokenizer_hash;  /* 0: not recorded */
    const void *ids;        /* mmap'ed: (count) uint16 or uint32 */
    void *map;              /* private */
    size_t map_size;        /* private */
} TokFile;

/* Opens (mmap) and validates header and size against the file. */
int tokfile_open(TokFile *tf, const char *path, BpError *err);
void tokfile_close(TokFile *tf);
static inline uint32_t tokfile_get(const TokFile *tf, uint64_t i) {
    return tf->id_width == 2 ? ((const uint16_t *)tf->ids)[i] : ((const uint32_t *)tf->ids)[i];
}

/* A fingerprint of a tokenizer's vocabulary (64-bit FNV-1a over every id's bytes, in
 * id order): with the same hash, every id names the same bytes. Never 0. */
uint64_t tokfile_tokenizer_hash(const Tokenizer *tok);

/* Is the token file at path made by tok? Its vocabulary size must be tok's, and its
 * tokenizer hash too when the file records one. */
int tokfile_check_tokenizer(const char *path, const Tokenizer *tok, const char *tokenizer_dir, BpError *err);

/* Streaming writer: ids are appended; commit fixes the header and renames into place. */
typedef struct TokFileWriter TokFileWriter;
int tokfile_writer_open(TokFileWriter **w, const char *path, uint32_t vocab_size, BpError *err);
int tokfile_writer_append(TokFileWriter *w, const int *ids, size_t n, BpError *err);
void tokfile_writer_set_tokenizer_hash(TokFileWriter *w, uint64_t hash);
int tokfile_writer_commit(TokFileWriter *w, BpError *err);   /* frees w */
void tokfile_writer_abort(TokFileWriter *w);                 /* frees w, removes temp file */

#endif
