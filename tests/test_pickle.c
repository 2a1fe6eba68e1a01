/* The pickle machine and its mapping: every limit, truncated and hostile
 * streams, and the shapes a reader that runs nothing must keep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pickle.h"
#include "pickle_map.h"

/* A growable byte string to write pickles with. */
struct bytes {
    unsigned char data[1 << 16];
    size_t length;
};

static void add(struct bytes *b, const void *data, size_t n)
{
    assert_true(b->length + n <= sizeof b->data);
    memcpy(b->data + b->length, data, n);
    b->length += n;
}

static void op(struct bytes *b, unsigned char code)
{
    add(b, &code, 1);
}

static void op_u32(struct bytes *b, unsigned char code, uint32_t v)
{
    unsigned char le[5] = {code, v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24};
    add(b, le, 5);
}

/* A string literal's bytes, NULs included. */
#define text(b, literal) add((b), (literal), sizeof(literal) - 1)

static int run(const struct bytes *b, const struct sk_pickle_limits *limits, struct sk_pickle *p,
               struct sk_error *err)
{
    struct sk_pickle_options options = {.joblib = true, .limits = limits};
    memset(err, 0, sizeof *err);
    int rc = sk_pickle_run(b->data, b->length, &options, p, err);
    if (rc != 0)
        print_message("(pickle refused: %s)\n", err->message);
    return rc;
}

/* Runs B with LIMITS and expects an error naming LIMIT_NAME. */
static void expect_limit(const struct bytes *b, const struct sk_pickle_limits *limits,
                         const char *limit_name)
{
    struct sk_pickle p;
    struct sk_error err;
    assert_int_equal(run(b, limits, &p, &err), -1);
    if (!strstr(err.message, limit_name))
        fail_msg("expected %s in: %s", limit_name, err.message);
    sk_pickle_free(&p);
    /* and the same stream passes without the lowered limit */
    assert_int_equal(run(b, NULL, &p, &err), 0);
    sk_pickle_free(&p);
}

/* [0, 1, ..., n-1] as a protocol 2 list of BININT1s. */
static void small_list(struct bytes *b, unsigned n)
{
    text(b, "\x80\x02]q\x00(");
    for (unsigned i = 0; i < n; i++) {
        op(b, 'K');
        op(b, (unsigned char)i);
    }
    text(b, "e.");
}

static void limit_opcodes(void **state)
{
    (void)state;
    struct bytes b = {0};
    small_list(&b, 50);
    expect_limit(&b, &(struct sk_pickle_limits){.opcodes = 20}, "SK_PICKLE_MAX_OPCODES");
}

static void limit_stack(void **state)
{
    (void)state;
    struct bytes b = {0};
    small_list(&b, 50);
    expect_limit(&b, &(struct sk_pickle_limits){.stack = 10}, "SK_PICKLE_MAX_STACK");
}

static void limit_values(void **state)
{
    (void)state;
    struct bytes b = {0};
    small_list(&b, 50);
    expect_limit(&b, &(struct sk_pickle_limits){.values = 10}, "SK_PICKLE_MAX_VALUES");
}

static void limit_arena(void **state)
{
    (void)state;
    struct bytes b = {0};
    small_list(&b, 200);
    expect_limit(&b, &(struct sk_pickle_limits){.arena_bytes = 1000}, "SK_PICKLE_MAX_ARENA_BYTES");
}

static void limit_memo(void **state)
{
    (void)state;
    struct bytes b = {0};
    text(&b, "\x80\x04]");
    for (int i = 0; i < 20; i++)
        op(&b, 0x94); /* MEMOIZE */
    text(&b, ".");
    expect_limit(&b, &(struct sk_pickle_limits){.memo = 5}, "SK_PICKLE_MAX_MEMO");
}

static void limit_marks(void **state)
{
    (void)state;
    struct bytes b = {0};
    text(&b, "\x80\x02");
    for (int i = 0; i < 20; i++)
        text(&b, "(");
    for (int i = 0; i < 20; i++)
        text(&b, "l"); /* each LIST closes one MARK, holding the list before */
    text(&b, ".");
    expect_limit(&b, &(struct sk_pickle_limits){.marks = 8}, "SK_PICKLE_MAX_MARKS");
}

