#include "trainer.h"

#include <cblas.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "../common/hash.h"
#include "../common/rng.h"
#include "../model/checkpoint.h"
#include "../text/tokenizer.h"
#include "../text/tokfile.h"
#include "adamw.h"
#include "dataloader.h"
#include "evaluate.h"

void train_config_defaults(TrainConfig *c) {
    memset(c, 0, sizeof *c);
    c->model.arch = ARCH_BACKPACK;
    c->model.vocab_size = 0;
    c->model.n_embd = 256;
    c->model.n_layer = 4;
    c->model.n_head = 4;
    c->model.num_senses = 16;
    c->model.n_positions = 128;
    c->model.sense_intermediate_scale = 4;
    c->batch = 16;
    c->context = 128;
    c->accum = 1;
    c->max_steps = 1000;
    c->lr = 6e-4f;
    c->warmup = 100;
    c->weight_decay = 0.1f;
    c->clip = 1.0f;
    c->dropout = 0.0f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->seed = 1337;
    c->threads = 0;
    c->eval_every = 200;
    c->eval_batches = 20;
    c->save_every = 1000;
}

/* ---- train_state.bin ----------------------------------------------------------------
 * Native byte order (little-endian on the machines this runs on), no padding:
 *   char[8]  "BPTRAIN\0"        u32 version (2)
 *   char[17] weights hash (backpack_weights_hash of the model saved beside it)
 *   u64 num_parameters
 *   the TrainConfig, field by field (strings as u32 length + bytes; floats as their bits)
 *   u64 step, u64 tokens, f64 elapsed, f64 warmup_progress, f64 last_val_loss
 *   u64[4] dropout RNG state, u64 data epoch, u64 data index
 *   u64 metrics_bytes (length of metrics.jsonl when saved: a resume truncates to it)
 *   u64 adam t, f32[num_parameters] m, f32[num_parameters] v
 *   u64 hash64 (common/hash.h) of every byte before it (version 1 had byte-wise FNV-1a)
 */
#define STATE_MAGIC "BPTRAIN"
#define STATE_VERSION 2u

typedef struct {
    uint64_t step;
    uint64_t tokens;
    double elapsed;
    double warmup_progress;     /* progress when warmup ended (valid once step >= warmup) */
    double last_val_loss;
    Rng dropout_rng;
    DataPosition data;
    uint64_t metrics_bytes;
} TrainProgress;

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

/* ---- the run ------------------------------------------------------------------------- */

typedef struct {
    TrainConfig cfg;
    Backpack model;
    AdamW opt;
    DataLoader train;
    TokFile val;
    int val_open;
    TrainProgress prog;
    const char *tokenizer_src;  /* where checkpoints copy vocab.json and merges.txt from */
    char metrics_path[4096];
    FILE *metrics;
    const TrainHooks *hooks;
    int progress_line_shown;
} Trainer;

