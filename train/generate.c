#include "generate.h"

#include <string.h>

int generate(const Backpack *m, const SenseEdits *edits, const int *prompt, int n_prompt,
             const GenerateConfig *cfg, GenerateCallback on_token, void *ctx,
             GenerateResult *result, BpError *err) {
    memset(result, 0, sizeof *result);
    const int V = m->config.vocab_size, max_len = m->config.n_positions;
    if (n_prompt < 1) return bp_fail(err, "generate: the prompt is empty");
    if (n_prompt > max_len)
        return bp_fail(err, "generate: the prompt is %d tokens, the model's context is %d",
                       n_prompt, max_len);
    if (cfg->max_tokens < 1) return bp_fail(err, "generate: max tokens %d", cfg->max_tokens);
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= V)
            return bp_fail(err, "generate: prompt token %d has id %d, outside the vocabulary of %d",
                           i, prompt[i], V);

    InferState s;
    if (infer_build(&s, m, max_len, err) != 0) return -1;
    infer_set_edits(&s, edits);
    infer_set_quant(&s, cfg->quant);
    infer_reset(&s);
    Rng rng;
    rng_seed(&rng, cfg->seed);
    /* Greedy decoding needs only the argmax: infer_step_greedy finds the same token as
     * argmax(infer_step) without the full-precision V x d product. */
    const int greedy = cfg->sampler.temperature <= 0.0f;
    int rc = 0, token = -1;
    for (int i = 0; i + 1 < n_prompt && rc == 0; i++) rc = infer_feed(&s, prompt[i], err);
    int next = prompt[n_prompt - 1];
    while (rc == 0) {
        if (greedy) {
            token = infer_step_greedy(&s, next, err);
        } else {
            const float *logits = infer_step(&s, next, err);
            token = logits ? sample_token(logits, V, &cfg->sampler, &rng) : -1;
            if (logits && token < 0) bp_fail(err, "generate: out of memory while sampling");
        }
        if (token < 0) {
            rc = -1;
            break;
        }
        result->generated++;
        if (on_token && on_token(token, ctx) != 0) break;
        if (result->generated >= cfg->max_tokens) break;
        if (s.len >= s.max_len) {
            result->hit_context_limit = 1;
            break;
        }
        next = token;
    }
    infer_free(&s);
    return rc;
}

int next_token_top(const Backpack *m, const SenseEdits *edits, const int *prompt, int n_prompt,
                   int top, int *ids, float *probs, BpError *err) {
    const int V = m->config.vocab_size;
    if (n_prompt < 1 || n_prompt > m->config.n_positions)
        return bp_fail(err, "next tokens: the prompt is %d tokens, the model's context is %d",
                       n_prompt, m->config.n_positions);
    if (top < 1 || top > V) return bp_fail(err, "next tokens: %d of a vocabulary of %d", top, V);
    InferState s;
    if (infer_build(&s, m, n_prompt, err) != 0) return -1;
    infer_set_edits(&s, edits);
    infer_reset(&s);
    int rc = 0;
    for (int i = 0; i + 1 < n_prompt && rc == 0; i++) rc = infer_feed(&s, prompt[i], err);
    const float *logits = rc == 0 ? infer_step(&s, prompt[n_prompt - 1], err) : NULL;
    if (logits) top_probabilities(logits, V, top, ids, probs);
    else rc = -1;
    infer_free(&s);
    return rc;
}
