#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

/* The length of the printable UTF-8 character at s[0..n), or 0 when s[0] must be
 * escaped: a C0 or C1 control, DEL, or a byte that does not start a well-formed sequence
 * (stray continuation bytes, overlong forms, surrogates, code points past U+10FFFF). */
static size_t printable_utf8_len(const unsigned char *s, size_t n) {
    uint32_t cp;
    int len = utf8_get(s, n, &cp);
    if (len == 0 || cp < 0x20 || cp == 0x7f) return 0;
    if (cp >= 0x80 && cp <= 0x9f) return 0;  /* C1 controls (0x9b is CSI on some terminals) */
    return (size_t)len;
}

size_t bp_escape(char *out, size_t out_size, const char *in, size_t in_len) {
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;
    if (out_size == 0) return 0;
    for (size_t i = 0; i < in_len;) {
        size_t len = printable_utf8_len(s + i, in_len - i);
        if (len) {
            if (o + len >= out_size) break;  /* whole characters only */
            memcpy(out + o, s + i, len);
            o += len;
            i += len;
        } else {
            if (o + 4 >= out_size) break;
            snprintf(out + o, 5, "\\x%02x", s[i]);
            o += 4;
            i++;
        }
    }
    out[o] = '\0';
    return o;
}

/* Every message is built here and escaped as a whole: names, keys and lines quoted from
 * untrusted files reach a terminal only as printable text, and each message stays one
 * line. Escaping is idempotent (its output has nothing left to escape), so prefixing an
 * escaped message escapes nothing twice. */
static void set_message(BpError *err, const char *fmt, va_list ap, const char *tail) {
    char raw[4 * BP_ERROR_MAX];
    int n = vsnprintf(raw, sizeof raw, fmt, ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof raw) n = (int)sizeof raw - 1;
    if (tail) snprintf(raw + n, sizeof raw - (size_t)n, ": %s", tail);
    bp_escape(err->msg, sizeof err->msg, raw, strlen(raw));
}

int bp_fail(BpError *err, const char *fmt, ...) {
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    set_message(err, fmt, ap, NULL);
    va_end(ap);
    return -1;
}

int bp_fail_errno(BpError *err, const char *fmt, ...) {
    int saved = errno;
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    set_message(err, fmt, ap, strerror(saved));
    va_end(ap);
    return -1;
}

int bp_error_prefix(BpError *err, const char *fmt, ...) {
    if (!err) return -1;
    char old[BP_ERROR_MAX];
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    va_list ap;
    va_start(ap, fmt);
    set_message(err, fmt, ap, old);
    va_end(ap);
    return -1;
}
