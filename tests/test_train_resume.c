/* The trainer on a tiny model and tiny token files: resume equality (N steps equal N/2,
 * stop, resume N/2, bit for bit), the NaN stop keeping the last checkpoint loadable,
 * evaluation against direct forwards, and greedy generation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "../common/rng.h"
#include "../model/checkpoint.h"
#include "../train/evaluate.h"
#include "../train/generate.h"
#include "../train/trainer.h"
#include "train_fixture.h"

static int setup(void **state) {
    (void)state;
    return setup_train_fixture("train-loop");
}

static int count_lines_with(const char *path, const char *needle) {
    char *data;
    size_t len;
    BpError err = {{0}};
    if (read_file(path, &data, &len, &err) != 0) return -1;
    int n = 0;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) n += strstr(line, needle) != NULL;
    free(data);
    return n;
}

static void test_resume_gives_identical_losses(void **state) {
    (void)state;
    BpError err = {{0}};
    TrainConfig ca, cb;
    tiny_config(&ca, "full");
    tiny_config(&cb, "split");
    Recorder full = {0}, split = {.stop_at = 4};
    TrainHooks ha = {.quiet = 1, .on_step = record_step, .ctx = &full};
    TrainHooks hb = {.quiet = 1, .on_step = record_step, .ctx = &split};
    TrainOutcome out;
    ASSERT_OK(train_run(&ca, NULL, &ha, &out, &err));
    assert_int_equal(out.steps, 8);
    assert_false(out.stopped);
    assert_true(full.loss[8] < full.loss[1]);  /* it learns */

    ASSERT_OK(train_run(&cb, NULL, &hb, &out, &err));
    assert_int_equal(out.steps, 4);
    assert_true(out.stopped);

    TrainConfig saved;
    ASSERT_OK(train_state_read_config(cb.out_dir, &saved, &err));
    assert_int_equal(saved.max_steps, 8);
    assert_int_equal(saved.accum, 2);
    assert_string_equal(saved.out_dir, cb.out_dir);
    split.stop_at = 0;
    ASSERT_OK(train_run(&saved, cb.out_dir, &hb, &out, &err));
    assert_int_equal(out.steps, 8);
    assert_int_equal(split.calls, 8);
    for (int s = 1; s <= 8; s++) assert_memory_equal(&full.loss[s], &split.loss[s], sizeof(double));
    assert_memory_equal(&full.val[4], &split.val[4], sizeof(double));
    assert_memory_equal(&full.val[8], &split.val[8], sizeof(double));
    assert_true(isfinite(full.val[8]));

    char ha_hex[17], hb_hex[17];
    hash_of(ca.out_dir, ha_hex);
    hash_of(cb.out_dir, hb_hex);
    assert_string_equal(ha_hex, hb_hex);

    char metrics[4200];
    snprintf(metrics, sizeof metrics, "%s/%s", cb.out_dir, TRAIN_METRICS_FILE);
    assert_int_equal(count_lines_with(metrics, "\"loss\""), 8);
    assert_int_equal(count_lines_with(metrics, "\"val_loss\""), 2);
}

static void test_resume_rejects_state_of_other_weights(void **state) {
    (void)state;
    BpError err = {{0}};
    TrainConfig c;
    tiny_config(&c, "other");
    c.max_steps = 2;
    TrainHooks h = {.quiet = 1};
    TrainOutcome out;
    ASSERT_OK(train_run(&c, NULL, &h, &out, &err));
    /* Replace the weights beside train_state.bin with another model's. */
    Backpack m;
    ASSERT_OK(checkpoint_load(&m, c.out_dir, &err));
    backpack_init_weights(&m, 999);
    char staging_src[600], state_src[4200], state_dst[4200];
    temp_dir_path(&tmp, "keep", staging_src, sizeof staging_src);
    assert_int_equal(make_dirs(staging_src, &err), 0);
    snprintf(state_src, sizeof state_src, "%s/%s", c.out_dir, TRAIN_STATE_FILE);
    snprintf(state_dst, sizeof state_dst, "%s/%s", staging_src, TRAIN_STATE_FILE);
    assert_int_equal(copy_file_atomic(state_src, state_dst, &err), 0);
    assert_int_equal(checkpoint_save(&m, c.out_dir, NULL, NULL, NULL, &err), 0);
    backpack_free(&m);
    assert_int_equal(copy_file_atomic(state_dst, state_src, &err), 0);
    TrainConfig saved;
    ASSERT_OK(train_state_read_config(c.out_dir, &saved, &err));
    saved.max_steps = 4;
    assert_int_equal(train_run(&saved, c.out_dir, &h, &out, &err), -1);
    assert_non_null(strstr(err.msg, "belongs to other weights"));

    /* A truncated state file is refused by its checksum. */
    char *data;
    size_t len;
    assert_int_equal(read_file(state_src, &data, &len, &err), 0);
    assert_int_equal(write_file_atomic(state_src, data, len - 5, &err), 0);
    free(data);
    assert_int_equal(train_state_read_config(c.out_dir, &saved, &err), -1);
    assert_non_null(strstr(err.msg, TRAIN_STATE_FILE));
}

