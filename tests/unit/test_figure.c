/* Figures: exact sizes from the documented layout, panel contents compared
 * with the building blocks they are made of (resize, colormap, overlay),
 * titles and captions compared with text rendered independently, and every
 * bad argument. The composed figures are also written as PNG into the build
 * directory for a person to look at. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "font.h"
#include "fx_internal.h"

#define STAMP "2026-11-27T17:30:00Z"

/* ---- The layout as documented at the top of lib/figure.c ---------------- */

typedef struct expected_layout {
    uint32_t s, pw, ph, panel_x[4], panels_y, bar_x, diff_bar_x, band_y, width, height;
} expected_layout;

static uint32_t text_w(const char *t, uint32_t s)
{
    return t[0] ? (uint32_t)(strlen(t) * 6 - 1) * s : 0;
}

/* panels 3: compose (one 0..1 bar after panel 3). panels 4: compare, whose
 * 0..1 bar follows panel 3 and whose difference panel 4 has its own bar,
 * labelled diff_top ("%.2g" of the maximum), diff_middle and "0". */
static expected_layout expect_layout_bars(uint32_t panels, uint32_t pw, uint32_t ph, const char *line1,
                                          const char *line2, const char *diff_top, const char *diff_middle)
{
    expected_layout e;
    e.s = ph >= 768 ? 3 : ph >= 256 ? 2 : 1;
    e.pw = pw;
    e.ph = ph;
    uint32_t s = e.s;
    /* from the left edge of panel 1 */
    uint32_t rel[4] = {0, pw + 12 * s, 2 * (pw + 12 * s), 0};
    uint32_t bar = 3 * pw + 2 * 12 * s + 16 * s;
    uint32_t content = bar + (12 + 4 + 4) * s + 17 * s; /* "0.5" is the widest label of the 0..1 bar */
    uint32_t diff_bar = 0;
    if (panels == 4) {
        rel[3] = content + 12 * s;
        diff_bar = rel[3] + pw + 16 * s;
        uint32_t label = text_w(diff_top, s) > text_w(diff_middle, s) ? text_w(diff_top, s) : text_w(diff_middle, s);
        label = label > text_w("0", s) ? label : text_w("0", s);
        content = diff_bar + (12 + 4 + 4) * s + label;
    }
    uint32_t caption = text_w(line2, s);
    if (line1 && text_w(line1, s) > caption)
        caption = text_w(line1, s);
    uint32_t inner = content > caption ? content : caption;
    e.width = inner + 32 * s;
    uint32_t left = 16 * s + (inner - content) / 2;
    for (int i = 0; i < 4; i++)
        e.panel_x[i] = left + rel[i];
    e.bar_x = left + bar;
    e.diff_bar_x = left + diff_bar;
    e.panels_y = (16 + 9 + 7) * s;
    e.band_y = e.panels_y + ph + 16 * s;
    uint32_t lines = line1 ? 2 : 1;
    e.height = e.band_y + 20 * s + lines * 9 * s + (lines - 1) * 7 * s;
    return e;
}

static expected_layout expect_layout(uint32_t panels, uint32_t pw, uint32_t ph, const char *line1,
                                     const char *line2)
{
    assert_int_equal(panels, 3);
    return expect_layout_bars(3, pw, ph, line1, line2, NULL, NULL);
}

static uint32_t panel_left(const expected_layout *e, uint32_t i)
{
    return e->panel_x[i];
}

/* ---- Test images -------------------------------------------------------- */

/* A radiograph-like 12-bit image: dark background, soft tissue, a long bone
 * with a bright cortex and a darker marrow, broken by a thin oblique gap. */
static fx_image make_radiograph(uint32_t w, uint32_t h)
{
    fx_image img = {0};
    assert_int_equal(fx_image_alloc(&img, w, h, 1, FX_PIXEL_U16), FX_OK);
    for (uint32_t y = 0; y < h; y++) {
        uint16_t *row = (uint16_t *)fx__row(&img, y);
        double v = (double)y / h;
        for (uint32_t x = 0; x < w; x++) {
            double u = (double)x / w;
            double value = 250 + 120 * v;
            double tissue = (u - 0.5) * (u - 0.5) / 0.09 + (v - 0.5) * (v - 0.5) / 0.3;
            if (tissue < 1)
                value += 900 * (1 - tissue * tissue);
            /* bone: a shaft whose half-width grows towards both ends */
            double half = 0.08 + 0.10 * pow(fabs(v - 0.5) * 2, 3);
            double d = fabs(u - 0.5 - 0.03 * sin(v * 3.0)) / half;
            if (d < 1) {
                double cortex = d > 0.65 ? 1.0 : 0.72 + 0.28 * d / 0.65;
                value += 2600 * cortex * (0.85 + 0.15 * v);
            }
            double gap = fabs((v - 0.42) - 0.25 * (u - 0.5));
            if (d < 1 && gap < 0.006)
                value -= 1900;
            row[x] = (uint16_t)(value < 0 ? 0 : value > 4095 ? 4095 : value);
        }
    }
    return img;
}

static fx_image make_blob(uint32_t w, uint32_t h, double cx, double cy, double sigma, double peak)
{
    fx_image map = {0};
    assert_int_equal(fx_image_alloc(&map, w, h, 1, FX_PIXEL_F32), FX_OK);
    for (uint32_t y = 0; y < h; y++) {
        float *row = (float *)fx__row(&map, y);
        for (uint32_t x = 0; x < w; x++) {
            double dx = (x - cx * w) / (sigma * w), dy = (y - cy * h) / (sigma * h);
            row[x] = (float)(peak * exp(-0.5 * (dx * dx + dy * dy)));
        }
    }
    return map;
}

static fx_image make_gray8(uint32_t w, uint32_t h)
{
    fx_image img = {0};
    assert_int_equal(fx_image_alloc(&img, w, h, 1, FX_PIXEL_U8), FX_OK);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            fx__row(&img, y)[x] = (uint8_t)((x * 7 + y * 3) % 256);
    return img;
}

static fx_figure_options full_options(void)
{
    fx_figure_options o;
    fx_figure_options_init(&o);
    o.label = "fracture";
    o.confidence = 0.934f;
    o.method = "Grad-CAM";
    o.layer = "layer4";
    o.timestamp = STAMP;
    return o;
}

