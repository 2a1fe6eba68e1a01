#include "zipwrite.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32.h"
#include "sk_limits.h"

#define COPY_CHUNK (1u << 20)
#define LOCAL_HEADER_BYTES 30
#define CENTRAL_HEADER_BYTES 46
#define END_BYTES 22
#define ZIP64_END_BYTES 56
#define ZIP64_LOCATOR_BYTES 20
#define ZIP64_EXTRA_ID 0x0001
#define MAX32 0xFFFFFFFFu
#define MAX16 0xFFFFu
/* Version 2.0 (stored/deflate), 4.5 for ZIP64; made on Unix (3). */
#define VERSION_PLAIN 20
#define VERSION_ZIP64 45
#define MADE_BY_UNIX (3 << 8)
#define FLAG_UTF8 0x0800
/* 1980-01-01 00:00:00 in DOS form: the earliest a zip can say. */
#define DOS_DATE_1980_01_01 ((0 << 9) | (1 << 5) | 1)
/* -rw-r--r--, as Python's ZipFile.writestr gives a name without a ZipInfo. */
#define EXTERNAL_ATTR (0100644u << 16)

struct entry {
    const char *name;
    size_t name_length;
    struct sk_source *source; /* NULL: the schema text */
    const char *text;
    uint64_t size;
    uint64_t offset; /* of the local header */
    uint32_t crc;
    bool zip64;
};

struct writer {
    int fd;
    uint64_t position;
    unsigned char *buffer;
};

static void le16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
}

static void le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static int write_all(struct writer *w, const void *bytes, size_t length, struct sk_error *err)
{
    const unsigned char *p = bytes;
    while (length > 0) {
        ssize_t done = write(w->fd, p, length);
        if (done < 0 && errno == EINTR)
            continue;
        if (done < 0)
            return sk_fail(err, "writing the archive: %s", strerror(errno));
        p += done, length -= (size_t)done, w->position += (uint64_t)done;
    }
    return 0;
}

static bool is_ascii(const char *name, size_t length)
{
    for (size_t i = 0; i < length; i++)
        if ((unsigned char)name[i] >= 0x80)
            return false;
    return true;
}

/* The fields shared by local and central headers, from "version needed". */
static void common_fields(unsigned char *p, const struct entry *e)
{
    le16(p, e->zip64 ? VERSION_ZIP64 : VERSION_PLAIN);
    le16(p + 2, is_ascii(e->name, e->name_length) ? 0 : FLAG_UTF8);
    le16(p + 4, 0); /* stored */
    le16(p + 6, 0); /* 00:00 */
    le16(p + 8, DOS_DATE_1980_01_01);
    le32(p + 10, e->crc);
    le32(p + 14, e->zip64 ? MAX32 : (uint32_t)e->size);
    le32(p + 18, e->zip64 ? MAX32 : (uint32_t)e->size);
    le16(p + 22, (unsigned)e->name_length);
}

static int copy_data(struct writer *w, struct entry *e, struct sk_error *err)
{
    uint32_t crc = 0;
    if (e->source == NULL) {
        e->crc = sk_crc32(crc, e->text, (size_t)e->size);
        return write_all(w, e->text, (size_t)e->size, err);
    }
    for (uint64_t at = 0; at < e->size;) {
        size_t want = e->size - at < COPY_CHUNK ? (size_t)(e->size - at) : COPY_CHUNK;
        ssize_t got = sk_source_pread(e->source, w->buffer, want, at, err);
        if (got < 0)
            return -1;
        if (got == 0)
            return sk_fail(err, "member %s: its source ended early", e->name);
        crc = sk_crc32(crc, w->buffer, (size_t)got);
        if (write_all(w, w->buffer, (size_t)got, err) != 0)
            return -1;
        at += (uint64_t)got;
    }
    e->crc = crc;
    return 0;
}

/* The local header goes out with CRC 0 and is patched once the data (read
 * once) has given its CRC-32. */
