/* Declarations shared by the fxcam command's source files. The command uses
 * libfxcam's public API only (fxcam.h). */
#ifndef FXCAM_CLI_H
#define FXCAM_CLI_H

#include "fxcam.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses (docs/cli.md). */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAILURE 1 /* runtime error, or some images failed */
#define CLI_EXIT_USAGE 2   /* bad command line */
#define CLI_EXIT_INTERRUPTED 130 /* Ctrl-C cancelled a per-channel method (128 + SIGINT, as shells report) */

/* ---- Command-line options (args.c) ------------------------------------- */

enum cli_option_id {
    OPT_HELP,
    OPT_MODEL,
    OPT_IMAGE,
    OPT_OUTPUT,
    OPT_IMAGE_DIR,
    OPT_OUTPUT_DIR,
    OPT_MAX_IMAGES,
    OPT_BATCH_SIZE,
    OPT_RECURSIVE,
    OPT_RESUME,
    OPT_BOXES,
    OPT_CSV,
    OPT_METHOD,
    OPT_LAYER,
    OPT_CLASS,
    OPT_ALPHA,
    OPT_COLORMAP,
    OPT_DEVICE,
    OPT_THREADS,
    OPT_HEATMAP_ONLY,
    OPT_OVERLAY_ONLY,
    OPT_FEATURE_MAPS,
    OPT_THRESHOLD,
    OPT_PANEL_HEIGHT,
    OPT_METHODS,
    OPT_MAX_PIXELS,
    OPT_MAX_SIDE,
    OPT_BATCH_MEMORY,
    OPT_OUTPUT_KIND,
    OPT_STRICT,
    OPT_FRAME,
    OPT_SHARD,
    OPT_REPORT,
    OPT_FAITHFULNESS,
    OPT_IO_THREADS,
    OPT_INTENSITY,
    OPT_BITS,
    OPT_WINDOW,
    OPT_RESIZE_MODE,
    OPT_RESIZE_SIZE,
    OPT_INPUT_SIZE,
    OPT_CHANNELS,
    OPT_MEAN,
    OPT_STD,
    OPT_CLASS_NAMES,
    /* CAM refinements and method settings (args.c cli_cam_options) */
    OPT_LAYERS,
    OPT_CLASS_WEIGHTS,
    OPT_AUG_SMOOTH,
    OPT_EIGEN_SMOOTH,
    OPT_SMOOTH_SAMPLES,
    OPT_SMOOTH_NOISE,
    OPT_CHANNEL_BATCH_SIZE,
    OPT_TARGET_CLASSES,
    OPT_COUNT
};

