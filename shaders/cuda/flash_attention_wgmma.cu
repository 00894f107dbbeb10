// Flash attention forward on Hopper warpgroup tensor cores (sm_90a), ablation
// steps (a)-(c) of Proto 1's Hopper path. Each 128-thread warpgroup owns 64
// query rows; S = Q K^T is an SS wgmma (both operands in shared memory), O +=
// P V an RS wgmma (P from registers). K/V tiles are double-buffered; no warp
// specialization yet. Step (a) loads with cp.async by all threads and waits for
// each GEMM before using it; step (b) issues S(n) and P(n-1) V(n-1) back to
// back and runs step n's softmax while the P V wgmma still runs (the output
// rescale waits for it); step (c) is (b) with TMA loads by one thread.
//
// Constants: HEAD_DIM (64, 128), BLOCK_M (64: one warpgroup, 128: two, 192:
// three, steps (d)/(e) only),
// BLOCK_N (64, 128: keys per step, the N of the S wgmma), CAUSAL (0/1),
// DTYPE (AP_DTYPE_FLOAT16 / AP_DTYPE_BFLOAT16), HOPPER_STEP (1 = step (a),
// 2 = step (b), 3 = step (c): (b) with TMA loads by one thread and mbarriers,
// the kernel then takes TMA descriptors of q, k and v; 4 = step (d): (c) with
// warp specialization, one producer warpgroup issuing the TMA loads into a
// full/empty mbarrier ring and giving its registers to the consumer warpgroups
// (setmaxnreg); 5 = step (e): (d) with the two consumer warpgroups taking
// turns at the tensor cores (ping-pong); docs/hopper-kernel.md), ALIBI (0/1,
// default 0: adds ALiBi's bias as flash_attention.cu does), ROPE (0 none, 1
// GPT-NeoX pairs, 2 GPT-J pairs: rotates the Q tile once it lands, from float32
// tables as flash_attention.cu does; K must come rotated). With either, the
// kernel takes the slopes, cos and sin pointers after lse (0 where unused).
// KEY_SPLIT (0/1, PERSISTENT without CAUSAL, ALIBI or ROPE): the persistent
// grid's last, partly filled round of items runs as parts of each item's key
// range (flash_key_split.h); the kernel then takes the parts' scratch pointer
// after lse, and flash_split_merge.cu combines the parts.
// O_TMA (0-2, steps (d)/(e), not KEY_SPLIT): each consumer warpgroup writes
// its 64 output rows into a shared-memory tile and one of its threads stores
// them by TMA through a fourth descriptor (the output's, after v's), instead
// of each thread storing its pairs to global memory. 1: the tile is its own,
// after the V stages (the host adds it where it fits). 2: the tile is the
// item's last V stage (no more shared memory; BLOCK_N >= BLOCK_M): every
// warpgroup's last P V on it has completed first (a barrier of the consumer
// warpgroups), and the stage is released to the producer once the store has
// read it. EARLY_Q (0/1, steps (d)/(e)): the consumers
// release an item's Q once its last S wgmma has completed, before that step's
// softmax, instead of after the key loop, so the next item's Q loads sooner.
//
// Same contract as flash_attention.cu: layout [B, H, N, D], 16-byte-aligned
// strides on B, H, N, contiguous D; grid (ceil(Nq / BLOCK_M), H, B), causal
// (H * B, query blocks) longest first; causal aligns bottom-right; a row that
// sees no key writes 0 and lse = -inf; 64-bit offsets.
//
// Shared memory: Q, K and V tiles in the sw128 layout of wgmma_layout.h
// (column blocks of 64 elements, 128-byte rows, 1024-byte swizzle atoms).
// Q and K are K-major operands (D is the reduction of S = Q K^T and D is each
// row). For O = P V the reduction runs over keys, which are V's rows: V is
// the B operand MN-major, read with the transpose bit (allowed for 16-bit
// types), so V needs no transposing copy.
#include "attention_params.h"
#include "exp2_poly.h"
#include "flash_alibi.h"
#include "flash_key_split.h"
#include "flash_output.h"
#include "mma.h"
#include "numeric.h"
#include "rope_pairs.h"
#include "tma.h"
#include "wgmma.h"

using namespace ap;
typedef half_bits T;

#ifndef HOPPER_STEP
#define HOPPER_STEP 1
#endif
#ifndef ALIBI
#define ALIBI 0
#endif
#ifndef ROPE
#define ROPE 0
#endif
#ifndef PERSISTENT
#define PERSISTENT 0
#endif
#ifndef EXP2_POLY
#define EXP2_POLY 0
#endif
#ifndef ROPE_TABLES
#define ROPE_TABLES 0
#endif
#ifndef KEY_SPLIT
#define KEY_SPLIT 0
#endif
#ifndef O_TMA
#define O_TMA 0
#endif
#ifndef EARLY_Q
#define EARLY_Q 0
#endif
#ifndef ROPE_AHEAD
#define ROPE_AHEAD 0
#endif
// ALIBI_WINDOW 1: each item skips the key tiles whose every exponent is below
// exp2's zero (alibi_window; docs/variants-cost.md, session 22), bounded from
// the largest |q| of the item's head and |k| of its kv head, which
// flash_attention_wgmma_norms writes first (alibi_norms).
#ifndef ALIBI_WINDOW
#define ALIBI_WINDOW 0
#endif
// KEY_ORDER (key_tile): 0 ascending, 1 nearest the block's diagonal first
// (flash_alibi.h), 2 the diagonal's tile then down to the first, then up from
// past the diagonal (one turn), 3 the diagonal's tile then the others
// ascending. ALiBi takes 1 by default (its max settles in the first steps);
// the host's HopperConfig.key_order picks another (flash.hopper_config).
#ifndef KEY_ORDER
#define KEY_ORDER (ALIBI ? 1 : 0)
#endif
static_assert(KEY_ORDER >= 0 && KEY_ORDER <= 3,
              "KEY_ORDER: 0 ascending, 1 nearest first, 2 one turn, 3 diagonal then ascending");
static_assert(!KEY_SPLIT || KEY_ORDER == 0, "KEY_SPLIT: ascending keys");
static_assert(!ALIBI_WINDOW || (ALIBI && KEY_ORDER && HOPPER_STEP >= 4),
              "ALIBI_WINDOW: ALiBi, a key order from the diagonal, steps (d), (e)");
static_assert(O_TMA >= 0 && O_TMA <= 2 && (!O_TMA || (HOPPER_STEP >= 4 && !KEY_SPLIT)),
              "O_TMA: 0, 1 or 2, steps (d), (e) without KEY_SPLIT");
static_assert(!EARLY_Q || HOPPER_STEP >= 4, "EARLY_Q: steps (d), (e)");
static_assert(!KEY_SPLIT || (PERSISTENT && !CAUSAL && !ALIBI && !ROPE),
              "KEY_SPLIT: the persistent grid without the causal mask, ALiBi or RoPE");
static_assert(ROPE >= 0 && ROPE <= 2, "ROPE: 0 none, 1 GPT-NeoX pairs, 2 GPT-J pairs");
// ROPE_AHEAD 1: Q has two buffers, and warps 1-3 of the producer warpgroup
// rotate item i + 1's Q in one while the consumers work on item i from the
// other (its load is issued with item i's first K and V tiles); the consumers
// wait on a "Q rotated" barrier and hold no rotation code. Without it the
// consumers rotate each item's Q between two items, with the tensor cores idle
// (bench/diag/rope_grid.py). Two consumer warpgroups, steps (d)/(e).
static_assert(!ROPE_AHEAD || (ROPE && HOPPER_STEP >= 4 && BLOCK_M == 128 && !ROPE_TABLES),
              "ROPE_AHEAD: ROPE at steps (d), (e) on two consumer warpgroups, not ROPE_TABLES");
constexpr int kQStages = ROPE_AHEAD ? 2 : 1;
#if ROPE_AHEAD
constexpr int kRotators = 96; // producer warps 1-3
#endif

constexpr int kWarpgroups = BLOCK_M / 64; // consumer warpgroups: 64 query rows each
// Step (d) adds warpgroup 0, the producer; the consumers are 1..kWarpgroups.
constexpr int kProducers = HOPPER_STEP >= 4 ? 1 : 0;
constexpr int kThreads = (kWarpgroups + kProducers) * 128;
constexpr int kChunks = HEAD_DIM / 8; // 16-byte chunks per row
constexpr int MT = 1;                 // flash_softmax.inc: one 16-row slice per warp
static_assert(HOPPER_STEP >= 1 && HOPPER_STEP <= 5, "steps (a) to (e) exist");
static_assert(!PERSISTENT || HOPPER_STEP >= 4, "PERSISTENT: the warp-specialized steps (d), (e)");
// EXP2_POLY n > 0: one softmax exponent in n on the FMA pipe (exp2_poly.h),
// the others on MUFU; steps (b)-(e) (softmax_before_rescale).
static_assert(EXP2_POLY >= 0 && (EXP2_POLY == 0 || HOPPER_STEP >= 2), "EXP2_POLY: steps (b)-(e)");
// ROPE_TABLES 1: the producer copies each item's cos and sin rows into shared
// memory with its Q tile (bulk copies on Q's barrier), so the consumers'
// rotation of Q, which on the persistent grid sits between two items with
// nothing to hide under, reads shared memory instead of waiting on L2.
static_assert(!ROPE_TABLES || (ROPE && HOPPER_STEP >= 4), "ROPE_TABLES: ROPE at steps (d), (e)");
// PERSISTENT with ROPE rotates each item's Q inside the item loop; its
// warpgroup barrier after the rotation names its id in a register, because a
// branch between two immediate ids there made ptxas serialize the wgmmas
// (C7520). Where ptxas spills around the rotation's call the host does not
// build it (flash_hopper.rope_fits_persistent).
// ALIBI 2: ALiBi's key part on the tensor cores (alibi_key_operand), in the
// warp-specialized loop of steps (d)/(e). ALIBI 3: the key part as the S
// wgmma's start value (alibi_key_start), written after the previous step's P
// is packed, off the path from S to P; steps (d)/(e).
static_assert(ALIBI >= 0 && ALIBI <= 3,
              "ALIBI: 0 none, 1 per score, 2 key part on tensor cores, 3 key part as S's start");
