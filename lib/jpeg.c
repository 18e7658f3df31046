/* JPEG input through libjpeg-turbo's libjpeg API.
 *
 * Gray JPEGs give 1 channel, YCbCr and RGB JPEGs 3 channels (RGB), 8 bits.
 * The EXIF orientation (APP1, tag 0x0112) is applied, as PIL's
 * ImageOps.exif_transpose and OpenCV's imread do, so the pixels are upright
 * as a viewer shows them. CMYK/YCCK (print) JPEGs are refused: converting
 * them needs the ICC profile they were separated with. Every libjpeg error and
 * every warning (premature end of data, corrupt entropy data) is an error:
 * libjpeg "recovers" from those by inventing pixels. The declared size is
 * checked against the caller's limits after the header and before anything
 * the size of the image is allocated. */
#include "image_formats.h"

#if defined(FX_HAVE_JPEG)

#include <jpeglib.h>
#include <jerror.h>

#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

/* A progressive JPEG may have any number of scans, each a pass over the whole
 * image; a hostile file with thousands of tiny scans takes minutes. Real
 * encoders write at most a few dozen (libjpeg's default script has 10);
 * libjpeg-turbo's TurboJPEG API uses 500 as its limit too. */
#define FX_JPEG_MAX_SCANS 500

/* The APP1 Exif block: "Exif\0\0" then a TIFF header and IFD0 (EXIF 2.32,
 * section 4.5.4; TIFF 6.0 section 2). */
#define FX_EXIF_ORIENTATION_TAG 0x0112
#define FX_TIFF_TYPE_SHORT 3

struct jpeg_decoder {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr err;
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    FILE *file;           /* the source: a file, or data/size in memory */
    const void *data;
    size_t size;
    const char *label;
    const fx_load_options *limits;
    fx_image decoded;     /* as stored, before orientation */
    fx_image oriented;    /* after orientation (when not 1) */
    fx_status status;     /* set by whoever recorded the message */
};

/* ---- Errors --------------------------------------------------------------- */

static void record_libjpeg_error(struct jpeg_decoder *d, const char *kind)
{
    if (d->status != FX_OK)
        return;
    char msg[JMSG_LENGTH_MAX];
    d->err.format_message((j_common_ptr)&d->cinfo, msg);
    int code = d->err.msg_code;
    if (code == JERR_OUT_OF_MEMORY)
        d->status = fx__error(FX_ERR_OUT_OF_MEMORY, "%s: out of memory while decoding the JPEG (libjpeg: %s)",
                              d->label, msg);
    else if (code == JERR_BAD_PRECISION)
        d->status = fx__error(FX_ERR_UNSUPPORTED,
                              "%s: %s; fxcam reads 8-bit JPEGs only (12-bit JPEG is rare outside DICOM; "
                              "convert it to a 16-bit PNG)",
                              d->label, msg);
    else
        d->status = fx__error(FX_ERR_FORMAT, "%s is not a valid JPEG: %s (libjpeg %s)", d->label, msg, kind);
}

static void on_error_exit(j_common_ptr cinfo)
{
    struct jpeg_decoder *d = (struct jpeg_decoder *)cinfo->client_data;
    record_libjpeg_error(d, "error");
    longjmp(d->jump, 1);
}

/* Level -1 is a warning: corrupt or missing data that libjpeg would paper
 * over (gray fill after a premature end, skipped bytes). Higher levels are
 * trace messages, ignored. */
static void on_message(j_common_ptr cinfo, int level)
{
    if (level >= 0)
        return;
    struct jpeg_decoder *d = (struct jpeg_decoder *)cinfo->client_data;
    record_libjpeg_error(d, "warning, treated as an error because the pixels would be made up");
    longjmp(d->jump, 1);
}

static void on_progress(j_common_ptr cinfo)
{
    struct jpeg_decoder *d = (struct jpeg_decoder *)cinfo->client_data;
    j_decompress_ptr dinfo = (j_decompress_ptr)cinfo;
    if (dinfo->progressive_mode && dinfo->input_scan_number > FX_JPEG_MAX_SCANS) {
        d->status = fx__error(FX_ERR_FORMAT,
                              "%s: the progressive JPEG has more than %d scans; real encoders write a few dozen, "
                              "so the file is damaged or made to stall decoders",
                              d->label, FX_JPEG_MAX_SCANS);
        longjmp(d->jump, 1);
    }
}

/* ---- EXIF orientation ----------------------------------------------------- */

static uint32_t tiff_u16(const uint8_t *p, bool big_endian)
{
    return big_endian ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0];
}

