/* store_edits.c - edits of sense vectors and weights: preview, commit, undo, list,
 * and their composition into the model's SenseEdits.
 *
 * Each edit is one transaction (BEGIN IMMEDIATE: the write lock is taken first, so the
 * state in force read inside cannot change before the write). edited_senses holds the
 * state in force, edit_changes the before/after of every sense each edit changed, so
 * undo restores the exact bytes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edits.h"
#include "store_private.h"

const char *edit_kind_name(EditKind kind) {
    switch (kind) {
    case EDIT_SCALE: return "scale";
    case EDIT_WEIGHT: return "weight";
    case EDIT_COPY: return "copy";
    case EDIT_RESET: return "reset";
    case EDIT_REPLACE: return "replace";
    }
    return "?";
}

static int kind_from_name(const char *name, EditKind *out) {
    for (int k = EDIT_SCALE; k <= EDIT_REPLACE; k++)
        if (name && !strcmp(name, edit_kind_name((EditKind)k))) {
            *out = (EditKind)k;
            return 0;
        }
    return -1;
}

void store_edit_preview_free(EditPreview *p) {
    if (!p) return;
    free(p->changes);
    free(p->storage);
    memset(p, 0, sizeof *p);
}

static int check_token(const SenseStore *s, int token, const char *what, BpError *err) {
    if (token < 0 || token >= s->V)
        return bp_fail(err, "%s: token id %d out of range (vocabulary 0..%d)", what, token, s->V - 1);
    return 0;
}

static int check_sense_index(const SenseStore *s, int sense, BpError *err) {
    if (sense < 0 || sense >= s->k)
        return bp_fail(err, "sense %d out of range (this model has senses 0..%d)", sense, s->k - 1);
    return 0;
}

int store_edit_preview(SenseStore *s, const EditRequest *req, EditPreview *out, BpError *err) {
    memset(out, 0, sizeof *out);
    const int d = s->d, k = s->k;
    if (check_token(s, req->token, "edit", err)) return -1;
    int count = req->kind == EDIT_REPLACE ? k : 1;
    if (req->kind != EDIT_REPLACE && check_sense_index(s, req->sense, err)) return -1;
    if ((req->kind == EDIT_SCALE || req->kind == EDIT_WEIGHT) && !isfinite(req->value))
        return bp_fail(err, "edit value must be a finite number");
    if (req->kind == EDIT_WEIGHT && req->value < 0)
        return bp_fail(err, "a sense weight must be >= 0 (the paper's weights scale a softmax), not %g", req->value);
    if (req->kind == EDIT_COPY &&
        (check_token(s, req->src_token, "copy source", err) || check_sense_index(s, req->src_sense, err)))
        return -1;
    if (req->kind == EDIT_REPLACE) {
        if (check_token(s, req->old_token, "replace", err) || check_token(s, req->new_token, "replace", err))
            return -1;
        if (req->old_token == req->new_token) return bp_fail(err, "replace: the old and new words are the same");
    }
    if (req->kind < EDIT_SCALE || req->kind > EDIT_REPLACE) return bp_fail(err, "unknown edit kind %d", req->kind);

    out->changes = calloc(count, sizeof(SenseChange));
    out->storage = malloc((size_t)(2 * count + 2) * d * sizeof(float));
    if (!out->changes || !out->storage) {
        store_edit_preview_free(out);
        return bp_fail(err, "out of memory");
    }
    out->count = count;
    float *scratch = out->storage + (size_t)2 * count * d;  // (2, d): E[r], E[a] or the copy source
    const char *word = store_token_text(s, req->token);
    int r = 0;
    double er2 = 0, ea2 = 0;
    if (req->kind == EDIT_REPLACE) {
        if (store_wte_row(s, req->old_token, scratch, err) || store_wte_row(s, req->new_token, scratch + d, err)) {
            store_edit_preview_free(out);
            return -1;
        }
        for (int i = 0; i < d; i++) {
            er2 += (double)scratch[i] * scratch[i];
            ea2 += (double)scratch[d + i] * scratch[d + i];
        }
        if (er2 == 0 || ea2 == 0) {
            store_edit_preview_free(out);
            return bp_fail(err, "replace: the embedding of '%s' is zero", store_token_text(s, er2 == 0 ? req->old_token : req->new_token));
        }
    }
    for (int c = 0; c < count && !r; c++) {
        SenseChange *ch = &out->changes[c];
        ch->token = req->token;
        ch->sense = req->kind == EDIT_REPLACE ? c : req->sense;
        ch->vector_before = out->storage + (size_t)(2 * c) * d;
        ch->vector_after = out->storage + (size_t)(2 * c + 1) * d;
        if ((r = store_state(s, ch->token, ch->sense, ch->vector_before, &ch->weight_before, err))) break;
        ch->weight_after = ch->weight_before;
        memcpy(ch->vector_after, ch->vector_before, d * sizeof(float));
        switch (req->kind) {
        case EDIT_SCALE:
            for (int i = 0; i < d; i++) ch->vector_after[i] = req->value * ch->vector_before[i];
            break;
        case EDIT_WEIGHT:
            ch->weight_after = req->value;
            break;
        case EDIT_COPY: {
            float w;
            r = store_state(s, req->src_token, req->src_sense, ch->vector_after, &w, err);
            break;
        }
        case EDIT_RESET: {
            r = store_sense_vector(s, ch->token, ch->sense, STORE_EXPORTED, ch->vector_after, err);
            ch->weight_after = 1.0f;
            if (!r && ch->weight_before == 1.0f &&
                !memcmp(ch->vector_after, ch->vector_before, d * sizeof(float)))
                r = bp_fail(err, "'%s' sense %d is not edited: nothing to reset", word, ch->sense);
            break;
        }
        case EDIT_REPLACE: {
            /* c = C.E[r] / |E[r]|^2;  C' = C - c E[r] + c (|E[r]|^2 / |E[a]|^2) E[a] */
            const float *e_r = scratch, *e_a = scratch + d;
            double dotr = 0;
            for (int i = 0; i < d; i++) dotr += (double)ch->vector_before[i] * e_r[i];
            double coef = dotr / er2, coef_a = coef * er2 / ea2;
            for (int i = 0; i < d; i++)
                ch->vector_after[i] = (float)((double)ch->vector_before[i] - coef * e_r[i] + coef_a * e_a[i]);
            break;
        }
        }
        for (int i = 0; i < d && !r; i++)
            if (!isfinite(ch->vector_after[i])) r = bp_fail(err, "edit gives a non-finite vector");
    }
    if (r) {
        store_edit_preview_free(out);
        return -1;
    }
    switch (req->kind) {
    case EDIT_SCALE:
        snprintf(out->description, sizeof out->description, "scale '%s' sense %d by %g", word, req->sense, req->value);
        break;
    case EDIT_WEIGHT:
        snprintf(out->description, sizeof out->description, "weight of '%s' sense %d = %g", word, req->sense,
                 req->value);
        break;
    case EDIT_COPY:
        snprintf(out->description, sizeof out->description, "copy '%s' sense %d into '%s' sense %d",
                 store_token_text(s, req->src_token), req->src_sense, word, req->sense);
        break;
    case EDIT_RESET:
        snprintf(out->description, sizeof out->description, "reset '%s' sense %d", word, req->sense);
        break;
    case EDIT_REPLACE:
        snprintf(out->description, sizeof out->description, "replace '%s' by '%s' in '%s' (every sense)",
                 store_token_text(s, req->old_token), store_token_text(s, req->new_token), word);
        break;
    }
    return 0;
}

