/* The pickle machine (see pickle.h). The opcode set and each opcode's
 * argument encoding follow CPython's Lib/pickletools.py; what each does to
 * the stack, memo and marks follows Lib/pickle.py's _Unpickler, except that
 * every call is recorded instead of made. */
#include "pickle.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "pickle_compat.h"
#include "pickle_dtype.h"
#include "utf8.h"

struct memo_slot {
    uint32_t key, value;
    bool used;
};

struct machine {
    struct sk_pickle *p;
    bool joblib;
    uint64_t pos;
    uint64_t *opcodes; /* shared by nested streams */
    struct sk_pk_vector stack;
    uint32_t *marks; /* stack heights saved by MARK */
    uint32_t mark_count, mark_capacity;
    struct memo_slot *memo;
    uint32_t memo_count, memo_capacity;
    unsigned nested_depth;
    const struct sk_pickle_limits *limits; /* resolved: no zero fields */
    struct sk_error *err;
};

bool sk_pk_text_is(struct sk_pk_text text, const char *s)
{
    size_t n = strlen(s);
    return text.length == n && memcmp(text.bytes, s, n) == 0;
}

bool sk_pickle_is_global(const struct sk_pickle *p, uint32_t value, const char *module,
                         const char *name)
{
    const struct sk_pk_value *v = sk_pickle_value(p, value);
    return v && v->kind == SK_PK_GLOBAL && sk_pk_text_is(v->u.s.text, module) &&
           sk_pk_text_is(v->u.s.text2, name);
}

/* ------------------------------------------------------------ arena */

static int charge(struct machine *m, uint64_t bytes)
{
    if (bytes > m->limits->arena_bytes - m->p->arena_bytes)
        return sk_fail(m->err,
                       "pickle: more than %llu bytes of values (the max_pickle_arena_mb limit, "
                       "SK_PICKLE_MAX_ARENA_BYTES; raise it with -o max_pickle_arena_mb=N or "
                       "--max-pickle-arena-mb N)",
                       (unsigned long long)m->limits->arena_bytes);
    m->p->arena_bytes += bytes;
    return 0;
}

static int grow(struct machine *m, void **array, uint32_t *capacity, uint32_t needed,
                size_t item_size)
{
    if (needed <= *capacity)
        return 0;
    uint32_t next = *capacity ? *capacity : 8;
    while (next < needed)
        next = next > UINT32_MAX / 2 ? UINT32_MAX : next * 2;
    if (charge(m, (uint64_t)(next - *capacity) * item_size) != 0)
        return -1;
    void *bigger = realloc(*array, (size_t)next * item_size);
    if (!bigger)
        return sk_fail(m->err, "pickle: out of memory");
    *array = bigger;
    *capacity = next;
    return 0;
}

static int vec_push(struct machine *m, struct sk_pk_vector *v, uint32_t item)
{
    if (v->count == UINT32_MAX)
        return sk_fail(m->err, "pickle: container too large");
    if (grow(m, (void **)&v->items, &v->capacity, v->count + 1, sizeof *v->items) != 0)
        return -1;
    v->items[v->count++] = item;
    return 0;
}

static void *arena_block(struct machine *m, size_t size)
{
    struct sk_pickle *p = m->p;
    if (charge(m, size) != 0 ||
        grow(m, (void **)&p->blocks, &p->block_capacity, p->block_count + 1, sizeof(void *)) != 0)
        return NULL;
    void *block = malloc(size ? size : 1);
    if (!block) {
        sk_fail(m->err, "pickle: out of memory");
        return NULL;
    }
    p->blocks[p->block_count++] = block;
    return block;
}

static uint32_t new_value(struct machine *m, enum sk_pk_kind kind, uint64_t offset)
{
    struct sk_pickle *p = m->p;
    if (p->value_count >= m->limits->values) {
        sk_fail(m->err,
                "pickle: more than %llu values (the max_pickle_values limit, "
                "SK_PICKLE_MAX_VALUES; raise it with -o max_pickle_values=N or "
                "--max-pickle-values N)",
                (unsigned long long)m->limits->values);
        return SK_PK_NIL;
    }
    if (grow(m, (void **)&p->values, &p->value_capacity, p->value_count + 1, sizeof *p->values) !=
        0)
        return SK_PK_NIL;
    struct sk_pk_value *v = &p->values[p->value_count];
    memset(v, 0, sizeof *v);
    v->kind = kind;
    v->offset = offset;
    return p->value_count++;
}

static struct sk_pk_value *value_at(struct machine *m, uint32_t index)
{
    return &m->p->values[index];
}

static int add_finding(struct machine *m, uint64_t offset, const struct sk_pk_value *global,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int add_finding(struct machine *m, uint64_t offset, const struct sk_pk_value *global,
                       const char *fmt, ...)
{
    struct sk_pickle *p = m->p;
    if (p->finding_count >= SK_PICKLE_MAX_FINDINGS)
        return 0; /* the first ones are enough to refuse the file */
    if (grow(m, (void **)&p->findings, &p->finding_capacity, p->finding_count + 1,
             sizeof *p->findings) != 0)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    char *what = NULL;
    int n = vasprintf(&what, fmt, ap);
    va_end(ap);
    if (n < 0)
        return sk_fail(m->err, "pickle: out of memory");
    char *name = NULL;
    if (global && asprintf(&name, "%.*s.%.*s", (int)global->u.s.text.length, global->u.s.text.bytes,
                           (int)global->u.s.text2.length, global->u.s.text2.bytes) < 0) {
        free(what);
        return sk_fail(m->err, "pickle: out of memory");
    }
    p->findings[p->finding_count].global = name;
    p->findings[p->finding_count].what = what;
    p->findings[p->finding_count].offset = offset;
    p->finding_count++;
    return 0;
}

/* ------------------------------------------------------------ memo */

static struct memo_slot *memo_find(struct machine *m, uint32_t key)
{
    if (!m->memo_capacity)
        return NULL;
    uint32_t mask = m->memo_capacity - 1;
    /* keyed (hash.h): the file picks the keys, and could pick them for one slot */
    for (uint32_t i = (uint32_t)sk_hash_u64_slot(key, (unsigned)__builtin_ctz(m->memo_capacity));;
         i = (i + 1) & mask) {
        if (!m->memo[i].used || m->memo[i].key == key)
            return &m->memo[i];
    }
}

static int memo_put(struct machine *m, uint32_t key, uint32_t value)
{
    struct memo_slot *slot = memo_find(m, key);
    if (slot && slot->used) {
        slot->value = value;
        return 0;
    }
    if (m->memo_count >= m->limits->memo)
        return sk_fail(m->err,
                       "pickle: more than %llu memo entries (the max_pickle_memo limit, "
                       "SK_PICKLE_MAX_MEMO; raise it with -o max_pickle_memo=N or "
                       "--max-pickle-memo N)",
                       (unsigned long long)m->limits->memo);
    if ((uint64_t)(m->memo_count + 1) * 2 > m->memo_capacity) {
        uint32_t capacity = m->memo_capacity ? m->memo_capacity * 2 : 64;
        if (charge(m, (uint64_t)capacity * sizeof *m->memo) != 0)
            return -1;
        struct memo_slot *old = m->memo;
        uint32_t old_capacity = m->memo_capacity;
        m->memo = calloc(capacity, sizeof *m->memo);
        if (!m->memo) {
            m->memo = old;
            return sk_fail(m->err, "pickle: out of memory");
        }
        m->memo_capacity = capacity;
        for (uint32_t i = 0; i < old_capacity; i++)
            if (old[i].used)
                *memo_find(m, old[i].key) = old[i];
        free(old);
    }
    slot = memo_find(m, key);
    slot->used = true;
    slot->key = key;
    slot->value = value;
    m->memo_count++;
    return 0;
}

/* ------------------------------------------------------------ input */

static int need(struct machine *m, uint64_t n, const char *what)
{
    if (n > m->p->input_length - m->pos)
        return sk_fail(m->err,
                       "pickle: %s at offset %llu needs %llu bytes, %llu are left "
                       "(truncated or corrupt stream)",
                       what, (unsigned long long)m->pos, (unsigned long long)n,
                       (unsigned long long)(m->p->input_length - m->pos));
    return 0;
}

static uint64_t read_le(struct machine *m, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)m->p->input[m->pos + i] << (8 * i);
    m->pos += n;
    return v;
}

