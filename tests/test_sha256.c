/* format/sha256.c: FIPS 180-4's examples, and libcrypto's SHA-256 for every
 * length around the block and padding boundaries, at odd alignments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"

static void hex(const unsigned char *digest, char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

static void published_examples(void **state)
{
    (void)state;
    static const struct {
        const char *message, *digest;
    } cases[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        unsigned char digest[SK_SHA256_DIGEST_BYTES];
        char text[65];
        sk_sha256(cases[i].message, strlen(cases[i].message), digest);
        hex(digest, text);
        assert_string_equal(text, cases[i].digest);
    }
    char *million = malloc(1000000);
    assert_non_null(million);
    memset(million, 'a', 1000000);
    unsigned char digest[SK_SHA256_DIGEST_BYTES];
    char text[65];
    sk_sha256(million, 1000000, digest);
    hex(digest, text);
    assert_string_equal(text, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(million);
}

static void same_as_libcrypto(void **state)
{
    (void)state;
    unsigned char bytes[1024 + 8];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof bytes; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        bytes[i] = (unsigned char)x;
    }
    for (size_t offset = 0; offset < 8; offset++)
        for (size_t length = 0; length <= 1024; length++) {
            unsigned char ours[SK_SHA256_DIGEST_BYTES], theirs[SHA256_DIGEST_LENGTH];
            sk_sha256(bytes + offset, length, ours);
            SHA256(bytes + offset, length, theirs);
            if (memcmp(ours, theirs, sizeof ours) != 0)
                fail_msg("offset %zu, length %zu", offset, length);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(published_examples),
        cmocka_unit_test(same_as_libcrypto),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
