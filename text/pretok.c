#include "pretok.h"

#include <string.h>

static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

int pretok_init(Pretokenizer *p, BpError *err) {
    memset(p, 0, sizeof *p);
    int code;
    PCRE2_SIZE offset;
    p->re = pcre2_compile((PCRE2_SPTR)GPT2_PATTERN, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &code, &offset, NULL);
    if (!p->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return bp_fail(err, "GPT-2 pre-tokenizer regex: %s at offset %zu", (char *)msg,
                       (size_t)offset);
    }
    p->jit = pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE) == 0;
    p->match = pcre2_match_data_create_from_pattern(p->re, NULL);
    p->mctx = pcre2_match_context_create(NULL);
    if (!p->match || !p->mctx) {
        pretok_free(p);
        return bp_fail(err, "GPT-2 pre-tokenizer: out of memory");
    }
    if (p->jit) {
        /* Long runs of whitespace backtrack inside the JIT stack. */
        p->jit_stack = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, NULL);
        if (p->jit_stack) pcre2_jit_stack_assign(p->mctx, NULL, p->jit_stack);
    }
    return 0;
}

void pretok_free(Pretokenizer *p) {
    if (p->jit_stack) pcre2_jit_stack_free(p->jit_stack);
    if (p->mctx) pcre2_match_context_free(p->mctx);
    if (p->match) pcre2_match_data_free(p->match);
    if (p->re) pcre2_code_free(p->re);
    memset(p, 0, sizeof *p);
}

int pretok_split(Pretokenizer *p, const char *text, size_t len, PretokFn fn, void *ctx,
                 BpError *err) {
    size_t pos = 0;
    while (pos < len) {
        int rc = p->jit ? pcre2_jit_match(p->re, (PCRE2_SPTR)text, len, pos, 0, p->match, p->mctx)
                        : pcre2_match(p->re, (PCRE2_SPTR)text, len, pos, 0, p->match, p->mctx);
        size_t start = len, end = len;
        if (rc >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(p->match);
            start = ov[0];
            end = ov[1];
        } else if (rc != PCRE2_ERROR_NOMATCH) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return bp_fail(err, "pre-tokenizer: %s at byte %zu", (char *)msg, pos);
        }
        /* Bytes skipped before the match: ill-formed UTF-8, one pre-token. */
        if (start > pos && fn(ctx, text + pos, start - pos, err) != 0) return -1;
        if (end > start && fn(ctx, text + start, end - start, err) != 0) return -1;
        if (end <= pos) break;   /* cannot happen: no alternative matches empty */
        pos = end;
    }
    return 0;
}

void byte_alphabet_init(ByteAlphabet *a) {
    int n = 0, extra = 0;
    for (int i = 0; i < 324; i++) a->cp_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (printable) {
            a->byte_to_cp[b] = (uint16_t)b;
            a->byte_order[n++] = (uint8_t)b;
        }
    }
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (!printable) {
            a->byte_to_cp[b] = (uint16_t)(256 + extra++);
            a->byte_order[n++] = (uint8_t)b;
        }
    }
    for (int b = 0; b < 256; b++) a->cp_to_byte[a->byte_to_cp[b]] = (int16_t)b;
}

int utf8_put(char *out, uint32_t cp) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}
