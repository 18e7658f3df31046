/* fx_resize_bilinear against hand computations and against OpenCV's
 * cv::resize(INTER_LINEAR) (reference data written at build time by
 * tests/tools/make_opencv_reference.py). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fx_internal.h"
#include "reference_file.h"

#define RESIZE_CASES FX_TEST_BUILD_DIR "/reference/resize_cases.bin"

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

static fx_image target(uint32_t width, uint32_t height)
{
    fx_image out = {0};
    out.width = width;
    out.height = height;
    return out;
}

static float f32_at(const fx_image *img, uint32_t x, uint32_t y, uint32_t c)
{
    return ((const float *)fx__row(img, y))[(size_t)x * img->channels + c];
}

/* ---- Hand-computed cases ------------------------------------------------ */

/* 2x2 -> 4x4: output centres sit at -0.25, 0.25, 0.75, 1.25 in source
 * coordinates; the outer ones clamp to the border pixels, the inner ones get
 * weights 1/4 and 3/4. Columns give 0, 2.5, 7.5, 10; rows add 0, 5, 15, 20. */
static void test_2x2_to_4x4_exact(void **state)
{
    (void)state;
    float src_px[4] = {0, 10, 20, 30};
    fx_image src = view(src_px, 2, 2, 1, FX_PIXEL_F32);
    fx_image out = target(4, 4);
    assert_int_equal(fx_resize_bilinear(&src, &out), FX_OK);
    assert_int_equal(out.channels, 1);
    assert_int_equal(out.pixel_type, FX_PIXEL_F32);
    assert_int_equal(out.stride, 16);
    const float want[4][4] = {
        {0, 2.5f, 7.5f, 10},
        {5, 7.5f, 12.5f, 15},
        {15, 17.5f, 22.5f, 25},
        {20, 22.5f, 27.5f, 30},
    };
    for (uint32_t y = 0; y < 4; y++)
        for (uint32_t x = 0; x < 4; x++)
            assert_float_equal(f32_at(&out, x, y, 0), want[y][x], 1e-6);
    fx_image_free(&out);
}

/* Halving averages pairs (centres at 0.5 and 2.5); a third keeps the middle
 * pixel (centre exactly at 1). */
static void test_downscale_by_hand(void **state)
{
    (void)state;
    float row[4] = {1, 3, 5, 9};
    fx_image src = view(row, 4, 1, 1, FX_PIXEL_F32);
    fx_image out = target(2, 1);
    assert_int_equal(fx_resize_bilinear(&src, &out), FX_OK);
    assert_float_equal(f32_at(&out, 0, 0, 0), 2.0f, 1e-6);
    assert_float_equal(f32_at(&out, 1, 0, 0), 7.0f, 1e-6);
    fx_image_free(&out);

    float three[3] = {1, 5, 9};
    src = view(three, 1, 3, 1, FX_PIXEL_F32);
    out = target(1, 1);
    assert_int_equal(fx_resize_bilinear(&src, &out), FX_OK);
    assert_float_equal(f32_at(&out, 0, 0, 0), 5.0f, 1e-6);
    fx_image_free(&out);
}

/* 2 -> 4 on integers gives 0, 0.5, 1.5, 2 times the step: halves round up. */
static void test_integer_rounding(void **state)
{
    (void)state;
    uint8_t u8[2] = {0, 2};
    fx_image src = view(u8, 2, 1, 1, FX_PIXEL_U8);
    fx_image out = target(4, 1);
    assert_int_equal(fx_resize_bilinear(&src, &out), FX_OK);
    const uint8_t want8[4] = {0, 1, 2, 2};
    assert_memory_equal(out.data, want8, 4);
    fx_image_free(&out);

    /* Near the top of the range: 65534.75 -> 65535, 65534.25 -> 65534. */
    uint16_t u16[2] = {65535, 65534};
    src = view(u16, 2, 1, 1, FX_PIXEL_U16);
    out = target(4, 1);
    assert_int_equal(fx_resize_bilinear(&src, &out), FX_OK);
    const uint16_t want16[4] = {65535, 65535, 65534, 65534};
    assert_memory_equal(out.data, want16, sizeof want16);
    fx_image_free(&out);

    uint8_t top[2] = {255, 255};
    src = view(top, 2, 1, 1, FX_PIXEL_U8);
    out = target(7, 3);
    assert_int_equal(fx_resize_bilinear(&src, &out), FX_OK);
    for (uint32_t y = 0; y < 3; y++)
        for (uint32_t x = 0; x < 7; x++)
            assert_int_equal(fx__row(&out, y)[x], 255);
    fx_image_free(&out);
}

