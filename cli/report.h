/* The HTML report of `fxcam batch --report`: index.html beside the figures,
 * one card per image (thumbnail, file name, prediction, confidence, flags),
 * sortable by confidence and file name and filterable by predicted class in
 * the page, plus the images that failed and the files that were ignored.
 *
 * The page is self-contained (inline CSS and JavaScript, no network, works
 * from file://); it links to the figures and thumbnails by paths relative to
 * its folder. Every name is escaped for HTML (and percent-encoded in links):
 * a file named "<script>x.png" is shown as text. The file is written through
 * lib/atomic_file.c, like the summaries; an index.html that fxcam did not
 * write is never replaced. */
#ifndef FXCAM_CLI_REPORT_H
#define FXCAM_CLI_REPORT_H

#include "cli.h"

/* Cards whose confidence is below this are flagged "low confidence". The
 * page has a control to change it; this is its initial value. */
#define REPORT_LOW_CONFIDENCE 0.6
/* Longest side of a thumbnail, in pixels. */
#define REPORT_THUMB_SIDE 256
#define REPORT_FILE_NAME "index.html"
/* <figure name without .png> + this: "a_gradcam.png" -> "a_gradcam_thumb.png". */
#define REPORT_THUMB_SUFFIX "_thumb.png"

enum report_kind {
    REPORT_RESULT,  /* a figure exists: a card */
    REPORT_FAILED,  /* listed with its error */
    REPORT_IGNORED  /* listed with the reason */
};

enum report_peak {
    REPORT_PEAK_NO_BOX = -1, /* no annotation, or a normal image (no box) */
    REPORT_PEAK_OUTSIDE = 0, /* the map's maximum lies outside every box */
    REPORT_PEAK_INSIDE = 1
};

typedef struct report_entry {
    enum report_kind kind;
    const char *file;       /* the input, relative to the image folder; any bytes */
    const char *figure;     /* the figure's path, starting with the report's folder; NULL = none */
    const char *thumbnail;  /* the thumbnail's path, likewise; NULL = none (the card says so) */
    const char *class_name; /* predicted class; NULL = not known */
    double confidence;      /* [0, 1]; negative = not known */
    int peak;               /* enum report_peak */
    const char *note;       /* failed/ignored: the reason; results: a remark or NULL */
} report_entry;

typedef struct report_page {
    const char *command;     /* "batch", for messages */
    const char *dir;         /* the folder the page goes into (the figures' paths start with it) */
    const char *file_name;   /* report_file_name() */
    const char *model;       /* shown in the header */
    const char *method;
    const char *layer;
    const char *image_dir;
    const char *const *classes; /* the model's class names, in order, for the filter */
    uint32_t class_count;
    bool has_boxes;          /* --boxes given: the "peak outside the box" flag is meaningful */
    const report_entry *entries;
    size_t count;
} report_page;

/* "index.html", or with --shard K/N "index.shard-K-of-N.html" (as the
 * summaries are named), so that the shards of a job array sharing one
 * output folder do not replace each other's page. malloc'ed. */
char *report_file_name(const cli_settings *s);

/* Renders the page (into *html, which the caller frees with cli_text_free). */
void report_render(const report_page *page, cli_text *html);

/* Renders and writes <dir>/<file_name> atomically. Refuses (prints why,
 * returns false) when a file of that name that fxcam did not write is there. */
bool report_write(const report_page *page);

/* "<figure without .png>_thumb.png", malloc'ed. */
char *report_thumbnail_path(const char *figure);

/* Writes a thumbnail of the overlay (or of the colored heatmap with
 * --heatmap-only) of image and heatmap (1-channel F32, the image's size)
 * with the settings' alpha, colormap and threshold, the image shown through
 * the model's intensity rule with info (what the loader reported; may be
 * NULL) as the figure shows it (cli_model_view), boxes (may be NULL)
 * drawn in green, at most REPORT_THUMB_SIDE pixels on its longer side, to
 * path (atomically, by fx_image_save). Returns an fx_status;
 * fx_last_error() says why. */
fx_status report_write_thumbnail(const cli_settings *s, const fx_model *model, const char *path,
                                 const fx_image *image, const fx_image_info *info, const fx_image *heatmap,
                                 const struct cli_annotation *boxes);

/* Whether a file name (no folder) is one the report writes: a thumbnail of
 * figures ending in figure_suffix ("_gradcam.png"), or report_file_name()
 * when s->report is set. Such files in the input folder are not inputs. */
bool report_is_own_file(const cli_settings *s, const char *figure_suffix, const char *name);

/* `fxcam batch --report` (batch_report.c). */
struct batch_run;
struct batch_item;
/* Thumbnail of a finished item (image i of result; info as the loader
 * reported it, may be NULL); a failure is a warning (the card then has no
 * picture), not a failed image. */
void batch_report_thumbnail(struct batch_run *run, const struct batch_item *item, const fx_image *image,
                            const fx_image_info *info, const fx_result *result, size_t i);
/* index.html for the items [0, limit) and the carried and ignored ones. */
bool batch_write_report(const struct batch_run *run, size_t limit);

/* `fxcam evaluate --report --output-dir DIR` (evaluate_report.c): the
 * figure and thumbnail of each image's first method, collected as the
 * evaluation runs, then the page. */
struct cli_annotation;
typedef struct eval_report {
    int32_t method;        /* the first method: the one drawn */
    char *suffix;          /* "_<method>.png" */
    report_entry *entries;
    char **owned;          /* 3 per entry: file, figure or note, thumbnail */
    size_t count, capacity;
} eval_report;
void eval_report_init(eval_report *r, int32_t first_method);
/* Writes the figure (cli_write_output_info with info, what the loader
 * reported of image, may be NULL; boxes in green) and thumbnail of image
 * i of result (method index 0) and records its card; a write failure is a
 * warning and a card without a picture. The peak flag compares method 0's
 * map peak with a's boxes (none: no flag). */
void eval_report_add(eval_report *r, const cli_settings *s, const fx_model *model, const fx_image *image,
                     const fx_image_info *info, const fx_result *result, size_t i, const struct cli_annotation *a);
/* An image that could not be evaluated, with the reason. */
void eval_report_fail(eval_report *r, const char *file, const char *what, const char *why);
/* index.html (report_file_name) in s->output_dir. */
bool eval_report_write(const eval_report *r, const cli_settings *s, const fx_model *model, const char *layer,
                       bool has_boxes);
void eval_report_free(eval_report *r);

#endif
