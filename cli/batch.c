/* fxcam batch: every image of a folder (PNG, JPEG, DICOM) through the model, several images per
 * forward pass, one output per image, and summary.txt / summary.csv.
 *
 * Hostile or shared folders: only regular files are inputs (a FIFO named
 * x.png is listed, never opened); --recursive remembers each folder by
 * (st_dev, st_ino), so symlink loops end; output names are unique even when
 * inputs differ only in the case of their extension; images are decoded as
 * their forward pass needs them, and a pass is bounded in bytes; files are
 * written through lib/atomic_file.c.
 *
 * Which files are inputs: every regular file named .png, .jpg, .jpeg, .dcm
 * or .dicom (any case; the decoder goes by the content, and one that cannot
 * be read fails and is reported), and any other regular file whose first
 * bytes are a PNG, JPEG or DICOM signature (DICOM files from a PACS often have
 * no extension, or a UID for a name). Everything else is listed as ignored,
 * with the reason, on stderr and in the summaries: never skipped silently. */
#include "batch.h"
#include "lib/atomic_file.h"
#include "lib/stages.h"
#include "report.h"
#include "shard.h"
#include "target_classes.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static void out_of_memory(void)
{
    fputs("fxcam batch: error: out of memory\n", stderr);
    exit(CLI_EXIT_FAILURE);
}

static batch_item *list_add(item_list *list)
{
    if (list->count == list->capacity) {
        size_t cap = list->capacity ? list->capacity * 2 : 64;
        batch_item *items = realloc(list->items, cap * sizeof *items);
        if (!items) {
            out_of_memory();
        }
        list->items = items;
        list->capacity = cap;
    }
    batch_item *item = &list->items[list->count++];
    memset(item, 0, sizeof *item);
    item->predicted = -1;
    return item;
}

static void list_free(item_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i].rel);
        free(list->items[i].input);
        free(list->items[i].output);
        free(list->items[i].reason);
    }
    free(list->items);
}

/* --shard K/N: keeps the files (inputs and ignored ones) of this shard only,
 * so that the shards' summaries hold every file of the folder once. */
static void keep_shard(batch_run *run)
{
    item_list *lists[] = {&run->pngs, &run->ignored};
    for (size_t l = 0; l < 2; l++) {
        item_list *list = lists[l];
        size_t kept = 0;
        for (size_t i = 0; i < list->count; i++) {
            batch_item *item = &list->items[i];
            if (cli_shard_contains(run->s, item->rel)) {
                list->items[kept++] = *item;
            } else {
                free(item->rel);
                free(item->input);
                free(item->output);
                free(item->reason);
            }
        }
        list->count = kept;
    }
}

static int compare_items(const void *a, const void *b)
{
    return strcmp(((const batch_item *)a)->rel, ((const batch_item *)b)->rel);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), m = strlen(suffix);
    return n >= m && strcmp(name + n - m, suffix) == 0;
}

/* Files this command writes, recognised so that a rerun with the outputs in
 * the input folder does not take them for inputs. */
static bool is_own_output(const batch_run *run, const char *name)
{
    return has_suffix(name, run->suffix) || strcmp(name, "summary.txt") == 0 || strcmp(name, "summary.csv") == 0 ||
           cli_shard_is_summary_name(name) || report_is_own_file(run->s, run->suffix, name);
}

/* ---- Collecting the inputs ---------------------------------------------- */

static int compare_dir_ids(const void *a, const void *b)
{
    const dir_id *x = a, *y = b;
    if (x->dev != y->dev) {
        return x->dev < y->dev ? -1 : 1;
    }
    return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Records a folder; false when it was already there. */
static bool visit(batch_run *run, dev_t dev, ino_t ino)
{
    dir_id id = {dev, ino};
    size_t lo = 0, hi = run->visited_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = compare_dir_ids(&run->visited[mid], &id);
        if (c == 0) {
            return false;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    dir_id *v = realloc(run->visited, (run->visited_count + 1) * sizeof *v);
    if (!v) {
        out_of_memory();
    }
    memmove(v + lo + 1, v + lo, (run->visited_count - lo) * sizeof *v);
    v[lo] = id;
    run->visited = v;
    run->visited_count++;
    return true;
}

static const char *file_kind(mode_t mode)
{
    return S_ISFIFO(mode) ? "a FIFO" : S_ISSOCK(mode) ? "a socket" : S_ISCHR(mode) ? "a character device"
         : S_ISBLK(mode) ? "a block device" : "not a regular file";
}

static void add_ignored(batch_run *run, char *rel, enum item_state state, char *reason)
{
    batch_item *item = list_add(&run->ignored);
    item->rel = rel;
    item->state = state;
    item->reason = reason;
}

/* The names of a folder, sorted, so that the walk (and which of two links to
 * one folder counts) does not depend on the file system's order. */
static char **read_names(DIR *d, size_t *count)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) {
                out_of_memory();
            }
            names = grown;
        }
        names[n++] = cli_strdup_printf("%s", e->d_name);
    }
    if (n) {
        qsort(names, n, sizeof *names, compare_names);
    }
    *count = n;
    return names;
}