static int read_uint(struct machine *m, unsigned n, uint64_t *out, const char *what)
{
    if (need(m, n, what) != 0)
        return -1;
    *out = read_le(m, n);
    return 0;
}

/* A text argument up to '\n' (not included), bounded. */
static int read_line(struct machine *m, struct sk_pk_text *line, const char *what)
{
    const unsigned char *start = m->p->input + m->pos;
    uint64_t left = m->p->input_length - m->pos;
    uint64_t limit = left < m->limits->line_bytes ? left : m->limits->line_bytes;
    const unsigned char *nl = memchr(start, '\n', limit);
    if (!nl) {
        if (left > m->limits->line_bytes)
            return sk_fail(m->err,
                           "pickle: %s at offset %llu is longer than "
                           "SK_PICKLE_MAX_LINE_BYTES (%llu)",
                           what, (unsigned long long)m->pos,
                           (unsigned long long)m->limits->line_bytes);
        return sk_fail(m->err, "pickle: %s at offset %llu has no end of line (truncated)", what,
                       (unsigned long long)m->pos);
    }
    line->bytes = (const char *)start;
    line->length = (uint64_t)(nl - start);
    m->pos += line->length + 1;
    return 0;
}

/* ------------------------------------------------------------ stack */

static int push(struct machine *m, uint32_t value)
{
    if (value == SK_PK_NIL)
        return -1;
    if (m->stack.count >= m->limits->stack)
        return sk_fail(m->err, "pickle: more than SK_PICKLE_MAX_STACK (%llu) stack values",
                       (unsigned long long)m->limits->stack);
    return vec_push(m, &m->stack, value);
}

static uint32_t floor_height(const struct machine *m)
{
    return m->mark_count ? m->marks[m->mark_count - 1] : 0;
}

static int pop(struct machine *m, uint32_t *value, const char *opcode)
{
    if (m->stack.count <= floor_height(m))
        return sk_fail(m->err, "pickle: %s at offset %llu pops an empty stack", opcode,
                       (unsigned long long)m->pos);
    *value = m->stack.items[--m->stack.count];
    return 0;
}

static int top(struct machine *m, uint32_t *value, const char *opcode)
{
    if (m->stack.count <= floor_height(m))
        return sk_fail(m->err, "pickle: %s at offset %llu needs a value on the stack", opcode,
                       (unsigned long long)m->pos);
    *value = m->stack.items[m->stack.count - 1];
    return 0;
}

/* The values since the last MARK: *FIRST indexes the stack; the caller copies
 * them, then drops them with drop_mark. */
static int mark_items(struct machine *m, uint32_t *first, uint32_t *count, const char *opcode)
{
    if (!m->mark_count)
        return sk_fail(m->err, "pickle: %s at offset %llu has no MARK", opcode,
                       (unsigned long long)m->pos);
    *first = m->marks[m->mark_count - 1];
    *count = m->stack.count - *first;
    return 0;
}

static void drop_mark(struct machine *m)
{
    m->stack.count = m->marks[--m->mark_count];
}

/* A new container value holding the items since the last MARK. */
static int collect(struct machine *m, enum sk_pk_kind kind, uint64_t offset, const char *opcode,
                   uint32_t *made)
{
    uint32_t first = 0, count = 0;
    if (mark_items(m, &first, &count, opcode) != 0)
        return -1;
    uint32_t index = new_value(m, kind, offset);
    if (index == SK_PK_NIL)
        return -1;
    struct sk_pk_vector items = {0};
    if (count) {
        if (grow(m, (void **)&items.items, &items.capacity, count, sizeof *items.items) != 0)
            return -1;
        memcpy(items.items, m->stack.items + first, count * sizeof *items.items);
        items.count = count;
    }
    value_at(m, index)->u.items = items;
    drop_mark(m);
    *made = index;
    return 0;
}

/* ------------------------------------------------------------ values */

static uint32_t make_int(struct machine *m, uint64_t offset, int64_t v)
{
    uint32_t index = new_value(m, SK_PK_INT, offset);
    if (index != SK_PK_NIL)
        value_at(m, index)->u.integer = v;
    return index;
}

static uint32_t make_text(struct machine *m, enum sk_pk_kind kind, uint64_t offset,
                          const char *bytes, uint64_t length, uint64_t data_offset)
{
    uint32_t index = new_value(m, kind, offset);
    if (index != SK_PK_NIL) {
        struct sk_pk_value *v = value_at(m, index);
        v->u.s.text.bytes = bytes;
        v->u.s.text.length = length;
        v->u.s.data_offset = data_offset;
    }
    return index;
}

/* Decimal text (an optional sign, digits) as INT, or as BIGINT text when it
 * does not fit in int64. */
