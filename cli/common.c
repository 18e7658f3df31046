/* Helpers shared by the commands: model loading (file or embedded), class
 * resolution, writing figures, atomic text files, small text buffers. */
#include "annotations.h"
#include "lib/atomic_file.h"
#include "lib/dicom_sniff.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size);
    if (!q) {
        fputs("fxcam: error: out of memory\n", stderr);
        exit(CLI_EXIT_FAILURE);
    }
    return q;
}

char *cli_strdup_printf(const char *fmt, ...)
{
    if (!fmt) {
        /* never happens; tells GCC so under -fsanitize (-Wformat-truncation) */
        fmt = "";
    }
    va_list ap;
    char probe[1];
    va_start(ap, fmt);
    int n = vsnprintf(probe, sizeof probe, fmt, ap);
    va_end(ap);
    char *s = xrealloc(NULL, (size_t)(n < 0 ? 0 : n) + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap);
    va_end(ap);
    return s;
}

void cli_text_printf(cli_text *t, const char *fmt, ...)
{
    va_list ap;
    char probe[1];
    va_start(ap, fmt);
    int n = vsnprintf(probe, sizeof probe, fmt, ap);
    va_end(ap);
    if (n <= 0) {
        return;
    }
    if (t->size + (size_t)n + 1 > t->capacity) {
        size_t cap = t->capacity ? t->capacity : 256;
        while (cap < t->size + (size_t)n + 1) {
            cap *= 2;
        }
        t->data = xrealloc(t->data, cap);
        t->capacity = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->data + t->size, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->size += (size_t)n;
}

void cli_text_csv_field(cli_text *t, const char *field, bool last)
{
    const char *f = field ? field : "";
    if (strpbrk(f, ",\"\n\r")) {
        cli_text_printf(t, "\"");
        for (const char *p = f; *p; p++) {
            cli_text_printf(t, *p == '"' ? "\"\"" : "%c", *p);
        }
        cli_text_printf(t, "\"");
    } else {
        cli_text_printf(t, "%s", f);
    }
    cli_text_printf(t, last ? "\n" : ",");
}

void cli_text_free(cli_text *t)
{
    free(t->data);
    memset(t, 0, sizeof *t);
}

int cli_make_dirs(const char *dir)
{
    char *path = cli_strdup_printf("%s", dir);
    int rc = 0;
    for (char *p = path + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST) {
                rc = -1;
            }
            *p = saved;
            if (rc != 0 || saved == '\0') {
                break;
            }
        }
    }
    struct stat st;
    if (rc == 0 && (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))) {
        errno = ENOTDIR;
        rc = -1;
    }
    free(path);
    return rc;
}

bool cli_save_text(const char *command, const char *path, const cli_text *text)
{
    const char *step = NULL;
    int e = fx__atomic_write_file(path, text->data ? text->data : "", text->size, &step);
    if (e != 0) {
        cli_error(command, "cannot write '%s': %s failed: %s", cli_name(path), step, strerror(e));
        return false;
    }
    return true;
}

bool cli_is_png_name(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcasecmp(name + n - 4, ".png") == 0;
}

bool cli_is_image_name(const char *name)
{
    static const char *const extensions[] = {".png", ".jpg", ".jpeg", ".dcm", ".dicom"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof extensions / sizeof extensions[0]; i++) {
        size_t m = strlen(extensions[i]);
        if (n > m && strcasecmp(name + n - m, extensions[i]) == 0) {
            return true;
        }
    }
    return false;
}