static void limit_long_bytes(void **state)
{
    (void)state;
    struct bytes b = {0};
    text(&b, "\x80\x02\x8a\x20");
    for (int i = 0; i < 32; i++)
        op(&b, 0x7f);
    text(&b, ".");
    expect_limit(&b, &(struct sk_pickle_limits){.long_bytes = 16}, "SK_PICKLE_MAX_LONG_BYTES");
    /* the decimal text form too */
    struct bytes t = {0};
    text(&t, "L1234567890123456789012345678901234567890L\n.");
    expect_limit(&t, &(struct sk_pickle_limits){.long_bytes = 8}, "SK_PICKLE_MAX_LONG_BYTES");
}

static void limit_line_bytes(void **state)
{
    (void)state;
    struct bytes b = {0};
    text(&b, "Vsome rather long unicode line of text\n.");
    expect_limit(&b, &(struct sk_pickle_limits){.line_bytes = 10}, "SK_PICKLE_MAX_LINE_BYTES");
}

/* A length prefix larger than the input is refused before any allocation. */
static void lengths_checked_against_input(void **state)
{
    (void)state;
    static const unsigned char cases[][16] = {
        {0x80, 4, 0x8e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, /* BINBYTES8 */
        {0x80, 4, 0x8d, 0, 0, 0, 0, 0, 0, 0, 0x10},                      /* BINUNICODE8 */
        {0x80, 3, 'B', 0xff, 0xff, 0xff, 0x0f},                          /* BINBYTES */
        {0x80, 2, 0x8b, 0x00, 0x00, 0x00, 0x10},                         /* LONG4 256 MiB */
        {0x80, 5, 0x96, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, /* BYTEARRAY8 */
        {0x80, 4, 0x95, 0xff, 0xff, 0, 0, 0, 0, 0, 0},                   /* FRAME */
    };
    static const size_t lengths[] = {11, 11, 7, 7, 11, 11};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        struct sk_pickle p;
        struct sk_error err = {0};
        assert_int_equal(sk_pickle_run(cases[i], lengths[i], NULL, &p, &err), -1);
        assert_non_null(strstr(err.message, "pickle:"));
        sk_pickle_free(&p);
    }
}

static void truncated_streams_fail_cleanly(void **state)
{
    (void)state;
    struct bytes b = {0};
    /* {'a': [1, 2.5, 'x'], 'b': os.path.join} with several opcode kinds */
    text(&b, "\x80\x04}\x94(\x8c\x01"
             "a]\x94(K\x01G@\x04"
             "\x00\x00\x00\x00\x00\x00\x8c\x01xe\x8c\x01"
             "b\x8c\x07os.path\x8c\x04join\x93u.");
    struct sk_pickle p;
    struct sk_error err;
    assert_int_equal(run(&b, NULL, &p, &err), 0);
    sk_pickle_free(&p);
    for (size_t n = 0; n < b.length; n++) {
        struct bytes prefix = {0};
        add(&prefix, b.data, n);
        assert_int_equal(run(&prefix, NULL, &p, &err), -1);
        assert_true(err.message[0] != 0);
        sk_pickle_free(&p);
    }
}

static void memo_get_of_missing_key(void **state)
{
    (void)state;
    struct bytes b = {0};
    text(&b, "\x80\x02]q\x01h\x02.");
    struct sk_pickle p;
    struct sk_error err;
    assert_int_equal(run(&b, NULL, &p, &err), -1);
    assert_non_null(strstr(err.message, "never PUT"));
    sk_pickle_free(&p);
    /* MEMOIZE after a PUT at an unrelated key: the real map, not a list */
    struct bytes c = {0};
    text(&c, "\x80\x04]r\x05\x00\x00\x00\x94"
             "0h\x01h\x05\x86.");
    assert_int_equal(run(&c, NULL, &p, &err), 0);
    sk_pickle_free(&p);
}

/* L0 = [L0]; L(i+1) = [L(i), L(i)] for 64 levels: the graph stays linear. */
static void self_containing_list_stays_linear(void **state)
{
    (void)state;
    struct bytes b = {0};
    text(&b, "\x80\x02]q\x00h\x00"
             "a0");
    for (uint32_t i = 1; i <= 64; i++) {
        op(&b, ']');
        op_u32(&b, 'r', i);
        op(&b, '(');
        op_u32(&b, 'j', i - 1);
        op_u32(&b, 'j', i - 1);
        text(&b, "e0");
    }
    op_u32(&b, 'j', 64);
    op(&b, '.');
    struct sk_pickle p;
    struct sk_error err;
    assert_int_equal(run(&b, NULL, &p, &err), 0);
    assert_true(p.value_count < 200);
    struct sk_pickle_map map;
    assert_int_equal(sk_pickle_map(&p, NULL, &map, &err), 0);
    assert_true(map.cyclic);
    json_t *content = json_object_get(map.schema, "content");
    assert_int_equal(json_array_size(content), 2);
    assert_ptr_equal(json_array_get(content, 0), json_array_get(content, 1)); /* shared */
    sk_pickle_map_free(&map);
    /* written as skops would (a full copy per reference) it is refused */
    struct sk_pickle_map_options copies = {.skops_copies = true};
    assert_int_equal(sk_pickle_map(&p, &copies, &map, &err), -1);
    assert_non_null(strstr(err.message, "SK_MAX_NODES"));
    sk_pickle_map_free(&map);
    sk_pickle_free(&p);
}

static bool has_finding(const struct sk_pickle_map *map, const char *global, const char *reason)
{
    for (size_t i = 0; i < map->finding_count; i++)
        if ((!global || !strcmp(map->findings[i].global, global)) &&
            (!reason || strstr(map->findings[i].reason, reason)))
            return true;
    return false;
}

static void map_bytes(const struct bytes *b, struct sk_pickle *p, struct sk_pickle_map *map)
{
    struct sk_error err;
    assert_int_equal(run(b, NULL, p, &err), 0);
    assert_int_equal(sk_pickle_map(p, NULL, map, &err), 0);
}

static void persid_ext_and_buffers_reported(void **state)
{
    (void)state;
#define STREAM(literal)                                                                            \
    {                                                                                              \
        literal, sizeof(literal) - 1                                                               \
    }
    static const struct {
        const char *bytes;
        size_t length;
    } streams[] = {
        STREAM("\x80\x02Pabc\n."),       STREAM("\x80\x02K\x01Q."), STREAM("\x80\x02\x82\x07."),
        STREAM("\x80\x02\x83\x07\x00."), STREAM("\x80\x05\x97."),
    };
#undef STREAM
    static const char *const reasons[] = {"persistent id", "persistent id", "extension code",
                                          "extension code", "out-of-band"};
    for (size_t i = 0; i < 5; i++) {
        struct bytes b = {0};
        add(&b, streams[i].bytes, streams[i].length);
        struct sk_pickle p;
        struct sk_pickle_map map;
        map_bytes(&b, &p, &map);
        assert_true(p.finding_count >= 1);
        if (!has_finding(&map, NULL, reasons[i]))
            fail_msg("stream %zu: no finding '%s'", i, reasons[i]);
        assert_string_equal(json_string_value(json_object_get(map.schema, "__loader__")),
                            "UnrepresentableNode");
        sk_pickle_map_free(&map);
        sk_pickle_free(&p);
    }
}

static void second_stream_reported(void **state)
{
    (void)state;
    struct bytes b = {0};
    text(&b, "\x80\x02}.\x80\x02\x63os\nsystem\nX\x02\x00\x00\x00id\x85R.");
    struct sk_pickle p;
    struct sk_pickle_map map;
    map_bytes(&b, &p, &map);
    assert_true(has_finding(&map, NULL, "second pickle stream"));
    assert_true(has_finding(&map, "os.system", NULL));
    assert_int_equal(p.global_count, 1);
    sk_pickle_map_free(&map);
    sk_pickle_free(&p);
}

static void dangerous_calls_reported(void **state)
{
    (void)state;
    /* getattr(GLOBAL 'sklearn.x os', 'system')('id'): every name of the chain */
    struct bytes b = {0};
    text(&b, "\x80\x02\x63"
             "builtins\ngetattr\n\x63sklearn.x\nos\nX\x06\x00\x00\x00system\x86R"
             "X\x02\x00\x00\x00id\x85R.");
    struct sk_pickle p;
    struct sk_pickle_map map;
    map_bytes(&b, &p, &map);
    assert_true(has_finding(&map, "builtins.getattr", NULL));
    assert_true(has_finding(&map, "sklearn.x.os", NULL));
    sk_pickle_map_free(&map);
    sk_pickle_free(&p);
    /* BUILD on a global function, INST at protocol 0, a dotted STACK_GLOBAL */
    struct bytes c = {0};
    text(&c, "\x80\x02\x63mod\nfunc\n}b.");
    map_bytes(&c, &p, &map);
    assert_true(has_finding(&map, "mod.func", "BUILD"));
    sk_pickle_map_free(&map);
    sk_pickle_free(&p);
    struct bytes d = {0};
    text(&d, "(S'id'\nios\nsystem\n.");
    map_bytes(&d, &p, &map);
    assert_true(has_finding(&map, "os.system", NULL));
    sk_pickle_map_free(&map);
    sk_pickle_free(&p);
    struct bytes e = {0};
    text(&e, "\x80\x04\x8c\x03mod\x8c\x09os.system\x93.");
    map_bytes(&e, &p, &map);
    assert_true(has_finding(&map, "mod.os.system", "dotted"));
    sk_pickle_map_free(&map);
    sk_pickle_free(&p);
}

static void protocol2_names_and_literals(void **state)
{
    (void)state;
    /* [__builtin__.set, 1e-05, 1e16, 0.1, NaN, 2**70, -1 (LONG1), 'é'] */
    struct bytes b = {0};
    text(&b, "\x80\x02](\x63__builtin__\nset\n");
    static const double reals[] = {1e-05, 1e16, 0.1, 0.0 / 0.0, -0.0, 123456789.125};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        uint64_t bits;
        memcpy(&bits, &reals[i], 8);
        op(&b, 'G');
        for (int k = 7; k >= 0; k--)
            op(&b, (unsigned char)(bits >> (8 * k)));
    }
    text(&b, "\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x40"); /* 2**70 */
    text(&b, "\x8a\x01\xff");                                 /* -1 */
    text(&b, "X\x02\x00\x00\x00\xc3\xa9"
             "e.");
    struct sk_pickle p;
    struct sk_pickle_map map;
    map_bytes(&b, &p, &map);
    assert_true(sk_pk_text_is(p.globals[0].raw_module, "__builtin__"));
    assert_true(sk_pk_text_is(p.globals[0].module, "builtins"));
    json_t *content = json_object_get(map.schema, "content");
    static const char *const want[] = {
        NULL,  "1e-05",      "1e+16",         "0.1",
        "NaN", "-0.0",       "123456789.125", "1180591620717411303424",
        "-1",  "\"\\u00e9\""};
    assert_int_equal(json_array_size(content), 10);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(content, 0), "__loader__")), "TypeNode");
    for (size_t i = 1; i < 10; i++)
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(content, i), "content")), want[i]);
    sk_pickle_map_free(&map);
    sk_pickle_free(&p);
}

