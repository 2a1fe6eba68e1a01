/* Errors as values: every fallible call in format/ fills a struct sk_error
 * with one line a user can act on, and returns a negative number. */
#ifndef SKOPSFS_ERROR_H
#define SKOPSFS_ERROR_H

#include <stddef.h>

#define SK_ERROR_MESSAGE_MAX 512

struct sk_error {
    char message[SK_ERROR_MESSAGE_MAX];
};

/* Sets the message (printf-style) unless one is set already: the first,
 * most specific cause wins. Returns -1 so callers can `return sk_fail(...)`. */
int sk_fail(struct sk_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes an existing message with context, e.g. the archive's name. */
void sk_error_prefix(struct sk_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void sk_error_clear(struct sk_error *err);

#endif
