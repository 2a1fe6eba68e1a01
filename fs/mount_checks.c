#include "mount_checks.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEV_FUSE "/dev/fuse"
/* where libfuse looks first (FUSERMOUNT_DIR on Debian), then $PATH */
static const char *const fusermount_paths[] = {"/usr/bin/fusermount3", "/bin/fusermount3"};

/* Undoes mountinfo's escapes (\040 for a space) in place. */
static void unescape_octal(char *text)
{
    char *out = text;
    for (const char *p = text; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            *out++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *out++ = *p;
        }
    }
    *out = '\0';
}

/* One line of mountinfo: "ID PARENT MAJOR:MINOR ROOT POINT OPTIONS [TAGS...] - TYPE SOURCE ..." */
static bool parse_mountinfo_line(char *line, unsigned *major, unsigned *minor, char **point,
                                 char **fstype)
{
    char *saveptr, *field[5];
    for (int i = 0; i < 5; i++)
        if ((field[i] = strtok_r(i == 0 ? line : NULL, " \n", &saveptr)) == NULL)
            return false;
    if (sscanf(field[2], "%u:%u", major, minor) != 2)
        return false;
    char *next;
    while ((next = strtok_r(NULL, " \n", &saveptr)) != NULL && strcmp(next, "-") != 0)
        continue;
    *fstype = next ? strtok_r(NULL, " \n", &saveptr) : NULL;
    *point = field[4];
    unescape_octal(*point);
    return true;
}

bool mountinfo_find(const char *mountpoint, unsigned *major, unsigned *minor, char *fstype,
                    size_t fstype_size)
{
    FILE *mountinfo = fopen("/proc/self/mountinfo", "re");
    if (mountinfo == NULL)
        return false;
    char *line = NULL;
    size_t capacity = 0;
    bool found = false;
    while (getline(&line, &capacity, mountinfo) >= 0) {
        unsigned line_major, line_minor;
        char *point, *type;
        if (parse_mountinfo_line(line, &line_major, &line_minor, &point, &type) &&
            strcmp(point, mountpoint) == 0) {
            *major = line_major;
            *minor = line_minor;
            if (fstype != NULL && fstype_size > 0)
                snprintf(fstype, fstype_size, "%s", type ? type : "?");
            found = true;
        }
    }
    free(line);
    fclose(mountinfo);
    return found;
}

/* A user who is not root mounts through fusermount3, which opens /dev/fuse
 * as that user and must be setuid root to mount. */
static int check_dev_fuse(const char *program)
{
    if (geteuid() == 0)
        return 0;
    int fd = open(DEV_FUSE, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int error = errno;
        if (error == ENOENT)
            fprintf(stderr,
                    "%s: " DEV_FUSE " is missing: load the fuse module (modprobe fuse) or, in a "
                    "container, pass the device in (docker run --device /dev/fuse)\n",
                    program);
        else
            fprintf(stderr,
                    "%s: cannot open " DEV_FUSE ": %s; run as root, or let your user open it "
                    "(chmod 0666 " DEV_FUSE ", or a group of yours that may read and write it)\n",
                    program, strerror(error));
        return -1;
    }
    close(fd);
    for (size_t i = 0; i < sizeof fusermount_paths / sizeof *fusermount_paths; i++) {
        struct stat st;
        if (stat(fusermount_paths[i], &st) != 0)
            continue;
        if ((st.st_mode & S_ISUID) && st.st_uid == 0)
            return 0;
        fprintf(stderr,
                "%s: %s is not setuid root, so a user cannot mount with it: run as root, or "
                "chown root %s && chmod u+s %s\n",
                program, fusermount_paths[i], fusermount_paths[i], fusermount_paths[i]);
        return -1;
    }
    return 0; /* not in the usual places: libfuse looks in $PATH and says */
}

static int check_not_mounted(const char *program, const char *mountpoint)
{
    unsigned major, minor;
    char fstype[64];
    if (!mountinfo_find(mountpoint, &major, &minor, fstype, sizeof fstype))
        return 0;
    fprintf(stderr,
            "%s: %s is a mount point already (%s); unmount it first (umount, or fusermount3 -u), "
            "or add -o over to mount on top of it\n",
            program, mountpoint, fstype);
    return -1;
}

/* Refuses a mount point that is not a directory (after symbolic links),
 * with one line: the kernel would mount over a regular file or a FIFO, and
 * the directory tree it then shows cannot be reached. "/dev/fd/N", an open
 * /dev/fuse handed over by a privileged parent, is not a path to check. */
static int check_directory(const char *program, const char *mountpoint)
{
    unsigned fd;
    int consumed = 0;
    if (sscanf(mountpoint, "/dev/fd/%u%n", &fd, &consumed) == 1 && mountpoint[consumed] == '\0')
        return 0;
    struct stat st;
    if (stat(mountpoint, &st) != 0) {
        fprintf(stderr, "%s: mount point %s: %s\n", program, mountpoint, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: mount point %s: not a directory\n", program, mountpoint);
        return -1;
    }
    return 0;
}

int check_before_mount(const char *program, const char *mountpoint, bool over)
{
    if (check_directory(program, mountpoint) != 0 || check_dev_fuse(program) != 0)
        return -1;
    return over ? 0 : check_not_mounted(program, mountpoint);
}
