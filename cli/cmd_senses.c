/* cmd_senses.c - the sense-store subcommands: export, senses, nearest, similarity,
 * edit, edits. Each parses its options, calls senses/ and prints. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "../common/fileio.h"
#include "../model/checkpoint.h"
#include "../senses/similarity.h"
#include "../senses/store.h"
#include "../common/args.h"

/* ---- progress bar ------------------------------------------------------------------- */

typedef struct {
    double start;
    double bytes_total;  /* sense-vector bytes at fraction 1 */
    int tty;
    int last_percent;
} Progress;

static void progress_show(double fraction, void *ctx) {
    Progress *p = ctx;
    int percent = (int)(fraction * 100);
    if (!p->tty || percent == p->last_percent) return;
    p->last_percent = percent;
    double t = now_seconds() - p->start;
    double rate = t > 0 ? fraction * p->bytes_total / t / 1e6 : 0;
    double eta = fraction > 0 ? t * (1 - fraction) / fraction : 0;
    char bar[41];
    int filled = (int)(fraction * 40);
    for (int i = 0; i < 40; i++) bar[i] = i < filled ? '=' : ' ';
    bar[40] = 0;
    fprintf(stderr, "\rexport [%s] %3d%%  %6.1f MB/s  eta %4.0f s ", bar, percent, rate, eta);
    fflush(stderr);
}

/* ---- export ------------------------------------------------------------------------- */

int cmd_export(int argc, char **argv) {
    const char *synopsis =
        "usage: backpack export --model DIR --db FILE [--tokenizer DIR] [--top N] [--force]\n"
        "Writes every word's k sense vectors, norms and top/bottom words (by E C(x)_l)\n"
        "to an SQLite database.\n";
    const char *model_dir = NULL, *db = NULL, *tok_dir = NULL;
    ExportOptions opts = {0};
    BpError err = {0};
    char top_help[96];
    snprintf(top_help, sizeof top_help, "words per top/bottom list (%d, at least %d)", STORE_MIN_TOP_N,
             STORE_MIN_TOP_N);
    const ArgOption table[] = {
        {"--model", ARG_STRING, &model_dir, .meta = "DIR", .help = "the model"},
        {"--db", ARG_STRING, &db, .meta = "FILE", .help = "the sense database to write"},
        {"--tokenizer", ARG_STRING, &tok_dir, .meta = "DIR", .help = "names the tokens (DIR when it holds vocab.json)"},
        {"--top", ARG_INT, &opts.top_n, STORE_MIN_TOP_N, 10000, "N", top_help, 0},
        {"--chunk", ARG_INT, &opts.chunk_words, 1, 1 << 20, "N", "words per sense-network chunk (automatic)", 0},
        {"--force", ARG_FLAG, &opts.force, .help = "replace an existing sense database (and its edits)"},
        {0}};
    const ArgSpec spec = {"export", synopsis, table, .given = NULL};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    if (!model_dir || !db) return cli_usage_error("export: --model DIR and --db FILE are required");
    char vocab[4200];
    if (!tok_dir) {
        snprintf(vocab, sizeof vocab, "%s/vocab.json", model_dir);
        if (file_exists(vocab)) tok_dir = model_dir;
        else fprintf(stderr, "backpack: warning: %s has no vocab.json and no --tokenizer was given: tokens are named <id N>\n", model_dir);
    }
    Backpack m;
    if (checkpoint_load(&m, model_dir, &err)) return cli_error(err.msg);
    const BackpackConfig config = m.config, *c = &config;  /* m is freed before the summary */
    double sense_bytes = (double)c->vocab_size * c->num_senses * c->n_embd * sizeof(float);
    Progress p = {now_seconds(), sense_bytes, isatty(2), -1};
    opts.model_dir = model_dir;
    opts.progress = progress_show;
    opts.progress_ctx = &p;
    int r = store_export(&m, tok_dir, db, &opts, &err);
    if (p.tty && p.last_percent >= 0) fprintf(stderr, "\n");
    double t = now_seconds() - p.start;
    backpack_free(&m);
    if (r) return cli_error(err.msg);
    printf("exported %d words x %d senses (d = %d, %.1f MB of sense vectors) to %s in %.1f s: %.1f MB/s\n",
           c->vocab_size, c->num_senses, c->n_embd, sense_bytes / 1e6, db, t, sense_bytes / 1e6 / (t > 0 ? t : 1e-9));
    return 0;
}

