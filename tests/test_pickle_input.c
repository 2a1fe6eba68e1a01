/* format/pickle_input.c: recognition by bytes, each joblib compressor, and
 * the refusals: truncated and corrupt streams, the size and ratio limits,
 * bytes after a stream, files that are no pickle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <bzlib.h>
#include <lz4frame.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "pickle_input.h"

struct blob {
    unsigned char *bytes;
    size_t length;
};

static struct blob payload(size_t length)
{
    struct blob b = {malloc(length), length};
    assert_non_null(b.bytes);
    b.bytes[0] = 0x80, b.bytes[1] = 4;
    for (size_t i = 2; i < length; i++)
        b.bytes[i] = (unsigned char)(i * 7 % 251 < 120 ? 0 : i % 13);
    b.bytes[length - 1] = '.';
    return b;
}

static struct blob deflate_with(struct blob in, int window_bits)
{
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    struct blob out = {malloc(deflateBound(&z, in.length) + 64), 0};
    z.next_in = in.bytes, z.avail_in = (unsigned)in.length;
    z.next_out = out.bytes, z.avail_out = (unsigned)deflateBound(&z, in.length) + 64;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    out.length = z.total_out;
    deflateEnd(&z);
    return out;
}

static struct blob compress_zlib(struct blob in)
{
    return deflate_with(in, 15);
}

static struct blob compress_gzip(struct blob in)
{
    return deflate_with(in, 31);
}

static struct blob compress_bz2(struct blob in)
{
    unsigned length = (unsigned)(in.length + in.length / 100 + 600);
    struct blob out = {malloc(length), 0};
    assert_int_equal(BZ2_bzBuffToBuffCompress((char *)out.bytes, &length, (char *)in.bytes,
                                              (unsigned)in.length, 9, 0, 0),
                     BZ_OK);
    out.length = length;
    return out;
}

static struct blob compress_xz(struct blob in)
{
    size_t capacity = lzma_stream_buffer_bound(in.length);
    struct blob out = {malloc(capacity), 0};
    assert_int_equal(lzma_easy_buffer_encode(3, LZMA_CHECK_CRC64, NULL, in.bytes, in.length,
                                             out.bytes, &out.length, capacity),
                     LZMA_OK);
    return out;
}

/* joblib's 'lzma': LZMA_alone with an end marker, as Python writes it. */
static struct blob compress_lzma(struct blob in)
{
    lzma_options_lzma options;
    lzma_lzma_preset(&options, 3);
    lzma_stream lz = LZMA_STREAM_INIT;
    assert_int_equal(lzma_alone_encoder(&lz, &options), LZMA_OK);
    size_t capacity = lzma_stream_buffer_bound(in.length);
    struct blob out = {malloc(capacity), 0};
    lz.next_in = in.bytes, lz.avail_in = in.length;
    lz.next_out = out.bytes, lz.avail_out = capacity;
    assert_int_equal(lzma_code(&lz, LZMA_FINISH), LZMA_STREAM_END);
    out.length = lz.total_out;
    lzma_end(&lz);
    return out;
}

static struct blob compress_lz4(struct blob in)
{
    size_t capacity = LZ4F_compressFrameBound(in.length, NULL);
    struct blob out = {malloc(capacity), 0};
    out.length = LZ4F_compressFrame(out.bytes, capacity, in.bytes, in.length, NULL);
    assert_false(LZ4F_isError(out.length));
    return out;
}

static const struct codec {
    enum sk_pickle_compression id;
    struct blob (*compress)(struct blob);
    bool checksummed; /* LZMA_alone and a default LZ4 frame carry no checksum */
} codecs[] = {
    {SK_PICKLE_ZLIB, compress_zlib, true},  {SK_PICKLE_GZIP, compress_gzip, true},
    {SK_PICKLE_BZ2, compress_bz2, true},    {SK_PICKLE_XZ, compress_xz, true},
    {SK_PICKLE_LZMA, compress_lzma, false}, {SK_PICKLE_LZ4, compress_lz4, false},
};
#define CODEC_COUNT (sizeof codecs / sizeof *codecs)

