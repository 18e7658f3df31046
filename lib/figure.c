/* Report figures: panels side by side with titles, color bars and a caption
 * band, drawn with the built-in font on a dark background.
 *
 * Layout, in pixels, with s the text scale (1 for panels under 256 px high,
 * 2 under 768, else 3) and n panels of pw x ph:
 *
 *   +----------------------------------------------------------------+
 *   | margin 16s                                                     |
 *   |   Title 1         Title 2         Title 3          (9s high)    |
 *   |   (7s)                                                         |
 *   |   [panel 1] 12s [panel 2] 12s [panel 3] 16s [bar 12s]-4s 4s 1   |
 *   |                                               ...         0.5  |
 *   |                                               ...         0    |
 *   |   margin 16s                                                   |
 *   |################ caption band, full width #######################|
 *   |   10s padding, line 1 (9s), 7s, line 2 (9s), ..., 10s padding   |
 *   +----------------------------------------------------------------+
 *
 * A color bar follows the panel whose colors it explains: 16s gap, 12s bar,
 * 4s tick, 4s gap, then its widest tick label (17s for "0.5"); the next
 * panel comes 12s after that. fx_figure_compose has one bar (0..1) after
 * panel 3; fx_figure_compare one (0..1) after panel 3, for the two
 * overlays, and one (0..max) after the difference panel 4, for the
 * difference's own scale.
 *
 *   content width  = n*pw + gaps + bars; for compose
 *                    3*pw + 2*12s + 16s + 12s + 4s + 4s + 17s
 *   line width     = max(content width, 80 characters at scale s)
 *   figure width   = max(content width, widest caption line) + 2 * 16s
 *   figure height  = 16s + 9s + 7s + ph + 16s + band (10s + lines + 10s)
 *
 * The content is centred when the caption is the wider of the two. The
 * caption's fields are "Prediction: ", "Confidence: " (the main lines, left
 * out when neither is given), then "Method: ", "Layer: ", "Source: " and
 * "Time: " (the detail lines). Each group is wrapped greedily at field
 * boundaries, fields three spaces apart, into lines of at most the line
 * width; a field longer than a line is broken inside, after its last space
 * or '/' in the second half of the line, else at the line's end. So a long
 * caption makes the band taller, never the figure wider than its line width,
 * and no field is dropped (lines used to be cut at 100 characters, losing
 * the time or the layer). */
#include "font.h"
#include "fx_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PANELS 4
#define MAX_BARS 2
/* Panels beyond these sizes make figures nobody can open; they are almost
 * always a unit mistake (panel_height in bytes, a transposed image). */
#define MAX_PANEL_HEIGHT 8192u
#define MAX_PANEL_WIDTH 16384u
/* panel_height 0 shows the image at its own height up to this cap, so that a
 * radiograph of 2000 px is halved, not quartered, and a hairline stays
 * visible (issue 9). */
#define DEFAULT_PANEL_CAP 1024u
#define SCALE2_PANEL_HEIGHT 256u
#define SCALE3_PANEL_HEIGHT 768u
/* A caption value longer than this is cut (with "...") so that a runaway
 * label cannot make the band arbitrarily tall. */
#define CAPTION_VALUE_CHARS 512u
/* The narrowest caption line, in characters: narrow panels still get
 * captions of a readable length (a full ISO time and a layer name). */
#define CAPTION_WRAP_CHARS 80u
#define CAPTION_FIELDS 6u                           /* prediction, confidence, method, layer, source, time */
#define CAPTION_FIELD_CHARS (CAPTION_VALUE_CHARS + 16u) /* "Prediction: " and the value */
/* A field breaks after at least half a line (>= CAPTION_WRAP_CHARS / 2 + 1
 * characters), so it takes at most this many lines. */
#define CAPTION_LINES_PER_FIELD (CAPTION_FIELD_CHARS / (CAPTION_WRAP_CHARS / 2 + 1) + 1u)
#define CAPTION_MAX_LINES (CAPTION_FIELDS * CAPTION_LINES_PER_FIELD)
/* Every field, the 3-space separators and one NUL per line. */
#define CAPTION_CHARS (CAPTION_FIELDS * (CAPTION_FIELD_CHARS + 3u) + CAPTION_MAX_LINES)
#define TEXT_MAX 256u

