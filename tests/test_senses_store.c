/* The sense store: export round trip, top words and nearest neighbours against brute
 * force, Spearman, the exact effect of every edit kind on the logits, undo, and every
 * bad input (the commands over it: tests/test_cli_senses.c). The fixture is
 * tests/senses_fixture.h. */
#include "senses_fixture.h"
#include "../senses/similarity.h"

/* ---- export ------------------------------------------------------------------------- */

static void test_export_round_trip(void **state) {
    (void)state;
    SenseStore *s = open_rw();
    const StoreInfo *in = store_info(s);
    assert_int_equal(in->config.vocab_size, V);
    assert_int_equal(in->config.n_embd, D);
    assert_int_equal(in->config.num_senses, K);
    assert_int_equal(in->top_n, TOP);
    char hash[17];
    backpack_weights_hash(&model, hash);
    assert_string_equal(in->weights_hash, hash);
    BpError err = {0};
    assert_int_equal(store_check_model(s, &model, &err), 0);
    float v[D];
    for (int x = 0; x < V; x++)
        for (int l = 0; l < K; l++) {
            assert_int_equal(store_sense_vector(s, x, l, STORE_EXPORTED, v, &err), 0);
            assert_memory_equal(v, senses + ((size_t)x * K + l) * D, sizeof v);
            SenseInfo info;
            assert_int_equal(store_sense_info(s, x, l, &info, &err), 0);
            double nn = 0;
            for (int i = 0; i < D; i++) nn += (double)v[i] * v[i];
            assert_float_equal(info.norm, sqrt(nn), 1e-5 * sqrt(nn));
            assert_int_equal(info.vector_edited, 0);
            assert_float_equal(info.weight, 1.0, 0);
        }
    /* E is stored bit for bit */
    const float *E = store_embeddings(s, &err);
    assert_non_null(E);
    assert_memory_equal(E, model.params.wte, (size_t)V * D * sizeof(float));
    /* the vocabulary: " bank" is token 259, "bank" 281, padding rows past 282 */
    assert_string_equal(store_token_text(s, 259), " bank");
    assert_string_equal(store_token_string(s, 259), "\xc4\xa0" "bank");
    assert_int_equal(store_lookup_bytes(s, " bank", 5), 259);
    assert_string_equal(store_token_text(s, 285), "<pad 285>");
    store_close(s);
    /* no temporary files left beside the database */
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s/senses.db.tmp-%d", tmpdir, (int)getpid());
    assert_false(file_exists(tmp));
}

static int cmp_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* The stored lists against a brute-force ranking in double precision: the i-th stored
 * score equals the i-th brute-force score, and each id's brute-force score equals the
 * score stored with it (so the order is right up to exact float ties). */
static void check_list(const WordScore *list, int n, const double *brute, int descending) {
    double sorted[V];
    memcpy(sorted, brute, sizeof sorted);
    qsort(sorted, V, sizeof(double), cmp_desc);
    for (int i = 0; i < n; i++) {
        double want = descending ? sorted[i] : sorted[V - 1 - i];
        double tol = 1e-4 * (1 + fabs(want));
        assert_true(fabs(list[i].score - want) <= tol);
        assert_true(fabs(brute[list[i].id] - list[i].score) <= tol);
    }
}

static void test_top_words_brute_force(void **state) {
    (void)state;
    SenseStore *s = open_rw();
    BpError err = {0};
    WordScore top[TOP], bottom[TOP], top_long[40];
    double brute[V];
    for (int x = 0; x < V; x += 7)
        for (int l = 0; l < K; l++) {
            const float *c = senses + ((size_t)x * K + l) * D;
            for (int y = 0; y < V; y++) {
                double acc = 0;
                for (int i = 0; i < D; i++) acc += (double)model.params.wte[(size_t)y * D + i] * c[i];
                brute[y] = acc;
            }
            assert_int_equal(store_sense_words(s, x, l, TOP, top, bottom, &err), TOP);
            check_list(top, TOP, brute, 1);
            check_list(bottom, TOP, brute, 0);
            /* a longer list than stored is recomputed from E */
            assert_int_equal(store_sense_words(s, x, l, 40, top_long, NULL, &err), 40);
            check_list(top_long, 40, brute, 1);
        }
    store_close(s);
}

