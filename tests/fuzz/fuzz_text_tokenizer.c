/* The tokenizer's files (text/tokenizer.h tokenizer_load): the input is vocab.json, then
 * a line "#merges.txt" (FUZZ_SEPARATOR), then merges.txt. A tokenizer that loads must
 * encode any text and decode it back to the same bytes; the text is the input itself. */
#include <stdlib.h>
#include <string.h>

#include "../../text/tokenizer.h"
#include "fuzz.h"

#define FUZZ_SEPARATOR "\n#merges.txt\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *sep = memmem(data, size, FUZZ_SEPARATOR, strlen(FUZZ_SEPARATOR));
    size_t vocab_len = sep ? (size_t)(sep - (const char *)data) : size;
    size_t merges_at = sep ? vocab_len + strlen(FUZZ_SEPARATOR) : size;
    fuzz_write_file(0, "vocab.json", data, vocab_len);
    fuzz_write_file(1, "merges.txt", data + merges_at, size - merges_at);
    Tokenizer *tok;
    BpError err = {0};
    if (tokenizer_load(&tok, fuzz_scratch_dir(), &err) != 0) {
        fuzz_check_error(&err);
        return 0;
    }
    int *ids = NULL;
    size_t n = 0, cap = 0, text_len = size < 4096 ? size : 4096;
    if (tokenizer_encode(tok, (const char *)data, text_len, &ids, &n, &cap, &err) == 0) {
        int v = tokenizer_vocab_size(tok);
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= v) abort();
        char *back = NULL;
        size_t back_len = 0;
        if (tokenizer_decode(tok, ids, n, &back, &back_len, &err) != 0) abort();
        if (back_len != text_len || memcmp(back, data, text_len) != 0) abort();  /* decode(encode(s)) == s */
        free(back);
    } else {
        fuzz_check_error(&err);
    }
    free(ids);
    char readable[256];
    for (int id = 0; id < tokenizer_vocab_size(tok) && id < 512; id++) {
        size_t len;
        tokenizer_token_bytes(tok, id, &len);
        tokenizer_token_string(tok, id);
        tokenizer_token_readable(tok, id, readable, sizeof readable);
    }
    tokenizer_free(tok);
    return 0;
}
