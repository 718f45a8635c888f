/* Where training stops and what it computes: Ctrl-C (SIGINT) and SIGTERM sent to a real
 * `backpack train` process save a loadable checkpoint; the --minutes and --tokens budgets
 * stop where they say; --accum N with batch B equals batch N x B; dropout changes the
 * training loss and is off in evaluation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../train/evaluate.h"
#include "../train/train_state.h"
#include "train_fixture.h"

static int setup(void **state) {
    (void)state;
    return setup_train_fixture("train-stops");
}

static off_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts `backpack train --resume dir` with a budget it will not reach, waits until it
 * has trained (metrics.jsonl grows: it evaluates, and so flushes, every 2 steps), sends
 * sig and checks that it exits 0 within 20 s with a checkpoint of the steps it made. */
static void signal_saves(int sig, const char *name) {
    BpError err = {{0}};
    TrainConfig c;
    tiny_config(&c, name);
    c.max_steps = 1;
    TrainHooks h = {.quiet = 1};
    TrainOutcome out;
    ASSERT_OK(train_run(&c, NULL, &h, &out, &err));
    char metrics[4200];
    snprintf(metrics, sizeof metrics, "%s/%s", c.out_dir, TRAIN_METRICS_FILE);
    off_t start_size = file_size(metrics);

    const char *backpack = getenv("BACKPACK") ? getenv("BACKPACK") : "build/backpack";
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDERR_FILENO);
        execl(backpack, backpack, "train", "--resume", c.out_dir, "--steps", "100000000",
              "--eval-every", "2", "--save-every", "0", "--threads", "1", (char *)NULL);
        _exit(127);
    }
    int trained = 0;
    for (int i = 0; i < 400 && !trained; i++) {  /* up to 20 s */
        sleep_ms(50);
        trained = file_size(metrics) > start_size + 200;
    }
    assert_true(trained);
    assert_int_equal(kill(pid, sig), 0);
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 400 && done == 0; i++) {
        done = waitpid(pid, &status, WNOHANG);
        if (done == 0) sleep_ms(50);
    }
    if (done == 0) kill(pid, SIGKILL), waitpid(pid, &status, 0);
    assert_int_equal(done, pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* The checkpoint loads and its state says how far the run got: past the first step,
     * with one metrics line per step made. */
    Backpack m;
    ASSERT_OK(checkpoint_load(&m, c.out_dir, &err));
    float *mo = calloc(2 * m.num_parameters, sizeof(float));
    assert_non_null(mo);
    TrainMoments mom = {.m = mo, .v = mo + m.num_parameters};
    TrainProgress prog;
    ASSERT_OK(train_state_read(c.out_dir, &m, &mom, &prog, NULL, &err));
    assert_true(prog.step > 2);
    assert_int_equal(mom.t, prog.step);
    assert_int_equal(prog.tokens, prog.step * 4 * 16 * 2);
    char *data;
    size_t len;
    ASSERT_OK(read_file(metrics, &data, &len, &err));
    uint64_t step_lines = 0;
    for (char *s = data; (s = strstr(s, "\"loss\"")) != NULL; s++) step_lines++;
    free(data);
    assert_int_equal(step_lines, prog.step);
    free(mo);
    backpack_free(&m);
}

static void test_sigint_saves(void **state) {
    (void)state;
    signal_saves(SIGINT, "sigint");
}

static void test_sigterm_saves(void **state) {
    (void)state;
    signal_saves(SIGTERM, "sigterm");
}

