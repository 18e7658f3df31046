/* PNG loading and saving.
 *
 * Fixtures are written at test time with libpng's write API directly (raw
 * packed rows, no transforms), so they do not depend on lib/image.c; a few
 * more come from OpenCV and PIL (tests/tools/make_png_fixtures.py), which
 * also read back what fx_image_save wrote. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <png.h>

#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fx_internal.h"
#include "atomic_file.h"

#define PYTHON "/usr/bin/python3"
#define FIXTURE_SCRIPT FX_TEST_SOURCE_DIR "/tools/make_png_fixtures.py"

/* Scratch directory of this run, removed by the group teardown. */
static char g_dir[512];

static void path_in_dir(char *buf, size_t size, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", g_dir, name);
    assert_true(n > 0 && (size_t)n < size);
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "%s/test_image.XXXXXX", FX_TEST_BUILD_DIR);
    return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    remove_tree(g_dir);
    return 0;
}

/* Number of entries of g_dir whose name ends with ".tmp". */
static int count_temp_files(void)
{
    DIR *d = opendir(g_dir);
    assert_non_null(d);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n >= 4 && strcmp(e->d_name + n - 4, ".tmp") == 0)
            count++;
    }
    closedir(d);
    return count;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (size > 0)
        assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    uint8_t *data = malloc((size_t)n + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return data;
}

static void assert_error_contains(const char *needle)
{
    if (!strstr(fx_last_error(), needle))
        fail_msg("error message \"%s\" does not contain \"%s\"", fx_last_error(), needle);
}

static void assert_untouched(const fx_image *img)
{
    const fx_image zero = {0};
    assert_memory_equal(img, &zero, sizeof zero);
}

/* ---- An independent PNG writer and raw reader (libpng, no fxcam) ---------- */

struct mem {
    uint8_t *data;
    size_t size, cap;
};

static size_t find_chunk(const struct mem *m, const char *type);

static void mem_write(png_structp png, png_bytep data, size_t n)
{
    struct mem *m = png_get_io_ptr(png);
    if (m->size + n > m->cap) {
        m->cap = (m->size + n) * 2;
        m->data = realloc(m->data, m->cap);
        assert_non_null(m->data);
    }
    memcpy(m->data + m->size, data, n);
    m->size += n;
}

static void mem_flush(png_structp png)
{
    (void)png;
}

static void test_libpng_error(png_structp png, png_const_charp msg)
{
    (void)png;
    fail_msg("libpng in the test itself: %s", msg);
}

static void test_libpng_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* What a fixture holds, in PNG terms. */
struct spec {
    uint32_t width, height;
    int depth;      /* 1, 2, 4, 8, 16 */
    int color_type; /* PNG_COLOR_TYPE_* */
    int interlace;  /* PNG_INTERLACE_NONE or PNG_INTERLACE_ADAM7 */
    int num_palette;
    png_color palette[256];
    int num_trans; /* palette tRNS entries */
    png_byte trans[256];
    bool has_trans_color; /* tRNS on gray or RGB */
    png_color_16 trans_color;
    bool add_text; /* a tEXt chunk before IDAT */
};

static uint32_t hash3(uint32_t a, uint32_t b, uint32_t c)
{
    uint32_t h = a * 0x9E3779B1u ^ (b + 0x7F4A7C15u) * 0x85EBCA77u ^ (c + 0x165667B1u) * 0xC2B2AE3Du;
    h ^= h >> 15;
    h *= 0x2C1B3C6Du;
    h ^= h >> 12;
    return h;
}

static int png_channels(int color_type)
{
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY: return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 1; /* palette index */
    }
}

static uint32_t trans_component(const struct spec *s, uint32_t c)
{
    if (s->color_type == PNG_COLOR_TYPE_GRAY)
        return s->trans_color.gray;
    return c == 0 ? s->trans_color.red : c == 1 ? s->trans_color.green : s->trans_color.blue;
}

/* The raw PNG sample (a palette index for palette images) at x, y, c. It
 * hits 0, the maximum, the tRNS color and, at 16 bits, 4095 (12-bit
 * radiographs) and byte-order-revealing values often. */
static uint32_t sample(const struct spec *s, uint32_t x, uint32_t y, uint32_t c)
{
    uint32_t max = (1u << s->depth) - 1;
    if (s->color_type == PNG_COLOR_TYPE_PALETTE)
        return hash3(x, y, 7) % (uint32_t)s->num_palette;
    if (s->has_trans_color && hash3(x, y, 99) % 3 == 0)
        return trans_component(s, c);
    uint32_t h = hash3(x, y, c + 1);
    static const uint32_t special16[] = {0, 1, 255, 256, 4095, 0x1234, 0xff00, 65534, 65535};
    if (s->depth == 16 && h % 2 == 0)
        return special16[(h >> 8) % (sizeof special16 / sizeof special16[0])];
    switch (h % 5) {
    case 0: return 0;
    case 1: return max;
    default: return (h >> 8) & max;
    }
}

static size_t packed_row_bytes(const struct spec *s)
{
    return ((size_t)s->width * (size_t)png_channels(s->color_type) * (size_t)s->depth + 7) / 8;
}

/* Rows exactly as stored in a PNG: sub-byte samples packed MSB first,
 * 16-bit samples big-endian. */
static uint8_t *pack_rows(const struct spec *s)
{
    size_t row = packed_row_bytes(s);
    uint8_t *rows = calloc(s->height, row);
    assert_non_null(rows);
    int ch = png_channels(s->color_type);
    for (uint32_t y = 0; y < s->height; y++) {
        uint8_t *r = rows + y * row;
        for (uint32_t x = 0; x < s->width; x++) {
            for (int c = 0; c < ch; c++) {
                uint32_t v = sample(s, x, y, (uint32_t)c);
                size_t i = (size_t)x * ch + c;
                if (s->depth == 16) {
                    r[2 * i] = (uint8_t)(v >> 8);
                    r[2 * i + 1] = (uint8_t)v;
                } else if (s->depth == 8) {
                    r[i] = (uint8_t)v;
                } else {
                    size_t bit = i * s->depth;
                    r[bit / 8] |= (uint8_t)(v << (8 - s->depth - bit % 8));
                }
            }
        }
    }
    return rows;
}

static struct mem encode_spec(const struct spec *s)
{
    struct mem m = {0};
    uint8_t *rows = pack_rows(s);
    png_bytep *ptrs = malloc(s->height * sizeof *ptrs);
    assert_non_null(ptrs);
    for (uint32_t y = 0; y < s->height; y++)
        ptrs[y] = rows + y * packed_row_bytes(s);

    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, test_libpng_error, test_libpng_warning);
    assert_non_null(png);
    png_infop info = png_create_info_struct(png);
    assert_non_null(info);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_set_write_fn(png, &m, mem_write, mem_flush);
    png_set_IHDR(png, info, s->width, s->height, s->depth, s->color_type, s->interlace, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (s->color_type == PNG_COLOR_TYPE_PALETTE)
        png_set_PLTE(png, info, s->palette, s->num_palette);
    if (s->num_trans > 0)
        png_set_tRNS(png, info, s->trans, s->num_trans, NULL);
    if (s->has_trans_color)
        png_set_tRNS(png, info, NULL, 0, (png_color_16p)&s->trans_color);
    if (s->add_text) {
        png_text text = {.compression = PNG_TEXT_COMPRESSION_NONE, .key = "Comment", .text = "fxcam test fixture"};
        png_set_text(png, info, &text, 1);
    }
    png_write_info(png, info);
    png_write_image(png, ptrs);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(ptrs);
    free(rows);
    return m;
}

/* What fxcam must return for a fixture. */
static uint32_t expected_channels(const struct spec *s)
{
    if (s->color_type == PNG_COLOR_TYPE_PALETTE)
        return s->num_trans > 0 ? 4 : 3;
    return (uint32_t)png_channels(s->color_type) + (s->has_trans_color ? 1 : 0);
}

