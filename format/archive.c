#include "archive.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>
#include <zlib.h>

#include "limits.h"
#include "pages.h"

/* Spacing of DEFLATE seek points in uncompressed bytes. Each costs a 32 KiB
 * window; 1 MiB spacing keeps a 1 GiB member's index at 32 MiB and bounds a
 * random read to inflating 1 MiB. */
#define SK_INFLATE_SPACING (1u << 20)
#define SK_INFLATE_WINDOW 32768u
#define SK_INFLATE_INPUT_CHUNK 65536u
#define SK_DATA_OFFSET_UNKNOWN (-1)
#define SK_READER_CURSORS 4

struct seek_point {
    uint64_t out; /* uncompressed offset */
    uint64_t in;  /* compressed offset of the first byte not yet consumed */
    int bits;     /* bits of the byte before IN still to be consumed */
    unsigned char window[SK_INFLATE_WINDOW];
};

struct member {
    char *name;
    uint64_t size;
    uint64_t comp_size;
    uint16_t method;
    bool encrypted;
    int64_t data_offset; /* SK_DATA_OFFSET_UNKNOWN until probed */
    /* Seek points of a DEFLATE member, shared by all its readers. */
    pthread_mutex_t points_lock;
    struct seek_point **points;
    size_t point_count;
    size_t point_capacity;
};

/* libzip reads the archive through this source so that we learn where each
 * member's data starts (libzip keeps that to itself): once libzip has opened
 * a member, its first read for the member's bytes is at the data's start. */
struct fd_source {
    int fd;
    uint64_t size;
    uint64_t position;
    zip_error_t error;
    bool watching_data;
    bool data_seen;
    uint64_t data_offset;
};

struct sk_archive {
    char *path;
    zip_t *zip;
    struct fd_source *source;
    int fd;
    struct stat file_stat;
    uint64_t member_count;
    struct member *members;
    pthread_mutex_t zip_lock; /* libzip is not thread-safe */
};

/* One position in a DEFLATE stream. */
struct cursor {
    z_stream stream;
    bool stream_ready;
    uint64_t out_position; /* uncompressed bytes produced so far */
    uint64_t in_position;  /* compressed bytes fed so far */
    unsigned char *input;
    unsigned char *window; /* circular: byte k of output is window[k % size] */
    bool finished;
    uint64_t last_used;
};

struct sk_reader {
    struct sk_archive *archive;
    struct member *member;
    /* Several cursors, so that reads arriving slightly out of order (the
     * kernel's readahead, several threads) each continue one. */
    struct cursor cursors[SK_READER_CURSORS];
    uint64_t clock;
};

static zip_int64_t fd_source_callback(void *userdata, void *data, zip_uint64_t length,
                                      zip_source_cmd_t command)
{
    struct fd_source *source = userdata;
    switch (command) {
    case ZIP_SOURCE_OPEN:
        source->position = 0;
        return 0;
    case ZIP_SOURCE_READ: {
        if (source->position >= source->size)
            return 0;
        uint64_t available = source->size - source->position;
        size_t want = length < available ? (size_t)length : (size_t)available;
        ssize_t got = pread(source->fd, data, want, (off_t)source->position);
        if (got < 0) {
            zip_error_set(&source->error, ZIP_ER_READ, errno);
            return -1;
        }
        if (source->watching_data && !source->data_seen) {
            source->data_seen = true;
            source->data_offset = source->position;
        }
        source->position += (uint64_t)got;
        return got;
    }
    case ZIP_SOURCE_CLOSE:
        return 0;
    case ZIP_SOURCE_STAT: {
        zip_stat_t *st = data;
        zip_stat_init(st);
        st->size = source->size;
        st->valid |= ZIP_STAT_SIZE;
        return sizeof *st;
    }
    case ZIP_SOURCE_ERROR:
        return zip_error_to_data(&source->error, data, length);
    case ZIP_SOURCE_FREE:
        return 0; /* owned by the archive */
    case ZIP_SOURCE_SEEK: {
        zip_int64_t target = zip_source_seek_compute_offset(source->position, source->size, data,
                                                            length, &source->error);
        if (target < 0)
            return -1;
        source->position = (uint64_t)target;
        return 0;
    }
    case ZIP_SOURCE_TELL:
        return (zip_int64_t)source->position;
    case ZIP_SOURCE_SUPPORTS:
        return ZIP_SOURCE_SUPPORTS_SEEKABLE;
    default:
        zip_error_set(&source->error, ZIP_ER_OPNOTSUPP, 0);
        return -1;
    }
}

