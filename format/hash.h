/* Hashes for every table that a file's names, keys or ids fill (the
 * schema's __id__ memo, dict keys, directory indexes, type names).
 * SipHash-1-3 under a key drawn at random once per process: with a fixed
 * hash a file can choose thousands of keys for one slot, and a table that
 * probes linearly then walks every earlier key on each insert (a 3 MB file
 * of colliding ids took 33 s to audit before this). With a secret key no
 * file can aim at a slot. The values differ from run to run; nothing may
 * depend on their order. */
#ifndef SKOPSFS_HASH_H
#define SKOPSFS_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

uint64_t sk_hash_bytes(const void *data, size_t length);

/* The same keyed SipHash-1-3 over a sequence of 64-bit words, fed a piece
 * at a time: for fingerprints of several spans without copying them into
 * one buffer. The caller makes its encoding unambiguous (absorb a length
 * before bytes). Inline: a fingerprint is a few words, taken per state. */
struct sk_hasher {
    uint64_t v0, v1, v2, v3;
};
void sk_hasher_start(struct sk_hasher *hasher);
uint64_t sk_hasher_finish(struct sk_hasher *hasher);

static inline uint64_t sk_hash_rotl(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64 - b));
}

static inline void sk_hasher_round(struct sk_hasher *h)
{
    h->v0 += h->v1;
    h->v1 = sk_hash_rotl(h->v1, 13) ^ h->v0;
    h->v0 = sk_hash_rotl(h->v0, 32);
    h->v2 += h->v3;
    h->v3 = sk_hash_rotl(h->v3, 16) ^ h->v2;
    h->v0 += h->v3;
    h->v3 = sk_hash_rotl(h->v3, 21) ^ h->v0;
    h->v2 += h->v1;
    h->v1 = sk_hash_rotl(h->v1, 17) ^ h->v2;
    h->v2 = sk_hash_rotl(h->v2, 32);
}

static inline void sk_hasher_word(struct sk_hasher *hasher, uint64_t word)
{
    hasher->v3 ^= word;
    sk_hasher_round(hasher);
    hasher->v0 ^= word;
}

/* The LENGTH (< 8) bytes at BYTES as a little-endian word, zeros above. */
static inline uint64_t sk_hash_tail_word(const unsigned char *bytes, size_t length)
{
    uint64_t word = 0;
    for (size_t i = 0; i < length; i++)
        word |= (uint64_t)bytes[i] << (8 * i);
    return word;
}

/* LENGTH bytes as whole little-endian words, the last one padded with zeros. */
static inline void sk_hasher_bytes(struct sk_hasher *hasher, const void *data, size_t length)
{
    const unsigned char *bytes = data;
    for (; length >= 8; bytes += 8, length -= 8) {
        uint64_t word;
        memcpy(&word, bytes, sizeof word);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        word = __builtin_bswap64(word);
#endif
        sk_hasher_word(hasher, word);
    }
    if (length > 0)
        sk_hasher_word(hasher, sk_hash_tail_word(bytes, length));
}

/* A slot among 2**BITS (1..63) for an integer key: the top BITS bits of
 * VALUE times a random odd multiplier. Cheaper than SipHash, and as good
 * for a table: two keys share a slot with probability at most 2 / 2**BITS
 * whatever keys a file picks (Dietzfelbinger's multiply-shift family). */
size_t sk_hash_u64_slot(uint64_t value, unsigned bits);

/* Replaces the random key: only for comparing with SipHash's reference
 * values in the unit test. */
void sk_hash_set_key_for_test(uint64_t k0, uint64_t k1);

#endif
