// Warp-level tensor-core primitives for sm_80+ (used on Hopper too): 16-byte
// async copies, ldmatrix and mma.sync m16n8k16 with float accumulation.
// Fragment layouts follow the PTX ISA ("Matrix Fragments for mma.m16n8k16"):
// with g = lane / 4 and t = lane % 4, a thread holds C/D elements at
// (g, 2t..2t+1) and (g + 8, 2t..2t+1).
#pragma once

#include "attention_params.h"

namespace ap {

// Kernels address shared memory with 32-bit byte addresses: take the base once
// and add integer offsets. Converting a generic pointer at every use made
// NVRTC (unlike nvcc) carry 64-bit address arithmetic through the loop, costing
// registers in kernels that sit at the 255-register limit.
__device__ __forceinline__ unsigned smem_address(const void *p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

// One 32-bit store to shared memory at a 32-bit shared address.
__device__ __forceinline__ void st_shared_u32(unsigned address, unsigned value) {
  asm volatile("st.shared.u32 [%0], %1;\n" ::"r"(address), "r"(value) : "memory");
}

// Byte offset of 16-byte chunk `chunk` of row `row` in a tile of RowBytes-byte
// rows (at least 128). XOR-ing the chunk with the row's low 3 bits puts the 8
// rows one ldmatrix reads in 8 different bank groups (a plain row-major tile
// would hit one bank 8 times).
template <unsigned RowBytes> __device__ __forceinline__ unsigned swizzled(int row, int chunk) {
  static_assert(RowBytes % 128 == 0, "the swizzle needs at least 8 chunks per row");
  return unsigned(row) * RowBytes + (unsigned(chunk ^ (row & 7)) << 4);
}

// Copies 16 bytes, or writes 16 zero bytes when `src_bytes` is 0 (rows past
// the end of a sequence read nothing and leave no garbage in shared memory).
__device__ __forceinline__ void cp_async_16(unsigned dst, const void *src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(src_bytes));
}

__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n");
}

template <int Pending> __device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending));
}

__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], unsigned address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], unsigned address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

// d += a * b for one 16x8x16 tile; Dtype picks bf16 or fp16 operands.
template <int Dtype>
__device__ __forceinline__ void mma_16816(float (&d)[4], const unsigned (&a)[4], unsigned b0,
                                          unsigned b1) {
  if (Dtype == AP_DTYPE_BFLOAT16) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

} // namespace ap
