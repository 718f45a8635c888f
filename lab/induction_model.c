/* induction_model.c - forward, backward, SGD and memory probes of the simplified
 * induction-head transformer (induction_model.h). */
#include "induction_model.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/rng.h"

#ifdef INDUCTION_REAL_DOUBLE
#define GEMM cblas_dgemm
#else
#define GEMM cblas_sgemm
#endif

/* Row-major products: C (M, N) = A op B + beta C. */
static void gemm_nt(int M, int N, int K, const ireal *A, const ireal *B, ireal *C, ireal beta) {
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, A, K, B, K, beta, C, N);
}
static void gemm_nn(int M, int N, int K, const ireal *A, const ireal *B, ireal *C, ireal beta) {
    GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, A, K, B, N, beta, C, N);
}
/* C (M, N) = A^T B with A (K, M), B (K, N). */
static void gemm_tn(int M, int N, int K, const ireal *A, const ireal *B, ireal *C, ireal beta) {
    GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, M, N, K, 1, A, M, B, N, beta, C, N);
}

int induction_config_validate(const InductionConfig *c, BpError *err) {
    if (c->vocab_size < 2 || c->vocab_size > 65536) return bp_fail(err, "vocabulary %d out of range 2..65536", c->vocab_size);
    if (c->d < 1 || c->d > 4096) return bp_fail(err, "--d %d: expected 1 to 4096", c->d);
    if (c->seq_len < 3 || c->seq_len > 4097) return bp_fail(err, "--t %d: expected 3 to 4097", c->seq_len);
    if (!(c->embed_std >= 0 && c->embed_std <= 1e3)) return bp_fail(err, "--embed-std %g: expected 0 to 1000", c->embed_std);
    if (c->n_layer < 1 || c->n_layer > INDUCTION_MAX_LAYERS)
        return bp_fail(err, "--layers %d: expected 1 to %d", c->n_layer, INDUCTION_MAX_LAYERS);
    return 0;
}

/* The activations of a batch of B: views into m->acts. */
typedef struct {
    ireal *x[INDUCTION_MAX_LAYERS + 1]; /* (B, P, d) x[l] enters layer l; x[L] leaves the last */
    ireal *k[INDUCTION_MAX_LAYERS];     /* (B, P, d) W_K x */
    ireal *v[INDUCTION_MAX_LAYERS];     /* (B, P, d) W_V x */
    ireal *att[INDUCTION_MAX_LAYERS];   /* (B, P, P) attention weights, zero above the diagonal */
    ireal *mix[INDUCTION_MAX_LAYERS];   /* (B, P, d) sum_s att(t, s) v_s */
    ireal *xf;                          /* (B, P, d) after W_F (= x[L] without ffn) */
    ireal *probs;                       /* (B, P, N) softmax; the backward's dlogits */
    /* backward scratch */
    ireal *dx, *dx2, *dmix, *dk, *dv;   /* (B, P, d) */
    ireal *datt;                        /* (B, P, P) */
} Acts;

static size_t acts_size(const InductionModel *m, int B, Acts *a) {
    const InductionConfig *c = &m->config;
    size_t bpd = (size_t)B * m->n_pos * c->d, bpp = (size_t)B * m->n_pos * m->n_pos;
    size_t bpn = (size_t)B * m->n_pos * c->vocab_size, off = 0;
    ireal *base = m->acts;
#define TAKE(field, n) (a->field = base ? base + off : NULL, off += (n))
    for (int l = 0; l <= c->n_layer; l++) TAKE(x[l], bpd);
    for (int l = 0; l < c->n_layer; l++) {
        TAKE(k[l], bpd);
        TAKE(v[l], bpd);
        TAKE(att[l], bpp);
        TAKE(mix[l], bpd);
    }
    if (c->ffn) TAKE(xf, bpd);
    else a->xf = a->x[c->n_layer];
    TAKE(probs, bpn);
    TAKE(dx, bpd);
    TAKE(dx2, bpd);
    TAKE(dmix, bpd);
    TAKE(dk, bpd);
    TAKE(dv, bpd);
    TAKE(datt, bpp);
#undef TAKE
    return off;
}

static void fill_normal(ireal *x, size_t n, double std, Rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = (ireal)(std * rng_normal(r));
}

void induction_model_free(InductionModel *m) {
    free(m->params);
    free(m->grads);
    free(m->momentum);
    free(m->acts);
    free(m->loss_weight);
    memset(m, 0, sizeof *m);
}

