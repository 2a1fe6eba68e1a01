#include "entry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "strmap.h"

/* Symbolic links followed in one resolution, as Linux's MAXSYMLINKS. */
#define SK_MAX_LINK_FOLLOWS 40

const struct sk_entry *sk_layout_entry(const struct sk_layout *layout, uint64_t id)
{
    return id < layout->entry_count ? layout->entries[id] : NULL;
}

const struct sk_entry *sk_entry_child_bytes(const struct sk_entry *directory, const char *name,
                                            size_t length)
{
    if (directory->kind != SK_ENTRY_DIR)
        return NULL;
    if (directory->child_index != NULL)
        return sk_strmap_get(directory->child_index, name, length);
    for (size_t i = 0; i < directory->child_count; i++) {
        const struct sk_entry *child = directory->children[i];
        if (child->name_length == length && memcmp(child->name, name, length) == 0)
            return child;
    }
    return NULL;
}

const struct sk_entry *sk_entry_child(const struct sk_entry *directory, const char *name)
{
    return sk_entry_child_bytes(directory, name, strlen(name));
}

char *sk_entry_path(const struct sk_entry *entry)
{
    size_t length = 0;
    for (const struct sk_entry *e = entry; e->parent != NULL; e = e->parent)
        length += strlen(e->name) + 1;
    char *path = malloc(length + 1);
    if (path == NULL)
        return NULL;
    path[length] = '\0';
    size_t end = length;
    for (const struct sk_entry *e = entry; e->parent != NULL; e = e->parent) {
        size_t n = strlen(e->name);
        end -= n;
        memcpy(path + end, e->name, n);
        if (end > 0)
            path[--end] = '/';
    }
    /* the loop leaves a leading '/' slot when the path is not empty */
    if (length > 0)
        memmove(path, path + (path[0] == '/'), length + 1 - (path[0] == '/'));
    return path;
}

/* One component down from CURRENT: itself ("."), its parent (".."; the
 * root's is the root) or a child. Returns 0 or an errno value. */
static int step(const struct sk_entry *current, const char *component, const struct sk_entry **next)
{
    if (current->kind != SK_ENTRY_DIR)
        return ENOTDIR;
    if (current->refused || !current->reachable)
        return EACCES;
    if (strcmp(component, ".") == 0)
        *next = current;
    else if (strcmp(component, "..") == 0)
        *next = current->parent != NULL ? current->parent : current;
    else if ((*next = sk_entry_child(current, component)) == NULL)
        return ENOENT;
    return 0;
}

int sk_layout_resolve(const struct sk_layout *layout, const char *path, bool follow_last,
                      const struct sk_entry **out)
{
    char *work = strdup(path);
    if (work == NULL)
        return ENOMEM;
    const struct sk_entry *current = layout->root;
    int follows = 0;
    int rc = 0;
    /* A stack of pending components, as text: links push their target. */
    char *pending = work;
    while (pending != NULL && *pending != '\0') {
        while (*pending == '/')
            pending++;
        if (*pending == '\0')
            break;
        char *slash = strchr(pending, '/');
        if (slash != NULL)
            *slash = '\0';
        char *component = pending;
        pending = slash ? slash + 1 : NULL;
        bool last = pending == NULL || *pending == '\0' || strspn(pending, "/") == strlen(pending);
        const struct sk_entry *next;
        rc = step(current, component, &next);
        if (rc != 0)
            break;
        if (next->kind == SK_ENTRY_SYMLINK && (!last || follow_last)) {
            if (++follows > SK_MAX_LINK_FOLLOWS) {
                rc = ELOOP;
                break;
            }
            char *joined;
            if (asprintf(&joined, "%s/%s", next->link_text, pending ? pending : "") < 0) {
                rc = ENOMEM;
                break;
            }
            free(work);
            work = joined;
            pending = work;
            continue; /* relative to the link's directory: CURRENT */
        }
        current = next;
    }
    free(work);
    if (rc == 0)
        *out = current;
    return rc;
}

