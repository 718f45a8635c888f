/* Pictures: size, real content, and curves, bars and cells where the data puts them
 * (the PNG is read back with libpng); SVG and PDF files; atomic writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "../plot/plot.h"
#include "fixture.h"

static int setup(void **state) {
    (void)state;
    return temp_dir_create(&tmp, "plot");
}

typedef struct {
    int width, height;
    unsigned char *rgb;   /* width * height * 3 */
} Image;

static Image read_png(const char *path) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    assert_true(png_image_begin_read_from_file(&img, path));
    img.format = PNG_FORMAT_RGB;
    Image out = {(int)img.width, (int)img.height, malloc(PNG_IMAGE_SIZE(img))};
    assert_non_null(out.rgb);
    assert_true(png_image_finish_read(&img, NULL, out.rgb, 0, NULL));
    return out;
}

static const unsigned char *pixel(const Image *im, int x, int y) {
    return im->rgb + ((size_t)y * im->width + x) * 3;
}

static int near_colour(const unsigned char *p, int r, int g, int b, int tol) {
    return abs(p[0] - r) <= tol && abs(p[1] - g) <= tol && abs(p[2] - b) <= tol;
}

/* Mean row of the pixels of colour (r, g, b) in column x, or -1 if none. */
static double colour_row(const Image *im, int x, int r, int g, int b) {
    double sum = 0;
    int n = 0;
    for (int y = 0; y < im->height; y++)
        if (near_colour(pixel(im, x, y), r, g, b, 40)) sum += y, n++;
    return n ? sum / n : -1;
}

static double grey_variance(const Image *im) {
    double s = 0, s2 = 0, n = (double)im->width * im->height;
    for (int i = 0; i < im->width * im->height; i++) {
        double v = (im->rgb[3 * i] + im->rgb[3 * i + 1] + im->rgb[3 * i + 2]) / 3.0;
        s += v, s2 += v * v;
    }
    return s2 / n - (s / n) * (s / n);
}

static void path_in_tmp(char *out, size_t size, const char *name) { temp_dir_path(&tmp, name, out, size); }

typedef enum { LINES, BARS, HEATMAP, SCATTER } ChartKind;

/* Draws one chart into tmp.path/name (w x h), reads the PNG back into *im and returns the
 * chart's plotting area in pixels. */
static PlotRect render(const char *name, int w, int h, ChartKind kind, const void *chart, Image *im) {
    char path[512];
    path_in_tmp(path, sizeof path, name);
    BpError err = {{0}};
    PlotFigure *fig;
    assert_int_equal(plot_open(&fig, path, w, h, 1, 1, &err), 0);
    int rc = kind == LINES     ? plot_line_chart(fig, chart, &err)
             : kind == BARS    ? plot_bar_chart(fig, chart, &err)
             : kind == HEATMAP ? plot_heatmap(fig, chart, &err)
                               : plot_scatter(fig, chart, &err);
    assert_int_equal(rc, 0);
    PlotRect a = plot_last_area(fig);
    assert_int_equal(plot_close(fig, &err), 0);
    *im = read_png(path);
    assert_int_equal(im->width, w);
    assert_int_equal(im->height, h);
    return a;
}

/* The number of entries in tmp.path whose name contains ".tmp-" (left-over temporaries). */
static int temporaries_left(void) {
    DIR *d = opendir(tmp.path);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".tmp-") != NULL;
    closedir(d);
    return n;
}

/* Two horizontal lines at known values on fixed axes land on the rows the axes give. */
static void test_line_chart_png_puts_curves_where_the_data_says(void **state) {
    (void)state;
    double x[2] = {0, 10}, low[2] = {0.25, 0.25}, high[2] = {0.75, 0.75};
    PlotSeries s[2] = {{"low", x, low, 2}, {"high", x, high, 2}};
    PlotLineChart c = {.title = "two lines", .x_label = "x", .y_label = "y", .series = s, .n_series = 2,
                       .x_min = 0, .x_max = 10, .y_min = 0, .y_max = 1};
    Image im;
    PlotRect a = render("lines.png", 400, 300, LINES, &c, &im);
    assert_true(a.left > 10 && a.right < 400 && a.left < a.right);
    assert_true(a.top > 5 && a.bottom < 300 && a.top < a.bottom);
    assert_true(grey_variance(&im) > 100);
    int column = (int)((a.left + a.right) / 2);
    double want_low = a.bottom - 0.25 * (a.bottom - a.top), want_high = a.bottom - 0.75 * (a.bottom - a.top);
    double got_low = colour_row(&im, column, 31, 119, 180), got_high = colour_row(&im, column, 255, 127, 14);
    assert_true(fabs(got_low - want_low) <= 2.0);
    assert_true(fabs(got_high - want_high) <= 2.0);
    /* and nowhere else in that column: the background there is white */
    assert_true(near_colour(pixel(&im, column, (int)((want_low + want_high) / 2)), 255, 255, 255, 50));
    free(im.rgb);
    assert_int_equal(temporaries_left(), 0);
}

