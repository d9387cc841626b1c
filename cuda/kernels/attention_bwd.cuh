// Attention backward for float16 / bfloat16 on tensor cores (sm_80, sm_90):
// FlashAttention-2's algorithm (used unless JAX_MEA_CUDA_BACKWARD=0, see
// README "Gradients").
//
// Three launches (four with GQA), deterministic (every float sum runs in a fixed
// order):
//   1. BwdPrepKernel, per query row: D = rowsum(dO * O) and lse2 = lse * log2(e)
//      into the workspace (jax_mea/workspace.h), the row's float32 dQ accumulator
//      and its query block's counter zeroed.
//   2. BwdKernel (on Hopper, for the 64 x 64 and 128 x 128 rows, attention_bwd_sm90.cuh's
//      BwdSm90Kernel instead: the same grid, walk, workspace and order, on TMA and
//      wgmma, dQ added by a writer warp and the copy engine in DqAccOffset<true>'s
//      order): one CTA (8 warps) per (batch, kv head, block of kBlockN = 128
//      keys), K and V held in shared memory. It walks the kBlockM = 64-row query
//      tiles of every head of the GQA group that see a key of the block (heads in
//      order, tiles from the last down; bwd_walk.h), Q and lse2 / D
//      double-buffered by cp.async (dO single-buffered, as in FlashAttention-2,
//      which keeps the CTA within an A100's shared memory), and per tile recomputes
//      S = Q K^T, P = exp2(S log2(e) scale - lse2), dP = dO V^T, dS = P (dP - D);
//      it accumulates dV += P^T dO and dK += dS^T Q in registers (GQA group sum
//      included) and adds the tile's dQ part dS K to the float32 accumulator (rows
//      of kD floats: a thread's 16 vector adds at constant offsets from one
//      address). Those adds are ordered: the query block's counter says how many
//      key blocks have added, and a CTA adds only on its turn (key blocks in
//      increasing order), so dQ is the same bitwise on every run. Turns never
//      deadlock: a CTA waits only for lower key blocks, which have lower blockIdx.x
//      and so were started first. The grid runs groups of kBwdHeadGroup (batch,
//      head) rows, key blocks outer, so that those lower key blocks mostly run a
//      wave earlier.
//   3. BwdDqKernel: dQ = scale * accumulator, in q's dtype.
//   4. GQA (kBwdSplitGroup): BwdKernel runs one CTA per (batch, query head, key
//      block) instead, walking that head's tiles only and writing its dK and dV
//      shares (float32) to the workspace; BwdDkvKernel sums them over the group,
//      heads in order. As many CTAs as without GQA, and each query block's chain of
//      ordered dQ adds spans one head's walk, not the group's (the causal GQA
//      backward was paced by its key block 0 walking every head of the group).
// Warp tiles (8 warps): S and dP 2 x 4 warps of 32 rows x 32 keys; dK and dV 4 x 2
// warps of 32 keys x half the head dim; dQ 2 x 4 warps of 32 rows x a quarter.
//
// dS = P (dP - D) times d logit / d score (the scale, or the softcap's slope),
// through the score layer (jax_mea/score.h) exactly as cpu::AttentionBackward:
// keys outside VisibleKeys and rows with lse = -inf (no key) give P = dS = 0; a
// tile whose keys every row sees, without a mask, skips those checks (as the
// forward). Rows past q_len and keys past kv_length(b) are zero-filled in shared
// memory and never read; rows past q_len are never written. An additive mask's
// gradient (dmask) is not computed here: the host never takes such a call
// (AttentionBackwardUnsupported).
#pragma once

#include <climits>
#include <cstdint>
#include <string>
#include <type_traits>

#include "jax_mea/workspace.h"
#include "kernels/attention_fwd.cuh"  // LoadTile, Vec16Ok
#include "kernels/bwd_walk.h"
#include "kernels/common.cuh"
#include "kernels/launch_utils.h"