static int write_train_state(const Trainer *tr, const char *dir, BpError *err) {
    ByteBuf b = {0};
    char hash[17];
    backpack_weights_hash(&tr->model, hash);
    buf_put(&b, STATE_MAGIC, 8);
    put_u32(&b, STATE_VERSION);
    buf_put(&b, hash, 17);
    put_u64(&b, tr->model.num_parameters);
    put_config(&b, &tr->cfg);
    const TrainProgress *p = &tr->prog;
    put_u64(&b, p->step);
    put_u64(&b, p->tokens);
    put_f64(&b, p->elapsed);
    put_f64(&b, p->warmup_progress);
    put_f64(&b, p->last_val_loss);
    for (int i = 0; i < 4; i++) put_u64(&b, p->dropout_rng.s[i]);
    put_u64(&b, p->data.epoch);
    put_u64(&b, p->data.index);
    put_u64(&b, p->metrics_bytes);
    put_u64(&b, tr->opt.t);
    buf_put(&b, tr->opt.m, tr->opt.num_parameters * sizeof(float));
    buf_put(&b, tr->opt.v, tr->opt.num_parameters * sizeof(float));
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

/* Restores the optimizer and progress from dir/train_state.bin for the loaded model. */
static int read_train_state(Trainer *tr, const char *dir, BpError *err) {
    char *data, hash[17], model_hash[17];
    ByteReader r;
    uint64_t n;
    TrainConfig saved;
    if (state_open(dir, &data, &r, hash, &n, &saved, err) != 0) return -1;
    backpack_weights_hash(&tr->model, model_hash);
    int rc = 0;
    if (n != tr->model.num_parameters)
        rc = bp_fail(err, "%s/%s: saved for %llu parameters, the model has %zu", dir,
                     TRAIN_STATE_FILE, (unsigned long long)n, tr->model.num_parameters);
    else if (strcmp(hash, model_hash) != 0)
        rc = bp_fail(err, "%s/%s: belongs to other weights (hash %s, model.safetensors has %s)",
                     dir, TRAIN_STATE_FILE, hash, model_hash);
    if (rc == 0) {
        TrainProgress *p = &tr->prog;
        p->step = get_u64(&r);
        p->tokens = get_u64(&r);
        p->elapsed = get_f64(&r);
        p->warmup_progress = get_f64(&r);
        p->last_val_loss = get_f64(&r);
        for (int i = 0; i < 4; i++) p->dropout_rng.s[i] = get_u64(&r);
        p->data.epoch = get_u64(&r);
        p->data.index = get_u64(&r);
        p->metrics_bytes = get_u64(&r);
        tr->opt.t = get_u64(&r);
        rd_get(&r, tr->opt.m, n * sizeof(float));
        rd_get(&r, tr->opt.v, n * sizeof(float));
        if (r.failed || r.pos != r.len)
            rc = bp_fail(err, "%s/%s: %s", dir, TRAIN_STATE_FILE,
                         r.failed ? "truncated" : "has trailing bytes");
    }
    free(data);
    return rc;
}

/* Checkpoint files written by checkpoint_save and by us: not carried over. */
static int is_checkpoint_file(const char *name) {
    static const char *const own[] = {"config.json", "model.safetensors", "vocab.json",
                                      "merges.txt", TRAIN_STATE_FILE, TRAIN_METRICS_FILE};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (!strcmp(name, own[i])) return 1;
    return strstr(name, ".tmp-") != NULL;
}

/* Hard-links src to dst (same filesystem: the staging directory is a sibling), else
 * copies it. */
static int link_or_copy(const char *src, const char *dst, BpError *err) {
    if (link(src, dst) == 0) return 0;
    return copy_file_atomic(src, dst, err);
}

/* The CheckpointExtraWriter: the training state, the metrics so far, and every other
 * regular file of the output directory. */
static int write_extra(const char *staging, void *ctx, BpError *err) {
    Trainer *tr = ctx;
    char src[4096], dst[4096];
    if (tr->metrics) fflush(tr->metrics);
    struct stat st;
    tr->prog.metrics_bytes = stat(tr->metrics_path, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (write_train_state(tr, staging, err) != 0) return -1;
    if (file_exists(tr->metrics_path)) {
        if (path_join(dst, sizeof dst, staging, TRAIN_METRICS_FILE, err) != 0) return -1;
        if (link_or_copy(tr->metrics_path, dst, err) != 0) return -1;
    }
    DIR *d = opendir(tr->cfg.out_dir);
    if (!d) return 0;
    struct dirent *ent;
    int rc = 0;
    while (rc == 0 && (ent = readdir(d)) != NULL) {
        if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, "..") || is_checkpoint_file(ent->d_name))
            continue;
        if (path_join(src, sizeof src, tr->cfg.out_dir, ent->d_name, err) != 0 ||
            path_join(dst, sizeof dst, staging, ent->d_name, err) != 0) {
            rc = -1;
            break;
        }
        if (!file_exists(src) || file_exists(dst)) continue;
        rc = link_or_copy(src, dst, err);
    }
    closedir(d);
    return rc;
}

static int metrics_open(Trainer *tr, BpError *err) {
    tr->metrics = fopen(tr->metrics_path, "a");
    if (!tr->metrics) return bp_fail_errno(err, "%s: cannot open", tr->metrics_path);
    return 0;
}

