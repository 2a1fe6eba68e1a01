#include "schema.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsontext.h"
#include "sk_limits.h"
#include "strmap.h"
#include "trust.h"

/* skops's current protocol: loaders without an entry for an archive's
 * protocol fall back to this one's. */
#define SK_CURRENT_PROTOCOL 2

enum inherited_trust {
    INHERIT_TREE = 1, /* below a TreeNode: sklearn.tree._tree.Tree is trusted */
    INHERIT_LOSS = 2, /* below a LossNode: the SGD losses are trusted */
};

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
};

const char *sk_loader_name(enum sk_loader loader)
{
    return loader < SK_LOADER_COUNT ? loader_names[loader] : "?";
}

struct builder {
    struct sk_store *store;
    struct sk_schema *schema;
    struct sk_strmap *memo;
    json_int_t protocol; /* -1 when not an integer */
    unsigned long long max_nodes;
    unsigned long long max_children;
    unsigned long long max_key_bytes;
    char *memo_key; /* the current state's memo key; grows as needed */
    size_t memo_key_capacity;
    size_t capacity; /* of schema->nodes */
    char path[4096]; /* of the node being read, for messages */
    size_t path_length;
    unsigned depth;
    struct sk_error *err;
};

static int node_fail(struct builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int node_fail(struct builder *b, const char *fmt, ...)
{
    char text[SK_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return sk_fail(b->err, "schema.json: node at %s: %s", b->path_length ? b->path : "/", text);
}

/* Appends "/KEY" to the path shown in messages; returns the old length. */
static size_t path_push(struct builder *b, const char *key, size_t key_length)
{
    size_t old = b->path_length;
    size_t room = sizeof b->path - 1 - b->path_length;
    if (room > 0 && b->path_length > 0) {
        b->path[b->path_length++] = '/';
        room--;
    }
    for (size_t i = 0; i < key_length && room > 0; i++, room--)
        b->path[b->path_length++] = key[i] ? key[i] : '?';
    b->path[b->path_length] = '\0';
    return old;
}

static void path_pop(struct builder *b, size_t old)
{
    b->path_length = old;
    b->path[old] = '\0';
}

static json_t *require(struct builder *b, json_t *object, const char *key, json_type type)
{
    json_t *value = json_is_object(object) ? json_object_get(object, key) : NULL;
    if (value == NULL) {
        node_fail(b, "missing '%s'", key);
        return NULL;
    }
    if (json_typeof(value) != type) {
        node_fail(b, "'%s' has the wrong JSON type", key);
        return NULL;
    }
    return value;
}

/* A name part: a JSON string without NUL. skops would use the whole name,
 * NUL and all, and so trust it nowhere; skopsfs refuses it outright, so that
 * no C string ever sees a shortened name. */
static json_t *require_name(struct builder *b, json_t *object, const char *key)
{
    json_t *value = require(b, object, key, JSON_STRING);
    if (value != NULL && memchr(json_string_value(value), '\0', json_string_length(value))) {
        node_fail(b, "'%s' holds a NUL character; skopsfs refuses such names", key);
        return NULL;
    }
    return value;
}

/* Whether VALUE is the JSON string WORD, exactly. */
static bool string_is(const json_t *value, const char *word)
{
    size_t length = strlen(word);
    return json_is_string(value) && json_string_length(value) == length &&
           memcmp(json_string_value(value), word, length) == 0;
}

/* The kinds of memo keys; the kind is the key's first byte and the map
 * compares whole keys, so no value of one kind can spell another's. */
enum { MEMO_INTEGER = 'i', MEMO_FLOAT = 'f', MEMO_STRING = 's' };

/* Writes the key into the builder's buffer: a state's key is used (looked
 * up, stored) before any child state is read. */
static int memo_tagged(struct builder *b, char kind, const void *bytes, size_t length, char **key,
                       size_t *key_length)
{
    if (length + 1 > b->memo_key_capacity) {
        size_t capacity = (length + 1) * 2;
        char *grown = realloc(b->memo_key, capacity);
        if (grown == NULL)
            return sk_fail(b->err, "out of memory");
        b->memo_key = grown;
        b->memo_key_capacity = capacity;
    }
    *key = b->memo_key;
    (*key)[0] = kind;
    memcpy(*key + 1, bytes, length);
    *key_length = length + 1;
    return 0;
}

/* A float's memo key: one that equals an integer is that integer (every
 * finite double that is integral prints exactly with %.0f), any other its
 * bits. */
static int memo_float(struct builder *b, double v, char **key, size_t *key_length)
{
    if (v != floor(v) || !isfinite(v))
        return memo_tagged(b, MEMO_FLOAT, &v, sizeof v, key, key_length);
    char *digits;
    int length = asprintf(&digits, "%.0f", v == 0 ? 0.0 : v);
    if (length < 0)
        return sk_fail(b->err, "out of memory");
    int rc = memo_tagged(b, MEMO_INTEGER, digits, (size_t)length, key, key_length);
    free(digits);
    return rc;
}

/* skops keys its memo by the __id__ value with Python's equality: 1, 1.0
 * and true are one key, integers of any size compare exactly, strings
 * compare whole, and a string never equals a number. *KEY (the builder's
 * buffer, valid until the next call) stays NULL for ids that are never looked up (absent or null);
 * *TRUTHY says whether skops memoizes the id (it tests `if saved_id`). */
static int memo_key(struct builder *b, json_t *id, char **key, size_t *key_length, bool *truthy)
{
    *key = NULL;
    *truthy = false;
    if (id == NULL || json_is_null(id))
        return 0;
    char digits[32];
    const char *big;
    switch (json_typeof(id)) {
    case JSON_INTEGER: {
        int length =
            snprintf(digits, sizeof digits, "%" JSON_INTEGER_FORMAT, json_integer_value(id));
        *truthy = json_integer_value(id) != 0;
        return memo_tagged(b, MEMO_INTEGER, digits, (size_t)length, key, key_length);
    }
    case JSON_TRUE:
    case JSON_FALSE:
        *truthy = json_is_true(id);
        return memo_tagged(b, MEMO_INTEGER, *truthy ? "1" : "0", 1, key, key_length);
    case JSON_REAL:
        *truthy = json_real_value(id) != 0;
        return memo_float(b, json_real_value(id), key, key_length);
    case JSON_STRING:
        big = sk_json_big_integer(id);
        *truthy = true; /* a big integer is never 0; an empty string is below */
        if (big != NULL)
            return memo_tagged(b, MEMO_INTEGER, big, strlen(big), key, key_length);
        *truthy = json_string_length(id) > 0;
        return memo_tagged(b, MEMO_STRING, json_string_value(id), json_string_length(id), key,
                           key_length);
    default:
        return node_fail(b, "__id__ is not a number or a string");
    }
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
    if ((inherited & INHERIT_TREE) && strcmp(name, "sklearn.tree._tree.Tree") == 0)
        return true;
    if ((inherited & INHERIT_LOSS) && sk_default_list_contains(SK_LIST_SGD_LOSSES, name))
        return true;
    return false;
}

static int add_contribution(struct builder *b, struct sk_node *node, const char *name)
{
    for (size_t i = 0; i < node->contribution_count; i++)
        if (strcmp(node->contributions[i], name) == 0)
            return 0;
    char **grown = realloc(node->contributions, (node->contribution_count + 1) * sizeof *grown);
    if (grown == NULL)
        return sk_fail(b->err, "out of memory");
    node->contributions = grown;
    node->contributions[node->contribution_count] = strdup(name);
    if (node->contributions[node->contribution_count] == NULL)
        return sk_fail(b->err, "out of memory");
    node->contribution_count++;
    return 0;
}

static struct sk_slot *add_slot(struct builder *b, struct sk_node *node, enum sk_slot_kind kind,
                                const char *key, size_t key_length, bool fixed_name)
{
    if (node->slot_count >= b->max_children) {
        node_fail(b,
                  "more than %llu children (SK_MAX_CHILDREN_PER_NODE; raise it with "
                  "-o max_children=N or --max-children N)",
                  b->max_children);
        return NULL;
    }
    if (node->slot_count == node->slot_capacity) {
        /* doubling: a dict of a million keys must not cost a million copies */
        size_t capacity = node->slot_capacity ? node->slot_capacity * 2 : 4;
        struct sk_slot *grown = realloc(node->slots, capacity * sizeof *grown);
        if (grown == NULL) {
            sk_fail(b->err, "out of memory");
            return NULL;
        }
        node->slots = grown;
        node->slot_capacity = capacity;
    }
    struct sk_slot *slot = &node->slots[node->slot_count++];
    memset(slot, 0, sizeof *slot);
    slot->kind = kind;
    slot->key = key;
    slot->key_length = key_length;
    slot->fixed_name = fixed_name;
    return slot;
}

static int get_tree(struct builder *b, json_t *state, unsigned inherited, struct sk_node **out,
                    bool *fresh);

/* Reads a child state and records it in a slot of NODE. */
static int child(struct builder *b, struct sk_node *node, enum sk_slot_kind kind, json_t *state,
                 const char *key, size_t key_length, bool fixed_name, unsigned inherited)
{
    if (key_length > b->max_key_bytes)
        return node_fail(b,
                         "a key of %zu bytes is longer than %llu (SK_MAX_KEY_BYTES; raise it "
                         "with -o max_key_bytes=N or --max-key-bytes N)",
                         key_length, b->max_key_bytes);
    /* A flattened dict's entries belong to its owner's path. */
    size_t old = kind == SK_SLOT_FLATTEN ? b->path_length : path_push(b, key, key_length);
    struct sk_node *c;
    bool fresh;
    int rc = get_tree(b, state, inherited, &c, &fresh);
    path_pop(b, old);
    if (rc != 0)
        return -1;
    /* A dict is flattened into its owner only where it is read for the
     * first time; a shared one stays an entry (a link) of its own. */
    if (kind == SK_SLOT_FLATTEN && !(fresh && c->loader == SK_LOADER_DICT))
        kind = SK_SLOT_ENTRY;
    struct sk_slot *slot = add_slot(b, node, kind, key, key_length, fixed_name);
    if (slot == NULL)
        return -1;
    slot->node = c;
    slot->literal = state;
    return 0;
}

/* Reads PARENT[NAME] as a child shown under SHOWN (NULL: under NAME). */
static int child_of(struct builder *b, struct sk_node *node, enum sk_slot_kind kind, json_t *parent,
                    const char *name, const char *shown, unsigned inherited)
{
    json_t *state = json_is_object(parent) ? json_object_get(parent, name) : NULL;
    if (state == NULL)
        return node_fail(b, "missing '%s'", name);
    if (shown == NULL)
        shown = name;
    return child(b, node, kind, state, shown, strlen(shown), shown[0] == '.', inherited);
}

static int children_of_array(struct builder *b, struct sk_node *node, json_t *array,
                             unsigned inherited)
{
    if (!json_is_array(array))
        return node_fail(b, "'content' is not a list");
    size_t count = json_array_size(array);
    if (count > b->max_children)
        return node_fail(b,
                         "%zu children, more than %llu (SK_MAX_CHILDREN_PER_NODE; raise it with "
                         "-o max_children=N or --max-children N)",
                         count, b->max_children);
    for (size_t i = 0; i < count; i++) {
        char number[24];
        int length = snprintf(number, sizeof number, "%zu", i);
        size_t old = path_push(b, number, (size_t)length);
        struct sk_node *c;
        bool fresh;
        int rc = get_tree(b, json_array_get(array, i), inherited, &c, &fresh);
        path_pop(b, old);
        if (rc != 0)
            return -1;
        char *owned = strdup(number);
        struct sk_slot *slot =
            owned ? add_slot(b, node, SK_SLOT_ENTRY, owned, (size_t)length, false) : NULL;
        if (slot == NULL) {
            free(owned);
            return owned ? -1 : sk_fail(b->err, "out of memory");
        }
        slot->node = c;
        slot->literal = json_array_get(array, i);
        slot->owned_key = owned;
    }
    return 0;
}

static int member_of(struct builder *b, struct sk_node *node, json_t *state)
{
    json_t *file = require(b, state, "file", JSON_STRING);
    if (file == NULL)
        return -1;
    const char *name = json_string_value(file);
    if (strlen(name) != json_string_length(file) ||
        sk_store_find(b->store, name, &node->member) != 0)
        return node_fail(b, "no member '%s' in the archive", name);
    node->has_member = true;
    if (sk_store_check_member(b->store, node->member, b->err) != 0) {
        char inner[SK_ERROR_MESSAGE_MAX];
        memcpy(inner, b->err->message, sizeof inner);
        sk_error_clear(b->err);
        return node_fail(b, "%s", inner);
    }
    return 0;
}

static int set_field(struct builder *b, struct sk_node *node, const char *key, char *text,
                     size_t length)
{
    struct sk_slot *slot = add_slot(b, node, SK_SLOT_FIELD, key, strlen(key), false);
    if (slot == NULL) {
        free(text);
        return -1;
    }
    slot->field_text = text;
    slot->field_length = length;
    return 0;
}

static int read_children(struct builder *b, struct sk_node *node, json_t *state, unsigned inherited)
{
    json_t *content = json_object_get(state, "content");
    switch (node->loader) {
    case SK_LOADER_OBJECT:
        if (content == NULL || json_is_null(content))
            return 0;
        return child(b, node, SK_SLOT_FLATTEN, content, ".state", 6, true, inherited);
    case SK_LOADER_RANDOM_STATE:
        if (content == NULL)
            return node_fail(b, "missing 'content'");
        return child(b, node, SK_SLOT_FLATTEN, content, ".state", 6, true, inherited);
    case SK_LOADER_TREE:
    case SK_LOADER_LOSS: {
        unsigned passed =
            inherited | (node->loader == SK_LOADER_TREE ? INHERIT_TREE : INHERIT_LOSS);
        if (content == NULL)
            return node_fail(b, "missing 'content'");
        if (child(b, node, SK_SLOT_FLATTEN, content, ".state", 6, true, passed) != 0)
            return -1;
        json_t *reduce = require(b, state, "__reduce__", JSON_OBJECT);
        if (reduce == NULL)
            return -1;
        return child_of(b, node, SK_SLOT_ENTRY, reduce, "args", ".args", passed);
    }
    case SK_LOADER_DICT: {
        if (child_of(b, node, SK_SLOT_HIDDEN, state, "key_types", NULL, inherited) != 0)
            return -1;
        json_t *entries = require(b, state, "content", JSON_OBJECT);
        if (entries == NULL)
            return -1;
        const char *key;
        size_t key_length;
        json_t *value;
        json_object_keylen_foreach(entries, key, key_length, value)
        {
            size_t decoded_length;
            char *decoded = sk_json_key_decode(key, key_length, &decoded_length);
            if (child(b, node, SK_SLOT_ENTRY, value, decoded ? decoded : key,
                      decoded ? decoded_length : key_length, false, inherited) != 0) {
                free(decoded);
                return -1;
            }
            node->slots[node->slot_count - 1].owned_key = decoded;
        }
        return 0;
    }
    case SK_LOADER_DEFAULTDICT:
    case SK_LOADER_DICT_DEPRECATED_KEYS: {
        if (!json_is_object(content))
            return node_fail(b, "'content' is not an object");
        /* "main" is flattened; where it cannot be, it shows as ".main". */
        if (child_of(b, node, SK_SLOT_FLATTEN, content, "main", ".main", inherited) != 0)
            return -1;
        if (node->loader == SK_LOADER_DEFAULTDICT)
            return child_of(b, node, SK_SLOT_ENTRY, content, "default_factory", ".default_factory",
                            inherited);
        return child_of(b, node, SK_SLOT_HIDDEN, content, "_deprecated_key_to_new_key", NULL,
                        inherited);
    }
    case SK_LOADER_LIST:
    case SK_LOADER_TUPLE:
    case SK_LOADER_SET:
        return children_of_array(b, node, content, inherited);
    case SK_LOADER_NDARRAY: {
        json_t *type = require(b, state, "type", JSON_STRING);
        if (type == NULL)
            return -1;
        if (string_is(type, "numpy"))
            return member_of(b, node, state);
        if (string_is(type, "json")) {
            if (children_of_array(b, node, content, inherited) != 0)
                return -1;
            return child_of(b, node, SK_SLOT_HIDDEN, state, "shape", NULL, inherited);
        }
        return node_fail(b, "unknown array type '%s'", json_string_value(type));
    }
    case SK_LOADER_SPARSE_MATRIX: {
        json_t *type = require(b, state, "type", JSON_STRING);
        if (type == NULL)
            return -1;
        if (!string_is(type, "scipy"))
            return node_fail(b, "cannot load a sparse matrix of type '%s'",
                             json_string_value(type));
        return member_of(b, node, state);
    }
    case SK_LOADER_BYTES:
    case SK_LOADER_BYTEARRAY:
        return member_of(b, node, state);
    case SK_LOADER_MASKED_ARRAY:
        if (child_of(b, node, SK_SLOT_ENTRY, content, "data", NULL, inherited) != 0)
            return -1;
        return child_of(b, node, SK_SLOT_ENTRY, content, "mask", NULL, inherited);
    case SK_LOADER_JSON: {
        json_t *text = require(b, state, "content", JSON_STRING);
        if (text == NULL)
            return -1;
        node->json_text = json_string_value(text);
        node->json_length = json_string_length(text);
        return 0;
    }
    case SK_LOADER_FUNCTION:
        if (node->protocol_form == 0) {
            json_t *module = require_name(b, content, "module_path");
            json_t *function = module ? require_name(b, content, "function") : NULL;
            if (function == NULL)
                return -1;
        }
        return 0;
    case SK_LOADER_TYPE:
    case SK_LOADER_CACHED:
        return 0;
    case SK_LOADER_PARTIAL:
        if (child_of(b, node, SK_SLOT_ENTRY, content, "func", NULL, inherited) != 0 ||
            child_of(b, node, SK_SLOT_ENTRY, content, "args", NULL, inherited) != 0 ||
            child_of(b, node, SK_SLOT_ENTRY, content, "kwds", NULL, inherited) != 0)
            return -1;
        return child_of(b, node, SK_SLOT_ENTRY, content, "namespace", NULL, inherited);
    case SK_LOADER_METHOD: {
        if (child_of(b, node, SK_SLOT_ENTRY, content, "obj", NULL, inherited) != 0)
            return -1;
        const struct sk_node *owner = node->slots[node->slot_count - 1].node;
        /* skops compares module and class apart: a.b + c is not a + b.c */
        if (strcmp(owner->module_name, node->module_name) != 0 ||
            strcmp(owner->class_name, node->class_name) != 0)
            return node_fail(b, "method of %s is bound to an object of %s (corrupt or malicious)",
                             node->type_name, owner->type_name);
        json_t *func = require_name(b, content, "func");
        if (func == NULL)
            return -1;
        char *text;
        int length = asprintf(&text, "%s\n", json_string_value(func));
        if (length < 0)
            return sk_fail(b->err, "out of memory");
        return set_field(b, node, "func", text, (size_t)length);
    }
    case SK_LOADER_SLICE:
        if (!json_is_object(content) || !json_object_get(content, "start") ||
            !json_object_get(content, "stop") || !json_object_get(content, "step"))
            return node_fail(b, "slice needs 'content' with start, stop and step");
        return 0;
    case SK_LOADER_CONSTRUCTOR_FROM_REDUCE:
        return child_of(b, node, SK_SLOT_ENTRY, state, "content", NULL, inherited);
    case SK_LOADER_OPERATOR_FUNC:
        if (strcmp(node->module_name, "operator") != 0)
            return node_fail(b, "operator function from module other than 'operator': %s",
                             node->type_name);
        return child_of(b, node, SK_SLOT_ENTRY, state, "attrs", NULL, inherited);
    case SK_LOADER_RANDOM_GENERATOR:
        if (node->protocol_form == 0) {
            json_t *raw =
                json_is_object(content) ? json_object_get(content, "bit_generator") : NULL;
            if (raw == NULL)
                return node_fail(b, "missing 'bit_generator'");
            size_t length;
            char *text = sk_json_dump_python(raw, &length);
            if (text == NULL)
                return sk_fail(b->err, "out of memory");
            return set_field(b, node, "bit_generator", text, length);
        }
        if (child_of(b, node, SK_SLOT_ENTRY, content, "bit_generator", NULL, inherited) != 0)
            return -1;
        if (node->protocol_form == 1)
            return 0;
        return child_of(b, node, SK_SLOT_ENTRY, content, "seed_seq", NULL, inherited);
    case SK_LOADER_DTYPE:
        return child_of(b, node, SK_SLOT_HIDDEN, state, "content", NULL, inherited);
    default:
        return node_fail(b, "internal: no reader for %s", sk_loader_name(node->loader));
    }
}

static int compute_contributions(struct builder *b, struct sk_node *node, unsigned inherited)
{
    const char *name = node->type_name;
    switch (node->loader) {
    case SK_LOADER_JSON:
    case SK_LOADER_SLICE:
        return 0;
    case SK_LOADER_FUNCTION:
        if (node->protocol_form == 0) {
            json_t *content = json_object_get(node->state, "content");
            char *full;
            if (asprintf(&full, "%s.%s", json_string_value(json_object_get(content, "module_path")),
                         json_string_value(json_object_get(content, "function"))) < 0)
                return sk_fail(b->err, "out of memory");
            /* The old loader trusts only scipy's ufuncs. */
            int rc = 0;
            bool trusted =
                sk_default_list_contains(SK_LIST_SCIPY_UFUNCS, full) ||
                ((inherited & INHERIT_TREE) && !strcmp(full, "sklearn.tree._tree.Tree")) ||
                ((inherited & INHERIT_LOSS) && sk_default_list_contains(SK_LIST_SGD_LOSSES, full));
            if (!trusted)
                rc = add_contribution(b, node, full);
            free(full);
            return rc;
        }
        break;
    case SK_LOADER_METHOD: {
        if (!is_trusted(node->loader, inherited, name) && add_contribution(b, node, name) != 0)
            return -1;
        const struct sk_node *owner = node->slots[0].node;
        json_t *func = json_object_get(json_object_get(node->state, "content"), "func");
        char *method;
        if (asprintf(&method, "%s.%s", owner->type_name, json_string_value(func)) < 0)
            return sk_fail(b->err, "out of memory");
        int rc = add_contribution(b, node, method);
        free(method);
        return rc;
    }
    case SK_LOADER_LOSS: {
        /* The constructor is checked as a TypeNode that trusts the losses. */
        unsigned passed = inherited | INHERIT_LOSS;
        if (!is_trusted(SK_LOADER_TYPE, passed, name) && add_contribution(b, node, name) != 0)
            return -1;
        break;
    }
    default:
        break;
    }
    if (!is_trusted(node->loader, inherited, name))
        return add_contribution(b, node, name);
    return 0;
}

static int resolve_loader(struct builder *b, const char *name, enum sk_loader *loader, int *form)
{
    for (int i = 0; i < SK_LOADER_COUNT; i++) {
        if (strcmp(name, loader_names[i]) == 0) {
            *loader = (enum sk_loader)i;
            *form = SK_CURRENT_PROTOCOL;
            if (*loader == SK_LOADER_FUNCTION && b->protocol == 0)
                *form = 0;
            if (*loader == SK_LOADER_RANDOM_GENERATOR && (b->protocol == 0 || b->protocol == 1))
                *form = (int)b->protocol;
            return 0;
        }
    }
    return -1;
}

/* get_tree for a state whose memo key is KEY (NULL: none). */
static int get_tree_keyed(struct builder *b, json_t *state, unsigned inherited, const char *key,
                          size_t key_length, bool truthy, struct sk_node **out, bool *fresh)
{
    if (key != NULL) {
        struct sk_node *seen = sk_strmap_get(b->memo, key, key_length);
        if (seen != NULL) {
            *out = seen;
            return 0;
        }
    }
    if (b->depth >= SK_MAX_NODE_DEPTH)
        return node_fail(b, "nodes nest deeper than %u (SK_MAX_NODE_DEPTH)", SK_MAX_NODE_DEPTH);
    json_t *loader_name = require_name(b, state, "__loader__");
    json_t *module = loader_name ? require_name(b, state, "__module__") : NULL;
    json_t *class_name = module ? require_name(b, state, "__class__") : NULL;
    if (class_name == NULL)
        return -1;
    enum sk_loader loader;
    int form;
    if (resolve_loader(b, json_string_value(loader_name), &loader, &form) != 0)
        return node_fail(b, "unknown loader '%s' for type %s.%s", json_string_value(loader_name),
                         json_string_value(module), json_string_value(class_name));

    if (b->schema->node_count >= b->max_nodes)
        return node_fail(b,
                         "more than %llu nodes (the max_nodes limit, SK_MAX_NODES; raise it with "
                         "-o max_nodes=N or --max-nodes N)",
                         b->max_nodes);
    if (b->schema->node_count == b->capacity) {
        size_t capacity = b->capacity ? b->capacity * 2 : 256;
        struct sk_node **grown = realloc(b->schema->nodes, capacity * sizeof *grown);
        if (grown == NULL)
            return sk_fail(b->err, "out of memory");
        b->schema->nodes = grown;
        b->capacity = capacity;
    }
    struct sk_node *node = calloc(1, sizeof *node);
    if (node == NULL)
        return sk_fail(b->err, "out of memory");
    node->index = b->schema->node_count;
    b->schema->nodes[b->schema->node_count++] = node;
    node->loader = loader;
    node->protocol_form = form;
    node->state = state;
    node->module_name = json_string_value(module);
    node->class_name = json_string_value(class_name);
    if (asprintf(&node->type_name, "%s.%s", node->module_name, node->class_name) < 0) {
        node->type_name = NULL;
        return sk_fail(b->err, "out of memory");
    }
    /* skops memoizes a node before reading its children, so a child may
     * refer back to it; CachedNode is never memoized. */
    if (key != NULL && truthy && loader != SK_LOADER_CACHED &&
        sk_strmap_put(b->memo, key, key_length, node) != 0)
        return sk_fail(b->err, "out of memory");

    b->depth++;
    int rc = read_children(b, node, state, inherited);
    b->depth--;
    if (rc != 0 || compute_contributions(b, node, inherited) != 0)
        return -1;
    *out = node;
    *fresh = true;
    return 0;
}

static int get_tree(struct builder *b, json_t *state, unsigned inherited, struct sk_node **out,
                    bool *fresh)
{
    *fresh = false;
    if (!json_is_object(state))
        return node_fail(b, "state is not a JSON object");
    char *key;
    size_t key_length = 0;
    bool truthy;
    if (memo_key(b, json_object_get(state, "__id__"), &key, &key_length, &truthy) != 0)
        return -1;
    return get_tree_keyed(b, state, inherited, key, key_length, truthy, out, fresh);
}

static void free_node(struct sk_node *node)
{
    for (size_t i = 0; i < node->slot_count; i++) {
        free(node->slots[i].field_text);
        free(node->slots[i].owned_key);
    }
    free(node->slots);
    sk_string_list_free(node->contributions, node->contribution_count);
    free(node->type_name);
    free(node);
}

void sk_schema_free(struct sk_schema *schema)
{
    if (schema == NULL)
        return;
    for (size_t i = 0; i < schema->node_count; i++)
        free_node(schema->nodes[i]);
    free(schema->nodes);
    free(schema->walk_marks);
    sk_json_arena_free(schema->json_arena);
    free(schema);
}

int sk_schema_load(const char *text, size_t length, struct sk_store *store,
                   const struct sk_limits *limits, struct sk_schema **out, struct sk_error *err)
{
    *out = NULL;
    struct sk_schema *schema = calloc(1, sizeof *schema);
    if (schema == NULL)
        return sk_fail(err, "out of memory");
    if (sk_json_parse(text, length, &schema->root_state, &schema->json_arena, err) != 0) {
        sk_error_prefix(err, "schema.json: ");
        free(schema);
        return -1;
    }
    const struct sk_limits none = {0};
    if (limits == NULL)
        limits = &none;
    struct builder b = {
        .store = store,
        .schema = schema,
        .err = err,
        .protocol = -1,
        .max_nodes = limits->nodes ? limits->nodes : SK_MAX_NODES,
        .max_children = limits->children ? limits->children : SK_MAX_CHILDREN_PER_NODE,
        .max_key_bytes = limits->key_bytes ? limits->key_bytes : SK_MAX_KEY_BYTES,
    };
    b.memo = sk_strmap_new();
    if (b.memo == NULL) {
        sk_fail(err, "out of memory");
        goto fail;
    }
    if (!json_is_object(schema->root_state)) {
        sk_fail(err, "schema.json: the top level is not a JSON object");
        goto fail;
    }
    schema->protocol = json_object_get(schema->root_state, "protocol");
    if (schema->protocol == NULL) {
        sk_fail(err, "schema.json: no 'protocol' at the top level");
        goto fail;
    }
    if (json_is_integer(schema->protocol))
        b.protocol = json_integer_value(schema->protocol);
    schema->skops_version = json_object_get(schema->root_state, "_skops_version");
    bool fresh;
    if (get_tree(&b, schema->root_state, 0, &schema->root, &fresh) != 0)
        goto fail;
    sk_strmap_free(b.memo);
    free(b.memo_key);
    *out = schema;
    return 0;
fail:
    sk_strmap_free(b.memo);
    free(b.memo_key);
    sk_schema_free(schema);
    return -1;
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
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 16;
        const char **grown = realloc(list->names, capacity * sizeof *grown);
        if (grown == NULL)
            return -1;
        list->names = grown;
        list->capacity = capacity;
    }
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
    size_t capacity = 16, count = 0, visited = 0;
    const struct sk_node **stack = malloc(capacity * sizeof *stack);
    int rc = 0;
    if (stack == NULL)
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
            if (count == capacity) {
                const struct sk_node **grown = realloc(stack, 2 * capacity * sizeof *grown);
                if (grown == NULL) {
                    rc = sk_fail(err, "out of memory");
                    break;
                }
                stack = grown;
                capacity *= 2;
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
