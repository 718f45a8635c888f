/* Synthesizer attention (docs/synthesizer.md) in both architectures: cached generation
 * against the full forward for every variant, causality, the fixed random table under
 * a training step, and the mixture weights. The gradients are checked against finite
 * differences in tests/test_model_gradcheck.c, the logits against PyTorch in
 * tests/reference.py. */
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
#include "../model/checkpoint.h"
#include "../model/infer.h"
#include "../model/layers.h"

/* n_positions 16 > the 12 tokens used: sequences read the top-left block of the tables */
enum { V = 50, D = 16, L = 2, H = 2, K = 4, N_POS = 16, T = 12 };

static const char *const VARIANTS[] = {
    "dot", "dense", "random", "fixed-random", "factorized-dense", "factorized-random",
    "mix:random+dot", "mix:dense+factorized-random", "mix:fixed-random+factorized-dense+dot"};
#define NUM_VARIANTS (sizeof VARIANTS / sizeof *VARIANTS)

static const int context[T] = {3, 17, 3, 42, 8, 8, 49, 0, 17, 3, 25, 11};

/* Every parameter N(0, 0.3), so that every kind's scores matter. */
static void build_random(Backpack *m, ModelArch arch, const char *attention, uint64_t seed) {
    BackpackConfig c = {.arch = arch, .vocab_size = V, .n_embd = D, .n_layer = L, .n_head = H,
                        .num_senses = K, .n_positions = N_POS, .sense_intermediate_scale = 4};
    BpError err = {0};
    assert_int_equal(attention_parse(attention, &c.attention, &err), 0);
    assert_int_equal(backpack_build(m, &c, &err), 0);
    Rng rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < m->num_parameters; i++) m->params_memory[i] = 0.3f * rng_normal(&rng);
}

static float *forward_logits(Backpack *m, const int *tokens, int n) {
    BpError err = {0};
    if (backpack_forward(m, tokens, NULL, 1, n, NULL, &err)) fail_msg("forward: %s", err.msg);
    float *out = malloc((size_t)n * V * sizeof(float));
    memcpy(out, backpack_logits(m), (size_t)n * V * sizeof(float));
    return out;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* infer_step's logits equal the full forward's, position by position, and the greedy
 * step picks the full forward's argmax. */
static void test_cached_generation_equals_full(void **state) {
    (void)state;
    for (int arch = 0; arch < 2; arch++)
        for (size_t v = 0; v < NUM_VARIANTS; v++) {
            Backpack m;
            build_random(&m, (ModelArch)arch, VARIANTS[v], 100 + v);
            float *full = forward_logits(&m, context, T);
            InferState s, g;
            BpError err = {0};
            assert_int_equal(infer_build(&s, &m, T, &err), 0);
            assert_int_equal(infer_build(&g, &m, T, &err), 0);
            double worst = 0, scale = 0;
            for (int t = 0; t < T; t++) {
                const float *logits = infer_step(&s, context[t], &err);
                assert_non_null(logits);
                for (int i = 0; i < V; i++) {
                    worst = fmax(worst, fabs((double)logits[i] - full[(size_t)t * V + i]));
                    scale = fmax(scale, fabs((double)logits[i]));
                }
                assert_int_equal(infer_step_greedy(&g, context[t], &err),
                                 argmax(full + (size_t)t * V, V));
            }
            printf("  %-12s %-38s max |cached - full| %.2e (max |logit| %.2f)\n",
                   arch ? "transformer" : "backpack", VARIANTS[v], worst, scale);
            assert_true(worst <= 1e-5);
            assert_true(scale > 0.5);
            infer_free(&s);
            infer_free(&g);
            free(full);
            backpack_free(&m);
        }
}

/* Changing the tokens after position p leaves the logits of positions <= p alone. */
static void test_future_tokens_do_not_change_earlier_logits(void **state) {
    (void)state;
    const int p = 6;
    int other[T];
    memcpy(other, context, sizeof other);
    for (int t = p + 1; t < T; t++) other[t] = (context[t] + 7 * t + 1) % V;
    for (int arch = 0; arch < 2; arch++)
        for (size_t v = 0; v < NUM_VARIANTS; v++) {
            Backpack m;
            build_random(&m, (ModelArch)arch, VARIANTS[v], 200 + v);
            float *a = forward_logits(&m, context, T), *b = forward_logits(&m, other, T);
            double before = 0, after = 0;
            for (int t = 0; t < T; t++)
                for (int i = 0; i < V; i++) {
                    double diff = fabs((double)a[(size_t)t * V + i] - b[(size_t)t * V + i]);
                    if (t <= p) before = fmax(before, diff);
                    else after = fmax(after, diff);
                }
            assert_true(before <= 1e-6);
            assert_true(after > 1e-2); /* the later positions did see the change */
            free(a);
            free(b);
            backpack_free(&m);
        }
}

static const ParamEntry *find_entry(const ParamEntry *e, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(e[i].name, name)) return &e[i];
    return NULL;
}