/* ---- shared ------------------------------------------------------------------------- */

static int open_db(const char *db, StoreMode mode, SenseStore **s, BpError *err) {
    return store_open(s, db, mode, err);
}

/* Prints a note when a typed word is several tokens. */
static void note_multi(SenseStore *s, const StoreWord *w) {
    if (w->n_tokens == 1) return;
    fprintf(stderr, "note: '%s' is %d tokens (", w->text, w->n_tokens);
    for (int i = 0; i < w->n_tokens; i++) fprintf(stderr, "%s'%s'", i ? " " : "", store_token_text(s, w->tokens[i]));
    fprintf(stderr, "): using the average of their sense vectors; closest single tokens:");
    int ids[5];
    int n = store_closest_tokens(s, w->text, ids, 5);
    for (int i = 0; i < n; i++) fprintf(stderr, "%s '%s'", i ? "," : "", store_token_text(s, ids[i]));
    fprintf(stderr, "\n");
}

static void print_word_list(SenseStore *s, const char *label, const WordScore *list, int n) {
    printf("  %-7s", label);
    for (int i = 0; i < n; i++) printf(" '%s' %.3g%s", store_token_text(s, list[i].id), list[i].score, i + 1 < n ? "," : "");
    printf("\n");
}

/* ---- senses --------------------------------------------------------------------------- */

#define DB_OPTION(db) {"--db", ARG_STRING, &(db), .meta = "FILE", .help = "the sense database (backpack export)"}

int cmd_senses(int argc, char **argv) {
    const char *db = NULL, *word = NULL;
    int n = 10, n_words = 0;
    BpError err = {0};
    const ArgOption table[] = {
        DB_OPTION(db),
        {"-n", ARG_INT, &n, 1, 10000, "N", "top and bottom words per sense (10)", 0},
        {0}};
    const ArgSpec spec = {"senses",
        "usage: backpack senses --db FILE WORD [-n N]\n"
        "The k senses of WORD: norm, edit state, top and bottom N words of E C(x)_l.\n"
        "WORD: a bare word is ' WORD' (mid-sentence token), then 'WORD'; ' WORD' (leading\n"
        "space) is exact; #ID is a token id. A word of several tokens uses the average of\n"
        "their sense vectors.\n", table, .positional = &word, .max_positional = 1, .n_positional = &n_words};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    if (!db) return cli_usage_error("senses: --db FILE is required");
    if (!word) return cli_usage_error("senses: WORD is required");
    SenseStore *s;
    if (open_db(db, STORE_READ_ONLY, &s, &err)) return cli_error(err.msg);
    StoreWord w;
    int k = store_info(s)->config.num_senses, d = store_info(s)->config.n_embd;
    WordScore *top = malloc(n * sizeof *top), *bottom = malloc(n * sizeof *bottom);
    float *vectors = malloc((size_t)k * d * sizeof(float));
    int r = 0;
    if (!top || !bottom || !vectors) r = bp_fail(&err, "out of memory");
    if (!r) r = store_resolve_word(s, word, &w, &err);
    if (!r) {
        note_multi(s, &w);
        if (w.n_tokens == 1) printf("'%s' (token %d): %d senses\n", store_token_text(s, w.tokens[0]), w.tokens[0], k);
        else printf("'%s' (%d tokens, averaged): %d senses\n", word, w.n_tokens, k);
    }
    if (!r && w.n_tokens > 1) r = store_word_senses(s, &w, vectors, &err);
    for (int l = 0; l < k && !r; l++) {
        int got;
        if (w.n_tokens == 1) {
            SenseInfo info;
            if ((r = store_sense_info(s, w.tokens[0], l, &info, &err))) break;
            printf("sense %d  norm %.4g", l, info.norm);
            if (info.vector_edited) printf("  [edited vector, exported norm %.4g]", info.exported_norm);
            if (info.weight != 1.0f) printf("  [weight %g]", info.weight);
            printf("\n");
            got = store_sense_words(s, w.tokens[0], l, n, top, bottom, &err);
        } else {
            const float *v = vectors + (size_t)l * d;
            double nn = 0;
            for (int i = 0; i < d; i++) nn += (double)v[i] * v[i];
            printf("sense %d  norm %.4g\n", l, sqrt(nn));
            got = store_score_vector(s, v, n, top, bottom, &err);
        }
        if (got < 0) {
            r = -1;
            break;
        }
        print_word_list(s, "top:", top, got);
        print_word_list(s, "bottom:", bottom, got);
    }
    free(top);
    free(bottom);
    free(vectors);
    store_close(s);
    return r ? cli_error(err.msg) : 0;
}