static uint32_t expected_value(const struct spec *s, uint32_t x, uint32_t y, uint32_t c)
{
    if (s->color_type == PNG_COLOR_TYPE_PALETTE) {
        uint32_t idx = sample(s, x, y, 0);
        const png_color *p = &s->palette[idx];
        if (c == 3)
            return idx < (uint32_t)s->num_trans ? s->trans[idx] : 255;
        return c == 0 ? p->red : c == 1 ? p->green : p->blue;
    }
    uint32_t in_channels = (uint32_t)png_channels(s->color_type);
    uint32_t max = (1u << s->depth) - 1;
    uint32_t out_max = s->depth == 16 ? 65535 : 255;
    if (c == in_channels) { /* alpha made from tRNS */
        for (uint32_t k = 0; k < in_channels; k++)
            if (sample(s, x, y, k) != trans_component(s, k))
                return out_max;
        return 0;
    }
    uint32_t v = sample(s, x, y, c);
    return s->depth < 8 ? v * 255 / max : v;
}

static uint32_t image_value(const fx_image *img, uint32_t x, uint32_t y, uint32_t c)
{
    const uint8_t *row = fx__row(img, y);
    size_t i = (size_t)x * img->channels + c;
    if (img->pixel_type == FX_PIXEL_U16) {
        uint16_t v;
        memcpy(&v, row + 2 * i, 2);
        return v;
    }
    return row[i];
}

static void check_against_spec(const fx_image *img, const struct spec *s, const char *what)
{
    assert_non_null(img->data);
    assert_int_equal(img->width, s->width);
    assert_int_equal(img->height, s->height);
    assert_int_equal(img->channels, expected_channels(s));
    assert_int_equal(img->pixel_type, s->depth == 16 ? FX_PIXEL_U16 : FX_PIXEL_U8);
    assert_true(img->stride >= fx__row_bytes(img->width, img->channels, img->pixel_type));
    for (uint32_t y = 0; y < s->height; y++)
        for (uint32_t x = 0; x < s->width; x++)
            for (uint32_t c = 0; c < img->channels; c++) {
                uint32_t want = expected_value(s, x, y, c), got = image_value(img, x, y, c);
                if (want != got)
                    fail_msg("%s: pixel (%u,%u) channel %u is %u, expected %u", what, x, y, c, got, want);
            }
}

static void set_palette(struct spec *s, int entries, int trans_entries)
{
    s->num_palette = entries;
    for (int i = 0; i < entries; i++) {
        s->palette[i].red = (png_byte)(i * 37 + 11);
        s->palette[i].green = (png_byte)(255 - i * 13);
        s->palette[i].blue = (png_byte)(i * i + 3);
    }
    s->num_trans = trans_entries;
    for (int i = 0; i < trans_entries; i++)
        s->trans[i] = (png_byte)(i * 67 % 256);
}

/* Loads the fixture from memory and from a file and checks every sample. */
static void check_fixture(const struct spec *s, const char *what)
{
    struct mem m = encode_spec(s);
    fx_image img = {0};
    if (fx_image_load_memory(m.data, m.size, NULL, &img) != FX_OK)
        fail_msg("%s: fx_image_load_memory failed: %s", what, fx_last_error());
    check_against_spec(&img, s, what);
    fx_image_free(&img);

    char path[1024];
    path_in_dir(path, sizeof path, "fixture.png");
    write_file(path, m.data, m.size);
    if (fx_image_load(path, NULL, &img) != FX_OK)
        fail_msg("%s: fx_image_load failed: %s", what, fx_last_error());
    check_against_spec(&img, s, what);
    fx_image_free(&img);
    unlink(path);
    free(m.data);
}

static void check_both_interlacings(struct spec *s, const char *what)
{
    char name[128];
    s->interlace = PNG_INTERLACE_NONE;
    snprintf(name, sizeof name, "%s, %d-bit", what, s->depth);
    check_fixture(s, name);
    s->interlace = PNG_INTERLACE_ADAM7;
    snprintf(name, sizeof name, "%s, %d-bit, Adam7", what, s->depth);
    check_fixture(s, name);
}

/* ---- Loading every kind of PNG -------------------------------------------- */

static void test_load_gray_every_depth(void **state)
{
    (void)state;
    static const int depths[] = {1, 2, 4, 8, 16};
    for (size_t i = 0; i < 5; i++) {
        struct spec s = {.width = 13, .height = 11, .depth = depths[i], .color_type = PNG_COLOR_TYPE_GRAY};
        check_both_interlacings(&s, "gray");
    }
}

static void test_load_gray_alpha_rgb_rgba(void **state)
{
    (void)state;
    static const int types[] = {PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    static const char *names[] = {"gray+alpha", "RGB", "RGBA"};
    for (size_t t = 0; t < 3; t++)
        for (int depth = 8; depth <= 16; depth += 8) {
            struct spec s = {.width = 13, .height = 11, .depth = depth, .color_type = types[t]};
            check_both_interlacings(&s, names[t]);
        }
}

static void test_load_palette_with_and_without_trns(void **state)
{
    (void)state;
    static const int depths[] = {1, 2, 4, 8};
    for (size_t i = 0; i < 4; i++) {
        int entries = depths[i] == 8 ? 200 : (1 << depths[i]) - (depths[i] > 1 ? 1 : 0);
        struct spec s = {.width = 13, .height = 11, .depth = depths[i], .color_type = PNG_COLOR_TYPE_PALETTE};
        set_palette(&s, entries, 0);
        check_both_interlacings(&s, "palette");
        /* tRNS shorter than the palette: later entries are opaque. */
        set_palette(&s, entries, entries > 1 ? entries - 1 : 1);
        check_both_interlacings(&s, "palette+tRNS");
    }
}

static void test_load_gray_and_rgb_with_trns(void **state)
{
    (void)state;
    static const int depths[] = {1, 2, 4, 8, 16};
    for (size_t i = 0; i < 5; i++) {
        struct spec s = {.width = 13, .height = 11, .depth = depths[i], .color_type = PNG_COLOR_TYPE_GRAY,
                         .has_trans_color = true};
        s.trans_color.gray = (png_uint_16)(depths[i] == 16 ? 4095 : (1 << depths[i]) / 2);
        check_both_interlacings(&s, "gray+tRNS");
    }
    for (int depth = 8; depth <= 16; depth += 8) {
        struct spec s = {.width = 13, .height = 11, .depth = depth, .color_type = PNG_COLOR_TYPE_RGB,
                         .has_trans_color = true};
        s.trans_color.red = (png_uint_16)(depth == 16 ? 4095 : 200);
        s.trans_color.green = 17;
        s.trans_color.blue = (png_uint_16)(depth == 16 ? 65535 : 255);
        check_both_interlacings(&s, "RGB+tRNS");
    }
}

/* Adam7 passes are empty for images narrower or lower than 8 pixels. */
static void test_load_tiny_interlaced_images(void **state)
{
    (void)state;
    static const uint32_t sizes[][2] = {{1, 1}, {3, 2}, {2, 9}, {8, 1}};
    for (size_t i = 0; i < 4; i++) {
        struct spec s = {.width = sizes[i][0], .height = sizes[i][1], .depth = 16,
                         .color_type = PNG_COLOR_TYPE_RGB_ALPHA};
        check_both_interlacings(&s, "tiny RGBA");
        s.depth = 2;
        s.color_type = PNG_COLOR_TYPE_GRAY;
        check_both_interlacings(&s, "tiny gray");
    }
}

/* A hand-checked 16-bit case: the values and their byte order. */
static void test_load_gray16_keeps_full_precision(void **state)
{
    (void)state;
    struct spec s = {.width = 5, .height = 1, .depth = 16, .color_type = PNG_COLOR_TYPE_GRAY};
    /* Raw big-endian rows written by hand: 0, 1, 4095, 0x1234, 65535. */
    static const uint8_t row[] = {0x00, 0x00, 0x00, 0x01, 0x0f, 0xff, 0x12, 0x34, 0xff, 0xff};
    struct mem m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, test_libpng_error, test_libpng_warning);
    png_infop info = png_create_info_struct(png);
    png_set_write_fn(png, &m, mem_write, mem_flush);
    png_set_IHDR(png, info, s.width, s.height, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_row(png, row);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);

    fx_image img = {0};
    assert_int_equal(fx_image_load_memory(m.data, m.size, NULL, &img), FX_OK);
    assert_int_equal(img.pixel_type, FX_PIXEL_U16);
    assert_int_equal(img.channels, 1);
    const uint16_t *px = img.data;
    assert_int_equal(px[0], 0);
    assert_int_equal(px[1], 1);
    assert_int_equal(px[2], 4095);
    assert_int_equal(px[3], 0x1234);
    assert_int_equal(px[4], 65535);
    fx_image_free(&img);
    free(m.data);
}

