/* infer.c - one token at a time: the spec's computation for the newest position only,
 * with everything earlier positions contribute kept in caches.
 *
 * Per layer l the transformer keeps the keys and values of every earlier position
 * (key_cache, value_cache: (L, max_len, d), head h in columns [h d_h, (h+1) d_h)).
 * The Backpack part keeps, per position j, the sense-weight key K[j] (sense_keys:
 * (max_len, d), sense l in columns [l d_k, (l+1) d_k)), the sense vectors C(x_j)
 * (sense_vectors: (max_len, k, d), edit vectors already substituted) and the product
 * of the edit weights that apply to (x_j, l) (edit_scale, carved from scratch).
 * A new token then costs O(context * d) for attention and mixing plus the matrix-
 * vector products of one position; its sense network runs only the first time the
 * token appears in the context (C(x) depends on x alone).
 *
 * Mixing sums the alphas of repeated words first, so it reads each distinct word's
 * k sense rows once.
 *
 * With Synthesizer attention (docs/synthesizer.md) the key cache exists only when
 * dot-product scores are among the kinds: the new position's synthesized scores come
 * from its own activations (dense, factorized dense) or rows of the score tables
 * (random, factorized random), still O(context) per layer.
 *
 * All buffers are allocated by infer_build: infer_step does not allocate (only the
 * first infer_step_greedy builds its int8 table, greedy.h). One token is one OpenMP
 * parallel region (run_step): the calling thread runs the step and hands each large
 * product (infer_kernels.h) to the region's threads as a job of independent chunks
 * (team.h), so the threads wake once per token, not once per product. The loops over
 * the context are small and stay on the calling thread.
 */
#include "infer.h"
#include "greedy.h"
#include "infer_kernels.h"
#include "layers.h"
#include "team.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Views into s->scratch. S = sense_intermediate_scale * d. */
typedef struct {
    float *x;          /* (d) the residual stream of the new position */
    float *xn;         /* (d) a LayerNorm's output */
    float *qkv;        /* (3d) query, key, value of the new position */
    float *att;        /* (H, max_len) attention probabilities of every head */
    float *atty;       /* (d) concat_h(P_h V_h) */
    float *hidden;     /* (max(4d, S)) an MLP's hidden layer */
    float *h;          /* (d) LN_f(X) of the new position */
    float *z;          /* (2d) sense-weight query | key */
    float *o;          /* (d) sum_l sum_j alpha_l[j] C(x_j)_l */
    float *mix;        /* (max_len k) summed alphas of each distinct word's senses */
    float *r1, *r2;    /* (d) sense-network residuals */
    float *edit_scale; /* (max_len, k) product of edit weights for (x_j, l); 1 = none */
    /* Synthesizer attention (absent for dot alone) */
    float *syn_act;    /* (d) relu(xn W_1 + b_1) of a dense synthesizer */
    float *syn_a;      /* (H fa) B_1 of every head (factorized dense) */
    float *syn_b;      /* (H fb) B_2 */
    float *syn_tmp;    /* (max_len) one kind's scores of one head */
    float *syn_mix;    /* (H count) softmax(v) of the layer */
} Scratch;

/* Floats of the Synthesizer's part of the scratch. */
static size_t synth_scratch_floats(const BackpackConfig *c, int max_len) {
    unsigned kinds = attention_kinds(c);
    if (kinds == ATTN_DOT) return 0;
    size_t H = (size_t)c->n_head, fa = (size_t)synth_factor_a(c->n_positions);
    return (size_t)c->n_embd + H * fa + H * ((size_t)c->n_positions / fa) + (size_t)max_len +
           H * (size_t)attention_count(kinds);
}

static size_t scratch_floats(const BackpackConfig *c, int max_len) {
    size_t d = (size_t)c->n_embd, k = (size_t)c->num_senses, n = (size_t)max_len;
    size_t S = (size_t)c->sense_intermediate_scale * d;
    size_t hidden = 4 * d > S ? 4 * d : S;
    return d + d + 3 * d + (size_t)c->n_head * n + d + hidden + d + 2 * d + d + n * k + d + d +
           n * k + synth_scratch_floats(c, max_len);
}

