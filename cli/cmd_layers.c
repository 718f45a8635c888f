/* cmd_layers.c - `backpack layers`: the sweep of "Transformer layers as painters" on one
 * model (model/plan_sweep.h): each plan's validation loss against the model's, and the
 * layer-similarity matrix. docs/layer-plans.md reports it on our models. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/checkpoint.h"
#include "../model/plan_sweep.h"
#include "../plot/plot.h"
#include "../text/tokfile.h"
#include "../train/evaluate.h"
#include "commands.h"

#include <cblas.h>
#include <omp.h>

static const char layers_synopsis[] =
    "usage: backpack layers --model DIR --data FILE.tok [--json] [--plot FILE] [--windows N]\n"
    "                       [--seeds N] [--context N] [--batch B] [--seed S] [--threads N]\n"
    "Runs the model's blocks skipped, repeated, reversed, shuffled, in parallel and looped\n"
    "(in a Backpack: its contextualization network) and prints one row per plan: the plan,\n"
    "validation loss, perplexity and the change against the model itself; then the L x L\n"
    "mean cosine similarity of the hidden states after each block. \"Middle\" is every\n"
    "block but the first and the last. --json writes the same as JSON lines; --plot FILE\n"
    "(.png, .svg, .pdf) draws the change of loss per plan as bars beside the similarity\n"
    "heatmap.\n"
    "Plans for eval and generate: --layers PLAN (docs/layer-plans.md).\n";

typedef struct {
    Backpack *m;
    const TokFile *tf;
    int context, batch;
    uint64_t windows;
} Sweep;

int cli_layers(const char *text, Backpack *m, LayerPlan *plan) {
    BpError err = {{0}};
    if (!text) return 0;
    if (layer_plan_parse(plan, text, m->config.n_layer, &err) == 0) {
        m->plan = plan;
        return 0;
    }
    bp_error_prefix(&err, "--layers");
    return cli_usage_error(err.msg);
}

int cli_load_model(const char *cmd, const char *dir, int *context, Backpack *m) {
    BpError err = {{0}};
    if (checkpoint_load(m, dir, &err) != 0) return cli_error(err.msg);
    if (*context > m->config.n_positions) {
        snprintf(err.msg, sizeof err.msg, "%s: --context %d is longer than the model's %d positions",
                 cmd, *context, m->config.n_positions);
        backpack_free(m);
        return cli_usage_error(err.msg);
    }
    if (*context == 0) *context = m->config.n_positions;
    return 0;
}

static int eval_plan(const Sweep *s, const char *text, EvalResult *res, BpError *err) {
    LayerPlan plan;
    if (layer_plan_parse(&plan, text, s->m->config.n_layer, err) != 0) return -1;
    s->m->plan = &plan;
    int rc = evaluate_tokfile(s->m, s->tf, s->context, s->batch, s->windows, res, err);
    s->m->plan = NULL;
    layer_plan_free(&plan);
    return rc;
}

/* The similarity matrix (L x L) over the first windows of the data. */
static int similarity(const Sweep *s, double *matrix, long *positions, BpError *err) {
    const int L = s->m->config.n_layer, B = s->batch;
    uint64_t n = s->tf->count, T = (uint64_t)s->context;
    if (T > n) T = n;
    uint64_t windows = n / T;
    if (s->windows > 0 && windows > s->windows) windows = s->windows;
    int *ids = malloc((size_t)B * T * sizeof(int));
    if (!ids) return bp_fail(err, "out of memory");
    memset(matrix, 0, (size_t)L * L * sizeof(double));
    *positions = 0;
    int rc = 0;
    for (uint64_t w0 = 0; w0 < windows && rc == 0; w0 += (uint64_t)B) {
        int rows = windows - w0 < (uint64_t)B ? (int)(windows - w0) : B;
        for (int b = 0; b < rows; b++)
            for (uint64_t t = 0; t < T; t++) {
                uint32_t id = tokfile_get(s->tf, (w0 + (uint64_t)b) * T + t);
                if (id >= (uint32_t)s->m->config.vocab_size) {
                    free(ids);
                    return bp_fail(err, "token %llu has id %u, outside the model's vocabulary",
                                   (unsigned long long)((w0 + (uint64_t)b) * T + t), id);
                }
                ids[(size_t)b * T + t] = (int)id;
            }
        rc = backpack_forward(s->m, ids, NULL, rows, (int)T, NULL, err);
        if (rc == 0) *positions += layer_similarity_add(s->m, matrix);
    }
    free(ids);
    if (rc == 0 && *positions > 0)
        for (int i = 0; i < L * L; i++) matrix[i] /= (double)*positions;
    return rc;
}