static uint32_t make_decimal(struct machine *m, uint64_t offset, struct sk_pk_text text,
                             const char *opcode)
{
    const char *s = text.bytes;
    uint64_t n = text.length, i = 0;
    bool negative = false;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        negative = s[i++] == '-';
    uint64_t digits_start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == digits_start || i != n) {
        sk_fail(m->err, "pickle: %s at offset %llu is not a decimal integer", opcode,
                (unsigned long long)offset);
        return SK_PK_NIL;
    }
    while (digits_start + 1 < n && s[digits_start] == '0')
        digits_start++;
    uint64_t digits = n - digits_start;
    if (digits > m->limits->long_bytes * 5 / 2 + 1) {
        sk_fail(m->err, "pickle: %s at offset %llu is larger than SK_PICKLE_MAX_LONG_BYTES (%llu)",
                opcode, (unsigned long long)offset, (unsigned long long)m->limits->long_bytes);
        return SK_PK_NIL;
    }
    if (digits <= 18) {
        int64_t v = 0;
        for (uint64_t k = digits_start; k < n; k++)
            v = v * 10 + (s[k] - '0');
        return make_int(m, offset, negative ? -v : v);
    }
    bool zero = digits == 1 && s[digits_start] == '0';
    char *copy = arena_block(m, digits + 1);
    if (!copy)
        return SK_PK_NIL;
    size_t at = 0;
    if (negative && !zero)
        copy[at++] = '-';
    memcpy(copy + at, s + digits_start, digits);
    uint32_t index = make_text(m, SK_PK_BIGINT, offset, copy, at + digits, UINT64_MAX);
    return index;
}

/* LONG1/LONG4: little-endian two's complement. */
static uint32_t make_long_bytes(struct machine *m, uint64_t offset, const unsigned char *b,
                                uint64_t n)
{
    if (n == 0)
        return make_int(m, offset, 0);
    bool negative = b[n - 1] & 0x80;
    if (n <= 8) {
        uint64_t u = 0;
        for (uint64_t i = 0; i < n; i++)
            u |= (uint64_t)b[i] << (8 * i);
        if (negative && n < 8)
            u |= ~0ull << (8 * n);
        int64_t v;
        memcpy(&v, &u, sizeof v);
        return make_int(m, offset, v);
    }
    /* Magnitude as big-endian base-256 digits, then repeated division by 10. */
    unsigned char *mag = malloc(n);
    char *text = arena_block(m, n * 3 + 2);
    if (!mag || !text) {
        free(mag);
        if (text)
            sk_fail(m->err, "pickle: out of memory");
        return SK_PK_NIL;
    }
    unsigned carry = 1;
    for (uint64_t i = 0; i < n; i++) {
        unsigned byte = b[i];
        if (negative) {
            byte = (~byte & 0xff) + carry;
            carry = byte >> 8;
            byte &= 0xff;
        }
        mag[n - 1 - i] = (unsigned char)byte;
    }
    size_t length = 0;
    uint64_t start = 0;
    for (;;) {
        while (start < n && mag[start] == 0)
            start++;
        if (start == n)
            break;
        unsigned remainder = 0;
        for (uint64_t i = start; i < n; i++) {
            unsigned cur = remainder * 256 + mag[i];
            mag[i] = (unsigned char)(cur / 10);
            remainder = cur % 10;
        }
        text[length++] = (char)('0' + remainder);
    }
    free(mag);
    if (length == 0)
        text[length++] = '0';
    if (negative)
        text[length++] = '-';
    for (size_t i = 0; i < length / 2; i++) {
        char t = text[i];
        text[i] = text[length - 1 - i];
        text[length - 1 - i] = t;
    }
    return make_text(m, SK_PK_BIGINT, offset, text, length, UINT64_MAX);
}

/* Latin-1 bytes as UTF-8 text (py2 str read with encoding='latin1'). */
static uint32_t make_latin1(struct machine *m, uint64_t offset, const unsigned char *b, uint64_t n)
{
    char *utf8 = arena_block(m, n * 2);
    if (!utf8)
        return SK_PK_NIL;
    uint64_t at = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (b[i] < 0x80) {
            utf8[at++] = (char)b[i];
        } else {
            utf8[at++] = (char)(0xc0 | (b[i] >> 6));
            utf8[at++] = (char)(0x80 | (b[i] & 0x3f));
        }
    }
    return make_text(m, SK_PK_STR, offset, utf8, at, UINT64_MAX);
}

static bool parse_hex(const char *s, unsigned digits, uint32_t *out)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < digits; i++) {
        int h = sk_hex_value(s[i]);
        if (h < 0)
            return false;
        v = v * 16 + (uint32_t)h;
    }
    *out = v;
    return true;
}

/* UNICODE: raw-unicode-escape (\uXXXX, \UXXXXXXXX; other bytes are latin-1). */
static uint32_t make_raw_unicode(struct machine *m, uint64_t offset, struct sk_pk_text line)
{
    char *utf8 = arena_block(m, line.length * 2 + 4);
    if (!utf8)
        return SK_PK_NIL;
    const char *s = line.bytes;
    uint64_t at = 0;
    for (uint64_t i = 0; i < line.length;) {
        uint32_t cp;
        unsigned digits = 0;
        if (s[i] == '\\' && i + 1 < line.length && (s[i + 1] == 'u' || s[i + 1] == 'U'))
            digits = s[i + 1] == 'u' ? 4 : 8;
        if (digits) {
            if (i + 2 + digits > line.length || !parse_hex(s + i + 2, digits, &cp) ||
                cp > 0x10ffff) {
                sk_fail(m->err, "pickle: UNICODE at offset %llu has a bad \\u escape",
                        (unsigned long long)offset);
                return SK_PK_NIL;
            }
            i += 2 + digits;
        } else {
            cp = (unsigned char)s[i++];
        }
        at += sk_utf8_put(utf8 + at, cp);
    }
    return make_text(m, SK_PK_STR, offset, utf8, at, UINT64_MAX);
}

/* STRING: a quoted Python 2 str literal, escape-decoded, read as latin-1. */
static uint32_t make_quoted(struct machine *m, uint64_t offset, struct sk_pk_text line)
{
    const char *s = line.bytes;
    uint64_t n = line.length;
    if (n < 2 || (s[0] != '\'' && s[0] != '"') || s[n - 1] != s[0]) {
        sk_fail(m->err, "pickle: STRING at offset %llu is not quoted", (unsigned long long)offset);
        return SK_PK_NIL;
    }
    unsigned char *raw = malloc(n);
    if (!raw) {
        sk_fail(m->err, "pickle: out of memory");
        return SK_PK_NIL;
    }
    uint64_t at = 0;
    static const char simple_from[] = "\\'\"abfnrtv";
    static const char simple_to[] = "\\'\"\a\b\f\n\r\t\v";
    for (uint64_t i = 1; i < n - 1;) {
        if (s[i] != '\\') {
            raw[at++] = (unsigned char)s[i++];
            continue;
        }
        if (i + 1 >= n - 1)
            goto bad;
        char c = s[i + 1];
        const char *hit = c ? strchr(simple_from, c) : NULL;
        uint32_t v;
        if (hit) {
            raw[at++] = (unsigned char)simple_to[hit - simple_from];
            i += 2;
        } else if (c == '\n') {
            i += 2;
        } else if (c == 'x') {
            if (i + 4 > n - 1 || !parse_hex(s + i + 2, 2, &v))
                goto bad;
            raw[at++] = (unsigned char)v;
            i += 4;
        } else if (c >= '0' && c <= '7') {
            v = 0;
            unsigned k = 0;
            for (i++; k < 3 && i < n - 1 && s[i] >= '0' && s[i] <= '7'; k++, i++)
                v = v * 8 + (uint32_t)(s[i] - '0');
            raw[at++] = (unsigned char)v;
        } else {
            raw[at++] = '\\'; /* Python keeps unknown escapes */
            i++;
        }
    }
    uint32_t index = make_latin1(m, offset, raw, at);
    free(raw);
    return index;
bad:
    free(raw);
    sk_fail(m->err, "pickle: STRING at offset %llu has a bad escape", (unsigned long long)offset);
    return SK_PK_NIL;
}

