/* PNG input and output through libpng 1.6.
 *
 * Reading keeps the source's precision (16-bit radiographs stay 16-bit) and
 * refuses images over the caller's size limits before any pixel memory
 * exists. Writing goes through atomic_file.c: an anonymous (O_TMPFILE) file
 * renamed over the target once complete, so the target never holds a
 * half-written image, a process killed mid-write leaves nothing behind, and
 * no symlink planted in the folder is written through. */
/* O_TMPFILE is a Linux extension. */
#define _GNU_SOURCE
#include "fx_internal.h"
#include "atomic_file.h"
#include "image_formats.h"

#include <png.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FX_DEFAULT_MAX_SIDE 32768u
#define FX_DEFAULT_MAX_PIXELS ((uint64_t)1 << 27)
/* zlib level 1: measured on fxcam's figures (bench/png_speed.py,
 * docs/performance.md) 1.5x the speed of level 3 for files 6 % larger, and
 * still 23 % smaller than OpenCV's default imwrite at about its speed. */
#define FX_DEFAULT_COMPRESSION 1

/* Ancillary chunks are skipped (see configure_reader), but libpng still checks
 * every chunk's length against this before reading it: large enough for any
 * real metadata block, small enough that a forged length cannot make libpng
 * allocate gigabytes. */
#define FX_CHUNK_MALLOC_MAX ((png_alloc_size_t)16 << 20)
#define FX_CHUNK_CACHE_MAX 128u

/* The largest width and height the PNG format allows (2^31 - 1). */
#define FX_PNG_MAX_SIDE 0x7fffffffu

static const char *errno_text(int err, char *buf, size_t size)
{
    /* strerror() may use a shared buffer; strerror_r does not. With
     * _GNU_SOURCE (for O_TMPFILE) glibc gives the GNU strerror_r, which
     * returns the text, possibly not in buf. */
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(err, buf, size);
#else
    if (strerror_r(err, buf, size) != 0)
        snprintf(buf, size, "error %d", err);
    return buf;
#endif
}

static bool host_is_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* libpng reports allocation failures through the same error callback as
 * corrupt data; only the message tells them apart. */
static bool is_memory_message(const char *msg)
{
    return strstr(msg, "memory") || strstr(msg, "Memory");
}

/* ---- Options -------------------------------------------------------------- */

void fx_load_options_init(fx_load_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->max_width = FX_DEFAULT_MAX_SIDE;
    opts->max_height = FX_DEFAULT_MAX_SIDE;
    opts->max_pixels = FX_DEFAULT_MAX_PIXELS;
}

void fx_save_options_init(fx_save_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->compression_level = FX_DEFAULT_COMPRESSION;
}

static fx_status resolve_load_options(const char *fn, const fx_load_options *opts, fx_load_options *limits)
{
    fx_load_options_init(limits);
    fx_status st = fx__options_merge(limits, sizeof *limits, opts, fn);
    if (st != FX_OK)
        return st;
    if (limits->max_width == 0 || limits->max_height == 0 || limits->max_pixels == 0)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "%s: load limits must be >= 1, got max_width %u, max_height %u, max_pixels %llu "
                         "(defaults: %u, %u, %llu)",
                         fn, limits->max_width, limits->max_height, (unsigned long long)limits->max_pixels,
                         FX_DEFAULT_MAX_SIDE, FX_DEFAULT_MAX_SIDE, (unsigned long long)FX_DEFAULT_MAX_PIXELS);
    return FX_OK;
}

static fx_status resolve_save_options(const fx_save_options *opts, int *level)
{
    fx_save_options o;
    fx_save_options_init(&o);
    fx_status st = fx__options_merge(&o, sizeof o, opts, "fx_image_save");
    if (st != FX_OK)
        return st;
    if (o.compression_level < 0 || o.compression_level > 9)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_image_save: compression_level %d is out of range; valid: 0 (no compression, "
                         "fastest) to 9 (smallest file), default %d",
                         (int)o.compression_level, FX_DEFAULT_COMPRESSION);
    *level = o.compression_level;
    return FX_OK;
}

/* ---- Reading -------------------------------------------------------------- */

