#include "pickle_source.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SWAP_CHUNK (64u * 1024)

struct pickle_source {
    struct sk_source base;
    unsigned char *header;
    size_t header_length;
    /* Exactly LENGTH data bytes (after the header) from DATA_OFFSET. */
    int (*read_data)(struct pickle_source *source, unsigned char *buffer, size_t length,
                     uint64_t data_offset, struct sk_error *err);
    unsigned swap_unit;
    int fd; /* range */
    uint64_t file_offset;
    const unsigned char *text; /* latin-1 text in memory, or NULL: at FILE_OFFSET of FD */
    uint64_t text_length;
    uint64_t *checkpoints; /* input offset of each SK_LATIN1_CHECKPOINT_BYTES of output */
    unsigned char *bytes;  /* memory */
};

static int read_range(struct pickle_source *source, unsigned char *buffer, size_t length,
                      uint64_t data_offset, struct sk_error *err)
{
    while (length > 0) {
        ssize_t got = pread(source->fd, buffer, length, (off_t)(source->file_offset + data_offset));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return sk_fail(err, "reading array bytes: %s", strerror(errno));
        if (got == 0)
            return sk_fail(err, "the file ends before the array's bytes do (changed since it "
                                "was opened?)");
        buffer += got, length -= (size_t)got, data_offset += (uint64_t)got;
    }
    return 0;
}

static int read_memory(struct pickle_source *source, unsigned char *buffer, size_t length,
                       uint64_t data_offset, struct sk_error *err)
{
    (void)err;
    memcpy(buffer, source->bytes + data_offset, length);
    return 0;
}

/* One output byte of validated text at IN, and how many input bytes it
 * took; branch-free, since array bytes are high or low at random. A high
 * byte is always followed by its continuation byte (validated). */
static inline unsigned char latin1_at(const unsigned char *text, uint64_t in, uint64_t *used)
{
    unsigned c = text[in];
    unsigned high = c >> 7;
    unsigned next = text[in + high]; /* c itself when c is ASCII: stays in bounds */
    unsigned mask = 0u - high;       /* all ones for a two-byte character */
    *used = 1 + high;
    return (unsigned char)((c & ~mask) | (((c & 0x03) << 6 | (next & 0x3F)) & mask));
}

/* Input bytes that one checkpoint's output can take at most (two a
 * character), plus one: a window this long around a checkpoint holds all
 * the text its output needs and the byte after, which says whether a
 * character that ends the block has its continuation. */
#define LATIN1_WINDOW (2u * SK_LATIN1_CHECKPOINT_BYTES + 1)

/* LENGTH bytes of the text from IN into BUFFER, then zeros up to
 * LATIN1_WINDOW + 1: text that changed under a file source since it was
 * validated can decode to garbage, never past the buffer. The file is read
 * by pread, never mapped, so a file cut short fails here (EIO) instead of
 * faulting. */
static int read_text(const struct pickle_source *source, uint64_t in, size_t length,
                     unsigned char *buffer, struct sk_error *err)
{
    memset(buffer + length, 0, LATIN1_WINDOW + 1 - length);
    if (source->text != NULL) {
        memcpy(buffer, source->text + in, length);
        return 0;
    }
    while (length > 0) {
        ssize_t got = pread(source->fd, buffer, length, (off_t)(source->file_offset + in));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return sk_fail_code(err, EIO, "reading latin-1 array text: %s",
                                got < 0 ? strerror(errno)
                                        : "the file ends before it does (changed since it was "
                                          "opened?)");
        buffer += got, length -= (size_t)got, in += (uint64_t)got;
    }
    return 0;
}

/* The input bytes from checkpoint K to the next (or the text's end). */
static size_t block_span(const struct pickle_source *source, uint64_t k)
{
    uint64_t decoded = source->base.size - source->header_length;
    uint64_t blocks = (decoded + SK_LATIN1_CHECKPOINT_BYTES - 1) / SK_LATIN1_CHECKPOINT_BYTES;
    uint64_t end = k + 1 < blocks ? source->checkpoints[k + 1] : source->text_length;
    uint64_t span = end - source->checkpoints[k];
    return span < LATIN1_WINDOW ? (size_t)span : LATIN1_WINDOW;
}

