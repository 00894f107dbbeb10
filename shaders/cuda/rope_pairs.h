// RoPE's rotation of 8 pairs held in two 16-byte chunks, shared by the
// standalone pass (rope.cu) and flash_attention's fused ROPE, so both round the
// same float32 arithmetic the same way.
#pragma once

#include "numeric.h"

namespace ap {

// (a, b) -> (a cos - b sin, a sin + b cos) for 8 pairs: a[i], b[i] of pair i.
__device__ __forceinline__ void rope_rotate(float (&a)[8], float (&b)[8], const float4 (&c)[2],
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

// Rotates the pairs of chunks u and w in place. INTERLEAVED (GPT-J): word i of
// the two chunks holds pair i, (x[2i], x[2i + 1]); else (GPT-NeoX) u holds the
// 8 pairs' first halves and w their second halves. c, s: the 8 pairs' cosines
// and sines. The rotation runs in float32 and rounds once to Dtype.
template <int Dtype, bool Interleaved>
__device__ __forceinline__ void rope_rotate_chunks(uint4 &u, uint4 &w, const float4 (&c)[2],
                                                   const float4 (&s)[2]) {
  const unsigned uw[8] = {u.x, u.y, u.z, u.w, w.x, w.y, w.z, w.w};
  float a[8], b[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    if (Interleaved) {
      a[i] = Storage<Dtype>::load(half_bits(uw[i] & 0xffffu));
      b[i] = Storage<Dtype>::load(half_bits(uw[i] >> 16));
    } else {
      const unsigned word_a = uw[i / 2], word_b = uw[4 + i / 2];
      a[i] = Storage<Dtype>::load(half_bits(i % 2 ? word_a >> 16 : word_a & 0xffffu));
      b[i] = Storage<Dtype>::load(half_bits(i % 2 ? word_b >> 16 : word_b & 0xffffu));
    }
  }
  rope_rotate(a, b, c, s);
  unsigned r[8];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if (Interleaved) {
      r[i] = pack2<Dtype>(a[i], b[i]);
      r[4 + i] = pack2<Dtype>(a[4 + i], b[4 + i]);
    } else {
      r[i] = pack2<Dtype>(a[2 * i], a[2 * i + 1]);
      r[4 + i] = pack2<Dtype>(b[2 * i], b[2 * i + 1]);
    }
  }
  u = make_uint4(r[0], r[1], r[2], r[3]);
  w = make_uint4(r[4], r[5], r[6], r[7]);
}

// Rotates in place the two 16-byte chunks of shared memory at `first` and
// `second` (one row's 8 pairs, laid out as rope_rotate_chunks takes them): the
// flash kernels' fused RoPE on a landed Q tile.
template <int Dtype, bool Interleaved>
__device__ __forceinline__ void rope_rotate_shared(unsigned first, unsigned second,
                                                   const float4 (&c)[2], const float4 (&s)[2]) {
  uint4 u, w;
  asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w)
               : "r"(first));
  asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(w.x), "=r"(w.y), "=r"(w.z), "=r"(w.w)
               : "r"(second));
  rope_rotate_chunks<Dtype, Interleaved>(u, w, c, s);
  asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(first), "r"(u.x), "r"(u.y),
               "r"(u.z), "r"(u.w));
  asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(second), "r"(w.x), "r"(w.y),
               "r"(w.z), "r"(w.w));
}

// cos and sin of 8 pairs from float32 tables (offset `at`, 16-byte aligned),
// as rope_rotate_chunks takes them; read through the read-only cache.
__device__ __forceinline__ void rope_table_chunks(float4 (&c)[2], float4 (&s)[2],
                                                  const float *__restrict__ cos,
                                                  const float *__restrict__ sin, long long at) {
  const float4 *ct = reinterpret_cast<const float4 *>(cos + at);
  const float4 *sn = reinterpret_cast<const float4 *>(sin + at);
  c[0] = __ldg(ct), c[1] = __ldg(ct + 1);
  s[0] = __ldg(sn), s[1] = __ldg(sn + 1);
}

// The same from shared memory: cos at `cos_at`, sin at `sin_at` (16-byte
// aligned shared addresses of the 8 pairs' first floats).
__device__ __forceinline__ void rope_table_chunks_shared(float4 (&c)[2], float4 (&s)[2],
                                                         unsigned cos_at, unsigned sin_at) {
  float4 *out[4] = {&c[0], &c[1], &s[0], &s[1]};
  const unsigned at[4] = {cos_at, cos_at + 16, sin_at, sin_at + 16};
#pragma unroll
  for (int i = 0; i < 4; ++i)
    asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];\n"
                 : "=f"(out[i]->x), "=f"(out[i]->y), "=f"(out[i]->z), "=f"(out[i]->w)
                 : "r"(at[i]));
}

} // namespace ap
