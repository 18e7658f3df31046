// State shared by the two shim translation units. C++ only; never included
// from lib/.
#ifndef FX_SHIM_INTERNAL_HPP
#define FX_SHIM_INTERNAL_HPP

#include <torch/script.h>

#include "shim_metadata.hpp"

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

extern "C" {
#include "engine_shim.h"
}

namespace fxshim {

// The strings behind one fx__shim_layer (heap-allocated so that the table's
// name/type pointers stay valid).
struct LayerEntry {
    std::string name;
    std::string type;
};

// One prim::CallMethod("forward") on a submodule, found while inlining.
struct ModuleCall {
    std::string path;
    torch::jit::Value *output; // nullptr when the call returns several values
    size_t depth;              // number of dots + 1: parents are shallower
};

// The forward graph rewritten to also return one layer's output as a leaf.
struct CaptureGraph {
    std::shared_ptr<torch::jit::Graph> graph;
    std::unique_ptr<torch::jit::GraphExecutor> executor;
    bool uses_image = true; // ablation graphs: whether the image input is still read
};

// Inlines the prim::CallMethod nodes of graph whose module path (dotted,
// "" for the root) satisfies should_inline, walking into nested blocks and
// into the inlined bodies; returns every forward* call met, in graph order,
// with its output value followed through the inlining (shim_capture.cpp).
std::vector<ModuleCall> inline_module_calls(torch::jit::Graph &graph,
                                            const std::function<bool(const std::string &)> &should_inline);

// A host float32 copy of t (malloc'd; the caller frees it); throws
// std::bad_alloc when out of memory.
float *copy_to_host(const at::Tensor &t);

// Checks that a model output v is a [n, classes] tensor and stores it in *out;
// FX_ERR_MODEL with what was seen otherwise.
fx_status check_logits(const c10::IValue &v, uint32_t n, at::Tensor *out);

// One submodule call seen by the probe: `position` orders calls by when their
// output is computed (index of the producing node in the inlined graph).
struct ProbedCall {
    std::string path;
    size_t position;
    size_t depth;
    bool is_tensor;
    std::vector<int64_t> shape;
};

// Runs forward on input with every submodule call's output recorded.
fx_status probe_calls(fx__shim_model &m, const at::Tensor &input, at::Tensor *output,
                      std::vector<ProbedCall> *calls);

// The final softmax/log_softmax/sigmoid that produces graph output 0 (through
// shape-only ops; module calls on the way are inlined), or nullptr; *kind
// receives its FX__ACTIVATION_*.
torch::jit::Node *output_activation(torch::jit::Graph &graph, int32_t *kind);

// Training-mode facts of a freshly loaded archive (before Module::eval()):
// names of the modules whose `training` flag is set.
std::vector<std::string> training_modules(const torch::jit::Module &module);
// Switches batch_norm/dropout operations that tracing fixed in training mode
// to evaluation, in every method graph of every module; returns how many.
size_t switch_traced_training_ops(const torch::jit::Module &module);

// Turns any exception into an fx__error status; `what` names the operation.
fx_status status_from_current_exception(fx_status status, const char *what);

} // namespace fxshim

struct fx__shim_model {
    torch::jit::Module module;
    torch::Device device{torch::kCPU};
    std::string device_name;

    fxshim::Metadata metadata; // fxcam.json

    // The probe.
    uint32_t channels = 0, height = 0, width = 0, classes = 0;
    std::vector<std::unique_ptr<fxshim::LayerEntry>> layers;
    std::vector<fx__shim_layer> layer_table; // facts only; policy is in lib/layers.c

    // Output kind and training-mode facts (engine.c decides what they mean).
    int32_t output_activation = FX__ACTIVATION_NONE;
    bool strip_activation = false; // runs return the activation's input
    std::vector<std::string> training_modules;
    size_t training_ops_fixed = 0;

    // Rewritten graphs per target layer, built on first use.
    std::mutex cache_mutex;
    std::map<std::string, std::shared_ptr<fxshim::CaptureGraph>> captures;
    std::shared_ptr<fxshim::CaptureGraph> plain;
    // Per target layer: the network after the layer, whose output is an input
    // (Ablation-CAM), built on first use.
    std::map<std::string, std::shared_ptr<fxshim::CaptureGraph>> ablations;
    // Per target layer and strip setting: the guided-backpropagation graph
    // (shim_guided.cpp), built on first use.
    std::map<std::string, std::shared_ptr<fxshim::CaptureGraph>> guided;
};

#endif
