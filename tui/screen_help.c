/* screen_help.c - the help screen, built from the key tables themselves. */
#include "screen_help.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *help_init(Ui *ui, BpError *err) {
    (void)ui;
    return ui_state_alloc(sizeof(HelpScreen), err);
}

static int help_enter(void *self, Ui *ui, const Place *at) {
    (void)ui;
    (void)at;
    HelpScreen *hs = self;
    hs->list.cursor = hs->list.top = 0;
    return 0;
}

/* Help lines: a title per screen, then "  keys   what they do". */
typedef struct {
    const ScreenClass *screen;  /* a title line, or NULL */
    const char *title;
    const KeyBinding *binding;
} HelpLine;

static int help_lines(const Ui *ui, HelpLine *out, int max) {
    int n = 0;
#define ADD(s, t, b) do { if (n < max) out[n] = (HelpLine){s, t, b}; n++; } while (0)
    for (int s = 0; s < SCREEN_COUNT; s++) {
        const ScreenClass *sc = ui->screens[s];
        if (sc == &help_screen) continue;
        ADD(sc, sc->name, NULL);
        for (const KeyBinding *b = sc->keys; b && b->action; b++) ADD(NULL, NULL, b);
    }
    ADD(NULL, "everywhere", NULL);
    for (const KeyBinding *b = ui->global_keys; b->action; b++) ADD(NULL, NULL, b);
    ADD(NULL, "lists", NULL);
    static const KeyBinding list_help[] = {
        {{0}, "j k Down Up", "move", NULL},
        {{0}, "PgDn PgUp Space", "a page", NULL},
        {{0}, "g G Home End", "first, last", NULL},
        {{0}, NULL, NULL, NULL},
    };
    for (const KeyBinding *b = list_help; b->label; b++) ADD(NULL, NULL, b);
#undef ADD
    return n;
}

static void help_draw(void *self, Ui *ui, Canvas *c) {
    HelpScreen *hs = self;
    HelpLine lines[256];
    int n = help_lines(ui, lines, 256);
    if (n > 256) n = 256;
    int row = ui_top_row(c), bottom = ui_bottom_row(c);
    canvas_printf(c, row++, 1, -1, STYLE_TITLE, "Keys (on the %s screen now; ? or BS returns)",
                  ui->screens[ui->help_return]->name);
    list_set_count(&hs->list, n);
    list_scroll(&hs->list, bottom - row);
    for (int i = hs->list.top; i < n && row < bottom; i++, row++) {
        if (lines[i].title) {
            int x = canvas_text(c, row, 1, -1, STYLE_TITLE, lines[i].title);
            if (lines[i].screen) canvas_printf(c, row, 2 + x, -1, STYLE_DIM, "- %s", lines[i].screen->summary);
        } else {
            CanvasStyle st = i == hs->list.cursor ? STYLE_SELECTED : STYLE_NORMAL;
            if (st == STYLE_SELECTED) canvas_fill(c, row, 0, c->cols, st);
            canvas_text(c, row, 3, 18, st, lines[i].binding->label);
            canvas_text(c, row, 22, -1, st, lines[i].binding->help);
        }
    }
}

static void act_help_close(void *self, Ui *ui) {
    (void)self;
    ui_back(ui);
}

static const KeyBinding help_keys[] = {
    {{'?', BK_ESC, 0}, "? Esc", "close the help", act_help_close},
    {{0}, NULL, NULL, NULL},
};

static ListView *help_list(void *self) { return &((HelpScreen *)self)->list; }

const ScreenClass help_screen = {
    .name = "help",
    .summary = "keys",
    .keys = help_keys,
    .init = help_init,
    .free = free,
    .enter = help_enter,
    .draw = help_draw,
    .list = help_list,
};
