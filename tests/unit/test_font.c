/* The built-in bitmap font: table completeness, width arithmetic, rendering
 * checked against bitmaps written out here, and clipping at the edges. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "font.h"
#include "fx_internal.h"

static const uint8_t white[3] = {255, 255, 255};

/* Independent copies of a few glyphs, as this test expects them to look. */
static const char *const glyph_A[9] = {".###.", "#...#", "#...#", "#####", "#...#",
                                       "#...#", "#...#", ".....", "....."};
static const char *const glyph_g[9] = {".....", ".....", ".####", "#...#", "#...#",
                                       "#...#", ".####", "....#", ".###."};
static const char *const glyph_0[9] = {".###.", "#...#", "#..##", "#.#.#", "##..#",
                                       "#...#", ".###.", ".....", "....."};

static fx_image make_rgb(uint32_t w, uint32_t h)
{
    fx_image img = {0};
    assert_int_equal(fx_image_alloc(&img, w, h, 3, FX_PIXEL_U8), FX_OK);
    return img;
}

static bool inked(const fx_image *img, int64_t x, int64_t y)
{
    const uint8_t *px = fx__row(img, (uint32_t)y) + x * 3;
    return px[0] == 255 && px[1] == 255 && px[2] == 255;
}

static bool blank(const fx_image *img, int64_t x, int64_t y)
{
    const uint8_t *px = fx__row(img, (uint32_t)y) + x * 3;
    return px[0] == 0 && px[1] == 0 && px[2] == 0;
}

/* Checks that every pixel of img is inked exactly where `bitmap` (drawn at
 * (x0, y0), each cell scale x scale) has '#', and blank elsewhere. */
static void expect_bitmap(const fx_image *img, int64_t x0, int64_t y0, const char *const bitmap[9],
                          uint32_t scale)
{
    for (int64_t y = 0; y < img->height; y++) {
        for (int64_t x = 0; x < img->width; x++) {
            int64_t col = x - x0, row = y - y0;
            bool ink = col >= 0 && row >= 0 && col < 5 * (int64_t)scale && row < 9 * (int64_t)scale &&
                       bitmap[row / scale][col / scale] == '#';
            if (ink != inked(img, x, y) || (!ink && !blank(img, x, y)))
                fail_msg("pixel (%ld, %ld): expected %s", (long)x, (long)y, ink ? "ink" : "background");
        }
    }
}

static void test_every_glyph_is_well_formed(void **state)
{
    (void)state;
    for (unsigned c = FX_FONT_FIRST; c <= FX_FONT_LAST; c++) {
        unsigned ink = 0;
        for (uint32_t r = 0; r < FX_FONT_GLYPH_HEIGHT; r++) {
            const char *row = fx__font_row((unsigned char)c, r);
            assert_non_null(row);
            assert_int_equal(strlen(row), FX_FONT_GLYPH_WIDTH);
            for (uint32_t k = 0; k < FX_FONT_GLYPH_WIDTH; k++) {
                if (row[k] != '#' && row[k] != '.')
                    fail_msg("glyph '%c' row %u has '%c'", c, r, row[k]);
                ink += row[k] == '#';
            }
        }
        if (c == ' ')
            assert_int_equal(ink, 0);
        else if (ink == 0)
            fail_msg("glyph '%c' (%u) is empty", c, c);
    }
    assert_null(fx__font_row('A', FX_FONT_GLYPH_HEIGHT));
}

static bool same_glyph(unsigned char a, unsigned char b)
{
    for (uint32_t r = 0; r < FX_FONT_GLYPH_HEIGHT; r++)
        if (strcmp(fx__font_row(a, r), fx__font_row(b, r)) != 0)
            return false;
    return true;
}

static bool has_descender(unsigned char c)
{
    return strchr(fx__font_row(c, 7), '#') || strchr(fx__font_row(c, 8), '#');
}

