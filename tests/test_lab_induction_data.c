/* The induction task's generator: folding and statistics on a hand-made corpus, the
 * sequence rule and its marks checked token by token, triggers, determinism of the
 * files by seed, and the marks reader's rejections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "../lab/induction_data.h"
#include "../text/tokfile.h"


static int setup(void **state) {
    (void)state;
    return temp_dir_create(&tmp, "induction");
}

static int teardown(void **state) {
    (void)state;
    temp_dir_remove(&tmp);
    return 0;
}

/* "abcd" 50 times: a -> b -> c -> d -> a with probability 1, four equal counts. */
static void cycle_stats(InductionStats *s, int n) {
    char text[201];
    for (int i = 0; i < 200; i++) text[i] = (char)('a' + i % 4);
    text[200] = 0;
    BpError err = {{0}};
    if (induction_stats_from_text(s, text, 200, n, &err) != 0) fail_msg("%s", err.msg);
}

static void test_folding_and_statistics(void **state) {
    (void)state;
    InductionStats s;
    BpError err = {{0}};
    /* a:4 b:3 c:2 ' ':1 d:1 -> N = 3: a, b, other */
    const char *text = "aaaabbbcc d";
    assert_int_equal(induction_stats_from_text(&s, text, strlen(text), 3, &err), 0);
    assert_int_equal(s.symbol_of_byte['a'], 0);
    assert_int_equal(s.symbol_of_byte['b'], 1);
    assert_int_equal(s.symbol_of_byte['c'], 2);
    assert_int_equal(s.symbol_of_byte['d'], 2);
    assert_int_equal(s.symbol_of_byte[' '], 2);
    assert_int_equal(s.byte_of_symbol[0], 'a');
    assert_int_equal(s.byte_of_symbol[2], -1);
    assert_float_equal(s.unigram[0], 4.0 / 11, 1e-12);
    assert_float_equal(s.unigram[2], 4.0 / 11, 1e-12);
    /* after a: a a a b -> pi_b(a|a) = 3/4, pi_b(b|a) = 1/4 */
    assert_float_equal(s.bigram[0 * 3 + 0], 0.75, 1e-12);
    assert_float_equal(s.bigram[0 * 3 + 1], 0.25, 1e-12);
    /* after other (c c ' ' d): c, ' ', d, end -> 3 transitions, all to other */
    assert_float_equal(s.bigram[2 * 3 + 2], 1.0, 1e-12);
    /* a: 3/4, 1/4; b: 2/3, 1/3; other: 1, 0 */
    double h = -(4.0 / 11) * (0.75 * log(0.75) + 0.25 * log(0.25)) - (3.0 / 11) * (2.0 / 3 * log(2.0 / 3) + 1.0 / 3 * log(1.0 / 3));
    assert_float_equal(induction_bigram_entropy(&s), h, 1e-12);
    /* frequency order: a (4/11) and other (4/11) tie, broken by id; then b */
    assert_int_equal(s.by_frequency[0], 0);
    assert_int_equal(s.by_frequency[1], 2);
    assert_int_equal(s.by_frequency[2], 1);
    int q[2];
    InductionTask rare = {.n_triggers = 2, .seq_len = 4, .trigger_offset = 1};
    induction_fixed_triggers(&s, &rare, q);
    assert_int_equal(q[0], 2);
    assert_int_equal(q[1], 1);
    rare.trigger_offset = 2;   /* 2 + 2 triggers > 3 symbols */
    assert_int_equal(induction_task_validate(&rare, 3, &err), -1);
    assert_non_null(strstr(err.msg, "--trigger-offset 2"));
    induction_stats_free(&s);
    assert_int_equal(induction_stats_from_text(&s, text, strlen(text), 1, &err), -1);
    assert_non_null(strstr(err.msg, "--n 1"));
}

/* The sequence rule on the cycle corpus, with one fixed trigger 'a' (id 0): after an
 * 'a' comes the sequence's output, with the occurrence number as mark; elsewhere the
 * next letter of the cycle, mark 0. */
