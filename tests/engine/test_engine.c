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
#include "engine_test_support.h"

#define FIXTURE(name) FX_ENGINE_FIXTURES "/" name
#define HEAT_TOLERANCE 1e-4

static const int32_t all_methods[FX_CAM_METHOD_COUNT] = {
    FX_CAM_GRADCAM,  FX_CAM_GRADCAM_PLUSPLUS,    FX_CAM_HIRESCAM,     FX_CAM_XGRADCAM,
    FX_CAM_LAYERCAM, FX_CAM_GRADCAM_ELEMENTWISE, FX_CAM_EIGENGRADCAM, FX_CAM_EIGENCAM};

static fx_image rgb8, gray16;

static int setup(void **state)
{
    (void)state;
    read_raw_image("image_rgb8.raw", 83, 71, 3, FX_PIXEL_U8, &rgb8);
    read_raw_image("image_gray16.raw", 61, 77, 1, FX_PIXEL_U16, &gray16);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fx_image_free(&rgb8);
    fx_image_free(&gray16);
    return 0;
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
        m = reload_model(m, loaded, sizeof loaded, c.model);
        check_case(m, &c);
        cases++;
    }
    fclose(f);
    fx_model_free(m);
    assert_true(cases >= 42);
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
        fx_model *m = load_model(expected[i][0]);
        assert_non_null(fx_model_default_layer(m));
        if (strcmp(fx_model_default_layer(m), expected[i][1]) != 0)
            fail_msg("%s: default layer %s, expected %s", expected[i][0], fx_model_default_layer(m), expected[i][1]);
        fx_model_free(m);
    }
    fx_model *m = load_model("resnet10_224_traced.pt");
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

    m = load_model("resnet18_scripted.pt");
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
    /* A caller built before is_feature_map existed: gets the fields it
     * knows, and the bytes past its struct stay untouched. */
    fx_layer_info full = {.struct_size = sizeof full};
    assert_int_equal(fx_model_layer(m, 0, &full), FX_OK);
    fx_layer_info old;
    memset(&old, 0xA5, sizeof old);
    old.struct_size = offsetof(fx_layer_info, is_feature_map);
    assert_int_equal(fx_model_layer(m, 0, &old), FX_OK);
    assert_string_equal(old.name, full.name);
    assert_string_equal(old.type, full.type);
    assert_int_equal(old.rank, full.rank);
    assert_memory_equal(old.shape, full.shape, sizeof old.shape);
    int32_t untouched;
    memset(&untouched, 0xA5, sizeof untouched);
    assert_memory_equal(&old.is_feature_map, &untouched, sizeof untouched);
    fx_model_free(m);
}

static void test_metadata(void **state)
{
    (void)state;
    fx_model *m = load_model("two_class_traced.pt");
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

    m = load_model("gray_scripted.pt");
    fx_model_input_size(m, &w, &h, &c);
    assert_int_equal(w, 56);
    assert_int_equal(h, 72);
    assert_int_equal(c, 1);
    assert_int_equal(fx_model_positive_class(m), -1);
    fx_model_free(m);

    /* Single logit: sigmoid, two result classes. */
    m = load_model("single_logit_traced.pt");
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
    fx_model *from_file = load_model("two_class_traced.pt");
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
    fx_model *m = load_model("densenet121_scripted.pt");
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
    fx_model *m = load_model("resnet18_scripted.pt");
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
    fx_model *m = load_model("mobilenet_v3_small_traced.pt");
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

typedef struct setting_job {
    fx_model *model;
    const float *input;
    int during, during_backward, after;
    fx_status status;
} setting_job;

/* A forward and a backward as the engine runs them; the shim records the
 * executor setting each ran with. */
static void *run_on_fresh_thread(void *arg)
{
    setting_job *job = arg;
    fx__shim_capture cap = {0};
    job->during = job->during_backward = -1;
    job->status = fx__shim_forward(fx__model_shim(job->model), job->input, 1, "layer4", FX__FORWARD_GRADIENTS, &cap);
    job->during = fx__shim_last_run_optimized();
    if (job->status == FX_OK) {
        float *weights = calloc(cap.classes, sizeof(float));
        assert_non_null(weights);
        weights[0] = 1.0f;
        job->status = fx__shim_backward(&cap, weights);
        job->during_backward = fx__shim_last_run_optimized();
        free(weights);
    }
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
    fx_model *m = load_model("resnet18_traced.pt");
    assert_int_equal(fx__shim_executor_optimized(), 1); /* loading changed nothing */
    uint32_t w, h, c;
    fx_model_input_size(m, &w, &h, &c);
    float *input = calloc((size_t)w * h * c, sizeof *input);
    assert_non_null(input);
    setting_job job = {m, input, -1, -1, -1, FX_ERR_INTERNAL};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_on_fresh_thread, &job), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(job.status, FX_OK);
    assert_int_equal(job.during, 0);          /* off while fxcam's graph runs */
    assert_int_equal(job.during_backward, 0); /* and while its gradient is taken */
    assert_int_equal(job.after, 1);           /* restored afterwards */
    run_on_fresh_thread(&job);                /* the same on this thread */
    assert_int_equal(job.during, 0);
    assert_int_equal(job.during_backward, 0);
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
    fx_model *m = load_model("resnet18_traced.pt");
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
    int32_t bad_method = 99;
    o.methods = &bad_method;
    o.method_count = 1;
    expect_compute_error(m, &rgb8, &o, FX_ERR_INVALID_ARGUMENT, "methods[0] = 99");
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

    m = load_model("single_logit_traced.pt");
    o.target_class = 2;
    expect_compute_error(m, &rgb8, &o, FX_ERR_INVALID_ARGUMENT, "0 = negative, 1 = positive");
    fx_model_free(m);

    m = load_model("nan_logits.pt");
    expect_compute_error(m, &rgb8, NULL, FX_ERR_NUMERIC, "logit 1 of image 0 is nan");
    fx_model_free(m);
}