static_assert(ALIBI < 2 || HOPPER_STEP >= 4, "ALIBI 2, 3: steps (d), (e)");
// Step (e): the consumer warpgroups take turns issuing their GEMMs, so one's
// softmax runs while another's wgmmas keep the tensor cores busy (with one
// consumer warpgroup, BLOCK_M = 64, there is no one to alternate with); three
// take them in a ring.
constexpr bool kPingPong = HOPPER_STEP >= 5 && kWarpgroups >= 2;
static_assert(BLOCK_M == 64 || BLOCK_M == 128 || BLOCK_M == 192,
              "one to three consumer warpgroups");
static_assert(BLOCK_M != 192 || HOPPER_STEP >= 4, "three consumer warpgroups: steps (d), (e)");
// Step (d)'s register split (setmaxnreg; __launch_bounds__(kThreads, 1) gives
// each thread 65536 / kThreads at launch, 168 for 384 threads and 128 for
// 512): the producer keeps 24, the consumers share the rest in steps of 8.
// ROPE_AHEAD: the rotating warps take 72 (8 pairs a unit, 2 units' table
// loads in flight; at 56 their loop spilled), the consumers 216.
constexpr int kProducerRegs = ROPE_AHEAD ? 72 : 24;
constexpr int kConsumerRegs = kWarpgroups == 3 ? 160 : ROPE_AHEAD ? 216 : 240;
// setmaxnreg moves registers within what the CTA holds from launch (its
// threads times the launch count, a multiple of 8), not the whole file: a
// split asking for more waits at setmaxnreg.inc forever (session 15: 32 + 2 x
// 240 a thread of 384 threads asked 65,536 of the 64,512 held, and hung).
constexpr int kLaunchRegs = 65536 / kThreads / 8 * 8;
static_assert(kProducerRegs * 128 + kConsumerRegs * kWarpgroups * 128 <= kLaunchRegs * kThreads,
              "the registers the CTA holds from launch cover every warpgroup's budget");
static_assert(BLOCK_N == 64 || BLOCK_N == 128 || BLOCK_N == 160 || BLOCK_N == 176 || BLOCK_N == 192,
              "wgmma wrappers exist for N = 64, 128, 160, 176, 192");
static_assert(HEAD_DIM == 64 || HEAD_DIM == 128, "wgmma wrappers exist for N = 64, 128");
static_assert(DTYPE == AP_DTYPE_FLOAT16 || DTYPE == AP_DTYPE_BFLOAT16, "fp16 or bf16");

constexpr unsigned kQBytes = BLOCK_M * HEAD_DIM * 2;
constexpr unsigned kKvBytes = BLOCK_N * HEAD_DIM * 2;
static_assert(kQBytes % 1024 == 0 && kKvBytes % 1024 == 0, "tiles stay 1024-byte aligned");
// ROPE_TABLES: the item's cos rows, then its sin rows, HEAD_DIM / 2 floats a
// row, after the V stages (the host adds them to the dynamic shared memory).
constexpr unsigned kTableRowBytes = HEAD_DIM / 2 * 4;
constexpr unsigned kTableBytes = ROPE_TABLES ? BLOCK_M * kTableRowBytes : 0;
// O_TMA 1: the output tile (sw128, as Q's), after the V stages; O_TMA 2 puts
// it in a V stage.
constexpr unsigned kOBytes = O_TMA == 1 ? BLOCK_M * HEAD_DIM * 2 : 0;
static_assert(O_TMA != 2 || BLOCK_N >= BLOCK_M, "O_TMA 2: a V stage holds the output tile");
static_assert(kQBytes + 4 * kKvBytes + 1024 == flash_wgmma_shared_bytes(HEAD_DIM, BLOCK_M, BLOCK_N),
              "the host sizes dynamic shared memory by wgmma_layout.h");

// Async copy of rows [row0, row0 + ROWS) of one head into a sw128 tile; rows
// at or past `rows_valid` become zeros (a NaN there would survive 0 * NaN in
// P V). One thread per chunk column, rows kRowsPerPass apart.
constexpr int kRowsPerPass = kThreads / kChunks;
static_assert(kThreads % kChunks == 0, "threads cover whole rows");
template <int ROWS>
__device__ __forceinline__ void load_tile(unsigned tile, const T *base, long long row_stride,
                                          int row0, int rows_valid) {
  static_assert(ROWS % kRowsPerPass == 0, "whole passes");
  const int c = threadIdx.x % kChunks, r0 = threadIdx.x / kChunks;
  const T *src = base + (long long)(row0 + r0) * row_stride + c * 8;
  const long long step = (long long)kRowsPerPass * row_stride;
  const int remaining = rows_valid - row0 - r0;
#pragma unroll
  for (int it = 0; it < ROWS / kRowsPerPass; ++it) {
    const bool valid = it * kRowsPerPass < remaining;
    cp_async_16(tile + sw128_offset(ROWS, r0 + it * kRowsPerPass, c),
                valid ? src + it * step : base, valid ? 16 : 0);
  }
}

// Issues S = Q K^T for this warpgroup's 64 rows: D / 16 SS wgmmas into s
// (the first overwrites it). The caller fences before and commits after.
// Each wgmma's descriptors are built from the address (here and in the P V
// loops): one descriptor per tile plus a 32-bit add per step took fewer SASS
// instructions but measured 2.3-2.6 % slower at D=128 full 4K-8K (H200,
// session 12, docs/gpu-notes.md).
// ALIBI 3: the first k16 step accumulates onto s's start value too.
__device__ __forceinline__ void issue_scores(float (&s)[BLOCK_N / 8][4], unsigned q_wg,
                                             unsigned k_tile) {
#pragma unroll
  for (int kk = 0; kk < HEAD_DIM / 16; ++kk)
    wgmma_ss<DTYPE>(s, kmajor_sw128(q_wg + kmajor_k16_offset(BLOCK_M, kk)),
                    kmajor_sw128(k_tile + kmajor_k16_offset(BLOCK_N, kk)), kk > 0 || ALIBI == 3);
}

// S = Q K^T, waited for (step (a)).
__device__ __forceinline__ void score(float (&s)[BLOCK_N / 8][4], unsigned q_wg, unsigned k_tile) {
  fence_operands(s);
  wgmma_fence();
  issue_scores(s, q_wg, k_tile);
  wgmma_commit();
  wgmma_wait<0>();
  fence_operands(s);
}

// P as the A operands of the P V wgmma (see wgmma.h: a 16-column accumulator
// slice is an A fragment).
__device__ __forceinline__ void pack_p(unsigned (&a)[BLOCK_N / 16][4],
                                       const float (&s)[BLOCK_N / 8][4]) {
#pragma unroll
  for (int kk = 0; kk < BLOCK_N / 16; ++kk) {
    a[kk][0] = pack2<DTYPE>(s[2 * kk][0], s[2 * kk][1]);
    a[kk][1] = pack2<DTYPE>(s[2 * kk][2], s[2 * kk][3]);
    a[kk][2] = pack2<DTYPE>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
    a[kk][3] = pack2<DTYPE>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
  }
}

// O += P V: BLOCK_N / 16 RS wgmmas, P packed from the softmax's f32 scores.
__device__ __forceinline__ void accumulate(const float (&s)[BLOCK_N / 8][4],
                                           float (&o)[HEAD_DIM / 8][4], unsigned v_tile) {
  unsigned a[BLOCK_N / 16][4];
  pack_p(a, s);
#pragma unroll
  for (int kk = 0; kk < BLOCK_N / 16; ++kk)
    fence_operands(a[kk]);
  fence_operands(o);
  wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < BLOCK_N / 16; ++kk)
    wgmma_rs<DTYPE>(o, a[kk], mnmajor_sw128(v_tile + mnmajor_k16_offset(kk), BLOCK_N), 1);
  wgmma_commit();
  wgmma_wait<0>();
  fence_operands(o);
}

// Whether ALiBi's distance row + diag - key is taken as linear over key tile
// n0, with the sign of a tile wholly before every row's diagonal position:
// such a tile, or under CAUSAL every tile (ALIBI 1, 3), since the keys past a
// row's diagonal are masked and the distance is linear in what remains (the
// diagonal's tiles too). Not ALIBI 2: its key part carries the slope to about
// 2^-17 (alibi_key_operand), and on the diagonal's tiles, where most of a
// row's weight sits, that moved the lse by up to 5e-4 (H200, b2093a2).
__device__ __forceinline__ bool alibi_keys_before(int n0, int m0, int diag) {
  return (CAUSAL && ALIBI != 2) || n0 + BLOCK_N - 1 <= m0 + diag;
}
// A tile wholly after every row's diagonal position (none under CAUSAL).
__device__ __forceinline__ bool alibi_keys_after(int n0, int m0, int diag) {
  return !CAUSAL && n0 >= m0 + BLOCK_M - 1 + diag;
}

#if HOPPER_STEP >= 2
// Step (b): flash_softmax.inc's arithmetic, in its order, on this warp's 16
// rows, except the rescale of the output: a P V wgmma may still be writing
// o_acc. Returns whether any row of the warp raised its max; alpha then holds
// each row's factor for o_acc, applied once that wgmma has completed. Rescaling
// o_acc after the previous P V and before the next is what step (a) does, so
// both steps compute the same floats.
__device__ __forceinline__ bool
softmax_before_rescale(float (&s)[BLOCK_N / 8][4], float (&row_max)[2], float (&row_sum)[2],
                       float (&alpha)[2], float scale_log2, int n0, int m0, int warp_row0, int diag,
                       int seqlen_k, int g, int t, float alibi_slope) {
#if ALIBI
  // As flash_softmax.inc: the bias joins the raw scores before the mask, its
  // row part (alibi_row) the max and the exponent.
  float alibi_rows[1][2]; // one slice: flash_alibi.h's [MT][..] shapes with MT = 1
  const bool keys_before = alibi_keys_before(n0, m0, diag);
  const bool keys_after = alibi_keys_after(n0, m0, diag);
  if (ALIBI == 3) {
    // The key part came as S's start value (alibi_key_start): the row part,
    // and on the diagonal's tiles the bias per score.
    alibi_bias<1, BLOCK_N / 8, false>(reinterpret_cast<float (&)[1][BLOCK_N / 8][4]>(s), alibi_rows,
                                      alibi_slope, keys_before, keys_after, m0 + warp_row0, diag,
                                      n0, g, t);
  } else if (ALIBI == 2 && (keys_before || keys_after)) {
    // The key part slope * (key - n0) came with S (alibi_key_operand): only
    // the row part, from the tile's first key.
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float d0 = float(m0 + warp_row0 + g + 8 * h + diag - n0);
      alibi_rows[0][h] = keys_before ? alibi_slope * d0 : -alibi_slope * d0;
    }
  } else {
    alibi_bias(reinterpret_cast<float (&)[1][BLOCK_N / 8][4]>(s), alibi_rows, alibi_slope,
               keys_before, keys_after, m0 + warp_row0, diag, n0, g, t);
  }
  const float (&alibi_row)[2] = alibi_rows[0];
