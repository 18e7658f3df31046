/* The engine's preprocessing (lib/engine.c over lib/intensity.c and
 * lib/preprocess.c) end to end, against torch and torchvision run by
 * make_preprocess_fixtures.py: a 12-bit radiograph in a 16-bit PNG (sBIT 12)
 * and its 8-bit twin, torchvision's Resize + CenterCrop and a letterbox, and
 * a channel-count mismatch named at load. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_shim.h"
#include "engine_test_support.h"

#define FIXTURE(name) FX_ENGINE_FIXTURES "/" name
#define LOGIT_TOLERANCE 1e-4

typedef struct reference {
    char tag[64];
    int target, logits, h, w;
    double scale_x, scale_y; /* resized / image size (resize cases) */
    long offset_x, offset_y; /* top-left of the resized image in the input */
} reference;

static reference find_reference(const char *tag)
{
    FILE *f = fopen(FIXTURE("preprocess_manifest.txt"), "r");
    if (!f)
        fail_msg("cannot open preprocess_manifest.txt");
    char line[512];
    reference r = {0};
    while (fgets(line, sizeof line, f)) {
        int n = sscanf(line, "%63s %d %d %d %d %lf %lf %ld %ld", r.tag, &r.target, &r.logits, &r.h, &r.w, &r.scale_x,
                       &r.scale_y, &r.offset_x, &r.offset_y);
        if (n >= 5 && strcmp(r.tag, tag) == 0) {
            fclose(f);
            return r;
        }
    }
    fclose(f);
    fail_msg("no reference '%s' in preprocess_manifest.txt", tag);
    return r;
}

static void load_image(const char *file, fx_image *img, fx_image_info *info)
{
    fx_load_options lo;
    fx_load_options_init(&lo);
    memset(info, 0, sizeof *info);
    info->struct_size = sizeof *info;
    lo.info = info;
    char path[512];
    snprintf(path, sizeof path, FX_ENGINE_FIXTURES "/%s", file);
    if (fx_image_load(path, &lo, img) != FX_OK)
        fail_msg("loading %s: %s", file, fx_last_error());
}

static fx_result *gradcam(fx_model *m, const fx_image *img, const fx_image_info *info)
{
    fx_gradcam_options go;
    fx_gradcam_options_init(&go);
    go.image_info = info;
    fx_result *r = NULL;
    if (fx_gradcam_compute(m, img, 1, &go, &r) != FX_OK)
        fail_msg("fx_gradcam_compute: %s", fx_last_error());
    return r;
}

/* The result's logits and Grad-CAM low-resolution map equal torch's. */
static void assert_matches(const fx_result *r, const char *tag)
{
    reference ref = find_reference(tag);
    uint32_t count = 0;
    const float *logits = fx_result_logits(r, 0, &count);
    assert_int_equal(count, ref.logits);
    float *want = read_floats(tag, "logits", count);
    assert_close(tag, logits, want, count, LOGIT_TOLERANCE);
    free(want);
    assert_int_equal(fx_result_predicted_class(r, 0), ref.target);
    const fx_image *low = fx_result_lowres(r, 0, 0);
    assert_int_equal(low->width, ref.w);
    assert_int_equal(low->height, ref.h);
    float *want_low = read_floats(tag, "lowres", (size_t)ref.w * ref.h);
    assert_close(tag, (const float *)low->data, want_low, (size_t)ref.w * ref.h, LOGIT_TOLERANCE);
    free(want_low);
}

static int has_warning(const fx_result *r, int32_t code)
{
    for (size_t i = 0; i < fx_result_warning_count(r); i++) {
        int32_t c = 0;
        fx_result_warning(r, i, &c, NULL);
        if (c == code)
            return 1;
    }
    return 0;
}

/* (a) The same radiograph as 12 bits stored unscaled in a 16-bit PNG with
 * sBIT 12, and as 8 bits: the loader reports 12 bits, the model reads v / 4095
 * and v8 / 255 (torch's logits and maps for each), the predictions agree and
 * the heatmaps differ by 8-bit rounding only. Without the loader's info the
 * 12-bit image is read as v / 65535 (fxcam 0.1), which torch confirms too: the
 * test would see a wiring that drops image_info. */
