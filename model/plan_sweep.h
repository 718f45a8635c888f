/* plan_sweep.h - the interventions of "Transformer layers as painters" as layer plans
 * (docs/layer-plans.md), and the layer-similarity matrix of a model's blocks.
 *
 * "Middle" is every block but the first and the last: blocks 1 .. L-2.
 */
#ifndef BP_PLAN_SWEEP_H
#define BP_PLAN_SWEEP_H

#include <stdint.h>

#include "backpack.h"
#include "plan.h"

typedef enum {
    SWEEP_BASELINE,       /* 0,1,...,L-1 */
    SWEEP_SKIP_ONE,       /* param l: every block but l */
    SWEEP_SKIP_MIDDLE,    /* param M: M middle blocks removed, from the centre outwards */
    SWEEP_REPEAT_MIDDLE,  /* the middle blocks replaced by the centre one, as many times */
    SWEEP_REVERSE,        /* the middle blocks in reverse order */
    SWEEP_RANDOM,         /* param seed index: the middle blocks shuffled */
    SWEEP_PARALLEL,       /* the middle blocks as one parallel group */
    SWEEP_LOOPED,         /* param r: that group looped r times */
} SweepKind;

typedef struct {
    SweepKind kind;
    int param;
    char name[48];                    /* "skip 3", "random 2", "looped parallel r=3" */
    char text[LAYER_PLAN_TEXT_MAX];   /* the plan */
} SweepPlan;

#define SWEEP_MAX_LOOP 4

/* Upper bound of the number of plans for L blocks and `seeds` random orders. */
int layer_sweep_count(int n_layer, int seeds);
/* Fills out (layer_sweep_count items at most) in the order of the kinds above and
 * returns how many; random orders come from seed (the same seed, the same orders).
 * Models with fewer than 3 blocks have no middle: baseline and single skips only. */
int layer_sweep_plans(int n_layer, int seeds, uint64_t seed, SweepPlan *out);

const char *layer_sweep_kind_name(SweepKind kind);  /* "skip-middle" */

/* After a backpack_forward without a plan on B x T positions: adds, for every pair of
 * blocks (i, j), the sum over positions t of cos(h_i[t], h_j[t]) to sum[i L + j]
 * (h_i: the residual stream after block i). Returns the number of positions added, or
 * -1 when the last forward ran a plan. A zero vector has cosine 0 with everything. */
long layer_similarity_add(const Backpack *m, double *sum);

#endif
