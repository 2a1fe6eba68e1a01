/* The content checks' report on a model file as text, for comparing runs:
 * each problem and the index of its node, a line each, or the error that
 * stopped the open. THREADS is SKOPSFS_CHECK_THREADS for the run: "1"
 * judges every tree after the read, in order; more judges them on another
 * thread while schema.json is read (format/content.h). Used by
 * tests/test_content_threads.c and fuzz_archive. */
#ifndef SKOPSFS_FUZZ_CONTENTRUN_H
#define SKOPSFS_FUZZ_CONTENTRUN_H

/* Returns the text (the caller frees it); aborts when out of memory. */
char *content_outcome(const char *path, const char *threads);

#endif