/* ---- nearest ------------------------------------------------------------------------- */

static void check_nearest(SenseStore *s, int x, int sense, const float *query_vectors) {
    double brute[V];
    for (int y = 0; y < V; y++) {
        if (y == x) {
            brute[y] = -1e9;
            continue;
        }
        double m = INFINITY;
        for (int l = 0; l < K; l++) {
            if (sense >= 0 && l != sense) continue;
            double c = cosine_d(query_vectors + (size_t)l * D, senses + ((size_t)y * K + l) * D);
            if (c < m) m = c;
        }
        brute[y] = m;
    }
    WordScore out[10];
    BpError err = {0};
    float query[K * D];
    memcpy(query, senses + (size_t)x * K * D, sizeof query);
    assert_int_equal(store_nearest(s, query, sense, x, 10, out, &err), 10);
    double sorted[V];
    memcpy(sorted, brute, sizeof sorted);
    qsort(sorted, V, sizeof(double), cmp_desc);
    for (int i = 0; i < 10; i++) {
        assert_int_not_equal(out[i].id, x);
        assert_true(fabs(out[i].score - sorted[i]) < 1e-5);
        assert_true(fabs(brute[out[i].id] - out[i].score) < 1e-5);
        if (i) assert_true(out[i - 1].score >= out[i].score);
    }
}

static void test_nearest_brute_force(void **state) {
    (void)state;
    SenseStore *s = open_rw();
    for (int x = 3; x < V; x += 41) {
        for (int l = 0; l < K; l++) check_nearest(s, x, l, senses + (size_t)x * K * D);
        check_nearest(s, x, -1, senses + (size_t)x * K * D);
    }
    store_close(s);
}

/* ---- vocabulary lookups --------------------------------------------------------------- */

static void test_word_lookup(void **state) {
    (void)state;
    SenseStore *s = open_rw();
    BpError err = {0};
    StoreWord w;
    assert_int_equal(store_resolve_word(s, "bank", &w, &err), 0);  /* " bank" first */
    assert_int_equal(w.n_tokens, 1);
    assert_int_equal(w.tokens[0], 259);
    assert_int_equal(store_resolve_word(s, "#281", &w, &err), 0);
    assert_int_equal(w.tokens[0], 281);
    assert_string_equal(store_token_text(s, 281), "bank");
    /* a word of several tokens: " banker" -> " bank" "er" */
    assert_int_equal(store_resolve_word(s, "banker", &w, &err), 0);
    assert_int_equal(w.n_tokens, 2);
    assert_int_equal(w.tokens[0], 259);
    assert_string_equal(store_token_text(s, w.tokens[1]), "er");
    float avg[K * D];
    assert_int_equal(store_word_senses(s, &w, avg, &err), 0);
    for (int i = 0; i < K * D; i++) {
        float want = (float)(((double)senses[259 * K * D + i] + senses[(size_t)w.tokens[1] * K * D + i]) / 2);
        assert_float_equal(avg[i], want, 1e-6);
    }
    int tok;
    assert_int_equal(store_resolve_token(s, "banker", &tok, &err), -1);
    assert_non_null(strstr(err.msg, "not one token"));
    assert_int_equal(store_resolve_token(s, "#999", &tok, &err), -1);
    assert_non_null(strstr(err.msg, "out of range"));
    /* type-ahead: "ba" finds " ba", "ba", " ban", "ban", ... shortest first */
    int ids[8];
    int n = store_prefix_search(s, "ba", ids, 8);
    assert_int_equal(n, 6);
    for (int i = 0; i < n; i++) assert_int_equal(strncmp(store_token_text(s, ids[i]) + (store_token_text(s, ids[i])[0] == ' '), "ba", 2), 0);
    assert_true(strlen(store_token_text(s, ids[5])) >= strlen(store_token_text(s, ids[0])));
    /* closest entries of a typo */
    n = store_closest_tokens(s, "rivers", ids, 3);
    assert_true(n >= 1);
    assert_string_equal(store_token_text(s, ids[0]), " river");
    n = store_closest_tokens(s, "bnak", ids, 2);  /* a swap of two letters is one edit */
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 259);
    assert_int_equal(ids[1], 281);
    store_close(s);
}

