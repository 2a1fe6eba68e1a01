/* Zip access: members found by name, read by offset and length, stored ones
 * directly, DEFLATE ones through seek points, never past the declared size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "archive.h"
#include "sk_limits.h"
#include "testutil.h"

#define BIG (5u << 20) /* several DEFLATE seek points */

static unsigned char *pattern(size_t length)
{
    unsigned char *bytes = malloc(length);
    uint32_t x = 12345;
    for (size_t i = 0; i < length; i++) {
        x = x * 1103515245u + 12345u; /* compressible, but not trivially */
        bytes[i] = (unsigned char)((x >> 16) % 16 + (i / 4096) % 7);
    }
    return bytes;
}

static void reads_stored_and_deflated_members(void **state)
{
    (void)state;
    unsigned char *big = pattern(BIG);
    struct test_member members[] = {
        {"stored.bin", big, BIG, false},
        {"deflated.bin", big, BIG, true},
        {"empty.bin", "", 0, true},
    };
    char *path = test_make_zip(members, 3);
    struct sk_archive *archive;
    struct sk_error err = {0};
    assert_int_equal(sk_archive_open(path, &archive, &err), 0);
    assert_int_equal(sk_archive_member_count(archive), 3);
    uint64_t stored, deflated, empty;
    assert_int_equal(sk_archive_find(archive, "stored.bin", &stored), 0);
    assert_int_equal(sk_archive_find(archive, "deflated.bin", &deflated), 0);
    assert_int_equal(sk_archive_find(archive, "empty.bin", &empty), 0);
    assert_int_equal(sk_archive_find(archive, "missing.bin", &empty), -1);
    struct sk_member_info info;
    sk_archive_member_info(archive, deflated, &info);
    assert_true(info.compressed);
    assert_int_equal(info.size, BIG);

    struct sk_reader *readers[2];
    assert_int_equal(sk_reader_open(archive, stored, &readers[0], &err), 0);
    assert_int_equal(sk_reader_open(archive, deflated, &readers[1], &err), 0);
    int fd;
    uint64_t extent_offset;
    assert_false(sk_reader_stored_extent(readers[1], &fd, &extent_offset));
    assert_true(sk_reader_stored_extent(readers[0], &fd, &extent_offset));
    unsigned char edges[2][64];
    assert_int_equal(pread(fd, edges[0], 64, (off_t)extent_offset), 64);
    assert_int_equal(pread(fd, edges[1], 64, (off_t)(extent_offset + BIG - 64)), 64);
    assert_memory_equal(edges[0], big, 64);
    assert_memory_equal(edges[1], big + BIG - 64, 64);
    unsigned char *buffer = malloc(70000);
    /* random offsets, forwards and backwards, across seek points */
    uint32_t x = 99;
    for (int i = 0; i < 300; i++) {
        x = x * 1664525u + 1013904223u;
        uint64_t at = x % (BIG + 100);
        size_t length = 1 + (x >> 8) % 70000;
        for (int r = 0; r < 2; r++) {
            ssize_t got = sk_reader_pread(readers[r], buffer, length, at, &err);
            size_t want = at >= BIG ? 0 : (length < BIG - at ? length : BIG - at);
            assert_int_equal(got, want);
            assert_memory_equal(buffer, big + (at < BIG ? at : 0), want);
        }
    }
    sk_reader_close(readers[0]);
    sk_reader_close(readers[1]);
    struct sk_reader *reader;
    assert_int_equal(sk_reader_open(archive, empty, &reader, &err), 0);
    assert_int_equal(sk_reader_pread(reader, buffer, 10, 0, &err), 0);
    sk_reader_close(reader);
    free(buffer);
    sk_archive_close(archive);
    unlink(path);
    free(path);
    free(big);
}

static void reads_whole_member_with_a_limit(void **state)
{
    (void)state;
    struct test_member members[] = {{"schema.json", "{\"a\": 1}", 8, true}};
    char *path = test_make_zip(members, 1);
    struct sk_archive *archive;
    struct sk_error err = {0};
    assert_int_equal(sk_archive_open(path, &archive, &err), 0);
    char *data;
    size_t length;
    assert_int_equal(sk_store_read_member(sk_archive_store(archive), 0, 100, &data, &length, &err),
                     0);
    assert_int_equal(length, 8);
    assert_string_equal(data, "{\"a\": 1}");
    sk_store_free_member(data, length);
    assert_int_equal(sk_store_read_member(sk_archive_store(archive), 0, 4, &data, &length, &err),
                     -1);
    assert_non_null(strstr(err.message, "more than the limit"));
    sk_archive_close(archive);
    unlink(path);
    free(path);
}

static void rejects_what_is_not_a_zip(void **state)
{
    (void)state;
    char path[] = "/tmp/skopsfs-test-XXXXXX";
    int fd = mkstemp(path);
    assert_int_equal(write(fd, "plain text, not a zip\n", 22), 22);
    close(fd);
    struct sk_archive *archive;
    struct sk_error err = {0};
    assert_int_equal(sk_archive_open(path, &archive, &err), -1);
    assert_non_null(strstr(err.message, "not a zip archive"));
    assert_non_null(strstr(err.message, path));
    unlink(path);
    sk_error_clear(&err);
    assert_int_equal(sk_archive_open("/nonexistent.skops", &archive, &err), -1);
    assert_string_equal(err.message, "/nonexistent.skops: No such file or directory");
}

