#include "jsondiff.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonscan.h"
#include "jsontext.h"

const char *const json_diff_outcome_names[JSON_DIFF_OUTCOMES] = {
    [JSON_DIFF_SAME_ACCEPTED] = "both accept, same values",
    [JSON_DIFF_SAME_REFUSED] = "both refuse, same kind of message",
    [JSON_DIFF_OLD_REWRITE_BREAKS_REAL] = "old refuses: its rewrite breaks a 20+ digit real",
    [JSON_DIFF_OLD_MISSES_OVERWRITTEN_MARK] = "old accepts a spelled mark under a duplicate key",
    [JSON_DIFF_OLD_MISSES_NUL_U10FFFF] = "old accepts NUL and U+10FFFF keys after a big integer",
    [JSON_DIFF_OLD_MESSAGE_FROM_REWRITE] = "both refuse; old's rewrite reports its check first",
    [JSON_DIFF_DIFFERENT] = "DIFFERENT",
};

unsigned long json_diff_identical_messages;

#define NUL_KEY_UTF8 "\xf4\x8f\xbf\xbf"

/* The first disagreement of the reader's helpers with its tokens. */
static const char *helper_fault;

/* Whether sk_json_equals agrees with the DECODED bytes of EVENT, and tells
 * them from the same bytes with the last one changed. */
static void check_equals(const struct sk_json_event *event, char *decoded, size_t length)
{
    if (!sk_json_equals(event, decoded, length))
        helper_fault = "sk_json_equals refuses the decoded text";
    if (length == 0)
        return;
    decoded[length - 1] ^= 1;
    if (sk_json_equals(event, decoded, length))
        helper_fault = "sk_json_equals accepts a changed text";
    decoded[length - 1] ^= 1;
}

/* A key as sk_json_parse holds it: NUL written as U+10FFFF. */
static json_t *set_key(json_t *object, const struct sk_json_event *key, json_t *value)
{
    char *decoded = malloc(key->length + 1);
    char *held = malloc(key->length * 4 + 1);
    size_t length = sk_json_decode(key, decoded);
    check_equals(key, decoded, length);
    size_t used = 0;
    for (size_t i = 0; i < length; i++) {
        if (decoded[i] == '\0') {
            memcpy(held + used, NUL_KEY_UTF8, 4);
            used += 4;
        } else {
            held[used++] = decoded[i];
        }
    }
    int rc = json_object_setn_new(object, held, used, value);
    free(decoded);
    free(held);
    return rc == 0 ? object : NULL;
}

static json_t *scalar(const struct sk_json_event *event)
{
    switch (event->token) {
    case SK_JSON_STRING: {
        char *decoded = malloc(event->length + 1);
        size_t length = sk_json_decode(event, decoded);
        check_equals(event, decoded, length);
        json_t *value = json_stringn(decoded, length);
        free(decoded);
        return value;
    }
    case SK_JSON_INTEGER:
        return json_integer(event->integer);
    case SK_JSON_BIG_INTEGER: {
        char *marked = malloc(event->length + 8);
        memcpy(marked, "\0bigint:", 8);
        memcpy(marked + 8, event->start, event->length);
        json_t *value = json_stringn(marked, event->length + 8);
        free(marked);
        return value;
    }
    case SK_JSON_REAL:
        return json_real(sk_json_real(event));
    case SK_JSON_TRUE:
        return json_true();
    case SK_JSON_FALSE:
        return json_false();
    case SK_JSON_NULL:
        return json_null();
    case SK_JSON_OBJECT_START:
        return json_object();
    case SK_JSON_ARRAY_START:
        return json_array();
    default:
        return NULL;
    }
}

/* The document rebuilt from the reader's tokens. *COMPLETE says whether
 * the whole top-level value came through, even where the reader then
 * refused the document (its checks at the end). */
