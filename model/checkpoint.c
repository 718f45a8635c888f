/* checkpoint.c - a model directory in the Hugging Face layout (see checkpoint.h). */
#include "checkpoint.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fileio.h"
#include "safetensors.h"

#define CONFIG_FILE "config.json"
#define WEIGHTS_FILE "model.safetensors"

static const char *const TOKENIZER_FILES[] = {"vocab.json", "merges.txt"};

/* ------------------------------------------------------------------------------------ */
/* config.json */

/* The keys Hugging Face writes, sorted (as save_pretrained does). */
static json_t *config_to_json(const BackpackConfig *c) {
    json_t *o = json_object();
    if (!o) return NULL;
    int bp = c->arch == ARCH_BACKPACK;
    json_t *arch = json_array();
    json_array_append_new(arch, json_string(bp ? "BackpackGPT2LMHeadModel" : "GPT2LMHeadModel"));
    json_object_set_new(o, "architectures", arch);
    if (attention_kinds(c) != ATTN_DOT) { /* a dot model keeps the published keys */
        char name[160];
        attention_name(c->attention, name, sizeof name);
        json_object_set_new(o, "attention", json_string(name));
    }
    json_object_set_new(o, "activation_function", json_string("gelu_new"));
    json_object_set_new(o, "layer_norm_epsilon", json_real(1e-5));
    json_object_set_new(o, "model_type", json_string(bp ? "backpack-gpt2" : "gpt2"));
    json_object_set_new(o, "n_embd", json_integer(c->n_embd));
    json_object_set_new(o, "n_head", json_integer(c->n_head));
    json_object_set_new(o, "n_layer", json_integer(c->n_layer));
    json_object_set_new(o, "n_positions", json_integer(c->n_positions));
    if (c->no_last_residual) json_object_set_new(o, "no_last_residual", json_true());
    if (bp) {
        json_object_set_new(o, "num_senses", json_integer(c->num_senses));
        json_object_set_new(o, "sense_intermediate_scale",
                            json_integer(c->sense_intermediate_scale));
    }
    json_object_set_new(o, "scale_attn_by_inverse_layer_idx", json_true());
    if (!bp) json_object_set_new(o, "tie_word_embeddings", json_true());
    json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
    return o;
}

static int write_config(const char *dir, const BackpackConfig *c, BpError *err) {
    char path[4096];
    if (path_join(path, sizeof path, dir, CONFIG_FILE, err) != 0) return -1;
    json_t *o = config_to_json(c);
    char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(15))
                   : NULL;
    json_decref(o);
    if (!text) return bp_fail(err, "%s: out of memory", path);
    size_t n = strlen(text);
    char *with_newline = realloc(text, n + 2);
    if (!with_newline) {
        free(text);
        return bp_fail(err, "%s: out of memory", path);
    }
    with_newline[n] = '\n';
    with_newline[n + 1] = '\0';
    int rc = write_file_atomic(path, with_newline, n + 1, err);
    free(with_newline);
    return rc;
}

/* An integer key in [lo, hi]; the message names the file and the key. */
static int get_int(const char *path, json_t *root, const char *key, long long lo, long long hi,
                   int *out, BpError *err) {
    json_t *v = json_object_get(root, key);
    if (!v) return bp_fail(err, "%s: key '%s' is missing", path, key);
    if (!json_is_integer(v)) return bp_fail(err, "%s: key '%s' is not an integer", path, key);
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return bp_fail(err, "%s: key '%s' is %lld, out of range [%lld, %lld]", path, key, x, lo,
                       hi);
    *out = (int)x;
    return 0;
}

