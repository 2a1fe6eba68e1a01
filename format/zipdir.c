#include "zipdir.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "hash.h"
#include "sk_limits.h"
#include "source.h"

/* Record sizes and signatures (APPNOTE 4.3). */
#define END_BYTES 22u
#define END64_BYTES 56u
#define LOCATOR_BYTES 20u
#define CENTRAL_BYTES 46u
#define LOCAL_BYTES SK_ZIP_LOCAL_HEADER_BYTES
/* The comment is at most this long, so zipfile searches the last
 * END_BYTES + MAX_COMMENT bytes for the end record. */
#define MAX_COMMENT 65535u
/* zipfile refuses members that need a newer version to extract. */
#define MAX_EXTRACT_VERSION 63u
/* The ZIP64 end record's "size of the rest" when it has no extensible
 * data, the only form zipfile reads right. */
#define END64_REST_BYTES 44u
#define EXTRA_ZIP64 0x0001u
#define EXTRA_UNICODE_PATH 0x7075u
#define ALL_ONES16 0xFFFFu
#define ALL_ONES32 0xFFFFFFFFu
#define REFUSED_FLAGS                                                                              \
    (SK_ZIP_FLAG_ENCRYPTED | SK_ZIP_FLAG_PATCHED | SK_ZIP_FLAG_STRONG_ENCRYPTION |                 \
     SK_ZIP_FLAG_ENCRYPTED_DIRECTORY)

static const unsigned char END_SIGNATURE[4] = {'P', 'K', 5, 6};
static const unsigned char END64_SIGNATURE[4] = {'P', 'K', 6, 6};
static const unsigned char LOCATOR_SIGNATURE[4] = {'P', 'K', 6, 7};
static const unsigned char CENTRAL_SIGNATURE[4] = {'P', 'K', 1, 2};
static const unsigned char LOCAL_SIGNATURE[4] = {'P', 'K', 3, 4};

static uint16_t le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* What the end records say, after ZIP64 values replaced 0xFFFF ones. */
struct end_record {
    uint64_t position; /* of the plain end record */
    uint64_t entries;
    uint64_t directory_size;
    uint64_t directory_offset;
    bool zip64;
    unsigned char *tail; /* the bytes zipfile searches for the end record */
    uint64_t tail_start;
    size_t tail_length;
};

/* zipfile's choice: the last 22 bytes if they are an end record without a
 * comment, else the LAST signature in the tail. Sets *chosen (an offset in
 * the tail) or fails. */
static int choose_end_record(const unsigned char *tail, size_t length, size_t *chosen,
                             struct sk_error *err)
{
    if (length >= END_BYTES && memcmp(tail + length - END_BYTES, END_SIGNATURE, 4) == 0 &&
        le16(tail + length - 2) == 0) {
        *chosen = length - END_BYTES;
        return 0;
    }
    const unsigned char *last = NULL;
    for (const unsigned char *p = tail, *stop = tail + length;
         (p = memmem(p, (size_t)(stop - p), END_SIGNATURE, 4)) != NULL; p++)
        last = p;
    if (last == NULL)
        return sk_fail(err, "not a zip archive (no end of central directory record: not a zip, "
                            "or truncated)");
    *chosen = (size_t)(last - tail);
    if (length - *chosen < END_BYTES)
        return sk_fail(err, "the end of central directory record is truncated");
    if (length - *chosen - END_BYTES != le16(tail + *chosen + 20))
        return sk_fail(err,
                       "the archive comment's length (%u) does not match the %zu bytes "
                       "after the end record: readers would disagree where the archive ends",
                       le16(tail + *chosen + 20), length - *chosen - END_BYTES);
    return 0;
}

/* Any other end signature from the directory on (in the directory, the
 * ZIP64 records or the comment) is a second end record some reader may
 * take. Signatures inside member data are a member's business: a nested
 * zip (scipy's .npz) holds its own, and readers searching from the end
 * meet ours first. */
