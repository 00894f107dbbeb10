// Chunked causal linear attention, pass 1 of 2: the state entering each chunk.
// S_0 = h0 (or 0), S_{c+1} = S_c + K_c^T V_c; writes h[c] = S_c for every
// chunk and, when ht is given, ht = S_chunks (fp32).
//
// One CTA per (64-column block of V, batch * head, 64-row block of the state,
// i.e. 64 key dims) walks the chunks in order with its 64 x 64 fp32 state tile
// in registers (splitting rows as well as columns gives D=128 four CTAs per
// head instead of two: at B=1, H=16 the one-block-per-head grid left 100 of
// 132 SMs idle, measured on the H200 in session 4): the running sum is one sequential pass, so
// no prefix kernel and no fp32 partial states go through memory. K^T V runs on
// mma.sync m16n8k16: A = K_c^T (ldmatrix.trans of the K tile), B = V_c. The
// next chunk's K and V load (cp.async, two stages) while this one multiplies.
//
// h is stored in the input dtype: chunk_o feeds it to the tensor cores, which
// take 16-bit operands, so it would be rounded there anyway (flash-linear-
// attention does the same); storing it rounded halves pass 2's state traffic
// and gives the same numbers. The carried state itself never leaves fp32.
//
// Constants: HEAD_DIM (64, 128), CHUNK (32, 64, 128, 256), DTYPE. Grid
// (HEAD_DIM / 64, B * H, HEAD_DIM / 64), 128 threads, dynamic shared memory
// 2 * CHUNK * (64 + 64) * 2 bytes (linear.py's chunk_h_shared_bytes).
#include "linear_attention_common.h"

using namespace ap;
typedef half_bits T;

constexpr int kColBlock = 64;                          // V columns per CTA
constexpr int kRowBlock = 64;                          // key dims (state rows) per CTA
constexpr int MT = kRowBlock / (16 * kLinearWarps);    // 16-row state tiles per warp
constexpr int NT = kColBlock / 8;                      // 8-column state tiles
constexpr unsigned kKRowBytes = kRowBlock * sizeof(T); // K tile rows: this block's key dims
constexpr unsigned kVRowBytes = kColBlock * sizeof(T); // V tile rows: this column block
constexpr unsigned kKTileBytes = CHUNK * kKRowBytes;
constexpr unsigned kVTileBytes = CHUNK * kVRowBytes;
static_assert(HEAD_DIM == 64 || HEAD_DIM == 128, "HEAD_DIM 64 or 128");
static_assert(CHUNK == 32 || CHUNK == 64 || CHUNK == 128 || CHUNK == 256, "CHUNK 32..256");
static_assert(DTYPE == AP_DTYPE_FLOAT16 || DTYPE == AP_DTYPE_BFLOAT16, "fp16 or bf16");

