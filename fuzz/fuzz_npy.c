/* libFuzzer target: the .npy header parser. */
#include <stddef.h>
#include <stdint.h>

#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sk_error err = {0};
    uint64_t header_length;
    if (sk_npy_header_length(data, size, &header_length, &err) != 0)
        return 0;
    struct sk_npy_header header;
    if (sk_npy_parse(data, size, size, &header, &err) == 0) {
        char shape[SK_MAX_NPY_DIMS * 21 + 1];
        sk_npy_format_shape(&header, shape, sizeof shape);
        sk_npy_header_free(&header);
    }
    return 0;
}
