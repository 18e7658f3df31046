/* Preprocessing that matches training: the resize modes users train with
 * (stretch, letterbox, torchvision's Resize + CenterCrop), the antialiased
 * resampler torchvision and PIL use when downscaling, and the inverse
 * geometry that brings a map back onto the image (docs/algorithms.md). */
#include "preprocess.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const resize_names[] = {"default", "stretch", "stretch-antialias", "letterbox",
                                           "shorter-side-crop"};
#define RESIZE_COUNT (sizeof resize_names / sizeof resize_names[0])

const char *fx_resize_mode_name(int32_t mode)
{
    return mode >= 0 && (size_t)mode < RESIZE_COUNT ? resize_names[mode] : NULL;
}

fx_status fx_resize_mode_from_name(const char *name, int32_t *mode)
{
    if (!name || !mode)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_resize_mode_from_name: %s is NULL", name ? "mode" : "name");
    for (size_t i = 0; i < RESIZE_COUNT; i++)
        if (fx__ascii_equal_nocase(name, resize_names[i])) {
            *mode = (int32_t)i;
            return FX_OK;
        }
    return fx__error(FX_ERR_INVALID_ARGUMENT,
                     "unknown resize mode '%.64s'; valid: stretch, stretch-antialias, letterbox, shorter-side-crop",
                     name);
}

/* ---- Geometry ------------------------------------------------------------ */

static uint32_t at_least_one(double v)
{
    return v < 1.0 ? 1u : (uint32_t)v;
}

/* Image pixels [*first, *first + *count) whose centres land in [0, input). */
static void seen_span(uint32_t image, double scale, int64_t offset, uint32_t input, uint32_t *first, uint32_t *count)
{
    /* centre x + 0.5 lands at (x + 0.5) * scale + offset */
    double lo = ((double)0 - (double)offset) / scale - 0.5, hi = ((double)input - (double)offset) / scale - 0.5;
    double a = ceil(lo), b = ceil(hi); /* x >= lo and x < hi */
    if (a < 0)
        a = 0;
    if (b > image)
        b = image;
    *first = (uint32_t)a;
    *count = b > a ? (uint32_t)(b - a) : 0;
}

fx_status fx__geometry_plan(int32_t mode, uint32_t resize_size, uint32_t image_w, uint32_t image_h, uint32_t input_w,
                            uint32_t input_h, fx__geometry *g)
{
    memset(g, 0, sizeof *g);
    g->mode = mode;
    g->input_w = input_w;
    g->input_h = input_h;
    g->antialias = mode != FX_RESIZE_STRETCH;
    switch (mode) {
    case FX_RESIZE_STRETCH:
    case FX_RESIZE_STRETCH_ANTIALIAS:
        g->resized_w = input_w;
        g->resized_h = input_h;
        break;
    case FX_RESIZE_LETTERBOX: {
        double s = fmin((double)input_w / image_w, (double)input_h / image_h);
        g->resized_w = at_least_one(fmin(round(image_w * s), input_w));
        g->resized_h = at_least_one(fmin(round(image_h * s), input_h));
        g->offset_x = (input_w - g->resized_w) / 2;
        g->offset_y = (input_h - g->resized_h) / 2;
        break;
    }
    case FX_RESIZE_SHORTER_SIDE_CROP: {
        /* torchvision Resize(size) (v0.8+): the shorter side becomes size and
         * the longer int(size * long / short); CenterCrop then takes
         * int(round((resized - crop) / 2.0)) with Python's halves to even. */
        if (image_w <= image_h) {
            g->resized_w = resize_size;
            g->resized_h = at_least_one((double)resize_size * image_h / image_w);
        } else {
            g->resized_h = resize_size;
            g->resized_w = at_least_one((double)resize_size * image_w / image_h);
        }
        g->offset_x = -(int64_t)nearbyint(((double)g->resized_w - input_w) / 2.0);
        g->offset_y = -(int64_t)nearbyint(((double)g->resized_h - input_h) / 2.0);
        break;
    }
    default:
        return fx__error(FX_ERR_INVALID_ARGUMENT, "resize mode %d; valid: FX_RESIZE_STRETCH (1), _STRETCH_ANTIALIAS (2), "
                                                  "_LETTERBOX (3), _SHORTER_SIDE_CROP (4)",
                         (int)mode);
    }
    if ((uint64_t)g->resized_w * g->resized_h * 4u * sizeof(float) > (1ull << 31))
        return fx__error(FX_ERR_LIMIT, "resizing a %ux%u image to %ux%u (resize_size %u) would take over 2 GiB; "
                                       "use a smaller resize_size",
                         image_w, image_h, g->resized_w, g->resized_h, resize_size);
    g->scale_x = (double)g->resized_w / image_w;
    g->scale_y = (double)g->resized_h / image_h;
    seen_span(image_w, g->scale_x, g->offset_x, input_w, &g->seen_x, &g->seen_w);
    seen_span(image_h, g->scale_y, g->offset_y, input_h, &g->seen_y, &g->seen_h);
    return FX_OK;
}

