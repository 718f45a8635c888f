/* config.c - checking a model configuration; attention names (config.h). */
#include "config.h"

#include <stdio.h>
#include <string.h>

static const char *const ATTENTION_NAMES[ATTN_NUM_KINDS] = {
    "dot", "dense", "random", "fixed-random", "factorized-dense", "factorized-random"};

static unsigned attention_kind(const char *name, size_t len) {
    for (int i = 0; i < ATTN_NUM_KINDS; i++)
        if (strlen(ATTENTION_NAMES[i]) == len && !strncmp(name, ATTENTION_NAMES[i], len))
            return 1u << i;
    return 0;
}

int attention_parse(const char *name, unsigned *kinds, BpError *err) {
    static const char mix[] = "mix:";
    if (strncmp(name, mix, sizeof mix - 1) != 0) {
        unsigned k = attention_kind(name, strlen(name));
        if (!k)
            return bp_fail(err, "attention: unknown variant '%.40s' (dot, dense, random, "
                           "fixed-random, factorized-dense, factorized-random, mix:A+B)", name);
        *kinds = k;
        return 0;
    }
    unsigned set = 0;
    for (const char *p = name + sizeof mix - 1;;) {
        const char *end = strchr(p, '+');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        unsigned k = attention_kind(p, len);
        if (!k)
            return bp_fail(err, "attention: '%.40s': unknown part '%.*s'", name,
                           (int)(len < 40 ? len : 40), p);
        if (set & k)
            return bp_fail(err, "attention: '%.40s' names '%.*s' twice", name, (int)len, p);
        set |= k;
        if (!end) break;
        p = end + 1;
    }
    if (attention_count(set) < 2)
        return bp_fail(err, "attention: '%.40s' mixes fewer than two variants", name);
    *kinds = set;
    return 0;
}

void attention_name(unsigned kinds, char *out, size_t size) {
    kinds = kinds ? kinds : ATTN_DOT;
    size_t used = 0;
    if (attention_count(kinds) > 1) used = (size_t)snprintf(out, size, "mix:");
    for (int i = 0; i < ATTN_NUM_KINDS && used < size; i++)
        if (kinds & (1u << i))
            used += (size_t)snprintf(out + used, size - used, "%s%s",
                                     used > 4 && attention_count(kinds) > 1 ? "+" : "",
                                     ATTENTION_NAMES[i]);
}

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
    if (c->attention & ~ATTN_ALL)
        return bp_fail(err, "attention: unknown variant set 0x%x", c->attention);
    /* The whole model must fit comfortably in memory indices (< 2^34 floats). */
    double d = c->n_embd, total = (double)c->vocab_size * d + (double)c->n_positions * d +
                                  (double)c->n_layer * (12.0 * d * d + 13.0 * d);
    if (c->arch == ARCH_BACKPACK)
        total += (double)c->sense_intermediate_scale * d * d * (3.0 + c->num_senses) +
                 2.0 * d * d;
    /* the Synthesizer's score tables: up to 2 (H n n) + 2 (H n r) per layer */
    unsigned kinds = attention_kinds(c);
    double n = c->n_positions, tables = 0;
    if (kinds & ATTN_RANDOM) tables += n * n;
    if (kinds & ATTN_FIXED_RANDOM) tables += n * n;
    if (kinds & ATTN_FACTORIZED_RANDOM) tables += 2.0 * n * synth_rank(c->n_positions);
    total += (double)c->n_layer * ((double)c->n_head * tables + 2.0 * d * (d + n));
    if (total > 17179869184.0)
        return bp_fail(err, "n_embd: a model of %.3g parameters is too large", total);
    return 0;
}
