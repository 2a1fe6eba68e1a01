/* A region for many small objects that all live exactly as long as their
 * owner (a layout's entries, names and texts): carved from blocks of
 * growing size, freed together. Saves a malloc and its header per object
 * and keeps an owner's objects side by side in memory. Not thread-safe
 * while it is being filled; what it holds may be read from any thread. */
#ifndef SKOPSFS_ARENA_H
#define SKOPSFS_ARENA_H

#include <stddef.h>

struct sk_arena;

struct sk_arena *sk_arena_new(void);
/* One whose first block holds FIRST_BLOCK bytes (the default: 16 KiB), for
 * an owner that may stay small: blocks double from there. */
struct sk_arena *sk_arena_new_starting(size_t first_block);
/* Frees every object carved from ARENA, and ARENA. */
void sk_arena_free(struct sk_arena *arena);
/* SIZE zeroed bytes aligned for any object, or NULL when out of memory. */
void *sk_arena_alloc(struct sk_arena *arena, size_t size);
/* A copy of LENGTH bytes at BYTES followed by EXTRA zero bytes (at least
 * one, a NUL), or NULL when out of memory. */
char *sk_arena_copy(struct sk_arena *arena, const char *bytes, size_t length, size_t extra);

#endif
