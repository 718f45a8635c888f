/* cmd_steer.c - `backpack steer topic|debias|measure`: topic control and gender
 * debiasing through sense weights, written into a sense database as one edit group
 * (senses/steer.h has the rules; docs/steering.md the commands and numbers). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/args.h"
#include "../model/checkpoint.h"
#include "../senses/edits.h"
#include "../senses/steer.h"
#include "../senses/store.h"
#include "../text/tokenizer.h"
#include "../train/compat.h"
#include "commands.h"

static const char steer_usage[] =
    "usage: backpack steer topic   --model DIR --db FILE --words FILE [--strength S]\n"
    "       backpack steer debias  --model DIR --professions FILE [--db FILE] [--pronouns he,she]\n"
    "                              [--templates FILE]\n"
    "       backpack steer measure topic --model DIR --db FILE --words FILE [--strengths LIST]\n"
    "       backpack steer measure bias  --model DIR --professions FILE [--edits DB]\n"
    "(backpack steer <what> --help for each)\n";

/* The option rows that debias and measure bias share. */
#define BIAS_OPTIONS(prof_path, pronouns, tmpl_path)                                                           \
    {"--professions", ARG_STRING, &prof_path, .meta = "FILE", .help = "profession nouns, one per line"},          \
    {"--pronouns", ARG_STRING, &pronouns, .meta = "A,B", .help = "the two pronouns (he,she)"},                    \
    {"--templates", ARG_STRING, &tmpl_path, .meta = "FILE", .help = "'train: ...{}...' / 'test: ...' lines (the paper's)"}

/* The model, its tokenizer and (optionally) its sense database, checked together. */
typedef struct {
    Backpack m;
    int have_model;
    Tokenizer *tok;
    SenseStore *store;
} SteerSetup;

static int setup(SteerSetup *st, const char *model_dir, const char *db, StoreMode mode, BpError *err) {
    memset(st, 0, sizeof *st);
    if (checkpoint_load(&st->m, model_dir, err)) return -1;
    st->have_model = 1;
    if (compat_load_tokenizer(&st->tok, model_dir, st->m.config.vocab_size, err)) return -1;
    if (db) {
        if (store_open(&st->store, db, mode, err)) return -1;
        if (store_check_model(st->store, &st->m, err)) return -1;
    }
    return 0;
}

static void teardown(SteerSetup *st) {
    if (st->store) store_close(st->store);
    if (st->tok) tokenizer_free(st->tok);
    if (st->have_model) backpack_free(&st->m);
}

static int fail(SteerSetup *st, const char *msg) {
    int rc = cli_error(msg);
    teardown(st);
    return rc;
}

/* The exit status of a subcommand that ran with result r, after teardown. */
static int finish(SteerSetup *st, int r, const char *msg) {
    if (r) return fail(st, msg);
    teardown(st);
    return 0;
}

static const char *token_text(const Tokenizer *tok, int id, char *buf, size_t size) {
    return tokenizer_token_readable(tok, id, buf, size);
}

/* "he,she" into two single tokens. */
static int parse_pronouns(const Tokenizer *tok, const char *list, int *he, int *she, BpError *err) {
    char a[STEER_MAX_WORD + 1], b[STEER_MAX_WORD + 1];
    const char *comma = strchr(list, ',');
    if (!comma || strchr(comma + 1, ',') || comma == list || !comma[1] || (size_t)(comma - list) > STEER_MAX_WORD ||
        strlen(comma + 1) > STEER_MAX_WORD)
        return bp_fail(err, "--pronouns: expected two words as A,B (e.g. he,she), got '%s'", list);
    snprintf(a, sizeof a, "%.*s", (int)(comma - list), list);
    snprintf(b, sizeof b, "%s", comma + 1);
    BpError why = {{0}};
    if ((*he = steer_word_token(tok, a, &why)) < 0 || (*she = steer_word_token(tok, b, &why)) < 0)
        return bp_fail(err, "--pronouns: %s", why.msg);
    if (*he == *she) return bp_fail(err, "--pronouns: the two words are the same token");
    return 0;
}

/* ---- steer topic --------------------------------------------------------------------- */

/* The n highest-scoring senses, printed as "' word' sense l  score". */
static void print_top_senses(const Tokenizer *tok, const float *scores, int V, int k, int n) {
    int *best = malloc((size_t)n * sizeof *best);
    if (!best) return;
    int have = 0;
    for (int i = 0; i < V * k; i++) {
        if (have == n && !(scores[i] > scores[best[n - 1]])) continue;
        int pos = have < n ? have++ : n - 1;
        while (pos > 0 && scores[i] > scores[best[pos - 1]]) {
            best[pos] = best[pos - 1];
            pos--;
        }
        best[pos] = i;
    }
    for (int i = 0; i < have; i++) {
        char buf[64];
        printf("  '%s' sense %d  %.3f\n", token_text(tok, best[i] / k, buf, sizeof buf), best[i] % k, scores[best[i]]);
    }
    free(best);
}