/* Decodes block by block: each block's text is read into a window, and
 * the output from START to END of the block is written to BUFFER. */
static int read_latin1(struct pickle_source *source, unsigned char *buffer, size_t length,
                       uint64_t data_offset, struct sk_error *err)
{
    unsigned char *window = malloc(LATIN1_WINDOW + 1);
    if (window == NULL)
        return sk_fail_code(err, ENOMEM, "out of memory");
    int rc = 0;
    while (rc == 0 && length > 0) {
        uint64_t k = data_offset / SK_LATIN1_CHECKPOINT_BYTES;
        uint64_t block_start = k * SK_LATIN1_CHECKPOINT_BYTES;
        uint64_t skip = data_offset - block_start;
        size_t want = SK_LATIN1_CHECKPOINT_BYTES - skip < length
                          ? (size_t)(SK_LATIN1_CHECKPOINT_BYTES - skip)
                          : length;
        rc = read_text(source, source->checkpoints[k], block_span(source, k), window, err);
        uint64_t in = 0, used;
        for (uint64_t out = 0; rc == 0 && out < skip; out++) {
            latin1_at(window, in, &used);
            in += used;
        }
        for (size_t i = 0; rc == 0 && i < want; i++) {
            buffer[i] = latin1_at(window, in, &used);
            in += used;
        }
        buffer += want, length -= want, data_offset += want;
    }
    free(window);
    return rc;
}

static void swap_units(unsigned char *bytes, size_t length, unsigned unit)
{
    for (size_t at = 0; at + unit <= length; at += unit)
        for (unsigned i = 0; i < unit / 2; i++) {
            unsigned char t = bytes[at + i];
            bytes[at + i] = bytes[at + unit - 1 - i];
            bytes[at + unit - 1 - i] = t;
        }
}

/* Reads whole units around the wanted bytes, reverses each, copies out. */
static int read_swapped(struct pickle_source *source, unsigned char *buffer, size_t length,
                        uint64_t data_offset, struct sk_error *err)
{
    unsigned char chunk[SWAP_CHUNK];
    while (length > 0) {
        uint64_t skip = data_offset % source->swap_unit;
        uint64_t aligned = data_offset - skip;
        size_t want = skip + length < sizeof chunk ? (size_t)(skip + length) : sizeof chunk;
        size_t whole = (want + source->swap_unit - 1) / source->swap_unit * source->swap_unit;
        uint64_t data_size = source->base.size - source->header_length;
        if (whole > data_size - aligned)
            whole = (size_t)(data_size - aligned);
        if (source->read_data(source, chunk, whole, aligned, err) != 0)
            return -1;
        swap_units(chunk, whole, source->swap_unit);
        size_t n = want - (size_t)skip;
        memcpy(buffer, chunk + skip, n);
        buffer += n, length -= n, data_offset += n;
    }
    return 0;
}

static ssize_t pickle_pread(struct sk_source *base, void *buffer, size_t length, uint64_t offset,
                            struct sk_error *err)
{
    struct pickle_source *source = (struct pickle_source *)base;
    if (offset >= base->size)
        return 0;
    if (length > base->size - offset)
        length = (size_t)(base->size - offset);
    if (length > SSIZE_MAX)
        length = SSIZE_MAX;
    unsigned char *out = buffer;
    size_t done = 0;
    if (offset < source->header_length) {
        done = source->header_length - (size_t)offset < length
                   ? source->header_length - (size_t)offset
                   : length;
        memcpy(out, source->header + offset, done);
    }
    if (done < length) {
        uint64_t data_offset = offset + done - source->header_length;
        int rc = source->swap_unit > 1
                     ? read_swapped(source, out + done, length - done, data_offset, err)
                     : source->read_data(source, out + done, length - done, data_offset, err);
        if (rc != 0)
            return -1;
    }
    return (ssize_t)length;
}

static bool range_extent(const struct sk_source *base, uint64_t offset, int *fd,
                         uint64_t *file_offset)
{
    const struct pickle_source *source = (const struct pickle_source *)base;
    if (source->read_data != read_range || source->swap_unit > 1 ||
        offset < source->header_length || offset > base->size)
        return false;
    *fd = source->fd;
    *file_offset = source->file_offset + (offset - source->header_length);
    return true;
}

