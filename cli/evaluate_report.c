/* `fxcam evaluate --report --output-dir DIR`: the images of an evaluation as
 * report entries (report.h): per image the figure and thumbnail of the first
 * method (the others are scored, not drawn), the prediction, the confidence
 * and, for an image with boxes, whether that map's peak lies outside them;
 * images that failed are listed with the reason. */
#include "report.h"
#include "annotations.h"

#include <stdlib.h>
#include <string.h>

static void out_of_memory(void)
{
    fputs("fxcam evaluate: error: out of memory\n", stderr);
    exit(CLI_EXIT_FAILURE);
}

static report_entry *next_entry(eval_report *r)
{
    if (r->count == r->capacity) {
        size_t cap = r->capacity ? 2 * r->capacity : 64;
        report_entry *grown = realloc(r->entries, cap * sizeof *grown);
        char **owned = realloc(r->owned, cap * 3 * sizeof *owned);
        if (!grown || !owned) {
            out_of_memory();
        }
        r->entries = grown;
        r->owned = owned;
        r->capacity = cap;
    }
    report_entry *e = &r->entries[r->count];
    memset(e, 0, sizeof *e);
    memset(&r->owned[r->count * 3], 0, 3 * sizeof *r->owned);
    e->confidence = -1.0;
    e->peak = REPORT_PEAK_NO_BOX;
    r->count++;
    return e;
}

/* Slot k (0 file, 1 figure, 2 thumbnail) of the last entry's own strings. */
static char *keep(eval_report *r, int k, char *text)
{
    if (!text) {
        out_of_memory();
    }
    r->owned[(r->count - 1) * 3 + (size_t)k] = text;
    return text;
}

static bool name_taken(const eval_report *r, const char *figure)
{
    for (size_t i = 0; i < r->count; i++) {
        if (r->entries[i].figure && strcmp(r->entries[i].figure, figure) == 0) {
            return true;
        }
    }
    return false;
}

/* "<DIR>/<name without its extension>_<method>.png" as batch names them;
 * a name listed twice in --boxes (or a.png next to a.jpg) gets "_2", "_3". */
static char *figure_path(const eval_report *r, const cli_settings *s, const char *file)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    const char *dot = strrchr(base, '.');
    int stem = (int)(dot && dot != base ? (size_t)(dot - file) : strlen(file));
    char *path = cli_strdup_printf("%s/%.*s%s", s->output_dir, stem, file, r->suffix);
    for (unsigned k = 2; path && name_taken(r, path); k++) {
        free(path);
        size_t m = strlen(r->suffix) - 4; /* without ".png" */
        path = cli_strdup_printf("%s/%.*s%.*s_%u.png", s->output_dir, stem, file, (int)m, r->suffix, k);
    }
    return path;
}

/* Creates the folders of path below the output folder (a name in a
 * subfolder of --image-dir keeps it). */
static bool make_parent(const char *path)
{
    char *dir = cli_strdup_printf("%s", path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    bool ok = true;
    if (slash) {
        *slash = '\0';
        ok = cli_make_dirs(dir) == 0;
    }
    free(dir);
    return ok;
}

void eval_report_init(eval_report *r, int32_t first_method)
{
    memset(r, 0, sizeof *r);
    r->method = first_method;
    r->suffix = cli_strdup_printf("_%s.png", cli_method_slug(first_method));
}

void eval_report_add(eval_report *r, const cli_settings *s, const fx_model *model, const fx_image *image,
                     const fx_image_info *info, const fx_result *result, size_t i, const cli_annotation *a)
{
    report_entry *e = next_entry(r);
    e->kind = REPORT_RESULT;
    e->file = keep(r, 0, cli_strdup_printf("%s", a->file));
    e->class_name = fx_model_class_name(model, (uint32_t)fx_result_predicted_class(result, i));
    e->confidence = fx_result_confidence(result, i);
    const fx_image *heatmap = fx_result_heatmap(result, i, 0);
    if (a->box_count > 0) {
        uint32_t px = 0, py = 0;
        cli_heatmap_peak(heatmap, &px, &py);
        e->peak = cli_point_in_boxes(a, px, py) ? REPORT_PEAK_INSIDE : REPORT_PEAK_OUTSIDE;
    }
    char *figure = keep(r, 1, figure_path(r, s, a->file));
    const cli_annotation *boxes = a->box_count ? a : NULL;
    if (!make_parent(figure) ||
        cli_write_output_info(s, model, image, info, result, i, 0, figure, a->file, boxes) != FX_OK) {
        fprintf(stderr, "fxcam evaluate: warning: %s: cannot write the report figure: %s\n", cli_name(a->file),
                cli_message(fx_last_error()));
        e->note = "the figure could not be written"; /* the card has no link */
        r->owned[(r->count - 1) * 3 + 1] = NULL;
        free(figure);
        return;
    }
    e->figure = figure;
    char *thumb = keep(r, 2, report_thumbnail_path(figure));
    if (report_write_thumbnail(s, model, thumb, image, info, heatmap, boxes) == FX_OK) {
        e->thumbnail = thumb;
    } else {
        fprintf(stderr, "fxcam evaluate: warning: %s: cannot write the report thumbnail: %s\n", cli_name(a->file),
                cli_message(fx_last_error()));
    }
}

void eval_report_fail(eval_report *r, const char *file, const char *what, const char *why)
{
    report_entry *e = next_entry(r);
    e->kind = REPORT_FAILED;
    e->file = keep(r, 0, cli_strdup_printf("%s", file));
    e->note = keep(r, 1, cli_strdup_printf("%s: %s", what, why));
}

bool eval_report_write(const eval_report *r, const cli_settings *s, const fx_model *model, const char *layer,
                       bool has_boxes)
{
    uint32_t classes = fx_model_result_class_count(model);
    const char **names = calloc(classes ? classes : 1, sizeof *names);
    if (!names) {
        out_of_memory();
    }
    for (uint32_t c = 0; c < classes; c++) {
        names[c] = fx_model_class_name(model, c);
    }
    char model_name[512];
    snprintf(model_name, sizeof model_name, "%s%s", s->model ? "" : "embedded ", cli_model_name(s));
    char *file_name = report_file_name(s);
    report_page page = {
        .command = s->command,
        .dir = s->output_dir,
        .file_name = file_name,
        .model = model_name,
        .method = cli_method_title(r->method),
        .layer = layer,
        .image_dir = s->image_dir,
        .classes = names,
        .class_count = classes,
        .has_boxes = has_boxes,
        .entries = r->entries,
        .count = r->count,
    };
    bool ok = report_write(&page);
    free(file_name);
    free(names);
    return ok;
}

void eval_report_free(eval_report *r)
{
    for (size_t i = 0; i < r->count * 3; i++) {
        free(r->owned[i]);
    }
    free(r->owned);
    free(r->entries);
    free(r->suffix);
    memset(r, 0, sizeof *r);
}