static uint32_t make_global(struct machine *m, uint64_t offset, struct sk_pk_text module,
                            struct sk_pk_text name, const char *opcode)
{
    struct sk_pk_text raw_module = module, raw_name = name;
    if (m->p->protocol < 3) {
        const char *new_module, *new_name;
        if (sk_pk_compat_map(module.bytes, module.length, name.bytes, name.length, &new_module,
                             &new_name)) {
            module.bytes = new_module;
            module.length = strlen(new_module);
            if (new_name) {
                name.bytes = new_name;
                name.length = strlen(new_name);
            }
        }
    }
    uint32_t index = new_value(m, SK_PK_GLOBAL, offset);
    if (index == SK_PK_NIL)
        return SK_PK_NIL;
    value_at(m, index)->u.s.text = module;
    value_at(m, index)->u.s.text2 = name;
    value_at(m, index)->u.s.data_offset = UINT64_MAX;
    struct sk_pickle *p = m->p;
    if (grow(m, (void **)&p->globals, &p->global_capacity, p->global_count + 1,
             sizeof *p->globals) != 0)
        return SK_PK_NIL;
    p->globals[p->global_count++] =
        (struct sk_pk_global){module, name, raw_module, raw_name, offset, opcode, index};
    return index;
}

static uint32_t make_call(struct machine *m, uint64_t offset, enum sk_pk_call_kind kind,
                          uint32_t func, uint32_t args, uint32_t kwargs)
{
    uint32_t index = new_value(m, SK_PK_CALL, offset);
    if (index != SK_PK_NIL) {
        struct sk_pk_value *v = value_at(m, index);
        v->u.call.kind = kind;
        v->u.call.func = func;
        v->u.call.args = args;
        v->u.call.kwargs = kwargs;
        v->u.call.state = SK_PK_NIL;
    }
    return index;
}

/* ------------------------------------------------------------ joblib */

static int run_stream(struct machine *parent, uint64_t start, bool joblib, unsigned depth,
                      uint32_t *root, uint64_t *end);

static const struct sk_pk_value *dict_lookup(const struct sk_pickle *p, uint32_t dict,
                                             const char *key)
{
    const struct sk_pk_value *d = sk_pickle_value(p, dict);
    if (!d || d->kind != SK_PK_DICT)
        return NULL;
    for (uint32_t i = 0; i + 1 < d->u.items.count; i += 2) {
        const struct sk_pk_value *k = sk_pickle_value(p, d->u.items.items[i]);
        if (k && k->kind == SK_PK_STR && sk_pk_text_is(k->u.s.text, key))
            return sk_pickle_value(p, d->u.items.items[i + 1]);
    }
    return NULL;
}

/* After BUILD of a NumpyArrayWrapper: consume the raw section that follows
 * (design §2.3) and replace the wrapper on the stack with the array. */
static int joblib_array(struct machine *m, uint32_t wrapper, uint64_t offset)
{
    struct sk_pickle *p = m->p;
    uint32_t state = value_at(m, wrapper)->u.call.state;
    const struct sk_pk_value *dtype_value = dict_lookup(p, state, "dtype");
    const struct sk_pk_value *shape = dict_lookup(p, state, "shape");
    const struct sk_pk_value *alignment = dict_lookup(p, state, "numpy_array_alignment_bytes");
    if (!dtype_value || !shape || shape->kind != SK_PK_TUPLE)
        return sk_fail(m->err,
                       "pickle: joblib NumpyArrayWrapper at offset %llu has no dtype or shape",
                       (unsigned long long)offset);
    struct sk_pk_dtype dtype;
    if (sk_pk_dtype_read(p, (uint32_t)(dtype_value - p->values), &dtype, m->err) != 0)
        return -1;
    bool object = dtype.kind == 'O';
    sk_pk_dtype_free(&dtype);
    /* everything read from the values first: new_value may move them */
    bool aligned = alignment && alignment->kind != SK_PK_NONE;
    uint64_t count = 1, item_size = dtype.item_size;
    for (uint32_t i = 0; !object && i < shape->u.items.count; i++) {
        const struct sk_pk_value *dim = sk_pickle_value(p, shape->u.items.items[i]);
        if (!dim || dim->kind != SK_PK_INT || dim->u.integer < 0)
            return sk_fail(m->err, "pickle: joblib array at offset %llu has a bad shape",
                           (unsigned long long)offset);
        uint64_t d = (uint64_t)dim->u.integer;
        if (d && count > UINT64_MAX / d)
            return sk_fail(m->err, "pickle: joblib array at offset %llu is too large",
                           (unsigned long long)offset);
        count *= d;
    }
    if (item_size && count > UINT64_MAX / item_size)
        return sk_fail(m->err, "pickle: joblib array at offset %llu is too large",
                       (unsigned long long)offset);
    uint32_t array = new_value(m, SK_PK_JOBLIB_ARRAY, offset);
    if (array == SK_PK_NIL)
        return -1;
    value_at(m, array)->u.joblib.wrapper = wrapper;
    value_at(m, array)->u.joblib.nested_root = SK_PK_NIL;
    value_at(m, array)->u.joblib.section_start = m->pos;
    if (object) {
        uint32_t root;
        uint64_t end;
        if (m->nested_depth >= 1)
            return sk_fail(m->err, "pickle: nested joblib pickle inside a nested pickle");
        if (run_stream(m, m->pos, false, m->nested_depth + 1, &root, &end) != 0)
            return -1;
        m->pos = end;
        value_at(m, array)->u.joblib.nested_root = root;
    } else {
        if (aligned) {
            uint64_t padding;
            if (read_uint(m, 1, &padding, "joblib padding length") != 0 ||
                need(m, padding, "joblib padding") != 0)
                return -1;
            m->pos += padding;
        }
        uint64_t length = count * item_size;
        if (need(m, length, "joblib array data") != 0)
            return -1;
        value_at(m, array)->u.joblib.data_offset = m->pos;
        value_at(m, array)->u.joblib.data_length = length;
        m->pos += length;
    }
    value_at(m, array)->u.joblib.section_end = m->pos;
    m->stack.items[m->stack.count - 1] = array;
    return 0;
}

