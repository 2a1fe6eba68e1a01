/* Zip access: opens a .skops archive read-only, reads its directory as
 * Python's zipfile does (zipdir.h; ambiguous archives are refused) and serves
 * any member's bytes by offset and length, checked against their CRC-32.
 *
 * Stored members are read straight from the archive file with pread(2), so
 * nothing is copied into memory and any number of threads may read at once.
 * DEFLATE members are inflated with zlib from saved seek points, so random
 * access costs at most one seek-point spacing of inflation, never a pass
 * from the member's start. A member never yields more than the size its
 * central directory entry declares.
 *
 * Everything above this module sees the archive as a store and its readers
 * as sources (source.h, sk_zip_store_open); the sk_archive_ and sk_reader_
 * calls below are the zip-specific side, for its own tests and fuzzing. */
#ifndef SKOPSFS_ARCHIVE_H
#define SKOPSFS_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "sk_error.h"
#include "source.h"

struct sk_archive;
struct sk_reader;

/* The archive as a store (source.h), for everything above this module:
 * members are found by name and served as sources (a reader each), whose
 * extent is a stored member's bytes in the archive file. Closing the store
 * closes the archive. */
int sk_zip_store_open(const char *path, struct sk_store **out, struct sk_error *err);

/* Opens PATH. Fails with a message naming PATH on anything that is not a
 * readable regular file holding one unambiguous zip archive within the
 * limits of sk_limits.h (a FIFO or device is refused before any read). */
int sk_archive_open(const char *path, struct sk_archive **out, struct sk_error *err);
void sk_archive_close(struct sk_archive *archive);

/* The archive file's modification time and size, for st_mtime and statfs. */
struct timespec sk_archive_mtime(const struct sk_archive *archive);
uint64_t sk_archive_file_size(const struct sk_archive *archive);

/* Fails (naming the archive) if the file open since sk_archive_open was
 * rewritten or truncated in place: its size, inode, device, mtime or ctime
 * differ. A file replaced by rename still reads the audited bytes through
 * the held descriptor, so that is no change. Costs one fstat. */
int sk_archive_check_unchanged(const struct sk_archive *archive, struct sk_error *err);

uint64_t sk_archive_member_count(const struct sk_archive *archive);

/* Finds a member by its exact name. Returns 0 and sets *index, or -1. */
int sk_archive_find(const struct sk_archive *archive, const char *name, uint64_t *index);

void sk_archive_member_info(const struct sk_archive *archive, uint64_t index,
                            struct sk_member_info *info);

/* Checks, from the central directory alone, that the member can be served:
 * not encrypted, stored or DEFLATE, sizes within the limits. */
int sk_archive_check_member(const struct sk_archive *archive, uint64_t index, struct sk_error *err);

/* The archive as a store (sk_store_read_member and the rest of source.h);
 * it stays the archive's: close the archive, not the store. */
struct sk_store *sk_archive_store(struct sk_archive *archive);

/* Reads the whole member and checks its CRC-32, its length and (DEFLATE)
 * that its stream ends exactly at the declared sizes. The verdict is kept:
 * a member found bad fails every later open and read. Returns 0 if good. */
int sk_archive_verify(struct sk_archive *archive, uint64_t index, struct sk_error *err);

/* A reader serves one member. Readers are independent: one per thread or per
 * open file. A DEFLATE member's reader keeps inflate state, so one thread at
 * a time may read through it; a stored one is read by offset alone. */
int sk_reader_open(struct sk_archive *archive, uint64_t index, struct sk_reader **out,
                   struct sk_error *err);
/* sk_reader_open reads a member of at most SK_HOLD_MEMBER_BYTES whole, checks
 * those bytes against its CRC-32 and serves every read from them (failing
 * if the archive changed since the member was first found good); it
 * verifies (sk_archive_verify) a larger member of at most
 * SK_VERIFY_AT_OPEN_BYTES the first time; larger members are checked by
 * their first full read in order from the start. This one skips that first
 * verification: for peeking at a few header bytes while building a layout,
 * never for bytes handed to a user as the member's. */
int sk_reader_open_unverified(struct sk_archive *archive, uint64_t index, struct sk_reader **out,
                              struct sk_error *err);
/* Reads up to LENGTH bytes at OFFSET; returns the count (0 at the end) or -1.
 * Fails if the member is known bad, or is found bad by this read; an archive
 * that ends before the member does is an error, never a short count. */
ssize_t sk_reader_pread(struct sk_reader *reader, void *buffer, size_t length, uint64_t offset,
                        struct sk_error *err);
/* Where a stored member's bytes lie in the archive file: its descriptor and
 * the offset of the member's first byte, for a caller that lets the kernel
 * move them (splice) instead of copying them through memory. The member's
 * whole extent was checked to lie inside the file. False for a DEFLATE
 * member, whose bytes must be inflated, for a member known bad, whose
 * reads fail, and for a reader that holds the bytes it checked. */
bool sk_reader_stored_extent(const struct sk_reader *reader, int *fd, uint64_t *offset);
uint64_t sk_reader_size(const struct sk_reader *reader);
void sk_reader_close(struct sk_reader *reader);

#endif
