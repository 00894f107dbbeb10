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
#include "rope_pairs.h"

using namespace ap;
typedef half_bits T;

constexpr int kPairs = HEAD_DIM / 2;
constexpr int kThreadsPerRow = kPairs / 8;
constexpr int kThreads = 128;
static_assert(HEAD_DIM % 16 == 0 && HEAD_DIM <= 256, "HEAD_DIM: a multiple of 16, at most 256");
static_assert(DTYPE == AP_DTYPE_FLOAT16 || DTYPE == AP_DTYPE_BFLOAT16, "fp16 or bf16");

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
  uint4 u = *reinterpret_cast<const uint4 *>(xr + first);
  uint4 w = *reinterpret_cast<const uint4 *>(xr + second);
  rope_rotate_chunks<DTYPE, INTERLEAVED>(u, w, c, s);
  *reinterpret_cast<uint4 *>(orow + first) = u;
  *reinterpret_cast<uint4 *>(orow + second) = w;
}
