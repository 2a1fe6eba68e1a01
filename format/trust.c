#include "trust.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

bool sk_default_list_contains(enum sk_default_list list, const char *type_name)
{
    const struct sk_type_list *l = &sk_default_lists[list];
    return bsearch(&type_name, l->names, l->count, sizeof *l->names, compare_names) != NULL;
}

struct sk_allowlist {
    char **names;
    size_t count;
    size_t capacity;
};

struct sk_allowlist *sk_allowlist_new(void)
{
    return calloc(1, sizeof(struct sk_allowlist));
}

void sk_allowlist_free(struct sk_allowlist *allowlist)
{
    if (allowlist == NULL)
        return;
    for (size_t i = 0; i < allowlist->count; i++)
        free(allowlist->names[i]);
    free(allowlist->names);
    free(allowlist);
}

static int add_span(struct sk_allowlist *allowlist, const char *start, size_t length,
                    struct sk_error *err)
{
    while (length > 0 && isspace((unsigned char)*start)) {
        start++;
        length--;
    }
    while (length > 0 && isspace((unsigned char)start[length - 1]))
        length--;
    if (length == 0)
        return 0;
    /* a name cut at a NUL would trust a shorter name than the one written */
    if (memchr(start, '\0', length) != NULL)
        return sk_fail(err, "a trusted type name holds a NUL character");
    if (length > SK_MAX_TYPE_NAME_BYTES)
        return sk_fail(err,
                       "trusted type name of %zu bytes is longer than %u (SK_MAX_TYPE_NAME_BYTES)",
                       length, SK_MAX_TYPE_NAME_BYTES);
    if (allowlist->count >= SK_MAX_ALLOWLIST_TYPES)
        return sk_fail(err, "more than %u trusted types (SK_MAX_ALLOWLIST_TYPES)",
                       SK_MAX_ALLOWLIST_TYPES);
    if (allowlist->count == allowlist->capacity) {
        size_t capacity = allowlist->capacity ? allowlist->capacity * 2 : 16;
        char **grown = realloc(allowlist->names, capacity * sizeof *grown);
        if (grown == NULL)
            return sk_fail(err, "out of memory");
        allowlist->names = grown;
        allowlist->capacity = capacity;
    }
    char *name = strndup(start, length);
    if (name == NULL)
        return sk_fail(err, "out of memory");
    allowlist->names[allowlist->count++] = name;
    return 0;
}

/* Every public way to add names ends here, so lookups can bsearch. */
static int sort_names(struct sk_allowlist *allowlist, int result)
{
    qsort(allowlist->names, allowlist->count, sizeof *allowlist->names, compare_names);
    return result;
}

int sk_allowlist_add(struct sk_allowlist *allowlist, const char *type_name, struct sk_error *err)
{
    return sort_names(allowlist, add_span(allowlist, type_name, strlen(type_name), err));
}

int sk_allowlist_add_list(struct sk_allowlist *allowlist, const char *names, char separator,
                          struct sk_error *err)
{
    const char *start = names;
    for (;;) {
        const char *stop = strchr(start, separator);
        size_t length = stop ? (size_t)(stop - start) : strlen(start);
        if (add_span(allowlist, start, length, err) != 0)
            return sort_names(allowlist, -1);
        if (stop == NULL)
            return sort_names(allowlist, 0);
        start = stop + 1;
    }
}

int sk_allowlist_load_file(struct sk_allowlist *allowlist, const char *path, struct sk_error *err)
{
    FILE *file = fopen(path, "re");
    if (file == NULL)
        return sk_fail(err, "trust file %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t capacity = 0;
    ssize_t length;
    int result = 0;
    while ((length = getline(&line, &capacity, file)) >= 0) {
        char *comment = memchr(line, '#', (size_t)length);
        if (comment != NULL)
            length = comment - line;
        if (add_span(allowlist, line, (size_t)length, err) != 0) {
            sk_error_prefix(err, "trust file %s: ", path);
            result = -1;
            break;
        }
    }
    if (result == 0 && ferror(file))
        result = sk_fail(err, "trust file %s: read error", path);
    free(line);
    fclose(file);
    return sort_names(allowlist, result);
}

bool sk_allowlist_contains(const struct sk_allowlist *allowlist, const char *type_name)
{
    if (allowlist == NULL || allowlist->count == 0)
        return false;
    return bsearch(&type_name, allowlist->names, allowlist->count, sizeof *allowlist->names,
                   compare_names) != NULL;
}

size_t sk_allowlist_count(const struct sk_allowlist *allowlist)
{
    return allowlist ? allowlist->count : 0;
}

/* Whether an option can carry NAME so that the allowlist gets it back. */
static bool hint_can_carry(const char *name, enum sk_trust_hint_form form)
{
    size_t length = strlen(name);
    if (length == 0 || length > SK_MAX_TYPE_NAME_BYTES || isspace((unsigned char)name[0]) ||
        isspace((unsigned char)name[length - 1]))
        return false;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return form != SK_TRUST_HINT_MOUNT || strpbrk(name, ":,\\") == NULL;
}

/* Whether a shell takes WORD as it stands, unquoted. */
static bool shell_safe(const char *word)
{
    static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                               "._-+=:,/@%";
    return word[strspn(word, safe)] == '\0';
}

static void put_shell_word(FILE *out, const char *word)
{
    if (shell_safe(word)) {
        fputs(word, out);
        return;
    }
    fputc('\'', out);
    for (const char *p = word; *p; p++) {
        if (*p == '\'')
            fputs("'\\''", out); /* end the quote, an escaped quote, quote again */
        else
            fputc(*p, out);
    }
    fputc('\'', out);
}

char *sk_trust_hint(const char *const *names, size_t count, enum sk_trust_hint_form form,
                    size_t *left_out)
{
    char *word = NULL, *hint = NULL;
    size_t word_size = 0, hint_size = 0, skipped = 0, carried = 0;
    FILE *list = open_memstream(&word, &word_size); /* the mount option's one word */
    FILE *out = open_memstream(&hint, &hint_size);
    if (list == NULL || out == NULL) {
        if (list != NULL)
            fclose(list);
        free(word);
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        if (!hint_can_carry(names[i], form)) {
            skipped++;
        } else if (form == SK_TRUST_HINT_MOUNT) {
            fprintf(list, "%s%s", carried++ ? ":" : "trust=", names[i]);
        } else {
            fputs(carried++ ? " --trust " : "--trust ", out);
            put_shell_word(out, names[i]);
        }
    }
    bool failed = fclose(list) != 0;
    if (!failed && form == SK_TRUST_HINT_MOUNT && carried > 0) {
        fputs("-o ", out);
        put_shell_word(out, word);
    }
    failed |= fclose(out) != 0;
    free(word);
    if (failed) {
        free(hint);
        return NULL;
    }
    if (left_out != NULL)
        *left_out = skipped;
    return hint;
}
