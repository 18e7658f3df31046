/* Fixture helpers shared by the engine tests (test_engine, test_guided,
 * test_refine, test_preprocessing). Every file name is relative to the
 * fixture directory FX_ENGINE_FIXTURES (meson passes it to each test). The
 * helpers fail the running cmocka test with a message naming the file and
 * what was wrong; they never return an error. Include after <cmocka.h>. */
#ifndef FX_ENGINE_TEST_SUPPORT_H
#define FX_ENGINE_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include "fxcam.h"

/* The fixture "<tag>.<suffix>": exactly count native float32 values
 * (malloc'd; the caller frees them). */
float *read_floats(const char *tag, const char *suffix, size_t count);

/* The fixture file: raw rows of a w x h image with c channels of pixel
 * type (FX_PIXEL_*), no padding; img is allocated (fx_image_free). */
void read_raw_image(const char *file, uint32_t w, uint32_t h, uint32_t c, int32_t type, fx_image *img);

/* The fixture model on FXCAM_TEST_DEVICE (default "cpu"); load_model_with
 * starts from *given when not NULL (only the device is replaced). */
fx_model *load_model(const char *file);
fx_model *load_model_with(const char *file, const fx_model_options *given);

/* For manifests ordered by model: m when loaded names file, else m freed and
 * file loaded (its name copied into loaded, of loaded_size bytes). */
fx_model *reload_model(fx_model *m, char *loaded, size_t loaded_size, const char *file);

/* |a - b| <= tol * max(1, max|b|) for every element. */
void assert_close(const char *what, const float *a, const float *b, size_t n, double tol);

#endif
