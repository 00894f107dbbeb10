#include "timing.h"

#include <memory>
#include <stdexcept>

#include "device.h"

namespace ap::cuda {

Event::Event() {
  Device::shared();
  check(driver().cuEventCreate(&event_, 0), "cuEventCreate");
}

Event::~Event() {
  try {
    if (event_) driver().cuEventDestroy(event_);
  } catch (...) {
  }
}

void Event::record(CUstream stream) {
  check(driver().cuEventRecord(event_, stream), "cuEventRecord");
}

void Event::synchronize() {
  check(driver().cuEventSynchronize(event_), "cuEventSynchronize");
}

float Event::elapsed_ms_since(const Event &start) const {
  float ms = 0;
  check(driver().cuEventElapsedTime(&ms, start.event_, event_), "cuEventElapsedTime");
  return ms;
}

std::vector<double> benchmark_kernel_gpu_time(Pipeline &pipeline, const LaunchConfig &config,
                                              const std::string &args, int warmup, int iterations) {
  if (warmup < 0 || iterations < 1)
    throw std::invalid_argument("[timing] need warmup >= 0 and iterations >= 1");
  for (int i = 0; i < warmup; ++i)
    launch(pipeline, config, args.data(), args.size());
  std::vector<std::unique_ptr<Event>> starts, ends;
  for (int i = 0; i < iterations; ++i) {
    starts.push_back(std::make_unique<Event>());
    ends.push_back(std::make_unique<Event>());
  }
  for (int i = 0; i < iterations; ++i) {
    starts[i]->record(config.stream);
    launch(pipeline, config, args.data(), args.size());
    ends[i]->record(config.stream);
  }
  ends.back()->synchronize();
  std::vector<double> seconds(iterations);
  for (int i = 0; i < iterations; ++i)
    seconds[i] = ends[i]->elapsed_ms_since(*starts[i]) * 1e-3;
  return seconds;
}

} // namespace ap::cuda