int checkpoint_read_config(const char *dir, BackpackConfig *c, BpError *err) {
    memset(c, 0, sizeof *c);
    char path[4096];
    if (path_join(path, sizeof path, dir, CONFIG_FILE, err) != 0) return -1;
    char *text;
    size_t len;
    if (read_file(path, &text, &len, err) != 0) return -1;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!root)
        return bp_fail(err, "%s: not valid JSON (line %d column %d: %s)", path, jerr.line,
                       jerr.column, jerr.text);
    int rc = -1;
    if (!json_is_object(root)) {
        bp_fail(err, "%s: not a JSON object", path);
        goto done;
    }
    json_t *v = json_object_get(root, "model_type");
    if (!v) {
        bp_fail(err, "%s: key 'model_type' is missing", path);
        goto done;
    }
    if (!json_is_string(v)) {
        bp_fail(err, "%s: key 'model_type' is not a string", path);
        goto done;
    }
    if (!strcmp(json_string_value(v), "backpack-gpt2")) c->arch = ARCH_BACKPACK;
    else if (!strcmp(json_string_value(v), "gpt2")) c->arch = ARCH_TRANSFORMER;
    else {
        bp_fail(err, "%s: key 'model_type' is \"%.40s\", want \"backpack-gpt2\" or \"gpt2\"",
                path, json_string_value(v));
        goto done;
    }
    if (get_int(path, root, "n_embd", 1, INT_MAX, &c->n_embd, err) != 0 ||
        get_int(path, root, "n_layer", 1, INT_MAX, &c->n_layer, err) != 0 ||
        get_int(path, root, "n_head", 1, INT_MAX, &c->n_head, err) != 0 ||
        get_int(path, root, "n_positions", 1, INT_MAX, &c->n_positions, err) != 0 ||
        get_int(path, root, "vocab_size", 1, INT_MAX, &c->vocab_size, err) != 0)
        goto done;
    if (c->arch == ARCH_BACKPACK) {
        if (get_int(path, root, "num_senses", 1, INT_MAX, &c->num_senses, err) != 0 ||
            get_int(path, root, "sense_intermediate_scale", 1, INT_MAX,
                    &c->sense_intermediate_scale, err) != 0)
            goto done;
    } else {
        c->num_senses = 0;
        c->sense_intermediate_scale = 4;
    }
    /* Synthesizer attention (docs/synthesizer.md); absent: dot-product */
    v = json_object_get(root, "attention");
    if (v) {
        if (!json_is_string(v)) {
            bp_fail(err, "%s: key 'attention' is not a string", path);
            goto done;
        }
        if (attention_parse(json_string_value(v), &c->attention, err) != 0) {
            bp_error_prefix(err, "%s", path);
            goto done;
        }
    }
    /* The computation is fixed (spec): keys that would change it must say so. */
    v = json_object_get(root, "layer_norm_epsilon");
    if (!v) {
        bp_fail(err, "%s: key 'layer_norm_epsilon' is missing", path);
        goto done;
    }
    if (!json_is_number(v)) {
        bp_fail(err, "%s: key 'layer_norm_epsilon' is not a number", path);
        goto done;
    }
    if (fabs(json_number_value(v) - 1e-5) > 1e-12) {
        bp_fail(err, "%s: key 'layer_norm_epsilon' is %g, only 1e-05 is supported", path,
                json_number_value(v));
        goto done;
    }
    v = json_object_get(root, "scale_attn_by_inverse_layer_idx");
    if (!v) {
        bp_fail(err, "%s: key 'scale_attn_by_inverse_layer_idx' is missing", path);
        goto done;
    }
    if (!json_is_true(v)) {
        bp_fail(err, "%s: key 'scale_attn_by_inverse_layer_idx' must be true (attention is "
                "scaled by 1/(layer+1))", path);
        goto done;
    }
    v = json_object_get(root, "activation_function");
    if (!v) {
        bp_fail(err, "%s: key 'activation_function' is missing", path);
        goto done;
    }
    if (!json_is_string(v) || (strcmp(json_string_value(v), "gelu_new") != 0 &&
                               strcmp(json_string_value(v), "gelu_pytorch_tanh") != 0)) {
        bp_fail(err, "%s: key 'activation_function' must be \"gelu_new\" (the tanh GELU)", path);
        goto done;
    }
    /* Ours: the last block without its MLP residual (written only when true). */
    v = json_object_get(root, "no_last_residual");
    if (v && !json_is_boolean(v)) {
        bp_fail(err, "%s: key 'no_last_residual' is not true or false", path);
        goto done;
    }
    c->no_last_residual = v && json_is_true(v);
    /* Optional keys Hugging Face may write, accepted only with the values we compute. */
    v = json_object_get(root, "tie_word_embeddings");
    if (v && !json_is_true(v)) {
        bp_fail(err, "%s: key 'tie_word_embeddings' must be true (the output is tied to wte)",
                path);
        goto done;
    }
    v = json_object_get(root, "n_inner");
    if (v && !json_is_null(v) &&
        (!json_is_integer(v) || json_integer_value(v) != 4LL * c->n_embd)) {
        bp_fail(err, "%s: key 'n_inner' must be null or 4 * n_embd", path);
        goto done;
    }
    if (backpack_config_validate(c, err) != 0) {
        bp_error_prefix(err, "%s", path);
        goto done;
    }
    rc = 0;