/* --minutes: the last step starts before the limit and the run ends right after it. */
static void test_minutes_budget(void **state) {
    (void)state;
    BpError err = {{0}};
    TrainConfig c;
    tiny_config(&c, "minutes");
    c.max_steps = 0;
    c.max_minutes = 0.6 / 60.0;  /* 0.6 s */
    c.eval_every = 0;
    Recorder *rec = calloc(1, sizeof *rec);
    assert_non_null(rec);
    TrainHooks h = {.quiet = 1, .on_step = record_step, .ctx = rec};
    TrainOutcome out;
    ASSERT_OK(train_run(&c, NULL, &h, &out, &err));
    assert_false(out.stopped);
    uint64_t n = out.steps;
    assert_true(n >= 3 && n < RECORD_MAX);
    assert_true(rec->elapsed[n - 1] < 0.6);  /* step n was started before the limit */
    assert_true(rec->elapsed[n] > 0.6 - 0.25); /* and ended within a step of it */
    TrainConfig saved;
    ASSERT_OK(train_state_read_config(c.out_dir, &saved, &err));
    Backpack m;
    ASSERT_OK(checkpoint_load(&m, c.out_dir, &err));
    float *mo = calloc(2 * m.num_parameters, sizeof(float));
    TrainMoments mom = {.m = mo, .v = mo + m.num_parameters};
    TrainProgress prog;
    ASSERT_OK(train_state_read(c.out_dir, &m, &mom, &prog, NULL, &err));
    assert_int_equal(prog.step, n);
    assert_true(prog.elapsed >= 0.6);
    assert_true(prog.elapsed < 0.6 + 0.5);
    free(mo);
    backpack_free(&m);
    free(rec);
}

/* --tokens: stops at the first step that reaches the count (8 x 128 >= 1000). */
static void test_tokens_budget(void **state) {
    (void)state;
    BpError err = {{0}};
    TrainConfig c;
    tiny_config(&c, "tokens");
    c.max_steps = 0;
    c.max_tokens = 1000;  /* 4 x 16 x 2 = 128 tokens a step */
    Recorder *rec = calloc(1, sizeof *rec);
    assert_non_null(rec);
    TrainHooks h = {.quiet = 1, .on_step = record_step, .ctx = rec};
    TrainOutcome out;
    ASSERT_OK(train_run(&c, NULL, &h, &out, &err));
    assert_int_equal(out.steps, 8);
    assert_int_equal(rec->tokens[8], 1024);
    assert_int_equal(rec->tokens[7], 896);
    assert_true(isfinite(rec->val[8]));  /* the end of the budget evaluates */
    /* an exact multiple stops exactly there */
    tiny_config(&c, "tokens-exact");
    c.max_steps = 0;
    c.max_tokens = 5 * 128;
    ASSERT_OK(train_run(&c, NULL, &h, &out, &err));
    assert_int_equal(out.steps, 5);
    free(rec);
}

static void load_params(const char *dir, Backpack *m) {
    BpError err = {{0}};
    ASSERT_OK(checkpoint_load(m, dir, &err));
}

/* --accum 2 with batch 4 computes what batch 8 does, to float rounding: the same windows,
 * the mean loss, the mean gradient. */
static void test_accum_equals_larger_batch(void **state) {
    (void)state;
    BpError err = {{0}};
    TrainConfig a, b;
    tiny_config(&a, "accum-big");
    tiny_config(&b, "accum-split");
    a.dropout = b.dropout = 0;
    a.batch = 8, a.accum = 1;
    b.batch = 4, b.accum = 2;
    Recorder *ra = calloc(1, sizeof *ra), *rb = calloc(1, sizeof *rb);
    assert_true(ra && rb);
    TrainHooks ha = {.quiet = 1, .on_step = record_step, .ctx = ra};
    TrainHooks hb = {.quiet = 1, .on_step = record_step, .ctx = rb};
    TrainOutcome out;
    ASSERT_OK(train_run(&a, NULL, &ha, &out, &err));
    ASSERT_OK(train_run(&b, NULL, &hb, &out, &err));
    for (int s = 1; s <= 8; s++) {
        assert_int_equal(ra->tokens[s], rb->tokens[s]);
        assert_true(fabs(ra->loss[s] - rb->loss[s]) <= 1e-5 * fabs(ra->loss[s]));
    }
    assert_true(ra->loss[1] != ra->loss[8]);  /* it trained */
    Backpack ma, mb;
    load_params(a.out_dir, &ma);
    load_params(b.out_dir, &mb);
    double max_diff = 0;
    for (size_t i = 0; i < ma.num_parameters; i++)
        max_diff = fmax(max_diff, fabs((double)ma.params_memory[i] - mb.params_memory[i]));
    assert_true(max_diff < 1e-4);
    backpack_free(&ma);
    backpack_free(&mb);
    free(ra);
    free(rb);
}