extern "C" __global__ void __launch_bounds__(kLinearThreads, 1)
    linear_attention_chunk_h(const AttentionParams p, const AttentionStrides st,
                             const T *__restrict__ q, const T *__restrict__ k,
                             const T *__restrict__ v, T *__restrict__ o, T *__restrict__ h,
                             const float *__restrict__ h0, float *__restrict__ ht) {
  extern __shared__ __align__(128) unsigned char smem[];
  const unsigned k_tiles = smem_address(smem);
  const unsigned v_tiles = k_tiles + 2 * kKTileBytes;

  const int col0 = blockIdx.x * kColBlock;
  const int bh = blockIdx.y;
  const int key0 = blockIdx.z * kRowBlock; // this CTA's first state row (key dim)
  const int batch = bh / p.heads, head = bh % p.heads;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane >> 2, t = lane & 3, mi = lane >> 3;
  const int chunks = (p.seqlen_q + CHUNK - 1) / CHUNK;
  const T *k_base = k + batch * st.k[0] + head * st.k[1] + key0;
  const T *v_base = v + batch * st.v[0] + head * st.v[1] + col0;
  const long long dd = (long long)HEAD_DIM * HEAD_DIM;
  T *h_base = h + (long long)bh * chunks * dd;

  // This thread's state elements: rows (key dims) key0 + row0 + mt * 16 + g
  // (+ 8), columns col0 + j * 8 + 2t (+ 1): the C fragment layout of mma.sync;
  // row0 is the warp's first row within the CTA's block (and K tile column).
  const int row0 = warp * 16 * MT;
  float s[MT][NT][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; e += 2) {
        const long long at = bh * dd + (long long)(key0 + row0 + mt * 16 + g + 4 * e) * HEAD_DIM +
                             col0 + j * 8 + 2 * t;
        const float2 x = h0 ? *reinterpret_cast<const float2 *>(h0 + at) : make_float2(0.f, 0.f);
        s[mt][j][e] = x.x, s[mt][j][e + 1] = x.y;
      }

  linear_load_rows<CHUNK, kRowBlock>(k_tiles, k_base, st.k[2], 0, p.seqlen_q);
  linear_load_rows<CHUNK, kColBlock>(v_tiles, v_base, st.v[2], 0, p.seqlen_q);
  cp_async_commit();

  for (int c = 0; c < chunks; ++c) {
    // h[c] = the state before chunk c, stored while chunk c's tiles land.
    T *h_chunk = h_base + c * dd + (long long)key0 * HEAD_DIM + col0 + 2 * t;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int e = 0; e < 4; e += 2)
          *reinterpret_cast<unsigned *>(h_chunk + (row0 + mt * 16 + g + 4 * e) * HEAD_DIM + j * 8) =
              pack2<DTYPE>(s[mt][j][e], s[mt][j][e + 1]);

    const int stage = c & 1;
    cp_async_wait<0>();
    // Chunk c has landed, and every warp is done with the stage reloaded below.
    __syncthreads();
    if (c + 1 < chunks) {
      const int next = (c + 1) * CHUNK;
      linear_load_rows<CHUNK, kRowBlock>(k_tiles + (stage ^ 1) * kKTileBytes, k_base, st.k[2], next,
                                         p.seqlen_q);
      linear_load_rows<CHUNK, kColBlock>(v_tiles + (stage ^ 1) * kVTileBytes, v_base, st.v[2], next,
                                         p.seqlen_q);
      cp_async_commit();
    }
    const unsigned k_tile = k_tiles + stage * kKTileBytes;
    const unsigned v_tile = v_tiles + stage * kVTileBytes;

    // S += K_c^T V_c over the chunk's tokens, 16 at a time. A = K^T: ldmatrix
    // .trans of 8x8 blocks (8 tokens x 8 key dims) gives the A fragment's
    // (key dim, token) order; matrices 0..3 are (dims +0, tokens +0),
    // (dims +8, tokens +0), (dims +0, tokens +8), (dims +8, tokens +8).
#pragma unroll 2
    for (int kk = 0; kk < CHUNK / 16; ++kk) {
      unsigned a[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
        ldmatrix_x4_trans(a[mt], k_tile + swizzled<kKRowBytes>(kk * 16 + (mi >> 1) * 8 + (lane & 7),
                                                               (row0 + mt * 16) / 8 + (mi & 1)));
#pragma unroll
      for (int j = 0; j < NT; j += 2) {
        unsigned b[4];
        ldmatrix_x4_trans(
            b, v_tile + swizzled<kVRowBytes>(kk * 16 + (mi & 1) * 8 + (lane & 7), j + (mi >> 1)));
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma_16816<DTYPE>(s[mt][j], a[mt], b[0], b[1]);
          mma_16816<DTYPE>(s[mt][j + 1], a[mt], b[2], b[3]);
        }
      }
    }
  }

  if (ht) {
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int e = 0; e < 4; e += 2) {
          const long long at = bh * dd + (long long)(key0 + row0 + mt * 16 + g + 4 * e) * HEAD_DIM +
                               col0 + j * 8 + 2 * t;
          *reinterpret_cast<float2 *>(ht + at) = make_float2(s[mt][j][e], s[mt][j][e + 1]);
        }
  }
}
