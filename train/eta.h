/* eta.h - where a run stands against its budget: the fraction spent (it drives the
 * learning-rate decay), the time left, and the progress line on stderr. */
#ifndef BP_ETA_H
#define BP_ETA_H

#include <stddef.h>
#include <stdint.h>

#include "trainer.h"

/* Fraction of the budget spent, the largest over the limits that are set. */
double budget_progress(const TrainConfig *c, uint64_t step, uint64_t tokens, double elapsed);

/* Seconds to the nearest limit at `per_step` seconds a step (INFINITY when unknown). */
double eta_seconds(const TrainConfig *c, uint64_t step, uint64_t tokens, double elapsed,
                   uint64_t step_tokens, double per_step);

/* "42s", "3m07s", "2h05m", or "?" for a negative or infinite time. */
void format_duration(double seconds, char *out, size_t n);

/* One progress report: with live set, rewrites the terminal line in place (ending it
 * only when newline is set); without, prints a line only when newline is set. */
void progress_print(const StepReport *r, uint64_t max_steps, double last_val_loss, double eta,
                    int live, int newline);

#endif
