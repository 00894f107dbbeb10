// 2^x on the FMA pipe instead of the MUFU unit (whose ex2 issues 16 results
// per clock per SM, about the rate the wgmma kernel's ping-pong needs one
// warpgroup's softmax to keep up with the other's GEMMs at D=64). The flash
// softmax sends one score in EXP2_POLY here; the rest stay on ex2.approx.
#pragma once

namespace ap {

// For the softmax's exponents x = s * c - max (at most a rounding above 0,
// -inf for masked scores, NaN for a NaN score): x = j + f with j = round(x)
// and f in [-0.5, 0.5]; 2^f by a cubic with p(0) = 1 (so the row max's
// weight is 1, as from ex2) and the least maximum relative error under that
// (1.0e-4, a tenth of an fp16 ulp; tests/test_exp2_poly.py), 2^j by
// writing j + 127 into a float's exponent. x is first clamped to -127 with
// NaN kept (max.NaN), where the exponent's 2^-127 is written as 0: masked
// scores give exactly 0, as ex2.approx.ftz does, and NaN stays NaN through
// the product. Adding 0x1.8p23 + 127 rounds x + 127 into the low mantissa
// bits of t, so t's bits shifted left by 23 are j + 127 in the exponent
// field (the magic's own mantissa bit shifts out).
__device__ __forceinline__ float exp2_poly(float x) {
  float clamped;
  asm("max.NaN.f32 %0, %1, %2;" : "=f"(clamped) : "f"(x), "f"(-127.f));
  constexpr float kMagic = 12582912.f + 127.f; // 0x1.8p23 + 127
  const float t = __fadd_rn(clamped, kMagic);
  const float f = __fsub_rn(clamped, __fsub_rn(t, kMagic)); // x - round(x)
  float p = __fmaf_rn(0.0550089292f, f, 0.242210969f);
  p = __fmaf_rn(p, f, 0.693282902f);
  p = __fmaf_rn(p, f, 1.f);
  return __fmul_rn(p, __uint_as_float(__float_as_uint(t) << 23u));
}

} // namespace ap
