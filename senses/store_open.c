/* store_open.c - opening a sense database: validation, meta, the prepared queries.
 * (The vocabulary is in store_vocab.c, the sense queries in store_query.c, nearest
 * neighbours in store_nearest.c, export in export.c, edits in store_edits.c.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "store_private.h"

/* ---- helpers ------------------------------------------------------------------------ */

int store_sql_fail(const SenseStore *s, BpError *err, const char *what) {
    int code = sqlite3_extended_errcode(s->db) & 0xff;
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
        return bp_fail(err, "%s: database is locked by another process (waited %d ms) while %s",
                       s->info.path, s->busy_timeout_ms, what);
    if (code == SQLITE_READONLY)
        return bp_fail(err, "%s: database is read-only while %s", s->info.path, what);
    return bp_fail(err, "%s: %s while %s", s->info.path, sqlite3_errmsg(s->db), what);
}

int blob_to_floats(const void *blob, int bytes, float *out, int n) {
    if (!blob || bytes != (int)(n * sizeof(float))) return -1;
    memcpy(out, blob, (size_t)n * sizeof(float));  /* little-endian host (x86-64) */
    return 0;
}

/* ---- validation and opening ------------------------------------------------------ */

static int pragma_int(sqlite3 *db, const char *sql, int *out) {
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static int validate_fail(sqlite3 *db, const char *path, int rc, BpError *err) {
    int code = rc & 0xff;
    if (code == SQLITE_NOTADB) return bp_fail(err, "%s: not a sense database (not an SQLite file)", path);
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
        return bp_fail(err, "%s: database is locked by another process (waited %d ms)", path,
                       STORE_BUSY_TIMEOUT_MS);
    return bp_fail(err, "%s: cannot read database: %s", path, sqlite3_errmsg(db));
}

int store_validate_db(sqlite3 *db, const char *path, BpError *err) {
    int app_id = 0, version = 0, rc;
    if ((rc = pragma_int(db, "PRAGMA application_id", &app_id)) != SQLITE_OK)
        return validate_fail(db, path, rc, err);
    if (app_id != STORE_APPLICATION_ID)
        return bp_fail(err, "%s: not a sense database (SQLite, but not written by backpack export)", path);
    if ((rc = pragma_int(db, "PRAGMA user_version", &version)) != SQLITE_OK)
        return validate_fail(db, path, rc, err);
    if (version != STORE_SCHEMA_VERSION)
        return bp_fail(err, "%s: sense database schema version %d, this backpack reads version %d", path,
                       version, STORE_SCHEMA_VERSION);
    int complete = 0;
    rc = pragma_int(db, "SELECT value = '1' FROM meta WHERE key = 'complete'", &complete);
    if (rc != SQLITE_OK) return validate_fail(db, path, rc, err);
    if (!complete) return bp_fail(err, "%s: incomplete sense database (an interrupted export)", path);
    return 0;
}

static int read_meta(SenseStore *s, BpError *err) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT key, value FROM meta", -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(s, err, "reading meta");
    StoreInfo *in = &s->info;
    BackpackConfig *c = &in->config;
    memset(c, 0, sizeof *c);
    c->arch = -1;
    in->schema_version = STORE_SCHEMA_VERSION;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        const char *value = (const char *)sqlite3_column_text(st, 1);
        if (!key || !value) continue;
        long v = strtol(value, NULL, 10);
        if (!strcmp(key, "vocab_size")) c->vocab_size = (int)v;
        else if (!strcmp(key, "n_embd")) c->n_embd = (int)v;
        else if (!strcmp(key, "n_layer")) c->n_layer = (int)v;
        else if (!strcmp(key, "n_head")) c->n_head = (int)v;
        else if (!strcmp(key, "num_senses")) c->num_senses = (int)v;
        else if (!strcmp(key, "n_positions")) c->n_positions = (int)v;
        else if (!strcmp(key, "sense_intermediate_scale")) c->sense_intermediate_scale = (int)v;
        else if (!strcmp(key, "arch")) c->arch = (ModelArch)v;
        else if (!strcmp(key, "top_n")) in->top_n = (int)v;
        else if (!strcmp(key, "created")) in->created = strtod(value, NULL);
        else if (!strcmp(key, "weights_hash")) snprintf(in->weights_hash, sizeof in->weights_hash, "%s", value);
        else if (!strcmp(key, "model_dir")) snprintf(in->model_dir, sizeof in->model_dir, "%s", value);
        else if (!strcmp(key, "export_id")) snprintf(s->export_id, sizeof s->export_id, "%s", value);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return store_sql_fail(s, err, "reading meta");
    if (c->vocab_size <= 0 || c->n_embd <= 0 || c->num_senses <= 0 || c->n_embd > 1 << 16 ||
        c->num_senses > 1024 || in->top_n <= 0 || strlen(in->weights_hash) != 16)
        return bp_fail(err, "%s: sense database meta table is damaged (shape or hash missing)", in->path);
    /* The shape sizes every allocation that follows: it must be the tables' own, not
     * just what meta claims (a vocab_size of 10^9 asked for 8 GB of vocabulary). */
    int n_tokens = -1, n_senses = -1;
    if (pragma_int(s->db, "SELECT count(*) FROM tokens", &n_tokens) != SQLITE_OK ||
        pragma_int(s->db, "SELECT count(*) FROM senses", &n_senses) != SQLITE_OK)
        return store_sql_fail(s, err, "counting rows");
    if (n_tokens != c->vocab_size || (long long)n_senses != (long long)c->vocab_size * c->num_senses)
        return bp_fail(err, "%s: sense database is damaged: meta says %d words x %d senses, the tables hold %d "
                       "tokens and %d senses", in->path, c->vocab_size, c->num_senses, n_tokens, n_senses);
    s->V = c->vocab_size;
    s->d = c->n_embd;
    s->k = c->num_senses;
    return 0;
}

