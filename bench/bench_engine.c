/* Times one mode of the engine on one model, in its own process so that the
 * peak RSS (getrusage) belongs to that mode alone.
 *   bench_engine MODEL MODE BATCH REPS
 * MODE: forward (plain no-grad TorchScript forward through the shim),
 * gradcam, gradcampp, both (Grad-CAM and Grad-CAM++ from one pass).
 * Prints: mode batch median_ms peak_rss_kib */
#include "engine_shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

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

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s MODEL forward|gradcam|gradcampp|both BATCH REPS\n", argv[0]);
        return 2;
    }
    const char *mode = argv[2];
    uint32_t batch = (uint32_t)atoi(argv[3]);
    int reps = atoi(argv[4]);
    fx_model_options mo;
    fx_model_options_init(&mo);
    mo.device = "cpu";
    fx_model *m = NULL;
    if (fx_model_load(argv[1], &mo, &m) != FX_OK) {
        fprintf(stderr, "%s\n", fx_last_error());
        return 1;
    }
    uint32_t w, h, c;
    fx_model_input_size(m, &w, &h, &c);
    fx_image *images = calloc(batch, sizeof *images);
    for (uint32_t i = 0; i < batch; i++) {
        fx_image_alloc(&images[i], w, h, 3, FX_PIXEL_U8);
        for (size_t j = 0; j < images[i].stride * h; j++)
            ((uint8_t *)images[i].data)[j] = (uint8_t)((j * 7 + i * 13) % 251);
    }
    int32_t methods[2] = {FX_CAM_GRADCAM, FX_CAM_GRADCAM_PLUSPLUS};
    fx_gradcam_options o;
    fx_gradcam_options_init(&o);
    o.batch_size = batch;
    o.methods = strcmp(mode, "gradcampp") == 0 ? methods + 1 : methods;
    o.method_count = strcmp(mode, "both") == 0 ? 2 : 1;
    float *input = calloc((size_t)batch * c * w * h, sizeof(float));
    double *t = calloc((size_t)reps + 1, sizeof *t);
    for (int r = 0; r <= reps; r++) { /* r == 0 warms up */
        double t0 = now_ms();
        fx_status st;
        if (strcmp(mode, "forward") == 0) {
            fx__shim_capture cap = {0};
            st = fx__shim_run(fx__model_shim(m), input, batch, NULL, NULL, NULL, &cap);
            fx__shim_capture_free(&cap);
        } else {
            fx_result *res = NULL;
            st = fx_gradcam_compute(m, images, batch, &o, &res);
            fx_result_free(res);
        }
        if (st != FX_OK) {
            fprintf(stderr, "%s\n", fx_last_error());
            return 1;
        }
        t[r] = now_ms() - t0;
    }
    qsort(t + 1, (size_t)reps, sizeof *t, compare);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%s %u %.1f %ld\n", mode, batch, t[1 + reps / 2], ru.ru_maxrss);
    fx_model_free(m);
    return 0;
}
