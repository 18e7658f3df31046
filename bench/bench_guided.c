/* Guided Grad-CAM against a plain no-grad forward of the same TorchScript
 * model (docs/performance.md, "Guided Backpropagation and Guided Grad-CAM").
 *
 *   bench_guided MODEL REPS [reverse]
 *
 * reverse: run the modes of each rep in reverse order (forward still first),
 * to see whether a mode's place in the rotation (memory left by the mode
 * before it) changes its time.
 * Batch 1. Modes, interleaved rep by rep so that the load of a shared
 * machine falls on all alike: forward (plain no-grad forward through the
 * shim, on an already preprocessed input), gradcam, guided-backprop,
 * guided-gradcam (the last three through fx_gradcam_compute: preprocessing,
 * passes, maps, saliency and their mapping to the image included). Prints
 * the medians and their ratios to the forward, of wall time and of the
 * process's CPU time (all threads): on a shared, overloaded machine the CPU
 * time is the steadier measure of the work done. */
#include "engine_shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MODE_FORWARD, MODE_GRADCAM, MODE_GUIDED_BACKPROP, MODE_GUIDED_GRADCAM, MODE_COUNT };
static const char *const mode_names[MODE_COUNT] = {"forward", "gradcam", "guided-backprop", "guided-gradcam"};
static const int32_t mode_methods[MODE_COUNT] = {-1, FX_CAM_GRADCAM, FX_CAM_GUIDED_BACKPROP, FX_CAM_GUIDED_GRADCAM};

static double now_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One call of a mode: its wall time in ms (returned; negative on error) and CPU time (*cpu). */
static double run_once(fx_model *model, const fx_image *image, const float *input, int mode, double *cpu)
{
    double t0 = now_ms(CLOCK_MONOTONIC), c0 = now_ms(CLOCK_PROCESS_CPUTIME_ID);
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
    *cpu = now_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
    return now_ms(CLOCK_MONOTONIC) - t0;
}

int main(int argc, char **argv)
{
    int reps = argc == 3 || argc == 4 ? atoi(argv[2]) : 0;
    int reverse = argc == 4 && strcmp(argv[3], "reverse") == 0;
    if (reps < 1 || (argc == 4 && !reverse)) {
        fprintf(stderr, "usage: %s MODEL REPS [reverse]\n", argv[0]);
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
    double *t = calloc((size_t)reps * MODE_COUNT, sizeof(double)), *cpu = calloc((size_t)reps * MODE_COUNT,
                                                                                 sizeof(double)), ignored;
    if (!input || !t || !cpu || fx_image_alloc(&image, w, h, 3, FX_PIXEL_U8) != FX_OK)
        return 1;
    for (size_t j = 0; j < image.stride * h; j++)
        ((uint8_t *)image.data)[j] = (uint8_t)((j * 7) % 251);
    int rc = 0;
    for (int m = 0; m < MODE_COUNT && rc == 0; m++) /* warm-up: first calls build graphs */
        rc = run_once(model, &image, input, m, &ignored) < 0;
    for (int r = 0; r < reps && rc == 0; r++)
        for (int i = 0; i < MODE_COUNT && rc == 0; i++) {
            int m = reverse && i ? MODE_COUNT - i : i;
            rc = (t[(size_t)m * reps + r] = run_once(model, &image, input, m, &cpu[(size_t)m * reps + r])) < 0;
        }
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        double *v = pass ? cpu : t, median[MODE_COUNT];
        for (int m = 0; m < MODE_COUNT; m++) {
            qsort(v + (size_t)m * reps, (size_t)reps, sizeof(double), compare);
            median[m] = v[(size_t)m * reps + reps / 2];
        }
        printf("%s: %ux%u batch 1, %d interleaved reps, median ms:", pass ? "cpu" : "wall", w, h, reps);
        for (int m = 0; m < MODE_COUNT; m++)
            printf("  %s %.1f", mode_names[m], median[m]);
        printf("\n%s ratios to forward:", pass ? "cpu" : "wall");
        for (int m = 1; m < MODE_COUNT; m++)
            printf("  %s %.3f", mode_names[m], median[m] / median[0]);
        printf("\n");
    }
    free(t);
    free(cpu);
    free(input);
    fx_image_free(&image);
    fx_model_free(model);
    return rc;
}
