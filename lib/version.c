#include "fx_internal.h"

uint32_t fx_version(void)
{
    return FX_VERSION_NUMBER;
}

const char *fx_version_string(void)
{
    return FX_VERSION_STRING;
}