static void collect(batch_run *run, const char *dir, const char *rel_dir);

/* Whether a regular file whose name is not an image name is an image by its
 * first bytes; when not, it is listed as ignored (taking rel) with the
 * reason. */
static bool found_by_content(batch_run *run, const char *path, const char *name, char *rel)
{
    cli_format format = cli_sniff_format(path);
    if (format > CLI_FORMAT_UNKNOWN) {
        return true;
    }
    if (format == CLI_FORMAT_UNREADABLE) {
        add_ignored(run, rel, ITEM_IGNORED,
                    cli_strdup_printf("cannot read its first bytes to recognise the format: %s", strerror(errno)));
        return false;
    }
    const char *dot = strrchr(name, '.');
    char *reason = dot && dot != name
        ? cli_strdup_printf("not an image fxcam reads: the name ends in '%s', not .png, .jpg, .jpeg, .dcm or "
                            ".dicom, and the content is not PNG, JPEG or DICOM", dot)
        : cli_strdup_printf("not an image fxcam reads: no extension, and the content is not PNG, JPEG or DICOM "
                            "(a DICOM file has \"DICM\" at byte 128, or starts with a little-endian "
                            "group 0002 or 0008 element when it has no preamble)");
    add_ignored(run, rel, ITEM_IGNORED, reason);
    return false;
}

static void collect_entry(batch_run *run, const char *dir, const char *rel_dir, const char *name)
{
    char *path = cli_strdup_printf("%s/%s", dir, name);
    char *rel = rel_dir[0] ? cli_strdup_printf("%s/%s", rel_dir, name) : cli_strdup_printf("%s", name);
    bool named = cli_is_image_name(name);
    struct stat st, link;
    /* stat follows symlinks: a link to an image or a folder counts as one. */
    if (stat(path, &st) != 0) {
        add_ignored(run, rel, named ? ITEM_FAILED : ITEM_IGNORED,
                    cli_strdup_printf("cannot read: %s", strerror(errno)));
    } else if (S_ISDIR(st.st_mode)) {
        bool is_out = st.st_dev == run->out_dir.dev && st.st_ino == run->out_dir.ino && !run->same_dir;
        if (!run->s->recursive || is_out) {
            free(rel);
        } else if (lstat(path, &link) == 0 && S_ISLNK(link.st_mode)) {
            /* Linked folders wait until the real tree is walked, so that a
             * folder counts under its own name, not under a link to it. */
            batch_item *later = list_add(&run->linked_dirs);
            later->input = path;
            later->rel = rel;
            path = NULL;
        } else if (!visit(run, st.st_dev, st.st_ino)) {
            add_ignored(run, rel, ITEM_IGNORED,
                        cli_strdup_printf("a folder already included (symbolic link); not descended again"));
        } else {
            collect(run, path, rel);
            free(rel);
        }
    } else if (!S_ISREG(st.st_mode)) {
        add_ignored(run, rel, ITEM_IGNORED, cli_strdup_printf("%s, not a regular file; not opened",
                                                              file_kind(st.st_mode)));
    } else if (fx__atomic_is_temp_name(name) || (run->same_dir && is_own_output(run, name))) {
        free(rel);
    } else if (named || found_by_content(run, path, name, rel)) {
        batch_item *item = list_add(&run->pngs);
        item->rel = rel;
        item->input = path;
        item->whole_name = !named;
        path = NULL;
    }
    free(path);
}

/* The tree below dir, then the linked folders it holds that lead to folders
 * not seen yet (each once: visited by (st_dev, st_ino), so loops end). */
static void collect_tree(batch_run *run, const char *dir)
{
    collect(run, dir, "");
    for (size_t i = 0; i < run->linked_dirs.count; i++) {
        batch_item *link = &run->linked_dirs.items[i];
        struct stat st;
        if (stat(link->input, &st) != 0 || !visit(run, st.st_dev, st.st_ino)) {
            add_ignored(run, link->rel, ITEM_IGNORED,
                        cli_strdup_printf("a folder already included (symbolic link); not descended again"));
            link->rel = NULL;
            continue;
        }
        char *path = link->input, *rel = link->rel;
        collect(run, path, rel); /* may grow linked_dirs: index, not pointer, from here on */
        free(path);
        free(rel);
        run->linked_dirs.items[i].input = NULL;
        run->linked_dirs.items[i].rel = NULL;
    }
}

