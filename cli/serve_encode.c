/* JSON text, base64 and in-memory PNG for `fxcam serve`. */
#include "serve.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when it is not one
 * (stray continuation byte, overlong form, surrogate, past U+10FFFF). */
static size_t utf8_length(const unsigned char *p)
{
    if (p[0] < 0x80) {
        return 1;
    }
    size_t len = p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : p[0] >= 0xe0 && p[0] <= 0xef ? 3
               : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;
    uint32_t cp = len == 2 ? p[0] & 0x1fu : len == 3 ? p[0] & 0x0fu : p[0] & 0x07u;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = cp << 6 | (p[i] & 0x3fu);
    }
    bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    bool invalid = cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff);
    return len == 0 || overlong || invalid ? 0 : len;
}

void serve_json_string(cli_text *t, const char *s)
{
    cli_text_printf(t, "\"");
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        size_t len = utf8_length(p);
        if (len == 0) {
            cli_text_printf(t, "\\ufffd");
            p++;
            continue;
        }
        switch (*p) {
        case '"': cli_text_printf(t, "\\\""); break;
        case '\\': cli_text_printf(t, "\\\\"); break;
        case '\b': cli_text_printf(t, "\\b"); break;
        case '\f': cli_text_printf(t, "\\f"); break;
        case '\n': cli_text_printf(t, "\\n"); break;
        case '\r': cli_text_printf(t, "\\r"); break;
        case '\t': cli_text_printf(t, "\\t"); break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                cli_text_printf(t, "\\u%04x", *p);
            } else {
                cli_text_printf(t, "%.*s", (int)len, (const char *)p);
            }
        }
        p += len;
    }
    cli_text_printf(t, "\"");
}

void serve_json_number(cli_text *t, double v)
{
    if (isfinite(v)) {
        cli_text_printf(t, "%.7g", v);
    } else {
        cli_text_printf(t, "null");
    }
}

void serve_json_key(cli_text *t, const char *key, bool first)
{
    if (!first) {
        cli_text_printf(t, ",");
    }
    serve_json_string(t, key);
    cli_text_printf(t, ":");
}

void serve_json_base64(cli_text *t, const uint8_t *data, size_t size)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t out_size = (size + 2) / 3 * 4;
    /* Written straight into the text, reserved once: a figure is several MB
     * and cli_text_printf("%s") would measure and copy it twice more. */
    size_t need = t->size + out_size + 3; /* two quotes and the NUL */
    if (need > t->capacity) {
        size_t cap = t->capacity ? t->capacity : 256;
        while (cap < need) {
            cap *= 2;
        }
        char *grown = realloc(t->data, cap);
        if (!grown) {
            fputs("fxcam: error: out of memory\n", stderr);
            exit(CLI_EXIT_FAILURE);
        }
        t->data = grown;
        t->capacity = cap;
    }
    char *out = t->data + t->size;
    *out++ = '"';
    size_t o = 0;
    for (size_t i = 0; i < size; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < size) v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < size) v |= data[i + 2];
        out[o++] = digits[v >> 18 & 63];
        out[o++] = digits[v >> 12 & 63];
        out[o++] = i + 1 < size ? digits[v >> 6 & 63] : '=';
        out[o++] = i + 2 < size ? digits[v & 63] : '=';
    }
    out[o++] = '"';
    out[o] = '\0';
    t->size += 1 + o;
}

void serve_bytes_free(serve_bytes *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static void write_to_memory(png_structp png, png_bytep data, png_size_t length)
{
    serve_bytes *b = png_get_io_ptr(png);
    if (b->size + length > b->capacity) {
        size_t cap = b->capacity ? b->capacity : 65536;
        while (cap < b->size + length) {
            cap *= 2;
        }
        uint8_t *grown = realloc(b->data, cap);
        if (!grown) {
            png_error(png, "out of memory");
        }
        b->data = grown;
        b->capacity = cap;
    }
    memcpy(b->data + b->size, data, length);
    b->size += length;
}

static void flush_nothing(png_structp png)
{
    (void)png;
}

bool serve_png_encode(const fx_image *img, bool drawn, serve_bytes *out)
{
    if (!img || !img->data || img->pixel_type != FX_PIXEL_U8 || (img->channels != 1 && img->channels != 3)) {
        return false;
    }
    memset(out, 0, sizeof *out);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return false;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        serve_bytes_free(out);
        return false;
    }
    png_set_write_fn(png, out, write_to_memory, flush_nothing);
    /* zlib level 1. Images and maps: the library writer's filters at its
     * default level (lib/image.c, filters_for): UP for color rows, SUB for
     * gray. A drawn figure (flat panels, bars and text) without a filter:
     * zlib finds its runs as they are, and it encodes in about half the time
     * for a PNG about 20 % larger (docs/performance.md, "fxcam serve"). */
    png_set_compression_level(png, 1);
    png_set_filter(png, PNG_FILTER_TYPE_BASE,
                   drawn ? PNG_FILTER_NONE : img->channels == 3 ? PNG_FILTER_UP : PNG_FILTER_SUB);
    png_set_IHDR(png, info, img->width, img->height, 8, img->channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (uint32_t y = 0; y < img->height; y++) {
        png_write_row(png, (png_const_bytep)img->data + (size_t)y * img->stride);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return true;
}

bool serve_heatmap_gray8(const fx_image *heatmap, fx_image *gray)
{
    if (!heatmap || heatmap->pixel_type != FX_PIXEL_F32 || heatmap->channels != 1) {
        return false;
    }
    if (fx_image_alloc(gray, heatmap->width, heatmap->height, 1, FX_PIXEL_U8) != FX_OK) {
        return false;
    }
    for (uint32_t y = 0; y < heatmap->height; y++) {
        const float *row = (const float *)((const uint8_t *)heatmap->data + (size_t)y * heatmap->stride);
        uint8_t *dst = (uint8_t *)gray->data + (size_t)y * gray->stride;
        for (uint32_t x = 0; x < heatmap->width; x++) {
            double v = isnan(row[x]) ? 0.0 : row[x] < 0.0f ? 0.0 : row[x] > 1.0f ? 1.0 : (double)row[x];
            dst[x] = (uint8_t)floor(v * 255.0 + 0.5);
        }
    }
    return true;
}
