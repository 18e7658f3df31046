/* Status names and the per-thread last-error message. */
#include "fx_internal.h"

#include <stdarg.h>
#include <stdio.h>

/* One message per thread, so that concurrent callers never see each other's
 * errors (libgit2's git_error_last works the same way). */
static _Thread_local char last_error[1024];

fx_status fx__error(fx_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

const char *fx_last_error(void)
{
    return last_error;
}

void fx_clear_error(void)
{
    last_error[0] = '\0';
}

const char *fx_status_str(fx_status status)
{
    switch (status) {
    case FX_OK: return "FX_OK: success";
    case FX_ERR_INVALID_ARGUMENT: return "FX_ERR_INVALID_ARGUMENT: invalid argument";
    case FX_ERR_OUT_OF_MEMORY: return "FX_ERR_OUT_OF_MEMORY: out of memory";
    case FX_ERR_IO: return "FX_ERR_IO: input/output error";
    case FX_ERR_FORMAT: return "FX_ERR_FORMAT: corrupt or unrecognized file format";
    case FX_ERR_LIMIT: return "FX_ERR_LIMIT: input exceeds a configured limit";
    case FX_ERR_UNSUPPORTED: return "FX_ERR_UNSUPPORTED: not supported";
    case FX_ERR_MODEL: return "FX_ERR_MODEL: model error";
    case FX_ERR_LAYER: return "FX_ERR_LAYER: target layer not found or unsuitable";
    case FX_ERR_DEVICE: return "FX_ERR_DEVICE: device not available";
    case FX_ERR_NUMERIC: return "FX_ERR_NUMERIC: NaN or infinite value";
    case FX_ERR_NOT_AVAILABLE: return "FX_ERR_NOT_AVAILABLE: feature not built into this library";
    case FX_ERR_INTERNAL: return "FX_ERR_INTERNAL: internal error (please report)";
    case FX_ERR_CANCELLED: return "FX_ERR_CANCELLED: cancelled by the caller";
    default: return "unknown status";
    }
}
