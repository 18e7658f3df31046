/* Guided Grad-CAM against a plain no-grad forward of the same TorchScript
 * model (docs/performance.md, "Guided Backpropagation and Guided Grad-CAM").
 *
 *   bench_guided MODEL REPS
 *
 * Batch 1. Modes, interleaved rep by rep so that the load of a shared
 * machine falls on all alike: forward (plain no-grad forward through the
 * shim, on an already preprocessed input), gradcam, guided-backprop,
 * guided-gradcam (the last three through fx_gradcam_compute: preprocessing,
 * passes, maps, saliency and their mapping to the image included). Prints
 * the medians and their ratios to the forward. */
#include "engine_shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MODE_FORWARD, MODE_GRADCAM, MODE_GUIDED_BACKPROP, MODE_GUIDED_GRADCAM, MODE_COUNT };
static const char *const mode_names[MODE_COUNT] = {"forward", "gradcam", "guided-backprop", "guided-gradcam"};
static const int32_t mode_methods[MODE_COUNT] = {-1, FX_CAM_GRADCAM, FX_CAM_GUIDED_BACKPROP, FX_CAM_GUIDED_GRADCAM};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double run_once(fx_model *model, const fx_image *image, const float *input, int mode)
{
    double t0 = now_ms();
    fx_status st;
    if (mode == MODE_FORWARD) {
        fx__shim_capture cap = {0};
        st = fx__shim_forward(fx__model_shim(model), input, 1, NULL, 0, &cap);
        fx__shim_capture_free(&cap);
    } else {
        fx_gradcam_options o;
        fx_gradcam_options_init(&o);
        o.methods = &mode_methods[mode];
        o.method_count = 1;
        fx_result *res = NULL;
        st = fx_gradcam_compute(model, image, 1, &o, &res);
        fx_result_free(res);
    }
    if (st != FX_OK) {
        fprintf(stderr, "bench_guided: %s: %s\n", mode_names[mode], fx_last_error());
        return -1;
    }
    return now_ms() - t0;
}

int main(int argc, char **argv)
{
    int reps = argc == 3 ? atoi(argv[2]) : 0;
    if (reps < 1) {
        fprintf(stderr, "usage: %s MODEL REPS\n", argv[0]);
        return 2;
    }
    fx_model_options mo;
    fx_model_options_init(&mo);
    mo.device = "cpu";
    fx_model *model = NULL;
    if (fx_model_load(argv[1], &mo, &model) != FX_OK) {
        fprintf(stderr, "bench_guided: %s\n", fx_last_error());
        return 1;
    }
    uint32_t w, h, c;
    fx_model_input_size(model, &w, &h, &c);
    fx_image image = {0};
    float *input = calloc((size_t)c * w * h, sizeof(float));
    double *t = calloc((size_t)reps * MODE_COUNT, sizeof(double));
    if (!input || !t || fx_image_alloc(&image, w, h, 3, FX_PIXEL_U8) != FX_OK)
        return 1;
    for (size_t j = 0; j < image.stride * h; j++)
        ((uint8_t *)image.data)[j] = (uint8_t)((j * 7) % 251);
    int rc = 0;
    for (int m = 0; m < MODE_COUNT && rc == 0; m++) /* warm-up: first calls build graphs */
        rc = run_once(model, &image, input, m) < 0;
    for (int r = 0; r < reps && rc == 0; r++)
        for (int m = 0; m < MODE_COUNT && rc == 0; m++)
            rc = (t[(size_t)m * reps + r] = run_once(model, &image, input, m)) < 0;
    if (rc == 0) {
        double median[MODE_COUNT];
        for (int m = 0; m < MODE_COUNT; m++) {
            qsort(t + (size_t)m * reps, (size_t)reps, sizeof(double), compare);
            median[m] = t[(size_t)m * reps + reps / 2];
        }
        printf("%ux%u batch 1, %d interleaved reps, median ms:", w, h, reps);
        for (int m = 0; m < MODE_COUNT; m++)
            printf("  %s %.1f", mode_names[m], median[m]);
        printf("\nratios to forward:");
        for (int m = 1; m < MODE_COUNT; m++)
            printf("  %s %.3f", mode_names[m], median[m] / median[0]);
        printf("\n");
    }
    free(t);
    free(input);
    fx_image_free(&image);
    fx_model_free(model);
    return rc;
}
