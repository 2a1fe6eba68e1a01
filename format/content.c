#include "content.h"

#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "grow.h"
#include "layout.h"
#include "sk_limits.h"
#include "npy.h"
#include "parallel.h"
#include "sparse.h"

/* Trees the reader hands over before the judging thread is woken. */
#define PREFETCH_BATCH 16
/* Records are read in chunks of about this many bytes. */
#define RECORD_CHUNK_BYTES (64u * 1024)
/* Deepest object nesting the walk follows (the schema's own bound, with
 * room for the flattened dicts between an object and its entries). */
#define WALK_MAX_DEPTH (2 * SK_MAX_NODE_DEPTH + 2)

/* What one run of checks needs: where it reads and where its problems go.
 * The walk has one for its own problems, each job one of its own. */
struct checker {
    struct sk_store *store;
    struct sk_content_report *report;
    struct sk_error *err;
    const char *path; /* the object as a mount shows it, for its problems */
    size_t path_length;
    const struct sk_content_prefetch *prefetch; /* trees judged already, or NULL */
};

static void report_clear(struct sk_content_report *report);
static size_t check_threads(size_t jobs);

/* ---- problems ---- */

static int add_problem(struct checker *c, const struct sk_node *object, const char *code,
                       bool has_record, uint64_t record, const char *key, size_t key_length)
{
    struct sk_content_report *r = c->report;
    /* One problem per rule and object: the first record that breaks it. */
    for (size_t i = r->count; i > 0 && r->problems[i - 1].object == object; i--)
        if (r->problems[i - 1].code == code && key == NULL)
            return 0;
    if (sk_grow(&r->problems, &r->capacity, r->count + 1, sizeof *r->problems, 8) != 0)
        return sk_fail(c->err, "out of memory");
    struct sk_content_problem *p = &r->problems[r->count];
    memset(p, 0, sizeof *p);
    p->object = object;
    p->code = code;
    p->has_record = has_record;
    p->record = record;
    p->path = strndup(c->path, c->path_length);
    p->key = key ? strndup(key, key_length) : NULL;
    if (p->path == NULL || (key != NULL && p->key == NULL)) {
        free(p->path);
        free(p->key);
        return sk_fail(c->err, "out of memory");
    }
    r->count++;
    return 0;
}

static int problem(struct checker *c, const struct sk_node *object, const char *code)
{
    return add_problem(c, object, code, false, 0, NULL, 0);
}

static int problem_at(struct checker *c, const struct sk_node *object, const char *code,
                      uint64_t record)
{
    return add_problem(c, object, code, true, record, NULL, 0);
}

/* ---- schema lookups ---- */

static bool key_is(const struct sk_slot *slot, const char *key)
{
    size_t length = strlen(key);
    return slot->key_length == length && memcmp(slot->key, key, length) == 0;
}

static const struct sk_node *slot_named(const struct sk_node *node, const char *key)
{
    if (node == NULL)
        return NULL;
    for (size_t i = 0; i < node->slot_count; i++)
        if (node->slots[i].kind != SK_SLOT_FIELD && key_is(&node->slots[i], key))
            return node->slots[i].node;
    return NULL;
}

/* An object's attribute, from the dict skops hands to __setstate__. */
static const struct sk_node *attribute(const struct sk_node *object, const char *key)
{
    const struct sk_node *state = slot_named(object, ".state");
    if (state == NULL || state->loader != SK_LOADER_DICT)
        return NULL;
    return slot_named(state, key);
}

/* A JsonNode holding a Python int. */
static bool json_int(const struct sk_node *node, int64_t *out)
{
    if (node == NULL || node->loader != SK_LOADER_JSON || node->json_length == 0)
        return false;
    const char *p = node->json_text, *end = p + node->json_length;
    bool negative = *p == '-';
    p += negative;
    if (p == end)
        return false;
    uint64_t value = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9' || value > (UINT64_MAX - 9) / 10)
            return false;
        value = value * 10 + (uint64_t)(*p - '0');
    }
    if (value > (uint64_t)INT64_MAX)
        return false;
    *out = negative ? -(int64_t)value : (int64_t)value;
    return true;
}

/* ---- arrays, read in place ---- */

struct array {
    struct sk_source *reader;
    struct sk_npy_header header;
    struct sk_npy_fields fields;
    uint64_t records; /* elements, over every dimension */
};

static void array_close(struct array *a)
{
    sk_source_close(a->reader);
    sk_npy_header_free(&a->header);
    sk_npy_fields_free(&a->fields);
    memset(a, 0, sizeof *a);
}

static bool read_exactly(struct sk_source *reader, void *buffer, size_t length, uint64_t offset,
                         struct sk_error *err)
{
    for (size_t done = 0; done < length;) {
        ssize_t got =
            sk_source_pread(reader, (char *)buffer + done, length - done, offset + done, err);
        if (got <= 0)
            return false;
        done += (size_t)got;
    }
    return true;
}

/* Whether NODE is a numpy array stored as a member of its own. */
static bool is_array_member(const struct sk_node *node)
{
    return node != NULL && node->loader == SK_LOADER_NDARRAY && node->has_member;
}

/* Opens the .npy MEMBER and parses its header and dtype. False (with no
 * error) where it is not a readable numpy array: a problem, not a failure. */
static bool array_open_member(struct sk_store *store, uint64_t member, bool verified,
                              struct array *a)
{
    memset(a, 0, sizeof *a);
    struct sk_error local = {0};
    bool ok = sk_store_open(store, member, verified, &a->reader, &local) == 0 &&
              sk_npy_read_header(a->reader, &a->header, &local) == 0 && !a->header.object_dtype &&
              sk_npy_fields(a->header.descr, &a->fields, &local) == 0;
    if (!ok) {
        array_close(a);
        return false;
    }
    a->records = 1;
    for (size_t i = 0; i < a->header.ndim; i++)
        a->records *= a->header.shape[i]; /* sk_npy_parse checked it fits the member */
    return true;
}

/* NODE's array, opened as checked against its CRC-32 (a small one is read
 * whole, and its records come from the bytes checked). */
static bool array_open(struct checker *c, const struct sk_node *node, struct array *a)
{
    memset(a, 0, sizeof *a);
    return is_array_member(node) && array_open_member(c->store, node->member, true, a);
}

/* An integer field of a record, any size and byte order. Unsigned values
 * past INT64_MAX read as INT64_MAX: out of every range checked here. */
static inline int64_t field_int(const struct sk_npy_field *field, const unsigned char *record)
{
    const unsigned char *p = record + field->offset;
    uint64_t value = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* sklearn's node fields: native 8-byte integers, read a million times */
    bool native = field->size == 8 && !field->big_endian;
#else
    bool native = false;
#endif
    if (native) {
        memcpy(&value, p, sizeof value);
    } else {
        for (uint64_t i = 0; i < field->size; i++) {
            uint64_t byte = field->big_endian ? i : field->size - 1 - i;
            value = value << 8 | p[byte];
        }
    }
    if (field->kind == 'i' && field->size < 8 && (value >> (field->size * 8 - 1)) & 1)
        value |= ~0ull << (field->size * 8); /* sign-extend */
    if (field->kind == 'i')
        return (int64_t)value;
    return value > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)value;
}

