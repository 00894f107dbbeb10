// ALiBi's bias on one 16-row warp slice of raw scores, shared by the mma.sync
// kernel (flash_softmax.inc) and the wgmma kernel (its softmax): both hold a
// slice as s[j][e], the m16n8 accumulator layout, where element e of s[j] is
// row row0 + g + 8 * (e >> 1) and key n0 + j * 8 + 2t + (e & 1).
#pragma once

namespace ap {

// Adds slope * |row + diag - key| (slope already negative and divided by the
// scale, so the softmax's scaling gives -slope_h * |i + Nk - Nq - j|) to the
// MT_ 16-row slices s[mt] of a warp (slice mt starts at row row0 + 16 * mt),
// or on a tile wholly on one side of every row's diagonal only its key part:
// the distance is then linear, slope * |d0 - jc| = row part (+-slope * d0) +
// key part (-+slope * jc, jc a compile-time constant), so the key part costs
// one FMA per element and the row part goes to alibi_row, for the caller to
// add to the row's max and exponent once (softmax needs it nowhere else). Only
// tiles the block's diagonal crosses pay |.| per element. d0 - (j * 8 + c) is
// the row's diagonal position minus the key, exact in float below 2^24 keys.
// keys_before: every key of the tile <= every row's diagonal position;
// keys_after: every key >= every row's (both for the whole CTA block, so the
// branch is uniform).
// KEY_PART false: s holds the key part already (the wgmma kernel's ALIBI 3
// starts S with it), so a one-sided tile takes only the row part.
template <int MT_, int NJ, bool KEY_PART = true>
__device__ __forceinline__ void alibi_bias(float (&s)[MT_][NJ][4], float (&alibi_row)[MT_][2],
                                           float alibi_slope, bool keys_before, bool keys_after,
                                           int row0, int diag, int n0, int g, int t) {
  if (keys_before || keys_after) {
    const float per_key = keys_before ? -alibi_slope : alibi_slope;
#pragma unroll
    for (int mt = 0; mt < MT_; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float d0 = float(row0 + mt * 16 + g + 8 * h + diag - n0 - 2 * t);
        alibi_row[mt][h] = keys_before ? alibi_slope * d0 : -alibi_slope * d0;
        if (!KEY_PART) continue;
#pragma unroll
        for (int j = 0; j < NJ; ++j)
#pragma unroll
          for (int c = 0; c < 2; ++c)
            s[mt][j][2 * h + c] = fmaf(per_key, float(j * 8 + c), s[mt][j][2 * h + c]);
      }
  } else {
#pragma unroll
    for (int mt = 0; mt < MT_; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float d0 = float(row0 + mt * 16 + g + 8 * h + diag - n0 - 2 * t);
        alibi_row[mt][h] = 0.f;
#pragma unroll
        for (int j = 0; j < NJ; ++j)
#pragma unroll
          for (int c = 0; c < 2; ++c)
            s[mt][j][2 * h + c] =
                fmaf(fabsf(d0 - float(j * 8 + c)), alibi_slope, s[mt][j][2 * h + c]);
      }
  }
}

// ALiBi's bias rises toward the diagonal, so keys taken in ascending order
// raise most rows' running max at every step, and each raise rescales the
// output (HEAD_DIM / 4 multiplies per row). Taking the tiles nearest the
// block's diagonal first (causal: the last tile, then descending) lets each
// row's max settle within its first steps. Exact in any order: the online
// softmax does not care.
// Step n's key tile, nearest `first` first: first, first - 1, first + 1,
// first - 2, ... while both sides have tiles (`both` of them each), then the
// rest of the longer side outward. Visits each of the n_end tiles once.
__device__ __forceinline__ int nearest_first_tile(int n, int first, int both, bool more_below) {
  if (n <= 2 * both) {
    const int k = (n + 1) >> 1;
    return (n & 1) ? first - k : first + k;
  }
  const int j = n - both; // both + 1, both + 2, ... tiles away
  return more_below ? first - j : first + j;
}

// The tile nearest the block's diagonal (its middle row's): where
// nearest_first_tile starts.
template <int BLOCK_M_, int BLOCK_N_, bool CAUSAL_>
__device__ __forceinline__ int nearest_first_start(int n_end, int m0, int diag) {
  int first = 0;
  if (n_end > 0) {
    const long long at = CAUSAL_ ? n_end - 1 : ((long long)m0 + BLOCK_M_ / 2 + diag) / BLOCK_N_;
    first = int(max(0LL, min((long long)n_end - 1, at)));
  }
  return first;
}

} // namespace ap
