#include "pickle_store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "npyheader.h"
#include "sk_limits.h"
#include "pickle.h"
#include "pickle_input.h"
#include "pickle_source.h"
#include "strmap.h"
#include "zipwrite.h"

/* One member as served: its header (arrays), its size, and for a sparse
 * matrix the .npz made once in a memfd. */
struct served {
    char *header;
    size_t header_length;
    uint64_t data_length;
    unsigned swap_unit;
    int npz_fd; /* -1 unless an .npz */
    uint64_t npz_size;
};

struct sk_pickle_file {
    struct sk_store base; /* first: the store is the file */
    char *path;
    struct sk_pickle_input *input;
    struct sk_pickle machine;
    bool machine_ran;
    struct sk_pickle_map map;
    struct served *served; /* by member */
    struct sk_strmap *by_name;
    /* .skops/schema.json of a mount: the mapped state as JSON, made when
     * the layout first asks for it (an audit never does). */
    bool schema_made;
    unsigned long long max_schema_text;
    char *schema_text;
    size_t schema_length;
    struct sk_error schema_error;
};

/* Past the members: the schema text's index. */
static uint64_t schema_index(const struct sk_pickle_file *f)
{
    return f->map.member_count;
}

struct capped_text {
    char *bytes;
    size_t length, capacity;
    unsigned long long max_length;
};

static int append_capped(const char *buffer, size_t size, void *data)
{
    struct capped_text *t = data;
    if (size > t->max_length - t->length)
        return -1;
    if (t->length + size + 1 > t->capacity) {
        size_t capacity = t->capacity ? t->capacity : 65536;
        while (capacity < t->length + size + 1)
            capacity *= 2;
        char *grown = realloc(t->bytes, capacity);
        if (grown == NULL)
            return -1;
        t->bytes = grown;
        t->capacity = capacity;
    }
    memcpy(t->bytes + t->length, buffer, size);
    t->length += size;
    t->bytes[t->length] = '\0';
    return 0;
}

/* A shared object is written out in full at each reference, as skops does:
 * a hostile pickle sharing one list 64 levels deep would never end, so the
 * text has a limit; past it the file cannot be read (E2BIG). */
