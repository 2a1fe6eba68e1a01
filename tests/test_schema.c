/* Schema nodes: skops's node graph, its __id__ memo and its trust rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "jsontext.h"
#include "model.h"
#include "strmap.h"
#include "testutil.h"

/* JSON written with single quotes, for readability here. */
static char *q(const char *text)
{
    char *s = strdup(text);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    return s;
}

#define STR_TYPES                                                                                  \
    "'key_types': {'__class__': 'list', '__module__': 'builtins', '__loader__': 'ListNode', "      \
    "'content': []}"
#define JSON1(id)                                                                                  \
    "{'__class__': 'str', '__module__': 'builtins', '__loader__': 'JsonNode', 'content': '1', "    \
    "'__id__': " #id "}"
#define OBJ(module, cls, id)                                                                       \
    "{'__class__': '" cls "', '__module__': '" module                                              \
    "', '__loader__': 'ObjectNode', '__id__': " #id "}"

/* Opens SCHEMA (single-quoted JSON) with MEMBERS; returns the model or NULL
 * with ERR set. */
static struct sk_model *open_schema(const char *schema, const struct test_member *members,
                                    size_t count, struct sk_error *err)
{
    char *text = q(schema);
    char *path = test_make_skops(text, members, count);
    struct sk_model *model = NULL;
    struct sk_model_options options = {.build_layout = true, .read_npy_headers = true};
    sk_model_open(path, &options, &model, err);
    unlink(path);
    free(path);
    free(text);
    return model;
}

static char *untrusted_of(struct sk_model *model)
{
    char **names;
    size_t count;
    struct sk_error err = {0};
    assert_int_equal(sk_schema_untrusted(model->schema, &names, &count, &err), 0);
    char *joined = calloc(1, 4096);
    for (size_t i = 0; i < count; i++) {
        strcat(joined, i ? " " : "");
        strcat(joined, names[i]);
    }
    sk_string_list_free(names, count);
    return joined;
}

static void shared_ids_are_one_node_and_later_states_are_ignored(void **state)
{
    (void)state;
    struct sk_error err = {0};
    struct sk_model *model = open_schema(
        "{'__class__': 'dict', '__module__': 'builtins', '__loader__': 'DictNode', 'protocol': 2,"
        " '__id__': 1, " STR_TYPES ", 'content': {"
        "  'a': {'__class__': 'list', '__module__': 'builtins', '__loader__': 'ListNode',"
        "        'content': [" JSON1(3) "], '__id__': 2},"
                                        "  'b': {'__class__': 'system', '__module__': 'os', "
                                        "'__loader__': 'PickleNode', '__id__': 2},"
                                        "  'c': " OBJ("os", "system", 3) "}}",
        NULL, 0, &err);
    assert_non_null(model);
    const struct sk_node *root = model->schema->root;
    assert_int_equal(root->slot_count, 4); /* key_types, a, b, c */
    assert_ptr_equal(root->slots[1].node, root->slots[2].node);
    assert_int_equal(root->slots[3].node->loader, SK_LOADER_JSON);
    char *untrusted = untrusted_of(model);
    assert_string_equal(untrusted, "");
    free(untrusted);
    sk_model_close(model);
}

static void unknown_loader_error_names_its_path(void **state)
{
    (void)state;
    struct sk_error err = {0};
    struct sk_model *model = open_schema(
        "{'__class__': 'dict', '__module__': 'builtins', '__loader__': 'DictNode', 'protocol': 2,"
        " " STR_TYPES ", 'content': {'estimators_': {'__class__': 'list', '__module__': 'builtins',"
        " '__loader__': 'ListNode', 'content': [" JSON1(5) ", {'__class__': 'X', '__module__': 'm',"
                                                           " '__loader__': 'FooNode'}]}}}",
        NULL, 0, &err);
    assert_null(model);
    assert_non_null(strstr(
        err.message, "schema.json: node at estimators_/1: unknown loader 'FooNode' for type m.X"));
}

