/* train_state.c - train_state.bin (format in train_state.h). */
#include "train_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fileio.h"
#include "../common/hash.h"

#define STATE_MAGIC "BPTRAIN"
#define STATE_VERSION 2u

typedef struct {
    unsigned char *data;
    size_t len, cap;
    int failed;
} ByteBuf;

static void buf_put(ByteBuf *b, const void *p, size_t n) {
    if (b->failed) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        unsigned char *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}
static void put_u32(ByteBuf *b, uint32_t v) { buf_put(b, &v, 4); }
static void put_u64(ByteBuf *b, uint64_t v) { buf_put(b, &v, 8); }
static void put_i32(ByteBuf *b, int v) { int32_t x = v; buf_put(b, &x, 4); }
static void put_f32(ByteBuf *b, float v) { buf_put(b, &v, 4); }
static void put_f64(ByteBuf *b, double v) { buf_put(b, &v, 8); }
static void put_str(ByteBuf *b, const char *s) {
    uint32_t n = (uint32_t)strlen(s);
    put_u32(b, n);
    buf_put(b, s, n);
}

typedef struct {
    const unsigned char *data;
    size_t len, pos;
    int failed;
} ByteReader;

static void rd_get(ByteReader *r, void *p, size_t n) {
    if (r->failed || n > r->len - r->pos) {
        r->failed = 1;
        memset(p, 0, n);
        return;
    }
    memcpy(p, r->data + r->pos, n);
    r->pos += n;
}
static uint32_t get_u32(ByteReader *r) { uint32_t v; rd_get(r, &v, 4); return v; }
static uint64_t get_u64(ByteReader *r) { uint64_t v; rd_get(r, &v, 8); return v; }
static int get_i32(ByteReader *r) { int32_t v; rd_get(r, &v, 4); return v; }
static float get_f32(ByteReader *r) { float v; rd_get(r, &v, 4); return v; }
static double get_f64(ByteReader *r) { double v; rd_get(r, &v, 8); return v; }
static void get_str(ByteReader *r, char *out, size_t out_size) {
    uint32_t n = get_u32(r);
    if (r->failed || n >= out_size || n > r->len - r->pos) {
        r->failed = 1;
        out[0] = '\0';
        return;
    }
    memcpy(out, r->data + r->pos, n);
    out[n] = '\0';
    r->pos += n;
}

static void put_config(ByteBuf *b, const TrainConfig *c) {
    put_i32(b, (int)c->model.arch);
    put_i32(b, c->model.vocab_size);
    put_i32(b, c->model.n_embd);
    put_i32(b, c->model.n_layer);
    put_i32(b, c->model.n_head);
    put_i32(b, c->model.num_senses);
    put_i32(b, c->model.n_positions);
    put_i32(b, c->model.sense_intermediate_scale);
    put_str(b, c->data_prefix);
    put_str(b, c->tokenizer_dir);
    put_str(b, c->out_dir);
    put_i32(b, c->batch);
    put_i32(b, c->context);
    put_i32(b, c->accum);
    put_u64(b, c->max_steps);
    put_u64(b, c->max_tokens);
    put_f64(b, c->max_minutes);
    put_f32(b, c->lr);
    put_u64(b, c->warmup);
    put_f32(b, c->weight_decay);
    put_f32(b, c->clip);
    put_f32(b, c->dropout);
    put_f32(b, c->beta1);
    put_f32(b, c->beta2);
    put_f32(b, c->eps);
    put_u64(b, c->seed);
    put_i32(b, c->threads);
    put_i32(b, c->eval_every);
    put_i32(b, c->eval_batches);
    put_i32(b, c->save_every);
}

static void get_config(ByteReader *r, TrainConfig *c) {
    memset(c, 0, sizeof *c);
    c->model.arch = (ModelArch)get_i32(r);
    c->model.vocab_size = get_i32(r);
    c->model.n_embd = get_i32(r);
    c->model.n_layer = get_i32(r);
    c->model.n_head = get_i32(r);
    c->model.num_senses = get_i32(r);
    c->model.n_positions = get_i32(r);
    c->model.sense_intermediate_scale = get_i32(r);
    get_str(r, c->data_prefix, sizeof c->data_prefix);
    get_str(r, c->tokenizer_dir, sizeof c->tokenizer_dir);
    get_str(r, c->out_dir, sizeof c->out_dir);
    c->batch = get_i32(r);
    c->context = get_i32(r);
    c->accum = get_i32(r);
    c->max_steps = get_u64(r);
    c->max_tokens = get_u64(r);
    c->max_minutes = get_f64(r);
    c->lr = get_f32(r);
    c->warmup = get_u64(r);
    c->weight_decay = get_f32(r);
    c->clip = get_f32(r);
    c->dropout = get_f32(r);
    c->beta1 = get_f32(r);
    c->beta2 = get_f32(r);
    c->eps = get_f32(r);
    c->seed = get_u64(r);
    c->threads = get_i32(r);
    c->eval_every = get_i32(r);
    c->eval_batches = get_i32(r);
    c->save_every = get_i32(r);
}

/* Reads and checks the whole file; the caller frees *file_data. Positions r after the
 * config. */