static int write_member(struct writer *w, struct entry *e, bool force_zip64, struct sk_error *err)
{
    e->offset = w->position;
    e->zip64 = force_zip64 || e->size >= MAX32;
    unsigned char header[LOCAL_HEADER_BYTES + 20] = {0};
    le32(header, 0x04034b50);
    common_fields(header + 4, e);
    size_t extra = e->zip64 ? 20 : 0;
    le16(header + 28, (unsigned)extra);
    if (write_all(w, header, LOCAL_HEADER_BYTES, err) != 0 ||
        write_all(w, e->name, e->name_length, err) != 0)
        return -1;
    if (e->zip64) {
        unsigned char *x = header + LOCAL_HEADER_BYTES;
        le16(x, ZIP64_EXTRA_ID), le16(x + 2, 16), le64(x + 4, e->size), le64(x + 12, e->size);
        if (write_all(w, x, extra, err) != 0)
            return -1;
    }
    if (copy_data(w, e, err) != 0)
        return -1;
    unsigned char crc[4];
    le32(crc, e->crc);
    if (pwrite(w->fd, crc, 4, (off_t)(e->offset + 14)) != 4)
        return sk_fail(err, "writing the archive: %s", strerror(errno));
    return 0;
}

static int write_central(struct writer *w, const struct entry *e, struct sk_error *err)
{
    bool far = e->offset >= MAX32;
    unsigned char header[CENTRAL_HEADER_BYTES + 28] = {0};
    le32(header, 0x02014b50);
    le16(header + 4, MADE_BY_UNIX | (e->zip64 || far ? VERSION_ZIP64 : VERSION_PLAIN));
    struct entry copy = *e;
    copy.zip64 = e->zip64 || far;
    common_fields(header + 6, &copy);
    if (!e->zip64) /* sizes fit: only the offset needs the extra field */
        le32(header + 20, (uint32_t)e->size), le32(header + 24, (uint32_t)e->size);
    unsigned char *x = header + CENTRAL_HEADER_BYTES;
    size_t extra = 0;
    if (e->zip64 || far) {
        size_t n = 4;
        if (e->zip64)
            le64(x + n, e->size), le64(x + n + 8, e->size), n += 16;
        if (far)
            le64(x + n, e->offset), n += 8;
        le16(x, ZIP64_EXTRA_ID), le16(x + 2, (unsigned)(n - 4));
        extra = n;
    }
    le16(header + 30, (unsigned)extra);
    le32(header + 38, EXTERNAL_ATTR);
    le32(header + 42, far ? MAX32 : (uint32_t)e->offset);
    if (write_all(w, header, CENTRAL_HEADER_BYTES, err) != 0 ||
        write_all(w, e->name, e->name_length, err) != 0 || write_all(w, x, extra, err) != 0)
        return -1;
    return 0;
}

static int write_end(struct writer *w, uint64_t count, uint64_t directory_offset, bool force_zip64,
                     struct sk_error *err)
{
    uint64_t directory_size = w->position - directory_offset;
    bool zip64 =
        force_zip64 || count >= MAX16 || directory_offset >= MAX32 || directory_size >= MAX32;
    if (zip64) {
        uint64_t record = w->position;
        unsigned char z[ZIP64_END_BYTES + ZIP64_LOCATOR_BYTES] = {0};
        le32(z, 0x06064b50);
        le64(z + 4, ZIP64_END_BYTES - 12);
        le16(z + 12, MADE_BY_UNIX | VERSION_ZIP64);
        le16(z + 14, VERSION_ZIP64);
        le64(z + 24, count), le64(z + 32, count);
        le64(z + 40, directory_size), le64(z + 48, directory_offset);
        unsigned char *locator = z + ZIP64_END_BYTES;
        le32(locator, 0x07064b50);
        le64(locator + 8, record);
        le32(locator + 16, 1);
        if (write_all(w, z, sizeof z, err) != 0)
            return -1;
    }
    unsigned char end[END_BYTES] = {0};
    le32(end, 0x06054b50);
    unsigned short_count = count >= MAX16 ? MAX16 : (unsigned)count;
    le16(end + 8, short_count), le16(end + 10, short_count);
    le32(end + 12, directory_size >= MAX32 ? MAX32 : (uint32_t)directory_size);
    le32(end + 16, directory_offset >= MAX32 ? MAX32 : (uint32_t)directory_offset);
    return write_all(w, end, sizeof end, err);
}

static int compare_entries(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    size_t n = x->name_length < y->name_length ? x->name_length : y->name_length;
    int c = memcmp(x->name, y->name, n);
    return c != 0 ? c : (x->name_length > y->name_length) - (x->name_length < y->name_length);
}

