/* The reader of skops's schema.json: the JSON document, read with
 * jansson, becomes the node graph (graph.h) exactly as skops's get_tree
 * reads it. Each loader's state is read by one function of the table
 * `loader_readers`; what a node shows as a file is rendered here, so that
 * nothing past this file sees JSON values. */
#include "schema_json.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "grow.h"
#include "jsontext.h"
#include "schema_scan.h"
#include "sk_limits.h"
#include "strmap.h"

/* skops's current protocol: loaders without an entry for an archive's
 * protocol fall back to this one's. */
#define SK_CURRENT_PROTOCOL 2

struct builder {
    struct sk_store *store;
    struct sk_schema *schema;
    struct sk_strmap *memo;
    json_t **states; /* each node's state, by index: aliases are compared with it */
    size_t state_capacity;
    json_int_t protocol; /* -1 when not an integer */
    unsigned long long max_key_bytes;
    char *memo_key; /* the current state's memo key; grows as needed */
    size_t memo_key_capacity;
    char path[4096]; /* of the node being read, for messages */
    size_t path_length;
    unsigned depth;
    bool from_pickle; /* UnrepresentableNode is the pickle reader's own */
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

/* A builder call's result: a limit's message gets the node's path. */
static int built(struct builder *b, int rc)
{
    if (rc == SK_GRAPH_LIMIT)
        sk_error_prefix(b->err, "schema.json: node at %s: ", b->path_length ? b->path : "/");
    return rc == 0 ? 0 : -1;
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
    if (sk_grow(&b->memo_key, &b->memo_key_capacity, length + 1, 1, 64) != 0)
        return sk_fail(b->err, "out of memory");
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

/* Keys whose values differ between copies of one object: each copy is
 * written with fresh ids for its temporaries (state dicts) and a fresh
 * member name for its bytes. */
static bool copy_specific(const char *key, size_t length)
{
    return (length == 6 && memcmp(key, "__id__", 6) == 0) ||
           (length == 4 && memcmp(key, "file", 4) == 0);
}

/* Equal JSON but for the copy_specific values. */
bool sk_schema_same_content(const json_t *a, const json_t *b)
{
    /* A pickle's shared object is one value: never walked twice. */
    if (a == b)
        return true;
    if (json_typeof(a) != json_typeof(b))
        return false;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!sk_schema_same_content(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    if (!json_is_object(a))
        return json_equal((json_t *)a, (json_t *)b);
    if (json_object_size(a) != json_object_size(b))
        return false;
    const char *key;
    size_t key_length;
    json_t *value;
    json_object_keylen_foreach((json_t *)a, key, key_length, value)
    {
        json_t *other = json_object_getn(b, key, key_length);
        if (other == NULL)
            return false;
        if (!copy_specific(key, key_length) && !sk_schema_same_content(value, other))
            return false;
    }
    return true;
}

/* skops's own way to write a repeated object: a CachedNode holds no content. */
static bool is_cached_reference(const json_t *state)
{
    const json_t *loader = json_object_get(state, "__loader__");
    return json_is_string(loader) && strcmp(json_string_value(loader), "CachedNode") == 0;
}

/* Whether LITERAL, a state whose __id__ made it NODE, holds other content
 * than NODE's own state: content skops silently ignores. */
static bool alias_differs(const struct builder *b, const json_t *literal,
                          const struct sk_node *node)
{
    const json_t *state = b->states[node->index];
    return literal != state && !is_cached_reference(literal) &&
           !sk_schema_same_content(literal, state);
}

static int get_tree(struct builder *b, json_t *state, unsigned inherited, struct sk_node **out,
                    bool *fresh);

/* Reads STATE and records it in a slot of NODE under KEY. */
static int add_child(struct builder *b, struct sk_node *node, enum sk_slot_kind kind, json_t *state,
                     const char *key, size_t key_length, bool fixed_name, unsigned inherited,
                     struct sk_slot **out)
{
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
    struct sk_slot *slot;
    if (built(b, sk_node_add_slot(b->schema, node, kind, key, key_length, fixed_name, c, &slot,
                                  b->err)) != 0)
        return -1;
    slot->alias_differs = !fresh && alias_differs(b, state, c);
    if (out != NULL)
        *out = slot;
    return 0;
}

/* Reads a child state and records it in a slot of NODE. */
static int child(struct builder *b, struct sk_node *node, enum sk_slot_kind kind, json_t *state,
                 const char *key, size_t key_length, bool fixed_name, unsigned inherited)
{
    if (key_length > b->max_key_bytes)
        return node_fail(b,
                         "a key of %zu bytes is longer than %llu (SK_MAX_KEY_BYTES; raise it "
                         "with -o max_key_bytes=N or --max-key-bytes N)",
                         key_length, b->max_key_bytes);
    return add_child(b, node, kind, state, key, key_length, fixed_name, inherited, NULL);
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
    if (count > b->schema->max_children)
        return node_fail(b,
                         "%zu children, more than %llu (SK_MAX_CHILDREN_PER_NODE; raise it with "
                         "-o max_children=N or --max-children N)",
                         count, b->schema->max_children);
    for (size_t i = 0; i < count; i++) {
        char number[24];
        int length = snprintf(number, sizeof number, "%zu", i);
        char *owned = strdup(number);
        if (owned == NULL)
            return sk_fail(b->err, "out of memory");
        struct sk_slot *slot;
        if (add_child(b, node, SK_SLOT_ENTRY, json_array_get(array, i), owned, (size_t)length,
                      false, inherited, &slot) != 0) {
            free(owned);
            return -1;
        }
        slot->owns_key = true;
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
    return built(b, sk_node_add_field(b->schema, node, key, text, length, b->err));
}

/* Python's repr of a slice bound. */
static int append_python_repr(FILE *out, const json_t *value)
{
    const char *big = sk_json_big_integer(value);
    if (big != NULL)
        return fputs(big, out);
    switch (json_typeof(value)) {
    case JSON_NULL:
        return fputs("None", out);
    case JSON_TRUE:
        return fputs("True", out);
    case JSON_FALSE:
        return fputs("False", out);
    case JSON_INTEGER:
        return fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
    case JSON_REAL: {
        double v = json_real_value(value);
        char digits[40];
        for (int precision = 1; precision <= 17; precision++) {
            snprintf(digits, sizeof digits, "%.*g", precision, v);
            if (strtod(digits, NULL) == v)
                break;
        }
        bool integral = strpbrk(digits, ".eni") == NULL;
        return fprintf(out, "%s%s", digits, integral ? ".0" : "");
    }
    case JSON_STRING:
        fputc('\'', out);
        for (size_t i = 0; i < json_string_length(value); i++) {
            char c = json_string_value(value)[i];
            if (c == '\'' || c == '\\')
                fputc('\\', out);
            fputc(c, out);
        }
        return fputc('\'', out);
    default: {
        char *dumped = json_dumps(value, JSON_ENCODE_ANY);
        int rc = fputs(dumped ? dumped : "?", out);
        free(dumped);
        return rc;
    }
    }
}

/* A slice's file: "slice(1, None, 2)", as Python shows it. */
static int render_slice(struct builder *b, struct sk_node *node, const json_t *content)
{
    char *text = NULL;
    size_t length = 0;
    FILE *out = open_memstream(&text, &length);
    if (out == NULL)
        return sk_fail(b->err, "out of memory");
    fputs("slice(", out);
    append_python_repr(out, json_object_get(content, "start"));
    fputs(", ", out);
    append_python_repr(out, json_object_get(content, "stop"));
    fputs(", ", out);
    append_python_repr(out, json_object_get(content, "step"));
    fputs(")\n", out);
    if (fclose(out) != 0 || text == NULL) {
        free(text);
        return sk_fail(b->err, "out of memory");
    }
    sk_node_set_text(node, text, length);
    return 0;
}

/* The old FunctionNode's "module_path.function", which names what it calls. */
static char *old_function_name(const json_t *content)
{
    char *full;
    if (asprintf(&full, "%s.%s", json_string_value(json_object_get(content, "module_path")),
                 json_string_value(json_object_get(content, "function"))) < 0)
        return NULL;
    return full;
}

/* The loaders' readers: each reads what its loader reads of STATE (whose
 * "content" is CONTENT, or NULL) into NODE's slots, fields and text. */
typedef int (*loader_reader)(struct builder *b, struct sk_node *node, json_t *state,
                             json_t *content, unsigned inherited);

static int read_object(struct builder *b, struct sk_node *node, json_t *state, json_t *content,
                       unsigned inherited)
{
    (void)state;
    if (content == NULL || json_is_null(content))
        return 0;
    return child(b, node, SK_SLOT_FLATTEN, content, ".state", 6, true, inherited);
}

static int read_random_state(struct builder *b, struct sk_node *node, json_t *state,
                             json_t *content, unsigned inherited)
{
    (void)state;
    if (content == NULL)
        return node_fail(b, "missing 'content'");
    return child(b, node, SK_SLOT_FLATTEN, content, ".state", 6, true, inherited);
}

/* TreeNode and LossNode: an object whose constructor's arguments show as .args. */
static int read_reduced(struct builder *b, struct sk_node *node, json_t *state, json_t *content,
                        unsigned inherited)
{
    unsigned passed = inherited | sk_loader_hands_down(node->loader);
    if (content == NULL)
        return node_fail(b, "missing 'content'");
    if (child(b, node, SK_SLOT_FLATTEN, content, ".state", 6, true, passed) != 0)
        return -1;
    json_t *reduce = require(b, state, "__reduce__", JSON_OBJECT);
    if (reduce == NULL)
        return -1;
    return child_of(b, node, SK_SLOT_ENTRY, reduce, "args", ".args", passed);
}

static int read_dict(struct builder *b, struct sk_node *node, json_t *state, json_t *content,
                     unsigned inherited)
{
    (void)content;
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
        node->slots[node->slot_count - 1].owns_key = decoded != NULL;
    }
    return 0;
}

/* DefaultDictNode and _DictWithDeprecatedKeysNode: a dict and one more part. */
static int read_dict_subclass(struct builder *b, struct sk_node *node, json_t *state,
                              json_t *content, unsigned inherited)
{
    (void)state;
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

static int read_sequence(struct builder *b, struct sk_node *node, json_t *state, json_t *content,
                         unsigned inherited)
{
    (void)state;
    return children_of_array(b, node, content, inherited);
}

static int read_ndarray(struct builder *b, struct sk_node *node, json_t *state, json_t *content,
                        unsigned inherited)
{
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

static int read_sparse_matrix(struct builder *b, struct sk_node *node, json_t *state,
                              json_t *content, unsigned inherited)
{
    (void)content;
    (void)inherited;
    json_t *type = require(b, state, "type", JSON_STRING);
    if (type == NULL)
        return -1;
    if (!string_is(type, "scipy"))
        return node_fail(b, "cannot load a sparse matrix of type '%s'", json_string_value(type));
    return member_of(b, node, state);
}

static int read_bytes(struct builder *b, struct sk_node *node, json_t *state, json_t *content,
                      unsigned inherited)
{
    (void)content;
    (void)inherited;
    return member_of(b, node, state);
}

static int read_masked_array(struct builder *b, struct sk_node *node, json_t *state,
                             json_t *content, unsigned inherited)
{
    (void)state;
    if (child_of(b, node, SK_SLOT_ENTRY, content, "data", NULL, inherited) != 0)
        return -1;
    return child_of(b, node, SK_SLOT_ENTRY, content, "mask", NULL, inherited);
}

static int read_json(struct builder *b, struct sk_node *node, json_t *state, json_t *content,
                     unsigned inherited)
{
    (void)content;
    (void)inherited;
    json_t *text = require(b, state, "content", JSON_STRING);
    if (text == NULL)
        return -1;
    node->json_text = json_string_value(text);
    node->json_length = json_string_length(text);
    char *file;
    size_t length;
    if (sk_json_node_text(node->json_text, node->json_length, &file, &length) != 0)
        return sk_fail(b->err, "out of memory");
    sk_node_set_text(node, file, length);
    return 0;
}

static int read_function(struct builder *b, struct sk_node *node, json_t *state, json_t *content,
                         unsigned inherited)
{
    (void)state;
    (void)inherited;
    if (node->protocol_form != 0)
        return 0;
    json_t *module = require_name(b, content, "module_path");
    json_t *function = module ? require_name(b, content, "function") : NULL;
    if (function == NULL)
        return -1;
    char *text;
    int length = asprintf(&text, "%s.%s\n", json_string_value(module), json_string_value(function));
    if (length < 0)
        return sk_fail(b->err, "out of memory");
    sk_node_set_text(node, text, (size_t)length);
    return 0;
}

static int read_nothing(struct builder *b, struct sk_node *node, json_t *state, json_t *content,
                        unsigned inherited)
{
    (void)b;
    (void)node;
    (void)state;
    (void)content;
    (void)inherited;
    return 0;
}

static int read_partial(struct builder *b, struct sk_node *node, json_t *state, json_t *content,
                        unsigned inherited)
{
    (void)state;
    if (child_of(b, node, SK_SLOT_ENTRY, content, "func", NULL, inherited) != 0 ||
        child_of(b, node, SK_SLOT_ENTRY, content, "args", NULL, inherited) != 0 ||
        child_of(b, node, SK_SLOT_ENTRY, content, "kwds", NULL, inherited) != 0)
        return -1;
    return child_of(b, node, SK_SLOT_ENTRY, content, "namespace", NULL, inherited);
}

static int read_method(struct builder *b, struct sk_node *node, json_t *state, json_t *content,
                       unsigned inherited)
{
    (void)state;
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

static int read_slice(struct builder *b, struct sk_node *node, json_t *state, json_t *content,
                      unsigned inherited)
{
    (void)state;
    (void)inherited;
    if (!json_is_object(content) || !json_object_get(content, "start") ||
        !json_object_get(content, "stop") || !json_object_get(content, "step"))
        return node_fail(b, "slice needs 'content' with start, stop and step");
    return render_slice(b, node, content);
}

static int read_constructor_from_reduce(struct builder *b, struct sk_node *node, json_t *state,
                                        json_t *content, unsigned inherited)
{
    (void)content;
    return child_of(b, node, SK_SLOT_ENTRY, state, "content", NULL, inherited);
}

static int read_operator_func(struct builder *b, struct sk_node *node, json_t *state,
                              json_t *content, unsigned inherited)
{
    (void)content;
    if (strcmp(node->module_name, "operator") != 0)
        return node_fail(b, "operator function from module other than 'operator': %s",
                         node->type_name);
    return child_of(b, node, SK_SLOT_ENTRY, state, "attrs", NULL, inherited);
}

static int read_random_generator(struct builder *b, struct sk_node *node, json_t *state,
                                 json_t *content, unsigned inherited)
{
    (void)state;
    if (node->protocol_form == 0) {
        json_t *raw = json_is_object(content) ? json_object_get(content, "bit_generator") : NULL;
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
}

static int read_dtype(struct builder *b, struct sk_node *node, json_t *state, json_t *content,
                      unsigned inherited)
{
    (void)content;
    return child_of(b, node, SK_SLOT_HIDDEN, state, "content", NULL, inherited);
}

/* A new loader: its enum value and name in graph.h/graph.c, and one row here. */
static const loader_reader loader_readers[SK_LOADER_COUNT] = {
    [SK_LOADER_OBJECT] = read_object,
    [SK_LOADER_DICT] = read_dict,
    [SK_LOADER_DICT_DEPRECATED_KEYS] = read_dict_subclass,
    [SK_LOADER_DEFAULTDICT] = read_dict_subclass,
    [SK_LOADER_LIST] = read_sequence,
    [SK_LOADER_TUPLE] = read_sequence,
    [SK_LOADER_SET] = read_sequence,
    [SK_LOADER_NDARRAY] = read_ndarray,
    [SK_LOADER_MASKED_ARRAY] = read_masked_array,
    [SK_LOADER_SPARSE_MATRIX] = read_sparse_matrix,
    [SK_LOADER_BYTES] = read_bytes,
    [SK_LOADER_BYTEARRAY] = read_bytes,
    [SK_LOADER_JSON] = read_json,
    [SK_LOADER_FUNCTION] = read_function,
    [SK_LOADER_TYPE] = read_nothing,
    [SK_LOADER_PARTIAL] = read_partial,
    [SK_LOADER_METHOD] = read_method,
    [SK_LOADER_SLICE] = read_slice,
    [SK_LOADER_CONSTRUCTOR_FROM_REDUCE] = read_constructor_from_reduce,
    [SK_LOADER_OPERATOR_FUNC] = read_operator_func,
    [SK_LOADER_RANDOM_STATE] = read_random_state,
    [SK_LOADER_RANDOM_GENERATOR] = read_random_generator,
    [SK_LOADER_DTYPE] = read_dtype,
    [SK_LOADER_TREE] = read_reduced,
    [SK_LOADER_LOSS] = read_reduced,
    [SK_LOADER_CACHED] = read_nothing,
    [SK_LOADER_UNREPRESENTABLE] = read_nothing,
};

/* What NODE adds to get_untrusted_types, once its children are read. */
static int contribute(struct builder *b, struct sk_node *node, json_t *state, unsigned inherited)
{
    json_t *content = json_object_get(state, "content");
    char *full = NULL;
    const char *called = NULL;
    if (node->loader == SK_LOADER_METHOD)
        called = json_string_value(json_object_get(content, "func"));
    if (node->loader == SK_LOADER_FUNCTION && node->protocol_form == 0) {
        full = old_function_name(content);
        if (full == NULL)
            return sk_fail(b->err, "out of memory");
        called = full;
    }
    int rc = sk_node_contribute(node, inherited, called, b->err);
    free(full);
    return rc;
}

static int resolve_loader(struct builder *b, const char *name, enum sk_loader *loader, int *form)
{
    if (!sk_loader_named(name, loader) || (*loader == SK_LOADER_UNREPRESENTABLE && !b->from_pickle))
        return -1;
    *form = SK_CURRENT_PROTOCOL;
    if (*loader == SK_LOADER_FUNCTION && b->protocol == 0)
        *form = 0;
    if (*loader == SK_LOADER_RANDOM_GENERATOR && (b->protocol == 0 || b->protocol == 1))
        *form = (int)b->protocol;
    return 0;
}

/* A new node of STATE, its state kept for comparing aliases with it. */
static int new_node(struct builder *b, json_t *state, enum sk_loader loader, int form,
                    json_t *module, json_t *class_name, struct sk_node **out)
{
    if (built(b, sk_graph_add_node(b->schema, loader, form, json_string_value(module),
                                   json_string_value(class_name), out, b->err)) != 0)
        return -1;
    if (sk_grow(&b->states, &b->state_capacity, b->schema->node_count, sizeof *b->states, 256) != 0)
        return sk_fail(b->err, "out of memory");
    b->states[(*out)->index] = state;
    return 0;
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
    struct sk_node *node;
    if (new_node(b, state, loader, form, module, class_name, &node) != 0)
        return -1;
    /* skops memoizes a node before reading its children, so a child may
     * refer back to it; CachedNode is never memoized. */
    if (key != NULL && truthy && loader != SK_LOADER_CACHED &&
        sk_strmap_put(b->memo, key, key_length, node) != 0)
        return sk_fail(b->err, "out of memory");

    b->depth++;
    int rc = loader_readers[loader](b, node, state, json_object_get(state, "content"), inherited);
    b->depth--;
    if (rc != 0 || contribute(b, node, state, inherited) != 0)
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

/* The model's protocol and skops version, as JSON and as .skops/'s files. */
int sk_schema_read_versions(struct sk_schema *schema, const json_t *protocol, const json_t *version,
                            struct sk_error *err)
{
    schema->protocol_json = json_dumps(protocol, JSON_ENCODE_ANY);
    schema->protocol_text = sk_json_dump_python(protocol, &schema->protocol_text_length);
    if (schema->protocol_json == NULL || schema->protocol_text == NULL)
        return sk_fail(err, "out of memory");
    size_t length = 0;
    char *text;
    if (version == NULL) {
        text = strdup("");
    } else if (json_is_string(version)) {
        /* the text of a JSON string, as a JsonNode's file */
        length = json_string_length(version) + 1;
        text = malloc(length + 1);
        if (text != NULL) {
            memcpy(text, json_string_value(version), length - 1);
            text[length - 1] = '\n';
            text[length] = '\0';
        }
    } else {
        text = sk_json_dump_python(version, &length);
    }
    schema->skops_version_text = text;
    schema->skops_version_text_length = length;
    if (text == NULL)
        return sk_fail(err, "out of memory");
    if (version != NULL &&
        (schema->skops_version_json = json_dumps(version, JSON_ENCODE_ANY)) == NULL)
        return sk_fail(err, "out of memory");
    return 0;
}

static void free_arena(void *arena)
{
    sk_json_arena_free(arena);
}

/* Builds the graph of ROOT_STATE, whose storage SCHEMA already keeps. */
static int load_root(json_t *root_state, struct sk_store *store, const struct sk_limits *limits,
                     bool from_pickle, struct sk_schema *schema, struct sk_error *err)
{
    struct builder b = {
        .store = store,
        .schema = schema,
        .err = err,
        .protocol = -1,
        .max_key_bytes = limits && limits->key_bytes ? limits->key_bytes : SK_MAX_KEY_BYTES,
        .from_pickle = from_pickle,
    };
    int rc = -1;
    b.memo = sk_strmap_new();
    if (b.memo == NULL) {
        sk_fail(err, "out of memory");
        goto done;
    }
    if (!json_is_object(root_state)) {
        sk_fail(err, "schema.json: the top level is not a JSON object");
        goto done;
    }
    json_t *protocol = json_object_get(root_state, "protocol");
    if (protocol == NULL) {
        sk_fail(err, "schema.json: no 'protocol' at the top level");
        goto done;
    }
    if (json_is_integer(protocol))
        b.protocol = json_integer_value(protocol);
    if (sk_schema_read_versions(schema, protocol, json_object_get(root_state, "_skops_version"),
                                err) != 0)
        goto done;
    bool fresh;
    rc = get_tree(&b, root_state, 0, &schema->root, &fresh);
done:
    sk_strmap_free(b.memo);
    free(b.memo_key);
    free(b.states);
    return rc;
}

int sk_schema_load_tree(const char *text, size_t length, struct sk_store *store,
                        const struct sk_limits *limits, struct sk_schema **out,
                        struct sk_error *err)
{
    *out = NULL;
    struct sk_schema *schema = sk_graph_new(limits);
    if (schema == NULL)
        return sk_fail(err, "out of memory");
    json_t *root_state;
    struct sk_json_arena *arena;
    if (sk_json_parse(text, length, &root_state, &arena, err) != 0) {
        sk_error_prefix(err, "schema.json: ");
        sk_schema_free(schema);
        return -1;
    }
    /* Names, keys and JSON texts of the graph point into the parsed document. */
    sk_graph_keep(schema, arena, free_arena);
    if (load_root(root_state, store, limits, false, schema, err) != 0) {
        sk_schema_free(schema);
        return -1;
    }
    *out = schema;
    return 0;
}

/* The one-pass reader (schema_scan.h) declines whatever it would read
 * otherwise than this one; SKOPSFS_SCHEMA_READER=jansson skips it (to
 * compare the two by hand: tests/schema_diff.c runs both either way). */
static bool jansson_only(void)
{
    const char *reader = getenv("SKOPSFS_SCHEMA_READER");
    return reader != NULL && strcmp(reader, "jansson") == 0;
}

int sk_schema_load(const char *text, size_t length, struct sk_store *store,
                   const struct sk_limits *limits, struct sk_schema **out, struct sk_error *err)
{
    if (!jansson_only() && sk_schema_scan_load(text, length, store, limits, out) == 0)
        return 0;
    return sk_schema_load_tree(text, length, store, limits, out, err);
}

int sk_schema_read_member(struct sk_store *store, uint64_t index, size_t max_bytes,
                          const struct sk_limits *limits, const struct sk_node_watch *watch,
                          struct sk_schema **out, struct sk_error *err)
{
    *out = NULL;
    struct sk_source *source;
    struct sk_error ignored = {0}; /* a failure here is met again below, and said there */
    int rc = jansson_only() ? SK_SCAN_DECLINED : SK_SCAN_DIGESTS_WANTED;
    /* first without a digest of every container, which only ensembles need */
    for (int pass = 0; pass < 2 && rc == SK_SCAN_DIGESTS_WANTED; pass++) {
        if (sk_store_open(store, index, false, &source, &ignored) != 0) {
            rc = SK_SCAN_DECLINED;
            break;
        }
        rc = sk_schema_scan_source(source, NULL, pass == 1, store, limits, watch, out);
        sk_source_close(source);
        if (rc == 0)
            return 0;
    }
    char *text;
    size_t length;
    if (sk_store_read_member(store, index, max_bytes, &text, &length, err) != 0)
        return -1;
    /* the one-pass reader again only where the whole text may settle it */
    rc = rc == SK_SCAN_TEXT_GONE && sk_schema_scan_load(text, length, store, limits, out) == 0
             ? 0
             : sk_schema_load_tree(text, length, store, limits, out, err);
    sk_store_free_member(text, length);
    return rc;
}

static void release_json(void *root)
{
    json_decref(root);
}

int sk_schema_load_pickled(json_t *root_state, struct sk_store *store,
                           const struct sk_limits *limits, struct sk_schema **out,
                           struct sk_error *err)
{
    *out = NULL;
    struct sk_schema *schema = sk_graph_new(limits);
    if (schema == NULL)
        return sk_fail(err, "out of memory");
    sk_graph_keep(schema, json_incref(root_state), release_json);
    if (load_root(root_state, store, limits, true, schema, err) != 0) {
        sk_schema_free(schema);
        return -1;
    }
    *out = schema;
    return 0;
}
