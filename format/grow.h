/* One growth rule for the arrays that grow by appending: capacity doubles,
 * so N appends cost O(N) copies, and every size is checked for overflow
 * before it is computed. */
#ifndef SKOPSFS_GROW_H
#define SKOPSFS_GROW_H

#include <stddef.h>

/* Makes *ITEMS (an array of *CAPACITY items of ITEM_SIZE bytes, or NULL)
 * hold at least NEEDED items: doubles the capacity (from FIRST when 0)
 * until it does. On failure (out of memory, or a size that would overflow)
 * returns -1 and leaves *ITEMS and *CAPACITY as they were. */
int sk_grow(void *items, size_t *capacity, size_t needed, size_t item_size, size_t first);

#endif
