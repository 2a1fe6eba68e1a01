#include "npyheader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_limits.h"

#define NPY_ALIGN 64
#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LENGTH 6
/* numpy's GROWTH_AXIS_MAX_DIGITS: room to grow the first (or, Fortran, the
 * last) axis in place. */
#define GROWTH_AXIS_MAX_DIGITS 21
#define NPY_V1_MAX_HEADER 65535u
/* Structured dtypes nest; numpy's own nesting is bounded by recursion. */
#define MAX_DTYPE_DEPTH 32

/* A growing text; any failure is remembered and reported once at the end. */
struct text {
    char *bytes;
    size_t length, capacity;
    bool failed;
};

static void put(struct text *t, const char *bytes, size_t length)
{
    if (t->failed)
        return;
    if (length > t->capacity - t->length) {
        size_t capacity = t->capacity ? t->capacity : 256;
        while (length > capacity - t->length)
            capacity *= 2;
        char *grown = realloc(t->bytes, capacity);
        if (grown == NULL) {
            t->failed = true;
            return;
        }
        t->bytes = grown;
        t->capacity = capacity;
    }
    memcpy(t->bytes + t->length, bytes, length);
    t->length += length;
}

static void puts_text(struct text *t, const char *s)
{
    put(t, s, strlen(s));
}

static void put_u64(struct text *t, uint64_t value)
{
    char digits[24];
    puts_text(t, (snprintf(digits, sizeof digits, "%llu", (unsigned long long)value), digits));
}

/* Non-ASCII code points that Python 3's str.isprintable() (Unicode 14)
 * accepts and that repr() so writes as they are: whole ranges of assigned
 * letters and signs. A name with anything else beyond U+00FF is refused
 * rather than guessed: its repr depends on Python's Unicode database. */
static const struct range {
    uint32_t first, last;
} printable_ranges[] = {
    {0xA1, 0xAC},   {0xAE, 0x377},  {0x37A, 0x37F},   {0x384, 0x38A},   {0x38C, 0x38C},
    {0x38E, 0x3A1}, {0x3A3, 0x52F}, {0x3041, 0x3096}, {0x30A1, 0x30FA}, {0x4E00, 0x9FFF},
};

static bool printable(uint32_t cp)
{
    for (size_t i = 0; i < sizeof printable_ranges / sizeof *printable_ranges; i++)
        if (cp >= printable_ranges[i].first && cp <= printable_ranges[i].last)
            return true;
    return false;
}

/* One code point from UTF-8; 0 bytes used for invalid UTF-8. */
static size_t utf8_decode(const unsigned char *s, size_t left, uint32_t *cp)
{
    static const struct {
        unsigned char mask, lead;
        size_t length;
        uint32_t minimum;
    } forms[] = {{0x80, 0x00, 1, 0},
                 {0xE0, 0xC0, 2, 0x80},
                 {0xF0, 0xE0, 3, 0x800},
                 {0xF8, 0xF0, 4, 0x10000}};
    for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
        if ((s[0] & forms[f].mask) != forms[f].lead)
            continue;
        if (forms[f].length > left)
            return 0;
        uint32_t value = s[0] & (unsigned char)~forms[f].mask;
        for (size_t i = 1; i < forms[f].length; i++) {
            if ((s[i] & 0xC0) != 0x80)
                return 0;
            value = value << 6 | (s[i] & 0x3F);
        }
        bool surrogate = value >= 0xD800 && value <= 0xDFFF;
        if (value < forms[f].minimum || value > 0x10FFFF || surrogate)
            return 0;
        *cp = value;
        return forms[f].length;
    }
    return 0;
}

