/* format/jsonscan.c: its integers are strtoll's at every length (digits
 * are read eight at a time), the steps it takes inline (a plain string,
 * key, integer, a container's start and end) end and refuse documents as
 * sk_json_parse does, and its container digests: the same tokens
 * give the same digest however they are laid out, any other token
 * another, and the values of keys the caller names (a whole container
 * too) are left out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonscan.h"
#include "jsontext.h"

static bool id_key(const struct sk_json_event *key)
{
    return sk_json_equals(key, "__id__", 6);
}

/* The digest of TEXT's outermost container; false where it does not scan. */
static bool digest_of(const char *text, bool skip_ids, uint64_t *digest)
{
    struct sk_json_digests digests = {.skips_value = skip_ids ? id_key : NULL};
    struct sk_json_scan scan;
    sk_json_scan_init(&scan, text, strlen(text));
    sk_json_scan_digest(&scan, &digests);
    struct sk_error err = {0};
    struct sk_json_event event;
    enum sk_json_token token;
    bool ok = false;
    while ((token = sk_json_next(&scan, &event, &err)) != SK_JSON_END && token != SK_JSON_ERROR)
        if ((token == SK_JSON_OBJECT_END || token == SK_JSON_ARRAY_END) && scan.depth == 0) {
            *digest = event.digest;
            ok = true;
        }
    free(digests.open);
    return ok && token == SK_JSON_END;
}

static uint64_t digest(const char *text, bool skip_ids)
{
    uint64_t d = 0;
    assert_true(digest_of(text, skip_ids, &d));
    return d;
}

/* The one value of "[TEXT]". */
static enum sk_json_token only_value(const char *text, struct sk_json_event *value)
{
    char wrapped[64];
    snprintf(wrapped, sizeof wrapped, "[%s]", text);
    struct sk_json_scan scan;
    sk_json_scan_init(&scan, wrapped, strlen(wrapped));
    struct sk_error err = {0};
    struct sk_json_event open;
    assert_int_equal(sk_json_next(&scan, &open, &err), SK_JSON_ARRAY_START);
    return sk_json_next(&scan, value, &err);
}

static void integers_of_every_length(void **state)
{
    (void)state;
    const char *digits = "9223372036854775807";
    for (size_t length = 1; length <= 19; length++) {
        for (int sign = 0; sign < 2; sign++) {
            char text[32];
            snprintf(text, sizeof text, "%s%.*s", sign ? "-" : "", (int)length, digits);
            struct sk_json_event value;
            assert_int_equal(only_value(text, &value), SK_JSON_INTEGER);
            assert_true(value.integer == strtoll(text, NULL, 10));
            assert_int_equal(value.length, strlen(text));
        }
    }
    struct sk_json_event value;
    assert_int_equal(only_value("-9223372036854775808", &value), SK_JSON_INTEGER);
    assert_true(value.integer == INT64_MIN);
    assert_int_equal(only_value("9223372036854775808", &value), SK_JSON_BIG_INTEGER);
    assert_int_equal(only_value("1234567890123456", &value), SK_JSON_INTEGER);
    assert_true(value.integer == 1234567890123456LL);
    assert_int_equal(only_value("12345678.5", &value), SK_JSON_REAL); /* a point after eight */
    assert_int_equal(only_value("12345678e1", &value), SK_JSON_REAL);
    assert_int_equal(only_value("1234567:", &value), SK_JSON_INTEGER); /* ':' is '0' + 10 */
    assert_int_equal(value.length, 7);
    assert_true(value.integer == 1234567);
    assert_int_equal(only_value("0123", &value), SK_JSON_ERROR);
}

static void layout_does_not_matter(void **state)
{
    (void)state;
    assert_int_equal(digest("{\"a\": [1, {\"b\": \"x\"}], \"c\": null}", false),
                     digest("{\n  \"a\":[1,\n    {\"b\":\"x\"}\n  ],\"c\" : null\n}", false));
}

