/* Zip access: members found by name, read by offset and length, stored ones
 * directly, DEFLATE ones through seek points, never past the declared size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "archive.h"
#include "testutil.h"

#define BIG (5u << 20) /* several DEFLATE seek points */

static unsigned char *pattern(size_t length)
{
    unsigned char *bytes = malloc(length);
    uint32_t x = 12345;
    for (size_t i = 0; i < length; i++) {
        x = x * 1103515245u + 12345u; /* compressible, but not trivially */
        bytes[i] = (unsigned char)((x >> 16) % 16 + (i / 4096) % 7);
    }
    return bytes;
}

static void reads_stored_and_deflated_members(void **state)
{
    (void)state;
    unsigned char *big = pattern(BIG);
    struct test_member members[] = {
        {"stored.bin", big, BIG, false},
        {"deflated.bin", big, BIG, true},
        {"empty.bin", "", 0, true},
    };
    char *path = test_make_zip(members, 3);
    struct sk_archive *archive;
    struct sk_error err = {{0}};
    assert_int_equal(sk_archive_open(path, &archive, &err), 0);
    assert_int_equal(sk_archive_member_count(archive), 3);
    uint64_t stored, deflated, empty;
    assert_int_equal(sk_archive_find(archive, "stored.bin", &stored), 0);
    assert_int_equal(sk_archive_find(archive, "deflated.bin", &deflated), 0);
    assert_int_equal(sk_archive_find(archive, "empty.bin", &empty), 0);
    assert_int_equal(sk_archive_find(archive, "missing.bin", &empty), -1);
    struct sk_member_info info;
    sk_archive_member_info(archive, deflated, &info);
    assert_true(info.compressed);
    assert_int_equal(info.size, BIG);

    struct sk_reader *readers[2];
    assert_int_equal(sk_reader_open(archive, stored, &readers[0], &err), 0);
    assert_int_equal(sk_reader_open(archive, deflated, &readers[1], &err), 0);
    int fd;
    uint64_t extent_offset;
    assert_false(sk_reader_stored_extent(readers[1], &fd, &extent_offset));
    assert_true(sk_reader_stored_extent(readers[0], &fd, &extent_offset));
    unsigned char edges[2][64];
    assert_int_equal(pread(fd, edges[0], 64, (off_t)extent_offset), 64);
    assert_int_equal(pread(fd, edges[1], 64, (off_t)(extent_offset + BIG - 64)), 64);
    assert_memory_equal(edges[0], big, 64);
    assert_memory_equal(edges[1], big + BIG - 64, 64);
    unsigned char *buffer = malloc(70000);
    /* random offsets, forwards and backwards, across seek points */
    uint32_t x = 99;
    for (int i = 0; i < 300; i++) {
        x = x * 1664525u + 1013904223u;
        uint64_t at = x % (BIG + 100);
        size_t length = 1 + (x >> 8) % 70000;
        for (int r = 0; r < 2; r++) {
            ssize_t got = sk_reader_pread(readers[r], buffer, length, at, &err);
            size_t want = at >= BIG ? 0 : (length < BIG - at ? length : BIG - at);
            assert_int_equal(got, want);
            assert_memory_equal(buffer, big + (at < BIG ? at : 0), want);
        }
    }
    sk_reader_close(readers[0]);
    sk_reader_close(readers[1]);
    struct sk_reader *reader;
    assert_int_equal(sk_reader_open(archive, empty, &reader, &err), 0);
    assert_int_equal(sk_reader_pread(reader, buffer, 10, 0, &err), 0);
    sk_reader_close(reader);
    free(buffer);
    sk_archive_close(archive);
    unlink(path);
    free(path);
    free(big);
}

static void reads_whole_member_with_a_limit(void **state)
{
    (void)state;
    struct test_member members[] = {{"schema.json", "{\"a\": 1}", 8, true}};
    char *path = test_make_zip(members, 1);
    struct sk_archive *archive;
    struct sk_error err = {{0}};
    assert_int_equal(sk_archive_open(path, &archive, &err), 0);
    char *data;
    size_t length;
    assert_int_equal(sk_archive_read_member(archive, 0, 100, &data, &length, &err), 0);
    assert_int_equal(length, 8);
    assert_string_equal(data, "{\"a\": 1}");
    sk_archive_free_member(data, length);
    assert_int_equal(sk_archive_read_member(archive, 0, 4, &data, &length, &err), -1);
    assert_non_null(strstr(err.message, "more than the limit"));
    sk_archive_close(archive);
    unlink(path);
    free(path);
}

static void rejects_what_is_not_a_zip(void **state)
{
    (void)state;
    char path[] = "/tmp/skopsfs-test-XXXXXX";
    int fd = mkstemp(path);
    assert_int_equal(write(fd, "plain text, not a zip\n", 22), 22);
    close(fd);
    struct sk_archive *archive;
    struct sk_error err = {{0}};
    assert_int_equal(sk_archive_open(path, &archive, &err), -1);
    assert_non_null(strstr(err.message, "not a zip archive"));
    assert_non_null(strstr(err.message, path));
    unlink(path);
    sk_error_clear(&err);
    assert_int_equal(sk_archive_open("/nonexistent.skops", &archive, &err), -1);
    assert_string_equal(err.message, "/nonexistent.skops: No such file or directory");
}

static void rejects_truncated_archive(void **state)
{
    (void)state;
    unsigned char *big = pattern(10000);
    struct test_member members[] = {{"a.bin", big, 10000, false}};
    char *path = test_make_zip(members, 1);
    assert_int_equal(truncate(path, 6000), 0);
    struct sk_archive *archive;
    struct sk_error err = {{0}};
    assert_int_equal(sk_archive_open(path, &archive, &err), -1);
    assert_true(strlen(err.message) > 0);
    unlink(path);
    free(path);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_stored_and_deflated_members),
        cmocka_unit_test(reads_whole_member_with_a_limit),
        cmocka_unit_test(rejects_what_is_not_a_zip),
        cmocka_unit_test(rejects_truncated_archive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