/* Where the PNG bytes come from: an open file or a caller's buffer. */
struct png_source {
    char label[512]; /* names the source in messages: "'scan.png'" */
    FILE *file;      /* NULL when reading from memory */
    const uint8_t *data;
    size_t size;
    size_t offset; /* bytes consumed so far */
    int read_errno; /* errno of a failed fread, 0 when the data simply ended */
};

struct png_decoder {
    png_structp png;
    png_infop info;
    struct png_source *src;
    const fx_load_options *limits;
    fx_image image;   /* pixels, owned here until handed to the caller */
    png_bytep *rows;  /* row pointers into image for png_read_image */
    fx_status status; /* set by whoever recorded the error message */
    char warning[256];
    uint32_t significant_bits; /* sBIT of a gray/RGB PNG of depth 8 or 16; 0 = none */
};

static size_t source_read(struct png_source *src, void *buf, size_t n)
{
    size_t got;
    if (src->file) {
        got = fread(buf, 1, n, src->file);
        if (got < n && ferror(src->file))
            src->read_errno = errno ? errno : EIO;
    } else {
        size_t left = src->size - src->offset;
        got = n < left ? n : left;
        memcpy(buf, src->data + src->offset, got);
    }
    src->offset += got;
    return got;
}

/* The decoder's state lives in the caller's frame (load_png), never in the
 * frame that called setjmp, so none of it is indeterminate after longjmp. */
static void on_read_error(png_structp png, png_const_charp msg)
{
    struct png_decoder *d = png_get_error_ptr(png);
    if (d->status == FX_OK) {
        char detail[384] = "";
        if (d->warning[0])
            snprintf(detail, sizeof detail, " (after libpng warning: %s)", d->warning);
        if (is_memory_message(msg))
            d->status = fx__error(FX_ERR_OUT_OF_MEMORY, "%s: out of memory while decoding (libpng: %s)",
                                  d->src->label, msg);
        else
            d->status = fx__error(FX_ERR_FORMAT, "%s is not a valid PNG: %s (at byte %zu)%s", d->src->label, msg,
                                  d->src->offset, detail);
    }
    png_longjmp(png, 1);
}

static void on_read_warning(png_structp png, png_const_charp msg)
{
    struct png_decoder *d = png_get_error_ptr(png);
    snprintf(d->warning, sizeof d->warning, "%s", msg);
}

