#include "init.h"

#include <dirent.h>
#include <string.h>

#include "../common/fileio.h"
#include "../model/checkpoint.h"
#include "../text/tokenizer.h"
#include "trainer.h"

static int is_checkpoint_file(const char *name) {
    static const char *const own[] = {"config.json", "model.safetensors", "vocab.json",
                                      "merges.txt", TRAIN_STATE_FILE, TRAIN_METRICS_FILE};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (!strcmp(name, own[i])) return 1;
    return 0;
}

static int check_out_dir(const char *dir, int force, BpError *err) {
    if (!dir_exists(dir)) {
        if (file_exists(dir)) return bp_fail(err, "%s: exists and is not a directory", dir);
        return 0;
    }
    DIR *d = opendir(dir);
    if (!d) return bp_fail_errno(err, "%s: cannot open", dir);
    struct dirent *ent;
    int rc = 0;
    while (rc == 0 && (ent = readdir(d)) != NULL) {
        if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, "..")) continue;
        if (!is_checkpoint_file(ent->d_name))
            rc = bp_fail(err, "%s is not empty (it holds '%s', which init would delete): choose another --out",
                         dir, ent->d_name);
        else if (!force && !strcmp(ent->d_name, "model.safetensors"))
            rc = bp_fail(err, "%s already holds a model (--force replaces it)", dir);
    }
    closedir(d);
    return rc;
}

int model_init_write(const ModelInitOptions *o, size_t *n_params, BpError *err) {
    BackpackConfig c = o->model;
    if (o->tokenizer_dir) {
        Tokenizer *tok;
        if (tokenizer_load(&tok, o->tokenizer_dir, err) != 0) return -1;
        int tv = tokenizer_vocab_size(tok);
        tokenizer_free(tok);
        if (c.vocab_size > 0 && c.vocab_size < tv)
            return bp_fail(err, "--vocab %d is smaller than the vocabulary of %s (%d)", c.vocab_size,
                           o->tokenizer_dir, tv);
        if (c.vocab_size <= 0) c.vocab_size = tv;
    } else if (c.vocab_size <= 0) {
        return bp_fail(err, "no vocabulary size: give a tokenizer or a vocabulary size");
    }
    if (check_out_dir(o->out_dir, o->force, err) != 0) return -1;
    if (backpack_config_validate(&c, err) != 0) return -1;
    Backpack m;
    if (backpack_build(&m, &c, err) != 0) return -1;
    backpack_init_weights(&m, o->seed);
    int rc = checkpoint_save(&m, o->out_dir, o->tokenizer_dir, NULL, NULL, err);
    if (n_params) *n_params = m.num_parameters;
    backpack_free(&m);
    return rc;
}
