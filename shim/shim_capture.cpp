// Capturing a layer's output and the gradient of a score with respect to it,
// in a TorchScript model that offers no hooks:
//  1. copy the forward graph and inline prim::CallMethod only along the target
//     module's path (unoptimized callee graphs: the optimized ones are already
//     fully inlined and hide the target call);
//  2. after the target call insert leaf = detach(x).requires_grad_() and route
//     every later use of x through clone(leaf) (an in-place op after the
//     layer, e.g. DenseNet's relu_ after `features`, must not touch the leaf);
//  3. return (output, leaf); parameters never require grad, so autograd
//     records only the part of the network after the leaf and
//     autograd::grad(score, leaf) costs about one more inference pass.
// A module called several times (a shared ReLU) is captured at its LAST call.
#include "shim_internal.hpp"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <cstdlib>
#include <cstring>
#include <unordered_map>

namespace fxshim {

namespace {

using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

struct Walker {
    const std::function<bool(const std::string &)> &should_inline;
    std::unordered_map<Value *, std::string> paths; // module values -> dotted path
    std::vector<ModuleCall> calls;

    void walk(Block *block)
    {
        for (Node *n = block->nodes().front(); n != block->return_node();) {
            Node *next = n->next();
            if (n->kind() == c10::prim::GetAttr) {
                auto p = paths.find(n->input(0));
                auto cls = n->output()->type()->cast<c10::ClassType>();
                if (p != paths.end() && cls && cls->is_module()) {
                    std::string name = n->s(c10::attr::name);
                    paths[n->output()] = p->second.empty() ? name : p->second + "." + name;
                }
            } else if (n->kind() == c10::prim::CallMethod) {
                auto p = paths.find(n->input(0));
                if (p != paths.end()) {
                    std::string path = p->second;
                    std::string method = n->s(c10::attr::name);
                    // Tracing names a module's second call forward1, scripting
                    // names overloads forward__0; other methods (ResNet's
                    // _forward_impl) are not module calls.
                    bool is_forward = method.rfind("forward", 0) == 0;
                    size_t depth = 1 + (size_t)std::count(path.begin(), path.end(), '.');
                    Value *out = n->outputs().size() == 1 ? n->output() : nullptr;
                    if (is_forward)
                        calls.push_back({path, out, depth});
                    if (should_inline(path)) {
                        Node *prev = n->prev();
                        auto cls = n->input(0)->type()->expect<c10::ClassType>();
                        auto &fn = torch::jit::toGraphFunction(cls->getMethod(method));
                        auto outs = torch::jit::inlineCallTo(n, &fn, false);
                        // Earlier calls whose output was this call's output
                        // (a parent returning its last child) follow the new value.
                        if (out)
                            for (auto &c : calls)
                                if (c.output == out)
                                    c.output = outs.size() == 1 ? outs[0] : nullptr;
                        n = prev->next();
                        continue; // the call node is gone; walk its body next
                    }
                }
            }
            for (Block *b : n->blocks())
                walk(b);
            n = next;
        }
    }
};

std::vector<ModuleCall> inline_module_calls(Graph &graph, const std::function<bool(const std::string &)> &pred)
{
    Walker w{pred, {}, {}};
    w.paths[graph.inputs()[0]] = "";
    w.walk(graph.block());
    return w.calls;
}

void number_nodes(Block *block, std::unordered_map<const Node *, size_t> &order)
{
    for (Node *n : block->nodes()) {
        for (Block *b : n->blocks())
            number_nodes(b, order);
        order.emplace(n, order.size());
    }
}

std::unique_ptr<torch::jit::GraphExecutor> make_executor(const std::shared_ptr<Graph> &g, const char *name)
{
    return std::make_unique<torch::jit::GraphExecutor>(g, name);
}

// Builds the capture graph for `layer` (already validated as a 4-D layer).
fx_status build_capture(fx__shim_model &m, const std::string &layer, std::shared_ptr<CaptureGraph> *out)
{
    auto g = m.module.get_method("forward").graph()->copy();
    std::string prefix = layer + ".";
    auto calls = inline_module_calls(*g, [&](const std::string &path) {
        return path.empty() || prefix.compare(0, path.size() + 1, path + ".") == 0;
    });
    const ModuleCall *target = nullptr;
    for (const auto &c : calls)
        if (c.path == layer)
            target = &c; // the last call wins (shared modules)
    if (!target)
        return fx__error(FX_ERR_LAYER, "layer '%s' is not called by the model's forward graph", layer.c_str());
    Value *x = target->output;
    if (!x || !x->type()->isSubtypeOf(*c10::TensorType::get()))
        return fx__error(FX_ERR_LAYER, "layer '%s' does not return a single tensor", layer.c_str());
    if (x->node()->owningBlock() != g->block())
        return fx__error(FX_ERR_LAYER,
                         "layer '%s' is called inside control flow (an if or a loop of a scripted model); "
                         "choose an enclosing module",
                         layer.c_str());
    Value *leaf;
    Node *detach_node;
    {
        torch::jit::WithInsertPoint guard(x->node()->next());
        Value *detached = g->insert(c10::aten::detach, {x});
        detach_node = detached->node();
        leaf = g->insert(c10::aten::requires_grad_, {detached, true});
        Value *copy = g->insert(c10::aten::clone, {leaf});
        x->replaceAllUsesAfterNodeWith(detach_node, copy);
    }
    g->registerOutput(leaf);
    auto cap = std::make_shared<CaptureGraph>();
    cap->graph = g;
    cap->executor = make_executor(g, "fxcam_capture");
    *out = cap;
    return FX_OK;
}

fx_status capture_for(fx__shim_model &m, const char *layer, std::shared_ptr<CaptureGraph> *out)
{
    std::lock_guard<std::mutex> lock(m.cache_mutex);
    if (!layer) {
        if (!m.plain) {
            auto cap = std::make_shared<CaptureGraph>();
            cap->graph = m.module.get_method("forward").graph()->copy();
            cap->executor = make_executor(cap->graph, "fxcam_forward");
            m.plain = cap;
        }
        *out = m.plain;
        return FX_OK;
    }
    auto it = m.captures.find(layer);
    if (it != m.captures.end()) {
        *out = it->second;
        return FX_OK;
    }
    std::shared_ptr<CaptureGraph> cap;
    fx_status st = build_capture(m, layer, &cap);
    if (st != FX_OK)
        return st;
    m.captures[layer] = cap;
    *out = cap;
    return FX_OK;
}

float *copy_to_host(const at::Tensor &t)
{
    auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    size_t bytes = (size_t)c.numel() * sizeof(float);
    float *p = (float *)std::malloc(bytes ? bytes : 1);
    if (!p)
        throw std::bad_alloc();
    std::memcpy(p, c.data_ptr<float>(), bytes);
    return p;
}

fx_status check_output(const c10::IValue &v, uint32_t n, at::Tensor *out)
{
    if (!v.isTensor())
        return fx__error(FX_ERR_MODEL, "model output is a %s, not a [batch, classes] tensor",
                         v.tagKind().c_str());
    *out = v.toTensor();
    if (out->dim() != 2 || out->size(0) != (int64_t)n)
        return fx__error(FX_ERR_MODEL, "model output has %lld dimensions (first %lld) for a batch of %u; expected "
                                       "[batch, classes]",
                         (long long)out->dim(), (long long)(out->dim() ? out->size(0) : 0), n);
    return FX_OK;
}

} // namespace

fx_status probe_calls(fx__shim_model &m, const at::Tensor &input, at::Tensor *output,
                      std::vector<ProbedCall> *calls)
{
    auto g = m.module.get_method("forward").graph()->copy();
    auto found = inline_module_calls(*g, [](const std::string &) { return true; });
    std::unordered_map<const Node *, size_t> order;
    number_nodes(g->block(), order);
    std::vector<size_t> slot(found.size(), SIZE_MAX);
    for (size_t i = 0; i < found.size(); i++) {
        Value *v = found[i].output;
        // Values defined inside if/loop blocks cannot be graph outputs; such
        // modules (scripted control flow) get no shape and are no targets.
        if (v && v->type()->isSubtypeOf(*c10::TensorType::get()) && v->node()->owningBlock() == g->block()) {
            // Only the shape is returned: returning the tensors themselves
            // would keep every activation alive until the end of the run
            // (about 55 MB more peak memory on DenseNet-121 at 224x224).
            torch::jit::WithInsertPoint here(v->node()->next());
            slot[i] = g->registerOutput(g->insert(c10::aten::size, {v}));
        }
    }
    torch::jit::GraphExecutor exec(g, "fxcam_probe");
    torch::NoGradGuard no_grad;
    torch::jit::GraphOptimizerEnabledGuard no_optimizations(false);
    torch::jit::Stack stack{m.module._ivalue(), input};
    exec.run(stack);
    if (stack.size() != g->outputs().size())
        return fx__error(FX_ERR_INTERNAL, "probe returned %zu values for %zu graph outputs", stack.size(),
                         g->outputs().size());
    if (!stack[0].isTensor())
        return fx__error(FX_ERR_MODEL, "model output is a %s, not a [batch, classes] tensor",
                         stack[0].tagKind().c_str());
    *output = stack[0].toTensor();
    for (size_t i = 0; i < found.size(); i++) {
        ProbedCall c;
        c.path = found[i].path;
        c.depth = found[i].depth;
        c.is_tensor = slot[i] != SIZE_MAX;
        Value *v = found[i].output;
        auto it = v ? order.find(v->node()) : order.end();
        c.position = it != order.end() ? it->second + 1 : 0;
        if (c.is_tensor) {
            c.shape = stack[slot[i]].toIntVector();
        }
        calls->push_back(std::move(c));
    }
    return FX_OK;
}

} // namespace fxshim

