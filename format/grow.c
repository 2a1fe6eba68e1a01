#include "grow.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int sk_grow(void *items, size_t *capacity, size_t needed, size_t item_size, size_t first)
{
    if (needed <= *capacity)
        return 0;
    size_t grown = *capacity ? *capacity : (first ? first : 1);
    while (grown < needed) {
        if (grown > SIZE_MAX / 2)
            return -1;
        grown *= 2;
    }
    if (item_size != 0 && grown > SIZE_MAX / item_size)
        return -1;
    void *old;
    memcpy(&old, items, sizeof old);
    void *bigger = realloc(old, grown * item_size);
    if (bigger == NULL)
        return -1;
    memcpy(items, &bigger, sizeof bigger);
    *capacity = grown;
    return 0;
}
