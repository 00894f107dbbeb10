// GPU time by events (the analog of Metal's GPU start/end timestamps).
#pragma once

#include <string>
#include <vector>

#include "driver_api.h"
#include "encode.h"

namespace ap::cuda {

class Event {
public:
  Event();
  ~Event();
  Event(const Event &) = delete;
  Event &operator=(const Event &) = delete;
  void record(CUstream stream = nullptr);
  void synchronize();
  // Milliseconds from `start` to this event; both must have completed.
  float elapsed_ms_since(const Event &start) const;

private:
  CUevent event_ = nullptr;
};

// Runs `warmup` dispatches, then `iterations` dispatches each bracketed by its
// own pair of events; returns each one's GPU time in seconds.
std::vector<double> benchmark_kernel_gpu_time(Pipeline &pipeline, const LaunchConfig &config,
                                              const std::string &args, int warmup, int iterations);

} // namespace ap::cuda
