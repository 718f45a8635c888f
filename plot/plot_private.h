/* plot_private.h - what the picture and text renderers of plot/ share. */
#ifndef BP_PLOT_PRIVATE_H
#define BP_PLOT_PRIVATE_H

#include "plot.h"

/* 1 if (x, y) is drawn: both finite, and positive on a log axis. */
int plot_point_ok(const PlotLineChart *c, double x, double y);
/* Where a value sits along its axis: log10 of it on a log axis, else itself. */
double plot_axis_x(const PlotLineChart *c, double x);
double plot_axis_y(const PlotLineChart *c, double y);
/* Pads [lo, hi] by share of its width; an empty range becomes one around it. */
void plot_pad_range(double *lo, double *hi, double share);
/* The axis ranges of a line chart, {x_lo, x_hi, y_lo, y_hi} (in log10 units on a log
 * axis): the chart's fixed ranges, else the data's, padded. *have_points = 0 when no
 * point is drawable (the range is then [0, 1] x [0, 1]). */
int plot_line_ranges(const PlotLineChart *c, double range[4], int *have_points, BpError *err);

#endif
