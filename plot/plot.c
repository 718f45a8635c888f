/* plot.c - the figure and its four kinds of chart, through PLplot's C API (cairo
 * drivers). PLplot exits the process on fatal errors, so everything it could choke on
 * (non-finite numbers, empty ranges, unknown devices, an unopenable file) is checked
 * here before it is called. */
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <plplot.h>

#include "../common/fileio.h"
#include "plot_private.h"

/* cmap0: background, ink, grid, then the series colours (matplotlib's tab10). */
enum { C_BACKGROUND = 0, C_INK = 1, C_GRID = 2, C_NEGATIVE = 3, C_SERIES = 4 };
static const int palette[][3] = {
    {255, 255, 255}, {0, 0, 0}, {215, 215, 215}, {214, 39, 40},
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {148, 103, 189}, {140, 86, 75},
    {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}, {214, 39, 40},
};
#define N_PALETTE ((int)(sizeof palette / sizeof palette[0]))
#define N_SERIES_COLOURS (N_PALETTE - C_SERIES)
#define MAX_LABEL 320   /* bytes; labels longer than MAX_LABEL / 4 characters are cut */

struct PlotFigure {
    AtomicFile file;
    PlotFormat format;
    int width, height, rows, cols, panels_used;
    PLINT stream, previous_stream;
    PlotRect area;
};

static int figure_is_open;
static char abort_message[256];

/* PLplot's non-fatal errors (plabort) land here instead of only on stderr. */
static void on_plabort(PLCHAR_VECTOR msg) {
    snprintf(abort_message, sizeof abort_message, "%s", msg ? msg : "PLplot error");
}

int plot_format_for_path(const char *path, PlotFormat *out, BpError *err) {
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash)) {
        if (!strcasecmp(dot, ".png")) return *out = PLOT_PNG, 0;
        if (!strcasecmp(dot, ".svg")) return *out = PLOT_SVG, 0;
        if (!strcasecmp(dot, ".pdf")) return *out = PLOT_PDF, 0;
    }
    return bp_fail(err, "%s: unknown picture format (the name must end in .png, .svg or .pdf)", path);
}

static const char *device_of(PlotFormat f) {
    return f == PLOT_PNG ? "pngcairo" : f == PLOT_SVG ? "svgcairo" : "pdfcairo";
}

static int have_device(const char *name) {
    const char **menu, **devs;
    int n = 64;
    menu = malloc(sizeof *menu * (size_t)n);
    devs = malloc(sizeof *devs * (size_t)n);
    if (!menu || !devs) {
        free(menu), free(devs);
        return 0;
    }
    plgDevs(&menu, &devs, &n);
    int found = 0;
    for (int i = 0; i < n; i++)
        if (devs[i] && !strcmp(devs[i], name)) found = 1;
    free(menu), free(devs);
    return found;
}

/* A label as PLplot should draw it: '#' starts PLplot's escape sequences, so it is
 * doubled; control characters become spaces; long labels are cut at a character
 * boundary with an ellipsis. */
static const char *label_text(char *buf, size_t size, const char *s) {
    size_t o = 0, chars = 0;
    if (!s) s = "";
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 5 < size; p++) {
        if ((*p & 0xC0) != 0x80 && ++chars > MAX_LABEL / 4) {
            memcpy(buf + o, "\xE2\x80\xA6", 3);   /* U+2026 */
            o += 3;
            break;
        }
        if (*p == '#') buf[o++] = '#';
        buf[o++] = *p < 0x20 || *p == 0x7F ? ' ' : (char)*p;
    }
    buf[o] = '\0';
    return buf;
}

