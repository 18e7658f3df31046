/* Guided Backpropagation and Guided Grad-CAM against an independent eager
 * PyTorch reference (make_guided_fixtures.py: a torch.autograd.Function
 * guided ReLU patched over F.relu / torch.relu / torch.relu_, Grad-CAM from
 * forward hooks, pytorch-grad-cam's deprocess_image), on random-init
 * ResNet-18, DenseNet-121 and MobileNetV3-small, traced and scripted; the
 * math helpers against hand computations; a model without ReLU. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_test_support.h"
#include "guided.h"

#define FIXTURE(name) FX_ENGINE_FIXTURES "/" name
#define TOLERANCE 1e-4

static void read_image(const char *tag, uint32_t w, uint32_t h, fx_image *img)
{
    char file[128];
    snprintf(file, sizeof file, "guided_%s.raw", tag);
    read_raw_image(file, w, h, 3, FX_PIXEL_U8, img);
}

/* Largest |a - b| over an image's samples against count reference floats. */
static double max_diff(const fx_image *img, const float *ref, size_t count)
{
    assert_int_equal(img->pixel_type, FX_PIXEL_F32);
    assert_int_equal((size_t)img->width * img->height * img->channels, count);
    double worst = 0.0;
    size_t e = 0;
    for (uint32_t y = 0; y < img->height; y++) {
        const float *row = (const float *)(const void *)((const uint8_t *)img->data + y * img->stride);
        for (uint32_t x = 0; x < img->width * img->channels; x++, e++)
            worst = fmax(worst, fabs((double)row[x] - (double)ref[e]));
    }
    return worst;
}

/* One manifest line: both guided methods (and Grad-CAM, sharing the pass)
 * equal the reference within 1e-4 on saliency and heatmap. */
static void check_case(const char *file, const char *layer, const char *itag, uint32_t w, uint32_t h, int target,
                       const char *tag, const int32_t *methods, uint32_t method_count)
{
    fx_model *m = load_model(file);
    fx_image img = {0};
    read_image(itag, w, h, &img);
    fx_gradcam_options o;
    fx_gradcam_options_init(&o);
    o.layer = layer;
    o.methods = methods;
    o.method_count = method_count;
    fx_result *r = NULL;
    if (fx_gradcam_compute(m, &img, 1, &o, &r) != FX_OK)
        fail_msg("%s: %s", file, fx_last_error());
    assert_int_equal(fx_result_target_class(r, 0), target);
    for (uint32_t j = 0; j < method_count; j++) {
        int32_t method = methods[j];
        if (!(fx_cam_method_find(method)->needs & FX_CAM_NEEDS_INPUT_GRADIENTS)) {
            assert_null(fx_result_saliency(r, 0, j));
            continue;
        }
        char what[256];
        snprintf(what, sizeof what, "%s.%s", tag, fx_cam_method_name(method));
        const fx_image *sal = fx_result_saliency(r, 0, j);
        assert_non_null(sal);
        assert_int_equal(sal->channels, 3);
        char suffix[64];
        snprintf(suffix, sizeof suffix, "%s.saliency", fx_cam_method_name(method));
        float *want = read_floats(tag, suffix, (size_t)w * h * 3);
        double d = max_diff(sal, want, (size_t)w * h * 3);
        printf("# %s saliency: max |fxcam - reference| = %.3g\n", what, d);
        if (d > TOLERANCE)
            fail_msg("%s saliency differs from the reference by %g", what, d);
        free(want);
        snprintf(suffix, sizeof suffix, "%s.heat", fx_cam_method_name(method));
        want = read_floats(tag, suffix, (size_t)w * h);
        d = max_diff(fx_result_heatmap(r, 0, j), want, (size_t)w * h);
        if (d > TOLERANCE)
            fail_msg("%s heatmap differs from the reference by %g", what, d);
        free(want);
        const fx_image *low = fx_result_lowres(r, 0, j);
        assert_int_equal(low->width, 64);
        assert_int_equal(low->height, 64);
    }
    fx_result_free(r);
    fx_image_free(&img);
    fx_model_free(m);
}

