/* cmd_eval.c - `backpack eval`: mean loss and perplexity of a model on a token file or a
 * text file (train/evaluate.h says how the text is cut into windows), optionally with
 * the sense edits of a sense database in force. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fileio.h"
#include "../model/checkpoint.h"
#include "../senses/edits.h"
#include "../text/tokenizer.h"
#include "../text/tokfile.h"
#include "../common/args.h"
#include "../train/compat.h"
#include "../train/evaluate.h"
#include "commands.h"

#include <cblas.h>
#include <omp.h>

static const char eval_synopsis[] =
    "usage: backpack eval --model DIR (--data FILE.tok | --text FILE) [--edits DB]\n"
    "                     [--layers PLAN] [--context N] [--batch B] [--threads N]\n"
    "Mean cross-entropy (nats per token) and perplexity = exp(mean loss). The text is cut\n"
    "into windows of N tokens (default: the model's n_positions); every token after the\n"
    "first is predicted once, from the tokens before it in its window. A text file is\n"
    "encoded with the tokenizer in the model directory.\n";

int cmd_eval(int argc, char **argv) {
    BpError err = {{0}};
    const char *model_dir = NULL, *data = NULL, *text = NULL, *edits_db = NULL, *layers = NULL;
    int context = 0, batch = 8, threads = 0;
    const ArgOption opts[] = {
        {"--model", ARG_STRING, &model_dir, .meta = "DIR", .help = "the model (a checkpoint directory)"},
        {"--data", ARG_STRING, &data, .meta = "FILE.tok", .help = "a token file (backpack tokenize)"},
        {"--text", ARG_STRING, &text, .meta = "FILE", .help = "a text file, encoded with the model's tokenizer"},
        {"--edits", ARG_STRING, &edits_db, .meta = "DB", .help = "with the sense edits of this sense database"},
        {"--layers", ARG_STRING, &layers, .meta = "PLAN", .help = "run the blocks as PLAN: 0,2,1,3 or 0,(1+2)*3,3 (docs/layer-plans.md)"},
        {"--context", ARG_INT, &context, 1, 1 << 20, "N", "tokens per window (the model's n_positions)", 0},
        {"--batch", ARG_INT, &batch, 1, 4096, "B", "windows per forward pass (8)", 0},
        {"--threads", ARG_INT, &threads, 0, 1024, "N", "threads (0: OpenMP's default)", 0},
        {0}};
    const ArgSpec spec = {"eval", eval_synopsis, opts, .given = NULL};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    if (!model_dir) return cli_usage_error("eval: --model DIR is required");
    if ((data != NULL) == (text != NULL)) return cli_usage_error("eval: give exactly one of --data FILE.tok and --text FILE");
    if (threads > 0) {
        omp_set_num_threads(threads);
        openblas_set_num_threads(threads);
    }

    Backpack m;
    if ((st = cli_load_model("eval", model_dir, &context, &m)) != 0) return st;
    LayerPlan plan = {0};
    if ((st = cli_layers(layers, &m, &plan)) != 0) {
        backpack_free(&m);
        return st;
    }
    SenseEdits edits = {0};
    int have_edits = 0, rc = 1;
    int *ids = NULL;
    TokFile tf;
    int tf_open = 0;
    if (edits_db) {
        if (sense_edits_load(edits_db, &m, &edits, &err) != 0) goto done;
        have_edits = 1;
        m.edits = &edits;
    }
    EvalResult res;
    if (data) {
        /* the data must be the model's tokenizer's (when the model has its tokenizer) */
        char vocab_json[4096 + 16];
        snprintf(vocab_json, sizeof vocab_json, "%s/vocab.json", model_dir);
        if (file_exists(vocab_json) && compat_check_tokfile(data, model_dir, m.config.vocab_size, &err) != 0)
            goto done;
        if (tokfile_open(&tf, data, &err) != 0) goto done;
        tf_open = 1;
        if (evaluate_tokfile(&m, &tf, context, batch, 0, &res, &err) != 0) {
            bp_error_prefix(&err, "%s", data);
            goto done;
        }
    } else {
        Tokenizer *tok;
        char *content;
        size_t len, n = 0, cap = 0;
        if (compat_load_tokenizer(&tok, model_dir, m.config.vocab_size, &err) != 0) goto done;
        if (read_file(text, &content, &len, &err) != 0) {
            tokenizer_free(tok);
            goto done;
        }
        int erc = tokenizer_encode(tok, content, len, &ids, &n, &cap, &err);
        free(content);
        tokenizer_free(tok);
        if (erc != 0) {
            bp_error_prefix(&err, "%s", text);
            goto done;
        }
        if (evaluate_ids(&m, ids, n, context, batch, 0, &res, &err) != 0) {
            bp_error_prefix(&err, "%s", text);
            goto done;
        }
    }
    printf("loss %.4f  perplexity %.2f  (%llu tokens predicted, %llu windows of up to %d tokens%s%s%s)\n",
           res.mean_loss, res.perplexity, (unsigned long long)res.predictions,
           (unsigned long long)res.windows, context, have_edits ? ", with edits" : "",
           layers ? ", layers " : "", layers ? layers : "");
    rc = 0;
done:
    if (rc) cli_error(err.msg);
    if (tf_open) tokfile_close(&tf);
    free(ids);
    if (have_edits) sense_edits_free(&edits);
    layer_plan_free(&plan);
    backpack_free(&m);
    return rc;
}