static void make_schema_text(struct sk_pickle_file *f)
{
    f->schema_made = true;
    struct capped_text t = {.max_length = f->max_schema_text};
    if (json_dump_callback(f->map.schema, append_capped, &t,
                           JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 ||
        append_capped("\n", 1, &t) != 0) {
        free(t.bytes);
        sk_fail_code(&f->schema_error, E2BIG,
                     "schema.json of this pickle would pass %llu bytes (shared objects are "
                     "written out in full; the max_pickle_schema_mb limit, "
                     "SK_MAX_PICKLE_SCHEMA_TEXT; raise it with -o max_pickle_schema_mb=N or "
                     "--max-pickle-schema-mb N)",
                     f->max_schema_text);
        return;
    }
    f->schema_text = t.bytes;
    f->schema_length = t.length;
}

static struct sk_pickle_file *file_of(const struct sk_store *store)
{
    return (struct sk_pickle_file *)store;
}

/* Bytes a latin-1 text decodes to: one per code point (checked whole when
 * its source is opened). */
static uint64_t code_points(const unsigned char *text, uint64_t length)
{
    uint64_t count = 0;
    for (uint64_t i = 0; i < length; i++)
        count += (text[i] & 0xC0) != 0x80;
    return count;
}

/* Bytes of a member's data, as the pickle declares them. */
static int data_length(const struct sk_pickle_file *f, const struct sk_pickle_member *m,
                       uint64_t *length, struct sk_error *err)
{
    switch (m->kind) {
    case SK_PICKLE_MEMBER_RANGE:
        *length = m->length;
        break;
    case SK_PICKLE_MEMBER_LATIN1_RANGE:
        if (m->offset > f->input->size || m->length > f->input->size - m->offset)
            return sk_fail(err, "member %s lies past the end of the stream", m->name);
        *length = code_points(f->input->bytes + m->offset, m->length);
        break;
    case SK_PICKLE_MEMBER_BYTES:
        *length = m->bytes_length;
        break;
    default:
        return sk_fail(err, "member %s: unknown kind", m->name);
    }
    return 0;
}

/* numpy makes a non-native array native item by item; a complex item is two
 * floats. Structured records would need each field swapped: refused. */
static int swap_unit_of(const struct sk_pickle_member *m, unsigned *unit, struct sk_error *err)
{
    *unit = 0;
    if (!m->byteswap || m->item_size <= 1)
        return 0;
    if (m->descr == NULL || m->descr[0] == '[')
        return sk_fail(err, "member %s: a non-native structured array cannot be made native",
                       m->name);
    unsigned size = m->item_size;
    if (strchr(m->descr, 'c') != NULL)
        size /= 2;
    if (size != 2 && size != 4 && size != 8 && size != 16)
        return sk_fail(err, "member %s: items of %u bytes cannot be made native", m->name, size);
    *unit = size;
    return 0;
}

static int open_part(struct sk_pickle_file *f, const struct sk_pickle_member *m,
                     const struct served *s, struct sk_source **out, struct sk_error *err)
{
    switch (m->kind) {
    case SK_PICKLE_MEMBER_RANGE:
        if (m->offset > f->input->size || m->length > f->input->size - m->offset)
            return sk_fail_code(err, EIO, "member %s lies past the end of the stream", m->name);
        return sk_pickle_source_range(s->header, s->header_length, f->input->fd,
                                      f->input->fd_offset + m->offset, m->length, s->swap_unit, out,
                                      err);
    case SK_PICKLE_MEMBER_LATIN1_RANGE:
        if (m->offset > f->input->size || m->length > f->input->size - m->offset)
            return sk_fail_code(err, EIO, "member %s lies past the end of the stream", m->name);
        return sk_pickle_source_latin1_file(s->header, s->header_length, f->input->fd,
                                            f->input->fd_offset + m->offset, m->length,
                                            s->data_length, s->swap_unit, out, err);
    default:
        return sk_pickle_source_bytes(s->header, s->header_length, m->bytes, m->bytes_length, out,
                                      err);
    }
}

static int prepare_member(struct sk_pickle_file *f, const struct sk_pickle_member *m,
                          struct served *s, struct sk_error *err);

/* A sparse matrix: its parts written once as a stored zip in a memfd. */
static int prepare_npz(struct sk_pickle_file *f, const struct sk_pickle_member *m, struct served *s,
                       struct sk_error *err)
{
    struct served *parts = calloc(m->part_count, sizeof *parts);
    struct sk_source_named *named = calloc(m->part_count, sizeof *named);
    int rc = parts && named ? 0 : sk_fail(err, "out of memory");
    for (unsigned i = 0; rc == 0 && i < m->part_count; i++) {
        parts[i].npz_fd = -1;
        rc = prepare_member(f, &m->parts[i], &parts[i], err);
        if (rc == 0)
            rc = open_part(f, &m->parts[i], &parts[i], &named[i].source, err);
        named[i].name = m->parts[i].name;
    }
    if (rc == 0) {
        s->npz_fd = memfd_create("skopsfs-npz", MFD_CLOEXEC);
        if (s->npz_fd < 0)
            rc = sk_fail_code(err, errno, "memfd_create: %s", strerror(errno));
    }
    if (rc == 0)
        rc = sk_zip_write_members(s->npz_fd, named, m->part_count, err);
    if (rc == 0) {
        off_t end = lseek(s->npz_fd, 0, SEEK_END);
        rc = end < 0 ? sk_fail(err, "memfd: %s", strerror(errno)) : 0;
        s->npz_size = (uint64_t)end;
    }
    for (unsigned i = 0; parts && named && i < m->part_count; i++) {
        if (named[i].source != NULL)
            sk_source_close(named[i].source);
        free(parts[i].header);
    }
    free(parts);
    free(named);
    return rc;
}

/* The mapper gives a simple dtype as its typestr ("<f8") and a structured
 * one as the list Python's repr writes; the header holds the repr of both. */
static int npy_header(const struct sk_pickle_member *m, struct served *s, struct sk_error *err)
{
    char *descr;
    int length =
        m->descr[0] == '[' ? asprintf(&descr, "%s", m->descr) : asprintf(&descr, "'%s'", m->descr);
    if (length < 0)
        return sk_fail_code(err, ENOMEM, "out of memory");
    int rc = sk_npy_header_from_descr(descr, (size_t)length, m->fortran_order, m->shape, m->ndim,
                                      &s->header, &s->header_length, err);
    free(descr);
    return rc;
}

static int prepare_member(struct sk_pickle_file *f, const struct sk_pickle_member *m,
                          struct served *s, struct sk_error *err)
{
    if (m->part_count > 0)
        return prepare_npz(f, m, s, err);
    if (m->is_npy && m->descr != NULL && npy_header(m, s, err) != 0)
        return -1;
    if (data_length(f, m, &s->data_length, err) != 0)
        return -1;
    return swap_unit_of(m, &s->swap_unit, err);
}

static uint64_t member_count(const struct sk_store *store)
{
    return file_of(store)->map.member_count + 1;
}

static int find(const struct sk_store *store, const char *name, uint64_t *index)
{
    if (strcmp(name, "schema.json") == 0) {
        /* made on first use, while the layout is built by one thread */
        struct sk_pickle_file *f = file_of(store);
        if (!f->schema_made)
            make_schema_text(f);
        *index = schema_index(f);
        return 0;
    }
    struct served *s = sk_strmap_get(file_of(store)->by_name, name, strlen(name));
    if (s == NULL)
        return -1;
    *index = (uint64_t)(s - file_of(store)->served);
    return 0;
}

static uint64_t served_size(const struct served *s)
{
    return s->npz_fd >= 0 ? s->npz_size : s->header_length + s->data_length;
}

static void member_info(const struct sk_store *store, uint64_t index, struct sk_member_info *info)
{
    const struct sk_pickle_file *f = file_of(store);
    if (index == schema_index(f)) {
        *info = (struct sk_member_info){
            .name = "schema.json", .size = f->schema_length, .comp_size = f->schema_length};
        return;
    }
    uint64_t size = served_size(&f->served[index]);
    *info = (struct sk_member_info){
        .name = f->map.members[index].name, .size = size, .comp_size = size};
}

static int open_member(struct sk_store *store, uint64_t index, bool verified,
                       struct sk_source **out, struct sk_error *err)
{
    (void)verified; /* nothing to check beyond what opening a part checks */
    struct sk_pickle_file *f = file_of(store);
    if (index == schema_index(f)) {
        if (!f->schema_made)
            make_schema_text(f);
        if (f->schema_text == NULL) {
            *err = f->schema_error;
            return -1;
        }
        return sk_source_memory(f->schema_text, f->schema_length, false, out, err);
    }
    const struct served *s = &f->served[index];
    if (s->npz_fd >= 0)
        return sk_source_file_range(NULL, 0, s->npz_fd, 0, s->npz_size, out, err);
    return open_part(f, &f->map.members[index], s, out, err);
}

static int check_unchanged(const struct sk_store *store, struct sk_error *err)
{
    return sk_pickle_input_check_unchanged(file_of(store)->input, err);
}

static struct timespec mtime(const struct sk_store *store)
{
    return file_of(store)->input->file_stat.st_mtim;
}

static uint64_t file_size(const struct sk_store *store)
{
    return (uint64_t)file_of(store)->input->file_stat.st_size;
}

static void close_file(struct sk_store *store)
{
    struct sk_pickle_file *f = file_of(store);
    for (size_t i = 0; f->served != NULL && i < f->map.member_count; i++) {
        free(f->served[i].header);
        if (f->served[i].npz_fd >= 0)
            close(f->served[i].npz_fd);
    }
    free(f->served);
    free(f->schema_text);
    sk_strmap_free(f->by_name);
    sk_pickle_map_free(&f->map);
    if (f->machine_ran)
        sk_pickle_free(&f->machine);
    sk_pickle_input_close(f->input);
    free(f->path);
    free(f);
}

static const struct sk_store_ops pickle_store_ops = {
    .member_count = member_count,
    .find = find,
    .member_info = member_info,
    .open = open_member,
    .check_unchanged = check_unchanged,
    .mtime = mtime,
    .file_size = file_size,
    .close = close_file,
};

static int index_members(struct sk_pickle_file *f, struct sk_error *err)
{
    f->served = calloc(f->map.member_count ? f->map.member_count : 1, sizeof *f->served);
    f->by_name = sk_strmap_new();
    if (f->served == NULL || f->by_name == NULL)
        return sk_fail_code(err, ENOMEM, "out of memory");
    for (size_t i = 0; i < f->map.member_count; i++)
        f->served[i].npz_fd = -1;
    for (size_t i = 0; i < f->map.member_count; i++) {
        const struct sk_pickle_member *m = &f->map.members[i];
        if (prepare_member(f, m, &f->served[i], err) != 0)
            return -1;
        if (sk_strmap_put(f->by_name, m->name, strlen(m->name), &f->served[i]) != 0)
            return sk_fail_code(err, ENOMEM, "out of memory");
    }
    return 0;
}

/* A user's limit, or the default where it is zero. */
static unsigned long long or_default(unsigned long long given, unsigned long long fallback)
{
    return given != 0 ? given : fallback;
}

/* The machine counts values and memo entries in 32 bits (its memo table
 * holds twice the entries): a larger limit could not be kept. */
#define MAX_RAISED_COUNT (1ull << 30)

static int machine_limits(const struct sk_limits *given, struct sk_pickle_limits *limits,
                          struct sk_error *err)
{
    static const struct sk_limits defaults = {0};
    if (given == NULL)
        given = &defaults;
    if (given->pickle_memo > MAX_RAISED_COUNT || given->pickle_values > MAX_RAISED_COUNT)
        return sk_fail(err, "max_pickle_memo and max_pickle_values can be at most %llu",
                       MAX_RAISED_COUNT);
    *limits = (struct sk_pickle_limits){
        .opcodes = or_default(given->pickle_opcodes, SK_PICKLE_MAX_OPCODES),
        .memo = or_default(given->pickle_memo, SK_PICKLE_MAX_MEMO),
        .values = or_default(given->pickle_values, SK_PICKLE_MAX_VALUES),
        .arena_bytes = or_default(given->pickle_arena_bytes, SK_PICKLE_MAX_ARENA_BYTES),
    };
    return 0;
}

int sk_pickle_file_open(const char *path, const struct sk_pickle_file_options *options,
                        struct sk_pickle_file **out, struct sk_error *err)
{
    *out = NULL;
    struct sk_pickle_file *f = calloc(1, sizeof *f);
    if (f == NULL || (f->path = strdup(path)) == NULL) {
        free(f);
        return sk_fail_code(err, ENOMEM, "%s: out of memory", path);
    }
    f->base.ops = &pickle_store_ops;
    const struct sk_limits *limits = options != NULL ? options->limits : NULL;
    struct sk_pickle_limits machine;
    struct sk_pickle_input_options input = {.max_bytes = limits ? limits->pickle_bytes : 0};
    f->max_schema_text =
        or_default(limits ? limits->pickle_schema_bytes : 0, SK_MAX_PICKLE_SCHEMA_TEXT);
    int rc = machine_limits(limits, &machine, err);
    if (rc == 0)
        rc = sk_pickle_input_open(path, &input, &f->input, err);
    if (rc == 0) {
        struct sk_pickle_options run = {.joblib = true, .limits = &machine};
        rc = sk_pickle_run(f->input->bytes, f->input->size, &run, &f->machine, err);
        f->machine_ran = true;
    }
    struct sk_pickle_map_options map_options = {.skops_copies = options && options->skops_copies};
    if (rc == 0)
        rc = sk_pickle_map(&f->machine, &map_options, &f->map, err);
    if (rc == 0 && f->map.schema == NULL)
        rc = sk_fail(err, "nothing in the pickle maps to a skops node");
    if (rc == 0)
        rc = index_members(f, err);
    /* Served from here on by pread only: a plain pickle cut short under a
     * mount then fails a read (EIO) instead of faulting the daemon. */
    if (rc == 0)
        sk_pickle_input_unmap(f->input);
    if (rc != 0) {
        if (f->input != NULL)
            sk_error_prefix(err, "%s: ", path);
        close_file(&f->base);
        return -1;
    }
    *out = f;
    return 0;
}

struct sk_store *sk_pickle_file_store(struct sk_pickle_file *file)
{
    return &file->base;
}

struct sk_pickle_file *sk_pickle_file_of(struct sk_store *store)
{
    return store != NULL && store->ops == &pickle_store_ops ? file_of(store) : NULL;
}

const struct sk_pickle_map *sk_pickle_file_map(const struct sk_pickle_file *file)
{
    return &file->map;
}
