/* cmd_geometry.c - `backpack geometry`: random directions in high dimensions (sampled
 * and exact), the angles, effective dimensionality and Welch bound of a trained model's
 * sense vectors and embeddings, and an outer-product associative memory. The math is
 * senses/geometry.h's; pictures go through plot/plot.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/args.h"
#include "../common/rng.h"
#include "../model/checkpoint.h"
#include "../plot/plot.h"
#include "../senses/geometry.h"
#include "../senses/store.h"
#include "../text/tokenizer.h"
#include "commands.h"

static const char geometry_synopsis[] =
    "usage: backpack geometry random --dims D,D,... [--band LO:HI] [--pairs N] [--seed S] [--json]\n"
    "       backpack geometry senses (--db FILE | --model DIR) [--sample N] [--seed S] [--plot FILE]\n"
    "       backpack geometry memory --dims D,D,... --pairs N,N,... [--seed S] [--plot FILE]\n"
    "\n"
    "random: the share of random pairs of directions whose angle lies in a band, sampled and\n"
    "  exact. senses: angles, effective dimensionality and the Welch bound of a model's sense\n"
    "  vectors and embeddings against Gaussian vectors. memory: recall of an outer-product\n"
    "  associative memory. backpack geometry <random|senses|memory> --help for each.\n";

static const char random_synopsis[] =
    "usage: backpack geometry random --dims D,D,... [--band LO:HI] [--pairs N] [--seed S] [--json]\n"
    "\n"
    "The share of random pairs of directions whose angle lies in the band, sampled (from\n"
    "Gaussian vectors) beside the exact value from the law of the cosine of two random\n"
    "directions in d dimensions, density ~ (1 - t^2)^((d-3)/2), and the sampling sd.\n";

static const char senses_synopsis[] =
    "usage: backpack geometry senses (--db FILE | --model DIR) [--sample N] [--seed S] [--plot FILE]\n"
    "\n"
    "N words sampled uniformly from the vocabulary: angles between random pairs, between a\n"
    "word's own senses and between nearest neighbours, for the sense vectors and the\n"
    "embeddings E, beside Gaussian vectors of the same count and d; the share in 89-91\n"
    "degrees; effective dimensionality (participation ratio); the largest |cos| against the\n"
    "Welch bound. --model DIR: a checkpoint's embeddings only (e.g. a Transformer).\n";

static const char memory_synopsis[] =
    "usage: backpack geometry memory --dims D,D,... --pairs N,N,... [--seed S] [--plot FILE]\n"
    "\n"
    "Recall of W = sum_k v_k u_k^T over N random Gaussian key/value pairs in d dimensions:\n"
    "the share of keys k with argmax_j v_j . W u_k == k, and where it breaks down.\n";

/* "2,3,100" -> values; each in [min, max]. */
static int parse_list(const char *flag, const char *s, long min, long max, int *out, int cap, int *n,
                      BpError *err) {
    *n = 0;
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", s) >= (int)sizeof buf) return bp_fail(err, "%s: list too long", flag);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == cap) return bp_fail(err, "%s: at most %d values", flag, cap);
        if (arg_int(flag, tok, min, max, &out[*n], err) != 0) return -1;
        (*n)++;
    }
    if (*n == 0) return bp_fail(err, "%s: expected a comma-separated list, got '%s'", flag, s);
    return 0;
}

/* ---- random -------------------------------------------------------------------------- */

