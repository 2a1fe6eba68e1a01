/* .npy headers: the magic, the version, and the Python literal dict that
 * gives an array's dtype, order and shape. Parsed without numpy and checked
 * against the member's size, so dtype and shape can be reported without
 * reading any data. */
#ifndef SKOPSFS_NPY_H
#define SKOPSFS_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "limits.h"

/* Bytes needed to learn the header's full length. */
#define SK_NPY_PREAMBLE_BYTES 12u

struct sk_npy_header {
    /* numpy's descr: a plain one without quotes ("<f8"), a structured one
     * as the header's Python list text. */
    char *descr;
    bool fortran_order;
    size_t ndim;
    uint64_t shape[SK_MAX_NPY_DIMS];
    uint64_t data_offset; /* header length: the array data starts here */
    bool object_dtype;    /* '|O' somewhere: the data is a pickle */
};

/* From the first SK_NPY_PREAMBLE_BYTES, the whole header's length. */
int sk_npy_header_length(const unsigned char *preamble, size_t length, uint64_t *header_length,
                         struct sk_error *err);

/* Parses a complete header (BYTES holds at least its header length) of a
 * member of MEMBER_SIZE bytes. Fails if the data does not fit the shape. */
int sk_npy_parse(const unsigned char *bytes, size_t length, uint64_t member_size,
                 struct sk_npy_header *header, struct sk_error *err);

void sk_npy_header_free(struct sk_npy_header *header);

/* "3,4" for shape (3, 4); "" for a 0-d array. Returns the text's length. */
size_t sk_npy_format_shape(const struct sk_npy_header *header, char *buffer, size_t size);

#endif
