#include "layout.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "grow.h"
#include "sk_limits.h"
#include "strmap.h"

static bool is_file_node(const struct sk_node *node)
{
    switch (node->loader) {
    case SK_LOADER_NDARRAY:
        return node->has_member;
    case SK_LOADER_SPARSE_MATRIX:
    case SK_LOADER_BYTES:
    case SK_LOADER_BYTEARRAY:
    case SK_LOADER_JSON:
    case SK_LOADER_FUNCTION:
    case SK_LOADER_TYPE:
    case SK_LOADER_DTYPE:
    case SK_LOADER_SLICE:
        return true;
    default:
        return false;
    }
}

struct build {
    struct sk_layout *layout;
    const struct sk_layout_options *options;
    struct sk_error *err;
    /* By node index: the refused entry at or above the node's first
     * occurrence (NULL where none is), so that a node first read in a
     * refused node's hidden parts is refused where it is first mounted. */
    struct sk_entry **refused_by;
    struct sk_entry **first_entry; /* by node index: first mounted occurrence */
    size_t entry_capacity;         /* of layout->entries */
};

/* Indexes DIRECTORY's children by name, now that it has more than a few. */
static int index_children(struct sk_entry *directory)
{
    directory->child_index = sk_strmap_new();
    if (directory->child_index == NULL)
        return -1;
    for (size_t i = 0; i < directory->child_count; i++) {
        struct sk_entry *child = directory->children[i];
        if (sk_strmap_put(directory->child_index, child->name, child->name_length, child) != 0)
            return -1;
    }
    return 0;
}

/* Lists ENTRY among PARENT's children, and in its name index where it has one. */
static int attach_child(struct build *b, struct sk_entry *parent, struct sk_entry *entry)
{
    size_t capacity = parent->child_capacity;
    if (parent->child_count >= UINT32_MAX - 2) /* links, 2 + subdirectories, fit too */
        return sk_fail(b->err, "a directory of 2^32 entries");
    if (sk_grow(&parent->children, &capacity, (size_t)parent->child_count + 1,
                sizeof *parent->children, 8) != 0 ||
        capacity > UINT32_MAX)
        return sk_fail(b->err, "out of memory");
    parent->child_capacity = (uint32_t)capacity;
    parent->children[parent->child_count++] = entry;
    int rc = 0;
    if (parent->child_index != NULL)
        rc = sk_strmap_put(parent->child_index, entry->name, entry->name_length, entry);
    else if (parent->child_count > SK_FEW_CHILDREN)
        rc = index_children(parent);
    return rc != 0 ? sk_fail(b->err, "out of memory") : 0;
}

/* Room for MORE children of DIRECTORY, in one allocation where it can be
 * known before they come. */
static int reserve_children(struct build *b, struct sk_entry *directory, size_t more)
{
    size_t needed = directory->child_count + more;
    if (needed <= directory->child_capacity)
        return 0;
    if (more > SIZE_MAX / sizeof *directory->children - directory->child_count ||
        needed > UINT32_MAX)
        return sk_fail(b->err, "out of memory");
    struct sk_entry **children = realloc(directory->children, needed * sizeof *children);
    if (children == NULL)
        return sk_fail(b->err, "out of memory");
    directory->children = children;
    directory->child_capacity = (uint32_t)needed;
    return 0;
}

/* How many entries NODE's slots make in its directory (flattened dicts'
 * too), as a hint: counting stops after *BUDGET slots, so that a schema
 * flattening one dict many times costs no more here than its size. */
static size_t slot_entries(const struct sk_node *node, unsigned depth, size_t *budget)
{
    size_t count = 0;
    for (size_t i = 0; i<node->slot_count && * budget> 0; i++, (*budget)--) {
        const struct sk_slot *slot = &node->slots[i];
        if (slot->kind == SK_SLOT_ENTRY || slot->kind == SK_SLOT_FIELD)
            count++;
        else if (slot->kind == SK_SLOT_FLATTEN && slot->node != NULL && depth < SK_MAX_NODE_DEPTH)
            count += slot_entries(slot->node, depth + 1, budget);
    }
    return count;
}