namespace jax_mea::cuda {

struct BwdArgs {
  Logits logits;       // log2 units (as lse2), q not pre-scaled
  float scale;         // p.scale: dK and dQ's factor (d logit / d score over the slope kept in dS)
  float* delta;        // workspace sections (jax_mea/workspace.h)
  float* lse2;
  int* sem;
  float* dq_acc;
  float* dk_part;  // with split_group: [B, Nq, kv_pad, dk_stride] and [.., dv_stride]
  float* dv_part;
  int q_pad, num_m_blocks, num_n_blocks, dq_stride;
  int kv_pad, dk_stride, dv_stride;
  // GQA: one CTA per query head (not per kv head) and key block, its dK and dV
  // shares into dk_part / dv_part, summed over the group by BwdDkvKernel.
  bool split_group;
  bool q_vec, k_vec, v_vec, do_vec;
  int head_group;  // the grid order (kBwdHeadGroup)
};

// GQA splits the group over CTAs (BwdArgs::split_group): as many CTAs as without GQA,
// and a query block's chain of ordered dQ adds spans one head, not the group's.
// false: one CTA per kv head walks the group's heads (the earlier kernel; no
// dk_part / dv_part traffic).
constexpr bool kBwdSplitGroup = true;
// The grid's order: groups of kBwdHeadGroup (batch, head) rows, and inside a group the
// key blocks outer (row by row within a key block). A key block's predecessors in its
// query blocks' chains of ordered dQ adds (lower key blocks of the same row) then start
// a group's width earlier, mostly in an earlier wave, instead of all of a row's key
// blocks starting together and each waiting on the one before it; causal grids start
// the longest walks (the lowest key blocks) first. H200, B2 S4096 N32 H128 bf16
// (session 19): 1 (each row's key blocks consecutive) 6.01 ms, causal 3.66; 8: 5.95,
// 3.23; B4 S4096 N32 H64 7.22 -> 6.71, causal 4.29 -> 3.78. Turns still never
// deadlock: the key blocks a CTA waits on have lower blockIdx.x.
constexpr int kBwdHeadGroup = 8;
// Where a tile's dQ part goes (BwdTraits::kEarlyDq). Early: computed and added right
// after P and dS (before dV and dK), its turn passed at the tile's next barrier, so a
// key block waits on the one before it for about one MMA of a tile (dV). Late: last
// (after dK), its turn passed at the next tile's second barrier. Early was 1-2% faster
// everywhere while each row's key blocks ran side by side; with the grid in groups
// (kBwdHeadGroup) late is faster at 128 x 128 and slower at 64 x 64 (H200, session 19:
// H128 5.86 against 5.95 ms, causal 3.23 both; H64 6.95 against 6.72, causal 3.97
// against 3.79).

template <int kD, int kDv>
struct BwdTraits {
  static_assert(kD % 64 == 0 && kDv % 64 == 0, "backward head dims are multiples of 64");
  static constexpr int kWarps = 8;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kBlockN = static_cast<int>(kBwdBlockN);  // keys per CTA
  static constexpr int kBlockM = static_cast<int>(kBwdBlockM);  // query rows per tile
  static_assert(kBlockM == 64, "the warp tiles below are laid out for 64 x 128 with 8 warps");
  static constexpr int kHeadDim = kD, kVHeadDim = kDv;
  static constexpr bool kEarlyDq = kD == 64;  // see above
  // CTAs per SM the registers are budgeted for: two at 64 x 64 (128 registers; it
  // spills 192 bytes, yet ran 15-17% faster: B4 S4096 N32 H64 bf16 on the H200,
  // 7.49 against 8.84 ms, causal 4.46 against 5.40, session 12), else one.
  static constexpr int kMinBlocks = kD == 64 && kDv == 64 ? 2 : 1;
  // +8 elements (16 bytes) per row: conflict-free ldmatrix (plain and transposed).
  static constexpr int kKStride = kD + 8;
  static constexpr int kVStride = kDv + 8;
  static constexpr int kPStride = kBlockN + 8;
  static constexpr int kQElems = kBlockM * kKStride, kDoElems = kBlockM * kVStride;
  static constexpr int kPElems = kBlockM * kPStride;
  // K, V; Q (2 stages); dO; P; dS; then per stage kBlockM floats of lse2 and of D.
  static constexpr int kSmemElems =
      kBlockN * (kKStride + kVStride) + 2 * kQElems + kDoElems + 2 * kPElems;
  static constexpr size_t kSmemBytes = 2 * kSmemElems + 2 * 2 * kBlockM * sizeof(float);
};

// ------------------------------------------------------------------ warp-level MMA

// acc[kMT m16 tiles][kNT n8 tiles] += A (16 kMT x kK) B (kK x 8 kNT), both from
// shared memory. A is stored m-major (A[m][k] = a[m * kLda + k]) or, kAKMajor,
// k-major (A[m][k] = a[k * kLda + m], read by transposing ldmatrix); B n-major
// (B[k][n] = b[n * kLdb + k]) or, kBKMajor, k-major (b[k * kLdb + n]).
template <typename T, int kMT, int kNT, int kK, bool kAKMajor, int kLda, bool kBKMajor, int kLdb>
__device__ __forceinline__ void WarpMma(float (&acc)[kMT][kNT][4], const T* a, const T* b,
                                        int lane) {
  static_assert(kNT % 2 == 0 && kK % 16 == 0, "x4 ldmatrix tiles");
  const uint32_t a_addr =
      SmemAddr(a + (kAKMajor ? ((lane & 7) + ((lane >> 4) & 1) * 8) * kLda + ((lane >> 3) & 1) * 8
                             : (lane & 15) * kLda + (lane >> 4) * 8));
  const uint32_t b_addr =
      SmemAddr(b + (kBKMajor ? ((lane & 7) + ((lane >> 3) & 1) * 8) * kLdb + (lane >> 4) * 8
                             : ((lane & 7) + ((lane >> 4) << 3)) * kLdb + ((lane >> 3) & 1) * 8));
#pragma unroll
  for (int ks = 0; ks < kK / 16; ++ks) {
    uint32_t af[kMT][4];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt) {
      if constexpr (kAKMajor) {
        LdMatrixX4Trans(af[mt], a_addr + (ks * 16 * kLda + mt * 16) * 2);
      } else {
        LdMatrixX4(af[mt], a_addr + (mt * 16 * kLda + ks * 16) * 2);
      }
    }
#pragma unroll
    for (int np = 0; np < kNT / 2; ++np) {
      uint32_t bf[4];
      if constexpr (kBKMajor) {
        LdMatrixX4Trans(bf, b_addr + (ks * 16 * kLdb + np * 16) * 2);
      } else {
        LdMatrixX4(bf, b_addr + (np * 16 * kLdb + ks * 16) * 2);
      }
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        Mma16816<T>(acc[mt][2 * np], af[mt], bf[0], bf[1]);
        Mma16816<T>(acc[mt][2 * np + 1], af[mt], bf[2], bf[3]);
      }
    }
  }
}

template <int kMT, int kNT>
__device__ __forceinline__ void Zero(float (&acc)[kMT][kNT][4]) {
#pragma unroll
  for (int m = 0; m < kMT; ++m)
#pragma unroll
    for (int t = 0; t < kNT; ++t) acc[m][t][0] = acc[m][t][1] = acc[m][t][2] = acc[m][t][3] = 0.f;
}

