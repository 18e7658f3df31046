/* Helpers shared by the commands: model loading (file or embedded), class
 * resolution, writing figures, atomic text files, small text buffers. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
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

/* Same scheme as fx_image_save(): a temporary name next to the target, renamed
 * over it once complete, so a reader never sees half a file. */
int cli_write_file_atomic(const char *path, const char *text, size_t size)
{
    char *temp = cli_strdup_printf("%s.%ld.tmp", path, (long)getpid());
    int fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) {
        free(temp);
        return -1;
    }
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, text + done, size - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        done += (size_t)n;
    }
    int saved_errno = errno;
    bool ok = done == size && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (ok && rename(temp, path) == 0) {
        free(temp);
        return 0;
    }
    saved_errno = errno ? errno : saved_errno;
    unlink(temp);
    free(temp);
    errno = saved_errno;
    return -1;
}

const char *cli_method_title(int32_t method)
{
    switch (method) {
    case FX_CAM_GRADCAM: return "Grad-CAM";
    case FX_CAM_GRADCAM_PLUSPLUS: return "Grad-CAM++";
    case FX_CAM_HIRESCAM: return "HiResCAM";
    case FX_CAM_XGRADCAM: return "XGrad-CAM";
    case FX_CAM_LAYERCAM: return "LayerCAM";
    default: return "CAM";
    }
}

const char *cli_method_slug(int32_t method)
{
    return method == FX_CAM_GRADCAM_PLUSPLUS ? "gradcampp" : fx_cam_method_name(method);
}

int cli_load_model(const cli_settings *s, fx_model **out)
{
    fx_model_options opts;
    fx_model_options_init(&opts);
    opts.device = s->device;
    opts.threads = s->threads;
    if (s->model) {
        struct stat st;
        if (stat(s->model, &st) != 0) {
            cli_error(s->command, "cannot open the model '%s': %s", s->model, strerror(errno));
            return CLI_EXIT_FAILURE;
        }
        fx_status status = fx_model_load(s->model, &opts, out);
        if (status != FX_OK) {
            cli_error(s->command, "cannot load the model '%s': %s", s->model, fx_last_error());
            return CLI_EXIT_FAILURE;
        }
        return CLI_EXIT_OK;
    }
    const cli_asset *asset = cli_embedded_model();
    if (!asset) {
        cli_error(s->command, "this fxcam was built without an embedded model; give one with --model PATH");
        return CLI_EXIT_USAGE;
    }
    fx_status status = fx_model_load_memory(asset->data, asset->size, &opts, out);
    if (status != FX_OK) {
        cli_error(s->command, "cannot load the embedded model %s: %s", asset->name,
                  fx_last_error()[0] ? fx_last_error() : strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
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

int cli_resolve_class(const cli_settings *s, const fx_model *model, int32_t *target)
{
    *target = -1;
    if (!s->class_name) {
        return CLI_EXIT_OK;
    }
    uint32_t count = fx_model_result_class_count(model);
    const char *c = s->class_name;
    bool digits = *c != '\0';
    for (const char *p = c; *p; p++) {
        digits = digits && isdigit((unsigned char)*p);
    }
    if (digits && strlen(c) < 9 && (uint32_t)atoi(c) < count) {
        *target = atoi(c);
        return CLI_EXIT_OK;
    }
    for (uint32_t i = 0; i < count; i++) {
        if (same_name(c, fx_model_class_name(model, i))) {
            *target = (int32_t)i;
            return CLI_EXIT_OK;
        }
    }
    cli_text valid = {0};
    for (uint32_t i = 0; i < count; i++) {
        cli_text_printf(&valid, "%s%u (%s)", i ? ", " : "", i, fx_model_class_name(model, i));
    }
    cli_usage_error(s->command, "unknown --class '%s'; this model's classes are %s", c,
                    valid.data ? valid.data : "none");
    cli_text_free(&valid);
    return CLI_EXIT_USAGE;
}

int cli_compute_failed(const char *command, fx_status status)
{
    cli_error(command, "%s", fx_last_error()[0] ? fx_last_error() : fx_status_str(status));
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

fx_status cli_write_output(const cli_settings *s, const fx_model *model, const fx_image *image,
                           const fx_result *result, size_t i, uint32_t j, const char *path)
{
    const fx_image *heatmap = fx_result_heatmap(result, i, j);
    if (!heatmap) {
        return FX_ERR_INTERNAL;
    }
    fx_image out = {0};
    fx_status status;
    if (s->heatmap_only) {
        status = fx_colormap_apply(heatmap, s->colormap, &out);
    } else if (s->overlay_only) {
        fx_overlay_options o;
        fx_overlay_options_init(&o);
        o.alpha = s->alpha;
        o.colormap = s->colormap;
        status = fx_overlay(image, heatmap, &o, &out);
    } else {
        int32_t predicted = fx_result_predicted_class(result, i);
        int32_t target = fx_result_target_class(result, i);
        char method[160];
        if (target != predicted) {
            snprintf(method, sizeof method, "%s of class %s", cli_method_title(fx_result_method(result, j)),
                     fx_model_class_name(model, (uint32_t)target));
        } else {
            snprintf(method, sizeof method, "%s", cli_method_title(fx_result_method(result, j)));
        }
        fx_figure_options f;
        fx_figure_options_init(&f);
        f.label = fx_model_class_name(model, (uint32_t)predicted);
        f.confidence = fx_result_confidence(result, i);
        f.method = method;
        f.layer = fx_result_layer(result);
        f.alpha = s->alpha;
        f.colormap = s->colormap;
        status = fx_figure_compose(image, heatmap, &f, &out);
    }
    if (status == FX_OK) {
        status = fx_image_save(path, &out, NULL);
    }
    fx_image_free(&out);
    return status;
}