static bool is_int_field(const struct sk_npy_field *field)
{
    return (field->kind == 'i' || field->kind == 'u' || field->kind == 'b') &&
           (field->size == 1 || field->size == 2 || field->size == 4 || field->size == 8);
}

/* Every element of a small 1-D integer array (n_classes, is_categorical_). */
static bool read_small_ints(struct sk_store *store, uint64_t member, int64_t **values,
                            uint64_t *count)
{
    struct array a;
    *values = NULL;
    if (!array_open_member(store, member, true, &a))
        return false;
    const struct sk_npy_field *field = &a.fields.fields[0];
    bool ok = a.header.ndim == 1 && a.fields.count == 1 && is_int_field(field) &&
              a.records <= SK_MAX_CHECKED_TREE_NODES;
    unsigned char *bytes = ok ? malloc(a.records * field->size + 1) : NULL;
    *values = ok ? malloc((a.records + 1) * sizeof **values) : NULL;
    struct sk_error local = {0};
    ok = ok && bytes != NULL && *values != NULL &&
         read_exactly(a.reader, bytes, a.records * field->size, a.header.data_offset, &local);
    for (uint64_t i = 0; ok && i < a.records; i++)
        (*values)[i] = field_int(field, bytes + i * field->size);
    *count = a.records;
    free(bytes);
    array_close(&a);
    if (!ok) {
        free(*values);
        *values = NULL;
    }
    return ok;
}

/* ---- record layouts ---- */

enum field_class { FIELD_INTP, FIELD_FLOAT64, FIELD_UINT8, FIELD_UINT32, FIELD_INDEX };

struct expected_field {
    const char *name;
    enum field_class class;
};

struct record_layout {
    const struct expected_field *fields;
    size_t required; /* the rest are optional, in order, at the end */
    size_t count;
};

/* sklearn.tree._tree.NODE_DTYPE; missing_go_to_left since scikit-learn 1.3. */
static const struct expected_field tree_fields[] = {
    {"left_child", FIELD_INTP},
    {"right_child", FIELD_INTP},
    {"feature", FIELD_INTP},
    {"threshold", FIELD_FLOAT64},
    {"impurity", FIELD_FLOAT64},
    {"n_node_samples", FIELD_INTP},
    {"weighted_n_node_samples", FIELD_FLOAT64},
    {"missing_go_to_left", FIELD_UINT8},
};
enum { TREE_LEFT, TREE_RIGHT, TREE_FEATURE };
static const struct record_layout tree_layout = {tree_fields, 7, 8};

/* sklearn's PREDICTOR_RECORD_DTYPE; feature_idx is intp since 1.3. */
static const struct expected_field predictor_fields[] = {
    {"value", FIELD_FLOAT64},
    {"count", FIELD_UINT32},
    {"feature_idx", FIELD_INDEX},
    {"num_threshold", FIELD_FLOAT64},
    {"missing_go_to_left", FIELD_UINT8},
    {"left", FIELD_UINT32},
    {"right", FIELD_UINT32},
    {"gain", FIELD_FLOAT64},
    {"depth", FIELD_UINT32},
    {"is_leaf", FIELD_UINT8},
    {"bin_threshold", FIELD_UINT8},
    {"is_categorical", FIELD_UINT8},
    {"bitset_idx", FIELD_UINT32},
};
enum {
    HGB_FEATURE = 2,
    HGB_LEFT = 5,
    HGB_RIGHT = 6,
    HGB_IS_LEAF = 9,
    HGB_IS_CATEGORICAL = 11,
    HGB_BITSET = 12,
};
static const struct record_layout predictor_layout = {predictor_fields, 13, 13};

static bool class_accepts(enum field_class class, const struct sk_npy_field *f)
{
    switch (class) {
    case FIELD_INTP:
        return f->kind == 'i' && (f->size == 4 || f->size == 8);
    case FIELD_FLOAT64:
        return f->kind == 'f' && f->size == 8;
    case FIELD_UINT8:
        return f->kind == 'u' && f->size == 1;
    case FIELD_UINT32:
        return f->kind == 'u' && f->size == 4;
    case FIELD_INDEX:
        return (f->kind == 'u' && f->size == 4) ||
               (f->kind == 'i' && (f->size == 4 || f->size == 8));
    }
    return false;
}

static bool is_padding(const struct sk_npy_field *f)
{
    return f->name[0] == '\0' && f->kind == 'V';
}

/* Whether the record has exactly LAYOUT's fields, in order (numpy's padding
 * aside); FOUND[i] is then the field of LAYOUT's i-th name. */
static bool match_layout(const struct sk_npy_fields *fields, const struct record_layout *layout,
                         const struct sk_npy_field **found)
{
    size_t next = 0;
    for (size_t i = 0; i < fields->count; i++) {
        const struct sk_npy_field *f = &fields->fields[i];
        if (is_padding(f))
            continue;
        if (next == layout->count || strcmp(f->name, layout->fields[next].name) != 0 ||
            !class_accepts(layout->fields[next].class, f))
            return false;
        found[next++] = f;
    }
    return next >= layout->required;
}

/* ---- the node graph of one tree ---- */

struct graph {
    uint64_t count;
    int32_t *left, *right;  /* -1: no edge */
    unsigned char *parents; /* saturating count of edges into each node */
    bool backward;          /* an edge to a node not after its parent */
};

struct graph_findings {
    int64_t shared; /* a node with two parents, or -1 */
    int64_t cycle;  /* a node whose child is on its own path, or -1 */
    uint64_t depth; /* edges on the longest path from the root */
};

static bool graph_init(struct graph *g, uint64_t count)
{
    g->count = count;
    g->left = malloc((count + 1) * sizeof *g->left);
    g->right = malloc((count + 1) * sizeof *g->right);
    g->parents = calloc(count + 1, 1);
    return g->left && g->right && g->parents;
}

static void graph_free(struct graph *g)
{
    free(g->left);
    free(g->right);
    free(g->parents);
}

/* Records the edge PARENT -> CHILD (a valid node id) as side 0 or 1. */
static void graph_edge(struct graph *g, uint64_t parent, int side, int64_t child)
{
    (side ? g->right : g->left)[parent] = (int32_t)child;
    g->backward = g->backward || (uint64_t)child <= parent;
    if (g->parents[child] < 2)
        g->parents[child]++;
}

/* Where no node has two parents and every edge leads forward (as
 * scikit-learn writes trees), what the walk below finds, in one pass in
 * order: a parent comes before its children, so its depth is known when
 * they are met, and there is no cycle. Nodes the root does not reach keep
 * no depth, as the walk never enters them. */
static bool graph_depths_forward(const struct graph *g, struct graph_findings *out)
{
    uint32_t *depth = malloc(g->count * sizeof *depth); /* UINT32_MAX: not reached */
    if (depth == NULL)
        return false;
    depth[0] = 0;
    for (uint64_t i = 1; i < g->count; i++)
        depth[i] = UINT32_MAX;
    for (uint64_t i = 0; i < g->count; i++) {
        if (depth[i] == UINT32_MAX)
            continue;
        if (depth[i] > out->depth)
            out->depth = depth[i];
        if (g->left[i] >= 0)
            depth[g->left[i]] = depth[i] + 1;
        if (g->right[i] >= 0)
            depth[g->right[i]] = depth[i] + 1;
    }
    free(depth);
    return true;
}