// A warp's accumulator (rows row0 + 16 mt + g + 8 k, columns col0 + 8 t + 2 tig + e)
// times `factor` into a strided view: rows >= row_end and columns >= dim are not written.
template <typename T, int kMT, int kNT>
__device__ __forceinline__ void StoreFrag(const float (&acc)[kMT][kNT][4], float factor, T* base,
                                          int64_t seq_stride, int row0, int row_end, int col0,
                                          int dim, int lane) {
  const int g = lane >> 2, tig = lane & 3;
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int row = row0 + 16 * mt + g + 8 * k;
      if (row >= row_end) continue;
#pragma unroll
      for (int t = 0; t < kNT; ++t) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int col = col0 + t * 8 + tig * 2 + e;
          if (col < dim) base[row * seq_stride + col] = FromF32<T>(factor * acc[mt][t][2 * k + e]);
        }
      }
    }
  }
}

// A warp's accumulator (rows 16 mt + g + 8 k, columns col0 + 8 t + 2 tig + e) as float
// into rows of `stride` floats at base: columns >= stride are not written.
template <int kMT, int kNT>
__device__ __forceinline__ void StorePartFrag(const float (&acc)[kMT][kNT][4], float* base,
                                              int stride, int col0, int lane) {
  const int g = lane >> 2, tig = lane & 3;
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int k = 0; k < 2; ++k)
#pragma unroll
      for (int t = 0; t < kNT; ++t) {
        const int col = col0 + t * 8 + tig * 2;  // even; stride is a multiple of 8
        if (col < stride) {
          *reinterpret_cast<float2*>(base + static_cast<int64_t>(16 * mt + g + 8 * k) * stride +
                                     col) = make_float2(acc[mt][t][2 * k], acc[mt][t][2 * k + 1]);
        }
      }
}

// ------------------------------------------------------------------ ordered dQ adds

// 4 bytes global -> shared (cp.async.ca: the only size under 16 bytes it takes).
__device__ __forceinline__ void CpAsync4(uint32_t dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(dst), "l"(src) : "memory");
}

// Spins until the counter reads `value` (acquire: the adds before its release are seen).
__device__ __forceinline__ void WaitTurn(const int* sem, int value) {
  int v;
  do {
    asm volatile("ld.acquire.gpu.global.b32 %0, [%1];\n" : "=r"(v) : "l"(sem) : "memory");
  } while (v != value);
}
// Passes the turn on, by one thread after a CTA barrier that follows the CTA's adds:
// the fence orders them (all the CTA's, through the barrier) before the increment, as
// cooperative groups' grid sync and CUTLASS's GenericBarrier do.
__device__ __forceinline__ void PassTurn(int* sem) {
  asm volatile(
      "fence.acq_rel.gpu;\n"
      "red.relaxed.gpu.global.add.s32 [%0], 1;\n" ::"l"(sem)
      : "memory");
}
// acc[0] += x, acc[1] += y in global memory (one vector reduction on sm_90).
__device__ __forceinline__ void RedAdd2(float* acc, float x, float y) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("red.global.add.v2.f32 [%0], {%1, %2};\n" ::"l"(acc), "f"(x), "f"(y) : "memory");
#else
  atomicAdd(acc, x);
  atomicAdd(acc + 1, y);
#endif
}

// The row a warp of a one-warp-per-row launch takes: position i of (batch b, head h),
// heads of len rows each (bh = b * heads + h); false past the last row.
struct WarpRow {
  int b, h, i, lane;
  int64_t bh;
};
__device__ __forceinline__ bool ThisWarpRow(int batch, int heads, int len, WarpRow& r) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= static_cast<int64_t>(batch) * heads * len) return false;
  r.lane = threadIdx.x & 31;
  r.i = static_cast<int>(row % len);
  r.bh = row / len;
  r.h = static_cast<int>(r.bh % heads);
  r.b = static_cast<int>(r.bh / heads);
  return true;
}

// ------------------------------------------------------------------ 1. preprocess

// One warp per padded query row (B * Nq * q_pad rows): D, lse2, the dQ accumulator
// row zeroed, and the query block's counter zeroed by its first row.
template <typename T>
__global__ void BwdPrepKernel(const __grid_constant__ AttentionBackwardParams bp, const BwdArgs a) {
  const AttentionParams& p = bp.fwd;
  WarpRow r;
  if (!ThisWarpRow(p.batch, p.num_heads, a.q_pad, r)) return;
  const auto [b, h, i, lane, bh] = r;
  const int64_t row = bh * a.q_pad + i;  // of the padded rows
  float sum = 0.f, lse = kNegInf;
  if (i < p.q_len) {
    const T* o = static_cast<const T*>(p.out) + b * p.out_strides.batch +
                 h * p.out_strides.head + static_cast<int64_t>(i) * p.out_strides.seq;
    const T* d = static_cast<const T*>(bp.dout) + b * bp.dout_strides.batch +
                 h * bp.dout_strides.head + static_cast<int64_t>(i) * bp.dout_strides.seq;
    for (int c = lane; c < p.v_head_size; c += 32) sum += ToF32(o[c]) * ToF32(d[c]);
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, m);
    lse = bp.lse[bh * p.q_len + i];
  }
  float* acc = a.dq_acc + row * a.dq_stride;
  for (int c = lane; c < a.dq_stride; c += 32) acc[c] = 0.f;
  if (lane == 0) {
    a.delta[row] = sum;
    // +inf: exp2(logit - lse2) = 0 on padded rows and rows that see no key.
    a.lse2[row] = lse == kNegInf ? -kNegInf : lse * kLog2e;
    if (i % kBwdBlockM == 0) a.sem[row / kBwdBlockM] = 0;
  }
}

// ------------------------------------------------------------------ 2. dK, dV (and dQ's parts)

// A main kernel CTA's place (BwdKernel and the sm_90a BwdSm90Kernel): its (batch,
// head) row bh = b * heads + head and key block nb, in the grid order of
// kBwdHeadGroup (groups of head_group rows, key blocks outer; the last group may have
// fewer rows). heads: the query heads with split_group (the CTA walks its head's
// tiles), else the kv heads (the CTA walks the tiles of its group's heads
// [hg_first, hg_end) = [0, group)).
struct BwdPlace {
  int b, hx, nb, kvh, group, hg_first, hg_end, j0, kv_len;
  int64_t off;           // query_offset(b)
  int64_t group_blocks;  // the workspace's query block 0 of the group's first head

