// Chunked causal linear attention, pass 2 of 2: the output of each chunk,
//   O_rows = scale * (Q_rows h[c] + (Q_rows K_c^T masked to s <= t) V_c),
// with h[c] the state before chunk c (linear_attention_chunk_h.cu). Every
// 64-row block is independent: grid (ceil(T / 64), B * H), 4 warps of 16 rows.
//
// A row block lies in one chunk when CHUNK >= 64; at CHUNK 32 it spans two,
// so each warp finds its own chunk (16 divides CHUNK) and the block loads both
// states. Keys run from the block's first chunk start to its last row in
// 64-key tiles (two cp.async stages), like flash attention without softmax:
// S = Q K^T in fp32, masked to keys in [the warp's chunk start, the row], then
// rounded to the input dtype as P for O += P V (the tensor cores take 16-bit
// operands; flash-linear-attention rounds there too). A 16-key group a warp
// cannot see (above its diagonal, or in the other chunk at CHUNK 32) is
// skipped in both products. `scale` multiplies the fp32 result, which equals
// scaling q without rounding q * scale.
//
// Constants: HEAD_DIM (64, 128), CHUNK (32, 64, 128, 256), DTYPE. 128 threads,
// dynamic shared memory (64 + 2 * 2 * 64 + HEAD_DIM * kStates) * HEAD_DIM * 2
// bytes (linear.py's chunk_o_shared_bytes).
#include "linear_attention_common.h"

using namespace ap;
typedef half_bits T;

constexpr int kBlockM = 16 * kLinearWarps;                     // query rows per CTA
constexpr int kBlockN = 64;                                    // keys per step
constexpr int kStates = CHUNK < kBlockM ? kBlockM / CHUNK : 1; // chunks per row block
constexpr int DT = HEAD_DIM / 8;                               // 8-column output tiles
constexpr unsigned kRowBytes = HEAD_DIM * sizeof(T);
constexpr unsigned kTileBytes = kBlockN * kRowBytes;
constexpr unsigned kStateBytes = HEAD_DIM * kRowBytes;
static_assert(HEAD_DIM == 64 || HEAD_DIM == 128, "HEAD_DIM 64 or 128");
static_assert(CHUNK == 32 || CHUNK == 64 || CHUNK == 128 || CHUNK == 256, "CHUNK 32..256");
static_assert(DTYPE == AP_DTYPE_FLOAT16 || DTYPE == AP_DTYPE_BFLOAT16, "fp16 or bf16");
static_assert(CHUNK % kBlockN == 0 || kBlockM % CHUNK == 0, "key tiles align with chunks");

__device__ __forceinline__ unsigned swizzle(int row, int chunk) {
  return swizzled<kRowBytes>(row, chunk);
}