int induction_model_build(InductionModel *m, const InductionConfig *c, uint64_t seed, BpError *err) {
    memset(m, 0, sizeof *m);
    if (induction_config_validate(c, err) != 0) return -1;
    m->config = *c;
    m->n_pos = c->seq_len - 1;
    size_t N = (size_t)c->vocab_size, d = (size_t)c->d, L = (size_t)c->n_layer, dd = d * d;
    m->num_params = 2 * N * d + (size_t)m->n_pos * d + 3 * L * dd + (c->ffn ? dd : 0);
    m->num_grads = L * dd + dd + (c->ffn ? dd : 0);
    m->params = malloc(m->num_params * sizeof *m->params);
    m->grads = calloc(m->num_grads, sizeof *m->grads);
    m->momentum = calloc(m->num_grads, sizeof *m->momentum);
    if (!m->params || !m->grads || !m->momentum) {
        induction_model_free(m);
        return bp_fail(err, "induction model: out of memory");
    }
    ireal *p = m->params;
    m->emb = p, p += N * d;
    m->pos = p, p += (size_t)m->n_pos * d;
    m->unemb = p, p += N * d;
    m->wk = p, p += L * dd;
    m->wv = p, p += L * dd;
    m->wo = p, p += L * dd;
    m->wf = c->ffn ? p : NULL;
    m->dwk = m->grads;
    m->dwo = m->grads + L * dd;
    m->dwf = c->ffn ? m->dwo + dd : NULL;
    Rng r;
    rng_seed(&r, seed);
    double std = 1.0 / sqrt((double)d);
    fill_normal(m->params, m->num_params, std, &r);
    if (c->embed_std > 0) {   /* E and P redrawn at their own scale, W_U and the rest kept */
        fill_normal(m->emb, N * d, c->embed_std, &r);
        fill_normal(m->pos, (size_t)m->n_pos * d, c->embed_std, &r);
    }
    if (c->zero_init) {
        memset(m->wk, 0, L * dd * sizeof *m->wk);
        memset(m->wo + (L - 1) * dd, 0, dd * sizeof *m->wo);
        if (m->wf) memset(m->wf, 0, dd * sizeof *m->wf);
    }
    return 0;
}

static int ensure_acts(InductionModel *m, int B, BpError *err) {
    if (B <= m->acts_batch) return 0;
    Acts a;
    free(m->acts);
    m->acts = NULL;   /* acts_size only counts when m->acts is NULL */
    size_t n = acts_size(m, B, &a);
    free(m->loss_weight);
    m->acts = malloc(n * sizeof *m->acts);
    m->loss_weight = malloc((size_t)B * m->n_pos * sizeof *m->loss_weight);
    if (!m->acts || !m->loss_weight) {
        free(m->acts);
        free(m->loss_weight);
        m->acts = NULL, m->loss_weight = NULL, m->acts_batch = 0;
        return bp_fail(err, "induction model: out of memory for a batch of %d", B);
    }
    m->acts_batch = B;
    return 0;
}

/* One attention layer: xout = xin + W_O W_V (att xin), att causal. */
static void attention_forward(const InductionModel *m, int l, int B, Acts *a) {
    int P = m->n_pos, d = m->config.d;
    size_t dd = (size_t)d * d, pd = (size_t)P * d, pp = (size_t)P * P;
    const ireal *wk = m->wk + l * dd, *wv = m->wv + l * dd, *wo = m->wo + l * dd;
    ireal scale = (ireal)(1.0 / sqrt((double)d));
    gemm_nt(B * P, d, d, a->x[l], wk, a->k[l], 0);   /* K = X W_K^T */
    gemm_nt(B * P, d, d, a->x[l], wv, a->v[l], 0);   /* V = X W_V^T */
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        ireal *att = a->att[l] + b * pp;
        const ireal *x = a->x[l] + b * pd;
        gemm_nt(P, P, d, x, a->k[l] + b * pd, att, 0);   /* scores x_t . k_s */
        for (int t = 0; t < P; t++) {
            ireal *row = att + (size_t)t * P, mx = row[0] * scale;
            for (int s = 0; s <= t; s++) {
                row[s] *= scale;
                if (row[s] > mx) mx = row[s];
            }
            ireal sum = 0;
            for (int s = 0; s <= t; s++) sum += (row[s] = exp(row[s] - mx));
            for (int s = 0; s <= t; s++) row[s] /= sum;
            for (int s = t + 1; s < P; s++) row[s] = 0;
        }
        gemm_nn(P, d, P, att, a->v[l] + b * pd, a->mix[l] + b * pd, 0);
    }
    memcpy(a->x[l + 1], a->x[l], (size_t)B * pd * sizeof *a->x[l]);
    gemm_nt(B * P, d, d, a->mix[l], wo, a->x[l + 1], 1);   /* residual + mix W_O^T */
}