#define LINE1 "Prediction: fracture   Confidence: 93.4%"
#define LINE2 "Method: Grad-CAM   Layer: layer4   Time: " STAMP

static void save_for_review(const fx_image *img, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", FX_TEST_BUILD_DIR, name);
    assert_int_equal(fx_image_save(path, img, NULL), FX_OK);
}

/* ---- Region comparisons ------------------------------------------------- */

static const uint8_t *pixel(const fx_image *img, uint32_t x, uint32_t y)
{
    return fx__row(img, y) + (size_t)x * 3;
}

/* Compares the w x h block of fig at (x, y) with src at (sx, sy). */
static void expect_block(const fx_image *fig, uint32_t x, uint32_t y, const fx_image *src, uint32_t sx, uint32_t sy,
                         uint32_t w, uint32_t h, const char *what)
{
    assert_true(x + w <= fig->width && y + h <= fig->height);
    for (uint32_t j = 0; j < h; j++)
        if (memcmp(pixel(fig, x, y + j), pixel(src, sx, sy + j), (size_t)w * 3) != 0)
            fail_msg("%s differs in row %u", what, j);
}

static void expect_panel(const fx_image *fig, const expected_layout *e, uint32_t i, const fx_image *src,
                         const char *what)
{
    assert_int_equal(src->width, e->pw);
    assert_int_equal(src->height, e->ph);
    expect_block(fig, panel_left(e, i), e->panels_y, src, 0, 0, e->pw, e->ph, what);
}

/* Renders `text` with fx__draw_text on the figure's own background color and
 * checks the figure holds exactly that block of pixels. The background is
 * read from a pixel the caller knows is background. */
static void expect_text(const fx_image *fig, uint32_t x, uint32_t y, const char *text, uint32_t scale,
                        const uint8_t background[3])
{
    uint32_t w = fx__text_width(text, scale) + 2, h = fx__text_height(scale) + 2;
    fx_image scratch = {0};
    assert_int_equal(fx_image_alloc(&scratch, w, h, 3, FX_PIXEL_U8), FX_OK);
    for (uint32_t j = 0; j < h; j++)
        for (uint32_t i = 0; i < w; i++)
            memcpy(fx__row(&scratch, j) + i * 3, background, 3);
    const uint8_t *ink = NULL;
    /* The text color: the first inked pixel of the figure inside the box. */
    for (uint32_t j = 0; j < h && !ink; j++)
        for (uint32_t i = 0; i < w && !ink; i++)
            if (memcmp(pixel(fig, x - 1 + i, y - 1 + j), background, 3) != 0)
                ink = pixel(fig, x - 1 + i, y - 1 + j);
    assert_non_null(ink);
    uint8_t color[3];
    memcpy(color, ink, 3);
    fx__draw_text(&scratch, 1, 1, text, color, scale);
    char what[300];
    snprintf(what, sizeof what, "text \"%s\"", text);
    expect_block(fig, x - 1, y - 1, &scratch, 0, 0, w, h, what);
    fx_image_free(&scratch);
}

static void expect_caption(const fx_image *fig, const expected_layout *e, const char *line1, const char *line2)
{
    const uint8_t *band = pixel(fig, fig->width - 1, fig->height - 1);
    uint8_t bg[3];
    memcpy(bg, band, 3);
    uint32_t y = e->band_y + 10 * e->s;
    if (line1) {
        expect_text(fig, 16 * e->s, y, line1, e->s, bg);
        y += 16 * e->s;
    }
    expect_text(fig, 16 * e->s, y, line2, e->s, bg);
}

static void expect_title(const fx_image *fig, const expected_layout *e, uint32_t i, const char *title)
{
    uint8_t bg[3];
    memcpy(bg, pixel(fig, 0, 0), 3);
    uint32_t x = panel_left(e, i) + (e->pw - text_w(title, e->s)) / 2;
    expect_text(fig, x, 16 * e->s, title, e->s, bg);
}

/* The building blocks, made the way the figure's panels are described. */
static fx_image resized(const fx_image *src, uint32_t w, uint32_t h)
{
    fx_image out = {.width = w, .height = h};
    assert_int_equal(fx_resize_bilinear(src, &out), FX_OK);
    return out;
}

static fx_image original_panel(const fx_image *image, uint32_t w, uint32_t h)
{
    fx_image rgb = {0};
    assert_int_equal(fx_image_to_rgb8(image, &rgb), FX_OK);
    fx_image out = resized(&rgb, w, h);
    fx_image_free(&rgb);
    return out;
}

static fx_image colored(const fx_image *map, int32_t colormap)
{
    fx_image out = {0};
    assert_int_equal(fx_colormap_apply(map, colormap, &out), FX_OK);
    return out;
}

static fx_image overlaid(const fx_image *rgb, const fx_image *map, const fx_figure_options *o)
{
    fx_overlay_options ov;
    fx_overlay_options_init(&ov);
    ov.alpha = o->alpha;
    ov.colormap = o->colormap;
    ov.threshold = o->threshold;
    fx_image out = {0};
    assert_int_equal(fx_overlay(rgb, map, &ov, &out), FX_OK);
    return out;
}

/* ---- Tests -------------------------------------------------------------- */

static void test_options_init_defaults(void **state)
{
    (void)state;
    fx_figure_options o;
    memset(&o, 0xab, sizeof o);
    fx_figure_options_init(&o);
    assert_int_equal(o.struct_size, sizeof o);
    assert_null(o.label);
    assert_true(o.confidence < 0);
    assert_null(o.method);
    assert_null(o.layer);
    assert_null(o.timestamp);
    assert_float_equal(o.alpha, 0.4f, 0);
    assert_int_equal(o.colormap, FX_COLORMAP_JET);
    assert_float_equal(o.threshold, 0.0f, 0);
    assert_int_equal(o.panel_height, 0);
    assert_null(o.source);
    fx_figure_options_init(NULL); /* no-op */
}

