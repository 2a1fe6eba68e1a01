/* The layout: schema nodes as named entries, per docs/layout.md.
 * Directories, files and symbolic links with escaped names, kind suffixes,
 * de-duplicated collisions, links for shared objects, hidden .type files,
 * and the /.skops/ directory. Built once, then read-only (but for .npy
 * headers read when first asked: sk_layout_xattrs): any number of threads
 * may look entries up and read them. The FUSE daemon and the CLI both
 * serve exactly this.
 *
 * This header builds the tree (format/layout.c); the entries and their
 * read-only API are in entry.h (format/entry.c), their names in names.h
 * (format/names.c). Including it gives all three. */
#ifndef SKOPSFS_LAYOUT_H
#define SKOPSFS_LAYOUT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "content.h"
#include "entry.h"
#include "names.h"
#include "npy.h"
#include "schema.h"
#include "sk_error.h"
#include "source.h"
#include "trust.h"

struct sk_layout_options {
    const struct sk_allowlist *allowlist; /* may be NULL */
    /* for dtype and shape: now, else when first asked (sk_layout_xattrs) */
    bool read_npy_headers;
    /* Fail on a member that cannot be read: the caller checks them after
     * the build (sk_layout_check_members), when what reads ahead has
     * learned the most; a failed build reports the first member met that
     * fails, before its own error. */
    bool open_members;
    unsigned long long max_entries; /* 0: SK_MAX_ENTRIES */
    /* NULL: contents not checked */
    const struct sk_content_report *content;
    /* CONTENT is not known yet: sk_layout_add_problems gives it, before
     * the layout is used (so the checks can run while it is built) */
    bool problems_later;
};

struct sk_arena;

struct sk_layout {
    struct sk_arena *arena; /* the entries, their names and texts */
    struct sk_store *store;
    struct sk_schema *schema;
    struct sk_entry *root;
    struct sk_entry **entries; /* by id */
    size_t entry_count;
    char **untrusted; /* still untrusted under the allowlist, sorted */
    size_t untrusted_count;
    pthread_mutex_t npy_lock;       /* .npy headers read when first asked */
    struct sk_entry *problems_file; /* /.skops/problems */
    /* With problems_later, until they are added: by node index, the entry
     * that shows the node first (NULL otherwise) */
    struct sk_entry **first_entry;
};

int sk_layout_build(struct sk_store *store, struct sk_schema *schema,
                    const struct sk_layout_options *options, struct sk_layout **out,
                    struct sk_error *err);
/* The content problems of a layout built with problems_later: the text of
 * /.skops/problems and each bad node's user.skops.problems. */
int sk_layout_add_problems(struct sk_layout *layout, const struct sk_content_report *content,
                           struct sk_error *err);
/* Fails with the first node's member, in entry order, that cannot be
 * read (open_members). */
int sk_layout_check_members(const struct sk_layout *layout, struct sk_error *err);
void sk_layout_free(struct sk_layout *layout);

/* ENTRY's xattrs (sk_entry_xattrs), its .npy header read first where the
 * layout was built without them: a mount need not read every array's
 * header (6,400 of them in a forest of 1,600 trees) before it appears.
 * Any number of threads may call it at once. */
int sk_layout_xattrs(struct sk_layout *layout, const struct sk_entry *entry,
                     struct sk_xattr *xattrs);

#endif
