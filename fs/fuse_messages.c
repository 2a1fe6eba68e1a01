#include "fuse_messages.h"

#include <errno.h>
#include <fuse_log.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define HELP "see mount.skopsfs --help"

/* libfuse writes one message in several calls ("unknown option(s): `" then
 * each option), so the text is kept whole and split into lines at the end. */
static char kept[4096];
static size_t kept_length;

static void keep(enum fuse_log_level level, const char *fmt, va_list ap)
{
    if (level > FUSE_LOG_ERR) {
        vfprintf(stderr, fmt, ap);
        return;
    }
    size_t room = sizeof kept - kept_length; /* at least 1: the final NUL */
    int n = vsnprintf(kept + kept_length, room, fmt, ap);
    if (n > 0)
        kept_length += (size_t)n < room ? (size_t)n : room - 1; /* cut when full */
}

void fuse_messages_catch(void)
{
    fuse_set_log_func(keep);
}

void fuse_messages_release(void)
{
    fuse_set_log_func(NULL);
}

/* The text between libfuse's quotes `...' after PREFIX in LINE, or NULL. */
static const char *quoted_after(const char *line, const char *prefix, int *length)
{
    size_t n = strlen(prefix);
    if (strncmp(line, prefix, n) != 0)
        return NULL;
    const char *start = line + n;
    const char *end = strrchr(start, '\'');
    if (end == NULL)
        return NULL;
    *length = (int)(end - start);
    return start;
}

/* libfuse gives back unknown options as they were left: "-o a,b" or "-oa". */
static void report_unknown(const char *program, const char *options, int length)
{
    const char *shown = options;
    if (length >= 2 && strncmp(shown, "-o", 2) == 0) {
        shown += 2;
        length -= 2;
        while (length > 0 && *shown == ' ') {
            shown++;
            length--;
        }
    }
    fprintf(stderr, "%s: unknown option%s %.*s (" HELP " for the valid ones)\n", program,
            memchr(shown, ',', (size_t)length) || memchr(shown, ' ', (size_t)length) ? "s" : "",
            length, shown);
}

/* "fuse: bad mount point `PATH': REASON", from libfuse's realpath(). */
#define BAD_MOUNT_POINT "fuse: bad mount point `"
static void report_bad_mount_point(const char *program, const char *rest)
{
    const char *end = strstr(rest, "': ");
    if (end == NULL) {
        fprintf(stderr, "%s: bad mount point %s\n", program, rest);
        return;
    }
    int length = (int)(end - rest);
    const char *reason = end + 3;
    if (strcmp(reason, strerror(ENOTCONN)) == 0)
        fprintf(stderr,
                "%s: %.*s: %s: a mount whose daemon has gone; unmount it first (fusermount3 -u "
                "%.*s)\n",
                program, length, rest, reason, length, rest);
    else
        fprintf(stderr, "%s: mount point %.*s: %s\n", program, length, rest, reason);
}

static void report_line(const char *program, const char *line)
{
    const char *quoted;
    int length;
    if ((quoted = quoted_after(line, "fuse: unknown option(s): `", &length)) != NULL)
        report_unknown(program, quoted, length);
    else if ((quoted = quoted_after(line, "fuse: invalid parameter in option `", &length)) != NULL)
        fprintf(stderr, "%s: -o %.*s: not a valid value (" HELP ")\n", program, length, quoted);
    else if ((quoted = quoted_after(line, "fuse: invalid argument `", &length)) != NULL)
        fprintf(stderr,
                "%s: unexpected argument %.*s: give an ARCHIVE and a MOUNTPOINT (" HELP ")\n",
                program, length, quoted);
    else if (strncmp(line, BAD_MOUNT_POINT, strlen(BAD_MOUNT_POINT)) == 0)
        report_bad_mount_point(program, line + strlen(BAD_MOUNT_POINT));
    else if ((quoted = quoted_after(line, "fuse: missing argument after `", &length)) != NULL)
        fprintf(stderr, "%s: %.*s needs a value (" HELP ")\n", program, length, quoted);
    else
        fprintf(stderr, "%s: %s\n", program, strncmp(line, "fuse: ", 6) == 0 ? line + 6 : line);
}

void fuse_messages_report(const char *program)
{
    char *saveptr;
    for (char *line = strtok_r(kept, "\n", &saveptr); line != NULL;
         line = strtok_r(NULL, "\n", &saveptr))
        report_line(program, line);
    kept_length = 0;
    kept[0] = '\0';
}
