/* Guided Backpropagation (Springenberg et al. 2015) and Guided Grad-CAM
 * (Selvaraju et al. 2017, section 3): the engine's calls around the guided
 * shim pass (shim/shim_guided.cpp) and the saliency math. Conventions and
 * formulas: docs/algorithms.md, "Guided Backpropagation and Guided Grad-CAM". */
#include "guided.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void fx__guided_deprocess(const float *x, size_t count, float *out)
{
    double sum = 0.0, sq = 0.0;
    for (size_t e = 0; e < count; e++)
        sum += x[e];
    double mean = count ? sum / (double)count : 0.0;
    for (size_t e = 0; e < count; e++)
        sq += ((double)x[e] - mean) * ((double)x[e] - mean);
    double scale = 0.1 / (sqrt(count ? sq / (double)count : 0.0) + 1e-5);
    for (size_t e = 0; e < count; e++) {
        double v = ((double)x[e] - mean) * scale + 0.5;
        out[e] = (float)(v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v);
    }
}

fx_status fx__guided_product(int32_t method, const float *gb, uint32_t c, uint32_t h, uint32_t w,
                             const float *cam_lowres, uint32_t cam_h, uint32_t cam_w, float *out)
{
    size_t hw = (size_t)h * w;
    if (method == FX_CAM_GUIDED_BACKPROP) {
        memmove(out, gb, (size_t)c * hw * sizeof(float));
        return FX_OK;
    }
    if (method != FX_CAM_GUIDED_GRADCAM || !cam_lowres)
        return fx__error(FX_ERR_INTERNAL, "fx__guided_product: method %d is not a guided method", (int)method);
    fx_image cam = {.width = w, .height = h};
    fx_status st = fx_cam_upsample(cam_lowres, cam_h, cam_w, 1, &cam);
    if (st != FX_OK)
        return st;
    for (uint32_t y = 0; y < h; y++) {
        const float *row = (const float *)(const void *)fx__row(&cam, y);
        for (uint32_t ch = 0; ch < c; ch++)
            for (uint32_t x = 0; x < w; x++) {
                size_t e = (size_t)ch * hw + (size_t)y * w + x;
                out[e] = gb[e] * row[x];
            }
    }
    fx_image_free(&cam);
    return FX_OK;
}

void fx__guided_magnitude(const float *p, uint32_t c, uint32_t h, uint32_t w, float *out)
{
    size_t hw = (size_t)h * w;
    for (size_t e = 0; e < hw; e++) {
        float m = 0.0f;
        for (uint32_t ch = 0; ch < c; ch++)
            m = fmaxf(m, fabsf(p[(size_t)ch * hw + e]));
        out[e] = m;
    }
}

fx_status fx__guided_forward(fx__shim_model *shim, const float *input, uint32_t n, const char *layer, uint32_t needs,
                             uint32_t flags, fx__shim_capture *cap, fx__shim_guided **guided)
{
    *guided = NULL;
    if (!(needs & FX_CAM_NEEDS_INPUT_GRADIENTS))
        return fx__shim_forward(shim, input, n, layer, flags, cap);
    if (!(flags & FX__FORWARD_CHANNELS))
        return fx__shim_guided_forward(shim, input, n, layer, cap, guided);
    fx_status st = fx__shim_forward(shim, input, n, layer, flags, cap);
    if (st == FX_OK)
        st = fx__shim_guided_forward(shim, input, n, layer, NULL, guided);
    return st;
}

fx_status fx__guided_backward(fx__shim_capture *cap, fx__shim_guided *guided, const float *weights, uint32_t needs)
{
    if (!guided)
        return needs & FX_CAM_NEEDS_GRADIENTS ? fx__shim_backward(cap, weights) : FX_OK;
    /* With channel passes the plain forward kept its own graph for the layer. */
    if (cap->pass) {
        fx_status st = needs & FX_CAM_NEEDS_GRADIENTS ? fx__shim_backward(cap, weights) : FX_OK;
        return st == FX_OK ? fx__shim_guided_backward(guided, weights, NULL) : st;
    }
    return fx__shim_guided_backward(guided, weights, cap);
}