static int step_done(SenseStore *s, sqlite3_stmt *st, const char *what, BpError *err) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : store_sql_fail(s, err, what);
}

/* Sets the state in force of (token, sense): no row when it equals the export. */
static int set_state(SenseStore *s, int token, int sense, const float *vector, float weight, float *exported,
                     BpError *err) {
    if (store_sense_vector(s, token, sense, STORE_EXPORTED, exported, err)) return -1;
    int same = !memcmp(exported, vector, s->d * sizeof(float));
    sqlite3_stmt *st;
    int r;
    if (same && weight == 1.0f) {
        if (sqlite3_prepare_v2(s->db, "DELETE FROM edited_senses WHERE token = ?1 AND sense = ?2", -1, &st, NULL))
            return store_sql_fail(s, err, "writing the edits in force");
        sqlite3_bind_int(st, 1, token);
        sqlite3_bind_int(st, 2, sense);
    } else {
        if (sqlite3_prepare_v2(s->db,
                               "INSERT OR REPLACE INTO edited_senses(token, sense, weight, vector) "
                               "VALUES (?1, ?2, ?3, ?4)",
                               -1, &st, NULL))
            return store_sql_fail(s, err, "writing the edits in force");
        sqlite3_bind_int(st, 1, token);
        sqlite3_bind_int(st, 2, sense);
        sqlite3_bind_double(st, 3, weight);
        if (same) sqlite3_bind_null(st, 4);
        else sqlite3_bind_blob(st, 4, vector, s->d * (int)sizeof(float), SQLITE_STATIC);
    }
    r = step_done(s, st, "writing the edits in force", err);
    sqlite3_finalize(st);
    return r;
}

