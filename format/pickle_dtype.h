/* numpy dtypes as a pickle spells them: numpy.dtype(typestr, False, True)
 * REDUCE + BUILD (version, endian, subarray, names, fields, elsize,
 * alignment, flags[, metadata]). The one place that knows a dtype's item
 * size: the joblib array skipping and the array mapping both rely on it. */
#ifndef SKOPSFS_PICKLE_DTYPE_H
#define SKOPSFS_PICKLE_DTYPE_H

#include <stdbool.h>
#include <stdint.h>

#include "pickle.h"

struct sk_pk_dtype {
    char kind;   /* numpy's kind letter: b i u f c O S U V M m */
    char endian; /* '<', '>' or '|' as pickled */
    uint64_t item_size;
    bool structured;
    /* numpy's descr as Python's repr writes it in a .npy header ('<f8',
     * [('a', '<i8'), ('', '|V4')]), with the byte order as pickled. */
    char *descr;
};

/* Reads the dtype value VALUE. Returns -1 (ERR set) for anything that is
 * not a dtype this reader knows (subarrays, unknown kinds, bad states). */
int sk_pk_dtype_read(const struct sk_pickle *p, uint32_t value, struct sk_pk_dtype *dtype,
                     struct sk_error *err);
void sk_pk_dtype_free(struct sk_pk_dtype *dtype);

/* True when VALUE is numpy.dtype REDUCE under either numpy spelling. */
bool sk_pk_is_dtype_call(const struct sk_pickle *p, uint32_t value);

#endif
