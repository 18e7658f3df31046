// Reading and validating fxcam.json, the optional metadata inside a model
// archive (docs/model-format.md). Plain C++ and nlohmann-json, no libtorch, so
// that the fuzz target and the tests reach it directly.
#ifndef FX_SHIM_METADATA_HPP
#define FX_SHIM_METADATA_HPP

#include <string>
#include <vector>

extern "C" {
#include "engine_shim.h"
}

namespace fxshim {

// Limits a hostile model file cannot get past (docs/model-format.md).
constexpr size_t kMaxMetadataBytes = 1 << 20; // the JSON text
constexpr int kMaxMetadataDepth = 16;         // nested arrays/objects
constexpr int64_t kMaxMetadataInputSide = 4096;
constexpr size_t kMaxClassNameBytes = 256;
constexpr size_t kMaxLayerNameBytes = 1024;

// What fxcam.json said; `meta` points into the strings held here.
struct Metadata {
    fx__shim_metadata meta{};
    std::vector<std::string> class_names;
    std::vector<const char *> class_name_ptrs;
    std::string target_layer;
};

// Fills md from the JSON text; throws std::runtime_error with a message of at
// most a few hundred bytes naming the key (never the whole offending value).
// Iterative: no nesting in the text can exhaust the stack.
void parse_metadata(Metadata &md, const std::string &text);

} // namespace fxshim

#endif
