/* Content sources: where a shown file's bytes come from, apart from any one
 * container format. A source has a size and serves bytes by offset; it may
 * also say where its bytes lie in a file descriptor (so a server can splice
 * them instead of copying) and may check them (a CRC-32, a length). A zip
 * member is one kind of source; bytes held in memory another; a header in
 * memory followed by a range of a file (an array inside a pickle) a third.
 *
 * A store is a set of named sources: the members a schema names. A .skops
 * archive is one store; a pickle or joblib file read without running it is
 * another. The schema reader, the content checks, the layout and the daemon
 * see stores and sources only, never a zip index.
 *
 * Thread use: a store may be shared by any number of threads; a source is
 * used by one thread at a time (open one per thread or per open file). */
#ifndef SKOPSFS_SOURCE_H
#define SKOPSFS_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "sk_error.h"

struct sk_source;

struct sk_source_ops {
    /* Reads up to LENGTH bytes at OFFSET; returns the count (0 only at or
     * past the end) or -1 with ERR set. Never a short count before the end. */
    ssize_t (*pread)(struct sk_source *source, void *buffer, size_t length, uint64_t offset,
                     struct sk_error *err);
    /* Optional (NULL: never). Where bytes [OFFSET, size) of the source lie
     * contiguously in a file: its descriptor and the file offset of byte
     * OFFSET. False where they do not (inflated, synthesized, known bad). */
    bool (*extent)(const struct sk_source *source, uint64_t offset, int *fd, uint64_t *file_offset);
    /* Optional (NULL: nothing to check). Reads everything and checks it;
     * after this source returned every byte in order from the start, it
     * checks the bytes it returned, without reading them again. */
    int (*verify)(struct sk_source *source, struct sk_error *err);
    void (*close)(struct sk_source *source);
    /* Optional (NULL: never). All the source's bytes where it holds them in
     * memory, checked as pread would have checked them, until it is closed;
     * NULL where it does not. */
    const void *(*held)(const struct sk_source *source);
};

/* Every implementation embeds this first. */
struct sk_source {
    const struct sk_source_ops *ops;
    uint64_t size;
};

static inline ssize_t sk_source_pread(struct sk_source *source, void *buffer, size_t length,
                                      uint64_t offset, struct sk_error *err)
{
    return source->ops->pread(source, buffer, length, offset, err);
}

static inline uint64_t sk_source_size(const struct sk_source *source)
{
    return source->size;
}

static inline bool sk_source_extent(const struct sk_source *source, uint64_t offset, int *fd,
                                    uint64_t *file_offset)
{
    return source->ops->extent != NULL && source->ops->extent(source, offset, fd, file_offset);
}

/* The source's bytes in memory, to read in place, or NULL (then pread). */
static inline const void *sk_source_held(const struct sk_source *source)
{
    return source->ops->held != NULL ? source->ops->held(source) : NULL;
}

void sk_source_close(struct sk_source *source);

/* Reads exactly LENGTH bytes of FD at OFFSET, retrying interrupted and short
 * reads; the file ending first is an error (EIO), never a short count. For
 * sources and stores that read a file by offset. */
int sk_pread_exact(int fd, void *buffer, size_t length, uint64_t offset, struct sk_error *err);

/* Bytes in memory. The source copies them (COPY) or borrows them for its
 * lifetime. */
int sk_source_memory(const void *bytes, size_t length, bool copy, struct sk_source **out,
                     struct sk_error *err);

/* HEADER (copied) followed by LENGTH bytes of FD at OFFSET: an array stored
 * raw inside another file, shown with a synthesized .npy header. FD is
 * borrowed and must outlive the source. */
int sk_source_file_range(const void *header, size_t header_length, int fd, uint64_t offset,
                         uint64_t length, struct sk_source **out, struct sk_error *err);

/* What a store says of one member without reading it. */
struct sk_member_info {
    const char *name;
    uint64_t size;      /* as shown, uncompressed */
    uint64_t comp_size; /* as stored; equal to size where nothing is compressed */
    bool compressed;
};

struct sk_store;

struct sk_store_ops {
    uint64_t (*member_count)(const struct sk_store *store);
    /* 0 and *INDEX for the member named exactly NAME, or -1. */
    int (*find)(const struct sk_store *store, const char *name, uint64_t *index);
    void (*member_info)(const struct sk_store *store, uint64_t index, struct sk_member_info *info);
    /* Whether the member can be served at all, from what is known without
     * reading it (method, sizes, limits). Optional (NULL: always). */
    int (*check_member)(const struct sk_store *store, uint64_t index, struct sk_error *err);
    /* A new source for the member. VERIFIED: the bytes handed out are checked
     * (the zip store verifies a small member whole on its first open);
     * false only to peek at a few header bytes while building a layout. */
    int (*open)(struct sk_store *store, uint64_t index, bool verified, struct sk_source **out,
                struct sk_error *err);
    /* Whether an open (unverified) would succeed now, found as cheaply as
     * the store can: a zip's local header read if not known yet, no source
     * made. Optional (NULL: an open, closed at once). */
    int (*check_open)(struct sk_store *store, uint64_t index, struct sk_error *err);
    /* Reads and checks the whole member; the verdict is kept. Optional. */
    int (*verify)(struct sk_store *store, uint64_t index, struct sk_error *err);
    /* Does ahead what opening each member needs (a zip's local headers) and
     * keeps it, so that the opens that follow read nothing more. Errors are
     * left for those opens to report, in their order. Safe beside any other
     * call on the store. Optional. */
    void (*prepare_opens)(struct sk_store *store);
    /* Fails if the file behind the store changed since it was opened. */
    int (*check_unchanged)(const struct sk_store *store, struct sk_error *err);
    struct timespec (*mtime)(const struct sk_store *store);
    uint64_t (*file_size)(const struct sk_store *store);
    void (*close)(struct sk_store *store);
};

/* Every implementation embeds this first. */
struct sk_store {
    const struct sk_store_ops *ops;
};

uint64_t sk_store_member_count(const struct sk_store *store);
int sk_store_find(const struct sk_store *store, const char *name, uint64_t *index);
void sk_store_member_info(const struct sk_store *store, uint64_t index,
                          struct sk_member_info *info);
int sk_store_check_member(const struct sk_store *store, uint64_t index, struct sk_error *err);
int sk_store_open(struct sk_store *store, uint64_t index, bool verified, struct sk_source **out,
                  struct sk_error *err);
int sk_store_verify(struct sk_store *store, uint64_t index, struct sk_error *err);
void sk_store_prepare_opens(struct sk_store *store);
/* 0 where sk_store_open (unverified) would succeed now, or -1 with its
 * error: for a mount that fails at once on a member it could not serve. */
int sk_store_check_open(struct sk_store *store, uint64_t index, struct sk_error *err);
int sk_store_check_unchanged(const struct sk_store *store, struct sk_error *err);
struct timespec sk_store_mtime(const struct sk_store *store);
uint64_t sk_store_file_size(const struct sk_store *store);
void sk_store_close(struct sk_store *store);

/* Reads a whole member of at most MAX_BYTES into a new NUL-terminated
 * buffer (free with sk_store_free_member): schema.json, a sparse matrix's
 * .npz. The bytes in the buffer are the ones checked: one pass. */
int sk_store_read_member(struct sk_store *store, uint64_t index, size_t max_bytes, char **data,
                         size_t *length, struct sk_error *err);
void sk_store_free_member(char *data, size_t length);

#endif
