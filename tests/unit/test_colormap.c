/* Colormap names, tables and coloring, against cv2.applyColorMap (reference
 * data written at build time by tests/tools/make_opencv_reference.py) and
 * against the indexing rule of fxcam.h worked out by hand. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fx_internal.h"
#include "reference_file.h"

#define COLORMAP_CASES FX_TEST_BUILD_DIR "/reference/colormap_cases.bin"

/* OpenCV 4.6's COLORMAP_* numbers (modules/imgproc/include/opencv2/imgproc.hpp,
 * enum ColormapTypes) with the constants' suffixes, copied from OpenCV, plus
 * fxcam's gray: the ids and names fxcam must have, in enumeration order. */
static const struct {
    int32_t id;
    const char *name;
} all_maps[] = {
    {0, "autumn"},   {1, "bone"},     {2, "jet"},       {3, "winter"},   {4, "rainbow"},
    {5, "ocean"},    {6, "summer"},   {7, "spring"},    {8, "cool"},     {9, "hsv"},
    {10, "pink"},    {11, "hot"},     {12, "parula"},   {13, "magma"},   {14, "inferno"},
    {15, "plasma"},  {16, "viridis"}, {17, "cividis"},  {18, "twilight"}, {19, "twilight_shifted"},
    {20, "turbo"},   {21, "deepgreen"}, {100, "gray"},
};
enum { MAP_COUNT = sizeof all_maps / sizeof all_maps[0] };

static fx_image view(void *data, uint32_t width, uint32_t height, int32_t pixel_type)
{
    fx_image img = {.data = data,
                    .stride = fx__row_bytes(width, 1, pixel_type),
                    .width = width,
                    .height = height,
                    .channels = 1,
                    .pixel_type = pixel_type};
    return img;
}

static void expect_message(const char *fragment)
{
    if (!strstr(fx_last_error(), fragment))
        fail_msg("message '%s' lacks '%s'", fx_last_error(), fragment);
}

/* ---- Names -------------------------------------------------------------- */

static void test_values_are_pinned(void **state)
{
    (void)state;
    /* The numbers of OpenCV 4.6's imgproc.hpp. */
    assert_int_equal(FX_COLORMAP_AUTUMN, 0);
    assert_int_equal(FX_COLORMAP_BONE, 1);
    assert_int_equal(FX_COLORMAP_JET, 2);
    assert_int_equal(FX_COLORMAP_WINTER, 3);
    assert_int_equal(FX_COLORMAP_RAINBOW, 4);
    assert_int_equal(FX_COLORMAP_OCEAN, 5);
    assert_int_equal(FX_COLORMAP_SUMMER, 6);
    assert_int_equal(FX_COLORMAP_SPRING, 7);
    assert_int_equal(FX_COLORMAP_COOL, 8);
    assert_int_equal(FX_COLORMAP_HSV, 9);
    assert_int_equal(FX_COLORMAP_PINK, 10);
    assert_int_equal(FX_COLORMAP_HOT, 11);
    assert_int_equal(FX_COLORMAP_PARULA, 12);
    assert_int_equal(FX_COLORMAP_MAGMA, 13);
    assert_int_equal(FX_COLORMAP_INFERNO, 14);
    assert_int_equal(FX_COLORMAP_PLASMA, 15);
    assert_int_equal(FX_COLORMAP_VIRIDIS, 16);
    assert_int_equal(FX_COLORMAP_CIVIDIS, 17);
    assert_int_equal(FX_COLORMAP_TWILIGHT, 18);
    assert_int_equal(FX_COLORMAP_TWILIGHT_SHIFTED, 19);
    assert_int_equal(FX_COLORMAP_TURBO, 20);
    assert_int_equal(FX_COLORMAP_DEEPGREEN, 21);
    assert_int_equal(FX_COLORMAP_GRAY, 100); /* fxcam's own, outside OpenCV's range */
}

static void test_enumeration(void **state)
{
    (void)state;
    assert_int_equal(fx_colormap_count(), MAP_COUNT);
    for (uint32_t i = 0; i < MAP_COUNT; i++)
        assert_int_equal(fx_colormap_at(i), all_maps[i].id);
    assert_int_equal(fx_colormap_at(MAP_COUNT), -1);
    assert_int_equal(fx_colormap_at(UINT32_MAX), -1);
}