/* Sizes worked out by hand from the layout (see lib/figure.c). */
static void test_compose_dimensions(void **state)
{
    (void)state;
    struct {
        uint32_t w, h, panel_height, out_w, out_h;
    } cases[] = {
        /* 300x200 -> panels 300x200, scale 1: 3*300 + 2*12 + 53 + 32; 16+9+7+200+16 + 45 */
        {300, 200, 0, 1009, 293},
        /* 1000x600 -> its own 600 px (under the 1024 cap), scale 2: 3000 + 48 + 106 + 64; 32+18+14+600+32 + 90 */
        {1000, 600, 0, 3218, 786},
        /* 2000x1500 -> capped to 1024 high, 1365 wide (2000 * 1024 / 1500 = 1365.3), scale 3:
         * 4095 + 72 + 3*(16+12+4+4+17) = 159 + 96 = 4422; 48+27+21+1024+48 + (60 + 54 + 21) = 1303 */
        {2000, 1500, 0, 4422, 1303},
        /* 1024x1024 at the cap; 1025 high is capped: 1024 * 1024 / 1025 = 1023.0 wide */
        {1024, 1024, 0, 3 * 1024 + 72 + 159 + 96, 1303},
        {1024, 1025, 0, 3 * 1023 + 72 + 159 + 96, 1303},
        /* 767 high: still scale 2, the caption's 61 chars (730 px) set the width; 768: scale 3 (1095 px) */
        {100, 767, 0, 730 + 64, 32 + 18 + 14 + 767 + 32 + 90},
        {100, 768, 0, 1095 + 96, 48 + 27 + 21 + 768 + 48 + 135},
        /* 640x480 at 100 px -> 133x100, scale 1: the caption (line 2, 61 chars = 365 px) is narrower */
        {640, 480, 100, 3 * 133 + 24 + 53 + 32, 16 + 9 + 7 + 100 + 16 + 45},
        /* 100x400 at 256 -> 64x256, scale 2: the caption's 61 chars (730 px) set the width */
        {100, 400, 256, 730 + 64, 32 + 18 + 14 + 256 + 32 + 90},
        /* 1x1 -> a single pixel panel, scale 1; caption wins */
        {1, 1, 0, 365 + 32, 16 + 9 + 7 + 1 + 16 + 45},
        /* 512x512: its own size, scale-2 text */
        {512, 512, 0, 3 * 512 + 48 + 106 + 64, 32 + 18 + 14 + 512 + 32 + 90},
    };
    fx_figure_options o = full_options();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fx_image img = make_gray8(cases[i].w, cases[i].h);
        fx_image map = make_blob(cases[i].w, cases[i].h, 0.5, 0.5, 0.2, 1.0);
        o.panel_height = cases[i].panel_height;
        fx_image fig = {0};
        assert_int_equal(fx_figure_compose(&img, &map, &o, &fig), FX_OK);
        if (fig.width != cases[i].out_w || fig.height != cases[i].out_h)
            fail_msg("case %zu (%ux%u, panel %u): figure %ux%u, expected %ux%u", i, cases[i].w, cases[i].h,
                     cases[i].panel_height, fig.width, fig.height, cases[i].out_w, cases[i].out_h);
        assert_int_equal(fig.channels, 3);
        assert_int_equal(fig.pixel_type, FX_PIXEL_U8);
        assert_int_equal(fig.stride, (size_t)fig.width * 3);
        fx_image_free(&fig);
        fx_image_free(&map);
        fx_image_free(&img);
    }
}

static void test_compose_panels_titles_and_caption(void **state)
{
    (void)state;
    fx_image img = make_radiograph(480, 600);
    fx_image map = make_blob(480, 600, 0.55, 0.42, 0.12, 1.0);
    fx_figure_options o = full_options();
    o.colormap = FX_COLORMAP_TURBO;
    o.alpha = 0.5f;
    o.threshold = 0.1f;
    fx_image fig = {0};
    assert_int_equal(fx_figure_compose(&img, &map, &o, &fig), FX_OK);
    /* 600 high, under the 1024 cap: panels at the image's own size */
    expected_layout e = expect_layout(3, 480, 600, LINE1, LINE2);
    assert_int_equal(fig.width, e.width);
    assert_int_equal(fig.height, e.height);

    fx_image orig = original_panel(&img, 480, 600);
    fx_image small_map = resized(&map, 480, 600);
    fx_image heat = colored(&small_map, FX_COLORMAP_TURBO);
    fx_image over = overlaid(&orig, &small_map, &o);
    expect_panel(&fig, &e, 0, &orig, "original panel");
    expect_panel(&fig, &e, 1, &heat, "heatmap panel");
    expect_panel(&fig, &e, 2, &over, "overlay panel");
    /* And one pixel by hand: the blob's centre is hot, the overlay blends it. */
    const uint8_t *centre = pixel(&fig, panel_left(&e, 2) + 264, e.panels_y + 252);
    const uint8_t *o_px = pixel(&orig, 264, 252), *h_px = pixel(&heat, 264, 252);
    for (int c = 0; c < 3; c++)
        assert_int_equal(centre[c], (int)floor(0.5 * o_px[c] + 0.5 * h_px[c] + 0.5));

    expect_title(&fig, &e, 0, "Original");
    expect_title(&fig, &e, 1, "Heatmap (Grad-CAM)");
    expect_title(&fig, &e, 2, "Overlay");
    expect_caption(&fig, &e, LINE1, LINE2);

    /* Color bar: the colormap's top entry at the top, its first at the bottom. */
    uint8_t table[768];
    assert_int_equal(fx_colormap_table(FX_COLORMAP_TURBO, table), FX_OK);
    uint32_t bar_mid = e.bar_x + 6 * e.s;
    assert_memory_equal(pixel(&fig, bar_mid, e.panels_y), table + 3 * 255, 3);
    assert_memory_equal(pixel(&fig, bar_mid, e.panels_y + e.ph - 1), table, 3);
    /* row 299 of 600: v = 300/599 = 0.50083, v * 255 = 127.71 -> index 128 */
    assert_memory_equal(pixel(&fig, bar_mid, e.panels_y + 299), table + 3 * 128, 3);

    save_for_review(&fig, "figure_compose_turbo.png");
    fx_image_free(&fig);
    fx_image_free(&over);
    fx_image_free(&heat);
    fx_image_free(&small_map);
    fx_image_free(&orig);
    fx_image_free(&map);
    fx_image_free(&img);
}

