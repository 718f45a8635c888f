/* plan.h - layer plans ("Transformer layers as painters", docs/layer-plans.md): run a
 * trained model's blocks skipped, repeated, reordered, side by side or looped.
 *
 * Grammar (spaces ignored):
 *     plan  := step (',' step)*          steps run one after the other
 *     step  := term ('+' term)*          parallel: every term reads the same h;
 *                                        h <- mean of their outputs
 *     term  := atom ('*' r)*             loop: the atom r times in a row (1 <= r <= 64)
 *     atom  := block | '(' plan ')'      block: an index in [0, L)
 * So `0,1,2+3,(4+5)*3,7`; `*` binds tighter than `+` (`1+2*3` is 1 + (2,2,2)), and
 * parentheses group. A one-term group is its term and `S*1` is S: they compile to
 * the same program, so they run bit for bit alike; the plan `0,1,...,L-1` is the
 * model. A block keeps its own weights and attention scaling (1/(l+1) of its index l)
 * wherever it runs.
 *
 * A plan compiles to a straight program over a few residual-stream buffers (buffer 0
 * holds h in and out; a parallel group needs an accumulator, a sequence inside a
 * parallel branch a buffer of its own). Executors (net.c, infer.c) interpret it with
 * their own number type:
 *     PLAN_BLOCK:   out = Block_block(buf[src]);   buf[dst] = out  (add: +=)
 *     PLAN_COMBINE: out = buf[src] / divisor;      buf[dst] = out  (add: +=)
 * Every PLAN_BLOCK is one run of a block with a slot of its own (0, 1, ... in program
 * order): the incremental forward keeps one key/value cache per slot, so a block run
 * twice has two caches.
 */
#ifndef BP_PLAN_H
#define BP_PLAN_H

#include "../common/error.h"

typedef enum { PLAN_BLOCK, PLAN_COMBINE } PlanOpKind;

typedef struct {
    PlanOpKind kind;
    int block;    /* PLAN_BLOCK: the block index l (its weights and attention scaling) */
    int slot;     /* PLAN_BLOCK: its run number, 0 .. num_runs-1 (its cache) */
    int src, dst; /* buffers */
    int add;      /* 0: buf[dst] = out; 1: buf[dst] += out */
    int divisor;  /* PLAN_COMBINE: the number of branches averaged */
} PlanOp;

#define LAYER_PLAN_MAX_RUNS 4096   /* block runs of one plan, loops unrolled */
#define LAYER_PLAN_MAX_LOOP 64
#define LAYER_PLAN_TEXT_MAX 1024

typedef struct {
    int n_layer;        /* the L it was checked against */
    int num_ops, num_runs, num_buffers;
    PlanOp *ops;        /* (num_ops) */
    char text[LAYER_PLAN_TEXT_MAX]; /* the plan as given */
} LayerPlan;

/* Parses and compiles text for a model of n_layer blocks. On error, returns -1 with a
 * one-line message that quotes the plan and points at the offending character
 * (1-based): "'0,1,,2': empty step at character 5". */
int layer_plan_parse(LayerPlan *plan, const char *text, int n_layer, BpError *err);
void layer_plan_free(LayerPlan *plan);

/* 1 when the program is blocks 0 .. L-1 in place, in order: the model itself. */
int layer_plan_is_identity(const LayerPlan *plan);

#endif
