// Loading a TorchScript model, its fxcam.json metadata, the probe forward that
// records class count and layer shapes, and target-layer lookup.
#include "shim_internal.hpp"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fxshim {

namespace {

// A frame of a traced model's original-code traceback: "path(123): name".
bool is_python_frame(const std::string &line)
{
    size_t close = line.rfind("): ");
    if (close == std::string::npos || close == 0)
        return false;
    size_t open = line.rfind('(', close);
    if (open == std::string::npos || open + 1 == close)
        return false;
    for (size_t i = open + 1; i < close; i++)
        if (line[i] < '0' || line[i] > '9')
            return false;
    return line.find(' ', close + 3) == std::string::npos;
}

// Lines of a TorchScript interpreter error that only locate the failure:
// "Traceback of TorchScript ...", "  File ...", quoted code (indented), its
// "~~~ <--- HERE" markers, and traced frames "path(123): name".
bool is_traceback_line(const std::string &line)
{
    return line.empty() || line[0] == ' ' || line[0] == '\t' || is_python_frame(line) ||
           line.rfind("Traceback of TorchScript", 0) == 0 ||
           line.rfind("The following operation failed in the TorchScript interpreter", 0) == 0 ||
           line.find_first_not_of("~^ ") == std::string::npos;
}

// fx_last_error holds 1 KiB and libtorch messages can be pages long, with the
// cause ("expected input[1, 1, 32, 32] to have 3 channels, but got 1") in the
// last lines: keep the lines that are not traceback, joined, at most
// kMaxCause bytes from the end, printable ASCII only.
std::string cause_of(const std::string &msg)
{
    constexpr size_t kMaxCause = 600;
    std::string kept, line;
    std::istringstream in(msg);
    while (std::getline(in, line)) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
            line.pop_back();
        if (!is_traceback_line(line))
            kept += (kept.empty() ? "" : " ") + line;
    }
    if (kept.empty())
        kept = msg;
    if (kept.size() > kMaxCause)
        kept = "..." + kept.substr(kept.size() - kMaxCause);
    for (char &c : kept)
        if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
            c = (c == '\n' || c == '\t') ? ' ' : '?';
    return kept;
}

std::string shape_string(const fx__shim_layer &l)
{
    std::ostringstream os;
    os << "[";
    for (uint32_t i = 0; i < l.rank; i++)
        os << (i ? ", " : "") << l.shape[i];
    os << "]";
    return os.str();
}

// "__torch__.torch.nn.modules.conv.___torch_mangle_3.Conv2d" -> "Conv2d".
std::string short_type_name(const torch::jit::Module &m)
{
    auto name = m.type()->name();
    if (!name)
        return "Module";
    std::string q = name->name();
    return q.empty() ? std::string("Module") : q;
}

size_t edit_distance(const std::string &a, const std::string &b)
{
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); j++)
        row[j] = j;
    for (size_t i = 1; i <= a.size(); i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); j++) {
            size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

size_t shared_prefix(const std::string &a, const std::string &b)
{
    size_t n = 0;
    while (n < a.size() && n < b.size() && a[n] == b[n])
        n++;
    return n;
}

fx_status parse_device(const char *name, torch::Device *device)
{
    std::string s = name ? name : "auto";
    if (s == "auto") {
        *device = torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
        return FX_OK;
    }
    if (s != "cpu" && s.rfind("cuda", 0) != 0)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_load: unknown device '%s'; valid: auto, cpu, cuda, cuda:N",
                         s.c_str());
    try {
        *device = torch::Device(s);
    } catch (...) {
        return fx__error(FX_ERR_INVALID_ARGUMENT, "fx_model_load: cannot parse device '%s'; valid: auto, cpu, cuda, cuda:N",
                         s.c_str());
    }
    if (device->is_cuda()) {
        if (!torch::cuda::is_available())
            return fx__error(FX_ERR_DEVICE, "fx_model_load: device '%s' requested but CUDA is not available in this "
                                            "build or on this machine; use \"cpu\" or \"auto\"",
                             s.c_str());
        if (!device->has_index())
            *device = torch::Device(torch::kCUDA, 0);
        int64_t count = (int64_t)torch::cuda::device_count();
        if (device->index() >= count)
            return fx__error(FX_ERR_DEVICE, "fx_model_load: device '%s' does not exist; this machine has %lld CUDA "
                                            "device(s) (cuda:0..cuda:%lld)",
                             s.c_str(), (long long)count, (long long)count - 1);
    }
    return FX_OK;
}

