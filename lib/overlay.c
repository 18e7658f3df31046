/* Conversion of any image to 8-bit RGB for display, and the blend of a
 * colored heatmap over it. */
#include "fx_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Conversion to 8-bit RGB -------------------------------------------- */

/* Gray+alpha and RGBA keep their colour in the first 1 or 3 samples. */
static uint32_t color_channels(uint32_t channels)
{
    return channels >= 3 ? 3 : 1;
}

/* Range of the colour samples (alpha excluded) of a U16 image. */
static void u16_range(const fx_image *src, uint16_t *lo, uint16_t *hi)
{
    uint32_t colors = color_channels(src->channels);
    uint16_t mn = UINT16_MAX, mx = 0;
    for (uint32_t y = 0; y < src->height; y++) {
        const uint16_t *row = (const uint16_t *)fx__row(src, y);
        for (uint32_t x = 0; x < src->width; x++) {
            for (uint32_t c = 0; c < colors; c++) {
                uint16_t v = row[(size_t)x * src->channels + c];
                mn = v < mn ? v : mn;
                mx = v > mx ? v : mx;
            }
        }
    }
    *lo = mn;
    *hi = mx;
}

/* round((v - lo) * 255 / (hi - lo)) in integers, halves rounded up; a
 * constant image (hi == lo) has no contrast to show and becomes black. */
static uint8_t u16_window(uint16_t v, uint16_t lo, uint16_t hi)
{
    if (hi == lo)
        return 0;
    uint32_t range = (uint32_t)hi - lo;
    return (uint8_t)(((uint32_t)(v - lo) * 510u + range) / (2u * range));
}

/* A U16 image through a table of u16_window over its range: one lookup per
 * sample instead of a division (a 2048x2048 radiograph's figure spent a
 * tenth of fxcam batch's time here). The same values as the loop below.
 * false when the table cannot be allocated. */
static bool u16_to_rgb8_by_table(const fx_image *src, fx_image *dst, uint16_t lo, uint16_t hi)
{
    if (hi < lo)
        return false;
    uint8_t *table = malloc((size_t)(hi - lo) + 1u);
    if (!table)
        return false;
    for (uint32_t v = lo; v <= hi; v++)
        table[v - lo] = u16_window((uint16_t)v, lo, hi);
    uint32_t colors = color_channels(src->channels), channels = src->channels;
    for (uint32_t y = 0; y < src->height; y++) {
        const uint16_t *row = (const uint16_t *)fx__row(src, y);
        uint8_t *out = fx__row(dst, y);
        for (uint32_t x = 0; x < src->width; x++, row += channels, out += 3) {
            if (colors == 1) {
                out[0] = out[1] = out[2] = table[row[0] - lo];
            } else {
                out[0] = table[row[0] - lo];
                out[1] = table[row[1] - lo];
                out[2] = table[row[2] - lo];
            }
        }
    }
    free(table);
    return true;
}

/* src validated, dst an RGB8 image of the same size not overlapping it. */
static void convert_to_rgb8(const fx_image *src, fx_image *dst)
{
    uint32_t colors = color_channels(src->channels);
    uint16_t lo = 0, hi = 0;
    if (src->pixel_type == FX_PIXEL_U8 && src->channels == 3) { /* already RGB8 (figures pass their view) */
        for (uint32_t y = 0; y < src->height; y++)
            memcpy(fx__row(dst, y), fx__row(src, y), (size_t)src->width * 3);
        return;
    }
    if (src->pixel_type == FX_PIXEL_U16) {
        u16_range(src, &lo, &hi);
        if (u16_to_rgb8_by_table(src, dst, lo, hi))
            return;
    }
    for (uint32_t y = 0; y < src->height; y++) {
        const uint8_t *row = fx__row(src, y);
        uint8_t *out = fx__row(dst, y);
        for (uint32_t x = 0; x < src->width; x++) {
            size_t first = (size_t)x * src->channels;
            for (uint32_t c = 0; c < 3; c++) {
                size_t i = first + (colors == 3 ? c : 0);
                uint8_t v;
                switch (src->pixel_type) {
                case FX_PIXEL_U8: v = row[i]; break;
                case FX_PIXEL_U16: v = u16_window(((const uint16_t *)row)[i], lo, hi); break;
                default: v = fx__unit_to_u8(((const float *)row)[i]); break;
                }
                out[(size_t)x * 3 + c] = v;
            }
        }
    }
}

