/* backpack.c - the model's public face: the one parameter allocation, initialization,
 * the weights hash, and the float32 training forward/backward (the computation itself
 * lives in net.c, which is written over a `real` type so that the gradient check can
 * compile the very same code in double precision; the tensor table is params.h's). */
#include "backpack.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hash.h"
#include "net.h"

struct BackpackActivations {
    Net net;  /* float32 instance of net.c: activations, scratch, last batch */
};

/* ------------------------------------------------------------------------------------ */
/* parameters: one allocation, named views */

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
    Rng r;
    rng_seed(&r, seed);
    const float std = 0.02f, std_res = 0.02f / sqrtf(2.0f * (float)c->n_layer);
    /* one stream of normals, drawn in table order */
    float *p = m->params_memory;
    for (int i = 0; i < BP_NUM_PARAM_TENSORS; p += sizes[i++]) {
        switch (backpack_param_info[i].kind) {
        case PARAM_EMBED:
        case PARAM_MATRIX: fill_normal(p, sizes[i], std, &r); break;
        case PARAM_RESIDUAL: fill_normal(p, sizes[i], std_res, &r); break;
        case PARAM_GAIN: fill_value(p, sizes[i], 1.0f); break;
        case PARAM_BIAS: fill_value(p, sizes[i], 0.0f); break;
        case PARAM_FIXED: fill_normal(p, sizes[i], 1.0f, &r); break;
        }
    }
}

void backpack_param_entries(const Backpack *m, const ParameterTensors *t, ParamEntry *out) {
    backpack_param_table(&m->config, t, out);
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
    if (m->plan && m->plan->n_layer != m->config.n_layer)
        return bp_fail(err, "the layer plan is for %d blocks, the model has %d",
                       m->plan->n_layer, m->config.n_layer);
    net->plan = m->plan;
    net->first_row = opts ? opts->first_row : 0;
    if (net_forward(net, inputs, targets, B, T, dropout, seed, err) != 0) return -1;
    m->batch_size = B;
    m->seq_len = T;
    m->mean_loss = targets ? (float)net->mean_loss : -1.0f;
    return 0;
}

const float *backpack_logits(const Backpack *m) { return m->acts->net.logits; }

const float *backpack_block_outputs(const Backpack *m) {
    const Net *net = &m->acts->net;
    return net->fwd_plan || !net->acts_memory ? NULL : net->acts.residual3;
}

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
