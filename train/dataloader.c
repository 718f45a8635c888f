#include "dataloader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/rng.h"

/* Lays out epoch dl->pos.epoch: its shift, window count and visiting order. */
static void dataloader_plan_epoch(DataLoader *dl) {
    uint64_t n = dl->file.count, T = (uint64_t)dl->T;
    Rng rng;
    /* The epoch's stream depends on (seed, epoch) only. */
    rng_seed(&rng, dl->seed ^ (0x9e3779b97f4a7c15ULL * (dl->pos.epoch + 1)));
    uint64_t shift = 0;
    if (dl->shuffle && dl->pos.epoch > 0) {
        /* Keep at least one window after the shift. */
        uint64_t room = n - (T + 1);
        uint64_t max_shift = room < T - 1 ? room : T - 1;
        shift = max_shift ? rng_below(&rng, max_shift + 1) : 0;
    }
    dl->shift = shift;
    dl->num_windows = (n - 1 - shift) / T;  /* window w needs tokens up to shift + (w+1)T */
    for (uint64_t w = 0; w < dl->num_windows; w++) dl->order[w] = w;
    if (dl->shuffle)
        for (uint64_t w = dl->num_windows; w > 1; w--) {  /* Fisher-Yates */
            uint64_t j = rng_below(&rng, w);
            uint64_t tmp = dl->order[w - 1];
            dl->order[w - 1] = dl->order[j];
            dl->order[j] = tmp;
        }
}

int dataloader_open(DataLoader *dl, const char *path, int B, int T, int shuffle, uint64_t seed,
                    int vocab_size, BpError *err) {
    memset(dl, 0, sizeof *dl);
    if (B < 1 || T < 1) return bp_fail(err, "%s: batch %d x context %d is empty", path, B, T);
    if (snprintf(dl->path, sizeof dl->path, "%s", path) >= (int)sizeof dl->path)
        return bp_fail(err, "%s: path too long", path);
    if (tokfile_open(&dl->file, path, err) != 0) return -1;
    if (dl->file.count == 0) {
        tokfile_close(&dl->file);
        return bp_fail(err, "%s: the token file is empty", path);
    }
    if (dl->file.count < (uint64_t)T + 1) {
        uint64_t have = dl->file.count;
        tokfile_close(&dl->file);
        return bp_fail(err, "%s: %llu tokens, too short for one window of context %d (needs %d)",
                       path, (unsigned long long)have, T, T + 1);
    }
    if (vocab_size > 0 && dl->file.vocab_size > (uint32_t)vocab_size) {
        uint32_t fv = dl->file.vocab_size;
        tokfile_close(&dl->file);
        return bp_fail(err, "%s: token file vocabulary %u is larger than the model's %d", path,
                       fv, vocab_size);
    }
    dl->B = B;
    dl->T = T;
    dl->shard = 0;
    dl->shards = 1;
    dl->shuffle = shuffle;
    dl->seed = seed;
    dl->order_cap = (dl->file.count - 1) / (uint64_t)T;
    dl->order = malloc(dl->order_cap * sizeof(uint64_t));
    dl->inputs = malloc((size_t)B * (size_t)T * sizeof(int));
    dl->targets = malloc((size_t)B * (size_t)T * sizeof(int));
    dl->starts = malloc((size_t)B * sizeof(uint64_t));
    if (!dl->order || !dl->inputs || !dl->targets || !dl->starts) {
        dataloader_close(dl);
        return bp_fail(err, "%s: out of memory for the data loader", path);
    }
    /* tokfile_open has checked every id against the file's vocabulary, and that is no
     * larger than the model's. */
    dataloader_plan_epoch(dl);
    return 0;
}

void dataloader_close(DataLoader *dl) {
    if (dl->file.map) tokfile_close(&dl->file);
    free(dl->order);
    free(dl->inputs);
    free(dl->targets);
    free(dl->starts);
    memset(dl, 0, sizeof *dl);
}

void dataloader_seek(DataLoader *dl, DataPosition pos) {
    dl->pos.epoch = pos.epoch;
    dl->pos.index = 0;
    dataloader_plan_epoch(dl);
    dl->pos.index = pos.index < dl->num_windows ? pos.index : dl->num_windows;
}

void dataloader_shard(DataLoader *dl, int shard, int shards) {
    dl->shard = shard;
    dl->shards = shards;
}

void dataloader_next(DataLoader *dl) {
    const uint64_t T = (uint64_t)dl->T;
    const int first = dl->shard * dl->B, global = dl->shards * dl->B;
    for (int g = 0; g < global; g++) {
        if (dl->pos.index >= dl->num_windows) {
            dl->pos.epoch++;
            dl->pos.index = 0;
            dataloader_plan_epoch(dl);
        }
        uint64_t start = dl->shift + dl->order[dl->pos.index++] * T;
        int b = g - first;
        if (b < 0 || b >= dl->B) continue;  /* another process's window */
        dl->starts[b] = start;
        int *in = dl->inputs + (size_t)b * T, *tg = dl->targets + (size_t)b * T;
        for (uint64_t t = 0; t < T; t++) {
            in[t] = (int)tokfile_get(&dl->file, start + t);
            tg[t] = (int)tokfile_get(&dl->file, start + t + 1);
        }
    }
}
