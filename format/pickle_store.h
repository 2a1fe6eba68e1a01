/* A pickle or joblib file read without running it (pickle_input.h, the
 * machine of pickle.h, the mapping of pickle_map.h), offered as a store
 * (source.h) of the members that the mapped skops state names: arrays as
 * numpy's .npy header before the bytes where the pickle holds them, bytes,
 * and sparse matrices as .npz archives made in memory. The schema reader,
 * the layout, the daemon and convert then treat it as any .skops archive. */
#ifndef SKOPSFS_PICKLE_STORE_H
#define SKOPSFS_PICKLE_STORE_H

#include <jansson.h>
#include <stdbool.h>

#include "pickle_map.h"
#include "sk_limits.h"
#include "sk_error.h"
#include "source.h"

struct sk_pickle_file;

struct sk_pickle_file_options {
    /* Later references of a shared object written as skops's dumps writes
     * them (full copies): what convert writes. The audit and the mount keep
     * one node per shared object (false). */
    bool skops_copies;
    /* The pickle limits a user raised (sk_limits.h); NULL: the defaults. */
    const struct sk_limits *limits;
};

/* Opens PATH, which sniffing found to be a pickle or a joblib file. Errors
 * name PATH. OPTIONS may be NULL. */
int sk_pickle_file_open(const char *path, const struct sk_pickle_file_options *options,
                        struct sk_pickle_file **out, struct sk_error *err);

/* The store of its members. Closing the store (sk_store_close) frees the
 * whole file. */
struct sk_store *sk_pickle_file_store(struct sk_pickle_file *file);

/* The store of a pickle file, or NULL for any other store. */
struct sk_pickle_file *sk_pickle_file_of(struct sk_store *store);

/* The mapped state (NULL when nothing could be mapped) and what no skops
 * node can stand for, in the order the stream holds them. */
const struct sk_pickle_map *sk_pickle_file_map(const struct sk_pickle_file *file);

#endif