#endif
  if (n0 + BLOCK_N > seqlen_k || (CAUSAL && n0 + BLOCK_N - 1 > m0 + diag)) {
#pragma unroll
    for (int j = 0; j < BLOCK_N / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int col = n0 + j * 8 + 2 * t + (e & 1);
        const int row = m0 + warp_row0 + g + 8 * (e >> 1);
        if (col >= seqlen_k || (CAUSAL && col > row + diag)) s[j][e] = AP_NEG_INF;
      }
  }
#if ALIBI
  // The tile's max of s, then its row part: max(s + r) = max(s) + r.
  float new_max[2] = {AP_NEG_INF, AP_NEG_INF}, base[2];
#else
  float new_max[2] = {row_max[0], row_max[1]}, base[2];
#endif
  bool grew = false;
#pragma unroll
  for (int j = 0; j < BLOCK_N / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      new_max[e >> 1] = fmaxf(new_max[e >> 1], s[j][e]);
#if ALIBI
  new_max[0] = fmaxf(row_max[0], new_max[0] + alibi_row[0]);
  new_max[1] = fmaxf(row_max[1], new_max[1] + alibi_row[1]);
#endif
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    new_max[h] = fmaxf(new_max[h], __shfl_xor_sync(0xffffffffu, new_max[h], 1));
    new_max[h] = fmaxf(new_max[h], __shfl_xor_sync(0xffffffffu, new_max[h], 2));
    grew |= new_max[h] != row_max[h];
    base[h] = new_max[h] == AP_NEG_INF ? 0.f : new_max[h] * scale_log2;
  }
  const bool any_grew = __any_sync(0xffffffffu, grew);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    alpha[h] =
        new_max[h] == row_max[h] ? 1.f : fast_exp2(__fmaf_rn(row_max[h], scale_log2, -base[h]));
    if (any_grew) row_sum[h] *= alpha[h];
    row_max[h] = new_max[h];
#if ALIBI
    base[h] = __fmaf_rn(-alibi_row[h], scale_log2, base[h]); // exp2((s + r) * scale - base)
#endif
  }
#pragma unroll
  for (int j = 0; j < BLOCK_N / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float x = __fmaf_rn(s[j][e], scale_log2, -base[e >> 1]);
      // EXP2_POLY: every n-th score (a compile-time choice: j and e unroll).
      const bool poly = EXP2_POLY > 0 && (j * 4 + e) % (EXP2_POLY > 0 ? EXP2_POLY : 1) == 0;
      s[j][e] = poly ? exp2_poly(x) : fast_exp2(x);
      row_sum[e >> 1] += s[j][e];
    }
  return any_grew;
}

// Issues O += P V on `a`; the caller waits. Keeping `a` alive until the wait
// (fence_operands after it) stops the compiler from reusing its registers
// while the wgmma still reads them.
__device__ __forceinline__ void issue_pv(float (&o)[HEAD_DIM / 8][4],
                                         const unsigned (&a)[BLOCK_N / 16][4], unsigned v_tile) {
#pragma unroll
  for (int kk = 0; kk < BLOCK_N / 16; ++kk)
    wgmma_rs<DTYPE>(o, a[kk], mnmajor_sw128(v_tile + mnmajor_k16_offset(kk), BLOCK_N), 1);
  wgmma_commit();
}

// The last key step's P V (its P packed in `a`, V at v_tile), waited for; `a`
// stays live until the wgmma has read it.
__device__ __forceinline__ void last_pv(float (&o)[HEAD_DIM / 8][4], unsigned (&a)[BLOCK_N / 16][4],
                                        unsigned v_tile) {
#pragma unroll
  for (int kk = 0; kk < BLOCK_N / 16; ++kk)
    fence_operands(a[kk]);
  fence_operands(o);
  wgmma_fence();
  issue_pv(o, a, v_tile);
  wgmma_wait<0>();
  fence_operands(o);
#pragma unroll
  for (int kk = 0; kk < BLOCK_N / 16; ++kk)
    fence_operands(a[kk]);
}
#endif

// O times each row's alpha once its max has grown (after P V(n - 1) completed).
__device__ __forceinline__ void rescale_output(float (&o)[HEAD_DIM / 8][4],
                                               const float (&alpha)[2]) {
#pragma unroll
  for (int h = 0; h < 2; ++h)
#pragma unroll
    for (int dj = 0; dj < HEAD_DIM / 8; ++dj) {
      o[dj][2 * h] *= alpha[h];
      o[dj][2 * h + 1] *= alpha[h];
    }
}

// ALIBI 2: on a key tile wholly on one side of the block's diagonal the bias's
// key part is c * (key - n0) with c = -+slope (flash_alibi.h), linear in the
// key, so one more k16 step of the S wgmma adds it: A (registers) holds c as
// hi + lo halves of the input dtype in columns 0 and 1 of every row (thread
// quad t = 0 holds columns 0-1; everything else 0), B (alibi_keys, shared)
// holds the key index k - n0 in every column of row k - n0 (exact: at most
// 192). c's split keeps it to about 2^-17 of c (bf16), where c alone in bf16
// would be 2^-9 of up to 1800 raw units at 192 keys. On the diagonal's tiles
// without CAUSAL c = 0 (their |.| is per score in the softmax) and the step
// adds zeros (under CAUSAL too: alibi_keys_before).
__device__ __forceinline__ void alibi_key_operand(unsigned (&a)[4], bool keys_before,
                                                  bool keys_after, float alibi_slope, int t) {
  const float c = keys_before ? -alibi_slope : keys_after ? alibi_slope : 0.f;
  const float hi = round_to<DTYPE>(c);
  const unsigned pair = t == 0 ? pack2<DTYPE>(hi, c - hi) : 0u;
  a[0] = a[1] = pair;
  a[2] = a[3] = 0u;
}

// ALIBI 3: S's start value on key tile n0, which the S wgmma accumulates
// onto. On a tile wholly on one side of the block's diagonal it is the bias's
// key part -+slope * jc (jc = j * 8 + c, alibi_bias's key offset without the
// thread's 2t, which stays in the row part); on the diagonal's tiles without
// CAUSAL 0 (their |.| is per score in the softmax). The same value for both rows of a column:
// one multiply a score, written before the next S wgmma is issued, where the
// per-score FFMA of ALIBI 1 sits between S's completion and the row max.
__device__ __forceinline__ void alibi_key_start(float (&s)[BLOCK_N / 8][4], int n0, int m0,
                                                int diag, float alibi_slope) {
  const bool keys_before = alibi_keys_before(n0, m0, diag);
  const bool keys_after = alibi_keys_after(n0, m0, diag);
  float per_key = keys_before ? -alibi_slope : keys_after ? alibi_slope : 0.f;
  // Opaque to the compiler, so the products stay in the key loop: under
  // CAUSAL they are the same every tile, and hoisted they stayed live across
  // the loop (238 registers on 128 x 192, spilled).
  asm volatile("" : "+f"(per_key));
#pragma unroll
  for (int j = 0; j < BLOCK_N / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      s[j][e] = per_key * float(j * 8 + (e & 1));
}

// Step (e): warpgroup w's turn is named barrier 1 + w (256 threads: w's 128
// sync, the previous warpgroup's 128 arrive); passing it arrives on the next
// warpgroup's. Two warpgroups pick their barrier by an immediate id, three
// (a ring) by one in a register, so no branch sits between a wgmma and its
// wait (ptxas serialized the wgmmas there: C7514).
__device__ __forceinline__ void wait_turn(int wg) {
  if constexpr (kWarpgroups == 2)
    wg == 0 ? named_barrier_sync<1, 256>() : named_barrier_sync<2, 256>();
  else
    named_barrier_sync<256>(1u + unsigned(wg));
}
__device__ __forceinline__ void pass_turn(int wg) {
  if constexpr (kWarpgroups == 2) {
    if (wg == 0)
      named_barrier_arrive<2, 256>();
    else
      named_barrier_arrive<1, 256>();
  } else {
    named_barrier_arrive<256>(1u + unsigned(wg + 1 == kWarpgroups ? 0 : wg + 1));
  }
}

#if HOPPER_STEP >= 3
// Rows [row0, row0 + ROWS) of one head as a sw128 tile: one TMA box per
// 64-column block (128-byte rows, the 128-byte swizzle the wgmma descriptors
// expect), all completing on `bar`, which is told the tile's bytes first.
template <int ROWS>
__device__ __forceinline__ void tma_tile(unsigned tile, const TensorMap &map, unsigned bar,
                                         int row0, int head, int batch) {
  mbarrier_arrive_expect_tx(bar, ROWS * HEAD_DIM * 2);
#pragma unroll
  for (int cb = 0; cb < HEAD_DIM / 64; ++cb)
    tma_load_4d(tile + cb * ROWS * 128, map, bar, cb * 64, row0, head, batch);
}
#endif

#if ROPE
// ROPE: rotates rows [row0, row0 + ROWS) of the landed sw128 Q tile in place,
// NTHREADS threads (index tid) sharing the work; tile row r is token pos0 + r
// of the tables (float32, rows table_row floats apart); rows at or past
// rows_valid are zero padding and stay so. Each item is one row's two 16-byte
// chunks of 8 pairs, rotated as the standalone pass does (rope_pairs.h), so both
// round alike; table reads are issued kBatch items at a time before any is
// used (flash_attention.cu's rope_tile: one at a time cost +10.8 % there; 2
// for ROPE_AHEAD's rotating warps, within their 72 registers).
template <int ROWS, int NTHREADS, int kBatch>
__device__ __forceinline__ void rotate_q_rows(unsigned q_tile, int row0, int rows_valid, int pos0,
                                              const float *__restrict__ rope_cos,
                                              const float *__restrict__ rope_sin, int table_row,
                                              int tid, unsigned tables) {
  constexpr int kParts = HEAD_DIM / 16; // groups of 8 pairs per row
  constexpr int kItems = ROWS * kParts;
  for (int i0 = tid; i0 < kItems; i0 += kBatch * NTHREADS) {
    float4 c[kBatch][2], s[kBatch][2];
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      const int i = i0 + b * NTHREADS, r = row0 + i / kParts, part = i % kParts;
      if (i < kItems && r < rows_valid) {
        if (ROPE_TABLES) // tile row r's copy (ROPE_TABLES: the producer's)
          rope_table_chunks_shared(c[b], s[b], tables + r * kTableRowBytes + part * 32,
                                   tables + kTableBytes + r * kTableRowBytes + part * 32);
        else
          rope_table_chunks(c[b], s[b], rope_cos, rope_sin,
                            (long long)(pos0 + r) * table_row + part * 8);
      }
    }
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      const int i = i0 + b * NTHREADS, r = row0 + i / kParts, part = i % kParts;
      if (i < kItems && r < rows_valid) {
        const unsigned first = q_tile + sw128_offset(BLOCK_M, r, ROPE == 2 ? 2 * part : part);
        const unsigned second =
            q_tile + sw128_offset(BLOCK_M, r, ROPE == 2 ? 2 * part + 1 : part + kParts);
        rope_rotate_shared<DTYPE, ROPE == 2>(first, second, c[b], s[b]);
      }
    }
  }
}