/* Spacing, in font pixels (multiplied by the text scale). */
#define MARGIN 16u
#define PANEL_GAP 12u
#define TITLE_GAP 7u
#define BAR_GAP 16u
#define BAR_WIDTH 12u
#define TICK_LENGTH 4u
#define TICK_LABEL_GAP 4u
#define BAND_PADDING 10u
#define LINE_GAP 7u

static const uint8_t color_background[3] = {22, 24, 29};
static const uint8_t color_band[3] = {38, 42, 50};
static const uint8_t color_frame[3] = {78, 84, 96};
static const uint8_t color_title[3] = {236, 239, 244};
static const uint8_t color_caption_main[3] = {255, 255, 255};
static const uint8_t color_caption_detail[3] = {178, 186, 198};
static const uint8_t color_ticks[3] = {200, 206, 214};

/* A color bar: drawn after panel `after`, labelled top, middle (may be "")
 * and bottom. */
typedef struct color_bar {
    uint32_t after;
    char labels[3][16];
} color_bar;

typedef struct layout {
    uint32_t scale;
    uint32_t panels;
    uint32_t panel_width, panel_height;
    uint32_t panel_x[MAX_PANELS]; /* left edge of each panel */
    uint32_t panels_y;            /* top edge of every panel */
    uint32_t bars;
    color_bar bar[MAX_BARS];
    uint32_t bar_x[MAX_BARS];
    uint32_t band_y;
    uint32_t caption_lines;
    uint32_t width, height;
} layout;

/* One "Name: value" of the caption. */
typedef struct caption_field {
    char text[CAPTION_FIELD_CHARS + 1];
    bool main; /* prediction and confidence: drawn brighter, on lines of their own */
} caption_field;

/* The texts of a figure: titles and caption fields formatted by
 * format_caption(), caption lines wrapped to the layout by wrap_caption(). */
typedef struct figure_text {
    char titles[MAX_PANELS][TEXT_MAX];
    caption_field fields[CAPTION_FIELDS];
    uint32_t field_count;
    char caption[CAPTION_CHARS]; /* the lines one after another, each ending in NUL */
    uint32_t line_start[CAPTION_MAX_LINES];
    bool line_main[CAPTION_MAX_LINES];
    uint32_t caption_lines;
} figure_text;

void fx_figure_options_init(fx_figure_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->label = NULL;
    opts->confidence = -1.0f;
    opts->method = NULL;
    opts->layer = NULL;
    opts->timestamp = NULL;
    opts->alpha = 0.4f;
    opts->colormap = FX_COLORMAP_JET;
    opts->threshold = 0.0f;
    opts->panel_height = 0;
    opts->source = NULL;
    opts->saliency = NULL;
}

/* ---- Argument checks ---------------------------------------------------- */

static fx_status check_options(const fx_figure_options *given, fx_figure_options *o)
{
    fx_figure_options_init(o);
    fx_status st = fx__options_merge(o, sizeof *o, given, "fx_figure_options");
    if (st != FX_OK)
        return st;
    if (!(o->alpha >= 0.0f && o->alpha <= 1.0f))
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_figure_options: alpha is %g; valid: 0 to 1 (weight of the heatmap)",
                         (double)o->alpha);
    if (!(o->threshold >= 0.0f && o->threshold <= 1.0f))
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_figure_options: threshold is %g; valid: 0 to 1 (heatmap values below it are not overlaid)",
                         (double)o->threshold);
    if (isnan(o->confidence) || o->confidence > 1.0f)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_figure_options: confidence is %g; valid: 0 to 1, or negative to leave it out",
                         (double)o->confidence);
    st = fx__colormap_check("fx_figure_options", o->colormap);
    if (st != FX_OK)
        return st;
    if (o->panel_height > MAX_PANEL_HEIGHT)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "fx_figure_options: panel_height is %u; valid: 1 to %u, or 0 for the image height capped to %u",
                         o->panel_height, MAX_PANEL_HEIGHT, DEFAULT_PANEL_CAP);
    return FX_OK;
}

