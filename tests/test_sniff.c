/* Sniffing: what a file that is not a .skops archive is, from its first
 * bytes; and the message sk_model_open gives for it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "model.h"
#include "sniff.h"

#define SNIFF(literal, last)                                                                       \
    sk_sniff_bytes((const unsigned char *)(literal), sizeof literal - 1, last)

static void zips_are_zips(void **state)
{
    (void)state;
    assert_int_equal(SNIFF("PK\3\4\24\0", -1).kind, SK_FILE_ZIP);
    assert_int_equal(SNIFF("PK\5\6\0\0\0\0", -1).kind, SK_FILE_ZIP);
    assert_int_equal(SNIFF("PK\1\2", -1).kind, SK_FILE_UNKNOWN);
}

static void pickles_say_their_protocol(void **state)
{
    (void)state;
    /* pickle.dumps({'a': 1}, protocol=4) */
    struct sk_sniff s = SNIFF("\x80\x04\x95\x0a\0\0\0\0\0\0\0}\x94\x8c\x01"
                              "a\x94K\x01s.",
                              '.');
    assert_int_equal(s.kind, SK_FILE_PICKLE);
    assert_int_equal(s.pickle_protocol, 4);
    assert_int_equal(SNIFF("\x80\x02}q\0.", '.').pickle_protocol, 2);
    assert_int_equal(SNIFF("\x80\x05\x95", -1).pickle_protocol, 5);
    /* no such protocol: not taken for a pickle */
    assert_int_equal(SNIFF("\x80\x09\x95", -1).kind, SK_FILE_UNKNOWN);
    assert_int_equal(SNIFF("\x80", -1).kind, SK_FILE_UNKNOWN);
    /* protocol 0: text opcodes, ending with STOP */
    s = SNIFF("(dp0\nVa\np1\nI1\ns.", '.');
    assert_int_equal(s.kind, SK_FILE_PICKLE);
    assert_int_equal(s.pickle_protocol, 0);
    assert_int_equal(SNIFF("}q\0.", '.').kind, SK_FILE_PICKLE);
    /* text that merely starts like one, without STOP at the end */
    assert_int_equal(SNIFF("(a note)\n", '\n').kind, SK_FILE_UNKNOWN);
    assert_int_equal(SNIFF("(dp0\n", -1).kind, SK_FILE_UNKNOWN);
    assert_int_equal(SNIFF("hello.", '.').kind, SK_FILE_UNKNOWN);
    assert_int_equal(SNIFF("", -1).kind, SK_FILE_UNKNOWN);
}

static void joblib_files_are_named(void **state)
{
    (void)state;
    struct sk_sniff s = SNIFF("\x80\x04\x95\xd1\0\0\0\0\0\0\0}\x94\x8c\x01"
                              "a\x94\x8c\x13joblib.numpy_pickle\x94",
                              '.');
    assert_int_equal(s.kind, SK_FILE_JOBLIB_PICKLE);
    assert_int_equal(s.pickle_protocol, 4);
    static const struct {
        const char *bytes;
        size_t length;
        enum sk_file_kind kind;
        const char *compression;
    } compressed[] = {
        {"\x78\x5e\x2d\x4f", 4, SK_FILE_JOBLIB_COMPRESSED, "zlib"}, /* compress=3 */
        {"\x78\x9c", 2, SK_FILE_JOBLIB_COMPRESSED, "zlib"},
        {"\x1f\x8b\x08\x00", 4, SK_FILE_JOBLIB_COMPRESSED, "gzip"},
        {"BZh9", 4, SK_FILE_JOBLIB_COMPRESSED, "bz2"},
        {"\xfd\x37\x7a\x58\x5a\x00\x00", 7, SK_FILE_JOBLIB_COMPRESSED, "xz"},
        {"\x5d\x00\x00\x80\x00", 5, SK_FILE_JOBLIB_COMPRESSED, "lzma"},
        {"\x04\x22\x4d\x18\x64", 5, SK_FILE_JOBLIB_COMPRESSED, "lz4"},
        {"ZF0x1a              \x78\x9c", 22, SK_FILE_JOBLIB_OLD, "zlib"},
    };
    for (size_t i = 0; i < sizeof compressed / sizeof *compressed; i++) {
        s = sk_sniff_bytes((const unsigned char *)compressed[i].bytes, compressed[i].length, -1);
        assert_int_equal(s.kind, compressed[i].kind);
        assert_string_equal(s.compression, compressed[i].compression);
    }
    /* near misses: a bad zlib check value, "BZ" without a block size */
    assert_int_equal(SNIFF("\x78\x9d", -1).kind, SK_FILE_UNKNOWN);
    assert_int_equal(SNIFF("BZh0", -1).kind, SK_FILE_UNKNOWN);
    assert_int_equal(SNIFF("\xfd\x37\x7a\x58\x5a", -1).kind, SK_FILE_UNKNOWN);
}

static void explanations_are_one_line(void **state)
{
    (void)state;
    char text[SK_ERROR_MESSAGE_MAX];
    struct sk_sniff s = SNIFF("ZF0x", -1);
    assert_true(sk_sniff_explain(&s, text, sizeof text));
    assert_string_equal(text, "this is a joblib file from before joblib 0.9.3 (\"ZF\" and zlib), "
                              "not a .skops archive; skopsfs reads joblib files from 0.9.3 on");
    /* what is read needs no explaining */
    s = SNIFF("\x80\x04\x95", -1);
    assert_false(sk_sniff_explain(&s, text, sizeof text));
    s = SNIFF("\x78\x9c", -1);
    assert_false(sk_sniff_explain(&s, text, sizeof text));
    s = SNIFF("PK\3\4", -1);
    assert_false(sk_sniff_explain(&s, text, sizeof text));
    s = SNIFF("text", -1);
    assert_false(sk_sniff_explain(&s, text, sizeof text));
}

/* sk_model_open reads a pickle by its bytes, never its name: {'a': 1} is a
 * dict of one JSON value, nothing untrusted. */
static void model_open_reads_a_pickle(void **state)
{
    (void)state;
    char path[] = "/tmp/skopsfs-sniff-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char pickle[] = "\x80\x05\x95\x0a\0\0\0\0\0\0\0}\x94\x8c\x01"
                                 "a\x94K\x01s.";
    assert_int_equal(write(fd, pickle, sizeof pickle - 1), (ssize_t)(sizeof pickle - 1));
    close(fd);
    struct sk_model_options options = {0};
    struct sk_model *model;
    struct sk_error err = {0};
    assert_int_equal(sk_model_open(path, &options, &model, &err), 0);
    assert_int_equal(model->schema->root->loader, SK_LOADER_DICT);
    char **names;
    size_t count;
    assert_int_equal(sk_schema_untrusted(model->schema, &names, &count, &err), 0);
    assert_int_equal(count, 0);
    sk_string_list_free(names, count);
    sk_model_close(model);
    struct sk_sniff s;
    assert_int_equal(sk_sniff_file(path, &s, &err), 0);
    assert_int_equal(s.kind, SK_FILE_PICKLE);
    unlink(path);
    sk_error_clear(&err);
    assert_int_equal(sk_sniff_file("/", &s, &err), -1);
    assert_string_equal(err.message, "/: not a regular file");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(zips_are_zips),
        cmocka_unit_test(pickles_say_their_protocol),
        cmocka_unit_test(joblib_files_are_named),
        cmocka_unit_test(explanations_are_one_line),
        cmocka_unit_test(model_open_reads_a_pickle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
