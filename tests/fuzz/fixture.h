/* fixture.h - a tiny model and its sense database, built once per process in the fuzz
 * scratch directory, for the targets that need a database that opens (senses_store,
 * tui_keys): a BPE trained on a few sentences (so words resolve and prompts encode), a
 * random Backpack, its export. Included by those targets only (it needs every module). */
#ifndef BP_FUZZ_FIXTURE_H
#define BP_FUZZ_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "../../model/checkpoint.h"
#include "../../common/fileio.h"
#include "../../senses/store.h"
#include "../../text/tokenizer.h"
#include "fuzz.h"

typedef struct {
    char model_dir[512];
    char db[512];
} FuzzFixture;

static void fixture_die(const char *what, const BpError *err) {
    fprintf(stderr, "fuzz fixture: %s: %s\n", what, err->msg);
    abort();
}

static const FuzzFixture *fuzz_fixture(void) {
    static FuzzFixture fx;
    if (fx.db[0]) return &fx;
    const char *dir = fuzz_scratch_dir();
    static const char text[] =
        "The bank of the river is green. The bank lends money to the band.\n"
        "A river runs by the bank; the band plays by the river. Money is a bank's business.\n"
        "<|endoftext|>The caf\xc3\xa9 is by the river bank, and the band is in the caf\xc3\xa9.\n";
    char tok_dir[512], corpus[512];
    snprintf(tok_dir, sizeof tok_dir, "%s/fixture-tok", dir);
    snprintf(corpus, sizeof corpus, "%s/fixture.txt", dir);
    snprintf(fx.model_dir, sizeof fx.model_dir, "%s/fixture-model", dir);
    snprintf(fx.db, sizeof fx.db, "%s/fixture.db", dir);
    BpError err = {0};
    if (write_file_atomic(corpus, text, sizeof text - 1, &err) != 0) fixture_die("corpus", &err);
    const char *files[] = {corpus};
    if (tokenizer_train(files, 1, 300, tok_dir, 0, &err) != 0) fixture_die("tokenizer", &err);
    Tokenizer *tok;
    if (tokenizer_load(&tok, tok_dir, &err) != 0) fixture_die("tokenizer", &err);
    BackpackConfig c = {.arch = ARCH_BACKPACK, .vocab_size = tokenizer_vocab_size(tok), .n_embd = 16,
                        .n_layer = 1, .n_head = 2, .num_senses = 4, .n_positions = 16,
                        .sense_intermediate_scale = 4};
    tokenizer_free(tok);
    Backpack m;
    if (backpack_build(&m, &c, &err) != 0) fixture_die("model", &err);
    backpack_init_weights(&m, 7);
    if (checkpoint_save(&m, fx.model_dir, tok_dir, NULL, NULL, &err) != 0) fixture_die("model", &err);
    ExportOptions opts = {.top_n = STORE_MIN_TOP_N};
    if (store_export(&m, tok_dir, fx.db, &opts, &err) != 0) fixture_die("export", &err);
    backpack_free(&m);
    return &fx;
}

#endif