static int steer_topic(int argc, char **argv) {
    const char *model_dir = NULL, *db = NULL, *words = NULL;
    float strength = 1;
    int dry_run = 0, show = 10;
    const ArgOption opts[] = {
        {"--model", ARG_STRING, &model_dir, .meta = "DIR", .help = "the Backpack model (checkpoint directory with its tokenizer)"},
        {"--db", ARG_STRING, &db, .meta = "FILE", .help = "its sense database (backpack export), where the edit goes"},
        {"--words", ARG_STRING, &words, .meta = "FILE", .help = "the topic words, one per line"},
        {"--strength", ARG_FLOAT, &strength, 0, STEER_MAX_STRENGTH, "S", "0 to 3: the paper's settings 1, 2, 3, linear between (1)", 0},
        {"--show", ARG_INT, &show, 0, 1000, "N", "print the N senses most associated with the topic (10)", 0},
        {"--dry-run", ARG_FLAG, &dry_run, .help = "pick and report, write nothing"},
        {0}};
    const ArgSpec spec = {"steer topic",
        "usage: backpack steer topic --model DIR --db FILE --words FILE [--strength S]\n"
        "Scores every sense (x, l) by sum over the topic words w of (E C(x)_l)[w] / max_v (E C(x)_l)[v]\n"
        "(the paper's rule) and multiplies the weights of the senses above the 60th, 80th and\n"
        "95th percentiles by the paper's factors for the strength. Written as ONE edit:\n"
        "`backpack edit --db FILE --undo ID` takes it back whole. Words that are no single\n"
        "token are skipped with a note.\n",
        opts, .given = NULL};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    if (!model_dir || !db || !words) return cli_usage_error("steer topic: --model DIR, --db FILE and --words FILE are required");
    BpError err = {{0}};
    SteerSetup s;
    if (setup(&s, model_dir, db, dry_run ? STORE_READ_ONLY : STORE_READ_WRITE, &err)) return fail(&s, err.msg);
    if (s.m.config.arch != ARCH_BACKPACK) return fail(&s, "steer topic: sense weights need a Backpack model");
    SteerWords topic;
    if (steer_read_words(words, s.tok, &topic, stderr, &err)) return fail(&s, err.msg);
    const int V = s.m.config.vocab_size, k = s.m.config.num_senses;
    float *scores = malloc((size_t)V * k * sizeof *scores);
    SteerPlan plan = {0};
    int r = scores ? steer_topic_scores(s.store, &topic, scores, &err) : bp_fail(&err, "out of memory");
    if (!r) r = steer_topic_plan(scores, V, k, strength, &plan, &err);
    if (!r) {
        printf("topic words: %d (%d skipped) from %s\n", topic.count, topic.skipped, words);
        printf("score cuts: 60%% %.4f  80%% %.4f  95%% %.4f\n", plan.cut[0], plan.cut[1], plan.cut[2]);
        printf("factors at strength %g: 60-80%% x%.3f  80-95%% x%.3f  >95%% x%.3f\n", strength, plan.factors[0],
               plan.factors[1], plan.factors[2]);
        if (show > 0) {
            printf("senses most associated with the topic:\n");
            print_top_senses(s.tok, scores, V, k, show);
        }
        printf("sense weights to change: %d of %d\n", plan.count, V * k);
    }
    if (!r && !dry_run) {
        char desc[256];
        int64_t id;
        snprintf(desc, sizeof desc, "steer topic %s strength %g: %d sense weights", words, strength, plan.count);
        r = steer_plan_commit(s.store, &plan, desc, &id, &err);
        if (!r) printf("wrote edit %lld (%d sense weights); undo: backpack edit --db %s --undo %lld\n", (long long)id,
                       plan.count, db, (long long)id);
    }
    steer_plan_free(&plan);
    free(scores);
    steer_words_free(&topic);
    return finish(&s, r, err.msg);
}

/* ---- steer debias -------------------------------------------------------------------- */

