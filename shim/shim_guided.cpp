// Guided backpropagation (Springenberg et al., Striving for Simplicity: The
// All Convolutional Net, ICLR 2015 workshop) in a TorchScript model, which
// offers no module hooks:
//  1. fxcam::guided_relu, an operator of our own: forward = relu, backward =
//     g * (x > 0) * (g > 0) (a torch::autograd::Function, so the graph
//     interpreter records our backward like any other op's);
//  2. the forward graph is copied and inlined (module calls and functions,
//     so functional ReLUs such as DenseNet's final F.relu are seen), and
//     every aten::relu / aten::relu_ becomes fxcam::guided_relu. relu_ is
//     in-place: later reads of its input within its block read the result;
//  3. Guided Grad-CAM also needs Grad-CAM's PLAIN gradient at the target
//     layer. Instead of a second forward, the network after the layer is
//     kept twice: the original nodes read a detached copy of the layer's
//     output (the leaf, as shim_capture.cpp does) and keep their plain
//     ReLUs; a clone of them reads the layer's output itself and is guided.
//     Graph outputs: (logits, leaf, guided logits). The part after a layer
//     is small for the usual layers (DenseNet-121's features: relu, pool,
//     linear), so one forward serves both backward passes.
// Graphs are cached per layer like the capture graphs.
#include "shim_internal.hpp"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/library.h>

#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

namespace {

using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

// The guided ReLU. The mask uses the output (y > 0 exactly where x > 0), so
// only one tensor is saved, as for aten::relu itself.
struct GuidedRelu : public torch::autograd::Function<GuidedRelu> {
    static at::Tensor forward(torch::autograd::AutogradContext *ctx, const at::Tensor &x)
    {
        at::Tensor y = at::relu(x);
        ctx->save_for_backward({y});
        return y;
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                   torch::autograd::variable_list grads)
    {
        at::Tensor y = ctx->get_saved_variables()[0];
        // relu's own kernel on the positive part of g: g where g > 0 and
        // y > 0, else 0 (two passes instead of five for the masks' product).
        return {at::threshold_backward(grads[0].clamp_min(0), y, 0)};
    }
};

at::Tensor guided_relu(const at::Tensor &x)
{
    return GuidedRelu::apply(x);
}

} // namespace

TORCH_LIBRARY(fxcam, m)
{
    m.def("guided_relu(Tensor self) -> Tensor", &guided_relu);
}