static Scratch scratch_views(const InferState *s) {
    const BackpackConfig *c = &s->model->config;
    size_t d = (size_t)c->n_embd, k = (size_t)c->num_senses, n = (size_t)s->max_len;
    size_t S = (size_t)c->sense_intermediate_scale * d;
    size_t hidden = 4 * d > S ? 4 * d : S;
    Scratch v;
    float *p = s->scratch;
    v.x = p;          p += d;
    v.xn = p;         p += d;
    v.qkv = p;        p += 3 * d;
    v.att = p;        p += (size_t)c->n_head * n;
    v.atty = p;       p += d;
    v.hidden = p;     p += hidden;
    v.h = p;          p += d;
    v.z = p;          p += 2 * d;
    v.o = p;          p += d;
    v.mix = p;        p += n * k;
    v.r1 = p;         p += d;
    v.r2 = p;         p += d;
    v.edit_scale = p; p += n * k;
    v.syn_act = v.syn_a = v.syn_b = v.syn_tmp = v.syn_mix = NULL;
    if (synth_scratch_floats(c, s->max_len)) {
        size_t H = (size_t)c->n_head, fa = (size_t)synth_factor_a(c->n_positions);
        v.syn_act = p;    p += d;
        v.syn_a = p;      p += H * fa;
        v.syn_b = p;      p += H * ((size_t)c->n_positions / fa);
        v.syn_tmp = p;    p += n;
        v.syn_mix = p;
    }
    return v;
}

int infer_build(InferState *s, const Backpack *m, int max_len, BpError *err) {
    memset(s, 0, sizeof *s);
    const BackpackConfig *c = &m->config;
    if (max_len < 1 || max_len > c->n_positions)
        return bp_fail(err, "context length %d out of range [1, %d] (n_positions)", max_len,
                       c->n_positions);
    if (m->plan && m->plan->n_layer != c->n_layer)
        return bp_fail(err, "the layer plan is for %d blocks, the model has %d",
                       m->plan->n_layer, c->n_layer);
    /* one key/value cache per block run: per block, or per run of the plan */
    size_t d = (size_t)c->n_embd, n = (size_t)max_len;
    size_t L = m->plan ? (size_t)m->plan->num_runs : (size_t)c->n_layer;
    int backpack = c->arch == ARCH_BACKPACK;
    size_t k = backpack ? (size_t)c->num_senses : 0;
    s->model = m;
    s->max_len = max_len;
    s->edits = m->edits;
    s->tokens = malloc(n * sizeof(int));
    const int keys = (attention_kinds(c) & ATTN_DOT) != 0; /* synthesized scores need none */
    if (keys) s->key_cache = malloc(L * n * d * sizeof(float));
    s->value_cache = malloc(L * n * d * sizeof(float));
    s->logits = malloc((size_t)c->vocab_size * sizeof(float));
    s->scratch = malloc(scratch_floats(c, max_len) * sizeof(float));
    s->team = aligned_alloc(64, (sizeof(Team) + 63) / 64 * 64); /* its own cache lines */
    if (m->plan) s->plan_buffers = malloc((size_t)m->plan->num_buffers * d * sizeof(float));
    int ok = s->tokens && (s->key_cache || !keys) && s->value_cache && s->logits && s->scratch &&
             s->team && (!m->plan || s->plan_buffers);
    if (backpack) {
        s->sense_keys = malloc(n * d * sizeof(float));
        s->sense_vectors = malloc(n * k * d * sizeof(float));
        s->alpha = malloc(k * n * sizeof(float));
        s->first_position = malloc(n * sizeof(int));
        s->mix_rows = malloc(n * k * sizeof(int));
        ok = ok && s->sense_keys && s->sense_vectors && s->alpha && s->first_position &&
             s->mix_rows;
    }
    if (!ok) {
        infer_free(s);
        return bp_fail(err, "out of memory for the caches of a %d-token context", max_len);
    }
    return 0;
}