static void test_names_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < MAP_COUNT; i++) {
        assert_string_equal(fx_colormap_name(all_maps[i].id), all_maps[i].name);
        int32_t parsed = -1;
        assert_int_equal(fx_colormap_from_name(all_maps[i].name, &parsed), FX_OK);
        assert_int_equal(parsed, all_maps[i].id);
    }
    const int32_t unknown[] = {-1, 22, 23, 99, 101, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        assert_null(fx_colormap_name(unknown[i]));
}

static void test_from_name_ignores_case(void **state)
{
    (void)state;
    int32_t parsed = -1;
    assert_int_equal(fx_colormap_from_name("JET", &parsed), FX_OK);
    assert_int_equal(parsed, FX_COLORMAP_JET);
    assert_int_equal(fx_colormap_from_name("ViRiDiS", &parsed), FX_OK);
    assert_int_equal(parsed, FX_COLORMAP_VIRIDIS);
    assert_int_equal(fx_colormap_from_name("Twilight_SHIFTED", &parsed), FX_OK);
    assert_int_equal(parsed, 19);
    assert_int_equal(fx_colormap_from_name("DEEPGREEN", &parsed), FX_OK);
    assert_int_equal(parsed, 21);
    assert_int_equal(fx_colormap_from_name("HOT", &parsed), FX_OK);
    assert_int_equal(parsed, 11);
    assert_int_equal(fx_colormap_from_name("Gray", &parsed), FX_OK);
    assert_int_equal(parsed, FX_COLORMAP_GRAY);
}

static void test_from_name_rejects_unknown(void **state)
{
    (void)state;
    const char *bad[] = {"rainbo", "", "jet ", "je", "jets", "grey", "infern0", "twilight-shifted", "COLORMAP_JET"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t parsed = 42;
        fx_clear_error();
        assert_int_equal(fx_colormap_from_name(bad[i], &parsed), FX_ERR_INVALID_ARGUMENT);
        assert_int_equal(parsed, 42); /* untouched */
        char quoted[32];
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        expect_message(quoted);
        for (int k = 0; k < MAP_COUNT; k++)
            expect_message(all_maps[k].name);
        expect_message("jet (2)");
        expect_message("gray (100)");
    }
    int32_t parsed = 42;
    assert_int_equal(fx_colormap_from_name(NULL, &parsed), FX_ERR_INVALID_ARGUMENT);
    expect_message("name is NULL");
    expect_message("magma");
    assert_int_equal(fx_colormap_from_name("jet", NULL), FX_ERR_INVALID_ARGUMENT);
    expect_message("colormap is NULL");

    /* Very long names are cut in the message, not overflowed. */
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(fx_colormap_from_name(longname, &parsed), FX_ERR_INVALID_ARGUMENT);
    expect_message("xxx...'");
    expect_message("gray");
}

/* ---- Tables ------------------------------------------------------------- */

static void test_gray_is_identity(void **state)
{
    (void)state;
    uint8_t rgb[768];
    assert_int_equal(fx_colormap_table(FX_COLORMAP_GRAY, rgb), FX_OK);
    for (int i = 0; i < 256; i++) {
        assert_int_equal(rgb[3 * i], i);
        assert_int_equal(rgb[3 * i + 1], i);
        assert_int_equal(rgb[3 * i + 2], i);
    }
}

/* Properties of the published maps that hold whatever the exact numbers: jet
 * runs dark blue -> dark red, hot black -> white, bone gray-ish dark -> white,
 * viridis dark purple -> yellow. They catch a BGR/RGB swap or a shifted table. */
