/* tree --json and ls --json: each entry as one JSON object with the facts
 * the text output shows. The schema is docs/json.md. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "commands.h"

/* For a 0-d array's value: the widest repr a scalar gets. */
#define SCALAR_TEXT_BYTES 128

static const char *kind_name(enum sk_entry_kind kind)
{
    static const char *const names[] = {
        [SK_ENTRY_DIR] = "dir",
        [SK_ENTRY_FILE] = "file",
        [SK_ENTRY_SYMLINK] = "link",
    };
    return names[kind];
}

static const char *role_name(enum sk_entry_role role)
{
    static const char *const names[] = {
        [SK_ROLE_NODE] = "node",
        [SK_ROLE_TYPEFILE] = "typefile",
        [SK_ROLE_META] = "meta",
        [SK_ROLE_FIELD] = "field",
    };
    return names[role];
}

/* Sets KEY unless VALUE is NULL (out of memory), which the caller sees as
 * a missing fact rather than a crash. */
static void set(json_t *object, const char *key, json_t *value)
{
    if (value != NULL)
        json_object_set_new(object, key, value);
}

static json_t *string_list(char **names, size_t count)
{
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < count; i++)
        json_array_append_new(list, json_string(names[i]));
    return list;
}

static void add_array_facts(json_t *object, const struct sk_layout *layout,
                            const struct sk_entry *entry)
{
    if (entry->npy == NULL) {
        if (entry->npy_error != NULL)
            set(object, "npy_error", json_string(entry->npy_error));
        return;
    }
    set(object, "dtype", json_string(entry->npy->descr));
    json_t *shape = json_array();
    for (size_t d = 0; shape != NULL && d < entry->npy->ndim; d++)
        json_array_append_new(shape, json_integer((json_int_t)entry->npy->shape[d]));
    set(object, "shape", shape);
    set(object, "fortran_order", json_boolean(entry->npy->fortran_order));
    char scalar[SCALAR_TEXT_BYTES];
    if (cli_scalar_text(layout, entry, scalar, sizeof scalar))
        set(object, "value", json_string(scalar));
}

/* The schema's JSON text TEXT as a value again. */
static json_t *json_value(const char *text)
{
    return json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
}

/* The JSON value of a JsonNode, where jansson can hold it (integers of
 * more than 64 bits it cannot: then only "value" gives the text). */
