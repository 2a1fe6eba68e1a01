/* Trust: skops's default lists and the user's allowlist. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "sk_limits.h"
#include "trust.h"

static void default_lists_hold_skops_defaults(void **state)
{
    (void)state;
    assert_true(sk_default_list_contains(SK_LIST_SKLEARN_ESTIMATORS,
                                         "sklearn.linear_model._logistic.LogisticRegression"));
    assert_false(sk_default_list_contains(SK_LIST_SKLEARN_ESTIMATORS, "os.system"));
    assert_true(
        sk_default_list_contains(SK_LIST_NUMPY_UFUNCS, "numpy.core._multiarray_umath.sqrt"));
    /* exact names only: the public alias is not the listed name */
    assert_false(sk_default_list_contains(SK_LIST_NUMPY_UFUNCS, "numpy.sqrt"));
    assert_true(sk_default_list_contains(SK_LIST_PRIMITIVES, "builtins.int"));
    assert_false(sk_default_list_contains(SK_LIST_PRIMITIVES, "builtins.NoneType"));
    assert_true(
        sk_default_list_contains(SK_LIST_SGD_LOSSES, "sklearn.linear_model._sgd_fast.Hinge"));
    assert_int_equal(sk_default_lists[SK_LIST_SKLEARN_ESTIMATORS].count, 204);
    assert_int_equal(sk_default_lists[SK_LIST_SCIPY_UFUNCS].count, 230);
}

static void allowlist_takes_names_lists_and_files(void **state)
{
    (void)state;
    struct sk_allowlist *a = sk_allowlist_new();
    struct sk_error err = {0};
    assert_int_equal(sk_allowlist_add(a, "  numpy.dtype \n", &err), 0);
    assert_int_equal(sk_allowlist_add_list(a, "a.B::c.D", ':', &err), 0);
    char path[] = "/tmp/skopsfs-trust-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs("# reviewed 2026-11-26\nx.Y  # inline comment\n\n   \nz.W\n", f);
    fclose(f);
    assert_int_equal(sk_allowlist_load_file(a, path, &err), 0);
    unlink(path);
    assert_int_equal(sk_allowlist_count(a), 5);
    assert_true(sk_allowlist_contains(a, "numpy.dtype"));
    assert_true(sk_allowlist_contains(a, "a.B"));
    assert_true(sk_allowlist_contains(a, "c.D"));
    assert_true(sk_allowlist_contains(a, "x.Y"));
    assert_true(sk_allowlist_contains(a, "z.W"));
    assert_false(sk_allowlist_contains(a, "# reviewed 2026-11-26"));
    assert_false(sk_allowlist_contains(a, "x"));
    sk_allowlist_free(a);
    assert_false(sk_allowlist_contains(NULL, "x.Y"));
}

static void missing_trust_file_is_a_clear_error(void **state)
{
    (void)state;
    struct sk_allowlist *a = sk_allowlist_new();
    struct sk_error err = {0};
    assert_int_equal(sk_allowlist_load_file(a, "/nonexistent/trusted", &err), -1);
    assert_string_equal(err.message, "trust file /nonexistent/trusted: No such file or directory");
    sk_allowlist_free(a);
}

/* The error of loading PATH into a fresh allowlist ("" when it loads). */
static const char *load_error(const char *path, struct sk_error *err)
{
    struct sk_allowlist *a = sk_allowlist_new();
    sk_error_clear(err);
    int result = sk_allowlist_load_file(a, path, err);
    sk_allowlist_free(a);
    assert_int_equal(result, err->message[0] ? -1 : 0);
    return err->message;
}

/* A temporary trust file holding LENGTH bytes of TEXT; PATH must end in XXXXXX. */
static void write_trust_file(char *path, const char *text, size_t length)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, length), (ssize_t)length);
    close(fd);
}

static void trust_file_that_is_not_regular_is_refused_at_once(void **state)
{
    (void)state;
    struct sk_error err = {0};
    char expected[256];
    char dir[] = "/tmp/skopsfs-trust-dir-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char fifo[sizeof dir + 16], sock[sizeof dir + 16];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(sock, sizeof sock, "%s/sock", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    snprintf(address.sun_path, sizeof address.sun_path, "%s", sock);
    int listener = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(listener, (struct sockaddr *)&address, sizeof address), 0);
    alarm(10); /* a FIFO opened for reading blocks until a writer comes: fail, not hang */
    const struct {
        const char *path, *kind;
    } cases[] = {{fifo, "a FIFO"},
                 {sock, "a socket"},
                 {"/dev/null", "a character device"},
                 {dir, "a directory"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(expected, sizeof expected, "trust file %s: is %s, not a regular file",
                 cases[i].path, cases[i].kind);
        assert_string_equal(load_error(cases[i].path, &err), expected);
    }
    alarm(0);
    close(listener);
    unlink(sock);
    unlink(fifo);
    rmdir(dir);
}