int plot_open(PlotFigure **out, const char *path, int width, int height, int rows, int cols,
              BpError *err) {
    *out = NULL;
    PlotFormat format;
    if (plot_format_for_path(path, &format, err) != 0) return -1;
    if (width < 16 || width > 16384 || height < 16 || height > 16384)
        return bp_fail(err, "%s: picture size %dx%d out of range (16 to 16384)", path, width, height);
    if (rows < 1 || cols < 1 || rows > 64 || cols > 64)
        return bp_fail(err, "%s: %d x %d panels out of range (1 to 64 each)", path, rows, cols);
    if (figure_is_open) return bp_fail(err, "%s: another figure is still open", path);
    if (!have_device(device_of(format)))
        return bp_fail(err, "%s: PLplot has no '%s' driver (Debian package plplot-driver-cairo)",
                       path, device_of(format));
    PlotFigure *f = calloc(1, sizeof *f);
    if (!f) return bp_fail(err, "%s: out of memory", path);
    if (atomic_open(&f->file, path, err) != 0) {
        free(f);
        return -1;
    }
    f->format = format;
    f->width = width, f->height = height, f->rows = rows, f->cols = cols;

    plgstrm(&f->previous_stream);
    plmkstrm(&f->stream);
    if (f->stream < 0) {
        atomic_abort(&f->file);
        free(f);
        return bp_fail(err, "%s: PLplot has no free stream", path);
    }
    plsabort(on_plabort);
    abort_message[0] = '\0';
    plsdev(device_of(format));
    /* PLplot opens the file itself: it writes the temporary file atomic_open made (or the
     * device, for a target that is not a regular file), which plot_close renames. */
    plsfnam(f->file.direct ? f->file.path : f->file.tmp_path);
    plspage(0, 0, width, height, 0, 0);
    int r[N_PALETTE], g[N_PALETTE], b[N_PALETTE];
    for (int i = 0; i < N_PALETTE; i++) r[i] = palette[i][0], g[i] = palette[i][1], b[i] = palette[i][2];
    plscmap0n(N_PALETTE);
    plscmap0(r, g, b, N_PALETTE);
    plssub(cols, rows);
    plinit();
    figure_is_open = 1;
    *out = f;
    return 0;
}

static void end_stream(PlotFigure *f) {
    plsstrm(f->stream);
    plend1();
    plsstrm(f->previous_stream);
    figure_is_open = 0;
}

int plot_close(PlotFigure *f, BpError *err) {
    if (!f) return bp_fail(err, "plot_close: no figure");
    end_stream(f);   /* the cairo driver writes and closes the file here */
    int rc = 0;
    struct stat st;
    if (abort_message[0]) {
        rc = bp_fail(err, "%s: PLplot: %s", f->file.path, abort_message);
        atomic_abort(&f->file);
    } else if (!f->file.direct && (stat(f->file.tmp_path, &st) != 0 || st.st_size == 0)) {
        /* the driver could not write (a full disk): never rename an empty picture in */
        rc = bp_fail(err, "%s: PLplot wrote nothing", f->file.path);
        atomic_abort(&f->file);
    } else {
        rc = atomic_commit(&f->file, err);
    }
    free(f);
    return rc;
}

void plot_discard(PlotFigure *f) {
    if (!f) return;
    end_stream(f);
    atomic_abort(&f->file);
    free(f);
}

PlotRect plot_last_area(const PlotFigure *f) { return f->area; }

/* ---- shared pieces ----------------------------------------------------------------- */

static int next_panel(PlotFigure *f, BpError *err) {
    if (f->panels_used >= f->rows * f->cols)
        return bp_fail(err, "%s: all %d panels are used", f->file.path, f->rows * f->cols);
    f->panels_used++;
    pladv(0);
    plcol0(C_INK);
    plwidth(1);
    /* Text shrinks with the panel, but not below a readable size. */
    double panel_w = (double)f->width / f->cols, panel_h = (double)f->height / f->rows;
    double scale = (panel_w < panel_h ? panel_w : panel_h) / 480.0;
    plschr(0, scale < 0.65 ? 0.65 : scale > 1.0 ? 1.0 : scale);
    return 0;
}

static void remember_area(PlotFigure *f) {
    PLFLT x0, x1, y0, y1;
    plgvpd(&x0, &x1, &y0, &y1);
    f->area.left = x0 * f->width;
    f->area.right = x1 * f->width;
    f->area.top = (1 - y1) * f->height;
    f->area.bottom = (1 - y0) * f->height;
}

static int check_abort(PlotFigure *f, BpError *err) {
    if (abort_message[0]) return bp_fail(err, "%s: PLplot: %s", f->file.path, abort_message);
    return 0;
}

/* Pads [lo, hi] by a share of its width; an empty range becomes a unit one around it. */
void plot_pad_range(double *lo, double *hi, double share) {
    if (!(*hi > *lo)) {
        double w = fabs(*lo) > 0 ? fabs(*lo) * 0.1 : 1;
        *lo -= w, *hi += w;
        return;
    }
    double w = (*hi - *lo) * share;
    *lo -= w, *hi += w;
}

