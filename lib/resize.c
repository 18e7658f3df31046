/* Bilinear resize with half-pixel centres (OpenCV INTER_LINEAR, torch
 * interpolate(bilinear, align_corners=False)).
 *
 * The work is split the way OpenCV splits it: each source row that is needed
 * is first resized horizontally into a float row of the output width, then
 * every output row is a weighted sum of two such rows. Upsampling reuses each
 * horizontal row for many output rows, so a 224x224 -> 2048x2048 map costs
 * little more than one multiply-add per output sample. */
#include "fx_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Where an output coordinate samples its source axis: the two neighbouring
 * source indices and the weight of the second one. */
typedef struct axis_sample {
    uint32_t lo;
    uint32_t hi;
    float weight_hi;
} axis_sample;

/* Per-sample horizontal table: offsets (in samples, channel included) of the
 * two source samples and the weight of the second. Indexed by x*channels+c so
 * that the inner loop does not care about the channel count. */
typedef struct column_table {
    size_t *offset_lo;
    size_t *offset_hi;
    float *weight_hi;
} column_table;

/* Half-pixel mapping src = (dst + 0.5) * scale - 0.5, clamped like OpenCV:
 * left of the first centre all weight goes to pixel 0, right of the last
 * centre to the last pixel. The position is computed in double and rounded to
 * float as OpenCV does, so the fractional weights agree to the last bit. */
static axis_sample axis_map(uint32_t dst, double scale, uint32_t src_size)
{
    float pos = (float)(((double)dst + 0.5) * scale - 0.5);
    float base = floorf(pos);
    axis_sample s;
    if (base < 0.0f) {
        s.lo = s.hi = 0;
        s.weight_hi = 0.0f;
    } else if (base >= (float)(src_size - 1)) {
        s.lo = s.hi = src_size - 1;
        s.weight_hi = 0.0f;
    } else {
        s.lo = (uint32_t)base;
        s.hi = s.lo + 1;
        s.weight_hi = pos - base;
    }
    return s;
}

static void column_table_fill(column_table *t, uint32_t src_width, uint32_t dst_width, uint32_t channels)
{
    double scale = (double)src_width / (double)dst_width;
    for (uint32_t x = 0; x < dst_width; x++) {
        axis_sample s = axis_map(x, scale, src_width);
        for (uint32_t c = 0; c < channels; c++) {
            size_t i = (size_t)x * channels + c;
            t->offset_lo[i] = (size_t)s.lo * channels + c;
            t->offset_hi[i] = (size_t)s.hi * channels + c;
            t->weight_hi[i] = s.weight_hi;
        }
    }
}

/* One horizontal pass per source type: converting while interpolating avoids
 * a second full-size float copy of the source. */
static void hresize_u8(const uint8_t *src, const column_table *t, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++) {
        float w = t->weight_hi[i];
        dst[i] = (float)src[t->offset_lo[i]] * (1.0f - w) + (float)src[t->offset_hi[i]] * w;
    }
}

static void hresize_u16(const uint16_t *src, const column_table *t, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++) {
        float w = t->weight_hi[i];
        dst[i] = (float)src[t->offset_lo[i]] * (1.0f - w) + (float)src[t->offset_hi[i]] * w;
    }
}

static void hresize_f32(const float *src, const column_table *t, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++) {
        float w = t->weight_hi[i];
        dst[i] = src[t->offset_lo[i]] * (1.0f - w) + src[t->offset_hi[i]] * w;
    }
}

static void hresize_row(const fx_image *src, uint32_t y, const column_table *t, size_t n, float *dst)
{
    const void *row = fx__row(src, y);
    switch (src->pixel_type) {
    case FX_PIXEL_U8: hresize_u8(row, t, n, dst); break;
    case FX_PIXEL_U16: hresize_u16(row, t, n, dst); break;
    default: hresize_f32(row, t, n, dst); break;
    }
}

/* Vertical pass and conversion to the output type. Integer outputs are
 * clamped before rounding: the weights are convex, but float rounding may
 * land a hair outside the range. */
static void vresize_u8(const float *a, const float *b, float w, size_t n, uint8_t *dst)
{
    for (size_t i = 0; i < n; i++) {
        float v = a[i] * (1.0f - w) + b[i] * w;
        v = v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v);
        dst[i] = (uint8_t)(v + 0.5f);
    }
}

