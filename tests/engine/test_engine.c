/* The libtorch engine against an independent PyTorch reference: forward hooks
 * on the eager torchvision model, autograd, and the CAM formulas written in
 * torch (make_fixtures.py). Also layers, metadata, repeated, batched and
 * concurrent calls, and every bad input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_shim.h"

#define FIXTURE(name) FX_ENGINE_FIXTURES "/" name
#define HEAT_TOLERANCE 1e-4

static const int32_t all_methods[FX_CAM_METHOD_COUNT] = {FX_CAM_GRADCAM, FX_CAM_GRADCAM_PLUSPLUS, FX_CAM_HIRESCAM,
                                                        FX_CAM_XGRADCAM, FX_CAM_LAYERCAM};

static fx_image rgb8, gray16;

static float *read_floats(const char *tag, const char *suffix, size_t count)
{
    char path[512];
    snprintf(path, sizeof path, FX_ENGINE_FIXTURES "/%s.%s", tag, suffix);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    float *v = malloc(count * sizeof *v);
    assert_non_null(v);
    size_t got = fread(v, sizeof *v, count, f);
    fclose(f);
    if (got != count)
        fail_msg("%s: %zu floats, expected %zu", path, got, count);
    return v;
}

static void read_image(const char *name, uint32_t w, uint32_t h, uint32_t c, int32_t type, fx_image *img)
{
    assert_int_equal(fx_image_alloc(img, w, h, c, type), FX_OK);
    FILE *f = fopen(name, "rb");
    assert_non_null(f);
    assert_int_equal(fread(img->data, 1, img->stride * h, f), img->stride * h);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    read_image(FIXTURE("image_rgb8.raw"), 83, 71, 3, FX_PIXEL_U8, &rgb8);
    read_image(FIXTURE("image_gray16.raw"), 61, 77, 1, FX_PIXEL_U16, &gray16);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fx_image_free(&rgb8);
    fx_image_free(&gray16);
    return 0;
}

static fx_model *load(const char *file)
{
    char path[512];
    snprintf(path, sizeof path, FX_ENGINE_FIXTURES "/%s", file);
    fx_model_options o;
    fx_model_options_init(&o);
    o.device = getenv("FXCAM_TEST_DEVICE") ? getenv("FXCAM_TEST_DEVICE") : "cpu";
    fx_model *m = NULL;
    fx_status st = fx_model_load(path, &o, &m);
    if (st != FX_OK)
        fail_msg("loading %s: %s", file, fx_last_error());
    return m;
}

/* |a - b| <= tol * max(1, max|b|) for every element. */
static void assert_close(const char *what, const float *a, const float *b, size_t n, double tol)
{
    double scale = 1.0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)a[i] - b[i]) <= tol * scale))
            fail_msg("%s: element %zu is %.7g, reference %.7g (tolerance %g x %g)", what, i, (double)a[i],
                     (double)b[i], tol, scale);
}

static void assert_map_close(const char *what, const fx_image *map, const float *ref, double tol)
{
    for (uint32_t y = 0; y < map->height; y++) {
        const float *row = (const float *)fx__row(map, y);
        for (uint32_t x = 0; x < map->width; x++)
            if (!(fabs((double)row[x] - ref[(size_t)y * map->width + x]) <= tol))
                fail_msg("%s: pixel (%u, %u) is %.7g, reference %.7g", what, x, y, (double)row[x],
                         (double)ref[(size_t)y * map->width + x]);
    }
}

typedef struct ref_case {
    char model[128], layer[128], image[16], tag[256];
    int target, expected_target, logits, k, h, w;
} ref_case;

