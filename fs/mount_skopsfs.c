/* mount.skopsfs: mounts a .skops archive read-only as a directory tree.
 *
 * Thin glue from the layout (format/layout.h) to libfuse's low-level API.
 * Inode numbers are entry ids + 1, fixed for the life of the mount, so the
 * kernel may cache entries, attributes and pages for as long as it likes:
 * the archive never changes while mounted. Stored members are read from the
 * archive file by offset, or spliced where the source says where its
 * bytes lie in a file; DEFLATE members are inflated from seek points.
 * Refusal is the daemon's own decision, not the mode bits': root is refused
 * too. */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sk_limits.h"
#include "background.h"
#include "fuse_messages.h"
#include "model.h"
#include "mount_checks.h"
#include "pages.h"

/* The archive is immutable while mounted: let the kernel cache for a day. */
#define CACHE_TIMEOUT_SECONDS 86400.0
#define BLOCK_SIZE 4096
#define MAX_IDLE_THREADS 16
#define MAX_THREADS 16
#define XATTR_NAMES_MAX 256
/* Read requests and readahead of 1008 KiB. Requests this large run a first
 * read of a large array at twice the speed of the kernel's usual 128 KiB,
 * and a stored member's reply is spliced from the archive file, which needs
 * the reply plus three pages in libfuse's pipe: a pipe may not grow past
 * /proc/sys/fs/pipe-max-size (1 MiB unless raised) without CAP_SYS_RESOURCE,
 * and a reply that does not fit falls back to a fresh buffer per request
 * (measured here: 0.4 GB/s against 3-5 GB/s). */
#define MAX_READ_BYTES (1024 * 1024 - 16 * 1024)
#define READ_AHEAD_KB (MAX_READ_BYTES / 1024)
/* Heap in 2 MiB pages while the layout is built (see sk_pages_for_heap). */
#define HEAP_RESERVE_BYTES ((size_t)64 << 20)

static const char *program = "mount.skopsfs";

/* The background check of large stored members reads in chunks this big,
 * at idle I/O priority, so a user's first read keeps the disk. */
#define BACKGROUND_CHUNK (4u << 20)
#define IOPRIO_CLASS_IDLE 3
#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_WHO_PROCESS 1

struct skopsfs {
    struct sk_model *model;
    struct sk_layout *layout;
    struct timespec mtime;
    uid_t uid;
    gid_t gid;
    atomic_bool stopping; /* tells the background check to stop */
};

/* What open() hands to read(): the entry's source, serialized because a
 * source may keep state (a DEFLATE member's inflater). */
struct open_file {
    const struct sk_entry *entry;
    struct sk_source *source;
    pthread_mutex_t lock;
    struct open_file *previous, *next; /* in open_files */
};

/* Files opened and not released yet. A signal ends the loop while release
 * requests may still wait in the kernel: these are closed after the loop,
 * before the archive they read. */
static struct open_file *open_files;
static pthread_mutex_t open_files_lock = PTHREAD_MUTEX_INITIALIZER;

static void remember_open_file(struct open_file *file)
{
    pthread_mutex_lock(&open_files_lock);
    file->next = open_files;
    if (open_files != NULL)
        open_files->previous = file;
    open_files = file;
    pthread_mutex_unlock(&open_files_lock);
}

static void forget_open_file(struct open_file *file)
{
    pthread_mutex_lock(&open_files_lock);
    if (file->previous != NULL)
        file->previous->next = file->next;
    else
        open_files = file->next;
    if (file->next != NULL)
        file->next->previous = file->previous;
    pthread_mutex_unlock(&open_files_lock);
}

static void close_open_file(struct open_file *file)
{
    sk_source_close(file->source);
    pthread_mutex_destroy(&file->lock);
    free(file);
}

/* Once the loop's threads are gone: the files whose release never came. */
static void close_unreleased_files(void)
{
    while (open_files != NULL) {
        struct open_file *file = open_files;
        open_files = file->next;
        close_open_file(file);
    }
}

static struct skopsfs *fs_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

/* The archive must still be the file that was audited: bytes rewritten or
 * cut in place since then are never served (EIO). */
static int archive_unchanged(fuse_req_t req)
{
    struct sk_error err = {0};
    if (sk_store_check_unchanged(fs_of(req)->model->store, &err) == 0)
        return 0;
    fuse_log(FUSE_LOG_ERR, "%s: %s\n", program, err.message);
    return sk_error_errno(&err);
}

/* The entry behind an inode. Entries below a refused directory cannot be
 * looked up; should the kernel name one anyway, it does not exist. */
static const struct sk_entry *entry_of(fuse_req_t req, fuse_ino_t ino)
{
    const struct sk_entry *entry = ino == 0 ? NULL : sk_layout_entry(fs_of(req)->layout, ino - 1);
    return entry != NULL && entry->reachable ? entry : NULL;
}

static void fill_attr(const struct skopsfs *fs, const struct sk_entry *entry, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = entry->id + 1;
    st->st_uid = fs->uid;
    st->st_gid = fs->gid;
    st->st_atim = st->st_mtim = st->st_ctim = fs->mtime;
    st->st_blksize = BLOCK_SIZE;
    struct sk_entry_stat shown;
    sk_entry_stat(entry, &shown);
    st->st_mode = shown.mode;
    st->st_nlink = shown.nlink;
    st->st_size = (off_t)shown.size;
    st->st_blocks = (blkcnt_t)shown.blocks;
}