static int steer_debias(int argc, char **argv) {
    const char *model_dir = NULL, *db = NULL, *prof_path = NULL, *pronouns = "he,she", *tmpl_path = NULL;
    int dry_run = 0, sense = -1;
    double reg = 1;
    const ArgOption opts[] = {
        {"--model", ARG_STRING, &model_dir, .meta = "DIR", .help = "the model (Backpack, or Transformer for the baseline)"},
        {"--db", ARG_STRING, &db, .meta = "FILE", .help = "the Backpack's sense database, where the edit goes"},
        BIAS_OPTIONS(prof_path, pronouns, tmpl_path),
        {"--sense", ARG_INT, &sense, 0, 1 << 20, "L", "use sense L instead of the one the rule picks", 0},
        {"--regularization", ARG_DOUBLE, &reg, 0, 1e6, "R", "the fit minimizes bias + R |1 - w| (1, the paper's)", 0},
        {"--dry-run", ARG_FLAG, &dry_run, .help = "fit and report, write nothing"},
        {0}};
    const ArgSpec spec = {"steer debias",
        "usage: backpack steer debias --model DIR --professions FILE [--db FILE] [--pronouns he,she]\n"
        "                             [--templates FILE] [--sense L] [--dry-run]\n"
        "Backpack: picks the sense of the professions that moves log p(he)/p(she) most on the\n"
        "training templates, fits one weight for it (mean bias + |1 - w|, the paper's\n"
        "objective), reports the bias on the held-out templates before and after, and writes\n"
        "the weights as ONE edit into --db. Transformer: the paper's baseline, projecting the\n"
        "he-she direction out of the professions' input embeddings (fitted the same way);\n"
        "nothing is written. Bias = mean of max(p(he)/p(she), p(she)/p(he)); 1 = unbiased.\n",
        opts, .given = NULL};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    if (!model_dir || !prof_path) return cli_usage_error("steer debias: --model DIR and --professions FILE are required");
    BpError err = {{0}};
    SteerSetup s;
    if (setup(&s, model_dir, db, dry_run ? STORE_READ_ONLY : STORE_READ_WRITE, &err)) return fail(&s, err.msg);
    int is_backpack = s.m.config.arch == ARCH_BACKPACK;
    if (is_backpack && !db && !dry_run)
        return fail(&s, "steer debias: a Backpack needs --db FILE to write the edit into (or --dry-run)");
    if (is_backpack && sense >= s.m.config.num_senses)
        return fail(&s, "steer debias: --sense is beyond the model's senses");
    int he, she;
    if (parse_pronouns(s.tok, pronouns, &he, &she, &err)) return fail(&s, err.msg);
    SteerWords prof;
    if (steer_read_words(prof_path, s.tok, &prof, stderr, &err)) return fail(&s, err.msg);
    SteerTemplates t;
    if (steer_read_templates(tmpl_path, &t, &err)) {
        steer_words_free(&prof);
        return fail(&s, err.msg);
    }
    printf("professions: %d (%d skipped) from %s; templates: %d train, %d held out\n", prof.count, prof.skipped,
           prof_path, t.n_train, t.n_test);
    int r = 0;
    if (!is_backpack) {
        ProjectionResult res;
        r = steer_projection_baseline(&s.m, s.tok, &prof, &t, he, she, reg, &res, &err);
        if (!r) {
            printf("Transformer baseline: the pronoun direction E[B] - E[A] (--pronouns %s) projected out of\n"
                   "the professions' input embeddings, scaled by the weight\n", pronouns);
            printf("weight %.4f (1 = unchanged, 0 = projected out)\n", res.weight);
            printf("train bias before %.4f\ntrain bias after %.4f\n", res.train_before, res.train_after);
            printf("bias before %.2f\nbias after %.2f\n", res.bias_before, res.bias_after);
        }
    } else {
        /* edits in force apply: the fit starts from the model as the database has it */
        SenseEdits edits = {0};
        if (db && store_sense_edits(s.store, &edits, &err)) r = -1;
        if (!r && edits.count) s.m.edits = &edits;
        BiasPairs train = {0}, test = {0};
        if (!r) r = steer_bias_pairs(&s.m, s.tok, &prof, t.train, t.n_train, he, she, &train, stderr, &err);
        if (!r) r = steer_bias_pairs(&s.m, s.tok, &prof, t.test, t.n_test, he, she, &test, stderr, &err);
        if (!r) {
            int picked = steer_pick_sense(&train);
            if (sense < 0) sense = picked;
            double w = steer_fit_sense_weight(&train, sense, reg);
            printf("sense %d (the rule picks sense %d)\n", sense, picked);
            printf("weight %.4f (fitted on %d training pairs)\n", w, train.count);
            printf("train bias before %.4f\ntrain bias after %.4f\n", steer_bias(&train, -1, 1),
                   steer_bias(&train, sense, w));
            printf("bias before %.2f\nbias after %.2f\n", steer_bias(&test, -1, 1), steer_bias(&test, sense, w));
            printf("bias with the sense removed (weight 0) %.2f\n", steer_bias(&test, sense, 0));
            if (!dry_run && w == 1.0) {
                printf("the fit keeps weight 1: nothing written\n");
            } else if (!dry_run) {
                char desc[256];
                int64_t id;
                snprintf(desc, sizeof desc, "steer debias %s sense %d weight %.4f (%d professions)", prof_path, sense,
                         w, prof.count);
                r = steer_debias_commit(s.store, &prof, sense, w, desc, &id, &err);
                if (!r) printf("wrote edit %lld (%d sense weights); undo: backpack edit --db %s --undo %lld\n",
                               (long long)id, prof.count, db, (long long)id);
            }
        }
        s.m.edits = NULL;
        steer_bias_pairs_free(&train);
        steer_bias_pairs_free(&test);
        sense_edits_free(&edits);
    }
    steer_templates_free(&t);
    steer_words_free(&prof);
    return finish(&s, r, err.msg);
}

