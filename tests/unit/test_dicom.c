/* DICOM input (dicom/dicom_reader.cpp through fx_image_load): real files from
 * Debian's octave-dicom and python3-pydicom packages, used in place, and
 * synthetic DX files (some from models/synth_radiograph.py, with a VOI LUT
 * Sequence), against pydicom (apply_modality_lut, apply_voi_lut, apply_windowing,
 * apply_color_lut; tests/tools/make_dicom_reference.py). Tolerance: 1 output
 * level (of 0..65535 for gray, 0..255 for color): DCMTK and the reference
 * round the same real value differently. Bad input gets a clear status. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "format_fixture.h"
#include "dicom_sniff.h"

#define SCRIPT FX_TEST_SOURCE_DIR "/tools/make_dicom_reference.py"
#define PYDICOM_FILES "/usr/lib/python3/dist-packages/pydicom/data/test_files/"
#define OCTAVE_FILES "/usr/share/octave/packages/dicom-0.5.1/imdata/"

/* The bare-dataset rule of lib/dicom_sniff.h on hand-made heads (PS3.5 7.1:
 * tag, VR, length, little endian) and on bytes that must not pass. */
static void test_bare_dataset_rule(void **state)
{
    (void)state;
    /* Implicit VR: (0008,0005) length 10 "ISO_IR 100", then (0008,0016) length 4. */
    uint8_t implicit[32] = {0x08, 0, 0x05, 0, 10, 0, 0, 0, 'I', 'S', 'O', '_', 'I', 'R', ' ', '1', '0', '0',
                            0x08, 0, 0x16, 0, 4, 0, 0, 0, '1', '.', '2', 0};
    assert_true(fx__dicom_bare_dataset_detect(implicit, sizeof implicit));
    /* Explicit VR: (0008,0005) CS 10, then (0008,1115) SQ undefined length. */
    uint8_t explicit_vr[34] = {0x08, 0, 0x05, 0, 'C', 'S', 10, 0, 'I', 'S', 'O', '_', 'I', 'R', ' ', '1', '0', '0',
                               0x08, 0, 0x15, 0x11, 'S', 'Q', 0, 0, 0xff, 0xff, 0xff, 0xff};
    assert_true(fx__dicom_bare_dataset_detect(explicit_vr, sizeof explicit_vr));
    /* Each broken in one way: odd length, descending tags, an odd (private)
     * second group, a first group other than 0002/0008, a second element cut
     * off, VR then no VR. */
    uint8_t bad[sizeof implicit];
    memcpy(bad, implicit, sizeof bad); bad[4] = 11;
    assert_false(fx__dicom_bare_dataset_detect(bad, sizeof bad));
    memcpy(bad, implicit, sizeof bad); bad[20] = 0x01;
    assert_false(fx__dicom_bare_dataset_detect(bad, sizeof bad));
    memcpy(bad, implicit, sizeof bad); bad[18] = 0x09;
    assert_false(fx__dicom_bare_dataset_detect(bad, sizeof bad));
    memcpy(bad, implicit, sizeof bad); bad[0] = 0x10;
    assert_false(fx__dicom_bare_dataset_detect(bad, sizeof bad));
    assert_false(fx__dicom_bare_dataset_detect(implicit, 20));
    memcpy(bad, explicit_vr, sizeof bad); bad[22] = 4; bad[23] = 0;
    assert_false(fx__dicom_bare_dataset_detect(bad, sizeof bad));
    /* PNG, JPEG, a Part 10 preamble and empty input. */
    const uint8_t png[16] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    const uint8_t jpeg[16] = {0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0};
    uint8_t zeros[132] = {0};
    assert_false(fx__dicom_bare_dataset_detect(png, sizeof png));
    assert_false(fx__dicom_bare_dataset_detect(jpeg, sizeof jpeg));
    assert_false(fx__dicom_bare_dataset_detect(zeros, sizeof zeros));
    assert_false(fx__dicom_bare_dataset_detect(zeros, 0));
    /* Random heads (xorshift64, fixed seed), half of them starting with a
     * DICOM group so that the later checks are exercised: none passes. */
    uint64_t x = 0x9e3779b97f4a7c15u;
    uint8_t head[132];
    for (int i = 0; i < 200000; i++) {
        for (size_t k = 0; k < sizeof head; k++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            head[k] = (uint8_t)x;
        }
        if (i % 2) {
            head[0] = i % 4 == 1 ? 0x08 : 0x02;
            head[1] = 0;
        }
        if (fx__dicom_bare_dataset_detect(head, sizeof head))
            fail_msg("random head %d was taken for DICOM", i);
    }
}

#if FX_TEST_HAVE_DICOM

static int group_setup(void **state)
{
    (void)state;
    return fixture_setup("test_dicom", SCRIPT);
}

static int group_teardown(void **state)
{
    (void)state;
    fixture_teardown();
    return 0;
}