static void collect(batch_run *run, const char *dir, const char *rel_dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        add_ignored(run, cli_strdup_printf("%s", rel_dir[0] ? rel_dir : "."), ITEM_FAILED,
                    cli_strdup_printf("cannot open the folder: %s", strerror(errno)));
        return;
    }
    size_t count = 0;
    char **names = read_names(d, &count);
    closedir(d);
    for (size_t i = 0; i < count; i++) {
        collect_entry(run, dir, rel_dir, names[i]);
        free(names[i]);
    }
    free(names);
}

/* ---- Output names ------------------------------------------------------- */

/* Output name of an input at a disambiguation level: 0 = "<stem><suffix>",
 * 1 = "<stem>_<ext><suffix>" (the extension kept as written), k >= 2 =
 * "<stem>_<ext>_<k><suffix>". The stem is the name without its image
 * extension: a.png, a.PNG, a.jpg and a.dcm all start from "a" and the
 * levels keep them apart; an input found by content keeps its whole name. */
static char *output_name(const batch_run *run, const batch_item *item, unsigned level)
{
    const char *rel = item->rel;
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    const char *dot = item->whole_name ? NULL : strrchr(base, '.');
    size_t stem = dot && dot != base ? (size_t)(dot - rel) : strlen(rel);
    const char *ext = dot && dot != base ? dot + 1 : "";
    if (level == 0) {
        return cli_strdup_printf("%s/%.*s%s", run->s->output_dir, (int)stem, rel, run->suffix);
    }
    if (level == 1) {
        return cli_strdup_printf("%s/%.*s_%s%s", run->s->output_dir, (int)stem, rel, ext, run->suffix);
    }
    return cli_strdup_printf("%s/%.*s_%s_%u%s", run->s->output_dir, (int)stem, rel, ext, level, run->suffix);
}

typedef struct name_slot {
    batch_item *item;
    unsigned level;
} name_slot;

static int compare_slots(const void *a, const void *b)
{
    const name_slot *x = a, *y = b;
    int c = strcmp(x->item->output, y->item->output);
    if (c == 0) {
        /* Within a clash the least changed name wins, then the exact ".png",
         * then sorted order. */
        c = (x->level > y->level) - (x->level < y->level);
    }
    if (c == 0) {
        c = !has_suffix(x->item->rel, ".png") - !has_suffix(y->item->rel, ".png");
    }
    return c ? c : strcmp(x->item->rel, y->item->rel);
}

/* Gives every input of the folder (not only the first --max-images) a unique
 * output name, deterministic for a given set of names: a.png keeps
 * a_<method>.png, a.PNG next to it gets a_PNG_<method>.png, a.jpg
 * a_jpg_<method>.png. */
static void assign_outputs(batch_run *run)
{
    size_t n = run->pngs.count;
    name_slot *slots = calloc(n ? n : 1, sizeof *slots);
    if (!slots) {
        out_of_memory();
    }
    for (size_t i = 0; i < n; i++) {
        slots[i].item = &run->pngs.items[i];
        slots[i].item->output = output_name(run, slots[i].item, 0);
    }
    for (bool clash = true; clash;) {
        clash = false;
        qsort(slots, n, sizeof *slots, compare_slots);
        for (size_t i = 1; i < n; i++) {
            if (strcmp(slots[i].item->output, slots[i - 1].item->output) != 0) {
                continue;
            }
            /* slots[i - 1] keeps the name (it sorts first); every later one of the
             * run moves on. Levels only grow, so this ends. */
            for (size_t j = i; j < n && strcmp(slots[j].item->output, slots[i - 1].item->output) == 0; j++) {
                slots[j].level = slots[j].level == 0 ? 1 : slots[j].level + 1;
                free(slots[j].item->output);
                slots[j].item->output = output_name(run, slots[j].item, slots[j].level);
                i = j;
            }
            clash = true;
        }
    }
    free(slots);
}

/* ---- Leftovers of an interrupted run ------------------------------------- */

/* Only names fxcam's atomic writer makes (a checked random tag), only regular
 * files of this user, never through a symlink: anything else is the user's. */
static size_t remove_stale_temporaries(const batch_run *run, const char *dir, unsigned depth)
{
    DIR *d = opendir(dir);
    if (!d) {
        return 0;
    }
    size_t count = 0, removed = 0;
    char **names = read_names(d, &count);
    closedir(d);
    for (size_t i = 0; i < count; i++) {
        char *path = cli_strdup_printf("%s/%s", dir, names[i]);
        struct stat st;
        if (lstat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode) && run->s->recursive && depth < 256) {
                removed += remove_stale_temporaries(run, path, depth + 1);
            } else if (S_ISREG(st.st_mode) && st.st_uid == geteuid() && fx__atomic_is_temp_name(names[i])) {
                removed += unlink(path) == 0;
            }
        }
        free(path);
        free(names[i]);
    }
    free(names);
    return removed;
}

