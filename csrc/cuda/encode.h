// Dispatch: launch a pipeline over a grid with packed arguments.
#pragma once

#include <array>
#include <string>

#include "driver_api.h"
#include "pipeline_cache.h"

namespace ap::cuda {

struct LaunchConfig {
  std::array<unsigned, 3> grid{1, 1, 1};
  std::array<unsigned, 3> block{1, 1, 1};
  unsigned shared_bytes = 0; // dynamic shared memory
  CUstream stream = nullptr; // the legacy default stream, which torch also uses by default
};

std::string describe(const Pipeline &pipeline, const LaunchConfig &config);

// Checks a launch against the device (dynamic shared memory, empty grid),
// throwing with the kernel, grid, block and smem named, and raises the
// kernel's dynamic shared-memory limit where needed. Once per configuration.
void prepare_launch(Pipeline &pipeline, const LaunchConfig &config);

// Queues a prepared launch on `stream` (config.stream is not used).
void enqueue(const Pipeline &pipeline, const LaunchConfig &config, CUstream stream,
             const void *args, size_t args_size);

// prepare_launch, then enqueue on config.stream.
// `args` holds the kernel's parameters packed with C alignment (Python's
// struct module in native mode); the driver copies them at launch, so the
// bytes need not outlive the call. Throws naming kernel, grid, block, smem.
void launch(Pipeline &pipeline, const LaunchConfig &config, const void *args, size_t args_size);

} // namespace ap::cuda
