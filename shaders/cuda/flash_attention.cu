// Flash attention forward (FlashAttention-2 schedule) on warp-level tensor
// cores: mma.sync m16n8k16 with ldmatrix, cp.async tiles in swizzled shared
// memory, double-buffered K/V, online softmax in float32.
//
// Constants: HEAD_DIM (64, 128), BLOCK_M (query rows per CTA), BLOCK_N (keys
// per step), WARPS, WARP_M_TILES (16-row tiles per warp: BLOCK_M = WARPS * 16 *
// WARP_M_TILES; with 2, every K/V fragment read from shared memory feeds two
// MMAs, halving shared-memory traffic per MMA, and Q fragments are re-read
// from shared memory instead of living in registers), STAGES (1: load then
// compute; 2: the next K/V tile loads while this one computes), CAUSAL (0/1),
// DTYPE (AP_DTYPE_FLOAT16 / AP_DTYPE_BFLOAT16), ALIBI (0/1, default 0: adds
// -slope_h * |i + Nk - Nq - j| to the scaled scores, slope_h from
// alibi_slopes[batch * p.alibi_stride + head]; with CAUSAL this is the
// causal form -slope_h * (i + Nk - Nq - j)). A constant, not a flag: at 0 the
// loop compiles to the same SASS as before ALiBi existed. ROPE (0 none, 1
// GPT-NeoX pairs, 2 GPT-J pairs; default 0): rotates the Q tile in shared
// memory once it lands, query i at position i + Nk - Nq, with the cos/sin
// tables rope_cos/rope_sin [>= Nk, D/2] (rows p.rope_table_row apart); K must
// come rotated (key j at position j), as flash_attention's rope= provides.
//
// Layout [B, H, N, D], any 16-byte-aligned strides on B, H, N, contiguous D.
// Grid (ceil(Nq / BLOCK_M), H, B); causal: (H * B, ceil(Nq / BLOCK_M)).
// Causal aligns bottom-right (FlashAttention 2): query i sees keys
// j <= i + Nk - Nq; a row that sees no key writes 0 and lse = -inf, a row
// with a NaN or +inf score among its visible keys NaN and lse = NaN. Offsets
// are 64-bit, so B*H*N*D may exceed 2^31.
#include "attention_params.h"
#include "flash_alibi.h"
#include "flash_output.h"
#include "kernel_layouts.h"
#include "mma.h"
#include "numeric.h"
#include "rope_pairs.h"

using namespace ap;
typedef half_bits T;

constexpr int kThreads = WARPS * 32;
constexpr int kChunks = HEAD_DIM / 8; // 16-byte chunks per row
constexpr int MT = WARP_M_TILES;
constexpr bool kQInRegisters = MT == 1;
// QK^T unrolls fully (ILP, no loop overhead) except where ptxas (NVRTC 13.0)
// then runs out of registers: Q re-read from shared memory at HEAD_DIM 128 with
// 64 keys per step or a single K/V stage; two steps at a time fit there.
constexpr bool kQkAtRegisterLimit = MT == 2 && HEAD_DIM == 128 && (BLOCK_N > 32 || STAGES == 1);
constexpr int kQkUnroll = kQkAtRegisterLimit ? 2 : HEAD_DIM / 16;
static_assert(BLOCK_M == WARPS * 16 * MT, "each warp owns WARP_M_TILES 16-row tiles");
static_assert(BLOCK_N % 16 == 0, "keys come in steps of 16");
static_assert(STAGES == 1 || STAGES == 2, "one or two K/V stages");
static_assert(DTYPE == AP_DTYPE_FLOAT16 || DTYPE == AP_DTYPE_BFLOAT16, "fp16 or bf16");

// Tiles are 32-bit shared-memory byte addresses (see smem_address in mma.h),
// rows swizzled (see swizzled in mma.h).
constexpr unsigned kRowBytes = HEAD_DIM * sizeof(T);
static_assert((BLOCK_M + 2 * STAGES * BLOCK_N) * kRowBytes ==
                  flash_shared_bytes(HEAD_DIM, BLOCK_M, BLOCK_N, STAGES),
              "the host sizes dynamic shared memory by kernel_layouts.h");