static void trust_follows_each_loader(void **state)
{
    (void)state;
    struct sk_error err = {0};
    struct sk_model *model = open_schema(
        "{'__class__': 'dict', '__module__': 'builtins', '__loader__': 'DictNode', 'protocol': 2,"
        " " STR_TYPES ", 'content': {"
        " 'sys': " OBJ(
            "os", "system",
            10) ","
                " 'lr': " OBJ(
                    "sklearn.linear_model._logistic", "LogisticRegression",
                    11) ","
                        " 'sqrt': {'__class__': 'sqrt', '__module__': "
                        "'numpy.core._multiarray_umath', '__loader__': 'FunctionNode'},"
                        " 'mean': {'__class__': 'mean', '__module__': 'numpy', '__loader__': "
                        "'FunctionNode'},"
                        " 'slice': {'__class__': 'weird', '__module__': 'evil', '__loader__': "
                        "'SliceNode',"
                        "           'content': {'start': 1, 'stop': null, 'step': "
                        "12345678901234567890123}},"
                        " 'json': {'__class__': 'x', '__module__': 'evil', '__loader__': "
                        "'JsonNode', 'content': 'null'},"
                        " 'm': {'__class__': 'Owner', '__module__': 'user', '__loader__': "
                        "'MethodNode',"
                        "       'content': {'func': 'run', 'obj': " OBJ(
                            "user", "Owner",
                            12) "}},"
                                " 'dd': {'__class__': 'MyDD', '__module__': 'user', '__loader__': "
                                "'DefaultDictNode',"
                                "        'content': {'main': {'__class__': 'dict', '__module__': "
                                "'builtins', '__loader__': 'DictNode',"
                                "                             " STR_TYPES ", 'content': {}},"
                                "                    'default_factory': {'__class__': 'list', "
                                "'__module__': 'builtins', '__loader__': 'TypeNode'}}}"
                                "}}",
        NULL, 0, &err);
    assert_non_null(model);
    char *untrusted = untrusted_of(model);
    assert_string_equal(untrusted, "numpy.mean os.system user.MyDD user.Owner user.Owner.run");
    free(untrusted);
    /* the slice keeps Python's view of a huge integer */
    const struct sk_entry *slice;
    assert_int_equal(sk_layout_resolve(model->layout, "slice", true, &slice), 0);
    assert_string_equal(slice->text, "slice(1, None, 12345678901234567890123)\n");
    sk_model_close(model);
}

static void tree_and_loss_nodes_hand_trust_down(void **state)
{
    (void)state;
    struct sk_error err = {0};
    /* An object of class Tree is trusted below a TreeNode, not elsewhere. */
    struct sk_model *model = open_schema(
        "{'__class__': 'dict', '__module__': 'builtins', '__loader__': 'DictNode', 'protocol': 2,"
        " " STR_TYPES ", 'content': {"
        " 't': {'__class__': 'Tree', '__module__': 'sklearn.tree._tree', '__loader__': 'TreeNode',"
        "       '__reduce__': {'args': {'__class__': 'tuple', '__module__': 'builtins', "
        "'__loader__': 'TupleNode', 'content': []}},"
        "       'content': {'__class__': 'dict', '__module__': 'builtins', '__loader__': "
        "'DictNode', " STR_TYPES ","
        "                   'content': {'inner': " OBJ(
            "sklearn.tree._tree", "Tree",
            20) "}}},"
                " 'outer': " OBJ(
                    "sklearn.tree._tree", "Tree",
                    21) ","
                        " 'loss': {'__class__': 'Hinge', '__module__': "
                        "'sklearn.linear_model._sgd_fast', '__loader__': 'LossNode',"
                        "          '__reduce__': {'args': {'__class__': 'tuple', '__module__': "
                        "'builtins', '__loader__': 'TupleNode', 'content': []}},"
                        "          'content': {'__class__': 'dict', '__module__': 'builtins', "
                        "'__loader__': 'DictNode', " STR_TYPES ", 'content': {}}}"
                        "}}",
        NULL, 0, &err);
    assert_non_null(model);
    char *untrusted = untrusted_of(model);
    assert_string_equal(untrusted, "sklearn.tree._tree.Tree");
    free(untrusted);
    const struct sk_entry *e;
    assert_int_equal(sk_layout_resolve(model->layout, "t/inner", true, &e), 0);
    assert_false(e->refused);
    assert_int_equal(sk_layout_resolve(model->layout, "outer", true, &e), 0);
    assert_true(e->refused);
    assert_int_equal(sk_layout_resolve(model->layout, "t/.args", true, &e), 0);
    assert_int_equal(e->kind, SK_ENTRY_DIR);
    sk_model_close(model);
}

