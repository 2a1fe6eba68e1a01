#include "sparse.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "sk_limits.h"
#include "npy.h"
#include "zipdir.h"

/* Array elements are inflated and judged this many bytes at a time. */
#define ELEMENT_CHUNK_BYTES (64u * 1024)
/* format.npy holds a 3-character string: 12 bytes as UCS-4. */
#define MAX_FORMAT_BYTES 64u

static const char BAD_NPZ[] = "sparse.bad_npz";

/* ---- the inner zip ---- */

struct npz {
    const unsigned char *bytes;
    size_t length;
    int fd;
    struct sk_zip_directory dir;
};

/* One inner member's bytes, read in order from the start. */
struct stream {
    const unsigned char *in; /* stored bytes left */
    uint64_t in_left;
    uint64_t out_left; /* declared bytes not yet read */
    bool deflated;
    z_stream z;
};

static bool stream_open(const struct npz *n, const char *name, struct stream *s)
{
    memset(s, 0, sizeof *s);
    uint64_t index, data_offset;
    struct sk_error local = {0};
    if (sk_zipdir_find(&n->dir, name, strlen(name), &index) != 0)
        return false;
    const struct sk_zip_entry *e = &n->dir.entries[index];
    if ((e->flags & (SK_ZIP_FLAG_ENCRYPTED | SK_ZIP_FLAG_STRONG_ENCRYPTION)) ||
        (e->method != SK_ZIP_STORED && e->method != SK_ZIP_DEFLATED) ||
        sk_zipdir_local_header(n->fd, e, &data_offset, &local) != 0 || data_offset > n->length ||
        e->comp_size > n->length - data_offset)
        return false;
    if (e->method == SK_ZIP_STORED && e->comp_size != e->size)
        return false;
    /* The inner zip gets the outer one's bound on inflating work. */
    if (e->method == SK_ZIP_DEFLATED && e->size / SK_MAX_COMPRESSION_RATIO > e->comp_size)
        return false;
    s->in = n->bytes + data_offset;
    s->in_left = e->comp_size;
    s->out_left = e->size;
    s->deflated = e->method == SK_ZIP_DEFLATED;
    if (!s->deflated)
        return true;
    s->z.next_in = (unsigned char *)s->in; /* the npz is at most 256 MiB */
    s->z.avail_in = (uInt)s->in_left;
    if (inflateInit2(&s->z, -15) != Z_OK) {
        s->deflated = false;
        return false;
    }
    return true;
}

static void stream_close(struct stream *s)
{
    if (s->deflated)
        inflateEnd(&s->z);
    memset(s, 0, sizeof *s);
}

/* The next LENGTH bytes, all of them, or false. */
static bool stream_read(struct stream *s, void *buffer, size_t length)
{
    if (length > s->out_left)
        return false;
    s->out_left -= length;
    if (!s->deflated) {
        memcpy(buffer, s->in, length);
        s->in += length;
        s->in_left -= length;
        return true;
    }
    s->z.next_out = buffer;
    s->z.avail_out = (uInt)length;
    while (s->z.avail_out > 0) {
        int rc = inflate(&s->z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END && s->z.avail_out > 0)
            return false;
        if (rc != Z_OK && rc != Z_STREAM_END)
            return false;
    }
    return true;
}

/* ---- arrays ---- */

struct array {
    struct stream stream;
    struct sk_npy_header header;
    struct sk_npy_field field; /* the single element; its name is not kept */
    uint64_t count;            /* elements over every dimension */
};

static void array_close(struct array *a)
{
    stream_close(&a->stream);
    sk_npy_header_free(&a->header);
    memset(a, 0, sizeof *a);
}

/* Opens NAME and parses its header and plain dtype. */
static bool array_open(const struct npz *n, const char *name, struct array *a)
{
    memset(a, 0, sizeof *a);
    if (!stream_open(n, name, &a->stream))
        return false;
    uint64_t member_size = a->stream.out_left;
    struct sk_error local = {0};
    unsigned char preamble[SK_NPY_PREAMBLE_BYTES];
    uint64_t header_length = 0;
    unsigned char *header = NULL;
    struct sk_npy_fields fields = {0};
    bool ok = stream_read(&a->stream, preamble, sizeof preamble) &&
              sk_npy_header_length(preamble, sizeof preamble, &header_length, &local) == 0 &&
              header_length >= sizeof preamble && (header = malloc(header_length)) != NULL;
    if (ok) {
        memcpy(header, preamble, sizeof preamble);
        ok = stream_read(&a->stream, header + sizeof preamble, header_length - sizeof preamble) &&
             sk_npy_parse(header, header_length, member_size, &a->header, &local) == 0 &&
             !a->header.object_dtype && sk_npy_fields(a->header.descr, &fields, &local) == 0 &&
             fields.count == 1 && fields.fields[0].name[0] == '\0';
    }
    if (ok) {
        a->field = fields.fields[0];
        a->field.name = NULL;
        a->count = 1;
        for (size_t i = 0; i < a->header.ndim; i++)
            a->count *= a->header.shape[i]; /* sk_npy_parse checked it fits the member */
    }
    free(header);
    sk_npy_fields_free(&fields);
    if (!ok)
        array_close(a);
    return ok;
}

