/* Writes a reproducible stored zip archive, as `skopsfs convert` makes of a
 * pickle: schema.json first, then the members sorted by name (bytewise),
 * every timestamp 1980-01-01 00:00, no compression, CRC-32 via zlib, ZIP64
 * records where a size, an offset or the count needs them. Python's zipfile
 * and skopsfs's own reader (format/zipdir.c) read it. The archive is written
 * to a temporary file beside OUT_PATH and renamed over it at the end, so a
 * failure leaves no partial output. */
#ifndef SKOPSFS_ZIPWRITE_H
#define SKOPSFS_ZIPWRITE_H

#include <stdbool.h>
#include <stddef.h>

#include "sk_error.h"
#include "source.h"

struct sk_source_named {
    const char *name;         /* a member name: UTF-8, no NUL, no backslash */
    struct sk_source *source; /* read from offset 0 to its size; not closed here */
};

struct sk_zip_write_options {
    bool force_zip64; /* ZIP64 records for every member, as for a huge one */
};

/* OPTIONS may be NULL. A name repeated (or "schema.json" among MEMBERS) is
 * refused. */
int sk_convert_write(const char *out_path, const char *schema_text, size_t length,
                     const struct sk_source_named *members, size_t count,
                     const struct sk_zip_write_options *options, struct sk_error *err);

/* The same members, in the order given and without schema.json, written
 * from FD's current position (0): a sparse matrix's .npz made in memory. */
int sk_zip_write_members(int fd, const struct sk_source_named *members, size_t count,
                         struct sk_error *err);

#endif
