/* A model file opened for reading: its store, its schema's node graph and,
 * where asked for, its layout. The one call the CLI and the daemon make. */
#ifndef SKOPSFS_MODEL_H
#define SKOPSFS_MODEL_H

#include <stdbool.h>

#include "content.h"
#include "layout.h"
#include "schema.h"
#include "sk_error.h"
#include "source.h"
#include "trust.h"

struct sk_model {
    struct sk_store *store; /* the members the schema names */
    struct sk_schema *schema;
    struct sk_layout *layout; /* NULL unless asked for */
    /* NULL unless asked for */
    struct sk_content_report *content;
};

struct sk_model_options {
    const struct sk_allowlist *allowlist;
    bool build_layout;     /* an audit needs only the schema */
    bool read_npy_headers; /* for dtype and shape */
    bool open_members;     /* a mount opens every member before it serves any */
    bool check_content;    /* judge the trees' arrays (content.h) */
    struct sk_limits limits;
};

/* Opens PATH as the store its kind calls for: the one place that knows the
 * kinds (a .skops zip archive today). For a caller that needs the members
 * only, e.g. to verify them. Errors name PATH. */
int sk_model_open_store(const char *path, struct sk_store **out, struct sk_error *err);
/* The same under LIMITS (NULL: the defaults), which bound a pickle's reading. */
int sk_model_open_store_limited(const char *path, const struct sk_limits *limits,
                                struct sk_store **out, struct sk_error *err);

/* Errors start with PATH: "m.skops: schema.json: node at x: ...". */
int sk_model_open(const char *path, const struct sk_model_options *options, struct sk_model **out,
                  struct sk_error *err);
void sk_model_close(struct sk_model *model);

#endif
