/* libFuzzer target: the one-pass reader against sk_json_parse on the same
 * text (jsondiff.h); any difference but sk_json_parse's known faults aborts. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "jsondiff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[1024];
    if (json_diff((const char *)data, size, why, sizeof why) == JSON_DIFF_DIFFERENT) {
        fprintf(stderr, "jsonscan differs from sk_json_parse: %s\n", why);
        abort();
    }
    return 0;
}