cli_format cli_sniff_format(const char *path)
{
    /* The signatures of lib/image_load.c (the library keeps its detector
     * internal); DICOM Part 10: 128-byte preamble, then "DICM"; a bare DICOM
     * dataset by the rule of lib/dicom_sniff.h, shared with the library. */
    unsigned char head[132];
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        return CLI_FORMAT_UNREADABLE;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = S_ISREG(st.st_mode) ? errno : EINVAL; /* fstat failed, or not a regular file */
        close(fd);
        errno = e;
        return CLI_FORMAT_UNREADABLE;
    }
    size_t got = 0;
    while (got < sizeof head) {
        ssize_t r = read(fd, head + got, sizeof head - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return CLI_FORMAT_UNREADABLE;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (got >= 8 && memcmp(head, "\x89PNG\r\n\x1a\n", 8) == 0) {
        return CLI_FORMAT_PNG;
    }
    if (got >= 3 && head[0] == 0xff && head[1] == 0xd8 && head[2] == 0xff) {
        return CLI_FORMAT_JPEG;
    }
    if ((got >= 132 && memcmp(head + 128, "DICM", 4) == 0) || fx__dicom_bare_dataset_detect(head, got)) {
        return CLI_FORMAT_DICOM;
    }
    return CLI_FORMAT_UNKNOWN;
}

/* Length of the valid UTF-8 sequence at p that encodes a printable code point
 * (not C0, DEL or C1), or 0. */
static size_t printable_utf8(const unsigned char *p)
{
    if (p[0] >= 0x20 && p[0] < 0x7f) {
        return 1;
    }
    size_t len = p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : p[0] >= 0xe0 && p[0] <= 0xef ? 3
               : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;
    uint32_t cp = len == 2 ? p[0] & 0x1fu : len == 3 ? p[0] & 0x0fu : p[0] & 0x07u;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = cp << 6 | (p[i] & 0x3fu);
    }
    bool overlong = (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff));
    bool surrogate = cp >= 0xd800 && cp <= 0xdfff;
    bool c1 = cp >= 0x80 && cp <= 0x9f;
    return len == 0 || overlong || surrogate || c1 ? 0 : len;
}

static const char *escape(const char *text, bool keep_lines)
{
    enum { SLOTS = 8, SIZE = 1024 };
    /* per thread: fxcam batch writes figures on a thread of its own (pipeline.c) */
    static _Thread_local char slots[SLOTS][SIZE];
    static _Thread_local unsigned next;
    char *out = slots[next++ % SLOTS];
    size_t used = 0;
    const unsigned char *p = (const unsigned char *)(text ? text : "(null)");
    while (*p) {
        char piece[8];
        size_t len = printable_utf8(p), n;
        if (*p == '\\') {
            n = (size_t)snprintf(piece, sizeof piece, "\\\\");
            len = 1;
        } else if (len > 0 || (keep_lines && (*p == '\n' || *p == '\t'))) {
            len = len ? len : 1;
            memcpy(piece, p, len);
            n = len;
        } else {
            n = (size_t)snprintf(piece, sizeof piece, "\\x%02x", *p);
            len = 1;
        }
        if (used + n + 4 > SIZE) {
            memcpy(out + used, "...", 3);
            used += 3;
            break;
        }
        memcpy(out + used, piece, n);
        used += n;
        p += len;
    }
    out[used] = '\0';
    return out;
}

const char *cli_name(const char *text)
{
    return escape(text, false);
}

const char *cli_message(const char *text)
{
    return escape(text, true);
}

/* Replaces the first `from` in text by the shorter `to`, in place. */
static void replace_first(char *text, const char *from, const char *to)
{
    char *at = strstr(text, from);
    size_t n = strlen(from), m = strlen(to);
    if (at && m <= n) {
        memcpy(at, to, m);
        memmove(at + m, at + n, strlen(at + n) + 1);
    }
}

fx_status cli_load_image(const cli_settings *s, const char *path, fx_image *out, const char **why)
{
    return cli_load_image_info(s, path, out, NULL, why);
}

fx_status cli_load_image_info(const cli_settings *s, const char *path, fx_image *out, fx_image_info *info,
                              const char **why)
{
    static _Thread_local char reason[2048]; /* batch reads on a thread of its own */
    fx_load_options limits;
    fx_load_options_init(&limits);
    if (s->max_pixels) {
        limits.max_pixels = s->max_pixels;
    }
    if (s->max_side) {
        limits.max_width = limits.max_height = s->max_side;
    }
    /* --frame picks a frame of DICOM inputs. batch reads folders that mix
     * formats, so there it applies to DICOM files only; for one named image
     * the library refuses a frame a PNG or JPEG does not have. */
    bool folder = strcmp(s->command, "batch") == 0 || strcmp(s->command, "evaluate") == 0;
    if (s->frame && (!folder || cli_sniff_format(path) == CLI_FORMAT_DICOM)) {
        limits.frame = s->frame;
    }
    if (info) {
        memset(info, 0, sizeof *info);
        info->struct_size = sizeof *info;
        limits.info = info;
    }
    fx_status status = fx_image_load(path, &limits, out);
    if (status == FX_OK) {
        *why = NULL;
        return status;
    }
    snprintf(reason, sizeof reason, "%s", fx_last_error());
    /* The library's advice names its C struct; a shell user has options. */
    char *advice = strstr(reason, " (raise fx_load_options.");
    if (status == FX_ERR_LIMIT && advice) {
        bool pixels = strncmp(advice, " (raise fx_load_options.max_pixels", 34) == 0;
        snprintf(advice, sizeof reason - (size_t)(advice - reason), " (raise it with %s)",
                 pixels ? "--max-pixels N" : "--max-side PX");
    }
    replace_first(reason, "fx_load_options.frame", "--frame");
    *why = reason;
    return status;
}

