/* Internal helpers shared by the pure-C modules. Not installed; nothing here
 * is exported from libfxcam.so (the symbols are hidden and the version script
 * keeps only public fx_* names). */
#ifndef FX_INTERNAL_H
#define FX_INTERNAL_H

#include "fxcam.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define FX_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define FX_PRINTF(fmt, args)
#endif

/* Records a formatted message as the calling thread's last error and returns
 * status, so that callers can write `return fx__error(FX_ERR_IO, ...)`. */
fx_status fx__error(fx_status status, const char *fmt, ...) FX_PRINTF(2, 3);

/* Checks that img describes a usable buffer (non-NULL data, non-zero size,
 * channels 1..4, known type, stride large enough). `what` names the argument
 * in the message ("image", "heatmap"). */
fx_status fx__image_check(const fx_image *img, const char *what);

/* Same, and also requires the given channel count and type (0 = any). */
fx_status fx__image_expect(const fx_image *img, const char *what, uint32_t channels,
                           int32_t pixel_type);

/* Prepares an output image following the rule in fxcam.h: allocates when
 * out->data is NULL (setting *allocated = true), otherwise checks that the
 * caller's buffer has exactly the expected shape and type. On error, *out is
 * unchanged. */
fx_status fx__output_prepare(fx_image *out, const char *what, uint32_t width, uint32_t height,
                             uint32_t channels, int32_t pixel_type, bool *allocated);

/* True when the pixel spans of two validated images share memory: converting,
 * coloring or resizing in place would read pixels already overwritten. */
bool fx__images_overlap(const fx_image *a, const fx_image *b);

/* Undoes fx__output_prepare after a later failure: frees what it allocated and
 * restores the caller's descriptor. */
void fx__output_abandon(fx_image *out, const fx_image *saved, bool allocated);

/* Reads a caller's options struct honouring its struct_size: *merged holds
 * the defaults on entry (from the *_init function) and receives the fields the
 * caller's struct has, so that programs built against an older, smaller
 * struct keep working. given == NULL keeps the defaults. Errors: struct_size
 * of 0 (not initialized) or larger than this library's struct (built against
 * a newer header). `what` names the struct in the message. */
fx_status fx__options_merge(void *merged, size_t full_size, const void *given, const char *what);

/* Checks a colormap id (FX_COLORMAP_*); the one validation and message of
 * every function that takes a colormap: "<fn>: unknown colormap 42; valid:
 * autumn (0), bone (1), ..., gray (100)". */
fx_status fx__colormap_check(const char *fn, int32_t colormap);

/* The relative guard of every normalization (maps, the compare figure's
 * difference): a spread (max - min) of at most 1e-5 of the values' magnitude
 * is float32 rounding (1 ulp = 1.2e-7 relative; a layer's sum over thousands
 * of channels carries tens of ulps), not information, and counts as none.
 * Relative, so that the decision does not depend on the absolute scale. */
static inline bool fx__spread_is_negligible(double spread, double magnitude)
{
    return spread <= 1e-5 * magnitude;
}

/* The one float-to-8-bit rule (colormap index, overlay, display of float
 * images): NaN -> 0, clamp to [0, 1], then v * 255 rounded to nearest with
 * halves up. v * 255 and the + 0.5 are exact in double (a float has 24
 * significant bits), so the rounding happens once; in float arithmetic
 * 0.0019607842f * 255 + 0.5 rounds up to 1.0 although v * 255 < 0.5. */
static inline uint8_t fx__unit_to_u8(float v)
{
    if (!(v > 0.0f)) /* also NaN */
        return 0;
    if (v >= 1.0f)
        return 255;
    return (uint8_t)((double)v * 255.0 + 0.5);
}

/* ASCII case-insensitive equality, independent of the locale (tolower and
 * strcasecmp follow it: in a Turkish locale 'I' does not lower to 'i'). Names
 * of colormaps and CAM methods are ASCII. */
static inline bool fx__ascii_equal_nocase(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;
        if (x != y)
            return false;
    }
    return *a == *b;
}

/* The method registry's names for error messages (lib/methods.c), written
 * into buf (cap bytes, truncated if short): "gradcam, gradcam++ (or
 * gradcampp,gradcam_plusplus), ..." and "0 (gradcam), 1 (gradcam++), ...".
 * Return buf. */
#define FX__CAM_VALID_NAMES_MAX 1024
const char *fx__cam_valid_names(char *buf, size_t cap);
const char *fx__cam_valid_ids(char *buf, size_t cap);

static inline uint8_t *fx__row(const fx_image *img, uint32_t y)
{
    return (uint8_t *)img->data + (size_t)y * img->stride;
}

/* Bytes of one tightly packed row. */
static inline size_t fx__row_bytes(uint32_t width, uint32_t channels, int32_t pixel_type)
{
    return (size_t)width * channels * fx_pixel_size(pixel_type);
}

#endif