void infer_free(InferState *s) {
    free(s->tokens);
    free(s->key_cache);
    free(s->value_cache);
    free(s->sense_keys);
    free(s->sense_vectors);
    free(s->alpha);
    free(s->logits);
    free(s->scratch);
    free(s->first_position);
    free(s->mix_rows);
    free(s->plan_buffers);
    greedy_screen_free(s->screen);
    free(s->team);
    memset(s, 0, sizeof *s);
}

void infer_reset(InferState *s) { s->len = 0; }

void infer_set_edits(InferState *s, const SenseEdits *edits) { s->edits = edits; }

void infer_set_quant(InferState *s, const struct QuantModel *q) { s->quant = q; }

/* ---------------------------------------------------------------------------------- */
/* the pieces of one position */

/* One row of the training path's LayerNorm and GELU (model/layers.h), so that the
 * incremental and the full forward share their numerics. */
static void layernorm(float *out, const float *x, const float *w, const float *b, int d) {
    float mean, rstd;
    layernorm_forward(out, &mean, &rstd, x, w, b, 1, d);
}

static void gelu(float *x, int n) { gelu_forward(x, x, (size_t)n); }

/* Head h's scores of one attention kind for position pos = s->len against every
 * j <= pos, into dst (pos + 1): layer l's Synthesizer (docs/synthesizer.md), from the
 * position's query (dot), dense activations act (d) or factors B_1 (H fa), B_2 (H fb). */
static void synth_kind_scores(const InferState *s, const Scratch *v, unsigned kind, int l,
                              int slot, int h, const float *act, float *dst) {
    const BackpackConfig *c = &s->model->config;
    const ParameterTensors *p = &s->model->params;
    const int d = c->n_embd, H = c->n_head, dh = d / H, P = c->n_positions;
    const int pos = s->len, n = pos + 1;
    const size_t Hn = (size_t)H * P;
    switch (kind) {
    case ATTN_DOT: {
        const float *kc = s->key_cache + (size_t)slot * s->max_len * d + h * dh;
        const float *q = v->qkv + h * dh;
        const float scale = 1.0f / (sqrtf((float)dh) * (float)(l + 1));
        for (int j = 0; j < n; j++) {
            float dot = 0.0f;
            for (int i = 0; i < dh; i++) dot += q[i] * kc[(size_t)j * d + i];
            dst[j] = dot * scale;
        }
        break;
    }
    case ATTN_DENSE: {
        const float *w2 = p->syn_dense_w2 + (size_t)l * d * P + (size_t)h * dh * P;
        memcpy(dst, p->syn_dense_b2 + (size_t)l * Hn + (size_t)h * P, (size_t)n * sizeof(float));
        for (int r = 0; r < dh; r++) {
            const float a = act[h * dh + r], *row = w2 + (size_t)r * P;
            for (int j = 0; j < n; j++) dst[j] += a * row[j];
        }
        break;
    }
    case ATTN_RANDOM:
    case ATTN_FIXED_RANDOM: {
        const float *R = kind == ATTN_RANDOM ? p->syn_random : p->syn_fixed_random;
        memcpy(dst, R + (size_t)l * Hn * P + ((size_t)h * P + pos) * P, (size_t)n * sizeof(float));
        break;
    }
    case ATTN_FACTORIZED_RANDOM: {
        const int r = synth_rank(P);
        const float *r1 = p->syn_frandom_r1 + (size_t)l * Hn * r + (size_t)h * P * r;
        const float *r2 = p->syn_frandom_r2 + (size_t)l * Hn * r + (size_t)h * P * r;
        for (int j = 0; j < n; j++) {
            float dot = 0.0f;
            for (int i = 0; i < r; i++) dot += r1[(size_t)pos * r + i] * r2[(size_t)j * r + i];
            dst[j] = dot;
        }
        break;
    }
    case ATTN_FACTORIZED_DENSE: {
        const int fa = synth_factor_a(P), fb = P / fa;
        const float *x = v->syn_a + h * fa, *y = v->syn_b + h * fb;
        for (int j = 0; j < n; j++) dst[j] = x[j / fb] * y[j % fb];
        break;
    }
    }
}

/* Layer l's Synthesizer scores of position pos = s->len, every head, into v->att (H, n)
 * before the softmax: one kind, or sum_c w_c B_c with w = softmax(v) per head. A dot
 * part reads the key cache of run `slot` of the layer plan (slot = l without one). */