void cli_warn_model(const fx_model *model)
{
    for (size_t i = 0; i < fx_model_warning_count(model); i++) {
        fprintf(stderr, "fxcam: warning: %s\n", cli_message(fx_model_warning(model, i, NULL)));
    }
}

void cli_warn_result(const fx_result *result, int64_t image, const char *name, cli_progress *progress)
{
    for (size_t i = 0; i < fx_result_warning_count(result); i++) {
        int64_t about = -1;
        const char *msg = fx_result_warning(result, i, NULL, &about);
        bool all = image == CLI_ALL_IMAGES;
        if (!msg || (!all && about != image)) {
            continue;
        }
        if (progress) {
            cli_progress_note(progress, "fxcam: warning: %s%s%s", name ? cli_name(name) : "", name ? ": " : "",
                              cli_message(msg));
        } else {
            fprintf(stderr, "fxcam: warning: %s%s%s\n", name ? cli_name(name) : "", name ? ": " : "",
                    cli_message(msg));
        }
    }
}

/* --class-names a,b,c cut into names (pointers into text, which holds a copy). */
static uint32_t split_class_names(const char *given, char *text, size_t size, const char **names, uint32_t max)
{
    uint32_t n = 0;
    snprintf(text, size, "%s", given ? given : "");
    for (char *p = text; given && *p && n < max;) {
        names[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma) {
            break;
        }
        *comma = '\0';
        p = comma + 1;
    }
    return n;
}

/* How the model was trained, from the command line (0 = fxcam.json's). */
static void training_options(const cli_settings *s, fx_model_options *opts)
{
    opts->intensity = s->intensity;
    opts->bits_stored = s->bits;
    opts->window_center = s->window_center;
    opts->window_width = s->window_width;
    opts->resize_mode = s->resize_mode;
    opts->resize_size = s->resize_size;
    opts->input_width = s->input_width;
    opts->input_height = s->input_height;
    opts->input_channels = s->channels;
    if (s->mean_count) {
        opts->mean = s->mean;
        opts->mean_count = s->mean_count;
    }
    if (s->std_count) {
        opts->std = s->std;
        opts->std_count = s->std_count;
    }
}

/* The training options that the loaded model's own choices (fxcam.json)
 * would leave unread are refused, as fxcam.Model does after its load
 * (python/fxcam/model.py); cli_parse refuses the combinations on the command
 * line itself. On refusal the model is released and *model set to NULL. */
static int check_loaded_training(const cli_settings *s, fx_model **model)
{
    int32_t resize_mode = fx_model_resize_mode(*model, NULL);
    fx_intensity rule;
    fx_intensity_init(&rule);
    fx_status status = fx_model_intensity(*model, &rule);
    int rc = CLI_EXIT_OK;
    if (s->resize_size && resize_mode != FX_RESIZE_SHORTER_SIDE_CROP) {
        rc = cli_usage_error(s->command, "--resize-size %u applies to --resize-mode shorter-side-crop only; this "
                             "model resizes by '%s' (its fxcam.json or the default): add --resize-mode "
                             "shorter-side-crop or drop --resize-size", s->resize_size,
                             fx_resize_mode_name(resize_mode));
    } else if (s->bits && status == FX_OK && rule.mode != FX_INTENSITY_AUTO && rule.mode != FX_INTENSITY_BITS) {
        rc = cli_usage_error(s->command, "--bits %u applies to intensity bits or auto; this model's fxcam.json "
                             "says '%s', which would ignore it: add --intensity bits or drop --bits", s->bits,
                             fx_intensity_name(rule.mode));
    }
    if (rc != CLI_EXIT_OK) {
        fx_model_free(*model);
        *model = NULL;
    }
    return rc;
}

