/* canvas.c - the drawing functions shared by both back ends, and the memory back end. */
#include "canvas.h"

#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int canvas_init_locale(void) {
    setlocale(LC_ALL, "");
    const char *cs = nl_langinfo(CODESET);
    if (cs && (!strcasecmp(cs, "UTF-8") || !strcasecmp(cs, "utf8"))) return 0;
    if (setlocale(LC_CTYPE, "C.UTF-8") || setlocale(LC_CTYPE, "C.utf8") ||
        setlocale(LC_CTYPE, "en_US.UTF-8"))
        return 0;
    return -1;
}

int utf8_decode(const char *s, size_t len, int *cp) {
    const unsigned char *u = (const unsigned char *)s;
    if (len == 0) {
        *cp = -1;
        return 1;
    }
    unsigned c = u[0];
    int n;
    unsigned v;
    if (c < 0x80) {
        *cp = (int)c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        n = 2, v = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, v = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4, v = c & 0x07;
    } else {
        *cp = -1;
        return 1;
    }
    if ((size_t)n > len) {
        *cp = -1;
        return 1;
    }
    for (int i = 1; i < n; i++) {
        if ((u[i] & 0xC0) != 0x80) {
            *cp = -1;
            return 1;
        }
        v = (v << 6) | (u[i] & 0x3F);
    }
    /* overlong forms, surrogates and values past U+10FFFF are invalid */
    static const unsigned min_of_len[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min_of_len[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = -1;
        return 1;
    }
    *cp = (int)v;
    return n;
}

int utf8_encode(int cp, char out[4]) {
    if (cp < 0) return 0;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp <= 0x10FFFF) {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        return 4;
    }
    return 0;
}

/* Width of one code point as drawn: 0 for a combining mark, 1 or 2, and -1 for what
 * cannot be shown (drawn as '?', width 1). */
static int char_width(int cp) {
    if (cp < 0) return -1;
    if (cp < 0x20 || cp == 0x7F) return -1;
    if (cp < 0x7F) return 1;
    int w = wcwidth((wchar_t)cp);
    return w > 2 ? -1 : w;
}

int utf8_display_width(const char *s) {
    size_t len = strlen(s);
    int width = 0, have_base = 0;
    for (size_t i = 0; i < len;) {
        int cp;
        i += (size_t)utf8_decode(s + i, len - i, &cp);
        int w = char_width(cp);
        if (w == 0 && !have_base) w = 1;  /* a lone mark gets a dotted circle */
        if (w < 0) w = 1;
        width += w;
        have_base = 1;
    }
    return width;
}

int canvas_text(Canvas *c, int row, int col, int max_cols, CanvasStyle style, const char *s) {
    if (!s || row < 0 || row >= c->rows || col >= c->cols) return 0;
    int limit = c->cols - col;
    if (max_cols >= 0 && max_cols < limit) limit = max_cols;
    if (col < 0 || limit <= 0) return 0;
    size_t len = strlen(s);
    int used = 0;
    for (size_t i = 0; i < len;) {
        wchar_t cell[CANVAS_CELL_CHARS];
        int n = 0, cp;
        i += (size_t)utf8_decode(s + i, len - i, &cp);
        int w = char_width(cp);
        if (w < 0) {
            cp = '?';
            w = 1;
        } else if (w == 0) { /* a mark with nothing before it: on a dotted circle */
            cell[n++] = 0x25CC;
            w = 1;
        }
        cell[n++] = (wchar_t)cp;
        /* combining marks join this cell */
        while (i < len) {
            int mark;
            int k = utf8_decode(s + i, len - i, &mark);
            if (char_width(mark) != 0) break;
            i += (size_t)k;
            if (n < CANVAS_CELL_CHARS) cell[n++] = (wchar_t)mark;
        }
        if (used + w > limit) {
            /* a wide character that does not fit: pad the last column */
            if (used < limit) canvas_fill(c, row, col + used, limit - used, style), used = limit;
            break;
        }
        c->ops->put_cell(c, row, col + used, cell, n, w, style);
        used += w;
    }
    return used;
}

int canvas_printf(Canvas *c, int row, int col, int max_cols, CanvasStyle style, const char *fmt,
                  ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return canvas_text(c, row, col, max_cols, style, buf);
}

void canvas_fill(Canvas *c, int row, int col, int n, CanvasStyle style) {
    if (row < 0 || row >= c->rows) return;
    if (col < 0) n += col, col = 0;
    if (col + n > c->cols) n = c->cols - col;
    wchar_t blank = L' ';
    for (int i = 0; i < n; i++) c->ops->put_cell(c, row, col + i, &blank, 1, 1, style);
}

void canvas_destroy(Canvas *c) {
    if (c) c->ops->destroy(c);
}
void canvas_clear(Canvas *c) { c->ops->clear(c); }
void canvas_present(Canvas *c) { c->ops->present(c); }

