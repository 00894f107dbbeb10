// The key split's merge (flash_key_split.h): after flash_attention_wgmma with
// KEY_SPLIT left each split item's parts in the scratch, one warp per query
// row combines them, in part order (so the result does not depend on which
// part finished first), into O and lse. Launched right after that kernel on
// the same stream with the same argument block: its parameters are the
// KEY_SPLIT kernel's (the three TMA descriptors unused here), so the packed
// block fits both. Grid: split items * BLOCK_M / kRows blocks of kThreads.
//
// Constants: HEAD_DIM (64, 128), BLOCK_M (the wgmma kernel's), DTYPE.
#include "attention_params.h"
#include "flash_key_split.h"
#include "flash_output.h"
#include "numeric.h"
#include "tma.h"

using namespace ap;
typedef half_bits T;

constexpr int kWarps = 8;
constexpr int kRowsPerWarp = 2;
constexpr int kRows = kWarps * kRowsPerWarp; // query rows a block
constexpr int kThreads = kWarps * 32;
constexpr int kCols = HEAD_DIM / 32; // output columns a lane
static_assert(BLOCK_M % kRows == 0, "whole blocks of rows per item");
static_assert(kCols == 2 || kCols == 4, "HEAD_DIM 64 or 128");

extern "C" __global__ void __launch_bounds__(kThreads)
    flash_split_merge(const AttentionParams p, const AttentionStrides st, const T *__restrict__ q,
                      const T *__restrict__ k, const T *__restrict__ v, T *__restrict__ o,
                      float *__restrict__ lse, float *__restrict__ scratch,
                      const __grid_constant__ TensorMap tmap_q,
                      const __grid_constant__ TensorMap tmap_k,
                      const __grid_constant__ TensorMap tmap_v) {
  constexpr int kBlocksPerItem = BLOCK_M / kRows;
  const int m_blocks = (p.seqlen_q + BLOCK_M - 1) / BLOCK_M;
  KeySplit split;
  split.parts = (p.seqlen_k + p.partition_size - 1) / p.partition_size;
  split.items = int(gridDim.x) / kBlocksPerItem;
  split.whole = m_blocks * p.heads * p.batch - split.items;
  split.tiles = 0; // unused here
  const int slot = int(blockIdx.x) / kBlocksPerItem;
  // The wgmma kernel's item order without the causal mask (linear_item).
  const int w = split.whole + slot;
  const int m_block = w % m_blocks, hb = w / m_blocks;
  const int head = hb % p.heads, batch = hb / p.heads;
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const float scale_log2 = p.scale * 1.4426950408889634f;
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int local = (int(blockIdx.x) % kBlocksPerItem) * kRows + warp * kRowsPerWarp + r;
    const int row = m_block * BLOCK_M + local;
    if (row >= p.seqlen_q) continue; // warp-uniform
    float m_all = AP_NEG_INF;
    for (int i = 0; i < split.parts; ++i)
      m_all = fmaxf(m_all, split_part_stats<BLOCK_M, HEAD_DIM>(scratch, split,
                                                               slot * split.parts + i)[2 * local]);
    float acc[kCols] = {}, sum = 0.f, norm = 0.f;
#pragma unroll 1
    for (int i = 0; i < split.parts; ++i) {
      const int index = slot * split.parts + i;
      const float2 ms = *reinterpret_cast<const float2 *>(
          split_part_stats<BLOCK_M, HEAD_DIM>(scratch, split, index) + 2 * local);
      // The part's weight against the row's max (1 for the part that holds
      // it); a part whose keys all scored -inf weighs 0.
      const float weight = ms.x == AP_NEG_INF ? 0.f : exp2f((ms.x - m_all) * scale_log2);
      // Each part normalizes as write_output does (flash_output.h): its
      // largest weight went into P V rounded to DTYPE.
      const float p_max = fast_exp2(__fmaf_rn(ms.x, scale_log2, -__fmul_rn(ms.x, scale_log2)));
      sum += weight * ms.y;
      norm += weight * (ms.y + (round_to<DTYPE>(p_max) - p_max));
      const float *part_row = split_part_rows<BLOCK_M, HEAD_DIM>(scratch, index) + local * HEAD_DIM;
#pragma unroll
      for (int c = 0; c < kCols; c += 2) {
        const float2 x = *reinterpret_cast<const float2 *>(part_row + lane * kCols + c);
        acc[c] += weight * x.x, acc[c + 1] += weight * x.y;
      }
    }
    // A row no key reached (sum 0) writes 0 and lse -inf, as write_output.
    const bool empty = sum == 0.f;
    const float inv = empty ? 0.f : 1.f / norm;
    T *o_row = o + batch * st.o[0] + head * st.o[1] + (long long)row * st.o[2] + lane * kCols;
#pragma unroll
    for (int c = 0; c < kCols; c += 2)
      *reinterpret_cast<unsigned *>(o_row + c) = pack2<DTYPE>(acc[c] * inv, acc[c + 1] * inv);
    if ((p.flags & AP_FLAG_RETURN_LSE) && lane == 0) {
      const long long index = ((long long)batch * p.heads + head) * p.seqlen_q + row;
      lse[index] = empty ? AP_NEG_INF : m_all * p.scale + __logf(sum);
    }
  }
}