/* ---- Spearman ------------------------------------------------------------------------- */

static void test_spearman(void **state) {
    (void)state;
    double x[] = {1, 2, 2, 3, 4, 6}, y[] = {10, 20, 30, 30, 50, 40}, ranks[6];
    average_ranks(x, 6, ranks);
    assert_float_equal(ranks[1], 2.5, 0);
    assert_float_equal(ranks[2], 2.5, 0);
    assert_float_equal(ranks[5], 6, 0);
    /* ranks 1 2.5 2.5 4 5 6 vs 1 2 3.5 3.5 6 5: 15.25 / 17 */
    assert_float_equal(spearman(x, y, 6), 15.25 / 17.0, 1e-12);
    double up[] = {1, 2, 3}, down[] = {9, 5, 1}, flat[] = {2, 2, 2};
    assert_float_equal(spearman(up, up, 3), 1.0, 1e-12);
    assert_float_equal(spearman(up, down, 3), -1.0, 1e-12);
    assert_true(isnan(spearman(up, flat, 3)));
    assert_true(isnan(spearman(up, up, 1)));
}

/* ---- edits and their effect on the logits -------------------------------------------- */

/* logits after the one-token context x, with the edits in force in the database */
static void logits_for(int x, int with_edits, float *out) {
    InferState st;
    BpError err = {0};
    assert_int_equal(infer_build(&st, &model, 4, &err), 0);
    SenseEdits edits = {0};
    if (with_edits) {
        assert_int_equal(sense_edits_load(dbpath, &model, &edits, &err), 0);
        infer_set_edits(&st, &edits);
    }
    infer_reset(&st);
    const float *logits = infer_step(&st, x, &err);
    assert_non_null(logits);
    memcpy(out, logits, V * sizeof(float));
    infer_free(&st);
    sense_edits_free(&edits);
}

/* With one token of context every alpha is 1, so the logits move by E (C' - C) for a
 * vector edit and by (w' - w) E C for a weight edit, summed over the changed senses. */
static void check_logit_change(SenseStore *s, int x, const EditPreview *p) {
    float before[V], after[V];
    logits_for(x, 0, before);
    logits_for(x, 1, after);
    double max_change = 0;
    for (int y = 0; y < V; y++) {
        double want = 0;
        for (int c = 0; c < p->count; c++) {
            const SenseChange *ch = &p->changes[c];
            for (int i = 0; i < D; i++)
                want += (double)model.params.wte[(size_t)y * D + i] *
                        ((double)ch->weight_after * ch->vector_after[i] - (double)ch->weight_before * ch->vector_before[i]);
        }
        assert_true(fabs((after[y] - before[y]) - want) <= 1e-4 * (1 + fabs(want)));
        if (fabs(want) > max_change) max_change = fabs(want);
    }
    assert_true(max_change > 0.1);  /* the edit really moved the logits */
    (void)s;
}

static void commit_and_check(SenseStore *s, const EditRequest *req) {
    BpError err = {0};
    EditPreview p;
    assert_int_equal(store_edit_preview(s, req, &p, &err), 0);
    int64_t id = 0;
    if (store_edit_commit(s, req, &id, &err)) fail_msg("%s", err.msg);
    assert_true(id > 0);
    check_logit_change(s, req->token, &p);
    /* the vector in force is the preview's */
    for (int c = 0; c < p.count; c++) {
        float v[D];
        assert_int_equal(store_sense_vector(s, p.changes[c].token, p.changes[c].sense, STORE_IN_FORCE, v, &err), 0);
        assert_memory_equal(v, p.changes[c].vector_after, sizeof v);
    }
    store_edit_preview_free(&p);
    undo_all(s);
}

