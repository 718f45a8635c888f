/* params.c - the parameter table of params.h evaluated for a configuration: sizes,
 * views and checkpoint names. */
#include "params.h"

#include <stdio.h>
#include <string.h>

#define PARAM_INFO_(f_, g_, w_, n_, r_, c_, k_) {#f_, n_, PARAM_##g_, PARAM_##k_},
const ParamInfo backpack_param_info[BP_NUM_PARAM_TENSORS] = {BP_PARAMETER_TENSORS(PARAM_INFO_)};
#undef PARAM_INFO_

/* One tensor's stored shape for config c: layers slices of (rows, cols) (cols 0: a
 * vector); size 0 when absent. */
typedef struct {
    size_t rows, cols, layers, size;
} ParamShape;

static void param_shapes(const BackpackConfig *c, ParamShape s[BP_NUM_PARAM_TENSORS]) {
    const int bp = c->arch == ARCH_BACKPACK;
    const size_t V = (size_t)c->vocab_size, d = (size_t)c->n_embd, P = (size_t)c->n_positions;
    const size_t L = (size_t)c->n_layer;
    const size_t S = bp ? (size_t)c->sense_intermediate_scale * d : 0;
    const size_t k = bp ? (size_t)c->num_senses : 0;
    const unsigned att = attention_kinds(c);
    const size_t H = (size_t)c->n_head, n = P, Q = att & ATTN_DOT ? 3 : 1;
    const size_t fa = (size_t)synth_factor_a(c->n_positions), fb = n / fa;
    const size_t r = (size_t)synth_rank(c->n_positions);
    const int nmix = attention_count(att);
#define has(kind) ((att & ATTN_##kind) != 0)
    int i = 0;
#define PARAM_SHAPE_(f_, g_, w_, n_, r_, c_, k_)                                          \
    s[i] = (ParamShape){(r_), (c_), PARAM_##g_ == PARAM_LAYER ? L : 1, 0};                \
    s[i].size = (w_) ? s[i].rows * (s[i].cols ? s[i].cols : 1) * s[i].layers : 0;         \
    i++;
    BP_PARAMETER_TENSORS(PARAM_SHAPE_)
#undef PARAM_SHAPE_
#undef has
    (void)V, (void)P, (void)S, (void)k, (void)H, (void)n, (void)Q, (void)fa, (void)fb, (void)r;
}

size_t backpack_param_sizes(const BackpackConfig *c, size_t sizes[BP_NUM_PARAM_TENSORS]) {
    ParamShape s[BP_NUM_PARAM_TENSORS];
    param_shapes(c, s);
    size_t total = 0;
    for (int i = 0; i < BP_NUM_PARAM_TENSORS; i++) total += sizes[i] = s[i].size;
    return total;
}

void backpack_point_tensors(const BackpackConfig *c, float *memory, ParameterTensors *t) {
    BP_POINT_TENSORS(c, memory, t);
}

int backpack_num_param_entries(const BackpackConfig *c) {
    ParamShape s[BP_NUM_PARAM_TENSORS];
    param_shapes(c, s);
    int n = 0;
    for (int i = 0; i < BP_NUM_PARAM_TENSORS; i++)
        if (s[i].size) n += (int)s[i].layers;
    return n;
}

static void set_entry(ParamEntry *e, const ParamShape *s, int i, float *data, const char *g,
                      int layer) {
    const ParamInfo *info = &backpack_param_info[i];
    if (info->group == PARAM_GPT) snprintf(e->name, sizeof e->name, "%s.%s", g, info->name);
    else if (info->group == PARAM_LAYER)
        snprintf(e->name, sizeof e->name, "%s.h.%d.%s", g, layer, info->name);
    else snprintf(e->name, sizeof e->name, "backpack.%s", info->name);
    e->ndim = s->cols ? 2 : 1;
    e->shape[0] = (int)s->rows;
    e->shape[1] = (int)s->cols;
    e->data = data;
    e->is_matrix = info->kind == PARAM_MATRIX || info->kind == PARAM_RESIDUAL;
}

void backpack_param_table(const BackpackConfig *c, const ParameterTensors *t, ParamEntry *out) {
    ParamShape s[BP_NUM_PARAM_TENSORS];
    param_shapes(c, s);
    float *data[BP_NUM_PARAM_TENSORS];
    int i = 0;
#define PARAM_DATA_(f_, ...) data[i++] = t->f_;
    BP_PARAMETER_TENSORS(PARAM_DATA_)
#undef PARAM_DATA_
    const char *g = c->arch == ARCH_BACKPACK ? "backpack.gpt2_model" : "transformer";
    ParamEntry *e = out;
    int layers_listed = 0;
    for (i = 0; i < BP_NUM_PARAM_TENSORS; i++) {
        if (!s[i].size) continue;
        if (backpack_param_info[i].group != PARAM_LAYER) {
            set_entry(e++, &s[i], i, data[i], g, 0);
            continue;
        }
        if (layers_listed) continue;
        layers_listed = 1; /* every layer's tensors, where the first one stands */
        for (int l = 0; l < c->n_layer; l++)
            for (int j = i; j < BP_NUM_PARAM_TENSORS; j++)
                if (s[j].size && backpack_param_info[j].group == PARAM_LAYER)
                    set_entry(e++, &s[j], j, data[j] + (size_t)l * (s[j].size / s[j].layers),
                              g, l);
    }
}