int cli_load_model(const cli_settings *s, fx_model **out)
{
    fx_model_options opts;
    fx_model_options_init(&opts);
    opts.device = s->device;
    opts.threads = s->threads;
    opts.output_kind = s->output_kind;
    opts.strict = s->strict ? 1 : 0;
    training_options(s, &opts);
    char class_text[256 * 256];
    const char *class_names[256];
    uint32_t class_count = split_class_names(s->class_names, class_text, sizeof class_text, class_names, 256);
    if (class_count) {
        opts.class_names = class_names;
        opts.class_name_count = class_count;
    }
    if (s->model) {
        struct stat st;
        if (stat(s->model, &st) != 0) {
            cli_error(s->command, "cannot open the model '%s': %s", cli_name(s->model), strerror(errno));
            return CLI_EXIT_FAILURE;
        }
        if (S_ISDIR(st.st_mode)) {
            cli_error(s->command, "the model '%s' is a directory; give the TorchScript .pt file (a saved "
                      "torch.jit archive), e.g. --model %s/model.pt", cli_name(s->model), cli_name(s->model));
            return CLI_EXIT_FAILURE;
        }
        if (!S_ISREG(st.st_mode)) {
            cli_error(s->command, "the model '%s' is not a regular file; give the TorchScript .pt file",
                      cli_name(s->model));
            return CLI_EXIT_FAILURE;
        }
        fx_status status = fx_model_load(s->model, &opts, out);
        if (status != FX_OK) {
            cli_error(s->command, "cannot load the model '%s': %s", cli_name(s->model), cli_message(fx_last_error()));
            return CLI_EXIT_FAILURE;
        }
        cli_warn_model(*out);
        return check_loaded_training(s, out);
    }
    const cli_asset *asset = cli_embedded_model();
    if (!asset) {
        cli_error(s->command, "this fxcam was built without an embedded model; give one with --model PATH");
        return CLI_EXIT_USAGE;
    }
    fx_status status = fx_model_load_memory(asset->data, asset->size, &opts, out);
    if (status != FX_OK) {
        cli_error(s->command, "cannot load the embedded model %s: %s", asset->name,
                  cli_message(fx_last_error()[0] ? fx_last_error() : strerror(errno)));
        return CLI_EXIT_FAILURE;
    }
    cli_warn_model(*out);
    return check_loaded_training(s, out);
}

static bool same_name(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) {
            return false;
        }
    }
    return *a == *b;
}

const char *cli_target_name(const fx_model *model, int32_t target)
{
    const char *name = target >= 0 ? fx_model_class_name(model, (uint32_t)target) : NULL;
    return name ? name : target < 0 ? "weighted classes" : "unknown class";
}

void cli_append_refinements(const cli_settings *s, char *buf, size_t size)
{
    size_t n = strlen(buf);
    if (s->aug_smooth && n < size) {
        n += (size_t)snprintf(buf + n, size - n, ", aug-smooth");
    }
    if (s->eigen_smooth && n < size) {
        n += (size_t)snprintf(buf + n, size - n, ", eigen-smooth");
    }
    if (s->layers && n < size) {
        snprintf(buf + n, size - n, ", layers averaged");
    }
}

bool cli_class_from_text(const fx_model *model, const char *text, int32_t *target)
{
    uint32_t count = fx_model_result_class_count(model);
    bool digits = *text != '\0';
    for (const char *p = text; *p; p++) {
        digits = digits && isdigit((unsigned char)*p);
    }
    if (digits && strlen(text) < 9 && (uint32_t)atoi(text) < count) {
        *target = atoi(text);
        return true;
    }
    for (uint32_t i = 0; i < count; i++) {
        if (same_name(text, fx_model_class_name(model, i))) {
            *target = (int32_t)i;
            return true;
        }
    }
    return false;
}

char *cli_class_list(const fx_model *model)
{
    uint32_t count = fx_model_result_class_count(model);
    cli_text valid = {0};
    for (uint32_t i = 0; i < count; i++) {
        cli_text_printf(&valid, "%s%u (%s)", i ? ", " : "", i, fx_model_class_name(model, i));
    }
    return valid.data ? valid.data : cli_strdup_printf("none");
}