/* Dropout changes the training loss of the first step (same weights, same batch), and
 * evaluation ignores it: the trainer's validation loss is the dropout-free evaluation of
 * the saved weights. */
static void test_dropout_in_training_only(void **state) {
    (void)state;
    BpError err = {{0}};
    TrainConfig on, off;
    tiny_config(&on, "dropout-on");
    tiny_config(&off, "dropout-off");
    on.dropout = 0.3f;
    off.dropout = 0;
    on.max_steps = off.max_steps = 6;
    on.lr = off.lr = 3e-2f;
    on.eval_every = off.eval_every = 0;
    Recorder *ron = calloc(1, sizeof *ron), *roff = calloc(1, sizeof *roff);
    assert_true(ron && roff);
    TrainHooks hon = {.quiet = 1, .on_step = record_step, .ctx = ron};
    TrainHooks hoff = {.quiet = 1, .on_step = record_step, .ctx = roff};
    TrainOutcome out;
    ASSERT_OK(train_run(&on, NULL, &hon, &out, &err));
    ASSERT_OK(train_run(&off, NULL, &hoff, &out, &err));
    /* same weights and batch at step 1: only the masks differ (the random model is
     * near uniform, so the difference is small there) */
    assert_true(ron->loss[1] != roff->loss[1]);

    Backpack m;
    load_params(on.out_dir, &m);
    TokFile val;
    char path[4200];
    temp_dir_path(&tmp, "data.val.tok", path, sizeof path);
    ASSERT_OK(tokfile_open(&val, path, &err));
    EvalResult r1, r2;
    uint64_t windows = (uint64_t)on.eval_batches * (uint64_t)on.batch;
    ASSERT_OK(evaluate_tokfile(&m, &val, on.context, on.batch, windows, &r1, &err));
    ASSERT_OK(evaluate_tokfile(&m, &val, on.context, on.batch, windows, &r2, &err));
    assert_memory_equal(&r1.mean_loss, &r2.mean_loss, sizeof(double));
    assert_true(isfinite(ron->val[6]));
    assert_memory_equal(&r1.mean_loss, &ron->val[6], sizeof(double));
    /* on the trained weights, one batch with and without the masks */
    int ids[4 * 17];
    for (int i = 0; i < 4 * 17; i++) ids[i] = (int)tokfile_get(&val, (uint64_t)i);
    int in[4 * 16], tg[4 * 16];
    for (int b = 0; b < 4; b++)
        for (int t = 0; t < 16; t++) in[b * 16 + t] = ids[b * 17 + t], tg[b * 16 + t] = ids[b * 17 + t + 1];
    Rng rng;
    rng_seed(&rng, 3);
    TrainOptions drop = {.dropout = 0.3f, .rng = &rng};
    ASSERT_OK(backpack_forward(&m, in, tg, 4, 16, NULL, &err));
    float plain = m.mean_loss;
    ASSERT_OK(backpack_forward(&m, in, tg, 4, 16, &drop, &err));
    float masked = m.mean_loss;
    ASSERT_OK(backpack_forward(&m, in, tg, 4, 16, NULL, &err));
    assert_memory_equal(&plain, &m.mean_loss, sizeof plain);
    assert_true(fabsf(masked - plain) > 1e-3f * plain);  /* 0.26% measured */
    tokfile_close(&val);
    backpack_free(&m);
    free(ron);
    free(roff);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigint_saves),
        cmocka_unit_test(test_sigterm_saves),
        cmocka_unit_test(test_minutes_budget),
        cmocka_unit_test(test_tokens_budget),
        cmocka_unit_test(test_accum_equals_larger_batch),
        cmocka_unit_test(test_dropout_in_training_only),
    };
    return cmocka_run_group_tests(tests, setup, temp_dir_teardown);
}
