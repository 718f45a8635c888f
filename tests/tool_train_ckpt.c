/* tool_train_ckpt - what the distributed training script (tests/train_mpi.sh) reads from
 * checkpoints. Not a test by itself.
 *
 *   tool_train_ckpt diff DIR1 DIR2
 *       the largest absolute difference between the two models' parameters:
 *       "max_abs_diff X" (exit 2 if they do not load or differ in shape)
 *   tool_train_ckpt state DIR
 *       "step S tokens N epoch E index I batch G hash H" from DIR/train_state.bin
 *       (G the saved global batch, H the weights hash), exit 2 if it does not load
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/checkpoint.h"
#include "../train/train_state.h"

static int fail(const BpError *err) {
    fprintf(stderr, "tool_train_ckpt: %s\n", err->msg);
    return 2;
}

static int diff(const char *a, const char *b) {
    BpError err = {{0}};
    Backpack ma, mb;
    if (checkpoint_load(&ma, a, &err) != 0) return fail(&err);
    if (checkpoint_load(&mb, b, &err) != 0) {
        backpack_free(&ma);
        return fail(&err);
    }
    int rc = 0;
    if (ma.num_parameters != mb.num_parameters) {
        fprintf(stderr, "tool_train_ckpt: %zu parameters vs %zu\n", ma.num_parameters, mb.num_parameters);
        rc = 2;
    } else {
        double worst = 0;
        for (size_t i = 0; i < ma.num_parameters; i++)
            worst = fmax(worst, fabs((double)ma.params_memory[i] - (double)mb.params_memory[i]));
        printf("max_abs_diff %.3g\n", worst);
    }
    backpack_free(&ma);
    backpack_free(&mb);
    return rc;
}

static int state(const char *dir) {
    BpError err = {{0}};
    Backpack m;
    if (checkpoint_load(&m, dir, &err) != 0) return fail(&err);
    float *moments = malloc(2 * m.num_parameters * sizeof(float));
    TrainMoments mom = {.m = moments, .v = moments + m.num_parameters};
    TrainProgress p;
    TrainConfig saved;
    int rc = 0;
    if (!moments) {
        snprintf(err.msg, sizeof err.msg, "out of memory");
        rc = fail(&err);
    } else if (train_state_read(dir, &m, &mom, &p, &saved, &err) != 0) {
        rc = fail(&err);
    } else {
        char hash[17];
        backpack_weights_hash(&m, hash);
        printf("step %llu tokens %llu epoch %llu index %llu batch %d hash %s\n",
               (unsigned long long)p.step, (unsigned long long)p.tokens,
               (unsigned long long)p.data.epoch, (unsigned long long)p.data.index, saved.batch, hash);
    }
    free(moments);
    backpack_free(&m);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "diff")) return diff(argv[2], argv[3]);
    if (argc == 3 && !strcmp(argv[1], "state")) return state(argv[2]);
    fprintf(stderr, "usage: tool_train_ckpt diff DIR1 DIR2 | state DIR\n");
    return 2;
}