static int check_single_end_record(const struct end_record *end, uint64_t directory_start,
                                   struct sk_error *err)
{
    uint64_t from = directory_start > end->tail_start ? directory_start - end->tail_start : 0;
    for (const unsigned char *p = end->tail + from, *stop = end->tail + end->tail_length;
         (p = memmem(p, (size_t)(stop - p), END_SIGNATURE, 4)) != NULL; p++)
        if (end->tail_start + (uint64_t)(p - end->tail) != end->position)
            return sk_fail(err, "a second end of central directory signature (PK\\5\\6) after "
                                "the directory's start: zip readers that search differently "
                                "would see different archives");
    return 0;
}

/* Reads the end record zipfile would read and the ZIP64 records it points
 * to; keeps the searched tail in END for check_single_end_record. */
static int find_end_record(int fd, uint64_t file_size, struct end_record *end, struct sk_error *err)
{
    if (file_size < END_BYTES)
        return sk_fail(err, "not a zip archive (too short to hold an end of central directory "
                            "record)");
    end->tail_start = file_size > END_BYTES + MAX_COMMENT ? file_size - END_BYTES - MAX_COMMENT : 0;
    end->tail_length = (size_t)(file_size - end->tail_start);
    end->tail = malloc(end->tail_length);
    if (end->tail == NULL)
        return sk_fail(err, "out of memory");
    size_t last = 0;
    if (sk_pread_exact(fd, end->tail, end->tail_length, end->tail_start, err) != 0 ||
        choose_end_record(end->tail, end->tail_length, &last, err) != 0)
        return -1;
    const unsigned char *tail = end->tail;
    const unsigned char *record = tail + last;
    end->position = end->tail_start + last;
    end->zip64 = false;
    uint16_t disk = le16(record + 4), disk_start = le16(record + 6);
    uint16_t entries_here = le16(record + 8), entries = le16(record + 10);
    uint32_t size = le32(record + 12), offset = le32(record + 16);
    end->entries = entries;
    end->directory_size = size;
    end->directory_offset = offset;
    if (entries_here != entries)
        return sk_fail(err,
                       "the end record counts %u entries on this disk but %u in all: "
                       "multi-disk archives are not supported",
                       entries_here, entries);
    unsigned char locator[LOCATOR_BYTES];
    if (end->position >= LOCATOR_BYTES &&
        sk_pread_exact(fd, locator, LOCATOR_BYTES, end->position - LOCATOR_BYTES, err) != 0)
        return -1;
    if (end->position < LOCATOR_BYTES || memcmp(locator, LOCATOR_SIGNATURE, 4) != 0) {
        if (disk != 0 || disk_start != 0)
            return sk_fail(err,
                           "the end record names disk %u: multi-disk archives are not "
                           "supported",
                           disk != 0 ? disk : disk_start);
        return 0;
    }
    /* ZIP64: zipfile reads the record just before the locator and ignores
     * the locator's offset; others follow the offset. Both must agree. */
    if (le32(locator + 4) != 0 || le32(locator + 16) > 1)
        return sk_fail(err, "the ZIP64 locator names another disk: multi-disk archives are not "
                            "supported");
    if (end->position < LOCATOR_BYTES + END64_BYTES)
        return sk_fail(err, "a ZIP64 locator without room for its ZIP64 end record");
    uint64_t record64_position = end->position - LOCATOR_BYTES - END64_BYTES;
    if (le64(locator + 8) != record64_position)
        return sk_fail(err,
                       "the ZIP64 locator points at offset %llu, but its record lies at %llu: "
                       "zip readers would disagree which one holds the directory",
                       (unsigned long long)le64(locator + 8),
                       (unsigned long long)record64_position);
    unsigned char record64[END64_BYTES];
    if (sk_pread_exact(fd, record64, END64_BYTES, record64_position, err) != 0)
        return -1;
    if (memcmp(record64, END64_SIGNATURE, 4) != 0)
        return sk_fail(err, "a ZIP64 locator without a ZIP64 end record before it: zipfile would "
                            "ignore it, other readers would not");
    if (le64(record64 + 4) != END64_REST_BYTES)
        return sk_fail(err, "the ZIP64 end record has extensible data, which zipfile misreads");
    if (le32(record64 + 16) != 0 || le32(record64 + 20) != 0)
        return sk_fail(err, "the ZIP64 end record names another disk: multi-disk archives are not "
                            "supported");
    uint64_t entries64_here = le64(record64 + 24), entries64 = le64(record64 + 32);
    uint64_t size64 = le64(record64 + 40), offset64 = le64(record64 + 48);
    if (entries64_here != entries64)
        return sk_fail(err, "the ZIP64 end record counts %llu entries on this disk but %llu in all",
                       (unsigned long long)entries64_here, (unsigned long long)entries64);
    /* A plain value that is not the "see ZIP64" marker must say the same. */
    if ((disk != 0 && disk != ALL_ONES16) || (disk_start != 0 && disk_start != ALL_ONES16) ||
        (entries != ALL_ONES16 && entries != entries64) || (size != ALL_ONES32 && size != size64) ||
        (offset != ALL_ONES32 && offset != offset64))
        return sk_fail(err, "the end record and the ZIP64 end record disagree on the directory: "
                            "zip readers would disagree which one to believe");
    end->zip64 = true;
    end->entries = entries64;
    end->directory_size = size64;
    end->directory_offset = offset64;
    return 0;
}