/* ---- Antialiased resampling ------------------------------------------------ */

/* Taps of one output sample along an axis: first source index, count, and
 * the normalized weights (stored at weights + i * max_taps). */
typedef struct axis_taps {
    uint32_t *first, *count;
    double *weights;
    uint32_t max_taps;
} axis_taps;

static void axis_taps_free(axis_taps *t)
{
    free(t->first);
    free(t->count);
    free(t->weights);
}

/* torch's _upsample_bilinear2d_aa / PIL's ImagingResample weights. */
static fx_status axis_taps_make(uint32_t in, uint32_t out, axis_taps *t)
{
    double scale = (double)in / out;
    double support = scale >= 1.0 ? scale : 1.0;
    double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
    t->max_taps = (uint32_t)ceil(support) * 2 + 1;
    t->first = malloc(out * sizeof *t->first);
    t->count = malloc(out * sizeof *t->count);
    t->weights = malloc((size_t)out * t->max_taps * sizeof *t->weights);
    if (!t->first || !t->count || !t->weights) {
        axis_taps_free(t);
        return fx__error(FX_ERR_OUT_OF_MEMORY, "cannot allocate resampling weights for %u -> %u", in, out);
    }
    for (uint32_t i = 0; i < out; i++) {
        double center = scale * (i + 0.5);
        int64_t lo = (int64_t)(center - support + 0.5), hi = (int64_t)(center + support + 0.5);
        if (lo < 0)
            lo = 0;
        if (hi > (int64_t)in)
            hi = in;
        uint32_t n = hi > lo ? (uint32_t)(hi - lo) : 0;
        if (n > t->max_taps)
            n = t->max_taps;
        double *w = t->weights + (size_t)i * t->max_taps, total = 0.0;
        for (uint32_t j = 0; j < n; j++) {
            double x = ((double)j + (double)lo - center + 0.5) * invscale;
            w[j] = fmax(0.0, 1.0 - fabs(x));
            total += w[j];
        }
        for (uint32_t j = 0; j < n && total > 0.0; j++)
            w[j] /= total;
        t->first[i] = (uint32_t)lo;
        t->count[i] = n;
    }
    return FX_OK;
}

fx_status fx__resample_antialias(const float *src, uint32_t src_w, uint32_t src_h, uint32_t channels, float *dst,
                                 uint32_t dst_w, uint32_t dst_h)
{
    axis_taps tx = {0}, ty = {0};
    fx_status st = axis_taps_make(src_w, dst_w, &tx);
    if (st == FX_OK)
        st = axis_taps_make(src_h, dst_h, &ty);
    size_t row = (size_t)dst_w * channels;
    double *horizontal = st == FX_OK ? malloc((size_t)src_h * row * sizeof *horizontal) : NULL;
    if (st == FX_OK && !horizontal)
        st = fx__error(FX_ERR_OUT_OF_MEMORY, "cannot allocate a %ux%u resampling buffer", dst_w, src_h);
    if (st != FX_OK) {
        axis_taps_free(&tx);
        axis_taps_free(&ty);
        return st;
    }
    /* Horizontal pass into double rows, then the vertical pass, as torch. */
    for (uint32_t y = 0; y < src_h; y++) {
        const float *in = src + (size_t)y * src_w * channels;
        double *out = horizontal + (size_t)y * row;
        for (uint32_t x = 0; x < dst_w; x++) {
            const double *w = tx.weights + (size_t)x * tx.max_taps;
            for (uint32_t c = 0; c < channels; c++) {
                double sum = 0.0;
                for (uint32_t j = 0; j < tx.count[x]; j++)
                    sum += w[j] * in[((size_t)tx.first[x] + j) * channels + c];
                out[(size_t)x * channels + c] = sum;
            }
        }
    }
    for (uint32_t y = 0; y < dst_h; y++) {
        const double *w = ty.weights + (size_t)y * ty.max_taps;
        float *out = dst + (size_t)y * row;
        for (size_t i = 0; i < row; i++) {
            double sum = 0.0;
            for (uint32_t j = 0; j < ty.count[y]; j++)
                sum += w[j] * horizontal[((size_t)ty.first[y] + j) * row + i];
            out[i] = (float)sum;
        }
    }
    free(horizontal);
    axis_taps_free(&tx);
    axis_taps_free(&ty);
    return FX_OK;
}