/* A training step (forward, backward, p -= lr g) leaves the fixed random table bit for
 * bit, moves the trained one, and the table is excluded from weight decay: AdamW's
 * update of a parameter whose gradient is always 0 is exactly 0. */
static void test_fixed_random_unchanged_by_training_step(void **state) {
    (void)state;
    for (int arch = 0; arch < 2; arch++) {
        Backpack m;
        build_random(&m, (ModelArch)arch, "mix:random+fixed-random+dot", 7);
        size_t n_table = (size_t)L * H * N_POS * N_POS;
        float *fixed = malloc(n_table * sizeof(float)), *trained = malloc(n_table * sizeof(float));
        memcpy(fixed, m.params.syn_fixed_random, n_table * sizeof(float));
        memcpy(trained, m.params.syn_random, n_table * sizeof(float));
        int targets[T];
        for (int t = 0; t < T; t++) targets[t] = context[(t + 1) % T];
        BpError err = {0};
        backpack_zero_grad(&m);
        assert_int_equal(backpack_forward(&m, context, targets, 1, T, NULL, &err), 0);
        assert_int_equal(backpack_backward(&m, &err), 0);
        for (size_t i = 0; i < m.num_parameters; i++)
            m.params_memory[i] -= 0.1f * m.grads_memory[i];
        assert_memory_equal(m.params.syn_fixed_random, fixed, n_table * sizeof(float));
        assert_memory_not_equal(m.params.syn_random, trained, n_table * sizeof(float));
        int ne = backpack_num_param_entries(&m.config);
        ParamEntry *e = calloc((size_t)ne, sizeof *e);
        backpack_param_entries(&m, &m.params, e);
        const char *g = arch == ARCH_BACKPACK ? "backpack.gpt2_model" : "transformer";
        char name[PARAM_NAME_MAX];
        snprintf(name, sizeof name, "%s.h.1.attn.fixed_random_synthesizer.weight", g);
        const ParamEntry *x = find_entry(e, ne, name);
        assert_non_null(x);
        assert_int_equal(x->is_matrix, 0);
        assert_int_equal(x->shape[0], H * N_POS);
        assert_int_equal(x->shape[1], N_POS);
        free(e);
        free(fixed);
        free(trained);
        backpack_free(&m);
    }
}

/* softmax(v) per head: positive, summing to 1; and the forward uses them: with v
 * (30, -30) a mixture of dense and random is the dense model with the same weights. */
