/* Shared by test_jpeg.c and test_dicom.c: a scratch directory filled by a
 * /usr/bin/python3 fixture script, reference files (<name>.ref: uint32 width,
 * height, channels, bits, then samples) and loading helpers. Include after
 * <cmocka.h>. */
#ifndef FX_TEST_FORMAT_FIXTURE_H
#define FX_TEST_FORMAT_FIXTURE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fx_internal.h"

static char g_dir[512] __attribute__((unused));

static inline void fixture_path(char *buf, size_t size, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", g_dir, name);
    assert_true(n > 0 && (size_t)n < size);
}

/* Creates the scratch directory and runs script DIR; 0 on success. */
static inline int fixture_setup(const char *prefix, const char *script)
{
    snprintf(g_dir, sizeof g_dir, "%s/%s.XXXXXX", FX_TEST_BUILD_DIR, prefix);
    if (!mkdtemp(g_dir))
        return -1;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", script, g_dir);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "fixture script failed (%d): %s\n", rc, cmd);
    return rc == 0 ? 0 : -1;
}

static inline void fixture_teardown(void)
{
    DIR *d = opendir(g_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(g_dir);
}

static inline uint8_t *read_whole(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    assert_true(n >= 0);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static inline uint32_t ref_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Largest |image - reference| over all samples; fails on a shape mismatch.
 * double_samples: the reference holds float64 samples (else uint8). */
static inline double compare_with_reference(const fx_image *img, const char *ref_name, bool double_samples)
{
    char path[1024];
    fixture_path(path, sizeof path, ref_name);
    size_t size;
    uint8_t *ref = read_whole(path, &size);
    assert_true(size >= 16);
    uint32_t w = ref_u32(ref), h = ref_u32(ref + 4), c = ref_u32(ref + 8), bits = ref_u32(ref + 12);
    if (img->width != w || img->height != h || img->channels != c) {
        fail_msg("%s: fxcam gives %ux%u x%u, the reference %ux%u x%u", ref_name, img->width, img->height,
                 img->channels, w, h, c);
    }
    assert_int_equal(img->pixel_type, bits == 16 ? FX_PIXEL_U16 : FX_PIXEL_U8);
    size_t sample = double_samples ? 8 : 1;
    assert_int_equal(size, 16 + (size_t)w * h * c * sample);
    double worst = 0;
    for (uint32_t y = 0; y < h; y++) {
        const uint8_t *row = fx__row(img, y);
        for (uint32_t i = 0; i < w * c; i++) {
            double got = bits == 16 ? ((const uint16_t *)row)[i] : row[i];
            const uint8_t *r = ref + 16 + ((size_t)y * w * c + i) * sample;
            double want;
            if (double_samples)
                memcpy(&want, r, 8);
            else
                want = *r;
            double d = got > want ? got - want : want - got;
            if (d > worst)
                worst = d;
        }
    }
    free(ref);
    return worst;
}

static inline void assert_message_contains(const char *needle)
{
    const char *msg = fx_last_error();
    if (!strstr(msg, needle))
        fail_msg("expected '%s' in the message: %s", needle, msg);
}

#endif
