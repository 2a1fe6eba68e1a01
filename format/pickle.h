/* The pickle machine: runs a pickle (protocols 0-5) symbolically and never
 * imports, calls or looks up anything. The result is an arena of values
 * that keeps the stream's sharing (a value reached twice is one index), the
 * list of every GLOBAL/STACK_GLOBAL/INST with its file offset, and the
 * findings the machine itself can make (PERSID, EXT, NEXT_BUFFER, a second
 * stream after STOP, BUILD or APPENDS on something that is not an object).
 * joblib: with `joblib` set, the raw array section that follows the BUILD of
 * each joblib.numpy_pickle.NumpyArrayWrapper is consumed and recorded as a
 * byte range of the input (or, for object arrays, as a nested pickle). */
#ifndef SKOPSFS_PICKLE_H
#define SKOPSFS_PICKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sk_error.h"

/* Limits (each error names the one it hit). */
#define SK_PICKLE_MAX_OPCODES 200000000ull
#define SK_PICKLE_MAX_MEMO 4000000u
#define SK_PICKLE_MAX_STACK 4000000u
#define SK_PICKLE_MAX_MARKS 4096u /* MARK nesting */
#define SK_PICKLE_MAX_LONG_BYTES 4096u
#define SK_PICKLE_MAX_LINE_BYTES 65536u
#define SK_PICKLE_MAX_VALUES 50000000u
#define SK_PICKLE_MAX_ARENA_BYTES (1ull << 30) /* decoded text and containers */
#define SK_PICKLE_MAX_NESTED_STREAMS 1000000u  /* joblib object arrays */
#define SK_PICKLE_MAX_FINDINGS 10000u

#define SK_PK_NIL UINT32_MAX /* "no value" in an index field */

enum sk_pk_kind {
    SK_PK_NONE,
    SK_PK_BOOL,
    SK_PK_INT,    /* fits int64 */
    SK_PK_BIGINT, /* decimal text in `text` */
    SK_PK_FLOAT,
    SK_PK_STR,       /* UTF-8 text */
    SK_PK_BYTES,     /* raw bytes, a range of the input when offset != UINT64_MAX */
    SK_PK_BYTEARRAY, /* BYTEARRAY8: a range of the input */
    SK_PK_TUPLE,
    SK_PK_LIST,
    SK_PK_DICT, /* items: key, value, key, value ... */
    SK_PK_SET,
    SK_PK_FROZENSET,
    SK_PK_GLOBAL,       /* text = module, text2 = name (after the protocol<3 mapping) */
    SK_PK_CALL,         /* REDUCE/NEWOBJ/NEWOBJ_EX/OBJ/INST */
    SK_PK_JOBLIB_ARRAY, /* wrapper + raw range, or nested pickle root */
    SK_PK_OPAQUE,       /* PERSID, EXT, NEXT_BUFFER: text says what */
};

enum sk_pk_call_kind { SK_PK_REDUCE, SK_PK_NEWOBJ, SK_PK_NEWOBJ_EX, SK_PK_OBJ, SK_PK_INST };

struct sk_pk_text {
    const char *bytes; /* into the input, a static table, or the arena */
    uint64_t length;
};

struct sk_pk_vector {
    uint32_t *items;
    uint32_t count, capacity;
};

struct sk_pk_value {
    enum sk_pk_kind kind;
    uint64_t offset; /* of the opcode that made it */
    union {
        bool boolean;
        int64_t integer;
        double real;
        struct {
            struct sk_pk_text text, text2;
            uint64_t data_offset; /* STR/BYTES/BYTEARRAY: where the payload starts in
                                   * the input, UINT64_MAX when decoded */
        } s;
        struct sk_pk_vector items; /* TUPLE/LIST/DICT/SET/FROZENSET */
        struct {
            enum sk_pk_call_kind kind;
            uint32_t func, args, kwargs, state; /* SK_PK_NIL when absent */
            uint32_t builds;
            struct sk_pk_vector list_items, dict_items; /* APPENDS/SETITEMS on it */
        } call;
        struct {
            uint32_t wrapper;                  /* the NumpyArrayWrapper call */
            uint32_t nested_root;              /* object arrays: the nested pickle's value */
            uint64_t data_offset, data_length; /* raw arrays */
            /* the whole section after the BUILD: padding byte, padding and
             * data, or the nested pickle */
            uint64_t section_start, section_end;
        } joblib;
    } u;
};

struct sk_pk_global {
    struct sk_pk_text module, name;         /* as loaded (protocol < 3: Python 3 names) */
    struct sk_pk_text raw_module, raw_name; /* as the stream spells them */
    uint64_t offset;
    const char *opcode; /* "GLOBAL", "STACK_GLOBAL", "INST" */
    uint32_t value;     /* arena index of the SK_PK_GLOBAL value */
};

/* Something that no skops node can stand for, noticed by the machine. */
struct sk_pk_finding {
    char *global; /* "module.name" involved, or NULL */
    char *what;   /* e.g. "persistent id (BINPERSID)" */
    uint64_t offset;
};

/* Each field overrides the SK_PICKLE_MAX_* limit of the same name; zero
 * keeps the default. */
struct sk_pickle_limits {
    unsigned long long opcodes, memo, stack, marks, long_bytes, line_bytes, values, arena_bytes;
};

struct sk_pickle_options {
    bool joblib;                           /* consume joblib's raw array sections */
    const struct sk_pickle_limits *limits; /* NULL: the defaults */
};

struct sk_pickle {
    const unsigned char *input;
    uint64_t input_length;
    int protocol;
    uint32_t root;
    uint64_t end; /* offset just after the first stream's STOP */
    struct sk_pk_value *values;
    uint32_t value_count, value_capacity;
    struct sk_pk_global *globals;
    uint32_t global_count, global_capacity;
    struct sk_pk_finding *findings;
    uint32_t finding_count, finding_capacity;
    uint64_t arena_bytes;
    void **blocks; /* decoded text owned by the result */
    uint32_t block_count, block_capacity;
};

/* Runs the pickle in INPUT (which must outlive the result). Returns 0 and a
 * result to free with sk_pickle_free, or -1 with ERR set (the result then
 * still holds the globals and findings seen before the error, and must be
 * freed). Bytes after the first stream are tried as a second stream: one
 * that parses is reported as a finding ("a second pickle stream"). */
int sk_pickle_run(const unsigned char *input, uint64_t input_length,
                  const struct sk_pickle_options *options, struct sk_pickle *result,
                  struct sk_error *err);
void sk_pickle_free(struct sk_pickle *result);

static inline const struct sk_pk_value *sk_pickle_value(const struct sk_pickle *p, uint32_t index)
{
    return index < p->value_count ? &p->values[index] : NULL;
}

/* True when VALUE is the global MODULE.NAME. */
bool sk_pickle_is_global(const struct sk_pickle *p, uint32_t value, const char *module,
                         const char *name);
/* True when TEXT equals the NUL-terminated S exactly. */
bool sk_pk_text_is(struct sk_pk_text text, const char *s);

#endif
