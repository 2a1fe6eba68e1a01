/* What the differential tests (jsonscan_diff, schema_diff) share: every
 * file under the folders they are given, and a file's bytes. */
#ifndef SKOPSFS_TESTS_DIFFFILES_H
#define SKOPSFS_TESTS_DIFFFILES_H

#include <stdbool.h>
#include <stddef.h>

bool diff_ends_with(const char *path, const char *tail);

/* Calls VISIT for PATH if it is not a folder, else for every file under it,
 * recursively; names starting with '.' are passed over. */
void diff_each_file(const char *path, void (*visit)(const char *path));

/* PATH's bytes (NUL after them), *LENGTH their count; exits 2 where the
 * file cannot be read. */
char *diff_read_file(const char *path, size_t *length);

#endif