static char *write_temp(const void *bytes, size_t length)
{
    char *path = strdup("/tmp/test_pickle_input.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bytes, length), (ssize_t)length);
    close(fd);
    return path;
}

/* Opens BYTES as a file; returns 0 or -1 and leaves the message in ERR. */
static int open_bytes(const void *bytes, size_t length,
                      const struct sk_pickle_input_options *options, struct sk_pickle_input **input,
                      struct sk_error *err)
{
    char *path = write_temp(bytes, length);
    sk_error_clear(err);
    int rc = sk_pickle_input_open(path, options, input, err);
    unlink(path);
    free(path);
    return rc;
}

static void refused(const void *bytes, size_t length, const struct sk_pickle_input_options *o,
                    const char *message)
{
    struct sk_pickle_input *input = NULL;
    struct sk_error err;
    assert_int_equal(open_bytes(bytes, length, o, &input, &err), -1);
    assert_null(input);
    if (strstr(err.message, message) == NULL)
        fail_msg("\"%s\" does not say \"%s\"", err.message, message);
}

static void every_compressor_round_trips(void **state)
{
    (void)state;
    struct blob plain = payload(300000);
    for (size_t c = 0; c < CODEC_COUNT; c++) {
        struct blob packed = codecs[c].compress(plain);
        struct sk_pickle_input *input;
        struct sk_error err;
        if (open_bytes(packed.bytes, packed.length, NULL, &input, &err) != 0)
            fail_msg("%s: %s", sk_pickle_compression_name(codecs[c].id), err.message);
        assert_int_equal(input->compression, codecs[c].id);
        assert_int_equal(input->size, plain.length);
        assert_memory_equal(input->bytes, plain.bytes, plain.length);
        assert_int_equal(input->protocol, 4);
        assert_int_equal(input->trailing_bytes, 0);
        assert_int_not_equal(input->fd, input->file_fd);
        unsigned char first[2];
        assert_int_equal(pread(input->fd, first, 2, (off_t)input->fd_offset), 2);
        assert_memory_equal(first, plain.bytes, 2);
        sk_pickle_input_close(input);
        free(packed.bytes);
    }
    free(plain.bytes);
}

static void truncated_and_corrupt_streams_are_refused(void **state)
{
    (void)state;
    struct blob plain = payload(300000);
    for (size_t c = 0; c < CODEC_COUNT; c++) {
        struct blob packed = codecs[c].compress(plain);
        refused(packed.bytes, packed.length / 2, NULL, "truncated");
        refused(packed.bytes, packed.length - 1, NULL, "");
        packed.bytes[packed.length / 2] ^= 0x55;
        packed.bytes[packed.length / 2 + 1] ^= 0xAA;
        if (codecs[c].checksummed)
            refused(packed.bytes, packed.length, NULL, "");
        free(packed.bytes);
    }
    free(plain.bytes);
}

static void limits_stop_a_bomb(void **state)
{
    (void)state;
    struct blob zeros = {calloc(1, 16u << 20), 16u << 20};
    struct blob packed = compress_zlib(zeros);
    struct sk_pickle_input_options ratio = {.max_ratio = 100};
    refused(packed.bytes, packed.length, &ratio, "expands more than 100:1");
    struct sk_pickle_input_options size = {.max_bytes = 1u << 20};
    refused(packed.bytes, packed.length, &size, "SK_MAX_PICKLE_BYTES");
    struct blob bz = compress_bz2(zeros);
    refused(bz.bytes, bz.length, &ratio, "expands more than 100:1");
    /* with the defaults a 1000:1 file is read: only the size limit holds */
    struct sk_pickle_input *input;
    struct sk_error err;
    assert_int_equal(open_bytes(packed.bytes, packed.length, NULL, &input, &err), 0);
    assert_int_equal(input->size, zeros.length);
    sk_pickle_input_close(input);
    free(bz.bytes);
    free(packed.bytes);
    free(zeros.bytes);
}

static void bytes_after_the_stream_are_refused_unless_allowed(void **state)
{
    (void)state;
    struct blob plain = payload(5000);
    struct blob packed = compress_zlib(plain);
    unsigned char *longer = malloc(packed.length + 7);
    memcpy(longer, packed.bytes, packed.length);
    memcpy(longer + packed.length, "GARBAGE", 7);
    refused(longer, packed.length + 7, NULL, "7 bytes follow the end of the zlib stream");
    struct sk_pickle_input_options allow = {.allow_trailing = true};
    struct sk_pickle_input *input;
    struct sk_error err;
    assert_int_equal(open_bytes(longer, packed.length + 7, &allow, &input, &err), 0);
    assert_int_equal(input->trailing_bytes, 7);
    assert_int_equal(input->size, plain.length);
    sk_pickle_input_close(input);
    free(longer);
    free(packed.bytes);
    free(plain.bytes);
}

static void files_that_are_no_pickle_are_refused(void **state)
{
    (void)state;
    refused("hello world\n", 12, NULL, "not a pickle or joblib file");
    refused("PK\3\4rest", 8, NULL, "zip archive");
    refused("ZF0x00001234", 12, NULL, "before joblib 0.9.3");
    refused("", 0, NULL, "empty");
    refused("\x78\x9c", 2, NULL, "truncated");
    struct blob nothing = {(unsigned char *)"", 0};
    struct blob empty = compress_gzip(nothing);
    refused(empty.bytes, empty.length, NULL, "the gzip stream is empty");
    free(empty.bytes);
    struct sk_pickle_input *input;
    struct sk_error err = {0};
    assert_int_equal(sk_pickle_input_open("/tmp", NULL, &input, &err), -1);
    assert_non_null(strstr(err.message, "not a regular file"));
    char fifo[] = "/tmp/test_pickle_fifo.XXXXXX";
    assert_non_null(mkdtemp(fifo));
    char path[64];
    snprintf(path, sizeof path, "%s/f", fifo);
    assert_int_equal(mkfifo(path, 0600), 0);
    sk_error_clear(&err);
    assert_int_equal(sk_pickle_input_open(path, NULL, &input, &err), -1); /* does not block */
    assert_non_null(strstr(err.message, "not a regular file"));
    unlink(path);
    rmdir(fifo);
}

static void a_plain_pickle_is_mapped_as_it_is(void **state)
{
    (void)state;
    char *path = write_temp("\x80\x05N.", 4);
    struct sk_pickle_input *input;
    struct sk_error err = {0};
    assert_int_equal(sk_pickle_input_open(path, NULL, &input, &err), 0);
    assert_int_equal(input->compression, SK_PICKLE_UNCOMPRESSED);
    assert_int_equal(input->protocol, 5);
    assert_int_equal(input->fd, input->file_fd);
    assert_int_equal(input->size, 4);
    assert_memory_equal(input->bytes, "\x80\x05N.", 4);
    assert_int_equal(sk_pickle_input_check_unchanged(input, &err), 0);
    FILE *f = fopen(path, "ab");
    fputs("more", f);
    fclose(f);
    assert_int_equal(sk_pickle_input_check_unchanged(input, &err), -1);
    sk_pickle_input_close(input);
    unlink(path);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_compressor_round_trips),
        cmocka_unit_test(truncated_and_corrupt_streams_are_refused),
        cmocka_unit_test(limits_stop_a_bomb),
        cmocka_unit_test(bytes_after_the_stream_are_refused_unless_allowed),
        cmocka_unit_test(files_that_are_no_pickle_are_refused),
        cmocka_unit_test(a_plain_pickle_is_mapped_as_it_is),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
