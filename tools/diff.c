/* skopsfs diff A B: what changed between two models, entry by entry as a
 * mount shows them: values (hyperparameters), entries added or removed,
 * types, trust, links, arrays' dtype, shape and elements. Arrays are read
 * in chunks through the library's readers, never whole. Exit 0 when equal,
 * 1 when not, 2 on error. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "commands.h"
#include "npyvalue.h"
#include "progress.h"

/* Elements compared per read. */
#define DIFF_CHUNK_ELEMENTS (1u << 16)
/* Bytes compared per read where the bytes themselves are compared. */
#define DIFF_CHUNK_BYTES (1u << 20)
#define DIFF_VALUE_COLUMNS 60
#define SHAPE_DIGITS_BYTES (SK_MAX_NPY_DIMS * 21 + 1)
#define SHAPE_TEXT_BYTES (SHAPE_DIGITS_BYTES + 3)

struct diff {
    const struct sk_layout *a, *b;
    bool json;
    json_t *changes; /* --json: the list printed at the end */
    size_t change_count;
    bool failed; /* a read failed: exit 2 */
    struct progress progress;
    uint64_t bytes_done;
};

/* One change. CHANGE names it ("added", "value", "dtype", ...); EXTRA holds
 * the JSON-only facts (counts), and is consumed. */
static void report(struct diff *d, const char *path, const char *change, const char *old_value,
                   const char *new_value, const char *detail, json_t *extra)
{
    d->change_count++;
    if (d->json) {
        json_t *object = extra != NULL ? extra : json_object();
        if (object == NULL || json_array_append_new(d->changes, object) != 0) {
            d->failed = true;
            return;
        }
        json_object_set_new(object, "path", json_string(path));
        json_object_set_new(object, "change", json_string(change));
        if (old_value != NULL)
            json_object_set_new(object, "old", json_string(old_value));
        if (new_value != NULL)
            json_object_set_new(object, "new", json_string(new_value));
        return;
    }
    json_decref(extra);
    progress_end(&d->progress);
    if (strcmp(change, "added") == 0 || strcmp(change, "removed") == 0)
        printf("%c %s\n", change[0] == 'a' ? '+' : '-', path);
    else if (detail != NULL)
        printf("~ %s: %s\n", path, detail);
    else if (strcmp(change, "value") == 0)
        printf("~ %s: %s -> %s\n", path, old_value, new_value);
    else
        printf("~ %s: %s %s -> %s\n", path, change, old_value, new_value);
}

/* A text value for one line: without its newline, cut. */
static char *value_text(const struct sk_entry *entry)
{
    int length = cli_text_length(entry);
    int shown = length > DIFF_VALUE_COLUMNS ? DIFF_VALUE_COLUMNS - 3 : length;
    char *text;
    if (asprintf(&text, "%.*s%s", shown, entry->text, length > shown ? "..." : "") < 0)
        return NULL;
    return text;
}

static char *needs_text(const struct sk_entry *entry)
{
    if (!entry->refused)
        return strdup("trusted");
    char *text = NULL;
    size_t length = 0;
    FILE *out = open_memstream(&text, &length);
    if (out == NULL)
        return NULL;
    fputs("needs ", out);
    for (size_t k = 0; k < entry->need_count; k++)
        fprintf(out, "%s%s", k ? ", " : "", entry->needs[k]);
    fclose(out);
    return text;
}

static bool same_needs(const struct sk_entry *a, const struct sk_entry *b)
{
    if (a->refused != b->refused || a->need_count != b->need_count)
        return false;
    for (size_t k = 0; k < a->need_count; k++)
        if (strcmp(a->needs[k], b->needs[k]) != 0)
            return false;
    return true;
}

static void shape_text(const struct sk_npy_header *header, char *buffer, size_t size)
{
    char dims[SHAPE_DIGITS_BYTES];
    sk_npy_format_shape(header, dims, sizeof dims);
    snprintf(buffer, size, "(%s%s)", dims, header->ndim == 1 ? "," : "");
}

/* Reads exactly LENGTH bytes at OFFSET, or fails. */
static int read_fully(struct diff *d, struct sk_source *source, unsigned char *buffer,
                      size_t length, uint64_t offset, const char *path)
{
    struct sk_error err = {0};
    size_t done = 0;
    while (done < length) {
        ssize_t got = sk_source_pread(source, buffer + done, length - done, offset + done, &err);
        if (got <= 0) {
            progress_end(&d->progress);
            fprintf(stderr, "%s: diff: %s: %s\n", program, path,
                    got < 0 ? err.message : "the member ends early");
            d->failed = true;
            return -1;
        }
        done += (size_t)got;
    }
    d->bytes_done += length;
    progress_update(&d->progress, d->bytes_done);
    return 0;
}

