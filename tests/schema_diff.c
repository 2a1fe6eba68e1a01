/* The differential test of the one-pass schema reader (fuzz/schemadiff.h):
 * every .skops under the given folders against its own members, and every
 * other file there (fuzz seeds: schema text) against a small archive of
 * members named like the fuzz target's. Prints a count per outcome; fails
 * on any difference, or when no file is read in one pass. A case named
 * *.one-pass.json must be read in one pass, *.declined.json declined
 * (tests/fixtures/schema-cases). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "difffiles.h"
#include "model.h"
#include "schemadiff.h"

static unsigned long counts[SCHEMA_DIFF_OUTCOMES];
static unsigned long unopened;
static unsigned long unexpected; /* cases whose name says otherwise */
static struct sk_store *seed_store;

static void check_text(const char *name, const char *text, size_t length, struct sk_store *store)
{
    char why[1024];
    enum schema_diff_outcome outcome = schema_diff(text, length, store, why, sizeof why);
    counts[outcome]++;
    if (outcome == SCHEMA_DIFF_DIFFERENT)
        fprintf(stderr, "%s: %s\n", name, why);
    if (getenv("SCHEMA_DIFF_VERBOSE") && outcome != SCHEMA_DIFF_SAME)
        printf("%s: %s\n", name, schema_diff_outcome_names[outcome]);
    bool declined = outcome == SCHEMA_DIFF_DECLINED_READ || outcome == SCHEMA_DIFF_DECLINED_REFUSED;
    if ((diff_ends_with(name, ".one-pass.json") && outcome != SCHEMA_DIFF_SAME) ||
        (diff_ends_with(name, ".declined.json") && !declined)) {
        fprintf(stderr, "%s: %s\n", name, schema_diff_outcome_names[outcome]);
        unexpected++;
    }
}

static void check_archive(const char *path)
{
    struct sk_store *store;
    struct sk_error err = {0};
    uint64_t index;
    char *text;
    size_t length;
    if (sk_model_open_store(path, &store, &err) != 0) {
        unopened++;
        return;
    }
    if (sk_store_find(store, "schema.json", &index) == 0 &&
        sk_store_read_member(store, index, 1u << 30, &text, &length, &err) == 0) {
        check_text(path, text, length, store);
        sk_store_free_member(text, length);
    } else {
        unopened++;
    }
    sk_store_close(store);
}

/* A .skops file against its own members; any other file but notes and
 * pickles as schema text against the seed archive's. */
static void check_path(const char *path)
{
    if (diff_ends_with(path, ".skops")) {
        check_archive(path);
        return;
    }
    if (diff_ends_with(path, ".md") || diff_ends_with(path, ".pkl") ||
        diff_ends_with(path, ".joblib"))
        return;
    size_t length;
    char *text = diff_read_file(path, &length);
    check_text(path, text, length, seed_store);
    free(text);
}

/* argv[1]: the archive the seeds' members are looked up in; then folders. */
int main(int argc, char **argv)
{
    struct sk_error err = {0};
    if (argc < 3 || sk_model_open_store(argv[1], &seed_store, &err) != 0) {
        fprintf(stderr, "usage: schema_diff SEED_ARCHIVE.skops FOLDER...: %s\n", err.message);
        return 2;
    }
    for (int i = 2; i < argc; i++)
        diff_each_file(argv[i], check_path);
    for (int i = 0; i < SCHEMA_DIFF_OUTCOMES; i++)
        printf("%8lu  %s\n", counts[i], schema_diff_outcome_names[i]);
    printf("%8lu  archives that do not open as stores\n", unopened);
    printf("%8lu  cases read otherwise than their names say\n", unexpected);
    sk_store_close(seed_store);
    return counts[SCHEMA_DIFF_DIFFERENT] == 0 && counts[SCHEMA_DIFF_SAME] > 0 && unexpected == 0
               ? 0
               : 1;
}