static void check_case(fx_model *m, const ref_case *c)
{
    const fx_image *img = strcmp(c->image, "rgb8") == 0 ? &rgb8 : &gray16;
    char what[512];
    size_t act = (size_t)c->k * c->h * c->w;

    /* Activations and gradients straight from the capture. */
    fx__shim_capture cap = {0};
    if (fx__model_capture(m, img, c->layer, c->target, &cap) != FX_OK)
        fail_msg("%s: capture: %s", c->tag, fx_last_error());
    assert_int_equal(cap.k, c->k);
    assert_int_equal(cap.h, c->h);
    assert_int_equal(cap.w, c->w);
    float *ref_act = read_floats(c->tag, "act", act);
    float *ref_grad = read_floats(c->tag, "grad", act);
    snprintf(what, sizeof what, "%s activations", c->tag);
    assert_close(what, cap.activations, ref_act, act, 1e-4);
    snprintf(what, sizeof what, "%s gradients", c->tag);
    assert_close(what, cap.gradients, ref_grad, act, 1e-4);
    fx__shim_capture_free(&cap);
    free(ref_act);
    free(ref_grad);

    /* The public path: every method from one pass. */
    fx_gradcam_options o;
    fx_gradcam_options_init(&o);
    o.layer = c->layer;
    o.target_class = c->target;
    o.methods = all_methods;
    o.method_count = FX_CAM_METHOD_COUNT;
    o.keep_raw = 1;
    fx_result *r = NULL;
    if (fx_gradcam_compute(m, img, 1, &o, &r) != FX_OK)
        fail_msg("%s: %s", c->tag, fx_last_error());
    assert_string_equal(fx_result_layer(r), c->layer);
    assert_int_equal(fx_result_target_class(r, 0), c->expected_target);
    uint32_t count = 0;
    const float *logits = fx_result_logits(r, 0, &count);
    assert_int_equal(count, c->logits);
    float *ref_logits = read_floats(c->tag, "logits", count);
    snprintf(what, sizeof what, "%s logits", c->tag);
    assert_close(what, logits, ref_logits, count, 1e-4);
    free(ref_logits);
    for (uint32_t j = 0; j < FX_CAM_METHOD_COUNT; j++) {
        const char *name = fx_cam_method_name(all_methods[j]);
        char suffix[64];
        snprintf(suffix, sizeof suffix, "%s.lowres", name);
        float *ref_low = read_floats(c->tag, suffix, (size_t)c->h * c->w);
        const fx_image *low = fx_result_lowres(r, 0, j);
        assert_int_equal(low->width, c->w);
        assert_int_equal(low->height, c->h);
        snprintf(what, sizeof what, "%s %s low-resolution map", c->tag, name);
        /* XGradCAM divides by channel sums of signed activations (BatchNorm
         * or conv outputs) that may be near zero, which magnifies the float32
         * rounding of A and G (themselves checked to 1e-4 above) up to ~1e-3. */
        double tol = all_methods[j] == FX_CAM_XGRADCAM ? 1e-2 : 1e-4;
        assert_close(what, (const float *)low->data, ref_low, (size_t)c->h * c->w, tol);
        free(ref_low);
        snprintf(suffix, sizeof suffix, "%s.heat", name);
        float *ref_heat = read_floats(c->tag, suffix, (size_t)img->width * img->height);
        const fx_image *heat = fx_result_heatmap(r, 0, j);
        assert_int_equal(heat->width, img->width);
        assert_int_equal(heat->height, img->height);
        snprintf(what, sizeof what, "%s %s heatmap", c->tag, name);
        assert_map_close(what, heat, ref_heat, all_methods[j] == FX_CAM_XGRADCAM ? tol : HEAT_TOLERANCE);
        free(ref_heat);
        assert_non_null(fx_result_raw_heatmap(r, 0, j));
    }
    fx_result_free(r);
}

static void test_matches_pytorch_reference(void **state)
{
    (void)state;
    FILE *f = fopen(FIXTURE("manifest.txt"), "r");
    assert_non_null(f);
    char loaded[128] = "";
    fx_model *m = NULL;
    ref_case c;
    int cases = 0;
    while (fscanf(f, "%127s %127s %15s %d %d %d %d %d %d %255s", c.model, c.layer, c.image, &c.target,
                  &c.expected_target, &c.logits, &c.k, &c.h, &c.w, c.tag) == 10) {
        if (strcmp(loaded, c.model) != 0) {
            fx_model_free(m);
            m = load(c.model);
            snprintf(loaded, sizeof loaded, "%s", c.model);
        }
        check_case(m, &c);
        cases++;
    }
    fclose(f);
    fx_model_free(m);
    assert_true(cases >= 30);
}