static void labels(const char *x_label, const char *y_label, const char *title) {
    char xb[4 * MAX_LABEL], yb[4 * MAX_LABEL], tb[4 * MAX_LABEL];
    plcol0(C_INK);
    pllab(label_text(xb, sizeof xb, x_label), label_text(yb, sizeof yb, y_label),
          label_text(tb, sizeof tb, title));
}

/* The plotting area of a chart with numeric axes: the standard viewport, a light grid,
 * the axes (logarithmic when log_x, log_y) and the labels. */
static void numeric_axes(PlotFigure *f, double xlo, double xhi, double ylo, double yhi, int log_x, int log_y,
                         const char *x_label, const char *y_label, const char *title) {
    plvsta();
    plwind(xlo, xhi, ylo, yhi);
    remember_area(f);
    plcol0(C_GRID);
    plbox(log_x ? "gl" : "g", 0, 0, log_y ? "gl" : "g", 0, 0);
    plcol0(C_INK);
    plbox(log_x ? "bcnstl" : "bcnst", 0, 0, log_y ? "bcnstvl" : "bcnstv", 0, 0);
    labels(x_label, y_label, title);
}

static int all_finite(const double *v, int n) {
    for (int i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

/* ---- line chart -------------------------------------------------------------------- */

int plot_point_ok(const PlotLineChart *c, double x, double y) {
    return isfinite(x) && isfinite(y) && (!c->log_y || y > 0) && (!c->log_x || x > 0);
}

double plot_axis_x(const PlotLineChart *c, double x) { return c->log_x ? log10(x) : x; }
double plot_axis_y(const PlotLineChart *c, double y) { return c->log_y ? log10(y) : y; }

int plot_line_ranges(const PlotLineChart *c, double range[4], int *have_points, BpError *err) {
    if (c->n_series < 0 || (c->n_series > 0 && !c->series))
        return bp_fail(err, "line chart: bad series list");
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int s = 0; s < c->n_series; s++) {
        const PlotSeries *ps = &c->series[s];
        if (ps->n < 0 || (ps->n > 0 && (!ps->x || !ps->y)))
            return bp_fail(err, "line chart: series %d has no points array", s);
        for (int i = 0; i < ps->n; i++) {
            if (!plot_point_ok(c, ps->x[i], ps->y[i])) continue;
            double x = plot_axis_x(c, ps->x[i]), y = plot_axis_y(c, ps->y[i]);
            if (x < xlo) xlo = x;
            if (x > xhi) xhi = x;
            if (y < ylo) ylo = y;
            if (y > yhi) yhi = y;
        }
    }
    *have_points = xlo <= xhi;
    if (!*have_points) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
    else {
        if (!(xhi > xlo)) plot_pad_range(&xlo, &xhi, 0);
        plot_pad_range(&ylo, &yhi, 0.05);
    }
    if (isfinite(c->x_min) && isfinite(c->x_max) && c->x_min < c->x_max) {
        if (c->log_x && c->x_min <= 0) return bp_fail(err, "line chart: log x range must be positive");
        xlo = plot_axis_x(c, c->x_min), xhi = plot_axis_x(c, c->x_max);
    }
    if (isfinite(c->y_min) && isfinite(c->y_max) && c->y_min < c->y_max) {
        if (c->log_y && c->y_min <= 0) return bp_fail(err, "line chart: log y range must be positive");
        ylo = plot_axis_y(c, c->y_min), yhi = plot_axis_y(c, c->y_max);
    }
    range[0] = xlo, range[1] = xhi, range[2] = ylo, range[3] = yhi;
    return 0;
}

int plot_line_chart(PlotFigure *f, const PlotLineChart *c, BpError *err) {
    double range[4];
    int have_points;
    if (plot_line_ranges(c, range, &have_points, err) != 0) return bp_error_prefix(err, "%s", f->file.path);
    double xlo = range[0], xhi = range[1], ylo = range[2], yhi = range[3];
    if (next_panel(f, err) != 0) return -1;
    numeric_axes(f, xlo, xhi, ylo, yhi, c->log_x, c->log_y, c->x_label, c->y_label, c->title);
    if (!have_points) {
        plptex(0.5, 0.5, 1, 0, 0.5, "no data");
        return check_abort(f, err);
    }

    int max_n = 0;
    for (int s = 0; s < c->n_series; s++)
        if (c->series[s].n > max_n) max_n = c->series[s].n;
    double *xs = malloc(sizeof *xs * (size_t)(max_n + 1)), *ys = malloc(sizeof *ys * (size_t)(max_n + 1));
    if (!xs || !ys) {
        free(xs), free(ys);
        return bp_fail(err, "%s: out of memory", f->file.path);
    }
    plwidth(2);
    for (int s = 0; s < c->n_series; s++) {
        const PlotSeries *ps = &c->series[s];
        plcol0(C_SERIES + s % N_SERIES_COLOURS);
        int run = 0;
        for (int i = 0; i <= ps->n; i++) {
            if (i < ps->n && plot_point_ok(c, ps->x[i], ps->y[i])) {
                xs[run] = plot_axis_x(c, ps->x[i]);
                ys[run] = plot_axis_y(c, ps->y[i]);
                run++;
                continue;
            }
            if (run == 1) plpoin(1, xs, ys, 17);
            else if (run > 1) plline(run, xs, ys);
            run = 0;
        }
    }
    plwidth(1);
    free(xs), free(ys);

    int n_labelled = 0;
    for (int s = 0; s < c->n_series; s++)
        if (c->series[s].label && c->series[s].label[0]) n_labelled++;
    if (c->legend && n_labelled > 0) {
        PLINT *opts = calloc((size_t)n_labelled, sizeof *opts);
        PLINT *colours = calloc((size_t)n_labelled, sizeof *colours);
        PLINT *styles = calloc((size_t)n_labelled, sizeof *styles);
        PLFLT *widths = calloc((size_t)n_labelled, sizeof *widths);
        char **texts = calloc((size_t)n_labelled, sizeof *texts);
        char *store = malloc((size_t)n_labelled * 4 * MAX_LABEL);
        if (!opts || !colours || !styles || !widths || !texts || !store) {
            free(opts), free(colours), free(styles), free(widths), free(texts), free(store);
            return bp_fail(err, "%s: out of memory", f->file.path);
        }
        int j = 0;
        for (int s = 0; s < c->n_series; s++) {
            if (!c->series[s].label || !c->series[s].label[0]) continue;
            opts[j] = PL_LEGEND_LINE;
            colours[j] = C_SERIES + s % N_SERIES_COLOURS;
            styles[j] = 1;
            widths[j] = 2;
            texts[j] = store + (size_t)j * 4 * MAX_LABEL;
            label_text(texts[j], 4 * MAX_LABEL, c->series[s].label);
            j++;
        }
        PLFLT lw, lh;
        pllegend(&lw, &lh, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
                 PL_POSITION_TOP | PL_POSITION_RIGHT | PL_POSITION_INSIDE, 0.02, 0.02, 0.08,
                 C_BACKGROUND, C_INK, 1, 0, 0, n_labelled, opts, 1.0, 0.75, 2.0, 0.0, colours,
                 (const char *const *)texts, NULL, NULL, NULL, NULL, colours, styles, widths,
                 NULL, NULL, NULL, NULL);
        free(opts), free(colours), free(styles), free(widths), free(texts), free(store);
    }
    return check_abort(f, err);
}

/* ---- bar chart --------------------------------------------------------------------- */

int plot_bar_chart(PlotFigure *f, const PlotBarChart *c, BpError *err) {
    if (c->n < 1 || !c->values || !c->labels)
        return bp_fail(err, "%s: bar chart: no bars", f->file.path);
    if (!all_finite(c->values, c->n))
        return bp_fail(err, "%s: bar chart: a value is not a finite number", f->file.path);
    double lo = 0, hi = 0;
    for (int i = 0; i < c->n; i++) {
        if (c->values[i] < lo) lo = c->values[i];
        if (c->values[i] > hi) hi = c->values[i];
    }
    plot_pad_range(&lo, &hi, 0.05);
    if (next_panel(f, err) != 0) return -1;
    plvpor(0.30, 0.95, 0.14, 0.88);
    plwind(lo, hi, 0, c->n);
    remember_area(f);
    plcol0(C_GRID);
    plbox("g", 0, 0, "", 0, 0);
    for (int i = 0; i < c->n; i++) {
        double v = c->values[i], y0 = c->n - i - 0.85, y1 = c->n - i - 0.15;
        PLFLT xs[4] = {0, v, v, 0}, ys[4] = {y0, y0, y1, y1};
        plcol0(v >= 0 ? C_SERIES : C_NEGATIVE);
        plfill(4, xs, ys);
    }
    plcol0(C_INK);
    PLFLT zx[2] = {0, 0}, zy[2] = {0, c->n};
    plline(2, zx, zy);
    plbox("bcnst", 0, 0, "bc", 0, 0);
    labels(c->x_label, NULL, c->title);
    PLFLT def, cur;
    plgchr(&def, &cur);
    if (c->n > 12) plschr(0, cur / def * (12.0 / c->n > 0.5 ? 12.0 / c->n : 0.5));
    char buf[4 * MAX_LABEL];
    for (int i = 0; i < c->n; i++)
        plmtex("lv", 0.5, (c->n - i - 0.5) / c->n, 1.0, label_text(buf, sizeof buf, c->labels[i]));
    return check_abort(f, err);
}

/* ---- scatter ----------------------------------------------------------------------- */

int plot_scatter(PlotFigure *f, const PlotScatter *c, BpError *err) {
    if (c->n < 1 || !c->x || !c->y) return bp_fail(err, "%s: scatter: no points", f->file.path);
    if (!all_finite(c->x, c->n) || !all_finite(c->y, c->n))
        return bp_fail(err, "%s: scatter: a coordinate is not a finite number", f->file.path);
    int n_groups = c->group ? c->n_groups : 1;
    if (n_groups < 1) return bp_fail(err, "%s: scatter: no groups", f->file.path);
    for (int i = 0; c->group && i < c->n; i++)
        if (c->group[i] < 0 || c->group[i] >= n_groups)
            return bp_fail(err, "%s: scatter: point %d has group %d of %d", f->file.path, i, c->group[i],
                           n_groups);
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int i = 0; i < c->n; i++) {
        xlo = fmin(xlo, c->x[i]), xhi = fmax(xhi, c->x[i]);
        ylo = fmin(ylo, c->y[i]), yhi = fmax(yhi, c->y[i]);
    }
    plot_pad_range(&xlo, &xhi, 0.08);
    if (c->labels && xhi > xlo) xhi += (xhi - xlo) * 0.12;   /* room for the last labels */
    plot_pad_range(&ylo, &yhi, 0.08);
    if (next_panel(f, err) != 0) return -1;
    numeric_axes(f, xlo, xhi, ylo, yhi, 0, 0, c->x_label, c->y_label, c->title);
    PLFLT def, cur;
    plgchr(&def, &cur);
    char buf[4 * MAX_LABEL];
    double dx = (xhi - xlo) * 0.01;
    for (int i = 0; i < c->n; i++) {
        int g = c->group ? c->group[i] : 0;
        plcol0(C_SERIES + g % N_SERIES_COLOURS);
        PLFLT x = c->x[i], y = c->y[i];
        plstring(1, &x, &y, "●");
        if (c->labels && c->labels[i]) {
            plschr(0, cur / def * 0.7);
            plptex(x + dx, y, 1, 0, 0, label_text(buf, sizeof buf, c->labels[i]));
            plschr(0, cur / def);
        }
    }
    if (c->group_names && n_groups > 0) {
        PLINT opts[64], colours[64], numbers[64];
        PLFLT scales[64];
        const char *texts[64], *symbols[64];
        static char store[64][4 * MAX_LABEL];
        int m = n_groups < 64 ? n_groups : 64;
        for (int g = 0; g < m; g++) {
            opts[g] = PL_LEGEND_SYMBOL;
            colours[g] = C_SERIES + g % N_SERIES_COLOURS;
            numbers[g] = 1;
            scales[g] = 1;
            symbols[g] = "●";
            texts[g] = label_text(store[g], sizeof store[g], c->group_names[g]);
        }
        PLFLT lw, lh;
        plschr(0, cur / def * 0.8);
        pllegend(&lw, &lh, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
                 PL_POSITION_TOP | PL_POSITION_RIGHT | PL_POSITION_INSIDE, 0.02, 0.02, 0.03,
                 C_BACKGROUND, C_INK, 1, 0, 0, m, opts, 1.0, 0.8, 2.0, 0.0, colours, texts, NULL,
                 NULL, NULL, NULL, NULL, NULL, NULL, colours, scales, numbers, symbols);
        plschr(0, cur / def);
    }
    return check_abort(f, err);
}