/* Bars of each plan's loss change (the random orders as their mean), and the heatmap. */
static int draw(const char *path, const SweepPlan *plans,
                const EvalResult *res, int count, double random_mean, const double *matrix,
                int L, BpError *err) {
    const char **labels = malloc((size_t)count * sizeof *labels);
    double *values = malloc((size_t)count * sizeof *values);
    int n = 0, rc = -1;
    if (!labels || !values) {
        bp_fail(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < count; i++) {
        if (plans[i].kind == SWEEP_RANDOM && plans[i].param > 0) continue;
        labels[n] = plans[i].kind == SWEEP_RANDOM ? "random order (mean)" : plans[i].name;
        values[n++] = (plans[i].kind == SWEEP_RANDOM ? random_mean : res[i].mean_loss) -
                      res[0].mean_loss;
    }
    PlotBarChart bars = {.title = "each plan's loss minus the model's", .x_label = "change of loss (nats)", .labels = labels,
                         .values = values, .n = n};
    PlotHeatmap heat = {.title = "cosine of the hidden states after blocks i, j", .x_label = "block j", .y_label = "block i",
                        .z_label = "mean cosine", .values = matrix, .rows = L, .cols = L,
                        .z_min = -1, .z_max = 1};
    PlotFigure *fig;
    if (plot_open(&fig, path, 1500, 650, 1, 2, err) != 0) goto done;
    if (plot_bar_chart(fig, &bars, err) != 0 || plot_heatmap(fig, &heat, err) != 0) {
        plot_discard(fig);
        goto done;
    }
    rc = plot_close(fig, err);
done:
    free(labels);
    free(values);
    return rc;
}

static void print_row(int json, const SweepPlan *p, const EvalResult *r, const EvalResult *base) {
    double dl = r->mean_loss - base->mean_loss, ratio = r->perplexity / base->perplexity;
    if (json)
        printf("{\"kind\": \"%s\", \"param\": %d, \"name\": \"%s\", \"plan\": \"%s\", "
               "\"loss\": %.6f, \"perplexity\": %.4f, \"delta_loss\": %.6f, "
               "\"perplexity_ratio\": %.5f}\n",
               layer_sweep_kind_name(p->kind), p->param, p->name, p->text, r->mean_loss,
               r->perplexity, dl, ratio);
    else
        printf("%-24s %-28s %8.4f %10.2f %+9.4f %8.3fx\n", p->name, p->text, r->mean_loss,
               r->perplexity, dl, ratio);
}

int cmd_layers(int argc, char **argv) {
    BpError err = {{0}};
    const char *model_dir = NULL, *data = NULL, *plot = NULL;
    int json = 0, context = 0, batch = 8, threads = 0, seeds = 10;
    uint64_t windows = 0, seed = 1;
    const ArgOption opts[] = {
        {"--model", ARG_STRING, &model_dir, .meta = "DIR", .help = "the model (a checkpoint directory)"},
        {"--data", ARG_STRING, &data, .meta = "FILE.tok", .help = "validation tokens (backpack tokenize)"},
        {"--json", ARG_FLAG, &json, .help = "JSON lines instead of tables"},
        {"--plot", ARG_STRING, &plot, .meta = "FILE", .help = "draw the bars and the heatmap (.png, .svg, .pdf)"},
        {"--windows", ARG_U64, &windows, 0, 0, "N", "evaluate the first N windows only (0: all)", 0},
        {"--seeds", ARG_INT, &seeds, 0, 1000, "N", "random orders of the middle blocks (10)", 0},
        {"--seed", ARG_U64, &seed, 0, 0, "S", "seed of the random orders (1)", 0},
        {"--context", ARG_INT, &context, 1, 1 << 20, "N", "tokens per window (the model's n_positions)", 0},
        {"--batch", ARG_INT, &batch, 1, 4096, "B", "windows per forward pass (8)", 0},
        {"--threads", ARG_INT, &threads, 0, 1024, "N", "threads (0: OpenMP's default)", 0},
        {0}};
    const ArgSpec spec = {"layers", layers_synopsis, opts, .given = NULL};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    if (!model_dir) return cli_usage_error("layers: --model DIR is required");
    if (!data) return cli_usage_error("layers: --data FILE.tok is required");
    PlotFormat format;
    if (plot && plot_format_for_path(plot, &format, &err) != 0) {
        bp_error_prefix(&err, "--plot");
        return cli_usage_error(err.msg);
    }
    if (threads > 0) {
        omp_set_num_threads(threads);
        openblas_set_num_threads(threads);
    }
    Backpack m;
    if ((st = cli_load_model("layers", model_dir, &context, &m)) != 0) return st;
    const int L = m.config.n_layer;
    TokFile tf;
    int tf_open = 0, rc = 1;
    SweepPlan *plans = malloc((size_t)layer_sweep_count(L, seeds) * sizeof *plans);
    EvalResult *res = malloc((size_t)layer_sweep_count(L, seeds) * sizeof *res);
    double *matrix = malloc((size_t)L * L * sizeof *matrix);
    if (!plans || !res || !matrix) {
        bp_fail(&err, "out of memory");
        goto done;
    }
    if (tokfile_open(&tf, data, &err) != 0) goto done;
    tf_open = 1;
    if (tf.count < 2) {
        bp_fail(&err, "%s: fewer than 2 tokens", data);
        goto done;
    }
    Sweep s = {&m, &tf, context, batch, windows};
    int count = layer_sweep_plans(L, seeds, seed, plans);
    const char *arch = m.config.arch == ARCH_BACKPACK ? "Backpack" : "Transformer";
    if (!json) {
        printf("%s: %s with %d blocks%s; %s\n", model_dir, arch, L,
               m.config.no_last_residual ? " (no last residual)" : "", data);
        printf("%-24s %-28s %8s %10s %9s %9s\n", "plan", "blocks", "loss", "perplexity",
               "vs base", "ppl");
    }
    double rsum = 0, rsq = 0, rmin = INFINITY, rmax = -INFINITY, rmean = 0;
    int nrandom = 0;
    for (int i = 0; i < count; i++) {
        if (eval_plan(&s, plans[i].text, &res[i], &err) != 0) {
            bp_error_prefix(&err, "%s: plan %s", data, plans[i].text);
            goto done;
        }
        print_row(json, &plans[i], &res[i], &res[0]);
        fflush(stdout);
        if (plans[i].kind == SWEEP_RANDOM) {
            double x = res[i].mean_loss;
            rsum += x;
            rsq += x * x;
            rmin = fmin(rmin, x);
            rmax = fmax(rmax, x);
            nrandom++;
        }
        if (i + 1 < count && plans[i].kind == SWEEP_RANDOM && plans[i + 1].kind != SWEEP_RANDOM) {
            double mean = rmean = rsum / nrandom, sd = nrandom > 1 ? sqrt(fmax(0, (rsq - nrandom * mean * mean) / (nrandom - 1))) : 0;
            if (json)
                printf("{\"kind\": \"random-summary\", \"seeds\": %d, \"mean_loss\": %.6f, "
                       "\"sd_loss\": %.6f, \"min_loss\": %.6f, \"max_loss\": %.6f, "
                       "\"mean_delta_loss\": %.6f}\n",
                       nrandom, mean, sd, rmin, rmax, mean - res[0].mean_loss);
            else
                printf("%-24s %-28s %8.4f %10.2f %+9.4f   (sd %.4f, %.4f .. %.4f)\n",
                       "random order: mean", "", mean, exp(mean), mean - res[0].mean_loss, sd,
                       rmin, rmax);
        }
    }
    long positions = 0;
    if (similarity(&s, matrix, &positions, &err) != 0) {
        bp_error_prefix(&err, "%s", data);
        goto done;
    }
    if (json) {
        printf("{\"kind\": \"similarity\", \"positions\": %ld, \"matrix\": [", positions);
        for (int i = 0; i < L; i++) {
            printf("%s[", i ? ", " : "");
            for (int j = 0; j < L; j++) printf("%s%.4f", j ? ", " : "", matrix[i * L + j]);
            printf("]");
        }
        printf("]}\n");
    } else {
        printf("\nlayer similarity: mean cosine of the hidden states after blocks i and j "
               "(%ld positions)\n     ", positions);
        for (int j = 0; j < L; j++) printf(" %6d", j);
        printf("\n");
        for (int i = 0; i < L; i++) {
            printf("%4d ", i);
            for (int j = 0; j < L; j++) printf(" %6.3f", matrix[i * L + j]);
            printf("\n");
        }
    }
    if (plot) {
        if (draw(plot, plans, res, count, rmean, matrix, L, &err) != 0) goto done;
        if (!json) printf("\nwrote %s\n", plot);
    }
    rc = 0;
done:
    if (rc) cli_error(err.msg);
    if (tf_open) tokfile_close(&tf);
    free(plans);
    free(res);
    free(matrix);
    backpack_free(&m);
    return rc;
}