using namespace fxshim;

extern "C" fx_status fx__shim_run(fx__shim_model *model, const float *input, uint32_t n, const char *layer,
                                  fx__shim_score_fn score_fn, void *user, fx__shim_capture *out)
{
    fx__shim_capture result{};
    try {
        // The graph executor's optimizations stay off for fxcam's graphs: with
        // them on, repeated gradient calls failed ("differentiated Tensors ...
        // not used in the graph") and a DenseNet-121 forward hung on CUDA with
        // libtorch 2.x. The switch is thread-local in libtorch, so it is set
        // around every run, on whichever thread calls, and restored after:
        // other TorchScript code in the process keeps its own setting.
        torch::jit::GraphOptimizerEnabledGuard no_optimizations(false);
        std::shared_ptr<CaptureGraph> cap;
        fx_status st = capture_for(*model, layer, &cap);
        if (st != FX_OK)
            return st;
        auto x = torch::from_blob(const_cast<float *>(input),
                                  {(int64_t)n, (int64_t)model->channels, (int64_t)model->height,
                                   (int64_t)model->width},
                                  torch::kFloat32)
                     .to(model->device);
        torch::jit::Stack stack{model->module._ivalue(), x};
        at::Tensor logits;
        if (!layer) {
            torch::NoGradGuard no_grad;
            cap->executor->run(stack);
            st = check_output(stack.at(0), n, &logits);
            if (st != FX_OK)
                return st;
            result.logits = copy_to_host(logits);
        } else {
            torch::AutoGradMode grad_on(true);
            cap->executor->run(stack);
            st = check_output(stack.at(0), n, &logits);
            if (st != FX_OK)
                return st;
            at::Tensor leaf = stack.at(1).toTensor();
            if (leaf.dim() != 4) {
                return fx__error(FX_ERR_LAYER, "layer '%s' output has %lld dimensions for this batch; expected 4",
                                 layer, (long long)leaf.dim());
            }
            result.logits = copy_to_host(logits);
            uint32_t classes = (uint32_t)logits.size(1);
            std::vector<float> weights((size_t)n * classes, 0.0f);
            st = score_fn(user, result.logits, n, classes, weights.data());
            if (st != FX_OK) {
                fx__shim_capture_free(&result);
                return st;
            }
            auto w = torch::from_blob(weights.data(), {(int64_t)n, (int64_t)classes}, torch::kFloat32)
                         .to(logits.device(), logits.scalar_type());
            auto score = (logits * w).sum();
            auto grads = torch::autograd::grad({score}, {leaf}, {}, false, false, true);
            if (grads.empty() || !grads[0].defined()) {
                fx__shim_capture_free(&result);
                return fx__error(FX_ERR_LAYER, "the model's output does not depend on layer '%s'", layer);
            }
            result.activations = copy_to_host(leaf);
            result.gradients = copy_to_host(grads[0]);
            result.k = (uint32_t)leaf.size(1);
            result.h = (uint32_t)leaf.size(2);
            result.w = (uint32_t)leaf.size(3);
        }
        result.n = n;
        result.classes = (uint32_t)logits.size(1);
        *out = result;
        return FX_OK;
    } catch (...) {
        fx__shim_capture_free(&result);
        return status_from_current_exception(FX_ERR_MODEL, "model forward failed");
    }
}

extern "C" void fx__shim_capture_free(fx__shim_capture *capture)
{
    if (!capture)
        return;
    std::free(capture->logits);
    std::free(capture->activations);
    std::free(capture->gradients);
    std::memset(capture, 0, sizeof *capture);
}
