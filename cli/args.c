/* Command-line parsing: one table of options shared by every command, each
 * command accepting a subset. Values are checked here so that a bad value is
 * a usage error (exit 2) reported before any model is loaded. */
#include "cli.h"
#include "shard.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct cli_option {
    int id;
    const char *name;   /* long name, without "--" */
    const char *alias;  /* other spelling (generate_gradcam.py's underscores), or NULL */
    char short_name;    /* 0 = none */
    const char *value;  /* value placeholder; NULL for a flag */
    const char *help;
} cli_option;

static const cli_option options[OPT_COUNT] = {
    {OPT_HELP, "help", NULL, 'h', NULL, "show this help and exit"},
    {OPT_MODEL, "model", NULL, 'm', "PATH",
     "TorchScript model (.pt); default: the embedded fracture model"},
    {OPT_IMAGE, "image", NULL, 'i', "PATH", "input image: PNG, JPEG or DICOM (recognised by content)"},
    {OPT_OUTPUT, "output", NULL, 'o', "PATH", "output PNG; default: <image name>_<method>.png"},
    {OPT_IMAGE_DIR, "image-dir", "image_dir", 0, "DIR",
     "folder of images: .png .jpg .jpeg .dcm .dicom (any case) and DICOM files by content"},
    {OPT_OUTPUT_DIR, "output-dir", "output_dir", 0, "DIR", "folder for the outputs (created if missing)"},
    {OPT_MAX_IMAGES, "max-images", "max_images", 0, "N", "process at most N images (the first in sorted order)"},
    {OPT_BATCH_SIZE, "batch-size", "batch_size", 0, "B", "images per forward pass (1..1024; default 8)"},
    {OPT_RECURSIVE, "recursive", NULL, 'r', NULL,
     "descend into subfolders; outputs mirror the folder tree"},
    {OPT_RESUME, "resume", NULL, 0, NULL, "skip images whose output file already exists"},
    {OPT_BOXES, "boxes", NULL, 0, "CSV",
     "annotations: file,label,x0,y0,x1,y1 (inclusive pixel box; empty box for normal images)"},
    {OPT_CSV, "csv", NULL, 0, "PATH", "also write the per-image results as CSV"},
    {OPT_METHOD, "method", NULL, 0, "NAME", "CAM method (default gradcam)"},
    {OPT_LAYER, "layer", NULL, 'l', "NAME", "target layer (see 'fxcam layers'); default: the model's"},
    {OPT_CLASS, "class", NULL, 'c', "K|NAME",
     "class whose map is computed, by index or name; default: the predicted class"},
    {OPT_ALPHA, "alpha", NULL, 0, "A", "heatmap weight in the overlay, 0..1 (default 0.4)"},
    {OPT_COLORMAP, "colormap", NULL, 0, "NAME",
     "colormap of heatmaps and overlays (default jet)"},
    {OPT_DEVICE, "device", NULL, 'd', "DEV", "auto (default), cpu, cuda or cuda:N"},
    {OPT_THREADS, "threads", NULL, 't', "N", "CPU threads; 0 (default) = all CPUs"},
    {OPT_HEATMAP_ONLY, "heatmap-only", "heatmap_only", 0, NULL,
     "write only the colored heatmap, at the image's size"},
    {OPT_OVERLAY_ONLY, "overlay-only", "overlay_only", 0, NULL,
     "write only the heatmap blended over the image, at the image's size"},
    {OPT_FEATURE_MAPS, "feature-maps", "feature_maps", 0, NULL,
     "list only the layers that output feature maps (valid --layer values)"},
    {OPT_THRESHOLD, "threshold", NULL, 0, "T",
     "map values below T leave the image uncolored in overlays, 0..1 (default 0)"},
    {OPT_PANEL_HEIGHT, "panel-height", "panel_height", 0, "PX",
     "height of each figure panel, 16..8192; default: the image's height up to a cap"},
    {OPT_METHODS, "methods", NULL, 0, "A,B",
     "the two methods to compare (default gradcam,gradcam++)"},
    {OPT_MAX_PIXELS, "max-pixels", "max_pixels", 0, "N",
     "refuse images of more than N pixels (width x height; default 134217728 = 2^27)"},
    {OPT_MAX_SIDE, "max-side", "max_side", 0, "PX",
     "refuse images wider or taller than PX pixels (default 32768)"},
    {OPT_BATCH_MEMORY, "batch-memory", "batch_memory", 0, "SIZE",
     "memory for the decoded images and maps of one forward pass, e.g. 512M, 2G (default 1G); "
     "a larger image runs alone"},
    {OPT_OUTPUT_KIND, "output-kind", "output_kind", 0, "KIND",
     "what the model outputs: auto (default: from the graph, fxcam.json or the probe), logits, or "
     "probabilities (the model ends in softmax/sigmoid)"},
    {OPT_STRICT, "strict", NULL, 0, NULL,
     "refuse a model whose results would be unreliable (exported in training mode) instead of warning"},
    {OPT_FRAME, "frame", NULL, 0, "N",
     "frame of a multi-frame DICOM input, 0-based (default 0); PNG and JPEG hold frame 0 only"},
    {OPT_SHARD, "shard", NULL, 0, "K/N",
     "take only shard K of N (0 <= K < N; K = $SLURM_ARRAY_TASK_ID): files whose FNV-1a 64 hash of "
     "the path below --image-dir, mod N, is K; join the shards with 'fxcam merge'"},
    {OPT_REPORT, "report", NULL, 0, NULL,
     "also write index.html: thumbnails with prediction and confidence, sortable and filterable, "
     "low-confidence flags (below 0.6), failures and ignored files; opens from file://"},
    {OPT_FAITHFULNESS, "faithfulness", NULL, 0, NULL,
     "also measure which map the model relies on: Average Drop / Increase in Confidence, deletion and "
     "insertion AUC, ROAD (84 forward passes per image and method, and the same for a random map; "
     "needs no --boxes)"},
    {OPT_IO_THREADS, "io-threads", "io_threads", 0, "N",
     "1 (default): read and decode the next pass and write the figures of the previous one while the "
     "model runs (one thread each, outputs in input order; the passes in flight share --batch-memory); 0: one "
     "after another"},
    {OPT_INTENSITY, "intensity", NULL, 0, "MODE",
     "how the model was trained to read samples: auto (default: bits stored when the file says, else the "
     "container), container (/255, /65535), bits (/(2^bits - 1)), minmax (per image), window (--window)"},
    {OPT_BITS, "bits", NULL, 0, "N",
     "bits stored, 1..16: 16-bit samples are read as v / (2^N - 1) (12 for 12-bit radiographs); with "
     "--intensity bits or auto"},
    {OPT_WINDOW, "window", NULL, 0, "C,W",
     "intensity window: center and width in sample units; (v - (C - W/2)) / W clipped to [0,1]; "
     "selects --intensity window"},
    {OPT_RESIZE_MODE, "resize-mode", "resize_mode", 0, "MODE",
     "how images reach the input size: stretch (default), stretch-antialias, letterbox, shorter-side-crop "
     "(torchvision Resize + CenterCrop)"},
    {OPT_RESIZE_SIZE, "resize-size", "resize_size", 0, "N",
     "shorter side before the center crop of shorter-side-crop (torchvision Resize(N)), 1..16384; "
     "default input * 256 / 224; refused with another resize mode"},
    {OPT_INPUT_SIZE, "input-size", "input_size", 0, "HxW",
     "model input height x width, each 2..16384, e.g. 512x512 (default: fxcam.json, else 224x224)"},
    {OPT_CHANNELS, "channels", NULL, 0, "N", "model input channels, 1 or 3 (default: fxcam.json, else 3)"},
    {OPT_MEAN, "mean", NULL, 0, "a,b,c",
     "normalization mean, one value per channel (default: fxcam.json, else ImageNet's; 0.5 for 1 channel)"},
    {OPT_STD, "std", NULL, 0, "a,b,c", "normalization std, one value per channel, each > 0"},
    {OPT_CLASS_NAMES, "class-names", "class_names", 0, "A,B",
     "class names in output order, comma-separated (default: fxcam.json, else 'class K', or 'negative', "
     "'positive' for a single-logit model)"},
    {OPT_LAYERS, "layers", NULL, 0, "A,B",
     "several target layers (up to 16): each layer's map is scaled, upsampled to the model input and the "
     "maps averaged (pytorch-grad-cam's target_layers); instead of --layer"},
    {OPT_CLASS_WEIGHTS, "class-weights", "class_weights", 0, "C=W,...",
     "explain a weighted sum of classes (multi-label findings): NAME=W or K=W pairs (other classes 0), or one "
     "weight per model output; instead of --class"},
    {OPT_AUG_SMOOTH, "aug-smooth", "aug_smooth", 0, NULL,
     "test-time augmentation: 6 runs (no flip / horizontal flip x input times 1.0, 1.1, 0.9), maps flipped back "
     "and averaged; 6x the time"},
    {OPT_EIGEN_SMOOTH, "eigen-smooth", "eigen_smooth", 0, NULL,
     "each map is the first principal component of the weighted activations instead of their sum (less noise)"},
    {OPT_SMOOTH_SAMPLES, "smooth-samples", "smooth_samples", 0, "N",
     "Smooth Grad-CAM++: noisy copies of the input, 1..256 (default 8)"},
    {OPT_SMOOTH_NOISE, "smooth-noise", "smooth_noise", 0, "S",
     "Smooth Grad-CAM++: noise standard deviation as a fraction of the input's range, (0, 10] (default 0.15)"},
    {OPT_CHANNEL_BATCH_SIZE, "channel-batch-size", "channel_batch_size", 0, "N",
     "Score-CAM, Ablation-CAM: masked inputs per forward pass, 1..4096 (default 32); memory grows with it"},
    {OPT_TARGET_CLASSES, "target-classes", "target_classes", 0, "FILE",
     "explain each image for its own class: CSV lines 'file,class' (file relative to --image-dir, class a name or "
     "index, e.g. the ground-truth label); every image must be listed; instead of --class"},
};

