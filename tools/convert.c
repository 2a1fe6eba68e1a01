/* skopsfs convert: a pickle or joblib file written as the .skops archive
 * that skops's dumps writes for the object the pickle loads to, without
 * running the pickle. It refuses, one line a reason, while anything is
 * unrepresentable, the object holds a cycle, or a type is untrusted and
 * not named with --trust. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "pickle_store.h"
#include "zipwrite.h"

/* Why IN cannot be converted as it is, one line each; the count of them. */
static size_t refusals(const char *in, struct sk_model *model, const struct cli_options *options)
{
    const struct sk_pickle_map *map = sk_pickle_file_map(sk_pickle_file_of(model->store));
    size_t count = 0;
    for (size_t i = 0; i < map->finding_count; i++, count++)
        fprintf(stderr, "%s: %s: %s at offset %llu cannot be represented: %s\n", program, in,
                map->findings[i].global[0] ? map->findings[i].global : "the stream",
                (unsigned long long)map->findings[i].offset, map->findings[i].reason);
    if (map->cyclic && ++count)
        fprintf(stderr, "%s: %s: the object refers to itself, which skops cannot write\n", program,
                in);
    char **names;
    size_t name_count;
    struct sk_error err = {0};
    if (sk_schema_untrusted(model->schema, &names, &name_count, &err) != 0) {
        fprintf(stderr, "%s: %s: %s\n", program, in, err.message);
        return count + 1;
    }
    size_t kept = sk_allowlist_filter(options->allowlist, names, name_count);
    for (size_t i = 0; i < kept; i++) {
        if (names[i][0] == SK_UNREPRESENTABLE_MARK)
            continue; /* reported above, with its offset */
        fprintf(stderr, "%s: %s: untrusted type %s (convert --trust %s ... to write it)\n", program,
                in, names[i], names[i]);
        count++;
    }
    sk_string_list_free(names, kept);
    return count;
}

/* Every member of the copy that skops writes, as named sources. */
static int write_archive(const char *out, struct sk_store *store, const char *schema_text,
                         struct sk_error *err)
{
    uint64_t count = sk_store_member_count(store) - 1; /* the last is schema.json */
    struct sk_source_named *named = calloc(count ? count : 1, sizeof *named);
    if (named == NULL)
        return sk_fail(err, "out of memory");
    int rc = 0;
    for (uint64_t i = 0; rc == 0 && i < count; i++) {
        struct sk_member_info info;
        sk_store_member_info(store, i, &info);
        named[i].name = info.name;
        rc = sk_store_open(store, i, true, &named[i].source, err);
    }
    if (rc == 0)
        rc = sk_convert_write(out, schema_text, strlen(schema_text), named, count, NULL, err);
    for (uint64_t i = 0; i < count; i++)
        if (named[i].source != NULL)
            sk_source_close(named[i].source);
    free(named);
    return rc;
}

int cli_convert(struct cli_options *options, int count, char **operands)
{
    (void)count;
    const char *in = operands[0], *out = operands[1];
    options->no_content_checks = true;
    struct sk_model *model = cli_open_model(in, options, false, false);
    if (model == NULL)
        return EXIT_UNREADABLE;
    if (sk_pickle_file_of(model->store) == NULL) {
        fprintf(stderr, "%s: %s: not a pickle or joblib file; convert writes those as .skops\n",
                program, in);
        sk_model_close(model);
        return EXIT_UNREADABLE;
    }
    size_t refused = refusals(in, model, options);
    sk_model_close(model);
    if (refused > 0)
        return EXIT_FOUND_UNTRUSTED;

    /* What skops writes: each reference of a shared object in full. */
    struct sk_pickle_file *copy;
    struct sk_error err = {0};
    struct sk_pickle_file_options copies = {.skops_copies = true, .limits = &options->limits};
    if (sk_pickle_file_open(in, &copies, &copy, &err) != 0) {
        fprintf(stderr, "%s: %s\n", program, err.message);
        return EXIT_UNREADABLE;
    }
    struct sk_store *store = sk_pickle_file_store(copy);
    char *text = json_dumps(sk_pickle_file_map(copy)->schema, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    int rc = text != NULL ? write_archive(out, store, text, &err) : sk_fail(&err, "out of memory");
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", program, err.message);
    free(text);
    sk_store_close(store);
    return rc == 0 ? 0 : EXIT_UNREADABLE;
}
