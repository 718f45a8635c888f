#include "compat.h"

#include <stdio.h>

#include "../text/tokfile.h"

static int check_fits(const Tokenizer *tok, const char *dir, int model_vocab, BpError *err) {
    int tv = tokenizer_vocab_size(tok);
    if (model_vocab > 0 && tv > model_vocab)
        return bp_fail(err, "%s: the tokenizer has %d ids, the model only %d", dir, tv, model_vocab);
    return 0;
}

int compat_load_tokenizer(Tokenizer **tok, const char *dir, int model_vocab, BpError *err) {
    if (tokenizer_load(tok, dir, err) != 0) return -1;
    if (check_fits(*tok, dir, model_vocab, err) != 0) {
        tokenizer_free(*tok);
        *tok = NULL;
        return -1;
    }
    return 0;
}

int compat_check_tokfile(const char *path, const char *tokenizer_dir, int model_vocab, BpError *err) {
    Tokenizer *tok;
    if (compat_load_tokenizer(&tok, tokenizer_dir, model_vocab, err) != 0) return -1;
    int rc = tokfile_check_tokenizer(path, tok, tokenizer_dir, err);
    tokenizer_free(tok);
    return rc;
}

int compat_check_data(const char *data_prefix, const char *tokenizer_dir, int model_vocab, BpError *err) {
    Tokenizer *tok;
    if (compat_load_tokenizer(&tok, tokenizer_dir, model_vocab, err) != 0) return -1;
    char path[4096];
    int rc = 0;
    for (int split = 0; split < 2 && rc == 0; split++) {
        if (snprintf(path, sizeof path, "%s.%s.tok", data_prefix, split ? "val" : "train") >= (int)sizeof path)
            rc = bp_fail(err, "%s: path too long", data_prefix);
        else
            rc = tokfile_check_tokenizer(path, tok, tokenizer_dir, err);
    }
    tokenizer_free(tok);
    return rc;
}
