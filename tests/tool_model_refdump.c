/* tool_model_refdump - runs the C model on a checkpoint and one batch, and dumps what
 * tests/reference.py compares with its PyTorch implementation:
 *
 *     tool_model_refdump MODEL_DIR BATCH.txt OUT.safetensors [PLAN]
 *
 * BATCH.txt: "B T", then B*T input ids, then B*T target ids (whitespace separated).
 * OUT.safetensors (F32): "logits" [B, T, V], "loss" [1], and "grad.<name>" for every
 * checkpoint tensor <name> in its stored shape: d(mean loss)/d(tensor). With a layer
 * PLAN (model/plan.h) the blocks run as it says and there are no gradients.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/backpack.h"
#include "../model/checkpoint.h"
#include "../model/safetensors.h"

static int read_batch(const char *path, int *B, int *T, int **inputs, int **targets,
                      BpError *err) {
    FILE *f = fopen(path, "r");
    if (!f) return bp_fail_errno(err, "%s", path);
    int rc = -1;
    *inputs = *targets = NULL;
    if (fscanf(f, "%d %d", B, T) != 2 || *B < 1 || *T < 1 || *B > 4096 || *T > 65536) {
        bp_fail(err, "%s: expected \"B T\" first", path);
        goto done;
    }
    size_t n = (size_t)*B * *T;
    *inputs = malloc(n * sizeof(int));
    *targets = malloc(n * sizeof(int));
    if (!*inputs || !*targets) {
        bp_fail(err, "%s: out of memory", path);
        goto done;
    }
    for (size_t i = 0; i < 2 * n; i++) {
        int *dst = i < n ? *inputs + i : *targets + (i - n);
        if (fscanf(f, "%d", dst) != 1) {
            bp_fail(err, "%s: expected %zu token ids, found %zu", path, 2 * n, i);
            goto done;
        }
    }
    rc = 0;
done:
    fclose(f);
    if (rc != 0) {
        free(*inputs);
        free(*targets);
        *inputs = *targets = NULL;
    }
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s MODEL_DIR BATCH.txt OUT.safetensors [PLAN]\n", argv[0]);
        return 2;
    }
    BpError err = {{0}};
    Backpack m;
    int B = 0, T = 0, *inputs = NULL, *targets = NULL;
    LayerPlan plan = {0};
    if (checkpoint_load(&m, argv[1], &err) != 0) goto fail;
    if (argc == 5) {
        if (layer_plan_parse(&plan, argv[4], m.config.n_layer, &err) != 0) goto fail_model;
        m.plan = &plan;
    }
    if (read_batch(argv[2], &B, &T, &inputs, &targets, &err) != 0) goto fail_model;
    if (backpack_forward(&m, inputs, targets, B, T, NULL, &err) != 0) goto fail_batch;
    int V = m.config.vocab_size;
    size_t nlogits = (size_t)B * T * V;
    float *logits = malloc(nlogits * sizeof(float));
    if (!logits) {
        bp_fail(&err, "out of memory");
        goto fail_batch;
    }
    memcpy(logits, backpack_logits(&m), nlogits * sizeof(float));
    float loss = m.mean_loss;
    backpack_zero_grad(&m);
    if (!m.plan && backpack_backward(&m, &err) != 0) goto fail_logits;

    int ne = m.plan ? 0 : backpack_num_param_entries(&m.config);
    ParamEntry *e = calloc((size_t)ne + 1, sizeof *e);  /* + 1: none under a plan */
    SafeTensorOut *out = calloc((size_t)ne + 2, sizeof *out);
    char (*names)[PARAM_NAME_MAX + 8] = calloc((size_t)ne + 1, sizeof *names);
    if (!e || !out || !names) {
        bp_fail(&err, "out of memory");
        goto fail_logits;
    }
    if (ne) backpack_param_entries(&m, &m.grads, e);
    out[0] = (SafeTensorOut){"logits", ST_F32, 3, {B, T, V}, logits};
    out[1] = (SafeTensorOut){"loss", ST_F32, 1, {1}, &loss};
    for (int i = 0; i < ne; i++) {
        snprintf(names[i], sizeof names[i], "grad.%s", e[i].name);
        out[2 + i] = (SafeTensorOut){names[i], ST_F32, e[i].ndim, {e[i].shape[0], e[i].shape[1]},
                                     e[i].data};
    }
    int rc = safetensors_write(argv[3], out, ne + 2, NULL, NULL, 0, &err);
    free(e);
    free(out);
    free(names);
    free(logits);
    free(inputs);
    free(targets);
    layer_plan_free(&plan);
    backpack_free(&m);
    if (rc != 0) {
        fprintf(stderr, "tool_model_refdump: %s\n", err.msg);
        return 1;
    }
    return 0;
fail_logits:
    free(logits);
fail_batch:
    free(inputs);
    free(targets);
fail_model:
    layer_plan_free(&plan);
    backpack_free(&m);
fail:
    fprintf(stderr, "tool_model_refdump: %s\n", err.msg);
    return 1;
}
