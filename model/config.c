/* config.c - checking a model configuration (config.h). */
#include "config.h"

int backpack_config_validate(const BackpackConfig *c, BpError *err) {
    if (c->arch != ARCH_BACKPACK && c->arch != ARCH_TRANSFORMER)
        return bp_fail(err, "model_type: unknown architecture %d", (int)c->arch);
    if (c->vocab_size < 2 || c->vocab_size > (1 << 24))
        return bp_fail(err, "vocab_size: %d is out of range [2, 16777216]", c->vocab_size);
    if (c->n_embd < 1 || c->n_embd > 16384)
        return bp_fail(err, "n_embd: %d is out of range [1, 16384]", c->n_embd);
    if (c->n_layer < 1 || c->n_layer > 256)
        return bp_fail(err, "n_layer: %d is out of range [1, 256]", c->n_layer);
    if (c->n_head < 1 || c->n_head > c->n_embd || c->n_embd % c->n_head != 0)
        return bp_fail(err, "n_head: %d does not divide n_embd %d", c->n_head, c->n_embd);
    if (c->n_positions < 1 || c->n_positions > (1 << 16))
        return bp_fail(err, "n_positions: %d is out of range [1, 65536]", c->n_positions);
    if (c->arch == ARCH_BACKPACK) {
        if (c->num_senses < 1 || c->num_senses > c->n_embd || c->n_embd % c->num_senses != 0)
            return bp_fail(err, "num_senses: %d does not divide n_embd %d", c->num_senses,
                           c->n_embd);
        if (c->sense_intermediate_scale < 1 || c->sense_intermediate_scale > 64)
            return bp_fail(err, "sense_intermediate_scale: %d is out of range [1, 64]",
                           c->sense_intermediate_scale);
    }
    /* The whole model must fit comfortably in memory indices (< 2^34 floats). */
    double d = c->n_embd, total = (double)c->vocab_size * d + (double)c->n_positions * d +
                                  (double)c->n_layer * (12.0 * d * d + 13.0 * d);
    if (c->arch == ARCH_BACKPACK)
        total += (double)c->sense_intermediate_scale * d * d * (3.0 + c->num_senses) +
                 2.0 * d * d;
    if (total > 17179869184.0)
        return bp_fail(err, "n_embd: a model of %.3g parameters is too large", total);
    return 0;
}
