#include "jsonscan.h"

#include "grow.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "utf8.h"

/* What the grammar allows next. */
enum expect {
    EXPECT_ROOT,        /* '[' or '{' */
    EXPECT_VALUE,       /* after ':' or an array's ',' */
    EXPECT_FIRST_VALUE, /* after '[': a value or ']' */
    EXPECT_FIRST_KEY,   /* after '{': a key or '}' */
    EXPECT_KEY,         /* after an object's ',' */
    EXPECT_COLON,
    EXPECT_NEXT, /* after a value inside a container: ',' or its end */
    EXPECT_EOF,  /* after the top-level value: whitespace only */
    EXPECT_DONE,
    EXPECT_FAILED,
};

/* The words of jsontext.c, which tests and users know. */
#define SPELLED_MARK_MESSAGE                                                                       \
    "a string starts with NUL and 'bigint:', which skopsfs uses to mark integers too large "       \
    "for 64 bits; refused so that no string can pass for an integer"
#define NUL_AND_U10FFFF_MESSAGE                                                                    \
    "keys hold both NUL and U+10FFFF characters; skopsfs cannot tell them apart"
#define BIG_INTEGER_MARK "\0bigint:"
#define BIG_INTEGER_MARK_LENGTH 8

/* Bytes a string holds as they are: printable ASCII but '"' and '\\'. */
static bool plain_byte(unsigned char c)
{
    return (unsigned char)(c - 0x20) < 0x60 && c != '"' && c != '\\';
}

/* Eight bytes at a time (SWAR) where most bytes need no look: the runs of
 * indentation and of plain string bytes that make most of a schema. */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static uint64_t load8(const char *p)
{
    uint64_t word;
    memcpy(&word, p, sizeof word);
    return word;
}

/* Whether some byte of WORD is below N (N <= 128). */
static bool has_below(uint64_t word, unsigned n)
{
    return ((word - ONES * n) & ~word & HIGHS) != 0;
}

static bool has_byte(uint64_t word, unsigned char c)
{
    return has_below(word ^ (ONES * c), 1);
}

/* P moved past the plain string bytes that follow it. */
static inline __attribute__((always_inline)) const char *skip_plain(const char *p, const char *end)
{
#ifdef __SSE2__
    /* Sixteen at a time: a byte below 0x20 as a signed byte is a control
     * byte or one of UTF-8's (0x80 and up), which the byte loop takes. */
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'),
                  space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i bytes = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i stop = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(bytes, quote), _mm_cmpeq_epi8(bytes, backslash)),
            _mm_cmplt_epi8(bytes, space));
        unsigned mask = (unsigned)_mm_movemask_epi8(stop);
        if (mask != 0)
            return p + __builtin_ctz(mask);
        p += 16;
    }
#endif
    while (end - p >= 8) {
        uint64_t word = load8(p);
        if ((word & HIGHS) || has_below(word, 0x20) || has_byte(word, '"') || has_byte(word, '\\'))
            break;
        p += 8;
    }
    while (p < end && plain_byte((unsigned char)*p))
        p++;
    return p;
}

static bool is_whitespace(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Indentation comes after a newline: the run of spaces is taken eight at
 * a time after every other whitespace byte, not only at the start; with
 * SSE2, sixteen bytes of any whitespace at a time (a newline and the
 * indentation after it, mostly, in one step). */
static const char *skip_whitespace_run(const char *p, const char *end)
{
#ifdef __SSE2__
    const __m128i space = _mm_set1_epi8(' '), newline = _mm_set1_epi8('\n'),
                  tab = _mm_set1_epi8('\t'), carriage = _mm_set1_epi8('\r');
    while (end - p >= 16) {
        __m128i bytes = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i white =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(bytes, space), _mm_cmpeq_epi8(bytes, newline)),
                         _mm_or_si128(_mm_cmpeq_epi8(bytes, tab), _mm_cmpeq_epi8(bytes, carriage)));
        unsigned other = ~(unsigned)_mm_movemask_epi8(white) & 0xffff;
        if (other != 0)
            return p + __builtin_ctz(other);
        p += 16;
    }
#endif
    for (;;) {
        while (end - p >= 8) {
            uint64_t other = load8(p) ^ (ONES * ' ');
            if (other != 0) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                p += __builtin_ctzll(other) / 8; /* the spaces before the first other byte */
#endif
                break;
            }
            p += 8;
        }
        if (p == end || !is_whitespace(*p))
            return p;
        p++;
    }
}

