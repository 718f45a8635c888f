/* tokfile.c - token files (format in tokfile.h). */
#include "tokfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fileio.h"

static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p) { return get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v) {
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

int tokfile_open(TokFile *tf, const char *path, BpError *err) {
    memset(tf, 0, sizeof *tf);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return bp_fail_errno(err, "%s: cannot open", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = bp_fail_errno(err, "%s: cannot stat", path);
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return bp_fail(err, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size < TOKFILE_HEADER_SIZE) {
        close(fd);
        return bp_fail(err, "%s: %zu bytes, too short for a token file header (%d bytes)", path, size,
                       TOKFILE_HEADER_SIZE);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return bp_fail_errno(err, "%s: cannot map", path);
    const unsigned char *h = map;
    uint32_t magic = get_u32(h), version = get_u32(h + 4), vocab = get_u32(h + 8), width = get_u32(h + 12);
    uint64_t count = get_u64(h + 16), tokenizer_hash = get_u64(h + 24);
    int rc = -1;
    if (magic != TOKFILE_MAGIC) {
        bp_fail(err, "%s: not a token file (magic 0x%08x, expected 0x%08x \"BKPK\")", path, magic,
                TOKFILE_MAGIC);
    } else if (version != TOKFILE_VERSION) {
        bp_fail(err, "%s: token file version %u, this program reads version %u", path, version,
                TOKFILE_VERSION);
    } else if (width != 2 && width != 4) {
        bp_fail(err, "%s: id width %u in the header (must be 2 or 4)", path, width);
    } else if (vocab == 0 || (width == 2 && vocab > 65536)) {
        bp_fail(err, "%s: vocab size %u does not fit id width %u", path, vocab, width);
    } else if (count > (UINT64_MAX - TOKFILE_HEADER_SIZE) / width ||
               TOKFILE_HEADER_SIZE + count * width != (uint64_t)size) {
        bp_fail(err, "%s: file size %zu does not match the header (%d + %llu ids x %u bytes)", path,
                size, TOKFILE_HEADER_SIZE, (unsigned long long)count, width);
    } else {
        rc = 0;
        tf->vocab_size = vocab;
        tf->id_width = width;
        tf->count = count;
        tf->tokenizer_hash = tokenizer_hash;
        tf->ids = h + TOKFILE_HEADER_SIZE;
        tf->map = map;
        tf->map_size = size;
        /* Every id is used as an index downstream: check them once here. */
        for (uint64_t i = 0; i < count; i++) {
            const unsigned char *p = h + TOKFILE_HEADER_SIZE + i * width;
            uint32_t id = width == 2 ? (uint32_t)p[0] | (uint32_t)p[1] << 8 : get_u32(p);
            if (id >= vocab) {
                rc = bp_fail(err, "%s: id %u at position %llu is out of range (vocab size %u)", path, id,
                             (unsigned long long)i, vocab);
                break;
            }
        }
    }
    if (rc != 0) {
        munmap(map, size);
        memset(tf, 0, sizeof *tf);
    }
    return rc;
}

void tokfile_close(TokFile *tf) {
    if (tf->map) munmap(tf->map, tf->map_size);
    memset(tf, 0, sizeof *tf);
}

#define WRITER_BUF_IDS 65536

struct TokFileWriter {
    AtomicFile af;
    uint32_t vocab_size, id_width;
    uint64_t count, tokenizer_hash;
    unsigned char buf[WRITER_BUF_IDS * 4];
    size_t buf_len;
};

int tokfile_writer_open(TokFileWriter **out, const char *path, uint32_t vocab_size, BpError *err) {
    *out = NULL;
    if (vocab_size == 0) return bp_fail(err, "%s: vocab size 0", path);
    TokFileWriter *w = calloc(1, sizeof *w);
    if (!w) return bp_fail(err, "%s: out of memory", path);
    w->vocab_size = vocab_size;
    w->id_width = vocab_size <= 65536 ? 2 : 4;
    if (atomic_open(&w->af, path, err) != 0) {
        free(w);
        return -1;
    }
    unsigned char header[TOKFILE_HEADER_SIZE] = {0};   /* the real one at commit */
    if (atomic_write(&w->af, header, sizeof header, err) != 0) {
        free(w);
        return -1;
    }
    *out = w;
    return 0;
}

static int writer_flush(TokFileWriter *w, BpError *err) {
    if (!w->af.fp) return bp_fail(err, "%s: an earlier write failed", w->af.path);
    if (w->buf_len && atomic_write(&w->af, w->buf, w->buf_len, err) != 0) return -1;
    w->buf_len = 0;
    return 0;
}

int tokfile_writer_append(TokFileWriter *w, const int *ids, size_t n, BpError *err) {
    if (!w->af.fp) return bp_fail(err, "%s: an earlier write failed", w->af.path);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (uint32_t)ids[i] >= w->vocab_size)
            return bp_fail(err, "%s: id %d out of range for vocab size %u", w->af.path, ids[i],
                           w->vocab_size);
        if (w->buf_len + 4 > sizeof w->buf && writer_flush(w, err) != 0) return -1;
        uint32_t id = (uint32_t)ids[i];
        w->buf[w->buf_len++] = (unsigned char)id;
        w->buf[w->buf_len++] = (unsigned char)(id >> 8);
        if (w->id_width == 4) {
            w->buf[w->buf_len++] = (unsigned char)(id >> 16);
            w->buf[w->buf_len++] = (unsigned char)(id >> 24);
        }
    }
    w->count += n;
    return 0;
}

int tokfile_writer_commit(TokFileWriter *w, BpError *err) {
    int rc = -1;
    if (writer_flush(w, err) != 0) goto done;   /* a failed write already removed the temp file */
    unsigned char header[TOKFILE_HEADER_SIZE] = {0};
    put_u32(header, TOKFILE_MAGIC);
    put_u32(header + 4, TOKFILE_VERSION);
    put_u32(header + 8, w->vocab_size);
    put_u32(header + 12, w->id_width);
    put_u64(header + 16, w->count);
    put_u64(header + 24, w->tokenizer_hash);
    if (fseek(w->af.fp, 0, SEEK_SET) != 0) {
        bp_fail_errno(err, "%s: seek failed", w->af.path);
        atomic_abort(&w->af);
        goto done;
    }
    if (atomic_write(&w->af, header, sizeof header, err) != 0) goto done;
    rc = atomic_commit(&w->af, err);
done:
    free(w);
    return rc;
}

void tokfile_writer_set_tokenizer_hash(TokFileWriter *w, uint64_t hash) { w->tokenizer_hash = hash; }

uint64_t tokfile_tokenizer_hash(const Tokenizer *tok) {
    uint64_t h = 0xcbf29ce484222325ull;
    int n = tokenizer_vocab_size(tok);
    for (int id = 0; id < n; id++) {
        size_t len;
        const unsigned char *b = (const unsigned char *)tokenizer_token_bytes(tok, id, &len);
        if (!b) len = 0;
        /* the length first, so that the boundaries between ids count */
        for (int i = 0; i < 4; i++) h = (h ^ (unsigned char)(len >> (8 * i))) * 0x100000001b3ull;
        for (size_t i = 0; i < len; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    }
    return h ? h : 1;
}

int tokfile_check_tokenizer(const char *path, const Tokenizer *tok, const char *tokenizer_dir, BpError *err) {
    TokFile tf;
    if (tokfile_open(&tf, path, err) != 0) return -1;
    int rc = 0;
    int tv = tokenizer_vocab_size(tok);
    if (tf.vocab_size != (uint32_t)tv)
        rc = bp_fail(err, "%s: made by a tokenizer of %u ids, but %s has %d: tokenize the text again with it",
                     path, tf.vocab_size, tokenizer_dir, tv);
    else if (tf.tokenizer_hash && tf.tokenizer_hash != tokfile_tokenizer_hash(tok))
        rc = bp_fail(err, "%s: made by a different tokenizer than %s (same size, other tokens): tokenize "
                     "the text again with it", path, tokenizer_dir);
    tokfile_close(&tf);
    return rc;
}

void tokfile_writer_abort(TokFileWriter *w) {
    if (!w) return;
    atomic_abort(&w->af);
    free(w);
}
