/* Colormaps: ids (OpenCV's COLORMAP_* numbers), names, the 256-entry RGB
 * tables (lib/colormap_tables.c, generated from OpenCV 4.6 by
 * tools/gen_colormaps.py) and coloring of 1-channel maps. */
#include "fx_internal.h"

#include <stdio.h>
#include <string.h>

/* Defined in the generated lib/colormap_tables.c: entry i of each array
 * describes one map, ids ascending. */
extern const uint32_t fx__colormap_entry_count;
extern const int32_t fx__colormap_ids[];
extern const char *const fx__colormap_names[];
extern const uint8_t fx__colormap_tables[][256 * 3];

/* Entry of a colormap id, or -1. The ids are few (23) and ascending; a linear
 * scan is as fast as anything here. */
static int32_t entry_of(int32_t colormap)
{
    for (uint32_t i = 0; i < fx__colormap_entry_count; i++)
        if (fx__colormap_ids[i] == colormap)
            return (int32_t)i;
    return -1;
}

uint32_t fx_colormap_count(void)
{
    return fx__colormap_entry_count;
}

int32_t fx_colormap_at(uint32_t index)
{
    return index < fx__colormap_entry_count ? fx__colormap_ids[index] : -1;
}

const char *fx_colormap_name(int32_t colormap)
{
    int32_t e = entry_of(colormap);
    return e < 0 ? NULL : fx__colormap_names[e];
}

/* "autumn (0), bone (1), ..., gray (100)": every message that lists the maps. */
static const char *valid_list(void)
{
    static _Thread_local char list[512];
    size_t used = 0;
    list[0] = '\0';
    for (uint32_t i = 0; i < fx__colormap_entry_count && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s (%d)", i ? ", " : "", fx__colormap_names[i],
                                 (int)fx__colormap_ids[i]);
    return list;
}

fx_status fx__colormap_check(const char *fn, int32_t colormap)
{
    if (entry_of(colormap) >= 0)
        return FX_OK;
    return fx__error(FX_ERR_INVALID_ARGUMENT,
                     "%s: unknown colormap %d; valid (OpenCV's COLORMAP_* numbers, and fxcam's gray): %s", fn,
                     (int)colormap, valid_list());
}

fx_status fx_colormap_from_name(const char *name, int32_t *colormap)
{
    if (!name)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_colormap_from_name: name is NULL; valid: %s", valid_list());
    if (!colormap)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_colormap_from_name: colormap is NULL");
    for (uint32_t i = 0; i < fx__colormap_entry_count; i++) {
        if (fx__ascii_equal_nocase(name, fx__colormap_names[i])) {
            *colormap = fx__colormap_ids[i];
            return FX_OK;
        }
    }
    return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_colormap_from_name: unknown colormap '%.64s%s'; valid: %s", name,
                     strlen(name) > 64 ? "..." : "", valid_list());
}

fx_status fx_colormap_table(int32_t colormap, uint8_t *rgb)
{
    fx_status st = fx__colormap_check("fx_colormap_table", colormap);
    if (st != FX_OK)
        return st;
    if (!rgb)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_colormap_table: rgb is NULL; pass a buffer of 768 bytes");
    memcpy(rgb, fx__colormap_tables[entry_of(colormap)], 256 * 3);
    return FX_OK;
}

static void color_row_u8(const uint8_t *src, uint32_t width, const uint8_t *table, uint8_t *dst)
{
    for (uint32_t x = 0; x < width; x++)
        memcpy(dst + 3 * (size_t)x, table + 3 * (size_t)src[x], 3);
}

static void color_row_f32(const float *src, uint32_t width, const uint8_t *table, uint8_t *dst)
{
    for (uint32_t x = 0; x < width; x++)
        memcpy(dst + 3 * (size_t)x, table + 3 * (size_t)fx__unit_to_u8(src[x]), 3);
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
    st = fx__colormap_check("fx_colormap_apply", colormap);
    if (st != FX_OK)
        return st;
    if (!out)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_colormap_apply: out is NULL");
    fx_image saved = *out;
    bool allocated = false;
    st = fx__output_prepare(out, "fx_colormap_apply: out", map->width, map->height, 3, FX_PIXEL_U8, &allocated);
    if (st != FX_OK)
        return st;
    if (!allocated && fx__images_overlap(map, out)) {
        fx__output_abandon(out, &saved, allocated);
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_colormap_apply: out's buffer overlaps map's; coloring cannot work in place");
    }
    const uint8_t *table = fx__colormap_tables[entry_of(colormap)];
    for (uint32_t y = 0; y < map->height; y++) {
        if (map->pixel_type == FX_PIXEL_U8)
            color_row_u8(fx__row(map, y), map->width, table, fx__row(out, y));
        else
            color_row_f32((const float *)fx__row(map, y), map->width, table, fx__row(out, y));
    }
    return FX_OK;
}
