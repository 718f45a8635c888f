#include "docstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pretok.h"

static int is_ascii_alnum(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

size_t docstream_safe_cut(const char *buf, size_t len) {
    for (size_t p = len; p-- > 1;) {
        if (buf[p] == ' ' && is_ascii_alnum((unsigned char)buf[p - 1])) return p;
        if (buf[p] == '>' && p + 1 >= PRETOK_EOT_LEN &&
            !memcmp(buf + p + 1 - PRETOK_EOT_LEN, PRETOK_EOT_TEXT, PRETOK_EOT_LEN))
            return p + 1;
    }
    return 0;
}

typedef struct {
    DocPieceFn piece;
    DocEndFn doc_end;
    void *ctx;
    int after_separator;   /* a newline at the start of what follows is dropped */
} DocState;

static int process_chunk(DocState *st, const char *chunk, size_t n, int final, BpError *err) {
    size_t pos = 0;
    for (;;) {
        const char *sep = memmem(chunk + pos, n - pos, PRETOK_EOT_TEXT, PRETOK_EOT_LEN);
        size_t end = sep ? (size_t)(sep - chunk) : n;
        const char *piece = chunk + pos;
        size_t len = end - pos;
        if (st->after_separator && len) {
            if (piece[0] == '\n') piece++, len--;
            st->after_separator = 0;
        }
        if ((sep || final) && len && piece[len - 1] == '\n') len--;
        if (len && st->piece(st->ctx, piece, len, err) != 0) return -1;
        if (!sep) break;
        if (st->doc_end(st->ctx, err) != 0) return -1;
        st->after_separator = 1;
        pos = end + PRETOK_EOT_LEN;
    }
    if (final && st->doc_end(st->ctx, err) != 0) return -1;
    return 0;
}

int docstream_read(const char *path, DocPieceFn piece, DocEndFn doc_end, void *ctx, BpError *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return bp_fail_errno(err, "%s: cannot open", path);
    DocState st = {piece, doc_end, ctx, 0};
    size_t cap = 2 * DOCSTREAM_CHUNK, len = 0;
    char *buf = malloc(cap);
    int rc = -1, eof = 0;
    if (!buf) {
        bp_fail(err, "%s: out of memory", path);
        goto done;
    }
    while (!eof) {
        if (cap - len < DOCSTREAM_CHUNK) {
            size_t grown_cap = cap * 2;
            char *grown = realloc(buf, grown_cap);
            if (!grown) {
                bp_fail(err, "%s: out of memory", path);
                goto done;
            }
            buf = grown;
            cap = grown_cap;
        }
        size_t got = fread(buf + len, 1, DOCSTREAM_CHUNK, fp);
        len += got;
        if (got < DOCSTREAM_CHUNK) {
            if (ferror(fp)) {
                bp_fail_errno(err, "%s: read error", path);
                goto done;
            }
            eof = 1;
        }
        size_t cut = len;
        if (!eof) {
            cut = docstream_safe_cut(buf, len);
            if (cut == 0) {
                if (len < DOCSTREAM_MAX_CHUNK) continue;   /* read more before cutting */
                cut = len;
                while (cut > len - 4 && ((unsigned char)buf[cut - 1] & 0xC0) == 0x80) cut--;
                if (cut > 0 && ((unsigned char)buf[cut - 1] & 0xC0) == 0xC0) cut--;
                if (cut == 0) cut = len;
            }
        }
        if (process_chunk(&st, buf, cut, eof, err) != 0) goto done;
        memmove(buf, buf + cut, len - cut);
        len -= cut;
    }
    rc = 0;
done:
    free(buf);
    fclose(fp);
    return rc;
}
