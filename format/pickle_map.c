/* Symbolic pickle values -> skops state (see pickle_map.h). Each recognizer
 * checks its whole pattern; what none accepts is unrepresentable. The node
 * shapes (field order included) are those of skops's get_state functions,
 * checked against skops's own dumps (tests/check_pickle_map.py). */
#include "pickle_map.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickle_dtype.h"
#include "sk_limits.h"
#include "strmap.h"
#include "trust.h"

/* Identities skops's __id__ (id(obj)) can share: one space each. */
/* What the root says it was written by: the skops release the fixtures
 * were dumped with, so a conversion compares equal to them. */
#define SK_PICKLE_SKOPS_VERSION "0.15.dev0"

#define ID_NONE 1
#define ID_BOOL 2          /* +value */
#define ID_SMALL_INT 16    /* +value+5, CPython caches -5..256 */
#define ID_EMPTY_STR 300   /* CPython caches '' */
#define ID_LATIN1_CHAR 400 /* +code point: and every 1-character latin-1 str */
#define ID_EMPTY_TUPLE 700
#define ID_EMPTY_BYTES 701
#define ID_GLOBALS (1ll << 36)
#define ID_VALUES (1ll << 32)
#define ID_FRESH (1ll << 40)

enum progress { UNSEEN, ACTIVE, DONE };

struct mapper {
    const struct sk_pickle *p;
    struct sk_pickle_map *map;
    json_t **cache;
    unsigned char *progress;
    size_t member_capacity, finding_capacity;
    struct sk_strmap *global_ids;
    long long global_count, fresh;
    unsigned depth;
    uint64_t nodes;
    struct sk_error *err;
    bool failed;
    bool skops_copies;
};

static json_t *state_of(struct mapper *mp, uint32_t index);
static void report_globals(struct mapper *mp, uint32_t index, unsigned depth);

/* ------------------------------------------------------------ findings */

