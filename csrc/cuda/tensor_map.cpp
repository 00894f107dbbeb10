#include "tensor_map.h"

#include <cstring>
#include <stdexcept>

#include "attention_params.h"
#include "device.h"
#include "driver_api.h"

namespace ap::cuda {
namespace {

// Values of cuda.h's CUtensorMap* enums (ABI constants of CUDA 12/13).
constexpr int kDataTypeFloat16 = 6, kDataTypeBfloat16 = 9;
constexpr int kSwizzleNone = 0, kSwizzle128B = 3;
constexpr int kInterleaveNone = 0, kL2Promotion256B = 3, kOobFillZeros = 0;

struct alignas(64) TensorMapBytes {
  unsigned char bytes[128];
};

[[noreturn]] void refuse(const std::string &what) {
  throw std::invalid_argument("[tma] " + what);
}

} // namespace

namespace {

TensorMapBytes encode(int dtype, unsigned long long address,
                      const std::vector<unsigned long long> &dims,
                      const std::vector<unsigned long long> &strides_bytes,
                      const std::vector<unsigned> &box, int swizzle_bytes) {
  const size_t rank = dims.size();
  if (rank < 1 || rank > 5 || box.size() != rank || strides_bytes.size() + 1 != rank)
    refuse("rank 1..5 with one box size per dim and one stride per dim after the first");
  if (dtype != AP_DTYPE_FLOAT16 && dtype != AP_DTYPE_BFLOAT16) refuse("dtype must be fp16 or bf16");
  if (address % 16) refuse("the global address must be 16-byte aligned");
  for (unsigned long long d : dims)
    if (d == 0 || d > (1ull << 32)) refuse("dims must be in 1..2^32");
  for (unsigned long long s : strides_bytes)
    if (s % 16 || s >= (1ull << 40)) refuse("strides must be multiples of 16 below 2^40");
  for (unsigned b : box)
    if (b == 0 || b > 256) refuse("box sizes must be in 1..256");
  if ((box[0] * 2) % 16) refuse("the box's inner extent must be a multiple of 16 bytes");
  if (swizzle_bytes != 0 && swizzle_bytes != 128) refuse("swizzle must be 0 or 128 bytes");
  if (swizzle_bytes == 128 && box[0] * 2 > 128)
    refuse("with the 128-byte swizzle the box's inner extent must be at most 128 bytes");

  const auto &api = driver();
  if (!api.cuTensorMapEncodeTiled)
    throw std::runtime_error("[tma] this driver has no cuTensorMapEncodeTiled (needs CUDA 12+)");
  Device::shared(); // the driver initialized
  const std::vector<unsigned> element_strides(rank, 1);
  TensorMapBytes map{};
  const CUresult code = api.cuTensorMapEncodeTiled(
      &map, dtype == AP_DTYPE_FLOAT16 ? kDataTypeFloat16 : kDataTypeBfloat16, unsigned(rank),
      reinterpret_cast<void *>(address), dims.data(), strides_bytes.data(), box.data(),
      element_strides.data(), kInterleaveNone, swizzle_bytes ? kSwizzle128B : kSwizzleNone,
      kL2Promotion256B, kOobFillZeros);
  check(code, "cuTensorMapEncodeTiled");
  return map;
}

} // namespace

std::string encode_tensor_map(int dtype, unsigned long long address,
                              const std::vector<unsigned long long> &dims,
                              const std::vector<unsigned long long> &strides_bytes,
                              const std::vector<unsigned> &box, int swizzle_bytes) {
  const TensorMapBytes map = encode(dtype, address, dims, strides_bytes, box, swizzle_bytes);
  return std::string(reinterpret_cast<const char *>(map.bytes), sizeof(map.bytes));
}

void encode_tensor_map_into(const TensorMapSlot &slot, unsigned long long address, void *out) {
  // Encoded into an aligned local (the driver writes a 64-byte-aligned
  // CUtensorMap), then copied to where the argument block wants it.
  const TensorMapBytes map =
      encode(slot.dtype, address, slot.dims, slot.strides_bytes, slot.box, slot.swizzle_bytes);
  std::memcpy(out, map.bytes, sizeof(map.bytes));
}

} // namespace ap::cuda
