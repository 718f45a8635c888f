/* backpack tokenize: documents, the train/validation split, streaming in chunks (ids
 * equal to encoding each document whole), bad inputs leaving nothing behind, and the
 * command line's error format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "../common/rng.h"
#include "../text/docstream.h"
#include "../text/tokenize.h"
#include "../text/tokenizer.h"
#include "../text/tokfile.h"
#include "fixture.h"

static Tokenizer *gpt2;

static int setup(void **state) {
    (void)state;
    BpError err = {0};
    if (tokenizer_load(&gpt2, "data/gpt2", &err) != 0) {
        fprintf(stderr, "cannot load the GPT-2 tokenizer (run make data): %s\n", err.msg);
        return -1;
    }
    return temp_dir_create(&tmp, "tokenize");
}

static int teardown(void **state) {
    (void)state;
    tokenizer_free(gpt2);
    temp_dir_remove(&tmp);
    return 0;
}

/* Writes text to DIR/NAME.txt and tokenizes it alone into prefix = DIR/NAME. */
static void tokenize_one_file(const char *name, const char *text, size_t len, double val_fraction,
                              char *prefix, size_t prefix_size, TokenizeStats *st) {
    char file[512], file_name[64];
    snprintf(file_name, sizeof file_name, "%s.txt", name);
    temp_dir_write(&tmp, file_name, text, len, file, sizeof file);
    temp_dir_path(&tmp, name, prefix, prefix_size);
    const char *files[] = {file};
    BpError err = {0};
    if (tokenize_corpus(gpt2, files, 1, prefix, val_fraction, st, &err) != 0) fail_msg("%s", err.msg);
}

/* Appends the ids of text + <|endoftext|> to (ids, n, cap). */
static void expect_doc(const char *text, int **ids, size_t *n, size_t *cap) {
    BpError err = {0};
    assert_int_equal(tokenizer_encode(gpt2, text, strlen(text), ids, n, cap, &err), 0);
    int eot = 50256;
    assert_int_equal(tokenizer_encode(gpt2, "<|endoftext|>", 13, ids, n, cap, &err), 0);
    assert_int_equal((*ids)[*n - 1], eot);
}

