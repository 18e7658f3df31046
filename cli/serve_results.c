/* Results kept for GET /api/v1/results/<id>/<name>.png (docs/serve.md,
 * "Results by reference"): a store bounded in count, bytes and age, evicting
 * the least recently used result first. One mutex guards it; a GET copies
 * the PNG out, so an eviction never frees bytes a response still sends. */
#include "serve.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

typedef struct entry {
    char id[SERVE_RESULT_ID_SIZE];
    double created;
    serve_result_file *files;
    size_t file_count;
    size_t bytes;
    struct entry *newer, *older;
} entry;

struct serve_results {
    pthread_mutex_t lock;
    size_t max_count, max_bytes;
    double ttl;
    entry *newest, *oldest; /* LRU list */
    size_t count, bytes;
};

serve_results *serve_results_new(size_t max_count, size_t max_bytes, double ttl_seconds)
{
    serve_results *s = calloc(1, sizeof *s);
    if (!s) {
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->max_count = max_count;
    s->max_bytes = max_bytes;
    s->ttl = ttl_seconds;
    return s;
}

static void free_files(serve_result_file *files, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        serve_bytes_free(&files[i].png);
    }
}

static void unlink_entry(serve_results *s, entry *e)
{
    if (e->newer) {
        e->newer->older = e->older;
    } else {
        s->newest = e->older;
    }
    if (e->older) {
        e->older->newer = e->newer;
    } else {
        s->oldest = e->newer;
    }
    e->newer = e->older = NULL;
}

static void push_newest(serve_results *s, entry *e)
{
    e->older = s->newest;
    e->newer = NULL;
    if (s->newest) {
        s->newest->newer = e;
    } else {
        s->oldest = e;
    }
    s->newest = e;
}

static void drop(serve_results *s, entry *e)
{
    unlink_entry(s, e);
    s->count--;
    s->bytes -= e->bytes;
    free_files(e->files, e->file_count);
    free(e->files);
    free(e);
}

/* Expiry counts from creation, not from the last GET: a result is never
 * served longer than ttl after it was computed. */
static void drop_expired(serve_results *s, double now)
{
    entry *e = s->oldest;
    while (e) {
        entry *newer = e->newer;
        if (now - e->created >= s->ttl) {
            drop(s, e);
        }
        e = newer;
    }
}

void serve_results_free(serve_results *s)
{
    if (!s) {
        return;
    }
    while (s->oldest) {
        drop(s, s->oldest);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* 128 bits from the kernel's CSPRNG as 32 lowercase hex digits. No weaker
 * fallback: an id that can be guessed would hand out another's result. */
static bool random_id(char id[SERVE_RESULT_ID_SIZE])
{
    uint8_t raw[16];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        got += (size_t)n;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof raw; i++) {
        id[2 * i] = hex[raw[i] >> 4];
        id[2 * i + 1] = hex[raw[i] & 15];
    }
    id[32] = '\0';
    return true;
}

serve_put_status serve_results_put(serve_results *s, serve_result_file *files, size_t count, double now,
                                   char id[SERVE_RESULT_ID_SIZE])
{
    size_t bytes = 0;
    for (size_t i = 0; i < count; i++) {
        bytes += files[i].png.size;
    }
    if (bytes > s->max_bytes) {
        free_files(files, count);
        return SERVE_PUT_TOO_LARGE;
    }
    entry *e = calloc(1, sizeof *e);
    serve_result_file *copy = e ? malloc(count * sizeof *copy) : NULL;
    if (!copy || !random_id(e->id)) {
        free(copy);
        free(e);
        free_files(files, count);
        return copy ? SERVE_PUT_NO_RANDOM : SERVE_PUT_NO_MEMORY;
    }
    memcpy(copy, files, count * sizeof *copy); /* the PNG buffers move, they are not copied */
    for (size_t i = 0; i < count; i++) {
        memset(&files[i].png, 0, sizeof files[i].png);
    }
    e->files = copy;
    e->file_count = count;
    e->bytes = bytes;
    e->created = now;
    pthread_mutex_lock(&s->lock);
    drop_expired(s, now);
    while (s->oldest && (s->count + 1 > s->max_count || s->bytes + bytes > s->max_bytes)) {
        drop(s, s->oldest);
    }
    push_newest(s, e);
    s->count++;
    s->bytes += bytes;
    memcpy(id, e->id, SERVE_RESULT_ID_SIZE);
    pthread_mutex_unlock(&s->lock);
    return SERVE_PUT_OK;
}

/* Compares every byte whatever the first difference is, so that the time a
 * lookup takes says nothing about how close a guessed id was. */
static bool same_id(const char *a, const char *b)
{
    unsigned char diff = 0;
    for (size_t i = 0; i < SERVE_RESULT_ID_SIZE - 1; i++) {
        diff |= (unsigned char)(a[i] ^ b[i]);
    }
    return diff == 0;
}

/* "heatmap" and "overlay" name the first method's file ("heatmap-<method>"). */
static const serve_result_file *find_file(const entry *e, const char *name)
{
    bool first_of = strcmp(name, "heatmap") == 0 || strcmp(name, "overlay") == 0;
    size_t len = strlen(name);
    for (size_t i = 0; i < e->file_count; i++) {
        const char *f = e->files[i].name;
        if (strcmp(f, name) == 0 || (first_of && strncmp(f, name, len) == 0 && f[len] == '-')) {
            return &e->files[i];
        }
    }
    return NULL;
}

bool serve_results_get(serve_results *s, const char *id, const char *name, double now, serve_bytes *out)
{
    memset(out, 0, sizeof *out);
    if (strlen(id) != SERVE_RESULT_ID_SIZE - 1) {
        return false;
    }
    bool found = false;
    pthread_mutex_lock(&s->lock);
    drop_expired(s, now);
    entry *hit = NULL;
    for (entry *e = s->newest; e; e = e->older) {
        if (same_id(e->id, id)) {
            hit = e;
        }
    }
    const serve_result_file *f = hit ? find_file(hit, name) : NULL;
    if (f) {
        out->data = malloc(f->png.size ? f->png.size : 1);
        if (out->data) {
            memcpy(out->data, f->png.data, f->png.size);
            out->size = out->capacity = f->png.size;
            found = true;
        }
        unlink_entry(s, hit);
        push_newest(s, hit);
    }
    pthread_mutex_unlock(&s->lock);
    return found;
}

void serve_results_usage(serve_results *s, size_t *count, size_t *bytes)
{
    pthread_mutex_lock(&s->lock);
    *count = s->count;
    *bytes = s->bytes;
    pthread_mutex_unlock(&s->lock);
}
