#include "sniff.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Signatures that fix a kind from the first bytes alone. Compressed files
 * are named after what joblib.dump(compress=...) writes; joblib reads them
 * by these same prefixes (joblib/compressor.py). */
static const struct signature {
    const char *bytes;
    size_t length;
    enum sk_file_kind kind;
    const char *compression;
} signatures[] = {
    {"PK\3\4", 4, SK_FILE_ZIP, NULL},
    {"PK\5\6", 4, SK_FILE_ZIP, NULL}, /* an empty zip: only the end record */
    {"ZF", 2, SK_FILE_JOBLIB_OLD, "zlib"},
    {"\x1f\x8b", 2, SK_FILE_JOBLIB_COMPRESSED, "gzip"},
    {"\xfd\x37\x7a\x58\x5a\x00", 6, SK_FILE_JOBLIB_COMPRESSED, "xz"},
    {"\x5d\x00\x00", 3, SK_FILE_JOBLIB_COMPRESSED, "lzma"},
    {"\x04\x22\x4d\x18", 4, SK_FILE_JOBLIB_COMPRESSED, "lz4"},
};

/* Opcodes a pickle of protocol 0 or 1 may start with: MARK, the empty
 * containers, GLOBAL, NONE, and the scalars. */
static const char old_pickle_first_opcodes[] = "()]}cdlNIJKLMFGSTUVX";
#define PICKLE_STOP '.'
#define PICKLE_PROTO 0x80
#define PICKLE_HIGHEST_PROTOCOL 5
#define ZLIB_DEFLATE_WINDOW_32K 0x78

static bool starts_with(const unsigned char *head, size_t length, const char *bytes, size_t n)
{
    return length >= n && memcmp(head, bytes, n) == 0;
}

/* A zlib header: DEFLATE with a 32 KiB window, and a check value that makes
 * the first two bytes a multiple of 31 (RFC 1950). */
static bool is_zlib(const unsigned char *head, size_t length)
{
    return length >= 2 && head[0] == ZLIB_DEFLATE_WINDOW_32K && (head[0] * 256 + head[1]) % 31 == 0;
}

static bool is_bzip2(const unsigned char *head, size_t length)
{
    return length >= 4 && memcmp(head, "BZh", 3) == 0 && head[3] >= '1' && head[3] <= '9';
}

static struct sk_sniff pickle(const unsigned char *head, size_t length, int protocol)
{
    static const char joblib_module[] = "joblib.numpy_pickle";
    bool joblib = memmem(head, length, joblib_module, sizeof joblib_module - 1) != NULL;
    return (struct sk_sniff){joblib ? SK_FILE_JOBLIB_PICKLE : SK_FILE_PICKLE, protocol, NULL};
}

struct sk_sniff sk_sniff_bytes(const unsigned char *head, size_t length, int last_byte)
{
    for (size_t i = 0; i < sizeof signatures / sizeof *signatures; i++)
        if (starts_with(head, length, signatures[i].bytes, signatures[i].length))
            return (struct sk_sniff){signatures[i].kind, -1, signatures[i].compression};
    if (is_zlib(head, length))
        return (struct sk_sniff){SK_FILE_JOBLIB_COMPRESSED, -1, "zlib"};
    if (is_bzip2(head, length))
        return (struct sk_sniff){SK_FILE_JOBLIB_COMPRESSED, -1, "bz2"};
    if (length >= 2 && head[0] == PICKLE_PROTO && head[1] >= 2 &&
        head[1] <= PICKLE_HIGHEST_PROTOCOL)
        return pickle(head, length, head[1]);
    if (length >= 1 && head[0] != '\0' && strchr(old_pickle_first_opcodes, head[0]) != NULL &&
        last_byte == PICKLE_STOP)
        return pickle(head, length, 0);
    return (struct sk_sniff){SK_FILE_UNKNOWN, -1, NULL};
}

int sk_sniff_file(const char *path, struct sk_sniff *out, struct sk_error *err)
{
    /* O_NONBLOCK: a FIFO must not hold the open; only a regular file is read */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return sk_fail(err, "%s: %s", path, strerror(errno));
    unsigned char head[SK_SNIFF_HEAD_BYTES];
    unsigned char last;
    struct stat st;
    int result = 0;
    if (fstat(fd, &st) != 0) {
        result = sk_fail(err, "%s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        result = sk_fail(err, "%s: not a regular file", path);
    } else {
        ssize_t got = pread(fd, head, sizeof head, 0);
        int last_byte = -1;
        if (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) == 1)
            last_byte = last;
        if (got < 0)
            result = sk_fail(err, "%s: %s", path, strerror(errno));
        else
            *out = sk_sniff_bytes(head, (size_t)got, last_byte);
    }
    close(fd);
    return result;
}

bool sk_sniff_explain(const struct sk_sniff *sniff, char *text, size_t size)
{
    /* pickles and joblib files since 0.9.3 are read (pickle_store.h) */
    if (sniff->kind != SK_FILE_JOBLIB_OLD)
        return false;
    snprintf(text, size,
             "this is a joblib file from before joblib 0.9.3 (\"ZF\" and zlib), not a .skops "
             "archive; skopsfs reads joblib files from 0.9.3 on");
    return true;
}
