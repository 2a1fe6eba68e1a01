/* Independent tasks run on a few threads, with the outcome of running them
 * one after another: the content checks judge every tree of a forest this
 * way. Each task gets its own sk_error; where tasks fail, the caller sees
 * the error of the one with the lowest index, as a sequential run that
 * stops at its first failure would. */
#ifndef SKOPSFS_PARALLEL_H
#define SKOPSFS_PARALLEL_H

#include <stddef.h>

#include "sk_error.h"

/* Returns 0 when it succeeds, or -1 with ERR set. */
typedef int (*sk_parallel_task)(void *context, size_t index, struct sk_error *err);

/* Runs TASK(CONTEXT, i, ...) for every i < COUNT on at most THREADS threads,
 * the calling one among them (1: all on the calling thread, in order). A
 * task must touch nothing another task writes. Returns 0 when every task
 * returned 0; else -1 with *ERR the lowest failing index's error (tasks past
 * it may or may not have run). Where a thread cannot be started, the
 * others do its share. */
int sk_parallel_run(size_t count, size_t threads, sk_parallel_task task, void *context,
                    struct sk_error *err);

#endif