/* Room for NODE's entries in DIRECTORY: its .type and its slots'. */
static int reserve_node_children(struct build *b, struct sk_entry *directory,
                                 const struct sk_node *node)
{
    size_t budget = 2 * node->slot_count + 64;
    return reserve_children(b, directory, 1 + slot_entries(node, 0, &budget));
}

/* NAME: in the layout's arena, or NULL when it could not be made. */
static struct sk_entry *new_entry(struct build *b, struct sk_entry *parent, const char *name,
                                  enum sk_entry_kind kind, enum sk_entry_role role)
{
    struct sk_layout *layout = b->layout;
    if (name == NULL) {
        sk_fail(b->err, "out of memory");
        return NULL;
    }
    unsigned long long limit = b->options->max_entries ? b->options->max_entries : SK_MAX_ENTRIES;
    if (layout->entry_count >= limit) {
        sk_fail_code(b->err, E2BIG,
                     "the archive lays out to more than %llu entries (the max_entries limit, "
                     "SK_MAX_ENTRIES; raise it with -o max_entries=N or --max-entries N)",
                     limit);
        return NULL;
    }
    if (sk_grow(&layout->entries, &b->entry_capacity, layout->entry_count + 1,
                sizeof *layout->entries, 256) != 0) {
        sk_fail(b->err, "out of memory");
        return NULL;
    }
    struct sk_entry *entry = sk_arena_alloc(layout->arena, sizeof *entry);
    if (entry == NULL) {
        sk_fail(b->err, "out of memory");
        return NULL;
    }
    entry->id = layout->entry_count;
    layout->entries[layout->entry_count++] = entry;
    entry->name = (char *)name;
    entry->name_length = strlen(name);
    entry->kind = kind;
    entry->role = role;
    entry->parent = parent;
    entry->reachable = parent == NULL || (parent->reachable && !parent->refused);
    if (parent != NULL && attach_child(b, parent, entry) != 0)
        return NULL;
    return entry;
}

/* A name of the layout's own, kept in its arena (NULL when out of memory). */
static const char *own_name(struct build *b, const char *name)
{
    return sk_arena_copy(b->layout->arena, name, strlen(name), 1);
}

/* TEXT (in the layout's arena, or NULL when it could not be made) as
 * ENTRY's bytes. */
static int set_text(struct build *b, struct sk_entry *entry, char *text, size_t length)
{
    if (text == NULL)
        return sk_fail(b->err, "out of memory");
    entry->text = text;
    entry->size = length;
    return 0;
}

static int set_owned_text(struct build *b, struct sk_entry *entry, const char *text, size_t length)
{
    /* room for a newline the caller may add */
    return set_text(b, entry, sk_arena_copy(b->layout->arena, text, length, 2), length);
}

/* LINE and a newline as ENTRY's bytes (a type's or a dtype's name). */
static int set_line(struct build *b, struct sk_entry *entry, const char *line)
{
    size_t length = strlen(line);
    char *text = sk_arena_copy(b->layout->arena, line, length, 2);
    if (text != NULL)
        text[length] = '\n';
    return set_text(b, entry, text, length + 1);
}

/* TEXT from a memory stream (malloc'd; NULL when it failed) as ENTRY's bytes. */
static int set_stream_text(struct build *b, struct sk_entry *entry, char *text, size_t length)
{
    char *copy = text ? sk_arena_copy(b->layout->arena, text, length, 1) : NULL;
    free(text);
    return set_text(b, entry, copy, length);
}

