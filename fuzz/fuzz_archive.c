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
 * first bytes at once (a held member whole, and past it its neighbours'
 * headers); after the headers were read ahead (prepare_opens), it reads
 * the header alone or not at all. Every way gives the same refusal, or the
 * same bytes, verified or not. */
static int open_member(struct sk_archive *archive, uint64_t index, bool verified,
                       struct sk_reader **reader, struct sk_error *err)
{
    return verified ? sk_reader_open(archive, index, reader, err)
                    : sk_reader_open_unverified(archive, index, reader, err);
}

/* What opening a member and reading a few spans of it (across the first
 * KiB's end too) gives: to compare between ways of opening. */
#define SPANS 3
#define COMPARED_MEMBERS 64
struct outcome {
    int rc;
    char message[sizeof((struct sk_error){0}).message];
    ssize_t got[SPANS];
    char bytes[SPANS][256];
    char read_message[SPANS][sizeof((struct sk_error){0}).message];
};

static void record(struct sk_archive *archive, uint64_t index, bool verified, struct outcome *out)
{
    static const uint64_t offsets[SPANS] = {0, 1000, 4096};
    memset(out, 0, sizeof *out);
    struct sk_error err = {0};
    struct sk_reader *reader;
    out->rc = open_member(archive, index, verified, &reader, &err);
    memcpy(out->message, err.message, sizeof out->message);
    if (out->rc != 0)
        return;
    for (size_t k = 0; k < SPANS; k++) {
        struct sk_error read_err = {0};
        out->got[k] =
            sk_reader_pread(reader, out->bytes[k], sizeof out->bytes[k], offsets[k], &read_err);
        memcpy(out->read_message[k], read_err.message, sizeof out->read_message[k]);
    }
    sk_reader_close(reader);
}

static void expect_same(const struct outcome *a, const struct outcome *b, uint64_t index,
                        const char *how)
{
    bool same = a->rc == b->rc && strcmp(a->message, b->message) == 0;
    for (size_t k = 0; same && a->rc == 0 && k < SPANS; k++)
        same = a->got[k] == b->got[k] &&
               (a->got[k] <= 0 || memcmp(a->bytes[k], b->bytes[k], (size_t)a->got[k]) == 0) &&
               strcmp(a->read_message[k], b->read_message[k]) == 0;
    if (!same) {
        fprintf(stderr, "member %llu opened in order: %d %s\n%s: %d %s\n",
                (unsigned long long)index, a->rc, a->message, how, b->rc, b->message);
        abort();
    }
}

/* Each member opened in the directory's order, with the headers read ahead
 * first, and in the reverse order (what a read takes along of its
 * neighbours differs): the same refusal, or the same bytes. */
static void compare_ways_of_opening(const char *path, bool verified)
{
    struct sk_error err = {0};
    struct sk_archive *ways[3];
    for (int w = 0; w < 3; w++)
        if (sk_archive_open(path, &ways[w], &err) != 0) {
            while (w-- > 0)
                sk_archive_close(ways[w]);
            return;
        }
    sk_store_prepare_opens(sk_archive_store(ways[1]));
    uint64_t count = sk_archive_member_count(ways[0]);
    if (count > COMPARED_MEMBERS)
        count = COMPARED_MEMBERS;
    static struct outcome backward[COMPARED_MEMBERS];
    for (uint64_t i = count; i-- > 0;)
        record(ways[2], i, verified, &backward[i]);
    for (uint64_t i = 0; i < count; i++) {
        struct outcome in_order, ahead;
        record(ways[0], i, verified, &in_order);
        record(ways[1], i, verified, &ahead);
        expect_same(&in_order, &ahead, i, "headers read ahead");
        expect_same(&in_order, &backward[i], i, "in reverse order");
    }
    for (int w = 0; w < 3; w++)
        sk_archive_close(ways[w]);
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
    compare_ways_of_opening(path, false);
    compare_ways_of_opening(path, true);
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
