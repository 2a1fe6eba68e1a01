/* SipHash-1-3 (Aumasson and Bernstein; one compression and three
 * finalization rounds, as CPython and Rust use it for their tables) under a
 * per-process random key (hash.h). */
#include "hash.h"

#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static uint64_t key[2];
static uint64_t multiplier; /* odd */
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void draw_key(void)
{
    uint64_t drawn[3];
    if (getrandom(drawn, sizeof drawn, GRND_NONBLOCK) == (ssize_t)sizeof drawn) {
        key[0] = drawn[0];
        key[1] = drawn[1];
        multiplier = drawn[2] | 1;
        return;
    }
    /* No entropy yet (early boot): what a file cannot know in advance. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t state = (uint64_t)now.tv_nsec ^ ((uint64_t)now.tv_sec << 32) ^
                     ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)&now;
    key[0] = splitmix(&state);
    key[1] = splitmix(&state);
    multiplier = splitmix(&state) | 1;
}

static uint64_t rotl(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64 - b));
}

struct sip {
    uint64_t v0, v1, v2, v3;
};

static void sip_round(struct sip *s)
{
    s->v0 += s->v1;
    s->v1 = rotl(s->v1, 13) ^ s->v0;
    s->v0 = rotl(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = rotl(s->v3, 16) ^ s->v2;
    s->v0 += s->v3;
    s->v3 = rotl(s->v3, 21) ^ s->v0;
    s->v2 += s->v1;
    s->v1 = rotl(s->v1, 17) ^ s->v2;
    s->v2 = rotl(s->v2, 32);
}

static struct sip sip_start(void)
{
    pthread_once(&key_once, draw_key);
    return (struct sip){key[0] ^ 0x736f6d6570736575ull, key[1] ^ 0x646f72616e646f6dull,
                        key[0] ^ 0x6c7967656e657261ull, key[1] ^ 0x7465646279746573ull};
}

static void sip_absorb(struct sip *s, uint64_t word)
{
    s->v3 ^= word;
    sip_round(s);
    s->v0 ^= word;
}

static uint64_t sip_finish(struct sip *s)
{
    s->v2 ^= 0xff;
    for (int i = 0; i < 3; i++)
        sip_round(s);
    return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

static uint64_t load_le64(const unsigned char *p, size_t length)
{
    uint64_t word = 0;
    for (size_t i = 0; i < length; i++)
        word |= (uint64_t)p[i] << (8 * i);
    return word;
}

uint64_t sk_hash_bytes(const void *data, size_t length)
{
    const unsigned char *bytes = data;
    struct sip s = sip_start();
    size_t whole = length - length % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t word;
        memcpy(&word, bytes + i, sizeof word);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        word = __builtin_bswap64(word);
#endif
        sip_absorb(&s, word);
    }
    sip_absorb(&s, load_le64(bytes + whole, length - whole) | (uint64_t)length << 56);
    return sip_finish(&s);
}

size_t sk_hash_u64_slot(uint64_t value, unsigned bits)
{
    pthread_once(&key_once, draw_key);
    return (size_t)((value * multiplier) >> (64 - bits));
}

void sk_hash_set_key_for_test(uint64_t k0, uint64_t k1)
{
    pthread_once(&key_once, draw_key);
    key[0] = k0;
    key[1] = k1;
}
