/* store_index.c - the nearest-neighbour index: a file "<db>.index" beside the sense
 * database with an int8 copy of every exported sense vector, normalized, for screening
 * cosines (store_nearest.c re-scores the candidates exactly from the database).
 *
 * File (native byte order, little-endian on the machines this runs on):
 *   IndexHeader (4096 bytes; checksum = hash64 of the bytes before it)
 *   int8    q[k][V][d_pad]   round(x / s) of the normalized vector x of (word y, sense l),
 *                            zero-padded to d_pad = d rounded up to 64 (quantize_int8)
 *   int32   q_sum[k][V]      sum_i q[l][y][i]
 *   float   scale[k][V]      s; NaN for a vector that is not finite (always re-scored)
 *   float   resid[k][V]      |x - s q|_2, rounded up
 *   float   norm[k][V]       |x|_2, rounded up (0 for a zero vector)
 * Sense-major, so that a one-sense query reads V d_pad bytes (38.6 MB at the published
 * shape) and Sim_min all k of them (618 MB).
 *
 * The header names the database's weights hash and export id (meta): an index of
 * another export is stale. Export writes the index beside the database; a missing or
 * stale one is rebuilt from the database on first use (reading every sense vector: the
 * seconds the old in-memory index took) and written for the next process when the
 * directory is writable; otherwise it is kept in memory for this process only.
 * Opening a valid index is an mmap: O(1).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "../common/hash.h"
#include "../model/infer.h"
#include "store_private.h"

#define INDEX_MAGIC "BPKSNN1"
#define INDEX_VERSION 1u
#define INDEX_HEADER_BYTES 4096

typedef struct {
    char magic[8];
    uint32_t version, V, k, d, d_pad, reserved;
    char weights_hash[24];
    char export_id[40];
    uint64_t q_off, q_sum_off, scale_off, resid_off, norm_off, file_size;
    uint64_t checksum;
} IndexHeader;

struct NearIndex {
    void *base;          /* the mapping, or malloc'ed memory */
    size_t size;
    int mapped;
    int V, k, d, d_pad;
    const int8_t *q;
    const int32_t *q_sum;
    const float *scale, *resid, *norm;
};

static size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

/* The layout of an index of this shape into h (offsets and size). */
static void layout(IndexHeader *h, int V, int k, int d) {
    memset(h, 0, sizeof *h);
    memcpy(h->magic, INDEX_MAGIC, 8);
    h->version = INDEX_VERSION;
    h->V = (uint32_t)V;
    h->k = (uint32_t)k;
    h->d = (uint32_t)d;
    h->d_pad = (uint32_t)((d + 63) / 64 * 64);
    size_t rows = (size_t)V * k, at = INDEX_HEADER_BYTES;
    h->q_off = at;
    at = align64(at + rows * h->d_pad);
    h->q_sum_off = at;
    at = align64(at + rows * sizeof(int32_t));
    h->scale_off = at;
    at = align64(at + rows * sizeof(float));
    h->resid_off = at;
    at = align64(at + rows * sizeof(float));
    h->norm_off = at;
    h->file_size = align64(at + rows * sizeof(float));
}

static uint64_t header_checksum(const IndexHeader *h) { return hash64(h, offsetof(IndexHeader, checksum)); }

static void attach(NearIndex *x, const IndexHeader *h) {
    char *b = x->base;
    x->V = (int)h->V;
    x->k = (int)h->k;
    x->d = (int)h->d;
    x->d_pad = (int)h->d_pad;
    x->q = (const int8_t *)(b + h->q_off);
    x->q_sum = (const int32_t *)(b + h->q_sum_off);
    x->scale = (const float *)(b + h->scale_off);
    x->resid = (const float *)(b + h->resid_off);
    x->norm = (const float *)(b + h->norm_off);
}

void near_index_free(NearIndex *x) {
    if (!x) return;
    if (x->mapped) munmap(x->base, x->size);
    else free(x->base);
    free(x);
}

/* The export id of a database: meta export_id, else its creation time. */
static void export_id_of(const SenseStore *s, char *out, size_t size) {
    if (s->export_id[0]) snprintf(out, size, "%s", s->export_id);
    else snprintf(out, size, "created %.3f", s->info.created);
}

