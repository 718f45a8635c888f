/* Checkpoints: save/load round trips of both architectures (bit-identical parameters and
 * logits), files written the PyTorch way (tests/make_hf_checkpoint.py), the ignored
 * aliases and mask buffers, atomic saves, and every corrupt checkpoint the loader must
 * refuse with a message naming the file and the tensor or key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "../common/rng.h"
#include "../model/checkpoint.h"
#include "../model/safetensors.h"

enum { V = 50, D = 16, L = 2, H = 2, K = 4, N = 8 };

static char ckpt[512], weights[600], config[600], tokdir[512];

static int setup(void **state) {
    (void)state;
    if (temp_dir_create(&tmp, "checkpoint") != 0) return -1;
    snprintf(ckpt, sizeof ckpt, "%s/ckpt", tmp.path);
    snprintf(weights, sizeof weights, "%s/model.safetensors", ckpt);
    snprintf(config, sizeof config, "%s/config.json", ckpt);
    snprintf(tokdir, sizeof tokdir, "%s/tok", tmp.path);
    BpError err;
    char p[600];
    if (make_dirs(tokdir, &err) != 0) return -1;
    snprintf(p, sizeof p, "%s/vocab.json", tokdir);
    if (write_file_atomic(p, "{\"a\": 0}\n", 9, &err) != 0) return -1;
    snprintf(p, sizeof p, "%s/merges.txt", tokdir);
    if (write_file_atomic(p, "#version: 0.2\na b\n", 18, &err) != 0) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    temp_dir_remove(&tmp);
    return 0;
}

static BackpackConfig tiny(ModelArch arch) {
    BackpackConfig c = {.arch = arch, .vocab_size = V, .n_embd = D, .n_layer = L, .n_head = H,
                        .num_senses = arch == ARCH_BACKPACK ? K : 0, .n_positions = N,
                        .sense_intermediate_scale = 4};
    return c;
}

/* A model whose every parameter (biases and gains included) is random. */
static void build_random(Backpack *m, ModelArch arch, uint64_t seed) {
    BackpackConfig c = tiny(arch);
    BpError err = {0};
    assert_int_equal(backpack_build(m, &c, &err), 0);
    backpack_init_weights(m, seed);
    Rng r;
    rng_seed(&r, seed ^ 0x5eed);
    for (size_t i = 0; i < m->num_parameters; i++)
        m->params_memory[i] += 0.1f * (rng_uniform(&r) - 0.5f);
}

static void save_ok(const Backpack *m) {
    BpError err = {0};
    if (checkpoint_save(m, ckpt, NULL, NULL, NULL, &err) != 0) fail_msg("%s", err.msg);
}

/* Loading must fail with a message naming `file` and containing each fragment, and
 * leave the model freed. */
static void expect_load_fails(const char *file, const char *frag, ...) {
    Backpack m;
    memset(&m, 0xab, sizeof m);
    BpError err = {0};
    assert_int_equal(checkpoint_load(&m, ckpt, &err), -1);
    assert_null(m.params_memory);
    assert_null(m.acts);
    if (!strstr(err.msg, file)) fail_msg("message '%s' does not name '%s'", err.msg, file);
    va_list ap;
    va_start(ap, frag);
    for (const char *s = frag; s; s = va_arg(ap, const char *))
        if (!strstr(err.msg, s)) fail_msg("message '%s' lacks '%s'", err.msg, s);
    va_end(ap);
    assert_null(strchr(err.msg, '\n'));
}

static int staging_leftovers(void) {
    DIR *d = opendir(tmp.path);
    assert_non_null(d);
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".staging") || strstr(e->d_name, ".old")) found++;
    closedir(d);
    return found;
}

static int write_train_state(const char *staging, void *ctx, BpError *err) {
    char p[4096];
    if (path_join(p, sizeof p, staging, "train_state.bin", err) != 0) return -1;
    return write_file_atomic(p, ctx, strlen(ctx), err);
}

static void check_file_equals(const char *path, const char *want) {
    char *data;
    size_t len;
    BpError err = {0};
    assert_int_equal(read_file(path, &data, &len, &err), 0);
    assert_string_equal(data, want);
    free(data);
}

/* --- round trips ----------------------------------------------------------------------- */

