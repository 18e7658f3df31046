/* fxcam evaluate: classification accuracy, and how well the heatmaps point at
 * annotated boxes (pointing game, energy in box), per method; with
 * --faithfulness also how faithful each map is to the model (faithfulness.h),
 * which needs no boxes. */
#include "annotations.h"
#include "faithfulness.h"
#include "report.h"
#include "shard.h"

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
} evaluation;

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

/* Evaluates annotations [first, first + n). Returns CLI_EXIT_OK, or the exit
 * status of an error that would fail every image (wrong layer). */
static int evaluate_chunk(evaluation *ev, const cli_annotation *items, size_t n)
{
    fx_image *images = calloc(n, sizeof *images);
    /* what the loader found out about each image (bits stored): the
     * intensity rule of the pass, the figures and the faithfulness copies */
    fx_image_info *infos = calloc(n, sizeof *infos);
    const cli_annotation **loaded = calloc(n, sizeof *loaded);
    if (!images || !infos || !loaded) {
        exit(CLI_EXIT_FAILURE);
    }
    size_t count = 0;
    for (size_t k = 0; k < n; k++) {
        /* Only files inside --image-dir are read: a boxes.csv from elsewhere
         * must not make fxcam open (and quote the first bytes of) other files. */
        if (!cli_is_inside_name(items[k].file)) {
            record_failure(ev, &items[k], "refused",
                           "the name is an absolute path or contains '..'; boxes.csv names files relative to "
                           "--image-dir, inside it");
            continue;
        }
        char *path = cli_strdup_printf("%s/%s", ev->s->image_dir, items[k].file);
        const char *why = NULL;
        char misplaced[256];
        if (cli_load_image_info(ev->s, path, &images[count], &infos[count], &why) == FX_OK) {
            if (cli_boxes_check_fit(ev->s->command, &items[k], images[count].width, images[count].height, misplaced,
                                    sizeof misplaced)) {
                loaded[count++] = &items[k];
            } else {
                fx_image_free(&images[count]);
                memset(&images[count], 0, sizeof images[count]);
                record_failure(ev, &items[k], "refused", misplaced);
            }
        } else {
            record_failure(ev, &items[k], "cannot read the image", why);
        }
        free(path);
    }
    int rc = CLI_EXIT_OK;
    fx_result *result = NULL;
    fx_gradcam_options opts = ev->opts;
    opts.image_info = infos;
    fx_status status = count ? fx_gradcam_compute(ev->model, images, count, &opts, &result) : FX_OK;
    if (status == FX_ERR_LAYER || status == FX_ERR_DEVICE) {
        rc = cli_compute_failed(ev->s->command, status);
    } else if (status == FX_OK) {
        cli_warn_result(result, -1, NULL, NULL);
        for (size_t k = 0; k < count; k++) {
            cli_warn_result(result, (int64_t)k, loaded[k]->file, NULL);
            score_image(ev, loaded[k], result, k);
            if (ev->s->report) {
                eval_report_add(&ev->report, ev->s, ev->model, &images[k], &infos[k], result, k, loaded[k]);
            }
            if (ev->s->faithfulness) {
                cli_faith_add(&ev->faith, ev->s, ev->model, &images[k], &infos[k], result, k, loaded[k]->file);
            }
        }
    } else {
        for (size_t k = 0; k < count; k++) {
            fx_result *one = NULL;
            opts.image_info = &infos[k];
            if (fx_gradcam_compute(ev->model, &images[k], 1, &opts, &one) == FX_OK) {
                cli_warn_result(one, CLI_ALL_IMAGES, loaded[k]->file, NULL);
                score_image(ev, loaded[k], one, 0);
                if (ev->s->report) {
                    eval_report_add(&ev->report, ev->s, ev->model, &images[k], &infos[k], one, 0, loaded[k]);
                }
                if (ev->s->faithfulness) {
                    cli_faith_add(&ev->faith, ev->s, ev->model, &images[k], &infos[k], one, 0, loaded[k]->file);
                }
            } else {
                record_failure(ev, loaded[k], "cannot compute the heatmaps", fx_last_error());
            }
            fx_result_free(one);
        }
    }
    fx_result_free(result);
    for (size_t k = 0; k < count; k++) {
        fx_image_free(&images[k]);
    }
    free(images);
    free(infos);
    free(loaded);
    return rc;
}

