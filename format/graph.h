/* The node graph: the objects skops's loader would build from a model, as
 * plain data. Nodes hold their loader, type and children (slots); a node
 * met again through an alias is the same node, so the graph shares nodes
 * and may have cycles. Each node knows the types it adds to
 * skops.io.get_untrusted_types; nothing is imported, constructed or
 * executed.
 *
 * A reader (format/schema.c for skops's schema.json; a streaming reader or
 * a pickle translator later) fills a graph through the builder below: it
 * renders whatever a node shows as a file into plain text, so that nothing
 * after it needs the reader's own representation. */
#ifndef SKOPSFS_GRAPH_H
#define SKOPSFS_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sk_error.h"
#include "sk_limits.h"

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
    /* Not skops's: what a pickle holds that no skops node stands for
     * (os.system, a getattr chain...). Only the pickle reader makes one; a
     * .skops file naming it names an unknown loader. It needs the
     * never-trustable name SK_UNREPRESENTABLE_MARK + module.name. */
    SK_LOADER_UNREPRESENTABLE,
    SK_LOADER_COUNT
};

/* skops's name of a loader, e.g. "ObjectNode". */
/* Starts what an unrepresentable node needs: no type name starts so (a
 * Python identifier cannot), and a trust list holding it is refused. */
#define SK_UNREPRESENTABLE_MARK '!'

const char *sk_loader_name(enum sk_loader loader);
/* The loader skops calls NAME; false where there is none. */
bool sk_loader_named(const char *name, enum sk_loader *loader);

enum sk_slot_kind {
    SK_SLOT_ENTRY,   /* a child shown under its key */
    SK_SLOT_FLATTEN, /* a dict whose entries are shown as the parent's own */
    SK_SLOT_HIDDEN,  /* a part skops reads but a mount never shows */
    SK_SLOT_FIELD,   /* a plain schema value shown as a text file */
};

struct sk_node;
struct sk_graph_chunk;
struct sk_strmap;

/* Lengths are 32 bits: a forest has hundreds of thousands of slots and
 * nodes, and sk_node_add_slot refuses a key or field of 4 GiB. */
struct sk_slot {
    const char *key; /* the unescaped key; may hold NUL bytes */
    struct sk_node *node;
    char *field_text; /* SK_SLOT_FIELD: the file's bytes */
    uint32_t key_length;
    uint32_t field_length;
    uint8_t kind;    /* enum sk_slot_kind */
    bool fixed_name; /* the key is a name of the filesystem's own (".args") */
    /* The state written here is an alias of an earlier node (its __id__)
     * whose content differs: content skops silently ignores. */
    bool alias_differs;
    bool owns_key; /* the key is the graph's to free (the reader has no storage for it) */
};

/* sk_graph_add_node sets each field by name (a whole-node literal was a
 * slow `rep stos`): a new field is set there too. */
struct sk_node {
    enum sk_loader loader;
    int8_t protocol_form; /* 0 or 1 for the old Function/RandomGenerator forms, else 2 */
    /* Array, sparse and bytes nodes: their archive member. */
    bool has_member;
    uint32_t slot_count; /* at most max_children, itself below 2^32 */
    uint32_t slot_capacity;
    uint32_t contribution_count;
    uint32_t index;          /* creation order; sk_graph_add_node refuses the 2^32nd node */
    const char *type_name;   /* module + "." + class (neither holds NUL); the graph's */
    const char *module_name; /* __module__ and __class__ as written: skops */
    const char *class_name;  /* compares them apart (MethodNode, operator) */
    struct sk_slot *slots;
    /* What this node alone adds to get_untrusted_types. */
    char **contributions;
    uint64_t member;
    /* JsonNode: the JSON text of the value. */
    const char *json_text;
    size_t json_length;
    /* The file a JsonNode, SliceNode or old-form FunctionNode shows, as
     * rendered by the reader (NULL for other nodes). */
    char *text;
    size_t text_length;
};

/* Told of each node the one-pass reader completes (its slots final) while
 * the rest of the text is still to be read: the content checks start on a
 * tree this way. NODE is valid only during the call (a read may start over
 * and drop its graph), and the call runs on the reading thread. */
struct sk_node_watch {
    void (*node_done)(void *context, const struct sk_node *node);
    void *context;
};

