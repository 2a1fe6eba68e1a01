/* From a pickle machine's symbolic values (pickle.h) to the skops state
 * that skops's dumps writes for the object the pickle loads to: a jansson
 * tree (shared pickle objects are one json_t referenced from each place, a
 * DAG, never expanded), the table of virtual members its `file` fields
 * name, and the parts that no skops node can stand for (unrepresentable
 * findings: never something a trust list can let through). */
#ifndef SKOPSFS_PICKLE_MAP_H
#define SKOPSFS_PICKLE_MAP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pickle.h"
#include "sk_error.h"

enum sk_pickle_member_kind {
    /* `length` bytes at `offset` of the pickle input (protocol >= 3 bytes,
     * BYTEARRAY8, joblib raw arrays), swapped per `item_size` when
     * `byteswap` (numpy makes non-native arrays native on unpickling). */
    SK_PICKLE_MEMBER_RANGE,
    /* Protocol 0-2 `_codecs.encode(text, 'latin1')`: `length` bytes of
     * UTF-8 at `offset`, every code point <= U+00FF, each one output byte. */
    SK_PICKLE_MEMBER_LATIN1_RANGE,
    /* Bytes made by the mapper (`bytes`, `bytes_length`). */
    SK_PICKLE_MEMBER_BYTES,
};

/* One member of the would-be .skops archive. An .npy member is the npy
 * header followed by the data; the header is numpy's, built from `descr`,
 * `fortran_order`, `shape` (sk_npy_header_build in npyheader.h) into
 * `npy_header` by whoever wires that module in (empty until then). */
struct sk_pickle_member {
    char *name; /* as in the schema's "file" */
    bool is_npy;
    char *npy_header;
    size_t npy_header_length;
    char *descr; /* numpy's descr as Python repr, e.g. '<f8' (after byte swapping) */
    bool fortran_order;
    uint64_t *shape;
    unsigned ndim;
    enum sk_pickle_member_kind kind;
    uint64_t offset, length; /* in the pickle input */
    unsigned item_size;
    bool byteswap;
    unsigned char *bytes;
    size_t bytes_length;
    /* A sparse matrix's .npz: its inner members, in the order skops writes
     * them (indices, indptr, format, shape, data); `kind` is unused. */
    struct sk_pickle_member *parts;
    unsigned part_count;
};

/* Something the pickle holds that no skops node can stand for. */
struct sk_pickle_finding {
    char *global; /* "module.name", or "" when no global is involved */
    uint64_t offset;
    char *reason;
};

struct sk_pickle_map {
    json_t *schema; /* NULL when the root itself is unrepresentable */
    bool cyclic;    /* a back-reference was replaced by a stub: refuse conversion */
    struct sk_pickle_member *members;
    size_t member_count;
    struct sk_pickle_finding *findings;
    size_t finding_count;
};

struct sk_pickle_map_options {
    /* Write each later reference of a shared object as skops's dumps does:
     * a full copy (bounded by SK_MAX_NODES) whose write-time objects (state
     * dicts, key_types lists, bytes members) are new. Conversion wants this;
     * the mount and the audit want the DAG (false). */
    bool skops_copies;
};

/* Maps P's root. Unrepresentable parts become findings (and, in the schema,
 * a node with "__loader__": "UnrepresentableNode" that no loader accepts);
 * the machine's own findings are copied in. Returns -1 with ERR set only
 * for resource limits and out of memory; the map must be freed either way. */
int sk_pickle_map(const struct sk_pickle *p, const struct sk_pickle_map_options *options,
                  struct sk_pickle_map *map, struct sk_error *err);
void sk_pickle_map_free(struct sk_pickle_map *map);

#endif
