// PagedAttention V2 decode: one query per sequence, K/V in a pool of pages.
//
// Phase 1 (paged_attention_partition): one CTA per (partition of the context,
// kv head, sequence). It serves every query head of its GQA group, so each K/V
// row is read once per group. Lanes form groups of HEAD_DIM / 8 that each own one
// key row at a time (16-byte loads, one row per group, coalesced); groups walk
// the partition's keys UNROLL at a time so several rows are in flight per thread.
// Each group keeps an online softmax per query head; the CTA then merges its
// groups with the log-sum-exp rule. With one partition it writes the final
// output; otherwise it writes (max, sum, unnormalized acc) per partition.
// Phase 2 (paged_attention_reduce): one CTA per (head, sequence) merges the
// partitions with the same rule.
//
// Constants: HEAD_DIM (64, 128), GROUP (query heads per kv head), PAGE_SIZE,
// WARPS, UNROLL, CONTIGUOUS (1: read K/V as [B, KVH, N, D] with strides instead of
// through the page table: the same arithmetic, for bit-exact comparisons and the
// paging-overhead measurement), DTYPE, ALIBI (0/1, paged_common.h: alibi_slope).
//
// Layouts: q [B, H, D]; k/v pages [num_pages, KVH, PAGE_SIZE, D]; page table
// [B, max_pages] int32; context lengths [B] int32; out [B, H, D]. Offsets are
// 64-bit. Page ids and lengths are read from device memory and checked by the
// kernels (paged_common.h: page_id, context_length), never trusted.
#include "attention_params.h"
#include "mma.h"
#include "numeric.h"
#include "paged_common.h"

using namespace ap;
typedef Storage<DTYPE> S;

constexpr int kLanesPerRow = HEAD_DIM / 8; // 16-byte chunks per K/V row
constexpr int kGroupsPerWarp = 32 / kLanesPerRow;
constexpr int kGroups = WARPS * kGroupsPerWarp;
static_assert(HEAD_DIM == 64 || HEAD_DIM == 128, "head_dim 64 or 128");
static_assert(GROUP >= 1 && GROUP <= 8, "1 to 8 query heads per kv head");

__device__ __forceinline__ void load16(unsigned (&r)[4], const T *p) {
  const uint4 v = *reinterpret_cast<const uint4 *>(p);
  r[0] = v.x, r[1] = v.y, r[2] = v.z, r[3] = v.w;
}

__device__ __forceinline__ float lo_of(unsigned w) {
  return S::load(T(w & 0xffffu));
}
__device__ __forceinline__ float hi_of(unsigned w) {
  return S::load(T(w >> 16));
}

extern "C" __global__ void __launch_bounds__(WARPS * 32)
    paged_attention_partition(const AttentionParams p, const PagedArgs a) {
  const PartitionKeys keys = partition_keys(p, a);
  if (keys.begin >= keys.end) { // this sequence is shorter: nothing to do here
    if (keys.begin == 0) write_empty<DTYPE>(p, a, keys.b, keys.kvh);
    return;
  }
  const int part = keys.part, kvh = keys.kvh, b = keys.b, begin = keys.begin, end = keys.end;

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int chunk = lane % kLanesPerRow;
  const int group = warp * kGroupsPerWarp + lane / kLanesPerRow;
  const float scale_log2 = p.scale * 1.4426950408889634f;

  // This lane's 8 elements of each query head, pre-scaled into the exp2 domain.
  float q[GROUP][8];
#pragma unroll
  for (int g = 0; g < GROUP; ++g) {
    unsigned w[4];
    load16(w, q_row(a, b, kvh * GROUP + g) + chunk * 8);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      q[g][2 * i] = lo_of(w[i]) * scale_log2;
      q[g][2 * i + 1] = hi_of(w[i]) * scale_log2;
    }
  }
  // ALiBi in the same exp2 domain: key j adds slope_log2[g] * (len - 1 - j).
  float slope_log2[GROUP];
#pragma unroll
  for (int g = 0; g < GROUP; ++g)
    slope_log2[g] = -alibi_slope(p, a, b, kvh * GROUP + g) * 1.4426950408889634f;
  float acc[GROUP][8], m[GROUP], l[GROUP];
