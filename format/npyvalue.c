#include "npyvalue.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sk_double_text(double v, char *buffer, size_t size)
{
    if (isnan(v))
        return snprintf(buffer, size, "nan");
    if (isinf(v))
        return snprintf(buffer, size, v < 0 ? "-inf" : "inf");
    char digits[40];
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(digits, sizeof digits, "%.*g", precision, v);
        if (strtod(digits, NULL) == v)
            break;
    }
    return snprintf(buffer, size, "%s", digits);
}

/* Python's repr of a float: 1.0, but (1+2j) inside a complex. */
static int float_repr(double v, bool complex_part, char *buffer, size_t size)
{
    char digits[40];
    sk_double_text(v, digits, sizeof digits);
    bool integral = strpbrk(digits, ".ein") == NULL;
    return snprintf(buffer, size, "%s%s", digits, integral && !complex_part ? ".0" : "");
}

static double half_to_double(uint16_t h)
{
    int exponent = (h >> 10) & 0x1f;
    double mantissa = h & 0x3ff;
    double value;
    if (exponent == 0)
        value = ldexp(mantissa, -24);
    else if (exponent == 31)
        value = mantissa != 0 ? NAN : INFINITY;
    else
        value = ldexp(mantissa + 1024, exponent - 25);
    return h & 0x8000 ? -value : value;
}

static uint64_t load_unsigned(const unsigned char *bytes, unsigned size, bool big_endian)
{
    uint64_t value = 0;
    for (unsigned k = 0; k < size; k++)
        value |= (uint64_t)bytes[big_endian ? size - 1 - k : k] << (8 * k);
    return value;
}

