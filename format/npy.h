/* .npy headers: the magic, the version, and the Python literal dict that
 * gives an array's dtype, order and shape. Parsed without numpy and checked
 * against the member's size, so dtype and shape can be reported without
 * reading any data. */
#ifndef SKOPSFS_NPY_H
#define SKOPSFS_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sk_error.h"
#include "sk_limits.h"

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

struct sk_source;
/* Reads and parses the header at the start of SOURCE (an .npy member):
 * one read where the header fits the first 512 bytes, as numpy's do. */
int sk_npy_read_header(struct sk_source *source, struct sk_npy_header *header,
                       struct sk_error *err);

/* One field of a record dtype, or the single element of a plain one. */
struct sk_npy_field {
    char *name; /* "" for numpy's padding fields and for a plain descr */
    char kind;  /* numpy's kind letter: 'i', 'u', 'f', 'b', 'V', ...; 0 for a
                   nested record or a subarray, which are not decoded */
    bool big_endian;
    uint64_t size;   /* bytes */
    uint64_t offset; /* from the record's first byte */
};

struct sk_npy_fields {
    struct sk_npy_field *fields;
    size_t count;
    uint64_t itemsize;
};

/* Splits a header's descr (plain, or the text of a record's list) into its
 * fields, in order, with their offsets, so records can be decoded without
 * numpy. Fails on a descr sk_npy_parse would not accept. */
int sk_npy_fields(const char *descr, struct sk_npy_fields *out, struct sk_error *err);
void sk_npy_fields_free(struct sk_npy_fields *fields);

/* "3,4" for shape (3, 4); "" for a 0-d array. Returns the text's length. */
size_t sk_npy_format_shape(const struct sk_npy_header *header, char *buffer, size_t size);

#endif
