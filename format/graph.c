#include "graph.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "strmap.h"
#include "trust.h"

static const char *const loader_names[SK_LOADER_COUNT] = {
    [SK_LOADER_OBJECT] = "ObjectNode",
    [SK_LOADER_DICT] = "DictNode",
    [SK_LOADER_DICT_DEPRECATED_KEYS] = "_DictWithDeprecatedKeysNode",
    [SK_LOADER_DEFAULTDICT] = "DefaultDictNode",
    [SK_LOADER_LIST] = "ListNode",
    [SK_LOADER_TUPLE] = "TupleNode",
    [SK_LOADER_SET] = "SetNode",
    [SK_LOADER_NDARRAY] = "NdArrayNode",
    [SK_LOADER_MASKED_ARRAY] = "MaskedArrayNode",
    [SK_LOADER_SPARSE_MATRIX] = "SparseMatrixNode",
    [SK_LOADER_BYTES] = "BytesNode",
    [SK_LOADER_BYTEARRAY] = "BytearrayNode",
    [SK_LOADER_JSON] = "JsonNode",
    [SK_LOADER_FUNCTION] = "FunctionNode",
    [SK_LOADER_TYPE] = "TypeNode",
    [SK_LOADER_PARTIAL] = "PartialNode",
    [SK_LOADER_METHOD] = "MethodNode",
    [SK_LOADER_SLICE] = "SliceNode",
    [SK_LOADER_CONSTRUCTOR_FROM_REDUCE] = "ConstructorFromReduceNode",
    [SK_LOADER_OPERATOR_FUNC] = "OperatorFuncNode",
    [SK_LOADER_RANDOM_STATE] = "RandomStateNode",
    [SK_LOADER_RANDOM_GENERATOR] = "RandomGeneratorNode",
    [SK_LOADER_DTYPE] = "DTypeNode",
    [SK_LOADER_TREE] = "TreeNode",
    [SK_LOADER_LOSS] = "LossNode",
    [SK_LOADER_CACHED] = "CachedNode",
    [SK_LOADER_UNREPRESENTABLE] = "UnrepresentableNode",
};

const char *sk_loader_name(enum sk_loader loader)
{
    return loader < SK_LOADER_COUNT ? loader_names[loader] : "?";
}

bool sk_loader_named(const char *name, enum sk_loader *loader)
{
    for (int i = 0; i < SK_LOADER_COUNT; i++)
        if (strcmp(name, loader_names[i]) == 0) {
            *loader = (enum sk_loader)i;
            return true;
        }
    return false;
}

struct sk_schema *sk_graph_new(const struct sk_limits *limits)
{
    struct sk_schema *schema = calloc(1, sizeof *schema);
    if (schema == NULL)
        return NULL;
    schema->type_names = sk_strmap_new_remembering();
    if (schema->type_names == NULL) {
        free(schema);
        return NULL;
    }
    schema->max_nodes = limits && limits->nodes ? limits->nodes : SK_MAX_NODES;
    schema->max_children = limits && limits->children ? limits->children : SK_MAX_CHILDREN_PER_NODE;
    return schema;
}

void sk_graph_keep(struct sk_schema *schema, void *storage, void (*free_storage)(void *storage))
{
    schema->storage = storage;
    schema->free_storage = free_storage;
}

struct sk_graph_chunk {
    struct sk_graph_chunk *next;
    size_t used, size;
    max_align_t bytes[];
};

enum { GRAPH_CHUNK_BYTES = 64 * 1024 };

/* What graph_alloc aligns to: nodes and names, no long double (rounding
 * to max_align_t's 32 bytes made a 104-byte node take 128). */
#define GRAPH_ALIGN _Alignof(struct sk_node)