static int geometry_random(int argc, char **argv) {
    BpError err = {{0}};
    int dims[32], n_dims = 0, json = 0;
    double lo = 89, hi = 91;
    uint64_t pairs = 200000, seed = 1;
    const char *dims_s = NULL, *band_s = "89:91";
    const ArgOption opts[] = {
        {"--dims", ARG_STRING, &dims_s, .meta = "D,D,...", .help = "dimensions, 2 to 1000000"},
        {"--band", ARG_STRING, &band_s, .meta = "LO:HI", .help = "the band of angles in degrees (89:91)"},
        {"--pairs", ARG_U64, &pairs, 1, 20000000, "N", "pairs sampled per dimension (200000)", 0},
        {"--seed", ARG_U64, &seed, 0, 0, "S", "seed of the Gaussian vectors (1; d number i uses S + i)", 0},
        {"--json", ARG_FLAG, &json, .help = "one JSON object a line: {\"d\", \"fraction\", \"exact\", \"pairs\"}"},
        {0}};
    const ArgSpec spec = {"geometry random", random_synopsis, opts, .positional = NULL};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    if (!dims_s) return cli_usage_error("geometry random: --dims D,D,... is required");
    if (parse_list("--dims", dims_s, 2, 1000000, dims, 32, &n_dims, &err) != 0) return cli_usage_error(err.msg);
    char tail;
    if (sscanf(band_s, "%lf:%lf%c", &lo, &hi, &tail) != 2 || !(lo >= 0) || !(hi <= 180) || !(lo <= hi)) {
        snprintf(err.msg, sizeof err.msg,
                 "--band: expected LO:HI degrees with 0 <= LO <= HI <= 180, got '%s'", band_s);
        return cli_usage_error(err.msg);
    }
    if (!json)
        printf("share of random pairs of directions at %g to %g degrees (%llu pairs per d, seed %llu)\n"
               "%8s %10s %10s %10s\n",
               lo, hi, (unsigned long long)pairs, (unsigned long long)seed, "d", "sampled", "exact", "sd");
    for (int i = 0; i < n_dims; i++) {
        double fraction;
        if (geometry_band_sample(dims[i], lo, hi, (long)pairs, seed + (uint64_t)i, &fraction, &err) != 0)
            return cli_error(err.msg);
        double exact = geometry_band_exact(dims[i], lo, hi);
        if (json)
            printf("{\"d\": %d, \"fraction\": %.6f, \"exact\": %.6f, \"pairs\": %llu}\n", dims[i], fraction, exact,
                   (unsigned long long)pairs);
        else
            printf("%8d %9.2f%% %9.2f%% %9.2f%%\n", dims[i], 100 * fraction, 100 * exact,
                   100 * sqrt(exact * (1 - exact) / (double)pairs));
        fflush(stdout);
    }
    return 0;
}

/* ---- senses ---------------------------------------------------------------------------- */

typedef struct {
    AngleStats pairs, own, nearest;
    double pr, max_abs;
    int n, d;
} SetStats;

static void print_row(const char *name, const AngleStats *a) {
    if (!a->pairs) return;
    printf("  %-34s %10ld %7.2f %6.2f %8.2f%%\n", name, a->pairs, angle_stats_mean(a), angle_stats_sd(a),
           100 * angle_stats_band(a));
}

/* Angles (pairs across groups, nearest neighbours), participation ratio and max |cos|. */
static int set_stats(const float *X, int n, int d, const int *group, SetStats *s, BpError *err) {
    angle_stats_init(&s->pairs, 89, 91);
    angle_stats_init(&s->own, 89, 91);
    angle_stats_init(&s->nearest, 89, 91);
    s->n = n, s->d = d;
    if (geometry_pair_angles(X, n, d, group, &s->pairs, &s->nearest, err) != 0) return -1;
    double *eig = malloc(sizeof *eig * (size_t)d);
    if (!eig) return bp_fail(err, "out of memory");
    int rc = geometry_pca(X, n, d, 0, NULL, eig, err);
    s->pr = rc == 0 ? geometry_participation_ratio(eig, d) : NAN;
    free(eig);
    if (rc == 0) rc = geometry_max_abs_cos(X, n, d, &s->max_abs, err);
    return rc;
}