static int begin_write(SenseStore *s, BpError *err) {
    if (s->mode != STORE_READ_WRITE) return bp_fail(err, "%s: opened read-only", s->info.path);
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return store_sql_fail(s, err, "starting an edit");
    return 0;
}

static int finish(SenseStore *s, int r, BpError *err) {
    if (r) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        store_sql_fail(s, err, "committing an edit");
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

/* The edits row of a commit: kind, token, sense and description of one request, or of
 * a group (token and sense -1 when its requests name several). */
static int insert_edit_row(SenseStore *s, sqlite3_stmt *ins_edit, EditKind kind, int token, int sense,
                           const char *description, BpError *err) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    sqlite3_bind_double(ins_edit, 1, ts.tv_sec + ts.tv_nsec * 1e-9);
    sqlite3_bind_text(ins_edit, 2, edit_kind_name(kind), -1, SQLITE_STATIC);
    sqlite3_bind_int(ins_edit, 3, token);
    sqlite3_bind_int(ins_edit, 4, sense);
    sqlite3_bind_text(ins_edit, 5, description, -1, SQLITE_STATIC);
    return step_done(s, ins_edit, "recording an edit", err);
}

static int prepare_edit_inserts(SenseStore *s, sqlite3_stmt **ins_edit, sqlite3_stmt **ins_change, BpError *err) {
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO edits(created, kind, token, sense, description, undone) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                           -1, ins_edit, NULL) ||
        sqlite3_prepare_v2(s->db,
                           "INSERT INTO edit_changes(edit_id, token, sense, weight_before, weight_after, "
                           "vector_before, vector_after) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                           -1, ins_change, NULL))
        return store_sql_fail(s, err, "recording an edit");
    return 0;
}

/* One edit_changes row per change of p, and the state in force after each. */
static int record_changes(SenseStore *s, sqlite3_stmt *ins_change, int64_t id, const EditPreview *p,
                          float *exported, BpError *err) {
    int r = 0;
    for (int c = 0; c < p->count && !r; c++) {
        const SenseChange *ch = &p->changes[c];
        sqlite3_bind_int64(ins_change, 1, id);
        sqlite3_bind_int(ins_change, 2, ch->token);
        sqlite3_bind_int(ins_change, 3, ch->sense);
        sqlite3_bind_double(ins_change, 4, ch->weight_before);
        sqlite3_bind_double(ins_change, 5, ch->weight_after);
        sqlite3_bind_blob(ins_change, 6, ch->vector_before, s->d * (int)sizeof(float), SQLITE_STATIC);
        sqlite3_bind_blob(ins_change, 7, ch->vector_after, s->d * (int)sizeof(float), SQLITE_STATIC);
        r = step_done(s, ins_change, "recording an edit", err);
        if (!r) r = set_state(s, ch->token, ch->sense, ch->vector_after, ch->weight_after, exported, err);
    }
    return r;
}

int store_edit_commit_group(SenseStore *s, const EditRequest *reqs, int n, const char *description,
                            int64_t *edit_id, BpError *err) {
    if (n < 1) return bp_fail(err, "an edit group needs at least one edit");
    if (begin_write(s, err)) return -1;
    float *exported = malloc(s->d * sizeof(float));
    sqlite3_stmt *ins_edit = NULL, *ins_change = NULL;
    int r = exported ? prepare_edit_inserts(s, &ins_edit, &ins_change, err) : bp_fail(err, "out of memory");
    int token = reqs[0].token, sense = reqs[0].kind == EDIT_REPLACE ? -1 : reqs[0].sense;
    EditKind kind = reqs[0].kind;
    for (int i = 1; i < n; i++) {
        if (reqs[i].token != token) token = -1;
        if (reqs[i].kind == EDIT_REPLACE || reqs[i].sense != sense) sense = -1;
        if (reqs[i].kind != kind) kind = EDIT_SCALE;  /* mixed: the description says what */
    }
    if (!r) r = insert_edit_row(s, ins_edit, kind, token, sense, description, err);
    int64_t id = sqlite3_last_insert_rowid(s->db);
    /* each preview reads the state in force, which the previous changes already set */
    for (int i = 0; i < n && !r; i++) {
        EditPreview p;
        if ((r = store_edit_preview(s, &reqs[i], &p, err))) break;
        r = record_changes(s, ins_change, id, &p, exported, err);
        store_edit_preview_free(&p);
    }
    sqlite3_finalize(ins_edit);
    sqlite3_finalize(ins_change);
    free(exported);
    if (finish(s, r, err)) return -1;
    if (edit_id) *edit_id = id;
    return 0;
}

