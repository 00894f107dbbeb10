// Shared by the two PagedAttention V2 phase-1 kernels (paged_attention.cu, one
// K/V row per lane group; paged_attention_mma.cu, tensor-core scores for a GQA
// group) and the phase-2 reduce: arguments, K/V row addressing, and the merge
// of a CTA's partial softmax states into its output.
#pragma once

#include "attention_params.h"
#include "mma.h"
#include "numeric.h"

namespace ap {

typedef half_bits T;

struct PagedArgs {
  const T *q;
  const T *k; // pages, or [B, KVH, N, D] when CONTIGUOUS
  const T *v;
  const int *page_table; // [B, max_pages]
  const int *context_lens;
  T *out;                 // [B, H, D]
  float *part_acc;        // [B, H, partitions, D]
  float *part_max;        // [B, H, partitions]
  float *part_sum;        // [B, H, partitions]
  long long kv_stride[3]; // CONTIGUOUS: element strides of [B, KVH, N]
  int partitions;         // partitions per sequence (grid.x)
};

// Element offset of row `key` of kv head `kvh` in sequence `b`.
__device__ __forceinline__ long long row_offset(const AttentionParams &p, const PagedArgs &a, int b,
                                                int kvh, int key) {
  if (CONTIGUOUS) return b * a.kv_stride[0] + kvh * a.kv_stride[1] + key * a.kv_stride[2];
  const int page = a.page_table[(long long)b * p.max_pages + key / PAGE_SIZE];
  return (((long long)page * p.kv_heads + kvh) * PAGE_SIZE + key % PAGE_SIZE) * HEAD_DIM;
}

// The keys [begin, end) of this CTA's partition; grid (partition, kv head,
// sequence). Empty (begin >= end) when the sequence ends before the partition.
struct PartitionKeys {
  int part, kvh, b, begin, end;
};
__device__ __forceinline__ PartitionKeys partition_keys(const AttentionParams &p,
                                                        const PagedArgs &a) {
  PartitionKeys k;
  k.part = blockIdx.x, k.kvh = blockIdx.y, k.b = blockIdx.z;
  k.begin = k.part * p.partition_size;
  k.end = min(a.context_lens[k.b], k.begin + p.partition_size);
  return k;
}

// Merges STATES partial softmax states of each of the GROUP heads, held in
// shared memory as max (log2 domain, -inf for a state that saw no key), sum
// and unnormalized accumulator ([STATES][GROUP][HEAD_DIM]), then writes the
// final output (one partition) or this partition's (max, sum, acc). Every
// thread of the CTA takes part; the caller synchronizes before.
template <int STATES, int Dtype>
__device__ __forceinline__ void merge_states(const AttentionParams &p, const PagedArgs &a,
                                             const float *s_max, const float *s_sum,
                                             const float *s_acc, int b, int kvh, int part) {
  for (int idx = threadIdx.x; idx < GROUP * HEAD_DIM; idx += blockDim.x) {
    const int g = idx / HEAD_DIM, d = idx % HEAD_DIM;
    float mx = AP_NEG_INF;
    for (int r = 0; r < STATES; ++r)
      mx = fmaxf(mx, s_max[r * GROUP + g]);
    float sum = 0.f, o = 0.f;
    for (int r = 0; r < STATES; ++r) {
      const float m = s_max[r * GROUP + g];
      const float w = m == AP_NEG_INF ? 0.f : fast_exp2(m - mx);
      sum = __fmaf_rn(s_sum[r * GROUP + g], w, sum);
      o = __fmaf_rn(s_acc[(r * GROUP + g) * HEAD_DIM + d], w, o);
    }
    const long long bh = (long long)b * p.heads + kvh * GROUP + g;
    if (a.partitions == 1) {
      a.out[bh * HEAD_DIM + d] = Storage<Dtype>::store(o / sum);
    } else {
      a.part_acc[(bh * a.partitions + part) * HEAD_DIM + d] = o;
      if (d == 0) {
        a.part_max[bh * a.partitions + part] = mx;
        a.part_sum[bh * a.partitions + part] = sum;
      }
    }
  }
}

} // namespace ap
