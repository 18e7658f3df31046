/* One intensity rule for the model and the figure (fxcam.h, "Intensity";
 * docs/algorithms.md). Every mode is a linear map of the stored sample with
 * clamping to [0,1]; resolving it per image keeps the per-pixel work to one
 * multiply-add and lets the display and the model share the very same
 * numbers. */
#include "intensity.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const intensity_names[] = {"auto", "container", "bits", "minmax", "window"};
#define INTENSITY_COUNT (sizeof intensity_names / sizeof intensity_names[0])

void fx_intensity_init(fx_intensity *rule)
{
    if (!rule)
        return;
    memset(rule, 0, sizeof *rule);
    rule->struct_size = sizeof *rule;
    rule->mode = FX_INTENSITY_AUTO;
}

const char *fx_intensity_name(int32_t mode)
{
    return mode >= 0 && (size_t)mode < INTENSITY_COUNT ? intensity_names[mode] : NULL;
}

fx_status fx_intensity_from_name(const char *name, int32_t *mode)
{
    if (!name || !mode)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_intensity_from_name: %s is NULL", name ? "mode" : "name");
    for (size_t i = 0; i < INTENSITY_COUNT; i++)
        if (fx__ascii_equal_nocase(name, intensity_names[i])) {
            *mode = (int32_t)i;
            return FX_OK;
        }
    return fx__error(FX_ERR_INVALID_ARGUMENT,
                     "unknown intensity mode '%.64s'; valid: auto, container, bits, minmax, window", name);
}

static uint32_t container_bits(int32_t pixel_type)
{
    return pixel_type == FX_PIXEL_U16 ? 16u : 8u;
}

static double stored_sample(const fx_image *img, uint32_t x, uint32_t y, uint32_t c)
{
    const uint8_t *row = fx__row(img, y);
    size_t i = (size_t)x * img->channels + c;
    switch (img->pixel_type) {
    case FX_PIXEL_U8: return row[i];
    case FX_PIXEL_U16: return ((const uint16_t *)(const void *)row)[i];
    default: return ((const float *)(const void *)row)[i];
    }
}

static uint32_t color_channels(uint32_t channels)
{
    return channels >= 3 ? 3 : 1;
}

static void color_range(const fx_image *img, double *lo, double *hi)
{
    double mn = INFINITY, mx = -INFINITY;
    uint32_t colors = color_channels(img->channels);
    for (uint32_t y = 0; y < img->height; y++)
        for (uint32_t x = 0; x < img->width; x++)
            for (uint32_t c = 0; c < colors; c++) {
                double v = stored_sample(img, x, y, c);
                mn = v < mn ? v : mn;
                mx = v > mx ? v : mx;
            }
    *lo = mn;
    *hi = mx;
}

static fx_status check_rule(const fx_intensity *r, const char *what)
{
    if (r->mode < 0 || (size_t)r->mode >= INTENSITY_COUNT)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "%s: intensity mode %d; valid: FX_INTENSITY_AUTO (0), _CONTAINER (1), _BITS (2), "
                         "_MINMAX (3), _WINDOW (4)",
                         what, (int)r->mode);
    if (r->bits_stored > 16)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s: bits_stored %u; valid: 0 (the image's) or 1..16", what,
                         r->bits_stored);
    if (r->mode == FX_INTENSITY_WINDOW &&
        (!isfinite(r->window_center) || !isfinite(r->window_width) || !(r->window_width > 0.0f)))
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "%s: intensity window center %g, width %g; the center must be finite and the width > 0 "
                         "(in the image's sample units: 0..255 or 0..65535)",
                         what, (double)r->window_center, (double)r->window_width);
    return FX_OK;
}

/* The bits a BITS/AUTO rule divides by: the rule's, else the loader's, else
 * the container's; never more than the container holds (an 8-bit image of a
 * model trained on 12-bit data is still 0..255). */
static uint32_t effective_bits(const fx_intensity *r, const fx_image *img, const fx_image_info *info)
{
    uint32_t container = container_bits(img->pixel_type);
    uint32_t bits = r->bits_stored;
    if (!bits && info && info->struct_size >= offsetof(fx_image_info, bits_stored) + sizeof info->bits_stored)
        bits = info->bits_stored;
    return bits && bits < container ? bits : container;
}

