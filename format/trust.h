/* Trust rules: skops's default trusted lists, compiled in, and the user's
 * allowlist (from -o trust=, -o trust_file=, --trust, --trust-file).
 * Comparison is exact string equality of "module.name", as in skops. */
#ifndef SKOPSFS_TRUST_H
#define SKOPSFS_TRUST_H

#include <stdbool.h>
#include <stddef.h>

#include "sk_error.h"

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
/* Frees the names of NAMES[0..COUNT) that ALLOWLIST trusts and moves the
 * others, in order, to the front; returns how many are left. */
size_t sk_allowlist_filter(const struct sk_allowlist *allowlist, char **names, size_t count);

/* How a hint trusts types: mount.skopsfs's option or skopsfs's flags. */
enum sk_trust_hint_form {
    SK_TRUST_HINT_MOUNT, /* -o trust=a.B:c.D */
    SK_TRUST_HINT_CLI,   /* --trust a.B --trust c.D */
};

/* The arguments that trust every one of NAMES, written to work exactly as
 * printed when pasted into a POSIX shell: a word holding a character the
 * shell would take is single-quoted. A name no option can carry is left
 * out and counted in *LEFT_OUT (if not NULL): one with a control
 * character, surrounding white space or over SK_MAX_TYPE_NAME_BYTES, and
 * for the mount option one with ':' or ',' (which split its list) or '\'
 * (which libfuse takes for an escape). Returns a string to free ("" when no
 * name can be carried), or NULL when out of memory. */
char *sk_trust_hint(const char *const *names, size_t count, enum sk_trust_hint_form form,
                    size_t *left_out);

#endif