static void histogram_series(const AngleStats *a, double *x, double *y, const char *label, PlotSeries *out) {
    for (int b = 0; b < GEOMETRY_BINS; b++) {
        x[b] = b + 0.5;
        y[b] = a->pairs ? (double)a->count[b] / a->pairs : 0;
    }
    *out = (PlotSeries){label, x, y, GEOMETRY_BINS};
}

static int plot_angles(const char *path, const SetStats *sv, const SetStats *sg, const SetStats *ev,
                       const SetStats *eg, BpError *err) {
    static double xs[9][GEOMETRY_BINS], ys[9][GEOMETRY_BINS];
    PlotSeries left[5], right[4];
    int nl = 0, nr = 0;
    if (sv) {
        histogram_series(&sv->pairs, xs[0], ys[0], "senses: random pairs", &left[nl++]);
        histogram_series(&sv->own, xs[1], ys[1], "senses: a word's own senses", &left[nl++]);
        histogram_series(&sv->nearest, xs[2], ys[2], "senses: nearest neighbour", &left[nl++]);
        histogram_series(&sg->pairs, xs[3], ys[3], "Gaussian: random pairs", &left[nl++]);
        histogram_series(&sg->nearest, xs[4], ys[4], "Gaussian: nearest neighbour", &left[nl++]);
    }
    histogram_series(&ev->pairs, xs[5], ys[5], "E: random pairs", &right[nr++]);
    histogram_series(&ev->nearest, xs[6], ys[6], "E: nearest neighbour", &right[nr++]);
    histogram_series(&eg->pairs, xs[7], ys[7], "Gaussian: random pairs", &right[nr++]);
    histogram_series(&eg->nearest, xs[8], ys[8], "Gaussian: nearest neighbour", &right[nr++]);
    /* headroom above the highest bar for the legend */
    double top_l = 0, top_r = 0;
    for (int i = 0; i < nl; i++)
        for (int b = 0; b < GEOMETRY_BINS; b++) top_l = fmax(top_l, left[i].y[b]);
    for (int i = 0; i < nr; i++)
        for (int b = 0; b < GEOMETRY_BINS; b++) top_r = fmax(top_r, right[i].y[b]);
    char lt[128], rt[128];
    if (sv) snprintf(lt, sizeof lt, "sense vectors (%d of d = %d)", sv->n, sv->d);
    snprintf(rt, sizeof rt, "embeddings E (%d of d = %d)", ev->n, ev->d);
    PlotLineChart cl = {.title = lt, .x_label = "angle (degrees)", .y_label = "share of pairs per degree",
                        .series = left, .n_series = nl, .x_min = 0, .x_max = 180, .y_min = 0,
                        .y_max = top_l > 0 ? 2.2 * top_l : 1, .legend = 1};
    PlotLineChart cr = {.title = rt, .x_label = "angle (degrees)", .y_label = "share of pairs per degree",
                        .series = right, .n_series = nr, .x_min = 0, .x_max = 180, .y_min = 0,
                        .y_max = top_r > 0 ? 2.2 * top_r : 1, .legend = 1};
    PlotFigure *fig;
    if (plot_open(&fig, path, sv ? 1400 : 700, 600, 1, sv ? 2 : 1, err) != 0) return -1;
    if ((sv && plot_line_chart(fig, &cl, err) != 0) || plot_line_chart(fig, &cr, err) != 0) {
        plot_discard(fig);
        return -1;
    }
    return plot_close(fig, err);
}