int cli_resolve_class(const cli_settings *s, const fx_model *model, int32_t *target)
{
    *target = -1;
    if (!s->class_name || cli_class_from_text(model, s->class_name, target)) {
        return CLI_EXIT_OK;
    }
    char *valid = cli_class_list(model);
    cli_usage_error(s->command, "unknown --class '%s'; this model's classes are %s", cli_name(s->class_name),
                    cli_message(valid));
    free(valid);
    return CLI_EXIT_USAGE;
}

int cli_compute_failed(const char *command, fx_status status)
{
    if (status == FX_ERR_CANCELLED) { /* only the Ctrl-C callback cancels (progress_methods.c) */
        return cli_cancelled(command);
    }
    cli_error(command, "%s", cli_message(fx_last_error()[0] ? fx_last_error() : fx_status_str(status)));
    if (status == FX_ERR_LAYER) {
        /* The library's message names the C API; a shell user wants the command. */
        fprintf(stderr, "Run 'fxcam layers --feature-maps' to list the layers that can be targets.\n");
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_FAILURE;
}

void cli_heatmap_peak(const fx_image *heatmap, uint32_t *px, uint32_t *py)
{
    float best = -1.0f;
    *px = 0;
    *py = 0;
    for (uint32_t y = 0; y < heatmap->height; y++) {
        const float *row = (const float *)((const uint8_t *)heatmap->data + (size_t)y * heatmap->stride);
        for (uint32_t x = 0; x < heatmap->width; x++) {
            if (row[x] > best) {
                best = row[x];
                *px = x;
                *py = y;
            }
        }
    }
}

const char *cli_model_name(const cli_settings *s)
{
    if (s->model) {
        const char *slash = strrchr(s->model, '/');
        return slash && slash[1] ? slash + 1 : s->model;
    }
    const cli_asset *embedded = cli_embedded_model();
    return embedded ? embedded->name : "embedded model";
}

/* The figures' time from SOURCE_DATE_EPOCH (seconds since 1970, the
 * reproducible-builds convention), so that two runs can give byte-identical
 * figures; NULL (the current time) when it is not set. A value that is not a
 * whole number of seconds is reported, not guessed at. */
static const char *fixed_figure_time(void)
{
    static _Thread_local char stamp[32];
    const char *epoch = getenv("SOURCE_DATE_EPOCH");
    if (!epoch || !epoch[0]) {
        return NULL;
    }
    char *end = NULL;
    errno = 0;
    long long seconds = strtoll(epoch, &end, 10);
    time_t t = (time_t)seconds;
    struct tm tm;
    if (errno || *end || seconds < 0 || !gmtime_r(&t, &tm) ||
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        fprintf(stderr, "fxcam: warning: SOURCE_DATE_EPOCH '%s' is not a whole number of seconds since 1970; "
                        "figures show the current time\n", cli_name(epoch));
        return NULL;
    }
    return stamp;
}

void cli_figure_options(const cli_settings *s, fx_figure_options *f)
{
    fx_figure_options_init(f);
    f->timestamp = fixed_figure_time();
    f->alpha = s->alpha;
    f->colormap = s->colormap;
    f->threshold = s->threshold;
    f->panel_height = s->panel_height;
}

void cli_source(const cli_settings *s, const char *input, char *buf, size_t size)
{
    const char *slash = input ? strrchr(input, '/') : NULL;
    const char *base = slash ? slash + 1 : input;
    if (base) {
        snprintf(buf, size, "%s | model %s", cli_name(base), cli_name(cli_model_name(s)));
    } else {
        snprintf(buf, size, "model %s", cli_name(cli_model_name(s)));
    }
}

fx_status cli_display_image(const fx_image *image, const cli_annotation *boxes, fx_image *rgb)
{
    fx_status status = fx_image_to_rgb8(image, rgb);
    if (status == FX_OK && boxes) {
        cli_draw_boxes(boxes, rgb, 0, 220, 0);
    }
    return status;
}

static fx_status write_output_view(const cli_settings *s, const fx_model *model, const fx_image *image,
                                   const fx_result *result, size_t i, uint32_t j, const char *path,
                                   const char *input, const cli_annotation *boxes);

fx_status cli_model_view(const fx_model *model, const fx_image *image, const fx_image_info *info, fx_image *rgb)
{
    fx_intensity rule;
    fx_intensity_init(&rule);
    fx_status status = fx_model_intensity(model, &rule);
    return status == FX_OK ? fx_image_to_rgb8_intensity(image, &rule, info, rgb) : status;
}

fx_status cli_write_output(const cli_settings *s, const fx_model *model, const fx_image *image,
                           const fx_result *result, size_t i, uint32_t j, const char *path, const char *input,
                           const cli_annotation *boxes)
{
    return cli_write_output_info(s, model, image, NULL, result, i, j, path, input, boxes);
}

/* The figure shows the image through the model's intensity rule, so that a
 * 12-bit radiograph looks as the model read it (and like its 8-bit twin). */
fx_status cli_write_output_info(const cli_settings *s, const fx_model *model, const fx_image *image,
                                const fx_image_info *info, const fx_result *result, size_t i, uint32_t j,
                                const char *path, const char *input, const cli_annotation *boxes)
{
    fx_image view = {0};
    fx_status viewed = cli_model_view(model, image, info, &view);
    if (viewed != FX_OK) {
        return viewed;
    }
    fx_status status = write_output_view(s, model, &view, result, i, j, path, input, boxes);
    fx_image_free(&view);
    return status;
}

/* image: already as the model sees it (cli_model_view). */
static fx_status write_output_view(const cli_settings *s, const fx_model *model, const fx_image *image,
                                   const fx_result *result, size_t i, uint32_t j, const char *path,
                                   const char *input, const cli_annotation *boxes)
{
    const fx_image *heatmap = fx_result_heatmap(result, i, j);
    if (!heatmap) {
        return FX_ERR_INTERNAL;
    }
    fx_image shown = {0}, out = {0};
    fx_status status = FX_OK;
    /* Guided methods' own picture: the input-space saliency (fx_result_saliency). */
    const fx_image *saliency = fx_result_saliency(result, i, j);
    if (s->heatmap_only && saliency) {
        status = fx_image_to_rgb8(saliency, &out);
    } else if (s->heatmap_only) {
        status = fx_colormap_apply(heatmap, s->colormap, &out);
    } else if (s->overlay_only) {
        fx_overlay_options o;
        fx_overlay_options_init(&o);
        o.alpha = s->alpha;
        o.colormap = s->colormap;
        o.threshold = s->threshold;
        status = fx_overlay(image, heatmap, &o, &out);
    } else {
        /* In a figure the boxes are part of the image, in every panel. */
        if (boxes) {
            status = cli_display_image(image, boxes, &shown);
            image = &shown;
        }
        int32_t predicted = fx_result_predicted_class(result, i);
        int32_t target = fx_result_target_class(result, i);
        char method[160], source[400];
        if (target != predicted) {
            snprintf(method, sizeof method, "%s of %s%s", cli_method_title(fx_result_method(result, j)),
                     target >= 0 ? "class " : "", cli_target_name(model, target));
        } else {
            snprintf(method, sizeof method, "%s", cli_method_title(fx_result_method(result, j)));
        }
        cli_append_refinements(s, method, sizeof method);
        cli_source(s, input, source, sizeof source);
        fx_figure_options f;
        cli_figure_options(s, &f);
        f.label = fx_model_class_name(model, (uint32_t)predicted);
        f.confidence = fx_result_confidence(result, i);
        f.method = method;
        f.source = source;
        /* Guided Backpropagation reads no layer: no "Layer:" in its caption. */
        const fx_cam_method_info *info = fx_cam_method_find(fx_result_method(result, j));
        f.layer = info && info->needs == FX_CAM_NEEDS_INPUT_GRADIENTS ? NULL : fx_result_layer(result);
        f.saliency = saliency;
        if (status == FX_OK) {
            status = fx_figure_compose(image, heatmap, &f, &out);
        }
        boxes = NULL;
    }
    /* A single heatmap or overlay image: the outlines on top, unblended. */
    if (status == FX_OK && boxes) {
        cli_draw_boxes(boxes, &out, 0, 220, 0);
    }
    fx_image_free(&shown);
    if (status == FX_OK) {
        status = fx_image_save(path, &out, NULL);
    }
    fx_image_free(&out);
    return status;
}