/* Everything a command line can set; each command accepts a subset. */
typedef struct cli_settings {
    const char *command;    /* "single", "batch", ... */
    bool help;
    const char *model;      /* NULL = the embedded model */
    const char *image;
    const char *output;
    const char *image_dir;
    const char *output_dir;
    const char *boxes;
    const char *csv;
    const char *layer;      /* NULL = the model's default layer */
    const char *class_name; /* --class as given; resolved against the model */
    const char *device;     /* "auto", "cpu", "cuda", "cuda:N" */
    int32_t methods[FX_CAM_METHOD_COUNT];
    uint32_t method_count;  /* 0 = the command's default */
    int32_t colormap;
    float alpha;
    float threshold;        /* overlay threshold, 0..1 */
    uint32_t panel_height;  /* figure panels; 0 = the library's choice */
    uint64_t max_pixels;    /* image load limits; 0 = the library's defaults */
    uint32_t max_side;
    uint64_t batch_memory;  /* bytes of decoded images and maps per forward pass */
    int32_t threads;        /* 0 = all CPUs */
    uint32_t io_threads;    /* --io-threads: 0 = read, model, write one after another; 1 = they overlap */
    int32_t output_kind;    /* --output-kind: FX_OUTPUT_AUTO (default), _LOGITS, _PROBABILITIES */
    bool strict;            /* --strict: load warnings that make results unreliable are errors */
    uint32_t frame;         /* --frame: frame of multi-frame DICOM inputs, 0-based */
    uint32_t shard_index;   /* --shard K/N: K, 0-based (cli/shard.h) */
    uint32_t shard_count;   /* N; 0 = no --shard */
    size_t max_images;      /* 0 = no limit */
    uint32_t batch_size;
    bool recursive;
    bool resume;
    bool heatmap_only;
    bool overlay_only;
    bool feature_maps;
    bool report;            /* --report: index.html and thumbnails beside the figures (report.h) */
    bool faithfulness;      /* --faithfulness: evaluate adds the faithfulness metrics (faithfulness.h) */
    /* How the model was trained (fx_model_options; 0 = fxcam.json's, else the default). */
    int32_t intensity;      /* --intensity: FX_INTENSITY_* */
    uint32_t bits;          /* --bits: bits stored, 1..16 */
    float window_center;    /* --window C,W; window_width 0 = not given */
    float window_width;
    int32_t resize_mode;    /* --resize-mode: FX_RESIZE_* */
    uint32_t resize_size;   /* --resize-size: shorter side before the center crop */
    uint32_t input_width;   /* --input-size HxW */
    uint32_t input_height;
    uint32_t channels;      /* --channels: 1 or 3 */
    float mean[3], std[3];  /* --mean, --std: one value per channel */
    uint32_t mean_count, std_count;
    const char *class_names; /* --class-names a,b,...: as given (split when the model loads) */
    /* CAM refinements and method settings (fx_gradcam_options; cli_cam_options applies them). */
    const char *layers;     /* --layers A,B: several target layers, as given */
    const char *class_weights; /* --class-weights: as given (resolved against the model) */
    bool aug_smooth;        /* --aug-smooth */
    bool eigen_smooth;      /* --eigen-smooth */
    uint32_t smooth_samples; /* --smooth-samples: 0 = the library's default */
    float smooth_noise;     /* --smooth-noise: 0 = the library's default */
    uint32_t channel_batch_size; /* --channel-batch-size: 0 = the library's default */
    const char *target_classes; /* --target-classes FILE: each image's class (target_classes.h) */
} cli_settings;

/* What cli_cam_options points fx_gradcam_options at; release with
 * cli_cam_options_free. */
typedef struct cli_cam_extras {
    char *layer_text;        /* a copy of --layers, split in place */
    const char *layers[FX_MAX_LAYERS_PER_CALL];
    float *weights;          /* fx_model_class_count() weights, or NULL */
} cli_cam_extras;

/* Applies --layer/--layers, --class-weights, --aug-smooth, --eigen-smooth,
 * --smooth-samples, --smooth-noise and --channel-batch-size to opts (after
 * fx_gradcam_options_init; --class is the caller's, cli_resolve_class).
 * Class names in --class-weights are resolved against the model. Returns
 * CLI_EXIT_OK, or CLI_EXIT_USAGE after printing what was wrong. */
int cli_cam_options(const cli_settings *s, const fx_model *model, cli_cam_extras *x, fx_gradcam_options *opts);
void cli_cam_options_free(cli_cam_extras *x);

/* A command's own wording of an option's help, where its default differs. */
typedef struct cli_option_help {
    int id;
    const char *help;
} cli_option_help;

typedef struct cli_command {
    const char *name;
    const char *summary;   /* one line for the tool's --help */
    const char *usage;     /* usage line(s) */
    const char *details;   /* paragraphs after the usage; may be NULL */
    const int *options;    /* OPT_* ids accepted, ending with -1 */
    const cli_option_help *help_overrides; /* ending with id -1; may be NULL */
    int (*run)(const cli_settings *settings);
} cli_command;

/* Parses argv (after the command name) into *settings. Returns CLI_EXIT_OK,
 * or CLI_EXIT_USAGE after printing what was wrong to stderr. */
