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
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

namespace fxshim {

namespace {

using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

fx_status strip_output_activation(Graph &g); // below, with the activation search

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

} // namespace

std::vector<ModuleCall> inline_module_calls(Graph &graph, const std::function<bool(const std::string &)> &pred)
{
    Walker w{pred, {}, {}};
    w.paths[graph.inputs()[0]] = "";
    w.walk(graph.block());
    return w.calls;
}

namespace {

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
    if (m.strip_activation) {
        fx_status st = strip_output_activation(*g);
        if (st != FX_OK)
            return st;
    }
    auto cap = std::make_shared<CaptureGraph>();
    cap->graph = g;
    cap->executor = make_executor(g, "fxcam_capture");
    *out = cap;
    return FX_OK;
}

// The forward graph with `layer`'s output (its last call) replaced by a new
// graph input: inputs (self, image, replacement). Everything is inlined so
// that dead-code elimination drops what only fed the layer; the image input
// stays in use where a later part reads it (a skip connection around a layer
// inside a block).
fx_status build_ablation(fx__shim_model &m, const std::string &layer, std::shared_ptr<CaptureGraph> *out)
{
    auto g = m.module.get_method("forward").graph()->copy();
    auto calls = inline_module_calls(*g, [](const std::string &) { return true; });
    const ModuleCall *target = nullptr;
    for (const auto &c : calls)
        if (c.path == layer)
            target = &c;
    if (!target || !target->output || !target->output->type()->isSubtypeOf(*c10::TensorType::get()) ||
        target->output->node()->owningBlock() != g->block())
        return fx__error(FX_ERR_LAYER, "layer '%s': its output cannot be replaced for Ablation-CAM (not a single "
                                       "tensor computed outside control flow)",
                         layer.c_str());
    Value *replacement = g->addInput("fxcam_ablated")->setType(c10::TensorType::get());
    target->output->replaceAllUsesWith(replacement);
    if (m.strip_activation) {
        fx_status st = strip_output_activation(*g);
        if (st != FX_OK)
            return st;
    }
    torch::jit::EliminateDeadCode(g);
    auto cap = std::make_shared<CaptureGraph>();
    cap->uses_image = !g->inputs()[1]->uses().empty();
    cap->graph = g;
    cap->executor = make_executor(g, "fxcam_ablation");
    *out = cap;
    return FX_OK;
}

fx_status ablation_for(fx__shim_model &m, const std::string &layer, std::shared_ptr<CaptureGraph> *out)
{
    std::lock_guard<std::mutex> lock(m.cache_mutex);
    auto it = m.ablations.find(layer);
    if (it != m.ablations.end()) {
        *out = it->second;
        return FX_OK;
    }
    std::shared_ptr<CaptureGraph> cap;
    fx_status st = build_ablation(m, layer, &cap);
    if (st != FX_OK)
        return st;
    m.ablations[layer] = cap;
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
            if (m.strip_activation) {
                fx_status st = strip_output_activation(*cap->graph);
                if (st != FX_OK)
                    return st;
            }
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

} // namespace

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

fx_status check_logits(const c10::IValue &v, uint32_t n, at::Tensor *out)
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

namespace {

// ---- The model's final activation ------------------------------------------

// Ops that only reshape or copy. A final activation behind them (softmax then
// view) is still the output's activation, and replacing the activation by
// its input leaves them acting on the logits, with the same shapes.
bool is_shape_only(const Node *n)
{
    static const c10::Symbol ops[] = {c10::aten::contiguous, c10::aten::clone,  c10::aten::view,
                                       c10::aten::reshape,    c10::aten::flatten, c10::aten::squeeze,
                                       c10::aten::detach};
    for (c10::Symbol op : ops)
        if (n->kind() == op)
            return true;
    return false;
}

c10::optional<c10::IValue> constant_of(Value *v, int depth = 0);

// The branch an `if` always takes, when its condition is constant (after
// inlining, TorchScript's F.softmax tests `dim is None` on a constant).
Block *taken_branch(Node *if_node, int depth)
{
    auto c = constant_of(if_node->input(0), depth + 1);
    if (!c || !c->isBool())
        return nullptr;
    return if_node->blocks()[c->toBool() ? 0 : 1];
}

// The value v always has, looking through constant ifs, unchecked casts and
// `is None` tests; nullopt when it depends on the input or the module.
c10::optional<c10::IValue> constant_of(Value *v, int depth)
{
    if (depth > 32)
        return c10::nullopt;
    if (auto c = torch::jit::toIValue(v))
        return c;
    Node *n = v->node();
    if (n->kind() == c10::prim::If) {
        Block *b = taken_branch(n, depth);
        return b ? constant_of(b->outputs()[v->offset()], depth + 1) : c10::nullopt;
    }
    if (n->kind() == c10::prim::unchecked_cast)
        return constant_of(n->input(0), depth + 1);
    if (n->kind() == c10::aten::__is__ || n->kind() == c10::aten::__isnot__) {
        auto a = constant_of(n->input(0), depth + 1), b = constant_of(n->input(1), depth + 1);
        if (!a || !b || (!a->isNone() && !b->isNone()))
            return c10::nullopt;
        bool is = a->isNone() && b->isNone();
        return c10::IValue(n->kind() == c10::aten::__is__ ? is : !is);
    }
    return c10::nullopt;
}

// FX__ACTIVATION_* of one node. softmax/log_softmax count only over the
// class dimension: dim 1, or dim -1 when their result is the [batch,
// classes] output itself (no reshape in between).
int32_t activation_of(const Node *n, bool is_output_itself)
{
    if (n->kind() == c10::aten::sigmoid && n->inputs().size() == 1)
        return FX__ACTIVATION_SIGMOID;
    bool softmax = n->kind() == c10::aten::softmax, log_softmax = n->kind() == c10::aten::log_softmax;
    if ((!softmax && !log_softmax) || n->inputs().size() < 2)
        return FX__ACTIVATION_NONE;
    auto dim = constant_of(n->input(1));
    if (!dim || !dim->isInt() || !(dim->toInt() == 1 || (dim->toInt() == -1 && is_output_itself)))
        return FX__ACTIVATION_NONE;
    return softmax ? FX__ACTIVATION_SOFTMAX : FX__ACTIVATION_LOG_SOFTMAX;
}

// Removes the final activation: graph output 0 becomes its input.
fx_status strip_output_activation(Graph &g)
{
    int32_t kind = FX__ACTIVATION_NONE;
    Node *act = output_activation(g, &kind);
    if (!act)
        return fx__error(FX_ERR_INTERNAL, "the model's final activation was not found again in a graph copy");
    act->output()->replaceAllUsesWith(act->input(0));
    act->destroy();
    return FX_OK;
}

} // namespace

Node *output_activation(Graph &g, int32_t *kind)
{
    Value *v = g.outputs()[0];
    bool is_output_itself = true;
    // Each step inlines one module call or passes one op; real graphs need a
    // handful. The bound only guards against a pathological archive.
    for (int step = 0; step < 256; step++) {
        Node *n = v->node();
        // The value must feed nothing but the output chain: otherwise
        // replacing the activation would change other computations.
        if (v->uses().size() != 1)
            return nullptr;
        if (n->kind() == c10::prim::CallMethod) {
            auto cls = n->input(0)->type()->cast<c10::ClassType>();
            if (!cls || !cls->is_module())
                return nullptr;
            auto &fn = torch::jit::toGraphFunction(cls->getMethod(n->s(c10::attr::name)));
            auto outs = torch::jit::inlineCallTo(n, &fn, false);
            if (outs.size() != 1)
                return nullptr;
            v = outs[0];
            continue;
        }
        if (n->kind() == c10::prim::CallFunction) { // scripted code calling F.softmax
            auto fn = n->input(0)->type()->cast<c10::FunctionType>();
            if (!fn)
                return nullptr;
            n->removeInput(0); // the callee's inputs are the call's arguments (as torch's Inline pass does)
            auto outs = torch::jit::inlineCallTo(n, &torch::jit::toGraphFunction(*fn->function()), true);
            if (outs.size() != 1)
                return nullptr;
            v = outs[0];
            continue;
        }
        if (n->kind() == c10::prim::If) {
            Block *b = taken_branch(n, 0);
            if (!b)
                return nullptr;
            v = b->outputs()[v->offset()];
            continue;
        }
        int32_t k = activation_of(n, is_output_itself);
        if (k != FX__ACTIVATION_NONE) {
            *kind = k;
            return n;
        }
        if (!is_shape_only(n))
            return nullptr;
        v = n->input(0);
        is_output_itself = false;
    }
    return nullptr;
}

// ---- Training-mode exports ----------------------------------------------------

std::vector<std::string> training_modules(const torch::jit::Module &module)
{
    std::vector<std::string> names;
    for (const auto &named : module.named_modules())
        if (named.value.is_training())
            names.push_back(named.name);
    return names;
}

namespace {

// Index of the boolean "training" argument of the operations whose behaviour
// tracing fixes as a constant; SIZE_MAX for other nodes.
size_t training_argument(const Node *n)
{
    using namespace c10;
    if (n->kind() == aten::batch_norm && n->inputs().size() == 9) {
        // Evaluation needs running statistics; without them (track_running_stats=False)
        // batch statistics are the module's only mode.
        for (size_t i : {3, 4})
            if (n->input(i)->type()->kind() == TypeKind::NoneType)
                return SIZE_MAX;
        return 5;
    }
    static const Symbol dropouts[] = {aten::dropout,       aten::dropout_,       aten::feature_dropout,
                                      aten::feature_dropout_, aten::alpha_dropout, aten::alpha_dropout_,
                                      aten::feature_alpha_dropout, aten::feature_alpha_dropout_};
    for (Symbol op : dropouts)
        if (n->kind() == op && n->inputs().size() == 3)
            return 2;
    return SIZE_MAX;
}

size_t switch_block(Block *block)
{
    size_t switched = 0;
    for (Node *n : block->nodes()) {
        for (Block *b : n->blocks())
            switched += switch_block(b);
        size_t i = training_argument(n);
        if (i == SIZE_MAX)
            continue;
        auto flag = torch::jit::toIValue(n->input(i));
        if (!flag || !flag->isBool() || !flag->toBool())
            continue; // already off, or decided at run time (scripted: self.training, off after eval())
        torch::jit::WithInsertPoint here(n);
        n->replaceInput(i, n->owningGraph()->insertConstant(false));
        switched++;
    }
    return switched;
}

} // namespace

size_t switch_traced_training_ops(const torch::jit::Module &module)
{
    // Modules of one class share their method graphs: each graph once.
    std::unordered_set<const Graph *> seen;
    size_t switched = 0;
    for (const auto &sub : module.modules())
        for (const auto &method : sub.get_methods()) {
            auto g = method.graph();
            if (seen.insert(g.get()).second)
                switched += switch_block(g->block());
        }
    return switched;
}

fx_status probe_calls(fx__shim_model &m, const at::Tensor &input, at::Tensor *output,
                      std::vector<ProbedCall> *calls)
{
    auto g = m.module.get_method("forward").graph()->copy();
    auto found = inline_module_calls(*g, [](const std::string &) { return true; });
    // Before the shape outputs below add uses to module outputs.
    m.output_activation = FX__ACTIVATION_NONE;
    output_activation(*g, &m.output_activation);
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

// What a forward keeps for the calls that follow it on the same input.
struct fx__shim_pass {
    fx__shim_model *model = nullptr;
    std::string layer;
    at::Tensor logits;      // with the autograd graph after the leaf (FX__FORWARD_GRADIENTS)
    at::Tensor leaf;        // the layer's output, requiring grad
    at::Tensor input;       // [n, c, h, w] on the device (FX__FORWARD_CHANNELS)
    at::Tensor activations; // the layer's output, detached (FX__FORWARD_CHANNELS)
};

namespace {

thread_local int last_run_optimized = -1;

// The graph executor's optimizations stay off for fxcam's graphs: with them
// on, repeated gradient calls failed ("differentiated Tensors ... not used in
// the graph") and a DenseNet-121 forward hung on CUDA with libtorch 2.x. The
// switch is thread-local in libtorch, so every entry point sets it around its
// work, on whichever thread calls, and restores it after: other TorchScript
// code in the process keeps its own setting.
struct ExecutorSetting {
    torch::jit::GraphOptimizerEnabledGuard off{false};
    ExecutorSetting() { last_run_optimized = torch::jit::getGraphExecutorOptimize() ? 1 : 0; }
};

// Runs a graph on stack under the current grad mode; output 0 must be
// [n, classes].
fx_status run_graph(CaptureGraph &graph, torch::jit::Stack &stack, uint32_t n, at::Tensor *logits)
{
    graph.executor->run(stack);
    return check_logits(stack.at(0), n, logits);
}

// score_j = sum_c weights[c] * out[j][c], to the host.
void weighted_scores(const at::Tensor &out, const float *weights, uint32_t count, float *scores)
{
    auto w = torch::from_blob(const_cast<float *>(weights), {1, out.size(1)}, torch::kFloat32)
                 .to(out.device(), out.scalar_type());
    auto s = (out * w).sum(1).to(torch::kCPU, torch::kFloat32).contiguous();
    std::memcpy(scores, s.data_ptr<float>(), count * sizeof(float));
}

// Score-CAM's batch: the image times the normalized upsampled channels
// first .. first + count - 1 (pytorch-grad-cam's score_cam.py).
at::Tensor score_cam_inputs(const fx__shim_pass &p, uint32_t image, uint32_t first, uint32_t count)
{
    auto a = p.activations.select(0, image).slice(0, first, first + count).unsqueeze(1).to(torch::kFloat32);
    auto up = torch::upsample_bilinear2d(a, {p.input.size(2), p.input.size(3)}, /*align_corners=*/true);
    auto flat = up.view({(int64_t)count, -1});
    auto hi = std::get<0>(flat.max(1)).view({(int64_t)count, 1, 1, 1});
    auto lo = std::get<0>(flat.min(1)).view({(int64_t)count, 1, 1, 1});
    auto mask = (up - lo) / (hi - lo + 1e-8);
    return p.input.slice(0, image, image + 1) * mask.to(p.input.scalar_type());
}

// Ablation-CAM's batch of layer outputs: the image's activations, repeated,
// with channel first + j of copy j set to the ablation value: 0 when the
// activations' minimum is 0 (after a ReLU), else minimum - 1e7
// (pytorch-grad-cam's AblationLayer; it lowers the value by a further 1e7
// for each later copy of a batch, a quirk fxcam does not copy, so that the
// weights do not depend on the batch size).
at::Tensor ablated_activations(const fx__shim_pass &p, uint32_t image, uint32_t first, uint32_t count)
{
    auto a = p.activations.select(0, image);
    double lo = a.min().item<double>();
    double value = lo == 0.0 ? 0.0 : lo - 1e7;
    auto rep = a.unsqueeze(0).repeat({(int64_t)count, 1, 1, 1});
    auto opts = torch::TensorOptions().dtype(torch::kLong).device(rep.device());
    rep.index_put_({torch::arange((int64_t)count, opts), torch::arange((int64_t)first, (int64_t)(first + count), opts)},
                   torch::scalar_tensor(value, rep.options()));
    return rep;
}

} // namespace

extern "C" fx_status fx__shim_forward(fx__shim_model *model, const float *input, uint32_t n, const char *layer,
                                      uint32_t flags, fx__shim_capture *out)
{
    fx__shim_capture result{};
    try {
        ExecutorSetting setting;
        std::shared_ptr<CaptureGraph> cap;
        fx_status st = capture_for(*model, layer, &cap);
        if (st != FX_OK)
            return st;
        auto x = torch::from_blob(const_cast<float *>(input),
                                  {(int64_t)n, (int64_t)model->channels, (int64_t)model->height,
                                   (int64_t)model->width},
                                  torch::kFloat32)
                     .to(model->device);
        bool gradients = layer && (flags & FX__FORWARD_GRADIENTS);
        torch::jit::Stack stack{model->module._ivalue(), x};
        at::Tensor logits;
        {
            torch::AutoGradMode grad_mode(gradients);
            st = run_graph(*cap, stack, n, &logits);
        }
        if (st != FX_OK)
            return st;
        result.logits = copy_to_host(logits);
        result.n = n;
        result.classes = (uint32_t)logits.size(1);
        if (layer) {
            at::Tensor leaf = stack.at(1).toTensor();
            if (leaf.dim() != 4) {
                fx__shim_capture_free(&result);
                return fx__error(FX_ERR_LAYER, "layer '%s' output has %lld dimensions for this batch; expected 4",
                                 layer, (long long)leaf.dim());
            }
            result.activations = copy_to_host(leaf);
            result.k = (uint32_t)leaf.size(1);
            result.h = (uint32_t)leaf.size(2);
            result.w = (uint32_t)leaf.size(3);
            if (flags & (FX__FORWARD_GRADIENTS | FX__FORWARD_CHANNELS)) {
                auto pass = std::make_unique<fx__shim_pass>();
                pass->model = model;
                pass->layer = layer;
                if (gradients) {
                    pass->logits = logits;
                    pass->leaf = leaf;
                }
                if (flags & FX__FORWARD_CHANNELS) {
                    pass->input = x;
                    pass->activations = leaf.detach();
                }
                result.pass = pass.release();
            }
        }
        *out = result;
        return FX_OK;
    } catch (...) {
        fx__shim_capture_free(&result);
        return status_from_current_exception(FX_ERR_MODEL, "model forward failed");
    }
}

extern "C" fx_status fx__shim_backward(fx__shim_capture *capture, const float *weights)
{
    fx__shim_pass *p = capture ? capture->pass : nullptr;
    if (!p || !p->logits.defined())
        return fx__error(FX_ERR_INTERNAL, "fx__shim_backward: the forward kept no graph (FX__FORWARD_GRADIENTS), or "
                                          "its backward already ran");
    try {
        ExecutorSetting setting;
        at::Tensor logits = std::move(p->logits), leaf = std::move(p->leaf);
        p->logits = at::Tensor();
        p->leaf = at::Tensor();
        auto w = torch::from_blob(const_cast<float *>(weights), {(int64_t)capture->n, (int64_t)capture->classes},
                                  torch::kFloat32)
                     .to(logits.device(), logits.scalar_type());
        auto score = (logits * w).sum();
        auto grads = torch::autograd::grad({score}, {leaf}, {}, false, false, true);
        if (grads.empty() || !grads[0].defined())
            return fx__error(FX_ERR_LAYER, "the model's output does not depend on layer '%s'", p->layer.c_str());
        float *g = copy_to_host(grads[0]);
        std::free(capture->gradients);
        capture->gradients = g;
        return FX_OK;
    } catch (...) {
        return status_from_current_exception(FX_ERR_MODEL, "model backward failed");
    }
}

extern "C" fx_status fx__shim_channel_scores(fx__shim_capture *capture, int32_t kind, uint32_t image,
                                             uint32_t first, uint32_t count, const float *weights, float *scores)
{
    fx__shim_pass *p = capture ? capture->pass : nullptr;
    if (!p || !p->activations.defined())
        return fx__error(FX_ERR_INTERNAL, "fx__shim_channel_scores: the forward kept no activations "
                                          "(FX__FORWARD_CHANNELS)");
    if (image >= capture->n || count == 0 || first > capture->k || count > capture->k - first ||
        (kind != FX__CHANNELS_SCORE && kind != FX__CHANNELS_ABLATION))
        return fx__error(FX_ERR_INTERNAL, "fx__shim_channel_scores: kind %d, image %u, channels %u + %u of %u",
                         (int)kind, image, first, count, capture->k);
    try {
        ExecutorSetting setting;
        torch::NoGradGuard no_grad;
        fx__shim_model &m = *p->model;
        std::shared_ptr<CaptureGraph> graph;
        torch::jit::Stack stack;
        if (kind == FX__CHANNELS_SCORE) {
            fx_status st = capture_for(m, nullptr, &graph);
            if (st != FX_OK)
                return st;
            stack = {m.module._ivalue(), score_cam_inputs(*p, image, first, count)};
        } else {
            fx_status st = ablation_for(m, p->layer, &graph);
            if (st != FX_OK)
                return st;
            auto one = p->input.slice(0, image, image + 1);
            // repeat, not expand: an in-place op in the graph must not write
            // one element through several views.
            stack = {m.module._ivalue(), graph->uses_image ? one.repeat({(int64_t)count, 1, 1, 1}) : one,
                     ablated_activations(*p, image, first, count)};
        }
        at::Tensor out;
        fx_status st = run_graph(*graph, stack, count, &out);
        if (st != FX_OK)
            return st;
        weighted_scores(out, weights, count, scores);
        return FX_OK;
    } catch (...) {
        return status_from_current_exception(FX_ERR_MODEL, kind == FX__CHANNELS_SCORE
                                                               ? "Score-CAM forward of masked inputs failed"
                                                               : "Ablation-CAM forward of ablated activations failed");
    }
}

extern "C" void fx__shim_capture_free(fx__shim_capture *capture)
{
    if (!capture)
        return;
    std::free(capture->logits);
    std::free(capture->activations);
    std::free(capture->gradients);
    delete capture->pass;
    std::memset(capture, 0, sizeof *capture);
}

extern "C" int fx__shim_last_run_optimized(void)
{
    return last_run_optimized;
}

extern "C" int32_t fx__shim_output_activation(const fx__shim_model *model)
{
    return model->output_activation;
}

extern "C" fx_status fx__shim_strip_activation(fx__shim_model *model, int strip)
{
    try {
        if (strip && model->output_activation == FX__ACTIVATION_NONE)
            return fx__error(FX_ERR_INTERNAL, "fx__shim_strip_activation: the model has no final activation");
        std::lock_guard<std::mutex> lock(model->cache_mutex);
        model->strip_activation = strip != 0;
        model->captures.clear();
        model->ablations.clear();
        model->plain.reset();
        return FX_OK;
    } catch (...) {
        return status_from_current_exception(FX_ERR_INTERNAL, "fx__shim_strip_activation");
    }
}

extern "C" size_t fx__shim_training_module_count(const fx__shim_model *model)
{
    return model->training_modules.size();
}

extern "C" const char *fx__shim_training_module(const fx__shim_model *model, size_t index)
{
    return index < model->training_modules.size() ? model->training_modules[index].c_str() : nullptr;
}

extern "C" size_t fx__shim_training_ops_fixed(const fx__shim_model *model)
{
    return model->training_ops_fixed;
}