  __device__ __forceinline__ BwdPlace(const AttentionParams& p, const BwdArgs& a, int block_n,
                                      int64_t bid) {
    const int heads = a.split_group ? p.num_heads : p.num_kv_heads;
    const int64_t rows = static_cast<int64_t>(p.batch) * heads;
    const int64_t group_first =
        bid / (static_cast<int64_t>(a.num_n_blocks) * a.head_group) * a.head_group;
    const int64_t group_rows = min(static_cast<int64_t>(a.head_group), rows - group_first);
    const int64_t in_group = bid - group_first * a.num_n_blocks;
    nb = static_cast<int>(in_group / group_rows);
    const int64_t bh = group_first + in_group % group_rows;
    hx = static_cast<int>(bh % heads);
    b = static_cast<int>(bh / heads);
    group = p.group_size();
    kvh = a.split_group ? hx / group : hx;
    hg_first = a.split_group ? hx % group : 0;
    hg_end = a.split_group ? hg_first + 1 : group;
    j0 = nb * block_n;
    kv_len = p.kv_length(b);
    off = p.query_offset(b);
    group_blocks = (static_cast<int64_t>(b) * p.num_heads + kvh * group) * a.num_m_blocks;
  }
  // The query head of tile t.
  __device__ __forceinline__ int Head(const BwdTile& t) const { return kvh * group + t.hg; }
  // The query tiles that see keys of this block (bwd_walk.h).
  __device__ __forceinline__ BwdWalk Walk(const AttentionParams& p, int block_m,
                                          int block_n) const {
    return BwdWalk::Make(p, block_m, block_n, kv_len, off, j0, hg_end);
  }
  // Tile t's query block in the workspace's [B, Nq, num_m_blocks] (its rows start at
  // kBwdBlockM times that: q_pad = num_m_blocks * kBwdBlockM).
  __device__ __forceinline__ int64_t BlockIndex(const BwdArgs& a, const BwdTile& t) const {
    return group_blocks + t.hg * a.num_m_blocks + t.m;
  }
  // This key block's turn in tile t's chain of ordered dQ adds: the key blocks that add
  // to its query block are [any.lo / block_n, ceil(any.hi / block_n)), in order.
  __device__ __forceinline__ int Turn(const BwdTile& t, int block_n) const {
    return nb - t.bk.any.lo / block_n;
  }
};

// BwdGrads' plain pass (every key visible, no softcap) in two halves, so that P's
// exp2 can run before dP is known (the sm_90a kernel overlaps it with dP's GEMM).
__device__ __forceinline__ float BwdPlainProb(const Logits& lg, float lse2, float s) {
  return Exp2(lg.Plain(s) - lse2);
}
__device__ __forceinline__ float BwdDs(float prob, float dp, float delta) {
  return prob * (dp - delta);
}

// What BwdGrads<T, true, ...> takes for query row i of head h: the keys it sees and its
// mask row. A row past q_len or with lse = -inf (lse2 = +inf) sees no key.
__device__ __forceinline__ void BwdCheckedRow(const AttentionParams& p, const BwdPlace& at, int h,
                                              int i, float lse2, KeyRange& keys,
                                              int64_t& mask_row) {
  keys = i < p.q_len && lse2 != -kNegInf ? VisibleKeys(p, i + at.off, at.kv_len)
                                         : KeyRange{0, 0};
  mask_row = p.mask_kind != MaskKind::kNone && i < p.q_len ? MaskRow(p, at.b, h, i) : 0;
}

// P and dS of one score s = q.k with dp = dO.v, in place: P = exp2(logit - lse2),
// dS = P (dp - D), times the softcap's 1 - tanh^2 (the scale comes at the end).
// kChecked: key j outside [lo, hi) gives 0, and the mask applies. kMaybeCapped false:
// the call has no softcap (the caller checked lg.capped() once per tile).
template <typename T, bool kChecked, bool kMaybeCapped>
__device__ __forceinline__ void BwdGrads(const AttentionParams& p, const Logits& lg, float lse2,
                                         float delta, KeyRange keys, int64_t mask_row, int j,
                                         float& s, float& dp) {
  if (kChecked && (j < keys.lo || j >= keys.hi)) {
    s = dp = 0.f;
    return;
  }
  float logit, slope = 1.f;
  if (kMaybeCapped && lg.capped()) {
    const float th = SoftcapTanh(s * lg.in);
    logit = lg.cap * th;
    slope = 1.f - th * th;
  } else {
    logit = lg.Plain(s);
  }
  if constexpr (kChecked) logit = MaskLogit<T>(p, lg, logit, mask_row, j);
  const float prob = Exp2(logit - lse2);
  dp = BwdDs(prob, dp, delta) * slope;
  s = prob;
}

