/* The safetensors reader and writer: round trips, half-precision conversion, the
 * reference layout, and every malformed header the reader must refuse. */
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
#include "../model/safetensors.h"

static char path[512];

static int setup(void **state) {
    (void)state;
    if (temp_dir_create(&tmp, "safetensors") != 0) return -1;
    snprintf(path, sizeof path, "%s/t.safetensors", tmp.path);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    temp_dir_remove(&tmp);
    return 0;
}

/* Writes 8-byte length + header (not padded) + data, as a hand-made file. */
static void write_raw(const char *header, const void *data, size_t data_len) {
    size_t n = strlen(header);
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)n >> (8 * i));
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(len, 1, 8, fp), 8);
    assert_int_equal(fwrite(header, 1, n, fp), n);
    if (data_len) assert_int_equal(fwrite(data, 1, data_len, fp), data_len);
    fclose(fp);
}

static void write_bytes(const void *bytes, size_t n) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (n) assert_int_equal(fwrite(bytes, 1, n, fp), n);
    fclose(fp);
}

/* Opening must fail with a message containing every given fragment (NULL-terminated). */
static void expect_open_fails(const char *frag, ...) {
    SafeTensorsFile f;
    BpError err = {0};
    assert_int_equal(safetensors_open(&f, path, &err), -1);
    assert_int_equal(f.fd, -1);
    assert_non_null(strstr(err.msg, path));
    va_list ap;
    va_start(ap, frag);
    for (const char *s = frag; s; s = va_arg(ap, const char *)) {
        if (!strstr(err.msg, s)) print_error("message '%s' lacks '%s'\n", err.msg, s);
        assert_non_null(strstr(err.msg, s));
    }
    va_end(ap);
    assert_null(strchr(err.msg, '\n'));
}

static float data12[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};

/* A valid two-tensor file: "a" F32 [2, 3] at [0, 24), "b" F32 [3] at [24, 36). */
static const char *GOOD =
    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
    "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]}}";

static void test_round_trip(void **state) {
    (void)state;
    float w[6] = {1.5f, -2.25f, 3e-8f, INFINITY, -0.0f, 1e30f};
    float bias[3] = {0.1f, 0.2f, 0.3f};
    float scalar = 42.0f;
    uint8_t mask[4] = {1, 0, 1, 1};
    SafeTensorOut out[4] = {
        {.name = "z.weight", .dtype = ST_F32, .ndim = 2, .shape = {2, 3}, .data = w},
        {.name = "a.bias", .dtype = ST_F32, .ndim = 1, .shape = {3}, .data = bias},
        {.name = "mask", .dtype = ST_BOOL, .ndim = 3, .shape = {1, 2, 2}, .data = mask},
        {.name = "s", .dtype = ST_F32, .ndim = 0, .data = &scalar},
    };
    const char *mk[] = {"format"}, *mv[] = {"pt"};
    BpError err = {0};
    assert_int_equal(safetensors_write(path, out, 4, mk, mv, 1, &err), 0);

    SafeTensorsFile f;
    assert_int_equal(safetensors_open(&f, path, &err), 0);
    assert_int_equal(f.count, 4);
    assert_string_equal(safetensors_metadata(&f, "format"), "pt");
    assert_null(safetensors_metadata(&f, "other"));
    assert_int_equal(f.data_start % 8, 0);
    assert_int_equal(f.file_size, f.data_start + 24 + 12 + 4 + 4);

    const SafeTensorInfo *t = safetensors_find(&f, "z.weight");
    assert_non_null(t);
    assert_int_equal(t->dtype, ST_F32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    float back[6];
    assert_int_equal(safetensors_read_f32(&f, t, back, &err), 0);
    assert_memory_equal(back, w, sizeof w);

    t = safetensors_find(&f, "s");
    assert_non_null(t);
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->numel, 1);
    float sb;
    assert_int_equal(safetensors_read_f32(&f, t, &sb, &err), 0);
    assert_true(sb == 42.0f);

    t = safetensors_find(&f, "mask");
    assert_non_null(t);
    assert_int_equal(t->dtype, ST_BOOL);
    uint8_t mb[4];
    assert_int_equal(safetensors_read_raw(&f, t, mb, &err), 0);
    assert_memory_equal(mb, mask, 4);
    /* A BOOL tensor is not float data. */
    float fb[4];
    assert_int_equal(safetensors_read_f32(&f, t, fb, &err), -1);
    assert_non_null(strstr(err.msg, "'mask'"));
    assert_non_null(strstr(err.msg, "BOOL"));

    /* The reference layout: F32 tensors first in name order, then the 1-byte dtype. */
    assert_int_equal(safetensors_find(&f, "a.bias")->begin, 0);
    assert_int_equal(safetensors_find(&f, "s")->begin, 12);
    assert_int_equal(safetensors_find(&f, "z.weight")->begin, 16);
    assert_int_equal(safetensors_find(&f, "mask")->begin, 40);
    assert_null(safetensors_find(&f, "missing"));
    safetensors_close(&f);

    /* The header is padded with spaces to a multiple of 8 and starts with the metadata. */
    char *raw;
    size_t len;
    assert_int_equal(read_file(path, &raw, &len, &err), 0);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | (unsigned char)raw[i];
    assert_int_equal(n % 8, 0);
    assert_int_equal(strncmp(raw + 8, "{\"__metadata__\":{\"format\":\"pt\"},\"a.bias\":", 41), 0);
    size_t end = 8 + n;
    while (raw[end - 1] == ' ') end--;
    assert_int_equal(raw[end - 1], '}');
    assert_true(8 + n - end < 8);
    free(raw);
}

