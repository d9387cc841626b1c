// Attention forward for float16 / bfloat16 on tensor cores (sm_80, sm_90):
// FlashAttention-2 style.
//
// One CTA computes one (batch, query head, block of kBlockM = 16 * kMT * kWarps
// query rows); each warp owns 16 * kMT rows (kMT m16 tiles). K and V tiles of kBlockN keys stream through a
// two-stage cp.async pipeline in shared memory; S = Q K^T and O += P V run on
// mma.sync m16n8k16 with float32 accumulators; the online softmax lives in
// registers (the S accumulator fragment is reused as the A fragment of P V).
//
// Head dims are padded to kD / kDv (multiples of 32) with zero-filled columns;
// shared-memory rows are padded by 16 bytes, which makes every ldmatrix and
// cp.async pattern bank-conflict free. Out-of-range rows (queries >= q_len,
// keys >= kv_length(b)) are never read: their shared-memory rows are zero-filled.
//
// Semantics are cpu::AttentionForward's (cuda/cpu/attention_cpu.cc), through the
// score layer (jax_mea/score.h): keys outside VisibleKeys are dropped, logits
// scale * q.k then softcap, then the mask; a row with no key gives 0. Logits are
// in log2 units (times log2 e) so that the softmax uses ex2.
#pragma once

#include <climits>
#include <cstdint>

#include "kernels/common.cuh"
#include "kernels/fwd_softmax.cuh"
#include "kernels/launch_utils.h"


