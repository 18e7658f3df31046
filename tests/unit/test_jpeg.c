/* JPEG input (lib/jpeg.c through fx_image_load): pixels against PIL's decode
 * after ImageOps.exif_transpose (tests/tools/make_jpeg_fixtures.py writes the
 * files with PIL and OpenCV and the reference pixels), within 1 level; bad
 * input (truncated, corrupt, CMYK, a 30000x30000 header). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "format_fixture.h"

#define SCRIPT FX_TEST_SOURCE_DIR "/tools/make_jpeg_fixtures.py"

#if FX_TEST_HAVE_JPEG

static int group_setup(void **state)
{
    (void)state;
    return fixture_setup("test_jpeg", SCRIPT);
}

static int group_teardown(void **state)
{
    (void)state;
    fixture_teardown();
    return 0;
}

static fx_status load_named(const char *name, const fx_load_options *opts, fx_image *img)
{
    char path[1024];
    fixture_path(path, sizeof path, name);
    return fx_image_load(path, opts, img);
}

static const char *const good_files[] = {
    "pil_gray", "pil_rgb", "pil_rgb_444", "pil_progressive", "pil_gray_progressive", "cv2_gray", "cv2_rgb",
    "cv2_progressive", "pil_exif_1", "pil_exif_2", "pil_exif_3", "pil_exif_4", "pil_exif_5", "pil_exif_6",
    "pil_exif_7", "pil_exif_8", "exif_big_endian_6", "pil_gray_exif_8",
};

/* Within 1 level of PIL: both use libjpeg's default (islow IDCT, fancy
 * upsampling), so they are expected to agree exactly; 1 allows another
 * libjpeg build. */
static void test_matches_pil(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_files / sizeof good_files[0]; i++) {
        char jpg[256], ref[256];
        snprintf(jpg, sizeof jpg, "%s.jpg", good_files[i]);
        snprintf(ref, sizeof ref, "%s.ref", good_files[i]);
        fx_image img = {0};
        fx_status st = load_named(jpg, NULL, &img);
        if (st != FX_OK)
            fail_msg("%s: %s", jpg, fx_last_error());
        double worst = compare_with_reference(&img, ref, false);
        if (worst > 1.0)
            fail_msg("%s differs from PIL by %g levels", jpg, worst);
        fx_image_free(&img);
    }
}

static void test_orientation_swaps_axes(void **state)
{
    (void)state;
    fx_image img = {0};
    assert_int_equal(load_named("pil_exif_1.jpg", NULL, &img), FX_OK);
    assert_int_equal(img.width, 37);
    assert_int_equal(img.height, 23);
    fx_image_free(&img);
    assert_int_equal(load_named("pil_exif_6.jpg", NULL, &img), FX_OK);
    assert_int_equal(img.width, 23);
    assert_int_equal(img.height, 37);
    fx_image_free(&img);
    /* Limits apply to the upright image. */
    fx_load_options o;
    fx_load_options_init(&o);
    o.max_width = 30;
    assert_int_equal(load_named("pil_exif_6.jpg", &o, &img), FX_OK);
    fx_image_free(&img);
    fx_load_options_init(&o);
    o.max_height = 30;
    assert_int_equal(load_named("pil_exif_6.jpg", &o, &img), FX_ERR_LIMIT);
    assert_message_contains("max_height");
    assert_null(img.data);
}

static void test_memory_equals_file(void **state)
{
    (void)state;
    char path[1024];
    fixture_path(path, sizeof path, "pil_exif_7.jpg");
    size_t size;
    uint8_t *bytes = read_whole(path, &size);
    fx_image a = {0}, b = {0};
    assert_int_equal(fx_image_load(path, NULL, &a), FX_OK);
    assert_int_equal(fx_image_load_memory(bytes, size, NULL, &b), FX_OK);
    assert_int_equal(a.width, b.width);
    assert_int_equal(a.height, b.height);
    assert_int_equal(a.channels, b.channels);
    assert_memory_equal(a.data, b.data, a.stride * a.height);
    fx_image_free(&a);
    fx_image_free(&b);
    free(bytes);
}

static void expect_memory_failure(const uint8_t *data, size_t size, fx_status want, const char *needle)
{
    fx_image img = {0};
    fx_status st = fx_image_load_memory(data, size, NULL, &img);
    if (st != want)
        fail_msg("%zu bytes: status %d, expected %d (%s)", size, st, want, fx_last_error());
    assert_null(img.data);
    assert_message_contains(needle);
}

