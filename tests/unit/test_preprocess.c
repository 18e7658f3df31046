/* The intensity rule (lib/intensity.c) by hand computation, the sBIT reading
 * of the PNG reader, and the resize modes (lib/preprocess.c) against torch's
 * interpolate(antialias=True) and torchvision's Resize + CenterCrop
 * (reference data written at build time by
 * tests/tools/make_torch_resample_reference.py), plus the inverse geometry by
 * hand. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "preprocess.h"
#include "reference_file.h"

#define TORCH_CASES FX_TEST_BUILD_DIR "/reference/torch_resample_cases.bin"

static fx_image view(void *data, uint32_t width, uint32_t height, uint32_t channels, int32_t pixel_type)
{
    fx_image img = {.data = data,
                    .stride = fx__row_bytes(width, channels, pixel_type),
                    .width = width,
                    .height = height,
                    .channels = channels,
                    .pixel_type = pixel_type};
    return img;
}

/* ---- Intensity ------------------------------------------------------------ */

static float unit_of(const fx_image *img, const fx_intensity *rule, const fx_image_info *info, uint32_t x)
{
    fx__unit_map map;
    assert_int_equal(fx__intensity_resolve(rule, img, info, "test", &map), FX_OK);
    return fx__unit_sample(&map, img, x, 0, 0);
}

static void test_intensity_by_hand(void **state)
{
    (void)state;
    uint16_t u16[4] = {0, 2048, 4095, 4096};
    fx_image img16 = view(u16, 4, 1, 1, FX_PIXEL_U16);
    fx_intensity rule;
    fx_intensity_init(&rule);
    fx_image_info twelve = {.struct_size = sizeof twelve, .bits_stored = 12};

    /* auto without info: the container, 2048 / 65535 */
    assert_float_equal(unit_of(&img16, &rule, NULL, 1), 2048.0 / 65535.0, 1e-7);
    /* auto with 12 bits stored: 2048 / 4095, 4095 -> 1, 4096 clipped to 1 */
    assert_float_equal(unit_of(&img16, &rule, &twelve, 1), 2048.0 / 4095.0, 1e-7);
    assert_float_equal(unit_of(&img16, &rule, &twelve, 2), 1.0, 0);
    assert_float_equal(unit_of(&img16, &rule, &twelve, 3), 1.0, 0);
    fx__unit_map map;
    uint64_t low, high;
    assert_int_equal(fx__intensity_resolve(&rule, &img16, &twelve, "test", &map), FX_OK);
    fx__intensity_clipped(&map, &img16, &low, &high);
    assert_int_equal(low, 0);
    assert_int_equal(high, 1);
    /* container ignores the info */
    rule.mode = FX_INTENSITY_CONTAINER;
    assert_float_equal(unit_of(&img16, &rule, &twelve, 2), 4095.0 / 65535.0, 1e-7);
    /* bits from the rule win over the info: 10 bits, 2048 -> clipped to 1 */
    rule.mode = FX_INTENSITY_BITS;
    rule.bits_stored = 10;
    assert_float_equal(unit_of(&img16, &rule, &twelve, 1), 1.0, 0);
    assert_float_equal(unit_of(&img16, &rule, NULL, 0), 0.0, 0);
    /* min-max over the image: (2048 - 0) / 4096 */
    fx_intensity_init(&rule);
    rule.mode = FX_INTENSITY_MINMAX;
    assert_float_equal(unit_of(&img16, &rule, NULL, 1), 0.5, 1e-7);
    /* window center 2048, width 1024: [1536, 2560] -> 2048 is 0.5, 0 -> 0, 4095 -> 1 */
    rule.mode = FX_INTENSITY_WINDOW;
    rule.window_center = 2048;
    rule.window_width = 1024;
    assert_float_equal(unit_of(&img16, &rule, NULL, 1), 0.5, 1e-7);
    assert_float_equal(unit_of(&img16, &rule, NULL, 0), 0.0, 0);
    assert_float_equal(unit_of(&img16, &rule, NULL, 2), 1.0, 0);
    /* 8-bit: / 255 whatever bits a rule asks for above 8 */
    uint8_t u8[2] = {51, 255};
    fx_image img8 = view(u8, 2, 1, 1, FX_PIXEL_U8);
    fx_intensity_init(&rule);
    rule.bits_stored = 12;
    assert_float_equal(unit_of(&img8, &rule, NULL, 0), 0.2, 1e-7);
    /* bad rules are refused with the value */
    rule.mode = FX_INTENSITY_WINDOW;
    rule.window_width = 0;
    assert_int_equal(fx__intensity_resolve(&rule, &img8, NULL, "test", &map), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "width 0"));
    int32_t mode = -1;
    assert_int_equal(fx_intensity_from_name("MinMax", &mode), FX_OK);
    assert_int_equal(mode, FX_INTENSITY_MINMAX);
    assert_int_equal(fx_intensity_from_name("log", &mode), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "auto, container, bits, minmax, window"));
}

