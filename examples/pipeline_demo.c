/*
 * The pure-C half of fxcam on a synthetic case, from the public API only:
 * a 16-bit "radiograph" (a long bone with a lucent fracture line), activations
 * and gradients of a pretend target layer that respond to the fracture, the
 * Grad-CAM and Grad-CAM++ maps, and the figures fxcam writes.
 *
 * Usage: pipeline_demo [output-dir]    (default: ./fxcam-demo)
 */
#include <fxcam.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define IMG_W 384
#define IMG_H 384
#define FEAT_K 8
#define FEAT_H 12
#define FEAT_W 12

static int fail(const char *what, fx_status st)
{
    fprintf(stderr, "pipeline_demo: %s failed: %s\n  %s\n", what, fx_status_str(st), fx_last_error());
    return 1;
}

/* A diagonal bone: bright cortex, darker medullary canal, soft tissue around,
 * and a thin dark fracture line across it near (fx, fy). 12-bit values. */
static void draw_radiograph(fx_image *img, double fx, double fy)
{
    for (uint32_t y = 0; y < img->height; y++) {
        uint16_t *row = (uint16_t *)((uint8_t *)img->data + y * img->stride);
        for (uint32_t x = 0; x < img->width; x++) {
            double u = ((double)x - 0.3 * y - 60.0);     /* distance across the bone axis */
            double along = (y + 0.3 * x) / 1.044; /* position along the axis */
            double dx = (double)x - 192.0;
            double v = 600.0 + 300.0 * exp(-dx * dx / 40000.0);
            double d = fabs(u - 130.0);
            if (d < 45.0)
                v += d > 28.0 ? 2600.0 : 1500.0; /* cortex, then canal */
            double gap = fabs(along - (fy + 0.3 * fx) / 1.044 + 0.15 * (u - (fx - 0.3 * fy - 60.0)));
            if (d < 45.0 && gap < 2.0)
                v -= 1400.0;                     /* lucent fracture line */
            v += 40.0 * sin(x * 0.37) * cos(y * 0.23); /* texture */
            row[x] = (uint16_t)(v < 0 ? 0 : v > 4095 ? 4095 : v);
        }
    }
}

/* Activations peaking near the fracture in a few channels, noise in others,
 * and gradients that favour the responsive channels. */
static void make_features(float *acts, float *grads, double fx, double fy)
{
    double cx = fx / IMG_W * FEAT_W - 0.5, cy = fy / IMG_H * FEAT_H - 0.5;
    for (int k = 0; k < FEAT_K; k++)
        for (int y = 0; y < FEAT_H; y++)
            for (int x = 0; x < FEAT_W; x++) {
                size_t i = ((size_t)k * FEAT_H + y) * FEAT_W + x;
                double r2 = (x - cx - 0.4 * k) * (x - cx - 0.4 * k) + (y - cy) * (y - cy);
                acts[i] = (float)((k < 4 ? 3.0 * exp(-r2 / 3.0) : 0.0) + 0.2 * ((x * 7 + y * 3 + k) % 5) / 5.0);
                grads[i] = (float)(k < 4 ? 0.02 * (1 + k) : -0.01);
            }
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "fxcam-demo";
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "pipeline_demo: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    const double fx = 230, fy = 200; /* fracture position in pixels */
    fx_image radiograph = {0};
    fx_status st = fx_image_alloc(&radiograph, IMG_W, IMG_H, 1, FX_PIXEL_U16);
    if (st != FX_OK)
        return fail("fx_image_alloc", st);
    draw_radiograph(&radiograph, fx, fy);

    static float acts[FEAT_K * FEAT_H * FEAT_W], grads[FEAT_K * FEAT_H * FEAT_W];
    static float lowres[2][FEAT_H * FEAT_W];
    make_features(acts, grads, fx, fy);
    fx_image maps[2] = {{.width = IMG_W, .height = IMG_H}, {.width = IMG_W, .height = IMG_H}};
    const int32_t methods[2] = {FX_CAM_GRADCAM, FX_CAM_GRADCAM_PLUSPLUS};
    for (int m = 0; m < 2; m++) {
        if ((st = fx_cam_lowres(methods[m], acts, grads, 1, FEAT_K, FEAT_H, FEAT_W, lowres[m])) != FX_OK)
            return fail("fx_cam_lowres", st);
        if ((st = fx_cam_upsample(lowres[m], FEAT_H, FEAT_W, 1, &maps[m])) != FX_OK)
            return fail("fx_cam_upsample", st);
    }

    fx_figure_options fig;
    fx_figure_options_init(&fig);
    fig.label = "fracture (synthetic)";
    fig.confidence = 0.934f;
    fig.method = "Grad-CAM";
    fig.layer = "features (synthetic)";
    fx_image figure = {0}, compare = {0};
    char path[4096];
    if ((st = fx_figure_compose(&radiograph, &maps[0], &fig, &figure)) != FX_OK)
        return fail("fx_figure_compose", st);
    snprintf(path, sizeof path, "%s/pipeline_figure.png", dir);
    if ((st = fx_image_save(path, &figure, NULL)) != FX_OK)
        return fail("fx_image_save", st);
    printf("wrote %s (%ux%u)\n", path, figure.width, figure.height);

    if ((st = fx_figure_compare(&radiograph, &maps[0], "Grad-CAM", &maps[1], "Grad-CAM++", &fig, &compare)) != FX_OK)
        return fail("fx_figure_compare", st);
    snprintf(path, sizeof path, "%s/pipeline_compare.png", dir);
    if ((st = fx_image_save(path, &compare, NULL)) != FX_OK)
        return fail("fx_image_save", st);
    printf("wrote %s (%ux%u)\n", path, compare.width, compare.height);

    fx_image_free(&figure);
    fx_image_free(&compare);
    fx_image_free(&maps[0]);
    fx_image_free(&maps[1]);
    fx_image_free(&radiograph);
    return 0;
}