/* Channels are interpolated independently: RGBA 2x1 -> 4x1. */
static void test_channels_are_independent(void **state)
{
    (void)state;
    uint8_t px[8] = {0, 100, 200, 255, 40, 100, 0, 55};
    fx_image src = view(px, 2, 1, 4, FX_PIXEL_U8);
    fx_image out = target(4, 1);
    assert_int_equal(fx_resize_bilinear(&src, &out), FX_OK);
    assert_int_equal(out.channels, 4);
    const uint8_t want[16] = {
        0, 100, 200, 255, /* x = -0.25 clamps to pixel 0 */
        10, 100, 150, 205, /* 3/4 * p0 + 1/4 * p1 */
        30, 100, 50, 105, /* 1/4 * p0 + 3/4 * p1 */
        40, 100, 0, 55,
    };
    assert_memory_equal(out.data, want, sizeof want);
    fx_image_free(&out);
}

/* Same size is an exact copy for every type. */
static void test_identity_is_exact(void **state)
{
    (void)state;
    uint16_t px[12];
    for (int i = 0; i < 12; i++)
        px[i] = (uint16_t)(i * 5000 + 7);
    fx_image src = view(px, 2, 2, 3, FX_PIXEL_U16);
    fx_image out = target(2, 2);
    assert_int_equal(fx_resize_bilinear(&src, &out), FX_OK);
    assert_memory_equal(out.data, px, sizeof px);
    fx_image_free(&out);

    float f[6] = {-3.25f, 0.1f, 1e-7f, 7.5f, 1e6f, 0.333f};
    src = view(f, 3, 2, 1, FX_PIXEL_F32);
    out = target(3, 2);
    assert_int_equal(fx_resize_bilinear(&src, &out), FX_OK);
    assert_memory_equal(out.data, f, sizeof f);
    fx_image_free(&out);
}

/* Padded strides on both sides: the padding is neither read as pixels nor
 * written. Source 2x2 gray U8 with 3 padding bytes per row; output into a
 * caller buffer with 5 padding bytes per row. */
static void test_strides_and_caller_buffer(void **state)
{
    (void)state;
    uint8_t src_px[2 * 5] = {10, 50, 0xEE, 0xEE, 0xEE, 90, 130, 0xEE, 0xEE, 0xEE};
    fx_image src = {.data = src_px, .stride = 5, .width = 2, .height = 2, .channels = 1, .pixel_type = FX_PIXEL_U8};
    uint8_t dst_px[4 * 9];
    memset(dst_px, 0xAB, sizeof dst_px);
    fx_image out = {.data = dst_px, .stride = 9, .width = 4, .height = 4, .channels = 1, .pixel_type = FX_PIXEL_U8};
    assert_int_equal(fx_resize_bilinear(&src, &out), FX_OK);
    assert_ptr_equal(out.data, dst_px);
    /* Columns: 10, 20, 40, 50 (top) and 90, 100, 120, 130 (bottom); rows mix
     * them 1:0, 3:1, 1:3, 0:1. */
    const uint8_t want[4][4] = {
        {10, 20, 40, 50},
        {30, 40, 60, 70},
        {70, 80, 100, 110},
        {90, 100, 120, 130},
    };
    for (int y = 0; y < 4; y++) {
        assert_memory_equal(dst_px + y * 9, want[y], 4);
        for (int pad = 4; pad < 9; pad++)
            assert_int_equal(dst_px[y * 9 + pad], 0xAB);
    }
}

/* Straightforward per-pixel formula in double, independent of the table and
 * row-cache machinery of lib/resize.c. */
static double naive_sample(const float *src, uint32_t sw, uint32_t sh, uint32_t dw, uint32_t dh, uint32_t x,
                           uint32_t y)
{
    double fx = (x + 0.5) * sw / dw - 0.5, fy = (y + 0.5) * sh / dh - 0.5;
    fx = fx < 0 ? 0 : (fx > sw - 1 ? sw - 1 : fx);
    fy = fy < 0 ? 0 : (fy > sh - 1 ? sh - 1 : fy);
    uint32_t x0 = (uint32_t)fx, y0 = (uint32_t)fy;
    uint32_t x1 = x0 + 1 < sw ? x0 + 1 : x0, y1 = y0 + 1 < sh ? y0 + 1 : y0;
    double wx = fx - x0, wy = fy - y0;
    double top = src[y0 * sw + x0] * (1 - wx) + src[y0 * sw + x1] * wx;
    double bottom = src[y1 * sw + x0] * (1 - wx) + src[y1 * sw + x1] * wx;
    return top * (1 - wy) + bottom * wy;
}

