// Warpgroup-level tensor-core primitives for sm_90a (wgmma.mma_async), f32
// accumulators, bf16/fp16 operands. Descriptors and the shared-memory layout
// are in wgmma_layout.h (host-checkable); this file only issues instructions.
//
// Accumulator layout of m64nNk16 (PTX ISA, "Register Fragments" of wgmma), as
// float d[N / 8][4]: thread t of the warpgroup, warp w = (t / 32) % 4, lane l,
// holds d[j][e] at row 16 * w + l / 4 + 8 * (e / 2), column 8 * j + 2 * (l % 4)
// + e % 2: per 16-row warp slice, exactly mma.sync m16n8's C layout, once per
// 8 columns. The A operand from registers (m64k16, 4 x 32-bit of two 16-bit
// values) is mma.sync m16n8k16's A layout on the same rows, so a 16-column
// slice of an f32 accumulator packs into an A fragment without data movement.
//
// Ordering: wgmma_fence() before the first wgmma of a batch (and whenever its
// accumulator or A registers were written by other instructions since the last
// wgmma), wgmma_commit() after it, wgmma_wait<0>() before reading the results.
// fence_operands() keeps the compiler from moving reads or writes of those
// registers across the asynchronous window (asm volatile orders the
// instructions but not the compiler's own register traffic).
#pragma once

#include "attention_params.h"
#include "wgmma_layout.h"
#include "wgmma_operands.h"

namespace ap {

__device__ __forceinline__ void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int Pending> __device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(Pending) : "memory");
}

// Warp-specialized kernels hand registers between warpgroups: every thread of
// a warpgroup executes the same one (sm_90a; the kernel needs
// __launch_bounds__(threads, 1), else ptxas ignores them with warning C7508).
template <int Regs> __device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(Regs));
}
template <int Regs> __device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(Regs));
}

// Named barriers (1..15; 0 is __syncthreads): `Count` threads take part, the
// syncing ones wait for all of them, the arriving ones go on. Ids are
// immediates: an id in a register makes ptxas reserve all 16 barriers.
template <int Id, int Count> __device__ __forceinline__ void named_barrier_sync() {
  asm volatile("bar.sync %0, %1;\n" ::"n"(Id), "n"(Count) : "memory");
}
template <int Id, int Count> __device__ __forceinline__ void named_barrier_arrive() {
  asm volatile("bar.arrive %0, %1;\n" ::"n"(Id), "n"(Count) : "memory");
}
// The same with the id in a register (a ring of warpgroups picks its barrier
// by index without a branch; ptxas then reserves all 16 barriers, which a
// kernel of one CTA per SM can spare).
template <int Count> __device__ __forceinline__ void named_barrier_sync(unsigned id) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "n"(Count) : "memory");
}
template <int Count> __device__ __forceinline__ void named_barrier_arrive(unsigned id) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "n"(Count) : "memory");
}

