// Tensor Memory Accelerator loads (and the output's store) for sm_90a: a TMA
// descriptor (CUtensorMap, made on the host by cuTensorMapEncodeTiled, passed
// as a __grid_constant__ parameter), shared-memory mbarriers that count the
// bytes each load delivers, and the bulk tensor copy. TMA writes shared memory
// through the async proxy, which wgmma reads through as well: a completed
// mbarrier phase is all a reader needs (no proxy fence).
#pragma once

namespace ap {

// cuda.h's CUtensorMap: 128 opaque bytes, 64-byte aligned.
struct alignas(64) TensorMap {
  unsigned long long opaque[16];
};

__device__ __forceinline__ void mbarrier_init(unsigned bar, unsigned arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(arrivals) : "memory");
}

// Makes initialized barriers visible to the async proxy (TMA's completions).
__device__ __forceinline__ void fence_mbarrier_init() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

// The producer's arrival, announcing `bytes` that loads will deliver to the
// barrier's current phase; the phase completes when they have all landed.
__device__ __forceinline__ void mbarrier_arrive_expect_tx(unsigned bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
}

// The bounded wait's way out. Not inlined: a trap inlined into a
// warp-specialized kernel stops ptxas from giving the consumer warpgroups the
// registers setmaxnreg.inc asks for (CUDA 13.0, session 7: Hopper step (d) at
// D=128 with 128 x 128 tiles stayed at the 168-register entry cap and spilled;
// with the trap behind a call it compiles within 184 registers, no spills).
static __device__ __noinline__ void mbarrier_wait_timed_out() {
  __trap();
}

// Waits for the phase of parity `parity` to complete. A load that never
// completes (a wrong descriptor or byte count) traps after ~2^24 tries (each
// may pause a while: seconds to a minute in all) rather than hanging the GPU;
// the trap is a sticky fault: the context is lost and the process must restart
// (DeviceFault), which beats a hang the device call can only time out.
__device__ __forceinline__ void mbarrier_wait(unsigned bar, unsigned parity) {
  for (unsigned tries = 0;; ++tries) {
    unsigned done;
    asm volatile("{\n.reg .pred p;\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                 "selp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(done)
                 : "r"(bar), "r"(parity)
                 : "memory");
    if (done) return;
    if (tries == (1u << 24)) mbarrier_wait_timed_out();
  }
}

// A consumer's arrival on an "empty" barrier: this thread is done reading the
// stage (its wgmmas on it have completed), so the producer may refill it.
__device__ __forceinline__ void mbarrier_arrive(unsigned bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}

// `count` arrivals at once on `bar` (one thread speaking for `count`).
__device__ __forceinline__ void mbarrier_arrive_count(unsigned bar, unsigned count) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}

// Tells `bar` to expect `bytes` more in its current phase without arriving
// (the arrival comes with a later arrive.expect_tx).
__device__ __forceinline__ void mbarrier_expect_tx(unsigned bar, unsigned bytes) {
  asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
}

// `bytes` (a multiple of 16) from global `src` to shared `dst` (both 16-byte
// aligned) by the bulk-copy engine, completing them on `bar`.
__device__ __forceinline__ void bulk_copy_to_shared(unsigned dst, const void *src, unsigned bytes,
                                                    unsigned bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes"
               " [%0], [%1], %2, [%3];\n" ::"r"(dst),
               "l"(reinterpret_cast<unsigned long long>(src)), "r"(bytes), "r"(bar)
               : "memory");
}

// One box of a 4-d tensor (coordinates innermost first) into shared memory at
// `dst`, completing bytes on `bar`.
__device__ __forceinline__ void tma_load_4d(unsigned dst, const TensorMap &map, unsigned bar,
                                            int c0, int c1, int c2, int c3) {
  asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
               " [%0], [%1, {%3, %4, %5, %6}], [%2];\n" ::"r"(dst),
               "l"(reinterpret_cast<unsigned long long>(&map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2),
               "r"(c3)
               : "memory");
}

// One box of shared memory at `src` (the layout a load of the same box would
// write) into a 4-d tensor at coordinates c0..c3 (innermost first), by the bulk
// engine through the async proxy: the writers of `src` fence their generic
// writes first (fence.proxy.async.shared::cta). Elements outside the tensor's
// dimensions are not written. Part of the thread's current bulk group.
__device__ __forceinline__ void tma_store_4d(const TensorMap &map, unsigned src, int c0, int c1,
                                             int c2, int c3) {
  asm volatile("cp.async.bulk.tensor.4d.global.shared::cta.tile.bulk_group"
               " [%0, {%2, %3, %4, %5}], [%1];\n" ::"l"(reinterpret_cast<unsigned long long>(&map)),
               "r"(src), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
               : "memory");
}

// Closes this thread's bulk group of stores issued since the last commit.
__device__ __forceinline__ void bulk_commit_group() {
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
}

// Waits until at most N of this thread's committed bulk groups still read
// their shared memory (the source may then be overwritten).
template <int N> __device__ __forceinline__ void bulk_wait_group_read() {
  asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(N) : "memory");
}

// Waits until at most N of this thread's committed bulk groups are incomplete
// (their writes done), before the CTA exits.
template <int N> __device__ __forceinline__ void bulk_wait_group() {
  asm volatile("cp.async.bulk.wait_group %0;\n" ::"n"(N) : "memory");
}

} // namespace ap