/* The heatmap use case, 224x224 -> 2048x2048, against the naive formula on
 * every 7th row; the time is printed for docs/performance.md. */
static void test_large_upsample(void **state)
{
    (void)state;
    const uint32_t sw = 224, sh = 224, dw = 2048, dh = 2048;
    float *src_px = malloc(sizeof(float) * sw * sh);
    assert_non_null(src_px);
    for (uint32_t i = 0; i < sw * sh; i++)
        src_px[i] = (float)((i * 2654435761u) % 1000u) / 999.0f;
    fx_image src = view(src_px, sw, sh, 1, FX_PIXEL_F32);
    fx_image out = target(dw, dh);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(fx_resize_bilinear(&src, &out), FX_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    print_message("# 224x224 -> 2048x2048 F32: %.1f ms\n", ms);
    double max_diff = 0;
    for (uint32_t y = 0; y < dh; y += 7)
        for (uint32_t x = 0; x < dw; x++) {
            double d = fabs(f32_at(&out, x, y, 0) - naive_sample(src_px, sw, sh, dw, dh, x, y));
            max_diff = d > max_diff ? d : max_diff;
        }
    print_message("# max |fxcam - naive formula| = %.3g\n", max_diff);
    assert_true(max_diff <= 1e-5);
    fx_image_free(&out);
    free(src_px);
}

/* ---- OpenCV reference --------------------------------------------------- */

static int load_reference(void **state)
{
    return reference_file_load(RESIZE_CASES, state);
}

static const char *type_label(int32_t pixel_type)
{
    return pixel_type == FX_PIXEL_U8 ? "U8" : pixel_type == FX_PIXEL_U16 ? "U16" : "F32";
}

static double sample_at(const void *data, int32_t pixel_type, size_t i)
{
    switch (pixel_type) {
    case FX_PIXEL_U8: return ((const uint8_t *)data)[i];
    case FX_PIXEL_U16: return ((const uint16_t *)data)[i];
    default: return ((const float *)data)[i];
    }
}

static double max_abs_diff(const fx_image *out, const void *want)
{
    double max_diff = 0;
    size_t row_samples = (size_t)out->width * out->channels;
    for (uint32_t y = 0; y < out->height; y++) {
        const void *row = fx__row(out, y);
        for (size_t i = 0; i < row_samples; i++) {
            double d = fabs(sample_at(row, out->pixel_type, i) -
                            sample_at(want, out->pixel_type, y * row_samples + i));
            max_diff = d > max_diff ? d : max_diff;
        }
    }
    return max_diff;
}

static void test_matches_opencv(void **state)
{
    const reference_file *ref = *state;
    size_t pos = 0;
    assert_memory_equal(take_bytes(ref, &pos, 4), "FXRS", 4);
    assert_int_equal(take_u32(ref, &pos), 1);
    uint32_t count = take_u32(ref, &pos);
    assert_true(count > 0); /* an empty reference file would make this test vacuous */
    int failures = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t sw = take_u32(ref, &pos), sh = take_u32(ref, &pos);
        uint32_t dw = take_u32(ref, &pos), dh = take_u32(ref, &pos);
        uint32_t channels = take_u32(ref, &pos);
        int32_t type = (int32_t)take_u32(ref, &pos);
        size_t sample = fx_pixel_size(type);
        assert_true(sample > 0);
        /* Copied so that every case's source is aligned for its type. */
        size_t src_bytes = (size_t)sw * sh * channels * sample;
        void *src_px = malloc(src_bytes);
        assert_non_null(src_px);
        memcpy(src_px, take_bytes(ref, &pos, src_bytes), src_bytes);
        size_t dst_bytes = (size_t)dw * dh * channels * sample;
        void *want = malloc(dst_bytes);
        assert_non_null(want);
        memcpy(want, take_bytes(ref, &pos, dst_bytes), dst_bytes);

        fx_image src = view(src_px, sw, sh, channels, type);
        fx_image out = target(dw, dh);
        assert_int_equal(fx_resize_bilinear(&src, &out), FX_OK);
        double diff = max_abs_diff(&out, want);
        double tolerance = type == FX_PIXEL_F32 ? 1e-4 : 1.0;
        int ok = diff <= tolerance;
        failures += !ok;
        print_message("# %s %s %ux%u -> %ux%u, %u ch: max |fxcam - OpenCV| = %.3g\n", ok ? "ok" : "FAIL",
                      type_label(type), sw, sh, dw, dh, channels, diff);
        fx_image_free(&out);
        free(src_px);
        free(want);
    }
    assert_int_equal(pos, ref->size);
    assert_int_equal(failures, 0);
}

