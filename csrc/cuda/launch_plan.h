// A prepared dispatch: kernels launched in order on the caller's stream with
// one packed argument block, whose pointer slots are filled in per call. An op
// builds one per problem shape (validation, kernel lookup and argument packing
// happen once) and runs it with each call's tensor addresses, so the call path
// costs a few microseconds and never synchronizes with the device.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "driver_api.h"
#include "encode.h"
#include "pipeline_cache.h"
#include "tensor_map.h"

namespace ap::cuda {

class LaunchPlan {
public:
  struct Step {
    std::shared_ptr<Pipeline> pipeline;
    LaunchConfig config; // its stream is ignored: run() takes one
  };

  // Checks every step's grid and shared memory (throws naming the kernel) and
  // raises the kernels' dynamic shared-memory limits, once. `tensor_maps`:
  // TMA descriptors encoded at each run from the call's addresses.
  LaunchPlan(std::vector<Step> steps, std::string args, std::vector<size_t> pointer_offsets,
             std::vector<TensorMapSlot> tensor_maps = {});

  // Raises DeviceInputError if a finished kernel reported a bad device-resident
  // input, then writes `addresses` into the pointer slots, encodes the tensor
  // maps of those addresses into theirs, and launches.
  void run(CUstream stream, const std::vector<uint64_t> &addresses) const;

  const std::vector<Step> &steps() const { return steps_; }
  const std::string &args() const { return args_; }

private:
  std::vector<Step> steps_;
  std::string args_;
  std::vector<size_t> offsets_;
  std::vector<TensorMapSlot> maps_;
};

} // namespace ap::cuda
