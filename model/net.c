/* net.c - the Backpack (and its Transformer baseline) forward and backward over the
 * layers of layers.c, exactly as docs/backpack-spec.md writes them. See net.h. */
#include "net.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Dropout sites (see layers.h dropout_apply); the transformer's layer l uses
 * SITE_LAYER + 4 l + {0 attention probabilities, 1 attention output, 2 MLP output}. */
enum {
    SITE_EMB = 1,
    SITE_S_EMB,    /* sense network: residual = dropout(E[x]) */
    SITE_S_LN,     /* resid_dropout1(LN_s(residual)) */
    SITE_S_MLP,    /* the block MLP's own dropout */
    SITE_S_RES2,   /* resid_dropout2 of the block */
    SITE_S_FINAL,  /* the final MLP's dropout */
    SITE_LAYER = 16,
};

void net_point_tensors(const BackpackConfig *c, real *memory, RealTensors *t) {
    BP_POINT_TENSORS(c, memory, t);
}

void net_init(Net *n, const BackpackConfig *c, real *params_memory, real *grads_memory) {
    memset(n, 0, sizeof *n);
    n->config = *c;
    n->params_memory = params_memory;
    n->grads_memory = grads_memory;
    net_point(n);
}

void net_point(Net *n) {
    net_point_tensors(&n->config, n->params_memory, &n->params);
    net_point_tensors(&n->config, n->grads_memory, &n->grads);
}

void net_free(Net *n) {
    free(n->acts_memory);
    free(n->grads_acts_memory);
    free(n->logits);
    free(n->inputs);
    free(n->targets);
    free(n->word_slot);
    free(n->words);
    free(n->word_off);
    free(n->word_pos);
    free(n->pos_word);
    free(n->plan_memory);
    n->plan_memory = NULL;
    n->plan_cap = 0;
    n->acts_memory = n->grads_acts_memory = n->logits = NULL;
    n->inputs = n->targets = n->word_slot = n->words = n->word_off = NULL;
    n->word_pos = n->pos_word = NULL;
    n->cap_B = n->cap_T = 0;
}

/* ------------------------------------------------------------------------------------ */
/* activation layouts: `take` hands out consecutive pieces of one allocation (or only
 * counts when base is NULL) */

typedef struct {
    real *base;
    size_t used;
} Arena;

static real *take(Arena *a, size_t count) {
    real *p = a->base ? a->base + a->used : NULL;
    a->used += count;
    return p;
}

static void sense_layout(Arena *a, SenseActs *s, size_t U, size_t d, size_t S, size_t k,
                         int with_stats) {
    s->e = take(a, U * d);
    s->lns = take(a, U * d);
    s->r1 = take(a, U * d);
    s->ln1 = take(a, U * d);
    s->fch = take(a, U * S);
    s->fch_gelu = take(a, U * S);
    s->r2 = take(a, U * d);
    s->ln2 = take(a, U * d);
    s->ffch = take(a, U * S);
    s->ffch_gelu = take(a, U * S);
    s->out = take(a, U * k * d);
    if (with_stats) {
        s->lns_mean = take(a, U);
        s->lns_rstd = take(a, U);
        s->ln1_mean = take(a, U);
        s->ln1_rstd = take(a, U);
        s->ln2_mean = take(a, U);
        s->ln2_rstd = take(a, U);
    }
}

static size_t num_words_cap(const BackpackConfig *c, size_t N) {
    return N < (size_t)c->vocab_size ? N : (size_t)c->vocab_size;
}

static size_t acts_layout(const BackpackConfig *c, size_t B, size_t T, size_t threads,
                          real *base, NetActs *a) {
    Arena ar = {base, 0};
    size_t N = B * T, d = c->n_embd, L = c->n_layer, H = c->n_head;
    a->encoded = take(&ar, N * d);
    a->ln1 = take(&ar, L * N * d);
    a->ln1_mean = take(&ar, L * N);
    a->ln1_rstd = take(&ar, L * N);
    a->qkv = take(&ar, L * N * 3 * d);
    a->att = take(&ar, L * B * H * T * T);
    a->atty = take(&ar, L * N * d);
    a->residual2 = take(&ar, L * N * d);
    a->ln2 = take(&ar, L * N * d);
    a->ln2_mean = take(&ar, L * N);
    a->ln2_rstd = take(&ar, L * N);
    a->fch = take(&ar, L * N * 4 * d);
    a->fch_gelu = take(&ar, L * N * 4 * d);
    a->residual3 = take(&ar, L * N * d);
    a->lnf = take(&ar, N * d);
    a->lnf_mean = take(&ar, N);
    a->lnf_rstd = take(&ar, N);
    a->lse = take(&ar, N);
    a->scratch = take(&ar, threads * 2 * T * T);
    unsigned kinds = attention_kinds(c);
    if (kinds != ATTN_DOT) {
        size_t fa = synth_factor_a(c->n_positions), fb = c->n_positions / fa;
        size_t dense = kinds & ATTN_DENSE ? L * N * d : 0;
        size_t fd = kinds & ATTN_FACTORIZED_DENSE ? L * N : 0;
        a->syn_dense_pre = take(&ar, dense);
        a->syn_dense_act = take(&ar, dense);
        a->syn_fd_pre = take(&ar, fd * d);
        a->syn_fd_act = take(&ar, fd * d);
        a->syn_fd_a = take(&ar, fd * H * fa);
        a->syn_fd_b = take(&ar, fd * H * fb);
        a->syn_mix = take(&ar, L * H * attention_count(kinds));
    }
    if (c->arch == ARCH_BACKPACK) {
        size_t k = c->num_senses, S = (size_t)c->sense_intermediate_scale * d;
        a->qk = take(&ar, N * 2 * d);
        a->alpha = take(&ar, B * k * T * T);
        sense_layout(&ar, &a->sense, num_words_cap(c, N), d, S, k, 1);
        a->senses_pos = take(&ar, N * k * d);
        a->posw = take(&ar, N * k);
        a->mixed = take(&ar, N * d);
    }
    return ar.used;
}