// kEarlyDq and kMinBlocks: BwdTraits' unless bwd_check
// --bench compares variants. kOrderedDq false (bwd_check --bench only): the dQ adds
// without turns, in whatever order the CTAs reach them (not deterministic), to time
// what the ordering costs.
template <typename T, int kD, int kDv, bool kEarlyDq, int kMinBlocks, bool kOrderedDq = true>
__global__ void __launch_bounds__(BwdTraits<kD, kDv>::kThreads, kMinBlocks)
    BwdKernel(const __grid_constant__ AttentionBackwardParams bp, const BwdArgs a) {
  using Tr = BwdTraits<kD, kDv>;
  constexpr int kBM = Tr::kBlockM, kBN = Tr::kBlockN, kThreads = Tr::kThreads;
  constexpr int kKS = Tr::kKStride, kVS = Tr::kVStride, kPS = Tr::kPStride;
  const AttentionParams& p = bp.fwd;

  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sK = reinterpret_cast<T*>(smem_raw);
  T* sV = sK + kBN * kKS;
  T* sQ = sV + kBN * kVS;  // 2 stages
  T* sdO = sQ + 2 * Tr::kQElems;
  T* sP = sdO + Tr::kDoElems;
  T* sdS = sP + Tr::kPElems;
  float* sRows = reinterpret_cast<float*>(sdS + Tr::kPElems);  // [stage][lse2, D][kBM]

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, tig = lane & 3;
  // S, dP, dQ: rows 32 wr.. ; S, dP: keys 32 wc.. ; dK, dV: keys 32 wc.., columns from
  // wr * (dim / 2); dQ: columns from wc * kD / 4.
  const int wr = warp & 1, wc = warp >> 1;

  const BwdPlace at(p, a, kBN, blockIdx.x);
  const int b = at.b, hx = at.hx, kvh = at.kvh;
  const int hg_first = at.hg_first, hg_end = at.hg_end, j0 = at.j0, kv_len = at.kv_len;

  // The query tiles that see keys of this block (bwd_walk.h).
  BwdWalk walk = at.Walk(p, kBM, kBN);
  const T* k_base = static_cast<const T*>(p.k) + b * p.k_strides.batch + kvh * p.k_strides.head;
  const T* v_base = static_cast<const T*>(p.v) + b * p.v_strides.batch + kvh * p.v_strides.head;
  auto q_of = [&](const BwdTile& t) {
    return static_cast<const T*>(p.q) + b * p.q_strides.batch + at.Head(t) * p.q_strides.head;
  };
  auto do_of = [&](const BwdTile& t) {
    return static_cast<const T*>(bp.dout) + b * bp.dout_strides.batch +
           at.Head(t) * bp.dout_strides.head;
  };
  auto block_index = [&](BwdTile t) { return at.BlockIndex(a, t); };
  auto row_index = [&](BwdTile t) { return block_index(t) * kBM; };
  // This thread's first dQ accumulator element in a query block (row 32 wr + g, column
  // wc kD / 4 + 2 tig): the others are at constant offsets from it (rows of kD floats,
  // RunBwd checks).
  float* const dq_thread = a.dq_acc + (32 * wr + g) * kD + wc * (kD / 4) + 2 * tig;
  // Q, lse2 and D of tile t into stage `stage` (one cp.async group).
  auto load_q = [&](BwdTile t, int stage) {
    LoadTile<T, kBM, kD, kKS, kThreads>(sQ + stage * Tr::kQElems, q_of(t), p.q_strides.seq,
                                        t.m * kBM, p.q_len, p.head_size, a.q_vec);
    if (tid < 2 * kBM) {
      const float* src = (tid < kBM ? a.lse2 : a.delta) + row_index(t) + tid % kBM;
      CpAsync4(SmemAddr(sRows + stage * 2 * kBM + tid), src);
    }
    CpAsyncCommit();
  };
  auto load_do = [&](BwdTile t) {
    LoadTile<T, kBM, kDv, kVS, kThreads>(sdO, do_of(t), bp.dout_strides.seq, t.m * kBM,
                                         p.q_len, p.v_head_size, a.do_vec);
    CpAsyncCommit();
  };

  float dk[2][kD / 16][4], dv[2][kDv / 16][4];
  Zero(dk);
  Zero(dv);

  BwdTile cur = walk.First(hg_first);
  if (cur.hg < hg_end) {
    LoadTile<T, kBN, kD, kKS, kThreads>(sK, k_base, p.k_strides.seq, j0, kv_len, p.head_size,
                                        a.k_vec);
    LoadTile<T, kBN, kDv, kVS, kThreads>(sV, v_base, p.v_strides.seq, j0, kv_len,
                                         p.v_head_size, a.v_vec);
    load_q(cur, 0);
    load_do(cur);
  }
  int* passed = nullptr;  // the counter of the previous tile, passed on after a barrier
  for (int stage = 0; cur.hg < hg_end; stage ^= 1) {
    CpAsyncWait<0>();
    __syncthreads();  // this tile landed; every warp is done with the previous one
    const BwdTile nxt = walk.Next(cur.hg, cur.m);
    if (nxt.hg < hg_end) load_q(nxt, stage ^ 1);

    const int h = at.Head(cur);
    const int m0 = cur.m * kBM;
    const T* sQs = sQ + stage * Tr::kQElems;
    const float* sLse2 = sRows + stage * 2 * kBM;
    const float* sDelta = sLse2 + kBM;

    // S = Q K^T and dP = dO V^T: the warp's 32 rows x 32 keys.
    float s[2][4][4], dp[2][4][4];
    Zero(s);
    Zero(dp);
    WarpMma<T, 2, 4, kD, false, kKS, false, kKS>(s, sQs + 32 * wr * kKS, sK + 32 * wc * kKS,
                                                 lane);
    WarpMma<T, 2, 4, kDv, false, kVS, false, kVS>(dp, sdO + 32 * wr * kVS, sV + 32 * wc * kVS,
                                                  lane);

    // P and dS into shared memory (16-bit, as the MMAs read them), by one of three
    // elementwise passes chosen once per tile: every key visible without a softcap
    // (the common tile: no branch inside), visible with one, or checked key by key.
    auto p_and_ds = [&](auto checked_tag, auto capped_tag) {
      constexpr bool kChecked = decltype(checked_tag)::value;
      constexpr bool kMaybeCapped = decltype(capped_tag)::value;
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
        for (int k = 0; k < 2; ++k) {
          const int r = 32 * wr + 16 * mt + g + 8 * k;
          const float lse2 = sLse2[r], delta = sDelta[r];
          const int jw = j0 + 32 * wc + 2 * tig;  // + 8 t + e
          KeyRange keys{};
          int64_t mrow = 0;
          if constexpr (kChecked) BwdCheckedRow(p, at, h, m0 + r, lse2, keys, mrow);
#pragma unroll
          for (int t = 0; t < 4; ++t)
#pragma unroll
            for (int e = 0; e < 2; ++e)
              BwdGrads<T, kChecked, kMaybeCapped>(p, a.logits, lse2, delta, keys, mrow,
                                                  jw + 8 * t + e, s[mt][t][2 * k + e],
                                                  dp[mt][t][2 * k + e]);
#pragma unroll
          for (int t = 0; t < 4; ++t) {
            const int at = r * kPS + 32 * wc + 8 * t + 2 * tig;
            *reinterpret_cast<uint32_t*>(sP + at) = Pack2<T>(s[mt][t][2 * k], s[mt][t][2 * k + 1]);
            *reinterpret_cast<uint32_t*>(sdS + at) =
                Pack2<T>(dp[mt][t][2 * k], dp[mt][t][2 * k + 1]);
          }
        }
      }
    };
    if (!KeysAllVisible(p, cur.bk.all, j0, kBN)) {
      p_and_ds(std::true_type{}, std::true_type{});
    } else if (a.logits.capped()) {
      p_and_ds(std::false_type{}, std::true_type{});
    } else {
      p_and_ds(std::false_type{}, std::false_type{});
    }
    __syncthreads();  // P, dS written
    int* sem = a.sem + block_index(cur);
    // This tile's dQ part dS K (the warp's 32 rows x kD / 4 columns), added on its turn.
    auto add_dq = [&] {
      float dq[2][kD / 32][4];
      Zero(dq);
      WarpMma<T, 2, kD / 32, kBN, false, kPS, true, kKS>(dq, sdS + 32 * wr * kPS,
                                                         sK + wc * (kD / 4), lane);
      float* const acc = dq_thread + row_index(cur) * kD;
      if (kOrderedDq && lane == 0) WaitTurn(sem, at.Turn(cur, kBN));
      __syncwarp();
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int k = 0; k < 2; ++k)
#pragma unroll
          for (int t = 0; t < kD / 32; ++t) {
            RedAdd2(acc + (16 * mt + 8 * k) * kD + 8 * t, dq[mt][t][2 * k],
                    dq[mt][t][2 * k + 1]);
          }
    };
    if constexpr (kEarlyDq) {
      add_dq();
    } else {
      // The previous tile's dQ adds, issued before two barriers, are done by now: its
      // turn passes without stalling on the fence (an earlier pass would; a later one
      // would hold the next key block back longer).
      if (kOrderedDq && tid == 0 && passed != nullptr) PassTurn(passed);
    }

    // dV += P^T dO: the warp's 32 keys x kDv / 2 columns.
    WarpMma<T, 2, kDv / 16, kBM, true, kPS, true, kVS>(dv, sP + 32 * wc, sdO + wr * (kDv / 2),
                                                       lane);
    __syncthreads();  // dO read by every warp: the next tile's may come in
    // kEarlyDq: the adds, issued before dV, are done by now (as above).
    if (kOrderedDq && kEarlyDq && tid == 0) PassTurn(sem);
    if (nxt.hg < hg_end) load_do(nxt);
    // dK += dS^T Q: the warp's 32 keys x kD / 2 columns.
    WarpMma<T, 2, kD / 16, kBM, true, kPS, true, kKS>(dk, sdS + 32 * wc, sQs + wr * (kD / 2),
                                                      lane);
    if constexpr (!kEarlyDq) {
      add_dq();
      passed = sem;
    }
    cur = nxt;
  }
  if (kOrderedDq && passed != nullptr) {
    __syncthreads();
    if (tid == 0) PassTurn(passed);
  }

  if (a.split_group) {  // the head's shares, unscaled, every key of the block
    const int64_t key0 = (static_cast<int64_t>(b) * p.num_heads + hx) * a.kv_pad + j0 + 32 * wc;
    StorePartFrag(dk, a.dk_part + key0 * a.dk_stride, a.dk_stride, wr * (kD / 2), lane);
    StorePartFrag(dv, a.dv_part + key0 * a.dv_stride, a.dv_stride, wr * (kDv / 2), lane);
    return;
  }
  // dK (times the scale, kept out of dS) and dV; keys past kv_len get zeros.
  T* dk_base = static_cast<T*>(bp.dk) + b * bp.dk_strides.batch + kvh * bp.dk_strides.head;
  T* dv_base = static_cast<T*>(bp.dv) + b * bp.dv_strides.batch + kvh * bp.dv_strides.head;
  StoreFrag<T>(dk, a.scale, dk_base, bp.dk_strides.seq, j0 + 32 * wc, p.kv_capacity,
               wr * (kD / 2), p.head_size, lane);
  StoreFrag<T>(dv, 1.f, dv_base, bp.dv_strides.seq, j0 + 32 * wc, p.kv_capacity, wr * (kDv / 2),
               p.v_head_size, lane);
}

