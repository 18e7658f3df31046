/* Gradient-free methods benchmark (docs/performance.md, "Gradient-free
 * methods"): Score-CAM against the plain forwards it cannot avoid, Eigen-CAM
 * against one plain forward, and Score-CAM's peak memory.
 *
 *   bench_methods MODEL scorecam B REPS   Score-CAM of one image, channel batch B,
 *                                         against channels / B plain forwards of
 *                                         batch B; order P S P S P ... (each S
 *                                         between two P), ratios of the sums
 *   bench_methods MODEL eigencam REPS     Eigen-CAM of one image against one plain
 *                                         forward of batch 1, interleaved, medians
 *   bench_methods MODEL rss B scorecam    peak RSS of one Score-CAM at channel batch B
 *   bench_methods MODEL rss B forward     peak RSS of one plain forward of batch B
 *
 * The target layer is the model's default (DenseNet-121: "features", whose
 * output is norm5's, 1024 channels). Plain forwards go through the shim with
 * no layer (fx__shim_forward), the same executor settings Score-CAM's own
 * forwards run with, on a preprocessed random batch; Score-CAM and Eigen-CAM
 * are whole fx_gradcam_compute calls (preprocessing, the capture forward, the
 * maps and their upsampling included). Peak RSS needs one process per case:
 * getrusage reports the process's peak. */
#include "engine_shim.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct bench {
    fx_model *model;
    fx_image image;     /* one 8-bit RGB image at the input size */
    float *input;       /* a preprocessed batch of `batch` random inputs */
    uint32_t batch;     /* plain forward batch = Score-CAM channel batch */
    uint32_t channels;  /* of the default layer */
    const char *layer;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static long peak_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* count plain no-grad forwards of n inputs; wall seconds, or < 0. */
static double plain_forwards(const struct bench *b, uint32_t n, uint32_t count)
{
    double t0 = now_s();
    for (uint32_t i = 0; i < count; i++) {
        fx__shim_capture cap = {0};
        fx_status st = fx__shim_forward(fx__model_shim(b->model), b->input, n, NULL, 0, &cap);
        fx__shim_capture_free(&cap);
        if (st != FX_OK) {
            fprintf(stderr, "bench_methods: forward: %s\n", fx_last_error());
            return -1;
        }
    }
    return now_s() - t0;
}

/* One fx_gradcam_compute of method on the image; wall seconds, or < 0. */
static double one_method(const struct bench *b, int32_t method)
{
    fx_gradcam_options o;
    fx_gradcam_options_init(&o);
    o.methods = &method;
    o.method_count = 1;
    o.channel_batch_size = b->batch;
    fx_result *res = NULL;
    double t0 = now_s();
    fx_status st = fx_gradcam_compute(b->model, &b->image, 1, &o, &res);
    double t = now_s() - t0;
    fx_result_free(res);
    if (st != FX_OK) {
        fprintf(stderr, "bench_methods: %s: %s\n", fx_cam_method_name(method), fx_last_error());
        return -1;
    }
    return t;
}

static int setup(struct bench *b, const char *path, uint32_t batch)
{
    fx_model_options mo;
    fx_model_options_init(&mo);
    mo.device = "cpu";
    if (fx_model_load(path, &mo, &b->model) != FX_OK) {
        fprintf(stderr, "bench_methods: %s\n", fx_last_error());
        return -1;
    }
    uint32_t w, h, c;
    fx_model_input_size(b->model, &w, &h, &c);
    b->batch = batch;
    b->layer = fx_model_default_layer(b->model);
    for (size_t i = 0; b->layer && i < fx_model_layer_count(b->model); i++) {
        fx_layer_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        if (fx_model_layer(b->model, i, &info) == FX_OK && strcmp(info.name, b->layer) == 0)
            b->channels = (uint32_t)info.shape[1];
    }
    if (!b->channels) {
        fprintf(stderr, "bench_methods: the model has no default layer with channels\n");
        return -1;
    }
    size_t size = (size_t)batch * c * w * h;
    b->input = malloc(size * sizeof(float));
    if (!b->input || fx_image_alloc(&b->image, w, h, 3, FX_PIXEL_U8) != FX_OK)
        return -1;
    srand(1);
    for (size_t j = 0; j < size; j++) /* about the range of ImageNet-normalized pixels */
        b->input[j] = 4.0f * (float)rand() / (float)RAND_MAX - 2.0f;
    for (size_t j = 0; j < b->image.stride * h; j++)
        ((uint8_t *)b->image.data)[j] = (uint8_t)((j * 7) % 251);
    return 0;
}

