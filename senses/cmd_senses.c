/* cmd_senses.c - the sense-store subcommands: export, senses, nearest, similarity,
 * edit, edits (cli/commands.h). Each parses its options, calls store.h and prints. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../cli/commands.h"
#include "../common/fileio.h"
#include "../model/checkpoint.h"
#include "stats.h"
#include "store.h"
#include "../common/args.h"

/* ---- option parsing ---------------------------------------------------------------- */

static int usage_error(const char *usage, const char *msg) {
    fprintf(stderr, "backpack: %s\nusage: %s\n", msg, usage);
    return 2;
}

static int wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

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
    const char *usage = "backpack export --model DIR --db FILE [--tokenizer DIR] [--top N] [--force]";
    if (wants_help(argc, argv)) {
        printf("usage: %s\n\nWrites every word's k sense vectors, norms and top/bottom words (by E C(x)_l)\n"
               "to an SQLite database. --tokenizer defaults to DIR when it holds vocab.json;\n"
               "--top N words per list (default %d, at least %d); --force replaces an existing\n"
               "sense database (and its edits).\n", usage, STORE_MIN_TOP_N, STORE_MIN_TOP_N);
        return 0;
    }
    const char *model_dir = NULL, *db = NULL, *tok_dir = NULL;
    ExportOptions opts = {0};
    BpError err = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--model")) { if (!(model_dir = arg_value(argc, argv, &i, &err))) return usage_error(usage, err.msg); }
        else if (!strcmp(a, "--db")) { if (!(db = arg_value(argc, argv, &i, &err))) return usage_error(usage, err.msg); }
        else if (!strcmp(a, "--tokenizer")) { if (!(tok_dir = arg_value(argc, argv, &i, &err))) return usage_error(usage, err.msg); }
        else if (!strcmp(a, "--top")) {
            const char *v = arg_value(argc, argv, &i, &err);
            if (!v || arg_int("--top", v, STORE_MIN_TOP_N, 10000, &opts.top_n, &err)) return usage_error(usage, err.msg);
        } else if (!strcmp(a, "--chunk")) {
            const char *v = arg_value(argc, argv, &i, &err);
            if (!v || arg_int("--chunk", v, 1, 1 << 20, &opts.chunk_words, &err)) return usage_error(usage, err.msg);
        } else if (!strcmp(a, "--force")) opts.force = 1;
        else return usage_error(usage, "unknown option");
    }
    if (!model_dir || !db) return usage_error(usage, "--model and --db are required");
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
    if (!db) return bp_fail(err, "--db FILE is required");
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

int cmd_senses(int argc, char **argv) {
    const char *usage = "backpack senses --db FILE WORD [-n N]";
    if (wants_help(argc, argv)) {
        printf("usage: %s\n\nThe k senses of WORD: norm, edit state, top and bottom N words (default 10) of\n"
               "E C(x)_l. WORD: a bare word is ' WORD' (mid-sentence token), then 'WORD';\n"
               "' WORD' (leading space) is exact; #ID is a token id. A word of several tokens\n"
               "uses the average of their sense vectors.\n", usage);
        return 0;
    }
    const char *db = NULL, *word = NULL;
    int n = 10;
    BpError err = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db")) { if (!(db = arg_value(argc, argv, &i, &err))) return usage_error(usage, err.msg); }
        else if (!strcmp(argv[i], "-n")) {
            const char *v = arg_value(argc, argv, &i, &err);
            if (!v || arg_int("-n", v, 1, 10000, &n, &err)) return usage_error(usage, err.msg);
        } else if (!word) word = argv[i];
        else return usage_error(usage, "one WORD only");
    }
    if (!word) return usage_error(usage, "WORD is required");
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
    const char *usage = "backpack nearest --db FILE WORD [--sense L | --min] [-n N]";
    if (wants_help(argc, argv)) {
        printf("usage: %s\n\nThe N (default 10) words nearest to WORD by the cosine of sense L, or by the\n"
               "minimum cosine over all senses (--min, the default: the paper's Sim_min).\n", usage);
        return 0;
    }
    const char *db = NULL, *word = NULL;
    int n = 10, sense = -1;
    BpError err = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db")) { if (!(db = arg_value(argc, argv, &i, &err))) return usage_error(usage, err.msg); }
        else if (!strcmp(argv[i], "-n")) {
            const char *v = arg_value(argc, argv, &i, &err);
            if (!v || arg_int("-n", v, 1, 100000, &n, &err)) return usage_error(usage, err.msg);
        } else if (!strcmp(argv[i], "--sense")) {
            const char *v = arg_value(argc, argv, &i, &err);
            if (!v || arg_int("--sense", v, 0, 1 << 20, &sense, &err)) return usage_error(usage, err.msg);
        } else if (!strcmp(argv[i], "--min")) sense = -1;
        else if (!word) word = argv[i];
        else return usage_error(usage, "one WORD only");
    }
    if (!word) return usage_error(usage, "WORD is required");
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

