/* export.c - store_export: the sense network over the whole vocabulary, into SQLite.
 *
 * Cost for the small shape (V = 50264, k = 16, d = 768): the sense network is ~4.5e12
 * flops; the top/bottom words rank the scores E C(x)_l of every (x, l), a
 * (V k) x d x V product (6.2e13 flops in float). It is screened in int8 and only the
 * candidates are scored exactly (export_screen.c), chunk by chunk.
 *
 * The database is built as "<db>.tmp-<pid>" with no journal (it is thrown away on any
 * failure, so a journal would only double the 2.5 GB of writes), in one transaction,
 * left in rollback-journal mode, fsync'ed and renamed over <db> while holding <db>'s
 * exclusive lock (store_file.c): a database another backpack process has open is never
 * replaced.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "../common/hash.h"
#include "../text/tokenizer.h"
#include "store_private.h"

static const char *SCHEMA_SQL =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE tokens(id INTEGER PRIMARY KEY, token TEXT NOT NULL, text TEXT NOT NULL, bytes BLOB NOT NULL);"
    "CREATE TABLE wte(id INTEGER PRIMARY KEY, vector BLOB NOT NULL);"
    "CREATE TABLE senses(id INTEGER PRIMARY KEY, token INTEGER NOT NULL, sense INTEGER NOT NULL,"
    " norm REAL NOT NULL, top_ids BLOB NOT NULL, top_scores BLOB NOT NULL,"
    " bottom_ids BLOB NOT NULL, bottom_scores BLOB NOT NULL, vector BLOB NOT NULL);"
    "CREATE TABLE files(name TEXT PRIMARY KEY, data BLOB NOT NULL);"
    "CREATE TABLE edits(id INTEGER PRIMARY KEY, created REAL NOT NULL, kind TEXT NOT NULL,"
    " token INTEGER NOT NULL, sense INTEGER NOT NULL, description TEXT NOT NULL, undone INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE edit_changes(edit_id INTEGER NOT NULL REFERENCES edits(id), token INTEGER NOT NULL,"
    " sense INTEGER NOT NULL, weight_before REAL NOT NULL, weight_after REAL NOT NULL,"
    " vector_before BLOB NOT NULL, vector_after BLOB NOT NULL);"
    "CREATE INDEX edit_changes_by_edit ON edit_changes(edit_id);"
    "CREATE INDEX edit_changes_by_sense ON edit_changes(token, sense);"
    "CREATE TABLE edited_senses(token INTEGER NOT NULL, sense INTEGER NOT NULL, weight REAL NOT NULL,"
    " vector BLOB, PRIMARY KEY(token, sense));";

typedef struct {
    sqlite3 *db;
    const char *path;       /* for messages: the final name */
    char export_id[17];     /* meta export_id: names this export (its nearest-neighbour index) */
    IndexBuilder *index;    /* the index of the vectors written, or NULL (out of memory) */
} Out;

static int out_fail(Out *o, BpError *err, const char *what) {
    return bp_fail(err, "%s: %s while %s", o->path, sqlite3_errmsg(o->db), what);
}

static int exec(Out *o, const char *sql, BpError *err) {
    char *msg = NULL;
    if (sqlite3_exec(o->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        bp_fail(err, "%s: %s (in '%.60s')", o->path, msg ? msg : sqlite3_errmsg(o->db), sql);
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int put_meta(Out *o, sqlite3_stmt *st, const char *key, const char *value, BpError *err) {
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : out_fail(o, err, "writing meta");
}

static int write_meta(Out *o, const Backpack *m, const ExportOptions *opts, int top_n, BpError *err) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(o->db, "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)", -1, &st, NULL))
        return out_fail(o, err, "writing meta");
    const BackpackConfig *c = &m->config;
    char hash[17], buf[64];
    backpack_weights_hash(m, hash);
    struct { const char *key; long value; } ints[] = {
        {"schema_version", STORE_SCHEMA_VERSION}, {"vocab_size", c->vocab_size}, {"n_embd", c->n_embd},
        {"n_layer", c->n_layer}, {"n_head", c->n_head}, {"num_senses", c->num_senses},
        {"n_positions", c->n_positions}, {"sense_intermediate_scale", c->sense_intermediate_scale},
        {"arch", (long)c->arch}, {"top_n", top_n}, {"complete", 0},
    };
    int r = 0;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0] && !r; i++) {
        snprintf(buf, sizeof buf, "%ld", ints[i].value);
        r = put_meta(o, st, ints[i].key, buf, err);
    }
    snprintf(buf, sizeof buf, "%.3f", (double)time(NULL));
    if (!r) r = put_meta(o, st, "weights_hash", hash, err);
    if (!r) r = put_meta(o, st, "created", buf, err);
    if (!r) r = put_meta(o, st, "model_dir", opts->model_dir ? opts->model_dir : "", err);
    if (!r) r = put_meta(o, st, "export_id", o->export_id, err);
    sqlite3_finalize(st);
    return r;
}