static void test_twelve_bit_png_equals_eight_bit(void **state)
{
    (void)state;
    fx_image twelve = {0}, eight = {0};
    fx_image_info twelve_info, eight_info;
    load_image("twelve_bit.png", &twelve, &twelve_info);
    load_image("twelve_bit_8.png", &eight, &eight_info);
    assert_int_equal(twelve.pixel_type, FX_PIXEL_U16);
    assert_int_equal(twelve_info.bits_stored, 12);
    assert_int_equal(twelve_info.significant_bits, 12);
    assert_int_equal(eight.pixel_type, FX_PIXEL_U8);
    assert_int_equal(eight_info.bits_stored, 8);

    fx_model *m = load_model_with("gray_model.pt", NULL);
    fx_result *r12 = gradcam(m, &twelve, &twelve_info);
    fx_result *r8 = gradcam(m, &eight, &eight_info);
    fx_result *r_container = gradcam(m, &twelve, NULL);
    assert_matches(r12, "gray_twelve");
    assert_matches(r8, "gray_eight");
    assert_matches(r_container, "gray_container");
    assert_int_equal(fx_result_predicted_class(r12, 0), fx_result_predicted_class(r8, 0));

    /* Within rounding: 8 bits move a sample by at most 0.5 / 255 of the
     * range (the measured difference is printed). */
    const fx_image *h12 = fx_result_heatmap(r12, 0, 0), *h8 = fx_result_heatmap(r8, 0, 0);
    double worst = 0.0;
    for (uint32_t y = 0; y < h12->height; y++)
        for (uint32_t x = 0; x < h12->width; x++)
            worst = fmax(worst, fabs((double)((const float *)fx__row(h12, y))[x] - ((const float *)fx__row(h8, y))[x]));
    printf("# 12-bit vs 8-bit heatmap: max |difference| %.2g\n", worst);
    if (worst > 0.01)
        fail_msg("12-bit and 8-bit heatmaps differ by %g (> 0.01)", worst);

    /* fx_model_predict reads image_info the same way. */
    float probabilities[3];
    fx_gradcam_options go;
    fx_gradcam_options_init(&go);
    go.image_info = &twelve_info;
    assert_int_equal(fx_model_predict(m, &twelve, 1, &go, probabilities, NULL), FX_OK);
    const float *p12 = fx_result_probabilities(r12, 0, NULL);
    assert_close("predict", probabilities, p12, 3, 1e-6);

    fx_result_free(r12);
    fx_result_free(r8);
    fx_result_free(r_container);
    fx_model_free(m);
    fx_image_free(&twelve);
    fx_image_free(&eight);
}

/* The heatmap an image should get from a low-resolution map under a
 * geometry, by docs/algorithms.md: each pixel centre is carried into the
 * input, (x + 0.5) * scale + offset; outside [0, input) it was not seen
 * (0); inside, the map is sampled bilinearly with half-pixel centres,
 * clamped at the edges; then min-max over the seen pixels. */
static float *expected_heatmap(const reference *ref, const float *low, uint32_t iw, uint32_t ih, uint32_t in_w,
                               uint32_t in_h, uint32_t seen[4])
{
    float *out = calloc((size_t)iw * ih, sizeof *out);
    unsigned char *is_seen = calloc((size_t)iw * ih, 1);
    assert_true(out && is_seen);
    double lo = INFINITY, hi = -INFINITY;
    uint32_t x_min = iw, y_min = ih, x_max = 0, y_max = 0;
    for (uint32_t y = 0; y < ih; y++)
        for (uint32_t x = 0; x < iw; x++) {
            double u = (x + 0.5) * ref->scale_x + ref->offset_x, v = (y + 0.5) * ref->scale_y + ref->offset_y;
            if (u < 0 || u >= in_w || v < 0 || v >= in_h)
                continue;
            double sx = fmin(fmax(u * ref->w / in_w - 0.5, 0.0), ref->w - 1);
            double sy = fmin(fmax(v * ref->h / in_h - 0.5, 0.0), ref->h - 1);
            int x0 = (int)floor(sx), y0 = (int)floor(sy);
            int x1 = x0 + 1 < ref->w ? x0 + 1 : x0, y1 = y0 + 1 < ref->h ? y0 + 1 : y0;
            double fx = sx - x0, fy = sy - y0;
            double value = (low[y0 * ref->w + x0] * (1 - fx) + low[y0 * ref->w + x1] * fx) * (1 - fy) +
                           (low[y1 * ref->w + x0] * (1 - fx) + low[y1 * ref->w + x1] * fx) * fy;
            out[(size_t)y * iw + x] = (float)value;
            is_seen[(size_t)y * iw + x] = 1;
            lo = fmin(lo, value), hi = fmax(hi, value);
            x_min = x < x_min ? x : x_min, x_max = x > x_max ? x : x_max;
            y_min = y < y_min ? y : y_min, y_max = y > y_max ? y : y_max;
        }
    for (size_t i = 0; i < (size_t)iw * ih; i++)
        if (is_seen[i])
            out[i] = (float)((out[i] - lo) / (hi - lo));
    seen[0] = x_min, seen[1] = y_min, seen[2] = x_max - x_min + 1, seen[3] = y_max - y_min + 1;
    free(is_seen);
    return out;
}

