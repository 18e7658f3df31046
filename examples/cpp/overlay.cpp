// fxcam from C++: Grad-CAM++ overlays for several PNGs in one batch.
//
//   overlay MODEL.pt OUT_PREFIX IMAGE.png [IMAGE.png ...]
//
// Writes OUT_PREFIX<k>.png (the colored heatmap blended over image k).
// Build against an installed fxcam (pkg-config):  meson setup build && ninja -C build
#include "fxcam.hpp"

#include <cstdio>
#include <iostream>

int main(int argc, char **argv)
{
    if (argc < 4) {
        std::cerr << "usage: " << argv[0] << " MODEL.pt OUT_PREFIX IMAGE.png [IMAGE.png ...]\n";
        return 2;
    }
    try {
        std::cout << "fxcam " << fx_version_string() << "\n";
        std::vector<fxcam::Image> images;
        std::vector<const fx_image *> views;
        for (int i = 3; i < argc; i++)
            images.emplace_back(argv[i]);
        for (const auto &img : images)
            views.push_back(img.get());
        fxcam::Model model(argv[1], "cpu");
        fxcam::Result result = model.gradcam(views, FX_CAM_GRADCAM_PLUSPLUS);
        for (size_t k = 0; k < images.size(); k++) {
            fx_overlay_options opts;
            fx_overlay_options_init(&opts);
            opts.alpha = 0.5f;
            fxcam::Image out;
            fxcam::check(fx_overlay(images[k].get(), fx_result_heatmap(result.get(), k, 0), &opts, out.get()),
                         "fx_overlay");
            std::string path = std::string(argv[2]) + std::to_string(k) + ".png";
            out.save(path);
            std::cout << argv[3 + k] << ": " << model.class_name(fx_result_predicted_class(result.get(), k)) << " ("
                      << fx_result_confidence(result.get(), k) * 100.0f << "%) -> " << path << "\n";
        }
    } catch (const fxcam::Error &e) {
        std::cerr << "overlay: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