static void print_message(const char *command, const char *fmt, va_list ap)
{
    fprintf(stderr, "fxcam%s%s: error: ", command ? " " : "", command ? command : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_message(command, fmt, ap);
    va_end(ap);
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_message(command, fmt, ap);
    va_end(ap);
    fprintf(stderr, "Run 'fxcam%s%s --help' for usage.\n", command ? " " : "", command ? command : "");
    return CLI_EXIT_USAGE;
}

static bool accepts(const cli_command *command, int id)
{
    for (const int *o = command->options; *o >= 0; o++) {
        if (*o == id) {
            return true;
        }
    }
    return false;
}

static void print_option(const cli_option *o, const char *help, FILE *to)
{
    char left[64];
    int n = 0;
    if (o->short_name) {
        n = snprintf(left, sizeof left, "-%c, --%s", o->short_name, o->name);
    } else {
        n = snprintf(left, sizeof left, "    --%s", o->name);
    }
    if (o->value && n > 0 && (size_t)n < sizeof left) {
        snprintf(left + n, sizeof left - (size_t)n, " %s", o->value);
    }
    if (strlen(left) > 24) {
        fprintf(to, "  %s\n  %-24s  %s\n", left, "", help);
    } else {
        fprintf(to, "  %-24s  %s\n", left, help);
    }
}

void cli_print_command_help(const cli_command *command, FILE *to)
{
    fprintf(to, "Usage: %s\n\n%s\n", command->usage, command->summary);
    if (command->details) {
        fprintf(to, "\n%s", command->details);
    }
    fprintf(to, "\nOptions:\n");
    for (const int *o = command->options; *o >= 0; o++) {
        const char *help = options[*o].help;
        for (const cli_option_help *h = command->help_overrides; h && h->id >= 0; h++) {
            help = h->id == *o ? h->help : help;
        }
        char with_names[1024];
        if (*o == OPT_METHOD || *o == OPT_METHODS) { /* the list comes from the library's registry */
            char names[512];
            snprintf(with_names, sizeof with_names, "%s; one of: %s (see 'fxcam methods')", help,
                     cli_method_names(names, sizeof names));
            help = with_names;
        } else if (*o == OPT_COLORMAP) { /* the list comes from the library's table */
            char names[512];
            snprintf(with_names, sizeof with_names, "%s; one of: %s", help, cli_colormap_names(names, sizeof names));
            help = with_names;
        }
        print_option(&options[*o], help, to);
    }
}

/* The option named by `arg` ("--name", "--name=value", "-x"); *inline_value
 * receives the text after '=' when present. */
static const cli_option *find_option(const char *arg, const char **inline_value)
{
    *inline_value = NULL;
    if (arg[0] == '-' && arg[1] != '-' && arg[1] != '\0' && arg[2] == '\0') {
        for (int i = 0; i < OPT_COUNT; i++) {
            if (options[i].short_name == arg[1]) {
                return &options[i];
            }
        }
        return NULL;
    }
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    for (int i = 0; i < OPT_COUNT; i++) {
        const cli_option *o = &options[i];
        if ((strlen(o->name) == len && strncmp(o->name, name, len) == 0) ||
            (o->alias && strlen(o->alias) == len && strncmp(o->alias, name, len) == 0)) {
            *inline_value = eq ? eq + 1 : NULL;
            return o;
        }
    }
    return NULL;
}

static bool parse_size(const char *text, unsigned long long max, unsigned long long *out)
{
    if (!isdigit((unsigned char)text[0])) {
        return false;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* "1073741824", "1024M", "1G" (binary units: K, M, G, T). */
static bool parse_bytes(const char *text, uint64_t *out)
{
    size_t len = strlen(text);
    unsigned shift = 0;
    char digits[32];
    if (len == 0 || len >= sizeof digits) {
        return false;
    }
    memcpy(digits, text, len + 1);
    const char *units = "KMGT";
    const char *unit = strchr(units, toupper((unsigned char)digits[len - 1]));
    if (unit && digits[len - 1] != '\0') {
        shift = 10u * (unsigned)(unit - units + 1);
        digits[--len] = '\0';
    }
    unsigned long long v = 0;
    if (!parse_size(digits, UINT64_MAX >> shift, &v) || v == 0) {
        return false;
    }
    *out = (uint64_t)v << shift;
    return true;
}

static bool parse_fraction(const char *v, float *out)
{
    char *end = NULL;
    errno = 0;
    double a = strtod(v, &end);
    if (end == v || *end != '\0' || errno != 0 || !(a >= 0.0 && a <= 1.0)) {
        return false;
    }
    *out = (float)a;
    return true;
}

static bool valid_device(const char *d)
{
    if (strcmp(d, "auto") == 0 || strcmp(d, "cpu") == 0 || strcmp(d, "cuda") == 0) {
        return true;
    }
    unsigned long long index = 0;
    return strncmp(d, "cuda:", 5) == 0 && parse_size(d + 5, 1023, &index);
}

/* --method takes one name or a comma-separated list (evaluate compares
 * several); repeated --method options add up. */
static int add_methods(cli_settings *s, const char *value)
{
    const char *p = value;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[32], names[512];
        if (len == 0 || len >= sizeof name) {
            return cli_usage_error(s->command, "invalid --method '%s'; valid methods: %s", cli_name(value),
                                   cli_method_names(names, sizeof names));
        }
        memcpy(name, p, len);
        name[len] = '\0';
        int32_t method = 0;
        if (fx_cam_method_from_name(name, &method) != FX_OK || method < 0 || method >= FX_CAM_METHOD_COUNT) {
            return cli_usage_error(s->command, "unknown --method '%s'; valid methods: %s (see 'fxcam methods')",
                                   cli_name(name), cli_method_names(names, sizeof names));
        }
        bool seen = false;
        for (uint32_t j = 0; j < s->method_count; j++) {
            seen = seen || s->methods[j] == method;
        }
        if (!seen) {
            s->methods[s->method_count++] = method;
        }
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    return CLI_EXIT_OK;
}

/* "a,b,c": 1..max finite numbers; *count receives how many. */
static bool parse_floats(const char *v, float *out, uint32_t max, uint32_t *count)
{
    uint32_t n = 0;
    const char *p = v;
    for (;;) {
        char *end = NULL;
        errno = 0;
        double a = strtod(p, &end);
        if (end == p || errno != 0 || !isfinite(a) || n == max) {
            return false;
        }
        out[n++] = (float)a;
        if (*end == '\0') {
            break;
        }
        if (*end != ',') {
            return false;
        }
        p = end + 1;
    }
    *count = n;
    return true;
}

/* The model input's sides: the library's limits (lib/engine.c
 * FX_MIN_IMAGE_SIZE, FX_MAX_INPUT_SIZE; Python's _MIN/_MAX_INPUT_SIDE). */
#define CLI_MIN_INPUT_SIDE 2
#define CLI_MAX_INPUT_SIDE 16384

/* "HxW" (also "H,W"): each CLI_MIN_INPUT_SIDE..CLI_MAX_INPUT_SIDE. */
static bool parse_input_size(const char *v, uint32_t *height, uint32_t *width)
{
    const char *sep = strpbrk(v, "xX,");
    if (!sep) {
        return false;
    }
    char first[16];
    size_t len = (size_t)(sep - v);
    if (len == 0 || len >= sizeof first) {
        return false;
    }
    memcpy(first, v, len);
    first[len] = '\0';
    unsigned long long h = 0, w = 0;
    if (!parse_size(first, CLI_MAX_INPUT_SIDE, &h) || !parse_size(sep + 1, CLI_MAX_INPUT_SIDE, &w) ||
        h < CLI_MIN_INPUT_SIDE || w < CLI_MIN_INPUT_SIDE) {
        return false;
    }
    *height = (uint32_t)h;
    *width = (uint32_t)w;
    return true;
}

/* --class-names: 1..256 non-empty names, each under 256 bytes. */
static bool valid_class_names(const char *v)
{
    uint32_t count = 0;
    for (const char *p = v;; count++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len >= 256 || count >= 256) {
            return false;
        }
        if (!comma) {
            return true;
        }
        p = comma + 1;
    }
}

/* The options that say how the model was trained (fx_model_options). */
static int set_training_value(cli_settings *s, const cli_option *o, const char *v)
{
    unsigned long long n = 0;
    float pair[2];
    uint32_t count = 0;
    switch (o->id) {
    case OPT_INTENSITY:
        if (fx_intensity_from_name(v, &s->intensity) != FX_OK) {
            return cli_usage_error(s->command, "unknown --intensity '%s'; valid: auto, container, bits, minmax, "
                                   "window", cli_name(v));
        }
        break;
    case OPT_BITS:
        if (!parse_size(v, 16, &n) || n == 0) {
            return cli_usage_error(s->command, "invalid --bits '%s'; expected the bits stored, 1 to 16 (e.g. 12)",
                                   cli_name(v));
        }
        s->bits = (uint32_t)n;
        break;
    case OPT_WINDOW:
        if (!parse_floats(v, pair, 2, &count) || count != 2 || !(pair[1] > 0.0f)) {
            return cli_usage_error(s->command, "invalid --window '%s'; expected CENTER,WIDTH in sample units with "
                                   "WIDTH > 0, e.g. 2048,4096", cli_name(v));
        }
        s->window_center = pair[0];
        s->window_width = pair[1];
        break;
    case OPT_RESIZE_MODE:
        if (fx_resize_mode_from_name(v, &s->resize_mode) != FX_OK || s->resize_mode == FX_RESIZE_DEFAULT) {
            return cli_usage_error(s->command, "unknown --resize-mode '%s'; valid: stretch, stretch-antialias, "
                                   "letterbox, shorter-side-crop", cli_name(v));
        }
        break;
    case OPT_RESIZE_SIZE:
        if (!parse_size(v, CLI_MAX_INPUT_SIDE, &n) || n == 0) {
            return cli_usage_error(s->command, "invalid --resize-size '%s'; expected a whole number of pixels from "
                                   "1 to %d", cli_name(v), CLI_MAX_INPUT_SIDE);
        }
        s->resize_size = (uint32_t)n;
        break;
    case OPT_INPUT_SIZE:
        if (!parse_input_size(v, &s->input_height, &s->input_width)) {
            return cli_usage_error(s->command, "invalid --input-size '%s'; expected HEIGHTxWIDTH, each %d to %d, "
                                   "e.g. 512x512", cli_name(v), CLI_MIN_INPUT_SIDE, CLI_MAX_INPUT_SIDE);
        }
        break;
    case OPT_CHANNELS:
        if (!parse_size(v, 3, &n) || (n != 1 && n != 3)) {
            return cli_usage_error(s->command, "invalid --channels '%s'; expected 1 or 3", cli_name(v));
        }
        s->channels = (uint32_t)n;
        break;
    case OPT_MEAN:
        if (!parse_floats(v, s->mean, 3, &s->mean_count)) {
            return cli_usage_error(s->command, "invalid --mean '%s'; expected 1 or 3 comma-separated numbers, one "
                                   "per channel, e.g. 0.485,0.456,0.406", cli_name(v));
        }
        break;
    case OPT_STD:
        if (!parse_floats(v, s->std, 3, &s->std_count)) {
            return cli_usage_error(s->command, "invalid --std '%s'; expected 1 or 3 comma-separated numbers > 0, "
                                   "one per channel, e.g. 0.229,0.224,0.225", cli_name(v));
        }
        for (uint32_t i = 0; i < s->std_count; i++) {
            if (!(s->std[i] > 0.0f)) {
                return cli_usage_error(s->command, "invalid --std '%s': value %u is not > 0", cli_name(v), i + 1);
            }
        }
        break;
    case OPT_CLASS_NAMES:
        if (!valid_class_names(v)) {
            return cli_usage_error(s->command, "invalid --class-names '%s'; expected 1 to 256 non-empty names "
                                   "separated by commas, e.g. normal,fracture", cli_name(v));
        }
        s->class_names = v;
        break;
    default:
        return cli_usage_error(s->command, "internal error: option --%s has no value handler", o->name);
    }
    return CLI_EXIT_OK;
}

/* The CAM refinements and method settings (cli_cam_options applies them). */
static int set_cam_value(cli_settings *s, const cli_option *o, const char *v)
{
    unsigned long long n = 0;
    switch (o->id) {
    case OPT_LAYERS: s->layers = v; break;
    case OPT_CLASS_WEIGHTS: s->class_weights = v; break;
    case OPT_TARGET_CLASSES: s->target_classes = v; break;
    case OPT_SMOOTH_SAMPLES:
        if (!parse_size(v, 256, &n) || n == 0) {
            return cli_usage_error(s->command, "invalid --smooth-samples '%s'; expected a whole number from 1 to 256",
                                   cli_name(v));
        }
        s->smooth_samples = (uint32_t)n;
        break;
    case OPT_SMOOTH_NOISE: {
        uint32_t count = 0;
        if (!parse_floats(v, &s->smooth_noise, 1, &count) || count != 1 || !(s->smooth_noise > 0.0f) ||
            s->smooth_noise > 10.0f) {
            return cli_usage_error(s->command, "invalid --smooth-noise '%s'; expected a number in (0, 10], the noise "
                                   "standard deviation as a fraction of the input's range (e.g. 0.15)", cli_name(v));
        }
        break;
    }
    case OPT_CHANNEL_BATCH_SIZE:
        if (!parse_size(v, 4096, &n) || n == 0) {
            return cli_usage_error(s->command, "invalid --channel-batch-size '%s'; expected a whole number from 1 "
                                   "to 4096", cli_name(v));
        }
        s->channel_batch_size = (uint32_t)n;
        break;
    default:
        return cli_usage_error(s->command, "internal error: option --%s has no value handler", o->name);
    }
    return CLI_EXIT_OK;
}

static int set_value(cli_settings *s, const cli_option *o, const char *v)
{
    if (o->id >= OPT_LAYERS) {
        return set_cam_value(s, o, v);
    }
    if (o->id >= OPT_INTENSITY) {
        return set_training_value(s, o, v);
    }
    unsigned long long n = 0;
    switch (o->id) {
    case OPT_MODEL: s->model = v; break;
    case OPT_IMAGE: s->image = v; break;
    case OPT_OUTPUT: s->output = v; break;
    case OPT_IMAGE_DIR: s->image_dir = v; break;
    case OPT_OUTPUT_DIR: s->output_dir = v; break;
    case OPT_BOXES: s->boxes = v; break;
    case OPT_CSV: s->csv = v; break;
    case OPT_LAYER: s->layer = v; break;
    case OPT_CLASS: s->class_name = v; break;
    case OPT_METHOD: return add_methods(s, v);
    case OPT_MAX_IMAGES:
        if (!parse_size(v, SIZE_MAX, &n) || n == 0) {
            return cli_usage_error(s->command, "invalid --max-images '%s'; expected a whole number >= 1", cli_name(v));
        }
        s->max_images = (size_t)n;
        break;
    case OPT_BATCH_SIZE:
        if (!parse_size(v, 1024, &n) || n == 0) {
            return cli_usage_error(s->command, "invalid --batch-size '%s'; expected a whole number from 1 to 1024", cli_name(v));
        }
        s->batch_size = (uint32_t)n;
        break;
    case OPT_THREADS:
        if (!parse_size(v, 1024, &n)) {
            return cli_usage_error(s->command, "invalid --threads '%s'; expected 0 (all CPUs) to 1024", cli_name(v));
        }
        s->threads = (int32_t)n;
        break;
    case OPT_IO_THREADS:
        if (!parse_size(v, 1, &n)) {
            return cli_usage_error(s->command, "invalid --io-threads '%s'; expected 0 (no overlap) or 1 (read and "
                                   "write beside the model)", cli_name(v));
        }
        s->io_threads = (uint32_t)n;
        break;
    case OPT_ALPHA:
        if (!parse_fraction(v, &s->alpha)) {
            return cli_usage_error(s->command, "invalid --alpha '%s'; expected a number from 0 to 1", cli_name(v));
        }
        break;
    case OPT_THRESHOLD:
        if (!parse_fraction(v, &s->threshold)) {
            return cli_usage_error(s->command, "invalid --threshold '%s'; expected a number from 0 to 1",
                                   cli_name(v));
        }
        break;
    case OPT_PANEL_HEIGHT:
        if (!parse_size(v, 8192, &n) || n < 16) {
            return cli_usage_error(s->command, "invalid --panel-height '%s'; expected a whole number of pixels "
                                   "from 16 to 8192", cli_name(v));
        }
        s->panel_height = (uint32_t)n;
        break;
    case OPT_METHODS:
        s->method_count = 0;
        return add_methods(s, v);
    case OPT_MAX_PIXELS:
        if (!parse_size(v, UINT64_MAX, &n) || n == 0) {
            return cli_usage_error(s->command, "invalid --max-pixels '%s'; expected a whole number >= 1",
                                   cli_name(v));
        }
        s->max_pixels = (uint64_t)n;
        break;
    case OPT_MAX_SIDE:
        if (!parse_size(v, 0x7fffffff, &n) || n == 0) {
            return cli_usage_error(s->command, "invalid --max-side '%s'; expected a whole number of pixels from "
                                   "1 to 2147483647", cli_name(v));
        }
        s->max_side = (uint32_t)n;
        break;
    case OPT_BATCH_MEMORY:
        if (!parse_bytes(v, &s->batch_memory)) {
            return cli_usage_error(s->command, "invalid --batch-memory '%s'; expected a size in bytes >= 1, "
                                   "optionally with K, M, G or T (binary units), e.g. 512M", cli_name(v));
        }
        break;
    case OPT_OUTPUT_KIND:
        if (strcmp(v, "auto") == 0) {
            s->output_kind = FX_OUTPUT_AUTO;
        } else if (strcmp(v, "logits") == 0) {
            s->output_kind = FX_OUTPUT_LOGITS;
        } else if (strcmp(v, "probabilities") == 0) {
            s->output_kind = FX_OUTPUT_PROBABILITIES;
        } else {
            return cli_usage_error(s->command, "invalid --output-kind '%s'; valid: auto, logits, probabilities",
                                   cli_name(v));
        }
        break;
    case OPT_FRAME:
        if (!parse_size(v, UINT32_MAX, &n)) {
            return cli_usage_error(s->command, "invalid --frame '%s'; expected a frame number >= 0 (0-based)",
                                   cli_name(v));
        }
        s->frame = (uint32_t)n;
        break;
    case OPT_SHARD: {
        char why[512];
        if (!cli_shard_parse(v, &s->shard_index, &s->shard_count, why, sizeof why)) {
            return cli_usage_error(s->command, "%s", why);
        }
        break;
    }
    case OPT_COLORMAP:
        if (fx_colormap_from_name(v, &s->colormap) != FX_OK) {
            char valid[512]; /* the library's table is the only list */
            return cli_usage_error(s->command, "unknown --colormap '%s'; valid colormaps: %s", cli_name(v),
                                   cli_colormap_names(valid, sizeof valid));
        }
        break;
    case OPT_DEVICE:
        if (!valid_device(v)) {
            return cli_usage_error(s->command, "unknown --device '%s'; valid devices: auto, cpu, cuda, cuda:N", cli_name(v));
        }
        s->device = v;
        break;
    default:
        return cli_usage_error(s->command, "internal error: option --%s has no value handler", o->name);
    }
    return CLI_EXIT_OK;
}

static void set_flag(cli_settings *s, int id)
{
    switch (id) {
    case OPT_HELP: s->help = true; break;
    case OPT_RECURSIVE: s->recursive = true; break;
    case OPT_RESUME: s->resume = true; break;
    case OPT_HEATMAP_ONLY: s->heatmap_only = true; break;
    case OPT_OVERLAY_ONLY: s->overlay_only = true; break;
    case OPT_FEATURE_MAPS: s->feature_maps = true; break;
    case OPT_STRICT: s->strict = true; break;
    case OPT_REPORT: s->report = true; break;
    case OPT_FAITHFULNESS: s->faithfulness = true; break;
    case OPT_AUG_SMOOTH: s->aug_smooth = true; break;
    case OPT_EIGEN_SMOOTH: s->eigen_smooth = true; break;
    default: break;
    }
}

static void settings_init(cli_settings *s, const char *command)
{
    memset(s, 0, sizeof *s);
    s->command = command;
    s->device = "auto";
    s->colormap = FX_COLORMAP_JET;
    s->alpha = 0.4f;
    s->batch_size = 8;
    s->batch_memory = (uint64_t)1 << 30;
    s->io_threads = 1;
}

/* Lists the command's options for an "unknown option" message. */
static void list_options(const cli_command *command, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (const int *o = command->options; *o >= 0 && used < size; o++) {
        int n = snprintf(buf + used, size - used, "%s--%s", used ? ", " : "", options[*o].name);
        if (n < 0) {
            break;
        }
        used += (size_t)n;
    }
}

/* Training options that another one given with them would leave unread are
 * refused, as Python's fxcam.Model refuses them (model.py _TrainingOptions).
 * What the model's fxcam.json decides is checked after the load
 * (cli_load_model). */
static int check_training_combinations(const cli_settings *s)
{
    const char *intensity = fx_intensity_name(s->intensity);
    bool window = s->window_width > 0.0f;
    if (s->bits && s->intensity != FX_INTENSITY_AUTO && s->intensity != FX_INTENSITY_BITS) {
        return cli_usage_error(s->command, "--bits %u applies to --intensity bits or auto, not --intensity %s "
                               "(which would ignore it); drop one of them", s->bits, intensity);
    }
    if (window && s->intensity != FX_INTENSITY_AUTO && s->intensity != FX_INTENSITY_WINDOW) {
        return cli_usage_error(s->command, "--window %g,%g applies to --intensity window (which --window alone "
                               "selects), not --intensity %s; drop one of them", (double)s->window_center,
                               (double)s->window_width, intensity);
    }
    if (window && s->bits) {
        return cli_usage_error(s->command, "give either --window or --bits, not both: a window reads the samples "
                               "in their own units and --bits would be ignored");
    }
    if (s->resize_size && s->resize_mode != FX_RESIZE_DEFAULT && s->resize_mode != FX_RESIZE_SHORTER_SIDE_CROP) {
        return cli_usage_error(s->command, "--resize-size %u applies to --resize-mode shorter-side-crop only, not "
                               "--resize-mode %s (which would ignore it); drop one of them", s->resize_size,
                               fx_resize_mode_name(s->resize_mode));
    }
    return CLI_EXIT_OK;
}

int cli_parse(const cli_command *command, int argc, char **argv, cli_settings *s)
{
    settings_init(s, command->name);
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0') {
            return cli_usage_error(command->name, "unexpected argument '%s' (every input is given with an "
                                   "option, e.g. --image PATH)", cli_name(arg));
        }
        const char *value = NULL;
        const cli_option *o = find_option(arg, &value);
        if (!o || !accepts(command, o->id)) {
            char valid[1024];
            list_options(command, valid, sizeof valid);
            return cli_usage_error(command->name, "%s option '%s'; valid options: %s",
                                   o ? "this command has no" : "unknown", cli_name(arg), valid);
        }
        if (!o->value) {
            if (value) {
                return cli_usage_error(command->name, "option --%s takes no value", o->name);
            }
            set_flag(s, o->id);
            continue;
        }
        if (!value) {
            if (i + 1 >= argc) {
                return cli_usage_error(command->name, "option --%s needs a value (%s)", o->name, o->value);
            }
            value = argv[++i];
        }
        if (value[0] == '\0') {
            return cli_usage_error(command->name, "option --%s needs a non-empty value (%s)", o->name, o->value);
        }
        int rc = set_value(s, o, value);
        if (rc != CLI_EXIT_OK) {
            return rc;
        }
    }
    if (s->heatmap_only && s->overlay_only) {
        return cli_usage_error(command->name, "--heatmap-only and --overlay-only exclude each other; give one");
    }
    return check_training_combinations(s);
}

