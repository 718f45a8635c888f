/* canvas_curses.c - the terminal back end of the canvas (ncursesw).
 *
 * Styles become colour pairs when the terminal has colours (and NO_COLOR is unset),
 * otherwise plain attributes: promoted words bold, suppressed words underlined, the
 * cursor row and the header reversed. Scores are always printed with their sign, so
 * nothing is told by colour alone. */
#include "canvas.h"

#include <ncursesw/curses.h>
#include <stdlib.h>

typedef struct {
    attr_t attr[STYLE_COUNT];
    short pair[STYLE_COUNT];
} CursesStyles;

static void curses_clear(Canvas *c) {
    (void)c;
    erase();
}

static void curses_put_cell(Canvas *c, int row, int col, const wchar_t *chars, int n, int width,
                            CanvasStyle style) {
    CursesStyles *st = c->impl;
    (void)width;
    wchar_t w[CCHARW_MAX + 1];
    if (n > CCHARW_MAX) n = CCHARW_MAX;
    for (int i = 0; i < n; i++) w[i] = chars[i];
    w[n] = 0;
    cchar_t cc;
    if (setcchar(&cc, w, st->attr[style], st->pair[style], NULL) != OK) {
        w[0] = L'?';
        w[1] = 0;
        setcchar(&cc, w, st->attr[style], st->pair[style], NULL);
    }
    /* the bottom-right cell: writing it would scroll on some terminals, so insert */
    if (row == LINES - 1 && col == COLS - 1)
        mvins_wch(row, col, &cc);
    else
        mvadd_wch(row, col, &cc);
}

static void curses_present(Canvas *c) {
    (void)c;
    refresh();
}

static void curses_destroy(Canvas *c) {
    free(c->impl);
    free(c);
}

static const CanvasOps curses_ops = {curses_clear, curses_put_cell, curses_present, curses_destroy};

Canvas *canvas_curses_new(void) {
    Canvas *c = calloc(1, sizeof *c);
    CursesStyles *st = calloc(1, sizeof *st);
    if (!c || !st) {
        free(c), free(st);
        return NULL;
    }
    const char *no_color = getenv("NO_COLOR");
    int colour = has_colors() && !(no_color && *no_color);
    if (colour && start_color() == OK) {
        use_default_colors();
        /* pair, foreground, background (-1: the terminal's default) */
        static const short fg_bg[STYLE_COUNT][2] = {
            [STYLE_NORMAL] = {-1, -1},          [STYLE_HEADER] = {COLOR_BLACK, COLOR_CYAN},
            [STYLE_STATUS] = {COLOR_BLACK, COLOR_WHITE}, [STYLE_TITLE] = {COLOR_YELLOW, -1},
            [STYLE_SELECTED] = {COLOR_BLACK, COLOR_YELLOW}, [STYLE_PROMOTED] = {COLOR_GREEN, -1},
            [STYLE_SUPPRESSED] = {COLOR_RED, -1}, [STYLE_DIM] = {COLOR_BLUE, -1},
            [STYLE_ERROR] = {COLOR_WHITE, COLOR_RED}, [STYLE_INPUT] = {COLOR_WHITE, COLOR_BLUE},
        };
        for (int s = 1; s < STYLE_COUNT; s++) {
            init_pair((short)s, fg_bg[s][0], fg_bg[s][1]);
            st->pair[s] = (short)s;
        }
        st->attr[STYLE_TITLE] = A_BOLD;
        st->attr[STYLE_PROMOTED] = A_BOLD;
    } else {
        st->attr[STYLE_HEADER] = A_REVERSE;
        st->attr[STYLE_STATUS] = A_REVERSE;
        st->attr[STYLE_TITLE] = A_BOLD;
        st->attr[STYLE_SELECTED] = A_REVERSE;
        st->attr[STYLE_PROMOTED] = A_BOLD;
        st->attr[STYLE_SUPPRESSED] = A_UNDERLINE;
        st->attr[STYLE_DIM] = A_DIM;
        st->attr[STYLE_ERROR] = A_BOLD | A_REVERSE;
        st->attr[STYLE_INPUT] = A_UNDERLINE;
    }
    c->ops = &curses_ops;
    c->impl = st;
    c->rows = LINES;
    c->cols = COLS;
    return c;
}

void canvas_curses_resize(Canvas *c) {
    c->rows = LINES;
    c->cols = COLS;
}
