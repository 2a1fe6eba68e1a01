#include "jsontext.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grow.h"
#include "pages.h"

#define BIG_INTEGER_MARK "\0bigint:"
#define BIG_INTEGER_MARK_LENGTH 8
#define BIG_INTEGER_JSON_MARK "\"\\u0000bigint:"
/* U+10FFFF stands in for NUL in object keys. */
#define NUL_KEY_JSON "\\udbff\\udfff"
#define NUL_KEY_UTF8 "\xf4\x8f\xbf\xbf"

/* Whether the integer literal [start, start+length) overflows int64. One
 * with a leading zero is not JSON: it is left to jansson to refuse. */
static bool overflows_int64(const char *start, size_t length)
{
    bool negative = start[0] == '-';
    const char *digits = start + negative;
    size_t count = length - negative;
    if (count > 1 && digits[0] == '0')
        return false;
    const char *limit = negative ? "9223372036854775808" : "9223372036854775807";
    if (count != 19)
        return count > 19;
    return memcmp(digits, limit, 19) > 0;
}

struct buffer {
    char *data;
    size_t used;
    size_t capacity;
};

static bool put(struct buffer *out, const char *bytes, size_t length)
{
    if (sk_grow(&out->data, &out->capacity, out->used + length + 1, 1, 64) != 0)
        return false;
    memcpy(out->data + out->used, bytes, length);
    out->used += length;
    return true;
}

/* Whether a string value starts with the big-integer mark (a file may
 * spell it: "\u0000bigint:..."). */
static bool spells_mark(const json_t *value)
{
    return json_is_string(value) && json_string_length(value) >= BIG_INTEGER_MARK_LENGTH &&
           memcmp(json_string_value(value), BIG_INTEGER_MARK, BIG_INTEGER_MARK_LENGTH) == 0;
}

/* Whether the JSON string token [start, start+length) is a value that
 * spells the mark. Only tokens starting with an escaped NUL can. */