static void rejects_truncated_archive(void **state)
{
    (void)state;
    unsigned char *big = pattern(10000);
    struct test_member members[] = {{"a.bin", big, 10000, false}};
    char *path = test_make_zip(members, 1);
    assert_int_equal(truncate(path, 6000), 0);
    struct sk_archive *archive;
    struct sk_error err = {0};
    assert_int_equal(sk_archive_open(path, &archive, &err), -1);
    assert_true(strlen(err.message) > 0);
    unlink(path);
    free(path);
    free(big);
}

/* Hand-built archives: every byte of the zip structure under the test's
 * control, to spell each ambiguity the reader must refuse. */
struct raw_member {
    const char *name;       /* central directory name (may hold NUL: name_length) */
    size_t name_length;     /* 0: strlen(name) */
    const char *local_name; /* NULL: same as name */
    uint16_t flags;
    uint16_t method;
    const void *data; /* stored bytes as written (compressed if DEFLATE) */
    size_t data_length;
    uint64_t size;     /* declared uncompressed size */
    uint32_t crc;      /* declared CRC-32 */
    const void *extra; /* central extra field */
    size_t extra_length;
    int64_t offset_shift; /* added to the central header offset */
    uint8_t extract_version;
    /* 0, or a local extra field of this many bytes (4 or more: an unknown tag) */
    size_t local_extra_length;
};

struct raw_options {
    size_t prepend;            /* junk bytes before the archive */
    const char *comment;       /* archive comment */
    bool zip64;                /* ZIP64 end record and locator */
    int64_t locator_shift;     /* added to the locator's record offset */
    int64_t zip64_count_shift; /* added to the ZIP64 entry count */
    bool plain_count_in_zip64; /* plain count is real (not 0xFFFF) but wrong */
    int64_t count_shift;       /* added to the end record's counts */
    uint16_t disk;             /* end record's disk number */
    bool reversed_directory;   /* the directory lists the last member first */
};

static void put16(unsigned char **p, uint16_t v)
{
    (*p)[0] = (unsigned char)v;
    (*p)[1] = (unsigned char)(v >> 8);
    *p += 2;
}

static void put32(unsigned char **p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p, (uint16_t)(v >> 16));
}

static void put64(unsigned char **p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p, (uint32_t)(v >> 32));
}

static void put(unsigned char **p, const void *bytes, size_t length)
{
    if (length == 0)
        return; /* BYTES may be NULL then */
    memcpy(*p, bytes, length);
    *p += length;
}