/* ---- Image to model input --------------------------------------------------- */

/* Channel c of pixel x of row y in [0,1]: looked up in table (fx__unit_table)
 * when there is one, else through the map. */
static inline float unit_at(const fx__unit_map *map, const float *table, const fx_image *src, const uint8_t *row,
                            uint32_t x, uint32_t y, uint32_t c)
{
    size_t i = (size_t)x * src->channels + c;
    if (!table)
        return fx__unit_sample(map, src, x, y, c);
    return table[src->pixel_type == FX_PIXEL_U8 ? row[i] : ((const uint16_t *)(const void *)row)[i]];
}

/* The image as float [0,1] with the model's channel count, alpha dropped.
 * table: NULL or fx__unit_table's values for src. */
static void to_model_channels(const fx_image *src, const fx__unit_map *map, const float *table, uint32_t channels,
                              fx_image *dst)
{
    uint32_t color = src->channels >= 3 ? 3 : 1;
    for (uint32_t y = 0; y < src->height; y++) {
        float *out = (float *)(void *)fx__row(dst, y);
        const uint8_t *row = fx__row(src, y);
        if (table && color == 1 && channels == 1 && src->pixel_type == FX_PIXEL_U16 && src->channels == 1) {
            const uint16_t *in = (const uint16_t *)(const void *)row;
            for (uint32_t x = 0; x < src->width; x++)
                out[x] = table[in[x]];
            continue;
        }
        for (uint32_t x = 0; x < src->width; x++) {
            float v[3];
            for (uint32_t c = 0; c < color; c++)
                v[c] = unit_at(map, table, src, row, x, y, c);
            if (channels == 1) {
                out[x] = color == 3 ? 0.299f * v[0] + 0.587f * v[1] + 0.114f * v[2] : v[0];
            } else {
                for (uint32_t c = 0; c < 3; c++)
                    out[(size_t)x * 3 + c] = color == 3 ? v[c] : v[0];
            }
        }
    }
}

static fx_status resample(const fx_image *unit, const fx__geometry *g, fx_image *resized)
{
    if (!g->antialias) {
        resized->width = g->resized_w;
        resized->height = g->resized_h;
        return fx_resize_bilinear(unit, resized);
    }
    fx_status st = fx_image_alloc(resized, g->resized_w, g->resized_h, unit->channels, FX_PIXEL_F32);
    if (st == FX_OK)
        st = fx__resample_antialias(unit->data, unit->width, unit->height, unit->channels, resized->data,
                                    g->resized_w, g->resized_h);
    if (st != FX_OK)
        fx_image_free(resized);
    return st;
}

fx_status fx__preprocess_image(const fx_image *img, const fx__unit_map *map, const fx__geometry *g, uint32_t channels,
                               const float *mean, const float *std, float *dst)
{
    fx_image unit = {0}, resized = {0};
    /* A gray image gives every model channel the same values: resample one
     * channel and copy it (the same arithmetic per channel, a third of it). */
    uint32_t work = img->channels >= 3 ? channels : 1;
    fx_status st = fx_image_alloc(&unit, img->width, img->height, work, FX_PIXEL_F32);
    if (st != FX_OK)
        return st;
    /* One value per possible stored sample (256 KiB for 16 bits) instead of
     * a division per sample: the same floats (fx__unit_table). */
    float *table = img->pixel_type == FX_PIXEL_F32 ? NULL : malloc(65536 * sizeof *table);
    if (table && !fx__unit_table(map, img, table)) {
        free(table);
        table = NULL;
    }
    to_model_channels(img, map, table, work, &unit);
    free(table);
    st = resample(&unit, g, &resized);
    fx_image_free(&unit);
    if (st != FX_OK)
        return st;
    size_t plane = (size_t)g->input_w * g->input_h;
    for (uint32_t y = 0; y < g->input_h; y++) {
        int64_t ry = (int64_t)y - g->offset_y;
        for (uint32_t x = 0; x < g->input_w; x++) {
            int64_t rx = (int64_t)x - g->offset_x;
            bool inside = rx >= 0 && ry >= 0 && rx < (int64_t)g->resized_w && ry < (int64_t)g->resized_h;
            const float *px = inside ? (const float *)(const void *)fx__row(&resized, (uint32_t)ry) + rx * work
                                     : NULL;
            for (uint32_t c = 0; c < channels; c++) {
                float v = px ? px[work == 1 ? 0 : c] : 0.0f; /* padding is black before normalization */
                dst[c * plane + (size_t)y * g->input_w + x] = (v - mean[c]) / std[c];
            }
        }
    }
    fx_image_free(&resized);
    return FX_OK;
}