/* A c-plane map at the model input size into the image's geometry: each plane
 * as heatmaps are mapped (fx__map_to_image, not normalized), interleaved. */
static fx_status planes_to_image(const float *planes, uint32_t c, uint32_t h, uint32_t w, const fx__geometry *g,
                                 uint32_t image_w, uint32_t image_h, fx_image *out)
{
    fx_status st = fx_image_alloc(out, image_w, image_h, c, FX_PIXEL_F32);
    for (uint32_t ch = 0; ch < c && st == FX_OK; ch++) {
        fx_image plane = {0};
        st = fx__map_to_image(planes + (size_t)ch * h * w, h, w, g, image_w, image_h, 0, &plane);
        for (uint32_t y = 0; y < image_h && st == FX_OK; y++) {
            const float *src = (const float *)(const void *)fx__row(&plane, y);
            float *dst = (float *)(void *)fx__row(out, y);
            for (uint32_t x = 0; x < image_w; x++)
                dst[(size_t)x * c + ch] = src[x];
        }
        fx_image_free(&plane);
    }
    if (st != FX_OK)
        fx_image_free(out);
    return st;
}

/* The Grad-CAM low-resolution map of image i of the capture, into *out (malloc'd). */
static fx_status gradcam_lowres(const fx__shim_capture *cap, uint32_t i, float **out)
{
    size_t sample = (size_t)cap->k * cap->h * cap->w;
    *out = malloc((size_t)cap->h * cap->w * sizeof(float));
    if (!*out)
        return fx__error(FX_ERR_OUT_OF_MEMORY, "fx_gradcam_compute: cannot allocate a %ux%u map", cap->w, cap->h);
    if (!cap->gradients)
        return fx__error(FX_ERR_INTERNAL, "Guided Grad-CAM: no gradients at the layer");
    return fx_cam_lowres(FX_CAM_GRADCAM, cap->activations + i * sample, cap->gradients + i * sample, 1, cap->k,
                         cap->h, cap->w, *out);
}

fx_status fx__guided_maps(int32_t method, const fx__shim_capture *cap, uint32_t i, const fx__shim_guided *guided,
                          uint32_t c, const fx__geometry *g, uint32_t image_w, uint32_t image_h, fx__guided_slot *out)
{
    const float *grads = fx__shim_guided_input_gradients(guided);
    if (!grads)
        return fx__error(FX_ERR_INTERNAL, "fx__guided_maps: the guided backward has not run");
    uint32_t h = g->input_h, w = g->input_w;
    size_t hw = (size_t)h * w, size = (size_t)c * hw;
    float *product = malloc(size * sizeof(float));
    float *cam = NULL;
    fx_status st = product ? FX_OK
                           : fx__error(FX_ERR_OUT_OF_MEMORY, "fx_gradcam_compute: cannot allocate a %ux%ux%u "
                                                             "saliency map", c, w, h);
    if (st == FX_OK && method == FX_CAM_GUIDED_GRADCAM)
        st = gradcam_lowres(cap, i, &cam);
    if (st == FX_OK)
        st = fx__guided_product(method, grads + (size_t)i * size, c, h, w, cam, cap->h, cap->w, product);
    if (st == FX_OK)
        st = fx_image_alloc(out->lowres, w, h, 1, FX_PIXEL_F32);
    if (st == FX_OK) {
        float *magnitude = (float *)out->lowres->data; /* tight rows: stride is w floats */
        fx__guided_magnitude(product, c, h, w, magnitude);
        st = fx__map_to_image(magnitude, h, w, g, image_w, image_h, 1, out->heatmap);
        if (st == FX_OK && out->raw)
            st = fx__map_to_image(magnitude, h, w, g, image_w, image_h, 0, out->raw);
    }
    if (st == FX_OK) {
        fx__guided_deprocess(product, size, product);
        st = planes_to_image(product, c, h, w, g, image_w, image_h, out->saliency);
    }
    free(product);
    free(cam);
    return st;
}
