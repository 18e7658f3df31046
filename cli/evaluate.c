/* fxcam evaluate: classification accuracy, and how well the heatmaps point at
 * annotated boxes (pointing game, energy in box), per method; with
 * --faithfulness also how faithful each map is to the model (faithfulness.h),
 * which needs no boxes. */
#include "annotations.h"
#include "faithfulness.h"
#include "report.h"
#include "shard.h"
#include "lib/stages.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct method_score {
    size_t hits;        /* boxed images whose peak is inside a box */
    double energy;      /* sum over boxed images */
} method_score;

typedef struct evaluation {
    const cli_settings *s;
    fx_model *model;
    fx_gradcam_options opts;
    int32_t methods[FX_CAM_METHOD_COUNT];
    uint32_t method_count;
    int32_t positive;
    size_t images, correct, boxed, failed;
    method_score scores[FX_CAM_METHOD_COUNT];
    cli_text csv;
    bool labelled;      /* --boxes given: labels and boxes */
    cli_faith faith;    /* --faithfulness */
    eval_report report; /* --report */
    cli_cam_extras cam; /* what opts points at for --layers, --class-weights */
} evaluation;

/* The target layer(s) as the maps name them: --layers as given (what
 * fx_result_layer reports), else --layer, else the model's default. */
static const char *eval_layer(const evaluation *ev)
{
    return ev->s->layers ? ev->s->layers : ev->opts.layer ? ev->opts.layer : fx_model_default_layer(ev->model);
}

static void score_image(evaluation *ev, const cli_annotation *a, const fx_result *result, size_t i)
{
    int32_t predicted = fx_result_predicted_class(result, i);
    bool says_positive = predicted == ev->positive;
    ev->images++;
    ev->correct += a->label >= 0 && says_positive == (a->label == 1);
    bool boxed = a->box_count > 0;
    ev->boxed += boxed;
    for (uint32_t j = 0; j < ev->method_count; j++) {
        const fx_image *heatmap = fx_result_heatmap(result, i, j);
        uint32_t px = 0, py = 0;
        cli_heatmap_peak(heatmap, &px, &py);
        bool hit = boxed && cli_point_in_boxes(a, px, py);
        double energy = boxed ? cli_energy_in_boxes(a, heatmap) : 0.0;
        if (boxed) {
            ev->scores[j].hits += hit;
            ev->scores[j].energy += energy;
        }
        cli_text_csv_field(&ev->csv, a->file, false);
        if (a->label >= 0) {
            cli_text_printf(&ev->csv, "%d,", a->label);
        } else {
            cli_text_printf(&ev->csv, ",");
        }
        cli_text_csv_field(&ev->csv, fx_model_class_name(ev->model, (uint32_t)predicted), false);
        cli_text_printf(&ev->csv, "%.4f,%s,%u,%u,", (double)fx_result_confidence(result, i),
                        fx_cam_method_name(ev->methods[j]), px, py);
        if (boxed) {
            cli_text_printf(&ev->csv, "%d,%.4f,ok\n", hit ? 1 : 0, energy);
        } else {
            cli_text_printf(&ev->csv, ",,ok\n");
        }
    }
}

static void record_failure(evaluation *ev, const cli_annotation *a, const char *what, const char *why)
{
    ev->failed++;
    fprintf(stderr, "fxcam evaluate: %s: %s: %s\n", cli_name(a->file), what, cli_message(why));
    cli_text_csv_field(&ev->csv, a->file, false);
    cli_text_printf(&ev->csv, "%d,,,,,,,,", a->label);
    char *status = cli_strdup_printf("failed: %s: %s", what, why);
    cli_text_csv_field(&ev->csv, status, true);
    if (ev->s->report) {
        eval_report_fail(&ev->report, a->file, what, why);
    }
    free(status);
}

/* One pass of evaluate's pipeline (lib/stages.h, as fxcam batch): the
 * annotations [first, first + n), the images read for them, and the result. */
