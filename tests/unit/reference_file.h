/* Reading the reference files that tests/tools/make_opencv_reference.py
 * writes into the build directory (format described there). Shared by the
 * unit tests that compare with OpenCV; include after <cmocka.h>. */
#ifndef FX_TEST_REFERENCE_FILE_H
#define FX_TEST_REFERENCE_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct reference_file {
    uint8_t *bytes;
    size_t size;
} reference_file;

/* A cmocka group setup: reads path whole into *state. */
static int reference_file_load(const char *path, void **state)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s (built by tests/reference/meson.build)\n", path);
        return -1;
    }
    reference_file *ref = calloc(1, sizeof *ref);
    if (!ref) {
        fclose(f);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    ref->size = size > 0 ? (size_t)size : 0;
    ref->bytes = malloc(ref->size + 1);
    int ok = ref->bytes && fread(ref->bytes, 1, ref->size, f) == ref->size;
    fclose(f);
    if (!ok) {
        free(ref->bytes);
        free(ref);
        return -1;
    }
    *state = ref;
    return 0;
}

/* The matching group teardown. */
static int reference_file_free(void **state)
{
    reference_file *ref = *state;
    if (ref)
        free(ref->bytes);
    free(ref);
    return 0;
}

static uint32_t take_u32(const reference_file *ref, size_t *pos)
{
    assert_true(*pos + 4 <= ref->size);
    uint32_t v;
    memcpy(&v, ref->bytes + *pos, 4);
    *pos += 4;
    return v;
}

static const uint8_t *take_bytes(const reference_file *ref, size_t *pos, size_t n)
{
    assert_true(n <= ref->size - *pos);
    const uint8_t *p = ref->bytes + *pos;
    *pos += n;
    return p;
}

#endif