static uint32_t tiff_u32(const uint8_t *p, bool big_endian)
{
    return big_endian ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
                      : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* The orientation (1..8) in one APP1 block, or 1 when the block is not Exif,
 * has no orientation tag, or is malformed (every offset is checked against
 * the block's length). Values outside 1..8 are ignored, as PIL does. */
static int exif_orientation(const uint8_t *data, size_t size)
{
    static const uint8_t exif_id[6] = {'E', 'x', 'i', 'f', 0, 0};
    if (size < sizeof exif_id + 8 || memcmp(data, exif_id, sizeof exif_id) != 0)
        return 1;
    const uint8_t *tiff = data + sizeof exif_id;
    size_t tiff_size = size - sizeof exif_id;
    bool big_endian;
    if (tiff[0] == 'I' && tiff[1] == 'I')
        big_endian = false;
    else if (tiff[0] == 'M' && tiff[1] == 'M')
        big_endian = true;
    else
        return 1;
    if (tiff_u16(tiff + 2, big_endian) != 42)
        return 1;
    uint32_t ifd = tiff_u32(tiff + 4, big_endian);
    if (ifd > tiff_size || tiff_size - ifd < 2)
        return 1;
    uint32_t count = tiff_u16(tiff + ifd, big_endian);
    size_t entries = ifd + 2;
    for (uint32_t i = 0; i < count; i++) {
        size_t at = entries + (size_t)i * 12;
        if (at > tiff_size || tiff_size - at < 12)
            return 1;
        const uint8_t *e = tiff + at;
        if (tiff_u16(e, big_endian) != FX_EXIF_ORIENTATION_TAG)
            continue;
        if (tiff_u16(e + 2, big_endian) != FX_TIFF_TYPE_SHORT || tiff_u32(e + 4, big_endian) < 1)
            return 1;
        uint32_t v = tiff_u16(e + 8, big_endian); /* a SHORT sits left-justified in the value field */
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

static int find_orientation(j_decompress_ptr cinfo)
{
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1) {
            int o = exif_orientation(m->data, m->data_length);
            if (o != 1)
                return o;
        }
    return 1;
}

static bool orientation_swaps_axes(int orientation)
{
    return orientation >= 5;
}

/* Source pixel of output pixel (x, y) for EXIF orientation o, on a source of
 * w x h (the inverse of the display transform in EXIF 2.32, table 4 "Orientation"):
 * 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise,
 * 7 transverse, 8 rotate 90 counter-clockwise. */
static void source_of(int o, uint32_t x, uint32_t y, uint32_t w, uint32_t h, uint32_t *sx, uint32_t *sy)
{
    switch (o) {
    case 2: *sx = w - 1 - x; *sy = y; break;
    case 3: *sx = w - 1 - x; *sy = h - 1 - y; break;
    case 4: *sx = x; *sy = h - 1 - y; break;
    case 5: *sx = y; *sy = x; break;
    case 6: *sx = y; *sy = h - 1 - x; break;
    case 7: *sx = w - 1 - y; *sy = h - 1 - x; break;
    case 8: *sx = w - 1 - y; *sy = x; break;
    default: *sx = x; *sy = y; break;
    }
}

static fx_status apply_orientation(struct jpeg_decoder *d, int o)
{
    const fx_image *src = &d->decoded;
    uint32_t w = orientation_swaps_axes(o) ? src->height : src->width;
    uint32_t h = orientation_swaps_axes(o) ? src->width : src->height;
    fx_status st = fx_image_alloc(&d->oriented, w, h, src->channels, FX_PIXEL_U8);
    if (st != FX_OK)
        return st;
    uint32_t c = src->channels;
    for (uint32_t y = 0; y < h; y++) {
        uint8_t *row = fx__row(&d->oriented, y);
        for (uint32_t x = 0; x < w; x++) {
            uint32_t sx, sy;
            source_of(o, x, y, src->width, src->height, &sx, &sy);
            memcpy(row + (size_t)x * c, fx__row(src, sy) + (size_t)sx * c, c);
        }
    }
    return FX_OK;
}

/* ---- Decoding ------------------------------------------------------------- */

static fx_status choose_output_color(struct jpeg_decoder *d)
{
    j_decompress_ptr cinfo = &d->cinfo;
    switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE:
        cinfo->out_color_space = JCS_GRAYSCALE;
        return FX_OK;
    case JCS_YCbCr:
    case JCS_RGB:
        cinfo->out_color_space = JCS_RGB;
        return FX_OK;
    case JCS_CMYK:
    case JCS_YCCK:
        return fx__error(FX_ERR_UNSUPPORTED,
                         "%s is a %s JPEG (a print separation); fxcam reads gray and RGB JPEGs only. Convert it "
                         "to RGB with its ICC profile first (e.g. ImageMagick: convert in.jpg -colorspace sRGB "
                         "out.png)",
                         d->label, cinfo->jpeg_color_space == JCS_CMYK ? "CMYK" : "YCCK");
    default:
        return fx__error(FX_ERR_UNSUPPORTED,
                         "%s: the JPEG's color space (libjpeg J_COLOR_SPACE %d, %d components) is not gray, "
                         "YCbCr or RGB; fxcam cannot read it",
                         d->label, (int)cinfo->jpeg_color_space, cinfo->num_components);
    }
}

static fx_status decode_steps(struct jpeg_decoder *d, int *orientation)
{
    j_decompress_ptr cinfo = &d->cinfo;
    jpeg_create_decompress(cinfo); /* fails only through error_exit (out of memory) */
    if (d->file)
        jpeg_stdio_src(cinfo, d->file);
    else
        jpeg_mem_src(cinfo, (const unsigned char *)d->data, (unsigned long)d->size);
    jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(cinfo, TRUE);
    fx_status st = choose_output_color(d);
    if (st != FX_OK)
        return st;
    *orientation = find_orientation(cinfo);
    bool swap = orientation_swaps_axes(*orientation);
    uint32_t w = cinfo->image_width, h = cinfo->image_height;
    st = fx__load_limits_check(d->label, swap ? h : w, swap ? w : h, d->limits);
    if (st != FX_OK)
        return st;

    cinfo->progress = &d->progress;
    jpeg_start_decompress(cinfo);
    uint32_t channels = (uint32_t)cinfo->output_components;
    if (cinfo->output_width != w || cinfo->output_height != h || (channels != 1 && channels != 3))
        return fx__error(FX_ERR_INTERNAL, "%s: libjpeg produced %ux%u with %u channels; expected %ux%u with 1 or 3",
                         d->label, cinfo->output_width, cinfo->output_height, channels, w, h);
    st = fx_image_alloc(&d->decoded, w, h, channels, FX_PIXEL_U8);
    if (st != FX_OK)
        return st;
    while (cinfo->output_scanline < h) {
        JSAMPROW row = fx__row(&d->decoded, cinfo->output_scanline);
        jpeg_read_scanlines(cinfo, &row, 1);
    }
    /* Reading up to EOI reports damage after the last row. */
    jpeg_finish_decompress(cinfo);
    return FX_OK;
}

/* The only frame holding a setjmp: it keeps no local state of its own. */
static fx_status decode(struct jpeg_decoder *d, int *orientation)
{
    if (setjmp(d->jump))
        return d->status != FX_OK ? d->status
                                  : fx__error(FX_ERR_INTERNAL, "%s: libjpeg failed without a message", d->label);
    return decode_steps(d, orientation);
}

fx_status fx__jpeg_load(FILE *file, const void *data, size_t size, const char *label,
                        const fx_load_options *limits, fx_image *out)
{
    struct jpeg_decoder d;
    memset(&d, 0, sizeof d);
    d.label = label;
    d.limits = limits;
    d.status = FX_OK;
    d.cinfo.err = jpeg_std_error(&d.err);
    d.err.error_exit = on_error_exit;
    d.err.emit_message = on_message;
    d.progress.progress_monitor = on_progress;
    d.cinfo.client_data = &d;
    d.file = file;
    d.data = data;
    d.size = size;

    int orientation = 1;
    fx_status st = decode(&d, &orientation);
    jpeg_destroy_decompress(&d.cinfo); /* safe after a failed create: it checks cinfo.mem */
    if (st == FX_OK && orientation != 1) {
        st = apply_orientation(&d, orientation);
        fx_image_free(&d.decoded);
        d.decoded = d.oriented;
    }
    if (st != FX_OK) {
        fx_image_free(&d.decoded);
        return st;
    }
    *out = d.decoded;
    return FX_OK;
}

#else /* !FX_HAVE_JPEG */

fx_status fx__jpeg_load(FILE *file, const void *data, size_t size, const char *label,
                        const fx_load_options *limits, fx_image *out)
{
    (void)file;
    (void)data;
    (void)size;
    (void)limits;
    (void)out;
    return fx__error(FX_ERR_NOT_AVAILABLE,
                     "%s is a JPEG file, but this fxcam was built without JPEG support: install libjpeg-turbo "
                     "(Debian: libjpeg62-turbo-dev) and reconfigure with -Djpeg=enabled",
                     label);
}

#endif
