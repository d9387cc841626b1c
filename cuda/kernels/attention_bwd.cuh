// Attention backward for float16 / bfloat16 on tensor cores (sm_80, sm_90):
// FlashAttention-2's algorithm (used unless JAX_MEA_CUDA_BACKWARD=0, see
// README "Gradients").
//
// Three launches, all deterministic (no float atomics):
//   1. BwdDeltaKernel: D_i = sum_d dO_id O_id into a float32 workspace [B, Nq, Sq].
//   2. BwdKvKernel: one CTA per (batch, kv head, block of 16 * kWarps keys), each
//      warp 16 keys. It walks the query tiles of every head of the GQA group in
//      order, recomputes P^T = exp(logit^T - lse) from the forward's lse, and
//      accumulates dV = P^T dO and dK = dS^T Q in registers (group sum included).
//   3. BwdQKernel: one CTA per (batch, query head, block of 16 * kWarps rows),
//      each warp 16 rows; walks the key tiles the block sees and accumulates
//      dQ = dS K.
// dS = P (dP - D) times d logit / d score (the scale, or the softcap's slope),
// through the score layer (jax_mea/score.h) exactly as cpu::AttentionBackward:
// keys outside VisibleKeys and rows with lse = -inf (no key) give P = dS = 0.
// Rows past q_len and keys past kv_length(b) are zero-filled in shared memory
// and never read. An additive mask's gradient (dmask) is not computed here: the
// host never takes such a call (AttentionBackwardUnsupported).
#pragma once

#include <climits>
#include <cstdint>

#include "kernels/attention_fwd.cuh"  // LoadTile, Vec16Ok
#include "kernels/common.cuh"
#include "kernels/launch_utils.h"

namespace jax_mea::cuda {

struct BwdArgs {
  Logits logits;  // natural units (the lse's), q not pre-scaled
  const float* delta;  // D, [B, Nq, Sq] (the workspace)
  int num_blocks;      // key blocks (BwdKvKernel) or query blocks (BwdQKernel)
  bool q_vec, k_vec, v_vec, do_vec;
};

template <int kD, int kDv>
struct BwdTraits {
  static_assert(kD % 32 == 0 && kDv % 32 == 0, "padded head dims are multiples of 32");
  static constexpr int kWarps = 4;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kBlock = 16 * kWarps;  // keys (dK/dV) or query rows (dQ) per CTA
  static constexpr int kTile = 32;            // query rows (dK/dV) or keys (dQ) per step
  static constexpr int kHeadDim = kD, kVHeadDim = kDv;
  static constexpr int kKStride = kD + 8;     // +16 bytes: conflict-free ldmatrix
  static constexpr int kVStride = kDv + 8;
  // Both kernels hold a kBlock-row and a kTile-row tile of each of (q or k, dO or v).
  static constexpr int kSmemElems = (kBlock + kTile) * (kKStride + kVStride);
};

// The shared memory of either kernel: its own block of kBlock rows of (q or k) and
// (dO or v), then the kTile rows of the other pair it walks over.
template <typename T, typename Tr>
struct BwdSmem {
  T *own_k, *own_v, *walk_k, *walk_v;  // k: [rows][kKStride], v: [rows][kVStride]

