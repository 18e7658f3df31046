/* The intensity rule (fxcam.h, "Intensity") as a linear map with clamping,
 * resolved once per image: unit = clamp((v - offset) * scale, 0, 1). The
 * model's preprocessing (lib/preprocess.c, lib/engine.c) and the display
 * conversion (fx_image_to_rgb8_intensity) both sample through it. Internal. */
#ifndef FX_INTENSITY_H
#define FX_INTENSITY_H

#include "fx_internal.h"

typedef struct fx__unit_map {
    double offset;   /* subtracted from the stored sample */
    double scale;    /* then multiplied; 0 for a constant image under min-max */
    bool identity;   /* F32 images: [0,1] by contract, used as they are */
    int32_t mode;    /* the FX_INTENSITY_* applied (AUTO resolved) */
    uint32_t bits;   /* FX_INTENSITY_BITS / CONTAINER: the bits divided by */
} fx__unit_map;

/* Checks rule (NULL = defaults) and resolves it for img (validated by the
 * caller) and its loader info (may be NULL). what names the caller in
 * messages. Errors: FX_ERR_INVALID_ARGUMENT. */
fx_status fx__intensity_resolve(const fx_intensity *rule, const fx_image *img, const fx_image_info *info,
                                const char *what, fx__unit_map *map);

/* Channel c of pixel (x, y) of img in [0,1] through map. */
float fx__unit_sample(const fx__unit_map *map, const fx_image *img, uint32_t x, uint32_t y, uint32_t c);

/* For 8- and 16-bit images: table[v] = the [0,1] value of stored sample v
 * through map, for every v below 2^bits of the container (256 or 65536
 * floats), the same float fx__unit_sample gives, so that per-pixel loops can
 * look values up instead of computing them. false (table untouched) for F32
 * images. */
bool fx__unit_table(const fx__unit_map *map, const fx_image *img, float *table);

/* Color samples (alpha excluded) that the map clamps: above 1 (*high) or
 * below 0 (*low). Always 0 for containers, min-max and F32. */
void fx__intensity_clipped(const fx__unit_map *map, const fx_image *img, uint64_t *low, uint64_t *high);

#endif