/* ---- Map back onto the image ---------------------------------------------- */

/* Bilinear sample of the map at continuous position p (half-pixel centres),
 * clamped at the edges like fx_resize_bilinear. */
static double axis_weight(double p, uint32_t n, uint32_t *lo, uint32_t *hi)
{
    double base = floor(p), f = p - base;
    if (base < 0) {
        *lo = *hi = 0;
        return 0.0;
    }
    if (base >= n - 1) {
        *lo = *hi = n - 1;
        return 0.0;
    }
    *lo = (uint32_t)base;
    *hi = *lo + 1;
    return f;
}

fx_status fx__map_to_image(const float *lowres, uint32_t h, uint32_t w, const fx__geometry *g, uint32_t image_w,
                           uint32_t image_h, int normalize, fx_image *out)
{
    if (g->mode == FX_RESIZE_STRETCH || g->mode == FX_RESIZE_STRETCH_ANTIALIAS) {
        out->width = image_w;
        out->height = image_h;
        return fx_cam_upsample(lowres, h, w, normalize, out);
    }
    fx_status st = fx_image_alloc(out, image_w, image_h, 1, FX_PIXEL_F32);
    if (st != FX_OK)
        return st;
    double lo = INFINITY, hi = -INFINITY, low_lo = INFINITY, low_hi = -INFINITY;
    for (size_t i = 0; i < (size_t)h * w; i++) {
        if (!isfinite(lowres[i])) {
            fx_image_free(out);
            return fx__error(FX_ERR_NUMERIC, "map value %zu is %g; maps must be finite", i, (double)lowres[i]);
        }
        low_lo = fmin(low_lo, lowres[i]);
        low_hi = fmax(low_hi, lowres[i]);
    }
    for (uint32_t y = g->seen_y; y < g->seen_y + g->seen_h; y++) {
        double py = (((double)y + 0.5) * g->scale_y + (double)g->offset_y) * h / g->input_h - 0.5;
        uint32_t y0, y1;
        double fy = axis_weight(py, h, &y0, &y1);
        float *row = (float *)(void *)fx__row(out, y);
        for (uint32_t x = g->seen_x; x < g->seen_x + g->seen_w; x++) {
            double px = (((double)x + 0.5) * g->scale_x + (double)g->offset_x) * w / g->input_w - 0.5;
            uint32_t x0, x1;
            double fx = axis_weight(px, w, &x0, &x1);
            double top = lowres[(size_t)y0 * w + x0] * (1 - fx) + lowres[(size_t)y0 * w + x1] * fx;
            double bottom = lowres[(size_t)y1 * w + x0] * (1 - fx) + lowres[(size_t)y1 * w + x1] * fx;
            double v = top * (1 - fy) + bottom * fy;
            row[x] = (float)v;
            lo = fmin(lo, row[x]);
            hi = fmax(hi, row[x]);
        }
    }
    if (!normalize || !(hi >= lo))
        return FX_OK;
    /* The rule of fx_cam_upsample: flatness on the low-resolution map, then
     * on the seen values; else min-max over the seen pixels only. */
    bool flat = fx__spread_is_negligible(low_hi - low_lo, fmax(fabs(low_lo), fabs(low_hi))) ||
                fx__spread_is_negligible(hi - lo, fmax(fabs(lo), fabs(hi)));
    for (uint32_t y = g->seen_y; y < g->seen_y + g->seen_h; y++) {
        float *row = (float *)(void *)fx__row(out, y);
        for (uint32_t x = g->seen_x; x < g->seen_x + g->seen_w; x++) {
            double v = flat ? 0.0 : ((double)row[x] - lo) / (hi - lo);
            row[x] = (float)(v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v);
        }
    }
    return FX_OK;
}
