/* libFuzzer target: a whole archive (zip structure, schema, layout, reads). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "model.h"
#include "walk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("archive", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct sk_error err = {{0}};
    struct sk_model *model;
    struct sk_model_options options = {
        .build_layout = true, .read_npy_headers = true, .check_content = true};
    if (sk_model_open(path, &options, &model, &err) == 0) {
        fuzz_walk_layout(model->layout);
        sk_model_close(model);
    }
    close(fd);
    return 0;
}