static void test_automatic_layer_and_layer_list(void **state)
{
    (void)state;
    static const char *const expected[][2] = {
        {"resnet18_traced.pt", "layer4"},       {"resnet18_scripted.pt", "layer4"},
        {"densenet121_traced.pt", "features"},  {"densenet121_scripted.pt", "features"},
        {"mobilenet_v3_small_traced.pt", "features"}, {"efficientnet_b0_traced.pt", "features"},
        {"resnet50_traced.pt", "layer4"},       {"two_class_traced.pt", "layer3"}, /* from fxcam.json */
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        fx_model *m = load(expected[i][0]);
        assert_non_null(fx_model_default_layer(m));
        if (strcmp(fx_model_default_layer(m), expected[i][1]) != 0)
            fail_msg("%s: default layer %s, expected %s", expected[i][0], fx_model_default_layer(m), expected[i][1]);
        fx_model_free(m);
    }
    fx_model *m = load("resnet10_224_traced.pt");
    assert_string_equal(fx_model_device(m), "cpu");
    assert_int_equal(fx_model_class_count(m), 5);
    assert_string_equal(fx_model_class_name(m, 3), "class 3");
    assert_null(fx_model_class_name(m, 5));
    uint32_t w = 0, h = 0, c = 0;
    assert_int_equal(fx_model_input_size(m, &w, &h, &c), FX_OK);
    assert_int_equal(w, 224); /* no metadata: the defaults */
    assert_int_equal(h, 224);
    assert_int_equal(c, 3);
    fx_model_free(m);

    m = load("resnet18_scripted.pt");
    size_t n = fx_model_layer_count(m);
    assert_true(n > 50);
    int seen_conv = 0, seen_fc = 0;
    for (size_t i = 0; i < n; i++) {
        fx_layer_info info = {.struct_size = sizeof info};
        assert_int_equal(fx_model_layer(m, i, &info), FX_OK);
        if (strcmp(info.name, "layer4.1.conv2") == 0) {
            seen_conv = 1;
            assert_string_equal(info.type, "Conv2d");
            assert_int_equal(info.rank, 4);
            assert_int_equal(info.shape[1], 512);
            assert_int_equal(info.shape[2], 2); /* 64 / 32 */
            assert_true(info.is_feature_map);
        }
        if (strcmp(info.name, "fc") == 0) {
            seen_fc = 1;
            assert_string_equal(info.type, "Linear");
            assert_int_equal(info.rank, 2);
            assert_int_equal(info.shape[1], 10);
            assert_false(info.is_feature_map);
        }
    }
    assert_true(seen_conv && seen_fc);
    fx_layer_info info = {.struct_size = sizeof info};
    assert_int_equal(fx_model_layer(m, n, &info), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "out of range"));
    info.struct_size = 4;
    assert_int_equal(fx_model_layer(m, 0, &info), FX_ERR_INVALID_ARGUMENT);
    fx_model_free(m);
}

