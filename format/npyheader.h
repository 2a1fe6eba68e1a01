/* numpy's .npy header, byte for byte as numpy.save writes it (numpy 1.24
 * format._write_array_header): the dict text with Python's repr of the
 * descr (a typestr such as '<f8', or a structured dtype's descr list with
 * ('', '|V<n>') entries for gaps), fortran_order and the shape tuple, the
 * growth padding, padding to 64 bytes and the version numpy picks (1.0; 2.0
 * for a header over 65535 bytes; 3.0 for field names beyond latin-1).
 * Also the itemsize of a typestr, which joblib's raw array skipping and the
 * array sources depend on: kept here in one place. */
#ifndef SKOPSFS_NPYHEADER_H
#define SKOPSFS_NPYHEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sk_error.h"

struct sk_npy_field;

/* A dtype: a typestr (simple), or fields (structured). */
struct sk_npy_dtype {
    const char *typestr; /* '<f8', '|S3', '<U5', '<M8[ns]', '|V4'; NULL if structured */
    uint64_t itemsize;   /* structured: the whole record, trailing padding included */
    const struct sk_npy_field *fields;
    size_t field_count;
};

/* One field, in the dtype's names order (numpy refuses out-of-order or
 * overlapping fields when writing a header, and so does this). */
struct sk_npy_field {
    const char *name; /* UTF-8, NAME_LENGTH bytes (may hold NUL) */
    size_t name_length;
    const char *title; /* NULL: no title */
    size_t title_length;
    uint64_t offset;
    const struct sk_npy_dtype *dtype;
    const uint64_t *shape; /* a subarray field's shape; NULL/0: none */
    size_t ndim;
};

/* The itemsize of a typestr ('<f8' 8, '<U5' 20, '|S3' 3, '<M8[ns]' 8), or
 * -1 with ERR for a typestr numpy does not write. */
int sk_npy_typestr_itemsize(const char *typestr, uint64_t *itemsize, struct sk_error *err);

/* The itemsize of a dtype (a structured one's is its own). */
int sk_npy_dtype_itemsize(const struct sk_npy_dtype *dtype, uint64_t *itemsize,
                          struct sk_error *err);

/* The whole header (magic to newline) in a new buffer (free()), its length
 * a multiple of 64. */
int sk_npy_header_build(const struct sk_npy_dtype *dtype, bool fortran_order, const uint64_t *shape,
                        size_t ndim, char **header, size_t *length, struct sk_error *err);

/* The same from a descr already written as Python's repr ("'<f8'", or a
 * structured dtype's list), as the pickle reader renders it. */
int sk_npy_header_from_descr(const char *descr, size_t descr_length, bool fortran_order,
                             const uint64_t *shape, size_t ndim, char **header, size_t *length,
                             struct sk_error *err);

#endif
