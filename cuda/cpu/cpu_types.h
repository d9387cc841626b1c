// Element types of the CPU kernels: float16 and bfloat16 are stored as 16-bit
// patterns and widened to float32 for all arithmetic.
#pragma once

#include <cstdint>
#include <cstring>

#include "jax_mea/params.h"
#include "jax_mea/score.h"

namespace jax_mea::cpu {

struct Half { uint16_t bits; };
struct BFloat16 { uint16_t bits; };

inline float ToFloat(float x) { return x; }

inline float ToFloat(BFloat16 x) {
  uint32_t u = static_cast<uint32_t>(x.bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline float ToFloat(Half x) {
  // IEEE binary16 -> binary32, subnormals, inf and NaN included.
  uint32_t sign = static_cast<uint32_t>(x.bits & 0x8000u) << 16;
  uint32_t exp = (x.bits >> 10) & 0x1fu;
  uint32_t mant = x.bits & 0x3ffu;
  uint32_t u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {
    u = sign | ((exp + 112u) << 23) | (mant << 13);
  } else if (mant == 0) {
    u = sign;
  } else {  // subnormal: normalise
    int shift = 0;
    while (!(mant & 0x400u)) { mant <<= 1; ++shift; }
    u = sign | ((113u - shift) << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

template <typename T> T FromFloat(float x);

template <> inline float FromFloat<float>(float x) { return x; }

template <> inline BFloat16 FromFloat<BFloat16>(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return {static_cast<uint16_t>((u >> 16) | 0x40u)};  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
  return {static_cast<uint16_t>(u >> 16)};
}

template <> inline Half FromFloat<Half>(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return {static_cast<uint16_t>(sign | 0x7e00u)};  // NaN
  if (abs >= 0x477ff000u) return {static_cast<uint16_t>(sign | 0x7c00u)};  // overflow -> inf
  if (abs < 0x38800000u) {  // result is subnormal or zero: add as float with a magic bias
    float f;
    std::memcpy(&f, &abs, sizeof f);
    f += 0.5f;  // 0.5 = 2^-1: the mantissa now holds the rounded subnormal value
    uint32_t r;
    std::memcpy(&r, &f, sizeof r);
    return {static_cast<uint16_t>(sign | (r - 0x3f000000u))};
  }
  uint32_t mant_odd = (abs >> 13) & 1u;
  abs += 0xc8000fffu + mant_odd;  // rebias exponent (-112 << 23) and round to nearest even
  return {static_cast<uint16_t>(sign | (abs >> 13))};
}

}  // namespace jax_mea::cpu

namespace jax_mea {  // the score layer's widening (jax_mea/score.h)
template <>
struct Widen<cpu::Half> {
  static float Apply(cpu::Half x) { return cpu::ToFloat(x); }
};
template <>
struct Widen<cpu::BFloat16> {
  static float Apply(cpu::BFloat16 x) { return cpu::ToFloat(x); }
};
}  // namespace jax_mea

namespace jax_mea::cpu {

// Calls fn(T{}) with the C++ element type of `dtype`.
template <typename Fn>
void DispatchDType(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32: fn(float{}); break;
    case DType::kFloat16: fn(Half{}); break;
    case DType::kBFloat16: fn(BFloat16{}); break;
  }
}

}  // namespace jax_mea::cpu