template <int J> __device__ __forceinline__ void fence_operands(float (&d)[J][4]) {
#pragma unroll
  for (int j = 0; j < J; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      asm volatile("" : "+f"(d[j][e])::"memory");
}
__device__ __forceinline__ void fence_operands(unsigned (&a)[4]) {
#pragma unroll
  for (int e = 0; e < 4; ++e)
    asm volatile("" : "+r"(a[e])::"memory");
}

// d (+)= A B, A [64 x 16] and B [16 x N] both from shared memory, K-major
// (no transpose); scale_d 0 overwrites d, 1 accumulates.
#define AP_DEFINE_WGMMA_SS(N)                                                                      \
  template <int Dtype>                                                                             \
  __device__ __forceinline__ void wgmma_ss(float (&d)[N / 8][4], unsigned long long desc_a,        \
                                           unsigned long long desc_b, int scale_d) {               \
    if (Dtype == AP_DTYPE_BFLOAT16)                                                                \
      asm volatile("{\n.reg .pred p;\n" AP_WGMMA_D##N##_SS_PRED                                    \
                   "wgmma.mma_async.sync.aligned.m64n" #N                                          \
                   "k16.f32.bf16.bf16 " AP_WGMMA_D##N##_LIST AP_WGMMA_D##N##_SS_ARGS "}\n"         \
                   : AP_WGMMA_D##N##_OPERANDS                                                      \
                   : "l"(desc_a), "l"(desc_b), "r"(scale_d));                                      \
    else                                                                                           \
      asm volatile("{\n.reg .pred p;\n" AP_WGMMA_D##N##_SS_PRED                                    \
                   "wgmma.mma_async.sync.aligned.m64n" #N                                          \
                   "k16.f32.f16.f16 " AP_WGMMA_D##N##_LIST AP_WGMMA_D##N##_SS_ARGS "}\n"           \
                   : AP_WGMMA_D##N##_OPERANDS                                                      \
                   : "l"(desc_a), "l"(desc_b), "r"(scale_d));                                      \
  }

// d (+)= A B, A [64 x 16] from registers (see the layout above), B [16 x N]
// from shared memory: wgmma_rs takes B MN-major (transpose bit set: B's rows
// are the k index, as for O += P V), wgmma_rs_kmajor K-major (no transpose:
// B's rows are the n index, as for S = Q K^T). ARGS names the operand list
// (AP_WGMMA_D<N>_RS_ARGS or _RSK_ARGS, wgmma_operands.h).
#define AP_DEFINE_WGMMA_RS_AS(N, NAME, ARGS)                                                       \
  template <int Dtype>                                                                             \
  __device__ __forceinline__ void NAME(float (&d)[N / 8][4], const unsigned (&a)[4],               \
                                       unsigned long long desc_b, int scale_d) {                   \
    if (Dtype == AP_DTYPE_BFLOAT16)                                                                \
      asm volatile("{\n.reg .pred p;\n" AP_WGMMA_D##N##_RS_PRED                                    \
                   "wgmma.mma_async.sync.aligned.m64n" #N                                          \
                   "k16.f32.bf16.bf16 " AP_WGMMA_D##N##_LIST ARGS "}\n"                            \
                   : AP_WGMMA_D##N##_OPERANDS                                                      \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(scale_d));       \
    else                                                                                           \
      asm volatile("{\n.reg .pred p;\n" AP_WGMMA_D##N##_RS_PRED                                    \
                   "wgmma.mma_async.sync.aligned.m64n" #N                                          \
                   "k16.f32.f16.f16 " AP_WGMMA_D##N##_LIST ARGS "}\n"                              \
                   : AP_WGMMA_D##N##_OPERANDS                                                      \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(scale_d));       \
  }
#define AP_DEFINE_WGMMA_RS(N) AP_DEFINE_WGMMA_RS_AS(N, wgmma_rs, AP_WGMMA_D##N##_RS_ARGS)
#define AP_DEFINE_WGMMA_RS_KMAJOR(N)                                                               \
  AP_DEFINE_WGMMA_RS_AS(N, wgmma_rs_kmajor, AP_WGMMA_D##N##_RSK_ARGS)

AP_DEFINE_WGMMA_SS(64)
AP_DEFINE_WGMMA_SS(128)
AP_DEFINE_WGMMA_SS(160)
AP_DEFINE_WGMMA_SS(176)
AP_DEFINE_WGMMA_SS(192)
AP_DEFINE_WGMMA_RS(64)
AP_DEFINE_WGMMA_RS(128)
AP_DEFINE_WGMMA_RS_KMAJOR(64)
AP_DEFINE_WGMMA_RS_KMAJOR(128)
AP_DEFINE_WGMMA_RS_KMAJOR(160)
AP_DEFINE_WGMMA_RS_KMAJOR(176)
AP_DEFINE_WGMMA_RS_KMAJOR(192)

// Generic-proxy shared-memory writes (st.shared, cp.async) become visible to
// wgmma's async-proxy reads only after this fence in each writing thread,
// followed by a barrier.
__device__ __forceinline__ void fence_proxy_async_shared() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

} // namespace ap