static int read_npy_header(struct sk_store *store, uint64_t member, struct sk_npy_header **out,
                           char **error_text)
{
    struct sk_error err = {0};
    struct sk_source *reader = NULL;
    *out = NULL;
    *error_text = NULL;
    struct sk_npy_header *header = calloc(1, sizeof *header);
    if (header == NULL || sk_store_open(store, member, false, &reader, &err) != 0 ||
        sk_npy_read_header(reader, header, &err) != 0) {
        free(header);
        sk_source_close(reader);
        *error_text = strdup(err.message[0] ? err.message : "out of memory");
        return -1;
    }
    sk_source_close(reader);
    *out = header;
    return 0;
}

static int dtype_text(struct build *b, struct sk_entry *entry, const struct sk_node *node)
{
    const struct sk_node *array = node->slot_count > 0 ? node->slots[0].node : NULL;
    if (array == NULL || array->loader != SK_LOADER_NDARRAY)
        return sk_fail(b->err, "schema.json: a DTypeNode does not hold an array");
    if (!array->has_member)
        return set_line(b, entry, "|O");
    struct sk_npy_header *header;
    char *why;
    if (read_npy_header(b->layout->store, array->member, &header, &why) != 0) {
        sk_fail(b->err, "schema.json: the array of a DTypeNode: %s", why ? why : "out of memory");
        free(why);
        return -1;
    }
    int rc = set_line(b, entry, header->descr);
    sk_npy_header_free(header);
    free(header);
    return rc;
}

static int file_content(struct build *b, struct sk_entry *entry, const struct sk_node *node)
{
    if (node->has_member) {
        struct sk_member_info info;
        sk_store_member_info(b->layout->store, node->member, &info);
        entry->in_store = true;
        entry->member = node->member;
        entry->size = info.size;
        if (node->loader == SK_LOADER_NDARRAY && b->options->read_npy_headers)
            read_npy_header(b->layout->store, node->member, &entry->npy, &entry->npy_error);
        return 0;
    }
    if (node->text != NULL) /* JsonNode, SliceNode, old FunctionNode: rendered by the reader */
        return set_owned_text(b, entry, node->text, node->text_length);
    switch (node->loader) {
    case SK_LOADER_FUNCTION:
    case SK_LOADER_TYPE:
        return set_line(b, entry, node->type_name);
    case SK_LOADER_DTYPE:
        return dtype_text(b, entry, node);
    default:
        return sk_fail(b->err, "internal: %s is not a file", sk_loader_name(node->loader));
    }
}

static int decide_refusal(struct build *b, struct sk_entry *entry, const struct sk_node *node)
{
    /* What a node needs is among what the whole schema needs: with nothing
     * of that untrusted, nothing is refused, and no node's needs are walked
     * (a forest's 88,000 walks were 3-4 ms of its mount). */
    if (b->layout->untrusted_count == 0) {
        entry->needs = NULL;
        entry->need_count = 0;
        entry->refused = false;
        return 0;
    }
    char **needs;
    size_t count;
    if (sk_node_needs(b->layout->schema, node, &needs, &count, b->err) != 0)
        return -1;
    size_t kept = sk_allowlist_filter(b->options->allowlist, needs, count);
    entry->needs = needs;
    entry->need_count = kept;
    entry->refused = kept > 0;
    return 0;
}

static int add_slots(struct build *b, struct sk_entry *directory, const struct sk_node *node,
                     unsigned depth);

