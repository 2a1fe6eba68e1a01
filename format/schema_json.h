/* The schema reader's entries that take jansson values: for the readers
 * inside format/ (the one-pass reader, the pickle store), never for the
 * daemon or the CLI, whose headers stay free of jansson. */
#ifndef SKOPSFS_SCHEMA_JSON_H
#define SKOPSFS_SCHEMA_JSON_H

#include <jansson.h>
#include <stdbool.h>

#include "schema.h"

/* The same from a state that the pickle reader made (pickle_map.h): shared
 * objects are one json_t referenced from each place, and its
 * UnrepresentableNode is accepted. The graph holds a reference to ROOT. */
int sk_schema_load_pickled(json_t *root_state, struct sk_store *store,
                           const struct sk_limits *limits, struct sk_schema **out,
                           struct sk_error *err);

/* Shared by the two readers of schema.json. Whether two states are equal
 * JSON but for "__id__" and "file" values (an alias's content against its
 * original's); the model's protocol and skops version into SCHEMA. */
bool sk_schema_same_content(const json_t *a, const json_t *b);
int sk_schema_read_versions(struct sk_schema *schema, const json_t *protocol, const json_t *version,
                            struct sk_error *err);

#endif
