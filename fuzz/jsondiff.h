/* The differential check of the one-pass reader (jsonscan.h) against
 * sk_json_parse (jsontext.h): both read the same text; they must accept
 * and refuse alike, with messages of the same kind, and the values rebuilt
 * from the reader's tokens must equal sk_json_parse's tree exactly (key
 * order, big-integer marks, NUL in keys, every real's bits). */
#ifndef SKOPSFS_FUZZ_JSONDIFF_H
#define SKOPSFS_FUZZ_JSONDIFF_H

#include <stddef.h>

enum json_diff_outcome {
    JSON_DIFF_SAME_ACCEPTED,
    JSON_DIFF_SAME_REFUSED,
    /* sk_json_parse's known faults, where the reader does what it means: */
    JSON_DIFF_OLD_REWRITE_BREAKS_REAL,     /* a real's 20+ digit run rewritten as an integer */
    JSON_DIFF_OLD_MISSES_OVERWRITTEN_MARK, /* spelled mark under a duplicate key */
    JSON_DIFF_OLD_MISSES_NUL_U10FFFF,      /* NUL key after a big integer */
    JSON_DIFF_OLD_MESSAGE_FROM_REWRITE,    /* rewrite path reports its check first */
    JSON_DIFF_DIFFERENT,
    JSON_DIFF_OUTCOMES
};

extern const char *const json_diff_outcome_names[JSON_DIFF_OUTCOMES];

/* How many refusals had word for word the same message (line and column
 * included); JSONSCAN_DIFF_MESSAGES=1 prints the others. */
extern unsigned long json_diff_identical_messages;

/* Compares the readers on TEXT; on JSON_DIFF_DIFFERENT, WHY says how. */
enum json_diff_outcome json_diff(const char *text, size_t length, char *why, size_t why_size);

#endif
