#include "model.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "archive.h" /* the store kinds (sk_model_open_store) */
#include "pickle_store.h"
#include "schema_json.h"
#include "sk_limits.h"
#include "sniff.h"

/* When a file is not a zip archive, says what it is instead, if that is
 * known: a pickle or a joblib file given where a .skops is expected is the
 * usual mistake, and "no end of central directory" does not name it. */
static void explain_not_an_archive(const char *path, struct sk_error *err)
{
    struct sk_sniff sniff;
    char why[SK_ERROR_MESSAGE_MAX];
    if (sk_sniff_file(path, &sniff, NULL) == 0 && sk_sniff_explain(&sniff, why, sizeof why)) {
        sk_error_clear(err);
        sk_fail(err, "%s: %s", path, why);
    }
}

static bool is_pickle(const char *path)
{
    struct sk_sniff sniff;
    if (sk_sniff_file(path, &sniff, NULL) != 0)
        return false;
    return sniff.kind == SK_FILE_PICKLE || sniff.kind == SK_FILE_JOBLIB_PICKLE ||
           sniff.kind == SK_FILE_JOBLIB_COMPRESSED;
}

int sk_model_open_store(const char *path, struct sk_store **out, struct sk_error *err)
{
    return sk_model_open_store_limited(path, NULL, out, err);
}

int sk_model_open_store_limited(const char *path, const struct sk_limits *limits,
                                struct sk_store **out, struct sk_error *err)
{
    if (!is_pickle(path)) {
        if (sk_zip_store_open(path, out, err) == 0)
            return 0;
        explain_not_an_archive(path, err);
        return -1;
    }
    struct sk_pickle_file *file;
    if (sk_pickle_file_open(path, &(struct sk_pickle_file_options){.limits = limits}, &file, err) !=
        0)
        return -1;
    *out = sk_pickle_file_store(file);
    return 0;
}

/* A layout that opens every member (the daemon's) reads each one's local
 * header, one read apiece: 8,000 of them were half of a forest's layout.
 * A thread reads them ahead while the content checks end and the layout is
 * built, and the opens find them known. */
struct opens_ahead {
    pthread_t thread;
    bool running;
};

static void *prepare_opens(void *store)
{
    sk_store_prepare_opens(store);
    return NULL;
}

static void start_opens_ahead(struct opens_ahead *ahead, struct sk_store *store,
                              const struct sk_model_options *options)
{
    ahead->running = options->build_layout && options->open_members &&
                     pthread_create(&ahead->thread, NULL, prepare_opens, store) == 0;
}

static void end_opens_ahead(struct opens_ahead *ahead)
{
    if (ahead->running)
        pthread_join(ahead->thread, NULL);
    ahead->running = false;
}

/* A mount's contents checked on a thread of their own while its layout is
 * built (the layout needs the problems only at its end): the rest of the
 * trees' judgments, the walk and the checks of each object. */
struct checks_beside {
    struct sk_store *store;
    const struct sk_schema *schema;
    struct sk_content_prefetch *prefetch;
    pthread_t thread;
    bool running;
    struct sk_content_report *report;
    struct sk_error err;
    int rc;
};

static void *check_beside(void *arg)
{
    struct checks_beside *c = arg;
    c->rc = sk_content_check_prefetched(c->store, c->schema, c->prefetch, &c->report, &c->err);
    return NULL;
}

/* The checks joined and their problems put in the layout, if it was built
 * (LAYOUT_RC 0). Where both failed, the checks' error is the one told:
 * they ran first when they ran alone. */
static int end_checks_beside(struct checks_beside *c, struct sk_model *model, int layout_rc,
                             struct sk_error *err)
{
    pthread_join(c->thread, NULL);
    c->running = false;
    model->content = c->report;
    if (c->rc != 0) {
        *err = c->err;
        return -1;
    }
    return layout_rc == 0 ? sk_layout_add_problems(model->layout, model->content, err) : 0;
}

/* A pickle's schema is the state its mapping made, never text to parse. */
static int load_pickled_schema(struct sk_model *model, const struct sk_model_options *options,
                               struct sk_error *err)
{
    const struct sk_pickle_map *map = sk_pickle_file_map(sk_pickle_file_of(model->store));
    return sk_schema_load_pickled(map->schema, model->store, &options->limits, &model->schema, err);
}