/* ---- CAM refinements and method settings --------------------------------- */

/* --layers A,B: split into x->layers (names checked by the library). */
static int split_layer_list(const cli_settings *s, cli_cam_extras *x, uint32_t *count)
{
    x->layer_text = cli_strdup_printf("%s", s->layers);
    *count = 0;
    for (char *p = x->layer_text; p;) {
        char *comma = strchr(p, ',');
        if (comma) {
            *comma = '\0';
        }
        if (*p == '\0' || *count == FX_MAX_LAYERS_PER_CALL) {
            return cli_usage_error(s->command, "invalid --layers '%s'; expected 1 to %d layer names separated by "
                                   "commas, e.g. layer4,layer3 (see 'fxcam layers --feature-maps')",
                                   cli_name(s->layers), FX_MAX_LAYERS_PER_CALL);
        }
        x->layers[(*count)++] = p;
        p = comma ? comma + 1 : NULL;
    }
    return CLI_EXIT_OK;
}

/* One class of --class-weights: an index below the model's output count or
 * a class name (-1 when neither). */
static int32_t weight_class(const fx_model *model, const char *name, size_t len)
{
    uint32_t outputs = fx_model_class_count(model);
    char text[256];
    if (len == 0 || len >= sizeof text) {
        return -1;
    }
    memcpy(text, name, len);
    text[len] = '\0';
    unsigned long long n = 0;
    if (parse_size(text, outputs - 1, &n)) {
        return (int32_t)n;
    }
    for (uint32_t c = 0; c < outputs; c++) {
        const char *known = fx_model_class_name(model, outputs == 1 ? 1 : c); /* one logit: 'positive' */
        if (known && strcmp(known, text) == 0) {
            return (int32_t)c;
        }
    }
    return -1;
}

