/* SHA-256 (FIPS 180-4) of one buffer, for the short hash that tells cut
 * entry names apart. Kept here rather than taken from libcrypto: loading
 * libcrypto costs every skopsfs process about 3 ms at start (relocations
 * and constructors), more than a small model's whole audit, for a hash
 * that is needed only when a key is longer than a file name may be. The
 * unit test compares it with libcrypto's. */
#ifndef SKOPSFS_SHA256_H
#define SKOPSFS_SHA256_H

#include <stddef.h>

#define SK_SHA256_DIGEST_BYTES 32

void sk_sha256(const void *data, size_t length, unsigned char digest[SK_SHA256_DIGEST_BYTES]);

#endif
