/* Atomic file writing (atomic_file.h explains the scheme and why it never
 * writes through a planted symlink). */
/* O_TMPFILE, O_PATH and linkat's AT_SYMLINK_FOLLOW are Linux extensions. */
#define _GNU_SOURCE
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BUFFER_SIZE ((size_t)64 * 1024)
#define TEMP_PREFIX ".fxcam-"
#define TEMP_SUFFIX ".tmp"
#define CREATE_TRIES 64

/* O_PATH lets the folder be used for openat/linkat/renameat even when it is
 * writable but not readable. */
#ifdef O_PATH
#define DIR_OPEN_FLAGS (O_PATH | O_DIRECTORY | O_CLOEXEC)
#else
#define DIR_OPEN_FLAGS (O_RDONLY | O_DIRECTORY | O_CLOEXEC)
#endif

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull; /* splitmix64 finalizer */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The check digits of a random part: not secret, only unlikely to match a
 * name a user typed. */
static uint32_t check_of(uint32_t random_part)
{
    return (uint32_t)mix64((uint64_t)random_part ^ 0x6678636166696c65ull /* "fxcafile" */);
}

/* Not cryptographic: creation is safe through O_EXCL / linkat; names only
 * have to differ between processes, threads and tries. */
static uint32_t random_part(unsigned attempt)
{
    struct timespec now = {0};
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint32_t)mix64((uint64_t)now.tv_nsec ^ ((uint64_t)now.tv_sec << 30) ^ ((uint64_t)getpid() << 16) ^
                           (uint64_t)(uintptr_t)&now ^ ((uint64_t)attempt << 48));
}

static void pick_temp_name(fx__atomic_file *f, unsigned attempt)
{
    uint32_t r = random_part(attempt);
    snprintf(f->temp_name, sizeof f->temp_name, TEMP_PREFIX "%08x%08x" TEMP_SUFFIX, (unsigned)r,
             (unsigned)check_of(r));
}

