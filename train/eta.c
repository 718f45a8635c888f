/* eta.c - budget fraction, time left and the progress line (see eta.h). */
#include "eta.h"

#include <math.h>
#include <stdio.h>

double budget_progress(const TrainConfig *c, uint64_t step, uint64_t tokens, double elapsed) {
    double p = 0.0;
    if (c->max_steps) p = fmax(p, (double)step / (double)c->max_steps);
    if (c->max_tokens) p = fmax(p, (double)tokens / (double)c->max_tokens);
    if (c->max_minutes > 0) p = fmax(p, elapsed / (c->max_minutes * 60.0));
    return p;
}

double eta_seconds(const TrainConfig *c, uint64_t step, uint64_t tokens, double elapsed,
                   uint64_t step_tokens, double per_step) {
    double eta = INFINITY;
    if (c->max_steps) eta = fmin(eta, (double)(c->max_steps - step) * per_step);
    if (c->max_tokens)
        eta = c->max_tokens <= tokens
                  ? 0.0
                  : fmin(eta, (double)((c->max_tokens - tokens + step_tokens - 1) / step_tokens) * per_step);
    if (c->max_minutes > 0) eta = fmin(eta, fmax(0.0, c->max_minutes * 60.0 - elapsed));
    return eta;
}

void format_duration(double s, char *out, size_t n) {
    if (!isfinite(s) || s < 0) snprintf(out, n, "?");
    else if (s < 60) snprintf(out, n, "%.0fs", s);
    else if (s < 3600) snprintf(out, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(out, n, "%dh%02dm", (int)(s / 3600), ((int)s % 3600) / 60);
}

void progress_print(const StepReport *r, uint64_t max_steps, double last_val_loss, double eta,
                    int live, int newline) {
    if (!live && !newline) return;
    char val[32], eta_s[32], total[32] = "";
    if (isfinite(last_val_loss)) snprintf(val, sizeof val, "%.4f", last_val_loss);
    else snprintf(val, sizeof val, "-");
    format_duration(eta, eta_s, sizeof eta_s);
    if (max_steps) snprintf(total, sizeof total, "/%llu", (unsigned long long)max_steps);
    fprintf(stderr, "%sstep %llu%s | loss %.4f | val %s | lr %.2e | %.0f tok/s | ETA %s%s",
            live ? "\r\033[K" : "", (unsigned long long)r->step, total, r->loss, val, r->lr,
            r->tokens_per_s, eta_s, (live && !newline) ? "" : "\n");
    fflush(stderr);
}
