/* plot.h - pictures: line charts, horizontal bar charts, labelled scatters and heatmaps,
 * drawn with PLplot's cairo drivers into .png, .svg or .pdf files (chosen by the file's
 * extension), and line charts as UTF-8 text for terminals (braille dots).
 *
 * A figure is a grid of panels, filled left to right, top to bottom, one chart each:
 *
 *     PlotFigure *fig;
 *     if (plot_open(&fig, "loss.png", 800, 600, 1, 1, &err) != 0) return -1;
 *     if (plot_line_chart(fig, &chart, &err) != 0) { plot_discard(fig); return -1; }
 *     return plot_close(fig, &err);      // renames the finished file into place
 *
 * The file is written atomically (common/fileio.h): PLplot renders into a temporary
 * file in the same directory, and plot_close renames it over the target, so a reader
 * sees the old picture or the new one, never half of one; plot_discard (or any failed
 * call) leaves the target untouched. Every chart validates its input first (counts,
 * finite numbers) and fails with one line in err rather than letting PLplot exit the
 * process. Labels are UTF-8; they are drawn as given (PLplot's '#' escapes are
 * neutralised). Sizes are pixels for .png and points (1/72 inch) for .svg and .pdf.
 *
 * PLplot keeps global state: one figure is open at a time, from one thread.
 */
#ifndef BP_PLOT_H
#define BP_PLOT_H

#include "../common/error.h"

typedef enum { PLOT_PNG = 0, PLOT_SVG, PLOT_PDF } PlotFormat;

/* The format for a path's extension (.png, .svg, .pdf, any case); fails naming the
 * path for anything else. */
int plot_format_for_path(const char *path, PlotFormat *out, BpError *err);

/* ---- what can be drawn ------------------------------------------------------------ */

/* One line of a line chart. Points with a non-finite x or y (or a value <= 0 on a log
 * axis) are skipped and break the line there. */
typedef struct {
    const char *label;         /* legend entry; NULL or "" for none */
    const double *x, *y;       /* n points each */
    int n;
} PlotSeries;

typedef struct {
    const char *title, *x_label, *y_label;   /* each may be NULL */
    const PlotSeries *series;
    int n_series;
    int log_y;                 /* 1: logarithmic y axis */
    int log_x;                 /* 1: logarithmic x axis (sweeps over sizes, steps) */
    /* Fixed axis ranges when min < max; otherwise the range of the data (padded). */
    double x_min, x_max, y_min, y_max;
    int legend;                /* 1: a legend of the labelled series (top right, inside) */
} PlotLineChart;

/* Horizontal bars, the first at the top, each with its word on the left. Negative
 * values draw to the left of zero in a second colour. */
typedef struct {
    const char *title, *x_label;
    const char *const *labels; /* n labels */
    const double *values;      /* n values, finite */
    int n;
} PlotBarChart;

/* Points with a text label beside each; points of the same group share a colour, and
 * with group_names a legend names the groups. */
typedef struct {
    const char *title, *x_label, *y_label;
    const double *x, *y;       /* n points, finite */
    const char *const *labels; /* n labels, or NULL for none */
    const int *group;          /* n group indices in [0, n_groups), or NULL: all group 0 */
    const char *const *group_names;   /* n_groups names, or NULL for no legend */
    int n, n_groups;
} PlotScatter;

/* A matrix as coloured cells, row 0 at the top, with a colour bar on the right. */
typedef struct {
    const char *title, *x_label, *y_label, *z_label;
    const double *values;      /* rows x cols, row-major, finite */
    int rows, cols;
    const char *const *row_labels;   /* rows labels, or NULL: the row indices */
    const char *const *col_labels;   /* cols labels, or NULL: the column indices */
    double z_min, z_max;       /* the colour range when z_min < z_max; else the data's */
} PlotHeatmap;

/* ---- figures ----------------------------------------------------------------------- */

typedef struct PlotFigure PlotFigure;

/* Starts a figure of rows x cols panels, width x height pixels or points (each from 16
 * to 16384), to be written at path (its extension picks the format). Fails if another
 * figure is open, or if PLplot lacks the cairo driver for the format. */
int plot_open(PlotFigure **out, const char *path, int width, int height, int rows, int cols,
              BpError *err);

/* Each draws one chart into the next panel; fails when every panel is used or the
 * input is invalid (the figure stays open: discard it). */
int plot_line_chart(PlotFigure *fig, const PlotLineChart *chart, BpError *err);
int plot_bar_chart(PlotFigure *fig, const PlotBarChart *chart, BpError *err);
int plot_scatter(PlotFigure *fig, const PlotScatter *chart, BpError *err);
int plot_heatmap(PlotFigure *fig, const PlotHeatmap *chart, BpError *err);

/* The plotting area (inside the axes) of the last chart drawn, in pixels from the top
 * left corner of the image: where a data point lands (tests use it to find curves). */
typedef struct {
    double left, right, top, bottom;
} PlotRect;
PlotRect plot_last_area(const PlotFigure *fig);

/* Finishes the picture and renames it into place; frees fig either way. */
int plot_close(PlotFigure *fig, BpError *err);
/* Drops the figure and its temporary file; the target is untouched. NULL is fine. */
void plot_discard(PlotFigure *fig);

/* ---- terminal ---------------------------------------------------------------------- */

/* Lines of UTF-8 text, each malloc'ed and NUL-terminated, without newlines. */
typedef struct {
    char **lines;
    int n_lines;
} PlotText;

/* Renders a line chart as text `width` columns wide (at least 24) and `height` lines
 * high (at least 6): a title line, the plotting area in braille dots (2 x 4 dots a
 * cell) with y tick values on the left, an axis line, the x range, and a legend line
 * per labelled series. Every line is exactly `width` columns (each braille dot cell
 * and box character counts one). With ansi_color, each cell is coloured by the series
 * that set its dots (SGR escape codes, reset at the end of each line); without it,
 * series that overlap share cells. The chart's fixed ranges, log_x and log_y apply; a pure
 * function of its input (no terminal calls), for `backpack plot --term` and browsers. */
int plot_term_lines(const PlotLineChart *chart, int width, int height, int ansi_color,
                    PlotText *out, BpError *err);
void plot_text_free(PlotText *text);

#endif