struct pair {
    const struct sk_entry *a, *b;
    struct sk_source *source_a, *source_b;
    unsigned char *buffer_a, *buffer_b;
};

static int open_pair(struct diff *d, struct pair *p, size_t size_a, size_t size_b, const char *path)
{
    struct sk_error err = {0};
    p->buffer_a = malloc(size_a ? size_a : 1);
    p->buffer_b = malloc(size_b ? size_b : 1);
    if (p->buffer_a == NULL || p->buffer_b == NULL) {
        fprintf(stderr, "%s: diff: out of memory\n", program);
        d->failed = true;
        return -1;
    }
    if (sk_entry_open(d->a, p->a, &p->source_a, &err) != 0 ||
        sk_entry_open(d->b, p->b, &p->source_b, &err) != 0) {
        fprintf(stderr, "%s: diff: %s: %s\n", program, path, err.message);
        d->failed = true;
        return -1;
    }
    return 0;
}

static void close_pair(struct pair *p)
{
    sk_source_close(p->source_a);
    sk_source_close(p->source_b);
    free(p->buffer_a);
    free(p->buffer_b);
}

/* Whether LENGTH bytes from each side's offset are equal; -1 on error. */
static int same_bytes(struct diff *d, struct pair *p, uint64_t offset_a, uint64_t offset_b,
                      uint64_t length, const char *path)
{
    if (open_pair(d, p, DIFF_CHUNK_BYTES, DIFF_CHUNK_BYTES, path) != 0)
        return -1;
    for (uint64_t done = 0; done < length;) {
        size_t step = length - done < DIFF_CHUNK_BYTES ? (size_t)(length - done) : DIFF_CHUNK_BYTES;
        if (read_fully(d, p->source_a, p->buffer_a, step, offset_a + done, path) != 0 ||
            read_fully(d, p->source_b, p->buffer_b, step, offset_b + done, path) != 0)
            return -1;
        if (memcmp(p->buffer_a, p->buffer_b, step) != 0)
            return 0;
        done += step;
    }
    return 1;
}

static uint64_t element_count(const struct sk_npy_header *header)
{
    uint64_t count = 1;
    for (size_t k = 0; k < header->ndim; k++)
        count *= header->shape[k]; /* fits: sk_npy_parse checked it against the member */
    return count;
}

/* Same-shape numeric arrays: how many elements differ and by how much. */
static void compare_numbers(struct diff *d, struct pair *p, const struct sk_number_format *fa,
                            const struct sk_number_format *fb, const char *path)
{
    const struct sk_npy_header *ha = p->a->npy, *hb = p->b->npy;
    uint64_t count = element_count(ha), differing = 0;
    double largest = 0;
    if (open_pair(d, p, (size_t)DIFF_CHUNK_ELEMENTS * fa->size,
                  (size_t)DIFF_CHUNK_ELEMENTS * fb->size, path) != 0)
        return;
    for (uint64_t done = 0; done < count;) {
        size_t step =
            count - done < DIFF_CHUNK_ELEMENTS ? (size_t)(count - done) : DIFF_CHUNK_ELEMENTS;
        if (read_fully(d, p->source_a, p->buffer_a, step * fa->size,
                       ha->data_offset + done * fa->size, path) != 0 ||
            read_fully(d, p->source_b, p->buffer_b, step * fb->size,
                       hb->data_offset + done * fb->size, path) != 0)
            return;
        for (size_t k = 0; k < step; k++) {
            struct sk_number x, y;
            sk_number_decode(fa, p->buffer_a + k * fa->size, &x);
            sk_number_decode(fb, p->buffer_b + k * fb->size, &y);
            if (sk_number_equal(&x, &y))
                continue;
            differing++;
            double distance = sk_number_distance(&x, &y);
            if (isnan(distance) || distance > largest) /* a NaN on one side wins */
                largest = distance;
        }
        done += step;
    }
    if (differing == 0)
        return;
    char detail[160], digits[40];
    sk_double_text(largest, digits, sizeof digits);
    snprintf(detail, sizeof detail, "%llu of %llu elements differ, largest difference %s",
             (unsigned long long)differing, (unsigned long long)count, digits);
    json_t *extra = json_object();
    if (extra != NULL) {
        json_object_set_new(extra, "differing", json_integer((json_int_t)differing));
        json_object_set_new(extra, "elements", json_integer((json_int_t)count));
        json_object_set_new(extra, "largest_difference",
                            isnan(largest) ? json_string("nan") : json_real(largest));
    }
    report(d, path, "elements", NULL, NULL, detail, extra);
}