// The consumers' rotation: not inlined, so its registers stay out of the key
// loop's allocation. (ROPE_AHEAD's rotating warps inline it: around a call
// their loop kept 16 bytes on the stack.)
template <int ROWS, int NTHREADS>
__device__ __noinline__ void
rope_q_rows(unsigned q_tile, int row0, int rows_valid, int pos0, const float *__restrict__ rope_cos,
            const float *__restrict__ rope_sin, int table_row, int tid, unsigned tables) {
  rotate_q_rows<ROWS, NTHREADS, 4>(q_tile, row0, rows_valid, pos0, rope_cos, rope_sin, table_row,
                                   tid, tables);
}
#endif

#if ROPE_TABLES
// `rows` rows of a float32 table from position pos0 into shared memory at
// `dst`, HEAD_DIM / 2 floats each, completing on `bar`: one bulk copy where
// the table's rows are contiguous, else one per row (rows are 16-byte
// aligned: flash_attention checks the tables).
__device__ __forceinline__ void copy_rope_rows(unsigned dst, const float *table, int pos0, int rows,
                                               int table_row, unsigned bar) {
  if (table_row == HEAD_DIM / 2) {
    bulk_copy_to_shared(dst, table + (long long)pos0 * table_row, rows * kTableRowBytes, bar);
    return;
  }
  for (int r = 0; r < rows; ++r)
    bulk_copy_to_shared(dst + r * kTableRowBytes, table + (long long)(pos0 + r) * table_row,
                        kTableRowBytes, bar);
}
#endif

// The output accumulator and each row's max and sum before a work item's
// first key tile.
__device__ __forceinline__ void start_accumulators(float (&o)[HEAD_DIM / 8][4], float (&row_max)[2],
                                                   float (&row_sum)[2]) {
#pragma unroll
  for (int dj = 0; dj < HEAD_DIM / 8; ++dj)
    o[dj][0] = o[dj][1] = o[dj][2] = o[dj][3] = 0.f;
  row_max[0] = row_max[1] = AP_NEG_INF;
  row_sum[0] = row_sum[1] = 0.f;
}

// One CTA's work: a block of BLOCK_M query rows of one (batch, head), its key
// tiles (n_end of them; causal stops at the block's last diagonal) and, with
// ALiBi, the order it takes them in (flash_alibi.h).
// KEY_SPLIT: a part of an item takes n_end key tiles from tile n_begin on
// (its steps count from 0, as a whole item's, so the key loop is the plain
// one's; session 13 measured a loop from n_begin 2.5 % slower at 4K) and
// leaves its rows in the scratch at `slot` (flash_key_split.h); part -1 is a
// whole item.
struct WorkItem {
  int head, batch, kv_head, m0, n_end;
  int first_tile, both_sides, more_below; // KEY_ORDER 1-3: where the order starts
  int n_begin, part, slot;
};

__device__ __forceinline__ WorkItem work_item(const AttentionParams &p, int m_block, int head,
                                              int batch) {
  WorkItem w;
  w.head = head, w.batch = batch, w.kv_head = head / (p.heads / p.kv_heads);
  w.m0 = m_block * BLOCK_M;
  w.n_end = (p.seqlen_k + BLOCK_N - 1) / BLOCK_N;
  if (CAUSAL) {
    const int last_row = min(w.m0 + BLOCK_M, p.seqlen_q) - 1;
    const long long last_key = (long long)last_row + p.seqlen_k - p.seqlen_q;
    w.n_end = last_key < 0 ? 0 : min(w.n_end, int(last_key / BLOCK_N) + 1);
  }
  w.first_tile = w.both_sides = w.more_below = 0;
  w.n_begin = 0, w.part = -1, w.slot = 0;
#if KEY_ORDER
  w.first_tile =
      nearest_first_start<BLOCK_M, BLOCK_N, CAUSAL>(w.n_end, w.m0, p.seqlen_k - p.seqlen_q);
  const int tiles_below = w.first_tile, tiles_above = w.n_end - 1 - w.first_tile;
  w.both_sides = min(tiles_below, tiles_above);
  w.more_below = tiles_below > tiles_above;
#endif
  return w;
}

// The launch grid's item (non-persistent): causal grids are (heads * batch,
// m blocks) with the longest (last) query blocks first, others (m blocks,
// heads, batch).
__device__ __forceinline__ WorkItem block_item(const AttentionParams &p) {
  const int m_block = CAUSAL ? int(gridDim.y - 1 - blockIdx.y) : int(blockIdx.x);
  const int head = CAUSAL ? int(blockIdx.x % p.heads) : int(blockIdx.y);
  const int batch = CAUSAL ? int(blockIdx.x / p.heads) : int(blockIdx.z);
  return work_item(p, m_block, head, batch);
}

// PERSISTENT: round i's item of this CTA, of m_blocks * heads * batch. Round
// i holds items i * gridDim.x to (i + 1) * gridDim.x - 1; CTA b takes the b-th,
// or under causal in odd rounds the b-th from the end: causal items come
// longest first (linear_item), so a plain stride would give the low CTAs the
// longer item of every round (session 10: the persistent grid lost to one CTA
// per block from 8K causal keys); turning each round evens the CTAs' sums.
__device__ __forceinline__ int persistent_work(int i) {
  const int g = int(gridDim.x), b = int(blockIdx.x);
  return i * g + (CAUSAL && (i & 1) ? g - 1 - b : b);
}

// PERSISTENT: item w of m_blocks * heads * batch.
// Causal: the longest query blocks first (each (batch, head) before the next
// shorter block); otherwise a head's query blocks side by side, so CTAs at
// work together share its K and V in L2.
__device__ __forceinline__ WorkItem linear_item(const AttentionParams &p, int w, int m_blocks) {
  if (CAUSAL) {
    const int hb = w % (p.heads * p.batch);
    return work_item(p, m_blocks - 1 - w / (p.heads * p.batch), hb % p.heads, hb / p.heads);
  }
  const int hb = w / m_blocks;
  return work_item(p, w % m_blocks, hb % p.heads, hb / p.heads);
}

// PERSISTENT: work id w, an item or (KEY_SPLIT) a part of one of the last
// split.items items: ids past the whole items go part by part, each part
// over every split item (neighbouring items share a head's K and V in L2).
__device__ __forceinline__ WorkItem persistent_item(const AttentionParams &p, int w, int m_blocks,
                                                    const KeySplit &split) {
#if KEY_SPLIT
  if (w >= split.whole) {
    const int j = w - split.whole;
    WorkItem item = linear_item(p, split.whole + j % split.items, m_blocks);
    item.slot = j % split.items, item.part = j / split.items;
    item.n_begin = item.part * split.tiles;
    item.n_end = min(item.n_end - item.n_begin, split.tiles);
    return item;
  }
#endif
  return linear_item(p, w, m_blocks);
}

// KEY_SPLIT: this thread's rows of a part's output, unnormalized, with each
// row's max and sum, into the part's scratch (flash_key_split.h). Every row
// of the tile, past seqlen_q too: the merge reads only rows that exist.
__device__ __forceinline__ void write_part(const float (&o_acc)[HEAD_DIM / 8][4],
                                           const float (&row_max)[2], const float (&row_sum)[2],
                                           const KeySplit &split, const WorkItem &w,
                                           float *__restrict__ scratch, int warp_row0, int g,
                                           int t) {
  const int index = w.slot * split.parts + w.part;
  float *out = split_part_rows<BLOCK_M, HEAD_DIM>(scratch, index);
  float *stats = split_part_stats<BLOCK_M, HEAD_DIM>(scratch, split, index);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const float sum = quad_sum(row_sum[h]);
    const int row = warp_row0 + g + 8 * h;
#pragma unroll
    for (int dj = 0; dj < HEAD_DIM / 8; ++dj)
      *reinterpret_cast<float2 *>(out + row * HEAD_DIM + dj * 8 + 2 * t) =
          make_float2(o_acc[dj][2 * h], o_acc[dj][2 * h + 1]);
    if (t == 0) *reinterpret_cast<float2 *>(stats + 2 * row) = make_float2(row_max[h], sum);
  }
}

// Key tile of step n: ascending (a KEY_SPLIT part from its first tile), or
// by KEY_ORDER from the tile nearest the diagonal.
__device__ __forceinline__ int key_tile(const WorkItem &w, int n) {
  // ALIBI_WINDOW: the order runs over the window's tiles, from n_begin on.
  const int base = ALIBI_WINDOW ? w.n_begin : 0;
#if KEY_ORDER == 1
  return base + nearest_first_tile(n, w.first_tile, w.both_sides, w.more_below);
#elif KEY_ORDER == 2
  return base + (n <= w.first_tile ? w.first_tile - n : n);
#elif KEY_ORDER == 3
  return base + (n == 0 ? w.first_tile : n <= w.first_tile ? n - 1 : n);
#elif KEY_SPLIT
  return w.n_begin + n;
#else
  return n;
#endif
}