static void test_reference_models(void **state)
{
    (void)state;
    FILE *f = fopen(FIXTURE("guided_manifest.txt"), "r");
    assert_non_null(f);
    char file[128], layer[128], itag[32], tag[160];
    unsigned w, h;
    int target, cases = 0;
    static const int32_t methods[] = {FX_CAM_GRADCAM, FX_CAM_GUIDED_BACKPROP, FX_CAM_GUIDED_GRADCAM};
    while (fscanf(f, "%127s %127s %31s %u %u %d %159s", file, layer, itag, &w, &h, &target, tag) == 7) {
        check_case(file, layer, itag, w, h, target, tag, methods, 3);
        cases++;
    }
    fclose(f);
    assert_int_equal(cases, 8); /* resnet18 x 2 images, densenet121, mobilenet_v3_small; traced and scripted */
}

/* With a per-channel method in the same call (Ablation-CAM), the plain
 * forward keeps the channel passes and a separate guided pass runs beside
 * it: the same numbers. */
static void test_with_channel_method(void **state)
{
    (void)state;
    FILE *f = fopen(FIXTURE("guided_manifest.txt"), "r");
    assert_non_null(f);
    char file[128], layer[128], itag[32], tag[160];
    unsigned w, h;
    int target, found = 0;
    static const int32_t methods[] = {FX_CAM_ABLATIONCAM, FX_CAM_GUIDED_GRADCAM};
    while (!found && fscanf(f, "%127s %127s %31s %u %u %d %159s", file, layer, itag, &w, &h, &target, tag) == 7)
        found = strcmp(file, "guided_resnet18_traced.pt") == 0 && strcmp(itag, "sq") == 0;
    fclose(f);
    assert_true(found);
    check_case(file, layer, itag, w, h, target, tag, methods, 2);
}

/* Two images of different sizes in one batch (batch_size 2): each image's
 * saliency equals its own reference (the score is summed over the batch, and
 * in eval mode no image's gradient depends on the other). */
static void test_batch_of_two(void **state)
{
    (void)state;
    fx_model *m = load_model("guided_resnet18_scripted.pt");
    fx_image imgs[2] = {{0}};
    read_image("sq", 64, 64, &imgs[0]);
    read_image("wide", 83, 71, &imgs[1]);
    fx_gradcam_options o;
    fx_gradcam_options_init(&o);
    static const int32_t methods[] = {FX_CAM_GUIDED_GRADCAM};
    o.layer = "layer4";
    o.methods = methods;
    o.method_count = 1;
    o.batch_size = 2;
    fx_result *r = NULL;
    if (fx_gradcam_compute(m, imgs, 2, &o, &r) != FX_OK)
        fail_msg("%s", fx_last_error());
    const char *tags[2] = {"guided_resnet18_scripted_sq", "guided_resnet18_scripted_wide"};
    for (int i = 0; i < 2; i++) {
        size_t count = (size_t)imgs[i].width * imgs[i].height * 3;
        float *want = read_floats(tags[i], "guided-gradcam.saliency", count);
        double d = max_diff(fx_result_saliency(r, (size_t)i, 0), want, count);
        if (d > TOLERANCE)
            fail_msg("%s in a batch of two differs from its reference by %g", tags[i], d);
        free(want);
        fx_image_free(&imgs[i]);
    }
    fx_result_free(r);
    fx_model_free(m);
}

static void test_no_relu_refused(void **state)
{
    (void)state;
    fx_model *m = load_model("guided_no_relu.pt");
    fx_image img = {0};
    read_image("sq", 64, 64, &img);
    fx_gradcam_options o;
    fx_gradcam_options_init(&o);
    static const int32_t methods[] = {FX_CAM_GUIDED_BACKPROP};
    o.methods = methods;
    o.method_count = 1;
    fx_result *r = NULL;
    assert_int_equal(fx_gradcam_compute(m, &img, 1, &o, &r), FX_ERR_MODEL);
    assert_null(r);
    const char *msg = fx_last_error();
    printf("# %s\n", msg);
    assert_non_null(strstr(msg, "no aten::relu"));
    assert_non_null(strstr(msg, "hardswish"));
    assert_non_null(strstr(msg, "plain input gradient"));
    fx_image_free(&img);
    fx_model_free(m);
}

/* deprocess_image by hand: x = (0, 1, 2, 3): mean 1.5, population std
 * sqrt(1.25); (x - 1.5) / (sqrt(1.25) + 1e-5) * 0.1 + 0.5. */