// CPUs this process may run on: a cpuset (taskset, Slurm, a container) can
// allow fewer than are online, and more OpenMP threads than CPUs make the
// threads wait for each other (docs/performance.md, "Steady under load").
long available_cpus()
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    return sysconf(_SC_NPROCESSORS_ONLN);
}

// threads: -1 leaves the process's setting alone (a PyTorch program that
// loads a model between epochs keeps its own), 0 = every CPU this process
// may run on.
void set_threads(int32_t threads)
{
    if (threads < 0)
        return;
    long n = threads > 0 ? threads : available_cpus();
    if (n < 1)
        n = 1;
    if (at::get_num_threads() != (int)n)
        at::set_num_threads((int)n);
}

} // namespace

fx_status status_from_current_exception(fx_status status, const char *what)
{
    try {
        throw;
    } catch (const c10::Error &e) {
        return fx__error(status, "%s: %s", what, cause_of(e.what_without_backtrace()).c_str());
    } catch (const std::bad_alloc &) {
        return fx__error(FX_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    } catch (const std::exception &e) {
        return fx__error(status, "%s: %s", what, cause_of(e.what()).c_str());
    } catch (...) {
        return fx__error(FX_ERR_INTERNAL, "%s: unknown exception", what);
    }
}

} // namespace fxshim

using namespace fxshim;

namespace {

// An open regular file read by offset: torch::jit::load reads through it, so
// the file checked by open_model_file() is the file loaded.
class FileReader : public caffe2::serialize::ReadAdapterInterface {
  public:
    FileReader(int fd, size_t size) : fd_(fd), size_(size) {}
    ~FileReader() override { ::close(fd_); }
    size_t size() const override { return size_; }
    size_t read(uint64_t pos, void *buf, size_t n, const char *what) const override
    {
        (void)what;
        size_t done = 0;
        while (done < n) {
            ssize_t r = ::pread(fd_, static_cast<char *>(buf) + done, n - done, (off_t)(pos + done));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            done += (size_t)r;
        }
        return done;
    }

  private:
    int fd_;
    size_t size_;
};

// Opens path for loading. Only a regular file qualifies: a directory gets its
// own message (libtorch says "failed finding central directory"), and a FIFO
// or device is refused without waiting for a writer (O_NONBLOCK).
fx_status open_model_file(const char *path, std::shared_ptr<FileReader> *out)
{
    int fd = ::open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return fx__error(FX_ERR_IO, "fx_model_load: cannot open '%s': %s", path, std::strerror(errno));
    struct stat st;
    fx_status status = FX_OK;
    if (::fstat(fd, &st) != 0)
        status = fx__error(FX_ERR_IO, "fx_model_load: cannot stat '%s': %s", path, std::strerror(errno));
    else if (S_ISDIR(st.st_mode))
        status = fx__error(FX_ERR_IO, "fx_model_load: '%s' is a directory; pass the model file (.pt) itself", path);
    else if (!S_ISREG(st.st_mode))
        status = fx__error(FX_ERR_IO, "fx_model_load: '%s' is not a regular file (a FIFO, socket or device); pass a "
                                      "TorchScript archive file", path);
    if (status != FX_OK) {
        ::close(fd);
        return status;
    }
    try {
        *out = std::make_shared<FileReader>(fd, (size_t)st.st_size);
    } catch (...) {
        ::close(fd);
        return fx__error(FX_ERR_OUT_OF_MEMORY, "fx_model_load: out of memory");
    }
    return FX_OK;
}

} // namespace

// torch::jit::load reads either a file or a seekable stream; bytes in memory
// become an istringstream (one copy, released once the module is built).
static torch::jit::Module load_archive(const fx__shim_source &source, std::shared_ptr<FileReader> file,
                                       torch::Device device, torch::jit::ExtraFilesMap &extra)
{
    if (file)
        return torch::jit::load(std::move(file), device, extra);
    std::istringstream stream(std::string(static_cast<const char *>(source.data), source.size));
    return torch::jit::load(stream, device, extra);
}