static void check_resize_case(fx_model *m, const fx_image *img, const char *tag, int expect_not_seen)
{
    reference ref = find_reference(tag);
    fx_result *r = gradcam(m, img, NULL);
    assert_matches(r, tag);
    uint32_t in_w = 0, in_h = 0;
    assert_int_equal(fx_model_input_size(m, &in_w, &in_h, NULL), FX_OK);
    assert_int_equal(in_w, 80);
    assert_int_equal(in_h, 64);
    float *low = read_floats(tag, "lowres", (size_t)ref.w * ref.h);
    uint32_t seen[4];
    float *want = expected_heatmap(&ref, low, img->width, img->height, in_w, in_h, seen);
    const fx_image *heat = fx_result_heatmap(r, 0, 0);
    assert_int_equal(heat->width, img->width);
    assert_int_equal(heat->height, img->height);
    for (uint32_t y = 0; y < heat->height; y++)
        for (uint32_t x = 0; x < heat->width; x++) {
            double got = ((const float *)fx__row(heat, y))[x], w = want[(size_t)y * img->width + x];
            int outside = x < seen[0] || x >= seen[0] + seen[2] || y < seen[1] || y >= seen[1] + seen[3];
            if (outside && got != 0.0f)
                fail_msg("%s: pixel (%u, %u) outside the seen region is %g, must be 0", tag, x, y, got);
            if (!(fabs(got - w) <= 1e-3))
                fail_msg("%s: heatmap pixel (%u, %u) is %.6g, expected %.6g", tag, x, y, got, w);
        }
    uint32_t sx, sy, sw, sh;
    assert_int_equal(fx_result_seen_region(r, 0, &sx, &sy, &sw, &sh), FX_OK);
    assert_int_equal(sx, seen[0]);
    assert_int_equal(sy, seen[1]);
    assert_int_equal(sw, seen[2]);
    assert_int_equal(sh, seen[3]);
    int partial = sw != img->width || sh != img->height;
    assert_int_equal(partial, expect_not_seen);
    assert_int_equal(has_warning(r, FX_WARN_NOT_SEEN), expect_not_seen);
    free(low);
    free(want);
    fx_result_free(r);
}

/* (b) fxcam.json's "shorter-side-crop" with resize_size 72 is torchvision's
 * Resize(72) + CenterCrop((64, 80)); resize_mode = letterbox (the option
 * overrides fxcam.json) is the aspect-kept fit with zero padding. Logits and
 * maps equal torch's on the transformed tensor; the heatmap is 0 outside the
 * crop, with FX_WARN_NOT_SEEN; letterboxing drops the padding. */
static void test_resize_modes_match_torchvision(void **state)
{
    (void)state;
    fx_image img = {0};
    fx_image_info info;
    load_image("resize_rgb.png", &img, &info);
    assert_int_equal(img.width, 150);
    assert_int_equal(img.height, 97);

    fx_model *crop = load_model_with("resize_model.pt", NULL);
    uint32_t size = 0;
    assert_int_equal(fx_model_resize_mode(crop, &size), FX_RESIZE_SHORTER_SIDE_CROP);
    assert_int_equal(size, 72);
    check_resize_case(crop, &img, "resize_crop", 1);

    fx_model_options o;
    fx_model_options_init(&o);
    o.resize_mode = FX_RESIZE_LETTERBOX;
    fx_model *letter = load_model_with("resize_model.pt", &o);
    assert_int_equal(fx_model_resize_mode(letter, &size), FX_RESIZE_LETTERBOX);
    assert_int_equal(size, 0);
    check_resize_case(letter, &img, "resize_letterbox", 0);

    fx_model_free(crop);
    fx_model_free(letter);
    fx_image_free(&img);
}

static void expect_channel_error(const char *file, uint32_t told, const char *needle)
{
    fx_model_options o;
    fx_model_options_init(&o);
    o.device = getenv("FXCAM_TEST_DEVICE") ? getenv("FXCAM_TEST_DEVICE") : "cpu";
    o.input_channels = told;
    fx_model *m = NULL;
    char path[512];
    snprintf(path, sizeof path, FX_ENGINE_FIXTURES "/%s", file);
    assert_int_equal(fx_model_load(path, &o, &m), FX_ERR_MODEL);
    assert_null(m);
    const char *message = fx_last_error();
    if (!strstr(message, needle) || !strstr(message, "set channels"))
        fail_msg("%s: message '%s' lacks '%s'", file, message, needle);
    if (strstr(message, "Traceback") || strstr(message, "RuntimeError"))
        fail_msg("%s: the message is TorchScript's, not fxcam's: %s", file, message);
}

/* (c) A channel-count mismatch is named at load, before any image is run:
 * which count the model takes, what fxcam was told and by whom. */
static void test_channel_mismatch_named_at_load(void **state)
{
    (void)state;
    expect_channel_error("one_channel_no_meta.pt", 0, "the model takes 1 input channel,");
    expect_channel_error("one_channel_no_meta.pt", 0, "the default (no \"channels\" in fxcam.json)");
    expect_channel_error("three_channel_meta.pt", 1, "the model takes 3 input channels");
    expect_channel_error("three_channel_meta.pt", 1, "the input_channels option");
    fx_model_options o;
    fx_model_options_init(&o);
    o.input_channels = 1;
    fx_model *m = load_model_with("one_channel_no_meta.pt", &o); /* told right: loads */
    uint32_t c = 0;
    assert_int_equal(fx_model_input_size(m, NULL, NULL, &c), FX_OK);
    assert_int_equal(c, 1);
    fx_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_twelve_bit_png_equals_eight_bit),
        cmocka_unit_test(test_resize_modes_match_torchvision),
        cmocka_unit_test(test_channel_mismatch_named_at_load),
    };
    return cmocka_run_group_tests_name("engine preprocessing", tests, NULL, NULL);
}