/* Rows of E for n_words words sampled uniformly from a checkpoint's tokenizer vocabulary. */
static int sample_checkpoint(const char *dir, int n_words, uint64_t seed, float **E_out, int *got, int *d_out,
                             BpError *err) {
    Backpack m;
    Tokenizer *tok;
    if (checkpoint_load(&m, dir, err) != 0) return -1;
    if (tokenizer_load(&tok, dir, err) != 0) {
        backpack_free(&m);
        return -1;
    }
    int V = tokenizer_vocab_size(tok), d = m.config.n_embd;
    tokenizer_free(tok);
    if (V > m.config.vocab_size) V = m.config.vocab_size;
    int *ids = malloc(sizeof *ids * (size_t)V);
    int n = n_words < V ? n_words : V;
    float *E = malloc(sizeof *E * (size_t)n * d);
    if (!ids || !E) {
        free(ids), free(E);
        backpack_free(&m);
        return bp_fail(err, "out of memory");
    }
    for (int i = 0; i < V; i++) ids[i] = i;
    Rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        int j = i + (int)rng_below(&r, (uint64_t)(V - i)), t = ids[i];
        ids[i] = ids[j], ids[j] = t;
        memcpy(E + (size_t)i * d, m.params.wte + (size_t)ids[i] * d, sizeof(float) * (size_t)d);
    }
    free(ids);
    backpack_free(&m);
    *E_out = E, *got = n, *d_out = d;
    return 0;
}

