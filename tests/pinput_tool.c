/* pinput_tool: drives the pickle input modules for tests/check_pickle_input.py
 * and for measuring them.
 *   decompress [--max-bytes N] [--max-ratio N] [--allow-trailing] FILE
 *       writes the pickle stream to stdout; "compression trailing" to stderr
 *   npyheader   reads a JSON list of cases ({"dtype": D, "shape": [...],
 *       "fortran": B}, D a typestr or {"itemsize": N, "fields": [{"name",
 *       "title"?, "offset", "dtype": D, "shape"?}]}) on stdin; prints the hex
 *       of each header, or "error: MESSAGE", one line a case
 *   zip [--zip64] OUT SCHEMA NAME=FILE...   a stored archive of the files
 *   latin1 FILE LENGTH    decodes FILE (UTF-8) as a latin-1 array to stdout
 * Exits 1 with one line on stderr when the module fails, 2 on usage. */
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "npyheader.h"
#include "pickle_input.h"
#include "pickle_source.h"
#include "zipwrite.h"

#define CHUNK (1u << 20)

static int fail(const struct sk_error *err)
{
    fprintf(stderr, "%s\n", err->message);
    return 1;
}

static int decompress(int argc, char **argv)
{
    struct sk_pickle_input_options options = {0};
    int i = 0;
    for (; i < argc - 1; i++) {
        if (strcmp(argv[i], "--max-bytes") == 0)
            options.max_bytes = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--max-ratio") == 0)
            options.max_ratio = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--allow-trailing") == 0)
            options.allow_trailing = true;
        else
            return 2;
    }
    if (i != argc - 1)
        return 2;
    struct sk_error err = {0};
    struct sk_pickle_input *input;
    if (sk_pickle_input_open(argv[i], &options, &input, &err) != 0)
        return fail(&err);
    fwrite(input->bytes, 1, (size_t)input->size, stdout);
    fprintf(stderr, "%s %llu\n", sk_pickle_compression_name(input->compression),
            (unsigned long long)input->trailing_bytes);
    sk_pickle_input_close(input);
    return 0;
}

static void free_dtype(struct sk_npy_dtype *dtype)
{
    for (size_t i = 0; i < dtype->field_count; i++) {
        free_dtype((struct sk_npy_dtype *)dtype->fields[i].dtype);
        free((struct sk_npy_dtype *)dtype->fields[i].dtype);
        free((uint64_t *)dtype->fields[i].shape);
    }
    free((struct sk_npy_field *)dtype->fields);
}

/* Builds dtypes from JSON (strings borrowed from it); free_dtype frees. */
static int parse_dtype(json_t *spec, struct sk_npy_dtype *dtype)
{
    memset(dtype, 0, sizeof *dtype);
    if (json_is_string(spec)) {
        dtype->typestr = json_string_value(spec);
        return 0;
    }
    json_t *fields = json_object_get(spec, "fields");
    dtype->itemsize = (uint64_t)json_integer_value(json_object_get(spec, "itemsize"));
    dtype->field_count = json_array_size(fields);
    struct sk_npy_field *out = calloc(dtype->field_count + 1, sizeof *out);
    dtype->fields = out;
    for (size_t i = 0; i < dtype->field_count; i++) {
        json_t *f = json_array_get(fields, i);
        json_t *name = json_object_get(f, "name"), *title = json_object_get(f, "title");
        out[i].name = json_string_value(name);
        out[i].name_length = json_string_length(name);
        if (title != NULL) {
            out[i].title = json_string_value(title);
            out[i].title_length = json_string_length(title);
        }
        out[i].offset = (uint64_t)json_integer_value(json_object_get(f, "offset"));
        struct sk_npy_dtype *inner = malloc(sizeof *inner);
        parse_dtype(json_object_get(f, "dtype"), inner);
        out[i].dtype = inner;
        json_t *shape = json_object_get(f, "shape");
        out[i].ndim = json_array_size(shape);
        uint64_t *dims = calloc(out[i].ndim + 1, sizeof *dims);
        for (size_t d = 0; d < out[i].ndim; d++)
            dims[d] = (uint64_t)json_integer_value(json_array_get(shape, d));
        out[i].shape = dims;
    }
    return 0;
}