static void round_trip(ModelArch arch) {
    Backpack a, b;
    build_random(&a, arch, 11);
    BpError err = {0};
    char state[] = "step 42";
    if (checkpoint_save(&a, ckpt, tokdir, write_train_state, state, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(staging_leftovers(), 0);
    if (checkpoint_load(&b, ckpt, &err) != 0) fail_msg("%s", err.msg);
    assert_memory_equal(&a.config, &b.config, sizeof a.config);
    assert_int_equal(a.num_parameters, b.num_parameters);
    assert_memory_equal(a.params_memory, b.params_memory, a.num_parameters * sizeof(float));
    char ha[17], hb[17];
    backpack_weights_hash(&a, ha);
    backpack_weights_hash(&b, hb);
    assert_string_equal(ha, hb);

    /* The same logits, bit for bit. */
    int tokens[2 * N];
    for (int i = 0; i < 2 * N; i++) tokens[i] = (i * 17 + 3) % V;
    assert_int_equal(backpack_forward(&a, tokens, NULL, 2, N, NULL, &err), 0);
    assert_int_equal(backpack_forward(&b, tokens, NULL, 2, N, NULL, &err), 0);
    const float *la = backpack_logits(&a), *lb = backpack_logits(&b);
    assert_memory_equal(la, lb, sizeof(float) * 2 * N * V);
    float spread = 0;
    for (int i = 0; i < 2 * N * V; i++) spread = fmaxf(spread, fabsf(la[i] - la[0]));
    assert_true(spread > 0);  /* a real forward, not zeros */

    /* The files beside the weights. */
    char p[700];
    snprintf(p, sizeof p, "%s/vocab.json", ckpt);
    check_file_equals(p, "{\"a\": 0}\n");
    snprintf(p, sizeof p, "%s/merges.txt", ckpt);
    check_file_equals(p, "#version: 0.2\na b\n");
    snprintf(p, sizeof p, "%s/train_state.bin", ckpt);
    check_file_equals(p, "step 42");

    /* config.json holds the Hugging Face keys. */
    json_error_t jerr;
    json_t *cfg = json_load_file(config, 0, &jerr);
    assert_non_null(cfg);
    int bp = arch == ARCH_BACKPACK;
    assert_string_equal(json_string_value(json_object_get(cfg, "model_type")),
                        bp ? "backpack-gpt2" : "gpt2");
    assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0)),
                        bp ? "BackpackGPT2LMHeadModel" : "GPT2LMHeadModel");
    assert_string_equal(json_string_value(json_object_get(cfg, "activation_function")), "gelu_new");
    assert_true(json_real_value(json_object_get(cfg, "layer_norm_epsilon")) == 1e-5);
    assert_true(json_is_true(json_object_get(cfg, "scale_attn_by_inverse_layer_idx")));
    assert_int_equal(json_integer_value(json_object_get(cfg, "n_embd")), D);
    assert_int_equal(json_integer_value(json_object_get(cfg, "vocab_size")), V);
    if (bp) {
        assert_int_equal(json_integer_value(json_object_get(cfg, "num_senses")), K);
        assert_int_equal(json_integer_value(json_object_get(cfg, "sense_intermediate_scale")), 4);
    } else {
        assert_null(json_object_get(cfg, "num_senses"));
        assert_true(json_is_true(json_object_get(cfg, "tie_word_embeddings")));
    }
    json_decref(cfg);
    char *raw;
    size_t len;
    assert_int_equal(read_file(config, &raw, &len, &err), 0);
    assert_non_null(strstr(raw, "\"layer_norm_epsilon\": 1e-5,"));  /* not 1.0000000000000001e-5 */
    free(raw);

    /* The weights: every tensor by its spec name, F32, metadata format pt. */
    SafeTensorsFile f;
    assert_int_equal(safetensors_open(&f, weights, &err), 0);
    assert_int_equal(f.count, backpack_num_param_entries(&a.config));
    assert_string_equal(safetensors_metadata(&f, "format"), "pt");
    const SafeTensorInfo *t =
        safetensors_find(&f, bp ? "backpack.gpt2_model.h.1.mlp.c_fc.weight" : "transformer.h.1.mlp.c_fc.weight");
    assert_non_null(t);
    assert_int_equal(t->dtype, ST_F32);
    assert_int_equal(t->shape[0], D);
    assert_int_equal(t->shape[1], 4 * D);
    if (bp) {
        t = safetensors_find(&f, "backpack.sense_weight_net.c_attn.weight");
        assert_non_null(t);
        assert_int_equal(t->shape[0], 2 * D);
        assert_int_equal(t->shape[1], D);
        t = safetensors_find(&f, "backpack.sense_network.final_mlp.c_proj.weight");
        assert_non_null(t);
        assert_int_equal(t->shape[0], 4 * D);
        assert_int_equal(t->shape[1], K * D);
    }
    safetensors_close(&f);

    /* Saving again over it replaces it. */
    Backpack c;
    build_random(&c, arch, 12);
    save_ok(&c);
    backpack_free(&b);
    assert_int_equal(checkpoint_load(&b, ckpt, &err), 0);
    assert_memory_equal(c.params_memory, b.params_memory, c.num_parameters * sizeof(float));
    assert_int_equal(staging_leftovers(), 0);
    backpack_free(&a);
    backpack_free(&b);
    backpack_free(&c);
}

static void test_round_trip_backpack(void **state) {
    (void)state;
    round_trip(ARCH_BACKPACK);
}