static int header_matches(const IndexHeader *h, size_t size, int V, int k, int d, const char *hash, const char *id) {
    IndexHeader want;
    layout(&want, V, k, d);
    return size >= INDEX_HEADER_BYTES && !memcmp(h->magic, INDEX_MAGIC, 8) && h->version == INDEX_VERSION &&
           h->checksum == header_checksum(h) && h->V == want.V && h->k == want.k && h->d == want.d &&
           h->d_pad == want.d_pad && h->q_off == want.q_off && h->norm_off == want.norm_off &&
           h->file_size == want.file_size && size == h->file_size && !strcmp(h->weights_hash, hash) &&
           !strcmp(h->export_id, id);
}

int near_index_path(const char *db_path, char *out, size_t size) {
    return (size_t)snprintf(out, size, "%s.index", db_path) < size ? 0 : -1;
}

/* 1 and *out when path holds a valid index of this database, else 0. */
static int open_mapped(const char *path, int V, int k, int d, const char *hash, const char *id, NearIndex **out) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    struct stat sb;
    void *base = MAP_FAILED;
    if (fstat(fd, &sb) == 0 && sb.st_size >= INDEX_HEADER_BYTES)
        base = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED) return 0;
    const IndexHeader *h = base;
    if (!header_matches(h, (size_t)sb.st_size, V, k, d, hash, id)) {
        munmap(base, (size_t)sb.st_size);
        return 0;
    }
    NearIndex *x = calloc(1, sizeof *x);
    if (!x) {
        munmap(base, (size_t)sb.st_size);
        return 0;
    }
    x->base = base;
    x->size = (size_t)sb.st_size;
    x->mapped = 1;
    attach(x, h);
    *out = x;
    return 1;
}

/* ---- building ------------------------------------------------------------------------ */

struct IndexBuilder {
    IndexHeader h;
    char *data;   /* the whole file */
};

IndexBuilder *index_builder_new(int V, int k, int d) {
    IndexBuilder *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    layout(&b->h, V, k, d);
    b->data = aligned_alloc(64, b->h.file_size);  /* rows 64-byte aligned, as in the file */
    if (b->data) memset(b->data, 0, b->h.file_size);
    if (!b->data) {
        free(b);
        return NULL;
    }
    return b;
}

void index_builder_free(IndexBuilder *b) {
    if (!b) return;
    free(b->data);
    free(b);
}

void store_normalize(const float *x, int d, float *out) {
    double nn = 0;
    for (int i = 0; i < d; i++) nn += (double)x[i] * x[i];
    float inv = nn > 0 ? (float)(1.0 / sqrt(nn)) : 0.0f;
    for (int i = 0; i < d; i++) out[i] = x[i] * inv;
}

void index_builder_add(IndexBuilder *b, int word, int sense, const float *vector, float *scratch) {
    const IndexHeader *h = &b->h;
    const int d = (int)h->d;
    const size_t row = (size_t)sense * h->V + word;
    int8_t *q = (int8_t *)(b->data + h->q_off) + row * h->d_pad;
    float *scale = (float *)(b->data + h->scale_off), *resid = (float *)(b->data + h->resid_off);
    float *norm = (float *)(b->data + h->norm_off);
    int32_t *q_sum = (int32_t *)(b->data + h->q_sum_off);
    store_normalize(vector, d, scratch);
    float max_abs = 0.0f;
    int finite = 1;
    for (int i = 0; i < d; i++) {
        if (!isfinite(scratch[i])) finite = 0;
        if (fabsf(scratch[i]) > max_abs) max_abs = fabsf(scratch[i]);
    }
    if (!finite) {
        memset(q, 0, h->d_pad);
        q_sum[row] = 0;
        scale[row] = NAN;
        resid[row] = norm[row] = 0.0f;
        return;
    }
    const float s = max_abs / 127.0f;
    quantize_int8(q, scratch, (size_t)d, s);
    double rr = 0, xx = 0;
    int32_t sum = 0;
    for (int i = 0; i < d; i++) {
        double r = (double)scratch[i] - (double)s * q[i];
        rr += r * r;
        xx += (double)scratch[i] * scratch[i];
        sum += q[i];
    }
    q_sum[row] = sum;
    scale[row] = s;
    resid[row] = (float)(sqrt(rr) * (1.0 + 1e-6));
    norm[row] = (float)(sqrt(xx) * (1.0 + 1e-6));
}