/* One depth-first walk from the root: every node is entered once, so the
 * work and the stack are bounded by the node count. */
static bool graph_walk(const struct graph *g, struct graph_findings *out)
{
    out->shared = out->cycle = -1;
    out->depth = 0;
    for (uint64_t i = 0; i < g->count && out->shared < 0; i++)
        if (g->parents[i] > 1)
            out->shared = (int64_t)i;
    if (g->count == 0)
        return true;
    if (out->shared < 0 && !g->backward)
        return graph_depths_forward(g, out);
    unsigned char *color = calloc(g->count, 1); /* 0 new, 1 on the path, 2 done */
    int32_t *stack = malloc(g->count * sizeof *stack);
    unsigned char *side = malloc(g->count);
    if (!color || !stack || !side) {
        free(color);
        free(stack);
        free(side);
        return false;
    }
    size_t top = 0;
    stack[top] = 0;
    side[top++] = 0;
    color[0] = 1;
    while (top > 0) {
        int32_t node = stack[top - 1];
        if (side[top - 1] == 2) {
            color[node] = 2;
            top--;
            continue;
        }
        int32_t child = side[top - 1]++ ? g->right[node] : g->left[node];
        if (child < 0)
            continue;
        if (color[child] == 1 && out->cycle < 0)
            out->cycle = node;
        if (color[child] != 0)
            continue;
        color[child] = 1;
        stack[top] = child;
        side[top++] = 0;
        if (top - 1 > out->depth)
            out->depth = top - 1;
    }
    free(color);
    free(stack);
    free(side);
    return true;
}

/* The records of an array, a chunk at a time: in place where its source
 * holds its bytes (a small member, read and checked whole), else read into
 * one buffer. */
struct record_chunks {
    struct array *array;
    const unsigned char *held; /* the source's bytes, or NULL */
    unsigned char *buffer;
    const unsigned char *records; /* the chunk's */
    uint64_t per_chunk;
    uint64_t first; /* the chunk's first record */
    uint64_t count; /* and how many it holds */
    bool unreadable;
};

/* Whether A's records lie inside its source, as sk_npy_parse checked. */
static bool records_fit(const struct array *a)
{
    uint64_t size = sk_source_size(a->reader), itemsize = a->fields.itemsize;
    return a->header.data_offset <= size && a->records <= (size - a->header.data_offset) / itemsize;
}

static int chunks_start(struct checker *c, struct array *a, struct record_chunks *it)
{
    *it = (struct record_chunks){.array = a};
    uint64_t itemsize = a->fields.itemsize;
    if (itemsize == 0)
        return 0;
    it->held = records_fit(a) ? sk_source_held(a->reader) : NULL;
    if (it->held != NULL) {
        it->per_chunk = a->records; /* one chunk */
        return 0;
    }
    it->per_chunk = RECORD_CHUNK_BYTES / itemsize ? RECORD_CHUNK_BYTES / itemsize : 1;
    it->buffer = malloc(it->per_chunk * itemsize);
    return it->buffer != NULL ? 0 : sk_fail(c->err, "out of memory");
}

/* Reads the next chunk: false after the last (or where it cannot be read,
 * which sets UNREADABLE). */
static bool chunks_next(struct record_chunks *it)
{
    const struct array *a = it->array;
    uint64_t itemsize = a->fields.itemsize;
    it->first += it->count;
    if (itemsize == 0 || it->first >= a->records)
        return false;
    it->count = a->records - it->first < it->per_chunk ? a->records - it->first : it->per_chunk;
    uint64_t offset = a->header.data_offset + it->first * itemsize;
    if (it->held != NULL) {
        it->records = it->held + offset;
        return true;
    }
    struct sk_error local = {0};
    if (!read_exactly(a->reader, it->buffer, it->count * itemsize, offset, &local)) {
        it->unreadable = true;
        return false;
    }
    it->records = it->buffer;
    return true;
}

static void chunks_end(struct record_chunks *it)
{
    free(it->buffer);
}

/* Every record of A through VISIT, in order; *READABLE false where they
 * could not all be read. Inline, so that each caller's VISIT is a direct
 * call in its loop (a million records in a forest), not one through a
 * pointer. */
static inline __attribute__((always_inline)) int
each_record(struct checker *c, struct array *a,
            int (*visit)(void *context, const unsigned char *record, uint64_t index), void *context,
            bool *readable)
{
    struct record_chunks chunks;
    if (chunks_start(c, a, &chunks) != 0)
        return -1;
    int rc = 0;
    while (rc == 0 && chunks_next(&chunks))
        for (uint64_t i = 0; i < chunks.count && rc == 0; i++)
            rc = visit(context, chunks.records + i * a->fields.itemsize, chunks.first + i);
    chunks_end(&chunks);
    *readable = !chunks.unreadable;
    return rc;
}

/* ---- sklearn.tree._tree.Tree ---- */

/* What a Tree's checks take from the schema, as members and values (no
 * node), so that the tree can be judged while the schema is still read. */
struct tree_inputs {
    bool has_nodes, has_classes, has_values; /* each an array of its own */
    uint64_t nodes, classes, values;         /* their members */
    bool n_features_known, n_outputs_known;
    int64_t n_features, n_outputs; /* the first and third __reduce__ arguments */
};

/* What the inputs' arrays hold, judged: the problems in the order the
 * records give them (on no object), and what the rules on the tree's
 * other attributes need. */
struct tree_judgment {
    struct tree_inputs in;
    bool opened; /* nodes is a numpy array: else tree.nodes_dtype_mismatch is all */
    uint64_t records;
    bool walked; /* its graph was walked: DEPTH holds */
    uint64_t depth;
    bool values_fit; /* values has the shape the records and classes ask */
    struct sk_content_report problems;
    int rc; /* -1: ERR says why */
    struct sk_error err;
};

static const struct tree_judgment *prefetched(const struct sk_content_prefetch *prefetch,
                                              const struct tree_inputs *wanted);

/* One tree's records being judged: their problems are on no object (the
 * judgment's own report), and go on the tree when it is replayed. */
struct tree_check {
    struct checker *c;
    const struct sk_npy_field *fields[8];
    struct graph graph;
    int64_t n_features;
    bool n_features_known;
};