int store_edit_commit(SenseStore *s, const EditRequest *req, int64_t *edit_id, BpError *err) {
    if (begin_write(s, err)) return -1;
    EditPreview p;
    if (store_edit_preview(s, req, &p, err)) return finish(s, -1, err);
    float *exported = malloc(s->d * sizeof(float));
    sqlite3_stmt *ins_edit = NULL, *ins_change = NULL;
    int r = exported ? prepare_edit_inserts(s, &ins_edit, &ins_change, err) : bp_fail(err, "out of memory");
    if (!r)
        r = insert_edit_row(s, ins_edit, req->kind, req->token, req->kind == EDIT_REPLACE ? -1 : req->sense,
                            p.description, err);
    int64_t id = sqlite3_last_insert_rowid(s->db);
    if (!r) r = record_changes(s, ins_change, id, &p, exported, err);
    sqlite3_finalize(ins_edit);
    sqlite3_finalize(ins_change);
    free(exported);
    store_edit_preview_free(&p);
    if (finish(s, r, err)) return -1;
    if (edit_id) *edit_id = id;
    return 0;
}

int store_edit_undo(SenseStore *s, int64_t edit_id, int64_t *undone_id, BpError *err) {
    if (begin_write(s, err)) return -1;
    sqlite3_stmt *st = NULL;
    int r = 0;
    int64_t id = edit_id;
    if (id <= 0) {
        if (sqlite3_prepare_v2(s->db, "SELECT max(id) FROM edits WHERE undone = 0", -1, &st, NULL))
            return finish(s, store_sql_fail(s, err, "finding the latest edit"), err);
        if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL)
            r = bp_fail(err, "%s: no edit in force to undo", s->info.path);
        else id = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (r) return finish(s, r, err);
    } else {
        if (sqlite3_prepare_v2(s->db, "SELECT undone FROM edits WHERE id = ?1", -1, &st, NULL))
            return finish(s, store_sql_fail(s, err, "finding the edit"), err);
        sqlite3_bind_int64(st, 1, id);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) r = bp_fail(err, "%s: no edit %lld", s->info.path, (long long)id);
        else if (sqlite3_column_int(st, 0)) r = bp_fail(err, "%s: edit %lld is already undone", s->info.path, (long long)id);
        sqlite3_finalize(st);
        if (r) return finish(s, r, err);
    }
    /* A later edit in force on one of the same senses must be undone first. */
    if (sqlite3_prepare_v2(s->db,
                           "SELECT min(e.id) FROM edits e JOIN edit_changes c ON c.edit_id = e.id "
                           "WHERE e.undone = 0 AND e.id > ?1 AND EXISTS (SELECT 1 FROM edit_changes o "
                           "WHERE o.edit_id = ?1 AND o.token = c.token AND o.sense = c.sense)",
                           -1, &st, NULL))
        return finish(s, store_sql_fail(s, err, "checking later edits"), err);
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        r = bp_fail(err, "%s: edit %lld changed the same sense after edit %lld: undo it first", s->info.path,
                    (long long)sqlite3_column_int64(st, 0), (long long)id);
    sqlite3_finalize(st);
    if (r) return finish(s, r, err);

    float *vector = malloc(s->d * sizeof(float)), *exported = malloc(s->d * sizeof(float));
    if (!vector || !exported) r = bp_fail(err, "out of memory");
    /* restore in reverse order of the changes (an edit changes each sense once) */
    if (!r && sqlite3_prepare_v2(s->db,
                                 "SELECT token, sense, weight_before, vector_before FROM edit_changes "
                                 "WHERE edit_id = ?1 ORDER BY rowid DESC",
                                 -1, &st, NULL))
        r = store_sql_fail(s, err, "reading the edit");
    if (!r) {
        sqlite3_bind_int64(st, 1, id);
        int rc;
        while (!r && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            int token = sqlite3_column_int(st, 0), sense = sqlite3_column_int(st, 1);
            float weight = (float)sqlite3_column_double(st, 2);
            if (token < 0 || token >= s->V || sense < 0 || sense >= s->k ||
                blob_to_floats(sqlite3_column_blob(st, 3), sqlite3_column_bytes(st, 3), vector, s->d))
                r = bp_fail(err, "%s: edit %lld is damaged", s->info.path, (long long)id);
            else r = set_state(s, token, sense, vector, weight, exported, err);
        }
        if (!r && rc != SQLITE_DONE) r = store_sql_fail(s, err, "reading the edit");
        sqlite3_finalize(st);
    }
    free(vector);
    free(exported);
    if (!r) {
        if (sqlite3_prepare_v2(s->db, "UPDATE edits SET undone = 1 WHERE id = ?1", -1, &st, NULL))
            r = store_sql_fail(s, err, "marking the edit undone");
        else {
            sqlite3_bind_int64(st, 1, id);
            r = step_done(s, st, "marking the edit undone", err);
            sqlite3_finalize(st);
        }
    }
    if (finish(s, r, err)) return -1;
    if (undone_id) *undone_id = id;
    return 0;
}