namespace {

using namespace fxshim;

const c10::Symbol guided_symbol = c10::Symbol::fromQualString("fxcam::guided_relu");

// Inlines prim::CallFunction (scripted code calling F.relu, F.softmax) so
// that the ReLUs inside are seen; *tracked follows the value it names.
void inline_functions(Block *block, Value **tracked)
{
    for (Node *n = block->nodes().front(); n != block->return_node();) {
        if (n->kind() == c10::prim::CallFunction) {
            auto fn = n->input(0)->type()->cast<c10::FunctionType>();
            if (fn) {
                Node *prev = n->prev();
                Value *out = n->outputs().size() == 1 ? n->output() : nullptr;
                n->removeInput(0); // the callee's inputs are the call's arguments (torch's Inline pass)
                auto outs = torch::jit::inlineCallTo(n, &torch::jit::toGraphFunction(*fn->function()), true);
                if (out && *tracked == out)
                    *tracked = outs.size() == 1 ? outs[0] : nullptr;
                n = prev->next();
                continue;
            }
        }
        for (Block *b : n->blocks())
            inline_functions(b, tracked);
        n = n->next();
    }
}

// Whether block b is `outer` or nested inside it.
bool is_within(Block *b, Block *outer)
{
    while (b) {
        if (b == outer)
            return true;
        Node *owner = b->owningNode();
        b = owner ? owner->owningBlock() : nullptr;
    }
    return false;
}

// Replaces one relu/relu_ node by fxcam::guided_relu.
fx_status guide(Node *n)
{
    Graph *g = n->owningGraph();
    Value *x = n->input(0);
    Value *y;
    {
        torch::jit::WithInsertPoint here(n);
        y = g->insert(guided_symbol, {x});
    }
    if (n->kind() == c10::aten::relu_) {
        // Reads of x after an in-place relu saw the rectified values.
        std::vector<torch::jit::Use> uses = x->uses();
        for (const auto &use : uses) {
            if (use.user == n || use.user == y->node() || !use.user->isAfter(n))
                continue;
            if (!is_within(use.user->owningBlock(), n->owningBlock()))
                return fx__error(FX_ERR_MODEL, "guided backpropagation: an in-place relu_ inside control flow "
                                               "changes a tensor read after the branch; fxcam cannot rewrite it");
            use.user->replaceInput(use.offset, y);
        }
    }
    n->output()->replaceAllUsesWith(y);
    n->destroy();
    return FX_OK;
}

bool is_relu(const Node *n)
{
    return (n->kind() == c10::aten::relu || n->kind() == c10::aten::relu_) && n->inputs().size() == 1;
}

// Rewrites every ReLU of block except inside the nodes of `keep`; counts them.
fx_status guide_block(Block *block, const std::unordered_set<Node *> &keep, size_t *count)
{
    for (Node *n = block->nodes().front(); n != block->return_node();) {
        Node *next = n->next();
        if (!keep.count(n)) {
            for (Block *b : n->blocks()) {
                fx_status st = guide_block(b, keep, count);
                if (st != FX_OK)
                    return st;
            }
            if (is_relu(n)) {
                fx_status st = guide(n);
                if (st != FX_OK)
                    return st;
                ++*count;
            }
        }
        n = next;
    }
    return FX_OK;
}

// Whether n (or a node nested in it) reads a value of `env`.
bool reads_any(Node *n, const std::unordered_map<Value *, Value *> &env)
{
    for (Value *v : n->inputs())
        if (env.count(v))
            return true;
    for (Block *b : n->blocks())
        for (Node *inner : b->nodes())
            if (reads_any(inner, env))
                return true;
    return false;
}

// Running the part after the layer twice is only sound when it writes no
// tensor computed before it (both copies would write it). relu_ is exempt:
// it becomes out-of-place.
fx_status check_writes(const std::vector<Node *> &nodes, const std::unordered_set<Value *> &own,
                       const std::string &layer)
{
    for (Node *n : nodes) {
        const c10::FunctionSchema *schema = n->maybeSchema();
        if (!schema || is_relu(n) || !schema->is_mutable())
            continue;
        const auto &args = schema->arguments();
        for (size_t i = 0; i < args.size() && i < n->inputs().size(); i++)
            if (args[i].alias_info() && args[i].alias_info()->isWrite() && !own.count(n->input(i)))
                return fx__error(FX_ERR_LAYER,
                                 "guided backpropagation: after layer '%s' the model modifies in place (%s) a tensor "
                                 "computed before the layer; fxcam runs that part twice and cannot; choose a later "
                                 "layer (e.g. the enclosing block)",
                                 layer.c_str(), n->kind().toQualString());
    }
    return FX_OK;
}

// Other activations seen, for the message of a model without ReLU.
std::string other_activations(Block *block)
{
    static const c10::Symbol acts[] = {c10::aten::gelu,       c10::aten::silu,    c10::aten::hardswish,
                                       c10::aten::hardtanh,   c10::aten::elu,     c10::aten::leaky_relu,
                                       c10::aten::sigmoid,    c10::aten::tanh,    c10::aten::mish,
                                       c10::aten::hardsigmoid, c10::aten::prelu,  c10::aten::softplus};
    std::string seen;
    for (Node *n : block->nodes()) {
        for (Block *b : n->blocks()) {
            std::string inner = other_activations(b);
            if (!inner.empty() && seen.find(inner) == std::string::npos)
                seen += (seen.empty() ? "" : ", ") + inner;
        }
        for (c10::Symbol a : acts) {
            std::string name = a.toQualString();
            std::string bare = name + "_";
            if ((n->kind() == a || n->kind() == c10::Symbol::fromQualString(bare)) &&
                seen.find(name) == std::string::npos)
                seen += (seen.empty() ? "" : ", ") + name;
        }
    }
    return seen;
}

// A guided graph and how many ReLUs it guides.
struct GuidedGraph : CaptureGraph {
    size_t relu_count = 0;
};

fx_status build_guided(fx__shim_model &m, const std::string &layer, std::shared_ptr<GuidedGraph> *out)
{
    auto g = m.module.get_method("forward").graph()->copy();
    // Every module call inlined (not only the target's path, as capture
    // graphs do), so that every ReLU of the network can be guided.
    auto calls = inline_module_calls(*g, [](const std::string &) { return true; });
    Value *x = nullptr;
    for (const auto &c : calls)
        if (c.path == layer)
            x = c.output; // the last call wins (shared modules)
    inline_functions(g->block(), &x);
    if (!x || !x->type()->isSubtypeOf(*c10::TensorType::get()) || x->node()->owningBlock() != g->block())
        return fx__error(FX_ERR_LAYER, "guided backpropagation: layer '%s' is not a single tensor computed outside "
                                       "control flow of the forward graph",
                         layer.c_str());
    if (m.strip_activation) {
        int32_t kind = FX__ACTIVATION_NONE;
        Node *act = output_activation(*g, &kind);
        if (!act)
            return fx__error(FX_ERR_INTERNAL, "the model's final activation was not found again in a graph copy");
        act->output()->replaceAllUsesWith(act->input(0));
        act->destroy();
    }
    // The leaf and its copy for the plain part after the layer (shim_capture.cpp).
    Value *leaf, *copy;
    {
        torch::jit::WithInsertPoint guard(x->node()->next());
        Value *detached = g->insert(c10::aten::detach, {x});
        leaf = g->insert(c10::aten::requires_grad_, {detached, true});
        copy = g->insert(c10::aten::clone, {leaf});
        x->replaceAllUsesAfterNodeWith(detached->node(), copy);
    }
    std::vector<Node *> after;
    for (Node *n = copy->node()->next(); n != g->return_node(); n = n->next())
        after.push_back(n);
    // The guided copy of the nodes after the layer that depend on it.
    Value *guided_x;
    {
        torch::jit::WithInsertPoint end(g->return_node());
        guided_x = g->insert(c10::aten::clone, {x});
    }
    std::unordered_map<Value *, Value *> env{{copy, guided_x}};
    std::unordered_set<Node *> keep(after.begin(), after.end());
    std::unordered_set<Value *> own_plain{copy}, own_guided{guided_x};
    std::vector<Node *> clones;
    for (Node *n : after) {
        for (Value *v : n->outputs())
            own_plain.insert(v);
        if (!reads_any(n, env))
            continue;
        Node *c = g->createClone(n, [&](Value *v) {
            auto it = env.find(v);
            return it != env.end() ? it->second : v;
        });
        g->insertNode(c);
        for (size_t i = 0; i < n->outputs().size(); i++) {
            env[n->output(i)] = c->output(i);
            own_guided.insert(c->output(i));
        }
        clones.push_back(c);
    }
    auto guided_out = env.find(g->outputs()[0]);
    if (guided_out == env.end())
        return fx__error(FX_ERR_LAYER, "the model's output does not depend on layer '%s'", layer.c_str());
    fx_status st = check_writes(after, own_plain, layer);
    if (st == FX_OK)
        st = check_writes(clones, own_guided, layer);
    if (st != FX_OK)
        return st;
    g->registerOutput(leaf);
    g->registerOutput(guided_out->second);
    size_t count = 0;
    st = guide_block(g->block(), keep, &count);
    if (st != FX_OK)
        return st;
    if (count == 0) {
        std::string acts = other_activations(g->block());
        return fx__error(FX_ERR_MODEL,
                         "guided backpropagation needs ReLUs, and the model's forward graph has no aten::relu or "
                         "aten::relu_ (activations seen: %s); without a ReLU the guided gradient is the plain input "
                         "gradient, so fxcam refuses rather than mislabel it; use a CAM method instead",
                         acts.empty() ? "none" : acts.c_str());
    }
    g->lint();
    auto graph = std::make_shared<GuidedGraph>();
    graph->graph = g;
    graph->executor = std::make_unique<torch::jit::GraphExecutor>(g, "fxcam_guided");
    graph->relu_count = count;
    *out = graph;
    return FX_OK;
}

fx_status guided_for(fx__shim_model &m, const std::string &layer, std::shared_ptr<GuidedGraph> *out)
{
    std::lock_guard<std::mutex> lock(m.cache_mutex);
    // fx__shim_strip_activation clears the capture caches; keying on the
    // setting keeps this cache right without touching them.
    std::string key = layer + (m.strip_activation ? "\n1" : "\n0");
    auto it = m.guided.find(key);
    if (it == m.guided.end()) {
        std::shared_ptr<GuidedGraph> graph;
        fx_status st = build_guided(m, layer, &graph);
        if (st != FX_OK)
            return st;
        it = m.guided.emplace(key, graph).first;
    }
    *out = std::static_pointer_cast<GuidedGraph>(it->second); // m.guided holds GuidedGraphs only
    return FX_OK;
}

} // namespace