namespace jax_mea::cuda {

// Per-launch constants computed on the host.
struct FwdArgs {
  FwdGrid grid;  // common.cuh: blockIdx.x -> (query block, head, batch)
  bool q_vec, k_vec, v_vec, o_vec;  // 16-byte loads/stores allowed
  Logits logits;                    // in log2 units
};

template <int kD, int kDv, int kWarps, int kMT, int kBlockN>
struct FwdTraits {
  static_assert(kD % 32 == 0 && kDv % 32 == 0, "padded head dims are multiples of 32");
  static_assert(kBlockN % 16 == 0, "key tile is a multiple of 16");
  static constexpr int kWarpRows = 16 * kMT;  // query rows per warp (kMT m16 tiles)
  static constexpr int kBlockM = kWarpRows * kWarps;
  static constexpr int kThreads = 32 * kWarps;
  // +8 elements (16 bytes) per row: conflict-free ldmatrix for any multiple of 32.
  static constexpr int kQStride = (kD > kDv ? kD : kDv) + 8;  // Q tile, reused to stage O
  static constexpr int kKStride = kD + 8;
  static constexpr int kVStride = kDv + 8;
  static constexpr int kQElems = kBlockM * kQStride;
  static constexpr int kKElems = kBlockN * kKStride;
  static constexpr int kVElems = kBlockN * kVStride;
  static constexpr int kSmemElems = kQElems + 2 * (kKElems + kVElems);
};

// Copies rows [row0, row0 + kRows) x columns [0, kCols) of a strided 2D view into
// shared memory (row stride kStride). Rows >= row_end and columns >= dim are
// zero-filled without being read. vec: 16-byte cp.async (dim % 8 == 0 and the
// view 16-byte aligned); else synchronous element copies. The 16-byte loop is
// fully unrolled: measured 15% faster than `unroll 1` on an H100 despite a few
// spilled registers.
template <typename T, int kRows, int kCols, int kStride, int kThreads>
__device__ __forceinline__ void LoadTile(T* smem, const T* gbase, int64_t seq_stride, int row0,
                                         int row_end, int dim, bool vec) {
  constexpr int kChunks = kCols / 8;
  constexpr int kTotal = kRows * kChunks;
  if (vec) {
    if constexpr (kThreads % kChunks == 0 && kTotal % kThreads == 0) {
      // Each pass copies whole rows: a thread's chunks are one column, kRowsPerPass
      // rows apart, their addresses a constant step from one base (the backward
      // loads a Q and a dO tile per tile, where per-chunk index and 64-bit address
      // math was a tenth of its instructions).
      constexpr int kRowsPerPass = kThreads / kChunks;
      const unsigned tid = threadIdx.x;
      const int r = static_cast<int>(tid / kChunks), col = static_cast<int>(tid % kChunks) * 8;
      // Pass i's row is in bounds where i * kRowsPerPass < rows_in.
      const int rows_in = row_end - row0 - r;
      const bool col_ok = col < dim;
      const T* src = gbase + static_cast<int64_t>(row0 + r) * seq_stride + col;
      const int64_t step = kRowsPerPass * seq_stride;
      const uint32_t dst = SmemAddr(smem + r * kStride + col);
#pragma unroll
      for (int i = 0; i < kRows / kRowsPerPass; ++i) {
        const bool ok = col_ok && i * kRowsPerPass < rows_in;
        CpAsync16(dst + i * kRowsPerPass * kStride * static_cast<int>(sizeof(T)),
                  ok ? src + i * step : gbase, ok ? 16 : 0);
      }
    } else {
#pragma unroll
      for (int c0 = 0; c0 < kTotal; c0 += kThreads) {
        const int c = c0 + static_cast<int>(threadIdx.x);
        if (kTotal % kThreads == 0 || c < kTotal) {
          const int r = c / kChunks;
          const int col = (c % kChunks) * 8;
          const int row = row0 + r;
          const bool ok = row < row_end && col < dim;
          const T* src = ok ? gbase + row * seq_stride + col : gbase;
          CpAsync16(SmemAddr(smem + r * kStride + col), src, ok ? 16 : 0);
        }
      }
    }
  } else {
    for (int e = threadIdx.x; e < kRows * kCols; e += kThreads) {
      const int r = e / kCols;
      const int col = e % kCols;
      const int row = row0 + r;
      T v = FromF32<T>(0.f);
      if (row < row_end && col < dim) v = gbase[row * seq_stride + col];
      smem[r * kStride + col] = v;
    }
  }
}

template <typename T, int kD, int kDv, int kWarps, int kMT, int kBlockN, bool kQInRegs>
__global__ void __launch_bounds__(32 * kWarps, 1)
    AttentionFwdKernel(const __grid_constant__ AttentionParams p, const FwdArgs a) {
  using Tr = FwdTraits<kD, kDv, kWarps, kMT, kBlockN>;
  constexpr int kBlockM = Tr::kBlockM;
  constexpr int kWarpRows = Tr::kWarpRows;
  constexpr int kThreads = Tr::kThreads;
  constexpr int kNT = kBlockN / 8;  // n8 tiles of S
  constexpr int kDT = kDv / 8;      // n8 tiles of O
  constexpr int kR = 2 * kMT;       // rows per thread: (m tile mt, half k) -> index 2 * mt + k

  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sK = sQ + Tr::kQElems;      // two stages
  T* sV = sK + 2 * Tr::kKElems;  // two stages

  const int tid = threadIdx.x;
  const int warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, tig = lane & 3;

  const auto [b, h, m0, q_end, kv_len, off, q_base, k_base, v_base, o_base, lse] =
      ThisFwdBlock<T>(p, a.grid, kBlockM);

  // Keys any row of this block may see ([blk_lo, blk_hi)), and keys every row sees
  // (tiles inside need no mask).
  const BlockKeys block_keys = RowBlockKeys(p, m0 + off, q_end - 1 + off, kv_len);
  const int blk_lo = block_keys.any.lo, blk_hi = block_keys.any.hi;
  const KeyRange seen_by_all = block_keys.all;

  if (blk_hi <= blk_lo) {  // no row sees any key: zeros, lse -inf
    for (int e = tid; e < (q_end - m0) * p.v_head_size; e += kThreads) {
      const int r = e / p.v_head_size, c = e % p.v_head_size;
      o_base[(m0 + r) * p.out_strides.seq + c] = FromF32<T>(0.f);
    }
    if (lse != nullptr) {
      for (int i = m0 + tid; i < q_end; i += kThreads) lse[i] = kNegInf;
    }
    return;
  }
  const int n_first = blk_lo / kBlockN;
  const int n_end = (blk_hi + kBlockN - 1) / kBlockN;

  // Prologue: Q and the first K/V tile.
  LoadTile<T, kBlockM, kD, Tr::kQStride, kThreads>(sQ, q_base, p.q_strides.seq, m0, p.q_len,
                                                    p.head_size, a.q_vec);
  LoadTile<T, kBlockN, kD, Tr::kKStride, kThreads>(sK, k_base, p.k_strides.seq,
                                                    n_first * kBlockN, kv_len, p.head_size,
                                                    a.k_vec);
  LoadTile<T, kBlockN, kDv, Tr::kVStride, kThreads>(sV, v_base, p.v_strides.seq,
                                                     n_first * kBlockN, kv_len, p.v_head_size,
                                                     a.v_vec);
  CpAsyncCommit();

  // This thread's rows: warp * kWarpRows + 16 * mt + g + 8 * k.
  // Rows >= q_len see nothing, so their mask row is never read.
  KeyRange rows[kR];
#pragma unroll
  for (int r = 0; r < kR; ++r) {
    const int i = m0 + warp * kWarpRows + 16 * (r >> 1) + g + 8 * (r & 1);
    rows[r] = i < p.q_len ? VisibleKeys(p, i + off, kv_len) : KeyRange{0, 0};
  }
  const int64_t mask_bh = MaskRow(p, b, h, 0);

  float acc[kMT][kDT][4];
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int d = 0; d < kDT; ++d) acc[mt][d][0] = acc[mt][d][1] = acc[mt][d][2] = acc[mt][d][3] = 0.f;
  float row_max[kR], row_sum[kR];  // row_sum: this thread's partial sums (quad-reduced at the end)
#pragma unroll
  for (int r = 0; r < kR; ++r) {
    row_max[r] = kNegInf;
    row_sum[r] = 0.f;
  }