extern "C" fx_status fx__shim_load(const fx__shim_source *source, const char *device, int32_t threads,
                                   fx__shim_model **out)
{
    const char *path = source->label;
    std::shared_ptr<FileReader> file;
    if (source->path) {
        fx_status st = open_model_file(source->path, &file);
        if (st != FX_OK)
            return st;
    }
    std::unique_ptr<fx__shim_model> m;
    try {
        m = std::make_unique<fx__shim_model>();
        fx_status st = parse_device(device, &m->device);
        if (st != FX_OK)
            return st;
        m->device_name = m->device.str();
        set_threads(threads);
    } catch (...) {
        return status_from_current_exception(FX_ERR_INTERNAL, "fx_model_load");
    }
    torch::jit::ExtraFilesMap extra{{"fxcam.json", ""}};
    try {
        m->module = load_archive(*source, std::move(file), m->device, extra);
    } catch (...) {
        std::string what = std::string("fx_model_load: '") + path +
                           "' is not a readable TorchScript archive (save it with torch.jit.save)";
        return status_from_current_exception(FX_ERR_FORMAT, what.c_str());
    }
    try {
        m->metadata.meta.positive_class = -1;
        if (!extra["fxcam.json"].empty())
            parse_metadata(m->metadata, extra["fxcam.json"]);
        // A model saved in training mode: scripted modules follow their
        // flag, which eval() turns off; tracing fixed the mode into the
        // graph, which switch_traced_training_ops() undoes. engine.c warns.
        m->training_modules = training_modules(m->module);
        m->module.eval();
        m->training_ops_fixed = switch_traced_training_ops(m->module);
        // Gradients flow only from the target layer onward (shim_capture.cpp),
        // never into the weights.
        for (auto p : m->module.parameters())
            p.requires_grad_(false);
        if (!m->module.find_method("forward"))
            return fx__error(FX_ERR_MODEL, "fx_model_load: '%s' has no forward method", path);
    } catch (...) {
        return status_from_current_exception(FX_ERR_MODEL, "fx_model_load");
    }
    *out = m.release();
    return FX_OK;
}

extern "C" int fx__shim_thread_count(void)
{
    return at::get_num_threads();
}

extern "C" int fx__shim_executor_optimized(void)
{
    return torch::jit::getGraphExecutorOptimize() ? 1 : 0;
}

extern "C" void fx__shim_free(fx__shim_model *model)
{
    try {
        delete model;
    } catch (...) {
    }
}

extern "C" const fx__shim_metadata *fx__shim_get_metadata(const fx__shim_model *model)
{
    return &model->metadata.meta;
}

extern "C" const char *fx__shim_device(const fx__shim_model *model)
{
    return model->device_name.c_str();
}

namespace {

fx_status check_output(const at::Tensor &out, int64_t batch)
{
    if (out.dim() != 2 || out.size(0) != batch) {
        std::ostringstream os;
        os << "[";
        for (int64_t i = 0; i < out.dim(); i++)
            os << (i ? ", " : "") << out.size(i);
        os << "]";
        return fx__error(FX_ERR_MODEL,
                         "model output of shape %s for a batch of %lld is not [batch, classes]: fxcam needs a "
                         "classifier returning one row of logits per image",
                         os.str().c_str(), (long long)batch);
    }
    if (out.size(1) < 1 || out.size(1) > INT32_MAX)
        return fx__error(FX_ERR_MODEL, "model output has %lld classes; expected 1..%d", (long long)out.size(1),
                         INT32_MAX);
    return FX_OK;
}

void record_layers(fx__shim_model &m, const std::vector<ProbedCall> &calls)
{
    // Every submodule, in definition order; the shape comes from its last call.
    for (const auto &named : m.module.named_modules()) {
        if (named.name.empty())
            continue;
        auto e = std::make_unique<LayerEntry>();
        e->name = named.name;
        e->type = short_type_name(named.value);
        m.layer_index[e->name] = m.layers.size();
        m.layers.push_back(std::move(e));
    }
    const ProbedCall *best = nullptr;
    for (const auto &c : calls) {
        auto it = m.layer_index.find(c.path);
        if (it == m.layer_index.end() || !c.is_tensor)
            continue;
        fx__shim_layer &info = m.layers[it->second]->info;
        info.rank = (uint32_t)std::min<size_t>(c.shape.size(), FX__SHIM_MAX_RANK);
        for (uint32_t i = 0; i < info.rank; i++)
            info.shape[i] = c.shape[i];
        // A 1x1 map (global pooling) has no spatial information: no target.
        info.is_feature_map = c.shape.size() == 4 && c.shape[2] * c.shape[3] > 1;
        if (info.is_feature_map && (!best || c.position > best->position ||
                        (c.position == best->position && c.depth < best->depth)))
            best = &c;
    }
    for (auto &e : m.layers) {
        e->info.name = e->name.c_str();
        e->info.type = e->type.c_str();
    }
    if (best)
        m.auto_layer = best->path;
}

} // namespace