static void protocol_0_functions_use_their_content(void **state)
{
    (void)state;
    struct sk_error err = {0};
    struct sk_model *model = open_schema(
        "{'__class__': 'dict', '__module__': 'builtins', '__loader__': 'DictNode', 'protocol': 0,"
        " " STR_TYPES ", 'content': {"
        " 'f': {'__class__': 'ufunc', '__module__': 'numpy', '__loader__': 'FunctionNode',"
        "       'content': {'module_path': 'builtins', 'function': 'eval'}},"
        " 'g': {'__class__': 'ufunc', '__module__': 'numpy', '__loader__': 'FunctionNode',"
        "       'content': {'module_path': 'scipy.special._ufuncs', 'function': 'erfc'}}}}",
        NULL, 0, &err);
    assert_non_null(model);
    char *untrusted = untrusted_of(model);
    assert_string_equal(untrusted, "builtins.eval");
    free(untrusted);
    const struct sk_entry *g;
    assert_int_equal(sk_layout_resolve(model->layout, "g", true, &g), 0);
    assert_string_equal(g->text, "scipy.special._ufuncs.erfc\n");
    sk_model_close(model);
}

static void corrupt_states_fail_clearly(void **state)
{
    (void)state;
    struct sk_error err = {0};
    assert_null(open_schema(
        "{'__class__': 'dict', '__module__': 'builtins', '__loader__': 'DictNode', 'protocol': 2,"
        " " STR_TYPES
        ", 'content': {'m': {'__class__': 'A', '__module__': 'x', '__loader__': 'MethodNode',"
        " 'content': {'func': 'f', 'obj': " OBJ("y", "B", 7) "}}}}",
        NULL, 0, &err));
    assert_non_null(strstr(err.message, "node at m: method of x.A is bound to an object of y.B"));
    sk_error_clear(&err);
    assert_null(open_schema("{'__class__': 'ndarray', '__module__': 'numpy', '__loader__': "
                            "'NdArrayNode', 'protocol': 2,"
                            " 'type': 'numpy', 'file': '/etc/passwd'}",
                            NULL, 0, &err));
    assert_non_null(strstr(err.message, "no member '/etc/passwd' in the archive"));
    sk_error_clear(&err);
    assert_null(open_schema("{'__class__': 'dict'}", NULL, 0, &err));
    assert_non_null(strstr(err.message, "no 'protocol'"));
    sk_error_clear(&err);
    assert_null(open_schema("[1, 2", NULL, 0, &err));
    assert_non_null(strstr(err.message, "schema.json: invalid JSON"));
}

static void cycles_terminate(void **state)
{
    (void)state;
    struct sk_error err = {0};
    struct sk_model *model = open_schema(
        "{'__class__': 'dict', '__module__': 'builtins', '__loader__': 'DictNode', 'protocol': 2,"
        " '__id__': 1, " STR_TYPES ", 'content': {"
        " 'self': {'__class__': 'dict', '__module__': 'builtins', '__loader__': 'CachedNode', "
        "'__id__': 1},"
        " 'again': {'__class__': 'list', '__module__': 'builtins', '__loader__': 'ListNode', "
        "'__id__': 1}}}",
        NULL, 0, &err);
    assert_non_null(model);
    const struct sk_entry *self;
    assert_int_equal(sk_layout_resolve(model->layout, "self", false, &self), 0);
    assert_int_equal(self->kind, SK_ENTRY_SYMLINK);
    assert_string_equal(self->link_text, ".");
    assert_int_equal(sk_layout_resolve(model->layout, "self/again/self/again", true, &self), 0);
    assert_ptr_equal(self, model->layout->root);
    sk_model_close(model);
}