int induction_forward(InductionModel *m, const int *tokens, const unsigned char *marks, int B,
                      BpError *err) {
    const InductionConfig *c = &m->config;
    int T = c->seq_len, P = m->n_pos, d = c->d, N = c->vocab_size, L = c->n_layer;
    for (size_t i = 0; i < (size_t)B * T; i++)
        if (tokens[i] < 0 || tokens[i] >= N)
            return bp_fail(err, "token %d at position %zu is outside the vocabulary of %d", tokens[i], i, N);
    if (ensure_acts(m, B, err) != 0) return -1;
    Acts a;
    acts_size(m, B, &a);
    m->batch = B;
    m->tokens = tokens;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < P; t++) {
            ireal *x = a.x[0] + ((size_t)b * P + t) * d;
            const ireal *e = m->emb + (size_t)tokens[(size_t)b * T + t] * d, *p = m->pos + (size_t)t * d;
            for (int i = 0; i < d; i++) x[i] = e[i] + p[i];
        }
    for (int l = 0; l < L; l++) attention_forward(m, l, B, &a);
    if (c->ffn) {
        memcpy(a.xf, a.x[L], (size_t)B * P * d * sizeof *a.xf);
        gemm_nt(B * P, d, d, a.x[L], m->wf, a.xf, 1);
    }
    gemm_nt(B * P, N, d, a.xf, m->unemb, a.probs, 0);   /* logits = X W_U^T */
    /* losses, accuracy and the softmax in place */
    InductionBatchStats st = {0};
    long selected = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < P; t++) {
            size_t i = (size_t)b * P + t;
            ireal *row = a.probs + i * N;
            int target = tokens[(size_t)b * T + t + 1], mark = marks[(size_t)b * T + t + 1];
            int best = 0;
            for (int j = 1; j < N; j++)
                if (row[j] > row[best]) best = j;
            double mx = row[best], sum = 0, target_logit = row[target];
            for (int j = 0; j < N; j++) sum += (row[j] = exp(row[j] - mx));
            double nll = log(sum) - (target_logit - mx);
            for (int j = 0; j < N; j++) row[j] /= sum;
            if (mark >= 2) {
                st.loss_in_context += nll, st.n_in_context++;
                st.in_context_correct += best == target;
            } else if (mark == 0) {
                st.loss_global += nll, st.n_global++;
            }
            int use = c->loss_all || mark >= 2;
            m->loss_weight[i] = use ? 1.0f : 0.0f;
            if (use) st.loss += nll, selected++;
        }
    for (size_t i = 0; i < (size_t)B * P; i++) m->loss_weight[i] /= selected ? (float)selected : 1.0f;
    st.loss = selected ? st.loss / selected : 0;
    st.loss_in_context = st.n_in_context ? st.loss_in_context / st.n_in_context : 0;
    st.loss_global = st.n_global ? st.loss_global / st.n_global : 0;
    m->stats = st;
    return 0;
}

/* Backward through layer l: dout (B, P, d) is d loss / d x[l+1]; writes d loss / d x[l]
 * into din unless din is NULL (the first layer: the embeddings are frozen). */
