/* The GPT-2 tokenizer: parity with the reference ids (tests/fixtures/tokenizer, made by
 * tests/make_tokenizer_fixtures.js), round trips on random bytes, the token accessors,
 * and every malformed vocab.json / merges.txt the loader must reject. */
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

#define GPT2_DIR "data/gpt2"
#define PARITY_FIXTURE "tests/fixtures/tokenizer/parity.json"

static Tokenizer *gpt2;

static int setup(void **state) {
    (void)state;
    BpError err = {0};
    if (tokenizer_load(&gpt2, GPT2_DIR, &err) != 0) {
        fprintf(stderr, "cannot load the GPT-2 tokenizer (run make data): %s\n", err.msg);
        return -1;
    }
    return temp_dir_create(&tmp, "tokenizer");
}

static int teardown(void **state) {
    (void)state;
    tokenizer_free(gpt2);
    temp_dir_remove(&tmp);
    return 0;
}

static void encode_all(const Tokenizer *t, const char *s, size_t len, int **ids, size_t *n) {
    size_t cap = 0;
    BpError err = {0};
    *ids = NULL;
    *n = 0;
    if (tokenizer_encode(t, s, len, ids, n, &cap, &err) != 0) fail_msg("encode: %s", err.msg);
}

static void assert_round_trip(const Tokenizer *t, const char *s, size_t len) {
    int *ids;
    size_t n;
    encode_all(t, s, len, &ids, &n);
    char *back;
    size_t back_len;
    BpError err = {0};
    assert_int_equal(tokenizer_decode(t, ids, n, &back, &back_len, &err), 0);
    assert_int_equal(back_len, len);
    assert_memory_equal(back, s, len);
    free(back);
    free(ids);
}

static void test_vocabulary_basics(void **state) {
    (void)state;
    assert_int_equal(tokenizer_vocab_size(gpt2), 50257);
    assert_int_equal(tokenizer_eot(gpt2), 50256);
    assert_int_equal(tokenizer_n_merges(gpt2), 50000);
    size_t len;
    const char *b = tokenizer_token_bytes(gpt2, 262, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(b, " the", 4);
    assert_string_equal(tokenizer_token_string(gpt2, 262), "\xc4\xa0the");   /* "Ġthe" */
    assert_int_equal(tokenizer_lookup_bytes(gpt2, " the", 4), 262);
    assert_int_equal(tokenizer_lookup_bytes(gpt2, "\n", 1), 198);
    assert_int_equal(tokenizer_lookup_bytes(gpt2, "<|endoftext|>", 13), 50256);
    assert_int_equal(tokenizer_lookup_bytes(gpt2, " thex qz", 8), -1);
    assert_null(tokenizer_token_bytes(gpt2, 50257, &len));
    assert_null(tokenizer_token_bytes(gpt2, -1, &len));
    assert_null(tokenizer_token_string(gpt2, 50257));
}

static void test_token_readable(void **state) {
    (void)state;
    char out[64];
    assert_string_equal(tokenizer_token_readable(gpt2, 262, out, sizeof out), " the");
    assert_string_equal(tokenizer_token_readable(gpt2, 198, out, sizeof out), "\\n");
    assert_string_equal(tokenizer_token_readable(gpt2, 197, out, sizeof out), "\\t");
    assert_string_equal(tokenizer_token_readable(gpt2, 188, out, sizeof out), "\\x00");   /* byte 0 */
    assert_string_equal(tokenizer_token_readable(gpt2, 171, out, sizeof out), "\\xef");   /* half of a character */
    int cafe = tokenizer_lookup_bytes(gpt2, "\xc3\xa9", 2);   /* "é" is one token */
    assert_true(cafe >= 0);
    assert_string_equal(tokenizer_token_readable(gpt2, cafe, out, sizeof out), "\xc3\xa9");
    /* Truncation never splits an escape and always terminates. */
    assert_string_equal(tokenizer_token_readable(gpt2, 198, out, 2), "");
    assert_string_equal(tokenizer_token_readable(gpt2, 262, out, 3), " t");
}

static void test_parity_with_reference(void **state) {
    (void)state;
    json_error_t jerr;
    json_t *root = json_load_file(PARITY_FIXTURE, JSON_ALLOW_NUL, &jerr);
    if (!root) fail_msg("%s:%d: %s", PARITY_FIXTURE, jerr.line, jerr.text);
    json_t *cases = json_object_get(root, "cases");
    assert_true(json_array_size(cases) >= 30);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        json_t *text = json_object_get(c, "text"), *want = json_object_get(c, "ids");
        int *ids;
        size_t n;
        encode_all(gpt2, json_string_value(text), json_string_length(text), &ids, &n);
        if (n != json_array_size(want)) fail_msg("case \"%s\": %zu ids, reference %zu", name, n, json_array_size(want));
        for (size_t k = 0; k < n; k++)
            if (ids[k] != json_integer_value(json_array_get(want, k)))
                fail_msg("case \"%s\": id %zu is %d, reference %lld", name, k, ids[k],
                         (long long)json_integer_value(json_array_get(want, k)));
        free(ids);
        assert_round_trip(gpt2, json_string_value(text), json_string_length(text));
    }
    json_decref(root);
}