static void test_round_trip_transformer(void **state) {
    (void)state;
    round_trip(ARCH_TRANSFORMER);
}

static void test_read_config(void **state) {
    (void)state;
    Backpack a;
    build_random(&a, ARCH_BACKPACK, 1);
    save_ok(&a);
    BackpackConfig c;
    BpError err = {0};
    assert_int_equal(checkpoint_read_config(ckpt, &c, &err), 0);
    assert_memory_equal(&c, &a.config, sizeof c);
    backpack_free(&a);
}

/* --- saves that do not complete ----------------------------------------------------------- */

static int failing_writer(const char *staging, void *ctx, BpError *err) {
    (void)ctx;
    char p[4096];
    path_join(p, sizeof p, staging, "half.bin", NULL);
    write_file_atomic(p, "x", 1, NULL);
    return bp_fail(err, "%s: disk full (simulated)", p);
}

static void test_aborted_save_keeps_old_checkpoint(void **state) {
    (void)state;
    Backpack a, b, x;
    build_random(&a, ARCH_BACKPACK, 21);
    build_random(&b, ARCH_BACKPACK, 22);
    save_ok(&a);
    BpError err = {0};
    /* A save that fails while staging. */
    assert_int_equal(checkpoint_save(&b, ckpt, NULL, failing_writer, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "disk full"));
    assert_int_equal(staging_leftovers(), 0);
    /* A missing tokenizer file fails the save too, naming it. */
    char bad_tok[600];
    snprintf(bad_tok, sizeof bad_tok, "%s/nowhere", tmp.path);
    assert_int_equal(checkpoint_save(&b, ckpt, bad_tok, NULL, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "nowhere/vocab.json"));
    /* A process killed while staging: the staging directory is left half written. */
    char staging[4096];
    assert_int_equal(dir_stage(ckpt, staging, sizeof staging, &err), 0);
    char p[4200];
    snprintf(p, sizeof p, "%s/model.safetensors", staging);
    assert_int_equal(write_file_atomic(p, "\x10\0\0\0\0\0\0\0{\"a\":", 13, &err), 0);
    snprintf(p, sizeof p, "%s/config.json", staging);
    assert_int_equal(write_file_atomic(p, "{", 1, &err), 0);
    /* ... and the old checkpoint is whole. */
    assert_int_equal(checkpoint_load(&x, ckpt, &err), 0);
    assert_memory_equal(x.params_memory, a.params_memory, a.num_parameters * sizeof(float));
    backpack_free(&x);
    /* The next save succeeds over the debris. */
    save_ok(&b);
    assert_int_equal(checkpoint_load(&x, ckpt, &err), 0);
    assert_memory_equal(x.params_memory, b.params_memory, b.num_parameters * sizeof(float));
    assert_int_equal(staging_leftovers(), 0);
    backpack_free(&x);
    backpack_free(&a);
    backpack_free(&b);
}

/* --- weights files that are wrong --------------------------------------------------------- */

/* Writes m's weights with edits: `drop` omitted, `rename_to` replacing the name of
 * `rename_from`, `reshape` given shape [s0, s1], `redtype` given another dtype, and
 * `extra` tensors appended. */
typedef struct {
    const char *drop;
    const char *reshape;
    int64_t s0, s1;
    int reshape_ndim;
    const char *redtype;
    SafeDtype dtype;
    const char *rename_from, *rename_to;
    const SafeTensorOut *extra;
    int n_extra;
} WeightEdits;

static void write_weights(const Backpack *m, const WeightEdits *w) {
    int n = backpack_num_param_entries(&m->config);
    ParamEntry *e = malloc(sizeof *e * (size_t)n);
    SafeTensorOut *out = calloc((size_t)(n + w->n_extra), sizeof *out);
    assert_non_null(e);
    assert_non_null(out);
    backpack_param_entries(m, &m->params, e);
    int count = 0;
    for (int i = 0; i < n; i++) {
        if (w->drop && !strcmp(e[i].name, w->drop)) continue;
        SafeTensorOut *o = &out[count++];
        o->name = e[i].name;
        o->dtype = ST_F32;
        o->ndim = e[i].ndim;
        o->shape[0] = e[i].shape[0];
        o->shape[1] = e[i].shape[1];
        o->data = e[i].data;
        if (w->reshape && !strcmp(e[i].name, w->reshape)) {
            o->ndim = w->reshape_ndim;
            o->shape[0] = w->s0;
            o->shape[1] = w->s1;
        }
        if (w->redtype && !strcmp(e[i].name, w->redtype)) o->dtype = w->dtype;
        if (w->rename_from && !strcmp(e[i].name, w->rename_from)) o->name = w->rename_to;
    }
    for (int i = 0; i < w->n_extra; i++) out[count++] = w->extra[i];
    BpError err = {0};
    if (safetensors_write(weights, out, count, NULL, NULL, 0, &err) != 0) fail_msg("%s", err.msg);
    free(out);
    free(e);
}

