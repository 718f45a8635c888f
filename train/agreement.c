/* agreement.c - configuration and data comparisons between processes (see agreement.h). */
#include "agreement.h"

#include <string.h>

const char *train_config_difference(const TrainConfig *a, const TrainConfig *b) {
    const BackpackConfig *x = &a->model, *y = &b->model;
#define DIFF(cond, flag) \
    if (!(cond)) return flag
    DIFF(x->arch == y->arch, "--arch");
    DIFF(x->vocab_size == y->vocab_size, "the vocabulary (--tokenizer)");
    DIFF(x->n_embd == y->n_embd, "--d");
    DIFF(x->n_layer == y->n_layer, "--layers");
    DIFF(x->n_head == y->n_head, "--heads");
    DIFF(x->arch == ARCH_TRANSFORMER || x->num_senses == y->num_senses, "--senses");
    DIFF(x->n_positions == y->n_positions && a->context == b->context, "--context");
    DIFF(x->sense_intermediate_scale == y->sense_intermediate_scale, "the sense network's width");
    DIFF(a->batch == b->batch, "--batch");
    DIFF(a->accum == b->accum, "--accum");
    DIFF(a->max_steps == b->max_steps && a->max_tokens == b->max_tokens &&
             !memcmp(&a->max_minutes, &b->max_minutes, sizeof a->max_minutes),
         "the budget (--steps, --tokens, --minutes)");
    DIFF(!memcmp(&a->lr, &b->lr, sizeof a->lr), "--lr");
    DIFF(a->warmup == b->warmup, "--warmup");
    DIFF(!memcmp(&a->weight_decay, &b->weight_decay, sizeof(float)), "--weight-decay");
    DIFF(!memcmp(&a->clip, &b->clip, sizeof(float)), "--clip");
    DIFF(!memcmp(&a->dropout, &b->dropout, sizeof(float)), "--dropout");
    DIFF(!memcmp(&a->beta1, &b->beta1, sizeof(float)) && !memcmp(&a->beta2, &b->beta2, sizeof(float)) &&
             !memcmp(&a->eps, &b->eps, sizeof(float)),
         "the AdamW betas or eps");
    DIFF(a->seed == b->seed, "--seed");
    DIFF(a->eval_every == b->eval_every, "--eval-every");
    DIFF(a->eval_batches == b->eval_batches, "--eval-batches");
    DIFF(a->save_every == b->save_every, "--save-every");
    DIFF(a->zero == b->zero, "--zero");
#undef DIFF
    return NULL;
}

TokFileFingerprint tokfile_fingerprint(const TokFile *tf) {
    TokFileFingerprint f = {.count = tf->count, .vocab_size = tf->vocab_size,
                            .hash = 0xcbf29ce484222325ULL};
    const uint64_t samples = (uint64_t)1 << 20;
    uint64_t stride = tf->count > samples ? tf->count / samples : 1;
    for (uint64_t i = 0; i < tf->count; i += stride) {
        uint32_t id = tokfile_get(tf, i);
        for (int b = 0; b < 4; b++) {
            f.hash ^= (id >> (8 * b)) & 0xff;
            f.hash *= 0x100000001b3ULL;
        }
    }
    return f;
}