static void test_glyphs_are_distinct_and_descend_where_expected(void **state)
{
    (void)state;
    for (unsigned a = FX_FONT_FIRST; a <= FX_FONT_LAST; a++)
        for (unsigned b = a + 1; b <= FX_FONT_LAST; b++)
            if (same_glyph((unsigned char)a, (unsigned char)b))
                fail_msg("glyphs '%c' and '%c' are identical", a, b);
    for (const char *p = "gjpqy,;_|"; *p; p++)
        if (!has_descender((unsigned char)*p))
            fail_msg("'%c' should reach below the baseline", *p);
    for (const char *p = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefhiklmnorstuvwxz.:!?%"; *p; p++)
        if (has_descender((unsigned char)*p))
            fail_msg("'%c' should sit on the baseline", *p);
}

static void test_non_ascii_bytes_use_question_mark(void **state)
{
    (void)state;
    const unsigned char others[] = {0x01, 0x1f, 0x7f, 0x80, 0xc3, 0xff};
    for (size_t i = 0; i < sizeof others; i++)
        assert_true(same_glyph(others[i], '?'));

    fx_image a = make_rgb(20, 12), b = make_rgb(20, 12);
    fx__draw_text(&a, 1, 1, "x\xc3\xa9y", white, 1);
    fx__draw_text(&b, 1, 1, "x??y", white, 1);
    assert_memory_equal(a.data, b.data, 20 * 12 * 3);
    fx_image_free(&a);
    fx_image_free(&b);
}

static void test_text_width_and_height(void **state)
{
    (void)state;
    assert_int_equal(fx__text_width(NULL, 1), 0);
    assert_int_equal(fx__text_width("", 3), 0);
    assert_int_equal(fx__text_width("A", 1), 5);
    assert_int_equal(fx__text_width("A", 2), 10);
    assert_int_equal(fx__text_width("Ab", 1), 11);        /* 5 + 1 spacing + 5 */
    assert_int_equal(fx__text_width("Overlay", 2), 82);   /* (7 * 6 - 1) * 2 */
    assert_int_equal(fx__text_width("0.5", 3), 51);       /* (3 * 6 - 1) * 3 */
    assert_int_equal(fx__text_width("x", 0), 0);
    assert_int_equal(fx__text_width("abc", UINT32_MAX), UINT32_MAX); /* saturates */
    assert_int_equal(fx__text_height(1), 9);
    assert_int_equal(fx__text_height(2), 18);
}

static void test_rendered_glyphs_match_their_bitmaps(void **state)
{
    (void)state;
    /* "A" at scale 1, then "g" (with its descender) at scale 3. */
    fx_image img = make_rgb(9, 13);
    fx__draw_text(&img, 2, 3, "A", white, 1);
    expect_bitmap(&img, 2, 3, glyph_A, 1);
    fx_image_free(&img);

    img = make_rgb(20, 30);
    fx__draw_text(&img, 3, 1, "g", white, 3);
    expect_bitmap(&img, 3, 1, glyph_g, 3);
    fx_image_free(&img);

    /* Second glyph of a string starts one advance (6 columns) later. */
    img = make_rgb(16, 11);
    fx__draw_text(&img, -6, 1, "A0", white, 1); /* 'A' falls entirely off the left edge */
    expect_bitmap(&img, 0, 1, glyph_0, 1);
    fx_image_free(&img);
}

static void test_text_color_and_background(void **state)
{
    (void)state;
    fx_image img = make_rgb(8, 10);
    memset(img.data, 7, 8 * 10 * 3);
    const uint8_t red[3] = {200, 10, 20};
    fx__draw_text(&img, 0, 0, "I", red, 1);
    const uint8_t *top_left = fx__row(&img, 0);
    assert_int_equal(top_left[0], 7); /* 'I' row 0 is ".###.": column 0 untouched */
    assert_int_equal(top_left[3 + 0], 200);
    assert_int_equal(top_left[3 + 1], 10);
    assert_int_equal(top_left[3 + 2], 20);
    fx_image_free(&img);
}

/* Draws at positions straddling every edge of an image that sits inside a
 * larger buffer, and checks the guard area around it stays untouched. */
static void test_clipping_at_every_edge(void **state)
{
    (void)state;
    const uint32_t w = 13, h = 11, pad = 16;
    const size_t stride = (w + 2 * pad) * 3;
    uint8_t *buffer = calloc((h + 2 * pad) * stride, 1);
    assert_non_null(buffer);
    memset(buffer, 0x5a, (h + 2 * pad) * stride);
    fx_image view = {.data = buffer + pad * stride + pad * 3, .stride = stride, .width = w, .height = h,
                     .channels = 3, .pixel_type = FX_PIXEL_U8};
    for (uint32_t y = 0; y < h; y++)
        memset(fx__row(&view, y), 0, w * 3);

    const int32_t positions[][2] = {{-3, -4}, {10, -4}, {-3, 7}, {10, 7}, {-20, 0}, {0, -30},
                                    {14, 0},  {0, 12},  {INT32_MIN, INT32_MIN}, {INT32_MAX, INT32_MAX}};
    for (size_t i = 0; i < sizeof positions / sizeof positions[0]; i++)
        for (uint32_t scale = 1; scale <= 3; scale++)
            fx__draw_text(&view, positions[i][0], positions[i][1], "Wg@#", white, scale);
    fx__draw_text(&view, INT32_MIN, 0, "A", white, UINT32_MAX);
    fx__draw_text(&view, -5, -5, "M", white, 1u << 20); /* one huge 'M': row 0 col 0 is ink */

    for (uint32_t y = 0; y < h + 2 * pad; y++)
        for (uint32_t x = 0; x < (w + 2 * pad) * 3; x++) {
            bool inside = y >= pad && y < pad + h && x >= pad * 3 && x < (pad + w) * 3;
            if (!inside && buffer[y * stride + x] != 0x5a)
                fail_msg("byte %u of guard row %u was written", x, y);
        }
    assert_true(inked(&view, 0, 0));
    free(buffer);

    /* The visible part of a clipped glyph is the right part of its bitmap. */
    fx_image img = make_rgb(4, 6);
    fx__draw_text(&img, -1, -2, "A", white, 1);
    expect_bitmap(&img, -1, -2, glyph_A, 1);
    fx_image_free(&img);
}

static void test_draw_ignores_unusable_arguments(void **state)
{
    (void)state;
    fx_image gray = {0};
    assert_int_equal(fx_image_alloc(&gray, 8, 10, 1, FX_PIXEL_U8), FX_OK);
    fx__draw_text(&gray, 0, 0, "A", white, 1);
    for (size_t i = 0; i < 80; i++)
        assert_int_equal(((uint8_t *)gray.data)[i], 0);
    fx_image_free(&gray);

    fx_image img = make_rgb(8, 10);
    fx__draw_text(NULL, 0, 0, "A", white, 1);
    fx__draw_text(&img, 0, 0, NULL, white, 1);
    fx__draw_text(&img, 0, 0, "A", NULL, 1);
    fx__draw_text(&img, 0, 0, "A", white, 0);
    for (size_t i = 0; i < 8 * 10 * 3; i++)
        assert_int_equal(((uint8_t *)img.data)[i], 0);
    fx_image_free(&img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_glyph_is_well_formed),
        cmocka_unit_test(test_glyphs_are_distinct_and_descend_where_expected),
        cmocka_unit_test(test_non_ascii_bytes_use_question_mark),
        cmocka_unit_test(test_text_width_and_height),
        cmocka_unit_test(test_rendered_glyphs_match_their_bitmaps),
        cmocka_unit_test(test_text_color_and_background),
        cmocka_unit_test(test_clipping_at_every_edge),
        cmocka_unit_test(test_draw_ignores_unusable_arguments),
    };
    return cmocka_run_group_tests_name("font", tests, NULL, NULL);
}
