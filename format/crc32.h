/* CRC-32 as zlib's crc32() computes it (the zip and gzip polynomial), with
 * the bulk of a long buffer folded by carry-less multiplication where the
 * CPU has it: x86-64 PCLMULQDQ, 16 bytes a multiply, several times zlib's
 * speed; and where it also has AVX-512 with VPCLMULQDQ, 64 bytes a
 * multiply, four times that again. Every archive member read whole is
 * summed, so this bounds `skopsfs convert` on large arrays and a good part
 * of the content checks. Other CPUs get zlib's. */
#ifndef SKOPSFS_CRC32_H
#define SKOPSFS_CRC32_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CRC of LENGTH bytes at DATA continuing CRC (0 to start), as
 * crc32_z(CRC, DATA, LENGTH), by the fastest way this CPU has. */
uint32_t sk_crc32(uint32_t crc, const void *data, size_t length);

/* The ways sk_crc32 chooses among, so that the tests compare each one
 * this CPU has with zlib's. */
enum sk_crc32_way {
    SK_CRC32_ZLIB,      /* zlib's crc32_z: everywhere */
    SK_CRC32_FOLD,      /* PCLMULQDQ, 128-bit registers */
    SK_CRC32_FOLD_WIDE, /* VPCLMULQDQ, 512-bit registers */
};

/* Whether this CPU, and this build, can take WAY. */
bool sk_crc32_has_way(enum sk_crc32_way way);

/* As sk_crc32 by WAY (and by the narrower ways for what WAY leaves); WAY
 * must be one sk_crc32_has_way accepts. */
uint32_t sk_crc32_by(enum sk_crc32_way way, uint32_t crc, const void *data, size_t length);

#endif
