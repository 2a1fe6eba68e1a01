/* npy headers: dtype, shape and order parsed and checked against the size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "npy.h"
#include "testutil.h"

static unsigned char *with_header(const char *dict, size_t data_bytes, int version, size_t *length)
{
    size_t fixed = version == 1 ? 10 : 12;
    size_t text = strlen(dict) + 1;
    size_t total = fixed + text;
    unsigned char *bytes = calloc(1, total + data_bytes);
    memcpy(bytes, "\x93NUMPY", 6);
    bytes[6] = (unsigned char)version;
    size_t text_length = text;
    bytes[8] = (unsigned char)(text_length & 0xff);
    bytes[9] = (unsigned char)(text_length >> 8);
    memcpy(bytes + fixed, dict, text - 1);
    bytes[total - 1] = '\n';
    *length = total + data_bytes;
    return bytes;
}

static void parses_plain_array(void **state)
{
    (void)state;
    size_t length;
    unsigned char *b =
        with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }", 96, 1, &length);
    struct sk_npy_header h;
    struct sk_error err = {0};
    assert_int_equal(sk_npy_parse(b, length, length, &h, &err), 0);
    assert_string_equal(h.descr, "<f8");
    assert_int_equal(h.ndim, 2);
    assert_int_equal(h.shape[0], 3);
    assert_int_equal(h.shape[1], 4);
    assert_false(h.fortran_order);
    char shape[64];
    sk_npy_format_shape(&h, shape, sizeof shape);
    assert_string_equal(shape, "3,4");
    sk_npy_header_free(&h);
    free(b);
}

static void parses_scalar_fortran_and_version_2(void **state)
{
    (void)state;
    size_t length;
    unsigned char *b =
        with_header("{'descr': '<U4', 'fortran_order': True, 'shape': (), }", 16, 2, &length);
    struct sk_npy_header h;
    struct sk_error err = {0};
    assert_int_equal(sk_npy_parse(b, length, length, &h, &err), 0);
    assert_string_equal(h.descr, "<U4");
    assert_int_equal(h.ndim, 0);
    assert_true(h.fortran_order);
    char shape[8];
    assert_int_equal(sk_npy_format_shape(&h, shape, sizeof shape), 0);
    sk_npy_header_free(&h);
    free(b);
}

static void parses_structured_descr(void **state)
{
    (void)state;
    size_t length;
    const char *dict = "{'descr': [('left', '<i8'), ('w', '<f8', (2,)), ('b', '|b1')], "
                       "'fortran_order': False, 'shape': (5,), }";
    unsigned char *b = with_header(dict, 5 * (8 + 16 + 1), 1, &length);
    struct sk_npy_header h;
    struct sk_error err = {0};
    assert_int_equal(sk_npy_parse(b, length, length, &h, &err), 0);
    assert_string_equal(h.descr, "[('left', '<i8'), ('w', '<f8', (2,)), ('b', '|b1')]");
    sk_npy_header_free(&h);
    free(b);
}

static void rejects_shape_larger_than_data(void **state)
{
    (void)state;
    size_t length;
    unsigned char *b =
        with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1000,), }", 80, 1, &length);
    struct sk_npy_header h;
    struct sk_error err = {0};
    assert_int_equal(sk_npy_parse(b, length, length, &h, &err), -1);
    assert_non_null(strstr(err.message, "need 8000"));
    free(b);
}

static void rejects_overflowing_shape(void **state)
{
    (void)state;
    size_t length;
    unsigned char *b =
        with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
                    0, 1, &length);
    struct sk_npy_header h;
    struct sk_error err = {0};
    assert_int_equal(sk_npy_parse(b, length, length, &h, &err), -1);
    free(b);
}

static void object_dtype_is_flagged(void **state)
{
    (void)state;
    size_t length;
    unsigned char *b =
        with_header("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 40, 1, &length);
    struct sk_npy_header h;
    struct sk_error err = {0};
    assert_int_equal(sk_npy_parse(b, length, length, &h, &err), 0);
    assert_true(h.object_dtype);
    sk_npy_header_free(&h);
    free(b);
}

static void rejects_bad_magic_and_huge_headers(void **state)
{
    (void)state;
    struct sk_error err = {0};
    uint64_t header_length;
    const unsigned char not_npy[12] = "PK\3\4nothing";
    assert_int_equal(sk_npy_header_length(not_npy, sizeof not_npy, &header_length, &err), -1);
    assert_non_null(strstr(err.message, "bad magic"));
    sk_error_clear(&err);
    const unsigned char huge[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0, 0, 0, 1};
    assert_int_equal(sk_npy_header_length(huge, sizeof huge, &header_length, &err), -1);
    assert_non_null(strstr(err.message, "SK_MAX_NPY_HEADER_BYTES"));
    sk_error_clear(&err);
    size_t length;
    unsigned char *b = with_header("{'descr': '<f8', 'shape': (1,)}", 8, 1, &length);
    struct sk_npy_header h;
    assert_int_equal(sk_npy_parse(b, length, length, &h, &err), -1);
    assert_non_null(strstr(err.message, "lacks"));
    free(b);
}

static void reads_numpy_written_header(void **state)
{
    (void)state;
    size_t length;
    unsigned char *b = test_make_npy(7, &length);
    struct sk_npy_header h;
    struct sk_error err = {0};
    assert_int_equal(sk_npy_parse(b, length, length, &h, &err), 0);
    assert_int_equal(h.data_offset % 64, 0);
    assert_int_equal(h.shape[0], 7);
    sk_npy_header_free(&h);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_plain_array),
        cmocka_unit_test(parses_scalar_fortran_and_version_2),
        cmocka_unit_test(parses_structured_descr),
        cmocka_unit_test(rejects_shape_larger_than_data),
        cmocka_unit_test(rejects_overflowing_shape),
        cmocka_unit_test(object_dtype_is_flagged),
        cmocka_unit_test(rejects_bad_magic_and_huge_headers),
        cmocka_unit_test(reads_numpy_written_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
