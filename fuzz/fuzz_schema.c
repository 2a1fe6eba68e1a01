/* libFuzzer target: schema.json text against a fixed archive of members
 * (an array, a sparse matrix, bytes, a compressed array), then the layout. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#include "model.h"
#include "walk.h"

static struct sk_store *archive;
static struct sk_allowlist *allowlist;

/* A valid .npy of two float64 values: 64 bytes of header, 16 of data. */
static unsigned char npy[80];

static void make_npy(void)
{
    const char *dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }";
    memset(npy, ' ', 64);
    memcpy(npy, "\x93NUMPY\x01\x00\x36\x00", 10);
    memcpy(npy + 10, dict, strlen(dict));
    npy[63] = '\n';
    double values[2] = {1.0, 2.0};
    memcpy(npy + 64, values, sizeof values);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    make_npy();
    char path[] = "/tmp/skopsfs-fuzz-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    int error;
    zip_t *zip = zip_open(path, ZIP_TRUNCATE, &error);
    const char *names[] = {"1.npy", "2.npz", "3.bin", "4.npy", "schema.json"};
    for (int i = 0; i < 5; i++) {
        zip_source_t *source = zip_source_buffer(zip, npy, sizeof npy, 0);
        zip_int64_t index = zip_file_add(zip, names[i], source, 0);
        zip_set_file_compression(zip, (zip_uint64_t)index, i == 3 ? ZIP_CM_DEFLATE : ZIP_CM_STORE,
                                 0);
    }
    zip_close(zip);
    struct sk_error err = {0};
    if (sk_model_open_store(path, &archive, &err) != 0)
        abort();
    unlink(path);
    allowlist = sk_allowlist_new();
    sk_allowlist_add(allowlist, "os.system", &err);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sk_error err = {0};
    struct sk_schema *schema;
    if (sk_schema_load((const char *)data, size, archive, NULL, &schema, &err) != 0)
        return 0;
    char **names;
    size_t count;
    if (sk_schema_untrusted(schema, &names, &count, &err) == 0)
        sk_string_list_free(names, count);
    struct sk_content_report *content = NULL;
    if (sk_content_check(archive, schema, &content, &err) != 0)
        content = NULL;
    struct sk_layout *layout;
    struct sk_layout_options options = {
        .allowlist = size % 2 ? allowlist : NULL, .read_npy_headers = true, .content = content};
    if (sk_layout_build(archive, schema, &options, &layout, &err) == 0) {
        fuzz_walk_layout(layout);
        sk_layout_free(layout);
    }
    sk_content_report_free(content);
    sk_schema_free(schema);
    return 0;
}
