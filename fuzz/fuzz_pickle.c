/* libFuzzer target: the pickle machine (joblib sections on) and both
 * mappings of its result (the DAG, and skops's full copies). Seeded with
 * the pickle fixtures (tests/fixtures/pickle). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "pickle.h"
#include "pickle_map.h"

/* Small limits keep each input fast; the code paths are the same. */
static const struct sk_pickle_limits limits = {
    .opcodes = 200000, .memo = 20000, .stack = 20000, .values = 200000, .arena_bytes = 64u << 20};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sk_error err = {0};
    struct sk_pickle p;
    struct sk_pickle_options options = {.joblib = true, .limits = &limits};
    if (sk_pickle_run(data, size, &options, &p, &err) == 0) {
        struct sk_pickle_map map;
        sk_pickle_map(&p, NULL, &map, &err);
        if (map.schema) {
            char *text = json_dumps(map.schema, JSON_COMPACT);
            free(text);
        }
        sk_pickle_map_free(&map);
        struct sk_pickle_map_options copies = {.skops_copies = true};
        sk_pickle_map(&p, &copies, &map, &err);
        sk_pickle_map_free(&map);
    }
    sk_pickle_free(&p);
    return 0;
}
