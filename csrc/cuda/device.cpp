#include "device.h"

#include "errors.h"

namespace ap::cuda {

std::string DeviceProperties::arch() const {
  std::string a = "sm_" + std::to_string(cc_major) + std::to_string(cc_minor);
  if (cc_major >= 9) a += "a";
  return a;
}

Device::Device() {
  const auto &d = driver();
  check(d.cuInit(0), "cuInit");
  int count = 0;
  check(d.cuDeviceGetCount(&count), "cuDeviceGetCount");
  if (count == 0) throw BackendUnavailable("[device] the CUDA driver reports no GPU");
  check(d.cuDeviceGet(&device_, 0), "cuDeviceGet");
  check(d.cuDevicePrimaryCtxRetain(&context_, device_), "cuDevicePrimaryCtxRetain");
  make_current();

  char name[256] = {};
  check(d.cuDeviceGetName(name, sizeof(name), device_), "cuDeviceGetName");
  props_.name = name;
  auto attr = [&](int which) {
    int v = 0;
    check(d.cuDeviceGetAttribute(&v, which, device_), "cuDeviceGetAttribute");
    return v;
  };
  props_.cc_major = attr(kComputeCapabilityMajor);
  props_.cc_minor = attr(kComputeCapabilityMinor);
  props_.sm_count = attr(kMultiprocessorCount);
  props_.shared_memory_per_block_optin = attr(kMaxSharedMemoryPerBlockOptin);
  props_.shared_memory_per_sm = attr(kMaxSharedMemoryPerMultiprocessor);
  props_.registers_per_sm = attr(kMaxRegistersPerMultiprocessor);
  props_.l2_bytes = attr(kL2CacheSize);
  props_.clock_khz = attr(kClockRateKHz);
  props_.memory_clock_khz = attr(kMemoryClockRateKHz);
  props_.memory_bus_bits = attr(kGlobalMemoryBusWidth);
  check(d.cuDeviceTotalMem(&props_.total_memory, device_), "cuDeviceTotalMem");
  check(d.cuDriverGetVersion(&props_.driver_version), "cuDriverGetVersion");
}

Device &Device::shared() {
  // A function-local static is initialized once even with concurrent callers;
  // if the constructor throws, the next call tries again.
  static Device device;
  device.make_current();
  return device;
}

void Device::make_current() const {
  // The primary context must be current on every thread that calls the
  // driver (Python threads included); setting it is a thread-local store.
  check(driver().cuCtxSetCurrent(context_), "cuCtxSetCurrent");
}

void Device::synchronize() const {
  check(driver().cuCtxSynchronize(), "cuCtxSynchronize");
}

std::pair<size_t, size_t> Device::memory_info() const {
  size_t free_bytes = 0, total = 0;
  check(driver().cuMemGetInfo(&free_bytes, &total), "cuMemGetInfo");
  return {free_bytes, total};
}

std::string device_status() {
  try {
    const auto &p = Device::shared().properties();
    return "available: " + p.name + " (" + p.arch() + ")";
  } catch (const std::exception &e) {
    return std::string("unavailable: ") + e.what();
  }
}

} // namespace ap::cuda