static void test_truncated(void **state)
{
    (void)state;
    const char *files[] = {"pil_rgb.jpg", "pil_progressive.jpg", "cv2_gray.jpg"};
    for (size_t f = 0; f < 3; f++) {
        char path[1024];
        fixture_path(path, sizeof path, files[f]);
        size_t size;
        uint8_t *bytes = read_whole(path, &size);
        size_t cuts[] = {3, 4, 20, 100, size / 3, size / 2, size - 40, size - 2};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
            expect_memory_failure(bytes, cuts[i], FX_ERR_FORMAT, "not a valid JPEG");
        /* Also from a file: libjpeg's stdio source reports the end the same way. */
        char cut_path[1024];
        fixture_path(cut_path, sizeof cut_path, "truncated.jpg");
        FILE *out = fopen(cut_path, "wb");
        assert_non_null(out);
        assert_int_equal(fwrite(bytes, 1, size / 2, out), size / 2);
        fclose(out);
        fx_image img = {0};
        assert_int_equal(fx_image_load(cut_path, NULL, &img), FX_ERR_FORMAT);
        assert_message_contains("Premature end of JPEG file");
        assert_null(img.data);
        free(bytes);
    }
}

static void test_corrupt(void **state)
{
    (void)state;
    char path[1024];
    fixture_path(path, sizeof path, "pil_rgb.jpg");
    size_t size;
    uint8_t *bytes = read_whole(path, &size);
    /* Restart markers where entropy-coded data belongs. */
    uint8_t *bad = malloc(size);
    assert_non_null(bad);
    memcpy(bad, bytes, size);
    for (size_t i = size / 2; i < size / 2 + 16; i += 2) {
        bad[i] = 0xff;
        bad[i + 1] = 0xd3;
    }
    expect_memory_failure(bad, size, FX_ERR_FORMAT, "not a valid JPEG");
    /* A start-of-frame with 0 components. */
    memcpy(bad, bytes, size);
    for (size_t i = 0; i + 1 < size; i++)
        if (bad[i] == 0xff && bad[i + 1] == 0xc0) {
            bad[i + 9] = 0;
            break;
        }
    expect_memory_failure(bad, size, FX_ERR_FORMAT, "not a valid JPEG");
    free(bad);
    free(bytes);
}

static void test_cmyk_refused(void **state)
{
    (void)state;
    fx_image img = {0};
    assert_int_equal(load_named("pil_cmyk.jpg", NULL, &img), FX_ERR_UNSUPPORTED);
    assert_message_contains("CMYK");
    assert_null(img.data);
}

static void test_huge_header_refused_before_decoding(void **state)
{
    (void)state;
    fx_image img = {0};
    assert_int_equal(load_named("huge_header.jpg", NULL, &img), FX_ERR_LIMIT);
    assert_message_contains("30000x30000");
    assert_message_contains("max_pixels");
    assert_null(img.data);
}

static void test_frame_option(void **state)
{
    (void)state;
    fx_load_options o;
    fx_load_options_init(&o);
    o.frame = 1;
    fx_image img = {0};
    assert_int_equal(load_named("pil_rgb.jpg", &o, &img), FX_ERR_INVALID_ARGUMENT);
    assert_message_contains("frame");
    /* A program built against the 0.1 struct (without frame) still works. */
    fx_load_options_init(&o);
    o.struct_size = (uint32_t)offsetof(fx_load_options, frame);
    o.frame = 7; /* beyond the old struct: must be ignored */
    assert_int_equal(load_named("pil_rgb.jpg", &o, &img), FX_OK);
    fx_image_free(&img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_pil),
        cmocka_unit_test(test_orientation_swaps_axes),
        cmocka_unit_test(test_memory_equals_file),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_cmyk_refused),
        cmocka_unit_test(test_huge_header_refused_before_decoding),
        cmocka_unit_test(test_frame_option),
    };
    return cmocka_run_group_tests_name("jpeg", tests, group_setup, group_teardown);
}

#else /* built without libjpeg: the format is recognised and refused */

static void test_not_available(void **state)
{
    (void)state;
    static const uint8_t jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0, 1};
    fx_image img = {0};
    assert_int_equal(fx_image_load_memory(jpeg, sizeof jpeg, NULL, &img), FX_ERR_NOT_AVAILABLE);
    assert_message_contains("libjpeg");
    assert_null(img.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_not_available)};
    return cmocka_run_group_tests_name("jpeg", tests, NULL, NULL);
}

#endif
