/* format/pickle_source.c: header + file range (with its extent), byte-swapped
 * ranges, latin-1 text decoded from checkpoints, bytes in memory; every read
 * at every offset equals the expected bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pickle_source.h"

#define HEADER "HEADER!"
#define HEADER_LENGTH 7

static int temp_file_with(const unsigned char *bytes, size_t length)
{
    char path[] = "/tmp/test_pickle_source.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, bytes, length), (ssize_t)length);
    return fd;
}

/* Reads the source whole, and then in pieces of odd sizes from odd offsets. */
static void reads_equal(struct sk_source *source, const unsigned char *expected, size_t length)
{
    struct sk_error err = {0};
    assert_int_equal(sk_source_size(source), length);
    unsigned char *got = malloc(length + 1);
    assert_int_equal(sk_source_pread(source, got, length + 1, 0, &err), (ssize_t)length);
    assert_memory_equal(got, expected, length);
    static const size_t steps[] = {1, 3, 7, 4093, 65537};
    for (size_t s = 0; s < sizeof steps / sizeof *steps; s++)
        for (size_t at = s; at < length; at += steps[s] * 5 + 997) {
            size_t n = steps[s] < length - at ? steps[s] : length - at;
            assert_int_equal(sk_source_pread(source, got, steps[s], at, &err), (ssize_t)n);
            assert_memory_equal(got, expected + at, n);
        }
    assert_int_equal(sk_source_pread(source, got, 1, length, &err), 0);
    free(got);
}

static unsigned char *with_header(const unsigned char *data, size_t length)
{
    unsigned char *all = malloc(HEADER_LENGTH + length);
    memcpy(all, HEADER, HEADER_LENGTH);
    memcpy(all + HEADER_LENGTH, data, length);
    return all;
}

static void a_range_is_served_and_spliceable(void **state)
{
    (void)state;
    unsigned char file[300000];
    for (size_t i = 0; i < sizeof file; i++)
        file[i] = (unsigned char)(i * 31 + i / 256);
    int fd = temp_file_with(file, sizeof file);
    struct sk_source *source;
    struct sk_error err = {0};
    assert_int_equal(
        sk_pickle_source_range(HEADER, HEADER_LENGTH, fd, 10, 200000, 0, &source, &err), 0);
    unsigned char *expected = with_header(file + 10, 200000);
    reads_equal(source, expected, HEADER_LENGTH + 200000);
    int extent_fd;
    uint64_t offset;
    assert_true(sk_source_extent(source, HEADER_LENGTH + 5, &extent_fd, &offset));
    assert_int_equal(extent_fd, fd);
    assert_int_equal(offset, 15);
    assert_false(sk_source_extent(source, 3, &extent_fd, &offset));
    source->ops->close(source);
    /* a range past the end of the file fails at read time, never short */
    assert_int_equal(
        sk_pickle_source_range(HEADER, HEADER_LENGTH, fd, sizeof file - 10, 20, 0, &source, &err),
        0);
    unsigned char buffer[32];
    assert_int_equal(sk_source_pread(source, buffer, sizeof buffer, 0, &err), -1);
    assert_non_null(strstr(err.message, "file ends before"));
    source->ops->close(source);
    free(expected);
    close(fd);
}

static void a_swapped_range_reverses_each_unit(void **state)
{
    (void)state;
    static const unsigned units[] = {2, 4, 8, 16};
    unsigned char file[100000];
    for (size_t i = 0; i < sizeof file; i++)
        file[i] = (unsigned char)(i * 7 + i / 200);
    int fd = temp_file_with(file, sizeof file);
    for (size_t u = 0; u < sizeof units / sizeof *units; u++) {
        size_t length = 96000;
        unsigned char swapped[96000];
        for (size_t i = 0; i < length; i++)
            swapped[i] = file[32 + i / units[u] * units[u] + units[u] - 1 - i % units[u]];
        struct sk_source *source;
        struct sk_error err = {0};
        assert_int_equal(
            sk_pickle_source_range(HEADER, HEADER_LENGTH, fd, 32, length, units[u], &source, &err),
            0);
        unsigned char *expected = with_header(swapped, length);
        reads_equal(source, expected, HEADER_LENGTH + length);
        int extent_fd;
        uint64_t offset;
        assert_false(sk_source_extent(source, HEADER_LENGTH, &extent_fd, &offset));
        source->ops->close(source);
        free(expected);
    }
    struct sk_source *source;
    struct sk_error err = {0};
    assert_int_equal(sk_pickle_source_range("", 0, fd, 0, 10, 4, &source, &err), -1);
    sk_error_clear(&err);
    assert_int_equal(sk_pickle_source_range("", 0, fd, 0, 12, 3, &source, &err), -1);
    close(fd);
}