static void test_special_token_and_lookalikes(void **state) {
    (void)state;
    int *ids;
    size_t n;
    const char s[] = "a<|endoftext|>b";
    encode_all(gpt2, s, sizeof s - 1, &ids, &n);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 64);
    assert_int_equal(ids[1], 50256);
    assert_int_equal(ids[2], 65);
    free(ids);
    const char t[] = "<|endoftext|";   /* not the token */
    encode_all(gpt2, t, sizeof t - 1, &ids, &n);
    for (size_t k = 0; k < n; k++) assert_int_not_equal(ids[k], 50256);
    free(ids);
}

static void test_invalid_utf8_rule(void **state) {
    (void)state;
    /* A run of ill-formed bytes is a pre-token of its own, between the valid ones. */
    int *ids;
    size_t n;
    encode_all(gpt2, "a\xff" "b", 3, &ids, &n);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 64);
    assert_int_equal(ids[1], 187);   /* byte 0xff */
    assert_int_equal(ids[2], 65);
    free(ids);
    encode_all(gpt2, " the\xc3", 5, &ids, &n);   /* truncated character at the end */
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 262);
    assert_int_equal(ids[1], tokenizer_lookup_bytes(gpt2, "\xc3", 1));
    free(ids);
    assert_round_trip(gpt2, "\xed\xa0\x80 surrogate \xc0\xaf overlong \xf5 \x80\x80", 31);
}

static void test_random_bytes_round_trip(void **state) {
    (void)state;
    Rng rng;
    rng_seed(&rng, 1234);
    static const char *pieces[] = {"<|endoftext|>", " the", "'s", "\xc3\xa9", "\xe4\xbd\xa0", "\xf0\x9f\x98\x80",
                                   "  ", "\n\n", "123", "\xff", "\xc3", "\x80\x80", "<|"};
    char buf[1024];
    for (int round = 0; round < 500; round++) {
        size_t len = 0, target = rng_next(&rng) % 200;
        while (len < target) {
            if (rng_next(&rng) % 3 == 0) {
                const char *p = pieces[rng_next(&rng) % (sizeof pieces / sizeof *pieces)];
                size_t k = strlen(p);
                memcpy(buf + len, p, k);
                len += k;
            } else {
                buf[len++] = (char)(rng_next(&rng) & 0xFF);
            }
        }
        assert_round_trip(gpt2, buf, len);
    }
    /* One long string of random bytes, and long runs that BPE a long pre-token. */
    size_t big = 200000;
    char *s = malloc(big);
    for (size_t i = 0; i < big; i++) s[i] = (char)(rng_next(&rng) & 0xFF);
    assert_round_trip(gpt2, s, big);
    memset(s, 'a', big);
    assert_round_trip(gpt2, s, big);
    memset(s, ' ', big);
    s[big - 1] = 'x';
    assert_round_trip(gpt2, s, big);
    free(s);
}

