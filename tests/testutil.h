/* Helpers for the unit tests: small zip archives written with libzip. */
#ifndef SKOPSFS_TESTUTIL_H
#define SKOPSFS_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>

struct test_member {
    const char *name;
    const void *data;
    size_t length;
    bool deflate;
};

/* Writes the members to a new temporary archive; returns its path (free it
 * and unlink it when done). Fails the test on error. */
char *test_make_zip(const struct test_member *members, size_t count);

/* An archive holding schema.json with TEXT and the given extra members. */
char *test_make_skops(const char *schema, const struct test_member *members, size_t count);

/* A .npy file of COUNT little-endian float64 values 0, 1, 2, ... */
void *test_make_npy(size_t count, size_t *length);

#endif
