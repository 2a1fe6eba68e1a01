/* The content check of a scipy sparse matrix: the .npz member skops hands
 * to scipy.sparse.load_npz, whose CSR/CSC index arrays scipy's and
 * scikit-learn's C loops follow without bounds checks. The member is an
 * inner zip (numpy.savez); its arrays are inflated and judged in bounded
 * chunks. The rules and why they matter are in docs/content-checks.md. */
#ifndef SKOPSFS_SPARSE_H
#define SKOPSFS_SPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "sk_error.h"
#include "source.h"

#define SK_SPARSE_MAX_FINDINGS 8

struct sk_sparse_findings {
    const char *codes[SK_SPARSE_MAX_FINDINGS]; /* static strings, each once */
    size_t count;
};

/* Judges the .npz in MEMBER of STORE: each broken rule is one code in
 * *OUT (none for a good matrix or one that is not CSR/CSC). -1 only when
 * memory or a memfd runs out. */
int sk_sparse_check(struct sk_store *store, uint64_t member, struct sk_sparse_findings *out,
                    struct sk_error *err);

/* As sk_sparse_check, on the LENGTH bytes of a .npz already in memory. */
int sk_sparse_check_npz(const unsigned char *bytes, size_t length, struct sk_sparse_findings *out,
                        struct sk_error *err);

#endif