// What a guided forward keeps for its backward.
struct fx__shim_guided {
    std::string layer;
    uint32_t n = 0, classes = 0;
    size_t relu_count = 0;
    at::Tensor input;         // [n, c, h, w] on the device, requiring grad
    at::Tensor logits;        // the plain part after the layer, from the leaf
    at::Tensor leaf;          // the layer's output, detached, requiring grad
    at::Tensor guided_logits; // the guided part after the layer
    float *input_gradients = nullptr;
    ~fx__shim_guided() { std::free(input_gradients); }
};

namespace {

// The capture's part of a guided forward: logits and the layer's activations.
fx_status fill_capture(const fx__shim_guided &gd, const std::string &layer, fx__shim_capture *capture)
{
    if (gd.leaf.dim() != 4)
        return fx__error(FX_ERR_LAYER, "layer '%s' output has %lld dimensions for this batch; expected 4",
                         layer.c_str(), (long long)gd.leaf.dim());
    capture->logits = copy_to_host(gd.logits);
    capture->n = gd.n;
    capture->classes = gd.classes;
    capture->activations = copy_to_host(gd.leaf);
    capture->k = (uint32_t)gd.leaf.size(1);
    capture->h = (uint32_t)gd.leaf.size(2);
    capture->w = (uint32_t)gd.leaf.size(3);
    return FX_OK;
}

} // namespace

