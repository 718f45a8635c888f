/* cmd_plot.c - `backpack plot`: training curves of runs (a picture or the terminal),
 * and pictures of a sense database's senses. Drawing is plot/plot.h's, reading the
 * runs plot/metrics.h's, the PCA senses/geometry.h's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../common/args.h"
#include "../common/fileio.h"
#include "../plot/metrics.h"
#include "../plot/plot.h"
#include "../senses/geometry.h"
#include "../senses/store.h"
#include "commands.h"

static const char plot_synopsis[] =
    "usage: backpack plot RUN_DIR... --out FILE.png|.svg|.pdf [--x tokens|time|step]\n"
    "                     [--width W] [--height H]\n"
    "       backpack plot --term RUN_DIR... [--x tokens|time|step] [--width COLS] [--height ROWS]\n"
    "       backpack plot senses --db FILE WORD... --out FILE.png|.svg|.pdf [-n N]\n"
    "\n"
    "Runs: each run directory's metrics.jsonl (written by backpack train), overlaid with a\n"
    "legend (the directory names): training loss, validation loss, learning rate and\n"
    "gradient norm against tokens seen (default), minutes of training, or steps. --term\n"
    "draws the losses in the terminal instead (braille dots).\n"
    "Senses (backpack plot senses --help): one WORD draws each of its k senses' top and\n"
    "bottom N words as bars of their scores E C(x)_l; several WORDs draw their sense vectors\n"
    "on the plane of their first two principal components.\n"
    "The picture's format follows the file's extension.\n";

static const char plot_senses_synopsis[] =
    "usage: backpack plot senses --db FILE WORD... --out FILE.png|.svg|.pdf [-n N]\n"
    "\n"
    "One WORD: a bar chart per sense of its top and bottom N words by score E C(x)_l (the\n"
    "vectors in force, edits included). Several WORDs: every sense vector of each, projected\n"
    "on the first two principal components of all of them, one colour per word.\n";

typedef enum { X_TOKENS, X_TIME, X_STEP } XAxis;

/* The run's name in the legend: the directory's last component. */
static const char *run_name(const char *dir, char *buf, size_t size) {
    snprintf(buf, size, "%s", dir);
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = '\0';
    const char *slash = strrchr(buf, '/');
    return slash && slash[1] ? slash + 1 : buf;
}

typedef struct {
    RunMetrics m;
    char name[256];
    double *x, *val_x, *minutes;   /* x of each train / val row for the chosen axis */
} Run;

static int load_runs(const char *const *dirs, int n_runs, XAxis axis, Run *runs, BpError *err) {
    for (int r = 0; r < n_runs; r++) {
        char path[4096], nb[256];
        if (path_join(path, sizeof path, dirs[r], "metrics.jsonl", err) != 0) return -1;
        if (run_metrics_read(path, &runs[r].m, err) != 0) return -1;
        if (runs[r].m.note[0]) fprintf(stderr, "backpack: note: %s\n", runs[r].m.note);
        snprintf(runs[r].name, sizeof runs[r].name, "%s", run_name(dirs[r], nb, sizeof nb));
        const RunMetrics *m = &runs[r].m;
        runs[r].x = malloc(sizeof(double) * (size_t)(m->n + 1));
        runs[r].val_x = malloc(sizeof(double) * (size_t)(m->n_val + 1));
        if (!runs[r].x || !runs[r].val_x) return bp_fail(err, "out of memory");
        for (int i = 0; i < m->n; i++)
            runs[r].x[i] = axis == X_TOKENS ? m->tokens[i] : axis == X_TIME ? m->elapsed[i] / 60 : m->step[i];
        for (int i = 0; i < m->n_val; i++)
            runs[r].val_x[i] = axis == X_TOKENS ? m->val_tokens[i]
                               : axis == X_TIME ? m->val_elapsed[i] / 60
                                                : m->val_step[i];
    }
    return 0;
}

static void free_runs(Run *runs, int n_runs) {
    for (int r = 0; r < n_runs; r++) {
        run_metrics_free(&runs[r].m);
        free(runs[r].x), free(runs[r].val_x);
    }
    free(runs);
}

static const char *axis_label(XAxis a) {
    return a == X_TOKENS ? "tokens seen" : a == X_TIME ? "minutes of training" : "step";
}

