#include "launch_plan.h"

#include <cstring>
#include <stdexcept>

#include "device.h"
#include "errors.h"
#include "input_errors.h"

namespace ap::cuda {

LaunchPlan::LaunchPlan(std::vector<Step> steps, std::string args,
                       std::vector<size_t> pointer_offsets)
    : steps_(std::move(steps)), args_(std::move(args)), offsets_(std::move(pointer_offsets)) {
  if (steps_.empty()) throw std::invalid_argument("[encode] a launch plan needs a kernel");
  for (size_t off : offsets_)
    if (off % 8 || off + 8 > args_.size())
      throw std::invalid_argument("[encode] pointer slot at byte " + std::to_string(off) +
                                  " is misaligned or outside the " + std::to_string(args_.size()) +
                                  "-byte argument block");
  const auto &props = Device::shared().properties();
  for (auto &s : steps_) {
    if (!s.pipeline) throw std::invalid_argument("[encode] a launch plan step has no kernel");
    if (int(s.config.shared_bytes) > props.shared_memory_per_block_optin)
      throw std::invalid_argument("[encode] " + describe(*s.pipeline, s.config) +
                                  ": dynamic shared memory exceeds the device's " +
                                  std::to_string(props.shared_memory_per_block_optin) +
                                  "-byte opt-in limit");
    for (unsigned v : s.config.grid)
      if (v == 0)
        throw std::invalid_argument("[encode] " + describe(*s.pipeline, s.config) + ": empty grid");
    s.pipeline->ensure_dynamic_shared(int(s.config.shared_bytes));
  }
  // Allocated here, outside any graph capture, before a kernel can need it.
  InputErrors::shared();
}

void LaunchPlan::run(CUstream stream, const std::vector<uint64_t> &addresses) const {
  auto &errors = InputErrors::shared();
  if (errors.pending()) throw DeviceInputError(errors.take());
  if (addresses.size() != offsets_.size())
    throw std::invalid_argument("[encode] launch plan takes " + std::to_string(offsets_.size()) +
                                " addresses, got " + std::to_string(addresses.size()));
  // The driver copies the block at launch, so a stack copy per call suffices.
  char local[512];
  std::string heap;
  char *block = local;
  if (args_.size() > sizeof(local)) {
    heap = args_;
    block = heap.data();
  } else {
    std::memcpy(local, args_.data(), args_.size());
  }
  for (size_t i = 0; i < offsets_.size(); ++i)
    std::memcpy(block + offsets_[i], &addresses[i], 8);
  // Binding the primary context is a driver call; once per thread is enough
  // (every library in the process shares the primary context).
  static thread_local bool context_bound = false;
  if (!context_bound) {
    Device::shared();
    context_bound = true;
  }
  size_t size = args_.size();
  // CU_LAUNCH_PARAM_BUFFER_POINTER (1), CU_LAUNCH_PARAM_BUFFER_SIZE (2), END (0).
  void *extra[] = {reinterpret_cast<void *>(1), block, reinterpret_cast<void *>(2), &size, nullptr};
  for (const auto &s : steps_) {
    const auto &c = s.config;
    const CUresult code = driver().cuLaunchKernel(
        s.pipeline->function(), c.grid[0], c.grid[1], c.grid[2], c.block[0], c.block[1], c.block[2],
        c.shared_bytes, stream, nullptr, size ? extra : nullptr);
    if (code != 0) check(code, ("cuLaunchKernel " + describe(*s.pipeline, c)).c_str());
  }
}

} // namespace ap::cuda