/* ------------------------------------------------------------ opcodes */

static int op_build(struct machine *m, uint64_t offset)
{
    uint32_t state = SK_PK_NIL, target = SK_PK_NIL;
    if (pop(m, &state, "BUILD") != 0 || top(m, &target, "BUILD") != 0)
        return -1;
    struct sk_pk_value *t = value_at(m, target);
    if (t->kind == SK_PK_GLOBAL)
        return add_finding(m, offset, t, "BUILD on a global (sets its attributes)");
    if (t->kind != SK_PK_CALL)
        return add_finding(m, offset, NULL, "BUILD on a value that is not an object");
    t->u.call.builds++;
    t->u.call.state = state;
    if (m->joblib && t->u.call.builds == 1 &&
        sk_pickle_is_global(m->p, t->u.call.func, "joblib.numpy_pickle", "NumpyArrayWrapper"))
        return joblib_array(m, target, offset);
    return 0;
}

/* APPEND(S)/SETITEM(S)/ADDITEMS: into the container on top, or recorded on
 * an object (defaultdict, OrderedDict); anything else is a finding. */
static int add_items(struct machine *m, uint64_t offset, const char *opcode, const uint32_t *items,
                     uint32_t count, bool pairs, bool set)
{
    uint32_t target = SK_PK_NIL;
    if (top(m, &target, opcode) != 0)
        return -1;
    if (pairs && count % 2)
        return sk_fail(m->err, "pickle: %s at offset %llu has an odd number of items", opcode,
                       (unsigned long long)offset);
    enum sk_pk_kind kind = value_at(m, target)->kind;
    struct sk_pk_vector *into = NULL;
    if (set ? kind == SK_PK_SET : pairs ? kind == SK_PK_DICT : kind == SK_PK_LIST)
        into = &value_at(m, target)->u.items;
    else if (kind == SK_PK_CALL && !set)
        into = pairs ? &value_at(m, target)->u.call.dict_items
                     : &value_at(m, target)->u.call.list_items;
    if (!into)
        return add_finding(m, offset, NULL, "%s into a value that is not a container", opcode);
    /* ITEMS may live in the stack that a push could move: copy by index. */
    for (uint32_t i = 0; i < count; i++) {
        into = set || kind != SK_PK_CALL ? &value_at(m, target)->u.items
               : pairs                   ? &value_at(m, target)->u.call.dict_items
                                         : &value_at(m, target)->u.call.list_items;
        if (vec_push(m, into, items[i]) != 0)
            return -1;
    }
    return 0;
}

static int op_mark_items(struct machine *m, uint64_t offset, const char *opcode, bool pairs,
                         bool set)
{
    uint32_t first = 0, count = 0;
    if (mark_items(m, &first, &count, opcode) != 0)
        return -1;
    uint32_t *copy = count ? malloc(count * sizeof *copy) : NULL;
    if (count && !copy)
        return sk_fail(m->err, "pickle: out of memory");
    if (count)
        memcpy(copy, m->stack.items + first, count * sizeof *copy);
    drop_mark(m);
    int rc = add_items(m, offset, opcode, copy, count, pairs, set);
    free(copy);
    return rc;
}

static int op_stack_global(struct machine *m, uint64_t offset)
{
    uint32_t name = SK_PK_NIL, module = SK_PK_NIL;
    if (pop(m, &name, "STACK_GLOBAL") != 0 || pop(m, &module, "STACK_GLOBAL") != 0)
        return -1;
    const struct sk_pk_value *n = value_at(m, name), *mod = value_at(m, module);
    if (n->kind != SK_PK_STR || mod->kind != SK_PK_STR)
        return sk_fail(m->err, "pickle: STACK_GLOBAL at offset %llu needs two strings",
                       (unsigned long long)offset);
    return push(m, make_global(m, offset, mod->u.s.text, n->u.s.text, "STACK_GLOBAL"));
}

static int op_text_global(struct machine *m, uint64_t offset, bool inst)
{
    struct sk_pk_text module, name;
    const char *opcode = inst ? "INST" : "GLOBAL";
    if (read_line(m, &module, opcode) != 0 || read_line(m, &name, opcode) != 0)
        return -1;
    uint32_t g = make_global(m, offset, module, name, opcode);
    if (g == SK_PK_NIL)
        return -1;
    if (!inst)
        return push(m, g);
    uint32_t args;
    if (collect(m, SK_PK_TUPLE, offset, opcode, &args) != 0)
        return -1;
    return push(m, make_call(m, offset, SK_PK_INST, g, args, SK_PK_NIL));
}

static int op_obj(struct machine *m, uint64_t offset)
{
    uint32_t first = 0, count = 0;
    if (mark_items(m, &first, &count, "OBJ") != 0)
        return -1;
    if (count == 0)
        return sk_fail(m->err, "pickle: OBJ at offset %llu has no class",
                       (unsigned long long)offset);
    uint32_t cls = m->stack.items[first];
    /* the class leaves the mark; the rest become the argument tuple */
    memmove(m->stack.items + first, m->stack.items + first + 1, (count - 1) * sizeof(uint32_t));
    m->stack.count--;
    uint32_t args;
    if (collect(m, SK_PK_TUPLE, offset, "OBJ", &args) != 0)
        return -1;
    return push(m, make_call(m, offset, SK_PK_OBJ, cls, args, SK_PK_NIL));
}

static int op_tuple_n(struct machine *m, uint64_t offset, uint32_t n)
{
    if (m->stack.count - floor_height(m) < n)
        return sk_fail(m->err, "pickle: TUPLE%u at offset %llu pops an empty stack", n,
                       (unsigned long long)offset);
    uint32_t index = new_value(m, SK_PK_TUPLE, offset);
    if (index == SK_PK_NIL)
        return -1;
    struct sk_pk_vector items = {0};
    if (grow(m, (void **)&items.items, &items.capacity, n, sizeof *items.items) != 0)
        return -1;
    memcpy(items.items, m->stack.items + m->stack.count - n, n * sizeof *items.items);
    items.count = n;
    value_at(m, index)->u.items = items;
    m->stack.count -= n;
    return push(m, index);
}

static int op_memo_get(struct machine *m, uint64_t offset, uint64_t key)
{
    struct memo_slot *slot = key <= UINT32_MAX ? memo_find(m, (uint32_t)key) : NULL;
    if (!slot || !slot->used)
        return sk_fail(m->err, "pickle: memo GET at offset %llu of key %llu that was never PUT",
                       (unsigned long long)offset, (unsigned long long)key);
    return push(m, slot->value);
}

