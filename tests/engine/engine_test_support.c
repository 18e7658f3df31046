/* Fixture helpers shared by the engine tests (engine_test_support.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_test_support.h"

float *read_floats(const char *tag, const char *suffix, size_t count)
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

void read_raw_image(const char *file, uint32_t w, uint32_t h, uint32_t c, int32_t type, fx_image *img)
{
    char path[512];
    snprintf(path, sizeof path, FX_ENGINE_FIXTURES "/%s", file);
    assert_int_equal(fx_image_alloc(img, w, h, c, type), FX_OK);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    assert_int_equal(fread(img->data, 1, img->stride * h, f), img->stride * h);
    fclose(f);
}

fx_model *load_model_with(const char *file, const fx_model_options *given)
{
    fx_model_options o;
    if (given)
        o = *given;
    else
        fx_model_options_init(&o);
    o.device = getenv("FXCAM_TEST_DEVICE") ? getenv("FXCAM_TEST_DEVICE") : "cpu";
    char path[512];
    snprintf(path, sizeof path, FX_ENGINE_FIXTURES "/%s", file);
    fx_model *m = NULL;
    if (fx_model_load(path, &o, &m) != FX_OK)
        fail_msg("loading %s: %s", file, fx_last_error());
    return m;
}

fx_model *load_model(const char *file)
{
    return load_model_with(file, NULL);
}

fx_model *reload_model(fx_model *m, char *loaded, size_t loaded_size, const char *file)
{
    if (strcmp(loaded, file) == 0)
        return m;
    fx_model_free(m);
    m = load_model(file);
    snprintf(loaded, loaded_size, "%s", file);
    return m;
}

void assert_close(const char *what, const float *a, const float *b, size_t n, double tol)
{
    double scale = 1.0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)a[i] - b[i]) <= tol * scale))
            fail_msg("%s: element %zu is %.7g, reference %.7g (tolerance %g x %g)", what, i, (double)a[i],
                     (double)b[i], tol, scale);
}
