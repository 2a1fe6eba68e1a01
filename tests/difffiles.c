#include "difffiles.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool diff_ends_with(const char *path, const char *tail)
{
    size_t n = strlen(path), t = strlen(tail);
    return n >= t && strcmp(path + n - t, tail) == 0;
}

void diff_each_file(const char *path, void (*visit)(const char *path))
{
    DIR *dir = opendir(path);
    if (dir == NULL) {
        visit(path);
        return;
    }
    struct dirent *d;
    while ((d = readdir(dir)) != NULL) {
        if (d->d_name[0] == '.')
            continue;
        char *child;
        if (asprintf(&child, "%s/%s", path, d->d_name) < 0) {
            perror(path);
            exit(2);
        }
        diff_each_file(child, visit);
        free(child);
    }
    closedir(dir);
}

char *diff_read_file(const char *path, size_t *length)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    char *text = NULL;
    if (f == NULL || fstat(fileno(f), &st) != 0 ||
        (text = malloc((size_t)st.st_size + 1)) == NULL) {
        perror(path);
        exit(2);
    }
    *length = fread(text, 1, (size_t)st.st_size, f);
    text[*length] = '\0';
    fclose(f);
    return text;
}
