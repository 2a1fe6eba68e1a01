/* SipHash-1-3 (Aumasson and Bernstein; one compression and three
 * finalization rounds, as CPython and Rust use it for their tables) under a
 * per-process random key (hash.h). */
#include "hash.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static uint64_t key[2];
static uint64_t multiplier; /* odd */
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
/* Set once the key is drawn: a hash then costs one load to know it, where
 * pthread_once was a call per hash (an audit of tools/bench's forest
 * hashes some 300,000 times: 6 M instructions). */
static atomic_bool key_drawn;

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void draw_key_now(void)
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

static void draw_key(void)
{
    draw_key_now();
    atomic_store_explicit(&key_drawn, true, memory_order_release);
}

static inline void ensure_key(void)
{
    if (!atomic_load_explicit(&key_drawn, memory_order_acquire))
        pthread_once(&key_once, draw_key);
}

static struct sk_hasher sip_start(void)
{
    ensure_key();
    return (struct sk_hasher){key[0] ^ 0x736f6d6570736575ull, key[1] ^ 0x646f72616e646f6dull,
                              key[0] ^ 0x6c7967656e657261ull, key[1] ^ 0x7465646279746573ull};
}

uint64_t sk_hash_bytes(const void *data, size_t length)
{
    struct sk_hasher s = sip_start();
    size_t whole = length - length % 8;
    sk_hasher_bytes(&s, data, whole);
    /* the tail and the length share the last word */
    const unsigned char *tail = (const unsigned char *)data + whole;
    sk_hasher_word(&s, sk_hash_tail_word(tail, length - whole) | (uint64_t)length << 56);
    return sk_hasher_finish(&s);
}

void sk_hasher_start(struct sk_hasher *hasher)
{
    *hasher = sip_start();
}

uint64_t sk_hasher_finish(struct sk_hasher *hasher)
{
    hasher->v2 ^= 0xff;
    for (int i = 0; i < 3; i++)
        sk_hasher_round(hasher);
    return hasher->v0 ^ hasher->v1 ^ hasher->v2 ^ hasher->v3;
}

size_t sk_hash_u64_slot(uint64_t value, unsigned bits)
{
    ensure_key();
    return (size_t)((value * multiplier) >> (64 - bits));
}

void sk_hash_set_key_for_test(uint64_t k0, uint64_t k1)
{
    ensure_key();
    key[0] = k0;
    key[1] = k1;
}
