/* pretok.h - the GPT-2 pre-tokenizer and the byte-to-unicode alphabet (private to text/).
 *
 * Pre-tokens are the matches of GPT-2's regex
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * run by PCRE2 with UTF and UCP (Unicode properties), JIT-compiled when the library
 * has a JIT. Invalid UTF-8: the pattern is compiled with PCRE2_MATCH_INVALID_UTF, under
 * which an ill-formed byte sequence matches nothing and valid text around it matches as
 * usual; every maximal run of bytes between two matches (they can only be ill-formed
 * sequences, since every valid character is matched by some alternative) becomes one
 * pre-token of its own. So no byte is ever dropped and decode(encode(s)) == s.
 *
 * "<|endoftext|>" is split off before the regex (the caller's job, see
 * PRETOK_EOT_TEXT), as the Hugging Face GPT-2 tokenizer does with its special token.
 */
#ifndef BP_TEXT_PRETOK_H
#define BP_TEXT_PRETOK_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "../common/utf8.h"

#define PRETOK_EOT_TEXT "<|endoftext|>"
#define PRETOK_EOT_LEN 13

typedef struct {
    pcre2_code *re;
    pcre2_match_data *match;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
    int jit;                       /* 1 when the pattern is JIT-compiled */
} Pretokenizer;

int pretok_init(Pretokenizer *p, BpError *err);
void pretok_free(Pretokenizer *p);

/* Calls fn(ctx, start, len) for every pre-token of text[0..len) in order; stops and
 * returns -1 when fn returns non-zero (fn wrote err) or the regex engine fails. */
typedef int (*PretokFn)(void *ctx, const char *token, size_t len, BpError *err);
int pretok_split(Pretokenizer *p, const char *text, size_t len, PretokFn fn, void *ctx,
                 BpError *err);

/* GPT-2's bytes_to_unicode(): each byte is shown as one printable code point; the
 * printable Latin-1 bytes as themselves, the others as U+0100 + n in byte order.
 * byte_order[i] is the byte of GPT-2's token id i (ids 0..255 are single bytes in this
 * order: '!'..'~', then U+00A1..., then the remapped ones). */
typedef struct {
    uint16_t byte_to_cp[256];
    int16_t cp_to_byte[324];        /* -1 for code points outside the alphabet */
    uint8_t byte_order[256];
} ByteAlphabet;

void byte_alphabet_init(ByteAlphabet *a);
/* Appends the UTF-8 of code point cp to out; returns the number of bytes (1..4). */
int utf8_put(char *out, uint32_t cp);
/* utf8_get: common/utf8.h */

#endif