/* Marks an item failed. Its progress line comes when the write stage reaches
 * it (report_failure), so that lines keep the input order when the stages of
 * the pipeline overlap. */
static void mark_failed(batch_item *item, const char *what, const char *why)
{
    item->state = ITEM_FAILED;
    free(item->reason);
    item->reason = cli_strdup_printf("%s: %s", what, why);
}

static void report_failure(batch_run *run, const batch_item *item)
{
    char *outcome = cli_strdup_printf("FAILED (%s)", item->reason);
    cli_progress_step(&run->progress, item->rel, outcome, true);
    free(outcome);
}

static void record_failure(batch_run *run, batch_item *item, const char *what, const char *why)
{
    mark_failed(item, what, why);
    report_failure(run, item);
}

/* A write that failed for want of space (a full disk, a quota, a file size
 * limit) fails every later one too: the run stops there, with the figures
 * written so far whole (atomic writes), and the summary says where. The
 * library reports the system's message (strerror), matched here. */
static bool is_out_of_space(const char *message)
{
    const int codes[] = {ENOSPC, EDQUOT, EFBIG};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        if (strstr(message, strerror(codes[i]))) {
            return true;
        }
    }
    return false;
}

static void stop_run(batch_run *run, const batch_item *item, const char *why)
{
    pthread_mutex_lock(&run->stop_lock);
    if (!run->stopped) {
        run->stopped = cli_strdup_printf("stopped at %s: %s; the images after it were not processed", item->rel, why);
    }
    pthread_mutex_unlock(&run->stop_lock);
}

static bool is_stopping(batch_run *run)
{
    pthread_mutex_lock(&run->stop_lock);
    bool stopping = run->stopped != NULL;
    pthread_mutex_unlock(&run->stop_lock);
    return stopping;
}

/* info: what the loader found out about image (its bits stored), so that
 * the figure shows the image as the model read it. */
static void finish_item(batch_run *run, batch_item *item, const fx_image *image, const fx_image_info *info,
                        const fx_result *result, size_t i)
{
    if (!run->layer) {
        run->layer = cli_strdup_printf("%s", fx_result_layer(result));
    }
    char *slash = strrchr(item->output, '/');
    *slash = '\0';
    int made = cli_make_dirs(item->output);
    *slash = '/';
    if (made != 0) {
        record_failure(run, item, "cannot create the output folder", strerror(errno));
        return;
    }
    const cli_annotation *boxes = run->has_boxes ? cli_annotations_lookup(&run->boxes, item->rel) : NULL;
    fx_status status = cli_write_output_info(run->s, run->model, image, info, result, i, 0, item->output, item->rel,
                                             boxes);
    if (status != FX_OK) {
        record_failure(run, item, "cannot write the output", fx_last_error());
        if (is_out_of_space(fx_last_error())) {
            stop_run(run, item, cli_message(fx_last_error()));
        }
        return;
    }
    item->state = ITEM_DONE;
    item->predicted = fx_result_predicted_class(result, i);
    item->confidence = fx_result_confidence(result, i);
    cli_heatmap_peak(fx_result_heatmap(result, i, 0), &item->peak_x, &item->peak_y);
    char outcome[160];
    snprintf(outcome, sizeof outcome, "%s (%.1f%%)", fx_model_class_name(run->model, (uint32_t)item->predicted),
             100.0 * item->confidence);
    cli_progress_step(&run->progress, item->rel, outcome, false);
    if (run->s->report) {
        batch_report_thumbnail(run, item, image, info, result, i);
    }
}

/* A wrong layer (or device) fails every image the same way: stop at once. */
static bool is_fatal(fx_status status)
{
    return status == FX_ERR_LAYER || status == FX_ERR_DEVICE || status == FX_ERR_NOT_AVAILABLE ||
           status == FX_ERR_CANCELLED; /* Ctrl-C during Score-/Ablation-CAM: no one-image retries */
}

/* One forward pass and the items it covers: every pending item of its span
 * of the input list in order, also those whose image could not be read, so
 * that their lines keep their place. */
typedef struct chunk_entry {
    batch_item *item;
    size_t image; /* index in images, for an item that was read */
} chunk_entry;

typedef struct chunk {
    chunk_entry *entries;
    size_t entry_count, entry_capacity;
    fx_image *images; /* batch_size slots */
    fx_image_info *infos; /* batch_size slots: what the loader found out about images[k] (bits stored),
                           * for the intensity rule of the pass and of the figure */
    size_t count;     /* images read */
    uint64_t bytes;
    bool computed;    /* compute_chunk ran (not after a fatal error) */
    bool counted;     /* bytes are in run->in_flight */
    fx_result *result;  /* of the whole pass, or NULL ... */
    fx_result **alone;  /* ... one per image, when the pass failed as a whole */
    fx_status fatal;    /* FX_OK, or the status that stops the run */
} chunk;