static int save(Trainer *tr, BpError *err) {
    if (checkpoint_save(&tr->model, tr->cfg.out_dir, tr->tokenizer_src, write_extra, tr, err) != 0)
        return -1;
    /* The directory was swapped: append to the new directory's metrics.jsonl. */
    if (tr->metrics) fclose(tr->metrics);
    tr->metrics = NULL;
    return metrics_open(tr, err);
}

/* Fraction of the budget spent, the largest over the limits that are set. */
static double budget_progress(const TrainConfig *c, uint64_t step, uint64_t tokens, double elapsed) {
    double p = 0.0;
    if (c->max_steps) p = fmax(p, (double)step / (double)c->max_steps);
    if (c->max_tokens) p = fmax(p, (double)tokens / (double)c->max_tokens);
    if (c->max_minutes > 0) p = fmax(p, elapsed / (c->max_minutes * 60.0));
    return p;
}

static void format_duration(double s, char *out, size_t n) {
    if (!isfinite(s) || s < 0) snprintf(out, n, "?");
    else if (s < 60) snprintf(out, n, "%.0fs", s);
    else if (s < 3600) snprintf(out, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(out, n, "%dh%02dm", (int)(s / 3600), ((int)s % 3600) / 60);
}

static void show_progress(Trainer *tr, const StepReport *r, double eta, int newline) {
    const TrainHooks *h = tr->hooks;
    if (h && h->quiet) return;
    int live = h && h->progress_line;
    if (!live && !newline) return;
    char val[32], eta_s[32], total[32] = "";
    if (isfinite(tr->prog.last_val_loss)) snprintf(val, sizeof val, "%.4f", tr->prog.last_val_loss);
    else snprintf(val, sizeof val, "-");
    format_duration(eta, eta_s, sizeof eta_s);
    if (tr->cfg.max_steps) snprintf(total, sizeof total, "/%llu", (unsigned long long)tr->cfg.max_steps);
    fprintf(stderr, "%sstep %llu%s | loss %.4f | val %s | lr %.2e | %.0f tok/s | ETA %s%s",
            live ? "\r\033[K" : "", (unsigned long long)r->step, total, r->loss, val, r->lr,
            r->tokens_per_s, eta_s, (live && !newline) ? "" : "\n");
    tr->progress_line_shown = live && !newline;
    fflush(stderr);
}

/* Validation loss over the first eval_batches batches of the validation file. */
static int validate(Trainer *tr, double *loss, BpError *err) {
    EvalResult res;
    uint64_t windows = (uint64_t)tr->cfg.eval_batches * (uint64_t)tr->cfg.batch;
    if (evaluate_tokfile(&tr->model, &tr->val, tr->cfg.context, tr->cfg.batch, windows, &res, err) != 0)
        return bp_error_prefix(err, "validation");
    *loss = res.mean_loss;
    return 0;
}

static int check_config(const TrainConfig *c, BpError *err) {
    if (c->batch < 1) return bp_fail(err, "--batch must be at least 1 (got %d)", c->batch);
    if (c->accum < 1) return bp_fail(err, "--accum must be at least 1 (got %d)", c->accum);
    if (c->context < 1 || c->context > c->model.n_positions)
        return bp_fail(err, "--context %d: must be between 1 and the model's n_positions %d",
                       c->context, c->model.n_positions);
    if (!c->max_steps && !c->max_tokens && !(c->max_minutes > 0))
        return bp_fail(err, "no budget: give --steps, --tokens or --minutes");
    if (!(c->lr > 0) || !isfinite(c->lr)) return bp_fail(err, "--lr must be positive (got %g)", c->lr);
    if (!(c->weight_decay >= 0)) return bp_fail(err, "--weight-decay must be >= 0");
    if (!(c->clip >= 0)) return bp_fail(err, "--clip must be >= 0");
    if (!(c->dropout >= 0 && c->dropout < 1)) return bp_fail(err, "--dropout must be in [0, 1)");
    if (c->eval_batches < 1) return bp_fail(err, "--eval-batches must be at least 1");
    if (c->eval_every < 0 || c->save_every < 0) return bp_fail(err, "--eval-every and --save-every must be >= 0");
    if (!c->out_dir[0]) return bp_fail(err, "--out is required");
    if (!c->data_prefix[0]) return bp_fail(err, "--data is required");
    return 0;
}

/* A new run may write into a missing or empty directory, or one holding only plain
 * files that are not a model (they are carried over). */
static int check_new_out_dir(const char *dir, BpError *err) {
    if (!dir_exists(dir)) {
        if (file_exists(dir)) return bp_fail(err, "%s: exists and is not a directory", dir);
        return make_dirs(dir, err);
    }
    DIR *d = opendir(dir);
    if (!d) return bp_fail_errno(err, "%s: cannot open", dir);
    struct dirent *ent;
    char child[4096];
    int rc = 0;
    while (rc == 0 && (ent = readdir(d)) != NULL) {
        if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, "..")) continue;
        if (!strcmp(ent->d_name, "model.safetensors"))
            rc = bp_fail(err, "%s already holds a model: continue it with --resume %s, or choose another --out",
                         dir, dir);
        else if (path_join(child, sizeof child, dir, ent->d_name, err) != 0) rc = -1;
        else if (dir_exists(child))
            rc = bp_fail(err, "%s: holds the directory '%s'; a checkpoint replaces the whole directory, choose another --out",
                         dir, ent->d_name);
    }
    closedir(d);
    return rc;
}

