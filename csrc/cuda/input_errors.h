// Errors in device-resident inputs that only a kernel can see (a page id
// outside the pool, a context length outside the table), reported without a
// device-to-host copy on the call path.
//
// Kernels write a two-word record into page-locked host memory mapped into
// the device's address space; the host reads it with a plain load. A call
// checks the record before it launches, so an error surfaces at the first call
// after the faulty kernel has finished, or at check_errors(), which waits for
// the queued work first. The record layout is defined once, in
// shaders/cuda/input_error_record.h, which kernels and this file share.
#pragma once

#include <cstdint>
#include <string>

#include "driver_api.h"

namespace ap::cuda {

class InputErrors {
public:
  // Allocated once per process with the device (never during a graph capture).
  static InputErrors &shared();

  CUdeviceptr device_address() const { return device_; }
  bool pending() const;
  // Clears the record and returns its message, or "" when nothing is pending.
  std::string take();

private:
  InputErrors();
  volatile uint64_t *host_ = nullptr;
  CUdeviceptr device_ = 0;
};

// The message for a record (exposed for tests of the formatting).
std::string describe_input_error(uint64_t word0, uint64_t word1);

} // namespace ap::cuda