static bool is_int(const struct sk_npy_field *f)
{
    return (f->kind == 'i' || f->kind == 'u') &&
           (f->size == 1 || f->size == 2 || f->size == 4 || f->size == 8);
}

/* An integer element, any size and byte order. Unsigned values past
 * INT64_MAX read as INT64_MAX: out of every range checked here. */
static int64_t element_int(const struct sk_npy_field *f, const unsigned char *p)
{
    uint64_t value = 0;
    for (uint64_t i = 0; i < f->size; i++)
        value = value << 8 | p[f->big_endian ? i : f->size - 1 - i];
    if (f->kind == 'i' && f->size < 8 && (value >> (f->size * 8 - 1)) & 1)
        value |= ~0ull << (f->size * 8); /* sign-extend */
    if (f->kind == 'i')
        return (int64_t)value;
    return value > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)value;
}

/* Passes every element of the 1-D integer array A to VISIT, a chunk at a
 * time; false when the bytes cannot be read. */
static bool each_int(struct array *a, void (*visit)(void *context, int64_t value, uint64_t index),
                     void *context, unsigned char *buffer)
{
    uint64_t size = a->field.size, per_chunk = ELEMENT_CHUNK_BYTES / size;
    for (uint64_t first = 0; first < a->count; first += per_chunk) {
        uint64_t n = a->count - first < per_chunk ? a->count - first : per_chunk;
        if (!stream_read(&a->stream, buffer, n * size))
            return false;
        for (uint64_t i = 0; i < n; i++)
            visit(context, element_int(&a->field, buffer + i * size), first + i);
    }
    return true;
}

/* ---- the matrix ---- */

static void add(struct sk_sparse_findings *out, const char *code)
{
    for (size_t i = 0; i < out->count; i++)
        if (out->codes[i] == code)
            return;
    if (out->count < SK_SPARSE_MAX_FINDINGS)
        out->codes[out->count++] = code;
}

/* format.npy: a 0-d string, bytes (|S3, older scipy) or UCS-4 (<U3). */
static bool read_format(const struct npz *n, char *text, size_t capacity)
{
    struct array a;
    if (!array_open(n, "format.npy", &a))
        return false;
    unsigned char bytes[MAX_FORMAT_BYTES];
    uint64_t size = a.field.size, unit = a.field.kind == 'U' ? 4 : 1;
    bool ok = a.header.ndim == 0 && (a.field.kind == 'S' || a.field.kind == 'U') &&
              size <= sizeof bytes && size / unit < capacity && stream_read(&a.stream, bytes, size);
    size_t length = 0;
    for (uint64_t i = 0; ok && i < size / unit; i++) {
        uint32_t c = 0;
        for (uint64_t b = 0; b < unit; b++)
            c = c << 8 | bytes[i * unit + (a.field.big_endian ? b : unit - 1 - b)];
        if (c == 0)
            break; /* numpy pads short strings with NULs */
        ok = c < 128;
        text[length++] = (char)c;
    }
    text[length] = '\0';
    array_close(&a);
    return ok;
}

/* shape.npy: two non-negative integers. */
static bool read_shape(const struct npz *n, int64_t shape[2])
{
    struct array a;
    if (!array_open(n, "shape.npy", &a))
        return false;
    unsigned char bytes[16];
    bool ok = a.header.ndim == 1 && a.count == 2 && is_int(&a.field) &&
              stream_read(&a.stream, bytes, 2 * a.field.size);
    for (int i = 0; ok && i < 2; i++) {
        shape[i] = element_int(&a.field, bytes + i * a.field.size);
        ok = shape[i] >= 0;
    }
    array_close(&a);
    return ok;
}

struct indptr_walk {
    struct sk_sparse_findings *out;
    int64_t previous, last;
};

static void indptr_element(void *context, int64_t value, uint64_t index)
{
    struct indptr_walk *walk = context;
    if (index == 0 && value != 0)
        add(walk->out, "sparse.indptr_start");
    if (index > 0 && value < walk->previous)
        add(walk->out, "sparse.indptr_decreasing");
    walk->previous = walk->last = value;
}

