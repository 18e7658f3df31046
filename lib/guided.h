/* Guided Backpropagation and Guided Grad-CAM (docs/algorithms.md): the
 * engine's calls around the guided shim pass, and the saliency math.
 * Internal: the engine calls it, the unit tests reach the math through the
 * static library. */
#ifndef FX_GUIDED_H
#define FX_GUIDED_H

#include "engine_shim.h"
#include "fx_internal.h"
#include "preprocess.h"

/* pytorch-grad-cam's deprocess_image (utils/image.py), in float and without
 * its final uint8 step: with m and s the mean and (population) standard
 * deviation of all count values, out = clip((x - m) / (s + 1e-5) * 0.1 + 0.5,
 * 0, 1). A zero gradient gives 0.5 everywhere. Sums in double. out may be x. */
void fx__guided_deprocess(const float *x, size_t count, float *out);

/* The input-space map of image i: the guided input gradient gb ([c][h][w],
 * h x w the model input), times, for FX_CAM_GUIDED_GRADCAM, the Grad-CAM
 * heatmap at the model input size (fx_cam_upsample of the Grad-CAM
 * low-resolution map of the layer: bilinear, then min-max to [0, 1])
 * (Selvaraju et al. 2017, section 3). cam_lowres is NULL for
 * FX_CAM_GUIDED_BACKPROP. Writes c*h*w floats to out. */
fx_status fx__guided_product(int32_t method, const float *gb, uint32_t c, uint32_t h, uint32_t w,
                             const float *cam_lowres, uint32_t cam_h, uint32_t cam_w, float *out);

/* Saliency magnitude, max over channels of |p| ([c][h][w] -> [h][w])
 * (Simonyan et al. 2014's reduction): the 1-channel map that heatmaps,
 * faithfulness metrics and overlays use. */
void fx__guided_magnitude(const float *p, uint32_t c, uint32_t h, uint32_t w, float *out);

/* Where run_batch's forward and backward go when a method needs input
 * gradients (FX_CAM_NEEDS_INPUT_GRADIENTS); otherwise they are
 * fx__shim_forward / fx__shim_backward. One guided forward also captures the
 * layer; when channel passes are asked too (FX__FORWARD_CHANNELS) the plain
 * forward keeps them and the guided pass runs beside it. *guided is NULL
 * when no method needs input gradients; free with fx__shim_guided_free. */
fx_status fx__guided_forward(fx__shim_model *shim, const float *input, uint32_t n, const char *layer, uint32_t needs,
                             uint32_t flags, fx__shim_capture *cap, fx__shim_guided **guided);
fx_status fx__guided_backward(fx__shim_capture *cap, fx__shim_guided *guided, const float *weights, uint32_t needs);

/* Everything a guided method leaves for image i of the batch: lowres (the
 * magnitude at the model input size), heatmap (that magnitude brought into
 * the image geometry g and min-max normalized, as heatmaps are), raw (same,
 * unnormalized; NULL = not kept) and saliency (the deprocessed map, c
 * channels F32 in [0,1] at the image size; 0 outside the seen region). */
typedef struct fx__guided_slot {
    fx_image *lowres, *heatmap, *raw, *saliency;
} fx__guided_slot;
fx_status fx__guided_maps(int32_t method, const fx__shim_capture *cap, uint32_t i, const fx__shim_guided *guided,
                          uint32_t c, const fx__geometry *g, uint32_t image_w, uint32_t image_h, fx__guided_slot *out);

#endif