static int prepare(SenseStore *s, sqlite3_stmt **st, const char *sql, BpError *err) {
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
        return store_sql_fail(s, err, "preparing a query");
    return 0;
}

/* Whether we may write path and create files beside it (journals). */
static int writable_here(const char *path) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    const char *d = slash ? (dir[0] ? dir : "/") : ".";
    return access(path, W_OK) == 0 && access(d, W_OK) == 0;
}

/* "file:" URI of path with ?immutable=1: for reading a WAL-mode database nobody can
 * write, without the -shm file SQLite would otherwise need to create. */
static void immutable_uri(const char *path, char *uri, size_t size) {
    size_t n = (size_t)snprintf(uri, size, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p && n + 4 < size; p++) {
        if (*p == '%' || *p == '?' || *p == '#' || *p < 0x20)
            n += (size_t)snprintf(uri + n, size - n, "%%%02X", *p);
        else
            uri[n++] = (char)*p;
    }
    snprintf(uri + n, size - n, "?immutable=1");
}

/* The connection. Databases stay in rollback-journal mode (docs/sense-database.md), so
 * that reading needs no file beside them and leaves none. A database of an earlier
 * backpack is in WAL mode: it is switched to rollback-journal mode when we can write
 * it (a moment's exclusive access, skipped while another process has it open), and
 * read as immutable when no one can write it (a read-only mount). */
