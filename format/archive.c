#include "archive.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "crc32.h"
#include "grow.h"
#include "sk_limits.h"
#include "zipdir.h"

/* Spacing of DEFLATE seek points in uncompressed bytes. Each costs a 32 KiB
 * window; 1 MiB spacing keeps a 1 GiB member's index at 32 MiB and bounds a
 * random read to inflating 1 MiB. */
#define SK_INFLATE_SPACING (1u << 20)
#define SK_INFLATE_WINDOW 32768u
#define SK_INFLATE_INPUT_CHUNK 65536u
#define SK_READER_CURSORS 4
/* Verification reads the member in chunks of this size. */
#define SK_VERIFY_CHUNK (1u << 20)
/* Not yet known: the offset of a member's data before its local header is
 * read; the end of a reader's in-order CRC once reads went out of order. */
#define SK_UNKNOWN UINT64_MAX
/* Read past a local header's name with the header, for its extra field:
 * zipfile writes none, or a zip64 one of 20 bytes. */
#define LOCAL_EXTRA_ROOM 64u
/* A member's first bytes read with its header where the open will not
 * hold it whole: room for a .npy header, what such opens read first. */
#define LEAD_BYTES 1024u
/* How far a read of a member's last bytes reaches past them, for the local
 * headers of the members after it: a tree's small members lie together,
 * and a call costs about as much as copying 10 KB here. */
#define NEIGHBOUR_BYTES 2048u

enum member_state { MEMBER_UNKNOWN, MEMBER_GOOD, MEMBER_BAD };

struct seek_point {
    uint64_t out; /* uncompressed offset */
    uint64_t in;  /* compressed offset of the first byte not yet consumed */
    int bits;     /* bits of the byte before IN still to be consumed */
    unsigned char window[SK_INFLATE_WINDOW];
};

struct member {
    const struct sk_zip_entry *entry; /* name, sizes, method, CRC */
    char *name;
    uint64_t size;
    uint64_t comp_size;
    uint16_t method;
    _Atomic uint64_t data_offset; /* SK_UNKNOWN until the local header is read */
    /* Whether the bytes match the CRC-32 and the declared lengths, shared
     * by all readers: once bad, never served again. */
    _Atomic int state;
    /* Seek points of a DEFLATE member, shared by all its readers. */
    pthread_mutex_t points_lock;
    struct seek_point **points;
    size_t point_count;
    size_t point_capacity;
};

struct sk_archive {
    struct sk_store store; /* first: the archive is a store */
    char *path;
    int fd;
    struct stat file_stat;
    struct sk_zip_directory directory;
    uint64_t member_count;
    struct member *members;
};

/* One position in a DEFLATE stream. */
struct cursor {
    z_stream stream;
    bool stream_ready;
    uint64_t out_position; /* uncompressed bytes produced so far */
    uint64_t in_position;  /* compressed bytes fed so far */
    unsigned char *input;
    unsigned char *window; /* circular: byte k of output is window[k % size] */
    bool finished;
    /* A cursor that started at the member's first byte sees every byte, so
     * it checks the CRC-32 and the stream's end on the way. */
    bool checking;
    uint32_t crc;
    uint64_t last_used;
};

struct sk_reader {
    struct sk_source source; /* first: a reader is a source */
    struct sk_archive *archive;
    struct member *member;
    /* Several cursors, so that reads arriving slightly out of order (the
     * kernel's readahead, several threads) each continue one. */
    struct cursor cursors[SK_READER_CURSORS];
    uint64_t clock;
    /* A stored member read in order from its start gets its CRC-32 checked
     * on the way: the next offset expected, or SK_UNKNOWN. */
    uint64_t stored_checked_to;
    uint32_t stored_crc;
    /* A small member's bytes, read whole and checked at open, from which
     * every read is then served: the bytes handed out are the bytes whose
     * CRC-32 matched, whatever happens to the file later. */
    const unsigned char *held;
    /* A stored member's first bytes, read in the same system call as its
     * local header where its data offset was not known yet (the content
     * checks open thousands of small members, and a call costs about as
     * much as copying 10 KB here): reads that lie wholly inside them are
     * served from them. */
    const unsigned char *lead;
    size_t lead_length;
    unsigned char *block; /* what HELD or LEAD point into, to free */
};

/* Bytes held by all readers at once (SK_MAX_HELD_BYTES). */
static _Atomic uint64_t held_total;

static const struct sk_store_ops zip_store_ops;
static const struct sk_source_ops zip_source_ops;

static void free_members(struct sk_archive *archive)
{
    for (uint64_t i = 0; i < archive->member_count; i++) {
        struct member *m = &archive->members[i];
        for (size_t p = 0; p < m->point_count; p++)
            free(m->points[p]);
        free(m->points);
        pthread_mutex_destroy(&m->points_lock);
    }
    free(archive->members);
}

void sk_archive_close(struct sk_archive *archive)
{
    if (archive == NULL)
        return;
    if (archive->members != NULL)
        free_members(archive);
    sk_zipdir_free(&archive->directory);
    if (archive->fd >= 0)
        close(archive->fd);
    free(archive->path);
    free(archive);
}

static int load_members(struct sk_archive *archive, struct sk_error *err)
{
    const struct sk_zip_directory *dir = &archive->directory;
    archive->members = calloc((size_t)(dir->count ? dir->count : 1), sizeof *archive->members);
    if (archive->members == NULL)
        return sk_fail_code(err, ENOMEM, "out of memory");
    archive->member_count = dir->count;
    for (uint64_t i = 0; i < dir->count; i++) {
        struct member *m = &archive->members[i];
        const struct sk_zip_entry *e = &dir->entries[i];
        pthread_mutex_init(&m->points_lock, NULL);
        m->entry = e;
        m->name = e->name;
        m->size = e->size;
        m->comp_size = e->comp_size;
        m->method = e->method;
        atomic_init(&m->data_offset, SK_UNKNOWN);
        atomic_init(&m->state, MEMBER_UNKNOWN);
    }
    return 0;
}