// ------------------------------------------------------------------ 3. dQ

// Where element (r, c) of a query block's kBwdBlockM x stride float32 dQ accumulator
// lies, from the block's start. BwdKernel's order: rows of `stride` floats.
// kWgmmaOrder (BwdSm90Kernel, stride 64 or 128): each 64 columns (a part of
// BwdSm90Traits) are one contiguous 16 KB run in the order of its wgmma accumulator (thread t's n8 tile
// j as one float4 at 512 j + 4 t: rows 16 (t / 32) + (t / 4) % 8 and + 8, columns
// 8 j + 2 (t % 4) and + 1), which the warpgroup writes to shared memory without bank
// conflicts and the copy engine adds to the accumulator in one bulk reduction.
template <bool kWgmmaOrder>
__host__ __device__ __forceinline__ int DqAccOffset(int r, int c, int stride) {
  if constexpr (!kWgmmaOrder) {
    return r * stride + c;
  } else {
    const int cc = c & 63;
    const int t = (r >> 4) * 32 + (r & 7) * 4 + ((cc & 7) >> 1);
    return (c >> 6) * 4096 + (cc >> 3) * 512 + t * 4 + ((r >> 3) & 1) * 2 + (c & 1);
  }
}

// One warp per query row: dQ = scale * accumulator (in DqAccOffset's order).
template <typename T, bool kWgmmaOrder = false>
__global__ void BwdDqKernel(const __grid_constant__ AttentionBackwardParams bp, const BwdArgs a) {
  const AttentionParams& p = bp.fwd;
  WarpRow r;
  if (!ThisWarpRow(p.batch, p.num_heads, p.q_len, r)) return;
  const auto [b, h, i, lane, bh] = r;
  const int in_block = i % kBwdBlockM;
  const float* block = a.dq_acc + (bh * a.q_pad + i - in_block) * a.dq_stride;
  T* dq = static_cast<T*>(bp.dq) + b * bp.dq_strides.batch + h * bp.dq_strides.head +
          static_cast<int64_t>(i) * bp.dq_strides.seq;
  for (int c = lane; c < p.head_size; c += 32) {
    dq[c] = FromF32<T>(a.scale * block[DqAccOffset<kWgmmaOrder>(in_block, c, a.dq_stride)]);
  }
}