static void test_missing_tensor(void **state) {
    (void)state;
    Backpack a;
    build_random(&a, ARCH_BACKPACK, 3);
    save_ok(&a);
    write_weights(&a, &(WeightEdits){.drop = "backpack.sense_network.block.ln_2.bias"});
    expect_load_fails(weights, "'backpack.sense_network.block.ln_2.bias'", "missing", NULL);
    write_weights(&a, &(WeightEdits){.drop = "backpack.gpt2_model.h.1.attn.c_proj.weight"});
    expect_load_fails(weights, "'backpack.gpt2_model.h.1.attn.c_proj.weight'", "missing", NULL);
    backpack_free(&a);
}

static void test_unknown_extra_tensor(void **state) {
    (void)state;
    Backpack a;
    build_random(&a, ARCH_BACKPACK, 4);
    save_ok(&a);
    float x[3] = {1, 2, 3};
    SafeTensorOut extra = {.name = "backpack.gpt2_model.h.2.ln_1.weight", .dtype = ST_F32,
                           .ndim = 1, .shape = {3}, .data = x};
    write_weights(&a, &(WeightEdits){.extra = &extra, .n_extra = 1});
    expect_load_fails(weights, "unexpected tensor 'backpack.gpt2_model.h.2.ln_1.weight'", NULL);
    /* A misspelt name is both missing and unknown: the missing one is reported. */
    write_weights(&a, &(WeightEdits){.rename_from = "backpack.gpt2_model.ln_f.bias",
                                     .rename_to = "backpack.gpt2_model.ln_f.biass"});
    expect_load_fails(weights, "'backpack.gpt2_model.ln_f.bias'", "missing", NULL);
    backpack_free(&a);
}

static void test_wrong_shape(void **state) {
    (void)state;
    Backpack a;
    build_random(&a, ARCH_BACKPACK, 5);
    save_ok(&a);
    /* Transposed, as if stored [in, out] for the nn.Linear. */
    write_weights(&a, &(WeightEdits){.reshape = "backpack.sense_weight_net.c_attn.weight",
                                     .reshape_ndim = 2, .s0 = D, .s1 = 2 * D});
    expect_load_fails(weights, "'backpack.sense_weight_net.c_attn.weight'", "shape [16, 32]",
                      "config wants [32, 16]", NULL);
    write_weights(&a, &(WeightEdits){.reshape = "backpack.gpt2_model.wte.weight",
                                     .reshape_ndim = 2, .s0 = V - 1, .s1 = D});
    expect_load_fails(weights, "'backpack.gpt2_model.wte.weight'", "[49, 16]", "[50, 16]", NULL);
    /* Same element count, wrong rank. */
    write_weights(&a, &(WeightEdits){.reshape = "backpack.gpt2_model.h.0.ln_1.bias",
                                     .reshape_ndim = 2, .s0 = 1, .s1 = D});
    expect_load_fails(weights, "'backpack.gpt2_model.h.0.ln_1.bias'", "[1, 16]", "[16]", NULL);
    write_weights(&a, &(WeightEdits){.reshape = "backpack.gpt2_model.h.1.ln_2.weight",
                                     .reshape_ndim = 2, .s0 = D, .s1 = 1});
    expect_load_fails(weights, "'backpack.gpt2_model.h.1.ln_2.weight'", "[16, 1]", "[16]", NULL);
    backpack_free(&a);
}

static void test_wrong_dtype(void **state) {
    (void)state;
    Backpack a;
    build_random(&a, ARCH_BACKPACK, 6);
    save_ok(&a);
    write_weights(&a, &(WeightEdits){.redtype = "backpack.gpt2_model.h.0.mlp.c_fc.bias",
                                     .dtype = ST_I32});
    expect_load_fails(weights, "'backpack.gpt2_model.h.0.mlp.c_fc.bias'", "dtype I32", NULL);
    write_weights(&a, &(WeightEdits){.redtype = "backpack.gpt2_model.wpe.weight", .dtype = ST_U32});
    expect_load_fails(weights, "'backpack.gpt2_model.wpe.weight'", "dtype U32", NULL);
    backpack_free(&a);
}

