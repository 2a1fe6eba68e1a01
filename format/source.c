/* The generic side of source.h: the wrappers every store and source share,
 * reading a whole member, and the two sources that belong to no container:
 * bytes in memory, and a header in memory followed by a range of a file. */
#include "source.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pages.h"

void sk_source_close(struct sk_source *source)
{
    if (source != NULL)
        source->ops->close(source);
}

int sk_pread_exact(int fd, void *buffer, size_t length, uint64_t offset, struct sk_error *err)
{
    size_t done = 0;
    while (done < length) {
        ssize_t got = pread(fd, (char *)buffer + done, length - done, (off_t)(offset + done));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return sk_fail_code(err, EIO, "%s", strerror(errno));
        if (got == 0)
            return sk_fail_code(err, EIO, "the file ends early (cut while being read?)");
        done += (size_t)got;
    }
    return 0;
}

/* The part of [OFFSET, OFFSET+LENGTH) inside a source of SIZE bytes. */
static size_t clamp_length(uint64_t size, size_t length, uint64_t offset)
{
    if (offset >= size)
        return 0;
    return length > size - offset ? (size_t)(size - offset) : length;
}

struct memory_source {
    struct sk_source base;
    const unsigned char *bytes;
    bool owned;
};

static ssize_t memory_pread(struct sk_source *source, void *buffer, size_t length, uint64_t offset,
                            struct sk_error *err)
{
    (void)err;
    const struct memory_source *memory = (const struct memory_source *)source;
    length = clamp_length(source->size, length, offset);
    if (length > 0)
        memcpy(buffer, memory->bytes + offset, length);
    return (ssize_t)length;
}

static void memory_close(struct sk_source *source)
{
    struct memory_source *memory = (struct memory_source *)source;
    if (memory->owned)
        free((void *)memory->bytes);
    free(memory);
}

static const void *memory_held(const struct sk_source *source)
{
    return ((const struct memory_source *)source)->bytes;
}

static const struct sk_source_ops memory_ops = {
    .pread = memory_pread,
    .close = memory_close,
    .held = memory_held,
};

int sk_source_memory(const void *bytes, size_t length, bool copy, struct sk_source **out,
                     struct sk_error *err)
{
    *out = NULL;
    struct memory_source *memory = calloc(1, sizeof *memory);
    void *owned = copy ? malloc(length ? length : 1) : NULL;
    if (memory == NULL || (copy && owned == NULL)) {
        free(memory);
        free(owned);
        return sk_fail_code(err, ENOMEM, "out of memory");
    }
    if (copy && length > 0)
        memcpy(owned, bytes, length);
    memory->base = (struct sk_source){.ops = &memory_ops, .size = length};
    memory->bytes = copy ? owned : bytes;
    memory->owned = copy;
    *out = &memory->base;
    return 0;
}

struct file_range_source {
    struct sk_source base;
    int fd;
    uint64_t offset; /* of the range's first byte in FD */
    size_t header_length;
    unsigned char header[]; /* HEADER_LENGTH bytes */
};

static ssize_t file_range_pread(struct sk_source *source, void *buffer, size_t length,
                                uint64_t offset, struct sk_error *err)
{
    const struct file_range_source *range = (const struct file_range_source *)source;
    length = clamp_length(source->size, length, offset);
    size_t done = 0;
    if (offset < range->header_length) {
        done = range->header_length - (size_t)offset;
        if (done > length)
            done = length;
        memcpy(buffer, range->header + offset, done);
    }
    uint64_t in_range = offset + done - range->header_length;
    if (done < length && sk_pread_exact(range->fd, (char *)buffer + done, length - done,
                                        range->offset + in_range, err) != 0)
        return -1;
    return (ssize_t)length;
}

static bool file_range_extent(const struct sk_source *source, uint64_t offset, int *fd,
                              uint64_t *file_offset)
{
    const struct file_range_source *range = (const struct file_range_source *)source;
    if (offset < range->header_length)
        return false;
    *fd = range->fd;
    *file_offset = range->offset + (offset - range->header_length);
    return true;
}

static void file_range_close(struct sk_source *source)
{
    free(source);
}

static const struct sk_source_ops file_range_ops = {
    .pread = file_range_pread,
    .extent = file_range_extent,
    .close = file_range_close,
};

