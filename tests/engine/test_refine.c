/* fxcam's refinements (aug_smooth, eigen_smooth, several target layers)
 * against an independent eager PyTorch reference with hooks that follows
 * pytorch-grad-cam's base_cam.py (make_refine_fixtures.py), on random-init
 * ResNet-18 (traced and scripted), DenseNet-121 and MobileNetV3 (traced), a
 * non-square input; and every bad refinement option. */
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
#include "fxcam.h"

#define FIXTURE(name) FX_ENGINE_FIXTURES "/" name
#define HEAT_TOLERANCE 1e-4

static void read_image(const char *name, uint32_t w, uint32_t h, fx_image *img)
{
    char file[128];
    snprintf(file, sizeof file, "refine_image_%s.raw", name);
    read_raw_image(file, w, h, 3, FX_PIXEL_U8, img);
}

/* Splits "a,b" into at most 4 names (in place). */
static uint32_t split_layers(char *list, const char *names[4])
{
    uint32_t n = 0;
    for (char *p = strtok(list, ","); p && n < 4; p = strtok(NULL, ","))
        names[n++] = p;
    return n;
}

typedef struct refine_case {
    char file[128], layers[160], method[32], tag[64];
    int aug, eigen, width, height, target;
} refine_case;

static void check_case(fx_model *m, const refine_case *c)
{
    fx_image img = {0};
    read_image(c->width == c->height ? "square" : "wide", (uint32_t)c->width, (uint32_t)c->height, &img);
    char layers[160], joined[160];
    snprintf(layers, sizeof layers, "%s", c->layers);
    const char *names[4];
    uint32_t count = split_layers(layers, names);
    int32_t method;
    assert_int_equal(fx_cam_method_from_name(c->method, &method), FX_OK);
    fx_gradcam_options o;
    fx_gradcam_options_init(&o);
    o.methods = &method;
    o.method_count = 1;
    o.aug_smooth = c->aug;
    o.eigen_smooth = c->eigen;
    o.layers = names;
    o.layer_count = count;
    fx_result *r = NULL;
    if (fx_gradcam_compute(m, &img, 1, &o, &r) != FX_OK)
        fail_msg("%s (%s %s %s aug %d eigen %d): %s", c->tag, c->file, c->layers, c->method, c->aug, c->eigen,
                 fx_last_error());
    snprintf(joined, sizeof joined, "%s", c->layers);
    assert_string_equal(fx_result_layer(r), joined);
    assert_int_equal(fx_result_target_class(r, 0), c->target);
    const fx_image *heat = fx_result_heatmap(r, 0, 0);
    assert_int_equal(heat->width, (uint32_t)c->width);
    assert_int_equal(heat->height, (uint32_t)c->height);
    float *ref = read_floats(c->tag, "heat", (size_t)c->width * c->height);
    double worst = 0.0;
    for (uint32_t y = 0; y < heat->height; y++) {
        const float *row = (const float *)(const void *)((const uint8_t *)heat->data + y * heat->stride);
        for (uint32_t x = 0; x < heat->width; x++)
            worst = fmax(worst, fabs((double)row[x] - ref[(size_t)y * heat->width + x]));
    }
    if (!(worst <= HEAT_TOLERANCE))
        fail_msg("%s (%s %s %s aug %d eigen %d): largest difference %.3g from the reference", c->tag, c->file,
                 c->layers, c->method, c->aug, c->eigen, worst);
    /* With refinements the low-resolution map is the combined map at the model input size. */
    if (c->aug || count > 1) {
        const fx_image *low = fx_result_lowres(r, 0, 0);
        assert_int_equal(low->width, (uint32_t)c->width);
        assert_int_equal(low->height, (uint32_t)c->height);
    }
    free(ref);
    fx_result_free(r);
    fx_image_free(&img);
}

static void test_reference_cases(void **state)
{
    (void)state;
    FILE *f = fopen(FIXTURE("refine.txt"), "r");
    assert_non_null(f);
    refine_case c;
    char loaded[128] = "";
    fx_model *m = NULL;
    int cases = 0;
    while (fscanf(f, "%127s %159s %31s %d %d %d %d %d %63s", c.file, c.layers, c.method, &c.aug, &c.eigen, &c.width,
                  &c.height, &c.target, c.tag) == 9) {
        m = reload_model(m, loaded, sizeof loaded, c.file);
        check_case(m, &c);
        cases++;
    }
    fclose(f);
    fx_model_free(m);
    assert_true(cases >= 40);
}

typedef struct progress_log {
    uint64_t first_total, last_done, last_total;
    int calls;
} progress_log;

static int record_progress(void *user, uint64_t done, uint64_t total)
{
    progress_log *log = user;
    if (log->calls++ == 0)
        log->first_total = total;
    log->last_done = done;
    log->last_total = total;
    return 0;
}

