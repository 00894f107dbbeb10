#include "buffer.h"

#include <stdexcept>
#include <string>

#include "device.h"

namespace ap::cuda {

DeviceBuffer::DeviceBuffer(size_t bytes) : bytes_(bytes) {
  Device::shared();
  // A zero-byte request still gets a distinct valid pointer, so views of empty
  // tensors need no special case.
  check(driver().cuMemAlloc(&ptr_, bytes ? bytes : 1),
        ("cuMemAlloc(" + std::to_string(bytes) + " bytes)").c_str());
}

namespace {
// The default pool would hand memory back to the system at every
// synchronization; keep it, as a caching allocator does.
void keep_pool_memory() {
  static const bool done = [] {
    const auto &d = driver();
    CUdevice dev = 0;
    CUmemoryPool pool = nullptr;
    check(d.cuDeviceGet(&dev, Device::shared().properties().ordinal), "cuDeviceGet");
    check(d.cuDeviceGetDefaultMemPool(&pool, dev), "cuDeviceGetDefaultMemPool");
    unsigned long long keep = ~0ull;
    check(d.cuMemPoolSetAttribute(pool, kMemPoolAttrReleaseThreshold, &keep),
          "cuMemPoolSetAttribute(release threshold)");
    return true;
  }();
  (void)done;
}
} // namespace

DeviceBuffer::DeviceBuffer(size_t bytes, CUstream stream) : bytes_(bytes), stream_ordered_(true) {
  Device::shared();
  keep_pool_memory();
  const auto &d = driver();
  check(d.cuEventCreate(&last_use_, kEventDisableTiming), "cuEventCreate");
  const CUresult code = d.cuMemAllocAsync(&ptr_, bytes ? bytes : 1, stream);
  if (code != 0) {
    d.cuEventDestroy(last_use_);
    check(code, ("cuMemAllocAsync(" + std::to_string(bytes) + " bytes)").c_str());
  }
  used_on(stream);
}

void DeviceBuffer::used_on(CUstream stream) {
  if (last_use_) check(driver().cuEventRecord(last_use_, stream), "cuEventRecord");
}

DeviceBuffer::~DeviceBuffer() {
  try {
    if (!ptr_) return;
    const auto &d = driver();
    if (stream_ordered_) {
      d.cuStreamWaitEvent(nullptr, last_use_, 0);
      d.cuMemFreeAsync(ptr_, nullptr);
      d.cuEventDestroy(last_use_);
    } else {
      d.cuMemFree(ptr_);
    }
  } catch (...) {
  }
}

void DeviceBuffer::check_range(size_t bytes, size_t offset, const char *what) const {
  if (offset > bytes_ || bytes > bytes_ - offset)
    throw std::out_of_range(std::string("[buffer] ") + what + " of " + std::to_string(bytes) +
                            " bytes at offset " + std::to_string(offset) +
                            " exceeds the buffer's " + std::to_string(bytes_) + " bytes");
}

void DeviceBuffer::upload(const void *src, size_t bytes, size_t offset) {
  check_range(bytes, offset, "upload");
  if (bytes) check(driver().cuMemcpyHtoD(ptr_ + offset, src, bytes), "cuMemcpyHtoD");
}

void DeviceBuffer::download(void *dst, size_t bytes, size_t offset) const {
  check_range(bytes, offset, "download");
  if (bytes) check(driver().cuMemcpyDtoH(dst, ptr_ + offset, bytes), "cuMemcpyDtoH");
}

void DeviceBuffer::fill(uint32_t pattern, int pattern_bytes, CUstream stream) {
  const auto &d = driver();
  switch (pattern_bytes) {
  case 1:
    check(d.cuMemsetD8Async(ptr_, uint8_t(pattern), bytes_, stream), "cuMemsetD8Async");
    break;
  case 2:
    check(d.cuMemsetD16Async(ptr_, uint16_t(pattern), bytes_ / 2, stream), "cuMemsetD16Async");
    break;
  case 4:
    check(d.cuMemsetD32Async(ptr_, pattern, bytes_ / 4, stream), "cuMemsetD32Async");
    break;
  default:
    throw std::invalid_argument("[buffer] fill pattern must be 1, 2 or 4 bytes, got " +
                                std::to_string(pattern_bytes));
  }
}

void copy_device_to_host(CUdeviceptr src, void *dst, size_t bytes) {
  Device::shared();
  if (bytes) check(driver().cuMemcpyDtoH(dst, src, bytes), "cuMemcpyDtoH");
}

PinnedBuffer::PinnedBuffer(size_t bytes) : bytes_(bytes) {
  Device::shared();
  check(driver().cuMemHostAlloc(&ptr_, bytes ? bytes : 1, 0),
        ("cuMemHostAlloc(" + std::to_string(bytes) + " bytes)").c_str());
}

PinnedBuffer::~PinnedBuffer() {
  try {
    if (ptr_) driver().cuMemFreeHost(ptr_);
  } catch (...) {
  }
}

} // namespace ap::cuda