static int tree_record(void *context, const unsigned char *record, uint64_t i)
{
    struct tree_check *t = context;
    int64_t child[2] = {field_int(t->fields[TREE_LEFT], record),
                        field_int(t->fields[TREE_RIGHT], record)};
    int64_t feature = field_int(t->fields[TREE_FEATURE], record);
    uint64_t n = t->graph.count;
    t->graph.left[i] = t->graph.right[i] = -1;
    if (child[0] == -1 && child[1] == -1)
        return 0;
    if ((child[0] == -1 || child[1] == -1) && problem_at(t->c, NULL, "tree.half_leaf", i) != 0)
        return -1;
    for (int side = 0; side < 2; side++) {
        if (child[side] == -1)
            continue;
        if (child[side] < 0 || (uint64_t)child[side] >= n) {
            if (problem_at(t->c, NULL, "tree.child_out_of_range", i) != 0)
                return -1;
            continue;
        }
        if ((uint64_t)child[side] <= i &&
            problem_at(t->c, NULL, "tree.child_not_after_parent", i) != 0)
            return -1;
        graph_edge(&t->graph, i, side, child[side]);
    }
    /* scikit-learn takes a node for a leaf by its left child alone. */
    if (child[0] != -1 && (!t->n_features_known || feature < 0 || feature >= t->n_features) &&
        problem_at(t->c, NULL, "tree.feature_out_of_range", i) != 0)
        return -1;
    return 0;
}

/* values must be float64 of shape (len(nodes), n_outputs, max(n_classes)).
 * Only its header is read: its bytes are not checked, as for every array
 * the checks do not follow (`skopsfs verify` checks them all). */
static bool judge_values(struct sk_store *store, const struct tree_inputs *in, uint64_t records)
{
    int64_t *n_classes = NULL, max_classes = 0;
    uint64_t classes_count = 0;
    bool ok = in->n_outputs_known && in->has_classes &&
              read_small_ints(store, in->classes, &n_classes, &classes_count) &&
              (uint64_t)in->n_outputs == classes_count;
    for (uint64_t i = 0; ok && i < classes_count; i++)
        if (n_classes[i] > max_classes)
            max_classes = n_classes[i];
    free(n_classes);
    struct array values;
    if (!in->has_values || !array_open_member(store, in->values, false, &values))
        return false;
    const struct sk_npy_field *f = &values.fields.fields[0];
    ok = ok && values.header.ndim == 3 && values.header.shape[0] == records &&
         values.header.shape[1] == (uint64_t)in->n_outputs &&
         values.header.shape[2] == (uint64_t)max_classes && values.fields.count == 1 &&
         f->kind == 'f' && f->size == 8 && !values.header.fortran_order;
    array_close(&values);
    return ok;
}

/* ---- the common tree, in one pass ---- */

/* A node's depth in forward_tree, or one of these. */
#define NO_PARENT UINT32_MAX       /* no edge into it met yet */
#define UNREACHED (UINT32_MAX - 1) /* its parent is not reached from the root */

static bool native_int64(const struct sk_npy_field *f)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return f->kind == 'i' && f->size == 8 && !f->big_endian;
#else
    (void)f;
    return false;
#endif
}

static int64_t load_int64(const unsigned char *p)
{
    int64_t value;
    memcpy(&value, p, sizeof value);
    return value;
}

/* One chunk of forward_tree's records; false at the first that is not a
 * leaf or an internal node with two children of one parent each after it
 * and a feature in range. */
static bool forward_chunk(const struct tree_check *t, const struct record_chunks *chunk, uint64_t n,
                          uint32_t *depth, uint64_t *max_depth)
{
    size_t left = t->fields[TREE_LEFT]->offset, right = t->fields[TREE_RIGHT]->offset,
           feature = t->fields[TREE_FEATURE]->offset, itemsize = chunk->array->fields.itemsize;
    const unsigned char *records = chunk->records;
    uint64_t first = chunk->first, count = chunk->count;
    for (uint64_t k = 0; k < count; k++, records += itemsize) {
        uint64_t i = first + k;
        uint32_t d = depth[i];
        if (d < UNREACHED && d > *max_depth)
            *max_depth = d;
        uint64_t l = (uint64_t)load_int64(records + left),
                 r = (uint64_t)load_int64(records + right);
        if (l == UINT64_MAX && r == UINT64_MAX)
            continue; /* a leaf: both -1 */
        /* -1 beside a child, or any child out of range, is past n */
        if (l <= i || l >= n || r <= i || r >= n || l == r || depth[l] != NO_PARENT ||
            depth[r] != NO_PARENT)
            return false;
        int64_t f = load_int64(records + feature);
        if (!t->n_features_known || f < 0 || f >= t->n_features)
            return false;
        depth[l] = depth[r] = d < UNREACHED ? d + 1 : UNREACHED;
    }
    return true;
}

/* The trees scikit-learn writes (intp fields native, every child after its
 * parent, no child shared, every feature in range), judged in one pass
 * over the records with no graph kept: *CLEAN where NODES is such a tree,
 * with J's depth as graph_walk finds it; tree_record and graph_walk would
 * find no problem there. Anything else leaves *CLEAN false, for the
 * general way to judge from the start. A forest has a million records. */
static int forward_tree(struct checker *c, const struct tree_check *t, struct array *nodes,
                        struct tree_judgment *j, bool *clean)
{
    *clean = false;
    uint64_t n = nodes->records;
    if (n == 0 || !native_int64(t->fields[TREE_LEFT]) || !native_int64(t->fields[TREE_RIGHT]) ||
        !native_int64(t->fields[TREE_FEATURE]))
        return 0;
    uint32_t *depth = malloc(n * sizeof *depth);
    if (depth == NULL)
        return sk_fail(c->err, "out of memory");
    depth[0] = 0;
    for (uint64_t i = 1; i < n; i++)
        depth[i] = NO_PARENT;
    struct record_chunks chunks;
    if (chunks_start(c, nodes, &chunks) != 0) {
        free(depth);
        return -1;
    }
    uint64_t max_depth = 0;
    bool forward = true;
    while (forward && chunks_next(&chunks))
        forward = forward_chunk(t, &chunks, n, depth, &max_depth);
    *clean = forward && !chunks.unreadable;
    chunks_end(&chunks);
    free(depth);
    if (*clean) {
        j->walked = true;
        j->depth = max_depth;
    }
    return 0;
}

/* Reads the records into T's graph and walks it; J gets the depth. */
static int judge_graph(struct checker *c, struct tree_check *t, struct array *nodes,
                       struct tree_judgment *j)
{
    bool readable;
    if (each_record(c, nodes, tree_record, t, &readable) != 0)
        return -1;
    if (!readable)
        return problem(c, NULL, "content.array_unreadable");
    struct graph_findings found;
    if (!graph_walk(&t->graph, &found))
        return sk_fail(c->err, "out of memory");
    if (found.shared >= 0 && problem_at(c, NULL, "tree.shared_child", (uint64_t)found.shared))
        return -1;
    if (found.cycle >= 0 && problem_at(c, NULL, "tree.cycle", (uint64_t)found.cycle))
        return -1;
    j->walked = true;
    j->depth = found.depth;
    return 0;
}

/* NODE's member, where NODE is an array of its own. */
static void member_of(const struct sk_node *node, bool *has, uint64_t *member)
{
    *has = is_array_member(node);
    *member = *has ? node->member : 0;
}