static void attention_backward(InductionModel *m, int l, int B, Acts *a, const ireal *dout, ireal *din) {
    int P = m->n_pos, d = m->config.d, last = l == m->config.n_layer - 1;
    size_t dd = (size_t)d * d, pd = (size_t)P * d, pp = (size_t)P * P;
    const ireal *wk = m->wk + l * dd, *wv = m->wv + l * dd, *wo = m->wo + l * dd;
    ireal scale = (ireal)(1.0 / sqrt((double)d));
    if (last) gemm_tn(d, d, B * P, dout, a->mix[l], m->dwo, 0);   /* dW_O = dout^T mix */
    gemm_nn(B * P, d, d, dout, wo, a->dmix, 0);                    /* dmix = dout W_O */
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const ireal *att = a->att[l] + b * pp, *x = a->x[l] + b * pd, *k = a->k[l] + b * pd;
        const ireal *dmix = a->dmix + b * pd;
        ireal *datt = a->datt + b * pp;
        gemm_nt(P, P, d, dmix, a->v[l] + b * pd, datt, 0);   /* datt = dmix V^T */
        gemm_tn(P, d, P, att, dmix, a->dv + b * pd, 0);       /* dV = att^T dmix */
        for (int t = 0; t < P; t++) {   /* softmax backward, then the 1/sqrt(d) */
            const ireal *ar = att + (size_t)t * P;
            ireal *dr = datt + (size_t)t * P, dot = 0;
            for (int s = 0; s <= t; s++) dot += ar[s] * dr[s];
            for (int s = 0; s <= t; s++) dr[s] = ar[s] * (dr[s] - dot) * scale;
            for (int s = t + 1; s < P; s++) dr[s] = 0;
        }
        if (din) gemm_nn(P, d, P, datt, k, din + b * pd, 0);   /* query side: dX = dS K */
        gemm_tn(P, d, P, datt, x, a->dk + b * pd, 0);           /* dK = dS^T X */
    }
    gemm_tn(d, d, B * P, a->dk, a->x[l], m->dwk + l * dd, 0);   /* dW_K = dK^T X */
    if (din) {
        size_t n = (size_t)B * pd;
        for (size_t i = 0; i < n; i++) din[i] += dout[i];
        gemm_nn(B * P, d, d, a->dk, wk, din, 1);
        gemm_nn(B * P, d, d, a->dv, wv, din, 1);
    }
}

void induction_backward(InductionModel *m) {
    const InductionConfig *c = &m->config;
    int B = m->batch, T = c->seq_len, P = m->n_pos, d = c->d, N = c->vocab_size, L = c->n_layer;
    Acts a;
    acts_size(m, B, &a);
    for (int b = 0; b < B; b++)   /* dlogits = w (probs - onehot) */
        for (int t = 0; t < P; t++) {
            size_t i = (size_t)b * P + t;
            ireal *row = a.probs + i * N, w = (ireal)m->loss_weight[i];
            for (int j = 0; j < N; j++) row[j] *= w;
            row[m->tokens[(size_t)b * T + t + 1]] -= w;
        }
    gemm_nn(B * P, d, N, a.probs, m->unemb, a.dx, 0);   /* dX = dlogits W_U */
    ireal *dout = a.dx, *din = a.dx2;
    if (c->ffn) {   /* xf = x + x W_F^T */
        gemm_tn(d, d, B * P, a.dx, a.x[L], m->dwf, 0);   /* dW_F = dxf^T x */
        memcpy(a.dx2, a.dx, (size_t)B * P * d * sizeof *a.dx);
        gemm_nn(B * P, d, d, a.dx, m->wf, a.dx2, 1);
        dout = a.dx2, din = a.dx;
    }
    for (int l = L - 1; l >= 0; l--) {
        attention_backward(m, l, B, &a, dout, l > 0 ? din : NULL);
        ireal *tmp = dout;
        dout = din, din = tmp;
    }
}

void induction_sgd_step(InductionModel *m, double lr, double momentum, double weight_decay,
                        unsigned train_mask) {
    const InductionConfig *c = &m->config;
    size_t dd = (size_t)c->d * c->d;
    int L = c->n_layer;
    ireal *w[INDUCTION_MAX_LAYERS + 2];
    unsigned bit[INDUCTION_MAX_LAYERS + 2];
    int n = 0;
    for (int l = 0; l < L; l++) w[n] = m->wk + l * dd, bit[n++] = 1u << l;
    w[n] = m->wo + (L - 1) * dd, bit[n++] = INDUCTION_TRAIN_WO;
    if (c->ffn) w[n] = m->wf, bit[n++] = INDUCTION_TRAIN_WF;
    for (int i = 0; i < n; i++) {   /* the gradient layout follows the same order */
        if (!(train_mask & bit[i])) continue;
        ireal *g = m->grads + i * dd, *buf = m->momentum + i * dd, *p = w[i];
        for (size_t j = 0; j < dd; j++) {
            ireal gj = g[j] + (ireal)weight_decay * p[j];
            buf[j] = (ireal)momentum * buf[j] + gj;
            p[j] -= (ireal)lr * buf[j];
        }
    }
}

/* y (d) = W x, W (d, d). */
static void matvec(int d, const ireal *W, const ireal *x, ireal *y) {
    for (int i = 0; i < d; i++) {
        ireal s = 0;
        for (int j = 0; j < d; j++) s += W[(size_t)i * d + j] * x[j];
        y[i] = s;
    }
}

static int argmax_dot(int d, const ireal *q, const ireal *rows, int n) {
    int best = 0;
    double best_v = -INFINITY;
    for (int j = 0; j < n; j++) {
        double v = 0;
        for (int i = 0; i < d; i++) v += (double)q[i] * rows[(size_t)j * d + i];
        if (v > best_v) best_v = v, best = j;
    }
    return best;
}