/* ---- Bad input ---------------------------------------------------------- */

static void expect_error(const fx_image *src, fx_image *out, const char *fragment)
{
    fx_image before = out ? *out : (fx_image){0};
    fx_clear_error();
    assert_int_equal(fx_resize_bilinear(src, out), FX_ERR_INVALID_ARGUMENT);
    if (!strstr(fx_last_error(), fragment))
        fail_msg("message '%s' lacks '%s'", fx_last_error(), fragment);
    if (out)
        assert_memory_equal(out, &before, sizeof before); /* untouched on error */
}

static void test_rejects_bad_arguments(void **state)
{
    (void)state;
    float px[16] = {0};
    fx_image src = view(px, 2, 2, 1, FX_PIXEL_F32);
    fx_image out = target(3, 3);

    expect_error(NULL, &out, "src is NULL");
    expect_error(&src, NULL, "out is NULL");

    fx_image bad = src;
    bad.data = NULL;
    expect_error(&bad, &out, "data is NULL");
    bad = src;
    bad.width = 0;
    expect_error(&bad, &out, "size 0x2 is empty");
    bad = src;
    bad.channels = 5;
    expect_error(&bad, &out, "5 channels");
    bad = src;
    bad.pixel_type = 9;
    expect_error(&bad, &out, "unknown pixel type 9");
    bad = src;
    bad.stride = 4;
    expect_error(&bad, &out, "stride 4 is smaller than a row");

    fx_image empty = target(0, 3);
    expect_error(&src, &empty, "target size 0x3 is empty");
    empty = target(3, 0);
    expect_error(&src, &empty, "target size 3x0 is empty");

    /* Caller buffers must describe exactly what is produced. */
    float dst[64];
    fx_image given = {.data = dst, .stride = 12, .width = 3, .height = 3, .channels = 3, .pixel_type = FX_PIXEL_F32};
    given.stride = 36;
    expect_error(&src, &given, "3 channels, FX_PIXEL_F32; this call produces 3x3, 1 channels, FX_PIXEL_F32");
    given.channels = 1;
    given.pixel_type = FX_PIXEL_U8;
    given.stride = 3;
    expect_error(&src, &given, "FX_PIXEL_U8; this call produces 3x3, 1 channels, FX_PIXEL_F32");
    given.pixel_type = FX_PIXEL_F32;
    given.stride = 8;
    expect_error(&src, &given, "stride 8 is smaller than a row");

    /* In place (or any overlap) cannot work. */
    fx_image alias = {.data = px + 2, .stride = 8, .width = 2, .height = 2, .channels = 1, .pixel_type = FX_PIXEL_F32};
    expect_error(&src, &alias, "overlaps");
}

/* A target that cannot be allocated is refused, not crashed on. */
static void test_rejects_huge_target(void **state)
{
    (void)state;
    float px[1] = {0};
    fx_image src = view(px, 1, 1, 1, FX_PIXEL_F32);
    fx_image out = target(100000, 100000);
    assert_int_equal(fx_resize_bilinear(&src, &out), FX_ERR_LIMIT);
    assert_non_null(strstr(fx_last_error(), "2 GiB"));
    assert_null(out.data);
    assert_int_equal(out.width, 100000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_2x2_to_4x4_exact),
        cmocka_unit_test(test_downscale_by_hand),
        cmocka_unit_test(test_integer_rounding),
        cmocka_unit_test(test_channels_are_independent),
        cmocka_unit_test(test_identity_is_exact),
        cmocka_unit_test(test_strides_and_caller_buffer),
        cmocka_unit_test(test_large_upsample),
        cmocka_unit_test_setup_teardown(test_matches_opencv, load_reference, reference_file_free),
        cmocka_unit_test(test_rejects_bad_arguments),
        cmocka_unit_test(test_rejects_huge_target),
    };
    return cmocka_run_group_tests_name("resize", tests, NULL, NULL);
}
