/* skopsfs: audit and browse .skops model files without Python or FUSE.
 * `ls` and `cat` show exactly the entries and bytes a mount would. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "commands.h"
#include "pickle_store.h"
#include "npyvalue.h"
#include "pages.h"
#include "progress.h"

#define COPY_CHUNK (1u << 20)
/* Heap in 2 MiB pages: a 500-tree forest's nodes fit, audit 0.16 -> 0.13 s */
#define HEAP_RESERVE_BYTES ((size_t)64 << 20)
/* --depth and the --max-* limits: larger numbers are surely mistakes. */
#define MAX_OPTION_NUMBER (1ull << 40)

const char *program = "skopsfs";

/* Options by the code getopt returns. A command accepts the codes in its
 * table row's `options`, and every command the shared ones below. */
#define SHARED_OPTIONS "tTSNECKPOMVAJXh"

static const struct option long_options[] = {
    {"trust", required_argument, NULL, 't'},
    {"trust-file", required_argument, NULL, 'T'},
    {"json", no_argument, NULL, 'j'},
    {"zero", no_argument, NULL, 'z'},
    {"depth", required_argument, NULL, 'D'},
    {"max-schema-mb", required_argument, NULL, 'S'},
    {"max-nodes", required_argument, NULL, 'N'},
    {"max-entries", required_argument, NULL, 'E'},
    {"max-children", required_argument, NULL, 'C'},
    {"max-key-bytes", required_argument, NULL, 'K'},
    {"max-pickle-mb", required_argument, NULL, 'P'},
    {"max-pickle-opcodes", required_argument, NULL, 'O'},
    {"max-pickle-memo", required_argument, NULL, 'M'},
    {"max-pickle-values", required_argument, NULL, 'V'},
    {"max-pickle-arena-mb", required_argument, NULL, 'A'},
    {"max-pickle-schema-mb", required_argument, NULL, 'J'},
    {"no-content-checks", no_argument, NULL, 'X'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};
/* The options that have a one-letter form. */
#define SHORT_OPTIONS "adlRh"

static int audit(struct cli_options *options, int count, char **operands);
static int tree(struct cli_options *options, int count, char **operands);
static int ls(struct cli_options *options, int count, char **operands);
static int cat(struct cli_options *options, int count, char **operands);
static int verify(struct cli_options *options, int count, char **operands);

#define NO_LIMIT (-1)

struct command {
    const char *name;
    int (*run)(struct cli_options *options, int count, char **operands);
    const char *options;            /* the option codes it takes beyond SHARED_OPTIONS */
    int min_operands, max_operands; /* NO_LIMIT: any number */
    const char *synopsis;
    const char *summary;
};

static const struct command commands[] = {
    {"audit", audit, "j", 1, NO_LIMIT, "[--json] FILE...",
     "print the types still untrusted, one a line (exit 1 if any)"},
    {"tree", tree, "jD", 1, 2, "[--depth N] [--json] FILE [PATH]",
     "show every node, refused ones too, and what each needs trusted"},
    {"ls", ls, "adlRzj", 1, 2, "[-a] [-d] [-l] [-R] [--zero] [--json] FILE [PATH]",
     "list entries as mount.skopsfs shows them"},
    {"cat", cat, "", 2, NO_LIMIT, "FILE PATH...",
     "print entries' bytes as mount.skopsfs serves them"},
    {"show", cli_show, "", 1, 2, "FILE [PATH]",
     "each estimator's class, hyperparameters and fitted attributes"},
    {"diff", cli_diff, "j", 2, 2, "[--json] A B",
     "what changed between two models (exit 1 if anything)"},
    {"verify", verify, "", 1, NO_LIMIT, "FILE...",
     "check every member's CRC-32 and length, like unzip -t (exit 1 if any is bad)"},
    {"convert", cli_convert, "", 2, 2, "PICKLE OUT.skops",
     "write a pickle or joblib file as .skops, never running it (refuses what is untrusted)"},
};
#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static const char trust_synopsis[] = "[--trust TYPE]... [--trust-file F] ";

static void usage(FILE *out)
{
    fprintf(out, "usage: skopsfs COMMAND [OPTION]... FILE...\n\n");
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        fprintf(out, "  %-6s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n"
                 "Every command takes --trust TYPE (repeatable), --trust-file F,\n"
                 "--max-schema-mb N, --max-nodes N, --max-entries N, --max-children N and\n"
                 "--max-key-bytes N to raise the limits on what an archive may hold,\n"
                 "--max-pickle-mb N, --max-pickle-opcodes N, --max-pickle-memo N,\n"
                 "--max-pickle-values N, --max-pickle-arena-mb N and --max-pickle-schema-mb N\n"
                 "to raise those on what a pickle or joblib file may hold, and\n"
                 "--no-content-checks to skip judging tree arrays (audit then reads only\n"
                 "the schema).\n"
                 "`skopsfs help COMMAND` or `skopsfs COMMAND --help` describes one;\n"
                 "`skopsfs --version` prints the version. See skopsfs(1).\n");
}

static void command_usage(const struct command *command, FILE *out, bool full)
{
    fprintf(out, "usage: skopsfs %s %s%s\n", command->name, trust_synopsis, command->synopsis);
    if (full)
        fprintf(out,
                "\n%s.\n\nIt also takes --max-schema-mb N, --max-nodes N, --max-entries N, "
                "--max-children N,\n--max-key-bytes N, --max-pickle-mb N, --max-pickle-opcodes "
                "N,\n--max-pickle-memo N, --max-pickle-values N, --max-pickle-arena-mb N,\n"
                "--max-pickle-schema-mb N and --no-content-checks.\n",
                command->summary);
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* A positive count of at most MAX from an option's text, or 0 when it is
 * not one. */
static unsigned long long parse_count(const char *text, unsigned long long max)
{
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    bool valid = errno == 0 && *end == '\0' && text[0] >= '0' && text[0] <= '9';
    return valid && value <= max ? value : 0;
}

/* The option as the user wrote it, for a message: "--depth", "-x". */
static void option_spelling(int code, int long_index, char *buffer, size_t size)
{
    if (long_index >= 0)
        snprintf(buffer, size, "--%s", long_options[long_index].name);
    else
        snprintf(buffer, size, "-%c", code);
}

/* The --max-* options: the limit each sets, and whether it is given in MiB
 * (shifted into bytes: it must fit in 64 bits then). */
static const struct limit_option {
    int code;
    size_t field; /* in struct sk_limits */
    bool megabytes;
} limit_options[] = {
    {'S', offsetof(struct sk_limits, schema_bytes), true},
    {'N', offsetof(struct sk_limits, nodes), false},
    {'E', offsetof(struct sk_limits, entries), false},
    {'C', offsetof(struct sk_limits, children), false},
    {'K', offsetof(struct sk_limits, key_bytes), false},
    {'P', offsetof(struct sk_limits, pickle_bytes), true},
    {'O', offsetof(struct sk_limits, pickle_opcodes), false},
    {'M', offsetof(struct sk_limits, pickle_memo), false},
    {'V', offsetof(struct sk_limits, pickle_values), false},
    {'A', offsetof(struct sk_limits, pickle_arena_bytes), true},
    {'J', offsetof(struct sk_limits, pickle_schema_bytes), true},
};

static const struct limit_option *find_limit_option(int code)
{
    for (size_t i = 0; i < sizeof limit_options / sizeof *limit_options; i++)
        if (limit_options[i].code == code)
            return &limit_options[i];
    return NULL;
}

static int set_number(struct cli_options *options, int code, const char *spelling)
{
    const struct limit_option *limit = find_limit_option(code);
    bool megabytes = limit != NULL && limit->megabytes;
    unsigned long long value = parse_count(optarg, megabytes ? ~0ULL >> 20 : MAX_OPTION_NUMBER);
    if (value == 0) {
        fprintf(stderr, "%s: %s needs a positive number%s, not '%s'\n", program, spelling,
                megabytes ? " of MiB that fits in 64 bits of bytes" : "", optarg);
        return -1;
    }
    if (limit == NULL)
        options->depth = value;
    else
        *(unsigned long long *)((char *)&options->limits + limit->field) =
            megabytes ? value << 20 : value;
    return 0;
}

/* Sets one option the command accepts. */
static int set_option(struct cli_options *options, int code, const char *spelling)
{
    struct sk_error err = {0};
    switch (code) {
    case 't':
        if (sk_allowlist_add(options->allowlist, optarg, &err) != 0)
            break;
        return 0;
    case 'T':
        if (sk_allowlist_load_file(options->allowlist, optarg, &err) != 0)
            break;
        return 0;
    case 'S':
    case 'N':
    case 'E':
    case 'C':
    case 'K':
    case 'P':
    case 'O':
    case 'M':
    case 'V':
    case 'A':
    case 'J':
    case 'D':
        return set_number(options, code, spelling);
    case 'X':
        options->no_content_checks = true;
        return 0;
    case 'j':
        options->json = true;
        return 0;
    case 'z':
        options->zero = true;
        return 0;
    case 'a':
        options->all = true;
        return 0;
    case 'l':
        options->long_format = true;
        return 0;
    case 'R':
        options->recursive = true;
        return 0;
    case 'd':
        options->directory_itself = true;
        return 0;
    }
    fprintf(stderr, "%s: %s\n", program, err.message);
    return -1;
}

/* Parses ARGV (the command's name first) by the command's table row.
 * Returns 0, 1 when --help was answered, or -1 after printing why not. */
static int parse_options(const struct command *command, int argc, char **argv,
                         struct cli_options *options)
{
    options->allowlist = sk_allowlist_new();
    if (options->allowlist == NULL) {
        fprintf(stderr, "%s: out of memory\n", program);
        return -1;
    }
    optind = 1;
    opterr = 0; /* one line of our own instead of getopt's */
    for (;;) {
        int long_index = -1;
        int code = getopt_long(argc, argv, ":" SHORT_OPTIONS, long_options, &long_index);
        if (code == -1)
            return 0;
        char spelling[64];
        if (code == '?' || code == ':') {
            const char *written = argv[optind - 1];
            if (strncmp(written, "--", 2) == 0) /* as written, up to any '=' */
                snprintf(spelling, sizeof spelling, "%.*s", (int)strcspn(written, "="), written);
            else
                snprintf(spelling, sizeof spelling, "-%c", optopt);
            fprintf(stderr, "%s %s: %s %s\n", program, command->name,
                    code == ':' ? "missing value for" : "unknown option", spelling);
            return -1;
        }
        option_spelling(code, long_index, spelling, sizeof spelling);
        if (strchr(SHARED_OPTIONS, code) == NULL && strchr(command->options, code) == NULL) {
            fprintf(stderr, "%s %s: unknown option %s\n", program, command->name, spelling);
            return -1;
        }
        if (code == 'h') {
            command_usage(command, stdout, true);
            return 1;
        }
        if (set_option(options, code, spelling) != 0)
            return -1;
    }
}

struct sk_model *cli_open_model(const char *path, const struct cli_options *options, bool layout,
                                bool npy_headers)
{
    struct sk_error err = {0};
    struct sk_model *model;
    struct sk_model_options model_options = {.allowlist = options->allowlist,
                                             .build_layout = layout,
                                             .read_npy_headers = npy_headers,
                                             .check_content = !options->no_content_checks,
                                             .limits = options->limits};
    if (sk_model_open(path, &model_options, &model, &err) != 0) {
        fprintf(stderr, "%s: %s\n", program, err.message);
        return NULL;
    }
    return model;
}

static struct sk_model *kept_until_exit;

void cli_close_model_at_exit(struct sk_model *model)
{
    sk_model_close(kept_until_exit);
    kept_until_exit = model;
}

static void print_json_string(const char *s)
{
    json_t *string = json_string(s);
    char *dumped = string ? json_dumps(string, JSON_ENCODE_ANY) : NULL;
    fputs(dumped ? dumped : "\"\"", stdout);
    free(dumped);
    json_decref(string);
}

/* Content problems follow the untrusted types as "# content: PATH: CODE ..."
 * lines: a trust file skips '#' lines, so no problem can become a type to
 * trust by piping audit's output into --trust-file. */
static void print_problems(const struct sk_content_report *content, const char *indent)
{
    for (size_t i = 0; content != NULL && i < content->count; i++) {
        char *line = sk_content_problem_text(&content->problems[i]);
        printf("%s# content: %s\n", indent, line ? line : "(out of memory)");
        free(line);
    }
}

static void print_problems_json(const struct sk_content_report *content)
{
    if (content == NULL || content->count == 0)
        return;
    fputs(", \"problems\": [", stdout);
    for (size_t i = 0; i < content->count; i++) {
        const struct sk_content_problem *p = &content->problems[i];
        fputs(i ? ", {\"path\": " : "{\"path\": ", stdout);
        print_json_string(p->path);
        fputs(", \"code\": ", stdout);
        print_json_string(p->code);
        if (p->has_record)
            printf(", \"node\": %llu", (unsigned long long)p->record);
        if (p->key != NULL) {
            fputs(", \"key\": ", stdout);
            print_json_string(p->key);
        }
        fputs("}", stdout);
    }
    fputs("]", stdout);
}

static const struct sk_pickle_map *audited_pickle(const struct sk_model *model)
{
    struct sk_pickle_file *file = sk_pickle_file_of(model->store);
    return file != NULL ? sk_pickle_file_map(file) : NULL;
}

/* One line a part no skops node can stand for, marked so that the output
 * can never serve as a trust list ("!" starts no type name, and a trust
 * list holding one is refused). */
static void print_unrepresentable(const struct sk_pickle_map *map)
{
    for (size_t i = 0; i < map->finding_count; i++) {
        const struct sk_pickle_finding *finding = &map->findings[i];
        printf("%c%s\tunrepresentable at offset %llu: %s\n", SK_UNREPRESENTABLE_MARK,
               finding->global[0] ? finding->global : "-", (unsigned long long)finding->offset,
               finding->reason);
    }
}

static void print_unrepresentable_json(const struct sk_pickle_map *map)
{
    fputs(", \"unrepresentable\": [", stdout);
    for (size_t i = 0; i < map->finding_count; i++) {
        const struct sk_pickle_finding *finding = &map->findings[i];
        fputs(i ? ", {\"global\": " : "{\"global\": ", stdout);
        print_json_string(finding->global);
        printf(", \"offset\": %llu, \"reason\": ", (unsigned long long)finding->offset);
        print_json_string(finding->reason);
        fputs("}", stdout);
    }
    fputs("]", stdout);
}

static int audit(struct cli_options *options, int files, char **operands)
{
    int status = 0;
    if (options->json && files > 1)
        fputs("[", stdout);
    for (int f = 0; f < files; f++) {
        const char *path = operands[f];
        struct sk_model *model = cli_open_model(path, options, false, false);
        if (model == NULL) {
            status = EXIT_UNREADABLE;
            continue;
        }
        char **names;
        size_t count;
        struct sk_error err = {0};
        if (sk_schema_untrusted(model->schema, &names, &count, &err) != 0) {
            fprintf(stderr, "%s: %s: %s\n", program, path, err.message);
            sk_model_close(model);
            status = EXIT_UNREADABLE;
            continue;
        }
        size_t kept = sk_allowlist_filter(options->allowlist, names, count);
        /* a pickle's unrepresentable parts are reported from its findings,
         * with their offsets, apart from the trust list */
        size_t marked = 0;
        while (marked < kept && names[marked][0] == SK_UNREPRESENTABLE_MARK)
            marked++;
        const struct sk_pickle_map *map = audited_pickle(model);
        if ((kept > 0 || (map != NULL && map->finding_count > 0)) && status == 0)
            status = EXIT_FOUND_UNTRUSTED;
        if (options->json) {
            fputs(f > 0 && files > 1 ? ",\n{\"file\": " : "{\"file\": ", stdout);
            print_json_string(path);
            fputs(", \"untrusted\": [", stdout);
            for (size_t i = marked; i < kept; i++) {
                fputs(i > marked ? ", " : "", stdout);
                print_json_string(names[i]);
            }
            fputs("]", stdout);
            if (map != NULL)
                print_unrepresentable_json(map);
            print_problems_json(model->content);
            fputs("}", stdout);
        } else {
            if (files > 1)
                printf("%s%s:\n", f > 0 ? "\n" : "", path);
            if (map != NULL)
                print_unrepresentable(map);
            for (size_t i = marked; i < kept; i++)
                printf("%s\n", names[i]);
            print_problems(model->content, "");
        }
        if (model->content != NULL && model->content->count > 0 && status == 0)
            status = EXIT_FOUND_UNTRUSTED;
        sk_string_list_free(names, kept);
        cli_close_model_at_exit(model);
    }
    if (options->json)
        fputs(files > 1 ? "]\n" : "\n", stdout);
    return status;
}

/* Bytes read for a 0-d array's value: numpy's widest scalars are 32. */
#define MAX_SCALAR_BYTES 256
/* Where `tree` cuts a value to keep one line. */
#define VALUE_COLUMNS 72

/* Longer text is cut anyway; an int must hold the length for "%.*s". */
#define MAX_TEXT_LENGTH (1 << 30)

int cli_text_length(const struct sk_entry *entry)
{
    uint64_t size = entry->size;
    if (size > 0 && entry->text[size - 1] == '\n')
        size--;
    return size > MAX_TEXT_LENGTH ? MAX_TEXT_LENGTH : (int)size;
}

bool cli_scalar_text(const struct sk_layout *layout, const struct sk_entry *entry, char *buffer,
                     size_t size)
{
    if (entry->npy == NULL || entry->npy->ndim != 0)
        return false;
    size_t item = sk_npy_item_size(entry->npy->descr);
    if (item == 0 || item > MAX_SCALAR_BYTES)
        return false;
    unsigned char bytes[MAX_SCALAR_BYTES];
    struct sk_error err = {0};
    struct sk_source *source;
    if (sk_entry_open(layout, entry, &source, &err) != 0)
        return false;
    ssize_t got = sk_source_pread(source, bytes, item, entry->npy->data_offset, &err);
    sk_source_close(source);
    return got == (ssize_t)item &&
           sk_npy_scalar_text(entry->npy, bytes, (size_t)got, buffer, size) >= 0;
}

int cli_find_entry(const struct sk_layout *layout, const char *path, const struct sk_entry **out)
{
    const struct sk_entry *current = layout->root;
    const char *rest = path;
    while (*rest != '\0') {
        size_t length = strcspn(rest, "/");
        const char *component = rest;
        rest += length;
        rest += strspn(rest, "/");
        if (length == 0 || (length == 1 && component[0] == '.'))
            continue;
        if (current->kind != SK_ENTRY_DIR)
            return ENOTDIR;
        if (length == 2 && memcmp(component, "..", 2) == 0) {
            if (current->parent != NULL)
                current = current->parent;
            continue;
        }
        char *name = strndup(component, length);
        if (name == NULL)
            return ENOMEM;
        const struct sk_entry *next = sk_entry_child(current, name);
        free(name);
        if (next == NULL)
            return ENOENT;
        /* A link's target is the shared node's first entry, never a link. */
        if (next->kind == SK_ENTRY_SYMLINK && *rest != '\0')
            next = next->target;
        current = next;
    }
    *out = current;
    return 0;
}

static void print_value(const char *text, int length)
{
    int shown = length > VALUE_COLUMNS ? VALUE_COLUMNS - 3 : length;
    printf(" = %.*s%s", shown, text, length > shown ? "..." : "");
}

void cli_print_needs(const struct sk_entry *entry)
{
    printf("  [needs ");
    for (size_t k = 0; k < entry->need_count; k++)
        printf("%s%s", k ? ", " : "", entry->needs[k]);
    printf("]");
}

/* One entry's facts on its line. Under a refused node the loader is shown
 * too: it is what skops would run once the types are trusted. */
static void describe(const struct sk_layout *layout, const struct sk_entry *entry, bool review)
{
    const struct sk_node *node = entry->node;
    if (entry->kind == SK_ENTRY_SYMLINK) {
        printf(" -> %s", entry->link_text);
        return;
    }
    bool json = node != NULL && node->loader == SK_LOADER_JSON;
    if (node != NULL && entry->role == SK_ROLE_NODE && !json)
        printf("  %s", node->type_name);
    if (node != NULL && entry->role == SK_ROLE_NODE && (review || entry->refused))
        printf("  (%s)", sk_loader_name(node->loader));
    if (entry->kind == SK_ENTRY_FILE) {
        char scalar[VALUE_COLUMNS + 1];
        if (entry->npy != NULL) {
            char shape[SK_MAX_NPY_DIMS * 21 + 1];
            sk_npy_format_shape(entry->npy, shape, sizeof shape);
            printf("  dtype %s, shape (%s%s)%s", entry->npy->descr, shape,
                   entry->npy->ndim == 1 ? "," : "",
                   entry->npy->fortran_order ? ", Fortran order" : "");
            if (cli_scalar_text(layout, entry, scalar, sizeof scalar))
                print_value(scalar, (int)strlen(scalar));
        } else if (entry->npy_error != NULL) {
            printf("  (no dtype: %s)", entry->npy_error);
        } else if (entry->text != NULL) {
            print_value(entry->text, cli_text_length(entry));
        } else {
            printf("  %llu bytes", (unsigned long long)entry->size);
        }
    }
    if (entry->refused)
        cli_print_needs(entry);
}

/* An entry's content problems, one a line under it, marked "!!". */
static void print_entry_problems(const struct sk_entry *entry, unsigned long long level)
{
    const char *line = entry->problems;
    const char *end = line + entry->problems_length;
    while (line != NULL && line < end) {
        const char *stop = memchr(line, '\n', (size_t)(end - line));
        size_t length = stop ? (size_t)(stop - line) : (size_t)(end - line);
        printf("%*s!! %.*s\n", (int)(level * 2), "", (int)length, line);
        line += length + 1;
    }
}

/* Prints DIRECTORY's entries from LEVEL (1 for its children) to the
 * options' depth. Refused directories are entered too: reading the schema
 * materializes nothing, and this is where a reviewer looks. */
static void print_tree(const struct sk_layout *layout, const struct sk_entry *directory,
                       unsigned long long level, bool review, const struct cli_options *options)
{
    for (size_t i = 0; i < directory->child_count; i++) {
        const struct sk_entry *child = directory->children[i];
        if (child->role == SK_ROLE_TYPEFILE || child->role == SK_ROLE_META)
            continue;
        printf("%*s%s%s", (int)(level * 2), "", child->name,
               child->kind == SK_ENTRY_DIR ? "/" : "");
        describe(layout, child, review);
        printf("\n");
        print_entry_problems(child, level + 1);
        if (child->kind == SK_ENTRY_DIR && (options->depth == 0 || level < options->depth))
            print_tree(layout, child, level + 1, review || child->refused, options);
    }
}

static bool under_refused(const struct sk_entry *entry)
{
    for (; entry != NULL; entry = entry->parent)
        if (entry->refused)
            return true;
    return false;
}

static int tree(struct cli_options *options, int count, char **operands)
{
    struct sk_model *model = cli_open_model(operands[0], options, true, true);
    if (model == NULL)
        return EXIT_UNREADABLE;
    const struct sk_layout *layout = model->layout;
    const char *path = count > 1 ? operands[1] : "";
    const struct sk_entry *start;
    int error = cli_find_entry(layout, path, &start);
    if (error != 0) {
        fprintf(stderr, "%s: tree: cannot access '%s': %s\n", program, path, strerror(error));
        sk_model_close(model);
        return EXIT_ENTRY_ERROR;
    }
    if (options->json) {
        int status = cli_tree_json(model, operands[0], start, options);
        sk_model_close(model);
        return status;
    }
    const char *version_json = model->schema->skops_version_json;
    json_t *version =
        version_json ? json_loads(version_json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
    printf("%s  (%s)  protocol %s, skops %s\n", operands[0], model->schema->root->type_name,
           model->schema->protocol_json,
           json_is_string(version) ? json_string_value(version) : "?");
    json_decref(version);
    if (start != layout->root) {
        printf("%s%s", path, start->kind == SK_ENTRY_DIR ? "/" : "");
        describe(layout, start, under_refused(start->parent));
        printf("\n");
    }
    print_entry_problems(start, 1);
    if (start->kind == SK_ENTRY_DIR)
        print_tree(layout, start, 1, under_refused(start), options);
    if (model->content != NULL && model->content->count > 0) {
        printf("\ncontent problems (scikit-learn would read out of bounds or go wrong):\n");
        print_problems(model->content, "  ");
    }
    if (layout->untrusted_count > 0) {
        printf("\nuntrusted types (refused above; trust with --trust TYPE or -o trust=TYPE):\n");
        for (size_t i = 0; i < layout->untrusted_count; i++)
            printf("  %s\n", layout->untrusted[i]);
    }
    cli_close_model_at_exit(model);
    return 0;
}

static int report(const char *command, const char *path, int error)
{
    fprintf(stderr, "%s: %s: cannot access '%s': %s\n", program, command, path, strerror(error));
    return EXIT_ENTRY_ERROR;
}

static int compare_entries(const void *a, const void *b)
{
    return strcmp((*(const struct sk_entry *const *)a)->name,
                  (*(const struct sk_entry *const *)b)->name);
}

/* MODE as ls -l shows it: "dr-xr-xr-x". */
static void mode_text(mode_t mode, char text[11])
{
    text[0] = S_ISDIR(mode) ? 'd' : S_ISLNK(mode) ? 'l' : '-';
    for (int bit = 0; bit < 9; bit++)
        text[1 + bit] = mode & (0400u >> bit) ? "rwx"[bit % 3] : '-';
    text[10] = '\0';
}

static void print_long(const struct sk_entry *entry)
{
    struct sk_entry_stat st;
    sk_entry_stat(entry, &st);
    char mode[11];
    mode_text(st.mode, mode);
    printf("%s %lu %10llu %s", mode, st.nlink, (unsigned long long)st.size, entry->name);
    if (entry->kind == SK_ENTRY_SYMLINK)
        printf(" -> %s", entry->link_text);
    printf("\n");
}

static int list_directory(const struct sk_entry *directory, const char *shown,
                          const struct cli_options *options, bool heading)
{
    if (directory->refused || !directory->reachable) {
        fprintf(stderr, "%s: ls: cannot open directory '%s': %s\n", program, shown,
                strerror(EACCES));
        return EXIT_ENTRY_ERROR;
    }
    if (heading)
        printf("%s:\n", shown);
    const struct sk_entry **sorted = malloc((directory->child_count + 1) * sizeof *sorted);
    if (sorted == NULL)
        return EXIT_UNREADABLE;
    size_t count = 0;
    for (size_t i = 0; i < directory->child_count; i++)
        if (options->all || directory->children[i]->name[0] != '.')
            sorted[count++] = directory->children[i];
    qsort(sorted, count, sizeof *sorted, compare_entries);
    for (size_t i = 0; i < count; i++) {
        if (options->long_format)
            print_long(sorted[i]);
        else
            printf("%s%c", sorted[i]->name, options->zero ? '\0' : '\n');
    }
    int status = 0;
    if (options->recursive) {
        for (size_t i = 0; i < count; i++) {
            if (sorted[i]->kind != SK_ENTRY_DIR)
                continue;
            char *child_path;
            if (asprintf(&child_path, "%s/%s", shown, sorted[i]->name) < 0)
                continue;
            printf("\n");
            int rc = list_directory(sorted[i], child_path, options, true);
            if (rc > status)
                status = rc;
            free(child_path);
        }
    }
    free(sorted);
    return status;
}

static int ls(struct cli_options *options, int count, char **operands)
{
    struct sk_model *model = cli_open_model(operands[0], options, true, options->json);
    if (model == NULL)
        return EXIT_UNREADABLE;
    const char *path = count == 2 ? operands[1] : "";
    const struct sk_entry *entry;
    int status;
    /* As ls(1): a link named on the command line is followed, but not with -l or -d. */
    int error = sk_layout_resolve(model->layout, path,
                                  !options->long_format && !options->directory_itself, &entry);
    bool list_children = error == 0 && entry->kind == SK_ENTRY_DIR && !options->directory_itself;
    if (error != 0) {
        status = report("ls", path, error);
    } else if (options->json) {
        status = cli_ls_json(model, entry, list_children, options);
    } else if (list_children) {
        status = list_directory(entry, *path ? path : ".", options, options->recursive);
    } else {
        if (options->long_format)
            print_long(entry);
        else
            printf("%s\n", *path ? path : ".");
        status = 0;
    }
    cli_close_model_at_exit(model);
    return status;
}

/* Writes one entry's bytes to standard output; returns an exit status. */
static int cat_one(const struct sk_layout *layout, const char *path, char *buffer)
{
    const struct sk_entry *entry;
    int error = sk_layout_resolve(layout, path, true, &entry);
    if (error == 0 && entry->kind == SK_ENTRY_DIR)
        error = EISDIR;
    if (error == 0 && entry->refused)
        error = EACCES;
    if (error != 0)
        return report("cat", path, error);
    struct sk_error err = {0};
    struct sk_source *source;
    if (sk_entry_open(layout, entry, &source, &err) != 0) {
        fprintf(stderr, "%s: cat: %s: %s\n", program, path, err.message);
        return EXIT_UNREADABLE;
    }
    int status = 0;
    for (uint64_t offset = 0;;) {
        ssize_t got = sk_source_pread(source, buffer, COPY_CHUNK, offset, &err);
        if (got < 0) {
            fprintf(stderr, "%s: cat: %s: %s\n", program, path, err.message);
            status = EXIT_UNREADABLE;
            break;
        }
        if (got == 0)
            break;
        if (fwrite(buffer, 1, (size_t)got, stdout) != (size_t)got) {
            fprintf(stderr, "%s: cat: write error: %s\n", program, strerror(errno));
            status = EXIT_UNREADABLE;
            break;
        }
        offset += (uint64_t)got;
    }
    sk_source_close(source);
    return status;
}

static int cat(struct cli_options *options, int count, char **operands)
{
    struct sk_model *model = cli_open_model(operands[0], options, true, false);
    char *buffer = malloc(COPY_CHUNK);
    int status = EXIT_UNREADABLE;
    if (model != NULL && buffer != NULL) {
        /* As cat(1): every path in turn; a failed one does not stop the rest. */
        status = 0;
        for (int i = 1; i < count; i++) {
            int rc = cat_one(model->layout, operands[i], buffer);
            if (rc > status)
                status = rc;
        }
    }
    free(buffer);
    sk_model_close(model);
    return status;
}

/* Checks every member of one archive, like unzip -t; returns an exit status. */
static int verify_one(const char *path, const struct sk_limits *limits)
{
    struct sk_error err = {0};
    struct sk_store *store;
    if (sk_model_open_store_limited(path, limits, &store, &err) != 0) {
        fprintf(stderr, "%s: %s\n", program, err.message);
        return EXIT_UNREADABLE;
    }
    uint64_t count = sk_store_member_count(store), total = 0, done = 0;
    struct sk_member_info info;
    for (uint64_t i = 0; i < count; i++) {
        sk_store_member_info(store, i, &info);
        total += info.size;
    }
    struct progress progress;
    progress_start(&progress, "verify: checking", total);
    int status = 0;
    for (uint64_t i = 0; i < count; i++) {
        sk_error_clear(&err);
        if (sk_store_verify(store, i, &err) != 0) {
            progress_end(&progress);
            printf("%s: %s\n", path, err.message);
            status = EXIT_ENTRY_ERROR;
        }
        sk_store_member_info(store, i, &info);
        done += info.size;
        progress_update(&progress, done);
    }
    progress_end(&progress);
    sk_store_close(store);
    return status;
}

static int verify(struct cli_options *options, int count, char **operands)
{
    (void)options;
    int status = 0;
    for (int i = 0; i < count; i++) {
        int rc = verify_one(operands[i], &options->limits);
        if (rc > status)
            status = rc;
    }
    return status;
}

/* Runs one command: its options, its operands, then its work. */
static int run_command(const struct command *command, int argc, char **argv)
{
    struct cli_options options = {0};
    int parsed = parse_options(command, argc, argv, &options);
    int status = parsed < 0 ? EXIT_UNREADABLE : 0;
    int count = argc - optind;
    if (parsed == 0 && (count < command->min_operands ||
                        (command->max_operands != NO_LIMIT && count > command->max_operands))) {
        fprintf(stderr, "%s %s: %s\n", program, command->name,
                count < command->min_operands ? "missing operand" : "too many operands");
        command_usage(command, stderr, false);
        status = EXIT_UNREADABLE;
    } else if (parsed == 0) {
        status = command->run(&options, count, argv + optind);
    }
    sk_allowlist_free(options.allowlist);
    return status;
}

int main(int argc, char **argv)
{
    sk_pages_for_heap(HEAP_RESERVE_BYTES);
    if (argc < 2) {
        usage(stderr);
        return EXIT_UNREADABLE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
        printf("%s %s (jansson %s, zlib %s)\n", program, SKOPSFS_VERSION, JANSSON_VERSION,
               zlibVersion());
        return 0;
    }
    if (strcmp(name, "help") == 0) {
        const struct command *command = argc > 2 ? find_command(argv[2]) : NULL;
        if (argc > 2 && command == NULL) {
            fprintf(stderr, "%s: unknown command '%s'\n", program, argv[2]);
            return EXIT_UNREADABLE;
        }
        if (command != NULL)
            command_usage(command, stdout, true);
        else
            usage(stdout);
        return 0;
    }
    const struct command *command = find_command(name);
    if (command == NULL) {
        fprintf(stderr, "%s: unknown command '%s' (see skopsfs --help)\n", program, name);
        return EXIT_UNREADABLE;
    }
    return run_command(command, argc - 1, argv + 1);
}
