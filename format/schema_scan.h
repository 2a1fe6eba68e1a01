/* schema.json read in one pass (issue 14): tokens of format/jsonscan.h go
 * straight onto the graph builder, with no tree of the document. It builds
 * exactly the graph of the jansson reader (schema.c) or declines: where a
 * file departs from the shape skops writes (any error, a repeated key, a
 * loader read here not yet, an __id__ met again below its own state...),
 * it returns SK_SCAN_DECLINED and sk_schema_load reads the file the old
 * way, which gives the exact error. Names, keys and JSON texts are copied
 * into storage kept by the graph: the caller may free TEXT afterwards. */
#ifndef SKOPSFS_SCHEMA_SCAN_H
#define SKOPSFS_SCHEMA_SCAN_H

#include <stddef.h>

#include "graph.h"
#include "sk_limits.h"
#include "source.h"

enum {
    SK_SCAN_DECLINED = 1,
    /* sk_schema_scan_source: an alias met needs the digests, or its text */
    SK_SCAN_DIGESTS_WANTED = 2,
    SK_SCAN_TEXT_GONE = 3,
};

/* 0 with *OUT the graph, or SK_SCAN_DECLINED (*OUT NULL). */
int sk_schema_scan_load(const char *text, size_t length, struct sk_store *store,
                        const struct sk_limits *limits, struct sk_schema **out);

/* The same, reading SOURCE (schema.json's member, opened unverified) in
 * order a window at a time (textwindow.h), so that the whole text is never
 * held: what a state needs after the scanner moved on is copied out, and an
 * alias is compared with its original by a fingerprint where the text is
 * gone: a state of scalars has one, every state where DIGEST_ALL (each
 * container's digest taken as it is read: more work). Where an alias met
 * needed DIGEST_ALL, it returns SK_SCAN_DIGESTS_WANTED, to be read again
 * from the start with it; where it needed the text itself (or DIGEST_ALL
 * was not enough), SK_SCAN_TEXT_GONE: sk_schema_scan_load reads the whole
 * text. Otherwise the whole text would be declined too (SK_SCAN_DECLINED),
 * and so is a failed read or check of the bytes: the caller reads the
 * member again for the jansson reader, which gives the exact error.
 * OPTIONS and WATCH (told of each node as it is completed) may be NULL. */
struct sk_text_window_options;
int sk_schema_scan_source(struct sk_source *source, const struct sk_text_window_options *options,
                          bool digest_all, struct sk_store *store, const struct sk_limits *limits,
                          const struct sk_node_watch *watch, struct sk_schema **out);

#endif
