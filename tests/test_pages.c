/* Large blocks: zeroed, writable to their last byte, sizes that are not a
 * multiple of a page, and none for nothing; malloc as usual after the heap
 * is reserved in huge pages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pages.h"

static void blocks_are_zeroed_and_writable(void **state)
{
    (void)state;
    const size_t sizes[] = {1, 4095, (2u << 20) + 1, 7417647};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *block = sk_pages_alloc(sizes[i]);
        assert_non_null(block);
        assert_int_equal(block[0], 0);
        assert_int_equal(block[sizes[i] / 2], 0);
        assert_int_equal(block[sizes[i] - 1], 0);
        memset(block, 0xa5, sizes[i]);
        sk_pages_free(block, sizes[i]);
    }
}

static void nothing_for_nothing(void **state)
{
    (void)state;
    assert_null(sk_pages_alloc(0));
    assert_null(sk_pages_alloc(SIZE_MAX));
    sk_pages_free(NULL, 0);
}

static void heap_reserve_keeps_malloc_working(void **state)
{
    (void)state;
    sk_pages_for_heap((size_t)8 << 20);
    enum { COUNT = 100000 };
    static unsigned char *blocks[COUNT];
    for (size_t i = 0; i < COUNT; i++) {
        blocks[i] = malloc(1 + i % 200);
        assert_non_null(blocks[i]);
        blocks[i][0] = (unsigned char)i;
    }
    for (size_t i = 0; i < COUNT; i++) {
        assert_int_equal(blocks[i][0], (unsigned char)i);
        free(blocks[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(blocks_are_zeroed_and_writable),
        cmocka_unit_test(nothing_for_nothing),
        cmocka_unit_test(heap_reserve_keeps_malloc_working),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