  // The CTA's dynamic shared memory, carved in that order.
  __device__ __forceinline__ static BwdSmem Carve() {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    BwdSmem m;
    m.own_k = reinterpret_cast<T*>(smem_raw);
    m.own_v = m.own_k + Tr::kBlock * Tr::kKStride;
    m.walk_k = m.own_v + Tr::kBlock * Tr::kVStride;
    m.walk_v = m.walk_k + Tr::kTile * Tr::kKStride;
    return m;
  }
};

// This CTA's (block, head, batch) from blockIdx.x = (batch * heads + head) * blocks + block.
struct BwdBlockIndex {
  int block, head, b;
};
__device__ __forceinline__ BwdBlockIndex ThisBwdBlock(int num_blocks, int heads) {
  const int64_t bid = blockIdx.x;
  return {static_cast<int>(bid % num_blocks), static_cast<int>((bid / num_blocks) % heads),
          static_cast<int>(bid / num_blocks / heads)};
}

// One query row's part of the backward: the keys it sees (none when lse = -inf
// or past q_len), its lse, D and mask row.
struct BwdRow {
  KeyRange keys;
  float lse, delta;
  int64_t mask_row;
};

__device__ __forceinline__ BwdRow LoadBwdRow(const AttentionParams& p, const BwdArgs& a,
                                             const float* lse, int b, int h, int i, int kv_len,
                                             int64_t off) {
  BwdRow r{{0, 0}, kNegInf, 0.f, 0};
  if (i >= p.q_len) return r;
  const int64_t idx = (static_cast<int64_t>(b) * p.num_heads + h) * p.q_len + i;
  r.lse = lse[idx];
  r.delta = a.delta[idx];
  if (r.lse != kNegInf) r.keys = VisibleKeys(p, i + off, kv_len);
  if (p.mask_kind != MaskKind::kNone) r.mask_row = MaskRow(p, b, h, i);
  return r;
}

// P and dS (times d logit / d score) of key j for row r, from raw score s = q.k and
// dp = dO.v: cpu::AttentionBackward's RowGrads, element by element.
template <typename T>
__device__ __forceinline__ void BwdProbs(const AttentionParams& p, const Logits& lg,
                                         const BwdRow& r, int j, float& s, float& dp) {
  if (j < r.keys.lo || j >= r.keys.hi) {
    s = dp = 0.f;
    return;
  }
  const Logits::WithSlope ls = lg.Slope(s);
  const float prob = expf(MaskLogit<T>(p, lg, ls.logit, r.mask_row, j) - r.lse);
  dp = prob * (dp - r.delta) * ls.slope;
  s = prob;
}

// acc[16 x kN per warp] += A(16 x kK, warp's rows at a_addr, row-major in smem) *
// B^T where B is kN rows x kK (row-major in smem, row stride kBStride):
// S = Q K^T, dP = dO V^T and their transposes.
template <typename T, int kK, int kN, int kAStride, int kBStride>
__device__ __forceinline__ void MmaABt(float (&acc)[kN / 8][4], const T* a_rows, const T* b_rows,
                                       int lane) {
  const uint32_t a_addr = SmemAddr(a_rows + (lane & 15) * kAStride + (lane >> 4) * 8);
  const uint32_t b_addr =
      SmemAddr(b_rows + ((lane & 7) + ((lane >> 4) << 3)) * kBStride + ((lane >> 3) & 1) * 8);
#pragma unroll
  for (int ks = 0; ks < kK / 16; ++ks) {
    uint32_t af[4];
    LdMatrixX4(af, a_addr + ks * 16 * 2);
#pragma unroll
    for (int np = 0; np < kN / 16; ++np) {
      uint32_t bf[4];
      LdMatrixX4(bf, b_addr + (np * 16 * kBStride + ks * 16) * 2);
      Mma16816<T>(acc[2 * np], af, bf[0], bf[1]);
      Mma16816<T>(acc[2 * np + 1], af, bf[2], bf[3]);
    }
  }
}

// acc[16 x kN] += X(16 x kK, the float accumulator fragment x of a previous MMA,
// rounded to T) * B where B is kK rows x kN (row-major in smem): dV = P^T dO,
// dK = dS^T Q, dQ = dS K.
template <typename T, int kK, int kN, int kBStride>
__device__ __forceinline__ void MmaXB(float (&acc)[kN / 8][4], const float (&x)[kK / 8][4],
                                      const T* b_rows, int lane) {
  const uint32_t b_addr =
      SmemAddr(b_rows + ((lane & 7) + ((lane >> 3) & 1) * 8) * kBStride + (lane >> 4) * 8);
#pragma unroll
  for (int kk = 0; kk < kK / 16; ++kk) {
    uint32_t xa[4];
    xa[0] = Pack2<T>(x[2 * kk][0], x[2 * kk][1]);
    xa[1] = Pack2<T>(x[2 * kk][2], x[2 * kk][3]);
    xa[2] = Pack2<T>(x[2 * kk + 1][0], x[2 * kk + 1][1]);
    xa[3] = Pack2<T>(x[2 * kk + 1][2], x[2 * kk + 1][3]);
#pragma unroll
    for (int dp = 0; dp < kN / 16; ++dp) {
      uint32_t bf[4];
      LdMatrixX4Trans(bf, b_addr + (kk * 16 * kBStride + dp * 16) * 2);
      Mma16816<T>(acc[2 * dp], xa, bf[0], bf[1]);
      Mma16816<T>(acc[2 * dp + 1], xa, bf[2], bf[3]);
    }
  }
}

template <int kN>
__device__ __forceinline__ void Zero(float (&acc)[kN][4]) {
#pragma unroll
  for (int t = 0; t < kN; ++t) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.f;
}

// Where a tile's rows come from: rows [row0, rows) of a BNSH-strided tensor of
// `dim` columns (zero-filled past them), 16-byte loads where `vec`.
template <typename T>
struct BwdSrc {
  const T* base;
  int64_t stride;
  int rows, dim;
  bool vec;
};

// A (q or k) tile and a (dO or v) tile of kRows rows from row0 into shared memory by
// cp.async, committed as one group.
template <typename T, typename Tr, int kRows>
__device__ __forceinline__ void LoadPair(T* dst_k, const BwdSrc<T>& k, T* dst_v,
                                         const BwdSrc<T>& v, int row0) {
  LoadTile<T, kRows, Tr::kHeadDim, Tr::kKStride, Tr::kThreads>(dst_k, k.base, k.stride, row0,
                                                                k.rows, k.dim, k.vec);
  LoadTile<T, kRows, Tr::kVHeadDim, Tr::kVStride, Tr::kThreads>(dst_v, v.base, v.stride, row0,
                                                                 v.rows, v.dim, v.vec);
  CpAsyncCommit();
}

// Waits for the tile just loaded (its cp.async group, then the whole CTA), then
// forms the two products of both kernels over that kTile-wide tile, from zero: S = A B^T
// (scores) and dP = A' B'^T (dO against V), the warp's 16 rows of A against the
// tile's kTile rows of B. dK/dV: A = its keys, B = the query tile; dQ: A = its
// query rows, B = the key tile (and the primes: V and dO the other way round).
template <typename T, typename Tr>
__device__ __forceinline__ void ScoreProducts(float (&s)[Tr::kTile / 8][4],
                                              float (&dp)[Tr::kTile / 8][4], const T* a_k,
                                              const T* b_k, const T* a_v, const T* b_v,
                                              int lane) {
  CpAsyncWait<0>();
  __syncthreads();
  Zero(s);
  Zero(dp);
  MmaABt<T, Tr::kHeadDim, Tr::kTile, Tr::kKStride, Tr::kKStride>(s, a_k, b_k, lane);
  MmaABt<T, Tr::kVHeadDim, Tr::kTile, Tr::kVStride, Tr::kVStride>(dp, a_v, b_v, lane);
}

// Rows g and g + 8 of a warp's 16 x (8 kN) accumulator into rows row0 + .. of a
// strided view (rows >= row_end and columns >= dim are not written).
template <typename T, int kN>
__device__ __forceinline__ void StoreRows(const float (&acc)[kN][4], T* base, int64_t seq_stride,
                                          int row0, int row_end, int dim, int lane) {
  const int g = lane >> 2, tig = lane & 3;
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    const int row = row0 + g + 8 * k;
    if (row >= row_end) continue;
#pragma unroll
    for (int t = 0; t < kN; ++t) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int col = t * 8 + tig * 2 + e;
        if (col < dim) base[row * seq_stride + col] = FromF32<T>(acc[t][2 * k + e]);
      }
    }
  }
}

