/* backpack.c - the model's public face: configuration checks, the one parameter
 * allocation and its named views, initialization, the checkpoint tensor table, the
 * weights hash, and the float32 training forward/backward (the computation itself
 * lives in net.c, which is written over a `real` type so that the gradient check can
 * compile the very same code in double precision). */
#include "backpack.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hash.h"
#include "net.h"

struct BackpackActivations {
    Net net;  /* float32 instance of net.c: activations, scratch, last batch */
};

/* ------------------------------------------------------------------------------------ */
/* configuration */

int backpack_config_validate(const BackpackConfig *c, BpError *err) {
    if (c->arch != ARCH_BACKPACK && c->arch != ARCH_TRANSFORMER)
        return bp_fail(err, "model_type: unknown architecture %d", (int)c->arch);
    if (c->vocab_size < 2 || c->vocab_size > (1 << 24))
        return bp_fail(err, "vocab_size: %d is out of range [2, 16777216]", c->vocab_size);
    if (c->n_embd < 1 || c->n_embd > 16384)
        return bp_fail(err, "n_embd: %d is out of range [1, 16384]", c->n_embd);
    if (c->n_layer < 1 || c->n_layer > 256)
        return bp_fail(err, "n_layer: %d is out of range [1, 256]", c->n_layer);
    if (c->n_head < 1 || c->n_head > c->n_embd || c->n_embd % c->n_head != 0)
        return bp_fail(err, "n_head: %d does not divide n_embd %d", c->n_head, c->n_embd);
    if (c->n_positions < 1 || c->n_positions > (1 << 16))
        return bp_fail(err, "n_positions: %d is out of range [1, 65536]", c->n_positions);
    if (c->arch == ARCH_BACKPACK) {
        if (c->num_senses < 1 || c->num_senses > c->n_embd || c->n_embd % c->num_senses != 0)
            return bp_fail(err, "num_senses: %d does not divide n_embd %d", c->num_senses,
                           c->n_embd);
        if (c->sense_intermediate_scale < 1 || c->sense_intermediate_scale > 64)
            return bp_fail(err, "sense_intermediate_scale: %d is out of range [1, 64]",
                           c->sense_intermediate_scale);
    }
    /* The whole model must fit comfortably in memory indices (< 2^34 floats). */
    double d = c->n_embd, total = (double)c->vocab_size * d + (double)c->n_positions * d +
                                  (double)c->n_layer * (12.0 * d * d + 13.0 * d);
    if (c->arch == ARCH_BACKPACK)
        total += (double)c->sense_intermediate_scale * d * d * (3.0 + c->num_senses) +
                 2.0 * d * d;
    if (total > 17179869184.0)
        return bp_fail(err, "n_embd: a model of %.3g parameters is too large", total);
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* parameters: one allocation, named views */

size_t backpack_param_sizes(const BackpackConfig *c, size_t s[BP_NUM_PARAM_TENSORS]) {
    size_t V = c->vocab_size, d = c->n_embd, L = c->n_layer, P = c->n_positions;
    int bp = c->arch == ARCH_BACKPACK;
    size_t S = bp ? (size_t)c->sense_intermediate_scale * d : 0;
    size_t k = bp ? (size_t)c->num_senses : 0;
    size_t ds = bp ? d : 0; /* d for sense tensors, 0 when there are none */
    size_t i = 0;
    s[i++] = V * d;          /* wte */
    s[i++] = P * d;          /* wpe */
    s[i++] = L * d;          /* ln1w */
    s[i++] = L * d;          /* ln1b */
    s[i++] = L * d * 3 * d;  /* qkvw */
    s[i++] = L * 3 * d;      /* qkvb */
    s[i++] = L * d * d;      /* attprojw */
    s[i++] = L * d;          /* attprojb */
    s[i++] = L * d;          /* ln2w */
    s[i++] = L * d;          /* ln2b */
    s[i++] = L * d * 4 * d;  /* fcw */
    s[i++] = L * 4 * d;      /* fcb */
    s[i++] = L * 4 * d * d;  /* fcprojw */
    s[i++] = L * d;          /* fcprojb */
    s[i++] = d;              /* lnfw */
    s[i++] = d;              /* lnfb */
    s[i++] = ds;             /* sense_lnw */
    s[i++] = ds;             /* sense_lnb */
    s[i++] = ds;             /* sense_ln1w */
    s[i++] = ds;             /* sense_ln1b */
    s[i++] = ds * S;         /* sense_fcw */
    s[i++] = S;              /* sense_fcb */
    s[i++] = S * ds;         /* sense_projw */
    s[i++] = ds;             /* sense_projb */
    s[i++] = ds;             /* sense_ln2w */
    s[i++] = ds;             /* sense_ln2b */
    s[i++] = ds * S;         /* sense_final_fcw */
    s[i++] = S;              /* sense_final_fcb */
    s[i++] = S * k * ds;     /* sense_final_projw */
    s[i++] = k * ds;         /* sense_final_projb */
    s[i++] = 2 * ds * ds;    /* sense_qkw */
    s[i++] = 2 * ds;         /* sense_qkb */
    size_t total = 0;
    for (int j = 0; j < BP_NUM_PARAM_TENSORS; j++) total += s[j];
    return total;
}

void backpack_point_tensors(const BackpackConfig *c, float *memory, ParameterTensors *t) {
    net_point_tensors(c, memory, t);
}

int backpack_build(Backpack *m, const BackpackConfig *c, BpError *err) {
    memset(m, 0, sizeof *m);
    if (backpack_config_validate(c, err) != 0) return -1;
    m->config = *c;
    size_t sizes[BP_NUM_PARAM_TENSORS];
    m->num_parameters = backpack_param_sizes(c, sizes);
    m->params_memory = calloc(m->num_parameters, sizeof(float));
    if (!m->params_memory)
        return bp_fail(err, "out of memory for %zu parameters", m->num_parameters);
    backpack_point_tensors(c, m->params_memory, &m->params);
    m->acts = calloc(1, sizeof *m->acts);
    if (!m->acts) {
        backpack_free(m);
        return bp_fail(err, "out of memory");
    }
    net_init(&m->acts->net, c, m->params_memory, NULL);
    m->mean_loss = -1.0f;
    return 0;
}

void backpack_free(Backpack *m) {
    if (m->acts) {
        net_free(&m->acts->net);
        free(m->acts);
    }
    free(m->params_memory);
    free(m->grads_memory);
    memset(m, 0, sizeof *m);
}

static void fill_normal(float *p, size_t n, float std, Rng *r) {
    for (size_t i = 0; i < n; i++) p[i] = std * rng_normal(r);
}

static void fill_value(float *p, size_t n, float v) {
    for (size_t i = 0; i < n; i++) p[i] = v;
}

void backpack_init_weights(Backpack *m, uint64_t seed) {
    const BackpackConfig *c = &m->config;
    size_t sizes[BP_NUM_PARAM_TENSORS];
    backpack_param_sizes(c, sizes);
    ParameterTensors *p = &m->params;
    Rng r;
    rng_seed(&r, seed);
    const float std = 0.02f, std_res = 0.02f / sqrtf(2.0f * (float)c->n_layer);
    memset(m->params_memory, 0, m->num_parameters * sizeof(float));  /* biases 0 */
    /* Normal tensors in the order of the layout, gains 1. */
    float *normal[] = {p->wte, p->wpe, p->qkvw, p->attprojw, p->fcw, p->fcprojw,
                       p->sense_fcw, p->sense_projw, p->sense_final_fcw,
                       p->sense_final_projw, p->sense_qkw};
    size_t normal_size[] = {sizes[0], sizes[1], sizes[4], sizes[6], sizes[10], sizes[12],
                            sizes[20], sizes[22], sizes[26], sizes[28], sizes[30]};
    int residual[] = {0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0};
    for (size_t i = 0; i < sizeof normal / sizeof normal[0]; i++)
        if (normal[i]) fill_normal(normal[i], normal_size[i], residual[i] ? std_res : std, &r);
    float *gains[] = {p->ln1w, p->ln2w, p->lnfw, p->sense_lnw, p->sense_ln1w, p->sense_ln2w};
    size_t gain_size[] = {sizes[2], sizes[8], sizes[14], sizes[16], sizes[18], sizes[24]};
    for (size_t i = 0; i < sizeof gains / sizeof gains[0]; i++)
        if (gains[i]) fill_value(gains[i], gain_size[i], 1.0f);
}

/* ------------------------------------------------------------------------------------ */
/* the checkpoint tensor table */

int backpack_num_param_entries(const BackpackConfig *c) {
    return c->arch == ARCH_BACKPACK ? 20 + 12 * c->n_layer : 4 + 12 * c->n_layer;
}

static void entry(ParamEntry **e, float *data, int is_matrix, int ndim, int s0, int s1,
                  const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static void entry(ParamEntry **e, float *data, int is_matrix, int ndim, int s0, int s1,
                  const char *fmt, ...) {
    ParamEntry *x = (*e)++;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->name, sizeof x->name, fmt, ap);
    va_end(ap);
    x->ndim = ndim;
    x->shape[0] = s0;
    x->shape[1] = ndim == 2 ? s1 : 0;
    x->data = data;
    x->is_matrix = is_matrix;
}

void backpack_param_entries(const Backpack *m, const ParameterTensors *t, ParamEntry *out) {
    const BackpackConfig *c = &m->config;
    int V = c->vocab_size, d = c->n_embd, L = c->n_layer, P = c->n_positions;
    int bp = c->arch == ARCH_BACKPACK;
    const char *g = bp ? "backpack.gpt2_model" : "transformer";
    ParamEntry *e = out;
    entry(&e, t->wte, 0, 2, V, d, "%s.wte.weight", g);
    entry(&e, t->wpe, 0, 2, P, d, "%s.wpe.weight", g);
    for (int l = 0; l < L; l++) {
        size_t D = d;
        entry(&e, t->ln1w + l * D, 0, 1, d, 0, "%s.h.%d.ln_1.weight", g, l);
        entry(&e, t->ln1b + l * D, 0, 1, d, 0, "%s.h.%d.ln_1.bias", g, l);
        entry(&e, t->qkvw + l * D * 3 * D, 1, 2, d, 3 * d, "%s.h.%d.attn.c_attn.weight", g, l);
        entry(&e, t->qkvb + l * 3 * D, 0, 1, 3 * d, 0, "%s.h.%d.attn.c_attn.bias", g, l);
        entry(&e, t->attprojw + l * D * D, 1, 2, d, d, "%s.h.%d.attn.c_proj.weight", g, l);
        entry(&e, t->attprojb + l * D, 0, 1, d, 0, "%s.h.%d.attn.c_proj.bias", g, l);
        entry(&e, t->ln2w + l * D, 0, 1, d, 0, "%s.h.%d.ln_2.weight", g, l);
        entry(&e, t->ln2b + l * D, 0, 1, d, 0, "%s.h.%d.ln_2.bias", g, l);
        entry(&e, t->fcw + l * D * 4 * D, 1, 2, d, 4 * d, "%s.h.%d.mlp.c_fc.weight", g, l);
        entry(&e, t->fcb + l * 4 * D, 0, 1, 4 * d, 0, "%s.h.%d.mlp.c_fc.bias", g, l);
        entry(&e, t->fcprojw + l * 4 * D * D, 1, 2, 4 * d, d, "%s.h.%d.mlp.c_proj.weight", g, l);
        entry(&e, t->fcprojb + l * D, 0, 1, d, 0, "%s.h.%d.mlp.c_proj.bias", g, l);
    }
    entry(&e, t->lnfw, 0, 1, d, 0, "%s.ln_f.weight", g);
    entry(&e, t->lnfb, 0, 1, d, 0, "%s.ln_f.bias", g);
    if (!bp) return;
    int S = c->sense_intermediate_scale * d, k = c->num_senses;
    const char *s = "backpack.sense_network";
    entry(&e, t->sense_lnw, 0, 1, d, 0, "%s.ln.weight", s);
    entry(&e, t->sense_lnb, 0, 1, d, 0, "%s.ln.bias", s);
    entry(&e, t->sense_ln1w, 0, 1, d, 0, "%s.block.ln_1.weight", s);
    entry(&e, t->sense_ln1b, 0, 1, d, 0, "%s.block.ln_1.bias", s);
    entry(&e, t->sense_fcw, 1, 2, d, S, "%s.block.mlp.c_fc.weight", s);
    entry(&e, t->sense_fcb, 0, 1, S, 0, "%s.block.mlp.c_fc.bias", s);
    entry(&e, t->sense_projw, 1, 2, S, d, "%s.block.mlp.c_proj.weight", s);
    entry(&e, t->sense_projb, 0, 1, d, 0, "%s.block.mlp.c_proj.bias", s);
    entry(&e, t->sense_ln2w, 0, 1, d, 0, "%s.block.ln_2.weight", s);
    entry(&e, t->sense_ln2b, 0, 1, d, 0, "%s.block.ln_2.bias", s);
    entry(&e, t->sense_final_fcw, 1, 2, d, S, "%s.final_mlp.c_fc.weight", s);
    entry(&e, t->sense_final_fcb, 0, 1, S, 0, "%s.final_mlp.c_fc.bias", s);
    entry(&e, t->sense_final_projw, 1, 2, S, k * d, "%s.final_mlp.c_proj.weight", s);
    entry(&e, t->sense_final_projb, 0, 1, k * d, 0, "%s.final_mlp.c_proj.bias", s);
    entry(&e, t->sense_qkw, 1, 2, 2 * d, d, "backpack.sense_weight_net.c_attn.weight");
    entry(&e, t->sense_qkb, 0, 1, 2 * d, 0, "backpack.sense_weight_net.c_attn.bias");
}

/* ------------------------------------------------------------------------------------ */
/* training forward and backward */

static int ensure_grads(Backpack *m, BpError *err) {
    if (m->grads_memory) return 0;
    m->grads_memory = calloc(m->num_parameters, sizeof(float));
    if (!m->grads_memory)
        return bp_fail(err, "out of memory for the gradients of %zu parameters",
                       m->num_parameters);
    backpack_point_tensors(&m->config, m->grads_memory, &m->grads);
    m->acts->net.grads_memory = m->grads_memory;
    net_point(&m->acts->net);
    return 0;
}

int backpack_forward(Backpack *m, const int *inputs, const int *targets, int B, int T,
                     const TrainOptions *opts, BpError *err) {
    Net *net = &m->acts->net;
    float dropout = opts ? opts->dropout : 0.0f;
    uint64_t seed = 0;
    if (dropout != 0.0f) {
        if (!(dropout > 0.0f && dropout < 1.0f))
            return bp_fail(err, "dropout %g is not in [0, 1)", (double)dropout);
        if (!opts->rng) return bp_fail(err, "dropout needs a random number generator");
        seed = rng_next(opts->rng);
    }
    net->edits = m->edits;
    if (net_forward(net, inputs, targets, B, T, dropout, seed, err) != 0) return -1;
    m->batch_size = B;
    m->seq_len = T;
    m->mean_loss = targets ? (float)net->mean_loss : -1.0f;
    return 0;
}

const float *backpack_logits(const Backpack *m) { return m->acts->net.logits; }

void backpack_zero_grad(Backpack *m) {
    if (ensure_grads(m, NULL) == 0)
        memset(m->grads_memory, 0, m->num_parameters * sizeof(float));
}

int backpack_backward(Backpack *m, BpError *err) {
    if (ensure_grads(m, err) != 0) return -1;
    return net_backward(&m->acts->net, err);
}

void backpack_compute_senses(const Backpack *m, const int *tokens, int n, float *out) {
    net_compute_senses(&m->acts->net, m->edits, tokens, n, out);
}

/* ------------------------------------------------------------------------------------ */

/* hash64 (common/hash.h) of the parameter bytes. */
void backpack_weights_hash(const Backpack *m, char hex[17]) {
    uint64_t h = hash64(m->params_memory, m->num_parameters * sizeof(float));
    snprintf(hex, 17, "%016llx", (unsigned long long)h);
}