// ------------------------------------------------------------------ 4. dK, dV of GQA

// With split_group, one warp per (batch, kv head, key < kv_capacity): dK = scale *
// the sum of the group's dk_part rows and dV = that of dv_part, heads in order
// (deterministic).
template <typename T>
__global__ void BwdDkvKernel(const __grid_constant__ AttentionBackwardParams bp, const BwdArgs a) {
  const AttentionParams& p = bp.fwd;
  WarpRow r;
  if (!ThisWarpRow(p.batch, p.num_kv_heads, p.kv_capacity, r)) return;
  const int b = r.b, kvh = r.h, j = r.i, lane = r.lane;
  const int group = p.group_size();
  // The group's first query head's row; the next head's is head_step further.
  const int64_t key0 = (static_cast<int64_t>(b) * p.num_heads + kvh * group) * a.kv_pad + j;
  const int64_t head_step = a.kv_pad;
  T* dk = static_cast<T*>(bp.dk) + b * bp.dk_strides.batch + kvh * bp.dk_strides.head +
          static_cast<int64_t>(j) * bp.dk_strides.seq;
  T* dv = static_cast<T*>(bp.dv) + b * bp.dv_strides.batch + kvh * bp.dv_strides.head +
          static_cast<int64_t>(j) * bp.dv_strides.seq;
  for (int c = lane; c < p.head_size; c += 32) {
    const float* src = a.dk_part + key0 * a.dk_stride + c;
    float sum = 0.f;
    for (int hg = 0; hg < group; ++hg) sum += src[hg * head_step * a.dk_stride];
    dk[c] = FromF32<T>(a.scale * sum);
  }
  for (int c = lane; c < p.v_head_size; c += 32) {
    const float* src = a.dv_part + key0 * a.dv_stride + c;
    float sum = 0.f;
    for (int hg = 0; hg < group; ++hg) sum += src[hg * head_step * a.dv_stride];
    dv[c] = FromF32<T>(sum);
  }
}

// Whether the backward splits GQA groups over CTAs (see kBwdSplitGroup; allow =
// false: never, for bwd_check --bench's comparison). No keys: nothing to split (dK
// and dV are empty, dQ is the prep launch's zeros).
inline bool BwdSplitsGroup(const AttentionParams& p, bool allow = true) {
  return allow && kBwdSplitGroup && p.num_heads > p.num_kv_heads && p.kv_capacity > 0;
}

inline BwdWorkspaceLayout BwdWorkspaceOf(const AttentionParams& p) {
  return AttentionBackwardWorkspace(p.batch, p.num_heads, p.num_kv_heads, p.q_len,
                                    p.kv_capacity, p.head_size, p.v_head_size);
}

// The launches' grids: (per-row kernels, CTAs of) 8 warps; dkv is 0 without
// split_group.
struct BwdGrid {
  static constexpr int kRowWarps = 8;
  int64_t prep, kv, dq, dkv;
  bool ok() const { return prep <= INT_MAX && kv <= INT_MAX && dq <= INT_MAX && dkv <= INT_MAX; }
};
inline BwdGrid BwdGridOf(const AttentionParams& p, bool allow_split = true) {
  const BwdWorkspaceLayout w = BwdWorkspaceOf(p);
  const int64_t bh = static_cast<int64_t>(p.batch) * p.num_heads;
  const int64_t n_blocks = (p.kv_capacity + kBwdBlockN - 1) / kBwdBlockN;
  const bool split = BwdSplitsGroup(p, allow_split);
  auto row_ctas = [](int64_t rows) { return (rows + BwdGrid::kRowWarps - 1) / BwdGrid::kRowWarps; };
  return {row_ctas(bh * w.q_pad),
          n_blocks * (split ? p.num_heads : p.num_kv_heads) * p.batch,
          row_ctas(bh * p.q_len),
          split ? row_ctas(static_cast<int64_t>(p.batch) * p.num_kv_heads * p.kv_capacity) : 0};
}

#if defined(JAX_MEA_HAVE_SM90_FORWARD)
// The main launch on Hopper (attention_bwd_sm90.cu, compiled for sm_90a alone):
// BwdSm90Kernel over BwdKernel's grid, workspace and arguments, dQ accumulated in
// DqAccOffset<true>'s order. BwdSm90Unsupported: why a call cannot take it ("" when
// it can). BwdTakesSm90 (attention_bwd.cu): it can, the device is a 9.x, and
// JAX_MEA_SM90_BACKWARD is not 0.
std::string BwdSm90Unsupported(const AttentionBackwardParams& bp);
cudaError_t LaunchBwdMainSm90(const AttentionBackwardParams& bp, const BwdArgs& a, unsigned ctas,
                              cudaStream_t stream);