static int check_names(const struct entry *entries, size_t count, struct sk_error *err)
{
    for (size_t i = 0; i < count; i++) {
        const struct entry *e = &entries[i];
        if (e->name_length == 0 || e->name_length > MAX16 || strchr(e->name, '\\') != NULL)
            return sk_fail(err, "member name \"%.80s\" cannot be written", e->name);
        if (i > 1 && compare_entries(&entries[i - 1], e) == 0)
            return sk_fail(err, "member name \"%.80s\" given twice", e->name);
        if (i > 0 && strcmp(e->name, "schema.json") == 0)
            return sk_fail(err, "a member may not be named schema.json");
    }
    return 0;
}

static int write_archive(struct writer *w, struct entry *entries, size_t count, bool force_zip64,
                         struct sk_error *err)
{
    for (size_t i = 0; i < count; i++)
        if (write_member(w, &entries[i], force_zip64, err) != 0)
            return -1;
    uint64_t directory_offset = w->position;
    for (size_t i = 0; i < count; i++)
        if (write_central(w, &entries[i], err) != 0)
            return -1;
    return write_end(w, count, directory_offset, force_zip64, err);
}

int sk_convert_write(const char *out_path, const char *schema_text, size_t length,
                     const struct sk_source_named *members, size_t count,
                     const struct sk_zip_write_options *options, struct sk_error *err)
{
    bool force_zip64 = options != NULL && options->force_zip64;
    if (count >= SK_MAX_MEMBERS)
        return sk_fail(err, "%s: %zu members (SK_MAX_MEMBERS)", out_path, count);
    struct entry *entries = calloc(count + 1, sizeof *entries);
    struct writer w = {.fd = -1, .buffer = malloc(COPY_CHUNK)};
    char *temp = NULL;
    int result = -1;
    if (entries == NULL || w.buffer == NULL || asprintf(&temp, "%s.XXXXXX", out_path) < 0) {
        temp = NULL;
        sk_fail(err, "out of memory");
        goto done;
    }
    entries[0] = (struct entry){
        .name = "schema.json", .name_length = 11, .text = schema_text, .size = length};
    for (size_t i = 0; i < count; i++)
        entries[i + 1] = (struct entry){.name = members[i].name,
                                        .name_length = strlen(members[i].name),
                                        .source = members[i].source,
                                        .size = sk_source_size(members[i].source)};
    qsort(entries + 1, count, sizeof *entries, compare_entries);
    if (check_names(entries, count + 1, err) != 0)
        goto done;
    w.fd = mkostemp(temp, O_CLOEXEC);
    if (w.fd < 0) {
        sk_fail(err, "%s: %s", temp, strerror(errno));
        free(temp);
        temp = NULL;
        goto done;
    }
    if (fchmod(w.fd, 0644) != 0)
        sk_fail(err, "%s: %s", temp, strerror(errno));
    else if (write_archive(&w, entries, count + 1, force_zip64, err) == 0)
        result = 0;
    if (close(w.fd) != 0 && result == 0)
        result = sk_fail(err, "%s: %s", temp, strerror(errno));
    if (result == 0 && rename(temp, out_path) != 0)
        result = sk_fail(err, "%s: %s", out_path, strerror(errno));
    if (result != 0)
        unlink(temp);
done:
    if (result != 0)
        sk_error_prefix(err, "%s: ", out_path);
    free(temp);
    free(w.buffer);
    free(entries);
    return result;
}

int sk_zip_write_members(int fd, const struct sk_source_named *members, size_t count,
                         struct sk_error *err)
{
    if (count >= SK_MAX_MEMBERS)
        return sk_fail(err, "%zu members (SK_MAX_MEMBERS)", count);
    struct entry *entries = calloc(count ? count : 1, sizeof *entries);
    struct writer w = {.fd = fd, .buffer = malloc(COPY_CHUNK)};
    int result = -1;
    if (entries == NULL || w.buffer == NULL) {
        sk_fail(err, "out of memory");
    } else {
        for (size_t i = 0; i < count; i++)
            entries[i] = (struct entry){.name = members[i].name,
                                        .name_length = strlen(members[i].name),
                                        .source = members[i].source,
                                        .size = sk_source_size(members[i].source)};
        if (check_names(entries, count, err) == 0)
            result = write_archive(&w, entries, count, false, err);
    }
    free(w.buffer);
    free(entries);
    return result;
}