static char *write_raw_zip(const struct raw_member *members, size_t count,
                           const struct raw_options *o)
{
    size_t capacity = o->prepend + 4096;
    for (size_t i = 0; i < count; i++)
        capacity += 2 * (100 + strlen(members[i].name) + members[i].data_length +
                         members[i].extra_length + members[i].local_extra_length);
    unsigned char *start = calloc(1, capacity), *p = start;
    assert_non_null(start);
    memset(p, 'J', o->prepend);
    p += o->prepend;
    uint64_t *offsets = calloc(count + 1, sizeof *offsets);
    for (size_t i = 0; i < count; i++) {
        const struct raw_member *m = &members[i];
        size_t name_length = m->name_length ? m->name_length : strlen(m->name);
        const char *local = m->local_name ? m->local_name : m->name;
        size_t local_length = m->local_name ? strlen(local) : name_length;
        offsets[i] = (uint64_t)(p - start - (ptrdiff_t)o->prepend);
        put(&p, "PK\3\4", 4);
        put16(&p, 20);
        put16(&p, m->flags);
        put16(&p, m->method);
        put32(&p, 0);
        put32(&p, m->crc);
        put32(&p, (uint32_t)m->data_length);
        put32(&p, (uint32_t)m->size);
        put16(&p, (uint16_t)local_length);
        put16(&p, (uint16_t)m->local_extra_length);
        put(&p, local, local_length);
        if (m->local_extra_length >= 4) {
            put16(&p, 0xCAFE);
            put16(&p, (uint16_t)(m->local_extra_length - 4));
            memset(p, 'x', m->local_extra_length - 4);
            p += m->local_extra_length - 4;
        }
        put(&p, m->data, m->data_length);
    }
    uint64_t directory = (uint64_t)(p - start - (ptrdiff_t)o->prepend);
    for (size_t listed = 0; listed < count; listed++) {
        size_t i = o->reversed_directory ? count - 1 - listed : listed;
        const struct raw_member *m = &members[i];
        size_t name_length = m->name_length ? m->name_length : strlen(m->name);
        put(&p, "PK\1\2", 4);
        put16(&p, 20);
        put16(&p, (uint16_t)(m->extract_version ? m->extract_version : 20));
        put16(&p, m->flags);
        put16(&p, m->method);
        put32(&p, 0);
        put32(&p, m->crc);
        put32(&p, (uint32_t)m->data_length);
        put32(&p, (uint32_t)m->size);
        put16(&p, (uint16_t)name_length);
        put16(&p, (uint16_t)m->extra_length);
        put16(&p, 0);
        put16(&p, 0);
        put16(&p, 0);
        put32(&p, 0);
        put32(&p, (uint32_t)((int64_t)offsets[i] + m->offset_shift));
        put(&p, m->name, name_length);
        put(&p, m->extra, m->extra_length);
    }
    uint64_t directory_size = (uint64_t)(p - start - (ptrdiff_t)o->prepend) - directory;
    uint64_t entries = (uint64_t)((int64_t)count + o->count_shift);
    if (o->zip64) {
        uint64_t record = (uint64_t)(p - start - (ptrdiff_t)o->prepend);
        put(&p, "PK\6\6", 4);
        put64(&p, 44);
        put16(&p, 45);
        put16(&p, 45);
        put32(&p, 0);
        put32(&p, 0);
        put64(&p, (uint64_t)((int64_t)entries + o->zip64_count_shift));
        put64(&p, (uint64_t)((int64_t)entries + o->zip64_count_shift));
        put64(&p, directory_size);
        put64(&p, directory);
        put(&p, "PK\6\7", 4);
        put32(&p, 0);
        put64(&p, (uint64_t)((int64_t)record + o->locator_shift));
        put32(&p, 1);
    }
    bool marker = o->zip64 && !o->plain_count_in_zip64;
    put(&p, "PK\5\6", 4);
    put16(&p, o->disk);
    put16(&p, 0);
    put16(&p, marker ? 0xFFFF : (uint16_t)entries);
    put16(&p, marker ? 0xFFFF : (uint16_t)entries);
    put32(&p, o->zip64 ? 0xFFFFFFFF : (uint32_t)directory_size);
    put32(&p, o->zip64 ? 0xFFFFFFFF : (uint32_t)directory);
    size_t comment_length = o->comment ? strlen(o->comment) : 0;
    put16(&p, (uint16_t)comment_length);
    put(&p, o->comment ? o->comment : "", comment_length);
    char *path = strdup("/tmp/skopsfs-test-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, start, (size_t)(p - start)), p - start);
    close(fd);
    free(offsets);
    free(start);
    return path;
}

/* A stored member holding TEXT with its right CRC. */
static struct raw_member stored(const char *name, const char *text)
{
    size_t length = strlen(text);
    return (struct raw_member){.name = name,
                               .data = text,
                               .data_length = length,
                               .size = length,
                               .crc = (uint32_t)crc32(0L, (const Bytef *)text, (uInt)length)};
}

/* Raw DEFLATE of LENGTH bytes; sets *compressed_length. */
static unsigned char *deflate_raw(const void *data, size_t length, size_t *compressed_length)
{
    z_stream s = {0};
    assert_int_equal(deflateInit2(&s, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t capacity = deflateBound(&s, (uLong)length);
    unsigned char *out = malloc(capacity);
    s.next_in = (Bytef *)data;
    s.avail_in = (uInt)length;
    s.next_out = out;
    s.avail_out = (uInt)capacity;
    assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
    *compressed_length = capacity - s.avail_out;
    deflateEnd(&s);
    return out;
}

/* Opens the archive and expects it refused with a message holding WHAT. */
static void expect_refused(char *path, const char *what)
{
    struct sk_archive *archive = NULL;
    struct sk_error err = {0};
    int rc = sk_archive_open(path, &archive, &err);
    if (rc == 0 || strstr(err.message, what) == NULL)
        fail_msg("%s: wanted a refusal with '%s', got %d '%s'", path, what, rc, err.message);
    assert_non_null(strstr(err.message, path));
    unlink(path);
    free(path);
}

static struct sk_archive *expect_opens(const char *path)
{
    struct sk_archive *archive = NULL;
    struct sk_error err = {0};
    if (sk_archive_open(path, &archive, &err) != 0)
        fail_msg("%s: refused: %s", path, err.message);
    return archive;
}

static void reads_hand_built_archives_as_zipfile_does(void **state)
{
    (void)state;
    struct raw_member members[] = {stored("schema.json", "{}"), stored("a.npy", "hello")};
    const struct raw_options plain = {0}, commented = {.comment = "a comment"},
                             zip64 = {.zip64 = true};
    const struct raw_options *variants[] = {&plain, &commented, &zip64};
    for (size_t v = 0; v < 3; v++) {
        char *path = write_raw_zip(members, 2, variants[v]);
        struct sk_archive *archive = expect_opens(path);
        uint64_t index;
        assert_int_equal(sk_archive_find(archive, "a.npy", &index), 0);
        struct sk_error err = {0};
        assert_int_equal(sk_archive_verify(archive, index, &err), 0);
        char *data;
        size_t length;
        assert_int_equal(
            sk_store_read_member(sk_archive_store(archive), index, 100, &data, &length, &err), 0);
        assert_string_equal(data, "hello");
        sk_store_free_member(data, length);
        sk_archive_close(archive);
        unlink(path);
        free(path);
    }
}

static void refuses_ambiguous_end_records(void **state)
{
    (void)state;
    struct raw_member members[] = {stored("a.npy", "hello")};
    /* zipfile takes the last signature; one in the comment becomes "the"
     * end record, and its comment length cannot match. */
    char fake_end[23] = "PK\5\6";
    memset(fake_end + 4, 'x', 18);
    expect_refused(write_raw_zip(members, 1, &(struct raw_options){.comment = fake_end}),
                   "comment's length");
    /* One inside the central directory (a name) is a second end record. */
    struct raw_member spelled[] = {stored("PK\5\6.npy", "hello")};
    expect_refused(write_raw_zip(spelled, 1, &(struct raw_options){0}),
                   "second end of central directory");
    /* One inside member data (a nested .npz) is the member's business. */
    struct raw_member nested[] = {stored("a.npz", "PK\5\6 inner zip")};
    char *path = write_raw_zip(nested, 1, &(struct raw_options){0});
    sk_archive_close(expect_opens(path));
    unlink(path);
    free(path);
    expect_refused(write_raw_zip(members, 1, &(struct raw_options){.prepend = 100}),
                   "not where the end record says");
    expect_refused(write_raw_zip(members, 1, &(struct raw_options){.count_shift = 1}), "entries");
    struct raw_member long_names[] = {
        stored("a-name-long-enough-that-the-directory-could-hold-two.npy", "x"),
        stored("b-name-long-enough-that-the-directory-could-hold-two.npy", "y")};
    expect_refused(write_raw_zip(long_names, 2, &(struct raw_options){.count_shift = 1}),
                   "holds 2 entries, its end record counts 3");
    expect_refused(write_raw_zip(long_names, 2, &(struct raw_options){.count_shift = -1}),
                   "more entries than");
    expect_refused(write_raw_zip(members, 1, &(struct raw_options){.disk = 1}), "multi-disk");
    expect_refused(
        write_raw_zip(members, 1, &(struct raw_options){.zip64 = true, .locator_shift = -8}),
        "ZIP64 locator points at");
    expect_refused(write_raw_zip(members, 1,
                                 &(struct raw_options){.zip64 = true,
                                                       .plain_count_in_zip64 = true,
                                                       .zip64_count_shift = 1}),
                   "disagree");
    expect_refused(
        write_raw_zip(members, 1, &(struct raw_options){.zip64 = true, .zip64_count_shift = 1}),
        "entries");
}

static void refuses_ambiguous_names(void **state)
{
    (void)state;
    const struct raw_options o = {0};
    struct raw_member m = stored("a\0b.npy", "x");
    m.name_length = 7;
    expect_refused(write_raw_zip(&m, 1, &o), "NUL");
    m = stored("dir\\a.npy", "x");
    expect_refused(write_raw_zip(&m, 1, &o), "backslash");
    m = stored("caf\xc3\xa9.npy", "x");
    expect_refused(write_raw_zip(&m, 1, &o), "without the UTF-8 flag");
    m.flags = 0x800;
    char *path = write_raw_zip(&m, 1, &o);
    sk_archive_close(expect_opens(path));
    unlink(path);
    free(path);
    m = stored("bad\xc3(.npy", "x");
    m.flags = 0x800;
    expect_refused(write_raw_zip(&m, 1, &o), "not valid UTF-8");
    struct raw_member twins[] = {stored("a.npy", "x"), stored("a.npy", "y")};
    expect_refused(write_raw_zip(twins, 2, &o), "two members are named 'a.npy'");
    /* An Info-ZIP Unicode Path field that zipfile 3.12+ would apply. */
    m = stored("old.npy", "x");
    unsigned char extra[4 + 5 + 7] = {0x75, 0x70, 12, 0, 1};
    uint32_t crc = (uint32_t)crc32(0L, (const Bytef *)"old.npy", 7);
    memcpy(extra + 5, &crc, 4);
    memcpy(extra + 9, "new.npy", 7);
    m.extra = extra;
    m.extra_length = sizeof extra;
    expect_refused(write_raw_zip(&m, 1, &o), "renamed 'new.npy'");
    memcpy(extra + 9, "old.npy", 7); /* naming the same name is harmless */
    path = write_raw_zip(&m, 1, &o);
    sk_archive_close(expect_opens(path));
    unlink(path);
    free(path);
    m = stored("a.npy", "x");
    m.extract_version = 64;
    expect_refused(write_raw_zip(&m, 1, &o), "zip version");
}

static void refuses_overlapping_members(void **state)
{
    (void)state;
    const struct raw_options o = {0};
    struct raw_member two[] = {stored("a.npy", "hello"), stored("b.npy", "world")};
    two[1].offset_shift = -40; /* b's header "inside" a's */
    expect_refused(write_raw_zip(two, 2, &o), "overlap");
    /* a directory out of the members' order is taken in their order */
    const struct raw_options reversed = {.reversed_directory = true};
    expect_refused(write_raw_zip(two, 2, &reversed), "overlap");
    struct raw_member three[] = {stored("a.npy", "hello"), stored("b.npy", "world"),
                                 stored("c.npy", "again")};
    char *path = write_raw_zip(three, 3, &reversed);
    struct sk_archive *archive = expect_opens(path);
    uint64_t index;
    assert_int_equal(sk_archive_find(archive, "a.npy", &index), 0);
    assert_int_equal(index, 2);
    sk_archive_close(archive);
    unlink(path);
    free(path);
    struct raw_member one[] = {stored("a.npy", "hello")};
    one[0].data_length = 3; /* declared 3 bytes, 2 more lie before the directory */
    one[0].size = 3;
    path = write_raw_zip(one, 1, &o);
    sk_archive_close(expect_opens(path)); /* a gap: zipfile reads it too */
    unlink(path);
    free(path);
}

static void refuses_a_local_header_that_disagrees(void **state)
{
    (void)state;
    struct raw_member m = stored("a.npy", "hello");
    m.local_name = "b.npy";
    char *path = write_raw_zip(&m, 1, &(struct raw_options){0});
    struct sk_archive *archive = expect_opens(path);
    struct sk_reader *reader;
    struct sk_error err = {0};
    assert_int_equal(sk_reader_open(archive, 0, &reader, &err), -1);
    assert_non_null(strstr(err.message, "local header differs"));
    sk_archive_close(archive);
    unlink(path);
    free(path);
}

/* The headers read ahead (each with the bytes after it, where its
 * neighbours' headers lie) answer as each open does: good ones known, with
 * the same bytes behind them; a bad one, or one that runs past the bytes
 * read with another, left for its own read or its open, which says why. */
static void headers_read_ahead_answer_as_each_open_does(void **state)
{
    (void)state;
    char long_name[700];
    memset(long_name, 'n', sizeof long_name - 5);
    memcpy(long_name + sizeof long_name - 5, ".npy", 5); /* runs past a neighbour's read */
    const char *texts[] = {"a", "bb", "ccc", "dddd", "eeeee", "ffffff", "g", "hh"};
    struct raw_member m[8];
    char names[8][8];
    for (size_t i = 0; i < 8; i++) {
        snprintf(names[i], sizeof names[i], "%zu.npy", i);
        m[i] = stored(names[i], texts[i]);
    }
    m[3].local_name = "x.npy"; /* among good neighbours read together */
    m[5].name = long_name;
    char *path = write_raw_zip(m, 8, &(struct raw_options){0});
    struct sk_archive *archive = expect_opens(path);
    sk_store_prepare_opens(sk_archive_store(archive));
    for (uint64_t i = 0; i < 8; i++) {
        struct sk_reader *reader;
        struct sk_error err = {0};
        if (i == 3) {
            assert_int_equal(sk_reader_open(archive, i, &reader, &err), -1);
            assert_non_null(strstr(err.message, "local header differs"));
            continue;
        }
        assert_int_equal(sk_reader_open(archive, i, &reader, &err), 0);
        char bytes[8] = {0};
        assert_int_equal(sk_reader_pread(reader, bytes, strlen(texts[i]), 0, &err),
                         (ssize_t)strlen(texts[i]));
        assert_string_equal(bytes, texts[i]);
        sk_reader_close(reader);
    }
    sk_archive_close(archive);
    unlink(path);
    free(path);
}

/* A member opened before its local header was read has the header and its
 * first bytes read at once. Every read must give the member's own bytes:
 * after a short local extra field or one longer than what is read with
 * the header, from the bytes read with it and from the file past them, and
 * a member whose bytes are bad still fails as it did. */
static void reads_a_header_and_first_bytes_at_once(void **state)
{
    (void)state;
    enum { SMALL = 3000, EXTRAS = 3 };
    unsigned char *text = pattern(SMALL);
    const size_t extras[EXTRAS] = {0, 40, 300};
    struct raw_member m[EXTRAS + 1];
    char names[EXTRAS][16];
    for (size_t i = 0; i < EXTRAS; i++) {
        snprintf(names[i], sizeof names[i], "%zu.npy", i);
        m[i] = (struct raw_member){.name = names[i],
                                   .data = text,
                                   .data_length = SMALL,
                                   .size = SMALL,
                                   .crc = (uint32_t)crc32(0L, text, SMALL),
                                   .local_extra_length = extras[i]};
    }
    m[EXTRAS] = stored("bad.npy", "hello");
    m[EXTRAS].crc ^= 1;
    m[EXTRAS].local_extra_length = 20;
    char *path = write_raw_zip(m, EXTRAS + 1, &(struct raw_options){0});
    const uint64_t spans[][2] = {{0, 512}, {100, 900}, {1000, 100}, {2990, 10}, {0, SMALL}};
    for (int verified = 0; verified < 2; verified++) {
        struct sk_archive *archive = expect_opens(path);
        struct sk_error err = {0};
        for (uint64_t i = 0; i < EXTRAS; i++) {
            struct sk_reader *reader;
            int rc = verified ? sk_reader_open(archive, i, &reader, &err)
                              : sk_reader_open_unverified(archive, i, &reader, &err);
            assert_int_equal(rc, 0);
            unsigned char bytes[SMALL];
            for (size_t s = 0; s < sizeof spans / sizeof *spans; s++) {
                uint64_t at = spans[s][0], length = spans[s][1];
                assert_int_equal(sk_reader_pread(reader, bytes, length, at, &err), (ssize_t)length);
                assert_memory_equal(bytes, text + at, length);
            }
            assert_int_equal(sk_archive_verify(archive, i, &err), 0);
            sk_reader_close(reader);
        }
        struct sk_reader *reader;
        if (verified) {
            assert_int_equal(sk_reader_open(archive, EXTRAS, &reader, &err), -1);
            assert_non_null(strstr(err.message, "integrity"));
        } else {
            assert_int_equal(sk_reader_open_unverified(archive, EXTRAS, &reader, &err), 0);
            char bytes[8];
            assert_int_equal(sk_reader_pread(reader, bytes, 5, 0, &err), -1);
            assert_non_null(strstr(err.message, "integrity"));
            sk_reader_close(reader);
        }
        sk_archive_close(archive);
    }
    unlink(path);
    free(path);
    free(text);
}

static void refuses_unsupported_members(void **state)
{
    (void)state;
    struct raw_member m[] = {stored("e.npy", "hello"), stored("m.npy", "hello")};
    m[0].flags = 1;
    m[1].method = 12;
    char *path = write_raw_zip(m, 2, &(struct raw_options){0});
    struct sk_archive *archive = expect_opens(path);
    struct sk_error err = {0};
    assert_int_equal(sk_archive_check_member(archive, 0, &err), -1);
    assert_non_null(strstr(err.message, "encrypted"));
    sk_error_clear(&err);
    assert_int_equal(sk_archive_check_member(archive, 1, &err), -1);
    assert_non_null(strstr(err.message, "method 12"));
    sk_archive_close(archive);
    unlink(path);
    free(path);
}

/* The member fails at open, at verify and at every read, and stays bad. */
static void expect_bad_member(const struct raw_member *m)
{
    char *path = write_raw_zip(m, 1, &(struct raw_options){0});
    struct sk_archive *archive = expect_opens(path);
    struct sk_reader *reader;
    struct sk_error err = {0};
    if (sk_reader_open(archive, 0, &reader, &err) != -1)
        fail_msg("%s: a bad member opened", m->name);
    assert_non_null(strstr(err.message, "integrity"));
    sk_error_clear(&err);
    assert_int_equal(sk_archive_verify(archive, 0, &err), -1);
    sk_error_clear(&err);
    assert_int_equal(sk_reader_open_unverified(archive, 0, &reader, &err), -1);
    char *data;
    size_t length;
    sk_error_clear(&err);
    assert_int_equal(
        sk_store_read_member(sk_archive_store(archive), 0, 1 << 20, &data, &length, &err), -1);
    sk_archive_close(archive);
    unlink(path);
    free(path);
}

static void never_serves_a_member_with_bad_bytes(void **state)
{
    (void)state;
    struct raw_member m = stored("stored.npy", "hello");
    m.crc ^= 1;
    expect_bad_member(&m);

    unsigned char *text = pattern(100000);
    uint32_t crc = (uint32_t)crc32(0L, text, 100000);
    size_t packed_length;
    unsigned char *packed = deflate_raw(text, 100000, &packed_length);
    m = (struct raw_member){.name = "deflated.npy",
                            .method = 8,
                            .data = packed,
                            .data_length = packed_length,
                            .size = 100000,
                            .crc = crc ^ 1};
    expect_bad_member(&m); /* CRC mismatch */
    m.crc = crc;
    m.size = 100001; /* the stream ends before the declared size */
    expect_bad_member(&m);
    m.size = 99999; /* the stream is longer than declared */
    m.crc = (uint32_t)crc32(0L, text, 99999);
    expect_bad_member(&m);
    m.size = 100000; /* compressed bytes end early */
    m.crc = crc;
    m.data_length = packed_length - 10;
    expect_bad_member(&m);
    m.data_length = packed_length; /* all right after all */
    char *path = write_raw_zip(&m, 1, &(struct raw_options){0});
    struct sk_archive *archive = expect_opens(path);
    struct sk_error err = {0};
    assert_int_equal(sk_archive_verify(archive, 0, &err), 0);
    sk_archive_close(archive);
    unlink(path);
    free(path);
    free(packed);
    free(text);
}

/* Above SK_VERIFY_AT_OPEN_BYTES a member opens unchecked; its first read in
 * order to the end finds it bad, and every read after that fails. */
static void finds_a_large_bad_member_by_reading_it(void **state)
{
    (void)state;
    size_t size = (size_t)SK_VERIFY_AT_OPEN_BYTES + 4096;
    unsigned char *zeros = calloc(1, size);
    struct raw_member m = {
        .name = "big.npy", .data = zeros, .data_length = size, .size = size, .crc = 12345};
    char *path = write_raw_zip(&m, 1, &(struct raw_options){0});
    struct sk_archive *archive = expect_opens(path);
    struct sk_reader *reader;
    struct sk_error err = {0};
    assert_int_equal(sk_reader_open(archive, 0, &reader, &err), 0);
    unsigned char *buffer = malloc(1 << 20);
    ssize_t got = 0;
    for (uint64_t offset = 0; offset < size; offset += (uint64_t)got) {
        got = sk_reader_pread(reader, buffer, 1 << 20, offset, &err);
        if (got < 0)
            break;
    }
    assert_int_equal(got, -1);
    assert_non_null(strstr(err.message, "integrity"));
    sk_error_clear(&err);
    assert_int_equal(sk_reader_pread(reader, buffer, 10, 0, &err), -1);
    int fd;
    uint64_t offset;
    assert_false(sk_reader_stored_extent(reader, &fd, &offset)); /* no splicing either */
    sk_reader_close(reader);
    sk_archive_close(archive);
    unlink(path);
    free(path);
    free(buffer);
    free(zeros);
}

/* The one member "a.npy" holding "hello" (30-byte local header and its
 * 5-byte name before it) rewritten in place: same size, same inode, other
 * bytes. */
static void rewrite_hello(const char *path)
{
    FILE *f = fopen(path, "r+");
    assert_non_null(f);
    fseek(f, 30 + 5, SEEK_SET);
    fputs("jello", f);
    fclose(f);
}

static void notices_the_archive_rewritten_in_place(void **state)
{
    (void)state;
    struct raw_member m = stored("a.npy", "hello");
    char *path = write_raw_zip(&m, 1, &(struct raw_options){0});
    struct sk_archive *archive = expect_opens(path);
    struct sk_error err = {0};
    assert_int_equal(sk_archive_check_unchanged(archive, &err), 0);
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    rewrite_hello(path);
    assert_int_equal(sk_archive_check_unchanged(archive, &err), -1);
    assert_non_null(strstr(err.message, "changed"));
    sk_archive_close(archive);
    unlink(path);
    free(path);
}

/* A member read whole takes along the bytes after it, and keeps the data
 * offsets of the members whose local headers lie there. Whatever the order
 * of opens, each must give its own bytes: beside a member of 1,500 bytes,
 * a tiny one, one whose local header disagrees, one with a long local
 * extra field, one with a bad CRC, a DEFLATE one and the last before the
 * central directory. A header that disagrees or bad bytes still fail as
 * they do alone. */
static void reads_along_give_each_member_its_own_bytes(void **state)
{
    (void)state;
    enum { COUNT = 8, BAD_HEADER = 3, BAD_CRC = 5, DEFLATED = 6 };
    const size_t sizes[COUNT] = {3000, 1500, 5, 7, 900, 4, 2000, 10};
    unsigned char *text = pattern(9000);
    struct raw_member m[COUNT];
    char names[COUNT][16];
    unsigned char *packed = NULL;
    size_t starts[COUNT], at = 0;
    for (size_t i = 0; i < COUNT; at += sizes[i], i++) {
        starts[i] = at;
        snprintf(names[i], sizeof names[i], "%zu.npy", i);
        m[i] = (struct raw_member){.name = names[i],
                                   .data = text + at,
                                   .data_length = sizes[i],
                                   .size = sizes[i],
                                   .crc = (uint32_t)crc32(0L, text + at, (uInt)sizes[i])};
    }
    m[BAD_HEADER].local_name = "x.npy";
    m[4].local_extra_length = 300;
    m[BAD_CRC].crc ^= 1;
    size_t packed_length;
    packed = deflate_raw(m[DEFLATED].data, sizes[DEFLATED], &packed_length);
    m[DEFLATED].method = 8; /* DEFLATE */
    m[DEFLATED].data = packed;
    m[DEFLATED].data_length = packed_length;
    char *path = write_raw_zip(m, COUNT, &(struct raw_options){0});
    const uint64_t forward[COUNT] = {0, 1, 2, 3, 4, 5, 6, 7},
                   backward[COUNT] = {7, 6, 5, 4, 3, 2, 1, 0},
                   skipping[COUNT] = {0, 2, 4, 6, 1, 3, 5, 7};
    const uint64_t *orders[] = {forward, backward, skipping};
    for (int verified = 0; verified < 2; verified++) {
        for (size_t o = 0; o < sizeof orders / sizeof *orders; o++) {
            struct sk_archive *archive = expect_opens(path);
            for (size_t k = 0; k < COUNT; k++) {
                uint64_t i = orders[o][k];
                struct sk_reader *reader;
                struct sk_error err = {0};
                int rc = verified ? sk_reader_open(archive, i, &reader, &err)
                                  : sk_reader_open_unverified(archive, i, &reader, &err);
                if (i == BAD_HEADER) {
                    assert_int_equal(rc, -1);
                    assert_non_null(strstr(err.message, "local header differs"));
                    assert_int_equal(sk_store_check_open(sk_archive_store(archive), i, &err), -1);
                    continue;
                }
                if (i == BAD_CRC && verified) {
                    assert_int_equal(rc, -1);
                    assert_non_null(strstr(err.message, "integrity"));
                    continue;
                }
                assert_int_equal(rc, 0);
                assert_int_equal(sk_store_check_open(sk_archive_store(archive), i, &err), 0);
                unsigned char bytes[3000];
                ssize_t got = sk_reader_pread(reader, bytes, sizes[i], 0, &err);
                if (i == BAD_CRC) {
                    assert_int_equal(got, -1);
                    assert_non_null(strstr(err.message, "integrity"));
                } else {
                    assert_int_equal(got, (ssize_t)sizes[i]);
                    assert_memory_equal(bytes, text + starts[i], sizes[i]);
                }
                sk_reader_close(reader);
            }
            sk_archive_close(archive);
        }
    }
    unlink(path);
    free(path);
    free(packed);
    free(text);
}

/* Finds guess the entry after the last one found: each name must still
 * find its own entry, and a name that is not there none, in any order. */
static void finds_each_name_in_any_order(void **state)
{
    (void)state;
    static const char *names[] = {"m0", "m1", "m10", "m2", "m3", "m30", "m4"};
    enum { COUNT = sizeof names / sizeof *names };
    struct test_member members[COUNT];
    for (size_t i = 0; i < COUNT; i++)
        members[i] = (struct test_member){names[i], names[i], strlen(names[i]), false};
    struct sk_archive *archive;
    struct sk_error err = {0};
    char *path = test_make_zip(members, COUNT);
    assert_int_equal(sk_archive_open(path, &archive, &err), 0);
    uint64_t index;
    struct sk_member_info info;
    static const char *asked[] = {"m0",  "m1", "m2", "m3", "m4",  "m4", "m30",
                                  "m10", "m3", "m0", "m1", "m10", "m2"};
    for (size_t i = 0; i < sizeof asked / sizeof *asked; i++) {
        assert_int_equal(sk_archive_find(archive, asked[i], &index), 0);
        sk_archive_member_info(archive, index, &info);
        assert_string_equal(info.name, asked[i]);
    }
    /* where the guess stands, a name it is not, nor a prefix of it */
    static const char *absent[] = {"m", "m1x", "m30x", "m300", "M30", ""};
    for (size_t i = 0; i < sizeof absent / sizeof *absent; i++) {
        assert_int_equal(sk_archive_find(archive, "m3", &index), 0);
        assert_int_equal(sk_archive_find(archive, absent[i], &index), -1);
    }
    sk_archive_close(archive);
    unlink(path);
    free(path);
}

/* A small member is read whole at open and checked: its reader serves
 * those bytes even after the file changes in place (and never splices the
 * file; it lends them to be read in place), and a reader opened after the
 * change refuses the new bytes. */
static void serves_a_small_member_from_the_bytes_it_checked(void **state)
{
    (void)state;
    struct raw_member m = stored("a.npy", "hello");
    char *path = write_raw_zip(&m, 1, &(struct raw_options){0});
    struct sk_archive *archive = expect_opens(path);
    struct sk_error err = {0};
    struct sk_reader *held, *unverified;
    assert_int_equal(sk_reader_open(archive, 0, &held, &err), 0);
    assert_int_equal(sk_reader_open_unverified(archive, 0, &unverified, &err), 0);
    int fd;
    uint64_t offset;
    assert_false(sk_reader_stored_extent(held, &fd, &offset));
    assert_true(sk_reader_stored_extent(unverified, &fd, &offset));
    /* the checked bytes, to read in place; none where nothing is held */
    const char *in_place = sk_source_held((const struct sk_source *)held);
    assert_non_null(in_place);
    assert_null(sk_source_held((const struct sk_source *)unverified));
    rewrite_hello(path);
    assert_memory_equal(in_place, "hello", 5);
    char bytes[8] = {0};
    assert_int_equal(sk_reader_pread(held, bytes, sizeof bytes, 0, &err), 5);
    assert_memory_equal(bytes, "hello", 5);
    assert_int_equal(sk_reader_pread(held, bytes, sizeof bytes, 3, &err), 2);
    assert_memory_equal(bytes, "lo", 2);
    assert_int_equal(sk_reader_pread(held, bytes, sizeof bytes, 5, &err), 0);
    struct sk_reader *late;
    assert_int_equal(sk_reader_open(archive, 0, &late, &err), -1);
    assert_non_null(strstr(err.message, "no longer matches"));
    sk_reader_close(unverified);
    sk_reader_close(held);
    sk_archive_close(archive);
    unlink(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_stored_and_deflated_members),
        cmocka_unit_test(finds_each_name_in_any_order),
        cmocka_unit_test(serves_a_small_member_from_the_bytes_it_checked),
        cmocka_unit_test(reads_whole_member_with_a_limit),
        cmocka_unit_test(rejects_what_is_not_a_zip),
        cmocka_unit_test(rejects_truncated_archive),
        cmocka_unit_test(reads_hand_built_archives_as_zipfile_does),
        cmocka_unit_test(refuses_ambiguous_end_records),
        cmocka_unit_test(refuses_ambiguous_names),
        cmocka_unit_test(refuses_overlapping_members),
        cmocka_unit_test(refuses_a_local_header_that_disagrees),
        cmocka_unit_test(headers_read_ahead_answer_as_each_open_does),
        cmocka_unit_test(reads_a_header_and_first_bytes_at_once),
        cmocka_unit_test(reads_along_give_each_member_its_own_bytes),
        cmocka_unit_test(refuses_unsupported_members),
        cmocka_unit_test(never_serves_a_member_with_bad_bytes),
        cmocka_unit_test(finds_a_large_bad_member_by_reading_it),
        cmocka_unit_test(notices_the_archive_rewritten_in_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