/* Python's repr() of a str given as UTF-8. */
static int repr_str(struct text *t, const char *s, size_t length, struct sk_error *err)
{
    const unsigned char *u = (const unsigned char *)s;
    bool has_single = memchr(s, '\'', length) != NULL, has_double = memchr(s, '"', length) != NULL;
    char quote = has_single && !has_double ? '"' : '\'';
    put(t, &quote, 1);
    for (size_t i = 0; i < length;) {
        uint32_t cp;
        size_t used = utf8_decode(u + i, length - i, &cp);
        if (used == 0)
            return sk_fail(err, "a dtype field name is not valid UTF-8");
        char escape[12];
        if (cp == (uint32_t)quote || cp == '\\') {
            escape[0] = '\\', escape[1] = (char)cp, escape[2] = '\0';
        } else if (cp == '\t' || cp == '\n' || cp == '\r') {
            snprintf(escape, sizeof escape, "\\%c", cp == '\t' ? 't' : cp == '\n' ? 'n' : 'r');
        } else if (cp >= 0x20 && cp < 0x7F) {
            escape[0] = (char)cp, escape[1] = '\0';
        } else if (cp >= 0x80 && printable(cp)) {
            put(t, s + i, used);
            escape[0] = '\0';
        } else if (cp <= 0xFF) {
            snprintf(escape, sizeof escape, "\\x%02x", cp);
        } else {
            return sk_fail(err,
                           "a dtype field name holds U+%04X, whose Python repr this reader "
                           "cannot tell for sure",
                           cp);
        }
        puts_text(t, escape);
        i += used;
    }
    put(t, &quote, 1);
    return 0;
}

static void repr_shape(struct text *t, const uint64_t *shape, size_t ndim)
{
    puts_text(t, "(");
    for (size_t i = 0; i < ndim; i++) {
        if (i > 0)
            puts_text(t, ", ");
        put_u64(t, shape[i]);
    }
    puts_text(t, ndim == 1 ? ",)" : ")");
}

/* One table row per kind: which itemsizes numpy writes for it. */
static const struct kind {
    char code;
    const char *sizes; /* allowed sizes, or NULL: any count ('S', 'U', 'V') */
    uint64_t unit;     /* bytes per counted unit */
} kinds[] = {
    {'b', " 1 ", 1},
    {'i', " 1 2 4 8 ", 1},
    {'u', " 1 2 4 8 ", 1},
    {'f', " 2 4 8 16 12 ", 1},
    {'c', " 8 16 32 24 ", 1},
    {'S', NULL, 1},
    {'U', NULL, 4},
    {'V', NULL, 1},
    {'M', " 8 ", 1},
    {'m', " 8 ", 1},
    {'O', "", 1},
};

/* numpy's datetime units, with an optional count: '<M8[ns]', '<m8[10s]'. */
static bool valid_time_unit(const char *s)
{
    static const char *const units[] = {"Y",  "M",  "W",  "D",  "h",  "m", "s",
                                        "ms", "us", "ns", "ps", "fs", "as"};
    if (*s == '\0')
        return true;
    if (*s++ != '[')
        return false;
    while (*s >= '0' && *s <= '9')
        s++;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
        size_t n = strlen(units[i]);
        if (strncmp(s, units[i], n) == 0 && strcmp(s + n, "]") == 0)
            return true;
    }
    return false;
}

int sk_npy_typestr_itemsize(const char *typestr, uint64_t *itemsize, struct sk_error *err)
{
    if (typestr[0] == '\0' || strchr("<>|", typestr[0]) == NULL)
        return sk_fail(err, "dtype '%.64s': no byte order", typestr);
    const struct kind *kind = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (kinds[i].code == typestr[1])
            kind = &kinds[i];
    if (kind == NULL)
        return sk_fail(err, "dtype '%.64s': unknown kind", typestr);
    if (kind->code == 'O' && typestr[2] == '\0') {
        *itemsize = sizeof(void *);
        return 0;
    }
    const char *p = typestr + 2;
    uint64_t count = 0;
    if (*p < '0' || *p > '9')
        return sk_fail(err, "dtype '%.64s': no size", typestr);
    for (; *p >= '0' && *p <= '9'; p++) {
        if (count > (UINT64_MAX - 9) / 10 / kind->unit)
            return sk_fail(err, "dtype '%.64s': size too large", typestr);
        count = count * 10 + (uint64_t)(*p - '0');
    }
    bool is_time = kind->code == 'M' || kind->code == 'm';
    if (*p != '\0' && !(is_time && valid_time_unit(p)))
        return sk_fail(err, "dtype '%.64s': unexpected text after the size", typestr);
    char padded[24];
    snprintf(padded, sizeof padded, " %llu ", (unsigned long long)count);
    if (kind->sizes != NULL && strstr(kind->sizes, padded) == NULL)
        return sk_fail(err, "dtype '%.64s': numpy has no such size", typestr);
    *itemsize = count * kind->unit;
    return 0;
}

