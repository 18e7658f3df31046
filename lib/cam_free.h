/* Channel weights of the gradient-free CAMs that score one forward pass per
 * channel (Score-CAM, Ablation-CAM), and the map from weights. The passes
 * themselves run in the shim (fx__shim_channel_scores); this is the math,
 * unit-tested without libtorch. docs/algorithms.md gives the formulas. */
#ifndef FX_CAM_FREE_H
#define FX_CAM_FREE_H

#include "fx_internal.h"

/* Score-CAM (pytorch-grad-cam's score_cam.py): weights = softmax over the k
 * channels of the target scores of the masked inputs, computed in double
 * with the maximum subtracted. Errors: FX_ERR_NUMERIC naming the first
 * non-finite score. */
fx_status fx__score_cam_weights(const float *scores, uint32_t k, double *weights);

/* Ablation-CAM (Desai & Ramaswamy eq. 2, as pytorch-grad-cam's
 * ablation_cam.py): weight_k = (original - ablated[k]) / original, where
 * original is the target score of the unmodified image. Errors:
 * FX_ERR_NUMERIC when original is 0 (or not finite) or a score is not finite. */
fx_status fx__ablation_cam_weights(double original, const float *ablated, uint32_t k, double *weights);

/* map = ReLU(sum_k weights[k] * A_k) over hw positions (A: [k][hw]), summed
 * in double. Errors: FX_ERR_NUMERIC when a value is beyond the float range. */
fx_status fx__cam_from_weights(const float *activations, const double *weights, uint32_t k, size_t hw, float *map);

#endif