done:
    json_decref(root);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* saving */

static int write_weights(const char *dir, const Backpack *m, BpError *err) {
    char path[4096];
    if (path_join(path, sizeof path, dir, WEIGHTS_FILE, err) != 0) return -1;
    int n = backpack_num_param_entries(&m->config);
    ParamEntry *entries = malloc(sizeof *entries * (size_t)n);
    SafeTensorOut *out = malloc(sizeof *out * (size_t)n);
    if (!entries || !out) {
        free(entries);
        free(out);
        return bp_fail(err, "%s: out of memory", path);
    }
    backpack_param_entries(m, &m->params, entries);
    for (int i = 0; i < n; i++) {
        out[i] = (SafeTensorOut){.name = entries[i].name, .dtype = ST_F32,
                                 .ndim = entries[i].ndim, .data = entries[i].data};
        for (int j = 0; j < entries[i].ndim; j++) out[i].shape[j] = entries[i].shape[j];
    }
    const char *mk[] = {"format"}, *mv[] = {"pt"};  /* what transformers expects */
    int rc = safetensors_write(path, out, n, mk, mv, 1, err);
    free(out);
    free(entries);
    return rc;
}

static int copy_tokenizer(const char *staging, const char *tokenizer_dir, BpError *err) {
    for (size_t i = 0; i < sizeof TOKENIZER_FILES / sizeof *TOKENIZER_FILES; i++) {
        char src[4096], dst[4096];
        if (path_join(src, sizeof src, tokenizer_dir, TOKENIZER_FILES[i], err) != 0 ||
            path_join(dst, sizeof dst, staging, TOKENIZER_FILES[i], err) != 0 ||
            copy_file_atomic(src, dst, err) != 0)
            return -1;
    }
    return 0;
}

int checkpoint_save(const Backpack *m, const char *dir, const char *tokenizer_dir,
                    CheckpointExtraWriter extra, void *ctx, BpError *err) {
    char staging[4096];
    if (dir_stage(dir, staging, sizeof staging, err) != 0) return -1;
    if (write_config(staging, &m->config, err) != 0 || write_weights(staging, m, err) != 0 ||
        (tokenizer_dir && copy_tokenizer(staging, tokenizer_dir, err) != 0) ||
        (extra && extra(staging, ctx, err) != 0)) {
        dir_abort(staging);
        return -1;
    }
    return dir_commit(staging, dir, err);
}

/* ------------------------------------------------------------------------------------ */
/* loading */

/* Tensors a published file may hold besides the parameters: aliases of the tied
 * embeddings and GPT-2's boolean causal-mask buffers. */
static int is_ignored_tensor(const char *name) {
    static const char *const aliases[] = {"lm_head.weight", "backpack.word_embeddings.weight",
                                          "backpack.position_embeddings.weight"};
    for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
        if (!strcmp(name, aliases[i])) return 1;
    static const char *const suffixes[] = {".attn.bias", ".attn.masked_bias"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        size_t s = strlen(suffixes[i]);
        if (n >= s && !strcmp(name + n - s, suffixes[i])) return 1;
    }
    return 0;
}

/* The file's tensor for a parameter. GPT-2 files saved from GPT2Model (OpenAI's
 * published ones) lack the "transformer." prefix; accept those too. */
