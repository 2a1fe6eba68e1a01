/* Progress of long work on standard error, only when it is a terminal:
 * one line, redrawn at most every PROGRESS_INTERVAL_MS, erased at the end,
 * so output piped or captured in a file never holds it. */
#ifndef SKOPSFS_PROGRESS_H
#define SKOPSFS_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

#define PROGRESS_INTERVAL_MS 100

struct progress {
    bool enabled;
    bool shown;
    const char *label;
    uint64_t total;
    uint64_t interval_ns;
    uint64_t last_ns;
};

/* LABEL: e.g. "diff: comparing arrays"; TOTAL: the units of work (bytes).
 * The environment's SKOPSFS_PROGRESS_MS overrides the interval (for tests). */
void progress_start(struct progress *progress, const char *label, uint64_t total);
void progress_update(struct progress *progress, uint64_t done);
void progress_end(struct progress *progress);

#endif
