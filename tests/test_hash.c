/* format/hash.c: SipHash-1-3 as CPython computes it (hash(bytes) with
 * PYTHONHASHSEED=0, a zero key),
 * and keys chosen to share a slot under a fixed hash spread out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "hash.h"

static void matches_cpython_with_a_zero_key(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t hash;
    } cases[] = {
        {"a", 4644417185603328019ull},
        {"ab", 6148830537548944441ull},
        {"abc", 13851880170939887858ull},
        {"abcd", 16416137402921954953ull},
        {"abcde", 2674923165546153122ull},
        {"abcdef", 7070790388344807208ull},
        {"abcdefg", 7904145750247929094ull},
        {"abcdefgh", 4574395652268504554ull},
        {"abcdefghijklmnopq", 7044894726457044172ull},
    };
    sk_hash_set_key_for_test(0, 0);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        assert_int_equal(sk_hash_bytes(cases[i].text, strlen(cases[i].text)), cases[i].hash);
}

/* The hasher fed a piece at a time is the same SipHash: the bytes as
 * words, then the length word sk_hash_bytes closes with, give CPython's
 * value; and a piece's padding keeps "ab" + "c" apart from "a" + "bc". */
static void hasher_is_the_same_siphash(void **state)
{
    (void)state;
    sk_hash_set_key_for_test(0, 0);
    const char *text = "abcdefghijklmnopq"; /* 17 bytes: two words and a tail */
    struct sk_hasher hasher;
    sk_hasher_start(&hasher);
    sk_hasher_bytes(&hasher, text, 8);
    sk_hasher_bytes(&hasher, text + 8, 8);
    sk_hasher_word(&hasher, (uint64_t)'q' | (uint64_t)17 << 56);
    assert_int_equal(sk_hasher_finish(&hasher), 7044894726457044172ull);

    struct sk_hasher a, b;
    sk_hasher_start(&a);
    sk_hasher_bytes(&a, "ab", 2);
    sk_hasher_bytes(&a, "c", 1);
    sk_hasher_start(&b);
    sk_hasher_bytes(&b, "a", 1);
    sk_hasher_bytes(&b, "bc", 2);
    assert_true(sk_hasher_finish(&a) != sk_hasher_finish(&b));
}

/* Integers whose product with a fixed odd constant agrees in bits 20..43
 * (the slot a fixed multiply-shift hash would take): under both keyed
 * hashes they fill 65,536 buckets about evenly. */
static void ids_aimed_at_one_slot_spread(void **state)
{
    (void)state;
    sk_hash_set_key_for_test(0x0123456789abcdefull, 0xfedcba9876543210ull);
    static unsigned short load[1 << 16];
    memset(load, 0, sizeof load);
    uint64_t inverse = 1; /* of 0x9E3779B97F4A7C15 mod 2^64, by Newton's iteration */
    for (int i = 0; i < 6; i++)
        inverse *= 2 - 0x9E3779B97F4A7C15ull * inverse;
    static unsigned short slot_load[1 << 16];
    memset(slot_load, 0, sizeof slot_load);
    unsigned worst = 0, worst_slot = 0;
    for (uint64_t k = 1; k <= 1 << 16; k++) {
        uint64_t id = (k << 44) * inverse;
        unsigned bucket = (unsigned)(sk_hash_bytes(&id, sizeof id) & 0xffff);
        if (++load[bucket] > worst)
            worst = load[bucket];
        size_t slot = sk_hash_u64_slot(id, 16);
        assert_true(slot < 1 << 16);
        if (++slot_load[slot] > worst_slot)
            worst_slot = slot_load[slot];
    }
    assert_true(worst < 16); /* balls into bins: about 8 expected */
    assert_true(worst_slot < 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_cpython_with_a_zero_key),
        cmocka_unit_test(hasher_is_the_same_siphash),
        cmocka_unit_test(ids_aimed_at_one_slot_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