/* Prepares out as width x height RGB8, refusing a caller buffer that shares
 * memory with one of the inputs. */
static fx_status prepare_rgb8(fx_image *out, const char *what, const fx_image *input, const char *input_name,
                              const fx_image *other, const char *other_name, uint32_t width, uint32_t height,
                              bool *allocated)
{
    fx_status st = fx__output_prepare(out, what, width, height, 3, FX_PIXEL_U8, allocated);
    if (st != FX_OK || *allocated)
        return st;
    if (fx__images_overlap(out, input) || (other && fx__images_overlap(out, other)))
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s shares memory with %s; pass a separate buffer (or data = NULL)",
                         what, fx__images_overlap(out, input) ? input_name : other_name);
    return FX_OK;
}

fx_status fx_image_to_rgb8(const fx_image *src, fx_image *out)
{
    fx_status st = fx__image_check(src, "fx_image_to_rgb8: src");
    if (st != FX_OK)
        return st;
    bool allocated;
    st = prepare_rgb8(out, "fx_image_to_rgb8: out", src, "src", NULL, NULL, src->width, src->height, &allocated);
    if (st != FX_OK)
        return st;
    convert_to_rgb8(src, out);
    return FX_OK;
}

/* ---- Overlay ------------------------------------------------------------ */

void fx_overlay_options_init(fx_overlay_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->alpha = 0.4f;
    opts->colormap = FX_COLORMAP_JET;
    opts->threshold = 0.0f;
}

static fx_status check_unit_interval(float v, const char *name)
{
    if (v >= 0.0f && v <= 1.0f)
        return FX_OK;
    return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_overlay: %s is %g; valid: 0 to 1", name, (double)v);
}

static fx_status check_overlay_inputs(const fx_image *image, const fx_image *heatmap, const fx_overlay_options *o)
{
    fx_status st = fx__image_check(image, "fx_overlay: image");
    if (st == FX_OK)
        st = fx__image_expect(heatmap, "fx_overlay: heatmap", 1, FX_PIXEL_F32);
    if (st != FX_OK)
        return st;
    if (image->width != heatmap->width || image->height != heatmap->height)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_overlay: heatmap is %ux%u but image is %ux%u; upsample the map to the image size",
                         heatmap->width, heatmap->height, image->width, image->height);
    st = check_unit_interval(o->alpha, "alpha");
    if (st == FX_OK)
        st = check_unit_interval(o->threshold, "threshold");
    if (st == FX_OK)
        st = fx__colormap_check("fx_overlay", o->colormap);
    return st;
}

/* rgb holds the image already; pixels whose map value reaches the threshold
 * move towards their colour by alpha. A NaN map value compares false and
 * leaves the pixel as it was. */
static void blend(fx_image *rgb, const fx_image *heatmap, const uint8_t table[768], float alpha, float threshold)
{
    double a = alpha, keep = 1.0 - a;
    for (uint32_t y = 0; y < rgb->height; y++) {
        const float *map = (const float *)fx__row(heatmap, y);
        uint8_t *px = fx__row(rgb, y);
        for (uint32_t x = 0; x < rgb->width; x++, px += 3) {
            if (!(map[x] >= threshold))
                continue;
            const uint8_t *color = table + 3 * (size_t)fx__unit_to_u8(map[x]);
            for (int c = 0; c < 3; c++)
                px[c] = (uint8_t)floor(keep * px[c] + a * color[c] + 0.5);
        }
    }
}

fx_status fx_overlay(const fx_image *image, const fx_image *heatmap, const fx_overlay_options *opts, fx_image *out)
{
    fx_overlay_options o;
    fx_overlay_options_init(&o);
    fx_status st = fx__options_merge(&o, sizeof o, opts, "fx_overlay: opts");
    if (st == FX_OK)
        st = check_overlay_inputs(image, heatmap, &o);
    if (st != FX_OK)
        return st;
    uint8_t table[768];
    st = fx_colormap_table(o.colormap, table);
    if (st != FX_OK)
        return st;
    bool allocated;
    st = prepare_rgb8(out, "fx_overlay: out", image, "image", heatmap, "heatmap", image->width, image->height,
                      &allocated);
    if (st != FX_OK)
        return st;
    convert_to_rgb8(image, out);
    blend(out, heatmap, table, o.alpha, o.threshold);
    return FX_OK;
}
