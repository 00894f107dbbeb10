#include "encode.h"

#include <stdexcept>

#include "device.h"
#include "errors.h"

namespace ap::cuda {

std::string describe(const Pipeline &pipeline, const LaunchConfig &c) {
  auto dim = [](const std::array<unsigned, 3> &v) {
    return "(" + std::to_string(v[0]) + "," + std::to_string(v[1]) + "," + std::to_string(v[2]) +
           ")";
  };
  return pipeline.key().name + " grid=" + dim(c.grid) + " block=" + dim(c.block) +
         " smem=" + std::to_string(c.shared_bytes);
}

void prepare_launch(Pipeline &pipeline, const LaunchConfig &c) {
  const auto &props = Device::shared().properties();
  if (int(c.shared_bytes) > props.shared_memory_per_block_optin)
    throw std::invalid_argument(
        "[encode] " + describe(pipeline, c) + ": dynamic shared memory exceeds the device's " +
        std::to_string(props.shared_memory_per_block_optin) + "-byte opt-in limit");
  for (unsigned v : c.grid)
    if (v == 0) throw std::invalid_argument("[encode] " + describe(pipeline, c) + ": empty grid");
  pipeline.ensure_dynamic_shared(int(c.shared_bytes));
}

void enqueue(const Pipeline &pipeline, const LaunchConfig &c, CUstream stream, const void *args,
             size_t args_size) {
  // CU_LAUNCH_PARAM_BUFFER_POINTER (1), CU_LAUNCH_PARAM_BUFFER_SIZE (2), END (0).
  size_t size = args_size;
  void *extra[] = {reinterpret_cast<void *>(1), const_cast<void *>(args),
                   reinterpret_cast<void *>(2), &size, nullptr};
  const CUresult code = driver().cuLaunchKernel(
      pipeline.function(), c.grid[0], c.grid[1], c.grid[2], c.block[0], c.block[1], c.block[2],
      c.shared_bytes, stream, nullptr, args_size ? extra : nullptr);
  if (code != 0) check(code, ("cuLaunchKernel " + describe(pipeline, c)).c_str());
}

void launch(Pipeline &pipeline, const LaunchConfig &c, const void *args, size_t args_size) {
  prepare_launch(pipeline, c);
  enqueue(pipeline, c, c.stream, args, args_size);
}

} // namespace ap::cuda
