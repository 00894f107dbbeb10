// 16-bit float storage and conversions through PTX, so kernels need none of the
// CUDA toolkit's headers (faster NVRTC compiles, nothing to find on disk).
#pragma once

#include "attention_params.h"

namespace ap {

typedef unsigned short half_bits; // fp16 or bf16 payload

#define AP_NEG_INF __int_as_float(0xff800000)

__device__ __forceinline__ float bf16_to_float(half_bits h) {
  return __uint_as_float(((unsigned)h) << 16);
}

__device__ __forceinline__ float f16_to_float(half_bits h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
}

__device__ __forceinline__ half_bits float_to_bf16(float f) {
  half_bits h;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}

__device__ __forceinline__ half_bits float_to_f16(float f) {
  half_bits h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}

// Two floats into one 32-bit register of two 16-bit values (lo in bits 0..15).
template <int Dtype> __device__ __forceinline__ unsigned pack2(float lo, float hi) {
  unsigned r;
  if (Dtype == AP_DTYPE_BFLOAT16)
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  else
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

// f rounded to fp16 or bf16 (round to nearest even) and back: the value the
// tensor cores see after pack2.
template <int Dtype> __device__ __forceinline__ float round_to(float f) {
  return Dtype == AP_DTYPE_BFLOAT16 ? bf16_to_float(float_to_bf16(f))
                                    : f16_to_float(float_to_f16(f));
}

// Element type and conversions chosen by the DTYPE constant.
template <int Dtype> struct Storage;
template <> struct Storage<AP_DTYPE_FLOAT16> {
  typedef half_bits type;
  static __device__ __forceinline__ float load(type v) { return f16_to_float(v); }
  static __device__ __forceinline__ type store(float f) { return float_to_f16(f); }
};
template <> struct Storage<AP_DTYPE_BFLOAT16> {
  typedef half_bits type;
  static __device__ __forceinline__ float load(type v) { return bf16_to_float(v); }
  static __device__ __forceinline__ type store(float f) { return float_to_bf16(f); }
};
template <> struct Storage<AP_DTYPE_FLOAT32> {
  typedef float type;
  static __device__ __forceinline__ float load(type v) { return v; }
  static __device__ __forceinline__ type store(float f) { return f; }
};

} // namespace ap