int sk_entry_open(const struct sk_layout *layout, const struct sk_entry *entry,
                  struct sk_source **out, struct sk_error *err)
{
    *out = NULL;
    if (entry->kind != SK_ENTRY_FILE)
        return sk_fail_code(err, EISDIR, "not a file");
    if (entry->in_store)
        return sk_store_open(layout->store, entry->member, true, out, err);
    return sk_source_memory(entry->text, (size_t)entry->size, false, out, err);
}

/* Directories show one block, as most file systems do; files and links
 * their length, except a refused file, whose length is not shown. */
void sk_entry_stat(const struct sk_entry *entry, struct sk_entry_stat *st)
{
    static const mode_t type_bits[] = {
        [SK_ENTRY_DIR] = S_IFDIR, [SK_ENTRY_FILE] = S_IFREG, [SK_ENTRY_SYMLINK] = S_IFLNK};
    static const mode_t shown_bits[] = {
        [SK_ENTRY_DIR] = 0555, [SK_ENTRY_FILE] = 0444, [SK_ENTRY_SYMLINK] = 0777};
    bool hidden = entry->refused && entry->kind != SK_ENTRY_SYMLINK;
    st->mode = type_bits[entry->kind] | (hidden ? 0 : shown_bits[entry->kind]);
    st->nlink = entry->kind == SK_ENTRY_DIR ? entry->links : 1;
    if (entry->kind == SK_ENTRY_DIR)
        st->size = SK_DIRECTORY_SIZE;
    else
        st->size = entry->refused && entry->kind == SK_ENTRY_FILE ? 0 : entry->size;
    st->blocks = (st->size + 511) / 512;
}

static int put_xattr(struct sk_xattr *xattrs, int *count, const char *name, const char *value,
                     size_t length)
{
    char *copy = malloc(length + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, value, length);
    copy[length] = '\0';
    xattrs[*count].name = name;
    xattrs[*count].value = copy;
    xattrs[*count].length = length;
    (*count)++;
    return 0;
}

static int put_string(struct sk_xattr *xattrs, int *count, const char *name, const char *value)
{
    return put_xattr(xattrs, count, name, value, strlen(value));
}

int sk_entry_xattrs(const struct sk_entry *entry, struct sk_xattr *xattrs)
{
    int count = 0;
    if (entry->kind == SK_ENTRY_SYMLINK || entry->node == NULL || entry->role == SK_ROLE_TYPEFILE)
        return 0;
    if (entry->role == SK_ROLE_FIELD) {
        if (put_xattr(xattrs, &count, "user.skops.key", entry->key, entry->key_length) != 0)
            goto oom;
        return count;
    }
    const struct sk_node *node = entry->node;
    if (put_string(xattrs, &count, "user.skops.type", node->type_name) != 0 ||
        put_string(xattrs, &count, "user.skops.loader", sk_loader_name(node->loader)) != 0)
        goto oom;
    if (entry->key != NULL &&
        put_xattr(xattrs, &count, "user.skops.key", entry->key, entry->key_length) != 0)
        goto oom;
    if (entry->npy != NULL) {
        char shape[SK_MAX_NPY_DIMS * 21 + 1];
        sk_npy_format_shape(entry->npy, shape, sizeof shape);
        if (put_string(xattrs, &count, "user.skops.dtype", entry->npy->descr) != 0 ||
            put_string(xattrs, &count, "user.skops.shape", shape) != 0 ||
            put_string(xattrs, &count, "user.skops.fortran_order",
                       entry->npy->fortran_order ? "1" : "0") != 0)
            goto oom;
    }
    if (node->loader == SK_LOADER_JSON &&
        put_xattr(xattrs, &count, "user.skops.json", node->json_text, node->json_length) != 0)
        goto oom;
    if (put_string(xattrs, &count, "user.skops.trusted", entry->refused ? "0" : "1") != 0)
        goto oom;
    if (entry->problems != NULL && put_xattr(xattrs, &count, "user.skops.problems", entry->problems,
                                             entry->problems_length) != 0)
        goto oom;
    return count;
oom:
    sk_xattrs_free(xattrs, count);
    return -1;
}

void sk_xattrs_free(struct sk_xattr *xattrs, int count)
{
    for (int i = 0; i < count; i++)
        free(xattrs[i].value);
}