static int op_memo_put(struct machine *m, uint64_t offset, uint64_t key)
{
    uint32_t value = SK_PK_NIL;
    if (top(m, &value, "PUT") != 0)
        return -1;
    if (key > UINT32_MAX)
        return sk_fail(m->err, "pickle: memo key %llu at offset %llu is too large",
                       (unsigned long long)key, (unsigned long long)offset);
    return memo_put(m, (uint32_t)key, value);
}

static int parse_line_uint(struct machine *m, uint64_t offset, const char *opcode, uint64_t *out)
{
    struct sk_pk_text line;
    if (read_line(m, &line, opcode) != 0)
        return -1;
    uint64_t v = 0;
    if (line.length == 0 || line.length > 10)
        goto bad;
    for (uint64_t i = 0; i < line.length; i++) {
        if (line.bytes[i] < '0' || line.bytes[i] > '9')
            goto bad;
        v = v * 10 + (uint64_t)(line.bytes[i] - '0');
    }
    *out = v;
    return 0;
bad:
    return sk_fail(m->err, "pickle: %s at offset %llu needs a decimal memo key", opcode,
                   (unsigned long long)offset);
}

static int op_opaque(struct machine *m, uint64_t offset, const char *what)
{
    if (add_finding(m, offset, NULL, "%s", what) != 0)
        return -1;
    uint32_t index = make_text(m, SK_PK_OPAQUE, offset, what, strlen(what), UINT64_MAX);
    return push(m, index);
}

/* Bytes or text whose length comes first (N bytes, little-endian). */
static int op_counted(struct machine *m, uint64_t offset, unsigned n, enum sk_pk_kind kind,
                      bool latin1, const char *opcode)
{
    uint64_t length;
    if (read_uint(m, n, &length, opcode) != 0)
        return -1;
    if (n == 4 && kind == SK_PK_STR && latin1 && (length >> 31))
        return sk_fail(m->err, "pickle: %s at offset %llu has a negative length", opcode,
                       (unsigned long long)offset);
    if (need(m, length, opcode) != 0)
        return -1;
    const unsigned char *data = m->p->input + m->pos;
    uint64_t data_offset = m->pos;
    m->pos += length;
    if (latin1)
        return push(m, make_latin1(m, offset, data, length));
    return push(m, make_text(m, kind, offset, (const char *)data, length, data_offset));
}

static int op_long_bytes(struct machine *m, uint64_t offset, unsigned n, const char *opcode)
{
    uint64_t length;
    if (read_uint(m, n, &length, opcode) != 0)
        return -1;
    if (n == 4 && (length >> 31))
        return sk_fail(m->err, "pickle: LONG4 at offset %llu has a negative length",
                       (unsigned long long)offset);
    if (length > m->limits->long_bytes)
        return sk_fail(m->err,
                       "pickle: %s at offset %llu has %llu bytes, more than "
                       "SK_PICKLE_MAX_LONG_BYTES (%llu)",
                       opcode, (unsigned long long)offset, (unsigned long long)length,
                       (unsigned long long)m->limits->long_bytes);
    if (need(m, length, opcode) != 0)
        return -1;
    const unsigned char *data = m->p->input + m->pos;
    m->pos += length;
    return push(m, make_long_bytes(m, offset, data, length));
}

static int op_float_text(struct machine *m, uint64_t offset)
{
    struct sk_pk_text line;
    if (read_line(m, &line, "FLOAT") != 0)
        return -1;
    char buffer[128];
    if (line.length == 0 || line.length >= sizeof buffer)
        return sk_fail(m->err, "pickle: FLOAT at offset %llu is not a number",
                       (unsigned long long)offset);
    memcpy(buffer, line.bytes, line.length);
    buffer[line.length] = 0;
    char *end;
    errno = 0;
    double v = strtod(buffer, &end);
    if (*end || strchr(buffer, 'x') || strchr(buffer, 'X'))
        return sk_fail(m->err, "pickle: FLOAT at offset %llu is not a number",
                       (unsigned long long)offset);
    uint32_t index = new_value(m, SK_PK_FLOAT, offset);
    if (index == SK_PK_NIL)
        return -1;
    value_at(m, index)->u.real = v;
    return push(m, index);
}

static int op_int_text(struct machine *m, uint64_t offset, bool is_long)
{
    struct sk_pk_text line;
    if (read_line(m, &line, is_long ? "LONG" : "INT") != 0)
        return -1;
    if (is_long && line.length && line.bytes[line.length - 1] == 'L')
        line.length--;
    if (!is_long && line.length == 2 && line.bytes[0] == '0' &&
        (line.bytes[1] == '0' || line.bytes[1] == '1')) {
        uint32_t index = new_value(m, SK_PK_BOOL, offset);
        if (index == SK_PK_NIL)
            return -1;
        value_at(m, index)->u.boolean = line.bytes[1] == '1';
        return push(m, index);
    }
    return push(m, make_decimal(m, offset, line, is_long ? "LONG" : "INT"));
}

static int op_binfloat(struct machine *m, uint64_t offset)
{
    if (need(m, 8, "BINFLOAT") != 0)
        return -1;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits = bits << 8 | m->p->input[m->pos + i];
    m->pos += 8;
    double v;
    memcpy(&v, &bits, sizeof v);
    uint32_t index = new_value(m, SK_PK_FLOAT, offset);
    if (index == SK_PK_NIL)
        return -1;
    value_at(m, index)->u.real = v;
    return push(m, index);
}

static int op_call(struct machine *m, uint64_t offset, enum sk_pk_call_kind kind)
{
    uint32_t kwargs = SK_PK_NIL, args = SK_PK_NIL, func = SK_PK_NIL;
    const char *opcode = kind == SK_PK_REDUCE   ? "REDUCE"
                         : kind == SK_PK_NEWOBJ ? "NEWOBJ"
                                                : "NEWOBJ_EX";
    if (kind == SK_PK_NEWOBJ_EX && pop(m, &kwargs, opcode) != 0)
        return -1;
    if (pop(m, &args, opcode) != 0 || pop(m, &func, opcode) != 0)
        return -1;
    return push(m, make_call(m, offset, kind, func, args, kwargs));
}

static int op_simple(struct machine *m, uint64_t offset, enum sk_pk_kind kind, int boolean)
{
    uint32_t index = new_value(m, kind, offset);
    if (index == SK_PK_NIL)
        return -1;
    if (kind == SK_PK_BOOL)
        value_at(m, index)->u.boolean = boolean;
    return push(m, index);
}

