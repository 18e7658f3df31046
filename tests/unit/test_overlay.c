/* Conversion to 8-bit RGB and the heatmap overlay, against pixels computed
 * by hand (arithmetic next to each expected value).
 *
 * Colormap entries used below, in RGB, printed by python3-opencv 4.6.0 with
 *   cv2.applyColorMap(np.arange(256, dtype=np.uint8)[None], cv2.COLORMAP_JET)[0][:, ::-1]
 *   JET[0]   = (0, 0, 128)     JET[64]  = (0, 128, 255)
 *   JET[128] = (130, 255, 126) JET[255] = (128, 0, 0)
 *   HOT[128] = (255, 65, 0)
 * Map values index the table with (uint8_t)(v * 255 + 0.5):
 *   0 -> 0, 0.25 -> 64.25 -> 64, 0.5 -> 128, 1 -> 255.
 * The blend is round((1 - alpha) * image + alpha * color), alpha = 0.4f. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "fx_internal.h"

static const uint8_t SCENE[12] = {100, 50, 200, 10, 20, 30, 255, 255, 255, 0, 0, 0};
static const float SCENE_HEAT[4] = {0.0f, 1.0f, 0.5f, 0.25f};

static fx_image rgb_view(const uint8_t *px, uint32_t w, uint32_t h)
{
    return (fx_image){.data = (void *)(uintptr_t)px, .stride = (size_t)w * 3, .width = w, .height = h,
                      .channels = 3, .pixel_type = FX_PIXEL_U8};
}

static fx_image map_view(const float *px, uint32_t w, uint32_t h)
{
    return (fx_image){.data = (void *)(uintptr_t)px, .stride = (size_t)w * sizeof(float), .width = w,
                      .height = h, .channels = 1, .pixel_type = FX_PIXEL_F32};
}

/* Runs fx_overlay on the 2x2 scene and compares the 12 bytes. */
static void assert_scene(const fx_overlay_options *opts, const uint8_t want[12])
{
    fx_image image = rgb_view(SCENE, 2, 2), heat = map_view(SCENE_HEAT, 2, 2), out = {0};
    assert_int_equal(fx_overlay(&image, &heat, opts, &out), FX_OK);
    assert_int_equal(out.width, 2);
    assert_int_equal(out.height, 2);
    assert_int_equal(out.channels, 3);
    assert_int_equal(out.pixel_type, FX_PIXEL_U8);
    for (uint32_t y = 0; y < 2; y++)
        assert_memory_equal(fx__row(&out, y), want + 6 * y, 6);
    fx_image_free(&out);
}

static void test_options_defaults(void **state)
{
    (void)state;
    fx_overlay_options o;
    memset(&o, 0xFF, sizeof o);
    fx_overlay_options_init(&o);
    assert_int_equal(o.struct_size, sizeof o);
    assert_true(o.alpha == 0.4f);
    assert_int_equal(o.colormap, FX_COLORMAP_JET);
    assert_true(o.threshold == 0.0f);
    fx_overlay_options_init(NULL); /* no-op */
}

static void test_overlay_alpha_04(void **state)
{
    (void)state;
    /* p0 (100, 50, 200), map 0    -> JET[0]   (0, 0, 128):
     *     .6*100 = 60, .6*50 = 30, .6*200 + .4*128 = 120 + 51.2 = 171.2 -> 171
     * p1 (10, 20, 30),   map 1    -> JET[255] (128, 0, 0):
     *     6 + 51.2 = 57.2 -> 57, 12, 18
     * p2 (255, 255, 255), map 0.5 -> JET[128] (130, 255, 126):
     *     153 + 52 = 205, 153 + 102 = 255, 153 + 50.4 = 203.4 -> 203
     * p3 (0, 0, 0),      map 0.25 -> JET[64]  (0, 128, 255):
     *     0, 51.2 -> 51, 102                                                */
    const uint8_t want[12] = {60, 30, 171, 57, 12, 18, 205, 255, 203, 0, 51, 102};
    fx_overlay_options o;
    fx_overlay_options_init(&o);
    assert_scene(&o, want);
    assert_scene(NULL, want); /* NULL means the same defaults */
}