/* Score-CAM over two layers: the total counts every layer's channels
 * (512 + 256 on ResNet-18's layer4 and layer3) and is reached; eigen_smooth
 * takes the gradient-free weights too. */
static void test_progress_counts_every_layer(void **state)
{
    (void)state;
    fx_model *m = load_model("refine_resnet18_traced.pt");
    fx_image img = {0};
    read_image("square", 64, 64, &img);
    const char *names[2] = {"layer4", "layer3"};
    int32_t method = FX_CAM_SCORECAM;
    progress_log log = {0};
    fx_gradcam_options o;
    fx_gradcam_options_init(&o);
    o.methods = &method;
    o.method_count = 1;
    o.layers = names;
    o.layer_count = 2;
    o.eigen_smooth = 1;
    o.channel_batch_size = 128;
    o.progress = record_progress;
    o.progress_user = &log;
    fx_result *r = NULL;
    if (fx_gradcam_compute(m, &img, 1, &o, &r) != FX_OK)
        fail_msg("%s", fx_last_error());
    assert_int_equal(log.first_total, 768);
    assert_int_equal(log.last_done, 768);
    assert_int_equal(log.last_total, 768);
    fx_result_free(r);
    fx_image_free(&img);
    fx_model_free(m);
}

static void expect_refused(fx_model *m, const fx_image *img, const fx_gradcam_options *o, fx_status status,
                           const char *needle)
{
    fx_result *r = NULL;
    assert_int_equal(fx_gradcam_compute(m, img, 1, o, &r), status);
    assert_null(r);
    if (!strstr(fx_last_error(), needle))
        fail_msg("message '%s' lacks '%s'", fx_last_error(), needle);
}

static void test_bad_layers_are_refused(void **state)
{
    (void)state;
    fx_model *m = load_model("refine_resnet18_traced.pt");
    fx_image img = {0};
    read_image("square", 64, 64, &img);
    fx_gradcam_options o;
    const char *twice[2] = {"layer4", "layer4"};
    const char *unknown[2] = {"layer4", "layer5"};
    const char *with_null[2] = {"layer4", NULL};
    const char *many[17];
    for (int i = 0; i < 17; i++)
        many[i] = "layer4";

    fx_gradcam_options_init(&o);
    o.layers = twice;
    o.layer_count = 2;
    expect_refused(m, &img, &o, FX_ERR_INVALID_ARGUMENT, "given twice");
    o.layers = unknown;
    expect_refused(m, &img, &o, FX_ERR_LAYER, "layer5");
    o.layers = with_null;
    expect_refused(m, &img, &o, FX_ERR_INVALID_ARGUMENT, "layers[1] is NULL");
    o.layers = many;
    o.layer_count = 17;
    expect_refused(m, &img, &o, FX_ERR_INVALID_ARGUMENT, "1..16");
    o.layer_count = 0;
    expect_refused(m, &img, &o, FX_ERR_INVALID_ARGUMENT, "layer_count 0");
    o.layers = NULL;
    o.layer_count = 2;
    expect_refused(m, &img, &o, FX_ERR_INVALID_ARGUMENT, "layers is NULL");
    o.layers = twice;
    o.layer_count = 1;
    o.layer = "layer3";
    expect_refused(m, &img, &o, FX_ERR_INVALID_ARGUMENT, "both layer");
    fx_image_free(&img);
    fx_model_free(m);
}

/* One layer through options.layers is the plain single-layer call. */
static void test_one_listed_layer_equals_layer(void **state)
{
    (void)state;
    fx_model *m = load_model("refine_resnet18_traced.pt");
    fx_image img = {0};
    read_image("square", 64, 64, &img);
    const char *names[1] = {"layer3"};
    fx_gradcam_options a, b;
    fx_gradcam_options_init(&a);
    a.layer = "layer3";
    fx_gradcam_options_init(&b);
    b.layers = names;
    b.layer_count = 1;
    fx_result *ra = NULL, *rb = NULL;
    assert_int_equal(fx_gradcam_compute(m, &img, 1, &a, &ra), FX_OK);
    assert_int_equal(fx_gradcam_compute(m, &img, 1, &b, &rb), FX_OK);
    const fx_image *ha = fx_result_heatmap(ra, 0, 0), *hb = fx_result_heatmap(rb, 0, 0);
    assert_memory_equal(ha->data, hb->data, ha->stride * ha->height);
    assert_int_equal(fx_result_lowres(rb, 0, 0)->width, fx_result_lowres(ra, 0, 0)->width);
    fx_result_free(ra);
    fx_result_free(rb);
    fx_image_free(&img);
    fx_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_cases),
        cmocka_unit_test(test_progress_counts_every_layer),
        cmocka_unit_test(test_bad_layers_are_refused),
        cmocka_unit_test(test_one_listed_layer_equals_layer),
    };
    return cmocka_run_group_tests_name("refine", tests, NULL, NULL);
}