/* Splits a PAIRS line into word, word, score (tab-separated; whitespace when there is
 * no tab). Returns 0 or -1. Modifies line. */
static int split_pair(char *line, char **a, char **b, double *score) {
    char *f[4];
    int n = 0;
    const char *sep = strchr(line, '\t') ? "\t" : " ";
    char *save = NULL;
    for (char *t = strtok_r(line, sep, &save); t && n < 4; t = strtok_r(NULL, sep, &save)) f[n++] = t;
    if (n != 3) return -1;
    char *end;
    errno = 0;
    *score = strtod(f[2], &end);
    if (end == f[2] || *end || errno || !isfinite(*score)) return -1;
    *a = f[0];
    *b = f[1];
    return 0;
}

int cmd_similarity(int argc, char **argv) {
    const char *usage = "backpack similarity --db FILE [--single-token] PAIRS.tsv";
    if (wants_help(argc, argv)) {
        printf("usage: %s\n\nSpearman correlation between human similarity scores and sense cosines.\n"
               "PAIRS.tsv: one 'word<TAB>word<TAB>score' per line ('#' comments and blank lines\n"
               "skipped). Per sense l: cos(C(x)_l, C(y)_l); min: the minimum over senses\n"
               "(Sim_min). A word of several tokens uses the average of their senses, unless\n"
               "--single-token, which counts it as missing. Missing words are reported.\n", usage);
        return 0;
    }
    const char *db = NULL, *pairs = NULL;
    int single = 0;
    BpError err = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db")) { if (!(db = arg_value(argc, argv, &i, &err))) return usage_error(usage, err.msg); }
        else if (!strcmp(argv[i], "--single-token")) single = 1;
        else if (!pairs) pairs = argv[i];
        else return usage_error(usage, "one PAIRS file only");
    }
    if (!pairs) return usage_error(usage, "PAIRS.tsv is required");
    char *text;
    size_t len;
    if (read_file(pairs, &text, &len, &err)) return cli_error(err.msg);
    if (memchr(text, 0, len)) {
        free(text);
        snprintf(err.msg, sizeof err.msg, "%s: binary file, expected word<TAB>word<TAB>score lines", pairs);
        return cli_error(err.msg);
    }
    SenseStore *s;
    if (open_db(db, STORE_READ_ONLY, &s, &err)) {
        free(text);
        return cli_error(err.msg);
    }
    int k = store_info(s)->config.num_senses, d = store_info(s)->config.n_embd;
    int cap = 64, n = 0, total = 0, missing = 0, multi = 0, r = 0;
    double *human = malloc(cap * sizeof(double));
    double *cosines = malloc((size_t)cap * (k + 1) * sizeof(double));  // (n, k + 1): senses then min
    float *va = malloc((size_t)k * d * sizeof(float)), *vb = malloc((size_t)k * d * sizeof(float));
    char missing_list[300] = "";
    if (!human || !cosines || !va || !vb) r = bp_fail(&err, "out of memory");
    int line_no = 0;
    for (char *line = text, *next; !r && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        line_no++;
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r') line[--l] = 0;
        const char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (!*p || *p == '#') continue;
        char *a, *b;
        double score;
        if (split_pair(line, &a, &b, &score)) {
            r = bp_fail(&err, "%s:%d: expected 'word<TAB>word<TAB>score'", pairs, line_no);
            break;
        }
        total++;
        StoreWord wa, wb;
        BpError ignore;
        int bad_a = store_resolve_word(s, a, &wa, &ignore) || (single && wa.n_tokens != 1);
        int bad_b = store_resolve_word(s, b, &wb, &ignore) || (single && wb.n_tokens != 1);
        if (bad_a || bad_b) {
            missing++;
            size_t used = strlen(missing_list);
            if (used < sizeof missing_list - 64)
                snprintf(missing_list + used, sizeof missing_list - used, "%s'%s'", used ? ", " : "", bad_a ? a : b);
            continue;
        }
        if (wa.n_tokens > 1 || wb.n_tokens > 1) multi++;
        if ((r = store_word_senses(s, &wa, va, &err)) || (r = store_word_senses(s, &wb, vb, &err))) break;
        if (n == cap) {
            cap *= 2;
            double *h = realloc(human, cap * sizeof(double));
            if (h) human = h;
            double *c = realloc(cosines, (size_t)cap * (k + 1) * sizeof(double));
            if (c) cosines = c;
            if (!h || !c) {
                r = bp_fail(&err, "out of memory");
                break;
            }
        }
        human[n] = score;
        double mn = INFINITY;
        for (int sense = 0; sense < k; sense++) {
            double c = store_cosine(va + (size_t)sense * d, vb + (size_t)sense * d, d);
            cosines[(size_t)sense * 0 + (size_t)n * (k + 1) + sense] = c;
            if (c < mn) mn = c;
        }
        cosines[(size_t)n * (k + 1) + k] = mn;
        n++;
    }
    if (!r) {
        printf("%s: %d pairs, %d used, %d missing", pairs, total, n, missing);
        if (missing) printf(" (%s%s)", missing_list, strlen(missing_list) >= sizeof missing_list - 64 ? ", ..." : "");
        if (multi) printf(", %d with a multi-token word (averaged)", multi);
        printf("\n");
        double *col = malloc((n > 0 ? n : 1) * sizeof(double));
        if (!col) r = bp_fail(&err, "out of memory");
        for (int c = 0; c <= k && !r; c++) {
            for (int i = 0; i < n; i++) col[i] = cosines[(size_t)i * (k + 1) + c];
            double rho = spearman(col, human, n);
            if (c < k) printf("sense %-3d spearman ", c);
            else printf("min       spearman ");
            if (isnan(rho)) printf("n/a\n");
            else printf("%.4f\n", rho);
        }
        free(col);
    }
    free(human);
    free(cosines);
    free(va);
    free(vb);
    free(text);
    store_close(s);
    return r ? cli_error(err.msg) : 0;
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
    const char *usage =
        "backpack edit --db FILE WORD --sense L (--scale W | --weight W | --copy WORD2[:L2] | --reset)\n"
        "       backpack edit --db FILE WORD --replace OLD:NEW\n"
        "       backpack edit --db FILE --undo [ID]";
    if (wants_help(argc, argv)) {
        printf("usage: %s\n\n"
               "--scale W     multiply the sense vector C(x)_l by W\n"
               "--weight W    multiply sense l's contextual weight alpha_l wherever WORD occurs (W >= 0)\n"
               "--copy W2:L2  replace C(x)_l by WORD2's sense L2 (default: L)\n"
               "--reset       back to the exported vector and weight 1\n"
               "--replace OLD:NEW  the paper's knowledge edit on every sense of WORD\n"
               "--undo [ID]   undo edit ID (default: the latest edit in force)\n"
               "Each edit is one transaction; `backpack edits` lists them.\n", usage);
        return 0;
    }
    const char *db = NULL, *word = NULL, *copy = NULL, *replace = NULL, *value_flag = NULL, *value = NULL;
    int sense = -1, reset = 0, undo = 0, n_actions = 0;
    long long undo_id = 0;
    BpError err = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--db")) { if (!(db = arg_value(argc, argv, &i, &err))) return usage_error(usage, err.msg); }
        else if (!strcmp(a, "--sense")) {
            const char *v = arg_value(argc, argv, &i, &err);
            if (!v || arg_int("--sense", v, 0, 1 << 20, &sense, &err)) return usage_error(usage, err.msg);
        } else if (!strcmp(a, "--scale") || !strcmp(a, "--weight")) {
            value_flag = a;
            if (!(value = arg_value(argc, argv, &i, &err))) return usage_error(usage, err.msg);
            n_actions++;
        } else if (!strcmp(a, "--copy")) {
            if (!(copy = arg_value(argc, argv, &i, &err))) return usage_error(usage, err.msg);
            n_actions++;
        } else if (!strcmp(a, "--replace")) {
            if (!(replace = arg_value(argc, argv, &i, &err))) return usage_error(usage, err.msg);
            n_actions++;
        } else if (!strcmp(a, "--reset")) {
            reset = 1;
            n_actions++;
        } else if (!strcmp(a, "--undo")) {
            undo = 1;
            n_actions++;
            if (i + 1 < argc && argv[i + 1][0] != '-') {
                char *end;
                errno = 0;
                undo_id = strtoll(argv[++i], &end, 10);
                if (*end || errno || undo_id <= 0) return usage_error(usage, "--undo: expected an edit id (a positive integer)");
            }
        } else if (!word && a[0] != '-') word = a;
        else if (!word && a[0] == '-' && a[1] == 0) word = a;
        else return usage_error(usage, "unknown option or a second WORD");
    }
    if (!db) return usage_error(usage, "--db FILE is required");
    if (n_actions != 1) return usage_error(usage, "give exactly one of --scale, --weight, --copy, --reset, --replace, --undo");
    if (undo && word) return usage_error(usage, "--undo takes no WORD");
    if (!undo && !word) return usage_error(usage, "WORD is required");
    if (!undo && !replace && sense < 0) return usage_error(usage, "--sense L is required");
    if (replace && sense >= 0) return usage_error(usage, "--replace edits every sense: no --sense");
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
    const char *usage = "backpack edits --db FILE";
    if (wants_help(argc, argv)) {
        printf("usage: %s\n\nLists every edit, oldest first: id, time, state, what.\n", usage);
        return 0;
    }
    const char *db = NULL;
    BpError err = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db")) { if (!(db = arg_value(argc, argv, &i, &err))) return usage_error(usage, err.msg); }
        else return usage_error(usage, "unknown argument");
    }
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
