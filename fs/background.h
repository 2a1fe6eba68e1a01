/* Going into the background before the model is read, not after.
 *
 * libfuse's fuse_daemonize forks once the model is built: the fork copies
 * the page tables of a daemon holding tens of megabytes, each huge page the
 * child then writes is copied while the parent lives, and the command
 * returns only after the parent has torn its address space down (the
 * 1600-tree forest: about 4 ms of a 60 ms mount). Here the command forks
 * while it is still small; the child reads the model and mounts, and the
 * parent waits for the child's word and exits with the status it is given.
 * Until then the child keeps the terminal: its messages reach the user, an
 * interrupt stops both, and it dies with the parent. */
#ifndef SKOPSFS_BACKGROUND_H
#define SKOPSFS_BACKGROUND_H

#include <stdbool.h>

/* In the foreground, does nothing. Otherwise forks: the parent waits and
 * exits with the child's status (1 if the child dies without one); the
 * child returns. Returns -1 with a message on stderr when it cannot fork. */
int background_start(bool foreground, const char *program);

/* The mount is up: the child leaves the terminal's session, moves to /,
 * puts /dev/null on its standard streams and lets the parent exit 0.
 * In the foreground, moves to / only (as fuse_daemonize does). */
void background_ready(void);

/* Before it is ready, the child exits with STATUS (nonzero) at once, and
 * so does the parent, which reaps it; its memory is not freed one block at
 * a time while the command waits. Nothing once ready, or in the
 * foreground. */
void background_give_up(int status);

#endif
