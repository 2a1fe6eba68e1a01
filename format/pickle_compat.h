/* The Python 2 -> 3 name mapping that pickle applies to globals of
 * protocol 0-2 streams (fix_imports=True, the default). */
#ifndef SKOPSFS_PICKLE_COMPAT_H
#define SKOPSFS_PICKLE_COMPAT_H

#include <stdbool.h>
#include <stddef.h>

struct sk_pk_compat_name {
    const char *module, *name, *new_module, *new_name;
};
struct sk_pk_compat_module {
    const char *module, *new_module;
};

/* True when MODULE.NAME is renamed: *NEW_MODULE is set, and *NEW_NAME too
 * when the name changes (NULL: keep it). */
bool sk_pk_compat_map(const char *module, size_t module_length, const char *name,
                      size_t name_length, const char **new_module, const char **new_name);

#endif
