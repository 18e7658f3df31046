/* fxcam demo: the embedded model on the embedded sample radiographs, so that
 * a fresh build shows what fxcam does without any file of its own. */
#include "annotations.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct demo_sample {
    const cli_asset *asset;
    fx_image image;
    fx_image_info info;                /* what the loader found: the sBIT of the 12-bit samples */
    const cli_annotation *annotation; /* NULL when boxes.csv does not list it */
} demo_sample;

static bool is_png(const cli_asset *a)
{
    size_t n = strlen(a->name);
    return n > 4 && strcasecmp(a->name + n - 4, ".png") == 0;
}

static char *stem(const char *name)
{
    size_t n = strlen(name) - 4;
    return cli_strdup_printf("%.*s", (int)n, name);
}

/* The original with the annotated boxes drawn in green, for display. */
/* The sample as the model read it (its intensity rule and the sample's bits
 * stored), with the annotated boxes drawn on it. */
static fx_status display_image(const fx_model *model, const demo_sample *sample, fx_image *rgb)
{
    fx_status status = cli_model_view(model, &sample->image, &sample->info, rgb);
    if (status == FX_OK && sample->annotation) {
        cli_draw_boxes(sample->annotation, rgb, 0, 220, 0);
    }
    return status;
}

static fx_status write_figures(const cli_settings *s, fx_model *model, const demo_sample *sample,
                               const fx_result *result, size_t i, const char *dir, size_t *written)
{
    fx_image rgb = {0};
    fx_status status = display_image(model, sample, &rgb);
    if (status != FX_OK) {
        return status;
    }
    char *name = stem(sample->asset->name);
    char *single = cli_strdup_printf("%s/%s_gradcam.png", dir, name);
    char *compare = cli_strdup_printf("%s/%s_compare.png", dir, name);
    status = cli_write_output_info(s, model, &sample->image, &sample->info, result, i, 0, single,
                                   sample->asset->name, sample->annotation);
    if (status == FX_OK) {
        (*written)++;
        fx_figure_options f;
        cli_figure_options(s, &f); /* the settings and figure time of every other figure */
        int32_t predicted = fx_result_predicted_class(result, i);
        f.label = fx_model_class_name(model, (uint32_t)predicted);
        f.confidence = fx_result_confidence(result, i);
        char source[400];
        cli_source(s, sample->asset->name, source, sizeof source);
        char title[160];
        snprintf(title, sizeof title, "%s vs %s", cli_method_title(FX_CAM_GRADCAM),
                 cli_method_title(FX_CAM_GRADCAM_PLUSPLUS));
        f.method = title;
        f.source = source;
        f.layer = fx_result_layer(result);
        fx_image figure = {0};
        status = fx_figure_compare(&rgb, fx_result_heatmap(result, i, 0), cli_method_title(FX_CAM_GRADCAM),
                                   fx_result_heatmap(result, i, 1), cli_method_title(FX_CAM_GRADCAM_PLUSPLUS), &f,
                                   &figure);
        if (status == FX_OK) {
            status = fx_image_save(compare, &figure, NULL);
        }
        if (status == FX_OK) {
            (*written)++;
        }
        fx_image_free(&figure);
    }
    free(name);
    free(single);
    free(compare);
    fx_image_free(&rgb);
    return status;
}

static void print_sample(fx_model *model, const demo_sample *sample, const fx_result *result, size_t i)
{
    int32_t predicted = fx_result_predicted_class(result, i);
    printf("%-24s predicted %-10s %5.1f%%", sample->asset->name, fx_model_class_name(model, (uint32_t)predicted),
           100.0 * fx_result_confidence(result, i));
    if (sample->annotation) {
        int32_t positive = fx_model_positive_class(model);
        const char *truth = sample->annotation->label == 1 && positive >= 0
                                ? fx_model_class_name(model, (uint32_t)positive)
                                : (sample->annotation->label == 1 ? "positive" : "normal");
        printf("  annotated %s", truth);
        if (sample->annotation->box_count) {
            uint32_t x = 0, y = 0;
            cli_heatmap_peak(fx_result_heatmap(result, i, 0), &x, &y);
            printf("  Grad-CAM peak (%u, %u) %s the fracture box", x, y,
                   cli_point_in_boxes(sample->annotation, x, y) ? "inside" : "OUTSIDE");
        }
    }
    printf("\n");
}