static void test_edit_scale(void **state) {
    (void)state;
    SenseStore *s = open_rw();
    EditRequest r = {.kind = EDIT_SCALE, .token = 259, .sense = 2, .value = -3.0f};
    commit_and_check(s, &r);
    store_close(s);
}

static void test_edit_weight(void **state) {
    (void)state;
    SenseStore *s = open_rw();
    EditRequest r = {.kind = EDIT_WEIGHT, .token = 259, .sense = 1, .value = 4.0f};
    commit_and_check(s, &r);
    r.value = 0.0f;  /* the paper's removal of a sense */
    commit_and_check(s, &r);
    store_close(s);
}

static void test_edit_copy(void **state) {
    (void)state;
    SenseStore *s = open_rw();
    EditRequest r = {.kind = EDIT_COPY, .token = 262, .sense = 0, .src_token = 268, .src_sense = 3};
    commit_and_check(s, &r);
    store_close(s);
}

static void test_edit_replace(void **state) {
    (void)state;
    SenseStore *s = open_rw();
    /* " bank": replace " money" (269) by " river" (264) in every sense */
    EditRequest r = {.kind = EDIT_REPLACE, .token = 259, .old_token = 269, .new_token = 264};
    BpError err = {0};
    EditPreview p;
    assert_int_equal(store_edit_preview(s, &r, &p, &err), 0);
    assert_int_equal(p.count, K);
    /* the paper's formula, checked independently */
    for (int l = 0; l < K; l++) {
        double want[D];
        expected_replace(259, l, 269, 264, want);
        for (int i = 0; i < D; i++) assert_float_equal(p.changes[l].vector_after[i], want[i], 1e-5);
    }
    store_edit_preview_free(&p);
    commit_and_check(s, &r);
    store_close(s);
}

static void test_edit_reset_and_undo(void **state) {
    (void)state;
    SenseStore *s = open_rw();
    BpError err = {0};
    const float *exported = senses + ((size_t)266 * K + 3) * D;
    EditRequest scale = {.kind = EDIT_SCALE, .token = 266, .sense = 3, .value = 0.37f};
    EditRequest weight = {.kind = EDIT_WEIGHT, .token = 266, .sense = 3, .value = 2.5f};
    int64_t a, b, c;
    assert_int_equal(store_edit_commit(s, &scale, &a, &err), 0);
    assert_int_equal(store_edit_commit(s, &weight, &b, &err), 0);
    /* undoing the first while the second changed the same sense is refused */
    assert_int_equal(store_edit_undo(s, a, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "undo it first"));
    SenseEdits e;
    assert_int_equal(store_sense_edits(s, &e, &err), 0);
    assert_int_equal(e.count, 1);
    assert_int_equal(e.items[0].token, 266);
    assert_float_equal(e.items[0].weight, 2.5, 0);
    assert_non_null(e.items[0].vector);
    assert_float_equal(e.items[0].vector[5], 0.37f * exported[5], 0);
    sense_edits_free(&e);
    /* reset: back to the export, and the logits with edits equal those without */
    EditRequest reset = {.kind = EDIT_RESET, .token = 266, .sense = 3};
    assert_int_equal(store_edit_commit(s, &reset, &c, &err), 0);
    float v[D], before[V], after[V];
    assert_int_equal(store_sense_vector(s, 266, 3, STORE_IN_FORCE, v, &err), 0);
    assert_memory_equal(v, exported, sizeof v);
    logits_for(266, 0, before);
    logits_for(266, 1, after);
    assert_memory_equal(before, after, sizeof before);
    assert_int_equal(store_edit_commit(s, &reset, NULL, &err), -1);  /* nothing to reset */
    /* undo, undo, undo: bit for bit at each step */
    int64_t id;
    assert_int_equal(store_edit_undo(s, 0, &id, &err), 0);
    assert_int_equal(id, c);
    SenseInfo info;
    assert_int_equal(store_sense_info(s, 266, 3, &info, &err), 0);
    assert_float_equal(info.weight, 2.5, 0);
    assert_int_equal(store_edit_undo(s, 0, &id, &err), 0);
    assert_int_equal(store_sense_vector(s, 266, 3, STORE_IN_FORCE, v, &err), 0);
    for (int i = 0; i < D; i++) assert_float_equal(v[i], 0.37f * exported[i], 0);
    assert_int_equal(store_edit_undo(s, a, &id, &err), 0);
    assert_int_equal(store_sense_vector(s, 266, 3, STORE_IN_FORCE, v, &err), 0);
    assert_memory_equal(v, exported, sizeof v);
    assert_int_equal(store_sense_edits(s, &e, &err), 0);
    assert_int_equal(e.count, 0);
    assert_int_equal(store_edit_undo(s, a, &id, &err), -1);
    assert_non_null(strstr(err.msg, "already undone"));
    assert_int_equal(store_edit_undo(s, 0, &id, &err), -1);
    /* the history keeps every edit, marked */
    EditRecord *list;
    int count;
    assert_int_equal(store_edit_list(s, &list, &count, &err), 0);
    assert_true(count >= 3);
    assert_int_equal(list[count - 1].id, c);
    assert_int_equal(list[count - 1].kind, EDIT_RESET);
    assert_int_equal(list[count - 1].undone, 1);
    free(list);
    store_close(s);
}

