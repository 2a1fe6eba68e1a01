/* A map from byte strings to pointers: the __id__ memo of the schema reader
 * and the name index of each mounted directory. Keys are copied. */
#ifndef SKOPSFS_STRMAP_H
#define SKOPSFS_STRMAP_H

#include <stddef.h>

struct sk_strmap;

struct sk_strmap *sk_strmap_new(void);
/* A map that also remembers the keys it found last (512 bytes more), for
 * keys that repeat a lot: type, module and class names. */
struct sk_strmap *sk_strmap_new_remembering(void);
void sk_strmap_free(struct sk_strmap *map);
/* Returns the value stored under KEY, or NULL. Not const: it remembers
 * the keys it found. Lookups may run in several threads at once while no
 * put does. */
void *sk_strmap_get(struct sk_strmap *map, const char *key, size_t key_length);
/* Stores VALUE (not NULL) under KEY, replacing any earlier value. Returns -1
 * when out of memory. */
int sk_strmap_put(struct sk_strmap *map, const char *key, size_t key_length, void *value);
size_t sk_strmap_count(const struct sk_strmap *map);

#endif
