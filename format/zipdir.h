/* The zip container as CPython's zipfile (3.11 to 3.13) sees it: the end
 * record, the ZIP64 records and the central directory, read with one pread
 * each, and each member's local header when the member is first opened.
 *
 * Where zipfile's reading is unique, the result is exactly zipfile's; where
 * zipfile and other readers (libzip, Info-ZIP, Go, Java) could see different
 * members, names or bytes, the archive is refused with one line saying what
 * is ambiguous. docs/zip.md lists every refusal and why. */
#ifndef SKOPSFS_ZIPDIR_H
#define SKOPSFS_ZIPDIR_H

#include <stddef.h>
#include <stdint.h>

#include "sk_error.h"

#define SK_ZIP_STORED 0u
#define SK_ZIP_DEFLATED 8u

/* A local header's fixed part; the member's name and an extra field follow. */
#define SK_ZIP_LOCAL_HEADER_BYTES 30u

/* General purpose flag bits (APPNOTE 4.4.4). */
#define SK_ZIP_FLAG_ENCRYPTED 0x0001u
#define SK_ZIP_FLAG_DATA_DESCRIPTOR 0x0008u
#define SK_ZIP_FLAG_PATCHED 0x0020u
#define SK_ZIP_FLAG_STRONG_ENCRYPTION 0x0040u
#define SK_ZIP_FLAG_UTF8 0x0800u
#define SK_ZIP_FLAG_ENCRYPTED_DIRECTORY 0x2000u

struct sk_zip_entry {
    char *name; /* NUL-terminated; holds no NUL, no backslash, valid UTF-8 */
    size_t name_length;
    uint16_t flags;
    uint16_t method;
    uint32_t crc;
    uint64_t comp_size;
    uint64_t size;
    uint64_t header_offset;
    /* The next member's local header or the central directory: the member's
     * header and data must end at or before it (zipfile's _end_offset). */
    uint64_t end_bound;
    /* The entry whose local header is at end_bound (the next member in the
     * file), or SK_ZIP_NO_ENTRY: a read past this member's bytes meets it. */
    uint64_t next_in_file;
};

#define SK_ZIP_NO_ENTRY UINT64_MAX

struct sk_zip_directory {
    struct sk_zip_entry *entries; /* in central directory order */
    uint64_t count;
    /* entry index + 1 by a keyed hash of its name, 0 for none: open
     * addressing, name_mask + 1 slots (a power of two, at least twice the
     * entries) */
    uint64_t *by_name;
    uint64_t name_mask;
    uint64_t start; /* offset of the central directory */
    /* The entry after the one found last: writers list members in the
     * order their schema names them, so the next name asked for is most
     * often there, one compare from a hit, where the table costs a hash and
     * three cache misses. A hint only: finds on any thread may move it. */
    _Atomic uint64_t *next_guess;
};

/* Reads the directory of the FILE_SIZE-byte archive open on FD. The error
 * does not name the archive; the caller prefixes it. */
int sk_zipdir_read(int fd, uint64_t file_size, struct sk_zip_directory *dir, struct sk_error *err);
void sk_zipdir_free(struct sk_zip_directory *dir);

/* Finds the entry named exactly NAME (LENGTH bytes). Returns 0 and sets
 * *index, or -1. Safe from any number of threads at once. */
int sk_zipdir_find(const struct sk_zip_directory *dir, const char *name, size_t length,
                   uint64_t *index);

/* Reads ENTRY's local header, checks it agrees with the directory (as
 * zipfile's ZipFile.open does, and stricter) and sets *data_offset to where
 * the member's bytes start. */
int sk_zipdir_local_header(int fd, const struct sk_zip_entry *entry, uint64_t *data_offset,
                           struct sk_error *err);

/* The same check on the LENGTH bytes of the file from ENTRY's header on,
 * read already (the headers of small members lie together and are read
 * several at once). 1 where BYTES hold less than the header needs. */
int sk_zipdir_local_header_in(const struct sk_zip_entry *entry, unsigned char *bytes, size_t length,
                              uint64_t *data_offset, struct sk_error *err);

#endif