static void test_overlay_alpha_0_and_1(void **state)
{
    (void)state;
    fx_overlay_options o;
    fx_overlay_options_init(&o);
    o.alpha = 0.0f; /* image unchanged */
    assert_scene(&o, SCENE);
    o.alpha = 1.0f; /* pure colormap: JET[0], JET[255], JET[128], JET[64] */
    const uint8_t colors[12] = {0, 0, 128, 128, 0, 0, 130, 255, 126, 0, 128, 255};
    assert_scene(&o, colors);
}

static void test_overlay_threshold(void **state)
{
    (void)state;
    /* threshold 0.5, alpha 1: maps 1 and 0.5 (>= is inclusive) are colored,
     * maps 0 and 0.25 keep the image. */
    fx_overlay_options o;
    fx_overlay_options_init(&o);
    o.alpha = 1.0f;
    o.threshold = 0.5f;
    const uint8_t want[12] = {100, 50, 200, 128, 0, 0, 130, 255, 126, 0, 0, 0};
    assert_scene(&o, want);
    /* threshold 1: only the map value 1 */
    o.threshold = 1.0f;
    const uint8_t only_max[12] = {100, 50, 200, 128, 0, 0, 255, 255, 255, 0, 0, 0};
    assert_scene(&o, only_max);
}

static void test_overlay_other_colormap(void **state)
{
    (void)state;
    /* HOT, alpha 1, threshold 0.5: p1 -> HOT[255] = (255, 255, 255) (white
     * by the definition of "hot"), p2 -> HOT[128] = (255, 65, 0). */
    fx_overlay_options o;
    fx_overlay_options_init(&o);
    o.alpha = 1.0f;
    o.threshold = 0.5f;
    o.colormap = FX_COLORMAP_HOT;
    const uint8_t want[12] = {100, 50, 200, 255, 255, 255, 255, 65, 0, 0, 0, 0};
    assert_scene(&o, want);
}

static void test_overlay_older_options_struct(void **state)
{
    (void)state;
    /* A program built when the struct ended after alpha: colormap and
     * threshold take their defaults (JET, 0). alpha 1 gives the colors. */
    fx_overlay_options o;
    memset(&o, 0, sizeof o);
    o.struct_size = (uint32_t)offsetof(fx_overlay_options, colormap);
    o.alpha = 1.0f;
    o.colormap = 12345; /* beyond struct_size: must not be read */
    const uint8_t colors[12] = {0, 0, 128, 128, 0, 0, 130, 255, 126, 0, 128, 255};
    assert_scene(&o, colors);
}

static void test_overlay_alpha_1_equals_colormap_apply(void **state)
{
    (void)state;
    /* With alpha 1 and threshold 0 every pixel takes its colormap color, so
     * the overlay must index the table exactly as fx_colormap_apply does,
     * including the rounding of values between two entries. */
    float heat[300];
    uint8_t gray[300];
    for (int i = 0; i < 300; i++) {
        heat[i] = (float)i / 299.0f;
        gray[i] = (uint8_t)(i * 7);
    }
    /* Either side of index 0.5 (exact products, numpy float64): 0.0019607842f
     * * 255 = 0.49999997 -> index 0, 0.0019607844f * 255 = 0.50000003 -> 1.
     * The two functions once disagreed on the first. */
    heat[1] = 0.0019607842f;
    heat[2] = 0.0019607844f;
    fx_image image = {.data = gray, .stride = 300, .width = 300, .height = 1, .channels = 1,
                      .pixel_type = FX_PIXEL_U8};
    fx_image hm = map_view(heat, 300, 1), blended = {0}, colored = {0};
    fx_overlay_options o;
    fx_overlay_options_init(&o);
    o.alpha = 1.0f;
    o.colormap = FX_COLORMAP_VIRIDIS;
    assert_int_equal(fx_overlay(&image, &hm, &o, &blended), FX_OK);
    assert_int_equal(fx_colormap_apply(&hm, FX_COLORMAP_VIRIDIS, &colored), FX_OK);
    assert_memory_equal(blended.data, colored.data, 900);
    uint8_t table[768];
    assert_int_equal(fx_colormap_table(FX_COLORMAP_VIRIDIS, table), FX_OK);
    assert_memory_equal((uint8_t *)blended.data + 3, table, 3);
    assert_memory_equal((uint8_t *)blended.data + 6, table + 3, 3);
    fx_image_free(&blended);
    fx_image_free(&colored);
}