static void json_text_keeps_what_jansson_cannot(void **state)
{
    (void)state;
    struct sk_error err = {0};
    json_t *root;
    struct sk_json_arena *arena;
    const char *text = "{\"a\\u0000b\": [123456789012345678901234567890, -1, 2.5], \"c\": 1}";
    assert_int_equal(sk_json_parse(text, strlen(text), &root, &arena, &err), 0);
    const char *key = json_object_iter_key(json_object_iter(root));
    size_t key_length = json_object_iter_key_len(json_object_iter(root));
    size_t decoded_length;
    char *decoded = sk_json_key_decode(key, key_length, &decoded_length);
    assert_non_null(decoded);
    assert_int_equal(decoded_length, 3);
    assert_memory_equal(decoded, "a\0b", 3);
    free(decoded);
    json_t *array = json_object_iter_value(json_object_iter(root));
    assert_string_equal(sk_json_big_integer(json_array_get(array, 0)),
                        "123456789012345678901234567890");
    size_t length;
    char *dumped = sk_json_dump_python(array, &length);
    assert_string_equal(dumped, "[123456789012345678901234567890, -1, 2.5]\n");
    free(dumped);
    sk_json_arena_free(arena);
    char *node_text;
    assert_int_equal(sk_json_node_text("\"caf\\u00e9\"", 11, &node_text, &length), 0);
    assert_string_equal(node_text, "caf\xc3\xa9\n");
    free(node_text);
    assert_int_equal(sk_json_node_text("Infinity", 8, &node_text, &length), 0);
    assert_string_equal(node_text, "Infinity\n");
    free(node_text);
}

/* A JsonNode's file as jansson decodes it: a string's text, else the JSON
 * as written; then a newline. sk_json_node_text skips jansson for plain
 * strings, and must give the same bytes for anything. */
static void node_text_as_jansson(const char *json, size_t length, char **text, size_t *text_length)
{
    size_t start = 0;
    while (start < length && strchr(" \t\r\n", json[start]) && json[start] != '\0')
        start++;
    json_t *decoded = start < length && json[start] == '"'
                          ? json_loadb(json, length, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL)
                          : NULL;
    const char *source = json_is_string(decoded) ? json_string_value(decoded) : json;
    size_t source_length = json_is_string(decoded) ? json_string_length(decoded) : length;
    *text = malloc(source_length + 1);
    assert_non_null(*text);
    memcpy(*text, source, source_length);
    (*text)[source_length] = '\n';
    *text_length = source_length + 1;
    json_decref(decoded);
}

static void node_text_of_plain_strings_is_jansson_s(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        size_t length;
    } cases[] = {
        {"\"gini\"", 6},
        {"  \"best\" \r\n\t", 12},
        {"\"\"", 2},
        {"\"a\" x", 5},
        {"\"a\"\"", 4},
        {"\"a", 2},
        {"\"", 1},
        {"\"a\\\"b\"", 6},
        {"\"tab\there\"", 10},
        {"\"del\x7f\"", 6},
        {"\"caf\xc3\xa9\"", 7},
        {"\"bad\xff\"", 6},
        {"\"nul\0\"", 6},
        {"\"x\"\0", 4},
        {"\"x\"\v", 4},
        {"\v\"x\"", 4},
        {"1.5", 3},
        {"[\"a\"]", 5},
        {"\"a/b~c{}[]:,\"", 13},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *got, *want;
        size_t got_length, want_length;
        assert_int_equal(sk_json_node_text(cases[i].json, cases[i].length, &got, &got_length), 0);
        node_text_as_jansson(cases[i].json, cases[i].length, &want, &want_length);
        if (got_length != want_length || memcmp(got, want, got_length) != 0)
            fail_msg("case %zu: %zu bytes, jansson's %zu", i, got_length, want_length);
        free(got);
        free(want);
    }
}