void induction_recalls(const InductionModel *m, const int *tokens, int n_tokens, InductionRecalls *r) {
    const InductionConfig *c = &m->config;
    int d = c->d, N = c->vocab_size, L = c->n_layer, P = m->n_pos;
    size_t dd = (size_t)d * d;
    ireal *u = malloc((size_t)d * sizeof *u), *v = malloc((size_t)d * sizeof *v);
    ireal *keys = malloc((size_t)(N > P ? N : P) * d * sizeof *keys);
    r->wo2 = r->wk2 = r->wk1 = -1;
    if (!u || !v || !keys) goto done;
    int hits = 0;
    for (int k = 0; k < N; k++) {   /* W_O^L: W_U W_O W_V E[k] */
        matvec(d, m->wv + (L - 1) * dd, m->emb + (size_t)k * d, u);
        matvec(d, m->wo + (L - 1) * dd, u, v);
        hits += argmax_dot(d, v, m->unemb, N) == k;
    }
    r->wo2 = (double)hits / N;
    if (L >= 2) {   /* W_K^L against W_O^{L-1} W_V^{L-1} E[j] */
        int n = tokens ? n_tokens : N;
        for (int i = 0; i < n; i++) {
            int j = tokens ? tokens[i] : i;
            matvec(d, m->wv + (L - 2) * dd, m->emb + (size_t)j * d, u);
            matvec(d, m->wo + (L - 2) * dd, u, v);
            matvec(d, m->wk + (L - 1) * dd, v, keys + (size_t)i * d);
        }
        hits = 0;
        for (int i = 0; i < n; i++)
            hits += argmax_dot(d, m->emb + (size_t)(tokens ? tokens[i] : i) * d, keys, n) == i;
        r->wk2 = n ? (double)hits / n : -1;
    }
    if (P >= 2) {   /* W_K^1 on positions: keys W_K P[s], s = 0..P-2 */
        for (int s = 0; s < P - 1; s++) matvec(d, m->wk, m->pos + (size_t)s * d, keys + (size_t)s * d);
        hits = 0;
        for (int t = 1; t < P; t++) hits += argmax_dot(d, m->pos + (size_t)t * d, keys, P - 1) == t - 1;
        r->wk1 = (double)hits / (P - 1);
    }
done:
    free(u);
    free(v);
    free(keys);
}

int induction_set_ideal(InductionModel *m, double beta, double gamma, BpError *err) {
    const InductionConfig *c = &m->config;
    int d = c->d, N = c->vocab_size, P = m->n_pos;
    size_t dd = (size_t)d * d;
    if (c->n_layer != 2) return bp_fail(err, "--ideal: the ideal memories are defined for 2 layers, not %d", c->n_layer);
    ireal *u = malloc((size_t)d * sizeof *u), *v = malloc((size_t)d * sizeof *v);
    if (!u || !v) {
        free(u);
        free(v);
        return bp_fail(err, "--ideal: out of memory");
    }
    double s2 = c->embed_std > 0 ? c->embed_std * c->embed_std * d : 1.0;
    double kscale = beta * sqrt((double)d) / (s2 * s2);
    gamma /= s2;
    ireal *wk1 = m->wk, *wk2 = m->wk + dd, *wo2 = m->wo + dd;
    memset(wk1, 0, dd * sizeof *wk1);
    memset(wk2, 0, dd * sizeof *wk2);
    memset(wo2, 0, dd * sizeof *wo2);
    for (int t = 1; t < P; t++) {
        const ireal *pt = m->pos + (size_t)t * d, *ps = m->pos + (size_t)(t - 1) * d;
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) wk1[(size_t)i * d + j] += (ireal)(kscale * pt[i] * ps[j]);
    }
    for (int k = 0; k < N; k++) {
        const ireal *e = m->emb + (size_t)k * d, *wu = m->unemb + (size_t)k * d;
        matvec(d, m->wv, e, u);
        matvec(d, m->wo, u, v);   /* W_O^1 W_V^1 E[k] */
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) wk2[(size_t)i * d + j] += (ireal)(kscale * e[i] * v[j]);
        matvec(d, m->wv + dd, e, u);   /* W_V^2 E[k] */
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) wo2[(size_t)i * d + j] += (ireal)(gamma * wu[i] * u[j]);
    }
    if (m->wf) memset(m->wf, 0, dd * sizeof *m->wf);
    free(u);
    free(v);
    return 0;
}
