/* The sense commands run in process (cli/cmd_senses.c) on the fixture's exported
 * model: their errors, the edit command's parsing (--copy W:L2, --replace, --weight)
 * checked against the stored vectors, and similarity's Spearman values on known ranks.
 * The fixture is tests/senses_fixture.h. */
#include "senses_fixture.h"
#include "../cli/commands.h"

static void test_similarity_command(void **state) {
    (void)state;
    char pairs[400], msg[1024];
    snprintf(pairs, sizeof pairs, "%s/pairs.tsv", tmpdir);
    const char *good = "# word word score\nbank\triver\t3.5\nbank\tmoney\t8\ncat\tdog\t7\n\nthe\tcat\t1\n";
    BpError err = {0};
    assert_int_equal(write_file_atomic(pairs, good, strlen(good), &err), 0);
    char *argv[] = {"similarity", "--db", dbpath, pairs, NULL};
    assert_int_equal(run_captured(cmd_similarity, 4, argv, msg, sizeof msg), 0);
    const char *bad = "bank\triver\t3.5\ncat\tdog\n";
    assert_int_equal(write_file_atomic(pairs, bad, strlen(bad), &err), 0);
    assert_int_equal(run_captured(cmd_similarity, 4, argv, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "pairs.tsv:2:"));
    const char *bad_score = "bank\triver\tlots\n";
    assert_int_equal(write_file_atomic(pairs, bad_score, strlen(bad_score), &err), 0);
    assert_int_equal(run_captured(cmd_similarity, 4, argv, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "pairs.tsv:1:"));
    /* the commands: unknown sense, bad option, unknown word for edit */
    char *nearest[] = {"nearest", "--db", dbpath, "bank", "--sense", "9", NULL};
    assert_int_equal(run_captured(cmd_nearest, 6, nearest, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "sense 9 out of range"));
    char *edit[] = {"edit", "--db", dbpath, "banker", "--sense", "0", "--scale", "2", NULL};
    assert_int_equal(run_captured(cmd_edit, 8, edit, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "closest"));
    char *edit_ok[] = {"edit", "--db", dbpath, "bank", "--sense", "0", "--scale", "2", NULL};
    assert_int_equal(run_captured(cmd_edit, 8, edit_ok, msg, sizeof msg), 0);
    char *undo[] = {"edit", "--db", dbpath, "--undo", NULL};
    assert_int_equal(run_captured(cmd_edit, 4, undo, msg, sizeof msg), 0);
    assert_int_equal(run_captured(cmd_edit, 4, undo, msg, sizeof msg), 1);
    char *senses_cmd[] = {"senses", "--db", dbpath, "river", NULL};
    assert_int_equal(run_captured(cmd_senses, 4, senses_cmd, msg, sizeof msg), 0);
}

/* ---- the edit command's parsing -------------------------------------------------------- */

static EditRecord last_edit(void) {
    SenseStore *s = open_rw();
    BpError err = {0};
    EditRecord *list;
    int count;
    assert_int_equal(store_edit_list(s, &list, &count, &err), 0);
    assert_true(count > 0);
    EditRecord r = list[count - 1];
    free(list);
    store_close(s);
    return r;
}

static int edits_in_force(void) {
    SenseStore *s = open_rw();
    SenseEdits e;
    BpError err = {0};
    assert_int_equal(store_sense_edits(s, &e, &err), 0);
    int n = e.count;
    sense_edits_free(&e);
    store_close(s);
    return n;
}

static void undo_all_edits(void) {
    SenseStore *s = open_rw();
    undo_all(s);
    store_close(s);
}

static void test_edit_command_copy(void **state) {
    (void)state;
    char msg[1024];
    BpError err = {0};
    /* " dog" sense 1 := " cat" sense 3: another word AND another sense */
    char *copy[] = {"edit", "--db", dbpath, "dog", "--sense", "1", "--copy", "cat:3", NULL};
    assert_int_equal(run_captured(cmd_edit, 8, copy, msg, sizeof msg), 0);
    SenseStore *s = open_rw();
    float v[D];
    assert_int_equal(store_sense_vector(s, 278, 1, STORE_IN_FORCE, v, &err), 0);
    assert_memory_equal(v, senses + ((size_t)275 * K + 3) * D, sizeof v);  /* the source itself */
    assert_int_equal(store_sense_vector(s, 278, 0, STORE_IN_FORCE, v, &err), 0);
    assert_memory_equal(v, senses + ((size_t)278 * K + 0) * D, sizeof v);  /* other senses untouched */
    SenseInfo info;
    assert_int_equal(store_sense_info(s, 278, 1, &info, &err), 0);
    assert_float_equal(info.weight, 1.0, 0);
    store_close(s);
    EditRecord r = last_edit();
    assert_int_equal(r.kind, EDIT_COPY);
    assert_int_equal(r.token, 278);
    assert_int_equal(r.sense, 1);
    /* without ":L2" the source sense is the target's own (" cat" sense 2 into " dog" 2) */
    char *same[] = {"edit", "--db", dbpath, "dog", "--sense", "2", "--copy", "cat", NULL};
    assert_int_equal(run_captured(cmd_edit, 8, same, msg, sizeof msg), 0);
    s = open_rw();
    assert_int_equal(store_sense_vector(s, 278, 2, STORE_IN_FORCE, v, &err), 0);
    assert_memory_equal(v, senses + ((size_t)275 * K + 2) * D, sizeof v);
    /* copying an edited sense copies the vector in force: " bank" 0 := " dog" 1 = cat 3 */
    char *chain[] = {"edit", "--db", dbpath, "bank", "--sense", "0", "--copy", "dog:1", NULL};
    store_close(s);
    assert_int_equal(run_captured(cmd_edit, 8, chain, msg, sizeof msg), 0);
    s = open_rw();
    assert_int_equal(store_sense_vector(s, 259, 0, STORE_IN_FORCE, v, &err), 0);
    assert_memory_equal(v, senses + ((size_t)275 * K + 3) * D, sizeof v);
    store_close(s);
    /* a sense out of range after the colon */
    char *bad[] = {"edit", "--db", dbpath, "dog", "--sense", "1", "--copy", "cat:9", NULL};
    assert_int_equal(run_captured(cmd_edit, 8, bad, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "sense 9 out of range"));
    undo_all_edits();
}

