// Device allocations and pinned host allocations. Both are plain byte ranges;
// typed views (NumPy, DLPack) are made by the bindings over them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "driver_api.h"

namespace ap::cuda {

class DeviceBuffer {
public:
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;

  CUdeviceptr address() const { return ptr_; }
  size_t size() const { return bytes_; }

  void upload(const void *src, size_t bytes, size_t offset = 0);
  void download(void *dst, size_t bytes, size_t offset = 0) const;
  // Fills with a repeated 1/2/4-byte pattern (NaN poisoning before launches).
  void fill(uint32_t pattern, int pattern_bytes);

private:
  void check_range(size_t bytes, size_t offset, const char *what) const;
  CUdeviceptr ptr_ = 0;
  size_t bytes_ = 0;
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
