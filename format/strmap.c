#include "strmap.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "hash.h"
#include "pages.h"

struct slot {
    char *key; /* NULL: empty */
    size_t key_length;
    uint64_t hash;
    void *value;
};

/* Recently found keys, by a cheap hash of a few bytes: names repeat a lot
 * (a forest's hundred thousand nodes have a few dozen module and class
 * names), and a hit here costs a compare instead of SipHash. A file can
 * make every lookup miss it, which costs only the keyed path below. */
enum { RECENT = 64 };

#define KEYS_FIRST_BLOCK 512u

struct sk_strmap {
    struct slot *slots;
    size_t capacity; /* a power of two */
    size_t count;
    /* The keys' copies, side by side: a schema's memo copies tens of
     * thousands of ids, and a malloc each cost more than the copy. Made
     * with the first key; its blocks double from KEYS_FIRST_BLOCK, as a
     * mount makes a map for every directory of more than a few entries. */
    struct sk_arena *keys;
    /* NULL unless asked for; slot index + 1, 0 for none; atomic so that
     * lookups may run in several threads at once */
    _Atomic size_t *recent;
};

static size_t recent_index(const char *key, size_t length)
{
    size_t h = length;
    if (length > 0)
        h = h * 31 + (unsigned char)key[0] * 7 + (unsigned char)key[length - 1] * 131 +
            (unsigned char)key[length / 2];
    return h & (RECENT - 1);
}

static struct slot *recent_slot(const struct sk_strmap *map, const char *key, size_t length,
                                size_t *index)
{
    *index = recent_index(key, length);
    if (map->recent == NULL)
        return NULL;
    size_t i = atomic_load_explicit(&map->recent[*index], memory_order_relaxed);
    if (i == 0)
        return NULL;
    struct slot *s = &map->slots[i - 1];
    return s->key_length == length && memcmp(s->key, key, length) == 0 ? s : NULL;
}

/* Keyed (hash.h): a file cannot pick keys that share a slot. */
static uint64_t hash_bytes(const char *key, size_t length)
{
    return sk_hash_bytes(key, length);
}

struct sk_strmap *sk_strmap_new(void)
{
    return calloc(1, sizeof(struct sk_strmap));
}

struct sk_strmap *sk_strmap_new_remembering(void)
{
    struct sk_strmap *map = sk_strmap_new();
    if (map != NULL && (map->recent = calloc(RECENT, sizeof *map->recent)) == NULL) {
        sk_strmap_free(map);
        return NULL;
    }
    return map;
}

void sk_strmap_free(struct sk_strmap *map)
{
    if (map == NULL)
        return;
    sk_arena_free(map->keys);
    sk_pages_free(map->slots, map->capacity * sizeof *map->slots);
    free((void *)map->recent);
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

void *sk_strmap_get(struct sk_strmap *map, const char *key, size_t key_length)
{
    if (map == NULL || map->count == 0)
        return NULL;
    size_t recent;
    struct slot *s = recent_slot(map, key, key_length, &recent);
    if (s != NULL)
        return s->value;
    s = find_slot(map->slots, map->capacity, key, key_length, hash_bytes(key, key_length));
    if (s->key == NULL)
        return NULL;
    if (map->recent != NULL)
        atomic_store_explicit(&map->recent[recent], (size_t)(s - map->slots) + 1,
                              memory_order_relaxed);
    return s->value;
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
    for (size_t i = 0; map->recent != NULL && i < RECENT; i++) /* the slots moved */
        atomic_store_explicit(&map->recent[i], 0, memory_order_relaxed);
    return 0;
}

int sk_strmap_put(struct sk_strmap *map, const char *key, size_t key_length, void *value)
{
    if ((map->count + 1) * 4 > map->capacity * 3 && grow(map) != 0)
        return -1;
    uint64_t hash = hash_bytes(key, key_length);
    struct slot *s = find_slot(map->slots, map->capacity, key, key_length, hash);
    if (s->key == NULL) {
        if (map->keys == NULL && (map->keys = sk_arena_new_starting(KEYS_FIRST_BLOCK)) == NULL)
            return -1;
        s->key = sk_arena_copy(map->keys, key, key_length, 1);
        if (s->key == NULL)
            return -1;
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