/* ---- Issue 8: no silent wrong answers ------------------------------------ */

static fx_model *load_with(const char *file, int32_t output_kind, int32_t strict, fx_status *status)
{
    char path[512];
    snprintf(path, sizeof path, FX_ENGINE_FIXTURES "/%s", file);
    fx_model_options o;
    fx_model_options_init(&o);
    o.device = getenv("FXCAM_TEST_DEVICE") ? getenv("FXCAM_TEST_DEVICE") : "cpu";
    o.output_kind = output_kind;
    o.strict = strict;
    fx_model *m = NULL;
    *status = fx_model_load(path, &o, &m);
    return m;
}

/* Index of the first model warning with this code, or -1. */
static long model_warning_with(const fx_model *m, int32_t code)
{
    for (size_t i = 0; i < fx_model_warning_count(m); i++) {
        int32_t c = -1;
        assert_non_null(fx_model_warning(m, i, &c));
        if (c == code)
            return (long)i;
    }
    return -1;
}

/* Models ending in softmax, log_softmax or sigmoid report what the model
 * itself outputs (outputs.txt, computed by torch from the exported model);
 * their maps and logits are those of the bare network (the manifest cases
 * act_*). fxcam.json "output", the option, and the probe's guess. */
static void test_output_kinds(void **state)
{
    (void)state;
    FILE *f = fopen(FIXTURE("outputs.txt"), "r");
    assert_non_null(f);
    char file[128], tag[256];
    int option, kind, predicted, warn, cases = 0;
    while (fscanf(f, "%127s %d %d %d %d %255s", file, &option, &kind, &predicted, &warn, tag) == 6) {
        fx_status st;
        fx_model *m = load_with(file, option, 0, &st);
        if (st != FX_OK)
            fail_msg("%s: %s", file, fx_last_error());
        if (fx_model_output_kind(m) != kind)
            fail_msg("%s option %d: output kind %d, expected %d", file, option, (int)fx_model_output_kind(m), kind);
        if (warn) {
            long w = model_warning_with(m, warn);
            if (w < 0)
                fail_msg("%s: no warning %d", file, warn);
            const char *text = fx_model_warning(m, (size_t)w, NULL);
            assert_non_null(strstr(text, "\"output\""));
        } else if (fx_model_warning_count(m) != 0) {
            fail_msg("%s: unexpected warning '%s'", file, fx_model_warning(m, 0, NULL));
        }
        fx_result *r = NULL;
        if (fx_gradcam_compute(m, &rgb8, 1, NULL, &r) != FX_OK)
            fail_msg("%s: %s", file, fx_last_error());
        uint32_t count = 0;
        const float *p = fx_result_probabilities(r, 0, &count);
        float *expected = read_floats(tag, "probs", count);
        char what[300];
        snprintf(what, sizeof what, "%s option %d probabilities", file, option);
        assert_close(what, p, expected, count, 1e-5);
        if (fx_result_predicted_class(r, 0) != predicted)
            fail_msg("%s: predicted %d, expected %d", file, (int)fx_result_predicted_class(r, 0), predicted);
        assert_float_equal(fx_result_confidence(r, 0), expected[predicted], 1e-5);
        /* A saturated softmax still gives a map (the paper's pre-softmax score). */
        const fx_image *heat = fx_result_heatmap(r, 0, 0);
        float peak = 0.0f;
        for (uint32_t y = 0; y < heat->height; y++)
            for (uint32_t x = 0; x < heat->width; x++)
                peak = fmaxf(peak, ((const float *)fx__row(heat, y))[x]);
        if (peak != 1.0f)
            fail_msg("%s: heatmap peak %g, expected 1 (not blank)", file, (double)peak);
        free(expected);
        fx_result_free(r);
        fx_model_free(m);
        cases++;
    }
    fclose(f);
    assert_int_equal(cases, 10);

    /* A plain logits model: logits, no warning. */
    fx_model *m = load_model("resnet18_traced.pt");
    assert_int_equal(fx_model_output_kind(m), FX_OUTPUT_LOGITS);
    assert_int_equal(fx_model_warning_count(m), 0);
    assert_null(fx_model_warning(m, 0, NULL));
    fx_model_free(m);
    assert_int_equal(fx_model_output_kind(NULL), FX_OUTPUT_AUTO);
    assert_int_equal(fx_model_warning_count(NULL), 0);
    fx_status st;
    m = load_with("resnet18_traced.pt", 3, 0, &st);
    assert_int_equal(st, FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "output_kind 3"));
    assert_null(m);
}