static bool parse_hex32(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 8; i++) {
        char c = s[i];
        uint32_t d;
        if (c >= '0' && c <= '9')
            d = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (uint32_t)(c - 'a' + 10);
        else
            return false;
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

bool fx__atomic_is_temp_name(const char *name)
{
    size_t prefix = sizeof TEMP_PREFIX - 1, suffix = sizeof TEMP_SUFFIX - 1;
    if (!name || strlen(name) != prefix + 16 + suffix || strncmp(name, TEMP_PREFIX, prefix) != 0 ||
        strcmp(name + prefix + 16, TEMP_SUFFIX) != 0)
        return false;
    uint32_t r, check;
    return parse_hex32(name + prefix, &r) && parse_hex32(name + prefix + 8, &check) && check == check_of(r);
}

static int fail(fx__atomic_file *f, const char *step, int e)
{
    if (f->error == 0) {
        f->error = e ? e : EIO;
        f->step = step;
    }
    return f->error;
}

/* Splits path into its folder (opened) and last component. A path ending in
 * '/', ".", ".." names a folder, not a file. */
static int open_parent(fx__atomic_file *f, const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return fail(f, "checking the file name", EISDIR);
    f->final_name = strdup(base);
    if (!f->final_name)
        return fail(f, "allocating", ENOMEM);
    if (!slash) {
        f->dir_fd = open(".", DIR_OPEN_FLAGS);
    } else {
        size_t len = slash == path ? 1 : (size_t)(slash - path);
        char *dir = strndup(path, len);
        if (!dir)
            return fail(f, "allocating", ENOMEM);
        f->dir_fd = open(dir, DIR_OPEN_FLAGS);
        free(dir);
    }
    return f->dir_fd < 0 ? fail(f, "opening its folder", errno) : 0;
}

/* The anonymous file, where the kernel, the file system and /proc (needed to
 * give it a name without privileges) allow it; -1 otherwise. */
static int open_anonymous(int dir_fd)
{
#ifdef O_TMPFILE
    if (access("/proc/self/fd", X_OK) != 0)
        return -1;
    return openat(dir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
#else
    (void)dir_fd;
    return -1;
#endif
}

/* open(O_CREAT | O_EXCL, 0666) rather than mkstemp(): the kernel applies the
 * umask (and any default ACL) exactly as for a file the user creates. */
static int open_named(fx__atomic_file *f)
{
    int e = EEXIST;
    for (unsigned attempt = 0; attempt < CREATE_TRIES && e == EEXIST; attempt++) {
        pick_temp_name(f, attempt);
        f->fd = openat(f->dir_fd, f->temp_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        e = f->fd >= 0 ? 0 : errno;
    }
    f->named = f->fd >= 0;
    return e;
}

int fx__atomic_open_mode(fx__atomic_file *f, const char *path, bool allow_anonymous)
{
    memset(f, 0, sizeof *f);
    f->dir_fd = f->fd = -1;
    int e = open_parent(f, path);
    if (e == 0) {
        f->buffer = malloc(BUFFER_SIZE);
        e = f->buffer ? 0 : fail(f, "allocating", ENOMEM);
    }
    if (e == 0) {
        f->fd = allow_anonymous ? open_anonymous(f->dir_fd) : -1;
        f->anonymous = f->fd >= 0;
        if (!f->anonymous && (e = open_named(f)) != 0)
            fail(f, "creating the temporary file", e);
    }
    if (e != 0) {
        int saved = f->error;
        const char *step = f->step;
        fx__atomic_abort(f);
        f->error = saved;
        f->step = step;
    }
    return e;
}

int fx__atomic_open(fx__atomic_file *f, const char *path)
{
    return fx__atomic_open_mode(f, path, true);
}

static int write_all(int fd, const unsigned char *data, size_t size)
{
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? errno : EIO;
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

static int flush_buffer(fx__atomic_file *f)
{
    if (f->error)
        return f->error;
    int e = write_all(f->fd, f->buffer, f->buffered);
    f->buffered = 0;
    return e ? fail(f, "writing", e) : 0;
}

int fx__atomic_write(fx__atomic_file *f, const void *data, size_t size)
{
    if (f->error)
        return f->error;
    if (f->fd < 0)
        return fail(f, "writing", EBADF);
    const unsigned char *p = data;
    if (f->buffered + size > BUFFER_SIZE && flush_buffer(f) != 0)
        return f->error;
    if (size >= BUFFER_SIZE) {
        int e = write_all(f->fd, p, size);
        return e ? fail(f, "writing", e) : 0;
    }
    memcpy(f->buffer + f->buffered, p, size);
    f->buffered += size;
    return 0;
}

/* Gives the complete anonymous file a temporary name; linkat() never replaces
 * an existing name (nor follows one that is a symlink). Only the instant
 * between this and the rename could leave the name behind. */
static int link_anonymous(fx__atomic_file *f)
{
    char proc_path[64];
    snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", f->fd);
    for (unsigned attempt = 0; attempt < CREATE_TRIES; attempt++) {
        pick_temp_name(f, attempt);
        if (linkat(AT_FDCWD, proc_path, f->dir_fd, f->temp_name, AT_SYMLINK_FOLLOW) == 0) {
            f->named = true;
            return 0;
        }
        if (errno != EEXIST)
            return errno;
    }
    return EEXIST;
}

int fx__atomic_commit(fx__atomic_file *f)
{
    if (flush_buffer(f) == 0 && fsync(f->fd) != 0 && errno != EINVAL) /* EINVAL: the file system cannot sync */
        fail(f, "flushing to disk", errno);
    if (f->error == 0 && f->anonymous) {
        int e = link_anonymous(f);
        if (e)
            fail(f, "naming the complete temporary file", e);
    }
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0 && f->error == 0)
        fail(f, "closing the temporary file", errno);
    if (f->error == 0) {
        if (renameat(f->dir_fd, f->temp_name, f->dir_fd, f->final_name) == 0)
            f->named = false;
        else
            fail(f, "renaming the temporary file over it", errno);
    }
    int e = f->error;
    const char *step = f->step;
    fx__atomic_abort(f);
    f->error = e;
    f->step = step;
    return e;
}

void fx__atomic_abort(fx__atomic_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    if (f->named)
        unlinkat(f->dir_fd, f->temp_name, 0);
    if (f->dir_fd >= 0)
        close(f->dir_fd);
    free(f->final_name);
    free(f->buffer);
    memset(f, 0, sizeof *f);
    f->fd = f->dir_fd = -1;
}

int fx__atomic_write_file(const char *path, const void *data, size_t size, const char **step)
{
    fx__atomic_file f;
    int e = fx__atomic_open(&f, path);
    if (e == 0)
        e = fx__atomic_write(&f, data, size);
    if (e == 0) {
        e = fx__atomic_commit(&f);
    } else if (f.fd >= 0) { /* open succeeded, write failed */
        const char *failed = f.step;
        fx__atomic_abort(&f);
        f.step = failed;
    }
    if (step)
        *step = e ? (f.step ? f.step : "writing") : NULL;
    return e;
}
