/* libFuzzer target: a whole archive (zip structure, schema, layout, reads),
 * and the content checks with the trees judged during the read or after. */
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
    struct sk_error err = {0};
    struct sk_model *model;
    struct sk_model_options options = {
        .build_layout = true, .read_npy_headers = true, .check_content = true};
    if (sk_model_open(path, &options, &model, &err) == 0) {
        fuzz_walk_layout(model->layout);
        sk_model_close(model);
        compare_prefetched(path);
    }
    close(fd);
    return 0;
}