/* ---- nearest ------------------------------------------------------------------------- */

int cmd_nearest(int argc, char **argv) {
    const char *db = NULL, *word = NULL;
    int n = 10, sense = -1, by_min = 0, n_words = 0;
    BpError err = {0};
    const ArgOption table[] = {
        DB_OPTION(db),
        {"--sense", ARG_INT, &sense, 0, 1 << 20, "L", "by the cosine of sense L", 0},
        {"--min", ARG_FLAG, &by_min, .help = "by the minimum cosine over all senses (the default: Sim_min)"},
        {"-n", ARG_INT, &n, 1, 100000, "N", "words (10)", 0},
        {0}};
    const ArgSpec spec = {"nearest",
        "usage: backpack nearest --db FILE WORD [--sense L | --min] [-n N]\n"
        "The N words nearest to WORD by the cosine of sense L, or by the minimum cosine\n"
        "over all senses.\n", table, .positional = &word, .max_positional = 1, .n_positional = &n_words};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    if (by_min && sense >= 0) return cli_usage_error("nearest: give --sense L or --min, not both");
    if (!db) return cli_usage_error("nearest: --db FILE is required");
    if (!word) return cli_usage_error("nearest: WORD is required");
    SenseStore *s;
    if (open_db(db, STORE_READ_ONLY, &s, &err)) return cli_error(err.msg);
    int k = store_info(s)->config.num_senses, d = store_info(s)->config.n_embd;
    StoreWord w;
    float *query = malloc((size_t)k * d * sizeof(float));
    WordScore *out = malloc(n * sizeof *out);
    int r = 0, got = 0;
    if (!query || !out) r = bp_fail(&err, "out of memory");
    if (!r && sense >= k) r = bp_fail(&err, "sense %d out of range (this model has senses 0..%d)", sense, k - 1);
    if (!r) r = store_resolve_word(s, word, &w, &err);
    if (!r) {
        note_multi(s, &w);
        r = store_word_senses(s, &w, query, &err);
    }
    if (!r) {
        got = store_nearest(s, query, sense, w.n_tokens == 1 ? w.tokens[0] : -1, n, out, &err);
        if (got < 0) r = -1;
    }
    if (!r) {
        if (sense >= 0) printf("nearest to '%s' by sense %d (cosine):\n", word, sense);
        else printf("nearest to '%s' by the minimum cosine over %d senses:\n", word, k);
        for (int i = 0; i < got; i++) printf("%3d  %8.4f  '%s'\n", i + 1, out[i].score, store_token_text(s, out[i].id));
    }
    free(query);
    free(out);
    store_close(s);
    return r ? cli_error(err.msg) : 0;
}

/* ---- similarity ------------------------------------------------------------------------ */

