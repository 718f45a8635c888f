/* metrics.jsonl read back: the trainer's lines, a truncated last line, and bad files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fileio.h"
#include "../plot/metrics.h"
#include "fixture.h"

static char path[512];

static int setup(void **state) {
    (void)state;
    if (temp_dir_create(&tmp, "metrics") != 0) return -1;
    temp_dir_path(&tmp, "metrics.jsonl", path, sizeof path);
    return 0;
}

static size_t put_len;   /* bytes of the next put, 0 = strlen */
static void put(const char *text) {
    BpError err;
    assert_int_equal(write_file_atomic(path, text, put_len ? put_len : strlen(text), &err), 0);
    put_len = 0;
}

/* Lines exactly as train/trainer.c writes them. */
#define STEP(n, loss, tokens) \
    "{\"step\": " #n ", \"loss\": " #loss ", \"lr\": 0.001, \"grad_norm\": 0.5, \"tokens\": " #tokens \
    ", \"elapsed\": 1.5, \"tokens_per_s\": 100.0}\n"
#define EVAL(n, loss) \
    "{\"step\": " #n ", \"val_loss\": " #loss ", \"val_ppl\": 3.0, \"tokens\": 2048, \"elapsed\": 3.000}\n"

static void test_reads_steps_and_evaluations(void **state) {
    (void)state;
    put(STEP(1, 9.5, 1024) STEP(2, 8.25, 2048) EVAL(2, 8.5) "\n" STEP(3, 7.0, 3072));
    RunMetrics m;
    BpError err = {{0}};
    assert_int_equal(run_metrics_read(path, &m, &err), 0);
    assert_int_equal(m.n, 3);
    assert_int_equal(m.n_val, 1);
    assert_true(m.loss[0] == 9.5 && m.loss[1] == 8.25 && m.loss[2] == 7.0);
    assert_true(m.step[2] == 3 && m.tokens[1] == 2048 && m.lr[0] == 0.001 && m.grad_norm[2] == 0.5);
    assert_true(m.elapsed[0] == 1.5);
    assert_true(m.val_loss[0] == 8.5 && m.val_step[0] == 2 && m.val_tokens[0] == 2048 && m.val_elapsed[0] == 3);
    assert_string_equal(m.note, "");
    run_metrics_free(&m);
}

/* A run killed mid-write: the valid lines, and a note naming the file and line. */
static void test_truncated_last_line_is_skipped_with_a_note(void **state) {
    (void)state;
    put(STEP(1, 9.5, 1024) STEP(2, 8.25, 2048) "{\"step\": 3, \"loss\": 7.");
    RunMetrics m;
    BpError err = {{0}};
    assert_int_equal(run_metrics_read(path, &m, &err), 0);
    assert_int_equal(m.n, 2);
    char want[600];
    snprintf(want, sizeof want, "%s:3: incomplete last line", path);
    assert_non_null(strstr(m.note, want));
    run_metrics_free(&m);
}

static void expect_error(const char *text, const char *want_suffix) {
    put(text);
    RunMetrics m;
    BpError err = {{0}};
    assert_int_equal(run_metrics_read(path, &m, &err), -1);
    char want[700];
    snprintf(want, sizeof want, "%s%s", path, want_suffix);
    if (!strstr(err.msg, want)) fail_msg("error '%s' lacks '%s'", err.msg, want);
    assert_int_equal(m.n, 0);
    assert_null(m.loss);
    run_metrics_free(&m);
}

static void test_bad_files_name_file_and_line(void **state) {
    (void)state;
    expect_error("", ": empty file");
    expect_error(STEP(1, 9.5, 1024) "garbage here\n" STEP(3, 7.0, 3072), ":2: ");
    expect_error(STEP(1, 9.5, 1024) "[1, 2]\n", ":2: not a JSON object");
    expect_error("{\"step\": 1, \"tokens\": 5}\n", ":1: neither \"loss\" nor \"val_loss\"");
    expect_error("{\"step\": 1, \"loss\": 2.0, \"grad_norm\": 1}\n", ":1: \"lr\" missing");
    expect_error("{\"step\": 1, \"loss\": \"high\", \"lr\": 1, \"grad_norm\": 1}\n", ":1: \"loss\" not a number");
    expect_error("{\"step\": 1, \"lo", ":1: incomplete last line");
    expect_error("\n\n  \n", ": no metrics lines");
    put_len = 5;
    expect_error("\x01\x02\x00zz", ": contains NUL bytes");
    /* no file at all */
    char missing[600];
    temp_dir_path(&tmp, "none.jsonl", missing, sizeof missing);
    RunMetrics m;
    BpError err = {{0}};
    assert_int_equal(run_metrics_read(missing, &m, &err), -1);
    assert_non_null(strstr(err.msg, missing));
}

/* A diverged step as the trainer prints it (%.9g of NaN and Inf). */
static void test_nonfinite_values_are_read_as_nan(void **state) {
    (void)state;
    put(STEP(1, 9.5, 1024)
        "{\"step\": 2, \"loss\": nan, \"lr\": 0.001, \"grad_norm\": -inf, \"tokens\": 2048, \"elapsed\": 2.0}\n"
        "{\"step\": 2, \"val_loss\": -nan, \"val_ppl\": inf, \"tokens\": 2048, \"elapsed\": 2.0}\n");
    RunMetrics m;
    BpError err = {{0}};
    assert_int_equal(run_metrics_read(path, &m, &err), 0);
    assert_int_equal(m.n, 2);
    assert_int_equal(m.n_val, 1);
    assert_true(isnan(m.loss[1]) && isnan(m.grad_norm[1]) && isnan(m.val_loss[0]));
    assert_true(m.lr[1] == 0.001 && m.step[1] == 2);
    run_metrics_free(&m);
    /* but not where a number must be */
    expect_error("{\"step\": nan, \"loss\": 1, \"lr\": 1, \"grad_norm\": 1}\n{}\n", ":1: \"step\" not a number");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_steps_and_evaluations),
        cmocka_unit_test(test_truncated_last_line_is_skipped_with_a_note),
        cmocka_unit_test(test_bad_files_name_file_and_line),
        cmocka_unit_test(test_nonfinite_values_are_read_as_nan),
    };
    return cmocka_run_group_tests(tests, setup, temp_dir_teardown);
}
