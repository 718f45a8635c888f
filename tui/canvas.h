/* canvas.h - where the browser's screens draw: a grid of character cells with a style,
 * behind two back ends.
 *
 *   - the memory back end keeps the grid in memory and can write it out as text; the
 *     scripted mode (--keys/--screen-out) and the cmocka tests use it;
 *   - the ncurses back end (canvas_curses.c) draws on the terminal, with colours when
 *     the terminal has them and bold/underline/reverse when it does not.
 *
 * Screens only call the canvas_* functions below, so what a test reads from the memory
 * grid is what a person sees. Text is UTF-8; each character takes wcwidth() columns
 * (CJK takes two), combining marks join the cell before them, and anything that
 * cannot be shown is drawn as '?'. Drawing is clipped to the grid and to max_cols.
 */
#ifndef BP_TUI_CANVAS_H
#define BP_TUI_CANVAS_H

#include <stdarg.h>
#include <stddef.h>
#include <wchar.h>

typedef enum {
    STYLE_NORMAL = 0,
    STYLE_HEADER,      /* the top line: program, model, database */
    STYLE_STATUS,      /* the bottom line: position, mode, messages */
    STYLE_TITLE,       /* section titles inside a screen */
    STYLE_SELECTED,    /* the cursor row */
    STYLE_PROMOTED,    /* a word a sense pushes up (positive score) */
    STYLE_SUPPRESSED,  /* a word a sense pushes down (negative score) */
    STYLE_DIM,         /* secondary information */
    STYLE_ERROR,       /* a message that something failed */
    STYLE_INPUT,       /* a text field being edited */
    STYLE_COUNT
} CanvasStyle;

/* Up to this many code points share a cell: a base character and combining marks. */
#define CANVAS_CELL_CHARS 4

typedef struct Canvas Canvas;

typedef struct {
    /* Blank the whole grid (style normal). */
    void (*clear)(Canvas *c);
    /* One cell: chars[0..n) (n >= 1; a base character and combining marks) of display
     * width `width` (1 or 2) at (row, col); the caller has clipped it to the grid. */
    void (*put_cell)(Canvas *c, int row, int col, const wchar_t *chars, int n, int width,
                     CanvasStyle style);
    /* Show what was drawn (the terminal back end refreshes; memory does nothing). */
    void (*present)(Canvas *c);
    void (*destroy)(Canvas *c);
} CanvasOps;

struct Canvas {
    const CanvasOps *ops;
    int rows, cols;
    void *impl;
};

/* The in-memory grid. */
Canvas *canvas_memory_new(int rows, int cols);
/* Resizes the grid (blanking it): the scripted mode's <Resize:COLSxROWS> key. */
void canvas_memory_resize(Canvas *c, int rows, int cols);
/* The grid as UTF-8 text, one line per row, trailing blanks removed, each line ending
 * in '\n'. Returns a malloc'ed string. */
char *canvas_memory_text(const Canvas *c);
/* One row as UTF-8 text (trailing blanks removed), malloc'ed. */
char *canvas_memory_row(const Canvas *c, int row);
/* The style of a cell (for tests of colouring). */
CanvasStyle canvas_memory_style(const Canvas *c, int row, int col);

/* The terminal (canvas_curses.c): initscr and friends must already have run. */
Canvas *canvas_curses_new(void);
/* Takes the terminal's current size (after KEY_RESIZE). */
void canvas_curses_resize(Canvas *c);

void canvas_destroy(Canvas *c);
void canvas_clear(Canvas *c);
void canvas_present(Canvas *c);

/* Draws UTF-8 text at (row, col), at most max_cols columns (-1: to the right edge).
 * Returns the number of columns drawn. */
int canvas_text(Canvas *c, int row, int col, int max_cols, CanvasStyle style, const char *utf8);
int canvas_printf(Canvas *c, int row, int col, int max_cols, CanvasStyle style, const char *fmt,
                  ...) __attribute__((format(printf, 6, 7)));
/* Fills columns [col, col + n) of a row with blanks in a style (bars, selections). */
void canvas_fill(Canvas *c, int row, int col, int n, CanvasStyle style);

/* Makes the character type UTF-8 (the user's locale when it is UTF-8, else C.UTF-8),
 * so that wcwidth and ncursesw know the width of every character. Returns 0, or -1
 * when no UTF-8 locale exists (then non-ASCII text is drawn as '?'). */
int canvas_init_locale(void);

/* Display width of UTF-8 text in columns (as canvas_text would draw it, unclipped). */
int utf8_display_width(const char *utf8);
/* Decodes one UTF-8 character from s[0..len); returns its byte length (>= 1) and the
 * code point in *cp, or 1 and -1 for an invalid byte. */
int utf8_decode(const char *s, size_t len, int *cp);
/* Encodes a code point; returns the byte count (1..4), or 0 if out of range. */
int utf8_encode(int cp, char out[4]);

#endif
