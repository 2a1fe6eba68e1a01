#include "npy.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source.h"

/* Nesting of a structured dtype's descr lists and tuples. */
#define NPY_MAX_LITERAL_DEPTH 32

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

int sk_npy_header_length(const unsigned char *preamble, size_t length, uint64_t *header_length,
                         struct sk_error *err)
{
    if (length < 10 || memcmp(preamble, npy_magic, sizeof npy_magic) != 0)
        return sk_fail(err, "not an .npy file (bad magic)");
    unsigned major = preamble[6];
    uint64_t text_length, fixed;
    if (major == 1) {
        text_length = (uint64_t)preamble[8] | ((uint64_t)preamble[9] << 8);
        fixed = 10;
    } else if (major == 2 || major == 3) {
        if (length < 12)
            return sk_fail(err, ".npy preamble is truncated");
        text_length = (uint64_t)preamble[8] | ((uint64_t)preamble[9] << 8) |
                      ((uint64_t)preamble[10] << 16) | ((uint64_t)preamble[11] << 24);
        fixed = 12;
    } else {
        return sk_fail(err, ".npy format version %u is not supported", major);
    }
    if (text_length > SK_MAX_NPY_HEADER_BYTES)
        return sk_fail(
            err, ".npy header is %llu bytes, more than the limit of %u (SK_MAX_NPY_HEADER_BYTES)",
            (unsigned long long)text_length, SK_MAX_NPY_HEADER_BYTES);
    *header_length = fixed + text_length;
    return 0;
}

/* A small reader of the Python literals numpy writes: dicts, tuples, lists,
 * strings, integers, True and False. */
struct cursor {
    const char *p;
    const char *end;
    int depth;
};

static void skip_space(struct cursor *c)
{
    while (c->p < c->end && isspace((unsigned char)*c->p))
        c->p++;
}

static bool take(struct cursor *c, char ch)
{
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* Reads a quoted string; sets [*start, *stop) to its contents. numpy's
 * descrs and field names hold no escapes we need to decode. */
static bool read_string(struct cursor *c, const char **start, const char **stop)
{
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return false;
    char quote = *c->p++;
    *start = c->p;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' && c->p + 1 < c->end)
            c->p++;
        c->p++;
    }
    if (c->p >= c->end)
        return false;
    *stop = c->p++;
    return true;
}