__device__ __forceinline__ unsigned swizzle(int row, int chunk) {
  return swizzled<kRowBytes>(row, chunk);
}

// Async copy of rows [row0, row0 + ROWS) of one head into a tile; rows at or
// past `rows_valid` become zeros (a NaN there would survive 0 * NaN in P.V).
// Each thread keeps one chunk column and walks rows kRowsPerPass apart, so its
// addresses are one base plus constant steps: per-chunk addresses hoisted out
// of the key loop would otherwise pin dozens of registers.
constexpr int kRowsPerPass = kThreads / kChunks;
static_assert(kThreads % kChunks == 0, "threads cover whole rows");
template <int ROWS>
__device__ __forceinline__ void load_tile(unsigned tile, const T *base, long long row_stride,
                                          int row0, int rows_valid) {
  const int c = threadIdx.x % kChunks, r0 = threadIdx.x / kChunks;
  const T *src = base + (long long)(row0 + r0) * row_stride + c * 8;
  const long long step = (long long)kRowsPerPass * row_stride;
  const int remaining = rows_valid - row0 - r0;
#pragma unroll
  for (int it = 0; it < (ROWS + kRowsPerPass - 1) / kRowsPerPass; ++it) {
    const int r = r0 + it * kRowsPerPass;
    if (ROWS % kRowsPerPass == 0 || r < ROWS) {
      const bool valid = it * kRowsPerPass < remaining;
      cp_async_16(tile + swizzle(r, c), valid ? src + it * step : base, valid ? 16 : 0);
    }
  }
}

#ifndef STITCH_MODE
#define STITCH_MODE 0
#endif
#ifndef ALIBI
#define ALIBI 0
#endif
#ifndef ROPE
#define ROPE 0
#endif
static_assert(ROPE >= 0 && ROPE <= 2, "ROPE: 0 none, 1 GPT-NeoX pairs, 2 GPT-J pairs");

// ROPE: rotates rows [0, ROWS) of a landed tile in shared memory, in place;
// tile row r is token pos0 + r of the tables rope_cos/rope_sin (float32, rows
// table_row floats apart). Rows at or past rows_valid are zero padding and stay
// so. Each thread takes the two 16-byte chunks of 8 pairs at a time, as the
// standalone pass does (rope_pairs.h), so both round alike. Not inlined: its
// registers then stay out of the key loop's allocation, and the loop compiles
// as the plain kernel's (inlined, the loop grew by ~50 instructions and ran
// 4-18 % slower on an H200, session 6; tests/test_variants.py checks the span).
template <int ROWS>
__device__ __noinline__ void rope_tile(unsigned tile, int rows_valid, int pos0,
                                       const float *__restrict__ rope_cos,
                                       const float *__restrict__ rope_sin, int table_row) {
  constexpr int kParts = HEAD_DIM / 16; // groups of 8 pairs per row
  constexpr int kItems = ROWS * kParts;
  // The table reads come from L2 or DRAM: issue a batch of them before using
  // any, so each thread waits about once per batch instead of once per chunk
  // (one at a time, the rotation of a 128-row Q tile cost +10.8 % of a causal
  // N=2048 attention on an H200 at be86440, against +0.1 % at N=8192).
  constexpr int kBatch = 4;
  for (int i0 = threadIdx.x; i0 < kItems; i0 += kBatch * kThreads) {
    float4 c[kBatch][2], s[kBatch][2];
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      const int i = i0 + b * kThreads, r = i / kParts, part = i % kParts;
      if (i < kItems && r < rows_valid) { // rows past rows_valid are padding
        rope_table_chunks(c[b], s[b], rope_cos, rope_sin,
                          (long long)(pos0 + r) * table_row + part * 8);
      }
    }
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      const int i = i0 + b * kThreads, r = i / kParts, part = i % kParts;
      if (i < kItems && r < rows_valid) {
        const unsigned first = tile + swizzle(r, ROPE == 2 ? 2 * part : part);
        const unsigned second = tile + swizzle(r, ROPE == 2 ? 2 * part + 1 : part + kParts);
        rope_rotate_shared<DTYPE, ROPE == 2>(first, second, c[b], s[b]);
      }
    }
  }
}