static void test_aliases_and_masks_ignored(void **state) {
    (void)state;
    for (int arch = ARCH_BACKPACK; arch <= ARCH_TRANSFORMER; arch++) {
        Backpack a, b;
        build_random(&a, (ModelArch)arch, 7);
        save_ok(&a);
        float junk[V * D];
        for (int i = 0; i < V * D; i++) junk[i] = 1000.0f + (float)i;  /* not the real wte */
        uint8_t mask[N * N];
        for (int i = 0; i < N * N; i++) mask[i] = (i % N) <= (i / N);
        float masked_bias = -1e4f;
        const char *g = arch == ARCH_BACKPACK ? "backpack.gpt2_model" : "transformer";
        char b0[96], b1[96], mb0[96];
        snprintf(b0, sizeof b0, "%s.h.0.attn.bias", g);
        snprintf(b1, sizeof b1, "%s.h.1.attn.bias", g);
        snprintf(mb0, sizeof mb0, "%s.h.0.attn.masked_bias", g);
        SafeTensorOut extra[] = {
            {.name = "lm_head.weight", .dtype = ST_F32, .ndim = 2, .shape = {V, D}, .data = junk},
            {.name = b0, .dtype = ST_BOOL, .ndim = 4, .shape = {1, 1, N, N}, .data = mask},
            {.name = b1, .dtype = ST_BOOL, .ndim = 4, .shape = {1, 1, N, N}, .data = mask},
            {.name = mb0, .dtype = ST_F32, .ndim = 0, .data = &masked_bias},
            {.name = "backpack.word_embeddings.weight", .dtype = ST_F32, .ndim = 2,
             .shape = {V, D}, .data = junk},
            {.name = "backpack.position_embeddings.weight", .dtype = ST_F32, .ndim = 2,
             .shape = {N, D}, .data = junk},
        };
        write_weights(&a, &(WeightEdits){.extra = extra,
                                         .n_extra = arch == ARCH_BACKPACK ? 6 : 4});
        BpError err = {0};
        if (checkpoint_load(&b, ckpt, &err) != 0) fail_msg("%s", err.msg);
        assert_memory_equal(a.params_memory, b.params_memory, a.num_parameters * sizeof(float));
        backpack_free(&a);
        backpack_free(&b);
    }
}

/* GPT-2 files saved from GPT2Model (OpenAI's) have no "transformer." prefix. */
static void test_gpt2_names_without_prefix(void **state) {
    (void)state;
    Backpack a, b;
    build_random(&a, ARCH_TRANSFORMER, 8);
    save_ok(&a);
    int n = backpack_num_param_entries(&a.config);
    ParamEntry *e = malloc(sizeof *e * (size_t)n);
    SafeTensorOut *out = calloc((size_t)n, sizeof *out);
    backpack_param_entries(&a, &a.params, e);
    for (int i = 0; i < n; i++) {
        assert_int_equal(strncmp(e[i].name, "transformer.", 12), 0);
        out[i] = (SafeTensorOut){.name = e[i].name + 12, .dtype = ST_F32, .ndim = e[i].ndim,
                                 .shape = {e[i].shape[0], e[i].shape[1]}, .data = e[i].data};
    }
    BpError err = {0};
    assert_int_equal(safetensors_write(weights, out, n, NULL, NULL, 0, &err), 0);
    if (checkpoint_load(&b, ckpt, &err) != 0) fail_msg("%s", err.msg);
    assert_memory_equal(a.params_memory, b.params_memory, a.num_parameters * sizeof(float));
    free(out);
    free(e);
    backpack_free(&a);
    backpack_free(&b);
}

/* --- damaged files ------------------------------------------------------------------------- */

static void read_weights(char **raw, size_t *len) {
    BpError err = {0};
    assert_int_equal(read_file(weights, raw, len, &err), 0);
}

static void put_weights(const void *raw, size_t len) {
    FILE *fp = fopen(weights, "wb");
    assert_non_null(fp);
    if (len) assert_int_equal(fwrite(raw, 1, len, fp), len);
    fclose(fp);
}

static uint64_t header_len(const char *raw) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | (unsigned char)raw[i];
    return n;
}

static void test_truncated_weights(void **state) {
    (void)state;
    Backpack a;
    build_random(&a, ARCH_BACKPACK, 9);
    save_ok(&a);
    char *raw;
    size_t len;
    read_weights(&raw, &len);
    uint64_t n = header_len(raw);
    size_t cuts[] = {0, 4, 8, 8 + n / 3, 8 + n - 1, 8 + n, 8 + n + 100, len / 2, len - 4, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        put_weights(raw, cuts[i]);
        expect_load_fails(weights, NULL);
    }
    /* Cut in the data: the message names a tensor that runs past the end. */
    put_weights(raw, len - 1);
    expect_load_fails(weights, "'backpack.sense_weight_net.c_attn.weight'", "past the end", NULL);
    put_weights(raw, 8 + n / 3);
    expect_load_fails(weights, "header length", NULL);
    free(raw);
    backpack_free(&a);
}

static void test_header_length_beyond_file(void **state) {
    (void)state;
    Backpack a;
    build_random(&a, ARCH_BACKPACK, 10);
    save_ok(&a);
    char *raw;
    size_t len;
    read_weights(&raw, &len);
    uint64_t big = len;  /* 8 + len > file size */
    for (int i = 0; i < 8; i++) raw[i] = (char)(big >> (8 * i));
    put_weights(raw, len);
    expect_load_fails(weights, "header length", "past the end of the file", NULL);
    free(raw);
    backpack_free(&a);
}

