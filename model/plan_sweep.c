/* plan_sweep.c - the painters' interventions as plans, and the layer similarity. */
#include "plan_sweep.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/rng.h"

int layer_sweep_count(int n_layer, int seeds) {
    int middle = n_layer - 2;
    if (middle < 1) return 1 + n_layer;
    return 1 + n_layer + middle + 1 + 1 + seeds + 1 + SWEEP_MAX_LOOP;
}

const char *layer_sweep_kind_name(SweepKind kind) {
    static const char *const names[] = {"baseline", "skip",     "skip-middle", "repeat-middle",
                                        "reverse",  "random",   "parallel",    "looped-parallel"};
    return kind <= SWEEP_LOOPED ? names[kind] : "?";
}

/* Appends "a,b,c" of blocks[0..n) to text. */
static void join_blocks(char *text, size_t size, const int *blocks, int n, const char *sep) {
    size_t len = strlen(text);
    for (int i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(text + len, size - len, "%s%d", i ? sep : "", blocks[i]);
}

/* 0, <middle as given>, L-1 with the middle joined by sep and wrapped in fmt's %s. */
static void frame(SweepPlan *p, int L, const int *middle, int n, const char *sep,
                  const char *before, const char *after) {
    char inner[LAYER_PLAN_TEXT_MAX] = "";
    join_blocks(inner, sizeof inner, middle, n, sep);
    snprintf(p->text, sizeof p->text, "0,%s%s%s%s%d", before, inner, after, n ? "," : "", L - 1);
}

static SweepPlan *add(SweepPlan *out, int *count, SweepKind kind, int param) {
    SweepPlan *p = &out[(*count)++];
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->param = param;
    return p;
}

int layer_sweep_plans(int L, int seeds, uint64_t seed, SweepPlan *out) {
    int count = 0, blocks[256], mid = L - 2;
    if (L > 256) return 0;
    for (int i = 0; i < L; i++) blocks[i] = i;
    SweepPlan *p = add(out, &count, SWEEP_BASELINE, 0);
    snprintf(p->name, sizeof p->name, "baseline");
    join_blocks(p->text, sizeof p->text, blocks, L, ",");
    for (int l = 0; l < L && L > 1; l++) {
        p = add(out, &count, SWEEP_SKIP_ONE, l);
        snprintf(p->name, sizeof p->name, "skip %d", l);
        int kept[256], n = 0;
        for (int i = 0; i < L; i++)
            if (i != l) kept[n++] = i;
        join_blocks(p->text, sizeof p->text, kept, n, ",");
    }
    if (mid < 1) return count;
    const int *middle = blocks + 1;
    for (int M = 1; M <= mid; M++) {  /* remove [start, start + M) of the middle */
        p = add(out, &count, SWEEP_SKIP_MIDDLE, M);
        snprintf(p->name, sizeof p->name, "skip middle M=%d", M);
        int start = 1 + (mid - M) / 2, kept[256], n = 0;
        for (int i = 0; i < L; i++)
            if (i < start || i >= start + M) kept[n++] = i;
        join_blocks(p->text, sizeof p->text, kept, n, ",");
    }
    int centre = 1 + (mid - 1) / 2, repeated[256];
    for (int i = 0; i < mid; i++) repeated[i] = centre;
    p = add(out, &count, SWEEP_REPEAT_MIDDLE, centre);
    snprintf(p->name, sizeof p->name, "repeat middle (%d x%d)", centre, mid);
    frame(p, L, repeated, mid, ",", "", "");
    int reversed[256];
    for (int i = 0; i < mid; i++) reversed[i] = middle[mid - 1 - i];
    p = add(out, &count, SWEEP_REVERSE, 0);
    snprintf(p->name, sizeof p->name, "reverse middle");
    frame(p, L, reversed, mid, ",", "", "");
    Rng rng;
    rng_seed(&rng, seed);
    for (int s = 0; s < seeds; s++) {
        int order[256];
        memcpy(order, middle, (size_t)mid * sizeof(int));
        for (int i = mid - 1; i > 0; i--) {  /* Fisher-Yates */
            int j = (int)rng_below(&rng, (uint64_t)i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        p = add(out, &count, SWEEP_RANDOM, s);
        snprintf(p->name, sizeof p->name, "random order %d", s);
        frame(p, L, order, mid, ",", "", "");
    }
    p = add(out, &count, SWEEP_PARALLEL, 1);
    snprintf(p->name, sizeof p->name, "parallel middle");
    frame(p, L, middle, mid, "+", "", "");
    for (int r = 1; r <= SWEEP_MAX_LOOP; r++) {
        char loop[16];
        snprintf(loop, sizeof loop, ")*%d", r);
        p = add(out, &count, SWEEP_LOOPED, r);
        snprintf(p->name, sizeof p->name, "looped parallel r=%d", r);
        frame(p, L, middle, mid, "+", "(", loop);
    }
    return count;
}

long layer_similarity_add(const Backpack *m, double *sum) {
    const float *h = backpack_block_outputs(m);
    if (!h) return -1;
    const int L = m->config.n_layer, d = m->config.n_embd;
    const size_t N = (size_t)m->batch_size * m->seq_len;
    double *norm = malloc((size_t)L * sizeof(double));
    if (!norm) return -1;
    for (size_t t = 0; t < N; t++) {
        for (int i = 0; i < L; i++) {
            const float *a = h + ((size_t)i * N + t) * d;
            double s = 0;
            for (int k = 0; k < d; k++) s += (double)a[k] * a[k];
            norm[i] = sqrt(s);
        }
        for (int i = 0; i < L; i++)
            for (int j = i; j < L; j++) {
                const float *a = h + ((size_t)i * N + t) * d, *b = h + ((size_t)j * N + t) * d;
                double dot = 0;
                for (int k = 0; k < d; k++) dot += (double)a[k] * b[k];
                double c = norm[i] > 0 && norm[j] > 0 ? dot / (norm[i] * norm[j]) : 0;
                sum[i * L + j] += c;
                if (j != i) sum[j * L + i] += c;
            }
    }
    free(norm);
    return (long)N;
}
