/* train_fixture.h - what the train suites share: a temporary directory with a learnable
 * token corpus (DIR/data.train.tok, DIR/data.val.tok), a tiny model and run
 * configuration, and a hook that records every step. Header-only; the directory is
 * fixture.h's tmp, made by setup_train_fixture and removed by temp_dir_teardown. */
#ifndef BP_TRAIN_FIXTURE_H
#define BP_TRAIN_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "../common/fileio.h"
#include "../common/rng.h"
#include "../model/checkpoint.h"
#include "../train/trainer.h"
#include "fixture.h"
#include "tokfile_fixture.h"

#define V 64
/* Asserts success, showing the error message when not. */
#define ASSERT_OK(call)                                    \
    do {                                                   \
        int rc_ = (call);                                  \
        if (rc_ != 0) print_error("error: %s\n", err.msg); \
        assert_int_equal(rc_, 0);                          \
    } while (0)

static void write_tokens(const char *path, uint64_t count, uint64_t seed) {
    uint16_t *ids = malloc(count * sizeof *ids);
    assert_non_null(ids);
    Rng r;
    rng_seed(&r, seed);
    uint16_t prev = 0;
    for (uint64_t i = 0; i < count; i++) {  /* a learnable Markov chain */
        ids[i] = (uint16_t)((prev * 3 + rng_below(&r, 3)) % V);
        prev = ids[i];
    }
    assert_int_equal(write_token_file(path, V, ids, count), 0);
    free(ids);
}

/* The suite's directory (named after it), holding the corpus. */
static int setup_train_fixture(const char *suite) {
    if (temp_dir_create(&tmp, suite) != 0) return -1;
    char path[512];
    temp_dir_path(&tmp, "data.train.tok", path, sizeof path);
    write_tokens(path, 3000, 1);
    temp_dir_path(&tmp, "data.val.tok", path, sizeof path);
    write_tokens(path, 400, 2);
    return 0;
}

static BackpackConfig tiny_model(void) {
    BackpackConfig c = {.arch = ARCH_BACKPACK, .vocab_size = V, .n_embd = 16, .n_layer = 2,
                        .n_head = 2, .num_senses = 4, .n_positions = 16,
                        .sense_intermediate_scale = 4};
    return c;
}

/* 8 steps of 2 micro-batches of 4 x 16, dropout 0.1, evaluating every 4 steps, one thread,
 * writing into DIR/out. */
static inline void tiny_config(TrainConfig *c, const char *out) {
    train_config_defaults(c);
    c->model = tiny_model();
    temp_dir_path(&tmp, "data", c->data_prefix, sizeof c->data_prefix);
    temp_dir_path(&tmp, out, c->out_dir, sizeof c->out_dir);
    c->batch = 4;
    c->context = 16;
    c->accum = 2;
    c->max_steps = 8;
    c->lr = 1e-2f;
    c->warmup = 2;
    c->dropout = 0.1f;   /* the dropout RNG must be restored too */
    c->seed = 5;
    c->threads = 1;
    c->eval_every = 4;
    c->eval_batches = 2;
    c->save_every = 0;
}

#define RECORD_MAX 4096
typedef struct {
    double loss[RECORD_MAX];
    double val[RECORD_MAX];
    double elapsed[RECORD_MAX];
    uint64_t tokens[RECORD_MAX];
    uint64_t stop_at;         /* request a stop after this step (0: never) */
    uint64_t poison_at;       /* put a NaN into the weights after this step (0: never) */
    int calls;
} Recorder;

static inline int record_step(const StepReport *r, void *ctx) {
    Recorder *rec = ctx;
    rec->calls++;
    if (r->step < RECORD_MAX) {
        rec->loss[r->step] = r->loss;
        rec->val[r->step] = r->val_loss;
        rec->elapsed[r->step] = r->elapsed;
        rec->tokens[r->step] = r->tokens;
    }
    if (rec->poison_at && r->step == rec->poison_at) r->model->params.wte[0] = NAN;
    return rec->stop_at && r->step == rec->stop_at;
}

static inline void hash_of(const char *dir, char hex[17]) {
    Backpack m;
    BpError err = {{0}};
    ASSERT_OK(checkpoint_load(&m, dir, &err));
    backpack_weights_hash(&m, hex);
    backpack_free(&m);
}

#endif