/* SIZE bytes that live as long as the graph; NULL when out of memory. */
static void *graph_alloc(struct sk_schema *schema, size_t size)
{
    size = (size + GRAPH_ALIGN - 1) / GRAPH_ALIGN * GRAPH_ALIGN;
    struct sk_graph_chunk *c = schema->chunks;
    if (c == NULL || c->size - c->used < size) {
        size_t capacity = size > GRAPH_CHUNK_BYTES ? size : GRAPH_CHUNK_BYTES;
        c = malloc(sizeof *c + capacity);
        if (c == NULL)
            return NULL;
        *c = (struct sk_graph_chunk){.next = schema->chunks, .size = capacity};
        schema->chunks = c;
    }
    void *bytes = (char *)c->bytes + c->used;
    c->used += size;
    return bytes;
}

/* MODULE.CLASS_NAME, one copy per distinct type; spelled in a scratch
 * buffer of the graph's, since nearly every node's type is met before. */
static const char *type_name_of(struct sk_schema *schema, const char *module,
                                const char *class_name)
{
    size_t module_length = strlen(module), class_length = strlen(class_name);
    size_t length = module_length + 1 + class_length;
    if (sk_grow(&schema->type_name_scratch, &schema->type_name_scratch_capacity, length + 1, 1,
                128) != 0)
        return NULL;
    char *name = schema->type_name_scratch;
    memcpy(name, module, module_length);
    name[module_length] = '.';
    memcpy(name + module_length + 1, class_name, class_length + 1);
    const char *kept = sk_strmap_get(schema->type_names, name, length);
    if (kept != NULL)
        return kept;
    char *copy = graph_alloc(schema, length + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, name, length + 1);
    return sk_strmap_put(schema->type_names, copy, length, copy) == 0 ? copy : NULL;
}

/* What a node owns besides its chunk memory. */
static void free_node(struct sk_node *node)
{
    for (size_t i = 0; i < node->slot_count; i++) {
        free(node->slots[i].field_text);
        if (node->slots[i].owns_key)
            free((char *)node->slots[i].key);
    }
    free(node->slots);
    sk_string_list_free(node->contributions, node->contribution_count);
    free(node->text);
}

void sk_graph_truncate(struct sk_schema *schema, size_t count)
{
    while (schema->node_count > count)
        free_node(schema->nodes[--schema->node_count]);
}

