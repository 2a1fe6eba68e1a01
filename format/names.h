/* Entry names, per docs/layout.md: a key percent-escaped where a name
 * cannot hold it ('/', '%', NUL, a leading '.'), the node's kind suffix,
 * "~N" before the suffix for the Nth sibling of the same name, and a name
 * over SK_MAX_NAME_BYTES cut (never inside a UTF-8 sequence or an escape)
 * and told apart by a short SHA-256 of its key. */
#ifndef SKOPSFS_NAMES_H
#define SKOPSFS_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "graph.h"
#include "sk_error.h"

struct sk_arena;
struct sk_entry;

/* The suffix NODE's entry name ends in: ".npy", ".npz", ".bin" or "". */
const char *sk_name_suffix(const struct sk_node *node);

/* The key's escaped name with the suffix, or with "~N" before the suffix
 * for the Nth sibling of that name (exposed for tests and for the content
 * checker's paths). */
char *sk_layout_name(const char *key, size_t key_length, const char *suffix, unsigned ordinal);

/* A name for KEY in DIRECTORY that no child has yet: escaped, or as it is
 * when FIXED (a name of the filesystem's own, such as "root"). Kept in
 * ARENA. */
char *sk_unique_name(struct sk_arena *arena, const struct sk_entry *directory, const char *key,
                     size_t key_length, bool fixed, const char *suffix, struct sk_error *err);

#endif