static void test_decode_rejects_bad_id(void **state) {
    (void)state;
    int ids[] = {64, 50257};
    char *out;
    size_t len;
    BpError err = {0};
    assert_int_equal(tokenizer_decode(gpt2, ids, 2, &out, &len, &err), -1);
    assert_non_null(strstr(err.msg, "50257"));
}

/* --- malformed tokenizer files --------------------------------------------------------- */

/* Writes DIR/vocab.json = the 256 GPT-2 byte tokens (+ extra entries) and
 * DIR/merges.txt = merges, then expects tokenizer_load to fail with both needles. */
static void expect_load_error(const char *name, const char *extra_vocab, const char *merges,
                              const char *needle1, const char *needle2) {
    char dir[512], path[600];
    temp_dir_path(&tmp, name, dir, sizeof dir);
    BpError err = {0};
    assert_int_equal(make_dirs(dir, &err), 0);
    if (extra_vocab) {
        json_t *v = json_object();
        for (int id = 0; id < 256; id++)
            json_object_set_new(v, tokenizer_token_string(gpt2, id), json_integer(id));
        char *text = json_dumps(v, JSON_PRESERVE_ORDER | JSON_COMPACT);
        json_decref(v);
        text[strlen(text) - 1] = '\0';   /* drop the closing brace to add entries */
        snprintf(path, sizeof path, "%s/vocab.json", dir);
        FILE *fp = fopen(path, "w");
        fprintf(fp, "%s%s}\n", text, extra_vocab);
        fclose(fp);
        free(text);
    }
    if (merges) {
        snprintf(path, sizeof path, "%s/merges.txt", dir);
        assert_int_equal(write_file_atomic(path, merges, strlen(merges), &err), 0);
    }
    Tokenizer *t = NULL;
    memset(&err, 0, sizeof err);
    assert_int_equal(tokenizer_load(&t, dir, &err), -1);
    assert_null(t);
    if (!strstr(err.msg, needle1) || (needle2 && !strstr(err.msg, needle2)))
        fail_msg("case %s: error \"%s\" lacks \"%s\" / \"%s\"", name, err.msg, needle1, needle2 ? needle2 : "");
}

