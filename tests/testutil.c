#include "testutil.h"

#include <stdarg.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#include <cmocka.h>

char *test_make_zip(const struct test_member *members, size_t count)
{
    char *path = strdup("/tmp/skopsfs-test-XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    int error;
    zip_t *zip = zip_open(path, ZIP_TRUNCATE, &error);
    assert_non_null(zip);
    for (size_t i = 0; i < count; i++) {
        zip_source_t *source = zip_source_buffer(zip, members[i].data, members[i].length, 0);
        assert_non_null(source);
        zip_int64_t index = zip_file_add(zip, members[i].name, source, ZIP_FL_ENC_UTF_8);
        assert_true(index >= 0);
        assert_int_equal(
            zip_set_file_compression(zip, (zip_uint64_t)index,
                                     members[i].deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0),
            0);
    }
    assert_int_equal(zip_close(zip), 0);
    return path;
}

char *test_make_skops(const char *schema, const struct test_member *members, size_t count)
{
    struct test_member *all = calloc(count + 1, sizeof *all);
    assert_non_null(all);
    all[0] = (struct test_member){"schema.json", schema, strlen(schema), false};
    for (size_t i = 0; i < count; i++)
        all[i + 1] = members[i];
    char *path = test_make_zip(all, count + 1);
    free(all);
    return path;
}

void *test_make_npy(size_t count, size_t *length)
{
    char header[128];
    int n = snprintf(header, sizeof header,
                     "{'descr': '<f8', 'fortran_order': False, 'shape': (%zu,), }", count);
    size_t header_length = 10 + (size_t)n + 1;
    size_t padded = (header_length + 63) / 64 * 64;
    unsigned char *bytes = malloc(padded + count * 8);
    assert_non_null(bytes);
    memcpy(bytes, "\x93NUMPY\x01\x00", 8);
    bytes[8] = (unsigned char)((padded - 10) & 0xff);
    bytes[9] = (unsigned char)((padded - 10) >> 8);
    memcpy(bytes + 10, header, (size_t)n);
    memset(bytes + 10 + n, ' ', padded - 10 - (size_t)n);
    bytes[padded - 1] = '\n';
    for (size_t i = 0; i < count; i++) {
        double v = (double)i;
        memcpy(bytes + padded + i * 8, &v, 8);
    }
    *length = padded + count * 8;
    return bytes;
}