typedef struct eval_chunk {
    const cli_annotation *items;
    size_t n, count;                 /* count: images read */
    fx_image *images;
    /* what the loader found out about each image (bits stored): the
     * intensity rule of the pass, the figures and the faithfulness copies */
    fx_image_info *infos;
    const cli_annotation **loaded;
    const char **fail_what;          /* per item: why it was not read (NULL if read) ... */
    char **fail_why;                 /* ... and the details (malloc) */
    fx_result *result;               /* of the whole pass, or NULL when the pass failed ... */
    fx_result **alone;               /* ... and then one per image (NULL where it failed ... */
    char **alone_why;                /* ... for this reason) */
    bool computed;                   /* the compute stage ran (not after a fatal error) */
} eval_chunk;

typedef struct eval_run {
    evaluation *ev;
    const cli_annotations *annotations;
    size_t next, total;              /* the reading stage's next annotation */
    int rc;                          /* CLI_EXIT_OK, or the exit status of an error that fails every image */
    cli_progress progress;
} eval_run;

static void chunk_free(eval_chunk *c)
{
    for (size_t k = 0; k < c->count; k++) {
        fx_image_free(&c->images[k]);
    }
    for (size_t k = 0; k < c->n; k++) {
        free(c->fail_why[k]);
    }
    for (size_t k = 0; c->alone && k < c->count; k++) {
        fx_result_free(c->alone[k]);
        free(c->alone_why[k]);
    }
    free(c->alone);
    free(c->alone_why);
    fx_result_free(c->result);
    free(c->images);
    free(c->infos);
    free(c->loaded);
    free(c->fail_what);
    free(c->fail_why);
    free(c);
}

static void chunk_refuse(eval_chunk *c, size_t k, const char *what, const char *why)
{
    c->fail_what[k] = what;
    c->fail_why[k] = cli_strdup_printf("%s", why);
}

/* The reading stage: the next --batch-size annotations, their images read;
 * failures are kept for the writing stage, which reports them in order. */
static void *load_chunk(void *user)
{
    eval_run *r = user;
    if (r->next >= r->total) {
        return NULL;
    }
    size_t n = r->total - r->next < r->ev->s->batch_size ? r->total - r->next : r->ev->s->batch_size;
    eval_chunk *c = calloc(1, sizeof *c);
    if (!c || !(c->images = calloc(n, sizeof *c->images)) || !(c->infos = calloc(n, sizeof *c->infos)) ||
        !(c->loaded = calloc(n, sizeof *c->loaded)) || !(c->fail_what = calloc(n, sizeof *c->fail_what)) ||
        !(c->fail_why = calloc(n, sizeof *c->fail_why))) {
        exit(CLI_EXIT_FAILURE);
    }
    c->items = r->annotations->items + r->next;
    c->n = n;
    r->next += n;
    const cli_settings *s = r->ev->s;
    for (size_t k = 0; k < n; k++) {
        const cli_annotation *a = &c->items[k];
        /* Only files inside --image-dir are read: a boxes.csv from elsewhere
         * must not make fxcam open (and quote the first bytes of) other files. */
        if (!cli_is_inside_name(a->file)) {
            chunk_refuse(c, k, "refused", "the name is an absolute path or contains '..'; boxes.csv names files "
                                          "relative to --image-dir, inside it");
            continue;
        }
        char *path = cli_strdup_printf("%s/%s", s->image_dir, a->file);
        const char *why = NULL;
        char misplaced[256];
        if (cli_load_image_info(s, path, &c->images[c->count], &c->infos[c->count], &why) == FX_OK) {
            if (cli_boxes_check_fit(s->command, a, c->images[c->count].width, c->images[c->count].height, misplaced,
                                    sizeof misplaced)) {
                c->loaded[c->count++] = a;
            } else {
                fx_image_free(&c->images[c->count]);
                memset(&c->images[c->count], 0, sizeof c->images[c->count]);
                chunk_refuse(c, k, "refused", misplaced);
            }
        } else {
            chunk_refuse(c, k, "cannot read the image", why);
        }
        free(path);
    }
    return c;
}