static void vresize_u16(const float *a, const float *b, float w, size_t n, uint16_t *dst)
{
    for (size_t i = 0; i < n; i++) {
        float v = a[i] * (1.0f - w) + b[i] * w;
        v = v < 0.0f ? 0.0f : (v > 65535.0f ? 65535.0f : v);
        dst[i] = (uint16_t)(v + 0.5f);
    }
}

static void vresize_f32(const float *a, const float *b, float w, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = a[i] * (1.0f - w) + b[i] * w;
}

static void vresize_row(const float *a, const float *b, float w, size_t n, const fx_image *out, uint32_t y)
{
    void *row = fx__row(out, y);
    switch (out->pixel_type) {
    case FX_PIXEL_U8: vresize_u8(a, b, w, n, row); break;
    case FX_PIXEL_U16: vresize_u16(a, b, w, n, row); break;
    default: vresize_f32(a, b, w, n, row); break;
    }
}

/* Scratch memory for one call: the column table and the two horizontally
 * resized rows, in one block so that there is a single failure point. */
typedef struct resize_scratch {
    void *block;
    column_table columns;
    float *rows[2];
} resize_scratch;

static bool scratch_alloc(resize_scratch *s, size_t n)
{
    size_t per_sample = 2 * sizeof(size_t) + 3 * sizeof(float);
    if (n > SIZE_MAX / per_sample)
        return false;
    s->block = malloc(n * per_sample);
    if (!s->block)
        return false;
    /* size_t arrays first keeps every array aligned for its type. */
    s->columns.offset_lo = s->block;
    s->columns.offset_hi = s->columns.offset_lo + n;
    s->columns.weight_hi = (float *)(s->columns.offset_hi + n);
    s->rows[0] = s->columns.weight_hi + n;
    s->rows[1] = s->rows[0] + n;
    return true;
}

static void resize_rows(const fx_image *src, const fx_image *out, resize_scratch *s)
{
    size_t n = (size_t)out->width * out->channels;
    double scale = (double)src->height / (double)out->height;
    /* Source rows currently held in rows[0] and rows[1]; UINT32_MAX = none. */
    uint32_t held[2] = {UINT32_MAX, UINT32_MAX};
    for (uint32_t y = 0; y < out->height; y++) {
        axis_sample r = axis_map(y, scale, src->height);
        if (held[0] != r.lo) {
            if (held[1] == r.lo) {
                float *t = s->rows[0];
                s->rows[0] = s->rows[1];
                s->rows[1] = t;
                held[0] = held[1];
                held[1] = UINT32_MAX;
            } else {
                hresize_row(src, r.lo, &s->columns, n, s->rows[0]);
                held[0] = r.lo;
            }
        }
        if (held[1] != r.hi) {
            if (r.hi == r.lo) {
                memcpy(s->rows[1], s->rows[0], n * sizeof(float));
            } else {
                hresize_row(src, r.hi, &s->columns, n, s->rows[1]);
            }
            held[1] = r.hi;
        }
        vresize_row(s->rows[0], s->rows[1], r.weight_hi, n, out, y);
    }
}

fx_status fx_resize_bilinear(const fx_image *src, fx_image *out)
{
    fx_status st = fx__image_check(src, "fx_resize_bilinear: src");
    if (st != FX_OK)
        return st;
    if (!out)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_resize_bilinear: out is NULL");
    if (out->width == 0 || out->height == 0)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_resize_bilinear: target size %ux%u is empty; set out->width and out->height to "
                         "the size wanted (>= 1)",
                         out->width, out->height);
    fx_image saved = *out;
    bool allocated = false;
    st = fx__output_prepare(out, "fx_resize_bilinear: out", saved.width, saved.height, src->channels,
                            src->pixel_type, &allocated);
    if (st != FX_OK)
        return st;
    if (!allocated && fx__images_overlap(src, out)) {
        fx__output_abandon(out, &saved, allocated);
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_resize_bilinear: out's buffer overlaps src's; resizing cannot work in place");
    }
    resize_scratch scratch;
    size_t n = (size_t)out->width * out->channels;
    if (!scratch_alloc(&scratch, n)) {
        fx__output_abandon(out, &saved, allocated);
        return fx__error(FX_ERR_OUT_OF_MEMORY, "fx_resize_bilinear: cannot allocate row buffers for width %u",
                         saved.width);
    }
    column_table_fill(&scratch.columns, src->width, out->width, out->channels);
    resize_rows(src, out, &scratch);
    free(scratch.block);
    return FX_OK;
}
