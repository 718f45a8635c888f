/* safetensors.h - reading and writing the safetensors format (Hugging Face), with every
 * field of an untrusted file checked before any tensor data is touched.
 *
 * The format:
 *     8 bytes     N, unsigned little-endian: the length of the header
 *     N bytes     JSON: {"<name>": {"dtype": "F32", "shape": [d0, d1, ..],
 *                                   "data_offsets": [begin, end]}, ...,
 *                        "__metadata__": {"<key>": "<string>", ...}}   (optional)
 *     the rest    the data section; offsets are relative to its start
 *
 * safetensors_open checks, as the reference implementation does: N fits in the file and
 * is at most 100 MB; the header is UTF-8 JSON starting with '{', an object of objects
 * without duplicate names; each dtype is one the format defines; each shape is a list of
 * non-negative integers (at most SAFETENSORS_MAX_DIMS) whose product does not overflow;
 * end - begin == numel * dtype size; the tensors, in offset order, tile the data section
 * exactly (no overlap, no gap, nothing past the last tensor, nothing missing at the end,
 * so a truncated file is always caught); __metadata__ maps strings to strings. Beyond
 * the reference, names with control characters are refused (errors stay one line).
 *
 * Reading: tensors are read with pread straight into the caller's buffer, never the
 * whole file into memory (the published small model is ~700 MB). safetensors_read_f32
 * returns float32 for F32 files and also converts F16 and BF16 (the published weights
 * may be stored in half precision) to float32 exactly; other dtypes are refused.
 * The byte order is little-endian as the format says; this code assumes a
 * little-endian host (checked at compile time).
 *
 * Writing: safetensors_write writes one file atomically (fileio.h AtomicFile), in the
 * layout of the reference serializer: tensors ordered by dtype size (largest first) and
 * then by name - for an all-F32 file, simply sorted by name - laid out back to back; the
 * header padded with spaces to a multiple of 8 bytes so the data section is aligned.
 */
#ifndef BP_SAFETENSORS_H
#define BP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

#define SAFETENSORS_MAX_DIMS 8
#define SAFETENSORS_MAX_HEADER 100000000ULL  /* the reference implementation's limit */

typedef enum {
    ST_BOOL, ST_U8, ST_I8, ST_F8_E5M2, ST_F8_E4M3,
    ST_I16, ST_U16, ST_F16, ST_BF16,
    ST_I32, ST_U32, ST_F32,
    ST_F64, ST_I64, ST_U64,
    ST_DTYPE_COUNT
} SafeDtype;

/* "F32", "BF16", ... and the element size in bytes. */
const char *safetensors_dtype_name(SafeDtype dt);
size_t safetensors_dtype_size(SafeDtype dt);

typedef struct {
    char *name;
    SafeDtype dtype;
    int ndim;
    int64_t shape[SAFETENSORS_MAX_DIMS];
    uint64_t numel;           /* product of shape (1 for a scalar) */
    uint64_t begin, end;      /* byte offsets into the data section */
} SafeTensorInfo;

/* An open, validated file. The tensor table is in header order. */
typedef struct {
    char path[4096];
    int fd;
    uint64_t file_size;
    uint64_t data_start;      /* 8 + N: file offset of the data section */
    int count;
    SafeTensorInfo *tensors;
    int *by_name;             /* indices of tensors sorted by name (for lookups) */
    int meta_count;
    char **meta_keys, **meta_values;
} SafeTensorsFile;

/* Opens and validates `path` (see the checks above). On failure f is left closed. */
int safetensors_open(SafeTensorsFile *f, const char *path, BpError *err);
void safetensors_close(SafeTensorsFile *f);

/* The tensor named `name`, or NULL. */
const SafeTensorInfo *safetensors_find(const SafeTensorsFile *f, const char *name);

/* The __metadata__ value of `key`, or NULL. */
const char *safetensors_metadata(const SafeTensorsFile *f, const char *key);

/* Formats a shape as "[2, 3]" into buf (for error messages). */
const char *safetensors_shape_str(const int64_t *shape, int ndim, char *buf, size_t size);

/* Reads tensor t into out (t->numel floats) as float32, converting F16 and BF16.
 * Fails, naming the tensor, for other dtypes or on a read error. */
int safetensors_read_f32(const SafeTensorsFile *f, const SafeTensorInfo *t, float *out,
                         BpError *err);

/* Reads tensor t's raw little-endian bytes (t->end - t->begin of them) into out. */
int safetensors_read_raw(const SafeTensorsFile *f, const SafeTensorInfo *t, void *out,
                         BpError *err);

/* One tensor to write: `data` holds numel * dtype size bytes (float* for ST_F32). */
typedef struct {
    const char *name;
    SafeDtype dtype;
    int ndim;
    int64_t shape[SAFETENSORS_MAX_DIMS];
    const void *data;
} SafeTensorOut;

/* Writes `count` tensors and the metadata pairs (meta_keys[i] -> meta_values[i], may be
 * 0 pairs) to `path` atomically. Names must be distinct and not "__metadata__". */
int safetensors_write(const char *path, const SafeTensorOut *tensors, int count,
                      const char *const *meta_keys, const char *const *meta_values,
                      int meta_count, BpError *err);

#endif
