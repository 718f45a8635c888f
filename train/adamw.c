#include "adamw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

AdamWConfig adamw_default_config(void) {
    AdamWConfig c = {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f};
    return c;
}

int adamw_build(AdamW *opt, const AdamWConfig *cfg, size_t num_parameters,
                const ParamRange *decay, int num_decay, BpError *err) {
    memset(opt, 0, sizeof *opt);
    opt->config = *cfg;
    opt->num_parameters = num_parameters;
    for (int i = 0; i < num_decay; i++)
        if (decay[i].offset > num_parameters || decay[i].length > num_parameters - decay[i].offset)
            return bp_fail(err, "adamw: decay range %d [%zu, +%zu) outside %zu parameters", i,
                           decay[i].offset, decay[i].length, num_parameters);
    opt->m = calloc(num_parameters ? num_parameters : 1, sizeof(float));
    opt->v = calloc(num_parameters ? num_parameters : 1, sizeof(float));
    opt->decay = malloc((num_decay ? (size_t)num_decay : 1) * sizeof(ParamRange));
    if (!opt->m || !opt->v || !opt->decay) {
        adamw_free(opt);
        return bp_fail(err, "adamw: out of memory for %zu parameters", num_parameters);
    }
    if (num_decay) memcpy(opt->decay, decay, (size_t)num_decay * sizeof(ParamRange));
    opt->num_decay = num_decay;
    return 0;
}

int adamw_build_for_model(AdamW *opt, const AdamWConfig *cfg, const Backpack *m, BpError *err) {
    int n = backpack_num_param_entries(&m->config);
    ParamEntry *entries = calloc((size_t)(n > 0 ? n : 1), sizeof(ParamEntry));
    ParamRange *ranges = calloc((size_t)(n > 0 ? n : 1), sizeof(ParamRange));
    if (!entries || !ranges) {
        free(entries);
        free(ranges);
        return bp_fail(err, "adamw: out of memory");
    }
    backpack_param_entries(m, &m->params, entries);
    int num_decay = 0;
    for (int i = 0; i < n; i++) {
        if (!entries[i].is_matrix || !entries[i].data) continue;
        size_t len = 1;
        for (int k = 0; k < entries[i].ndim; k++) len *= (size_t)entries[i].shape[k];
        ranges[num_decay].offset = (size_t)(entries[i].data - m->params_memory);
        ranges[num_decay].length = len;
        num_decay++;
    }
    int rc = adamw_build(opt, cfg, m->num_parameters, ranges, num_decay, err);
    free(entries);
    free(ranges);
    return rc;
}

void adamw_free(AdamW *opt) {
    free(opt->m);
    free(opt->v);
    free(opt->decay);
    memset(opt, 0, sizeof *opt);
}

int adamw_shard(AdamW *opt, size_t offset, size_t length, BpError *err) {
    if (offset > opt->num_parameters || length > opt->num_parameters - offset)
        return bp_fail(err, "adamw: shard [%zu, +%zu) outside %zu parameters", offset, length,
                       opt->num_parameters);
    size_t keep = length ? length : 1;
    memmove(opt->m, opt->m + offset, length * sizeof(float));
    memmove(opt->v, opt->v + offset, length * sizeof(float));
    float *m = realloc(opt->m, keep * sizeof(float)), *v = realloc(opt->v, keep * sizeof(float));
    if (m) opt->m = m;
    if (v) opt->v = v;
    int n = 0;
    for (int i = 0; i < opt->num_decay; i++) {
        size_t lo = opt->decay[i].offset, hi = lo + opt->decay[i].length;
        if (lo < offset) lo = offset;
        if (hi > offset + length) hi = offset + length;
        if (lo >= hi) continue;
        opt->decay[n++] = (ParamRange){.offset = lo - offset, .length = hi - lo};
    }
    opt->num_decay = n;
    opt->num_parameters = length;
    return 0;
}

/* The Adam update of params[lo, hi) with gradient grad_scale grads and weight decay wd
 * (0 for the undecayed). */