/* O_NONBLOCK so that opening a FIFO does not wait for a writer; nothing is
 * read before fstat says the file is a regular one. */
static int open_regular_file(struct sk_archive *archive, const char *path, struct sk_error *err)
{
    archive->fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (archive->fd < 0 || fstat(archive->fd, &archive->file_stat) != 0) {
        int code = errno;
        return sk_fail_code(err, code, "%s: %s", path, strerror(code));
    }
    if (!S_ISREG(archive->file_stat.st_mode))
        return sk_fail(err, "%s: not a regular file", path);
    int flags = fcntl(archive->fd, F_GETFL);
    if (flags < 0 || fcntl(archive->fd, F_SETFL, flags & ~O_NONBLOCK) != 0)
        return sk_fail(err, "%s: %s", path, strerror(errno));
    return 0;
}

int sk_archive_open(const char *path, struct sk_archive **out, struct sk_error *err)
{
    *out = NULL;
    struct sk_archive *archive = calloc(1, sizeof *archive);
    if (archive == NULL)
        return sk_fail_code(err, ENOMEM, "%s: out of memory", path);
    archive->store.ops = &zip_store_ops;
    archive->fd = -1;
    archive->path = strdup(path);
    if (archive->path == NULL) {
        sk_fail_code(err, ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    if (open_regular_file(archive, path, err) != 0)
        goto fail;
    if (sk_zipdir_read(archive->fd, (uint64_t)archive->file_stat.st_size, &archive->directory,
                       err) != 0) {
        sk_error_prefix(err, "%s: ", path);
        goto fail;
    }
    if (load_members(archive, err) != 0) {
        sk_error_prefix(err, "%s: ", path);
        goto fail;
    }
    *out = archive;
    return 0;
fail:
    sk_archive_close(archive);
    return -1;
}

struct timespec sk_archive_mtime(const struct sk_archive *archive)
{
    return archive->file_stat.st_mtim;
}

uint64_t sk_archive_file_size(const struct sk_archive *archive)
{
    return (uint64_t)archive->file_stat.st_size;
}

uint64_t sk_archive_member_count(const struct sk_archive *archive)
{
    return archive->member_count;
}

int sk_archive_find(const struct sk_archive *archive, const char *name, uint64_t *index)
{
    /* Names hold no NUL (zipdir refuses them), so NAME's length is exact. */
    return sk_zipdir_find(&archive->directory, name, strlen(name), index);
}

void sk_archive_member_info(const struct sk_archive *archive, uint64_t index,
                            struct sk_member_info *info)
{
    const struct member *m = &archive->members[index];
    info->name = m->name;
    info->size = m->size;
    info->comp_size = m->comp_size;
    info->compressed = m->method != SK_ZIP_STORED;
}

static int same_time(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

int sk_archive_check_unchanged(const struct sk_archive *archive, struct sk_error *err)
{
    struct stat now;
    if (fstat(archive->fd, &now) != 0)
        return sk_fail_code(err, EIO, "%s: %s", archive->path, strerror(errno));
    const struct stat *then = &archive->file_stat;
    /* Replacing the file by rename unlinks the audited one, which changes
     * only its ctime (and link count): that file is still what we serve. */
    bool renamed_away = now.st_nlink == 0;
    if (now.st_size != then->st_size || now.st_ino != then->st_ino || now.st_dev != then->st_dev ||
        !same_time(now.st_mtim, then->st_mtim) ||
        (!renamed_away && !same_time(now.st_ctim, then->st_ctim)))
        return sk_fail_code(err, EIO,
                            "%s: the archive was changed after it was audited; its bytes are no "
                            "longer served (remount to audit it again)",
                            archive->path);
    return 0;
}

/* Threads that meet an unknown offset at once each read the header,
 * without a lock (a lock made the content checks' threads queue on every
 * member): the first offset stored stands, as the first verdict on a
 * member's bytes does. */
static void keep_data_offset(struct member *m, uint64_t offset)
{
    uint64_t expected = SK_UNKNOWN;
    atomic_compare_exchange_strong(&m->data_offset, &expected, offset);
}

/* E's local header checked in LENGTH bytes read from it on: 0 and *OFFSET
 * where good, 1 where the bytes are too few, -1 where bad. Its message is
 * dropped: the open that reads the header alone gives it. */
static int header_read_ahead(const struct sk_zip_entry *e, unsigned char *bytes, size_t length,
                             uint64_t *offset)
{
    struct sk_error ignored;
    sk_error_clear(&ignored);
    return sk_zipdir_local_header_in(e, bytes, length, offset, &ignored);
}

/* Reads the member's local header to learn where its data starts. */
static int probe_data_offset(struct sk_archive *archive, struct member *m, struct sk_error *err)
{
    if (atomic_load(&m->data_offset) != SK_UNKNOWN)
        return 0;
    uint64_t offset;
    if (sk_zipdir_local_header(archive->fd, m->entry, &offset, err) != 0)
        return -1;
    keep_data_offset(m, offset);
    return 0;
}

int sk_archive_check_member(const struct sk_archive *archive, uint64_t index, struct sk_error *err)
{
    struct member *m = &archive->members[index];
    uint16_t flags = m->entry->flags;
    if (flags &
        (SK_ZIP_FLAG_ENCRYPTED | SK_ZIP_FLAG_STRONG_ENCRYPTION | SK_ZIP_FLAG_ENCRYPTED_DIRECTORY))
        return sk_fail(err, "member '%s' is encrypted; skopsfs does not decrypt", m->name);
    if (flags & SK_ZIP_FLAG_PATCHED)
        return sk_fail(err, "member '%s' is compressed patch data, which zipfile refuses", m->name);
    if (m->method != SK_ZIP_STORED && m->method != SK_ZIP_DEFLATED)
        return sk_fail(
            err, "member '%s' uses compression method %u; only stored and DEFLATE are supported",
            m->name, m->method);
    if (m->size > SK_MAX_MEMBER_BYTES)
        return sk_fail_code(
            err, E2BIG,
            "member '%s' declares %llu bytes, more than the limit (SK_MAX_MEMBER_BYTES)", m->name,
            (unsigned long long)m->size);
    if (m->comp_size > (uint64_t)archive->file_stat.st_size)
        return sk_fail(err, "member '%s' declares %llu bytes, more than the whole archive holds",
                       m->name, (unsigned long long)m->comp_size);
    if (m->method == SK_ZIP_STORED && m->comp_size != m->size)
        return sk_fail(err, "member '%s' is stored but declares %llu bytes in %llu", m->name,
                       (unsigned long long)m->size, (unsigned long long)m->comp_size);
    if (m->method == SK_ZIP_DEFLATED && m->size / SK_MAX_COMPRESSION_RATIO > m->comp_size)
        return sk_fail_code(
            err, E2BIG,
            "member '%s' declares a compression ratio above %u:1 (SK_MAX_COMPRESSION_RATIO)",
            m->name, SK_MAX_COMPRESSION_RATIO);
    return 0;
}

static int fail_bad(const struct member *m, struct sk_error *err)
{
    return sk_fail_code(err, EIO,
                        "member '%s' fails its integrity check (CRC-32 or length): its bytes are "
                        "not served",
                        m->name);
}

/* Records a definite verdict on the member's bytes; the first one stays. */
static int settle(struct member *m, bool good, struct sk_error *err)
{
    int expected = MEMBER_UNKNOWN;
    atomic_compare_exchange_strong(&m->state, &expected, good ? MEMBER_GOOD : MEMBER_BAD);
    return atomic_load(&m->state) == MEMBER_GOOD ? 0 : fail_bad(m, err);
}

/* How many bytes past READ_END a read of M's last bytes should take along
 * (NEIGHBOUR_BYTES, up to the central directory), or 0 where no member
 * follows it. */
static size_t neighbour_room(const struct sk_archive *archive, const struct member *m,
                             uint64_t read_end)
{
    uint64_t directory = archive->directory.start;
    if (m->entry->next_in_file == SK_ZIP_NO_ENTRY || read_end >= directory)
        return 0;
    return directory - read_end < NEIGHBOUR_BYTES ? (size_t)(directory - read_end)
                                                  : NEIGHBOUR_BYTES;
}

/* BYTES, LENGTH of them read from the file at START, lie just past the data
 * of M: learns the data offsets of the members whose local headers they
 * hold whole, as prepare_opens would, so that it reads nothing for them.
 * (Keeping the next member's first bytes for its open too saved a read a
 * tree but cost more: 1,600 small blocks kept among the trees' big ones
 * made a checked audit of real skops's forest take 6 ms more CPU.) */
static void take_neighbours(struct sk_archive *archive, const struct member *m,
                            unsigned char *bytes, uint64_t start, size_t length)
{
    for (uint64_t i = m->entry->next_in_file; i != SK_ZIP_NO_ENTRY;) {
        struct member *n = &archive->members[i];
        uint64_t at = n->entry->header_offset, offset;
        if (at < start || at - start >= length ||
            header_read_ahead(n->entry, bytes + (at - start), length - (size_t)(at - start),
                              &offset) != 0)
            return;
        keep_data_offset(n, offset);
        i = n->entry->next_in_file;
    }
}

/* What an open reads of its member with the local header, where that is
 * still to be read. */
enum lead_wanted {
    NO_LEAD,
    PEEK_LEAD,  /* LEAD_BYTES: a look at the first bytes, unverified */
    WHOLE_LEAD, /* the whole member where the open may hold it (its lead is
                 * checked with it); none otherwise, as it would be served
                 * unchecked */
};

/* Reads M's local header and up to WANTED of its first bytes at once, and
 * keeps those bytes as READER's lead. Best effort: where the header fails
 * its check, is longer than the room read for it, or the read falls short,
 * nothing is kept, and the open reads the header alone and says why. */
static void read_lead(struct sk_archive *archive, struct member *m, struct sk_reader *reader,
                      uint64_t wanted)
{
    const struct sk_zip_entry *e = m->entry;
    if (wanted == 0 || m->method != SK_ZIP_STORED || atomic_load(&m->data_offset) != SK_UNKNOWN)
        return;
    if (wanted > m->size)
        wanted = m->size;
    size_t length = SK_ZIP_LOCAL_HEADER_BYTES + e->name_length + LOCAL_EXTRA_ROOM + (size_t)wanted;
    /* A member read whole: past its end lie its neighbours' headers. */
    if (wanted == m->size)
        length += neighbour_room(archive, m, e->header_offset + length);
    unsigned char *block = malloc(length);
    if (block == NULL)
        return;
    ssize_t got = pread(archive->fd, block, length, (off_t)e->header_offset);
    uint64_t offset;
    if (got <= 0 || header_read_ahead(e, block, (size_t)got, &offset) != 0) {
        free(block);
        return;
    }
    keep_data_offset(m, offset);
    uint64_t skip = offset - e->header_offset;
    if (atomic_load(&m->data_offset) != offset || skip >= (uint64_t)got) {
        free(block);
        return;
    }
    size_t after_header = (size_t)got - (size_t)skip;
    if (wanted == m->size && after_header > wanted)
        take_neighbours(archive, m, block + skip + wanted, offset + wanted,
                        after_header - (size_t)wanted);
    reader->block = block;
    reader->lead = block + skip;
    reader->lead_length = after_header < wanted ? after_header : (size_t)wanted;
}

/* Whether an open may hold the member whole: then its header is read with
 * all of it. */
static bool may_hold(const struct member *m)
{
    return m->size > 0 && m->size <= SK_HOLD_MEMBER_BYTES;
}

static uint64_t lead_bytes(const struct member *m, enum lead_wanted wanted)
{
    if (wanted == PEEK_LEAD)
        return LEAD_BYTES;
    return wanted == WHOLE_LEAD && may_hold(m) ? m->size : 0;
}

/* Whether M's data can be read: its local header is good (read here if
 * not known yet) and its bytes were not found bad. */
static int data_reachable(struct sk_archive *archive, struct member *m, struct sk_error *err)
{
    if (probe_data_offset(archive, m, err) != 0)
        return -1;
    return atomic_load(&m->state) == MEMBER_BAD ? fail_bad(m, err) : 0;
}

static int open_reader(struct sk_archive *archive, uint64_t index, enum lead_wanted lead,
                       struct sk_reader **out, struct sk_error *err)
{
    *out = NULL;
    if (index >= archive->member_count)
        return sk_fail(err, "no member %llu", (unsigned long long)index);
    struct member *m = &archive->members[index];
    if (sk_archive_check_member(archive, index, err) != 0)
        return -1;
    struct sk_reader *reader = calloc(1, sizeof *reader);
    if (reader == NULL)
        return sk_fail_code(err, ENOMEM, "out of memory");
    reader->source = (struct sk_source){.ops = &zip_source_ops, .size = m->size};
    reader->archive = archive;
    reader->member = m;
    read_lead(archive, m, reader, lead_bytes(m, lead));
    if (data_reachable(archive, m, err) != 0) {
        sk_reader_close(reader);
        return -1;
    }
    *out = reader;
    return 0;
}

int sk_reader_open_unverified(struct sk_archive *archive, uint64_t index, struct sk_reader **out,
                              struct sk_error *err)
{
    return open_reader(archive, index, PEEK_LEAD, out, err);
}

static bool reserve_held(uint64_t size)
{
    if (atomic_fetch_add(&held_total, size) + size <= SK_MAX_HELD_BYTES)
        return true;
    atomic_fetch_sub(&held_total, size);
    return false;
}

/* Whether READER read its stored member whole, in order from the start,
 * so that stored_crc sums exactly the bytes it returned. */
static bool summed_whole(const struct sk_reader *reader)
{
    const struct member *m = reader->member;
    return m->method == SK_ZIP_STORED && m->size > 0 && reader->stored_checked_to == m->size;
}

/* Whether the bytes just read into BYTES are the ones the CRC-32 vouches
 * for: summed already on the way, or summed here. */
static bool held_bytes_match(const struct sk_reader *reader, const unsigned char *bytes)
{
    const struct member *m = reader->member;
    if (summed_whole(reader))
        return reader->stored_crc == m->entry->crc;
    return sk_crc32(0, bytes, (size_t)m->size) == m->entry->crc;
}

static int check_stored_in_order(struct sk_reader *reader, const void *bytes, size_t length,
                                 uint64_t offset, struct sk_error *err);

/* Frees what the lead, or the bytes being held, lie in. */
static void drop_block(struct sk_reader *reader)
{
    free(reader->block);
    reader->block = NULL;
    reader->lead = NULL;
    reader->lead_length = 0;
}

/* Reads READER's member whole into BLOCK and, where it is stored, ROOM
 * bytes past it in the same call for take_neighbours. Where that one call
 * falls short of the member, it is read again as any read is, which says
 * why. */
static int read_whole_with_neighbours(struct sk_reader *reader, unsigned char *block, size_t room,
                                      struct sk_error *err)
{
    struct member *m = reader->member;
    uint64_t data_offset = atomic_load(&m->data_offset);
    ssize_t got =
        room > 0 ? pread(reader->archive->fd, block, (size_t)m->size + room, (off_t)data_offset)
                 : -1;
    if (got < 0 || (uint64_t)got < m->size)
        return sk_reader_pread(reader, block, (size_t)m->size, 0, err) < 0 ? -1 : 0;
    if (check_stored_in_order(reader, block, (size_t)m->size, 0, err) != 0)
        return -1;
    take_neighbours(reader->archive, m, block + m->size, data_offset + m->size,
                    (size_t)got - (size_t)m->size);
    return 0;
}

/* Reads a small member whole into READER and checks those very bytes;
 * sets *HELD when they are kept for every later read. Where its lead is
 * the whole member, those bytes are taken, fed to the in-order CRC as a
 * read's would be. */
static int hold_member(struct sk_reader *reader, bool *held, struct sk_error *err)
{
    struct member *m = reader->member;
    uint64_t index = (uint64_t)(m - reader->archive->members);
    *held = false;
    if (!may_hold(m) || !reserve_held(m->size)) {
        drop_block(reader); /* not checked, so never served */
        return 0;
    }
    const unsigned char *bytes;
    int result;
    if (reader->lead_length == m->size) {
        bytes = reader->lead; /* stays in reader->block */
        reader->lead = NULL;
        reader->lead_length = 0;
        result = check_stored_in_order(reader, bytes, (size_t)m->size, 0, err);
    } else {
        drop_block(reader); /* shorter than the member */
        size_t room =
            m->method == SK_ZIP_STORED
                ? neighbour_room(reader->archive, m, atomic_load(&m->data_offset) + m->size)
                : 0;
        reader->block = malloc((size_t)m->size + room);
        if (reader->block == NULL) {
            atomic_fetch_sub(&held_total, m->size);
            return 0; /* read from the file instead */
        }
        bytes = reader->block;
        result = read_whole_with_neighbours(reader, reader->block, room, err);
    }
    if (result == 0 && atomic_load(&m->state) == MEMBER_UNKNOWN)
        result = sk_archive_verify(reader->archive, index, err);
    if (result == 0 && !held_bytes_match(reader, bytes))
        result = sk_fail_code(err, EIO,
                              "member '%s' no longer matches its CRC-32 (the archive changed "
                              "after it was checked?): its bytes are not served",
                              m->name);
    if (result != 0) {
        drop_block(reader);
        atomic_fetch_sub(&held_total, m->size);
        return -1;
    }
    reader->held = bytes;
    *held = true;
    return 0;
}

int sk_reader_open(struct sk_archive *archive, uint64_t index, struct sk_reader **out,
                   struct sk_error *err)
{
    if (open_reader(archive, index, WHOLE_LEAD, out, err) != 0)
        return -1;
    struct member *m = (*out)->member;
    bool held;
    if (hold_member(*out, &held, err) != 0 ||
        (!held && m->size <= SK_VERIFY_AT_OPEN_BYTES && atomic_load(&m->state) == MEMBER_UNKNOWN &&
         sk_archive_verify(archive, index, err) != 0)) {
        sk_reader_close(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

uint64_t sk_reader_size(const struct sk_reader *reader)
{
    return reader->member->size;
}

bool sk_reader_stored_extent(const struct sk_reader *reader, int *fd, uint64_t *offset)
{
    /* A member known bad goes the slow way, which fails. */
    if (reader->member->method != SK_ZIP_STORED || reader->held != NULL ||
        atomic_load(&reader->member->state) == MEMBER_BAD)
        return false;
    *fd = reader->archive->fd;
    *offset = atomic_load(&reader->member->data_offset);
    return true;
}

static void end_stream(struct cursor *c)
{
    if (c->stream_ready)
        inflateEnd(&c->stream);
    c->stream_ready = false;
}

void sk_reader_close(struct sk_reader *reader)
{
    if (reader == NULL)
        return;
    for (int i = 0; i < SK_READER_CURSORS; i++) {
        end_stream(&reader->cursors[i]);
        free(reader->cursors[i].input);
        free(reader->cursors[i].window);
    }
    if (reader->held != NULL)
        atomic_fetch_sub(&held_total, reader->member->size);
    free(reader->block);
    free(reader);
}

/* Feeds the bytes at OFFSET to the in-order CRC of a stored member; at the
 * member's end, settles its state. */
static int check_stored_in_order(struct sk_reader *reader, const void *bytes, size_t length,
                                 uint64_t offset, struct sk_error *err)
{
    struct member *m = reader->member;
    if (reader->stored_checked_to != offset || atomic_load(&m->state) != MEMBER_UNKNOWN) {
        reader->stored_checked_to = SK_UNKNOWN;
        return 0;
    }
    reader->stored_crc = sk_crc32(reader->stored_crc, bytes, length);
    reader->stored_checked_to += length;
    if (reader->stored_checked_to < m->size)
        return 0;
    return settle(m, reader->stored_crc == m->entry->crc, err);
}

static ssize_t read_stored(struct sk_reader *reader, void *buffer, size_t length, uint64_t offset,
                           struct sk_error *err)
{
    struct member *m = reader->member;
    if (offset >= m->size)
        return 0;
    if (length > m->size - offset)
        length = (size_t)(m->size - offset);
    size_t done = 0;
    if (length <= reader->lead_length && offset <= reader->lead_length - length) {
        memcpy(buffer, reader->lead + offset, length);
        done = length;
    }
    while (done < length) {
        ssize_t got = pread(reader->archive->fd, (char *)buffer + done, length - done,
                            (off_t)((uint64_t)m->data_offset + offset + done));
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return sk_fail_code(err, EIO, "member '%s': %s", m->name, strerror(errno));
        }
        if (got == 0)
            return sk_fail_code(err, EIO,
                                "member '%s': the archive ends inside the member (truncated "
                                "after it was opened?)",
                                m->name);
        done += (size_t)got;
    }
    if (check_stored_in_order(reader, buffer, done, offset, err) != 0)
        return -1;
    return (ssize_t)done;
}

/* The last seek point at or before OFFSET, or NULL. Points are never freed
 * while the archive is open, so the result may be used without the lock. */
static struct seek_point *find_point(struct member *m, uint64_t offset)
{
    pthread_mutex_lock(&m->points_lock);
    size_t lo = 0, hi = m->point_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->points[mid]->out <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    struct seek_point *point = lo > 0 ? m->points[lo - 1] : NULL;
    pthread_mutex_unlock(&m->points_lock);
    return point;
}

/* Positions the inflater at the last seek point at or before OFFSET. */
static int restart_stream(struct sk_reader *reader, struct cursor *c, uint64_t offset,
                          struct sk_error *err)
{
    struct member *m = reader->member;
    end_stream(c);
    if (c->input == NULL)
        c->input = malloc(SK_INFLATE_INPUT_CHUNK);
    if (c->window == NULL)
        c->window = malloc(SK_INFLATE_WINDOW);
    if (c->input == NULL || c->window == NULL)
        return sk_fail_code(err, ENOMEM, "out of memory");
    memset(&c->stream, 0, sizeof c->stream);
    if (inflateInit2(&c->stream, -15) != Z_OK)
        return sk_fail(err, "member '%s': cannot start inflating", m->name);
    c->stream_ready = true;
    c->finished = false;
    c->out_position = 0;
    c->in_position = 0;

    struct seek_point *point = find_point(m, offset);
    c->checking = point == NULL;
    c->crc = (uint32_t)crc32(0L, Z_NULL, 0);
    if (point == NULL)
        return 0;

    if (point->bits != 0) {
        unsigned char previous;
        if (pread(reader->archive->fd, &previous, 1,
                  (off_t)((uint64_t)m->data_offset + point->in - 1)) != 1)
            return sk_fail_code(err, EIO, "member '%s': %s", m->name, strerror(errno));
        inflatePrime(&c->stream, point->bits, previous >> (8 - point->bits));
    }
    inflateSetDictionary(&c->stream, point->window, SK_INFLATE_WINDOW);
    /* The circular window must hold the same history the dictionary does. */
    for (uint32_t i = 0; i < SK_INFLATE_WINDOW; i++) {
        uint64_t position = point->out - SK_INFLATE_WINDOW + i;
        c->window[position % SK_INFLATE_WINDOW] = point->window[i];
    }
    c->out_position = point->out;
    c->in_position = point->in;
    return 0;
}

static void maybe_add_point(struct sk_reader *reader, struct cursor *c)
{
    struct member *m = reader->member;
    z_stream *s = &c->stream;
    /* Only at a block boundary that is not the end of the stream. */
    if (!(s->data_type & 128) || (s->data_type & 64))
        return;
    if (c->out_position < SK_INFLATE_WINDOW)
        return;
    pthread_mutex_lock(&m->points_lock);
    uint64_t last = m->point_count ? m->points[m->point_count - 1]->out : 0;
    if (c->out_position >= last + SK_INFLATE_SPACING) {
        if (sk_grow(&m->points, &m->point_capacity, m->point_count + 1, sizeof *m->points, 16))
            goto out;
        struct seek_point *point = malloc(sizeof *point);
        if (point == NULL)
            goto out;
        point->out = c->out_position;
        point->in = c->in_position - s->avail_in;
        point->bits = s->data_type & 7;
        for (uint32_t i = 0; i < SK_INFLATE_WINDOW; i++) {
            uint64_t position = c->out_position - SK_INFLATE_WINDOW + i;
            point->window[i] = c->window[position % SK_INFLATE_WINDOW];
        }
        m->points[m->point_count++] = point;
    }
out:
    pthread_mutex_unlock(&m->points_lock);
}

/* Reads the next chunk of compressed input; running out of it before the
 * stream ends means the member is bad. */
static int feed(struct sk_reader *reader, struct cursor *c, struct sk_error *err)
{
    struct member *m = reader->member;
    uint64_t left = m->comp_size - c->in_position;
    size_t chunk = left < SK_INFLATE_INPUT_CHUNK ? (size_t)left : SK_INFLATE_INPUT_CHUNK;
    if (chunk == 0)
        return settle(m, false, err);
    ssize_t got;
    do
        got = pread(reader->archive->fd, c->input, chunk,
                    (off_t)((uint64_t)m->data_offset + c->in_position));
    while (got < 0 && errno == EINTR);
    if (got <= 0)
        return sk_fail_code(err, EIO, "member '%s': %s", m->name,
                            got < 0 ? strerror(errno)
                                    : "the archive ends inside the member (truncated after it was "
                                      "opened?)");
    c->in_position += (uint64_t)got;
    c->stream.next_in = c->input;
    c->stream.avail_in = (uInt)got;
    return 0;
}

/* A cursor that saw every byte reached the declared size: the stream must
 * end right there, use exactly the declared compressed bytes and match the
 * CRC-32. Settles the member's state either way. */
static int check_stream_end(struct sk_reader *reader, struct cursor *c, struct sk_error *err)
{
    struct member *m = reader->member;
    z_stream *s = &c->stream;
    while (!c->finished) {
        if (s->avail_in == 0 && c->in_position < m->comp_size && feed(reader, c, err) != 0)
            return -1;
        unsigned char extra;
        s->next_out = &extra;
        s->avail_out = 1;
        int rc = inflate(s, Z_BLOCK);
        /* zlib may still hold the last bits of input: no progress with no
         * input left is the stream ending early. */
        if (s->avail_out == 0 || (rc != Z_OK && rc != Z_STREAM_END))
            return settle(m, false, err); /* longer than declared, short, or corrupt */
        c->finished = rc == Z_STREAM_END;
    }
    bool used_all = c->in_position - s->avail_in == m->comp_size;
    return settle(m, used_all && c->crc == m->entry->crc, err);
}

/* Inflates until out_position reaches TARGET (or the declared end),
 * copying the bytes at and after COPY_FROM into BUFFER. */
static ssize_t inflate_to(struct sk_reader *reader, struct cursor *c, uint64_t copy_from,
                          char *buffer, uint64_t target, struct sk_error *err)
{
    struct member *m = reader->member;
    z_stream *s = &c->stream;
    size_t copied = 0;
    while (c->out_position < target) {
        if (c->finished)
            return settle(m, false, err);
        if (s->avail_in == 0 && c->in_position < m->comp_size && feed(reader, c, err) != 0)
            return -1;
        uint64_t slot = c->out_position % SK_INFLATE_WINDOW;
        uint64_t room = SK_INFLATE_WINDOW - slot;
        if (room > target - c->out_position)
            room = target - c->out_position;
        s->next_out = c->window + slot;
        s->avail_out = (uInt)room;
        int rc = inflate(s, Z_BLOCK);
        size_t produced = (size_t)(room - s->avail_out);
        if (rc == Z_BUF_ERROR && produced == 0 && s->avail_in == 0)
            return settle(m, false, err); /* the compressed bytes end early */
        if (rc != Z_OK && rc != Z_STREAM_END && !(rc == Z_BUF_ERROR && produced > 0)) {
            sk_fail_code(err, EIO, "member '%s': corrupt DEFLATE data", m->name);
            settle(m, false, err);
            return -1;
        }
        uint64_t start = c->out_position;
        if (c->checking)
            c->crc = sk_crc32(c->crc, c->window + slot, produced);
        c->out_position += produced;
        if (buffer != NULL && c->out_position > copy_from) {
            uint64_t from = start > copy_from ? start : copy_from;
            memcpy(buffer + copied, c->window + (from % SK_INFLATE_WINDOW),
                   (size_t)(c->out_position - from));
            copied += (size_t)(c->out_position - from);
        }
        if (rc == Z_STREAM_END)
            c->finished = true;
        else
            maybe_add_point(reader, c);
    }
    if (c->checking && c->out_position == m->size && atomic_load(&m->state) == MEMBER_UNKNOWN &&
        check_stream_end(reader, c, err) != 0)
        return -1;
    return (ssize_t)copied;
}

static ssize_t read_deflated(struct sk_reader *reader, void *buffer, size_t length, uint64_t offset,
                             struct sk_error *err)
{
    struct member *m = reader->member;
    if (offset >= m->size)
        return 0;
    if (length > m->size - offset)
        length = (size_t)(m->size - offset);
    /* The cursor furthest along at or before OFFSET, if no seek point lies
     * between it and OFFSET; else the least recently used, restarted. */
    const struct seek_point *point = find_point(m, offset);
    uint64_t usable_from = point != NULL ? point->out : 0;
    struct cursor *best = NULL, *oldest = &reader->cursors[0];
    for (int i = 0; i < SK_READER_CURSORS; i++) {
        struct cursor *c = &reader->cursors[i];
        if (c->stream_ready && c->out_position <= offset && c->out_position >= usable_from &&
            (best == NULL || c->out_position > best->out_position))
            best = c;
        if (c->last_used < oldest->last_used)
            oldest = c;
    }
    struct cursor *c = best;
    if (c == NULL) {
        c = oldest;
        if (restart_stream(reader, c, offset, err) != 0)
            return -1;
    }
    c->last_used = ++reader->clock;
    if (inflate_to(reader, c, offset, NULL, offset, err) < 0)
        return -1;
    return inflate_to(reader, c, offset, buffer, offset + length, err);
}

static ssize_t read_held(const struct sk_reader *reader, void *buffer, size_t length,
                         uint64_t offset)
{
    uint64_t size = reader->member->size;
    if (offset >= size)
        return 0;
    if (length > size - offset)
        length = (size_t)(size - offset);
    memcpy(buffer, reader->held + offset, length);
    return (ssize_t)length;
}

ssize_t sk_reader_pread(struct sk_reader *reader, void *buffer, size_t length, uint64_t offset,
                        struct sk_error *err)
{
    if (atomic_load(&reader->member->state) == MEMBER_BAD)
        return fail_bad(reader->member, err);
    if (reader->held != NULL)
        return read_held(reader, buffer, length, offset);
    if (reader->member->method == SK_ZIP_STORED)
        return read_stored(reader, buffer, length, offset, err);
    return read_deflated(reader, buffer, length, offset, err);
}

/* An empty member produces no byte to read, so nothing above checks it. */
static int verify_empty(struct sk_reader *reader, struct sk_error *err)
{
    struct member *m = reader->member;
    if (m->method == SK_ZIP_STORED)
        return settle(m, m->entry->crc == 0, err);
    struct cursor *c = &reader->cursors[0];
    if (restart_stream(reader, c, 0, err) != 0)
        return -1;
    return check_stream_end(reader, c, err);
}

int sk_archive_verify(struct sk_archive *archive, uint64_t index, struct sk_error *err)
{
    struct sk_reader *reader;
    if (open_reader(archive, index, NO_LEAD, &reader, err) != 0)
        return -1;
    struct member *m = reader->member;
    char *buffer = NULL;
    int result = 0;
    if (atomic_load(&m->state) == MEMBER_UNKNOWN) {
        buffer = malloc(SK_VERIFY_CHUNK);
        if (buffer == NULL)
            result = sk_fail_code(err, ENOMEM, "out of memory");
        /* In order from the start: the readers check on the way. */
        for (uint64_t offset = 0; result == 0 && offset < m->size;) {
            ssize_t got = sk_reader_pread(reader, buffer, SK_VERIFY_CHUNK, offset, err);
            if (got <= 0)
                result = got < 0 ? -1 : sk_fail_code(err, EIO, "member '%s': short read", m->name);
            offset += got > 0 ? (uint64_t)got : 0;
        }
        if (result == 0 && m->size == 0)
            result = verify_empty(reader, err);
    }
    if (result == 0 && atomic_load(&m->state) != MEMBER_GOOD)
        result = fail_bad(m, err);
    free(buffer);
    sk_reader_close(reader);
    return result;
}

/* The archive as a store: the functions above, behind source.h's tables. */

static const struct sk_archive *archive_of(const struct sk_store *store)
{
    return (const struct sk_archive *)store;
}

static uint64_t store_member_count(const struct sk_store *store)
{
    return sk_archive_member_count(archive_of(store));
}

static int store_find(const struct sk_store *store, const char *name, uint64_t *index)
{
    return sk_archive_find(archive_of(store), name, index);
}

static void store_member_info(const struct sk_store *store, uint64_t index,
                              struct sk_member_info *info)
{
    sk_archive_member_info(archive_of(store), index, info);
}

static int store_check_member(const struct sk_store *store, uint64_t index, struct sk_error *err)
{
    return sk_archive_check_member(archive_of(store), index, err);
}

static int store_open(struct sk_store *store, uint64_t index, bool verified, struct sk_source **out,
                      struct sk_error *err)
{
    struct sk_archive *archive = (struct sk_archive *)store;
    struct sk_reader *reader;
    *out = NULL;
    int rc = verified ? sk_reader_open(archive, index, &reader, err)
                      : sk_reader_open_unverified(archive, index, &reader, err);
    if (rc == 0)
        *out = &reader->source;
    return rc;
}

/* Reads M's local header, where not known yet, with the bytes after it:
 * a small member's neighbours' headers lie there too. Best effort: where
 * the header fails its check, an open reads it alone and says why. */
static void read_header_ahead(struct sk_archive *archive, struct member *m)
{
    const struct sk_zip_entry *e = m->entry;
    if (atomic_load(&m->data_offset) != SK_UNKNOWN)
        return;
    size_t length = SK_ZIP_LOCAL_HEADER_BYTES + e->name_length + LOCAL_EXTRA_ROOM;
    length += neighbour_room(archive, m, e->header_offset + length);
    unsigned char *block = malloc(length);
    ssize_t got = block != NULL ? pread(archive->fd, block, length, (off_t)e->header_offset) : -1;
    uint64_t offset;
    if (got > 0 && header_read_ahead(e, block, (size_t)got, &offset) == 0) {
        keep_data_offset(m, offset);
        uint64_t data_end = offset + m->comp_size, read_end = e->header_offset + (uint64_t)got;
        if (data_end < read_end)
            take_neighbours(archive, m, block + (data_end - e->header_offset), data_end,
                            (size_t)(read_end - data_end));
    }
    free(block);
}

/* What an unverified open checks, without making a reader (a mount checks
 * all its members so, 8,000 calloc'd readers in a forest). */
static int store_check_open(struct sk_store *store, uint64_t index, struct sk_error *err)
{
    struct sk_archive *archive = (struct sk_archive *)store;
    if (index >= archive->member_count)
        return sk_fail(err, "no member %llu", (unsigned long long)index);
    if (sk_archive_check_member(archive, index, err) != 0)
        return -1;
    read_header_ahead(archive, &archive->members[index]);
    return data_reachable(archive, &archive->members[index], err);
}

static int store_verify(struct sk_store *store, uint64_t index, struct sk_error *err)
{
    return sk_archive_verify((struct sk_archive *)store, index, err);
}

/* Every local header not known yet, in directory order (the file's, as
 * skops and zipfile write it), each read with the bytes after it: a tree's
 * small members lie together, and one read learns them all. A header that
 * fails, or does not fit, stays unknown: its open reads it alone and says
 * why, as before. */
static void store_prepare_opens(struct sk_store *store)
{
    struct sk_archive *archive = (struct sk_archive *)store;
    for (uint64_t i = 0; i < archive->member_count; i++)
        read_header_ahead(archive, &archive->members[i]);
}

static int store_check_unchanged(const struct sk_store *store, struct sk_error *err)
{
    return sk_archive_check_unchanged(archive_of(store), err);
}

static struct timespec store_mtime(const struct sk_store *store)
{
    return sk_archive_mtime(archive_of(store));
}

static uint64_t store_file_size(const struct sk_store *store)
{
    return sk_archive_file_size(archive_of(store));
}

static void store_close(struct sk_store *store)
{
    sk_archive_close((struct sk_archive *)store);
}

static const struct sk_store_ops zip_store_ops = {
    .member_count = store_member_count,
    .find = store_find,
    .member_info = store_member_info,
    .check_member = store_check_member,
    .open = store_open,
    .check_open = store_check_open,
    .verify = store_verify,
    .prepare_opens = store_prepare_opens,
    .check_unchanged = store_check_unchanged,
    .mtime = store_mtime,
    .file_size = store_file_size,
    .close = store_close,
};

struct sk_store *sk_archive_store(struct sk_archive *archive)
{
    return &archive->store;
}

int sk_zip_store_open(const char *path, struct sk_store **out, struct sk_error *err)
{
    struct sk_archive *archive;
    *out = NULL;
    if (sk_archive_open(path, &archive, err) != 0)
        return -1;
    *out = &archive->store;
    return 0;
}

static ssize_t source_pread(struct sk_source *source, void *buffer, size_t length, uint64_t offset,
                            struct sk_error *err)
{
    return sk_reader_pread((struct sk_reader *)source, buffer, length, offset, err);
}

static bool source_extent(const struct sk_source *source, uint64_t offset, int *fd,
                          uint64_t *file_offset)
{
    uint64_t start;
    if (!sk_reader_stored_extent((const struct sk_reader *)source, fd, &start))
        return false;
    *file_offset = start + offset;
    return true;
}

static int source_verify(struct sk_source *source, struct sk_error *err)
{
    struct sk_reader *reader = (struct sk_reader *)source;
    struct member *m = reader->member;
    /* A reader that read a stored member whole, in order, summed exactly
     * the bytes it returned: their verdict (another reader may have found
     * the member good while the file changed under this one). */
    if (reader->held == NULL && summed_whole(reader))
        return reader->stored_crc == m->entry->crc ? 0 : fail_bad(m, err);
    return sk_archive_verify(reader->archive, (uint64_t)(reader->member - reader->archive->members),
                             err);
}

static void source_close(struct sk_source *source)
{
    sk_reader_close((struct sk_reader *)source);
}

/* A small member is held whole once its bytes are checked (hold_member). */
static const void *source_held(const struct sk_source *source)
{
    return ((const struct sk_reader *)source)->held;
}

static const struct sk_source_ops zip_source_ops = {
    .pread = source_pread,
    .extent = source_extent,
    .verify = source_verify,
    .close = source_close,
    .held = source_held,
};