/* Strict UTF-8, as Python's decoder: no overlong forms, no surrogates,
 * nothing above U+10FFFF. */
static bool valid_utf8(const unsigned char *s, size_t length)
{
    size_t i = 0;
    while (i < length) {
        unsigned char c = s[i];
        size_t more;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            more = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            more = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            more = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (length - i - 1 < more)
            return false;
        for (size_t k = 1; k <= more; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += more + 1;
    }
    return true;
}

static bool is_ascii(const unsigned char *s, size_t length)
{
    for (size_t i = 0; i < length; i++)
        if (s[i] >= 0x80)
            return false;
    return true;
}

/* The name as zipfile decodes it must be the bytes we keep, and mean the
 * same to every reader: no NUL (zipfile cuts the name there), no backslash
 * (a separator on Windows), cp437 only where it equals ASCII. */
static int check_name(const unsigned char *name, size_t length, uint16_t flags,
                      struct sk_error *err)
{
    if (memchr(name, '\0', length) != NULL)
        return sk_fail(err, "a member name holds a NUL byte: zipfile cuts it there, others do "
                            "not");
    if (memchr(name, '\\', length) != NULL)
        return sk_fail(err,
                       "member '%.*s' has a backslash in its name: a directory separator to "
                       "some readers, a plain character to others",
                       (int)length, (const char *)name);
    if (flags & SK_ZIP_FLAG_UTF8) {
        if (!valid_utf8(name, length))
            return sk_fail(err, "a member name flagged UTF-8 is not valid UTF-8");
    } else if (!is_ascii(name, length)) {
        return sk_fail(err,
                       "member '%.*s' has a non-ASCII name without the UTF-8 flag: readers "
                       "decode it differently (cp437, UTF-8, the locale)",
                       (int)length, (const char *)name);
    }
    return 0;
}

/* zipfile 3.12+ renames a member by an Info-ZIP Unicode Path field of
 * version 1 whose CRC matches the name field; 3.11 and most other readers
 * do not. Only a field that renames nothing is accepted. */
static int check_unicode_path(const unsigned char *data, size_t length, const unsigned char *name,
                              size_t name_length, struct sk_error *err)
{
    if (length < 5)
        return sk_fail(err, "member '%.*s': corrupt Unicode Path extra field (0x7075)",
                       (int)name_length, (const char *)name);
    uint32_t crc = (uint32_t)crc32(0L, name, (uInt)name_length);
    if (data[0] != 1 || le32(data + 1) != crc)
        return 0; /* zipfile ignores it too */
    const unsigned char *unicode = data + 5;
    size_t unicode_length = length - 5;
    if (!valid_utf8(unicode, unicode_length))
        return sk_fail(err, "member '%.*s': its Unicode Path extra field is not valid UTF-8",
                       (int)name_length, (const char *)name);
    const unsigned char *nul = memchr(unicode, '\0', unicode_length);
    if (nul != NULL)
        unicode_length = (size_t)(nul - unicode);
    if (length == 5)
        return 0; /* empty: zipfile warns and keeps the name */
    if (unicode_length != name_length || memcmp(unicode, name, name_length) != 0)
        return sk_fail(err,
                       "member '%.*s' is renamed '%.*s' by a Unicode Path extra field: "
                       "zipfile 3.12+ uses one name, 3.11 and other readers the other",
                       (int)name_length, (const char *)name, (int)unicode_length,
                       (const char *)unicode);
    return 0;
}

/* A ZIP64 field holds, in order, the 64-bit value of each of size,
 * compressed size and header offset that is 0xFFFFFFFF in the entry. */
static int apply_zip64(const unsigned char *data, size_t length, struct sk_zip_entry *e,
                       struct sk_error *err)
{
    uint64_t *fields[3] = {&e->size, &e->comp_size, &e->header_offset};
    size_t used = 0;
    for (int i = 0; i < 3; i++) {
        if (*fields[i] != ALL_ONES32)
            continue;
        if (length - used < 8)
            return sk_fail(err, "member '%s': corrupt ZIP64 extra field (a value is missing)",
                           e->name);
        *fields[i] = le64(data + used);
        used += 8;
    }
    return 0;
}

static int parse_extras(const unsigned char *extra, size_t length, const unsigned char *name,
                        struct sk_zip_entry *e, struct sk_error *err)
{
    bool seen_zip64 = false, seen_unicode = false;
    /* zipfile ignores up to 3 trailing bytes too short for a field header */
    while (length >= 4) {
        uint16_t id = le16(extra), size = le16(extra + 2);
        if ((size_t)size + 4 > length)
            return sk_fail(err, "member '%s': corrupt extra field %04x (size %u)", e->name, id,
                           size);
        bool *seen = id == EXTRA_ZIP64          ? &seen_zip64
                     : id == EXTRA_UNICODE_PATH ? &seen_unicode
                                                : NULL;
        if (seen != NULL && *seen)
            return sk_fail(err,
                           "member '%s' has two extra fields %04x: readers would disagree "
                           "which one counts",
                           e->name, id);
        if (seen != NULL)
            *seen = true;
        if (id == EXTRA_ZIP64 && apply_zip64(extra + 4, size, e, err) != 0)
            return -1;
        if (id == EXTRA_UNICODE_PATH &&
            check_unicode_path(extra + 4, size, name, e->name_length, err) != 0)
            return -1;
        extra += 4 + (size_t)size;
        length -= 4 + (size_t)size;
    }
    return 0;
}

/* Parses the entry at P (AVAILABLE bytes left in the directory); sets
 * *used to its length. */
static int parse_entry(const unsigned char *p, size_t available, struct sk_zip_entry *e,
                       size_t *used, struct sk_error *err)
{
    if (available < CENTRAL_BYTES)
        return sk_fail(err, "the central directory is truncated inside an entry");
    if (memcmp(p, CENTRAL_SIGNATURE, 4) != 0)
        return sk_fail(err, "bad signature for a central directory entry");
    size_t name_length = le16(p + 28), extra_length = le16(p + 30), comment_length = le16(p + 32);
    size_t total = CENTRAL_BYTES + name_length + extra_length + comment_length;
    if (total > available)
        return sk_fail(err, "a central directory entry runs past the directory's end");
    if (p[6] > MAX_EXTRACT_VERSION)
        return sk_fail(err, "a member needs zip version %u.%u to extract; zipfile refuses it",
                       p[6] / 10, p[6] % 10);
    if (le16(p + 34) != 0)
        return sk_fail(err, "a member starts on disk %u: multi-disk archives are not supported",
                       le16(p + 34));
    e->flags = le16(p + 8);
    e->method = le16(p + 10);
    e->crc = le32(p + 16);
    e->comp_size = le32(p + 20);
    e->size = le32(p + 24);
    e->header_offset = le32(p + 42);
    const unsigned char *name = p + CENTRAL_BYTES;
    if (check_name(name, name_length, e->flags, err) != 0)
        return -1;
    e->name = malloc(name_length + 1);
    if (e->name == NULL)
        return sk_fail(err, "out of memory");
    memcpy(e->name, name, name_length);
    e->name[name_length] = '\0';
    e->name_length = name_length;
    if (parse_extras(name + name_length, extra_length, name, e, err) != 0)
        return -1;
    *used = total;
    return 0;
}

static int by_offset(const void *a, const void *b, void *context)
{
    const struct sk_zip_entry *entries = context;
    const struct sk_zip_entry *x = &entries[*(const uint64_t *)a];
    const struct sk_zip_entry *y = &entries[*(const uint64_t *)b];
    return (x->header_offset > y->header_offset) - (x->header_offset < y->header_offset);
}

/* Entry indices by offset: a directory written front to back (every
 * writer does) is in that order already, and a check costs a pass where a
 * sort costs n log n calls of by_offset. */
static void sort_by_offset(uint64_t *indices, const struct sk_zip_directory *dir)
{
    bool sorted = true;
    for (uint64_t i = 0; i < dir->count; i++) {
        indices[i] = i;
        if (i > 0 && sorted && by_offset(&indices[i - 1], &indices[i], dir->entries) > 0)
            sorted = false;
    }
    if (!sorted)
        qsort_r(indices, (size_t)dir->count, sizeof *indices, by_offset, dir->entries);
}

static bool named(const struct sk_zip_entry *e, const char *name, size_t length)
{
    return e->name_length == length && memcmp(e->name, name, length) == 0;
}

/* The slot of DIR's name index where NAME is, or the empty one where it
 * would go. The hash is keyed (hash.h): no archive can aim its names at one
 * run of slots, and the table is at most half full. */
static uint64_t name_slot(const struct sk_zip_directory *dir, const char *name, size_t length)
{
    uint64_t slot = sk_hash_bytes(name, length) & dir->name_mask;
    while (dir->by_name[slot] != 0 && !named(&dir->entries[dir->by_name[slot] - 1], name, length))
        slot = (slot + 1) & dir->name_mask;
    return slot;
}

/* Indexes every entry by name, refusing two of one name: zipfile keeps the
 * last of two equal names; libzip the first or neither. */
static int index_names(struct sk_zip_directory *dir, struct sk_error *err)
{
    uint64_t slots = 2;
    while (slots < 2 * dir->count)
        slots *= 2;
    dir->by_name = calloc((size_t)slots, sizeof *dir->by_name);
    dir->next_guess = malloc(sizeof *dir->next_guess);
    if (dir->by_name == NULL || dir->next_guess == NULL)
        return sk_fail(err, "out of memory");
    atomic_init(dir->next_guess, 0);
    dir->name_mask = slots - 1;
    for (uint64_t i = 0; i < dir->count; i++) {
        const struct sk_zip_entry *e = &dir->entries[i];
        uint64_t slot = name_slot(dir, e->name, e->name_length);
        if (dir->by_name[slot] != 0)
            return sk_fail(err, "two members are named '%s': which one is meant is ambiguous",
                           e->name);
        dir->by_name[slot] = i + 1;
    }
    return 0;
}

/* Each member's header and data must end before the next member's header
 * (or the directory) begins: zipfile refuses "overlapped entries" at open,
 * and two members sharing bytes is the zip-bomb trick. The local header's
 * extra field is not known yet; sk_zipdir_local_header checks the rest. */
static int check_extents(struct sk_zip_directory *dir, struct sk_error *err)
{
    uint64_t *order = malloc((size_t)(dir->count ? dir->count : 1) * sizeof *order);
    if (order == NULL)
        return sk_fail(err, "out of memory");
    sort_by_offset(order, dir);
    int result = 0;
    for (uint64_t i = 0; i < dir->count && result == 0; i++) {
        struct sk_zip_entry *e = &dir->entries[order[i]];
        const struct sk_zip_entry *next = i + 1 < dir->count ? &dir->entries[order[i + 1]] : NULL;
        e->end_bound = next != NULL ? next->header_offset : dir->start;
        e->next_in_file = next != NULL ? order[i + 1] : SK_ZIP_NO_ENTRY;
        uint64_t room = e->end_bound >= e->header_offset ? e->end_bound - e->header_offset : 0;
        uint64_t fixed = LOCAL_BYTES + e->name_length;
        if (room < fixed || room - fixed < e->comp_size)
            result = next != NULL
                         ? sk_fail(err, "members '%s' and '%s' overlap", e->name, next->name)
                         : sk_fail(err, "member '%s' overlaps the central directory", e->name);
    }
    free(order);
    return result;
}

static int parse_directory(const unsigned char *data, uint64_t size, struct sk_zip_directory *dir,
                           uint64_t expected, struct sk_error *err)
{
    uint64_t position = 0;
    while (position < size) {
        if (dir->count == expected)
            return sk_fail(err,
                           "the central directory holds more entries than the %llu its end "
                           "record counts",
                           (unsigned long long)expected);
        size_t used = 0;
        struct sk_zip_entry *e = &dir->entries[dir->count++];
        if (parse_entry(data + position, (size_t)(size - position), e, &used, err) != 0)
            return -1;
        position += used;
    }
    if (dir->count != expected)
        return sk_fail(err, "the central directory holds %llu entries, its end record counts %llu",
                       (unsigned long long)dir->count, (unsigned long long)expected);
    return 0;
}

/* zipfile's "concat": data before the archive shifts every offset.
 * Readers disagree whether to shift, so the directory must be exactly
 * where the end record says, right before the end records. */
static int locate_directory(const struct end_record *end, struct sk_error *err)
{
    uint64_t directory_end = end->position - (end->zip64 ? END64_BYTES + LOCATOR_BYTES : 0);
    if (end->directory_offset > directory_end ||
        directory_end - end->directory_offset != end->directory_size)
        return sk_fail(err, "the central directory is not where the end record says (data "
                            "prepended to the archive, or a gap before the end record): readers "
                            "disagree how to shift the offsets");
    if (end->entries > SK_MAX_MEMBERS)
        return sk_fail_code(err, E2BIG,
                            "archive has %llu members, more than the limit of %u (SK_MAX_MEMBERS)",
                            (unsigned long long)end->entries, SK_MAX_MEMBERS);
    if (end->entries > end->directory_size / CENTRAL_BYTES)
        return sk_fail(err,
                       "the end record counts %llu entries, more than its %llu-byte "
                       "directory can hold",
                       (unsigned long long)end->entries, (unsigned long long)end->directory_size);
    return check_single_end_record(end, end->directory_offset, err);
}

/* One pread of the whole directory, one pass over it. */
static int read_directory(int fd, const struct end_record *end, struct sk_zip_directory *dir,
                          struct sk_error *err)
{
    dir->start = end->directory_offset;
    size_t slots = (size_t)(end->entries ? end->entries : 1);
    dir->entries = calloc(slots, sizeof *dir->entries);
    unsigned char *data = malloc((size_t)(end->directory_size ? end->directory_size : 1));
    int result = -1;
    if (dir->entries == NULL || data == NULL)
        sk_fail(err, "out of memory");
    else if (sk_pread_exact(fd, data, (size_t)end->directory_size, end->directory_offset, err) ==
                 0 &&
             parse_directory(data, end->directory_size, dir, end->entries, err) == 0) {
        if (index_names(dir, err) == 0 && check_extents(dir, err) == 0)
            result = 0;
    }
    free(data);
    return result;
}

int sk_zipdir_read(int fd, uint64_t file_size, struct sk_zip_directory *dir, struct sk_error *err)
{
    memset(dir, 0, sizeof *dir);
    struct end_record end = {0};
    int result = find_end_record(fd, file_size, &end, err);
    if (result == 0)
        result = locate_directory(&end, err);
    free(end.tail);
    if (result == 0)
        result = read_directory(fd, &end, dir, err);
    if (result != 0)
        sk_zipdir_free(dir);
    return result;
}

void sk_zipdir_free(struct sk_zip_directory *dir)
{
    if (dir->entries != NULL)
        for (uint64_t i = 0; i < dir->count; i++)
            free(dir->entries[i].name);
    free(dir->entries);
    free(dir->by_name);
    free((void *)dir->next_guess);
    memset(dir, 0, sizeof *dir);
}

int sk_zipdir_find(const struct sk_zip_directory *dir, const char *name, size_t length,
                   uint64_t *index)
{
    if (dir->by_name == NULL)
        return -1;
    uint64_t guess = atomic_load_explicit(dir->next_guess, memory_order_relaxed);
    if (guess < dir->count && named(&dir->entries[guess], name, length)) {
        *index = guess;
        atomic_store_explicit(dir->next_guess, guess + 1, memory_order_relaxed);
        return 0;
    }
    uint64_t held = dir->by_name[name_slot(dir, name, length)];
    if (held == 0)
        return -1;
    *index = held - 1;
    atomic_store_explicit(dir->next_guess, held, memory_order_relaxed);
    return 0;
}

/* A local size or CRC must equal the directory's unless a data descriptor
 * or the ZIP64 marker stands in for it. */
static bool local_value_agrees(uint32_t local, uint64_t central, bool descriptor)
{
    return local == central || (descriptor && local == 0) || local == ALL_ONES32;
}

/* Reads the local header's fixed part and, where the file holds it, the
 * name the directory expects after it, in one call: HEADER gets at least
 * LOCAL_BYTES, *NAME_READ says whether the name bytes follow them. */
static unsigned char *read_local_header(int fd, const struct sk_zip_entry *e, bool *name_read,
                                        struct sk_error *err)
{
    size_t want = LOCAL_BYTES + e->name_length;
    unsigned char *header = malloc(want);
    if (header == NULL) {
        sk_fail(err, "out of memory");
        return NULL;
    }
    struct sk_error short_file = {0}; /* the fixed part's read below says why */
    *name_read = sk_pread_exact(fd, header, want, e->header_offset, &short_file) == 0;
    if (!*name_read && sk_pread_exact(fd, header, LOCAL_BYTES, e->header_offset, err) != 0) {
        free(header);
        return NULL;
    }
    return header;
}

/* Checks the local header in HEADER (room for E's name after the fixed
 * part) against the directory's entry E. */
static int check_local_header(int fd, const struct sk_zip_entry *e, unsigned char *header,
                              bool name_read, uint64_t *data_offset, struct sk_error *err)
{
    if (memcmp(header, LOCAL_SIGNATURE, 4) != 0)
        return sk_fail(err, "member '%s': bad signature for its local header", e->name);
    uint16_t flags = le16(header + 6), method = le16(header + 8);
    size_t name_length = le16(header + 26), extra_length = le16(header + 28);
    bool descriptor = flags & SK_ZIP_FLAG_DATA_DESCRIPTOR;
    if (method != e->method || (flags & REFUSED_FLAGS) != (e->flags & REFUSED_FLAGS))
        return sk_fail(err,
                       "member '%s': its local header and the directory disagree on method "
                       "or encryption: streaming readers would read other bytes",
                       e->name);
    if ((le32(header + 14) != e->crc && !(descriptor && le32(header + 14) == 0)) ||
        !local_value_agrees(le32(header + 18), e->comp_size, descriptor) ||
        !local_value_agrees(le32(header + 22), e->size, descriptor))
        return sk_fail(err,
                       "member '%s': its local header and the directory disagree on its "
                       "sizes or CRC",
                       e->name);
    bool same_name = name_length == e->name_length;
    if (same_name && name_length > 0) {
        if (!name_read && sk_pread_exact(fd, header + LOCAL_BYTES, name_length,
                                         e->header_offset + LOCAL_BYTES, err) != 0)
            return -1;
        same_name = memcmp(header + LOCAL_BYTES, e->name, name_length) == 0;
    }
    /* The same bytes decode differently if only one header says UTF-8. */
    if (same_name && !(flags & SK_ZIP_FLAG_UTF8) &&
        !is_ascii((const unsigned char *)e->name, e->name_length))
        same_name = false;
    if (!same_name)
        return sk_fail(err,
                       "member '%s': the name in its local header differs (zipfile refuses "
                       "it; other readers use the local name)",
                       e->name);
    uint64_t start = e->header_offset + LOCAL_BYTES + name_length + extra_length;
    if (start > e->end_bound || e->end_bound - start < e->comp_size)
        return sk_fail(err,
                       "member '%s' overlaps the next member or the central directory "
                       "(zipfile: overlapped entries)",
                       e->name);
    *data_offset = start;
    return 0;
}

int sk_zipdir_local_header_in(const struct sk_zip_entry *e, unsigned char *bytes, size_t length,
                              uint64_t *data_offset, struct sk_error *err)
{
    if (length < LOCAL_BYTES + e->name_length)
        return 1;
    return check_local_header(-1, e, bytes, true, data_offset, err);
}

int sk_zipdir_local_header(int fd, const struct sk_zip_entry *e, uint64_t *data_offset,
                           struct sk_error *err)
{
    bool name_read;
    unsigned char *header = read_local_header(fd, e, &name_read, err);
    if (header == NULL)
        return -1;
    int result = check_local_header(fd, e, header, name_read, data_offset, err);
    free(header);
    return result;
}
