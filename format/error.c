#include "sk_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int sk_fail(struct sk_error *err, const char *fmt, ...)
{
    if (err == NULL || err->message[0] != '\0')
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
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
    if (err != NULL)
        err->message[0] = '\0';
}