/* Metadata chunks are skipped, even damaged ones. */
static void test_load_ignores_ancillary_chunks(void **state)
{
    (void)state;
    struct spec s = {.width = 13, .height = 11, .depth = 8, .color_type = PNG_COLOR_TYPE_RGB, .add_text = true};
    check_fixture(&s, "RGB with tEXt");

    struct mem m = encode_spec(&s);
    size_t text = find_chunk(&m, "tEXt");
    m.data[text + 8] ^= 0x20; /* corrupts the keyword: the chunk's CRC no longer matches */
    fx_image img = {0};
    if (fx_image_load_memory(m.data, m.size, NULL, &img) != FX_OK)
        fail_msg("damaged tEXt: %s", fx_last_error());
    check_against_spec(&img, &s, "RGB with a damaged tEXt");
    fx_image_free(&img);
    free(m.data);
}

/* ---- Independent writers and readers: OpenCV and PIL --------------------- */

static uint32_t formula16(uint32_t x, uint32_t y, uint32_t c)
{
    return (x * 40503u + y * 9973u + c * 4095u + 7u) % 65536u;
}

static uint32_t formula8(uint32_t x, uint32_t y, uint32_t c)
{
    return (x * 29u + y * 83u + c * 101u + 5u) % 256u;
}

/* An image filled from formula8/16, with padding bytes at the end of each
 * row set to 0xAB (they must not reach the file). */
static fx_image make_padded(uint32_t w, uint32_t h, uint32_t ch, int32_t type, size_t pad)
{
    fx_image img = {.width = w, .height = h, .channels = ch, .pixel_type = type};
    img.stride = fx__row_bytes(w, ch, type) + pad;
    img.data = malloc(img.stride * h);
    assert_non_null(img.data);
    memset(img.data, 0xAB, img.stride * h);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            for (uint32_t c = 0; c < ch; c++) {
                size_t i = (size_t)x * ch + c;
                if (type == FX_PIXEL_U16) {
                    uint16_t v = (uint16_t)formula16(x, y, c);
                    memcpy(fx__row(&img, y) + 2 * i, &v, 2);
                } else {
                    fx__row(&img, y)[i] = (uint8_t)formula8(x, y, c);
                }
            }
    return img;
}

static void assert_same_pixels(const fx_image *a, const fx_image *b, const char *what)
{
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    assert_int_equal(a->channels, b->channels);
    assert_int_equal(a->pixel_type, b->pixel_type);
    for (uint32_t y = 0; y < a->height; y++)
        for (uint32_t x = 0; x < a->width; x++)
            for (uint32_t c = 0; c < a->channels; c++)
                if (image_value(a, x, y, c) != image_value(b, x, y, c))
                    fail_msg("%s: pixel (%u,%u) channel %u: %u vs %u", what, x, y, c, image_value(a, x, y, c),
                             image_value(b, x, y, c));
}

/* Compares an image with a dump written by make_png_fixtures.py. */
static void assert_matches_dump(const fx_image *img, const char *dump)
{
    FILE *f = fopen(dump, "r");
    if (!f)
        fail_msg("missing %s", dump);
    unsigned w, h, ch, bits;
    assert_int_equal(fscanf(f, "%u %u %u %u", &w, &h, &ch, &bits), 4);
    assert_int_equal(w, img->width);
    assert_int_equal(h, img->height);
    assert_int_equal(ch, img->channels);
    assert_int_equal(bits, img->pixel_type == FX_PIXEL_U16 ? 16 : 8);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            for (uint32_t c = 0; c < ch; c++) {
                unsigned v;
                assert_int_equal(fscanf(f, "%u", &v), 1);
                if (v != image_value(img, x, y, c))
                    fail_msg("%s: pixel (%u,%u) channel %u read as %u, saved %u", dump, x, y, c, v,
                             image_value(img, x, y, c));
            }
    fclose(f);
}

static void load_fixture_file(const char *name, fx_image *img)
{
    char path[1024];
    path_in_dir(path, sizeof path, name);
    if (fx_image_load(path, NULL, img) != FX_OK)
        fail_msg("%s: %s", name, fx_last_error());
}

static void check_opencv_and_pil_fixtures(void)
{
    fx_image img = {0};
    load_fixture_file("cv2_gray16.png", &img);
    assert_int_equal(img.width, 17);
    assert_int_equal(img.height, 9);
    assert_int_equal(img.channels, 1);
    assert_int_equal(img.pixel_type, FX_PIXEL_U16);
    assert_int_equal(image_value(&img, 0, 0, 0), 4095);
    for (uint32_t y = 0; y < 9; y++)
        for (uint32_t x = 0; x < 17; x++)
            assert_int_equal(image_value(&img, x, y, 0), (x * 3851 + y * 7919 + 4095) % 65536);
    fx_image_free(&img);

    load_fixture_file("cv2_rgba16.png", &img);
    assert_int_equal(img.channels, 4);
    assert_int_equal(img.pixel_type, FX_PIXEL_U16);
    for (uint32_t y = 0; y < 4; y++)
        for (uint32_t x = 0; x < 5; x++)
            for (uint32_t c = 0; c < 4; c++)
                assert_int_equal(image_value(&img, x, y, c), (x * 12345 + y * 54321 + c * 4095 + 1) % 65536);
    fx_image_free(&img);

    load_fixture_file("cv2_rgb8.png", &img);
    assert_int_equal(img.channels, 3);
    assert_int_equal(img.pixel_type, FX_PIXEL_U8);
    for (uint32_t y = 0; y < 5; y++)
        for (uint32_t x = 0; x < 6; x++)
            for (uint32_t c = 0; c < 3; c++)
                assert_int_equal(image_value(&img, x, y, c), (x * 37 + y * 101 + c * 59) % 256);
    fx_image_free(&img);

    load_fixture_file("pil_palette_trns.png", &img);
    assert_int_equal(img.channels, 4);
    assert_int_equal(img.pixel_type, FX_PIXEL_U8);
    static const uint32_t alpha[] = {0, 128, 255, 255, 255};
    for (uint32_t y = 0; y < 6; y++)
        for (uint32_t x = 0; x < 8; x++) {
            uint32_t i = (x + 2 * y) % 5;
            assert_int_equal(image_value(&img, x, y, 0), i * 50);
            assert_int_equal(image_value(&img, x, y, 1), 255 - i * 40);
            assert_int_equal(image_value(&img, x, y, 2), (i * 97) % 256);
            assert_int_equal(image_value(&img, x, y, 3), alpha[i]);
        }
    fx_image_free(&img);

    load_fixture_file("pil_bilevel.png", &img);
    assert_int_equal(img.channels, 1);
    assert_int_equal(img.pixel_type, FX_PIXEL_U8);
    for (uint32_t y = 0; y < 4; y++)
        for (uint32_t x = 0; x < 9; x++)
            assert_int_equal(image_value(&img, x, y, 0), (x * y + x) % 3 == 0 ? 255 : 0);
    fx_image_free(&img);

    load_fixture_file("pil_la8.png", &img);
    assert_int_equal(img.channels, 2);
    for (uint32_t y = 0; y < 3; y++)
        for (uint32_t x = 0; x < 5; x++) {
            assert_int_equal(image_value(&img, x, y, 0), (x * 50 + y * 3) % 256);
            assert_int_equal(image_value(&img, x, y, 1), (255 - x * 40 - y) % 256);
        }
    fx_image_free(&img);
}