static void test_nearest_sees_edits(void **state) {
    (void)state;
    SenseStore *s = open_rw();
    BpError err = {0};
    /* copy " cat" sense 1 into " dog" sense 1: " dog" becomes the nearest of " cat" */
    EditRequest r = {.kind = EDIT_COPY, .token = 278, .sense = 1, .src_token = 275, .src_sense = 1};
    assert_int_equal(store_edit_commit(s, &r, NULL, &err), 0);
    float query[K * D];
    memcpy(query, senses + (size_t)275 * K * D, sizeof query);
    WordScore out[3];
    assert_int_equal(store_nearest(s, query, 1, 275, 3, out, &err), 3);
    assert_int_equal(out[0].id, 278);
    assert_float_equal(out[0].score, 1.0, 1e-5);
    /* and the top words of the edited sense are recomputed */
    WordScore top[5], src[5];
    assert_int_equal(store_sense_words(s, 278, 1, 5, top, NULL, &err), 5);
    assert_int_equal(store_sense_words(s, 275, 1, 5, src, NULL, &err), 5);
    for (int i = 0; i < 5; i++) assert_int_equal(top[i].id, src[i].id);
    undo_all(s);
    store_close(s);
}

/* ---- bad input ------------------------------------------------------------------------- */

static void test_bad_edits(void **state) {
    (void)state;
    SenseStore *s = open_rw();
    BpError err = {0};
    EditRequest r = {.kind = EDIT_SCALE, .token = 259, .sense = K, .value = 2};
    assert_int_equal(store_edit_commit(s, &r, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "sense 4 out of range"));
    r.sense = 0;
    r.value = NAN;
    assert_int_equal(store_edit_commit(s, &r, NULL, &err), -1);
    r = (EditRequest){.kind = EDIT_WEIGHT, .token = 259, .sense = 0, .value = -1};
    assert_int_equal(store_edit_commit(s, &r, NULL, &err), -1);
    r = (EditRequest){.kind = EDIT_SCALE, .token = V, .sense = 0, .value = 2};
    assert_int_equal(store_edit_commit(s, &r, NULL, &err), -1);
    r = (EditRequest){.kind = EDIT_REPLACE, .token = 259, .old_token = 264, .new_token = 264};
    assert_int_equal(store_edit_commit(s, &r, NULL, &err), -1);
    StoreWord w;
    assert_int_equal(store_resolve_word(s, "", &w, &err), -1);
    EditRecord *list;
    int count;
    assert_int_equal(store_edit_list(s, &list, &count, &err), 0);
    int in_force = 0;
    for (int i = 0; i < count; i++) in_force += !list[i].undone;
    assert_int_equal(in_force, 0);  /* nothing was written */
    free(list);
    store_close(s);
    /* a read-only store cannot edit */
    assert_int_equal(store_open(&s, dbpath, STORE_READ_ONLY, &err), 0);
    r = (EditRequest){.kind = EDIT_SCALE, .token = 259, .sense = 0, .value = 2};
    assert_int_equal(store_edit_commit(s, &r, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "read-only"));
    store_close(s);
}

