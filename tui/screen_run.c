/* screen_run.c - the run screen: a training run's loss curves in braille dots. */
#include "screen_run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/fileio.h"

#define RUN_MIN_CHART_ROWS 6   /* plot_term_lines' least height */
#define RUN_TWO_PANEL_ROWS 18  /* below this, only the loss chart */

const char *run_panel_title(RunPanel panel) {
    return panel == RUN_PANEL_LR ? "learning rate" : "gradient norm (before clipping)";
}

static void *run_init(Ui *ui, BpError *err) {
    (void)ui;
    return ui_state_alloc(sizeof(RunScreen), err);
}

static void forget_text(RunScreen *rs) {
    plot_text_free(&rs->loss_text);
    plot_text_free(&rs->panel_text);
    rs->loss_text = rs->panel_text = (PlotText){0};
    rs->text_width = 0;
}

static void run_free(void *self) {
    RunScreen *rs = self;
    if (!rs) return;
    forget_text(rs);
    run_metrics_free(&rs->metrics);
    free(rs);
}

/* Reads the run's metrics.jsonl; on failure says why in the status line and keeps what
 * the screen showed. */
static int run_load(RunScreen *rs, Ui *ui) {
    if (!ui->run_dir) {
        ui_message(ui, 1, "the run screen needs --model DIR, a training run's directory");
        return -1;
    }
    BpError err = {0};
    if (path_join(rs->path, sizeof rs->path, ui->run_dir, "metrics.jsonl", &err) != 0) {
        ui_message(ui, 1, "%s", err.msg);
        return -1;
    }
    struct stat st;
    if (stat(rs->path, &st) != 0 && errno == ENOENT) {
        ui_message(ui, 1, "%s has no metrics.jsonl: not a training run (backpack train writes one)",
                   ui->run_dir);
        return -1;
    }
    RunMetrics m;
    if (run_metrics_read(rs->path, &m, &err) != 0) {
        run_metrics_free(&m);
        ui_message(ui, 1, "%s", err.msg);
        return -1;
    }
    run_metrics_free(&rs->metrics);
    rs->metrics = m;
    rs->loaded = 1;
    forget_text(rs);
    if (m.note[0]) ui_message(ui, 0, "%s", m.note);
    return 0;
}

static int run_enter(void *self, Ui *ui, const Place *at) {
    RunScreen *rs = self;
    if (at->returning && rs->loaded) return 0;
    return run_load(rs, ui);
}

/* Renders the charts for a size (the loss chart loss_height rows, the lower one
 * panel_height rows or none); on failure the status line says why. */
static void render(RunScreen *rs, Ui *ui, int width, int loss_height, int panel_height) {
    if (rs->text_width == width && rs->loss_height == loss_height && rs->panel_height == panel_height &&
        rs->text_panel == rs->panel)
        return;
    forget_text(rs);
    const RunMetrics *m = &rs->metrics;
    PlotSeries loss[2];
    int n = 0;
    if (m->n > 0) loss[n++] = (PlotSeries){"training loss", m->tokens, m->loss, m->n};
    if (m->n_val > 0) loss[n++] = (PlotSeries){"validation loss", m->val_tokens, m->val_loss, m->n_val};
    PlotLineChart chart = {.title = "loss (nats/token) against tokens seen", .x_label = "tokens seen",
                           .series = loss, .n_series = n};
    BpError err = {0};
    /* colour on: the escapes become the canvas's styles (draw_chart_line) */
    if (plot_term_lines(&chart, width, loss_height, 1, &rs->loss_text, &err) != 0) goto fail;
    if (panel_height > 0 && m->n > 0) {
        PlotSeries s = {NULL, m->tokens, rs->panel == RUN_PANEL_LR ? m->lr : m->grad_norm, m->n};
        char title[128];
        snprintf(title, sizeof title, "%s against tokens seen (g: %s)", run_panel_title(rs->panel),
                 run_panel_title((rs->panel + 1) % RUN_PANEL_COUNT));
        PlotLineChart lower = {.title = title, .x_label = "tokens seen", .series = &s, .n_series = 1,
                               .log_y = rs->panel == RUN_PANEL_GRAD_NORM};
        if (plot_term_lines(&lower, width, panel_height, 1, &rs->panel_text, &err) != 0) goto fail;
    }
    rs->text_width = width, rs->loss_height = loss_height, rs->panel_height = panel_height;
    rs->text_panel = rs->panel;
    return;
fail:
    forget_text(rs);
    ui_message(ui, 1, "%s", err.msg);
}