static void pickle_close(struct sk_source *base)
{
    struct pickle_source *source = (struct pickle_source *)base;
    free(source->header);
    free(source->checkpoints);
    free(source->bytes);
    free(source);
}

static const struct sk_source_ops range_ops = {
    .pread = pickle_pread, .extent = range_extent, .close = pickle_close};
static const struct sk_source_ops other_ops = {.pread = pickle_pread, .close = pickle_close};

static int new_source(const void *header, size_t header_length, uint64_t data_length,
                      unsigned swap_unit, struct pickle_source **out, struct sk_error *err)
{
    *out = NULL;
    if (swap_unit > 1 && ((swap_unit & (swap_unit - 1)) != 0 || swap_unit > 16))
        return sk_fail(err, "cannot byte-swap units of %u bytes", swap_unit);
    if (swap_unit > 1 && data_length % swap_unit != 0)
        return sk_fail(err, "an array of %llu bytes is not made of whole %u-byte items",
                       (unsigned long long)data_length, swap_unit);
    if (data_length > UINT64_MAX - header_length)
        return sk_fail(err, "an array too large to show");
    struct pickle_source *source = calloc(1, sizeof *source);
    if (source == NULL || (source->header = malloc(header_length ? header_length : 1)) == NULL) {
        free(source);
        return sk_fail(err, "out of memory");
    }
    if (header_length > 0) /* a .bin member has no header, and maybe no pointer */
        memcpy(source->header, header, header_length);
    source->header_length = header_length;
    source->base.ops = &other_ops;
    source->base.size = header_length + data_length;
    source->swap_unit = swap_unit;
    source->fd = -1;
    *out = source;
    return 0;
}

int sk_pickle_source_range(const void *header, size_t header_length, int fd, uint64_t offset,
                           uint64_t length, unsigned swap_unit, struct sk_source **out,
                           struct sk_error *err)
{
    struct pickle_source *source;
    if (offset > UINT64_MAX - length || offset + length > (uint64_t)INT64_MAX)
        return sk_fail(err, "an array's byte range runs past the largest file offset");
    if (new_source(header, header_length, length, swap_unit, &source, err) != 0)
        return -1;
    source->base.ops = &range_ops;
    source->read_data = read_range;
    source->fd = fd;
    source->file_offset = offset;
    *out = &source->base;
    return 0;
}

/* Whether the character at IN is ASCII or a two-byte code point U+0080 to
 * U+00FF; its length in *USED. IN + 1 < N, or IN is the last byte. */
static inline unsigned latin1_valid_at(const unsigned char *text, uint64_t in, uint64_t n,
                                       uint64_t *used)
{
    unsigned c = text[in];
    unsigned high = c >> 7;
    unsigned has_next = in + 1 < n;
    unsigned next = text[in + (high & has_next)]; /* c itself when ASCII or last */
    *used = 1 + high;
    return (high == 0) | (((c & 0xFE) == 0xC2) & has_next & ((next & 0xC0) == 0x80));
}

static int latin1_error(uint64_t in, struct sk_error *err)
{
    return sk_fail(err,
                   "latin-1 array text at byte %llu is not a code point <= U+00FF in UTF-8 "
                   "(_codecs.encode(..., 'latin1') would fail)",
                   (unsigned long long)in);
}

/* Checks one block of LENGTH window bytes (text from IN): at most
 * SK_LATIN1_CHECKPOINT_BYTES characters, without a branch per byte, and
 * scanned again to say where it fails. N is the whole text's length.
 * Returns the input and output bytes it covered. */
static int check_block(const unsigned char *window, uint64_t in, uint64_t n, uint64_t *in_used,
                       uint64_t *out_made, struct sk_error *err)
{
    uint64_t at = 0, out = 0, used, left = n - in;
    unsigned valid = 1;
    for (; out < SK_LATIN1_CHECKPOINT_BYTES && at < left; out++) {
        valid &= latin1_valid_at(window, at, left, &used);
        at += used;
    }
    if (!valid) {
        for (at = 0; latin1_valid_at(window, at, left, &used);)
            at += used;
        return latin1_error(in + at, err);
    }
    *in_used = at;
    *out_made = out;
    return 0;
}

