/* fx_pipeline_run (fxcam.h, "Pipelined batches over files"): passes of files
 * through the ordered three stages of stages.c: read + decode the next pass,
 * the model's pass, the caller's callback for the previous pass. */
#include "fx_internal.h"
#include "stages.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BATCH_SIZE 8u
#define MAX_BATCH_SIZE 4096u
#define DEFAULT_BATCH_MEMORY (1ull << 30)

void fx_pipeline_options_init(fx_pipeline_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->batch_size = DEFAULT_BATCH_SIZE;
    opts->batch_memory = DEFAULT_BATCH_MEMORY;
    opts->io_threads = 1;
}

/* One pass: items [first, first + count) of the paths. Read images are
 * packed into images[0..read) (what fx_gradcam_compute takes); image_of[k]
 * is item k's index there, or SIZE_MAX when it could not be read. */
typedef struct pass {
    size_t first, count, read;
    fx_image *images;
    fx_image_info *infos;
    size_t *image_of;
    fx_status *status;
    char **error;        /* item k's message (malloc), NULL when FX_OK */
    fx_result *result;   /* of the whole pass, or NULL ... */
    fx_result **alone;   /* ... one per read image when the pass failed as a whole */
    bool computed;
} pass;

typedef struct pipeline {
    fx_model *model;
    const char *const *paths;
    size_t n, next;      /* next: the reading stage's next path */
    size_t delivered;    /* items given to the callback (the delivering stage's) */
    fx_pipeline_options opts;
    fx_gradcam_options gradcam;
    fx_load_options load;
    fx_pipeline_fn callback;
    void *user;
    pthread_mutex_t lock;
    bool stopping;       /* under lock: the callback asked to stop, or a fatal error */
    fx_status fatal;     /* FX_OK, FX_ERR_CANCELLED or the pass's fatal status */
    char *fatal_message;
} pipeline;

static bool is_stopping(pipeline *p)
{
    pthread_mutex_lock(&p->lock);
    bool stopping = p->stopping;
    pthread_mutex_unlock(&p->lock);
    return stopping;
}

static void stop(pipeline *p, fx_status why)
{
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    if (p->fatal == FX_OK) {
        p->fatal = why;
        if (why != FX_ERR_CANCELLED)
            p->fatal_message = strdup(fx_last_error());
    }
    pthread_mutex_unlock(&p->lock);
}

static void pass_free(pass *ps)
{
    if (!ps)
        return;
    for (size_t i = 0; i < ps->read; i++) {
        fx_image_free(&ps->images[i]);
        if (ps->alone)
            fx_result_free(ps->alone[i]);
    }
    for (size_t k = 0; k < ps->count; k++)
        free(ps->error ? ps->error[k] : NULL);
    fx_result_free(ps->result);
    free(ps->alone);
    free(ps->images);
    free(ps->infos);
    free(ps->image_of);
    free(ps->status);
    free(ps->error);
    free(ps);
}

static pass *pass_new(size_t first, size_t capacity)
{
    pass *ps = calloc(1, sizeof *ps);
    if (!ps)
        return NULL;
    ps->first = first;
    ps->images = calloc(capacity, sizeof *ps->images);
    ps->infos = calloc(capacity, sizeof *ps->infos);
    ps->image_of = calloc(capacity, sizeof *ps->image_of);
    ps->status = calloc(capacity, sizeof *ps->status);
    ps->error = calloc(capacity, sizeof *ps->error);
    if (!ps->images || !ps->infos || !ps->image_of || !ps->status || !ps->error) {
        pass_free(ps);
        return NULL;
    }
    return ps;
}

/* An item without a result: its status and the message fx_last_error() holds
 * on this thread. */
static void item_failed(pass *ps, size_t k, fx_status status)
{
    ps->status[k] = status;
    ps->error[k] = strdup(fx_last_error());
    if (!ps->error[k])
        ps->status[k] = FX_ERR_OUT_OF_MEMORY;
}

/* The reading stage: up to batch_size paths, ending early once the decoded
 * bytes reach batch_memory (so an image larger than that runs alone). */
static void *load_pass(void *user)
{
    pipeline *p = user;
    if (p->next >= p->n || is_stopping(p))
        return NULL;
    size_t capacity = p->n - p->next < p->opts.batch_size ? p->n - p->next : p->opts.batch_size;
    pass *ps = pass_new(p->next, capacity);
    if (!ps) {
        fx__error(FX_ERR_OUT_OF_MEMORY, "fx_pipeline_run: cannot allocate a pass of %zu images", capacity);
        stop(p, FX_ERR_OUT_OF_MEMORY);
        return NULL;
    }
    uint64_t bytes = 0;
    while (ps->count < capacity && bytes < p->opts.batch_memory) {
        size_t k = ps->count++;
        const char *path = p->paths[p->next++];
        ps->image_of[k] = SIZE_MAX;
        fx_image_info *info = &ps->infos[ps->read];
        memset(info, 0, sizeof *info);
        info->struct_size = sizeof *info;
        fx_load_options load = p->load;
        load.info = info;
        fx_status st = path ? fx_image_load(path, &load, &ps->images[ps->read])
                            : fx__error(FX_ERR_INVALID_ARGUMENT, "fx_pipeline_run: paths[%zu] is NULL", ps->first + k);
        if (st != FX_OK) {
            memset(&ps->images[ps->read], 0, sizeof ps->images[ps->read]);
            item_failed(ps, k, st);
            continue;
        }
        const fx_image *img = &ps->images[ps->read];
        bytes += (uint64_t)img->stride * img->height;
        ps->image_of[k] = ps->read++;
    }
    return ps;
}

