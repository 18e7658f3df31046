/* fxcam evaluate --faithfulness: which map to trust (docs/evaluation.md).
 * The metrics themselves are the library's (fx_faithfulness_compute); this
 * file feeds them the model's forward pass and each method's map, adds a
 * random map as the chance baseline, and prints the table and the ranking. */
#include "faithfulness.h"
#include "shard.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void cli_faith_init(cli_faith *f, const int32_t *methods, uint32_t method_count, uint32_t batch_size)
{
    memset(f, 0, sizeof *f);
    fx_faithfulness_options_init(&f->options);
    f->options.batch_size = batch_size ? batch_size : 8;
    f->row_count = method_count + 1;
    f->rows = calloc(f->row_count, sizeof *f->rows);
    if (!f->rows) {
        exit(CLI_EXIT_FAILURE);
    }
    for (uint32_t j = 0; j < method_count; j++) {
        f->rows[j].method = methods[j];
    }
    f->rows[method_count].method = -1;
}

void cli_faith_free(cli_faith *f)
{
    for (uint32_t j = 0; j < f->row_count; j++) {
        free(f->rows[j].items);
    }
    free(f->rows);
    memset(f, 0, sizeof *f);
}

static const char *row_name(const cli_faith_row *row)
{
    return row->method < 0 ? "random map" : fx_cam_method_name(row->method);
}

/* ---- Scoring through the model --------------------------------------------- */

typedef struct scorer {
    fx_model *model;
    fx_gradcam_options opts;
    int32_t target;
    uint32_t classes;
    float *probabilities;
    size_t capacity; /* images */
} scorer;

static fx_status score_batch(void *user, const fx_image *images, size_t n, float *scores)
{
    scorer *sc = user;
    if (n > sc->capacity) {
        float *grown = realloc(sc->probabilities, n * sc->classes * sizeof *grown);
        if (!grown) {
            return FX_ERR_OUT_OF_MEMORY;
        }
        sc->probabilities = grown;
        sc->capacity = n;
    }
    fx_status st = fx_model_predict(sc->model, images, n, &sc->opts, sc->probabilities, NULL);
    for (size_t k = 0; st == FX_OK && k < n; k++) {
        scores[k] = sc->probabilities[k * sc->classes + (size_t)sc->target];
    }
    return st;
}

