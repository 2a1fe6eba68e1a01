/* Array elements as numbers: the plain numeric dtypes numpy writes (bool,
 * signed and unsigned integers, float16/32/64, complex64/128, either byte
 * order) decoded from their bytes, and a 0-d array's value as Python's repr
 * would write it. Nothing here reads the archive: callers pass the bytes. */
#ifndef SKOPSFS_NPYVALUE_H
#define SKOPSFS_NPYVALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "npy.h"

enum sk_number_kind {
    SK_NUMBER_BOOL,
    SK_NUMBER_INT,
    SK_NUMBER_UINT,
    SK_NUMBER_FLOAT,
    SK_NUMBER_COMPLEX,
};

struct sk_number_format {
    enum sk_number_kind kind;
    unsigned size; /* bytes per element */
    bool big_endian;
};

/* One element. Integers are exact in I or U; floats and complex in RE, IM. */
struct sk_number {
    enum sk_number_kind kind;
    int64_t i;
    uint64_t u;
    double re, im;
};

/* The format of a plain numeric descr ("<f8", "|b1", ">i4"); false for any
 * other dtype (strings, datetimes, structured, float128). */
bool sk_number_format_parse(const char *descr, struct sk_number_format *format);

/* Decodes the element at BYTES (FORMAT->size of them). */
void sk_number_decode(const struct sk_number_format *format, const unsigned char *bytes,
                      struct sk_number *out);

/* Whether two elements hold the same value (two NaNs count as the same) and
 * the magnitude of their difference (for complex: the modulus). */
bool sk_number_equal(const struct sk_number *a, const struct sk_number *b);
double sk_number_distance(const struct sk_number *a, const struct sk_number *b);

/* Writes the value of a 0-d array (HEADER, its ITEM bytes of data) as
 * Python's repr of the scalar: 1.5, True, -3, (1+2j), 'text'. Returns the
 * text's length (cut to SIZE - 1), or -1 for a dtype it cannot show. */
int sk_npy_scalar_text(const struct sk_npy_header *header, const unsigned char *item,
                       size_t item_length, char *buffer, size_t size);

/* The shortest digits that read back as V ("0.5", "12", "1e+100", "nan"). */
int sk_double_text(double v, char *buffer, size_t size);

/* Bytes per element of a plain descr ("<U4": 16), or 0 when unknown. */
size_t sk_npy_item_size(const char *descr);

#endif
