/* Refinements any CAM method takes (docs/algorithms.md, "Refinements"):
 * eigen_smooth, several target layers and test-time augmentation
 * (aug_smooth), as pytorch-grad-cam's base_cam.py does them. The math is in
 * cam.c; engine.c runs the passes. Internal, not exported. */
#ifndef FX_CAM_REFINE_H
#define FX_CAM_REFINE_H

#include "fx_internal.h"

/* fx_cam_lowres with eigen_smooth: eigen_smooth != 0 replaces the channel
 * sum of each method's terms (w_k A_k, G_k A_k, ReLU(G_k) A_k, ReLU(G_k A_k))
 * by their projection on the first principal component over the positions:
 * channels centred, first right singular vector, sign oriented so that the
 * projection agrees with the channel sum (dot > 0; when that dot is 0
 * within rounding, the largest |p| is made positive); then ReLU. Eigen-CAM
 * and EigenGrad-CAM are projections either way. */
fx_status fx__cam_lowres_smooth(int32_t method, const float *activations, const float *gradients, uint32_t n,
                                uint32_t k, uint32_t h, uint32_t w, int eigen_smooth, float *out_maps);

/* eigen_smooth for methods whose channel weights come from forward passes
 * (Score-CAM, Ablation-CAM): the projection of weights[c] * A_c as above,
 * after ReLU, into map (hw floats). */
fx_status fx__cam_eigen_from_weights(const float *activations, const double *weights, uint32_t k, size_t hw,
                                     float *map);

/* Test-time augmentations: FX__AUG_COUNT pairs (flip, factor); index 0 is
 * the identity (no flip, factor 1). The model input is multiplied by factor
 * (after normalization, as ttach's Multiply on the input tensor) and, with
 * flip, mirrored left-right. */
#define FX__AUG_COUNT 6
void fx__augmentation(uint32_t index, int *flip, float *factor);

/* Mirrors count planes of h rows of w floats left-right, in place. */
void fx__flip_horizontal(float *planes, uint32_t count, uint32_t h, uint32_t w);

/* pytorch-grad-cam's scale_cam_image on one map, in float:
 * x = (x - min) / (1e-7 + (max - min)). An all-equal map becomes 0. */
void fx__map_scale(float *map, size_t count);

/* fx__map_scale on a copy of the h x w map, then bilinear resize (half-pixel
 * centres, cv2.resize's INTER_LINEAR) into out (out_h x out_w floats). */
fx_status fx__map_scale_resize(const float *map, uint32_t h, uint32_t w, uint32_t out_h, uint32_t out_w, float *out);

#endif
