#include "background.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* The child's end of the pipe its parent waits on; -1 in the foreground
 * and once the word is given. */
static int to_parent = -1;

/* The parent: exits 0 once the child is ready, or with the status of a
 * child that gave up (1 if it died without one), reaped. */
static void wait_for_child(int from_child, pid_t child)
{
    unsigned char status;
    ssize_t got;
    do
        got = read(from_child, &status, 1);
    while (got < 0 && errno == EINTR);
    if (got == 1 && status == 0)
        _exit(0);
    while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
        ;
    _exit(got == 1 ? status : 1);
}

int background_start(bool foreground, const char *program)
{
    if (foreground)
        return 0;
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
        fprintf(stderr, "%s: cannot go into the background: %s\n", program, strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "%s: cannot go into the background: %s\n", program, strerror(errno));
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        return -1;
    }
    if (child > 0) {
        close(pipe_fds[1]);
        wait_for_child(pipe_fds[0], child);
    }
    close(pipe_fds[0]);
    to_parent = pipe_fds[1];
    /* a mount nobody waits for any more is not made */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
        _exit(1);
    return 0;
}

static void tell_parent(unsigned char status)
{
    ssize_t put;
    do
        put = write(to_parent, &status, 1);
    while (put < 0 && errno == EINTR);
    close(to_parent);
    to_parent = -1;
}

void background_ready(void)
{
    int moved = chdir("/"); /* off any file system that might be unmounted; / is there */
    (void)moved;
    if (to_parent < 0)
        return;
    prctl(PR_SET_PDEATHSIG, 0);
    setsid();
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd >= 0) {
        for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++)
            dup2(null_fd, fd);
        if (null_fd > STDERR_FILENO)
            close(null_fd);
    }
    tell_parent(0);
}

void background_give_up(int status)
{
    if (to_parent < 0)
        return;
    fflush(NULL);
    status = status > 0 && status < 256 ? status : 1; /* 0 means ready */
    tell_parent((unsigned char)status);
    _exit(status);
}