static void synth_step_scores(InferState *s, const Scratch *v, int l, int slot) {
    const BackpackConfig *c = &s->model->config;
    const ParameterTensors *p = &s->model->params;
    const int d = c->n_embd, H = c->n_head, P = c->n_positions, n = s->len + 1;
    const unsigned kinds = attention_kinds(c);
    const int count = attention_count(kinds);
    float *fd_act = v->hidden; /* free until the MLP */
    if (kinds & ATTN_DENSE) {
        conv1d(s->team, v->syn_act, v->xn, p->syn_dense_w1 + (size_t)l * d * d,
               p->syn_dense_b1 + (size_t)l * d, d, d, 0);
        relu_forward(v->syn_act, v->syn_act, (size_t)d);
    }
    if (kinds & ATTN_FACTORIZED_DENSE) {
        const int fa = synth_factor_a(P), fb = P / fa, dh = d / H;
        conv1d(s->team, fd_act, v->xn, p->syn_fdense_w1 + (size_t)l * d * d,
               p->syn_fdense_b1 + (size_t)l * d, d, d, 0);
        relu_forward(fd_act, fd_act, (size_t)d);
        headwise_forward(v->syn_a, fd_act, p->syn_fdense_wa + (size_t)l * d * fa,
                         p->syn_fdense_ba + (size_t)l * H * fa, 1, H, dh, fa);
        headwise_forward(v->syn_b, fd_act, p->syn_fdense_wb + (size_t)l * d * fb,
                         p->syn_fdense_bb + (size_t)l * H * fb, 1, H, dh, fb);
    }
    if (count > 1)
        synth_mixture_weights(v->syn_mix, p->syn_mix + (size_t)l * H * count, H, count);
    for (int h = 0; h < H; h++) {
        float *att = v->att + (size_t)h * n;
        int ci = 0;
        for (unsigned kind = 1; kind <= kinds; kind <<= 1) {
            if (!(kinds & kind)) continue;
            float *dst = count > 1 ? v->syn_tmp : att;
            synth_kind_scores(s, v, kind, l, slot, h, v->syn_act, dst);
            if (count > 1) {
                const float w = v->syn_mix[(size_t)h * count + ci];
                for (int j = 0; j < n; j++) att[j] = ci ? att[j] + w * dst[j] : w * dst[j];
            }
            ci++;
        }
    }
}

/* dst (d) = src / divisor, or += (a layer plan's step, plan.h) */
static void plan_store(float *dst, const float *src, int d, int add, float divisor) {
    for (int i = 0; i < d; i++) dst[i] = add ? dst[i] + src[i] / divisor : src[i] / divisor;
}

/* The transformer for position pos = s->len: fills the caches of every layer (of
 * every run of a block under the model's plan) and leaves h = LN_f(X[pos]) in v->h. */