static void strmap_stores_and_replaces_in(struct sk_strmap *map)
{
    int values[1000];
    char key[32];
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(sk_strmap_put(map, key, (size_t)n, &values[i]), 0);
    }
    assert_int_equal(sk_strmap_count(map), 1000);
    assert_ptr_equal(sk_strmap_get(map, "k777", 4), &values[777]);
    assert_null(sk_strmap_get(map, "k1000", 5));
    assert_int_equal(sk_strmap_put(map, "k1", 2, &values[5]), 0);
    assert_ptr_equal(sk_strmap_get(map, "k1", 2), &values[5]);
    assert_int_equal(sk_strmap_put(map, "a\0b", 3, &values[0]), 0);
    assert_null(sk_strmap_get(map, "a", 1));
    assert_ptr_equal(sk_strmap_get(map, "a\0b", 3), &values[0]);
    sk_strmap_free(map);
}

static void strmap_stores_and_replaces(void **state)
{
    (void)state;
    strmap_stores_and_replaces_in(sk_strmap_new());
    strmap_stores_and_replaces_in(sk_strmap_new_remembering());
}

/* A remembering map answers from what it found last only for the same
 * bytes: keys alike in length, first, middle and last byte stay apart, a
 * value replaced is seen, and a grow that moves every slot forgets. */
static void strmap_remembers_only_what_it_should(void **state)
{
    (void)state;
    struct sk_strmap *map = sk_strmap_new_remembering();
    int values[3000];
    assert_int_equal(sk_strmap_put(map, "axxb", 4, &values[0]), 0);
    assert_int_equal(sk_strmap_put(map, "ayxb", 4, &values[1]), 0);
    assert_ptr_equal(sk_strmap_get(map, "axxb", 4), &values[0]);
    assert_ptr_equal(sk_strmap_get(map, "ayxb", 4), &values[1]);
    assert_ptr_equal(sk_strmap_get(map, "axxb", 4), &values[0]);
    assert_null(sk_strmap_get(map, "azxb", 4));
    assert_int_equal(sk_strmap_put(map, "axxb", 4, &values[2]), 0);
    assert_ptr_equal(sk_strmap_get(map, "axxb", 4), &values[2]);
    char key[32];
    for (int i = 3; i < 3000; i++) { /* several grows, each looked up between */
        int n = snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(sk_strmap_put(map, key, (size_t)n, &values[i]), 0);
        assert_ptr_equal(sk_strmap_get(map, "axxb", 4), &values[2]);
        assert_ptr_equal(sk_strmap_get(map, key, (size_t)n), &values[i]);
    }
    for (int i = 3; i < 3000; i++) {
        int n = snprintf(key, sizeof key, "k%d", i);
        assert_ptr_equal(sk_strmap_get(map, key, (size_t)n), &values[i]);
    }
    sk_strmap_free(map);
}

/* Loads a list of two JsonNodes whose __id__s are the JSON texts A and B;
 * returns 1 when skopsfs makes them one node (as skops's memo would), 0
 * when two, -1 when the archive is refused (ERR says why). */
static int one_node(const char *a, const char *b, struct sk_error *err)
{
    char *schema;
    assert_true(asprintf(&schema,
                         "{\"__class__\": \"list\", \"__module__\": \"builtins\", \"__loader__\": "
                         "\"ListNode\", \"protocol\": 2, \"content\": ["
                         "{\"__class__\": \"int\", \"__module__\": \"builtins\", \"__loader__\": "
                         "\"JsonNode\", \"content\": \"1\", \"__id__\": %s},"
                         "{\"__class__\": \"int\", \"__module__\": \"builtins\", \"__loader__\": "
                         "\"JsonNode\", \"content\": \"2\", \"__id__\": %s}]}",
                         a, b) > 0);
    sk_error_clear(err);
    struct sk_model *model = open_schema(schema, NULL, 0, err);
    free(schema);
    if (model == NULL)
        return -1;
    const struct sk_node *root = model->schema->root;
    int same = root->slots[0].node == root->slots[1].node;
    sk_model_close(model);
    return same;
}

