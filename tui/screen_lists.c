/* screen_lists.c - the list of stored edits, and the help screen built from the live
 * key tables. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"

/* ---- edits ------------------------------------------------------------------------------ */

void edits_refresh(App *app) {
    EditsView *ev = &app->edits;
    free(ev->records);
    ev->records = NULL;
    ev->count = 0;
    BpError err = {0};
    if (store_edit_list(app->store, &ev->records, &ev->count, &err) != 0) {
        app_message(app, 1, "%s", err.msg);
        ev->count = 0;
    }
    list_set_count(&ev->list, ev->count);
}

void edits_draw(App *app, Canvas *c) {
    EditsView *ev = &app->edits;
    int row = app_top_row(c), bottom = app_bottom_row(c);
    int in_force = 0;
    for (int i = 0; i < ev->count; i++) in_force += !ev->records[i].undone;
    canvas_printf(c, row++, 1, -1, STYLE_TITLE, "Edits in %s: %d, %d in force", app->db_path,
                  ev->count, in_force);
    if (ev->count == 0) {
        canvas_text(c, row + 1, 2, -1, STYLE_NORMAL,
                    "No edits yet. On a word or sense, e opens the edit screen (needs --model).");
        return;
    }
    canvas_text(c, row++, 1, -1, STYLE_DIM, "   id  when              kind     word              sense  description");
    list_scroll(&ev->list, bottom - row);
    for (int i = ev->list.top; i < ev->count && row < bottom; i++, row++) {
        const EditRecord *r = &ev->records[i];
        int sel = i == ev->list.cursor;
        CanvasStyle st = sel ? STYLE_SELECTED : r->undone ? STYLE_DIM : STYLE_NORMAL;
        if (sel) canvas_fill(c, row, 0, c->cols, STYLE_SELECTED);
        char when[32] = "?", label[160], sense[16];
        time_t t = (time_t)r->created;
        struct tm tm;
        if (localtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
        if (r->sense >= 0) snprintf(sense, sizeof sense, "%d", r->sense);
        else snprintf(sense, sizeof sense, "all");
        canvas_printf(c, row, 1, 6, st, "%5lld", (long long)r->id);
        canvas_text(c, row, 7, 18, st, when);
        canvas_text(c, row, 25, 9, st, edit_kind_name(r->kind));
        canvas_text(c, row, 34, 17, st, app_word_label(app, r->token, label, sizeof label));
        canvas_text(c, row, 52, 6, st, sense);
        int x = canvas_text(c, row, 59, -1, st, r->description);
        if (r->undone) canvas_text(c, row, 60 + x, -1, st, "(undone)");
    }
}

static void act_edits_open(App *app) {
    EditsView *ev = &app->edits;
    if (ev->count == 0) return;
    const EditRecord *r = &ev->records[ev->list.cursor];
    if (r->sense >= 0) app_open_sense(app, r->token, r->sense);
    else app_open_word(app, r->token);
}

static void act_edits_undo(App *app) {
    EditsView *ev = &app->edits;
    if (ev->count == 0) return;
    if (app->db_mode == STORE_READ_ONLY) {
        app_message(app, 1, "%s is read-only", app->db_path);
        return;
    }
    const EditRecord *r = &ev->records[ev->list.cursor];
    BpError err = {0};
    int64_t id = 0;
    if (store_edit_undo(app->store, r->id, &id, &err) != 0) {
        app_message(app, 1, "%s", err.msg);
        return;
    }
    if (app->have_model) {
        if (app_reload_edits(app, &err) != 0) app_message(app, 1, "%s", err.msg);
    } else {
        app->generation++;
    }
    edits_refresh(app);
    app_message(app, 0, "undid edit #%lld", (long long)id);
}

const KeyBinding edits_keys[] = {
    {{BK_ENTER, 'l', BK_RIGHT}, "Enter l Right", "open the edited word or sense", act_edits_open},
    {{'u', 0}, "u", "undo the selected edit", act_edits_undo},
    {{0}, NULL, NULL, NULL},
};

/* ---- help ---------------------------------------------------------------------------------- */

/* Help lines: a title per screen, then "  keys   what they do". Built every draw from
 * the tables themselves. */
typedef struct {
    const char *title;
    const KeyBinding *binding;
} HelpLine;

static int help_lines(HelpLine *out, int max) {
    int n = 0;
#define ADD(t, b) do { if (n < max) out[n] = (HelpLine){t, b}; n++; } while (0)
    for (int s = 0; s < SCREEN_COUNT; s++) {
        if (s == SCREEN_HELP) continue;
        ADD(app_screens[s].name, NULL);
        for (const KeyBinding *b = app_screens[s].keys; b && b->action; b++) ADD(NULL, b);
    }
    ADD("everywhere", NULL);
    for (const KeyBinding *b = app_global_keys; b->action; b++) ADD(NULL, b);
    ADD("lists", NULL);
    static const KeyBinding list_help[] = {
        {{0}, "j k Down Up", "move", NULL},
        {{0}, "PgDn PgUp Space", "a page", NULL},
        {{0}, "g G Home End", "first, last", NULL},
        {{0}, NULL, NULL, NULL},
    };
    for (const KeyBinding *b = list_help; b->label; b++) ADD(NULL, b);
#undef ADD
    return n;
}

void help_draw(App *app, Canvas *c) {
    HelpLine lines[256];
    int n = help_lines(lines, 256);
    if (n > 256) n = 256;
    int row = app_top_row(c), bottom = app_bottom_row(c);
    canvas_printf(c, row++, 1, -1, STYLE_TITLE, "Keys (on the %s screen now; ? or BS returns)",
                  app_screens[app->help_return].name);
    list_set_count(&app->help, n);
    list_scroll(&app->help, bottom - row);
    for (int i = app->help.top; i < n && row < bottom; i++, row++) {
        if (lines[i].title) {
            const char *summary = "";
            for (int s = 0; s < SCREEN_COUNT; s++)
                if (!strcmp(app_screens[s].name, lines[i].title)) summary = app_screens[s].summary;
            int x = canvas_text(c, row, 1, -1, STYLE_TITLE, lines[i].title);
            if (*summary) canvas_printf(c, row, 2 + x, -1, STYLE_DIM, "- %s", summary);
        } else {
            CanvasStyle st = i == app->help.cursor ? STYLE_SELECTED : STYLE_NORMAL;
            if (st == STYLE_SELECTED) canvas_fill(c, row, 0, c->cols, st);
            canvas_text(c, row, 3, 18, st, lines[i].binding->label);
            canvas_text(c, row, 22, -1, st, lines[i].binding->help);
        }
    }
}

static void act_help_close(App *app) { app_back(app); }

const KeyBinding help_keys[] = {
    {{'?', BK_ESC, 0}, "? Esc", "close the help", act_help_close},
    {{0}, NULL, NULL, NULL},
};