static json_t *rebuild(const char *text, size_t length, struct sk_error *err, bool *complete)
{
    struct sk_json_scan scan;
    sk_json_scan_init(&scan, text, length);
    json_t *stack[SK_JSON_MAX_DEPTH + 1];
    struct sk_json_event keys[SK_JSON_MAX_DEPTH + 1];
    const char *skip_ends[SK_JSON_MAX_DEPTH + 1]; /* where sk_json_skip said each ends */
    size_t depth = 0;
    json_t *root = NULL;
    *complete = false;
    for (;;) {
        struct sk_json_event event;
        enum sk_json_token token = sk_json_next(&scan, &event, err);
        if (token == SK_JSON_END || token == SK_JSON_ERROR) {
            *complete = root != NULL && depth == 0;
            if (token == SK_JSON_ERROR && !*complete) {
                json_decref(root);
                return NULL;
            }
            return root;
        }
        if (token == SK_JSON_KEY) {
            keys[depth] = event;
            continue;
        }
        if (token == SK_JSON_OBJECT_END || token == SK_JSON_ARRAY_END) {
            if (skip_ends[depth] != event.start + 1)
                helper_fault = "sk_json_skip ends a container elsewhere";
            depth--;
            continue;
        }
        if (token == SK_JSON_OBJECT_START || token == SK_JSON_ARRAY_START) {
            struct sk_json_scan ahead = scan; /* skips on a copy; the walk goes on */
            struct sk_error skip_err = {0};
            const char *start;
            size_t span;
            skip_ends[depth + 1] =
                sk_json_skip(&ahead, &event, &start, &span, &skip_err) == 0 ? start + span : NULL;
        } else if (token == SK_JSON_STRING) {
            const char *start;
            size_t span;
            if (sk_json_skip(&scan, &event, &start, &span, err) != 0 || span < 2 ||
                start[0] != '"' || start[span - 1] != '"' || span != event.length + 2)
                helper_fault = "sk_json_skip gives a string's span wrong";
        }
        json_t *value = scalar(&event);
        if (depth == 0) {
            root = value;
        } else if (json_is_object(stack[depth])) {
            set_key(stack[depth], &keys[depth], json_incref(value));
            json_decref(value);
        } else {
            json_array_append(stack[depth], value);
            json_decref(value);
        }
        if (token == SK_JSON_OBJECT_START || token == SK_JSON_ARRAY_START)
            stack[++depth] = value;
    }
}

/* Exact equality: types, key order, string bytes, every real's bits. */
static bool same(const json_t *a, const json_t *b)
{
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return false;
        void *i = json_object_iter((json_t *)a);
        void *j = json_object_iter((json_t *)b);
        for (; i != NULL && j != NULL;
             i = json_object_iter_next((json_t *)a, i), j = json_object_iter_next((json_t *)b, j)) {
            size_t n = json_object_iter_key_len(i);
            if (n != json_object_iter_key_len(j) ||
                memcmp(json_object_iter_key(i), json_object_iter_key(j), n) != 0 ||
                !same(json_object_iter_value(i), json_object_iter_value(j)))
                return false;
        }
        return i == NULL && j == NULL;
    }
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t k = 0; k < json_array_size(a); k++)
            if (!same(json_array_get(a, k), json_array_get(b, k)))
                return false;
        return true;
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_INTEGER:
        return json_integer_value(a) == json_integer_value(b);
    case JSON_REAL: {
        double x = json_real_value(a), y = json_real_value(b);
        return memcmp(&x, &y, sizeof x) == 0;
    }
    default:
        return true;
    }
}

/* Whether plain jansson stops first at what sk_json_parse then rewrites
 * (a big integer, a NUL in a key): its rewrite path decides the outcome. */
static bool old_rewrites(const char *text, size_t length, bool *big)
{
    json_error_t error;
    json_t *root = json_loadb(text, length, JSON_ALLOW_NUL, &error);
    json_decref(root);
    *big = root == NULL && strstr(error.text, "too big") != NULL;
    return root == NULL && (*big || strstr(error.text, "NUL byte in object key") != NULL);
}

/* Whether sk_json_parse's rewrite takes the digit run [D, D+N) for an
 * integer beyond 64 bits (NEGATIVE: it follows a '-'). */
static bool run_rewritten(const char *d, size_t n, bool negative)
{
    if (n > 1 && d[0] == '0')
        return false;
    if (n != 19)
        return n > 19;
    return memcmp(d, negative ? "9223372036854775808" : "9223372036854775807", 19) > 0;
}

static size_t digit_run(const char *p, const char *end)
{
    const char *q = p;
    while (q < end && *q >= '0' && *q <= '9')
        q++;
    return (size_t)(q - p);
}

/* Whether the real token [P, END) holds a fraction (ending the token) or
 * exponent digit run that sk_json_parse's rewrite turns into a string. */
static bool real_rewritten(const char *p, const char *end)
{
    const char *dot = memchr(p, '.', (size_t)(end - p));
    const char *e = p;
    while (e < end && *e != 'e' && *e != 'E')
        e++;
    if (dot != NULL && e == end && run_rewritten(dot + 1, digit_run(dot + 1, end), false))
        return true;
    if (e == end)
        return false;
    e++;
    bool negative = *e == '-';
    e += *e == '-' || *e == '+';
    return run_rewritten(e, digit_run(e, end), negative);
}

/* Whether some real of TEXT (as the reader sees it) is one of those. */
static bool text_has_rewritten_real(const char *text, size_t length)
{
    struct sk_json_scan scan;
    sk_json_scan_init(&scan, text, length);
    struct sk_error err = {0};
    struct sk_json_event event;
    enum sk_json_token token;
    while ((token = sk_json_next(&scan, &event, &err)) != SK_JSON_END && token != SK_JSON_ERROR)
        if (token == SK_JSON_REAL && real_rewritten(event.start, event.start + event.length))
            return true;
    return false;
}

enum message_kind { INVALID, SPELLED, NUL_U10FFFF, OTHER };