static void test_matches_pydicom(void **state)
{
    (void)state;
    char listing[1024];
    fixture_path(listing, sizeof listing, "cases.txt");
    FILE *f = fopen(listing, "r");
    assert_non_null(f);
    char name[128], path[900];
    unsigned frame;
    int cases = 0;
    while (fscanf(f, "%127s %u %899s", name, &frame, path) == 3) {
        fx_load_options o;
        fx_load_options_init(&o);
        o.frame = frame;
        fx_image img = {0};
        fx_status st = fx_image_load(path, &o, &img);
        if (st != FX_OK)
            fail_msg("%s (%s): %s", name, path, fx_last_error());
        char ref[160];
        snprintf(ref, sizeof ref, "%s.ref", name);
        double worst = compare_with_reference(&img, ref, true);
        if (worst > 1.0)
            fail_msg("%s differs from pydicom by %g levels", name, worst);
        fx_image_free(&img);
        cases++;
    }
    fclose(f);
    assert_int_equal(cases, 24); /* every case of the script ran */
}

static void test_memory_equals_file(void **state)
{
    (void)state;
    const char *path = OCTAVE_FILES "CT-MONO2-16-ankle.dcm";
    size_t size;
    uint8_t *bytes = read_whole(path, &size);
    fx_image a = {0}, b = {0};
    assert_int_equal(fx_image_load(path, NULL, &a), FX_OK);
    assert_int_equal(fx_image_load_memory(bytes, size, NULL, &b), FX_OK);
    assert_int_equal(a.width, b.width);
    assert_int_equal(a.height, b.height);
    assert_memory_equal(a.data, b.data, a.stride * a.height);
    fx_image_free(&a);
    fx_image_free(&b);
    free(bytes);
}

/* Bare datasets (no preamble, no "DICM"; tests/tools/make_dicom_reference.py
 * writes them with pydicom, write_like_original=True) load from memory as from
 * their file; their pixels against pydicom are checked in
 * test_matches_pydicom (cases bare_*). */
static void test_bare_dataset_in_memory(void **state)
{
    (void)state;
    const char *names[] = {"bare_implicit", "bare_explicit", "bare_with_meta"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[1024];
        fixture_path(path, sizeof path, names[i]);
        size_t size;
        uint8_t *bytes = read_whole(path, &size);
        assert_true(fx__dicom_bare_dataset_detect(bytes, size < 132 ? size : 132));
        fx_image a = {0}, b = {0};
        assert_int_equal(fx_image_load(path, NULL, &a), FX_OK);
        if (fx_image_load_memory(bytes, size, NULL, &b) != FX_OK)
            fail_msg("%s in memory: %s", names[i], fx_last_error());
        assert_int_equal(a.width, b.width);
        assert_int_equal(a.height, b.height);
        assert_memory_equal(a.data, b.data, a.stride * a.height);
        fx_image_free(&a);
        fx_image_free(&b);
        /* Cut inside its pixel data: refused, not padded. */
        fx_image c = {0};
        fx_status st = fx_image_load_memory(bytes, size - 100, NULL, &c);
        if (st != FX_ERR_FORMAT)
            fail_msg("%s cut: status %d (%s)", names[i], st, st ? fx_last_error() : "loaded");
        free(bytes);
    }
}

/* Bytes that pass the bare-dataset rule but hold no image, or stop inside an
 * element: a clear FX_ERR_FORMAT, no crash. */
static void test_bare_dataset_not_an_image(void **state)
{
    (void)state;
    const uint8_t two_elements[] = {0x08, 0, 0x05, 0, 10, 0, 0, 0, 'I', 'S', 'O', '_', 'I', 'R', ' ', '1', '0', '0',
                                    0x08, 0, 0x16, 0, 4, 0, 0, 0, '1', '.', '2', 0};
    fx_image img = {0};
    assert_int_equal(fx_image_load_memory(two_elements, sizeof two_elements, NULL, &img), FX_ERR_FORMAT);
    assert_message_contains("without pixel data");
    assert_null(img.data);
    assert_int_equal(fx_image_load_memory(two_elements, sizeof two_elements - 3, NULL, &img), FX_ERR_FORMAT);
    assert_null(img.data);
}

/* pydicom here has no 12-bit lossy JPEG decoder, so there is no independent
 * reference: the file must decode to its declared geometry, using the range. */