static void finding(struct mapper *mp, const struct sk_pk_value *global, uint64_t offset,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void finding(struct mapper *mp, const struct sk_pk_value *global, uint64_t offset,
                    const char *fmt, ...)
{
    struct sk_pickle_map *map = mp->map;
    if (map->finding_count >= SK_PICKLE_MAX_FINDINGS)
        return;
    if (map->finding_count == mp->finding_capacity) {
        size_t capacity = mp->finding_capacity ? mp->finding_capacity * 2 : 16;
        void *bigger = realloc(map->findings, capacity * sizeof *map->findings);
        if (!bigger) {
            mp->failed = true;
            sk_fail(mp->err, "pickle: out of memory");
            return;
        }
        map->findings = bigger;
        mp->finding_capacity = capacity;
    }
    va_list ap;
    va_start(ap, fmt);
    char *reason = NULL, *name = NULL;
    int n = vasprintf(&reason, fmt, ap);
    va_end(ap);
    if (global && global->kind == SK_PK_GLOBAL)
        n = n < 0
                ? n
                : asprintf(&name, "%.*s.%.*s", (int)global->u.s.text.length, global->u.s.text.bytes,
                           (int)global->u.s.text2.length, global->u.s.text2.bytes);
    else
        name = strdup("");
    if (n < 0 || !name) {
        free(reason);
        free(name);
        mp->failed = true;
        sk_fail(mp->err, "pickle: out of memory");
        return;
    }
    map->findings[map->finding_count++] = (struct sk_pickle_finding){name, offset, reason};
}

/* ------------------------------------------------------------ ids */

static long long global_id(struct mapper *mp, const struct sk_pk_value *g)
{
    char *key = NULL;
    int n = asprintf(&key, "%.*s\n%.*s", (int)g->u.s.text.length, g->u.s.text.bytes,
                     (int)g->u.s.text2.length, g->u.s.text2.bytes);
    if (n < 0)
        return ID_GLOBALS;
    void *hit = sk_strmap_get(mp->global_ids, key, (size_t)n);
    long long id;
    if (hit) {
        id = (long long)(uintptr_t)hit;
    } else {
        id = ID_GLOBALS + ++mp->global_count;
        if (sk_strmap_put(mp->global_ids, key, (size_t)n, (void *)(uintptr_t)id) != 0)
            mp->failed = true;
    }
    free(key);
    return id;
}

static long long named_type_id(struct mapper *mp, const char *module, const char *name)
{
    struct sk_pk_value g = {.kind = SK_PK_GLOBAL};
    g.u.s.text = (struct sk_pk_text){module, strlen(module)};
    g.u.s.text2 = (struct sk_pk_text){name, strlen(name)};
    return global_id(mp, &g);
}

/* The code point of a one-character str, or -1. */
static long single_code_point(struct sk_pk_text t)
{
    const unsigned char *b = (const unsigned char *)t.bytes;
    if (t.length == 1 && b[0] < 0x80)
        return b[0];
    if (t.length == 2 && (b[0] == 0xc2 || b[0] == 0xc3))
        return ((b[0] & 0x1f) << 6) | (b[1] & 0x3f);
    return -1;
}

/* id(obj) for the object VALUE loads to, up to renaming. */
static long long id_of(struct mapper *mp, uint32_t index)
{
    const struct sk_pk_value *v = sk_pickle_value(mp->p, index);
    switch (v->kind) {
    case SK_PK_NONE:
        return ID_NONE;
    case SK_PK_BOOL:
        return ID_BOOL + v->u.boolean;
    case SK_PK_INT:
        if (v->u.integer >= -5 && v->u.integer <= 256)
            return ID_SMALL_INT + v->u.integer + 5;
        break;
    case SK_PK_STR: {
        long cp = single_code_point(v->u.s.text);
        if (v->u.s.text.length == 0)
            return ID_EMPTY_STR;
        if (cp >= 0)
            return ID_LATIN1_CHAR + cp;
        break;
    }
    case SK_PK_TUPLE:
        if (v->u.items.count == 0)
            return ID_EMPTY_TUPLE;
        break;
    case SK_PK_BYTES:
        if (v->u.s.text.length == 0)
            return ID_EMPTY_BYTES;
        break;
    case SK_PK_GLOBAL:
        return global_id(mp, v);
    default:
        break;
    }
    return ID_VALUES + index;
}

static long long fresh_id(struct mapper *mp)
{
    return ID_FRESH + ++mp->fresh;
}

/* ------------------------------------------------------------ json helpers */

static json_t *node(const char *cls, const char *module, const char *loader)
{
    json_t *n = json_object();
    if (n && (json_object_set_new(n, "__class__", json_string(cls)) != 0 ||
              json_object_set_new(n, "__module__", json_string(module)) != 0 ||
              (loader && json_object_set_new(n, "__loader__", json_string(loader)) != 0))) {
        json_decref(n);
        return NULL;
    }
    return n;
}

static json_t *node_n(struct sk_pk_text cls, struct sk_pk_text module, const char *loader)
{
    json_t *n = json_object();
    if (n &&
        (json_object_set_new(n, "__class__", json_stringn(cls.bytes, cls.length)) != 0 ||
         json_object_set_new(n, "__module__", json_stringn(module.bytes, module.length)) != 0 ||
         (loader && json_object_set_new(n, "__loader__", json_string(loader)) != 0))) {
        json_decref(n);
        return NULL;
    }
    return n;
}

/* Sets KEY to VALUE (stolen); a NULL VALUE fails the mapper. */
static json_t *put(struct mapper *mp, json_t *obj, const char *key, json_t *value)
{
    if (!obj || !value || json_object_set_new(obj, key, value) != 0) {
        if (!value && obj)
            ; /* the cause is already recorded */
        else if (!mp->failed)
            sk_fail(mp->err, "pickle: out of memory building the schema");
        if (!value)
            mp->failed = true;
        json_decref(obj);
        if (!obj)
            json_decref(value);
        mp->failed = true;
        return NULL;
    }
    return obj;
}

static json_t *with_id(struct mapper *mp, json_t *obj, long long id)
{
    return put(mp, obj, "__id__", json_integer(id));
}

/* Python's repr of a float, as json.dumps writes it. */
static void float_repr(double v, char *out, size_t size)
{
    if (isnan(v)) {
        snprintf(out, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, size, v < 0 ? "-Infinity" : "Infinity");
        return;
    }
    char e[40];
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(e, sizeof e, "%.*e", precision - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    /* e is [-]d[.ddd]e[+-]XX */
    bool negative = e[0] == '-';
    const char *mantissa = e + negative;
    char digits[20];
    size_t nd = 0;
    const char *x = mantissa;
    for (; *x && *x != 'e'; x++)
        if (*x != '.')
            digits[nd++] = *x;
    int exponent = atoi(x + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    char *o = out;
    size_t left = size;
#define EMIT(...)                                                                                  \
    do {                                                                                           \
        int k = snprintf(o, left, __VA_ARGS__);                                                    \
        o += k;                                                                                    \
        left -= (size_t)k;                                                                         \
    } while (0)
    if (negative)
        EMIT("-");
    if (exponent >= -4 && exponent < 16) {
        if (exponent < 0) {
            EMIT("0.");
            for (int i = -1; i > exponent; i--)
                EMIT("0");
            EMIT("%.*s", (int)nd, digits);
        } else {
            size_t whole = (size_t)exponent + 1;
            for (size_t i = 0; i < whole; i++)
                EMIT("%c", i < nd ? digits[i] : '0');
            EMIT(".");
            if (nd > whole)
                EMIT("%.*s", (int)(nd - whole), digits + whole);
            else
                EMIT("0");
        }
    } else {
        EMIT("%c", digits[0]);
        if (nd > 1)
            EMIT(".%.*s", (int)(nd - 1), digits + 1);
        EMIT("e%c%02d", exponent < 0 ? '-' : '+', exponent < 0 ? -exponent : exponent);
    }
#undef EMIT
}

/* json.dumps of a str (ensure_ascii): NULL for text that is not UTF-8. */
static char *json_quote(struct sk_pk_text t)
{
    size_t cap = t.length * 12 + 3, at = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    const unsigned char *s = (const unsigned char *)t.bytes;
    out[at++] = '"';
    for (uint64_t i = 0; i < t.length;) {
        uint32_t cp = s[i];
        unsigned extra = cp < 0x80    ? 0
                         : cp >= 0xf8 ? 9
                         : cp >= 0xf0 ? 3
                         : cp >= 0xe0 ? 2
                         : cp >= 0xc0 ? 1
                                      : 9;
        if (extra == 9 || extra >= t.length - i) {
            free(out);
            return NULL;
        }
        if (extra) {
            cp &= 0x3f >> extra;
            for (unsigned k = 1; k <= extra; k++) {
                if ((s[i + k] & 0xc0) != 0x80) {
                    free(out);
                    return NULL;
                }
                cp = cp << 6 | (s[i + k] & 0x3f);
            }
        }
        i += extra + 1;
        const char *escape = NULL;
        switch (cp) {
        case '"':
            escape = "\\\"";
            break;
        case '\\':
            escape = "\\\\";
            break;
        case '\n':
            escape = "\\n";
            break;
        case '\r':
            escape = "\\r";
            break;
        case '\t':
            escape = "\\t";
            break;
        case '\b':
            escape = "\\b";
            break;
        case '\f':
            escape = "\\f";
            break;
        default:
            break;
        }
        if (escape) {
            at += (size_t)sprintf(out + at, "%s", escape);
        } else if (cp >= 0x20 && cp < 0x7f) {
            out[at++] = (char)cp;
        } else if (cp < 0x10000) {
            at += (size_t)sprintf(out + at, "\\u%04x", cp);
        } else {
            cp -= 0x10000;
            at += (size_t)sprintf(out + at, "\\u%04x\\u%04x", 0xd800 + (cp >> 10),
                                  0xdc00 + (cp & 0x3ff));
        }
    }
    out[at++] = '"';
    out[at] = 0;
    return out;
}

/* The JSON text json.dumps writes for a literal, or NULL (not a literal). */
static char *literal_text(const struct sk_pk_value *v)
{
    char buffer[64];
    switch (v->kind) {
    case SK_PK_NONE:
        return strdup("null");
    case SK_PK_BOOL:
        return strdup(v->u.boolean ? "true" : "false");
    case SK_PK_INT:
        snprintf(buffer, sizeof buffer, "%" PRId64, v->u.integer);
        return strdup(buffer);
    case SK_PK_BIGINT:
        return strndup(v->u.s.text.bytes, v->u.s.text.length);
    case SK_PK_FLOAT:
        float_repr(v->u.real, buffer, sizeof buffer);
        return strdup(buffer);
    case SK_PK_STR:
        return json_quote(v->u.s.text);
    default:
        return NULL;
    }
}

/* ------------------------------------------------------------ members */

static struct sk_pickle_member *new_member(struct mapper *mp, const char *extension)
{
    struct sk_pickle_map *map = mp->map;
    if (map->member_count >= SK_MAX_MEMBERS) {
        mp->failed = true;
        sk_fail(mp->err, "pickle: more than SK_MAX_MEMBERS (%u) arrays", SK_MAX_MEMBERS);
        return NULL;
    }
    if (map->member_count == mp->member_capacity) {
        size_t capacity = mp->member_capacity ? mp->member_capacity * 2 : 16;
        void *bigger = realloc(map->members, capacity * sizeof *map->members);
        if (!bigger) {
            mp->failed = true;
            sk_fail(mp->err, "pickle: out of memory");
            return NULL;
        }
        map->members = bigger;
        mp->member_capacity = capacity;
    }
    struct sk_pickle_member *m = &map->members[map->member_count];
    memset(m, 0, sizeof *m);
    if (asprintf(&m->name, "%zu%s", map->member_count, extension) < 0) {
        mp->failed = true;
        sk_fail(mp->err, "pickle: out of memory");
        return NULL;
    }
    map->member_count++;
    return m;
}

static void member_clear(struct sk_pickle_member *m)
{
    free(m->name);
    free(m->npy_header);
    free(m->descr);
    free(m->shape);
    free(m->bytes);
    for (unsigned i = 0; i < m->part_count; i++)
        member_clear(&m->parts[i]);
    free(m->parts);
}

/* Where the bytes of a bytes-like value are: a range, latin-1 text, or
 * (decoded text) a copy. False when VALUE holds no bytes. */
static bool bytes_source(struct mapper *mp, uint32_t index, struct sk_pickle_member *m);

static bool latin1_source(const struct sk_pk_value *text, struct sk_pickle_member *m)
{
    if (text->kind != SK_PK_STR)
        return false;
    if (text->u.s.data_offset != UINT64_MAX) {
        m->kind = SK_PICKLE_MEMBER_LATIN1_RANGE;
        m->offset = text->u.s.data_offset;
        m->length = text->u.s.text.length;
        return true;
    }
    /* decoded text (protocol 0): materialize */
    const unsigned char *s = (const unsigned char *)text->u.s.text.bytes;
    unsigned char *out = malloc(text->u.s.text.length + 1);
    if (!out)
        return false;
    size_t at = 0;
    for (uint64_t i = 0; i < text->u.s.text.length; i++) {
        if (s[i] < 0x80) {
            out[at++] = s[i];
        } else if ((s[i] == 0xc2 || s[i] == 0xc3) && i + 1 < text->u.s.text.length) {
            out[at++] = (unsigned char)(((s[i] & 0x1f) << 6) | (s[i + 1] & 0x3f));
            i++;
        } else {
            free(out);
            return false;
        }
    }
    m->kind = SK_PICKLE_MEMBER_BYTES;
    m->bytes = out;
    m->bytes_length = at;
    return true;
}

static bool is_latin1_name(const struct sk_pk_value *v)
{
    return v && v->kind == SK_PK_STR &&
           (sk_pk_text_is(v->u.s.text, "latin1") || sk_pk_text_is(v->u.s.text, "latin-1"));
}

static const struct sk_pk_value *arg(const struct sk_pickle *p, const struct sk_pk_value *call,
                                     uint32_t i, uint32_t expected_count)
{
    const struct sk_pk_value *args = sk_pickle_value(p, call->u.call.args);
    if (!args || args->kind != SK_PK_TUPLE || args->u.items.count != expected_count ||
        i >= args->u.items.count)
        return NULL;
    return sk_pickle_value(p, args->u.items.items[i]);
}

static bool call_of(const struct sk_pickle *p, const struct sk_pk_value *v, const char *module,
                    const char *name)
{
    return v && v->kind == SK_PK_CALL && v->u.call.kind == SK_PK_REDUCE &&
           sk_pickle_is_global(p, v->u.call.func, module, name);
}

static bool bytes_source(struct mapper *mp, uint32_t index, struct sk_pickle_member *m)
{
    const struct sk_pickle *p = mp->p;
    const struct sk_pk_value *v = sk_pickle_value(p, index);
    if (!v)
        return false;
    if (v->kind == SK_PK_BYTES || v->kind == SK_PK_BYTEARRAY) {
        m->kind = SK_PICKLE_MEMBER_RANGE;
        m->offset = v->u.s.data_offset;
        m->length = v->u.s.text.length;
        return v->u.s.data_offset != UINT64_MAX;
    }
    if (call_of(p, v, "_codecs", "encode") && v->u.call.builds == 0 &&
        is_latin1_name(arg(p, v, 1, 2)))
        return latin1_source(arg(p, v, 0, 2), m);
    if (call_of(p, v, "builtins", "bytes") && v->u.call.builds == 0 && arg(p, v, 0, 0) == NULL) {
        const struct sk_pk_value *args = sk_pickle_value(p, v->u.call.args);
        if (args && args->kind == SK_PK_TUPLE && args->u.items.count == 0) {
            m->kind = SK_PICKLE_MEMBER_RANGE;
            m->offset = 0;
            m->length = 0;
            return true;
        }
    }
    return false;
}

/* A new member with NAME's content: a bytes value, or an array that
 * skops makes anew each time it writes its owner (Tree's arrays). */
static json_t *copy_member(struct mapper *mp, const char *name)
{
    char *end;
    unsigned long long at = name ? strtoull(name, &end, 10) : ULLONG_MAX;
    if (at >= mp->map->member_count || strcmp(mp->map->members[at].name, name) != 0 ||
        mp->map->members[at].part_count)
        return NULL;
    struct sk_pickle_member *m = new_member(mp, end);
    if (!m)
        return NULL;
    struct sk_pickle_member *from = &mp->map->members[at];
    char *new_name = m->name;
    *m = *from;
    m->name = new_name;
    m->npy_header = NULL;
    m->descr = NULL;
    m->shape = NULL;
    m->bytes = NULL;
    if ((from->npy_header &&
         !(m->npy_header = strndup(from->npy_header, from->npy_header_length))) ||
        (from->descr && !(m->descr = strdup(from->descr))) ||
        (from->shape && !(m->shape = calloc(from->ndim + 1, sizeof *m->shape))) ||
        (from->bytes && !(m->bytes = malloc(from->bytes_length + 1))))
        return NULL;
    if (from->shape)
        memcpy(m->shape, from->shape, from->ndim * sizeof *m->shape);
    if (from->bytes)
        memcpy(m->bytes, from->bytes, from->bytes_length);
    return json_string(new_name);
}

/* ------------------------------------------------------------ nodes */

static json_t *unrepresentable(struct mapper *mp, uint32_t index, const struct sk_pk_value *global,
                               const char *reason)
{
    const struct sk_pk_value *v = sk_pickle_value(mp->p, index);
    finding(mp, global, v->offset, "%s", reason);
    json_t *n;
    if (global && global->kind == SK_PK_GLOBAL)
        n = node_n(global->u.s.text2, global->u.s.text, "UnrepresentableNode");
    else
        n = node("unknown", "unknown", "UnrepresentableNode");
    return with_id(mp, n, id_of(mp, index));
}

static json_t *json_node(struct mapper *mp, uint32_t index)
{
    char *text = literal_text(sk_pickle_value(mp->p, index));
    if (!text)
        return unrepresentable(mp, index, NULL, "text that is not UTF-8");
    json_t *n = node("str", "builtins", "JsonNode");
    n = put(mp, n, "content", json_string(text));
    free(text);
    n = put(mp, n, "is_json", json_true());
    return with_id(mp, n, id_of(mp, index));
}

static json_t *items_array(struct mapper *mp, const struct sk_pk_vector *items)
{
    json_t *array = json_array();
    for (uint32_t i = 0; array && i < items->count; i++) {
        json_t *s = state_of(mp, items->items[i]);
        if (!s || json_array_append_new(array, s) != 0) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

static json_t *sequence_node(struct mapper *mp, const char *cls, const char *loader,
                             const struct sk_pk_vector *items, long long id)
{
    json_t *n = node(cls, "builtins", loader);
    n = put(mp, n, "content", items_array(mp, items));
    return with_id(mp, n, id);
}

static const char *key_type_name(enum sk_pk_kind kind)
{
    switch (kind) {
    case SK_PK_STR:
        return "str";
    case SK_PK_INT:
    case SK_PK_BIGINT:
        return "int";
    case SK_PK_FLOAT:
        return "float";
    case SK_PK_BOOL:
        return "bool";
    case SK_PK_NONE:
        return "NoneType";
    default:
        return NULL;
    }
}

/* A DictNode of PAIRS (key, value, ...); the node's class and id given. */
static json_t *dict_node(struct mapper *mp, const char *cls, const char *module,
                         const struct sk_pk_vector *pairs, long long id, uint32_t owner)
{
    json_t *content = json_object(), *types = json_array();
    if (!content || !types)
        goto oom;
    for (uint32_t i = 0; i + 1 < pairs->count; i += 2) {
        const struct sk_pk_value *key = sk_pickle_value(mp->p, pairs->items[i]);
        const char *type = key_type_name(key->kind);
        char *text = type ? literal_text(key) : NULL;
        if (!text) {
            json_decref(content);
            json_decref(types);
            return unrepresentable(mp, owner, NULL, "a dict key skops cannot write");
        }
        json_t *value = state_of(mp, pairs->items[i + 1]);
        json_t *key_type =
            with_id(mp, node(type, "builtins", "TypeNode"), named_type_id(mp, "builtins", type));
        int bad;
        if (key->kind == SK_PK_STR) /* the key itself, not its JSON text */
            bad = json_object_setn_new(content, key->u.s.text.bytes, key->u.s.text.length, value);
        else
            bad = json_object_set_new(content, text, value);
        free(text);
        if (!value || !key_type || bad || json_array_append_new(types, key_type) != 0) {
            if (bad || !value)
                json_decref(key_type);
            goto oom;
        }
    }
    json_t *list = node("list", "builtins", "ListNode");
    list = put(mp, list, "content", types);
    list = with_id(mp, list, fresh_id(mp));
    json_t *n = node(cls, module, "DictNode");
    n = put(mp, n, "content", content);
    n = put(mp, n, "key_types", list);
    return with_id(mp, n, id);
oom:
    json_decref(content);
    json_decref(types);
    mp->failed = true;
    sk_fail(mp->err, "pickle: a dict key that is not UTF-8, or out of memory");
    return NULL;
}

static bool is_bare_global(const struct sk_pk_value *g)
{
    return g && g->kind == SK_PK_GLOBAL;
}

/* A bare global: a class or builtin -> TypeNode, a function or ufunc ->
 * FunctionNode (both load as getattr(import_module(m), n); only the
 * default lists that apply differ). */
static json_t *global_node(struct mapper *mp, uint32_t index)
{
    const struct sk_pk_value *g = sk_pickle_value(mp->p, index);
    if (memchr(g->u.s.text2.bytes, '.', g->u.s.text2.length))
        return unrepresentable(mp, index, g, "a dotted name (attribute of an attribute)");
    char *qual = NULL;
    if (asprintf(&qual, "%.*s.%.*s", (int)g->u.s.text.length, g->u.s.text.bytes,
                 (int)g->u.s.text2.length, g->u.s.text2.bytes) < 0) {
        mp->failed = true;
        return NULL;
    }
    const char *loader;
    if (sk_default_list_contains(SK_LIST_NUMPY_DTYPES, qual) ||
        sk_pk_text_is(g->u.s.text, "builtins"))
        loader = "TypeNode";
    else if (sk_default_list_contains(SK_LIST_NUMPY_UFUNCS, qual) ||
             sk_default_list_contains(SK_LIST_SCIPY_UFUNCS, qual))
        loader = "FunctionNode";
    else if (g->u.s.text2.length && g->u.s.text2.bytes[0] >= 'A' && g->u.s.text2.bytes[0] <= 'Z')
        loader = "TypeNode";
    else
        loader = "FunctionNode";
    free(qual);
    return with_id(mp, node_n(g->u.s.text2, g->u.s.text, loader), id_of(mp, index));
}

static json_t *bytes_node(struct mapper *mp, uint32_t index, bool bytearray)
{
    const struct sk_pickle *p = mp->p;
    const struct sk_pk_value *v = sk_pickle_value(p, index);
    struct sk_pickle_member source = {0};
    bool found;
    if (call_of(p, v, "builtins", "bytearray") && !v->u.call.builds) {
        const struct sk_pk_value *args = sk_pickle_value(p, v->u.call.args);
        const struct sk_pk_value *text = arg(p, v, 0, 2);
        found = (arg(p, v, 0, 1) && bytes_source(mp, args->u.items.items[0], &source)) ||
                (text && is_latin1_name(arg(p, v, 1, 2)) && latin1_source(text, &source));
    } else {
        found = bytes_source(mp, index, &source);
    }
    if (!found)
        return unrepresentable(mp, index, NULL, "bytes whose content is not in the stream");

    struct sk_pickle_member *m = new_member(mp, ".bin");
    if (!m) {
        free(source.bytes);
        return NULL;
    }
    char *name = m->name;
    *m = source;
    m->name = name;
    m->item_size = 1;
    json_t *n = node(bytearray ? "bytearray" : "bytes", "builtins",
                     bytearray ? "BytearrayNode" : "BytesNode");
    n = put(mp, n, "file", json_string(name));
    return with_id(mp, n, id_of(mp, index));
}

/* ------------------------------------------------------------ arrays */

struct array_spec {
    struct sk_pk_dtype dtype;
    uint64_t *shape;
    unsigned ndim;
    bool fortran;
    bool native; /* make a '>' dtype native (numpy's unpickling does) */
};

static int read_shape(const struct sk_pickle *p, uint32_t index, struct array_spec *spec)
{
    const struct sk_pk_value *t = sk_pickle_value(p, index);
    if (!t || t->kind != SK_PK_TUPLE || t->u.items.count > SK_MAX_NPY_DIMS)
        return -1;
    spec->ndim = t->u.items.count;
    spec->shape = calloc(spec->ndim + 1, sizeof *spec->shape);
    if (!spec->shape)
        return -1;
    for (unsigned i = 0; i < spec->ndim; i++) {
        const struct sk_pk_value *d = sk_pickle_value(p, t->u.items.items[i]);
        if (!d || d->kind != SK_PK_INT || d->u.integer < 0)
            return -1;
        spec->shape[i] = (uint64_t)d->u.integer;
    }
    return 0;
}

static bool element_count(const struct array_spec *spec, uint64_t *count)
{
    uint64_t n = 1;
    for (unsigned i = 0; i < spec->ndim; i++) {
        if (spec->shape[i] && n > UINT64_MAX / spec->shape[i])
            return false;
        n *= spec->shape[i];
    }
    *count = n;
    return true;
}

/* An .npy member of SOURCE's bytes, with the spec's header inputs. */
static json_t *npy_member(struct mapper *mp, struct array_spec *spec,
                          struct sk_pickle_member *source, const char *cls, long long id,
                          struct sk_pickle_member *out_part)
{
    uint64_t count;
    if (!element_count(spec, &count) ||
        (spec->dtype.item_size && count > UINT64_MAX / spec->dtype.item_size))
        return NULL;
    uint64_t expected = count * spec->dtype.item_size;
    uint64_t actual =
        source->kind == SK_PICKLE_MEMBER_BYTES ? source->bytes_length : source->length;
    /* latin-1 text is longer than its bytes; the source checks its length */
    if (source->kind != SK_PICKLE_MEMBER_LATIN1_RANGE && actual != expected)
        return NULL;
    if (source->kind == SK_PICKLE_MEMBER_LATIN1_RANGE &&
        (actual < expected || actual > expected * 2))
        return NULL;
    struct sk_pickle_member *m = out_part;
    if (!m) {
        m = new_member(mp, ".npy");
        if (!m)
            return NULL;
    }
    char *name = m->name;
    *m = *source;
    source->bytes = NULL;
    m->name = name;
    m->is_npy = true;
    m->item_size = spec->dtype.kind == 'U' ? 4 : (unsigned)spec->dtype.item_size;
    m->byteswap = spec->native && spec->dtype.endian == '>' && m->item_size > 1 &&
                  !strchr("SVO", spec->dtype.kind) && !spec->dtype.structured;
    if (m->byteswap)
        spec->dtype.descr[0] = '<';
    m->descr = spec->dtype.descr;
    spec->dtype.descr = NULL;
    m->fortran_order = spec->fortran && spec->ndim > 1;
    m->shape = spec->shape;
    spec->shape = NULL;
    m->ndim = spec->ndim;
    if (out_part)
        return json_true();
    json_t *n = node(cls, "numpy", "NdArrayNode");
    n = put(mp, n, "type", json_string("numpy"));
    n = put(mp, n, "file", json_string(name));
    return with_id(mp, n, id);
}

static void spec_free(struct array_spec *spec)
{
    sk_pk_dtype_free(&spec->dtype);
    free(spec->shape);
}

/* Object arrays: skops writes the states of tolist() (nested by shape). */
static json_t *object_array_content(struct mapper *mp, const uint32_t *items, uint64_t count,
                                    const uint64_t *shape, unsigned ndim)
{
    json_t *array = json_array();
    if (ndim <= 1) {
        for (uint64_t i = 0; array && i < count; i++) {
            json_t *s = state_of(mp, items[i]);
            if (!s || json_array_append_new(array, s) != 0) {
                json_decref(array);
                return NULL;
            }
        }
        return array;
    }
    uint64_t step = shape[0] ? count / shape[0] : 0;
    for (uint64_t i = 0; array && i < shape[0]; i++) {
        json_t *inner = object_array_content(mp, items + i * step, step, shape + 1, ndim - 1);
        json_t *list = node("list", "builtins", "ListNode");
        list = put(mp, list, "content", inner);
        list = with_id(mp, list, fresh_id(mp));
        if (!list || json_array_append_new(array, list) != 0) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

static json_t *object_array(struct mapper *mp, uint32_t index, struct array_spec *spec,
                            const struct sk_pk_value *items)
{
    uint64_t count;
    if (!items || items->kind != SK_PK_LIST || !element_count(spec, &count) ||
        count != items->u.items.count || (spec->fortran && spec->ndim > 1))
        return unrepresentable(mp, index, NULL, "an object array whose items do not fit its shape");
    json_t *shape = json_array();
    for (unsigned i = 0; shape && i < spec->ndim; i++) {
        struct sk_pk_value literal = {.kind = SK_PK_INT};
        literal.u.integer = (int64_t)spec->shape[i];
        char *text = literal_text(&literal);
        json_t *j = node("str", "builtins", "JsonNode");
        j = put(mp, j, "content", json_string(text ? text : "0"));
        free(text);
        j = put(mp, j, "is_json", json_true());
        j = with_id(mp, j,
                    literal.u.integer <= 256 ? ID_SMALL_INT + literal.u.integer + 5 : fresh_id(mp));
        if (!j || json_array_append_new(shape, j) != 0) {
            json_decref(shape);
            return NULL;
        }
    }
    json_t *shape_node = node("tuple", "builtins", "TupleNode");
    shape_node = put(mp, shape_node, "content", shape);
    shape_node = with_id(mp, shape_node, spec->ndim ? fresh_id(mp) : ID_EMPTY_TUPLE);
    json_t *n = node("ndarray", "numpy", "NdArrayNode");
    n = put(mp, n, "content",
            object_array_content(mp, items->u.items.items, count, spec->shape, spec->ndim));
    n = put(mp, n, "type", json_string("json"));
    n = put(mp, n, "shape", shape_node);
    return with_id(mp, n, id_of(mp, index));
}

static bool is_global_in(const struct sk_pickle *p, uint32_t value, const char *const *modules,
                         const char *name)
{
    for (; *modules; modules++)
        if (sk_pickle_is_global(p, value, *modules, name))
            return true;
    return false;
}

static const char *const multiarray_modules[] = {"numpy.core.multiarray", "numpy._core.multiarray",
                                                 NULL};
static const char *const numeric_modules[] = {"numpy.core.numeric", "numpy._core.numeric", NULL};

/* True when V is the tuple (0,) (a placeholder shape numpy passes). */
static bool is_zero_tuple(const struct sk_pickle *p, const struct sk_pk_value *v)
{
    const struct sk_pk_value *zero = v && v->kind == SK_PK_TUPLE && v->u.items.count == 1
                                         ? sk_pickle_value(p, v->u.items.items[0])
                                         : NULL;
    return zero && zero->kind == SK_PK_INT && zero->u.integer == 0;
}

/* Bytes written as such (never a call that could hide one). */
static bool is_plain_bytes(struct mapper *mp, uint32_t index)
{
    struct sk_pickle_member probe = {0};
    bool ok = bytes_source(mp, index, &probe);
    free(probe.bytes);
    return ok;
}

/* The class of an array: numpy.ndarray or a subclass skops writes by name
 * (a bare, undotted global; loading it runs that class's code, which the
 * audit names as an untrusted type). */
static bool is_array_class(const struct sk_pk_value *g)
{
    return g && g->kind == SK_PK_GLOBAL && g->u.s.text2.length &&
           !memchr(g->u.s.text2.bytes, '.', g->u.s.text2.length);
}

/* An array node of a subclass: skops names type(obj). */
static void set_class(json_t *n, const struct sk_pk_value *g)
{
    /* jansson keeps a replaced key in its place */
    json_object_set_new(n, "__class__", json_stringn(g->u.s.text2.bytes, g->u.s.text2.length));
    json_object_set_new(n, "__module__", json_stringn(g->u.s.text.bytes, g->u.s.text.length));
}

/* numpy.ndarray state: (1, shape, dtype, is_fortran, raw) after
 * _reconstruct(ndarray, (0,), b'b'). */
static json_t *reconstruct_node(struct mapper *mp, uint32_t index, const struct sk_pk_value *call,
                                const char *cls, struct sk_pickle_member *part)
{
    const struct sk_pickle *p = mp->p;
    const struct sk_pk_value *args = sk_pickle_value(p, call->u.call.args);
    const struct sk_pk_value *state = sk_pickle_value(p, call->u.call.state);
    const struct sk_pk_value *subclass = arg(p, call, 0, 3);
    bool plain = subclass && sk_pickle_is_global(p, args->u.items.items[0], "numpy", "ndarray");
    /* skops writes a subclass (np.matrix, np.recarray, ...) as an array of
     * that class; an inner .npz part must be a plain ndarray */
    if (!is_array_class(subclass) || (part && !plain) || !is_zero_tuple(p, arg(p, call, 1, 3)) ||
        !is_plain_bytes(mp, args->u.items.items[2])) {
        if (!part)
            report_globals(mp, call->u.call.args, 0); /* a call hidden in an argument */
        return part ? NULL
                    : unrepresentable(mp, index, sk_pickle_value(p, call->u.call.func),
                                      "unknown _reconstruct arguments");
    }
    if (call->u.call.builds != 1 || !state || state->kind != SK_PK_TUPLE ||
        state->u.items.count != 5)
        return part ? NULL
                    : unrepresentable(mp, index, NULL, "an ndarray state skops cannot write");
    const uint32_t *st = state->u.items.items;
    const struct sk_pk_value *version = sk_pickle_value(p, st[0]);
    const struct sk_pk_value *fortran = sk_pickle_value(p, st[3]);
    struct array_spec spec = {.native = true};
    struct sk_error dtype_err = {0};
    json_t *result = NULL;
    if (!version || version->kind != SK_PK_INT || version->u.integer != 1 || !fortran ||
        fortran->kind != SK_PK_BOOL || read_shape(p, st[1], &spec) != 0 ||
        sk_pk_dtype_read(p, st[2], &spec.dtype, &dtype_err) != 0) {
        spec_free(&spec);
        return part ? NULL
                    : unrepresentable(mp, index, NULL,
                                      dtype_err.message[0] ? dtype_err.message
                                                           : "an ndarray state skops cannot write");
    }
    spec.fortran = fortran->u.boolean;
    if (spec.dtype.kind == 'O') {
        result = part ? NULL : object_array(mp, index, &spec, sk_pickle_value(p, st[4]));
        if (result && !plain)
            set_class(result, subclass);
    } else {
        struct sk_pickle_member source = {0};
        if (bytes_source(mp, st[4], &source))
            result = npy_member(mp, &spec, &source, cls, id_of(mp, index), part);
        if (result && !part && !plain)
            set_class(result, subclass);
        free(source.bytes);
        if (!result && !part && !mp->failed)
            result = unrepresentable(mp, index, NULL,
                                     "ndarray data that does not match its shape and dtype");
    }
    spec_free(&spec);
    return result;
}

/* _frombuffer(buffer, dtype, shape, order) (protocol 5). */
static json_t *frombuffer_node(struct mapper *mp, uint32_t index, const struct sk_pk_value *call,
                               struct sk_pickle_member *part)
{
    const struct sk_pickle *p = mp->p;
    const struct sk_pk_value *args = sk_pickle_value(p, call->u.call.args);
    struct array_spec spec = {.native = false};
    json_t *result = NULL;
    struct sk_pickle_member source = {0};
    if (args && args->kind == SK_PK_TUPLE && args->u.items.count == 4 && !call->u.call.builds) {
        const struct sk_pk_value *order = sk_pickle_value(p, args->u.items.items[3]);
        struct sk_error dtype_err = {0};
        if (order && order->kind == SK_PK_STR &&
            (sk_pk_text_is(order->u.s.text, "C") || sk_pk_text_is(order->u.s.text, "F")) &&
            read_shape(p, args->u.items.items[2], &spec) == 0 &&
            sk_pk_dtype_read(p, args->u.items.items[1], &spec.dtype, &dtype_err) == 0 &&
            spec.dtype.kind != 'O' && bytes_source(mp, args->u.items.items[0], &source)) {
            spec.fortran = sk_pk_text_is(order->u.s.text, "F");
            result = npy_member(mp, &spec, &source, "ndarray", id_of(mp, index), part);
        }
    }
    free(source.bytes);
    spec_free(&spec);
    if (!result && !part && !mp->failed)
        result = unrepresentable(mp, index, sk_pickle_value(p, call->u.call.func),
                                 "a _frombuffer call skops cannot write");
    return result;
}

static const char *scalar_name(char kind, uint64_t size)
{
    static const struct {
        char kind;
        uint64_t size;
        const char *name;
    } names[] = {
        {'b', 1, "bool_"},       {'i', 1, "int8"},        {'i', 2, "int16"},
        {'i', 4, "int32"},       {'i', 8, "int64"},       {'u', 1, "uint8"},
        {'u', 2, "uint16"},      {'u', 4, "uint32"},      {'u', 8, "uint64"},
        {'f', 2, "float16"},     {'f', 4, "float32"},     {'f', 8, "float64"},
        {'f', 16, "longdouble"}, {'c', 8, "complex64"},   {'c', 16, "complex128"},
        {'M', 8, "datetime64"},  {'m', 8, "timedelta64"},
    };
    if (kind == 'U')
        return "str_";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].kind == kind && names[i].size == size)
            return names[i].name;
    return NULL;
}

static json_t *bytes_scalar(struct mapper *mp, uint32_t index, struct sk_pickle_member *source)
{
    const unsigned char *data =
        source->kind == SK_PICKLE_MEMBER_BYTES ? source->bytes : mp->p->input + source->offset;
    uint64_t *length = source->kind == SK_PICKLE_MEMBER_BYTES ? (uint64_t[]){source->bytes_length}
                                                              : &source->length;
    while (*length && data[*length - 1] == 0)
        --*length;
    if (source->kind == SK_PICKLE_MEMBER_BYTES)
        source->bytes_length = (size_t)*length;
    struct sk_pickle_member *m = new_member(mp, ".bin");
    if (!m)
        return NULL;
    char *name = m->name;
    *m = *source;
    source->bytes = NULL;
    m->name = name;
    m->item_size = 1;
    json_t *n = node("bytes_", "numpy", "BytesNode");
    n = put(mp, n, "file", json_string(name));
    return with_id(mp, n, id_of(mp, index));
}

/* numpy.core.multiarray.scalar(dtype, raw bytes): a 0-d array member. */
static json_t *scalar_node(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    const struct sk_pickle *p = mp->p;
    const struct sk_pk_value *args = sk_pickle_value(p, call->u.call.args);
    struct array_spec spec = {0};
    struct sk_pickle_member source = {0};
    json_t *result = NULL;
    struct sk_error dtype_err = {0};
    if (args && args->kind == SK_PK_TUPLE && args->u.items.count == 2 && !call->u.call.builds &&
        sk_pk_dtype_read(p, args->u.items.items[0], &spec.dtype, &dtype_err) == 0 &&
        spec.dtype.kind == 'S' && bytes_source(mp, args->u.items.items[1], &source)) {
        /* numpy.bytes_ is a bytes: skops writes it as one, without numpy's
         * trailing NULs */
        result = bytes_scalar(mp, index, &source);
    } else if (args && args->kind == SK_PK_TUPLE && args->u.items.count == 2 &&
               !call->u.call.builds && spec.dtype.kind &&
               scalar_name(spec.dtype.kind, spec.dtype.item_size) &&
               bytes_source(mp, args->u.items.items[1], &source)) {
        spec.shape = calloc(1, sizeof *spec.shape);
        if (spec.shape)
            result =
                npy_member(mp, &spec, &source, scalar_name(spec.dtype.kind, spec.dtype.item_size),
                           id_of(mp, index), NULL);
    }
    free(source.bytes);
    spec_free(&spec);
    if (!result && !mp->failed)
        result = unrepresentable(mp, index, sk_pickle_value(p, call->u.call.func),
                                 "a numpy scalar skops cannot write");
    return result;
}

static json_t *joblib_array_node(struct mapper *mp, uint32_t index, struct sk_pickle_member *part)
{
    const struct sk_pickle *p = mp->p;
    const struct sk_pk_value *v = sk_pickle_value(p, index);
    if (v->u.joblib.nested_root != SK_PK_NIL)
        return part ? NULL : state_of(mp, v->u.joblib.nested_root);
    const struct sk_pk_value *wrapper = sk_pickle_value(p, v->u.joblib.wrapper);
    const struct sk_pk_value *state = sk_pickle_value(p, wrapper->u.call.state);
    uint32_t subclass = SK_PK_NIL, dtype = SK_PK_NIL, shape = SK_PK_NIL;
    const struct sk_pk_value *order = NULL;
    for (uint32_t i = 0; state && state->kind == SK_PK_DICT && i + 1 < state->u.items.count;
         i += 2) {
        const struct sk_pk_value *key = sk_pickle_value(p, state->u.items.items[i]);
        uint32_t value = state->u.items.items[i + 1];
        if (key->kind != SK_PK_STR)
            continue;
        if (sk_pk_text_is(key->u.s.text, "subclass"))
            subclass = value;
        else if (sk_pk_text_is(key->u.s.text, "dtype"))
            dtype = value;
        else if (sk_pk_text_is(key->u.s.text, "shape"))
            shape = value;
        else if (sk_pk_text_is(key->u.s.text, "order"))
            order = sk_pickle_value(p, value);
    }
    struct array_spec spec = {.native = true};
    struct sk_error dtype_err = {0};
    json_t *result = NULL;
    const struct sk_pk_value *cls = sk_pickle_value(p, subclass);
    bool plain = sk_pickle_is_global(p, subclass, "numpy", "ndarray");
    if (is_array_class(cls) && (plain || !part) && order && order->kind == SK_PK_STR &&
        read_shape(p, shape, &spec) == 0 &&
        sk_pk_dtype_read(p, dtype, &spec.dtype, &dtype_err) == 0) {
        spec.fortran = sk_pk_text_is(order->u.s.text, "F");
        struct sk_pickle_member source = {.kind = SK_PICKLE_MEMBER_RANGE,
                                          .offset = v->u.joblib.data_offset,
                                          .length = v->u.joblib.data_length};
        result = npy_member(mp, &spec, &source, "ndarray", id_of(mp, index), part);
        if (result && !plain)
            set_class(result, cls);
    }
    spec_free(&spec);
    if (!result && !part && !mp->failed)
        result = unrepresentable(mp, index, sk_pickle_value(p, subclass),
                                 "a joblib array skops cannot write (subclass or layout)");
    return result;
}

/* One array as an inner .npz part (sparse matrices). */
static bool array_part(struct mapper *mp, uint32_t index, struct sk_pickle_member *part,
                       const char *name)
{
    const struct sk_pickle *p = mp->p;
    const struct sk_pk_value *v = sk_pickle_value(p, index);
    json_t *done = NULL;
    part->name = strdup(name);
    if (!part->name)
        return false;
    if (v && v->kind == SK_PK_JOBLIB_ARRAY)
        done = joblib_array_node(mp, index, part);
    else if (v && v->kind == SK_PK_CALL &&
             is_global_in(p, v->u.call.func, multiarray_modules, "_reconstruct"))
        done = reconstruct_node(mp, index, v, "ndarray", part);
    else if (v && v->kind == SK_PK_CALL &&
             is_global_in(p, v->u.call.func, numeric_modules, "_frombuffer"))
        done = frombuffer_node(mp, index, v, part);
    json_decref(done);
    return done != NULL;
}

/* ------------------------------------------------------------ objects */

/* The value under KEY in a state dict, or SK_PK_NIL. */
static uint32_t state_item(const struct sk_pickle *p, const struct sk_pk_value *state,
                           const char *key)
{
    uint32_t found = SK_PK_NIL;
    for (uint32_t i = 0; i + 1 < state->u.items.count; i += 2) {
        const struct sk_pk_value *k = sk_pickle_value(p, state->u.items.items[i]);
        if (k && k->kind == SK_PK_STR && sk_pk_text_is(k->u.s.text, key))
            found = state->u.items.items[i + 1]; /* the last one wins, as in a dict */
    }
    return found;
}

static json_t *object_content(struct mapper *mp, const struct sk_pk_value *call)
{
    const struct sk_pk_value *state = sk_pickle_value(mp->p, call->u.call.state);
    if (!state || state->kind == SK_PK_NONE) {
        json_t *j = node("str", "builtins", "JsonNode");
        j = put(mp, j, "content", json_string("null"));
        j = put(mp, j, "is_json", json_true());
        return with_id(mp, j, ID_NONE);
    }
    /* scikit-learn's __getstate__ gives a new dict each time (it adds
     * _sklearn_version): a fresh id; object's gives the instance's own
     * __dict__, one id however often the object is written. */
    if (state->kind == SK_PK_DICT) {
        bool copied = state_item(mp->p, state, "_sklearn_version") != SK_PK_NIL;
        return dict_node(mp, "dict", "builtins", &state->u.items,
                         copied ? fresh_id(mp) : id_of(mp, call->u.call.state), call->u.call.state);
    }
    if (state->kind == SK_PK_TUPLE && state->u.items.count)
        return sequence_node(mp, "tuple", "TupleNode", &state->u.items, fresh_id(mp));
    return state_of(mp, call->u.call.state);
}

static json_t *object_node(struct mapper *mp, uint32_t index, const struct sk_pk_value *cls,
                           const struct sk_pk_value *call)
{
    const struct sk_pk_value *state = sk_pickle_value(mp->p, call->u.call.state);
    if (call->u.call.builds > 1 || call->u.call.list_items.count ||
        (state && state->kind != SK_PK_DICT && state->kind != SK_PK_TUPLE))
        return unrepresentable(mp, index, cls, "an object whose state skops cannot write");
    if (call->u.call.dict_items.count) {
        /* a dict subclass (Bunch): skops writes its items, not a state */
        if (state && (state->kind != SK_PK_DICT || state->u.items.count))
            return unrepresentable(mp, index, cls, "a dict subclass with attributes");
        json_t *d =
            dict_node(mp, "dict", "builtins", &call->u.call.dict_items, id_of(mp, index), index);
        if (d) {
            json_object_set_new(d, "__class__",
                                json_stringn(cls->u.s.text2.bytes, cls->u.s.text2.length));
            json_object_set_new(d, "__module__",
                                json_stringn(cls->u.s.text.bytes, cls->u.s.text.length));
        }
        return d;
    }
    if (memchr(cls->u.s.text2.bytes, '.', cls->u.s.text2.length))
        return unrepresentable(mp, index, cls, "a dotted class name");
    json_t *n = node_n(cls->u.s.text2, cls->u.s.text, "ObjectNode");
    n = put(mp, n, "content", object_content(mp, call));
    return with_id(mp, n, id_of(mp, index));
}

/* What scipy's save_npz (which skops calls) writes for each format: the
 * arrays of the matrix's state it names, then format, shape and data. */
struct sparse_format {
    const char *class_name;
    const char *index_keys[2]; /* state keys, also the part names */
    unsigned index_count;
};

static const struct sparse_format sparse_formats[] = {
    {"csr_matrix", {"indices", "indptr"}, 2}, {"csc_matrix", {"indices", "indptr"}, 2},
    {"bsr_matrix", {"indices", "indptr"}, 2}, {"coo_matrix", {"row", "col"}, 2},
    {"dia_matrix", {"offsets", NULL}, 1},
};

static const struct sparse_format *sparse_format_of(struct sk_pk_text name)
{
    for (size_t i = 0; i < sizeof sparse_formats / sizeof sparse_formats[0]; i++)
        if (sk_pk_text_is(name, sparse_formats[i].class_name))
            return &sparse_formats[i];
    return NULL;
}

/* format.npy: the format's three letters as numpy's |S3 scalar. */
static bool format_part(struct sk_pickle_member *part, const char *format)
{
    part->name = strdup("format.npy");
    part->is_npy = true;
    part->descr = strdup("|S3");
    part->kind = SK_PICKLE_MEMBER_BYTES;
    part->bytes = (unsigned char *)strndup(format, 3);
    part->bytes_length = 3;
    part->item_size = 3;
    return part->name && part->descr && part->bytes;
}

/* shape.npy: the matrix's two dimensions as an int64 array. */
static bool shape_part(const struct sk_pickle *p, struct sk_pickle_member *part, uint32_t index)
{
    const struct sk_pk_value *shape = sk_pickle_value(p, index);
    if (!shape || shape->kind != SK_PK_TUPLE || shape->u.items.count != 2)
        return false;
    part->name = strdup("shape.npy");
    part->is_npy = true;
    part->descr = strdup("<i8");
    part->kind = SK_PICKLE_MEMBER_BYTES;
    part->ndim = 1;
    part->shape = calloc(1, sizeof *part->shape);
    part->bytes = malloc(16);
    part->bytes_length = 16;
    part->item_size = 8;
    if (!part->name || !part->descr || !part->shape || !part->bytes)
        return false;
    part->shape[0] = 2;
    for (unsigned d = 0; d < 2; d++) {
        const struct sk_pk_value *dim = sk_pickle_value(p, shape->u.items.items[d]);
        int64_t x = dim && dim->kind == SK_PK_INT ? dim->u.integer : -1;
        if (x < 0)
            return false;
        for (unsigned b = 0; b < 8; b++)
            part->bytes[d * 8 + b] = (unsigned char)((uint64_t)x >> (8 * b));
    }
    return true;
}

static bool sparse_parts(struct mapper *mp, const struct sparse_format *format,
                         const char *format_name, const struct sk_pk_value *state,
                         struct sk_pickle_member *parts)
{
    unsigned n = 0;
    for (unsigned k = 0; k < format->index_count; k++, n++) {
        char part_name[16];
        snprintf(part_name, sizeof part_name, "%s.npy", format->index_keys[k]);
        uint32_t value = state_item(mp->p, state, format->index_keys[k]);
        if (value == SK_PK_NIL || !array_part(mp, value, &parts[n], part_name))
            return false;
    }
    uint32_t data = state_item(mp->p, state, "data");
    return format_part(&parts[n], format_name) &&
           shape_part(mp->p, &parts[n + 1], state_item(mp->p, state, "_shape")) &&
           data != SK_PK_NIL && array_part(mp, data, &parts[n + 2], "data.npy");
}

static json_t *sparse_node(struct mapper *mp, uint32_t index, const struct sk_pk_value *cls,
                           const struct sk_pk_value *call)
{
    const struct sk_pk_value *state = sk_pickle_value(mp->p, call->u.call.state);
    const struct sk_pk_text name = cls->u.s.text2;
    const struct sparse_format *format = sparse_format_of(name);
    if (!format || call->u.call.builds != 1 || !state || state->kind != SK_PK_DICT)
        return unrepresentable(mp, index, cls, "a sparse matrix skops cannot write");
    unsigned count = format->index_count + 3;
    struct sk_pickle_member *parts = calloc(count, sizeof *parts);
    if (!parts || !sparse_parts(mp, format, name.bytes, state, parts)) {
        for (unsigned i = 0; parts && i < count; i++)
            member_clear(&parts[i]);
        free(parts);
        return mp->failed ? NULL
                          : unrepresentable(mp, index, cls, "a sparse matrix with unknown state");
    }
    struct sk_pickle_member *m = new_member(mp, ".npz");
    if (!m) {
        for (unsigned i = 0; i < count; i++)
            member_clear(&parts[i]);
        free(parts);
        return NULL;
    }
    m->parts = parts;
    m->part_count = count;
    json_t *n = node_n(name, cls->u.s.text, "SparseMatrixNode");
    n = put(mp, n, "type", json_string("scipy"));
    n = put(mp, n, "file", json_string(m->name));
    return with_id(mp, n, id_of(mp, index));
}

static json_t *reduce_args_object(struct mapper *mp, uint32_t args)
{
    json_t *r = json_object();
    return put(mp, r, "args", state_of(mp, args));
}

static json_t *empty_dict_node(struct mapper *mp)
{
    struct sk_pk_vector none = {0};
    return dict_node(mp, "dict", "builtins", &none, fresh_id(mp), SK_PK_NIL);
}

static json_t *tree_node(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    const struct sk_pk_value *args = sk_pickle_value(mp->p, call->u.call.args);
    const struct sk_pk_value *state = sk_pickle_value(mp->p, call->u.call.state);
    if (!args || args->kind != SK_PK_TUPLE || args->u.items.count != 3 ||
        call->u.call.builds != 1 || !state || state->kind != SK_PK_DICT)
        return unrepresentable(mp, index, sk_pickle_value(mp->p, call->u.call.func),
                               "a Tree whose arguments or state skops cannot write");
    json_t *n = node("Tree", "sklearn.tree._tree", NULL);
    n = put(mp, n, "__reduce__", reduce_args_object(mp, call->u.call.args));
    n = put(mp, n, "content",
            dict_node(mp, "dict", "builtins", &state->u.items, fresh_id(mp), call->u.call.state));
    n = put(mp, n, "__loader__", json_string("TreeNode"));
    return with_id(mp, n, id_of(mp, index));
}

/* sklearn.linear_model._sgd_fast.<Loss>(args), no BUILD. */
static json_t *sgd_loss_node(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    const struct sk_pk_value *f = sk_pickle_value(mp->p, call->u.call.func);
    const struct sk_pk_value *args = sk_pickle_value(mp->p, call->u.call.args);
    if (!args || args->kind != SK_PK_TUPLE || call->u.call.builds)
        return unrepresentable(mp, index, f, "an SGD loss with a state");
    json_t *n = node_n(f->u.s.text2, f->u.s.text, NULL);
    n = put(mp, n, "__reduce__", reduce_args_object(mp, call->u.call.args));
    n = put(mp, n, "content", empty_dict_node(mp));
    n = put(mp, n, "__loader__", json_string("LossNode"));
    return with_id(mp, n, id_of(mp, index));
}

/* Cython's generated reduce: __pyx_unpickle_X(X, checksum, state) for an
 * sklearn loss X. */
static json_t *pyx_loss_node(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    const struct sk_pickle *p = mp->p;
    const struct sk_pk_value *f = sk_pickle_value(p, call->u.call.func);
    const struct sk_pk_value *args = sk_pickle_value(p, call->u.call.args);
    const struct sk_pk_value *cls = arg(p, call, 0, 3), *checksum = arg(p, call, 1, 3);
    const char *prefix = "__pyx_unpickle_";
    size_t prefix_length = strlen(prefix);
    bool loss_module =
        f->u.s.text.length >= 14 && (memcmp(f->u.s.text.bytes, "sklearn._loss.", 14) == 0 ||
                                     sk_pk_text_is(f->u.s.text, "sklearn.linear_model._sgd_fast"));
    if (!loss_module || !is_bare_global(cls) || !checksum || checksum->kind != SK_PK_INT ||
        cls->u.s.text.length != f->u.s.text.length ||
        memcmp(cls->u.s.text.bytes, f->u.s.text.bytes, f->u.s.text.length) != 0 ||
        f->u.s.text2.length != prefix_length + cls->u.s.text2.length ||
        memcmp(f->u.s.text2.bytes + prefix_length, cls->u.s.text2.bytes, cls->u.s.text2.length) !=
            0 ||
        call->u.call.builds > 1)
        return unrepresentable(mp, index, f, "a Cython reduce skops cannot write");
    json_t *n = node_n(cls->u.s.text2, cls->u.s.text, "LossNode");
    json_t *reduce = json_object();
    if (call->u.call.state == SK_PK_NIL) {
        reduce = put(mp, reduce, "args", state_of(mp, args->u.items.items[2]));
        n = put(mp, n, "__reduce__", reduce);
        n = put(mp, n, "content", empty_dict_node(mp));
    } else {
        json_t *empty = node("tuple", "builtins", "TupleNode");
        empty = put(mp, empty, "content", json_array());
        reduce = put(mp, reduce, "args", with_id(mp, empty, ID_EMPTY_TUPLE));
        n = put(mp, n, "__reduce__", reduce);
        n = put(mp, n, "content", state_of(mp, call->u.call.state));
    }
    return with_id(mp, n, id_of(mp, index));
}

static json_t *dtype_node(struct mapper *mp, uint32_t index)
{
    struct array_spec spec = {0};
    struct sk_error dtype_err = {0};
    if (sk_pk_dtype_read(mp->p, index, &spec.dtype, &dtype_err) != 0)
        return unrepresentable(mp, index, NULL, dtype_err.message);
    spec.ndim = 1;
    spec.shape = calloc(1, sizeof *spec.shape);
    struct sk_pickle_member source = {.kind = SK_PICKLE_MEMBER_BYTES};
    json_t *empty =
        spec.shape ? npy_member(mp, &spec, &source, "ndarray", fresh_id(mp), NULL) : NULL;
    spec_free(&spec);
    json_t *n = node("dtype", "numpy", "DTypeNode");
    n = put(mp, n, "content", empty);
    return with_id(mp, n, id_of(mp, index));
}

static json_t *partial_node(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    const struct sk_pickle *p = mp->p;
    const struct sk_pk_value *state = sk_pickle_value(p, call->u.call.state);
    if (call->u.call.builds != 1 || !state || state->kind != SK_PK_TUPLE ||
        state->u.items.count != 4)
        return unrepresentable(mp, index, sk_pickle_value(p, call->u.call.func),
                               "a partial whose state skops cannot write");
    static const char *const keys[] = {"func", "args", "kwds", "namespace"};
    json_t *content = json_object();
    for (unsigned i = 0; i < 4; i++) {
        uint32_t item = state->u.items.items[i];
        const struct sk_pk_value *v = sk_pickle_value(p, item);
        json_t *s = (i == 2 && v->kind == SK_PK_NONE) ? empty_dict_node(mp) : state_of(mp, item);
        content = put(mp, content, keys[i], s);
    }
    json_t *n = node("partial", "functools", "PartialNode");
    n = put(mp, n, "content", content);
    return with_id(mp, n, id_of(mp, index));
}

static json_t *slice_node(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    const struct sk_pk_value *args = sk_pickle_value(mp->p, call->u.call.args);
    if (!args || args->kind != SK_PK_TUPLE || args->u.items.count < 1 || args->u.items.count > 3 ||
        call->u.call.builds)
        return unrepresentable(mp, index, NULL, "a slice skops cannot write");
    static const char *const keys[] = {"start", "stop", "step"};
    uint32_t n_args = args->u.items.count;
    json_t *content = json_object();
    for (unsigned i = 0; i < 3; i++) {
        /* slice(stop) and slice(start, stop[, step]) */
        int source = n_args == 1 ? (i == 1 ? 0 : -1) : (i < n_args ? (int)i : -1);
        const struct sk_pk_value *v =
            source < 0 ? NULL : sk_pickle_value(mp->p, args->u.items.items[source]);
        json_t *j;
        if (!v || v->kind == SK_PK_NONE)
            j = json_null();
        else if (v->kind == SK_PK_INT)
            j = json_integer(v->u.integer);
        else {
            json_decref(content);
            return unrepresentable(mp, index, NULL, "a slice of something other than ints");
        }
        content = put(mp, content, keys[i], j);
    }
    json_t *n = node("slice", "builtins", "SliceNode");
    n = put(mp, n, "content", content);
    return with_id(mp, n, id_of(mp, index));
}

static json_t *defaultdict_node(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    const struct sk_pk_value *args = sk_pickle_value(mp->p, call->u.call.args);
    if (!args || args->kind != SK_PK_TUPLE || args->u.items.count > 1 || call->u.call.builds ||
        call->u.call.list_items.count)
        return unrepresentable(mp, index, sk_pickle_value(mp->p, call->u.call.func),
                               "a defaultdict skops cannot write");
    json_t *content = json_object();
    content = put(mp, content, "main",
                  dict_node(mp, "dict", "builtins", &call->u.call.dict_items, fresh_id(mp), index));
    json_t *factory;
    if (args->u.items.count)
        factory = state_of(mp, args->u.items.items[0]);
    else {
        factory = node("str", "builtins", "JsonNode");
        factory = put(mp, factory, "content", json_string("null"));
        factory = put(mp, factory, "is_json", json_true());
        factory = with_id(mp, factory, ID_NONE);
    }
    content = put(mp, content, "default_factory", factory);
    const struct sk_pk_value *f = sk_pickle_value(mp->p, call->u.call.func);
    json_t *n = node_n(f->u.s.text2, f->u.s.text, "DefaultDictNode");
    n = put(mp, n, "content", content);
    return with_id(mp, n, id_of(mp, index));
}

static json_t *random_state_node(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    const struct sk_pickle *p = mp->p;
    const struct sk_pk_value *args = sk_pickle_value(p, call->u.call.args);
    const struct sk_pk_value *state = sk_pickle_value(p, call->u.call.state);
    const struct sk_pk_value *name = args && args->kind == SK_PK_TUPLE && args->u.items.count >= 1
                                         ? sk_pickle_value(p, args->u.items.items[0])
                                         : NULL;
    if (!name || name->kind != SK_PK_STR || !sk_pk_text_is(name->u.s.text, "MT19937") ||
        args->u.items.count > 2 || call->u.call.builds != 1 || !state || state->kind != SK_PK_DICT)
        return unrepresentable(mp, index, sk_pickle_value(p, call->u.call.func),
                               "a random generator skops cannot write");
    json_t *n = node("RandomState", "numpy.random.mtrand", "RandomStateNode");
    n = put(mp, n, "content",
            dict_node(mp, "dict", "builtins", &state->u.items, fresh_id(mp), call->u.call.state));
    return with_id(mp, n, id_of(mp, index));
}

static json_t *set_call_node(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    const struct sk_pk_value *args = sk_pickle_value(mp->p, call->u.call.args);
    const struct sk_pk_value *items = arg(mp->p, call, 0, 1);
    if (args && args->kind == SK_PK_TUPLE && args->u.items.count == 0 && !call->u.call.builds) {
        struct sk_pk_vector none = {0};
        return sequence_node(mp, "set", "SetNode", &none, id_of(mp, index));
    }
    if (!items || items->kind != SK_PK_LIST || call->u.call.builds)
        return unrepresentable(mp, index, NULL, "a set skops cannot write");
    return sequence_node(mp, "set", "SetNode", &items->u.items, id_of(mp, index));
}

/* type(None): how a pickle names NoneType. */
static json_t *type_call_node(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    const struct sk_pk_value *none = arg(mp->p, call, 0, 1);
    if (!none || none->kind != SK_PK_NONE || call->u.call.builds)
        return unrepresentable(mp, index, sk_pickle_value(mp->p, call->u.call.func),
                               "a call of type() skops cannot represent");
    return with_id(mp, node("NoneType", "builtins", "TypeNode"),
                   named_type_id(mp, "builtins", "NoneType"));
}

static bool plain_args(const struct sk_pickle *p, const struct sk_pk_value *call)
{
    const struct sk_pk_value *args = sk_pickle_value(p, call->u.call.args);
    return args && args->kind == SK_PK_TUPLE && !call->u.call.builds &&
           !call->u.call.list_items.count && !call->u.call.dict_items.count;
}

/* range, Decimal: skops writes their __reduce__ arguments. */
static json_t *constructor_node(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    const struct sk_pk_value *f = sk_pickle_value(mp->p, call->u.call.func);
    if (!plain_args(mp->p, call))
        return unrepresentable(mp, index, f, "a constructor call with a state");
    const struct sk_pk_value *args = sk_pickle_value(mp->p, call->u.call.args);
    json_t *n = node_n(f->u.s.text2, f->u.s.text, "ConstructorFromReduceNode");
    n = put(mp, n, "content",
            sequence_node(mp, "tuple", "TupleNode", &args->u.items, fresh_id(mp)));
    return with_id(mp, n, id_of(mp, index));
}

/* operator.itemgetter/attrgetter/methodcaller(*attrs). */
static json_t *operator_node(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    const struct sk_pk_value *f = sk_pickle_value(mp->p, call->u.call.func);
    const struct sk_pk_value *args = sk_pickle_value(mp->p, call->u.call.args);
    if (!plain_args(mp->p, call) || !args->u.items.count)
        return unrepresentable(mp, index, f, "an operator function skops cannot write");
    for (uint32_t i = 0; i < args->u.items.count; i++) {
        const struct sk_pk_value *a = sk_pickle_value(mp->p, args->u.items.items[i]);
        if (a->kind != SK_PK_STR && a->kind != SK_PK_INT)
            return unrepresentable(mp, index, f, "an operator function of non-literal items");
    }
    json_t *n = node_n(f->u.s.text2, f->u.s.text, "OperatorFuncNode");
    n = put(mp, n, "attrs", sequence_node(mp, "tuple", "TupleNode", &args->u.items, fresh_id(mp)));
    return with_id(mp, n, id_of(mp, index));
}

/* sklearn's binary trees reduce to newObj(cls) + BUILD state. */
static json_t *new_obj_node(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    const struct sk_pk_value *f = sk_pickle_value(mp->p, call->u.call.func);
    const struct sk_pk_value *cls = arg(mp->p, call, 0, 1);
    if (!is_bare_global(cls) || cls->u.s.text.length != f->u.s.text.length ||
        memcmp(cls->u.s.text.bytes, f->u.s.text.bytes, f->u.s.text.length) != 0)
        return unrepresentable(mp, index, f, "newObj of a class from another module");
    return object_node(mp, index, cls, call);
}

static json_t *namedtuple_node(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    const struct sk_pk_value *f = sk_pickle_value(mp->p, call->u.call.func);
    if (!plain_args(mp->p, call))
        return unrepresentable(mp, index, f, "a namedtuple with a state");
    const struct sk_pk_value *args = sk_pickle_value(mp->p, call->u.call.args);
    json_t *n = node_n(f->u.s.text2, f->u.s.text, "TupleNode");
    n = put(mp, n, "content", items_array(mp, &args->u.items));
    return with_id(mp, n, id_of(mp, index));
}

/* A masked array's fill value is loaded (so it must be harmless) but skops
 * does not write it: a literal, bytes, or a numeric 0-d array is all numpy
 * writes there. */
static bool harmless_fill_value(struct mapper *mp, uint32_t index)
{
    const struct sk_pk_value *v = sk_pickle_value(mp->p, index);
    switch (v->kind) {
    case SK_PK_NONE:
    case SK_PK_BOOL:
    case SK_PK_INT:
    case SK_PK_BIGINT:
    case SK_PK_FLOAT:
    case SK_PK_STR:
    case SK_PK_BYTES:
        return true;
    default:
        break;
    }
    struct sk_pickle_member probe = {0};
    bool ok = array_part(mp, index, &probe, "fill_value.npy") || bytes_source(mp, index, &probe);
    member_clear(&probe);
    return ok;
}

/* The data of a masked array (state items 1-4): numeric bytes, or the
 * items of an object array; skops writes `obj.data`, a new view. */
static json_t *masked_data(struct mapper *mp, uint32_t index, const uint32_t *st)
{
    const struct sk_pickle *p = mp->p;
    const struct sk_pk_value *fortran = sk_pickle_value(p, st[3]);
    struct array_spec spec = {.native = true};
    struct sk_error dtype_err = {0};
    struct sk_pickle_member source = {0};
    json_t *result = NULL;
    if (fortran && fortran->kind == SK_PK_BOOL && read_shape(p, st[1], &spec) == 0 &&
        sk_pk_dtype_read(p, st[2], &spec.dtype, &dtype_err) == 0 && !spec.dtype.structured) {
        spec.fortran = fortran->u.boolean;
        if (spec.dtype.kind == 'O') {
            result = object_array(mp, index, &spec, sk_pickle_value(p, st[4]));
            if (result && json_object_set_new(result, "__id__", json_integer(fresh_id(mp))) != 0)
                mp->failed = true;
        } else if (bytes_source(mp, st[4], &source)) {
            result = npy_member(mp, &spec, &source, "ndarray", fresh_id(mp), NULL);
        }
    }
    free(source.bytes);
    spec_free(&spec);
    return result;
}

/* The mask (state items 1, 3 and 5): numpy writes getmaskarray(), one
 * bool per element, whatever the data's dtype. */
static json_t *masked_mask(struct mapper *mp, const uint32_t *st)
{
    const struct sk_pickle *p = mp->p;
    const struct sk_pk_value *fortran = sk_pickle_value(p, st[3]);
    struct array_spec spec = {.native = true};
    struct sk_pickle_member source = {0};
    json_t *result = NULL;
    spec.dtype.descr = strdup("|b1");
    spec.dtype.kind = 'b';
    spec.dtype.endian = '|';
    spec.dtype.item_size = 1;
    if (spec.dtype.descr && fortran && fortran->kind == SK_PK_BOOL &&
        read_shape(p, st[1], &spec) == 0 && bytes_source(mp, st[5], &source)) {
        spec.fortran = fortran->u.boolean;
        result = npy_member(mp, &spec, &source, "ndarray", fresh_id(mp), NULL);
    }
    free(source.bytes);
    spec_free(&spec);
    return result;
}

/* numpy.ma.core._mareconstruct(MaskedArray, ndarray, (0,), 'b') + BUILD
 * (1, shape, dtype, is_fortran, data, mask, fill_value): skops writes the
 * data (numeric, or the items of an object array) and the full-shaped
 * boolean mask as two arrays. */
static json_t *masked_array_node(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    const struct sk_pickle *p = mp->p;
    const struct sk_pk_value *f = sk_pickle_value(p, call->u.call.func);
    const struct sk_pk_value *args = sk_pickle_value(p, call->u.call.args);
    const struct sk_pk_value *state = sk_pickle_value(p, call->u.call.state);
    const struct sk_pk_value *b = arg(p, call, 3, 4);
    if (!args || args->kind != SK_PK_TUPLE || args->u.items.count != 4 ||
        !sk_pickle_is_global(p, args->u.items.items[0], "numpy.ma.core", "MaskedArray") ||
        !sk_pickle_is_global(p, args->u.items.items[1], "numpy", "ndarray") ||
        !is_zero_tuple(p, arg(p, call, 2, 4)) || !b || b->kind != SK_PK_STR ||
        !sk_pk_text_is(b->u.s.text, "b") || call->u.call.list_items.count ||
        call->u.call.dict_items.count || call->u.call.builds != 1 || !state ||
        state->kind != SK_PK_TUPLE || state->u.items.count != 7)
        return unrepresentable(mp, index, f, "a masked array skops cannot write");
    const uint32_t *st = state->u.items.items;
    const struct sk_pk_value *version = sk_pickle_value(p, st[0]);
    if (!version || version->kind != SK_PK_INT || version->u.integer != 1 ||
        !harmless_fill_value(mp, st[6])) {
        report_globals(mp, st[6], 0); /* a call hidden in the fill value */
        return mp->failed ? NULL
                          : unrepresentable(mp, index, f,
                                            "a masked array whose state or fill value skops "
                                            "cannot write");
    }
    json_t *data = masked_data(mp, index, st);
    json_t *mask = data ? masked_mask(mp, st) : NULL;
    if (!data || !mask) {
        json_decref(data);
        return mp->failed ? NULL
                          : unrepresentable(mp, index, f, "a masked array skops cannot write");
    }
    json_t *content = json_object();
    content = put(mp, content, "data", data);
    content = put(mp, content, "mask", mask);
    json_t *n = node("MaskedArray", "numpy.ma.core", "MaskedArrayNode");
    n = put(mp, n, "content", content);
    return with_id(mp, n, id_of(mp, index));
}

/* A call no recognizer accepts. Arguments that are globals are named too:
 * getattr(module_global, ...). */
static json_t *refused_call(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    const struct sk_pk_value *f = sk_pickle_value(mp->p, call->u.call.func);
    const struct sk_pk_value *args = sk_pickle_value(mp->p, call->u.call.args);
    for (uint32_t i = 0; args && args->kind == SK_PK_TUPLE && i < args->u.items.count; i++) {
        const struct sk_pk_value *a = sk_pickle_value(mp->p, args->u.items.items[i]);
        if (is_bare_global(a))
            finding(mp, a, a->offset, "a global passed to an unrepresentable call");
    }
    return unrepresentable(mp, index, f, "a call skops cannot represent (it would run code)");
}

static bool is_identifier(struct sk_pk_text t)
{
    if (!t.length || (t.bytes[0] >= '0' && t.bytes[0] <= '9'))
        return false;
    for (uint64_t i = 0; i < t.length; i++) {
        char c = t.bytes[i];
        if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

/* A bound method pickles as getattr(instance, name): skops writes a
 * MethodNode of the instance's state and the function's name. Only that
 * shape: an instance (an ObjectNode, never a module or class, which would
 * be the getattr gadget) and a plain, non-dunder name. skops names the
 * method's module by the function's; a pickle only knows the instance's
 * class, which is what skops's loader requires them to equal. */
static json_t *method_node(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    const struct sk_pickle *p = mp->p;
    const struct sk_pk_value *owner = arg(p, call, 0, 2), *name = arg(p, call, 1, 2);
    if (!plain_args(p, call) || !owner || owner->kind != SK_PK_CALL || !name ||
        name->kind != SK_PK_STR || !is_identifier(name->u.s.text) ||
        (name->u.s.text.length >= 2 && name->u.s.text.bytes[0] == '_' &&
         name->u.s.text.bytes[1] == '_'))
        return refused_call(mp, index, call);
    json_t *obj = state_of(mp, sk_pickle_value(p, call->u.call.args)->u.items.items[0]);
    const char *loader = json_string_value(json_object_get(obj, "__loader__"));
    if (!obj || !loader || strcmp(loader, "ObjectNode") != 0) {
        json_decref(obj);
        return mp->failed ? NULL
                          : unrepresentable(mp, index, sk_pickle_value(p, call->u.call.func),
                                            "getattr of something that is not an instance");
    }
    json_t *n = node(json_string_value(json_object_get(obj, "__class__")),
                     json_string_value(json_object_get(obj, "__module__")), "MethodNode");
    json_t *content = json_object();
    content = put(mp, content, "func", json_stringn(name->u.s.text.bytes, name->u.s.text.length));
    content = put(mp, content, "obj", obj);
    n = put(mp, n, "content", content);
    return with_id(mp, n, id_of(mp, index));
}

typedef json_t *(*call_mapper)(struct mapper *, uint32_t, const struct sk_pk_value *);

static json_t *bytes_call(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    (void)call;
    return bytes_node(mp, index, false);
}

static json_t *bytearray_call(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    (void)call;
    return bytes_node(mp, index, true);
}

static json_t *reconstruct_call(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    return reconstruct_node(mp, index, call, "ndarray", NULL);
}

static json_t *frombuffer_call(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    return frombuffer_node(mp, index, call, NULL);
}

static json_t *dtype_call(struct mapper *mp, uint32_t index, const struct sk_pk_value *call)
{
    (void)call;
    return dtype_node(mp, index);
}

/* REDUCE callables with a skops node, every spelling a release writes. */
static const struct {
    const char *module, *name;
    call_mapper map;
} reducers[] = {
    {"numpy.core.multiarray", "_reconstruct", reconstruct_call},
    {"numpy._core.multiarray", "_reconstruct", reconstruct_call},
    {"numpy.core.numeric", "_frombuffer", frombuffer_call},
    {"numpy._core.numeric", "_frombuffer", frombuffer_call},
    {"numpy.core.multiarray", "scalar", scalar_node},
    {"numpy._core.multiarray", "scalar", scalar_node},
    {"numpy", "dtype", dtype_call},
    {"functools", "partial", partial_node},
    {"builtins", "slice", slice_node},
    {"builtins", "set", set_call_node},
    {"builtins", "bytes", bytes_call},
    {"_codecs", "encode", bytes_call},
    {"builtins", "bytearray", bytearray_call},
    {"collections", "defaultdict", defaultdict_node},
    {"numpy.random._pickle", "__randomstate_ctor", random_state_node},
    {"sklearn.tree._tree", "Tree", tree_node},
    {"builtins", "type", type_call_node},
    {"builtins", "range", constructor_node},
    {"decimal", "Decimal", constructor_node},
    {"operator", "itemgetter", operator_node},
    {"operator", "attrgetter", operator_node},
    {"operator", "methodcaller", operator_node},
    {"builtins", "getattr", method_node},
    {"sklearn.neighbors._kd_tree", "newObj", new_obj_node},
    {"sklearn.neighbors._ball_tree", "newObj", new_obj_node},
    {"sklearn.metrics._dist_metrics", "newObj", new_obj_node},
    {"numpy.ma.core", "_mareconstruct", masked_array_node},
    /* namedtuples reduce to cls(*fields) */
    {"sklearn.impute._iterative", "_ImputerTriplet", namedtuple_node},
};

/* Objects skops accepts but writes wrong, or cannot write: never mapped,
 * so that neither the audit nor a conversion pretends skops keeps them. */
static const struct {
    const char *module, *name, *reason;
} lossy_calls[] = {
    {"builtins", "frozenset",
     "a frozenset: skops writes a node that loads as an empty one (its items would be lost)"},
    {"builtins", "complex", "a complex number: skops cannot write one"},
    {"numpy.random._pickle", "__generator_ctor",
     "numpy's Generator: skops fails to write one on numpy < 1.25, and needs a seed sequence a "
     "pickle may not hold"},
};

static bool is_class_name(const struct sk_pk_value *g)
{
    return g->u.s.text2.length && g->u.s.text2.bytes[0] >= 'A' && g->u.s.text2.bytes[0] <= 'Z';
}

/* Every global a call chain (getattr(module, 'system')('id')) involves. */
static void report_globals(struct mapper *mp, uint32_t index, unsigned depth)
{
    const struct sk_pk_value *v = sk_pickle_value(mp->p, index);
    if (!v || depth > 16)
        return;
    if (v->kind == SK_PK_GLOBAL) {
        finding(mp, v, v->offset, "a global in a call chain skops cannot represent");
    } else if (v->kind == SK_PK_CALL) {
        report_globals(mp, v->u.call.func, depth + 1);
        report_globals(mp, v->u.call.args, depth + 1);
    } else if (v->kind == SK_PK_TUPLE) {
        for (uint32_t i = 0; i < v->u.items.count && i < 16; i++)
            report_globals(mp, v->u.items.items[i], depth + 1);
    }
}

static json_t *call_node(struct mapper *mp, uint32_t index)
{
    const struct sk_pickle *p = mp->p;
    const struct sk_pk_value *call = sk_pickle_value(p, index);
    const struct sk_pk_value *f = sk_pickle_value(p, call->u.call.func);
    const struct sk_pk_value *args = sk_pickle_value(p, call->u.call.args);
    if (!is_bare_global(f)) {
        report_globals(mp, call->u.call.func, 0);
        report_globals(mp, call->u.call.args, 0);
        return unrepresentable(mp, index, NULL, "a call of something that is not a global");
    }
    for (size_t i = 0; i < sizeof lossy_calls / sizeof lossy_calls[0]; i++)
        if (sk_pickle_is_global(p, call->u.call.func, lossy_calls[i].module, lossy_calls[i].name))
            return unrepresentable(mp, index, f, lossy_calls[i].reason);
    if (call->u.call.kind == SK_PK_REDUCE) {
        for (size_t i = 0; i < sizeof reducers / sizeof reducers[0]; i++)
            if (sk_pickle_is_global(p, call->u.call.func, reducers[i].module, reducers[i].name))
                return reducers[i].map(mp, index, call);
        if (sk_pk_text_is(f->u.s.text, "sklearn.linear_model._sgd_fast") &&
            !(f->u.s.text2.length > 15 && memcmp(f->u.s.text2.bytes, "__pyx_unpickle_", 15) == 0))
            return sgd_loss_node(mp, index, call);
        if (f->u.s.text2.length > 15 && memcmp(f->u.s.text2.bytes, "__pyx_unpickle_", 15) == 0)
            return pyx_loss_node(mp, index, call);
        const struct sk_pk_value *cls = arg(p, call, 0, 3), *base = arg(p, call, 1, 3),
                                 *none = arg(p, call, 2, 3);
        if (sk_pickle_is_global(p, call->u.call.func, "copyreg", "_reconstructor") &&
            is_bare_global(cls) && base &&
            sk_pickle_is_global(p, args->u.items.items[1], "builtins", "object") && none &&
            none->kind == SK_PK_NONE)
            return object_node(mp, index, cls, call);
        if (is_class_name(f) && args && args->kind == SK_PK_TUPLE && args->u.items.count <= 1 &&
            !call->u.call.builds && !call->u.call.list_items.count && call->u.call.dict_items.count)
            return defaultdict_node(mp, index, call); /* a defaultdict subclass */
    } else if (call->u.call.kind == SK_PK_NEWOBJ &&
               sk_pickle_is_global(p, call->u.call.func, "sklearn.impute._iterative",
                                   "_ImputerTriplet")) {
        return namedtuple_node(mp, index, call);
    } else if (call->u.call.kind == SK_PK_NEWOBJ && args && args->kind == SK_PK_TUPLE &&
               args->u.items.count == 0) {
        if (f->u.s.text.length > 13 && memcmp(f->u.s.text.bytes, "scipy.sparse.", 13) == 0)
            return sparse_node(mp, index, f, call);
        return object_node(mp, index, f, call);
    }
    return refused_call(mp, index, call);
}

/* ------------------------------------------------------------ dispatch */

static json_t *build_state(struct mapper *mp, uint32_t index)
{
    const struct sk_pk_value *v = sk_pickle_value(mp->p, index);
    switch (v->kind) {
    case SK_PK_NONE:
    case SK_PK_BOOL:
    case SK_PK_INT:
    case SK_PK_BIGINT:
    case SK_PK_FLOAT:
    case SK_PK_STR:
        return json_node(mp, index);
    case SK_PK_BYTES:
        return bytes_node(mp, index, false);
    case SK_PK_BYTEARRAY:
        return bytes_node(mp, index, true);
    case SK_PK_TUPLE:
        return sequence_node(mp, "tuple", "TupleNode", &v->u.items, id_of(mp, index));
    case SK_PK_LIST:
        return sequence_node(mp, "list", "ListNode", &v->u.items, id_of(mp, index));
    case SK_PK_SET:
        return sequence_node(mp, "set", "SetNode", &v->u.items, id_of(mp, index));
    case SK_PK_FROZENSET:
        return unrepresentable(mp, index, NULL, lossy_calls[0].reason);
    case SK_PK_DICT:
        return dict_node(mp, "dict", "builtins", &v->u.items, id_of(mp, index), index);
    case SK_PK_GLOBAL:
        return global_node(mp, index);
    case SK_PK_CALL:
        return call_node(mp, index);
    case SK_PK_JOBLIB_ARRAY:
        return joblib_array_node(mp, index, NULL);
    case SK_PK_OPAQUE:
        return unrepresentable(mp, index, NULL, v->u.s.text.bytes);
    }
    return unrepresentable(mp, index, NULL, "an unknown value");
}

/* Values whose node differs per reference (a new member name each time). */
static bool per_reference(const struct sk_pk_value *v)
{
    return v->kind == SK_PK_BYTES || v->kind == SK_PK_BYTEARRAY;
}

/* Nodes whose values their object makes anew each time skops writes it
 * (Tree.__reduce__ and __getstate__ copy theirs out of C memory). */
static bool makes_values_anew(const char *loader)
{
    return loader && !strcmp(loader, "TreeNode");
}

/* An id of a pickled value (not of a global, a cached constant or a
 * write-time object). */
static bool is_value_id(json_int_t id)
{
    return id >= ID_VALUES && id < ID_GLOBALS;
}

/* skops writes a full copy for each reference of a shared object: the
 * objects it makes while writing (state dicts, key_types lists, a Tree's
 * values when MADE_ANEW) are new each time, so their ids are too, and
 * bytes get a new member each time. */
static json_t *skops_copy(struct mapper *mp, json_t *value, unsigned depth, bool made_anew)
{
    if (++mp->nodes > SK_MAX_NODES || depth > 2 * SK_MAX_NODE_DEPTH) {
        if (!mp->failed)
            sk_fail(mp->err, "pickle: copies of shared objects exceed SK_MAX_NODES (%u)",
                    SK_MAX_NODES);
        mp->failed = true;
        return NULL;
    }
    if (json_is_array(value)) {
        json_t *copy = json_array();
        size_t i;
        json_t *item;
        json_array_foreach(value, i, item)
        {
            json_t *c = skops_copy(mp, item, depth + 1, made_anew);
            if (!c || !copy || json_array_append_new(copy, c) != 0) {
                json_decref(copy);
                mp->failed = true;
                return NULL;
            }
        }
        return copy;
    }
    if (!json_is_object(value))
        return json_incref(value);
    json_t *copy = json_object();
    const char *key;
    json_t *item;
    const char *loader = json_string_value(json_object_get(value, "__loader__"));
    bool bytes = (made_anew && loader && !strcmp(loader, "NdArrayNode")) ||
                 (loader && (!strcmp(loader, "BytesNode") || !strcmp(loader, "BytearrayNode")));
    json_object_foreach(value, key, item)
    {
        json_t *c;
        if (!strcmp(key, "__id__") && (json_integer_value(item) > ID_FRESH ||
                                       (made_anew && is_value_id(json_integer_value(item)))))
            c = json_integer(fresh_id(mp));
        else if (!strcmp(key, "file") && bytes)
            c = copy_member(mp, json_string_value(item));
        else
            c = skops_copy(mp, item, depth + 1, made_anew || makes_values_anew(loader));
        if (!c || !copy || json_object_set_new(copy, key, c) != 0) {
            json_decref(copy);
            mp->failed = true;
            return NULL;
        }
    }
    return copy;
}

/* The cycle stub: the back-reference's class and id, so the graph links. */
static json_t *cycle_stub(struct mapper *mp, uint32_t index)
{
    const struct sk_pk_value *v = sk_pickle_value(mp->p, index);
    mp->map->cyclic = true;
    json_t *n;
    const struct sk_pk_value *f =
        v->kind == SK_PK_CALL ? sk_pickle_value(mp->p, v->u.call.func) : NULL;
    if (f && is_bare_global(f))
        n = node_n(f->u.s.text2, f->u.s.text, "ObjectNode");
    else
        n = node(v->kind == SK_PK_DICT   ? "dict"
                 : v->kind == SK_PK_LIST ? "list"
                                         : "object",
                 "builtins",
                 v->kind == SK_PK_DICT   ? "DictNode"
                 : v->kind == SK_PK_LIST ? "ListNode"
                                         : "ObjectNode");
    return with_id(mp, n, id_of(mp, index));
}

static json_t *state_of(struct mapper *mp, uint32_t index)
{
    if (mp->failed)
        return NULL;
    const struct sk_pk_value *v = sk_pickle_value(mp->p, index);
    if (!v) {
        mp->failed = true;
        sk_fail(mp->err, "pickle: a value index out of range");
        return NULL;
    }
    if (mp->progress[index] == ACTIVE)
        return cycle_stub(mp, index);
    if (mp->progress[index] == DONE && mp->cache[index])
        return mp->skops_copies ? skops_copy(mp, mp->cache[index], 0, false)
                                : json_incref(mp->cache[index]);
    if (++mp->nodes > SK_MAX_NODES) {
        mp->failed = true;
        sk_fail(mp->err, "pickle: more than SK_MAX_NODES (%u) nodes", SK_MAX_NODES);
        return NULL;
    }
    if (mp->depth >= SK_MAX_NODE_DEPTH) {
        mp->failed = true;
        sk_fail(mp->err, "pickle: nesting deeper than SK_MAX_NODE_DEPTH (%u)", SK_MAX_NODE_DEPTH);
        return NULL;
    }
    mp->depth++;
    mp->progress[index] = ACTIVE;
    json_t *result = build_state(mp, index);
    mp->progress[index] = DONE;
    mp->depth--;
    if (result && !per_reference(v))
        mp->cache[index] = json_incref(result);
    return result;
}

int sk_pickle_map(const struct sk_pickle *p, const struct sk_pickle_map_options *options,
                  struct sk_pickle_map *map, struct sk_error *err)
{
    memset(map, 0, sizeof *map);
    struct mapper mp = {
        .p = p, .map = map, .err = err, .skops_copies = options && options->skops_copies};
    mp.cache = calloc(p->value_count + 1, sizeof *mp.cache);
    mp.progress = calloc(p->value_count + 1, 1);
    mp.global_ids = sk_strmap_new();
    if (!mp.cache || !mp.progress || !mp.global_ids) {
        sk_fail(err, "pickle: out of memory");
        mp.failed = true;
    }
    for (uint32_t i = 0; !mp.failed && i < p->finding_count; i++) {
        struct sk_pk_finding *f = &p->findings[i];
        finding(&mp, NULL, f->offset, "%s", f->what);
        if (!mp.failed && f->global) {
            struct sk_pickle_finding *last = &map->findings[map->finding_count - 1];
            free(last->global);
            last->global = strdup(f->global);
            if (!last->global)
                mp.failed = true;
        }
    }
    if (!mp.failed && p->root != SK_PK_NIL) {
        json_t *root = state_of(&mp, p->root);
        if (root && json_is_object(root)) {
            /* the root is written once: keep the cached copy untouched */
            json_t *copy = json_copy(root);
            json_decref(root);
            root = put(&mp, copy, "protocol", json_integer(2));
            root = put(&mp, root, "_skops_version", json_string(SK_PICKLE_SKOPS_VERSION));
        }
        map->schema = root;
    }
    for (uint32_t i = 0; mp.cache && i < p->value_count; i++)
        json_decref(mp.cache[i]);
    free(mp.cache);
    free(mp.progress);
    sk_strmap_free(mp.global_ids);
    return mp.failed ? -1 : 0;
}

void sk_pickle_map_free(struct sk_pickle_map *map)
{
    json_decref(map->schema);
    for (size_t i = 0; i < map->member_count; i++)
        member_clear(&map->members[i]);
    free(map->members);
    for (size_t i = 0; i < map->finding_count; i++) {
        free(map->findings[i].global);
        free(map->findings[i].reason);
    }
    free(map->findings);
    memset(map, 0, sizeof *map);
}
