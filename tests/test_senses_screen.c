/* The two int8 screens give exactly the brute-force answers. Nearest neighbours
 * (senses/store_index.c, store_nearest.c): the same words and cosines as scoring every
 * word's vector in force, for every sense and Sim_min, with ties, near ties and edits in
 * force; a stale or damaged index file is detected and rebuilt. Export
 * (senses/export_screen.c): the same lists as scoring every word exactly: on models built to have ties and near ties (duplicated rows of E,
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

/* ---- nearest neighbours ------------------------------------------------------------- */

typedef struct {
    int id;
    float score;
} Scored;

static int cmp_scored(const void *a, const void *b) {
    const Scored *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

/* store_nearest's definition, by brute force: normalized vectors in force, exact
 * scores, NaN as -inf, the minimum over senses for sense -1, ties to the lower id. */
static int brute_nearest(SenseStore *s, const float *query, int sense, int exclude, int n, WordScore *out) {
    const int Vs = store_vocab_size(s), k = store_info(s)->config.num_senses, d = store_info(s)->config.n_embd;
    Scored *all = malloc(Vs * sizeof *all);
    float v[64], q[64];
    BpError err = {0};
    int m = 0;
    for (int y = 0; y < Vs; y++) {
        if (y == exclude) continue;
        float mn = INFINITY;
        for (int l = 0; l < k; l++) {
            if (sense >= 0 && l != sense) continue;
            assert_int_equal(store_sense_vector(s, y, l, STORE_IN_FORCE, v, &err), 0);
            store_normalize(v, d, v);
            store_normalize(query + (size_t)l * d, d, q);
            float c = store_exact_score(v, q, d);
            if (isnan(c)) c = -INFINITY;
            if (c < mn) mn = c;
        }
        all[m++] = (Scored){y, mn};
    }
    qsort(all, m, sizeof *all, cmp_scored);
    int got = m < n ? m : n;
    for (int i = 0; i < got; i++) out[i] = (WordScore){all[i].id, all[i].score};
    free(all);
    return got;
}

static void check_nearest_exact(SenseStore *s, const float *query, int sense, int exclude, int n) {
    WordScore got[V], want[V];
    BpError err = {0};
    int a = store_nearest(s, query, sense, exclude, n, got, &err);
    if (a < 0) fail_msg("%s", err.msg);
    int b = brute_nearest(s, query, sense, exclude, n, want);
    assert_int_equal(a, b);
    assert_memory_equal(got, want, (size_t)a * sizeof(WordScore));
}

static void test_nearest_equals_brute_force(void **state) {
    (void)state;
    Backpack m;
    build_model(&m, 77);
    make_ties(&m);
    char path[400];
    snprintf(path, sizeof path, "%s/nearest.db", tmpdir);
    BpError err = {0};
    ExportOptions o = {.top_n = TOP, .chunk_words = EXPORT_CHUNK};
    if (store_export(&m, tokdir, path, &o, &err)) fail_msg("%s", err.msg);
    SenseStore *s;
    assert_int_equal(store_open(&s, path, STORE_READ_WRITE, &err), 0);
    float query[K * D];
    for (int round = 0; round < 2; round++) {
        for (int x = 0; x < V; x += 23) {
            for (int l = 0; l < K; l++) assert_int_equal(store_sense_vector(s, x, l, STORE_IN_FORCE, query + l * D, &err), 0);
            for (int l = -1; l < K; l++) {
                check_nearest_exact(s, query, l, x, 10);
                check_nearest_exact(s, query, l, -1, 3);
            }
            check_nearest_exact(s, query, 1, x, V);  /* every word, in order */
        }
        /* ties: the query is word 0's vector, which words 10 (a copy) and 20, 30 nearly share */
        for (int l = 0; l < K; l++) assert_int_equal(store_sense_vector(s, 0, l, STORE_IN_FORCE, query + l * D, &err), 0);
        for (int l = -1; l < K; l++) check_nearest_exact(s, query, l, -1, 8);
        memset(query, 0, sizeof query);  /* a zero query: every cosine 0, the lowest ids */
        check_nearest_exact(s, query, 2, -1, 5);
        /* round 2: with edits in force (scored exactly, not from the index) */
        EditRequest copy = {.kind = EDIT_COPY, .token = 50, .sense = 1, .src_token = 0, .src_sense = 1};
        EditRequest scale = {.kind = EDIT_SCALE, .token = 60, .sense = 2, .value = -1.0f};
        if (round == 0) {
            assert_int_equal(store_edit_commit(s, &copy, NULL, &err), 0);
            assert_int_equal(store_edit_commit(s, &scale, NULL, &err), 0);
        }
    }
    store_close(s);
    backpack_free(&m);
}

/* The header fields of an index file that name its database. */
static void index_names(const char *db, char *hash, char *id) {
    char path[500];
    snprintf(path, sizeof path, "%s.index", db);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char h[4096];
    assert_int_equal(fread(h, 1, sizeof h, f), sizeof h);
    fclose(f);
    assert_memory_equal(h, "BPKSNN1", 8);
    memcpy(hash, h + 32, 24);
    memcpy(id, h + 56, 40);
}

static void test_stale_index(void **state) {
    (void)state;
    char a[400], b[400], a_index[500], b_index[500];
    snprintf(a, sizeof a, "%s/stale-a.db", tmpdir);
    snprintf(b, sizeof b, "%s/stale-b.db", tmpdir);
    snprintf(a_index, sizeof a_index, "%s.index", a);
    snprintf(b_index, sizeof b_index, "%s.index", b);
    Backpack other;
    build_model(&other, 4321);
    BpError err = {0};
    assert_int_equal(export_to(&model, a, 0, &err), 0);
    assert_int_equal(export_to(&other, b, 0, &err), 0);
    /* export wrote each database's index, named by its weights hash and export id */
    char hash_a[24], id_a[40], hash_b[24], id_b[40];
    index_names(a, hash_a, id_a);
    index_names(b, hash_b, id_b);
    SenseStore *s;
    assert_int_equal(store_open(&s, a, STORE_READ_ONLY, &err), 0);
    assert_string_equal(hash_a, store_info(s)->weights_hash);
    store_close(s);
    assert_string_not_equal(hash_a, hash_b);
    /* b's index in a's place: stale, rebuilt from a's database (exact answers) */
    char *data;
    size_t len;
    assert_int_equal(read_file(b_index, &data, &len, &err), 0);
    assert_int_equal(write_file_atomic(a_index, data, len, &err), 0);
    free(data);
    float query[K * D];
    memcpy(query, senses + (size_t)259 * K * D, sizeof query);
    assert_int_equal(store_open(&s, a, STORE_READ_ONLY, &err), 0);
    check_nearest_exact(s, query, 2, 259, 10);
    check_nearest_exact(s, query, -1, 259, 10);
    store_close(s);
    char hash[24], id[40];
    index_names(a, hash, id);
    assert_string_equal(hash, hash_a);
    assert_string_equal(id, id_a);
    /* a re-export of the same model (same weights hash) makes the old index stale too */
    assert_int_equal(write_file_atomic(b_index, "", 0, &err), 0);
    assert_int_equal(read_file(a_index, &data, &len, &err), 0);
    assert_int_equal(export_to(&model, a, 1, &err), 0);
    index_names(a, hash, id);
    assert_string_equal(hash, hash_a);
    assert_string_not_equal(id, id_a);
    assert_int_equal(write_file_atomic(a_index, data, len, &err), 0);  /* the previous export's index */
    free(data);
    assert_int_equal(store_open(&s, a, STORE_READ_ONLY, &err), 0);
    check_nearest_exact(s, query, 0, 259, 10);
    store_close(s);
    index_names(a, hash, id);
    assert_string_not_equal(id, id_a);
    /* a damaged header (one flipped byte) and a truncated file: rebuilt */
    int fd = open(a_index, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "X", 1, 20), 1);
    close(fd);
    assert_int_equal(store_open(&s, a, STORE_READ_ONLY, &err), 0);
    check_nearest_exact(s, query, 1, 259, 10);
    store_close(s);
    assert_int_equal(truncate(a_index, 5000), 0);
    assert_int_equal(store_open(&s, a, STORE_READ_ONLY, &err), 0);
    check_nearest_exact(s, query, 3, 259, 10);
    store_close(s);
    /* b has an empty index file now: rebuilt as well */
    assert_int_equal(store_open(&s, b, STORE_READ_ONLY, &err), 0);
    check_nearest_exact(s, query, -1, -1, 10);
    store_close(s);
    index_names(b, hash, id);
    assert_string_equal(id, id_b);
    backpack_free(&other);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_screen_equals_exact_scan),
        cmocka_unit_test(test_screen_odd_width),
        cmocka_unit_test(test_screen_direct),
        cmocka_unit_test(test_nearest_equals_brute_force),
        cmocka_unit_test(test_stale_index),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
