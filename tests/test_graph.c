/* The node graph built through its builder alone, as a reader other than
 * schema.json's would build it; the growth helper; the allowlist filter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "graph.h"
#include "grow.h"
#include "trust.h"

static struct sk_node *add(struct sk_schema *g, enum sk_loader loader, const char *module,
                           const char *class_name)
{
    struct sk_error err = {0};
    struct sk_node *node;
    assert_int_equal(sk_graph_add_node(g, loader, 2, module, class_name, &node, &err), 0);
    return node;
}

static void contribute(struct sk_node *node, unsigned inherited)
{
    struct sk_error err = {0};
    assert_int_equal(sk_node_contribute(node, inherited, NULL, &err), 0);
}

static void attach(struct sk_schema *g, struct sk_node *parent, enum sk_slot_kind kind,
                   const char *key, struct sk_node *child)
{
    struct sk_error err = {0};
    assert_int_equal(sk_node_add_slot(g, parent, kind, key, strlen(key), false, child, NULL, &err),
                     0);
}

/* An estimator holding an untrusted object under a dict, and a hidden part. */
static void builder_makes_a_graph_that_audits(void **state)
{
    (void)state;
    struct sk_schema *g = sk_graph_new(NULL);
    assert_non_null(g);
    struct sk_node *root =
        add(g, SK_LOADER_OBJECT, "sklearn.linear_model._base", "LinearRegression");
    struct sk_node *dict = add(g, SK_LOADER_DICT, "builtins", "dict");
    struct sk_node *evil = add(g, SK_LOADER_OBJECT, "os", "system");
    struct sk_node *types = add(g, SK_LOADER_LIST, "collections", "UserList");
    struct sk_node *tree = add(g, SK_LOADER_TYPE, "sklearn.tree._tree", "Tree");
    g->root = root;
    attach(g, root, SK_SLOT_FLATTEN, ".state", dict);
    attach(g, dict, SK_SLOT_HIDDEN, "key_types", types);
    attach(g, dict, SK_SLOT_ENTRY, "evil", evil);
    contribute(root, 0);
    contribute(dict, 0);
    contribute(evil, 0);
    contribute(types, 0);
    contribute(tree, SK_INHERIT_TREE); /* trusted below a TreeNode */
    assert_int_equal(root->contribution_count, 0);
    assert_int_equal(tree->contribution_count, 0);

    struct sk_error err = {0};
    char **names;
    size_t count;
    assert_int_equal(sk_schema_untrusted(g, &names, &count, &err), 0);
    assert_int_equal(count, 2);
    assert_string_equal(names[0], "collections.UserList");
    assert_string_equal(names[1], "os.system");
    sk_string_list_free(names, count);
    /* The root shows its flattened dict's hidden part, not the entry below. */
    assert_int_equal(sk_node_needs(g, root, &names, &count, &err), 0);
    assert_int_equal(count, 1);
    assert_string_equal(names[0], "collections.UserList");

    struct sk_allowlist *allowlist = sk_allowlist_new();
    assert_int_equal(sk_allowlist_add(allowlist, "collections.UserList", &err), 0);
    assert_int_equal(sk_allowlist_filter(allowlist, names, count), 0);
    free(names);
    sk_allowlist_free(allowlist);
    sk_schema_free(g);
}

static void builder_limits_name_themselves(void **state)
{
    (void)state;
    struct sk_limits limits = {.nodes = 2, .children = 1};
    struct sk_schema *g = sk_graph_new(&limits);
    struct sk_node *a = add(g, SK_LOADER_LIST, "builtins", "list");
    struct sk_node *b = add(g, SK_LOADER_LIST, "builtins", "list");
    struct sk_error err = {0};
    struct sk_node *c;
    assert_int_equal(sk_graph_add_node(g, SK_LOADER_LIST, 2, "builtins", "list", &c, &err),
                     SK_GRAPH_LIMIT);
    assert_non_null(strstr(err.message, "max_nodes"));
    attach(g, a, SK_SLOT_ENTRY, "0", b);
    sk_error_clear(&err);
    assert_int_equal(sk_node_add_slot(g, a, SK_SLOT_ENTRY, "1", 1, false, b, NULL, &err),
                     SK_GRAPH_LIMIT);
    assert_non_null(strstr(err.message, "max_children"));
    sk_error_clear(&err);
    assert_int_equal(sk_node_add_field(g, b, "x", strdup("1\n"), 2, &err), 0);
    assert_int_equal(b->slots[0].field_length, 2);
    sk_schema_free(g);
}

static void grow_doubles_and_refuses_overflow(void **state)
{
    (void)state;
    int *items = NULL;
    size_t capacity = 0;
    assert_int_equal(sk_grow(&items, &capacity, 1, sizeof *items, 4), 0);
    assert_int_equal(capacity, 4);
    assert_int_equal(sk_grow(&items, &capacity, 4, sizeof *items, 4), 0);
    assert_int_equal(capacity, 4);
    assert_int_equal(sk_grow(&items, &capacity, 9, sizeof *items, 4), 0);
    assert_int_equal(capacity, 16);
    items[15] = 1;
    /* sizes that overflow leave the array as it was */
    assert_int_equal(sk_grow(&items, &capacity, SIZE_MAX / 2, sizeof *items, 4), -1);
    assert_int_equal(sk_grow(&items, &capacity, SIZE_MAX, 1, 4), -1);
    assert_int_equal(capacity, 16);
    assert_int_equal(items[15], 1);
    free(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(builder_makes_a_graph_that_audits),
        cmocka_unit_test(builder_limits_name_themselves),
        cmocka_unit_test(grow_doubles_and_refuses_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