/* The refused entry at or above DIRECTORY, or NULL. */
static struct sk_entry *refused_region(struct sk_entry *directory)
{
    for (struct sk_entry *e = directory; e != NULL; e = e->parent) {
        if (e->refused)
            return e;
        if (e->reachable)
            return NULL; /* no refused entry above a reachable one */
    }
    return NULL;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Refuses ENTRY, a later occurrence of a node first met inside REGION: it
 * needs what REGION and every refused entry above it need, and its own. */
static int refuse_as_region(struct build *b, struct sk_entry *entry, struct sk_entry *region)
{
    size_t count = entry->need_count;
    for (struct sk_entry *r = region; r != NULL && (r->refused || !r->reachable); r = r->parent)
        count += r->refused ? r->need_count : 0;
    char **needs = realloc(entry->needs, (count ? count : 1) * sizeof *needs);
    if (needs == NULL)
        return sk_fail(b->err, "out of memory");
    entry->needs = needs;
    for (struct sk_entry *r = region; r != NULL && (r->refused || !r->reachable); r = r->parent)
        for (size_t i = 0; r->refused && i < r->need_count; i++) {
            needs[entry->need_count] = strdup(r->needs[i]);
            if (needs[entry->need_count] == NULL)
                return sk_fail(b->err, "out of memory");
            entry->need_count++;
        }
    qsort(needs, entry->need_count, sizeof *needs, compare_names);
    size_t unique = 0;
    for (size_t i = 0; i < entry->need_count; i++) {
        if (unique > 0 && strcmp(needs[unique - 1], needs[i]) == 0)
            free(needs[i]);
        else
            needs[unique++] = needs[i];
    }
    entry->need_count = unique;
    entry->refused = true;
    return 0;
}

/* Marks every node first met in a hidden part of a refused entry (REGION)
 * as refused by it: a later occurrence would otherwise be its first
 * mounted one, and be served. */
static int mark_hidden(struct build *b, const struct sk_node *start, struct sk_entry *region)
{
    size_t count = 0, capacity = 16;
    const struct sk_node **stack = malloc(capacity * sizeof *stack);
    if (stack == NULL)
        return sk_fail(b->err, "out of memory");
    stack[count++] = start;
    while (count > 0) {
        const struct sk_node *node = stack[--count];
        if (b->first_entry[node->index] != NULL || b->refused_by[node->index] != NULL)
            continue;
        b->refused_by[node->index] = region;
        for (size_t i = 0; i < node->slot_count; i++) {
            if (node->slots[i].node == NULL)
                continue;
            if (sk_grow(&stack, &capacity, count + 1, sizeof *stack, 16) != 0) {
                free(stack);
                return sk_fail(b->err, "out of memory");
            }
            stack[count++] = node->slots[i].node;
        }
    }
    free(stack);
    return 0;
}

static int add_type_file(struct build *b, struct sk_entry *directory, const struct sk_node *node)
{
    struct sk_entry *type_file =
        new_entry(b, directory, own_name(b, ".type"), SK_ENTRY_FILE, SK_ROLE_TYPEFILE);
    if (type_file == NULL)
        return -1;
    type_file->node = node;
    return set_line(b, type_file, node->type_name);
}

/* Makes NODE's entry under KEY: the node itself where this is its first
 * mounted occurrence, else a link to that one (a JSON value is repeated). */
static int add_node(struct build *b, struct sk_entry *directory, const char *key, size_t key_length,
                    bool fixed, const struct sk_node *node, unsigned depth)
{
    struct sk_entry *first = b->first_entry[node->index];
    bool file = is_file_node(node);
    enum sk_entry_kind kind = first != NULL && node->loader != SK_LOADER_JSON
                                  ? SK_ENTRY_SYMLINK
                                  : (file ? SK_ENTRY_FILE : SK_ENTRY_DIR);
    char *name = sk_unique_name(b->layout->arena, directory, key, key_length, fixed,
                                sk_name_suffix(node), b->err);
    struct sk_entry *entry = new_entry(b, directory, name, kind, SK_ROLE_NODE);
    if (entry == NULL)
        return -1;
    entry->node = node;
    entry->key = key;
    entry->key_length = key_length;
    if (kind == SK_ENTRY_SYMLINK) {
        entry->target = first;
        return 0;
    }
    struct sk_entry *region = b->refused_by[node->index];
    if (first == NULL) {
        b->first_entry[node->index] = entry;
        if (region == NULL)
            b->refused_by[node->index] = refused_region(directory);
    }
    if (decide_refusal(b, entry, node) != 0)
        return -1;
    /* A JSON value is served wherever it occurs (the spec: a plain file with
     * that value); any other node first met in a refused part is refused. */
    if (region != NULL && node->loader != SK_LOADER_JSON && refuse_as_region(b, entry, region) != 0)
        return -1;
    if (file)
        return file_content(b, entry, node);
    if (depth >= SK_MAX_NODE_DEPTH)
        return sk_fail(b->err, "schema.json: entries nest deeper than %u (SK_MAX_NODE_DEPTH)",
                       SK_MAX_NODE_DEPTH);
    if (reserve_node_children(b, entry, node) != 0 || add_type_file(b, entry, node) != 0)
        return -1;
    return add_slots(b, entry, node, depth + 1);
}

static int add_slots(struct build *b, struct sk_entry *directory, const struct sk_node *node,
                     unsigned depth)
{
    for (size_t i = 0; i < node->slot_count; i++) {
        const struct sk_slot *slot = &node->slots[i];
        int rc = 0;
        switch (slot->kind) {
        case SK_SLOT_HIDDEN: {
            struct sk_entry *region = refused_region(directory);
            if (region != NULL)
                rc = mark_hidden(b, slot->node, region);
            break;
        }
        case SK_SLOT_FLATTEN:
            rc = add_slots(b, directory, slot->node, depth);
            break;
        case SK_SLOT_FIELD: {
            char *name = sk_unique_name(b->layout->arena, directory, slot->key, slot->key_length,
                                        false, "", b->err);
            struct sk_entry *field = new_entry(b, directory, name, SK_ENTRY_FILE, SK_ROLE_FIELD);
            if (field == NULL)
                return -1;
            field->key = slot->key;
            field->key_length = slot->key_length;
            field->node = node;
            rc = set_owned_text(b, field, slot->field_text, slot->field_length);
            break;
        }
        case SK_SLOT_ENTRY:
            rc = add_node(b, directory, slot->key, slot->key_length, slot->fixed_name, slot->node,
                          depth);
            break;
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* /.skops/problems: filled in by add_problems, when the problems are known. */
static int add_problems_file(struct build *b, struct sk_entry *meta)
{
    b->layout->problems_file =
        new_entry(b, meta, own_name(b, "problems"), SK_ENTRY_FILE, SK_ROLE_META);
    return b->layout->problems_file != NULL ? 0 : -1;
}

/* Every content problem, one a line as the CLI prints them, in
 * /.skops/problems; each also marks its node's entry (user.skops.problems). */
static int add_problems(struct build *b, const struct sk_content_report *content)
{
    char *list = NULL;
    size_t list_length = 0;
    FILE *out = open_memstream(&list, &list_length);
    if (out == NULL)
        return sk_fail(b->err, "out of memory");
    for (size_t i = 0; content != NULL && i < content->count; i++) {
        char *line = sk_content_problem_text(&content->problems[i]);
        fprintf(out, "%s\n", line ? line : "?");
        free(line);
    }
    fclose(out);
    if (set_stream_text(b, b->layout->problems_file, list, list_length) != 0)
        return -1;
    for (size_t i = 0; content != NULL && i < content->count; i++) {
        const struct sk_content_problem *p = &content->problems[i];
        struct sk_entry *entry = b->first_entry[p->object->index];
        if (entry == NULL)
            entry = b->layout->root;
        char *line = sk_content_problem_text(p);
        const char *reason = line ? strchr(line, ' ') : NULL; /* after "PATH: " */
        size_t length = reason ? strlen(reason + 1) : 0;
        char *grown = reason ? realloc(entry->problems, entry->problems_length + length + 2) : NULL;
        if (grown == NULL) {
            free(line);
            return sk_fail(b->err, "out of memory");
        }
        memcpy(grown + entry->problems_length, reason + 1, length);
        entry->problems = grown;
        entry->problems_length += length;
        entry->problems[entry->problems_length++] = '\n';
        free(line);
    }
    return 0;
}

/* /.skops/schema.json: the store's own member, served as it is. */
static int add_schema_file(struct build *b, struct sk_entry *meta)
{
    struct sk_layout *layout = b->layout;
    struct sk_entry *schema_file =
        new_entry(b, meta, own_name(b, "schema.json"), SK_ENTRY_FILE, SK_ROLE_META);
    if (schema_file == NULL)
        return -1;
    uint64_t index;
    if (sk_store_find(layout->store, "schema.json", &index) != 0)
        return sk_fail(b->err, "the archive has no schema.json");
    struct sk_member_info info;
    sk_store_member_info(layout->store, index, &info);
    schema_file->in_store = true;
    schema_file->member = index;
    schema_file->size = info.size;
    return 0;
}

/* /.skops/untrusted: what is still untrusted, one type a line. */
static int add_untrusted_file(struct build *b, struct sk_entry *meta)
{
    struct sk_layout *layout = b->layout;
    struct sk_entry *untrusted =
        new_entry(b, meta, own_name(b, "untrusted"), SK_ENTRY_FILE, SK_ROLE_META);
    if (untrusted == NULL)
        return -1;
    char *list = NULL;
    size_t list_length = 0;
    FILE *out = open_memstream(&list, &list_length);
    if (out == NULL)
        return sk_fail(b->err, "out of memory");
    for (size_t i = 0; i < layout->untrusted_count; i++)
        fprintf(out, "%s\n", layout->untrusted[i]);
    fclose(out);
    return set_stream_text(b, untrusted, list, list_length);
}

static int add_meta(struct build *b, struct sk_entry *root)
{
    struct sk_layout *layout = b->layout;
    struct sk_entry *meta = new_entry(b, root, own_name(b, ".skops"), SK_ENTRY_DIR, SK_ROLE_META);
    if (meta == NULL)
        return -1;
    struct sk_entry *protocol =
        new_entry(b, meta, own_name(b, "protocol"), SK_ENTRY_FILE, SK_ROLE_META);
    if (protocol == NULL)
        return -1;
    const struct sk_schema *schema = layout->schema;
    if (set_owned_text(b, protocol, schema->protocol_text, schema->protocol_text_length) != 0)
        return -1;
    struct sk_entry *version =
        new_entry(b, meta, own_name(b, "skops_version"), SK_ENTRY_FILE, SK_ROLE_META);
    if (version == NULL ||
        set_owned_text(b, version, schema->skops_version_text, schema->skops_version_text_length))
        return -1;
    if (add_schema_file(b, meta) != 0 || add_untrusted_file(b, meta) != 0)
        return -1;
    return add_problems_file(b, meta);
}

static int compute_untrusted(struct build *b)
{
    struct sk_layout *layout = b->layout;
    char **all;
    size_t count;
    if (sk_schema_untrusted(layout->schema, &all, &count, b->err) != 0)
        return -1;
    size_t kept = sk_allowlist_filter(b->options->allowlist, all, count);
    layout->untrusted = all;
    layout->untrusted_count = kept;
    return 0;
}

static size_t depth_of(const struct sk_entry *entry)
{
    size_t depth = 0;
    for (; entry->parent != NULL; entry = entry->parent)
        depth++;
    return depth;
}

/* The relative link text from directory FROM to entry TO: up to their
 * common ancestor, then down. */
static char *relative_link(const struct sk_entry *from, const struct sk_entry *to)
{
    size_t from_depth = depth_of(from), to_depth = depth_of(to);
    const struct sk_entry *a = from, *c = to;
    size_t ups = 0;
    while (from_depth > to_depth) {
        a = a->parent;
        from_depth--;
        ups++;
    }
    while (to_depth > from_depth) {
        c = c->parent;
        to_depth--;
    }
    while (a != c) {
        a = a->parent;
        c = c->parent;
        ups++;
    }
    /* C is the common ancestor; the path below it leads to TO. */
    char *full = sk_entry_path(to);
    char *base = sk_entry_path(c);
    if (full == NULL || base == NULL) {
        free(full);
        free(base);
        return NULL;
    }
    const char *down = full + strlen(base);
    if (*down == '/')
        down++;
    char *text = NULL;
    size_t length = 0;
    FILE *out = open_memstream(&text, &length);
    if (out != NULL) {
        for (size_t u = 0; u < ups; u++)
            fputs(u ? "/.." : "..", out);
        if (*down != '\0')
            fprintf(out, "%s%s", ups ? "/" : "", down);
        else if (ups == 0)
            fputc('.', out);
        fclose(out);
    }
    free(full);
    free(base);
    return text;
}

/* A directory's link count, as stat shows it: itself, its name in its
 * parent, and each subdirectory's "..". Once, so getattr does not count. */
static void count_links(struct sk_layout *layout)
{
    for (size_t i = 0; i < layout->entry_count; i++) {
        struct sk_entry *entry = layout->entries[i];
        if (entry->kind != SK_ENTRY_DIR)
            continue;
        entry->links = 2;
        for (size_t k = 0; k < entry->child_count; k++)
            entry->links += entry->children[k]->kind == SK_ENTRY_DIR;
    }
}

/* The schema's root node, shown as the mount's root directory. */
static int add_root(struct build *b)
{
    struct sk_layout *layout = b->layout;
    const struct sk_node *root_node = layout->schema->root;
    struct sk_entry probe = {0};
    if (decide_refusal(b, &probe, root_node) != 0)
        return -1;
    bool wrap = is_file_node(root_node) || probe.refused;
    sk_string_list_free(probe.needs, probe.need_count);
    if (wrap) {
        /* The mount point must be a directory anyone may list: a root that
         * is a file or refused is shown as the entry "root" inside it. */
        return add_node(b, layout->root, "root", 4, false, root_node, 0);
    }
    layout->root->node = root_node;
    b->first_entry[root_node->index] = layout->root;
    if (reserve_node_children(b, layout->root, root_node) != 0 ||
        add_type_file(b, layout->root, root_node) != 0 ||
        add_slots(b, layout->root, root_node, 0) != 0)
        return -1;
    return 0;
}

/* Each link's text, once every entry it may point to has its place. */
static int add_link_texts(struct build *b)
{
    struct sk_layout *layout = b->layout;
    for (size_t i = 0; i < layout->entry_count; i++) {
        struct sk_entry *entry = layout->entries[i];
        if (entry->kind != SK_ENTRY_SYMLINK)
            continue;
        entry->link_text = relative_link(entry->parent, entry->target);
        if (entry->link_text == NULL)
            return sk_fail(b->err, "out of memory");
        entry->size = strlen(entry->link_text);
    }
    return 0;
}

int sk_layout_build(struct sk_store *store, struct sk_schema *schema,
                    const struct sk_layout_options *options, struct sk_layout **out,
                    struct sk_error *err)
{
    *out = NULL;
    struct sk_layout *layout = calloc(1, sizeof *layout);
    if (layout == NULL)
        return sk_fail(err, "out of memory");
    layout->store = store;
    layout->schema = schema;
    pthread_mutex_init(&layout->npy_lock, NULL);
    layout->arena = sk_arena_new();
    size_t node_slots = schema->node_count ? schema->node_count : 1;
    struct build b = {.layout = layout,
                      .options = options,
                      .err = err,
                      .refused_by = calloc(node_slots, sizeof *b.refused_by),
                      .first_entry = calloc(node_slots, sizeof *b.first_entry)};
    if (b.first_entry == NULL || b.refused_by == NULL || layout->arena == NULL) {
        sk_fail(err, "out of memory");
        goto fail;
    }
    if (compute_untrusted(&b) != 0)
        goto fail;
    layout->root = new_entry(&b, NULL, own_name(&b, ""), SK_ENTRY_DIR, SK_ROLE_NODE);
    if (layout->root == NULL || add_meta(&b, layout->root) != 0 || add_root(&b) != 0 ||
        add_link_texts(&b) != 0)
        goto fail;
    free(b.refused_by);
    b.refused_by = NULL;
    if (options->problems_later) {
        layout->first_entry = b.first_entry; /* until sk_layout_add_problems */
        b.first_entry = NULL;
    } else if (add_problems(&b, options->content) != 0) {
        goto fail;
    }
    free(b.first_entry);
    count_links(layout);
    *out = layout;
    return 0;
fail:
    if (options->open_members) {
        struct sk_error member_err = {0};
        if (sk_layout_check_members(layout, &member_err) != 0)
            *err = member_err; /* met before what failed the build */
    }
    free(b.refused_by);
    free(b.first_entry);
    sk_layout_free(layout);
    return -1;
}

int sk_layout_check_members(const struct sk_layout *layout, struct sk_error *err)
{
    for (size_t i = 0; i < layout->entry_count; i++) {
        const struct sk_entry *entry = layout->entries[i];
        /* a node's array or bytes: not /.skops/schema.json, read only when asked */
        if (entry->role == SK_ROLE_NODE && entry->in_store &&
            sk_store_check_open(layout->store, entry->member, err) != 0)
            return -1;
    }
    return 0;
}

int sk_layout_add_problems(struct sk_layout *layout, const struct sk_content_report *content,
                           struct sk_error *err)
{
    struct build b = {.layout = layout, .err = err, .first_entry = layout->first_entry};
    int rc = add_problems(&b, content);
    free(layout->first_entry);
    layout->first_entry = NULL;
    return rc;
}

void sk_layout_free(struct sk_layout *layout)
{
    if (layout == NULL)
        return;
    free(layout->first_entry);
    for (size_t i = 0; i < layout->entry_count; i++) {
        struct sk_entry *e = layout->entries[i];
        sk_string_list_free(e->needs, e->need_count);
        free(e->children);
        sk_strmap_free(e->child_index);
        if (e->npy != NULL)
            sk_npy_header_free(e->npy);
        free(e->npy);
        free(e->npy_error);
        free(e->link_text);
        free(e->problems);
    }
    free(layout->entries);
    sk_string_list_free(layout->untrusted, layout->untrusted_count);
    sk_arena_free(layout->arena);
    pthread_mutex_destroy(&layout->npy_lock);
    free(layout);
}

/* An array's .npy file: file_content put it in the store from its node. */
static bool is_array_file(const struct sk_entry *entry)
{
    return entry->in_store && entry->node != NULL && entry->node->loader == SK_LOADER_NDARRAY;
}

int sk_layout_xattrs(struct sk_layout *layout, const struct sk_entry *entry,
                     struct sk_xattr *xattrs)
{
    if (!is_array_file(entry))
        return sk_entry_xattrs(entry, xattrs);
    /* The layout owns its entries; the header is the one thing filled in
     * after the build, under the lock, and read under it too. */
    struct sk_entry *owned = (struct sk_entry *)entry;
    pthread_mutex_lock(&layout->npy_lock);
    if (owned->npy == NULL && owned->npy_error == NULL) {
        /* read now, so not from an archive changed since it was audited */
        struct sk_error err = {0};
        if (sk_store_check_unchanged(layout->store, &err) != 0)
            owned->npy_error = strdup(err.message);
        else
            read_npy_header(layout->store, owned->member, &owned->npy, &owned->npy_error);
    }
    int count = sk_entry_xattrs(entry, xattrs);
    pthread_mutex_unlock(&layout->npy_lock);
    return count;
}