static void transformer_step(InferState *s, const Scratch *v, int token) {
    const Backpack *m = s->model;
    Team *team = s->team;
    const ParameterTensors *p = &m->params;
    const int d = m->config.n_embd, L = m->config.n_layer, H = m->config.n_head;
    const int dh = d / H, pos = s->len, n = pos + 1;
    const size_t layer_cache = (size_t)s->max_len * d;
    const unsigned kinds = attention_kinds(&m->config);
    const int Q = kinds & ATTN_DOT ? 3 : 1; /* Q K V, or V alone */

    const float *e = p->wte + (size_t)token * d, *pe = p->wpe + (size_t)pos * d;
    const LayerPlan *plan = m->plan;
    float *h0 = plan ? s->plan_buffers : v->x;
    for (int i = 0; i < d; i++) h0[i] = e[i] + pe[i];

    for (int r = 0; r < (plan ? plan->num_ops : L); r++) {
        const PlanOp *op = plan ? &plan->ops[r] : NULL;
        if (op && op->kind == PLAN_COMBINE) {
            plan_store(s->plan_buffers + (size_t)op->dst * d,
                       s->plan_buffers + (size_t)op->src * d, d, op->add, (float)op->divisor);
            continue;
        }
        const int l = op ? op->block : r, slot = op ? op->slot : r;
        if (op) memcpy(v->x, s->plan_buffers + (size_t)op->src * d, (size_t)d * sizeof(float));
        float *vc = s->value_cache + slot * layer_cache;
        layernorm(v->xn, v->x, p->ln1w + (size_t)l * d, p->ln1b + (size_t)l * d, d);
        conv1d(team, v->qkv, v->xn, p->qkvw + (size_t)l * d * Q * d, p->qkvb + (size_t)l * Q * d,
               d, Q * d, 0);
        memcpy(vc + (size_t)pos * d, v->qkv + (Q - 1) * d, (size_t)d * sizeof(float));
        float *kc = kinds & ATTN_DOT ? s->key_cache + slot * layer_cache : NULL;
        if (kc) memcpy(kc + (size_t)pos * d, v->qkv + d, (size_t)d * sizeof(float));
        if (kinds != ATTN_DOT) {
            synth_step_scores(s, v, l, slot);
        } else {
            /* the spec's scaling: 1/sqrt(d_h) and the extra 1/(l+1) */
            const float scale = 1.0f / (sqrtf((float)dh) * (float)(l + 1));
            /* Scores of every head, then values of every head: each sweep reads the
             * cached rows (d floats per position) in order, once. att is (H, n). */
            for (int j = 0; j < n; j++) {
                const float *kj = kc + (size_t)j * d;
                for (int hd = 0; hd < H; hd++) {
                    const float *q = v->qkv + hd * dh, *kh = kj + hd * dh;
                    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                    for (int i = 0; i < dh; i++) dot += q[i] * kh[i];
                    v->att[(size_t)hd * n + j] = dot * scale;
                }
            }
        }
        for (int hd = 0; hd < H; hd++) softmax_forward(v->att + (size_t)hd * n, n);
        memset(v->atty, 0, (size_t)d * sizeof(float));
        for (int j = 0; j < n; j++) {
            const float *vj = vc + (size_t)j * d;
            for (int hd = 0; hd < H; hd++) {
                const float a = v->att[(size_t)hd * n + j];
                float *y = v->atty + hd * dh;
                const float *vh = vj + hd * dh;
#pragma omp simd
                for (int i = 0; i < dh; i++) y[i] += a * vh[i];
            }
        }
        conv1d(team, v->x, v->atty, p->attprojw + (size_t)l * d * d, p->attprojb + (size_t)l * d, d, d,
               1);
        layernorm(v->xn, v->x, p->ln2w + (size_t)l * d, p->ln2b + (size_t)l * d, d);
        conv1d(team, v->hidden, v->xn, p->fcw + (size_t)l * d * 4 * d, p->fcb + (size_t)l * 4 * d, d,
               4 * d, 0);
        gelu(v->hidden, 4 * d);
        conv1d(team, v->x, v->hidden, p->fcprojw + (size_t)l * 4 * d * d, p->fcprojb + (size_t)l * d,
               4 * d, d, !(m->config.no_last_residual && l == L - 1));
        if (op) plan_store(s->plan_buffers + (size_t)op->dst * d, v->x, d, op->add, 1.0f);
    }
    if (plan) memcpy(v->x, s->plan_buffers, (size_t)d * sizeof(float));
    layernorm(v->h, v->x, p->lnfw, p->lnfb, d);
}

/* C(token) (k, d) into out: the spec's sense network for one word. */
static void sense_network(const InferState *s, const Scratch *v, int token, float *out) {
    const Backpack *m = s->model;
    Team *team = s->team;
    const ParameterTensors *p = &m->params;
    const int d = m->config.n_embd, k = m->config.num_senses;
    const int S = m->config.sense_intermediate_scale * d;
    const float *e = p->wte + (size_t)token * d;

    layernorm(v->r1, e, p->sense_lnw, p->sense_lnb, d);
    for (int i = 0; i < d; i++) v->r1[i] += e[i];                       /* r1 = e + LN_s(e) */
    layernorm(v->xn, v->r1, p->sense_ln1w, p->sense_ln1b, d);
    conv1d(team, v->hidden, v->xn, p->sense_fcw, p->sense_fcb, d, S, 0);
    gelu(v->hidden, S);
    memcpy(v->r2, v->r1, (size_t)d * sizeof(float));
    conv1d(team, v->r2, v->hidden, p->sense_projw, p->sense_projb, S, d, 1);  /* r2 = r1 + MLP */
    layernorm(v->xn, v->r2, p->sense_ln2w, p->sense_ln2b, d);
    conv1d(team, v->hidden, v->xn, p->sense_final_fcw, p->sense_final_fcb, d, S, 0);
    gelu(v->hidden, S);
    conv1d(team, out, v->hidden, p->sense_final_projw, p->sense_final_projb, S, k * d, 0);
}

