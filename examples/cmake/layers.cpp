// fxcam from a CMake project: prints a model's layers, marking the valid
// Grad-CAM targets and the default one (what `fxcam layers` shows).
//
//   layers MODEL.pt
#include <fxcam.h>

#include <cstdio>
#include <string>

int main(int argc, char **argv)
{
    std::printf("fxcam %s\n", fx_version_string());
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s MODEL.pt\n", argv[0]);
        return 2;
    }
    fx_model *model = nullptr;
    fx_status st = fx_model_load(argv[1], nullptr, &model);
    if (st != FX_OK) {
        std::fprintf(stderr, "layers: %s: %s\n", fx_status_str(st), fx_last_error());
        return 1;
    }
    const char *def = fx_model_default_layer(model);
    for (size_t i = 0; i < fx_model_layer_count(model); i++) {
        fx_layer_info info{};
        info.struct_size = sizeof info;
        if (fx_model_layer(model, i, &info) != FX_OK)
            continue;
        std::string shape;
        for (uint32_t d = 0; d < info.rank; d++)
            shape += (d ? "x" : "") + std::to_string(info.shape[d]);
        std::printf("%-40s %-20s %-16s%s\n", info.name, info.type, shape.c_str(),
                    def && std::string(def) == info.name ? " <- default target" :
                    info.is_feature_map ? " (target)" : "");
    }
    fx_model_free(model);
    return 0;
}