/* A method too long for the heatmap's title at the figure's scale: the title
 * keeps the scale (2 for 320 px panels) and drops the parenthetical, which
 * the caption's Method line gives in full (before, every title fell to
 * scale 1). */
static void test_compose_long_method_keeps_title_scale(void **state)
{
    (void)state;
    fx_image img = make_gray8(320, 320);
    fx_image map = make_blob(320, 320, 0.3, 0.6, 0.15, 0.8);
    fx_figure_options o;
    fx_figure_options_init(&o);
    o.timestamp = STAMP;
    o.method = "Grad-CAM of class fracture, aug-smooth, eigen-smooth";
    fx_image fig = {0};
    assert_int_equal(fx_figure_compose(&img, &map, &o, &fig), FX_OK);
    expected_layout e = expect_layout(3, 320, 320, NULL, "x"); /* the caption is narrower than the panels */
    assert_int_equal(e.s, 2);
    expect_title(&fig, &e, 0, "Original");
    expect_title(&fig, &e, 1, "Heatmap");
    expect_title(&fig, &e, 2, "Overlay");
    fx_image_free(&fig);
    fx_image_free(&map);
    fx_image_free(&img);
}

/* A small image gets scale-1 text, a caption without the prediction line. */
static void test_compose_small_without_prediction(void **state)
{
    (void)state;
    fx_image img = make_gray8(160, 120);
    fx_image map = make_blob(160, 120, 0.3, 0.6, 0.15, 0.8);
    fx_figure_options o;
    fx_figure_options_init(&o);
    o.timestamp = STAMP;
    fx_image fig = {0};
    assert_int_equal(fx_figure_compose(&img, &map, &o, &fig), FX_OK);
    const char *line = "Time: " STAMP;
    expected_layout e = expect_layout(3, 160, 120, NULL, line);
    assert_int_equal(fig.width, e.width);
    assert_int_equal(fig.height, e.height);
    expect_title(&fig, &e, 1, "Heatmap");
    expect_caption(&fig, &e, NULL, line);
    fx_image orig = original_panel(&img, 160, 120);
    expect_panel(&fig, &e, 0, &orig, "original panel");
    fx_image_free(&orig);
    fx_image_free(&fig);
    fx_image_free(&map);
    fx_image_free(&img);
}

static void format_now(char *buf, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;
    assert_non_null(gmtime_r(&now, &tm));
    assert_true(strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0);
}

/* The caption with the figure's own region of a line compared. */
static bool caption_matches(const fx_image *fig, const expected_layout *e, const char *line)
{
    uint32_t s = e->s, x = 16 * s, y = e->band_y + 10 * s;
    uint32_t w = fx__text_width(line, s), h = fx__text_height(s);
    fx_image scratch = {0};
    assert_int_equal(fx_image_alloc(&scratch, w, h, 3, FX_PIXEL_U8), FX_OK);
    for (uint32_t j = 0; j < h; j++)
        for (uint32_t i = 0; i < w; i++)
            memcpy(fx__row(&scratch, j) + i * 3, pixel(fig, fig->width - 1, fig->height - 1), 3);
    const uint8_t detail[3] = {178, 186, 198};
    fx__draw_text(&scratch, 0, 0, line, detail, s);
    bool same = true;
    for (uint32_t j = 0; j < h && same; j++)
        same = memcmp(pixel(fig, x, y + j), fx__row(&scratch, j), (size_t)w * 3) == 0;
    fx_image_free(&scratch);
    return same;
}

static void test_compose_default_timestamp_is_current_utc(void **state)
{
    (void)state;
    fx_image img = make_gray8(64, 48);
    fx_image map = make_blob(64, 48, 0.5, 0.5, 0.3, 1.0);
    char before[64], after[64], line_before[96], line_after[96];
    format_now(before, sizeof before);
    fx_image fig = {0};
    assert_int_equal(fx_figure_compose(&img, &map, NULL, &fig), FX_OK);
    format_now(after, sizeof after);
    assert_int_equal(strlen(before), 20); /* 2026-11-27T17:30:00Z */
    snprintf(line_before, sizeof line_before, "Time: %s", before);
    snprintf(line_after, sizeof line_after, "Time: %s", after);
    expected_layout e = expect_layout(3, 64, 48, NULL, line_before);
    assert_int_equal(fig.width, e.width);
    assert_int_equal(fig.height, e.height);
    assert_true(caption_matches(&fig, &e, line_before) || caption_matches(&fig, &e, line_after));
    assert_false(caption_matches(&fig, &e, "Time: 1999-01-01T00:00:00Z"));
    fx_image_free(&fig);
    fx_image_free(&map);
    fx_image_free(&img);
}

static void test_compose_non_ascii_label_drawn_as_question_marks(void **state)
{
    (void)state;
    fx_image img = make_gray8(80, 60);
    fx_image map = make_blob(80, 60, 0.5, 0.5, 0.3, 1.0);
    fx_figure_options o = full_options();
    o.label = "fractur\xc3\xa9";
    fx_image a = {0}, b = {0};
    assert_int_equal(fx_figure_compose(&img, &map, &o, &a), FX_OK);
    o.label = "fractur??";
    assert_int_equal(fx_figure_compose(&img, &map, &o, &b), FX_OK);
    assert_int_equal(a.width, b.width);
    assert_int_equal(a.height, b.height);
    assert_memory_equal(a.data, b.data, (size_t)a.height * a.stride);
    o.label = "fracturX";
    fx_image c = {0};
    assert_int_equal(fx_figure_compose(&img, &map, &o, &c), FX_OK);
    assert_true(memcmp(a.data, c.data, (size_t)a.height * a.stride) != 0);
    fx_image_free(&a);
    fx_image_free(&b);
    fx_image_free(&c);
    fx_image_free(&map);
    fx_image_free(&img);
}