static size_t grads_layout(const BackpackConfig *c, size_t B, size_t T, real *base,
                           NetGrads *g) {
    Arena ar = {base, 0};
    size_t N = B * T, d = c->n_embd;
    g->dres = take(&ar, N * d);
    g->dbranch = take(&ar, N * d);
    g->dln = take(&ar, N * d);
    g->datty = take(&ar, N * d);
    g->dqkv = take(&ar, N * 3 * d);
    g->dfch = take(&ar, N * 4 * d);
    g->dfch_gelu = take(&ar, N * 4 * d);
    unsigned kinds = attention_kinds(c);
    if (kinds != ATTN_DOT) {
        size_t H = c->n_head, fa = synth_factor_a(c->n_positions), fb = c->n_positions / fa;
        size_t fd = kinds & ATTN_FACTORIZED_DENSE ? N : 0;
        g->dscores = take(&ar, B * H * T * T);
        g->dsyn_act = take(&ar, kinds & ATTN_DENSE ? N * d : 0);
        g->dsyn_fd_act = take(&ar, fd * d);
        g->dsyn_in = take(&ar, N * d);
        g->dsyn_fd_a = take(&ar, fd * H * fa);
        g->dsyn_fd_b = take(&ar, fd * H * fb);
    }
    if (c->arch == ARCH_BACKPACK) {
        size_t k = c->num_senses, S = (size_t)c->sense_intermediate_scale * d;
        g->dqk = take(&ar, N * 2 * d);
        g->dalpha = take(&ar, B * k * T * T);
        g->dsenses_pos = take(&ar, N * k * d);
        g->dmixed = take(&ar, N * d);
        sense_layout(&ar, &g->dsense, num_words_cap(c, N), d, S, k, 0);
    }
    return ar.used;
}

/* Makes room for a (B, T) batch; reallocates only when it grows. */
static int ensure_acts(Net *n, int B, int T, BpError *err) {
    int threads = omp_get_max_threads();
    if (B <= n->cap_B && T <= n->cap_T && threads <= n->cap_threads) return 0;
    int cB = B > n->cap_B ? B : n->cap_B, cT = T > n->cap_T ? T : n->cap_T;
    int cth = threads > n->cap_threads ? threads : n->cap_threads;
    const BackpackConfig *c = &n->config;
    size_t N = (size_t)cB * cT, V = c->vocab_size;
    NetActs tmp;
    size_t count = acts_layout(c, cB, cT, cth, NULL, &tmp);
    net_free(n);
    n->acts_memory = malloc(count * sizeof(real));
    n->logits = malloc(N * V * sizeof(real));
    n->inputs = malloc(N * sizeof(int));
    n->targets = malloc(N * sizeof(int));
    n->word_slot = malloc(V * sizeof(int));
    n->words = malloc(N * sizeof(int));
    n->word_off = malloc((N + 1) * sizeof(int));
    n->word_pos = malloc(N * sizeof(int));
    n->pos_word = malloc(N * sizeof(int));
    if (!n->acts_memory || !n->logits || !n->inputs || !n->targets || !n->word_slot ||
        !n->words || !n->word_off || !n->word_pos || !n->pos_word) {
        net_free(n);
        return bp_fail(err, "out of memory for the activations of a %d x %d batch", cB, cT);
    }
    for (size_t v = 0; v < V; v++) n->word_slot[v] = -1;
    n->cap_B = cB;
    n->cap_T = cT;
    n->cap_threads = cth;
    return 0;
}

