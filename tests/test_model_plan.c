/* Layer plans (model/plan.h): the parser's programs and errors, the exact identities
 * of the spec (identity plan = the model, a one-block group = the block, S*1 = S,
 * a + a = a), a plan against the same computation written out by hand, and the
 * incremental forward with a plan's caches against the full forward with that plan;
 * the no-last-residual flag in both forwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/backpack.h"
#include "../model/infer.h"
#include "../model/plan.h"

enum { V = 40, D = 16, L = 4, H = 2, K = 4, N = 10 };

static const int context[N] = {3, 17, 3, 22, 8, 8, 39, 0, 17, 3};

static unsigned attention = ATTN_DOT;  /* of the models build_random makes */

static void build_random(Backpack *m, ModelArch arch, int no_last_residual, uint64_t seed) {
    BackpackConfig c = {.arch = arch, .vocab_size = V, .n_embd = D, .n_layer = L,
                        .n_head = H, .num_senses = K, .n_positions = N,
                        .sense_intermediate_scale = 4, .attention = attention,
                        .no_last_residual = no_last_residual};
    BpError err = {0};
    assert_int_equal(backpack_build(m, &c, &err), 0);
    Rng rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < m->num_parameters; i++) m->params_memory[i] = 0.3f * rng_normal(&rng);
}

static void parse_ok(LayerPlan *p, const char *text) {
    BpError err = {0};
    if (layer_plan_parse(p, text, L, &err) != 0) fail_msg("'%s': %s", text, err.msg);
}

/* Full-forward logits (N, V) under plan text (NULL: no plan), copied out. */
static float *logits_under(Backpack *m, const char *text) {
    LayerPlan plan;
    if (text) parse_ok(&plan, text);
    m->plan = text ? &plan : NULL;
    BpError err = {0};
    if (backpack_forward(m, context, NULL, 1, N, NULL, &err) != 0) fail_msg("%s", err.msg);
    float *out = malloc(sizeof(float) * N * V);
    memcpy(out, backpack_logits(m), sizeof(float) * N * V);
    m->plan = NULL;
    if (text) layer_plan_free(&plan);
    return out;
}

static int same_bits(const float *a, const float *b) {
    return memcmp(a, b, sizeof(float) * N * V) == 0;
}

static double max_diff(const float *a, const float *b) {
    double mx = 0;
    for (int i = 0; i < N * V; i++) mx = fmax(mx, fabs((double)a[i] - b[i]));
    return mx;
}

/* ---------------------------------------------------------------------------------- */

static void test_programs(void **state) {
    (void)state;
    LayerPlan p;
    parse_ok(&p, "0,1,2,3");
    assert_true(layer_plan_is_identity(&p));
    assert_int_equal(p.num_runs, 4);
    assert_int_equal(p.num_buffers, 1);
    layer_plan_free(&p);
    parse_ok(&p, " 0 , (1) , 2*1 , ((3)) ");
    assert_true(layer_plan_is_identity(&p));
    layer_plan_free(&p);
    parse_ok(&p, "0,2,1,3");
    assert_false(layer_plan_is_identity(&p));
    layer_plan_free(&p);
    /* 0,(1+2)*3,3: blocks 0, then three times {1 and 2 into the accumulator, mean} */
    parse_ok(&p, "0,(1+2)*3,3");
    assert_int_equal(p.num_runs, 1 + 6 + 1);
    assert_int_equal(p.num_ops, 1 + 9 + 1);
    assert_int_equal(p.num_buffers, 2);
    const PlanOp *op = &p.ops[1];
    assert_int_equal(op[0].kind, PLAN_BLOCK);
    assert_int_equal(op[0].block, 1);
    assert_int_equal(op[0].src, 0);
    assert_int_equal(op[0].dst, 1);
    assert_int_equal(op[0].add, 0);
    assert_int_equal(op[1].block, 2);
    assert_int_equal(op[1].add, 1);
    assert_int_equal(op[2].kind, PLAN_COMBINE);
    assert_int_equal(op[2].divisor, 2);
    assert_int_equal(op[2].src, 1);
    assert_int_equal(op[2].dst, 0);
    for (int i = 0, slot = 0; i < p.num_ops; i++)  /* every run its own slot, in order */
        if (p.ops[i].kind == PLAN_BLOCK) assert_int_equal(p.ops[i].slot, slot++);
    layer_plan_free(&p);
    /* a sequence inside a parallel branch works in a buffer of its own */
    parse_ok(&p, "(0,1)+(2,3)");
    assert_int_equal(p.num_buffers, 3);
    layer_plan_free(&p);
}

