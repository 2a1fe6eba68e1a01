/* A pickle or joblib model file as one stream of pickle bytes. The file is
 * recognized by its first bytes (format/sniff.c), never by its name: a plain
 * pickle or an uncompressed joblib file is mapped as it is; a file that
 * joblib.dump(compress=...) wrote (zlib, gzip, bz2, xz, legacy lzma, lz4) is
 * decompressed once into a sealed memfd within named limits, and that is
 * mapped. Either way the caller gets the bytes, and the descriptor and offset
 * where byte 0 lies, so array bytes can be served from it by range. */
#ifndef SKOPSFS_PICKLE_INPUT_H
#define SKOPSFS_PICKLE_INPUT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "sk_error.h"

enum sk_pickle_compression {
    SK_PICKLE_UNCOMPRESSED,
    SK_PICKLE_ZLIB, /* a bare zlib stream (joblib's default, compress=3) */
    SK_PICKLE_GZIP,
    SK_PICKLE_BZ2,
    SK_PICKLE_XZ,
    SK_PICKLE_LZMA, /* joblib's 'lzma': the legacy LZMA_alone format */
    SK_PICKLE_LZ4,  /* an LZ4 frame */
};

struct sk_pickle_input_options {
    /* Decompressed bytes; 0: SK_MAX_PICKLE_BYTES. */
    uint64_t max_bytes;
    /* Decompressed : compressed bytes, checked once the output passes
     * SK_PICKLE_RATIO_FLOOR_BYTES; 0: no ratio limit (the default: bz2 and xz
     * legitimately pass 1000:1 on zero-filled arrays; max_bytes still holds). */
    uint64_t max_ratio;
    /* Keep a compressed file with bytes after the end of its stream and
     * report their count in trailing_bytes (an audit reports them); by
     * default such a file is refused. joblib ignores them: its unpickler stops
     * at STOP and never reads them. */
    bool allow_trailing;
};

struct sk_pickle_input {
    const unsigned char *bytes; /* the pickle stream, read-only; NULL once unmapped */
    uint64_t size;
    int fd;             /* holds the stream: the file itself or the memfd */
    uint64_t fd_offset; /* where bytes[0] lies in fd */
    enum sk_pickle_compression compression;
    int protocol;            /* 2-5 from PROTO; 0 for protocols 0 and 1 */
    uint64_t trailing_bytes; /* compressed bytes after the stream's end */
    int file_fd;             /* the file as opened, for its identity */
    struct stat file_stat;   /* as it was when opened */
};

/* Opens PATH (a regular file; opening a FIFO does not block). Fails with one
 * line for a file that is not a pickle or joblib file, a truncated or corrupt
 * stream, and a limit passed. OPTIONS may be NULL. */
int sk_pickle_input_open(const char *path, const struct sk_pickle_input_options *options,
                         struct sk_pickle_input **out, struct sk_error *err);
void sk_pickle_input_close(struct sk_pickle_input *input);

/* Drops the mapping of the stream (bytes becomes NULL) once it has been
 * parsed: a mapped file that someone cuts short faults its reader
 * (SIGBUS), while pread on fd fails cleanly. The stream stays readable
 * through fd and fd_offset. */
void sk_pickle_input_unmap(struct sk_pickle_input *input);

/* "none", "zlib", "gzip", "bz2", "xz", "lzma", "lz4": joblib's names. */
const char *sk_pickle_compression_name(enum sk_pickle_compression compression);

/* Fails if the file changed since it was opened (size, mtime, inode). */
int sk_pickle_input_check_unchanged(const struct sk_pickle_input *input, struct sk_error *err);

#endif