/* ---- steer measure --------------------------------------------------------------------- */

/* "0,1,2.5" into at most max floats in [0, STEER_MAX_STRENGTH]. */
static int parse_strengths(const char *list, float *out, int max, int *n, BpError *err) {
    *n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == max) return bp_fail(err, "--strengths: at most %d values", max);
        if (arg_float("--strengths", tok, 0, STEER_MAX_STRENGTH, &out[*n], err)) return -1;
        (*n)++;
    }
    return *n ? 0 : bp_fail(err, "--strengths: expected numbers like 0,1,2,3");
}

static int measure_topic(int argc, char **argv) {
    const char *model_dir = NULL, *db = NULL, *words = NULL, *strengths = "0,1,2,3", *prompts_path = NULL;
    TopicMeasureConfig cfg = {.samples = 20, .max_tokens = 30, .temperature = 1.0f, .top_p = 0.95f, .seed = 1};
    const ArgOption opts[] = {
        {"--model", ARG_STRING, &model_dir, .meta = "DIR", .help = "the Backpack model"},
        {"--db", ARG_STRING, &db, .meta = "FILE", .help = "its sense database (the senses are scored from it; nothing is written)"},
        {"--words", ARG_STRING, &words, .meta = "FILE", .help = "the topic words, one per line"},
        {"--strengths", ARG_STRING, &strengths, .meta = "LIST", .help = "strengths to measure (0,1,2,3)"},
        {"--prompts", ARG_STRING, &prompts_path, .meta = "FILE", .help = "one prompt per line (default: <|endoftext|> alone)"},
        {"--samples", ARG_INT, &cfg.samples, 1, 100000, "N", "generations per prompt and strength (20)", 0},
        {"--max-tokens", ARG_INT, &cfg.max_tokens, 1, 100000, "N", "new tokens per generation (30)", 0},
        {"--temperature", ARG_FLOAT, &cfg.temperature, 0, 100, "T", "sampling temperature (1)", 0},
        {"--top-p", ARG_FLOAT, &cfg.top_p, 1e-6, 1, "P", "nucleus sampling (0.95)", 0},
        {"--seed", ARG_U64, &cfg.seed, 0, 0, "S", "seed of the sampler (1); the same for every strength", 0},
        {0}};
    const ArgSpec spec = {"steer measure topic",
        "usage: backpack steer measure topic --model DIR --db FILE --words FILE [--strengths LIST]\n"
        "For each strength: the edit `steer topic` would write (in memory), N sampled\n"
        "generations per prompt; prints the share of generations with at least one topic\n"
        "word (our stand-in for the paper's topic classifier) and their perplexity under the\n"
        "unedited model (fluency).\n",
        opts, .given = NULL};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    if (!model_dir || !db || !words) return cli_usage_error("steer measure topic: --model DIR, --db FILE and --words FILE are required");
    float levels[32];
    int n_levels;
    BpError err = {{0}};
    if (parse_strengths(strengths, levels, 32, &n_levels, &err)) return cli_usage_error(err.msg);
    SteerSetup s;
    if (setup(&s, model_dir, db, STORE_READ_ONLY, &err)) return fail(&s, err.msg);
    if (s.m.config.arch != ARCH_BACKPACK) return fail(&s, "steer measure topic: sense weights need a Backpack model");
    SteerWords topic;
    if (steer_read_words(words, s.tok, &topic, stderr, &err)) return fail(&s, err.msg);
    int **prompts = NULL, *lens = NULL, n_prompts = 0;
    const int V = s.m.config.vocab_size, k = s.m.config.num_senses;
    float *scores = malloc((size_t)V * k * sizeof *scores);
    cfg.eot = tokenizer_eot(s.tok);
    int r = scores ? steer_read_prompts(prompts_path, s.tok, &prompts, &lens, &n_prompts, &err)
                   : bp_fail(&err, "out of memory");
    if (!r) r = steer_topic_scores(s.store, &topic, scores, &err);
    if (!r) printf("%-9s %8s %12s %10s %11s\n", "strength", "senses", "generations", "hit share", "perplexity");
    for (int i = 0; i < n_levels && !r; i++) {
        SteerPlan plan;
        SenseEdits edits = {0};
        TopicMeasure res;
        r = steer_topic_plan(scores, V, k, levels[i], &plan, &err);
        if (!r) r = steer_plan_edits(&plan, &edits, &err);
        if (!r) r = steer_measure_topic(&s.m, plan.count ? &edits : NULL, &topic, prompts, lens, n_prompts, &cfg,
                                        &res, &err);
        if (!r) {
            printf("%-9g %8d %12d %10.3f %11.2f\n", levels[i], plan.count, res.generations, res.hit_share,
                   res.perplexity);
            fflush(stdout);
        }
        free((void *)edits.items);
        steer_plan_free(&plan);
    }
    steer_prompts_free(prompts, lens, n_prompts);
    free(scores);
    steer_words_free(&topic);
    return finish(&s, r, err.msg);
}