static void test_overlay_gray_input(void **state)
{
    (void)state;
    /* gray [40, 200], maps [0, 1], alpha 0.4:
     *   p0 (40,40,40) + JET[0] (0,0,128):     24, 24, 24 + 51.2 = 75.2 -> 75
     *   p1 (200,200,200) + JET[255] (128,0,0): 120 + 51.2 = 171.2 -> 171, 120, 120 */
    const uint8_t gray[2] = {40, 200};
    const float heat[2] = {0.0f, 1.0f};
    fx_image image = {.data = (void *)(uintptr_t)gray, .stride = 2, .width = 2, .height = 1, .channels = 1,
                      .pixel_type = FX_PIXEL_U8};
    fx_image hm = map_view(heat, 2, 1), out = {0};
    assert_int_equal(fx_overlay(&image, &hm, NULL, &out), FX_OK);
    const uint8_t want[6] = {24, 24, 75, 171, 120, 120};
    assert_memory_equal(out.data, want, 6);
    fx_image_free(&out);
}

static void test_overlay_radiograph_u16(void **state)
{
    (void)state;
    /* 12-bit radiograph [1000, 2500, 4000] windowed 1000..4000:
     *   (v - 1000) * 255 / 3000 = 0, 127.5 -> 128 (halves round up), 255
     * then maps all 1 -> JET[255] (128, 0, 0), alpha 0.4:
     *   p0 0:   51.2 -> 51, 0, 0
     *   p1 128: 76.8 + 51.2 = 128, 76.8 -> 77, 77
     *   p2 255: 153 + 51.2 = 204.2 -> 204, 153, 153                     */
    const uint16_t xray[3] = {1000, 2500, 4000};
    const float heat[3] = {1.0f, 1.0f, 1.0f};
    fx_image image = {.data = (void *)(uintptr_t)xray, .stride = 6, .width = 3, .height = 1, .channels = 1,
                      .pixel_type = FX_PIXEL_U16};
    fx_image hm = map_view(heat, 3, 1), out = {0};
    assert_int_equal(fx_overlay(&image, &hm, NULL, &out), FX_OK);
    const uint8_t want[9] = {51, 0, 0, 128, 77, 77, 204, 153, 153};
    assert_memory_equal(out.data, want, 9);
    fx_image_free(&out);
}

static void test_overlay_honours_strides(void **state)
{
    (void)state;
    /* The scene again with padded rows everywhere: image rows of 8 bytes
     * (6 used), map rows of 3 floats (2 used), caller output rows of 10 bytes.
     * Expected pixels are those of test_overlay_alpha_04. */
    uint8_t image_px[16] = {100, 50, 200, 10, 20, 30, 0xEE, 0xEE, 255, 255, 255, 0, 0, 0, 0xEE, 0xEE};
    float heat[6] = {0.0f, 1.0f, -9.0f, 0.5f, 0.25f, -9.0f};
    uint8_t out_px[20];
    memset(out_px, 0xCD, sizeof out_px);
    fx_image image = {.data = image_px, .stride = 8, .width = 2, .height = 2, .channels = 3,
                      .pixel_type = FX_PIXEL_U8};
    fx_image hm = {.data = heat, .stride = 12, .width = 2, .height = 2, .channels = 1, .pixel_type = FX_PIXEL_F32};
    fx_image out = {.data = out_px, .stride = 10, .width = 2, .height = 2, .channels = 3, .pixel_type = FX_PIXEL_U8};
    assert_int_equal(fx_overlay(&image, &hm, NULL, &out), FX_OK);
    assert_ptr_equal(out.data, out_px);
    const uint8_t row0[6] = {60, 30, 171, 57, 12, 18}, row1[6] = {205, 255, 203, 0, 51, 102};
    assert_memory_equal(out_px, row0, 6);
    assert_memory_equal(out_px + 10, row1, 6);
    for (int i = 6; i < 10; i++) {
        assert_int_equal(out_px[i], 0xCD); /* padding untouched */
        assert_int_equal(out_px[10 + i], 0xCD);
    }
}