static void expect_error(const char *text, const char *message) {
    LayerPlan p;
    BpError err = {0};
    assert_int_equal(layer_plan_parse(&p, text, L, &err), -1);
    if (strcmp(err.msg, message) != 0) fail_msg("'%s': got \"%s\", want \"%s\"", text, err.msg, message);
}

static void test_errors(void **state) {
    (void)state;
    expect_error("0,1,,2", "'0,1,,2': empty step at character 5");
    expect_error("0,1,", "'0,1,': empty step at character 5 (the end)");
    expect_error("", "'': empty step at character 1 (the end)");
    expect_error(",0", "',0': empty step at character 1");
    expect_error("0,4", "'0,4': block 4 is not below the model's 4 blocks at character 3");
    expect_error("0,99999999999", "'0,99999999999': block 99999999999 is not below the model's 4 blocks at character 3");
    expect_error("0,(1+2", "'0,(1+2': expected ')' at character 7 (the end)");
    expect_error("0,1)", "'0,1)': unmatched ')' at character 4");
    expect_error("0,()", "'0,()': empty step at character 4");
    expect_error("0+", "'0+': empty step at character 3 (the end)");
    expect_error("0,1*", "'0,1*': expected a loop count at character 5 (the end)");
    expect_error("0,1*0", "'0,1*0': loop count 0 is not from 1 to 64 at character 5");
    expect_error("0,1*65", "'0,1*65': loop count 65 is not from 1 to 64 at character 5");
    expect_error("0,a", "'0,a': unexpected 'a' at character 3");
    expect_error("0 1", "'0 1': unexpected '1' at character 3");
    expect_error("0*64*64,1", "'0*64*64,1': the plan runs more than 4096 blocks");
}

/* ---------------------------------------------------------------------------------- */

static void check_identities(ModelArch arch, int no_last_residual) {
    Backpack m;
    build_random(&m, arch, no_last_residual, 99 + arch);
    float *model = logits_under(&m, NULL);
    float *ident = logits_under(&m, "0,1,2,3");
    assert_true(same_bits(model, ident));
    float *a = logits_under(&m, "0,2,2,3"), *b = logits_under(&m, "0,(2),(2*1),3");
    assert_true(same_bits(a, b));
    assert_true(max_diff(a, model) > 1e-3);  /* a repeat is another model */
    free(b);
    /* a + a = a: the mean of two equal outputs is the output, bit for bit */
    b = logits_under(&m, "0,2+2,2,3");
    assert_true(same_bits(a, b));
    free(a);
    free(b);
    /* a block run twice in a loop equals it written twice */
    a = logits_under(&m, "0,(1+2)*2,3");
    b = logits_under(&m, "0,1+2,(2+1),3");
    assert_true(max_diff(a, b) < 1e-6);  /* 1+2 vs 2+1: the sum's order only */
    assert_true(max_diff(a, model) > 1e-3);
    free(a);
    free(b);
    free(model);
    free(ident);
    backpack_free(&m);
}

static void test_identities_backpack(void **state) { (void)state; check_identities(ARCH_BACKPACK, 0); }
static void test_identities_transformer(void **state) { (void)state; check_identities(ARCH_TRANSFORMER, 1); }

/* A sequence inside a parallel branch: "(0,1)+(0,2),3" runs block 0 twice on the same
 * h (the same output), so it equals "0,1+2,3" bit for bit; and differs from "0,1,3". */
static void test_branch_sequences(void **state) {
    (void)state;
    Backpack m;
    build_random(&m, ARCH_TRANSFORMER, 0, 7);
    float *a = logits_under(&m, "0,1+2,3"), *b = logits_under(&m, "(0,1)+(0,2),3");
    assert_true(same_bits(a, b));
    float *c = logits_under(&m, "0,1,3");
    assert_true(max_diff(a, c) > 1e-3);
    free(a);
    free(b);
    free(c);
    backpack_free(&m);
}

/* infer.h under a plan: every position's logits equal the full forward's under the
 * same plan (1e-5), and greedy choices agree; each run of a block has its cache. */