/* Traced or scripted without model.eval(): a warning that says so, and the
 * eval-mode answer (the eager network in eval mode with the saved running
 * statistics, computed by torch), the same on every run. */
static void test_training_mode_exports(void **state)
{
    (void)state;
    static const char *const files[] = {"training_mode_traced.pt", "training_mode_scripted.pt"};
    for (size_t i = 0; i < 2; i++) {
        fx_status st;
        fx_model *m = load_with(files[i], FX_OUTPUT_AUTO, 0, &st);
        if (st != FX_OK)
            fail_msg("%s: %s", files[i], fx_last_error());
        long w = model_warning_with(m, FX_WARN_TRAINING_MODE);
        if (w < 0)
            fail_msg("%s: no training-mode warning", files[i]);
        const char *text = fx_model_warning(m, (size_t)w, NULL);
        assert_non_null(strstr(text, "model.eval()"));
        assert_non_null(strstr(text, "fxcam evaluates it in eval mode"));
        char tag[256];
        snprintf(tag, sizeof tag, "%.*s.6.-1", (int)(strlen(files[i]) - 3), files[i]);
        float *expected = read_floats(tag, "logits", 3);
        fx_result *first = NULL;
        assert_int_equal(fx_gradcam_compute(m, &rgb8, 1, NULL, &first), FX_OK);
        assert_close("training-mode export, eval-mode logits", fx_result_logits(first, 0, NULL), expected, 3, 1e-4);
        for (int run = 0; run < 4; run++) {
            fx_result *r = NULL;
            assert_int_equal(fx_gradcam_compute(m, &rgb8, 1, NULL, &r), FX_OK);
            assert_memory_equal(fx_result_logits(r, 0, NULL), fx_result_logits(first, 0, NULL), 3 * sizeof(float));
            assert_true(maps_equal(first, 0, r, 0, 0.0));
            fx_result_free(r);
        }
        free(expected);
        fx_result_free(first);
        fx_model_free(m);

        m = load_with(files[i], FX_OUTPUT_AUTO, 1, &st);
        assert_int_equal(st, FX_ERR_MODEL);
        assert_null(m);
        assert_non_null(strstr(fx_last_error(), "strict"));
        assert_non_null(strstr(fx_last_error(), "model.eval()"));
    }
}

