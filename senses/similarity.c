#include "similarity.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fileio.h"
#include "stats.h"

/* Splits a pairs line into word, word, score (tab-separated; whitespace when there is
 * no tab). Returns 0 or -1. Modifies line. */
static int split_pair(char *line, char **a, char **b, double *score) {
    char *f[4];
    int n = 0;
    const char *sep = strchr(line, '\t') ? "\t" : " ";
    char *save = NULL;
    for (char *t = strtok_r(line, sep, &save); t && n < 4; t = strtok_r(NULL, sep, &save)) f[n++] = t;
    if (n != 3) return -1;
    char *end;
    errno = 0;
    *score = strtod(f[2], &end);
    if (end == f[2] || *end || errno || !isfinite(*score)) return -1;
    *a = f[0];
    *b = f[1];
    return 0;
}

static void note_missing(SimilarityResult *res, const char *word) {
    size_t used = strlen(res->missing_words), room = sizeof res->missing_words;
    if (used + 64 < room)
        snprintf(res->missing_words + used, room - used, "%s'%.40s'", used ? ", " : "", word);
    else if (used + 6 < room && strcmp(res->missing_words + used - 5, ", ...") != 0)
        snprintf(res->missing_words + used, room - used, ", ...");
}

int similarity_evaluate(SenseStore *s, const char *pairs_path, int single_token,
                        SimilarityResult *res, BpError *err) {
    memset(res, 0, sizeof *res);
    char *text;
    size_t len;
    if (read_file(pairs_path, &text, &len, err)) return -1;
    if (memchr(text, 0, len)) {
        free(text);
        return bp_fail(err, "%s: binary file, expected word<TAB>word<TAB>score lines", pairs_path);
    }
    int k = store_info(s)->config.num_senses, d = store_info(s)->config.n_embd;
    int cap = 64, n = 0, r = 0;
    res->n_senses = k;
    double *human = malloc(cap * sizeof(double));
    double *cosines = malloc((size_t)cap * (k + 1) * sizeof(double));  // (n, k + 1): senses then min
    float *va = malloc((size_t)k * d * sizeof(float)), *vb = malloc((size_t)k * d * sizeof(float));
    res->spearman = malloc((size_t)(k + 1) * sizeof(double));
    if (!human || !cosines || !va || !vb || !res->spearman) r = bp_fail(err, "out of memory");
    int line_no = 0;
    for (char *line = text, *next; !r && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        line_no++;
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r') line[--l] = 0;
        const char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (!*p || *p == '#') continue;
        char *a, *b;
        double score;
        if (split_pair(line, &a, &b, &score)) {
            r = bp_fail(err, "%s:%d: expected 'word<TAB>word<TAB>score'", pairs_path, line_no);
            break;
        }
        res->pairs++;
        StoreWord wa, wb;
        BpError ignore;
        int bad_a = store_resolve_word(s, a, &wa, &ignore) || (single_token && wa.n_tokens != 1);
        int bad_b = store_resolve_word(s, b, &wb, &ignore) || (single_token && wb.n_tokens != 1);
        if (bad_a || bad_b) {
            res->missing++;
            note_missing(res, bad_a ? a : b);
            continue;
        }
        if (wa.n_tokens > 1 || wb.n_tokens > 1) res->multi_token++;
        if ((r = store_word_senses(s, &wa, va, err)) || (r = store_word_senses(s, &wb, vb, err))) break;
        if (n == cap) {
            cap *= 2;
            double *h = realloc(human, cap * sizeof(double));
            if (h) human = h;
            double *c = realloc(cosines, (size_t)cap * (k + 1) * sizeof(double));
            if (c) cosines = c;
            if (!h || !c) {
                r = bp_fail(err, "out of memory");
                break;
            }
        }
        human[n] = score;
        double mn = INFINITY;
        for (int sense = 0; sense < k; sense++) {
            double c = store_cosine(va + (size_t)sense * d, vb + (size_t)sense * d, d);
            cosines[(size_t)n * (k + 1) + sense] = c;
            if (c < mn) mn = c;
        }
        cosines[(size_t)n * (k + 1) + k] = mn;
        n++;
    }
    res->used = n;
    double *col = r ? NULL : malloc((n > 0 ? n : 1) * sizeof(double));
    if (!r && !col) r = bp_fail(err, "out of memory");
    for (int c = 0; c <= k && !r; c++) {
        for (int i = 0; i < n; i++) col[i] = cosines[(size_t)i * (k + 1) + c];
        res->spearman[c] = spearman(col, human, n);
    }
    free(col);
    free(human);
    free(cosines);
    free(va);
    free(vb);
    free(text);
    if (r) similarity_result_free(res);
    return r ? -1 : 0;
}

void similarity_result_free(SimilarityResult *res) {
    free(res->spearman);
    res->spearman = NULL;
}