static void test_mixture_weights(void **state) {
    (void)state;
    const float v[6] = {0.3f, -1.2f, 2.0f, 40.0f, -40.0f, 0.0f};
    float w[6];
    synth_mixture_weights(w, v, 2, 3);
    for (int h = 0; h < 2; h++) {
        double sum = 0;
        for (int c = 0; c < 3; c++) {
            assert_true(w[h * 3 + c] >= 0);
            sum += w[h * 3 + c];
        }
        assert_true(fabs(sum - 1) < 1e-6);
    }
    assert_true(w[0] > w[1] && w[2] > w[0]);

    for (int arch = 0; arch < 2; arch++) {
        Backpack mix, dense;
        build_random(&mix, (ModelArch)arch, "mix:dense+random", 11);
        build_random(&dense, (ModelArch)arch, "dense", 12);
        int nd = backpack_num_param_entries(&dense.config);
        int nm = backpack_num_param_entries(&mix.config);
        ParamEntry *ed = calloc((size_t)nd, sizeof *ed), *em = calloc((size_t)nm, sizeof *em);
        backpack_param_entries(&dense, &dense.params, ed);
        backpack_param_entries(&mix, &mix.params, em);
        for (int i = 0; i < nd; i++) { /* the mixture's copy of every dense tensor */
            const ParamEntry *x = find_entry(em, nm, ed[i].name);
            assert_non_null(x);
            size_t n = (size_t)ed[i].shape[0] * (ed[i].ndim == 2 ? (size_t)ed[i].shape[1] : 1);
            memcpy(x->data, ed[i].data, n * sizeof(float));
        }
        for (int i = 0; i < L * H; i++) {
            mix.params.syn_mix[2 * i] = 30.0f;     /* dense */
            mix.params.syn_mix[2 * i + 1] = -30.0f; /* random: weight e^-60 */
        }
        float *a = forward_logits(&mix, context, T), *b = forward_logits(&dense, context, T);
        double worst = 0;
        for (int i = 0; i < T * V; i++) worst = fmax(worst, fabs((double)a[i] - b[i]));
        printf("  %s: mixture with w = (1, e^-60) vs dense alone: max |diff| %.2e\n",
               arch ? "transformer" : "backpack", worst);
        assert_true(worst < 1e-5);
        free(a);
        free(b);
        free(ed);
        free(em);
        backpack_free(&mix);
        backpack_free(&dense);
    }
}

static int file_contains(const char *path, const char *needle) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, needle) != NULL;
}

/* A variant saves its "attention" key and tables and loads back bit for bit; a dot
 * model's config.json has no "attention" key (the published format); a bad value is a
 * one-line error naming the file. */
static void test_checkpoint_round_trip(void **state) {
    (void)state;
    char dir[] = "/tmp/bp-synth-XXXXXX", path[320], model_dir[300];
    assert_non_null(mkdtemp(dir));
    snprintf(model_dir, sizeof model_dir, "%s/m", dir);
    snprintf(path, sizeof path, "%s/config.json", model_dir);
    BpError err = {0};
    for (size_t v = 0; v < NUM_VARIANTS; v++) {
        Backpack a, b;
        build_random(&a, ARCH_BACKPACK, VARIANTS[v], 300 + v);
        assert_int_equal(checkpoint_save(&a, model_dir, NULL, NULL, NULL, &err), 0);
        assert_int_equal(file_contains(path, "\"attention\""), v != 0);
        assert_int_equal(checkpoint_load(&b, model_dir, &err), 0);
        assert_int_equal(attention_kinds(&b.config), attention_kinds(&a.config));
        assert_int_equal(b.num_parameters, a.num_parameters);
        assert_memory_equal(b.params_memory, a.params_memory, a.num_parameters * sizeof(float));
        backpack_free(&a);
        backpack_free(&b);
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"model_type\": \"gpt2\", \"n_embd\": 16, \"n_layer\": 1, \"n_head\": 2, "
          "\"n_positions\": 8, \"vocab_size\": 50, \"layer_norm_epsilon\": 1e-5, "
          "\"scale_attn_by_inverse_layer_idx\": true, \"activation_function\": \"gelu_new\", "
          "\"attention\": \"mix:dense+sparse\"}\n", f);
    fclose(f);
    Backpack c;
    assert_int_equal(checkpoint_load(&c, model_dir, &err), -1);
    printf("  %s\n", err.msg);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "unknown part 'sparse'"));
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cached_generation_equals_full),
        cmocka_unit_test(test_future_tokens_do_not_change_earlier_logits),
        cmocka_unit_test(test_fixed_random_unchanged_by_training_step),
        cmocka_unit_test(test_mixture_weights),
        cmocka_unit_test(test_checkpoint_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