#pragma unroll
  for (int g = 0; g < GROUP; ++g) {
    m[g] = AP_NEG_INF, l[g] = 0.f;
#pragma unroll
    for (int i = 0; i < 8; ++i)
      acc[g][i] = 0.f;
  }

  // The loop count is the same for every lane (shuffles below need the whole
  // warp); keys past the end load nothing and update nothing.
  for (int step = begin; step < end; step += kGroups * UNROLL) {
    unsigned kw[UNROLL][4], vw[UNROLL][4];
    bool valid[UNROLL];
    // Issue every load of this step before using any (bytes in flight).
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int key = step + u * kGroups + group;
      valid[u] = key < end;
      if (valid[u]) {
        const long long off = row_offset(p, a, b, kvh, key) + chunk * 8;
        load16(kw[u], a.k + off);
        load16(vw[u], a.v + off);
      } else {
#pragma unroll
        for (int i = 0; i < 4; ++i)
          kw[u][i] = vw[u][i] = 0u;
      }
    }
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      float kf[8], vf[8];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        kf[2 * i] = lo_of(kw[u][i]), kf[2 * i + 1] = hi_of(kw[u][i]);
        vf[2 * i] = lo_of(vw[u][i]), vf[2 * i + 1] = hi_of(vw[u][i]);
      }
#pragma unroll
      for (int g = 0; g < GROUP; ++g) {
        float s = 0.f;
#pragma unroll
        for (int i = 0; i < 8; ++i)
          s = __fmaf_rn(q[g][i], kf[i], s);
        // Sum over the lanes that share this key row.
#pragma unroll
        for (int o = kLanesPerRow / 2; o > 0; o /= 2)
          s += __shfl_xor_sync(0xffffffffu, s, o);
        if (ALIBI)
          s = __fmaf_rn(slope_log2[g], float(keys.len - 1 - (step + u * kGroups + group)), s);
        if (valid[u]) {
          const float m_new = fmaxf(m[g], s);
          const float alpha = fast_exp2(m[g] - m_new); // m = -inf -> 0
          const float w = fast_exp2(s - m_new);
          l[g] = l[g] * alpha + w;
#pragma unroll
          for (int i = 0; i < 8; ++i)
            acc[g][i] = __fmaf_rn(w, vf[i], acc[g][i] * alpha);
          m[g] = m_new;
        }
      }
    }
  }

  // Merge the CTA's groups: every group has seen at least one key unless the
  // partition is shorter than the number of groups (then m = -inf, l = 0).
  __shared__ float s_max[kGroups][GROUP], s_sum[kGroups][GROUP];
  __shared__ float s_acc[kGroups][GROUP][HEAD_DIM];
  if (chunk == 0) {
#pragma unroll
    for (int g = 0; g < GROUP; ++g)
      s_max[group][g] = m[g], s_sum[group][g] = l[g];
  }
#pragma unroll
  for (int g = 0; g < GROUP; ++g)
#pragma unroll
    for (int i = 0; i < 8; ++i)
      s_acc[group][g][chunk * 8 + i] = acc[g][i];
  __syncthreads();
  merge_states<kGroups, DTYPE>(p, a, &s_max[0][0], &s_sum[0][0], &s_acc[0][0][0], b, kvh, part);
}

// Phase 2: merge the partitions of one (head, sequence); HEAD_DIM threads.
extern "C" __global__ void __launch_bounds__(HEAD_DIM)
    paged_attention_reduce(const AttentionParams p, const PagedArgs a) {
  const int head = blockIdx.x, b = blockIdx.y, d = threadIdx.x;
  const int used = (context_length(p, a, b, false) + p.partition_size - 1) / p.partition_size;
  const long long bh = (long long)b * p.heads + head;
  float mx = AP_NEG_INF;
  for (int i = 0; i < used; ++i)
    mx = fmaxf(mx, a.part_max[bh * a.partitions + i]);
  float sum = 0.f, o = 0.f;
  for (int i = 0; i < used; ++i) {
    const float w = fast_exp2(a.part_max[bh * a.partitions + i] - mx);
    sum = __fmaf_rn(a.part_sum[bh * a.partitions + i], w, sum);
    o = __fmaf_rn(a.part_acc[(bh * a.partitions + i) * HEAD_DIM + d], w, o);
  }
  a.out[bh * HEAD_DIM + d] = S::store(used ? o / sum : 0.f); // no key: zeros
}