/* A radiograph stored in 12 of 16 bits is windowed to its own range. */
static void test_compose_16bit_radiograph(void **state)
{
    (void)state;
    fx_image img = make_radiograph(300, 360);
    fx_image map = make_blob(300, 360, 0.52, 0.42, 0.1, 1.0);
    fx_figure_options o = full_options();
    fx_image fig = {0};
    assert_int_equal(fx_figure_compose(&img, &map, &o, &fig), FX_OK);
    expected_layout e = expect_layout(3, 300, 360, LINE1, LINE2);
    assert_int_equal(fig.width, e.width);
    assert_int_equal(fig.height, e.height);
    fx_image orig = original_panel(&img, 300, 360);
    expect_panel(&fig, &e, 0, &orig, "original panel");
    /* Windowed, not divided by 257: the bone in the middle is bright, the corner dark. */
    assert_true(pixel(&fig, panel_left(&e, 0) + 150, e.panels_y + 330)[0] > 150);
    assert_true(pixel(&fig, panel_left(&e, 0) + 2, e.panels_y + 2)[0] < 20);
    save_for_review(&fig, "figure_compose.png"); /* default options: jet, alpha 0.4 */
    fx_image_free(&orig);
    fx_image_free(&fig);
    fx_image_free(&map);
    fx_image_free(&img);
}

/* A 2000 px radiograph with a 2 px dark fracture line: panels are 1024 px
 * high (the cap), a 1.95x reduction. The bilinear samples, 1.95 source px
 * apart, cannot all miss the 2 px where the line is darker than half the
 * background, so the line shows in every row of the panel; at the former 512
 * px (3.9x) whole rows could miss it. */
static void test_compose_large_image_keeps_hairline(void **state)
{
    (void)state;
    fx_image img = {0};
    assert_int_equal(fx_image_alloc(&img, 1600, 2000, 1, FX_PIXEL_U8), FX_OK);
    for (uint32_t y = 0; y < 2000; y++) {
        uint8_t *row = fx__row(&img, y);
        memset(row, 220, 1600);
        uint32_t line = 700 + y / 8; /* oblique, 2 px wide */
        row[line] = row[line + 1] = 20;
    }
    fx_image map = make_blob(1600, 2000, 0.5, 0.45, 0.1, 1.0);
    fx_figure_options o = full_options();
    fx_image fig = {0};
    assert_int_equal(fx_figure_compose(&img, &map, &o, &fig), FX_OK);
    expected_layout e = expect_layout(3, 819, 1024, LINE1, LINE2); /* 1600 * 1024 / 2000 = 819.2 */
    assert_int_equal(fig.width, e.width);
    assert_int_equal(fig.height, e.height);
    for (uint32_t y = 0; y < e.ph; y++) {
        uint8_t darkest = 255;
        for (uint32_t x = 0; x < e.pw; x++)
            darkest = pixel(&fig, panel_left(&e, 0) + x, e.panels_y + y)[0] < darkest
                          ? pixel(&fig, panel_left(&e, 0) + x, e.panels_y + y)[0]
                          : darkest;
        if (darkest >= 120)
            fail_msg("panel row %u: the fracture line is lost (darkest %u)", y, darkest);
    }
    save_for_review(&fig, "figure_compose_large.png");
    fx_image_free(&fig);
    fx_image_free(&map);
    fx_image_free(&img);
}

static void test_compare_layout_and_difference(void **state)
{
    (void)state;
    fx_image img = make_radiograph(400, 500);
    fx_image a = make_blob(400, 500, 0.55, 0.42, 0.12, 1.0);
    fx_image b = make_blob(400, 500, 0.50, 0.45, 0.16, 0.9);
    fx_figure_options o = full_options();
    fx_image fig = {0};
    assert_int_equal(fx_figure_compare(&img, &a, "Grad-CAM", &b, "Grad-CAM++", &o, &fig), FX_OK);

    fx_image diff = {0};
    assert_int_equal(fx_image_alloc(&diff, 400, 500, 1, FX_PIXEL_F32), FX_OK);
    float max = 0;
    for (uint32_t y = 0; y < 500; y++)
        for (uint32_t x = 0; x < 400; x++) {
            float d = fabsf(((float *)fx__row(&a, y))[x] - ((float *)fx__row(&b, y))[x]);
            ((float *)fx__row(&diff, y))[x] = d;
            max = d > max ? d : max;
        }
    for (uint32_t y = 0; y < 500; y++)
        for (uint32_t x = 0; x < 400; x++)
            ((float *)fx__row(&diff, y))[x] /= max;
    char title[64], top[16], middle[16];
    snprintf(title, sizeof title, "|A-B| (max %.2g)", (double)max);
    snprintf(top, sizeof top, "%.2g", (double)max);
    snprintf(middle, sizeof middle, "%.2g", (double)max / 2);
    assert_true(max > 0.1f && max < 1.0f);
    /* 500 high -> 500 px panels, 400 wide, scale 2; the difference has its
     * own bar labelled 0 .. max */
    expected_layout e = expect_layout_bars(4, 400, 500, LINE1, LINE2, top, middle);
    assert_int_equal(fig.width, e.width);
    assert_int_equal(fig.height, e.height);

    fx_image orig = original_panel(&img, 400, 500);
    fx_image ra = resized(&a, 400, 500), rb = resized(&b, 400, 500), rd = resized(&diff, 400, 500);
    fx_image oa = overlaid(&orig, &ra, &o), ob = overlaid(&orig, &rb, &o), cd = colored(&rd, o.colormap);
    expect_panel(&fig, &e, 0, &orig, "original panel");
    expect_panel(&fig, &e, 1, &oa, "map_a panel");
    expect_panel(&fig, &e, 2, &ob, "map_b panel");
    expect_panel(&fig, &e, 3, &cd, "difference panel");
    expect_title(&fig, &e, 1, "Grad-CAM");
    expect_title(&fig, &e, 2, "Grad-CAM++");
    expect_title(&fig, &e, 3, title);
    expect_caption(&fig, &e, LINE1, LINE2);

    /* Both bars run from the colormap's top entry to its first; the
     * difference's bar is labelled with its maximum at the top, half of it
     * in the middle and 0 at the bottom, beside its ticks. */
    uint8_t table[768], bg[3];
    assert_int_equal(fx_colormap_table(o.colormap, table), FX_OK);
    memcpy(bg, pixel(&fig, 0, 0), 3);
    uint32_t bars[2] = {e.bar_x, e.diff_bar_x};
    for (int b = 0; b < 2; b++) {
        assert_memory_equal(pixel(&fig, bars[b] + 6 * e.s, e.panels_y), table + 3 * 255, 3);
        assert_memory_equal(pixel(&fig, bars[b] + 6 * e.s, e.panels_y + e.ph - 1), table, 3);
    }
    uint32_t label_x = e.diff_bar_x + (12 + 4 + 4) * e.s;
    int32_t ascent_half = (int32_t)(7 * e.s) / 2; /* labels centred on their tick: ty - ascent * s / 2 */
    expect_text(&fig, label_x, (uint32_t)((int32_t)e.panels_y - ascent_half), top, e.s, bg);
    expect_text(&fig, label_x, (uint32_t)((int32_t)(e.panels_y + (e.ph - 1) / 2) - ascent_half), middle, e.s, bg);
    expect_text(&fig, label_x, (uint32_t)((int32_t)(e.panels_y + e.ph - 1) - ascent_half), "0", e.s, bg);
    expect_text(&fig, e.bar_x + 20 * e.s, (uint32_t)((int32_t)e.panels_y - ascent_half), "1", e.s, bg);
    save_for_review(&fig, "figure_compare.png");

    fx_image_free(&cd);
    fx_image_free(&ob);
    fx_image_free(&oa);
    fx_image_free(&rd);
    fx_image_free(&rb);
    fx_image_free(&ra);
    fx_image_free(&orig);
    fx_image_free(&diff);
    fx_image_free(&fig);
    fx_image_free(&b);
    fx_image_free(&a);
    fx_image_free(&img);
}