static int measure_bias(int argc, char **argv) {
    const char *model_dir = NULL, *edits_db = NULL, *prof_path = NULL, *pronouns = "he,she", *tmpl_path = NULL;
    int on_train = 0;
    const ArgOption opts[] = {
        {"--model", ARG_STRING, &model_dir, .meta = "DIR", .help = "the model (either architecture)"},
        {"--edits", ARG_STRING, &edits_db, .meta = "DB", .help = "with the sense edits of this sense database in force"},
        BIAS_OPTIONS(prof_path, pronouns, tmpl_path),
        {"--train", ARG_FLAG, &on_train, .help = "measure on the training templates instead of the held-out ones"},
        {0}};
    const ArgSpec spec = {"steer measure bias",
        "usage: backpack steer measure bias --model DIR --professions FILE [--edits DB]\n"
        "The paper's metric by full forward passes: mean over professions x held-out templates\n"
        "of max(p(he)/p(she), p(she)/p(he)) for the token after the template (1 = unbiased).\n",
        opts, .given = NULL};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    if (!model_dir || !prof_path) return cli_usage_error("steer measure bias: --model DIR and --professions FILE are required");
    BpError err = {{0}};
    SteerSetup s;
    if (setup(&s, model_dir, NULL, STORE_READ_ONLY, &err)) return fail(&s, err.msg);
    int he, she;
    if (parse_pronouns(s.tok, pronouns, &he, &she, &err)) return fail(&s, err.msg);
    SenseEdits edits = {0};
    if (edits_db) {
        if (sense_edits_load(edits_db, &s.m, &edits, &err)) return fail(&s, err.msg);
        s.m.edits = &edits;
    }
    SteerWords prof = {0};
    SteerTemplates t = {0};
    double bias;
    int r = steer_read_words(prof_path, s.tok, &prof, stderr, &err);
    if (!r) r = steer_read_templates(tmpl_path, &t, &err);
    if (!r) r = steer_bias_forward(&s.m, s.tok, &prof, on_train ? t.train : t.test, on_train ? t.n_train : t.n_test,
                                   he, she, &bias, &err);
    if (!r) printf("bias %.4f (%d professions x %d %s templates%s)\n", bias, prof.count,
                   on_train ? t.n_train : t.n_test, on_train ? "training" : "held-out", edits_db ? ", edits in force" : "");
    s.m.edits = NULL;
    sense_edits_free(&edits);
    steer_templates_free(&t);
    steer_words_free(&prof);
    return finish(&s, r, err.msg);
}

int cmd_steer(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(steer_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "topic")) return steer_topic(argc - 1, argv + 1);
    if (!strcmp(argv[1], "debias")) return steer_debias(argc - 1, argv + 1);
    if (!strcmp(argv[1], "measure")) {
        if (argc >= 3 && !strcmp(argv[2], "topic")) return measure_topic(argc - 2, argv + 2);
        if (argc >= 3 && !strcmp(argv[2], "bias")) return measure_bias(argc - 2, argv + 2);
        return cli_usage_error("steer measure: expected 'topic' or 'bias'");
    }
    fprintf(stderr, "backpack: steer: unknown subcommand '%s'\n%s", argv[1], steer_usage);
    return 2;
}
