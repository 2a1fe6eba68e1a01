#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_MS 1000000ull

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

void progress_start(struct progress *progress, const char *label, uint64_t total)
{
    *progress = (struct progress){.enabled = isatty(STDERR_FILENO) == 1,
                                  .label = label,
                                  .total = total,
                                  .interval_ns = PROGRESS_INTERVAL_MS * NS_PER_MS};
    const char *override = getenv("SKOPSFS_PROGRESS_MS");
    if (override != NULL)
        progress->interval_ns = strtoull(override, NULL, 10) * NS_PER_MS;
    progress->last_ns = now_ns(); /* quick work never shows a line */
}

void progress_update(struct progress *progress, uint64_t done)
{
    if (!progress->enabled)
        return;
    uint64_t now = now_ns();
    if (now - progress->last_ns < progress->interval_ns)
        return;
    progress->last_ns = now;
    progress->shown = true;
    unsigned percent = progress->total ? (unsigned)(done * 100 / progress->total) : 0;
    fprintf(stderr, "\r%s: %u%% (%llu of %llu MiB)\033[K", progress->label,
            percent > 100 ? 100 : percent, (unsigned long long)(done >> 20),
            (unsigned long long)(progress->total >> 20));
    fflush(stderr);
}

void progress_end(struct progress *progress)
{
    if (progress->shown)
        fputs("\r\033[K", stderr);
    progress->shown = false;
}