static void check_incremental(ModelArch arch, const char *text, int no_last_residual) {
    Backpack m;
    build_random(&m, arch, no_last_residual, 4321 + arch);
    float *full = logits_under(&m, text);
    LayerPlan plan;
    if (text) parse_ok(&plan, text);
    m.plan = text ? &plan : NULL;
    InferState s;
    BpError err = {0};
    assert_int_equal(infer_build(&s, &m, N, &err), 0);
    double worst = 0, scale = 0;
    for (int t = 0; t < N; t++) {
        const float *logits = infer_step(&s, context[t], &err);
        assert_non_null(logits);
        int best_full = 0, best_inc = 0;
        for (int v = 0; v < V; v++) {
            worst = fmax(worst, fabs((double)logits[v] - full[t * V + v]));
            scale = fmax(scale, fabs((double)logits[v]));
            if (full[t * V + v] > full[t * V + best_full]) best_full = v;
            if (logits[v] > logits[best_inc]) best_inc = v;
        }
        assert_int_equal(best_full, best_inc);
    }
    /* greedy continuation with the plan's caches: each choice is the full forward's
     * argmax of the same prefix under the plan */
    infer_reset(&s);
    int seq[N];
    seq[0] = context[0];
    for (int t = 0; t + 1 < N; t++) {
        int next = infer_step_greedy(&s, seq[t], &err);
        assert_true(next >= 0);
        seq[t + 1] = next;
    }
    assert_int_equal(backpack_forward(&m, seq, NULL, 1, N, NULL, &err), 0);
    const float *lg = backpack_logits(&m);
    for (int t = 0; t + 1 < N; t++) {
        int best = 0;
        for (int v = 1; v < V; v++)
            if (lg[t * V + v] > lg[t * V + best]) best = v;
        assert_int_equal(best, seq[t + 1]);
    }
    printf("  %s, plan %s: max |incremental - full| %.2e (logits up to %.2f)\n",
           arch == ARCH_BACKPACK ? "backpack" : "transformer", text ? text : "(none)", worst,
           scale);
    assert_true(scale > 0.5);
    assert_true(worst < 1e-5);
    infer_free(&s);
    m.plan = NULL;
    if (text) layer_plan_free(&plan);
    free(full);
    backpack_free(&m);
}

static void test_incremental_plans(void **state) {
    (void)state;
    const char *plans[] = {"0,1,2,3", "0,3", "0,2,2,2,3", "3,2,1,0", "0,1+2,3", "0,(1+2)*3,3",
                           "(0,1)+(2,3)*2", "0,((1+2)*2+3),1"};
    for (size_t i = 0; i < sizeof plans / sizeof *plans; i++) {
        check_incremental(ARCH_BACKPACK, plans[i], 0);
        check_incremental(ARCH_TRANSFORMER, plans[i], 0);
    }
}

static void test_incremental_no_last_residual(void **state) {
    (void)state;
    check_incremental(ARCH_BACKPACK, NULL, 1);
    check_incremental(ARCH_TRANSFORMER, NULL, 1);
    check_incremental(ARCH_TRANSFORMER, "0,3,1,2", 1);
}

/* Synthesizer attention under a plan: a block run twice keeps two value caches (and two
 * key caches for the dot part of a mixture). */
static void test_incremental_plans_synthesizer(void **state) {
    (void)state;
    const char *variants[] = {"dense", "mix:random+dot", "factorized-dense"};
    for (size_t i = 0; i < sizeof variants / sizeof *variants; i++) {
        BpError err = {0};
        assert_int_equal(attention_parse(variants[i], &attention, &err), 0);
        check_incremental(ARCH_BACKPACK, "0,(1+2)*2,1,3", 0);
        check_incremental(ARCH_TRANSFORMER, "3,2,2,0", 0);
    }
    attention = ATTN_DOT;
}

/* No backward under a plan; a plan for another depth is refused. */
static void test_refusals(void **state) {
    (void)state;
    Backpack m;
    build_random(&m, ARCH_BACKPACK, 0, 5);
    LayerPlan plan;
    parse_ok(&plan, "0,1");
    m.plan = &plan;
    BpError err = {0};
    assert_int_equal(backpack_forward(&m, context, context, 1, N, NULL, &err), 0);
    assert_null(backpack_block_outputs(&m));
    assert_int_equal(backpack_backward(&m, &err), -1);
    assert_string_equal(err.msg, "backward of a forward under a layer plan");
    layer_plan_free(&plan);
    BpError e2 = {0};
    assert_int_equal(layer_plan_parse(&plan, "0,1", 2, &e2), 0);
    m.plan = &plan;
    assert_int_equal(backpack_forward(&m, context, NULL, 1, N, NULL, &err), -1);
    assert_string_equal(err.msg, "the layer plan is for 2 blocks, the model has 4");
    InferState s;
    assert_int_equal(infer_build(&s, &m, N, &err), -1);
    layer_plan_free(&plan);
    m.plan = NULL;
    assert_int_equal(backpack_forward(&m, context, NULL, 1, N, NULL, &err), 0);
    assert_non_null(backpack_block_outputs(&m));
    backpack_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_programs),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_identities_backpack),
        cmocka_unit_test(test_identities_transformer),
        cmocka_unit_test(test_branch_sequences),
        cmocka_unit_test(test_incremental_plans),
        cmocka_unit_test(test_incremental_no_last_residual),
        cmocka_unit_test(test_incremental_plans_synthesizer),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
