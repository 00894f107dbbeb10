// PagedAttention V2 decode, phase 1 on tensor cores: the GQA group's query
// heads are the 16 rows of an mma.sync m16n8k16 A operand (rows past GROUP are
// zero), so scores for 16 keys cost 2 * HEAD_DIM / 16 MMAs instead of a
// shuffle reduction per key and head (paged_attention.cu, which stays the path
// for GROUP 1). Phase 2 is paged_attention_reduce in paged_attention.cu.
//
// One CTA per (partition of the context, kv head, sequence), as there. Each
// warp walks its own 16-key steps of the partition (step w, w + WARPS, ...):
// cp.async copies the K and V rows, looked up through the page table, into the
// warp's STAGES-deep ring of swizzled shared-memory tiles; ldmatrix feeds
// S = Q K^T and O += P V; an online softmax runs per head in float32. The
// warps' states then merge with the log-sum-exp rule (merge_states).
//
// Constants: HEAD_DIM (64, 128), GROUP (2..8 query heads per kv head),
// PAGE_SIZE, WARPS, STAGES (>= 2), CONTIGUOUS, DTYPE; see paged_attention.cu.
// Dynamic shared memory: 16 Q rows + WARPS * STAGES * (K + V tile), which also
// holds the merge scratch once the key loop is done.
#include "attention_params.h"
#include "mma.h"
#include "numeric.h"
#include "paged_common.h"

using namespace ap;

constexpr int kKeys = 16;                  // keys per warp step: one k16 slice of P V
constexpr int kChunks = HEAD_DIM / 8;      // 16-byte chunks per row
constexpr int kRowsPerPass = 32 / kChunks; // rows one warp-wide copy covers
constexpr unsigned kRowBytes = HEAD_DIM * 2;
constexpr unsigned kTileBytes = kKeys * kRowBytes;
constexpr unsigned kStageBytes = 2 * kTileBytes; // K tile, then V tile
static_assert(HEAD_DIM == 64 || HEAD_DIM == 128, "head_dim 64 or 128");
static_assert(GROUP >= 2 && GROUP <= 8, "2 to 8 query heads per kv head (rows of one MMA)");
static_assert(STAGES >= 2, "at least one step in flight while another computes");
static_assert((PAGE_SIZE & (PAGE_SIZE - 1)) == 0 && PAGE_SIZE % kRowsPerPass == 0,
              "page sizes are powers of two of at least one copy pass");
static_assert(WARPS * GROUP * (HEAD_DIM + 2) * 4 <= WARPS * STAGES * kStageBytes,
              "the merge scratch fits in the K/V stages");
static_assert(16 * kRowBytes + WARPS * STAGES * kStageBytes ==
                  paged_mma_shared_bytes(HEAD_DIM, WARPS, STAGES),
              "the host sizes dynamic shared memory by kernel_layouts.h");

__device__ __forceinline__ unsigned swizzle(int row, int chunk) {
  return swizzled<kRowBytes>(row, chunk);
}

