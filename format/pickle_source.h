/* Sources (format/source.h) for the arrays a pickle or joblib file holds,
 * shown as .npy files: a synthesized header (format/npyheader.h) followed by
 * the array's bytes, which stay where the pickle has them:
 *  - a range of a file (protocol >= 3 bytes, uncompressed joblib arrays, or
 *    the memfd of a decompressed joblib file): served by pread, and by an
 *    extent past the header so a server can splice it;
 *  - the same with each item's bytes reversed, for a non-native array that
 *    numpy's unpickling makes native (no extent);
 *  - protocol 0-2's _codecs.encode(str, 'latin1'): the str's UTF-8 text, in
 *    memory or read by pread from a file, decoded on the fly from
 *    checkpoints built by one validating pass;
 *  - bytes in memory.
 * Every constructor copies HEADER. */
#ifndef SKOPSFS_PICKLE_SOURCE_H
#define SKOPSFS_PICKLE_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "sk_error.h"
#include "source.h"

/* Output bytes between two checkpoints of a latin-1 text. */
#define SK_LATIN1_CHECKPOINT_BYTES (64u * 1024)

/* HEADER then LENGTH bytes of FD at OFFSET (FD borrowed: it must outlive the
 * source). SWAP_UNIT 0: the bytes as they are; 2, 4, 8 or 16: each unit of
 * that many bytes reversed (an element's size; for complex, half of it), and
 * LENGTH must be a multiple of it. */
int sk_pickle_source_range(const void *header, size_t header_length, int fd, uint64_t offset,
                           uint64_t length, unsigned swap_unit, struct sk_source **out,
                           struct sk_error *err);

/* HEADER then the latin-1 decoding of TEXT (UTF-8, TEXT_LENGTH bytes,
 * borrowed: it must outlive the source), which must decode to exactly
 * DECODED_LENGTH bytes with every code point <= U+00FF: checked here, in the
 * pass that builds the checkpoints. SWAP_UNIT as above. */
int sk_pickle_source_latin1(const void *header, size_t header_length, const unsigned char *text,
                            uint64_t text_length, uint64_t decoded_length, unsigned swap_unit,
                            struct sk_source **out, struct sk_error *err);

/* The same for the text at OFFSET of FD (borrowed), read by pread and
 * never mapped: a file cut short under a reader fails its read (EIO). */
int sk_pickle_source_latin1_file(const void *header, size_t header_length, int fd, uint64_t offset,
                                 uint64_t text_length, uint64_t decoded_length, unsigned swap_unit,
                                 struct sk_source **out, struct sk_error *err);

/* HEADER then BYTES, both copied. */
int sk_pickle_source_bytes(const void *header, size_t header_length, const void *bytes,
                           size_t length, struct sk_source **out, struct sk_error *err);

#endif