static int op_int_bin(struct machine *m, uint64_t offset, unsigned n)
{
    uint64_t u;
    if (read_uint(m, n, &u, "BININT") != 0)
        return -1;
    int64_t v = n == 4 ? (int64_t)(int32_t)(uint32_t)u : (int64_t)u;
    return push(m, make_int(m, offset, v));
}

static int op_frame(struct machine *m, uint64_t offset)
{
    uint64_t length;
    if (read_uint(m, 8, &length, "FRAME") != 0)
        return -1;
    if (length > m->p->input_length - m->pos)
        return sk_fail(m->err, "pickle: FRAME at offset %llu claims %llu bytes past the end",
                       (unsigned long long)offset, (unsigned long long)length);
    return 0;
}

/* One opcode. Returns 1 at STOP. */
static int step(struct machine *m)
{
    uint64_t offset = m->pos;
    uint64_t u = 0; /* the helpers below set these where they return 0; -O3 cannot tell */
    uint32_t v = SK_PK_NIL, w = SK_PK_NIL;
    if (need(m, 1, "an opcode") != 0)
        return -1;
    unsigned char op = m->p->input[m->pos++];
    switch (op) {
    case '(':
        if (m->mark_count >= m->limits->marks)
            return sk_fail(m->err, "pickle: more than SK_PICKLE_MAX_MARKS (%llu) open MARKs",
                           (unsigned long long)m->limits->marks);
        if (grow(m, (void **)&m->marks, &m->mark_capacity, m->mark_count + 1, sizeof *m->marks) !=
            0)
            return -1;
        m->marks[m->mark_count++] = m->stack.count;
        return 0;
    case '.':
        return 1;
    case '0':
        if (m->stack.count > floor_height(m)) {
            m->stack.count--;
            return 0;
        }
        if (!m->mark_count)
            return sk_fail(m->err, "pickle: POP at offset %llu of an empty stack",
                           (unsigned long long)offset);
        drop_mark(m);
        return 0;
    case '1':
        if (mark_items(m, &v, &w, "POP_MARK") != 0)
            return -1;
        drop_mark(m);
        return 0;
    case '2':
        return top(m, &v, "DUP") != 0 ? -1 : push(m, v);
    case 'F':
        return op_float_text(m, offset);
    case 'I':
        return op_int_text(m, offset, false);
    case 'L':
        return op_int_text(m, offset, true);
    case 'J':
        return op_int_bin(m, offset, 4);
    case 'K':
        return op_int_bin(m, offset, 1);
    case 'M':
        return op_int_bin(m, offset, 2);
    case 'G':
        return op_binfloat(m, offset);
    case 'N':
        return op_simple(m, offset, SK_PK_NONE, 0);
    case 0x88:
        return op_simple(m, offset, SK_PK_BOOL, 1);
    case 0x89:
        return op_simple(m, offset, SK_PK_BOOL, 0);
    case 'P': {
        struct sk_pk_text line;
        if (read_line(m, &line, "PERSID") != 0)
            return -1;
        return op_opaque(m, offset, "persistent id (PERSID)");
    }
    case 'Q':
        if (pop(m, &v, "BINPERSID") != 0)
            return -1;
        return op_opaque(m, offset, "persistent id (BINPERSID)");
    case 0x82:
    case 0x83:
    case 0x84:
        if (read_uint(m, op == 0x82 ? 1 : op == 0x83 ? 2 : 4, &u, "EXT") != 0)
            return -1;
        return op_opaque(m, offset, "extension code (EXT1/EXT2/EXT4)");
    case 0x97:
        return op_opaque(m, offset, "out-of-band buffer (NEXT_BUFFER)");
    case 0x98:
        return top(m, &v, "READONLY_BUFFER");
    case 'R':
        return op_call(m, offset, SK_PK_REDUCE);
    case 0x81:
        return op_call(m, offset, SK_PK_NEWOBJ);
    case 0x92:
        return op_call(m, offset, SK_PK_NEWOBJ_EX);
    case 'o':
        return op_obj(m, offset);
    case 'i':
        return op_text_global(m, offset, true);
    case 'c':
        return op_text_global(m, offset, false);
    case 0x93:
        return op_stack_global(m, offset);
    case 'b':
        return op_build(m, offset);
    case 'S': {
        struct sk_pk_text line;
        return read_line(m, &line, "STRING") != 0 ? -1 : push(m, make_quoted(m, offset, line));
    }
    case 'V': {
        struct sk_pk_text line;
        return read_line(m, &line, "UNICODE") != 0 ? -1
                                                   : push(m, make_raw_unicode(m, offset, line));
    }
    case 'T':
        return op_counted(m, offset, 4, SK_PK_STR, true, "BINSTRING");
    case 'U':
        return op_counted(m, offset, 1, SK_PK_STR, true, "SHORT_BINSTRING");
    case 'X':
        return op_counted(m, offset, 4, SK_PK_STR, false, "BINUNICODE");
    case 0x8c:
        return op_counted(m, offset, 1, SK_PK_STR, false, "SHORT_BINUNICODE");
    case 0x8d:
        return op_counted(m, offset, 8, SK_PK_STR, false, "BINUNICODE8");
    case 'B':
        return op_counted(m, offset, 4, SK_PK_BYTES, false, "BINBYTES");
    case 'C':
        return op_counted(m, offset, 1, SK_PK_BYTES, false, "SHORT_BINBYTES");
    case 0x8e:
        return op_counted(m, offset, 8, SK_PK_BYTES, false, "BINBYTES8");
    case 0x96:
        return op_counted(m, offset, 8, SK_PK_BYTEARRAY, false, "BYTEARRAY8");
    case 0x8a:
        return op_long_bytes(m, offset, 1, "LONG1");
    case 0x8b:
        return op_long_bytes(m, offset, 4, "LONG4");
    case 'a':
        if (pop(m, &v, "APPEND") != 0)
            return -1;
        return add_items(m, offset, "APPEND", &v, 1, false, false);
    case 'e':
        return op_mark_items(m, offset, "APPENDS", false, false);
    case 's': {
        uint32_t pair[2];
        if (pop(m, &pair[1], "SETITEM") != 0 || pop(m, &pair[0], "SETITEM") != 0)
            return -1;
        return add_items(m, offset, "SETITEM", pair, 2, true, false);
    }
    case 'u':
        return op_mark_items(m, offset, "SETITEMS", true, false);
    case 0x90:
        return op_mark_items(m, offset, "ADDITEMS", false, true);
    case 'd':
        if (collect(m, SK_PK_DICT, offset, "DICT", &v) != 0)
            return -1;
        if (value_at(m, v)->u.items.count % 2)
            return sk_fail(m->err, "pickle: DICT at offset %llu has an odd number of items",
                           (unsigned long long)offset);
        return push(m, v);
    case 'l':
        return collect(m, SK_PK_LIST, offset, "LIST", &v) != 0 ? -1 : push(m, v);
    case 't':
        return collect(m, SK_PK_TUPLE, offset, "TUPLE", &v) != 0 ? -1 : push(m, v);
    case 0x91:
        return collect(m, SK_PK_FROZENSET, offset, "FROZENSET", &v) != 0 ? -1 : push(m, v);
    case '}':
        return op_simple(m, offset, SK_PK_DICT, 0);
    case ']':
        return op_simple(m, offset, SK_PK_LIST, 0);
    case ')':
        return op_simple(m, offset, SK_PK_TUPLE, 0);
    case 0x8f:
        return op_simple(m, offset, SK_PK_SET, 0);
    case 0x85:
    case 0x86:
    case 0x87:
        return op_tuple_n(m, offset, op - 0x84u);
    case 'g':
        return parse_line_uint(m, offset, "GET", &u) != 0 ? -1 : op_memo_get(m, offset, u);
    case 'h':
    case 'j':
        return read_uint(m, op == 'h' ? 1 : 4, &u, "BINGET") != 0 ? -1 : op_memo_get(m, offset, u);
    case 'p':
        return parse_line_uint(m, offset, "PUT", &u) != 0 ? -1 : op_memo_put(m, offset, u);
    case 'q':
    case 'r':
        return read_uint(m, op == 'q' ? 1 : 4, &u, "BINPUT") != 0 ? -1 : op_memo_put(m, offset, u);
    case 0x94:
        return op_memo_put(m, offset, m->memo_count);
    case 0x80:
        if (read_uint(m, 1, &u, "PROTO") != 0)
            return -1;
        if (u > 5)
            return sk_fail(m->err, "pickle: protocol %llu at offset %llu is not 0-5",
                           (unsigned long long)u, (unsigned long long)offset);
        m->p->protocol = (int)u;
        return 0;
    case 0x95:
        return op_frame(m, offset);
    default:
        return sk_fail(m->err, "pickle: unknown opcode 0x%02x at offset %llu", op,
                       (unsigned long long)offset);
    }
}

