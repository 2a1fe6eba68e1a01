/* A member's text read in order, a step at a time, into one reserved range
 * of addresses: a pointer into what has been read stays valid until the
 * reader gives that part back, and only the part between the oldest byte
 * still wanted and the read head takes memory. So a one-pass reader keeps
 * spans of the text as plain pointers and never holds the whole text.
 *
 * Pages given back are moved ahead to where the next step is read
 * (mremap), not freed and faulted in again: on the VMs this is measured on
 * a fault costs about 10 us, and a fresh 2 MiB page is zeroed first.
 *
 * Each step ends just after a newline where the text read so far holds
 * one, so that no JSON token (none holds a raw newline) is cut by it. */
#ifndef SKOPSFS_TEXTWINDOW_H
#define SKOPSFS_TEXTWINDOW_H

#include <stdbool.h>
#include <stddef.h>

#include "sk_error.h"
#include "source.h"

/* What is read at a time, and the unit pages are given back in. */
#define SK_TEXT_WINDOW_STEP ((size_t)2 << 20)

struct sk_text_window;

struct sk_text_window_options {
    size_t step; /* 0: SK_TEXT_WINDOW_STEP */
    /* Tests: give back single bytes, poisoned for AddressSanitizer and
     * overwritten, instead of whole pages, and read STEP bytes at a time. */
    bool byte_release;
    /* Every step read when it is asked for. Else, where the text takes
     * more than one step, a thread reads the next step while the text
     * before it is tokenized (one 2 MiB step more in memory). */
    bool read_alone;
};

/* Reads SOURCE (borrowed; read from offset 0 on, in order, never twice).
 * OPTIONS may be NULL. */
int sk_text_window_open(struct sk_source *source, const struct sk_text_window_options *options,
                        struct sk_text_window **out, struct sk_error *err);

/* Where the text starts: byte I of the source is at text + I once read. */
const char *sk_text_window_text(const struct sk_text_window *window);

/* Reads on: *END is the end of what may be tokenized now, *WHOLE whether
 * that is the end of the text. 0, or -1 with ERR set (a read failed). */
int sk_text_window_more(struct sk_text_window *window, const char **end, bool *whole,
                        struct sk_error *err);

/* Gives back what lies before KEEP_FROM (what a unit of it lies wholly
 * before): no pointer below it may be used again. */
void sk_text_window_release(struct sk_text_window *window, const char *keep_from);

/* Whether any text can be given back before all is read: not where one
 * step holds it all (a release asks for less than what is visible, which
 * is less than the text until it is whole). */
bool sk_text_window_gives_back(const struct sk_text_window *window);

/* The first byte still readable: everything before it was given back. */
const char *sk_text_window_live_from(const struct sk_text_window *window);

void sk_text_window_close(struct sk_text_window *window);

#endif