static void test_sequence_rule_and_marks(void **state) {
    (void)state;
    InductionStats s;
    cycle_stats(&s, 5);
    InductionTask t = {.n_triggers = 1, .seq_len = 64};
    Rng rng;
    rng_seed(&rng, 9);
    int outputs_seen[5] = {0}, in_context = 0;
    for (int rep = 0; rep < 40; rep++) {
        int tokens[64], q, o;
        unsigned char marks[64];
        induction_sequence(&s, &t, &rng, tokens, marks, &q, &o);
        assert_int_equal(q, 0);
        assert_in_range(o, 0, 4);
        outputs_seen[o] = 1;
        assert_in_range(tokens[0], 0, 3);   /* "other" has pi_u = 0 */
        assert_int_equal(marks[0], 0);
        int count = 0;
        for (int i = 1; i < 64; i++) {
            if (tokens[i - 1] == 0) {
                count++;
                assert_int_equal(tokens[i], o);
                assert_int_equal(marks[i], count);
                in_context += marks[i] >= 2;
            } else {
                assert_int_equal(marks[i], 0);
                if (tokens[i - 1] < 4) assert_int_equal(tokens[i], (tokens[i - 1] + 1) % 4);
                else assert_in_range(tokens[i], 0, 3);   /* pi_b(.|other) = pi_u */
            }
        }
    }
    int distinct = 0;
    for (int i = 0; i < 5; i++) distinct += outputs_seen[i];
    assert_true(distinct >= 4);   /* uniform outputs over 40 sequences */
    assert_true(in_context > 100);

    /* One literal case: output 'c' (2) from z_0 = 'a' gives a c d a c d a ... with marks
     * 0 1 0 0 2 0 0 3. Search a seed that starts so. */
    int found = 0;
    for (uint64_t seed = 0; seed < 2000 && !found; seed++) {
        int tokens[8], o;
        unsigned char marks[8];
        InductionTask t8 = {.n_triggers = 1, .seq_len = 8};
        rng_seed(&rng, seed);
        induction_sequence(&s, &t8, &rng, tokens, marks, NULL, &o);
        if (tokens[0] != 0 || o != 2) continue;
        found = 1;
        const int want_t[8] = {0, 2, 3, 0, 2, 3, 0, 2};
        const unsigned char want_m[8] = {0, 1, 0, 0, 2, 0, 0, 3};
        assert_memory_equal(tokens, want_t, sizeof want_t);
        assert_memory_equal(marks, want_m, sizeof want_m);
    }
    assert_true(found);

    /* Bigram outputs: the output of 'a' must be what follows 'a' in the corpus: 'b'. */
    t.bigram_outputs = 1;
    for (int rep = 0; rep < 10; rep++) {
        int tokens[64], o;
        unsigned char marks[64];
        induction_sequence(&s, &t, &rng, tokens, marks, NULL, &o);
        assert_int_equal(o, 1);
    }
    induction_stats_free(&s);
}

static void test_random_triggers(void **state) {
    (void)state;
    InductionStats s;
    cycle_stats(&s, 6);   /* ids 4 and 5: "other" and an unused id, both pi_u = 0 */
    InductionTask t = {.n_triggers = 3, .seq_len = 16, .random_triggers = 1};
    Rng rng;
    rng_seed(&rng, 3);
    int chosen[6] = {0};
    for (int rep = 0; rep < 200; rep++) {
        int tokens[16], q[3];
        unsigned char marks[16];
        induction_sequence(&s, &t, &rng, tokens, marks, q, NULL);
        for (int k = 0; k < 3; k++) {
            assert_in_range(q[k], 0, 3);   /* only symbols of positive frequency */
            chosen[q[k]]++;
            for (int j = 0; j < k; j++) assert_int_not_equal(q[j], q[k]);
        }
    }
    for (int i = 0; i < 4; i++) assert_true(chosen[i] > 100);   /* 3 of 4 each time: ~150 */
    /* K = 5 > the 4 symbols of positive frequency: the fifth is a free zero-frequency id */
    t.n_triggers = 5;
    int tokens[16], q[5];
    unsigned char marks[16];
    induction_sequence(&s, &t, &rng, tokens, marks, q, NULL);
    for (int k = 0; k < 5; k++)
        for (int j = 0; j < k; j++) assert_int_not_equal(q[j], q[k]);
    induction_stats_free(&s);
}

static char *slurp(const char *path, size_t *len) {
    char *data;
    BpError err = {{0}};
    if (read_file(path, &data, len, &err) != 0) fail_msg("%s", err.msg);
    return data;
}

static void write_prefix(const InductionStats *s, const InductionTask *t, const char *name, uint64_t seed,
                         char *prefix, size_t size) {
    snprintf(prefix, size, "%s/%s", tmp.path, name);
    BpError err = {{0}};
    if (induction_write_data(s, t, prefix, 30, 5, seed, 0, 0, &err) != 0) fail_msg("%s", err.msg);
}

static int same_file(const char *a, const char *b) {
    size_t la, lb;
    char *da = slurp(a, &la), *db = slurp(b, &lb);
    int same = la == lb && !memcmp(da, db, la);
    free(da);
    free(db);
    return same;
}