extern "C" __global__ void __launch_bounds__(WARPS * 32)
    paged_attention_partition(const AttentionParams p, const PagedArgs a) {
  extern __shared__ __align__(128) unsigned char smem[];
  const PartitionKeys keys = partition_keys(p, a);
  if (keys.begin >= keys.end) { // this sequence is shorter: nothing to do here
    if (keys.begin == 0) write_empty<DTYPE>(p, a, keys.b, keys.kvh);
    return;
  }
  const int part = keys.part, kvh = keys.kvh, b = keys.b, begin = keys.begin, end = keys.end;

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int g = lane >> 2, t = lane & 3, mi = lane >> 3;
  const float scale_log2 = p.scale * 1.4426950408889634f;
  // Row g's ALiBi slope in raw-score units (scores are scaled at the exp2).
  const float alibi_raw = g < GROUP ? -alibi_slope(p, a, b, kvh * GROUP + g) / p.scale : 0.f;
  const unsigned q_tile = smem_address(smem);
  const unsigned ring = q_tile + 16 * kRowBytes + warp * STAGES * kStageBytes;

  // The group's query rows; rows GROUP..15 are zero-filled.
  for (int i = threadIdx.x; i < 16 * kChunks; i += WARPS * 32) {
    const int r = i / kChunks, c = i % kChunks;
    const T *src = q_row(a, b, kvh * GROUP + min(r, GROUP - 1));
    cp_async_16(q_tile + swizzle(r, c), src + c * 8, r < GROUP ? 16 : 0);
  }
  cp_async_commit();

  const int steps = (end - begin + kKeys - 1) / kKeys;
  const int my_steps = steps > warp ? (steps - warp + WARPS - 1) / WARPS : 0;
  // Page-table walk. When K/V are paged and steps start on multiples of 16
  // (always, unless a caller's partition size is not a multiple of 16), a step
  // spans kPagesPerStep pages whose ids are read one step ahead, so no copy
  // waits on a table read: a dependent global load before every step's copies
  // was most of what paging cost this kernel. Otherwise each row looks up its
  // page (row_offset).
  constexpr int kPagesPerStep = PAGE_SIZE >= kKeys ? 1 : kKeys / PAGE_SIZE;
  const bool table_ahead = !CONTIGUOUS && begin % kKeys == 0;
  int next_pages[kPagesPerStep];
  auto fetch_pages = [&](int i) {
    if (table_ahead && i < my_steps) {
      const int key0 = begin + (warp + i * WARPS) * kKeys;
#pragma unroll
      for (int j = 0; j < kPagesPerStep; ++j)
        next_pages[j] = key0 + j * PAGE_SIZE < end ? page_id(p, a, b, key0 / PAGE_SIZE + j) : 0;
    }
  };
  // Copies this warp's i-th step into its ring slot; rows past the end become
  // zeros (an unused page may hold NaN, and 0 * NaN would survive P V). Every
  // call commits a group, empty or not, so the wait counts below stay uniform.
  auto load_step = [&](int i) {
    if (i < my_steps) {
      const int key0 = begin + (warp + i * WARPS) * kKeys;
      const unsigned k_tile = ring + (i % STAGES) * kStageBytes;
      const int c = lane % kChunks;
      int pages[kPagesPerStep];
#pragma unroll
      for (int j = 0; j < kPagesPerStep; ++j)
        pages[j] = next_pages[j];
      fetch_pages(i + 1);
#pragma unroll
      for (int it = 0; it < kKeys / kRowsPerPass; ++it) {
        const int r = lane / kChunks + it * kRowsPerPass;
        const bool valid = key0 + r < end;
        long long off = 0;
        if (valid && table_ahead) {
          // Row r's page: kRowsPerPass divides PAGE_SIZE, so it depends on `it` only.
          const int page = pages[(it * kRowsPerPass) / PAGE_SIZE];
          off = (((long long)page * p.kv_heads + kvh) * PAGE_SIZE + (key0 + r) % PAGE_SIZE) *
                HEAD_DIM;
        } else if (valid) {
          off = row_offset(p, a, b, kvh, key0 + r);
        }
        cp_async_16(k_tile + swizzle(r, c), a.k + off + c * 8, valid ? 16 : 0);
        cp_async_16(k_tile + kTileBytes + swizzle(r, c), a.v + off + c * 8, valid ? 16 : 0);
      }
    }
    cp_async_commit();
  };
  fetch_pages(0);
#pragma unroll
  for (int i = 0; i < STAGES - 1; ++i)
    load_step(i);
  cp_async_wait<STAGES - 2>();
  __syncthreads(); // Q rows copied by every warp

  unsigned q_frag[HEAD_DIM / 16][4];
#pragma unroll
  for (int kk = 0; kk < HEAD_DIM / 16; ++kk)
    ldmatrix_x4(q_frag[kk], q_tile + swizzle(lane & 15, 2 * kk + (lane >> 4)));

  // Rows g (h = 0) and g + 8 (h = 1, always padding) of the C fragments.
  float o_acc[HEAD_DIM / 8][4];
#pragma unroll
  for (int dj = 0; dj < HEAD_DIM / 8; ++dj)
    o_acc[dj][0] = o_acc[dj][1] = o_acc[dj][2] = o_acc[dj][3] = 0.f;
  float row_max[2] = {AP_NEG_INF, AP_NEG_INF}, row_sum[2] = {0.f, 0.f};

  for (int i = 0; i < my_steps; ++i) {
    cp_async_wait<STAGES - 2>();
    // Step i's rows, copied by every lane, are visible; and every lane is past
    // step i - 1, whose slot the next copy refills.
    __syncwarp();
    load_step(i + STAGES - 1);
    const unsigned k_tile = ring + (i % STAGES) * kStageBytes, v_tile = k_tile + kTileBytes;
    const int key0 = begin + (warp + i * WARPS) * kKeys;

    float s[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
    for (int kk = 0; kk < HEAD_DIM / 16; ++kk) {
      unsigned bk[4];
      ldmatrix_x4(bk, k_tile + swizzle((mi >> 1) * 8 + (lane & 7), 2 * kk + (mi & 1)));
      mma_16816<DTYPE>(s[0], q_frag[kk], bk[0], bk[1]);
      mma_16816<DTYPE>(s[1], q_frag[kk], bk[2], bk[3]);
    }
    if (ALIBI) { // rows g (< GROUP: real heads); raw scores, so the bias is divided by scale
#pragma unroll
      for (int j = 0; j < 2; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e)
          s[j][e] = __fmaf_rn(alibi_raw, float(keys.len - 1 - (key0 + j * 8 + 2 * t + e)), s[j][e]);
    }
    if (key0 + kKeys > end) {
#pragma unroll
      for (int j = 0; j < 2; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (key0 + j * 8 + 2 * t + (e & 1) >= end) s[j][e] = AP_NEG_INF;
    }

    // Online softmax per row (head), over the quad that shares it.
    float new_max[2], base[2];
    bool grew = false;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      new_max[h] = fmaxf(fmaxf(row_max[h], fmaxf(s[0][2 * h], s[0][2 * h + 1])),
                         fmaxf(s[1][2 * h], s[1][2 * h + 1]));
      new_max[h] = fmaxf(new_max[h], __shfl_xor_sync(0xffffffffu, new_max[h], 1));
      new_max[h] = fmaxf(new_max[h], __shfl_xor_sync(0xffffffffu, new_max[h], 2));
      grew |= new_max[h] != row_max[h];
      base[h] = new_max[h] == AP_NEG_INF ? 0.f : new_max[h] * scale_log2;
    }
    // Skipping the rescale when no row's max grew is exact (every factor is 1).
    if (__any_sync(0xffffffffu, grew)) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float alpha =
            new_max[h] == row_max[h] ? 1.f : fast_exp2(__fmaf_rn(row_max[h], scale_log2, -base[h]));
        row_sum[h] *= alpha;
#pragma unroll
        for (int dj = 0; dj < HEAD_DIM / 8; ++dj)
          o_acc[dj][2 * h] *= alpha, o_acc[dj][2 * h + 1] *= alpha;
      }
    }
    row_max[0] = new_max[0], row_max[1] = new_max[1];
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[j][e] = fast_exp2(__fmaf_rn(s[j][e], scale_log2, -base[e >> 1]));
        row_sum[e >> 1] += s[j][e];
      }

    // O += P V: the C layout of the two 16x8 score tiles is the A layout of P.
    unsigned pa[4];
    pa[0] = pack2<DTYPE>(s[0][0], s[0][1]);
    pa[1] = pack2<DTYPE>(s[0][2], s[0][3]);
    pa[2] = pack2<DTYPE>(s[1][0], s[1][1]);
    pa[3] = pack2<DTYPE>(s[1][2], s[1][3]);