#endif
bool BwdTakesSm90(const AttentionBackwardParams& bp);

// The launches RunBwd makes: all of them (the backward), or one of the per-row ones
// alone (bwd_check --bench times them; the main kernel needs the first's counters).
enum class BwdLaunches { kAll, kPrepOnly, kDqOnly, kDkvOnly };

// allow_split = false: GQA groups are not split over CTAs (see BwdSplitsGroup);
// head_group: the grid order (kBwdHeadGroup; bwd_check --bench compares 1); sm90: the
// main launch is LaunchBwdMainSm90's (kD = kDv = 64 or 128), not BwdKernel.
template <typename T, int kD, int kDv, bool kEarlyDq = BwdTraits<kD, kDv>::kEarlyDq,
          int kMinBlocks = BwdTraits<kD, kDv>::kMinBlocks, bool kOrderedDq = true>
cudaError_t RunBwd(const AttentionBackwardParams& bp, void* workspace, cudaStream_t stream,
                   BwdLaunches which = BwdLaunches::kAll, bool allow_split = true,
                   int head_group = kBwdHeadGroup, bool sm90 = false) {
  using Tr = BwdTraits<kD, kDv>;
  const AttentionParams& p = bp.fwd;
  auto kernel = BwdKernel<T, kD, kDv, kEarlyDq, kMinBlocks, kOrderedDq>;
  static DeviceFlags smem_set;
  if (cudaError_t err = EnsureDynamicSmem(kernel, Tr::kSmemBytes, smem_set); err != cudaSuccess) {
    return err;
  }
  const BwdWorkspaceLayout w = BwdWorkspaceOf(p);
  char* ws = static_cast<char*>(workspace);
  BwdArgs a;
  a.logits = MakeLogits(p, kLog2e, /*q_scaled=*/false);
  a.scale = p.scale;
  a.delta = reinterpret_cast<float*>(ws + w.delta);
  a.lse2 = reinterpret_cast<float*>(ws + w.lse2);
  a.sem = reinterpret_cast<int*>(ws + w.sem);
  a.dq_acc = reinterpret_cast<float*>(ws + w.dq_acc);
  a.dk_part = reinterpret_cast<float*>(ws + w.dk_part);
  a.dv_part = reinterpret_cast<float*>(ws + w.dv_part);
  a.split_group = BwdSplitsGroup(p, allow_split);
  if (a.split_group && !w.has_parts()) return cudaErrorInvalidValue;
  a.kv_pad = static_cast<int>(w.kv_pad);
  a.dk_stride = static_cast<int>(w.dk_stride);
  a.dv_stride = static_cast<int>(w.dv_stride);
  a.q_pad = static_cast<int>(w.q_pad);
  a.num_m_blocks = static_cast<int>(w.num_m_blocks);
  a.num_n_blocks = (p.kv_capacity + Tr::kBlockN - 1) / Tr::kBlockN;
  a.dq_stride = static_cast<int>(w.dq_stride);
  // The main kernel adds dQ in rows of kD floats (workspace.h's dq_stride is the head
  // dim of the backward's row: 64x64 or 128x128).
  if (a.dq_stride != kD) return cudaErrorInvalidValue;
  a.q_vec = Vec16Ok(p.q, p.q_strides, p.head_size);
  a.k_vec = Vec16Ok(p.k, p.k_strides, p.head_size);
  a.v_vec = Vec16Ok(p.v, p.v_strides, p.v_head_size);
  a.do_vec = Vec16Ok(bp.dout, bp.dout_strides, p.v_head_size);
  a.head_group = head_group;

  const BwdGrid grid = BwdGridOf(p, allow_split);
  if (!grid.ok()) return cudaErrorInvalidConfiguration;
  constexpr int kRowThreads = 32 * BwdGrid::kRowWarps;
  const bool all = which == BwdLaunches::kAll;
  if (grid.prep > 0 && (all || which == BwdLaunches::kPrepOnly)) {
    BwdPrepKernel<T><<<static_cast<unsigned>(grid.prep), kRowThreads, 0, stream>>>(bp, a);
    if (cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
  }
  if (grid.kv > 0 && all) {
    if (sm90) {
#if defined(JAX_MEA_HAVE_SM90_FORWARD)
      if (kD != kDv || (kD != 64 && kD != 128)) return cudaErrorInvalidValue;
      const cudaError_t err = LaunchBwdMainSm90(bp, a, static_cast<unsigned>(grid.kv), stream);
      // NotSupported: no tensor map for these tensors (BwdSm90Unsupported should have
      // said so): BwdKernel below instead, on the same workspace.
      if (err != cudaSuccess && err != cudaErrorNotSupported) return err;
      sm90 = err == cudaSuccess;
#else
      sm90 = false;
#endif
    }
    if (!sm90) {
      kernel<<<static_cast<unsigned>(grid.kv), Tr::kThreads, Tr::kSmemBytes, stream>>>(bp, a);
      if (cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
    }
  }
  if (grid.dq > 0 && (all || which == BwdLaunches::kDqOnly)) {
    // In the order of the main kernel that ran (DqAccOffset).
    auto dq_kernel = sm90 ? BwdDqKernel<T, true> : BwdDqKernel<T, false>;
    dq_kernel<<<static_cast<unsigned>(grid.dq), kRowThreads, 0, stream>>>(bp, a);
    if (cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
  }
  if (grid.dkv > 0 && (all || which == BwdLaunches::kDkvOnly)) {
    BwdDkvKernel<T><<<static_cast<unsigned>(grid.dkv), kRowThreads, 0, stream>>>(bp, a);
  }
  return cudaGetLastError();
}

}  // namespace jax_mea::cuda