/* --- the memory back end ---------------------------------------------------------- */

typedef struct {
    wchar_t chars[CANVAS_CELL_CHARS];
    unsigned char n;        /* code points in chars; 0: the right half of a wide cell */
    unsigned char style;
} MemCell;

typedef struct {
    MemCell *cells;         /* (rows, cols) */
} MemGrid;

static void mem_clear(Canvas *c) {
    MemGrid *g = c->impl;
    for (int i = 0; i < c->rows * c->cols; i++) {
        g->cells[i].chars[0] = L' ';
        g->cells[i].n = 1;
        g->cells[i].style = STYLE_NORMAL;
    }
}

static void mem_put_cell(Canvas *c, int row, int col, const wchar_t *chars, int n, int width,
                         CanvasStyle style) {
    MemGrid *g = c->impl;
    if (row < 0 || row >= c->rows || col < 0 || col >= c->cols) return;
    MemCell *cell = &g->cells[row * c->cols + col];
    /* overwriting half of a wide character blanks its other half */
    if (cell->n == 0 && col > 0) {
        MemCell *left = cell - 1;
        left->chars[0] = L' ';
        left->n = 1;
    }
    if (col + 1 < c->cols && cell[1].n == 0 && width == 1) {
        cell[1].chars[0] = L' ';
        cell[1].n = 1;
    }
    if (n > CANVAS_CELL_CHARS) n = CANVAS_CELL_CHARS;
    memcpy(cell->chars, chars, (size_t)n * sizeof(wchar_t));
    cell->n = (unsigned char)n;
    cell->style = (unsigned char)style;
    if (width == 2 && col + 1 < c->cols) {
        if (col + 2 < c->cols && cell[2].n == 0) {
            cell[2].chars[0] = L' ';
            cell[2].n = 1;
        }
        cell[1].n = 0;
        cell[1].style = (unsigned char)style;
    }
}

static void mem_present(Canvas *c) { (void)c; }

static void mem_destroy(Canvas *c) {
    MemGrid *g = c->impl;
    free(g->cells);
    free(g);
    free(c);
}

static const CanvasOps memory_ops = {mem_clear, mem_put_cell, mem_present, mem_destroy};

Canvas *canvas_memory_new(int rows, int cols) {
    Canvas *c = calloc(1, sizeof *c);
    MemGrid *g = calloc(1, sizeof *g);
    if (rows < 1) rows = 1;
    if (cols < 1) cols = 1;
    MemCell *cells = calloc((size_t)rows * (size_t)cols, sizeof *cells);
    if (!c || !g || !cells) {
        free(c), free(g), free(cells);
        return NULL;
    }
    g->cells = cells;
    c->ops = &memory_ops;
    c->rows = rows;
    c->cols = cols;
    c->impl = g;
    mem_clear(c);
    return c;
}

void canvas_memory_resize(Canvas *c, int rows, int cols) {
    MemGrid *g = c->impl;
    if (rows < 1) rows = 1;
    if (cols < 1) cols = 1;
    MemCell *cells = calloc((size_t)rows * (size_t)cols, sizeof *cells);
    if (!cells) return;  /* keep the old size */
    free(g->cells);
    g->cells = cells;
    c->rows = rows;
    c->cols = cols;
    mem_clear(c);
}

char *canvas_memory_row(const Canvas *c, int row) {
    const MemGrid *g = c->impl;
    size_t cap = (size_t)c->cols * CANVAS_CELL_CHARS * 4 + 2, n = 0, keep = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    if (row < 0 || row >= c->rows) {
        out[0] = 0;
        return out;
    }
    for (int x = 0; x < c->cols; x++) {
        const MemCell *cell = &g->cells[row * c->cols + x];
        for (int i = 0; i < cell->n; i++) n += (size_t)utf8_encode((int)cell->chars[i], out + n);
        if (!(cell->n == 1 && cell->chars[0] == L' ')) keep = n;
    }
    out[keep] = 0;
    return out;
}

char *canvas_memory_text(const Canvas *c) {
    size_t cap = 1, n = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    out[0] = 0;
    for (int y = 0; y < c->rows; y++) {
        char *line = canvas_memory_row(c, y);
        if (!line) continue;
        size_t len = strlen(line);
        char *grown = realloc(out, cap + len + 1);
        if (!grown) {
            free(line);
            break;
        }
        out = grown;
        cap += len + 1;
        memcpy(out + n, line, len);
        n += len;
        out[n++] = '\n';
        out[n] = 0;
        free(line);
    }
    return out;
}

CanvasStyle canvas_memory_style(const Canvas *c, int row, int col) {
    const MemGrid *g = c->impl;
    if (row < 0 || row >= c->rows || col < 0 || col >= c->cols) return STYLE_NORMAL;
    return (CanvasStyle)g->cells[row * c->cols + col].style;
}
