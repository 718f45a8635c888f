/* utf8.h - decoding UTF-8 from untrusted bytes (the tokenizer's pre-tokenizer, and the
 * escaping of error messages in error.c). */
#ifndef BP_UTF8_H
#define BP_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes one well-formed UTF-8 character at s[0..n): its length (1..4) and *cp, or 0
 * when ill-formed (overlong, surrogate, above U+10FFFF, truncated) or n == 0. */
int utf8_get(const unsigned char *s, size_t n, uint32_t *cp);

#endif