static int dtype_itemsize(const struct sk_npy_dtype *dtype, uint64_t *itemsize,
                          struct sk_error *err)
{
    if (dtype->typestr != NULL)
        return sk_npy_typestr_itemsize(dtype->typestr, itemsize, err);
    *itemsize = dtype->itemsize;
    return 0;
}

int sk_npy_dtype_itemsize(const struct sk_npy_dtype *dtype, uint64_t *itemsize,
                          struct sk_error *err)
{
    return dtype_itemsize(dtype, itemsize, err);
}

static int field_size(const struct sk_npy_field *field, uint64_t *size, struct sk_error *err)
{
    if (dtype_itemsize(field->dtype, size, err) != 0)
        return -1;
    for (size_t i = 0; i < field->ndim; i++) {
        if (field->shape[i] != 0 && *size > UINT64_MAX / field->shape[i])
            return sk_fail(err, "a dtype field's subarray is too large");
        *size *= field->shape[i];
    }
    return 0;
}

static void gap(struct text *t, uint64_t bytes, bool first)
{
    puts_text(t, first ? "('', '|V" : ", ('', '|V");
    put_u64(t, bytes);
    puts_text(t, "')");
}

static int repr_descr(struct text *t, const struct sk_npy_dtype *dtype, int depth,
                      struct sk_error *err);

static int repr_field(struct text *t, const struct sk_npy_field *field, int depth,
                      struct sk_error *err)
{
    puts_text(t, "(");
    if (field->title != NULL) {
        puts_text(t, "(");
        if (repr_str(t, field->title, field->title_length, err) != 0)
            return -1;
        puts_text(t, ", ");
    }
    if (repr_str(t, field->name, field->name_length, err) != 0)
        return -1;
    puts_text(t, field->title != NULL ? "), " : ", ");
    if (repr_descr(t, field->dtype, depth + 1, err) != 0)
        return -1;
    if (field->ndim > 0) {
        puts_text(t, ", ");
        repr_shape(t, field->shape, field->ndim);
    }
    puts_text(t, ")");
    return 0;
}

/* numpy's _array_descr: fields in order, gaps as ('', '|V<n>'). */
static int repr_descr(struct text *t, const struct sk_npy_dtype *dtype, int depth,
                      struct sk_error *err)
{
    if (depth > MAX_DTYPE_DEPTH)
        return sk_fail(err, "a structured dtype nests more than %d levels", MAX_DTYPE_DEPTH);
    if (dtype->typestr != NULL) {
        uint64_t unused;
        if (sk_npy_typestr_itemsize(dtype->typestr, &unused, err) != 0)
            return -1;
        return repr_str(t, dtype->typestr, strlen(dtype->typestr), err);
    }
    puts_text(t, "[");
    uint64_t offset = 0;
    bool first = true;
    for (size_t i = 0; i < dtype->field_count; i++) {
        const struct sk_npy_field *field = &dtype->fields[i];
        if (field->offset < offset)
            return sk_fail(err, "a structured dtype with overlapping or out-of-order fields "
                                "has no .npy header");
        if (field->offset > offset)
            gap(t, field->offset - offset, first), first = false;
        if (!first)
            puts_text(t, ", ");
        first = false;
        uint64_t size;
        if (repr_field(t, field, depth, err) != 0 || field_size(field, &size, err) != 0)
            return -1;
        if (size > UINT64_MAX - field->offset)
            return sk_fail(err, "a dtype field ends past 2^64");
        offset = field->offset + size;
    }
    if (dtype->itemsize > offset)
        gap(t, dtype->itemsize - offset, first);
    else if (dtype->itemsize < offset)
        return sk_fail(err, "a structured dtype's fields end past its itemsize");
    puts_text(t, "]");
    return 0;
}

/* Latin-1 bytes of the (valid UTF-8) text, in place, where every code
 * point is <= U+00FF; false, text unchanged, where one is not. */
static bool to_latin1(struct text *t)
{
    unsigned char *u = (unsigned char *)t->bytes;
    for (size_t i = 0; i < t->length; i++)
        if (u[i] >= 0xC4) /* leads a code point >= U+0100 */
            return false;
    size_t out = 0;
    for (size_t i = 0; i < t->length; i++) {
        if (u[i] >= 0xC2) {
            u[out++] = (unsigned char)((u[i] & 0x03) << 6 | (u[i + 1] & 0x3F));
            i++;
        } else {
            u[out++] = u[i];
        }
    }
    t->length = out;
    return true;
}