static void trust_file_limits_name_the_limit_file_and_line(void **state)
{
    (void)state;
    struct sk_error err = {0};
    char expected[256];
    char path[] = "/tmp/skopsfs-trust-XXXXXX";
    write_trust_file(path, "", 0);
    assert_int_equal(truncate(path, SK_MAX_TRUST_FILE_BYTES + 1ll), 0);
    snprintf(expected, sizeof expected,
             "trust file %s: %u bytes, more than %u (SK_MAX_TRUST_FILE_BYTES)", path,
             SK_MAX_TRUST_FILE_BYTES + 1, SK_MAX_TRUST_FILE_BYTES);
    assert_string_equal(load_error(path, &err), expected);
    unlink(path);

    size_t long_line = SK_MAX_TRUST_LINE_BYTES + 1;
    static char text[SK_MAX_TRUST_LINE_BYTES + 64];
    strcpy(text, "a.B\n# c\n#");
    memset(text + 9, 'x', long_line - 1);
    strcpy(text + 8 + long_line, "\nc.D\n");
    strcpy(path, "/tmp/skopsfs-trust-XXXXXX");
    write_trust_file(path, text, strlen(text));
    snprintf(expected, sizeof expected,
             "trust file %s line 3: line of %zu bytes is longer than %u (SK_MAX_TRUST_LINE_BYTES)",
             path, long_line, SK_MAX_TRUST_LINE_BYTES);
    assert_string_equal(load_error(path, &err), expected);
    unlink(path);

    size_t long_name = SK_MAX_TYPE_NAME_BYTES + 1;
    strcpy(text, "a.B\n");
    memset(text + 4, 'x', long_name);
    strcpy(text + 4 + long_name, "  # a comment\n");
    strcpy(path, "/tmp/skopsfs-trust-XXXXXX");
    write_trust_file(path, text, strlen(text));
    snprintf(expected, sizeof expected,
             "trust file %s line 2: trusted type name of %zu bytes is longer than %u "
             "(SK_MAX_TYPE_NAME_BYTES)",
             path, long_name, SK_MAX_TYPE_NAME_BYTES);
    assert_string_equal(load_error(path, &err), expected);
    unlink(path);

    strcpy(path, "/tmp/skopsfs-trust-XXXXXX");
    write_trust_file(path, "a.B\n\nx.Y\0os.system\n", 20);
    snprintf(expected, sizeof expected,
             "trust file %s line 3: a NUL byte in a line (is this a text file?)", path);
    assert_string_equal(load_error(path, &err), expected);
    unlink(path);
}

static void trust_file_lines_end_as_they_may(void **state)
{
    (void)state;
    struct sk_allowlist *a = sk_allowlist_new();
    struct sk_error err = {0};
    char path[] = "/tmp/skopsfs-trust-XXXXXX";
    write_trust_file(path, "a.B\r\n#c\r\nc.D", 12); /* CRLF, no final newline */
    assert_int_equal(sk_allowlist_load_file(a, path, &err), 0);
    unlink(path);
    assert_int_equal(sk_allowlist_count(a), 2);
    assert_true(sk_allowlist_contains(a, "a.B"));
    assert_true(sk_allowlist_contains(a, "c.D"));
    /* a file whose size fstat does not know (0) is read to its end */
    assert_int_equal(sk_allowlist_load_file(a, "/proc/self/status", &err), 0);
    assert_string_equal(err.message, "");
    assert_true(sk_allowlist_count(a) > 20);
    sk_allowlist_free(a);
}

/* "x.Y\0z" must never trust "x.Y": a NUL inside a name is refused. */
static void trust_file_entry_with_nul_is_refused(void **state)
{
    (void)state;
    struct sk_allowlist *a = sk_allowlist_new();
    struct sk_error err = {0};
    char path[] = "/tmp/skopsfs-trust-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fwrite("a.B\nx.Y\0z\n", 1, 10, f);
    fclose(f);
    assert_int_equal(sk_allowlist_load_file(a, path, &err), -1);
    unlink(path);
    assert_non_null(strstr(err.message, "NUL"));
    assert_false(sk_allowlist_contains(a, "x.Y"));
    sk_allowlist_free(a);
}