/* Float images must hold [0,1]. */
static void test_float_input_contract(void **state)
{
    (void)state;
    fx_model *m = load_model("two_class_traced.pt");
    fx_image f = {0};
    assert_int_equal(fx_image_alloc(&f, rgb8.width, rgb8.height, 3, FX_PIXEL_F32), FX_OK);
    uint8_t lo = 255, hi = 0;
    for (uint32_t y = 0; y < f.height; y++)
        for (uint32_t x = 0; x < f.width * 3; x++) {
            uint8_t v = fx__row(&rgb8, y)[x];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            ((float *)fx__row(&f, y))[x] = v / 255.0f;
        }
    /* In range: the same answer as the 8-bit image. */
    fx_result *a = NULL, *b = NULL;
    assert_int_equal(fx_gradcam_compute(m, &f, 1, NULL, &a), FX_OK);
    assert_int_equal(fx_gradcam_compute(m, &rgb8, 1, NULL, &b), FX_OK);
    assert_close("float [0,1] vs 8-bit logits", fx_result_logits(a, 0, NULL), fx_result_logits(b, 0, NULL), 2, 1e-5);
    fx_result_free(a);
    fx_result_free(b);
    /* 0..255 floats (np.float32(cv2.imread(...))): refused, saying what to do. */
    for (uint32_t y = 0; y < f.height; y++)
        for (uint32_t x = 0; x < f.width * 3; x++)
            ((float *)fx__row(&f, y))[x] = fx__row(&rgb8, y)[x];
    char needle[128];
    snprintf(needle, sizeof needle, "image 0: float samples range over [%d, %d]; fxcam expects [0,1]: divide by 255",
             lo, hi);
    expect_compute_error(m, &f, NULL, FX_ERR_INVALID_ARGUMENT, needle);
    assert_non_null(strstr(fx_last_error(), "65535 (16-bit)"));
    /* The index is the image's in the call. */
    fx_image pair[2] = {rgb8, f};
    fx_result *r = (fx_result *)(uintptr_t)1;
    assert_int_equal(fx_gradcam_compute(m, pair, 2, NULL, &r), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "image 1: float samples"));
    /* Slightly negative, and NaN. */
    for (uint32_t y = 0; y < f.height; y++)
        for (uint32_t x = 0; x < f.width * 3; x++)
            ((float *)fx__row(&f, y))[x] = 0.5f;
    ((float *)fx__row(&f, 3))[7] = -0.25f;
    expect_compute_error(m, &f, NULL, FX_ERR_INVALID_ARGUMENT, "range over [-0.25, 0.5]");
    ((float *)fx__row(&f, 3))[7] = NAN;
    expect_compute_error(m, &f, NULL, FX_ERR_INVALID_ARGUMENT, "x 2, y 3, channel 1 is NaN");
    fx_image_free(&f);
    fx_model_free(m);
}

/* A 1x1 map (global pooling) is no target: not a feature map, refused with
 * the reason and the default layer. */
static void test_layer_1x1_refused(void **state)
{
    (void)state;
    fx_model *m = load_model("resnet18_traced.pt");
    int seen = 0;
    for (size_t i = 0; i < fx_model_layer_count(m); i++) {
        fx_layer_info info = {.struct_size = sizeof info};
        assert_int_equal(fx_model_layer(m, i, &info), FX_OK);
        if (strcmp(info.name, "avgpool") == 0) {
            seen = 1;
            assert_int_equal(info.rank, 4);
            assert_int_equal(info.shape[2], 1);
            assert_int_equal(info.shape[3], 1);
            assert_false(info.is_feature_map);
        }
    }
    assert_true(seen);
    fx_gradcam_options o;
    fx_gradcam_options_init(&o);
    o.layer = "avgpool";
    expect_compute_error(m, &rgb8, &o, FX_ERR_LAYER, "its map is 1x1");
    assert_non_null(strstr(fx_last_error(), "default layer 'layer4'"));
    fx_model_free(m);
}

static long result_warning_with(const fx_result *r, int32_t code, int64_t image)
{
    for (size_t i = 0; i < fx_result_warning_count(r); i++) {
        int32_t c = -1;
        int64_t at = -2;
        assert_non_null(fx_result_warning(r, i, &c, &at));
        if (c == code && at == image)
            return (long)i;
    }
    return -1;
}

/* Warnings that travel with a result: an all-zero map (the reference in
 * make_fixtures.py is all zero for every method), and images far from the
 * model's input size. */