/* The UTF-8 text of latin-1 bytes, as protocol 2 pickles array data. */
static unsigned char *latin1_text(const unsigned char *bytes, size_t length, size_t *text_length)
{
    unsigned char *text = malloc(2 * length + 1), *p = text;
    for (size_t i = 0; i < length; i++) {
        if (bytes[i] < 0x80) {
            *p++ = bytes[i];
        } else {
            *p++ = (unsigned char)(0xC0 | bytes[i] >> 6);
            *p++ = (unsigned char)(0x80 | (bytes[i] & 0x3F));
        }
    }
    *text_length = (size_t)(p - text);
    return text;
}

static void latin1_text_decodes_from_every_offset(void **state)
{
    (void)state;
    size_t length = 5 * SK_LATIN1_CHECKPOINT_BYTES + 1234;
    unsigned char *data = malloc(length);
    for (size_t i = 0; i < length; i++) /* ASCII runs and high bytes, unevenly */
        data[i] = (unsigned char)((i / 1000) % 3 == 0 ? 'a' + i % 26 : (i * 131) % 256);
    size_t text_length;
    unsigned char *text = latin1_text(data, length, &text_length);
    for (unsigned swap = 0; swap <= 8; swap += 8) {
        size_t used = swap ? length / 8 * 8 : length;
        size_t used_text;
        unsigned char *used_bytes = latin1_text(data, used, &used_text);
        struct sk_source *source;
        struct sk_error err = {0};
        if (sk_pickle_source_latin1(HEADER, HEADER_LENGTH, used_bytes, used_text, used, swap,
                                    &source, &err) != 0)
            fail_msg("%s", err.message);
        unsigned char *expected = malloc(used);
        for (size_t i = 0; i < used; i++)
            expected[i] = swap ? data[i / 8 * 8 + 7 - i % 8] : data[i];
        unsigned char *all = with_header(expected, used);
        reads_equal(source, all, HEADER_LENGTH + used);
        source->ops->close(source);
        free(all);
        free(expected);
        free(used_bytes);
    }
    free(text);
    free(data);
}

static void latin1_refuses(const char *text, uint64_t decoded, const char *message)
{
    struct sk_source *source = NULL;
    struct sk_error err = {0};
    assert_int_equal(sk_pickle_source_latin1("", 0, (const unsigned char *)text, strlen(text),
                                             decoded, 0, &source, &err),
                     -1);
    assert_null(source);
    if (strstr(err.message, message) == NULL)
        fail_msg("\"%s\" does not say \"%s\"", err.message, message);
}

static void latin1_errors_are_refused(void **state)
{
    (void)state;
    latin1_refuses("ab\xc4\x80", 3, "at byte 2 is not a code point <= U+00FF");
    latin1_refuses("ab\xe2\x82\xac", 3, "at byte 2"); /* the euro sign */
    latin1_refuses("ab\xc3", 3, "at byte 2");         /* cut in a character */
    latin1_refuses("\x80", 1, "at byte 0");           /* a lone continuation */
    latin1_refuses("\xc1\x81", 1, "at byte 0");       /* overlong 'A' */
    latin1_refuses("\xc3\xa9\xc3", 2, "at byte 2");
    latin1_refuses("abc", 4, "decodes to 3 bytes, not the 4");
    latin1_refuses("abcd", 3, "decodes to 4 bytes, not the 3");
    char *long_text = malloc(70001);
    memset(long_text, 'a', 70000);
    long_text[70000] = '\0';
    latin1_refuses(long_text, 10, "decodes to more than 65536 bytes, not the 10");
    free(long_text);
    latin1_refuses("\xc3\xa9\xc3\xa9", 1, "decodes to 2 bytes, not the 1");
}

static void bytes_are_copied(void **state)
{
    (void)state;
    unsigned char data[1000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)i;
    struct sk_source *source;
    struct sk_error err = {0};
    assert_int_equal(
        sk_pickle_source_bytes(HEADER, HEADER_LENGTH, data, sizeof data, &source, &err), 0);
    unsigned char *expected = with_header(data, sizeof data);
    memset(data, 0, sizeof data);
    reads_equal(source, expected, HEADER_LENGTH + sizeof data);
    source->ops->close(source);
    free(expected);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_range_is_served_and_spliceable),
        cmocka_unit_test(a_swapped_range_reverses_each_unit),
        cmocka_unit_test(latin1_text_decodes_from_every_offset),
        cmocka_unit_test(latin1_errors_are_refused),
        cmocka_unit_test(bytes_are_copied),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
