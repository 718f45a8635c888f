/* plot_private.h - what the picture and text renderers of plot/ share. */
#ifndef BP_PLOT_PRIVATE_H
#define BP_PLOT_PRIVATE_H

#include "plot.h"

/* 1 if (x, y) is drawn: both finite, and y > 0 on a log axis. */
int plot_point_ok(const PlotLineChart *c, double x, double y);
/* Pads [lo, hi] by share of its width; an empty range becomes one around it. */
void plot_pad_range(double *lo, double *hi, double share);
/* The axis ranges of a line chart, {x_lo, x_hi, y_lo, y_hi} (y in log10 units for
 * log_y): the chart's fixed ranges, else the data's, padded. *have_points = 0 when no
 * point is drawable (the range is then [0, 1] x [0, 1]). */
int plot_line_ranges(const PlotLineChart *c, double range[4], int *have_points, BpError *err);

#endif