/* The directory behind INO, if its entries may be looked up or listed;
 * else the errno to answer. */
static int open_directory(fuse_req_t req, fuse_ino_t ino, const struct sk_entry **directory)
{
    *directory = entry_of(req, ino);
    if (*directory == NULL)
        return ENOENT;
    if ((*directory)->kind != SK_ENTRY_DIR)
        return ENOTDIR;
    if ((*directory)->refused)
        return EACCES;
    return 0;
}

static void reply_entry(fuse_req_t req, const struct sk_entry *entry)
{
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = entry->id + 1;
    e.generation = 1;
    e.attr_timeout = CACHE_TIMEOUT_SECONDS;
    e.entry_timeout = CACHE_TIMEOUT_SECONDS;
    fill_attr(fs_of(req), entry, &e.attr);
    fuse_reply_entry(req, &e);
}

/* ENOENT that the kernel may remember as long as an entry: a name missing
 * now is missing for the life of the mount, and tools probe many (ls -l asks
 * for ACLs, Python for __init__.py, numpy for .npy next to .npz). */
static void reply_no_entry(fuse_req_t req)
{
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = 0; /* libfuse's way of saying: no such entry, cache that */
    e.entry_timeout = CACHE_TIMEOUT_SECONDS;
    fuse_reply_entry(req, &e);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
        conn->want |= FUSE_CAP_CACHE_SYMLINKS;
    if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
        conn->want |= FUSE_CAP_PARALLEL_DIROPS;
    if (conn->capable & FUSE_CAP_SPLICE_WRITE)
        conn->want |= FUSE_CAP_SPLICE_WRITE;
    conn->max_readahead = READ_AHEAD_KB * 1024;
    conn->max_read = MAX_READ_BYTES; /* as the mount option says, or libfuse refuses */
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    const struct sk_entry *directory;
    int error = open_directory(req, parent, &directory);
    if (error != 0) {
        fuse_reply_err(req, error);
        return;
    }
    const struct sk_entry *child = sk_entry_child(directory, name);
    if (child == NULL) {
        reply_no_entry(req);
        return;
    }
    reply_entry(req, child);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)fi;
    const struct sk_entry *entry = entry_of(req, ino);
    if (entry == NULL) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    struct stat st;
    fill_attr(fs_of(req), entry, &st);
    fuse_reply_attr(req, &st, CACHE_TIMEOUT_SECONDS);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    const struct sk_entry *entry = entry_of(req, ino);
    if (entry == NULL || entry->kind != SK_ENTRY_SYMLINK) {
        fuse_reply_err(req, entry == NULL ? ENOENT : EINVAL);
        return;
    }
    fuse_reply_readlink(req, entry->link_text);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    const struct sk_entry *directory;
    int error = open_directory(req, ino, &directory);
    if (error != 0) {
        fuse_reply_err(req, error);
        return;
    }
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
    fuse_reply_open(req, fi);
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, bool plus)
{
    const struct sk_entry *directory;
    int error = open_directory(req, ino, &directory);
    if (error != 0) {
        fuse_reply_err(req, error);
        return;
    }
    char *buffer = malloc(size);
    if (buffer == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    size_t used = 0;
    /* offsets: 0 start, 1 after ".", 2 after "..", 2+k after child k */
    for (off_t next = offset; next < (off_t)directory->child_count + 2; next++) {
        const struct sk_entry *entry = NULL;
        const char *name;
        if (next == 0) {
            entry = directory;
            name = ".";
        } else if (next == 1) {
            entry = directory->parent ? directory->parent : directory;
            name = "..";
        } else {
            entry = directory->children[next - 2];
            name = entry->name;
        }
        size_t room = size - used, needed;
        if (plus) {
            struct fuse_entry_param e;
            memset(&e, 0, sizeof e);
            if (next >= 2) { /* "." and ".." are not looked up */
                e.ino = entry->id + 1;
                e.generation = 1;
                e.attr_timeout = e.entry_timeout = CACHE_TIMEOUT_SECONDS;
            }
            fill_attr(fs_of(req), entry, &e.attr);
            needed = fuse_add_direntry_plus(req, buffer + used, room, name, &e, next + 1);
        } else {
            struct stat st;
            fill_attr(fs_of(req), entry, &st);
            needed = fuse_add_direntry(req, buffer + used, room, name, &st, next + 1);
        }
        if (needed > room)
            break;
        used += needed;
    }
    fuse_reply_buf(req, buffer, used);
    free(buffer);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
                       struct fuse_file_info *fi)
{
    (void)fi;
    readdir_common(req, ino, size, offset, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
                           struct fuse_file_info *fi)
{
    (void)fi;
    readdir_common(req, ino, size, offset, true);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    const struct sk_entry *entry = entry_of(req, ino);
    if (entry == NULL) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
        fuse_reply_err(req, EROFS);
        return;
    }
    if (entry->kind == SK_ENTRY_DIR) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    if (entry->refused || !entry->reachable) {
        fuse_reply_err(req, EACCES);
        return;
    }
    struct open_file *file = calloc(1, sizeof *file);
    struct sk_error err = {0};
    if (file == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    file->entry = entry;
    pthread_mutex_init(&file->lock, NULL);
    int error = entry->in_store ? archive_unchanged(req) : 0;
    if (error == 0 && sk_entry_open(fs_of(req)->layout, entry, &file->source, &err) != 0) {
        fuse_log(FUSE_LOG_ERR, "%s: %s\n", program, err.message);
        error = sk_error_errno(&err);
    }
    if (error != 0) {
        pthread_mutex_destroy(&file->lock);
        free(file);
        fuse_reply_err(req, error);
        return;
    }
    remember_open_file(file);
    fi->fh = (uint64_t)(uintptr_t)file;
    fi->keep_cache = 1;
    fi->noflush = 1;
    fuse_reply_open(req, fi);
}

struct read_buffer {
    size_t size;
    char data[];
};

static pthread_key_t read_buffer_key;

/* This thread's buffer of at least SIZE bytes, or NULL. */
static char *thread_buffer(size_t size)
{
    struct read_buffer *buffer = pthread_getspecific(read_buffer_key);
    if (buffer == NULL || buffer->size < size) {
        free(buffer);
        buffer = malloc(sizeof *buffer + size);
        if (buffer != NULL)
            buffer->size = size;
        pthread_setspecific(read_buffer_key, buffer);
    }
    return buffer ? buffer->data : NULL;
}

/* Raises the mount's readahead to READ_AHEAD_KB. The kernel caps FUSE's at
 * 128 KiB whatever the daemon asks; the mount's backing device in sysfs is
 * named by its device number, read from mountinfo (a stat of the mount
 * point would wait for this very daemon), the last match being the newest
 * mount, ours. Without root it stays as is. */
static void raise_read_ahead(const char *mountpoint)
{
    unsigned major, minor;
    if (!mountinfo_find(mountpoint, &major, &minor, NULL, 0))
        return;
    char path[64];
    snprintf(path, sizeof path, "/sys/class/bdi/%u:%u/read_ahead_kb", major, minor);
    FILE *setting = fopen(path, "we");
    if (setting != NULL) {
        fprintf(setting, "%d\n", READ_AHEAD_KB);
        fclose(setting);
    }
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
                    struct fuse_file_info *fi)
{
    (void)ino;
    struct open_file *file = (struct open_file *)(uintptr_t)fi->fh;
    const struct sk_entry *entry = file->entry;
    if (offset < 0 || (uint64_t)offset >= entry->size) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    if (size > entry->size - (uint64_t)offset)
        size = (size_t)(entry->size - (uint64_t)offset);
    int changed = entry->in_store ? archive_unchanged(req) : 0;
    if (changed != 0) {
        fuse_reply_err(req, changed);
        return;
    }
    int fd;
    uint64_t file_offset;
    if (sk_source_extent(file->source, (uint64_t)offset, &fd, &file_offset)) {
        /* The kernel moves the file's cached pages into the reply: no copy
         * through this process. The archive was checked unchanged just
         * above, and a member known bad has no extent (its reads fail). */
        struct fuse_bufvec extent = FUSE_BUFVEC_INIT(size);
        extent.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
        extent.buf[0].fd = fd;
        extent.buf[0].pos = (off_t)file_offset;
        fuse_reply_data(req, &extent, 0);
        return;
    }
    /* Other bytes (inflated, in memory) are copied into a buffer per worker
     * thread: requests come up to 1 MiB, and a fresh allocation each time
     * would cost a page fault every 4 KiB. */
    char *buffer = thread_buffer(size);
    if (buffer == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    struct sk_error err = {0};
    pthread_mutex_lock(&file->lock); /* a source's state is one per open file */
    ssize_t got = sk_source_pread(file->source, buffer, size, (uint64_t)offset, &err);
    pthread_mutex_unlock(&file->lock);
    if (got < 0) {
        fuse_log(FUSE_LOG_ERR, "%s: %s\n", program, err.message);
        fuse_reply_err(req, sk_error_errno(&err));
    } else {
        fuse_reply_buf(req, buffer, (size_t)got);
    }
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct open_file *file = (struct open_file *)(uintptr_t)fi->fh;
    forget_open_file(file);
    close_open_file(file);
    fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    (void)ino;
    const struct skopsfs *fs = fs_of(req);
    struct statvfs st;
    memset(&st, 0, sizeof st);
    st.f_bsize = BLOCK_SIZE;
    st.f_frsize = BLOCK_SIZE;
    st.f_blocks = (sk_store_file_size(fs->model->store) + BLOCK_SIZE - 1) / BLOCK_SIZE;
    st.f_files = fs->layout->entry_count;
    st.f_namemax = SK_MAX_NAME_BYTES;
    st.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV;
    fuse_reply_statfs(req, &st);
}

/* The xattrs of the entry behind INO, or an errno to answer. */
static int xattrs_of(fuse_req_t req, fuse_ino_t ino, struct sk_xattr *xattrs, int *count)
{
    const struct sk_entry *entry = entry_of(req, ino);
    if (entry == NULL)
        return ENOENT;
    *count = sk_layout_xattrs(fs_of(req)->layout, entry, xattrs);
    return *count < 0 ? ENOMEM : 0;
}

/* getxattr(2)'s protocol: SIZE 0 asks for the length. */
static void reply_sized(fuse_req_t req, const char *value, size_t length, size_t size)
{
    if (size == 0)
        fuse_reply_xattr(req, length);
    else if (size < length)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, value, length);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    /* ls -l asks every entry for security.selinux and an ACL: answer those
     * without building the entry's list. */
    if (strncmp(name, "user.skops.", 11) != 0) {
        fuse_reply_err(req, entry_of(req, ino) == NULL ? ENOENT : ENODATA);
        return;
    }
    struct sk_xattr xattrs[SK_XATTR_MAX];
    int count;
    int error = xattrs_of(req, ino, xattrs, &count);
    if (error != 0) {
        fuse_reply_err(req, error);
        return;
    }
    int found = -1;
    for (int i = 0; i < count && found < 0; i++)
        if (strcmp(xattrs[i].name, name) == 0)
            found = i;
    if (found < 0)
        fuse_reply_err(req, ENODATA);
    else
        reply_sized(req, xattrs[found].value, xattrs[found].length, size);
    sk_xattrs_free(xattrs, count);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    struct sk_xattr xattrs[SK_XATTR_MAX];
    int count;
    int error = xattrs_of(req, ino, xattrs, &count);
    if (error != 0) {
        fuse_reply_err(req, error);
        return;
    }
    char names[XATTR_NAMES_MAX * SK_XATTR_MAX];
    size_t used = 0;
    for (int i = 0; i < count; i++) {
        size_t n = strlen(xattrs[i].name) + 1;
        memcpy(names + used, xattrs[i].name, n);
        used += n;
    }
    sk_xattrs_free(xattrs, count);
    reply_sized(req, names, used, size);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
    const struct sk_entry *entry = entry_of(req, ino);
    if (entry == NULL)
        fuse_reply_err(req, ENOENT);
    else if (mask & W_OK)
        fuse_reply_err(req, EROFS);
    else if ((mask & (R_OK | X_OK)) && (entry->refused || !entry->reachable))
        fuse_reply_err(req, EACCES);
    else
        fuse_reply_err(req, 0);
}

/* Every call that would change something. */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    (void)ino, (void)attr, (void)to_set, (void)fi;
    fuse_reply_err(req, EROFS);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    (void)parent, (void)name, (void)mode, (void)rdev;
    fuse_reply_err(req, EROFS);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    (void)parent, (void)name, (void)mode;
    fuse_reply_err(req, EROFS);
}

static void op_remove(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    (void)parent, (void)name;
    fuse_reply_err(req, EROFS);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    (void)link, (void)parent, (void)name;
    fuse_reply_err(req, EROFS);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    (void)parent, (void)name, (void)newparent, (void)newname, (void)flags;
    fuse_reply_err(req, EROFS);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    (void)ino, (void)newparent, (void)newname;
    fuse_reply_err(req, EROFS);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    (void)parent, (void)name, (void)mode, (void)fi;
    fuse_reply_err(req, EROFS);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    (void)ino, (void)buf, (void)size, (void)off, (void)fi;
    fuse_reply_err(req, EROFS);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
    (void)ino, (void)name, (void)value, (void)size, (void)flags;
    fuse_reply_err(req, EROFS);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    (void)ino, (void)name;
    fuse_reply_err(req, EROFS);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                         struct fuse_file_info *fi)
{
    (void)ino, (void)mode, (void)offset, (void)length, (void)fi;
    fuse_reply_err(req, EROFS);
}

static const struct fuse_lowlevel_ops operations = {
    .init = op_init,
    .lookup = op_lookup,
    .getattr = op_getattr,
    .readlink = op_readlink,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .open = op_open,
    .read = op_read,
    .release = op_release,
    .statfs = op_statfs,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .access = op_access,
    .setattr = op_setattr,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_remove,
    .rmdir = op_remove,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .create = op_create,
    .write = op_write,
    .setxattr = op_setxattr,
    .removexattr = op_removexattr,
    .fallocate = op_fallocate,
};

struct options {
    const char *archive;
    char *trust;        /* every trust= joined with ':' */
    char **trust_files; /* every trust_file=, in order */
    size_t trust_file_count;
    char *last_trust; /* the option just before, if a trust=: see trust_option_split */
    int strict;
    int verify;
    int over;
    int max_threads_given;
    unsigned long long max_schema_mb;
    unsigned long long max_nodes;
    unsigned long long max_entries;
    unsigned long long max_children;
    unsigned long long max_key_bytes;
    unsigned long long max_pickle_mb;
    unsigned long long max_pickle_opcodes;
    unsigned long long max_pickle_memo;
    unsigned long long max_pickle_values;
    unsigned long long max_pickle_arena_mb;
    unsigned long long max_pickle_schema_mb;
    int show_help;
    int show_version;
    int nonoption_count;
};

enum { KEY_HELP, KEY_VERSION, KEY_DISCARD, KEY_TRUST, KEY_TRUST_FILE, KEY_NUMBER, KEY_MAX_THREADS };

#define OPTION(spec, field)                                                                        \
    {                                                                                              \
        spec, offsetof(struct options, field), 1                                                   \
    }
static const struct fuse_opt option_spec[] = {
    FUSE_OPT_KEY("trust=", KEY_TRUST),
    FUSE_OPT_KEY("trust_file=", KEY_TRUST_FILE),
    OPTION("strict", strict),
    OPTION("verify", verify),
    OPTION("over", over),
    /* checked before their templates take them: sscanf would take "12abc" */
    FUSE_OPT_KEY("max_schema_mb=", KEY_NUMBER),
    FUSE_OPT_KEY("max_nodes=", KEY_NUMBER),
    FUSE_OPT_KEY("max_entries=", KEY_NUMBER),
    FUSE_OPT_KEY("max_children=", KEY_NUMBER),
    FUSE_OPT_KEY("max_key_bytes=", KEY_NUMBER),
    FUSE_OPT_KEY("max_pickle_mb=", KEY_NUMBER),
    FUSE_OPT_KEY("max_pickle_opcodes=", KEY_NUMBER),
    FUSE_OPT_KEY("max_pickle_memo=", KEY_NUMBER),
    FUSE_OPT_KEY("max_pickle_values=", KEY_NUMBER),
    FUSE_OPT_KEY("max_pickle_arena_mb=", KEY_NUMBER),
    FUSE_OPT_KEY("max_pickle_schema_mb=", KEY_NUMBER),
    FUSE_OPT_KEY("max_threads=", KEY_MAX_THREADS), /* libfuse's, kept for it */
    OPTION("max_schema_mb=%llu", max_schema_mb),
    OPTION("max_nodes=%llu", max_nodes),
    OPTION("max_entries=%llu", max_entries),
    OPTION("max_children=%llu", max_children),
    OPTION("max_key_bytes=%llu", max_key_bytes),
    OPTION("max_pickle_mb=%llu", max_pickle_mb),
    OPTION("max_pickle_opcodes=%llu", max_pickle_opcodes),
    OPTION("max_pickle_memo=%llu", max_pickle_memo),
    OPTION("max_pickle_values=%llu", max_pickle_values),
    OPTION("max_pickle_arena_mb=%llu", max_pickle_arena_mb),
    OPTION("max_pickle_schema_mb=%llu", max_pickle_schema_mb),
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    /* what mount(8) may pass that means nothing here */
    FUSE_OPT_KEY("-n", KEY_DISCARD),
    FUSE_OPT_KEY("-v", KEY_DISCARD),
    FUSE_OPT_KEY("defaults", KEY_DISCARD),
    FUSE_OPT_KEY("auto", KEY_DISCARD),
    FUSE_OPT_KEY("noauto", KEY_DISCARD),
    FUSE_OPT_KEY("user", KEY_DISCARD),
    FUSE_OPT_KEY("nouser", KEY_DISCARD),
    FUSE_OPT_KEY("users", KEY_DISCARD),
    FUSE_OPT_KEY("nofail", KEY_DISCARD),
    FUSE_OPT_KEY("_netdev", KEY_DISCARD),
    FUSE_OPT_KEY("rw", KEY_DISCARD), /* always read-only */
    FUSE_OPT_KEY("ro", KEY_DISCARD), /* added below, once */
    FUSE_OPT_END,
};

/* Adds a trust= value to those given before. libfuse splits -o at commas
 * unless escaped (trust=a\,b); an escaped comma separates types too. */
static int add_trust(struct options *options, const char *value)
{
    char *joined;
    if (asprintf(&joined, "%s%s%s", options->trust ? options->trust : "", options->trust ? ":" : "",
                 value) < 0)
        return -1;
    for (char *p = joined; *p; p++)
        if (*p == ',')
            *p = ':';
    free(options->trust);
    options->trust = joined;
    free(options->last_trust);
    options->last_trust = strdup(value);
    return options->last_trust ? 0 : -1;
}

static int add_trust_file(struct options *options, const char *path)
{
    char **grown = realloc(options->trust_files,
                           (options->trust_file_count + 1) * sizeof *options->trust_files);
    if (grown == NULL)
        return -1;
    options->trust_files = grown;
    if ((grown[options->trust_file_count] = strdup(path)) == NULL)
        return -1;
    options->trust_file_count++;
    return 0;
}

/* "-o trust=a.B,c.D", the natural guess, reaches here as trust=a.B and an
 * unknown option c.D: no FUSE option has a dot and no '='. */
static bool trust_option_split(const struct options *options, const char *arg)
{
    return options->last_trust != NULL && arg[0] != '-' && strchr(arg, '=') == NULL &&
           strchr(arg, '.') != NULL;
}

/* A limit's value: a whole number of at least 1, as strtoull reads it. */
static int check_number(const char *option)
{
    const char *value = strchr(option, '=') + 1;
    char *end;
    errno = 0;
    unsigned long long number = strtoull(value, &end, 10);
    if (value[0] >= '0' && value[0] <= '9' && *end == '\0' && errno == 0 && number > 0)
        return 0;
    fprintf(stderr, "%s: -o %s: give a whole number of at least 1 (see %s --help)\n", program,
            option, program);
    return -1;
}

/* The limits given in MiB are shifted into bytes: they must fit in 64 bits. */
static bool megabyte_options_overflow(const struct options *options)
{
    const struct {
        const char *name;
        unsigned long long value;
    } given[] = {
        {"max_schema_mb", options->max_schema_mb},
        {"max_pickle_mb", options->max_pickle_mb},
        {"max_pickle_arena_mb", options->max_pickle_arena_mb},
        {"max_pickle_schema_mb", options->max_pickle_schema_mb},
    };
    for (size_t i = 0; i < sizeof given / sizeof *given; i++)
        if (given[i].value > ~0ULL >> 20) {
            fprintf(stderr, "%s: %s=%llu does not fit in 64 bits of bytes\n", program,
                    given[i].name, given[i].value);
            return true;
        }
    return false;
}

static int option_callback(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    (void)outargs;
    struct options *options = data;
    if (key != KEY_TRUST && key != FUSE_OPT_KEY_NONOPT) {
        bool split = key == FUSE_OPT_KEY_OPT && trust_option_split(options, arg);
        if (split)
            fprintf(stderr,
                    "%s: -o trust=%s,%s: FUSE splits options at ','; separate types with ':' "
                    "instead: -o trust=%s:%s\n",
                    program, options->last_trust, arg, options->last_trust, arg);
        free(options->last_trust);
        options->last_trust = NULL;
        if (split)
            return -1;
    }
    switch (key) {
    case KEY_TRUST:
        return add_trust(options, arg + strlen("trust=")) == 0 ? 0 : -1;
    case KEY_TRUST_FILE:
        return add_trust_file(options, arg + strlen("trust_file=")) == 0 ? 0 : -1;
    case KEY_NUMBER:
        return check_number(arg) == 0 ? 0 : -1;
    case KEY_MAX_THREADS:
        options->max_threads_given = 1;
        return check_number(arg) == 0 ? 1 : -1;
    case FUSE_OPT_KEY_NONOPT:
        /* The first operand is the archive; the second, the mount point,
         * stays for fuse_parse_cmdline. */
        if (options->nonoption_count++ == 0) {
            options->archive = arg;
            return 0;
        }
        return 1;
    case KEY_HELP:
        options->show_help = 1;
        return 0;
    case KEY_VERSION:
        options->show_version = 1;
        return 0;
    case KEY_DISCARD:
        return 0;
    default:
        return 1;
    }
}

static void usage(void)
{
    printf("usage: %s ARCHIVE MOUNTPOINT [-o OPTION[,OPTION...]] [-f] [-d]\n"
           "\n"
           "Mounts a .skops model archive read-only as a directory tree.\n"
           "\n"
           "skopsfs options:\n"
           "    -o trust=TYPE[:TYPE...]  trust these types too (repeatable; ':' between types,\n"
           "                             as ',' separates options)\n"
           "    -o trust_file=PATH       trust the types in PATH (one a line, # comments;\n"
           "                             repeatable)\n"
           "    -o strict                refuse to mount if any type is untrusted or any\n"
           "                             tree's arrays are unsound (.skops/problems)\n"
           "    -o verify                check every member's CRC-32 before mounting\n"
           "    -o over                  mount even if MOUNTPOINT is a mount point already\n"
           "    -o max_schema_mb=N, max_nodes=N, max_entries=N, max_children=N,\n"
           "       max_key_bytes=N\n"
           "                             raise the limits on what an archive may hold\n"
           "    -o max_pickle_mb=N, max_pickle_opcodes=N, max_pickle_memo=N,\n"
           "       max_pickle_values=N, max_pickle_arena_mb=N, max_pickle_schema_mb=N\n"
           "                             raise those on what a pickle or joblib file\n"
           "                             may hold\n"
           "\n"
           "FUSE options:\n",
           program);
    fuse_cmdline_help();
    fuse_lowlevel_help();
}

/* "-ofsname=PATH" with the commas and backslashes in PATH escaped, as
 * libfuse's option parser wants them. */
static char *fsname_argument(const char *archive)
{
    size_t length = strlen(archive);
    char *argument = malloc(sizeof "-ofsname=" + 2 * length);
    if (argument == NULL)
        return NULL;
    char *out = stpcpy(argument, "-ofsname=");
    for (const char *p = archive; *p; p++) {
        if (*p == ',' || *p == '\\')
            *out++ = '\\';
        *out++ = *p;
    }
    *out = '\0';
    return argument;
}

/* -o verify: every member read and checked before the mount appears. */
static int verify_all(const char *path, struct sk_store *store)
{
    for (uint64_t i = 0; i < sk_store_member_count(store); i++) {
        struct sk_error err = {0};
        if (sk_store_verify(store, i, &err) != 0) {
            fprintf(stderr, "%s: %s: not mounted: %s\n", program, path, err.message);
            return -1;
        }
    }
    return 0;
}

/* Large stored members are spliced, never seen by this process, and too
 * large to check at open: this thread reads each once, in order, at the
 * lowest CPU and I/O priority, so that a bad one fails from then on. */
static bool checked_in_background(const struct sk_member_info *info)
{
    return !info->compressed && info->size > SK_VERIFY_AT_OPEN_BYTES;
}

static bool has_members_to_check(const struct sk_store *store)
{
    struct sk_member_info info;
    for (uint64_t i = 0; i < sk_store_member_count(store); i++) {
        sk_store_member_info(store, i, &info);
        if (checked_in_background(&info))
            return true;
    }
    return false;
}

static void *check_large_members(void *data)
{
    struct skopsfs *fs = data;
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
    syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT);
    struct sk_store *store = fs->model->store;
    char *buffer = malloc(BACKGROUND_CHUNK);
    for (uint64_t i = 0; buffer != NULL && i < sk_store_member_count(store); i++) {
        struct sk_member_info info;
        sk_store_member_info(store, i, &info);
        struct sk_source *reader;
        struct sk_error err = {0};
        if (!checked_in_background(&info) || sk_store_open(store, i, false, &reader, &err) != 0)
            continue;
        uint64_t offset = 0;
        while (offset < info.size && !atomic_load(&fs->stopping)) {
            ssize_t got = sk_source_pread(reader, buffer, BACKGROUND_CHUNK, offset, &err);
            if (got <= 0)
                break;
            offset += (uint64_t)got;
        }
        if (err.message[0] != '\0')
            fuse_log(FUSE_LOG_ERR, "%s: %s\n", program, err.message);
        sk_source_close(reader);
    }
    free(buffer);
    return NULL;
}

