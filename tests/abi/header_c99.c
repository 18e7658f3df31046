/* The public header must compile as strict C99 and work from plain C. */
#include <fxcam.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", FX_VERSION_MAJOR, FX_VERSION_MINOR, FX_VERSION_PATCH);
    if (strcmp(fx_version_string(), expect) != 0 || fx_version() != FX_VERSION_NUMBER) {
        printf("version mismatch: library %s, header %s\n", fx_version_string(), expect);
        return 1;
    }
    fx_image img = {0};
    if (fx_image_alloc(&img, 3, 2, 1, FX_PIXEL_U8) != FX_OK || img.stride != 3)
        return 1;
    fx_image_free(&img);
    return img.data == NULL ? 0 : 1;
}