static void compare_arrays(struct diff *d, const struct sk_entry *a, const struct sk_entry *b,
                           const char *path)
{
    const struct sk_npy_header *ha = a->npy, *hb = b->npy;
    bool same_dtype = strcmp(ha->descr, hb->descr) == 0;
    if (!same_dtype)
        report(d, path, "dtype", ha->descr, hb->descr, NULL, NULL);
    char shape_a[SHAPE_TEXT_BYTES], shape_b[SHAPE_TEXT_BYTES];
    shape_text(ha, shape_a, sizeof shape_a);
    shape_text(hb, shape_b, sizeof shape_b);
    if (strcmp(shape_a, shape_b) != 0) {
        report(d, path, "shape", shape_a, shape_b, NULL, NULL);
        return;
    }
    if (ha->fortran_order != hb->fortran_order) {
        report(d, path, "order", ha->fortran_order ? "Fortran" : "C",
               hb->fortran_order ? "Fortran" : "C", NULL, NULL);
        return;
    }
    struct pair p = {.a = a, .b = b};
    struct sk_number_format fa, fb;
    if (sk_number_format_parse(ha->descr, &fa) && sk_number_format_parse(hb->descr, &fb)) {
        compare_numbers(d, &p, &fa, &fb, path);
    } else if (same_dtype) {
        uint64_t length_a = a->size - ha->data_offset, length_b = b->size - hb->data_offset;
        int same = length_a == length_b
                       ? same_bytes(d, &p, ha->data_offset, hb->data_offset, length_a, path)
                       : 0;
        if (same == 0)
            report(d, path, "bytes", NULL, NULL, "bytes differ", NULL);
    }
    close_pair(&p);
}

static void compare_files(struct diff *d, const struct sk_entry *a, const struct sk_entry *b,
                          const char *path)
{
    if (a->npy != NULL && b->npy != NULL) {
        compare_arrays(d, a, b, path);
        return;
    }
    if (a->text != NULL && b->text != NULL) {
        if (a->size == b->size && memcmp(a->text, b->text, (size_t)a->size) == 0)
            return;
        char *old_value = value_text(a), *new_value = value_text(b);
        report(d, path, "value", old_value ? old_value : "?", new_value ? new_value : "?", NULL,
               NULL);
        free(old_value);
        free(new_value);
        return;
    }
    struct pair p = {.a = a, .b = b};
    int same = a->size == b->size ? same_bytes(d, &p, 0, 0, a->size, path) : 0;
    close_pair(&p);
    if (same == 0)
        report(d, path, "bytes", NULL, NULL, "bytes differ", NULL);
}

static void compare_entries(struct diff *d, const struct sk_entry *a, const struct sk_entry *b,
                            const char *path);

/* Whether the walk skips ENTRY: .type files (the node's type is compared),
 * and the archive's own schema.json and untrusted list (compared as the
 * entries and types they describe). */
static bool skipped(const struct sk_entry *entry)
{
    if (entry->role == SK_ROLE_TYPEFILE)
        return true;
    return entry->role == SK_ROLE_META && entry->kind == SK_ENTRY_FILE &&
           (strcmp(entry->name, "schema.json") == 0 || strcmp(entry->name, "untrusted") == 0);
}

static void compare_children(struct diff *d, const struct sk_entry *a, const struct sk_entry *b,
                             const char *path)
{
    for (size_t i = 0; i < a->child_count && !d->failed; i++) {
        const struct sk_entry *child = a->children[i];
        if (skipped(child))
            continue;
        char *child_path;
        if (asprintf(&child_path, "%s%s%s", path, *path ? "/" : "", child->name) < 0) {
            d->failed = true;
            return;
        }
        const struct sk_entry *other = sk_entry_child(b, child->name);
        if (other == NULL)
            report(d, child_path, "removed", NULL, NULL, NULL, NULL);
        else
            compare_entries(d, child, other, child_path);
        free(child_path);
    }
    for (size_t i = 0; i < b->child_count && !d->failed; i++) {
        const struct sk_entry *child = b->children[i];
        if (skipped(child) || sk_entry_child(a, child->name) != NULL)
            continue;
        char *child_path;
        if (asprintf(&child_path, "%s%s%s", path, *path ? "/" : "", child->name) < 0) {
            d->failed = true;
            return;
        }
        report(d, child_path, "added", NULL, NULL, NULL, NULL);
        free(child_path);
    }
}

