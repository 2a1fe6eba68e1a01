/* What mount.skopsfs checks before it mounts, so the usual mistakes get one
 * line that says what to do rather than libfuse's or fusermount3's words;
 * and reading a mount back from /proc/self/mountinfo. */
#ifndef SKOPSFS_MOUNT_CHECKS_H
#define SKOPSFS_MOUNT_CHECKS_H

#include <stdbool.h>
#include <stddef.h>

/* Finds MOUNTPOINT (an absolute path without symbolic links) in
 * /proc/self/mountinfo, whose fields escape space, tab, newline and
 * backslash in octal. The last match is the newest mount. Fills the mount's
 * device number and file system type (FSTYPE_SIZE bytes, cut) if found. */
bool mountinfo_find(const char *mountpoint, unsigned *major, unsigned *minor, char *fstype,
                    size_t fstype_size);

/* Checks that a mount can be attempted: MOUNTPOINT a directory, /dev/fuse
 * usable by a user who is not root (and fusermount3 setuid), and MOUNTPOINT not a mount point
 * already unless OVER. Prints one line to stderr, prefixed with PROGRAM,
 * and returns -1 when not. */
int check_before_mount(const char *program, const char *mountpoint, bool over);

#endif
