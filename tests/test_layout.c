/* Layout: names, suffixes, collisions, links, refusal and .skops. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "model.h"
#include "testutil.h"

static void expect_name(const char *key, size_t length, const char *suffix, unsigned ordinal,
                        const char *want)
{
    char *name = sk_layout_name(key, length, suffix, ordinal);
    assert_string_equal(name, want);
    free(name);
}

static void escapes_what_a_name_cannot_hold(void **state)
{
    (void)state;
    expect_name("", 0, "", 1, "%");
    expect_name(".", 1, "", 1, "%2E");
    expect_name("..", 2, "", 1, "%2E.");
    expect_name(".hidden", 7, ".npy", 1, "%2Ehidden.npy");
    expect_name("a/b", 3, "", 1, "a%2Fb");
    expect_name("100%", 4, "", 1, "100%25");
    expect_name("%2E", 3, "", 1, "%252E");
    expect_name("nul\0byte", 8, "", 1, "nul%00byte");
    expect_name("a.b", 3, "", 1, "a.b");
    expect_name("\xd0\xba\xd0\xbb", 4, "", 1, "\xd0\xba\xd0\xbb");
    expect_name("w", 1, ".npy", 2, "w~2.npy");
    expect_name("w.npy", 5, "", 2, "w.npy~2");
}

static void cuts_long_names_at_character_boundaries(void **state)
{
    (void)state;
    char key[300];
    memset(key, 'k', sizeof key);
    char *name = sk_layout_name(key, sizeof key, "", 1);
    assert_int_equal(strlen(name), 255);
    assert_string_equal(name + 246, "~17b16d8e"); /* sha256 of the key */
    free(name);
    char utf8[280];
    for (size_t i = 0; i < sizeof utf8; i += 2)
        memcpy(utf8 + i, "\xc3\xa9", 2);
    name = sk_layout_name(utf8, sizeof utf8, ".npy", 1);
    assert_true(strlen(name) <= 255);
    assert_string_equal(name + strlen(name) - 13, "~86a78136.npy");
    size_t cut = strlen(name) - 13;
    assert_int_equal(cut % 2, 0); /* never inside a two-byte character */
    free(name);
    char percent[300];
    memset(percent, '/', sizeof percent);
    name = sk_layout_name(percent, sizeof percent, "", 1);
    size_t body = strlen(name) - 9;
    assert_int_equal(body % 3, 0); /* never inside a %XX escape */
    free(name);
}

