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

uint64_t sk_hash_bytes(const void *data, size_t length);
/* A slot among 2**BITS (1..63) for an integer key: the top BITS bits of
 * VALUE times a random odd multiplier. Cheaper than SipHash, and as good
 * for a table: two keys share a slot with probability at most 2 / 2**BITS
 * whatever keys a file picks (Dietzfelbinger's multiply-shift family). */
size_t sk_hash_u64_slot(uint64_t value, unsigned bits);

/* Replaces the random key: only for comparing with SipHash's reference
 * values in the unit test. */
void sk_hash_set_key_for_test(uint64_t k0, uint64_t k1);

#endif