// A head's ALiBi slope as the caller gave it: alibi_slopes[batch *
// alibi_stride + head] (alibi_stride 0 shares one row over the batch).
__device__ __forceinline__ float
head_slope(const AttentionParams &p, const float *__restrict__ alibi_slopes, int batch, int head) {
  return alibi_slopes[(long long)batch * p.alibi_stride + head];
}

#if ALIBI_WINDOW
// The item's key tiles cut to the ones that can hold a nonzero weight. Row i
// (key position P = i + diag) has its nearest key j* = clamp(P, 0, seqlen_k -
// 1) at distance d*, and key j at d* + |j - j*| (keys lie on one side of P when
// P is outside them). With |q_i . k_j| <= qmax kmax (alibi_norms), the row's
// max is at least j*'s exponent, -scale qmax kmax - slope d*, so a key with
// slope |j - j*| > 2 scale qmax kmax + 130 ln 2 has an exponent below -130 in
// log2 units, where the kernel's exp2 gives exactly 0 (ex2.approx.ftz flushes
// below -126, exp2_poly writes 0 from -127 down): skipping its tile drops
// nothing. Keeps the key order's start (the diagonal's tile, inside the
// window) and recounts its sides; slopes <= 0, or bounds that are not finite
// (inf or NaN inputs), keep every tile.
// The reach's part without the norms, 130 ln 2 (keys at slope * distance).
constexpr float kWindowExponentFloor = 130.f * 0.6931472f;

__device__ __forceinline__ WorkItem alibi_window(WorkItem w, const AttentionParams &p,
                                                 const float *__restrict__ slopes,
                                                 const float *__restrict__ norms) {
  if (w.n_end == 0) return w;
  const float slope = head_slope(p, slopes, w.batch, w.head);
  const float qmax = norms[w.batch * p.heads + w.head];
  const float kmax = norms[p.batch * p.heads + w.batch * p.kv_heads + w.kv_head];
  const float reach = (2.f * p.scale * qmax * kmax + kWindowExponentFloor) / slope;
  if (!(slope > 0.f) || !(reach < 1e9f)) return w;
  const long long diag = (long long)p.seqlen_k - p.seqlen_q, last_key = p.seqlen_k - 1;
  const int last_row = min(w.m0 + BLOCK_M, p.seqlen_q) - 1;
  const long long lo_pos = min(max(w.m0 + diag, 0LL), last_key);
  const long long hi_pos = min(max(last_row + diag, 0LL), last_key);
  const long long r = (long long)ceilf(reach);
  const int lo = lo_pos - r <= 0 ? 0 : int((lo_pos - r) / BLOCK_N);
  const int hi = int(min((hi_pos + r) / BLOCK_N, (long long)w.n_end - 1));
  const int first = min(max(w.first_tile, lo), hi);
  w.n_begin = lo, w.n_end = hi - lo + 1, w.first_tile = first - lo;
  const int tiles_below = w.first_tile, tiles_above = w.n_end - 1 - w.first_tile;
  w.both_sides = min(tiles_below, tiles_above);
  w.more_below = tiles_below > tiles_above;
  return w;
}

// max that keeps NaN (fmaxf drops it): a NaN row makes the bound NaN, which
// alibi_window reads as "keep every tile".
__device__ __forceinline__ float max_keep_nan(float a, float b) {
  float m;
  asm("max.NaN.f32 %0, %1, %2;" : "=f"(m) : "f"(a), "f"(b));
  return m;
}

// Whether a head's window keeps every key whatever its norms: a slope <= 0
// (or NaN), or 130 ln 2 / slope alone reaching past seqlen_k. alibi_window's
// reach is at least that (the norms' term adds, and float rounding is
// monotone), so every window of the head spans all its keys.
__device__ __forceinline__ bool window_keeps_all(float slope, int seqlen_k) {
  return !(slope > 0.f) || kWindowExponentFloor / slope >= float(seqlen_k);
}

// Per (batch, head) of q, then per (batch, kv head) of k, the largest row
// norm, into alibi_norms (float32, batch * (heads + kv_heads)), for
// alibi_window: launched before the attention kernel, on its stream, with
// its parameters. One CTA a head; each lane reads 16 bytes of a row. A head
// whose window keeps every key (window_keeps_all; for k, every q head of its
// group) gets +inf unread: its windows stay whole, as the norms would leave
// them, and the pass reads only what can cut a window (of 32 heads with the
// standard slopes, 14 go unread at 2K keys, 6 at 8K).
extern "C" __global__ void __launch_bounds__(256) flash_attention_wgmma_norms(
    const AttentionParams p, const AttentionStrides st, const T *__restrict__ q,
    const T *__restrict__ k, const T *__restrict__ v, T *__restrict__ o, float *__restrict__ lse,
    const float *__restrict__ alibi_slopes, const float *__restrict__ rope_cos,
    const float *__restrict__ rope_sin, float *__restrict__ alibi_norms,
    const __grid_constant__ TensorMap tmap_q, const __grid_constant__ TensorMap tmap_k,
    const __grid_constant__ TensorMap tmap_v
#if O_TMA
    ,
    const __grid_constant__ TensorMap tmap_o
#endif
) {
  constexpr int kLanesPerRow = HEAD_DIM / 8; // 8 elements (16 bytes) a lane
  constexpr int kRowsPerWarp = 32 / kLanesPerRow;
  const int c = int(blockIdx.x), q_heads = p.batch * p.heads;
  const bool is_q = c < q_heads;
  const int heads = is_q ? p.heads : p.kv_heads, hb = is_q ? c : c - q_heads;
  const T *base = is_q ? q + (hb / heads) * st.q[0] + (hb % heads) * st.q[1]
                       : k + (hb / heads) * st.k[0] + (hb % heads) * st.k[1];
  const long long row_stride = is_q ? st.q[2] : st.k[2];
  const int rows = is_q ? p.seqlen_q : p.seqlen_k;
  const int batch = hb / heads, group = p.heads / p.kv_heads;
  const int first_head = is_q ? hb % heads : (hb % heads) * group;
  bool keeps_all = true;
  for (int h = first_head; h < first_head + (is_q ? 1 : group); ++h)
    keeps_all = keeps_all && window_keeps_all(head_slope(p, alibi_slopes, batch, h), p.seqlen_k);
  if (keeps_all) { // uniform over the CTA
    if (threadIdx.x == 0) alibi_norms[c] = __int_as_float(0x7f800000);
    return;
  }
  const int warp = int(threadIdx.x / 32), lane = int(threadIdx.x % 32);
  const int sub = lane / kLanesPerRow, col = (lane % kLanesPerRow) * 8;
  float best = 0.f;
  // kUnroll rows a lane in flight; every lane runs the same trips (the
  // shuffles need the whole warp).
  constexpr int kUnroll = 8, kTripRows = 8 * kRowsPerWarp;
  for (int r0 = warp * kRowsPerWarp + sub; r0 - sub < rows; r0 += kTripRows * kUnroll) {
    uint4 raw[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int r = r0 + u * kTripRows;
      raw[u] = r < rows ? *reinterpret_cast<const uint4 *>(base + r * row_stride + col)
                        : make_uint4(0u, 0u, 0u, 0u);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const unsigned words[4] = {raw[u].x, raw[u].y, raw[u].z, raw[u].w};
      float sq = 0.f;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float a = Storage<DTYPE>::load(half_bits(words[e] & 0xffffu));
        const float b = Storage<DTYPE>::load(half_bits(words[e] >> 16));
        sq = fmaf(a, a, fmaf(b, b, sq));
      }
#pragma unroll
      for (int m = kLanesPerRow / 2; m >= 1; m >>= 1)
        sq += __shfl_xor_sync(0xffffffffu, sq, m);
      best = max_keep_nan(best, sq);
    }
  }
#pragma unroll
  for (int m = 16; m >= 1; m >>= 1)
    best = max_keep_nan(best, __shfl_xor_sync(0xffffffffu, best, m));
  __shared__ float warp_best[8];
  if (lane == 0) warp_best[warp] = best;
  __syncthreads();
  if (threadIdx.x == 0) {
    float all = warp_best[0];
    for (int i = 1; i < 8; ++i)
      all = max_keep_nan(all, warp_best[i]);
    alibi_norms[c] = sqrtf(all);
  }
}
#endif

// ALiBi's slope of the item's head in raw-score units (negative: the bias
// lowers far keys); 0 without ALiBi.
__device__ __forceinline__ float item_alibi_slope(const AttentionParams &p, const WorkItem &w,
                                                  const float *__restrict__ alibi_slopes) {
#if ALIBI
  return -head_slope(p, alibi_slopes, w.batch, w.head) / p.scale;
#else
  return 0.f;
#endif
}

// O = o_acc / row_sum (as flash_attention.cu finishes; see its comments) into
// this warp's 16 rows, and lse, for the item's rows.
__device__ __forceinline__ void write_output(const float (&o_acc)[HEAD_DIM / 8][4],
                                             const float (&row_max)[2], const float (&row_sum)[2],
                                             const AttentionParams &p, const AttentionStrides &st,
                                             const WorkItem &w, T *__restrict__ o,
                                             float *__restrict__ lse, int warp_row0, int g, int t,
                                             float scale_log2) {
  T *o_base = o + w.batch * st.o[0] + w.head * st.o[1];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const float sum = quad_sum(row_sum[h]);
    const int row = w.m0 + warp_row0 + g + 8 * h;
    if (row >= p.seqlen_q) continue;
    const bool empty = sum == 0.f;
    const float m = row_max[h];
    const float inv = output_scale<DTYPE>(sum, empty, m, scale_log2);
    T *o_row = o_base + (long long)row * st.o[2];
#pragma unroll
    for (int dj = 0; dj < HEAD_DIM / 8; ++dj)
      *reinterpret_cast<unsigned *>(o_row + dj * 8 + 2 * t) =
          pack2<DTYPE>(o_acc[dj][2 * h] * inv, o_acc[dj][2 * h + 1] * inv);
    if ((p.flags & AP_FLAG_RETURN_LSE) && t == 0) {
      const long long index = ((long long)w.batch * p.heads + w.head) * p.seqlen_q + row;
      lse[index] = empty ? AP_NEG_INF : m * p.scale + __logf(sum);
    }
  }
}

