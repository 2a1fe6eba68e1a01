/* The skopsfs subcommands: what each needs from the shared command line
 * (options parsed once, by a table of what each command accepts) and the
 * helpers they share. tools/skopsfs.c holds the table and the small
 * commands; larger ones live in files of their own. */
#ifndef SKOPSFS_COMMANDS_H
#define SKOPSFS_COMMANDS_H

#include <stdbool.h>
#include <stdio.h>

#include "model.h"

#define EXIT_FOUND_UNTRUSTED 1 /* also: content problems found */
#define EXIT_ENTRY_ERROR 1
#define EXIT_DIFFERENT 1
#define EXIT_UNREADABLE 2

extern const char *program;

struct cli_options {
    struct sk_allowlist *allowlist;
    bool json;
    bool all;
    bool long_format;
    bool recursive;
    bool directory_itself;
    bool zero;
    bool no_content_checks;
    unsigned long long depth; /* tree --depth: 0 for no limit */
    struct sk_limits limits;
};

/* Opens PATH under the options' allowlist and limits; prints why not. */
struct sk_model *cli_open_model(const char *path, const struct cli_options *options, bool layout,
                                bool npy_headers);

/* Done with MODEL, and the process ends soon: it is freed with the
 * process, not node by node (3-4 ms for a forest of 1600 trees). It stays
 * reachable until then, so leak checkers do not count it; the model kept
 * before is closed now, so a command going through many files keeps one. */
void cli_close_model_at_exit(struct sk_model *model);

/* Finds PATH below the root as `tree` and `show` see it: through refused
 * directories too (nothing is materialized by looking), following links
 * inside the path but not a link named last. Returns 0 or an errno value. */
int cli_find_entry(const struct sk_layout *layout, const char *path, const struct sk_entry **out);

/* A 0-d array's value as Python's repr, read from the archive, into
 * BUFFER; false where the entry is not one or its value cannot be shown. */
bool cli_scalar_text(const struct sk_layout *layout, const struct sk_entry *entry, char *buffer,
                     size_t size);

/* "  [needs os.system, x.Y]": what must be trusted to materialize ENTRY. */
void cli_print_needs(const struct sk_entry *entry);

/* The file's text without its final newline, for one line of output. */
int cli_text_length(const struct sk_entry *entry);

int cli_show(struct cli_options *options, int count, char **operands);
int cli_diff(struct cli_options *options, int count, char **operands);
int cli_convert(struct cli_options *options, int count, char **operands);

/* tree --json, ls --json (json_out.c): one object per entry, see docs/json.md. */
int cli_tree_json(const struct sk_model *model, const char *file, const struct sk_entry *start,
                  const struct cli_options *options);
int cli_ls_json(const struct sk_model *model, const struct sk_entry *entry, bool list_children,
                const struct cli_options *options);

#endif