static const SafeTensorInfo *find_param(const SafeTensorsFile *f, const char *name, int arch) {
    const SafeTensorInfo *t = safetensors_find(f, name);
    static const char prefix[] = "transformer.";
    if (!t && arch == ARCH_TRANSFORMER && !strncmp(name, prefix, sizeof prefix - 1))
        t = safetensors_find(f, name + sizeof prefix - 1);
    return t;
}

/* A NaN or infinity in the weights would flow silently into every loss and logit (eval
 * printing "loss nan", generate emitting one token forever). Checked on the bits, so
 * that no floating-point mode can optimize the test away. */
static int check_finite(const char *path, const SafeTensorInfo *t, const float *x, BpError *err) {
    for (uint64_t i = 0; i < t->numel; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        if ((bits & 0x7f800000u) != 0x7f800000u) continue;
        const char *what = (bits & 0x007fffffu) ? "NaN" : (bits >> 31) ? "-Inf" : "Inf";
        return bp_fail(err, "%s: tensor '%s' holds %s at element %llu (the weights are corrupt)",
                       path, t->name, what, (unsigned long long)i);
    }
    return 0;
}

int checkpoint_load(Backpack *m, const char *dir, BpError *err) {
    memset(m, 0, sizeof *m);
    BackpackConfig c;
    if (checkpoint_read_config(dir, &c, err) != 0) return -1;
    char path[4096];
    if (path_join(path, sizeof path, dir, WEIGHTS_FILE, err) != 0) return -1;
    SafeTensorsFile f;
    if (safetensors_open(&f, path, err) != 0) return -1;
    ParamEntry *entries = NULL;
    const SafeTensorInfo **found = NULL;
    char *used = NULL;
    int rc = -1;
    if (backpack_build(m, &c, err) != 0) {
        bp_error_prefix(err, "%s", dir);
        safetensors_close(&f);
        return -1;
    }
    int n = backpack_num_param_entries(&c);
    entries = malloc(sizeof *entries * (size_t)n);
    found = malloc(sizeof *found * (size_t)n);
    used = calloc((size_t)(f.count ? f.count : 1), 1);
    if (!entries || !found || !used) {
        bp_fail(err, "%s: out of memory", path);
        goto done;
    }
    backpack_param_entries(m, &m->params, entries);
    /* Check the whole table before reading a byte of data. */
    for (int i = 0; i < n; i++) {
        const ParamEntry *e = &entries[i];
        const SafeTensorInfo *t = find_param(&f, e->name, c.arch);
        if (!t) {
            bp_fail(err, "%s: tensor '%s' is missing", path, e->name);
            goto done;
        }
        if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16) {
            bp_fail(err, "%s: tensor '%s' has dtype %s, want F32 (or F16, BF16)", path, t->name,
                    safetensors_dtype_name(t->dtype));
            goto done;
        }
        int same = t->ndim == e->ndim;
        for (int j = 0; same && j < e->ndim; j++) same = t->shape[j] == e->shape[j];
        if (!same) {
            int64_t want[2] = {e->shape[0], e->shape[1]};
            char have_s[160], want_s[64];
            bp_fail(err, "%s: tensor '%s' has shape %s, config wants %s", path, t->name,
                    safetensors_shape_str(t->shape, t->ndim, have_s, sizeof have_s),
                    safetensors_shape_str(want, e->ndim, want_s, sizeof want_s));
            goto done;
        }
        found[i] = t;
        used[t - f.tensors] = 1;
    }
    for (int i = 0; i < f.count; i++)
        if (!used[i] && !is_ignored_tensor(f.tensors[i].name)) {
            bp_fail(err, "%s: unexpected tensor '%s' (not a parameter of this %s config)", path,
                    f.tensors[i].name, c.arch == ARCH_BACKPACK ? "backpack-gpt2" : "gpt2");
            goto done;
        }
    for (int i = 0; i < n; i++) {
        if (safetensors_read_f32(&f, found[i], entries[i].data, err) != 0) goto done;
        if (check_finite(path, found[i], entries[i].data, err) != 0) goto done;
    }
    rc = 0;
done:
    free(used);
    free(found);
    free(entries);
    safetensors_close(&f);
    if (rc != 0) backpack_free(m);
    return rc;
}