static void test_compare_identical_maps_give_zero_color(void **state)
{
    (void)state;
    fx_image img = make_gray8(200, 150);
    fx_image a = make_blob(200, 150, 0.5, 0.5, 0.2, 1.0);
    fx_figure_options o = full_options();
    o.colormap = FX_COLORMAP_VIRIDIS;
    fx_image fig = {0};
    /* b differs from a by one ulp here and there: rounding, not a difference
     * (the relative guard); the panel must not stretch it to full color. */
    fx_image b = make_blob(200, 150, 0.5, 0.5, 0.2, 1.0);
    for (uint32_t y = 0; y < 150; y += 3)
        for (uint32_t x = 0; x < 200; x += 7)
            ((float *)fx__row(&b, y))[x] = nextafterf(((float *)fx__row(&b, y))[x], 2.0f);
    assert_int_equal(fx_figure_compare(&img, &a, NULL, &b, NULL, &o, &fig), FX_OK);
    expected_layout e = expect_layout_bars(4, 200, 150, LINE1, LINE2, "0", "");
    assert_int_equal(fig.width, e.width);
    assert_int_equal(fig.height, e.height);
    uint8_t table[768];
    assert_int_equal(fx_colormap_table(FX_COLORMAP_VIRIDIS, table), FX_OK);
    uint32_t x0 = panel_left(&e, 3);
    for (uint32_t y = 0; y < e.ph; y++)
        for (uint32_t x = 0; x < e.pw; x++)
            if (memcmp(pixel(&fig, x0 + x, e.panels_y + y), table, 3) != 0)
                fail_msg("difference panel pixel (%u, %u) is not the colormap's zero color", x, y);
    expect_title(&fig, &e, 1, "Map A");
    expect_title(&fig, &e, 2, "Map B");
    expect_title(&fig, &e, 3, "|A-B| (max 0)");
    fx_image_free(&fig);
    fx_image_free(&b);
    fx_image_free(&a);
    fx_image_free(&img);
}

/* A title wider than its panel drops all titles to scale 1; one still too
 * wide is cut with "...". */
static void test_long_titles_fit_their_panel(void **state)
{
    (void)state;
    fx_image img = make_gray8(100, 300); /* panels 100x300, scale 2 */
    fx_image a = make_blob(100, 300, 0.5, 0.5, 0.2, 1.0);
    fx_figure_options o = full_options();
    fx_image fig = {0};
    /* "Grad-CAM++" is 118 px at scale 2, 59 at scale 1; "A very long method name" is 137 px at scale 1 */
    assert_int_equal(fx_figure_compare(&img, &a, "Grad-CAM++", &a, "A very long method name", &o, &fig), FX_OK);
    expected_layout e = expect_layout_bars(4, 100, 300, LINE1, LINE2, "0", "");
    assert_int_equal(fig.width, e.width);
    uint8_t bg[3];
    memcpy(bg, pixel(&fig, 0, 0), 3);
    /* Scale-1 titles share the baseline of scale-2 ones: top at 16*2 + 7*2 - 7. */
    uint32_t y = 32 + 14 - 7;
    expect_text(&fig, panel_left(&e, 0) + (100 - 47) / 2, y, "Original", 1, bg);
    expect_text(&fig, panel_left(&e, 1) + (100 - 59) / 2, y, "Grad-CAM++", 1, bg);
    /* 100 px hold 16 characters at scale 1: 13 + "..." */
    expect_text(&fig, panel_left(&e, 2) + (100 - 95) / 2, y, "A very long m...", 1, bg);
    fx_image_free(&fig);
    fx_image_free(&a);
    fx_image_free(&img);
}

/* Checks the caption band holds exactly these lines, top to bottom. */
static void expect_caption_lines(const fx_image *fig, uint32_t band_y, uint32_t s, const char *const *lines,
                                 size_t count)
{
    uint8_t bg[3];
    memcpy(bg, pixel(fig, fig->width - 1, fig->height - 1), 3);
    for (size_t i = 0; i < count; i++)
        expect_text(fig, 16 * s, band_y + 10 * s + (uint32_t)i * 16 * s, lines[i], s, bg);
}

#define LONG_SOURCE                                                                                                \
    "/data/hospital_a/radiographs/2024/wrist/patient_000123/study_000456/series_000789/"                           \
    "image_000000000042_lateral_view.png | model /models/fracture/resnet50_wrist_v3.pt"

/* A caption longer than a line is wrapped at field boundaries into a taller
 * band: the figure keeps its width and every field is drawn, the time too
 * (lines were once cut at 100 characters, losing the time). The lines were
 * worked out by hand from the rule at the top of lib/figure.c. */