static void test_files_deterministic_and_consistent(void **state) {
    (void)state;
    InductionStats s;
    const char *text = "the quick brown fox jumps over the lazy dog; the dog sleeps, the fox runs.";
    BpError err = {{0}};
    assert_int_equal(induction_stats_from_text(&s, text, strlen(text), 12, &err), 0);
    InductionTask t = {.n_triggers = 2, .seq_len = 40};
    char a[512], b[512], c[512], pa[600], pb[600];
    write_prefix(&s, &t, "a", 5, a, sizeof a);
    write_prefix(&s, &t, "b", 5, b, sizeof b);
    write_prefix(&s, &t, "c", 6, c, sizeof c);
    static const char *const files[] = {"train.tok", "train.marks", "val.tok", "val.marks"};
    for (int i = 0; i < 4; i++) {
        snprintf(pa, sizeof pa, "%s.%s", a, files[i]);
        snprintf(pb, sizeof pb, "%s.%s", b, files[i]);
        assert_true(same_file(pa, pb));
        snprintf(pb, sizeof pb, "%s.%s", c, files[i]);
        assert_false(same_file(pa, pb));
    }
    /* The file's marks agree with a recount from its tokens and the fixed triggers. */
    int q[2];
    induction_fixed_triggers(&s, &t, q);
    TokFile tf;
    InductionMarks mk;
    snprintf(pa, sizeof pa, "%s.train.tok", a);
    assert_int_equal(tokfile_open(&tf, pa, &err), 0);
    snprintf(pa, sizeof pa, "%s.train.marks", a);
    assert_int_equal(induction_marks_read(&mk, pa, &err), 0);
    assert_int_equal(tf.vocab_size, 12);
    assert_int_equal(tf.count, 30 * 40);
    assert_int_equal(mk.count, tf.count);
    assert_int_equal(mk.seq_len, 40);
    assert_int_equal(mk.n_triggers, 2);
    assert_int_equal(mk.vocab_size, 12);
    long targets = 0;
    for (int seq = 0; seq < 30; seq++) {
        int count[2] = {0, 0}, out[2] = {-1, -1};
        for (int i = 1; i < 40; i++) {
            uint64_t at = (uint64_t)seq * 40 + i;
            int prev = (int)tokfile_get(&tf, at - 1), cur = (int)tokfile_get(&tf, at), want = 0;
            for (int k = 0; k < 2; k++)
                if (prev == q[k]) {
                    want = ++count[k];
                    if (out[k] < 0) out[k] = cur;
                    assert_int_equal(cur, out[k]);   /* one output per trigger per sequence */
                }
            assert_int_equal(mk.marks[at], want);
            targets += want >= 2;
        }
        assert_int_equal(mk.marks[(uint64_t)seq * 40], 0);
    }
    assert_true(targets > 0);
    tokfile_close(&tf);
    induction_marks_free(&mk);
    /* the validation split does not depend on the number of training sequences */
    snprintf(pb, sizeof pb, "%s/d", tmp.path);
    assert_int_equal(induction_write_data(&s, &t, pb, 7, 5, 5, 0, 0, &err), 0);
    snprintf(pa, sizeof pa, "%s.val.tok", a);
    snprintf(pb, sizeof pb, "%s/d.val.tok", tmp.path);
    assert_true(same_file(pa, pb));
    induction_stats_free(&s);
}

static void test_marks_reader_rejects(void **state) {
    (void)state;
    char path[512];
    BpError err = {{0}};
    InductionMarks mk;
    snprintf(path, sizeof path, "%s/bad.marks", tmp.path);
    unsigned char buf[64 + 10] = {0};
    uint32_t magic = INDUCTION_MARKS_MAGIC, version = 1, T = 5, K = 1;
    uint64_t count = 10;
    memcpy(buf, &magic, 4);
    memcpy(buf + 4, &version, 4);
    memcpy(buf + 8, &T, 4);
    memcpy(buf + 12, &K, 4);
    memcpy(buf + 16, &count, 8);
    assert_int_equal(write_file_atomic(path, buf, sizeof buf, &err), 0);
    assert_int_equal(induction_marks_read(&mk, path, &err), 0);
    assert_int_equal(mk.count, 10);
    induction_marks_free(&mk);
    assert_int_equal(write_file_atomic(path, buf, sizeof buf - 1, &err), 0);   /* truncated */
    assert_int_equal(induction_marks_read(&mk, path, &err), -1);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "size"));
    T = 3;   /* 10 marks are not whole sequences of 3 */
    memcpy(buf + 8, &T, 4);
    assert_int_equal(write_file_atomic(path, buf, sizeof buf, &err), 0);
    assert_int_equal(induction_marks_read(&mk, path, &err), -1);
    assert_non_null(strstr(err.msg, "multiple"));
    buf[0] ^= 1;
    assert_int_equal(write_file_atomic(path, buf, sizeof buf, &err), 0);
    assert_int_equal(induction_marks_read(&mk, path, &err), -1);
    assert_non_null(strstr(err.msg, "magic"));
    assert_int_equal(write_file_atomic(path, buf, 10, &err), 0);   /* shorter than a header */
    assert_int_equal(induction_marks_read(&mk, path, &err), -1);
    snprintf(path, sizeof path, "%s/missing.marks", tmp.path);
    assert_int_equal(induction_marks_read(&mk, path, &err), -1);
    assert_non_null(strstr(err.msg, path));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_folding_and_statistics),
        cmocka_unit_test(test_sequence_rule_and_marks),
        cmocka_unit_test(test_random_triggers),
        cmocka_unit_test(test_files_deterministic_and_consistent),
        cmocka_unit_test(test_marks_reader_rejects),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
