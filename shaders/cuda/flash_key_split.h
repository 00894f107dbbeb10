// The key split of the wgmma kernel's persistent grid (KEY_SPLIT in
// flash_attention_wgmma.cu). A grid of one CTA per SM takes items (query
// blocks) in rounds; where the item count is not a multiple of the grid, the
// last round runs partly empty (2048 items on 132 SMs: 15.5 rounds). With
// the split, each of those last items runs as `parts` ranges of its key
// tiles on different CTAs, each part leaving its rows unnormalized in a
// scratch buffer with each row's max and sum, and flash_split_merge.cu
// combines the parts into O and lse. No CTA waits for another.
#pragma once

#include "attention_params.h"

namespace ap {

// parts: key ranges per split item, ceil(seqlen_k / partition_size) where the
// host set partition_size (keys a part, a multiple of the key tile), else 1;
// items: how many items are split, the last round's (item count mod grid
// size; the host sizes the grid for that); whole: the items before them;
// tiles: key tiles a part.
struct KeySplit {
  int parts, items, whole, tiles;
};

__device__ __forceinline__ KeySplit key_split(const AttentionParams &p, int items, int block_n) {
  KeySplit s;
  s.parts = p.partition_size > 0 ? (p.seqlen_k + p.partition_size - 1) / p.partition_size : 1;
  s.items = s.parts > 1 ? items % int(gridDim.x) : 0;
  s.whole = items - s.items;
  s.tiles = p.partition_size / block_n;
  return s;
}

// The scratch: for part `index` = split item * parts + part, ROWS x DIM
// floats of output, after all of them each part's ROWS (max, sum) pairs. The
// max is in raw score units (before the softmax scale), as the kernel keeps it.
template <int ROWS, int DIM>
__device__ __forceinline__ float *split_part_rows(float *s, int index) {
  return s + (long long)index * ROWS * DIM;
}

template <int ROWS, int DIM>
__device__ __forceinline__ float *split_part_stats(float *s, const KeySplit &split, int index) {
  return s + (long long)split.items * split.parts * ROWS * DIM + (long long)index * ROWS * 2;
}

} // namespace ap
