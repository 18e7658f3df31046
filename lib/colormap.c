/* Colormaps: names, the 256-entry RGB tables (lib/colormap_tables.c, generated
 * from OpenCV 4.6 by tools/gen_colormaps.py) and coloring of 1-channel maps. */
#include "fx_internal.h"

#include <math.h>
#include <string.h>

/* Defined in the generated lib/colormap_tables.c. */
extern const uint8_t fx__colormap_tables[FX_COLORMAP_COUNT][256 * 3];

static const char *const colormap_names[FX_COLORMAP_COUNT] = {
    [FX_COLORMAP_JET] = "jet",         [FX_COLORMAP_HOT] = "hot",     [FX_COLORMAP_VIRIDIS] = "viridis",
    [FX_COLORMAP_PLASMA] = "plasma",   [FX_COLORMAP_INFERNO] = "inferno", [FX_COLORMAP_TURBO] = "turbo",
    [FX_COLORMAP_MAGMA] = "magma",     [FX_COLORMAP_BONE] = "bone",   [FX_COLORMAP_GRAY] = "gray",
};

#define VALID_NAMES "jet, hot, viridis, plasma, inferno, turbo, magma, bone, gray"

const char *fx_colormap_name(int32_t colormap)
{
    if (colormap < 0 || colormap >= FX_COLORMAP_COUNT)
        return NULL;
    return colormap_names[colormap];
}

/* strcasecmp and tolower follow the locale (a Turkish 'I' is not 'i'); names
 * are ASCII, so compare them as ASCII. */
static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool equal_ignoring_ascii_case(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (ascii_lower(*a) != ascii_lower(*b))
            return false;
    return *a == *b;
}

fx_status fx_colormap_from_name(const char *name, int32_t *colormap)
{
    if (!name)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_colormap_from_name: name is NULL; valid: " VALID_NAMES);
    if (!colormap)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_colormap_from_name: colormap is NULL");
    for (int32_t i = 0; i < FX_COLORMAP_COUNT; i++) {
        if (equal_ignoring_ascii_case(name, colormap_names[i])) {
            *colormap = i;
            return FX_OK;
        }
    }
    return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_colormap_from_name: unknown colormap '%.64s%s'; valid: " VALID_NAMES,
                     name, strlen(name) > 64 ? "..." : "");
}

static fx_status check_colormap(const char *function, int32_t colormap)
{
    if (colormap < 0 || colormap >= FX_COLORMAP_COUNT)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "%s: unknown colormap %d; valid: 0..%d (FX_COLORMAP_JET .. FX_COLORMAP_GRAY: " VALID_NAMES
                         ")",
                         function, (int)colormap, FX_COLORMAP_COUNT - 1);
    return FX_OK;
}

fx_status fx_colormap_table(int32_t colormap, uint8_t *rgb)
{
    fx_status st = check_colormap("fx_colormap_table", colormap);
    if (st != FX_OK)
        return st;
    if (!rgb)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_colormap_table: rgb is NULL; pass a buffer of 768 bytes");
    memcpy(rgb, fx__colormap_tables[colormap], 256 * 3);
    return FX_OK;
}

/* The rule documented in fxcam.h: NaN -> 0, clamp to [0,1], round v * 255. */
static uint8_t float_index(float v)
{
    if (isnan(v))
        return 0;
    v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
    return (uint8_t)(v * 255.0f + 0.5f);
}

static void color_row_u8(const uint8_t *src, uint32_t width, const uint8_t *table, uint8_t *dst)
{
    for (uint32_t x = 0; x < width; x++)
        memcpy(dst + 3 * (size_t)x, table + 3 * (size_t)src[x], 3);
}

static void color_row_f32(const float *src, uint32_t width, const uint8_t *table, uint8_t *dst)
{
    for (uint32_t x = 0; x < width; x++)
        memcpy(dst + 3 * (size_t)x, table + 3 * (size_t)float_index(src[x]), 3);
}

static bool buffers_overlap(const fx_image *a, const fx_image *b)
{
    const uint8_t *a0 = a->data, *b0 = b->data;
    const uint8_t *a1 = a0 + (size_t)(a->height - 1) * a->stride + fx__row_bytes(a->width, a->channels, a->pixel_type);
    const uint8_t *b1 = b0 + (size_t)(b->height - 1) * b->stride + fx__row_bytes(b->width, b->channels, b->pixel_type);
    return a0 < b1 && b0 < a1;
}

fx_status fx_colormap_apply(const fx_image *map, int32_t colormap, fx_image *out)
{
    fx_status st = fx__image_expect(map, "fx_colormap_apply: map", 1, 0);
    if (st != FX_OK)
        return st;
    if (map->pixel_type != FX_PIXEL_U8 && map->pixel_type != FX_PIXEL_F32)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_colormap_apply: map is FX_PIXEL_U16; valid: FX_PIXEL_U8 (indexes the table) or "
                         "FX_PIXEL_F32 (values in [0,1])");
    st = check_colormap("fx_colormap_apply", colormap);
    if (st != FX_OK)
        return st;
    if (!out)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_colormap_apply: out is NULL");
    fx_image saved = *out;
    bool allocated = false;
    st = fx__output_prepare(out, "fx_colormap_apply: out", map->width, map->height, 3, FX_PIXEL_U8, &allocated);
    if (st != FX_OK)
        return st;
    if (!allocated && buffers_overlap(map, out)) {
        fx__output_abandon(out, &saved, allocated);
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_colormap_apply: out's buffer overlaps map's; coloring cannot work in place");
    }
    const uint8_t *table = fx__colormap_tables[colormap];
    for (uint32_t y = 0; y < map->height; y++) {
        if (map->pixel_type == FX_PIXEL_U8)
            color_row_u8(fx__row(map, y), map->width, table, fx__row(out, y));
        else
            color_row_f32((const float *)fx__row(map, y), map->width, table, fx__row(out, y));
    }
    return FX_OK;
}
