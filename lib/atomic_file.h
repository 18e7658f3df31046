/* Atomic file writing: the one way fxcam creates a final file (PNG images in
 * lib/image.c, summaries and CSV files in the fxcam command). Internal, not
 * installed, and free of other fxcam code, so that the command compiles the
 * same source (cli/meson.build) without the library exporting it.
 *
 * A writer never follows or writes through a symbolic link that someone else
 * planted in the target's folder:
 * - the data goes to an anonymous file (Linux O_TMPFILE) that has no name
 *   until it is complete, so no name can be pre-empted while writing;
 * - once complete it is linked under a fresh temporary name (linkat() fails
 *   on any existing name, a symlink included) and renamed over the target:
 *   rename() replaces a symlink at the target name itself, never its target;
 * - fallback, only where the file system or kernel lacks O_TMPFILE or /proc
 *   is missing: the temporary name is created with O_CREAT | O_EXCL |
 *   O_NOFOLLOW, which fails on an existing name, and then renamed. A process
 *   killed while writing can then leave that temporary name behind.
 * Temporary names are ".fxcam-<8 hex random><8 hex check>.tmp": the check
 * digits are a hash of the random ones, so fx__atomic_is_temp_name()
 * recognizes fxcam's own leftovers and nothing a user named by chance
 * (1 in 2^32).
 *
 * Functions return 0 or an errno value; they print nothing and keep no global
 * state (thread-safe for different files). */
#ifndef FX_ATOMIC_FILE_H
#define FX_ATOMIC_FILE_H

#include <stdbool.h>
#include <stddef.h>

#define FX_ATOMIC_TEMP_NAME_SIZE 32 /* ".fxcam-" + 16 hex + ".tmp" + NUL, rounded up */

typedef struct fx__atomic_file {
    int dir_fd;             /* the target's folder */
    int fd;                 /* the data; -1 once closed */
    bool anonymous;         /* O_TMPFILE: no name until commit */
    bool named;             /* temp_name exists in the folder (removed on abort) */
    char *final_name;       /* last component of the target path */
    char temp_name[FX_ATOMIC_TEMP_NAME_SIZE];
    unsigned char *buffer;  /* writes are collected here first */
    size_t buffered;
    int error;              /* first failure; later calls return it */
    const char *step;       /* what failed, for messages: "creating the temporary file", ... */
} fx__atomic_file;

/* Starts writing the file `path` (its folder must exist). On success *f must
 * end with fx__atomic_commit() or fx__atomic_abort(); on failure nothing is
 * left to clean up and f->step says what failed. allow_anonymous = false
 * forces the named fallback (for tests). */
int fx__atomic_open(fx__atomic_file *f, const char *path);
int fx__atomic_open_mode(fx__atomic_file *f, const char *path, bool allow_anonymous);

/* Appends size bytes. Errors are sticky: a later commit fails with the same
 * errno. */
int fx__atomic_write(fx__atomic_file *f, const void *data, size_t size);

/* Flushes, fsyncs, names the file and renames it over the target, so that
 * after a crash the target holds either its old content or the complete new
 * one. Always releases *f (no abort needed after it). On failure the target
 * is untouched, no temporary name is left, and f->step says what failed. */
int fx__atomic_commit(fx__atomic_file *f);

/* Discards the data and releases *f; the target is untouched. Idempotent. */
void fx__atomic_abort(fx__atomic_file *f);

/* open + write + commit. On failure *step (may be NULL) says what failed. */
int fx__atomic_write_file(const char *path, const void *data, size_t size, const char **step);

/* Whether a file name (no folder) is one of fxcam's temporary names. */
bool fx__atomic_is_temp_name(const char *name);

#endif
