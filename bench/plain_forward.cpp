// The baseline a user would write without fxcam: torch::jit::load, then
// module.forward under NoGradGuard with libtorch's default graph-executor
// settings (optimizations on) and the same thread count as fxcam (all CPUs).
// Independent of fxcam's code.
//   plain_forward MODEL BATCH REPS [noopt]   prints the median ms and peak RSS (KiB)
// noopt: the same with the graph executor's optimizations off, the setting
// fxcam must run with (docs/performance.md), to separate its cost from fxcam's.
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

int main(int argc, char **argv)
{
    const bool noopt = argc == 5 && std::string(argv[4]) == "noopt";
    if (argc != 4 && !noopt) {
        std::fprintf(stderr, "usage: %s MODEL BATCH REPS [noopt]\n", argv[0]);
        return 2;
    }
    const int batch = std::atoi(argv[2]), reps = std::atoi(argv[3]);
    if (batch < 1 || reps < 1)
        return 2;
    at::set_num_threads((int)sysconf(_SC_NPROCESSORS_ONLN));
    if (noopt)
        torch::jit::setGraphExecutorOptimize(false);
    torch::jit::Module module = torch::jit::load(argv[1]);
    module.eval();
    torch::NoGradGuard no_grad;
    torch::Tensor input = torch::rand({batch, 3, 224, 224});
    std::vector<torch::jit::IValue> args{input};
    for (int i = 0; i < 3; i++) // the profiling executor optimizes after a few runs
        module.forward(args);
    std::vector<double> ms;
    for (int r = 0; r < reps; r++) {
        auto t0 = std::chrono::steady_clock::now();
        module.forward(args);
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    std::printf("plain_forward%s batch %d median_ms %.1f peak_rss_kib %ld\n", noopt ? "_noopt" : "", batch, ms[ms.size() / 2], ru.ru_maxrss);
    return 0;
}