// 1. D = rowsum(dO * O), one warp per row.
template <typename T>
__global__ void BwdDeltaKernel(const __grid_constant__ AttentionBackwardParams bp,
                               float* delta) {
  const AttentionParams& p = bp.fwd;
  const int64_t rows = static_cast<int64_t>(p.batch) * p.num_heads * p.q_len;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= rows) return;
  const int lane = threadIdx.x & 31;
  const int i = static_cast<int>(row % p.q_len);
  const int h = static_cast<int>((row / p.q_len) % p.num_heads);
  const int b = static_cast<int>(row / (static_cast<int64_t>(p.q_len) * p.num_heads));
  const T* o = static_cast<const T*>(p.out) + b * p.out_strides.batch + h * p.out_strides.head +
               static_cast<int64_t>(i) * p.out_strides.seq;
  const T* d = static_cast<const T*>(bp.dout) + b * bp.dout_strides.batch +
               h * bp.dout_strides.head + static_cast<int64_t>(i) * bp.dout_strides.seq;
  float sum = 0.f;
  for (int c = lane; c < p.v_head_size; c += 32) sum += ToF32(o[c]) * ToF32(d[c]);
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, m);
  if (lane == 0) delta[row] = sum;
}

// 2. dK, dV of one block of keys, summed over the GQA group.
template <typename T, int kD, int kDv>
__global__ void __launch_bounds__(BwdTraits<kD, kDv>::kThreads, 1)
    BwdKvKernel(const __grid_constant__ AttentionBackwardParams bp, const BwdArgs a) {
  using Tr = BwdTraits<kD, kDv>;
  constexpr int kBlock = Tr::kBlock, kTile = Tr::kTile;
  const AttentionParams& p = bp.fwd;
  // This CTA's keys and values, then the query tile (Q, dO) walked over.
  const auto [sK, sV, sQ, sdO] = BwdSmem<T, Tr>::Carve();

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, tig = lane & 3;
  const BwdBlockIndex at = ThisBwdBlock(a.num_blocks, p.num_kv_heads);
  const int kvh = at.head, b = at.b;
  const int j0 = at.block * kBlock;
  const int kv_len = p.kv_length(b);
  const int64_t off = p.query_offset(b);
  const int group = p.group_size();

  const T* k_base = static_cast<const T*>(p.k) + b * p.k_strides.batch + kvh * p.k_strides.head;
  const T* v_base = static_cast<const T*>(p.v) + b * p.v_strides.batch + kvh * p.v_strides.head;
  LoadPair<T, Tr, kBlock>(sK, {k_base, p.k_strides.seq, kv_len, p.head_size, a.k_vec}, sV,
                          {v_base, p.v_strides.seq, kv_len, p.v_head_size, a.v_vec}, j0);

  float dk[kD / 8][4], dv[kDv / 8][4];
  Zero(dk);
  Zero(dv);
  const int jw = j0 + warp * 16;  // this warp's first key
  const T* sKw = sK + warp * 16 * Tr::kKStride;
  const T* sVw = sV + warp * 16 * Tr::kVStride;

  for (int hg = 0; hg < group && j0 < kv_len; ++hg) {
    const int h = kvh * group + hg;
    const T* q_base = static_cast<const T*>(p.q) + b * p.q_strides.batch + h * p.q_strides.head;
    const T* do_base = static_cast<const T*>(bp.dout) + b * bp.dout_strides.batch +
                       h * bp.dout_strides.head;
    for (int m0 = 0; m0 < p.q_len; m0 += kTile) {
      // Skip tiles none of whose rows sees a key of this block (both ends of
      // VisibleKeys grow with the position).
      const int m_last = min(m0 + kTile, p.q_len) - 1;
      const KeyRange first_row = VisibleKeys(p, m0 + off, kv_len);
      const KeyRange last_row = VisibleKeys(p, m_last + off, kv_len);
      if (last_row.hi <= j0 || first_row.lo >= j0 + kBlock || last_row.hi <= first_row.lo) {
        continue;
      }
      __syncthreads();  // the previous tile's readers are done
      LoadPair<T, Tr, kTile>(sQ, {q_base, p.q_strides.seq, p.q_len, p.head_size, a.q_vec}, sdO,
                             {do_base, bp.dout_strides.seq, p.q_len, p.v_head_size, a.do_vec},
                             m0);
      // This thread's query columns: m0 + t * 8 + tig * 2 + e.
      BwdRow rows[kTile / 8][2];
#pragma unroll
      for (int t = 0; t < kTile / 8; ++t)
#pragma unroll
        for (int e = 0; e < 2; ++e)
          rows[t][e] = LoadBwdRow(p, a, bp.lse, b, h, m0 + t * 8 + tig * 2 + e, kv_len, off);

      // S^T = K Q^T and dP^T = V dO^T: the warp's 16 keys x kTile queries.
      float s[kTile / 8][4], dp[kTile / 8][4];
      ScoreProducts<T, Tr>(s, dp, sKw, sQ, sVw, sdO, lane);
#pragma unroll
      for (int t = 0; t < kTile / 8; ++t)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          BwdProbs<T>(p, a.logits, rows[t][e & 1], jw + g + 8 * (e >> 1), s[t][e], dp[t][e]);
      // dV += P^T dO, dK += dS^T Q.
      MmaXB<T, kTile, kDv, Tr::kVStride>(dv, s, sdO, lane);
      MmaXB<T, kTile, kD, Tr::kKStride>(dk, dp, sQ, lane);
    }
  }

  CpAsyncWait<0>();  // (a block past kv_len never waited for its K / V loads)
  T* dk_base = static_cast<T*>(bp.dk) + b * bp.dk_strides.batch + kvh * bp.dk_strides.head;
  T* dv_base = static_cast<T*>(bp.dv) + b * bp.dv_strides.batch + kvh * bp.dv_strides.head;
  StoreRows<T>(dk, dk_base, bp.dk_strides.seq, jw, p.kv_capacity, p.head_size, lane);
  StoreRows<T>(dv, dv_base, bp.dv_strides.seq, jw, p.kv_capacity, p.v_head_size, lane);
}