static void assert_tokfile(const char *path, const int *ids, size_t n) {
    TokFile tf;
    BpError err = {0};
    if (tokfile_open(&tf, path, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(tf.vocab_size, 50257);
    if (tf.count != n) fail_msg("%s: %llu ids, expected %zu", path, (unsigned long long)tf.count, n);
    for (size_t i = 0; i < n; i++) assert_int_equal(tokfile_get(&tf, i), (uint32_t)ids[i]);
    tokfile_close(&tf);
}

static void test_validation_rule(void **state) {
    (void)state;
    int val = 0;
    for (uint64_t i = 0; i < 1000; i++) val += tokenize_is_validation(i, 0.1);
    assert_int_equal(val, 100);
    assert_false(tokenize_is_validation(0, 0.1));
    assert_true(tokenize_is_validation(9, 0.1));
    assert_true(tokenize_is_validation(1, 0.5));
    assert_false(tokenize_is_validation(5, 0.0));
    assert_true(tokenize_is_validation(0, 1.0));
}

static void test_documents_and_split(void **state) {
    (void)state;
    /* Documents: "one", "two\n\nlines", "three" (file 1), "four", "five" (file 2); the
     * empty ones between separators are skipped. With F = 0.5 documents 1 and 3 go to
     * validation. */
    char f1[512], f2[512], prefix[512], path[600];
    const char t1[] = "one\n<|endoftext|>\ntwo\n\nlines\n<|endoftext|>\n<|endoftext|>three\n";
    const char t2[] = "four<|endoftext|>\n\n<|endoftext|>five";
    temp_dir_write(&tmp, "f1.txt", t1, sizeof t1 - 1, f1, sizeof f1);
    temp_dir_write(&tmp, "f2.txt", t2, sizeof t2 - 1, f2, sizeof f2);
    temp_dir_path(&tmp, "out", prefix, sizeof prefix);
    const char *files[] = {f1, f2};
    TokenizeStats st;
    BpError err = {0};
    if (tokenize_corpus(gpt2, files, 2, prefix, 0.5, &st, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(st.docs[0], 3);
    assert_int_equal(st.docs[1], 2);
    int *train = NULL, *val = NULL;
    size_t n_train = 0, n_val = 0, c1 = 0, c2 = 0;
    expect_doc("one", &train, &n_train, &c1);
    expect_doc("two\n\nlines", &val, &n_val, &c2);
    expect_doc("three", &train, &n_train, &c1);
    expect_doc("four", &val, &n_val, &c2);
    expect_doc("five", &train, &n_train, &c1);
    assert_int_equal(st.ids[0], n_train);
    assert_int_equal(st.ids[1], n_val);
    snprintf(path, sizeof path, "%s.train.tok", prefix);
    assert_tokfile(path, train, n_train);
    snprintf(path, sizeof path, "%s.val.tok", prefix);
    assert_tokfile(path, val, n_val);
    free(train);
    free(val);
}

static void test_safe_cut(void **state) {
    (void)state;
    assert_int_equal(docstream_safe_cut("ab cd ef", 8), 5);
    assert_int_equal(docstream_safe_cut("ab  ", 4), 2);         /* only after alnum */
    assert_int_equal(docstream_safe_cut("x<|endoftext|>yy", 16), 14);
    assert_int_equal(docstream_safe_cut("..  !!\n\n", 8), 0);
    assert_int_equal(docstream_safe_cut("a\n b", 4), 0);
}

static void test_streaming_equals_whole_encoding(void **state) {
    (void)state;
    /* A 2.5 MB document crosses several chunk boundaries; its ids must equal encoding it
     * whole. Words, runs of spaces and newlines, multi-byte characters, bad bytes. */
    static const char *pieces[] = {"word", " ", "  ", "\n", "\n\n", "it's", "42", "\xc3\xa9t\xc3\xa9",
                                   "\xe4\xbd\xa0", "\xf0\x9f\x98\x80", "\xff", "...", "\t"};
    size_t cap = 2500000, len = 0;
    char *text = malloc(cap + 16);
    Rng rng;
    rng_seed(&rng, 7);
    while (len < cap) {
        const char *p = pieces[rng_next(&rng) % (sizeof pieces / sizeof *pieces)];
        memcpy(text + len, p, strlen(p));
        len += strlen(p);
    }
    text[0] = 'x';          /* no newline to drop at the start */
    text[len++] = 'z';      /* nor at the end */
    char prefix[512], path[600];
    TokenizeStats st;
    BpError err = {0};
    tokenize_one_file("big", text, len, 0.0, prefix, sizeof prefix, &st);
    int *ids = NULL;
    size_t n = 0, c = 0;
    assert_int_equal(tokenizer_encode(gpt2, text, len, &ids, &n, &c, &err), 0);
    ids = realloc(ids, (n + 1) * sizeof *ids);
    ids[n++] = 50256;
    snprintf(path, sizeof path, "%s.train.tok", prefix);
    assert_tokfile(path, ids, n);
    snprintf(path, sizeof path, "%s.val.tok", prefix);
    assert_tokfile(path, NULL, 0);
    free(ids);
    free(text);
}

static void test_bad_inputs_leave_nothing(void **state) {
    (void)state;
    char good[512], empty[512], missing[600], prefix[512], path[600];
    temp_dir_write(&tmp, "good.txt", "text", 4, good, sizeof good);
    temp_dir_write(&tmp, "empty.txt", "\n<|endoftext|>\n\n", 16, empty, sizeof empty);
    temp_dir_path(&tmp, "missing.txt", missing, sizeof missing);
    temp_dir_path(&tmp, "bad", prefix, sizeof prefix);
    TokenizeStats st;
    BpError err = {0};
    const char *with_missing[] = {good, missing};
    assert_int_equal(tokenize_corpus(gpt2, with_missing, 2, prefix, 0.1, &st, &err), -1);
    assert_non_null(strstr(err.msg, "missing.txt: cannot open"));
    const char *only_empty[] = {empty};
    assert_int_equal(tokenize_corpus(gpt2, only_empty, 1, prefix, 0.1, &st, &err), -1);
    assert_non_null(strstr(err.msg, "empty.txt: empty corpus"));
    const char *dir[] = {tmp.path};
    assert_int_equal(tokenize_corpus(gpt2, dir, 1, prefix, 0.1, &st, &err), -1);
    assert_non_null(strstr(err.msg, "is a directory"));
    assert_int_equal(tokenize_corpus(gpt2, only_empty, 1, prefix, 1.5, &st, &err), -1);
    assert_non_null(strstr(err.msg, "--val-fraction"));
    snprintf(path, sizeof path, "%s.train.tok", prefix);
    assert_false(file_exists(path));
    snprintf(path, sizeof path, "%s.val.tok", prefix);
    assert_false(file_exists(path));
    /* No temporary files either. */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp-", tmp.path);
    assert_int_not_equal(system(cmd), 0);
}

/* One file of many lines is one document: too few for a validation document, so the
 * last share of its ids (cut after a newline) becomes the validation file; train and
 * validation together are exactly the document's ids. */
static void test_single_document_tail_split(void **state) {
    (void)state;
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    for (int line = 0; line < 200; line++)
        len += (size_t)snprintf(text + len, cap - len, "Line %d of the only document, with some words.\n", line);
    char prefix[512], path[600];
    TokenizeStats st;
    tokenize_one_file("one", text, len, 0.1, prefix, sizeof prefix, &st);
    assert_int_equal(st.docs[0], 1);
    assert_int_equal(st.docs[1], 0);
    assert_int_equal(st.tail_split, 1);
    assert_int_equal(st.tail_at_line, 1);
    int *ids = NULL;
    size_t n = 0, c = 0;
    text[len - 1] = 0;   /* the newline before the end of the file is not the document's */
    expect_doc(text, &ids, &n, &c);
    size_t cut = st.ids[0];
    assert_int_equal(st.ids[0] + st.ids[1], n);
    /* about a tenth, within a line (each line is ~12 ids) */
    assert_true(fabs((double)st.ids[1] - 0.1 * (double)n) < 20);
    size_t last_len;
    const char *last = tokenizer_token_bytes(gpt2, ids[cut - 1], &last_len);
    assert_true(last_len > 0 && last[last_len - 1] == '\n');
    snprintf(path, sizeof path, "%s.train.tok", prefix);
    assert_tokfile(path, ids, cut);
    snprintf(path, sizeof path, "%s.val.tok", prefix);
    assert_tokfile(path, ids + cut, n - cut);
    /* with --val-fraction 0 nothing is held out */
    text[len - 1] = '\n';
    tokenize_one_file("one", text, len, 0.0, prefix, sizeof prefix, &st);
    assert_int_equal(st.tail_split, 0);
    assert_int_equal(st.ids[1], 0);
    free(ids);
    free(text);
}

/* Runs the backpack binary (from tests/run.sh's BACKPACK) and captures stderr. */
static int run_backpack(const char *args, char *out, size_t out_size) {
    const char *bin = getenv("BACKPACK");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1 >/dev/null", bin, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, out_size - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_command_line_errors(void **state) {
    (void)state;
    if (!getenv("BACKPACK")) skip();   /* run by tests/run.sh, which sets it */
    char out[2048], args[2048], good[512];
    temp_dir_write(&tmp, "cli.txt", "hello", 5, good, sizeof good);
    snprintf(args, sizeof args, "tokenize --tokenizer data/gpt2 --out %s/cli %s/nope.txt", tmp.path, tmp.path);
    assert_int_equal(run_backpack(args, out, sizeof out), 1);
    assert_non_null(strstr(out, "backpack: "));
    assert_non_null(strstr(out, "nope.txt: cannot open"));
    snprintf(args, sizeof args, "tokenizer train --vocab-size 200 --out %s/cli-tok %s", tmp.path, good);
    assert_int_equal(run_backpack(args, out, sizeof out), 1);
    assert_non_null(strstr(out, "vocab size 200 is below 257"));
    snprintf(args, sizeof args, "tokenize --tokenizer %s --out %s/cli %s", tmp.path, tmp.path, good);
    assert_int_equal(run_backpack(args, out, sizeof out), 1);
    assert_non_null(strstr(out, "vocab.json: cannot open"));
    assert_int_equal(run_backpack("tokenize --help", out, sizeof out), 0);
    assert_int_equal(run_backpack("tokenizer --help", out, sizeof out), 0);
    assert_int_equal(run_backpack("corpus-brown --help", out, sizeof out), 0);
    assert_int_equal(run_backpack("corpus-brown --out", out, sizeof out), 2);
    /* one large text file: the tail goes to validation, and the command says so */
    char big[512];
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    for (int line = 0; line < 100; line++)
        len += (size_t)snprintf(text + len, cap - len, "Sentence %d, one line of one file.\n", line);
    temp_dir_write(&tmp, "cli-big.txt", text, len, big, sizeof big);
    free(text);
    snprintf(args, sizeof args, "tokenize --tokenizer data/gpt2 --out %s/cli-big %s", tmp.path, big);
    assert_int_equal(run_backpack(args, out, sizeof out), 0);
    assert_non_null(strstr(out, "backpack: tokenize: 1 document is too few for --val-fraction 0.1: "));
    assert_non_null(strstr(out, "cut at a line end)\n"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation_rule),
        cmocka_unit_test(test_documents_and_split),
        cmocka_unit_test(test_safe_cut),
        cmocka_unit_test(test_streaming_equals_whole_encoding),
        cmocka_unit_test(test_bad_inputs_leave_nothing),
        cmocka_unit_test(test_single_document_tail_split),
        cmocka_unit_test(test_command_line_errors),
    };
    return cmocka_run_group_tests_name("text/tokenize", tests, setup, teardown);
}
