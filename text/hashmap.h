/* hashmap.h - the two open-addressing hash maps of the tokenizer (and of the sense
 * store's vocabulary), keyed by hash64 (common/hash.h).
 *
 * ByteMap: byte string -> int64 value. Keys are copied into one arena, so a map of a
 * million short pre-tokens is two allocations. PairMap: uint64 key (two 32-bit token
 * ids, left << 32 | right) -> int64 value. Neither supports deletion: the tokenizer only
 * ever inserts, and clears a whole map when it is full (the encode cache).
 */
#ifndef BP_TEXT_HASHMAP_H
#define BP_TEXT_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t hash;
    size_t key_off;   /* offset of the key in the arena; SIZE_MAX: empty slot */
    size_t key_len;
    int64_t value;
} ByteMapSlot;

typedef struct {
    ByteMapSlot *slots;
    size_t cap;        /* a power of two */
    size_t count;
    char *arena;
    size_t arena_len, arena_cap;
} ByteMap;

int bytemap_init(ByteMap *m, size_t expected);          /* 0, or -1 when out of memory */
void bytemap_free(ByteMap *m);
void bytemap_clear(ByteMap *m);
/* The value of key, or NULL. */
int64_t *bytemap_get(const ByteMap *m, const void *key, size_t len);
/* The value of key, inserting it with value `init` when absent (*inserted says which);
 * NULL when out of memory. The pointer is valid until the next insertion. */
int64_t *bytemap_put(ByteMap *m, const void *key, size_t len, int64_t init, int *inserted);
/* The key stored in a slot (for iteration over slots[0..cap) with key_off != SIZE_MAX). */
static inline const char *bytemap_key(const ByteMap *m, const ByteMapSlot *s) {
    return m->arena + s->key_off;
}

#define PAIRMAP_EMPTY UINT64_MAX

typedef struct {
    uint64_t *keys;
    int64_t *values;
    size_t cap, count;
} PairMap;

static inline uint64_t pair_key(int left, int right) {
    return ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
}
int pairmap_init(PairMap *m, size_t expected);
void pairmap_free(PairMap *m);
int64_t *pairmap_get(const PairMap *m, uint64_t key);
int64_t *pairmap_put(PairMap *m, uint64_t key, int64_t init, int *inserted);

#endif