static void print_report(const evaluation *ev)
{
    printf("images:    %zu evaluated, %zu failed; %zu with boxes\n", ev->images, ev->failed, ev->boxed);
    if (!ev->labelled) {
        printf("accuracy:  - (no --boxes: no labels)\n");
        printf("maps of %s%s%s, layer %s\n", ev->opts.target_class >= 0 ? "class '" : "each image's predicted class",
               ev->opts.target_class >= 0 ? fx_model_class_name(ev->model, (uint32_t)ev->opts.target_class) : "",
               ev->opts.target_class >= 0 ? "'" : "", ev->opts.layer ? ev->opts.layer : fx_model_default_layer(ev->model));
        cli_faith_print(&ev->faith, ev->model, ev->opts.target_class);
        return;
    }
    const char *positive = fx_model_class_name(ev->model, (uint32_t)ev->positive);
    printf("accuracy:  %.2f%% (%zu/%zu; label 1 = %s)\n", ev->images ? 100.0 * (double)ev->correct / (double)ev->images : 0.0,
           ev->correct, ev->images, positive);
    printf("maps of class '%s', layer %s\n\n", fx_model_class_name(ev->model, (uint32_t)ev->opts.target_class),
           ev->opts.layer ? ev->opts.layer : fx_model_default_layer(ev->model));
    printf("%-12s %-22s %s\n", "method", "pointing game", "energy in box (mean)");
    for (uint32_t j = 0; j < ev->method_count; j++) {
        char hits[64];
        if (ev->boxed) {
            snprintf(hits, sizeof hits, "%.2f%% (%zu/%zu)", 100.0 * (double)ev->scores[j].hits / (double)ev->boxed,
                     ev->scores[j].hits, ev->boxed);
            printf("%-12s %-22s %.4f\n", fx_cam_method_name(ev->methods[j]), hits,
                   ev->scores[j].energy / (double)ev->boxed);
        } else {
            printf("%-12s %-22s %s\n", fx_cam_method_name(ev->methods[j]), "- (no boxes)", "-");
        }
    }
    if (ev->s->faithfulness) {
        cli_faith_print(&ev->faith, ev->model, ev->opts.target_class);
    }
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
    if (ev->opts.target_class < 0) {
        ev->opts.target_class = ev->positive; /* -1 (each image's predicted class) without one */
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
        cli_progress progress;
        cli_progress_start(&progress, stderr, total);
        for (size_t first = 0; first < total && rc == CLI_EXIT_OK; first += s->batch_size) {
            size_t n = total - first < s->batch_size ? total - first : s->batch_size;
            rc = evaluate_chunk(&ev, annotations.items + first, n);
            if (progress.terminal) {
                for (size_t k = 0; k < n; k++) {
                    cli_progress_step(&progress, annotations.items[first + k].file, "", false);
                }
            }
        }
        cli_progress_finish(&progress);
    }
    if (rc == CLI_EXIT_OK) {
        print_report(&ev);
        if (s->csv && !cli_save_text(s->command, s->csv, &ev.csv)) {
            rc = CLI_EXIT_FAILURE;
        } else if (s->csv) {
            printf("\nper-image results: %s\n", cli_name(s->csv));
        }
        if (s->report) {
            const char *layer = ev.opts.layer ? ev.opts.layer : fx_model_default_layer(ev.model);
            if (eval_report_write(&ev.report, s, ev.model, layer, ev.labelled)) {
                char *page = report_file_name(s);
                printf("report:    %s/%s\n", cli_name(s->output_dir), cli_name(page));
                free(page);
            } else {
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
    fx_model_free(ev.model);
    return rc;
}
