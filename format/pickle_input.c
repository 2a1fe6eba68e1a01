#include "pickle_input.h"

#include <bzlib.h>
#include <errno.h>
#include <fcntl.h>
#include <lz4frame.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "sk_limits.h"
#include "sniff.h"

#define OUTPUT_CHUNK (256u * 1024)
/* zlib, bzip2 and liblzma count input in unsigned int or size_t; feed them
 * at most this much at a time. */
#define INPUT_CHUNK (64u * 1024 * 1024)

/* Decompressed output goes here: a memfd, bounded by the limits. */
struct sink {
    int fd;
    uint64_t written;
    uint64_t max_bytes;
    uint64_t max_ratio;
    const char *compression;
};

static int sink_write(struct sink *sink, const unsigned char *data, size_t length,
                      uint64_t consumed, struct sk_error *err)
{
    if (length > sink->max_bytes - sink->written)
        return sk_fail(err,
                       "the %s stream decompresses to more than %llu bytes (the "
                       "max_pickle_mb limit, SK_MAX_PICKLE_BYTES; raise it with "
                       "-o max_pickle_mb=N or --max-pickle-mb N)",
                       sink->compression, (unsigned long long)sink->max_bytes);
    sink->written += length;
    if (sink->max_ratio != 0 && sink->written > SK_PICKLE_RATIO_FLOOR_BYTES &&
        sink->written / sink->max_ratio > consumed)
        return sk_fail(err,
                       "the %s stream expands more than %llu:1 (%llu bytes from %llu; "
                       "raise the ratio limit to read it)",
                       sink->compression, (unsigned long long)sink->max_ratio,
                       (unsigned long long)sink->written, (unsigned long long)consumed);
    while (length > 0) {
        ssize_t done = write(sink->fd, data, length);
        if (done < 0 && errno == EINTR)
            continue;
        if (done <= 0)
            return sk_fail(err, "writing the decompressed stream to memory: %s",
                           done < 0 ? strerror(errno) : "no space");
        data += done;
        length -= (size_t)done;
    }
    return 0;
}

static size_t chunk(uint64_t left)
{
    return left < INPUT_CHUNK ? (size_t)left : INPUT_CHUNK;
}

static int truncated(const char *compression, struct sk_error *err)
{
    return sk_fail(err, "the %s stream is truncated: the file ends before the stream does",
                   compression);
}

/* Each decompressor reads one stream from IN and returns the count of input
 * bytes it used in *CONSUMED. */
typedef int (*decompress_fn)(const unsigned char *in, uint64_t in_size, struct sink *sink,
                             uint64_t *consumed, struct sk_error *err);

static int inflate_stream(const unsigned char *in, uint64_t in_size, int window_bits,
                          struct sink *sink, uint64_t *consumed, struct sk_error *err)
{
    z_stream z = {0};
    if (inflateInit2(&z, window_bits) != Z_OK)
        return sk_fail(err, "zlib: out of memory");
    unsigned char out[OUTPUT_CHUNK];
    uint64_t used = 0;
    int rc = Z_OK, result = 0;
    while (rc != Z_STREAM_END && result == 0) {
        if (z.avail_in == 0) {
            if (used == in_size) {
                result = truncated(sink->compression, err);
                break;
            }
            z.next_in = (unsigned char *)in + used;
            z.avail_in = (unsigned)chunk(in_size - used);
            used += z.avail_in;
        }
        z.next_out = out;
        z.avail_out = sizeof out;
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
            result = sk_fail(err, "the %s stream is corrupt: %s", sink->compression,
                             z.msg != NULL ? z.msg : "inflate failed");
        else
            result = sink_write(sink, out, sizeof out - z.avail_out, used - z.avail_in, err);
    }
    *consumed = used - z.avail_in;
    inflateEnd(&z);
    return result;
}

static int decompress_zlib(const unsigned char *in, uint64_t in_size, struct sink *sink,
                           uint64_t *consumed, struct sk_error *err)
{
    return inflate_stream(in, in_size, 15, sink, consumed, err);
}

static int decompress_gzip(const unsigned char *in, uint64_t in_size, struct sink *sink,
                           uint64_t *consumed, struct sk_error *err)
{
    return inflate_stream(in, in_size, 16 + 15, sink, consumed, err);
}

