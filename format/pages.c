#include "pages.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

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

#define HUGE_PAGE ((size_t)2 << 20)

static size_t mapped_size(size_t size)
{
    return (size + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
}

void *sk_pages_alloc(size_t size)
{
    if (size == 0 || size > SIZE_MAX - HUGE_PAGE)
        return NULL;
    if (!SK_PAGES_MAPPED)
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
    if (!SK_PAGES_MAPPED)
        free(block);
    else
        munmap(block, mapped_size(size));
}
