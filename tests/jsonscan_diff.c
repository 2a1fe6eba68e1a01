/* The differential test of the one-pass JSON reader (fuzz/jsondiff.h):
 * over every schema.json of the .skops files under the given folders and
 * every other file under them (fuzz seeds: schema text). Prints a count per
 * outcome; fails on any difference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "difffiles.h"
#include "jsondiff.h"

static unsigned long counts[JSON_DIFF_OUTCOMES];
static unsigned long unreadable;

static void check_text(const char *name, const char *text, size_t length)
{
    char why[1024];
    enum json_diff_outcome outcome = json_diff(text, length, why, sizeof why);
    counts[outcome]++;
    if (outcome == JSON_DIFF_DIFFERENT)
        fprintf(stderr, "%s: %s\n", name, why);
}

/* schema.json of a .skops archive, read with libzip; archives libzip
 * cannot read (hostile ones) are counted and passed over. */
static void check_archive(const char *path)
{
    int error;
    zip_t *zip = zip_open(path, ZIP_RDONLY, &error);
    zip_stat_t st;
    zip_file_t *file = NULL;
    char *text = NULL;
    if (zip != NULL && zip_stat(zip, "schema.json", 0, &st) == 0 && (st.valid & ZIP_STAT_SIZE) &&
        st.size < (1u << 30) && (file = zip_fopen(zip, "schema.json", 0)) != NULL &&
        (text = malloc(st.size + 1)) != NULL &&
        zip_fread(file, text, st.size) == (zip_int64_t)st.size)
        check_text(path, text, st.size);
    else
        unreadable++;
    free(text);
    if (file != NULL)
        zip_fclose(file);
    if (zip != NULL)
        zip_discard(zip);
}

/* A .skops file: its schema.json. Any other file: its bytes (fuzz seeds,
 * manifests: all JSON-ish text). */
static void check_path(const char *path)
{
    if (diff_ends_with(path, ".skops")) {
        check_archive(path);
        return;
    }
    size_t length;
    char *text = diff_read_file(path, &length);
    check_text(path, text, length);
    free(text);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        diff_each_file(argv[i], check_path);
    for (int i = 0; i < JSON_DIFF_OUTCOMES; i++)
        printf("%8lu  %s\n", counts[i], json_diff_outcome_names[i]);
    printf("%8lu  of the refusals with the very same message\n", json_diff_identical_messages);
    printf("%8lu  archives without a readable schema.json (libzip)\n", unreadable);
    return counts[JSON_DIFF_DIFFERENT] == 0 && counts[JSON_DIFF_SAME_ACCEPTED] > 0 ? 0 : 1;
}
