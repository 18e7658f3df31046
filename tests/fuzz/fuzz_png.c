/* libFuzzer target: PNG bytes -> fx_image_load_memory, with limits small
 * enough that a valid huge header is refused quickly instead of decoded.
 * Invariants checked: on success the image respects the limits; on failure
 * the output is untouched and the message is printable. */
#include "fxcam.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fx_load_options opts;
    fx_load_options_init(&opts);
    opts.max_width = 4096;
    opts.max_height = 4096;
    opts.max_pixels = 1u << 22;
    fx_image img;
    memset(&img, 0, sizeof img);
    fx_status st = fx_image_load_memory(data, size, &opts, &img);
    if (st == FX_OK) {
        if (!img.data || img.width == 0 || img.height == 0 || img.width > opts.max_width ||
            img.height > opts.max_height || (uint64_t)img.width * img.height > opts.max_pixels)
            abort();
        fx_image_free(&img);
    } else {
        if (img.data || strlen(fx_last_error()) == 0)
            abort();
    }
    return 0;
}