static chunk *chunk_new(uint32_t batch_size)
{
    chunk *c = calloc(1, sizeof *c);
    if (!c || !(c->images = calloc(batch_size, sizeof *c->images)) ||
        !(c->infos = calloc(batch_size, sizeof *c->infos))) {
        out_of_memory();
    }
    return c;
}

static void chunk_add(chunk *c, batch_item *item, size_t image)
{
    if (c->entry_count == c->entry_capacity) {
        size_t cap = c->entry_capacity ? c->entry_capacity * 2 : 16;
        chunk_entry *grown = realloc(c->entries, cap * sizeof *grown);
        if (!grown) {
            out_of_memory();
        }
        c->entries = grown;
        c->entry_capacity = cap;
    }
    c->entries[c->entry_count++] = (chunk_entry){item, image};
}

/* Every pass read and not yet written counts against --batch-memory, so that
 * overlapping the stages does not multiply the memory a run holds. */
static void count_in_flight(batch_run *run, uint64_t bytes, bool add)
{
    pthread_mutex_lock(&run->stop_lock);
    run->in_flight = add ? run->in_flight + bytes : run->in_flight - bytes;
    pthread_cond_broadcast(&run->memory_freed);
    pthread_mutex_unlock(&run->stop_lock);
}

/* The reading stage waits while the passes in flight and the one it builds
 * would exceed --batch-memory; with nothing in flight it goes on (an image
 * larger than the budget runs alone). One step after another, nothing is
 * ever in flight here. */
static void wait_for_memory(batch_run *run, uint64_t more)
{
    pthread_mutex_lock(&run->stop_lock);
    while (run->in_flight > 0 && run->in_flight + more > run->s->batch_memory && !run->stopped) {
        pthread_cond_wait(&run->memory_freed, &run->stop_lock);
    }
    pthread_mutex_unlock(&run->stop_lock);
}

static void chunk_free(batch_run *run, chunk *c)
{
    if (c->counted) {
        count_in_flight(run, c->bytes, false);
    }
    for (size_t k = 0; k < c->count; k++) {
        fx_image_free(&c->images[k]);
        if (c->alone) {
            fx_result_free(c->alone[k]);
        }
    }
    fx_result_free(c->result);
    free(c->alone);
    free(c->images);
    free(c->infos);
    free(c->entries);
    free(c);
}

/* With --target-classes, each read image's class (malloc'ed), else NULL;
 * cli_target_classes_check_covered made sure every computed file is listed. */
static int32_t *chunk_targets(const batch_run *run, const chunk *c)
{
    if (!run->targets) {
        return NULL;
    }
    int32_t *targets = malloc(c->count * sizeof *targets);
    if (!targets) {
        out_of_memory();
    }
    for (size_t k = 0; k < c->count; k++) {
        targets[k] = -1; /* every read image has a pending entry below */
    }
    for (size_t e = 0; e < c->entry_count; e++) {
        const cli_target_class *t = cli_target_classes_find(run->targets, c->entries[e].item->rel);
        if (c->entries[e].item->state == ITEM_PENDING && c->entries[e].image < c->count) {
            targets[c->entries[e].image] = t ? t->target : -1;
        }
    }
    return targets;
}

static const char *item_file(const void *items, size_t i)
{
    return ((const batch_item *)items)[i].rel;
}

/* The model's stage: the pass, or when it fails as a whole (not for a reason
 * that fails every image), each image alone, to find which one was at fault
 * without failing the others. false on a fatal error. */
static bool compute_chunk(batch_run *run, chunk *c)
{
    c->computed = true;
    if (c->count == 0) {
        return true;
    }
    double start = cli_now();
    /* Each image's own bits stored: a 12-bit radiograph in a 16-bit PNG
     * (sBIT 12) is read as v / 4095, as fxcam single reads it. */
    fx_gradcam_options opts = run->opts;
    opts.image_info = c->infos;
    int32_t *targets = chunk_targets(run, c); /* --target-classes: each image's class, or NULL */
    opts.target_classes = targets;
    fx_status status = fx_gradcam_compute(run->model, c->images, c->count, &opts, &c->result);
    if (status != FX_OK) {
        c->result = NULL;
        if (is_fatal(status)) {
            c->fatal = status;
            free(targets);
            run->compute_seconds += cli_now() - start;
            return false;
        }
        c->alone = calloc(c->count, sizeof *c->alone);
        if (!c->alone) {
            out_of_memory();
        }
        for (size_t e = 0; e < c->entry_count; e++) {
            chunk_entry *entry = &c->entries[e];
            opts.image_info = &c->infos[entry->image];
            opts.target_classes = targets ? &targets[entry->image] : NULL;
            if (entry->item->state == ITEM_PENDING &&
                fx_gradcam_compute(run->model, &c->images[entry->image], 1, &opts, &c->alone[entry->image]) != FX_OK) {
                c->alone[entry->image] = NULL;
                mark_failed(entry->item, "cannot compute the heatmap", fx_last_error());
            }
        }
    }
    free(targets);
    run->compute_seconds += cli_now() - start;
    return true;
}