static void test_jpeg_lossy_decodes(void **state)
{
    (void)state;
    fx_image img = {0};
    fx_status st = fx_image_load(PYDICOM_FILES "JPEG-lossy.dcm", NULL, &img);
    if (st != FX_OK)
        fail_msg("%s", fx_last_error());
    assert_int_equal(img.width, 256);
    assert_int_equal(img.height, 1024);
    assert_int_equal(img.pixel_type, FX_PIXEL_U16);
    uint16_t lo = 65535, hi = 0;
    for (uint32_t y = 0; y < img.height; y++)
        for (uint32_t x = 0; x < img.width; x++) {
            uint16_t v = ((const uint16_t *)fx__row(&img, y))[x];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    assert_int_equal(lo, 0); /* no window in the file: min..max */
    assert_int_equal(hi, 65535);
    fx_image_free(&img);
}

static void expect_failure(const char *path, uint32_t frame, fx_status want, const char *needle)
{
    fx_load_options o;
    fx_load_options_init(&o);
    o.frame = frame;
    fx_image img = {0};
    fx_status st = fx_image_load(path, &o, &img);
    if (st != want)
        fail_msg("%s: status %d, expected %d (%s)", path, st, want, st ? fx_last_error() : "loaded");
    assert_null(img.data);
    assert_message_contains(needle);
    /* Patient identifiers never reach a message. */
    assert_null(strstr(fx_last_error(), "Secret"));
    assert_null(strstr(fx_last_error(), "PID-4711"));
}

static void test_real_files_refused(void **state)
{
    (void)state;
    expect_failure(OCTAVE_FILES "rtstruct.dcm", 0, FX_ERR_FORMAT, "without pixel data");
    assert_message_contains("RTSTRUCT");
    expect_failure(PYDICOM_FILES "JPEG2000.dcm", 0, FX_ERR_UNSUPPORTED, "JPEG 2000");
    assert_message_contains("1.2.840.10008.1.2.4.91");
    expect_failure(PYDICOM_FILES "MR_small_jp2klossless.dcm", 0, FX_ERR_UNSUPPORTED, "JPEG 2000");
    expect_failure(PYDICOM_FILES "MR_truncated.dcm", 0, FX_ERR_FORMAT, "truncated");
    expect_failure(OCTAVE_FILES "US-PAL-8-10x-echo.dcm", 10, FX_ERR_INVALID_ARGUMENT, "10 frames");
}

static void test_synthetic_bad_files(void **state)
{
    (void)state;
    const struct {
        const char *file;
        fx_status status;
        const char *needle;
    } cases[] = {
        {"bad_bits_stored.dcm", FX_ERR_FORMAT, "BitsStored 20 contradicts BitsAllocated 16"},
        {"bad_zero_rows.dcm", FX_ERR_FORMAT, "Rows 0"},
        {"bad_short_pixels.dcm", FX_ERR_FORMAT, "Pixel Data holds 1920 bytes"},
        {"bad_window_width.dcm", FX_ERR_FORMAT, "Window Width is 0"},
        {"bad_huge.dcm", FX_ERR_LIMIT, "30000x30000"},
        {"bad_no_pixels.dcm", FX_ERR_FORMAT, "without pixel data"},
        {"bad_voi_lut_short.dcm", FX_ERR_FORMAT, "LUT Descriptor (0028,3002) declares 4096 entries, but its "
                                                 "LUT Data (0028,3006) holds 1000"},
        {"bad_voi_lut_long.dcm", FX_ERR_FORMAT, "declares 1000 entries, but its LUT Data (0028,3006) holds 4096"},
        {"bad_voi_lut_empty.dcm", FX_ERR_FORMAT, "no LUT Data (0028,3006) (0 entries)"},
        {"bad_voi_lut_bits.dcm", FX_ERR_FORMAT, "gives 20 bits per entry; valid: 8..16"},
        {"bad_voi_lut_values.dcm", FX_ERR_FORMAT, "holds the value 65520, but its LUT Descriptor (0028,3002) "
                                                  "gives 12 bits"},
        {"bad_voi_lut_over_65536.dcm", FX_ERR_FORMAT, "holds 70000 entries; a LUT holds at most 65536"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[1024];
        fixture_path(path, sizeof path, cases[i].file);
        expect_failure(path, 0, cases[i].status, cases[i].needle);
    }
}

static void test_truncated_in_memory(void **state)
{
    (void)state;
    size_t size;
    uint8_t *bytes = read_whole(PYDICOM_FILES "CT_small.dcm", &size);
    size_t cuts[] = {132, 140, 400, size / 2, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        fx_image img = {0};
        fx_status st = fx_image_load_memory(bytes, cuts[i], NULL, &img);
        if (st != FX_ERR_FORMAT)
            fail_msg("cut at %zu: status %d (%s)", cuts[i], st, st ? fx_last_error() : "loaded");
        assert_null(img.data);
    }
    free(bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_pydicom),
        cmocka_unit_test(test_memory_equals_file),
        cmocka_unit_test(test_bare_dataset_in_memory),
        cmocka_unit_test(test_bare_dataset_not_an_image),
        cmocka_unit_test(test_bare_dataset_rule),
        cmocka_unit_test(test_jpeg_lossy_decodes),
        cmocka_unit_test(test_real_files_refused),
        cmocka_unit_test(test_synthetic_bad_files),
        cmocka_unit_test(test_truncated_in_memory),
    };
    return cmocka_run_group_tests_name("dicom", tests, group_setup, group_teardown);
}

#else /* built without DCMTK: the format is recognised and refused */

static void test_not_available(void **state)
{
    (void)state;
    uint8_t dicom[200] = {0};
    memcpy(dicom + 128, "DICM", 4);
    fx_image img = {0};
    assert_int_equal(fx_image_load_memory(dicom, sizeof dicom, NULL, &img), FX_ERR_NOT_AVAILABLE);
    assert_message_contains("DCMTK");
    assert_null(img.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_not_available), cmocka_unit_test(test_bare_dataset_rule)};
    return cmocka_run_group_tests_name("dicom", tests, NULL, NULL);
}

#endif