/* ---- heatmap ----------------------------------------------------------------------- */

int plot_heatmap(PlotFigure *f, const PlotHeatmap *c, BpError *err) {
    if (c->rows < 1 || c->cols < 1 || !c->values)
        return bp_fail(err, "%s: heatmap: empty matrix", f->file.path);
    if ((size_t)c->rows * (size_t)c->cols > (size_t)1 << 20)
        return bp_fail(err, "%s: heatmap: %d x %d cells is too many", f->file.path, c->rows, c->cols);
    size_t n = (size_t)c->rows * (size_t)c->cols;
    if (!all_finite(c->values, (int)n))
        return bp_fail(err, "%s: heatmap: a value is not a finite number", f->file.path);
    double lo = c->values[0], hi = c->values[0];
    for (size_t i = 0; i < n; i++) lo = fmin(lo, c->values[i]), hi = fmax(hi, c->values[i]);
    if (isfinite(c->z_min) && isfinite(c->z_max) && c->z_min < c->z_max) lo = c->z_min, hi = c->z_max;
    if (!(hi > lo)) plot_pad_range(&lo, &hi, 0);

    if (next_panel(f, err) != 0) return -1;
    /* cmap1: a perceptual dark-blue -> teal -> yellow ramp (viridis' end points). */
    PLFLT pos[3] = {0, 0.5, 1}, red[3] = {0.267, 0.128, 0.993}, green[3] = {0.005, 0.567, 0.906},
          blue[3] = {0.329, 0.551, 0.144};
    plscmap1l(1, 3, pos, red, green, blue, NULL);
    int have_row_labels = c->row_labels != NULL;
    plvpor(have_row_labels ? 0.22 : 0.12, 0.80, 0.14, 0.88);
    plwind(0, c->cols, 0, c->rows);
    remember_area(f);
    /* One filled rectangle a cell (vector output stays crisp), row 0 at the top. */
    for (int r = 0; r < c->rows; r++)
        for (int x = 0; x < c->cols; x++) {
            double t = (c->values[(size_t)r * c->cols + x] - lo) / (hi - lo);
            plcol1(t < 0 ? 0 : t > 1 ? 1 : t);
            double y0 = c->rows - 1 - r;
            PLFLT xs[4] = {x, x + 1, x + 1, x}, ys[4] = {y0, y0, y0 + 1, y0 + 1};
            plfill(4, xs, ys);
        }
    plcol0(C_INK);
    plbox("bc", 0, 0, "bc", 0, 0);
    labels(c->x_label, c->y_label, c->title);
    PLFLT def, cur;
    plgchr(&def, &cur);
    char buf[4 * MAX_LABEL];
    /* At most ~24 labels a side: every k-th one. */
    int kc = (c->cols + 23) / 24, kr = (c->rows + 23) / 24;
    plschr(0, cur / def * 0.75);
    for (int x = 0; x < c->cols; x += kc) {
        if (c->col_labels) label_text(buf, sizeof buf, c->col_labels[x]);
        else snprintf(buf, sizeof buf, "%d", x);
        plmtex("b", 1.2, (x + 0.5) / c->cols, 0.5, buf);
    }
    for (int r = 0; r < c->rows; r += kr) {
        if (c->row_labels) label_text(buf, sizeof buf, c->row_labels[r]);
        else snprintf(buf, sizeof buf, "%d", r);
        plmtex("lv", 0.6, (c->rows - r - 0.5) / c->rows, 1.0, buf);
    }
    plschr(0, cur / def);
    PLFLT cw, ch;
    PLINT label_opts[1] = {PL_COLORBAR_LABEL_RIGHT};
    char zbuf[4 * MAX_LABEL];
    const char *zlabels[1] = {label_text(zbuf, sizeof zbuf, c->z_label)};
    const char *axis_opts[1] = {"bcvtm"};
    PLFLT ticks[1] = {0};
    PLINT sub_ticks[1] = {0}, n_values[1] = {2};
    PLFLT range[2] = {lo, hi};
    const PLFLT *values[1] = {range};
    plcolorbar(&cw, &ch, PL_COLORBAR_IMAGE, PL_POSITION_RIGHT | PL_POSITION_OUTSIDE, 0.02, 0, 0.04, 1.0,
               C_BACKGROUND, C_INK, 1, 0, 0, 0, 0, zlabels[0][0] ? 1 : 0, label_opts, zlabels, 1,
               axis_opts, ticks, sub_ticks, n_values, values);
    return check_abort(f, err);
}

/* Under LeakSanitizer (make test's sanitizer pass): fontconfig, which cairo's text goes
 * through, keeps its configuration and font caches for the life of the process by
 * design; those are not leaks of ours. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libfontconfig.so\n"; }
const char *__lsan_default_options(void);
const char *__lsan_default_options(void) { return "print_suppressions=0"; }