static void test_result_warnings(void **state)
{
    (void)state;
    fx_model *m = load_model("zero_map_traced.pt");
    fx_gradcam_options o;
    fx_gradcam_options_init(&o);
    o.target_class = 0;
    o.methods = all_methods;
    /* the methods that sum class evidence (all but the principal-component
     * ones, which come last in all_methods: Eigen-CAM ignores the class) */
    const uint32_t evidence_methods = FX_CAM_EIGENGRADCAM;
    o.method_count = evidence_methods;
    fx_result *r = NULL;
    assert_int_equal(fx_gradcam_compute(m, &rgb8, 1, &o, &r), FX_OK);
    assert_int_equal(fx_result_warning_count(r), evidence_methods);
    for (size_t i = 0; i < evidence_methods; i++) {
        int32_t code = 0;
        int64_t image = -2;
        const char *text = fx_result_warning(r, i, &code, &image);
        assert_int_equal(code, FX_WARN_ZERO_MAP);
        assert_int_equal(image, 0);
        assert_non_null(strstr(text, "the score of class 0 ('class 0') gets no positive evidence from layer '3'"));
        assert_non_null(strstr(text, fx_cam_method_name(all_methods[i])));
    }
    assert_null(fx_result_warning(r, evidence_methods, NULL, NULL));
    fx_result_free(r);
    o.target_class = 1; /* the other class has positive evidence */
    assert_int_equal(fx_gradcam_compute(m, &rgb8, 1, &o, &r), FX_OK);
    assert_int_equal(result_warning_with(r, FX_WARN_ZERO_MAP, 0), -1);
    fx_result_free(r);
    fx_model_free(m);

    /* Input 64x64: 8x8 is upscaled 8x, 1100x70 downscaled 17.2x, 83x71 neither. */
    m = load_model("two_class_traced.pt");
    fx_image images[3] = {{0}, rgb8, {0}};
    assert_int_equal(fx_image_alloc(&images[0], 8, 8, 1, FX_PIXEL_U8), FX_OK);
    assert_int_equal(fx_image_alloc(&images[2], 1100, 70, 1, FX_PIXEL_U8), FX_OK);
    assert_int_equal(fx_gradcam_compute(m, images, 3, NULL, &r), FX_OK);
    assert_int_equal(fx_result_warning_count(r), 2);
    long up = result_warning_with(r, FX_WARN_UPSCALE, 0), down = result_warning_with(r, FX_WARN_DOWNSCALE, 2);
    assert_true(up >= 0 && down >= 0);
    assert_non_null(strstr(fx_result_warning(r, (size_t)up, NULL, NULL), "image 0 (8x8) is upscaled 8.0x"));
    assert_non_null(strstr(fx_result_warning(r, (size_t)down, NULL, NULL), "image 2 (1100x70) is downscaled 17.2x"));
    fx_result_free(r);
    fx_image_free(&images[0]);
    fx_image_free(&images[2]);
    assert_int_equal(fx_result_warning_count(NULL), 0);
    assert_null(fx_result_warning(NULL, 0, NULL, NULL));
    fx_model_free(m);
}

/* fx_model_predict: the same probabilities and logits as fx_gradcam_compute
 * (within 1e-6) for every output kind (plain logits, single logit, final
 * softmax/log_softmax/sigmoid, probabilities used as they are), batched
 * across batch boundaries; outputs untouched on error. */
static void test_predict_equals_compute(void **state)
{
    (void)state;
    static const char *const files[] = {"resnet18_traced.pt", "single_logit_traced.pt", "act_softmax_traced.pt",
                                        "act_log_softmax_scripted.pt", "act_sigmoid_traced.pt",
                                        "hidden_softmax_declared_traced.pt", "gray_scripted.pt"};
    fx_image images[3] = {rgb8, gray16, rgb8};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        fx_model *m = load_model(files[f]);
        uint32_t classes = fx_model_result_class_count(m), logit_count = fx_model_class_count(m);
        fx_gradcam_options o;
        fx_gradcam_options_init(&o);
        o.batch_size = 2; /* 3 images: a full batch and a partial one */
        float *probs = calloc(3 * classes, sizeof(float)), *logits = calloc(3 * logit_count, sizeof(float));
        assert_non_null(probs);
        assert_non_null(logits);
        if (fx_model_predict(m, images, 3, &o, probs, logits) != FX_OK)
            fail_msg("%s: %s", files[f], fx_last_error());
        fx_result *r = NULL;
        assert_int_equal(fx_gradcam_compute(m, images, 3, &o, &r), FX_OK);
        for (size_t i = 0; i < 3; i++) {
            char what[256];
            snprintf(what, sizeof what, "%s image %zu predict probabilities", files[f], i);
            assert_close(what, probs + i * classes, fx_result_probabilities(r, i, NULL), classes, 1e-6);
            snprintf(what, sizeof what, "%s image %zu predict logits", files[f], i);
            assert_close(what, logits + i * logit_count, fx_result_logits(r, i, NULL), logit_count, 1e-6);
        }
        /* Default options and no logits wanted. */
        float one[16];
        assert_true(classes <= 16);
        assert_int_equal(fx_model_predict(m, &rgb8, 1, NULL, one, NULL), FX_OK);
        assert_close("predict with NULL options", one, fx_result_probabilities(r, 0, NULL), classes, 1e-6);
        fx_result_free(r);
        free(probs);
        free(logits);
        fx_model_free(m);
    }
    /* Errors leave the outputs untouched. */
    fx_model *m = load_model("resnet18_traced.pt");
    float out[10];
    for (int i = 0; i < 10; i++)
        out[i] = -7.0f;
    assert_int_equal(fx_model_predict(m, &rgb8, 0, NULL, out, NULL), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "fx_model_predict: n is 0"));
    assert_int_equal(fx_model_predict(m, &rgb8, 1, NULL, NULL, NULL), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "probabilities is NULL"));
    fx_image nodata = rgb8;
    nodata.data = NULL;
    assert_int_equal(fx_model_predict(m, &nodata, 1, NULL, out, NULL), FX_ERR_INVALID_ARGUMENT);
    for (int i = 0; i < 10; i++)
        assert_float_equal(out[i], -7.0f, 0.0);
    assert_int_equal(fx_model_predict(NULL, &rgb8, 1, NULL, out, NULL), FX_ERR_INVALID_ARGUMENT);
    fx_model_free(m);
    m = load_model("nan_logits.pt");
    assert_int_equal(fx_model_predict(m, &rgb8, 1, NULL, out, NULL), FX_ERR_NUMERIC);
    assert_non_null(strstr(fx_last_error(), "logit 1 of image 0 is nan"));
    assert_float_equal(out[0], -7.0f, 0.0);
    fx_model_free(m);
}

