/* Token files: round trips at both id widths, atomic abort, and every header or size
 * fault the reader must reject with the file named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "../text/tokenizer.h"
#include "../text/tokfile.h"
#include "fixture.h"

static int setup(void **state) {
    (void)state;
    return temp_dir_create(&tmp, "tokfile");
}

static void write_ids(const char *path, uint32_t vocab, const int *ids, size_t n) {
    TokFileWriter *w;
    BpError err = {0};
    if (tokfile_writer_open(&w, path, vocab, &err) != 0) fail_msg("%s", err.msg);
    /* In two appends, to cross the call boundary. */
    assert_int_equal(tokfile_writer_append(w, ids, n / 2, &err), 0);
    assert_int_equal(tokfile_writer_append(w, ids + n / 2, n - n / 2, &err), 0);
    if (tokfile_writer_commit(w, &err) != 0) fail_msg("%s", err.msg);
}

static void test_round_trip_uint16(void **state) {
    (void)state;
    char path[512];
    temp_dir_path(&tmp, "a.tok", path, sizeof path);
    size_t n = 200000;   /* more than the writer's buffer */
    int *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) ids[i] = (int)((i * 7919) % 50257);
    write_ids(path, 50257, ids, n);
    TokFile tf;
    BpError err = {0};
    if (tokfile_open(&tf, path, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(tf.vocab_size, 50257);
    assert_int_equal(tf.id_width, 2);
    assert_int_equal(tf.count, n);
    for (size_t i = 0; i < n; i++) assert_int_equal(tokfile_get(&tf, i), (uint32_t)ids[i]);
    tokfile_close(&tf);
    /* The header bytes, little-endian. */
    char *data;
    size_t len;
    assert_int_equal(read_file(path, &data, &len, &err), 0);
    assert_int_equal(len, 64 + 2 * n);
    assert_memory_equal(data, "BKPK\x01\x00\x00\x00\x51\xc4\x00\x00\x02\x00\x00\x00", 16);
    free(data);
    free(ids);
}

static void test_round_trip_uint32_and_empty(void **state) {
    (void)state;
    char path[512];
    temp_dir_path(&tmp, "b.tok", path, sizeof path);
    int ids[] = {0, 65535, 65536, 99999};
    write_ids(path, 100000, ids, 4);
    TokFile tf;
    BpError err = {0};
    if (tokfile_open(&tf, path, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(tf.id_width, 4);
    assert_int_equal(tf.count, 4);
    for (int i = 0; i < 4; i++) assert_int_equal(tokfile_get(&tf, (uint64_t)i), (uint32_t)ids[i]);
    tokfile_close(&tf);
    /* vocab 65536 still fits uint16; an empty file is valid. */
    temp_dir_path(&tmp, "c.tok", path, sizeof path);
    write_ids(path, 65536, ids, 0);
    if (tokfile_open(&tf, path, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(tf.id_width, 2);
    assert_int_equal(tf.count, 0);
    tokfile_close(&tf);
}

static void test_writer_rejects_bad_id_and_abort_leaves_nothing(void **state) {
    (void)state;
    char path[512];
    temp_dir_path(&tmp, "d.tok", path, sizeof path);
    TokFileWriter *w;
    BpError err = {0};
    assert_int_equal(tokfile_writer_open(&w, path, 100, &err), 0);
    int bad[] = {5, 100};
    assert_int_equal(tokfile_writer_append(w, bad, 2, &err), -1);
    assert_non_null(strstr(err.msg, "d.tok: id 100 out of range for vocab size 100"));
    tokfile_writer_abort(w);
    assert_false(file_exists(path));
    assert_int_equal(access(tmp.path, F_OK), 0);
}

/* Writes a token file with a given header and payload size. */
static void write_raw(const char *path, uint32_t magic, uint32_t version, uint32_t vocab, uint32_t width,
                      uint64_t count, size_t payload, uint16_t fill) {
    unsigned char *buf = calloc(1, 64 + payload);
    memcpy(buf, &magic, 4);
    memcpy(buf + 4, &version, 4);
    memcpy(buf + 8, &vocab, 4);
    memcpy(buf + 12, &width, 4);
    memcpy(buf + 16, &count, 8);
    for (size_t i = 0; i + 1 < payload; i += 2) memcpy(buf + 64 + i, &fill, 2);
    BpError err = {0};
    assert_int_equal(write_file_atomic(path, buf, 64 + payload, &err), 0);
    free(buf);
}

static void expect_open_error(const char *name, const char *needle) {
    char path[512];
    temp_dir_path(&tmp, name, path, sizeof path);
    TokFile tf;
    BpError err = {0};
    assert_int_equal(tokfile_open(&tf, path, &err), -1);
    if (!strstr(err.msg, path) || !strstr(err.msg, needle))
        fail_msg("%s: error \"%s\" lacks the path or \"%s\"", name, err.msg, needle);
    assert_null(tf.map);
}

static void test_bad_files(void **state) {
    (void)state;
    char path[512];
    temp_dir_path(&tmp, "short.tok", path, sizeof path);
    BpError err = {0};
    write_file_atomic(path, "BKPK", 4, &err);
    expect_open_error("short.tok", "too short");
    temp_dir_path(&tmp, "magic.tok", path, sizeof path);
    write_raw(path, 0x12345678, 1, 100, 2, 4, 8, 1);
    expect_open_error("magic.tok", "not a token file");
    temp_dir_path(&tmp, "version.tok", path, sizeof path);
    write_raw(path, TOKFILE_MAGIC, 7, 100, 2, 4, 8, 1);
    expect_open_error("version.tok", "version 7");
    temp_dir_path(&tmp, "width.tok", path, sizeof path);
    write_raw(path, TOKFILE_MAGIC, 1, 100, 3, 4, 12, 1);
    expect_open_error("width.tok", "id width 3");
    temp_dir_path(&tmp, "vocab.tok", path, sizeof path);
    write_raw(path, TOKFILE_MAGIC, 1, 70000, 2, 4, 8, 1);
    expect_open_error("vocab.tok", "vocab size 70000");
    temp_dir_path(&tmp, "truncated.tok", path, sizeof path);
    write_raw(path, TOKFILE_MAGIC, 1, 100, 2, 5, 8, 1);
    expect_open_error("truncated.tok", "file size 72 does not match the header");
    temp_dir_path(&tmp, "long.tok", path, sizeof path);
    write_raw(path, TOKFILE_MAGIC, 1, 100, 2, 3, 8, 1);
    expect_open_error("long.tok", "does not match the header");
    temp_dir_path(&tmp, "overflow.tok", path, sizeof path);
    write_raw(path, TOKFILE_MAGIC, 1, 100, 4, UINT64_MAX / 2, 8, 1);
    expect_open_error("overflow.tok", "does not match the header");
    temp_dir_path(&tmp, "range.tok", path, sizeof path);
    write_raw(path, TOKFILE_MAGIC, 1, 100, 2, 4, 8, 100);
    expect_open_error("range.tok", "id 100 at position 0 is out of range");
    expect_open_error("missing.tok", "No such file");
}

/* A token file names its tokenizer: the vocabulary size always, the hash of its
 * vocabulary since the hash was added (0 in older files, which stay readable). */
static void test_tokenizer_check(void **state) {
    (void)state;
    Tokenizer *gpt2;
    BpError err = {0};
    if (tokenizer_load(&gpt2, "data/gpt2", &err) != 0) fail_msg("%s (run make data)", err.msg);
    uint64_t hash = tokfile_tokenizer_hash(gpt2);
    assert_true(hash != 0);
    assert_true(hash == tokfile_tokenizer_hash(gpt2));
    char path[512];
    temp_dir_path(&tmp, "named.tok", path, sizeof path);
    int ids[] = {1, 2, 50256};
    const struct { uint32_t vocab; uint64_t hash; int ok; const char *msg; } cases[] = {
        {50257, 0, 0, NULL},                     /* an older file: size only */
        {50257, hash, 0, NULL},
        {50257, hash ^ 1, -1, "made by a different tokenizer than data/gpt2"},
        {50264, hash, -1, "made by a tokenizer of 50264 ids, but data/gpt2 has 50257"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        TokFileWriter *w;
        assert_int_equal(tokfile_writer_open(&w, path, cases[c].vocab, &err), 0);
        tokfile_writer_set_tokenizer_hash(w, cases[c].hash);
        assert_int_equal(tokfile_writer_append(w, ids, 3, &err), 0);
        assert_int_equal(tokfile_writer_commit(w, &err), 0);
        TokFile tf;
        assert_int_equal(tokfile_open(&tf, path, &err), 0);
        assert_true(tf.tokenizer_hash == cases[c].hash);
        tokfile_close(&tf);
        err.msg[0] = 0;
        assert_int_equal(tokfile_check_tokenizer(path, gpt2, "data/gpt2", &err), cases[c].ok);
        if (cases[c].msg) assert_non_null(strstr(err.msg, cases[c].msg));
    }
    tokenizer_free(gpt2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenizer_check),
        cmocka_unit_test(test_round_trip_uint16),
        cmocka_unit_test(test_round_trip_uint32_and_empty),
        cmocka_unit_test(test_writer_rejects_bad_id_and_abort_leaves_nothing),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests_name("text/tokfile", tests, setup, temp_dir_teardown);
}
