/* Internal pieces of the faithfulness metrics (lib/faithfulness.c), exposed to
 * the unit tests through the internal static library. Images here are plain
 * interleaved float arrays of width * height * channels samples. */
#ifndef FX_FAITHFULNESS_H
#define FX_FAITHFULNESS_H

#include "fxcam.h"

#include <stddef.h>
#include <stdint.h>

/* Positions 0..count-1 ranked by decreasing heat[], ties by increasing
 * position (a deterministic order for flat maps). order has count entries.
 * Errors: FX_ERR_NUMERIC (NaN), FX_ERR_OUT_OF_MEMORY. */
fx_status fx__faith_rank(const float *heat, size_t count, uint32_t *order);

/* Pixels changed at step k of steps over count pixels: floor(k * count / steps). */
size_t fx__faith_step_pixels(size_t k, size_t steps, size_t count);

/* Area under y[0..points) sampled at x = i / (points - 1) over [0,1], by the
 * trapezoid rule (points >= 2). */
double fx__faith_auc(const float *y, size_t points);

/* Gaussian blur: separable, 2 * ceil(sigma) + 1 taps of exp(-d^2 / (2 sigma^2))
 * normalized to sum 1, edges replicated. dst and src must not overlap.
 * Errors: FX_ERR_OUT_OF_MEMORY. */
fx_status fx__faith_blur(const float *src, uint32_t width, uint32_t height, uint32_t channels, float sigma,
                         float *dst);

/* ROAD's noisy linear imputation (Rong et al. 2022): every pixel with
 * missing[p] != 0 gets, channel by channel, the value that makes it the
 * weighted mean of its in-image 8-neighbours (weights 1/6 edge, 1/12
 * diagonal), all missing pixels at once: the sparse system
 *     sum_j w_pj (x_p - x_j) = 0  for every missing p
 * solved by conjugate gradients (symmetric positive definite while some pixel
 * is known) until every equation's residual is below 1e-5 of its weight sum
 * (or 4 * (width + height) + 100 iterations); then noise * N(0,1) is added to
 * each imputed sample (*rng: the generator's state) and it is clamped to
 * [0,1]. Known pixels are left as they are. Errors: FX_ERR_INVALID_ARGUMENT (every pixel missing),
 * FX_ERR_OUT_OF_MEMORY. */
fx_status fx__faith_impute(float *img, uint32_t width, uint32_t height, uint32_t channels,
                           const uint8_t *missing, float noise, uint64_t *rng);

/* Standard normal deviate from the splitmix64 generator *rng (Box-Muller). */
double fx__faith_normal(uint64_t *rng);

#endif