static int state_open(const char *dir, char **file_data, ByteReader *r, char hash[17],
                      uint64_t *num_parameters, TrainConfig *cfg, BpError *err) {
    char path[4096];
    size_t len;
    if (path_join(path, sizeof path, dir, TRAIN_STATE_FILE, err) != 0) return -1;
    if (read_file(path, file_data, &len, err) != 0) return -1;
    if (len < 8 + 4 + 8) {
        free(*file_data);
        return bp_fail(err, "%s: truncated (%zu bytes)", path, len);
    }
    const unsigned char *p = (const unsigned char *)*file_data;
    uint64_t stored;
    memcpy(&stored, p + len - 8, 8);
    if (stored != hash64(p, len - 8)) {
        free(*file_data);
        return bp_fail(err, "%s: checksum mismatch (truncated, corrupt, or older than train state version 2)", path);
    }
    *r = (ByteReader){.data = p, .len = len - 8};
    char magic[8];
    rd_get(r, magic, 8);
    if (memcmp(magic, STATE_MAGIC, 8) != 0) {
        free(*file_data);
        return bp_fail(err, "%s: not a training state file", path);
    }
    uint32_t version = get_u32(r);
    if (version != STATE_VERSION) {
        free(*file_data);
        return bp_fail(err, "%s: version %u, this program reads %u", path, version, STATE_VERSION);
    }
    rd_get(r, hash, 17);
    hash[16] = '\0';
    *num_parameters = get_u64(r);
    get_config(r, cfg);
    if (r->failed) {
        free(*file_data);
        return bp_fail(err, "%s: truncated training configuration", path);
    }
    return 0;
}

int train_state_read_config(const char *dir, TrainConfig *cfg, BpError *err) {
    char *data;
    ByteReader r;
    char hash[17];
    uint64_t n;
    if (state_open(dir, &data, &r, hash, &n, cfg, err) != 0) return -1;
    free(data);
    return 0;
}

int train_state_write(const char *dir, const TrainConfig *cfg, const Backpack *m,
                      const TrainMoments *mom, const TrainProgress *p, BpError *err) {
    ByteBuf b = {0};
    char hash[17];
    backpack_weights_hash(m, hash);
    buf_put(&b, STATE_MAGIC, 8);
    put_u32(&b, STATE_VERSION);
    buf_put(&b, hash, 17);
    put_u64(&b, m->num_parameters);
    put_config(&b, cfg);
    put_u64(&b, p->step);
    put_u64(&b, p->tokens);
    put_f64(&b, p->elapsed);
    put_f64(&b, p->warmup_progress);
    put_f64(&b, p->last_val_loss);
    for (int i = 0; i < 4; i++) put_u64(&b, p->dropout_rng.s[i]);
    put_u64(&b, p->data.epoch);
    put_u64(&b, p->data.index);
    put_u64(&b, p->metrics_bytes);
    put_u64(&b, mom->t);
    buf_put(&b, mom->m, m->num_parameters * sizeof(float));
    buf_put(&b, mom->v, m->num_parameters * sizeof(float));
    if (b.failed) {
        free(b.data);
        return bp_fail(err, "%s: out of memory writing the training state", dir);
    }
    put_u64(&b, hash64(b.data, b.len));
    char path[4096];
    int rc = path_join(path, sizeof path, dir, TRAIN_STATE_FILE, err);
    if (rc == 0 && b.failed) rc = bp_fail(err, "%s: out of memory", path);
    if (rc == 0) rc = write_file_atomic(path, b.data, b.len, err);
    free(b.data);
    return rc;
}

int train_state_read(const char *dir, const Backpack *m, TrainMoments *mom, TrainProgress *p,
                     TrainConfig *saved, BpError *err) {
    char *data, hash[17], model_hash[17];
    ByteReader r;
    uint64_t n;
    TrainConfig cfg;
    if (state_open(dir, &data, &r, hash, &n, &cfg, err) != 0) return -1;
    if (saved) *saved = cfg;
    backpack_weights_hash(m, model_hash);
    int rc = 0;
    if (n != m->num_parameters)
        rc = bp_fail(err, "%s/%s: saved for %llu parameters, the model has %zu", dir,
                     TRAIN_STATE_FILE, (unsigned long long)n, m->num_parameters);
    else if (strcmp(hash, model_hash) != 0)
        rc = bp_fail(err, "%s/%s: belongs to other weights (hash %s, model.safetensors has %s)",
                     dir, TRAIN_STATE_FILE, hash, model_hash);
    if (rc == 0) {
        p->step = get_u64(&r);
        p->tokens = get_u64(&r);
        p->elapsed = get_f64(&r);
        p->warmup_progress = get_f64(&r);
        p->last_val_loss = get_f64(&r);
        for (int i = 0; i < 4; i++) p->dropout_rng.s[i] = get_u64(&r);
        p->data.epoch = get_u64(&r);
        p->data.index = get_u64(&r);
        p->metrics_bytes = get_u64(&r);
        mom->t = get_u64(&r);
        rd_get(&r, mom->m, n * sizeof(float));
        rd_get(&r, mom->v, n * sizeof(float));
        if (r.failed || r.pos != r.len)
            rc = bp_fail(err, "%s/%s: %s", dir, TRAIN_STATE_FILE,
                         r.failed ? "truncated" : "has trailing bytes");
    }
    free(data);
    return rc;
}
