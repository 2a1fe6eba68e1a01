/* An entry of the layout (layout.h) and what every front-end reads of it:
 * the daemon and the CLI look entries up by id, name or path, open their
 * bytes, and show the same stat and extended attributes through these.
 * Read-only: any number of threads may call them on a built layout. */
#ifndef SKOPSFS_ENTRY_H
#define SKOPSFS_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/stat.h>

#include "graph.h"
#include "npy.h"
#include "sk_error.h"
#include "source.h"

enum sk_entry_kind { SK_ENTRY_DIR, SK_ENTRY_FILE, SK_ENTRY_SYMLINK };

enum sk_entry_role {
    SK_ROLE_NODE,     /* a schema node (or a link to one) */
    SK_ROLE_TYPEFILE, /* .type */
    SK_ROLE_META,     /* /.skops and what it holds */
    SK_ROLE_FIELD,    /* a plain schema value shown as a file */
};

struct sk_strmap;

struct sk_entry {
    uint64_t id; /* 0 for the root; stable for an archive and allowlist */
    struct sk_entry *parent;
    char *name; /* escaped; "" for the root */
    /* Counts and lengths are 32 bits (a forest's mount has 56,000 entries):
     * names and keys come from slots, which hold under 4 GiB, and the
     * layout refuses a directory's 2^32nd child. */
    uint32_t name_length;
    enum sk_entry_kind kind;
    enum sk_entry_role role;
    uint32_t key_length;
    const struct sk_node *node; /* the node shown, linked to, or typed */
    const char *key;            /* unescaped; NULL where there is none */
    bool refused;               /* needs an untrusted type: mode 000, EACCES */
    bool reachable;             /* no refused directory above */
    bool in_store;              /* files: a member of the layout's store (below), not text */
    uint32_t need_count;
    char **needs; /* the untrusted types it needs, when refused */

    /* directories */
    struct sk_entry **children;
    uint32_t child_count;
    uint32_t child_capacity;
    /* by name, once there are more than SK_FEW_CHILDREN; NULL before */
    struct sk_strmap *child_index;

    /* files: either text or a member of the layout's store, by the store's
     * own index (opaque here) */
    uint64_t member;
    char *text;
    uint64_t size;

    /* arrays: the parsed .npy header, or why there is none */
    struct sk_npy_header *npy;
    char *npy_error;

    /* symbolic links */
    struct sk_entry *target;
    char *link_text;

    /* content problems on this node, one a line (user.skops.problems) */
    char *problems;
    size_t problems_length;

    /* directories: 2 + subdirectories, counted once the tree is built */
    uint32_t links;
};

struct sk_layout;

const struct sk_entry *sk_layout_entry(const struct sk_layout *layout, uint64_t id);

/* Children a directory holds before it indexes them by name: up to this
 * many, a lookup compares names one by one (most directories are small). */
#define SK_FEW_CHILDREN 32u

/* A child by its name, or NULL. */
const struct sk_entry *sk_entry_child(const struct sk_entry *directory, const char *name);
/* The same for a name of LENGTH bytes (not NUL-terminated). */
const struct sk_entry *sk_entry_child_bytes(const struct sk_entry *directory, const char *name,
                                            size_t length);

/* Resolves PATH (relative to the root; a leading '/' is allowed) as the
 * kernel would inside the mount, following links (also the last component
 * when FOLLOW_LAST). Returns 0, or an errno value: ENOENT, ENOTDIR, EACCES
 * (through a refused directory), ELOOP. */
int sk_layout_resolve(const struct sk_layout *layout, const char *path, bool follow_last,
                      const struct sk_entry **out);

/* The entry's path from the root, e.g. "estimators_/0/coef_.npy". */
char *sk_entry_path(const struct sk_entry *entry);

/* A new source of a file entry's bytes (close with sk_source_close): its
 * text, borrowed from the layout, or its member, opened verified from the
 * store. A source serves one thread at a time; open one per reader.
 * Refusal is the caller's to enforce: this opens a refused entry too. */
int sk_entry_open(const struct sk_layout *layout, const struct sk_entry *entry,
                  struct sk_source **out, struct sk_error *err);

/* A directory's st_size, as most file systems show it: one block. */
#define SK_DIRECTORY_SIZE 4096u

/* What every front-end shows of an entry (stat(2), ls -l): the daemon's
 * getattr and the CLI agree by using this. A refused file shows size 0 and
 * mode 000: it is never materialized, not even its length (docs/layout.md). */
struct sk_entry_stat {
    mode_t mode; /* type and permission bits */
    unsigned long nlink;
    uint64_t size;
    uint64_t blocks; /* of 512 bytes */
};
void sk_entry_stat(const struct sk_entry *entry, struct sk_entry_stat *st);

/* Extended attributes (user.skops.*). Symbolic links have none. */
#define SK_XATTR_MAX 9
struct sk_xattr {
    const char *name;
    char *value;
    size_t length;
};
/* Fills XATTRS (SK_XATTR_MAX slots); returns the count, or -1 when out of
 * memory. Free the values with sk_xattrs_free. */
int sk_entry_xattrs(const struct sk_entry *entry, struct sk_xattr *xattrs);
void sk_xattrs_free(struct sk_xattr *xattrs, int count);

#endif