static void tree_inputs_of(const struct sk_node *tree, struct tree_inputs *in)
{
    memset(in, 0, sizeof *in);
    const struct sk_node *args = slot_named(tree, ".args");
    in->n_features_known = json_int(slot_named(args, "0"), &in->n_features);
    in->n_outputs_known = json_int(slot_named(args, "2"), &in->n_outputs);
    member_of(attribute(tree, "nodes"), &in->has_nodes, &in->nodes);
    member_of(slot_named(args, "1"), &in->has_classes, &in->classes);
    member_of(attribute(tree, "values"), &in->has_values, &in->values);
}

static bool same_inputs(const struct tree_inputs *a, const struct tree_inputs *b)
{
    return a->has_nodes == b->has_nodes && a->nodes == b->nodes &&
           a->has_classes == b->has_classes && a->classes == b->classes &&
           a->has_values == b->has_values && a->values == b->values &&
           a->n_features_known == b->n_features_known && a->n_features == b->n_features &&
           a->n_outputs_known == b->n_outputs_known && a->n_outputs == b->n_outputs;
}

/* Fills J from its inputs' members alone: no node is read. */
static void judge_tree(struct sk_store *store, struct tree_judgment *j)
{
    struct checker c = {.store = store, .report = &j->problems, .err = &j->err, .path = ""};
    struct tree_check t = {
        .c = &c, .n_features = j->in.n_features, .n_features_known = j->in.n_features_known};
    struct array nodes;
    bool clean;
    j->opened = j->in.has_nodes && array_open_member(store, j->in.nodes, true, &nodes);
    if (!j->opened)
        return;
    j->records = nodes.header.ndim == 1 ? nodes.header.shape[0] : 0;
    if (nodes.header.ndim != 1 || nodes.header.fortran_order)
        j->rc = problem(&c, NULL, "tree.nodes_shape_mismatch");
    else if (!match_layout(&nodes.fields, &tree_layout, t.fields))
        j->rc = problem(&c, NULL, "tree.nodes_dtype_mismatch");
    else if (j->records > SK_MAX_CHECKED_TREE_NODES)
        j->rc = problem(&c, NULL, "tree.too_large");
    else if (forward_tree(&c, &t, &nodes, j, &clean) != 0)
        j->rc = -1;
    else if (clean)
        j->rc = 0;
    else if (!graph_init(&t.graph, j->records))
        j->rc = sk_fail(c.err, "out of memory");
    else
        j->rc = judge_graph(&c, &t, &nodes, j);
    array_close(&nodes);
    graph_free(&t.graph);
    if (j->rc == 0)
        j->values_fit = judge_values(store, &j->in, j->records);
}

static void judgment_free(struct tree_judgment *j)
{
    if (j == NULL)
        return;
    report_clear(&j->problems);
    free(j);
}

/* J's problems, on TREE. */
static int replay(struct checker *c, const struct sk_node *tree, const struct tree_judgment *j)
{
    if (j->rc != 0)
        return sk_fail_code(c->err, j->err.code, "%s", j->err.message);
    for (size_t i = 0; i < j->problems.count; i++) {
        const struct sk_content_problem *p = &j->problems.problems[i];
        if (add_problem(c, tree, p->code, p->has_record, p->record, NULL, 0) != 0)
            return -1;
    }
    return 0;
}

/* OWNER: the estimator whose attribute the tree is, or NULL. */
static int check_tree(struct checker *c, const struct sk_node *tree, const struct sk_node *owner)
{
    struct tree_judgment local = {0};
    tree_inputs_of(tree, &local.in);
    int64_t n_features_in;
    if (owner != NULL && json_int(attribute(owner, "n_features_in_"), &n_features_in) &&
        (!local.in.n_features_known || n_features_in != local.in.n_features) &&
        problem(c, tree, "estimator.n_features_mismatch") != 0)
        return -1;
    const struct tree_judgment *j = prefetched(c->prefetch, &local.in);
    if (j == NULL) {
        judge_tree(c->store, &local);
        j = &local;
    }
    int rc = j->opened ? replay(c, tree, j) : problem(c, tree, "tree.nodes_dtype_mismatch");
    int64_t max_depth, node_count;
    if (rc == 0 && j->walked &&
        (!json_int(attribute(tree, "max_depth"), &max_depth) || max_depth < 0 ||
         (uint64_t)max_depth < j->depth))
        rc = problem(c, tree, "tree.max_depth_too_small");
    if (rc == 0 && j->opened &&
        (!json_int(attribute(tree, "node_count"), &node_count) || node_count < 0 ||
         (uint64_t)node_count != j->records))
        rc = problem(c, tree, "tree.node_count_mismatch");
    if (rc == 0 && j->opened && !j->values_fit)
        rc = problem(c, tree, "tree.values_shape_mismatch");
    report_clear(&local.problems);
    return rc;
}

/* ---- HistGradientBoosting's TreePredictor ---- */

struct predictor_check {
    struct checker *c;
    const struct sk_node *predictor;
    const struct sk_npy_field *fields[13];
    struct graph graph;
    int64_t n_features; /* -1: unknown */
    uint64_t bitset_rows;
    const int64_t *categorical; /* the estimator's is_categorical_, or NULL */
    uint64_t categorical_count;
};

static int predictor_split(struct predictor_check *p, const unsigned char *record, uint64_t i)
{
    int64_t feature = field_int(p->fields[HGB_FEATURE], record);
    if ((p->n_features >= 0 && feature >= p->n_features) &&
        problem_at(p->c, p->predictor, "hgb.feature_out_of_range", i) != 0)
        return -1;
    if (field_int(p->fields[HGB_IS_CATEGORICAL], record) == 0)
        return 0;
    if ((uint64_t)field_int(p->fields[HGB_BITSET], record) >= p->bitset_rows &&
        problem_at(p->c, p->predictor, "hgb.bitset_out_of_range", i) != 0)
        return -1;
    bool categorical = p->categorical != NULL && feature >= 0 &&
                       (uint64_t)feature < p->categorical_count && p->categorical[feature] != 0;
    if (!categorical && problem_at(p->c, p->predictor, "hgb.categorical_mismatch", i) != 0)
        return -1;
    return 0;
}

static int predictor_record(void *context, const unsigned char *record, uint64_t i)
{
    struct predictor_check *p = context;
    int64_t child[2] = {field_int(p->fields[HGB_LEFT], record),
                        field_int(p->fields[HGB_RIGHT], record)};
    int64_t is_leaf = field_int(p->fields[HGB_IS_LEAF], record);
    p->graph.left[i] = p->graph.right[i] = -1;
    /* The grower leaves a leaf's children 0; an internal node's follow it. */
    bool childless = child[0] == 0 && child[1] == 0;
    if ((is_leaf > 1 || (is_leaf == 1) != childless) &&
        problem_at(p->c, p->predictor, "hgb.leaf_flag_inconsistent", i) != 0)
        return -1;
    if (is_leaf != 0)
        return 0;
    for (int side = 0; side < 2; side++) {
        if ((uint64_t)child[side] >= p->graph.count) {
            if (problem_at(p->c, p->predictor, "hgb.child_out_of_range", i) != 0)
                return -1;
            continue;
        }
        if ((uint64_t)child[side] <= i &&
            problem_at(p->c, p->predictor, "hgb.child_not_after_parent", i) != 0)
            return -1;
        graph_edge(&p->graph, i, side, child[side]);
    }
    return predictor_split(p, record, i);
}

