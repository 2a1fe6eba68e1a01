/* Symbolic numpy dtypes (see pickle_dtype.h). */
#include "pickle_dtype.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SK_PK_MAX_DTYPE_FIELDS 4096u
#define SK_PK_MAX_DTYPE_DEPTH 8u

bool sk_pk_is_dtype_call(const struct sk_pickle *p, uint32_t value)
{
    const struct sk_pk_value *v = sk_pickle_value(p, value);
    return v && v->kind == SK_PK_CALL && v->u.call.kind == SK_PK_REDUCE &&
           sk_pickle_is_global(p, v->u.call.func, "numpy", "dtype");
}

static const struct sk_pk_value *item(const struct sk_pickle *p, const struct sk_pk_value *tuple,
                                      uint32_t i)
{
    if (!tuple || (tuple->kind != SK_PK_TUPLE && tuple->kind != SK_PK_LIST) ||
        i >= tuple->u.items.count)
        return NULL;
    return sk_pickle_value(p, tuple->u.items.items[i]);
}

static bool is_text(const struct sk_pk_value *v)
{
    return v && (v->kind == SK_PK_STR || v->kind == SK_PK_BYTES);
}

struct field {
    const struct sk_pk_value *name;
    uint32_t dtype;
    int64_t offset;
};

static int by_offset(const void *a, const void *b)
{
    const struct field *x = a, *y = b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* Appends to a malloc'd string. */
static int append(char **s, size_t *length, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#include <stdarg.h>
static int append(char **s, size_t *length, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *piece = NULL;
    int n = vasprintf(&piece, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    char *bigger = realloc(*s, *length + (size_t)n + 1);
    if (!bigger) {
        free(piece);
        return -1;
    }
    memcpy(bigger + *length, piece, (size_t)n + 1);
    *length += (size_t)n;
    *s = bigger;
    free(piece);
    return 0;
}

static int read_dtype(const struct sk_pickle *p, uint32_t value, struct sk_pk_dtype *dt,
                      unsigned depth, struct sk_error *err);

static int structured_descr(const struct sk_pickle *p, const struct sk_pk_value *names,
                            const struct sk_pk_value *fields, uint64_t elsize,
                            struct sk_pk_dtype *dt, unsigned depth, struct sk_error *err)
{
    uint32_t count = names->u.items.count;
    if (count == 0 || count > SK_PK_MAX_DTYPE_FIELDS || fields->kind != SK_PK_DICT)
        return sk_fail(err, "pickle: structured dtype with bad names or fields");
    struct field *list = calloc(count, sizeof *list);
    if (!list)
        return sk_fail(err, "pickle: out of memory");
    int rc = -1;
    for (uint32_t i = 0; i < count; i++) {
        const struct sk_pk_value *name = item(p, names, i);
        const struct sk_pk_value *entry = NULL;
        for (uint32_t k = 0; name && k + 1 < fields->u.items.count; k += 2) {
            const struct sk_pk_value *key = sk_pickle_value(p, fields->u.items.items[k]);
            if (key && key->kind == SK_PK_STR && name->kind == SK_PK_STR &&
                key->u.s.text.length == name->u.s.text.length &&
                memcmp(key->u.s.text.bytes, name->u.s.text.bytes, name->u.s.text.length) == 0)
                entry = sk_pickle_value(p, fields->u.items.items[k + 1]);
        }
        const struct sk_pk_value *offset = item(p, entry, 1);
        if (!name || name->kind != SK_PK_STR || !entry || entry->kind != SK_PK_TUPLE || !offset ||
            offset->kind != SK_PK_INT || offset->u.integer < 0) {
            sk_fail(err, "pickle: structured dtype field %u is malformed", i);
            goto out;
        }
        list[i] = (struct field){name, entry->u.items.items[0], offset->u.integer};
    }
    qsort(list, count, sizeof *list, by_offset);
    char *s = NULL;
    size_t length = 0;
    uint64_t at = 0;
    if (append(&s, &length, "[") != 0)
        goto oom;
    for (uint32_t i = 0; i < count; i++) {
        struct sk_pk_dtype sub;
        if (read_dtype(p, list[i].dtype, &sub, depth + 1, err) != 0) {
            free(s);
            goto out;
        }
        if ((uint64_t)list[i].offset > at &&
            append(&s, &length, "%s('', '|V%llu')", length > 1 ? ", " : "",
                   (unsigned long long)((uint64_t)list[i].offset - at)) != 0) {
            sk_pk_dtype_free(&sub);
            free(s);
            goto oom;
        }
        const char *quote =
            memchr(list[i].name->u.s.text.bytes, '\'', list[i].name->u.s.text.length) ? "\"" : "'";
        /* a simple field's typestr is quoted as repr writes it; a nested
         * structured one is a list already */
        const char *sub_quote = sub.descr[0] == '[' ? "" : "'";
        int bad = append(&s, &length, "%s(%s%.*s%s, %s%s%s)", length > 1 ? ", " : "", quote,
                         (int)list[i].name->u.s.text.length, list[i].name->u.s.text.bytes, quote,
                         sub_quote, sub.descr, sub_quote);
        at = (uint64_t)list[i].offset + sub.item_size;
        sk_pk_dtype_free(&sub);
        if (bad) {
            free(s);
            goto oom;
        }
    }
    if (elsize > at && append(&s, &length, ", ('', '|V%llu')", (unsigned long long)(elsize - at)))
        goto oom_s;
    if (append(&s, &length, "]") != 0)
        goto oom_s;
    dt->descr = s;
    rc = 0;
    goto out;
oom_s:
    free(s);
oom:
    sk_fail(err, "pickle: out of memory");
out:
    free(list);
    return rc;
}

static int read_dtype(const struct sk_pickle *p, uint32_t value, struct sk_pk_dtype *dt,
                      unsigned depth, struct sk_error *err)
{
    memset(dt, 0, sizeof *dt);
    if (depth > SK_PK_MAX_DTYPE_DEPTH)
        return sk_fail(err, "pickle: dtype nested deeper than %u", SK_PK_MAX_DTYPE_DEPTH);
    if (!sk_pk_is_dtype_call(p, value))
        return sk_fail(err, "pickle: expected a numpy.dtype");
    const struct sk_pk_value *call = sk_pickle_value(p, value);
    const struct sk_pk_value *args = sk_pickle_value(p, call->u.call.args);
    const struct sk_pk_value *typestr = item(p, args, 0);
    const struct sk_pk_value *state = sk_pickle_value(p, call->u.call.state);
    const struct sk_pk_value *version = item(p, state, 0), *endian = item(p, state, 1),
                             *sub = item(p, state, 2), *names = item(p, state, 3),
                             *fields = item(p, state, 4), *elsize = item(p, state, 5);
    /* a recarray's dtype names its scalar type, numpy.record, for 'V' */
    bool record = typestr && sk_pickle_is_global(p, args->u.items.items[0], "numpy", "record");
    if (!typestr || (!record && (typestr->kind != SK_PK_STR || typestr->u.s.text.length < 1)) ||
        call->u.call.builds != 1 || !state || state->kind != SK_PK_TUPLE || !version ||
        version->kind != SK_PK_INT || (version->u.integer != 3 && version->u.integer != 4) ||
        !endian || endian->kind != SK_PK_STR || endian->u.s.text.length != 1 || !sub || !names ||
        !fields || !elsize || elsize->kind != SK_PK_INT)
        return sk_fail(err, "pickle: a numpy.dtype with an unknown argument or state layout");
    if (sub->kind != SK_PK_NONE)
        return sk_fail(err, "pickle: subarray dtypes are not supported");
    if (record && names->kind == SK_PK_NONE)
        return sk_fail(err, "pickle: a numpy.record dtype without fields");
    const char *t = record ? "V" : typestr->u.s.text.bytes;
    uint64_t tn = record ? 1 : typestr->u.s.text.length;
    dt->kind = t[0];
    dt->endian = endian->u.s.text.bytes[0];
    if (!strchr("biufcOSUVMm", dt->kind) || !strchr("<>|=", dt->endian))
        return sk_fail(err, "pickle: dtype kind '%c' is not supported", dt->kind);
    uint64_t digits = 0;
    for (uint64_t i = 1; i < tn; i++) {
        if (t[i] < '0' || t[i] > '9' || digits > 1000000000ull)
            return sk_fail(err, "pickle: dtype typestr is malformed");
        digits = digits * 10 + (uint64_t)(t[i] - '0');
    }
    char order = dt->endian == '=' ? '<' : dt->endian;
    if (names->kind != SK_PK_NONE) {
        if (names->kind != SK_PK_TUPLE || elsize->u.integer <= 0)
            return sk_fail(err, "pickle: structured dtype names are not a tuple");
        dt->structured = true;
        dt->item_size = (uint64_t)elsize->u.integer;
        return structured_descr(p, names, fields, dt->item_size, dt, depth, err);
    }
    char buffer[64];
    if (dt->kind == 'M' || dt->kind == 'm') {
        /* version 4 metadata: ({}, (unit, count, 1, 1)) */
        const struct sk_pk_value *metadata = item(p, state, 8);
        const struct sk_pk_value *unit_tuple = item(p, metadata, 1);
        const struct sk_pk_value *unit = item(p, unit_tuple, 0), *num = item(p, unit_tuple, 1);
        /* protocol 2 writes the unit bytes as _codecs.encode(text, 'latin1') */
        if (unit && unit->kind == SK_PK_CALL &&
            sk_pickle_is_global(p, unit->u.call.func, "_codecs", "encode"))
            unit = item(p, sk_pickle_value(p, unit->u.call.args), 0);
        if (!is_text(unit) || unit->u.s.text.length > 8 || !num || num->kind != SK_PK_INT ||
            num->u.integer < 1)
            return sk_fail(err, "pickle: datetime dtype without a unit");
        dt->item_size = 8;
        if (unit->u.s.text.length == 7 && memcmp(unit->u.s.text.bytes, "generic", 7) == 0)
            snprintf(buffer, sizeof buffer, "%c%c8", order, dt->kind);
        else if (num->u.integer == 1)
            snprintf(buffer, sizeof buffer, "%c%c8[%.*s]", order, dt->kind,
                     (int)unit->u.s.text.length, unit->u.s.text.bytes);
        else
            snprintf(buffer, sizeof buffer, "%c%c8[%lld%.*s]", order, dt->kind,
                     (long long)num->u.integer, (int)unit->u.s.text.length, unit->u.s.text.bytes);
    } else if (dt->kind == 'S' || dt->kind == 'U' || dt->kind == 'V') {
        if (elsize->u.integer < 0 || (dt->kind == 'U' && elsize->u.integer % 4))
            return sk_fail(err, "pickle: dtype %c has a bad element size", dt->kind);
        dt->item_size = (uint64_t)elsize->u.integer;
        snprintf(buffer, sizeof buffer, "%c%c%llu", dt->kind == 'U' ? order : '|', dt->kind,
                 (unsigned long long)(dt->kind == 'U' ? dt->item_size / 4 : dt->item_size));
    } else if (dt->kind == 'O') {
        dt->item_size = 8;
        snprintf(buffer, sizeof buffer, "|O");
    } else {
        static const char sizes[] = {1, 2, 4, 8, 16};
        if (!memchr(sizes, (int)digits, sizeof sizes) || (dt->kind == 'b' && digits != 1))
            return sk_fail(err, "pickle: dtype %.*s has an unknown size", (int)tn, t);
        dt->item_size = digits;
        snprintf(buffer, sizeof buffer, "%c%c%llu", digits == 1 ? '|' : order, dt->kind,
                 (unsigned long long)digits);
    }
    dt->descr = strdup(buffer);
    if (!dt->descr)
        return sk_fail(err, "pickle: out of memory");
    return 0;
}

int sk_pk_dtype_read(const struct sk_pickle *p, uint32_t value, struct sk_pk_dtype *dtype,
                     struct sk_error *err)
{
    return read_dtype(p, value, dtype, 0, err);
}

void sk_pk_dtype_free(struct sk_pk_dtype *dtype)
{
    free(dtype->descr);
    dtype->descr = NULL;
}
