// The public header must compile as C++17 and link with C linkage.
#include <fxcam.h>

#include <cstring>
#include <string>

int main()
{
    fx_image img{};
    fx_status st = fx_image_alloc(&img, 0, 2, 1, FX_PIXEL_U8);
    if (st != FX_ERR_INVALID_ARGUMENT || std::string(fx_last_error()).empty())
        return 1;
    if (std::strcmp(fx_version_string(), FX_VERSION_STRING) != 0)
        return 1;
    return 0;
}
