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

static const char plot_usage[] =
    "usage: backpack plot RUN_DIR... --out FILE.png|.svg|.pdf [--x tokens|time|step]\n"
    "                     [--width W] [--height H]\n"
    "       backpack plot --term RUN_DIR... [--x tokens|time|step] [--width COLS] [--height ROWS]\n"
    "       backpack plot senses --db FILE WORD... --out FILE.png|.svg|.pdf [-n N]\n"
    "\n"
    "Runs: each run directory's metrics.jsonl (written by backpack train), overlaid with a\n"
    "legend (the directory names): training loss, validation loss, learning rate and\n"
    "gradient norm against tokens seen (default), minutes of training, or steps. --term\n"
    "draws the losses in the terminal instead (braille dots).\n"
    "Senses: one WORD draws each of its k senses' top and bottom N words (default 5) as bars\n"
    "of their scores E C(x)_l; several WORDs draw their sense vectors on the plane of their\n"
    "first two principal components. The picture's format follows the file's extension.\n";

typedef enum { X_TOKENS, X_TIME, X_STEP } XAxis;

static int usage_error(const char *msg) {
    fprintf(stderr, "backpack: plot: %s\n%s", msg, plot_usage);
    return 2;
}

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

static int load_runs(char **dirs, int n_runs, XAxis axis, Run *runs, BpError *err) {
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
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            free(words);
            fputs(plot_usage, stdout);
            return 0;
        }
        if (!strcmp(f, "--db") || !strcmp(f, "--out") || !strcmp(f, "-n")) {
            if (!(v = arg_value(argc, argv, &i, &err))) {
                free(words);
                return usage_error(err.msg);
            }
            if (!strcmp(f, "--db")) db = v;
            else if (!strcmp(f, "--out")) out = v;
            else if (arg_int(f, v, 1, 50, &n, &err)) {
                free(words);
                return usage_error(err.msg);
            }
        } else if (f[0] == '-' && f[1] == '-') {
            free(words);
            char msg[300];
            snprintf(msg, sizeof msg, "unknown option '%s'", f);
            return usage_error(msg);
        } else {
            words[n_words++] = f;
        }
    }
    const char *missing = !db ? "--db FILE is required" : !out ? "--out FILE is required"
                          : n_words == 0 ? "give at least one WORD" : NULL;
    if (missing) {
        free(words);
        return usage_error(missing);
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
    const char *out = NULL;
    int term = 0, width = 0, height = 0, n_runs = 0;
    XAxis axis = X_TOKENS;
    char **dirs = calloc((size_t)argc, sizeof *dirs);
    if (!dirs) return cli_error("out of memory");
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            fputs(plot_usage, stdout);
            rc = 0;
            goto done;
        }
        if (!strcmp(f, "--term")) {
            term = 1;
            continue;
        }
        if (f[0] != '-') {
            dirs[n_runs++] = argv[i];
            continue;
        }
        if (strcmp(f, "--out") && strcmp(f, "--x") && strcmp(f, "--width") && strcmp(f, "--height")) {
            char msg[300];
            snprintf(msg, sizeof msg, "unknown option '%s'", f);
            rc = usage_error(msg);
            goto done;
        }
        if (!(v = arg_value(argc, argv, &i, &err))) {
            rc = usage_error(err.msg);
            goto done;
        }
        int bad = 0;
        if (!strcmp(f, "--out")) out = v;
        else if (!strcmp(f, "--width")) bad = arg_int(f, v, 24, 16384, &width, &err);
        else if (!strcmp(f, "--height")) bad = arg_int(f, v, 6, 16384, &height, &err);
        else if (!strcmp(v, "tokens")) axis = X_TOKENS;
        else if (!strcmp(v, "time")) axis = X_TIME;
        else if (!strcmp(v, "step")) axis = X_STEP;
        else bad = bp_fail(&err, "--x: expected tokens, time or step, got '%s'", v);
        if (bad) {
            rc = usage_error(err.msg);
            goto done;
        }
    }
    if (n_runs == 0) {
        rc = usage_error("give at least one RUN_DIR (or: plot senses ...)");
        goto done;
    }
    if (term == (out != NULL)) {
        rc = usage_error("give exactly one of --out FILE and --term");
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