static const char *kind_word(const struct sk_entry *entry)
{
    return entry->kind == SK_ENTRY_DIR    ? "directory"
           : entry->kind == SK_ENTRY_FILE ? "file"
                                          : "link";
}

static void compare_entries(struct diff *d, const struct sk_entry *a, const struct sk_entry *b,
                            const char *path)
{
    const char *shown = *path ? path : "/";
    if (a->node != NULL && b->node != NULL && a->role == SK_ROLE_NODE && b->role == SK_ROLE_NODE &&
        strcmp(a->node->type_name, b->node->type_name) != 0)
        report(d, shown, "type", a->node->type_name, b->node->type_name, NULL, NULL);
    if (a->kind != b->kind) {
        report(d, shown, "kind", kind_word(a), kind_word(b), NULL, NULL);
        return;
    }
    if (a->kind == SK_ENTRY_SYMLINK) {
        if (strcmp(a->link_text, b->link_text) != 0)
            report(d, shown, "link", a->link_text, b->link_text, NULL, NULL);
        return;
    }
    if (!same_needs(a, b)) {
        char *old_value = needs_text(a), *new_value = needs_text(b);
        report(d, shown, "trust", old_value ? old_value : "?", new_value ? new_value : "?", NULL,
               NULL);
        free(old_value);
        free(new_value);
    }
    if (a->kind == SK_ENTRY_DIR)
        compare_children(d, a, b, path);
    else
        compare_files(d, a, b, shown);
}

/* Types untrusted in one model and trusted in (or absent from) the other. */
static void compare_untrusted(struct diff *d)
{
    const struct sk_layout *sides[2] = {d->a, d->b};
    for (int side = 0; side < 2; side++) {
        const struct sk_layout *self = sides[side], *other = sides[1 - side];
        for (size_t i = 0; i < self->untrusted_count; i++) {
            const char *type = self->untrusted[i];
            bool found = false;
            for (size_t k = 0; k < other->untrusted_count && !found; k++)
                found = strcmp(other->untrusted[k], type) == 0;
            if (found)
                continue;
            char detail[SK_MAX_TYPE_NAME_BYTES + 64];
            snprintf(detail, sizeof detail, "untrusted only in %s: %s", side ? "B" : "A", type);
            json_t *extra = json_object();
            if (extra != NULL)
                json_object_set_new(extra, "type", json_string(type));
            d->change_count++;
            if (d->json) {
                json_object_set_new(extra, "change",
                                    json_string(side ? "untrusted_added" : "untrusted_removed"));
                json_array_append_new(d->changes, extra);
            } else {
                json_decref(extra);
                printf("%c untrusted %s\n", side ? '+' : '-', type);
            }
        }
    }
}

static uint64_t array_bytes(const struct sk_model *model)
{
    uint64_t total = 0;
    for (size_t i = 0; i < model->schema->node_count; i++) {
        const struct sk_node *node = model->schema->nodes[i];
        if (!node->has_member)
            continue;
        struct sk_member_info info;
        sk_store_member_info(model->store, node->member, &info);
        total += info.size;
    }
    return total;
}

int cli_diff(struct cli_options *options, int count, char **operands)
{
    (void)count;
    struct sk_model *a = cli_open_model(operands[0], options, true, true);
    struct sk_model *b = a ? cli_open_model(operands[1], options, true, true) : NULL;
    if (b == NULL) {
        sk_model_close(a);
        return EXIT_UNREADABLE;
    }
    struct diff d = {.a = a->layout, .b = b->layout, .json = options->json};
    if (d.json && (d.changes = json_array()) == NULL)
        d.failed = true;
    progress_start(&d.progress, "diff: comparing", array_bytes(a) + array_bytes(b));
    if (!d.failed) {
        compare_entries(&d, a->layout->root, b->layout->root, "");
        compare_untrusted(&d);
    }
    progress_end(&d.progress);
    if (d.json && !d.failed) {
        json_dumpf(d.changes, stdout, JSON_INDENT(1) | JSON_ENSURE_ASCII);
        fputc('\n', stdout);
    }
    json_decref(d.changes);
    sk_model_close(a);
    sk_model_close(b);
    if (d.failed)
        return EXIT_UNREADABLE;
    return d.change_count > 0 ? EXIT_DIFFERENT : 0;
}
