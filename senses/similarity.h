/* similarity.h - the lexical-similarity evaluation (backpack similarity): Spearman's
 * correlation between human similarity scores of word pairs and the cosines of their
 * sense vectors, per sense l (cos(C(x)_l, C(y)_l)) and by the minimum over senses
 * (the paper's Sim_min).
 *
 * The pairs file: one "word<TAB>word<TAB>score" per line (whitespace-separated when a
 * line has no tab); '#' comments and blank lines are skipped. A word of several tokens
 * uses the average of their sense vectors, unless single_token, which counts it as
 * missing. A word not in the vocabulary makes its pair missing (reported, not fatal);
 * a malformed line fails, naming "<file>:<line>". */
#ifndef BP_SENSES_SIMILARITY_H
#define BP_SENSES_SIMILARITY_H

#include "../common/error.h"
#include "store.h"

typedef struct {
    int pairs;                 /* pair lines read */
    int used;                  /* pairs whose words were both found */
    int missing;               /* pairs with a missing word */
    int multi_token;           /* used pairs with a word of several tokens (averaged) */
    char missing_words[300];   /* the first missing words: 'a', 'b'; ", ..." when cut */
    int n_senses;              /* k */
    double *spearman;          /* (k + 1): sense 0..k-1, then the minimum; NAN if undefined */
} SimilarityResult;

int similarity_evaluate(SenseStore *s, const char *pairs_path, int single_token,
                        SimilarityResult *res, BpError *err);
void similarity_result_free(SimilarityResult *res);

#endif
