/* schema.json in one pass onto the graph (schema_scan.h).
 *
 * skops writes a state's "__id__" after its content, but skops's reader
 * looks the id up first: an id seen before makes the whole state an alias
 * whose content is never read. So a state's content is read ahead
 * (speculatively, in the order of the text) and, when its id turns out to
 * be an alias, the nodes it made are dropped again (sk_graph_truncate).
 * What skops's reader reads of a state in another order than the text
 * holds it (a DictNode's key_types before its content; a TreeNode's
 * content before its __loader__ is known) is passed over as a span and
 * read from it when the state closes. The memo records, per id, the last
 * time a lookup missed it: a state whose id a state below it looked up
 * would be met in another order than skops meets it, and is declined. */
#include "schema_scan.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decimal.h"
#include "grow.h"
#include "hash.h"
#include "jsonscan.h"
#include "jsontext.h"
#include "schema_json.h"
#include "strmap.h"
#include "textwindow.h"

/* A state with more keys than this is read by the jansson reader (skops
 * writes at most seven). */
#define SCAN_MAX_STATE_KEYS 16

enum { DECLINE = -1 };

/* Distinct loader names remembered (skops has about twenty loaders). */
#define SCAN_LOADER_NAMES 32
/* Names met lately, a cache in front of the interned names: a model has a
 * few dozen module, class and loader names, met again in every state. */
#define SCAN_RECENT_NAMES 64
/* Classes remembered with the reducing loader they were written with. */
#define SCAN_REDUCED_CLASSES 8

/* Copies of names, keys and texts, kept with the graph. */
struct chunk {
    struct chunk *next;
    size_t used, size;
    char bytes[];
};

