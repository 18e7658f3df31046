/* A small built-in bitmap font for the captions and titles of figures, so
 * that fxcam needs no font library and draws the same pixels everywhere.
 *
 * Each glyph is 5 columns x 9 rows: rows 0..6 hold capitals and digits
 * (the baseline is under row 6), rows 7..8 the descenders of g, j, p, q, y
 * and the comma. Glyphs advance by 6 columns, leaving 1 column of spacing.
 * Every size below is multiplied by an integer `scale` (each font pixel
 * becomes a scale x scale square). Internal: not exported. */
#ifndef FX_FONT_H
#define FX_FONT_H

#include "fxcam.h"

#include <stdint.h>

#define FX_FONT_GLYPH_WIDTH 5u
#define FX_FONT_GLYPH_HEIGHT 9u
#define FX_FONT_ASCENT 7u /* rows above the baseline */
#define FX_FONT_ADVANCE 6u
#define FX_FONT_FIRST 32u /* ' ' */
#define FX_FONT_LAST 126u /* '~' */

/* Row `row` (0..FX_FONT_GLYPH_HEIGHT-1) of the glyph drawn for byte c, as a
 * string of FX_FONT_GLYPH_WIDTH characters, '#' for ink and '.' for none.
 * Bytes outside 32..126 give the glyph of '?'; a row out of range gives NULL. */
const char *fx__font_row(unsigned char c, uint32_t row);

/* Width in pixels of s drawn at scale: from the first glyph's left edge to
 * the last glyph's right edge (no trailing spacing); 0 for NULL or "".
 * Saturates at UINT32_MAX instead of overflowing. */
uint32_t fx__text_width(const char *s, uint32_t scale);

/* Height in pixels of a line of text at scale, descenders included
 * (FX_FONT_GLYPH_HEIGHT * scale). */
uint32_t fx__text_height(uint32_t scale);

/* Draws s with its top-left corner at (x, y) in an 8-bit RGB image, in color
 * rgb, each font pixel scale x scale. Only ink pixels are written (the
 * background shows through); whatever falls outside the image is clipped, so
 * x and y may be negative or past the edges. Does nothing when an argument
 * is NULL, scale is 0 or the image is not 3-channel FX_PIXEL_U8. */
void fx__draw_text(fx_image *rgb8, int32_t x, int32_t y, const char *s, const uint8_t rgb[3],
                   uint32_t scale);

#endif
