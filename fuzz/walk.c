#include "walk.h"

#include <stdlib.h>

#define READ_CHUNK 65536

void fuzz_walk_layout(const struct sk_layout *layout)
{
    char *buffer = malloc(READ_CHUNK);
    for (size_t i = 0; i < layout->entry_count; i++) {
        const struct sk_entry *entry = layout->entries[i];
        struct sk_xattr xattrs[SK_XATTR_MAX];
        int count = sk_entry_xattrs(entry, xattrs);
        if (count > 0)
            sk_xattrs_free(xattrs, count);
        char *path = sk_entry_path(entry);
        const struct sk_entry *found;
        if (path != NULL)
            sk_layout_resolve(layout, path, true, &found);
        free(path);
        if (entry->kind != SK_ENTRY_FILE || entry->refused)
            continue;
        struct sk_error err = {0};
        struct sk_source *source;
        if (sk_entry_open(layout, entry, &source, &err) != 0)
            continue;
        /* the start, the end and a middle: a bomb must not cost a full pass */
        uint64_t offsets[3] = {0, entry->size / 2,
                               entry->size > READ_CHUNK ? entry->size - READ_CHUNK : 0};
        for (int k = 0; k < 3; k++)
            if (sk_source_pread(source, buffer, READ_CHUNK, offsets[k], &err) < 0)
                break;
        sk_source_close(source);
    }
    free(buffer);
}
