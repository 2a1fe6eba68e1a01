/* Content checks: the arrays scikit-learn follows without bounds checks,
 * read (never executed) and judged. skops trusts a file by its type names;
 * a Tree or an HGB predictor of trusted types can still hold a child index
 * out of range, a cycle or a max_depth too small, which crash, hang or
 * overflow the heap in predict. Each rule and why it matters is in
 * docs/content-checks.md. The checks run on the node graph as skops
 * resolves it (an __id__ seen before is the earlier node), read each array
 * once in bounded chunks, and report one problem per rule and object. */
#ifndef SKOPSFS_CONTENT_H
#define SKOPSFS_CONTENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema.h"
#include "sk_error.h"
#include "source.h"

struct sk_content_problem {
    const struct sk_node *object; /* the Tree, predictor or container it is on */
    char *path;                   /* the object as a mount shows it; "" for the root */
    const char *code;             /* "tree.child_out_of_range": a static string */
    bool has_record;              /* the problem is at one record of the nodes array */
    uint64_t record;
    char *key; /* schema.id_alias: the key whose literal content is ignored */
};

struct sk_content_report {
    struct sk_content_problem *problems;
    size_t count;
    size_t capacity;
};

/* Checks every Tree and HGB predictor of SCHEMA (and every aliased node).
 * Bad contents are problems in *OUT, not errors; -1 only when the archive
 * cannot be read or memory runs out. */
int sk_content_check(struct sk_store *store, const struct sk_schema *schema,
                     struct sk_content_report **out, struct sk_error *err);
void sk_content_report_free(struct sk_content_report *report);

/* Trees judged while the schema is still read, on a thread of their own:
 * given as the reader's node watch (sk_schema_read_member), each Tree it
 * completes has its nodes array read, checked and judged at once, from the
 * member's bytes and the tree's n_features alone (a read that starts over
 * leaves nothing behind but judgments of members). At most one judgment a
 * member is kept. sk_content_check_prefetched waits for those asked for
 * (taking a share itself) and uses them where the tree's member and
 * n_features match, with the problems a check after the read would give.
 * NULL where there is one CPU (or SKOPSFS_CHECK_THREADS=1), or no thread or
 * memory: the checks then run after the read. */
struct sk_content_prefetch;
struct sk_content_prefetch *sk_content_prefetch_start(struct sk_store *store);
struct sk_node_watch sk_content_prefetch_watch(struct sk_content_prefetch *prefetch);
/* sk_content_check with the judgments of PREFETCH (NULL: none). */
int sk_content_check_prefetched(struct sk_store *store, const struct sk_schema *schema,
                                struct sk_content_prefetch *prefetch,
                                struct sk_content_report **out, struct sk_error *err);
/* Stops its thread (judgments not begun are dropped) and frees it all. */
void sk_content_prefetch_free(struct sk_content_prefetch *prefetch);

/* "estimators_/3/tree_: tree.child_out_of_range at node 17" ("." for the
 * root's path), without a newline. Returns NULL when out of memory. */
char *sk_content_problem_text(const struct sk_content_problem *problem);

#endif
