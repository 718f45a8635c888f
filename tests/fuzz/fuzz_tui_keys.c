/* The browser's key scripts (tui/run.h scripted mode, tui/keys.h syntax): the input is
 * the script, played on the fixture's model and database (fixture.h), so every screen,
 * prompt and edit is reachable. Each input gets a fresh copy of the database: edits made
 * by one input do not leak into the next. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/fileio.h"
#include "../../tui/app.h"
#include "../../tui/canvas.h"
#include "../../tui/run.h"
#include "fixture.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char work_db[600];
    const FuzzFixture *fx = fuzz_fixture();
    if (!work_db[0]) {
        snprintf(work_db, sizeof work_db, "%s/work.db", fuzz_scratch_dir());
        canvas_init_locale();
    }
    /* "@FILE" reads the keys from a file: that is the command line's business */
    if (size > 0 && data[0] == '@') return 0;
    char *keys = malloc(size + 1);
    if (!keys) abort();
    memcpy(keys, data, size);
    keys[size] = '\0';
    BpError err = {0};
    fuzz_remove_sqlite_side_files(work_db);
    if (copy_file_atomic(fx->db, work_db, &err) != 0) fixture_die("copy", &err);
    App *app = calloc(1, sizeof *app);
    if (!app) abort();
    if (app_open(app, work_db, fx->model_dir, &err) != 0) fixture_die("open", &err);
    TuiScript script = {.keys = keys, .screen_out = "/dev/null", .rows = 24, .cols = 80};
    if (tui_run_scripted(app, &script, &err) != 0) fuzz_check_error(&err);
    app_close(app);
    free(app);
    free(keys);
    return 0;
}
