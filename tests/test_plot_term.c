/* The terminal renderer: exact line widths, dots where the data puts them, colours. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../plot/plot.h"

/* Display columns of a line: UTF-8 code points, ANSI SGR sequences not counted. */
static int columns(const char *s) {
    int n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == 0x1b) {
            while (*p && *p != 'm') p++;
            if (!*p) break;
            continue;
        }
        n += (*p & 0xC0) != 0x80;
    }
    return n;
}

/* The code point of the UTF-8 character starting at column col (no SGR in s). */
static unsigned codepoint_at(const char *s, int col) {
    const unsigned char *p = (const unsigned char *)s;
    for (int c = 0; *p; c++) {
        int len = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : 4;
        if (c == col) {
            if (len == 1) return *p;
            unsigned cp = *p & (0xFF >> (len + 1));
            for (int k = 1; k < len; k++) cp = (cp << 6) | (p[k] & 0x3F);
            return cp;
        }
        p += len;
    }
    return 0;
}

/* y = 0.5 on [0, 1] over 9 rows (36 dot rows): dot row round(0.5 * 35) = 18, the third
 * dot row of cell row 4: both columns' bits 0x04 | 0x20 -> U+2824 in every cell. */
static void test_horizontal_line_lands_on_its_row(void **state) {
    (void)state;
    double x[2] = {0, 1}, y[2] = {0.5, 0.5};
    PlotSeries s = {NULL, x, y, 2};
    PlotLineChart c = {.title = "flat", .series = &s, .n_series = 1, .x_min = 0, .x_max = 1, .y_min = 0, .y_max = 1};
    PlotText t;
    BpError err = {{0}};
    assert_int_equal(plot_term_lines(&c, 40, 12, 0, &t, &err), 0);
    assert_int_equal(t.n_lines, 12);
    for (int i = 0; i < t.n_lines; i++) assert_int_equal(columns(t.lines[i]), 40);
    assert_memory_equal(t.lines[0], "flat", 4);
    for (int r = 0; r < 9; r++)
        for (int col = 9; col < 40; col++) {
            unsigned cp = codepoint_at(t.lines[1 + r], col);
            if (r == 4) assert_int_equal(cp, 0x2824);
            else assert_int_equal(cp, ' ');
        }
    /* y ticks: the top and bottom rows carry the range ends */
    assert_non_null(strstr(t.lines[1], "1"));
    assert_non_null(strstr(t.lines[9], "0"));
    assert_non_null(strstr(t.lines[10], "└"));
    plot_text_free(&t);
    assert_null(t.lines);
}

/* A rising line from the bottom left to the top right corner of the dot canvas. */
static void test_diagonal_and_legend_and_colour(void **state) {
    (void)state;
    double x[2] = {0, 1}, y[2] = {0, 1}, y2[2] = {1, 1};
    PlotSeries s[2] = {{"rising", x, y, 2}, {"flat", x, y2, 2}};
    PlotLineChart c = {.series = s, .n_series = 2, .x_min = 0, .x_max = 1, .y_min = 0, .y_max = 1};
    PlotText t;
    BpError err = {{0}};
    assert_int_equal(plot_term_lines(&c, 30, 10, 0, &t, &err), 0);
    /* 10 lines: title, 5 plot rows, axis, x range, 2 legend lines */
    assert_int_equal(t.n_lines, 10);
    int rows = 5;
    /* bottom left dot (x 0, y 0): cell (0, rows-1), bit of dot (0, 3) = 0x40 */
    unsigned bl = codepoint_at(t.lines[rows], 9), tr = codepoint_at(t.lines[1], 29);
    assert_true(bl >= 0x2800 && ((bl - 0x2800) & 0x40));
    /* top right dot: cell (20, 0), dot (1, 0) = 0x08 */
    assert_true(tr >= 0x2800 && ((tr - 0x2800) & 0x08));
    assert_non_null(strstr(t.lines[8], "rising"));
    assert_non_null(strstr(t.lines[9], "flat"));
    plot_text_free(&t);

    assert_int_equal(plot_term_lines(&c, 30, 10, 1, &t, &err), 0);
    int blue = 0, yellow = 0;
    for (int i = 0; i < t.n_lines; i++) {
        assert_int_equal(columns(t.lines[i]), 30);
        blue |= strstr(t.lines[i], "\x1b[34m") != NULL;
        yellow |= strstr(t.lines[i], "\x1b[33m") != NULL;
    }
    assert_true(blue && yellow);
    plot_text_free(&t);
}

static void test_log_axis_and_errors(void **state) {
    (void)state;
    /* log y from 1 to 100 over 3 rows (12 dot rows): y = 10 -> dot row round(5.5) = 6,
     * the third dot row of the second cell row. */
    double x[2] = {0, 1}, y[2] = {10, 10};
    PlotSeries s = {NULL, x, y, 2};
    PlotLineChart c = {.series = &s, .n_series = 1, .log_y = 1, .x_min = 0, .x_max = 1, .y_min = 1, .y_max = 100};
    PlotText t;
    BpError err = {{0}};
    assert_int_equal(plot_term_lines(&c, 24, 6, 0, &t, &err), 0);
    assert_int_equal(codepoint_at(t.lines[2], 12), 0x2824);
    assert_int_equal(codepoint_at(t.lines[1], 12), ' ');
    assert_non_null(strstr(t.lines[1], "100"));
    plot_text_free(&t);

    /* log x from 1 to 100 over 30 plot cells: x in [1, 10] fills the left half only */
    double hx[2] = {1, 10}, hy[2] = {0.5, 0.5};
    PlotSeries h = {NULL, hx, hy, 2};
    PlotLineChart lx = {.series = &h, .n_series = 1, .log_x = 1, .x_min = 1, .x_max = 100, .y_min = 0, .y_max = 1};
    assert_int_equal(plot_term_lines(&lx, 39, 6, 0, &t, &err), 0);
    int first = -1, last = -1;
    for (int r = 1; r <= 3; r++)
        for (int col = 9; col < 39; col++)
            if (codepoint_at(t.lines[r], col) != ' ') {
                if (first < 0 || col < first) first = col;
                if (col > last) last = col;
            }
    assert_int_equal(first, 9);
    assert_true(last >= 9 + 14 && last <= 9 + 15);
    assert_non_null(strstr(t.lines[5], "100"));
    plot_text_free(&t);

    assert_int_equal(plot_term_lines(&c, 10, 10, 0, &t, &err), -1);
    assert_non_null(strstr(err.msg, "out of range"));
    c.y_min = -1;
    assert_int_equal(plot_term_lines(&c, 30, 10, 0, &t, &err), -1);
    assert_non_null(strstr(err.msg, "log"));
    /* no drawable point: an empty chart that says so */
    PlotLineChart empty = {.title = "nothing"};
    assert_int_equal(plot_term_lines(&empty, 30, 8, 0, &t, &err), 0);
    assert_non_null(strstr(t.lines[t.n_lines - 1], "no data"));
    plot_text_free(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_horizontal_line_lands_on_its_row),
        cmocka_unit_test(test_diagonal_and_legend_and_colour),
        cmocka_unit_test(test_log_axis_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