static void test_good_small_tokenizer_loads(void **state) {
    (void)state;
    char dir[512], path[600];
    temp_dir_path(&tmp, "good", dir, sizeof dir);
    BpError err = {0};
    make_dirs(dir, &err);
    json_t *v = json_object();
    for (int id = 0; id < 256; id++) json_object_set_new(v, tokenizer_token_string(gpt2, id), json_integer(id));
    json_object_set_new(v, "ab", json_integer(256));
    json_object_set_new(v, "abab", json_integer(257));
    json_object_set_new(v, "<|endoftext|>", json_integer(258));
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    assert_int_equal(json_dump_file(v, path, 0), 0);
    json_decref(v);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    const char merges[] = "#version: 0.2\r\na b\r\nab ab\r\n\n";
    assert_int_equal(write_file_atomic(path, merges, sizeof merges - 1, &err), 0);
    Tokenizer *t;
    if (tokenizer_load(&t, dir, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(tokenizer_vocab_size(t), 259);
    assert_int_equal(tokenizer_eot(t), 258);
    assert_int_equal(tokenizer_n_merges(t), 2);
    int *ids;
    size_t n;
    encode_all(t, "ababab", 6, &ids, &n);   /* a b a b a b -> ab ab ab -> abab ab */
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 257);
    assert_int_equal(ids[1], 256);
    free(ids);
    tokenizer_free(t);
}

static void test_missing_files(void **state) {
    (void)state;
    expect_load_error("no-vocab", NULL, "#version: 0.2\n", "no-vocab/vocab.json", "No such file");
    expect_load_error("no-merges", "", NULL, "no-merges/merges.txt", "No such file");
}

static void test_malformed_vocab(void **state) {
    (void)state;
    /* JSON syntax error: the line is reported. */
    char dir[512], path[600];
    temp_dir_path(&tmp, "syntax", dir, sizeof dir);
    BpError err = {0};
    make_dirs(dir, &err);
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    const char bad[] = "{\"a\": 0,\n\"b\": 1,\n\"c\" 2}\n";
    write_file_atomic(path, bad, sizeof bad - 1, &err);
    Tokenizer *t = NULL;
    assert_int_equal(tokenizer_load(&t, dir, &err), -1);
    assert_non_null(strstr(err.msg, "syntax/vocab.json:3:"));

    expect_load_error("not-int", ",\"xy\":\"256\"", "", "vocab.json: key \"xy\"", "integer");
    expect_load_error("id-range", ",\"xy\":300", "", "vocab.json: key \"xy\"", "0..256");
    expect_load_error("dup-id", ",\"xy\":255,\"xz\":256", "", "vocab.json: key \"xy\": id 255 is also the id of", NULL);
    expect_load_error("dup-key", ",\"xy\":256,\"xy\":257", "", "vocab.json", "duplicate");
    expect_load_error("alphabet", ",\"a b\":256", "", "key \"a b\"", "U+0020");
    /* A vocabulary without the token of byte 0x0a ('Ċ', id 198 in GPT-2 is not in
     * the first 256, so replace the token of id 0 instead). */
    char dir2[512];
    temp_dir_path(&tmp, "no-byte", dir2, sizeof dir2);
    make_dirs(dir2, &err);
    json_t *v = json_object();
    for (int id = 1; id < 256; id++) json_object_set_new(v, tokenizer_token_string(gpt2, id), json_integer(id - 1));
    json_object_set_new(v, "xy", json_integer(255));
    snprintf(path, sizeof path, "%s/vocab.json", dir2);
    json_dump_file(v, path, 0);
    json_decref(v);
    snprintf(path, sizeof path, "%s/merges.txt", dir2);
    write_file_atomic(path, "", 0, &err);
    assert_int_equal(tokenizer_load(&t, dir2, &err), -1);
    assert_non_null(strstr(err.msg, "no-byte/vocab.json: no token for byte 0x21"));
}

static void test_malformed_merges(void **state) {
    (void)state;
    const char *vocab = ",\"ab\":256,\"abc\":257";
    expect_load_error("m-one", vocab, "#version: 0.2\na b\nabc\n", "m-one/merges.txt:3:", "two tokens");
    expect_load_error("m-three", vocab, "a b\nab c d\n", "m-three/merges.txt:2:", "two tokens");
    expect_load_error("m-two-spaces", vocab, "a  b\n", "merges.txt:1:", "two tokens");
    expect_load_error("m-unknown", vocab, "a b\nab zz\n", "m-unknown/merges.txt:2:", "\"zz\" is not in vocab.json");
    expect_load_error("m-result", vocab, "a b\nb c\n", "m-result/merges.txt:2:", "merged token \"bc\"");
    expect_load_error("m-dup", vocab, "a b\nab c\na b\n", "m-dup/merges.txt:3:", "duplicate merge");
    expect_load_error("m-blank", vocab, "a b\n\nab c\n", "m-blank/merges.txt:2:", "empty line");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vocabulary_basics),
        cmocka_unit_test(test_token_readable),
        cmocka_unit_test(test_parity_with_reference),
        cmocka_unit_test(test_special_token_and_lookalikes),
        cmocka_unit_test(test_invalid_utf8_rule),
        cmocka_unit_test(test_random_bytes_round_trip),
        cmocka_unit_test(test_decode_rejects_bad_id),
        cmocka_unit_test(test_good_small_tokenizer_loads),
        cmocka_unit_test(test_missing_files),
        cmocka_unit_test(test_malformed_vocab),
        cmocka_unit_test(test_malformed_merges),
    };
    return cmocka_run_group_tests_name("text/tokenizer", tests, setup, teardown);
}