/* --class-weights: "NAME=W,K=W" pairs, or one plain weight per output. */
static int parse_class_weights(const cli_settings *s, const fx_model *model, cli_cam_extras *x, uint32_t *count)
{
    uint32_t outputs = fx_model_class_count(model);
    x->weights = calloc(outputs, sizeof *x->weights);
    if (!x->weights) {
        cli_error(s->command, "out of memory");
        return CLI_EXIT_FAILURE;
    }
    *count = outputs;
    const char *v = s->class_weights;
    if (!strchr(v, '=')) {
        uint32_t got = 0;
        float *all = calloc((size_t)outputs + 1, sizeof *all);
        bool ok = all && parse_floats(v, all, outputs + 1, &got) && got == outputs;
        if (ok) {
            memcpy(x->weights, all, outputs * sizeof *all);
        }
        free(all);
        if (!ok) {
            return cli_usage_error(s->command, "invalid --class-weights '%s'; expected %u weights (one per model "
                                   "output) or NAME=W pairs, e.g. %s=1", cli_name(v), outputs,
                                   fx_model_class_name(model, outputs == 1 ? 1 : 0));
        }
        return CLI_EXIT_OK;
    }
    bool *seen = calloc(outputs, sizeof *seen);
    if (!seen) {
        cli_error(s->command, "out of memory");
        return CLI_EXIT_FAILURE;
    }
    int rc = CLI_EXIT_OK;
    for (const char *p = v; *p && rc == CLI_EXIT_OK;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        int32_t c = eq ? weight_class(model, p, (size_t)(eq - p)) : -1;
        char number[64];
        size_t nlen = eq ? len - (size_t)(eq + 1 - p) : 0;
        float w = 0.0f;
        uint32_t got = 0;
        if (eq && nlen > 0 && nlen < sizeof number) {
            memcpy(number, eq + 1, nlen);
            number[nlen] = '\0';
        }
        if (c < 0 || !eq || nlen == 0 || nlen >= sizeof number || !parse_floats(number, &w, 1, &got) || got != 1) {
            char *valid = cli_class_list(model);
            rc = cli_usage_error(s->command, "invalid --class-weights entry '%.*s'; expected NAME=W or K=W with a "
                                 "class of the model and a number; this model's classes are %s%s", (int)len, p,
                                 cli_message(valid),
                                 outputs == 1 ? " (a single-logit model has one output: positive=W)" : "");
            free(valid);
        } else if (seen[c]) { /* a class named twice: which weight was meant cannot be known */
            rc = cli_usage_error(s->command, "invalid --class-weights '%s': class '%s' is given twice; give each "
                                 "class once", cli_name(v),
                                 cli_name(fx_model_class_name(model, outputs == 1 ? 1u : (uint32_t)c)));
        } else {
            seen[c] = true;
            x->weights[c] = w;
        }
        p += len + (end ? 1 : 0);
    }
    free(seen);
    return rc;
}