static void test_table_endpoints(void **state)
{
    (void)state;
    uint8_t rgb[768];
    assert_int_equal(fx_colormap_table(FX_COLORMAP_JET, rgb), FX_OK);
    assert_true(rgb[2] > 100 && rgb[0] == 0 && rgb[1] == 0);             /* blue */
    assert_true(rgb[765] > 100 && rgb[766] == 0 && rgb[767] == 0);       /* red */
    assert_int_equal(fx_colormap_table(FX_COLORMAP_HOT, rgb), FX_OK);
    assert_true(rgb[0] == 0 && rgb[1] == 0 && rgb[2] == 0);
    assert_true(rgb[765] == 255 && rgb[766] == 255 && rgb[767] == 255);
    assert_int_equal(fx_colormap_table(FX_COLORMAP_VIRIDIS, rgb), FX_OK);
    assert_true(rgb[2] > rgb[1] && rgb[0] > rgb[1]);                     /* purple */
    assert_true(rgb[765] > 200 && rgb[766] > 200 && rgb[767] < 100);     /* yellow */
    assert_int_equal(fx_colormap_table(FX_COLORMAP_BONE, rgb), FX_OK);
    assert_true(rgb[765] == 255 && rgb[766] == 255 && rgb[767] == 255);
    assert_true(rgb[3 * 64 + 2] > rgb[3 * 64]);                         /* blue tint */
}

static void test_table_rejects_bad_arguments(void **state)
{
    (void)state;
    uint8_t rgb[768];
    memset(rgb, 0x5A, sizeof rgb);
    assert_int_equal(fx_colormap_table(-1, rgb), FX_ERR_INVALID_ARGUMENT);
    expect_message("fx_colormap_table: unknown colormap -1");
    expect_message("autumn (0), bone (1), jet (2)");
    expect_message("deepgreen (21), gray (100)");
    assert_int_equal(fx_colormap_table(22, rgb), FX_ERR_INVALID_ARGUMENT);
    expect_message("unknown colormap 22");
    assert_int_equal(fx_colormap_table(99, rgb), FX_ERR_INVALID_ARGUMENT);
    expect_message("unknown colormap 99");
    assert_int_equal(rgb[0], 0x5A);
    assert_int_equal(fx_colormap_table(FX_COLORMAP_JET, NULL), FX_ERR_INVALID_ARGUMENT);
    expect_message("rgb is NULL");
}

/* ---- Coloring ----------------------------------------------------------- */

/* Index = v * 255 rounded to nearest (halves up), v clamped to [0, 1], NaN ->
 * 0, the product taken exactly. With the gray map the output is the index
 * itself. The values near 0.5 / 255 and 254.5 / 255 were worked out with
 * numpy in float64 from the exact float32 values. */
static void test_float_rounding_rule(void **state)
{
    (void)state;
    const float values[] = {0.0f, 1.0f, 0.5f, -0.5f, 2.0f, NAN, INFINITY, -INFINITY,
                            0.0019f,   /* 0.4845 -> 0 */
                            0.0021f,   /* 0.5355 -> 1 */
                            0.25f,     /* 63.75 -> 64 */
                            0.998f,    /* 254.49 -> 254 */
                            0.9999f,   /* 254.97 -> 255 */
                            -0.0f, 1e-30f,
                            0.0019607842f, /* 0.49999997 -> 0 (float arithmetic said 1) */
                            0.0019607844f, /* 0.50000003 -> 1 */
                            0.9980392f,    /* 254.49999 -> 254 */
                            0.50196081f,   /* 128.0 -> 128 */
                            0.5f / 255.0f * 3.0f};
    const uint8_t want[] = {0, 255, 128, 0, 255, 0, 255, 0, 0, 1, 64, 254, 255, 0, 0, 0, 1, 254, 128, 2};
    enum { n = sizeof values / sizeof values[0] };
    _Static_assert(sizeof want == n, "one expected index per value");
    float px[n];
    memcpy(px, values, sizeof px);
    fx_image map = view(px, n, 1, FX_PIXEL_F32);
    fx_image out = {0};
    assert_int_equal(fx_colormap_apply(&map, FX_COLORMAP_GRAY, &out), FX_OK);
    assert_int_equal(out.width, n);
    assert_int_equal(out.height, 1);
    assert_int_equal(out.channels, 3);
    assert_int_equal(out.pixel_type, FX_PIXEL_U8);
    const uint8_t *rgb = out.data;
    for (int i = 0; i < n; i++) {
        assert_int_equal(rgb[3 * i], want[i]);
        assert_int_equal(rgb[3 * i + 1], want[i]);
        assert_int_equal(rgb[3 * i + 2], want[i]);
    }
    fx_image_free(&out);

    /* Same indexes through a colored map. */
    uint8_t table[768];
    assert_int_equal(fx_colormap_table(FX_COLORMAP_TURBO, table), FX_OK);
    assert_int_equal(fx_colormap_apply(&map, FX_COLORMAP_TURBO, &out), FX_OK);
    for (int i = 0; i < n; i++)
        assert_memory_equal((uint8_t *)out.data + 3 * i, table + 3 * want[i], 3);
    fx_image_free(&out);
}