#if O_TMA
// O_TMA: O = o_acc / row_sum (as write_output) for this warpgroup's 64 rows
// into the output tile at o_tile (rows wg * 64 on, sw128), then stored by
// TMA by the warpgroup's first thread; lse as write_output. Rows past
// seqlen_q are written to the tile and clipped by the store. O_TMA 1 reuses
// its tile item after item: the first thread waits until the last store has
// read it (usually long done) before the warpgroup's barrier lets anyone
// write (O_TMA 2: its caller waited). Named barrier 1 + 2 * kWarpgroups + wg
// (past the turns' and RoPE's), its id in a register (no branch between ids:
// C7520).
__device__ __forceinline__ void
store_output_tma(const float (&o_acc)[HEAD_DIM / 8][4], const float (&row_max)[2],
                 const float (&row_sum)[2], const AttentionParams &p, const WorkItem &w,
                 float *__restrict__ lse, const TensorMap &tmap_o, unsigned o_tile, int wg,
                 int warp_row0, int g, int t, float scale_log2) {
  const unsigned barrier = 1u + 2u * kWarpgroups + unsigned(wg);
  const bool leader = threadIdx.x % 128 == 0;
  if (O_TMA == 1) {
    if (leader) bulk_wait_group_read<0>(); // the previous item's store has read the tile
    named_barrier_sync<128>(barrier);
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const float sum = quad_sum(row_sum[h]);
    const int tile_row = warp_row0 + g + 8 * h, row = w.m0 + tile_row;
    const bool empty = sum == 0.f;
    const float m = row_max[h];
    const float inv = output_scale<DTYPE>(sum, empty, m, scale_log2);
#pragma unroll
    for (int dj = 0; dj < HEAD_DIM / 8; ++dj)
      st_shared_u32(o_tile + sw128_offset(BLOCK_M, tile_row, dj) + 4 * t,
                    pack2<DTYPE>(o_acc[dj][2 * h] * inv, o_acc[dj][2 * h + 1] * inv));
    if ((p.flags & AP_FLAG_RETURN_LSE) && t == 0 && row < p.seqlen_q) {
      const long long index = ((long long)w.batch * p.heads + w.head) * p.seqlen_q + row;
      lse[index] = empty ? AP_NEG_INF : m * p.scale + __logf(sum);
    }
  }
  fence_proxy_async_shared(); // generic writes -> the TMA store's async-proxy reads
  named_barrier_sync<128>(barrier);
  if (leader) {
#pragma unroll
    for (int cb = 0; cb < HEAD_DIM / 64; ++cb)
      tma_store_4d(tmap_o, o_tile + cb * BLOCK_M * 128 + wg * 64 * 128, cb * 64, w.m0 + wg * 64,
                   w.head, w.batch);
    bulk_commit_group();
  }
}
#endif