/* A method that needs only the forward activations (registry needs == 0:
 * Eigen-CAM) has no target score, so --class, --class-weights and
 * --target-classes cannot change its map: say so rather than let a caption
 * such as "Eigen-CAM of class fracture" suggest otherwise. */
static void warn_class_agnostic(const cli_settings *s)
{
    if (!s->class_name && !s->class_weights && !s->target_classes) {
        return;
    }
    for (uint32_t j = 0; j < s->method_count; j++) {
        const fx_cam_method_info *info = fx_cam_method_find(s->methods[j]);
        if (info && info->needs == 0) {
            fprintf(stderr, "fxcam: warning: %s is class-agnostic (it reads the forward activations alone, no "
                    "target score): %s does not change its map\n", info->title,
                    s->class_name ? "--class" : s->class_weights ? "--class-weights" : "--target-classes");
        }
    }
}

/* Guided methods give an input-space saliency, not a layer map: the library
 * refuses --aug-smooth and --layers with them (FX_ERR_UNSUPPORTED); saying so
 * here makes it a usage error in the CLI's words. */
static int refuse_input_space_refinements(const cli_settings *s)
{
    for (uint32_t j = 0; j < s->method_count; j++) {
        const fx_cam_method_info *info = fx_cam_method_find(s->methods[j]);
        if (info && (info->needs & FX_CAM_NEEDS_INPUT_GRADIENTS)) {
            return cli_usage_error(s->command, "%s does not apply to %s: its saliency is in input space, not a "
                                   "layer map; run it without %s, or the other methods in a separate run",
                                   s->aug_smooth ? "--aug-smooth" : "--layers", info->name,
                                   s->aug_smooth ? "--aug-smooth" : "--layers");
        }
    }
    return CLI_EXIT_OK;
}