static void test_bad_json_header(void **state) {
    (void)state;
    Backpack a;
    build_random(&a, ARCH_BACKPACK, 13);
    save_ok(&a);
    char *raw;
    size_t len;
    read_weights(&raw, &len);
    char *colon = memchr(raw + 8, ':', header_len(raw));
    assert_non_null(colon);
    *colon = ';';
    put_weights(raw, len);
    expect_load_fails(weights, "not valid JSON", NULL);
    free(raw);
    backpack_free(&a);
}

/* Rewrites the header with one tensor's data_offsets changed (the data untouched). */
static void patch_offsets(const char *name, int64_t begin, int64_t end) {
    char *raw;
    size_t len;
    read_weights(&raw, &len);
    uint64_t n = header_len(raw);
    json_error_t jerr;
    json_t *root = json_loadb(raw + 8, n, 0, &jerr);
    assert_non_null(root);
    json_t *info = json_object_get(root, name);
    assert_non_null(info);
    json_object_set_new(info, "data_offsets", json_pack("[II]", (json_int_t)begin, (json_int_t)end));
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    uint64_t tl = strlen(text);
    FILE *fp = fopen(weights, "wb");
    assert_non_null(fp);
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++) lenbuf[i] = (unsigned char)(tl >> (8 * i));
    assert_int_equal(fwrite(lenbuf, 1, 8, fp), 8);
    assert_int_equal(fwrite(text, 1, tl, fp), tl);
    assert_int_equal(fwrite(raw + 8 + n, 1, len - 8 - n, fp), len - 8 - n);
    fclose(fp);
    free(text);
    json_decref(root);
    free(raw);
}

static void test_offsets_out_of_range_or_overlapping(void **state) {
    (void)state;
    Backpack a;
    build_random(&a, ARCH_BACKPACK, 14);
    save_ok(&a);
    SafeTensorsFile f;
    BpError err = {0};
    assert_int_equal(safetensors_open(&f, weights, &err), 0);
    const char *name = "backpack.gpt2_model.h.0.ln_2.bias";
    const SafeTensorInfo *t = safetensors_find(&f, name);
    assert_non_null(t);
    int64_t begin = (int64_t)t->begin, size = (int64_t)(t->end - t->begin);
    int64_t data = (int64_t)(f.file_size - f.data_start);
    safetensors_close(&f);
    /* Past the end of the data. */
    patch_offsets(name, data, data + size);
    expect_load_fails(weights, name, "past the end", NULL);
    /* Onto the bytes of the tensor before it. */
    patch_offsets(name, begin - 4, begin - 4 + size);
    expect_load_fails(weights, name, "overlap", NULL);
    /* Inconsistent with dtype * shape. */
    patch_offsets(name, begin, begin + size - 4);
    expect_load_fails(weights, name, "needs", NULL);
    backpack_free(&a);
}

/* --- non-finite weights and symbolic links ----------------------------------------------------- */

/* The parameter entry holding element `index` of params_memory. */
static ParamEntry entry_of(const Backpack *m, size_t index) {
    int n = backpack_num_param_entries(&m->config);
    ParamEntry *e = malloc(sizeof *e * (size_t)n);
    assert_non_null(e);
    backpack_param_entries(m, &m->params, e);
    const float *p = m->params_memory + index;
    ParamEntry found = {0};
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        for (int j = 0; j < e[i].ndim; j++) numel *= (size_t)e[i].shape[j];
        if (p >= e[i].data && p < e[i].data + numel) found = e[i];
    }
    free(e);
    assert_non_null(found.data);
    return found;
}

static void test_non_finite_weights(void **state) {
    (void)state;
    const float bad[] = {NAN, INFINITY, -INFINITY};
    const char *names[] = {"NaN", "Inf", "-Inf"};
    for (int k = 0; k < 3; k++) {
        Backpack a;
        build_random(&a, k == 1 ? ARCH_TRANSFORMER : ARCH_BACKPACK, 15);
        size_t index = (size_t)(k + 1) * a.num_parameters / 4;
        a.params_memory[index] = bad[k];
        ParamEntry e = entry_of(&a, index);
        save_ok(&a);
        char elem[32];
        snprintf(elem, sizeof elem, "element %zu", (size_t)(a.params_memory + index - e.data));
        char quoted[160];
        snprintf(quoted, sizeof quoted, "'%s'", e.name);
        expect_load_fails(weights, quoted, names[k], elem, NULL);
        backpack_free(&a);
    }
}

/* A checkpoint directory that is a symbolic link: saves keep the link and replace what it
 * points at, and leave nothing behind (they used to replace the link by a directory,
 * empty its target, leave "LINK.staging-PID" and fail the next time with "File exists"). */