static void test_not_our_database(void **state) {
    (void)state;
    char path[400];
    BpError err = {0};
    SenseStore *s;
    /* a text file */
    snprintf(path, sizeof path, "%s/notes.txt", tmpdir);
    assert_int_equal(write_file_atomic(path, "hello, this is not a database\n", 30, &err), 0);
    assert_int_equal(store_open(&s, path, STORE_READ_ONLY, &err), -1);
    assert_non_null(strstr(err.msg, "not a sense database"));
    assert_non_null(strstr(err.msg, "notes.txt"));
    /* export refuses to overwrite it, even with force */
    assert_int_equal(export_to(&model, path, 1, &err), -1);
    assert_non_null(strstr(err.msg, "not overwriting"));
    char *data;
    size_t len;
    assert_int_equal(read_file(path, &data, &len, &err), 0);
    assert_int_equal(len, 30);
    free(data);
    /* some other SQLite database */
    snprintf(path, sizeof path, "%s/other.db", tmpdir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1);", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_open(&s, path, STORE_READ_WRITE, &err), -1);
    assert_non_null(strstr(err.msg, "not a sense database"));
    SenseEdits e;
    assert_int_equal(sense_edits_load(path, &model, &e, &err), -1);
    /* a missing file */
    snprintf(path, sizeof path, "%s/missing.db", tmpdir);
    assert_int_equal(store_open(&s, path, STORE_READ_ONLY, &err), -1);
    assert_false(file_exists(path));
}

static void test_other_model(void **state) {
    (void)state;
    Backpack other;
    build_model(&other, 99);
    BpError err = {0};
    SenseEdits e;
    assert_int_equal(sense_edits_load(dbpath, &other, &e, &err), -1);
    assert_non_null(strstr(err.msg, "another model"));
    /* re-export over it: refused, then replaced cleanly with force */
    char path[400];
    snprintf(path, sizeof path, "%s/copy.db", tmpdir);
    assert_int_equal(export_to(&model, path, 0, &err), 0);
    SenseStore *s;
    assert_int_equal(store_open(&s, path, STORE_READ_WRITE, &err), 0);
    EditRequest r = {.kind = EDIT_SCALE, .token = 259, .sense = 0, .value = 2};
    assert_int_equal(store_edit_commit(s, &r, NULL, &err), 0);
    store_close(s);
    assert_int_equal(export_to(&other, path, 0, &err), -1);
    assert_non_null(strstr(err.msg, "another model"));
    assert_int_equal(export_to(&model, path, 0, &err), -1);
    assert_non_null(strstr(err.msg, "already holds"));
    /* the leftover of a killed export (its process is gone) is removed by the next one */
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0);
    char stale[500];
    snprintf(stale, sizeof stale, "%s.tmp-%d", path, (int)child);
    assert_int_equal(write_file_atomic(stale, "partial", 7, &err), 0);
    assert_int_equal(export_to(&other, path, 1, &err), 0);
    assert_false(file_exists(stale));
    assert_int_equal(sense_edits_load(path, &other, &e, &err), 0);
    assert_int_equal(e.count, 0);  /* the old edits went with the old model */
    sense_edits_free(&e);
    assert_int_equal(sense_edits_load(path, &model, &e, &err), -1);
    /* a different shape */
    Backpack wide;
    BackpackConfig c = other.config;
    c.num_senses = 2;
    assert_int_equal(backpack_build(&wide, &c, &err), 0);
    backpack_init_weights(&wide, 1);
    assert_int_equal(sense_edits_load(dbpath, &wide, &e, &err), -1);
    assert_non_null(strstr(err.msg, "shape"));
    backpack_free(&wide);
    backpack_free(&other);
    /* an export that fails leaves nothing behind */
    snprintf(path, sizeof path, "%s/no/such/dir/x.db", tmpdir);
    assert_int_equal(export_to(&model, path, 0, &err), -1);
    assert_false(file_exists(path));
}