static enum message_kind kind(const char *message)
{
    if (strncmp(message, "invalid JSON at line ", 21) == 0)
        return INVALID;
    if (strstr(message, "starts with NUL and 'bigint:'") != NULL)
        return SPELLED;
    if (strstr(message, "both NUL and U+10FFFF") != NULL)
        return NUL_U10FFFF;
    return OTHER;
}

static enum json_diff_outcome different(char *why, size_t why_size, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(why, why_size, fmt, args);
    va_end(args);
    return JSON_DIFF_DIFFERENT;
}

static enum json_diff_outcome compare(const char *text, size_t length, json_t *old,
                                      const struct sk_error *old_err, json_t *new, bool complete,
                                      const struct sk_error *new_err, char *why, size_t why_size)
{
    bool new_ok = new != NULL && new_err->message[0] == '\0';
    bool big = false;
    if (old != NULL && new_ok)
        return same(old, new) ? JSON_DIFF_SAME_ACCEPTED
                              : different(why, why_size, "both accept, values differ");
    if (old == NULL && !new_ok) {
        enum message_kind o = kind(old_err->message), n = kind(new_err->message);
        if (o == n && o != OTHER) {
            json_diff_identical_messages += strcmp(old_err->message, new_err->message) == 0;
            if (getenv("JSONSCAN_DIFF_MESSAGES") != NULL &&
                strcmp(old_err->message, new_err->message) != 0)
                fprintf(stderr, "old: %s\nnew: %s\n", old_err->message, new_err->message);
            return JSON_DIFF_SAME_REFUSED;
        }
        if (o != n && o != OTHER && n != OTHER && old_rewrites(text, length, &big))
            return JSON_DIFF_OLD_MESSAGE_FROM_REWRITE;
        return different(why, why_size, "both refuse: old '%s', new '%s'", old_err->message,
                         new_err->message);
    }
    if (old == NULL) {
        if (kind(old_err->message) == INVALID && old_rewrites(text, length, &big) &&
            text_has_rewritten_real(text, length))
            return JSON_DIFF_OLD_REWRITE_BREAKS_REAL;
        return different(why, why_size, "old refuses ('%s'), new accepts", old_err->message);
    }
    if (kind(new_err->message) == SPELLED && complete && same(old, new))
        return JSON_DIFF_OLD_MISSES_OVERWRITTEN_MARK;
    if (kind(new_err->message) == NUL_U10FFFF && old_rewrites(text, length, &big) && big)
        return JSON_DIFF_OLD_MISSES_NUL_U10FFFF;
    return different(why, why_size, "old accepts, new refuses ('%s')", new_err->message);
}

/* The text revealed a line at a time, as a streamed read hands it over. */
struct lines {
    const char *text;
    size_t length;
};

static int next_line(void *context, struct sk_json_scan *scan)
{
    const struct lines *lines = context;
    const char *end = lines->text + lines->length;
    const char *newline = memchr(scan->end, '\n', (size_t)(end - scan->end));
    scan->end = newline != NULL ? newline + 1 : end;
    scan->whole = scan->end == end;
    return 0;
}

/* Where the tokens of TEXT read whole and streamed a line at a time part,
 * or NULL: the same tokens at the same places, and the same end. */
static const char *streamed_difference(const char *text, size_t length, size_t *at)
{
    struct lines lines = {text, length};
    struct sk_json_scan whole, streamed;
    sk_json_scan_init(&whole, text, length);
    sk_json_scan_init_streamed(&streamed, text, next_line, &lines);
    struct sk_error err_a = {0}, err_b = {0};
    for (*at = 0;; ++*at) {
        struct sk_json_event a, b;
        enum sk_json_token ta = sk_json_next(&whole, &a, &err_a);
        enum sk_json_token tb = sk_json_next(&streamed, &b, &err_b);
        if (ta != tb)
            return "token";
        if (ta == SK_JSON_ERROR || ta == SK_JSON_END)
            return NULL;
        if (a.start != b.start || a.length != b.length || a.escaped != b.escaped ||
            (ta == SK_JSON_INTEGER && a.integer != b.integer))
            return "span";
    }
}

enum json_diff_outcome json_diff(const char *text, size_t length, char *why, size_t why_size)
{
    size_t token;
    const char *parted = streamed_difference(text, length, &token);
    if (parted != NULL)
        return different(why, why_size, "read a line at a time, token %zu's %s differs", token,
                         parted);
    struct sk_error old_err = {0}, new_err = {0};
    json_t *old;
    struct sk_json_arena *arena;
    sk_json_parse(text, length, &old, &arena, &old_err);
    bool complete;
    helper_fault = NULL;
    json_t *new = rebuild(text, length, &new_err, &complete);
    why[0] = '\0';
    enum json_diff_outcome outcome =
        helper_fault != NULL
            ? different(why, why_size, "%s", helper_fault)
            : compare(text, length, old, &old_err, new, complete, &new_err, why, why_size);
    json_decref(new);
    sk_json_arena_free(arena);
    return outcome;
}
