/* skopsfs show: a model at a glance, as print(model) and get_params() would
 * give it, without Python. Each object (an estimator or any other class
 * instance) gets a section: its class, its hyperparameters (by
 * scikit-learn's convention, attributes without a leading '_' or a
 * trailing '_'), its fitted attributes (a trailing '_'), and how many
 * private ones it has. Objects inside it follow, indented. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

/* A value is cut to keep one line. */
#define SHOW_VALUE_COLUMNS 60
/* A list's first items shown inline, and the sections shown per container. */
#define SHOW_LIST_ITEMS 5
#define SHOW_SECTIONS_PER_CONTAINER 3

struct show {
    const struct sk_layout *layout;
};

enum attribute_kind { ATTRIBUTE_PARAM, ATTRIBUTE_FITTED, ATTRIBUTE_PRIVATE };

static enum attribute_kind attribute_kind(const struct sk_entry *entry)
{
    const char *name = entry->key != NULL ? entry->key : entry->name;
    size_t length = entry->key != NULL ? entry->key_length : strlen(name);
    if (length == 0 || name[0] == '_' || entry->name[0] == '.')
        return ATTRIBUTE_PRIVATE;
    return name[length - 1] == '_' ? ATTRIBUTE_FITTED : ATTRIBUTE_PARAM;
}

static bool is_object(const struct sk_entry *entry)
{
    return entry->kind == SK_ENTRY_DIR && entry->node != NULL &&
           entry->node->loader == SK_LOADER_OBJECT;
}

/* The class's own name: "LogisticRegression" of "sklearn.linear_model.LogisticRegression". */
static const char *short_type(const struct sk_node *node)
{
    const char *dot = strrchr(node->type_name, '.');
    return dot ? dot + 1 : node->type_name;
}

static void print_cut(const char *text, int length)
{
    int shown = length > SHOW_VALUE_COLUMNS ? SHOW_VALUE_COLUMNS - 3 : length;
    printf("%.*s%s", shown, text, length > shown ? "..." : "");
}

static void print_array(const struct show *s, const struct sk_entry *entry)
{
    char scalar[SHOW_VALUE_COLUMNS + 1];
    if (cli_scalar_text(s->layout, entry, scalar, sizeof scalar)) {
        printf("%s(%s)", short_type(entry->node), scalar);
        return;
    }
    if (entry->npy == NULL) {
        printf("%s, %llu bytes", entry->node->type_name, (unsigned long long)entry->size);
        return;
    }
    char shape[SK_MAX_NPY_DIMS * 21 + 1];
    sk_npy_format_shape(entry->npy, shape, sizeof shape);
    printf("array %s (%s%s)", entry->npy->descr, shape, entry->npy->ndim == 1 ? "," : "");
}

/* "[1, 2, 3, ... (7 more)]" for a container of plain values, else its size. */
static void print_container(const struct sk_entry *entry)
{
    size_t shown = 0, items = 0;
    bool plain = true;
    for (size_t i = 0; i < entry->child_count; i++) {
        const struct sk_entry *child = entry->children[i];
        if (child->role == SK_ROLE_TYPEFILE)
            continue;
        items++;
        plain = plain && child->kind == SK_ENTRY_FILE && child->text != NULL;
    }
    printf("%s of %zu", short_type(entry->node), items);
    if (!plain || items == 0)
        return;
    printf(": [");
    for (size_t i = 0; i < entry->child_count && shown < SHOW_LIST_ITEMS; i++) {
        const struct sk_entry *child = entry->children[i];
        if (child->role == SK_ROLE_TYPEFILE)
            continue;
        printf("%s", shown++ ? ", " : "");
        print_cut(child->text, cli_text_length(child));
    }
    if (items > shown)
        printf(", ... (%zu more)", items - shown);
    printf("]");
}

static void print_attribute(const struct show *s, const struct sk_entry *entry, int indent)
{
    const char *name = entry->name;
    printf("%*s%s = ", indent, "", name);
    if (entry->kind == SK_ENTRY_SYMLINK)
        printf("(shared) -> %s", entry->link_text);
    else if (is_object(entry))
        printf("%s(...)", short_type(entry->node));
    else if (entry->kind == SK_ENTRY_DIR)
        print_container(entry);
    else if (entry->node != NULL && entry->node->loader == SK_LOADER_NDARRAY &&
             entry->role == SK_ROLE_NODE)
        print_array(s, entry);
    else if (entry->text != NULL)
        print_cut(entry->text, cli_text_length(entry));
    else
        printf("%s, %llu bytes", entry->node ? entry->node->type_name : "data",
               (unsigned long long)entry->size);
    if (entry->refused)
        cli_print_needs(entry);
    printf("\n");
}