static int open_data(Trainer *tr, BpError *err) {
    char path[4096];
    const TrainConfig *c = &tr->cfg;
    if (snprintf(path, sizeof path, "%s.train.tok", c->data_prefix) >= (int)sizeof path)
        return bp_fail(err, "%s: path too long", c->data_prefix);
    if (dataloader_open(&tr->train, path, c->batch, c->context, 1, c->seed, c->model.vocab_size, err) != 0)
        return -1;
    snprintf(path, sizeof path, "%s.val.tok", c->data_prefix);
    if (tokfile_open(&tr->val, path, err) != 0) return -1;
    tr->val_open = 1;
    if (tr->val.count < (uint64_t)c->context + 1)
        return bp_fail(err, "%s: %llu tokens, too short for one validation window of context %d (needs %d)",
                       path, (unsigned long long)tr->val.count, c->context, c->context + 1);
    if (tr->val.vocab_size > (uint32_t)c->model.vocab_size)
        return bp_fail(err, "%s: token file vocabulary %u is larger than the model's %d", path,
                       tr->val.vocab_size, c->model.vocab_size);
    return 0;
}

static void trainer_free(Trainer *tr) {
    if (tr->metrics) fclose(tr->metrics);
    dataloader_close(&tr->train);
    if (tr->val_open) tokfile_close(&tr->val);
    adamw_free(&tr->opt);
    backpack_free(&tr->model);
}

static int same_model(const BackpackConfig *a, const BackpackConfig *b) {
    return a->arch == b->arch && a->vocab_size == b->vocab_size && a->n_embd == b->n_embd &&
           a->n_layer == b->n_layer && a->n_head == b->n_head && a->n_positions == b->n_positions &&
           a->sense_intermediate_scale == b->sense_intermediate_scale &&
           (a->arch == ARCH_TRANSFORMER || a->num_senses == b->num_senses);
}

/* Truncates metrics.jsonl to its length at the checkpoint (lines after it describe steps
 * that are about to be redone). */
static int metrics_rewind(Trainer *tr, const char *resume_dir, BpError *err) {
    char src[4096];
    if (path_join(src, sizeof src, resume_dir, TRAIN_METRICS_FILE, err) != 0) return -1;
    if (strcmp(src, tr->metrics_path) != 0 && file_exists(src) && !file_exists(tr->metrics_path))
        if (copy_file_atomic(src, tr->metrics_path, err) != 0) return -1;
    struct stat st;
    if (stat(tr->metrics_path, &st) == 0 && (uint64_t)st.st_size > tr->prog.metrics_bytes)
        if (truncate(tr->metrics_path, (off_t)tr->prog.metrics_bytes) != 0)
            return bp_fail_errno(err, "%s: cannot truncate", tr->metrics_path);
    return 0;
}