/* The model's stage. false on an error that would fail every image (wrong
 * layer): nothing more is read. A pass that fails otherwise is retried one
 * image at a time by the writing stage. */
static bool compute_chunk(void *user, void *unit)
{
    eval_run *r = user;
    eval_chunk *c = unit;
    c->computed = true;
    fx_gradcam_options opts = r->ev->opts;
    opts.image_info = c->infos;
    fx_status status = c->count ? fx_gradcam_compute(r->ev->model, c->images, c->count, &opts, &c->result) : FX_OK;
    if (status == FX_ERR_LAYER || status == FX_ERR_DEVICE) {
        c->result = NULL;
        r->rc = cli_compute_failed(r->ev->s->command, status);
        return false;
    }
    if (status != FX_OK) {
        /* Each image alone, here on the model's thread, to find which one
         * was at fault without failing the others. */
        c->result = NULL;
        c->alone = calloc(c->count, sizeof *c->alone);
        c->alone_why = calloc(c->count, sizeof *c->alone_why);
        if (!c->alone || !c->alone_why) {
            exit(CLI_EXIT_FAILURE);
        }
        for (size_t k = 0; k < c->count; k++) {
            opts.image_info = &c->infos[k];
            if (fx_gradcam_compute(r->ev->model, &c->images[k], 1, &opts, &c->alone[k]) != FX_OK) {
                c->alone[k] = NULL;
                c->alone_why[k] = cli_strdup_printf("%s", fx_last_error());
            }
        }
    }
    return true;
}

/* Scores, the report's figure and the faithfulness measures of image k. */
static void finish_image(evaluation *ev, eval_chunk *c, size_t k, const fx_result *result, size_t i)
{
    score_image(ev, c->loaded[k], result, i);
    if (ev->s->report) {
        eval_report_add(&ev->report, ev->s, ev->model, &c->images[k], &c->infos[k], result, i, c->loaded[k]);
    }
    if (ev->s->faithfulness) {
        cli_faith_add(&ev->faith, ev->s, ev->model, &c->images[k], &c->infos[k], result, i, c->loaded[k]->file);
    }
}

/* The writing stage, in input order: refusals and read failures first, then
 * the images of the pass (as evaluate has always listed them). */
static void write_chunk(void *user, void *unit)
{
    eval_run *r = user;
    eval_chunk *c = unit;
    evaluation *ev = r->ev;
    for (size_t k = 0; k < c->n && c->computed; k++) {
        if (c->fail_what[k]) {
            record_failure(ev, &c->items[k], c->fail_what[k], c->fail_why[k]);
        }
    }
    if (c->computed && c->result) {
        cli_warn_result(c->result, -1, NULL, NULL);
        for (size_t k = 0; k < c->count; k++) {
            cli_warn_result(c->result, (int64_t)k, c->loaded[k]->file, NULL);
            finish_image(ev, c, k, c->result, k);
        }
    } else if (c->computed && c->alone) {
        for (size_t k = 0; k < c->count; k++) {
            if (c->alone[k]) {
                cli_warn_result(c->alone[k], CLI_ALL_IMAGES, c->loaded[k]->file, NULL);
                finish_image(ev, c, k, c->alone[k], 0);
            } else {
                record_failure(ev, c->loaded[k], "cannot compute the heatmaps", c->alone_why[k]);
            }
        }
    }
    if (c->computed && r->progress.terminal) {
        for (size_t k = 0; k < c->n; k++) {
            cli_progress_step(&r->progress, c->items[k].file, "", false);
        }
    }
    chunk_free(c);
}

/* Evaluates the first total annotations: read, model, write overlap with
 * --io-threads 1 (lib/stages.c), except with --faithfulness, whose extra
 * passes run in the writing stage and so must not run beside the model's. */