extern "C" fx_status fx__shim_guided_forward(fx__shim_model *model, const float *input, uint32_t n, const char *layer,
                                             fx__shim_capture *capture, fx__shim_guided **out)
{
    if (!model || !input || !layer || !out)
        return fx__error(FX_ERR_INTERNAL, "fx__shim_guided_forward: NULL argument");
    fx__shim_capture result{};
    try {
        // As every shim entry point: the executor's optimizations off (shim_capture.cpp says why).
        torch::jit::GraphOptimizerEnabledGuard no_optimizations(false);
        std::shared_ptr<GuidedGraph> graph;
        fx_status st = guided_for(*model, layer, &graph);
        if (st != FX_OK)
            return st;
        auto gd = std::make_unique<fx__shim_guided>();
        gd->layer = layer;
        gd->n = n;
        gd->relu_count = graph->relu_count;
        gd->input = torch::from_blob(const_cast<float *>(input),
                                     {(int64_t)n, (int64_t)model->channels, (int64_t)model->height,
                                      (int64_t)model->width},
                                     torch::kFloat32)
                        .to(model->device, torch::kFloat32, false, /*copy=*/true)
                        .requires_grad_(true);
        torch::AutoGradMode grad_mode(true);
        // A non-leaf copy: a model that writes its input in place must not hit the leaf.
        torch::jit::Stack stack{model->module._ivalue(), gd->input.clone()};
        graph->executor->run(stack);
        if (stack.size() != 3)
            return fx__error(FX_ERR_INTERNAL, "guided graph returned %zu values, expected 3", stack.size());
        st = check_logits(stack[0], n, &gd->logits);
        if (st == FX_OK)
            st = check_logits(stack[2], n, &gd->guided_logits);
        if (st != FX_OK)
            return st;
        gd->classes = (uint32_t)gd->logits.size(1);
        gd->leaf = stack[1].toTensor();
        if (capture) {
            st = fill_capture(*gd, gd->layer, &result);
            if (st != FX_OK) {
                fx__shim_capture_free(&result);
                return st;
            }
            *capture = result;
        }
        *out = gd.release();
        return FX_OK;
    } catch (...) {
        fx__shim_capture_free(&result);
        return fxshim::status_from_current_exception(FX_ERR_MODEL, "guided backpropagation forward failed");
    }
}

extern "C" fx_status fx__shim_guided_backward(fx__shim_guided *gd, const float *weights, fx__shim_capture *capture)
{
    if (!gd || !weights || !gd->guided_logits.defined())
        return fx__error(FX_ERR_INTERNAL, "fx__shim_guided_backward: no guided forward, or its backward already ran");
    try {
        torch::jit::GraphOptimizerEnabledGuard no_optimizations(false);
        auto w = torch::from_blob(const_cast<float *>(weights), {(int64_t)gd->n, (int64_t)gd->classes},
                                  torch::kFloat32)
                     .to(gd->logits.device(), gd->logits.scalar_type());
        if (capture) {
            // Grad-CAM's gradient: plain ReLUs after the layer; the walk stops at the leaf.
            auto grads = torch::autograd::grad({(gd->logits * w).sum()}, {gd->leaf}, {}, false, false, true);
            if (grads.empty() || !grads[0].defined())
                return fx__error(FX_ERR_LAYER, "the model's output does not depend on layer '%s'", gd->layer.c_str());
            float *g = copy_to_host(grads[0]);
            std::free(capture->gradients);
            capture->gradients = g;
        }
        auto grads = torch::autograd::grad({(gd->guided_logits * w).sum()}, {gd->input}, {}, false, false, true);
        gd->logits = at::Tensor();
        gd->leaf = at::Tensor();
        gd->guided_logits = at::Tensor();
        at::Tensor g = grads.empty() || !grads[0].defined() ? torch::zeros_like(gd->input) : grads[0];
        gd->input_gradients = copy_to_host(g);
        gd->input = at::Tensor();
        return FX_OK;
    } catch (...) {
        return fxshim::status_from_current_exception(FX_ERR_MODEL, "guided backpropagation backward failed");
    }
}

extern "C" const float *fx__shim_guided_input_gradients(const fx__shim_guided *gd)
{
    return gd ? gd->input_gradients : nullptr;
}

extern "C" size_t fx__shim_guided_relu_count(const fx__shim_guided *gd)
{
    return gd ? gd->relu_count : 0;
}

extern "C" void fx__shim_guided_free(fx__shim_guided *gd)
{
    delete gd;
}
