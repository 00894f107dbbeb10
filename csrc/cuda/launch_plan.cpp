#include "launch_plan.h"

#include <cstring>
#include <stdexcept>

#include "device.h"
#include "errors.h"
#include "input_errors.h"

namespace ap::cuda {

LaunchPlan::LaunchPlan(std::vector<Step> steps, std::string args,
                       std::vector<size_t> pointer_offsets, std::vector<TensorMapSlot> tensor_maps)
    : steps_(std::move(steps)), args_(std::move(args)), offsets_(std::move(pointer_offsets)),
      maps_(std::move(tensor_maps)) {
  if (steps_.empty()) throw std::invalid_argument("[encode] a launch plan needs a kernel");
  for (size_t off : offsets_)
    if (off % 8 || off + 8 > args_.size())
      throw std::invalid_argument("[encode] pointer slot at byte " + std::to_string(off) +
                                  " is misaligned or outside the " + std::to_string(args_.size()) +
                                  "-byte argument block");
  for (const auto &m : maps_)
    if (m.offset + 128 > args_.size() || m.address_index >= offsets_.size())
      throw std::invalid_argument(
          "[encode] tensor map at byte " + std::to_string(m.offset) + " lies outside the " +
          std::to_string(args_.size()) + "-byte argument block, or names pointer " +
          std::to_string(m.address_index) + " of " + std::to_string(offsets_.size()));
  for (auto &s : steps_) {
    if (!s.pipeline) throw std::invalid_argument("[encode] a launch plan step has no kernel");
    prepare_launch(*s.pipeline, s.config);
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
  // The driver copies the block at launch, so a stack copy per call suffices
  // (1 KiB: the Hopper kernel's block with its three descriptors is 624 bytes).
  char local[1024];
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
  for (const auto &m : maps_)
    encode_tensor_map_into(m, addresses[m.address_index], block + m.offset);
  // Binding the primary context is a driver call; once per thread is enough
  // (every library in the process shares the primary context).
  static thread_local bool context_bound = false;
  if (!context_bound) {
    Device::shared();
    context_bound = true;
  }
  for (const auto &s : steps_)
    enqueue(*s.pipeline, s.config, stream, block, args_.size());
}

} // namespace ap::cuda
