/* `fxcam batch --report`: the items of a run as report entries (report.h),
 * and a thumbnail per finished image. The report covers the same rows as
 * summary.csv: this run's images, results carried from an earlier run
 * (--resume), failures and ignored files. */
#include "batch.h"
#include "report.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void batch_report_thumbnail(batch_run *run, const batch_item *item, const fx_image *image, const fx_image_info *info,
                            const fx_result *result, size_t i)
{
    char *path = report_thumbnail_path(item->output);
    const cli_annotation *boxes = run->has_boxes ? cli_annotations_lookup(&run->boxes, item->rel) : NULL;
    const fx_image *heatmap = fx_result_heatmap(result, i, 0);
    if (report_write_thumbnail(run->s, run->model, path, image, info, heatmap, boxes) != FX_OK) {
        /* The figure is written; the card shows a placeholder. */
        cli_progress_note(&run->progress, "fxcam batch: warning: %s: cannot write the report thumbnail: %s",
                          cli_name(item->rel), cli_message(fx_last_error()));
    }
    free(path);
}

static bool is_regular(const char *path)
{
    struct stat st;
    return path && lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int peak_state(const batch_run *run, const char *rel, uint32_t x, uint32_t y)
{
    const cli_annotation *a = run->has_boxes ? cli_annotations_lookup(&run->boxes, rel) : NULL;
    if (!a || a->box_count == 0) {
        return REPORT_PEAK_NO_BOX;
    }
    return cli_point_in_boxes(a, x, y) ? REPORT_PEAK_INSIDE : REPORT_PEAK_OUTSIDE;
}

/* A row of the previous summary.csv, for an image not computed now. */
static void from_earlier(const batch_run *run, const batch_item *item, report_entry *e, char **owned)
{
    const summary_row *row = item->earlier;
    if (item->output_missing) {
        e->kind = REPORT_FAILED;
        e->note = MISSING_OUTPUT_NOTE;
        return;
    }
    if (strncmp(row->field[COL_STATUS], "ok", 2) != 0) {
        e->kind = REPORT_FAILED;
        e->note = row->field[COL_STATUS];
        return;
    }
    e->figure = row->field[COL_OUTPUT];
    e->class_name = row->field[COL_CLASS];
    char *end = NULL;
    double c = strtod(row->field[COL_CONFIDENCE], &end);
    e->confidence = end != row->field[COL_CONFIDENCE] && c >= 0 && c <= 1 ? c : -1.0;
    e->peak = peak_state(run, item->rel, (uint32_t)strtoul(row->field[COL_PEAK_X], NULL, 10),
                         (uint32_t)strtoul(row->field[COL_PEAK_Y], NULL, 10));
    *owned = report_thumbnail_path(e->figure);
    e->thumbnail = is_regular(*owned) ? *owned : NULL;
    e->note = item->state == ITEM_EARLIER ? "result of an earlier run (beyond --max-images now)"
                                          : "result of an earlier run (--resume)";
}

/* Fills e for a computed, resumed, failed or ignored item. *owned is a
 * string e points into, for the caller to free. */
static void to_entry(const batch_run *run, const batch_item *item, report_entry *e, char **owned)
{
    memset(e, 0, sizeof *e);
    e->file = item->rel;
    e->kind = REPORT_RESULT;
    e->confidence = -1.0;
    e->peak = REPORT_PEAK_NO_BOX;
    if (item->earlier) {
        from_earlier(run, item, e, owned);
        return;
    }
    switch (item->state) {
    case ITEM_DONE:
        e->figure = item->output;
        e->class_name = fx_model_class_name(run->model, (uint32_t)item->predicted);
        e->confidence = item->confidence;
        e->peak = peak_state(run, item->rel, item->peak_x, item->peak_y);
        *owned = report_thumbnail_path(item->output);
        e->thumbnail = is_regular(*owned) ? *owned : NULL;
        break;
    case ITEM_RESUMED:
        e->figure = item->output;
        *owned = report_thumbnail_path(item->output);
        e->thumbnail = is_regular(*owned) ? *owned : NULL;
        e->note = "output of an earlier run (--resume); its result is not in the previous summary.csv";
        break;
    case ITEM_IGNORED:
        e->kind = REPORT_IGNORED;
        e->note = item->reason;
        break;
    case ITEM_PENDING:
        e->kind = REPORT_FAILED;
        e->note = "not processed";
        break;
    default:
        e->kind = REPORT_FAILED;
        e->note = item->reason;
        break;
    }
}

bool batch_write_report(const batch_run *run, size_t limit)
{
    const cli_settings *s = run->s;
    size_t total = run->pngs.count + run->ignored.count, n = 0;
    report_entry *entries = calloc(total ? total : 1, sizeof *entries);
    char **owned = calloc(total ? total : 1, sizeof *owned);
    uint32_t classes = fx_model_result_class_count(run->model);
    const char **names = calloc(classes ? classes : 1, sizeof *names);
    if (!entries || !owned || !names) {
        fputs("fxcam batch: error: out of memory\n", stderr);
        exit(CLI_EXIT_FAILURE);
    }
    for (size_t i = 0; i < run->pngs.count; i++) {
        if (i < limit || run->pngs.items[i].state == ITEM_EARLIER) {
            to_entry(run, &run->pngs.items[i], &entries[n], &owned[n]);
            n++;
        }
    }
    for (size_t i = 0; i < run->ignored.count; i++) {
        to_entry(run, &run->ignored.items[i], &entries[n], &owned[n]);
        n++;
    }
    for (uint32_t c = 0; c < classes; c++) {
        names[c] = fx_model_class_name(run->model, c);
    }
    char model[512];
    snprintf(model, sizeof model, "%s%s", s->model ? "" : "embedded ", cli_model_name(s));
    char *file_name = report_file_name(s);
    report_page page = {
        .command = s->command,
        .dir = s->output_dir,
        .file_name = file_name,
        .model = model,
        .method = cli_method_title(run->method),
        .layer = run->layer ? run->layer : s->layer ? s->layer : fx_model_default_layer(run->model),
        .image_dir = s->image_dir,
        .classes = names,
        .class_count = classes,
        .has_boxes = run->has_boxes,
        .entries = entries,
        .count = n,
    };
    bool ok = report_write(&page);
    for (size_t i = 0; i < n; i++) {
        free(owned[i]);
    }
    free(owned);
    free(file_name);
    free(entries);
    free(names);
    return ok;
}
