/* term.c - line charts as UTF-8 text: each character cell holds 2 x 4 braille dots
 * (U+2800 + one bit per dot), so a 80 x 24 terminal gives a 142 x 76 dot canvas. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot.h"
#include "plot_private.h"

#define GUTTER 9   /* 8 columns of y tick values and the axis line */

/* The bit of dot (dx, dy) in a braille cell, dx in 0..1, dy in 0..3 (Unicode's order). */
static const unsigned char braille_bit[4][2] = {{0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20}, {0x40, 0x80}};
/* SGR colours of the series: blue, yellow, green, magenta, cyan, red (like the pictures). */
static const int ansi_colour[] = {34, 33, 32, 35, 36, 31};

typedef struct {
    int cols, rows;            /* cells of the plotting area */
    unsigned char *dots;       /* cols * rows braille bits */
    signed char *owner;        /* cols * rows: the series that last set a dot, -1 none */
} Canvas;

static void set_dot(Canvas *cv, int x, int y, int series) {
    if (x < 0 || y < 0 || x >= cv->cols * 2 || y >= cv->rows * 4) return;
    size_t cell = (size_t)(y / 4) * cv->cols + (size_t)(x / 2);
    cv->dots[cell] |= braille_bit[y % 4][x % 2];
    cv->owner[cell] = (signed char)(series % 127);
}

/* Bresenham between two dots; the canvas clips. */
static void draw_segment(Canvas *cv, int x0, int y0, int x1, int y1, int series) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int e = dx + dy;
    for (int guard = 0; guard < 1 << 20; guard++) {
        set_dot(cv, x0, y0, series);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * e;
        if (e2 >= dy) e += dy, x0 += sx;
        if (e2 <= dx) e += dx, y0 += sy;
    }
}

/* A dot coordinate for a value, clamped well outside the canvas so that lines leaving
 * the area keep their slope without overflowing an int. */
static int to_dot(double v, double lo, double hi, int n_dots, int flip) {
    double t = (v - lo) / (hi - lo);
    if (flip) t = 1 - t;
    double d = floor(t * (n_dots - 1) + 0.5);
    if (d < -4.0 * n_dots) d = -4.0 * n_dots;
    if (d > 5.0 * n_dots) d = 5.0 * n_dots;
    return (int)d;
}

/* Appends to a growing line buffer. */
typedef struct {
    char *s;
    size_t len, cap;
    int ok;
} Buf;

static void put(Buf *b, const char *s, size_t n) {
    if (!b->ok) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->ok = 0;
            return;
        }
        b->s = p, b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}
static void puts_(Buf *b, const char *s) { put(b, s, strlen(s)); }

/* Appends at most `cols` characters of UTF-8 text s (control characters as spaces),
 * then spaces up to `cols`; returns nothing: the line's width stays exact. */
static void put_text(Buf *b, const char *s, int cols) {
    int used = 0;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && used < cols;) {
        int len = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 1;
        int valid = 1;
        for (int k = 1; k < len; k++)
            if ((p[k] & 0xC0) != 0x80) valid = 0;
        if (!valid || *p < 0x20 || *p == 0x7F || (*p >= 0x80 && len == 1)) {
            put(b, " ", 1);
            p++;
        } else {
            put(b, (const char *)p, (size_t)len);
            p += len;
        }
        used++;
    }
    for (; used < cols; used++) put(b, " ", 1);
}

static void format_tick(char *out, size_t size, double v, int log_y) {
    snprintf(out, size, "%8.4g", log_y ? pow(10, v) : v);
    if (strlen(out) > 8) snprintf(out, size, "%8.1e", log_y ? pow(10, v) : v);
}