int cli_cam_options(const cli_settings *s, const fx_model *model, cli_cam_extras *x, fx_gradcam_options *opts)
{
    memset(x, 0, sizeof *x);
    if (s->layer && strchr(s->layer, ',')) {
        return cli_usage_error(s->command, "--layer takes one layer; for several, give --layers %s", cli_name(s->layer));
    }
    if (s->layer && s->layers) {
        return cli_usage_error(s->command, "give --layer or --layers, not both");
    }
    int rc = CLI_EXIT_OK;
    if (s->layers) {
        uint32_t count = 0;
        rc = split_layer_list(s, x, &count);
        opts->layer = NULL;
        opts->layers = x->layers;
        opts->layer_count = count;
    }
    if (rc == CLI_EXIT_OK && s->class_weights) {
        if (s->class_name) {
            return cli_usage_error(s->command, "give --class or --class-weights, not both: the score is one class or "
                                   "a weighted sum of classes");
        }
        rc = parse_class_weights(s, model, x, &opts->class_weight_count);
        opts->class_weights = x->weights;
    }
    warn_class_agnostic(s);
    if (rc == CLI_EXIT_OK && (s->aug_smooth || s->layers)) {
        rc = refuse_input_space_refinements(s);
    }
    opts->aug_smooth = s->aug_smooth;
    opts->eigen_smooth = s->eigen_smooth;
    opts->smooth_samples = s->smooth_samples;
    opts->smooth_noise = s->smooth_noise;
    opts->channel_batch_size = s->channel_batch_size;
    return rc;
}

void cli_cam_options_free(cli_cam_extras *x)
{
    free(x->layer_text);
    free(x->weights);
    memset(x, 0, sizeof *x);
}