/* The writing stage: figures, progress lines and warnings, in input order;
 * frees the chunk. After a full disk (stop_run) the rest stays pending. */
static void write_chunk(batch_run *run, chunk *c)
{
    if (c->computed && c->result && !is_stopping(run)) {
        cli_warn_result(c->result, -1, NULL, &run->progress);
    }
    for (size_t e = 0; e < c->entry_count && c->computed && !c->fatal && !is_stopping(run); e++) {
        batch_item *item = c->entries[e].item;
        size_t k = c->entries[e].image;
        if (item->state == ITEM_FAILED) {
            report_failure(run, item);
        } else if (c->result) {
            cli_warn_result(c->result, (int64_t)k, item->rel, &run->progress);
            finish_item(run, item, &c->images[k], &c->infos[k], c->result, k);
        } else {
            cli_warn_result(c->alone[k], CLI_ALL_IMAGES, item->rel, &run->progress);
            finish_item(run, item, &c->images[k], &c->infos[k], c->alone[k], 0);
        }
    }
    if (c->fatal && !run->fatal) {
        run->fatal = c->fatal;
    }
    chunk_free(run, c);
}

/* Memory an image of w x h pixels holds while its pass runs: the decoded
 * pixels and its map (one float per pixel and method). */
static uint64_t pass_bytes(uint64_t width, uint64_t height, uint64_t pixel_bytes)
{
    return width * height * (pixel_bytes + sizeof(float));
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Upper bound of pass_bytes() for a PNG, from its IHDR (the first 33 bytes),
 * before decoding: lets a pass run before the next image is decoded rather
 * than hold both. 0 when the header cannot tell (the decoder reports why). */
static uint64_t estimate_bytes(const char *path)
{
    unsigned char h[33];
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    struct stat st;
    ssize_t got = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, h, sizeof h) : -1;
    close(fd);
    if (got != (ssize_t)sizeof h || memcmp(h, "\x89PNG\r\n\x1a\n", 8) != 0 || memcmp(h + 12, "IHDR", 4) != 0) {
        return 0;
    }
    uint64_t width = be32(h + 16), height = be32(h + 20);
    unsigned depth = h[24], color = h[25];
    /* channels after expansion, counting a possible tRNS alpha */
    unsigned channels = color == 0 ? 2 : color == 4 ? 2 : 4;
    return pass_bytes(width, height, (uint64_t)channels * (depth == 16 ? 2 : 1));
}

/* The reading stage: the next pass of at most --batch-size images and
 * --batch-memory bytes (an image larger than the budget runs alone), decoded
 * from the pending items from run->next on; NULL when none is left or the
 * run is stopping. */
static chunk *load_chunk(batch_run *run)
{
    const cli_settings *s = run->s;
    chunk *c = chunk_new(s->batch_size);
    while (run->next < run->limit && !is_stopping(run)) {
        batch_item *item = &run->pngs.items[run->next];
        if (item->state != ITEM_PENDING) {
            run->next++;
            continue;
        }
        uint64_t estimate = estimate_bytes(item->input);
        if (c->count > 0 && c->bytes + estimate > s->batch_memory) {
            break;
        }
        wait_for_memory(run, c->bytes + estimate);
        run->next++;
        const char *why = NULL;
        fx_image *image = &c->images[c->count];
        if (cli_load_image_info(s, item->input, image, &c->infos[c->count], &why) != FX_OK) {
            mark_failed(item, "cannot read the image", why);
            chunk_add(c, item, 0);
            continue;
        }
        chunk_add(c, item, c->count++);
        c->bytes += (uint64_t)image->stride * image->height + pass_bytes(image->width, image->height, 0);
        if (c->count == s->batch_size || c->bytes >= s->batch_memory) {
            break;
        }
    }
    if (c->entry_count == 0) {
        chunk_free(run, c);
        return NULL;
    }
    count_in_flight(run, c->bytes, true);
    c->counted = true;
    return c;
}

static void *pipeline_load(void *user)
{
    batch_run *run = user;
    double start = cli_now();
    chunk *c = load_chunk(run);
    run->read_seconds += cli_now() - start;
    return c;
}

static bool pipeline_compute(void *user, void *unit)
{
    return compute_chunk(user, unit);
}

static void pipeline_write(void *user, void *unit)
{
    batch_run *run = user;
    double start = cli_now();
    write_chunk(run, unit);
    run->write_seconds += cli_now() - start;
}

