/* Steering (senses/steer.h): the topic edit's effect on the logits equals the formula
 * applied by hand, undo restores the database bit for bit, the debias fit is
 * deterministic and its shortcut equals full forwards, the Transformer baseline leaves
 * the model as it was, and bad lists get one-line errors naming file and line.
 * A tiny random Backpack (d = 16, k = 4) and a byte-level BPE trained by the test on a
 * few sentences, so that the words used are single tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "../common/hash.h"
#include "../model/infer.h"
#include "../senses/edits.h"
#include "../senses/steer.h"
#include "../senses/store.h"

enum { D = 16, K = 4, CTX = 64 };

static char tokdir[300], dbpath[300];
static Tokenizer *tok;
static Backpack model;
static int V;

static const char *CORPUS_LINES[] = {
    "The nurse came into the room. When she said that he was there, the cook laughed.\n",
    "The cook came into the room. Then he said that she was with the clerk.\n",
    "I went to the talk to the clerk. What the team said about the game was that the ball was lost.\n",
    "My nurse said that the game was good and the team won. My cook believes that he can play.\n",
};

static void write_text(const char *path, const char *text, size_t len) {
    BpError err = {{0}};
    if (write_file_atomic(path, text, len, &err)) fail_msg("%s", err.msg);
}

static void path_in_tmp(char *out, size_t size, const char *name) { snprintf(out, size, "%s/%s", tmp.path, name); }

static int group_setup(void **state) {
    (void)state;
    if (temp_dir_create(&tmp, "steer") != 0) return -1;
    snprintf(tokdir, sizeof tokdir, "%s/tok", tmp.path);
    char corpus[300];
    path_in_tmp(corpus, sizeof corpus, "corpus.txt");
    FILE *f = fopen(corpus, "w");
    if (!f) return -1;
    for (int rep = 0; rep < 40; rep++)
        for (size_t i = 0; i < sizeof CORPUS_LINES / sizeof *CORPUS_LINES; i++) fputs(CORPUS_LINES[i], f);
    fclose(f);
    BpError err = {{0}};
    const char *files[] = {corpus};
    if (tokenizer_train(files, 1, 420, tokdir, 0, &err) || tokenizer_load(&tok, tokdir, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    V = tokenizer_vocab_size(tok);
    BackpackConfig c = {.arch = ARCH_BACKPACK, .vocab_size = V, .n_embd = D, .n_layer = 1, .n_head = 2,
                        .num_senses = K, .n_positions = CTX, .sense_intermediate_scale = 4};
    if (backpack_build(&model, &c, &err)) return -1;
    backpack_init_weights(&model, 77);
    /* O(1) logits, so that the tolerances below mean something */
    for (size_t i = 0; i < (size_t)V * D; i++) model.params.wte[i] *= 50.0f;
    for (size_t i = 0; i < (size_t)4 * D * K * D; i++) model.params.sense_final_projw[i] *= 50.0f;
    snprintf(dbpath, sizeof dbpath, "%s/senses.db", tmp.path);
    ExportOptions o = {.top_n = 20};
    if (store_export(&model, tokdir, dbpath, &o, &err)) {
        fprintf(stderr, "export: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    backpack_free(&model);
    tokenizer_free(tok);
    temp_dir_remove(&tmp);
    return 0;
}

static SenseStore *open_rw(void) {
    SenseStore *s = NULL;
    BpError err = {{0}};
    if (store_open(&s, dbpath, STORE_READ_WRITE, &err)) fail_msg("%s", err.msg);
    return s;
}

static void undo_all(SenseStore *s) {
    BpError err;
    while (store_edit_undo(s, 0, NULL, &err) == 0) {}
}

static void read_list(const char *name, const char *text, SteerWords *w) {
    char path[300];
    path_in_tmp(path, sizeof path, name);
    write_text(path, text, strlen(text));
    BpError err = {{0}};
    if (steer_read_words(path, tok, w, NULL, &err)) fail_msg("%s", err.msg);
}

/* A hash of every row of the tables that hold the state (not the edit history). */
static uint64_t state_hash(void) {
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    static const char *const queries[] = {
        "SELECT token, sense, weight, vector FROM edited_senses ORDER BY token, sense",
        "SELECT * FROM senses ORDER BY id",
        "SELECT * FROM meta ORDER BY key",
    };
    uint64_t h = 1469598103934665603ULL;
    int rows = 0;
    for (size_t q = 0; q < sizeof queries / sizeof *queries; q++) {
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(db, queries[q], -1, &st, NULL), SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
            rows++;
            for (int c = 0; c < sqlite3_column_count(st); c++) {
                uint64_t cell[2] = {(uint64_t)sqlite3_column_type(st, c),
                                    hash64(sqlite3_column_blob(st, c), (size_t)sqlite3_column_bytes(st, c))};
                h = hash64(cell, sizeof cell) ^ (h * 0x100000001b3ULL);
            }
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    assert_true(rows > V);
    return h;
}

/* ---- topic ----------------------------------------------------------------------------- */

static void plan_for(SenseStore *s, float strength, SteerWords *topic, SteerPlan *plan) {
    BpError err = {{0}};
    float *scores = malloc((size_t)V * K * sizeof *scores);
    if (steer_topic_scores(s, topic, scores, &err)) fail_msg("%s", err.msg);
    if (steer_topic_plan(scores, V, K, strength, plan, &err)) fail_msg("%s", err.msg);
    /* the rule: exactly the senses above the 60th percentile, banded */
    int above = 0;
    for (int i = 0; i < V * K; i++) above += scores[i] > plan->cut[0];
    assert_int_equal(plan->count, above);
    assert_true(fabs((double)plan->count / (V * K) - 0.4) < 0.01);
    for (int i = 0; i < plan->count; i++) {
        float sc = scores[(size_t)plan->items[i].token * K + plan->items[i].sense];
        int band = sc > plan->cut[2] ? 2 : sc > plan->cut[1] ? 1 : 0;
        assert_true(plan->items[i].factor == plan->factors[band]);
    }
    free(scores);
}

static void test_topic_factors(void **state) {
    (void)state;
    float f[3];
    steer_topic_factors(0, f);
    assert_true(f[0] == 1 && f[1] == 1 && f[2] == 1);
    steer_topic_factors(2, f);  /* the paper's strength 2 */
    assert_true(fabsf(f[0] - 1.5f) < 1e-6f && fabsf(f[1] - 2.2f) < 1e-6f && fabsf(f[2] - 2.2f) < 1e-6f);
    steer_topic_factors(3, f);
    assert_true(fabsf(f[0] - 3.0f) < 1e-6f && fabsf(f[2] - 3.3f) < 1e-6f);
    steer_topic_factors(0.5f, f);  /* halfway between 1 and the paper's strength 1 */
    assert_true(fabsf(f[0] - 1.15f) < 1e-6f && fabsf(f[2] - 1.25f) < 1e-6f);
}

/* The logits after every token of a text, with the stored edits in force, equal the
 * unedited model's contributions alpha_l[i, j] E C(x_j)_l re-weighted by hand. */
static void test_topic_edit_is_exact(void **state) {
    (void)state;
    SenseStore *s = open_rw();
    undo_all(s);
    SteerWords topic;
    read_list("sports.txt", "# a topic\ngame\nteam\n\nball\n", &topic);
    assert_int_equal(topic.count, 3);
    SteerPlan plan;
    plan_for(s, 2.0f, &topic, &plan);
    BpError err = {{0}};
    int64_t id;
    if (steer_plan_commit(s, &plan, "steer topic test", &id, &err)) fail_msg("%s", err.msg);
    /* one edit row for the whole group */
    EditRecord *list;
    int n_list;
    assert_int_equal(store_edit_list(s, &list, &n_list, &err), 0);
    assert_int_equal(n_list, 1);
    assert_int_equal(list[0].id, id);
    free(list);
    float *factor = malloc((size_t)V * K * sizeof *factor);
    for (int i = 0; i < V * K; i++) factor[i] = 1;
    for (int i = 0; i < plan.count; i++) factor[plan.items[i].token * K + plan.items[i].sense] = plan.items[i].factor;

    SenseEdits edits;
    assert_int_equal(sense_edits_load(dbpath, &model, &edits, &err), 0);
    assert_int_equal(edits.count, plan.count);
    InferState plain, edited;
    assert_int_equal(infer_build(&plain, &model, CTX, &err), 0);
    assert_int_equal(infer_build(&edited, &model, CTX, &err), 0);
    infer_set_edits(&edited, &edits);
    int *ids = NULL;
    size_t n = 0, cap = 0;
    const char *text = "The nurse said that the team won the game. When she";
    assert_int_equal(tokenizer_encode(tok, text, strlen(text), &ids, &n, &cap, &err), 0);
    double worst = 0, moved = 0;
    for (size_t t = 0; t < n; t++) {
        const float *want_base = infer_step(&plain, ids[t], &err);
        const float *got = infer_step(&edited, ids[t], &err);
        assert_non_null(want_base);
        assert_non_null(got);
        const float *alpha = infer_alpha(&plain), *cs = infer_context_senses(&plain);
        for (int y = 0; y < V; y++) {
            double want = 0;
            for (size_t j = 0; j <= t; j++)
                for (int l = 0; l < K; l++) {
                    const float *c = cs + (j * K + l) * D;
                    double dot = 0;
                    for (int i = 0; i < D; i++) dot += (double)model.params.wte[(size_t)y * D + i] * c[i];
                    want += factor[ids[j] * K + l] * alpha[(size_t)l * plain.max_len + j] * dot;
                }
            double diff = fabs(got[y] - want);
            if (diff / (1 + fabs(want)) > worst) worst = diff / (1 + fabs(want));
            if (fabs(got[y] - want_base[y]) > moved) moved = fabs(got[y] - want_base[y]);
        }
    }
    assert_true(worst < 1e-4);
    assert_true(moved > 0.1);  /* the edit really changed the predictions */
    free(ids);
    infer_free(&plain);
    infer_free(&edited);
    sense_edits_free(&edits);
    free(factor);
    steer_plan_free(&plan);
    steer_words_free(&topic);
    undo_all(s);
    store_close(s);
}

/* A steering edit on top of an earlier edit, then undo: the state tables are the same
 * bytes as before it; undoing the earlier edit too gives the export back. */
static void test_undo_restores_bit_for_bit(void **state) {
    (void)state;
    SenseStore *s = open_rw();
    undo_all(s);
    BpError err = {{0}};
    uint64_t exported = state_hash();
    int game = steer_word_token(tok, "game", &err);
    assert_true(game >= 0);
    EditRequest earlier = {.kind = EDIT_WEIGHT, .token = game, .sense = 1, .value = 0.25f};
    int64_t first, group, undone;
    assert_int_equal(store_edit_commit(s, &earlier, &first, &err), 0);
    uint64_t before = state_hash();
    assert_true(before != exported);
    SteerWords topic;
    read_list("topic2.txt", "game\nball\n", &topic);
    SteerPlan plan;
    plan_for(s, 3.0f, &topic, &plan);
    /* the earlier weight is multiplied, not replaced */
    int found = 0;
    for (int i = 0; i < plan.count; i++)
        if (plan.items[i].token == game && plan.items[i].sense == 1) found = i + 1;
    assert_int_equal(steer_plan_commit(s, &plan, "steer", &group, &err), 0);
    SenseInfo info;
    assert_int_equal(store_sense_info(s, game, 1, &info, &err), 0);
    assert_true(info.weight == (found ? 0.25f * plan.items[found - 1].factor : 0.25f));
    assert_true(state_hash() != before);
    assert_int_equal(store_edit_undo(s, 0, &undone, &err), 0);
    assert_int_equal(undone, group);
    assert_true(state_hash() == before);
    assert_int_equal(store_edit_undo(s, 0, &undone, &err), 0);
    assert_int_equal(undone, first);
    assert_true(state_hash() == exported);
    steer_plan_free(&plan);
    steer_words_free(&topic);
    store_close(s);
}

/* ---- debiasing ----------------------------------------------------------------------- */

static void test_debias_fit(void **state) {
    (void)state;
    SenseStore *s = open_rw();
    undo_all(s);
    BpError err = {{0}};
    SteerWords prof;
    read_list("prof.txt", "nurse\ncook\nclerk\n", &prof);
    assert_int_equal(prof.count, 3);
    SteerTemplates t;
    assert_int_equal(steer_read_templates(NULL, &t, &err), 0);
    assert_int_equal(t.n_train, 5);
    assert_int_equal(t.n_test, 13);
    int he = steer_word_token(tok, "he", &err), she = steer_word_token(tok, "she", &err);
    assert_true(he >= 0 && she >= 0);
    BiasPairs train, test;
    assert_int_equal(steer_bias_pairs(&model, tok, &prof, t.train, t.n_train, he, she, &train, NULL, &err), 0);
    assert_int_equal(steer_bias_pairs(&model, tok, &prof, t.test, t.n_test, he, she, &test, NULL, &err), 0);
    assert_int_equal(train.count, 15);
    int sense = steer_pick_sense(&train);
    double w = steer_fit_sense_weight(&train, sense, 1.0);
    /* deterministic, bit for bit */
    assert_true(steer_fit_sense_weight(&train, sense, 1.0) == w);
    /* without the regularizer the fit minimizes the bias alone */
    double w0 = steer_fit_sense_weight(&train, sense, 0.0);
    for (int i = 0; i <= 300; i++) assert_true(steer_bias(&train, sense, w0) <= steer_bias(&train, sense, i * 0.01) + 1e-12);
    assert_true(w >= 0 && w <= STEER_MAX_WEIGHT);
    /* no grid point beats the fit on the paper's objective */
    double best = steer_bias(&train, sense, w) + fabs(1 - w);
    for (int i = 0; i <= 300; i++)
        assert_true(best <= steer_bias(&train, sense, i * 0.01) + fabs(1 - i * 0.01) + 1e-12);
    /* the picked sense has the largest mean |delta| */
    for (int l = 0; l < K; l++) {
        double a = 0, b = 0;
        for (int i = 0; i < train.count; i++) a += fabs(train.pairs[i].delta[l]), b += fabs(train.pairs[i].delta[sense]);
        assert_true(a <= b);
    }
    /* before: the shortcut at w = 1 is the full forward's bias */
    double fwd_before, fwd_after;
    assert_int_equal(steer_bias_forward(&model, tok, &prof, t.test, t.n_test, he, she, &fwd_before, &err), 0);
    assert_true(fabs(fwd_before - steer_bias(&test, -1, 1)) < 1e-4 * fwd_before);
    assert_true(fwd_before > 1);
    /* after: write the edit, run full forwards with it in force */
    int64_t id;
    assert_int_equal(steer_debias_commit(s, &prof, sense, w, "debias", &id, &err), 0);
    SenseEdits edits;
    assert_int_equal(sense_edits_load(dbpath, &model, &edits, &err), 0);
    assert_int_equal(edits.count, w == 1.0 ? 0 : prof.count);
    model.edits = &edits;
    assert_int_equal(steer_bias_forward(&model, tok, &prof, t.test, t.n_test, he, she, &fwd_after, &err), 0);
    model.edits = NULL;
    assert_true(fabs(fwd_after - steer_bias(&test, sense, w)) < 1e-4 * fwd_after);
    /* removing the sense entirely is also exact */
    double at0 = steer_bias(&test, sense, 0);
    assert_true(isfinite(at0) && at0 >= 1);
    sense_edits_free(&edits);
    steer_bias_pairs_free(&train);
    steer_bias_pairs_free(&test);
    steer_templates_free(&t);
    steer_words_free(&prof);
    undo_all(s);
    store_close(s);
}

static void test_projection_baseline(void **state) {
    (void)state;
    BpError err = {{0}};
    Backpack tf;
    BackpackConfig c = {.arch = ARCH_TRANSFORMER, .vocab_size = V, .n_embd = D, .n_layer = 1, .n_head = 2,
                        .num_senses = 0, .n_positions = CTX, .sense_intermediate_scale = 4};
    assert_int_equal(backpack_build(&tf, &c, &err), 0);
    backpack_init_weights(&tf, 5);
    for (size_t i = 0; i < (size_t)V * D; i++) tf.params.wte[i] *= 50.0f;
    char before[17], after[17];
    backpack_weights_hash(&tf, before);
    SteerWords prof;
    read_list("prof2.txt", "nurse\ncook\n", &prof);
    SteerTemplates t;
    assert_int_equal(steer_read_templates(NULL, &t, &err), 0);
    int he = steer_word_token(tok, "he", &err), she = steer_word_token(tok, "she", &err);
    ProjectionResult r1, r2;
    if (steer_projection_baseline(&tf, tok, &prof, &t, he, she, 1.0, &r1, &err)) fail_msg("%s", err.msg);
    backpack_weights_hash(&tf, after);
    assert_string_equal(before, after);
    assert_int_equal(steer_projection_baseline(&tf, tok, &prof, &t, he, she, 1.0, &r2, &err), 0);
    assert_true(r1.weight == r2.weight && r1.bias_after == r2.bias_after);
    /* the fit never makes the training objective worse than leaving the model alone */
    assert_true(r1.train_after + fabs(1 - r1.weight) <= r1.train_before + 1e-9);
    double fwd;
    assert_int_equal(steer_bias_forward(&tf, tok, &prof, t.test, t.n_test, he, she, &fwd, &err), 0);
    assert_true(fabs(fwd - r1.bias_before) < 1e-9 * fwd);
    /* Backpack pairs refuse a Transformer */
    BiasPairs p;
    assert_int_equal(steer_bias_pairs(&tf, tok, &prof, t.train, t.n_train, he, she, &p, NULL, &err), -1);
    steer_templates_free(&t);
    steer_words_free(&prof);
    backpack_free(&tf);
}

/* ---- bad input ----------------------------------------------------------------------- */

static void expect_words_error(const char *name, const char *text, size_t len, const char *want) {
    char path[300];
    path_in_tmp(path, sizeof path, name);
    write_text(path, text, len);
    SteerWords w;
    BpError err = {{0}};
    assert_int_equal(steer_read_words(path, tok, &w, NULL, &err), -1);
    if (!strstr(err.msg, want)) fail_msg("'%s' lacks '%s'", err.msg, want);
    assert_non_null(strstr(err.msg, path));
    assert_null(strchr(err.msg, '\n'));
}

static void expect_templates_error(const char *name, const char *text, const char *want) {
    char path[300];
    path_in_tmp(path, sizeof path, name);
    write_text(path, text, strlen(text));
    SteerTemplates t;
    BpError err = {{0}};
    assert_int_equal(steer_read_templates(path, &t, &err), -1);
    if (!strstr(err.msg, want)) fail_msg("'%s' lacks '%s'", err.msg, want);
    assert_null(strchr(err.msg, '\n'));
}

static void test_bad_lists(void **state) {
    (void)state;
    expect_words_error("two.txt", "game\ngame team\n", 15, "two.txt:2: one word per line");
    expect_words_error("nul.txt", "game\nte\0am\n", 11, "nul.txt:2: contains a NUL byte");
    expect_words_error("utf.txt", "# c\n\n\xff\xfe\n", 7, "utf.txt:3: invalid UTF-8");
    char longline[400];
    memset(longline, 'a', sizeof longline - 1);
    longline[sizeof longline - 1] = 0;
    expect_words_error("long.txt", longline, strlen(longline), "long.txt:1: line longer than");
    expect_words_error("empty.txt", "# only a comment\n\n", 18, "empty.txt: no words");
    expect_words_error("none.txt", "xylophonequartz\nzzqqxxjj\n", 25, "none.txt: none of its 2 words is one token");
    SteerWords w;
    BpError err = {{0}};
    assert_int_equal(steer_read_words("/nonexistent/list.txt", tok, &w, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/list.txt"));

    /* a multi-token word is skipped with a one-line note naming file, line and pieces */
    char path[300], notes_path[300];
    path_in_tmp(path, sizeof path, "mixed.txt");
    path_in_tmp(notes_path, sizeof notes_path, "notes.txt");
    write_text(path, "game\nxylophonequartz\nteam\ngame\n", 31);
    FILE *notes = fopen(notes_path, "w+");
    assert_int_equal(steer_read_words(path, tok, &w, notes, &err), 0);
    assert_int_equal(w.count, 2);
    assert_int_equal(w.skipped, 1);
    rewind(notes);
    char line[512];
    assert_non_null(fgets(line, sizeof line, notes));
    assert_non_null(strstr(line, "mixed.txt:2: 'xylophonequartz' is not one token"));
    assert_non_null(strstr(line, "skipped"));
    assert_null(fgets(line, sizeof line, notes));  /* one line */
    fclose(notes);
    steer_words_free(&w);

    expect_templates_error("t1.txt", "train: The {} came\nfoo: bar {}\n", "t1.txt:2: expected 'train: TEXT'");
    expect_templates_error("t2.txt", "train: The came\n", "t2.txt:1: a template needs exactly one {}");
    expect_templates_error("t3.txt", "test: The {} and {}\n", "t3.txt:1: a template needs exactly one {}");
    expect_templates_error("t4.txt", "train: The {} came\n", "t4.txt: needs at least one 'train:' and one 'test:'");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_factors),
        cmocka_unit_test(test_topic_edit_is_exact),
        cmocka_unit_test(test_undo_restores_bit_for_bit),
        cmocka_unit_test(test_debias_fit),
        cmocka_unit_test(test_projection_baseline),
        cmocka_unit_test(test_bad_lists),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