#pragma unroll
    for (int dj = 0; dj < HEAD_DIM / 8; dj += 2) {
      unsigned bv[4];
      ldmatrix_x4_trans(bv, v_tile + swizzle((mi & 1) * 8 + (lane & 7), dj + (mi >> 1)));
      mma_16816<DTYPE>(o_acc[dj], pa, bv[0], bv[1]);
      mma_16816<DTYPE>(o_acc[dj + 1], pa, bv[2], bv[3]);
    }
  }

  // Merge the warps (a warp without steps keeps max -inf, sum 0). The ring is
  // idle once every copy has landed and every warp is past its loop.
  cp_async_wait<0>();
  __syncthreads();
  float *s_max = reinterpret_cast<float *>(smem);
  float *s_sum = s_max + WARPS * GROUP;
  float *s_acc = s_sum + WARPS * GROUP;
  const float sum = row_sum[0] + __shfl_xor_sync(0xffffffffu, row_sum[0], 1);
  const float quad_sum = sum + __shfl_xor_sync(0xffffffffu, sum, 2);
  if (g < GROUP) {
    if (t == 0) {
      s_max[warp * GROUP + g] = row_max[0] == AP_NEG_INF ? AP_NEG_INF : row_max[0] * scale_log2;
      s_sum[warp * GROUP + g] = quad_sum;
    }
#pragma unroll
    for (int dj = 0; dj < HEAD_DIM / 8; ++dj) {
      s_acc[(warp * GROUP + g) * HEAD_DIM + dj * 8 + 2 * t] = o_acc[dj][0];
      s_acc[(warp * GROUP + g) * HEAD_DIM + dj * 8 + 2 * t + 1] = o_acc[dj][1];
    }
  }
  __syncthreads();
  merge_states<WARPS, DTYPE>(p, a, s_max, s_sum, s_acc, b, kvh, part);
}
