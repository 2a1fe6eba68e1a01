/* The reader of skops's schema.json: the document becomes the node graph
 * (graph.h) that skops's loader builds, exactly as get_tree does it. A
 * state whose __id__ was seen before is the earlier node, so the graph
 * shares nodes and may have cycles. */
#ifndef SKOPSFS_SCHEMA_H
#define SKOPSFS_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include "graph.h"
#include "sk_error.h"
#include "sk_limits.h"
#include "source.h"

/* Parses TEXT (schema.json) and builds the node graph, checking every
 * member it names in STORE. LIMITS (may be NULL) raises the defaults of
 * nodes, children and key_bytes. Names (__loader__, __module__,
 * __class__, function names) holding NUL are refused. Errors read
 * "schema.json: node at PATH: ...". */
int sk_schema_load(const char *text, size_t length, struct sk_store *store,
                   const struct sk_limits *limits, struct sk_schema **out, struct sk_error *err);

/* As sk_schema_load, for STORE's member INDEX (schema.json): streamed, a
 * window at a time, where the one-pass reader takes it so, and the text is
 * never held whole; else read whole (at most MAX_BYTES) and given to
 * sk_schema_load. Errors of reading the member are those of
 * sk_store_read_member. WATCH (may be NULL) is told of the nodes a
 * streamed read completes (graph.h). */
int sk_schema_read_member(struct sk_store *store, uint64_t index, size_t max_bytes,
                          const struct sk_limits *limits, const struct sk_node_watch *watch,
                          struct sk_schema **out, struct sk_error *err);

/* The jansson reader. sk_schema_load tries the one-pass reader first
 * (schema_scan.h), which declines what it does not read the way this one
 * does, and falls back to this; SKOPSFS_SCHEMA_READER=jansson in the
 * environment skips the one-pass reader. tests/schema_diff.c compares the
 * two graph by graph. */
int sk_schema_load_tree(const char *text, size_t length, struct sk_store *store,
                        const struct sk_limits *limits, struct sk_schema **out,
                        struct sk_error *err);

#endif
