/* Trust: skops's default lists and the user's allowlist. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

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
    struct sk_error err = {{0}};
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
    struct sk_error err = {{0}};
    assert_int_equal(sk_allowlist_load_file(a, "/nonexistent/trusted", &err), -1);
    assert_string_equal(err.message, "trust file /nonexistent/trusted: No such file or directory");
    sk_allowlist_free(a);
}

/* "x.Y\0z" must never trust "x.Y": a NUL inside a name is refused. */
static void trust_file_entry_with_nul_is_refused(void **state)
{
    (void)state;
    struct sk_allowlist *a = sk_allowlist_new();
    struct sk_error err = {{0}};
    char path[] = "/tmp/skopsfs-trust-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fwrite("a.B\nx.Y\0z\n", 1, 10, f);
    fclose(f);
    assert_int_equal(sk_allowlist_load_file(a, path, &err), -1);
    unlink(path);
    assert_non_null(strstr(err.message, "holds a NUL character"));
    assert_false(sk_allowlist_contains(a, "x.Y"));
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
    struct sk_error err = {{0}};
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
        cmocka_unit_test(trust_file_entry_with_nul_is_refused),
        cmocka_unit_test(hint_trusts_all_in_one_option),
        cmocka_unit_test(hint_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