/* Progress callback of the gradient-free tests: records every call and
 * cancels once done reaches cancel_at (0 = never). */
typedef struct progress_log {
    uint64_t calls, last_done, total, cancel_at;
    int decreasing, total_changed;
} progress_log;

static int record_progress(void *user, uint64_t done, uint64_t total)
{
    progress_log *log = user;
    if (log->calls && (done < log->last_done))
        log->decreasing = 1;
    if (log->calls && total != log->total)
        log->total_changed = 1;
    log->calls++;
    log->last_done = done;
    log->total = total;
    return log->cancel_at && done >= log->cancel_at;
}

/* Score-CAM and Ablation-CAM against the eager torch references of
 * make_fixtures.py (channels.txt), in batches of 7 masked inputs (a partial
 * last batch), with progress; then cancellation. */
static void test_gradient_free_channel_methods(void **state)
{
    (void)state;
    static const int32_t methods[2] = {FX_CAM_SCORECAM, FX_CAM_ABLATIONCAM};
    FILE *f = fopen(FIXTURE("channels.txt"), "r");
    assert_non_null(f);
    char file[128], layer[128], image[16], tag[256];
    int target, k, h, w, cases = 0;
    while (fscanf(f, "%127s %127s %15s %d %d %d %d %255s", file, layer, image, &target, &k, &h, &w, tag) == 8) {
        fx_model *m = load_model(file);
        const fx_image *img = strcmp(image, "rgb8") == 0 ? &rgb8 : &gray16;
        fx_gradcam_options o;
        fx_gradcam_options_init(&o);
        o.layer = layer;
        o.target_class = target;
        o.methods = methods;
        o.method_count = 2;
        o.channel_batch_size = 7;
        progress_log log = {0};
        o.progress = record_progress;
        o.progress_user = &log;
        fx_result *r = NULL;
        if (fx_gradcam_compute(m, img, 1, &o, &r) != FX_OK)
            fail_msg("%s: %s", tag, fx_last_error());
        for (uint32_t j = 0; j < 2; j++) {
            const char *name = fx_cam_method_name(methods[j]);
            char suffix[64], what[400];
            snprintf(suffix, sizeof suffix, "%s.lowres", name);
            float *ref_low = read_floats(tag, suffix, (size_t)h * w);
            snprintf(what, sizeof what, "%s %s low-resolution map", tag, name);
            assert_close(what, (const float *)fx_result_lowres(r, 0, j)->data, ref_low, (size_t)h * w, 1e-4);
            free(ref_low);
            snprintf(suffix, sizeof suffix, "%s.heat", name);
            float *ref_heat = read_floats(tag, suffix, (size_t)img->width * img->height);
            snprintf(what, sizeof what, "%s %s heatmap", tag, name);
            assert_map_close(what, fx_result_heatmap(r, 0, j), ref_heat, HEAT_TOLERANCE);
            free(ref_heat);
        }
        /* one call with done = 0, then one per batch of 7, per method */
        uint64_t batches = ((uint64_t)k + 6) / 7;
        assert_int_equal(log.total, 2 * (uint64_t)k);
        assert_int_equal(log.last_done, 2 * (uint64_t)k);
        assert_int_equal(log.calls, 1 + 2 * batches);
        assert_false(log.decreasing);
        assert_false(log.total_changed);
        fx_result_free(r);

        /* Cancelled part-way: FX_ERR_CANCELLED, no result. */
        progress_log stop = {.cancel_at = 7};
        o.progress_user = &stop;
        r = (fx_result *)(uintptr_t)1;
        assert_int_equal(fx_gradcam_compute(m, img, 1, &o, &r), FX_ERR_CANCELLED);
        assert_ptr_equal(r, (fx_result *)(uintptr_t)1);
        assert_non_null(strstr(fx_last_error(), "cancelled by the progress callback after 7 of"));
        assert_int_equal(stop.calls, 2);
        /* Cancelled before any per-channel forward. */
        stop = (progress_log){.cancel_at = 0};
        o.progress = NULL;
        assert_int_equal(fx_gradcam_compute(m, img, 1, &o, &r), FX_OK); /* no callback: runs to the end */
        fx_result_free(r);
        fx_model_free(m);
        cases++;
    }
    fclose(f);
    assert_int_equal(cases, 4);
    assert_string_equal(fx_status_str(FX_ERR_CANCELLED), "FX_ERR_CANCELLED: cancelled by the caller");
}