/* Runs the pending items: read, model, write; with --io-threads >= 1 the
 * three overlap (cli/pipeline.c), in the same passes and the same order.
 * Returns CLI_EXIT_OK or the exit status of a fatal error. */
static int run_items(batch_run *run, size_t limit)
{
    size_t pending = 0;
    for (size_t i = 0; i < limit; i++) {
        pending += run->pngs.items[i].state == ITEM_PENDING;
    }
    run->next = 0;
    run->limit = limit;
    cli_progress_start(&run->progress, stderr, pending);
    fx__stages stages = {run, pipeline_load, pipeline_compute, pipeline_write};
    fx__stages_run(&stages, run->s->io_threads > 0);
    cli_progress_finish(&run->progress);
    if (run->stopped) {
        cli_error(run->s->command, "%s", cli_message(run->stopped));
    }
    return run->fatal ? cli_compute_failed(run->s->command, run->fatal) : CLI_EXIT_OK;
}

static int check_dirs(batch_run *run)
{
    const cli_settings *s = run->s;
    if (!s->image_dir) {
        return cli_usage_error(s->command, "no input folder; give one with --image-dir DIR");
    }
    if (!s->output_dir) {
        return cli_usage_error(s->command, "no output folder; give one with --output-dir DIR");
    }
    if (s->method_count > 1) {
        return cli_usage_error(s->command, "give one --method");
    }
    struct stat in, out;
    if (stat(s->image_dir, &in) != 0 || !S_ISDIR(in.st_mode)) {
        cli_error(s->command, "the image folder '%s' %s", cli_name(s->image_dir),
                  errno == ENOENT ? "does not exist" : "is not a readable folder");
        return CLI_EXIT_FAILURE;
    }
    if (cli_make_dirs(s->output_dir) != 0 || stat(s->output_dir, &out) != 0) {
        cli_error(s->command, "cannot create the output folder '%s': %s", cli_name(s->output_dir), strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    run->out_dir = (dir_id){out.st_dev, out.st_ino};
    run->same_dir = in.st_dev == out.st_dev && in.st_ino == out.st_ino;
    visit(run, in.st_dev, in.st_ino);
    if (s->boxes) {
        if (!cli_annotations_load(s->command, s->boxes, &run->boxes)) {
            return CLI_EXIT_FAILURE;
        }
        run->has_boxes = true;
    }
    return CLI_EXIT_OK;
}

/* --resume: an image is done when its output exists, unless the previous
 * summary says that output was written for another input (names can move
 * when a.PNG joins a.png). Its earlier row is carried into the summaries. */
static void mark_resumed(batch_run *run, batch_item *item)
{
    struct stat st;
    if (lstat(item->output, &st) != 0 || !S_ISREG(st.st_mode)) {
        return;
    }
    const summary_row *owner = batch_previous_by_output(&run->previous, item->output);
    if (owner && strcmp(owner->field[COL_FILE], item->rel) != 0) {
        return;
    }
    item->state = ITEM_RESUMED;
    const summary_row *row = batch_previous_by_file(&run->previous, item->rel);
    if (row && strcmp(row->field[COL_OUTPUT], item->output) == 0 && strncmp(row->field[COL_STATUS], "ok", 2) == 0) {
        item->earlier = row;
    }
}

/* An earlier ok row whose output file is gone (deleted, moved) must not be
 * carried over as ok: nothing on disk backs it any more. The file checked is
 * the one this run names for the image, as --resume checks within the limit. */
static bool earlier_output_missing(const summary_row *row, const char *output)
{
    struct stat st;
    return strncmp(row->field[COL_STATUS], "ok", 2) == 0 && (lstat(output, &st) != 0 || !S_ISREG(st.st_mode));
}

/* False when --resume must not take the previous run's outputs (printed). */
static bool prepare_items(batch_run *run, size_t limit)
{
    const cli_settings *s = run->s;
    if (s->resume) {
        if (!batch_check_previous_options(run)) {
            return false;
        }
        batch_read_previous(run);
    }
    for (size_t i = 0; i < run->pngs.count; i++) {
        batch_item *item = &run->pngs.items[i];
        if (i < limit && s->resume) {
            mark_resumed(run, item);
        } else if (i >= limit && s->resume) {
            /* Beyond --max-images: the previous row, if any, still describes it. */
            const summary_row *row = batch_previous_by_file(&run->previous, item->rel);
            if (row) {
                item->state = ITEM_EARLIER;
                item->earlier = row;
                item->output_missing = earlier_output_missing(row, item->output);
            }
        }
    }
    return true;
}

int cli_run_batch(const cli_settings *s)
{
    batch_run run;
    memset(&run, 0, sizeof run);
    run.s = s;
    pthread_mutex_init(&run.stop_lock, NULL);
    pthread_cond_init(&run.memory_freed, NULL);
    run.method = s->method_count ? s->methods[0] : FX_CAM_GRADCAM;
    run.suffix = cli_strdup_printf("_%s%s.png", cli_method_slug(run.method),
                                   s->heatmap_only ? "_heatmap" : s->overlay_only ? "_overlay" : "");
    cli_channel_progress channel_progress;
    cli_cam_extras cam_extras = {0};
    cli_target_classes targets = {0};
    bool slow = false;
    int rc = check_dirs(&run);
    if (rc == CLI_EXIT_OK) {
        rc = cli_load_model(s, &run.model);
    }
    if (rc == CLI_EXIT_OK) {
        fx_gradcam_options_init(&run.opts);
        run.opts.layer = s->layer;
        run.opts.methods = &run.method;
        run.opts.method_count = 1;
        run.opts.batch_size = s->batch_size;
        rc = cli_resolve_class(s, run.model, &run.opts.target_class);
        if (rc == CLI_EXIT_OK) {
            rc = cli_cam_options(s, run.model, &cam_extras, &run.opts); /* --layers, --aug-smooth, ... */
        }
        if (rc == CLI_EXIT_OK && s->target_classes) {
            rc = cli_target_classes_load(s, run.model, &targets);
            run.targets = &targets;
        }
        slow = cli_methods_need_channel_forwards(&run.method, 1);
        if (slow) { /* Score-CAM, Ablation-CAM: an estimate, and Ctrl-C cancels (progress_methods.c) */
            cli_channel_progress_init(&channel_progress, s, run.model, &run.method, 1, false, &run.opts);
        }
    }
    if (rc == CLI_EXIT_OK) {
        double start = cli_now();
        collect_tree(&run, s->image_dir);
        if (run.pngs.count) {
            qsort(run.pngs.items, run.pngs.count, sizeof *run.pngs.items, compare_items);
        }
        if (run.ignored.count) {
            qsort(run.ignored.items, run.ignored.count, sizeof *run.ignored.items, compare_items);
        }
        /* The shards of a job array may share the output folder: a
         * temporary file there can be another shard's write in progress. */
        size_t stale = s->shard_count ? 0 : remove_stale_temporaries(&run, s->output_dir, 0);
        if (stale) {
            fprintf(stderr, "removed %zu temporary file%s left by an interrupted run\n", stale, stale == 1 ? "" : "s");
        }
        size_t folder_images = run.pngs.count;
        /* Listed files against the whole folder (another shard computes some). */
        int targets_rc = run.targets ? cli_target_classes_check_listed(s, run.targets, run.pngs.items,
                                                                       run.pngs.count, item_file) : CLI_EXIT_OK;
        assign_outputs(&run); /* over the whole folder, so that every shard names files alike */
        keep_shard(&run);
        size_t limit = run.pngs.count;
        if (s->max_images && s->max_images < limit) {
            limit = s->max_images;
        }
        if (!prepare_items(&run, limit)) {
            targets_rc = CLI_EXIT_USAGE;
        }
        if (targets_rc == CLI_EXIT_OK && run.targets) {
            targets_rc = cli_target_classes_check_covered(s, run.targets, run.pngs.items, limit, item_file);
        }
        for (size_t i = 0; i < run.ignored.count; i++) {
            fprintf(stderr, "%s: %s: %s\n", run.ignored.items[i].state == ITEM_FAILED ? "failed" : "ignored",
                    cli_name(run.ignored.items[i].rel), cli_name(run.ignored.items[i].reason));
        }
        if (folder_images == 0) {
            cli_error(s->command, "no PNG, JPEG or DICOM images in '%s'%s", cli_name(s->image_dir),
                      s->recursive ? "" : " (use --recursive to include subfolders)");
            rc = CLI_EXIT_FAILURE;
        } else if (targets_rc != CLI_EXIT_OK) {
            rc = targets_rc;
        } else {
            if (slow) {
                cli_channel_progress_begin();
            }
            rc = run_items(&run, limit);
            if (slow) {
                cli_channel_progress_end(&channel_progress);
            }
            if (rc == CLI_EXIT_OK) {
                rc = batch_write_summaries(&run, cli_now() - start, limit);
                /* also when some images failed: the report lists them */
                if (s->report && !batch_write_report(&run, limit)) {
                    rc = CLI_EXIT_FAILURE;
                }
            }
        }
    }
    list_free(&run.pngs);
    list_free(&run.ignored);
    list_free(&run.linked_dirs);
    free(run.visited);
    cli_annotations_free(&run.boxes);
    batch_free_previous(&run.previous);
    free(run.suffix);
    free(run.stopped);
    pthread_cond_destroy(&run.memory_freed);
    pthread_mutex_destroy(&run.stop_lock);
    free((char *)run.layer);
    cli_cam_options_free(&cam_extras);
    cli_target_classes_free(&targets);
    fx_model_free(run.model);
    return rc;
}
