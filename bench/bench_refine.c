/* aug_smooth against plain Grad-CAM (docs/performance.md, "Refinements"):
 *
 *   bench_refine MODEL BATCH REPS [THREADS]   (THREADS: libtorch intra-op threads, default all CPUs)
 *
 * Times Grad-CAM and Grad-CAM with aug_smooth (FX__AUG_COUNT = 6 runs) on
 * the same images, interleaved rep by rep so that the load of a shared
 * machine falls on both alike, and prints the medians and the ratio
 * aug / (6 x gradcam), which issue 11 bounds by 1.1. Both include
 * preprocessing, the maps and their upsampling to the image size. The
 * process CPU time (all threads) of each call is reported beside the wall
 * time: on a machine shared with other work it measures the work itself. */
#include "engine_shim.h"
#include "cam_refine.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double run_once(fx_model *model, const fx_image *images, uint32_t batch, int aug, double *cpu)
{
    fx_gradcam_options o;
    fx_gradcam_options_init(&o);
    o.batch_size = batch;
    o.aug_smooth = aug;
    fx_result *res = NULL;
    double t0 = now_ms(), c0 = cpu_ms();
    fx_status st = fx_gradcam_compute(model, images, batch, &o, &res);
    double t = now_ms() - t0;
    *cpu = cpu_ms() - c0;
    fx_result_free(res);
    if (st != FX_OK) {
        fprintf(stderr, "bench_refine: %s\n", fx_last_error());
        return -1.0;
    }
    return t;
}

int main(int argc, char **argv)
{
    if ((argc != 4 && argc != 5) || atoi(argv[2]) < 1 || atoi(argv[3]) < 1) {
        fprintf(stderr, "usage: %s MODEL BATCH REPS [THREADS]\n", argv[0]);
        return 2;
    }
    uint32_t batch = (uint32_t)atoi(argv[2]);
    int reps = atoi(argv[3]);
    fx_model_options mo;
    fx_model_options_init(&mo);
    mo.device = "cpu";
    mo.threads = argc == 5 ? atoi(argv[4]) : 0;
    fx_model *model = NULL;
    if (fx_model_load(argv[1], &mo, &model) != FX_OK) {
        fprintf(stderr, "bench_refine: %s\n", fx_last_error());
        return 1;
    }
    uint32_t w, h, c;
    fx_model_input_size(model, &w, &h, &c);
    fx_image *images = calloc(batch, sizeof *images);
    double *t[2] = {calloc((size_t)reps, sizeof(double)), calloc((size_t)reps, sizeof(double))};
    double *cpu_t[2] = {calloc((size_t)reps, sizeof(double)), calloc((size_t)reps, sizeof(double))}, ignored;
    if (!images || !t[0] || !t[1] || !cpu_t[0] || !cpu_t[1])
        return 1;
    for (uint32_t i = 0; i < batch; i++) {
        if (fx_image_alloc(&images[i], w, h, 3, FX_PIXEL_U8) != FX_OK)
            return 1;
        for (size_t j = 0; j < images[i].stride * h; j++)
            ((uint8_t *)images[i].data)[j] = (uint8_t)((j * 7 + i * 13) % 251);
    }
    int rc = 0;
    for (int aug = 0; aug < 2 && rc == 0; aug++) /* warm-up: first calls build graphs */
        rc = run_once(model, images, batch, aug, &ignored) < 0;
    for (int r = 0; r < reps && rc == 0; r++)
        for (int aug = 0; aug < 2 && rc == 0; aug++)
            rc = (t[aug][r] = run_once(model, images, batch, aug, &cpu_t[aug][r])) < 0;
    if (rc == 0) {
        for (int aug = 0; aug < 2; aug++) {
            qsort(t[aug], (size_t)reps, sizeof(double), compare);
            qsort(cpu_t[aug], (size_t)reps, sizeof(double), compare);
        }
        double g = t[0][reps / 2], a = t[1][reps / 2], gc = cpu_t[0][reps / 2], ac = cpu_t[1][reps / 2];
        printf("batch %u, %d interleaved reps, median ms: gradcam %.1f  aug_smooth %.1f (%d runs); CPU ms: "
               "gradcam %.1f  aug_smooth %.1f\n", batch, reps, g, a, FX__AUG_COUNT, gc, ac);
        printf("ratio aug_smooth / (%d x gradcam): wall %.3f  CPU %.3f\n", FX__AUG_COUNT, a / (FX__AUG_COUNT * g),
               ac / (FX__AUG_COUNT * gc));
    }
    for (uint32_t i = 0; i < batch; i++)
        fx_image_free(&images[i]);
    free(images);
    free(t[0]);
    free(t[1]);
    free(cpu_t[0]);
    free(cpu_t[1]);
    fx_model_free(model);
    return rc;
}