static void test_overlay_rejects_bad_input(void **state)
{
    (void)state;
    fx_image image = rgb_view(SCENE, 2, 2), heat = map_view(SCENE_HEAT, 2, 2), out = {0};
    fx_overlay_options o;

    assert_int_equal(fx_overlay(NULL, &heat, NULL, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "image is NULL"));
    assert_int_equal(fx_overlay(&image, NULL, NULL, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "heatmap is NULL"));
    assert_int_equal(fx_overlay(&image, &heat, NULL, NULL), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "out is NULL"));

    fx_image u8_map = rgb_view(SCENE, 2, 2);
    u8_map.channels = 1;
    assert_int_equal(fx_overlay(&image, &u8_map, NULL, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "expected FX_PIXEL_F32"));
    fx_image three = heat;
    three.channels = 3;
    three.width = 1;
    three.stride = 12;
    assert_int_equal(fx_overlay(&image, &three, NULL, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "3 channels; expected 1"));
    fx_image small = map_view(SCENE_HEAT, 1, 2);
    assert_int_equal(fx_overlay(&image, &small, NULL, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "heatmap is 1x2 but image is 2x2"));

    const float bad_values[] = {-0.1f, 1.5f, NAN};
    const char *printed[] = {"-0.1", "1.5", "nan"};
    for (int i = 0; i < 3; i++) {
        fx_overlay_options_init(&o);
        o.alpha = bad_values[i];
        assert_int_equal(fx_overlay(&image, &heat, &o, &out), FX_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(fx_last_error(), "alpha is"));
        assert_non_null(strstr(fx_last_error(), printed[i]));
        assert_non_null(strstr(fx_last_error(), "valid: 0 to 1"));
        fx_overlay_options_init(&o);
        o.threshold = bad_values[i];
        assert_int_equal(fx_overlay(&image, &heat, &o, &out), FX_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(fx_last_error(), "threshold is"));
        assert_non_null(strstr(fx_last_error(), printed[i]));
    }

    fx_overlay_options_init(&o);
    o.colormap = 99;
    assert_int_equal(fx_overlay(&image, &heat, &o, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "fx_overlay: unknown colormap 99"));
    assert_non_null(strstr(fx_last_error(), "jet (2)"));
    assert_non_null(strstr(fx_last_error(), "gray (100)"));
    o.colormap = -1;
    assert_int_equal(fx_overlay(&image, &heat, &o, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "unknown colormap -1"));

    fx_overlay_options_init(&o);
    o.struct_size = 0;
    assert_int_equal(fx_overlay(&image, &heat, &o, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "struct_size is 0"));
    assert_null(out.data); /* nothing allocated on any error above */

    /* caller buffers: wrong size, and one that aliases the image */
    uint8_t buf[12];
    memset(buf, 0x5A, sizeof buf);
    fx_image wrong = {.data = buf, .stride = 3, .width = 1, .height = 2, .channels = 3, .pixel_type = FX_PIXEL_U8};
    assert_int_equal(fx_overlay(&image, &heat, NULL, &wrong), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "produces 2x2"));
    for (int i = 0; i < 12; i++)
        assert_int_equal(buf[i], 0x5A);
    uint8_t scene_copy[12];
    memcpy(scene_copy, SCENE, sizeof scene_copy);
    fx_image in_place = rgb_view(scene_copy, 2, 2);
    assert_int_equal(fx_overlay(&in_place, &heat, NULL, &in_place), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "shares memory with image"));
    assert_memory_equal(scene_copy, SCENE, sizeof scene_copy);
}