static void test_metadata(void **state)
{
    (void)state;
    fx_model *m = load("two_class_traced.pt");
    uint32_t w = 0, h = 0, c = 0;
    fx_model_input_size(m, &w, &h, &c);
    assert_int_equal(w, 64);
    assert_int_equal(h, 64);
    assert_string_equal(fx_model_class_name(m, 1), "fracture");
    assert_int_equal(fx_model_positive_class(m), 1);
    float mean[3] = {0}, std[3] = {0};
    assert_int_equal(fx_model_normalization(m, mean, std), FX_OK);
    for (int i = 0; i < 3; i++) {
        assert_float_equal(mean[i], 0.5, 0);
        assert_float_equal(std[i], 0.25, 0);
    }
    assert_int_equal(fx_model_normalization(NULL, mean, std), FX_ERR_INVALID_ARGUMENT);
    fx_model_free(m);

    m = load("gray_scripted.pt");
    fx_model_input_size(m, &w, &h, &c);
    assert_int_equal(w, 56);
    assert_int_equal(h, 72);
    assert_int_equal(c, 1);
    assert_int_equal(fx_model_positive_class(m), -1);
    fx_model_free(m);

    /* Single logit: sigmoid, two result classes. */
    m = load("single_logit_traced.pt");
    assert_int_equal(fx_model_class_count(m), 1);
    assert_int_equal(fx_model_result_class_count(m), 2);
    assert_string_equal(fx_model_class_name(m, 0), "no fracture");
    fx_result *r = NULL;
    assert_int_equal(fx_gradcam_compute(m, &rgb8, 1, NULL, &r), FX_OK);
    uint32_t count = 0;
    const float *p = fx_result_probabilities(r, 0, &count);
    const float *l = fx_result_logits(r, 0, NULL);
    assert_int_equal(count, 2);
    double sig = 1.0 / (1.0 + exp(-(double)l[0]));
    assert_float_equal(p[1], sig, 1e-6);
    assert_float_equal(p[0], 1.0 - sig, 1e-6);
    assert_int_equal(fx_result_predicted_class(r, 0), sig >= 0.5 ? 1 : 0);
    assert_float_equal(fx_result_confidence(r, 0), sig >= 0.5 ? sig : 1.0 - sig, 1e-6);
    fx_result_free(r);
    fx_model_free(m);
}

/* The same archive from a file and from memory gives the same model. */
static void test_load_from_memory(void **state)
{
    (void)state;
    FILE *f = fopen(FIXTURE("two_class_traced.pt"), "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *bytes = malloc((size_t)size);
    assert_non_null(bytes);
    assert_int_equal(fread(bytes, 1, (size_t)size, f), (size_t)size);
    fclose(f);

    fx_model_options o;
    fx_model_options_init(&o);
    o.device = "cpu";
    fx_model *from_memory = NULL;
    assert_int_equal(fx_model_load_memory(bytes, (size_t)size, &o, &from_memory), FX_OK);
    memset(bytes, 0, (size_t)size); /* the model must not keep pointing at the caller's bytes */
    fx_model *from_file = load("two_class_traced.pt");
    assert_string_equal(fx_model_class_name(from_memory, 1), "fracture");
    fx_result *a = NULL, *b = NULL;
    assert_int_equal(fx_gradcam_compute(from_memory, &rgb8, 1, NULL, &a), FX_OK);
    assert_int_equal(fx_gradcam_compute(from_file, &rgb8, 1, NULL, &b), FX_OK);
    const fx_image *x = fx_result_heatmap(a, 0, 0), *y = fx_result_heatmap(b, 0, 0);
    assert_memory_equal(x->data, y->data, x->stride * x->height);
    fx_result_free(a);
    fx_result_free(b);
    fx_model_free(from_memory);
    fx_model_free(from_file);

    fx_model *m = NULL;
    assert_int_equal(fx_model_load_memory(NULL, 10, &o, &m), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "data is NULL"));
    assert_int_equal(fx_model_load_memory(bytes, 0, &o, &m), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "size is 0"));
    assert_int_equal(fx_model_load_memory(bytes, (size_t)size, &o, &m), FX_ERR_FORMAT); /* zeroed bytes */
    assert_non_null(strstr(fx_last_error(), "<memory>"));
    assert_null(m);
    free(bytes);
}

static int maps_equal(const fx_result *a, size_t ia, const fx_result *b, size_t ib, double tol)
{
    for (uint32_t j = 0; j < fx_result_method_count(a); j++) {
        const fx_image *x = fx_result_heatmap(a, ia, j), *y = fx_result_heatmap(b, ib, j);
        for (uint32_t row = 0; row < x->height; row++)
            for (uint32_t col = 0; col < x->width; col++)
                if (fabs(((const float *)fx__row(x, row))[col] - ((const float *)fx__row(y, row))[col]) > tol)
                    return 0;
    }
    return 1;
}

