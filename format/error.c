#include "sk_error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail_with(struct sk_error *err, int code, const char *fmt, va_list ap)
{
    if (err == NULL || err->message[0] != '\0')
        return -1;
    err->code = code;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    return -1;
}

int sk_fail(struct sk_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_with(err, 0, fmt, ap);
    va_end(ap);
    return -1;
}

int sk_fail_code(struct sk_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_with(err, code, fmt, ap);
    va_end(ap);
    return -1;
}

int sk_error_errno(const struct sk_error *err)
{
    return err == NULL || err->code == 0 ? EIO : err->code;
}

void sk_error_prefix(struct sk_error *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    char prefix[SK_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char joined[2 * SK_ERROR_MESSAGE_MAX];
    snprintf(joined, sizeof joined, "%s%s", prefix, err->message);
    snprintf(err->message, sizeof err->message, "%.*s", SK_ERROR_MESSAGE_MAX - 1, joined);
}

void sk_error_clear(struct sk_error *err)
{
    if (err != NULL) {
        err->code = 0;
        err->message[0] = '\0';
    }
}
