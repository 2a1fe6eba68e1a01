#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "pages.h"

struct slot {
    char *key; /* NULL: empty */
    size_t key_length;
    uint64_t hash;
    void *value;
};

struct sk_strmap {
    struct slot *slots;
    size_t capacity; /* a power of two */
    size_t count;
};

/* Keyed (hash.h): a file cannot pick keys that share a slot. */
static uint64_t hash_bytes(const char *key, size_t length)
{
    return sk_hash_bytes(key, length);
}

struct sk_strmap *sk_strmap_new(void)
{
    return calloc(1, sizeof(struct sk_strmap));
}

void sk_strmap_free(struct sk_strmap *map)
{
    if (map == NULL)
        return;
    for (size_t i = 0; i < map->capacity; i++)
        free(map->slots[i].key);
    sk_pages_free(map->slots, map->capacity * sizeof *map->slots);
    free(map);
}

static struct slot *find_slot(struct slot *slots, size_t capacity, const char *key,
                              size_t key_length, uint64_t hash)
{
    size_t i = (size_t)hash & (capacity - 1);
    for (;;) {
        struct slot *s = &slots[i];
        if (s->key == NULL || (s->hash == hash && s->key_length == key_length &&
                               memcmp(s->key, key, key_length) == 0))
            return s;
        i = (i + 1) & (capacity - 1);
    }
}

void *sk_strmap_get(const struct sk_strmap *map, const char *key, size_t key_length)
{
    if (map == NULL || map->count == 0)
        return NULL;
    struct slot *s =
        find_slot(map->slots, map->capacity, key, key_length, hash_bytes(key, key_length));
    return s->key ? s->value : NULL;
}

static int grow(struct sk_strmap *map)
{
    size_t capacity = map->capacity ? map->capacity * 2 : 16;
    /* a big schema's memo takes megabytes: huge pages */
    struct slot *slots = sk_pages_alloc(capacity * sizeof *slots);
    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < map->capacity; i++) {
        struct slot *old = &map->slots[i];
        if (old->key != NULL)
            *find_slot(slots, capacity, old->key, old->key_length, old->hash) = *old;
    }
    sk_pages_free(map->slots, map->capacity * sizeof *map->slots);
    map->slots = slots;
    map->capacity = capacity;
    return 0;
}

int sk_strmap_put(struct sk_strmap *map, const char *key, size_t key_length, void *value)
{
    if ((map->count + 1) * 4 > map->capacity * 3 && grow(map) != 0)
        return -1;
    uint64_t hash = hash_bytes(key, key_length);
    struct slot *s = find_slot(map->slots, map->capacity, key, key_length, hash);
    if (s->key == NULL) {
        s->key = malloc(key_length + 1);
        if (s->key == NULL)
            return -1;
        memcpy(s->key, key, key_length);
        s->key[key_length] = '\0';
        s->key_length = key_length;
        s->hash = hash;
        map->count++;
    }
    s->value = value;
    return 0;
}

size_t sk_strmap_count(const struct sk_strmap *map)
{
    return map ? map->count : 0;
}
