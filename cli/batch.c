/* fxcam batch: every PNG of a folder through the model, several images per
 * forward pass, one output per image, and summary.txt / summary.csv. */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

enum item_state { ITEM_PENDING, ITEM_DONE, ITEM_FAILED, ITEM_RESUMED, ITEM_IGNORED };

typedef struct batch_item {
    char *rel;      /* path below --image-dir, e.g. "left/wrist.png" */
    char *input;
    char *output;
    enum item_state state;
    char *reason;   /* why it failed or was skipped */
    int32_t predicted;
    float confidence;
    uint32_t peak_x, peak_y;
} batch_item;

typedef struct item_list {
    batch_item *items;
    size_t count;
    size_t capacity;
} item_list;

typedef struct batch_run {
    const cli_settings *s;
    fx_model *model;
    fx_gradcam_options opts;
    int32_t method;
    char *out_dir_real;   /* realpath of --output-dir, not descended into */
    bool same_dir;        /* outputs land among the inputs */
    char *suffix;         /* "_gradcam.png", "_gradcam_heatmap.png", ... */
    item_list pngs;
    item_list ignored;
    cli_progress progress;
    const char *layer;    /* from the first result */
    double compute_seconds;
} batch_run;

static batch_item *list_add(item_list *list)
{
    if (list->count == list->capacity) {
        size_t cap = list->capacity ? list->capacity * 2 : 64;
        batch_item *items = realloc(list->items, cap * sizeof *items);
        if (!items) {
            fputs("fxcam batch: error: out of memory\n", stderr);
            exit(CLI_EXIT_FAILURE);
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

static int compare_items(const void *a, const void *b)
{
    return strcmp(((const batch_item *)a)->rel, ((const batch_item *)b)->rel);
}

static bool has_suffix(const char *name, const char *suffix, bool ignore_case)
{
    size_t n = strlen(name), m = strlen(suffix);
    if (n < m) {
        return false;
    }
    return ignore_case ? strcasecmp(name + n - m, suffix) == 0 : strcmp(name + n - m, suffix) == 0;
}

/* Files this command writes, recognised so that a rerun with the outputs in
 * the input folder does not take them for inputs. */
static bool is_own_output(const batch_run *run, const char *name)
{
    return has_suffix(name, run->suffix, false) || strcmp(name, "summary.txt") == 0 ||
           strcmp(name, "summary.csv") == 0 || has_suffix(name, ".tmp", false);
}

static void collect(batch_run *run, const char *dir, const char *rel_dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        batch_item *item = list_add(&run->ignored);
        item->rel = cli_strdup_printf("%s", rel_dir[0] ? rel_dir : ".");
        item->reason = cli_strdup_printf("cannot open the folder: %s", strerror(errno));
        item->state = ITEM_FAILED;
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        char *path = cli_strdup_printf("%s/%s", dir, e->d_name);
        char *rel = rel_dir[0] ? cli_strdup_printf("%s/%s", rel_dir, e->d_name) : cli_strdup_printf("%s", e->d_name);
        struct stat st;
        bool is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
        if (is_dir) {
            char *real = realpath(path, NULL);
            bool is_out = real && run->out_dir_real && strcmp(real, run->out_dir_real) == 0;
            free(real);
            if (run->s->recursive && !is_out) {
                collect(run, path, rel);
            }
            free(path);
            free(rel);
            continue;
        }
        if (run->same_dir && rel_dir[0] == '\0' && is_own_output(run, e->d_name)) {
            free(path);
            free(rel);
            continue;
        }
        batch_item *item = list_add(has_suffix(e->d_name, ".png", true) ? &run->pngs : &run->ignored);
        item->rel = rel;
        item->input = path;
        if (!has_suffix(e->d_name, ".png", true)) {
            item->state = ITEM_IGNORED;
            item->reason = cli_strdup_printf("not a .png file");
        }
    }
    closedir(d);
}

/* "<out>/<rel without .png><suffix>" */
static char *output_path(const batch_run *run, const char *rel)
{
    size_t len = strlen(rel) - 4;
    return cli_strdup_printf("%s/%.*s%s", run->s->output_dir, (int)len, rel, run->suffix);
}

/* A killed run can leave the library's "<output>.XXXXXXXX.tmp" files (and
 * ours for the summaries); they are never valid outputs, so they go. */
static size_t remove_stale_temporaries(const batch_run *run, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        return 0;
    }
    size_t removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *path = cli_strdup_printf("%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (run->s->recursive && e->d_name[0] != '.') {
                removed += remove_stale_temporaries(run, path);
            }
        } else if (has_suffix(e->d_name, ".tmp", false)) {
            char *stem = cli_strdup_printf("%s", e->d_name);
            *strrchr(stem, '.') = '\0';
            char *dot = strrchr(stem, '.');
            if (dot) {
                *dot = '\0';
            }
            if (has_suffix(stem, run->suffix, false) || strcmp(stem, "summary.txt") == 0 ||
                strcmp(stem, "summary.csv") == 0) {
                removed += unlink(path) == 0;
            }
            free(stem);
        }
        free(path);
    }
    closedir(d);
    return removed;
}