/* The style of a series' colour in plot_term_lines' escapes: the first series (34, blue)
 * and the second (33, yellow) get the two styles that stand out on every terminal. */
static CanvasStyle style_of_sgr(int code) {
    return code == 34 ? STYLE_PROMOTED : code == 33 ? STYLE_TITLE : STYLE_NORMAL;
}

/* Draws one line of a chart, turning its SGR colour escapes into canvas styles. */
static void draw_chart_line(Canvas *c, int row, int col, const char *line) {
    CanvasStyle style = STYLE_NORMAL;
    char run[1024];
    size_t n = 0;
    for (const char *p = line;; p++) {
        int escape = p[0] == '\x1b' && p[1] == '[';
        /* a full buffer is flushed before a character's first byte, never inside one */
        int full = n + 8 >= sizeof run && ((unsigned char)*p & 0xC0) != 0x80;
        if (!*p || escape || full) {
            run[n] = 0;
            col += canvas_text(c, row, col, -1, style, run);
            n = 0;
            if (!*p) return;
            if (escape) {
                char *end;
                long code = strtol(p + 2, &end, 10);
                if (*end != 'm') return;  /* not plot_term_lines' escape: stop the line */
                style = style_of_sgr((int)code);
                p = end;
                continue;
            }
        }
        run[n++] = *p;
    }
}

static void run_draw(void *self, Ui *ui, Canvas *c) {
    RunScreen *rs = self;
    int row = ui_top_row(c), bottom = ui_bottom_row(c);
    const RunMetrics *m = &rs->metrics;
    if (!rs->loaded) return;
    /* the directory is in the status line: here what a glance needs */
    int x = canvas_printf(c, row, 1, -1, STYLE_TITLE, "Training run: %d steps", m->n);
    if (m->n > 0)
        x += canvas_printf(c, row, 1 + x, -1, STYLE_NORMAL, ", %.0f tokens, loss %.4g", m->tokens[m->n - 1],
                           m->loss[m->n - 1]);
    if (m->n_val > 0)
        canvas_printf(c, row, 1 + x, -1, STYLE_NORMAL, "; %d evaluations, validation loss %.4g", m->n_val,
                      m->val_loss[m->n_val - 1]);
    row += 2;
    int rows = bottom - row, width = c->cols - 1;
    int panel_height = rows >= RUN_TWO_PANEL_ROWS && m->n > 0 ? rows * 2 / 5 : 0;
    int loss_height = rows - panel_height;
    if (loss_height < RUN_MIN_CHART_ROWS || width < 24) return;  /* the app needs more anyway */
    render(rs, ui, width, loss_height, panel_height);
    for (int i = 0; i < rs->loss_text.n_lines && row < bottom; i++)
        draw_chart_line(c, row++, 1, rs->loss_text.lines[i]);
    for (int i = 0; i < rs->panel_text.n_lines && row < bottom; i++)
        draw_chart_line(c, row++, 1, rs->panel_text.lines[i]);
}

static void act_run_panel(void *self, Ui *ui) {
    RunScreen *rs = self;
    rs->panel = (rs->panel + 1) % RUN_PANEL_COUNT;
    ui_message(ui, 0, "lower chart: %s", run_panel_title(rs->panel));
}

static void act_run_reload(void *self, Ui *ui) {
    RunScreen *rs = self;
    if (run_load(rs, ui) == 0 && !rs->metrics.note[0])
        ui_message(ui, 0, "read %s: %d steps, %d evaluations", rs->path, rs->metrics.n, rs->metrics.n_val);
}

static void run_title(void *self, Ui *ui, char *out, size_t out_size) {
    (void)ui;
    RunScreen *rs = self;
    snprintf(out, out_size, " | %s", rs->loaded ? rs->path : "no run");
}

static const KeyBinding run_keys[] = {
    {{'g', 0}, "g", "switch the lower chart: learning rate or gradient norm", act_run_panel},
    {{'r', 0}, "r", "read metrics.jsonl again (a run still training)", act_run_reload},
    {{0}, NULL, NULL, NULL},
};

const ScreenClass run_screen = {
    .name = "run",
    .summary = "a training run's loss curves (--model DIR with metrics.jsonl)",
    .keys = run_keys,
    .init = run_init,
    .free = run_free,
    .enter = run_enter,
    .draw = run_draw,
    .title = run_title,
};
