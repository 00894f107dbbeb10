// Shared by the two kernels of chunked causal linear attention (Proto 6):
// linear_attention_chunk_h.cu (the state entering each chunk) and
// linear_attention_chunk_o.cu (the output of each chunk). Both take the same
// arguments, so one launch plan packs them once for the two launches:
//   (AttentionParams, AttentionStrides, q, k, v, o, h, h0, ht)
// q, k, v, o [B, H, T, D] 16-bit; h [B, H, chunks, D, D] in the input dtype
// (state before each chunk); h0 (optional) and ht (optional) [B, H, D, D] fp32.
#pragma once

#include "attention_params.h"
#include "mma.h"
#include "numeric.h"

namespace ap {

constexpr int kLinearWarps = 4;
constexpr int kLinearThreads = kLinearWarps * 32;

// Async copy of rows [row0, row0 + ROWS) of a [rows, COLS] 16-bit matrix into
// a swizzled tile (see swizzled in mma.h); rows at or past `rows_valid` become
// zeros, so a partial last chunk adds nothing to the state and 0 * garbage
// never reaches an accumulator. Each thread keeps one 16-byte column and walks
// rows kRowsPerPass apart (one base address plus constant steps).
template <int ROWS, int COLS>
__device__ __forceinline__ void linear_load_rows(unsigned tile, const half_bits *base,
                                                 long long row_stride, int row0, int rows_valid) {
  constexpr int kChunks = COLS / 8;
  constexpr int kRowsPerPass = kLinearThreads / kChunks;
  static_assert(kLinearThreads % kChunks == 0, "threads cover whole rows");
  const int c = threadIdx.x % kChunks, r0 = threadIdx.x / kChunks;
  const half_bits *src = base + (long long)(row0 + r0) * row_stride + c * 8;
  const long long step = (long long)kRowsPerPass * row_stride;
  const int remaining = rows_valid - row0 - r0;
#pragma unroll
  for (int it = 0; it < (ROWS + kRowsPerPass - 1) / kRowsPerPass; ++it) {
    const int r = r0 + it * kRowsPerPass;
    if (ROWS % kRowsPerPass == 0 || r < ROWS) {
      const bool valid = it * kRowsPerPass < remaining;
      cp_async_16(tile + swizzled<COLS * 2>(r, c), valid ? src + it * step : base, valid ? 16 : 0);
    }
  }
}

} // namespace ap
