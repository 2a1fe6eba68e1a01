/* libFuzzer target: a sparse matrix's .npz (inner zip, format, shape and
 * CSR/CSC index arrays) as the content check reads it. */
#include <stddef.h>
#include <stdint.h>

#include "sparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sk_error err = {0};
    struct sk_sparse_findings findings;
    sk_sparse_check_npz(data, size, &findings, &err);
    return 0;
}