static fx_status check_map(const fx_image *map, const char *what, const fx_image *image)
{
    fx_status st = fx__image_expect(map, what, 1, FX_PIXEL_F32);
    if (st != FX_OK)
        return st;
    if (map->width != image->width || map->height != image->height)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "%s is %ux%u but image is %ux%u; they must be the same size (fx_cam_upsample makes a map at "
                         "the image's size)",
                         what, map->width, map->height, image->width, image->height);
    return FX_OK;
}

static fx_status check_output(const fx_image *out, const char *function)
{
    if (!out)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s: out is NULL", function);
    if (out->data)
        return fx__error(FX_ERR_INVALID_ARGUMENT,
                         "%s: out->data is not NULL; the figure's size is decided by its layout, so pass an fx_image "
                         "with data = NULL and release the result with fx_image_free()",
                         function);
    return FX_OK;
}

/* ---- Sizes -------------------------------------------------------------- */

static fx_status panel_size(const fx_image *image, uint32_t requested_height, uint32_t *width, uint32_t *height)
{
    uint32_t h = requested_height;
    if (h == 0)
        h = image->height < DEFAULT_PANEL_CAP ? image->height : DEFAULT_PANEL_CAP;
    double w = floor((double)image->width * h / image->height + 0.5);
    if (w < 1.0)
        w = 1.0;
    if (w > MAX_PANEL_WIDTH)
        return fx__error(FX_ERR_LIMIT,
                         "a %ux%u image shown %u px high needs panels %.0f px wide, over the limit of %u; lower "
                         "panel_height",
                         image->width, image->height, h, w, MAX_PANEL_WIDTH);
    *width = (uint32_t)w;
    *height = h;
    return FX_OK;
}

static uint32_t text_scale(uint32_t panel_height)
{
    return panel_height >= SCALE3_PANEL_HEIGHT ? 3 : panel_height >= SCALE2_PANEL_HEIGHT ? 2 : 1;
}

static uint32_t widest_label(const color_bar *bar, uint32_t s)
{
    uint32_t w = 0;
    for (int i = 0; i < 3; i++) {
        uint32_t t = fx__text_width(bar->labels[i], s);
        w = t > w ? t : w;
    }
    return w;
}

/* Places panels and bars from left to right, starting at 0; returns the
 * content width. */
static uint32_t place_content(layout *l)
{
    uint32_t s = l->scale, x = 0;
    for (uint32_t i = 0; i < l->panels; i++) {
        if (i > 0)
            x += PANEL_GAP * s;
        l->panel_x[i] = x;
        x += l->panel_width;
        for (uint32_t b = 0; b < l->bars; b++) {
            if (l->bar[b].after != i)
                continue;
            x += BAR_GAP * s;
            l->bar_x[b] = x;
            x += (BAR_WIDTH + TICK_LENGTH + TICK_LABEL_GAP) * s + widest_label(&l->bar[b], s);
        }
    }
    return x;
}

static void wrap_caption(figure_text *text, size_t room);

/* Characters of the built-in font that fit in width px at scale s. */
static size_t chars_in(uint32_t width, uint32_t s)
{
    return ((size_t)width + (FX_FONT_ADVANCE - FX_FONT_GLYPH_WIDTH) * s) / (FX_FONT_ADVANCE * s);
}

/* Places everything and wraps the caption to the line width. */
static layout plan_layout(uint32_t panels, uint32_t panel_width, uint32_t panel_height, figure_text *text,
                          const color_bar *bars, uint32_t bar_count)
{
    layout l = {0};
    uint32_t s = text_scale(panel_height);
    l.scale = s;
    l.panels = panels;
    l.panel_width = panel_width;
    l.panel_height = panel_height;
    l.bars = bar_count;
    memcpy(l.bar, bars, bar_count * sizeof *bars);

    uint32_t content = place_content(&l);
    size_t room = chars_in(content, s);
    wrap_caption(text, room > CAPTION_WRAP_CHARS ? room : CAPTION_WRAP_CHARS);
    l.caption_lines = text->caption_lines;
    uint32_t caption = 0;
    for (uint32_t i = 0; i < text->caption_lines; i++) {
        uint32_t w = fx__text_width(text->caption + text->line_start[i], s);
        caption = w > caption ? w : caption;
    }
    uint32_t inner = content > caption ? content : caption;
    l.width = inner + 2 * MARGIN * s;
    uint32_t left = MARGIN * s + (inner - content) / 2;
    for (uint32_t i = 0; i < panels; i++)
        l.panel_x[i] += left;
    for (uint32_t b = 0; b < bar_count; b++)
        l.bar_x[b] += left;
    l.panels_y = MARGIN * s + fx__text_height(s) + TITLE_GAP * s;
    l.band_y = l.panels_y + panel_height + MARGIN * s;
    uint32_t band = 2 * BAND_PADDING * s + l.caption_lines * fx__text_height(s) + (l.caption_lines - 1) * LINE_GAP * s;
    l.height = l.band_y + band;
    return l;
}