static const char *zip_error_text(int code)
{
    switch (code) {
    case ZIP_ER_NOZIP:
        return "not a zip archive (no end of central directory: not a zip, or truncated)";
    case ZIP_ER_EXISTS:
        return "two members have the same name: which one is meant is ambiguous";
    case ZIP_ER_INCONS:
        return "zip archive is inconsistent (corrupt or truncated)";
    case ZIP_ER_MEMORY:
        return "out of memory";
    case ZIP_ER_READ:
        return "read error";
    default:
        return NULL;
    }
}

static void free_members(struct sk_archive *archive)
{
    for (uint64_t i = 0; i < archive->member_count; i++) {
        struct member *m = &archive->members[i];
        free(m->name);
        for (size_t p = 0; p < m->point_count; p++)
            free(m->points[p]);
        free(m->points);
        pthread_mutex_destroy(&m->points_lock);
    }
    free(archive->members);
}

void sk_archive_close(struct sk_archive *archive)
{
    if (archive == NULL)
        return;
    if (archive->zip != NULL)
        zip_discard(archive->zip);
    if (archive->members != NULL)
        free_members(archive);
    if (archive->source != NULL) {
        zip_error_fini(&archive->source->error);
        free(archive->source);
    }
    if (archive->fd >= 0)
        close(archive->fd);
    pthread_mutex_destroy(&archive->zip_lock);
    free(archive->path);
    free(archive);
}