struct indices_walk {
    struct sk_sparse_findings *out;
    int64_t minor; /* columns (CSR) or rows (CSC) */
};

static void index_element(void *context, int64_t value, uint64_t index)
{
    (void)index;
    struct indices_walk *walk = context;
    if (value < 0 || value >= walk->minor)
        add(walk->out, "sparse.index_out_of_range");
}

/* The two index arrays of a CSR (CSC) matrix of MAJOR rows (columns). */
static void check_compressed(const struct npz *n, int64_t major, int64_t minor,
                             struct sk_sparse_findings *out, unsigned char *buffer)
{
    struct array indptr, indices;
    bool have_indptr = array_open(n, "indptr.npy", &indptr);
    bool have_indices = array_open(n, "indices.npy", &indices);
    if (!have_indptr || !have_indices || indptr.header.ndim != 1 || indices.header.ndim != 1 ||
        !is_int(&indptr.field) || !is_int(&indices.field)) {
        add(out, BAD_NPZ);
    } else {
        if (indptr.count != (uint64_t)major + 1)
            add(out, "sparse.indptr_length");
        struct indptr_walk pointers = {.out = out};
        struct indices_walk positions = {.out = out, .minor = minor};
        if (!each_int(&indptr, indptr_element, &pointers, buffer) ||
            !each_int(&indices, index_element, &positions, buffer))
            add(out, BAD_NPZ);
        else if (indptr.count > 0 &&
                 (pointers.last < 0 || (uint64_t)pointers.last != indices.count))
            add(out, "sparse.indptr_end");
    }
    if (have_indptr)
        array_close(&indptr);
    if (have_indices)
        array_close(&indices);
}

static void check_npz(const struct npz *n, struct sk_sparse_findings *out, unsigned char *buffer)
{
    char format[8];
    int64_t shape[2];
    if (!read_format(n, format, sizeof format) || !read_shape(n, shape)) {
        add(out, BAD_NPZ);
        return;
    }
    /* Only CSR and CSC matrices hold index pointers; the others are skipped. */
    if (strcmp(format, "csr") == 0)
        check_compressed(n, shape[0], shape[1], out, buffer);
    else if (strcmp(format, "csc") == 0)
        check_compressed(n, shape[1], shape[0], out, buffer);
}

/* Puts the npz bytes in a memfd so the archive's own zip reader reads them. */
int sk_sparse_check_npz(const unsigned char *bytes, size_t length, struct sk_sparse_findings *out,
                        struct sk_error *err)
{
    memset(out, 0, sizeof *out);
    if (length > SK_MAX_CHECKED_NPZ_BYTES) {
        add(out, "sparse.too_large");
        return 0;
    }
    struct npz n = {.bytes = bytes, .length = length};
    n.fd = memfd_create("skopsfs-npz", MFD_CLOEXEC);
    if (n.fd < 0)
        return sk_fail(err, "cannot create a memfd to read a sparse matrix");
    size_t written = 0;
    while (written < length) {
        ssize_t got = write(n.fd, bytes + written, length - written);
        if (got <= 0) {
            close(n.fd);
            return sk_fail(err, "cannot write a sparse matrix to a memfd");
        }
        written += (size_t)got;
    }
    unsigned char *buffer = malloc(ELEMENT_CHUNK_BYTES);
    if (buffer == NULL) {
        close(n.fd);
        return sk_fail(err, "out of memory");
    }
    struct sk_error local = {0};
    if (sk_zipdir_read(n.fd, length, &n.dir, &local) != 0) {
        add(out, BAD_NPZ);
    } else {
        check_npz(&n, out, buffer);
        sk_zipdir_free(&n.dir);
    }
    free(buffer);
    close(n.fd);
    return 0;
}

int sk_sparse_check(struct sk_store *store, uint64_t member, struct sk_sparse_findings *out,
                    struct sk_error *err)
{
    memset(out, 0, sizeof *out);
    struct sk_member_info info;
    sk_store_member_info(store, member, &info);
    if (info.size > SK_MAX_CHECKED_NPZ_BYTES) {
        add(out, "sparse.too_large");
        return 0;
    }
    char *data = NULL;
    size_t length = 0;
    struct sk_error local = {0};
    if (sk_store_read_member(store, member, SK_MAX_CHECKED_NPZ_BYTES, &data, &length, &local) !=
        0) {
        add(out, "content.array_unreadable");
        return 0;
    }
    int rc = sk_sparse_check_npz((const unsigned char *)data, length, out, err);
    sk_store_free_member(data, length);
    return rc;
}