static void test_repeated_calls(void **state)
{
    (void)state;
    fx_model *m = load("densenet121_scripted.pt");
    fx_gradcam_options o;
    fx_gradcam_options_init(&o);
    o.methods = all_methods;
    o.method_count = 2;
    fx_result *first = NULL;
    assert_int_equal(fx_gradcam_compute(m, &rgb8, 1, &o, &first), FX_OK);
    for (int i = 0; i < 50; i++) {
        fx_result *r = NULL;
        o.layer = i % 2 ? "features.denseblock4.denselayer16" : NULL;
        if (fx_gradcam_compute(m, &rgb8, 1, &o, &r) != FX_OK)
            fail_msg("call %d: %s", i, fx_last_error());
        if (i % 2 == 0)
            assert_true(maps_equal(first, 0, r, 0, 0.0));
        fx_result_free(r);
    }
    fx_result_free(first);
    fx_model_free(m);
}

static void test_batch_equals_single(void **state)
{
    (void)state;
    fx_model *m = load("resnet18_scripted.pt");
    fx_image images[3] = {rgb8, gray16, rgb8};
    fx_gradcam_options o;
    fx_gradcam_options_init(&o);
    o.methods = all_methods;
    o.method_count = FX_CAM_METHOD_COUNT;
    o.batch_size = 2;
    fx_result *batch = NULL;
    assert_int_equal(fx_gradcam_compute(m, images, 3, &o, &batch), FX_OK);
    assert_int_equal(fx_result_count(batch), 3);
    for (size_t i = 0; i < 3; i++) {
        fx_result *single = NULL;
        assert_int_equal(fx_gradcam_compute(m, &images[i], 1, &o, &single), FX_OK);
        assert_int_equal(fx_result_predicted_class(batch, i), fx_result_predicted_class(single, 0));
        assert_close("batch logits", fx_result_logits(batch, i, NULL), fx_result_logits(single, 0, NULL), 10, 1e-4);
        assert_true(maps_equal(batch, i, single, 0, 1e-4));
        const fx_image *h = fx_result_heatmap(batch, i, 0);
        assert_int_equal(h->width, images[i].width);
        assert_int_equal(h->height, images[i].height);
        fx_result_free(single);
    }
    fx_result_free(batch);
    fx_model_free(m);
}

typedef struct thread_job {
    fx_model *model;
    const fx_result *expected;
    int failures;
} thread_job;

static void *thread_main(void *arg)
{
    thread_job *job = arg;
    for (int i = 0; i < 25; i++) {
        fx_result *r = NULL;
        if (fx_gradcam_compute(job->model, &rgb8, 1, NULL, &r) != FX_OK || !maps_equal(job->expected, 0, r, 0, 0.0))
            job->failures++;
        fx_result_free(r);
    }
    return NULL;
}

