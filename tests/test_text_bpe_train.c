/* Training a byte-level BPE: exact merges on a tiny corpus, determinism, the trained
 * tokenizer loads and round-trips, and the bad inputs (vocab size, empty corpus,
 * missing file). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "../common/rng.h"
#include "../text/tokenizer.h"
#include "fixture.h"

static int setup(void **state) {
    (void)state;
    return temp_dir_create(&tmp, "bpe-train");
}

static void write_text(const char *name, const char *text, char *path, size_t path_size) {
    temp_dir_write(&tmp, name, text, strlen(text), path, path_size);
}

static char *read_text(const char *dir, const char *name) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *data;
    size_t len;
    BpError err = {0};
    if (read_file(path, &data, &len, &err) != 0) fail_msg("%s", err.msg);
    return data;
}

static void test_known_merges(void **state) {
    (void)state;
    /* Pre-tokens "abab", " abab", " ab". Pair counts: (a,b) 5, (b,a) 2, (Ġ,a) 2.
     * 1. "a b" (5). Words: [ab ab] [Ġ ab ab] [Ġ ab]; (ab,ab) 2, (Ġ,ab) 2: a tie, the
     *    smaller ids win: Ġ is 220, ab 256.
     * 2. "Ġ ab". Words: [ab ab] [Ġab ab] [Ġab]; (ab,ab) 1, (Ġab,ab) 1: tie, ab < Ġab.
     * 3. "ab ab". Words: [abab] [Ġab ab] [Ġab]; (Ġab,ab) 1.
     * 4. "Ġab ab". No pair is left: 4 merges, vocab 256 + 4 + 1 instead of 300. */
    char corpus[512], out[512];
    write_text("tiny.txt", "abab abab ab", corpus, sizeof corpus);
    temp_dir_path(&tmp, "tiny-tok", out, sizeof out);
    const char *files[] = {corpus};
    BpError err = {0};
    if (tokenizer_train(files, 1, 300, out, 0, &err) != 0) fail_msg("%s", err.msg);
    char *merges = read_text(out, "merges.txt");
    assert_string_equal(merges, "#version: 0.2\na b\n\xc4\xa0 ab\nab ab\n\xc4\xa0" "ab ab\n");
    free(merges);
    Tokenizer *t;
    if (tokenizer_load(&t, out, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(tokenizer_vocab_size(t), 261);
    assert_int_equal(tokenizer_eot(t), 260);
    assert_string_equal(tokenizer_token_string(t, 256), "ab");
    assert_string_equal(tokenizer_token_string(t, 257), "\xc4\xa0" "ab");
    assert_string_equal(tokenizer_token_string(t, 258), "abab");
    assert_string_equal(tokenizer_token_string(t, 259), "\xc4\xa0" "abab");
    /* Byte ids are GPT-2's. */
    assert_string_equal(tokenizer_token_string(t, 0), "!");
    assert_string_equal(tokenizer_token_string(t, 220), "\xc4\xa0");
    int *ids = NULL;
    size_t n = 0, cap = 0;
    assert_int_equal(tokenizer_encode(t, "abab ab<|endoftext|>b", 21, &ids, &n, &cap, &err), 0);
    assert_int_equal(n, 4);
    assert_int_equal(ids[0], 258);
    assert_int_equal(ids[1], 257);
    assert_int_equal(ids[2], 260);
    assert_int_equal(ids[3], 65);
    free(ids);
    tokenizer_free(t);
}

static void test_counts_across_files_and_documents(void **state) {
    (void)state;
    /* "xy" occurs 3 times in total, "ab" twice: xy merges first although "ab" is the
     * only pair of the first file. The separator is not training text. */
    char f1[512], f2[512], out[512];
    write_text("f1.txt", "ab<|endoftext|>ab", f1, sizeof f1);
    write_text("f2.txt", "xy\n<|endoftext|>\nxy<|endoftext|>xy", f2, sizeof f2);
    temp_dir_path(&tmp, "two-files", out, sizeof out);
    const char *files[] = {f1, f2};
    BpError err = {0};
    if (tokenizer_train(files, 2, 259, out, 0, &err) != 0) fail_msg("%s", err.msg);
    char *merges = read_text(out, "merges.txt");
    assert_string_equal(merges, "#version: 0.2\nx y\na b\n");
    free(merges);
    char *vocab = read_text(out, "vocab.json");
    json_error_t jerr;
    json_t *v = json_loads(vocab, 0, &jerr);
    assert_non_null(v);
    assert_int_equal(json_object_size(v), 259);
    assert_int_equal(json_integer_value(json_object_get(v, "xy")), 256);
    assert_int_equal(json_integer_value(json_object_get(v, "ab")), 257);
    assert_int_equal(json_integer_value(json_object_get(v, "<|endoftext|>")), 258);
    json_decref(v);
    free(vocab);
}

/* A pseudo-random corpus of a few hundred words. */
static void write_random_corpus(const char *name, char *path, size_t path_size) {
    static const char *words[] = {"the", "of", "and", "garden", "gardener", "gardens", "x", "Zürich",
                                  "naïve", "2024", "it's", "don't", "\xe4\xbd\xa0\xe5\xa5\xbd", "--", "!!",
                                  "\xf0\x9f\x98\x80", "\xff\xfe"};
    Rng rng;
    rng_seed(&rng, 99);
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    while (len < cap - 64) {
        const char *w = words[rng_next(&rng) % (sizeof words / sizeof *words)];
        len += (size_t)snprintf(text + len, cap - len, "%s%s", w, rng_next(&rng) % 9 == 0 ? ".\n\n" : " ");
    }
    text[len] = '\0';
    write_text(name, text, path, path_size);
    free(text);
}

static void test_deterministic_and_exact_size(void **state) {
    (void)state;
    char corpus[512], out1[512], out2[512];
    write_random_corpus("random.txt", corpus, sizeof corpus);
    temp_dir_path(&tmp, "run1", out1, sizeof out1);
    temp_dir_path(&tmp, "run2", out2, sizeof out2);
    const char *files[] = {corpus};
    BpError err = {0};
    if (tokenizer_train(files, 1, 300, out1, 0, &err) != 0) fail_msg("%s", err.msg);
    if (tokenizer_train(files, 1, 300, out2, 0, &err) != 0) fail_msg("%s", err.msg);
    char *m1 = read_text(out1, "merges.txt"), *m2 = read_text(out2, "merges.txt");
    char *v1 = read_text(out1, "vocab.json"), *v2 = read_text(out2, "vocab.json");
    assert_string_equal(m1, m2);
    assert_string_equal(v1, v2);
    free(m1);
    free(m2);
    free(v1);
    free(v2);
    Tokenizer *t;
    if (tokenizer_load(&t, out1, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(tokenizer_vocab_size(t), 300);
    assert_int_equal(tokenizer_eot(t), 299);
    assert_int_equal(tokenizer_n_merges(t), 43);
    /* The most frequent words became single tokens. */
    assert_int_equal(tokenizer_lookup_bytes(t, " garden", 7), 261);   /* the 6th merge */
    /* Round trip through the trained tokenizer. */
    char *text;
    size_t len;
    assert_int_equal(read_file(corpus, &text, &len, &err), 0);
    int *ids = NULL;
    size_t n = 0, cap = 0;
    assert_int_equal(tokenizer_encode(t, text, len, &ids, &n, &cap, &err), 0);
    assert_true(n < len / 2);   /* it compresses */
    char *back;
    size_t back_len;
    assert_int_equal(tokenizer_decode(t, ids, n, &back, &back_len, &err), 0);
    assert_int_equal(back_len, len);
    assert_memory_equal(back, text, len);
    free(back);
    free(ids);
    free(text);
    tokenizer_free(t);
}

static void test_bad_inputs(void **state) {
    (void)state;
    char corpus[512], empty[512], out[512], missing[512];
    write_text("small.txt", "some text", corpus, sizeof corpus);
    write_text("empty.txt", "\n<|endoftext|>\n", empty, sizeof empty);
    temp_dir_path(&tmp, "bad-out", out, sizeof out);
    temp_dir_path(&tmp, "missing.txt", missing, sizeof missing);
    BpError err = {0};
    const char *files[] = {corpus};
    assert_int_equal(tokenizer_train(files, 1, 256, out, 0, &err), -1);
    assert_non_null(strstr(err.msg, "vocab size 256 is below 257"));
    const char *empty_files[] = {empty};
    assert_int_equal(tokenizer_train(empty_files, 1, 300, out, 0, &err), -1);
    assert_non_null(strstr(err.msg, "empty.txt: empty corpus"));
    const char *missing_files[] = {corpus, missing};
    assert_int_equal(tokenizer_train(missing_files, 2, 300, out, 0, &err), -1);
    assert_non_null(strstr(err.msg, "missing.txt: cannot open"));
    /* Nothing was written by the failed runs. */
    assert_false(dir_exists(out));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_merges),
        cmocka_unit_test(test_counts_across_files_and_documents),
        cmocka_unit_test(test_deterministic_and_exact_size),
        cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests_name("text/bpe_train", tests, setup, temp_dir_teardown);
}
