/* Content sources apart from any container: bytes in memory (borrowed or
 * copied), a header in memory before a range of a file (with its extent
 * past the header only, and a file cut short an error with EIO), and
 * errors that carry a code. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "source.h"

static void memory_source_serves_its_bytes(void **state)
{
    (void)state;
    char text[] = "hello\n";
    struct sk_error err = {0};
    for (int copy = 0; copy < 2; copy++) {
        struct sk_source *source;
        assert_int_equal(sk_source_memory(text, 6, copy, &source, &err), 0);
        assert_int_equal(sk_source_size(source), 6);
        char buffer[16];
        assert_int_equal(sk_source_pread(source, buffer, sizeof buffer, 2, &err), 4);
        assert_memory_equal(buffer, "llo\n", 4);
        assert_int_equal(sk_source_pread(source, buffer, sizeof buffer, 6, &err), 0);
        assert_int_equal(sk_source_pread(source, buffer, sizeof buffer, 99, &err), 0);
        int fd;
        uint64_t at;
        assert_false(sk_source_extent(source, 0, &fd, &at));
        const char *in_place = sk_source_held(source);
        assert_non_null(in_place);
        assert_memory_equal(in_place, text, 6);
        assert_true(copy ? in_place != text : in_place == text);
        sk_source_close(source);
    }
}

/* A memfd holding "0123456789"; the source shows "HDR" then bytes 2..7. */
static struct sk_source *header_and_range(int *fd)
{
    *fd = memfd_create("range", 0);
    assert_true(*fd >= 0);
    assert_int_equal(write(*fd, "0123456789", 10), 10);
    struct sk_error err = {0};
    struct sk_source *source;
    assert_int_equal(sk_source_file_range("HDR", 3, *fd, 2, 6, &source, &err), 0);
    return source;
}

static void file_range_reads_across_the_header(void **state)
{
    (void)state;
    int fd;
    struct sk_source *source = header_and_range(&fd);
    struct sk_error err = {0};
    char buffer[16];
    assert_int_equal(sk_source_size(source), 9);
    assert_int_equal(sk_source_pread(source, buffer, sizeof buffer, 0, &err), 9);
    assert_memory_equal(buffer, "HDR234567", 9);
    assert_int_equal(sk_source_pread(source, buffer, 3, 2, &err), 3);
    assert_memory_equal(buffer, "R23", 3);
    assert_int_equal(sk_source_pread(source, buffer, sizeof buffer, 9, &err), 0);
    sk_source_close(source);
    close(fd);
}

static void file_range_extent_starts_past_the_header(void **state)
{
    (void)state;
    int fd, extent_fd = -1;
    uint64_t at = 0;
    struct sk_source *source = header_and_range(&fd);
    assert_false(sk_source_extent(source, 2, &extent_fd, &at));
    assert_true(sk_source_extent(source, 3, &extent_fd, &at));
    assert_int_equal(extent_fd, fd);
    assert_int_equal(at, 2);
    assert_true(sk_source_extent(source, 5, &extent_fd, &at));
    assert_int_equal(at, 4);
    assert_null(sk_source_held(source)); /* in the file, not in memory */
    sk_source_close(source);
    close(fd);
}

static void file_range_cut_short_is_eio(void **state)
{
    (void)state;
    int fd;
    struct sk_source *source = header_and_range(&fd);
    assert_int_equal(ftruncate(fd, 5), 0);
    struct sk_error err = {0};
    char buffer[16];
    assert_int_equal(sk_source_pread(source, buffer, sizeof buffer, 0, &err), -1);
    assert_int_equal(err.code, EIO);
    assert_non_null(strstr(err.message, "ends early"));
    sk_source_close(source);
    close(fd);
}

static void error_code_belongs_to_the_first_cause(void **state)
{
    (void)state;
    struct sk_error err = {0};
    assert_int_equal(sk_error_errno(&err), EIO);
    assert_int_equal(sk_fail_code(&err, ENOMEM, "out of %s", "memory"), -1);
    assert_int_equal(sk_fail_code(&err, E2BIG, "later"), -1);
    assert_int_equal(sk_error_errno(&err), ENOMEM);
    assert_string_equal(err.message, "out of memory");
    sk_error_clear(&err);
    assert_int_equal(sk_fail(&err, "no code"), -1);
    assert_int_equal(sk_error_errno(&err), EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(memory_source_serves_its_bytes),
        cmocka_unit_test(file_range_reads_across_the_header),
        cmocka_unit_test(file_range_extent_starts_past_the_header),
        cmocka_unit_test(file_range_cut_short_is_eio),
        cmocka_unit_test(error_code_belongs_to_the_first_cause),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