static void record_failure(batch_run *run, batch_item *item, const char *what, const char *why)
{
    item->state = ITEM_FAILED;
    free(item->reason);
    item->reason = cli_strdup_printf("%s: %s", what, why);
    char *outcome = cli_strdup_printf("FAILED (%s)", item->reason);
    cli_progress_step(&run->progress, item->rel, outcome, true);
    free(outcome);
}

static void finish_item(batch_run *run, batch_item *item, const fx_image *image, const fx_result *result, size_t i)
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
    fx_status status = cli_write_output(run->s, run->model, image, result, i, 0, item->output);
    if (status != FX_OK) {
        record_failure(run, item, "cannot write the output", fx_last_error());
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
}

/* One image, for a batch whose joint computation failed: finds which image
 * was at fault without failing the others. */
static void compute_alone(batch_run *run, batch_item *item, const fx_image *image)
{
    fx_result *result = NULL;
    fx_status status = fx_gradcam_compute(run->model, image, 1, &run->opts, &result);
    if (status != FX_OK) {
        record_failure(run, item, "cannot compute the heatmap", fx_last_error());
        return;
    }
    finish_item(run, item, image, result, 0);
    fx_result_free(result);
}

/* A wrong layer (or device) fails every image the same way: stop at once. */
static bool is_fatal(fx_status status)
{
    return status == FX_ERR_LAYER || status == FX_ERR_DEVICE || status == FX_ERR_NOT_AVAILABLE;
}

/* Processes items[0..n), all pending. Returns CLI_EXIT_OK or the exit status
 * of a fatal error. */
static int process_chunk(batch_run *run, batch_item **items, size_t n)
{
    fx_image *images = calloc(n, sizeof *images);
    batch_item **loaded = calloc(n, sizeof *loaded);
    if (!images || !loaded) {
        fputs("fxcam batch: error: out of memory\n", stderr);
        exit(CLI_EXIT_FAILURE);
    }
    size_t count = 0;
    for (size_t k = 0; k < n; k++) {
        if (fx_image_load(items[k]->input, NULL, &images[count]) != FX_OK) {
            record_failure(run, items[k], "cannot read the image", fx_last_error());
            continue;
        }
        loaded[count++] = items[k];
    }
    int rc = CLI_EXIT_OK;
    if (count > 0) {
        double start = cli_now();
        fx_result *result = NULL;
        fx_status status = fx_gradcam_compute(run->model, images, count, &run->opts, &result);
        run->compute_seconds += cli_now() - start;
        if (status == FX_OK) {
            for (size_t k = 0; k < count; k++) {
                finish_item(run, loaded[k], &images[k], result, k);
            }
        } else if (is_fatal(status)) {
            cli_progress_finish(&run->progress);
            rc = cli_compute_failed(run->s->command, status);
        } else {
            for (size_t k = 0; k < count; k++) {
                compute_alone(run, loaded[k], &images[k]);
            }
        }
        fx_result_free(result);
    }
    for (size_t k = 0; k < count; k++) {
        fx_image_free(&images[k]);
    }
    free(images);
    free(loaded);
    return rc;
}

static const char *state_text(const batch_item *item, char *buf, size_t size)
{
    switch (item->state) {
    case ITEM_DONE: return "ok";
    case ITEM_RESUMED: return "skipped: output exists (--resume)";
    case ITEM_PENDING: return "not processed";
    default:
        snprintf(buf, size, "%s: %s", item->state == ITEM_IGNORED ? "ignored" : "failed", item->reason);
        return buf;
    }
}

static void append_csv_row(cli_text *csv, const batch_run *run, const batch_item *item)
{
    char buf[1200];
    cli_text_csv_field(csv, item->rel, false);
    if (item->state == ITEM_DONE) {
        cli_text_csv_field(csv, fx_model_class_name(run->model, (uint32_t)item->predicted), false);
        cli_text_printf(csv, "%.4f,%u,%u,", (double)item->confidence, item->peak_x, item->peak_y);
    } else {
        cli_text_printf(csv, ",,,,");
    }
    cli_text_csv_field(csv, item->state == ITEM_DONE || item->state == ITEM_RESUMED ? item->output : "", false);
    cli_text_csv_field(csv, state_text(item, buf, sizeof buf), true);
}

