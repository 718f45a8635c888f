/* cmd_generate.c - `backpack generate`: text from a prompt, streamed token by token
 * (train/generate.h), optionally with the sense edits of a sense database in force. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../model/checkpoint.h"
#include "../model/quant.h"
#include "../senses/edits.h"
#include "../text/tokenizer.h"
#include "../common/args.h"
#include "../train/compat.h"
#include "../train/generate.h"
#include "commands.h"

#include <cblas.h>
#include <omp.h>

static const char generate_synopsis[] =
    "usage: backpack generate --model DIR --prompt TEXT [options]\n"
    "Writes the prompt, then each new token as soon as it is chosen. Temperature 0 is\n"
    "greedy and deterministic. Generation stops after N tokens or when the model's context\n"
    "(n_positions tokens) is full. An empty prompt starts from <|endoftext|>.\n"
    "--layers PLAN runs the model's blocks as PLAN (docs/layer-plans.md).\n"
    "--next N first prints the N most probable next tokens after the prompt with their\n"
    "probabilities, one per line; with --max-tokens 0 nothing else.\n"
    "--quantize int8 generates with int8 copies of the weight matrices (faster, slightly\n"
    "different logits: bench/README.md); --next stays float.\n";

typedef struct {
    const Tokenizer *tok;
} StreamCtx;

static int write_token(int token, void *ctx) {
    const StreamCtx *s = ctx;
    size_t len;
    const char *bytes = tokenizer_token_bytes(s->tok, token, &len);
    if (bytes) fwrite(bytes, 1, len, stdout);
    fflush(stdout);
    return ferror(stdout) ? 1 : 0;  /* a closed pipe stops generation */
}

static int print_next_tokens(const Backpack *m, const SenseEdits *edits, const Tokenizer *tok,
                             const int *ids, int n, int top, BpError *err) {
    int *next = malloc((size_t)top * sizeof *next);
    float *probs = malloc((size_t)top * sizeof *probs);
    int rc = next && probs ? next_token_top(m, edits, ids, n, top, next, probs, err)
                           : bp_fail(err, "out of memory");
    for (int i = 0; rc == 0 && i < top; i++) {
        char readable[256];
        printf("%.6f  %6d  '%s'\n", probs[i], next[i],
               tokenizer_token_readable(tok, next[i], readable, sizeof readable));
    }
    free(next);
    free(probs);
    return rc;
}