static int decompress_bz2(const unsigned char *in, uint64_t in_size, struct sink *sink,
                          uint64_t *consumed, struct sk_error *err)
{
    bz_stream bz = {0};
    if (BZ2_bzDecompressInit(&bz, 0, 0) != BZ_OK)
        return sk_fail(err, "bz2: out of memory");
    unsigned char out[OUTPUT_CHUNK];
    uint64_t used = 0;
    int rc = BZ_OK, result = 0;
    while (rc != BZ_STREAM_END && result == 0) {
        if (bz.avail_in == 0) {
            if (used == in_size) {
                result = truncated(sink->compression, err);
                break;
            }
            bz.next_in = (char *)in + used;
            bz.avail_in = (unsigned)chunk(in_size - used);
            used += bz.avail_in;
        }
        bz.next_out = (char *)out;
        bz.avail_out = sizeof out;
        rc = BZ2_bzDecompress(&bz);
        if (rc != BZ_OK && rc != BZ_STREAM_END)
            result = sk_fail(err, "the bz2 stream is corrupt (libbz2 error %d)", rc);
        else
            result = sink_write(sink, out, sizeof out - bz.avail_out, used - bz.avail_in, err);
    }
    *consumed = used - bz.avail_in;
    BZ2_bzDecompressEnd(&bz);
    return result;
}

static const char *lzma_message(lzma_ret rc)
{
    switch (rc) {
    case LZMA_MEMLIMIT_ERROR:
        return "its dictionary needs more memory than SK_MAX_PICKLE_DECODER_MEMORY";
    case LZMA_FORMAT_ERROR:
        return "not the expected format";
    case LZMA_OPTIONS_ERROR:
        return "unsupported options";
    case LZMA_DATA_ERROR:
        return "corrupt data";
    case LZMA_BUF_ERROR:
        return "truncated";
    case LZMA_MEM_ERROR:
        return "out of memory";
    default:
        return "liblzma failed";
    }
}

static int run_lzma(lzma_stream *lz, const unsigned char *in, uint64_t in_size, struct sink *sink,
                    uint64_t *consumed, struct sk_error *err)
{
    unsigned char out[OUTPUT_CHUNK];
    uint64_t used = 0;
    lzma_ret rc = LZMA_OK;
    int result = 0;
    while (rc != LZMA_STREAM_END && result == 0) {
        lzma_action action = LZMA_RUN;
        if (lz->avail_in == 0) {
            if (used == in_size) {
                action = LZMA_FINISH; /* lets an LZMA_alone stream of known size end */
            } else {
                lz->next_in = in + used;
                lz->avail_in = chunk(in_size - used);
                used += lz->avail_in;
            }
        }
        lz->next_out = out;
        lz->avail_out = sizeof out;
        rc = lzma_code(lz, action);
        if (rc == LZMA_BUF_ERROR ||
            (action == LZMA_FINISH && rc == LZMA_OK && lz->avail_out == sizeof out))
            result = truncated(sink->compression, err);
        else if (rc != LZMA_OK && rc != LZMA_STREAM_END)
            result = sk_fail(err, "the %s stream cannot be read: %s", sink->compression,
                             lzma_message(rc));
        else
            result = sink_write(sink, out, sizeof out - lz->avail_out, used - lz->avail_in, err);
    }
    *consumed = used - lz->avail_in;
    lzma_end(lz);
    return result;
}

static int decompress_xz(const unsigned char *in, uint64_t in_size, struct sink *sink,
                         uint64_t *consumed, struct sk_error *err)
{
    lzma_stream lz = LZMA_STREAM_INIT;
    lzma_ret rc = lzma_stream_decoder(&lz, SK_MAX_PICKLE_DECODER_MEMORY, 0);
    if (rc != LZMA_OK)
        return sk_fail(err, "xz: %s", lzma_message(rc));
    return run_lzma(&lz, in, in_size, sink, consumed, err);
}

static int decompress_lzma(const unsigned char *in, uint64_t in_size, struct sink *sink,
                           uint64_t *consumed, struct sk_error *err)
{
    lzma_stream lz = LZMA_STREAM_INIT;
    lzma_ret rc = lzma_alone_decoder(&lz, SK_MAX_PICKLE_DECODER_MEMORY);
    if (rc != LZMA_OK)
        return sk_fail(err, "lzma: %s", lzma_message(rc));
    return run_lzma(&lz, in, in_size, sink, consumed, err);
}

