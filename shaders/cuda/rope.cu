// Rotary position embedding (RoPE) as a standalone pass over q or k.
//
// Constants: HEAD_DIM (a multiple of 16, at most 256), DTYPE (AP_DTYPE_FLOAT16 /
// AP_DTYPE_BFLOAT16), INTERLEAVED (0: GPT-NeoX, pair i is (x[i], x[i + D/2]);
// 1: GPT-J, pair i is (x[2i], x[2i + 1])).
//
// Pair i of token n turns by the angle whose cosine and sine are cos[n][i] and
// sin[n][i]: float32 tables [N, D/2] with contiguous rows, whose first row the
// host has already moved to the call's position offset (decode), so one launch
// plan serves every offset. The rotation runs in float32 and rounds once.
//
// Layout [B, H, N, D], any strides on B, H, N (16-byte aligned rows),
// contiguous D; out may be x itself (in place): each thread reads its 16
// elements before it writes them, and no thread touches another's.
// Grid (ceil(N * D / 16 / kThreads), H, B); each thread owns 8 pairs, moved as
// two 16-byte loads and stores of x and two of each table: the pass is a copy
// and this is the widest access per thread.
#include "attention_params.h"
#include "numeric.h"

using namespace ap;
typedef half_bits T;

constexpr int kPairs = HEAD_DIM / 2;
constexpr int kThreadsPerRow = kPairs / 8;
constexpr int kThreads = 128;
static_assert(HEAD_DIM % 16 == 0 && HEAD_DIM <= 256, "HEAD_DIM: a multiple of 16, at most 256");
static_assert(DTYPE == AP_DTYPE_FLOAT16 || DTYPE == AP_DTYPE_BFLOAT16, "fp16 or bf16");

__device__ __forceinline__ float lo_of(unsigned w) {
  return Storage<DTYPE>::load(half_bits(w & 0xffffu));
}
__device__ __forceinline__ float hi_of(unsigned w) {
  return Storage<DTYPE>::load(half_bits(w >> 16));
}

// (a, b) -> (a cos - b sin, a sin + b cos) for 8 pairs: a[i], b[i] of pair i.
__device__ __forceinline__ void rotate(float (&a)[8], float (&b)[8], const float4 (&c)[2],
                                       const float4 (&s)[2]) {
  const float cs[8] = {c[0].x, c[0].y, c[0].z, c[0].w, c[1].x, c[1].y, c[1].z, c[1].w};
  const float sn[8] = {s[0].x, s[0].y, s[0].z, s[0].w, s[1].x, s[1].y, s[1].z, s[1].w};
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const float x0 = a[i], x1 = b[i];
    a[i] = x0 * cs[i] - x1 * sn[i];
    b[i] = x0 * sn[i] + x1 * cs[i];
  }
}

extern "C" __global__ void __launch_bounds__(kThreads)
    rope(const T *x, T *out, const float *__restrict__ cos_table,
         const float *__restrict__ sin_table, long long x_batch, long long x_head, long long x_row,
         long long out_batch, long long out_head, long long out_row, long long table_row,
         int seqlen) {
  const long long index = (long long)blockIdx.x * kThreads + threadIdx.x;
  const int row = int(index / kThreadsPerRow), part = int(index % kThreadsPerRow);
  if (row >= seqlen) return;
  const T *xr = x + blockIdx.z * x_batch + blockIdx.y * x_head + row * x_row;
  T *orow = out + blockIdx.z * out_batch + blockIdx.y * out_head + row * out_row;
  const float4 *ct = reinterpret_cast<const float4 *>(cos_table + row * table_row + part * 8);
  const float4 *stab = reinterpret_cast<const float4 *>(sin_table + row * table_row + part * 8);
  const float4 c[2] = {__ldg(ct), __ldg(ct + 1)};
  const float4 s[2] = {__ldg(stab), __ldg(stab + 1)};
  // Element offsets of the two 16-byte chunks this thread owns.
  const int first = INTERLEAVED ? part * 16 : part * 8;
  const int second = INTERLEAVED ? part * 16 + 8 : kPairs + part * 8;
  const uint4 u = *reinterpret_cast<const uint4 *>(xr + first);
  const uint4 w = *reinterpret_cast<const uint4 *>(xr + second);
  const unsigned uw[8] = {u.x, u.y, u.z, u.w, w.x, w.y, w.z, w.w};
  float a[8], b[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    if (INTERLEAVED) { // word i holds pair i: (x[2i], x[2i + 1])
      a[i] = lo_of(uw[i]), b[i] = hi_of(uw[i]);
    } else { // chunk u holds the pairs' first halves, w their second halves
      const unsigned word_a = uw[i / 2], word_b = uw[4 + i / 2];
      a[i] = i % 2 ? hi_of(word_a) : lo_of(word_a);
      b[i] = i % 2 ? hi_of(word_b) : lo_of(word_b);
    }
  }
  rotate(a, b, c, s);
  unsigned r[8];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if (INTERLEAVED) {
      r[i] = pack2<DTYPE>(a[i], b[i]);
      r[4 + i] = pack2<DTYPE>(a[4 + i], b[4 + i]);
    } else {
      r[i] = pack2<DTYPE>(a[2 * i], a[2 * i + 1]);
      r[4 + i] = pack2<DTYPE>(b[2 * i], b[2 * i + 1]);
    }
  }
  *reinterpret_cast<uint4 *>(orow + first) = make_uint4(r[0], r[1], r[2], r[3]);
  *reinterpret_cast<uint4 *>(orow + second) = make_uint4(r[4], r[5], r[6], r[7]);
}
