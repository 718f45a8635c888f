#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fileio.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c reads and writes little-endian data in place: a little-endian host is required"
#endif

static const struct {
    const char *name;
    size_t size;
} DTYPES[ST_DTYPE_COUNT] = {
    [ST_BOOL] = {"BOOL", 1},       [ST_U8] = {"U8", 1},     [ST_I8] = {"I8", 1},
    [ST_F8_E5M2] = {"F8_E5M2", 1}, [ST_F8_E4M3] = {"F8_E4M3", 1},
    [ST_I16] = {"I16", 2},         [ST_U16] = {"U16", 2},   [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2},       [ST_I32] = {"I32", 4},   [ST_U32] = {"U32", 4},
    [ST_F32] = {"F32", 4},         [ST_F64] = {"F64", 8},   [ST_I64] = {"I64", 8},
    [ST_U64] = {"U64", 8},
};

const char *safetensors_dtype_name(SafeDtype dt) {
    return (unsigned)dt < ST_DTYPE_COUNT ? DTYPES[dt].name : "?";
}

size_t safetensors_dtype_size(SafeDtype dt) {
    return (unsigned)dt < ST_DTYPE_COUNT ? DTYPES[dt].size : 0;
}

static int dtype_from_name(const char *s, SafeDtype *dt) {
    for (int i = 0; i < ST_DTYPE_COUNT; i++)
        if (!strcmp(s, DTYPES[i].name)) {
            *dt = (SafeDtype)i;
            return 0;
        }
    return -1;
}

const char *safetensors_shape_str(const int64_t *shape, int ndim, char *buf, size_t size) {
    size_t n = 0;
    n += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (n < size) snprintf(buf + n, size - n, "]");
    return buf;
}

/* --- reading ------------------------------------------------------------------------ */

static uint64_t load_le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* pread until `len` bytes are in, or fail. */
static int pread_full(int fd, void *buf, size_t len, uint64_t offset) {
    char *p = buf;
    while (len > 0) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : len;
        ssize_t got = pread(fd, p, chunk, (off_t)offset);
        if (got < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (got == 0) {
            errno = 0;  /* the file shrank under us */
            return -1;
        }
        p += got;
        len -= (size_t)got;
        offset += (uint64_t)got;
    }
    return 0;
}

