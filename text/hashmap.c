#include "hashmap.h"

#include "../common/hash.h"

#include <stdlib.h>
#include <string.h>

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

int bytemap_init(ByteMap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    m->cap = pow2_at_least(expected * 2);
    m->slots = malloc(m->cap * sizeof *m->slots);
    m->arena_cap = 1 << 12;
    m->arena = malloc(m->arena_cap);
    if (!m->slots || !m->arena) {
        bytemap_free(m);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) m->slots[i].key_off = SIZE_MAX;
    return 0;
}

void bytemap_free(ByteMap *m) {
    free(m->slots);
    free(m->arena);
    memset(m, 0, sizeof *m);
}

void bytemap_clear(ByteMap *m) {
    for (size_t i = 0; i < m->cap; i++) m->slots[i].key_off = SIZE_MAX;
    m->count = 0;
    m->arena_len = 0;
}

static ByteMapSlot *bytemap_find(const ByteMap *m, uint64_t h, const void *key, size_t len) {
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        ByteMapSlot *s = &m->slots[i];
        if (s->key_off == SIZE_MAX) return s;
        if (s->hash == h && s->key_len == len && !memcmp(m->arena + s->key_off, key, len)) return s;
    }
}

int64_t *bytemap_get(const ByteMap *m, const void *key, size_t len) {
    ByteMapSlot *s = bytemap_find(m, hash64(key, len), key, len);
    return s->key_off == SIZE_MAX ? NULL : &s->value;
}

static int bytemap_grow(ByteMap *m) {
    size_t cap = m->cap * 2;
    ByteMapSlot *slots = malloc(cap * sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < cap; i++) slots[i].key_off = SIZE_MAX;
    for (size_t i = 0; i < m->cap; i++) {
        ByteMapSlot *s = &m->slots[i];
        if (s->key_off == SIZE_MAX) continue;
        size_t j = s->hash & (cap - 1);
        while (slots[j].key_off != SIZE_MAX) j = (j + 1) & (cap - 1);
        slots[j] = *s;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int64_t *bytemap_put(ByteMap *m, const void *key, size_t len, int64_t init, int *inserted) {
    uint64_t h = hash64(key, len);
    ByteMapSlot *s = bytemap_find(m, h, key, len);
    if (inserted) *inserted = 0;
    if (s->key_off != SIZE_MAX) return &s->value;
    if ((m->count + 1) * 4 > m->cap * 3) {   /* load factor 3/4 */
        if (bytemap_grow(m) != 0) return NULL;
        s = bytemap_find(m, h, key, len);
    }
    if (m->arena_len + len > m->arena_cap) {
        size_t cap = m->arena_cap;
        while (cap < m->arena_len + len) cap *= 2;
        char *arena = realloc(m->arena, cap);
        if (!arena) return NULL;
        m->arena = arena;
        m->arena_cap = cap;
    }
    if (len) memcpy(m->arena + m->arena_len, key, len);
    s->hash = h;
    s->key_off = m->arena_len;
    s->key_len = len;
    s->value = init;
    m->arena_len += len;
    m->count++;
    if (inserted) *inserted = 1;
    return &s->value;
}

int pairmap_init(PairMap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    m->cap = pow2_at_least(expected * 2);
    m->keys = malloc(m->cap * sizeof *m->keys);
    m->values = malloc(m->cap * sizeof *m->values);
    if (!m->keys || !m->values) {
        pairmap_free(m);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) m->keys[i] = PAIRMAP_EMPTY;
    return 0;
}

void pairmap_free(PairMap *m) {
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof *m);
}

static size_t pairmap_slot(const PairMap *m, uint64_t key) {
    size_t mask = m->cap - 1;
    size_t i = hash64(&key, sizeof key) & mask;
    while (m->keys[i] != PAIRMAP_EMPTY && m->keys[i] != key) i = (i + 1) & mask;
    return i;
}

int64_t *pairmap_get(const PairMap *m, uint64_t key) {
    size_t i = pairmap_slot(m, key);
    return m->keys[i] == key ? &m->values[i] : NULL;
}

int64_t *pairmap_put(PairMap *m, uint64_t key, int64_t init, int *inserted) {
    size_t i = pairmap_slot(m, key);
    if (inserted) *inserted = 0;
    if (m->keys[i] == key) return &m->values[i];
    if ((m->count + 1) * 4 > m->cap * 3) {
        size_t cap = m->cap * 2;
        uint64_t *keys = malloc(cap * sizeof *keys);
        int64_t *values = malloc(cap * sizeof *values);
        if (!keys || !values) {
            free(keys);
            free(values);
            return NULL;
        }
        for (size_t j = 0; j < cap; j++) keys[j] = PAIRMAP_EMPTY;
        for (size_t j = 0; j < m->cap; j++) {
            if (m->keys[j] == PAIRMAP_EMPTY) continue;
            size_t k = hash64(&m->keys[j], sizeof m->keys[j]) & (cap - 1);
            while (keys[k] != PAIRMAP_EMPTY) k = (k + 1) & (cap - 1);
            keys[k] = m->keys[j];
            values[k] = m->values[j];
        }
        free(m->keys);
        free(m->values);
        m->keys = keys;
        m->values = values;
        m->cap = cap;
        i = pairmap_slot(m, key);
    }
    m->keys[i] = key;
    m->values[i] = init;
    m->count++;
    if (inserted) *inserted = 1;
    return &m->values[i];
}
