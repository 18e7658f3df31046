/* The one-image and model-inspection commands: single, compare, layers, info. */
#include "annotations.h"

#include <errno.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* "<dir>/wrist.png" -> "wrist<suffix>.png" in the current directory. */
static char *default_output(const char *image, const char *suffix)
{
    const char *base = strrchr(image, '/');
    base = base ? base + 1 : image;
    size_t len = strlen(base);
    if (len > 4 && strcasecmp(base + len - 4, ".png") == 0) {
        len -= 4;
    }
    return cli_strdup_printf("%.*s%s.png", (int)len, base, suffix);
}

static const char *output_kind_suffix(const cli_settings *s)
{
    return s->heatmap_only ? "_heatmap" : s->overlay_only ? "_overlay" : "";
}

static int load_image(const cli_settings *s, fx_image *image, fx_image_info *info)
{
    const char *why = NULL;
    if (cli_load_image_info(s, s->image, image, info, &why) != FX_OK) {
        cli_error(s->command, "cannot read the image '%s': %s", cli_name(s->image), cli_message(why));
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

/* What can be checked before the model loads: the output name asks for PNG
 * (the only format written), the boxes file reads. */
static int check_output_and_boxes(const cli_settings *s, cli_annotations *boxes)
{
    if (!s->image) {
        return cli_usage_error(s->command, "no input image; give one with --image PATH");
    }
    if (s->output && !cli_is_png_name(s->output)) {
        return cli_usage_error(s->command, "--output '%s': fxcam writes PNG files only; give a name ending in "
                               ".png", cli_name(s->output));
    }
    if (s->boxes && !cli_annotations_load(s->command, s->boxes, boxes)) {
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

/* Creates the output's folder when missing (as batch does). */
static int make_output_folder(const cli_settings *s, const char *output)
{
    const char *slash = strrchr(output, '/');
    if (!slash || slash == output) {
        return CLI_EXIT_OK;
    }
    char *dir = cli_strdup_printf("%.*s", (int)(slash - output), output);
    int rc = CLI_EXIT_OK;
    if (cli_make_dirs(dir) != 0) {
        cli_error(s->command, "cannot create the output folder '%s': %s", cli_name(dir), strerror(errno));
        rc = CLI_EXIT_FAILURE;
    }
    free(dir);
    return rc;
}

/* One message for a failed write: the library's save message names the file
 * already; a failed composition gets the file named here. */
static void report_write_failure(const cli_settings *s, const char *output, bool saving)
{
    if (saving) {
        cli_error(s->command, "%s", cli_message(fx_last_error()));
    } else {
        cli_error(s->command, "cannot draw the figure for '%s': %s", cli_name(output), cli_message(fx_last_error()));
    }
}

/* Loads model and image and computes the requested methods for one image. */
static int compute_one(const cli_settings *s, const int32_t *methods, uint32_t method_count, fx_model **model,
                       fx_image *image, fx_image_info *info, fx_result **result)
{
    int rc = cli_load_model(s, model);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    fx_gradcam_options opts;
    fx_gradcam_options_init(&opts);
    opts.layer = s->layer;
    opts.methods = methods;
    opts.method_count = method_count;
    opts.image_info = info; /* the bits the file holds: the intensity rule reads them */
    cli_cam_extras extras = {0};
    rc = cli_resolve_class(s, *model, &opts.target_class);
    if (rc == CLI_EXIT_OK) {
        rc = cli_cam_options(s, *model, &extras, &opts); /* --layers, --aug-smooth, ... */
    }
    if (rc == CLI_EXIT_OK) {
        rc = load_image(s, image, info);
    }
    if (rc == CLI_EXIT_OK) {
        /* Score-CAM, Ablation-CAM: an estimate, a bar, and Ctrl-C cancels. */
        cli_channel_progress progress;
        bool slow = cli_methods_need_channel_forwards(methods, method_count);
        if (slow) {
            cli_channel_progress_init(&progress, s, *model, methods, method_count, true, &opts);
            cli_channel_progress_begin();
        }
        fx_status status = fx_gradcam_compute(*model, image, 1, &opts, result);
        if (slow) {
            cli_channel_progress_end(&progress);
        }
        if (status != FX_OK) {
            rc = cli_compute_failed(s->command, status);
        } else {
            cli_warn_result(*result, CLI_ALL_IMAGES, NULL, NULL);
        }
    }
    cli_cam_options_free(&extras);
    if (rc != CLI_EXIT_OK) {
        fx_image_free(image);
        fx_model_free(*model);
        *model = NULL;
    }
    return rc;
}

int cli_run_single(const cli_settings *s)
{
    if (s->method_count > 1) {
        return cli_usage_error(s->command, "give one --method (to see two side by side, use 'fxcam compare')");
    }
    cli_annotations boxes = {0};
    int rc = check_output_and_boxes(s, &boxes);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    int32_t method = s->method_count ? s->methods[0] : FX_CAM_GRADCAM;
    fx_model *model = NULL;
    fx_image image = {0};
    fx_image_info info;
    fx_result *result = NULL;
    rc = compute_one(s, &method, 1, &model, &image, &info, &result);
    if (rc != CLI_EXIT_OK) {
        cli_annotations_free(&boxes);
        return rc;
    }
    char *suffix = cli_strdup_printf("_%s%s", cli_method_slug(method), output_kind_suffix(s));
    char *output = s->output ? cli_strdup_printf("%s", s->output) : default_output(s->image, suffix);
    rc = make_output_folder(s, output);
    if (rc == CLI_EXIT_OK) {
        const cli_annotation *a = s->boxes ? cli_annotations_lookup(&boxes, s->image) : NULL;
        if (s->boxes && !a) {
            fprintf(stderr, "fxcam single: note: '%s' has no row in '%s'; no boxes drawn\n", cli_name(s->image),
                    cli_name(s->boxes));
        }
        fx_status status = cli_write_output_info(s, model, &image, &info, result, 0, 0, output, s->image, a);
        if (status != FX_OK) {
            report_write_failure(s, output, status == FX_ERR_IO);
            rc = CLI_EXIT_FAILURE;
        } else {
            int32_t predicted = fx_result_predicted_class(result, 0);
            printf("%s (%.1f%%)  ->  %s\n", fx_model_class_name(model, (uint32_t)predicted),
                   100.0 * fx_result_confidence(result, 0), cli_name(output));
        }
    }
    free(suffix);
    free(output);
    cli_annotations_free(&boxes);
    fx_result_free(result);
    fx_image_free(&image);
    fx_model_free(model);
    return rc;
}

static float max_difference(const fx_image *a, const fx_image *b)
{
    float best = 0.0f;
    for (uint32_t y = 0; y < a->height; y++) {
        const float *ra = (const float *)((const uint8_t *)a->data + (size_t)y * a->stride);
        const float *rb = (const float *)((const uint8_t *)b->data + (size_t)y * b->stride);
        for (uint32_t x = 0; x < a->width; x++) {
            best = fmaxf(best, fabsf(ra[x] - rb[x]));
        }
    }
    return best;
}

int cli_run_compare(const cli_settings *s)
{
    int32_t methods[2] = {FX_CAM_GRADCAM, FX_CAM_GRADCAM_PLUSPLUS};
    if (s->method_count != 0 && s->method_count != 2) {
        return cli_usage_error(s->command, "--methods needs two different methods, e.g. --methods "
                               "gradcam,hirescam");
    }
    if (s->method_count == 2) {
        methods[0] = s->methods[0];
        methods[1] = s->methods[1];
    }
    cli_annotations boxes = {0};
    int rc = check_output_and_boxes(s, &boxes);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    fx_model *model = NULL;
    fx_image image = {0};
    fx_image_info info;
    fx_result *result = NULL;
    rc = compute_one(s, methods, 2, &model, &image, &info, &result);
    if (rc != CLI_EXIT_OK) {
        cli_annotations_free(&boxes);
        return rc;
    }
    const char *title_a = cli_method_title(methods[0]), *title_b = cli_method_title(methods[1]);
    char *output = s->output ? cli_strdup_printf("%s", s->output) : default_output(s->image, "_compare");
    const fx_image *a = fx_result_heatmap(result, 0, 0);
    const fx_image *b = fx_result_heatmap(result, 0, 1);
    int32_t predicted = fx_result_predicted_class(result, 0);
    int32_t target = fx_result_target_class(result, 0);
    char method[160], source[400];
    snprintf(method, sizeof method, "%s vs %s%s%s", title_a, title_b,
             target == predicted ? "" : target >= 0 ? " of class " : " of ",
             target != predicted ? cli_target_name(model, target) : "");
    cli_append_refinements(s, method, sizeof method);
    cli_source(s, s->image, source, sizeof source);
    fx_figure_options f;
    cli_figure_options(s, &f);
    f.label = fx_model_class_name(model, (uint32_t)predicted);
    f.confidence = fx_result_confidence(result, 0);
    f.method = method;
    f.source = source;
    f.layer = fx_result_layer(result);
    fx_image figure = {0}, shown = {0};
    const cli_annotation *annotation = s->boxes ? cli_annotations_lookup(&boxes, s->image) : NULL;
    rc = make_output_folder(s, output);
    /* The image as the model saw it (its intensity rule), boxes on top. */
    fx_status status = cli_model_view(model, &image, &info, &shown);
    if (status == FX_OK && annotation) {
        cli_draw_boxes(annotation, &shown, 0, 220, 0);
    }
    if (rc == CLI_EXIT_OK && status == FX_OK) {
        status = fx_figure_compare(&shown, a, title_a, b, title_b, &f, &figure);
    }
    bool saving = status == FX_OK;
    if (rc == CLI_EXIT_OK && status == FX_OK) {
        status = fx_image_save(output, &figure, NULL);
    }
    if (rc == CLI_EXIT_OK && status != FX_OK) {
        report_write_failure(s, output, saving);
        rc = CLI_EXIT_FAILURE;
    } else if (rc == CLI_EXIT_OK) {
        printf("%s (%.1f%%)  ->  %s  (largest |%s - %s|: %.3f)\n", f.label, 100.0 * f.confidence, cli_name(output),
               title_a, title_b, (double)max_difference(a, b));
    }
    fx_image_free(&shown);
    fx_image_free(&figure);
    free(output);
    cli_annotations_free(&boxes);
    fx_result_free(result);
    fx_image_free(&image);
    fx_model_free(model);
    return rc;
}

static void format_shape(const fx_layer_info *info, char *buf, size_t size)
{
    if (info->rank == 0) {
        snprintf(buf, size, "-");
        return;
    }
    size_t used = 0;
    for (uint32_t d = 0; d < info->rank && d < FX_LAYER_MAX_RANK && used < size; d++) {
        int n = snprintf(buf + used, size - used, "%s%lld", d ? " x " : "", (long long)info->shape[d]);
        used += n > 0 ? (size_t)n : 0;
    }
}

int cli_run_layers(const cli_settings *s)
{
    fx_model *model = NULL;
    int rc = cli_load_model(s, &model);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    const char *chosen = fx_model_default_layer(model);
    size_t count = fx_model_layer_count(model);
    size_t name_width = 5, type_width = 4;
    for (size_t i = 0; i < count; i++) {
        fx_layer_info info = {.struct_size = sizeof info};
        if (fx_model_layer(model, i, &info) == FX_OK) {
            name_width = strlen(info.name) > name_width ? strlen(info.name) : name_width;
            type_width = strlen(info.type) > type_width ? strlen(info.type) : type_width;
        }
    }
    printf("  %-*s  %-*s  %s\n", (int)name_width, "LAYER", (int)type_width, "TYPE", "OUTPUT SHAPE (one image)");
    size_t shown = 0;
    for (size_t i = 0; i < count; i++) {
        fx_layer_info info = {.struct_size = sizeof info};
        if (fx_model_layer(model, i, &info) != FX_OK) {
            rc = cli_compute_failed(s->command, FX_ERR_INTERNAL);
            break;
        }
        if (s->feature_maps && !info.is_feature_map) {
            continue;
        }
        char shape[160];
        format_shape(&info, shape, sizeof shape);
        bool is_default = chosen && strcmp(chosen, info.name) == 0;
        printf("%c %-*s  %-*s  %s\n", is_default ? '*' : ' ', (int)name_width, cli_name(info.name),
               (int)type_width, cli_name(info.type), shape);
        shown++;
    }
    printf("\n%zu of %zu layers shown%s. * = default target layer (%s); feature-map layers are valid "
           "--layer values.\n", shown, count, s->feature_maps ? " (feature maps only)" : "",
           chosen ? chosen : "none: give --layer");
    fx_model_free(model);
    return rc;
}

/* The model's intensity rule (fx_model_intensity), with its formula. */
static void print_intensity(const fx_model *model)
{
    fx_intensity rule;
    fx_intensity_init(&rule);
    if (fx_model_intensity(model, &rule) != FX_OK) {
        printf("intensity:      unknown (%s)\n", cli_message(fx_last_error()));
        return;
    }
    const char *name = fx_intensity_name(rule.mode);
    printf("intensity:      %s", name ? name : "unknown");
    switch (rule.mode) {
    case FX_INTENSITY_AUTO:
    case FX_INTENSITY_BITS:
        if (rule.bits_stored) {
            printf(": v / %lu (%u bits stored)\n", (1ul << rule.bits_stored) - 1ul, rule.bits_stored);
        } else if (rule.mode == FX_INTENSITY_AUTO) {
            printf(": v / (2^bits - 1) with the bits stored the file gives (PNG sBIT, DICOM), else the "
                   "container's (v / 255, v / 65535)\n");
        } else {
            printf(": v / (2^bits - 1) with the image's bits stored, else the container's\n");
        }
        break;
    case FX_INTENSITY_CONTAINER:
        printf(": v / 255 (8-bit), v / 65535 (16-bit)\n");
        break;
    case FX_INTENSITY_MINMAX:
        printf(": (v - min) / (max - min) per image\n");
        break;
    case FX_INTENSITY_WINDOW:
        printf(": center %g, width %g (sample units): (v - %g) / %g clipped to [0,1]\n", (double)rule.window_center,
               (double)rule.window_width, (double)rule.window_center - (double)rule.window_width / 2.0,
               (double)rule.window_width);
        break;
    default:
        printf(" (mode %d)\n", rule.mode);
        break;
    }
}

/* The model's resize mode (fx_model_resize_mode). */
static void print_resize(const fx_model *model, uint32_t width, uint32_t height)
{
    uint32_t size = 0;
    int32_t mode = fx_model_resize_mode(model, &size);
    const char *name = fx_resize_mode_name(mode);
    printf("resize:         %s", name ? name : "unknown");
    switch (mode) {
    case FX_RESIZE_STRETCH:
        printf(": bilinear to %u x %u, aspect not kept, no antialias\n", width, height);
        break;
    case FX_RESIZE_STRETCH_ANTIALIAS:
        printf(": bilinear to %u x %u with antialias, aspect not kept\n", width, height);
        break;
    case FX_RESIZE_LETTERBOX:
        printf(": aspect kept, fitted inside %u x %u and centered, the rest black\n", width, height);
        break;
    case FX_RESIZE_SHORTER_SIDE_CROP:
        printf(": shorter side to %u, then the center %u x %u crop\n", size, width, height);
        break;
    default:
        printf("\n");
        break;
    }
}

/* Why the model's output kind is what it is. The library decides it at load
 * (the option, the graph's final activation, fxcam.json "output", the
 * probe's values: fxcam.h, FX_OUTPUT_AUTO) but does not say which step did;
 * the CLI knows the option it passed, and the load's FX_WARN_OUTPUT_KIND
 * warning says the probe guessed, or that fxcam.json contradicted the graph
 * (which then decided). Without either, a probability output came from the
 * graph or fxcam.json, and a logit output from fxcam.json or the default. */
static const char *output_kind_reason(const cli_settings *s, const fx_model *model)
{
    if (s->output_kind != FX_OUTPUT_AUTO) {
        return "(set by --output-kind)";
    }
    for (size_t i = 0; i < fx_model_warning_count(model); i++) {
        int32_t code = 0;
        const char *message = fx_model_warning(model, i, &code);
        if (code == FX_WARN_OUTPUT_KIND && message) {
            return strncmp(message, "fxcam.json says", 15) == 0 ? "(graph: final activation; fxcam.json disagrees, "
                                                                  "see the warning)"
                                                                : "(guessed from the probe's values; see the warning)";
        }
    }
    return fx_model_output_kind(model) == FX_OUTPUT_PROBABILITIES
               ? "(graph: final softmax/log_softmax/sigmoid, or fxcam.json \"output\")"
               : "(fxcam.json \"output\", or the default: no final activation and the probe's values are not "
                 "probabilities)";
}

int cli_run_info(const cli_settings *s)
{
    fx_model *model = NULL;
    int rc = cli_load_model(s, &model);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    const cli_asset *embedded = cli_embedded_model();
    uint32_t width = 0, height = 0, channels = 0;
    fx_model_input_size(model, &width, &height, &channels);
    if (s->model) {
        printf("model:          %s\n", cli_name(s->model));
    } else {
        printf("model:          embedded %s (%zu bytes)\n", embedded->name, embedded->size);
    }
    printf("device:         %s\n", fx_model_device(model));
    printf("input:          %u x %u, %u channel%s\n", width, height, channels, channels == 1 ? "" : "s");
    float mean[3] = {0}, std[3] = {0};
    if (channels <= 3 && fx_model_normalization(model, mean, std) == FX_OK) {
        printf("normalization:  (x - mean) / std, x in [0,1]; mean");
        for (uint32_t c = 0; c < channels; c++)
            printf(" %g", mean[c]);
        printf(", std");
        for (uint32_t c = 0; c < channels; c++)
            printf(" %g", std[c]);
        printf("\n");
    }
    print_intensity(model);
    print_resize(model, width, height);
    printf("logits:         %u\n", fx_model_class_count(model));
    printf("output:         %s %s\n", fx_model_output_kind(model) == FX_OUTPUT_PROBABILITIES ? "probabilities" : "logits",
           output_kind_reason(s, model));
    int32_t positive = fx_model_positive_class(model);
    printf("classes:       ");
    for (uint32_t i = 0; i < fx_model_result_class_count(model); i++) {
        printf(" %u=%s%s", i, fx_model_class_name(model, i), (int32_t)i == positive ? " (positive)" : "");
    }
    printf("\n");
    const char *layer = fx_model_default_layer(model);
    size_t feature_maps = 0, count = fx_model_layer_count(model);
    for (size_t i = 0; i < count; i++) {
        fx_layer_info info = {.struct_size = sizeof info};
        if (fx_model_layer(model, i, &info) == FX_OK && info.is_feature_map) {
            feature_maps++;
        }
    }
    printf("default layer:  %s\n", layer ? layer : "none (give --layer)");
    printf("layers:         %zu (%zu with feature maps; see 'fxcam layers')\n", count, feature_maps);
    fx_model_free(model);
    return CLI_EXIT_OK;
}