int cmd_similarity(int argc, char **argv) {
    const char *db = NULL, *pairs = NULL;
    int single = 0, n_pairs = 0;
    BpError err = {0};
    const ArgOption table[] = {
        DB_OPTION(db),
        {"--single-token", ARG_FLAG, &single, .help = "count a word of several tokens as missing"},
        {0}};
    const ArgSpec spec = {"similarity",
        "usage: backpack similarity --db FILE [--single-token] PAIRS.tsv\n"
        "Spearman correlation between human similarity scores and sense cosines.\n"
        "PAIRS.tsv: one 'word<TAB>word<TAB>score' per line ('#' comments and blank lines\n"
        "skipped). Per sense l: cos(C(x)_l, C(y)_l); min: the minimum over senses\n"
        "(Sim_min). A word of several tokens uses the average of their senses, unless\n"
        "--single-token, which counts it as missing. Missing words are reported.\n",
        table, .positional = &pairs, .max_positional = 1, .n_positional = &n_pairs};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    if (!db) return cli_usage_error("similarity: --db FILE is required");
    if (!pairs) return cli_usage_error("similarity: PAIRS.tsv is required");
    SenseStore *s;
    if (open_db(db, STORE_READ_ONLY, &s, &err)) return cli_error(err.msg);
    SimilarityResult res;
    int r = similarity_evaluate(s, pairs, single, &res, &err);
    store_close(s);
    if (r) return cli_error(err.msg);
    printf("%s: %d pairs, %d used, %d missing", pairs, res.pairs, res.used, res.missing);
    if (res.missing) printf(" (%s)", res.missing_words);
    if (res.multi_token) printf(", %d with a multi-token word (averaged)", res.multi_token);
    printf("\n");
    for (int c = 0; c <= res.n_senses; c++) {
        if (c < res.n_senses) printf("sense %-3d spearman ", c);
        else printf("min       spearman ");
        if (isnan(res.spearman[c])) printf("n/a\n");
        else printf("%.4f\n", res.spearman[c]);
    }
    similarity_result_free(&res);
    return 0;
}

/* ---- edit, edits ------------------------------------------------------------------------ */

/* "WORD" or "WORD:L" (the last colon followed only by digits splits). */
static int parse_word_sense(SenseStore *s, const char *arg, int default_sense, int *token, int *sense, BpError *err) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", arg);
    *sense = default_sense;
    char *colon = strrchr(buf, ':');
    if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1) && colon != buf) {
        *colon = 0;
        if (arg_int("sense", colon + 1, 0, 1 << 20, sense, err)) return -1;
    }
    return store_resolve_token(s, buf, token, err);
}

