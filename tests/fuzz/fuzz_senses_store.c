/* Opening a sense database (senses/store.h store_open). The input is either the database
 * file itself, or "SQL" and a newline followed by SQL run (with sqlite3, as anyone can)
 * on a copy of the fixture's good database (fixture.h): the second form reaches what
 * byte flips rarely do, a well-formed database with hostile contents (meta values out
 * of range, blobs of the wrong size, edits naming senses that do not exist). A database
 * that opens is then read the way the commands and the browser read it (vocabulary,
 * senses, top words, embeddings, nearest words, edits) and edited once: whatever it
 * holds, every call either works or fails with a one-line message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "../../common/fileio.h"
#include "../../senses/edits.h"
#include "../../senses/store.h"
#include "fixture.h"
#include "fuzz.h"

static void use(SenseStore *s) {
    BpError err = {0};
    const StoreInfo *info = store_info(s);
    int v = store_vocab_size(s), k = info->config.num_senses, d = info->config.n_embd;
    for (int id = -1; id <= v && id < 64; id++) {
        size_t len;
        store_token_text(s, id);
        store_token_string(s, id);
        const char *bytes = store_token_bytes(s, id, &len);
        if (bytes) store_lookup_bytes(s, bytes, len);
    }
    int ids[8];
    store_prefix_search(s, "t", ids, 8);
    store_closest_tokens(s, "the", ids, 8);
    StoreWord w;
    if (store_resolve_word(s, "the", &w, &err) != 0) fuzz_check_error(&err);
    if (v < 1 || k < 1 || d < 1) return;
    SenseInfo si;
    if (store_sense_info(s, 0, 0, &si, &err) != 0) fuzz_check_error(&err);
    float *vec = malloc(sizeof(float) * (size_t)d);
    WordScore top[5], bottom[5];
    if (store_sense_vector(s, 0, 0, STORE_IN_FORCE, vec, &err) != 0) fuzz_check_error(&err);
    if (store_sense_words(s, 0, 0, 5, top, bottom, &err) < 0) fuzz_check_error(&err);
    if (!store_embeddings(s, &err)) fuzz_check_error(&err);
    float *query = calloc((size_t)k * (size_t)d, sizeof(float));
    query[0] = 1.0f;
    if (store_nearest(s, query, 0, -1, 5, top, &err) < 0) fuzz_check_error(&err);
    free(query);
    free(vec);
    EditRecord *records = NULL;
    int n_records = 0;
    if (store_edit_list(s, &records, &n_records, &err) != 0) fuzz_check_error(&err);
    free(records);
    SenseEdits edits;
    if (store_sense_edits(s, &edits, &err) == 0) sense_edits_free(&edits);
    else fuzz_check_error(&err);
    EditRequest req = {.kind = EDIT_SCALE, .token = 0, .sense = 0, .value = 0.5f};
    EditPreview p;
    if (store_edit_preview(s, &req, &p, &err) == 0) store_edit_preview_free(&p);
    else fuzz_check_error(&err);
    int64_t id;
    if (store_edit_commit(s, &req, &id, &err) == 0) {
        if (store_edit_undo(s, id, NULL, &err) != 0) fuzz_check_error(&err);
    } else {
        fuzz_check_error(&err);
    }
}

/* The fixture's database with the SQL applied (errors in the SQL are the input's). */
static const char *hostile_copy(const uint8_t *sql, size_t size) {
    static char path[600];
    snprintf(path, sizeof path, "%s/hostile.db", fuzz_scratch_dir());
    BpError err = {0};
    fuzz_remove_sqlite_side_files(path);
    if (copy_file_atomic(fuzz_fixture()->db, path, &err) != 0) fixture_die("copy", &err);
    char *text = malloc(size + 1);
    if (!text) abort();
    memcpy(text, sql, size);
    text[size] = '\0';
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) == SQLITE_OK) sqlite3_exec(db, text, NULL, NULL, NULL);
    sqlite3_close(db);
    free(text);
    return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path;
    if (size >= 4 && !memcmp(data, "SQL\n", 4)) {
        path = hostile_copy(data + 4, size - 4);
    } else {
        path = fuzz_write_file(0, "senses.db", data, size);
        fuzz_remove_sqlite_side_files(path);
    }
    SenseStore *s;
    BpError err = {0};
    if (store_open(&s, path, STORE_READ_WRITE, &err) == 0) {
        store_set_busy_timeout(s, 0);
        use(s);
        store_close(s);
    } else {
        fuzz_check_error(&err);
    }
    fuzz_remove_sqlite_side_files(path);
    return 0;
}