static int decompress_lz4(const unsigned char *in, uint64_t in_size, struct sink *sink,
                          uint64_t *consumed, struct sk_error *err)
{
    LZ4F_dctx *context = NULL;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&context, LZ4F_VERSION)))
        return sk_fail(err, "lz4: out of memory");
    unsigned char out[OUTPUT_CHUNK];
    uint64_t used = 0;
    size_t hint = 1;
    int result = 0;
    while (hint != 0 && result == 0) {
        if (used == in_size) {
            result = truncated(sink->compression, err);
            break;
        }
        size_t in_length = chunk(in_size - used);
        size_t out_length = sizeof out;
        hint = LZ4F_decompress(context, out, &out_length, in + used, &in_length, NULL);
        used += in_length;
        if (LZ4F_isError(hint))
            result = sk_fail(err, "the lz4 stream is corrupt: %s", LZ4F_getErrorName(hint));
        else
            result = sink_write(sink, out, out_length, used, err);
    }
    *consumed = used;
    LZ4F_freeDecompressionContext(context);
    return result;
}

/* The names are sniff.c's (joblib's); the table maps them to decoders. */
static const struct compressor {
    enum sk_pickle_compression id;
    const char *name;
    decompress_fn decompress;
} compressors[] = {
    {SK_PICKLE_UNCOMPRESSED, "none", NULL},    {SK_PICKLE_ZLIB, "zlib", decompress_zlib},
    {SK_PICKLE_GZIP, "gzip", decompress_gzip}, {SK_PICKLE_BZ2, "bz2", decompress_bz2},
    {SK_PICKLE_XZ, "xz", decompress_xz},       {SK_PICKLE_LZMA, "lzma", decompress_lzma},
    {SK_PICKLE_LZ4, "lz4", decompress_lz4},
};

const char *sk_pickle_compression_name(enum sk_pickle_compression compression)
{
    for (size_t i = 0; i < sizeof compressors / sizeof *compressors; i++)
        if (compressors[i].id == compression)
            return compressors[i].name;
    return "unknown";
}

static const struct compressor *find_compressor(const char *name)
{
    for (size_t i = 0; i < sizeof compressors / sizeof *compressors; i++)
        if (strcmp(compressors[i].name, name) == 0)
            return &compressors[i];
    return NULL;
}

static int open_regular_file(const char *path, struct sk_pickle_input *input, struct sk_error *err)
{
    input->file_fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (input->file_fd < 0)
        return sk_fail(err, "%s", strerror(errno));
    if (fstat(input->file_fd, &input->file_stat) != 0)
        return sk_fail(err, "%s", strerror(errno));
    if (!S_ISREG(input->file_stat.st_mode))
        return sk_fail(err, "not a regular file");
    int flags = fcntl(input->file_fd, F_GETFL);
    if (flags < 0 || fcntl(input->file_fd, F_SETFL, flags & ~O_NONBLOCK) != 0)
        return sk_fail(err, "%s", strerror(errno));
    if (input->file_stat.st_size == 0)
        return sk_fail(err, "the file is empty");
    return 0;
}

static int map_fd(int fd, uint64_t size, const unsigned char **out, struct sk_error *err)
{
    if (size > SIZE_MAX)
        return sk_fail(err, "the file is too large to map");
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        return sk_fail(err, "mapping the file: %s", strerror(errno));
    *out = map;
    return 0;
}