/* The header around a descr already written as Python's repr: the rest of
 * the dict, numpy's padding and the version it picks. */
static int build_header(const char *descr, size_t descr_length, bool fortran_order,
                        const uint64_t *shape, size_t ndim, char **header, size_t *length,
                        struct sk_error *err)
{
    *header = NULL;
    if (ndim > SK_MAX_NPY_DIMS)
        return sk_fail(err, "an array of %zu dimensions (SK_MAX_NPY_DIMS: %u)", ndim,
                       SK_MAX_NPY_DIMS);
    struct text dict = {0};
    int result = 0;
    puts_text(&dict, "{'descr': ");
    put(&dict, descr, descr_length);
    puts_text(&dict, fortran_order ? ", 'fortran_order': True, 'shape': "
                                   : ", 'fortran_order': False, 'shape': ");
    repr_shape(&dict, shape, ndim);
    puts_text(&dict, ", }");
    if (ndim > 0) {
        char digits[24];
        int n = snprintf(digits, sizeof digits, "%llu",
                         (unsigned long long)shape[fortran_order ? ndim - 1 : 0]);
        for (int i = n; i < GROWTH_AXIS_MAX_DIGITS; i++)
            puts_text(&dict, " ");
    }
    if (dict.failed)
        result = sk_fail(err, "out of memory");
    /* numpy tries 1.0 (latin-1, 16-bit length), then 2.0 (latin-1, 32-bit),
     * then 3.0 (UTF-8, 32-bit). */
    bool latin1 = result == 0 && to_latin1(&dict);
    size_t prefix = NPY_MAGIC_LENGTH + 2 + 2;
    size_t unpadded = dict.length + 1;
    size_t padding = NPY_ALIGN - (prefix + unpadded) % NPY_ALIGN;
    int major = 1;
    if (!latin1 || unpadded + padding > NPY_V1_MAX_HEADER) {
        major = latin1 ? 2 : 3;
        prefix += 2;
        padding = NPY_ALIGN - (prefix + unpadded) % NPY_ALIGN;
    }
    if (result == 0 && unpadded + padding > SK_MAX_NPY_HEADER_BYTES)
        result = sk_fail(err, "the .npy header would be %zu bytes (SK_MAX_NPY_HEADER_BYTES)",
                         unpadded + padding);
    struct text out = {0};
    if (result == 0) {
        uint32_t header_length = (uint32_t)(unpadded + padding);
        unsigned char fixed[12] = {0};
        memcpy(fixed, NPY_MAGIC, NPY_MAGIC_LENGTH);
        fixed[6] = (unsigned char)major;
        fixed[7] = 0;
        for (size_t i = 0; i < prefix - 8; i++)
            fixed[8 + i] = (unsigned char)(header_length >> (8 * i));
        put(&out, (const char *)fixed, prefix);
        put(&out, dict.bytes, dict.length);
        for (size_t i = 0; i < padding; i++)
            put(&out, " ", 1);
        put(&out, "\n", 1);
        if (out.failed)
            result = sk_fail(err, "out of memory");
    }
    free(dict.bytes);
    if (result != 0) {
        free(out.bytes);
        return -1;
    }
    *header = out.bytes;
    *length = out.length;
    return 0;
}

int sk_npy_header_build(const struct sk_npy_dtype *dtype, bool fortran_order, const uint64_t *shape,
                        size_t ndim, char **header, size_t *length, struct sk_error *err)
{
    *header = NULL;
    struct text descr = {0};
    int result = repr_descr(&descr, dtype, 0, err);
    if (result == 0 && descr.failed)
        result = sk_fail(err, "out of memory");
    if (result == 0)
        result = build_header(descr.bytes, descr.length, fortran_order, shape, ndim, header, length,
                              err);
    free(descr.bytes);
    return result;
}

int sk_npy_header_from_descr(const char *descr, size_t descr_length, bool fortran_order,
                             const uint64_t *shape, size_t ndim, char **header, size_t *length,
                             struct sk_error *err)
{
    return build_header(descr, descr_length, fortran_order, shape, ndim, header, length, err);
}