int cmd_generate(int argc, char **argv) {
    BpError err = {{0}};
    const char *model_dir = NULL, *prompt = NULL, *edits_db = NULL, *layers = NULL, *quantize = NULL;
    GenerateConfig cfg = {.sampler = {.temperature = 0.8f, .top_k = 0, .top_p = 0.95f},
                          .max_tokens = 100};
    int seed_given = 0, threads = 0, next_top = 0;
    const ArgOption opts[] = {
        {"--model", ARG_STRING, &model_dir, .meta = "DIR", .help = "the model (a checkpoint directory with its tokenizer)"},
        {"--prompt", ARG_STRING, &prompt, .meta = "TEXT", .help = "the text to continue"},
        {"--max-tokens", ARG_INT, &cfg.max_tokens, 0, 1 << 24, "N", "new tokens at most (100)", 0},
        {"--temperature", ARG_FLOAT, &cfg.sampler.temperature, 0, 100, "T", "sampling temperature (0.8; 0: greedy)", 0},
        {"--top-k", ARG_INT, &cfg.sampler.top_k, 0, 1 << 24, "K", "sample among the K most probable (0: off)", 0},
        {"--top-p", ARG_FLOAT, &cfg.sampler.top_p, 1e-6, 1, "P", "nucleus: the smallest set with probability P (0.95)", 0},
        {"--seed", ARG_U64, &cfg.seed, 0, 0, "S", "seed of the sampler (random); the same seed repeats the text", 1},
        {"--edits", ARG_STRING, &edits_db, .meta = "DB", .help = "with the sense edits of this sense database"},
        {"--layers", ARG_STRING, &layers, .meta = "PLAN", .help = "run the blocks as PLAN: 0,2,1,3 or 0,(1+2)*3,3"},
        {"--threads", ARG_INT, &threads, 0, 1024, "N", "threads (0: OpenMP's default)", 0},
        {"--next", ARG_INT, &next_top, 1, 1000, "N", "first list the N most probable next tokens", 0},
        {"--quantize", ARG_STRING, &quantize, .meta = "int8", .help = "weights in int8 with per-group scales (float by default)"},
        {0}};
    unsigned given = 0;
    const ArgSpec spec = {"generate", generate_synopsis, opts, .given = &given};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    seed_given = (given & 1) != 0;
    if (!model_dir) return cli_usage_error("generate: --model DIR is required");
    if (!prompt) return cli_usage_error("generate: --prompt TEXT is required");
    if (cfg.max_tokens == 0 && next_top == 0)
        return cli_usage_error("generate: --max-tokens 0 needs --next N");
    if (quantize && strcmp(quantize, "int8") != 0)
        return cli_usage_error("generate: --quantize takes int8");
    if (!seed_given) cfg.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if (threads > 0) {
        omp_set_num_threads(threads);
        openblas_set_num_threads(threads);
    }

    Backpack m;
    Tokenizer *tok = NULL;
    SenseEdits edits = {0};
    int have_edits = 0, rc = 1;
    QuantModel *quant = NULL;
    int *ids = NULL;
    size_t n = 0, cap = 0;
    if (checkpoint_load(&m, model_dir, &err) != 0) return cli_error(err.msg);
    LayerPlan plan = {0};
    if ((st = cli_layers(layers, &m, &plan)) != 0) {
        backpack_free(&m);
        return st;
    }
    if (compat_load_tokenizer(&tok, model_dir, m.config.vocab_size, &err) != 0) goto done;
    if (edits_db) {
        if (sense_edits_load(edits_db, &m, &edits, &err) != 0) goto done;
        have_edits = 1;
    }
    if (tokenizer_encode(tok, prompt, strlen(prompt), &ids, &n, &cap, &err) != 0) goto done;
    if (n == 0) {
        int eot = tokenizer_eot(tok);
        if (eot < 0) {
            bp_fail(&err, "generate: the prompt is empty and the vocabulary has no <|endoftext|>");
            goto done;
        }
        int *one = realloc(ids, sizeof(int));
        if (!one) {
            bp_fail(&err, "out of memory");
            goto done;
        }
        ids = one;
        ids[0] = eot;
        n = 1;
    }
    if (n > (size_t)m.config.n_positions) {
        bp_fail(&err, "generate: the prompt is %zu tokens, the model's context is %d", n,
                m.config.n_positions);
        goto done;
    }
    if (next_top > 0 && print_next_tokens(&m, have_edits ? &edits : NULL, tok, ids, (int)n,
                                          next_top, &err) != 0)
        goto done;
    if (cfg.max_tokens == 0) {
        rc = 0;
        goto done;
    }
    if (quantize && !(quant = quant_build(&m, QUANT_DEFAULT_GROUP, &err))) goto done;
    cfg.quant = quant;
    fputs(prompt, stdout);
    fflush(stdout);
    StreamCtx ctx = {.tok = tok};
    GenerateResult res;
    if (generate(&m, have_edits ? &edits : NULL, ids, (int)n, &cfg, write_token, &ctx, &res, &err) != 0) {
        fputc('\n', stdout);
        goto done;
    }
    fputc('\n', stdout);
    fflush(stdout);
    if (res.hit_context_limit)
        fprintf(stderr, "backpack: generate: stopped at the context limit (%d tokens)\n",
                m.config.n_positions);
    rc = 0;
done:
    if (rc) cli_error(err.msg);
    free(ids);
    if (have_edits) sense_edits_free(&edits);
    quant_free(quant);
    if (tok) tokenizer_free(tok);
    layer_plan_free(&plan);
    backpack_free(&m);
    return rc;
}