static void test_deprocess_by_hand(void **state)
{
    (void)state;
    const float x[4] = {0, 1, 2, 3};
    float out[4];
    fx__guided_deprocess(x, 4, out);
    double s = sqrt(1.25) + 1e-5;
    for (int e = 0; e < 4; e++)
        assert_float_equal(out[e], ((double)e - 1.5) / s * 0.1 + 0.5, 1e-7);
    const float big[2] = {-1e6f, 1e6f}; /* +-1 std: 0.4 and 0.6, no clipping */
    fx__guided_deprocess(big, 2, out);
    assert_float_equal(out[0], 0.4, 1e-6);
    assert_float_equal(out[1], 0.6, 1e-6);
    const float spike[5] = {0, 0, 0, 0, 100}; /* (100 - 20) / 40 * 0.1 + 0.5 = 0.7; zeros (-20 / 40) -> 0.45 */
    fx__guided_deprocess(spike, 5, out);
    assert_float_equal(out[4], 0.7, 1e-6);
    assert_float_equal(out[0], 0.45, 1e-6);
    const float zero[3] = {0, 0, 0}; /* no gradient: 0.5 */
    fx__guided_deprocess(zero, 3, out);
    assert_float_equal(out[1], 0.5, 0);
}

/* Guided Grad-CAM's product and the magnitude by hand: a 1x1 Grad-CAM map
 * upsamples to a flat map, which fxcam's heatmap rule makes 0; a 1x2 map
 * (0, 1) upsampled to 1x4 is (0, 0.25, 0.75, 1) (half-pixel bilinear, clamped
 * edges), already spanning [0, 1]. */
static void test_product_and_magnitude_by_hand(void **state)
{
    (void)state;
    const float gb[2 * 4] = {1, -2, 3, -4, -5, 6, -7, 8}; /* 2 channels x 1 x 4 */
    const float cam[2] = {0, 1};
    float p[8], mag[4];
    assert_int_equal(fx__guided_product(FX_CAM_GUIDED_GRADCAM, gb, 2, 1, 4, cam, 1, 2, p), FX_OK);
    const float want[8] = {0, -0.5f, 2.25f, -4, 0, 1.5f, -5.25f, 8};
    for (int e = 0; e < 8; e++)
        assert_float_equal(p[e], want[e], 1e-6);
    fx__guided_magnitude(p, 2, 1, 4, mag);
    const float want_mag[4] = {0, 1.5f, 5.25f, 8};
    for (int e = 0; e < 4; e++)
        assert_float_equal(mag[e], want_mag[e], 1e-6);
    assert_int_equal(fx__guided_product(FX_CAM_GUIDED_BACKPROP, gb, 2, 1, 4, NULL, 0, 0, p), FX_OK);
    assert_memory_equal(p, gb, sizeof gb);
    const float flat[1] = {3};
    assert_int_equal(fx__guided_product(FX_CAM_GUIDED_GRADCAM, gb, 2, 1, 4, flat, 1, 1, p), FX_OK);
    for (int e = 0; e < 8; e++)
        assert_float_equal(p[e], 0, 0);
}

/* The registry lists both with the input-gradient flag, and the names parse. */
static void test_registry(void **state)
{
    (void)state;
    int32_t id = -1;
    assert_int_equal(fx_cam_method_from_name("guided-gradcam", &id), FX_OK);
    assert_int_equal(id, FX_CAM_GUIDED_GRADCAM);
    assert_int_equal(fx_cam_method_from_name("Guided_Backprop", &id), FX_OK);
    assert_int_equal(id, FX_CAM_GUIDED_BACKPROP);
    assert_true(fx_cam_method_find(FX_CAM_GUIDED_BACKPROP)->needs & FX_CAM_NEEDS_INPUT_GRADIENTS);
    assert_false(fx_cam_method_find(FX_CAM_GUIDED_BACKPROP)->needs & FX_CAM_NEEDS_GRADIENTS);
    assert_int_equal(fx_cam_method_find(FX_CAM_GUIDED_GRADCAM)->needs,
                     FX_CAM_NEEDS_GRADIENTS | FX_CAM_NEEDS_INPUT_GRADIENTS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deprocess_by_hand),
        cmocka_unit_test(test_product_and_magnitude_by_hand),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_reference_models),
        cmocka_unit_test(test_with_channel_method),
        cmocka_unit_test(test_batch_of_two),
        cmocka_unit_test(test_no_relu_refused),
    };
    return cmocka_run_group_tests_name("guided", tests, NULL, NULL);
}