static int run_stream(struct machine *parent, uint64_t start, bool joblib, unsigned depth,
                      uint32_t *root, uint64_t *end)
{
    struct machine m = {.p = parent->p,
                        .joblib = joblib,
                        .pos = start,
                        .opcodes = parent->opcodes,
                        .nested_depth = depth,
                        .limits = parent->limits,
                        .err = parent->err};
    int protocol = m.p->protocol;
    int rc;
    for (;;) {
        if (++*m.opcodes > m.limits->opcodes) {
            rc = sk_fail(m.err,
                         "pickle: more than %llu opcodes (the max_pickle_opcodes limit, "
                         "SK_PICKLE_MAX_OPCODES; raise it with -o max_pickle_opcodes=N or "
                         "--max-pickle-opcodes N)",
                         (unsigned long long)m.limits->opcodes);
            break;
        }
        rc = step(&m);
        if (rc != 0)
            break;
    }
    if (rc == 1) {
        rc = 0;
        if (m.mark_count || m.stack.count != 1)
            rc = sk_fail(m.err,
                         "pickle: STOP at offset %llu with %u values and %u MARKs "
                         "on the stack (one value expected)",
                         (unsigned long long)(m.pos - 1), m.stack.count, m.mark_count);
        else
            *root = m.stack.items[0];
        *end = m.pos;
    }
    if (depth > 0)
        m.p->protocol = protocol;
    free(m.stack.items);
    free(m.marks);
    free(m.memo);
    return rc;
}

int sk_pickle_run(const unsigned char *input, uint64_t input_length,
                  const struct sk_pickle_options *options, struct sk_pickle *result,
                  struct sk_error *err)
{
    memset(result, 0, sizeof *result);
    result->input = input;
    result->input_length = input_length;
    result->root = SK_PK_NIL;
    uint64_t opcodes = 0;
    struct sk_pickle_limits limits = {SK_PICKLE_MAX_OPCODES,    SK_PICKLE_MAX_MEMO,
                                      SK_PICKLE_MAX_STACK,      SK_PICKLE_MAX_MARKS,
                                      SK_PICKLE_MAX_LONG_BYTES, SK_PICKLE_MAX_LINE_BYTES,
                                      SK_PICKLE_MAX_VALUES,     SK_PICKLE_MAX_ARENA_BYTES};
    const struct sk_pickle_limits *given = options ? options->limits : NULL;
    if (given) {
        unsigned long long *field = &limits.opcodes;
        const unsigned long long *from = &given->opcodes;
        for (size_t i = 0; i < sizeof limits / sizeof limits.opcodes; i++)
            if (from[i])
                field[i] = from[i];
    }
    struct machine outer = {.p = result, .opcodes = &opcodes, .limits = &limits, .err = err};
    bool joblib = options && options->joblib;
    if (run_stream(&outer, 0, joblib, 0, &result->root, &result->end) != 0)
        return -1;
    if (result->end == input_length)
        return 0;
    /* What follows the first STOP: pickle.load ignores it, a loop that
     * loads until EOF runs it. Read it for its globals; report it. */
    uint64_t start = result->end;
    int protocol = result->protocol;
    struct sk_error second = {0};
    struct machine again = {.p = result, .opcodes = &opcodes, .limits = &limits, .err = &second};
    uint32_t root;
    uint64_t end;
    uint32_t first_global = result->global_count;
    int rc = run_stream(&again, start, joblib, 0, &root, &end);
    result->protocol = protocol;
    if (add_finding(&outer, start, NULL,
                    rc == 0 ? "a second pickle stream after STOP"
                            : "bytes after STOP that are not one pickle") != 0)
        return -1;
    for (uint32_t i = first_global; i < result->global_count; i++)
        if (add_finding(&outer, result->globals[i].offset,
                        &result->values[result->globals[i].value],
                        "global of a pickle stream after the first STOP") != 0)
            return -1;
    return 0;
}

void sk_pickle_free(struct sk_pickle *p)
{
    for (uint32_t i = 0; i < p->value_count; i++) {
        struct sk_pk_value *v = &p->values[i];
        switch (v->kind) {
        case SK_PK_TUPLE:
        case SK_PK_LIST:
        case SK_PK_DICT:
        case SK_PK_SET:
        case SK_PK_FROZENSET:
            free(v->u.items.items);
            break;
        case SK_PK_CALL:
            free(v->u.call.list_items.items);
            free(v->u.call.dict_items.items);
            break;
        default:
            break;
        }
    }
    free(p->values);
    free(p->globals);
    for (uint32_t i = 0; i < p->finding_count; i++) {
        free(p->findings[i].global);
        free(p->findings[i].what);
    }
    free(p->findings);
    for (uint32_t i = 0; i < p->block_count; i++)
        free(p->blocks[i]);
    free(p->blocks);
    memset(p, 0, sizeof *p);
}