int store_edit_list(SenseStore *s, EditRecord **out, int *count, BpError *err) {
    *out = NULL;
    *count = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT id, created, kind, token, sense, undone, description FROM edits ORDER BY id",
                           -1, &st, NULL))
        return store_sql_fail(s, err, "listing edits");
    int cap = 0, rc;
    EditRecord *list = NULL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*count == cap) {
            cap = cap ? cap * 2 : 16;
            EditRecord *n = realloc(list, cap * sizeof *n);
            if (!n) {
                free(list);
                sqlite3_finalize(st);
                return bp_fail(err, "out of memory");
            }
            list = n;
        }
        EditRecord *e = &list[(*count)++];
        memset(e, 0, sizeof *e);
        e->id = sqlite3_column_int64(st, 0);
        e->created = sqlite3_column_double(st, 1);
        if (kind_from_name((const char *)sqlite3_column_text(st, 2), &e->kind)) e->kind = EDIT_SCALE;
        e->token = sqlite3_column_int(st, 3);
        e->sense = sqlite3_column_int(st, 4);
        e->undone = sqlite3_column_int(st, 5);
        const char *desc = (const char *)sqlite3_column_text(st, 6);
        snprintf(e->description, sizeof e->description, "%s", desc ? desc : "");
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(list);
        *count = 0;
        return store_sql_fail(s, err, "listing edits");
    }
    *out = list;
    return 0;
}

int store_sense_edits(SenseStore *s, SenseEdits *out, BpError *err) {
    out->items = NULL;
    out->count = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT count(*), count(vector) FROM edited_senses", -1, &st, NULL))
        return store_sql_fail(s, err, "reading the edits in force");
    int n = 0, nv = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        n = sqlite3_column_int(st, 0);
        nv = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    if (n == 0) return 0;
    /* one block: the items, then their vectors, freed by one free() */
    size_t head = ((size_t)n * sizeof(SenseEdit) + 63) & ~(size_t)63;
    char *block = malloc(head + (size_t)nv * s->d * sizeof(float));
    if (!block) return bp_fail(err, "out of memory");
    SenseEdit *items = (SenseEdit *)block;
    float *vectors = (float *)(block + head);
    if (sqlite3_prepare_v2(s->db, "SELECT token, sense, weight, vector FROM edited_senses ORDER BY token, sense", -1,
                           &st, NULL)) {
        free(block);
        return store_sql_fail(s, err, "reading the edits in force");
    }
    int i = 0, j = 0, rc, bad = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && i < n) {
        SenseEdit *e = &items[i];
        e->token = sqlite3_column_int(st, 0);
        e->sense = sqlite3_column_int(st, 1);
        e->weight = (float)sqlite3_column_double(st, 2);
        e->vector = NULL;
        if (e->token < 0 || e->token >= s->V || e->sense < 0 || e->sense >= s->k || !isfinite(e->weight)) bad = 1;
        if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
            if (j >= nv || blob_to_floats(sqlite3_column_blob(st, 3), sqlite3_column_bytes(st, 3),
                                          vectors + (size_t)j * s->d, s->d))
                bad = 1;
            else e->vector = vectors + (size_t)j++ * s->d;
        }
        if (bad) break;
        i++;
    }
    sqlite3_finalize(st);
    if (bad || i != n) {
        free(block);
        return bp_fail(err, "%s: the edits in force (edited_senses) are damaged", s->info.path);
    }
    out->items = items;
    out->count = n;
    return 0;
}

int sense_edits_load(const char *db_path, const Backpack *m, SenseEdits *out, BpError *err) {
    out->items = NULL;
    out->count = 0;
    SenseStore *s;
    if (store_open(&s, db_path, STORE_READ_ONLY, err)) return -1;
    int r = store_check_model(s, m, err);
    if (!r) r = store_sense_edits(s, out, err);
    store_close(s);
    return r;
}

void sense_edits_free(SenseEdits *edits) {
    if (!edits) return;
    free((void *)edits->items);
    edits->items = NULL;
    edits->count = 0;
}