static void test_long_caption_wraps_into_taller_band(void **state)
{
    (void)state;
    /* 300x200, scale 1: content 977 px, room for (977 + 1) / 6 = 163 characters */
    fx_image img = make_gray8(300, 200);
    fx_image map = make_blob(300, 200, 0.5, 0.5, 0.2, 1.0);
    fx_figure_options o = full_options();
    fx_image short_fig = {0}, long_fig = {0};
    assert_int_equal(fx_figure_compose(&img, &map, &o, &short_fig), FX_OK);
    o.source = LONG_SOURCE;
    assert_int_equal(fx_figure_compose(&img, &map, &o, &long_fig), FX_OK);
    expected_layout e = expect_layout(3, 300, 200, LINE1, LINE2);
    assert_int_equal(short_fig.width, e.width);
    assert_int_equal(short_fig.height, e.height);
    /* "Method: Grad-CAM   Layer: layer4" (32) + 3 + the source field (171)
     * does not fit in 163: the source starts a line; 171 > 163, so it breaks
     * after its last '/' in characters 82..163 (at 151, ".../fracture/");
     * the rest (20) and the time (3 + 26) share the next line. */
    const char *lines[] = {
        LINE1,
        "Method: Grad-CAM   Layer: layer4",
        "Source: /data/hospital_a/radiographs/2024/wrist/patient_000123/study_000456/series_000789/"
        "image_000000000042_lateral_view.png | model /models/fracture/",
        "resnet50_wrist_v3.pt   Time: " STAMP,
    };
    assert_int_equal(long_fig.width, short_fig.width);
    assert_int_equal(long_fig.height, short_fig.height + 2 * 16); /* two more lines of 9 + 7 px */
    expect_caption_lines(&long_fig, e.band_y, 1, lines, 4);
    /* the panels did not move */
    assert_memory_equal(long_fig.data, short_fig.data, (size_t)e.band_y * short_fig.stride);
    save_for_review(&long_fig, "figure_long_caption.png");
    fx_image_free(&long_fig);
    fx_image_free(&short_fig);

    /* Narrow panels (40x30: content 197 px) still get 80-character lines: 76
     * characters are the widest, so the figure is 76 * 6 - 1 + 32 px wide. */
    fx_image small = make_gray8(40, 30), small_map = make_blob(40, 30, 0.5, 0.5, 0.2, 1.0);
    fx_image fig = {0};
    assert_int_equal(fx_figure_compose(&small, &small_map, &o, &fig), FX_OK);
    const char *narrow[] = {
        LINE1,
        "Method: Grad-CAM   Layer: layer4",
        "Source: /data/hospital_a/radiographs/2024/wrist/patient_000123/study_000456/",
        "series_000789/image_000000000042_lateral_view.png | model /models/fracture/",
        "resnet50_wrist_v3.pt   Time: " STAMP,
    };
    assert_int_equal(fig.width, 76 * 6 - 1 + 32);
    uint32_t band_y = 16 + 9 + 7 + 30 + 16;
    assert_int_equal(fig.height, band_y + 20 + 5 * 9 + 4 * 7);
    expect_caption_lines(&fig, band_y, 1, narrow, 5);
    save_for_review(&fig, "figure_long_caption_narrow.png");
    fx_image_free(&fig);
    fx_image_free(&small_map);
    fx_image_free(&small);
    fx_image_free(&map);
    fx_image_free(&img);
}

/* A runaway value is cut at 512 characters with "..."; the fields after it
 * are still drawn. */
static void test_runaway_label_is_cut_not_the_fields_after_it(void **state)
{
    (void)state;
    fx_image img = make_gray8(300, 200);
    fx_image map = make_blob(300, 200, 0.5, 0.5, 0.2, 1.0);
    fx_figure_options o = full_options();
    char label[700];
    memset(label, 'x', sizeof label - 1);
    label[sizeof label - 1] = '\0';
    o.label = label;
    fx_image fig = {0};
    assert_int_equal(fx_figure_compose(&img, &map, &o, &fig), FX_OK);
    /* "Prediction: " + 509 x + "..." = 524 characters, no space or '/':
     * hard breaks at 163, 163, 163, leaving 35; then "   Confidence: 93.4%" */
    char l1[164], l4[80];
    memcpy(l1, "Prediction: ", 12);
    memset(l1 + 12, 'x', 151);
    l1[163] = '\0';
    char x163[164];
    memset(x163, 'x', 163);
    x163[163] = '\0';
    snprintf(l4, sizeof l4, "%.32s...   Confidence: 93.4%%", x163);
    const char *lines[] = {l1, x163, x163, l4, LINE2};
    expected_layout e = expect_layout(3, 300, 200, LINE1, LINE2);
    assert_int_equal(fig.width, e.width);
    assert_int_equal(fig.height, e.height + 3 * 16);
    expect_caption_lines(&fig, e.band_y, 1, lines, 5);
    fx_image_free(&fig);
    fx_image_free(&map);
    fx_image_free(&img);
}

