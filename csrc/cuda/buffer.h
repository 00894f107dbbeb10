// Device allocations and pinned host allocations. Both are plain byte ranges;
// typed views (NumPy, DLPack) are made by the bindings over them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "driver_api.h"

namespace ap::cuda {

class DeviceBuffer {
public:
  // A synchronous allocation (cuMemAlloc; its free waits for the device).
  explicit DeviceBuffer(size_t bytes);
  // A stream-ordered allocation from the device's default memory pool
  // (cuMemAllocAsync): usable by work queued on `stream` after this call, and
  // returned to the pool without a wait when destroyed, ordered after the last
  // work marked by used_on(). The free goes to the legacy default stream behind
  // an event, not to `stream`: a caller's stream may be destroyed before the
  // buffer (a freed array outliving its CuPy stream), and a free queued on a
  // destroyed stream is undefined behaviour.
  DeviceBuffer(size_t bytes, CUstream stream);
  // Orders this buffer's eventual free after the work queued on `stream` so far.
  void used_on(CUstream stream);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;

  CUdeviceptr address() const { return ptr_; }
  size_t size() const { return bytes_; }

  void upload(const void *src, size_t bytes, size_t offset = 0);
  void download(void *dst, size_t bytes, size_t offset = 0) const;
  // Fills with a repeated 1/2/4-byte pattern (NaN poisoning before launches),
  // ordered on `stream`.
  void fill(uint32_t pattern, int pattern_bytes, CUstream stream = nullptr);
  bool stream_ordered() const { return stream_ordered_; }

private:
  void check_range(size_t bytes, size_t offset, const char *what) const;
  CUdeviceptr ptr_ = 0;
  size_t bytes_ = 0;
  CUevent last_use_ = nullptr;
  bool stream_ordered_ = false;
};

// Page-locked host memory: copies to and from it run at full bus speed, and
// NumPy sees it without a copy.
class PinnedBuffer {
public:
  explicit PinnedBuffer(size_t bytes);
  ~PinnedBuffer();
  PinnedBuffer(const PinnedBuffer &) = delete;
  PinnedBuffer &operator=(const PinnedBuffer &) = delete;

  void *data() const { return ptr_; }
  size_t size() const { return bytes_; }

private:
  void *ptr_ = nullptr;
  size_t bytes_ = 0;
};

// A blocking copy from any device address (a framework's array, say).
void copy_device_to_host(CUdeviceptr src, void *dst, size_t bytes);

} // namespace ap::cuda
