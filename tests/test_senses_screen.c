/* The export's int8 screen (senses/export_screen.c) gives exactly the lists of scoring
 * every word exactly: on models built to have ties and near ties (duplicated rows of E,
 * rows scaled by 1 + 2^-20, rows a few ulps apart, a zero row, a row beyond the bounds'
 * range, d not a multiple of 4, V not a multiple of the 64-word panel), both ways of
 * exporting write the same bytes into every list, for 20 words per list and for all V.
 * The screen is also checked directly against the exact scan on vectors built to tie. */
#include "senses_fixture.h"

#include "../senses/store_private.h"

/* E with ties: rows 10..19 copy rows 0..9, rows 20..29 are rows 0..9 times 1 + 2^-20,
 * rows 30..39 are rows 0..9 with one component moved by one ulp, row 40 is zero, row 41
 * is large (x 1e3) and row 42 holds 1e20 (scored exactly, outside the bounds' range). */
static void make_ties(Backpack *m) {
    const int d = m->config.n_embd;
    float *E = m->params.wte;
    for (int y = 0; y < 10; y++) {
        memcpy(E + (size_t)(10 + y) * d, E + (size_t)y * d, d * sizeof(float));
        for (int i = 0; i < d; i++) E[(size_t)(20 + y) * d + i] = E[(size_t)y * d + i] * (1.0f + 0x1p-20f);
        memcpy(E + (size_t)(30 + y) * d, E + (size_t)y * d, d * sizeof(float));
        E[(size_t)(30 + y) * d + y % d] = nextafterf(E[(size_t)y * d + y % d], INFINITY);
    }
    memset(E + (size_t)40 * d, 0, d * sizeof(float));
    for (int i = 0; i < d; i++) E[(size_t)41 * d + i] *= 1e3f;
    E[(size_t)42 * d + 1] = 1e20f;
}

/* Every list column of the senses table of two databases, byte for byte. */
static void assert_same_lists(const char *a, const char *b, int expect_rows) {
    sqlite3 *da, *db;
    assert_int_equal(sqlite3_open(a, &da), SQLITE_OK);
    assert_int_equal(sqlite3_open(b, &db), SQLITE_OK);
    const char *sql = "SELECT id, top_ids, top_scores, bottom_ids, bottom_scores, vector FROM senses ORDER BY id";
    sqlite3_stmt *sa, *sb;
    assert_int_equal(sqlite3_prepare_v2(da, sql, -1, &sa, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &sb, NULL), SQLITE_OK);
    int rows = 0;
    while (sqlite3_step(sa) == SQLITE_ROW) {
        assert_int_equal(sqlite3_step(sb), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(sa, 0), sqlite3_column_int(sb, 0));
        for (int col = 1; col <= 5; col++) {
            int n = sqlite3_column_bytes(sa, col);
            assert_int_equal(n, sqlite3_column_bytes(sb, col));
            assert_memory_equal(sqlite3_column_blob(sa, col), sqlite3_column_blob(sb, col), n);
        }
        rows++;
    }
    assert_int_not_equal(sqlite3_step(sb), SQLITE_ROW);
    assert_int_equal(rows, expect_rows);
    sqlite3_finalize(sa);
    sqlite3_finalize(sb);
    sqlite3_close(da);
    sqlite3_close(db);
}

static void export_both_ways(Backpack *m, int top_n, const char *name) {
    char screened[400], exact[400];
    snprintf(screened, sizeof screened, "%s/%s-screened.db", tmpdir, name);
    snprintf(exact, sizeof exact, "%s/%s-exact.db", tmpdir, name);
    BpError err = {0};
    ExportOptions o = {.top_n = top_n, .chunk_words = EXPORT_CHUNK};
    if (store_export(m, tokdir, screened, &o, &err)) fail_msg("%s", err.msg);
    o.exact_scan = 1;
    if (store_export(m, tokdir, exact, &o, &err)) fail_msg("%s", err.msg);
    assert_same_lists(screened, exact, m->config.vocab_size * m->config.num_senses);
    if (top_n < m->config.vocab_size) return;
    /* the full list: word 10 copies word 0, so it follows word 0 directly (lower id first) */
    SenseStore *s;
    assert_int_equal(store_open(&s, screened, STORE_READ_ONLY, &err), 0);
    WordScore top[V];
    assert_int_equal(store_sense_words(s, 5, 0, V, top, NULL, &err), V);
    int at = -1;
    for (int i = 0; i < V; i++)
        if (top[i].id == 0) at = i;
    assert_true(at >= 0 && at + 1 < V);
    assert_int_equal(top[at + 1].id, 10);
    assert_true(top[at].score == top[at + 1].score);
    store_close(s);
}

static void test_screen_equals_exact_scan(void **state) {
    (void)state;
    Backpack m;
    build_model(&m, 77);
    make_ties(&m);
    export_both_ways(&m, TOP, "ties");
    export_both_ways(&m, V, "ties-all");
    backpack_free(&m);
}

static void test_screen_odd_width(void **state) {
    (void)state;
    /* d = 18: not a multiple of the 4 bytes vpdpbusd adds */
    BackpackConfig c = {.arch = ARCH_BACKPACK, .vocab_size = V, .n_embd = 18, .n_layer = 1, .n_head = 2,
                        .num_senses = 3, .n_positions = 16, .sense_intermediate_scale = 4};
    Backpack m;
    BpError err = {0};
    assert_int_equal(backpack_build(&m, &c, &err), 0);
    backpack_init_weights(&m, 5);
    for (size_t i = 0; i < (size_t)V * 18; i++) m.params.wte[i] *= 50.0f;
    make_ties(&m);
    export_both_ways(&m, TOP, "odd");
    backpack_free(&m);
}

/* Vectors that tie exactly and nearly with each other's words, straight through the
 * screen: c = E[y] makes E[y] and its copies the top words with equal scores. */
static void test_screen_direct(void **state) {
    (void)state;
    Backpack m;
    build_model(&m, 91);
    make_ties(&m);
    const float *E = m.params.wte;
    enum { ROWS = 13, N = 25 };
    float C[ROWS * D];
    for (int r = 0; r < ROWS; r++)
        for (int i = 0; i < D; i++) C[r * D + i] = E[(size_t)(r % 10) * D + i] * (r < 10 ? 1.0f : -3.0f);
    memset(C + 12 * D, 0, D * sizeof(float));  /* every score 0: the lowest ids win */
    BpError err = {0};
    ScoreScreen *g = score_screen_build(E, V, D, &err);
    assert_non_null(g);
    WordScore top[ROWS * N], bottom[ROWS * N], want_top[N], want_bottom[N];
    assert_int_equal(score_screen_extremes(g, E, C, ROWS, N, top, bottom, &err), 0);
    float scores[V];
    for (int r = 0; r < ROWS; r++) {
        score_extremes_exact(E, V, D, C + r * D, N, want_top, want_bottom, scores);
        assert_memory_equal(top + r * N, want_top, sizeof want_top);
        assert_memory_equal(bottom + r * N, want_bottom, sizeof want_bottom);
    }
    for (int i = 0; i < N; i++) assert_int_equal(top[12 * N + i].id, i);
    score_screen_free(g);
    backpack_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_screen_equals_exact_scan),
        cmocka_unit_test(test_screen_odd_width),
        cmocka_unit_test(test_screen_direct),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