/* The batch [rgb8, gray16] on resnet18_traced.pt, layer4 (make_fixtures.py,
 * "Targets and Smooth Grad-CAM++"). */
static fx_status compute_pair(fx_model *m, const fx_gradcam_options *o, fx_result **r)
{
    fx_image pair[2] = {rgb8, gray16};
    return fx_gradcam_compute(m, pair, 2, o, r);
}

static void check_pair_heat(const fx_result *r, const char *mode, uint32_t j, const char *method)
{
    const fx_image *imgs[2] = {&rgb8, &gray16};
    for (int i = 0; i < 2; i++) {
        char tag[64], what[128];
        snprintf(tag, sizeof tag, "targets.%s.%d", mode, i);
        float *ref = read_floats(tag, method, (size_t)imgs[i]->width * imgs[i]->height);
        snprintf(what, sizeof what, "%s %s heatmap", tag, method);
        assert_map_close(what, fx_result_heatmap(r, (size_t)i, j), ref, HEAT_TOLERANCE);
        free(ref);
    }
}

/* One target class per image, and a weighted sum of classes, against torch
 * references (the gradient of the one-hot or weighted logit sum). */
static void test_targets_per_image_and_weighted(void **state)
{
    (void)state;
    static const int32_t methods[2] = {FX_CAM_GRADCAM, FX_CAM_GRADCAM_PLUSPLUS};
    FILE *f = fopen(FIXTURE("targets.txt"), "r");
    assert_non_null(f);
    char mode[16];
    int index, expected[2][2], lines = 0;
    while (fscanf(f, "%15s %d %d", mode, &index, &expected[strcmp(mode, "classes") != 0][lines % 2]) == 3)
        lines++;
    fclose(f);
    assert_int_equal(lines, 4);
    fx_model *m = load_model("resnet18_traced.pt");
    fx_gradcam_options o;
    fx_gradcam_options_init(&o);
    o.layer = "layer4";
    o.methods = methods;
    o.method_count = 2;
    const int32_t targets[2] = {3, -1};
    o.target_classes = targets;
    fx_result *r = NULL;
    if (compute_pair(m, &o, &r) != FX_OK)
        fail_msg("target_classes: %s", fx_last_error());
    assert_int_equal(fx_result_target_class(r, 0), 3);
    assert_int_equal(fx_result_target_class(r, 1), expected[0][1]);
    assert_int_equal(fx_result_target_class(r, 1), fx_result_predicted_class(r, 1));
    check_pair_heat(r, "classes", 0, "gradcam.heat");
    check_pair_heat(r, "classes", 1, "gradcam++.heat");
    fx_result_free(r);

    const float weights[10] = {0.5f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f, -0.25f, 0.0f, 0.75f};
    o.target_classes = NULL;
    o.class_weights = weights;
    o.class_weight_count = 10;
    if (compute_pair(m, &o, &r) != FX_OK)
        fail_msg("class_weights: %s", fx_last_error());
    assert_int_equal(fx_result_target_class(r, 0), -1);
    assert_int_equal(fx_result_target_class(r, 1), -1);
    check_pair_heat(r, "weights", 0, "gradcam.heat");
    check_pair_heat(r, "weights", 1, "gradcam++.heat");
    fx_result_free(r);

    /* Refused, with what was seen and what would be valid. */
    fx_image pair[2] = {rgb8, gray16};
    const int32_t bad_targets[2] = {10, 0};
    o.class_weights = NULL;
    o.class_weight_count = 0;
    o.target_classes = bad_targets;
    expect_compute_error(m, pair, &o, FX_ERR_INVALID_ARGUMENT, "target_classes[0] = 10 out of range; valid: -1");
    o.target_classes = targets;
    o.class_weights = weights;
    o.class_weight_count = 10;
    expect_compute_error(m, pair, &o, FX_ERR_INVALID_ARGUMENT, "class_weights is given together with target_classes");
    o.target_classes = NULL;
    o.target_class = 2;
    expect_compute_error(m, pair, &o, FX_ERR_INVALID_ARGUMENT, "together with target_class");
    o.target_class = -1;
    o.class_weight_count = 9;
    expect_compute_error(m, pair, &o, FX_ERR_INVALID_ARGUMENT, "class_weights has 9 values but the model has 10");
    const float zeros[10] = {0};
    o.class_weights = zeros;
    o.class_weight_count = 10;
    expect_compute_error(m, pair, &o, FX_ERR_INVALID_ARGUMENT, "class_weights are all 0");
    float with_nan[10] = {1.0f};
    with_nan[4] = NAN;
    o.class_weights = with_nan;
    expect_compute_error(m, pair, &o, FX_ERR_INVALID_ARGUMENT, "class_weights[4] is nan");
    o.class_weights = NULL;
    expect_compute_error(m, pair, &o, FX_ERR_INVALID_ARGUMENT, "class_weight_count is 10 but class_weights is NULL");
    fx_model_free(m);
}