static int write_summaries(batch_run *run, double total_seconds, size_t processed_limit)
{
    const cli_settings *s = run->s;
    size_t done = 0, failed = 0, resumed = 0;
    uint32_t classes = fx_model_result_class_count(run->model);
    size_t *per_class = calloc(classes + 1, sizeof *per_class);
    double *confidence = calloc(classes + 1, sizeof *confidence);
    if (!per_class || !confidence) {
        fputs("fxcam batch: error: out of memory\n", stderr);
        exit(CLI_EXIT_FAILURE);
    }
    for (size_t i = 0; i < processed_limit; i++) {
        const batch_item *item = &run->pngs.items[i];
        done += item->state == ITEM_DONE;
        failed += item->state == ITEM_FAILED;
        resumed += item->state == ITEM_RESUMED;
        if (item->state == ITEM_DONE && item->predicted >= 0 && (uint32_t)item->predicted < classes) {
            per_class[item->predicted]++;
            confidence[item->predicted] += item->confidence;
            per_class[classes]++;
            confidence[classes] += item->confidence;
        }
    }
    for (size_t i = 0; i < run->ignored.count; i++) {
        failed += run->ignored.items[i].state == ITEM_FAILED;
    }
    size_t ignored = run->ignored.count;

    cli_text txt = {0};
    const cli_asset *embedded = cli_embedded_model();
    cli_text_printf(&txt, "fxcam batch summary\n\n");
    cli_text_printf(&txt, "model:        %s%s\n", s->model ? "" : "embedded ",
                    s->model ? s->model : (embedded ? embedded->name : "?"));
    cli_text_printf(&txt, "method:       %s\n", cli_method_title(run->method));
    cli_text_printf(&txt, "layer:        %s\n", run->layer ? run->layer : (s->layer ? s->layer : "(default)"));
    cli_text_printf(&txt, "device:       %s\n", fx_model_device(run->model));
    cli_text_printf(&txt, "image dir:    %s%s\n", s->image_dir, s->recursive ? " (recursive)" : "");
    cli_text_printf(&txt, "output dir:   %s\n\n", s->output_dir);
    cli_text_printf(&txt, "images:       %zu PNG files, %zu processed, %zu failed, %zu skipped (output existed)\n",
                    processed_limit, done, failed, resumed);
    cli_text_printf(&txt, "ignored:      %zu files without the .png extension\n\n", ignored);
    cli_text_printf(&txt, "%-20s %7s  %s\n", "predicted class", "images", "mean confidence");
    for (uint32_t c = 0; c <= classes; c++) {
        const char *name = c < classes ? fx_model_class_name(run->model, c) : "all";
        if (per_class[c]) {
            cli_text_printf(&txt, "%-20s %7zu  %.1f%%\n", name, per_class[c], 100.0 * confidence[c] / (double)per_class[c]);
        } else {
            cli_text_printf(&txt, "%-20s %7zu  -\n", name, per_class[c]);
        }
    }
    char total[32];
    cli_format_duration(total_seconds, total, sizeof total);
    cli_text_printf(&txt, "\ntime:         %.2f s total (%s), %.3f s per processed image, batch size %u\n",
                    total_seconds, total, done ? total_seconds / (double)done : 0.0, s->batch_size);
    cli_text_printf(&txt, "\nfailures:     %zu\n", failed);
    for (size_t i = 0; i < processed_limit; i++) {
        const batch_item *item = &run->pngs.items[i];
        if (item->state == ITEM_FAILED) {
            cli_text_printf(&txt, "  %s: %s\n", item->rel, item->reason);
        }
    }
    for (size_t i = 0; i < run->ignored.count; i++) {
        const batch_item *item = &run->ignored.items[i];
        if (item->state == ITEM_FAILED) {
            cli_text_printf(&txt, "  %s: %s\n", item->rel, item->reason);
        }
    }
    if (ignored) {
        cli_text_printf(&txt, "\nignored files:\n");
        for (size_t i = 0; i < run->ignored.count; i++) {
            cli_text_printf(&txt, "  %s: %s\n", run->ignored.items[i].rel, run->ignored.items[i].reason);
        }
    }

    cli_text csv = {0};
    cli_text_printf(&csv, "file,predicted_class,confidence,peak_x,peak_y,output,status\n");
    for (size_t i = 0; i < processed_limit; i++) {
        append_csv_row(&csv, run, &run->pngs.items[i]);
    }
    for (size_t i = 0; i < run->ignored.count; i++) {
        append_csv_row(&csv, run, &run->ignored.items[i]);
    }

    int rc = CLI_EXIT_OK;
    char *txt_path = cli_strdup_printf("%s/summary.txt", s->output_dir);
    char *csv_path = cli_strdup_printf("%s/summary.csv", s->output_dir);
    if (cli_write_file_atomic(txt_path, txt.data, txt.size) != 0 ||
        cli_write_file_atomic(csv_path, csv.data, csv.size) != 0) {
        cli_error(s->command, "cannot write the summaries in '%s': %s", s->output_dir, strerror(errno));
        rc = CLI_EXIT_FAILURE;
    } else {
        printf("%zu processed, %zu failed, %zu skipped, %zu ignored in %.1f s  ->  %s\n", done, failed, resumed,
               ignored, total_seconds, s->output_dir);
        printf("summary: %s, %s\n", txt_path, csv_path);
    }
    if (failed) {
        rc = CLI_EXIT_FAILURE;
    }
    free(txt_path);
    free(csv_path);
    cli_text_free(&txt);
    cli_text_free(&csv);
    free(per_class);
    free(confidence);
    return rc;
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
    struct stat st;
    if (stat(s->image_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cli_error(s->command, "the image folder '%s' %s", s->image_dir,
                  errno == ENOENT ? "does not exist" : "is not a readable folder");
        return CLI_EXIT_FAILURE;
    }
    if (cli_make_dirs(s->output_dir) != 0) {
        cli_error(s->command, "cannot create the output folder '%s': %s", s->output_dir, strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    run->out_dir_real = realpath(s->output_dir, NULL);
    char *in_real = realpath(s->image_dir, NULL);
    run->same_dir = in_real && run->out_dir_real && strcmp(in_real, run->out_dir_real) == 0;
    free(in_real);
    return CLI_EXIT_OK;
}

static int run_items(batch_run *run, size_t limit)
{
    batch_item **chunk = calloc(run->s->batch_size, sizeof *chunk);
    if (!chunk) {
        exit(CLI_EXIT_FAILURE);
    }
    size_t pending = 0;
    for (size_t i = 0; i < limit; i++) {
        pending += run->pngs.items[i].state == ITEM_PENDING;
    }
    cli_progress_start(&run->progress, stderr, pending);
    int rc = CLI_EXIT_OK;
    size_t n = 0;
    for (size_t i = 0; i < limit && rc == CLI_EXIT_OK; i++) {
        if (run->pngs.items[i].state == ITEM_PENDING) {
            chunk[n++] = &run->pngs.items[i];
        }
        if (n == run->s->batch_size || (n > 0 && i + 1 == limit)) {
            rc = process_chunk(run, chunk, n);
            n = 0;
        }
    }
    cli_progress_finish(&run->progress);
    free(chunk);
    return rc;
}

int cli_run_batch(const cli_settings *s)
{
    batch_run run;
    memset(&run, 0, sizeof run);
    run.s = s;
    run.method = s->method_count ? s->methods[0] : FX_CAM_GRADCAM;
    run.suffix = cli_strdup_printf("_%s%s.png", cli_method_slug(run.method),
                                   s->heatmap_only ? "_heatmap" : s->overlay_only ? "_overlay" : "");
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
    }
    if (rc == CLI_EXIT_OK) {
        double start = cli_now();
        collect(&run, s->image_dir, "");
        if (run.pngs.count) {
            qsort(run.pngs.items, run.pngs.count, sizeof *run.pngs.items, compare_items);
        }
        if (run.ignored.count) {
            qsort(run.ignored.items, run.ignored.count, sizeof *run.ignored.items, compare_items);
        }
        size_t limit = run.pngs.count;
        if (s->max_images && s->max_images < limit) {
            limit = s->max_images;
        }
        size_t stale = remove_stale_temporaries(&run, s->output_dir);
        if (stale) {
            fprintf(stderr, "removed %zu temporary file%s left by an interrupted run\n", stale, stale == 1 ? "" : "s");
        }
        for (size_t i = 0; i < limit; i++) {
            batch_item *item = &run.pngs.items[i];
            item->output = output_path(&run, item->rel);
            if (s->resume && access(item->output, F_OK) == 0) {
                item->state = ITEM_RESUMED;
            }
        }
        for (size_t i = 0; i < run.ignored.count; i++) {
            fprintf(stderr, "%s: %s: %s\n", run.ignored.items[i].state == ITEM_FAILED ? "failed" : "ignored",
                    run.ignored.items[i].rel, run.ignored.items[i].reason);
        }
        if (limit == 0) {
            cli_error(s->command, "no .png files in '%s'%s", s->image_dir,
                      s->recursive ? "" : " (use --recursive to include subfolders)");
            rc = CLI_EXIT_FAILURE;
        } else {
            rc = run_items(&run, limit);
            if (rc == CLI_EXIT_OK) {
                rc = write_summaries(&run, cli_now() - start, limit);
            }
        }
    }
    list_free(&run.pngs);
    list_free(&run.ignored);
    free(run.out_dir_real);
    free(run.suffix);
    free((char *)run.layer);
    fx_model_free(run.model);
    return rc;
}