static void test_edit_command_replace(void **state) {
    (void)state;
    char msg[1024];
    BpError err = {0};
    /* OLD:NEW by word and by id: the same edit */
    const char *forms[] = {"money:river", "#269:#264"};
    for (int f = 0; f < 2; f++) {
        char *replace[] = {"edit", "--db", dbpath, "bank", "--replace", (char *)forms[f], NULL};
        assert_int_equal(run_captured(cmd_edit, 6, replace, msg, sizeof msg), 0);
        EditRecord r = last_edit();
        assert_int_equal(r.kind, EDIT_REPLACE);
        assert_int_equal(r.token, 259);
        assert_int_equal(r.sense, -1);
        SenseStore *s = open_rw();
        for (int l = 0; l < K; l++) {
            double want[D];
            expected_replace(259, l, 269, 264, want);
            float v[D];
            assert_int_equal(store_sense_vector(s, 259, l, STORE_IN_FORCE, v, &err), 0);
            for (int i = 0; i < D; i++) assert_float_equal(v[i], want[i], 1e-5);
        }
        undo_all(s);
        store_close(s);
    }
    /* malformed: nothing written */
    const char *bad[] = {"money", ":river", "money:", "money:banker", "money:money"};
    const char *why[] = {"expected OLD:NEW", "expected OLD:NEW", "expected OLD:NEW", "closest", ""};
    for (int b = 0; b < 5; b++) {
        char *replace[] = {"edit", "--db", dbpath, "bank", "--replace", (char *)bad[b], NULL};
        assert_int_equal(run_captured(cmd_edit, 6, replace, msg, sizeof msg), 1);
        assert_non_null(strstr(msg, why[b]));
    }
    char *with_sense[] = {"edit", "--db", dbpath, "bank", "--replace", "money:river", "--sense", "1", NULL};
    assert_int_equal(run_captured(cmd_edit, 8, with_sense, msg, sizeof msg), 2);  /* a usage error */
    assert_non_null(strstr(msg, "no --sense"));
    assert_int_equal(edits_in_force(), 0);
}

static void test_edit_command_weight(void **state) {
    (void)state;
    char msg[1024];
    BpError err = {0};
    char *weight[] = {"edit", "--db", dbpath, "river", "--sense", "3", "--weight", "2.5", NULL};
    assert_int_equal(run_captured(cmd_edit, 8, weight, msg, sizeof msg), 0);
    SenseStore *s = open_rw();
    SenseInfo info;
    assert_int_equal(store_sense_info(s, 264, 3, &info, &err), 0);
    assert_float_equal(info.weight, 2.5, 0);
    assert_int_equal(info.vector_edited, 0);
    assert_int_equal(store_sense_info(s, 264, 2, &info, &err), 0);
    assert_float_equal(info.weight, 1.0, 0);
    SenseEdits e;
    assert_int_equal(store_sense_edits(s, &e, &err), 0);
    assert_int_equal(e.count, 1);
    assert_int_equal(e.items[0].token, 264);
    assert_int_equal(e.items[0].sense, 3);
    assert_float_equal(e.items[0].weight, 2.5, 0);
    assert_null(e.items[0].vector);
    sense_edits_free(&e);
    undo_all(s);
    store_close(s);
    EditRecord r = last_edit();
    assert_int_equal(r.kind, EDIT_WEIGHT);
    /* refused: a negative weight, not a number, NaN (exit 1); no value, no sense, two
     * actions (usage errors, exit 2) */
    char *neg[] = {"edit", "--db", dbpath, "river", "--sense", "3", "--weight", "-1", NULL};
    char *word[] = {"edit", "--db", dbpath, "river", "--sense", "3", "--weight", "heavy", NULL};
    char *nan_[] = {"edit", "--db", dbpath, "river", "--sense", "3", "--weight", "nan", NULL};
    char *none[] = {"edit", "--db", dbpath, "river", "--sense", "3", "--weight", NULL};
    char *no_sense[] = {"edit", "--db", dbpath, "river", "--weight", "2", NULL};
    char *two[] = {"edit", "--db", dbpath, "river", "--sense", "3", "--weight", "2", "--scale", "2", NULL};
    assert_int_equal(run_captured(cmd_edit, 8, neg, msg, sizeof msg), 1);
    assert_int_equal(run_captured(cmd_edit, 8, word, msg, sizeof msg), 1);
    assert_int_equal(run_captured(cmd_edit, 8, nan_, msg, sizeof msg), 1);
    assert_int_equal(run_captured(cmd_edit, 7, none, msg, sizeof msg), 2);  /* usage errors */
    assert_int_equal(run_captured(cmd_edit, 6, no_sense, msg, sizeof msg), 2);
    assert_non_null(strstr(msg, "--sense L is required"));
    assert_int_equal(run_captured(cmd_edit, 10, two, msg, sizeof msg), 2);
    assert_non_null(strstr(msg, "exactly one"));
    assert_int_equal(edits_in_force(), 0);
}

