/* What the readers that decode escapes (JSON's \uXXXX, pickle's
 * raw-unicode-escape) share: a hex digit's value, and UTF-8 encoding of one
 * code point. */
#ifndef SKOPSFS_UTF8_H
#define SKOPSFS_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Writes CODE (at most U+10FFFF, checked by the caller) into OUT, which has
 * room for 4 bytes; returns how many it wrote. */
size_t sk_utf8_put(char *out, uint32_t code);

/* The value of the hex digit C, or -1 for any other character. */
int sk_hex_value(char c);

#endif
