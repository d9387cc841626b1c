// The head-dim table: every padded (q/k head dim HP, v head dim HVP) pair a CUDA
// kernel is compiled for, one row each, and the one runtime-to-template switch
// over it. A call runs on the first row, in this order, that holds its head
// sizes (H <= HP, Hv <= HVP; the columns past them are zero-filled) among the
// rows its kernel has. Adding a head dim is one row (CMakeLists.txt generates
// the forward's instance file of each FWD row). Plain C++: the host code, the
// nanobind module and the kernels all read it.
//
//   X(HP, HVP, FWD, DEC, DEC8, SIMT, BWD, SM90)
//   FWD   the tensor-core forward (attention_fwd.cuh), float16 / bfloat16
//   DEC   the tensor-core decode kernel's 4-warp configurations (0, 1)
//   DEC8  also its 8-warp configurations (2: cp.async, 3: TMA), which a DEC row
//         without DEC8 does not run
//   SIMT  the float32 SIMT decode kernel, for max(H, Hv) <= HP (HP == HVP)
//   BWD   the tensor-core backward (attention_bwd.cuh), float16 / bfloat16;
//         two rows to keep compile time small
//   SM90  the sm_90a forward (attention_fwd_sm90.cuh), float16 / bfloat16, on
//         compute capability 9.x (unless JAX_MEA_SM90_FORWARD=0)
//
// 96 is a forward row only: prefill is bound by its MMAs, and 96 in a 128 row
// would do a third more of them. Decode is bound by memory, where padded columns
// cost nothing (zero-filled, never read): 96 takes the 128 row there, which
// saves 2 x 2 kernel instances of compile time and binary size.
#pragma once

#include <type_traits>

#define JAX_MEA_HEAD_DIMS(X)    \
  X(32, 32, 1, 1, 0, 0, 0, 0)    \
  X(64, 64, 1, 1, 1, 1, 1, 1)    \
  X(96, 96, 1, 0, 0, 0, 0, 0)    \
  X(128, 128, 1, 1, 1, 1, 1, 1)  \
  X(192, 128, 1, 1, 1, 0, 0, 1)  \
  X(192, 192, 1, 1, 0, 0, 0, 0)  \
  X(256, 256, 1, 1, 0, 1, 0, 1)

namespace jax_mea::cuda {

// The largest head_size / v_head_size the CUDA kernels take (the CPU kernel
// takes any): the largest HP and HVP of the table.
#define JAX_MEA_MAX_OF_ROW(HP, HVP, ...) (HP > HVP ? HP : HVP),
constexpr int kMaxHeadSize = [] {
  int m = 0;
  for (int d : {JAX_MEA_HEAD_DIMS(JAX_MEA_MAX_OF_ROW)}) m = d > m ? d : m;
  return m;
}();
#undef JAX_MEA_MAX_OF_ROW

// One row as a type, for `if constexpr` on its flags.
template <int HP, int HVP, bool FWD, bool DEC, bool DEC8, bool SIMT, bool BWD, bool SM90>
struct HeadDimRow {
  static constexpr int kHP = HP, kHVP = HVP;
  static constexpr bool kFwd = FWD, kDec = DEC, kDec8 = DEC8, kSimt = SIMT, kBwd = BWD;
  static constexpr bool kSm90 = SM90;
};

// The switch: calls fn(HeadDimRow<...>{}) on each row that holds (h, hv), in
// table order, until fn returns true (fn returns false for a row its kernel
// does not have, `if constexpr` on the row's flag, so that no kernel is
// instantiated for it). Returns whether some call returned true.
template <typename Fn>
bool HeadDimSwitch(int h, int hv, Fn&& fn) {
#define JAX_MEA_HEAD_DIM_CASE(HP, HVP, FWD, DEC, DEC8, SIMT, BWD, SM90)                  \
  if (h <= HP && hv <= HVP && fn(HeadDimRow<HP, HVP, FWD, DEC, DEC8, SIMT, BWD, SM90>{})) { \
    return true;                                                                        \
  }
  JAX_MEA_HEAD_DIMS(JAX_MEA_HEAD_DIM_CASE)
#undef JAX_MEA_HEAD_DIM_CASE
  return false;
}

}  // namespace jax_mea::cuda