int cmd_edit(int argc, char **argv) {
    const char *db = NULL, *word = NULL, *copy = NULL, *replace = NULL, *scale = NULL, *weight = NULL;
    int sense = -1, reset = 0, undo = 0, n_words = 0;
    BpError err = {0};
    const ArgOption table[] = {
        DB_OPTION(db),
        {"--sense", ARG_INT, &sense, 0, 1 << 20, "L", "the sense to edit", 0},
        {"--scale", ARG_STRING, &scale, .meta = "W", .help = "multiply the sense vector C(x)_l by W"},
        {"--weight", ARG_STRING, &weight, .meta = "W", .help = "multiply sense l's contextual weight alpha_l wherever WORD occurs (W >= 0)"},
        {"--copy", ARG_STRING, &copy, .meta = "WORD2[:L2]", .help = "replace C(x)_l by WORD2's sense L2 (default: L)"},
        {"--reset", ARG_FLAG, &reset, .help = "back to the exported vector and weight 1"},
        {"--replace", ARG_STRING, &replace, .meta = "OLD:NEW", .help = "the paper's knowledge edit on every sense of WORD"},
        {"--undo", ARG_FLAG, &undo, .help = "undo edit ID (the positional argument; default: the latest in force)"},
        {0}};
    const ArgSpec spec = {"edit",
        "usage: backpack edit --db FILE WORD --sense L (--scale W | --weight W | --copy WORD2[:L2] | --reset)\n"
        "       backpack edit --db FILE WORD --replace OLD:NEW\n"
        "       backpack edit --db FILE --undo [ID]\n"
        "Each edit is one transaction; `backpack edits` lists them.\n", table, .positional = &word, .max_positional = 1, .n_positional = &n_words};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    int n_actions = (scale != NULL) + (weight != NULL) + (copy != NULL) + reset + (replace != NULL) + undo;
    const char *value_flag = scale ? "--scale" : weight ? "--weight" : NULL, *value = scale ? scale : weight;
    long long undo_id = 0;
    if (!db) return cli_usage_error("edit: --db FILE is required");
    if (n_actions != 1) return cli_usage_error("edit: give exactly one of --scale, --weight, --copy, --reset, --replace, --undo");
    if (undo && word) {
        char *end;
        errno = 0;
        undo_id = strtoll(word, &end, 10);
        if (end == word || *end || errno || undo_id <= 0) return cli_usage_error("edit: --undo: expected an edit id (a positive integer)");
        word = NULL;
    }
    if (!undo && !word) return cli_usage_error("edit: WORD is required");
    if (!undo && !replace && sense < 0) return cli_usage_error("edit: --sense L is required");
    if (replace && sense >= 0) return cli_usage_error("edit: --replace edits every sense: no --sense");
    SenseStore *s;
    if (open_db(db, STORE_READ_WRITE, &s, &err)) return cli_error(err.msg);
    int r = 0;
    if (undo) {
        int64_t done;
        r = store_edit_undo(s, undo_id, &done, &err);
        if (!r) printf("undid edit %lld\n", (long long)done);
        store_close(s);
        return r ? cli_error(err.msg) : 0;
    }
    EditRequest req = {0};
    req.sense = sense;
    r = store_resolve_token(s, word, &req.token, &err);
    if (!r && value_flag) {
        req.kind = !strcmp(value_flag, "--scale") ? EDIT_SCALE : EDIT_WEIGHT;
        r = arg_float(value_flag, value, -1e30, 1e30, &req.value, &err);
    } else if (!r && copy) {
        req.kind = EDIT_COPY;
        r = parse_word_sense(s, copy, sense, &req.src_token, &req.src_sense, &err);
    } else if (!r && reset) {
        req.kind = EDIT_RESET;
    } else if (!r && replace) {
        req.kind = EDIT_REPLACE;
        char buf[256];
        snprintf(buf, sizeof buf, "%s", replace);
        /* OLD:NEW splits at the colon; a word that is itself ':' can be written #ID */
        char *colon = strchr(buf, ':');
        if (!colon || colon == buf || !colon[1]) r = bp_fail(&err, "--replace: expected OLD:NEW, got '%s'", replace);
        else {
            *colon = 0;
            r = store_resolve_token(s, buf, &req.old_token, &err);
            if (!r) r = store_resolve_token(s, colon + 1, &req.new_token, &err);
        }
    }
    int64_t id = 0;
    if (!r) r = store_edit_commit(s, &req, &id, &err);
    if (!r) {
        EditRecord *list;
        int count;
        const char *desc = "";
        if (!store_edit_list(s, &list, &count, NULL)) {
            for (int i = 0; i < count; i++)
                if (list[i].id == id) printf("edit %lld: %s\n", (long long)id, list[i].description);
            free(list);
        } else printf("edit %lld%s\n", (long long)id, desc);
    }
    store_close(s);
    return r ? cli_error(err.msg) : 0;
}

int cmd_edits(int argc, char **argv) {
    const char *db = NULL;
    BpError err = {0};
    const ArgOption table[] = {DB_OPTION(db), {0}};
    const ArgSpec spec = {"edits",
        "usage: backpack edits --db FILE\n"
        "Lists every edit, oldest first: id, time, state, what.\n", table, .given = NULL};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    if (!db) return cli_usage_error("edits: --db FILE is required");
    SenseStore *s;
    if (open_db(db, STORE_READ_ONLY, &s, &err)) return cli_error(err.msg);
    EditRecord *list;
    int count, r = store_edit_list(s, &list, &count, &err);
    if (!r) {
        if (!count) printf("no edits\n");
        for (int i = 0; i < count; i++) {
            char when[32];
            time_t t = (time_t)list[i].created;
            struct tm tm;
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
            printf("%4lld  %s  %-8s %-7s %s\n", (long long)list[i].id, when, list[i].undone ? "undone" : "in force",
                   edit_kind_name(list[i].kind), list[i].description);
        }
        free(list);
    }
    store_close(s);
    return r ? cli_error(err.msg) : 0;
}
