/* infer.h - running a model one token at a time, for generation, eval with edits and
 * the sense browser.
 *
 * An InferState keeps key/value caches of the transformer, the sense-weight keys and
 * the sense vectors of every token in the context, so each new token costs O(context)
 * work instead of a full forward. Its logits equal the full forward's to float
 * rounding (tests/test_model_incremental.c checks 1e-5).
 *
 * Lifetime follows llama2.c: infer_build / infer_free; infer_reset starts a new text.
 * An InferState reads its model without changing it (several states may share one)
 * and must not be used by two threads at once.
 *
 * Threads: each step is one OpenMP parallel region (OMP_NUM_THREADS threads) when the
 * model reads at least 2^20 weights per token; the calling thread runs the step and
 * shares each large matrix-vector product with the others as chunks (model/team.h), so
 * the threads wake once per token and a thread that another process keeps off its core
 * holds nothing up. Results do not depend on the number of threads (bit for bit).
 * Called from inside a parallel region, a step runs on the calling thread alone.
 */
#ifndef BP_INFER_H
#define BP_INFER_H

#include "backpack.h"

typedef struct GreedyScreen GreedyScreen; /* private to greedy.c */

typedef struct {
    const Backpack *model;
    int max_len;          /* capacity of the caches, at most n_positions */
    int len;              /* tokens fed so far */
    int *tokens;          /* (max_len) the context */
    const SenseEdits *edits;
    /* caches and scratch: private to infer.c (shapes documented there) */
    float *key_cache;     /* (L, max_len, d); NULL without dot-product attention */
    float *value_cache;   /* (L, max_len, d) */
    float *sense_keys;    /* (max_len, d) keys of the sense weights */
    float *sense_vectors; /* (max_len, k, d) C(x_j) of the context (edits applied) */
    float *alpha;         /* (k, max_len) alpha_l[last, j], with edit weights applied */
    float *logits;        /* (V) */
    float *scratch;       /* private */
    float *plan_buffers;  /* (plan buffers, d) the residual stream under m->plan */
    int *first_position;  /* (max_len) the first position j' <= j with x_j' == x_j */
    int *mix_rows;        /* (max_len k) rows of sense_vectors the mixing reads */
    GreedyScreen *screen; /* infer_step_greedy's int8 copy of E, built on its first call */
    struct Team *team;    /* the threads of a step (model/team.h) */
    const struct QuantModel *quant; /* int8 weights (infer_set_quant), or NULL: float */
} InferState;

/* Under m->plan (backpack.h) the blocks run as the plan says, each run of a block with
 * caches of its own; the plan must outlive the state. */
int infer_build(InferState *s, const Backpack *m, int max_len, BpError *err);
void infer_free(InferState *s);
void infer_reset(InferState *s);
/* Edits stay in force until changed; changing them requires infer_reset (cached sense
 * vectors depend on them). infer_build starts with the model's m->edits. The edits
 * (and the vectors they point to) must outlive their use; edits naming a token or
 * sense out of range are ignored. Several edits of one (word, sense): weights
 * multiply, the last vector wins. */
void infer_set_edits(InferState *s, const SenseEdits *edits);

/* With q (model/quant.h, built from the same model) the steps' large products use its
 * int8 copies: logits are then E_q o_q, and infer_step_greedy returns their argmax
 * (lowest id on ties) instead of the float model's. NULL (the default) restores the
 * float path, bit for bit. q must outlive its use; changing it requires infer_reset. */
void infer_set_quant(InferState *s, const struct QuantModel *q);

/* Feeds one token and returns the logits (V) for the next one. Fails when the context
 * is full (s->len == s->max_len) or the token is out of range. */
const float *infer_step(InferState *s, int token, BpError *err);

/* infer_step without the logits (the V x d product): for a prompt's tokens whose
 * predictions are not needed. The caches, alpha and sense vectors are updated alike. */
int infer_feed(InferState *s, int token, BpError *err);

/* infer_step followed by greedy choice: returns argmax of the logits infer_step would
 * return (the lowest id on ties), bit for bit the same choice, or -1 with err set.
 * Faster for a large vocabulary: it scores every word with an int8 copy of E (a
 * quarter of the memory traffic of the V x d product), bounds the rounding error of
 * each score, and computes the exact float logit only for the few words whose bound
 * reaches the best. The first call builds the copy (V d bytes, O(V d) time; may fail
 * for lack of memory); s->logits is left unspecified.
 * Alpha and the sense vectors are updated as by infer_step. */
int infer_step_greedy(InferState *s, int token, BpError *err);

/* q[i] = round(x[i] / s) clamped to [-127, 127] (all 0 when s is 0 or not finite): the
 * int8 rounding of the greedy screen, shared with the sense export's screen
 * (senses/export_screen.c). Returns max_i |x[i] - s q[i]| (s q[i] is exact in double). */
double quantize_int8(int8_t *q, const float *x, size_t n, float s);
/* y[r] = sum_i o_q[i] row[r][i] over d_pad bytes (a multiple of 64; o_q and the rows
 * 64-byte aligned), for 4 rows: exact in int32 (255 127 d_pad < 2^31 for any d below
 * 66,000). AVX-512 VNNI when built for it. Shared with the nearest-neighbour screen. */
void dot_rows4_int8(int32_t y[4], const int8_t *const row[4], const uint8_t *o_q, int d_pad);

/* After infer_step: alpha_l[last, j] for l < k, j < len, laid out (k, max_len), and
 * the context's sense vectors (len, k, d). For ARCH_TRANSFORMER both are NULL.
 * Word x_j's sense l added alpha[l * max_len + j] * (E C(x_j)_l)[t] to logit t: the
 * logits are exactly the sum of these contributions over (j, l). Without edits every
 * row of alpha sums to 1 over j < len; an edit weight w scales the entries of its
 * (word, sense) and nothing is renormalized. Vector edits are already substituted in
 * the sense vectors. */
const float *infer_alpha(const InferState *s);
const float *infer_context_senses(const InferState *s);

/* Sampling from logits: temperature 0 is greedy (argmax, lowest id on ties);
 * top_k 0 and top_p 1 disable those filters. Filters apply in Hugging Face's order:
 * temperature, top-k, then top-p on the renormalized top k. The result depends only
 * on the logits, cfg and the Rng state; a non-greedy call draws exactly one number
 * from rng, a greedy one none. Returns -1 only when V <= 0 or memory runs out (a
 * non-greedy call allocates V candidates). Logits that are NaN or infinite fall
 * back to the argmax. */
typedef struct {
    float temperature;
    int top_k;
    float top_p;
} SamplerConfig;
int sample_token(const float *logits, int V, const SamplerConfig *cfg, Rng *rng);

/* The n (1 <= n <= V) most probable tokens of logits, most probable first, ranked as
 * sample_token ranks them (higher logit, then lower id), with their probabilities
 * under softmax(logits): ids (n), probs (n). For showing a prediction; allocates
 * nothing, O(V n). */
void top_probabilities(const float *logits, int V, int n, int *ids, float *probs);

#endif
