/* Status strings, per-thread messages and the fx_image buffer helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "fx_internal.h"

static void test_status_values_are_pinned(void **state)
{
    (void)state;
    assert_int_equal(FX_OK, 0);
    assert_int_equal(FX_ERR_INVALID_ARGUMENT, -1);
    assert_int_equal(FX_ERR_OUT_OF_MEMORY, -2);
    assert_int_equal(FX_ERR_IO, -3);
    assert_int_equal(FX_ERR_FORMAT, -4);
    assert_int_equal(FX_ERR_LIMIT, -5);
    assert_int_equal(FX_ERR_UNSUPPORTED, -6);
    assert_int_equal(FX_ERR_MODEL, -7);
    assert_int_equal(FX_ERR_LAYER, -8);
    assert_int_equal(FX_ERR_DEVICE, -9);
    assert_int_equal(FX_ERR_NUMERIC, -10);
    assert_int_equal(FX_ERR_NOT_AVAILABLE, -11);
    assert_int_equal(FX_ERR_INTERNAL, -12);
    assert_int_equal(FX_ERR_CANCELLED, -13);
}

static void test_status_str_names_every_code(void **state)
{
    (void)state;
    for (fx_status s = FX_OK; s >= FX_ERR_CANCELLED; s--) {
        const char *name = fx_status_str(s);
        assert_non_null(name);
        assert_int_equal(strncmp(name, "FX_", 3), 0);
    }
    assert_string_equal(fx_status_str(-999), "unknown status");
    assert_string_equal(fx_status_str(7), "unknown status");
}

static void test_last_error_is_never_null(void **state)
{
    (void)state;
    fx_clear_error();
    assert_non_null(fx_last_error());
    assert_string_equal(fx_last_error(), "");
    assert_int_equal(fx__error(FX_ERR_IO, "cannot open '%s'", "x.png"), FX_ERR_IO);
    assert_string_equal(fx_last_error(), "cannot open 'x.png'");
}

static void *set_other_error(void *arg)
{
    (void)arg;
    fx__error(FX_ERR_LIMIT, "message from another thread");
    return (void *)(intptr_t)(strcmp(fx_last_error(), "message from another thread") == 0);
}

static void test_last_error_is_per_thread(void **state)
{
    (void)state;
    fx__error(FX_ERR_IO, "main thread message");
    pthread_t t;
    void *ok = NULL;
    assert_int_equal(pthread_create(&t, NULL, set_other_error, NULL), 0);
    assert_int_equal(pthread_join(t, &ok), 0);
    assert_true((intptr_t)ok);
    assert_string_equal(fx_last_error(), "main thread message");
}

static void test_image_alloc_and_free(void **state)
{
    (void)state;
    fx_image img = {0};
    assert_int_equal(fx_image_alloc(&img, 5, 3, 3, FX_PIXEL_U16), FX_OK);
    assert_non_null(img.data);
    assert_int_equal(img.stride, 5 * 3 * 2);
    assert_int_equal(img.width, 5);
    assert_int_equal(img.height, 3);
    const uint16_t *px = img.data;
    for (int i = 0; i < 5 * 3 * 3; i++)
        assert_int_equal(px[i], 0);
    fx_image_free(&img);
    assert_null(img.data);
    assert_int_equal(img.width, 0);
    fx_image_free(&img); /* second free: data is NULL, no-op */
    fx_image_free(NULL);
}

static void test_image_alloc_rejects_bad_arguments(void **state)
{
    (void)state;
    fx_image img = {0};
    assert_int_equal(fx_image_alloc(NULL, 1, 1, 1, FX_PIXEL_U8), FX_ERR_INVALID_ARGUMENT);
    assert_int_equal(fx_image_alloc(&img, 0, 1, 1, FX_PIXEL_U8), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "empty"));
    assert_int_equal(fx_image_alloc(&img, 1, 1, 5, FX_PIXEL_U8), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "5 channels"));
    assert_int_equal(fx_image_alloc(&img, 1, 1, 1, 42), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "pixel type 42"));
    assert_int_equal(fx_image_alloc(&img, 65536, 65536, 4, FX_PIXEL_F32), FX_ERR_LIMIT);
    assert_null(img.data); /* untouched on error */
}

static void test_output_prepare_checks_caller_buffers(void **state)
{
    (void)state;
    uint8_t buf[12];
    fx_image out = {.data = buf, .stride = 6, .width = 2, .height = 2, .channels = 3, .pixel_type = FX_PIXEL_U8};
    bool allocated = true;
    assert_int_equal(fx__output_prepare(&out, "out", 2, 2, 3, FX_PIXEL_U8, &allocated), FX_OK);
    assert_false(allocated);
    assert_int_equal(fx__output_prepare(&out, "out", 3, 2, 3, FX_PIXEL_U8, &allocated), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "produces 3x2"));
    out.stride = 5;
    assert_int_equal(fx__output_prepare(&out, "out", 2, 2, 3, FX_PIXEL_U8, &allocated), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "stride 5"));

    fx_image fresh = {0}, saved = fresh;
    assert_int_equal(fx__output_prepare(&fresh, "out", 4, 4, 1, FX_PIXEL_F32, &allocated), FX_OK);
    assert_true(allocated);
    assert_int_equal(fresh.stride, 16);
    fx__output_abandon(&fresh, &saved, allocated);
    assert_null(fresh.data);
}

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(fx_version(), FX_VERSION_NUMBER);
    assert_string_equal(fx_version_string(), FX_VERSION_STRING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_values_are_pinned),
        cmocka_unit_test(test_status_str_names_every_code),
        cmocka_unit_test(test_last_error_is_never_null),
        cmocka_unit_test(test_last_error_is_per_thread),
        cmocka_unit_test(test_image_alloc_and_free),
        cmocka_unit_test(test_image_alloc_rejects_bad_arguments),
        cmocka_unit_test(test_output_prepare_checks_caller_buffers),
        cmocka_unit_test(test_version),
    };
    return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
