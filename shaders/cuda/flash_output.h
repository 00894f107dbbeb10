// The flash kernels' last step per query row: the softmax denominator and
// the scale the row's output is multiplied by (mma.sync and wgmma kernels).
#pragma once

#include "mma.h"
#include "numeric.h"

namespace ap {

// A row's sum of weights over the 4 threads of its quad (each holds the
// columns 2t, 2t + 1 of every 8).
__device__ __forceinline__ float quad_sum(float sum) {
  sum += __shfl_xor_sync(0xffffffffu, sum, 1);
  sum += __shfl_xor_sync(0xffffffffu, sum, 2);
  return sum;
}

// 1 / the row's denominator, or 0 for a row that saw no key (`empty`: sum 0;
// only such a row has it, since its max key contributes about 1). A NaN score
// (NaN or Inf in q or k: fmaxf drops NaN from the max, exp2(+inf - +inf) is
// NaN) makes sum NaN, which is not 0, so the row's output and lse come out
// NaN. The row max's weight was exp2(fma(m, c, -base)) with base = m * c
// rounded (flash_softmax.inc; it feeds only fma operands, so it is never
// contracted and __fmul_rn here is the same product): 2^(rounding error of
// m * c), within |m * c| * 2^-24 * ln 2 of 1 (3.4e-4 at m * c ~ 1e4, q and k
// x 50). P.V took it rounded to Dtype (fp16: to 1 or 1 - 2^-11). Normalizing
// by the same rounded weight gives a row dominated by one key exactly that
// key's value, where the fp32 sum put it up to an fp16 ulp off. Branch-free:
// with m = -inf, norm is NaN but sum is 0 or NaN too.
template <int Dtype>
__device__ __forceinline__ float output_scale(float sum, bool empty, float m, float scale_log2) {
  const float p_max = fast_exp2(__fmaf_rn(m, scale_log2, -__fmul_rn(m, scale_log2)));
  const float norm = sum + (round_to<Dtype>(p_max) - p_max);
  return empty ? 0.f : 1.f / norm;
}

} // namespace ap