/* Rows of the bitsets a categorical split indexes: the fewer of the two. */
static uint64_t bitset_rows(struct checker *c, const struct sk_node *predictor)
{
    static const char *const names[] = {"raw_left_cat_bitsets", "binned_left_cat_bitsets"};
    uint64_t rows = UINT64_MAX;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        struct array a;
        if (!array_open(c, attribute(predictor, names[i]), &a))
            return 0;
        uint64_t here = a.header.ndim == 2 ? a.header.shape[0] : 0;
        rows = here < rows ? here : rows;
        array_close(&a);
    }
    return rows;
}

static int check_predictor_graph(struct checker *c, struct predictor_check *p, struct array *nodes)
{
    bool readable;
    if (each_record(c, nodes, predictor_record, p, &readable) != 0)
        return -1;
    if (!readable)
        return problem(c, p->predictor, "content.array_unreadable");
    struct graph_findings found;
    if (!graph_walk(&p->graph, &found))
        return sk_fail(c->err, "out of memory");
    if (found.shared >= 0 &&
        problem_at(c, p->predictor, "hgb.shared_child", (uint64_t)found.shared) != 0)
        return -1;
    if (found.cycle >= 0 && problem_at(c, p->predictor, "hgb.cycle", (uint64_t)found.cycle) != 0)
        return -1;
    return 0;
}

/* OWNER: the nearest enclosing estimator with n_features_in_, or NULL. */
static int check_predictor(struct checker *c, const struct sk_node *predictor,
                           const struct sk_node *owner)
{
    struct predictor_check p = {.c = c, .predictor = predictor, .n_features = -1};
    int64_t *categorical = NULL;
    if (owner != NULL) {
        json_int(attribute(owner, "n_features_in_"), &p.n_features);
        const struct sk_node *is_categorical = attribute(owner, "is_categorical_");
        if (is_array_member(is_categorical))
            read_small_ints(c->store, is_categorical->member, &categorical, &p.categorical_count);
        p.categorical = categorical;
    }
    p.bitset_rows = bitset_rows(c, predictor);
    struct array nodes;
    if (!array_open(c, attribute(predictor, "nodes"), &nodes)) {
        free(categorical);
        return problem(c, predictor, "hgb.nodes_dtype_mismatch");
    }
    int rc;
    if (nodes.header.ndim != 1 || nodes.header.fortran_order)
        rc = problem(c, predictor, "hgb.nodes_shape_mismatch");
    else if (!match_layout(&nodes.fields, &predictor_layout, p.fields))
        rc = problem(c, predictor, "hgb.nodes_dtype_mismatch");
    else if (nodes.header.shape[0] > SK_MAX_CHECKED_TREE_NODES)
        rc = problem(c, predictor, "hgb.too_large");
    else if (!graph_init(&p.graph, nodes.header.shape[0]))
        rc = sk_fail(c->err, "out of memory");
    else
        rc = check_predictor_graph(c, &p, &nodes);
    array_close(&nodes);
    graph_free(&p.graph);
    free(categorical);
    return rc;
}

/* ---- scipy sparse matrices ---- */

static int check_sparse(struct checker *c, const struct sk_node *matrix,
                        const struct sk_node *owner)
{
    (void)owner;
    struct sk_sparse_findings found;
    if (!matrix->has_member)
        return 0;
    if (sk_sparse_check(c->store, matrix->member, &found, c->err) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < found.count && rc == 0; i++)
        rc = problem(c, matrix, found.codes[i]);
    return rc;
}

/* ---- the walk: it records a job per checked object; a pool runs them ---- */

typedef int (*check_fn)(struct checker *c, const struct sk_node *node, const struct sk_node *owner);

struct rule_family {
    const char *type_name; /* NULL: any type of the loader */
    enum sk_loader loader;
    /* The owner handed to the check: the nearest enclosing object that has
     * this attribute, or (NULL) the nearest enclosing object. */
    const char *owner_key;
    const char *path_suffix; /* where the problems are shown, after a non-root path */
    check_fn check;
};

static const struct rule_family families[] = {
    {"sklearn.tree._tree.Tree", SK_LOADER_TREE, NULL, "", check_tree},
    {"sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor", SK_LOADER_OBJECT,
     "n_features_in_", "", check_predictor},
    /* on the matrix's file, "KEY.npz" in a mount */
    {NULL, SK_LOADER_SPARSE_MATRIX, NULL, ".npz", check_sparse},
};

/* One object to check, with what the walk knew where it met it. */
struct check_job {
    const struct sk_node *node;
    const struct sk_node *owner;
    check_fn check;
    char *path;
    size_t path_length;
    size_t walk_problems; /* the walk's own problems before it: its place in the report */
    struct sk_content_report problems;
};

struct walker {
    struct checker own;  /* the walk's own problems: schema.id_alias */
    unsigned char *seen; /* by node index */
    char *path;          /* built only where a job or problem needs it (path_at) */
    size_t path_length;
    size_t path_capacity;
    const struct sk_node *ancestors[WALK_MAX_DEPTH];
    const struct sk_slot *path_slots[WALK_MAX_DEPTH]; /* [d]: from depth d to d + 1 */
    struct check_job *jobs;
    size_t job_count;
    size_t job_capacity;
};

/* The nearest object enclosing the node at DEPTH that has KEY (NULL: any). */
static const struct sk_node *owner_of(const struct walker *w, size_t depth, const char *key)
{
    for (size_t d = depth; d > 0; d--) {
        const struct sk_node *node = w->ancestors[d - 1];
        if (node->loader == SK_LOADER_OBJECT && (key == NULL || attribute(node, key) != NULL))
            return node;
    }
    return NULL;
}

static bool family_matches(const struct rule_family *family, const struct sk_node *node)
{
    return node->loader == family->loader &&
           (family->type_name == NULL || strcmp(node->type_name, family->type_name) == 0);
}

static int path_at(struct walker *w, size_t depth);

static int add_job(struct walker *w, const struct sk_node *node, const struct rule_family *family,
                   size_t depth)
{
    if (sk_grow(&w->jobs, &w->job_capacity, w->job_count + 1, sizeof *w->jobs, 16) != 0 ||
        path_at(w, depth) != 0)
        return sk_fail(w->own.err, "out of memory");
    const char *suffix = w->path_length > 0 ? family->path_suffix : "";
    size_t suffix_length = strlen(suffix);
    char *path = malloc(w->path_length + suffix_length + 1);
    if (path == NULL)
        return sk_fail(w->own.err, "out of memory");
    memcpy(path, w->path, w->path_length);
    memcpy(path + w->path_length, suffix, suffix_length + 1);
    w->jobs[w->job_count++] = (struct check_job){
        .node = node,
        .owner = owner_of(w, depth, family->owner_key),
        .check = family->check,
        .path = path,
        .path_length = w->path_length + suffix_length,
        .walk_problems = w->own.report->count,
    };
    return 0;
}