/* ---- fx_image_to_rgb8 ------------------------------------------------------ */

static void to_rgb8(const void *px, uint32_t w, uint32_t h, uint32_t channels, int32_t type, const uint8_t *want)
{
    fx_image src = {.data = (void *)(uintptr_t)px, .stride = (size_t)w * channels * fx_pixel_size(type), .width = w,
                    .height = h, .channels = channels, .pixel_type = type};
    fx_image out = {0};
    assert_int_equal(fx_image_to_rgb8(&src, &out), FX_OK);
    assert_int_equal(out.channels, 3);
    assert_int_equal(out.pixel_type, FX_PIXEL_U8);
    assert_int_equal(out.width, w);
    assert_int_equal(out.height, h);
    assert_memory_equal(out.data, want, (size_t)w * h * 3);
    fx_image_free(&out);
}

static void test_to_rgb8_u8(void **state)
{
    (void)state;
    const uint8_t gray[2] = {7, 250};
    to_rgb8(gray, 2, 1, 1, FX_PIXEL_U8, (const uint8_t[]){7, 7, 7, 250, 250, 250});
    const uint8_t gray_alpha[4] = {77, 255, 3, 0}; /* alpha dropped */
    to_rgb8(gray_alpha, 2, 1, 2, FX_PIXEL_U8, (const uint8_t[]){77, 77, 77, 3, 3, 3});
    const uint8_t rgb[6] = {1, 2, 3, 4, 5, 6};
    to_rgb8(rgb, 1, 2, 3, FX_PIXEL_U8, rgb);
    const uint8_t rgba[8] = {10, 20, 30, 0, 40, 50, 60, 255};
    to_rgb8(rgba, 2, 1, 4, FX_PIXEL_U8, (const uint8_t[]){10, 20, 30, 40, 50, 60});
}

static void test_to_rgb8_u16_windowing(void **state)
{
    (void)state;
    /* gray 1000..4000: 0, (1500 * 255 / 3000 = 127.5 -> 128), 255 */
    const uint16_t gray[3] = {1000, 2500, 4000};
    to_rgb8(gray, 3, 1, 1, FX_PIXEL_U16, (const uint8_t[]){0, 0, 0, 128, 128, 128, 255, 255, 255});
    /* the alpha channel (65535, 0) is not part of the window: 1000..3000 */
    const uint16_t gray_alpha[4] = {1000, 65535, 3000, 0};
    to_rgb8(gray_alpha, 2, 1, 2, FX_PIXEL_U16, (const uint8_t[]){0, 0, 0, 255, 255, 255});
    /* RGB windowed over all three colour channels together, 100..500:
     *   100 -> 0, 200 -> 100*255/400 = 63.75 -> 64, 300 -> 127.5 -> 128, 500 -> 255 */
    const uint16_t rgb[6] = {100, 200, 300, 500, 100, 100};
    to_rgb8(rgb, 2, 1, 3, FX_PIXEL_U16, (const uint8_t[]){0, 64, 128, 255, 0, 0});
    const uint16_t rgba[8] = {100, 200, 300, 0, 500, 100, 100, 65535};
    to_rgb8(rgba, 2, 1, 4, FX_PIXEL_U16, (const uint8_t[]){0, 64, 128, 255, 0, 0});
    /* a constant image has no contrast: black, not a division by zero */
    const uint16_t flat[2] = {1234, 1234};
    to_rgb8(flat, 2, 1, 1, FX_PIXEL_U16, (const uint8_t[]){0, 0, 0, 0, 0, 0});
}

static void test_to_rgb8_f32(void **state)
{
    (void)state;
    /* clamp to [0,1], then (uint8_t)(v * 255 + 0.5): -0.5 -> 0, 0 -> 0,
     * 0.2 -> 51 + 0.5 -> 51, 0.5 -> 127.5 + 0.5 -> 128, 1 -> 255, 2 -> 255,
     * NaN -> 0 */
    const float v[7] = {-0.5f, 0.0f, 0.2f, 0.5f, 1.0f, 2.0f, NAN};
    const uint8_t want[21] = {0, 0, 0, 0, 0, 0, 51, 51, 51, 128, 128, 128, 255, 255, 255, 255, 255, 255, 0, 0, 0};
    to_rgb8(v, 7, 1, 1, FX_PIXEL_F32, want);
}