static int plot_runs_picture(Run *runs, int n_runs, XAxis axis, const char *out, int width, int height,
                             BpError *err) {
    PlotSeries *s = calloc((size_t)n_runs * 4, sizeof *s);
    if (!s) return bp_fail(err, "out of memory");
    PlotSeries *train = s, *val = s + n_runs, *lr = s + 2 * n_runs, *gn = s + 3 * n_runs;
    for (int r = 0; r < n_runs; r++) {
        const RunMetrics *m = &runs[r].m;
        train[r] = (PlotSeries){runs[r].name, runs[r].x, m->loss, m->n};
        val[r] = (PlotSeries){runs[r].name, runs[r].val_x, m->val_loss, m->n_val};
        lr[r] = (PlotSeries){runs[r].name, runs[r].x, m->lr, m->n};
        gn[r] = (PlotSeries){runs[r].name, runs[r].x, m->grad_norm, m->n};
    }
    const char *xl = axis_label(axis);
    PlotLineChart charts[4] = {
        {.title = "training loss", .x_label = xl, .y_label = "loss (nats/token)", .series = train,
         .n_series = n_runs, .legend = 1},
        {.title = "validation loss", .x_label = xl, .y_label = "loss (nats/token)", .series = val,
         .n_series = n_runs, .legend = 1},
        {.title = "learning rate", .x_label = xl, .y_label = "lr", .series = lr, .n_series = n_runs},
        {.title = "gradient norm (before clipping)", .x_label = xl, .y_label = "norm", .series = gn,
         .n_series = n_runs, .log_y = 1},
    };
    PlotFigure *fig;
    int rc = plot_open(&fig, out, width, height, 2, 2, err);
    for (int i = 0; i < 4 && rc == 0; i++) rc = plot_line_chart(fig, &charts[i], err);
    if (rc == 0) rc = plot_close(fig, err);
    else if (fig) plot_discard(fig);
    free(s);
    return rc;
}

static int plot_runs_term(Run *runs, int n_runs, XAxis axis, int width, int height, BpError *err) {
    PlotSeries *s = calloc((size_t)n_runs * 2, sizeof *s);
    char (*names)[300] = calloc((size_t)n_runs * 2, sizeof *names);
    if (!s || !names) {
        free(s), free(names);
        return bp_fail(err, "out of memory");
    }
    int n = 0;
    for (int r = 0; r < n_runs; r++) {
        const RunMetrics *m = &runs[r].m;
        snprintf(names[n], sizeof names[n], "%s: training loss", runs[r].name);
        s[n] = (PlotSeries){names[n], runs[r].x, m->loss, m->n}, n++;
        if (m->n_val > 0) {
            snprintf(names[n], sizeof names[n], "%s: validation loss", runs[r].name);
            s[n] = (PlotSeries){names[n], runs[r].val_x, m->val_loss, m->n_val}, n++;
        }
    }
    char title[256];
    snprintf(title, sizeof title, "loss (nats/token) against %s", axis_label(axis));
    PlotLineChart chart = {.title = title, .x_label = axis_label(axis), .series = s, .n_series = n};
    PlotText text;
    int colour = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
    int rc = plot_term_lines(&chart, width, height, colour, &text, err);
    if (rc == 0) {
        for (int i = 0; i < text.n_lines; i++) printf("%s\n", text.lines[i]);
        plot_text_free(&text);
    }
    free(s), free(names);
    return rc;
}

/* One word: a bar chart per sense of its top and bottom n words. */
static int plot_one_word(SenseStore *st, const StoreWord *w, int n, const char *out, BpError *err) {
    int k = store_info(st)->config.num_senses, d = store_info(st)->config.n_embd;
    float *vec = malloc(sizeof *vec * (size_t)k * d);
    WordScore *top = malloc(sizeof *top * (size_t)n), *bottom = malloc(sizeof *bottom * (size_t)n);
    double *values = malloc(sizeof *values * (size_t)2 * n);
    const char **labels = malloc(sizeof *labels * (size_t)2 * n);
    PlotFigure *fig = NULL;
    int rc = -1;
    if (!vec || !top || !bottom || !values || !labels) {
        bp_fail(err, "out of memory");
        goto done;
    }
    if (store_word_senses(st, w, vec, err) != 0) goto done;
    int cols = 1;
    while (cols * cols < k) cols++;
    int rows = (k + cols - 1) / cols;
    if (plot_open(&fig, out, 340 * cols, 300 * rows, rows, cols, err) != 0) goto done;
    for (int l = 0; l < k; l++) {
        int got = store_score_vector(st, vec + (size_t)l * d, n, top, bottom, err);
        if (got < 0) goto done;
        for (int i = 0; i < got; i++) {
            values[i] = top[i].score, labels[i] = store_token_text(st, top[i].id);
            /* the bottom list is lowest first: draw it below, lowest at the bottom */
            values[got + i] = bottom[got - 1 - i].score;
            labels[got + i] = store_token_text(st, bottom[got - 1 - i].id);
        }
        char title[256];
        snprintf(title, sizeof title, "'%s' sense %d", w->text, l);
        PlotBarChart chart = {.title = title, .x_label = "score E C(x)", .labels = labels,
                              .values = values, .n = 2 * got};
        if (plot_bar_chart(fig, &chart, err) != 0) goto done;
    }
    rc = plot_close(fig, err);
    fig = NULL;
done:
    plot_discard(fig);
    free(vec), free(top), free(bottom), free(values), free(labels);
    return rc;
}

