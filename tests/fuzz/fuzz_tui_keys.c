/* The browser's key scripts (tui/run.h scripted mode, tui/keys.h syntax): the input is
 * the script, played on a tiny model and its sense database built on first use (a BPE
 * trained on a few sentences, a random Backpack, its export), so every screen, prompt
 * and edit is reachable. Each input gets a fresh copy of the database: edits made by
 * one input do not leak into the next. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/fileio.h"
#include "../../model/checkpoint.h"
#include "../../senses/store.h"
#include "../../text/tokenizer.h"
#include "../../tui/app.h"
#include "../../tui/canvas.h"
#include "../../tui/run.h"
#include "fuzz.h"

static char model_dir[512], base_db[512], work_db[512];

static void die(const char *what, const BpError *err) {
    fprintf(stderr, "fuzz_tui_keys: %s: %s\n", what, err->msg);
    abort();
}

static void build_fixture(void) {
    const char *dir = fuzz_scratch_dir();
    static const char text[] =
        "The bank of the river is green. The bank lends money to the band.\n"
        "A river runs by the bank; the band plays by the river. Money is a bank's business.\n"
        "<|endoftext|>The caf\xc3\xa9 is by the river bank, and the band is in the caf\xc3\xa9.\n";
    char tok_dir[512];
    snprintf(tok_dir, sizeof tok_dir, "%s/tok", dir);
    snprintf(model_dir, sizeof model_dir, "%s/model", dir);
    snprintf(base_db, sizeof base_db, "%s/base.db", dir);
    snprintf(work_db, sizeof work_db, "%s/work.db", dir);
    const char *corpus = fuzz_write_file(0, "corpus.txt", text, sizeof text - 1);
    BpError err = {0};
    if (tokenizer_train(&corpus, 1, 300, tok_dir, 0, &err) != 0) die("tokenizer", &err);
    Tokenizer *tok;
    if (tokenizer_load(&tok, tok_dir, &err) != 0) die("tokenizer", &err);
    BackpackConfig c = {.arch = ARCH_BACKPACK, .vocab_size = tokenizer_vocab_size(tok), .n_embd = 16,
                        .n_layer = 1, .n_head = 2, .num_senses = 4, .n_positions = 16,
                        .sense_intermediate_scale = 4};
    tokenizer_free(tok);
    Backpack m;
    if (backpack_build(&m, &c, &err) != 0) die("model", &err);
    backpack_init_weights(&m, 7);
    if (checkpoint_save(&m, model_dir, tok_dir, NULL, NULL, &err) != 0) die("model", &err);
    ExportOptions opts = {.top_n = STORE_MIN_TOP_N};
    if (store_export(&m, tok_dir, base_db, &opts, &err) != 0) die("export", &err);
    backpack_free(&m);
    canvas_init_locale();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!model_dir[0]) build_fixture();
    /* "@FILE" reads the keys from a file: that is the command line's business */
    if (size > 0 && data[0] == '@') return 0;
    char *keys = malloc(size + 1);
    if (!keys) abort();
    memcpy(keys, data, size);
    keys[size] = '\0';
    BpError err = {0};
    char side[600];
    snprintf(side, sizeof side, "%s-wal", work_db);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", work_db);
    unlink(side);
    if (copy_file_atomic(base_db, work_db, &err) != 0) die("copy", &err);
    App *app = calloc(1, sizeof *app);
    if (!app) abort();
    if (app_open(app, work_db, model_dir, &err) != 0) die("open", &err);
    TuiScript script = {.keys = keys, .screen_out = "/dev/null", .rows = 24, .cols = 80};
    if (tui_run_scripted(app, &script, &err) != 0) fuzz_check_error(&err);
    app_close(app);
    free(app);
    free(keys);
    return 0;
}