static void test_to_rgb8_strides_and_bad_input(void **state)
{
    (void)state;
    /* 2x2 gray rows of 4 bytes (2 used) into output rows of 8 bytes (6 used) */
    uint8_t gray[8] = {1, 2, 0xEE, 0xEE, 3, 4, 0xEE, 0xEE};
    uint8_t buf[16];
    memset(buf, 0xCD, sizeof buf);
    fx_image src = {.data = gray, .stride = 4, .width = 2, .height = 2, .channels = 1, .pixel_type = FX_PIXEL_U8};
    fx_image out = {.data = buf, .stride = 8, .width = 2, .height = 2, .channels = 3, .pixel_type = FX_PIXEL_U8};
    assert_int_equal(fx_image_to_rgb8(&src, &out), FX_OK);
    const uint8_t want[16] = {1, 1, 1, 2, 2, 2, 0xCD, 0xCD, 3, 3, 3, 4, 4, 4, 0xCD, 0xCD};
    assert_memory_equal(buf, want, 16);

    fx_image fresh = {0};
    assert_int_equal(fx_image_to_rgb8(NULL, &fresh), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "src is NULL"));
    assert_int_equal(fx_image_to_rgb8(&src, NULL), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "out is NULL"));
    fx_image five = src;
    five.channels = 5;
    assert_int_equal(fx_image_to_rgb8(&five, &fresh), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "5 channels"));
    fx_image bad_type = src;
    bad_type.pixel_type = 9;
    assert_int_equal(fx_image_to_rgb8(&bad_type, &fresh), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "unknown pixel type 9"));
    fx_image short_stride = src;
    short_stride.stride = 1;
    assert_int_equal(fx_image_to_rgb8(&short_stride, &fresh), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "stride 1"));
    assert_null(fresh.data);

    fx_image f32_out = out;
    f32_out.pixel_type = FX_PIXEL_F32;
    f32_out.stride = 24; /* consistent descriptor, wrong type */
    assert_int_equal(fx_image_to_rgb8(&src, &f32_out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "FX_PIXEL_U8"));
    /* an output that overlaps the source is refused, the source kept */
    fx_image alias = {.data = gray, .stride = 6, .width = 1, .height = 1, .channels = 3, .pixel_type = FX_PIXEL_U8};
    fx_image one = {.data = gray, .stride = 4, .width = 1, .height = 1, .channels = 1, .pixel_type = FX_PIXEL_U8};
    assert_int_equal(fx_image_to_rgb8(&one, &alias), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "shares memory with src"));
    assert_int_equal(gray[0], 1);
    assert_int_equal(gray[1], 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_defaults),
        cmocka_unit_test(test_overlay_alpha_04),
        cmocka_unit_test(test_overlay_alpha_0_and_1),
        cmocka_unit_test(test_overlay_threshold),
        cmocka_unit_test(test_overlay_other_colormap),
        cmocka_unit_test(test_overlay_older_options_struct),
        cmocka_unit_test(test_overlay_alpha_1_equals_colormap_apply),
        cmocka_unit_test(test_overlay_gray_input),
        cmocka_unit_test(test_overlay_radiograph_u16),
        cmocka_unit_test(test_overlay_honours_strides),
        cmocka_unit_test(test_overlay_rejects_bad_input),
        cmocka_unit_test(test_to_rgb8_u8),
        cmocka_unit_test(test_to_rgb8_u16_windowing),
        cmocka_unit_test(test_to_rgb8_f32),
        cmocka_unit_test(test_to_rgb8_strides_and_bad_input),
    };
    return cmocka_run_group_tests_name("overlay", tests, NULL, NULL);
}
