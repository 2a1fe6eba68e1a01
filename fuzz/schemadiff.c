#include "schemadiff.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"
#include "schema_scan.h"
#include "textwindow.h"

const char *const schema_diff_outcome_names[SCHEMA_DIFF_OUTCOMES] = {
    [SCHEMA_DIFF_SAME] = "read by both: the same graph",
    [SCHEMA_DIFF_DECLINED_READ] = "declined by the one-pass reader, read by the old one",
    [SCHEMA_DIFF_DECLINED_REFUSED] = "declined by the one-pass reader, refused by the old one",
    [SCHEMA_DIFF_DIFFERENT] = "DIFFERENT",
    [SCHEMA_DIFF_STREAM_DECLINED] = "read in one pass whole, declined streamed",
};

static bool same_bytes(const char *a, size_t a_length, const char *b, size_t b_length)
{
    return a_length == b_length && (a_length == 0 || memcmp(a, b, a_length) == 0);
}

static bool same_string(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool same_slot(const struct sk_slot *a, const struct sk_slot *b)
{
    return a->kind == b->kind && same_bytes(a->key, a->key_length, b->key, b->key_length) &&
           a->fixed_name == b->fixed_name && (a->node == NULL) == (b->node == NULL) &&
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

/* Nodes of A paired with nodes of B, found by walking both from their
 * roots slot by slot: the readers may make nodes in different orders (the
 * one-pass reader reads a DictNode's content before its key_types), so
 * nodes are compared by where they are, not by their creation index. */
struct pairing {
    size_t *b_of, *a_of; /* by index; SIZE_MAX: not met yet */
    const struct sk_node **stack;
    size_t depth;
};

static const char *pair(struct pairing *p, const struct sk_node *a, const struct sk_node *b)
{
    if (p->b_of[a->index] != SIZE_MAX || p->a_of[b->index] != SIZE_MAX)
        return p->b_of[a->index] == b->index && p->a_of[b->index] == a->index ? NULL : "sharing";
    p->b_of[a->index] = b->index;
    p->a_of[b->index] = a->index;
    p->stack[p->depth++] = a;
    p->stack[p->depth++] = b;
    return NULL;
}

static const char *walk_both(struct pairing *p, const struct sk_schema *a,
                             const struct sk_schema *b, size_t *at)
{
    while (p->depth > 0) {
        const struct sk_node *y = p->stack[--p->depth], *x = p->stack[--p->depth];
        *at = x->index;
        const char *what = node_difference(x, y);
        for (size_t i = 0; what == NULL && i < x->slot_count; i++)
            if (x->slots[i].node != NULL)
                what = pair(p, x->slots[i].node, y->slots[i].node);
        if (what != NULL)
            return what;
    }
    /* nodes no slot holds: paired in creation order, compared alone */
    size_t next_b = 0;
    for (size_t i = 0; i < a->node_count; i++) {
        if (p->b_of[i] != SIZE_MAX)
            continue;
        while (p->a_of[next_b] != SIZE_MAX)
            next_b++;
        *at = i;
        p->b_of[i] = next_b;
        p->a_of[next_b] = i;
        const char *what = node_difference(a->nodes[i], b->nodes[next_b]);
        if (what != NULL)
            return what;
    }
    return NULL;
}

static const char *graph_difference(const struct sk_schema *a, const struct sk_schema *b,
                                    size_t *at)
{
    *at = 0;
    if (a->node_count != b->node_count)
        return "node count";
    if ((a->root == NULL) != (b->root == NULL))
        return "root";
    if (!same_string(a->protocol_json, b->protocol_json) ||
        !same_string(a->skops_version_json, b->skops_version_json) ||
        !same_bytes(a->protocol_text, a->protocol_text_length, b->protocol_text,
                    b->protocol_text_length) ||
        !same_bytes(a->skops_version_text, a->skops_version_text_length, b->skops_version_text,
                    b->skops_version_text_length))
        return "versions";
    size_t n = a->node_count;
    struct pairing p = {
        .b_of = malloc((n + 1) * sizeof *p.b_of),
        .a_of = malloc((n + 1) * sizeof *p.a_of),
        .stack = malloc((2 * n + 2) * sizeof *p.stack),
    };
    const char *what = "out of memory";
    if (p.b_of && p.a_of && p.stack) {
        memset(p.b_of, 0xff, (n + 1) * sizeof *p.b_of);
        memset(p.a_of, 0xff, (n + 1) * sizeof *p.a_of);
        what = a->root ? pair(&p, a->root, b->root) : NULL;
        if (what == NULL)
            what = walk_both(&p, a, b, at);
    }
    free(p.b_of);
    free(p.a_of);
    free(p.stack);
    return what;
}

/* The one-pass reader over TEXT streamed: read STEP bytes at a time (up to
 * a newline), every byte given back as soon as the reader lets it go; with
 * a digest of every container from the start where DIGEST_ALL, else only
 * where the first pass asks for them, as sk_schema_read_member does. */
static int scan_streamed(const char *text, size_t length, struct sk_store *store, size_t step,
                         bool digest_all, struct sk_schema **out)
{
    int rc = SK_SCAN_DIGESTS_WANTED;
    *out = NULL;
    for (int pass = 0; pass < 2 && rc == SK_SCAN_DIGESTS_WANTED; pass++) {
        struct sk_source *source;
        struct sk_error err = {0};
        if (sk_source_memory(text, length, false, &source, &err) != 0)
            return -1;
        /* A thread reads the next step ahead on one input in eight, in
         * longer steps: each step waits for the thread's wake-up (some
         * 100 us here), which at a few bytes a step slowed fuzzing 4x. */
        bool ahead = length % 8 == 5;
        struct sk_text_window_options options = {
            .step = ahead ? 512 + step : step, .byte_release = true, .read_alone = !ahead};
        rc = sk_schema_scan_source(source, &options, digest_all || pass == 1, store, NULL, NULL,
                                   out);
        sk_source_close(source);
    }
    return rc;
}

static enum schema_diff_outcome compare(const struct sk_schema *read, const struct sk_schema *old,
                                        const char *reader, char *why, size_t why_size)
{
    size_t at;
    const char *what = graph_difference(read, old, &at);
    if (what)
        snprintf(why, why_size, "%s: %s differs (node %zu)", reader, what, at);
    return what ? SCHEMA_DIFF_DIFFERENT : SCHEMA_DIFF_SAME;
}

enum schema_diff_outcome schema_diff(const char *text, size_t length, struct sk_store *store,
                                     char *why, size_t why_size)
{
    struct sk_schema *scanned, *streamed, *old = NULL;
    struct sk_error err = {0};
    int scan_rc = sk_schema_scan_load(text, length, store, NULL, &scanned);
    /* every container digested from the start on every other input */
    int stream_rc = scan_streamed(text, length, store, 1 + length % 61, length % 2 == 1, &streamed);
    int old_rc = sk_schema_load_tree(text, length, store, NULL, &old, &err);
    enum schema_diff_outcome outcome;
    if (scan_rc != 0) {
        outcome = old_rc == 0 ? SCHEMA_DIFF_DECLINED_READ : SCHEMA_DIFF_DECLINED_REFUSED;
    } else if (old_rc != 0) {
        snprintf(why, why_size, "read in one pass, refused by the old reader: %s", err.message);
        outcome = SCHEMA_DIFF_DIFFERENT;
    } else {
        outcome = compare(scanned, old, "whole", why, why_size);
    }
    if (outcome != SCHEMA_DIFF_DIFFERENT && stream_rc == 0) {
        if (old_rc != 0) {
            snprintf(why, why_size, "streamed, refused by the old reader: %s", err.message);
            outcome = SCHEMA_DIFF_DIFFERENT;
        } else if (compare(streamed, old, "streamed", why, why_size) != SCHEMA_DIFF_SAME) {
            outcome = SCHEMA_DIFF_DIFFERENT;
        }
    } else if (outcome == SCHEMA_DIFF_SAME && stream_rc == SK_SCAN_DECLINED) {
        /* sk_schema_read_member hands such a file to the jansson reader */
        snprintf(why, why_size, "streamed, declined as the whole text would be; read whole");
        outcome = SCHEMA_DIFF_DIFFERENT;
    } else if (outcome == SCHEMA_DIFF_SAME) {
        outcome = SCHEMA_DIFF_STREAM_DECLINED;
    }
    sk_schema_free(scanned);
    sk_schema_free(streamed);
    sk_schema_free(old);
    return outcome;
}