static bool needs_escape(const char *key, size_t length)
{
    return length == 0 || length > SK_MAX_NAME_BYTES || key[0] == '.' || memchr(key, '/', length) ||
           memchr(key, '%', length) || memchr(key, '\0', length);
}

/* Appends "/NAME", NAME as a mount shows the slot's key. */
static int path_push(struct walker *w, const struct sk_slot *slot)
{
    if (slot->kind == SK_SLOT_FLATTEN)
        return 0;
    char *escaped = NULL;
    const char *name = slot->key;
    size_t length = slot->key_length;
    if (!slot->fixed_name && needs_escape(slot->key, slot->key_length)) {
        escaped = sk_layout_name(slot->key, slot->key_length, "", 0);
        if (escaped == NULL)
            return -1;
        name = escaped;
        length = strlen(escaped);
    }
    if (sk_grow(&w->path, &w->path_capacity, w->path_length + length + 2, 1, 64) != 0) {
        free(escaped);
        return -1;
    }
    if (w->path_length > 0)
        w->path[w->path_length++] = '/';
    memcpy(w->path + w->path_length, name, length);
    w->path_length += length;
    free(escaped);
    return 0;
}

/* The path of the node the walk stands on at DEPTH, into W->path: built
 * for the few nodes that need it, not kept up for every node. -1 when
 * out of memory. */
static int path_at(struct walker *w, size_t depth)
{
    w->path_length = 0;
    for (size_t d = 0; d < depth; d++)
        if (path_push(w, w->path_slots[d]) != 0)
            return -1;
    return 0;
}

/* A state whose __id__ was seen before is loaded as the earlier node: a
 * literal that differs from it is content skops silently ignores. */
static int check_alias(struct walker *w, const struct sk_node *shown, const struct sk_slot *slot,
                       size_t depth)
{
    if (!slot->alias_differs)
        return 0;
    if (path_at(w, depth) != 0)
        return sk_fail(w->own.err, "out of memory");
    w->own.path = w->path;
    w->own.path_length = w->path_length;
    return add_problem(&w->own, shown, "schema.id_alias", false, 0, slot->key, slot->key_length);
}

/* SHOWN is the node whose entry the path names: NODE, or the object a
 * dict is flattened into. */
static int visit(struct walker *w, const struct sk_node *node, const struct sk_node *shown,
                 size_t depth)
{
    if (w->seen[node->index])
        return 0;
    w->seen[node->index] = 1;
    w->ancestors[depth] = node;
    /* The walk waits on memory, node after node (a forest's 88,000 took
     * 2.5 ms): its children are asked for now, and each one's slots while
     * the one before is walked (2.5 -> 2.0 ms). */
    for (size_t i = 0; i < node->slot_count; i++)
        if (node->slots[i].node != NULL)
            __builtin_prefetch(node->slots[i].node);
    for (size_t i = 0; i < sizeof families / sizeof *families; i++)
        if (family_matches(&families[i], node) && add_job(w, node, &families[i], depth) != 0)
            return -1;
    for (size_t i = 0; i < node->slot_count; i++) {
        const struct sk_slot *slot = &node->slots[i];
        if (slot->node == NULL || depth + 1 >= WALK_MAX_DEPTH)
            continue;
        if (check_alias(w, shown, slot, depth) != 0)
            return -1;
        if (i + 1 < node->slot_count && node->slots[i + 1].node != NULL)
            __builtin_prefetch(node->slots[i + 1].node->slots);
        const struct sk_node *child_shown = slot->kind == SK_SLOT_FLATTEN ? shown : slot->node;
        w->path_slots[depth] = slot;
        if (visit(w, slot->node, child_shown, depth + 1) != 0)
            return -1;
    }
    return 0;
}

/* ---- trees judged while the schema is read ---- */

struct sk_content_prefetch {
    struct sk_store *store;
    uint64_t member_count;
    struct tree_judgment **by_member; /* the first judgment asked of each nodes member */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool running; /* THREAD is to be joined */
    /* Under LOCK: the judgments asked for, in order; those from NEXT on
     * are not taken yet. */
    struct tree_judgment **queue;
    size_t queued;
    size_t queue_capacity;
    size_t next;
    bool closed;    /* no more will be asked for */
    bool cancelled; /* and those not taken are not wanted */
};

/* The next judgment to make, or NULL when there is none (WAIT: none will
 * come). */
static struct tree_judgment *take(struct sk_content_prefetch *p, bool wait)
{
    pthread_mutex_lock(&p->lock);
    while (wait && p->next == p->queued && !p->closed)
        pthread_cond_wait(&p->wake, &p->lock);
    struct tree_judgment *j = p->next < p->queued && !p->cancelled ? p->queue[p->next++] : NULL;
    pthread_mutex_unlock(&p->lock);
    return j;
}

static void *prefetch_work(void *arg)
{
    struct sk_content_prefetch *p = arg;
    struct tree_judgment *j;
    while ((j = take(p, true)) != NULL)
        judge_tree(p->store, j);
    return NULL;
}

/* The watch: a Tree the reader completed has its nodes array judged, with
 * what check_tree will look the judgment up by. A judgment not made here
 * (out of memory, a member asked for before) is made by the check. */
static void prefetch_node(void *context, const struct sk_node *node)
{
    struct sk_content_prefetch *p = context;
    if (!family_matches(&families[0], node))
        return;
    struct tree_inputs in;
    tree_inputs_of(node, &in);
    if (!in.has_nodes || in.nodes >= p->member_count || p->by_member[in.nodes] != NULL)
        return;
    struct tree_judgment *j = calloc(1, sizeof *j);
    if (j == NULL)
        return;
    j->in = in;
    pthread_mutex_lock(&p->lock);
    bool queued = sk_grow(&p->queue, &p->queue_capacity, p->queued + 1, sizeof *p->queue, 64) == 0;
    if (queued) {
        p->queue[p->queued++] = j;
        p->by_member[in.nodes] = j;
        /* a wake-up for a batch, not for each tree: each costs a system call */
        if (p->queued - p->next >= PREFETCH_BATCH)
            pthread_cond_signal(&p->wake);
    }
    pthread_mutex_unlock(&p->lock);
    if (!queued)
        free(j);
}

struct sk_content_prefetch *sk_content_prefetch_start(struct sk_store *store)
{
    if (check_threads(SIZE_MAX) < 2)
        return NULL; /* one thread: the checks run after the read, in order */
    struct sk_content_prefetch *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->store = store;
    p->member_count = sk_store_member_count(store);
    p->by_member = calloc(p->member_count ? p->member_count : 1, sizeof *p->by_member);
    if (p->by_member == NULL || pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p->by_member);
        free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->wake, NULL) != 0) {
        pthread_mutex_destroy(&p->lock);
        free(p->by_member);
        free(p);
        return NULL;
    }
    p->running = pthread_create(&p->thread, NULL, prefetch_work, p) == 0;
    if (!p->running) {
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        free(p->by_member);
        free(p);
        return NULL;
    }
    return p;
}

struct sk_node_watch sk_content_prefetch_watch(struct sk_content_prefetch *prefetch)
{
    return (struct sk_node_watch){.node_done = prefetch_node, .context = prefetch};
}