/* Uniform values in [0,1) from splitmix64: a map that knows nothing. */
static fx_status random_map(const fx_image *like, uint64_t seed, fx_image *map)
{
    fx_status st = fx_image_alloc(map, like->width, like->height, 1, FX_PIXEL_F32);
    if (st != FX_OK) {
        return st;
    }
    float *v = map->data;
    for (size_t p = 0; p < (size_t)like->width * like->height; p++) {
        uint64_t z = (seed += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        v[p] = (float)((double)(z >> 40) / 16777216.0);
    }
    return FX_OK;
}

static bool add_item(cli_faith_row *row, const fx_faithfulness *item)
{
    if (row->count == row->capacity) {
        size_t capacity = row->capacity ? 2 * row->capacity : 16;
        fx_faithfulness *grown = realloc(row->items, capacity * sizeof *grown);
        if (!grown) {
            return false;
        }
        row->items = grown;
        row->capacity = capacity;
    }
    row->items[row->count++] = *item;
    return true;
}

bool cli_faith_add(cli_faith *f, const cli_settings *s, fx_model *model, const fx_image *image,
                   const fx_image_info *info, const fx_result *result, size_t i, const char *name)
{
    if (fx_result_target_class(result, i) < 0) {
        /* -1: the maps were of weighted classes (class_weights); the metrics
         * follow one class's probability, and score_batch would index -1. */
        f->failed++;
        fprintf(stderr, "fxcam %s: %s: cannot compute the faithfulness metrics of maps of weighted classes: they "
                "follow one class's probability; give one class (--class)\n", s->command, cli_name(name));
        return false;
    }
    /* The metrics perturb the image as the model reads it: [0,1] by the
     * model's intensity rule with the image's bits stored (info), as
     * fx_gradcam_compute read the original; fx_model_predict then resizes
     * and normalizes the float images (floats keep their [0,1] values, so
     * its image_info has nothing to say about them). */
    fx_intensity rule;
    fx_intensity_init(&rule);
    fx_image unit = {0}, noise_map = {0};
    fx_status st = fx_model_intensity(model, &rule);
    if (st == FX_OK) {
        st = fx_image_to_unit(image, &rule, info, &unit);
    }
    uint64_t seed = cli_fnv1a64(name);
    if (st == FX_OK) {
        st = random_map(&unit, seed, &noise_map);
    }
    scorer sc = {model, {0}, fx_result_target_class(result, i), fx_model_result_class_count(model), NULL, 0};
    fx_gradcam_options_init(&sc.opts);
    sc.opts.batch_size = f->options.batch_size;
    fx_faithfulness_options o = f->options;
    o.seed = seed;
    uint32_t methods = f->row_count - 1;
    fx_faithfulness *items = calloc(f->row_count, sizeof *items);
    if (!items) {
        exit(CLI_EXIT_FAILURE);
    }
    for (uint32_t j = 0; st == FX_OK && j < f->row_count; j++) {
        const fx_image *map = j < methods ? fx_result_heatmap(result, i, j) : &noise_map;
        items[j].struct_size = sizeof items[j];
        st = fx_faithfulness_compute(&unit, map, score_batch, &sc, &o, &items[j]);
    }
    bool ok = st == FX_OK;
    if (!ok) {
        f->failed++;
        fprintf(stderr, "fxcam %s: %s: cannot compute the faithfulness metrics: %s\n", s->command, cli_name(name),
                cli_message(fx_last_error()));
    } else {
        /* The unperturbed float image must score as the heatmap call did; if
         * not, the metrics would describe another input than the maps'. */
        uint32_t count = 0;
        const float *p = fx_result_probabilities(result, i, &count);
        if (p && (uint32_t)sc.target < count && fabsf(p[sc.target] - items[0].score) > 1e-3f) {
            fprintf(stderr, "fxcam: warning: %s: the float copy of the image scores %.4f, the heatmap call %.4f; "
                    "the faithfulness metrics may not describe the same input\n", cli_name(name),
                    (double)items[0].score, (double)p[sc.target]);
        }
        for (uint32_t j = 0; j < f->row_count; j++) {
            if (!add_item(&f->rows[j], &items[j])) {
                exit(CLI_EXIT_FAILURE);
            }
        }
    }
    free(items);
    free(sc.probabilities);
    fx_image_free(&unit);
    fx_image_free(&noise_map);
    return ok;
}

/* ---- Table and ranking ------------------------------------------------------- */

typedef struct metric {
    const char *name;
    bool higher_is_better;
    float (*value)(const fx_faithfulness_summary *);
} metric;

static float deletion_of(const fx_faithfulness_summary *s) { return s->deletion_auc; }
static float insertion_of(const fx_faithfulness_summary *s) { return s->insertion_auc; }
static float drop_of(const fx_faithfulness_summary *s) { return s->average_drop; }
static float increase_of(const fx_faithfulness_summary *s) { return s->increase_in_confidence; }
static float morf_of(const fx_faithfulness_summary *s) { return s->road_morf; }
static float lerf_of(const fx_faithfulness_summary *s) { return s->road_lerf; }

static const metric METRICS[] = {
    {"deletion AUC", false, deletion_of},   {"insertion AUC", true, insertion_of},
    {"Average Drop", false, drop_of},       {"Increase in Confidence", true, increase_of},
    {"ROAD MoRF drop", true, morf_of},      {"ROAD LeRF drop", false, lerf_of},
};
#define METRIC_COUNT (sizeof METRICS / sizeof METRICS[0])

static const metric *sort_metric;
static const fx_faithfulness_summary *sort_summaries;

static int by_metric(const void *a, const void *b)
{
    float x = sort_metric->value(&sort_summaries[*(const uint32_t *)a]);
    float y = sort_metric->value(&sort_summaries[*(const uint32_t *)b]);
    if (x == y) {
        return (*(const uint32_t *)a > *(const uint32_t *)b) - (*(const uint32_t *)a < *(const uint32_t *)b);
    }
    return (sort_metric->higher_is_better ? x > y : x < y) ? -1 : 1;
}

char *cli_maps_of(const fx_model *model, const fx_gradcam_options *opts)
{
    if (opts->class_weights && opts->class_weight_count) {
        uint32_t outputs = opts->class_weight_count;
        cli_text t = {0};
        cli_text_printf(&t, "the weighted classes");
        for (uint32_t c = 0; c < outputs; c++) {
            if (opts->class_weights[c] != 0.0f) {
                /* one logit: its weight scores the class 'positive' (index 1) */
                const char *name = fx_model_class_name(model, outputs == 1 ? 1u : c);
                cli_text_printf(&t, "%s%s=%g", t.size > strlen("the weighted classes") ? ", " : " ",
                                cli_name(name ? name : "?"), (double)opts->class_weights[c]);
            }
        }
        return t.data;
    }
    if (opts->target_class >= 0) {
        return cli_strdup_printf("class '%s'", cli_name(cli_target_name(model, opts->target_class)));
    }
    return cli_strdup_printf("each image's predicted class");
}

void cli_faith_print(const cli_faith *f, const char *maps_of)
{
    fx_faithfulness_summary *sum = calloc(f->row_count, sizeof *sum);
    uint32_t *order = calloc(f->row_count, sizeof *order);
    if (!sum || !order) {
        exit(CLI_EXIT_FAILURE);
    }
    uint32_t rows = 0;
    for (uint32_t j = 0; j < f->row_count; j++) {
        sum[j].struct_size = sizeof sum[j];
        if (f->rows[j].count && fx_faithfulness_summarize(f->rows[j].items, f->rows[j].count, &sum[j]) == FX_OK) {
            order[rows++] = j;
        }
    }
    const fx_faithfulness_options *o = &f->options;
    printf("\nfaithfulness of the maps of %s (%zu images, %zu failed; docs/evaluation.md):\n", maps_of,
           f->rows[0].count, f->failed);
    printf("  deletion to black / insertion from a blur (sigma %g px) of 1/%u of the pixels per step;\n",
           (double)o->blur_sigma, o->steps);
    printf("  ROAD removes %u%%..%u%% of the pixels with noisy linear imputation (noise %g)\n",
           100 / o->road_steps, 100 - 100 / o->road_steps, (double)o->road_noise);
    printf("%-14s %8s %8s %10s %10s %10s %10s\n", "method", "AD %", "IC %", "deletion", "insertion", "ROAD MoRF",
           "ROAD LeRF");
    printf("%-14s %8s %8s %10s %10s %10s %10s\n", "(better)", "lower", "higher", "lower", "higher", "higher",
           "lower");
    for (uint32_t r = 0; r < rows; r++) {
        const fx_faithfulness_summary *m = &sum[order[r]];
        printf("%-14s %8.2f %8.2f %10.4f %10.4f %10.4f %10.4f\n", row_name(&f->rows[order[r]]),
               (double)m->average_drop, (double)m->increase_in_confidence, (double)m->deletion_auc,
               (double)m->insertion_auc, (double)m->road_morf, (double)m->road_lerf);
    }
    if (rows < 2) {
        free(sum);
        free(order);
        return;
    }
    printf("\nranking for this model on these images, most faithful first:\n");
    const char *best[METRIC_COUNT];
    sort_summaries = sum;
    for (size_t k = 0; k < METRIC_COUNT; k++) {
        sort_metric = &METRICS[k];
        qsort(order, rows, sizeof *order, by_metric);
        printf("  %-24s", METRICS[k].name);
        for (uint32_t r = 0; r < rows; r++) {
            printf("%s%s %.4g", r ? ", " : " ", row_name(&f->rows[order[r]]),
                   (double)METRICS[k].value(&sum[order[r]]));
        }
        printf("  (%s is better)\n", METRICS[k].higher_is_better ? "higher" : "lower");
        best[k] = row_name(&f->rows[order[0]]);
    }
    printf("most faithful: %s by deletion AUC, %s by insertion AUC, %s by Average Drop, %s by ROAD MoRF\n", best[0],
           best[1], best[2], best[4]);
    free(sum);
    free(order);
}

/* ---- Images without --boxes ---------------------------------------------------- */

static int by_file(const void *a, const void *b)
{
    return strcmp(((const cli_annotation *)a)->file, ((const cli_annotation *)b)->file);
}

bool cli_faith_list_images(const char *command, const char *dir, cli_annotations *out)
{
    DIR *d = opendir(dir);
    if (!d) {
        cli_error(command, "cannot read the image folder '%s': %s", cli_name(dir), strerror(errno));
        return false;
    }
    cli_annotations a = {0};
    size_t capacity = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !cli_is_image_name(e->d_name)) {
            continue;
        }
        if (a.count == capacity) {
            capacity = capacity ? 2 * capacity : 64;
            cli_annotation *grown = realloc(a.items, capacity * sizeof *grown);
            if (!grown) {
                exit(CLI_EXIT_FAILURE);
            }
            a.items = grown;
        }
        cli_annotation *item = &a.items[a.count++];
        memset(item, 0, sizeof *item);
        item->file = cli_strdup_printf("%s", e->d_name);
        item->label = -1;
    }
    closedir(d);
    if (a.count == 0) {
        cli_error(command, "no images in '%s' (.png .jpg .jpeg .dcm .dicom)", cli_name(dir));
        cli_annotations_free(&a);
        return false;
    }
    qsort(a.items, a.count, sizeof *a.items, by_file);
    *out = a;
    return true;
}