/* Smooth Grad-CAM++ against the torch reference fed the same noise (the
 * SplitMix64/Box-Muller stream reproduced in numpy), batched and one image
 * at a time (the noise depends on the image's index in the call, not on
 * the batch); then bad options. */
static void test_smooth_gradcam_plusplus(void **state)
{
    (void)state;
    static const int32_t methods[1] = {FX_CAM_SMOOTH_GRADCAM_PLUSPLUS};
    fx_model *m = load_model("resnet18_traced.pt");
    fx_gradcam_options o;
    fx_gradcam_options_init(&o);
    o.layer = "layer4";
    o.methods = methods;
    o.method_count = 1;
    const int32_t targets[2] = {3, -1};
    o.target_classes = targets;
    o.smooth_samples = 5;
    o.smooth_noise = 0.2f;
    o.smooth_seed = 12345;
    for (uint32_t batch = 1; batch <= 2; batch++) {
        o.batch_size = batch;
        fx_result *r = NULL;
        if (compute_pair(m, &o, &r) != FX_OK)
            fail_msg("smooth: %s", fx_last_error());
        const fx_image *imgs[2] = {&rgb8, &gray16};
        for (int i = 0; i < 2; i++) {
            char tag[64], what[128];
            snprintf(tag, sizeof tag, "targets.smooth.%d", i);
            const fx_image *low = fx_result_lowres(r, (size_t)i, 0);
            float *ref_low = read_floats(tag, "lowres", (size_t)low->width * low->height);
            snprintf(what, sizeof what, "%s low-resolution map (batch %u)", tag, batch);
            assert_close(what, (const float *)low->data, ref_low, (size_t)low->width * low->height, 1e-4);
            free(ref_low);
            float *ref = read_floats(tag, "heat", (size_t)imgs[i]->width * imgs[i]->height);
            snprintf(what, sizeof what, "%s heatmap (batch %u)", tag, batch);
            assert_map_close(what, fx_result_heatmap(r, (size_t)i, 0), ref, HEAT_TOLERANCE);
            free(ref);
        }
        fx_result_free(r);
    }
    fx_image pair[2] = {rgb8, gray16};
    o.smooth_samples = 257;
    expect_compute_error(m, pair, &o, FX_ERR_INVALID_ARGUMENT, "smooth_samples 257; valid: 0 (default 8) or 1..256");
    o.smooth_samples = 5;
    o.smooth_noise = -0.1f;
    expect_compute_error(m, pair, &o, FX_ERR_INVALID_ARGUMENT, "smooth_noise -0.1; valid");
    o.smooth_noise = NAN;
    expect_compute_error(m, pair, &o, FX_ERR_INVALID_ARGUMENT, "smooth_noise nan; valid");
    fx_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_targets_per_image_and_weighted),
        cmocka_unit_test(test_smooth_gradcam_plusplus),
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
        cmocka_unit_test(test_output_kinds),
        cmocka_unit_test(test_training_mode_exports),
        cmocka_unit_test(test_float_input_contract),
        cmocka_unit_test(test_layer_1x1_refused),
        cmocka_unit_test(test_result_warnings),
        cmocka_unit_test(test_predict_equals_compute),
        cmocka_unit_test(test_gradient_free_channel_methods),
    };
    return cmocka_run_group_tests_name("engine", tests, setup, teardown);
}