static void print_header(const struct bench *b)
{
    printf("layer %s, %u channels, batch %u\n", b->layer, b->channels, b->batch);
}

/* P S P S ... P: each Score-CAM sits between two baselines, so that a drift
 * in the machine's load falls on both alike. */
static int time_scorecam(const struct bench *b, int reps)
{
    uint32_t forwards = (b->channels + b->batch - 1) / b->batch;
    print_header(b);
    /* warm-up: the first calls build the graphs and touch the allocator */
    if (plain_forwards(b, b->batch, 1) < 0 || one_method(b, FX_CAM_EIGENCAM) < 0)
        return 1;
    double plain_sum = 0, score_sum = 0;
    double prev = plain_forwards(b, b->batch, forwards);
    if (prev < 0)
        return 1;
    printf("plain %u x batch %u: %.2f s\n", forwards, b->batch, prev);
    for (int r = 0; r < reps; r++) {
        double s = one_method(b, FX_CAM_SCORECAM);
        double next = plain_forwards(b, b->batch, forwards);
        if (s < 0 || next < 0)
            return 1;
        printf("scorecam channel batch %u: %.2f s\nplain %u x batch %u: %.2f s   ratio %.3f\n", b->batch, s,
               forwards, b->batch, next, s / ((prev + next) / 2));
        fflush(stdout);
        score_sum += s;
        plain_sum += (prev + next) / 2;
        prev = next;
    }
    printf("RESULT scorecam B=%u: %.2f s vs %u plain forwards of %u: %.2f s  ratio %.3f (target <= 1.1)\n",
           b->batch, score_sum / reps, forwards, b->batch, plain_sum / reps, score_sum / plain_sum);
    return 0;
}

static int time_eigencam(const struct bench *b, int reps)
{
    double *t[2];
    print_header(b);
    for (int m = 0; m < 2; m++)
        if (!(t[m] = calloc((size_t)reps, sizeof(double))))
            return 1;
    if (plain_forwards(b, 1, 1) < 0 || one_method(b, FX_CAM_EIGENCAM) < 0)
        return 1;
    for (int r = 0; r < reps; r++)
        if ((t[0][r] = plain_forwards(b, 1, 1)) < 0 || (t[1][r] = one_method(b, FX_CAM_EIGENCAM)) < 0)
            return 1;
    for (int m = 0; m < 2; m++)
        qsort(t[m], (size_t)reps, sizeof(double), compare);
    printf("RESULT eigencam: %d interleaved reps, median %.1f ms vs plain forward of 1: %.1f ms  ratio %.3f "
           "(target <= 1.1)\n",
           reps, 1e3 * t[1][reps / 2], 1e3 * t[0][reps / 2], t[1][reps / 2] / t[0][reps / 2]);
    free(t[0]);
    free(t[1]);
    return 0;
}

static int rss(const struct bench *b, const char *what)
{
    double t;
    if (strcmp(what, "scorecam") == 0)
        t = one_method(b, FX_CAM_SCORECAM);
    else if (strcmp(what, "forward") == 0)
        t = plain_forwards(b, b->batch, 2);
    else
        return 2;
    if (t < 0)
        return 1;
    printf("RESULT rss %s B=%u (%u channels): peak_rss_kib %ld\n", what, b->batch, b->channels, peak_rss_kib());
    return 0;
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s MODEL scorecam B REPS | MODEL eigencam REPS | MODEL rss B scorecam|forward\n", argv0);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return usage(argv[0]);
    const char *mode = argv[2];
    int a = atoi(argv[3]), c = argc > 4 ? atoi(argv[4]) : 0;
    bool score = strcmp(mode, "scorecam") == 0 && argc == 5 && a > 0 && c > 0;
    bool eigen = strcmp(mode, "eigencam") == 0 && argc == 4 && a > 0;
    bool memory = strcmp(mode, "rss") == 0 && argc == 5 && a > 0;
    if (!score && !eigen && !memory)
        return usage(argv[0]);
    struct bench b = {0};
    if (setup(&b, argv[1], eigen ? 1 : (uint32_t)a) != 0)
        return 1;
    int rc = score ? time_scorecam(&b, c) : eigen ? time_eigencam(&b, a) : rss(&b, argv[4]);
    if (rc == 2)
        usage(argv[0]);
    fx_image_free(&b.image);
    free(b.input);
    fx_model_free(b.model);
    return rc;
}