extern "C" fx_status fx__shim_probe(fx__shim_model *model, uint32_t channels, uint32_t height, uint32_t width)
{
    try {
        auto input = torch::zeros({1, (int64_t)channels, (int64_t)height, (int64_t)width},
                                  torch::TensorOptions().device(model->device));
        at::Tensor output;
        std::vector<ProbedCall> calls;
        fx_status st = probe_calls(*model, input, &output, &calls);
        if (st != FX_OK)
            return st;
        st = check_output(output, 1);
        if (st != FX_OK)
            return st;
        model->channels = channels;
        model->height = height;
        model->width = width;
        model->classes = (uint32_t)output.size(1);
        record_layers(*model, calls);
        return FX_OK;
    } catch (...) {
        return status_from_current_exception(FX_ERR_MODEL, "fx_model_load: probe forward of a zero input failed");
    }
}

extern "C" uint32_t fx__shim_class_count(const fx__shim_model *model)
{
    return model->classes;
}

extern "C" size_t fx__shim_layer_count(const fx__shim_model *model)
{
    return model->layers.size();
}

extern "C" const fx__shim_layer *fx__shim_layer_at(const fx__shim_model *model, size_t index)
{
    return index < model->layers.size() ? &model->layers[index]->info : nullptr;
}

extern "C" const char *fx__shim_auto_layer(const fx__shim_model *model)
{
    return model->auto_layer.empty() ? nullptr : model->auto_layer.c_str();
}

extern "C" fx_status fx__shim_check_layer(const fx__shim_model *model, const char *name)
{
    try {
        auto it = model->layer_index.find(name);
        if (it != model->layer_index.end()) {
            const fx__shim_layer &l = model->layers[it->second]->info;
            if (l.is_feature_map)
                return FX_OK;
            if (l.rank == 0)
                return fx__error(FX_ERR_LAYER,
                                 "layer '%s' (%s) has no recorded output: forward never calls it, calls it only inside "
                                 "control flow (scripted if/loop), or it does not return a tensor; pick a layer with "
                                 "a 4-D output (see fx_model_layer)",
                                 name, l.type);
            if (l.rank == 4)
                return fx__error(FX_ERR_LAYER,
                                 "layer '%s' (%s) outputs shape %s: its map is %lldx%lld, with no spatial "
                                 "information for a heatmap; pick a layer before the pooling, e.g. the default "
                                 "layer '%s'",
                                 name, l.type, shape_string(l).c_str(), (long long)l.shape[2], (long long)l.shape[3],
                                 model->auto_layer.empty() ? "(none)" : model->auto_layer.c_str());
            return fx__error(FX_ERR_LAYER,
                             "layer '%s' (%s) outputs shape %s, not a 4-D [batch, channels, height, width] "
                             "feature map; pick a convolutional layer (see fx_model_layer)",
                             name, l.type, shape_string(l).c_str());
        }
        // Suggest the nearest feature-map layers: small edit distance, long
        // shared prefix.
        std::vector<std::pair<long, std::string>> scored;
        std::string wanted = name;
        for (const auto &e : model->layers) {
            if (!e->info.is_feature_map)
                continue;
            long score = (long)edit_distance(wanted, e->name) * 4 - (long)shared_prefix(wanted, e->name);
            scored.emplace_back(score, e->name);
        }
        std::sort(scored.begin(), scored.end());
        std::string list;
        for (size_t i = 0; i < scored.size() && i < 5; i++)
            list += (i ? ", " : "") + scored[i].second;
        if (list.empty())
            return fx__error(FX_ERR_LAYER, "layer '%s' not found, and the model has no layer with a 4-D output",
                             name);
        return fx__error(FX_ERR_LAYER, "layer '%s' not found; closest: %s (fx_model_layer lists all %zu)", name,
                         list.c_str(), model->layers.size());
    } catch (...) {
        return status_from_current_exception(FX_ERR_INTERNAL, "layer lookup");
    }
}