static void test_cross_check_with_opencv_and_pil(void **state)
{
    (void)state;
    static const char *names[] = {"gray", "ga", "rgb", "rgba"};
    fx_image saved[8];
    for (uint32_t ch = 1; ch <= 4; ch++)
        for (int wide = 0; wide < 2; wide++) {
            fx_image *img = &saved[(ch - 1) * 2 + wide];
            *img = make_padded(7, 5, ch, wide ? FX_PIXEL_U16 : FX_PIXEL_U8, wide ? 6 : 3);
            char name[64], path[1024];
            snprintf(name, sizeof name, "fxsave_%s%d.png", names[ch - 1], wide ? 16 : 8);
            path_in_dir(path, sizeof path, name);
            if (fx_image_save(path, img, NULL) != FX_OK)
                fail_msg("%s: %s", name, fx_last_error());
        }

    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s %s", PYTHON, FIXTURE_SCRIPT, g_dir);
    int rc = system(cmd);
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
        fail_msg("'%s' failed (status %d)", cmd, rc);

    check_opencv_and_pil_fixtures();

    /* OpenCV reads every saved file; PIL those it keeps at full precision. */
    static const char *pil_readable[] = {"gray8", "ga8", "rgb8", "rgba8", "gray16"};
    for (uint32_t ch = 1; ch <= 4; ch++)
        for (int wide = 0; wide < 2; wide++) {
            char stem[64], dump[1024];
            snprintf(stem, sizeof stem, "%s%d", names[ch - 1], wide ? 16 : 8);
            snprintf(dump, sizeof dump, "%s/fxsave_%s.cv2.txt", g_dir, stem);
            assert_matches_dump(&saved[(ch - 1) * 2 + wide], dump);
            for (size_t i = 0; i < sizeof pil_readable / sizeof pil_readable[0]; i++)
                if (strcmp(stem, pil_readable[i]) == 0) {
                    snprintf(dump, sizeof dump, "%s/fxsave_%s.pil.txt", g_dir, stem);
                    assert_matches_dump(&saved[(ch - 1) * 2 + wide], dump);
                }
            free(saved[(ch - 1) * 2 + wide].data);
        }
}

/* ---- Saving ---------------------------------------------------------------- */

/* Reads a PNG with libpng and no transforms: the file's own bit depth, color
 * type and big-endian samples. */
struct raw_png {
    uint32_t width, height;
    int depth, color_type, interlace;
    uint8_t *rows; /* packed rows, height * rowbytes */
    size_t rowbytes;
};

struct mem_reader {
    const uint8_t *data;
    size_t size, pos;
};

static void mem_read(png_structp png, png_bytep out, size_t n)
{
    struct mem_reader *r = png_get_io_ptr(png);
    if (r->size - r->pos < n)
        fail_msg("test raw reader: PNG truncated");
    memcpy(out, r->data + r->pos, n);
    r->pos += n;
}

static struct raw_png read_raw(const char *path)
{
    size_t size;
    uint8_t *data = read_file(path, &size);
    struct mem_reader r = {data, size, 0};
    struct raw_png raw = {0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, test_libpng_error, test_libpng_warning);
    png_infop info = png_create_info_struct(png);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_set_read_fn(png, &r, mem_read);
    png_read_info(png, info);
    png_get_IHDR(png, info, &raw.width, &raw.height, &raw.depth, &raw.color_type, &raw.interlace, NULL, NULL);
    raw.rowbytes = png_get_rowbytes(png, info);
    raw.rows = malloc(raw.rowbytes * raw.height);
    assert_non_null(raw.rows);
    for (uint32_t y = 0; y < raw.height; y++)
        png_read_row(png, raw.rows + y * raw.rowbytes, NULL);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(data);
    return raw;
}

static void check_raw_file(const char *path, const fx_image *img)
{
    static const int color_types[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                      PNG_COLOR_TYPE_RGB_ALPHA};
    struct raw_png raw = read_raw(path);
    assert_int_equal(raw.width, img->width);
    assert_int_equal(raw.height, img->height);
    assert_int_equal(raw.depth, img->pixel_type == FX_PIXEL_U16 ? 16 : 8);
    assert_int_equal(raw.color_type, color_types[img->channels - 1]);
    assert_int_equal(raw.interlace, PNG_INTERLACE_NONE);
    for (uint32_t y = 0; y < img->height; y++)
        for (uint32_t x = 0; x < img->width; x++)
            for (uint32_t c = 0; c < img->channels; c++) {
                size_t i = (size_t)x * img->channels + c;
                const uint8_t *row = raw.rows + y * raw.rowbytes;
                uint32_t v = raw.depth == 16 ? (uint32_t)row[2 * i] << 8 | row[2 * i + 1] : row[i];
                assert_int_equal(v, image_value(img, x, y, c));
            }
    free(raw.rows);
}

static void test_save_round_trip_every_type_and_level(void **state)
{
    (void)state;
    int level = 0;
    for (int wide = 0; wide < 2; wide++)
        for (uint32_t ch = 1; ch <= 4; ch++) {
            int32_t type = wide ? FX_PIXEL_U16 : FX_PIXEL_U8;
            fx_image img = make_padded(19, 7, ch, type, wide ? 10 : 5);
            uint8_t *copy = malloc(img.stride * img.height);
            assert_non_null(copy);
            memcpy(copy, img.data, img.stride * img.height);

            fx_save_options opts;
            fx_save_options_init(&opts);
            opts.compression_level = level;
            level = (level + 1) % 10;
            char path[1024];
            path_in_dir(path, sizeof path, "round_trip.png");
            if (fx_image_save(path, &img, &opts) != FX_OK)
                fail_msg("save %u channels, type %d: %s", ch, (int)type, fx_last_error());
            /* The caller's buffer, padding included, is not modified (no in-place byte swap). */
            assert_memory_equal(img.data, copy, img.stride * img.height);
            check_raw_file(path, &img);

            fx_image back = {0};
            assert_int_equal(fx_image_load(path, NULL, &back), FX_OK);
            assert_same_pixels(&back, &img, "round trip");
            assert_int_equal(back.stride, fx__row_bytes(back.width, ch, type));
            fx_image_free(&back);
            free(copy);
            free(img.data);
        }
    assert_int_equal(count_temp_files(), 0);
}

static void test_save_every_compression_level(void **state)
{
    (void)state;
    fx_image img = make_padded(64, 32, 3, FX_PIXEL_U8, 0);
    size_t sizes[10];
    for (int level = 0; level <= 9; level++) {
        fx_save_options opts;
        fx_save_options_init(&opts);
        opts.compression_level = level;
        char path[1024];
        path_in_dir(path, sizeof path, "levels.png");
        assert_int_equal(fx_image_save(path, &img, &opts), FX_OK);
        uint8_t *data = read_file(path, &sizes[level]);
        fx_image back = {0};
        assert_int_equal(fx_image_load_memory(data, sizes[level], NULL, &back), FX_OK);
        assert_same_pixels(&back, &img, "compression level");
        fx_image_free(&back);
        free(data);
    }
    /* Level 0 stores the pixels: 64 * 32 * 3 bytes plus filter bytes and headers. */
    assert_true(sizes[0] >= 64 * 32 * 3 + 32);
    assert_true(sizes[9] < sizes[0]);
    free(img.data);
}

static void test_save_options_defaults(void **state)
{
    (void)state;
    fx_save_options s;
    memset(&s, 0x5a, sizeof s);
    fx_save_options_init(&s);
    assert_int_equal(s.struct_size, sizeof s);
    assert_int_equal(s.compression_level, 1);
    fx_load_options l;
    memset(&l, 0x5a, sizeof l);
    fx_load_options_init(&l);
    assert_int_equal(l.struct_size, sizeof l);
    assert_int_equal(l.max_width, 32768);
    assert_int_equal(l.max_height, 32768);
    assert_int_equal(l.max_pixels, (uint64_t)1 << 27);
    fx_save_options_init(NULL); /* no-ops */
    fx_load_options_init(NULL);
}