static int write_files(Out *o, const char *tokenizer_dir, BpError *err) {
    if (!tokenizer_dir) return 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(o->db, "INSERT INTO files(name, data) VALUES (?1, ?2)", -1, &st, NULL))
        return out_fail(o, err, "writing files");
    const char *names[] = {"vocab.json", "merges.txt"};
    int r = 0;
    for (int i = 0; i < 2 && !r; i++) {
        char path[4096];
        char *data;
        size_t len;
        if (path_join(path, sizeof path, tokenizer_dir, names[i], err) || read_file(path, &data, &len, err)) {
            r = -1;
            break;
        }
        sqlite3_bind_text(st, 1, names[i], -1, SQLITE_STATIC);
        sqlite3_bind_blob64(st, 2, data, len, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE) r = out_fail(o, err, "writing files");
        sqlite3_reset(st);
        free(data);
    }
    sqlite3_finalize(st);
    return r;
}

static int write_tokens(Out *o, const Backpack *m, const Tokenizer *tok, BpError *err) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(o->db, "INSERT INTO tokens(id, token, text, bytes) VALUES (?1, ?2, ?3, ?4)", -1, &st,
                           NULL))
        return out_fail(o, err, "writing tokens");
    int V = m->config.vocab_size, n_tok = tok ? tokenizer_vocab_size(tok) : 0;
    int r = 0;
    char readable[1024], name[64];
    for (int id = 0; id < V && !r; id++) {
        size_t len = 0;
        const char *bytes = id < n_tok ? tokenizer_token_bytes(tok, id, &len) : NULL;
        const char *string = id < n_tok ? tokenizer_token_string(tok, id) : NULL;
        sqlite3_bind_int(st, 1, id);
        if (bytes && string) {
            tokenizer_token_readable(tok, id, readable, sizeof readable);
            sqlite3_bind_text(st, 2, string, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, readable, -1, SQLITE_STATIC);
            sqlite3_bind_blob(st, 4, bytes, (int)len, SQLITE_STATIC);
        } else {
            snprintf(name, sizeof name, tok ? "<pad %d>" : "<id %d>", id);
            sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
            sqlite3_bind_zeroblob(st, 4, 0);
        }
        if (sqlite3_step(st) != SQLITE_DONE) r = out_fail(o, err, "writing tokens");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return r;
}

static int write_wte(Out *o, const Backpack *m, BpError *err) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(o->db, "INSERT INTO wte(id, vector) VALUES (?1, ?2)", -1, &st, NULL))
        return out_fail(o, err, "writing wte");
    int V = m->config.vocab_size, d = m->config.n_embd, r = 0;
    for (int id = 0; id < V && !r; id++) {
        sqlite3_bind_int(st, 1, id);
        sqlite3_bind_blob(st, 2, m->params.wte + (size_t)id * d, d * (int)sizeof(float), SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) r = out_fail(o, err, "writing wte");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return r;
}