static double load_float(const unsigned char *bytes, unsigned size, bool big_endian)
{
    uint64_t bits = load_unsigned(bytes, size, big_endian);
    if (size == 2)
        return half_to_double((uint16_t)bits);
    if (size == 4) {
        uint32_t narrow = (uint32_t)bits;
        float f;
        memcpy(&f, &narrow, sizeof f);
        return f;
    }
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

bool sk_number_format_parse(const char *descr, struct sk_number_format *format)
{
    if (descr == NULL || strlen(descr) < 3 || strchr("<>|=", descr[0]) == NULL)
        return false;
    char *end;
    unsigned long size = strtoul(descr + 2, &end, 10);
    if (*end != '\0' || descr[2] < '1' || descr[2] > '9')
        return false;
    static const struct {
        char code;
        enum sk_number_kind kind;
        unsigned sizes; /* bit (size) set for each size numpy writes */
    } kinds[] = {
        {'b', SK_NUMBER_BOOL, 1u << 1},
        {'i', SK_NUMBER_INT, 1u << 1 | 1u << 2 | 1u << 4 | 1u << 8},
        {'u', SK_NUMBER_UINT, 1u << 1 | 1u << 2 | 1u << 4 | 1u << 8},
        {'f', SK_NUMBER_FLOAT, 1u << 2 | 1u << 4 | 1u << 8},
        {'c', SK_NUMBER_COMPLEX, 1u << 8 | 1u << 16},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (kinds[k].code != descr[1] || size > 16 || !(kinds[k].sizes & (1u << size)))
            continue;
        format->kind = kinds[k].kind;
        format->size = (unsigned)size;
        format->big_endian = descr[0] == '>';
        return true;
    }
    return false;
}

void sk_number_decode(const struct sk_number_format *format, const unsigned char *bytes,
                      struct sk_number *out)
{
    memset(out, 0, sizeof *out);
    out->kind = format->kind;
    unsigned size = format->size;
    switch (format->kind) {
    case SK_NUMBER_BOOL:
        out->u = bytes[0] != 0;
        out->re = (double)out->u;
        break;
    case SK_NUMBER_UINT:
        out->u = load_unsigned(bytes, size, format->big_endian);
        out->re = (double)out->u;
        break;
    case SK_NUMBER_INT: {
        uint64_t raw = load_unsigned(bytes, size, format->big_endian);
        unsigned shift = 64 - 8 * size; /* sign-extend from SIZE bytes */
        out->i = shift ? (int64_t)(raw << shift) >> shift : (int64_t)raw;
        out->re = (double)out->i;
        break;
    }
    case SK_NUMBER_FLOAT:
        out->re = load_float(bytes, size, format->big_endian);
        break;
    case SK_NUMBER_COMPLEX:
        out->re = load_float(bytes, size / 2, format->big_endian);
        out->im = load_float(bytes + size / 2, size / 2, format->big_endian);
        break;
    }
}

static bool same_double(double a, double b)
{
    return a == b || (isnan(a) && isnan(b));
}

bool sk_number_equal(const struct sk_number *a, const struct sk_number *b)
{
    if (a->kind == SK_NUMBER_INT && b->kind == SK_NUMBER_INT)
        return a->i == b->i;
    if (a->kind != SK_NUMBER_FLOAT && a->kind != SK_NUMBER_COMPLEX && a->kind == b->kind)
        return a->u == b->u;
    return same_double(a->re, b->re) && same_double(a->im, b->im);
}

double sk_number_distance(const struct sk_number *a, const struct sk_number *b)
{
    if (sk_number_equal(a, b))
        return 0;
    if (a->kind == SK_NUMBER_INT && b->kind == SK_NUMBER_INT)
        return a->i > b->i ? (double)((uint64_t)a->i - (uint64_t)b->i)
                           : (double)((uint64_t)b->i - (uint64_t)a->i);
    if ((a->kind == SK_NUMBER_UINT || a->kind == SK_NUMBER_BOOL) && a->kind == b->kind)
        return a->u > b->u ? (double)(a->u - b->u) : (double)(b->u - a->u);
    return hypot(a->re - b->re, a->im - b->im);
}

size_t sk_npy_item_size(const char *descr)
{
    if (descr == NULL || strlen(descr) < 3 || strchr("<>|=", descr[0]) == NULL)
        return 0;
    char *end;
    unsigned long count = strtoul(descr + 2, &end, 10);
    if (end == descr + 2 || (*end != '\0' && *end != '[') || count > SIZE_MAX / 4)
        return 0;
    return descr[1] == 'U' ? count * 4 : count;
}

/* A UTF-32 string (numpy's 'U') as a quoted UTF-8 Python literal. */
static int unicode_repr(const unsigned char *item, size_t length, bool big_endian, char *buffer,
                        size_t size)
{
    size_t used = 0;
    char piece[8];
    if (size < 3)
        return -1;
    buffer[used++] = '\'';
    for (size_t k = 0; k + 4 <= length; k += 4) {
        uint32_t c = (uint32_t)load_unsigned(item + k, 4, big_endian);
        if (c == 0)
            break; /* numpy pads with NUL */
        size_t n;
        if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\' || c > 0x10ffff ||
            (c >= 0xd800 && c < 0xe000))
            n = (size_t)snprintf(piece, sizeof piece, c < 0x100 ? "\\x%02x" : "\\u%04x",
                                 c > 0xffff ? 0xfffd : c);
        else if (c < 0x80)
            piece[0] = (char)c, n = 1;
        else if (c < 0x800)
            piece[0] = (char)(0xc0 | c >> 6), piece[1] = (char)(0x80 | (c & 0x3f)), n = 2;
        else if (c < 0x10000)
            piece[0] = (char)(0xe0 | c >> 12), piece[1] = (char)(0x80 | ((c >> 6) & 0x3f)),
            piece[2] = (char)(0x80 | (c & 0x3f)), n = 3;
        else
            piece[0] = (char)(0xf0 | c >> 18), piece[1] = (char)(0x80 | ((c >> 12) & 0x3f)),
            piece[2] = (char)(0x80 | ((c >> 6) & 0x3f)), piece[3] = (char)(0x80 | (c & 0x3f)),
            n = 4;
        if (used + n + 2 > size)
            break; /* cut: the caller's line is short anyway */
        memcpy(buffer + used, piece, n);
        used += n;
    }
    buffer[used++] = '\'';
    buffer[used] = '\0';
    return (int)used;
}

int sk_npy_scalar_text(const struct sk_npy_header *header, const unsigned char *item,
                       size_t item_length, char *buffer, size_t size)
{
    if (header->ndim != 0 || header->object_dtype || size == 0)
        return -1;
    const char *descr = header->descr;
    size_t needed = sk_npy_item_size(descr);
    if (needed == 0 || item_length < needed)
        return -1;
    if (descr[1] == 'U')
        return unicode_repr(item, needed, descr[0] == '>', buffer, size);
    struct sk_number_format format;
    if (!sk_number_format_parse(descr, &format))
        return -1;
    struct sk_number n;
    sk_number_decode(&format, item, &n);
    int length;
    switch (n.kind) {
    case SK_NUMBER_BOOL:
        length = snprintf(buffer, size, "%s", n.u ? "True" : "False");
        break;
    case SK_NUMBER_INT:
        length = snprintf(buffer, size, "%lld", (long long)n.i);
        break;
    case SK_NUMBER_UINT:
        length = snprintf(buffer, size, "%llu", (unsigned long long)n.u);
        break;
    case SK_NUMBER_FLOAT:
        length = float_repr(n.re, false, buffer, size);
        break;
    default: {
        char re[40], im[40];
        float_repr(n.re, true, re, sizeof re);
        float_repr(fabs(n.im), true, im, sizeof im);
        length = snprintf(buffer, size, "(%s%s%sj)", re, signbit(n.im) ? "-" : "+", im);
        break;
    }
    }
    return length < 0 ? -1 : (length >= (int)size ? (int)size - 1 : length);
}