void sk_schema_free(struct sk_schema *schema)
{
    if (schema == NULL)
        return;
    for (size_t i = 0; i < schema->node_count; i++)
        free_node(schema->nodes[i]);
    free(schema->nodes);
    for (struct sk_graph_chunk *c = schema->chunks, *next; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    sk_strmap_free(schema->type_names);
    free(schema->type_name_scratch);
    free(schema->walk_marks);
    free(schema->protocol_json);
    free(schema->skops_version_json);
    free(schema->protocol_text);
    free(schema->skops_version_text);
    if (schema->free_storage != NULL)
        schema->free_storage(schema->storage);
    free(schema);
}

int sk_graph_add_node(struct sk_schema *schema, enum sk_loader loader, int protocol_form,
                      const char *module, const char *class_name, struct sk_node **out,
                      struct sk_error *err)
{
    if (schema->node_count >= schema->max_nodes || schema->node_count == UINT32_MAX) {
        sk_fail(err,
                "more than %llu nodes (the max_nodes limit, SK_MAX_NODES; raise it with "
                "-o max_nodes=N or --max-nodes N)",
                schema->max_nodes);
        return SK_GRAPH_LIMIT;
    }
    if (sk_grow(&schema->nodes, &schema->node_capacity, schema->node_count + 1,
                sizeof *schema->nodes, 256) != 0)
        return sk_fail(err, "out of memory");
    struct sk_node *node = graph_alloc(schema, sizeof *node);
    const char *type_name = node ? type_name_of(schema, module, class_name) : NULL;
    if (type_name == NULL)
        return sk_fail_code(err, ENOMEM, "out of memory");
    /* field by field: a literal of the whole node is a `rep stos`, slow to
     * start on some x86, once per node of a forest's hundred thousand */
    node->loader = loader;
    node->protocol_form = (int8_t)protocol_form;
    node->has_member = false;
    node->slot_count = node->slot_capacity = node->contribution_count = 0;
    node->index = (uint32_t)schema->node_count;
    node->type_name = type_name;
    node->module_name = module;
    node->class_name = class_name;
    node->slots = NULL;
    node->contributions = NULL;
    node->member = 0;
    node->json_text = NULL;
    node->json_length = 0;
    node->text = NULL;
    node->text_length = 0;
    schema->nodes[schema->node_count++] = node;
    *out = node;
    return 0;
}

int sk_node_add_slot(struct sk_schema *schema, struct sk_node *node, enum sk_slot_kind kind,
                     const char *key, size_t key_length, bool fixed_name, struct sk_node *child,
                     struct sk_slot **out, struct sk_error *err)
{
    if (node->slot_count >= schema->max_children || node->slot_count == UINT32_MAX) {
        sk_fail(err,
                "more than %llu children (SK_MAX_CHILDREN_PER_NODE; raise it with "
                "-o max_children=N or --max-children N)",
                schema->max_children);
        return SK_GRAPH_LIMIT;
    }
    if (key_length > UINT32_MAX)
        return sk_fail(err, "a key of %zu bytes, more than 4 GiB", key_length);
    /* doubling: a dict of a million keys must not cost a million copies;
     * from four: grown from one, a 1600-tree forest's containers took
     * 37,000 reallocs, 1% of its audit's instructions (+0.2 MB) */
    size_t capacity = node->slot_capacity;
    if (sk_grow(&node->slots, &capacity, (size_t)node->slot_count + 1, sizeof *node->slots, 4) !=
            0 ||
        capacity > UINT32_MAX)
        return sk_fail(err, "out of memory");
    node->slot_capacity = (uint32_t)capacity;
    struct sk_slot *slot = &node->slots[node->slot_count++];
    memset(slot, 0, sizeof *slot);
    slot->kind = (uint8_t)kind;
    slot->key = key;
    slot->key_length = (uint32_t)key_length;
    slot->fixed_name = fixed_name;
    slot->node = child;
    if (out != NULL)
        *out = slot;
    return 0;
}

void sk_node_fit_slots(struct sk_node *node)
{
    if (node->slot_capacity == node->slot_count || node->slot_count == 0)
        return;
    struct sk_slot *fitted = realloc(node->slots, node->slot_count * sizeof *node->slots);
    if (fitted == NULL)
        return; /* keeps the room */
    node->slots = fitted;
    node->slot_capacity = node->slot_count;
}

int sk_node_add_field(struct sk_schema *schema, struct sk_node *node, const char *key, char *text,
                      size_t length, struct sk_error *err)
{
    struct sk_slot *slot;
    int rc = length > UINT32_MAX ? sk_fail(err, "a field of %zu bytes, more than 4 GiB", length)
                                 : sk_node_add_slot(schema, node, SK_SLOT_FIELD, key, strlen(key),
                                                    false, NULL, &slot, err);
    if (rc != 0) {
        free(text);
        return rc;
    }
    slot->field_text = text;
    slot->field_length = (uint32_t)length;
    return 0;
}

int sk_node_add_contribution(struct sk_node *node, const char *name, struct sk_error *err)
{
    for (size_t i = 0; i < node->contribution_count; i++)
        if (strcmp(node->contributions[i], name) == 0)
            return 0;
    if (node->contribution_count == UINT32_MAX)
        return sk_fail(err, "out of memory");
    char **grown =
        realloc(node->contributions, ((size_t)node->contribution_count + 1) * sizeof *grown);
    if (grown == NULL)
        return sk_fail(err, "out of memory");
    node->contributions = grown;
    node->contributions[node->contribution_count] = strdup(name);
    if (node->contributions[node->contribution_count] == NULL)
        return sk_fail(err, "out of memory");
    node->contribution_count++;
    return 0;
}

unsigned sk_loader_hands_down(enum sk_loader loader)
{
    switch (loader) {
    case SK_LOADER_TREE:
        return SK_INHERIT_TREE;
    case SK_LOADER_LOSS:
        return SK_INHERIT_LOSS;
    default:
        return 0;
    }
}

void sk_node_set_text(struct sk_node *node, char *text, size_t length)
{
    free(node->text);
    node->text = text;
    node->text_length = length;
}

static bool in_loader_defaults(enum sk_loader loader, const char *name)
{
    switch (loader) {
    case SK_LOADER_OBJECT:
        return sk_default_list_contains(SK_LIST_SKLEARN_ESTIMATORS, name);
    case SK_LOADER_DICT:
        return strcmp(name, "builtins.dict") == 0 || strcmp(name, "collections.OrderedDict") == 0;
    case SK_LOADER_DEFAULTDICT:
        return strcmp(name, "collections.defaultdict") == 0;
    case SK_LOADER_DICT_DEPRECATED_KEYS:
        return strcmp(name, "sklearn.covariance._graph_lasso._DictWithDeprecatedKeys") == 0;
    case SK_LOADER_LIST:
        return strcmp(name, "builtins.list") == 0;
    case SK_LOADER_TUPLE:
        return strcmp(name, "builtins.tuple") == 0;
    case SK_LOADER_SET:
        return strcmp(name, "builtins.set") == 0;
    case SK_LOADER_NDARRAY:
        return strcmp(name, "numpy.ndarray") == 0 ||
               sk_default_list_contains(SK_LIST_NUMPY_DTYPES, name);
    case SK_LOADER_MASKED_ARRAY:
        return strcmp(name, "numpy.ma.core.MaskedArray") == 0;
    case SK_LOADER_SPARSE_MATRIX:
        return strcmp(name, "scipy.sparse._base.spmatrix") == 0;
    case SK_LOADER_BYTES:
        return strcmp(name, "builtins.bytes") == 0;
    case SK_LOADER_BYTEARRAY:
        return strcmp(name, "builtins.bytearray") == 0;
    case SK_LOADER_FUNCTION:
        return sk_default_list_contains(SK_LIST_NUMPY_UFUNCS, name) ||
               sk_default_list_contains(SK_LIST_SCIPY_UFUNCS, name);
    case SK_LOADER_TYPE:
        return sk_default_list_contains(SK_LIST_PRIMITIVES, name) ||
               sk_default_list_contains(SK_LIST_CONTAINERS, name) ||
               sk_default_list_contains(SK_LIST_NUMPY_DTYPES, name);
    case SK_LOADER_RANDOM_STATE:
        return strcmp(name, "numpy.random.mtrand.RandomState") == 0;
    case SK_LOADER_RANDOM_GENERATOR:
        return strcmp(name, "numpy.random._generator.Generator") == 0;
    case SK_LOADER_TREE:
        return strcmp(name, "sklearn.tree._tree.Tree") == 0;
    case SK_LOADER_LOSS:
        return sk_default_list_contains(SK_LIST_SGD_LOSSES, name);
    default: /* Partial, Method, ConstructorFromReduce, OperatorFunc, DType, Cached */
        return false;
    }
}

static bool is_trusted(enum sk_loader loader, unsigned inherited, const char *name)
{
    if (in_loader_defaults(loader, name))
        return true;
    /* These two loaders set their trusted list outright, ignoring what
     * their parents hand down. */
    if (loader == SK_LOADER_DEFAULTDICT || loader == SK_LOADER_DICT_DEPRECATED_KEYS)
        return false;
    if ((inherited & SK_INHERIT_TREE) && strcmp(name, "sklearn.tree._tree.Tree") == 0)
        return true;
    if ((inherited & SK_INHERIT_LOSS) && sk_default_list_contains(SK_LIST_SGD_LOSSES, name))
        return true;
    return false;
}

/* The old FunctionNode loader trusts only scipy's ufuncs. */
static int contribute_old_function(struct sk_node *node, unsigned inherited, const char *full,
                                   struct sk_error *err)
{
    bool trusted =
        sk_default_list_contains(SK_LIST_SCIPY_UFUNCS, full) ||
        ((inherited & SK_INHERIT_TREE) && !strcmp(full, "sklearn.tree._tree.Tree")) ||
        ((inherited & SK_INHERIT_LOSS) && sk_default_list_contains(SK_LIST_SGD_LOSSES, full));
    return trusted ? 0 : sk_node_add_contribution(node, full, err);
}

static int contribute_method(struct sk_node *node, unsigned inherited, const char *called,
                             struct sk_error *err)
{
    if (!is_trusted(node->loader, inherited, node->type_name) &&
        sk_node_add_contribution(node, node->type_name, err) != 0)
        return -1;
    const struct sk_node *owner = node->slots[0].node;
    char *method;
    if (asprintf(&method, "%s.%s", owner->type_name, called) < 0)
        return sk_fail(err, "out of memory");
    int rc = sk_node_add_contribution(node, method, err);
    free(method);
    return rc;
}

static int contribute_unrepresentable(struct sk_node *node, struct sk_error *err)
{
    size_t length = strlen(node->type_name);
    char *marked = malloc(length + 2);
    if (marked == NULL)
        return sk_fail(err, "out of memory");
    marked[0] = SK_UNREPRESENTABLE_MARK;
    memcpy(marked + 1, node->type_name, length + 1);
    int rc = sk_node_add_contribution(node, marked, err);
    free(marked);
    return rc;
}

int sk_node_contribute(struct sk_node *node, unsigned inherited, const char *called,
                       struct sk_error *err)
{
    const char *name = node->type_name;
    switch (node->loader) {
    case SK_LOADER_JSON:
    case SK_LOADER_SLICE:
        return 0;
    case SK_LOADER_UNREPRESENTABLE:
        return contribute_unrepresentable(node, err);
    case SK_LOADER_FUNCTION:
        if (node->protocol_form == 0)
            return contribute_old_function(node, inherited, called, err);
        break;
    case SK_LOADER_METHOD:
        return contribute_method(node, inherited, called, err);
    case SK_LOADER_LOSS:
        /* The constructor is checked as a TypeNode that trusts the losses. */
        if (!is_trusted(SK_LOADER_TYPE, inherited | SK_INHERIT_LOSS, name) &&
            sk_node_add_contribution(node, name, err) != 0)
            return -1;
        break;
    default:
        break;
    }
    if (!is_trusted(node->loader, inherited, name))
        return sk_node_add_contribution(node, name, err);
    return 0;
}

void sk_string_list_free(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

/* A growing list of borrowed names, sorted and made unique at the end. */
struct name_list {
    const char **names;
    size_t count;
    size_t capacity;
};

static int name_list_add(struct name_list *list, const char *name)
{
    if (sk_grow(&list->names, &list->capacity, list->count + 1, sizeof *list->names, 16) != 0)
        return -1;
    list->names[list->count++] = name;
    return 0;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int name_list_finish(struct name_list *list, char ***names, size_t *count,
                            struct sk_error *err)
{
    if (list->count > 0)
        qsort(list->names, list->count, sizeof *list->names, compare_strings);
    char **result = calloc(list->count ? list->count : 1, sizeof *result);
    size_t unique = 0;
    if (result == NULL)
        goto oom;
    for (size_t i = 0; i < list->count; i++) {
        if (unique > 0 && strcmp(result[unique - 1], list->names[i]) == 0)
            continue;
        result[unique] = strdup(list->names[i]);
        if (result[unique] == NULL)
            goto oom;
        unique++;
    }
    free(list->names);
    *names = result;
    *count = unique;
    return 0;
oom:
    sk_string_list_free(result, unique);
    free(list->names);
    return sk_fail(err, "out of memory");
}

int sk_schema_untrusted(const struct sk_schema *schema, char ***names, size_t *count,
                        struct sk_error *err)
{
    struct name_list list = {0};
    for (size_t i = 0; i < schema->node_count; i++)
        for (size_t k = 0; k < schema->nodes[i]->contribution_count; k++)
            if (name_list_add(&list, schema->nodes[i]->contributions[k]) != 0) {
                free(list.names);
                return sk_fail(err, "out of memory");
            }
    return name_list_finish(&list, names, count, err);
}

/* Adds the contributions of every node reachable from START. */
static int add_reachable(struct sk_schema *schema, const struct sk_node *start,
                         struct name_list *list, struct sk_error *err)
{
    if (schema->walk_marks == NULL) {
        schema->walk_marks = calloc(schema->node_count, sizeof *schema->walk_marks);
        if (schema->walk_marks == NULL)
            return sk_fail(err, "out of memory");
    }
    unsigned epoch = ++schema->walk_epoch;
    size_t capacity = 0, count = 0, visited = 0;
    const struct sk_node **stack = NULL;
    int rc = 0;
    if (sk_grow(&stack, &capacity, 1, sizeof *stack, 16) != 0)
        return sk_fail(err, "out of memory");
    stack[count++] = start;
    while (count > 0) {
        const struct sk_node *node = stack[--count];
        if (schema->walk_marks[node->index] == epoch)
            continue;
        schema->walk_marks[node->index] = epoch;
        schema->walk_steps += 1 + node->slot_count;
        if (++visited > schema->node_count || schema->walk_steps > SK_MAX_AUDIT_STEPS) {
            rc = sk_fail(err,
                         "schema.json: shared hidden parts cost more than %llu steps to audit "
                         "(SK_MAX_AUDIT_STEPS)",
                         (unsigned long long)SK_MAX_AUDIT_STEPS);
            break;
        }
        for (size_t k = 0; k < node->contribution_count && rc == 0; k++)
            if (name_list_add(list, node->contributions[k]) != 0)
                rc = sk_fail(err, "out of memory");
        for (size_t s = 0; s < node->slot_count && rc == 0; s++) {
            if (node->slots[s].node == NULL)
                continue;
            if (sk_grow(&stack, &capacity, count + 1, sizeof *stack, 16) != 0) {
                rc = sk_fail(err, "out of memory");
                break;
            }
            stack[count++] = node->slots[s].node;
        }
        if (rc != 0)
            break;
    }
    free(stack);
    return rc;
}

static int add_needs(struct sk_schema *schema, const struct sk_node *node, struct name_list *list,
                     unsigned depth, struct sk_error *err)
{
    if (depth > SK_MAX_NODE_DEPTH)
        return sk_fail(err, "schema.json: flattened dicts nest too deep");
    for (size_t k = 0; k < node->contribution_count; k++)
        if (name_list_add(list, node->contributions[k]) != 0)
            return sk_fail(err, "out of memory");
    for (size_t s = 0; s < node->slot_count; s++) {
        const struct sk_slot *slot = &node->slots[s];
        int rc = 0;
        if (slot->kind == SK_SLOT_HIDDEN)
            rc = add_reachable(schema, slot->node, list, err);
        else if (slot->kind == SK_SLOT_FLATTEN)
            rc = add_needs(schema, slot->node, list, depth + 1, err);
        if (rc != 0)
            return -1;
    }
    return 0;
}

int sk_node_needs(struct sk_schema *schema, const struct sk_node *node, char ***names,
                  size_t *count, struct sk_error *err)
{
    struct name_list list = {0};
    if (add_needs(schema, node, &list, 0, err) != 0) {
        free(list.names);
        return -1;
    }
    return name_list_finish(&list, names, count, err);
}
