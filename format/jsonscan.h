/* A one-pass pull reader of JSON text in a buffer, whole or arriving in
 * parts: the caller asks for the next token, gets its kind and a span of
 * the input, and keeps only what it needs. No tree of the document is built
 * and nothing is allocated (but the caller's digest stack, where it asks
 * for digests of containers).
 *
 * It accepts exactly the documents sk_json_parse (jsontext.h) accepts:
 * RFC 8259 JSON whose top level is an object or an array, in valid UTF-8,
 * without lone surrogate escapes, with values nested at most
 * SK_JSON_MAX_DEPTH deep, no real overflowing a double; integers beyond 64
 * bits come as SK_JSON_BIG_INTEGER, keys may hold NUL. It refuses as
 * sk_json_parse does a string value that spells skopsfs's big-integer mark
 * ("\u0000bigint:...") and a document whose keys hold NUL while some string
 * holds U+10FFFF. Duplicate keys all come through, in order; sk_json_parse
 * keeps the last value at the first key's place. docs/jsonscan.md lists the
 * rules, and the three faults of sk_json_parse's rewrite path that this
 * reader does not share. */
#ifndef SKOPSFS_JSONSCAN_H
#define SKOPSFS_JSONSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hash.h"
#include "sk_error.h"

/* jansson's JSON_PARSER_MAX_DEPTH: a value inside N open containers is at
 * depth N + 1, the top-level one at 1. */
#define SK_JSON_MAX_DEPTH 2048

enum sk_json_token {
    SK_JSON_ERROR = -1,
    SK_JSON_END = 0, /* the document is complete; nothing but whitespace follows */
    SK_JSON_OBJECT_START,
    SK_JSON_OBJECT_END,
    SK_JSON_ARRAY_START,
    SK_JSON_ARRAY_END,
    SK_JSON_KEY,
    SK_JSON_STRING,
    SK_JSON_INTEGER,
    SK_JSON_BIG_INTEGER, /* an integer beyond int64: its digits (and sign) */
    SK_JSON_REAL,
    SK_JSON_TRUE,
    SK_JSON_FALSE,
    SK_JSON_NULL,
};

struct sk_json_event {
    enum sk_json_token token;
    /* Keys and strings: the text between the quotes, escapes as written.
     * Numbers and literals: the token. Containers: the bracket. */
    const char *start;
    size_t length;
    bool escaped;    /* a key or string holds a backslash escape */
    int64_t integer; /* SK_JSON_INTEGER's value */
    /* An end of a container, where the scan takes digests: the container's. */
    uint64_t digest;
};

/* Where a scanner takes digests (sk_json_scan_digest): a hasher per open
 * container, grown as they nest. Owned by the caller, reusable. */
struct sk_json_digest_level {
    struct sk_hasher hasher;
    bool skip_next; /* the value after this key is left out */
    bool skipped;   /* this container is such a value */
};
struct sk_json_digests {
    struct sk_json_digest_level *open;
    size_t capacity;
    /* Optional: the keys whose values (a whole container too) a digest
     * leaves out, at any depth. */
    bool (*skips_value)(const struct sk_json_event *key);
};

/* The reader's state; fields are private. */
struct sk_json_scan {
    const char *text;
    const char *at;
    const char *end;
    unsigned depth;      /* open containers */
    int expect;          /* what the grammar allows next */
    bool nul_key;        /* a key held NUL */
    bool has_u10ffff;    /* a string held U+10FFFF */
    const char *spelled; /* the first string value spelling the mark */
    /* Streamed text: [text, end) is what has arrived, and MORE brings the
     * next part (sets end and whole) when the tokens run out before the
     * text does. Each part ends between tokens. */
    bool whole;
    int (*more)(void *context, struct sk_json_scan *scan); /* NULL: the text is whole */
    void *more_context;
    struct sk_json_digests *digests;                /* NULL: none taken */
    unsigned char in_object[SK_JSON_MAX_DEPTH / 8]; /* per open container */
};

void sk_json_scan_init(struct sk_json_scan *scan, const char *text, size_t length);

/* A scanner over text that arrives in parts: MORE(CONTEXT, SCAN) is called
 * whenever every token of [TEXT, scan->end) was returned and scan->whole is
 * false; it sets both, and returns 0 or -1 (the scan then fails). Each part
 * must end between two tokens (after a newline: no token holds one). Its
 * errors name no line: the text before may be gone. */
void sk_json_scan_init_streamed(struct sk_json_scan *scan, const char *text,
                                int (*more)(void *context, struct sk_json_scan *scan),
                                void *context);

/* From now on, every container's end event carries a digest of the
 * container as written: a keyed hash (hash.h) of its tokens' kinds,
 * escapes and bytes, each nested container taken by its own digest, the
 * values of keys DIGESTS->skips_value names left out. Two containers of
 * the same tokens have the same digest; two of others, with a chance of
 * 2^-64. Call before the first token. */
void sk_json_scan_digest(struct sk_json_scan *scan, struct sk_json_digests *digests);

/* The next token into *EVENT. After SK_JSON_END or SK_JSON_ERROR (ERR is
 * set, in sk_json_parse's words) it returns the same again. */
enum sk_json_token sk_json_next(struct sk_json_scan *scan, struct sk_json_event *event,
                                struct sk_error *err);

/* Reads on to the end of the value that EVENT (just returned) starts:
 * nothing more for a scalar, up to the matching end for a container. Sets
 * [*START, *START + *LENGTH) to the value's text as written (a string's
 * quotes included). Returns 0, or -1 with ERR set. */
int sk_json_skip(struct sk_json_scan *scan, const struct sk_json_event *event, const char **start,
                 size_t *length, struct sk_error *err);

/* sk_json_skip of a scalar, inline: a state's scalars are most of what a
 * schema's reader passes over (430,000 in a forest of 1,600 trees). */
static inline void sk_json_scalar_text(const struct sk_json_event *event, const char **start,
                                       size_t *length)
{
    bool string = event->token == SK_JSON_STRING || event->token == SK_JSON_KEY;
    *start = event->start - string;
    *length = event->length + 2 * string;
}

/* A key's or string's decoded bytes into OUT, which holds at least
 * EVENT->length bytes (decoding never lengthens). Returns their count. */
size_t sk_json_decode(const struct sk_json_event *event, char *out);

/* Whether a key or string decodes to exactly [TEXT, TEXT+LENGTH); no copy
 * where it holds no escape. */
bool sk_json_equals(const struct sk_json_event *event, const char *text, size_t length);

/* An SK_JSON_REAL's value (or an integer's, as a double). */
double sk_json_real(const struct sk_json_event *event);

#endif