fx_status fx__intensity_resolve(const fx_intensity *rule, const fx_image *img, const fx_image_info *info,
                                const char *what, fx__unit_map *map)
{
    fx_intensity r;
    fx_intensity_init(&r);
    fx_status st = fx__options_merge(&r, sizeof r, rule, what);
    if (st == FX_OK)
        st = check_rule(&r, what);
    if (st != FX_OK)
        return st;
    memset(map, 0, sizeof *map);
    if (img->pixel_type == FX_PIXEL_F32) {
        map->identity = true;
        map->scale = 1.0;
        map->mode = FX_INTENSITY_CONTAINER;
        return FX_OK;
    }
    int32_t mode = r.mode;
    if (mode == FX_INTENSITY_AUTO)
        mode = FX_INTENSITY_BITS; /* with no bits known this is the container */
    map->mode = mode;
    switch (mode) {
    case FX_INTENSITY_CONTAINER:
    case FX_INTENSITY_BITS:
        map->bits = mode == FX_INTENSITY_CONTAINER ? container_bits(img->pixel_type) : effective_bits(&r, img, info);
        map->scale = 1.0 / (double)((1u << map->bits) - 1u);
        break;
    case FX_INTENSITY_MINMAX: {
        double lo, hi;
        color_range(img, &lo, &hi);
        map->offset = lo;
        map->scale = hi > lo ? 1.0 / (hi - lo) : 0.0;
        break;
    }
    default: /* FX_INTENSITY_WINDOW */
        map->offset = (double)r.window_center - (double)r.window_width / 2.0;
        map->scale = 1.0 / (double)r.window_width;
        break;
    }
    return FX_OK;
}

float fx__unit_sample(const fx__unit_map *map, const fx_image *img, uint32_t x, uint32_t y, uint32_t c)
{
    double v = stored_sample(img, x, y, c);
    if (map->identity)
        return (float)v;
    double u = (v - map->offset) * map->scale;
    return (float)(u < 0.0 ? 0.0 : u > 1.0 ? 1.0 : u);
}

bool fx__unit_table(const fx__unit_map *map, const fx_image *img, float *table)
{
    if (map->identity || img->pixel_type == FX_PIXEL_F32)
        return false;
    uint32_t values = img->pixel_type == FX_PIXEL_U8 ? 256u : 65536u;
    for (uint32_t v = 0; v < values; v++) {
        double u = ((double)v - map->offset) * map->scale;
        table[v] = (float)(u < 0.0 ? 0.0 : u > 1.0 ? 1.0 : u);
    }
    return true;
}

/* The samples of a 16-bit gray image that fall outside [0,1], by comparing
 * each stored value with the two it must lie between (found by the same
 * formula over all 65536 values), not by a division per sample. */
static void clipped_u16_gray(const fx__unit_map *map, const fx_image *img, uint64_t *low, uint64_t *high)
{
    uint32_t below = 0, above = 65536; /* values v < below clip low, v >= above clip high */
    for (uint32_t v = 0; v < 65536; v++) {
        double u = ((double)v - map->offset) * map->scale;
        below = u < 0.0 ? v + 1 : below;
        above = u > 1.0 && above == 65536 ? v : above;
    }
    for (uint32_t y = 0; y < img->height; y++) {
        const uint16_t *row = (const uint16_t *)(const void *)fx__row(img, y);
        for (uint32_t x = 0; x < img->width; x++) {
            *low += row[x] < below;
            *high += row[x] >= above;
        }
    }
}

void fx__intensity_clipped(const fx__unit_map *map, const fx_image *img, uint64_t *low, uint64_t *high)
{
    *low = *high = 0;
    if (map->identity || map->mode == FX_INTENSITY_CONTAINER || map->mode == FX_INTENSITY_MINMAX)
        return;
    if (img->pixel_type == FX_PIXEL_U16 && img->channels == 1 && map->scale > 0.0) {
        clipped_u16_gray(map, img, low, high);
        return;
    }
    uint32_t colors = color_channels(img->channels);
    for (uint32_t y = 0; y < img->height; y++)
        for (uint32_t x = 0; x < img->width; x++)
            for (uint32_t c = 0; c < colors; c++) {
                double u = (stored_sample(img, x, y, c) - map->offset) * map->scale;
                *low += u < 0.0;
                *high += u > 1.0;
            }
}

