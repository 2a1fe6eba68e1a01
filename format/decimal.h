/* An unsigned number in decimal, without printf: list indices and entry
 * ordinals are formatted once per node, where snprintf cost more than the
 * rest of the work on the node. */
#ifndef SKOPSFS_DECIMAL_H
#define SKOPSFS_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

#define SK_DECIMAL_MAX_DIGITS 20

/* VALUE's digits at OUT (room for SK_DECIMAL_MAX_DIGITS, no NUL added);
 * returns their count. */
static inline size_t sk_decimal(uint64_t value, char *out)
{
    char reversed[SK_DECIMAL_MAX_DIGITS];
    size_t count = 0;
    do {
        reversed[count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    for (size_t i = 0; i < count; i++)
        out[i] = reversed[count - 1 - i];
    return count;
}

#endif