void safetensors_close(SafeTensorsFile *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    for (int i = 0; i < f->count; i++) free(f->tensors[i].name);
    free(f->tensors);
    f->tensors = NULL;
    free(f->by_name);
    f->by_name = NULL;
    f->count = 0;
    for (int i = 0; i < f->meta_count; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    f->meta_keys = f->meta_values = NULL;
    f->meta_count = 0;
}

/* A non-negative JSON integer, or -1. */
static int64_t json_nonneg(const json_t *v) {
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    return x < 0 ? -1 : (int64_t)x;
}

/* Names end up in one-line error messages: no control characters. */
static int has_control_char(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

static int parse_metadata(SafeTensorsFile *f, json_t *meta, BpError *err) {
    if (!json_is_object(meta))
        return bp_fail(err, "%s: header: __metadata__ is not an object", f->path);
    size_t n = json_object_size(meta);
    f->meta_keys = calloc(n ? n : 1, sizeof *f->meta_keys);
    f->meta_values = calloc(n ? n : 1, sizeof *f->meta_values);
    if (!f->meta_keys || !f->meta_values) return bp_fail(err, "%s: out of memory", f->path);
    const char *key;
    json_t *val;
    json_object_foreach(meta, key, val) {
        if (has_control_char(key))
            return bp_fail(err, "%s: header: a __metadata__ key contains a control character",
                           f->path);
        if (!json_is_string(val))
            return bp_fail(err, "%s: header: __metadata__ value of '%s' is not a string", f->path,
                           key);
        f->meta_keys[f->meta_count] = strdup(key);
        f->meta_values[f->meta_count] = strdup(json_string_value(val));
        f->meta_count++;
        if (!f->meta_keys[f->meta_count - 1] || !f->meta_values[f->meta_count - 1])
            return bp_fail(err, "%s: out of memory", f->path);
    }
    return 0;
}

static int parse_tensor(SafeTensorsFile *f, const char *name, json_t *info, SafeTensorInfo *t,
                        BpError *err) {
    const char *p = f->path;
    if (!json_is_object(info))
        return bp_fail(err, "%s: header: tensor '%s' is not an object", p, name);
    json_t *dtype = json_object_get(info, "dtype");
    json_t *shape = json_object_get(info, "shape");
    json_t *offs = json_object_get(info, "data_offsets");
    if (!json_is_string(dtype))
        return bp_fail(err, "%s: header: tensor '%s' has no string \"dtype\"", p, name);
    if (dtype_from_name(json_string_value(dtype), &t->dtype) != 0)
        return bp_fail(err, "%s: header: tensor '%s' has unknown dtype \"%.32s\"", p, name,
                       json_string_value(dtype));
    if (!json_is_array(shape))
        return bp_fail(err, "%s: header: tensor '%s' has no \"shape\" list", p, name);
    if (json_array_size(shape) > SAFETENSORS_MAX_DIMS)
        return bp_fail(err, "%s: header: tensor '%s' has %zu dimensions (at most %d)", p, name,
                       json_array_size(shape), SAFETENSORS_MAX_DIMS);
    t->ndim = (int)json_array_size(shape);
    t->numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        int64_t dim = json_nonneg(json_array_get(shape, (size_t)i));
        if (dim < 0)
            return bp_fail(err, "%s: header: tensor '%s' shape entry %d is not a non-negative integer",
                           p, name, i);
        t->shape[i] = dim;
        if (__builtin_mul_overflow(t->numel, (uint64_t)dim, &t->numel))
            return bp_fail(err, "%s: header: tensor '%s' shape overflows", p, name);
    }
    if (!json_is_array(offs) || json_array_size(offs) != 2)
        return bp_fail(err, "%s: header: tensor '%s' has no \"data_offsets\" [begin, end]", p,
                       name);
    int64_t begin = json_nonneg(json_array_get(offs, 0));
    int64_t end = json_nonneg(json_array_get(offs, 1));
    if (begin < 0 || end < 0)
        return bp_fail(err, "%s: header: tensor '%s' data_offsets are not non-negative integers",
                       p, name);
    if (end < begin)
        return bp_fail(err, "%s: header: tensor '%s' data_offsets [%" PRId64 ", %" PRId64
                       "] end before begin", p, name, begin, end);
    t->begin = (uint64_t)begin;
    t->end = (uint64_t)end;
    uint64_t bytes;
    if (__builtin_mul_overflow(t->numel, (uint64_t)safetensors_dtype_size(t->dtype), &bytes))
        return bp_fail(err, "%s: header: tensor '%s' shape overflows", p, name);
    if (t->end - t->begin != bytes) {
        char sb[160];
        return bp_fail(err, "%s: header: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64
                       "] hold %" PRIu64 " bytes, but %s %s needs %" PRIu64, p, name, t->begin,
                       t->end, t->end - t->begin, safetensors_dtype_name(t->dtype),
                       safetensors_shape_str(t->shape, t->ndim, sb, sizeof sb), bytes);
    }
    uint64_t data_size = f->file_size - f->data_start;
    if (t->end > data_size)
        return bp_fail(err, "%s: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64
                       "] run past the end of the data section (%" PRIu64 " bytes): truncated file?",
                       p, name, t->begin, t->end, data_size);
    return 0;
}

typedef struct {
    uint64_t begin, end;
    int index;
} Span;

static int by_offset(const void *a, const void *b) {
    const Span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* qsort has no context argument; the table being sorted is set just before the call.
 * _Thread_local keeps concurrent opens in different threads apart. */
static _Thread_local const SafeTensorInfo *name_base;
static int by_name(const void *a, const void *b) {
    return strcmp(name_base[*(const int *)a].name, name_base[*(const int *)b].name);
}

/* The tensors, in offset order, must cover [0, data size) exactly. */
static int check_tiling(SafeTensorsFile *f, BpError *err) {
    Span *order = malloc(sizeof *order * (size_t)(f->count ? f->count : 1));
    if (!order) return bp_fail(err, "%s: out of memory", f->path);
    for (int i = 0; i < f->count; i++)
        order[i] = (Span){f->tensors[i].begin, f->tensors[i].end, i};
    qsort(order, (size_t)f->count, sizeof *order, by_offset);
    uint64_t expected = 0;
    const char *prev = NULL;
    int rc = 0;
    for (int i = 0; i < f->count && rc == 0; i++) {
        const SafeTensorInfo *t = &f->tensors[order[i].index];
        if (t->begin < expected)
            rc = bp_fail(err, "%s: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64
                         "] overlap tensor '%s'", f->path, t->name, t->begin, t->end,
                         prev ? prev : "?");
        else if (t->begin > expected)
            rc = bp_fail(err, "%s: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64
                         "] leave a gap of %" PRIu64 " bytes before them", f->path, t->name,
                         t->begin, t->end, t->begin - expected);
        expected = t->end;
        prev = t->name;
    }
    free(order);
    if (rc) return rc;
    uint64_t data_size = f->file_size - f->data_start;
    if (expected != data_size)
        return bp_fail(err, "%s: %" PRIu64 " bytes after the last tensor's data (the tensors "
                       "cover %" PRIu64 " of %" PRIu64 ")", f->path, data_size - expected,
                       expected, data_size);
    return 0;
}

int safetensors_open(SafeTensorsFile *f, const char *path, BpError *err) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    if (snprintf(f->path, sizeof f->path, "%s", path) >= (int)sizeof f->path)
        return bp_fail(err, "%s: path too long", path);
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) return bp_fail_errno(err, "%s: cannot open", path);
    struct stat st;
    if (fstat(f->fd, &st) != 0) {
        bp_fail_errno(err, "%s: cannot stat", path);
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        bp_fail(err, "%s: not a regular file", path);
        goto fail;
    }
    f->file_size = (uint64_t)st.st_size;
    if (f->file_size < 8) {
        bp_fail(err, "%s: %" PRIu64 " bytes, too short for a safetensors header", path,
                f->file_size);
        goto fail;
    }
    unsigned char lenbuf[8];
    if (pread_full(f->fd, lenbuf, 8, 0) != 0) {
        bp_fail_errno(err, "%s: read error", path);
        goto fail;
    }
    uint64_t n = load_le64(lenbuf);
    if (n > SAFETENSORS_MAX_HEADER) {
        bp_fail(err, "%s: header length %" PRIu64 " exceeds the %llu-byte limit (not a safetensors "
                "file?)", path, n, SAFETENSORS_MAX_HEADER);
        goto fail;
    }
    if (n > f->file_size - 8) {
        bp_fail(err, "%s: header length %" PRIu64 " runs past the end of the file (%" PRIu64
                " bytes)", path, n, f->file_size);
        goto fail;
    }
    f->data_start = 8 + n;
    char *header = malloc(n + 1);
    if (!header) {
        bp_fail(err, "%s: out of memory for a %" PRIu64 "-byte header", path, n);
        goto fail;
    }
    if (pread_full(f->fd, header, n, 8) != 0) {
        free(header);
        bp_fail_errno(err, "%s: read error", path);
        goto fail;
    }
    header[n] = '\0';
    if (n == 0 || header[0] != '{') {
        free(header);
        bp_fail(err, "%s: header does not start with '{' (not a safetensors file?)", path);
        goto fail;
    }
    json_error_t jerr;
    json_t *root = json_loadb(header, n, JSON_REJECT_DUPLICATES, &jerr);
    free(header);
    if (!root) {
        bp_fail(err, "%s: header is not valid JSON (line %d column %d: %s)", path, jerr.line,
                jerr.column, jerr.text);
        goto fail;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        bp_fail(err, "%s: header is not a JSON object", path);
        goto fail;
    }
    size_t total = json_object_size(root);
    f->tensors = calloc(total ? total : 1, sizeof *f->tensors);
    if (!f->tensors) {
        json_decref(root);
        bp_fail(err, "%s: out of memory", path);
        goto fail;
    }
    const char *key;
    json_t *val;
    int rc = 0;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            if ((rc = parse_metadata(f, val, err)) != 0) break;
            continue;
        }
        if (has_control_char(key)) {
            rc = bp_fail(err, "%s: header: a tensor name contains a control character", path);
            break;
        }
        SafeTensorInfo *t = &f->tensors[f->count];
        t->name = strdup(key);
        if (!t->name) {
            rc = bp_fail(err, "%s: out of memory", path);
            break;
        }
        f->count++;
        if ((rc = parse_tensor(f, key, val, t, err)) != 0) break;
    }
    json_decref(root);
    if (rc != 0 || check_tiling(f, err) != 0) goto fail;
    f->by_name = malloc(sizeof *f->by_name * (size_t)(f->count ? f->count : 1));
    if (!f->by_name) {
        bp_fail(err, "%s: out of memory", path);
        goto fail;
    }
    for (int i = 0; i < f->count; i++) f->by_name[i] = i;
    name_base = f->tensors;
    qsort(f->by_name, (size_t)f->count, sizeof *f->by_name, by_name);
    return 0;