static void test_locked_database(void **state) {
    (void)state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    SenseStore *s = open_rw();  /* readers still open it (WAL) */
    store_set_busy_timeout(s, 100);
    BpError err = {0};
    EditRequest r = {.kind = EDIT_SCALE, .token = 259, .sense = 0, .value = 2};
    assert_int_equal(store_edit_commit(s, &r, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "locked"));
    assert_int_equal(store_edit_undo(s, 0, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "locked"));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    SenseEdits e;
    assert_int_equal(store_sense_edits(s, &e, &err), 0);
    assert_int_equal(e.count, 0);
    store_close(s);
}

/* The pairs file of `backpack similarity`: missing words reported, bad lines named
 * (the command itself: tests/test_cli_senses.c). */
static void test_similarity_file(void **state) {
    (void)state;
    char pairs[400];
    snprintf(pairs, sizeof pairs, "%s/pairs.tsv", tmpdir);
    const char *good = "# word word score\nbank\triver\t3.5\nbank\tmoney\t8\ncat\tdog\t7\n\nthe\tcat\t1\n"
                       "zzqqxx\tcat\t2\n";
    BpError err = {0};
    assert_int_equal(write_file_atomic(pairs, good, strlen(good), &err), 0);
    SenseStore *s = open_rw();
    SimilarityResult res;
    assert_int_equal(similarity_evaluate(s, pairs, 1, &res, &err), 0);
    assert_int_equal(res.pairs, 5);
    assert_int_equal(res.n_senses, K);
    assert_int_equal(res.used + res.missing, 5);
    assert_true(res.missing >= 1);
    assert_non_null(strstr(res.missing_words, "'zzqqxx'"));
    for (int c = 0; c <= K; c++) assert_true(isnan(res.spearman[c]) || fabs(res.spearman[c]) <= 1.0 + 1e-12);
    similarity_result_free(&res);
    const char *bad = "bank\triver\t3.5\ncat\tdog\n";
    assert_int_equal(write_file_atomic(pairs, bad, strlen(bad), &err), 0);
    assert_int_equal(similarity_evaluate(s, pairs, 0, &res, &err), -1);
    assert_non_null(strstr(err.msg, "pairs.tsv:2:"));
    const char *bad_score = "bank\triver\tlots\n";
    assert_int_equal(write_file_atomic(pairs, bad_score, strlen(bad_score), &err), 0);
    assert_int_equal(similarity_evaluate(s, pairs, 0, &res, &err), -1);
    assert_non_null(strstr(err.msg, "pairs.tsv:1:"));
    store_close(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_export_round_trip),
        cmocka_unit_test(test_top_words_brute_force),
        cmocka_unit_test(test_nearest_brute_force),
        cmocka_unit_test(test_word_lookup),
        cmocka_unit_test(test_spearman),
        cmocka_unit_test(test_edit_scale),
        cmocka_unit_test(test_edit_weight),
        cmocka_unit_test(test_edit_copy),
        cmocka_unit_test(test_edit_replace),
        cmocka_unit_test(test_edit_reset_and_undo),
        cmocka_unit_test(test_nearest_sees_edits),
        cmocka_unit_test(test_bad_edits),
        cmocka_unit_test(test_not_our_database),
        cmocka_unit_test(test_other_model),
        cmocka_unit_test(test_locked_database),
        cmocka_unit_test(test_similarity_file),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