static void chunk_name(png_uint_32 type, char name[5])
{
    for (int i = 0; i < 4; i++) {
        unsigned char c = (unsigned char)(type >> (24 - 8 * i));
        name[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    name[4] = '\0';
}

static void read_from_source(png_structp png, png_bytep buf, size_t n)
{
    struct png_decoder *d = png_get_io_ptr(png);
    size_t got = source_read(d->src, buf, n);
    if (got == n)
        return;
    if (d->src->read_errno) {
        char err[128];
        d->status = fx__error(FX_ERR_IO, "cannot read %s at byte %zu: %s", d->src->label, d->src->offset,
                              errno_text(d->src->read_errno, err, sizeof err));
    } else {
        char name[5];
        chunk_name(png_get_io_chunk_type(png), name);
        png_uint_32 state = png_get_io_state(png) & PNG_IO_MASK_LOC;
        const char *where = state == PNG_IO_CHUNK_HDR ? "in the chunk header after the"
                            : state == PNG_IO_CHUNK_CRC ? "in the CRC of the"
                                                        : "inside the";
        d->status = fx__error(FX_ERR_FORMAT,
                              "%s is truncated: the data ends after %zu bytes, %s %s chunk (%zu more bytes "
                              "were needed)",
                              d->src->label, d->src->offset, where, name, n - got);
    }
    png_error(png, "truncated");
}

/* Names the format behind a wrong signature, for a more helpful message. */
static const char *guess_format(const uint8_t *sig, size_t n)
{
    if (n >= 3 && sig[0] == 0xff && sig[1] == 0xd8 && sig[2] == 0xff)
        return "a JPEG file";
    if (n >= 4 && (memcmp(sig, "II*\0", 4) == 0 || memcmp(sig, "MM\0*", 4) == 0))
        return "a TIFF file";
    if (n >= 2 && memcmp(sig, "BM", 2) == 0)
        return "a BMP file";
    if (n >= 4 && memcmp(sig, "GIF8", 4) == 0)
        return "a GIF file";
    if (n >= 4 && sig[1] == 'P' && sig[2] == 'N' && sig[3] == 'G')
        return "a damaged PNG (was it transferred as text?)";
    return NULL;
}

static fx_status check_signature(struct png_source *src)
{
    uint8_t sig[8];
    size_t got = source_read(src, sig, sizeof sig);
    if (src->read_errno) {
        char err[128];
        return fx__error(FX_ERR_IO, "cannot read %s: %s", src->label,
                         errno_text(src->read_errno, err, sizeof err));
    }
    if (got == 0)
        return fx__error(FX_ERR_FORMAT, "%s is empty (0 bytes), not a PNG, JPEG or DICOM file", src->label);
    if (got < sizeof sig && png_sig_cmp(sig, 0, got) == 0)
        return fx__error(FX_ERR_FORMAT, "%s is truncated: %zu bytes, shorter than the 8-byte PNG signature",
                         src->label, got);
    if (got < sizeof sig || png_sig_cmp(sig, 0, sizeof sig) != 0) {
        const char *guess = guess_format(sig, got);
        char hex[3 * sizeof sig + 1] = "";
        for (size_t i = 0; i < got; i++)
            snprintf(hex + 3 * i, sizeof hex - 3 * i, "%02x%s", sig[i], i + 1 < got ? " " : "");
        /* Only unrecognised sources get here (lib/image_load.c dispatches JPEG
         * and DICOM first), so the message lists every format that is read. */
        return fx__error(FX_ERR_FORMAT,
                         "%s is not a PNG, JPEG or DICOM file%s%s (first bytes %s); fxcam reads PNG "
                         "(starts 89 50 4e 47 0d 0a 1a 0a), JPEG (ff d8 ff) and DICOM Part 10 "
                         "(\"DICM\" at byte 128) or a bare DICOM dataset (little endian, starting with a "
                         "(0002,xxxx) or (0008,xxxx) element)",
                         src->label, guess ? ", it looks like " : "", guess ? guess : "", hex);
    }
    return FX_OK;
}

static void configure_reader(struct png_decoder *d)
{
    png_set_read_fn(d->png, d, read_from_source);
    png_set_sig_bytes(d->png, 8);
    /* libpng's own width/height limits would fire inside png_read_info with a
     * message that cannot name fx_load_options, so they are opened to the
     * format's maximum and check_limits() applies the caller's limits right
     * after the header, still before any pixel memory is allocated. */
    png_set_user_limits(d->png, FX_PNG_MAX_SIDE, FX_PNG_MAX_SIDE);
    png_set_chunk_malloc_max(d->png, FX_CHUNK_MALLOC_MAX);
    png_set_chunk_cache_max(d->png, FX_CHUNK_CACHE_MAX);
    /* Only IHDR, PLTE, tRNS, IDAT and IEND matter for the pixels; skipping the
     * rest (text, ICC profiles, ...) avoids their allocations and their
     * warnings. */
    png_set_keep_unknown_chunks(d->png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    /* sBIT says how many bits the samples were made from (the intensity rule,
     * lib/intensity.c): handled as libpng does by default. */
    static const png_byte sbit_chunk[5] = {'s', 'B', 'I', 'T', '\0'};
    png_set_keep_unknown_chunks(d->png, PNG_HANDLE_CHUNK_AS_DEFAULT, sbit_chunk, 1);
}

static fx_status check_limits(const struct png_decoder *d, uint32_t width, uint32_t height)
{
    return fx__load_limits_check(d->src->label, width, height, d->limits);
}

/* Asks libpng for 8-bit or 16-bit samples with 1..4 channels whatever the
 * source: palettes become RGB, small gray depths are scaled to 0..255, tRNS
 * becomes an alpha channel. */
static void request_transforms(png_structp png, png_infop info, int bit_depth, int color_type)
{
    if (color_type == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(png);
    if (bit_depth == 16 && host_is_little_endian())
        png_set_swap(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
}

static fx_status read_pixels(struct png_decoder *d)
{
    png_structp png = d->png;
    png_infop info = d->info;
    uint32_t width = png_get_image_width(png, info);
    uint32_t height = png_get_image_height(png, info);
    uint32_t channels = png_get_channels(png, info);
    int depth = png_get_bit_depth(png, info);
    if ((depth != 8 && depth != 16) || channels < 1 || channels > 4)
        return fx__error(FX_ERR_INTERNAL, "%s: libpng produced %d-bit samples with %u channels; expected 8 or 16 "
                         "bits and 1..4 channels", d->src->label, depth, channels);
    int32_t type = depth == 16 ? FX_PIXEL_U16 : FX_PIXEL_U8;
    if (png_get_rowbytes(png, info) != fx__row_bytes(width, channels, type))
        return fx__error(FX_ERR_INTERNAL, "%s: libpng row size %zu differs from the expected %zu", d->src->label,
                         (size_t)png_get_rowbytes(png, info), fx__row_bytes(width, channels, type));

    fx_status st = fx_image_alloc(&d->image, width, height, channels, type);
    if (st != FX_OK)
        return st;
    d->rows = malloc((size_t)height * sizeof *d->rows);
    if (!d->rows)
        return fx__error(FX_ERR_OUT_OF_MEMORY, "%s: cannot allocate %u row pointers", d->src->label, height);
    for (uint32_t y = 0; y < height; y++)
        d->rows[y] = fx__row(&d->image, y);
    png_read_image(png, d->rows);
    /* Reading up to IEND catches truncation and damage after the last row. */
    png_read_end(png, NULL);
    return FX_OK;
}

/* The sBIT chunk's bits (largest over the color channels) when it describes
 * the samples fxcam returns: gray or RGB (with or without alpha) stored at 8
 * or 16 bits. Palette and 1/2/4-bit gray are expanded, so their sBIT does
 * not say where the returned samples lie. */
static uint32_t significant_bits(png_structp png, png_infop info, int bit_depth, int color_type)
{
    png_color_8p sbit = NULL;
    if (bit_depth < 8 || color_type == PNG_COLOR_TYPE_PALETTE || !png_get_sBIT(png, info, &sbit) || !sbit)
        return 0;
    uint32_t bits = sbit->gray;
    if (color_type & PNG_COLOR_MASK_COLOR) {
        bits = sbit->red;
        bits = sbit->green > bits ? sbit->green : bits;
        bits = sbit->blue > bits ? sbit->blue : bits;
    }
    return bits >= 1 && bits <= (uint32_t)bit_depth ? bits : 0;
}

static fx_status decode_steps(struct png_decoder *d)
{
    configure_reader(d);
    png_read_info(d->png, d->info);
    png_uint_32 width, height;
    int bit_depth, color_type;
    png_get_IHDR(d->png, d->info, &width, &height, &bit_depth, &color_type, NULL, NULL, NULL);
    fx_status st = check_limits(d, width, height);
    if (st != FX_OK)
        return st;
    d->significant_bits = significant_bits(d->png, d->info, bit_depth, color_type);
    request_transforms(d->png, d->info, bit_depth, color_type);
    return read_pixels(d);
}

/* The only frame holding a setjmp: it keeps no local state of its own. */
static fx_status decode(struct png_decoder *d)
{
    if (setjmp(png_jmpbuf(d->png)))
        return d->status != FX_OK ? d->status : fx__error(FX_ERR_INTERNAL, "%s: libpng failed without a message",
                                                          d->src->label);
    return decode_steps(d);
}

static fx_status load_png(struct png_source *src, const fx_load_options *limits, fx_image *out,
                          uint32_t *significant)
{
    fx_status st = check_signature(src);
    if (st != FX_OK)
        return st;
    struct png_decoder d = {.src = src, .limits = limits, .status = FX_OK};
    d.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &d, on_read_error, on_read_warning);
    if (!d.png)
        return fx__error(FX_ERR_OUT_OF_MEMORY, "%s: cannot create the libpng decoder (out of memory)", src->label);
    d.info = png_create_info_struct(d.png);
    if (!d.info) {
        png_destroy_read_struct(&d.png, NULL, NULL);
        return fx__error(FX_ERR_OUT_OF_MEMORY, "%s: cannot create the libpng decoder (out of memory)", src->label);
    }
    st = decode(&d);
    png_destroy_read_struct(&d.png, &d.info, NULL);
    free(d.rows);
    if (st != FX_OK) {
        fx_image_free(&d.image);
        return st;
    }
    *out = d.image;
    *significant = d.significant_bits;
    return FX_OK;
}

/* Largest color sample (alpha excluded) of an integer image. */
static uint32_t largest_color_sample(const fx_image *img)
{
    uint32_t colors = img->channels >= 3 ? 3 : 1, top = 0;
    for (uint32_t y = 0; y < img->height; y++) {
        const uint8_t *row = fx__row(img, y);
        for (size_t x = 0; x < img->width; x++)
            for (uint32_t c = 0; c < colors; c++) {
                size_t i = x * img->channels + c;
                uint32_t v = img->pixel_type == FX_PIXEL_U16 ? ((const uint16_t *)(const void *)row)[i] : row[i];
                top = v > top ? v : top;
            }
    }
    return top;
}

/* What fx_load_options.info receives (fxcam.h, fx_image_info). A PNG's sBIT
 * of b bits means, by the PNG standard, samples scaled up to the full depth;
 * radiographs are often written with the b-bit values unscaled instead. The
 * samples tell which: all <= 2^b - 1 is unscaled data, so the rule divides
 * by 2^b - 1; anything larger is scaled data, whose range is the container's. */
static void report_info(const fx_load_options *limits, const fx_image *img, int32_t format, uint32_t significant)
{
    fx_image_info *info = limits->info;
    if (!info || info->struct_size < sizeof info->struct_size)
        return;
    fx_image_info full = {.struct_size = info->struct_size, .format = format, .significant_bits = significant};
    uint32_t container = img->pixel_type == FX_PIXEL_U16 ? 16u : 8u;
    full.bits_stored = container;
    if (significant && significant < container && largest_color_sample(img) <= (1u << significant) - 1u)
        full.bits_stored = significant;
    size_t known = info->struct_size < sizeof full ? info->struct_size : sizeof full;
    memcpy(info, &full, known);
}

static int32_t public_format(fx__format f)
{
    return f == FX__FORMAT_JPEG ? FX_FORMAT_JPEG : f == FX__FORMAT_DICOM ? FX_FORMAT_DICOM : FX_FORMAT_PNG;
}

/* The format of an open file, read again from its first bytes after a load. */
static int32_t file_format(FILE *file)
{
    uint8_t head[FX__FORMAT_HEAD_BYTES];
    if (fseek(file, 0, SEEK_SET) != 0)
        return FX_FORMAT_PNG;
    size_t n = fread(head, 1, sizeof head, file);
    return public_format(fx__format_detect(head, n));
}

static fx_status check_load_output(const char *fn, const fx_image *out)
{
    if (!out)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s: out is NULL", fn);
    if (out->data)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "%s: out->data must be NULL: the image size is only known from the file, so fxcam "
                         "allocates it (release it with fx_image_free())",
                         fn);
    return FX_OK;
}

fx_status fx_image_load(const char *path, const fx_load_options *opts, fx_image *out)
{
    if (!path)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_image_load: path is NULL");
    if (!path[0])
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_image_load: path is empty");
    fx_status st = check_load_output("fx_image_load", out);
    if (st != FX_OK)
        return st;
    fx_load_options limits;
    st = resolve_load_options("fx_image_load", opts, &limits);
    if (st != FX_OK)
        return st;

    char err[128];
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; only regular
     * files are read (a FIFO or device could block or never end). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return fx__error(FX_ERR_IO, "cannot open '%s': %s", path, errno_text(errno, err, sizeof err));
    struct stat info;
    if (fstat(fd, &info) == 0 && S_ISDIR(info.st_mode)) {
        close(fd);
        return fx__error(FX_ERR_IO, "cannot read '%s': it is a directory, not an image file", path);
    }
    if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
        close(fd);
        return fx__error(FX_ERR_IO, "cannot read '%s': it is not a regular file (a FIFO, socket or device)", path);
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    FILE *file = fdopen(fd, "rb");
    if (!file) {
        int e = errno;
        close(fd);
        return fx__error(FX_ERR_IO, "cannot open '%s': %s", path, errno_text(e, err, sizeof err));
    }
    struct png_source src = {.file = file};
    snprintf(src.label, sizeof src.label, "'%s'", path);
    /* JPEG and DICOM are recognised by their bytes (lib/image_load.c). */
    uint32_t significant = 0;
    if (!fx__image_load_dispatch(file, NULL, 0, path, &limits, out, &st)) {
        st = load_png(&src, &limits, out, &significant);
        if (st == FX_OK)
            report_info(&limits, out, FX_FORMAT_PNG, significant);
    } else if (st == FX_OK) {
        report_info(&limits, out, file_format(file), 0);
    }
    fclose(file);
    return st;
}

fx_status fx_image_load_memory(const void *png, size_t size, const fx_load_options *opts, fx_image *out)
{
    if (!png)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_image_load_memory: png is NULL");
    if (size == 0)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_image_load_memory: size is 0; pass the image's byte count");
    fx_status st = check_load_output("fx_image_load_memory", out);
    if (st != FX_OK)
        return st;
    fx_load_options limits;
    st = resolve_load_options("fx_image_load_memory", opts, &limits);
    if (st != FX_OK)
        return st;
    struct png_source src = {.data = png, .size = size};
    /* PNG or unrecognised bytes reach load_png: name them for what they are. */
    bool is_png = fx__format_detect(png, size < 8 ? size : 8) == FX__FORMAT_PNG;
    snprintf(src.label, sizeof src.label, "the %s in memory (%zu bytes)", is_png ? "PNG" : "data", size);
    if (fx__image_load_dispatch(NULL, png, size, NULL, &limits, out, &st)) {
        /* JPEG or DICOM (lib/image_load.c) */
        if (st == FX_OK)
            report_info(&limits, out,
                        public_format(fx__format_detect(png, size < FX__FORMAT_HEAD_BYTES ? size : FX__FORMAT_HEAD_BYTES)),
                        0);
        return st;
    }
    uint32_t significant = 0;
    st = load_png(&src, &limits, out, &significant);
    if (st == FX_OK)
        report_info(&limits, out, FX_FORMAT_PNG, significant);
    return st;
}

/* ---- Writing -------------------------------------------------------------- */

/* Files are written through lib/atomic_file.c: an anonymous file named and
 * renamed over the target once complete, never through a planted symlink. */
static fx_status atomic_error(const char *path, const fx__atomic_file *f, int e)
{
    char err[128];
    return fx__error(FX_ERR_IO, "cannot write '%s': %s failed: %s", path, f->step ? f->step : "writing",
                     errno_text(e, err, sizeof err));
}

struct png_encoder {
    png_structp png;
    png_infop info;
    fx__atomic_file *file;
    const char *path;
    fx_status status;
};

static void on_write_error(png_structp png, png_const_charp msg)
{
    struct png_encoder *e = png_get_error_ptr(png);
    if (e->status == FX_OK) {
        /* Anything but a failed allocation means fxcam passed libpng bad
         * parameters: arguments were validated before. */
        if (is_memory_message(msg))
            e->status = fx__error(FX_ERR_OUT_OF_MEMORY, "cannot write '%s': out of memory (libpng: %s)", e->path, msg);
        else
            e->status = fx__error(FX_ERR_INTERNAL, "cannot write '%s': libpng refused the image: %s", e->path, msg);
    }
    png_longjmp(png, 1);
}

static void on_write_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* nothing the caller could act on; the library prints nothing */
}

static void write_to_file(png_structp png, png_bytep data, size_t n)
{
    struct png_encoder *e = png_get_io_ptr(png);
    int err = fx__atomic_write(e->file, data, n);
    if (err == 0)
        return;
    e->status = atomic_error(e->path, e->file, err);
    png_error(png, "write failed");
}

static void flush_file(png_structp png)
{
    (void)png; /* fx__atomic_commit flushes once at the end */
}

/* Measured on 2048x2048 radiograph-like images (12-bit gray in 16, 8-bit
 * gray, RGB overlay) at level 3: the SUB filter alone gives files within 2% of
 * libpng's adaptive choice of all five filters, 25-35% smaller than no filter,
 * and is the fastest to compute. On fxcam's 8-bit color figures (panels of
 * smooth colormaps and captions, levels 1-3) UP is as fast as SUB and gives
 * files up to 1 % smaller (docs/performance.md, "PNG"). Higher levels ask for
 * the smallest file, so they get the adaptive choice; level 0 stores data
 * uncompressed, where no filter helps. */
static int filters_for(const fx_image *img, int level)
{
    if (level == 0)
        return PNG_FILTER_NONE;
    if (level <= 3)
        return img->pixel_type == FX_PIXEL_U8 && img->channels >= 3 ? PNG_FILTER_UP : PNG_FILTER_SUB;
    return PNG_ALL_FILTERS;
}

static int color_type_for(uint32_t channels)
{
    switch (channels) {
    case 1: return PNG_COLOR_TYPE_GRAY;
    case 2: return PNG_COLOR_TYPE_GRAY_ALPHA;
    case 3: return PNG_COLOR_TYPE_RGB;
    default: return PNG_COLOR_TYPE_RGB_ALPHA;
    }
}

static fx_status encode_steps(struct png_encoder *e, const fx_image *img, int level)
{
    int depth = img->pixel_type == FX_PIXEL_U16 ? 16 : 8;
    png_set_write_fn(e->png, e, write_to_file, flush_file);
    png_set_user_limits(e->png, FX_PNG_MAX_SIDE, FX_PNG_MAX_SIDE);
    png_set_IHDR(e->png, e->info, img->width, img->height, depth, color_type_for(img->channels),
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(e->png, level);
    png_set_filter(e->png, PNG_FILTER_TYPE_BASE, filters_for(img, level));
    png_write_info(e->png, e->info);
    /* PNG stores 16-bit samples big-endian; fx_image holds them in host order.
     * libpng swaps a copy of each row, the caller's buffer is left alone. */
    if (depth == 16 && host_is_little_endian())
        png_set_swap(e->png);
    for (uint32_t y = 0; y < img->height; y++)
        png_write_row(e->png, fx__row(img, y));
    png_write_end(e->png, NULL);
    return FX_OK;
}

/* The only frame holding a setjmp: it keeps no local state of its own. */
static fx_status encode(struct png_encoder *e, const fx_image *img, int level)
{
    if (setjmp(png_jmpbuf(e->png)))
        return e->status != FX_OK ? e->status
                                  : fx__error(FX_ERR_INTERNAL, "cannot write '%s': libpng failed without a message",
                                              e->path);
    return encode_steps(e, img, level);
}

static fx_status write_png(fx__atomic_file *file, const char *path, const fx_image *img, int level)
{
    struct png_encoder e = {.file = file, .path = path, .status = FX_OK};
    e.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &e, on_write_error, on_write_warning);
    if (!e.png)
        return fx__error(FX_ERR_OUT_OF_MEMORY, "cannot write '%s': cannot create the libpng encoder", path);
    e.info = png_create_info_struct(e.png);
    if (!e.info) {
        png_destroy_write_struct(&e.png, NULL);
        return fx__error(FX_ERR_OUT_OF_MEMORY, "cannot write '%s': cannot create the libpng encoder", path);
    }
    fx_status st = encode(&e, img, level);
    png_destroy_write_struct(&e.png, &e.info);
    return st;
}

static fx_status check_save_image(const fx_image *img)
{
    fx_status st = fx__image_check(img, "fx_image_save: image");
    if (st != FX_OK)
        return st;
    if (img->pixel_type == FX_PIXEL_F32)
        return fx__error(FX_ERR_UNSUPPORTED,
                         "fx_image_save: image is FX_PIXEL_F32 (float), which PNG cannot store; color a heatmap "
                         "with fx_colormap_apply() or convert the image to FX_PIXEL_U8 or FX_PIXEL_U16 first");
    if (img->width > FX_PNG_MAX_SIDE || img->height > FX_PNG_MAX_SIDE)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_image_save: image is %ux%u; PNG allows at most %u pixels per side", img->width,
                         img->height, FX_PNG_MAX_SIDE);
    return FX_OK;
}

fx_status fx_image_save(const char *path, const fx_image *img, const fx_save_options *opts)
{
    if (!path)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_image_save: path is NULL");
    if (!path[0])
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_image_save: path is empty");
    fx_status st = check_save_image(img);
    if (st != FX_OK)
        return st;
    int level = FX_DEFAULT_COMPRESSION;
    st = resolve_save_options(opts, &level);
    if (st != FX_OK)
        return st;

    fx__atomic_file file;
    int e = fx__atomic_open(&file, path);
    if (e != 0)
        return atomic_error(path, &file, e);
    st = write_png(&file, path, img, level);
    if (st != FX_OK) {
        fx__atomic_abort(&file);
        return st;
    }
    e = fx__atomic_commit(&file);
    return e == 0 ? FX_OK : atomic_error(path, &file, e);
}