/* Several words: their senses on the plane of the first two principal components. */
static int plot_words_map(SenseStore *st, const StoreWord *w, int n_words, const char *out, BpError *err) {
    int k = store_info(st)->config.num_senses, d = store_info(st)->config.n_embd;
    int n = n_words * k;
    float *vec = malloc(sizeof *vec * (size_t)n * d);
    double *xy = malloc(sizeof *xy * (size_t)n * 2), *x = malloc(sizeof *x * (size_t)n),
           *y = malloc(sizeof *y * (size_t)n);
    int *group = malloc(sizeof *group * (size_t)n);
    char (*text)[160] = malloc(sizeof *text * (size_t)n);
    const char **labels = malloc(sizeof *labels * (size_t)n), **names = malloc(sizeof *names * (size_t)n_words);
    double *eig = malloc(sizeof *eig * (size_t)d);
    PlotFigure *fig = NULL;
    int rc = -1;
    if (!vec || !xy || !x || !y || !group || !text || !labels || !names || !eig) {
        bp_fail(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < n_words; i++) {
        if (store_word_senses(st, &w[i], vec + (size_t)i * k * d, err) != 0) goto done;
        names[i] = w[i].text;
    }
    if (geometry_pca(vec, n, d, d >= 2 ? 2 : 1, xy, eig, err) != 0) goto done;
    double total = 0;
    for (int j = 0; j < d; j++) total += eig[j];
    for (int i = 0; i < n; i++) {
        x[i] = xy[(size_t)i * 2];
        y[i] = d >= 2 ? xy[(size_t)i * 2 + 1] : 0;
        group[i] = i / k;
        snprintf(text[i], sizeof text[i], "%s %d", w[i / k].text, i % k);
        labels[i] = text[i];
    }
    char xl[64], yl[64];
    snprintf(xl, sizeof xl, "PC1 (%.0f%% of the variance)", total > 0 ? 100 * eig[0] / total : 0);
    snprintf(yl, sizeof yl, "PC2 (%.0f%% of the variance)", total > 0 && d >= 2 ? 100 * eig[1] / total : 0);
    PlotScatter chart = {.title = "sense vectors C(x)_l, first two principal components",
                         .x_label = xl, .y_label = yl, .x = x, .y = y, .labels = labels,
                         .group = group, .group_names = names, .n = n, .n_groups = n_words};
    if (plot_open(&fig, out, 1000, 800, 1, 1, err) != 0) goto done;
    if (plot_scatter(fig, &chart, err) != 0) goto done;
    rc = plot_close(fig, err);
    fig = NULL;
done:
    plot_discard(fig);
    free(vec), free(xy), free(x), free(y), free(group), free(text), free(labels), free(names), free(eig);
    return rc;
}

static int cmd_plot_senses(int argc, char **argv) {
    BpError err = {{0}};
    const char *db = NULL, *out = NULL;
    int n = 5, n_words = 0;
    const char **words = calloc((size_t)argc, sizeof *words);
    if (!words) return cli_error("out of memory");
    const ArgOption opts[] = {
        {"--db", ARG_STRING, &db, .meta = "FILE", .help = "the sense database"},
        {"--out", ARG_STRING, &out, .meta = "FILE", .help = "the picture: .png, .svg or .pdf"},
        {"-n", ARG_INT, &n, 1, 50, "N", "top and bottom words per sense, one WORD only (5)", 0},
        {0}};
    const ArgSpec spec = {"plot senses", plot_senses_synopsis, opts, .positional = words,
                          .max_positional = argc, .n_positional = &n_words};
    int parsed = cli_parse(&spec, argc, argv);
    const char *missing = parsed >= 0 ? NULL : !db ? "plot senses: --db FILE is required"
                          : !out ? "plot senses: --out FILE is required"
                          : n_words == 0 ? "plot senses: give at least one WORD" : NULL;
    if (parsed >= 0 || missing) {
        free(words);
        return parsed >= 0 ? parsed : cli_usage_error(missing);
    }
    PlotFormat format;
    if (plot_format_for_path(out, &format, &err) != 0) {
        free(words);
        return cli_error(err.msg);
    }
    SenseStore *st;
    if (store_open(&st, db, STORE_READ_ONLY, &err) != 0) {
        free(words);
        return cli_error(err.msg);
    }
    StoreWord *w = calloc((size_t)n_words, sizeof *w);
    int rc = -1;
    if (!w) bp_fail(&err, "out of memory");
    else if (store_info(st)->config.num_senses < 1)
        bp_fail(&err, "%s: the model has no senses (a Transformer)", db);
    else {
        rc = 0;
        for (int i = 0; i < n_words && rc == 0; i++) rc = store_resolve_word(st, words[i], &w[i], &err);
        if (rc == 0) rc = n_words == 1 ? plot_one_word(st, &w[0], n, out, &err)
                                       : plot_words_map(st, w, n_words, out, &err);
    }
    store_close(st);
    free(w), free(words);
    if (rc != 0) return cli_error(err.msg);
    printf("wrote %s\n", out);
    return 0;
}

static void terminal_size(int *cols, int *rows) {
    struct winsize ws;
    *cols = 80, *rows = 24;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 24 && ws.ws_row >= 8)
        *cols = ws.ws_col, *rows = ws.ws_row - 2;
}

