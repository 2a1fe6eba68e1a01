#include "arena.h"

#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Blocks start small (a small model's layout fits one) and double up to
 * the largest, so that a big layout takes few blocks and wastes little. */
#define FIRST_BLOCK_BYTES ((size_t)16 << 10)
#define LARGEST_BLOCK_BYTES ((size_t)256 << 10)
#define ALIGNMENT alignof(max_align_t)

struct block {
    struct block *next;
    size_t size; /* of data */
    size_t used;
    alignas(max_align_t) unsigned char data[];
};

struct sk_arena {
    struct block *blocks; /* the one being filled first */
    size_t next_size;
};

struct sk_arena *sk_arena_new(void)
{
    return sk_arena_new_starting(FIRST_BLOCK_BYTES);
}

struct sk_arena *sk_arena_new_starting(size_t first_block)
{
    struct sk_arena *arena = calloc(1, sizeof *arena);
    if (arena != NULL)
        arena->next_size = first_block > 0 ? first_block : FIRST_BLOCK_BYTES;
    return arena;
}

void sk_arena_free(struct sk_arena *arena)
{
    if (arena == NULL)
        return;
    for (struct block *b = arena->blocks, *next; b != NULL; b = next) {
        next = b->next;
        free(b);
    }
    free(arena);
}

/* A new block with room for SIZE bytes: the next of the doubling sizes, or
 * one of its own for an object larger than a quarter of that, kept behind
 * the block being filled so that the rest of that one is still used. */
static struct block *add_block(struct sk_arena *arena, size_t size)
{
    bool own = size > arena->next_size / 4;
    size_t data_size = own ? size : arena->next_size;
    if (data_size > SIZE_MAX - sizeof(struct block))
        return NULL;
    /* not zeroed here: names and texts are written whole, objects zeroed */
    struct block *b = malloc(sizeof *b + data_size);
    if (b == NULL)
        return NULL;
    b->size = data_size;
    b->used = 0;
    b->next = NULL;
    if (own && arena->blocks != NULL) {
        b->next = arena->blocks->next;
        arena->blocks->next = b;
    } else {
        b->next = arena->blocks;
        arena->blocks = b;
        if (arena->next_size < LARGEST_BLOCK_BYTES)
            arena->next_size *= 2;
    }
    return b;
}

/* SIZE bytes at a multiple of ALIGNMENT (a power of two, at most
 * max_align_t's) in the block being filled, or in a new one. */
static void *carve(struct sk_arena *arena, size_t size, size_t alignment)
{
    struct block *b = arena->blocks;
    size_t start = b ? (b->used + alignment - 1) & ~(alignment - 1) : 0;
    if (b == NULL || start > b->size || b->size - start < size) {
        b = add_block(arena, size);
        if (b == NULL)
            return NULL;
        start = b->used; /* 0: a new block's data is aligned for anything */
    }
    b->used = start + size;
    return b->data + start;
}

void *sk_arena_alloc(struct sk_arena *arena, size_t size)
{
    void *object = carve(arena, size ? size : 1, ALIGNMENT);
    if (object != NULL)
        memset(object, 0, size);
    return object;
}

char *sk_arena_copy(struct sk_arena *arena, const char *bytes, size_t length, size_t extra)
{
    if (extra == 0)
        extra = 1;
    if (length > SIZE_MAX - extra)
        return NULL;
    char *copy = carve(arena, length + extra, 1); /* text needs no alignment */
    if (copy != NULL) {
        if (length > 0)
            memcpy(copy, bytes, length);
        memset(copy + length, 0, extra);
    }
    return copy;
}
