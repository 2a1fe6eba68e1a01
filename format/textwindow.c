#include "textwindow.h" /* mremap and memrchr: _GNU_SOURCE, set by the build */

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<sanitizer/asan_interface.h>)
#include <sanitizer/asan_interface.h>
#endif
#endif
#ifndef ASAN_POISON_MEMORY_REGION
#define ASAN_POISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#define ASAN_UNPOISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#endif

/* Pages given back and kept mapped, to be moved ahead. The reader lets go
 * of all but the last few bytes before it asks for more, so the unit
 * before the read head is given back as the next is read: one spare. */
#define SPARE_UNITS 1

/* What a byte given back in tests is overwritten with: no JSON token holds it. */
#define GIVEN_BACK_BYTE 0x01

/* The next step, read by a thread of its own while the text before it is
 * tokenized: the copy from the page cache (and a zip member's CRC-32) of a
 * 24 MB schema took 6 ms of the reader's thread. One read at a time,
 * asked for and taken by the window's owner. */
struct read_ahead {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool running; /* the thread is to be joined: steps are read ahead */
    bool asked;   /* a read was asked for and not taken yet (set by the owner alone) */
    bool done;    /* its result is in GOT and ERR */
    bool stop;
    char *into;
    size_t want;
    size_t offset;
    ssize_t got;
    struct sk_error err;
};

struct sk_text_window {
    struct sk_source *source;
    size_t size;
    size_t step;
    bool byte_release;
    char *reserved;
    size_t reserved_length;
    char *text;
    size_t read;     /* bytes read from the source */
    size_t visible;  /* what the tokenizer may see: up to a newline, or all */
    size_t released; /* bytes before this were given back */
    char *spare[SPARE_UNITS];
    size_t spare_count;
    struct read_ahead ahead;
};