/* None, or the one space after a ':', is seen here (inline: it is asked
 * for two and three times a token); longer runs go to the loop above. */
static inline const char *skip_whitespace(const char *p, const char *end)
{
    if (p < end && (unsigned char)*p > ' ')
        return p;
    if (end - p >= 2 && *p == ' ' && (unsigned char)p[1] > ' ')
        return p + 1;
    return skip_whitespace_run(p, end);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

void sk_json_scan_init(struct sk_json_scan *scan, const char *text, size_t length)
{
    memset(scan, 0, offsetof(struct sk_json_scan, in_object));
    scan->text = text;
    scan->at = text;
    scan->end = text + length;
    scan->expect = EXPECT_ROOT;
    scan->whole = true;
}

void sk_json_scan_init_streamed(struct sk_json_scan *scan, const char *text,
                                int (*more)(void *context, struct sk_json_scan *scan),
                                void *context)
{
    sk_json_scan_init(scan, text, 0);
    scan->whole = false;
    scan->more = more;
    scan->more_context = context;
}

/* Fails with jansson's message at AT: line, and column in characters. */
__attribute__((format(printf, 4, 5))) static enum sk_json_token
fail(struct sk_json_scan *scan, const char *at, struct sk_error *err, const char *fmt, ...)
{
    char reason[256];
    va_list args;
    va_start(args, fmt);
    vsnprintf(reason, sizeof reason, fmt, args);
    va_end(args);
    scan->expect = EXPECT_FAILED;
    if (scan->more != NULL) {
        sk_fail(err, "invalid JSON: %s", reason);
        return SK_JSON_ERROR;
    }
    int line = 1;
    int column = 0;
    for (const char *p = scan->text; p < at && p < scan->end; p++) {
        if (*p == '\n') {
            line++;
            column = 0;
        } else if (((unsigned char)*p & 0xc0) != 0x80) {
            column++;
        }
    }
    sk_fail(err, "invalid JSON at line %d, column %d: %s", line, column, reason);
    return SK_JSON_ERROR;
}

static enum sk_json_token fail_plainly(struct sk_json_scan *scan, struct sk_error *err,
                                       const char *message)
{
    scan->expect = EXPECT_FAILED;
    sk_fail(err, "%s", message);
    return SK_JSON_ERROR;
}

/* The value of the \uXXXX escape at P (P[0] == '\\'), or -1 where the four
 * hex digits are not all there before END. */
static long escape_value(const char *p, const char *end)
{
    if (end - p < 6 || p[1] != 'u')
        return -1;
    long value = 0;
    for (int i = 2; i < 6; i++) {
        int digit = sk_hex_value(p[i]);
        if (digit < 0)
            return -1;
        value = value * 16 + digit;
    }
    return value;
}

/* The length of the valid UTF-8 sequence at P (P[0] >= 0x80), or 0. */
static size_t utf8_length(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t length;
    unsigned char low = 0x80, high = 0xbf; /* the second byte's range */
    if (c >= 0xc2 && c <= 0xdf) {
        length = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        length = 3;
        low = c == 0xe0 ? 0xa0 : 0x80;  /* no overlong form */
        high = c == 0xed ? 0x9f : 0xbf; /* no surrogate */
    } else if (c >= 0xf0 && c <= 0xf4) {
        length = 4;
        low = c == 0xf0 ? 0x90 : 0x80;
        high = c == 0xf4 ? 0x8f : 0xbf; /* nothing beyond U+10FFFF */
    } else {
        return 0;
    }
    if ((size_t)(end - p) < length || p[1] < low || p[1] > high)
        return 0;
    for (size_t i = 2; i < length; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return length;
}

/* Checks the escape at P (P[0] == '\\') as jansson does; returns the
 * position after it, or NULL with the scan failed. Notes NUL in a key and
 * U+10FFFF anywhere. */
static const char *scan_escape(struct sk_json_scan *scan, const char *p, bool key,
                               struct sk_error *err)
{
    if (scan->end - p < 2) {
        fail(scan, scan->end, err, "premature end of input");
        return NULL;
    }
    if (strchr("\"\\/bfnrt", p[1]) != NULL && p[1] != '\0')
        return p + 2;
    long value = escape_value(p, scan->end);
    if (value < 0) {
        fail(scan, p + 2, err, "invalid escape");
        return NULL;
    }
    if (value >= 0xdc00 && value <= 0xdfff) {
        fail(scan, p + 6, err, "invalid Unicode '\\u%04lX'", value);
        return NULL;
    }
    if (value >= 0xd800 && value <= 0xdbff) {
        long low = p + 6 < scan->end && p[6] == '\\' ? escape_value(p + 6, scan->end) : -1;
        if (low < 0) {
            fail(scan, p + 6, err, "invalid Unicode '\\u%04lX'", value);
            return NULL;
        }
        if (low < 0xdc00 || low > 0xdfff) {
            fail(scan, p + 12, err, "invalid Unicode '\\u%04lX\\u%04lX'", value, low);
            return NULL;
        }
        if (value == 0xdbff && low == 0xdfff)
            scan->has_u10ffff = true;
        return p + 12;
    }
    if (value == 0 && key)
        scan->nul_key = true;
    return p + 6;
}

/* One decoded character of a checked string at *P into OUT; returns its
 * byte count and moves *P past it. */
static size_t decode_one(const char **p, char out[4])
{
    const char *s = *p;
    if (*s != '\\') {
        out[0] = *s;
        *p = s + 1;
        return 1;
    }
    static const char shortcuts[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
    const char *shortcut = strchr(shortcuts, s[1]);
    if (s[1] != 'u' && shortcut != NULL) {
        out[0] = shortcut[1];
        *p = s + 2;
        return 1;
    }
    long code = escape_value(s, s + 6);
    *p = s + 6;
    if (code >= 0xd800 && code <= 0xdbff) {
        code = 0x10000 + ((code - 0xd800) << 10) + (escape_value(s + 6, s + 12) - 0xdc00);
        *p = s + 12;
    }
    return sk_utf8_put(out, (uint32_t)code);
}

/* Whether the checked string value [P, END) decodes to something starting
 * with the big-integer mark. Only one starting with an escaped NUL can. */
static bool spells_mark(const char *p, const char *end)
{
    if (end - p < 6 || memcmp(p, "\\u0000", 6) != 0)
        return false;
    char prefix[BIG_INTEGER_MARK_LENGTH + 4];
    size_t used = 0;
    while (p < end && used < BIG_INTEGER_MARK_LENGTH)
        used += decode_one(&p, prefix + used);
    return used >= BIG_INTEGER_MARK_LENGTH &&
           memcmp(prefix, BIG_INTEGER_MARK, BIG_INTEGER_MARK_LENGTH) == 0;
}

/* The string whose opening quote is at P-1, into EVENT. */
static enum sk_json_token scan_string(struct sk_json_scan *scan, const char *p, bool key,
                                      struct sk_json_event *event, struct sk_error *err)
{
    const char *end = scan->end;
    event->start = p;
    event->escaped = false;
    for (;;) {
        p = skip_plain(p, end);
        if (p == end)
            return fail(scan, end, err, "premature end of input");
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            break;
        if (c == '\\') {
            event->escaped = true;
            p = scan_escape(scan, p, key, err);
            if (p == NULL)
                return SK_JSON_ERROR;
        } else if (c < 0x20) {
            return fail(scan, p, err, c == '\n' ? "unexpected newline" : "control character 0x%x",
                        c);
        } else {
            size_t length = utf8_length((const unsigned char *)p, (const unsigned char *)end);
            if (length == 0)
                return fail(scan, p, err, "unable to decode byte 0x%x", c);
            if (length == 4 && memcmp(p, "\xf4\x8f\xbf\xbf", 4) == 0)
                scan->has_u10ffff = true;
            p += length;
        }
    }
    event->length = (size_t)(p - event->start);
    scan->at = p + 1;
    if (!key && event->escaped && scan->spelled == NULL && spells_mark(event->start, p))
        scan->spelled = event->start;
    return event->token = key ? SK_JSON_KEY : SK_JSON_STRING;
}

/* Whether each byte of WORD is an ASCII digit. */
static bool digits8(uint64_t word)
{
    return (word & 0xf0f0f0f0f0f0f0f0ull) == 0x3030303030303030ull &&
           ((word + 0x0606060606060606ull) & 0xf0f0f0f0f0f0f0f0ull) == 0x3030303030303030ull;
}

/* P moved past the digits that follow it, eight at a time where it can
 * (an __id__ has fifteen, a threshold's fraction sixteen or so). */
static const char *skip_digits(const char *p, const char *end)
{
    while (end - p >= 8 && digits8(load8(p)))
        p += 8;
    while (p < end && is_digit(*p))
        p++;
    return p;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* The value of the eight digits at P, the first the most significant:
 * pairs, then fours, then all eight, each step one multiply. */
static uint64_t eight_digits(const char *p)
{
    uint64_t word = load8(p);
    word = ((word & 0x0f0f0f0f0f0f0f0full) * 2561) >> 8;
    word = ((word & 0x00ff00ff00ff00ffull) * 6553601) >> 16;
    return ((word & 0x0000ffff0000ffffull) * 42949672960001ull) >> 32;
}
#endif

/* The value of the digits [D, Q), at most 19 of them. */
static inline uint64_t digits_value(const char *d, const char *q)
{
    uint64_t magnitude = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; q - d >= 8; d += 8)
        magnitude = magnitude * 100000000 + eight_digits(d);
#endif
    for (; d < q; d++)
        magnitude = magnitude * 10 + (uint64_t)(*d - '0');
    return magnitude;
}

/* Whether the real [P, END) may be beyond a double's range, so that it
 * needs strtod to tell: only when its decimal exponent nears 308. */
static bool may_overflow(const char *p, const char *end)
{
    p += *p == '-';
    while (p < end && (*p == '0' || *p == '.'))
        p++;
    long magnitude = 0; /* digits before the point, leading zeros left out */
    while (p < end && is_digit(*p) && magnitude < 100000)
        p++, magnitude++;
    while (p < end && *p != 'e' && *p != 'E')
        p++;
    if (p == end)
        return magnitude > 300;
    p++;
    bool negative = *p == '-';
    p += *p == '-' || *p == '+';
    long exponent = 0;
    while (p < end && exponent < 100000)
        exponent = exponent * 10 + (*p++ - '0');
    return magnitude + (negative ? -exponent : exponent) > 300;
}

/* strtod over the token [P, P+LENGTH), which is not NUL-terminated. */
static double to_double(const char *p, size_t length)
{
    char small[64];
    char *copy = length < sizeof small ? small : malloc(length + 1);
    if (copy == NULL)
        return NAN;
    memcpy(copy, p, length);
    copy[length] = '\0';
    errno = 0;
    double value = strtod(copy, NULL);
    if (errno == ERANGE && (value == HUGE_VAL || value == -HUGE_VAL))
        value = INFINITY;
    if (copy != small)
        free(copy);
    return value;
}

/* jansson drops a NUL byte that ends a number or a literal: it puts the
 * byte back, then takes the NUL for its own "nothing put back" mark. So does
 * sk_json_parse, and so this reader. Not after a big integer, which
 * sk_json_parse rewrites as a string (a NUL after one is refused). */
static const char *after_nul(const char *p, const char *end)
{
    return p < end && *p == '\0' ? p + 1 : p;
}

/* Whether the integer's digits [DIGITS, DIGITS+COUNT) exceed int64. */
static bool beyond_int64(const char *digits, size_t count, bool negative)
{
    if (count != 19)
        return count > 19;
    return memcmp(digits, negative ? "9223372036854775808" : "9223372036854775807", 19) > 0;
}

static enum sk_json_token scan_number(struct sk_json_scan *scan, const char *p,
                                      struct sk_json_event *event, struct sk_error *err)
{
    const char *end = scan->end;
    const char *q = p + (*p == '-');
    const char *digits = q;
    if (q < end && *q == '0') {
        q++;
        if (q < end && is_digit(*q))
            return fail(scan, q, err, "invalid token");
    } else if (q < end && is_digit(*q)) {
        q = skip_digits(q, end);
    } else {
        return fail(scan, q, err, "invalid token");
    }
    size_t digit_count = (size_t)(q - digits);
    bool real = false;
    if (q < end && *q == '.') {
        real = true;
        if (++q == end || !is_digit(*q))
            return fail(scan, q, err, "invalid token");
        q = skip_digits(q, end);
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        real = true;
        q++;
        q += q < end && (*q == '+' || *q == '-');
        if (q == end || !is_digit(*q))
            return fail(scan, q, err, "invalid token");
        q = skip_digits(q, end);
    }
    event->start = p;
    event->length = (size_t)(q - p);
    scan->at = q;
    if (real) {
        double value = may_overflow(p, q) ? to_double(p, event->length) : 0;
        if (isnan(value))
            return fail_plainly(scan, err, "out of memory");
        if (isinf(value))
            return fail(scan, q, err, "real number overflow");
        scan->at = after_nul(q, end);
        return event->token = SK_JSON_REAL;
    }
    bool negative = *p == '-';
    if (beyond_int64(digits, digit_count, negative))
        return event->token = SK_JSON_BIG_INTEGER;
    scan->at = after_nul(q, end);
    uint64_t magnitude = digits_value(digits, q); /* at most 19 digits: no overflow */
    event->integer = negative ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
    return event->token = SK_JSON_INTEGER;
}

static enum sk_json_token scan_literal(struct sk_json_scan *scan, const char *p,
                                       struct sk_json_event *event, struct sk_error *err)
{
    static const struct {
        const char *word;
        enum sk_json_token token;
    } literals[] = {{"true", SK_JSON_TRUE}, {"false", SK_JSON_FALSE}, {"null", SK_JSON_NULL}};
    const char *q = p;
    while (q < scan->end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
        q++;
    size_t length = (size_t)(q - p);
    for (size_t i = 0; i < sizeof literals / sizeof literals[0]; i++) {
        if (length == strlen(literals[i].word) && memcmp(p, literals[i].word, length) == 0) {
            event->start = p;
            event->length = length;
            scan->at = after_nul(q, scan->end);
            return event->token = literals[i].token;
        }
    }
    return fail(scan, q > p ? q : p + 1, err, "invalid token");
}

static void set_in_object(struct sk_json_scan *scan, bool object)
{
    unsigned char bit = (unsigned char)(1u << (scan->depth % 8));
    if (object)
        scan->in_object[scan->depth / 8] |= bit;
    else
        scan->in_object[scan->depth / 8] &= (unsigned char)~bit;
}

static bool in_object(const struct sk_json_scan *scan)
{
    unsigned index = scan->depth - 1;
    return scan->in_object[index / 8] & (1u << (index % 8));
}

/* What follows a complete value. */
static void after_value(struct sk_json_scan *scan)
{
    scan->expect = scan->depth == 0 ? EXPECT_EOF : EXPECT_NEXT;
}

/* The '{' or '[' at P opens a container. */
static inline enum sk_json_token open_container(struct sk_json_scan *scan, const char *p,
                                                struct sk_json_event *event)
{
    set_in_object(scan, *p == '{');
    scan->depth++;
    scan->expect = *p == '{' ? EXPECT_FIRST_KEY : EXPECT_FIRST_VALUE;
    scan->at = p + 1;
    event->start = p;
    event->length = 1;
    return event->token = *p == '{' ? SK_JSON_OBJECT_START : SK_JSON_ARRAY_START;
}

/* The value that starts at P, whatever it is (scan_value's way for all
 * but the values it takes inline). */
static __attribute__((noinline)) enum sk_json_token scan_value_rest(struct sk_json_scan *scan,
                                                                    const char *p,
                                                                    struct sk_json_event *event,
                                                                    struct sk_error *err)
{
    if (scan->depth + 1 > SK_JSON_MAX_DEPTH)
        return fail(scan, p, err, "maximum parsing depth reached");
    event->escaped = false;
    char c = *p;
    if (c == '{' || c == '[')
        return open_container(scan, p, event);
    enum sk_json_token token;
    if (c == '"')
        token = scan_string(scan, p + 1, false, event, err);
    else if (c == '-' || is_digit(c))
        token = scan_number(scan, p, event, err);
    else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        token = scan_literal(scan, p, event, err);
    else if (strchr("]}:,", c) != NULL && c != '\0')
        token = fail(scan, p + 1, err, "unexpected token");
    else
        token = fail(scan, p + 1, err, "invalid token");
    if (token != SK_JSON_ERROR)
        after_value(scan);
    return token;
}

static enum sk_json_token close_container(struct sk_json_scan *scan, const char *p,
                                          struct sk_json_event *event)
{
    scan->depth--;
    after_value(scan);
    scan->at = p + 1;
    event->start = p;
    event->length = 1;
    event->escaped = false;
    return event->token = *p == '}' ? SK_JSON_OBJECT_END : SK_JSON_ARRAY_END;
}

/* The checks sk_json_parse makes once the text has parsed. */
static enum sk_json_token finish(struct sk_json_scan *scan, struct sk_json_event *event,
                                 struct sk_error *err)
{
    if (scan->nul_key && scan->has_u10ffff)
        return fail_plainly(scan, err, NUL_AND_U10FFFF_MESSAGE);
    if (scan->spelled != NULL)
        return fail_plainly(scan, err, SPELLED_MARK_MESSAGE);
    scan->expect = EXPECT_DONE;
    event->start = scan->end;
    event->length = 0;
    return event->token = SK_JSON_END;
}

/* A plain string's bytes from P (after its opening quote) to its closing
 * quote, or NULL where the string is not plain to its end: the strings
 * scan_value and scan_key take inline, without a call (a call would have
 * every caller save registers, some 30 instructions a token). */
static inline const char *plain_string_end(const char *p, const char *end)
{
    const char *q = skip_plain(p, end);
    return q < end && *q == '"' ? q : NULL;
}

/* EVENT spans the plain string [START, CLOSE) (plain_string_end's). */
static inline void plain_string_event(struct sk_json_event *event, const char *start,
                                      const char *close)
{
    event->start = start;
    event->length = (size_t)(close - start);
    event->escaped = false;
}

/* A positive integer of at most 18 digits that starts at P (an __id__
 * has 15), ended by a byte that makes it neither a real nor its NUL
 * dropped; anything else by scan_value_rest, from P. */
static inline enum sk_json_token scan_plain_integer(struct sk_json_scan *scan, const char *p,
                                                    struct sk_json_event *event,
                                                    struct sk_error *err)
{
    const char *end = scan->end;
    const char *q = skip_digits(p, end);
    if (q - p > 18 || q == end || *q == '.' || *q == 'e' || *q == 'E' || *q == '\0')
        return scan_value_rest(scan, p, event, err);
    uint64_t magnitude = digits_value(p, q);
    event->start = p;
    event->length = (size_t)(q - p);
    event->escaped = false;
    event->integer = (int64_t)magnitude;
    scan->at = q;
    after_value(scan);
    return event->token = SK_JSON_INTEGER;
}

/* The value that starts at P: a plain string, a plain integer or a
 * container's start with no call (these make nearly every value of a
 * schema; a call would have every caller save registers), the rest by
 * scan_value_rest. */
static inline enum sk_json_token scan_value(struct sk_json_scan *scan, const char *p,
                                            struct sk_json_event *event, struct sk_error *err)
{
    char c = *p;
    if (scan->depth + 1 > SK_JSON_MAX_DEPTH)
        return scan_value_rest(scan, p, event, err);
    if (c == '"') {
        const char *close = plain_string_end(p + 1, scan->end);
        if (close == NULL)
            return scan_value_rest(scan, p, event, err);
        plain_string_event(event, p + 1, close);
        scan->at = close + 1;
        after_value(scan);
        return event->token = SK_JSON_STRING;
    }
    if (c >= '1' && c <= '9')
        return scan_plain_integer(scan, p, event, err);
    if (c == '{' || c == '[') {
        event->escaped = false;
        return open_container(scan, p, event);
    }
    return scan_value_rest(scan, p, event, err);
}

/* The key whose opening quote is at P, and the ':' after it where the text
 * so far holds it (else the next call takes it, or says it is missing). */
static __attribute__((noinline)) enum sk_json_token scan_key_rest(struct sk_json_scan *scan,
                                                                  const char *p,
                                                                  struct sk_json_event *event,
                                                                  struct sk_error *err)
{
    if (scan_string(scan, p + 1, true, event, err) == SK_JSON_ERROR)
        return SK_JSON_ERROR;
    scan->expect = EXPECT_COLON;
    if (scan->nul_key && scan->has_u10ffff)
        return fail_plainly(scan, err, NUL_AND_U10FFFF_MESSAGE);
    const char *colon = skip_whitespace(scan->at, scan->end);
    if (colon < scan->end && *colon == ':') {
        scan->at = colon + 1;
        scan->expect = EXPECT_VALUE;
    }
    return SK_JSON_KEY;
}

/* scan_key_rest's way, with no call for a plain key followed at once by
 * its ':' (nearly every key of a schema). */
static inline enum sk_json_token scan_key(struct sk_json_scan *scan, const char *p,
                                          struct sk_json_event *event, struct sk_error *err)
{
    const char *end = scan->end;
    const char *close = plain_string_end(p + 1, end);
    if (close == NULL || close + 1 == end || close[1] != ':' ||
        (scan->nul_key && scan->has_u10ffff))
        return scan_key_rest(scan, p, event, err);
    plain_string_event(event, p + 1, close);
    scan->at = close + 2;
    scan->expect = EXPECT_VALUE;
    return event->token = SK_JSON_KEY;
}

/* Every step the grammar allows, one at a time. */
static enum sk_json_token next_token_slow(struct sk_json_scan *scan, struct sk_json_event *event,
                                          struct sk_error *err)
{
    const char *end = scan->end;
    for (;;) {
        const char *p = skip_whitespace(scan->at, end);
        scan->at = p;
        switch (scan->expect) {
        case EXPECT_FAILED:
            return event->token = SK_JSON_ERROR;
        case EXPECT_DONE:
            return event->token = SK_JSON_END;
        default:
            break;
        }
        if (p == end && !scan->whole) {
            if (scan->more(scan->more_context, scan) != 0)
                return fail_plainly(scan, err, "the text could not be read");
            end = scan->end;
            continue;
        }
        switch (scan->expect) {
        case EXPECT_EOF:
            if (p < end)
                return fail(scan, p + 1, err, "end of file expected");
            return finish(scan, event, err);
        default:
            break;
        }
        if (p == end) {
            if (scan->expect == EXPECT_ROOT)
                return fail(scan, p, err, "'[' or '{' expected near end of file");
            return fail(scan, p, err, "premature end of input");
        }
        switch (scan->expect) {
        case EXPECT_ROOT:
            if (*p != '[' && *p != '{')
                return fail(scan, p + 1, err, "'[' or '{' expected");
            return scan_value(scan, p, event, err);
        case EXPECT_FIRST_VALUE:
            if (*p == ']')
                return close_container(scan, p, event);
            return scan_value(scan, p, event, err);
        case EXPECT_VALUE:
            return scan_value(scan, p, event, err);
        case EXPECT_FIRST_KEY:
            if (*p == '}')
                return close_container(scan, p, event);
            /* fall through */
        case EXPECT_KEY:
            if (*p != '"')
                return fail(scan, p + 1, err, "string or '}' expected");
            return scan_key(scan, p, event, err);
        case EXPECT_COLON:
            if (*p != ':')
                return fail(scan, p + 1, err, "':' expected");
            scan->at = p + 1;
            scan->expect = EXPECT_VALUE;
            continue;
        case EXPECT_NEXT: {
            bool object = in_object(scan);
            if (*p == ',') {
                scan->at = p + 1;
                scan->expect = object ? EXPECT_KEY : EXPECT_VALUE;
                continue;
            }
            if (*p == (object ? '}' : ']'))
                return close_container(scan, p, event);
            return fail(scan, p + 1, err, object ? "'}' expected" : "']' expected");
        }
        default:
            return fail(scan, p, err, "internal error: unknown state");
        }
    }
}

/* The steps that make most of a document (a ',' and the key or value
 * after it, a key with its ':', a value, a container's end, an array's
 * first value) are taken here, with one look at
 * the state; the rest, and the end of the text so far, go the general way,
 * which gives the same tokens and errors. */
static enum sk_json_token next_token(struct sk_json_scan *scan, struct sk_json_event *event,
                                     struct sk_error *err)
{
    const char *end = scan->end;
    const char *p = skip_whitespace(scan->at, end);
    if (p < end && scan->expect == EXPECT_NEXT && *p == ',') {
        scan->expect = in_object(scan) ? EXPECT_KEY : EXPECT_VALUE;
        p = skip_whitespace(p + 1, end);
    }
    scan->at = p;
    if (p < end) {
        if (scan->expect == EXPECT_VALUE)
            return scan_value(scan, p, event, err);
        if ((scan->expect == EXPECT_KEY || scan->expect == EXPECT_FIRST_KEY) && *p == '"')
            return scan_key(scan, p, event, err);
        if (scan->expect == EXPECT_NEXT && *p == (in_object(scan) ? '}' : ']'))
            return close_container(scan, p, event);
        if (scan->expect == EXPECT_FIRST_VALUE)
            return *p == ']' ? close_container(scan, p, event) : scan_value(scan, p, event, err);
    }
    return next_token_slow(scan, event, err);
}

void sk_json_scan_digest(struct sk_json_scan *scan, struct sk_json_digests *digests)
{
    scan->digests = digests;
}

/* The digest state of the container open at DEPTH (1 for the outermost). */
static struct sk_json_digest_level *open_level(struct sk_json_scan *scan, unsigned depth)
{
    struct sk_json_digests *d = scan->digests;
    if (depth >= d->capacity &&
        sk_grow(&d->open, &d->capacity, (size_t)depth + 1, sizeof *d->open, 16) != 0)
        return NULL;
    return &d->open[depth];
}

/* Takes TOKEN into the digest of the container it stands in; a container's
 * end finishes its digest into EVENT and into its parent's. A value after
 * a key skips_value names goes into none. False when out of memory. */
static bool digest_token(struct sk_json_scan *scan, enum sk_json_token token,
                         struct sk_json_event *event)
{
    if (token == SK_JSON_ERROR || token == SK_JSON_END)
        return true; /* their events say nothing of escapes */
    struct sk_json_digests *d = scan->digests;
    uint64_t head = (uint64_t)token | (uint64_t)event->escaped << 8;
    struct sk_json_digest_level *level, *parent;
    switch (token) {
    case SK_JSON_OBJECT_START:
    case SK_JSON_ARRAY_START:
        if ((level = open_level(scan, scan->depth)) == NULL)
            return false;
        parent = scan->depth > 1 ? &d->open[scan->depth - 1] : NULL;
        level->skipped = parent != NULL && parent->skip_next;
        level->skip_next = false;
        if (parent != NULL)
            parent->skip_next = false;
        sk_hasher_start(&level->hasher);
        sk_hasher_word(&level->hasher, head);
        return true;
    case SK_JSON_OBJECT_END:
    case SK_JSON_ARRAY_END:
        level = &d->open[scan->depth + 1];
        event->digest = sk_hasher_finish(&level->hasher);
        if (scan->depth > 0 && !level->skipped)
            sk_hasher_word(&d->open[scan->depth].hasher, head ^ event->digest);
        return true;
    default:
        level = &d->open[scan->depth];
        if (level->skip_next) {
            level->skip_next = false;
            return true;
        }
        sk_hasher_word(&level->hasher, head | (uint64_t)event->length << 16);
        sk_hasher_bytes(&level->hasher, event->start, event->length);
        if (token == SK_JSON_KEY && d->skips_value != NULL)
            level->skip_next = d->skips_value(event);
        return true;
    }
}

static __attribute__((noinline)) enum sk_json_token
next_digested(struct sk_json_scan *scan, struct sk_json_event *event, struct sk_error *err)
{
    enum sk_json_token token = next_token(scan, event, err);
    if (!digest_token(scan, token, event))
        return fail_plainly(scan, err, "out of memory");
    return token;
}

enum sk_json_token sk_json_next(struct sk_json_scan *scan, struct sk_json_event *event,
                                struct sk_error *err)
{
    /* nothing to do after the token where no digests are taken: no
     * registers kept across a call */
    if (scan->digests != NULL)
        return next_digested(scan, event, err);
    return next_token(scan, event, err);
}

int sk_json_skip(struct sk_json_scan *scan, const struct sk_json_event *event, const char **start,
                 size_t *length, struct sk_error *err)
{
    sk_json_scalar_text(event, start, length);
    if (event->token != SK_JSON_OBJECT_START && event->token != SK_JSON_ARRAY_START)
        return 0;
    unsigned outer = scan->depth - 1;
    struct sk_json_event inner;
    do {
        if (sk_json_next(scan, &inner, err) == SK_JSON_ERROR)
            return -1;
    } while (scan->depth > outer);
    *length = (size_t)(inner.start + 1 - event->start);
    return 0;
}

size_t sk_json_decode(const struct sk_json_event *event, char *out)
{
    if (!event->escaped) {
        memcpy(out, event->start, event->length);
        return event->length;
    }
    const char *p = event->start;
    const char *end = p + event->length;
    size_t used = 0;
    while (p < end)
        used += decode_one(&p, out + used);
    return used;
}

bool sk_json_equals(const struct sk_json_event *event, const char *text, size_t length)
{
    if (!event->escaped)
        return event->length == length && memcmp(event->start, text, length) == 0;
    const char *p = event->start;
    const char *end = p + event->length;
    size_t used = 0;
    while (p < end) {
        char one[4];
        size_t n = decode_one(&p, one);
        if (used + n > length || memcmp(text + used, one, n) != 0)
            return false;
        used += n;
    }
    return used == length;
}

double sk_json_real(const struct sk_json_event *event)
{
    if (event->token == SK_JSON_INTEGER)
        return (double)event->integer;
    return to_double(event->start, event->length);
}