/* Trees whose arrays scikit-learn would follow out of bounds are served
 * (reading them is harmless) but said on stderr; -o strict refuses them. */
static int report_content_problems(const struct sk_content_report *content, const char *archive,
                                   bool strict)
{
    if (content == NULL || content->count == 0)
        return 0;
    fprintf(stderr, "%s: %s: %s %zu content problem%s (see .skops/problems):\n", program, archive,
            strict ? "not mounted: it has" : "serving it with", content->count,
            content->count == 1 ? "" : "s");
    for (size_t i = 0; i < content->count; i++) {
        char *line = sk_content_problem_text(&content->problems[i]);
        fprintf(stderr, "  %s\n", line ? line : "(out of memory)");
        free(line);
    }
    return strict ? -1 : 0;
}

/* The user's allowlist from every trust= and trust_file=, or NULL. */
static struct sk_allowlist *load_allowlist(const struct options *options, struct sk_error *err)
{
    struct sk_allowlist *allowlist = sk_allowlist_new();
    if (allowlist == NULL)
        return NULL;
    if (options->trust && sk_allowlist_add_list(allowlist, options->trust, ':', err) != 0)
        goto fail;
    for (size_t i = 0; i < options->trust_file_count; i++)
        if (sk_allowlist_load_file(allowlist, options->trust_files[i], err) != 0)
            goto fail;
    return allowlist;
fail:
    sk_allowlist_free(allowlist);
    return NULL;
}