static bool token_spells_mark(const char *start, size_t length)
{
    if (length < 7 || memcmp(start, "\"\\u0000", 7) != 0)
        return false;
    json_t *value = json_loadb(start, length, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    bool spelled = spells_mark(value);
    json_decref(value);
    return spelled;
}

/* Whether any string value below VALUE spells the mark; jansson's own
 * nesting limit bounds the recursion. */
static bool document_spells_mark(const json_t *value)
{
    const char *key;
    const json_t *item;
    size_t index;
    if (json_is_object(value)) {
        json_object_foreach((json_t *)value, key, item) if (document_spells_mark(item)) return true;
    } else if (json_is_array(value)) {
        json_array_foreach(value, index, item) if (document_spells_mark(item)) return true;
    }
    return spells_mark(value);
}

/* Copies TEXT with what jansson cannot hold rewritten: integer literals
 * too large for 64 bits become marked strings, and NUL characters in
 * object keys become U+10FFFF (jansson refuses NUL in keys). Sets
 * *SPELLED where a string value of TEXT spells the mark itself. */
static char *rewrite_for_jansson(const char *text, size_t length, size_t *out_length, bool *spelled)
{
    struct buffer out = {malloc(length + 64), 0, length + 64};
    if (out.data == NULL)
        return NULL;
    for (size_t i = 0; i < length;) {
        char c = text[i];
        bool ok = true;
        if (c == '"') {
            size_t end = i + 1;
            while (end < length && text[end] != '"')
                end += text[end] == '\\' ? 2 : 1;
            end = end < length ? end + 1 : length;
            size_t next = end;
            while (next < length && strchr(" \t\r\n", text[next]) && text[next] != '\0')
                next++;
            bool key = next < length && text[next] == ':';
            if (!key && token_spells_mark(text + i, end - i))
                *spelled = true;
            for (size_t k = i; k < end && ok; k++) {
                if (key && k + 6 <= end && text[k] == '\\' && memcmp(text + k, "\\u0000", 6) == 0) {
                    ok = put(&out, NUL_KEY_JSON, sizeof NUL_KEY_JSON - 1);
                    k += 5;
                } else if (text[k] == '\\' && k + 1 < end) {
                    ok = put(&out, text + k, 2);
                    k++;
                } else {
                    ok = put(&out, text + k, 1);
                }
            }
            i = end;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i + (c == '-');
            while (j < length && text[j] >= '0' && text[j] <= '9')
                j++;
            bool integer = j >= length || (text[j] != '.' && text[j] != 'e' && text[j] != 'E');
            if (integer && overflows_int64(text + i, j - i))
                ok = put(&out, BIG_INTEGER_JSON_MARK, sizeof BIG_INTEGER_JSON_MARK - 1) &&
                     put(&out, text + i, j - i) && put(&out, "\"", 1);
            else
                ok = put(&out, text + i, j - i);
            i = j;
        } else {
            ok = put(&out, text + i, 1);
            i++;
        }
        if (!ok) {
            free(out.data);
            return NULL;
        }
    }
    *out_length = out.used;
    return out.data;
}

/* Whether TEXT holds U+10FFFF written as an escape, in either case. */
static bool contains_escaped_u10ffff(const char *text, size_t length)
{
    static const char escape[] = "\\udbff\\udfff";
    const size_t n = sizeof escape - 1;
    for (const char *p = text; (p = memchr(p, '\\', length - (size_t)(p - text))) != NULL; p++) {
        if ((size_t)(text + length - p) < n)
            return false;
        if (strncasecmp(p, escape, n) == 0)
            return true;
    }
    return false;
}

/* Off under AddressSanitizer, so that it sees every value on its own. */
#define SK_JSON_ARENA SK_PAGES_MAPPED

#define ARENA_ALIGN 16u
#define ARENA_SLACK ((size_t)64 << 10)

struct arena_chunk {
    struct arena_chunk *next;
    size_t size;
    size_t used;
};

struct sk_json_arena {
    struct arena_chunk *chunks;
    size_t next_size;
    bool failed;
    json_t *root; /* the document, where it was not allocated in the chunks */
};

/* The arena jansson allocates from while sk_json_parse runs. */
static struct sk_json_arena *current_arena;

static void *arena_alloc(size_t size)
{
    struct sk_json_arena *arena = current_arena;
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    struct arena_chunk *chunk = arena->chunks;
    if (chunk == NULL || chunk->size - chunk->used < size) {
        size_t want = sizeof *chunk + size;
        size_t chunk_size = arena->next_size > want ? arena->next_size : want;
        chunk = sk_pages_alloc(chunk_size);
        if (chunk == NULL) {
            arena->failed = true;
            return NULL;
        }
        chunk->next = arena->chunks;
        chunk->size = chunk_size;
        chunk->used = (sizeof *chunk + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
        arena->chunks = chunk;
        arena->next_size = chunk_size * 2;
    }
    void *result = (char *)chunk + chunk->used;
    chunk->used += size;
    return result;
}

static void arena_release(void *pointer)
{
    (void)pointer; /* everything goes when the arena does */
}

void sk_json_arena_free(struct sk_json_arena *arena)
{
    if (arena == NULL)
        return;
    json_decref(arena->root);
    for (struct arena_chunk *chunk = arena->chunks, *next; chunk != NULL; chunk = next) {
        next = chunk->next;
        sk_pages_free(chunk, chunk->size);
    }
    free(arena);
}

/* json_loadb, with the document's values in ARENA when arenas are on. */
static json_t *load(const char *text, size_t length, struct sk_json_arena *arena,
                    json_error_t *error)
{
    if (!SK_JSON_ARENA)
        return json_loadb(text, length, JSON_ALLOW_NUL, error);
    json_malloc_t saved_malloc;
    json_free_t saved_free;
    json_get_alloc_funcs(&saved_malloc, &saved_free);
    current_arena = arena;
    json_set_alloc_funcs(arena_alloc, arena_release);
    json_t *root = json_loadb(text, length, JSON_ALLOW_NUL, error);
    json_set_alloc_funcs(saved_malloc, saved_free);
    current_arena = NULL;
    return root;
}

#define SPELLED_MARK_MESSAGE                                                                       \
    "a string starts with NUL and 'bigint:', which skopsfs uses to mark integers too large "       \
    "for 64 bits; refused so that no string can pass for an integer"

static int parse(const char *text, size_t length, json_t **root, struct sk_json_arena *arena,
                 struct sk_error *err)
{
    json_error_t error;
    *root = load(text, length, arena, &error);
    if (*root != NULL) {
        /* Without an escaped NUL no string can start with the mark. */
        if (memmem(text, length, "\\u0000", 6) != NULL && document_spells_mark(*root))
            return sk_fail(err, SPELLED_MARK_MESSAGE);
        return 0;
    }
    bool big = strstr(error.text, "too big") != NULL;
    bool nul_key = strstr(error.text, "NUL byte in object key") != NULL;
    if (nul_key &&
        (memmem(text, length, NUL_KEY_UTF8, 4) != NULL || contains_escaped_u10ffff(text, length)))
        return sk_fail(
            err, "keys hold both NUL and U+10FFFF characters; skopsfs cannot tell them apart");
    if (big || nul_key) {
        size_t rewritten_length;
        bool spelled = false;
        char *rewritten = rewrite_for_jansson(text, length, &rewritten_length, &spelled);
        if (rewritten == NULL)
            return sk_fail(err, "out of memory");
        if (spelled) {
            free(rewritten);
            return sk_fail(err, SPELLED_MARK_MESSAGE);
        }
        *root = load(rewritten, rewritten_length, arena, &error);
        free(rewritten);
        if (*root != NULL)
            return 0;
    }
    return sk_fail(err, "invalid JSON at line %d, column %d: %s", error.line, error.column,
                   error.text);
}

int sk_json_parse(const char *text, size_t length, json_t **root, struct sk_json_arena **arena_out,
                  struct sk_error *err)
{
    *root = NULL;
    *arena_out = NULL;
    struct sk_json_arena *arena = calloc(1, sizeof *arena);
    if (arena == NULL)
        return sk_fail(err, "out of memory");
    /* jansson's values take about six times the text they come from */
    arena->next_size = length * 6 + ARENA_SLACK;
    int rc = parse(text, length, root, arena, err);
    if (rc == 0 && arena->failed)
        rc = sk_fail(err, "out of memory");
    if (!SK_JSON_ARENA)
        arena->root = *root;
    if (rc != 0) {
        *root = NULL;
        sk_json_arena_free(arena);
        return -1;
    }
    *arena_out = arena;
    return 0;
}

/* memmem's set-up costs more than a short key: this is asked of every
 * dict key of a schema, nearly all of them ASCII. */
static bool holds_nul_key_mark(const char *key, size_t length)
{
    const char *end = key + length;
    for (const char *p = key; (p = memchr(p, NUL_KEY_UTF8[0], (size_t)(end - p))) != NULL; p++)
        if (end - p >= 4 && memcmp(p, NUL_KEY_UTF8, 4) == 0)
            return true;
    return false;
}

char *sk_json_key_decode(const char *key, size_t length, size_t *decoded_length)
{
    if (!holds_nul_key_mark(key, length))
        return NULL;
    char *decoded = malloc(length + 1);
    if (decoded == NULL)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; i < length; i++) {
        if (i + 4 <= length && memcmp(key + i, NUL_KEY_UTF8, 4) == 0) {
            decoded[used++] = '\0';
            i += 3;
        } else {
            decoded[used++] = key[i];
        }
    }
    decoded[used] = '\0';
    *decoded_length = used;
    return decoded;
}

const char *sk_json_big_integer(const json_t *value)
{
    if (!json_is_string(value) || json_string_length(value) <= BIG_INTEGER_MARK_LENGTH)
        return NULL;
    const char *s = json_string_value(value);
    if (memcmp(s, BIG_INTEGER_MARK, BIG_INTEGER_MARK_LENGTH) != 0)
        return NULL;
    return s + BIG_INTEGER_MARK_LENGTH;
}

char *sk_json_dump_python(const json_t *value, size_t *length)
{
    char *dumped = json_dumps(value, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
    if (dumped == NULL)
        return NULL;
    size_t n = strlen(dumped);
    char *out = malloc(n + 2);
    if (out == NULL) {
        free(dumped);
        return NULL;
    }
    size_t used = 0;
    for (size_t i = 0; i < n;) {
        size_t mark = sizeof BIG_INTEGER_JSON_MARK - 1;
        if (strncmp(dumped + i, BIG_INTEGER_JSON_MARK, mark) == 0) {
            const char *end = strchr(dumped + i + mark, '"');
            if (end != NULL) {
                size_t digits = (size_t)(end - (dumped + i + mark));
                memcpy(out + used, dumped + i + mark, digits);
                used += digits;
                i = (size_t)(end - dumped) + 1;
                continue;
            }
        }
        out[used++] = dumped[i++];
    }
    out[used++] = '\n';
    out[used] = '\0';
    free(dumped);
    *length = used;
    return out;
}

static bool is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Whether JSON from START (a '"') is a string of printable ASCII with no
 * escape, and nothing but whitespace after it, as skops writes a str's
 * JsonNode (a forest has four a tree): *INNER is then what jansson would
 * decode, found without a parse. */
static bool plain_json_string(const char *json, size_t length, size_t start, const char **inner,
                              size_t *inner_length)
{
    size_t i = start + 1;
    while (i < length && (unsigned char)json[i] >= 0x20 && (unsigned char)json[i] < 0x7f &&
           json[i] != '"' && json[i] != '\\')
        i++;
    if (i == length || json[i] != '"')
        return false;
    size_t close = i++;
    while (i < length && is_json_space(json[i]))
        i++;
    if (i != length)
        return false;
    *inner = json + start + 1;
    *inner_length = close - start - 1;
    return true;
}

int sk_json_node_text(const char *json, size_t json_length, char **text, size_t *length)
{
    size_t start = 0;
    while (start < json_length && is_json_space(json[start]))
        start++;
    const char *source = json;
    size_t source_length = json_length;
    json_t *decoded = NULL;
    if (start < json_length && json[start] == '"' &&
        !plain_json_string(json, json_length, start, &source, &source_length)) {
        decoded = json_loadb(json, json_length, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (json_is_string(decoded)) {
            source = json_string_value(decoded);
            source_length = json_string_length(decoded);
        }
    }
    char *out = malloc(source_length + 2);
    if (out != NULL) {
        memcpy(out, source, source_length);
        out[source_length] = '\n';
        out[source_length + 1] = '\0';
        *text = out;
        *length = source_length + 1;
    }
    json_decref(decoded);
    return out ? 0 : -1;
}