static void test_empty_file_of_tensors(void **state) {
    (void)state;
    BpError err = {0};
    assert_int_equal(safetensors_write(path, NULL, 0, NULL, NULL, 0, &err), 0);
    SafeTensorsFile f;
    assert_int_equal(safetensors_open(&f, path, &err), 0);
    assert_int_equal(f.count, 0);
    safetensors_close(&f);
}

static void test_writer_refuses_duplicates(void **state) {
    (void)state;
    float x = 1;
    SafeTensorOut out[2] = {
        {.name = "x", .dtype = ST_F32, .ndim = 1, .shape = {1}, .data = &x},
        {.name = "x", .dtype = ST_F32, .ndim = 1, .shape = {1}, .data = &x},
    };
    BpError err = {0};
    assert_int_equal(safetensors_write(path, out, 2, NULL, NULL, 0, &err), -1);
    assert_non_null(strstr(err.msg, "'x'"));
    assert_false(file_exists(path));
}

static void test_half_precision_converted(void **state) {
    (void)state;
    /* 1, -2, 65504 (largest half), 2^-24 (smallest subnormal), 2^-14 (smallest normal), +inf */
    uint16_t h[6] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x0400, 0x7C00};
    /* 1, -3, 1.5, 2^-133 (bf16 subnormal) */
    uint16_t b[4] = {0x3F80, 0xC040, 0x3FC0, 0x0001};
    SafeTensorOut out[2] = {
        {.name = "h", .dtype = ST_F16, .ndim = 1, .shape = {6}, .data = h},
        {.name = "b", .dtype = ST_BF16, .ndim = 2, .shape = {2, 2}, .data = b},
    };
    BpError err = {0};
    assert_int_equal(safetensors_write(path, out, 2, NULL, NULL, 0, &err), 0);
    SafeTensorsFile f;
    assert_int_equal(safetensors_open(&f, path, &err), 0);
    float hv[6], bv[4];
    assert_int_equal(safetensors_read_f32(&f, safetensors_find(&f, "h"), hv, &err), 0);
    assert_int_equal(safetensors_read_f32(&f, safetensors_find(&f, "b"), bv, &err), 0);
    assert_true(hv[0] == 1.0f);
    assert_true(hv[1] == -2.0f);
    assert_true(hv[2] == 65504.0f);
    assert_true(hv[3] == ldexpf(1.0f, -24));
    assert_true(hv[4] == ldexpf(1.0f, -14));
    assert_true(isinf(hv[5]) && hv[5] > 0);
    assert_true(bv[0] == 1.0f);
    assert_true(bv[1] == -3.0f);
    assert_true(bv[2] == 1.5f);
    assert_true(bv[3] == ldexpf(1.0f, -133));
    safetensors_close(&f);
}

static void test_large_half_tensor_spans_chunks(void **state) {
    (void)state;
    /* More elements than the reader's 65536-element conversion buffer. */
    size_t n = 70000;
    uint16_t *h = malloc(n * 2);
    assert_non_null(h);
    for (size_t i = 0; i < n; i++) h[i] = (uint16_t)(0x3C00 + (i % 1024));  /* 1 + (i%1024)/1024 */
    SafeTensorOut out = {.name = "big", .dtype = ST_F16, .ndim = 1, .shape = {(int64_t)n}, .data = h};
    BpError err = {0};
    assert_int_equal(safetensors_write(path, &out, 1, NULL, NULL, 0, &err), 0);
    SafeTensorsFile f;
    assert_int_equal(safetensors_open(&f, path, &err), 0);
    float *v = malloc(n * sizeof *v);
    assert_int_equal(safetensors_read_f32(&f, &f.tensors[0], v, &err), 0);
    for (size_t i = 0; i < n; i += 997) assert_true(v[i] == 1.0f + (float)(i % 1024) / 1024.0f);
    assert_true(v[n - 1] == 1.0f + (float)((n - 1) % 1024) / 1024.0f);
    safetensors_close(&f);
    free(v);
    free(h);
}

static void test_good_hand_made_file(void **state) {
    (void)state;
    write_raw(GOOD, data12, 36);
    SafeTensorsFile f;
    BpError err = {0};
    assert_int_equal(safetensors_open(&f, path, &err), 0);
    float b[3];
    assert_int_equal(safetensors_read_f32(&f, safetensors_find(&f, "b"), b, &err), 0);
    assert_true(b[0] == 6.0f && b[2] == 8.0f);
    safetensors_close(&f);
}