static bool read_uint(struct cursor *c, uint64_t *value)
{
    skip_space(c);
    const char *begin = c->p;
    uint64_t v = 0;
    while (c->p < c->end && isdigit((unsigned char)*c->p)) {
        unsigned digit = (unsigned)(*c->p - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
        c->p++;
    }
    if (c->p < c->end && (*c->p == 'L'))
        c->p++;
    *value = v;
    return c->p != begin;
}

static bool multiply(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* The size of one element of a plain descr such as "<f8", "|S5", "<U4",
 * "<M8[ns]"; false where it is not one (or is an object). */
static bool plain_itemsize(const char *s, size_t n, uint64_t *size, bool *object)
{
    if (n < 2)
        return false;
    if (s[0] != '<' && s[0] != '>' && s[0] != '|' && s[0] != '=')
        return false;
    char kind = s[1];
    if (kind == 'O') {
        *object = true;
        *size = 8;
        return true;
    }
    if (!strchr("biufcmMSUVa?", kind))
        return false;
    uint64_t count = 0;
    size_t i = 2;
    if (i >= n || !isdigit((unsigned char)s[i]))
        return kind == '?' ? (*size = 1, true) : false;
    while (i < n && isdigit((unsigned char)s[i])) {
        if (count > UINT32_MAX)
            return false;
        count = count * 10 + (uint64_t)(s[i] - '0');
        i++;
    }
    if (i < n && s[i] != '[')
        return false;
    *size = kind == 'U' ? count * 4 : count;
    return true;
}

static bool read_descr(struct cursor *c, uint64_t *itemsize, bool *object);

/* A subarray shape inside a field: an int or a tuple of ints. */
static bool read_field_shape(struct cursor *c, uint64_t *count)
{
    uint64_t n = 1, v;
    if (take(c, '(')) {
        while (!take(c, ')')) {
            if (!read_uint(c, &v) || !multiply(n, v, &n))
                return false;
            take(c, ',');
        }
    } else if (read_uint(c, &v)) {
        n = v;
    } else {
        return false;
    }
    *count = n;
    return true;
}

/* [('name', descr[, shape]), ...] */
static bool read_struct_descr(struct cursor *c, uint64_t *itemsize, bool *object)
{
    if (++c->depth > NPY_MAX_LITERAL_DEPTH)
        return false;
    uint64_t total = 0;
    while (!take(c, ']')) {
        const char *a, *b;
        if (!take(c, '('))
            return false;
        if (take(c, '(')) { /* (title, name) pair */
            if (!read_string(c, &a, &b) || !take(c, ',') || !read_string(c, &a, &b) ||
                !take(c, ')'))
                return false;
        } else if (!read_string(c, &a, &b)) {
            return false;
        }
        uint64_t size, count = 1;
        if (!take(c, ',') || !read_descr(c, &size, object))
            return false;
        if (take(c, ',')) {
            if (!take(c, ')')) {
                if (!read_field_shape(c, &count))
                    return false;
                take(c, ',');
                if (!take(c, ')'))
                    return false;
            }
        } else if (!take(c, ')')) {
            return false;
        }
        if (!multiply(size, count, &size) || __builtin_add_overflow(total, size, &total))
            return false;
        take(c, ',');
    }
    c->depth--;
    *itemsize = total;
    return true;
}

static bool read_descr(struct cursor *c, uint64_t *itemsize, bool *object)
{
    skip_space(c);
    if (take(c, '['))
        return read_struct_descr(c, itemsize, object);
    const char *a, *b;
    if (!read_string(c, &a, &b))
        return false;
    return plain_itemsize(a, (size_t)(b - a), itemsize, object);
}

static int parse_dict(struct cursor *c, struct sk_npy_header *h, uint64_t *itemsize,
                      struct sk_error *err)
{
    bool have_descr = false, have_order = false, have_shape = false;
    if (!take(c, '{'))
        return sk_fail(err, ".npy header is not a dict");
    while (!take(c, '}')) {
        const char *ka, *kb;
        if (!read_string(c, &ka, &kb) || !take(c, ':'))
            return sk_fail(err, ".npy header dict is malformed");
        size_t klen = (size_t)(kb - ka);
        skip_space(c);
        if (klen == 5 && memcmp(ka, "descr", 5) == 0) {
            const char *value_start = c->p;
            bool object = false;
            if (!read_descr(c, itemsize, &object))
                return sk_fail(err, ".npy header has an unsupported descr");
            const char *value_end = c->p;
            if (*value_start == '\'' || *value_start == '"') {
                value_start++;
                value_end--;
            }
            free(h->descr);
            h->descr = strndup(value_start, (size_t)(value_end - value_start));
            if (h->descr == NULL)
                return sk_fail(err, "out of memory");
            h->object_dtype = object;
            have_descr = true;
        } else if (klen == 13 && memcmp(ka, "fortran_order", 13) == 0) {
            if (c->end - c->p >= 4 && memcmp(c->p, "True", 4) == 0) {
                h->fortran_order = true;
                c->p += 4;
            } else if (c->end - c->p >= 5 && memcmp(c->p, "False", 5) == 0) {
                h->fortran_order = false;
                c->p += 5;
            } else {
                return sk_fail(err, ".npy header's fortran_order is not True or False");
            }
            have_order = true;
        } else if (klen == 5 && memcmp(ka, "shape", 5) == 0) {
            if (!take(c, '('))
                return sk_fail(err, ".npy header's shape is not a tuple");
            h->ndim = 0;
            while (!take(c, ')')) {
                uint64_t v;
                if (h->ndim >= SK_MAX_NPY_DIMS)
                    return sk_fail(err, ".npy shape has more than %u dimensions (SK_MAX_NPY_DIMS)",
                                   SK_MAX_NPY_DIMS);
                if (!read_uint(c, &v))
                    return sk_fail(err, ".npy header's shape is malformed");
                h->shape[h->ndim++] = v;
                take(c, ',');
            }
            have_shape = true;
        } else {
            return sk_fail(err, ".npy header has an unexpected key '%.*s'", (int)klen, ka);
        }
        if (!take(c, ',')) {
            if (!take(c, '}'))
                return sk_fail(err, ".npy header dict is malformed");
            break;
        }
    }
    if (!have_descr || !have_order || !have_shape)
        return sk_fail(err, ".npy header lacks descr, fortran_order or shape");
    return 0;
}

int sk_npy_parse(const unsigned char *bytes, size_t length, uint64_t member_size,
                 struct sk_npy_header *header, struct sk_error *err)
{
    memset(header, 0, sizeof *header);
    uint64_t header_length;
    if (sk_npy_header_length(bytes, length, &header_length, err) != 0)
        return -1;
    if (header_length > length || header_length > member_size)
        return sk_fail(err, ".npy header runs past the end of the member");
    size_t text_start = bytes[6] == 1 ? 10 : 12;
    struct cursor c = {(const char *)bytes + text_start, (const char *)bytes + header_length, 0};
    uint64_t itemsize = 0;
    if (parse_dict(&c, header, &itemsize, err) != 0) {
        sk_npy_header_free(header);
        return -1;
    }
    header->data_offset = header_length;
    if (!header->object_dtype) {
        uint64_t count = 1, bytes_needed;
        for (size_t i = 0; i < header->ndim; i++)
            if (!multiply(count, header->shape[i], &count))
                goto too_large;
        if (!multiply(count, itemsize, &bytes_needed))
            goto too_large;
        if (bytes_needed != member_size - header_length) {
            sk_fail(err, ".npy data is %llu bytes but its shape and dtype need %llu",
                    (unsigned long long)(member_size - header_length),
                    (unsigned long long)bytes_needed);
            sk_npy_header_free(header);
            return -1;
        }
    }
    return 0;
too_large:
    sk_npy_header_free(header);
    return sk_fail(err, ".npy shape describes more data than any file holds");
}

void sk_npy_header_free(struct sk_npy_header *header)
{
    free(header->descr);
    header->descr = NULL;
}

size_t sk_npy_format_shape(const struct sk_npy_header *header, char *buffer, size_t size)
{
    size_t used = 0;
    if (size > 0)
        buffer[0] = '\0';
    for (size_t i = 0; i < header->ndim; i++) {
        int n = snprintf(buffer + used, used < size ? size - used : 0, "%s%llu", i ? "," : "",
                         (unsigned long long)header->shape[i]);
        if (n > 0)
            used += (size_t)n;
    }
    return used;
}

static bool add_field(struct sk_npy_fields *out, const char *name, size_t name_length, char kind,
                      bool big_endian, uint64_t size)
{
    struct sk_npy_field *grown = realloc(out->fields, (out->count + 1) * sizeof *grown);
    if (grown == NULL)
        return false;
    out->fields = grown;
    struct sk_npy_field *field = &out->fields[out->count];
    field->name = strndup(name, name_length);
    if (field->name == NULL)
        return false;
    out->count++;
    field->kind = kind;
    field->big_endian = big_endian;
    field->size = size;
    field->offset = out->itemsize;
    return !__builtin_add_overflow(out->itemsize, size, &out->itemsize);
}

/* The kind and byte order of a plain descr such as "<i8"; kind 0 where the
 * field is not a plain scalar. */
static void plain_kind(const char *s, size_t n, char *kind, bool *big_endian)
{
    *kind = n >= 2 && s[1] != 'O' ? s[1] : 0;
    *big_endian = n >= 1 && s[0] == '>';
}

/* One ('name', descr[, shape]) tuple of a record's list. */
static int read_field(struct cursor *c, struct sk_npy_fields *out, struct sk_error *err)
{
    const char *name, *name_end, *type, *type_end;
    if (!take(c, '('))
        return sk_fail(err, "record dtype field is not a tuple");
    if (take(c, '(')) { /* (title, name): the name is the second string */
        if (!read_string(c, &name, &name_end) || !take(c, ',') ||
            !read_string(c, &name, &name_end) || !take(c, ')'))
            return sk_fail(err, "record dtype field title is malformed");
    } else if (!read_string(c, &name, &name_end)) {
        return sk_fail(err, "record dtype field has no name");
    }
    if (!take(c, ','))
        return sk_fail(err, "record dtype field has no type");
    skip_space(c);
    const char *type_start = c->p;
    uint64_t size, count = 1;
    bool object = false;
    if (!read_descr(c, &size, &object))
        return sk_fail(err, "record dtype field has an unsupported type");
    char kind = 0;
    bool big_endian = false;
    if (*type_start != '[' &&
        read_string(&(struct cursor){type_start, c->end, 0}, &type, &type_end))
        plain_kind(type, (size_t)(type_end - type), &kind, &big_endian);
    bool closed = false;
    if (take(c, ',') && !(closed = take(c, ')'))) {
        if (!read_field_shape(c, &count) || !multiply(size, count, &size))
            return sk_fail(err, "record dtype field shape is malformed");
        kind = 0; /* a subarray */
        take(c, ',');
    }
    if (!closed && !take(c, ')'))
        return sk_fail(err, "record dtype field is malformed");
    if (!add_field(out, name, (size_t)(name_end - name), kind, big_endian, size))
        return sk_fail(err, "out of memory or record too large");
    return 0;
}

int sk_npy_fields(const char *descr, struct sk_npy_fields *out, struct sk_error *err)
{
    memset(out, 0, sizeof *out);
    struct cursor c = {descr, descr + strlen(descr), 0};
    skip_space(&c);
    if (c.p < c.end && *c.p != '[') {
        uint64_t size;
        bool object = false;
        if (!plain_itemsize(c.p, (size_t)(c.end - c.p), &size, &object))
            return sk_fail(err, "unsupported dtype '%s'", descr);
        char kind;
        bool big_endian;
        plain_kind(c.p, (size_t)(c.end - c.p), &kind, &big_endian);
        if (!add_field(out, "", 0, kind, big_endian, size)) {
            sk_npy_fields_free(out);
            return sk_fail(err, "out of memory");
        }
        return 0;
    }
    take(&c, '[');
    while (!take(&c, ']')) {
        if (c.p >= c.end) {
            sk_npy_fields_free(out);
            return sk_fail(err, "record dtype list is not closed");
        }
        if (read_field(&c, out, err) != 0) {
            sk_npy_fields_free(out);
            return -1;
        }
        take(&c, ',');
    }
    return 0;
}

void sk_npy_fields_free(struct sk_npy_fields *fields)
{
    for (size_t i = 0; i < fields->count; i++)
        free(fields->fields[i].name);
    free(fields->fields);
    memset(fields, 0, sizeof *fields);
}

/* numpy writes headers of 128 bytes or a few hundred: one read usually
 * gets all of one. */
#define NPY_FIRST_READ_BYTES 512u

/* The first bytes of an .npy member up to its whole header, in one read
 * where the header fits the first. Sets *LENGTH to what was read (less than
 * the header's length if the member is shorter). */
static unsigned char *read_header_bytes(struct sk_source *source, size_t *length,
                                        struct sk_error *err)
{
    unsigned char *bytes = malloc(NPY_FIRST_READ_BYTES);
    ssize_t got = bytes ? sk_source_pread(source, bytes, NPY_FIRST_READ_BYTES, 0, err) : -1;
    uint64_t header_length;
    if (got < 0 || sk_npy_header_length(bytes, (size_t)got, &header_length, err) != 0) {
        free(bytes);
        return NULL;
    }
    *length = (size_t)got;
    if (header_length <= (uint64_t)got) {
        *length = (size_t)header_length;
        return bytes;
    }
    if (got < (ssize_t)NPY_FIRST_READ_BYTES)
        return bytes; /* the member ends inside its header */
    unsigned char *larger = realloc(bytes, (size_t)header_length);
    if (larger == NULL) {
        free(bytes);
        return NULL;
    }
    got = sk_source_pread(source, larger + *length, (size_t)header_length - *length, *length, err);
    if (got < 0) {
        free(larger);
        return NULL;
    }
    *length += (size_t)got;
    return larger;
}

int sk_npy_read_header(struct sk_source *source, struct sk_npy_header *header, struct sk_error *err)
{
    size_t length;
    unsigned char *bytes = read_header_bytes(source, &length, err);
    if (bytes == NULL) {
        if (err->message[0] == '\0')
            sk_fail(err, "out of memory");
        return -1;
    }
    int result = sk_npy_parse(bytes, length, sk_source_size(source), header, err);
    free(bytes);
    return result;
}