int cli_parse(const cli_command *command, int argc, char **argv, cli_settings *settings);
void cli_print_command_help(const cli_command *command, FILE *to);
/* "fxcam <command>: error: ..." on stderr, then a hint to --help; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* "fxcam <command>: error: ..." on stderr. */
void cli_error(const char *command, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- Commands ---------------------------------------------------------- */

int cli_run_single(const cli_settings *s);
int cli_run_compare(const cli_settings *s);
int cli_run_layers(const cli_settings *s);
int cli_run_info(const cli_settings *s);
int cli_run_batch(const cli_settings *s);
int cli_run_demo(const cli_settings *s);
int cli_run_evaluate(const cli_settings *s);
int cli_run_methods(const cli_settings *s);

/* ---- Shared helpers (common.c) ----------------------------------------- */

/* Loads --model, or the embedded model when settings->model is NULL, with
 * --device and --threads. Prints the reason on failure, and the model's load
 * warnings ("fxcam: warning: ...") on success. --bits or --resize-size that
 * the model's own intensity rule or resize mode (fxcam.json) would ignore is
 * a usage error (CLI_EXIT_USAGE, *out NULL). */
int cli_load_model(const cli_settings *s, fx_model **out);
void cli_warn_model(const fx_model *model);
struct cli_progress;
#define CLI_ALL_IMAGES INT64_MIN
/* Prints the result's warnings about image index `image` (-1: those about
 * the whole call; CLI_ALL_IMAGES: every one) as "fxcam: warning: [name: ]...",
 * through progress when not NULL. */
void cli_warn_result(const fx_result *result, int64_t image, const char *name, struct cli_progress *progress);
/* Resolves --class (an index or a class name) to *target (-1 when not
 * given). Prints the valid classes on failure and returns CLI_EXIT_USAGE. */
int cli_resolve_class(const cli_settings *s, const fx_model *model, int32_t *target);
/* A class given as text: an index below fx_model_result_class_count() or a
 * class name (case-insensitive). false when it is neither. */
bool cli_class_from_text(const fx_model *model, const char *text, int32_t *target);
/* "0 (normal), 1 (fracture)": the model's classes for messages (malloc'ed). */
char *cli_class_list(const fx_model *model);
/* The name of fx_result_target_class's class, or "weighted classes" for its
 * -1 (the score was a weighted sum of classes: fx_gradcam_options.
 * class_weights). Never NULL; never index class names with a -1 target. */
const char *cli_target_name(const fx_model *model, int32_t target);
/* Appends the refinements that changed the maps (", aug-smooth",
 * ", eigen-smooth", ", layers averaged") to a figure's method caption, so a
 * figure says how its map was made. */
void cli_append_refinements(const cli_settings *s, char *buf, size_t size);
/* Exit status and message for a failed fx_gradcam_compute: a wrong --layer
 * or --class is a usage error. */
int cli_compute_failed(const char *command, fx_status status);
/* From the library's method registry (cli/methods.c): the display title
 * ("Grad-CAM", "Grad-CAM++", ...; "CAM" if unknown), the file-name slug
 * ("gradcam", "gradcampp", ...) and "gradcam, gradcam++, ..." into buf. */
const char *cli_method_title(int32_t method);
const char *cli_method_slug(int32_t method);
const char *cli_method_names(char *buf, size_t cap);
/* "jet, hot, ...": every colormap name, from the library's table (the
 * --colormap help and errors); cut when cap is too small. Returns buf. */
const char *cli_colormap_names(char *buf, size_t cap);
/* Position of the largest value of a 1-channel F32 heatmap (first one in
 * row-major order). */
void cli_heatmap_peak(const fx_image *heatmap, uint32_t *x, uint32_t *y);
struct cli_annotation;
/* Writes what the settings ask for (figure, heatmap or overlay) for image i of
 * result, method index j, to path. input (may be NULL) is the input file
 * named in the figure's caption; boxes (may be NULL) are drawn in green.
 * Returns an fx_status; fx_last_error() has the reason. */
fx_status cli_write_output(const cli_settings *s, const fx_model *model, const fx_image *image,
                           const fx_result *result, size_t i, uint32_t j, const char *path, const char *input,
                           const struct cli_annotation *boxes);
/* cli_write_output with the loader's info of image (may be NULL): the image is
 * shown through the model's intensity rule (cli_model_view). */
fx_status cli_write_output_info(const cli_settings *s, const fx_model *model, const fx_image *image,
                                const fx_image_info *info, const fx_result *result, size_t i, uint32_t j,
                                const char *path, const char *input, const struct cli_annotation *boxes);
/* The image as RGB8 with boxes (may be NULL) drawn in green. */
fx_status cli_display_image(const fx_image *image, const struct cli_annotation *boxes, fx_image *rgb);
/* Figure options from --alpha, --colormap, --threshold, --panel-height. */
void cli_figure_options(const cli_settings *s, fx_figure_options *f);
/* fx_figure_options.source: "<input file> | model <model file>" (input may be
 * NULL: "model <model file>"), escaped for display. */
void cli_source(const cli_settings *s, const char *input, char *buf, size_t size);
/* The --model file's name without folders, or the embedded model's name. */
const char *cli_model_name(const cli_settings *s);
/* Loads an image with the --max-pixels / --max-side limits. Returns the
 * status; on failure *why (static until the next call) is the reason, whose
 * advice names the command's options rather than the C API. */
fx_status cli_load_image(const cli_settings *s, const char *path, fx_image *out, const char **why);
/* Same, also filling *info (may be NULL) with what the loader found out about
 * the samples, for fx_gradcam_options.image_info and the figure. */
fx_status cli_load_image_info(const cli_settings *s, const char *path, fx_image *out, fx_image_info *info,
                              const char **why);
/* The image as the model sees it, as RGB8: the model's intensity rule
 * (fx_model_intensity) with the loader's info (may be NULL), so that a figure
 * shows what the model was given. */
fx_status cli_model_view(const fx_model *model, const fx_image *image, const fx_image_info *info, fx_image *rgb);
/* Untrusted text (file names, library messages quoting them) made safe for a
 * terminal: control characters, DEL, C1 controls and invalid UTF-8 become
 * \xNN, a backslash becomes \\. cli_name escapes every control character;
 * cli_message keeps newlines and tabs. The result lives in one of 8 rotating
 * buffers (so several may appear in one printf), truncated with "..." past
 * 1 KiB. */
const char *cli_name(const char *text);
const char *cli_message(const char *text);
/* Whether name ends with ".png", any case. */
bool cli_is_png_name(const char *name);
/* Whether name ends with an extension of an image fxcam reads: .png, .jpg,
 * .jpeg, .dcm, .dicom, any case. */
bool cli_is_image_name(const char *name);
/* The format of a file from its first bytes, as fx_image_load recognises it
 * (PNG signature, JPEG SOI, "DICM" at byte 128). The file is opened
 * O_NONBLOCK and read only when it is a regular file. */
typedef enum cli_format {
    CLI_FORMAT_UNREADABLE = -1, /* cannot be opened or read; errno says why */
    CLI_FORMAT_UNKNOWN = 0,
    CLI_FORMAT_PNG,
    CLI_FORMAT_JPEG,
    CLI_FORMAT_DICOM,
} cli_format;
cli_format cli_sniff_format(const char *path);
/* Creates dir and its parents (mkdir -p). Returns 0 or -1 with errno set. */
int cli_make_dirs(const char *dir);
/* Seconds from a monotonic clock. */
double cli_now(void);
/* malloc'ed printf; exits on out-of-memory. */
char *cli_strdup_printf(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* Growing text buffer for summaries and CSV files. */
typedef struct cli_text {
    char *data;
    size_t size;
    size_t capacity;
} cli_text;
void cli_text_printf(cli_text *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Appends a CSV field, quoted when it holds a comma, quote or newline. */
void cli_text_csv_field(cli_text *t, const char *field, bool last);
void cli_text_free(cli_text *t);
/* Writes text to path through lib/atomic_file.c (never through a planted
 * symlink; readers see the old or the complete new file). Prints one message
 * on failure and returns false. */
bool cli_save_text(const char *command, const char *path, const cli_text *text);

/* ---- Embedded data (embedded.c, generated) ----------------------------- */

typedef struct cli_asset {
    const char *name;           /* file name, e.g. "fracture_densenet.pt" */
    const unsigned char *data;
    size_t size;
} cli_asset;

/* The default model, or NULL when this build embeds none. */
const cli_asset *cli_embedded_model(void);
/* The sample radiographs (PNG) and their boxes.csv. */
size_t cli_embedded_sample_count(void);
const cli_asset *cli_embedded_sample(size_t index);

/* ---- Progress (progress.c) --------------------------------------------- */

struct cli_progress {
    FILE *to;
    bool terminal;     /* redraw one line with \r; else one line per item */
    size_t total;
    size_t done;
    size_t failed;
    double start;
    bool line_drawn;   /* a bar is on screen and must be cleared before other output */
};
typedef struct cli_progress cli_progress;

void cli_progress_start(cli_progress *p, FILE *to, size_t total);
/* Reports one finished item: its name and a short outcome ("fracture 93.4%",
 * "FAILED: ..."). */
void cli_progress_step(cli_progress *p, const char *name, const char *outcome, bool failed);
/* Prints a message on its own line without breaking the bar. */
void cli_progress_note(cli_progress *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void cli_progress_finish(cli_progress *p);
/* "1:05" / "1:02:03". */
void cli_format_duration(double seconds, char *buf, size_t size);

/* ---- Methods with one forward per channel (progress_methods.c) ---------- */

/* State of the library's progress callback for one command; see the file's
 * header for what it prints. */
typedef struct cli_channel_progress {
    const char *command;
    FILE *to;
    bool terminal;       /* a bar redrawn with \r; else a line per tenth */
    bool show_progress;  /* false in batch, which has its own per-image bar */
    const char *layer;   /* --layer, the default layer, or --layers as given */
    uint32_t layer_count;
    uint32_t layer_channels[FX_MAX_LAYERS_PER_CALL]; /* of each layer's output; 0 when unknown */
    uint32_t channels;   /* their sum: forwards per image and method */
    uint32_t method_count; /* per-channel methods in the call */
    char titles[96];     /* "Score-CAM", "Score-CAM and Ablation-CAM" */
    double chunk_start;  /* when the current call's done = 0 came */
    uint64_t chunk_total;
    unsigned last_decile;
    bool estimated;
    bool line_drawn;
} cli_channel_progress;

/* Whether a method of the list needs extra forward passes (registry's
 * FX_CAM_NEEDS_EXTRA_FORWARDS): then the command reports progress. */
bool cli_methods_need_channel_forwards(const int32_t *methods, uint32_t count);
/* Fills *p and points opts->progress and progress_user at it. */
void cli_channel_progress_init(cli_channel_progress *p, const cli_settings *s, const fx_model *model,
                               const int32_t *methods, uint32_t method_count, bool show_progress,
                               fx_gradcam_options *opts);
/* Around the computation: a SIGINT from the first callback on cancels (the
 * callback returns non-zero); before it, SIGINT ends the process as usual.
 * end restores the previous handler and clears the bar. p may be NULL. */
void cli_channel_progress_begin(void);
void cli_channel_progress_end(cli_channel_progress *p);
int cli_channel_progress_callback(void *user, uint64_t done, uint64_t total);
/* Whether a SIGINT cancelled the computation. */
bool cli_interrupted(void);
/* For FX_ERR_CANCELLED: prints that Ctrl-C interrupted (with the library's
 * count of forwards done) and returns CLI_EXIT_INTERRUPTED. */
int cli_cancelled(const char *command);

#endif