/* On a log axis from 1 to 100, y = 10 sits half way up. */
static void test_log_y_axis(void **state) {
    (void)state;
    double x[3] = {1, 2, 3}, y[3] = {10, 10, 10};
    PlotSeries s = {"ten", x, y, 3};
    PlotLineChart c = {.series = &s, .n_series = 1, .log_y = 1, .x_min = 1, .x_max = 3, .y_min = 1, .y_max = 100};
    Image im;
    PlotRect a = render("log.png", 300, 300, LINES, &c, &im);
    double got = colour_row(&im, (int)((a.left + a.right) / 2), 31, 119, 180);
    assert_true(fabs(got - (a.top + a.bottom) / 2) <= 2.0);
    free(im.rgb);
}

/* On a log x axis from 1 to 100, a line from x = 1 to x = 10 ends half way across. */
static void test_log_x_axis(void **state) {
    (void)state;
    double x[2] = {1, 10}, y[2] = {0.5, 0.5};
    PlotSeries s = {"half", x, y, 2};
    PlotLineChart c = {.series = &s, .n_series = 1, .log_x = 1, .x_min = 1, .x_max = 100, .y_min = 0, .y_max = 1};
    Image im;
    PlotRect a = render("logx.png", 400, 300, LINES, &c, &im);
    double w = a.right - a.left;
    assert_true(colour_row(&im, (int)(a.left + 0.25 * w), 31, 119, 180) > 0);
    assert_true(colour_row(&im, (int)(a.left + 0.47 * w), 31, 119, 180) > 0);
    assert_true(colour_row(&im, (int)(a.left + 0.53 * w), 31, 119, 180) < 0);
    assert_true(colour_row(&im, (int)(a.left + 0.75 * w), 31, 119, 180) < 0);
    free(im.rgb);
    /* non-positive fixed x range on a log axis is refused */
    c.x_min = 0;
    char path[512];
    path_in_tmp(path, sizeof path, "logx-bad.png");
    BpError err = {{0}};
    PlotFigure *fig;
    assert_int_equal(plot_open(&fig, path, 200, 200, 1, 1, &err), 0);
    assert_int_equal(plot_line_chart(fig, &c, &err), -1);
    assert_non_null(strstr(err.msg, "log x"));
    plot_discard(fig);
}

/* Positive bars are drawn in the series colour right of zero, negative ones red left. */
static void test_bar_chart(void **state) {
    (void)state;
    const char *labels[2] = {" river", " money#1"};
    double values[2] = {2.0, -1.0};
    PlotBarChart c = {.title = "bars", .x_label = "score", .labels = labels, .values = values, .n = 2};
    Image im;
    PlotRect a = render("bars.png", 400, 300, BARS, &c, &im);
    assert_true(grey_variance(&im) > 100);
    /* x range: [-1, 2] padded by 5% each side, 3.3 wide from -1.15 */
    double upper = a.top + (a.bottom - a.top) * 0.25, lower = a.top + (a.bottom - a.top) * 0.75;
    double right = a.left + (a.right - a.left) * (3.0 / 3.3);   /* x = 1.85, inside bar 1 */
    double left = a.left + (a.right - a.left) * (0.3 / 3.3);    /* x = -0.85, inside bar 2 */
    assert_true(near_colour(pixel(&im, (int)right, (int)upper), 31, 119, 180, 10));
    assert_true(near_colour(pixel(&im, (int)left, (int)lower), 214, 39, 40, 10));
    assert_false(near_colour(pixel(&im, (int)left, (int)upper), 31, 119, 180, 60));
    assert_false(near_colour(pixel(&im, (int)right, (int)lower), 214, 39, 40, 60));
    /* the bar of 2.0 ends near x = 2 (at 3.15 / 3.3 of the width) */
    double end = a.left + (a.right - a.left) * (3.15 / 3.3);
    assert_true(near_colour(pixel(&im, (int)end - 3, (int)upper), 31, 119, 180, 10));
    assert_false(near_colour(pixel(&im, (int)end + 3, (int)upper), 31, 119, 180, 60));
    free(im.rgb);
}

