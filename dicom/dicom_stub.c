/* fx__dicom_load without DCMTK: the -Ddicom feature was disabled or DCMTK was
 * not found at configure time. */
#include "dicom_reader.h"
#include "fx_internal.h"

fx_status fx__dicom_load(const char *path, const void *data, size_t size, const char *label,
                         const fx_load_options *limits, fx_image *out)
{
    (void)path;
    (void)data;
    (void)size;
    (void)limits;
    (void)out;
    return fx__error(FX_ERR_NOT_AVAILABLE,
                     "%s is a DICOM file, but this fxcam was built without DICOM support: install DCMTK "
                     "(Debian: libdcmtk-dev) and reconfigure with -Ddicom=enabled",
                     label);
}
