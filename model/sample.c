/* sample.c - choosing the next token from logits (infer.h: sample_token).
 *
 * Order of the filters, as in Hugging Face's generate: temperature, then top-k, then
 * top-p on the distribution renormalized over the top k. Candidates are ranked by
 * logit, ties by the lower id, so the result depends only on the logits, the config
 * and the Rng state; a non-greedy call draws exactly one number from the Rng.
 */
#include "infer.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    float logit;
    float weight; /* exp((logit - max) / T): the unnormalized probability */
    int id;
} Candidate;

/* The ranking: higher logit first, then lower id. A total order. */
static int ranks_before(const Candidate *a, const Candidate *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int compare_candidates(const void *pa, const void *pb) {
    const Candidate *a = pa, *b = pb;
    if (ranks_before(a, b)) return -1;
    if (ranks_before(b, a)) return 1;
    return 0;
}

static void swap(Candidate *a, Candidate *b) {
    Candidate t = *a;
    *a = *b;
    *b = t;
}

/* Moves the k best-ranked of c[0..n) to c[0..k) (in any order): quickselect with a
 * middle pivot, O(n) on average. */
static void select_best(Candidate *c, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        swap(&c[(lo + hi) / 2], &c[hi]);
        Candidate pivot = c[hi];
        int store = lo;
        for (int i = lo; i < hi; i++)
            if (ranks_before(&c[i], &pivot)) swap(&c[i], &c[store++]);
        swap(&c[store], &c[hi]);
        if (store == k - 1 || store == k) return;
        if (store < k) lo = store + 1;
        else hi = store - 1;
    }
}

static int argmax(const float *logits, int V) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

int sample_token(const float *logits, int V, const SamplerConfig *cfg, Rng *rng) {
    if (V <= 0) return -1;
    if (!(cfg->temperature > 0.0f)) return argmax(logits, V);

    const double inv_t = 1.0 / cfg->temperature;
    const int best = argmax(logits, V);
    const double top = logits[best];
    const int use_top_k = cfg->top_k > 0 && cfg->top_k < V;
    const int use_top_p = cfg->top_p > 0.0f && cfg->top_p < 1.0f;

    Candidate *c = malloc((size_t)V * sizeof *c);
    if (!c) return -1;
    /* Unnormalized probabilities, once per word, and their sum over the vocabulary. */
    double total = 0.0;
    for (int i = 0; i < V; i++) {
        float w = expf((float)((logits[i] - top) * inv_t));
        c[i] = (Candidate){logits[i], w, i};
        total += w;
    }
    if (!(total > 0.0) || !isfinite(total)) { /* NaN or infinite logits */
        free(c);
        return best;
    }
    /* A word with probability below (1 - p) / (V - 1) cannot be in the nucleus: all of
     * them together hold less than 1 - p, so the words ranked above them already reach
     * p (llama2.c's filter). Top-k keeps a prefix of the same ranking, so the filter
     * stays exact when both apply. Words of probability 0 are never drawn. */
    const double cutoff = use_top_p && V > 1 ? (1.0 - cfg->top_p) / (V - 1) * total : 0.0;
    int n = 0;
    for (int i = 0; i < V; i++)
        if (c[i].weight > 0.0f && c[i].weight >= cutoff) c[n++] = c[i];
    if (n == 0) c[n++] = (Candidate){logits[best], 1.0f, best};

    if (use_top_k && cfg->top_k < n) {
        select_best(c, n, cfg->top_k);
        n = cfg->top_k;
    }
    if (use_top_p) qsort(c, (size_t)n, sizeof *c, compare_candidates);

    double kept = 0.0;
    for (int i = 0; i < n; i++) kept += c[i].weight;
    if (use_top_p) { /* the shortest ranked prefix holding at least p of what is kept */
        double want = cfg->top_p * kept, cum = 0.0;
        int m = 0;
        while (m < n) {
            cum += c[m++].weight;
            if (cum >= want) break;
        }
        n = m;
        kept = cum;
    }

    double r = rng_uniform(rng) * kept, cum = 0.0;
    int chosen = c[n - 1].id;
    for (int i = 0; i < n; i++) {
        cum += c[i].weight;
        if (r < cum) {
            chosen = c[i].id;
            break;
        }
    }
    free(c);
    return chosen;
}

void top_probabilities(const float *logits, int V, int n, int *ids, float *probs) {
    const float max = logits[argmax(logits, V)];
    double total = 0.0;
    for (int v = 0; v < V; v++) total += exp((double)logits[v] - max);
    /* Insertion into the ranked list: a later id never passes an equal logit. */
    int filled = 0;
    for (int v = 0; v < V; v++) {
        int at = filled;
        while (at > 0 && logits[ids[at - 1]] < logits[v]) at--;
        if (at >= n) continue;
        int last = filled < n ? filled++ : n - 1;
        for (int i = last; i > at; i--) ids[i] = ids[i - 1];
        ids[at] = v;
    }
    for (int i = 0; i < n; i++) probs[i] = (float)(exp((double)logits[ids[i]] - max) / total);
}