/* Each cell of a 2 x 2 heatmap takes the colour map's end for its value. */
static void test_heatmap_cells(void **state) {
    (void)state;
    double v[4] = {0, 1, 1, 0};
    const char *rows[2] = {"layer 0", "layer 1"};
    PlotHeatmap h = {.title = "heat", .z_label = "cos", .values = v, .rows = 2, .cols = 2, .row_labels = rows,
                     .z_min = 0, .z_max = 1};
    Image im;
    PlotRect a = render("heat.png", 400, 300, HEATMAP, &h, &im);
    int x0 = (int)(a.left + (a.right - a.left) * 0.25), x1 = (int)(a.left + (a.right - a.left) * 0.75);
    int y0 = (int)(a.top + (a.bottom - a.top) * 0.25), y1 = (int)(a.top + (a.bottom - a.top) * 0.75);
    /* low end (0.267, 0.005, 0.329), high end (0.993, 0.906, 0.144) */
    assert_true(near_colour(pixel(&im, x0, y0), 68, 1, 84, 12));    /* row 0, col 0: 0 */
    assert_true(near_colour(pixel(&im, x1, y0), 253, 231, 37, 12)); /* row 0, col 1: 1 */
    assert_true(near_colour(pixel(&im, x0, y1), 253, 231, 37, 12)); /* row 1, col 0: 1 */
    assert_true(near_colour(pixel(&im, x1, y1), 68, 1, 84, 12));    /* row 1, col 1: 0 */
    /* the colour bar right of the area holds both ends too */
    int low = 0, high = 0;
    for (int x = (int)a.right + 2; x < im.width; x++)
        for (int y = (int)a.top; y < (int)a.bottom; y++) {
            low |= near_colour(pixel(&im, x, y), 68, 1, 84, 20);
            high |= near_colour(pixel(&im, x, y), 253, 231, 37, 20);
        }
    assert_true(low && high);
    free(im.rgb);
}

/* A labelled point is drawn at its coordinates, in its group's colour. */
static void test_scatter(void **state) {
    (void)state;
    double x[3] = {0, 1, 2}, y[3] = {0, 2, 1};
    const char *labels[3] = {"a", "b", "c"}, *groups[2] = {"first", "second"};
    int group[3] = {0, 0, 1};
    PlotScatter s = {.title = "points", .x = x, .y = y, .labels = labels, .group = group,
                     .group_names = groups, .n = 3, .n_groups = 2};
    Image im;
    PlotRect a = render("scatter.png", 400, 400, SCATTER, &s, &im);
    /* x range [0, 2] padded 8% each side, then 12% more on the right for labels */
    double xlo = -0.16, xhi = 2.16 + 2.32 * 0.12, ylo = -0.16, yhi = 2.16;
    int px = (int)(a.left + (a.right - a.left) * (2 - xlo) / (xhi - xlo));
    int py = (int)(a.bottom - (a.bottom - a.top) * (1 - ylo) / (yhi - ylo));
    assert_true(near_colour(pixel(&im, px, py), 255, 127, 14, 30));   /* "c", group 1 */
    px = (int)(a.left + (a.right - a.left) * (1 - xlo) / (xhi - xlo));
    py = (int)(a.bottom - (a.bottom - a.top) * (2 - ylo) / (yhi - ylo));
    assert_true(near_colour(pixel(&im, px, py), 31, 119, 180, 30));   /* "b", group 0 */
    free(im.rgb);
}

static char *slurp(const char *path, size_t *len) {
    char *data;
    BpError err;
    assert_int_equal(read_file(path, &data, len, &err), 0);
    return data;
}

