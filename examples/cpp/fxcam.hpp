// A thin C++17 layer over fxcam's C API: owning handles and exceptions.
// Header-only and part of the example: copy it into your project.
#pragma once

#include <fxcam.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace fxcam {

struct Error : std::runtime_error {
    fx_status status;
    Error(const std::string &what, fx_status s)
        : std::runtime_error(what + ": " + fx_status_str(s) + ": " + fx_last_error()), status(s) {}
};

inline void check(fx_status s, const char *what)
{
    if (s != FX_OK)
        throw Error(what, s);
}

// An image whose pixels fxcam allocated.
class Image {
public:
    Image() = default;
    explicit Image(const std::string &path) { check(fx_image_load(path.c_str(), nullptr, &img_), "fx_image_load"); }
    Image(const Image &) = delete;
    Image &operator=(const Image &) = delete;
    Image(Image &&o) noexcept : img_(o.img_) { o.img_ = fx_image{}; }
    ~Image() { fx_image_free(&img_); }
    fx_image *get() { return &img_; }
    const fx_image *get() const { return &img_; }
    void save(const std::string &path) const { check(fx_image_save(path.c_str(), &img_, nullptr), "fx_image_save"); }

private:
    fx_image img_{};
};

struct ResultDeleter {
    void operator()(fx_result *r) const { fx_result_free(r); }
};
using Result = std::unique_ptr<fx_result, ResultDeleter>;

class Model {
public:
    explicit Model(const std::string &path, const char *device = "auto")
    {
        fx_model_options opts;
        fx_model_options_init(&opts);
        opts.device = device;
        fx_model *m = nullptr;
        check(fx_model_load(path.c_str(), &opts, &m), "fx_model_load");
        model_.reset(m);
    }
    fx_model *get() const { return model_.get(); }
    std::string class_name(int32_t i) const
    {
        const char *n = fx_model_class_name(model_.get(), static_cast<uint32_t>(i));
        return n ? n : "?";
    }
    Result gradcam(const std::vector<const fx_image *> &images, int32_t method = FX_CAM_GRADCAM) const
    {
        std::vector<fx_image> batch;
        for (const fx_image *i : images)
            batch.push_back(*i);  // fx_image is a plain description: copying it shares the pixels
        fx_gradcam_options opts;
        fx_gradcam_options_init(&opts);
        opts.methods = &method;
        opts.method_count = 1;
        fx_result *r = nullptr;
        check(fx_gradcam_compute(model_.get(), batch.data(), batch.size(), &opts, &r), "fx_gradcam_compute");
        return Result(r);
    }

private:
    struct Deleter {
        void operator()(fx_model *m) const { fx_model_free(m); }
    };
    std::unique_ptr<fx_model, Deleter> model_;
};

}  // namespace fxcam