static int geometry_senses(int argc, char **argv) {
    BpError err = {{0}};
    const char *db = NULL, *model = NULL, *plot = NULL;
    int sample = 300;
    uint64_t seed = 1;
    const ArgOption opts[] = {
        {"--db", ARG_STRING, &db, .meta = "FILE", .help = "a sense database (backpack export)"},
        {"--model", ARG_STRING, &model, .meta = "DIR", .help = "or a checkpoint: its embeddings only"},
        {"--sample", ARG_INT, &sample, 2, 20000, "N", "words sampled (300)", 0},
        {"--seed", ARG_U64, &seed, 0, 0, "S", "seed of the sample and the Gaussian vectors (1)", 0},
        {"--plot", ARG_STRING, &plot, .meta = "FILE", .help = "histograms of the angles (.png, .svg, .pdf)"},
        {0}};
    const ArgSpec spec = {"geometry senses", senses_synopsis, opts, .positional = NULL};
    int parsed = cli_parse(&spec, argc, argv);
    if (parsed >= 0) return parsed;
    if ((db != NULL) == (model != NULL))
        return cli_usage_error("geometry senses: give exactly one of --db FILE and --model DIR");
    PlotFormat format;
    if (plot && plot_format_for_path(plot, &format, &err) != 0) return cli_error(err.msg);

    SenseStore *st = NULL;
    float *S = NULL, *E = NULL, *G = NULL;
    int *tokens = NULL, *group = NULL, got = 0, k = 0, d = 0, rc = 1;
    if (db) {
        if (store_open(&st, db, STORE_READ_ONLY, &err) != 0) return cli_error(err.msg);
        k = store_info(st)->config.num_senses, d = store_info(st)->config.n_embd;
        if (k < 1) {
            bp_fail(&err, "%s: the model has no senses (a Transformer): use --model DIR for its embeddings", db);
            goto done;
        }
        tokens = malloc(sizeof *tokens * (size_t)sample);
        S = malloc(sizeof *S * (size_t)sample * k * d);
        E = malloc(sizeof *E * (size_t)sample * d);
        if (!tokens || !S || !E) {
            bp_fail(&err, "out of memory");
            goto done;
        }
        if (geometry_sample_store(st, sample, seed, tokens, S, E, &got, &err) != 0) goto done;
        printf("%s: d = %d, k = %d senses; %d words sampled uniformly (seed %llu)\n", db, d, k, got,
               (unsigned long long)seed);
    } else {
        if (sample_checkpoint(model, sample, seed, &E, &got, &d, &err) != 0) goto done;
        printf("%s: d = %d, embeddings only; %d words sampled uniformly (seed %llu)\n", model, d, got,
               (unsigned long long)seed);
    }
    if (got < 2) {
        bp_fail(&err, "fewer than 2 words to compare");
        goto done;
    }
    int n_s = got * k, n_g = n_s > got ? n_s : got;
    G = malloc(sizeof *G * (size_t)n_g * d);
    group = malloc(sizeof *group * (size_t)(n_s > 0 ? n_s : 1));
    if (!G || !group) {
        bp_fail(&err, "out of memory");
        goto done;
    }
    geometry_gaussian(G, (size_t)n_g * d, seed ^ 0x5bd1e995);
    SetStats sv, sg, ev, eg;
    printf("\nangles (degrees) %28s %10s %7s %6s %9s\n", "", "pairs", "mean", "sd", "89-91");
    if (db) {
        for (int i = 0; i < n_s; i++) group[i] = i / k;
        if (set_stats(S, n_s, d, group, &sv, &err) != 0) goto done;
        for (int w = 0; w < got; w++)
            for (int a = 0; a < k; a++)
                for (int b = a + 1; b < k; b++) {
                    const float *x = S + ((size_t)w * k + a) * d, *y = S + ((size_t)w * k + b) * d;
                    angle_stats_add(&sv.own, store_cosine(x, y, d));
                }
        if (set_stats(G, n_s, d, NULL, &sg, &err) != 0) goto done;
        print_row("sense vectors: random pairs", &sv.pairs);
        print_row("sense vectors: a word's own senses", &sv.own);
        print_row("sense vectors: nearest neighbour", &sv.nearest);
        print_row("Gaussian, same n: random pairs", &sg.pairs);
        print_row("Gaussian, same n: nearest", &sg.nearest);
    }
    if (set_stats(E, got, d, NULL, &ev, &err) != 0) goto done;
    if (set_stats(G, got, d, NULL, &eg, &err) != 0) goto done;
    print_row("embeddings E: random pairs", &ev.pairs);
    print_row("embeddings E: nearest neighbour", &ev.nearest);
    print_row("Gaussian, same n: random pairs", &eg.pairs);
    print_row("Gaussian, same n: nearest", &eg.nearest);
    printf("  exact for random directions in %d dims: %.2f%% in 89-91\n", d, 100 * geometry_band_exact(d, 89, 91));

    printf("\neffective dimensionality (participation ratio of the centered singular values, of d = %d)\n", d);
    if (db) printf("  sense vectors %.1f   Gaussian (n = %d) %.1f\n", sv.pr, n_s, sg.pr);
    printf("  embeddings E  %.1f   Gaussian (n = %d) %.1f\n", ev.pr, got, eg.pr);
    printf("\nlargest |cos| between sampled vectors, against the Welch bound sqrt((N - d) / (d (N - 1)))\n");
    if (db)
        printf("  %d sense vectors: %.4f   Gaussian %.4f   Welch bound %.4f\n", n_s, sv.max_abs, sg.max_abs,
               geometry_welch_bound(n_s, d));
    printf("  %d embeddings:    %.4f   Gaussian %.4f   Welch bound %.4f\n", got, ev.max_abs, eg.max_abs,
           geometry_welch_bound(got, d));
    if (plot) {
        if (plot_angles(plot, db ? &sv : NULL, db ? &sg : NULL, &ev, &eg, &err) != 0) goto done;
        printf("\nwrote %s\n", plot);
    }
    rc = 0;
done:
    if (rc) cli_error(err.msg);
    if (st) store_close(st);
    free(S), free(E), free(G), free(tokens), free(group);
    return rc;
}

/* ---- memory ---------------------------------------------------------------------------- */