/* Statuses that every image would give: the run stops (as fxcam batch). */
static bool is_fatal(fx_status status)
{
    return status == FX_ERR_LAYER || status == FX_ERR_DEVICE || status == FX_ERR_NOT_AVAILABLE;
}

/* The model's stage: the pass, or each image alone when the pass fails for a
 * reason that may be one image's, so that one bad image fails alone. */
static bool compute_pass(void *user, void *unit)
{
    pipeline *p = user;
    pass *ps = unit;
    ps->computed = true;
    if (is_stopping(p))
        return false; /* the callback stopped the run: read no more */
    if (ps->read == 0)
        return true;
    fx_gradcam_options opts = p->gradcam;
    opts.image_info = ps->infos;
    fx_status st = fx_gradcam_compute(p->model, ps->images, ps->read, &opts, &ps->result);
    if (st == FX_OK)
        return true;
    ps->result = NULL;
    if (is_fatal(st)) {
        stop(p, st);
        return false;
    }
    ps->alone = calloc(ps->read, sizeof *ps->alone);
    if (!ps->alone) {
        fx__error(FX_ERR_OUT_OF_MEMORY, "fx_pipeline_run: cannot allocate %zu results", ps->read);
        stop(p, FX_ERR_OUT_OF_MEMORY);
        return false;
    }
    for (size_t k = 0; k < ps->count; k++) {
        size_t i = ps->image_of[k];
        if (i == SIZE_MAX)
            continue;
        opts.image_info = &ps->infos[i];
        st = fx_gradcam_compute(p->model, &ps->images[i], 1, &opts, &ps->alone[i]);
        if (st != FX_OK) {
            ps->alone[i] = NULL;
            item_failed(ps, k, st);
        }
    }
    return true;
}

/* The delivering stage: one callback per item in input order; frees the pass. */
static void deliver_pass(void *user, void *unit)
{
    pipeline *p = user;
    pass *ps = unit;
    for (size_t k = 0; k < ps->count && ps->computed && !is_stopping(p); k++) {
        size_t i = ps->image_of[k];
        fx_pipeline_item item = {.struct_size = sizeof item, .index = ps->first + k,
                                 .path = p->paths[ps->first + k], .status = ps->status[k],
                                 .error = ps->error[k] ? ps->error[k] : ""};
        if (i != SIZE_MAX) {
            item.image = &ps->images[i];
            item.info = &ps->infos[i];
            if (item.status == FX_OK) {
                item.result = ps->result ? ps->result : ps->alone[i];
                item.result_index = ps->result ? i : 0;
            }
        }
        p->delivered++;
        if (p->callback(p->user, &item) != 0)
            stop(p, FX_ERR_CANCELLED);
    }
    pass_free(ps);
}

static fx_status check_options(const fx_pipeline_options *o)
{
    if (o->batch_size < 1 || o->batch_size > MAX_BATCH_SIZE)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_pipeline_run: batch_size is %u; valid: 1 to %u", o->batch_size,
                         MAX_BATCH_SIZE);
    if (o->batch_memory < 1)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_pipeline_run: batch_memory is 0; valid: 1 byte or more "
                                                  "(default 1 GiB)");
    if (o->io_threads > 1)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_pipeline_run: io_threads is %u; valid: 0 (one step after "
                                                  "another) or 1 (reading and callbacks beside the model)",
                         o->io_threads);
    return FX_OK;
}

fx_status fx_pipeline_run(fx_model *model, const char *const *paths, size_t n, const fx_pipeline_options *opts,
                          fx_pipeline_fn callback, void *user)
{
    if (!model || !callback || (!paths && n > 0))
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_pipeline_run: %s is NULL",
                         !model ? "model" : !callback ? "callback" : "paths (with n > 0)");
    pipeline p = {.model = model, .paths = paths, .n = n, .callback = callback, .user = user};
    fx_pipeline_options_init(&p.opts);
    fx_status st = fx__options_merge(&p.opts, sizeof p.opts, opts, "fx_pipeline_options");
    if (st == FX_OK)
        st = check_options(&p.opts);
    fx_gradcam_options_init(&p.gradcam);
    fx_load_options_init(&p.load);
    if (st == FX_OK)
        st = fx__options_merge(&p.gradcam, sizeof p.gradcam, p.opts.gradcam, "fx_pipeline_options.gradcam");
    if (st == FX_OK)
        st = fx__options_merge(&p.load, sizeof p.load, p.opts.load, "fx_pipeline_options.load");
    if (st != FX_OK)
        return st;
    if (pthread_mutex_init(&p.lock, NULL) != 0)
        return fx__error(FX_ERR_OUT_OF_MEMORY, "fx_pipeline_run: cannot create a mutex");
    fx__stages stages = {&p, load_pass, compute_pass, deliver_pass};
    fx__stages_run(&stages, p.opts.io_threads > 0);
    pthread_mutex_destroy(&p.lock);
    st = p.fatal;
    if (st == FX_ERR_CANCELLED)
        fx__error(st, "fx_pipeline_run: the callback asked to stop after %zu of %zu images", p.delivered, n);
    else if (st != FX_OK)
        fx__error(st, "%s", p.fatal_message ? p.fatal_message : fx_status_str(st));
    free(p.fatal_message);
    return st;
}