int plot_term_lines(const PlotLineChart *c, int width, int height, int ansi_color, PlotText *out,
                    BpError *err) {
    out->lines = NULL, out->n_lines = 0;
    if (width < 24 || width > 4096 || height < 6 || height > 4096)
        return bp_fail(err, "terminal chart: %d x %d characters out of range (24 x 6 to 4096 x 4096)",
                       width, height);
    double range[4];
    int have_points;
    if (plot_line_ranges(c, range, &have_points, err) != 0) return -1;
    double xlo = range[0], xhi = range[1], ylo = range[2], yhi = range[3];

    int n_labelled = 0;
    for (int s = 0; s < c->n_series; s++)
        if (c->series[s].label && c->series[s].label[0]) n_labelled++;
    int legend_lines = n_labelled;
    if (height - 3 - legend_lines < 2) legend_lines = height - 5;
    Canvas cv = {.cols = width - GUTTER, .rows = height - 3 - legend_lines};
    cv.dots = calloc((size_t)cv.cols * cv.rows, 1);
    cv.owner = malloc((size_t)cv.cols * cv.rows);
    out->lines = calloc((size_t)height, sizeof *out->lines);
    if (!cv.dots || !cv.owner || !out->lines) {
        free(cv.dots), free(cv.owner), free(out->lines);
        out->lines = NULL;
        return bp_fail(err, "terminal chart: out of memory");
    }
    memset(cv.owner, -1, (size_t)cv.cols * cv.rows);

    for (int s = 0; s < c->n_series; s++) {
        const PlotSeries *ps = &c->series[s];
        int have_prev = 0, px = 0, py = 0;
        for (int i = 0; i < ps->n; i++) {
            if (!plot_point_ok(c, ps->x[i], ps->y[i])) {
                have_prev = 0;
                continue;
            }
            int x1 = to_dot(plot_axis_x(c, ps->x[i]), xlo, xhi, cv.cols * 2, 0);
            int y1 = to_dot(plot_axis_y(c, ps->y[i]), ylo, yhi, cv.rows * 4, 1);
            if (have_prev) draw_segment(&cv, px, py, x1, y1, s);
            else set_dot(&cv, x1, y1, s);
            px = x1, py = y1, have_prev = 1;
        }
    }

    int ok = 1, line = 0;
    Buf b = {0};
    /* title */
    b.ok = 1;
    put_text(&b, c->title, width);
    out->lines[line++] = b.s;
    for (int r = 0; r < cv.rows; r++) {
        b = (Buf){.ok = 1};
        char tick[64];
        double mid = (cv.rows - 1) / 2.0;
        if (r == 0) format_tick(tick, sizeof tick, yhi, c->log_y);
        else if (r == cv.rows - 1) format_tick(tick, sizeof tick, ylo, c->log_y);
        else if (cv.rows >= 5 && r == (int)mid) format_tick(tick, sizeof tick, yhi - (yhi - ylo) * (r + 0.5) / cv.rows, c->log_y);
        else snprintf(tick, sizeof tick, "%8s", "");
        puts_(&b, tick);
        puts_(&b, r == 0 || r == cv.rows - 1 || (cv.rows >= 5 && r == (int)mid) ? "┤" : "│");
        int colour = -1;
        for (int x = 0; x < cv.cols; x++) {
            size_t cell = (size_t)r * cv.cols + x;
            unsigned bits = cv.dots[cell];
            if (ansi_color) {
                int want = bits ? cv.owner[cell] : -1;
                if (want != colour) {
                    char sgr[16];
                    if (want < 0) snprintf(sgr, sizeof sgr, "\x1b[0m");
                    else snprintf(sgr, sizeof sgr, "\x1b[%dm", ansi_colour[want % 6]);
                    puts_(&b, sgr);
                    colour = want;
                }
            }
            if (!bits) {
                put(&b, " ", 1);
                continue;
            }
            char ch[3] = {(char)0xE2, (char)(0xA0 | (bits >> 6)), (char)(0x80 | (bits & 0x3F))};
            put(&b, ch, 3);
        }
        if (ansi_color && colour >= 0) puts_(&b, "\x1b[0m");
        ok &= b.ok;
        out->lines[line++] = b.s;
    }
    /* axis */
    b = (Buf){.ok = 1};
    puts_(&b, "        └");
    for (int x = 0; x < cv.cols; x++) puts_(&b, "─");
    out->lines[line++] = b.s;
    /* x range and label: "xlo ... label ... xhi" */
    b = (Buf){.ok = 1};
    char lo_s[32], hi_s[32], mid_s[512];
    snprintf(lo_s, sizeof lo_s, "%.4g", c->log_x ? pow(10, xlo) : xlo);
    snprintf(hi_s, sizeof hi_s, "%.4g", c->log_x ? pow(10, xhi) : xhi);
    snprintf(mid_s, sizeof mid_s, "%s", have_points ? (c->x_label ? c->x_label : "") : "no data");
    int free_cols = cv.cols - (int)strlen(lo_s) - (int)strlen(hi_s);
    put_text(&b, "", GUTTER);
    if (free_cols >= 2) {
        puts_(&b, lo_s);
        int lab = free_cols - 2;
        int pad = 0;
        put_text(&b, "", 1);
        /* centre the label in what is left */
        int label_cols = 0;
        for (const unsigned char *p = (const unsigned char *)mid_s; *p; p++) label_cols += (*p & 0xC0) != 0x80;
        if (label_cols < lab) pad = (lab - label_cols) / 2;
        put_text(&b, "", pad);
        put_text(&b, mid_s, lab - pad);
        put_text(&b, "", 1);
        puts_(&b, hi_s);
    } else {
        put_text(&b, "", cv.cols);
    }
    out->lines[line++] = b.s;
    /* legend */
    for (int s = 0, shown = 0; s < c->n_series && shown < legend_lines; s++) {
        if (!c->series[s].label || !c->series[s].label[0]) continue;
        b = (Buf){.ok = 1};
        put_text(&b, "", GUTTER);
        char sgr[16];
        if (ansi_color) snprintf(sgr, sizeof sgr, "\x1b[%dm", ansi_colour[s % 6]), puts_(&b, sgr);
        puts_(&b, "⣿⣿");
        if (ansi_color) puts_(&b, "\x1b[0m");
        put_text(&b, " ", 1);
        put_text(&b, c->series[s].label, width - GUTTER - 3);
        out->lines[line++] = b.s;
        shown++;
    }
    while (line < height) {
        b = (Buf){.ok = 1};
        put_text(&b, "", width);
        out->lines[line++] = b.s;
    }
    for (int i = 0; i < line; i++) ok &= out->lines[i] != NULL;
    out->n_lines = line;
    free(cv.dots), free(cv.owner);
    if (!ok) {
        plot_text_free(out);
        return bp_fail(err, "terminal chart: out of memory");
    }
    return 0;
}

void plot_text_free(PlotText *t) {
    if (!t->lines) return;
    for (int i = 0; i < t->n_lines; i++) free(t->lines[i]);
    free(t->lines);
    t->lines = NULL, t->n_lines = 0;
}
