#include "crc32.h"

#include <zlib.h>

uint32_t sk_crc32_portable(uint32_t crc, const void *data, size_t length)
{
    return (uint32_t)crc32_z(crc, data, length);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define FOLD_TARGET __attribute__((target("pclmul,sse4.1")))

/* Constants of the bit-reflected polynomial 0xEDB88320 (Intel's "Fast CRC
 * Computation for Generic Polynomials Using PCLMULQDQ"): x^k mod P(x) for
 * folding 512 bits (k1, k2) and 128 bits (k3, k4) ahead, 64 to 32 bits
 * (k5), and the Barrett reduction's P(x) and floor(x^64 / P(x)). */
static const uint64_t K1 = 0x154442bd4, K2 = 0x1c6e41596;
static const uint64_t K3 = 0x1751997d0, K4 = 0x0ccaa009e;
static const uint64_t K5 = 0x163cd6124;
static const uint64_t POLY = 0x1db710641, MU = 0x1f7011641;

/* X's two halves multiplied by K's (low by low, high by high), summed. */
FOLD_TARGET static inline __m128i fold(__m128i x, __m128i k)
{
    return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11));
}

FOLD_TARGET static inline __m128i load(const unsigned char *p)
{
    return _mm_loadu_si128((const __m128i *)p);
}

/* The CRC register (not inverted) after LENGTH bytes, LENGTH a multiple of
 * 16 and at least 64. */
FOLD_TARGET static uint32_t fold_bulk(uint32_t crc, const unsigned char *p, size_t length)
{
    __m128i x0 = _mm_xor_si128(load(p), _mm_cvtsi32_si128((int)crc));
    __m128i x1 = load(p + 16), x2 = load(p + 32), x3 = load(p + 48);
    p += 64, length -= 64;
    const __m128i k12 = _mm_set_epi64x((long long)K2, (long long)K1);
    for (; length >= 64; p += 64, length -= 64) {
        x0 = _mm_xor_si128(fold(x0, k12), load(p));
        x1 = _mm_xor_si128(fold(x1, k12), load(p + 16));
        x2 = _mm_xor_si128(fold(x2, k12), load(p + 32));
        x3 = _mm_xor_si128(fold(x3, k12), load(p + 48));
    }
    const __m128i k34 = _mm_set_epi64x((long long)K4, (long long)K3);
    x0 = _mm_xor_si128(fold(x0, k34), x1);
    x0 = _mm_xor_si128(fold(x0, k34), x2);
    x0 = _mm_xor_si128(fold(x0, k34), x3);
    for (; length >= 16; p += 16, length -= 16)
        x0 = _mm_xor_si128(fold(x0, k34), load(p));
    /* 128 to 64 bits: the low half times k4 into the high half */
    x0 = _mm_xor_si128(_mm_clmulepi64_si128(k34, x0, 0x01), _mm_srli_si128(x0, 8));
    /* 64 to 32 bits, then Barrett's reduction to the remainder */
    const __m128i mask32 = _mm_set_epi32(0, 0, 0, -1);
    const __m128i k5 = _mm_set_epi64x(0, (long long)K5);
    x0 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x0, mask32), k5, 0x00),
                       _mm_srli_si128(x0, 4));
    const __m128i barrett = _mm_set_epi64x((long long)MU, (long long)POLY);
    __m128i t = _mm_clmulepi64_si128(_mm_and_si128(x0, mask32), barrett, 0x10);
    t = _mm_clmulepi64_si128(_mm_and_si128(t, mask32), barrett, 0x00);
    return (uint32_t)_mm_extract_epi32(_mm_xor_si128(x0, t), 1);
}

static int has_clmul(void)
{
    static int known = -1;
    if (known < 0)
        known = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
    return known;
}

uint32_t sk_crc32(uint32_t crc, const void *data, size_t length)
{
    const unsigned char *p = data;
    if (length >= 64 && has_clmul()) {
        size_t bulk = length & ~(size_t)15;
        crc = ~fold_bulk(~crc, p, bulk);
        p += bulk, length -= bulk;
    }
    return sk_crc32_portable(crc, p, length);
}

#else

uint32_t sk_crc32(uint32_t crc, const void *data, size_t length)
{
    return sk_crc32_portable(crc, data, length);
}

#endif