static int geometry_memory(int argc, char **argv) {
    BpError err = {{0}};
    int dims[16], n_dims = 0, pairs[32], n_pairs = 0;
    uint64_t seed = 1;
    const char *plot = NULL, *dims_s = NULL, *pairs_s = NULL;
    const ArgOption opts[] = {
        {"--dims", ARG_STRING, &dims_s, .meta = "D,D,...", .help = "dimensions, 1 to 4096"},
        {"--pairs", ARG_STRING, &pairs_s, .meta = "N,N,...", .help = "numbers of stored pairs, 1 to 16384"},
        {"--seed", ARG_U64, &seed, 0, 0, "S", "seed of the keys and values (1)", 0},
        {"--plot", ARG_STRING, &plot, .meta = "FILE", .help = "recall against N, one line per d"},
        {0}};
    const ArgSpec spec = {"geometry memory", memory_synopsis, opts, .positional = NULL};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    if (!dims_s || !pairs_s) return cli_usage_error("geometry memory: --dims and --pairs are required");
    if (parse_list("--dims", dims_s, 1, 4096, dims, 16, &n_dims, &err) != 0 ||
        parse_list("--pairs", pairs_s, 1, 16384, pairs, 32, &n_pairs, &err) != 0)
        return cli_usage_error(err.msg);
    PlotFormat format;
    if (plot && plot_format_for_path(plot, &format, &err) != 0) return cli_error(err.msg);
    static double acc[16][32], xs[16][32];
    printf("recall of W = sum_k v_k u_k^T (random Gaussian keys and values, seed %llu)\n%8s",
           (unsigned long long)seed, "d \\ N");
    for (int j = 0; j < n_pairs; j++) printf(" %7d", pairs[j]);
    printf("\n");
    for (int i = 0; i < n_dims; i++) {
        printf("%8d", dims[i]);
        for (int j = 0; j < n_pairs; j++) {
            if (geometry_memory_recall(dims[i], pairs[j], seed, &acc[i][j], &err) != 0) return cli_error(err.msg);
            xs[i][j] = pairs[j];
            printf(" %7.3f", acc[i][j]);
            fflush(stdout);
        }
        printf("\n");
    }
    printf("\nwhere recall breaks down (on this grid of N)\n");
    for (int i = 0; i < n_dims; i++) {
        int last_perfect = 0, first_half = 0;
        for (int j = 0; j < n_pairs; j++) {
            if (acc[i][j] == 1.0 && (!last_perfect || pairs[j] > last_perfect)) last_perfect = pairs[j];
            if (acc[i][j] < 0.5 && (!first_half || pairs[j] < first_half)) first_half = pairs[j];
        }
        if (last_perfect)
            printf("  d = %4d: all recalled up to N = %d (N/d = %.2f)", dims[i], last_perfect,
                   (double)last_perfect / dims[i]);
        else printf("  d = %4d: never all recalled", dims[i]);
        if (first_half) printf("; under half from N = %d (N/d = %.2f)", first_half, (double)first_half / dims[i]);
        printf("\n");
    }
    if (plot) {
        PlotSeries s[16];
        char names[16][32];
        for (int i = 0; i < n_dims; i++) {
            snprintf(names[i], sizeof names[i], "d = %d", dims[i]);
            s[i] = (PlotSeries){names[i], xs[i], acc[i], n_pairs};
        }
        PlotLineChart c = {.title = "recall of an outer-product associative memory", .x_label = "pairs stored N",
                           .y_label = "recall", .series = s, .n_series = n_dims, .y_min = 0, .y_max = 1.05,
                           .log_x = 1, .legend = 1};
        PlotFigure *fig;
        if (plot_open(&fig, plot, 800, 560, 1, 1, &err) != 0) return cli_error(err.msg);
        if (plot_line_chart(fig, &c, &err) != 0) {
            plot_discard(fig);
            return cli_error(err.msg);
        }
        if (plot_close(fig, &err) != 0) return cli_error(err.msg);
        printf("\nwrote %s\n", plot);
    }
    return 0;
}

int cmd_geometry(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "random")) return geometry_random(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "senses")) return geometry_senses(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "memory")) return geometry_memory(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))) {
        fputs(geometry_synopsis, stdout);
        return 0;
    }
    char msg[300];
    snprintf(msg, sizeof msg, "geometry: expected random, senses or memory%s%s%s", argc >= 2 ? ", got '" : "",
             argc >= 2 ? argv[1] : "", argc >= 2 ? "'" : "");
    return cli_usage_error(msg);
}