static void stack_global_through_memo(void **state)
{
    (void)state;
    /* the module and name strings come from the memo, not the last opcodes */
    struct bytes b = {0};
    text(&b, "\x80\x04\x8c\x05posix\x94"
             "0\x8c\x06system\x94"
             "0\x8c\x05"
             "decoy\x8c\x05PCG64\x86"
             "0h\x00h\x01\x93.");
    struct sk_pickle p;
    struct sk_error err;
    assert_int_equal(run(&b, NULL, &p, &err), 0);
    assert_int_equal(p.global_count, 1);
    assert_true(sk_pk_text_is(p.globals[0].module, "posix"));
    assert_true(sk_pk_text_is(p.globals[0].name, "system"));
    sk_pickle_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(limit_opcodes),
        cmocka_unit_test(limit_stack),
        cmocka_unit_test(limit_values),
        cmocka_unit_test(limit_arena),
        cmocka_unit_test(limit_memo),
        cmocka_unit_test(limit_marks),
        cmocka_unit_test(limit_long_bytes),
        cmocka_unit_test(limit_line_bytes),
        cmocka_unit_test(lengths_checked_against_input),
        cmocka_unit_test(truncated_streams_fail_cleanly),
        cmocka_unit_test(memo_get_of_missing_key),
        cmocka_unit_test(self_containing_list_stays_linear),
        cmocka_unit_test(persid_ext_and_buffers_reported),
        cmocka_unit_test(second_stream_reported),
        cmocka_unit_test(dangerous_calls_reported),
        cmocka_unit_test(protocol2_names_and_literals),
        cmocka_unit_test(stack_global_through_memo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