static uint32_t panel_x(const layout *l, uint32_t i)
{
    return l->panel_x[i];
}

/* ---- Texts -------------------------------------------------------------- */

/* Cuts s to at most max_chars characters, ending in "..." when cut. */
static void cut_text(char *s, size_t max_chars)
{
    if (strlen(s) <= max_chars)
        return;
    if (max_chars < 3) {
        s[max_chars] = '\0';
        return;
    }
    memcpy(s + max_chars - 3, "...", 4);
}

static void utc_now(char *buf, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;
    if (now == (time_t)-1 || !gmtime_r(&now, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "time unavailable");
}

/* Adds the field "name" + value, the value cut to CAPTION_VALUE_CHARS. */
static void add_field(figure_text *text, const char *name, const char *value, bool main)
{
    char cut[CAPTION_VALUE_CHARS + 2]; /* one character more than kept: cut_text sees it is too long */
    snprintf(cut, sizeof cut, "%s", value);
    cut_text(cut, CAPTION_VALUE_CHARS);
    caption_field *f = &text->fields[text->field_count++];
    snprintf(f->text, sizeof f->text, "%s%s", name, cut);
    f->main = main;
}

static void format_caption(const fx_figure_options *o, figure_text *text)
{
    char value[32], now[64];
    text->field_count = 0;
    if (o->label)
        add_field(text, "Prediction: ", o->label, true);
    if (o->confidence >= 0.0f) {
        snprintf(value, sizeof value, "%.1f%%", (double)o->confidence * 100.0);
        add_field(text, "Confidence: ", value, true);
    }
    if (o->method)
        add_field(text, "Method: ", o->method, false);
    if (o->layer)
        add_field(text, "Layer: ", o->layer, false);
    if (o->source)
        add_field(text, "Source: ", o->source, false);
    const char *when = o->timestamp;
    if (!when) {
        utc_now(now, sizeof now);
        when = now;
    }
    add_field(text, "Time: ", when, false);
}

/* Where to end a line of at most room characters of text (which is longer):
 * at its last space in the second half of the line (the space is dropped:
 * *skip = 1) or after its last '/' there, so that words and path parts stay
 * whole; else at room. */
static size_t break_point(const char *text, size_t room, size_t *skip)
{
    *skip = 0;
    for (size_t i = room; i > room / 2; i--) {
        if (text[i] == ' ') {
            *skip = 1;
            return i;
        }
        if (text[i - 1] == '/')
            return i;
    }
    return room;
}

static void open_line(figure_text *text, size_t used, bool main)
{
    text->line_start[text->caption_lines] = (uint32_t)used;
    text->line_main[text->caption_lines] = main;
    text->caption_lines++;
}

static void append_chars(figure_text *text, size_t *used, const char *chars, size_t n)
{
    memcpy(text->caption + *used, chars, n);
    *used += n;
}

/* Wraps the fields into lines of at most room (>= CAPTION_WRAP_CHARS)
 * characters, as the comment at the top of this file says. The sizes of
 * figure_text hold the longest caption (see CAPTION_MAX_LINES). */
static void wrap_caption(figure_text *text, size_t room)
{
    size_t used = 0, line = 0; /* line: characters on the open line */
    bool open = false, open_main = false;
    text->caption_lines = 0;
    for (uint32_t f = 0; f < text->field_count; f++) {
        const char *rest = text->fields[f].text;
        size_t n = strlen(rest);
        bool main = text->fields[f].main;
        if (open && (main != open_main || line + 3 + n > room)) {
            text->caption[used++] = '\0';
            open = false;
        }
        if (open) {
            append_chars(text, &used, "   ", 3);
            line += 3;
        } else {
            open_line(text, used, main);
            open = true;
            open_main = main;
            line = 0;
        }
        while (n > room) { /* only on a line of its own */
            size_t skip, cut = break_point(rest, room, &skip);
            append_chars(text, &used, rest, cut);
            text->caption[used++] = '\0';
            rest += cut + skip;
            n -= cut + skip;
            if (n == 0) { /* it ended in the space just dropped */
                open = false;
                break;
            }
            open_line(text, used, main);
        }
        append_chars(text, &used, rest, n);
        line += n;
    }
    if (open)
        text->caption[used++] = '\0';
}

/* ---- Drawing ------------------------------------------------------------ */

static void fill_rect(fx_image *img, uint32_t x, uint32_t y, uint32_t w, uint32_t h, const uint8_t rgb[3])
{
    for (uint32_t j = y; j < y + h && j < img->height; j++) {
        uint8_t *px = fx__row(img, j) + (size_t)x * 3;
        for (uint32_t i = x; i < x + w && i < img->width; i++, px += 3)
            memcpy(px, rgb, 3);
    }
}

/* A 1 px frame just outside the rectangle (x, y, w, h); x, y >= 1. */
static void draw_frame(fx_image *img, uint32_t x, uint32_t y, uint32_t w, uint32_t h, const uint8_t rgb[3])
{
    fill_rect(img, x - 1, y - 1, w + 2, 1, rgb);
    fill_rect(img, x - 1, y + h, w + 2, 1, rgb);
    fill_rect(img, x - 1, y, 1, h, rgb);
    fill_rect(img, x + w, y, 1, h, rgb);
}

static void blit(fx_image *dst, uint32_t x, uint32_t y, const fx_image *src)
{
    for (uint32_t j = 0; j < src->height; j++)
        memcpy(fx__row(dst, y + j) + (size_t)x * 3, fx__row(src, j), (size_t)src->width * 3);
}

/* A title too wide for its panel at the figure's scale loses its
 * parenthetical ("Heatmap (Grad-CAM of class normal, aug-smooth)" ->
 * "Heatmap"): the caption's Method line says the same in full, and the
 * titles keep a legible size instead of all dropping to scale 1. */
static void shorten_titles(const layout *l, figure_text *text)
{
    for (uint32_t i = 0; i < l->panels; i++) {
        char *open = strstr(text->titles[i], " (");
        size_t n = strlen(text->titles[i]);
        if (open && n && text->titles[i][n - 1] == ')' &&
            fx__text_width(text->titles[i], l->scale) > l->panel_width)
            *open = '\0';
    }
}

/* The scale of every title: the figure's, unless one of them would be wider
 * than its panel; then all drop to 1 so that they keep matching. */
static uint32_t title_scale(const layout *l, const figure_text *text)
{
    for (uint32_t i = 0; i < l->panels; i++)
        if (fx__text_width(text->titles[i], l->scale) > l->panel_width)
            return 1;
    return l->scale;
}

/* Draws a title centred over a panel, cut with "..." when it does not fit. */
static void draw_title(fx_image *img, const layout *l, uint32_t i, const char *title, uint32_t s)
{
    char text[TEXT_MAX];
    snprintf(text, sizeof text, "%s", title);
    size_t fit = (l->panel_width + (FX_FONT_ADVANCE - FX_FONT_GLYPH_WIDTH) * s) / (FX_FONT_ADVANCE * s);
    cut_text(text, fit);
    uint32_t w = fx__text_width(text, s);
    uint32_t x = panel_x(l, i) + (l->panel_width - w) / 2;
    /* Smaller text sits on the baseline full-size titles would have. */
    uint32_t y = l->panels_y - TITLE_GAP * l->scale - FX_FONT_ASCENT * s -
                 (FX_FONT_GLYPH_HEIGHT - FX_FONT_ASCENT) * l->scale;
    fx__draw_text(img, (int32_t)x, (int32_t)y, text, color_title, s);
}

/* Color bar b: the colormap from its top entry (top) to its first (bottom)
 * beside its panel, with ticks at the top, middle and bottom rows and their
 * labels. */
static void draw_color_bar(fx_image *img, const layout *l, uint32_t b, const uint8_t table[768])
{
    uint32_t s = l->scale, h = l->panel_height, y0 = l->panels_y, x0 = l->bar_x[b];
    for (uint32_t r = 0; r < h; r++) {
        double v = h > 1 ? (double)(h - 1 - r) / (h - 1) : 1.0;
        fill_rect(img, x0, y0 + r, BAR_WIDTH * s, 1, table + 3 * (size_t)fx__unit_to_u8((float)v));
    }
    draw_frame(img, x0, y0, BAR_WIDTH * s, h, color_frame);

    const color_bar *bar = &l->bar[b];
    bool middle = h >= 4 * fx__text_height(s) && bar->labels[1][0]; /* no room on short panels */
    for (uint32_t t = 0; t < 3; t++) {
        if (t == 1 && !middle)
            continue;
        uint32_t ty = y0 + (t == 0 ? 0 : t == 1 ? (h - 1) / 2 : h - 1);
        uint32_t tx = x0 + BAR_WIDTH * s + 1;
        uint32_t top = ty >= s / 2 ? ty - s / 2 : 0;
        fill_rect(img, tx, top, TICK_LENGTH * s - 1, s, color_ticks);
        int32_t label_y = (int32_t)ty - (int32_t)(FX_FONT_ASCENT * s) / 2;
        fx__draw_text(img, (int32_t)(tx - 1 + (TICK_LENGTH + TICK_LABEL_GAP) * s), label_y, bar->labels[t],
                      color_ticks, s);
    }
}

static void draw_caption(fx_image *img, const layout *l, const figure_text *text)
{
    uint32_t s = l->scale;
    fill_rect(img, 0, l->band_y, img->width, img->height - l->band_y, color_band);
    fill_rect(img, 0, l->band_y, img->width, 1, color_frame);
    for (uint32_t i = 0; i < text->caption_lines; i++) {
        uint32_t y = l->band_y + BAND_PADDING * s + i * (fx__text_height(s) + LINE_GAP * s);
        fx__draw_text(img, (int32_t)(MARGIN * s), (int32_t)y, text->caption + text->line_start[i],
                      text->line_main[i] ? color_caption_main : color_caption_detail, s);
    }
}

/* ---- Composition -------------------------------------------------------- */

/* The bar of a map in [0, 1]. */
static color_bar unit_bar(uint32_t after)
{
    color_bar b = {.after = after, .labels = {"1", "0.5", "0"}};
    return b;
}

/* Draws the figure from panels already at the panel size (RGB8). */
static fx_status draw_figure(const fx_image *panels, uint32_t count, figure_text *text, int32_t colormap,
                             const color_bar *bars, uint32_t bar_count, fx_image *out)
{
    uint8_t table[768];
    fx_status st = fx_colormap_table(colormap, table);
    if (st != FX_OK)
        return st;
    layout l = plan_layout(count, panels[0].width, panels[0].height, text, bars, bar_count);
    fx_image canvas = {0};
    st = fx_image_alloc(&canvas, l.width, l.height, 3, FX_PIXEL_U8);
    if (st != FX_OK)
        return st;
    fill_rect(&canvas, 0, 0, l.width, l.height, color_background);
    shorten_titles(&l, text);
    uint32_t titles = title_scale(&l, text);
    for (uint32_t i = 0; i < count; i++) {
        uint32_t x = panel_x(&l, i);
        draw_frame(&canvas, x, l.panels_y, l.panel_width, l.panel_height, color_frame);
        blit(&canvas, x, l.panels_y, &panels[i]);
        draw_title(&canvas, &l, i, text->titles[i], titles);
    }
    for (uint32_t b = 0; b < bar_count; b++)
        draw_color_bar(&canvas, &l, b, table);
    draw_caption(&canvas, &l, text);
    *out = canvas;
    return FX_OK;
}

static void free_images(fx_image *images, size_t count)
{
    for (size_t i = 0; i < count; i++)
        fx_image_free(&images[i]);
}

/* The image as 8-bit RGB at the panel size. */
static fx_status image_panel(const fx_image *image, uint32_t w, uint32_t h, fx_image *panel)
{
    fx_image rgb = {0};
    fx_status st = fx_image_to_rgb8(image, &rgb);
    if (st != FX_OK)
        return st;
    panel->width = w;
    panel->height = h;
    st = fx_resize_bilinear(&rgb, panel);
    fx_image_free(&rgb);
    return st;
}

static fx_status map_at_panel_size(const fx_image *map, uint32_t w, uint32_t h, fx_image *resized)
{
    resized->width = w;
    resized->height = h;
    return fx_resize_bilinear(map, resized);
}

static fx_overlay_options overlay_options(const fx_figure_options *o)
{
    fx_overlay_options ov;
    fx_overlay_options_init(&ov);
    ov.alpha = o->alpha;
    ov.colormap = o->colormap;
    ov.threshold = o->threshold;
    return ov;
}

/* The checks and sizes both layouts share: the output, the options, and the
 * panel size they give for this image. */
static fx_status prepare_layout(const fx_image *image, const fx_figure_options *opts, fx_image *out, const char *fn,
                                fx_figure_options *o, uint32_t *pw, uint32_t *ph)
{
    fx_status st = check_output(out, fn);
    if (st == FX_OK)
        st = check_options(opts, o);
    if (st == FX_OK)
        st = panel_size(image, o->panel_height, pw, ph);
    return st;
}

fx_status fx_figure_compose(const fx_image *image, const fx_image *heatmap, const fx_figure_options *opts,
                            fx_image *out)
{
    fx_figure_options o;
    uint32_t pw = 0, ph = 0;
    fx_status st = fx__image_check(image, "image");
    if (st == FX_OK)
        st = check_map(heatmap, "heatmap", image);
    if (st == FX_OK)
        st = prepare_layout(image, opts, out, "fx_figure_compose", &o, &pw, &ph);
    if (st != FX_OK)
        return st;

    figure_text text;
    memset(&text, 0, sizeof text);
    snprintf(text.titles[0], TEXT_MAX, "Original");
    if (o.method)
        snprintf(text.titles[1], TEXT_MAX, "Heatmap (%s)", o.method);
    else
        snprintf(text.titles[1], TEXT_MAX, "Heatmap");
    snprintf(text.titles[2], TEXT_MAX, "Overlay");
    uint32_t count = o.saliency ? 4 : 3;
    if (o.saliency) {
        snprintf(text.titles[3], TEXT_MAX, "Saliency (%s)", o.method ? o.method : "input gradient");
        st = fx__image_check(o.saliency, "fx_figure_options.saliency");
        if (st == FX_OK && (o.saliency->width != image->width || o.saliency->height != image->height))
            st = fx__error(FX_ERR_INVALID_ARGUMENT, "fx_figure_options.saliency is %ux%u but the image is %ux%u; "
                                                    "they must match (fx_result_saliency has the image's size)",
                           o.saliency->width, o.saliency->height, image->width, image->height);
        if (st != FX_OK)
            return st;
    }
    format_caption(&o, &text);

    /* panels[0..3]: original, colored heatmap, overlay, saliency as it is; map: the resized heatmap */
    fx_image panels[4] = {{0}}, map = {0};
    fx_overlay_options ov = overlay_options(&o);
    st = image_panel(image, pw, ph, &panels[0]);
    if (st == FX_OK)
        st = map_at_panel_size(heatmap, pw, ph, &map);
    if (st == FX_OK)
        st = fx_colormap_apply(&map, o.colormap, &panels[1]);
    if (st == FX_OK)
        st = fx_overlay(&panels[0], &map, &ov, &panels[2]);
    if (st == FX_OK && o.saliency)
        st = image_panel(o.saliency, pw, ph, &panels[3]);
    color_bar bar = unit_bar(2);
    if (st == FX_OK)
        st = draw_figure(panels, count, &text, o.colormap, &bar, 1, out);
    free_images(panels, 4);
    fx_image_free(&map);
    return st;
}

/* |a - b| divided by its maximum, and the maximum itself, at the maps' full
 * resolution. A maximum that is float rounding next to the maps' own
 * magnitude (the relative guard of fx_internal.h) counts as equal maps: all
 * zero, maximum 0, instead of rounding noise stretched to full color. */
static fx_status difference_map(const fx_image *a, const fx_image *b, fx_image *diff, float *max_out)
{
    fx_status st = fx_image_alloc(diff, a->width, a->height, 1, FX_PIXEL_F32);
    if (st != FX_OK)
        return st;
    float max = 0.0f, magnitude = 0.0f;
    for (uint32_t y = 0; y < a->height; y++) {
        const float *ra = (const float *)fx__row(a, y), *rb = (const float *)fx__row(b, y);
        float *rd = (float *)fx__row(diff, y);
        for (uint32_t x = 0; x < a->width; x++) {
            rd[x] = fabsf(ra[x] - rb[x]);
            max = rd[x] > max ? rd[x] : max;
            magnitude = fmaxf(magnitude, fmaxf(fabsf(ra[x]), fabsf(rb[x])));
        }
    }
    if (fx__spread_is_negligible(max, magnitude)) {
        for (uint32_t y = 0; y < a->height; y++)
            memset(fx__row(diff, y), 0, (size_t)a->width * sizeof(float));
        max = 0.0f;
    }
    if (max > 0.0f)
        for (uint32_t y = 0; y < a->height; y++) {
            float *rd = (float *)fx__row(diff, y);
            for (uint32_t x = 0; x < a->width; x++)
                rd[x] /= max;
        }
    *max_out = max;
    return FX_OK;
}

fx_status fx_figure_compare(const fx_image *image, const fx_image *map_a, const char *name_a, const fx_image *map_b,
                            const char *name_b, const fx_figure_options *opts, fx_image *out)
{
    fx_figure_options o;
    uint32_t pw = 0, ph = 0;
    fx_status st = fx__image_check(image, "image");
    if (st == FX_OK)
        st = check_map(map_a, "map_a", image);
    if (st == FX_OK)
        st = check_map(map_b, "map_b", image);
    if (st == FX_OK)
        st = prepare_layout(image, opts, out, "fx_figure_compare", &o, &pw, &ph);
    if (st != FX_OK)
        return st;

    fx_image diff = {0};
    float max = 0.0f;
    st = difference_map(map_a, map_b, &diff, &max);
    if (st != FX_OK)
        return st;

    figure_text text;
    memset(&text, 0, sizeof text);
    snprintf(text.titles[0], TEXT_MAX, "Original");
    snprintf(text.titles[1], TEXT_MAX, "%s", name_a ? name_a : "Map A");
    snprintf(text.titles[2], TEXT_MAX, "%s", name_b ? name_b : "Map B");
    snprintf(text.titles[3], TEXT_MAX, "|A-B| (max %.2g)", (double)max);
    format_caption(&o, &text);

    /* panels: original, overlay of a, overlay of b, colored difference */
    fx_image panels[4] = {{0}}, resized[3] = {{0}};
    fx_overlay_options ov = overlay_options(&o);
    st = image_panel(image, pw, ph, &panels[0]);
    if (st == FX_OK)
        st = map_at_panel_size(map_a, pw, ph, &resized[0]);
    if (st == FX_OK)
        st = map_at_panel_size(map_b, pw, ph, &resized[1]);
    if (st == FX_OK)
        st = map_at_panel_size(&diff, pw, ph, &resized[2]);
    if (st == FX_OK)
        st = fx_overlay(&panels[0], &resized[0], &ov, &panels[1]);
    if (st == FX_OK)
        st = fx_overlay(&panels[0], &resized[1], &ov, &panels[2]);
    if (st == FX_OK)
        st = fx_colormap_apply(&resized[2], o.colormap, &panels[3]);
    /* The overlays share the 0..1 bar; the difference has its own, 0..max. */
    color_bar bars[2] = {unit_bar(2), {.after = 3}};
    snprintf(bars[1].labels[0], sizeof bars[1].labels[0], "%.2g", (double)max);
    if (max > 0.0f)
        snprintf(bars[1].labels[1], sizeof bars[1].labels[1], "%.2g", (double)max / 2);
    snprintf(bars[1].labels[2], sizeof bars[1].labels[2], "0");
    if (st == FX_OK)
        st = draw_figure(panels, 4, &text, o.colormap, bars, 2, out);
    free_images(panels, 4);
    free_images(resized, 3);
    fx_image_free(&diff);
    return st;
}