static int npyheader(void)
{
    json_error_t jerr;
    json_t *cases = json_loadf(stdin, 0, &jerr);
    if (!json_is_array(cases))
        return 2;
    for (size_t c = 0; c < json_array_size(cases); c++) {
        json_t *spec = json_array_get(cases, c);
        struct sk_npy_dtype dtype;
        parse_dtype(json_object_get(spec, "dtype"), &dtype);
        json_t *shape = json_object_get(spec, "shape");
        size_t ndim = json_array_size(shape);
        uint64_t dims[64];
        for (size_t d = 0; d < ndim && d < 64; d++)
            dims[d] = (uint64_t)json_integer_value(json_array_get(shape, d));
        char *header;
        size_t length;
        struct sk_error err = {0};
        if (sk_npy_header_build(&dtype, json_is_true(json_object_get(spec, "fortran")), dims, ndim,
                                &header, &length, &err) != 0) {
            printf("error: %s\n", err.message);
            free_dtype(&dtype);
            continue;
        }
        for (size_t i = 0; i < length; i++)
            printf("%02x", (unsigned char)header[i]);
        printf("\n");
        free(header);
        free_dtype(&dtype);
    }
    json_decref(cases);
    return 0;
}

static char *read_file(const char *path, size_t *length)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *data = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&data, &size);
    char buffer[65536];
    size_t got;
    while ((got = fread(buffer, 1, sizeof buffer, f)) > 0)
        fwrite(buffer, 1, got, mem);
    fclose(mem);
    fclose(f);
    *length = size;
    return data;
}

static int zip(int argc, char **argv)
{
    struct sk_zip_write_options options = {0};
    if (argc > 0 && strcmp(argv[0], "--zip64") == 0)
        options.force_zip64 = true, argc--, argv++;
    if (argc < 2)
        return 2;
    size_t schema_length;
    char *schema = read_file(argv[1], &schema_length);
    if (schema == NULL)
        return 2;
    size_t count = (size_t)argc - 2;
    struct sk_source_named *members = calloc(count + 1, sizeof *members);
    struct sk_error err = {0};
    for (size_t i = 0; i < count; i++) {
        char *spec = argv[i + 2], *eq = strchr(spec, '=');
        if (eq == NULL)
            return 2;
        *eq = '\0';
        int fd = open(eq + 1, O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0)
            return 2;
        members[i].name = spec;
        if (sk_pickle_source_range("", 0, fd, 0, (uint64_t)st.st_size, 0, &members[i].source,
                                   &err) != 0)
            return fail(&err);
    }
    int rc = sk_convert_write(argv[0], schema, schema_length, members, count, &options, &err);
    for (size_t i = 0; i < count; i++)
        members[i].source->ops->close(members[i].source);
    free(members);
    free(schema);
    return rc == 0 ? 0 : fail(&err);
}

static int latin1(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    int fd = open(argv[0], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0)
        return 2;
    const unsigned char *text = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    struct sk_error err = {0};
    struct sk_source *source;
    if (sk_pickle_source_latin1("", 0, text, (uint64_t)st.st_size, strtoull(argv[1], NULL, 10), 0,
                                &source, &err) != 0)
        return fail(&err);
    char *buffer = malloc(CHUNK);
    ssize_t got;
    for (uint64_t at = 0; (got = sk_source_pread(source, buffer, CHUNK, at, &err)) > 0;
         at += (uint64_t)got)
        fwrite(buffer, 1, (size_t)got, stdout);
    free(buffer);
    source->ops->close(source);
    return got < 0 ? fail(&err) : 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "decompress") == 0)
        return decompress(argc - 2, argv + 2);
    if (argc == 2 && strcmp(argv[1], "npyheader") == 0)
        return npyheader();
    if (argc >= 2 && strcmp(argv[1], "zip") == 0)
        return zip(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "latin1") == 0)
        return latin1(argc - 2, argv + 2);
    fprintf(stderr, "usage: pinput_tool decompress|npyheader|zip|latin1 ...\n");
    return 2;
}
