/* geometry_store.c - a random sample of a sense database's words for geometry.h. */
#include <stdlib.h>
#include <string.h>

#include "../common/rng.h"
#include "geometry.h"
#include "store.h"

int geometry_sample_store(SenseStore *s, int n_words, uint64_t seed, int *tokens, float *senses,
                          float *embeddings, int *got, BpError *err) {
    const StoreInfo *info = store_info(s);
    int V = store_vocab_size(s), k = info->config.num_senses, d = info->config.n_embd;
    *got = 0;
    if (n_words < 1) return bp_fail(err, "%s: sample of %d words", info->path, n_words);
    if (senses && k < 1) return bp_fail(err, "%s: the model has no senses (a Transformer)", info->path);
    const float *E = NULL;
    if (embeddings && !(E = store_embeddings(s, err))) return -1;
    int *ids = malloc(sizeof *ids * (size_t)(V > 0 ? V : 1));
    if (!ids) return bp_fail(err, "%s: out of memory", info->path);
    /* real words only: padding rows past the tokenizer have no bytes */
    int n = 0;
    for (int id = 0; id < V; id++) {
        size_t len = 0;
        if (store_token_bytes(s, id, &len) && len > 0) ids[n++] = id;
    }
    if (n == 0) {
        free(ids);
        return bp_fail(err, "%s: no words", info->path);
    }
    int m = n_words < n ? n_words : n;
    Rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < m; i++) {   /* partial Fisher-Yates */
        int j = i + (int)rng_below(&r, (uint64_t)(n - i));
        int t = ids[i];
        ids[i] = ids[j], ids[j] = t;
    }
    for (int i = 0; i < m; i++) {
        tokens[i] = ids[i];
        if (embeddings) memcpy(embeddings + (size_t)i * d, E + (size_t)ids[i] * d, sizeof(float) * (size_t)d);
        for (int l = 0; senses && l < k; l++)
            if (store_sense_vector(s, ids[i], l, STORE_IN_FORCE, senses + ((size_t)i * k + l) * d, err) != 0) {
                free(ids);
                return -1;
            }
    }
    free(ids);
    *got = m;
    return 0;
}
