/* What a file is, from its first bytes: a zip (a .skops archive is one), a
 * pickle, a file as joblib.dump writes it, or unknown. Used only to explain
 * why a file that is not a zip archive cannot be read; nothing here is
 * trusted to decide what a file may do. */
#ifndef SKOPSFS_SNIFF_H
#define SKOPSFS_SNIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "sk_error.h"

/* Enough for every signature below, and for joblib's module name, which a
 * joblib pickle names where it meets its first array. */
#define SK_SNIFF_HEAD_BYTES 4096

enum sk_file_kind {
    SK_FILE_UNKNOWN,
    SK_FILE_ZIP,
    SK_FILE_PICKLE,
    SK_FILE_JOBLIB_PICKLE,     /* joblib.dump without compression */
    SK_FILE_JOBLIB_COMPRESSED, /* joblib.dump(compress=...): .compression says how */
    SK_FILE_JOBLIB_OLD,        /* joblib before 0.9.3: "ZF" and a zlib stream */
};

struct sk_sniff {
    enum sk_file_kind kind;
    int pickle_protocol;     /* 2-5 from a pickle's PROTO opcode; 0 for protocols 0
                              * and 1, which do not say; else -1 */
    const char *compression; /* "zlib", "gzip", ... for a compressed file, else NULL */
};

/* HEAD: the file's first bytes (up to SK_SNIFF_HEAD_BYTES); LAST_BYTE: its
 * last byte, or -1 if unknown (a pickle ends with STOP, which tells the
 * text pickles of protocols 0 and 1 from other text). */
struct sk_sniff sk_sniff_bytes(const unsigned char *head, size_t length, int last_byte);

/* Sniffs the file at PATH. Fails only when it cannot be read. */
int sk_sniff_file(const char *path, struct sk_sniff *out, struct sk_error *err);

/* Writes into TEXT why a file of this kind cannot be read, in one line
 * without the file's name, and returns true; or returns false for every
 * kind that is read (zip, pickle, joblib) and for unknown ones, whose own
 * errors say more. */
bool sk_sniff_explain(const struct sk_sniff *sniff, char *text, size_t size);

#endif