fail:
    safetensors_close(f);
    return -1;
}

const SafeTensorInfo *safetensors_find(const SafeTensorsFile *f, const char *name) {
    int lo = 0, hi = f->count - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const SafeTensorInfo *t = &f->tensors[f->by_name[mid]];
        int c = strcmp(name, t->name);
        if (c == 0) return t;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

const char *safetensors_metadata(const SafeTensorsFile *f, const char *key) {
    for (int i = 0; i < f->meta_count; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
    return NULL;
}

int safetensors_read_raw(const SafeTensorsFile *f, const SafeTensorInfo *t, void *out,
                         BpError *err) {
    if (pread_full(f->fd, out, (size_t)(t->end - t->begin), f->data_start + t->begin) != 0) {
        if (errno == 0)
            return bp_fail(err, "%s: tensor '%s': unexpected end of file", f->path, t->name);
        return bp_fail_errno(err, "%s: tensor '%s': read error", f->path, t->name);
    }
    return 0;
}

/* IEEE half -> float, exact (subnormals, infinities and NaNs included). */
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else {  /* subnormal: normalize */
        exp = 113;
        while (!(man & 0x400)) {
            man <<= 1;
            exp--;
        }
        bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
    }
    float x;
    memcpy(&x, &bits, 4);
    return x;
}

static float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float x;
    memcpy(&x, &bits, 4);
    return x;
}

