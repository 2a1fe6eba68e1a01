#include "schemadiff.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "schema.h"
#include "schema_scan.h"

const char *const schema_diff_outcome_names[SCHEMA_DIFF_OUTCOMES] = {
    [SCHEMA_DIFF_SAME] = "read by both: the same graph",
    [SCHEMA_DIFF_DECLINED_READ] = "declined by the one-pass reader, read by the old one",
    [SCHEMA_DIFF_DECLINED_REFUSED] = "declined by the one-pass reader, refused by the old one",
    [SCHEMA_DIFF_DIFFERENT] = "DIFFERENT",
};

static bool same_bytes(const char *a, size_t a_length, const char *b, size_t b_length)
{
    return a_length == b_length && (a_length == 0 || memcmp(a, b, a_length) == 0);
}

static bool same_string(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static size_t index_of(const struct sk_node *node)
{
    return node ? node->index : (size_t)-1;
}

static bool same_slot(const struct sk_slot *a, const struct sk_slot *b)
{
    return a->kind == b->kind && same_bytes(a->key, a->key_length, b->key, b->key_length) &&
           a->fixed_name == b->fixed_name && index_of(a->node) == index_of(b->node) &&
           a->alias_differs == b->alias_differs &&
           same_bytes(a->field_text, a->field_length, b->field_text, b->field_length);
}

/* NULL where A and B are the same node, else what differs. */
static const char *node_difference(const struct sk_node *a, const struct sk_node *b)
{
    if (a->loader != b->loader || a->protocol_form != b->protocol_form)
        return "loader";
    if (!same_string(a->type_name, b->type_name) || !same_string(a->module_name, b->module_name) ||
        !same_string(a->class_name, b->class_name))
        return "type";
    if (a->slot_count != b->slot_count)
        return "slot count";
    for (size_t i = 0; i < a->slot_count; i++)
        if (!same_slot(&a->slots[i], &b->slots[i]))
            return "slot";
    if (a->contribution_count != b->contribution_count)
        return "contribution count";
    for (size_t i = 0; i < a->contribution_count; i++)
        if (strcmp(a->contributions[i], b->contributions[i]) != 0)
            return "contribution";
    if (a->has_member != b->has_member || (a->has_member && a->member != b->member))
        return "member";
    if (!same_bytes(a->json_text, a->json_length, b->json_text, b->json_length))
        return "JSON text";
    if (!same_bytes(a->text, a->text_length, b->text, b->text_length))
        return "text";
    return NULL;
}

static const char *graph_difference(const struct sk_schema *a, const struct sk_schema *b,
                                    size_t *at)
{
    *at = 0;
    if (a->node_count != b->node_count)
        return "node count";
    if (index_of(a->root) != index_of(b->root))
        return "root";
    if (!same_string(a->protocol_json, b->protocol_json) ||
        !same_string(a->skops_version_json, b->skops_version_json) ||
        !same_bytes(a->protocol_text, a->protocol_text_length, b->protocol_text,
                    b->protocol_text_length) ||
        !same_bytes(a->skops_version_text, a->skops_version_text_length, b->skops_version_text,
                    b->skops_version_text_length))
        return "versions";
    for (size_t i = 0; i < a->node_count; i++) {
        const char *what = node_difference(a->nodes[i], b->nodes[i]);
        if (what != NULL) {
            *at = i;
            return what;
        }
    }
    return NULL;
}

enum schema_diff_outcome schema_diff(const char *text, size_t length, struct sk_store *store,
                                     char *why, size_t why_size)
{
    struct sk_schema *scanned, *old = NULL;
    struct sk_error err = {0};
    int scan_rc = sk_schema_scan_load(text, length, store, NULL, &scanned);
    int old_rc = sk_schema_load_tree(text, length, store, NULL, &old, &err);
    enum schema_diff_outcome outcome;
    if (scan_rc != 0) {
        outcome = old_rc == 0 ? SCHEMA_DIFF_DECLINED_READ : SCHEMA_DIFF_DECLINED_REFUSED;
    } else if (old_rc != 0) {
        snprintf(why, why_size, "read in one pass, refused by the old reader: %s", err.message);
        outcome = SCHEMA_DIFF_DIFFERENT;
    } else {
        size_t at;
        const char *what = graph_difference(scanned, old, &at);
        outcome = what ? SCHEMA_DIFF_DIFFERENT : SCHEMA_DIFF_SAME;
        if (what)
            snprintf(why, why_size, "%s differs (node %zu)", what, at);
    }
    sk_schema_free(scanned);
    sk_schema_free(old);
    return outcome;
}