/* Python's equality of json.loads values, case by case. */
static void ids_are_one_object_exactly_when_python_says_equal(void **state)
{
    (void)state;
    struct sk_error err = {0};
    /* strings compare whole: long ones equal in their first 300 bytes */
    char long_a[400], long_b[400];
    snprintf(long_a, sizeof long_a, "\"%0300d%s\"", 0, "a");
    snprintf(long_b, sizeof long_b, "\"%0300d%s\"", 0, "b");
    assert_int_equal(one_node(long_a, long_b, &err), 0);
    assert_int_equal(one_node(long_a, long_a, &err), 1);
    /* NUL inside a string is part of it */
    assert_int_equal(one_node("\"a\\u0000b\"", "\"a\\u0000c\"", &err), 0);
    assert_int_equal(one_node("\"a\\u0000b\"", "\"a\\u0000b\"", &err), 1);
    assert_int_equal(one_node("\"a\"", "\"a\\u0000\"", &err), 0);
    /* a string never equals a number */
    assert_int_equal(one_node("\"1\"", "1", &err), 0);
    assert_int_equal(one_node("\"i:1\"", "1", &err), 0);
    assert_int_equal(one_node("\"1.5\"", "1.5", &err), 0);
    /* 1 == 1.0 == True */
    assert_int_equal(one_node("1", "1.0", &err), 1);
    assert_int_equal(one_node("1", "true", &err), 1);
    assert_int_equal(one_node("1.0", "true", &err), 1);
    assert_int_equal(one_node("2", "true", &err), 0);
    assert_int_equal(one_node("-3", "-3.0", &err), 1);
    assert_int_equal(one_node("1.5", "1.5", &err), 1);
    assert_int_equal(one_node("1.5", "1.25", &err), 0);
    /* falsy ids are never memoized: 0 and "" are two objects each time */
    assert_int_equal(one_node("0", "0", &err), 0);
    assert_int_equal(one_node("\"\"", "\"\"", &err), 0);
    assert_int_equal(one_node("false", "0.0", &err), 0);
    /* integers of any size, exactly */
    assert_int_equal(
        one_node("1000000000000000000000000000000", "1000000000000000000000000000000", &err), 1);
    assert_int_equal(
        one_node("1000000000000000000000000000000", "1000000000000000000000000000001", &err), 0);
    assert_int_equal(one_node("-99999999999999999999", "-99999999999999999999", &err), 1);
    assert_int_equal(one_node("-99999999999999999999", "99999999999999999999", &err), 0);
    /* 2**53 + 1 is no float; 9007199254740993.0 reads as 2**53 */
    assert_int_equal(one_node("9007199254740993", "9007199254740993.0", &err), 0);
    assert_int_equal(one_node("9007199254740992", "9007199254740993.0", &err), 1);
    /* a float equals the integer it is exactly, however large */
    assert_int_equal(one_node("1e30", "1000000000000000019884624838656", &err), 1);
    assert_int_equal(one_node("1e30", "1000000000000000000000000000000", &err), 0);
    assert_int_equal(
        one_node("1e300",
                 "10000000000000000525047602552044202487044685811081591549158541155118024579889081"
                 "95786371375080447864043704443832883878176942523235360430575644792184786706982848"
                 "38720092657580373783023379478809005936895323497079994508111903896764088007465274"
                 "2780142494579258788820056842838115669472196386865459400540160",
                 &err),
        1);
    /* the in-memory form of a big integer cannot be spelled by a string */
    assert_int_equal(
        one_node("\"\\u0000bigint:100000000000000000000\"", "100000000000000000000", &err), -1);
    assert_non_null(strstr(err.message, "to mark integers too large"));
    assert_int_equal(one_node("\"\\u0000bigint:1\"", "1", &err), -1);
    assert_non_null(strstr(err.message, "bigint:"));
    /* big integers with a leading zero are not JSON */
    assert_int_equal(one_node("0100000000000000000000", "2", &err), -1);
    assert_non_null(strstr(err.message, "invalid JSON"));
}

