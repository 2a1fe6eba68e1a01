#include "names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entry.h"
#include "sha256.h"
#include "sk_limits.h"
#include "strmap.h"

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

/* Percent-escapes what a name cannot hold or must not start with. */
static size_t escape_key(const char *key, size_t length, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t used = 0;
    if (length == 0) {
        out[used++] = '%';
        return used;
    }
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c == '/' || c == '%' || c == '\0' || (i == 0 && c == '.')) {
            out[used++] = '%';
            out[used++] = hex[c >> 4];
            out[used++] = hex[c & 15];
        } else {
            out[used++] = (char)c;
        }
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

char *sk_layout_name(const char *key, size_t key_length, const char *suffix, unsigned ordinal)
{
    char tail[32];
    if (ordinal > 1)
        snprintf(tail, sizeof tail, "~%u%s", ordinal, suffix);
    else
        snprintf(tail, sizeof tail, "%s", suffix);
    size_t tail_length = strlen(tail);
    char *escaped = malloc(key_length * 3 + 2);
    if (escaped == NULL)
        return NULL;
    size_t length = escape_key(key, key_length, escaped);
    char *name =
        malloc(SK_MAX_NAME_BYTES + 1 > length + tail_length + 1 ? SK_MAX_NAME_BYTES + 1
                                                                : length + tail_length + 1);
    if (name == NULL) {
        free(escaped);
        return NULL;
    }
    if (length + tail_length <= SK_MAX_NAME_BYTES) {
        memcpy(name, escaped, length);
        memcpy(name + length, tail, tail_length + 1);
    } else {
        /* Too long: cut, and tell cut names apart by a hash of the key. */
        unsigned char digest[SK_SHA256_DIGEST_BYTES];
        sk_sha256(key, key_length, digest);
        size_t cut =
            safe_cut(escaped, length, SK_MAX_NAME_BYTES - 1 - SK_SHORT_HASH_DIGITS - tail_length);
        memcpy(name, escaped, cut);
        snprintf(name + cut, SK_MAX_NAME_BYTES + 1 - cut, "~%02x%02x%02x%02x%s", digest[0],
                 digest[1], digest[2], digest[3], tail);
    }
    free(escaped);
    return name;
}

char *sk_unique_name(const struct sk_entry *directory, const char *key, size_t key_length,
                     bool fixed, const char *suffix, struct sk_error *err)
{
    for (unsigned ordinal = 1; ordinal <= SK_MAX_CHILDREN_PER_NODE + 2; ordinal++) {
        if (ordinal == SK_COLLISION_QUICK_TRIES)
            ordinal = (unsigned)directory->child_count + SK_COLLISION_QUICK_TRIES;
        char *name;
        if (fixed) { /* a name of the filesystem's own, never escaped */
            if (ordinal > 1
                    ? asprintf(&name, "%.*s~%u%s", (int)key_length, key, ordinal, suffix) < 0
                    : asprintf(&name, "%.*s%s", (int)key_length, key, suffix) < 0)
                name = NULL;
        } else {
            name = sk_layout_name(key, key_length, suffix, ordinal);
        }
        if (name == NULL) {
            sk_fail(err, "out of memory");
            return NULL;
        }
        if (sk_strmap_get(directory->child_index, name, strlen(name)) == NULL)
            return name;
        free(name);
    }
    sk_fail(err, "cannot find a free name for a key in %s", directory->name);
    return NULL;
}
