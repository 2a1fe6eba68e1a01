/* Zeroed blocks of memory: those of 1 MiB or more in 2 MiB pages where the
 * kernel allows, smaller ones from calloc.
 *
 * The first touch of each page costs a fault, and on the VMs this project
 * is measured on a fault costs about 10 us: reading a 7 MB schema.json
 * into 4 KiB pages took 22 ms, into 2 MiB pages 2 ms. Under
 * AddressSanitizer blocks come from calloc, so that it sees their bounds. */
#ifndef SKOPSFS_PAGES_H
#define SKOPSFS_PAGES_H

#include <stddef.h>

/* 1 unless AddressSanitizer is on. Then blocks come from calloc, and arenas
 * built on them should hand out single allocations too, so that it sees
 * every allocation's bounds. */
#if defined(__SANITIZE_ADDRESS__)
#define SK_PAGES_MAPPED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SK_PAGES_MAPPED 0
#endif
#endif
#ifndef SK_PAGES_MAPPED
#define SK_PAGES_MAPPED 1
#endif

/* SIZE zeroed bytes, or NULL (also for SIZE 0). */
void *sk_pages_alloc(size_t size);
/* Frees BLOCK, which sk_pages_alloc returned for SIZE bytes. */
void sk_pages_free(void *block, size_t size);

/* For programs, once at start: grows the malloc heap by RESERVE bytes now
 * and advises them into 2 MiB pages, so that the many small allocations of
 * a schema's nodes take a fault per 2 MiB, not per 4 KiB (measured here:
 * 200,000 allocations of 64 bytes, 54 ms -> 7 ms). The heap then starts at
 * a 2 MiB boundary (the part below it is left untouched) and its first
 * 2 MiB are collapsed into a huge page, so that the first allocations (an
 * archive's directory) get one too. It sets malloc's top pad and
 * thresholds for the whole process and moves the program break itself
 * (glibc's malloc takes a break moved by others), so call it once, before
 * the allocations it is for: skopsfs first thing, mount.skopsfs in the
 * child it forks (pages made before a fork are copied when the child
 * writes them while the parent lives).
 * Best effort: nothing changes where the heap cannot grow or the kernel
 * has no huge pages. */
void sk_pages_for_heap(size_t reserve);

#endif