/* Top and bottom words of rows vectors (exactly; opts->exact_scan: by scoring every word). */
static int score_rows(const ScoreScreen *screen, const Backpack *m, const float *senses, int rows, int top_n,
                      WordScore *top, WordScore *bottom, BpError *err) {
    const int V = m->config.vocab_size, d = m->config.n_embd;
    if (screen) return score_screen_extremes(screen, m->params.wte, senses, rows, top_n, top, bottom, err);
    int failed = 0;
#pragma omp parallel
    {
        float *scores = malloc((size_t)V * sizeof(float));  // (V)
#pragma omp for schedule(dynamic, 4)
        for (int row = 0; row < rows; row++)
            if (scores)
                score_extremes_exact(m->params.wte, V, d, senses + (size_t)row * d, top_n, top + (size_t)row * top_n,
                                     bottom + (size_t)row * top_n, scores);
        if (!scores) {
#pragma omp atomic write
            failed = 1;
        }
        free(scores);
    }
    return failed ? bp_fail(err, "out of memory for the scores of %d words", V) : 0;
}

static int write_senses(Out *o, const Backpack *m, int top_n, const ExportOptions *opts, BpError *err) {
    const int V = m->config.vocab_size, d = m->config.n_embd, k = m->config.num_senses;
    int chunk = opts->chunk_words > 0 ? opts->chunk_words : (4096 / k > 0 ? 4096 / k : 1);
    if (chunk > V) chunk = V;
    size_t rows = (size_t)chunk * k;
    float *senses = malloc(rows * d * sizeof(float));            // (chunk, k, d)
    WordScore *top = malloc(rows * top_n * sizeof(WordScore));    // (chunk * k, top_n)
    WordScore *bottom = malloc(rows * top_n * sizeof(WordScore));
    int32_t *ids = malloc(top_n * sizeof(int32_t));
    float *vals = malloc(top_n * sizeof(float));
    int *tokens = malloc(chunk * sizeof(int));
    float *scratch = malloc(d * sizeof(float));
    sqlite3_stmt *st = NULL;
    ScoreScreen *screen = NULL;
    int r = 0;
    if (!senses || !top || !bottom || !ids || !vals || !tokens || !scratch) {
        r = bp_fail(err, "out of memory for export chunks of %d words", chunk);
        goto done;
    }
    if (!opts->exact_scan && !(screen = score_screen_build(m->params.wte, V, d, err))) {
        r = -1;
        goto done;
    }
    if (sqlite3_prepare_v2(o->db,
                           "INSERT INTO senses(id, token, sense, norm, top_ids, top_scores, bottom_ids, "
                           "bottom_scores, vector) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                           -1, &st, NULL)) {
        r = out_fail(o, err, "writing senses");
        goto done;
    }
    for (int start = 0; start < V && !r; start += chunk) {
        int n = V - start < chunk ? V - start : chunk;
        for (int i = 0; i < n; i++) tokens[i] = start + i;
        backpack_compute_senses(m, tokens, n, senses);  // (n, k, d)
        int nrows = n * k;
        if ((r = score_rows(screen, m, senses, nrows, top_n, top, bottom, err))) break;
        for (int row = 0; row < nrows && !r; row++) {
            const float *v = senses + (size_t)row * d;
            double nn = 0;
            for (int i = 0; i < d; i++) nn += (double)v[i] * v[i];
            int token = start + row / k, sense = row % k;
            sqlite3_bind_int64(st, 1, (sqlite3_int64)token * k + sense);
            sqlite3_bind_int(st, 2, token);
            sqlite3_bind_int(st, 3, sense);
            sqlite3_bind_double(st, 4, sqrt(nn));
            for (int side = 0; side < 2; side++) {
                const WordScore *list = (side ? bottom : top) + (size_t)row * top_n;
                for (int i = 0; i < top_n; i++) {
                    ids[i] = list[i].id;
                    vals[i] = list[i].score;
                }
                sqlite3_bind_blob(st, 5 + 2 * side, ids, top_n * 4, SQLITE_TRANSIENT);
                sqlite3_bind_blob(st, 6 + 2 * side, vals, top_n * 4, SQLITE_TRANSIENT);
            }
            sqlite3_bind_blob(st, 9, v, d * (int)sizeof(float), SQLITE_STATIC);
            if (o->index) index_builder_add(o->index, token, sense, v, scratch);
            if (sqlite3_step(st) != SQLITE_DONE) r = out_fail(o, err, "writing senses");
            sqlite3_reset(st);
        }
        if (opts->progress) opts->progress((double)(start + n) / V, opts->progress_ctx);
    }
done:
    sqlite3_finalize(st);
    score_screen_free(screen);
    free(senses);
    free(top);
    free(bottom);
    free(ids);
    free(vals);
    free(tokens);
    free(scratch);
    return r;
}

/* An existing file at db_path: replaced only if it is a sense database and force. */
static int check_existing(const Backpack *m, const char *db_path, int force, BpError *err) {
    if (!file_exists(db_path)) return 0;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        bp_fail(err, "%s: exists and cannot be opened (%s); not overwriting", db_path,
                db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
    BpError why;
    if (store_validate_db(db, db_path, &why)) {
        sqlite3_close(db);
        return bp_fail(err, "%s; not overwriting it", why.msg);
    }
    char old_hash[32] = "", hash[17];
    int n_edits = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'weights_hash'", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
            snprintf(old_hash, sizeof old_hash, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM edits WHERE undone = 0", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) n_edits = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    if (force) {  /* fail now rather than after the whole export (checked again at the end) */
        int fd;
        if (store_lock_for_replace(db_path, &fd, err)) return -1;
        store_unlock(fd);
        return 0;
    }
    backpack_weights_hash(m, hash);
    if (!strcmp(hash, old_hash))
        return bp_fail(err, "%s: already holds the senses of this model (weights %s, %d edits in force); "
                       "--force rebuilds it and drops its edits", db_path, hash, n_edits);
    return bp_fail(err, "%s: holds the senses of another model (weights %s, this model %s); --force replaces it",
                   db_path, old_hash, hash);
}

/* Before renaming over an existing database, with its exclusive lock held (so no
 * backpack process has it open, store_file.c): make sure no other SQLite program is in
 * the middle of a transaction on it, and fold back the WAL of a database of an earlier
 * backpack, so that no stale -wal file can ever be replayed onto the new database. */
static int retire_existing(const char *db_path, BpError *err) {
    sqlite3 *db = NULL;
    int busy = 0;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
        sqlite3_exec(db, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
        busy = sqlite3_exec(db, "BEGIN EXCLUSIVE; COMMIT", NULL, NULL, NULL) != SQLITE_OK;
    }
    sqlite3_close(db);
    char wal[4200], shm[4200];
    snprintf(wal, sizeof wal, "%s-wal", db_path);
    snprintf(shm, sizeof shm, "%s-shm", db_path);
    struct stat sb;
    if (busy || (stat(wal, &sb) == 0 && sb.st_size > 0))
        return bp_fail(err, "%s: is in use by another process (it holds a lock or a write-ahead log); not replacing it",
                       db_path);
    unlink(wal);
    unlink(shm);
    return 0;
}

static int fsync_path(const char *path, int directory) {
    int fd = open(path, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

int store_export(const Backpack *m, const char *tokenizer_dir, const char *db_path, const ExportOptions *opts_in,
                 BpError *err) {
    ExportOptions opts = {0};
    if (opts_in) opts = *opts_in;
    /* A link is written through (its target replaced, the link kept), as fileio.h does. */
    char resolved[4096];
    if (path_resolve_links(db_path, resolved, sizeof resolved, err)) return -1;
    db_path = resolved;
    const BackpackConfig *c = &m->config;
    if (c->arch != ARCH_BACKPACK) return bp_fail(err, "%s: a Transformer model has no senses to export", db_path);
    if (m->edits) return bp_fail(err, "%s: export needs the model without edits", db_path);
    int top_n = opts.top_n ? opts.top_n : STORE_MIN_TOP_N;
    if (top_n < STORE_MIN_TOP_N || top_n > 10000)
        return bp_fail(err, "top words per sense must be in %d..10000, not %d", STORE_MIN_TOP_N, top_n);
    if (top_n > c->vocab_size) top_n = c->vocab_size;
    if (check_existing(m, db_path, opts.force, err)) return -1;

    Tokenizer *tok = NULL;
    if (tokenizer_dir) {
        if (tokenizer_load(&tok, tokenizer_dir, err)) return -1;
        if (tokenizer_vocab_size(tok) > c->vocab_size) {
            int n = tokenizer_vocab_size(tok);
            tokenizer_free(tok);
            return bp_fail(err, "%s: tokenizer has %d ids, more than the model's vocab_size %d", tokenizer_dir, n,
                           c->vocab_size);
        }
    }
    store_remove_stale_temporaries(db_path);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", db_path, (int)getpid());
    store_remove_db_files(tmp);
    Out o = {NULL, db_path, "", index_builder_new(c->vocab_size, c->num_senses, c->n_embd)};
    {
        struct {
            struct timespec t;
            int64_t pid;
            const void *where;
        } seed;
        memset(&seed, 0, sizeof seed);
        clock_gettime(CLOCK_REALTIME, &seed.t);
        seed.pid = getpid();
        seed.where = &o;
        snprintf(o.export_id, sizeof o.export_id, "%016llx", (unsigned long long)hash64(&seed, sizeof seed));
    }
    int r = 0, lock_fd = -1;
    if (sqlite3_open_v2(tmp, &o.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        r = bp_fail(err, "%s: cannot create: %s", tmp, o.db ? sqlite3_errmsg(o.db) : "out of memory");
        goto fail;
    }
    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA page_size=65536; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-65536;"
             "PRAGMA application_id=%d; PRAGMA user_version=%d;",
             STORE_APPLICATION_ID, STORE_SCHEMA_VERSION);
    if ((r = exec(&o, pragmas, err)) || (r = exec(&o, "BEGIN", err)) || (r = exec(&o, SCHEMA_SQL, err)) ||
        (r = write_meta(&o, m, &opts, top_n, err)) || (r = write_files(&o, tokenizer_dir, err)) ||
        (r = write_tokens(&o, m, tok, err)) || (r = write_wte(&o, m, err)) ||
        (r = write_senses(&o, m, top_n, &opts, err)) ||
        (r = exec(&o, "UPDATE meta SET value = '1' WHERE key = 'complete'", err)) || (r = exec(&o, "COMMIT", err)))
        goto fail;
    /* rollback-journal mode from here on (docs/sense-database.md) */
    if ((r = exec(&o, "PRAGMA journal_mode=DELETE", err))) goto fail;
    if (sqlite3_close(o.db) != SQLITE_OK) {
        r = bp_fail(err, "%s: cannot close the new database", tmp);
        o.db = NULL;
        goto fail;
    }
    o.db = NULL;
    if (fsync_path(tmp, 0)) {
        r = bp_fail_errno(err, "%s: fsync", tmp);
        goto fail;
    }
    if ((r = store_lock_for_replace(db_path, &lock_fd, err)) || (r = retire_existing(db_path, err))) goto fail;
    if (rename(tmp, db_path)) {
        r = bp_fail_errno(err, "%s: cannot rename into place", db_path);
        goto fail;
    }
    store_unlock(lock_fd);
    lock_fd = -1;
    {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s", db_path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        fsync_path(slash ? (dir[0] ? dir : "/") : ".", 1);
    }
    store_remove_db_files(tmp);  /* nothing, unless a journal was left */
    if (o.index) {  /* a cache: without it the first query rebuilds it */
        char hash[17];
        BpError ignore;
        backpack_weights_hash(m, hash);
        index_builder_write(o.index, db_path, hash, o.export_id, &ignore);
        index_builder_free(o.index);
    }
    if (tok) tokenizer_free(tok);
    return 0;
fail:
    index_builder_free(o.index);
    store_unlock(lock_fd);
    if (o.db) sqlite3_close(o.db);
    store_remove_db_files(tmp);
    if (tok) tokenizer_free(tok);
    return r ? r : -1;
}
