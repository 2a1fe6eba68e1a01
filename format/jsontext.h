/* JSON text as skops writes it (Python's json module), read with jansson.
 * Python writes integers of any size; jansson holds 64 bits, so larger ones
 * are kept as marked strings holding their digits. */
#ifndef SKOPSFS_JSONTEXT_H
#define SKOPSFS_JSONTEXT_H

#include <jansson.h>
#include <stddef.h>

#include "sk_error.h"

/* The memory of a parsed document. jansson allocates every value on its
 * own; a large schema then costs hundreds of thousands of mallocs and a
 * page fault every 4 KiB. Parsed documents live in an arena of huge pages
 * instead, released at once. Never json_decref() such a document. */
struct sk_json_arena;

/* Parses a whole JSON document into a new arena (*ARENA). Strings may hold
 * NUL bytes. While it runs, jansson allocates from the arena: do not use
 * jansson in other threads meanwhile. */
int sk_json_parse(const char *text, size_t length, json_t **root, struct sk_json_arena **arena,
                  struct sk_error *err);
/* Frees the document parsed into ARENA. */
void sk_json_arena_free(struct sk_json_arena *arena);

/* An object key as written: NUL characters restored. Returns a new buffer,
 * or NULL where the key is unchanged (or when out of memory). */
char *sk_json_key_decode(const char *key, size_t length, size_t *decoded_length);

/* The digits of an integer too large for jansson, or NULL for any other value. */
const char *sk_json_big_integer(const json_t *value);

/* VALUE as Python's json.dumps writes it (", " and ": " separators), plus a
 * newline. Returns a new buffer, or NULL when out of memory. */
char *sk_json_dump_python(const json_t *value, size_t *length);

/* What a JsonNode's file holds: a JSON string's decoded text, any other
 * value's JSON text as written; then a newline. */
int sk_json_node_text(const char *json, size_t json_length, char **text, size_t *length);

#endif