static void test_nan_stops_and_keeps_last_checkpoint(void **state) {
    (void)state;
    BpError err = {{0}};
    TrainConfig c;
    tiny_config(&c, "nan");
    c.save_every = 2;
    Recorder rec = {.poison_at = 3};
    TrainHooks h = {.quiet = 1, .on_step = record_step, .ctx = &rec};
    TrainOutcome out;
    assert_int_equal(train_run(&c, NULL, &h, &out, &err), -1);
    assert_true(out.diverged);
    assert_int_equal(out.steps, 3);
    assert_non_null(strstr(err.msg, "diverged at step 4"));
    assert_non_null(strstr(err.msg, "step 2"));
    /* The checkpoint of step 2 loads, is finite, and training resumes from it. */
    Backpack m;
    ASSERT_OK(checkpoint_load(&m, c.out_dir, &err));
    for (size_t i = 0; i < m.num_parameters; i++) assert_true(isfinite(m.params_memory[i]));
    backpack_free(&m);
    TrainConfig saved;
    ASSERT_OK(train_state_read_config(c.out_dir, &saved, &err));
    Recorder again = {0};
    TrainHooks h2 = {.quiet = 1, .on_step = record_step, .ctx = &again};
    ASSERT_OK(train_run(&saved, c.out_dir, &h2, &out, &err));
    assert_int_equal(out.steps, 8);
    assert_int_equal(again.calls, 6);  /* steps 3..8 */
    assert_memory_equal(&again.loss[3], &rec.loss[3], sizeof(double));
}

static void test_new_run_refuses_existing_model(void **state) {
    (void)state;
    BpError err = {{0}};
    TrainConfig c;
    tiny_config(&c, "full");  /* written by the resume test */
    TrainHooks h = {.quiet = 1};
    TrainOutcome out;
    assert_int_equal(train_run(&c, NULL, &h, &out, &err), -1);
    assert_non_null(strstr(err.msg, "already holds a model"));
    /* A missing validation file is named. */
    tiny_config(&c, "noval");
    temp_dir_path(&tmp, "nothing", c.data_prefix, sizeof c.data_prefix);
    assert_int_equal(train_run(&c, NULL, &h, &out, &err), -1);
    assert_non_null(strstr(err.msg, "nothing.train.tok"));
}

/* Everything else in the output directory survives the saves of a new run and of a
 * resumed one: files, a subdirectory tree (with an empty directory), a symbolic link. */
