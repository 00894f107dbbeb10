// TMA descriptors (CUtensorMap) for the Hopper kernel's loads, made by the
// driver's cuTensorMapEncodeTiled: 128 opaque bytes the kernel takes as a
// __grid_constant__ parameter. The global address is inside, so a descriptor
// belongs to one buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ap::cuda {

// A tiled view of a 16-bit tensor (dtype: AP_DTYPE_FLOAT16 or _BFLOAT16):
// dims innermost first (elements), strides_bytes for dims[1..] (multiples of
// 16), box the tile each load moves, swizzle_bytes 0 or 128 (the shared-memory
// pattern). Out-of-bounds elements load as zeros. Throws std::invalid_argument
// naming what the driver would refuse, CudaError when it refuses anyway.
std::string encode_tensor_map(int dtype, unsigned long long address,
                              const std::vector<unsigned long long> &dims,
                              const std::vector<unsigned long long> &strides_bytes,
                              const std::vector<unsigned> &box, int swizzle_bytes);

// A descriptor a launch plan encodes at every run from one of its pointer
// arguments: the view (dims, strides, box, swizzle) is fixed with the plan, the
// address is the call's, so one plan serves every buffer of that layout.
struct TensorMapSlot {
  size_t offset;        // where its 128 bytes sit in the argument block
  size_t address_index; // which of run()'s addresses it describes
  int dtype;
  std::vector<unsigned long long> dims;
  std::vector<unsigned long long> strides_bytes;
  std::vector<unsigned> box;
  int swizzle_bytes;
};

// encode_tensor_map of `slot` at `address`, into `out` (128 bytes, any alignment).
void encode_tensor_map_into(const TensorMapSlot &slot, unsigned long long address, void *out);

} // namespace ap::cuda