extern "C" __global__ void __launch_bounds__(kLinearThreads, 1)
    linear_attention_chunk_o(const AttentionParams p, const AttentionStrides st,
                             const T *__restrict__ q, const T *__restrict__ k,
                             const T *__restrict__ v, T *__restrict__ o, T *__restrict__ h,
                             const float *__restrict__ h0, float *__restrict__ ht) {
  extern __shared__ __align__(128) unsigned char smem[];
  const unsigned q_tile = smem_address(smem);
  const unsigned k_tiles = q_tile + kBlockM * kRowBytes;
  const unsigned v_tiles = k_tiles + 2 * kTileBytes;
  const unsigned h_tiles = v_tiles + 2 * kTileBytes;

  const int m0 = blockIdx.x * kBlockM;
  const int bh = blockIdx.y;
  const int batch = bh / p.heads, head = bh % p.heads;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane >> 2, t = lane & 3, mi = lane >> 3;
  const int seqlen = p.seqlen_q;
  const int chunks = (seqlen + CHUNK - 1) / CHUNK;
  const T *q_base = q + batch * st.q[0] + head * st.q[1];
  const T *k_base = k + batch * st.k[0] + head * st.k[1];
  const T *v_base = v + batch * st.v[0] + head * st.v[1];
  const long long dd = (long long)HEAD_DIM * HEAD_DIM;

  const int first_chunk = m0 / CHUNK;
  const int n_begin = first_chunk * CHUNK / kBlockN, n_end = m0 / kBlockN + 1;
  // This warp's rows and the keys they may see: [key_lo, its last row].
  const int warp_row0 = warp * 16;
  const int key_lo = (m0 + warp_row0) / CHUNK * CHUNK;
  const int key_hi = m0 + warp_row0 + 15;
  const unsigned h_tile =
      h_tiles + (kStates > 1 ? (key_lo / CHUNK - first_chunk) : 0) * kStateBytes;

  linear_load_rows<kBlockM, HEAD_DIM>(q_tile, q_base, st.q[2], m0, seqlen);
#pragma unroll
  for (int i = 0; i < kStates; ++i) {
    // A state past the last chunk (CHUNK 32, odd chunk count) loads as zeros.
    const int c = first_chunk + i;
    const T *h_chunk = h + ((long long)bh * chunks + min(c, chunks - 1)) * dd;
    linear_load_rows<HEAD_DIM, HEAD_DIM>(h_tiles + i * kStateBytes, h_chunk, HEAD_DIM, 0,
                                         c < chunks ? HEAD_DIM : 0);
  }
  linear_load_rows<kBlockN, HEAD_DIM>(k_tiles, k_base, st.k[2], n_begin * kBlockN, seqlen);
  linear_load_rows<kBlockN, HEAD_DIM>(v_tiles, v_base, st.v[2], n_begin * kBlockN, seqlen);
  cp_async_commit();

  float o_acc[DT][4];
#pragma unroll
  for (int dj = 0; dj < DT; ++dj)
    o_acc[dj][0] = o_acc[dj][1] = o_acc[dj][2] = o_acc[dj][3] = 0.f;
  unsigned q_frag[HEAD_DIM / 16][4];

  for (int n = n_begin; n < n_end; ++n) {
    const int stage = (n - n_begin) & 1;
    cp_async_wait<0>();
    // Tile n has landed, and every warp is done with the stage reloaded below.
    __syncthreads();
    if (n == n_begin) {
#pragma unroll
      for (int kk = 0; kk < HEAD_DIM / 16; ++kk)
        ldmatrix_x4(q_frag[kk], q_tile + swizzle(warp_row0 + (lane & 15), 2 * kk + (lane >> 4)));
      // The carried state: O += Q h[c] (B = h, rows = key dims, like V).
#pragma unroll
      for (int kk = 0; kk < HEAD_DIM / 16; ++kk)
#pragma unroll
        for (int dj = 0; dj < DT; dj += 2) {
          unsigned b[4];
          ldmatrix_x4_trans(b,
                            h_tile + swizzle(kk * 16 + (mi & 1) * 8 + (lane & 7), dj + (mi >> 1)));
          mma_16816<DTYPE>(o_acc[dj], q_frag[kk], b[0], b[1]);
          mma_16816<DTYPE>(o_acc[dj + 1], q_frag[kk], b[2], b[3]);
        }
    }
    if (n + 1 < n_end) {
      const int next = (n + 1) * kBlockN;
      linear_load_rows<kBlockN, HEAD_DIM>(k_tiles + (stage ^ 1) * kTileBytes, k_base, st.k[2], next,
                                          seqlen);
      linear_load_rows<kBlockN, HEAD_DIM>(v_tiles + (stage ^ 1) * kTileBytes, v_base, st.v[2], next,
                                          seqlen);
      cp_async_commit();
    }
    const unsigned k_tile = k_tiles + stage * kTileBytes;
    const unsigned v_tile = v_tiles + stage * kTileBytes;
    const int n0 = n * kBlockN;

    // Which 16-key groups this warp sees at all (warp-uniform).
    bool live[kBlockN / 16];
#pragma unroll
    for (int gi = 0; gi < kBlockN / 16; ++gi)
      live[gi] = n0 + gi * 16 <= key_hi && n0 + gi * 16 + 15 >= key_lo;

    // S = Q K^T (fp32), masked to key_lo <= key <= row.
    float s[kBlockN / 8][4];
#pragma unroll
    for (int j = 0; j < kBlockN / 8; ++j)
      s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < HEAD_DIM / 16; ++kk)
#pragma unroll
      for (int j = 0; j < kBlockN / 8; j += 2) {
        if (!live[j / 2]) continue;
        unsigned b[4];
        ldmatrix_x4(b, k_tile + swizzle(j * 8 + (mi >> 1) * 8 + (lane & 7), 2 * kk + (mi & 1)));
        mma_16816<DTYPE>(s[j], q_frag[kk], b[0], b[1]);
        mma_16816<DTYPE>(s[j + 1], q_frag[kk], b[2], b[3]);
      }
#pragma unroll
    for (int j = 0; j < kBlockN / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int row = m0 + warp_row0 + g + 8 * (e >> 1);
        const int key = n0 + j * 8 + 2 * t + (e & 1);
        s[j][e] = key >= key_lo && key <= row ? s[j][e] : 0.f;
      }

    // O += P V. The C layout of two adjacent 16x8 score tiles is the A layout
    // of one 16x16 operand, so P goes from registers to the tensor cores.
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      if (!live[kk]) continue;
      unsigned a[4];
      a[0] = pack2<DTYPE>(s[2 * kk][0], s[2 * kk][1]);
      a[1] = pack2<DTYPE>(s[2 * kk][2], s[2 * kk][3]);
      a[2] = pack2<DTYPE>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      a[3] = pack2<DTYPE>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int dj = 0; dj < DT; dj += 2) {
        unsigned b[4];
        ldmatrix_x4_trans(b, v_tile + swizzle(kk * 16 + (mi & 1) * 8 + (lane & 7), dj + (mi >> 1)));
        mma_16816<DTYPE>(o_acc[dj], a, b[0], b[1]);
        mma_16816<DTYPE>(o_acc[dj + 1], a, b[2], b[3]);
      }
    }
  }

  T *o_base = o + batch * st.o[0] + head * st.o[1];
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    const int row = m0 + warp_row0 + g + 8 * hh;
    if (row >= seqlen) continue;
    T *o_row = o_base + (long long)row * st.o[2];
#pragma unroll
    for (int dj = 0; dj < DT; ++dj)
      *reinterpret_cast<unsigned *>(o_row + dj * 8 + 2 * t) =
          pack2<DTYPE>(o_acc[dj][2 * hh] * p.scale, o_acc[dj][2 * hh + 1] * p.scale);
  }
}