static void test_save_honours_umask(void **state)
{
    (void)state;
    fx_image img = make_padded(4, 4, 1, FX_PIXEL_U8, 0);
    char path[1024];
    path_in_dir(path, sizeof path, "mode.png");
    static const mode_t masks[] = {022, 077, 002};
    for (size_t i = 0; i < 3; i++) {
        mode_t old = umask(masks[i]);
        fx_status st = fx_image_save(path, &img, NULL);
        umask(old);
        assert_int_equal(st, FX_OK);
        struct stat sb;
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0666 & ~masks[i]);
    }
    unlink(path);
    free(img.data);
}

static void test_save_width_over_libpng_default_limit(void **state)
{
    (void)state;
    /* libpng refuses widths over 1,000,000 unless its user limits are raised. */
    fx_image img = make_padded(1000001, 1, 1, FX_PIXEL_U8, 0);
    char path[1024];
    path_in_dir(path, sizeof path, "wide.png");
    if (fx_image_save(path, &img, NULL) != FX_OK)
        fail_msg("%s", fx_last_error());
    fx_image back = {0};
    assert_int_equal(fx_image_load(path, NULL, &back), FX_ERR_LIMIT);
    assert_error_contains("1000001x1");
    assert_error_contains("max_width");
    fx_load_options opts;
    fx_load_options_init(&opts);
    opts.max_width = 1000001;
    if (fx_image_load(path, &opts, &back) != FX_OK)
        fail_msg("%s", fx_last_error());
    assert_same_pixels(&back, &img, "1000001x1");
    fx_image_free(&back);
    unlink(path);
    free(img.data);
}