static void test_saves_keep_other_entries(void **state) {
    (void)state;
    BpError err = {{0}};
    TrainConfig c;
    tiny_config(&c, "keep-entries");
    c.max_steps = 2;
    c.save_every = 1;
    char p[4200];
    snprintf(p, sizeof p, "%s/plots/run1", c.out_dir);
    ASSERT_OK(make_dirs(p, &err));
    snprintf(p, sizeof p, "%s/plots/empty", c.out_dir);
    ASSERT_OK(make_dirs(p, &err));
    snprintf(p, sizeof p, "%s/plots/run1/loss.csv", c.out_dir);
    ASSERT_OK(write_file_atomic(p, "1,2\n", 4, &err));
    snprintf(p, sizeof p, "%s/notes.txt", c.out_dir);
    ASSERT_OK(write_file_atomic(p, "hello", 5, &err));
    snprintf(p, sizeof p, "%s/latest", c.out_dir);
    assert_int_equal(symlink("plots/run1", p), 0);
    TrainHooks h = {.quiet = 1};
    TrainOutcome out;
    ASSERT_OK(train_run(&c, NULL, &h, &out, &err));
    TrainConfig saved;
    ASSERT_OK(train_state_read_config(c.out_dir, &saved, &err));
    saved.max_steps = 4;
    ASSERT_OK(train_run(&saved, c.out_dir, &h, &out, &err));
    assert_int_equal(out.steps, 4);

    char *data;
    size_t len;
    snprintf(p, sizeof p, "%s/plots/run1/loss.csv", c.out_dir);
    ASSERT_OK(read_file(p, &data, &len, &err));
    assert_int_equal(len, 4);
    assert_memory_equal(data, "1,2\n", 4);
    free(data);
    snprintf(p, sizeof p, "%s/latest/loss.csv", c.out_dir);  /* through the link */
    assert_true(file_exists(p));
    snprintf(p, sizeof p, "%s/plots/empty", c.out_dir);
    assert_true(dir_exists(p));
    snprintf(p, sizeof p, "%s/notes.txt", c.out_dir);
    ASSERT_OK(read_file(p, &data, &len, &err));
    assert_int_equal(len, 5);
    free(data);
    Backpack m;
    ASSERT_OK(checkpoint_load(&m, c.out_dir, &err));
    backpack_free(&m);
}

static double window_loss_from_logits(const float *logits, int target) {
    double mx = logits[0], sum = 0;
    for (int v = 1; v < V; v++) mx = fmax(mx, logits[v]);
    for (int v = 0; v < V; v++) sum += exp(logits[v] - mx);
    return log(sum) + mx - logits[target];
}

static void test_eval_matches_direct_forward(void **state) {
    (void)state;
    BpError err = {{0}};
    BackpackConfig c = tiny_model();
    Backpack m;
    ASSERT_OK(backpack_build(&m, &c, &err));
    backpack_init_weights(&m, 3);
    int ids[49];
    Rng r;
    rng_seed(&r, 11);
    for (int i = 0; i < 49; i++) ids[i] = (int)rng_below(&r, V);

    /* Direct: one forward per window of 16. */
    double direct[3], tail = 0;
    for (int w = 0; w < 3; w++) {
        ASSERT_OK(backpack_forward(&m, ids + 16 * w, ids + 16 * w + 1, 1, 16, NULL, &err));
        direct[w] = m.mean_loss;
    }
    /* 37 tokens: windows [0,16), [16,32), and the end-aligned [20,36) scoring t >= 12. */
    ASSERT_OK(backpack_forward(&m, ids + 20, ids + 21, 1, 16, NULL, &err));
    const float *logits = backpack_logits(&m);
    for (int t = 12; t < 16; t++) tail += window_loss_from_logits(logits + t * V, ids[21 + t]);

    EvalResult res;
    ASSERT_OK(evaluate_ids(&m, ids, 49, 16, 2, 0, &res, &err));
    assert_int_equal(res.predictions, 48);
    assert_int_equal(res.windows, 3);
    double expect = (direct[0] + direct[1] + direct[2]) / 3;
    assert_float_equal(res.mean_loss, expect, 1e-5);
    assert_float_equal(res.perplexity, exp(expect), 1e-4 * exp(expect));
    assert_float_equal(res.perplexity, exp(res.mean_loss), 1e-12);

    ASSERT_OK(evaluate_ids(&m, ids, 37, 16, 2, 0, &res, &err));
    assert_int_equal(res.predictions, 36);
    assert_int_equal(res.windows, 3);
    assert_float_equal(res.mean_loss, (16 * direct[0] + 16 * direct[1] + tail) / 36, 1e-5);

    ASSERT_OK(evaluate_ids(&m, ids, 49, 16, 2, 1, &res, &err));  /* one window */
    assert_float_equal(res.mean_loss, direct[0], 1e-5);

    ids[5] = V;  /* out of range */
    assert_int_equal(evaluate_ids(&m, ids, 49, 16, 2, 0, &res, &err), -1);
    assert_non_null(strstr(err.msg, "token 5"));
    backpack_free(&m);
}

typedef struct {
    int tokens[256];
    int n;
} Collected;

static int collect(int token, void *ctx) {
    Collected *c = ctx;
    if (c->n < 256) c->tokens[c->n++] = token;
    return 0;
}