/* audit marks a pickle's unrepresentable parts with '!': never trustable */
static void unrepresentable_mark_is_refused(void **state)
{
    (void)state;
    struct sk_allowlist *a = sk_allowlist_new();
    struct sk_error err = {0};
    assert_int_equal(sk_allowlist_add_list(a, "a.B,!os.system", ',', &err), -1);
    assert_non_null(strstr(err.message, "'!os.system' is a part of a pickle"));
    assert_false(sk_allowlist_contains(a, "!os.system"));
    sk_allowlist_free(a);
}

static void expect_hint(const char *const *names, size_t count, enum sk_trust_hint_form form,
                        const char *expected, size_t expected_left_out)
{
    size_t left_out = 99;
    char *hint = sk_trust_hint(names, count, form, &left_out);
    assert_non_null(hint);
    assert_string_equal(hint, expected);
    assert_int_equal(left_out, expected_left_out);
    free(hint);
}

static void hint_trusts_all_in_one_option(void **state)
{
    (void)state;
    const char *plain[] = {"numpy.dtype", "collections.defaultdict"};
    expect_hint(plain, 2, SK_TRUST_HINT_MOUNT, "-o trust=numpy.dtype:collections.defaultdict", 0);
    expect_hint(plain, 2, SK_TRUST_HINT_CLI, "--trust numpy.dtype --trust collections.defaultdict",
                0);
    expect_hint(plain, 0, SK_TRUST_HINT_MOUNT, "", 0);
    /* what the shell would take is quoted; a quote inside is escaped */
    const char *shelly[] = {"__main__.<lambda>", "a.it's"};
    expect_hint(shelly, 2, SK_TRUST_HINT_MOUNT, "-o 'trust=__main__.<lambda>:a.it'\\''s'", 0);
    expect_hint(shelly, 2, SK_TRUST_HINT_CLI, "--trust '__main__.<lambda>' --trust 'a.it'\\''s'",
                0);
    /* what an option cannot carry is left out and counted */
    const char *odd[] = {"a.B", "c:d.E", "f,g.H", "i\\j", "esc\033[2J", " k.L", "", "m.N"};
    expect_hint(odd, 8, SK_TRUST_HINT_MOUNT, "-o trust=a.B:m.N", 6);
    expect_hint(odd, 8, SK_TRUST_HINT_CLI,
                "--trust a.B --trust c:d.E --trust f,g.H --trust 'i\\j' --trust m.N", 3);
}

/* The mount option's value, given back to the allowlist, trusts each name. */
static void hint_round_trips(void **state)
{
    (void)state;
    const char *names[] = {"sklearn.Foo", "x.<y>", "z.W"};
    char *hint = sk_trust_hint(names, 3, SK_TRUST_HINT_MOUNT, NULL);
    assert_string_equal(hint, "-o 'trust=sklearn.Foo:x.<y>:z.W'");
    hint[strlen(hint) - 1] = '\0'; /* the shell's work: drop the quotes */
    struct sk_allowlist *a = sk_allowlist_new();
    struct sk_error err = {0};
    assert_int_equal(sk_allowlist_add_list(a, hint + strlen("-o 'trust="), ':', &err), 0);
    for (size_t i = 0; i < 3; i++)
        assert_true(sk_allowlist_contains(a, names[i]));
    assert_int_equal(sk_allowlist_count(a), 3);
    sk_allowlist_free(a);
    free(hint);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(default_lists_hold_skops_defaults),
        cmocka_unit_test(allowlist_takes_names_lists_and_files),
        cmocka_unit_test(missing_trust_file_is_a_clear_error),
        cmocka_unit_test(trust_file_that_is_not_regular_is_refused_at_once),
        cmocka_unit_test(trust_file_limits_name_the_limit_file_and_line),
        cmocka_unit_test(trust_file_lines_end_as_they_may),
        cmocka_unit_test(trust_file_entry_with_nul_is_refused),
        cmocka_unit_test(unrepresentable_mark_is_refused),
        cmocka_unit_test(hint_trusts_all_in_one_option),
        cmocka_unit_test(hint_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