static void test_save_rejects_bad_arguments(void **state)
{
    (void)state;
    fx_image img = make_padded(4, 3, 3, FX_PIXEL_U8, 0);
    char path[1024];
    path_in_dir(path, sizeof path, "rejected.png");

    assert_int_equal(fx_image_save(NULL, &img, NULL), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("path is NULL");
    assert_int_equal(fx_image_save("", &img, NULL), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("path is empty");
    assert_int_equal(fx_image_save(path, NULL, NULL), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("image is NULL");

    fx_image bad = img;
    bad.data = NULL;
    assert_int_equal(fx_image_save(path, &bad, NULL), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("data is NULL");
    bad = img;
    bad.channels = 5;
    assert_int_equal(fx_image_save(path, &bad, NULL), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("5 channels");
    bad = img;
    bad.stride = 11;
    assert_int_equal(fx_image_save(path, &bad, NULL), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("stride 11");
    bad = img;
    bad.pixel_type = 9;
    assert_int_equal(fx_image_save(path, &bad, NULL), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("pixel type 9");

    float f[12] = {0};
    fx_image heat = {.data = f, .stride = 16, .width = 4, .height = 3, .channels = 1, .pixel_type = FX_PIXEL_F32};
    assert_int_equal(fx_image_save(path, &heat, NULL), FX_ERR_UNSUPPORTED);
    assert_error_contains("FX_PIXEL_F32");
    assert_error_contains("fx_colormap_apply");

    /* Checked before any pixel is read: data only holds one row. */
    fx_image huge = {.data = f, .stride = 0x80000000u, .width = 0x80000000u, .height = 1, .channels = 1,
                     .pixel_type = FX_PIXEL_U8};
    assert_int_equal(fx_image_save(path, &huge, NULL), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("2147483647");

    fx_save_options opts;
    fx_save_options_init(&opts);
    opts.compression_level = 10;
    assert_int_equal(fx_image_save(path, &img, &opts), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("compression_level 10");
    assert_error_contains("0 (no compression");
    opts.compression_level = -1;
    assert_int_equal(fx_image_save(path, &img, &opts), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("compression_level -1");
    fx_save_options_init(&opts);
    opts.struct_size = 0;
    assert_int_equal(fx_image_save(path, &img, &opts), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("struct_size is 0");

    assert_false(file_exists(path));
    assert_int_equal(count_temp_files(), 0);
    free(img.data);
}

static void test_save_to_missing_directory(void **state)
{
    (void)state;
    fx_image img = make_padded(4, 3, 1, FX_PIXEL_U8, 0);
    char path[1024];
    path_in_dir(path, sizeof path, "no-such-dir/out.png");
    assert_int_equal(fx_image_save(path, &img, NULL), FX_ERR_IO);
    assert_error_contains(path);
    assert_error_contains("No such file or directory");
    assert_false(file_exists(path));
    assert_int_equal(count_temp_files(), 0);
    free(img.data);
}

static void test_save_over_a_directory_fails_cleanly(void **state)
{
    (void)state;
    fx_image img = make_padded(4, 3, 1, FX_PIXEL_U8, 0);
    char path[1024], inner[1100];
    path_in_dir(path, sizeof path, "a-directory");
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(inner, sizeof inner, "%s/keep", path);
    write_file(inner, "x", 1); /* a non-empty directory cannot be replaced */
    assert_int_equal(fx_image_save(path, &img, NULL), FX_ERR_IO);
    assert_error_contains("renaming");
    assert_error_contains(path);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(count_temp_files(), 0);
    free(img.data);
}

/* A write that fails half-way (file size limit) leaves the old file as it was. */
/* Entries of dir other than "." and "..". */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        count += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return count;
}

/* A process killed in the middle of fx_image_save leaves neither the target
 * nor any temporary file: the data goes to an anonymous O_TMPFILE file that
 * gets a name only once complete. */
static void test_killed_save_leaves_nothing(void **state)
{
    (void)state;
    char dir[1024], path[1100];
    path_in_dir(dir, sizeof dir, "killed");
    assert_int_equal(mkdir(dir, 0777), 0);
    snprintf(path, sizeof path, "%s/big.png", dir);

    /* 4096 x 2048 RGB noise at zlib level 9 takes seconds to encode: the kill
     * below lands long before the end. */
    fx_image img = make_padded(4096, 2048, 3, FX_PIXEL_U8, 0);
    uint8_t *px = img.data;
    for (size_t i = 0; i < img.stride * img.height; i++)
        px[i] = (uint8_t)hash3((uint32_t)i, 7, 9);
    fx_save_options opts;
    fx_save_options_init(&opts);
    opts.compression_level = 9;

    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
        _exit(fx_image_save(path, &img, &opts) == FX_OK ? 0 : 1);
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    int status = 0;
    assert_int_equal(kill(child, SIGKILL), 0);
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFSIGNALED(status)); /* killed mid-write, not finished */
    assert_int_equal(count_entries(dir), 0);
    free(img.data);
    rmdir(dir);
}

static void test_save_failure_keeps_existing_target(void **state)
{
    (void)state;
    char path[1024];
    path_in_dir(path, sizeof path, "precious.png");
    static const char old_content[] = "the previous version of this file";
    write_file(path, old_content, sizeof old_content);

    /* Noise does not compress: the PNG is about 200 KB at level 0. */
    fx_image img = make_padded(256, 256, 3, FX_PIXEL_U8, 0);
    uint8_t *px = img.data;
    for (size_t i = 0; i < img.stride * img.height; i++)
        px[i] = (uint8_t)hash3((uint32_t)i, 1, 2);
    fx_save_options opts;
    fx_save_options_init(&opts);
    opts.compression_level = 0;

    struct rlimit old_limit, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
    small = old_limit;
    small.rlim_cur = 16384;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    fx_status st = fx_image_save(path, &img, &opts);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
    signal(SIGXFSZ, old_handler);

    assert_int_equal(st, FX_ERR_IO);
    assert_error_contains(path);
    assert_error_contains("File too large");
    size_t size;
    uint8_t *now = read_file(path, &size);
    assert_int_equal(size, sizeof old_content);
    assert_memory_equal(now, old_content, sizeof old_content);
    free(now);
    assert_int_equal(count_temp_files(), 0);

    /* The same save without the limit replaces the file. */
    assert_int_equal(fx_image_save(path, &img, &opts), FX_OK);
    fx_image back = {0};
    assert_int_equal(fx_image_load(path, NULL, &back), FX_OK);
    assert_same_pixels(&back, &img, "after the failed save");
    fx_image_free(&back);
    unlink(path);
    free(img.data);
}

/* ---- Bad input on load ----------------------------------------------------- */

static struct mem noise_png(void)
{
    struct spec s = {.width = 64, .height = 64, .depth = 8, .color_type = PNG_COLOR_TYPE_RGB};
    return encode_spec(&s);
}

/* Offset of the length field of the first chunk of this type. */
static size_t find_chunk(const struct mem *m, const char *type)
{
    size_t pos = 8;
    while (pos + 8 <= m->size) {
        uint32_t len = (uint32_t)m->data[pos] << 24 | (uint32_t)m->data[pos + 1] << 16 |
                       (uint32_t)m->data[pos + 2] << 8 | m->data[pos + 3];
        if (memcmp(m->data + pos + 4, type, 4) == 0)
            return pos;
        pos += 12 + (size_t)len;
    }
    fail_msg("no %s chunk", type);
    return 0;
}

static uint32_t chunk_length(const struct mem *m, size_t pos)
{
    return (uint32_t)m->data[pos] << 24 | (uint32_t)m->data[pos + 1] << 16 | (uint32_t)m->data[pos + 2] << 8 |
           m->data[pos + 3];
}

/* Loads bytes from memory and from a file; both must fail the same way. */
static void expect_load_failure(const uint8_t *data, size_t size, fx_status status, const char *needle)
{
    fx_image img = {0};
    if (size > 0) {
        fx_status st = fx_image_load_memory(data, size, NULL, &img);
        if (st != status)
            fail_msg("memory, %zu bytes: status %d, expected %d (%s)", size, st, status, fx_last_error());
        assert_error_contains(needle);
        assert_error_contains("in memory");
        assert_untouched(&img);
    }
    char path[1024];
    path_in_dir(path, sizeof path, "bad.png");
    write_file(path, data, size);
    fx_status st = fx_image_load(path, NULL, &img);
    if (st != status)
        fail_msg("file, %zu bytes: status %d, expected %d (%s)", size, st, status, fx_last_error());
    assert_error_contains(needle);
    assert_error_contains(path);
    assert_untouched(&img);
    unlink(path);
}

static void test_load_rejects_bad_arguments(void **state)
{
    (void)state;
    struct mem m = noise_png();
    fx_image img = {0};
    assert_int_equal(fx_image_load(NULL, NULL, &img), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("path is NULL");
    assert_int_equal(fx_image_load("", NULL, &img), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("path is empty");
    assert_int_equal(fx_image_load("x.png", NULL, NULL), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("out is NULL");
    assert_int_equal(fx_image_load_memory(NULL, 10, NULL, &img), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("png is NULL");
    assert_int_equal(fx_image_load_memory(m.data, 0, NULL, &img), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("size is 0");
    assert_int_equal(fx_image_load_memory(m.data, m.size, NULL, NULL), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("out is NULL");
    assert_untouched(&img);

    /* A caller's buffer is refused and left alone. */
    uint8_t buf[16];
    fx_image caller = {.data = buf, .stride = 4, .width = 4, .height = 4, .channels = 1, .pixel_type = FX_PIXEL_U8};
    fx_image before = caller;
    assert_int_equal(fx_image_load_memory(m.data, m.size, NULL, &caller), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("out->data must be NULL");
    assert_memory_equal(&caller, &before, sizeof caller);

    fx_load_options opts;
    fx_load_options_init(&opts);
    opts.struct_size = 2; /* shorter than the struct_size field itself */
    assert_int_equal(fx_image_load_memory(m.data, m.size, &opts, &img), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("struct_size is 2");
    /* A program built against an older, shorter struct gets defaults for the
     * fields it does not know: here only max_width is known to it. */
    fx_load_options_init(&opts);
    opts.struct_size = offsetof(fx_load_options, max_height);
    opts.max_width = 12;
    opts.max_height = 1; /* beyond the old struct: must be ignored */
    assert_int_equal(fx_image_load_memory(m.data, m.size, &opts, &img), FX_ERR_LIMIT);
    assert_error_contains("width exceeds the limit of 12");
    fx_load_options_init(&opts);
    opts.max_pixels = 0;
    assert_int_equal(fx_image_load_memory(m.data, m.size, &opts, &img), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("max_pixels 0");
    fx_load_options_init(&opts);
    opts.max_width = 0;
    assert_int_equal(fx_image_load_memory(m.data, m.size, &opts, &img), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("max_width 0");
    assert_untouched(&img);
    free(m.data);
}

static void test_load_missing_file_and_directory(void **state)
{
    (void)state;
    fx_image img = {0};
    char path[1024];
    path_in_dir(path, sizeof path, "does-not-exist.png");
    assert_int_equal(fx_image_load(path, NULL, &img), FX_ERR_IO);
    assert_error_contains(path);
    assert_error_contains("No such file or directory");
    assert_untouched(&img);

    assert_int_equal(fx_image_load(g_dir, NULL, &img), FX_ERR_IO);
    assert_error_contains(g_dir);
    assert_error_contains("directory");
    assert_untouched(&img);

    /* A FIFO named like an image: refused at once, never waited on (the
     * alarm turns a hang into a failure). */
    path_in_dir(path, sizeof path, "fifo.png");
    assert_int_equal(mkfifo(path, 0600), 0);
    alarm(30);
    assert_int_equal(fx_image_load(path, NULL, &img), FX_ERR_IO);
    alarm(0);
    assert_error_contains("not a regular file");
    assert_untouched(&img);
    unlink(path);
}

static void test_load_not_a_png(void **state)
{
    (void)state;
    expect_load_failure(NULL, 0, FX_ERR_FORMAT, "is empty (0 bytes)");
    static const char text[] = "hello, this is not a PNG file\n";
    expect_load_failure((const uint8_t *)text, sizeof text - 1, FX_ERR_FORMAT, "not a PNG, JPEG or DICOM file");
    assert_error_contains("(first bytes 68 65 6c 6c 6f");
    assert_error_contains("\"DICM\" at byte 128");
    assert_error_contains("68 65 6c 6c 6f");
    static const uint8_t jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0, 1};
    /* Recognised as JPEG and read as one (lib/jpeg.c): 12 bytes end early. */
#if FX_TEST_HAVE_JPEG
    expect_load_failure(jpeg, sizeof jpeg, FX_ERR_FORMAT, "not a valid JPEG");
#else
    expect_load_failure(jpeg, sizeof jpeg, FX_ERR_NOT_AVAILABLE, "without JPEG support");
#endif
    static const uint8_t short_text[] = {'a', 'b'};
    expect_load_failure(short_text, sizeof short_text, FX_ERR_FORMAT, "not a PNG, JPEG or DICOM file");
    assert_error_contains("(first bytes 61 62)");
    static const uint8_t tiff[] = {'I', 'I', '*', 0, 8, 0, 0, 0};
    expect_load_failure(tiff, sizeof tiff, FX_ERR_FORMAT, "it looks like a TIFF file");
    /* PNG signature mangled by a text-mode transfer (\r\n -> \n). */
    static const uint8_t mangled[] = {0x89, 'P', 'N', 'G', 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d};
    expect_load_failure(mangled, sizeof mangled, FX_ERR_FORMAT, "damaged PNG");
}

static void test_load_truncated_files(void **state)
{
    (void)state;
    struct mem m = noise_png();
    size_t idat = find_chunk(&m, "IDAT");
    uint32_t idat_len = chunk_length(&m, idat);
    assert_true(idat_len > 1000);
    const struct {
        size_t cut;
        const char *needle;
    } cuts[] = {
        {4, "shorter than the 8-byte PNG signature"},
        {8, "truncated"},
        {12, "truncated"},
        {20, "inside the IHDR chunk"},
        {31, "in the CRC of the IHDR chunk"},
        {idat + 6, "truncated"},
        {idat + 8 + 100, "inside the IDAT chunk"},
        {idat + 8 + idat_len / 2, "inside the IDAT chunk"},
        {idat + 8 + idat_len + 2, "in the CRC of the IDAT chunk"},
        {m.size - 12, "in the chunk header after the IDAT chunk"},
        {m.size - 1, "in the CRC of the IEND chunk"},
    };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        expect_load_failure(m.data, cuts[i].cut, FX_ERR_FORMAT, cuts[i].needle);
        assert_error_contains("truncated");
    }
    /* The complete file loads. */
    fx_image img = {0};
    assert_int_equal(fx_image_load_memory(m.data, m.size, NULL, &img), FX_OK);
    fx_image_free(&img);
    free(m.data);
}

static void test_load_corrupt_files(void **state)
{
    (void)state;
    struct mem m = noise_png();
    size_t idat = find_chunk(&m, "IDAT");
    uint32_t idat_len = chunk_length(&m, idat);

    /* A byte of the IHDR width: the CRC no longer matches. */
    m.data[8 + 8 + 2] ^= 0x01;
    expect_load_failure(m.data, m.size, FX_ERR_FORMAT, "IHDR: CRC error");
    m.data[8 + 8 + 2] ^= 0x01;

    /* A byte inside the compressed data: zlib or the CRC check catches it. */
    m.data[idat + 8 + idat_len / 2] ^= 0x5a;
    expect_load_failure(m.data, m.size, FX_ERR_FORMAT, "not a valid PNG");
    assert_error_contains("IDAT");
    m.data[idat + 8 + idat_len / 2] ^= 0x5a;

    /* The IDAT's CRC itself. */
    m.data[idat + 8 + idat_len] ^= 0xff;
    expect_load_failure(m.data, m.size, FX_ERR_FORMAT, "IDAT: CRC error");
    m.data[idat + 8 + idat_len] ^= 0xff;

    /* The first bytes of the zlib stream (its header). */
    m.data[idat + 8] ^= 0xff;
    expect_load_failure(m.data, m.size, FX_ERR_FORMAT, "IDAT");
    m.data[idat + 8] ^= 0xff;

    fx_image img = {0};
    assert_int_equal(fx_image_load_memory(m.data, m.size, NULL, &img), FX_OK);
    fx_image_free(&img);
    free(m.data);
}

/* CRC-32 as in the PNG specification, for hand-made chunks. */
static uint32_t png_crc(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Signature, an IHDR claiming width x height RGB, an IDAT holding an empty
 * zlib stream (what a decompression bomb starts with) and IEND. */
static size_t forged_header(uint8_t out[65], uint32_t width, uint32_t height)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    static const uint8_t empty_zlib[8] = {0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01};
    memcpy(out, sig, 8);
    put_be32(out + 8, 13);
    memcpy(out + 12, "IHDR", 4);
    put_be32(out + 16, width);
    put_be32(out + 20, height);
    out[24] = 8; /* bit depth */
    out[25] = 2; /* RGB */
    out[26] = out[27] = out[28] = 0;
    put_be32(out + 29, png_crc(out + 12, 17));
    put_be32(out + 33, sizeof empty_zlib);
    memcpy(out + 37, "IDAT", 4);
    memcpy(out + 41, empty_zlib, sizeof empty_zlib);
    put_be32(out + 49, png_crc(out + 37, 12));
    put_be32(out + 53, 0);
    memcpy(out + 57, "IEND", 4);
    put_be32(out + 61, png_crc(out + 57, 4));
    return 65;
}

static double seconds_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void test_load_decompression_bomb_header(void **state)
{
    (void)state;
    uint8_t png[65];
    size_t size = forged_header(png, 100000, 100000);
    fx_image img = {0};
    double start = seconds_now();
    assert_int_equal(fx_image_load_memory(png, size, NULL, &img), FX_ERR_LIMIT);
    assert_error_contains("100000x100000");
    assert_error_contains("limit of 32768");
    assert_error_contains("fx_load_options.max_width");
    assert_untouched(&img);

    /* Sides allowed, area not: our own check, not fx_image_alloc's 2 GiB one
     * (30 GB would also fail there), answers before any allocation. */
    fx_load_options opts;
    fx_load_options_init(&opts);
    opts.max_width = opts.max_height = 200000;
    assert_int_equal(fx_image_load_memory(png, size, &opts, &img), FX_ERR_LIMIT);
    assert_error_contains("10000000000 pixels");
    assert_error_contains("fx_load_options.max_pixels");
    assert_true(seconds_now() - start < 1.0);

    /* Height alone. */
    size = forged_header(png, 10, 40000);
    assert_int_equal(fx_image_load_memory(png, size, NULL, &img), FX_ERR_LIMIT);
    assert_error_contains("10x40000");
    assert_error_contains("fx_load_options.max_height");

    /* Within the limits the same file fails on its missing pixel data. */
    size = forged_header(png, 10, 10);
    assert_int_equal(fx_image_load_memory(png, size, NULL, &img), FX_ERR_FORMAT);
    assert_error_contains("not a valid PNG");
    assert_untouched(&img);
}

static void test_load_limits_are_inclusive(void **state)
{
    (void)state;
    struct spec s = {.width = 13, .height = 11, .depth = 8, .color_type = PNG_COLOR_TYPE_GRAY};
    struct mem m = encode_spec(&s);
    fx_load_options opts;
    fx_image img = {0};

    fx_load_options_init(&opts);
    opts.max_width = 13;
    opts.max_height = 11;
    opts.max_pixels = 143;
    assert_int_equal(fx_image_load_memory(m.data, m.size, &opts, &img), FX_OK);
    check_against_spec(&img, &s, "at the limits");
    fx_image_free(&img);

    opts.max_width = 12;
    assert_int_equal(fx_image_load_memory(m.data, m.size, &opts, &img), FX_ERR_LIMIT);
    assert_error_contains("13x11 pixels: its width exceeds the limit of 12");
    opts.max_width = 13;
    opts.max_height = 10;
    assert_int_equal(fx_image_load_memory(m.data, m.size, &opts, &img), FX_ERR_LIMIT);
    assert_error_contains("height exceeds the limit of 10");
    opts.max_height = 11;
    opts.max_pixels = 142;
    assert_int_equal(fx_image_load_memory(m.data, m.size, &opts, &img), FX_ERR_LIMIT);
    assert_error_contains("143 pixels, over the limit of 142");
    assert_untouched(&img);

    /* A larger struct_size (a program built against a newer header) is
     * refused: it may ask for something this library cannot do. */
    struct {
        fx_load_options base;
        uint64_t future_field;
    } newer;
    fx_load_options_init(&newer.base);
    newer.base.struct_size = sizeof newer;
    newer.future_field = 0;
    assert_int_equal(fx_image_load_memory(m.data, m.size, &newer.base, &img), FX_ERR_INVALID_ARGUMENT);
    assert_error_contains("newer fxcam.h");
    assert_int_equal(fx_image_load_memory(m.data, m.size, NULL, &img), FX_OK);
    fx_image_free(&img);
    free(m.data);
}

static void test_load_unknown_critical_chunk(void **state)
{
    (void)state;
    struct mem m = noise_png();
    size_t idat = find_chunk(&m, "IDAT");
    /* Insert an empty critical chunk "QXYZ" (upper-case first letter) before IDAT. */
    uint8_t chunk[12];
    put_be32(chunk, 0);
    memcpy(chunk + 4, "QXYZ", 4);
    put_be32(chunk + 8, png_crc(chunk + 4, 4));
    uint8_t *data = malloc(m.size + sizeof chunk);
    assert_non_null(data);
    memcpy(data, m.data, idat);
    memcpy(data + idat, chunk, sizeof chunk);
    memcpy(data + idat + sizeof chunk, m.data + idat, m.size - idat);
    expect_load_failure(data, m.size + sizeof chunk, FX_ERR_FORMAT, "QXYZ");
    free(data);
    free(m.data);
}

/* ---- Threads ---------------------------------------------------------------- */

struct thread_job {
    const struct mem *good;
    const struct spec *spec;
    size_t id;
    int ok;
};

/* Each thread alternates good and truncated loads; the error message it sees
 * must be its own. */
static void *load_repeatedly(void *arg)
{
    struct thread_job *job = arg;
    job->ok = 1;
    for (int i = 0; i < 20; i++) {
        fx_image img = {0};
        if (fx_image_load_memory(job->good->data, job->good->size, NULL, &img) != FX_OK)
            job->ok = 0;
        for (uint32_t y = 0; y < job->spec->height && job->ok; y++)
            for (uint32_t x = 0; x < job->spec->width; x++)
                if (image_value(&img, x, y, 0) != expected_value(job->spec, x, y, 0))
                    job->ok = 0;
        fx_image_free(&img);
        size_t cut = job->good->size / 2 + 100 * job->id + (size_t)i; /* differs between threads */
        if (fx_image_load_memory(job->good->data, cut, NULL, &img) != FX_ERR_FORMAT)
            job->ok = 0;
        char want[64];
        snprintf(want, sizeof want, "(%zu bytes) is truncated", cut);
        if (!strstr(fx_last_error(), want))
            job->ok = 0;
    }
    return NULL;
}

static void test_load_from_several_threads(void **state)
{
    (void)state;
    struct spec s = {.width = 64, .height = 64, .depth = 16, .color_type = PNG_COLOR_TYPE_GRAY,
                     .interlace = PNG_INTERLACE_ADAM7};
    struct mem m = encode_spec(&s);
    pthread_t threads[4];
    struct thread_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct thread_job){.good = &m, .spec = &s, .id = (size_t)i};
        assert_int_equal(pthread_create(&threads[i], NULL, load_repeatedly, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_true(jobs[i].ok);
    }
    free(m.data);
}

/* ---- Atomic writes (lib/atomic_file.c) ------------------------------------ */

/* A symlink planted at the target name is replaced by the new file; the file
 * it pointed to is never written. */
static void test_save_replaces_a_planted_symlink_not_its_target(void **state)
{
    (void)state;
    char outside[1024], link[1024];
    path_in_dir(outside, sizeof outside, "outside.txt");
    path_in_dir(link, sizeof link, "planted.png");
    static const char precious[] = "precious";
    write_file(outside, precious, sizeof precious);
    assert_int_equal(symlink(outside, link), 0);
    fx_image img = make_padded(5, 4, 1, FX_PIXEL_U8, 0);
    assert_int_equal(fx_image_save(link, &img, NULL), FX_OK);
    size_t size;
    uint8_t *kept = read_file(outside, &size);
    assert_int_equal(size, sizeof precious);
    assert_memory_equal(kept, precious, sizeof precious);
    free(kept);
    struct stat sb;
    assert_int_equal(lstat(link, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    fx_image back = {0};
    assert_int_equal(fx_image_load(link, NULL, &back), FX_OK);
    assert_same_pixels(&back, &img, "through the replaced link");
    fx_image_free(&back);
    assert_int_equal(count_temp_files(), 0);
    unlink(link);
    unlink(outside);
    free(img.data);
}

/* While writing, the anonymous file has no name in the folder; the named
 * fallback's name is fxcam's own (fx__atomic_is_temp_name) and a regular
 * file; both end as the target with the data, and no temporary name. */
static void test_atomic_file_anonymous_and_named(void **state)
{
    (void)state;
    char dir[1024], path[1100];
    path_in_dir(dir, sizeof dir, "atomic");
    assert_int_equal(mkdir(dir, 0777), 0);
    snprintf(path, sizeof path, "%s/data.txt", dir);
    static const char text[] = "hello, atomic world\n";
    for (int anonymous = 1; anonymous >= 0; anonymous--) { /* anonymous first: the folder is empty */
        fx__atomic_file f;
        assert_int_equal(fx__atomic_open_mode(&f, path, anonymous), 0);
        assert_int_equal(f.anonymous, anonymous == 1);
        if (anonymous) {
            assert_int_equal(count_entries(dir), 0); /* no name while writing */
        } else {
            char temp[1200];
            snprintf(temp, sizeof temp, "%s/%s", dir, f.temp_name);
            struct stat sb;
            assert_int_equal(lstat(temp, &sb), 0);
            assert_true(S_ISREG(sb.st_mode));
            assert_true(fx__atomic_is_temp_name(f.temp_name));
        }
        assert_int_equal(fx__atomic_write(&f, text, 5), 0);
        assert_int_equal(fx__atomic_write(&f, text + 5, sizeof text - 5), 0);
        assert_int_equal(fx__atomic_commit(&f), 0);
        size_t size;
        uint8_t *got = read_file(path, &size);
        assert_int_equal(size, sizeof text);
        assert_memory_equal(got, text, sizeof text);
        free(got);
        assert_int_equal(count_entries(dir), 1);
        /* an aborted write leaves the target as it was and nothing else */
        assert_int_equal(fx__atomic_open_mode(&f, path, anonymous), 0);
        assert_int_equal(fx__atomic_write(&f, "x", 1), 0);
        fx__atomic_abort(&f);
        got = read_file(path, &size);
        assert_int_equal(size, sizeof text);
        free(got);
        assert_int_equal(count_entries(dir), 1);
    }
    unlink(path);
    rmdir(dir);
}

/* Only names the writer makes are recognised as its leftovers. */
static void test_atomic_temp_names_are_checked(void **state)
{
    (void)state;
    char path[1024];
    path_in_dir(path, sizeof path, "named.txt");
    fx__atomic_file f;
    assert_int_equal(fx__atomic_open_mode(&f, path, false), 0);
    char name[FX_ATOMIC_TEMP_NAME_SIZE];
    memcpy(name, f.temp_name, sizeof name);
    fx__atomic_abort(&f);
    assert_false(file_exists(path));
    assert_true(fx__atomic_is_temp_name(name));
    size_t n = strlen(name);
    assert_int_equal(n, strlen(".fxcam-") + 16 + strlen(".tmp"));
    name[n - 5] = name[n - 5] == '0' ? '1' : '0'; /* a wrong check digit */
    assert_false(fx__atomic_is_temp_name(name));
    static const char *const users[] = {"report_gradcam.png.v2.tmp", "summary.txt.1234.tmp",
                                        "img_gradcam.png.0123abcd.tmp", ".fxcam-0123456789abcdef.tmp",
                                        ".fxcam-.tmp", "", ".fxcam-0123456789ABCDEF.tmp"};
    for (size_t i = 0; i < sizeof users / sizeof users[0]; i++)
        assert_false(fx__atomic_is_temp_name(users[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_gray_every_depth),
        cmocka_unit_test(test_load_gray_alpha_rgb_rgba),
        cmocka_unit_test(test_load_palette_with_and_without_trns),
        cmocka_unit_test(test_load_gray_and_rgb_with_trns),
        cmocka_unit_test(test_load_tiny_interlaced_images),
        cmocka_unit_test(test_load_gray16_keeps_full_precision),
        cmocka_unit_test(test_load_ignores_ancillary_chunks),
        cmocka_unit_test(test_cross_check_with_opencv_and_pil),
        cmocka_unit_test(test_save_round_trip_every_type_and_level),
        cmocka_unit_test(test_save_every_compression_level),
        cmocka_unit_test(test_save_options_defaults),
        cmocka_unit_test(test_save_honours_umask),
        cmocka_unit_test(test_save_width_over_libpng_default_limit),
        cmocka_unit_test(test_save_rejects_bad_arguments),
        cmocka_unit_test(test_save_to_missing_directory),
        cmocka_unit_test(test_save_over_a_directory_fails_cleanly),
        cmocka_unit_test(test_save_failure_keeps_existing_target),
        cmocka_unit_test(test_killed_save_leaves_nothing),
        cmocka_unit_test(test_load_rejects_bad_arguments),
        cmocka_unit_test(test_load_missing_file_and_directory),
        cmocka_unit_test(test_load_not_a_png),
        cmocka_unit_test(test_load_truncated_files),
        cmocka_unit_test(test_load_corrupt_files),
        cmocka_unit_test(test_load_decompression_bomb_header),
        cmocka_unit_test(test_load_limits_are_inclusive),
        cmocka_unit_test(test_load_unknown_critical_chunk),
        cmocka_unit_test(test_load_from_several_threads),
        cmocka_unit_test(test_save_replaces_a_planted_symlink_not_its_target),
        cmocka_unit_test(test_atomic_file_anonymous_and_named),
        cmocka_unit_test(test_atomic_temp_names_are_checked),
    };
    return cmocka_run_group_tests_name("image", tests, group_setup, group_teardown);
}