static void test_greedy_generation(void **state) {
    (void)state;
    BpError err = {{0}};
    BackpackConfig c = tiny_model();
    Backpack m;
    ASSERT_OK(backpack_build(&m, &c, &err));
    backpack_init_weights(&m, 4);
    /* Larger weights so that the greedy choice is clear of float rounding. */
    for (size_t i = 0; i < m.num_parameters; i++) m.params_memory[i] *= 5.0f;
    int prompt[3] = {1, 2, 3};
    GenerateConfig g = {.sampler = {.temperature = 0, .top_k = 0, .top_p = 1}, .max_tokens = 6, .seed = 1};
    Collected a = {0}, b = {0};
    GenerateResult res;
    ASSERT_OK(generate(&m, NULL, prompt, 3, &g, collect, &a, &res, &err));
    assert_int_equal(res.generated, 6);
    assert_false(res.hit_context_limit);
    g.seed = 99;  /* greedy ignores the seed */
    ASSERT_OK(generate(&m, NULL, prompt, 3, &g, collect, &b, &res, &err));
    assert_int_equal(a.n, 6);
    assert_memory_equal(a.tokens, b.tokens, sizeof(int) * 6);
    /* The first token is the argmax of a full forward's last logits. */
    ASSERT_OK(backpack_forward(&m, prompt, NULL, 1, 3, NULL, &err));
    const float *logits = backpack_logits(&m) + 2 * V;
    int best = 0;
    for (int v = 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    assert_int_equal(a.tokens[0], best);

    /* 14 prompt tokens in a context of 16: three new tokens fit. */
    int long_prompt[14];
    for (int i = 0; i < 14; i++) long_prompt[i] = i;
    Collected d = {0};
    g.max_tokens = 100;
    ASSERT_OK(generate(&m, NULL, long_prompt, 14, &g, collect, &d, &res, &err));
    assert_int_equal(res.generated, 3);
    assert_true(res.hit_context_limit);
    int too_long[17] = {0};
    assert_int_equal(generate(&m, NULL, too_long, 17, &g, collect, &d, &res, &err), -1);
    assert_non_null(strstr(err.msg, "context"));
    prompt[1] = V + 1;
    assert_int_equal(generate(&m, NULL, prompt, 3, &g, collect, &d, &res, &err), -1);
    backpack_free(&m);
}

static void test_next_token_top(void **state) {
    (void)state;
    BpError err = {{0}};
    BackpackConfig c = tiny_model();
    Backpack m;
    ASSERT_OK(backpack_build(&m, &c, &err));
    backpack_init_weights(&m, 5);
    for (size_t i = 0; i < m.num_parameters; i++) m.params_memory[i] *= 5.0f;
    int prompt[4] = {3, 1, 4, 1};
    int ids[5];
    float probs[5];
    ASSERT_OK(next_token_top(&m, NULL, prompt, 4, 5, ids, probs, &err));
    /* Against the softmax of a full forward's last logits, ranked by brute force. */
    ASSERT_OK(backpack_forward(&m, prompt, NULL, 1, 4, NULL, &err));
    const float *logits = backpack_logits(&m) + 3 * V;
    double max = logits[0], sum = 0;
    for (int v = 1; v < V; v++) max = logits[v] > max ? logits[v] : max;
    for (int v = 0; v < V; v++) sum += exp(logits[v] - max);
    for (int i = 0; i < 5; i++) {
        int rank = 0;
        for (int v = 0; v < V; v++) rank += logits[v] > logits[ids[i]];
        assert_int_equal(rank, i);
        assert_float_equal(probs[i], exp(logits[ids[i]] - max) / sum, 1e-5);
        if (i) assert_true(probs[i] <= probs[i - 1]);
    }
    assert_int_equal(next_token_top(&m, NULL, prompt, 4, V + 1, ids, probs, &err), -1);
    backpack_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next_token_top),
        cmocka_unit_test(test_resume_gives_identical_losses),
        cmocka_unit_test(test_resume_rejects_state_of_other_weights),
        cmocka_unit_test(test_nan_stops_and_keeps_last_checkpoint),
        cmocka_unit_test(test_new_run_refuses_existing_model),
        cmocka_unit_test(test_saves_keep_other_entries),
        cmocka_unit_test(test_eval_matches_direct_forward),
        cmocka_unit_test(test_greedy_generation),
    };
    return cmocka_run_group_tests(tests, setup, temp_dir_teardown);
}
