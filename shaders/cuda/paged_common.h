// Shared by the two PagedAttention V2 phase-1 kernels (paged_attention.cu, one
// K/V row per lane group; paged_attention_mma.cu, tensor-core scores for a GQA
// group) and the phase-2 reduce: arguments, K/V row addressing, and the merge
// of a CTA's partial softmax states into its output.
#pragma once

#include "attention_params.h"
#include "input_error_record.h"
#include "kernel_layouts.h"
#include "mma.h"
#include "numeric.h"

#ifndef ALIBI
#define ALIBI 0 // 1: add ALiBi's bias (the host names it only when on)
#endif

namespace ap {

typedef half_bits T;

__device__ __forceinline__ const T *q_row(const PagedArgs &a, int b, int head) {
  return a.q + b * a.q_stride[0] + head * a.q_stride[1];
}

// The page id at column `col` of sequence b's table row. An id outside the pool
// is reported (input_error_record.h) and read as page 0, so no table content
// can send a read outside the pool.
__device__ __forceinline__ int page_id(const AttentionParams &p, const PagedArgs &a, int b,
                                       int col) {
  const int id = a.page_table[b * a.table_stride + col];
  if ((unsigned)id < (unsigned)p.num_pages) return id;
  report_input_error(a.errors, AP_INPUT_ERROR_PAGE_ID, b, id, col, p.num_pages);
  return 0;
}

// Sequence b's context length, clamped to 0..capacity (p.seqlen_k: the table's
// max_pages * PAGE_SIZE, or K's rows when CONTIGUOUS). A length outside
// 1..capacity is reported (by one thread per sequence) and a length below 1
// reads as 0, whose output is written as zeros.
__device__ __forceinline__ int context_length(const AttentionParams &p, const PagedArgs &a, int b,
                                              bool report) {
  const int n = a.context_lens[b * a.lens_stride];
  if (n >= 1 && n <= p.seqlen_k) return n;
  if (report) report_input_error(a.errors, AP_INPUT_ERROR_CONTEXT_LENGTH, b, n, 0, p.seqlen_k);
  return n < 1 ? 0 : p.seqlen_k;
}

// Element offset of row `key` of kv head `kvh` in sequence `b`.
__device__ __forceinline__ long long row_offset(const AttentionParams &p, const PagedArgs &a, int b,
                                                int kvh, int key) {
  if (CONTIGUOUS) return b * a.kv_stride[0] + kvh * a.kv_stride[1] + key * a.kv_stride[2];
  const int page = page_id(p, a, b, key / PAGE_SIZE);
  return (((long long)page * p.kv_heads + kvh) * PAGE_SIZE + key % PAGE_SIZE) * HEAD_DIM;
}

// The keys [begin, end) of this CTA's partition; grid (partition, kv head,
// sequence). Empty (begin >= end) when the sequence ends before the partition.
struct PartitionKeys {
  int part, kvh, b, begin, end, len; // len: the sequence's (clamped) context length
};
__device__ __forceinline__ PartitionKeys partition_keys(const AttentionParams &p,
                                                        const PagedArgs &a) {
  PartitionKeys k;
  k.part = blockIdx.x, k.kvh = blockIdx.y, k.b = blockIdx.z;
  k.begin = k.part * p.partition_size;
  const bool reporter = k.part == 0 && k.kvh == 0 && threadIdx.x == 0;
  k.len = context_length(p, a, k.b, reporter);
  k.end = min(k.len, k.begin + p.partition_size);
  return k;
}

// ALiBi's slope of query head `head` of sequence b (0 without ALIBI). The decode
// query sits at the sequence's last position, len - 1, so key j's bias is
// -slope * (len - 1 - j), the causal form of flash_attention's.
__device__ __forceinline__ float alibi_slope(const AttentionParams &p, const PagedArgs &a, int b,
                                             int head) {
  return ALIBI ? a.alibi[(long long)b * p.alibi_stride + head] : 0.f;
}

// The output of a sequence that sees no key (a context length below 1, which
// is reported): zeros, written by the CTA of partition 0 when there is one
// partition (the reduce writes them otherwise).
template <int Dtype>
__device__ __forceinline__ void write_empty(const AttentionParams &p, const PagedArgs &a, int b,
                                            int kvh) {
  if (a.partitions != 1) return;
  for (int idx = threadIdx.x; idx < GROUP * HEAD_DIM; idx += blockDim.x) {
    const long long bh = (long long)b * p.heads + kvh * GROUP + idx / HEAD_DIM;
    a.out[bh * HEAD_DIM + idx % HEAD_DIM] = Storage<Dtype>::store(0.f);
  }
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
