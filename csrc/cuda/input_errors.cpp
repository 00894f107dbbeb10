#include "input_errors.h"

#include "device.h"
#include "input_error_record.h"

namespace ap::cuda {

InputErrors::InputErrors() {
  Device::shared();
  void *host = nullptr;
  check(driver().cuMemHostAlloc(&host, 2 * sizeof(uint64_t),
                                kMemHostAllocPortable | kMemHostAllocDeviceMap),
        "cuMemHostAlloc(input error record)");
  host_ = static_cast<volatile uint64_t *>(host);
  host_[0] = host_[1] = 0;
  check(driver().cuMemHostGetDevicePointer(&device_, host, 0), "cuMemHostGetDevicePointer");
}

InputErrors &InputErrors::shared() {
  // Never freed: kernels in flight or captured in a graph may still write it.
  static InputErrors *errors = new InputErrors();
  return *errors;
}

bool InputErrors::pending() const {
  return host_[0] != 0;
}

std::string InputErrors::take() {
  const uint64_t w0 = host_[0];
  if (w0 == 0) return "";
  const uint64_t w1 = host_[1];
  host_[0] = 0;
  host_[1] = 0;
  return describe_input_error(w0, w1);
}

std::string describe_input_error(uint64_t w0, uint64_t w1) {
  const int code = int(w0 & 0xff);
  const int seq = int((w0 >> 8) & 0xffffff);
  const int value = int(int32_t(uint32_t(w0 >> 32)));
  const int aux = int(int32_t(uint32_t(w1)));
  const int limit = int(int32_t(uint32_t(w1 >> 32)));
  const std::string tail = " (found by the GPU in a launch that has finished; see "
                           "attention_proto.check_errors)";
  switch (code) {
  case AP_INPUT_ERROR_CONTEXT_LENGTH:
    return "[paged_attention] context_lens[" + std::to_string(seq) +
           "] = " + std::to_string(value) + " is outside 1.." + std::to_string(limit) +
           " (the page table's capacity, max_pages * page_size); that sequence's output was "
           "written as zeros" +
           tail;
  case AP_INPUT_ERROR_PAGE_ID:
    return "[paged_attention] page_table[" + std::to_string(seq) + ", " + std::to_string(aux) +
           "] = " + std::to_string(value) + " is outside the pool of " + std::to_string(limit) +
           " pages; page 0 was read in its place, so that sequence's output is wrong" + tail;
  default:
    return "[paged_attention] unknown input error record " + std::to_string(w0) + "/" +
           std::to_string(w1);
  }
}

} // namespace ap::cuda