static void *read_ahead_work(void *arg)
{
    struct sk_text_window *w = arg;
    struct read_ahead *a = &w->ahead;
    pthread_mutex_lock(&a->lock);
    for (;;) {
        while (!a->stop && !(a->asked && !a->done))
            pthread_cond_wait(&a->changed, &a->lock);
        if (a->stop)
            break;
        pthread_mutex_unlock(&a->lock);
        struct sk_error err;
        sk_error_clear(&err);
        ssize_t got = sk_source_pread(w->source, a->into, a->want, a->offset, &err);
        pthread_mutex_lock(&a->lock);
        a->got = got;
        a->err = err;
        a->done = true;
        pthread_cond_broadcast(&a->changed);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

/* Starts the thread; where it cannot start, every step is read when asked. */
static void start_reading_ahead(struct sk_text_window *w)
{
    struct read_ahead *a = &w->ahead;
    if (pthread_mutex_init(&a->lock, NULL) != 0)
        return;
    if (pthread_cond_init(&a->changed, NULL) != 0) {
        pthread_mutex_destroy(&a->lock);
        return;
    }
    a->running = pthread_create(&a->thread, NULL, read_ahead_work, w) == 0;
    if (!a->running) {
        pthread_cond_destroy(&a->changed);
        pthread_mutex_destroy(&a->lock);
    }
}

static void stop_reading_ahead(struct sk_text_window *w)
{
    struct read_ahead *a = &w->ahead;
    if (!a->running)
        return;
    pthread_mutex_lock(&a->lock);
    a->stop = true;
    pthread_cond_broadcast(&a->changed);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    pthread_cond_destroy(&a->changed);
    pthread_mutex_destroy(&a->lock);
    a->running = false;
}

int sk_text_window_open(struct sk_source *source, const struct sk_text_window_options *options,
                        struct sk_text_window **out, struct sk_error *err)
{
    *out = NULL;
    struct sk_text_window *w = calloc(1, sizeof *w);
    if (w == NULL)
        return sk_fail_code(err, ENOMEM, "out of memory");
    w->source = source;
    w->size = (size_t)sk_source_size(source);
    w->byte_release = options != NULL && options->byte_release;
    w->step = options != NULL && options->step != 0 ? options->step : SK_TEXT_WINDOW_STEP;
    long page = sysconf(_SC_PAGESIZE);
    if (!w->byte_release && (page <= 0 || w->step % (size_t)page != 0))
        w->step = SK_TEXT_WINDOW_STEP; /* units are moved and sealed as whole pages */
    size_t units = w->size / w->step + 1;
    if (sk_source_size(source) > SIZE_MAX / 2 || units > (SIZE_MAX / 2) / w->step - 1) {
        unsigned long long size = sk_source_size(source);
        free(w);
        return sk_fail_code(err, E2BIG, "text of %llu bytes is too large to read", size);
    }
    /* one unit more, to start the text on a unit's boundary */
    w->reserved_length = (units + 1) * w->step;
    void *reserved = mmap(NULL, w->reserved_length, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (reserved == MAP_FAILED) {
        size_t length = w->reserved_length;
        free(w);
        return sk_fail_code(err, ENOMEM, "out of memory (reserving %zu bytes of addresses)",
                            length);
    }
    w->reserved = reserved;
    uintptr_t aligned = ((uintptr_t)reserved + w->step - 1) / w->step * w->step;
    w->text = (char *)aligned;
    /* a small text stays in small pages: a huge one is zeroed whole on first touch */
    if (!w->byte_release && w->size >= w->step)
        madvise(w->reserved, w->reserved_length, MADV_HUGEPAGE); /* advice: fine if refused */
    if (w->size > w->step && !(options != NULL && options->read_alone))
        start_reading_ahead(w);
    *out = w;
    return 0;
}

const char *sk_text_window_text(const struct sk_text_window *window)
{
    return window->text;
}

bool sk_text_window_gives_back(const struct sk_text_window *window)
{
    return window->byte_release || window->size > window->step;
}

const char *sk_text_window_live_from(const struct sk_text_window *window)
{
    return window->text + window->released;
}

/* Makes a unit given back unreadable, its pages freed. The addresses stay
 * the window's: an unmapped hole could be taken by another mapping (a big
 * malloc) that closing the window would then unmap. */
static void seal(struct sk_text_window *w, char *unit)
{
    mmap(unit, w->step, PROT_NONE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
}

/* Puts a page given back where the next step is read, instead of a fresh
 * one; its old place stays mapped, empty and sealed. */
static void reuse_spare(struct sk_text_window *w)
{
    if (w->byte_release || w->spare_count == 0 || w->read % w->step != 0)
        return;
    char *spare = w->spare[--w->spare_count];
    mremap(spare, w->step, w->step, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
           w->text + w->read); /* where it fails, the step is read into fresh pages */
    seal(w, spare);
}

/* What the step at the read head reads. */
static size_t step_length(const struct sk_text_window *w)
{
    size_t want = w->step - (w->byte_release ? 0 : w->read % w->step);
    return want > w->size - w->read ? w->size - w->read : want;
}

/* Asks the thread for the step at the read head, where one is left. */
static void ask_ahead(struct sk_text_window *w)
{
    struct read_ahead *a = &w->ahead;
    if (!a->running || w->read == w->size)
        return;
    size_t want = step_length(w);
    reuse_spare(w);
    pthread_mutex_lock(&a->lock);
    a->into = w->text + w->read;
    a->want = want;
    a->offset = w->read;
    a->asked = true;
    a->done = false;
    pthread_cond_broadcast(&a->changed);
    pthread_mutex_unlock(&a->lock);
}

/* What the read asked for returned, once it is done; ERR set where it failed. */
static ssize_t take_ahead(struct sk_text_window *w, struct sk_error *err)
{
    struct read_ahead *a = &w->ahead;
    pthread_mutex_lock(&a->lock);
    while (!a->done)
        pthread_cond_wait(&a->changed, &a->lock);
    a->asked = false;
    ssize_t got = a->got;
    if (got < 0)
        *err = a->err;
    pthread_mutex_unlock(&a->lock);
    return got;
}

static int read_step(struct sk_text_window *w, struct sk_error *err)
{
    ssize_t got;
    if (w->ahead.asked) { /* only this thread writes it */
        got = take_ahead(w, err);
    } else {
        size_t want = step_length(w);
        reuse_spare(w);
        got = sk_source_pread(w->source, w->text + w->read, want, w->read, err);
    }
    if (got < 0)
        return -1;
    if (got == 0)
        return sk_fail_code(err, EIO, "short read: %zu of %zu bytes", w->read, w->size);
    w->read += (size_t)got;
    ask_ahead(w);
    return 0;
}

int sk_text_window_more(struct sk_text_window *window, const char **end, bool *whole,
                        struct sk_error *err)
{
    struct sk_text_window *w = window;
    for (;;) {
        if (w->read == w->size) {
            w->visible = w->size;
            break;
        }
        size_t searched_from = w->read > w->visible ? w->read : w->visible;
        if (read_step(w, err) != 0)
            return -1;
        if (w->read == w->size)
            continue;
        const char *newline = memrchr(w->text + searched_from, '\n', w->read - searched_from);
        if (newline != NULL) {
            w->visible = (size_t)(newline + 1 - w->text);
            break;
        }
    }
    *end = w->text + w->visible;
    *whole = w->visible == w->size;
    return 0;
}

static void give_back_unit(struct sk_text_window *w, char *unit)
{
    if (w->spare_count < SPARE_UNITS)
        w->spare[w->spare_count++] = unit;
    else
        seal(w, unit);
}

void sk_text_window_release(struct sk_text_window *window, const char *keep_from)
{
    struct sk_text_window *w = window;
    if (keep_from < w->text + w->released)
        return;
    size_t keep = (size_t)(keep_from - w->text);
    if (keep > w->read)
        keep = w->read;
    if (w->byte_release) {
        memset(w->text + w->released, GIVEN_BACK_BYTE, keep - w->released);
        ASAN_POISON_MEMORY_REGION(w->text + w->released, keep - w->released);
        w->released = keep;
    } else {
        for (; w->released + w->step <= keep; w->released += w->step)
            give_back_unit(w, w->text + w->released);
    }
}

void sk_text_window_close(struct sk_text_window *window)
{
    if (window == NULL)
        return;
    stop_reading_ahead(window); /* a read still running writes into the window */
    ASAN_UNPOISON_MEMORY_REGION(window->reserved, window->reserved_length);
    munmap(window->reserved, window->reserved_length);
    free(window);
}