/* One line: what was refused and the one option that trusts it all (the
 * names are in the option, and in .skops/untrusted once mounted). */
static void report_untrusted(const char *archive, const struct sk_layout *layout, bool strict)
{
    size_t count = layout->untrusted_count, left_out = 0;
    char *hint = sk_trust_hint((const char *const *)layout->untrusted, count, SK_TRUST_HINT_MOUNT,
                               &left_out);
    const char *plural = count == 1 ? "" : "s";
    if (strict)
        fprintf(stderr, "%s: %s: not mounted: it needs %zu untrusted type%s", program, archive,
                count, plural);
    else
        fprintf(stderr,
                "%s: %s: nodes that need %zu untrusted type%s are refused (listed in "
                ".skops/untrusted)",
                program, archive, count, plural);
    if (hint != NULL && hint[0] != '\0')
        fprintf(stderr, "; to trust %s: %s", left_out ? "the others" : "them all", hint);
    if (left_out > 0)
        fprintf(stderr, "; %zu %s no option can carry", left_out,
                left_out == 1 ? "type has a name" : "types have names");
    fputc('\n', stderr);
    free(hint);
}

/* Service managers may start the daemon with fd 0, 1 or 2 closed. The next
 * file opened would take that number, and background_ready later puts
 * /dev/null over 0-2: an archive opened as fd 0 would read back empty. So
 * /dev/null fills any gap before anything else is opened. */