struct sk_schema {
    struct sk_node *root;
    struct sk_node **nodes; /* every node, in creation order */
    size_t node_count;
    size_t node_capacity;
    unsigned long long max_nodes;
    unsigned long long max_children;
    /* The model's protocol and skops version: as JSON text (skops_version_json
     * is NULL where the model has none), and as the files .skops/ shows. */
    char *protocol_json;
    char *skops_version_json;
    char *protocol_text;
    size_t protocol_text_length;
    char *skops_version_text;
    size_t skops_version_text_length;
    /* Nodes and their type names, allocated in chunks: a forest has
     * hundreds of thousands of nodes and a few dozen distinct types. */
    struct sk_graph_chunk *chunks;
    struct sk_strmap *type_names;
    char *type_name_scratch; /* where a type name is spelled to be looked up */
    size_t type_name_scratch_capacity;
    /* What borrowed names and texts point into, freed with the graph. */
    void *storage;
    void (*free_storage)(void *storage);
    /* Scratch for graph walks; sk_node_needs is not thread-safe. */
    unsigned *walk_marks;
    unsigned walk_epoch;
    unsigned long long walk_steps;
};

/* Builder results besides 0: the message in ERR names the limit; a reader
 * puts where it was in front of it (sk_error_prefix). */
enum { SK_GRAPH_NO_MEMORY = -1, SK_GRAPH_LIMIT = -2 };

/* Drops the nodes made from the COUNT-th on (a reader that read a state
 * ahead of knowing it was an alias). No slot of an earlier node may hold
 * them. */
void sk_graph_truncate(struct sk_schema *schema, size_t count);

/* A new, empty graph; LIMITS (may be NULL) raises the defaults of nodes
 * and children. NULL when out of memory. */
struct sk_schema *sk_graph_new(const struct sk_limits *limits);
void sk_schema_free(struct sk_schema *schema);
/* Gives STORAGE to the graph, freed with it by FREE_STORAGE. */
void sk_graph_keep(struct sk_schema *schema, void *storage, void (*free_storage)(void *storage));

/* A new node of type MODULE.CLASS_NAME (borrowed: they must live as long as
 * the graph, e.g. in its storage; neither holds NUL). */
int sk_graph_add_node(struct sk_schema *schema, enum sk_loader loader, int protocol_form,
                      const char *module, const char *class_name, struct sk_node **out,
                      struct sk_error *err);
/* A slot of NODE holding CHILD (NULL for a field) under KEY (borrowed; or
 * set (*OUT)->owns_key to hand over its storage). */
int sk_node_add_slot(struct sk_schema *schema, struct sk_node *node, enum sk_slot_kind kind,
                     const char *key, size_t key_length, bool fixed_name, struct sk_node *child,
                     struct sk_slot **out, struct sk_error *err);
/* Gives back the room NODE's slots grew into beyond their count: for a
 * reader that knows the node complete (a forest has 100,000 of them). */
void sk_node_fit_slots(struct sk_node *node);
/* A field: a file of TEXT (taken, freed with the graph, also on failure). */
int sk_node_add_field(struct sk_schema *schema, struct sk_node *node, const char *key, char *text,
                      size_t length, struct sk_error *err);
/* Records that NODE adds NAME (copied) to get_untrusted_types. */
int sk_node_add_contribution(struct sk_node *node, const char *name, struct sk_error *err);
/* Gives NODE the text of its file (taken, freed with the graph). */
void sk_node_set_text(struct sk_node *node, char *text, size_t length);

/* What a node hands down to the nodes read below it. */
enum sk_inherited_trust {
    SK_INHERIT_TREE = 1, /* below a TreeNode: sklearn.tree._tree.Tree is trusted */
    SK_INHERIT_LOSS = 2, /* below a LossNode: the SGD losses are trusted */
};
/* What a node of LOADER hands down (a TreeNode's or a LossNode's flag; 0
 * for the rest), to its .state and its .args alike. */
unsigned sk_loader_hands_down(enum sk_loader loader);

/* Adds what NODE needs trusted, by skops's rules for its loader: its
 * loader's default lists, INHERITED (enum sk_inherited_trust) and, for an
 * old-form FunctionNode its "module.function" and for a MethodNode its
 * method's name, CALLED. A MethodNode's first slot is its object. */
int sk_node_contribute(struct sk_node *node, unsigned inherited, const char *called,
                       struct sk_error *err);

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