static int ensure_grads_acts(Net *n, BpError *err) {
    if (n->grads_acts_memory && n->grads_cap_B == n->cap_B && n->grads_cap_T == n->cap_T)
        return 0;
    free(n->grads_acts_memory);
    NetGrads tmp;
    size_t count = grads_layout(&n->config, n->cap_B, n->cap_T, NULL, &tmp);
    n->grads_acts_memory = malloc(count * sizeof(real));
    if (!n->grads_acts_memory) {
        n->grads_cap_B = n->grads_cap_T = 0;
        return bp_fail(err, "out of memory for the gradients of a %d x %d batch", n->cap_B,
                       n->cap_T);
    }
    n->grads_cap_B = n->cap_B;
    n->grads_cap_T = n->cap_T;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* distinct words */

/* Groups the N positions of inputs by word: words (U), word_off (U+1), word_pos (N),
 * pos_word (N). Leaves word_slot all -1 again. */
static void group_words(Net *n, const int *inputs, int N) {
    int U = 0;
    for (int p = 0; p < N; p++) {
        int w = inputs[p];
        if (n->word_slot[w] < 0) {
            n->word_slot[w] = U;
            n->words[U] = w;
            n->word_off[U + 1] = 0;
            U++;
        }
        n->pos_word[p] = n->word_slot[w];
        n->word_off[n->pos_word[p] + 1]++;
    }
    n->word_off[0] = 0;
    for (int u = 0; u < U; u++) n->word_off[u + 1] += n->word_off[u];
    /* fill: use word_slot as a running cursor, then reset it */
    for (int u = 0; u < U; u++) n->word_slot[n->words[u]] = n->word_off[u];
    for (int p = 0; p < N; p++) n->word_pos[n->word_slot[inputs[p]]++] = p;
    for (int u = 0; u < U; u++) n->word_slot[n->words[u]] = -1;
    n->num_words = U;
}

/* ------------------------------------------------------------------------------------ */
/* the sense network on U distinct words */

static void sense_forward(const RealTensors *p, const BackpackConfig *c, SenseActs *a,
                          const int *words, int U, real drop, uint64_t seed) {
    int d = c->n_embd, S = c->sense_intermediate_scale * d, kd = c->num_senses * d;
#pragma omp parallel for if ((size_t)U * d >= BP_PAR_MIN)
    for (int u = 0; u < U; u++)
        memcpy(a->e + (size_t)u * d, p->wte + (size_t)words[u] * d, (size_t)d * sizeof(real));
    dropout_apply(a->e, U, d, words, drop, seed, SITE_S_EMB);
    layernorm_forward(a->lns, a->lns_mean, a->lns_rstd, a->e, p->sense_lnw, p->sense_lnb, U, d);
    dropout_apply(a->lns, U, d, words, drop, seed, SITE_S_LN);
    residual_forward(a->r1, a->e, a->lns, (size_t)U * d);
    layernorm_forward(a->ln1, a->ln1_mean, a->ln1_rstd, a->r1, p->sense_ln1w, p->sense_ln1b, U,
                      d);
    matmul_forward(a->fch, a->ln1, p->sense_fcw, p->sense_fcb, U, d, S);
    gelu_forward(a->fch_gelu, a->fch, (size_t)U * S);
    matmul_forward(a->r2, a->fch_gelu, p->sense_projw, p->sense_projb, U, S, d);
    dropout_apply(a->r2, U, d, words, drop, seed, SITE_S_MLP);
    dropout_apply(a->r2, U, d, words, drop, seed, SITE_S_RES2);
    residual_forward(a->r2, a->r1, a->r2, (size_t)U * d);
    layernorm_forward(a->ln2, a->ln2_mean, a->ln2_rstd, a->r2, p->sense_ln2w, p->sense_ln2b, U,
                      d);
    matmul_forward(a->ffch, a->ln2, p->sense_final_fcw, p->sense_final_fcb, U, d, S);
    gelu_forward(a->ffch_gelu, a->ffch, (size_t)U * S);
    matmul_forward(a->out, a->ffch_gelu, p->sense_final_projw, p->sense_final_projb, U, S, kd);
    dropout_apply(a->out, U, kd, words, drop, seed, SITE_S_FINAL);
}

/* g->out (U,k,d) holds dC; accumulates the parameter gradients and dE rows. */
static void sense_backward(const RealTensors *p, RealTensors *dp, const BackpackConfig *c,
                           const SenseActs *a, SenseActs *g, const int *words, int U,
                           real drop, uint64_t seed) {
    int d = c->n_embd, S = c->sense_intermediate_scale * d, kd = c->num_senses * d;
    size_t Ud = (size_t)U * d;
    dropout_apply(g->out, U, kd, words, drop, seed, SITE_S_FINAL);
    matmul_backward(g->ffch_gelu, dp->sense_final_projw, dp->sense_final_projb, g->out,
                    a->ffch_gelu, p->sense_final_projw, U, S, kd);
    gelu_backward(g->ffch, a->ffch, g->ffch_gelu, (size_t)U * S);
    matmul_backward(g->ln2, dp->sense_final_fcw, dp->sense_final_fcb, g->ffch, a->ln2,
                    p->sense_final_fcw, U, d, S);
    memset(g->r2, 0, Ud * sizeof(real));
    layernorm_backward(g->r2, dp->sense_ln2w, dp->sense_ln2b, g->ln2, a->r2, p->sense_ln2w,
                       a->ln2_mean, a->ln2_rstd, U, d);
    /* r2 = r1 + drop(drop(mlp(LN_b1(r1)))); g->lns serves as the branch's gradient */
    real *branch = g->lns;
    memcpy(g->r1, g->r2, Ud * sizeof(real));
    memcpy(branch, g->r2, Ud * sizeof(real));
    dropout_apply(branch, U, d, words, drop, seed, SITE_S_RES2);
    dropout_apply(branch, U, d, words, drop, seed, SITE_S_MLP);
    matmul_backward(g->fch_gelu, dp->sense_projw, dp->sense_projb, branch, a->fch_gelu,
                    p->sense_projw, U, S, d);
    gelu_backward(g->fch, a->fch, g->fch_gelu, (size_t)U * S);
    matmul_backward(g->ln1, dp->sense_fcw, dp->sense_fcb, g->fch, a->ln1, p->sense_fcw, U, d, S);
    layernorm_backward(g->r1, dp->sense_ln1w, dp->sense_ln1b, g->ln1, a->r1, p->sense_ln1w,
                       a->ln1_mean, a->ln1_rstd, U, d);
    /* r1 = e + drop(LN_s(e)) */
    memcpy(g->e, g->r1, Ud * sizeof(real));
    memcpy(g->lns, g->r1, Ud * sizeof(real));
    dropout_apply(g->lns, U, d, words, drop, seed, SITE_S_LN);
    layernorm_backward(g->e, dp->sense_lnw, dp->sense_lnb, g->lns, a->e, p->sense_lnw,
                       a->lns_mean, a->lns_rstd, U, d);
    dropout_apply(g->e, U, d, words, drop, seed, SITE_S_EMB);
#pragma omp parallel for if ((size_t)U * d >= BP_PAR_MIN)
    for (int u = 0; u < U; u++) {
        real *dw = dp->wte + (size_t)words[u] * d;
        const real *ge = g->e + (size_t)u * d;
        for (int i = 0; i < d; i++) dw[i] += ge[i];
    }
}

/* Replaces C(x)_l by the edits' vectors: senses (count,k,d) of the words tokens. */
static void apply_edit_vectors(real *senses, const SenseEdits *edits, const int *tokens,
                               int count, int d, int k) {
    if (!edits) return;
    for (int e = 0; e < edits->count; e++) {
        const SenseEdit *x = &edits->items[e];
        if (!x->vector || x->sense < 0 || x->sense >= k) continue;
        for (int u = 0; u < count; u++) {
            if (tokens[u] != x->token) continue;
            real *dst = senses + ((size_t)u * k + x->sense) * d;
            for (int i = 0; i < d; i++) dst[i] = (real)x->vector[i];
        }
    }
}

/* ------------------------------------------------------------------------------------ */
/* Synthesizer attention: one layer's view of its parameters and activations */

static SynthScores synth_layer(const Net *n, int l, const real *qkv) {
    const BackpackConfig *c = &n->config;
    const RealTensors *p = &n->params;
    const NetActs *a = &n->acts;
    const size_t d = c->n_embd, H = c->n_head, P = c->n_positions, N = (size_t)n->B * n->T;
    const int fa = synth_factor_a(c->n_positions), fb = c->n_positions / fa;
    const int r = synth_rank(c->n_positions);
    const unsigned kinds = attention_kinds(c);
    const int count = attention_count(kinds);
    SynthScores s = {.kinds = kinds, .n = (int)P, .fa = fa, .fb = fb, .rank = r,
                     .dot_scale = R(1) / (sqrt(R(c->n_embd / c->n_head)) * R(l + 1)),
                     .qkv = qkv, .qkv_width = kinds & ATTN_DOT ? 3 * (int)d : (int)d};
    if (kinds & ATTN_DENSE) {
        s.dense_act = a->syn_dense_act + l * N * d;
        s.dense_w2 = p->syn_dense_w2 + l * d * P;
        s.dense_b2 = p->syn_dense_b2 + l * H * P;
    }
    if (kinds & ATTN_RANDOM) s.random = p->syn_random + l * H * P * P;
    if (kinds & ATTN_FIXED_RANDOM) s.fixed_random = p->syn_fixed_random + l * H * P * P;
    if (kinds & ATTN_FACTORIZED_DENSE) {
        s.fd_a = a->syn_fd_a + l * N * H * fa;
        s.fd_b = a->syn_fd_b + l * N * H * fb;
    }
    if (kinds & ATTN_FACTORIZED_RANDOM) {
        s.fr1 = p->syn_frandom_r1 + l * H * P * r;
        s.fr2 = p->syn_frandom_r2 + l * H * P * r;
    }
    if (count > 1) s.mix = a->syn_mix + l * H * count;
    return s;
}

/* The activations the scores of layer l read, from its attention input ln1 (N,d). */
static void synth_layer_forward(Net *n, int l, const real *ln1) {
    const BackpackConfig *c = &n->config;
    const RealTensors *p = &n->params;
    NetActs *a = &n->acts;
    const size_t d = c->n_embd, H = c->n_head, N = (size_t)n->B * n->T;
    const int fa = synth_factor_a(c->n_positions), fb = c->n_positions / fa;
    const unsigned kinds = attention_kinds(c);
    const int count = attention_count(kinds);
    if (kinds & ATTN_DENSE) {
        real *pre = a->syn_dense_pre + l * N * d;
        matmul_forward(pre, ln1, p->syn_dense_w1 + l * d * d, p->syn_dense_b1 + l * d, (int)N,
                       (int)d, (int)d);
        relu_forward(a->syn_dense_act + l * N * d, pre, N * d);
    }
    if (kinds & ATTN_FACTORIZED_DENSE) {
        real *pre = a->syn_fd_pre + l * N * d, *act = a->syn_fd_act + l * N * d;
        matmul_forward(pre, ln1, p->syn_fdense_w1 + l * d * d, p->syn_fdense_b1 + l * d, (int)N,
                       (int)d, (int)d);
        relu_forward(act, pre, N * d);
        int hs = (int)(d / H);
        headwise_forward(a->syn_fd_a + l * N * H * fa, act, p->syn_fdense_wa + l * d * fa,
                         p->syn_fdense_ba + l * H * fa, (int)N, (int)H, hs, fa);
        headwise_forward(a->syn_fd_b + l * N * H * fb, act, p->syn_fdense_wb + l * d * fb,
                         p->syn_fdense_bb + l * H * fb, (int)N, (int)H, hs, fb);
    }
    if (count > 1)
        synth_mixture_weights(a->syn_mix + l * H * count, p->syn_mix + l * H * count, (int)H,
                              count);
}

/* Layer l's Synthesizer gradients from g->dscores: the score tables', the Q and K
 * parts of g->dqkv, and those of the dense activations. */
static void synth_scores_grads(Net *n, int l, const SynthScores *s) {
    const BackpackConfig *c = &n->config;
    RealTensors *dp = &n->grads;
    NetGrads *g = &n->gacts;
    const size_t d = c->n_embd, H = c->n_head, P = c->n_positions;
    const int r = s->rank;
    const unsigned kinds = s->kinds;
    const int count = attention_count(kinds);
    SynthGrads sg = {g->dqkv, g->dsyn_act, NULL, NULL, NULL, g->dsyn_fd_a, g->dsyn_fd_b,
                     NULL, NULL, NULL};
    if (kinds & ATTN_DENSE) {
        sg.ddense_w2 = dp->syn_dense_w2 + l * d * P;
        sg.ddense_b2 = dp->syn_dense_b2 + l * H * P;
    }
    if (kinds & ATTN_RANDOM) sg.drandom = dp->syn_random + l * H * P * P;
    if (kinds & ATTN_FACTORIZED_RANDOM) {
        sg.dfr1 = dp->syn_frandom_r1 + l * H * P * r;
        sg.dfr2 = dp->syn_frandom_r2 + l * H * P * r;
    }
    if (count > 1) sg.dmix = dp->syn_mix + l * H * count;
    synth_scores_backward(&sg, g->dscores, s, n->B, n->T, (int)d, (int)H, n->acts.scratch);
}

/* Then the dense synthesizers' first layers: parameters, and the attention input's
 * gradient added into dln (N,d) (which holds the Q K V path's). */
static void synth_input_backward(Net *n, int l, const SynthScores *s, const real *ln1,
                                 real *dln) {
    const BackpackConfig *c = &n->config;
    const RealTensors *p = &n->params;
    RealTensors *dp = &n->grads;
    NetActs *a = &n->acts;
    NetGrads *g = &n->gacts;
    const size_t d = c->n_embd, H = c->n_head, N = (size_t)n->B * n->T;
    const int fa = s->fa, fb = s->fb, hs = (int)(d / H);
    const unsigned kinds = s->kinds;
    if (kinds & ATTN_DENSE) {
        relu_backward(g->dsyn_act, a->syn_dense_pre + l * N * d, g->dsyn_act, N * d);
        matmul_backward(g->dsyn_in, dp->syn_dense_w1 + l * d * d, dp->syn_dense_b1 + l * d,
                        g->dsyn_act, ln1, p->syn_dense_w1 + l * d * d, (int)N, (int)d, (int)d);
        residual_forward(dln, dln, g->dsyn_in, N * d);
    }
    if (kinds & ATTN_FACTORIZED_DENSE) {
        const real *act = a->syn_fd_act + l * N * d;
        memset(g->dsyn_fd_act, 0, N * d * sizeof(real));
        headwise_backward(g->dsyn_fd_act, dp->syn_fdense_wa + l * d * fa,
                          dp->syn_fdense_ba + l * H * fa, g->dsyn_fd_a, act,
                          p->syn_fdense_wa + l * d * fa, (int)N, (int)H, hs, fa);
        headwise_backward(g->dsyn_fd_act, dp->syn_fdense_wb + l * d * fb,
                          dp->syn_fdense_bb + l * H * fb, g->dsyn_fd_b, act,
                          p->syn_fdense_wb + l * d * fb, (int)N, (int)H, hs, fb);
        relu_backward(g->dsyn_fd_act, a->syn_fd_pre + l * N * d, g->dsyn_fd_act, N * d);
        matmul_backward(g->dsyn_in, dp->syn_fdense_w1 + l * d * d, dp->syn_fdense_b1 + l * d,
                        g->dsyn_fd_act, ln1, p->syn_fdense_w1 + l * d * d, (int)N, (int)d,
                        (int)d);
        residual_forward(dln, dln, g->dsyn_in, N * d);
    }
}

/* layer plans (plan.h): the residual stream in buffers of n->plan_memory */

/* Room for the plan's buffers; buffer 0 starts as h. */
static int plan_begin(Net *n, const real *h, size_t Nd, BpError *err) {
    size_t need = (size_t)n->plan->num_buffers * Nd;
    if (need > n->plan_cap) {
        free(n->plan_memory);
        n->plan_memory = malloc(need * sizeof(real));
        n->plan_cap = n->plan_memory ? need : 0;
        if (!n->plan_memory) return bp_fail(err, "out of memory for a layer plan");
    }
    memcpy(n->plan_memory, h, Nd * sizeof(real));
    return 0;
}

/* PLAN_COMBINE when block_out is NULL (returns 1: done), else stores the output of a
 * PLAN_BLOCK (returns 0). */
static int plan_op(Net *n, const PlanOp *op, const real *block_out, size_t Nd) {
    if (op->kind != PLAN_COMBINE && !block_out) return 0;
    real *dst = n->plan_memory + (size_t)op->dst * Nd;
    const real *src = block_out ? block_out : n->plan_memory + (size_t)op->src * Nd;
    real div = block_out ? R(1) : (real)op->divisor;
    if (op->add)
        for (size_t i = 0; i < Nd; i++) dst[i] += src[i] / div;
    else if (block_out)
        memcpy(dst, src, Nd * sizeof(real));
    else
        for (size_t i = 0; i < Nd; i++) dst[i] = src[i] / div;
    return 1;
}

/* ------------------------------------------------------------------------------------ */
/* forward */

int net_forward(Net *n, const int *inputs, const int *targets, int B, int T, real dropout,
                uint64_t seed, BpError *err) {
    const BackpackConfig *c = &n->config;
    int V = c->vocab_size, d = c->n_embd, L = c->n_layer, H = c->n_head;
    if (B < 1 || T < 1) return bp_fail(err, "batch %d x %d is empty", B, T);
    if (T > c->n_positions)
        return bp_fail(err, "sequence length %d exceeds n_positions %d", T, c->n_positions);
    size_t N = (size_t)B * T;
    for (size_t p = 0; p < N; p++) {
        if (inputs[p] < 0 || inputs[p] >= V)
            return bp_fail(err, "input token %d at position %zu is not in [0, %d)", inputs[p],
                           p, V);
        if (targets && (targets[p] < 0 || targets[p] >= V))
            return bp_fail(err, "target token %d at position %zu is not in [0, %d)",
                           targets[p], p, V);
    }
    const SenseEdits *edits = c->arch == ARCH_BACKPACK ? n->edits : NULL;
    if (edits)
        for (int e = 0; e < edits->count; e++)
            if (edits->items[e].token < 0 || edits->items[e].token >= V ||
                edits->items[e].sense < 0 || edits->items[e].sense >= c->num_senses)
                return bp_fail(err, "edit %d: word %d sense %d is out of range", e,
                               edits->items[e].token, edits->items[e].sense);
    if (ensure_acts(n, B, T, err) != 0) return -1;
    acts_layout(c, B, T, n->cap_threads, n->acts_memory, &n->acts);
    NetActs *a = &n->acts;
    const RealTensors *p = &n->params;
    n->B = B;
    n->T = T;
    n->has_targets = targets != NULL;
    n->dropout = dropout;
    n->seed = seed;
    n->fwd_edits = edits;
    n->fwd_plan = n->plan != NULL;
    memcpy(n->inputs, inputs, N * sizeof(int));
    if (targets) memcpy(n->targets, targets, N * sizeof(int));
    group_words(n, inputs, (int)N);
    /* position-indexed masks: rows (width d) and attention blocks (T x T per head) */
    const uint64_t seed_rows = dropout_seed_from(seed, n->first_row * T * d);
    const uint64_t seed_att = dropout_seed_from(seed, n->first_row * H * T * T);

    /* 1. the contextualization transformer, its blocks in order or as n->plan says */
    const unsigned kinds = attention_kinds(c);
    const int Q = kinds & ATTN_DOT ? 3 : 1;  /* Q K V, or V alone */
    encoder_forward(a->encoded, inputs, p->wte, p->wpe, B, T, d);
    dropout_apply(a->encoded, (int)N, d, NULL, dropout, seed_rows, SITE_EMB);
    real *residual = a->encoded;
    const LayerPlan *plan = n->plan;
    if (plan && plan_begin(n, residual, N * d, err) != 0) return -1;
    for (int s = 0; s < (plan ? plan->num_ops : L); s++) {
        const PlanOp *op = plan ? &plan->ops[s] : NULL;
        if (op && plan_op(n, op, NULL, N * d)) continue;
        int l = op ? op->block : s;
        if (op) residual = n->plan_memory + (size_t)op->src * N * d;
        size_t Nd = N * d;
        real *ln1 = a->ln1 + l * Nd, *ln1_mean = a->ln1_mean + l * N, *ln1_rstd = a->ln1_rstd + l * N;
        real *qkv = a->qkv + l * 3 * Nd, *att = a->att + (size_t)l * B * H * T * T;
        real *atty = a->atty + l * Nd, *res2 = a->residual2 + l * Nd;
        real *ln2 = a->ln2 + l * Nd, *ln2_mean = a->ln2_mean + l * N, *ln2_rstd = a->ln2_rstd + l * N;
        real *fch = a->fch + l * 4 * Nd, *fch_gelu = a->fch_gelu + l * 4 * Nd;
        real *res3 = a->residual3 + l * Nd;
        uint64_t site = SITE_LAYER + 4 * (uint64_t)l;
        real scale = R(1) / (sqrt(R(d / H)) * R(l + 1));

        layernorm_forward(ln1, ln1_mean, ln1_rstd, residual, p->ln1w + l * d, p->ln1b + l * d,
                          (int)N, d);
        matmul_forward(qkv, ln1, p->qkvw + (size_t)l * d * Q * d, p->qkvb + (size_t)l * Q * d,
                       (int)N, d, Q * d);
        if (kinds == ATTN_DOT) {
            attention_forward(atty, att, qkv, B, T, d, H, scale, dropout, seed_att, site, a->scratch);
        } else {
            synth_layer_forward(n, l, ln1);
            SynthScores ss = synth_layer(n, l, qkv);
            synth_attention_forward(atty, att, &ss, B, T, d, H, dropout, seed_att, site, a->scratch);
        }
        /* residual2 = residual + dropout(atty W_o + b_o) */
        matmul_forward(res2, atty, p->attprojw + (size_t)l * d * d, p->attprojb + l * d,
                       (int)N, d, d);
        dropout_apply(res2, (int)N, d, NULL, dropout, seed_rows, site + 1);
        residual_forward(res2, residual, res2, Nd);
        layernorm_forward(ln2, ln2_mean, ln2_rstd, res2, p->ln2w + l * d, p->ln2b + l * d,
                          (int)N, d);
        matmul_forward(fch, ln2, p->fcw + (size_t)l * d * 4 * d, p->fcb + (size_t)l * 4 * d,
                       (int)N, d, 4 * d);
        gelu_forward(fch_gelu, fch, N * 4 * d);
        matmul_forward(res3, fch_gelu, p->fcprojw + (size_t)l * 4 * d * d, p->fcprojb + l * d,
                       (int)N, 4 * d, d);
        dropout_apply(res3, (int)N, d, NULL, dropout, seed_rows, site + 2);
        if (!(c->no_last_residual && l == L - 1)) residual_forward(res3, res2, res3, Nd);
        residual = res3;
        if (op) plan_op(n, op, res3, Nd);
    }
    if (plan) residual = n->plan_memory;  /* buffer 0 */
    layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, residual, p->lnfw, p->lnfb, (int)N, d);

    const real *out = a->lnf;  /* what the tied output reads: h, or the Backpack's o */
    if (c->arch == ARCH_BACKPACK) {
        int k = c->num_senses, kd = k * d, U = n->num_words;
        /* 2. the sense network, once per distinct word */
        sense_forward(p, c, &a->sense, n->words, U, dropout, seed);
        apply_edit_vectors(a->sense.out, edits, n->words, U, d, k);
        /* edit weights per (position, sense) */
        for (size_t q = 0; q < N * k; q++) a->posw[q] = 1;
        if (edits)
            for (int e = 0; e < edits->count; e++) {
                const SenseEdit *x = &edits->items[e];
                if (x->weight == 1.0f) continue;
                for (size_t q = 0; q < N; q++)
                    if (inputs[q] == x->token) a->posw[q * k + x->sense] *= (real)x->weight;
            }
        /* C(x_j)_l w_j,l at every position */
#pragma omp parallel for if (N * kd >= BP_PAR_MIN)
        for (size_t q = 0; q < N; q++) {
            const real *src = a->sense.out + (size_t)n->pos_word[q] * kd;
            real *dst = a->senses_pos + q * kd;
            for (int l = 0; l < k; l++) {
                real w = a->posw[q * k + l];
                for (int i = 0; i < d; i++) dst[l * d + i] = w * src[l * d + i];
            }
        }
        /* 3. sense weights */
        linear_forward(a->qk, a->lnf, p->sense_qkw, p->sense_qkb, (int)N, d, 2 * d);
        sense_weights_forward(a->alpha, a->qk, B, T, d, k);
        /* 4. mixing */
        mix_forward(a->mixed, a->alpha, a->senses_pos, B, T, d, k);
        out = a->mixed;
    }
    /* tied output: logits = out E^T */
    linear_forward(n->logits, out, p->wte, NULL, (int)N, d, V);
    n->mean_loss = targets ? crossentropy_forward(a->lse, n->logits, targets, (int)N, V) : R(-1);
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* backward */

int net_backward(Net *n, BpError *err) {
    if (!n->has_targets) return bp_fail(err, "backward needs a forward with targets");
    if (!n->grads_memory) return bp_fail(err, "backward needs gradient memory");
    if (n->fwd_plan) return bp_fail(err, "backward of a forward under a layer plan");
    if (ensure_grads_acts(n, err) != 0) return -1;
    n->has_targets = 0;  /* the logits become their gradient: one backward per forward */
    const BackpackConfig *c = &n->config;
    int B = n->B, T = n->T, V = c->vocab_size, d = c->n_embd, L = c->n_layer, H = c->n_head;
    size_t N = (size_t)B * T, Nd = N * d;
    grads_layout(c, B, T, n->grads_acts_memory, &n->gacts);
    NetActs *a = &n->acts;
    NetGrads *g = &n->gacts;
    const RealTensors *p = &n->params;
    RealTensors *dp = &n->grads;
    real drop = n->dropout;
    uint64_t seed = n->seed;
    const uint64_t seed_rows = dropout_seed_from(seed, n->first_row * T * d);
    const uint64_t seed_att = dropout_seed_from(seed, n->first_row * H * T * T);

    crossentropy_backward(n->logits, a->lse, n->targets, (int)N, V, R(1));
    real *dlnf = g->dln;
    if (c->arch == ARCH_BACKPACK) {
        int k = c->num_senses, kd = k * d, U = n->num_words;
        linear_backward(g->dmixed, dp->wte, NULL, n->logits, a->mixed, p->wte, (int)N, d, V);
        mix_backward(g->dalpha, g->dsenses_pos, g->dmixed, a->alpha, a->senses_pos, B, T, d, k);
        sense_weights_backward(g->dqk, g->dalpha, a->qk, a->alpha, B, T, d, k);
        linear_backward(dlnf, dp->sense_qkw, dp->sense_qkb, g->dqk, a->lnf, p->sense_qkw,
                        (int)N, d, 2 * d);
        /* dC per distinct word: sum over its positions of w dC_pos */
        const int *off = n->word_off, *pos = n->word_pos;
        real *dC = g->dsense.out;
#pragma omp parallel for schedule(dynamic, 16) if (N * kd >= BP_PAR_MIN)
        for (int u = 0; u < U; u++) {
            real *dst = dC + (size_t)u * kd;
            memset(dst, 0, (size_t)kd * sizeof(real));
            for (int q = off[u]; q < off[u + 1]; q++) {
                size_t at = (size_t)pos[q];
                const real *src = g->dsenses_pos + at * kd;
                for (int l = 0; l < k; l++) {
                    real w = a->posw[at * k + l];
                    for (int i = 0; i < d; i++) dst[l * d + i] += w * src[l * d + i];
                }
            }
        }
        /* a replaced sense vector does not depend on the sense network */
        const SenseEdits *edits = n->fwd_edits;
        if (edits)
            for (int e = 0; e < edits->count; e++) {
                const SenseEdit *x = &edits->items[e];
                if (!x->vector) continue;
                for (int u = 0; u < U; u++)
                    if (n->words[u] == x->token)
                        memset(dC + ((size_t)u * k + x->sense) * d, 0, (size_t)d * sizeof(real));
            }
        sense_backward(p, dp, c, &a->sense, &g->dsense, n->words, U, drop, seed);
    } else {
        linear_backward(dlnf, dp->wte, NULL, n->logits, a->lnf, p->wte, (int)N, d, V);
    }
    const unsigned kinds = attention_kinds(c);
    const int Q = kinds & ATTN_DOT ? 3 : 1;
    real *dres = g->dres;
    memset(dres, 0, Nd * sizeof(real));
    real *last = L > 0 ? a->residual3 + (size_t)(L - 1) * Nd : a->encoded;
    layernorm_backward(dres, dp->lnfw, dp->lnfb, dlnf, last, p->lnfw, a->lnf_mean, a->lnf_rstd,
                       (int)N, d);
    for (int l = L - 1; l >= 0; l--) {
        real *residual = l == 0 ? a->encoded : a->residual3 + (size_t)(l - 1) * Nd;
        real *ln1 = a->ln1 + l * Nd, *ln1_mean = a->ln1_mean + l * N, *ln1_rstd = a->ln1_rstd + l * N;
        real *qkv = a->qkv + l * 3 * Nd, *att = a->att + (size_t)l * B * H * T * T;
        real *atty = a->atty + l * Nd, *res2 = a->residual2 + l * Nd;
        real *ln2 = a->ln2 + l * Nd, *ln2_mean = a->ln2_mean + l * N, *ln2_rstd = a->ln2_rstd + l * N;
        real *fch = a->fch + l * 4 * Nd, *fch_gelu = a->fch_gelu + l * 4 * Nd;
        uint64_t site = SITE_LAYER + 4 * (uint64_t)l;
        real scale = R(1) / (sqrt(R(d / H)) * R(l + 1));

        /* res3 = res2 + drop(MLP(LN_2(res2))): dres passes through unchanged (without
         * the last block's residual, res2 reaches the loss through the MLP alone) */
        memcpy(g->dbranch, dres, Nd * sizeof(real));
        if (c->no_last_residual && l == L - 1) memset(dres, 0, Nd * sizeof(real));
        dropout_apply(g->dbranch, (int)N, d, NULL, drop, seed_rows, site + 2);
        matmul_backward(g->dfch_gelu, dp->fcprojw + (size_t)l * 4 * d * d, dp->fcprojb + l * d,
                        g->dbranch, fch_gelu, p->fcprojw + (size_t)l * 4 * d * d, (int)N, 4 * d, d);
        gelu_backward(g->dfch, fch, g->dfch_gelu, N * 4 * d);
        matmul_backward(g->dln, dp->fcw + (size_t)l * d * 4 * d, dp->fcb + (size_t)l * 4 * d,
                        g->dfch, ln2, p->fcw + (size_t)l * d * 4 * d, (int)N, d, 4 * d);
        layernorm_backward(dres, dp->ln2w + l * d, dp->ln2b + l * d, g->dln, res2,
                           p->ln2w + l * d, ln2_mean, ln2_rstd, (int)N, d);
        /* res2 = residual + drop(attention(LN_1(residual)) W_o + b_o) */
        memcpy(g->dbranch, dres, Nd * sizeof(real));
        dropout_apply(g->dbranch, (int)N, d, NULL, drop, seed_rows, site + 1);
        matmul_backward(g->datty, dp->attprojw + (size_t)l * d * d, dp->attprojb + l * d,
                        g->dbranch, atty, p->attprojw + (size_t)l * d * d, (int)N, d, d);
        SynthScores ss;
        if (kinds == ATTN_DOT) {
            attention_backward(g->dqkv, g->datty, qkv, att, B, T, d, H, scale, drop, seed_att, site,
                               a->scratch);
        } else {
            ss = synth_layer(n, l, qkv);
            synth_attention_backward(g->dscores, g->dqkv, g->datty, &ss, att, B, T, d, H, drop,
                                     seed_att, site, a->scratch);
            synth_scores_grads(n, l, &ss);
        }
        matmul_backward(g->dln, dp->qkvw + (size_t)l * d * Q * d, dp->qkvb + (size_t)l * Q * d,
                        g->dqkv, ln1, p->qkvw + (size_t)l * d * Q * d, (int)N, d, Q * d);
        if (kinds != ATTN_DOT) synth_input_backward(n, l, &ss, ln1, g->dln);
        layernorm_backward(dres, dp->ln1w + l * d, dp->ln1b + l * d, g->dln, residual,
                           p->ln1w + l * d, ln1_mean, ln1_rstd, (int)N, d);
    }
    dropout_apply(dres, (int)N, d, NULL, drop, seed_rows, SITE_EMB);
    WordGroups groups = {n->num_words, n->words, n->word_off, n->word_pos};
    encoder_backward(dp->wte, dp->wpe, dres, &groups, B, T, d);
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* sense vectors for export and generation */

void net_compute_senses(const Net *n, const SenseEdits *edits, const int *tokens, int count,
                        real *out) {
    const BackpackConfig *c = &n->config;
    if (c->arch != ARCH_BACKPACK || count <= 0) return;
    int d = c->n_embd, k = c->num_senses, S = c->sense_intermediate_scale * d;
    size_t kd = (size_t)k * d;
    /* chunks of 256 words; if even that memory is missing, one word at a time */
    int chunk = count < 256 ? count : 256;
    SenseActs a;
    real *mem = NULL;
    for (; chunk >= 1 && !mem; chunk = chunk > 1 ? chunk / 16 : 0) {
        Arena sizing = {NULL, 0};
        sense_layout(&sizing, &a, chunk, d, S, k, 1);
        mem = malloc(sizing.used * sizeof(real));
        if (mem) break;
    }
    if (!mem) {  /* no error channel in this contract: zeros say "unavailable" */
        memset(out, 0, (size_t)count * kd * sizeof(real));
        return;
    }
    Arena ar = {mem, 0};
    sense_layout(&ar, &a, chunk, d, S, k, 1);
    int ids[256];
    for (int i0 = 0; i0 < count; i0 += chunk) {
        int m = count - i0 < chunk ? count - i0 : chunk;
        for (int i = 0; i < m; i++) {  /* out-of-range words get zero senses */
            int t = tokens[i0 + i];
            ids[i] = t >= 0 && t < c->vocab_size ? t : 0;
        }
        sense_forward(&n->params, c, &a, ids, m, 0, 0);
        memcpy(out + (size_t)i0 * kd, a.out, (size_t)m * kd * sizeof(real));
        for (int i = 0; i < m; i++)
            if (tokens[i0 + i] < 0 || tokens[i0 + i] >= c->vocab_size)
                memset(out + (size_t)(i0 + i) * kd, 0, kd * sizeof(real));
    }
    free(mem);
    apply_edit_vectors(out, edits, tokens, count, d, k);
}
