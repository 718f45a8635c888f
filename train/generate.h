/* generate.h - sampling text from a model one token at a time through model/infer.h
 * (key/value caches and sense caches: each new token costs O(context)).
 *
 * The prompt is fed token by token; then each sampled token is handed to a callback as
 * soon as it is chosen (the CLI writes its bytes and flushes) and fed back. Generation
 * stops after max_tokens, when the callback asks, or cleanly at the context limit: the
 * model sees at most n_positions tokens, so at most n_positions - prompt + 1 tokens are
 * generated. Temperature 0 is greedy and deterministic; otherwise the seed fixes the
 * samples.
 */
#ifndef BP_GENERATE_H
#define BP_GENERATE_H

#include <stdint.h>

#include "../model/infer.h"

typedef struct {
    SamplerConfig sampler;   /* temperature, top_k (0 = off), top_p (1 = off) */
    int max_tokens;          /* tokens to generate, > 0 */
    uint64_t seed;
    const struct QuantModel *quant; /* int8 weights (model/quant.h), or NULL: float */
} GenerateConfig;

/* Called with each generated token; a non-zero return stops generation. */
typedef int (*GenerateCallback)(int token, void *ctx);

typedef struct {
    int generated;           /* tokens produced */
    int hit_context_limit;   /* 1 when the context filled before max_tokens */
} GenerateResult;

/* edits may be NULL. prompt holds n_prompt >= 1 ids. */
int generate(const Backpack *m, const SenseEdits *edits, const int *prompt, int n_prompt,
             const GenerateConfig *cfg, GenerateCallback on_token, void *ctx,
             GenerateResult *result, BpError *err);

/* The `top` most probable next tokens after the prompt (softmax of the logits), most
 * probable first (lowest id on ties): ids (top) and probs (top). For looking at what an
 * edit does to one prediction. */
int next_token_top(const Backpack *m, const SenseEdits *edits, const int *prompt, int n_prompt,
                   int top, int *ids, float *probs, BpError *err);

#endif
