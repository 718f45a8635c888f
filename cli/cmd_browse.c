/* cmd_browse.c - `backpack browse`: the sense browser on a terminal, or scripted
 * (tui/run.h says what the scripted mode writes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "../tui/app.h"
#include "../tui/run.h"

static const char browse_synopsis[] =
    "usage: backpack browse --db FILE [--model DIR [--layers PLAN]]\n"
    "       backpack browse --db FILE [--model DIR] --keys KEYS|@FILE --screen-out FILE|-\n"
    "                       [--size COLSxROWS] [--each-key] [--timing FILE]\n"
    "The sense browser: search words (/), read their senses, explain and edit predictions\n"
    "(with --model; the model the database was exported from); when DIR is a training run\n"
    "(with metrics.jsonl), R draws its loss curves. ? inside shows every key.\n"
    "Scripted keys: text types itself; <Enter> <Esc> <Up> <Down> <Left> <Right> <PgUp>\n"
    "<PgDn> <Home> <End> <BS> <Del> <Tab> <S-Tab> <Space> <lt> <C-x> <Resize:COLSxROWS>.\n";

int cmd_browse(int argc, char **argv) {
    BpError err = {0};
    const char *db = NULL, *model = NULL, *size = NULL, *layers = NULL;
    TuiScript o = {.rows = 30, .cols = 100};
    const ArgOption opts[] = {
        {"--db", ARG_STRING, &db, .meta = "FILE", .help = "the sense database (backpack export)"},
        {"--model", ARG_STRING, &model, .meta = "DIR", .help = "the model, for the prompt and edit screens (and R: a run's loss curves)"},
        {"--layers", ARG_STRING, &layers, .meta = "PLAN", .help = "the prompt screen runs the model's blocks as PLAN (docs/layer-plans.md)"},
        {"--keys", ARG_STRING, &o.keys, .meta = "KEYS|@FILE", .help = "scripted mode: these keys instead of the terminal"},
        {"--screen-out", ARG_STRING, &o.screen_out, .meta = "FILE|-", .help = "scripted mode: the screen as text"},
        {"--size", ARG_STRING, &size, .meta = "COLSxROWS", .help = "scripted mode: the screen size (100x30)"},
        {"--each-key", ARG_FLAG, &o.each_key, .help = "scripted mode: the screen after every key"},
        {"--timing", ARG_STRING, &o.timing, .meta = "FILE", .help = "scripted mode: one line per key: N NAME REDRAW_MS TOTAL_MS"},
        {0}};
    const ArgSpec spec = {"browse", browse_synopsis, opts, .given = NULL};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    char tail;
    if (size && (sscanf(size, "%dx%d%c", &o.cols, &o.rows, &tail) != 2 || o.cols < 1 || o.rows < 1 ||
                 o.cols > 1000 || o.rows > 1000))
        return cli_usage_error("browse: --size wants COLSxROWS, e.g. 100x30");
    if (!db) return cli_usage_error("browse: --db FILE is required (backpack browse --help)");
    if (layers && !model) return cli_usage_error("browse: --layers PLAN needs --model DIR");
    if (!o.keys != !o.screen_out)
        return cli_usage_error("browse: the scripted mode needs both --keys and --screen-out");
    if ((o.each_key || o.timing) && !o.keys)
        return cli_usage_error("browse: --each-key and --timing belong to the scripted mode (--keys)");
    canvas_init_locale();
    App *app = calloc(1, sizeof *app);
    if (!app) return cli_error("out of memory");
    /* the database and model first: their errors matter more than the terminal's */
    if (app_open(app, db, model, &err) != 0) {
        free(app);
        return cli_error(err.msg);
    }
    if (layers && runs_set_layers(&app->runs, layers, &err) != 0) {
        app_close(app);
        free(app);
        bp_error_prefix(&err, "--layers");
        return cli_usage_error(err.msg);
    }
    if (!o.keys && (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))) {
        app_close(app);
        free(app);
        return cli_error("browse: stdin and stdout must be a terminal (or use the scripted mode: "
                         "--keys KEYS --screen-out FILE)");
    }
    int rc = o.keys ? tui_run_scripted(app, &o, &err) : tui_run_terminal(app, &err);
    app_close(app);
    free(app);
    if (rc != 0) return cli_error(err.msg);
    return 0;
}
