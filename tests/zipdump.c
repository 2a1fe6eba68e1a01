/* zipdump: prints what skopsfs reads from an archive, one member a line:
 * its name (bytes outside printable ASCII, and the backslash, as \xNN), its
 * declared size and the SHA-256 of its whole content as served by
 * sk_reader_pread. tests/check_zip_differential.py compares this with what
 * Python's zipfile reads. Lines are sorted by name so that the order of the
 * central directory does not matter.
 *
 * If the archive or any member cannot be read, prints one line
 * "refused: MESSAGE" and exits 1; usage errors exit 2. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"

#define READ_CHUNK 65536u

struct line {
    char *text;
};

static int compare_lines(const void *a, const void *b)
{
    return strcmp(((const struct line *)a)->text, ((const struct line *)b)->text);
}

/* Escapes NAME so that any byte string prints as one unambiguous line. */
static void print_escaped(FILE *out, const char *name)
{
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (*p < 0x20 || *p >= 0x7f || *p == '\\')
            fprintf(out, "\\x%02x", *p);
        else
            fputc(*p, out);
    }
}

/* Reads the member to its end through a reader and hashes its bytes. Fails
 * when the reader fails or yields another count than the declared size. */
static int hash_member(struct sk_archive *archive, uint64_t index, const char *name,
                       uint64_t declared, char hex[65], struct sk_error *err)
{
    struct sk_reader *reader;
    if (sk_reader_open(archive, index, &reader, err) != 0)
        return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *buffer = malloc(READ_CHUNK);
    int result = -1;
    if (ctx == NULL || buffer == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        sk_fail(err, "out of memory");
        goto done;
    }
    uint64_t offset = 0;
    for (;;) {
        ssize_t got = sk_reader_pread(reader, buffer, READ_CHUNK, offset, err);
        if (got < 0)
            goto done;
        if (got == 0)
            break;
        EVP_DigestUpdate(ctx, buffer, (size_t)got);
        offset += (uint64_t)got;
    }
    if (offset != declared) {
        sk_fail(err, "member '%s' yields %llu bytes but declares %llu", name,
                (unsigned long long)offset, (unsigned long long)declared);
        goto done;
    }
    unsigned char digest[32];
    EVP_DigestFinal_ex(ctx, digest, NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    result = 0;
done:
    free(buffer);
    EVP_MD_CTX_free(ctx);
    sk_reader_close(reader);
    return result;
}

static int dump_member(struct sk_archive *archive, uint64_t index, struct line *line,
                       struct sk_error *err)
{
    struct sk_member_info info;
    sk_archive_member_info(archive, index, &info);
    char hex[65];
    if (hash_member(archive, index, info.name, info.size, hex, err) != 0)
        return -1;
    size_t length;
    FILE *out = open_memstream(&line->text, &length);
    if (out == NULL)
        return sk_fail(err, "out of memory");
    print_escaped(out, info.name);
    fprintf(out, " %llu %s", (unsigned long long)info.size, hex);
    fclose(out);
    return 0;
}

static int dump(const char *path)
{
    struct sk_error err = {0};
    struct sk_archive *archive;
    if (sk_archive_open(path, &archive, &err) != 0) {
        printf("refused: %s\n", err.message);
        return 1;
    }
    uint64_t count = sk_archive_member_count(archive);
    struct line *lines = calloc(count ? count : 1, sizeof *lines);
    int status = 0;
    for (uint64_t i = 0; i < count && status == 0; i++) {
        if (lines == NULL) {
            sk_fail(&err, "out of memory");
            status = 1;
        } else if (dump_member(archive, i, &lines[i], &err) != 0) {
            status = 1;
        }
    }
    if (status == 0) {
        qsort(lines, count, sizeof *lines, compare_lines);
        for (uint64_t i = 0; i < count; i++)
            printf("%s\n", lines[i].text);
    } else {
        printf("refused: %s\n", err.message);
    }
    for (uint64_t i = 0; lines != NULL && i < count; i++)
        free(lines[i].text);
    free(lines);
    sk_archive_close(archive);
    return status;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: zipdump ARCHIVE\n");
        return 2;
    }
    return dump(argv[1]);
}