static bool standard_fds_open(void)
{
    for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++)
        if (fcntl(fd, F_GETFD) < 0 && (errno != EBADF || open("/dev/null", O_RDWR) != fd))
            return false;
    return true;
}

/* libfuse's loops return the number of the signal that ended them
 * (fuse_set_signal_handlers turns SIGTERM, SIGINT and SIGHUP into a clean
 * exit): that is how a service manager stops a mount, not a failure. */
static int loop_exit_status(int loop_result)
{
    return loop_result == 0 || loop_result == SIGTERM || loop_result == SIGINT ||
                   loop_result == SIGHUP
               ? 0
               : 1;
}

/* Mounts, or exits with one line on stderr and nothing mounted. */
int main(int argc, char **argv)
{
    if (!standard_fds_open())
        return 1;
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct options options = {0};
    struct fuse_cmdline_opts cmdline = {0};
    struct sk_allowlist *allowlist = NULL;
    struct skopsfs fs = {0};
    struct fuse_session *session = NULL;
    struct fuse_loop_config *loop_config = NULL;
    struct sk_error err = {0};
    pthread_t checker;
    bool checking = false;
    int status = 1;

    fuse_messages_catch();
    if (fuse_opt_parse(&args, &options, option_spec, option_callback) != 0 ||
        pthread_key_create(&read_buffer_key, free) != 0) {
        fuse_messages_report(program);
        goto out;
    }
    if (options.show_help) {
        usage();
        status = 0;
        goto out;
    }
    if (options.show_version) {
        printf("%s %s (libfuse %s, FUSE API %d.%d)\n", program, SKOPSFS_VERSION, fuse_pkgversion(),
               FUSE_MAJOR_VERSION, FUSE_MINOR_VERSION);
        status = 0;
        goto out;
    }
    if (options.archive == NULL) {
        fprintf(stderr, "%s: usage: %s ARCHIVE MOUNTPOINT [-o OPTIONS]\n", program, program);
        goto out;
    }
    /* mount(8) and /proc/mounts show "ARCHIVE on MOUNTPOINT type fuse.skopsfs". */
    char *fsname_option = fsname_argument(options.archive);
    int added = fsname_option ? fuse_opt_add_arg(&args, fsname_option) : -1;
    free(fsname_option);
    char fixed_options[64];
    snprintf(fixed_options, sizeof fixed_options, "-oro,subtype=skopsfs,max_read=%d",
             MAX_READ_BYTES);
    if (added != 0 || fuse_opt_add_arg(&args, fixed_options) != 0 ||
        fuse_parse_cmdline(&args, &cmdline) != 0) {
        fuse_messages_report(program);
        goto out;
    }
    if (cmdline.mountpoint == NULL) {
        fprintf(stderr, "%s: usage: %s ARCHIVE MOUNTPOINT [-o OPTIONS]\n", program, program);
        goto out;
    }
    /* Before the model is read, which may take a while: every option is
     * known to be right (libfuse checks its own here) and the mount can be
     * attempted. fs is filled in before the session serves anything. */
    session = fuse_session_new(&args, &operations, sizeof operations, &fs);
    fuse_messages_report(program);
    fuse_messages_release();
    if (session == NULL || check_before_mount(program, cmdline.mountpoint, options.over) != 0)
        goto out;
    allowlist = load_allowlist(&options, &err);
    if (allowlist == NULL) {
        fprintf(stderr, "%s: %s\n", program, err.message[0] ? err.message : "out of memory");
        goto out;
    }
    struct sk_model_options model_options = {
        .allowlist = allowlist,
        .build_layout = true,
        .read_npy_headers = false, /* read when an array's xattrs are first asked for */
        .open_members = true,
        .check_content = true,
        .limits = {.schema_bytes = options.max_schema_mb << 20,
                   .nodes = options.max_nodes,
                   .entries = options.max_entries,
                   .children = options.max_children,
                   .key_bytes = options.max_key_bytes,
                   .pickle_bytes = options.max_pickle_mb << 20,
                   .pickle_opcodes = options.max_pickle_opcodes,
                   .pickle_memo = options.max_pickle_memo,
                   .pickle_values = options.max_pickle_values,
                   .pickle_arena_bytes = options.max_pickle_arena_mb << 20,
                   .pickle_schema_bytes = options.max_pickle_schema_mb << 20},
    };
    if (megabyte_options_overflow(&options) || background_start(cmdline.foreground, program) != 0)
        goto out;
    /* after the fork: the parent never touches these pages */
    sk_pages_for_heap(HEAP_RESERVE_BYTES);
    if (sk_model_open(options.archive, &model_options, &fs.model, &err) != 0) {
        fprintf(stderr, "%s: %s\n", program, err.message);
        goto out;
    }
    if (options.verify && verify_all(options.archive, fs.model->store) != 0)
        goto out;
    fs.layout = fs.model->layout;
    fs.mtime = sk_store_mtime(fs.model->store);
    fs.uid = getuid();
    fs.gid = getgid();

    if (fs.layout->untrusted_count > 0) {
        report_untrusted(options.archive, fs.layout, options.strict);
        if (options.strict)
            goto out;
    }
    if (report_content_problems(fs.model->content, options.archive, options.strict) != 0)
        goto out;

    if (fuse_set_signal_handlers(session) != 0)
        goto out;
    if (fuse_session_mount(session, cmdline.mountpoint) != 0)
        goto out_signals;
    raise_read_ahead(cmdline.mountpoint);
    background_ready();
    /* Once mounted: large members are checked only for a mount that is up. */
    checking = !options.verify && has_members_to_check(fs.model->store) &&
               pthread_create(&checker, NULL, check_large_members, &fs) == 0;
    if (cmdline.singlethread) {
        status = loop_exit_status(fuse_session_loop(session));
    } else {
        loop_config = fuse_loop_cfg_create();
        if (loop_config == NULL)
            goto out_unmount;
        fuse_loop_cfg_set_clone_fd(loop_config, (unsigned)cmdline.clone_fd);
        /* libfuse's max_idle_threads=, max_threads= if given, else ours */
        fuse_loop_cfg_set_idle_threads(loop_config, cmdline.max_idle_threads != (unsigned)-1
                                                        ? cmdline.max_idle_threads
                                                        : MAX_IDLE_THREADS);
        fuse_loop_cfg_set_max_threads(loop_config, options.max_threads_given ? cmdline.max_threads
                                                                             : MAX_THREADS);
        status = loop_exit_status(fuse_session_loop_mt(session, loop_config));
    }
out_unmount:
    fuse_session_unmount(session);
out_signals:
    fuse_remove_signal_handlers(session);
out:
    background_give_up(status);
    if (session != NULL)
        fuse_session_destroy(session);
    fuse_loop_cfg_destroy(loop_config);
    if (checking) {
        atomic_store(&fs.stopping, true);
        pthread_join(checker, NULL);
    }
    close_unreleased_files();
    sk_model_close(fs.model);
    sk_allowlist_free(allowlist);
    free(options.trust);
    free(options.last_trust);
    for (size_t i = 0; i < options.trust_file_count; i++)
        free(options.trust_files[i]);
    free(options.trust_files);
    free(cmdline.mountpoint);
    fuse_opt_free_args(&args);
    return status;
}