// The pieces take the ALiBi slope only when ALIBI is on, so Proto 2's
// function-table mode keeps its calling convention (and SASS) without it.
#if ALIBI
#define AP_ALIBI_PARAM , float alibi_slope
#define AP_ALIBI_TYPE , float
#define AP_ALIBI_ARG , alibi_slope
#else
#define AP_ALIBI_PARAM
#define AP_ALIBI_TYPE
#define AP_ALIBI_ARG
#endif

// Proto 2: the loop body as three pieces. STITCH_MODE 0 pastes them into the
// kernel (monolithic), 1 calls them as __forceinline__ functions, 2 calls them
// as __noinline__ functions through tables of device function pointers.
#if STITCH_MODE != 0
#if STITCH_MODE == 1
#define AP_PIECE __device__ __forceinline__
#else
#define AP_PIECE __device__ __noinline__
#endif
typedef float Scores[MT][BLOCK_N / 8][4];
typedef float Output[MT][HEAD_DIM / 8][4];
typedef unsigned QFragments[kQInRegisters ? HEAD_DIM / 16 : 1][4];

AP_PIECE void score_piece(unsigned q_tile, unsigned k_tile, const QFragments &q_frag, Scores &s,
                          int warp_row0, int lane) {
#include "flash_score.inc"
}

AP_PIECE void softmax_piece(Scores &s, float (&row_max)[MT][2], float (&row_sum)[MT][2],
                            Output &o_acc, float scale_log2, int n0, int m0, int diag, int seqlen_k,
                            int warp_row0, int g, int t AP_ALIBI_PARAM) {
#include "flash_softmax.inc"
}

AP_PIECE void accumulate_piece(const Scores &s, unsigned v_tile, Output &o_acc, int lane) {
#include "flash_accumulate.inc"
}

#if STITCH_MODE == 2
typedef void (*ScorePiece)(unsigned, unsigned, const QFragments &, Scores &, int, int);
typedef void (*SoftmaxPiece)(Scores &, float (&)[MT][2], float (&)[MT][2], Output &, float, int,
                             int, int, int, int, int, int AP_ALIBI_TYPE);
typedef void (*AccumulatePiece)(const Scores &, unsigned, Output &, int);
__device__ ScorePiece score_table[2] = {score_piece, score_piece};
__device__ SoftmaxPiece softmax_table[2] = {softmax_piece, softmax_piece};
__device__ AccumulatePiece accumulate_table[2] = {accumulate_piece, accumulate_piece};
#endif
#endif