static void free_chunks(void *storage)
{
    for (struct chunk *c = storage, *next; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
}

/* Per memo key: the node skops would find, and when a lookup last missed. */
struct memo_record {
    struct sk_node *node;
    size_t last_miss; /* the node count then; SIZE_MAX: never */
};

/* A value of a state: its first token and its whole text. */
struct value {
    struct sk_json_event first;
    const char *start;
    size_t length;
};

/* The keys a loader reads, told apart once per key as it is met. */
enum key_kind {
    KEY_OTHER,
    KEY_CLASS,
    KEY_MODULE,
    KEY_LOADER,
    KEY_ID,
    KEY_REDUCE,
    KEY_SKOPS_VERSION,
    KEY_ATTRS,
    KEY_CONTENT,
    KEY_FILE,
    KEY_KEY_TYPES,
    KEY_PROTOCOL,
    KEY_SHAPE,
    KEY_TYPE,
    KEY_KINDS
};

static const struct {
    const char *text;
    size_t length;
} key_names[KEY_KINDS] = {
    [KEY_CLASS] = {"__class__", 9},    [KEY_MODULE] = {"__module__", 10},
    [KEY_LOADER] = {"__loader__", 10}, [KEY_ID] = {"__id__", 6},
    [KEY_REDUCE] = {"__reduce__", 10}, [KEY_SKOPS_VERSION] = {"_skops_version", 14},
    [KEY_ATTRS] = {"attrs", 5},        [KEY_CONTENT] = {"content", 7},
    [KEY_FILE] = {"file", 4},          [KEY_KEY_TYPES] = {"key_types", 9},
    [KEY_PROTOCOL] = {"protocol", 8},  [KEY_SHAPE] = {"shape", 5},
    [KEY_TYPE] = {"type", 4},
};

static enum key_kind key_kind_of(const struct sk_json_event *key)
{
    for (int k = KEY_OTHER + 1; k < KEY_KINDS; k++) {
        /* most keys are written without escapes: their bytes are the name */
        if (!key->escaped ? key_names[k].length == key->length &&
                                memcmp(key->start, key_names[k].text, key->length) == 0
                          : sk_json_equals(key, key_names[k].text, key_names[k].length))
            return (enum key_kind)k;
    }
    return KEY_OTHER;
}

/* read_members sets each field by name (a whole-member literal was a slow
 * `rep stos`): a new field is set there too. */
struct member {
    struct sk_json_event key;
    enum key_kind kind;
    struct value value;
    bool done;   /* read already, in the order of the text */
    bool pinned; /* a container passed over: its text is read again later */
};

/* A state's key or scalar whose text was given back, copied (streamed text). */
struct copy {
    struct copy *next;
    char bytes[];
};

/* Nodes read ahead of a part skops reads before them (a DictNode's content,
 * read before its key_types): while that part is read, meeting one of them
 * through its id, or making a node whose id they looked up in vain, would
 * depart from skops's order, and is declined. */
struct ahead_window {
    size_t first, end; /* node indices [first, end) */
};

struct state {
    const char *start, *end;
    uint64_t digest; /* where every container's is taken */
    size_t count;
    struct copy *copies;
    struct member members[SCAN_MAX_STATE_KEYS];
    struct sk_node *node; /* made once its names are known */
    bool guessed;         /* made before its __loader__, on a class's last one */
    size_t mark;          /* node count when the state opened */
    size_t content_mark;  /* node count when a DictNode's content was read ahead */
    /* A reduced state's __reduce__ args, read ahead of its content: their nodes */
    bool args_first;
    struct ahead_window args_ahead;
};

/* What a node made here needs later: its state's text, its memo record. */
struct node_info {
    const char *start; /* NULL: longer than 4 GiB, never compared */
    struct memo_record *record;
    /* Streamed text, a state of scalars: the keyed hash of its tokens. */
    uint64_t fingerprint;
    uint32_t length;
    bool fingerprinted;
};

/* Streamed text: an alias is compared with its original as written, but
 * the original's text may have been given back. skops writes every state
 * in full wherever its object recurs (its CachedNode is never written),
 * and most are strings, numbers and types: states of scalars. So such a
 * state keeps its tokens as a keyed hash, and an alias whose hash is the
 * original's is the same tokens. Any other alias whose original's text is
 * gone is declined, and the caller reads the text whole (an ensemble may
 * alias a whole estimator). */
/* An open state this close to the scanner keeps its text from its start,
 * so that a small alias can be compared as written when it closes. */
#define OPEN_STATE_KEPT_BYTES ((size_t)64 << 10)

/* The memo's integer keys: open addressing, at most three quarters full
 * (keyed slots spread them; a forest has a hundred thousand). */
struct id_slot {
    long long id;
    struct memo_record *record; /* NULL: empty */
};

struct id_table {
    struct id_slot *slots;
    size_t capacity; /* a power of two */
    size_t count;
};

static struct id_slot *id_slot_of(struct id_slot *slots, size_t capacity, long long id)
{
    /* keyed: ids a file chose to share a slot would make every put walk them all */
    size_t i = sk_hash_u64_slot((uint64_t)id, (unsigned)__builtin_ctzll(capacity));
    while (slots[i].record != NULL && slots[i].id != id)
        i = (i + 1) & (capacity - 1);
    return &slots[i];
}

static struct memo_record *id_table_get(const struct id_table *t, long long id)
{
    return t->capacity ? id_slot_of(t->slots, t->capacity, id)->record : NULL;
}

static int id_table_put(struct id_table *t, long long id, struct memo_record *record)
{
    if (4 * (t->count + 1) > 3 * t->capacity) {
        size_t capacity = t->capacity ? 2 * t->capacity : 1024;
        struct id_slot *slots = calloc(capacity, sizeof *slots);
        if (slots == NULL)
            return -1;
        for (size_t i = 0; i < t->capacity; i++)
            if (t->slots[i].record != NULL)
                *id_slot_of(slots, capacity, t->slots[i].id) = t->slots[i];
        free(t->slots);
        t->slots = slots;
        t->capacity = capacity;
    }
    struct id_slot *slot = id_slot_of(t->slots, t->capacity, id);
    t->count += slot->record == NULL;
    *slot = (struct id_slot){.id = id, .record = record};
    return 0;
}

struct reduced_class {
    const char *module, *class_name; /* interned */
    enum sk_loader loader;
};

struct reader {
    struct sk_store *store;
    struct sk_schema *schema;
    const struct sk_node_watch *watch; /* told of each node completed, or NULL */
    struct id_table ids;               /* integer memo keys -> struct memo_record */
    struct sk_strmap *memo;            /* other memo keys -> struct memo_record */
    struct sk_strmap *names;           /* interned names -> their copy */
    struct chunk *chunks;              /* kept with the graph */
    struct chunk *memo_chunks;         /* the memo's records, for the reader alone */
    struct node_info *info;
    size_t info_capacity;
    struct ahead_window *windows; /* open ones, innermost last */
    size_t window_count, window_capacity;
    struct state **states; /* by nesting level */
    size_t state_capacity;
    unsigned level;
    unsigned depth; /* as schema.c's builder counts it */
    unsigned long long max_key_bytes;
    bool form_dependent; /* a node's form depends on the protocol, read last */
    char *scratch;
    size_t scratch_capacity;
    /* Loaders by their interned name, as sk_loader_named found them. */
    struct {
        const char *name;
        enum sk_loader loader;
        bool known;
    } loaders[SCAN_LOADER_NAMES];
    size_t loader_count;
    /* Where skops writes __loader__ last (reduced states: a tree, a loss),
     * the loader a class was last written with, by interned names: its
     * content is read where it stands on that guess, checked at its end. */
    struct reduced_class reduced_classes[SCAN_REDUCED_CLASSES];
    size_t reduced_class_count;
    struct {
        const char *name; /* interned; NULL: empty */
        size_t length;
    } recent_names[SCAN_RECENT_NAMES];
    char *memo_key; /* the current state's */
    size_t memo_key_capacity;
    /* Streamed text: where it comes from, and the first byte not given back. */
    struct sk_text_window *window;
    bool texts_go; /* the window gives text back: an alias may need a fingerprint */
    const char *live_from;
    /* Every container's digest taken (a second streamed pass, after the
     * first met an alias of a state with children whose text was gone). */
    bool digest_all;
    bool met_gone_alias;
    struct sk_json_digests main_digests;
    uint64_t *state_digests; /* by node, where digest_all */
    size_t state_digest_capacity;
    struct sk_json_digests **digests; /* a rescan's, by level */
    size_t digest_levels;
    struct sk_error err; /* builder messages, never shown: declined files are read again */
};

struct result {
    struct sk_node *node;
    bool fresh, differs;
};

/* A copy of BYTES in the chunks of *LIST. */
static char *keep_in(struct chunk **list, const char *bytes, size_t length)
{
    size_t need = (length + 1 + 7) & ~(size_t)7; /* memo records are kept too */
    struct chunk *c = *list;
    if (c == NULL || c->size - c->used < need) {
        size_t size = need > 60000 ? need : 60000;
        c = malloc(sizeof *c + size);
        if (c == NULL)
            return NULL;
        *c = (struct chunk){.next = *list, .size = size};
        *list = c;
    }
    char *copy = c->bytes + c->used;
    memcpy(copy, bytes, length);
    copy[length] = '\0';
    c->used += need;
    return copy;
}

/* A copy kept with the graph. */
static char *keep(struct reader *r, const char *bytes, size_t length)
{
    return keep_in(&r->chunks, bytes, length);
}

/* A key's or string's bytes in the reader's scratch buffer. */
static const char *decoded(struct reader *r, const struct sk_json_event *event, size_t *length)
{
    if (!event->escaped) {
        *length = event->length;
        return event->start;
    }
    if (sk_grow(&r->scratch, &r->scratch_capacity, event->length + 1, 1, 256) != 0)
        return NULL;
    *length = sk_json_decode(event, r->scratch);
    return r->scratch;
}

static bool same_key(struct reader *r, const struct sk_json_event *a, const struct sk_json_event *b)
{
    if (!a->escaped)
        return sk_json_equals(b, a->start, a->length);
    size_t length;
    const char *text = decoded(r, a, &length);
    char *copy = text ? malloc(length + 1) : NULL;
    if (copy == NULL)
        return true; /* out of memory: declined as a repeat */
    memcpy(copy, text, length);
    bool same = sk_json_equals(b, copy, length);
    free(copy);
    return same;
}

static struct member *find(struct state *st, enum key_kind kind)
{
    for (size_t i = 0; i < st->count; i++)
        if (st->members[i].kind == kind)
            return &st->members[i];
    return NULL;
}

/* A name part as the graph borrows it: interned, without NUL. */
static const char *name_of(struct reader *r, const struct member *m)
{
    if (m == NULL || m->value.first.token != SK_JSON_STRING)
        return NULL;
    size_t length;
    const char *text = decoded(r, &m->value.first, &length);
    if (text == NULL)
        return NULL;
    /* a cache: any spread will do (a collision only costs the lookup) */
    size_t slot = length == 0
                      ? 0
                      : (length * 31 + (unsigned char)text[0] * 7 +
                         (unsigned char)text[length / 2] * 3 + (unsigned char)text[length - 1]) %
                            SCAN_RECENT_NAMES;
    if (r->recent_names[slot].name != NULL && r->recent_names[slot].length == length &&
        memcmp(r->recent_names[slot].name, text, length) == 0)
        return r->recent_names[slot].name;
    if (memchr(text, '\0', length) != NULL)
        return NULL;
    const char *kept = sk_strmap_get(r->names, text, length);
    if (kept == NULL) {
        char *copy = keep(r, text, length);
        if (copy == NULL || sk_strmap_put(r->names, copy, length, copy) != 0)
            return NULL;
        kept = copy;
    }
    r->recent_names[slot].name = kept;
    r->recent_names[slot].length = length;
    return kept;
}

/* sk_loader_named for a name interned by name_of: compared by address. */
static bool loader_named(struct reader *r, const char *name, enum sk_loader *loader)
{
    for (size_t i = 0; i < r->loader_count; i++)
        if (r->loaders[i].name == name) {
            *loader = r->loaders[i].loader;
            return r->loaders[i].known;
        }
    enum sk_loader found = SK_LOADER_UNREPRESENTABLE;
    bool known = sk_loader_named(name, &found);
    *loader = found;
    if (r->loader_count < SCAN_LOADER_NAMES) {
        r->loaders[r->loader_count].name = name;
        r->loaders[r->loader_count].loader = found;
        r->loaders[r->loader_count++].known = known;
    }
    return known;
}

static bool reduces(enum sk_loader loader)
{
    return loader == SK_LOADER_TREE || loader == SK_LOADER_LOSS;
}

/* The reducing loader MODULE.CLASS_NAME was last written with: false if
 * none was. */
static bool reduced_class(const struct reader *r, const char *module, const char *class_name,
                          enum sk_loader *loader)
{
    for (size_t i = 0; i < r->reduced_class_count && i < SCAN_REDUCED_CLASSES; i++)
        if (r->reduced_classes[i].module == module &&
            r->reduced_classes[i].class_name == class_name) {
            *loader = r->reduced_classes[i].loader;
            return true;
        }
    return false;
}

static void remember_reduced_class(struct reader *r, const char *module, const char *class_name,
                                   enum sk_loader loader)
{
    enum sk_loader known;
    if (!reduces(loader) || (reduced_class(r, module, class_name, &known) && known == loader))
        return;
    /* the oldest is forgotten: a guess missed only costs the rescan */
    r->reduced_classes[r->reduced_class_count++ % SCAN_REDUCED_CLASSES] =
        (struct reduced_class){module, class_name, loader};
}

static int add_node(struct reader *r, struct state *st, enum sk_loader loader, const char *module,
                    const char *class_name)
{
    if (loader == SK_LOADER_UNREPRESENTABLE || r->depth >= SK_MAX_NODE_DEPTH)
        return DECLINE;
    if (loader == SK_LOADER_FUNCTION || loader == SK_LOADER_RANDOM_GENERATOR)
        r->form_dependent = true;
    if (sk_graph_add_node(r->schema, loader, 2, module, class_name, &st->node, &r->err) != 0 ||
        sk_grow(&r->info, &r->info_capacity, r->schema->node_count, sizeof *r->info, 256) != 0 ||
        (r->digest_all && sk_grow(&r->state_digests, &r->state_digest_capacity,
                                  r->schema->node_count, sizeof *r->state_digests, 256) != 0))
        return DECLINE;
    r->info[st->node->index] = (struct node_info){0};
    return 0;
}

/* The state's node, made once its names are known and valid. */
static int make_node(struct reader *r, struct state *st)
{
    if (st->node != NULL)
        return 0;
    const char *loader_name = name_of(r, find(st, KEY_LOADER));
    const char *module = loader_name ? name_of(r, find(st, KEY_MODULE)) : NULL;
    const char *class_name = module ? name_of(r, find(st, KEY_CLASS)) : NULL;
    enum sk_loader loader;
    if (class_name == NULL || !loader_named(r, loader_name, &loader) ||
        add_node(r, st, loader, module, class_name) != 0)
        return DECLINE;
    remember_reduced_class(r, module, class_name, loader);
    return 0;
}

/* The state's node made where its __loader__ is not known yet, as a
 * reduced state of its class was last made (skops writes __loader__ after
 * __reduce__ and content there): 0 if it was. */
static int guess_node(struct reader *r, struct state *st)
{
    if (st->node != NULL || find(st, KEY_LOADER) != NULL)
        return DECLINE;
    const char *module = name_of(r, find(st, KEY_MODULE));
    const char *class_name = module ? name_of(r, find(st, KEY_CLASS)) : NULL;
    enum sk_loader loader;
    if (class_name == NULL || !reduced_class(r, module, class_name, &loader) ||
        add_node(r, st, loader, module, class_name) != 0)
        return DECLINE;
    st->guessed = true;
    return 0;
}

/* Whether a guessed node's loader is the one the state names at its end
 * (else the state is declined: its content was read as another's). */
static bool guess_held(struct reader *r, struct state *st)
{
    const char *loader_name = name_of(r, find(st, KEY_LOADER));
    enum sk_loader loader;
    return loader_name != NULL && loader_named(r, loader_name, &loader) &&
           loader == st->node->loader;
}

static int read_state(struct reader *r, struct sk_json_scan *scan, const struct sk_json_event *open,
                      unsigned inherited, struct result *out);

/* A child state whose '{' SCAN returned as OPEN, in a slot of NODE. */
static int child_here(struct reader *r, struct sk_node *node, enum sk_slot_kind kind,
                      struct sk_json_scan *scan, const struct sk_json_event *open, const char *key,
                      size_t key_length, bool fixed_name, unsigned inherited)
{
    if (open->token != SK_JSON_OBJECT_START)
        return DECLINE;
    struct result c;
    r->depth++;
    int rc = read_state(r, scan, open, inherited, &c);
    r->depth--;
    if (rc != 0)
        return DECLINE;
    if (kind == SK_SLOT_FLATTEN && !(c.fresh && c.node->loader == SK_LOADER_DICT))
        kind = SK_SLOT_ENTRY;
    struct sk_slot *slot;
    if (sk_node_add_slot(r->schema, node, kind, key, key_length, fixed_name, c.node, &slot,
                         &r->err) != 0)
        return DECLINE;
    slot->alias_differs = c.differs;
    return 0;
}

/* A digest leaves out what same_content leaves out: "__id__" and "file" values. */
static bool id_or_file(const struct sk_json_event *key)
{
    return sk_json_equals(key, "__id__", 6) || sk_json_equals(key, "file", 4);
}

/* Gives SUB the digest stack of the current level: rescans nest one a
 * level, and one level's follow each other. */
static int digests_at_level(struct reader *r, struct sk_json_scan *sub)
{
    if (r->level >= r->digest_levels) {
        size_t old = r->digest_levels;
        if (sk_grow(&r->digests, &r->digest_levels, (size_t)r->level + 1, sizeof *r->digests, 16) !=
            0)
            return -1;
        memset(r->digests + old, 0, (r->digest_levels - old) * sizeof *r->digests);
    }
    if (r->digests[r->level] == NULL) {
        if ((r->digests[r->level] = calloc(1, sizeof **r->digests)) == NULL)
            return -1;
        r->digests[r->level]->skips_value = id_or_file;
    }
    sk_json_scan_digest(sub, r->digests[r->level]);
    return 0;
}

/* A scanner over a container value read ahead; its first token in *OPEN. */
static int rescan(struct reader *r, const struct value *v, struct sk_json_scan *sub,
                  struct sk_json_event *open)
{
    if (v->first.token != SK_JSON_OBJECT_START && v->first.token != SK_JSON_ARRAY_START)
        return DECLINE;
    sk_json_scan_init(sub, v->start, v->length);
    if (r->digest_all && digests_at_level(r, sub) != 0)
        return DECLINE;
    struct sk_error err; /* not `= {0}`: 516 bytes zeroed for each container */
    sk_error_clear(&err);
    return sk_json_next(sub, open, &err) == v->first.token ? 0 : DECLINE;
}

/* schema.c's child(): a member read ahead, under a named key. */
static int child_of(struct reader *r, struct sk_node *node, enum sk_slot_kind kind,
                    const struct member *m, const char *key, unsigned inherited)
{
    size_t key_length = strlen(key);
    if (m == NULL || key_length > r->max_key_bytes)
        return DECLINE;
    struct sk_json_scan sub;
    struct sk_json_event open;
    if (rescan(r, &m->value, &sub, &open) != 0)
        return DECLINE;
    return child_here(r, node, kind, &sub, &open, key, key_length, key[0] == '.', inherited);
}

/* A list's elements (SCAN just past its '['), each under its index. */
static int elements(struct reader *r, struct sk_node *node, struct sk_json_scan *scan,
                    unsigned inherited)
{
    struct sk_json_event event;
    for (size_t i = 0;; i++) {
        if (sk_json_next(scan, &event, &r->err) == SK_JSON_ARRAY_END)
            return 0;
        char digits[SK_DECIMAL_MAX_DIGITS];
        size_t length = sk_decimal(i, digits);
        const char *key = keep(r, digits, length);
        if (key == NULL ||
            child_here(r, node, SK_SLOT_ENTRY, scan, &event, key, length, false, inherited) != 0)
            return DECLINE;
    }
}

/* The keys of one dict met so far: compared one by one while few, then
 * through a map. */
enum { FEW_KEYS = 16 };

struct seen_keys {
    const char *key[FEW_KEYS];
    size_t length[FEW_KEYS];
    size_t count;
    struct sk_strmap *map;
};

/* 1 where KEY was met before, 0 after recording it, -1 out of memory. */
static int seen_before(struct seen_keys *seen, const char *key, size_t length)
{
    if (seen->map == NULL && seen->count < FEW_KEYS) {
        for (size_t i = 0; i < seen->count; i++)
            if (seen->length[i] == length && memcmp(seen->key[i], key, length) == 0)
                return 1;
        seen->key[seen->count] = key;
        seen->length[seen->count++] = length;
        return 0;
    }
    if (seen->map == NULL) {
        seen->map = sk_strmap_new();
        for (size_t i = 0; seen->map != NULL && i < seen->count; i++)
            if (sk_strmap_put(seen->map, seen->key[i], seen->length[i], (void *)seen->key[i]) != 0)
                return -1;
        if (seen->map == NULL)
            return -1;
    }
    if (sk_strmap_get(seen->map, key, length) != NULL)
        return 1;
    return sk_strmap_put(seen->map, key, length, (void *)key) != 0 ? -1 : 0;
}

/* A dict's entries (SCAN just past its '{'): keys as the jansson reader
 * leaves them (U+10FFFF read as NUL), a repeated key declined. */
static int entries(struct reader *r, struct sk_node *node, struct sk_json_scan *scan,
                   unsigned inherited)
{
    struct seen_keys seen; /* the arrays are written before they are read */
    seen.count = 0;
    seen.map = NULL;
    struct sk_json_event event;
    int rc = 0;
    while (rc == 0 && sk_json_next(scan, &event, &r->err) == SK_JSON_KEY) {
        size_t length;
        const char *text = decoded(r, &event, &length);
        char *key = text ? keep(r, text, length) : NULL;
        if (key == NULL || length > r->max_key_bytes || seen_before(&seen, key, length) != 0) {
            rc = DECLINE;
            break;
        }
        size_t nul_length;
        char *nul_key = sk_json_key_decode(key, length, &nul_length);
        if (nul_key != NULL) { /* a copy: SEEN holds the key as written */
            key = keep(r, nul_key, nul_length);
            length = nul_length;
            free(nul_key);
            if (key == NULL) {
                rc = DECLINE;
                break;
            }
        }
        if (sk_json_next(scan, &event, &r->err) == SK_JSON_ERROR ||
            child_here(r, node, SK_SLOT_ENTRY, scan, &event, key, length, false, inherited) != 0)
            rc = DECLINE;
    }
    if (rc == 0 && event.token != SK_JSON_OBJECT_END)
        rc = DECLINE;
    sk_strmap_free(seen.map);
    return rc;
}

static int elements_of(struct reader *r, struct sk_node *node, const struct member *m,
                       unsigned inherited)
{
    struct sk_json_scan sub;
    struct sk_json_event open;
    if (m == NULL || m->value.first.token != SK_JSON_ARRAY_START ||
        rescan(r, &m->value, &sub, &open) != 0)
        return DECLINE;
    return elements(r, node, &sub, inherited);
}

static int entries_of(struct reader *r, struct sk_node *node, const struct member *m,
                      unsigned inherited)
{
    struct sk_json_scan sub;
    struct sk_json_event open;
    if (m == NULL || m->value.first.token != SK_JSON_OBJECT_START ||
        rescan(r, &m->value, &sub, &open) != 0)
        return DECLINE;
    return entries(r, node, &sub, inherited);
}

/* Whether a member is the JSON string WORD. */
static bool string_is(struct reader *r, const struct member *m, const char *word)
{
    (void)r;
    return m != NULL && m->value.first.token == SK_JSON_STRING &&
           sk_json_equals(&m->value.first, word, strlen(word));
}

static int member_file(struct reader *r, struct sk_node *node, struct state *st)
{
    struct member *file = find(st, KEY_FILE);
    if (file == NULL || file->value.first.token != SK_JSON_STRING)
        return DECLINE;
    size_t length;
    const char *text = decoded(r, &file->value.first, &length);
    char *name = text ? strndup(text, length) : NULL;
    int rc = name == NULL || strlen(name) != length ||
                     sk_store_find(r->store, name, &node->member) != 0 ||
                     sk_store_check_member(r->store, node->member, &r->err) != 0
                 ? DECLINE
                 : 0;
    free(name);
    node->has_member = rc == 0;
    return rc;
}

static int json_text(struct reader *r, struct sk_node *node, struct state *st)
{
    struct member *content = find(st, KEY_CONTENT);
    if (content == NULL || content->value.first.token != SK_JSON_STRING)
        return DECLINE;
    size_t length;
    const char *text = decoded(r, &content->value.first, &length);
    char *copy = text ? keep(r, text, length) : NULL;
    if (copy == NULL)
        return DECLINE;
    node->json_text = copy;
    node->json_length = length;
    char *file;
    size_t file_length;
    if (sk_json_node_text(copy, length, &file, &file_length) != 0)
        return DECLINE;
    sk_node_set_text(node, file, file_length);
    return 0;
}

/* The child of "content" where it has not been read in the text's order. */
static int content_child(struct reader *r, struct sk_node *node, struct state *st,
                         enum sk_slot_kind kind, const char *key, unsigned inherited)
{
    struct member *content = find(st, KEY_CONTENT);
    if (content != NULL && content->done)
        return 0;
    return child_of(r, node, kind, content, key, inherited);
}

/* The members of a __reduce__ object (SUB just past its '{'): "args" read
 * as .args where it stands where IN_PLACE, else kept in ARGS; *FOUND if
 * it was there. */
static int reduce_members(struct reader *r, struct sk_node *node, struct sk_json_scan *sub,
                          bool in_place, unsigned passed, struct member *args, bool *found)
{
    struct sk_json_event event;
    enum sk_json_token token;
    *found = false;
    while ((token = sk_json_next(sub, &event, &r->err)) == SK_JSON_KEY) {
        bool is_args = sk_json_equals(&event, "args", 4);
        if (is_args && *found)
            return DECLINE; /* a repeat: jansson keeps the last value */
        struct sk_json_event first;
        if (sk_json_next(sub, &first, &r->err) == SK_JSON_ERROR)
            return DECLINE;
        if (is_args && in_place) {
            if (child_here(r, node, SK_SLOT_ENTRY, sub, &first, ".args", 5, true, passed) != 0)
                return DECLINE;
            *found = true;
            continue;
        }
        const char *start;
        size_t length;
        if (sk_json_skip(sub, &first, &start, &length, &r->err) != 0)
            return DECLINE;
        if (is_args) {
            args->value = (struct value){.first = first, .start = start, .length = length};
            *found = true;
        }
    }
    return token == SK_JSON_OBJECT_END ? 0 : DECLINE;
}

/* args is read where it stands, but by its own scan where every
 * container's digest is taken (each scan's digests start at its top) */
static bool args_in_place(const struct reader *r)
{
    return !r->digest_all && r->max_key_bytes >= 5;
}

/* A child state (OPEN its '{' in SCAN) that skops reads before the nodes
 * AHEAD, which were read ahead of it: meeting one of them while it is read
 * departs from skops's order (a window, see in_window), and its slot then
 * goes first. */
static int child_before(struct reader *r, struct sk_node *node, struct ahead_window ahead,
                        enum sk_slot_kind kind, struct sk_json_scan *scan,
                        const struct sk_json_event *open, const char *key, size_t key_length,
                        bool fixed_name, unsigned inherited)
{
    if (sk_grow(&r->windows, &r->window_capacity, r->window_count + 1, sizeof *r->windows, 8) != 0)
        return DECLINE;
    r->windows[r->window_count++] = ahead;
    int rc = child_here(r, node, kind, scan, open, key, key_length, fixed_name, inherited);
    r->window_count--;
    if (rc != 0)
        return DECLINE;
    struct sk_slot moved = node->slots[node->slot_count - 1];
    memmove(node->slots + 1, node->slots, (node->slot_count - 1) * sizeof *node->slots);
    node->slots[0] = moved;
    return 0;
}

/* A reduced state's content (OPEN its '{' in SCAN) as .state, before the
 * args where they were read ahead. */
static int reduced_state(struct reader *r, struct sk_node *node, struct state *st,
                         struct sk_json_scan *scan, const struct sk_json_event *open,
                         unsigned passed)
{
    if (r->max_key_bytes < 6)
        return DECLINE;
    if (st->args_first)
        return child_before(r, node, st->args_ahead, SK_SLOT_FLATTEN, scan, open, ".state", 6, true,
                            passed);
    return child_here(r, node, SK_SLOT_FLATTEN, scan, open, ".state", 6, true, passed);
}

/* TreeNode and LossNode: .state, then __reduce__'s args as .args. */
static int reduced(struct reader *r, struct sk_node *node, struct state *st, unsigned passed)
{
    struct member *content = find(st, KEY_CONTENT);
    struct sk_json_scan sub;
    struct sk_json_event event;
    if (!(content != NULL && content->done) &&
        (content == NULL || rescan(r, &content->value, &sub, &event) != 0 ||
         reduced_state(r, node, st, &sub, &event, passed) != 0))
        return DECLINE;
    struct member *reduce = find(st, KEY_REDUCE);
    if (reduce != NULL && reduce->done)
        return 0;
    if (reduce == NULL || reduce->value.first.token != SK_JSON_OBJECT_START ||
        rescan(r, &reduce->value, &sub, &event) != 0)
        return DECLINE;
    struct member args; /* its value set where FOUND is and it was passed over */
    bool found;
    bool in_place = args_in_place(r);
    if (reduce_members(r, node, &sub, in_place, passed, &args, &found) != 0)
        return DECLINE;
    if (found && in_place)
        return 0;
    return child_of(r, node, SK_SLOT_ENTRY, found ? &args : NULL, ".args", passed);
}

/* A TreeNode's or LossNode's __reduce__ (OPEN its '{' in SCAN), its args
 * read where they stand: after the content, as skops reads them; before
 * it (as skops writes them), ahead, their nodes a window the content must
 * not meet (reduced_state). 1 where they cannot be read here. */
static int reduce_here(struct reader *r, struct sk_node *node, struct state *st,
                       const struct sk_json_event *open, struct sk_json_scan *scan, unsigned passed)
{
    const struct member *content = find(st, KEY_CONTENT);
    if (open->token != SK_JSON_OBJECT_START || !args_in_place(r))
        return 1;
    bool ahead = content == NULL || !content->done;
    size_t first = r->schema->node_count;
    struct member unused;
    bool found;
    if (reduce_members(r, node, scan, true, passed, &unused, &found) != 0 || !found)
        return DECLINE;
    st->args_first = ahead;
    st->args_ahead = (struct ahead_window){.first = first, .end = r->schema->node_count};
    return 0;
}

/* A DictNode's key_types (OPEN its '{' in SCAN). skops reads it before the
 * content: where the content was read ahead, its slot goes first and the
 * content's nodes are a window it must not meet. */
static int key_types_at(struct reader *r, struct sk_node *node, struct state *st,
                        struct sk_json_scan *scan, const struct sk_json_event *open,
                        unsigned inherited)
{
    const struct member *content = find(st, KEY_CONTENT);
    if (r->max_key_bytes < 9)
        return DECLINE;
    if (content != NULL && content->done)
        return child_before(
            r, node, (struct ahead_window){.first = st->content_mark, .end = r->schema->node_count},
            SK_SLOT_HIDDEN, scan, open, "key_types", 9, false, inherited);
    return child_here(r, node, SK_SLOT_HIDDEN, scan, open, "key_types", 9, false, inherited);
}

static int key_types_of(struct reader *r, struct sk_node *node, struct state *st,
                        const struct member *key_types, unsigned inherited)
{
    struct sk_json_scan sub;
    struct sk_json_event open;
    if (key_types == NULL || rescan(r, &key_types->value, &sub, &open) != 0)
        return DECLINE;
    return key_types_at(r, node, st, &sub, &open, inherited);
}

/* Whether node index AT, or a lookup missed at node count AT, lies in a
 * window read ahead of the part being read now. */
static bool in_window(const struct reader *r, size_t at)
{
    for (size_t i = 0; i < r->window_count; i++)
        if (at >= r->windows[i].first && at < r->windows[i].end)
            return true;
    return false;
}

/* What skops's loader reads of ST once the state is whole, in its order;
 * loaders not read here are declined. */
static int read_rest(struct reader *r, struct sk_node *node, struct state *st, unsigned inherited)
{
    struct member *content = find(st, KEY_CONTENT);
    struct member *type = find(st, KEY_TYPE);
    switch (node->loader) {
    case SK_LOADER_OBJECT:
        if (content == NULL || content->value.first.token == SK_JSON_NULL)
            return 0;
        return content_child(r, node, st, SK_SLOT_FLATTEN, ".state", inherited);
    case SK_LOADER_RANDOM_STATE:
        return content_child(r, node, st, SK_SLOT_FLATTEN, ".state", inherited);
    case SK_LOADER_TREE:
    case SK_LOADER_LOSS:
        return reduced(r, node, st, inherited | sk_loader_hands_down(node->loader));
    case SK_LOADER_DICT: {
        struct member *key_types = find(st, KEY_KEY_TYPES);
        if (!(key_types && key_types->done) && key_types_of(r, node, st, key_types, inherited) != 0)
            return DECLINE;
        return content && content->done ? 0 : entries_of(r, node, content, inherited);
    }
    case SK_LOADER_LIST:
    case SK_LOADER_TUPLE:
    case SK_LOADER_SET:
        return content && content->done ? 0 : elements_of(r, node, content, inherited);
    case SK_LOADER_NDARRAY:
        if (string_is(r, type, "numpy"))
            return member_file(r, node, st);
        if (!string_is(r, type, "json") || elements_of(r, node, content, inherited) != 0)
            return DECLINE;
        return child_of(r, node, SK_SLOT_HIDDEN, find(st, KEY_SHAPE), "shape", inherited);
    case SK_LOADER_SPARSE_MATRIX:
        return string_is(r, type, "scipy") ? member_file(r, node, st) : DECLINE;
    case SK_LOADER_BYTES:
    case SK_LOADER_BYTEARRAY:
        return member_file(r, node, st);
    case SK_LOADER_JSON:
        return json_text(r, node, st);
    case SK_LOADER_TYPE:
    case SK_LOADER_CACHED:
    case SK_LOADER_FUNCTION: /* the current form; older ones are declined at the end */
        return 0;
    case SK_LOADER_CONSTRUCTOR_FROM_REDUCE:
        return content_child(r, node, st, SK_SLOT_ENTRY, "content", inherited);
    case SK_LOADER_OPERATOR_FUNC:
        if (strcmp(node->module_name, "operator") != 0)
            return DECLINE;
        return child_of(r, node, SK_SLOT_ENTRY, find(st, KEY_ATTRS), "attrs", inherited);
    case SK_LOADER_DTYPE:
        return content_child(r, node, st, SK_SLOT_HIDDEN, "content", inherited);
    default:
        return DECLINE;
    }
}

/* Reads member M of ST now, in the order of the text, where skops's loader
 * would read it first of what is still unread: 1 if it did. */
static int read_in_order(struct reader *r, struct state *st, struct member *m,
                         struct sk_json_scan *scan, unsigned inherited)
{
    enum sk_json_token token = m->value.first.token;
    bool content = m->kind == KEY_CONTENT, reduce = m->kind == KEY_REDUCE;
    if ((token != SK_JSON_OBJECT_START && token != SK_JSON_ARRAY_START) ||
        !(content || reduce || m->kind == KEY_KEY_TYPES) ||
        (make_node(r, st) != 0 && guess_node(r, st) != 0))
        return 0;
    struct sk_node *node = st->node;
    unsigned passed = inherited | sk_loader_hands_down(node->loader);
    int rc;
    r->depth++;
    switch (node->loader) {
    case SK_LOADER_TREE: /* skops reads a TreeNode's and a LossNode's content */
    case SK_LOADER_LOSS: /* before __reduce__ */
        if (reduce)
            rc = reduce_here(r, node, st, &m->value.first, scan, passed);
        else
            rc = content && token == SK_JSON_OBJECT_START
                     ? reduced_state(r, node, st, scan, &m->value.first, passed)
                     : 1;
        break;
    case SK_LOADER_OBJECT:
    case SK_LOADER_RANDOM_STATE:
        rc = content && token == SK_JSON_OBJECT_START && r->max_key_bytes >= 6
                 ? child_here(r, node, SK_SLOT_FLATTEN, scan, &m->value.first, ".state", 6, true,
                              passed)
                 : 1;
        break;
    case SK_LOADER_LIST:
    case SK_LOADER_TUPLE:
    case SK_LOADER_SET:
        rc = content && token == SK_JSON_ARRAY_START ? elements(r, node, scan, inherited) : 1;
        break;
    case SK_LOADER_DICT:
        if (content && token == SK_JSON_OBJECT_START) {
            st->content_mark = r->schema->node_count;
            rc = entries(r, node, scan, inherited);
        } else {
            rc = m->kind == KEY_KEY_TYPES && token == SK_JSON_OBJECT_START
                     ? key_types_at(r, node, st, scan, &m->value.first, inherited)
                     : 1;
        }
        break;
    default:
        rc = 1;
    }
    r->depth--;
    if (rc < 0)
        return DECLINE;
    m->done = rc == 0;
    return m->done;
}

/* The memo key of an __id__ value (schema.c's memo_key): *KEY NULL for
 * none. Where it is an integer in int64's range (as skops writes every
 * id), *NUMERIC and *NUMBER say so: such keys live in the id table. */
static int memo_key(struct reader *r, const struct member *id, char **key, size_t *key_length,
                    bool *truthy, bool *numeric, long long *number)
{
    *key = NULL;
    *truthy = false;
    *numeric = false;
    if (id == NULL || id->value.first.token == SK_JSON_NULL)
        return 0;
    const struct sk_json_event *v = &id->value.first;
    char digits[400];
    const char *bytes = digits;
    size_t length;
    char kind = 'i';
    double real;
    switch (v->token) {
    case SK_JSON_INTEGER: /* the id table's: no text key needed */
        *truthy = v->integer != 0;
        *numeric = true;
        *number = (long long)v->integer;
        length = 0;
        break;
    case SK_JSON_TRUE:
    case SK_JSON_FALSE:
        *truthy = v->token == SK_JSON_TRUE;
        *numeric = true;
        *number = *truthy;
        length = 0;
        break;
    case SK_JSON_BIG_INTEGER:
        bytes = v->start;
        length = v->length;
        *truthy = true;
        break;
    case SK_JSON_REAL:
        real = sk_json_real(v);
        *truthy = real != 0;
        if (real != floor(real) || !isfinite(real)) {
            kind = 'f';
            bytes = (const char *)&real;
            length = sizeof real;
        } else {
            length = (size_t)snprintf(digits, sizeof digits, "%.0f", real == 0 ? 0.0 : real);
            /* the same digits as "%lld" of the same integer */
            *numeric = real >= -9223372036854775808.0 && real < 9223372036854775808.0;
            *number = *numeric ? (long long)real : 0;
        }
        break;
    case SK_JSON_STRING:
        kind = 's';
        bytes = decoded(r, v, &length);
        *truthy = length > 0;
        break;
    default:
        return DECLINE;
    }
    if (bytes == NULL || sk_grow(&r->memo_key, &r->memo_key_capacity, length + 1, 1, 64) != 0)
        return DECLINE;
    r->memo_key[0] = kind;
    memcpy(r->memo_key + 1, bytes, length);
    *key = r->memo_key;
    *key_length = length + 1;
    return 0;
}

/* Whether two states' texts are the same tokens, but for "__id__" and
 * "file" values where SKIP_IDS. */
static bool same_tokens(const char *a, size_t a_length, const char *b, size_t b_length,
                        bool skip_ids)
{
    /* an alias at its original's depth is usually written byte for byte alike */
    if (a_length == b_length && memcmp(a, b, a_length) == 0)
        return true;
    struct sk_json_scan sa, sb;
    sk_json_scan_init(&sa, a, a_length);
    sk_json_scan_init(&sb, b, b_length);
    struct sk_error err; /* not `= {0}`: 516 bytes zeroed for each alias */
    sk_error_clear(&err);
    struct sk_json_event ea, eb;
    for (;;) {
        enum sk_json_token t = sk_json_next(&sa, &ea, &err);
        if (sk_json_next(&sb, &eb, &err) != t || t == SK_JSON_ERROR)
            return false;
        if (t == SK_JSON_END)
            return true;
        bool same = true;
        switch (t) {
        case SK_JSON_KEY:
        case SK_JSON_STRING:
        case SK_JSON_BIG_INTEGER:
        case SK_JSON_REAL:
            /* the same bytes with the same escapes are the same value;
             * anything else is left to the full comparison */
            same = ea.escaped == eb.escaped && ea.length == eb.length &&
                   memcmp(ea.start, eb.start, ea.length) == 0;
            break;
        case SK_JSON_INTEGER:
            same = ea.integer == eb.integer;
            break;
        default:
            break;
        }
        if (!same)
            return false;
        if (skip_ids && t == SK_JSON_KEY &&
            (sk_json_equals(&ea, "__id__", 6) || sk_json_equals(&ea, "file", 4))) {
            const char *start;
            size_t length;
            if (sk_json_next(&sa, &ea, &err) == SK_JSON_ERROR ||
                sk_json_next(&sb, &eb, &err) == SK_JSON_ERROR ||
                sk_json_skip(&sa, &ea, &start, &length, &err) != 0 ||
                sk_json_skip(&sb, &eb, &start, &length, &err) != 0)
                return false;
        }
    }
}

/* Whether two states' texts are equal JSON but for "__id__" and "file"
 * values: token by token where they are written alike, else as the
 * jansson reader compares them. */
static int same_content(const char *a, size_t a_length, const char *b, size_t b_length, bool *same)
{
    if (same_tokens(a, a_length, b, b_length, true)) {
        *same = true;
        return 0;
    }
    json_t *ja, *jb;
    struct sk_json_arena *arena_a, *arena_b;
    struct sk_error err = {0};
    if (sk_json_parse(a, a_length, &ja, &arena_a, &err) != 0)
        return DECLINE;
    if (sk_json_parse(b, b_length, &jb, &arena_b, &err) != 0) {
        sk_json_arena_free(arena_a);
        return DECLINE;
    }
    *same = sk_schema_same_content(ja, jb);
    sk_json_arena_free(arena_a);
    sk_json_arena_free(arena_b);
    return 0;
}

/* schema.c's is_cached_reference: strcmp of the loader's name. */
static bool cached_reference(struct reader *r, struct state *st)
{
    struct member *loader = find(st, KEY_LOADER);
    if (loader == NULL || loader->value.first.token != SK_JSON_STRING)
        return false;
    size_t length;
    const char *text = decoded(r, &loader->value.first, &length);
    return text != NULL && length >= 10 && memcmp(text, "CachedNode", 10) == 0 &&
           (length == 10 || text[10] == '\0');
}

/* Forgets the nodes read ahead from MARK on: the state was an alias. */
static void roll_back(struct reader *r, size_t mark)
{
    for (size_t i = mark; i < r->schema->node_count; i++) {
        struct memo_record *record = r->info[i].record;
        if (record != NULL && record->node == r->schema->nodes[i])
            record->node = NULL;
    }
    sk_graph_truncate(r->schema, mark);
}

static void free_copies(struct state *st)
{
    for (struct copy *c = st->copies, *next; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    st->copies = NULL;
}

/* Whether text at P was not given back: an alias is compared with its
 * original as written, and declined where either text is gone. */
static bool live(const struct reader *r, const char *p)
{
    return (uintptr_t)p >= (uintptr_t)r->live_from;
}

static bool is_container(enum sk_json_token token)
{
    return token == SK_JSON_OBJECT_START || token == SK_JSON_ARRAY_START;
}

/* Absorbs a member as same_tokens compares its two tokens: kinds, escapes,
 * bytes as written, in one head word where it can (a key skops names,
 * unescaped, is told by its kind alone). False for a scalar of 4 GiB or
 * more, whose length the head word cannot hold. */
static bool absorb_member(struct sk_hasher *hasher, const struct member *m)
{
    const struct sk_json_event *key = &m->key, *value = &m->value.first;
    if ((uint64_t)value->length >> 32 != 0)
        return false;
    bool named = m->kind != KEY_OTHER && !key->escaped;
    sk_hasher_word(hasher, (uint64_t)m->kind | (uint64_t)key->escaped << 8 |
                               (uint64_t)value->token << 16 | (uint64_t)value->escaped << 24 |
                               (uint64_t)value->length << 32);
    if (!named) {
        sk_hasher_word(hasher, key->length);
        sk_hasher_bytes(hasher, key->start, key->length);
    }
    sk_hasher_bytes(hasher, value->start, value->length);
    return true;
}

/* The keyed hash of ST's tokens as written, where every value is a scalar:
 * equal hashes are the same tokens (same_tokens), but with a chance of
 * 2^-64 under a key the file cannot know. False for a state holding a
 * container. */
static bool fingerprint(const struct state *st, uint64_t *print)
{
    struct sk_hasher hasher;
    sk_hasher_start(&hasher);
    for (size_t i = 0; i < st->count; i++)
        if (is_container(st->members[i].value.first.token) ||
            !absorb_member(&hasher, &st->members[i]))
            return false;
    *print = sk_hasher_finish(&hasher);
    return true;
}

/* How an alias ST compares with node ORIGINAL's state: 1 the same, as
 * written or by fingerprint; else 0 where both texts are there to compare
 * token by token, -1 not known. WITH_IDS: as same_tokens compares them,
 * ids and files included; else as same_content, which leaves them out:
 * then the digests of every container settle it where they are taken, and
 * a first pass without them notes that a second one would. */
static int compare_gone(struct reader *r, const struct state *st, size_t original, bool with_ids)
{
    const struct node_info *info = &r->info[original];
    if (info->start == NULL)
        return -1;
    /* Written at its original's depth, an alias is the same bytes;
     * elsewhere its indent differs, and a fingerprint is a tenth of
     * comparing the two texts token by token (a forest's key_types repeat
     * one str type 37,000 times). */
    bool both_live = live(r, info->start) && live(r, st->start);
    size_t length = (size_t)(st->end - st->start);
    if (both_live && length == info->length && memcmp(st->start, info->start, length) == 0)
        return 1;
    uint64_t print;
    if (info->fingerprinted && fingerprint(st, &print) && print == info->fingerprint)
        return 1;
    if (both_live)
        return 0;
    if (!with_ids && r->digest_all && st->digest == r->state_digests[original])
        return 1;
    r->met_gone_alias = true; /* the whole text might have settled it */
    return -1;
}

static struct state *state_at_level(struct reader *r)
{
    if (r->level >= r->state_capacity) {
        size_t old = r->state_capacity;
        if (sk_grow(&r->states, &r->state_capacity, r->level + 1, sizeof *r->states, 16) != 0)
            return NULL;
        memset(r->states + old, 0, (r->state_capacity - old) * sizeof *r->states);
    }
    if (r->states[r->level] == NULL) {
        r->states[r->level] = malloc(sizeof **r->states);
        if (r->states[r->level] != NULL)
            r->states[r->level]->copies = NULL;
    }
    return r->states[r->level];
}

/* Reads a state's keys in the text's order: names and scalars kept as
 * events, what skops reads next read at once, the rest passed over. */
static int read_members(struct reader *r, struct state *st, struct sk_json_scan *scan,
                        unsigned inherited)
{
    struct sk_json_event key;
    for (;;) {
        enum sk_json_token token = sk_json_next(scan, &key, &r->err);
        if (token == SK_JSON_OBJECT_END) {
            st->end = key.start + 1;
            st->digest = key.digest;
            return 0;
        }
        if (token != SK_JSON_KEY || st->count == SCAN_MAX_STATE_KEYS)
            return DECLINE;
        /* A repeated key: declined (the jansson reader keeps the last). */
        enum key_kind kind = key_kind_of(&key);
        for (size_t i = 0; i < st->count; i++)
            if (st->members[i].kind == kind &&
                (kind != KEY_OTHER || same_key(r, &st->members[i].key, &key)))
                return DECLINE;
        /* field by field: a whole-struct literal is a 128-byte `rep stos`,
         * slow to start on some x86, once per key of the schema */
        struct member *m = &st->members[st->count++];
        m->key = key;
        m->kind = kind;
        m->done = m->pinned = false;
        struct value *v = &m->value;
        v->first.escaped = false;
        v->first.integer = 0;
        v->first.digest = 0;
        v->start = NULL;
        v->length = 0;
        if (sk_json_next(scan, &v->first, &r->err) == SK_JSON_ERROR)
            return DECLINE;
        int done = read_in_order(r, st, m, scan, inherited);
        if (done < 0)
            return DECLINE;
        if (done)
            continue;
        m->pinned = is_container(v->first.token);
        if (!m->pinned)
            sk_json_scalar_text(&v->first, &v->start, &v->length);
        else if (sk_json_skip(scan, &v->first, &v->start, &v->length, &r->err) != 0)
            return DECLINE;
    }
}

static int read_state(struct reader *r, struct sk_json_scan *scan, const struct sk_json_event *open,
                      unsigned inherited, struct result *out)
{
    struct state *st = state_at_level(r);
    if (st == NULL)
        return DECLINE;
    st->start = open->start;
    st->count = 0;
    free_copies(st);
    st->node = NULL;
    st->guessed = false;
    st->args_first = false;
    st->mark = r->schema->node_count;
    r->level++;
    int rc = read_members(r, st, scan, inherited);
    r->level--;
    if (rc != 0 || (st->guessed && !guess_held(r, st)))
        return DECLINE;
    size_t state_length = (size_t)(st->end - st->start);
    char *key;
    size_t key_length = 0;
    bool truthy, numeric;
    long long number = 0;
    if (memo_key(r, find(st, KEY_ID), &key, &key_length, &truthy, &numeric, &number) != 0)
        return DECLINE;
    struct memo_record *record = NULL;
    if (key && truthy)
        record = numeric ? id_table_get(&r->ids, number) : sk_strmap_get(r->memo, key, key_length);
    if (record != NULL && record->node != NULL) {
        struct sk_node *seen = record->node;
        const struct node_info *original = &r->info[seen->index];
        if (seen->index >= st->mark)
            return DECLINE; /* a state below took this one's id first */
        /* A node read ahead took this id before skops would have: the
         * same where both states are one childless node written alike. */
        int exact;
        if (in_window(r, seen->index) &&
            (cached_reference(r, st) || seen->slot_count != 0 || seen->loader == SK_LOADER_DICT ||
             (exact = compare_gone(r, st, seen->index, true)) < 0 ||
             (exact == 0 &&
              !same_tokens(st->start, state_length, original->start, original->length, false))))
            return DECLINE;
        roll_back(r, st->mark);
        bool same = true;
        int content;
        if (!cached_reference(r, st) &&
            ((content = compare_gone(r, st, seen->index, false)) < 0 ||
             (content == 0 && same_content(st->start, state_length, original->start,
                                           original->length, &same) != 0)))
            return DECLINE;
        *out = (struct result){.node = seen, .differs = !same};
        return 0;
    }
    if (record != NULL && record->last_miss != SIZE_MAX &&
        (record->last_miss >= st->mark || in_window(r, record->last_miss)))
        return DECLINE; /* looked up, below or ahead, before skops would make it */
    if (key && truthy && record == NULL) {
        record = (struct memo_record *)keep_in(
            &r->memo_chunks, (const char *)&(struct memo_record){0}, sizeof *record);
        if (record == NULL || (numeric ? id_table_put(&r->ids, number, record)
                                       : sk_strmap_put(r->memo, key, key_length, record)) != 0)
            return DECLINE;
    }
    if (make_node(r, st) != 0)
        return DECLINE;
    struct sk_node *node = st->node;
    if (record != NULL) {
        record->last_miss = st->mark;
        if (node->loader != SK_LOADER_CACHED) {
            record->node = node;
            r->info[node->index].record = record;
        }
    }
    r->info[node->index].start = state_length <= UINT32_MAX ? st->start : NULL;
    r->info[node->index].length = (uint32_t)state_length;
    if (record != NULL && r->texts_go) {
        struct node_info *info = &r->info[node->index];
        info->fingerprinted = fingerprint(st, &info->fingerprint);
        if (r->digest_all)
            r->state_digests[node->index] = st->digest;
    }
    r->level++; /* ST stays whole while its members are read */
    r->depth++;
    rc = read_rest(r, node, st, inherited);
    r->depth--;
    r->level--;
    if (rc != 0 || sk_node_contribute(node, inherited, NULL, &r->err) != 0)
        return DECLINE;
    sk_node_fit_slots(node);
    if (r->watch != NULL)
        r->watch->node_done(r->watch->context, node);
    *out = (struct result){.node = node, .fresh = true};
    return 0;
}

/* A value read ahead as a jansson value, for the version files. */
static json_t *as_json(const struct value *v, struct sk_json_arena **arena)
{
    const char *start = v->start;
    size_t length = v->length;
    if (v->first.token == SK_JSON_STRING || v->first.token == SK_JSON_KEY) {
        start = v->first.start - 1; /* with its quotes */
        length = v->first.length + 2;
    } else if (v->first.token != SK_JSON_OBJECT_START && v->first.token != SK_JSON_ARRAY_START) {
        start = v->first.start;
        length = v->first.length;
    }
    char *wrapped = malloc(length + 2);
    if (wrapped == NULL)
        return NULL;
    wrapped[0] = '[';
    memcpy(wrapped + 1, start, length);
    wrapped[length + 1] = ']';
    json_t *array;
    struct sk_error err = {0};
    int rc = sk_json_parse(wrapped, length + 2, &array, arena, &err);
    free(wrapped);
    return rc == 0 ? json_array_get(array, 0) : NULL;
}

static int read_root(struct reader *r, struct sk_json_scan *scan)
{
    struct sk_json_event event;
    struct result root;
    if (sk_json_next(scan, &event, &r->err) != SK_JSON_OBJECT_START ||
        read_state(r, scan, &event, 0, &root) != 0 ||
        sk_json_next(scan, &event, &r->err) != SK_JSON_END)
        return DECLINE;
    r->schema->root = root.node;
    r->level = 0;
    struct state *st = state_at_level(r);
    struct member *protocol = find(st, KEY_PROTOCOL);
    struct member *version = find(st, KEY_SKOPS_VERSION);
    if (protocol == NULL ||
        (r->form_dependent && protocol->value.first.token == SK_JSON_INTEGER &&
         (protocol->value.first.integer == 0 || protocol->value.first.integer == 1)))
        return DECLINE;
    struct sk_json_arena *protocol_arena = NULL, *version_arena = NULL;
    json_t *protocol_json = as_json(&protocol->value, &protocol_arena);
    json_t *version_json = version ? as_json(&version->value, &version_arena) : NULL;
    int rc = protocol_json == NULL || (version != NULL && version_json == NULL) ||
                     sk_schema_read_versions(r->schema, protocol_json, version_json, &r->err) != 0
                 ? DECLINE
                 : 0;
    if (protocol_arena)
        sk_json_arena_free(protocol_arena);
    if (version_arena)
        sk_json_arena_free(version_arena);
    return rc;
}

/* Streamed text: where the scanner may no longer look, the keys and scalars
 * of open states are copied out, and their containers passed over (read
 * again when the state closes) are kept. */

/* Moves EVENT's text (a key's or string's with its quotes) into a copy of ST's. */
static int copy_out(struct state *st, struct sk_json_event *event)
{
    size_t quoted = event->token == SK_JSON_KEY || event->token == SK_JSON_STRING;
    size_t length = event->length + 2 * quoted;
    struct copy *c = malloc(sizeof *c + length);
    if (c == NULL)
        return -1;
    memcpy(c->bytes, event->start - quoted, length);
    c->next = st->copies;
    st->copies = c;
    event->start = c->bytes + quoted;
    return 0;
}

static bool before(const char *p, const char *bound, const char *text)
{
    return (uintptr_t)p >= (uintptr_t)text && (uintptr_t)p < (uintptr_t)bound;
}

/* The first byte the open states still read: their pinned containers', or AT. */
static const char *still_read_from(const struct reader *r, const char *at)
{
    const char *bound = at;
    for (unsigned level = r->level; level-- > 0;) {
        const char *start = r->states[level]->start;
        if ((uintptr_t)at - (uintptr_t)start > OPEN_STATE_KEPT_BYTES)
            break;
        bound = start;
    }
    for (unsigned level = 0; level < r->level; level++) {
        const struct state *st = r->states[level];
        for (size_t i = 0; i < st->count; i++)
            if (st->members[i].pinned &&
                (uintptr_t)st->members[i].value.first.start < (uintptr_t)bound)
                bound = st->members[i].value.first.start;
    }
    return bound;
}

static int copy_out_before(struct reader *r, const char *bound)
{
    const char *text = sk_text_window_text(r->window);
    for (unsigned level = 0; level < r->level; level++) {
        struct state *st = r->states[level];
        for (size_t i = 0; i < st->count; i++) {
            struct member *m = &st->members[i];
            if (before(m->key.start, bound, text) && copy_out(st, &m->key) != 0)
                return -1;
            if (!is_container(m->value.first.token) && before(m->value.first.start, bound, text) &&
                copy_out(st, &m->value.first) != 0)
                return -1;
        }
    }
    return 0;
}

static int more_text(void *context, struct sk_json_scan *scan)
{
    struct reader *r = context;
    const char *bound = still_read_from(r, scan->at);
    if (copy_out_before(r, bound) != 0)
        return -1;
    sk_text_window_release(r->window, bound);
    r->live_from = sk_text_window_live_from(r->window);
    return sk_text_window_more(r->window, &scan->end, &scan->whole, &r->err);
}

static int read_all(struct sk_store *store, const struct sk_limits *limits,
                    struct sk_text_window *window, bool digest_all,
                    const struct sk_node_watch *watch, struct sk_json_scan *scan,
                    struct sk_schema **out, bool *met_gone_alias)
{
    *out = NULL;
    struct reader r = {
        .store = store,
        .schema = sk_graph_new(limits),
        .memo = sk_strmap_new(),
        .names = sk_strmap_new_remembering(),
        .max_key_bytes = limits && limits->key_bytes ? limits->key_bytes : SK_MAX_KEY_BYTES,
        .window = window,
        .digest_all = digest_all,
        .watch = watch,
    };
    if (window != NULL)
        sk_json_scan_init_streamed(scan, sk_text_window_text(window), more_text, &r);
    r.main_digests.skips_value = id_or_file;
    if (digest_all)
        sk_json_scan_digest(scan, &r.main_digests);
    r.live_from = scan->text;
    r.texts_go = window != NULL && sk_text_window_gives_back(window);
    int rc = r.schema && r.memo && r.names ? read_root(&r, scan) : DECLINE;
    sk_strmap_free(r.memo);
    sk_strmap_free(r.names);
    for (size_t i = 0; i < r.state_capacity; i++) {
        if (r.states[i] != NULL)
            free_copies(r.states[i]);
        free(r.states[i]);
    }
    free(r.states);
    free(r.windows);
    free(r.ids.slots);
    free(r.info);
    free(r.main_digests.open);
    free(r.state_digests);
    for (size_t i = 0; i < r.digest_levels; i++) {
        if (r.digests[i] != NULL)
            free(r.digests[i]->open);
        free(r.digests[i]);
    }
    free(r.digests);
    *met_gone_alias = r.met_gone_alias;
    free(r.scratch);
    free(r.memo_key);
    free_chunks(r.memo_chunks);
    if (r.schema != NULL)
        sk_graph_keep(r.schema, r.chunks, free_chunks);
    else
        free_chunks(r.chunks);
    if (rc != 0) {
        sk_schema_free(r.schema);
        return SK_SCAN_DECLINED;
    }
    *out = r.schema;
    return 0;
}

int sk_schema_scan_load(const char *text, size_t length, struct sk_store *store,
                        const struct sk_limits *limits, struct sk_schema **out)
{
    struct sk_json_scan scan;
    sk_json_scan_init(&scan, text, length);
    bool met_gone_alias;
    return read_all(store, limits, NULL, false, NULL, &scan, out, &met_gone_alias);
}

int sk_schema_scan_source(struct sk_source *source, const struct sk_text_window_options *options,
                          bool digest_all, struct sk_store *store, const struct sk_limits *limits,
                          const struct sk_node_watch *watch, struct sk_schema **out)
{
    *out = NULL;
    struct sk_error err = {0};
    struct sk_text_window *window;
    if (sk_text_window_open(source, options, &window, &err) != 0)
        return SK_SCAN_DECLINED;
    struct sk_json_scan scan;
    bool met_gone_alias = false;
    int rc = read_all(store, limits, window, digest_all, watch, &scan, out, &met_gone_alias);
    sk_text_window_close(window);
    if (rc != 0 && met_gone_alias)
        return digest_all ? SK_SCAN_TEXT_GONE : SK_SCAN_DIGESTS_WANTED;
    /* Every byte was read once, in order: the source's verdict is on them. */
    if (rc == 0 && source->ops->verify != NULL && source->ops->verify(source, &err) != 0) {
        sk_schema_free(*out);
        *out = NULL;
        rc = SK_SCAN_DECLINED;
    }
    return rc;
}