static void adamw_update_range(AdamW *opt, float *params, const float *grads, float grad_scale,
                               size_t lo, size_t hi, float lr, float wd, float bias1,
                               float bias2) {
    const float b1 = opt->config.beta1, b2 = opt->config.beta2, eps = opt->config.eps;
    float *m = opt->m, *v = opt->v;
#pragma omp parallel for simd schedule(static)
    for (size_t i = lo; i < hi; i++) {
        float g = grads[i] * grad_scale;
        float mi = b1 * m[i] + (1.0f - b1) * g;
        float vi = b2 * v[i] + (1.0f - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float m_hat = mi / bias1;
        float v_hat = vi / bias2;
        params[i] -= lr * (m_hat / (sqrtf(v_hat) + eps) + wd * params[i]);
    }
}

void adamw_step(AdamW *opt, float *params, const float *grads, float grad_scale, float lr) {
    opt->t++;
    float bias1 = 1.0f - powf(opt->config.beta1, (float)opt->t);
    float bias2 = 1.0f - powf(opt->config.beta2, (float)opt->t);
    /* Walk the parameters in order: undecayed gaps between the sorted decay ranges. The
     * ranges come from the entry table, which is in memory order; sort defensively. */
    ParamRange *r = opt->decay;
    for (int i = 1; i < opt->num_decay; i++)
        for (int j = i; j > 0 && r[j - 1].offset > r[j].offset; j--) {
            ParamRange tmp = r[j];
            r[j] = r[j - 1];
            r[j - 1] = tmp;
        }
    size_t pos = 0;
    for (int i = 0; i < opt->num_decay; i++) {
        size_t lo = r[i].offset, hi = r[i].offset + r[i].length;
        if (lo < pos) lo = pos;  /* overlapping ranges: decay each element once */
        if (hi <= lo) continue;
        adamw_update_range(opt, params, grads, grad_scale, pos, lo, lr, 0.0f, bias1, bias2);
        adamw_update_range(opt, params, grads, grad_scale, lo, hi, lr, opt->config.weight_decay,
                           bias1, bias2);
        pos = hi;
    }
    adamw_update_range(opt, params, grads, grad_scale, pos, opt->num_parameters, lr, 0.0f, bias1,
                       bias2);
}

/* Blocks of a fixed size, each summed in its vector lanes' fixed order, then the block
 * sums in block order: the same double whatever the number of threads. */
#define NORM_BLOCK ((size_t)1 << 16)

static double block_sum_of_squares(const float *x, size_t n) {
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (size_t i = 0; i < n; i++) sum += (double)x[i] * (double)x[i];
    return sum;
}

double grad_norm(const float *grads, size_t n) {
    const size_t blocks = (n + NORM_BLOCK - 1) / NORM_BLOCK;
    double *partial = malloc((blocks ? blocks : 1) * sizeof(double));
    double sum = 0.0;
    if (partial) {
#pragma omp parallel for schedule(static)
        for (size_t b = 0; b < blocks; b++) {
            const size_t lo = b * NORM_BLOCK, len = n - lo < NORM_BLOCK ? n - lo : NORM_BLOCK;
            partial[b] = block_sum_of_squares(grads + lo, len);
        }
        for (size_t b = 0; b < blocks; b++) sum += partial[b];
        free(partial);
    } else /* the same sums, one thread */
        for (size_t lo = 0; lo < n; lo += NORM_BLOCK)
            sum += block_sum_of_squares(grads + lo, n - lo < NORM_BLOCK ? n - lo : NORM_BLOCK);
    return sqrt(sum);
}

float clip_factor(double norm, double max_norm) {
    if (max_norm > 0.0 && isfinite(norm) && norm > max_norm) return (float)(max_norm / norm);
    return 1.0f;
}

float lr_schedule(float max_lr, uint64_t step, uint64_t warmup_steps, double progress,
                  double warmup_progress) {
    if (step < warmup_steps) return max_lr * (float)(step + 1) / (float)warmup_steps;
    if (progress >= 1.0) return 0.0f;
    if (warmup_progress >= 1.0) return 0.0f;
    if (warmup_progress < 0.0) warmup_progress = 0.0;
    double frac = (1.0 - progress) / (1.0 - warmup_progress);
    if (frac > 1.0) frac = 1.0;
    if (frac < 0.0) frac = 0.0;
    return (float)(max_lr * frac);
}
