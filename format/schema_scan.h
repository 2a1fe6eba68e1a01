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

enum { SK_SCAN_DECLINED = 1 };

/* 0 with *OUT the graph, or SK_SCAN_DECLINED (*OUT NULL). */
int sk_schema_scan_load(const char *text, size_t length, struct sk_store *store,
                        const struct sk_limits *limits, struct sk_schema **out);

#endif