int sk_model_open(const char *path, const struct sk_model_options *options, struct sk_model **out,
                  struct sk_error *err)
{
    *out = NULL;
    struct sk_content_prefetch *prefetch = NULL;
    struct opens_ahead ahead = {.running = false};
    struct sk_model *model = calloc(1, sizeof *model);
    if (model == NULL)
        return sk_fail_code(err, ENOMEM, "%s: out of memory", path);
    if (sk_model_open_store_limited(path, &options->limits, &model->store, err) != 0) {
        goto fail; /* the message names the path already */
    }
    if (sk_pickle_file_of(model->store) != NULL) {
        if (load_pickled_schema(model, options, err) != 0)
            goto fail_prefixed;
        goto schema_read;
    }
    uint64_t index;
    if (sk_store_find(model->store, "schema.json", &index) != 0) {
        sk_fail(err, "no schema.json in the archive: not a .skops file");
        goto fail_prefixed;
    }
    unsigned long long max_schema =
        options->limits.schema_bytes ? options->limits.schema_bytes : SK_MAX_SCHEMA_BYTES;
    struct sk_member_info info;
    sk_store_member_info(model->store, index, &info);
    if (info.size > max_schema) {
        sk_fail_code(err, E2BIG,
                     "schema.json is %llu bytes, more than %llu (the max_schema_mb limit, "
                     "SK_MAX_SCHEMA_BYTES; "
                     "raise it with "
                     "-o max_schema_mb=N or --max-schema-mb N)",
                     (unsigned long long)info.size, max_schema);
        goto fail_prefixed;
    }
    /* the trees' arrays are judged on another thread while the schema is read */
    prefetch = options->check_content ? sk_content_prefetch_start(model->store) : NULL;
    struct sk_node_watch watch =
        prefetch ? sk_content_prefetch_watch(prefetch) : (struct sk_node_watch){0};
    if (sk_schema_read_member(model->store, index, (size_t)max_schema, &options->limits,
                              prefetch ? &watch : NULL, &model->schema, err) != 0)
        goto fail_prefixed;
schema_read:
    start_opens_ahead(&ahead, model->store, options);
    struct checks_beside beside = {
        .store = model->store, .schema = model->schema, .prefetch = prefetch};
    beside.running = options->build_layout && prefetch != NULL &&
                     pthread_create(&beside.thread, NULL, check_beside, &beside) == 0;
    if (options->check_content && !beside.running &&
        sk_content_check_prefetched(model->store, model->schema, prefetch, &model->content, err) !=
            0)
        goto fail_prefixed;
    int layout_rc = 0;
    if (options->build_layout)
        layout_rc = sk_layout_build(
            model->store, model->schema,
            &(struct sk_layout_options){.allowlist = options->allowlist,
                                        .read_npy_headers = options->read_npy_headers,
                                        .open_members = options->open_members,
                                        .max_entries = options->limits.entries,
                                        .content = model->content,
                                        .problems_later = beside.running},
            &model->layout, err);
    if (beside.running && end_checks_beside(&beside, model, layout_rc, err) != 0)
        goto fail_prefixed;
    sk_content_prefetch_free(prefetch);
    prefetch = NULL;
    if (layout_rc != 0)
        goto fail_prefixed;
    end_opens_ahead(&ahead);
    /* Once the checks and the opens ahead have read what they read. */
    if (options->build_layout && options->open_members &&
        sk_layout_check_members(model->layout, err) != 0)
        goto fail_prefixed;
    *out = model;
    return 0;
fail_prefixed:
    sk_error_prefix(err, "%s: ", path);
fail:
    end_opens_ahead(&ahead);
    sk_content_prefetch_free(prefetch);
    sk_model_close(model);
    return -1;
}

void sk_model_close(struct sk_model *model)
{
    if (model == NULL)
        return;
    sk_layout_free(model->layout);
    sk_content_report_free(model->content);
    sk_schema_free(model->schema);
    sk_store_close(model->store);
    free(model);
}