extern "C" __global__ void __launch_bounds__(kThreads, 1)
    flash_attention(const AttentionParams p, const AttentionStrides st, const T *__restrict__ q,
                    const T *__restrict__ k, const T *__restrict__ v, T *__restrict__ o,
                    float *__restrict__ lse, const float *__restrict__ alibi_slopes,
                    const float *__restrict__ rope_cos, const float *__restrict__ rope_sin) {
  extern __shared__ __align__(128) unsigned char smem[];
  constexpr unsigned kTileBytes = BLOCK_N * kRowBytes;
  const unsigned q_tile = smem_address(smem);
  const unsigned k_tiles = q_tile + BLOCK_M * kRowBytes;
  const unsigned v_tiles = k_tiles + STAGES * kTileBytes;

  // Causal: the last query blocks have the most keys. The grid is then
  // (H * B, query blocks) and y, the slow index, counts down: the heaviest
  // blocks of every head go first and the lightest fill the tail (longest
  // first), where head-major order would end on a mix of heavy and light.
  const int m_block = CAUSAL ? int(gridDim.y - 1 - blockIdx.y) : int(blockIdx.x);
  const int head = CAUSAL ? int(blockIdx.x % p.heads) : int(blockIdx.y);
  const int batch = CAUSAL ? int(blockIdx.x / p.heads) : int(blockIdx.z);
  const int kv_head = head / (p.heads / p.kv_heads);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane >> 2, t = lane & 3;
  const int m0 = m_block * BLOCK_M;
  const int diag = p.seqlen_k - p.seqlen_q;
  const int seqlen_k = p.seqlen_k;

  const T *q_base = q + batch * st.q[0] + head * st.q[1];
  const T *k_base = k + batch * st.k[0] + kv_head * st.k[1];
  const T *v_base = v + batch * st.v[0] + kv_head * st.v[1];

  int n_end = (p.seqlen_k + BLOCK_N - 1) / BLOCK_N;
  if (CAUSAL) {
    const int last_row = min(m0 + BLOCK_M, p.seqlen_q) - 1;
    const long long last_key = (long long)last_row + diag;
    n_end = last_key < 0 ? 0 : min(n_end, int(last_key / BLOCK_N) + 1);
  }
  // ALiBi: key tiles nearest the block's diagonal first (flash_alibi.h).
#if ALIBI
  const int first_tile = nearest_first_start<BLOCK_M, BLOCK_N, CAUSAL>(n_end, m0, diag);
  const int tiles_below = first_tile, tiles_above = n_end - 1 - first_tile;
  const int both_sides = min(tiles_below, tiles_above);
  // A macro, not a function of n: without ALiBi the kernel's text, and so its
  // SASS, stays what it was (a lambda there changed 50 kernels' registers).
#define AP_KEY_TILE(n) nearest_first_tile(n, first_tile, both_sides, tiles_below > tiles_above)
#else
#define AP_KEY_TILE(n) (n)
#endif

  float o_acc[MT][HEAD_DIM / 8][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int dj = 0; dj < HEAD_DIM / 8; ++dj)
      o_acc[mt][dj][0] = o_acc[mt][dj][1] = o_acc[mt][dj][2] = o_acc[mt][dj][3] = 0.f;
  // Each thread holds rows g and g + 8 of each of its warp's 16-row tiles.
  float row_max[MT][2], row_sum[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
    row_max[mt][0] = row_max[mt][1] = AP_NEG_INF, row_sum[mt][0] = row_sum[mt][1] = 0.f;
  const float scale_log2 = p.scale * 1.4426950408889634f;
  // The ALiBi bias joins the raw scores q.k, which the softmax scales inside
  // its exp2: in those units it is -slope / scale per key of distance.
  const float alibi_slope =
      ALIBI ? -alibi_slopes[(long long)batch * p.alibi_stride + head] / p.scale : 0.f;
  const int warp_row0 = warp * 16 * MT; // first row of this warp within the CTA
  unsigned q_frag[kQInRegisters ? HEAD_DIM / 16 : 1][4];

  if (n_end > 0) {
    load_tile<BLOCK_M>(q_tile, q_base, st.q[2], m0, p.seqlen_q);
#if ROPE
    // Rotate the Q tile once, here, while the first K/V tiles load (query i is
    // position i + diag: bottom-right, as the causal mask aligns). K arrives
    // rotated: flash_attention rotates it once with the standalone pass, where
    // rotating each K tile here repeats the work for every query block
    // (+41-58 % of attention, session 5).
    cp_async_commit();
    load_tile<BLOCK_N>(k_tiles, k_base, st.k[2], AP_KEY_TILE(0) * BLOCK_N, p.seqlen_k);
    load_tile<BLOCK_N>(v_tiles, v_base, st.v[2], AP_KEY_TILE(0) * BLOCK_N, p.seqlen_k);
    cp_async_commit();
    cp_async_wait<1>(); // this thread's Q chunks have landed
    __syncthreads();    // and every thread's
    rope_tile<BLOCK_M>(q_tile, p.seqlen_q - m0, m0 + diag, rope_cos, rope_sin, p.rope_table_row);
    // The key loop's first barrier orders these writes before any warp reads Q.
#else
    load_tile<BLOCK_N>(k_tiles, k_base, st.k[2], AP_KEY_TILE(0) * BLOCK_N, p.seqlen_k);
    load_tile<BLOCK_N>(v_tiles, v_base, st.v[2], AP_KEY_TILE(0) * BLOCK_N, p.seqlen_k);
    cp_async_commit();
#endif
  }

  for (int n = 0; n < n_end; ++n) {
    const int stage = STAGES == 2 ? (n & 1) : 0;
    cp_async_wait<0>();
    // Tile n has landed, and every warp is done with the stage reloaded below.
    __syncthreads();
    if (kQInRegisters && n == 0) {
#pragma unroll
      for (int kk = 0; kk < HEAD_DIM / 16; ++kk)
        ldmatrix_x4(q_frag[kQInRegisters ? kk : 0],
                    q_tile + swizzle(warp_row0 + (lane & 15), 2 * kk + (lane >> 4)));
    }
    if (STAGES == 2 && n + 1 < n_end) {
      const int next = AP_KEY_TILE(n + 1) * BLOCK_N;
      load_tile<BLOCK_N>(k_tiles + (stage ^ 1) * kTileBytes, k_base, st.k[2], next, p.seqlen_k);
      load_tile<BLOCK_N>(v_tiles + (stage ^ 1) * kTileBytes, v_base, st.v[2], next, p.seqlen_k);
      cp_async_commit();
    }
    const unsigned k_tile = k_tiles + stage * kTileBytes;
    const unsigned v_tile = v_tiles + stage * kTileBytes;

    const int n0 = AP_KEY_TILE(n) * BLOCK_N;
    float s[MT][BLOCK_N / 8][4];
#if STITCH_MODE == 0
    // The order is the algorithm; keep clang-format from sorting it.
    // clang-format off
#include "flash_score.inc"
#include "flash_softmax.inc"
#include "flash_accumulate.inc"
    // clang-format on
#elif STITCH_MODE == 1
    score_piece(q_tile, k_tile, q_frag, s, warp_row0, lane);
    softmax_piece(s, row_max, row_sum, o_acc, scale_log2, n0, m0, diag, seqlen_k, warp_row0, g,
                  t AP_ALIBI_ARG);
    accumulate_piece(s, v_tile, o_acc, lane);
#else
    // Through tables of device function pointers indexed by a runtime value the
    // compiler cannot see through (p.variant is 0; both entries are valid).
    score_table[p.variant & 1](q_tile, k_tile, q_frag, s, warp_row0, lane);
    softmax_table[p.variant & 1](s, row_max, row_sum, o_acc, scale_log2, n0, m0, diag, seqlen_k,
                                 warp_row0, g, t AP_ALIBI_ARG);
    accumulate_table[p.variant & 1](s, v_tile, o_acc, lane);
#endif

    if (STAGES == 1 && n + 1 < n_end) {
      __syncthreads(); // every warp is done with the single stage
      const int next = AP_KEY_TILE(n + 1) * BLOCK_N;
      load_tile<BLOCK_N>(k_tiles, k_base, st.k[2], next, p.seqlen_k);
      load_tile<BLOCK_N>(v_tiles, v_base, st.v[2], next, p.seqlen_k);
      cp_async_commit();
    }
  }

  // Finish: full row sums across the quad, normalize, store.
  T *o_base = o + batch * st.o[0] + head * st.o[1];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float sum = quad_sum(row_sum[mt][h]);
      const int row = m0 + warp_row0 + mt * 16 + g + 8 * h;
      if (row >= p.seqlen_q) continue;
      const bool empty = sum == 0.f;
      const float m = row_max[mt][h];
      const float inv = output_scale<DTYPE>(sum, empty, m, scale_log2);
      T *o_row = o_base + (long long)row * st.o[2];
#pragma unroll
      for (int dj = 0; dj < HEAD_DIM / 8; ++dj)
        *reinterpret_cast<unsigned *>(o_row + dj * 8 + 2 * t) =
            pack2<DTYPE>(o_acc[mt][dj][2 * h] * inv, o_acc[mt][dj][2 * h + 1] * inv);
      if ((p.flags & AP_FLAG_RETURN_LSE) && t == 0) {
        const long long index = ((long long)batch * p.heads + head) * p.seqlen_q + row;
        lse[index] = empty ? AP_NEG_INF : m * p.scale + __logf(sum);
      }
    }
}