extern "C" __global__ void __launch_bounds__(kThreads, 1)
    flash_attention_wgmma(const AttentionParams p, const AttentionStrides st,
                          const T *__restrict__ q, const T *__restrict__ k, const T *__restrict__ v,
                          T *__restrict__ o, float *__restrict__ lse
#if KEY_SPLIT
                          ,
                          float *__restrict__ split_scratch
#endif
#if ALIBI || ROPE
                          ,
                          const float *__restrict__ alibi_slopes,
                          const float *__restrict__ rope_cos, const float *__restrict__ rope_sin
#endif
#if ALIBI_WINDOW
                          ,
                          float *__restrict__ alibi_norms
#endif
#if HOPPER_STEP >= 3
                          ,
                          const __grid_constant__ TensorMap tmap_q,
                          const __grid_constant__ TensorMap tmap_k,
                          const __grid_constant__ TensorMap tmap_v
#endif
#if O_TMA
                          ,
                          const __grid_constant__ TensorMap tmap_o
#endif
    ) {
  extern __shared__ __align__(128) unsigned char smem[];
  const unsigned q_tile = (smem_address(smem) + 1023u) & ~1023u;
  const unsigned k_tiles = q_tile + kQBytes;
  const unsigned v_tiles = k_tiles + 2 * kKvBytes;
  const unsigned o_tile = v_tiles + 2 * kKvBytes; // O_TMA only
  const unsigned rope_tables = o_tile + kOBytes;  // ROPE_TABLES only
#if ROPE_AHEAD
  const unsigned q_tile2 = o_tile + kOBytes; // Q's second buffer
#endif

  // This thread's consumer warpgroup (step (d): warpgroup 0 is the producer,
  // which takes none of the rows below; its value there is unused).
  const int wg = int(threadIdx.x / 128) - kProducers;
  const int warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
  const int g = lane >> 2, t = lane & 3;
  const int diag = p.seqlen_k - p.seqlen_q;
  const int seqlen_k = p.seqlen_k;
#if ALIBI
  const float *slopes = alibi_slopes;
#else
  const float *slopes = nullptr;
#endif

  // Names flash_softmax.inc expects: one 16-row slice (mt = 0) per warp. Set
  // to their start values per work item.
  float o_acc[MT][HEAD_DIM / 8][4];
  float row_max[MT][2], row_sum[MT][2];
  const float scale_log2 = p.scale * 1.4426950408889634f;
  const int warp_row0 = wg * 64 + warp * 16; // first row of this warp within the CTA
  // This warpgroup's 64 Q rows: 8 swizzle atoms into each column block.
  const unsigned q_wg = q_tile + wg * 64 * 128;

#if HOPPER_STEP >= 4
  // Steps (d) and (e). Barriers: Q; K full x2, V full x2 (TMA bytes, one producer
  // arrival); K empty x2, V empty x2, Q empty (every consumer thread arrives once
  // its wgmmas on the stage, or on Q, have completed). Key tiles are counted
  // across the CTA's work items (`it`; one item unless PERSISTENT): tile it
  // uses stage it & 1, its full barrier's phase parity is (it >> 1) & 1, and
  // refilling the stage for tile it >= 2 waits for the empty barrier's
  // completion number (it - 2) / 2. Item i's Q lands in phase i & 1 and is
  // loaded, for i >= 1, once Q empty has completed i times.
  // ROPE_AHEAD adds Q's second buffer's full and empty barriers and the two
  // buffers' "Q rotated" (kRotators arrivals): item i uses buffer i % 2, in
  // phase (i / 2) & 1 (q_at, q_full, q_empty, q_ready, q_phase below).
  __shared__ __align__(8) unsigned long long barriers[ROPE_AHEAD ? 14 : 10];
  const unsigned bar_q = smem_address(&barriers[0]);
  const unsigned full_k = bar_q + 8, full_v = bar_q + 24;
  const unsigned empty_k = bar_q + 40, empty_v = bar_q + 56, empty_q = bar_q + 72;
  if (threadIdx.x == 0) {
    for (int i = 0; i < 5; ++i)
      mbarrier_init(bar_q + 8 * i, 1);
    for (int i = 5; i < 10; ++i)
      mbarrier_init(bar_q + 8 * i, kWarpgroups * 128);
#if ROPE_AHEAD
    mbarrier_init(bar_q + 80, 1);
    mbarrier_init(bar_q + 88, kWarpgroups * 128);
    mbarrier_init(bar_q + 96, kRotators);
    mbarrier_init(bar_q + 104, kRotators);
#endif
    fence_mbarrier_init();
  }
  const auto q_empty = [=](int i) { return kQStages == 2 && (i & 1) ? bar_q + 88 : empty_q; };
#if ROPE_AHEAD
  const auto q_at = [=](int i) { return i & 1 ? q_tile2 : q_tile; };
  const auto q_full = [=](int i) { return i & 1 ? bar_q + 80 : bar_q; };
  const auto q_ready = [=](int i) { return bar_q + 96 + 8 * unsigned(i & 1); };
  const auto q_phase = [](int i) { return unsigned(i / 2) & 1u; };
#endif
#if ALIBI == 2
  // B of the key-part wgmma (alibi_key_operand): K-major, no swizzle, row r
  // (16 bytes) is 8 copies of r; 8 rows past BLOCK_N so that a descriptor
  // read of the second k half (its A columns are 0) stays on finite values.
  __shared__ __align__(128) unsigned alibi_keys[(BLOCK_N + 8) * 4];
  for (int i = threadIdx.x; i < (BLOCK_N + 8) * 4; i += kThreads)
    alibi_keys[i] = pack2<DTYPE>(float(i / 4), float(i / 4));
  fence_proxy_async_shared(); // read by wgmma (async proxy) after the barrier
  // Equal leading and stride offsets (128 bytes): the rows are contiguous
  // 16-byte lines whichever offset the hardware applies per 8-row group.
  const unsigned long long alibi_keys_desc =
      wgmma_descriptor(smem_address(alibi_keys), 128, 128, kWgmmaSwizzleNone);
#endif
  __syncthreads(); // the last CTA-wide barrier: the roles part here
  // The CTA's work items: its grid block's, or (PERSISTENT, a grid of at most
  // one CTA per SM) one item per round (persistent_work): the next item's Q
  // and first K/V tiles load while the consumers finish the last P V and
  // write the previous item's output.
  const int m_blocks = (p.seqlen_q + BLOCK_M - 1) / BLOCK_M;
  const int items = m_blocks * p.heads * p.batch;
  const KeySplit split = KEY_SPLIT ? key_split(p, items, BLOCK_N) : KeySplit{1, 0, items, 0};
  const int total_work = PERSISTENT ? split.whole + split.items * split.parts : 1;
  const auto next_work = [](int i) { return PERSISTENT ? persistent_work(i) : i; };
  const int first_work = next_work(0);
  // Work id w's item (ALIBI_WINDOW: cut to its window; producer and consumers
  // compute the same one).
  const auto work = [&](int w) {
    const WorkItem whole = PERSISTENT ? persistent_item(p, w, m_blocks, split) : block_item(p);
#if ALIBI_WINDOW
    return alibi_window(whole, p, slopes, alibi_norms);
#else
    return whole;
#endif
  };
  // Each role is one branch of this if/else (ptxas honours setmaxnreg's
  // register budgets per branch only so).
  // The role test is made warp-uniform (a broadcast of lane 0's warpgroup) so
  // the compiler sees each branch taken by whole warpgroups.
  if (__shfl_sync(0xffffffffu, threadIdx.x / 128, 0) == 0) {
    // The producer warpgroup: 24 registers a thread is plenty for one thread's
    // loop of TMA issues; the rest go to the consumers.
    setmaxnreg_dec<kProducerRegs>();
    if (threadIdx.x == 0) {
      int it = 0; // key tiles loaded, over every item
#if ROPE_AHEAD
      // Q loads for items up to `last`, each once the consumers' S wgmmas on
      // the item two before (the buffer's last user) are done.
      int q_next = 0; // items whose Q load is issued
      const auto load_q_through = [&](int last) {
        for (; q_next <= last; ++q_next) {
          const int wq = next_work(q_next);
          if (wq >= total_work) return;
          const WorkItem qi = work(wq);
          if (q_next >= 2) mbarrier_wait(q_empty(q_next), q_phase(q_next - 2));
          tma_tile<BLOCK_M>(q_at(q_next), tmap_q, q_full(q_next), qi.m0, qi.head, qi.batch);
        }
      };
#endif
      for (int i = 0, w = first_work; w < total_work; w = next_work(++i)) {
        const WorkItem item = work(w);
#if !ROPE_AHEAD
        // Item i's Q, once the consumers' S wgmmas on item i - 1's are done.
        const auto load_q = [&] {
          if (i > 0) mbarrier_wait(empty_q, (i - 1) & 1);
#if ROPE_TABLES
          // The item's cos and sin rows (positions m0 + diag on), before Q's
          // arrive.expect_tx so the phase waits for them too.
          const int rows = min(BLOCK_M, p.seqlen_q - item.m0);
          if (rows > 0) {
            mbarrier_expect_tx(bar_q, 2u * unsigned(rows) * kTableRowBytes);
            copy_rope_rows(rope_tables, rope_cos, item.m0 + diag, rows, p.rope_table_row, bar_q);
            copy_rope_rows(rope_tables + kTableBytes, rope_sin, item.m0 + diag, rows,
                           p.rope_table_row, bar_q);
          }
#endif
          tma_tile<BLOCK_M>(q_tile, tmap_q, bar_q, item.m0, item.head, item.batch);
        };
#endif
        for (int n = 0; n < item.n_end; ++n, ++it) {
          const int stage = it & 1, key0 = key_tile(item, n) * BLOCK_N;
          if (it >= 2) mbarrier_wait(empty_k + 8 * stage, ((it >> 1) - 1) & 1); // S(it - 2) done
          tma_tile<BLOCK_N>(k_tiles + stage * kKvBytes, tmap_k, full_k + 8 * stage, key0,
                            item.kv_head, item.batch);
          // K(0) first: its stage frees before the previous item's Q does.
#if ROPE_AHEAD
          if (n == 0) load_q_through(i);
#else
          if (n == 0) load_q();
#endif
          if (it >= 2) mbarrier_wait(empty_v + 8 * stage, ((it >> 1) - 1) & 1); // P V(it - 2)
          tma_tile<BLOCK_N>(v_tiles + stage * kKvBytes, tmap_v, full_v + 8 * stage, key0,
                            item.kv_head, item.batch);
#if ROPE_AHEAD
          // The next item's Q, for the rotating warps to take while the
          // consumers work on this item.
          if (n == 0) load_q_through(i + 1);
#endif
        }
#if ROPE_AHEAD
        if (item.n_end == 0) load_q_through(i + 1); // consumers take every Q phase
#else
        if (item.n_end == 0) load_q(); // consumers take every Q phase
#endif
      }
    }
#if ROPE_AHEAD
    else if (threadIdx.x >= 32) {
      // Warps 1-3: each item's Q, rotated in place once landed (item i + 1's
      // while the consumers work on item i), then the generic-proxy writes
      // ordered before the consumers' wgmmas read them.
      for (int i = 0, w = first_work; w < total_work; w = next_work(++i)) {
        const WorkItem item = work(w);
        mbarrier_wait(q_full(i), q_phase(i));
        if (item.n_end > 0)
          rotate_q_rows<BLOCK_M, kRotators, 2>(q_at(i), 0, p.seqlen_q - item.m0, item.m0 + diag,
                                               rope_cos, rope_sin, p.rope_table_row,
                                               int(threadIdx.x) - 32, 0u);
        fence_proxy_async_shared();
        mbarrier_arrive(q_ready(i));
      }
    }
#endif
    // Loads in flight complete on the barriers; the CTA lives on.
  } else {
    setmaxnreg_inc<kConsumerRegs>();
    // Step (e): named barrier 1 + w is "warpgroup w may issue its GEMMs"
    // (wait_turn, pass_turn). Warpgroup 0 goes first (the last one's extra
    // arrival); each passes the turn right after issuing, before it waits.
    // Every warpgroup takes the same items with the same key tiles, so the
    // turns go round from one item into the next.
    if (kPingPong && wg == kWarpgroups - 1) pass_turn(wg);
    int it = 0; // key tiles consumed, over every item
    for (int i = 0, w = first_work; w < total_work; w = next_work(++i)) {
      const WorkItem item = work(w);
      const int m0 = item.m0, n_end = item.n_end;
      const float alibi_slope = item_alibi_slope(p, item, slopes);
      start_accumulators(o_acc[0], row_max[0], row_sum[0]);
#if ROPE_AHEAD
      mbarrier_wait(q_ready(i), q_phase(i)); // landed and rotated (producer warps 1-3)
      const unsigned q_item = q_at(i) + wg * 64 * 128;
#else
      mbarrier_wait(bar_q, i & 1);
      const unsigned q_item = q_wg;
#endif
#if ROPE && !ROPE_AHEAD
      // Each consumer warpgroup rotates its own 64 Q rows once Q has landed,
      // then orders its generic-proxy writes before its wgmmas read them.
      if (n_end > 0) {
        rope_q_rows<64, 128>(q_tile, wg * 64, p.seqlen_q - m0, m0 + diag, rope_cos, rope_sin,
                             p.rope_table_row, int(threadIdx.x % 128), rope_tables);
        fence_proxy_async_shared();
        // Its own named barrier, past the turns' 1..kWarpgroups, by an id in
        // a register: no branch (C7520 on the persistent grid otherwise).
        named_barrier_sync<128>(1u + kWarpgroups + unsigned(wg));
      }
#endif
      unsigned a[BLOCK_N / 16][4] = {}; // P of the previous step, packed
#if ALIBI == 3
      float s[BLOCK_N / 8][4]; // S, started with the bias's key part (alibi_key_start)
      if (n_end > 0) alibi_key_start(s, key_tile(item, 0) * BLOCK_N, m0, diag, alibi_slope);
#endif
      for (int n = 0; n < n_end; ++n, ++it) {
        const int stage = it & 1;
        mbarrier_wait(full_k + 8 * stage, (it >> 1) & 1);                        // K(n)
        if (n > 0) mbarrier_wait(full_v + 8 * (stage ^ 1), ((it - 1) >> 1) & 1); // V(n - 1)
        const int n0 = key_tile(item, n) * BLOCK_N;
#if ALIBI != 3
        float s[BLOCK_N / 8][4];
#endif
#if ALIBI == 2
        unsigned a_bias[4];
        alibi_key_operand(a_bias, alibi_keys_before(n0, m0, diag), alibi_keys_after(n0, m0, diag),
                          alibi_slope, t);
        fence_operands(a_bias);
#endif
        if (kPingPong) wait_turn(wg); // my turn
        fence_operands(s);
        fence_operands(o_acc[0]);
        wgmma_fence();
        issue_scores(s, q_item, k_tiles + stage * kKvBytes);
#if ALIBI == 2
        wgmma_rs_kmajor<DTYPE>(s, a_bias, alibi_keys_desc, 1);
#endif
        wgmma_commit();
        // Each branch issues, passes the turn, then waits (a branch between a
        // wgmma and its wait made ptxas serialize them: C7514).
        if (n > 0) {
          issue_pv(o_acc[0], a, v_tiles + (stage ^ 1) * kKvBytes); // V(n - 1)
          if (kPingPong) pass_turn(wg);                            // the other's turn
          wgmma_wait<1>(); // S(n) is done; P V(n - 1) may still run
        } else {
          if (kPingPong) pass_turn(wg);
          wgmma_wait<0>();
        }
        fence_operands(s);
#if ALIBI == 2
        fence_operands(a_bias); // live until S(n), which read them, is done
#endif
        mbarrier_arrive(empty_k + 8 * stage);                       // K(n) read
        if (EARLY_Q && n == n_end - 1) mbarrier_arrive(q_empty(i)); // the item's last S is done
        float alpha[2];
        const bool grew = softmax_before_rescale(s, row_max[0], row_sum[0], alpha, scale_log2, n0,
                                                 m0, warp_row0, diag, seqlen_k, g, t, alibi_slope);
        wgmma_wait<0>();
        fence_operands(o_acc[0]);
#pragma unroll
        for (int kk = 0; kk < BLOCK_N / 16; ++kk)
          fence_operands(a[kk]); // live until here: P V(n - 1) read them
        if (n > 0) mbarrier_arrive(empty_v + 8 * (stage ^ 1)); // V(n - 1) read
        if (grew) rescale_output(o_acc[0], alpha);
        pack_p(a, s);
#if ALIBI == 3
        if (n + 1 < n_end)
          alibi_key_start(s, key_tile(item, n + 1) * BLOCK_N, m0, diag, alibi_slope);
#endif
      }
      // Every S wgmma on this item's Q has completed (EARLY_Q: said in the
      // last step already, unless there was none).
      if (!EARLY_Q || n_end == 0) mbarrier_arrive(q_empty(i));
      if (n_end > 0) {
        // The last step's P V, on V(it - 1); then its stage is free.
        const int stage = (it - 1) & 1;
        mbarrier_wait(full_v + 8 * stage, ((it - 1) >> 1) & 1);
        last_pv(o_acc[0], a, v_tiles + stage * kKvBytes);
        if (O_TMA != 2) mbarrier_arrive(empty_v + 8 * stage); // O_TMA 2: after the store
      }
#if KEY_SPLIT
      if (item.part >= 0) {
        write_part(o_acc[0], row_max[0], row_sum[0], split, item, split_scratch, warp_row0, g, t);
        continue;
      }
#endif
#if O_TMA == 1
      store_output_tma(o_acc[0], row_max[0], row_sum[0], p, item, lse, tmap_o, o_tile, wg,
                       warp_row0, g, t, scale_log2);
#elif O_TMA == 2
      if (n_end > 0) {
        // The output through the last V stage, once every warpgroup's last P
        // V on it has completed (barrier 1 + 3 * kWarpgroups, the consumers'
        // threads); the stage goes back to the producer (128 arrivals a
        // warpgroup) once this warpgroup's store has read it.
        const unsigned last_v = v_tiles + ((it - 1) & 1) * kKvBytes;
        named_barrier_sync<1 + 3 * kWarpgroups, kWarpgroups * 128>();
        store_output_tma(o_acc[0], row_max[0], row_sum[0], p, item, lse, tmap_o, last_v, wg,
                         warp_row0, g, t, scale_log2);
        if (threadIdx.x % 128 == 0) {
          bulk_wait_group_read<0>();
          mbarrier_arrive_count(empty_v + 8 * ((it - 1) & 1), 128);
        }
      } else {
        write_output(o_acc[0], row_max[0], row_sum[0], p, st, item, o, lse, warp_row0, g, t,
                     scale_log2);
      }
#else
      write_output(o_acc[0], row_max[0], row_sum[0], p, st, item, o, lse, warp_row0, g, t,
                   scale_log2);
#endif
    }
#if O_TMA
    // The last store's writes are done before the CTA (and its shared memory) goes.
    if (threadIdx.x % 128 == 0) bulk_wait_group<0>();
#endif
    // The last warpgroup arrived once more on warpgroup 0's barrier than
    // warpgroup 0 synced (the first turn): take that arrival, so none is left
    // at exit.
    if (kPingPong && wg == 0) wait_turn(0);
  }

#else
  // Steps (a)-(c): one work item, the grid block's.
  const WorkItem item = block_item(p);
  const int head = item.head, batch = item.batch, kv_head = item.kv_head;
  const int m0 = item.m0, n_end = item.n_end;
  const float alibi_slope = item_alibi_slope(p, item, slopes);
  const T *q_base = q + batch * st.q[0] + head * st.q[1];
  const T *k_base = k + batch * st.k[0] + kv_head * st.k[1];
  const T *v_base = v + batch * st.v[0] + kv_head * st.v[1];
  start_accumulators(o_acc[0], row_max[0], row_sum[0]);
#define AP_KEY_TILE(n) key_tile(item, n)
#if HOPPER_STEP == 1
  if (n_end > 0) {
    load_tile<BLOCK_M>(q_tile, q_base, st.q[2], m0, p.seqlen_q);
#if ROPE
    cp_async_commit(); // Q alone, rotated while K and V load
#endif
    load_tile<BLOCK_N>(k_tiles, k_base, st.k[2], AP_KEY_TILE(0) * BLOCK_N, p.seqlen_k);
    load_tile<BLOCK_N>(v_tiles, v_base, st.v[2], AP_KEY_TILE(0) * BLOCK_N, p.seqlen_k);
    cp_async_commit();
#if ROPE
    // The loop's first fence and barrier order these writes before any wgmma.
    cp_async_wait<1>(); // this thread's Q chunks have landed
    __syncthreads();    // and every thread's
    rope_q_rows<BLOCK_M, kThreads>(q_tile, 0, p.seqlen_q - m0, m0 + diag, rope_cos, rope_sin,
                                   p.rope_table_row, int(threadIdx.x), 0u);
#endif
  }

  for (int n = 0; n < n_end; ++n) {
    const int stage = n & 1;
    cp_async_wait<0>();
    // cp.async wrote through the generic proxy; wgmma reads through the async
    // proxy. Then the barrier: every thread's part of tile n has landed, and
    // every warpgroup's wgmmas on the stage reloaded below have completed
    // (each waited for them with wgmma_wait<0> in the previous step).
    fence_proxy_async_shared();
    __syncthreads();
    if (n + 1 < n_end) {
      const int next = AP_KEY_TILE(n + 1) * BLOCK_N;
      load_tile<BLOCK_N>(k_tiles + (stage ^ 1) * kKvBytes, k_base, st.k[2], next, p.seqlen_k);
      load_tile<BLOCK_N>(v_tiles + (stage ^ 1) * kKvBytes, v_base, st.v[2], next, p.seqlen_k);
      cp_async_commit();
    }
    const int n0 = AP_KEY_TILE(n) * BLOCK_N;
    float s[MT][BLOCK_N / 8][4];
    score(s[0], q_wg, k_tiles + stage * kKvBytes);
    // clang-format off
#include "flash_softmax.inc"
    // clang-format on
    accumulate(s[0], o_acc[0], v_tiles + stage * kKvBytes);
  }

#else
  // Step (b). Loads: K runs one step ahead of V. At the top of step n, once
  // every warpgroup has passed the barrier, S(n - 1) and P V(n - 2) have
  // completed, so K's stage (n + 1) & 1 and V's stage n & 1 are free: K(n + 1)
  // and V(n) load there, for steps n + 1 (S) and n + 1 (P V of step n).
  unsigned a[BLOCK_N / 16][4] = {}; // P of the previous step, packed
#if HOPPER_STEP == 2
  if (n_end > 0) {
    load_tile<BLOCK_M>(q_tile, q_base, st.q[2], m0, p.seqlen_q);
#if ROPE
    cp_async_commit(); // Q alone, rotated while K loads
#endif
    load_tile<BLOCK_N>(k_tiles, k_base, st.k[2], AP_KEY_TILE(0) * BLOCK_N, p.seqlen_k);
    cp_async_commit();
#if ROPE
    // The loop's first fence and barrier order these writes before any wgmma.
    cp_async_wait<1>();
    __syncthreads();
    rope_q_rows<BLOCK_M, kThreads>(q_tile, 0, p.seqlen_q - m0, m0 + diag, rope_cos, rope_sin,
                                   p.rope_table_row, int(threadIdx.x), 0u);
#endif
  }
#else
  // Step (c): thread 0 loads every tile with TMA; each lands on its stage's
  // mbarrier (Q; K and V two stages each, a phase per use: parity (n >> 1) & 1
  // for tile n). Rows past the end arrive as zeros (TMA's out-of-bounds fill).
  __shared__ __align__(8) unsigned long long barriers[5];
  const unsigned bar_q = smem_address(&barriers[0]);
  const unsigned bar_k = smem_address(&barriers[1]), bar_v = smem_address(&barriers[3]);
  if (threadIdx.x == 0) {
    for (int i = 0; i < 5; ++i)
      mbarrier_init(bar_q + 8 * i, 1);
    fence_mbarrier_init();
  }
  __syncthreads();
  if (n_end > 0 && threadIdx.x == 0) {
    tma_tile<BLOCK_M>(q_tile, tmap_q, bar_q, m0, head, batch);
    tma_tile<BLOCK_N>(k_tiles, tmap_k, bar_k, AP_KEY_TILE(0) * BLOCK_N, kv_head, batch);
  }
#if ROPE
  // Every thread rotates its share of Q once it has landed; the loop's first
  // barrier then orders the (fenced) writes before any wgmma reads them.
  if (n_end > 0) {
    mbarrier_wait(bar_q, 0);
    rope_q_rows<BLOCK_M, kThreads>(q_tile, 0, p.seqlen_q - m0, m0 + diag, rope_cos, rope_sin,
                                   p.rope_table_row, int(threadIdx.x), 0u);
    fence_proxy_async_shared();
  }
#endif
#endif
  for (int n = 0; n < n_end; ++n) {
    const int stage = n & 1;
#if HOPPER_STEP == 2
    cp_async_wait<0>();
    fence_proxy_async_shared(); // cp.async (generic proxy) -> wgmma (async proxy)
    __syncthreads();
    if (n + 1 < n_end)
      load_tile<BLOCK_N>(k_tiles + (stage ^ 1) * kKvBytes, k_base, st.k[2],
                         AP_KEY_TILE(n + 1) * BLOCK_N, p.seqlen_k);
    load_tile<BLOCK_N>(v_tiles + stage * kKvBytes, v_base, st.v[2], AP_KEY_TILE(n) * BLOCK_N,
                       p.seqlen_k);
    cp_async_commit();
#else
    __syncthreads(); // every warpgroup is past step n - 1: the stages loaded below are free
    if (threadIdx.x == 0) {
      if (n + 1 < n_end)
        tma_tile<BLOCK_N>(k_tiles + (stage ^ 1) * kKvBytes, tmap_k, bar_k + 8 * (stage ^ 1),
                          AP_KEY_TILE(n + 1) * BLOCK_N, kv_head, batch);
      tma_tile<BLOCK_N>(v_tiles + stage * kKvBytes, tmap_v, bar_v + 8 * stage,
                        AP_KEY_TILE(n) * BLOCK_N, kv_head, batch);
    }
    if (n == 0) mbarrier_wait(bar_q, 0);
    mbarrier_wait(bar_k + 8 * stage, (n >> 1) & 1);                        // K(n)
    if (n > 0) mbarrier_wait(bar_v + 8 * (stage ^ 1), ((n - 1) >> 1) & 1); // V(n - 1)
#endif

    const int n0 = AP_KEY_TILE(n) * BLOCK_N;
    float s[BLOCK_N / 8][4];
    fence_operands(s);
    fence_operands(o_acc[0]);
    wgmma_fence();
    issue_scores(s, q_wg, k_tiles + stage * kKvBytes);
    wgmma_commit();
    if (n > 0) {
      issue_pv(o_acc[0], a, v_tiles + (stage ^ 1) * kKvBytes); // V(n - 1)
      wgmma_wait<1>(); // S(n) is done; P V(n - 1) may still run
    } else {
      wgmma_wait<0>();
    }
    fence_operands(s);
    float alpha[2];
    const bool grew = softmax_before_rescale(s, row_max[0], row_sum[0], alpha, scale_log2, n0, m0,
                                             warp_row0, diag, seqlen_k, g, t, alibi_slope);
    wgmma_wait<0>();
    fence_operands(o_acc[0]);
#pragma unroll
    for (int kk = 0; kk < BLOCK_N / 16; ++kk)
      fence_operands(a[kk]); // live until here: P V(n - 1) read them
    if (grew) rescale_output(o_acc[0], alpha);
    pack_p(a, s);
  }
  if (n_end > 0) {
    // The last step's P V, on V(n_end - 1), which loaded during that step.
#if HOPPER_STEP == 2
    cp_async_wait<0>();
    fence_proxy_async_shared();
    __syncthreads();
#else
    mbarrier_wait(bar_v + 8 * ((n_end - 1) & 1), ((n_end - 1) >> 1) & 1);
#endif
    last_pv(o_acc[0], a, v_tiles + ((n_end - 1) & 1) * kKvBytes);
  }
#endif

  write_output(o_acc[0], row_max[0], row_sum[0], p, st, item, o, lse, warp_row0, g, t, scale_log2);
#endif
}
