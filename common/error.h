/* error.h - one-line errors that travel up to the command line.
 *
 * Every fallible function takes a `BpError *err` as its last argument and returns
 * 0 on success or -1 on failure, after writing one line into err->msg that names the
 * file (or key, tensor, word) and the problem, e.g.
 *     "ckpt/model.safetensors: tensor 'backpack.gpt2_model.wte.weight' has shape [10, 16], config wants [50, 16]"
 * The caller adds context only where the callee could not know it; the command-line
 * front end prints "backpack: <msg>" to stderr and exits non-zero.
 * err may be NULL when the caller does not care about the message.
 * Messages quote untrusted text (a tensor name, a line of merges.txt): every message is
 * escaped as it is formatted (bp_escape), so control bytes and invalid UTF-8 never reach
 * the terminal raw and a message is always one line.
 */
#ifndef BP_ERROR_H
#define BP_ERROR_H

#include <stddef.h>

#define BP_ERROR_MAX 512

typedef struct {
    char msg[BP_ERROR_MAX];
} BpError;

/* Formats the message into err (printf-style) and returns -1, so that
 *     return bp_fail(err, "%s: empty corpus", path);
 * both reports and fails. */
int bp_fail(BpError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like bp_fail, appending ": strerror(errno)" for the current errno. */
int bp_fail_errno(BpError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copies in_len bytes of in to out (NUL-terminated, truncated to whole characters to fit
 * out_size), keeping printable ASCII and well-formed UTF-8 and writing every other byte -
 * C0 and C1 controls, DEL, bytes of malformed sequences - as "\xNN". Returns the length
 * written. */
size_t bp_escape(char *out, size_t out_size, const char *in, size_t in_len);

/* Prefixes an existing message: "<prefix>: <old message>". Returns -1. */
int bp_error_prefix(BpError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