static void test_compose_rejects_bad_arguments(void **state)
{
    (void)state;
    fx_image img = make_gray8(40, 30);
    fx_image map = make_blob(40, 30, 0.5, 0.5, 0.2, 1.0);
    fx_image small = make_blob(20, 30, 0.5, 0.5, 0.2, 1.0);
    fx_image gray_map = make_gray8(40, 30);
    fx_image rgb_map = {0};
    assert_int_equal(fx_image_alloc(&rgb_map, 40, 30, 3, FX_PIXEL_F32), FX_OK);
    fx_figure_options o = full_options();
    fx_image out = {0};

    assert_int_equal(fx_figure_compose(NULL, &map, &o, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "image is NULL"));
    assert_int_equal(fx_figure_compose(&img, NULL, &o, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "heatmap is NULL"));
    assert_int_equal(fx_figure_compose(&img, &small, &o, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "heatmap is 20x30 but image is 40x30"));
    assert_int_equal(fx_figure_compose(&img, &gray_map, &o, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "heatmap is FX_PIXEL_U8; expected FX_PIXEL_F32"));
    assert_int_equal(fx_figure_compose(&img, &rgb_map, &o, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "heatmap has 3 channels; expected 1"));
    assert_int_equal(fx_figure_compose(&img, &map, &o, NULL), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "out is NULL"));

    uint8_t buffer[16];
    fx_image owned = {.data = buffer, .stride = 3, .width = 1, .height = 1, .channels = 3,
                      .pixel_type = FX_PIXEL_U8};
    assert_int_equal(fx_figure_compose(&img, &map, &o, &owned), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "out->data is not NULL"));
    assert_ptr_equal(owned.data, buffer);

    fx_figure_options b = o;
    b.alpha = 1.5f;
    assert_int_equal(fx_figure_compose(&img, &map, &b, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "alpha is 1.5; valid: 0 to 1"));
    b.alpha = NAN;
    assert_int_equal(fx_figure_compose(&img, &map, &b, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "alpha is nan"));
    b = o;
    b.threshold = -0.25f;
    assert_int_equal(fx_figure_compose(&img, &map, &b, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "threshold is -0.25; valid: 0 to 1"));
    b = o;
    b.confidence = 1.5f;
    assert_int_equal(fx_figure_compose(&img, &map, &b, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "confidence is 1.5; valid: 0 to 1, or negative"));
    b = o;
    b.colormap = 42;
    assert_int_equal(fx_figure_compose(&img, &map, &b, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "fx_figure_options: unknown colormap 42; valid"));
    assert_non_null(strstr(fx_last_error(), "jet (2)"));
    b = o;
    b.panel_height = 9000;
    assert_int_equal(fx_figure_compose(&img, &map, &b, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "panel_height is 9000; valid: 1 to 8192"));
    b = o;
    b.struct_size = 0;
    assert_int_equal(fx_figure_compose(&img, &map, &b, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "struct_size is 0"));
    b = o;
    b.struct_size = sizeof b + 8;
    assert_int_equal(fx_figure_compose(&img, &map, &b, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "larger than this library's"));

    /* An extreme aspect ratio would need panels over 16384 px wide. */
    fx_image wide = make_gray8(4000, 2), wide_map = make_blob(4000, 2, 0.5, 0.5, 0.2, 1.0);
    b = o;
    b.panel_height = 20;
    assert_int_equal(fx_figure_compose(&wide, &wide_map, &b, &out), FX_ERR_LIMIT);
    assert_non_null(strstr(fx_last_error(), "40000 px wide, over the limit of 16384"));

    assert_null(out.data); /* never touched */
    assert_int_equal(out.width, 0);
    fx_image_free(&wide_map);
    fx_image_free(&wide);
    fx_image_free(&rgb_map);
    fx_image_free(&gray_map);
    fx_image_free(&small);
    fx_image_free(&map);
    fx_image_free(&img);
}

/* An options struct from an older, smaller header keeps the defaults for the
 * fields it lacks. */
static void test_compose_accepts_older_options(void **state)
{
    (void)state;
    fx_image img = make_gray8(40, 30);
    fx_image map = make_blob(40, 30, 0.5, 0.5, 0.2, 1.0);
    fx_figure_options o = full_options();
    o.panel_height = 60; /* beyond the struct_size below: ignored */
    o.struct_size = offsetof(fx_figure_options, panel_height);
    fx_image fig = {0};
    assert_int_equal(fx_figure_compose(&img, &map, &o, &fig), FX_OK);
    expected_layout e = expect_layout(3, 40, 30, LINE1, LINE2);
    assert_int_equal(fig.width, e.width);
    assert_int_equal(fig.height, e.height);
    fx_image_free(&fig);
    fx_image_free(&map);
    fx_image_free(&img);
}

static void test_compare_rejects_bad_arguments(void **state)
{
    (void)state;
    fx_image img = make_gray8(40, 30);
    fx_image a = make_blob(40, 30, 0.5, 0.5, 0.2, 1.0);
    fx_image b = make_blob(40, 31, 0.5, 0.5, 0.2, 1.0);
    fx_image u8 = make_gray8(40, 30);
    fx_figure_options o = full_options();
    fx_image out = {0};
    assert_int_equal(fx_figure_compare(NULL, &a, "A", &a, "B", &o, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "image is NULL"));
    assert_int_equal(fx_figure_compare(&img, NULL, "A", &a, "B", &o, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "map_a is NULL"));
    assert_int_equal(fx_figure_compare(&img, &a, "A", &b, "B", &o, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "map_b is 40x31 but image is 40x30"));
    assert_int_equal(fx_figure_compare(&img, &u8, "A", &a, "B", &o, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "map_a is FX_PIXEL_U8; expected FX_PIXEL_F32"));
    assert_int_equal(fx_figure_compare(&img, &a, "A", &a, "B", &o, NULL), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "fx_figure_compare: out is NULL"));
    o.alpha = -1.0f;
    assert_int_equal(fx_figure_compare(&img, &a, "A", &a, "B", &o, &out), FX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(fx_last_error(), "alpha is -1"));
    assert_null(out.data);
    fx_image_free(&u8);
    fx_image_free(&b);
    fx_image_free(&a);
    fx_image_free(&img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_init_defaults),
        cmocka_unit_test(test_compose_dimensions),
        cmocka_unit_test(test_compose_panels_titles_and_caption),
        cmocka_unit_test(test_compose_small_without_prediction),
        cmocka_unit_test(test_compose_long_method_keeps_title_scale),
        cmocka_unit_test(test_compose_default_timestamp_is_current_utc),
        cmocka_unit_test(test_compose_non_ascii_label_drawn_as_question_marks),
        cmocka_unit_test(test_compose_16bit_radiograph),
        cmocka_unit_test(test_compose_large_image_keeps_hairline),
        cmocka_unit_test(test_compare_layout_and_difference),
        cmocka_unit_test(test_compare_identical_maps_give_zero_color),
        cmocka_unit_test(test_long_titles_fit_their_panel),
        cmocka_unit_test(test_long_caption_wraps_into_taller_band),
        cmocka_unit_test(test_runaway_label_is_cut_not_the_fields_after_it),
        cmocka_unit_test(test_compose_rejects_bad_arguments),
        cmocka_unit_test(test_compose_accepts_older_options),
        cmocka_unit_test(test_compare_rejects_bad_arguments),
    };
    return cmocka_run_group_tests_name("figure", tests, NULL, NULL);
}