/* The display uses the same rule: 12-bit 2048 of 4095 -> round(0.50012 * 255) = 128. */
static void test_display_uses_the_rule(void **state)
{
    (void)state;
    uint16_t u16[2] = {2048, 4095};
    fx_image img = view(u16, 2, 1, 1, FX_PIXEL_U16);
    fx_intensity rule;
    fx_intensity_init(&rule);
    fx_image_info info = {.struct_size = sizeof info, .bits_stored = 12};
    fx_image rgb = {0};
    assert_int_equal(fx_image_to_rgb8_intensity(&img, &rule, &info, &rgb), FX_OK);
    const uint8_t *p = rgb.data;
    assert_int_equal(p[0], 128);
    assert_int_equal(p[3], 255);
    fx_image_free(&rgb);
    /* container: 2048 / 65535 * 255 = 7.97 -> 8 */
    rule.mode = FX_INTENSITY_CONTAINER;
    assert_int_equal(fx_image_to_rgb8_intensity(&img, &rule, &info, &rgb), FX_OK);
    assert_int_equal(((const uint8_t *)rgb.data)[0], 8);
    fx_image_free(&rgb);
}

/* ---- sBIT ------------------------------------------------------------------ */

static void write_png16(const char *path, const uint16_t *v, uint32_t n, int sbit)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, f);
    png_set_IHDR(png, info, n, 1, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (sbit) {
        png_color_8 bits = {.gray = (png_byte)sbit};
        png_set_sBIT(png, info, &bits);
    }
    png_write_info(png, info);
    uint8_t row[64];
    for (uint32_t i = 0; i < n; i++) {
        row[2 * i] = (uint8_t)(v[i] >> 8);
        row[2 * i + 1] = (uint8_t)v[i];
    }
    png_write_row(png, row);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

static fx_image_info load_info(const char *path)
{
    fx_load_options o;
    fx_load_options_init(&o);
    fx_image_info info = {.struct_size = sizeof info};
    o.info = &info;
    fx_image img = {0};
    assert_int_equal(fx_image_load(path, &o, &img), FX_OK);
    fx_image_free(&img);
    return info;
}

static void test_png_sbit(void **state)
{
    (void)state;
    char path[] = "/tmp/fx_sbit_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    /* 12-bit values written unscaled with sBIT 12: 12 bits stored */
    uint16_t unscaled[3] = {0, 2000, 4095};
    write_png16(path, unscaled, 3, 12);
    fx_image_info info = load_info(path);
    assert_int_equal(info.significant_bits, 12);
    assert_int_equal(info.bits_stored, 12);
    assert_int_equal(info.format, FX_FORMAT_PNG);
    /* scaled to 16 bits as the PNG standard says (v << 4): the container */
    uint16_t scaled[3] = {0, 2000 << 4, 4095 << 4};
    write_png16(path, scaled, 3, 12);
    info = load_info(path);
    assert_int_equal(info.significant_bits, 12);
    assert_int_equal(info.bits_stored, 16);
    /* no sBIT */
    write_png16(path, unscaled, 3, 0);
    info = load_info(path);
    assert_int_equal(info.significant_bits, 0);
    assert_int_equal(info.bits_stored, 16);
    /* an older, smaller info struct gets only what fits */
    fx_load_options o;
    fx_load_options_init(&o);
    fx_image_info small = {.struct_size = 8, .significant_bits = 77};
    o.info = &small;
    fx_image img = {0};
    assert_int_equal(fx_image_load(path, &o, &img), FX_OK);
    assert_int_equal(small.bits_stored, 16);
    assert_int_equal(small.significant_bits, 77);
    fx_image_free(&img);
    unlink(path);
}

/* ---- Resampling and resize modes against torch ------------------------------- */

static int setup_torch(void **state)
{
    return reference_file_load(TORCH_CASES, state);
}

static void test_against_torch(void **state)
{
    const reference_file *ref = *state;
    size_t pos = 0;
    assert_memory_equal(take_bytes(ref, &pos, 4), "FXAA", 4);
    assert_int_equal(take_u32(ref, &pos), 1);
    uint32_t count = take_u32(ref, &pos);
    assert_true(count >= 10);
    for (uint32_t k = 0; k < count; k++) {
        uint32_t kind = take_u32(ref, &pos), sw = take_u32(ref, &pos), sh = take_u32(ref, &pos);
        uint32_t dw = take_u32(ref, &pos), dh = take_u32(ref, &pos), c = take_u32(ref, &pos);
        uint32_t size = take_u32(ref, &pos);
        size_t src_n = (size_t)sw * sh * c, dst_n = (size_t)dw * dh * c;
        float *src = malloc(src_n * sizeof(float)), *want = malloc(dst_n * sizeof(float));
        float *got = malloc(dst_n * sizeof(float));
        assert_non_null(src);
        assert_non_null(want);
        assert_non_null(got);
        memcpy(src, take_bytes(ref, &pos, src_n * 4), src_n * 4);
        memcpy(want, take_bytes(ref, &pos, dst_n * 4), dst_n * 4);
        if (kind == 0) {
            assert_int_equal(fx__resample_antialias(src, sw, sh, c, got, dw, dh), FX_OK);
        } else {
            /* Resize(size) + CenterCrop through the engine's preprocessing,
             * mean 0 and std 1, NCHW back to HWC. */
            fx_image img = view(src, sw, sh, c, FX_PIXEL_F32);
            fx__geometry g;
            fx__unit_map map;
            assert_int_equal(fx__geometry_plan(FX_RESIZE_SHORTER_SIDE_CROP, size, sw, sh, dw, dh, &g), FX_OK);
            assert_int_equal(fx__intensity_resolve(NULL, &img, NULL, "test", &map), FX_OK);
            const float zero[3] = {0, 0, 0}, one[3] = {1, 1, 1};
            float *nchw = malloc(dst_n * sizeof(float));
            assert_non_null(nchw);
            assert_int_equal(fx__preprocess_image(&img, &map, &g, c, zero, one, nchw), FX_OK);
            for (size_t i = 0; i < (size_t)dw * dh; i++)
                for (uint32_t ch = 0; ch < c; ch++)
                    got[i * c + ch] = nchw[ch * (size_t)dw * dh + i];
            free(nchw);
        }
        double worst = 0;
        for (size_t i = 0; i < dst_n; i++)
            worst = fmax(worst, fabs((double)got[i] - want[i]));
        if (worst > 1e-4)
            fail_msg("case %u (kind %u, %ux%u -> %ux%u, %u channels, size %u): max diff %g > 1e-4", k, kind, sw, sh, dw,
                     dh, c, size, worst);
        free(src);
        free(want);
        free(got);
    }
    assert_int_equal(pos, ref->size);
}

/* ---- Geometry by hand ----------------------------------------------------------- */

/* 300x200 -> Resize(256) = 384x256 -> CenterCrop 224: offsets -80, -16;
 * centres (x + 0.5) * 1.28 - 80 in [0, 224): x 62..236; y 12..186. */
static void test_crop_seen_region(void **state)
{
    (void)state;
    fx__geometry g;
    assert_int_equal(fx__geometry_plan(FX_RESIZE_SHORTER_SIDE_CROP, 256, 300, 200, 224, 224, &g), FX_OK);
    assert_int_equal(g.resized_w, 384);
    assert_int_equal(g.resized_h, 256);
    assert_int_equal(g.offset_x, -80);
    assert_int_equal(g.offset_y, -16);
    assert_int_equal(g.seen_x, 62);
    assert_int_equal(g.seen_w, 175);
    assert_int_equal(g.seen_y, 12);
    assert_int_equal(g.seen_h, 175);
    /* A constant map of 1s: 1 inside the seen region (normalized flat: 0),
     * raw values 1 inside and 0 outside. */
    float lowres[4] = {1, 1, 1, 1};
    fx_image out = {0};
    assert_int_equal(fx__map_to_image(lowres, 2, 2, &g, 300, 200, 0, &out), FX_OK);
    assert_float_equal(((float *)fx__row(&out, 12))[62], 1.0f, 0);
    assert_float_equal(((float *)fx__row(&out, 12))[61], 0.0f, 0);
    assert_float_equal(((float *)fx__row(&out, 11))[62], 0.0f, 0);
    assert_float_equal(((float *)fx__row(&out, 186))[236], 1.0f, 0);
    assert_float_equal(((float *)fx__row(&out, 187))[236], 0.0f, 0);
    fx_image_free(&out);
}

/* 8x4 letterboxed into 4x4: resized 4x2 at offset y 1. Image row y lands at
 * input (y + 0.5) / 2 + 1 = 1.25, 1.75, 2.25, 2.75; on a 4x4 map whose value
 * is its row index the samples are those minus 0.5: the padding rows 0 and 3
 * of the map only enter by interpolation, and no image row is lost. */
static void test_letterbox_by_hand(void **state)
{
    (void)state;
    fx__geometry g;
    assert_int_equal(fx__geometry_plan(FX_RESIZE_LETTERBOX, 0, 8, 4, 4, 4, &g), FX_OK);
    assert_int_equal(g.resized_w, 4);
    assert_int_equal(g.resized_h, 2);
    assert_int_equal(g.offset_x, 0);
    assert_int_equal(g.offset_y, 1);
    assert_int_equal(g.seen_w, 8);
    assert_int_equal(g.seen_h, 4);
    float lowres[16];
    for (int i = 0; i < 16; i++)
        lowres[i] = (float)(i / 4);
    fx_image out = {0};
    assert_int_equal(fx__map_to_image(lowres, 4, 4, &g, 8, 4, 0, &out), FX_OK);
    const float want[4] = {0.75f, 1.25f, 1.75f, 2.25f};
    for (uint32_t y = 0; y < 4; y++)
        for (uint32_t x = 0; x < 8; x++)
            assert_float_equal(((float *)fx__row(&out, y))[x], want[y], 1e-6);
    fx_image_free(&out);
    /* Normalized: min-max over the image, 0 .. 1 */
    assert_int_equal(fx__map_to_image(lowres, 4, 4, &g, 8, 4, 1, &out), FX_OK);
    assert_float_equal(((float *)fx__row(&out, 0))[0], 0.0f, 0);
    assert_float_equal(((float *)fx__row(&out, 3))[7], 1.0f, 0);
    assert_float_equal(((float *)fx__row(&out, 1))[3], 1.0f / 3.0f, 1e-6);
    fx_image_free(&out);
    /* The input: the padding rows are black (0) before normalization:
     * (0 - 0.5) / 0.5 = -1. */
    uint8_t px[32];
    memset(px, 255, sizeof px);
    fx_image img = view(px, 8, 4, 1, FX_PIXEL_U8);
    fx__unit_map map;
    assert_int_equal(fx__intensity_resolve(NULL, &img, NULL, "test", &map), FX_OK);
    float input[16];
    const float half[1] = {0.5f};
    assert_int_equal(fx__preprocess_image(&img, &map, &g, 1, half, half, input), FX_OK);
    for (int i = 0; i < 16; i++)
        assert_float_equal(input[i], i < 4 || i >= 12 ? -1.0f : 1.0f, 1e-6);
}

static void test_resize_mode_names(void **state)
{
    (void)state;
    int32_t mode = -1;
    assert_int_equal(fx_resize_mode_from_name("Shorter-Side-Crop", &mode), FX_OK);
    assert_int_equal(mode, FX_RESIZE_SHORTER_SIDE_CROP);
    assert_string_equal(fx_resize_mode_name(FX_RESIZE_LETTERBOX), "letterbox");
    assert_int_equal(fx_resize_mode_from_name("crop", &mode), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "shorter-side-crop"));
    fx__geometry g;
    assert_int_equal(fx__geometry_plan(42, 0, 10, 10, 4, 4, &g), FX_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intensity_by_hand),
        cmocka_unit_test(test_display_uses_the_rule),
        cmocka_unit_test(test_png_sbit),
        cmocka_unit_test_setup_teardown(test_against_torch, setup_torch, reference_file_free),
        cmocka_unit_test(test_crop_seen_region),
        cmocka_unit_test(test_letterbox_by_hand),
        cmocka_unit_test(test_resize_mode_names),
    };
    return cmocka_run_group_tests_name("preprocess", tests, NULL, NULL);
}
