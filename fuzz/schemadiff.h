/* The one-pass schema reader (schema_scan.h) against the jansson reader
 * (sk_schema_load_tree): where the one-pass reader reads a file, both
 * graphs must be the same node by node. Shared by tests/schema_diff.c and
 * fuzz/fuzz_schemascan.c. */
#ifndef SKOPSFS_SCHEMADIFF_H
#define SKOPSFS_SCHEMADIFF_H

#include <stddef.h>

#include "source.h"

enum schema_diff_outcome {
    SCHEMA_DIFF_SAME,             /* both read it: the same graph */
    SCHEMA_DIFF_DECLINED_READ,    /* the one-pass reader declined; the old one reads it */
    SCHEMA_DIFF_DECLINED_REFUSED, /* declined; the old one refuses it */
    SCHEMA_DIFF_DIFFERENT,
    /* read in one pass from the whole text, declined streamed (an alias
     * whose original's text was given back) */
    SCHEMA_DIFF_STREAM_DECLINED,
    SCHEMA_DIFF_OUTCOMES
};

extern const char *const schema_diff_outcome_names[SCHEMA_DIFF_OUTCOMES];

/* WHY says what differs. The one-pass reader runs twice: on the whole
 * text, and streamed from it a few bytes at a time, each byte given back
 * (poisoned) as soon as the reader lets it go. */
enum schema_diff_outcome schema_diff(const char *text, size_t length, struct sk_store *store,
                                     char *why, size_t why_size);

#endif