/* ---- similarity: Spearman per sense and of the minimum, on known ranks --------------- */

/* Ranks 1..n of distinct values (the test asserts there are no ties). */
static void plain_ranks(const double *x, int n, double *ranks) {
    for (int i = 0; i < n; i++) {
        int below = 0;
        for (int j = 0; j < n; j++) {
            assert_true(j == i || x[j] != x[i]);
            below += x[j] < x[i];
        }
        ranks[i] = below + 1;
    }
}

/* Spearman without ties: 1 - 6 sum d^2 / (n (n^2 - 1)). */
static double spearman_no_ties(const double *x, const double *y, int n) {
    double rx[64], ry[64], dd = 0;
    plain_ranks(x, n, rx);
    plain_ranks(y, n, ry);
    for (int i = 0; i < n; i++) dd += (rx[i] - ry[i]) * (rx[i] - ry[i]);
    return 1 - 6 * dd / ((double)n * ((double)n * n - 1));
}

static void test_similarity_values(void **state) {
    (void)state;
    undo_all_edits();
    const char *words[] = {"bank", "river", "money", "the", "cat", "dog"};
    const int ids[] = {259, 264, 269, 272, 275, 278};
    enum { N_PAIRS = 15 };
    int pa[N_PAIRS], pb[N_PAIRS], n = 0;
    double cos[K + 1][N_PAIRS];
    for (int a = 0; a < 6; a++)
        for (int b = a + 1; b < 6; b++) {
            double mn = INFINITY;
            for (int l = 0; l < K; l++) {
                cos[l][n] = cosine_d(senses + ((size_t)ids[a] * K + l) * D, senses + ((size_t)ids[b] * K + l) * D);
                if (cos[l][n] < mn) mn = cos[l][n];
            }
            cos[K][n] = mn;
            pa[n] = a;
            pb[n] = b;
            n++;
        }
    /* human scores: the ranks of sense 2's cosine, so sense 2 must come out at exactly 1 */
    double human[N_PAIRS];
    plain_ranks(cos[2], N_PAIRS, human);
    char text[2048] = "", pairs[400];
    size_t used = 0;
    for (int i = 0; i < N_PAIRS; i++)
        used += (size_t)snprintf(text + used, sizeof text - used, "%s\t%s\t%g\n", words[pa[i]], words[pb[i]],
                                 human[i]);
    snprintf(pairs, sizeof pairs, "%s/known.tsv", tmpdir);
    BpError err = {0};
    assert_int_equal(write_file_atomic(pairs, text, strlen(text), &err), 0);
    char msg[1024], out[2048];
    char *argv[] = {"similarity", "--db", dbpath, pairs, NULL};
    assert_int_equal(run_captured_out(cmd_similarity, 4, argv, msg, sizeof msg, out, sizeof out), 0);
    assert_non_null(strstr(out, "15 pairs, 15 used, 0 missing"));
    for (int c = 0; c <= K; c++) {
        char label[32];
        if (c < K) snprintf(label, sizeof label, "sense %-3d spearman ", c);
        else snprintf(label, sizeof label, "min       spearman ");
        const char *line = strstr(out, label);
        assert_non_null(line);
        double got = strtod(line + strlen(label), NULL);
        double want = spearman_no_ties(cos[c], human, N_PAIRS);
        assert_float_equal(got, want, 5.1e-5);
    }
    assert_non_null(strstr(out, "sense 2   spearman 1.0000"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_similarity_command),
        cmocka_unit_test(test_edit_command_copy),
        cmocka_unit_test(test_edit_command_replace),
        cmocka_unit_test(test_edit_command_weight),
        cmocka_unit_test(test_similarity_values),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