static void add_json_value(json_t *object, const struct sk_node *node)
{
    json_error_t error;
    json_t *value =
        json_loadb(node->json_text, node->json_length, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
    set(object, "json", value);
}

static json_t *entry_object(const struct sk_layout *layout, const struct sk_entry *entry)
{
    json_t *object = json_object();
    if (object == NULL)
        return NULL;
    char *path = sk_entry_path(entry);
    set(object, "name", json_string(entry->name));
    set(object, "path", path ? json_string(path) : NULL);
    free(path);
    set(object, "kind", json_string(kind_name(entry->kind)));
    set(object, "role", json_string(role_name(entry->role)));
    const struct sk_node *node = entry->node;
    if (entry->key != NULL)
        set(object, "key", json_stringn(entry->key, entry->key_length));
    if (node != NULL && entry->role == SK_ROLE_NODE) {
        set(object, "type", json_string(node->type_name));
        set(object, "loader", json_string(sk_loader_name(node->loader)));
    }
    struct sk_entry_stat st;
    sk_entry_stat(entry, &st);
    set(object, "size", json_integer((json_int_t)st.size));
    if (entry->kind == SK_ENTRY_SYMLINK) {
        set(object, "target", json_string(entry->link_text));
        return object;
    }
    set(object, "refused", json_boolean(entry->refused));
    set(object, "needs", string_list(entry->needs, entry->need_count));
    if (entry->kind != SK_ENTRY_FILE)
        return object;
    if (node != NULL && node->loader == SK_LOADER_NDARRAY && entry->role == SK_ROLE_NODE)
        add_array_facts(object, layout, entry);
    else if (entry->text != NULL)
        set(object, "value", json_stringn(entry->text, (size_t)cli_text_length(entry)));
    if (node != NULL && node->loader == SK_LOADER_JSON && entry->role == SK_ROLE_NODE)
        add_json_value(object, node);
    return object;
}

/* ENTRY with its children to LEVELS more levels (0: no limit), as `tree`
 * walks: hidden .type and /.skops left out, refused directories entered. */
static json_t *tree_object(const struct sk_layout *layout, const struct sk_entry *entry,
                           unsigned long long level, const struct cli_options *options)
{
    json_t *object = entry_object(layout, entry);
    if (object == NULL || entry->kind != SK_ENTRY_DIR)
        return object;
    if (options->depth != 0 && level > options->depth) {
        set(object, "truncated", json_true());
        return object;
    }
    json_t *children = json_array();
    for (size_t i = 0; children != NULL && i < entry->child_count; i++) {
        const struct sk_entry *child = entry->children[i];
        if (child->role == SK_ROLE_TYPEFILE || child->role == SK_ROLE_META)
            continue;
        json_array_append_new(children, tree_object(layout, child, level + 1, options));
    }
    set(object, "children", children);
    return object;
}

static int print_document(json_t *document)
{
    if (document == NULL) {
        fprintf(stderr, "%s: out of memory\n", program);
        return EXIT_UNREADABLE;
    }
    int rc = json_dumpf(document, stdout, JSON_INDENT(1) | JSON_ENSURE_ASCII);
    json_decref(document);
    fputc('\n', stdout);
    return rc == 0 ? 0 : EXIT_UNREADABLE;
}

int cli_tree_json(const struct sk_model *model, const char *file, const struct sk_entry *start,
                  const struct cli_options *options)
{
    const struct sk_layout *layout = model->layout;
    json_t *document = json_object();
    if (document != NULL) {
        set(document, "file", json_string(file));
        set(document, "root_type", json_string(model->schema->root->type_name));
        set(document, "protocol", json_value(model->schema->protocol_json));
        if (model->schema->skops_version_json != NULL)
            set(document, "skops_version", json_value(model->schema->skops_version_json));
        set(document, "untrusted", string_list(layout->untrusted, layout->untrusted_count));
        set(document, "tree", tree_object(layout, start, 1, options));
    }
    return print_document(document);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp((*(const struct sk_entry *const *)a)->name,
                  (*(const struct sk_entry *const *)b)->name);
}

/* DIRECTORY's entries as `ls` lists them: sorted by bytes, hidden ones
 * with -a; with -R each directory's "children" the same way. */
static json_t *listing(const struct sk_layout *layout, const struct sk_entry *directory,
                       const struct cli_options *options)
{
    json_t *list = json_array();
    const struct sk_entry **sorted = malloc((directory->child_count + 1) * sizeof *sorted);
    if (list == NULL || sorted == NULL) {
        free(sorted);
        json_decref(list);
        return NULL;
    }
    size_t count = 0;
    for (size_t i = 0; i < directory->child_count; i++)
        if (options->all || directory->children[i]->name[0] != '.')
            sorted[count++] = directory->children[i];
    qsort(sorted, count, sizeof *sorted, compare_names);
    for (size_t i = 0; i < count; i++) {
        json_t *object = entry_object(layout, sorted[i]);
        /* as `ls -R`: a refused directory is not opened */
        if (object != NULL && options->recursive && sorted[i]->kind == SK_ENTRY_DIR &&
            !sorted[i]->refused)
            set(object, "children", listing(layout, sorted[i], options));
        json_array_append_new(list, object);
    }
    free(sorted);
    return list;
}

int cli_ls_json(const struct sk_model *model, const struct sk_entry *entry, bool list_children,
                const struct cli_options *options)
{
    const struct sk_layout *layout = model->layout;
    if (list_children && (entry->refused || !entry->reachable)) {
        char *path = sk_entry_path(entry);
        fprintf(stderr, "%s: ls: cannot open directory '%s': Permission denied\n", program,
                path && *path ? path : ".");
        free(path);
        return EXIT_ENTRY_ERROR;
    }
    json_t *document = list_children ? listing(layout, entry, options) : json_array();
    if (document != NULL && !list_children)
        json_array_append_new(document, entry_object(layout, entry));
    return print_document(document);
}
