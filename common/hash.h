/* hash.h - the project's one 64-bit hash of bytes.
 *
 * FNV-1a over 64-bit little-endian words, then over the trailing bytes one at a time,
 * finished with splitmix64's avalanche (so that the low bits, which hash tables use,
 * depend on every input bit). Fast enough for the 170M parameters of the weights hash,
 * good enough for hash tables of short strings, stable across runs and machines of the
 * same endianness.
 *
 * Its values are stored in files: the weights hash of a model (backpack_weights_hash, in
 * sense databases and train_state.bin) and the checksum of train_state.bin. Changing
 * this function changes those formats.
 */
#ifndef BP_COMMON_HASH_H
#define BP_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t hash64(const void *data, size_t len) {
    const uint64_t prime = 0x100000001b3ULL;
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * prime;
    }
    for (; i < len; i++) h = (h ^ p[i]) * prime;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

#endif