static int open_connection(SenseStore *s, const char *path, StoreMode mode, BpError *err) {
    int flags = mode == STORE_READ_WRITE ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
    int wal = store_header_is_wal(path), writable = writable_here(path);
    if (wal && writable) {
        sqlite3 *db = NULL;
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
            sqlite3_busy_timeout(db, 100);
            sqlite3_exec(db, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
        }
        sqlite3_close(db);
        wal = store_header_is_wal(path);
    }
    int rc;
    if (wal && !writable && mode == STORE_READ_ONLY) {
        char uri[8500];
        immutable_uri(path, uri, sizeof uri);
        rc = sqlite3_open_v2(uri, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    } else {
        rc = sqlite3_open_v2(path, &s->db, flags, NULL);
    }
    if (rc != SQLITE_OK)
        return bp_fail(err, "%s: cannot open: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
    return 0;
}

int store_open(SenseStore **out, const char *path, StoreMode mode, BpError *err) {
    *out = NULL;
    if (!file_exists(path)) return bp_fail(err, "%s: no such sense database", path);
    SenseStore *s = calloc(1, sizeof *s);
    if (!s) return bp_fail(err, "%s: out of memory", path);
    s->lock_fd = -1;
    s->mode = mode;
    snprintf(s->info.path, sizeof s->info.path, "%s", path);
    /* An export may rename a new database over path between our open and our lock:
     * then the lock is on the old file, and we open again. */
    for (int attempt = 0;; attempt++) {
        if (store_lock_open(path, &s->lock_fd, err) || open_connection(s, path, mode, err)) {
            store_close(s);
            return -1;
        }
        if (store_lock_still_current(s->lock_fd, path)) break;
        sqlite3_close(s->db);
        s->db = NULL;
        store_unlock(s->lock_fd);
        s->lock_fd = -1;
        if (attempt == 20) {
            free(s);
            return bp_fail(err, "%s: replaced over and over while opening it", path);
        }
    }
    if (mode == STORE_READ_WRITE) store_remove_stale_temporaries(path);
    store_set_busy_timeout(s, STORE_BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(s->db, 1);
    if (store_validate_db(s->db, path, err) || read_meta(s, err) || store_load_vocab(s, err) ||
        prepare(s, &s->st_vector, "SELECT vector FROM senses WHERE id = ?1", err) ||
        prepare(s, &s->st_info, "SELECT norm FROM senses WHERE id = ?1", err) ||
        prepare(s, &s->st_lists,
                "SELECT top_ids, top_scores, bottom_ids, bottom_scores FROM senses WHERE id = ?1", err) ||
        prepare(s, &s->st_edited, "SELECT weight, vector FROM edited_senses WHERE token = ?1 AND sense = ?2",
                err) ||
        prepare(s, &s->st_wte, "SELECT vector FROM wte WHERE id = ?1", err)) {
        store_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void store_close(SenseStore *s) {
    if (!s) return;
    sqlite3_finalize(s->st_vector);
    sqlite3_finalize(s->st_info);
    sqlite3_finalize(s->st_lists);
    sqlite3_finalize(s->st_edited);
    sqlite3_finalize(s->st_wte);
    sqlite3_close(s->db);
    store_unlock(s->lock_fd);
    store_free_vocab(s);
    store_free_index(s);
    free(s->wte);
    free(s);
}

void store_set_busy_timeout(SenseStore *s, int ms) {
    s->busy_timeout_ms = ms;
    sqlite3_busy_timeout(s->db, ms);
}

const StoreInfo *store_info(const SenseStore *s) { return &s->info; }

int store_check_model(const SenseStore *s, const Backpack *m, BpError *err) {
    const BackpackConfig *a = &s->info.config, *b = &m->config;
    if (a->arch != b->arch || a->vocab_size != b->vocab_size || a->n_embd != b->n_embd ||
        a->n_layer != b->n_layer || a->n_head != b->n_head || a->num_senses != b->num_senses ||
        a->n_positions != b->n_positions || a->sense_intermediate_scale != b->sense_intermediate_scale)
        return bp_fail(err,
                       "%s: exported from another model (shape V=%d d=%d L=%d H=%d k=%d, this model V=%d d=%d "
                       "L=%d H=%d k=%d)",
                       s->info.path, a->vocab_size, a->n_embd, a->n_layer, a->n_head, a->num_senses,
                       b->vocab_size, b->n_embd, b->n_layer, b->n_head, b->num_senses);
    char hash[17];
    backpack_weights_hash(m, hash);
    if (strcmp(hash, s->info.weights_hash))
        return bp_fail(err, "%s: exported from another model (weights hash %s, this model %s)", s->info.path,
                       s->info.weights_hash, hash);
    return 0;
}
