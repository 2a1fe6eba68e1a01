/* format/npyheader.c: typestr itemsizes and a header byte for byte (the
 * Python checker compares hundreds of headers with numpy's own). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "npyheader.h"

static void itemsizes_follow_the_typestr(void **state)
{
    (void)state;
    static const struct {
        const char *typestr;
        long long itemsize; /* -1: refused */
    } cases[] = {
        {"<f8", 8},      {">i4", 4},     {"|b1", 1},
        {"<U5", 20},     {"|S0", 0},     {"|S300", 300},
        {"|V12", 12},    {"<M8[ns]", 8}, {"<m8", 8},
        {"<c16", 16},    {"<f16", 16},   {"|O", 8},
        {"<f3", -1},     {"f8", -1},     {"<i8x", -1},
        {"<M8[xs]", -1}, {"<M8[ns", -1}, {"<q8", -1},
        {"<", -1},       {"|S", -1},     {"<U99999999999999999999", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint64_t itemsize = 12345;
        struct sk_error err = {0};
        int rc = sk_npy_typestr_itemsize(cases[i].typestr, &itemsize, &err);
        if (cases[i].itemsize < 0 ? rc != -1 : rc != 0 || itemsize != (uint64_t)cases[i].itemsize)
            fail_msg("%s: rc %d itemsize %llu (%s)", cases[i].typestr, rc,
                     (unsigned long long)itemsize, err.message);
    }
}

static void a_header_is_numpys(void **state)
{
    (void)state;
    /* numpy.save(f, numpy.zeros(3)) */
    static const char expected_dict[] = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }";
    struct sk_npy_dtype f8 = {.typestr = "<f8"};
    uint64_t shape[] = {3};
    char *header;
    size_t length;
    struct sk_error err = {0};
    assert_int_equal(sk_npy_header_build(&f8, false, shape, 1, &header, &length, &err), 0);
    assert_int_equal(length, 128);
    assert_memory_equal(header, "\x93NUMPY\x01\x00\x76\x00", 10);
    assert_memory_equal(header + 10, expected_dict, sizeof expected_dict - 1);
    for (size_t i = 10 + sizeof expected_dict - 1; i < length - 1; i++)
        assert_int_equal(header[i], ' ');
    assert_int_equal(header[length - 1], '\n');
    free(header);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(itemsizes_follow_the_typestr),
        cmocka_unit_test(a_header_is_numpys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
