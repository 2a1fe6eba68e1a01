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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(default_lists_hold_skops_defaults),
        cmocka_unit_test(allowlist_takes_names_lists_and_files),
        cmocka_unit_test(missing_trust_file_is_a_clear_error),
        cmocka_unit_test(trust_file_entry_with_nul_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
