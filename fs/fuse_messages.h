/* libfuse's own error messages while mount.skopsfs parses its options and
 * creates its session, caught and reworded: one line per mistake, naming
 * the option and saying what to do, prefixed with the program's name. */
#ifndef SKOPSFS_FUSE_MESSAGES_H
#define SKOPSFS_FUSE_MESSAGES_H

/* From now on, libfuse's errors are kept, not printed (other levels, such
 * as -d's debug output, still are). */
void fuse_messages_catch(void);

/* Prints what was kept, reworded, and empties it. */
void fuse_messages_report(const char *program);

/* Back to libfuse's own printing. */
void fuse_messages_release(void);

#endif