static void test_threads_share_one_model(void **state)
{
    (void)state;
    fx_model *m = load("mobilenet_v3_small_traced.pt");
    fx_result *expected = NULL;
    assert_int_equal(fx_gradcam_compute(m, &rgb8, 1, NULL, &expected), FX_OK);
    pthread_t threads[4];
    thread_job jobs[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (thread_job){m, expected, 0};
        assert_int_equal(pthread_create(&threads[t], NULL, thread_main, &jobs[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        assert_int_equal(jobs[t].failures, 0);
    }
    fx_result_free(expected);
    fx_model_free(m);
}

/* Records the calling thread's executor setting in the middle of a run (the
 * score callback runs between the forward and the gradient pass). */
static fx_status record_setting(void *user, const float *logits, uint32_t n, uint32_t classes, float *weights)
{
    (void)logits;
    *(int *)user = fx__shim_executor_optimized();
    for (uint32_t i = 0; i < n; i++)
        weights[(size_t)i * classes] = 1.0f;
    return FX_OK;
}

typedef struct setting_job {
    fx_model *model;
    const float *input;
    int during, after;
    fx_status status;
} setting_job;

static void *run_on_fresh_thread(void *arg)
{
    setting_job *job = arg;
    fx__shim_capture cap = {0};
    job->during = -1;
    job->status = fx__shim_run(fx__model_shim(job->model), job->input, 1, "layer4", record_setting, &job->during,
                               &cap);
    fx__shim_capture_free(&cap);
    job->after = fx__shim_executor_optimized();
    return NULL;
}

/* libtorch's switch for graph-executor optimizations is thread-local: fxcam
 * must turn it off for its own runs on whichever thread calls (a thread that
 * never loaded a model included), and leave every thread's setting as it was. */
static void test_executor_optimizations_off_on_every_thread(void **state)
{
    (void)state;
    assert_int_equal(fx__shim_executor_optimized(), 1); /* libtorch's default */
    fx_model *m = load("resnet18_traced.pt");
    assert_int_equal(fx__shim_executor_optimized(), 1); /* loading changed nothing */
    uint32_t w, h, c;
    fx_model_input_size(m, &w, &h, &c);
    float *input = calloc((size_t)w * h * c, sizeof *input);
    assert_non_null(input);
    setting_job job = {m, input, -1, -1, FX_ERR_INTERNAL};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_on_fresh_thread, &job), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(job.status, FX_OK);
    assert_int_equal(job.during, 0); /* off while fxcam's graph runs */
    assert_int_equal(job.after, 1);  /* restored afterwards */
    run_on_fresh_thread(&job);       /* the same on this thread */
    assert_int_equal(job.during, 0);
    assert_int_equal(job.after, 1);
    free(input);
    fx_model_free(m);
}

static void expect_load_error(const char *file, fx_status status, const char *needle)
{
    fx_model *m = (fx_model *)(uintptr_t)1; /* must stay untouched */
    char path[512];
    snprintf(path, sizeof path, FX_ENGINE_FIXTURES "/%s", file);
    fx_model_options o;
    fx_model_options_init(&o);
    o.device = "cpu";
    fx_status st = fx_model_load(path, &o, &m);
    if (st != status || !strstr(fx_last_error(), needle))
        fail_msg("%s: status %d, message '%s'; expected %d with '%s'", file, (int)st, fx_last_error(), (int)status,
                 needle);
    assert_ptr_equal(m, (fx_model *)(uintptr_t)1);
}

static void test_bad_models(void **state)
{
    (void)state;
    expect_load_error("missing.pt", FX_ERR_IO, "missing.pt");
    expect_load_error("not_a_model.pt", FX_ERR_FORMAT, "not a readable TorchScript archive");
    expect_load_error("truncated.pt", FX_ERR_FORMAT, "not a readable TorchScript archive");
    expect_load_error("bad_output.pt", FX_ERR_MODEL, "is not [batch, classes]");
    expect_load_error("bad_json.pt", FX_ERR_MODEL, "fxcam.json is not valid JSON");
    expect_load_error("bad_type.pt", FX_ERR_MODEL, "\"mean\"");
    expect_load_error("bad_names.pt", FX_ERR_MODEL, "\"class_names\" has 2 names but the model has 3 classes");

    fx_model *m = NULL;
    fx_model_options o;
    fx_model_options_init(&o);
    o.device = "tpu";
    assert_int_equal(fx_model_load(FIXTURE("nan_logits.pt"), &o, &m), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "auto, cpu, cuda, cuda:N"));
    o.device = "cpu";
    o.threads = -2;
    assert_int_equal(fx_model_load(FIXTURE("nan_logits.pt"), &o, &m), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "threads"));
    assert_int_equal(fx_model_load(NULL, NULL, &m), FX_ERR_INVALID_ARGUMENT);
    assert_int_equal(fx_model_load(FIXTURE("nan_logits.pt"), NULL, NULL), FX_ERR_INVALID_ARGUMENT);
    assert_null(m);
    fx_model_free(NULL);
    fx_result_free(NULL);
}

