/* format/crc32.c: the folded CRC-32 equals zlib's for every length around
 * the fold's block sizes, every alignment, continued CRCs, and a large
 * buffer of random bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdint.h>
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

static void every_length_and_alignment(void **state)
{
    (void)state;
    unsigned char *bytes = random_bytes(1024 + 64, 1);
    for (size_t offset = 0; offset < 17; offset++)
        for (size_t length = 0; length <= 1024; length++) {
            uint32_t expected = (uint32_t)crc32_z(0, bytes + offset, length);
            if (sk_crc32(0, bytes + offset, length) != expected)
                fail_msg("offset %zu, length %zu", offset, length);
        }
    free(bytes);
}

static void continued_crcs_chain(void **state)
{
    (void)state;
    unsigned char *bytes = random_bytes(5000, 2);
    uint32_t whole = (uint32_t)crc32_z(0, bytes, 5000);
    for (size_t cut = 0; cut <= 5000; cut += 37)
        assert_int_equal(sk_crc32(sk_crc32(0, bytes, cut), bytes + cut, 5000 - cut), whole);
    assert_int_equal(sk_crc32(0x12345678, bytes, 4096), (uint32_t)crc32_z(0x12345678, bytes, 4096));
    free(bytes);
}

static void large_buffer(void **state)
{
    (void)state;
    size_t length = (16u << 20) + 7;
    unsigned char *bytes = random_bytes(length, 3);
    assert_int_equal(sk_crc32(0, bytes, length), sk_crc32_portable(0, bytes, length));
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