  const T* sQw = sQ + warp * kWarpRows * Tr::kQStride;
  const uint32_t q_frag_addr = SmemAddr(sQw + (lane & 15) * Tr::kQStride + (lane >> 4) * 8);
  constexpr int kQRegTiles = kQInRegs ? kD / 16 : 1;
  uint32_t qf[kMT][kQRegTiles][4];

  CpAsyncWait<0>();
  __syncthreads();
  if constexpr (kQInRegs) {
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int ks = 0; ks < kD / 16; ++ks)
        LdMatrixX4(qf[mt][ks], q_frag_addr + (mt * 16 * Tr::kQStride + ks * 16) * 2);
  }

  // Per-lane offsets of the ldmatrix row addresses inside a K / V tile.
  const int k_ld_off = ((lane & 7) + ((lane >> 4) << 3)) * Tr::kKStride + ((lane >> 3) & 1) * 8;
  const int v_ld_off = ((lane & 7) + ((lane >> 3) & 1) * 8) * Tr::kVStride + (lane >> 4) * 8;

  for (int n = n_first; n < n_end; ++n) {
    const int stage = (n - n_first) & 1;
    if (n + 1 < n_end) {
      const int nxt = stage ^ 1;
      LoadTile<T, kBlockN, kD, Tr::kKStride, kThreads>(sK + nxt * Tr::kKElems, k_base,
                                                        p.k_strides.seq, (n + 1) * kBlockN,
                                                        kv_len, p.head_size, a.k_vec);
      LoadTile<T, kBlockN, kDv, Tr::kVStride, kThreads>(sV + nxt * Tr::kVElems, v_base,
                                                         p.v_strides.seq, (n + 1) * kBlockN,
                                                         kv_len, p.v_head_size, a.v_vec);
      CpAsyncCommit();
      CpAsyncWait<1>();
    } else {
      CpAsyncWait<0>();
    }
    __syncthreads();

    const T* sKs = sK + stage * Tr::kKElems;
    const T* sVs = sV + stage * Tr::kVElems;
    const uint32_t k_addr = SmemAddr(sKs + k_ld_off);
    const uint32_t v_addr = SmemAddr(sVs + v_ld_off);

    // S = Q K^T (kWarpRows rows x kBlockN keys per warp).
    float s[kMT][kNT][4];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int t = 0; t < kNT; ++t) s[mt][t][0] = s[mt][t][1] = s[mt][t][2] = s[mt][t][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < kD / 16; ++ks) {
      uint32_t qa[kMT][4];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        if constexpr (kQInRegs) {
#pragma unroll
          for (int e = 0; e < 4; ++e) qa[mt][e] = qf[mt][ks][e];
        } else {
          LdMatrixX4(qa[mt], q_frag_addr + (mt * 16 * Tr::kQStride + ks * 16) * 2);
        }
      }
