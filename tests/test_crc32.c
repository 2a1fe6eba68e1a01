/* format/crc32.c: each way this CPU has (the 128-bit fold, the 512-bit
 * fold) equals zlib's for every length around the folds' block sizes and
 * thresholds, every alignment, continued CRCs, and a large buffer of random
 * bytes; sk_crc32 equals zlib's too. A way this CPU lacks is named as
 * skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

#include "crc32.h"

static unsigned char *random_bytes(size_t length, unsigned seed)
{
    unsigned char *bytes = malloc(length);
    assert_non_null(bytes);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < length; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        bytes[i] = (unsigned char)x;
    }
    return bytes;
}

static const struct {
    enum sk_crc32_way way;
    const char *name;
} ways[] = {
    {SK_CRC32_ZLIB, "zlib"},
    {SK_CRC32_FOLD, "128-bit fold"},
    {SK_CRC32_FOLD_WIDE, "512-bit fold"},
};

enum { WAYS = sizeof ways / sizeof ways[0] };

/* Past the wide fold's threshold (1,024 bytes) by more than a 256-byte step
 * and each tail: 64-byte steps and 16-byte steps. */
#define LONGEST 2400u

static bool way_missing(size_t w)
{
    if (sk_crc32_has_way(ways[w].way))
        return false;
    print_message("crc32: this CPU has no %s: not tested\n", ways[w].name);
    return true;
}

static void every_length_and_alignment(void **state)
{
    (void)state;
    unsigned char *bytes = random_bytes(LONGEST + 64, 1);
    for (size_t w = 0; w < WAYS; w++) {
        if (way_missing(w))
            continue;
        for (size_t offset = 0; offset < 17; offset++)
            for (size_t length = 0; length <= LONGEST; length++) {
                uint32_t expected = (uint32_t)crc32_z(0, bytes + offset, length);
                if (sk_crc32_by(ways[w].way, 0, bytes + offset, length) != expected)
                    fail_msg("%s: offset %zu, length %zu", ways[w].name, offset, length);
                if (w == 0 && sk_crc32(0, bytes + offset, length) != expected)
                    fail_msg("sk_crc32: offset %zu, length %zu", offset, length);
            }
    }
    free(bytes);
}

static void continued_crcs_chain(void **state)
{
    (void)state;
    unsigned char *bytes = random_bytes(5000, 2);
    uint32_t whole = (uint32_t)crc32_z(0, bytes, 5000);
    for (size_t w = 0; w < WAYS; w++) {
        if (way_missing(w))
            continue;
        enum sk_crc32_way way = ways[w].way;
        for (size_t cut = 0; cut <= 5000; cut += 37)
            assert_int_equal(
                sk_crc32_by(way, sk_crc32_by(way, 0, bytes, cut), bytes + cut, 5000 - cut), whole);
        assert_int_equal(sk_crc32_by(way, 0x12345678, bytes, 4096),
                         (uint32_t)crc32_z(0x12345678, bytes, 4096));
    }
    free(bytes);
}

static void large_buffer(void **state)
{
    (void)state;
    size_t length = (16u << 20) + 7;
    unsigned char *bytes = random_bytes(length, 3);
    uint32_t expected = (uint32_t)crc32_z(0, bytes, length);
    assert_int_equal(sk_crc32(0, bytes, length), expected);
    for (size_t w = 0; w < WAYS; w++)
        if (!way_missing(w))
            assert_int_equal(sk_crc32_by(ways[w].way, 0, bytes, length), expected);
    free(bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_length_and_alignment),
        cmocka_unit_test(continued_crcs_chain),
        cmocka_unit_test(large_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