/* k / 255 as float lands on index k for every k, so the float and the U8 paths
 * agree on quantized maps. */
static void test_float_matches_u8_on_levels(void **state)
{
    (void)state;
    float f[256];
    uint8_t u[256];
    for (int k = 0; k < 256; k++) {
        f[k] = (float)k / 255.0f;
        u[k] = (uint8_t)k;
    }
    fx_image fmap = view(f, 16, 16, FX_PIXEL_F32);
    fx_image umap = view(u, 16, 16, FX_PIXEL_U8);
    for (uint32_t i = 0; i < fx_colormap_count(); i++) {
        int32_t c = fx_colormap_at(i);
        fx_image a = {0}, b = {0};
        assert_int_equal(fx_colormap_apply(&fmap, c, &a), FX_OK);
        assert_int_equal(fx_colormap_apply(&umap, c, &b), FX_OK);
        assert_memory_equal(a.data, b.data, 256 * 3);
        fx_image_free(&a);
        fx_image_free(&b);
    }
}

/* Padded strides on both sides; padding is left alone. */
static void test_strides_and_caller_buffer(void **state)
{
    (void)state;
    uint8_t src[2 * 4] = {0, 255, 0xEE, 0xEE, 128, 1, 0xEE, 0xEE};
    fx_image map = {.data = src, .stride = 4, .width = 2, .height = 2, .channels = 1, .pixel_type = FX_PIXEL_U8};
    uint8_t dst[2 * 10];
    memset(dst, 0xAB, sizeof dst);
    fx_image out = {.data = dst, .stride = 10, .width = 2, .height = 2, .channels = 3, .pixel_type = FX_PIXEL_U8};
    assert_int_equal(fx_colormap_apply(&map, FX_COLORMAP_GRAY, &out), FX_OK);
    const uint8_t want[2][6] = {{0, 0, 0, 255, 255, 255}, {128, 128, 128, 1, 1, 1}};
    for (int y = 0; y < 2; y++) {
        assert_memory_equal(dst + 10 * y, want[y], 6);
        for (int pad = 6; pad < 10; pad++)
            assert_int_equal(dst[10 * y + pad], 0xAB);
    }
}

/* ---- OpenCV reference --------------------------------------------------- */

static int load_reference(void **state)
{
    return reference_file_load(COLORMAP_CASES, state);
}

/* Every COLORMAP_* constant of the installed OpenCV: fxcam parses its name to
 * OpenCV's number, and colors a U8 image exactly as cv2.applyColorMap. */
static void test_matches_opencv(void **state)
{
    const reference_file *ref = *state;
    size_t pos = 0;
    assert_memory_equal(take_bytes(ref, &pos, 4), "FXCM", 4);
    assert_int_equal(take_u32(ref, &pos), 2);
    uint32_t width = take_u32(ref, &pos), height = take_u32(ref, &pos);
    uint32_t count = take_u32(ref, &pos);
    /* Every map but gray, which OpenCV does not have; an empty reference file
     * would make this test vacuous. */
    assert_int_equal(count, fx_colormap_count() - 1);
    size_t pixels = (size_t)width * height;
    uint8_t *gray = malloc(pixels);
    assert_non_null(gray);
    memcpy(gray, take_bytes(ref, &pos, pixels), pixels);
    fx_image map = view(gray, width, height, FX_PIXEL_U8);
    for (uint32_t i = 0; i < count; i++) {
        int32_t number = (int32_t)take_u32(ref, &pos);
        char name[33] = {0};
        memcpy(name, take_bytes(ref, &pos, 32), 32);
        const uint8_t *want = take_bytes(ref, &pos, pixels * 3);
        int32_t colormap = -1;
        assert_int_equal(fx_colormap_from_name(name, &colormap), FX_OK);
        if (colormap != number)
            fail_msg("'%s' is %d in fxcam, %d in OpenCV", name, (int)colormap, (int)number);
        assert_int_equal(fx_colormap_at(i), number); /* enumeration follows OpenCV's order */
        fx_image out = {0};
        assert_int_equal(fx_colormap_apply(&map, number, &out), FX_OK);
        size_t mismatches = 0;
        for (size_t k = 0; k < pixels * 3; k++)
            mismatches += ((const uint8_t *)out.data)[k] != want[k];
        print_message("# %s (%d) %ux%u: %zu bytes differ from cv2.applyColorMap\n", name, (int)number, width, height,
                      mismatches);
        assert_int_equal(mismatches, 0);
        fx_image_free(&out);
    }
    assert_int_equal(pos, ref->size);
    free(gray);
}