/* Checks that the text is UTF-8 of code points <= U+00FF only, decoding to
 * exactly DECODED bytes, and notes where each checkpoint's output begins. */
static int build_checkpoints(struct pickle_source *source, uint64_t decoded, struct sk_error *err)
{
    uint64_t count = decoded / SK_LATIN1_CHECKPOINT_BYTES + 1;
    if (count > SIZE_MAX / sizeof(uint64_t) ||
        (source->checkpoints = malloc((size_t)count * sizeof(uint64_t))) == NULL)
        return sk_fail(err, "out of memory for the checkpoints of a latin-1 array");
    unsigned char *window = malloc(LATIN1_WINDOW + 1);
    if (window == NULL)
        return sk_fail(err, "out of memory for a latin-1 array");
    uint64_t in = 0, out = 0, n = source->text_length;
    int rc = 0;
    for (uint64_t k = 0; rc == 0 && k < count && in < n; k++) {
        source->checkpoints[k] = in;
        uint64_t span = n - in < LATIN1_WINDOW ? n - in : LATIN1_WINDOW, in_used = 0, out_made = 0;
        rc = read_text(source, in, (size_t)span, window, err);
        if (rc == 0)
            rc = check_block(window, in, n, &in_used, &out_made, err);
        in += rc == 0 ? in_used : 0;
        out += rc == 0 ? out_made : 0;
    }
    free(window);
    if (rc == 0 && (in < n || out != decoded))
        rc = sk_fail(err,
                     "latin-1 array text decodes to %s%llu bytes, not the %llu its "
                     "dtype and shape need",
                     in < n ? "more than " : "", (unsigned long long)out,
                     (unsigned long long)decoded);
    return rc;
}

static int new_latin1(const void *header, size_t header_length, const unsigned char *text, int fd,
                      uint64_t offset, uint64_t text_length, uint64_t decoded_length,
                      unsigned swap_unit, struct sk_source **out, struct sk_error *err)
{
    struct pickle_source *source;
    if (fd >= 0 &&
        (offset > UINT64_MAX - text_length || offset + text_length > (uint64_t)INT64_MAX))
        return sk_fail(err, "a latin-1 array's text runs past the largest file offset");
    if (new_source(header, header_length, decoded_length, swap_unit, &source, err) != 0)
        return -1;
    source->read_data = read_latin1;
    source->text = text;
    source->fd = fd;
    source->file_offset = offset;
    source->text_length = text_length;
    if (build_checkpoints(source, decoded_length, err) != 0) {
        pickle_close(&source->base);
        return -1;
    }
    *out = &source->base;
    return 0;
}

int sk_pickle_source_latin1_file(const void *header, size_t header_length, int fd, uint64_t offset,
                                 uint64_t text_length, uint64_t decoded_length, unsigned swap_unit,
                                 struct sk_source **out, struct sk_error *err)
{
    return new_latin1(header, header_length, NULL, fd, offset, text_length, decoded_length,
                      swap_unit, out, err);
}

int sk_pickle_source_latin1(const void *header, size_t header_length, const unsigned char *text,
                            uint64_t text_length, uint64_t decoded_length, unsigned swap_unit,
                            struct sk_source **out, struct sk_error *err)
{
    return new_latin1(header, header_length, text, -1, 0, text_length, decoded_length, swap_unit,
                      out, err);
}

int sk_pickle_source_bytes(const void *header, size_t header_length, const void *bytes,
                           size_t length, struct sk_source **out, struct sk_error *err)
{
    struct pickle_source *source;
    if (new_source(header, header_length, length, 0, &source, err) != 0)
        return -1;
    source->read_data = read_memory;
    if ((source->bytes = malloc(length ? length : 1)) == NULL) {
        pickle_close(&source->base);
        return sk_fail(err, "out of memory");
    }
    if (length > 0)
        memcpy(source->bytes, bytes, length);
    *out = &source->base;
    return 0;
}
