/* libFuzzer target: fxcam.json text -> the shim's metadata reader, without
 * libtorch (fx__shim_metadata_check, shim/shim_metadata.cpp). Invariants:
 * the status is one the loader documents, and a message is short and holds
 * printable ASCII only (a model file must not write escapes into a log). */
#include "engine_shim.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fx_status st = fx__shim_metadata_check((const char *)data, size);
    if (st == FX_OK)
        return 0;
    if (st != FX_ERR_MODEL && st != FX_ERR_OUT_OF_MEMORY)
        abort();
    const char *msg = fx_last_error();
    size_t len = strlen(msg);
    if (len == 0 || len > 400)
        abort();
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)msg[i] < 0x20 || (unsigned char)msg[i] >= 0x7f)
            abort();
    return 0;
}