int sk_source_file_range(const void *header, size_t header_length, int fd, uint64_t offset,
                         uint64_t length, struct sk_source **out, struct sk_error *err)
{
    *out = NULL;
    if (length > UINT64_MAX - header_length)
        return sk_fail_code(err, E2BIG, "a range of %llu bytes is too long to show",
                            (unsigned long long)length);
    struct file_range_source *range = malloc(sizeof *range + header_length);
    if (range == NULL)
        return sk_fail_code(err, ENOMEM, "out of memory");
    range->base = (struct sk_source){.ops = &file_range_ops, .size = header_length + length};
    range->fd = fd;
    range->offset = offset;
    range->header_length = header_length;
    if (header_length > 0)
        memcpy(range->header, header, header_length);
    *out = &range->base;
    return 0;
}

uint64_t sk_store_member_count(const struct sk_store *store)
{
    return store->ops->member_count(store);
}

int sk_store_find(const struct sk_store *store, const char *name, uint64_t *index)
{
    return store->ops->find(store, name, index);
}

void sk_store_member_info(const struct sk_store *store, uint64_t index, struct sk_member_info *info)
{
    store->ops->member_info(store, index, info);
}

int sk_store_check_member(const struct sk_store *store, uint64_t index, struct sk_error *err)
{
    return store->ops->check_member != NULL ? store->ops->check_member(store, index, err) : 0;
}

int sk_store_open(struct sk_store *store, uint64_t index, bool verified, struct sk_source **out,
                  struct sk_error *err)
{
    return store->ops->open(store, index, verified, out, err);
}

void sk_store_prepare_opens(struct sk_store *store)
{
    if (store->ops->prepare_opens != NULL)
        store->ops->prepare_opens(store);
}

int sk_store_check_open(struct sk_store *store, uint64_t index, struct sk_error *err)
{
    if (store->ops->check_open != NULL)
        return store->ops->check_open(store, index, err);
    struct sk_source *source;
    if (store->ops->open(store, index, false, &source, err) != 0)
        return -1;
    sk_source_close(source);
    return 0;
}

int sk_store_verify(struct sk_store *store, uint64_t index, struct sk_error *err)
{
    if (store->ops->verify != NULL)
        return store->ops->verify(store, index, err);
    struct sk_source *source;
    if (sk_store_open(store, index, true, &source, err) != 0)
        return -1;
    int result = source->ops->verify != NULL ? source->ops->verify(source, err) : 0;
    sk_source_close(source);
    return result;
}

int sk_store_check_unchanged(const struct sk_store *store, struct sk_error *err)
{
    return store->ops->check_unchanged != NULL ? store->ops->check_unchanged(store, err) : 0;
}

struct timespec sk_store_mtime(const struct sk_store *store)
{
    return store->ops->mtime(store);
}

uint64_t sk_store_file_size(const struct sk_store *store)
{
    return store->ops->file_size(store);
}

void sk_store_close(struct sk_store *store)
{
    if (store != NULL)
        store->ops->close(store);
}

int sk_store_read_member(struct sk_store *store, uint64_t index, size_t max_bytes, char **data,
                         size_t *length, struct sk_error *err)
{
    *data = NULL;
    *length = 0;
    struct sk_member_info info;
    sk_store_member_info(store, index, &info);
    if (info.size > max_bytes)
        return sk_fail_code(err, E2BIG, "member '%s' is %llu bytes, more than the limit of %zu",
                            info.name, (unsigned long long)info.size, max_bytes);
    /* Unverified: verifying at open would read the member once more. */
    struct sk_source *source;
    if (sk_store_open(store, index, false, &source, err) != 0)
        return -1;
    size_t size = (size_t)info.size;
    char *buffer = sk_pages_alloc(size + 1);
    ssize_t got = buffer != NULL ? sk_source_pread(source, buffer, size, 0, err) : -1;
    /* Read whole and in order: a source that checks its bytes has its
     * verdict on these very bytes now, and this asks for it without
     * reading again. */
    int verdict = got >= 0 && (size_t)got == size && source->ops->verify != NULL
                      ? source->ops->verify(source, err)
                      : 0;
    sk_source_close(source);
    if (buffer == NULL)
        return sk_fail_code(err, ENOMEM, "out of memory");
    if (got < 0 || (size_t)got != size || verdict != 0) {
        sk_pages_free(buffer, size + 1);
        return sk_fail_code(err, EIO, "member '%s': short read", info.name);
    }
    buffer[size] = '\0';
    *data = buffer;
    *length = size;
    return 0;
}

void sk_store_free_member(char *data, size_t length)
{
    sk_pages_free(data, length + 1);
}