/* The sense vectors and edit scales of position pos = s->len holding `token`. */
static void append_senses(InferState *s, const Scratch *v, int token) {
    const BackpackConfig *c = &s->model->config;
    const int d = c->n_embd, k = c->num_senses, pos = s->len;
    const size_t row = (size_t)k * d;
    float *out = s->sense_vectors + (size_t)pos * row;
    float *scale = v->edit_scale + (size_t)pos * k;

    int earlier = -1;
    for (int j = pos - 1; j >= 0; j--)
        if (s->tokens[j] == token) {
            earlier = j;
            break;
        }
    s->first_position[pos] = earlier >= 0 ? s->first_position[earlier] : pos;
    if (earlier >= 0) { /* same word, same (edited) senses */
        memcpy(out, s->sense_vectors + (size_t)earlier * row, row * sizeof(float));
        memcpy(scale, v->edit_scale + (size_t)earlier * k, (size_t)k * sizeof(float));
        return;
    }
    sense_network(s, v, token, out);
    for (int l = 0; l < k; l++) scale[l] = 1.0f;
    if (!s->edits) return;
    for (int i = 0; i < s->edits->count; i++) {
        const SenseEdit *ed = &s->edits->items[i];
        if (ed->token != token || ed->sense < 0 || ed->sense >= k) continue;
        if (ed->vector) memcpy(out + (size_t)ed->sense * d, ed->vector, (size_t)d * sizeof(float));
        scale[ed->sense] *= ed->weight;
    }
}

/* alpha_l[pos, j] for every sense and j <= pos into s->alpha (edit weights applied),
 * and o = sum alpha C into v->o. */
static void sense_weights_and_mix(InferState *s, const Scratch *v) {
    const Backpack *m = s->model;
    const ParameterTensors *p = &m->params;
    const int d = m->config.n_embd, k = m->config.num_senses, dk = d / k;
    const int pos = s->len, n = pos + 1, max_len = s->max_len;

    /* Z = W_c h + b_c, W_c stored [out, in] = (2d, d) */
    matvec_rows(s->team, v->z, p->sense_qkw, v->h, 2 * d, d);
    for (int i = 0; i < 2 * d; i++) v->z[i] += p->sense_qkb[i];
    memcpy(s->sense_keys + (size_t)pos * d, v->z + d, (size_t)d * sizeof(float));

    const float scale = 1.0f / sqrtf((float)dk);
    for (int l = 0; l < k; l++) {
        const float *q = v->z + l * dk;
        float *a = s->alpha + (size_t)l * max_len;
        for (int j = 0; j < n; j++) {
            const float *kj = s->sense_keys + (size_t)j * d + l * dk;
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int i = 0; i < dk; i++) dot += q[i] * kj[i];
            a[j] = dot * scale;
        }
        softmax_forward(a, n);
        /* sense-weight scaling: multiply, do not renormalize (the spec) */
        for (int j = 0; j < n; j++) a[j] *= v->edit_scale[(size_t)j * k + l];
    }
    /* o = sum_{j,l} alpha_l[j] C(x_j)_l. Positions holding the same word share its
     * sense vectors, so their alphas are summed first (at the word's first position)
     * and each distinct word's k rows are read once. */
    const int *first = s->first_position;
    for (int j = 0; j < n; j++)
        if (first[j] == j)
            for (int l = 0; l < k; l++) v->mix[(size_t)j * k + l] = 0.0f;
    for (int j = 0; j < n; j++)
        for (int l = 0; l < k; l++)
            v->mix[(size_t)first[j] * k + l] += s->alpha[(size_t)l * max_len + j];
    int rows = 0; /* compact in place: rows <= j k + l */
    for (int j = 0; j < n; j++)
        if (first[j] == j)
            for (int l = 0; l < k; l++) {
                v->mix[rows] = v->mix[(size_t)j * k + l];
                s->mix_rows[rows++] = j * k + l;
            }
    memset(v->o, 0, (size_t)d * sizeof(float));
    matvec_cols(s->team, v->o, v->mix, s->sense_vectors, rows, d, s->mix_rows);
}

