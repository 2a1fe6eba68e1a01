/* Errors as values: every fallible call in format/ fills a struct sk_error
 * with one line a user can act on, and returns a negative number. The code
 * says what kind of failure it was, for a caller that must answer with an
 * errno (the daemon) without reading the message. */
#ifndef SKOPSFS_ERROR_H
#define SKOPSFS_ERROR_H

#include <stddef.h>

#define SK_ERROR_MESSAGE_MAX 512

struct sk_error {
    char message[SK_ERROR_MESSAGE_MAX];
    /* An errno value (ENOMEM, EACCES, E2BIG, ELOOP, EIO, ...); 0 when the
     * failing call did not say, which is read as EIO. Start with
     * `struct sk_error err = {0};`. */
    int code;
};

/* Sets the message (printf-style) unless one is set already: the first,
 * most specific cause wins. Returns -1 so callers can `return sk_fail(...)`. */
int sk_fail(struct sk_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* As sk_fail, and sets the code with the message (only if no message was
 * set before: the code belongs to the first cause). */
int sk_fail_code(struct sk_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The code to answer with: err->code, or EIO when none was set. */
int sk_error_errno(const struct sk_error *err);

/* Prefixes an existing message with context, e.g. the archive's name. */
void sk_error_prefix(struct sk_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void sk_error_clear(struct sk_error *err);

#endif