// 3. dQ of one block of query rows.
template <typename T, int kD, int kDv>
__global__ void __launch_bounds__(BwdTraits<kD, kDv>::kThreads, 1)
    BwdQKernel(const __grid_constant__ AttentionBackwardParams bp, const BwdArgs a) {
  using Tr = BwdTraits<kD, kDv>;
  constexpr int kBlock = Tr::kBlock, kTile = Tr::kTile;
  const AttentionParams& p = bp.fwd;
  // This CTA's query rows (Q, dO), then the key tile (K, V) walked over.
  const auto [sQ, sdO, sK, sV] = BwdSmem<T, Tr>::Carve();

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, tig = lane & 3;
  const BwdBlockIndex at = ThisBwdBlock(a.num_blocks, p.num_heads);
  const int h = at.head, b = at.b;
  const int kvh = h / p.group_size();
  const int m0 = at.block * kBlock;
  const int q_end = min(m0 + kBlock, p.q_len);
  const int kv_len = p.kv_length(b);
  const int64_t off = p.query_offset(b);

  const T* q_base = static_cast<const T*>(p.q) + b * p.q_strides.batch + h * p.q_strides.head;
  const T* do_base =
      static_cast<const T*>(bp.dout) + b * bp.dout_strides.batch + h * bp.dout_strides.head;
  const T* k_base = static_cast<const T*>(p.k) + b * p.k_strides.batch + kvh * p.k_strides.head;
  const T* v_base = static_cast<const T*>(p.v) + b * p.v_strides.batch + kvh * p.v_strides.head;
  LoadPair<T, Tr, kBlock>(sQ, {q_base, p.q_strides.seq, p.q_len, p.head_size, a.q_vec}, sdO,
                          {do_base, bp.dout_strides.seq, p.q_len, p.v_head_size, a.do_vec}, m0);

  const int row0 = m0 + warp * 16;  // this warp's rows: row0 + g + 8 k
  BwdRow rows[2];
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    rows[k] = LoadBwdRow(p, a, bp.lse, b, h, row0 + g + 8 * k, kv_len, off);
  }
  const KeyRange blk = {VisibleKeys(p, m0 + off, kv_len).lo,
                        VisibleKeys(p, q_end - 1 + off, kv_len).hi};
  const T* sQw = sQ + warp * 16 * Tr::kKStride;
  const T* sdOw = sdO + warp * 16 * Tr::kVStride;

  float dq[kD / 8][4];
  Zero(dq);
  const int n_end = blk.empty() ? 0 : blk.hi;
  for (int n0 = blk.lo / kTile * kTile; n0 < n_end; n0 += kTile) {
    __syncthreads();  // the previous tile's readers are done
    LoadPair<T, Tr, kTile>(sK, {k_base, p.k_strides.seq, kv_len, p.head_size, a.k_vec}, sV,
                           {v_base, p.v_strides.seq, kv_len, p.v_head_size, a.v_vec}, n0);

    // S = Q K^T and dP = dO V^T: the warp's 16 rows x kTile keys.
    float s[kTile / 8][4], dp[kTile / 8][4];
    ScoreProducts<T, Tr>(s, dp, sQw, sK, sdOw, sV, lane);
#pragma unroll
    for (int t = 0; t < kTile / 8; ++t)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        BwdProbs<T>(p, a.logits, rows[e >> 1], n0 + t * 8 + tig * 2 + (e & 1), s[t][e], dp[t][e]);
    MmaXB<T, kTile, kD, Tr::kKStride>(dq, dp, sK, lane);  // dQ += dS K
  }

  CpAsyncWait<0>();  // (a block that sees no key never waited for its Q / dO loads)
  T* dq_base = static_cast<T*>(bp.dq) + b * bp.dq_strides.batch + h * bp.dq_strides.head;
  StoreRows<T>(dq, dq_base, bp.dq_strides.seq, row0, p.q_len, p.head_size, lane);
}