static void lays_out_a_model(void **state)
{
    (void)state;
    size_t npy_length;
    void *npy = test_make_npy(6, &npy_length);
    struct test_member members[] = {{"1.npy", npy, npy_length, false}};
    const char *schema =
        "{\"__class__\": \"dict\", \"__module__\": \"builtins\", \"__loader__\": \"DictNode\","
        " \"protocol\": 2, \"_skops_version\": \"0.15\", \"key_types\": {\"__class__\": \"list\","
        " \"__module__\": \"builtins\", \"__loader__\": \"ListNode\", \"content\": []},"
        " \"content\": {"
        "  \"w\": {\"__class__\": \"ndarray\", \"__module__\": \"numpy\", \"__loader__\": "
        "\"NdArrayNode\","
        "         \"type\": \"numpy\", \"file\": \"1.npy\", \"__id__\": 1},"
        "  \"w.npy\": {\"__class__\": \"str\", \"__module__\": \"builtins\", \"__loader__\": "
        "\"JsonNode\","
        "             \"content\": \"\\\"hi\\\"\", \"__id__\": 2},"
        "  \"again\": {\"__class__\": \"ndarray\", \"__module__\": \"numpy\", \"__loader__\": "
        "\"NdArrayNode\","
        "             \"__id__\": 1},"
        "  \"hi2\": {\"__class__\": \"str\", \"__module__\": \"builtins\", \"__loader__\": "
        "\"CachedNode\", \"__id__\": 2},"
        "  \"bad\": {\"__class__\": \"system\", \"__module__\": \"os\", \"__loader__\": "
        "\"ObjectNode\","
        "           \"content\": {\"__class__\": \"dict\", \"__module__\": \"builtins\", "
        "\"__loader__\": \"DictNode\","
        "                        \"key_types\": {\"__class__\": \"list\", \"__module__\": "
        "\"builtins\","
        "                                        \"__loader__\": \"ListNode\", \"content\": []},"
        "                        \"content\": {\"cmd\": {\"__class__\": \"str\", \"__module__\": "
        "\"builtins\","
        "                                              \"__loader__\": \"JsonNode\", \"content\": "
        "\"\\\"id\\\"\"}}}}}}";
    char *path = test_make_skops(schema, members, 1);
    struct sk_model *model;
    struct sk_error err = {0};
    struct sk_model_options options = {.build_layout = true, .read_npy_headers = true};
    assert_int_equal(sk_model_open(path, &options, &model, &err), 0);
    const struct sk_layout *layout = model->layout;
    const struct sk_entry *e;

    assert_int_equal(sk_layout_resolve(layout, "/w.npy", true, &e), 0);
    assert_true(e->in_store);
    assert_int_equal(e->size, npy_length);
    assert_non_null(e->npy);
    assert_string_equal(e->npy->descr, "<f8");
    assert_int_equal(sk_layout_resolve(layout, "w.npy~2", true, &e), 0);
    assert_string_equal(e->text, "hi\n");
    assert_int_equal(sk_layout_resolve(layout, "again.npy", false, &e), 0);
    assert_int_equal(e->kind, SK_ENTRY_SYMLINK);
    assert_string_equal(e->link_text, "w.npy");
    assert_int_equal(sk_layout_resolve(layout, "hi2", false, &e), 0);
    assert_int_equal(e->kind, SK_ENTRY_FILE); /* a repeated JSON value is a file */
    assert_string_equal(e->text, "hi\n");

    assert_int_equal(sk_layout_resolve(layout, "bad", false, &e), 0);
    assert_true(e->refused);
    assert_int_equal(e->need_count, 1);
    assert_string_equal(e->needs[0], "os.system");
    assert_int_equal(sk_layout_resolve(layout, "bad/cmd", false, &e), EACCES);
    assert_int_equal(sk_layout_resolve(layout, "nothing", false, &e), ENOENT);
    assert_int_equal(sk_layout_resolve(layout, "w.npy/x", false, &e), ENOTDIR);

    assert_int_equal(sk_layout_resolve(layout, ".skops/untrusted", true, &e), 0);
    assert_string_equal(e->text, "os.system\n");
    assert_int_equal(sk_layout_resolve(layout, ".skops/skops_version", true, &e), 0);
    assert_string_equal(e->text, "0.15\n");
    assert_int_equal(sk_layout_resolve(layout, ".type", true, &e), 0);
    assert_string_equal(e->text, "builtins.dict\n");

    struct sk_xattr xattrs[SK_XATTR_MAX];
    assert_int_equal(sk_layout_resolve(layout, "bad", false, &e), 0);
    int count = sk_entry_xattrs(e, xattrs);
    assert_int_equal(count, 4);
    assert_string_equal(xattrs[count - 1].name, "user.skops.trusted");
    assert_string_equal(xattrs[count - 1].value, "0");
    sk_xattrs_free(xattrs, count);
    sk_model_close(model);

    /* trusted by the allowlist: the same entry opens */
    struct sk_allowlist *allowlist = sk_allowlist_new();
    assert_int_equal(sk_allowlist_add(allowlist, "os.system", &err), 0);
    options.allowlist = allowlist;
    assert_int_equal(sk_model_open(path, &options, &model, &err), 0);
    assert_int_equal(sk_layout_resolve(model->layout, "bad/cmd", true, &e), 0);
    assert_string_equal(e->text, "id\n");
    assert_int_equal(model->layout->untrusted_count, 0);
    sk_model_close(model);
    sk_allowlist_free(allowlist);
    unlink(path);
    free(path);
    free(npy);
}

/* Keys the lookup must tell apart: prefixes of each other, bytes a name
 * escapes, control and high bytes, keys equal but for their last byte. */
static const char *const odd_keys[] = {
    "p",       "pp",      "p%",          "a/b",
    "\\u0001", "\\u007f", "\xc3\xa9",    "\xc3\xa9\xc3\xa9",
    ".dot",    "%2E",     "tail\\u0001", "tail\\u0002",
    "",        " ",       "~2",          "w.npy~",
};

/* A schema whose dict "d" holds KEYS JSON values (odd_keys first, then
 * "k<i>") and last an array "w" that collides with the value "w.npy". */
