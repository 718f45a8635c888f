/* tool_train_quanteval - what `generate --quantize int8` costs in accuracy on a trained
 * model: perplexity on a token file and agreement of greedy tokens with the float
 * model, through the incremental step (model/infer.h) in float and with the int8 copies
 * of model/quant.h. Not a test: prints one JSON line per variant.
 *
 *   tool_train_quanteval --model DIR --data FILE.tok [--tokens N] [--groups 64,0,...]
 *                        [--prompts P] [--greedy G]
 *
 * Perplexity: non-overlapping windows of n_positions tokens from the start of the file
 * (N tokens at most, default 20000), every token after the first of a window predicted
 * from the ones before it (as `backpack eval` counts a window). Teacher-forced
 * agreement: how often the int8 argmax equals the float argmax at those positions.
 * Greedy agreement: P prompts (the first 16 tokens of the first P windows), G greedy
 * tokens each in float and in int8; the fraction of positions whose tokens are equal
 * before the first divergence, and the sequences that agree entirely.
 * Group 0 is one scale per row.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fileio.h"
#include "../model/checkpoint.h"
#include "../model/infer.h"
#include "../model/quant.h"
#include "../text/tokfile.h"

#define PROMPT 16

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* -log softmax(logits)[target] in double */
static double nll(const float *logits, int V, int target) {
    double mx = logits[0];
    for (int i = 1; i < V; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < V; i++) sum += exp((double)logits[i] - mx);
    return log(sum) + mx - logits[target];
}

static void die(const char *msg) {
    fprintf(stderr, "quanteval: %s\n", msg);
    exit(1);
}

int main(int argc, char **argv) {
    const char *model_dir = NULL, *data = NULL, *groups_arg = "64,0";
    long max_tokens = 20000;
    int prompts = 20, greedy = 32;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) model_dir = argv[i + 1];
        else if (!strcmp(argv[i], "--data")) data = argv[i + 1];
        else if (!strcmp(argv[i], "--tokens")) max_tokens = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--groups")) groups_arg = argv[i + 1];
        else if (!strcmp(argv[i], "--prompts")) prompts = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--greedy")) greedy = atoi(argv[i + 1]);
        else die("unknown option (see the header of tests/tool_train_quanteval.c)");
    }
    if (!model_dir || !data) die("--model DIR and --data FILE are required");
    BpError err = {0};
    Backpack m;
    if (checkpoint_load(&m, model_dir, &err)) die(err.msg);
    TokFile tf;
    if (tokfile_open(&tf, data, &err)) die(err.msg);
    const int T = m.config.n_positions, V = m.config.vocab_size;
    size_t n = tf.count < (size_t)max_tokens ? tf.count : (size_t)max_tokens;
    const size_t windows = n / (size_t)T;
    if (windows == 0 || PROMPT + greedy > T) die("too few tokens for one window, or --greedy too long");
    if ((size_t)prompts > windows) prompts = (int)windows;
    int *ids = malloc(windows * T * sizeof(int));
    for (size_t i = 0; i < windows * T; i++)
        if ((ids[i] = (int)tokfile_get(&tf, i)) >= V) die("a token id is outside the model's vocabulary");

    /* variant 0: float; then one per group */
    int groups[16], n_variants = 1;
    for (const char *p = groups_arg; *p && n_variants < 16;) {
        groups[n_variants++] = atoi(p);
        p = strchr(p, ',');
        if (!p) break;
        p++;
    }
    InferState s;
    if (infer_build(&s, &m, T, &err)) die(err.msg);
    int *float_argmax = malloc(windows * T * sizeof(int));
    int *float_greedy = malloc((size_t)prompts * greedy * sizeof(int));
    for (int var = 0; var < n_variants; var++) {
        QuantModel *q = NULL;
        double t0 = now_seconds();
        if (var > 0 && !(q = quant_build(&m, groups[var], &err))) die(err.msg);
        infer_set_quant(&s, q);
        double sum = 0.0;
        long count = 0, agree = 0;
        for (size_t w = 0; w < windows; w++) {
            infer_reset(&s);
            const int *x = ids + w * T;
            for (int i = 0; i < T; i++) {
                const float *logits = infer_step(&s, x[i], &err);
                if (!logits) die(err.msg);
                if (i + 1 < T) {
                    sum += nll(logits, V, x[i + 1]);
                    count++;
                }
                const int a = argmax(logits, V);
                if (var == 0) float_argmax[w * T + i] = a;
                else agree += a == float_argmax[w * T + i];
            }
        }
        long same_prefix = 0, same_all = 0;
        for (int p = 0; p < prompts; p++) {
            infer_reset(&s);
            const int *x = ids + (size_t)p * T;
            for (int i = 0; i + 1 < PROMPT; i++)
                if (infer_feed(&s, x[i], &err)) die(err.msg);
            int tok = x[PROMPT - 1], diverged = 0;
            for (int g = 0; g < greedy; g++) {
                tok = infer_step_greedy(&s, tok, &err);
                if (tok < 0) die(err.msg);
                if (var == 0) float_greedy[p * greedy + g] = tok;
                else if (!diverged && tok == float_greedy[p * greedy + g]) same_prefix++;
                else diverged = 1;
            }
            same_all += var > 0 && !diverged;
        }
        printf("{\"variant\": \"%s\", \"group\": %d, \"tokens\": %ld, \"ppl\": %.4f, "
               "\"argmax_agreement\": %.4f, \"greedy_prefix_agreement\": %.4f, "
               "\"greedy_sequences_equal\": %ld, \"prompts\": %d, \"greedy_tokens\": %d, "
               "\"int8_bytes\": %zu, \"seconds\": %.1f}\n",
               var == 0 ? "float" : "int8", var == 0 ? -1 : groups[var], count, exp(sum / count),
               var == 0 ? 1.0 : (double)agree / (double)(windows * T),
               var == 0 ? 1.0 : (double)same_prefix / (double)(prompts * greedy), var == 0 ? prompts : same_all,
               prompts, greedy, q ? q->bytes : (size_t)0, now_seconds() - t0);
        fflush(stdout);
        infer_set_quant(&s, NULL);
        quant_free(q);
    }
    infer_free(&s);
    free(ids);
    free(float_argmax);
    free(float_greedy);
    tokfile_close(&tf);
    backpack_free(&m);
    return 0;
}