static int evaluate_all(evaluation *ev, const cli_annotations *annotations, size_t total)
{
    eval_run r = {.ev = ev, .annotations = annotations, .total = total, .rc = CLI_EXIT_OK};
    cli_progress_start(&r.progress, stderr, total);
    fx__stages stages = {&r, load_chunk, compute_chunk, write_chunk};
    fx__stages_run(&stages, ev->s->io_threads > 0 && !ev->s->faithfulness);
    cli_progress_finish(&r.progress);
    return r.rc;
}

static void print_report(const evaluation *ev)
{
    char *maps_of = cli_maps_of(ev->model, &ev->opts);
    printf("images:    %zu evaluated, %zu failed; %zu with boxes\n", ev->images, ev->failed, ev->boxed);
    if (!ev->labelled) {
        printf("accuracy:  - (no --boxes: no labels)\n");
        printf("maps of %s, layer %s\n", maps_of, eval_layer(ev));
        cli_faith_print(&ev->faith, maps_of);
        free(maps_of);
        return;
    }
    const char *positive = fx_model_class_name(ev->model, (uint32_t)ev->positive);
    printf("accuracy:  %.2f%% (%zu/%zu; label 1 = %s)\n", ev->images ? 100.0 * (double)ev->correct / (double)ev->images : 0.0,
           ev->correct, ev->images, positive);
    printf("maps of %s, layer %s\n\n", maps_of, eval_layer(ev));
    int width = 12; /* the method column fits the longest name (guided-gradcam, smoothgradcam++) */
    for (uint32_t j = 0; j < ev->method_count; j++) {
        int n = (int)strlen(fx_cam_method_name(ev->methods[j]));
        width = n > width ? n : width;
    }
    printf("%-*s %-22s %s\n", width, "method", "pointing game", "energy in box (mean)");
    for (uint32_t j = 0; j < ev->method_count; j++) {
        char hits[64];
        if (ev->boxed) {
            snprintf(hits, sizeof hits, "%.2f%% (%zu/%zu)", 100.0 * (double)ev->scores[j].hits / (double)ev->boxed,
                     ev->scores[j].hits, ev->boxed);
            printf("%-*s %-22s %.4f\n", width, fx_cam_method_name(ev->methods[j]), hits,
                   ev->scores[j].energy / (double)ev->boxed);
        } else {
            printf("%-*s %-22s %s\n", width, fx_cam_method_name(ev->methods[j]), "- (no boxes)", "-");
        }
    }
    if (ev->s->faithfulness) {
        cli_faith_print(&ev->faith, maps_of);
    }
    free(maps_of);
}