static char *schema_with_keys(size_t keys)
{
    const char *json = "{\"__class__\": \"str\", \"__module__\": \"builtins\", "
                       "\"__loader__\": \"JsonNode\", \"content\": \"\\\"v\\\"\"}";
    const char *list = "{\"__class__\": \"list\", \"__module__\": \"builtins\", "
                       "\"__loader__\": \"ListNode\", \"content\": []}";
    char *text = NULL;
    size_t length = 0;
    FILE *out = open_memstream(&text, &length);
    assert_non_null(out);
    fprintf(out,
            "{\"__class__\": \"dict\", \"__module__\": \"builtins\", \"__loader__\": \"DictNode\","
            " \"protocol\": 2, \"_skops_version\": \"0.15\", \"key_types\": %s, \"content\": {"
            "\"d\": {\"__class__\": \"dict\", \"__module__\": \"builtins\", "
            "\"__loader__\": \"DictNode\", \"key_types\": %s, \"content\": {\"w.npy\": %s",
            list, list, json);
    for (size_t i = 1; i < keys; i++) {
        if (i - 1 < sizeof odd_keys / sizeof *odd_keys)
            fprintf(out, ", \"%s\": %s", odd_keys[i - 1], json);
        else
            fprintf(out, ", \"k%zu\": %s", i, json);
    }
    fprintf(out, ", \"w\": {\"__class__\": \"ndarray\", \"__module__\": \"numpy\", "
                 "\"__loader__\": \"NdArrayNode\", \"type\": \"numpy\", \"file\": \"1.npy\"}}}}}");
    fclose(out);
    return text;
}

/* Every child is found by its name, and no name it is not. */
static void expect_children_found(const struct sk_entry *directory)
{
    for (size_t i = 0; i < directory->child_count; i++) {
        const struct sk_entry *child = directory->children[i];
        assert_ptr_equal(sk_entry_child(directory, child->name), child);
        char longer[300];
        memcpy(longer, child->name, child->name_length);
        longer[child->name_length] = '!';
        /* not NUL-terminated: only LENGTH bytes count */
        assert_ptr_equal(sk_entry_child_bytes(directory, longer, child->name_length), child);
        assert_null(sk_entry_child_bytes(directory, longer, child->name_length + 1));
        const struct sk_entry *prefix =
            child->name_length > 0
                ? sk_entry_child_bytes(directory, child->name, child->name_length - 1)
                : NULL;
        if (prefix != NULL) { /* "p" and "pp", "w.npy" and "w.npy~" */
            assert_int_equal(prefix->name_length, child->name_length - 1);
            assert_memory_equal(prefix->name, child->name, prefix->name_length);
        }
    }
    assert_null(sk_entry_child(directory, "absent"));
}

/* Directories of SK_FEW_CHILDREN children and one or two more: looked up
 * one by one, then through the index, with the same answers. */
static void looks_children_up_below_and_above_the_index(void **state)
{
    (void)state;
    size_t npy_length;
    void *npy = test_make_npy(2, &npy_length);
    struct test_member members[] = {{"1.npy", npy, npy_length, false}};
    for (size_t extra = 0; extra <= 2; extra++) {
        size_t children = SK_FEW_CHILDREN + extra; /* .type, the values and "w" */
        char *schema = schema_with_keys(children - 2);
        char *path = test_make_skops(schema, members, 1);
        struct sk_model *model;
        struct sk_error err = {0};
        struct sk_model_options options = {.build_layout = true};
        assert_int_equal(sk_model_open(path, &options, &model, &err), 0);
        const struct sk_entry *d, *e;
        assert_int_equal(sk_layout_resolve(model->layout, "d", false, &d), 0);
        assert_int_equal(d->child_count, children);
        assert_int_equal(d->child_index != NULL, children > SK_FEW_CHILDREN);
        expect_children_found(d);
        assert_int_equal(sk_layout_resolve(model->layout, "d/a%2Fb", false, &e), 0);
        assert_int_equal(sk_layout_resolve(model->layout, "d/%", false, &e), 0);
        assert_int_equal(sk_layout_resolve(model->layout, "d/\xc3\xa9\xc3\xa9", false, &e), 0);
        assert_int_equal(sk_layout_resolve(model->layout, "d/\x01", false, &e), 0);
        assert_int_equal(sk_layout_resolve(model->layout, "d/tail\x02", false, &e), 0);
        assert_int_equal(sk_layout_resolve(model->layout, "d/w.npy", false, &e), 0);
        assert_string_equal(e->text, "v\n");
        assert_int_equal(sk_layout_resolve(model->layout, "d/w~2.npy", false, &e), 0);
        assert_true(e->in_store);
        sk_model_close(model);
        unlink(path);
        free(path);
        free(schema);
    }
    free(npy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escapes_what_a_name_cannot_hold),
        cmocka_unit_test(cuts_long_names_at_character_boundaries),
        cmocka_unit_test(lays_out_a_model),
        cmocka_unit_test(looks_children_up_below_and_above_the_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
