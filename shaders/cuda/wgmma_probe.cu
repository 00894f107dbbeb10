// One-wgmma probes of the Hopper operand layouts (wgmma_layout.h, wgmma.h) on
// known data, so a layout bug shows as one wrong matrix instead of a wrong
// attention output. Constants: DTYPE; optionally CHECK_* / EXPECT_* (a host
// model's expected encodings, checked at compile time).
//
// wgmma_probe (one CTA, 128 threads = one warpgroup), the shapes of
// flash_attention_wgmma at HEAD_DIM 128, BLOCK_N 64:
//   s_out[64][64]  = A B^T, A [64][128] and B [64][128] row-major: 8 SS wgmmas
//                    over two 64-column blocks (K-major descriptors);
//   o_out[64][128] = P V, P = s rounded to DTYPE, packed from the accumulator
//                    into A fragments, V [64][128] row-major: 4 RS wgmmas with
//                    the transpose bit (MN-major descriptor, LBO = 2 blocks).
// Both outputs are written from the documented accumulator layout (wgmma.h).
// With entries in {-1, 0, 1} every value is an exact small integer, so the
// host compares bit for bit.
#include "attention_params.h"
#include "mma.h"
#include "numeric.h"
#include "wgmma.h"

using namespace ap;
typedef half_bits T;

// The encodings, at compile time, against values worked out by hand from the
// PTX ISA's bit table (start >> 4 in bits 0..13, LBO >> 4 in 16..29, SBO >> 4
// in 32..45, swizzle in 62..63).
static_assert(kmajor_sw128(0x400) == 0x4000004000010040ull, "K-major descriptor");
static_assert(mnmajor_sw128(0x12340, 64) == 0x4000004002001234ull, "MN-major descriptor");
static_assert(mnmajor_sw128(0x3fff0, 128) == 0x4000004004003fffull, "start address field");
static_assert(kmajor_k16_offset(64, 5) == 64 * 128 + 32, "k16 step 5: block 1, +32 bytes");

// sw128_offset is the hardware's swizzle of the row-major address, in every
// column block of a 64-row tile.
AP_HOST_DEVICE constexpr bool sw128_matches_hardware() {
  for (unsigned chunk = 0; chunk < 16; ++chunk)
    for (unsigned row = 0; row < 64; ++row) {
      const unsigned block = (chunk / 8) * 64 * 128;
      if (sw128_offset(64, row, chunk) != block + sw128_hardware(row * 128 + (chunk % 8) * 16))
        return false;
    }
  return true;
}
static_assert(sw128_matches_hardware(), "sw128_offset is the 128-byte swizzle");

#ifdef EXPECT_LO
// A host model's descriptor for (CHECK_START, CHECK_LBO, CHECK_SBO), split in halves.
constexpr unsigned long long kChecked = wgmma_descriptor(CHECK_START, CHECK_LBO, CHECK_SBO, 1);
static_assert(unsigned(kChecked) == unsigned(EXPECT_LO), "descriptor low word");
static_assert(unsigned(kChecked >> 32) == unsigned(EXPECT_HI), "descriptor high word");
#endif
#ifdef EXPECT_OFFSET
static_assert(sw128_offset(CHECK_ROWS, CHECK_ROW, CHECK_CHUNK) == EXPECT_OFFSET, "sw128 offset");
#endif

// Row-major [64][128] global -> sw128 tile, by ordinary stores (generic proxy).
__device__ __forceinline__ void store_tile(unsigned tile, const T *src) {
  for (int i = threadIdx.x; i < 64 * 16; i += 128) {
    const int row = i / 16, chunk = i % 16;
    const uint4 x = *reinterpret_cast<const uint4 *>(src + row * 128 + chunk * 8);
    asm volatile(
        "st.shared.v4.b32 [%0], {%1,%2,%3,%4};\n" ::"r"(tile + sw128_offset(64, row, chunk)),
        "r"(x.x), "r"(x.y), "r"(x.z), "r"(x.w)
        : "memory");
  }
}

extern "C" __global__ void __launch_bounds__(128, 1)
    wgmma_probe(const T *__restrict__ a, const T *__restrict__ b, const T *__restrict__ v,
                float *__restrict__ s_out, float *__restrict__ o_out) {
  __shared__ __align__(1024) T tiles[3][64 * 128];
  const unsigned a_tile = smem_address(tiles[0]), b_tile = smem_address(tiles[1]),
                 v_tile = smem_address(tiles[2]);
  store_tile(a_tile, a);
  store_tile(b_tile, b);
  store_tile(v_tile, v);
  fence_proxy_async_shared();
  __syncthreads();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  float s[8][4];
  fence_operands(s);
  wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < 8; ++kk)
    wgmma_ss<DTYPE>(s, kmajor_sw128(a_tile + kmajor_k16_offset(64, kk)),
                    kmajor_sw128(b_tile + kmajor_k16_offset(64, kk)), kk > 0);
  wgmma_commit();
  wgmma_wait<0>();
  fence_operands(s);

  float o[16][4];
#pragma unroll
  for (int j = 0; j < 16; ++j)
    o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
  unsigned p[4][4];
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    p[kk][0] = pack2<DTYPE>(s[2 * kk][0], s[2 * kk][1]);
    p[kk][1] = pack2<DTYPE>(s[2 * kk][2], s[2 * kk][3]);
    p[kk][2] = pack2<DTYPE>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
    p[kk][3] = pack2<DTYPE>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
    fence_operands(p[kk]);
  }
  fence_operands(o);
  wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < 4; ++kk)
    wgmma_rs<DTYPE>(o, p[kk], mnmajor_sw128(v_tile + mnmajor_k16_offset(kk), 64), 1);
  wgmma_commit();
  wgmma_wait<0>();
  fence_operands(o);

  // Accumulator layout: row 16 * warp + g + 8 * (e / 2), column 8 * j + 2 * t + e % 2.
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const int row = 16 * warp + g + 8 * (e / 2);
#pragma unroll
    for (int j = 0; j < 8; ++j)
      s_out[row * 64 + 8 * j + 2 * t + e % 2] = s[j][e];
#pragma unroll
    for (int j = 0; j < 16; ++j)
      o_out[row * 128 + 8 * j + 2 * t + e % 2] = o[j][e];
  }
}

#ifdef EXPECT_SHARED
// The host's mirror (hopper_layout.shared_bytes) of the kernel's shared memory.
static_assert(flash_wgmma_shared_bytes(CHECK_D, CHECK_M, CHECK_N) == EXPECT_SHARED, "shared bytes");
#endif
