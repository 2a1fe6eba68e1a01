/* CRC-32 as zlib's crc32() computes it (the zip and gzip polynomial), with
 * the bulk of a long buffer folded by carry-less multiplication where the
 * CPU has it (x86-64 PCLMULQDQ): several times zlib's speed, which is what
 * bounds `skopsfs convert` on large arrays. Other CPUs get zlib's. */
#ifndef SKOPSFS_CRC32_H
#define SKOPSFS_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* CRC of LENGTH bytes at DATA continuing CRC (0 to start), as
 * crc32_z(CRC, DATA, LENGTH). */
uint32_t sk_crc32(uint32_t crc, const void *data, size_t length);

/* The same without the fast path: the reference the tests compare with. */
uint32_t sk_crc32_portable(uint32_t crc, const void *data, size_t length);

#endif
