/* greedy.h - the exact greedy argmax of the logits E o through an int8 copy of E, for
 * infer_step_greedy (infer.h); private to model/. greedy.c says why it is exact.
 */
#ifndef BP_GREEDY_H
#define BP_GREEDY_H

#include "backpack.h"
#include "team.h"

typedef struct GreedyScreen GreedyScreen;

/* The int8 copy of m's E (V d bytes, O(V d) time); NULL with err set when memory
 * runs out. */
GreedyScreen *greedy_screen_build(const Backpack *m, BpError *err);
void greedy_screen_free(GreedyScreen *g);

/* argmax_v of the float logits E o that matvec_rows would compute (lowest id on
 * ties), bit for bit, as team jobs. logits (V) is scratch, left unspecified. */
int greedy_screen_choose(GreedyScreen *g, const Backpack *m, Team *team, float *logits,
                         const float *o);

#endif
