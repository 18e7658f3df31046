/* fx_image allocation and the checks every module applies to its buffers. */
#include "fx_internal.h"

#include <stdlib.h>
#include <string.h>

/* No single buffer may exceed 2 GiB: it keeps every index computation far from
 * overflow and catches absurd sizes before malloc does. */
#define FX_MAX_BUFFER_BYTES ((size_t)1 << 31)

size_t fx_pixel_size(int32_t pixel_type)
{
    switch (pixel_type) {
    case FX_PIXEL_U8: return 1;
    case FX_PIXEL_U16: return 2;
    case FX_PIXEL_F32: return 4;
    default: return 0;
    }
}

static fx_status check_shape(const char *what, uint32_t width, uint32_t height, uint32_t channels,
                             int32_t pixel_type)
{
    if (width == 0 || height == 0)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s: size %ux%u is empty; width and height must be >= 1",
                         what, width, height);
    if (channels < 1 || channels > 4)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "%s: %u channels; valid: 1 (gray), 2 (gray+alpha), 3 (RGB), 4 (RGBA)", what, channels);
    if (fx_pixel_size(pixel_type) == 0)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "%s: unknown pixel type %d; valid: FX_PIXEL_U8 (1), FX_PIXEL_U16 (2), FX_PIXEL_F32 (3)",
                         what, (int)pixel_type);
    return FX_OK;
}

fx_status fx__image_check(const fx_image *img, const char *what)
{
    if (!img)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s is NULL", what);
    fx_status st = check_shape(what, img->width, img->height, img->channels, img->pixel_type);
    if (st != FX_OK)
        return st;
    if (!img->data)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s: data is NULL", what);
    size_t row = fx__row_bytes(img->width, img->channels, img->pixel_type);
    if (img->stride < row)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "%s: stride %zu is smaller than a row (%u pixels x %u channels x %zu bytes = %zu)", what,
                         img->stride, img->width, img->channels, fx_pixel_size(img->pixel_type), row);
    return FX_OK;
}

static const char *type_name(int32_t pixel_type)
{
    switch (pixel_type) {
    case FX_PIXEL_U8: return "FX_PIXEL_U8";
    case FX_PIXEL_U16: return "FX_PIXEL_U16";
    case FX_PIXEL_F32: return "FX_PIXEL_F32";
    default: return "an unknown pixel type";
    }
}

fx_status fx__image_expect(const fx_image *img, const char *what, uint32_t channels, int32_t pixel_type)
{
    fx_status st = fx__image_check(img, what);
    if (st != FX_OK)
        return st;
    if (channels && img->channels != channels)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s has %u channels; expected %u", what, img->channels,
                         channels);
    if (pixel_type && img->pixel_type != pixel_type)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s is %s; expected %s", what, type_name(img->pixel_type),
                         type_name(pixel_type));
    return FX_OK;
}

fx_status fx_image_alloc(fx_image *img, uint32_t width, uint32_t height, uint32_t channels, int32_t pixel_type)
{
    if (!img)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_image_alloc: img is NULL");
    fx_status st = check_shape("fx_image_alloc", width, height, channels, pixel_type);
    if (st != FX_OK)
        return st;
    size_t row = fx__row_bytes(width, channels, pixel_type);
    if (row > FX_MAX_BUFFER_BYTES / height)
        return fx__error(FX_ERR_LIMIT, "fx_image_alloc: %ux%u x %u channels x %zu bytes exceeds the 2 GiB buffer limit",
                         width, height, channels, fx_pixel_size(pixel_type));
    void *data = calloc(height, row);
    if (!data)
        return fx__error(FX_ERR_OUT_OF_MEMORY, "fx_image_alloc: cannot allocate %zu bytes", row * height);
    img->data = data;
    img->stride = row;
    img->width = width;
    img->height = height;
    img->channels = channels;
    img->pixel_type = pixel_type;
    return FX_OK;
}

void fx_image_free(fx_image *img)
{
    if (!img)
        return;
    free(img->data);
    memset(img, 0, sizeof *img);
}

fx_status fx__output_prepare(fx_image *out, const char *what, uint32_t width, uint32_t height, uint32_t channels,
                             int32_t pixel_type, bool *allocated)
{
    *allocated = false;
    if (!out)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s is NULL", what);
    if (!out->data) {
        fx_image fresh;
        fx_status st = fx_image_alloc(&fresh, width, height, channels, pixel_type);
        if (st != FX_OK)
            return st;
        *out = fresh;
        *allocated = true;
        return FX_OK;
    }
    fx_status st = fx__image_check(out, what);
    if (st != FX_OK)
        return st;
    if (out->width != width || out->height != height || out->channels != channels || out->pixel_type != pixel_type)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "%s: caller's buffer is %ux%u, %u channels, %s; this call produces %ux%u, %u channels, %s "
                         "(or pass data = NULL to let fxcam allocate)",
                         what, out->width, out->height, out->channels, type_name(out->pixel_type), width, height,
                         channels, type_name(pixel_type));
    return FX_OK;
}

void fx__output_abandon(fx_image *out, const fx_image *saved, bool allocated)
{
    if (allocated)
        free(out->data);
    *out = *saved;
}

fx_status fx__options_merge(void *merged, size_t full_size, const void *given, const char *what)
{
    if (!given)
        return FX_OK;
    uint32_t size;
    memcpy(&size, given, sizeof size); /* struct_size is always the first field */
    if (size < sizeof size)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s: struct_size is %u; initialize the struct with its *_init() function",
                         what, size);
    if (size > full_size)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "%s: struct_size %u is larger than this library's (%zu): the program was built against a "
                         "newer fxcam.h than the libfxcam.so it runs with",
                         what, size, full_size);
    memcpy((uint8_t *)merged + sizeof size, (const uint8_t *)given + sizeof size, size - sizeof size);
    return FX_OK;
}

static uintptr_t span_end(const fx_image *img)
{
    return (uintptr_t)fx__row(img, img->height - 1) + fx__row_bytes(img->width, img->channels, img->pixel_type);
}

bool fx__images_overlap(const fx_image *a, const fx_image *b)
{
    return (uintptr_t)a->data < span_end(b) && (uintptr_t)b->data < span_end(a);
}
