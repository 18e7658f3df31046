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

// "__torch__.torch.nn.modules.conv.___torch_mangle_3.Conv2d" -> "Conv2d".
std::string short_type_name(const torch::jit::Module &m)
{
    auto name = m.type()->name();
    if (!name)
        return "Module";
    std::string q = name->name();
    return q.empty() ? std::string("Module") : q;
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

// Every submodule in definition order, with the output shape, call position
// and depth of its last call that returned a tensor. Which layer is the
// automatic target, and which names are valid, is decided in lib/layers.c.
void record_layers(fx__shim_model &m, const std::vector<ProbedCall> &calls)
{
    std::map<std::string, size_t> index;
    m.layers.clear();
    for (const auto &named : m.module.named_modules()) {
        if (named.name.empty())
            continue;
        auto e = std::make_unique<LayerEntry>();
        e->name = named.name;
        e->type = short_type_name(named.value);
        index[e->name] = m.layers.size();
        m.layers.push_back(std::move(e));
    }
    m.layer_table.assign(m.layers.size(), fx__shim_layer{});
    for (const auto &c : calls) {
        auto it = index.find(c.path);
        if (it == index.end() || !c.is_tensor)
            continue;
        fx__shim_layer &info = m.layer_table[it->second];
        info.rank = (uint32_t)std::min<size_t>(c.shape.size(), FX__SHIM_MAX_RANK);
        for (uint32_t i = 0; i < info.rank; i++)
            info.shape[i] = c.shape[i];
        info.call_position = c.position;
        info.depth = (uint32_t)std::min<size_t>(c.depth, UINT32_MAX);
    }
    for (size_t i = 0; i < m.layers.size(); i++) {
        m.layer_table[i].name = m.layers[i]->name.c_str();
        m.layer_table[i].type = m.layers[i]->type.c_str();
    }
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
    return index < model->layer_table.size() ? &model->layer_table[index] : nullptr;
}

extern "C" const fx__shim_layer *fx__shim_layer_table(const fx__shim_model *model)
{
    return model->layer_table.empty() ? nullptr : model->layer_table.data();
}
