#include "pages.h"

#include <stdbool.h>
#include <stdint.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define HUGE_PAGE ((size_t)2 << 20)
/* Smaller blocks come from calloc: a mapping of their own would cost more
 * than the faults it saves. */
#define MAPPED_MIN_BYTES ((size_t)1 << 20)
/* Blocks above this come from mmap, not the heap. Fixing it (glibc adapts
 * it otherwise) keeps the probe below on the heap. */
#define HEAP_MMAP_THRESHOLD (1 << 20)
/* More than a fresh heap's free top (132 KiB), less than the threshold. */
#define HEAP_PROBE_BYTES (512 << 10)
/* mallopt takes an int, and the trim threshold is twice the reserve. */
#define HEAP_RESERVE_MAX ((size_t)1 << 29)
/* Linux 6.1's synchronous collapse into a huge page; older kernels refuse
 * it, and nothing else changes. */
#ifdef MADV_COLLAPSE
#define MADV_COLLAPSE_VALUE MADV_COLLAPSE
#else
#define MADV_COLLAPSE_VALUE 25
#endif

static size_t mapped_size(size_t size)
{
    return (size + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
}

void *sk_pages_alloc(size_t size)
{
    if (size == 0 || size > SIZE_MAX - HUGE_PAGE)
        return NULL;
    if (!SK_PAGES_MAPPED || size < MAPPED_MIN_BYTES)
        return calloc(1, size);
    void *block =
        mmap(NULL, mapped_size(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (block == MAP_FAILED)
        return NULL;
    madvise(block, mapped_size(size), MADV_HUGEPAGE); /* advice: fine if refused */
    return block;
}

void sk_pages_free(void *block, size_t size)
{
    if (block == NULL)
        return;
    if (!SK_PAGES_MAPPED || size < MAPPED_MIN_BYTES)
        free(block);
    else
        munmap(block, mapped_size(size));
}

/* The heap's start up to the next 2 MiB boundary can only have 4 KiB
 * pages, and the first allocations (an archive's directory: a megabyte)
 * would fault there page by page. Moving the break past it leaves it
 * untouched: address space only. Returns the break. */
static char *skip_to_huge_page_boundary(void)
{
    char *start = sbrk(0);
    if (start == (char *)-1)
        return start;
    uintptr_t boundary = ((uintptr_t)start + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    if (boundary > (uintptr_t)start && sbrk((intptr_t)(boundary - (uintptr_t)start)) != (void *)-1)
        return (char *)boundary;
    return start;
}

void sk_pages_for_heap(size_t reserve)
{
    if (!SK_PAGES_MAPPED || reserve > HEAP_RESERVE_MAX)
        return; /* under AddressSanitizer its allocator owns the heap */
    if (mallopt(M_TOP_PAD, (int)reserve) == 0 || mallopt(M_TRIM_THRESHOLD, (int)reserve * 2) == 0 ||
        mallopt(M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD) == 0)
        return;
    char *start = skip_to_huge_page_boundary();
    /* volatile, or the compiler drops a malloc whose block goes unused */
    char *volatile probe = malloc(HEAP_PROBE_BYTES);
    if (probe == NULL)
        return;
    probe[0] = 1;
    char *end = sbrk(0);
    free(probe);
    if (start == (char *)-1 || end <= start)
        return;
    /* only whole 2 MiB pages inside the new part of the heap can be huge */
    uintptr_t first = ((uintptr_t)start + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    if ((uintptr_t)end > first)
        madvise((void *)first, (uintptr_t)end - first, MADV_HUGEPAGE);
    /* The probe's own writes came before the advice and put 4 KiB pages in
     * the first 2 MiB, where the first allocations go. */
    if ((uintptr_t)end >= first + HUGE_PAGE)
        madvise((void *)first, HUGE_PAGE, MADV_COLLAPSE_VALUE);
}
