/* Bringing an image to the model's input, and a map back to the image
 * (docs/algorithms.md, "Preprocessing"). Internal: the engine calls it, the
 * unit tests reach it through the static library. */
#ifndef FX_PREPROCESS_H
#define FX_PREPROCESS_H

#include "fx_internal.h"
#include "intensity.h"

/* Where an image lands in the model input. An image point at x (continuous,
 * pixel edges: pixel i spans [i, i + 1)) lands at input x * scale_x +
 * offset_x, likewise for y. The image is resampled to resized_w x resized_h
 * and placed with its top-left corner at input (offset_x, offset_y), which is
 * negative for a crop. */
typedef struct fx__geometry {
    int32_t mode;                  /* FX_RESIZE_* (never _DEFAULT) */
    uint32_t input_w, input_h;     /* the model input */
    uint32_t resized_w, resized_h; /* the image after resampling, before placing */
    int64_t offset_x, offset_y;    /* top-left of the resized image in the input */
    double scale_x, scale_y;       /* resized / image */
    bool antialias;                /* resampled with torch's antialias=True kernel */
    /* Image pixels whose centres land inside the input: [x, x + w) x [y, y + h). */
    uint32_t seen_x, seen_y, seen_w, seen_h;
} fx__geometry;

/* Plans the geometry of an image_w x image_h image for an input_w x input_h
 * model input. resize_size: the shorter side for FX_RESIZE_SHORTER_SIDE_CROP
 * (torchvision Resize(s): the longer side becomes int(s * long / short));
 * the crop is torchvision's CenterCrop (offsets int(round((r - c) / 2.0)),
 * halves to even, zero padding when the crop is larger). Errors:
 * FX_ERR_INVALID_ARGUMENT (unknown mode), FX_ERR_LIMIT (resized over 2^31
 * bytes of float). */
fx_status fx__geometry_plan(int32_t mode, uint32_t resize_size, uint32_t image_w, uint32_t image_h, uint32_t input_w,
                            uint32_t input_h, fx__geometry *g);

/* Separable resampling of an interleaved float image (channels samples per
 * pixel, tight rows) with torch's interpolate(mode="bilinear",
 * align_corners=False, antialias=True) weights: for an axis of scale
 * s = in / out, output i has centre c = s (i + 0.5), support r = max(s, 1),
 * taps j in [max(int(c - r + 0.5), 0), min(int(c + r + 0.5), in)) with weight
 * max(0, 1 - |(j + 0.5 - c) / max(s, 1)|), normalized to sum 1 (PIL's
 * triangle filter). Sums in double. Errors: FX_ERR_OUT_OF_MEMORY. */
fx_status fx__resample_antialias(const float *src, uint32_t src_w, uint32_t src_h, uint32_t channels, float *dst,
                                 uint32_t dst_w, uint32_t dst_h);

/* Writes one image as normalized NCHW planes (channels * input_h * input_w
 * floats) into dst: intensity map -> model channels (gray replicated; RGB to
 * luma 0.299 R + 0.587 G + 0.114 B for one channel; alpha dropped) -> the
 * geometry's resampling and placing (padding 0 before normalization) ->
 * (x - mean) / std. */
fx_status fx__preprocess_image(const fx_image *img, const fx__unit_map *map, const fx__geometry *g, uint32_t channels,
                               const float *mean, const float *std, float *dst);

/* The heatmap of an image from its low-resolution map (h x w covering the
 * whole model input): each image pixel centre is carried into the input by the
 * geometry and the map is sampled bilinearly there (half-pixel centres,
 * clamped at the edges, as fx_resize_bilinear). Pixels outside the seen
 * region are 0. normalize: the min-max rule of fx_cam_upsample over the seen
 * pixels (flat -> 0). out: image size, 1 channel F32, allocated here. For the
 * stretch modes this is fx_cam_upsample itself. */
fx_status fx__map_to_image(const float *lowres, uint32_t h, uint32_t w, const fx__geometry *g, uint32_t image_w,
                           uint32_t image_h, int normalize, fx_image *out);

#endif