static int setup(evaluation *ev)
{
    const cli_settings *s = ev->s;
    if (!s->image_dir) {
        return cli_usage_error(s->command, "no image folder; give one with --image-dir DIR");
    }
    if (!s->boxes && !s->faithfulness) {
        return cli_usage_error(s->command, "no annotations; give them with --boxes CSV "
                               "(file,label,x0,y0,x1,y1), or measure faithfulness alone with --faithfulness");
    }
    if (s->report != (s->output_dir != NULL)) {
        return cli_usage_error(s->command, s->report ? "--report needs --output-dir DIR for the figures and "
                               "index.html" : "--output-dir is for --report (figures and index.html); give both");
    }
    if (s->report && cli_make_dirs(s->output_dir) != 0) {
        cli_error(s->command, "cannot create the output folder %s: %s", cli_name(s->output_dir), strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    ev->labelled = s->boxes != NULL;
    ev->method_count = s->method_count;
    memcpy(ev->methods, s->methods, sizeof ev->methods);
    if (ev->method_count == 0) {
        ev->methods[0] = FX_CAM_GRADCAM;
        ev->methods[1] = FX_CAM_GRADCAM_PLUSPLUS;
        ev->method_count = 2;
    }
    int rc = cli_load_model(s, &ev->model);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    ev->positive = fx_model_positive_class(ev->model);
    if (ev->positive < 0 && ev->labelled) {
        if (fx_model_result_class_count(ev->model) != 2) {
            cli_error(s->command, "the model names no positive class (fxcam.json positive_class) and has %u "
                      "classes, so label 1 is ambiguous", fx_model_result_class_count(ev->model));
            return CLI_EXIT_FAILURE;
        }
        ev->positive = 1;
        fprintf(stderr, "fxcam evaluate: the model names no positive class; label 1 = class 1 (%s)\n",
                fx_model_class_name(ev->model, 1));
    }
    fx_gradcam_options_init(&ev->opts);
    ev->opts.layer = s->layer;
    ev->opts.methods = ev->methods;
    ev->opts.method_count = ev->method_count;
    ev->opts.batch_size = s->batch_size;
    rc = cli_resolve_class(s, ev->model, &ev->opts.target_class);
    if (ev->opts.target_class < 0 && !s->class_weights) {
        ev->opts.target_class = ev->positive; /* -1 (each image's predicted class) without one */
    }
    if (rc == CLI_EXIT_OK) {
        rc = cli_cam_options(s, ev->model, &ev->cam, &ev->opts); /* --layers, --aug-smooth, ... */
    }
    if (s->faithfulness) {
        cli_faith_init(&ev->faith, ev->methods, ev->method_count, s->batch_size);
    }
    if (s->report) {
        eval_report_init(&ev->report, ev->methods[0]);
    }
    return rc;
}

int cli_run_evaluate(const cli_settings *s)
{
    evaluation ev;
    memset(&ev, 0, sizeof ev);
    ev.s = s;
    int rc = setup(&ev);
    cli_annotations annotations = {0};
    if (rc == CLI_EXIT_OK && s->boxes && !cli_annotations_load(s->command, s->boxes, &annotations)) {
        rc = CLI_EXIT_FAILURE;
    } else if (rc == CLI_EXIT_OK && !s->boxes && !cli_faith_list_images(s->command, s->image_dir, &annotations)) {
        rc = CLI_EXIT_FAILURE;
    }
    if (rc == CLI_EXIT_OK && s->shard_count) {
        size_t listed = cli_shard_keep_annotations(s, &annotations);
        printf("shard:     %u/%u: %zu of the %zu images listed (FNV-1a 64 of the name in --boxes, mod %u)\n",
               s->shard_index, s->shard_count, annotations.count, listed, s->shard_count);
    }
    if (rc == CLI_EXIT_OK) {
        cli_text_printf(&ev.csv, "file,label,predicted_class,confidence,method,peak_x,peak_y,pointing_hit,"
                                 "energy_in_box,status\n");
        size_t total = annotations.count;
        if (s->max_images && s->max_images < total) {
            total = s->max_images;
        }
        rc = evaluate_all(&ev, &annotations, total);
    }
    if (rc == CLI_EXIT_OK) {
        print_report(&ev);
        if (s->csv && !cli_save_text(s->command, s->csv, &ev.csv)) {
            rc = CLI_EXIT_FAILURE;
        } else if (s->csv) {
            printf("\nper-image results: %s\n", cli_name(s->csv));
        }
        if (s->report) {
            const char *layer = eval_layer(&ev);
            if (!eval_report_write(&ev.report, s, ev.model, layer, ev.labelled)) { /* it prints "report: PATH" */
                rc = CLI_EXIT_FAILURE;
            }
        }
        if (ev.failed || ev.faith.failed) {
            rc = CLI_EXIT_FAILURE;
        }
    }
    cli_annotations_free(&annotations);
    cli_text_free(&ev.csv);
    if (s->faithfulness && ev.faith.rows) {
        cli_faith_free(&ev.faith);
    }
    if (s->report) {
        eval_report_free(&ev.report);
    }
    cli_cam_options_free(&ev.cam);
    fx_model_free(ev.model);
    return rc;
}