static int decompress_to_memfd(struct sk_pickle_input *input, const struct compressor *compressor,
                               const struct sk_pickle_input_options *options, struct sk_error *err)
{
    const unsigned char *compressed = NULL; /* map_fd sets it; -O3 cannot tell */
    uint64_t compressed_size = (uint64_t)input->file_stat.st_size;
    if (map_fd(input->file_fd, compressed_size, &compressed, err) != 0)
        return -1;
    struct sink sink = {
        .fd = memfd_create("skopsfs-pickle", MFD_CLOEXEC | MFD_ALLOW_SEALING),
        .max_bytes = options->max_bytes != 0 ? options->max_bytes : SK_MAX_PICKLE_BYTES,
        .max_ratio = options->max_ratio,
        .compression = compressor->name,
    };
    input->fd = sink.fd;
    uint64_t consumed = 0;
    int result = sink.fd < 0
                     ? sk_fail(err, "memfd_create: %s", strerror(errno))
                     : compressor->decompress(compressed, compressed_size, &sink, &consumed, err);
    munmap((void *)compressed, (size_t)compressed_size);
    if (result != 0)
        return -1;
    input->trailing_bytes = compressed_size - consumed;
    if (input->trailing_bytes != 0 && !options->allow_trailing)
        return sk_fail(err,
                       "%llu bytes follow the end of the %s stream (joblib ignores them; "
                       "skopsfs refuses a file that holds more than it shows)",
                       (unsigned long long)input->trailing_bytes, compressor->name);
    if (sink.written == 0)
        return sk_fail(err, "the %s stream is empty", compressor->name);
    /* Sealed: nothing can change the stream that sources serve from. */
    if (fcntl(sink.fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
        return sk_fail(err, "sealing the decompressed stream: %s", strerror(errno));
    input->size = sink.written;
    return map_fd(sink.fd, sink.written, &input->bytes, err);
}

static int recognize(struct sk_pickle_input *input, const struct compressor **compressor,
                     struct sk_error *err)
{
    unsigned char head[SK_SNIFF_HEAD_BYTES];
    ssize_t got = pread(input->file_fd, head, sizeof head, 0);
    unsigned char last;
    if (got < 0 || pread(input->file_fd, &last, 1, input->file_stat.st_size - 1) != 1)
        return sk_fail(err, "%s", got < 0 ? strerror(errno) : "cannot read the last byte");
    struct sk_sniff sniff = sk_sniff_bytes(head, (size_t)got, last);
    switch (sniff.kind) {
    case SK_FILE_PICKLE:
    case SK_FILE_JOBLIB_PICKLE:
        input->protocol = sniff.pickle_protocol;
        *compressor = &compressors[0];
        return 0;
    case SK_FILE_JOBLIB_COMPRESSED:
        *compressor = find_compressor(sniff.compression);
        if (*compressor == NULL)
            return sk_fail(err, "%s-compressed joblib files are not supported", sniff.compression);
        return 0;
    case SK_FILE_JOBLIB_OLD:
        return sk_fail(err, "a joblib file from before joblib 0.9.3 (\"ZF\" and zlib) is not "
                            "supported; load and dump it again with a newer joblib");
    case SK_FILE_ZIP:
        return sk_fail(err, "this is a zip archive, not a pickle or joblib file");
    case SK_FILE_UNKNOWN:
        break;
    }
    return sk_fail(err, "not a pickle or joblib file (its first bytes are no pickle opcode and "
                        "no compressor's signature)");
}

int sk_pickle_input_open(const char *path, const struct sk_pickle_input_options *options,
                         struct sk_pickle_input **out, struct sk_error *err)
{
    static const struct sk_pickle_input_options defaults = {0};
    if (options == NULL)
        options = &defaults;
    *out = NULL;
    struct sk_pickle_input *input = calloc(1, sizeof *input);
    if (input == NULL)
        return sk_fail(err, "%s: out of memory", path);
    input->fd = input->file_fd = -1;
    const struct compressor *compressor = NULL;
    int result = open_regular_file(path, input, err);
    if (result == 0)
        result = recognize(input, &compressor, err);
    if (result == 0 && compressor->decompress == NULL) {
        input->fd = input->file_fd;
        input->size = (uint64_t)input->file_stat.st_size;
        result = map_fd(input->fd, input->size, &input->bytes, err);
    } else if (result == 0) {
        input->compression = compressor->id;
        result = decompress_to_memfd(input, compressor, options, err);
        if (result == 0 && input->size >= 2 && input->bytes[0] == 0x80)
            input->protocol = input->bytes[1];
    }
    if (result != 0) {
        sk_error_prefix(err, "%s: ", path);
        sk_pickle_input_close(input);
        return -1;
    }
    *out = input;
    return 0;
}

void sk_pickle_input_close(struct sk_pickle_input *input)
{
    if (input == NULL)
        return;
    sk_pickle_input_unmap(input);
    if (input->fd >= 0 && input->fd != input->file_fd)
        close(input->fd);
    if (input->file_fd >= 0)
        close(input->file_fd);
    free(input);
}

void sk_pickle_input_unmap(struct sk_pickle_input *input)
{
    if (input->bytes != NULL)
        munmap((void *)input->bytes, (size_t)input->size);
    input->bytes = NULL;
}

int sk_pickle_input_check_unchanged(const struct sk_pickle_input *input, struct sk_error *err)
{
    struct stat now;
    if (fstat(input->file_fd, &now) != 0)
        return sk_fail(err, "%s", strerror(errno));
    const struct stat *then = &input->file_stat;
    if (now.st_size != then->st_size || now.st_ino != then->st_ino ||
        now.st_mtim.tv_sec != then->st_mtim.tv_sec || now.st_mtim.tv_nsec != then->st_mtim.tv_nsec)
        return sk_fail(err, "the file changed after it was opened");
    return 0;
}