static bool load_annotations(cli_annotations *annotations)
{
    for (size_t k = 0; k < cli_embedded_sample_count(); k++) {
        const cli_asset *a = cli_embedded_sample(k);
        if (strcmp(a->name, "boxes.csv") == 0) {
            char err[256];
            return cli_annotations_parse((const char *)a->data, a->size, annotations, err, sizeof err);
        }
    }
    return false;
}

int cli_run_demo(const cli_settings *s)
{
    const char *dir = s->output_dir ? s->output_dir : "fxcam-demo";
    size_t count = 0;
    for (size_t k = 0; k < cli_embedded_sample_count(); k++) {
        count += is_png(cli_embedded_sample(k));
    }
    if (!cli_embedded_model() || count == 0) {
        cli_error(s->command, "this fxcam was built without the embedded model and sample radiographs "
                  "(models/fracture_densenet.pt, models/samples/); use 'fxcam single --model PATH --image PATH'");
        return CLI_EXIT_FAILURE;
    }
    fx_model *model = NULL;
    int rc = cli_load_model(s, &model);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (cli_make_dirs(dir) != 0) {
        cli_error(s->command, "cannot create '%s': %s", dir, strerror(errno));
        fx_model_free(model);
        return CLI_EXIT_FAILURE;
    }
    cli_annotations annotations = {0};
    bool annotated = load_annotations(&annotations);
    demo_sample *samples = calloc(count, sizeof *samples);
    fx_image *images = calloc(count, sizeof *images);
    fx_image_info *infos = calloc(count, sizeof *infos);
    if (!samples || !images || !infos) {
        exit(CLI_EXIT_FAILURE);
    }
    size_t n = 0;
    for (size_t k = 0; k < cli_embedded_sample_count() && rc == CLI_EXIT_OK; k++) {
        const cli_asset *a = cli_embedded_sample(k);
        if (!is_png(a)) {
            continue;
        }
        samples[n].asset = a;
        samples[n].annotation = annotated ? cli_annotations_find(&annotations, a->name) : NULL;
        /* The loader's info carries the samples' sBIT (12 bits stored): without
         * it the intensity rule would read them as full-range 16-bit data. */
        fx_load_options load;
        fx_load_options_init(&load);
        samples[n].info.struct_size = sizeof samples[n].info;
        load.info = &samples[n].info;
        if (fx_image_load_memory(a->data, a->size, &load, &samples[n].image) != FX_OK) {
            cli_error(s->command, "embedded sample %s is unreadable: %s", a->name, fx_last_error());
            rc = CLI_EXIT_FAILURE;
            break;
        }
        images[n] = samples[n].image;
        infos[n] = samples[n].info;
        n++;
    }
    static const int32_t methods[2] = {FX_CAM_GRADCAM, FX_CAM_GRADCAM_PLUSPLUS};
    fx_gradcam_options opts;
    fx_gradcam_options_init(&opts);
    opts.methods = methods;
    opts.method_count = 2;
    opts.image_info = infos;
    fx_result *result = NULL;
    if (rc == CLI_EXIT_OK) {
        fx_status status = fx_gradcam_compute(model, images, n, &opts, &result);
        if (status != FX_OK) {
            rc = cli_compute_failed(s->command, status);
        } else {
            cli_warn_result(result, -1, NULL, NULL);
            for (size_t i = 0; i < n; i++) {
                cli_warn_result(result, (int64_t)i, samples[i].asset->name, NULL);
            }
        }
    }
    size_t written = 0;
    for (size_t i = 0; i < n && rc == CLI_EXIT_OK; i++) {
        print_sample(model, &samples[i], result, i);
        if (write_figures(s, model, &samples[i], result, i, dir, &written) != FX_OK) {
            cli_error(s->command, "cannot write the figures of %s into '%s': %s", samples[i].asset->name, dir,
                      fx_last_error());
            rc = CLI_EXIT_FAILURE;
        }
    }
    if (rc == CLI_EXIT_OK) {
        char *real = realpath(dir, NULL);
        printf("\ndemo: wrote %zu figures (<sample>_gradcam.png, <sample>_compare.png) to %s\n", written,
               real ? real : dir);
        printf("Green boxes mark the annotated fractures; the heatmap should sit on them.\n");
        free(real);
    }
    fx_result_free(result);
    for (size_t i = 0; i < n; i++) {
        fx_image_free(&samples[i].image);
    }
    free(samples);
    free(images);
    free(infos);
    cli_annotations_free(&annotations);
    fx_model_free(model);
    return rc;
}