/* Opens a dict with one entry 'x' holding STATE (single-quoted JSON). */
static struct sk_model *open_entry(const char *entry, struct sk_error *err)
{
    char *schema;
    assert_true(asprintf(&schema,
                         "{'__class__': 'dict', '__module__': 'builtins', '__loader__': "
                         "'DictNode', 'protocol': 2, " STR_TYPES ", 'content': {'x': %s}}",
                         entry) > 0);
    sk_error_clear(err);
    struct sk_model *model = open_schema(schema, NULL, 0, err);
    free(schema);
    return model;
}

/* A NUL in any name part is refused, never cut to a trusted prefix. */
static void names_with_nul_are_refused(void **state)
{
    (void)state;
    struct sk_error err = {0};
    static const char *const with_nul[] = {
        "{'__class__': 'LinearRegression', '__module__': 'sklearn.linear_model._base\\u0000.os', "
        "'__loader__': 'ObjectNode'}",
        "{'__class__': 'LinearRegression\\u0000x', '__module__': 'sklearn.linear_model._base', "
        "'__loader__': 'ObjectNode'}",
        "{'__class__': 'list', '__module__': 'builtins', '__loader__': 'ListNode\\u0000x', "
        "'content': []}",
        "{'__class__': 'A', '__module__': 'x', '__loader__': 'MethodNode', 'content': "
        "{'func': 'f\\u0000g', 'obj': " OBJ("x", "A", 7) "}}",
    };
    for (size_t i = 0; i < sizeof with_nul / sizeof *with_nul; i++) {
        assert_null(open_entry(with_nul[i], &err));
        assert_non_null(strstr(err.message, "holds a NUL character"));
    }
    /* the old FunctionNode's content names the function */
    sk_error_clear(&err);
    assert_null(open_schema(
        "{'__class__': 'dict', '__module__': 'builtins', '__loader__': 'DictNode', 'protocol': 0,"
        " " STR_TYPES ", 'content': {'f': {'__class__': 'ufunc', '__module__': 'numpy',"
        " '__loader__': 'FunctionNode', 'content': {'module_path': 'scipy.special._ufuncs',"
        " 'function': 'erfc\\u0000x'}}}}",
        NULL, 0, &err));
    assert_non_null(strstr(err.message, "'function' holds a NUL character"));
    sk_error_clear(&err);
    assert_null(open_schema(
        "{'__class__': 'dict', '__module__': 'builtins', '__loader__': 'DictNode', 'protocol': 0,"
        " " STR_TYPES ", 'content': {'f': {'__class__': 'ufunc', '__module__': 'numpy',"
        " '__loader__': 'FunctionNode', 'content': {'module_path': 'scipy.special\\u0000._ufuncs',"
        " 'function': 'erfc'}}}}",
        NULL, 0, &err));
    assert_non_null(strstr(err.message, "'module_path' holds a NUL character"));
    /* an array's type is compared whole */
    assert_null(
        open_entry("{'__class__': 'ndarray', '__module__': 'numpy', '__loader__': "
                   "'NdArrayNode', 'type': 'json\\u0000x', 'content': [], 'shape': " JSON1(9) "}",
                   &err));
    assert_non_null(strstr(err.message, "unknown array type"));
}

static void loaders_and_modules_compare_whole(void **state)
{
    (void)state;
    struct sk_error err = {0};
    assert_null(open_entry("{'__class__': 'list', '__module__': 'builtins', '__loader__': "
                           "'ListNodeX', 'content': []}",
                           &err));
    assert_non_null(strstr(err.message, "unknown loader 'ListNodeX'"));
    /* the pickle reader's own loader is unknown in a .skops file */
    assert_null(open_entry("{'__class__': 'system', '__module__': 'os', '__loader__': "
                           "'UnrepresentableNode'}",
                           &err));
    assert_non_null(strstr(err.message, "unknown loader 'UnrepresentableNode'"));
    /* skops compares a method's module and class apart */
    assert_null(open_entry("{'__class__': 'c', '__module__': 'a.b', '__loader__': 'MethodNode', "
                           "'content': {'func': 'f', 'obj': " OBJ("a", "b.c", 7) "}}",
                           &err));
    assert_non_null(strstr(err.message, "is bound to an object of"));
    /* operator functions come from the module 'operator' itself */
    assert_null(open_entry("{'__class__': 'y', '__module__': 'operator.x', '__loader__': "
                           "'OperatorFuncNode', 'attrs': {'__class__': 'tuple', '__module__': "
                           "'builtins', '__loader__': 'TupleNode', 'content': []}}",
                           &err));
    assert_non_null(strstr(err.message, "other than 'operator'"));
    struct sk_model *model =
        open_entry("{'__class__': 'add', '__module__': 'operator', '__loader__': "
                   "'OperatorFuncNode', 'attrs': {'__class__': 'tuple', '__module__': "
                   "'builtins', '__loader__': 'TupleNode', 'content': []}}",
                   &err);
    assert_non_null(model);
    sk_model_close(model);
}

