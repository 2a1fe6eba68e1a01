#include "trust.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graph.h"
#include "grow.h"
#include "sk_limits.h"

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
    /* what an audit marks unrepresentable can never be let through */
    if (start[0] == SK_UNREPRESENTABLE_MARK)
        return sk_fail(err,
                       "'%.*s' is a part of a pickle that skops cannot represent, as audit marks "
                       "it: no trust lets it through",
                       (int)(length > 200 ? 200 : length), start);
    if (length > SK_MAX_TYPE_NAME_BYTES)
        return sk_fail(err,
                       "trusted type name of %zu bytes is longer than %u (SK_MAX_TYPE_NAME_BYTES)",
                       length, SK_MAX_TYPE_NAME_BYTES);
    if (allowlist->count >= SK_MAX_ALLOWLIST_TYPES)
        return sk_fail(err, "more than %u trusted types (SK_MAX_ALLOWLIST_TYPES)",
                       SK_MAX_ALLOWLIST_TYPES);
    if (sk_grow(&allowlist->names, &allowlist->capacity, allowlist->count + 1,
                sizeof *allowlist->names, 16) != 0)
        return sk_fail(err, "out of memory");
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

/* What a path is when it is not a regular file, for the error message. */
static const char *file_kind(mode_t mode)
{
    static const struct {
        mode_t type;
        const char *name;
    } kinds[] = {
        {S_IFDIR, "a directory"},        {S_IFIFO, "a FIFO"},         {S_IFSOCK, "a socket"},
        {S_IFCHR, "a character device"}, {S_IFBLK, "a block device"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if ((mode & S_IFMT) == kinds[i].type)
            return kinds[i].name;
    return "not a regular file";
}

/* Reads the rest of FD, at most SK_MAX_TRUST_FILE_BYTES; SIZE_HINT is what
 * fstat said, but a file may grow while read (and /proc files say 0). */
static int read_bounded(int fd, const char *path, size_t size_hint, char **text, size_t *length,
                        struct sk_error *err)
{
    size_t capacity = size_hint + 1, used = 0;
    char *buffer = malloc(capacity);
    ssize_t got = 1;
    while (buffer != NULL && got != 0 && used <= SK_MAX_TRUST_FILE_BYTES) {
        if (used == capacity) {
            capacity =
                capacity > SK_MAX_TRUST_FILE_BYTES / 2 ? SK_MAX_TRUST_FILE_BYTES + 1 : capacity * 2;
            char *grown = realloc(buffer, capacity);
            if (grown == NULL)
                free(buffer);
            buffer = grown;
            continue;
        }
        got = read(fd, buffer + used, capacity - used);
        if (got < 0 && errno != EINTR)
            break;
        used += got > 0 ? (size_t)got : 0;
    }
    int result = 0;
    if (buffer == NULL)
        return sk_fail(err, "out of memory");
    if (got < 0)
        result = sk_fail(err, "trust file %s: %s", path, strerror(errno));
    else if (used > SK_MAX_TRUST_FILE_BYTES)
        result = sk_fail(err, "trust file %s: more than %u bytes (SK_MAX_TRUST_FILE_BYTES)", path,
                         SK_MAX_TRUST_FILE_BYTES);
    if (result != 0) {
        free(buffer);
        return result;
    }
    *text = buffer;
    *length = used;
    return 0;
}

/* Reads a trust file whole. Anything but a regular file is refused before
 * the first read: a FIFO or a device could block for ever or never end, so
 * it is opened without blocking and looked at first. */
static int read_trust_file(const char *path, char **text, size_t *length, struct sk_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    struct stat st;
    if (fd < 0) {
        int error = errno;
        /* a socket cannot be opened at all: say what it is, not ENXIO */
        if (error == ENXIO && stat(path, &st) == 0 && !S_ISREG(st.st_mode))
            return sk_fail(err, "trust file %s: is %s, not a regular file", path,
                           file_kind(st.st_mode));
        return sk_fail(err, "trust file %s: %s", path, strerror(error));
    }
    int result;
    if (fstat(fd, &st) != 0)
        result = sk_fail(err, "trust file %s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        result =
            sk_fail(err, "trust file %s: is %s, not a regular file", path, file_kind(st.st_mode));
    else if ((unsigned long long)st.st_size > SK_MAX_TRUST_FILE_BYTES)
        result = sk_fail(err, "trust file %s: %lld bytes, more than %u (SK_MAX_TRUST_FILE_BYTES)",
                         path, (long long)st.st_size, SK_MAX_TRUST_FILE_BYTES);
    else
        result = read_bounded(fd, path, (size_t)st.st_size, text, length, err);
    close(fd);
    return result;
}

/* One line of a trust file, without its newline: a name, a comment, both
 * or neither. */
static int add_line(struct sk_allowlist *allowlist, const char *line, size_t length,
                    struct sk_error *err)
{
    if (length > SK_MAX_TRUST_LINE_BYTES)
        return sk_fail(err, "line of %zu bytes is longer than %u (SK_MAX_TRUST_LINE_BYTES)", length,
                       SK_MAX_TRUST_LINE_BYTES);
    /* a NUL would end the name early: what is trusted must be what is written */
    if (memchr(line, '\0', length) != NULL)
        return sk_fail(err, "a NUL byte in a line (is this a text file?)");
    const char *comment = memchr(line, '#', length);
    if (comment != NULL)
        length = (size_t)(comment - line);
    return add_span(allowlist, line, length, err);
}

int sk_allowlist_load_file(struct sk_allowlist *allowlist, const char *path, struct sk_error *err)
{
    char *text = NULL;
    size_t length = 0;
    if (read_trust_file(path, &text, &length, err) != 0)
        return -1;
    int result = 0;
    size_t line_number = 1;
    for (size_t start = 0; start < length && result == 0; line_number++) {
        const char *newline = memchr(text + start, '\n', length - start);
        size_t stop = newline ? (size_t)(newline - text) : length;
        if (add_line(allowlist, text + start, stop - start, err) != 0) {
            sk_error_prefix(err, "trust file %s line %zu: ", path, line_number);
            result = -1;
        }
        start = stop + 1;
    }
    free(text);
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

size_t sk_allowlist_filter(const struct sk_allowlist *allowlist, char **names, size_t count)
{
    size_t kept = 0;
    for (size_t i = 0; i < count; i++) {
        if (sk_allowlist_contains(allowlist, names[i]))
            free(names[i]);
        else
            names[kept++] = names[i];
    }
    return kept;
}