static void expect_compute_error(fx_model *m, const fx_image *img, const fx_gradcam_options *o, fx_status status,
                                 const char *needle)
{
    fx_result *r = (fx_result *)(uintptr_t)1;
    fx_status st = fx_gradcam_compute(m, img, 1, o, &r);
    if (st != status || !strstr(fx_last_error(), needle))
        fail_msg("status %d, message '%s'; expected %d with '%s'", (int)st, fx_last_error(), (int)status, needle);
    assert_ptr_equal(r, (fx_result *)(uintptr_t)1);
}

static void test_bad_requests(void **state)
{
    (void)state;
    fx_model *m = load("resnet18_traced.pt");
    fx_gradcam_options o;
    fx_gradcam_options_init(&o);
    o.layer = "layer5";
    expect_compute_error(m, &rgb8, &o, FX_ERR_LAYER, "not found; closest: layer");
    assert_non_null(strstr(fx_last_error(), "layer4"));
    o.layer = "layer4.1.conv3";
    expect_compute_error(m, &rgb8, &o, FX_ERR_LAYER, "layer4.1.conv2");
    o.layer = "fc";
    expect_compute_error(m, &rgb8, &o, FX_ERR_LAYER, "not a 4-D");
    o.layer = NULL;
    o.target_class = 10;
    expect_compute_error(m, &rgb8, &o, FX_ERR_INVALID_ARGUMENT, "valid: -1 (predicted) or 0..9");
    o.target_class = -2;
    expect_compute_error(m, &rgb8, &o, FX_ERR_INVALID_ARGUMENT, "out of range");
    o.target_class = -1;
    int32_t bad_method = 9;
    o.methods = &bad_method;
    o.method_count = 1;
    expect_compute_error(m, &rgb8, &o, FX_ERR_INVALID_ARGUMENT, "methods[0] = 9");
    o.methods = NULL;
    fx_image tiny = rgb8;
    tiny.width = 1;
    expect_compute_error(m, &tiny, &o, FX_ERR_INVALID_ARGUMENT, "at least 2x2");
    fx_image empty = rgb8;
    empty.height = 0;
    expect_compute_error(m, &empty, &o, FX_ERR_INVALID_ARGUMENT, "empty");
    fx_image nodata = rgb8;
    nodata.data = NULL;
    expect_compute_error(m, &nodata, &o, FX_ERR_INVALID_ARGUMENT, "data is NULL");
    fx_result *r = NULL;
    assert_int_equal(fx_gradcam_compute(m, &rgb8, 0, NULL, &r), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "n is 0"));
    assert_int_equal(fx_gradcam_compute(NULL, &rgb8, 1, NULL, &r), FX_ERR_INVALID_ARGUMENT);
    assert_int_equal(fx_gradcam_compute(m, &rgb8, 1, NULL, NULL), FX_ERR_INVALID_ARGUMENT);
    assert_null(r);
    fx_model_free(m);

    m = load("single_logit_traced.pt");
    o.target_class = 2;
    expect_compute_error(m, &rgb8, &o, FX_ERR_INVALID_ARGUMENT, "0 = negative, 1 = positive");
    fx_model_free(m);

    m = load("nan_logits.pt");
    expect_compute_error(m, &rgb8, NULL, FX_ERR_NUMERIC, "logit 1 of image 0 is nan");
    fx_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_pytorch_reference),
        cmocka_unit_test(test_automatic_layer_and_layer_list),
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_load_from_memory),
        cmocka_unit_test(test_repeated_calls),
        cmocka_unit_test(test_batch_equals_single),
        cmocka_unit_test(test_threads_share_one_model),
        cmocka_unit_test(test_executor_optimizations_off_on_every_thread),
        cmocka_unit_test(test_bad_models),
        cmocka_unit_test(test_bad_requests),
    };
    return cmocka_run_group_tests_name("engine", tests, setup, teardown);
}