fx_status fx_image_to_unit(const fx_image *src, const fx_intensity *rule, const fx_image_info *info, fx_image *out)
{
    fx_status st = fx__image_check(src, "fx_image_to_unit: src");
    fx__unit_map map;
    if (st == FX_OK)
        st = fx__intensity_resolve(rule, src, info, "fx_image_to_unit", &map);
    bool allocated;
    if (st == FX_OK)
        st = fx__output_prepare(out, "fx_image_to_unit: out", src->width, src->height, src->channels,
                                FX_PIXEL_F32, &allocated);
    if (st != FX_OK)
        return st;
    fx__unit_map alpha = {.scale = 1.0 / (double)((1u << container_bits(src->pixel_type)) - 1u),
                          .identity = map.identity};
    uint32_t colors = color_channels(src->channels);
    for (uint32_t y = 0; y < src->height; y++) {
        float *row = (float *)(void *)fx__row(out, y);
        for (uint32_t x = 0; x < src->width; x++)
            for (uint32_t c = 0; c < src->channels; c++)
                row[(size_t)x * src->channels + c] = fx__unit_sample(c < colors ? &map : &alpha, src, x, y, c);
    }
    return FX_OK;
}

/* A 16-bit gray image through a table of the 65536 display values (the same
 * bytes as the per-sample formula below; 10 % of a 2048x2048 batch went to it). */
static void rgb8_u16_gray(const fx__unit_map *map, const fx_image *src, fx_image *out)
{
    uint8_t *table = malloc(65536);
    if (!table) {
        for (uint32_t y = 0; y < src->height; y++) {
            uint8_t *row = fx__row(out, y);
            for (uint32_t x = 0; x < src->width; x++)
                row[(size_t)x * 3] = row[(size_t)x * 3 + 1] = row[(size_t)x * 3 + 2] =
                    fx__unit_to_u8(fx__unit_sample(map, src, x, y, 0));
        }
        return;
    }
    for (uint32_t v = 0; v < 65536; v++) {
        double u = ((double)v - map->offset) * map->scale;
        table[v] = fx__unit_to_u8((float)(u < 0.0 ? 0.0 : u > 1.0 ? 1.0 : u));
    }
    for (uint32_t y = 0; y < src->height; y++) {
        const uint16_t *in = (const uint16_t *)(const void *)fx__row(src, y);
        uint8_t *row = fx__row(out, y);
        for (uint32_t x = 0; x < src->width; x++)
            row[(size_t)x * 3] = row[(size_t)x * 3 + 1] = row[(size_t)x * 3 + 2] = table[in[x]];
    }
    free(table);
}

/* Straight to 8-bit RGB, pixel by pixel: going through fx_image_to_unit
 * would hold a float copy of every channel (2 GiB for a 1 GiB RGBA16 image). */
fx_status fx_image_to_rgb8_intensity(const fx_image *src, const fx_intensity *rule, const fx_image_info *info,
                                     fx_image *out)
{
    fx_status st = fx__image_check(src, "fx_image_to_rgb8_intensity: src");
    fx__unit_map map;
    if (st == FX_OK)
        st = fx__intensity_resolve(rule, src, info, "fx_image_to_rgb8_intensity", &map);
    bool allocated = false;
    if (st == FX_OK)
        st = fx__output_prepare(out, "fx_image_to_rgb8_intensity: out", src->width, src->height, 3, FX_PIXEL_U8,
                                &allocated);
    if (st == FX_OK && !allocated && fx__images_overlap(out, src))
        st = fx__error(FX_ERR_INVALID_ARGUMENT, "fx_image_to_rgb8_intensity: out shares memory with src; "
                                                "pass a separate buffer (or data = NULL)");
    if (st != FX_OK)
        return st;
    bool gray = color_channels(src->channels) == 1;
    if (gray && src->pixel_type == FX_PIXEL_U16 && !map.identity) {
        rgb8_u16_gray(&map, src, out);
        return FX_OK;
    }
    for (uint32_t y = 0; y < src->height; y++) {
        uint8_t *row = fx__row(out, y);
        for (uint32_t x = 0; x < src->width; x++)
            for (uint32_t c = 0; c < 3; c++)
                row[(size_t)x * 3 + c] = fx__unit_to_u8(fx__unit_sample(&map, src, x, y, gray ? 0 : c));
    }
    return FX_OK;
}
