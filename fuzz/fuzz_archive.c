/* libFuzzer target: a whole archive (zip structure, schema, layout, reads),
 * and the content checks with the trees judged during the read or after. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "archive.h"
#include "contentrun.h"
#include "model.h"
#include "walk.h"

/* The zip layer alone: every member verified and read, whatever the schema. */
static void read_every_member(const char *path)
{
    struct sk_error err = {0};
    struct sk_archive *archive;
    if (sk_archive_open(path, &archive, &err) != 0)
        return;
    char buffer[4096];
    for (uint64_t i = 0; i < sk_archive_member_count(archive); i++) {
        sk_error_clear(&err);
        sk_archive_verify(archive, i, &err);
        struct sk_reader *reader;
        sk_error_clear(&err);
        if (sk_reader_open_unverified(archive, i, &reader, &err) != 0)
            continue;
        for (uint64_t offset = 0; offset < (1u << 20);) {
            ssize_t got = sk_reader_pread(reader, buffer, sizeof buffer, offset, &err);
            if (got <= 0)
                break;
            offset += (uint64_t)got;
        }
        sk_reader_close(reader);
    }
    sk_archive_check_unchanged(archive, &err);
    sk_archive_close(archive);
}

/* An open with its member's offset unknown reads the local header and the
 * first bytes at once (a held member whole); after the headers were read
 * ahead a window at a time, it reads the header alone or not at all. Both
 * give the same refusal, or the same bytes, verified or not. */
static int open_member(struct sk_archive *archive, uint64_t index, bool verified,
                       struct sk_reader **reader, struct sk_error *err)
{
    return verified ? sk_reader_open(archive, index, reader, err)
                    : sk_reader_open_unverified(archive, index, reader, err);
}

/* The bytes at each of a few offsets (across the first KiB's end too). */
static void compare_reads(struct sk_reader *a, struct sk_reader *b, uint64_t index)
{
    static const uint64_t offsets[] = {0, 1000, 4096};
    for (size_t k = 0; k < sizeof offsets / sizeof *offsets; k++) {
        char bytes_a[256], bytes_b[256];
        struct sk_error err_a = {0}, err_b = {0};
        ssize_t got_a = sk_reader_pread(a, bytes_a, sizeof bytes_a, offsets[k], &err_a);
        ssize_t got_b = sk_reader_pread(b, bytes_b, sizeof bytes_b, offsets[k], &err_b);
        if (got_a != got_b || (got_a > 0 && memcmp(bytes_a, bytes_b, (size_t)got_a) != 0) ||
            strcmp(err_a.message, err_b.message) != 0) {
            fprintf(stderr, "member %llu at %llu: other bytes after the headers were read ahead\n",
                    (unsigned long long)index, (unsigned long long)offsets[k]);
            abort();
        }
    }
}

static void compare_headers_read_ahead(const char *path, bool verified)
{
    struct sk_error err = {0};
    struct sk_archive *alone, *ahead;
    if (sk_archive_open(path, &alone, &err) != 0)
        return;
    if (sk_archive_open(path, &ahead, &err) != 0) {
        sk_archive_close(alone);
        return;
    }
    sk_store_prepare_opens(sk_archive_store(ahead));
    for (uint64_t i = 0; i < sk_archive_member_count(alone); i++) {
        struct sk_error err_alone = {0}, err_ahead = {0};
        struct sk_reader *reader_alone, *reader_ahead;
        int rc_alone = open_member(alone, i, verified, &reader_alone, &err_alone);
        int rc_ahead = open_member(ahead, i, verified, &reader_ahead, &err_ahead);
        if (rc_alone != rc_ahead || strcmp(err_alone.message, err_ahead.message) != 0) {
            fprintf(stderr, "member %llu alone: %d %s\nread ahead: %d %s\n", (unsigned long long)i,
                    rc_alone, err_alone.message, rc_ahead, err_ahead.message);
            abort();
        }
        if (rc_alone != 0)
            continue;
        compare_reads(reader_alone, reader_ahead, i);
        sk_reader_close(reader_alone);
        sk_reader_close(reader_ahead);
    }
    sk_archive_close(alone);
    sk_archive_close(ahead);
}

/* Trees judged during the read give the report of the checks after it. */
static void compare_prefetched(const char *path)
{
    char *ahead = content_outcome(path, "2"), *after = content_outcome(path, "1");
    if (strstr(ahead, "out of memory") == NULL && strstr(after, "out of memory") == NULL &&
        strcmp(ahead, after) != 0) {
        fprintf(stderr, "judged during the read:\n%s\nafter it:\n%s\n", ahead, after);
        abort();
    }
    free(ahead);
    free(after);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("archive", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    read_every_member(path);
    compare_headers_read_ahead(path, false);
    compare_headers_read_ahead(path, true);
    struct sk_error err = {0};
    struct sk_model *model;
    /* every other input opens every member as the daemon does, its headers
     * read ahead; the rest walk the layout of archives with bad headers too */
    struct sk_model_options options = {.build_layout = true,
                                       .read_npy_headers = true,
                                       .open_members = size % 2 == 1,
                                       .check_content = true};
    if (sk_model_open(path, &options, &model, &err) == 0) {
        fuzz_walk_layout(model->layout);
        sk_model_close(model);
        compare_prefetched(path);
    }
    close(fd);
    return 0;
}
