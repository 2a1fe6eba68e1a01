/* libFuzzer target: the one-pass schema reader against the jansson reader
 * on the same schema.json (schemadiff.h). Every member a schema names
 * exists, a small .npy, so the fuzzer reaches the loaders rather than
 * "no such member"; any graph that differs aborts. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schemadiff.h"

/* numpy.save(np.arange(2)): a valid member whatever its name. */
static const unsigned char small_npy[] =
    "\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }"
    "                                                            \n"
    "\0\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0";

static uint64_t member_count(const struct sk_store *store)
{
    (void)store;
    return 1;
}

static int find(const struct sk_store *store, const char *name, uint64_t *index)
{
    (void)store;
    (void)name;
    *index = 0;
    return 0;
}

static void member_info(const struct sk_store *store, uint64_t index, struct sk_member_info *info)
{
    (void)store;
    (void)index;
    *info = (struct sk_member_info){
        .name = "any", .size = sizeof small_npy - 1, .comp_size = sizeof small_npy - 1};
}

static int open_member(struct sk_store *store, uint64_t index, bool verified,
                       struct sk_source **out, struct sk_error *err)
{
    (void)store;
    (void)index;
    (void)verified;
    return sk_source_memory(small_npy, sizeof small_npy - 1, false, out, err);
}

static void close_store(struct sk_store *store)
{
    (void)store;
}

static const struct sk_store_ops any_member_ops = {
    .member_count = member_count,
    .find = find,
    .member_info = member_info,
    .open = open_member,
    .close = close_store,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sk_store store = {.ops = &any_member_ops};
    char why[1024];
    if (schema_diff((const char *)data, size, &store, why, sizeof why) == SCHEMA_DIFF_DIFFERENT) {
        fprintf(stderr, "the one-pass reader differs from the jansson reader: %s\n", why);
        abort();
    }
    return 0;
}