int safetensors_read_f32(const SafeTensorsFile *f, const SafeTensorInfo *t, float *out,
                         BpError *err) {
    if (t->dtype == ST_F32) return safetensors_read_raw(f, t, out, err);
    if (t->dtype != ST_F16 && t->dtype != ST_BF16)
        return bp_fail(err, "%s: tensor '%s' has dtype %s, want F32 (or F16, BF16)", f->path,
                       t->name, safetensors_dtype_name(t->dtype));
    /* Half precision: read in chunks and widen, so no second full-size buffer exists. */
    enum { CHUNK = 1 << 16 };
    uint16_t *buf = malloc(CHUNK * sizeof *buf);
    if (!buf) return bp_fail(err, "%s: out of memory", f->path);
    for (uint64_t done = 0; done < t->numel;) {
        size_t n = t->numel - done < CHUNK ? (size_t)(t->numel - done) : CHUNK;
        if (pread_full(f->fd, buf, n * 2, f->data_start + t->begin + done * 2) != 0) {
            int e = errno;
            free(buf);
            if (e == 0)
                return bp_fail(err, "%s: tensor '%s': unexpected end of file", f->path, t->name);
            errno = e;
            return bp_fail_errno(err, "%s: tensor '%s': read error", f->path, t->name);
        }
        if (t->dtype == ST_F16)
            for (size_t i = 0; i < n; i++) out[done + i] = f16_to_f32(buf[i]);
        else
            for (size_t i = 0; i < n; i++) out[done + i] = bf16_to_f32(buf[i]);
        done += n;
    }
    free(buf);
    return 0;
}

/* --- writing ------------------------------------------------------------------------ */

typedef struct {
    const SafeTensorOut *t;
    uint64_t bytes;
} WriteItem;

/* The reference serializer's order: larger dtypes first (keeps every tensor aligned to
 * its element size), then by name. */
static int write_order(const void *a, const void *b) {
    const WriteItem *x = a, *y = b;
    size_t sx = safetensors_dtype_size(x->t->dtype), sy = safetensors_dtype_size(y->t->dtype);
    if (sx != sy) return sx > sy ? -1 : 1;
    return strcmp(x->t->name, y->t->name);
}