#pragma unroll
      for (int np = 0; np < kBlockN / 16; ++np) {
        uint32_t kb[4];
        LdMatrixX4(kb, k_addr + (np * 16 * Tr::kKStride + ks * 16) * 2);
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
          Mma16816<T>(s[mt][2 * np], qa[mt], kb[0], kb[1]);
          Mma16816<T>(s[mt][2 * np + 1], qa[mt], kb[2], kb[3]);
        }
      }
    }

    // Scale (and softcap) into log2 units, or, for plain logits, in the softmax's
    // exponent (FoldScale).
    const bool fold = FoldScale(a.logits, p.mask_kind != MaskKind::kNone);
    if (!fold) ScoresToLogits(s, a.logits);

    // Visibility and mask: only tiles that some row does not see whole, or with a mask tensor.
    const int j0 = n * kBlockN;
    if (!KeysAllVisible(p, seen_by_all, j0, kBlockN)) {
      MaskLogits<T>(s, p, a.logits, rows, mask_bh, m0 + warp * kWarpRows + g, tig, j0);
    }

    // Online softmax; s becomes P (unnormalised probabilities).
    OnlineSoftmax(s, acc, row_max, row_sum, fold ? a.logits.in : 1.f);

    // O += P V.
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      uint32_t pa[kMT][4];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) PFragment<T>(pa[mt], s, mt, kk);
#pragma unroll
      for (int dp = 0; dp < kDv / 16; ++dp) {
        uint32_t vb[4];
        LdMatrixX4Trans(vb, v_addr + (kk * 16 * Tr::kVStride + dp * 16) * 2);
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
          Mma16816<T>(acc[mt][2 * dp], pa[mt], vb[0], vb[1]);
          Mma16816<T>(acc[mt][2 * dp + 1], pa[mt], vb[2], vb[3]);
        }
      }
    }
    __syncthreads();  // this stage is refilled two iterations on
  }

  // Normalise, stage the warp's rows in its own rows of sQ, store 16-byte rows.
  T* sO = sQ + warp * kWarpRows * Tr::kQStride;
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const float sum = QuadSum(row_sum[2 * mt + k]);
      const float inv = RowScale(sum);
      const int i = m0 + warp * kWarpRows + 16 * mt + g + 8 * k;
      if (lse != nullptr && tig == 0 && i < p.q_len) {
        lse[i] = RowLogSumExp(row_max[2 * mt + k], sum, /*log2_units=*/true);
      }
#pragma unroll
      for (int d = 0; d < kDT; ++d) {
        *reinterpret_cast<uint32_t*>(sO + (16 * mt + g + 8 * k) * Tr::kQStride + d * 8 + tig * 2) =
            Pack2<T>(acc[mt][d][2 * k] * inv, acc[mt][d][2 * k + 1] * inv);
      }
    }
  }
  __syncwarp();
  const int row0 = m0 + warp * kWarpRows;
  if (a.o_vec) {
    constexpr int kChunks = kDv / 8;
#pragma unroll
    for (int c = lane; c < kWarpRows * kChunks; c += 32) {
      const int r = c / kChunks, col = (c % kChunks) * 8;
      if (row0 + r < p.q_len && col < p.v_head_size) {
        *reinterpret_cast<uint4*>(o_base + (row0 + r) * p.out_strides.seq + col) =
            *reinterpret_cast<const uint4*>(sO + r * Tr::kQStride + col);
      }
    }
  } else {
    for (int e = lane; e < kWarpRows * kDv; e += 32) {
      const int r = e / kDv, col = e % kDv;
      if (row0 + r < p.q_len && col < p.v_head_size) {
        o_base[(row0 + r) * p.out_strides.seq + col] = sO[r * Tr::kQStride + col];
      }
    }
  }
}