/* Finishes the header; the builder's memory becomes x (for this process). */
static NearIndex *builder_to_index(IndexBuilder *b, const char *hash, const char *id) {
    snprintf(b->h.weights_hash, sizeof b->h.weights_hash, "%s", hash);
    snprintf(b->h.export_id, sizeof b->h.export_id, "%s", id);
    b->h.checksum = header_checksum(&b->h);
    memcpy(b->data, &b->h, sizeof b->h);
    NearIndex *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->base = b->data;
    x->size = b->h.file_size;
    attach(x, &b->h);
    b->data = NULL;
    return x;
}

static int write_index(const char *path, const NearIndex *x, BpError *err) {
    AtomicFile af;
    if (atomic_open(&af, path, err)) return -1;
    if (atomic_write(&af, x->base, x->size, err)) return -1;
    return atomic_commit(&af, err);
}

int index_builder_write(IndexBuilder *b, const char *db_path, const char *weights_hash, const char *export_id,
                        BpError *err) {
    char path[4200];
    if (near_index_path(db_path, path, sizeof path)) return bp_fail(err, "%s: path too long", db_path);
    NearIndex *x = builder_to_index(b, weights_hash, export_id);
    if (!x) return bp_fail(err, "out of memory");
    int r = write_index(path, x, err);
    near_index_free(x);
    return r;
}

int store_load_index(SenseStore *s, StoreProgress progress, void *ctx, BpError *err) {
    if (s->near) return 0;
    char path[4200], id[64];
    if (near_index_path(s->info.path, path, sizeof path)) return bp_fail(err, "%s: path too long", s->info.path);
    export_id_of(s, id, sizeof id);
    if (open_mapped(path, s->V, s->k, s->d, s->info.weights_hash, id, &s->near)) {
        if (progress) progress(1.0, ctx);
        return 0;
    }
    /* missing or stale: rebuild from the database */
    IndexBuilder *b = index_builder_new(s->V, s->k, s->d);
    float *scratch = malloc(s->d * sizeof(float)), *v = malloc(s->d * sizeof(float));
    if (!b || !scratch || !v) {
        index_builder_free(b);
        free(scratch);
        free(v);
        return bp_fail(err, "out of memory for the nearest-neighbour index");
    }
    sqlite3_stmt *st;
    int r = 0, rc;
    size_t rows = (size_t)s->V * s->k, expect = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT id, vector FROM senses ORDER BY id", -1, &st, NULL) != SQLITE_OK) {
        r = store_sql_fail(s, err, "reading the sense vectors");
    } else {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if ((size_t)sqlite3_column_int64(st, 0) != expect ||
                blob_to_floats(sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1), v, s->d))
                break;
            index_builder_add(b, (int)(expect / s->k), (int)(expect % s->k), v, scratch);
            expect++;
            if (progress && expect % 4096 == 0) progress((double)expect / rows, ctx);
            if (expect == rows) break;
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) r = store_sql_fail(s, err, "reading the sense vectors");
        else if (expect != rows) r = bp_fail(err, "%s: the senses table is damaged", s->info.path);
    }
    free(scratch);
    free(v);
    if (!r && !(s->near = builder_to_index(b, s->info.weights_hash, id))) r = bp_fail(err, "out of memory");
    index_builder_free(b);
    if (r) return -1;
    /* for the next process; where the directory is not writable this one keeps it */
    BpError ignore;
    write_index(path, s->near, &ignore);
    if (progress) progress(1.0, ctx);
    return 0;
}

void store_free_index(SenseStore *s) {
    near_index_free(s->near);
    s->near = NULL;
}

/* ---- queries' access ---------------------------------------------------------------- */

void near_index_rows(const NearIndex *x, int sense, NearRows *out) {
    size_t at = (size_t)sense * x->V;
    out->q = x->q + at * x->d_pad;
    out->q_sum = x->q_sum + at;
    out->scale = x->scale + at;
    out->resid = x->resid + at;
    out->norm = x->norm + at;
    out->d_pad = x->d_pad;
}