static int load_members(struct sk_archive *archive, struct sk_error *err)
{
    zip_int64_t count = zip_get_num_entries(archive->zip, 0);
    if (count < 0)
        return sk_fail(err, "cannot list the archive's members");
    if ((uint64_t)count > SK_MAX_MEMBERS)
        return sk_fail(err, "archive has %lld members, more than the limit of %u (SK_MAX_MEMBERS)",
                       (long long)count, SK_MAX_MEMBERS);
    archive->members = calloc((size_t)count ? (size_t)count : 1, sizeof *archive->members);
    if (archive->members == NULL)
        return sk_fail(err, "out of memory");
    for (zip_int64_t i = 0; i < count; i++) {
        struct member *m = &archive->members[i];
        pthread_mutex_init(&m->points_lock, NULL);
        archive->member_count = (uint64_t)i + 1;
        zip_stat_t st;
        if (zip_stat_index(archive->zip, (zip_uint64_t)i, ZIP_FL_ENC_RAW, &st) != 0)
            return sk_fail(err, "cannot read the directory entry of member %lld", (long long)i);
        const zip_uint64_t needed =
            ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
        if ((st.valid & needed) != needed)
            return sk_fail(err, "member %lld has an incomplete directory entry", (long long)i);
        m->name = strdup(st.name);
        if (m->name == NULL)
            return sk_fail(err, "out of memory");
        zip_int64_t first = zip_name_locate(archive->zip, m->name, ZIP_FL_ENC_RAW);
        if (first >= 0 && first != i)
            return sk_fail(err, "two members are named '%s': which one is meant is ambiguous",
                           m->name);
        m->size = st.size;
        m->comp_size = st.comp_size;
        m->method = st.comp_method;
        m->encrypted = (st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != 0;
        m->data_offset = SK_DATA_OFFSET_UNKNOWN;
    }
    return 0;
}

int sk_archive_open(const char *path, struct sk_archive **out, struct sk_error *err)
{
    *out = NULL;
    struct sk_archive *archive = calloc(1, sizeof *archive);
    if (archive == NULL)
        return sk_fail(err, "%s: out of memory", path);
    archive->fd = -1;
    pthread_mutex_init(&archive->zip_lock, NULL);
    archive->path = strdup(path);
    archive->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (archive->fd < 0) {
        sk_fail(err, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (fstat(archive->fd, &archive->file_stat) != 0) {
        sk_fail(err, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(archive->file_stat.st_mode)) {
        sk_fail(err, "%s: not a regular file", path);
        goto fail;
    }
    archive->source = calloc(1, sizeof *archive->source);
    if (archive->path == NULL || archive->source == NULL) {
        sk_fail(err, "%s: out of memory", path);
        goto fail;
    }
    archive->source->fd = archive->fd;
    archive->source->size = (uint64_t)archive->file_stat.st_size;
    zip_error_init(&archive->source->error);

    zip_error_t zerr;
    zip_error_init(&zerr);
    zip_source_t *src = zip_source_function_create(fd_source_callback, archive->source, &zerr);
    if (src == NULL) {
        sk_fail(err, "%s: %s", path, zip_error_strerror(&zerr));
        zip_error_fini(&zerr);
        goto fail;
    }
    /* Without ZIP_CHECKCONS: it reads every local header at open, which
     * costs a forest's audit a tenth of its time. A member's local header
     * is read, and its data bounded, when the member is opened; duplicate
     * names are refused below. */
    archive->zip = zip_open_from_source(src, ZIP_RDONLY, &zerr);
    if (archive->zip == NULL) {
        const char *text = zip_error_text(zip_error_code_zip(&zerr));
        sk_fail(err, "%s: %s", path, text ? text : zip_error_strerror(&zerr));
        zip_error_fini(&zerr);
        zip_source_free(src);
        goto fail;
    }
    zip_error_fini(&zerr);
    if (load_members(archive, err) != 0) {
        sk_error_prefix(err, "%s: ", path);
        goto fail;
    }
    *out = archive;
    return 0;
fail:
    sk_archive_close(archive);
    return -1;
}

struct timespec sk_archive_mtime(const struct sk_archive *archive)
{
    return archive->file_stat.st_mtim;
}

uint64_t sk_archive_file_size(const struct sk_archive *archive)
{
    return (uint64_t)archive->file_stat.st_size;
}

uint64_t sk_archive_member_count(const struct sk_archive *archive)
{
    return archive->member_count;
}

int sk_archive_find(const struct sk_archive *archive, const char *name, uint64_t *index)
{
    /* ZIP_FL_ENC_RAW: compare the stored bytes, as Python's zipfile does for
     * names written by Python. */
    zip_int64_t found = zip_name_locate(archive->zip, name, ZIP_FL_ENC_RAW);
    if (found < 0)
        return -1;
    *index = (uint64_t)found;
    return 0;
}

void sk_archive_member_info(const struct sk_archive *archive, uint64_t index,
                            struct sk_member_info *info)
{
    const struct member *m = &archive->members[index];
    info->name = m->name;
    info->size = m->size;
    info->comp_size = m->comp_size;
    info->compressed = m->method != ZIP_CM_STORE;
}

/* Learns where the member's data starts by letting libzip open it. */
static int probe_data_offset(struct sk_archive *archive, uint64_t index, struct sk_error *err)
{
    struct member *m = &archive->members[index];
    int result = 0;
    pthread_mutex_lock(&archive->zip_lock);
    if (m->data_offset != SK_DATA_OFFSET_UNKNOWN)
        goto done;
    zip_file_t *file = zip_fopen_index(archive->zip, index, 0);
    if (file == NULL) {
        zip_error_t *zerr = zip_get_error(archive->zip);
        result = sk_fail(err, "member '%s': %s", m->name, zip_error_strerror(zerr));
        zip_error_clear(archive->zip);
        goto done;
    }
    if (m->comp_size == 0) {
        zip_fclose(file);
        m->data_offset = 0;
        goto done;
    }
    archive->source->watching_data = true;
    archive->source->data_seen = false;
    unsigned char first;
    zip_int64_t got = zip_fread(file, &first, 1);
    archive->source->watching_data = false;
    zip_fclose(file);
    if (got < 0 && m->method == ZIP_CM_STORE) {
        result = sk_fail(err, "member '%s': unreadable data", m->name);
        goto done;
    }
    if (!archive->source->data_seen) {
        result = sk_fail(err, "member '%s': cannot locate its data", m->name);
        goto done;
    }
    uint64_t offset = archive->source->data_offset;
    uint64_t file_size = (uint64_t)archive->file_stat.st_size;
    if (offset > file_size || m->comp_size > file_size - offset) {
        result = sk_fail(err, "member '%s': data runs past the end of the archive", m->name);
        goto done;
    }
    m->data_offset = (int64_t)offset;
done:
    pthread_mutex_unlock(&archive->zip_lock);
    return result;
}

int sk_archive_check_member(const struct sk_archive *archive, uint64_t index, struct sk_error *err)
{
    struct member *m = &archive->members[index];
    if (m->encrypted)
        return sk_fail(err, "member '%s' is encrypted; skopsfs does not decrypt", m->name);
    if (m->method != ZIP_CM_STORE && m->method != ZIP_CM_DEFLATE)
        return sk_fail(
            err, "member '%s' uses compression method %u; only stored and DEFLATE are supported",
            m->name, m->method);
    if (m->size > SK_MAX_MEMBER_BYTES)
        return sk_fail(err,
                       "member '%s' declares %llu bytes, more than the limit (SK_MAX_MEMBER_BYTES)",
                       m->name, (unsigned long long)m->size);
    if (m->comp_size > (uint64_t)archive->file_stat.st_size)
        return sk_fail(err, "member '%s' declares %llu bytes, more than the whole archive holds",
                       m->name, (unsigned long long)m->comp_size);
    if (m->method == ZIP_CM_STORE && m->comp_size != m->size)
        return sk_fail(err, "member '%s' is stored but declares %llu bytes in %llu", m->name,
                       (unsigned long long)m->size, (unsigned long long)m->comp_size);
    if (m->method == ZIP_CM_DEFLATE && m->size / SK_MAX_COMPRESSION_RATIO > m->comp_size)
        return sk_fail(
            err, "member '%s' declares a compression ratio above %u:1 (SK_MAX_COMPRESSION_RATIO)",
            m->name, SK_MAX_COMPRESSION_RATIO);
    return 0;
}

int sk_reader_open(struct sk_archive *archive, uint64_t index, struct sk_reader **out,
                   struct sk_error *err)
{
    *out = NULL;
    if (index >= archive->member_count)
        return sk_fail(err, "no member %llu", (unsigned long long)index);
    if (sk_archive_check_member(archive, index, err) != 0 ||
        probe_data_offset(archive, index, err) != 0)
        return -1;
    struct sk_reader *reader = calloc(1, sizeof *reader);
    if (reader == NULL)
        return sk_fail(err, "out of memory");
    reader->archive = archive;
    reader->member = &archive->members[index];
    *out = reader;
    return 0;
}

uint64_t sk_reader_size(const struct sk_reader *reader)
{
    return reader->member->size;
}

bool sk_reader_stored_extent(const struct sk_reader *reader, int *fd, uint64_t *offset)
{
    if (reader->member->method != ZIP_CM_STORE)
        return false;
    *fd = reader->archive->fd;
    *offset = (uint64_t)reader->member->data_offset;
    return true;
}

static void end_stream(struct cursor *c)
{
    if (c->stream_ready)
        inflateEnd(&c->stream);
    c->stream_ready = false;
}

void sk_reader_close(struct sk_reader *reader)
{
    if (reader == NULL)
        return;
    for (int i = 0; i < SK_READER_CURSORS; i++) {
        end_stream(&reader->cursors[i]);
        free(reader->cursors[i].input);
        free(reader->cursors[i].window);
    }
    free(reader);
}

static ssize_t read_stored(struct sk_reader *reader, void *buffer, size_t length, uint64_t offset,
                           struct sk_error *err)
{
    const struct member *m = reader->member;
    if (offset >= m->size)
        return 0;
    if (length > m->size - offset)
        length = (size_t)(m->size - offset);
    size_t done = 0;
    while (done < length) {
        ssize_t got = pread(reader->archive->fd, (char *)buffer + done, length - done,
                            (off_t)((uint64_t)m->data_offset + offset + done));
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return sk_fail(err, "member '%s': %s", m->name, strerror(errno));
        }
        if (got == 0)
            return sk_fail(err, "member '%s': archive ends inside the member", m->name);
        done += (size_t)got;
    }
    return (ssize_t)done;
}

/* The last seek point at or before OFFSET, or NULL. Points are never freed
 * while the archive is open, so the result may be used without the lock. */
static struct seek_point *find_point(struct member *m, uint64_t offset)
{
    pthread_mutex_lock(&m->points_lock);
    size_t lo = 0, hi = m->point_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->points[mid]->out <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    struct seek_point *point = lo > 0 ? m->points[lo - 1] : NULL;
    pthread_mutex_unlock(&m->points_lock);
    return point;
}

/* Positions the inflater at the last seek point at or before OFFSET. */
static int restart_stream(struct sk_reader *reader, struct cursor *c, uint64_t offset,
                          struct sk_error *err)
{
    struct member *m = reader->member;
    end_stream(c);
    if (c->input == NULL)
        c->input = malloc(SK_INFLATE_INPUT_CHUNK);
    if (c->window == NULL)
        c->window = malloc(SK_INFLATE_WINDOW);
    if (c->input == NULL || c->window == NULL)
        return sk_fail(err, "out of memory");
    memset(&c->stream, 0, sizeof c->stream);
    if (inflateInit2(&c->stream, -15) != Z_OK)
        return sk_fail(err, "member '%s': cannot start inflating", m->name);
    c->stream_ready = true;
    c->finished = false;
    c->out_position = 0;
    c->in_position = 0;

    struct seek_point *point = find_point(m, offset);
    if (point == NULL)
        return 0;

    if (point->bits != 0) {
        unsigned char previous;
        if (pread(reader->archive->fd, &previous, 1,
                  (off_t)((uint64_t)m->data_offset + point->in - 1)) != 1)
            return sk_fail(err, "member '%s': %s", m->name, strerror(errno));
        inflatePrime(&c->stream, point->bits, previous >> (8 - point->bits));
    }
    inflateSetDictionary(&c->stream, point->window, SK_INFLATE_WINDOW);
    /* The circular window must hold the same history the dictionary does. */
    for (uint32_t i = 0; i < SK_INFLATE_WINDOW; i++) {
        uint64_t position = point->out - SK_INFLATE_WINDOW + i;
        c->window[position % SK_INFLATE_WINDOW] = point->window[i];
    }
    c->out_position = point->out;
    c->in_position = point->in;
    return 0;
}

static void maybe_add_point(struct sk_reader *reader, struct cursor *c)
{
    struct member *m = reader->member;
    z_stream *s = &c->stream;
    /* Only at a block boundary that is not the end of the stream. */
    if (!(s->data_type & 128) || (s->data_type & 64))
        return;
    if (c->out_position < SK_INFLATE_WINDOW)
        return;
    pthread_mutex_lock(&m->points_lock);
    uint64_t last = m->point_count ? m->points[m->point_count - 1]->out : 0;
    if (c->out_position >= last + SK_INFLATE_SPACING) {
        if (m->point_count == m->point_capacity) {
            size_t capacity = m->point_capacity ? m->point_capacity * 2 : 16;
            struct seek_point **grown = realloc(m->points, capacity * sizeof *grown);
            if (grown == NULL)
                goto out;
            m->points = grown;
            m->point_capacity = capacity;
        }
        struct seek_point *point = malloc(sizeof *point);
        if (point == NULL)
            goto out;
        point->out = c->out_position;
        point->in = c->in_position - s->avail_in;
        point->bits = s->data_type & 7;
        for (uint32_t i = 0; i < SK_INFLATE_WINDOW; i++) {
            uint64_t position = c->out_position - SK_INFLATE_WINDOW + i;
            point->window[i] = c->window[position % SK_INFLATE_WINDOW];
        }
        m->points[m->point_count++] = point;
    }
out:
    pthread_mutex_unlock(&m->points_lock);
}

/* Inflates until out_position reaches TARGET (or the declared end),
 * copying the bytes at and after COPY_FROM into BUFFER. */
static ssize_t inflate_to(struct sk_reader *reader, struct cursor *c, uint64_t copy_from,
                          char *buffer, uint64_t target, struct sk_error *err)
{
    struct member *m = reader->member;
    z_stream *s = &c->stream;
    size_t copied = 0;
    while (c->out_position < target) {
        if (c->finished)
            return sk_fail(err, "member '%s': data ends before its declared size", m->name);
        if (s->avail_in == 0) {
            uint64_t left = m->comp_size - c->in_position;
            size_t chunk = left < SK_INFLATE_INPUT_CHUNK ? (size_t)left : SK_INFLATE_INPUT_CHUNK;
            if (chunk == 0)
                return sk_fail(err, "member '%s': compressed data ends early", m->name);
            ssize_t got = pread(reader->archive->fd, c->input, chunk,
                                (off_t)((uint64_t)m->data_offset + c->in_position));
            if (got <= 0)
                return sk_fail(err, "member '%s': %s", m->name,
                               got < 0 ? strerror(errno) : "archive ends inside the member");
            c->in_position += (uint64_t)got;
            s->next_in = c->input;
            s->avail_in = (uInt)got;
        }
        uint64_t slot = c->out_position % SK_INFLATE_WINDOW;
        uint64_t room = SK_INFLATE_WINDOW - slot;
        if (room > target - c->out_position)
            room = target - c->out_position;
        s->next_out = c->window + slot;
        s->avail_out = (uInt)room;
        int rc = inflate(s, Z_BLOCK);
        size_t produced = (size_t)(room - s->avail_out);
        if (rc != Z_OK && rc != Z_STREAM_END && !(rc == Z_BUF_ERROR && produced > 0))
            return sk_fail(err, "member '%s': corrupt DEFLATE data", m->name);
        uint64_t start = c->out_position;
        c->out_position += produced;
        if (buffer != NULL && c->out_position > copy_from) {
            uint64_t from = start > copy_from ? start : copy_from;
            memcpy(buffer + copied, c->window + (from % SK_INFLATE_WINDOW),
                   (size_t)(c->out_position - from));
            copied += (size_t)(c->out_position - from);
        }
        if (rc == Z_STREAM_END)
            c->finished = true;
        else
            maybe_add_point(reader, c);
    }
    return (ssize_t)copied;
}

static ssize_t read_deflated(struct sk_reader *reader, void *buffer, size_t length, uint64_t offset,
                             struct sk_error *err)
{
    struct member *m = reader->member;
    if (offset >= m->size)
        return 0;
    if (length > m->size - offset)
        length = (size_t)(m->size - offset);
    /* The cursor furthest along at or before OFFSET, if no seek point lies
     * between it and OFFSET; else the least recently used, restarted. */
    const struct seek_point *point = find_point(m, offset);
    uint64_t usable_from = point != NULL ? point->out : 0;
    struct cursor *best = NULL, *oldest = &reader->cursors[0];
    for (int i = 0; i < SK_READER_CURSORS; i++) {
        struct cursor *c = &reader->cursors[i];
        if (c->stream_ready && c->out_position <= offset && c->out_position >= usable_from &&
            (best == NULL || c->out_position > best->out_position))
            best = c;
        if (c->last_used < oldest->last_used)
            oldest = c;
    }
    struct cursor *c = best;
    if (c == NULL) {
        c = oldest;
        if (restart_stream(reader, c, offset, err) != 0)
            return -1;
    }
    c->last_used = ++reader->clock;
    if (inflate_to(reader, c, offset, NULL, offset, err) < 0)
        return -1;
    return inflate_to(reader, c, offset, buffer, offset + length, err);
}

ssize_t sk_reader_pread(struct sk_reader *reader, void *buffer, size_t length, uint64_t offset,
                        struct sk_error *err)
{
    if (reader->member->method == ZIP_CM_STORE)
        return read_stored(reader, buffer, length, offset, err);
    return read_deflated(reader, buffer, length, offset, err);
}

int sk_archive_read_member(struct sk_archive *archive, uint64_t index, size_t max_bytes,
                           char **data, size_t *length, struct sk_error *err)
{
    *data = NULL;
    *length = 0;
    const struct member *m = &archive->members[index];
    if (m->size > max_bytes)
        return sk_fail(err, "member '%s' is %llu bytes, more than the limit of %zu", m->name,
                       (unsigned long long)m->size, max_bytes);
    struct sk_reader *reader;
    if (sk_reader_open(archive, index, &reader, err) != 0)
        return -1;
    char *buffer = sk_pages_alloc((size_t)m->size + 1);
    if (buffer == NULL) {
        sk_reader_close(reader);
        return sk_fail(err, "out of memory");
    }
    ssize_t got = sk_reader_pread(reader, buffer, (size_t)m->size, 0, err);
    sk_reader_close(reader);
    if (got < 0 || (uint64_t)got != m->size) {
        sk_pages_free(buffer, (size_t)m->size + 1);
        return sk_fail(err, "member '%s': short read", m->name);
    }
    buffer[m->size] = '\0';
    *data = buffer;
    *length = (size_t)m->size;
    return 0;
}

void sk_archive_free_member(char *data, size_t length)
{
    sk_pages_free(data, length + 1);
}