/* The extension picks the driver: an SVG document, a PDF file, and panels in a grid. */
static void test_svg_and_pdf(void **state) {
    (void)state;
    double x[3] = {0, 1, 2}, y[3] = {1, 3, 2};
    PlotSeries s = {"s", x, y, 3};
    PlotLineChart c = {.title = "t", .series = &s, .n_series = 1, .legend = 1};
    const char *names[2] = {"a.svg", "b.PDF"};
    for (int i = 0; i < 2; i++) {
        char path[512];
        path_in_tmp(path, sizeof path, names[i]);
        BpError err = {{0}};
        PlotFigure *fig;
        assert_int_equal(plot_open(&fig, path, 500, 300, 1, 2, &err), 0);
        assert_int_equal(plot_line_chart(fig, &c, &err), 0);
        assert_int_equal(plot_line_chart(fig, &c, &err), 0);
        /* both panels used: a third chart is refused */
        assert_int_equal(plot_line_chart(fig, &c, &err), -1);
        assert_non_null(strstr(err.msg, "panels"));
        assert_int_equal(plot_close(fig, &err), 0);
        size_t len;
        char *data = slurp(path, &len);
        if (i == 0) {
            assert_non_null(strstr(data, "<svg"));
            assert_non_null(strstr(data, "</svg>"));
            assert_non_null(strstr(data, "width=\"500"));
        } else {
            assert_memory_equal(data, "%PDF-", 5);
            assert_non_null(memmem(data + len - (len > 64 ? 64 : len), len > 64 ? 64 : len, "%%EOF", 5));
        }
        free(data);
    }
}

/* A failed or abandoned figure leaves the old file as it was and no temporary behind. */
static void test_atomic_and_errors(void **state) {
    (void)state;
    char path[512];
    path_in_tmp(path, sizeof path, "keep.png");
    BpError err = {{0}};
    assert_int_equal(write_file_atomic(path, "old", 3, &err), 0);
    PlotFigure *fig;
    assert_int_equal(plot_open(&fig, path, 200, 200, 1, 1, &err), 0);
    double v[2] = {1, NAN};
    const char *labels[2] = {"a", "b"};
    PlotBarChart bad = {.labels = labels, .values = v, .n = 2};
    assert_int_equal(plot_bar_chart(fig, &bad, &err), -1);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "finite"));
    /* a second figure while one is open is refused */
    PlotFigure *other;
    char path2[512];
    path_in_tmp(path2, sizeof path2, "other.png");
    assert_int_equal(plot_open(&other, path2, 200, 200, 1, 1, &err), -1);
    plot_discard(fig);
    size_t len;
    char *data = slurp(path, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(data, "old", 3);
    free(data);
    assert_int_equal(temporaries_left(), 0);

    /* unknown extension, bad sizes, a directory that does not exist */
    assert_int_equal(plot_open(&fig, "/tmp/x.jpg", 200, 200, 1, 1, &err), -1);
    assert_non_null(strstr(err.msg, "/tmp/x.jpg"));
    assert_int_equal(plot_open(&fig, path, 5, 200, 1, 1, &err), -1);
    assert_int_equal(plot_open(&fig, path, 200, 200, 0, 1, &err), -1);
    assert_int_equal(plot_open(&fig, "/nonexistent-dir/a.png", 200, 200, 1, 1, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/a.png"));
    PlotFormat f;
    assert_int_equal(plot_format_for_path("a.b/c", &f, &err), -1);
    assert_int_equal(plot_format_for_path("dir.png/c.Svg", &f, &err), 0);
    assert_int_equal(f, PLOT_SVG);

    /* still usable after all that: a chart with no drawable points says so, not fails */
    assert_int_equal(plot_open(&fig, path, 200, 200, 1, 1, &err), 0);
    double x[1] = {1}, y[1] = {-1};
    PlotSeries s = {"neg", x, y, 1};
    PlotLineChart c = {.series = &s, .n_series = 1, .log_y = 1};
    assert_int_equal(plot_line_chart(fig, &c, &err), 0);
    assert_int_equal(plot_close(fig, &err), 0);
    Image im = read_png(path);
    assert_int_equal(im.width, 200);
    free(im.rgb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_chart_png_puts_curves_where_the_data_says),
        cmocka_unit_test(test_log_y_axis),
        cmocka_unit_test(test_log_x_axis),
        cmocka_unit_test(test_bar_chart),
        cmocka_unit_test(test_heatmap_cells),
        cmocka_unit_test(test_scatter),
        cmocka_unit_test(test_svg_and_pdf),
        cmocka_unit_test(test_atomic_and_errors),
    };
    return cmocka_run_group_tests(tests, setup, temp_dir_teardown);
}