/* No more is asked for; CANCEL: what is not taken yet is dropped. */
static void prefetch_close(struct sk_content_prefetch *p, bool cancel)
{
    pthread_mutex_lock(&p->lock);
    p->closed = true;
    p->cancelled = p->cancelled || cancel;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

/* Every judgment asked for, made: this thread takes its share too. */
static void prefetch_finish(struct sk_content_prefetch *p)
{
    prefetch_close(p, false);
    struct tree_judgment *j;
    while ((j = take(p, false)) != NULL)
        judge_tree(p->store, j);
    pthread_join(p->thread, NULL);
    p->running = false;
}

void sk_content_prefetch_free(struct sk_content_prefetch *p)
{
    if (p == NULL)
        return;
    if (p->running) {
        prefetch_close(p, true);
        pthread_join(p->thread, NULL);
    }
    for (size_t i = 0; i < p->queued; i++)
        judgment_free(p->queue[i]);
    free(p->queue);
    free(p->by_member);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* The judgment made before of inputs the same as WANTED, or NULL. */
static const struct tree_judgment *prefetched(const struct sk_content_prefetch *prefetch,
                                              const struct tree_inputs *wanted)
{
    if (prefetch == NULL || !wanted->has_nodes || wanted->nodes >= prefetch->member_count)
        return NULL;
    const struct tree_judgment *j = prefetch->by_member[wanted->nodes];
    return j != NULL && same_inputs(&j->in, wanted) ? j : NULL;
}

/* ---- running the jobs, and the report in walk order ---- */

static int run_job(void *context, size_t index, struct sk_error *err)
{
    struct walker *w = context;
    struct check_job *job = &w->jobs[index];
    struct checker c = {.store = w->own.store,
                        .report = &job->problems,
                        .err = err,
                        .path = job->path,
                        .path_length = job->path_length,
                        .prefetch = w->own.prefetch};
    return job->check(&c, job->node, job->owner);
}

/* One per online CPU, at most SK_MAX_CHECK_THREADS and one per job;
 * SKOPSFS_CHECK_THREADS=N (1 to the limit) chooses N instead. */
static size_t check_threads(size_t jobs)
{
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    const char *chosen = getenv("SKOPSFS_CHECK_THREADS");
    if (chosen != NULL) {
        char *end;
        long n = strtol(chosen, &end, 10);
        if (end != chosen && *end == '\0' && n >= 1 && n <= (long)SK_MAX_CHECK_THREADS)
            threads = n;
    }
    if (threads < 1)
        threads = 1;
    if (threads > (long)SK_MAX_CHECK_THREADS)
        threads = SK_MAX_CHECK_THREADS;
    return (size_t)threads < jobs ? (size_t)threads : jobs;
}

static void report_clear(struct sk_content_report *report)
{
    for (size_t i = 0; i < report->count; i++) {
        free(report->problems[i].path);
        free(report->problems[i].key);
    }
    free(report->problems);
    memset(report, 0, sizeof *report);
}

/* Moves COUNT problems of FROM, from its FIRST on, to the end of INTO. A
 * report with no problems may have no array: no pointer is formed then. */
static void take_problems(struct sk_content_report *into, const struct sk_content_report *from,
                          size_t first, size_t count)
{
    if (count > 0)
        memcpy(into->problems + into->count, from->problems + first,
               count * sizeof *into->problems);
    into->count += count;
}

/* Moves every problem into one report: the walk's in their order, each
 * job's where the walk met its object. NULL when out of memory. */
static struct sk_content_report *merge(struct walker *w)
{
    struct sk_content_report *walk = w->own.report;
    size_t total = walk->count;
    for (size_t i = 0; i < w->job_count; i++)
        total += w->jobs[i].problems.count;
    struct sk_content_report *out = calloc(1, sizeof *out);
    if (out == NULL ||
        (out->problems = malloc((total ? total : 1) * sizeof *out->problems)) == NULL) {
        free(out);
        return NULL;
    }
    out->capacity = total;
    size_t from_walk = 0;
    for (size_t i = 0; i < w->job_count; i++) {
        struct check_job *job = &w->jobs[i];
        take_problems(out, walk, from_walk, job->walk_problems - from_walk);
        from_walk = job->walk_problems;
        take_problems(out, &job->problems, 0, job->problems.count);
        job->problems.count = 0;
    }
    take_problems(out, walk, from_walk, walk->count - from_walk);
    walk->count = 0;
    return out;
}

static void free_jobs(struct walker *w)
{
    for (size_t i = 0; i < w->job_count; i++) {
        free(w->jobs[i].path);
        report_clear(&w->jobs[i].problems);
    }
    free(w->jobs);
}

int sk_content_check(struct sk_store *store, const struct sk_schema *schema,
                     struct sk_content_report **out, struct sk_error *err)
{
    return sk_content_check_prefetched(store, schema, NULL, out, err);
}

int sk_content_check_prefetched(struct sk_store *store, const struct sk_schema *schema,
                                struct sk_content_prefetch *prefetch,
                                struct sk_content_report **out, struct sk_error *err)
{
    *out = NULL;
    struct sk_error walk_error = {0};
    struct walker w = {.own = {.store = store, .err = &walk_error, .prefetch = prefetch}};
    w.own.report = calloc(1, sizeof *w.own.report);
    w.seen = calloc(schema->node_count ? schema->node_count : 1, 1);
    w.path = malloc(64);
    w.path_capacity = 64;
    int walked = -1;
    if (w.own.report == NULL || w.seen == NULL || w.path == NULL)
        sk_fail(&walk_error, "out of memory");
    else
        walked = schema->root != NULL ? visit(&w, schema->root, schema->root, 0) : 0;
    free(w.seen);
    free(w.path);
    /* the jobs look their trees' judgments up; the walk went on beside the
     * prefetch thread's last ones */
    if (prefetch != NULL && prefetch->running)
        prefetch_finish(prefetch);
    /* Where the walk failed, the jobs it recorded came before its failure:
     * the first of theirs that fails is the one a sequential run met. */
    int rc = sk_parallel_run(w.job_count, check_threads(w.job_count), run_job, &w, err);
    if (rc == 0 && walked != 0)
        rc = sk_fail_code(err, walk_error.code, "%s", walk_error.message);
    if (rc == 0 && (*out = merge(&w)) == NULL)
        rc = sk_fail(err, "out of memory");
    free_jobs(&w);
    sk_content_report_free(w.own.report);
    return rc;
}

void sk_content_report_free(struct sk_content_report *report)
{
    if (report == NULL)
        return;
    report_clear(report);
    free(report);
}

char *sk_content_problem_text(const struct sk_content_problem *p)
{
    char *text = NULL;
    int rc;
    const char *path = p->path[0] ? p->path : ".";
    if (p->has_record)
        rc = asprintf(&text, "%s: %s at node %llu", path, p->code, (unsigned long long)p->record);
    else if (p->key != NULL)
        rc = asprintf(&text, "%s: %s at key %s", path, p->code, p->key);
    else
        rc = asprintf(&text, "%s: %s", path, p->code);
    return rc < 0 ? NULL : text;
}
