/* Engine benchmark: Grad-CAM against a plain no-grad forward of the same
 * TorchScript model (docs/performance.md).
 *
 *   bench_engine MODEL BATCH REPS            times every mode, interleaved
 *   bench_engine MODEL BATCH REPS MODE       runs one mode, reports peak RSS
 *   bench_engine MODEL BATCH REPS load       only loads the model, reports peak RSS
 *
 * Modes: forward (plain no-grad TorchScript forward through the shim, on an
 * already preprocessed input), gradcam, gradcampp, both (Grad-CAM and
 * Grad-CAM++ from one pass; all three include preprocessing, the maps and
 * their upsampling to the input size).
 *
 * Timing interleaves the modes rep by rep (forward, gradcam, gradcampp, both,
 * forward, ...) so that the load of a shared machine falls on all of them
 * alike; the ratios of the medians are what docs/performance.md quotes. Peak
 * RSS needs one process per mode, since getrusage reports the process's peak. */
#include "engine_shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum { MODE_FORWARD, MODE_GRADCAM, MODE_GRADCAMPP, MODE_BOTH, MODE_COUNT };
static const char *const mode_names[MODE_COUNT] = {"forward", "gradcam", "gradcampp", "both"};
static const int32_t methods[2] = {FX_CAM_GRADCAM, FX_CAM_GRADCAM_PLUSPLUS};

struct bench {
    fx_model *model;
    uint32_t batch;
    fx_image *images;
    float *input; /* the forward mode's preprocessed batch */
};

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

static int mode_from_name(const char *name)
{
    for (int i = 0; i < MODE_COUNT; i++)
        if (strcmp(name, mode_names[i]) == 0)
            return i;
    return -1;
}

/* One call of a mode; returns its wall time in ms, or a negative value. */
static double run_once(const struct bench *b, int mode)
{
    double t0 = now_ms();
    fx_status st;
    if (mode == MODE_FORWARD) {
        fx__shim_capture cap = {0};
        st = fx__shim_forward(fx__model_shim(b->model), b->input, b->batch, NULL, 0, &cap);
        fx__shim_capture_free(&cap);
    } else {
        fx_gradcam_options o;
        fx_gradcam_options_init(&o);
        o.batch_size = b->batch;
        o.methods = mode == MODE_GRADCAMPP ? methods + 1 : methods;
        o.method_count = mode == MODE_BOTH ? 2 : 1;
        fx_result *res = NULL;
        st = fx_gradcam_compute(b->model, b->images, b->batch, &o, &res);
        fx_result_free(res);
    }
    if (st != FX_OK) {
        fprintf(stderr, "bench_engine: %s: %s\n", mode_names[mode], fx_last_error());
        return -1;
    }
    return now_ms() - t0;
}

static int setup(struct bench *b, const char *path, uint32_t batch)
{
    fx_model_options mo;
    fx_model_options_init(&mo);
    mo.device = "cpu";
    if (fx_model_load(path, &mo, &b->model) != FX_OK) {
        fprintf(stderr, "bench_engine: %s\n", fx_last_error());
        return -1;
    }
    uint32_t w, h, c;
    fx_model_input_size(b->model, &w, &h, &c);
    b->batch = batch;
    b->images = calloc(batch, sizeof *b->images);
    b->input = calloc((size_t)batch * c * w * h, sizeof(float));
    if (!b->images || !b->input)
        return -1;
    for (uint32_t i = 0; i < batch; i++) {
        if (fx_image_alloc(&b->images[i], w, h, 3, FX_PIXEL_U8) != FX_OK)
            return -1;
        for (size_t j = 0; j < b->images[i].stride * h; j++)
            ((uint8_t *)b->images[i].data)[j] = (uint8_t)((j * 7 + i * 13) % 251);
    }
    return 0;
}

static int time_interleaved(const struct bench *b, int reps)
{
    double *t[MODE_COUNT];
    for (int m = 0; m < MODE_COUNT; m++)
        if (!(t[m] = calloc((size_t)reps, sizeof(double))))
            return 1;
    for (int m = 0; m < MODE_COUNT; m++) /* warm-up: first calls build graphs */
        if (run_once(b, m) < 0)
            return 1;
    for (int r = 0; r < reps; r++)
        for (int m = 0; m < MODE_COUNT; m++)
            if ((t[m][r] = run_once(b, m)) < 0)
                return 1;
    double median[MODE_COUNT];
    for (int m = 0; m < MODE_COUNT; m++) {
        qsort(t[m], (size_t)reps, sizeof(double), compare);
        median[m] = t[m][reps / 2];
    }
    printf("batch %u, %d interleaved reps, median ms: forward %.1f  gradcam %.1f  gradcampp %.1f  both %.1f\n",
           b->batch, reps, median[0], median[1], median[2], median[3]);
    printf("ratios: gradcam/forward %.3f  gradcampp/gradcam %.3f  both/gradcam %.3f\n", median[1] / median[0],
           median[2] / median[1], median[3] / median[1]);
    for (int m = 0; m < MODE_COUNT; m++)
        free(t[m]);
    return 0;
}

static int peak_rss(const struct bench *b, int mode, int reps)
{
    for (int r = 0; r <= reps; r++)
        if (run_once(b, mode) < 0)
            return 1;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%s batch %u peak_rss_kib %ld\n", mode_names[mode], b->batch, ru.ru_maxrss);
    return 0;
}

int main(int argc, char **argv)
{
    int load_only = argc == 5 && strcmp(argv[4], "load") == 0;
    int mode = argc == 5 && !load_only ? mode_from_name(argv[4]) : -2;
    if ((argc != 4 && argc != 5) || mode == -1) {
        fprintf(stderr, "usage: %s MODEL BATCH REPS [forward|gradcam|gradcampp|both|load]\n", argv[0]);
        return 2;
    }
    int batch = atoi(argv[2]), reps = atoi(argv[3]);
    if (batch < 1 || reps < 1) {
        fprintf(stderr, "bench_engine: BATCH and REPS must be >= 1\n");
        return 2;
    }
    struct bench b = {0};
    if (setup(&b, argv[1], (uint32_t)batch) != 0)
        return 1;
    int rc = 0;
    if (load_only) { /* what fx_model_load alone costs (its probe forward included) */
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("load batch %u peak_rss_kib %ld\n", b.batch, ru.ru_maxrss);
    } else {
        rc = mode >= 0 ? peak_rss(&b, mode, reps) : time_interleaved(&b, reps);
    }
    for (uint32_t i = 0; i < b.batch; i++)
        fx_image_free(&b.images[i]);
    free(b.images);
    free(b.input);
    fx_model_free(b.model);
    return rc;
}