static void every_token_counts(void **state)
{
    (void)state;
    const char *base = "{\"a\": [1, {\"b\": \"x\"}], \"c\": null}";
    const char *others[] = {
        "{\"a\": [1, {\"b\": \"y\"}], \"c\": null}",       /* a nested string */
        "{\"a\": [2, {\"b\": \"x\"}], \"c\": null}",       /* a number */
        "{\"a\": [1, {\"b\": \"x\"}], \"c\": false}",      /* a literal */
        "{\"a\": [1, [\"b\", \"x\"]], \"c\": null}",       /* an object for an array */
        "{\"a\": [1, {\"b\": \"x\"}, {}], \"c\": null}",   /* one more element */
        "{\"a\": [1, {\"b\": \"\\u0078\"}], \"c\": null}", /* the same value, escaped */
        "{\"a\": [1, {\"bx\": \"\"}], \"c\": null}",       /* bytes moved across tokens */
        "{\"c\": null, \"a\": [1, {\"b\": \"x\"}]}",       /* keys in another order */
    };
    uint64_t d = digest(base, false);
    for (size_t i = 0; i < sizeof others / sizeof *others; i++)
        assert_true(digest(others[i], false) != d);
}

static void named_values_left_out(void **state)
{
    (void)state;
    const char *a = "{\"__id__\": 1, \"x\": {\"__id__\": [2, 3], \"v\": 4}}";
    const char *b = "{\"__id__\": 9, \"x\": {\"__id__\": {\"k\": 5}, \"v\": 4}}";
    const char *c = "{\"__id__\": 9, \"x\": {\"__id__\": {\"k\": 5}, \"v\": 6}}";
    assert_int_equal(digest(a, true), digest(b, true));
    assert_true(digest(b, true) != digest(c, true));
    assert_true(digest(a, false) != digest(b, false));
}

/* TEXT read whole, token by token: NULL where it scans to its end, else
 * the error message (in a static buffer). */
static const char *scan_outcome(const char *text)
{
    static struct sk_error err;
    memset(&err, 0, sizeof err);
    struct sk_json_scan scan;
    sk_json_scan_init(&scan, text, strlen(text));
    struct sk_json_event event;
    enum sk_json_token token;
    while ((token = sk_json_next(&scan, &event, &err)) != SK_JSON_END && token != SK_JSON_ERROR)
        ;
    return token == SK_JSON_END ? NULL : err.message;
}

/* Each step next_token and scan_value take inline, at its edges: the
 * document is read or refused as sk_json_parse reads or refuses it, and a
 * closer of the wrong kind is refused in jansson's words. */
static void inline_steps_read_as_the_parser(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *refusal; /* a part of the message; NULL: read */
    } cases[] = {
        {"{\"a\": 1, \"b\": [1, \"s\", {}], \"c\": {\"d\": \"e\"}}", NULL},
        {"[[], [1], [[2]], {}, {\"k\": []}]", NULL},
        {"{\"a\": 1]", "'}' expected"},
        {"[1}", "']' expected"},
        {"{\"a\": {\"b\": \"x\"]}", "'}' expected"},
        {"[{\"a\": 2}}", "']' expected"},
        {"[[1]}", "']' expected"},
        {"{\"a\": [1}}", "']' expected"},
        {"[]]", "end of file expected"},
        {"{\"a\" : 1, \"b\"\t:2}", NULL},
        {"{\"a\"1}", "':' expected"},
        {"{\"a\\u0041\": \"\\n\u00e9\"}", NULL},
        {"[123456789012345678, 1234567890123456789, 12345678901234567890]", NULL},
        {"[12.5, 1e3, 7E-2, 0, -4]", NULL},
        {"[01]", "invalid token"},
        {"[1x]", "']' expected"},
        {"[\"a\"", "premature end of input"},
        {"{\"a\": \"b", "premature end of input"},
        {"[true, false, null]", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *text = cases[i].text;
        json_t *root;
        struct sk_json_arena *arena = NULL;
        struct sk_error parse_err = {0};
        bool parsed = sk_json_parse(text, strlen(text), &root, &arena, &parse_err) == 0;
        sk_json_arena_free(arena);
        const char *refusal = scan_outcome(text);
        if (parsed != (refusal == NULL) || (cases[i].refusal == NULL) != (refusal == NULL) ||
            (refusal != NULL && strstr(refusal, cases[i].refusal) == NULL))
            fail_msg("%s: scanned: %s; parsed: %s", text, refusal ? refusal : "read",
                     parsed ? "read" : parse_err.message);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(integers_of_every_length),
        cmocka_unit_test(inline_steps_read_as_the_parser),
        cmocka_unit_test(layout_does_not_matter),
        cmocka_unit_test(every_token_counts),
        cmocka_unit_test(named_values_left_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
