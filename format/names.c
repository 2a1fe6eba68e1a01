#include "names.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "decimal.h"
#include "entry.h"
#include "sha256.h"
#include "sk_limits.h"

/* Tries of "~N" before falling back to N from the directory's size. */
#define SK_COLLISION_QUICK_TRIES 64u
#define SK_SHORT_HASH_DIGITS 8

const char *sk_name_suffix(const struct sk_node *node)
{
    switch (node->loader) {
    case SK_LOADER_NDARRAY:
        return node->has_member ? ".npy" : "";
    case SK_LOADER_SPARSE_MATRIX:
        return ".npz";
    case SK_LOADER_BYTES:
    case SK_LOADER_BYTEARRAY:
        return ".bin";
    default:
        return "";
    }
}

/* Room for a name as it is built: the longest name, and past it the bytes
 * safe_cut may look at when the escaped key is longer. */
#define NAME_ROOM (SK_MAX_NAME_BYTES + 4u)
/* "~" and the largest unsigned, and the longest suffix. */
#define TAIL_ROOM 32u

/* Percent-escapes what a name cannot hold or must not start with. Writes
 * the first bytes of the escaped key, while a whole escape fits ROOM, and
 * returns its whole length. */
static size_t escape_key(const char *key, size_t length, char *out, size_t room)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t used = 0;
    if (length == 0) {
        out[used++] = '%';
        return used;
    }
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)key[i];
        bool escape = c == '/' || c == '%' || c == '\0' || (i == 0 && c == '.');
        if (used + 3 <= room) {
            if (escape) {
                out[used] = '%';
                out[used + 1] = hex[c >> 4];
                out[used + 2] = hex[c & 15];
            } else {
                out[used] = (char)c;
            }
        }
        used += escape ? 3 : 1;
    }
    return used;
}

/* The longest prefix of NAME of at most LIMIT bytes that does not split a
 * UTF-8 sequence or a %XX escape. */
static size_t safe_cut(const char *name, size_t length, size_t limit)
{
    if (length <= limit)
        return length;
    size_t cut = limit;
    while (cut > 0 && ((unsigned char)name[cut] & 0xC0) == 0x80)
        cut--;
    for (size_t back = 1; back <= 2 && back <= cut; back++)
        if (name[cut - back] == '%')
            cut -= back;
    return cut;
}

/* "~N" (for N > 1) and SUFFIX at OUT (TAIL_ROOM bytes), NUL-terminated. */
static size_t put_tail(char *out, unsigned ordinal, const char *suffix)
{
    size_t length = 0;
    if (ordinal > 1) {
        out[length++] = '~';
        length += sk_decimal(ordinal, out + length);
    }
    size_t suffix_length = strlen(suffix);
    memcpy(out + length, suffix, suffix_length + 1);
    return length + suffix_length;
}

/* The name sk_layout_name returns, built at NAME (NAME_ROOM bytes); returns
 * its length. */
static size_t build_name(const char *key, size_t key_length, const char *suffix, unsigned ordinal,
                         char *name)
{
    static const char hex[] = "0123456789abcdef";
    char tail[TAIL_ROOM];
    size_t tail_length = put_tail(tail, ordinal, suffix);
    size_t length = escape_key(key, key_length, name, NAME_ROOM);
    if (length + tail_length <= SK_MAX_NAME_BYTES) {
        memcpy(name + length, tail, tail_length + 1);
        return length + tail_length;
    }
    /* Too long: cut, and tell cut names apart by a hash of the key. */
    unsigned char digest[SK_SHA256_DIGEST_BYTES];
    sk_sha256(key, key_length, digest);
    size_t cut = safe_cut(name, length, SK_MAX_NAME_BYTES - 1 - SK_SHORT_HASH_DIGITS - tail_length);
    name[cut++] = '~';
    for (size_t i = 0; i < SK_SHORT_HASH_DIGITS / 2; i++) {
        name[cut++] = hex[digest[i] >> 4];
        name[cut++] = hex[digest[i] & 15];
    }
    memcpy(name + cut, tail, tail_length + 1);
    return cut + tail_length;
}

static char *copy_name(const char *name, size_t length)
{
    char *copy = malloc(length + 1);
    if (copy != NULL)
        memcpy(copy, name, length + 1);
    return copy;
}

char *sk_layout_name(const char *key, size_t key_length, const char *suffix, unsigned ordinal)
{
    char name[NAME_ROOM];
    size_t length = build_name(key, key_length, suffix, ordinal, name);
    return copy_name(name, length);
}

/* A name of the filesystem's own, never escaped nor cut: KEY, "~N" for
 * N > 1, and SUFFIX, at NAME (KEY_LENGTH + TAIL_ROOM bytes). */
static size_t build_fixed_name(const char *key, size_t key_length, const char *suffix,
                               unsigned ordinal, char *name)
{
    memcpy(name, key, key_length);
    return key_length + put_tail(name + key_length, ordinal, suffix);
}

char *sk_unique_name(struct sk_arena *arena, const struct sk_entry *directory, const char *key,
                     size_t key_length, bool fixed, const char *suffix, struct sk_error *err)
{
    char room[NAME_ROOM];
    char *name = room;
    if (fixed && key_length > NAME_ROOM - TAIL_ROOM &&
        (name = malloc(key_length + TAIL_ROOM)) == NULL) {
        sk_fail(err, "out of memory");
        return NULL;
    }
    char *unique = NULL;
    for (unsigned ordinal = 1; ordinal <= SK_MAX_CHILDREN_PER_NODE + 2; ordinal++) {
        if (ordinal == SK_COLLISION_QUICK_TRIES)
            ordinal = (unsigned)directory->child_count + SK_COLLISION_QUICK_TRIES;
        size_t length = fixed ? build_fixed_name(key, key_length, suffix, ordinal, name)
                              : build_name(key, key_length, suffix, ordinal, name);
        if (sk_entry_child_bytes(directory, name, length) == NULL) {
            unique = sk_arena_copy(arena, name, length, 1);
            if (unique == NULL)
                sk_fail(err, "out of memory");
            break;
        }
    }
    if (name != room)
        free(name);
    if (unique == NULL) /* the first cause wins: out of memory, where it was */
        sk_fail(err, "cannot find a free name for a key in %s", directory->name);
    return unique;
}