static void metrics_step(Trainer *tr, const StepReport *r) {
    if (!tr->metrics) return;
    fprintf(tr->metrics,
            "{\"step\": %llu, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, \"tokens\": %llu, "
            "\"elapsed\": %.3f, \"tokens_per_s\": %.1f}\n",
            (unsigned long long)r->step, r->loss, r->lr, r->grad_norm,
            (unsigned long long)r->tokens, r->elapsed, r->tokens_per_s);
}

static void metrics_eval(Trainer *tr, uint64_t step, double val_loss) {
    if (!tr->metrics) return;
    fprintf(tr->metrics,
            "{\"step\": %llu, \"val_loss\": %.9g, \"val_ppl\": %.9g, \"tokens\": %llu, \"elapsed\": %.3f}\n",
            (unsigned long long)step, val_loss, exp(val_loss), (unsigned long long)tr->prog.tokens,
            tr->prog.elapsed);
    fflush(tr->metrics);
}

int train_run(const TrainConfig *cfg, const char *resume_dir, const TrainHooks *hooks,
              TrainOutcome *out, BpError *err) {
    memset(out, 0, sizeof *out);
    out->last_val_loss = NAN;
    Trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return bp_fail(err, "out of memory");
    tr->cfg = *cfg;
    tr->hooks = hooks;
    tr->prog.last_val_loss = NAN;
    int rc = -1;
    if (tr->cfg.threads > 0) {
        omp_set_num_threads(tr->cfg.threads);
        openblas_set_num_threads(tr->cfg.threads);
    }

    if (resume_dir) {
        if (checkpoint_load(&tr->model, resume_dir, err) != 0) goto done;
        if (tr->cfg.model.vocab_size == 0) tr->cfg.model.vocab_size = tr->model.config.vocab_size;
        if (!same_model(&tr->cfg.model, &tr->model.config)) {
            bp_fail(err, "%s: the model's configuration differs from the training state's", resume_dir);
            goto done;
        }
        tr->cfg.model = tr->model.config;
        /* The checkpoint's own copy of the tokenizer (a model may have none). */
        char vocab[4096];
        tr->tokenizer_src = path_join(vocab, sizeof vocab, resume_dir, "vocab.json", NULL) == 0 &&
                                    file_exists(vocab) ? resume_dir : NULL;
    } else {
        if (tr->cfg.model.vocab_size == 0) {
            Tokenizer *tok;
            if (!tr->cfg.tokenizer_dir[0]) {
                bp_fail(err, "--tokenizer is required for a new run");
                goto done;
            }
            if (tokenizer_load(&tok, tr->cfg.tokenizer_dir, err) != 0) goto done;
            tr->cfg.model.vocab_size = tokenizer_vocab_size(tok);
            tokenizer_free(tok);
        }
        tr->tokenizer_src = tr->cfg.tokenizer_dir[0] ? tr->cfg.tokenizer_dir : NULL;
        if (check_config(&tr->cfg, err) != 0) goto done;
        if (backpack_config_validate(&tr->cfg.model, err) != 0) goto done;
        if (backpack_build(&tr->model, &tr->cfg.model, err) != 0) goto done;
        backpack_init_weights(&tr->model, tr->cfg.seed);
        rng_seed(&tr->prog.dropout_rng, tr->cfg.seed ^ 0xd1b54a32d192ed03ULL);
    }
    if (check_config(&tr->cfg, err) != 0) goto done;
    AdamWConfig ac = {.beta1 = tr->cfg.beta1, .beta2 = tr->cfg.beta2, .eps = tr->cfg.eps,
                      .weight_decay = tr->cfg.weight_decay};
    if (adamw_build_for_model(&tr->opt, &ac, &tr->model, err) != 0) goto done;
    if (path_join(tr->metrics_path, sizeof tr->metrics_path, tr->cfg.out_dir, TRAIN_METRICS_FILE, err) != 0)
        goto done;
    if (resume_dir && read_train_state(tr, resume_dir, err) != 0) goto done;
    if (open_data(tr, err) != 0) goto done;
    /* Only now, with everything checked, touch the output directory. */
    if (resume_dir) {
        struct stat a, b;
        int same_dir = stat(resume_dir, &a) == 0 && stat(tr->cfg.out_dir, &b) == 0 &&
                       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
        if (!same_dir && check_new_out_dir(tr->cfg.out_dir, err) != 0) goto done;
        if (metrics_rewind(tr, resume_dir, err) != 0) goto done;
    } else if (check_new_out_dir(tr->cfg.out_dir, err) != 0) {
        goto done;
    }
    dataloader_seek(&tr->train, tr->prog.data);
    if (metrics_open(tr, err) != 0) goto done;

    const TrainConfig *c = &tr->cfg;
    int quiet = hooks && hooks->quiet;
    if (!quiet)
        fprintf(stderr, "%s %s at step %llu: %zu parameters (d %d, layers %d, heads %d, senses %d, "
                "vocab %d), %llu training tokens, batch %d x %d x accum %d\n",
                resume_dir ? "resuming" : "training",
                c->model.arch == ARCH_TRANSFORMER ? "Transformer" : "Backpack",
                (unsigned long long)tr->prog.step, tr->model.num_parameters, c->model.n_embd,
                c->model.n_layer, c->model.n_head,
                c->model.arch == ARCH_TRANSFORMER ? 0 : c->model.num_senses, c->model.vocab_size,
                (unsigned long long)dataloader_num_tokens(&tr->train), c->batch, c->context, c->accum);
    if (!resume_dir && save(tr, err) != 0) goto done;  /* a loadable checkpoint from the start */

    const uint64_t step_tokens = (uint64_t)c->batch * (uint64_t)c->context * (uint64_t)c->accum;
    const double session_start = now_seconds();
    const double elapsed_before = tr->prog.elapsed;
    const uint64_t session_start_step = tr->prog.step;
    double train_seconds = 0.0;  /* time in steps this session (rate excludes eval and saves) */
    uint64_t last_eval_step = UINT64_MAX, last_save_step = resume_dir ? tr->prog.step : 0;
    StepReport report = {0};
    TrainOptions opts = {.dropout = c->dropout, .rng = &tr->prog.dropout_rng};
    for (;;) {
        tr->prog.elapsed = elapsed_before + (now_seconds() - session_start);
        if (c->max_steps && tr->prog.step >= c->max_steps) break;
        if (c->max_tokens && tr->prog.tokens >= c->max_tokens) break;
        if (c->max_minutes > 0 && tr->prog.elapsed >= c->max_minutes * 60.0) break;
        if ((hooks && hooks->stop && *hooks->stop) || out->stopped) {
            out->stopped = 1;
            break;
        }
        double t0 = now_seconds();
        double progress = budget_progress(c, tr->prog.step, tr->prog.tokens, tr->prog.elapsed);
        if (tr->prog.step == c->warmup) tr->prog.warmup_progress = progress;
        float lr = lr_schedule(c->lr, tr->prog.step, c->warmup, progress,
                               tr->prog.step >= c->warmup ? tr->prog.warmup_progress : 0.0);
        backpack_zero_grad(&tr->model);
        double loss = 0.0;
        for (int a = 0; a < c->accum; a++) {
            dataloader_next(&tr->train);
            if (backpack_forward(&tr->model, tr->train.inputs, tr->train.targets, c->batch, c->context,
                                 &opts, err) != 0 ||
                backpack_backward(&tr->model, err) != 0)
                goto done;
            loss += tr->model.mean_loss;
        }
        loss /= c->accum;
        /* the gradient is grad_scale times the summed one: the mean over the
         * micro-batches, clipped (applied inside adamw_step) */
        double norm = NAN;
        float grad_scale = 1.0f;
        if (isfinite(loss)) {
            const double mean = 1.0 / c->accum;
            norm = grad_norm(tr->model.grads_memory, tr->model.num_parameters) * mean;
            grad_scale = (float)(mean * clip_factor(norm, c->clip));
        }
        if (!isfinite(loss) || !isfinite(norm)) {
            out->diverged = 1;
            bp_fail(err, "training diverged at step %llu (loss %g, gradient norm %g): stopped; the last good checkpoint (step %llu) is kept in %s",
                    (unsigned long long)tr->prog.step + 1, loss, norm,
                    (unsigned long long)last_save_step, c->out_dir);
            goto done;
        }
        adamw_step(&tr->opt, tr->model.params_memory, tr->model.grads_memory, grad_scale, lr);
        tr->prog.step++;
        tr->prog.tokens += step_tokens;
        tr->prog.data = tr->train.pos;
        train_seconds += now_seconds() - t0;
        tr->prog.elapsed = elapsed_before + (now_seconds() - session_start);

        report = (StepReport){.step = tr->prog.step, .loss = loss, .val_loss = NAN, .lr = lr,
                              .grad_norm = norm, .tokens = tr->prog.tokens, .elapsed = tr->prog.elapsed,
                              .tokens_per_s = (double)(tr->prog.step - session_start_step) *
                                              (double)step_tokens / (train_seconds > 0 ? train_seconds : 1e-9),
                              .model = &tr->model};
        metrics_step(tr, &report);
        int at_end = (c->max_steps && tr->prog.step >= c->max_steps) ||
                     (c->max_tokens && tr->prog.tokens >= c->max_tokens);
        if ((c->eval_every && tr->prog.step % (uint64_t)c->eval_every == 0) || at_end) {
            double vl = NAN;
            if (validate(tr, &vl, err) != 0) goto done;
            tr->prog.last_val_loss = vl;
            report.val_loss = vl;
            metrics_eval(tr, tr->prog.step, vl);
            last_eval_step = tr->prog.step;
        }
        if (hooks && hooks->on_step && hooks->on_step(&report, hooks->ctx) != 0) out->stopped = 1;
        /* ETA: the nearest limit at this session's pace. */
        double per_step = (now_seconds() - session_start) / (double)(tr->prog.step - session_start_step);
        double eta = INFINITY;
        if (c->max_steps) eta = fmin(eta, (double)(c->max_steps - tr->prog.step) * per_step);
        if (c->max_tokens)
            eta = c->max_tokens <= tr->prog.tokens
                      ? 0.0
                      : fmin(eta, (double)((c->max_tokens - tr->prog.tokens + step_tokens - 1) / step_tokens) * per_step);
        if (c->max_minutes > 0) eta = fmin(eta, fmax(0.0, c->max_minutes * 60.0 - tr->prog.elapsed));
        show_progress(tr, &report, eta, !isnan(report.val_loss) && !(hooks && hooks->progress_line));
        if (c->save_every && tr->prog.step % (uint64_t)c->save_every == 0) {
            if (save(tr, err) != 0) goto done;
            last_save_step = tr->prog.step;
        }
    }
    if (tr->prog.step > 0 && last_eval_step != tr->prog.step && !out->stopped) {
        double vl = NAN;
        if (validate(tr, &vl, err) != 0) goto done;
        tr->prog.last_val_loss = vl;
        metrics_eval(tr, tr->prog.step, vl);
    }
    if (tr->progress_line_shown) fputc('\n', stderr);
    tr->progress_line_shown = 0;
    if (last_save_step != tr->prog.step || out->stopped || tr->prog.step == 0) {
        if (save(tr, err) != 0) goto done;
    }
    if (!quiet) {
        if (out->stopped)
            fprintf(stderr, "stopped at step %llu: saved to %s (continue with --resume %s)\n",
                    (unsigned long long)tr->prog.step, c->out_dir, c->out_dir);
        else
            fprintf(stderr, "done: %llu steps, val loss %.4f (perplexity %.2f), saved to %s\n",
                    (unsigned long long)tr->prog.step, tr->prog.last_val_loss,
                    exp(tr->prog.last_val_loss), c->out_dir);
    }
    rc = 0;
done:
    /* an error after a live progress line starts a line of its own */
    if (rc != 0 && tr->progress_line_shown) fputc('\n', stderr);
    out->steps = tr->prog.step;
    out->last_loss = report.loss;
    out->last_val_loss = tr->prog.last_val_loss;
    trainer_free(tr);
    free(tr);
    return rc;
}
