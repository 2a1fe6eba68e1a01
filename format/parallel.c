#include "parallel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct pool {
    size_t count;
    sk_parallel_task task;
    void *context;
    atomic_size_t next;   /* the next index to hand out */
    atomic_size_t failed; /* the lowest failing index so far, or COUNT */
};

struct worker {
    struct pool *pool;
    pthread_t thread;
    size_t failed; /* the index it failed at, or the pool's COUNT */
    struct sk_error err;
};

static void lower_failed(struct pool *pool, size_t index)
{
    size_t seen = atomic_load(&pool->failed);
    while (index < seen && !atomic_compare_exchange_weak(&pool->failed, &seen, index))
        ;
}

/* Takes indices in increasing order until they run out or pass a failure:
 * every index below the lowest failure is taken, so it runs. */
static void *work(void *arg)
{
    struct worker *worker = arg;
    struct pool *pool = worker->pool;
    worker->failed = pool->count;
    for (;;) {
        size_t index = atomic_fetch_add(&pool->next, 1);
        if (index >= pool->count || index > atomic_load(&pool->failed))
            return NULL;
        struct sk_error err = {0};
        if (pool->task(pool->context, index, &err) != 0) {
            worker->err = err;
            worker->failed = index;
            lower_failed(pool, index);
            return NULL;
        }
    }
}

static int run_in_order(size_t count, sk_parallel_task task, void *context, struct sk_error *err)
{
    for (size_t i = 0; i < count; i++)
        if (task(context, i, err) != 0)
            return -1;
    return 0;
}

int sk_parallel_run(size_t count, size_t threads, sk_parallel_task task, void *context,
                    struct sk_error *err)
{
    if (threads > count)
        threads = count;
    struct worker *workers = threads > 1 ? calloc(threads, sizeof *workers) : NULL;
    if (workers == NULL)
        return run_in_order(count, task, context, err);
    struct pool pool = {.count = count, .task = task, .context = context};
    atomic_init(&pool.next, 0);
    atomic_init(&pool.failed, count);
    size_t started = 1; /* workers[0] is the calling thread */
    for (; started < threads; started++) {
        workers[started].pool = &pool;
        if (pthread_create(&workers[started].thread, NULL, work, &workers[started]) != 0)
            break;
    }
    workers[0].pool = &pool;
    work(&workers[0]);
    const struct worker *first = &workers[0];
    for (size_t i = 1; i < started; i++) {
        pthread_join(workers[i].thread, NULL);
        if (workers[i].failed < first->failed)
            first = &workers[i];
    }
    int rc = first->failed < count ? -1 : 0;
    if (rc != 0)
        sk_fail_code(err, first->err.code, "%s", first->err.message);
    free(workers);
    return rc;
}