/* A node first read in a refused dict's hidden key_types is refused where
 * it is first mounted, needing what that dict needs; a JSON value is
 * served wherever it occurs, as the spec says. */
static void nodes_first_read_in_refused_parts_are_refused(void **state)
{
    (void)state;
    struct sk_error err = {0};
    struct sk_model *model = open_schema(
        "{'__class__': 'dict', '__module__': 'builtins', '__loader__': 'DictNode', 'protocol': 2,"
        " " STR_TYPES ", 'content': {"
        " 'evil': {'__class__': 'system', '__module__': 'os', '__loader__': 'ObjectNode',"
        "          'content': {'__class__': 'dict', '__module__': 'builtins', '__loader__': "
        "'DictNode', " STR_TYPES ", 'content': {'s': " JSON1(
            41) "}}},"
                " 'h': {'__class__': 'dict', '__module__': 'builtins', '__loader__': 'DictNode',"
                "       'key_types': {'__class__': 'list', '__module__': 'builtins', '__loader__': "
                "'ListNode', 'content': [{'__class__': 'Thing', '__module__': 'evil', "
                "'__loader__': "
                "'TypeNode'}, {'__class__': 'list', '__module__': 'builtins', '__loader__': "
                "'ListNode', "
                "'content': [], '__id__': 42}]}, 'content': {}},"
                " 'again': " JSON1(41) ","
                                       " 'hidden': {'__class__': 'list', '__module__': 'builtins', "
                                       "'__loader__': 'ListNode', "
                                       "'content': [], '__id__': 42}}}",
        NULL, 0, &err);
    assert_non_null(model);
    const struct sk_entry *hidden = sk_entry_child(model->layout->root, "hidden");
    assert_non_null(hidden);
    assert_int_equal(hidden->kind, SK_ENTRY_DIR);
    assert_true(hidden->refused);
    assert_int_equal(hidden->need_count, 1);
    assert_string_equal(hidden->needs[0], "evil.Thing");
    const struct sk_entry *again = sk_entry_child(model->layout->root, "again");
    assert_int_equal(again->kind, SK_ENTRY_FILE);
    assert_false(again->refused);
    sk_model_close(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shared_ids_are_one_node_and_later_states_are_ignored),
        cmocka_unit_test(unknown_loader_error_names_its_path),
        cmocka_unit_test(node_text_of_plain_strings_is_jansson_s),
        cmocka_unit_test(trust_follows_each_loader),
        cmocka_unit_test(tree_and_loss_nodes_hand_trust_down),
        cmocka_unit_test(protocol_0_functions_use_their_content),
        cmocka_unit_test(corrupt_states_fail_clearly),
        cmocka_unit_test(cycles_terminate),
        cmocka_unit_test(json_text_keeps_what_jansson_cannot),
        cmocka_unit_test(ids_are_one_object_exactly_when_python_says_equal),
        cmocka_unit_test(names_with_nul_are_refused),
        cmocka_unit_test(loaders_and_modules_compare_whole),
        cmocka_unit_test(nodes_first_read_in_refused_parts_are_refused),
        cmocka_unit_test(strmap_stores_and_replaces),
        cmocka_unit_test(strmap_remembers_only_what_it_should),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