/* ---- Bad input ---------------------------------------------------------- */

static void expect_apply_error(const fx_image *map, int32_t colormap, fx_image *out, const char *fragment)
{
    fx_image before = out ? *out : (fx_image){0};
    fx_clear_error();
    assert_int_equal(fx_colormap_apply(map, colormap, out), FX_ERR_INVALID_ARGUMENT);
    expect_message(fragment);
    if (out)
        assert_memory_equal(out, &before, sizeof before);
}

static void test_apply_rejects_bad_arguments(void **state)
{
    (void)state;
    float px[12] = {0};
    fx_image map = view(px, 2, 2, FX_PIXEL_F32);
    fx_image out = {0};

    expect_apply_error(NULL, FX_COLORMAP_JET, &out, "map is NULL");
    expect_apply_error(&map, FX_COLORMAP_JET, NULL, "out is NULL");
    expect_apply_error(&map, -1, &out, "fx_colormap_apply: unknown colormap -1");
    expect_apply_error(&map, 22, &out, "unknown colormap 22; valid (OpenCV's COLORMAP_* numbers, and fxcam's gray): "
                                       "autumn (0), bone (1), jet (2), winter (3)");

    fx_image bad = map;
    bad.channels = 3;
    bad.stride = 24;
    expect_apply_error(&bad, FX_COLORMAP_JET, &out, "has 3 channels; expected 1");
    bad = map;
    bad.pixel_type = FX_PIXEL_U16;
    expect_apply_error(&bad, FX_COLORMAP_JET, &out, "FX_PIXEL_U16; valid: FX_PIXEL_U8");
    bad = map;
    bad.data = NULL;
    expect_apply_error(&bad, FX_COLORMAP_JET, &out, "data is NULL");
    bad = map;
    bad.height = 0;
    expect_apply_error(&bad, FX_COLORMAP_JET, &out, "size 2x0 is empty");
    bad = map;
    bad.stride = 7;
    expect_apply_error(&bad, FX_COLORMAP_JET, &out, "stride 7 is smaller than a row");

    uint8_t dst[64];
    fx_image given = {.data = dst, .stride = 8, .width = 2, .height = 2, .channels = 4, .pixel_type = FX_PIXEL_U8};
    expect_apply_error(&map, FX_COLORMAP_JET, &given, "this call produces 2x2, 3 channels, FX_PIXEL_U8");
    given.channels = 3;
    given.width = 3;
    given.stride = 9;
    expect_apply_error(&map, FX_COLORMAP_JET, &given, "caller's buffer is 3x2");

    /* Output written over its own input. */
    uint8_t shared[32] = {0};
    fx_image umap = view(shared, 2, 2, FX_PIXEL_U8);
    fx_image alias = {.data = shared, .stride = 6, .width = 2, .height = 2, .channels = 3, .pixel_type = FX_PIXEL_U8};
    expect_apply_error(&umap, FX_COLORMAP_JET, &alias, "overlaps");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_are_pinned),
        cmocka_unit_test(test_enumeration),
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_from_name_ignores_case),
        cmocka_unit_test(test_from_name_rejects_unknown),
        cmocka_unit_test(test_gray_is_identity),
        cmocka_unit_test(test_table_endpoints),
        cmocka_unit_test(test_table_rejects_bad_arguments),
        cmocka_unit_test(test_float_rounding_rule),
        cmocka_unit_test(test_float_matches_u8_on_levels),
        cmocka_unit_test(test_strides_and_caller_buffer),
        cmocka_unit_test_setup_teardown(test_matches_opencv, load_reference, reference_file_free),
        cmocka_unit_test(test_apply_rejects_bad_arguments),
    };
    return cmocka_run_group_tests_name("colormap", tests, NULL, NULL);
}