static void test_truncated_at_every_region(void **state) {
    (void)state;
    write_raw(GOOD, data12, 36);
    char *raw;
    size_t len;
    BpError err = {0};
    assert_int_equal(read_file(path, &raw, &len, &err), 0);
    size_t n = strlen(GOOD);
    size_t cuts[] = {0, 3, 7, 8, 9, 8 + n / 2, 8 + n - 1, 8 + n, 8 + n + 1, 8 + n + 24, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        write_bytes(raw, cuts[i]);
        SafeTensorsFile f;
        assert_int_equal(safetensors_open(&f, path, &err), -1);
        assert_non_null(strstr(err.msg, path));
    }
    /* The cut inside the data names the tensor that runs past the end. */
    write_bytes(raw, len - 1);
    expect_open_fails("'b'", "past the end", NULL);
    write_bytes(raw, 5);
    expect_open_fails("too short", NULL);
    write_bytes(raw, 8 + n / 2);
    expect_open_fails("header length", "past the end of the file", NULL);
    free(raw);
}

static void test_header_length_beyond_file(void **state) {
    (void)state;
    unsigned char buf[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
    write_bytes(buf, 16);
    expect_open_fails("header length 65535", "past the end", NULL);
    unsigned char huge[16] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'};
    write_bytes(huge, 16);
    expect_open_fails("exceeds", NULL);
}

static void test_bad_json(void **state) {
    (void)state;
    write_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],", data12, 12);
    expect_open_fails("not valid JSON", NULL);
    write_raw("[1,2,3]", NULL, 0);
    expect_open_fails("does not start with '{'", NULL);
    write_raw("{\"a\": 5}", NULL, 0);
    expect_open_fails("'a'", "not an object", NULL);
    /* Duplicate names would make one tensor's bytes ambiguous. */
    write_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
              "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", data12, 8);
    expect_open_fails("not valid JSON", "duplicate", NULL);
    write_raw("{\"a\\nb\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", data12, 4);
    expect_open_fails("control character", NULL);
    write_raw("{\"__metadata__\":{\"format\":3}}", NULL, 0);
    expect_open_fails("__metadata__", "'format'", NULL);
}

static void test_bad_dtype_and_shape(void **state) {
    (void)state;
    write_raw("{\"w\":{\"dtype\":\"F33\",\"shape\":[3],\"data_offsets\":[0,12]}}", data12, 12);
    expect_open_fails("'w'", "unknown dtype \"F33\"", NULL);
    write_raw("{\"w\":{\"shape\":[3],\"data_offsets\":[0,12]}}", data12, 12);
    expect_open_fails("'w'", "dtype", NULL);
    write_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[-3],\"data_offsets\":[0,12]}}", data12, 12);
    expect_open_fails("'w'", "shape entry 0", NULL);
    write_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,12]}}", data12, 12);
    expect_open_fails("'w'", "shape entry 0", NULL);
    write_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],"
              "\"data_offsets\":[0,12]}}", data12, 12);
    expect_open_fails("'w'", "overflows", NULL);
    write_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,3],\"data_offsets\":[0,12]}}",
              data12, 12);
    expect_open_fails("'w'", "dimensions", NULL);
    /* The offsets must hold exactly dtype size * numel bytes. */
    write_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", data12, 12);
    expect_open_fails("'w'", "hold 12 bytes", "needs 8", NULL);
    write_raw("{\"w\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[0,12]}}", data12, 12);
    expect_open_fails("'w'", "needs 24", NULL);
}

static void test_bad_offsets(void **state) {
    (void)state;
    /* Out of range. */
    write_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[40,52]}}", data12, 12);
    expect_open_fails("'w'", "past the end", NULL);
    write_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[12,0]}}", data12, 12);
    expect_open_fails("'w'", "end before begin", NULL);
    write_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[-4,8]}}", data12, 12);
    expect_open_fails("'w'", "non-negative", NULL);
    write_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0]}}", data12, 12);
    expect_open_fails("'w'", "data_offsets", NULL);
    /* Overlapping: b starts inside a. */
    write_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,20]}}", data12, 20);
    expect_open_fails("'b'", "overlap tensor 'a'", NULL);
    /* Two tensors on the same bytes. */
    write_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}", data12, 12);
    expect_open_fails("overlap", NULL);
    /* A gap between tensors. */
    write_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", data12, 12);
    expect_open_fails("'b'", "gap", NULL);
    /* Bytes after the last tensor. */
    write_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", data12, 12);
    expect_open_fails("4 bytes after the last tensor", NULL);
}

static void test_missing_file(void **state) {
    (void)state;
    SafeTensorsFile f;
    BpError err = {0};
    assert_int_equal(safetensors_open(&f, "/nonexistent/m.safetensors", &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/m.safetensors"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file_of_tensors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_refuses_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half_precision_converted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_half_tensor_spans_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_good_hand_made_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_at_every_region, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_length_beyond_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_dtype_and_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
