/* format/pickle_store.c against a file cut short while open: every array
 * read fails with EIO instead of faulting (the stream is never touched
 * through a mapping once opened). ARGV[1]: a protocol 2 pickle whose arrays
 * are latin-1 text; ARGV[2]: a protocol 4 pickle whose arrays are byte
 * ranges. Each is copied to a temporary file, which the test truncates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pickle_store.h"
#include "sk_error.h"

static const char *fixture_paths[2];

static char *copy_to_temp(const char *from)
{
    FILE *in = fopen(from, "rb");
    assert_non_null(in);
    char *path = strdup("/tmp/test_pickle_store.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char buffer[65536];
    size_t got;
    while ((got = fread(buffer, 1, sizeof buffer, in)) > 0)
        assert_int_equal(write(fd, buffer, got), (ssize_t)got);
    fclose(in);
    close(fd);
    return path;
}

/* Opens a copy of FIXTURE, cuts it to a few bytes, and reads each member
 * of kind KIND past its header: each read must fail with EIO. */
static void reads_fail_after_truncation(const char *fixture, enum sk_pickle_member_kind kind)
{
    char *path = copy_to_temp(fixture);
    struct sk_pickle_file *file;
    struct sk_error err = {0};
    if (sk_pickle_file_open(path, NULL, &file, &err) != 0)
        fail_msg("%s", err.message);
    struct sk_store *store = sk_pickle_file_store(file);
    const struct sk_pickle_map *map = sk_pickle_file_map(file);
    assert_int_equal(truncate(path, 16), 0);
    size_t checked = 0;
    for (size_t i = 0; i < map->member_count; i++) {
        if (map->members[i].kind != kind || map->members[i].length == 0)
            continue;
        struct sk_source *source;
        sk_error_clear(&err);
        if (sk_store_open(store, i, true, &source, &err) != 0) {
            /* opening reads the text again (latin-1 checkpoints) */
            assert_int_equal(sk_error_errno(&err), EIO);
            checked++;
            continue;
        }
        char buffer[4096];
        ssize_t got = sk_source_pread(source, buffer, sizeof buffer, source->size - 1, &err);
        assert_int_equal(got, -1);
        assert_int_equal(sk_error_errno(&err), EIO);
        sk_source_close(source);
        checked++;
    }
    assert_true(checked > 0);
    sk_store_close(store);
    unlink(path);
    free(path);
}

static void latin1_arrays_fail_cleanly(void **state)
{
    (void)state;
    reads_fail_after_truncation(fixture_paths[0], SK_PICKLE_MEMBER_LATIN1_RANGE);
}

static void range_arrays_fail_cleanly(void **state)
{
    (void)state;
    reads_fail_after_truncation(fixture_paths[1], SK_PICKLE_MEMBER_RANGE);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_pickle_store P2.pkl P4.pkl\n");
        return 2;
    }
    fixture_paths[0] = argv[1];
    fixture_paths[1] = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(latin1_arrays_fail_cleanly),
        cmocka_unit_test(range_arrays_fail_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
