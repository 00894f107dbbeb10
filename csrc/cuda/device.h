// The GPU we run on: one process-wide instance holding the primary context.
#pragma once

#include <cstddef>
#include <string>

#include "driver_api.h"

namespace ap::cuda {

struct DeviceProperties {
  std::string name;
  int ordinal = 0;
  int cc_major = 0;
  int cc_minor = 0;
  int sm_count = 0;
  int shared_memory_per_block_optin = 0;
  int shared_memory_per_sm = 0;
  int registers_per_sm = 0;
  int l2_bytes = 0;
  int clock_khz = 0;
  int memory_clock_khz = 0;
  int memory_bus_bits = 0;
  size_t total_memory = 0;
  int driver_version = 0;
  // "sm_90a" on Hopper (wgmma needs the arch-specific target), else "sm_XY".
  std::string arch() const;
};

class Device {
public:
  // Thread-safe; initializes the driver and retains device 0's primary
  // context on first call. Throws BackendUnavailable without a GPU.
  static Device &shared();

  const DeviceProperties &properties() const { return props_; }
  // Binds the primary context to the calling thread (cheap when already bound).
  void make_current() const;
  void synchronize() const;
  // (free, total) bytes of device memory.
  std::pair<size_t, size_t> memory_info() const;

private:
  Device();
  CUdevice device_ = 0;
  CUcontext context_ = nullptr;
  DeviceProperties props_;
};

// Whether a device can be used, and if not why; never throws.
std::string device_status();

} // namespace ap::cuda