int safetensors_write(const char *path, const SafeTensorOut *tensors, int count,
                      const char *const *meta_keys, const char *const *meta_values,
                      int meta_count, BpError *err) {
    if (count < 0 || meta_count < 0) return bp_fail(err, "%s: negative tensor count", path);
    WriteItem *items = malloc(sizeof *items * (size_t)(count ? count : 1));
    if (!items) return bp_fail(err, "%s: out of memory", path);
    json_t *root = json_object();
    json_t *meta = meta_count ? json_object() : NULL;
    char *header = NULL;
    int rc = -1;
    if (!root || (meta_count && !meta)) {
        bp_fail(err, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < count; i++) {
        const SafeTensorOut *t = &tensors[i];
        if (!t->name || !strcmp(t->name, "__metadata__") || (unsigned)t->dtype >= ST_DTYPE_COUNT ||
            t->ndim < 0 || t->ndim > SAFETENSORS_MAX_DIMS) {
            bp_fail(err, "%s: tensor %d ('%s') has an invalid name, dtype or rank", path, i,
                    t->name ? t->name : "(null)");
            goto done;
        }
        uint64_t numel = 1;
        for (int j = 0; j < t->ndim; j++)
            if (t->shape[j] < 0 || __builtin_mul_overflow(numel, (uint64_t)t->shape[j], &numel)) {
                bp_fail(err, "%s: tensor '%s' has an invalid shape", path, t->name);
                goto done;
            }
        items[i].t = t;
        if (__builtin_mul_overflow(numel, (uint64_t)safetensors_dtype_size(t->dtype),
                                   &items[i].bytes)) {
            bp_fail(err, "%s: tensor '%s' has an invalid shape", path, t->name);
            goto done;
        }
        if (items[i].bytes && !t->data) {
            bp_fail(err, "%s: tensor '%s' has no data", path, t->name);
            goto done;
        }
    }
    qsort(items, (size_t)count, sizeof *items, write_order);
    for (int i = 1; i < count; i++)
        if (!strcmp(items[i].t->name, items[i - 1].t->name)) {
            bp_fail(err, "%s: tensor '%s' given twice", path, items[i].t->name);
            goto done;
        }
    if (meta) {
        for (int i = 0; i < meta_count; i++)
            if (json_object_set_new(meta, meta_keys[i], json_string(meta_values[i])) != 0) {
                bp_fail(err, "%s: metadata '%s' is not valid UTF-8", path, meta_keys[i]);
                goto done;
            }
        json_object_set(root, "__metadata__", meta);
    }
    uint64_t offset = 0;
    for (int i = 0; i < count; i++) {
        const SafeTensorOut *t = items[i].t;
        json_t *shape = json_array();
        json_t *info = json_object();
        if (!shape || !info) {
            json_decref(shape);
            json_decref(info);
            bp_fail(err, "%s: out of memory", path);
            goto done;
        }
        for (int j = 0; j < t->ndim; j++) json_array_append_new(shape, json_integer(t->shape[j]));
        json_object_set_new(info, "dtype", json_string(safetensors_dtype_name(t->dtype)));
        json_object_set_new(info, "shape", shape);
        json_object_set_new(info, "data_offsets",
                            json_pack("[II]", (json_int_t)offset,
                                      (json_int_t)(offset + items[i].bytes)));
        if (json_object_set_new(root, t->name, info) != 0) {
            bp_fail(err, "%s: tensor name '%s' is not valid UTF-8", path, t->name);
            goto done;
        }
        offset += items[i].bytes;
    }
    header = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!header) {
        bp_fail(err, "%s: cannot format the header", path);
        goto done;
    }
    size_t hlen = strlen(header), padded = (hlen + 7) / 8 * 8;
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++) lenbuf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    AtomicFile af;
    if (atomic_open(&af, path, err) != 0) goto done;
    if (atomic_write(&af, lenbuf, 8, err) != 0 || atomic_write(&af, header, hlen, err) != 0 ||
        atomic_write(&af, "        ", padded - hlen, err) != 0)
        goto done;
    for (int i = 0; i < count; i++)
        if (atomic_write(&af, items[i].t->data, (size_t)items[i].bytes, err) != 0) goto done;
    rc = atomic_commit(&af, err);
done:
    free(header);
    json_decref(meta);
    json_decref(root);
    free(items);
    return rc;
}