static void test_save_through_link(void **state) {
    (void)state;
    char link[600];
    snprintf(link, sizeof link, "%s/link", tmp.path);
    BpError err = {0};
    assert_int_equal(make_dirs(ckpt, &err), 0);
    assert_int_equal(symlink("ckpt", link), 0);
    for (int round = 0; round < 2; round++) {
        Backpack a, b;
        build_random(&a, ARCH_BACKPACK, 20 + (uint64_t)round);
        if (checkpoint_save(&a, link, tokdir, NULL, NULL, &err) != 0) fail_msg("%s", err.msg);
        struct stat st;
        assert_int_equal(lstat(link, &st), 0);
        assert_true(S_ISLNK(st.st_mode));
        assert_int_equal(staging_leftovers(), 0);
        if (checkpoint_load(&b, ckpt, &err) != 0) fail_msg("%s", err.msg);
        assert_memory_equal(a.params_memory, b.params_memory, a.num_parameters * sizeof(float));
        backpack_free(&b);
        if (checkpoint_load(&b, link, &err) != 0) fail_msg("%s", err.msg);
        backpack_free(&b);
        backpack_free(&a);
    }
}

/* --- config.json ---------------------------------------------------------------------------- */

static void edit_config(const char *key, json_t *value /* stolen; NULL deletes */) {
    json_error_t jerr;
    json_t *cfg = json_load_file(config, 0, &jerr);
    assert_non_null(cfg);
    if (value) json_object_set_new(cfg, key, value);
    else json_object_del(cfg, key);
    assert_int_equal(json_dump_file(cfg, config, JSON_INDENT(2)), 0);
    json_decref(cfg);
}

static void expect_config_fails(const char *frag, ...) {
    BackpackConfig c;
    BpError err = {0};
    assert_int_equal(checkpoint_read_config(ckpt, &c, &err), -1);
    if (!strstr(err.msg, config)) fail_msg("message '%s' does not name the file", err.msg);
    va_list ap;
    va_start(ap, frag);
    for (const char *s = frag; s; s = va_arg(ap, const char *))
        if (!strstr(err.msg, s)) fail_msg("message '%s' lacks '%s'", err.msg, s);
    va_end(ap);
    expect_load_fails(config, frag, NULL);
}

static void test_config_missing_keys(void **state) {
    (void)state;
    Backpack a;
    build_random(&a, ARCH_BACKPACK, 15);
    const char *keys[] = {"n_embd", "n_layer", "n_head", "n_positions", "num_senses",
                          "sense_intermediate_scale", "vocab_size", "layer_norm_epsilon",
                          "scale_attn_by_inverse_layer_idx", "activation_function",
                          "model_type"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        save_ok(&a);
        edit_config(keys[i], NULL);
        char want[96];
        snprintf(want, sizeof want, "key '%s' is missing", keys[i]);
        expect_config_fails(want, NULL);
    }
    backpack_free(&a);
}