int cmd_plot(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "senses")) return cmd_plot_senses(argc - 1, argv + 1);
    BpError err = {{0}};
    const char *out = NULL, *x = "tokens";
    int term = 0, width = 0, height = 0, n_runs = 0;
    XAxis axis = X_TOKENS;
    const char **dirs = calloc((size_t)argc, sizeof *dirs);
    if (!dirs) return cli_error("out of memory");
    const ArgOption opts[] = {
        {"--out", ARG_STRING, &out, .meta = "FILE", .help = "the picture: .png, .svg or .pdf"},
        {"--term", ARG_FLAG, &term, .help = "draw the losses in the terminal instead"},
        {"--x", ARG_STRING, &x, .meta = "AXIS", .help = "tokens (seen, the default), time (minutes) or step"},
        {"--width", ARG_INT, &width, 24, 16384, "W", "pixels (1200), or columns with --term (the terminal's)", 0},
        {"--height", ARG_INT, &height, 6, 16384, "H", "pixels (900), or lines with --term (the terminal's)", 0},
        {0}};
    const ArgSpec spec = {"plot", plot_synopsis, opts, .positional = dirs, .max_positional = argc,
                          .n_positional = &n_runs};
    int rc = cli_parse(&spec, argc, argv);
    if (rc >= 0) goto done;
    if (!strcmp(x, "tokens")) axis = X_TOKENS;
    else if (!strcmp(x, "time")) axis = X_TIME;
    else if (!strcmp(x, "step")) axis = X_STEP;
    else {
        snprintf(err.msg, sizeof err.msg, "plot: --x: expected tokens, time or step, got '%s'", x);
        rc = cli_usage_error(err.msg);
        goto done;
    }
    if (n_runs == 0) {
        rc = cli_usage_error("plot: give at least one RUN_DIR (or: plot senses ...)");
        goto done;
    }
    if (term == (out != NULL)) {
        rc = cli_usage_error("plot: give exactly one of --out FILE and --term");
        goto done;
    }
    PlotFormat format;
    if (out && plot_format_for_path(out, &format, &err) != 0) {
        rc = cli_error(err.msg);
        goto done;
    }
    Run *runs = calloc((size_t)n_runs, sizeof *runs);
    if (!runs) {
        rc = cli_error("out of memory");
        goto done;
    }
    int r = load_runs(dirs, n_runs, axis, runs, &err);
    if (r == 0 && term) {
        int tc, tr;
        terminal_size(&tc, &tr);
        r = plot_runs_term(runs, n_runs, axis, width ? width : tc, height ? height : tr, &err);
    } else if (r == 0) {
        r = plot_runs_picture(runs, n_runs, axis, out, width ? width : 1200, height ? height : 900, &err);
        if (r == 0) printf("wrote %s\n", out);
    }
    free_runs(runs, n_runs);
    rc = r == 0 ? 0 : cli_error(err.msg);
done:
    free(dirs);
    return rc;
}
