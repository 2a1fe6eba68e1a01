/* The content checks on one thread and on several give the same report:
 * the same problems, text and object, in the same order, and the same
 * error where a file cannot be checked. Run over every file of the
 * directories given (content, hostile and pickle fixtures). Where a file
 * has a NAME.problems beside it (one problem text a line, as the checks
 * ran before they were threaded), every run must give exactly that: a
 * merge out of walk order fails it even on one thread.
 * Usage: test_content_threads DIR... Prints each difference; exit 1 if any. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contentrun.h"

/* The problem texts alone, as NAME.problems holds them. */
static char *without_nodes(const char *text)
{
    char *copy = strdup(text), *to = copy;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        const char *mark = strstr(line, " [node ");
        size_t keep = mark != NULL && mark < end ? (size_t)(mark - line) : (size_t)(end - line);
        memcpy(to, line, keep);
        to += keep;
        *to++ = '\n';
        line = end + 1;
    }
    *to = '\0';
    return copy;
}

static char *read_expected(const char *path)
{
    char *name;
    if (asprintf(&name, "%.*s.problems", (int)(strrchr(path, '.') - path), path) < 0)
        abort();
    FILE *f = fopen(name, "r");
    free(name);
    if (f == NULL)
        return NULL;
    char *text = calloc(1, 1 << 20);
    size_t got = fread(text, 1, (1 << 20) - 1, f);
    text[got] = '\0';
    fclose(f);
    return text;
}

static int check_file(const char *path)
{
    static const char *const several[] = {"2", "3", "8"};
    int failures = 0;
    char *one = content_outcome(path, "1");
    char *expected = strrchr(path, '.') ? read_expected(path) : NULL;
    char *texts = without_nodes(one);
    if (expected != NULL && strcmp(texts, expected) != 0) {
        printf("FAIL %s: one thread gives\n%s\nnot\n%s\n", path, texts, expected);
        failures++;
    }
    for (size_t i = 0; i < sizeof several / sizeof *several; i++) {
        char *many = content_outcome(path, several[i]);
        if (strcmp(one, many) != 0) {
            printf("FAIL %s: one thread gives\n%s\n%s threads give\n%s\n", path, one, several[i],
                   many);
            failures++;
        }
        free(many);
    }
    free(texts);
    free(expected);
    free(one);
    return failures;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    int failures = 0, files = 0;
    for (int d = 1; d < argc; d++) {
        DIR *dir = opendir(argv[d]);
        if (dir == NULL) {
            printf("FAIL cannot open %s\n", argv[d]);
            return 1;
        }
        char **names = NULL;
        size_t count = 0;
        for (struct dirent *e; (e = readdir(dir)) != NULL;) {
            const char *dot = strrchr(e->d_name, '.');
            if (e->d_name[0] == '.' || dot == NULL || strcmp(dot, ".json") == 0 ||
                strcmp(dot, ".md") == 0 || strcmp(dot, ".problems") == 0)
                continue;
            names = realloc(names, (count + 1) * sizeof *names);
            if (names == NULL || asprintf(&names[count++], "%s/%s", argv[d], e->d_name) < 0)
                abort();
        }
        closedir(dir);
        qsort(names, count, sizeof *names, compare_names);
        for (size_t i = 0; i < count; i++) {
            failures += check_file(names[i]);
            files++;
            free(names[i]);
        }
        free(names);
    }
    printf("%d files, %d failed\n", files, failures);
    return failures != 0 || files == 0;
}
