/* Trust rules: skops's default trusted lists, compiled in, and the user's
 * allowlist (from -o trust=, -o trust_file=, --trust, --trust-file).
 * Comparison is exact string equality of "module.name", as in skops. */
#ifndef SKOPSFS_TRUST_H
#define SKOPSFS_TRUST_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

enum sk_default_list {
    SK_LIST_SKLEARN_ESTIMATORS,
    SK_LIST_NUMPY_UFUNCS,
    SK_LIST_SCIPY_UFUNCS,
    SK_LIST_NUMPY_DTYPES,
    SK_LIST_PRIMITIVES,
    SK_LIST_CONTAINERS,
    SK_LIST_SGD_LOSSES,
    SK_LIST_COUNT
};

struct sk_type_list {
    const char *const *names; /* sorted by strcmp */
    size_t count;
};

extern const struct sk_type_list sk_default_lists[SK_LIST_COUNT];

bool sk_default_list_contains(enum sk_default_list list, const char *type_name);

/* The user's allowlist: a set of type names. */
struct sk_allowlist;

struct sk_allowlist *sk_allowlist_new(void);
void sk_allowlist_free(struct sk_allowlist *allowlist);
/* Adds one name; surrounding white space is ignored, empty names too. */
int sk_allowlist_add(struct sk_allowlist *allowlist, const char *type_name, struct sk_error *err);
/* Adds "a.B:c.D" (the mount option's form). */
int sk_allowlist_add_list(struct sk_allowlist *allowlist, const char *names, char separator,
                          struct sk_error *err);
/* Adds a file's names: one a line, '#' starts a comment. */
int sk_allowlist_load_file(struct sk_allowlist *allowlist, const char *path, struct sk_error *err);
bool sk_allowlist_contains(const struct sk_allowlist *allowlist, const char *type_name);
size_t sk_allowlist_count(const struct sk_allowlist *allowlist);

#endif
