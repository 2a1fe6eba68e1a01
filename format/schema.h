/* Schema nodes: schema.json read into the graph of nodes that skops's loader
 * builds, exactly as get_tree does it. A state whose __id__ was seen before
 * is the earlier node, so the graph shares nodes and may have cycles. Each
 * node knows the types it adds to skops.io.get_untrusted_types; nothing is
 * imported, constructed or executed. */
#ifndef SKOPSFS_SCHEMA_H
#define SKOPSFS_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sk_error.h"
#include "jsontext.h"
#include "sk_limits.h"
#include "source.h"

enum sk_loader {
    SK_LOADER_OBJECT,
    SK_LOADER_DICT,
    SK_LOADER_DICT_DEPRECATED_KEYS, /* sklearn's _DictWithDeprecatedKeys */
    SK_LOADER_DEFAULTDICT,
    SK_LOADER_LIST,
    SK_LOADER_TUPLE,
    SK_LOADER_SET,
    SK_LOADER_NDARRAY,
    SK_LOADER_MASKED_ARRAY,
    SK_LOADER_SPARSE_MATRIX,
    SK_LOADER_BYTES,
    SK_LOADER_BYTEARRAY,
    SK_LOADER_JSON,
    SK_LOADER_FUNCTION,
    SK_LOADER_TYPE,
    SK_LOADER_PARTIAL,
    SK_LOADER_METHOD,
    SK_LOADER_SLICE,
    SK_LOADER_CONSTRUCTOR_FROM_REDUCE,
    SK_LOADER_OPERATOR_FUNC,
    SK_LOADER_RANDOM_STATE,
    SK_LOADER_RANDOM_GENERATOR,
    SK_LOADER_DTYPE,
    SK_LOADER_TREE,
    SK_LOADER_LOSS,
    SK_LOADER_CACHED,
    SK_LOADER_COUNT
};

/* skops's name of a loader, e.g. "ObjectNode". */
const char *sk_loader_name(enum sk_loader loader);

enum sk_slot_kind {
    SK_SLOT_ENTRY,   /* a child shown under its key */
    SK_SLOT_FLATTEN, /* a dict whose entries are shown as the parent's own */
    SK_SLOT_HIDDEN,  /* a part skops reads but a mount never shows */
    SK_SLOT_FIELD,   /* a plain schema value shown as a text file */
};

struct sk_node;

struct sk_slot {
    enum sk_slot_kind kind;
    const char *key; /* the unescaped key; may hold NUL bytes */
    size_t key_length;
    bool fixed_name; /* the key is a name of the filesystem's own (".args") */
    struct sk_node *node;
    /* The state as written here; not node->state where its __id__ made it
     * an earlier node, whose content skops loads instead. */
    const json_t *literal;
    char *owned_key;  /* the key's storage where the state has none ("0", "1", ...) */
    char *field_text; /* SK_SLOT_FIELD: the file's bytes */
    size_t field_length;
};

struct sk_node {
    enum sk_loader loader;
    int protocol_form;       /* 0 or 1 for the old Function/RandomGenerator forms, else 2 */
    char *type_name;         /* __module__ + "." + __class__; neither holds NUL */
    const char *module_name; /* __module__ and __class__ as written: skops */
    const char *class_name;  /* compares them apart (MethodNode, operator) */
    json_t *state;
    size_t index; /* creation order */
    struct sk_slot *slots;
    size_t slot_count;
    size_t slot_capacity;
    /* What this node alone adds to get_untrusted_types, sorted. */
    char **contributions;
    size_t contribution_count;
    /* Array, sparse and bytes nodes: their archive member. */
    bool has_member;
    uint64_t member;
    /* JsonNode: the JSON text of the value. */
    const char *json_text;
    size_t json_length;
};

struct sk_schema {
    json_t *root_state;
    struct sk_json_arena *json_arena; /* owns root_state */
    struct sk_node *root;
    struct sk_node **nodes; /* every node, in creation order */
    size_t node_count;
    json_t *protocol;      /* as written */
    json_t *skops_version; /* may be NULL */
    /* Scratch for graph walks; sk_node_needs is not thread-safe. */
    unsigned *walk_marks;
    unsigned walk_epoch;
    unsigned long long walk_steps;
};

/* Parses TEXT (schema.json) and builds the node graph, checking every
 * member it names in STORE. LIMITS (may be NULL) raises the defaults of
 * nodes, children and key_bytes. Names (__loader__, __module__,
 * __class__, function names) holding NUL are refused. Errors read
 * "schema.json: node at PATH: ...". */
int sk_schema_load(const char *text, size_t length, struct sk_store *store,
                   const struct sk_limits *limits, struct sk_schema **out, struct sk_error *err);
void sk_schema_free(struct sk_schema *schema);

/* The union of every node's contributions, sorted and unique: what
 * skops.io.get_untrusted_types returns. Free with sk_string_list_free. */
int sk_schema_untrusted(const struct sk_schema *schema, char ***names, size_t *count,
                        struct sk_error *err);

/* Every type that NODE needs trusted to be shown: its own contributions,
 * those of its hidden parts and of the dict flattened into it. */
int sk_node_needs(struct sk_schema *schema, const struct sk_node *node, char ***names,
                  size_t *count, struct sk_error *err);

void sk_string_list_free(char **names, size_t count);

#endif