// 16-byte loads/stores of a 16-bit tensor: rows of dim % 8 == 0, 16-byte aligned
// base and strides.
inline bool Vec16Ok(const void* ptr, const TensorStrides& s, int dim) {
  return dim % 8 == 0 && reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && s.batch % 8 == 0 &&
         s.head % 8 == 0 && s.seq % 8 == 0;
}

template <typename T, int kD, int kDv, int kWarps, int kMT, int kBlockN, bool kQInRegs>
cudaError_t LaunchFwdKernel(const AttentionParams& p, cudaStream_t stream) {
  using Tr = FwdTraits<kD, kDv, kWarps, kMT, kBlockN>;
  auto kernel = AttentionFwdKernel<T, kD, kDv, kWarps, kMT, kBlockN, kQInRegs>;
  constexpr size_t kSmem = sizeof(T) * Tr::kSmemElems;
  static DeviceFlags smem_set;
  if (cudaError_t err = EnsureDynamicSmem(kernel, kSmem, smem_set); err != cudaSuccess) return err;

  FwdArgs a;
  a.grid = MakeFwdGrid(p, Tr::kBlockM);
  a.q_vec = Vec16Ok(p.q, p.q_strides, p.head_size);
  a.k_vec = Vec16Ok(p.k, p.k_strides, p.head_size);
  a.v_vec = Vec16Ok(p.v, p.v_strides, p.v_head_size);
  a.o_vec = Vec16Ok(p.out, p.out_strides, p.v_head_size);
  a.logits = MakeLogits(p, kLog2e, /*q_scaled=*/false);
  const int64_t blocks = a.grid.blocks;
  if (blocks <= 0) return cudaSuccess;
  if (blocks > INT_MAX) return cudaErrorInvalidConfiguration;
  kernel<<<static_cast<unsigned>(blocks), Tr::kThreads, kSmem, stream>>>(p, a);
  return cudaGetLastError();
}

// The configuration each forward row of the head-dim table runs with. Four warps
// x 32 rows (64x64 to 192x128) run two CTAs per SM, and each K/V fragment read
// from shared memory feeds two MMAs; 192x192 and 256x256 keep the default (8
// warps x 16 rows: the 4-warp version spills). Each was the fastest measured
// (kernel_check --bench; the numbers are in benchmarks/RESULTS.md).
template <int kD, int kDv>
struct FwdConfig {
  static constexpr int kWarps = 8;
  static constexpr int kMT = 1;
  static constexpr int kBlockN = kD + kDv <= 320 ? 64 : 32;
  static constexpr bool kQInRegs = kD <= 128;
};
struct FwdConfigW4Mt2N32 {
  static constexpr int kWarps = 4;
  static constexpr int kMT = 2;
  static constexpr int kBlockN = 32;
  static constexpr bool kQInRegs = false;
};
template <> struct FwdConfig<96, 96> : FwdConfigW4Mt2N32 {};
template <> struct FwdConfig<128, 128> : FwdConfigW4Mt2N32 {};
template <> struct FwdConfig<192, 128> : FwdConfigW4Mt2N32 {};
template <> struct FwdConfig<64, 64> {
  static constexpr int kWarps = 4;
  static constexpr int kMT = 2;
  static constexpr int kBlockN = 64;
  static constexpr bool kQInRegs = true;
};

template <typename T, int kD, int kDv>
cudaError_t RunFwd(const AttentionParams& p, cudaStream_t stream) {
  using C = FwdConfig<kD, kDv>;
  return LaunchFwdKernel<T, kD, kDv, C::kWarps, C::kMT, C::kBlockN, C::kQInRegs>(p, stream);
}

}  // namespace jax_mea::cuda