static void test_config_bad_values(void **state) {
    (void)state;
    Backpack a;
    build_random(&a, ARCH_BACKPACK, 16);
    struct {
        const char *key;
        json_t *value;
        const char *frag1, *frag2;
    } cases[] = {
        {"n_embd", json_string("16"), "'n_embd'", "not an integer"},
        {"n_embd", json_real(16.0), "'n_embd'", "not an integer"},
        {"n_layer", json_integer(0), "'n_layer'", "out of range"},
        {"n_head", json_integer(-2), "'n_head'", "out of range"},
        {"vocab_size", json_integer(1LL << 40), "'vocab_size'", "out of range"},
        {"num_senses", json_integer(5), "num_senses", "does not divide"},
        {"n_head", json_integer(3), "n_head", "does not divide"},
        {"model_type", json_string("llama"), "'model_type'", "llama"},
        {"model_type", json_integer(1), "'model_type'", "not a string"},
        {"layer_norm_epsilon", json_real(1e-6), "'layer_norm_epsilon'", "1e-05"},
        {"layer_norm_epsilon", json_string("1e-5"), "'layer_norm_epsilon'", "not a number"},
        {"scale_attn_by_inverse_layer_idx", json_false(), "'scale_attn_by_inverse_layer_idx'",
         "true"},
        {"activation_function", json_string("relu"), "'activation_function'", "gelu_new"},
        {"tie_word_embeddings", json_false(), "'tie_word_embeddings'", "true"},
        {"n_inner", json_integer(100), "'n_inner'", "4 * n_embd"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        save_ok(&a);
        edit_config(cases[i].key, cases[i].value);
        expect_config_fails(cases[i].frag1, cases[i].frag2, NULL);
    }
    /* Keys Hugging Face writes that change nothing are accepted. */
    save_ok(&a);
    edit_config("n_inner", json_null());
    edit_config("layer_norm_epsilon", json_real(1e-05));
    edit_config("torch_dtype", json_string("float32"));
    BackpackConfig c;
    BpError err = {0};
    if (checkpoint_read_config(ckpt, &c, &err) != 0) fail_msg("%s", err.msg);
    backpack_free(&a);
}

static void test_config_bad_json_or_absent(void **state) {
    (void)state;
    Backpack a;
    build_random(&a, ARCH_BACKPACK, 17);
    save_ok(&a);
    BpError err = {0};
    assert_int_equal(write_file_atomic(config, "{\"n_embd\": 16,", 14, &err), 0);
    expect_config_fails("not valid JSON", NULL);
    assert_int_equal(write_file_atomic(config, "[16]", 4, &err), 0);
    expect_config_fails("not a JSON object", NULL);
    unlink(config);
    expect_config_fails("No such file", NULL);
    backpack_free(&a);
}

/* A config that is valid but disagrees with the weights. */
static void test_config_disagrees_with_weights(void **state) {
    (void)state;
    Backpack a;
    build_random(&a, ARCH_BACKPACK, 18);
    save_ok(&a);
    edit_config("vocab_size", json_integer(60));
    expect_load_fails(weights, "'backpack.gpt2_model.wte.weight'", "shape [50, 16]",
                      "config wants [60, 16]", NULL);
    save_ok(&a);
    edit_config("n_layer", json_integer(1));
    expect_load_fails(weights, "unexpected tensor 'backpack.gpt2_model.h.1.", NULL);
    save_ok(&a);
    edit_config("num_senses", json_integer(8));
    expect_load_fails(weights, "'backpack.sense_network.final_mlp.c_proj.weight'", "[64, 64]",
                      "[64, 128]", NULL);
    save_ok(&a);
    edit_config("model_type", json_string("gpt2"));
    expect_load_fails(weights, "'transformer.wte.weight'", "missing", NULL);
    backpack_free(&a);
}

/* --- a checkpoint written by the PyTorch side ------------------------------------------------ */

#define FIXTURE_SCRIPT "tests/make_hf_checkpoint.py"
#define PYTHON "/usr/bin/python3"

static float fixture_value(const char *name, size_t i) {
    unsigned seed = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) seed += *p;
    seed %= 97;
    return (float)((double)((i * 7 + seed * 13) % 1000) / 1000.0 - 0.5);
}

static void load_python_fixture(const char *dtype, const char *arch, float tol) {
    if (access(FIXTURE_SCRIPT, R_OK) != 0 || access(PYTHON, X_OK) != 0 ||
        system(PYTHON " -c 'import numpy' 2>/dev/null") != 0)
        skip();
    char cmd[1200];
    snprintf(cmd, sizeof cmd, PYTHON " " FIXTURE_SCRIPT " %s %s %s", ckpt, dtype, arch);
    assert_int_equal(system(cmd), 0);
    Backpack m;
    BpError err = {0};
    if (checkpoint_load(&m, ckpt, &err) != 0) fail_msg("%s: %s", dtype, err.msg);
    BackpackConfig want = tiny(strcmp(arch, "gpt2") ? ARCH_BACKPACK : ARCH_TRANSFORMER);
    assert_memory_equal(&m.config, &want, sizeof want);
    int n = backpack_num_param_entries(&m.config);
    ParamEntry *e = malloc(sizeof *e * (size_t)n);
    backpack_param_entries(&m, &m.params, e);
    size_t checked = 0;
    for (int i = 0; i < n; i++) {
        size_t numel = (size_t)e[i].shape[0] * (e[i].ndim == 2 ? (size_t)e[i].shape[1] : 1);
        for (size_t j = 0; j < numel; j++) {
            float want_v = fixture_value(e[i].name, j), got = e[i].data[j];
            if (!(fabsf(got - want_v) <= tol * fabsf(want_v)))
                fail_msg("%s %s[%zu] = %g, want %g", dtype, e[i].name, j, got, want_v);
        }
        checked += numel;
    }
    assert_int_equal(checked, m.num_parameters);
    free(e);
    backpack_free(&m);
}

static void test_pytorch_written_f32(void **state) {
    (void)state;
    load_python_fixture("f32", "backpack", 0.0f);
}

static void test_pytorch_written_f16(void **state) {
    (void)state;
    load_python_fixture("f16", "backpack", 1.0f / 2048);
}

static void test_pytorch_written_bf16(void **state) {
    (void)state;
    load_python_fixture("bf16", "backpack", 1.0f / 256);
}

static void test_pytorch_written_gpt2(void **state) {
    (void)state;
    load_python_fixture("f32", "gpt2", 0.0f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_backpack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_transformer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aborted_save_keeps_old_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_tensor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_extra_tensor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_dtype, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aliases_and_masks_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gpt2_names_without_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_weights, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_length_beyond_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_json_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offsets_out_of_range_or_overlapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_finite_weights, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_through_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_missing_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_bad_json_or_absent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_disagrees_with_weights, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pytorch_written_f32, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pytorch_written_f16, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pytorch_written_bf16, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pytorch_written_gpt2, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