template <typename T, int kD, int kDv>
cudaError_t RunBwd(const AttentionBackwardParams& bp, float* delta, cudaStream_t stream) {
  using Tr = BwdTraits<kD, kDv>;
  const AttentionParams& p = bp.fwd;
  constexpr size_t kSmem = sizeof(T) * Tr::kSmemElems;
  auto kv_kernel = BwdKvKernel<T, kD, kDv>;
  auto q_kernel = BwdQKernel<T, kD, kDv>;
  static DeviceFlags kv_smem_set, q_smem_set;
  if (cudaError_t err = EnsureDynamicSmem(kv_kernel, kSmem, kv_smem_set); err != cudaSuccess) {
    return err;
  }
  if (cudaError_t err = EnsureDynamicSmem(q_kernel, kSmem, q_smem_set); err != cudaSuccess) {
    return err;
  }

  const int64_t rows = static_cast<int64_t>(p.batch) * p.num_heads * p.q_len;
  constexpr int kDeltaWarps = 8;
  const int64_t delta_blocks = (rows + kDeltaWarps - 1) / kDeltaWarps;
  BwdArgs a;
  a.logits = MakeLogits(p, 1.f, /*q_scaled=*/false);
  a.delta = delta;
  a.q_vec = Vec16Ok(p.q, p.q_strides, p.head_size);
  a.k_vec = Vec16Ok(p.k, p.k_strides, p.head_size);
  a.v_vec = Vec16Ok(p.v, p.v_strides, p.v_head_size);
  a.do_vec = Vec16Ok(bp.dout, bp.dout_strides, p.v_head_size);
  const int num_k_blocks = (p.kv_capacity + Tr::kBlock - 1) / Tr::kBlock;
  const int num_q_blocks = (p.q_len + Tr::kBlock - 1) / Tr::kBlock;
  const int64_t kv_blocks = static_cast<int64_t>(num_k_blocks) * p.num_kv_heads * p.batch;
  const int64_t q_blocks = static_cast<int64_t>(num_q_blocks) * p.num_heads * p.batch;
  if (delta_blocks > INT_MAX || kv_blocks > INT_MAX || q_blocks > INT_MAX) {
    return cudaErrorInvalidConfiguration;
  }
  if (delta_blocks > 0) {
    BwdDeltaKernel<T><<<static_cast<unsigned>(delta_blocks), 32 * kDeltaWarps, 0, stream>>>(
        bp, delta);
    if (cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
  }
  if (kv_blocks > 0) {
    a.num_blocks = num_k_blocks;
    kv_kernel<<<static_cast<unsigned>(kv_blocks), Tr::kThreads, kSmem, stream>>>(bp, a);
    if (cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
  }
  if (q_blocks > 0) {
    a.num_blocks = num_q_blocks;
    q_kernel<<<static_cast<unsigned>(q_blocks), Tr::kThreads, kSmem, stream>>>(bp, a);
  }
  return cudaGetLastError();
}

}  // namespace jax_mea::cuda