/* ---------------------------------------------------------------------------------- */
/* one token: validation, then the step in one parallel region */

typedef enum { STEP_FEED, STEP_LOGITS, STEP_GREEDY } StepKind;

/* The vector the logits are E times: o for the Backpack, h for the Transformer. */
static const float *output_vector(const InferState *s) {
    Scratch v = scratch_views(s);
    return s->model->config.arch == ARCH_BACKPACK ? v.o : v.h;
}

/* The first index of the largest of x (n). */
static int argmax_lowest(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Thread 0's part of run_step. Returns the greedy token for STEP_GREEDY, else 0. */
static int step_body(InferState *s, int token, StepKind kind) {
    const BackpackConfig *c = &s->model->config;
    Scratch v = scratch_views(s);
    transformer_step(s, &v, token);
    if (c->arch == ARCH_BACKPACK) {
        append_senses(s, &v, token);
        sense_weights_and_mix(s, &v);
    }
    s->tokens[s->len++] = token;
    if (kind == STEP_LOGITS || (kind == STEP_GREEDY && s->quant)) /* logits = E out, E (V, d) */
        matvec_rows(s->team, s->logits, s->model->params.wte, output_vector(s), c->vocab_size,
                    c->n_embd);
    if (kind == STEP_GREEDY && s->quant) return argmax_lowest(s->logits, c->vocab_size);
    return kind == STEP_GREEDY
               ? greedy_screen_choose(s->screen, s->model, s->team, s->logits, output_vector(s))
               : 0;
}

/* Models whose weights read per token are below this many floats run on the calling
 * thread alone: waking a second thread would cost more than it saves. */
#define PARALLEL_MIN_FLOATS ((size_t)1 << 20)

static int run_step(InferState *s, int token, StepKind kind) {
    const BackpackConfig *c = &s->model->config;
    const size_t d = (size_t)c->n_embd;
    const size_t per_token = 12 * d * d * (size_t)c->n_layer + (size_t)c->vocab_size * d;
    Team *team = s->team;
    int result = 0;
    team_begin(team);
    team->quant = s->quant;
#pragma omp parallel if (per_token >= PARALLEL_MIN_FLOATS)
    {
        if (omp_get_thread_num() == 0) {
            result = step_body(s, token, kind);
            team_finish(team);
        } else
            team_serve(team);
    }
    return result;
}

static int check_step(const InferState *s, int token, BpError *err) {
    const BackpackConfig *c = &s->model->config;
    if (token < 0 || token >= c->vocab_size)
        return bp_fail(err, "token id %d out of range [0, %d)", token, c->vocab_size);
    if (s->len >= s->max_len)
        return bp_fail(err, "context full: %d of %d tokens", s->len, s->max_len);
    return 0;
}

const float *infer_step(InferState *s, int token, BpError *err) {
    if (check_step(s, token, err)) return NULL;
    run_step(s, token, STEP_LOGITS);
    return s->logits;
}

int infer_feed(InferState *s, int token, BpError *err) {
    if (check_step(s, token, err)) return -1;
    run_step(s, token, STEP_FEED);
    return 0;
}

const float *infer_alpha(const InferState *s) { return s->alpha; }

const float *infer_context_senses(const InferState *s) { return s->sense_vectors; }

int infer_step_greedy(InferState *s, int token, BpError *err) {
    if (check_step(s, token, err)) return -1;
    if (!s->quant && !s->screen && !(s->screen = greedy_screen_build(s->model, err))) return -1;
    return run_step(s, token, STEP_GREEDY);
}
