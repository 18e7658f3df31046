/* libFuzzer target: TorchScript archive bytes -> fx_model_load_memory on the
 * CPU. libtorch itself is not instrumented, so coverage guides only fxcam's
 * side (fxcam.json, checks, the probe); the seeds are small valid archives.
 * Invariant: a status, never a crash; on failure *out is untouched. */
#include "fxcam.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    fx_model_options opts;
    fx_model_options_init(&opts);
    opts.device = "cpu";
    opts.threads = 1;
    fx_model *model = NULL;
    fx_status st = fx_model_load_memory(data, size, &opts, &model);
    if ((st == FX_OK) != (model != NULL))
        abort();
    fx_model_free(model);
    return 0;
}