static void print_section(const struct show *s, const struct sk_entry *entry, int indent);

/* The objects below DIRECTORY's entry (through lists, tuples and dicts),
 * each as a section; a container's first few, then a count. */
static void print_nested(const struct show *s, const struct sk_entry *directory, int indent)
{
    size_t sections = 0, skipped = 0;
    const struct sk_entry *first_skipped = NULL;
    for (size_t i = 0; i < directory->child_count; i++) {
        const struct sk_entry *child = directory->children[i];
        if (child->kind != SK_ENTRY_DIR || child->role != SK_ROLE_NODE)
            continue;
        if (!is_object(child)) {
            print_nested(s, child, indent);
            continue;
        }
        bool in_container = !is_object(directory) && directory != s->layout->root;
        if (in_container && sections >= SHOW_SECTIONS_PER_CONTAINER) {
            if (skipped++ == 0)
                first_skipped = child;
            continue;
        }
        sections++;
        print_section(s, child, indent);
    }
    if (skipped > 0) {
        char *path = sk_entry_path(first_skipped->parent);
        printf("\n%*s... and %zu more objects in %s/\n", indent, "", skipped, path ? path : "?");
        free(path);
    }
}

static void print_group(const struct show *s, const struct sk_entry *entry, int indent,
                        enum attribute_kind kind, const char *title)
{
    bool any = false;
    for (size_t i = 0; i < entry->child_count; i++) {
        const struct sk_entry *child = entry->children[i];
        if (child->role == SK_ROLE_TYPEFILE || child->role == SK_ROLE_META ||
            attribute_kind(child) != kind)
            continue;
        if (!any)
            printf("%*s%s:\n", indent, "", title);
        any = true;
        print_attribute(s, child, indent + 2);
    }
}

static void print_section(const struct show *s, const struct sk_entry *entry, int indent)
{
    char *path = sk_entry_path(entry);
    printf("\n%*s%s%s%s", indent, "", path && *path ? path : "", path && *path ? ": " : "",
           entry->node->type_name);
    free(path);
    if (entry->refused)
        cli_print_needs(entry);
    printf("\n");
    print_group(s, entry, indent + 2, ATTRIBUTE_PARAM, "parameters");
    print_group(s, entry, indent + 2, ATTRIBUTE_FITTED, "fitted");
    size_t private_count = 0;
    for (size_t i = 0; i < entry->child_count; i++)
        private_count += entry->children[i]->role != SK_ROLE_TYPEFILE &&
                         entry->children[i]->role != SK_ROLE_META &&
                         attribute_kind(entry->children[i]) == ATTRIBUTE_PRIVATE;
    if (private_count > 0)
        printf("%*s(%zu private attribute%s)\n", indent + 2, "", private_count,
               private_count == 1 ? "" : "s");
    print_nested(s, entry, indent + 2);
}

static void print_sizes(const struct sk_model *model)
{
    uint64_t array_bytes = 0;
    size_t arrays = 0;
    for (size_t i = 0; i < model->schema->node_count; i++) {
        const struct sk_node *node = model->schema->nodes[i];
        if (!node->has_member || node->loader == SK_LOADER_BYTES ||
            node->loader == SK_LOADER_BYTEARRAY)
            continue;
        struct sk_member_info info;
        sk_store_member_info(model->store, node->member, &info);
        array_bytes += info.size;
        arrays++;
    }
    printf("size: %llu bytes archive, %zu arrays of %llu bytes, %zu nodes\n",
           (unsigned long long)sk_store_file_size(model->store), arrays,
           (unsigned long long)array_bytes, model->schema->node_count);
}

int cli_show(struct cli_options *options, int count, char **operands)
{
    struct sk_model *model = cli_open_model(operands[0], options, true, true);
    if (model == NULL)
        return EXIT_UNREADABLE;
    struct show s = {model->layout};
    const char *path = count > 1 ? operands[1] : "";
    const struct sk_entry *start;
    int error = cli_find_entry(model->layout, path, &start);
    if (error == 0 && start->kind == SK_ENTRY_SYMLINK)
        start = start->target;
    if (error != 0) {
        fprintf(stderr, "%s: show: cannot access '%s': %s\n", program, path, strerror(error));
        sk_model_close(model);
        return EXIT_ENTRY_ERROR;
    }
    printf("%s: %s\n", operands[0], model->schema->root->type_name);
    print_sizes(model);
    if (model->layout->untrusted_count > 0)
        printf("untrusted: %zu types (skopsfs tree shows where)\n", model->layout->untrusted_count);
    if (start->kind == SK_ENTRY_DIR && start->node != NULL)
        print_section(&s, start, 0);
    else
        print_attribute(&s, start, 0);
    sk_model_close(model);
    return 0;
}
