// Attention forward for float32: float32 SIMT arithmetic, the same semantics
// and the same order of operations per row as cpu::AttentionForward (q is
// scaled first, then the score layer's logits and mask; natural-log exp).
//
// One CTA (4 warps) computes kF32BlockM = 16 query rows of one (batch, head),
// 4 rows per warp; key tiles of 32 keys (one per lane for the scores, then each
// lane owns output columns lane + 32 c for P V) pass through shared memory.
// Head sizes are runtime values up to kMaxHeadSize.
#include <climits>
#include <cstdint>

#include "kernels/attention.h"
#include "kernels/attention_fwd_instances.h"
#include "kernels/common.cuh"
#include "kernels/launch_utils.h"

namespace jax_mea::cuda {
namespace {

constexpr int kF32Warps = 4;
constexpr int kF32RowsPerWarp = 4;
constexpr int kF32BlockM = kF32Warps * kF32RowsPerWarp;
constexpr int kF32BlockN = 32;
constexpr int kF32Threads = 32 * kF32Warps;
constexpr int kF32Cols = kMaxHeadSize / 32;  // output columns per lane

size_t F32SmemBytes(int d, int dv) {
  return sizeof(float) * (static_cast<size_t>(kF32BlockM) * d +
                          static_cast<size_t>(kF32BlockN) * (d + 1) +
                          static_cast<size_t>(kF32BlockN) * dv);
}

struct F32Args {
  FwdGrid grid;  // common.cuh: blockIdx.x -> (query block, head, batch)
  Logits logits;  // natural units, q scaled
};

__global__ void __launch_bounds__(kF32Threads)
    AttentionFwdF32Kernel(const __grid_constant__ AttentionParams p, const F32Args a) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int D = p.head_size, Dv = p.v_head_size;
  const int k_stride = D + 1;  // conflict-free column reads of K by lane = key
  float* sQ = reinterpret_cast<float*>(smem_raw);
  float* sK = sQ + kF32BlockM * D;
  float* sV = sK + kF32BlockN * k_stride;

  const int tid = threadIdx.x;
  const int warp = tid >> 5, lane = tid & 31;

  const auto [b, h, m0, q_end, kv_len, off, q_base, k_base, v_base, o_base, lse] =
      ThisFwdBlock<float>(p, a.grid, kF32BlockM);

  const KeyRange block_any = RowBlockKeys(p, m0 + off, q_end - 1 + off, kv_len).any;
  const int blk_lo = block_any.lo, blk_hi = block_any.hi;
  if (blk_hi <= blk_lo) {
    for (int e = tid; e < (q_end - m0) * Dv; e += kF32Threads) {
      o_base[(m0 + e / Dv) * p.out_strides.seq + e % Dv] = 0.f;
    }
    if (lse != nullptr) {
      for (int i = m0 + tid; i < q_end; i += kF32Threads) lse[i] = kNegInf;
    }
    return;
  }
  const int n_first = blk_lo / kF32BlockN;
  const int n_end = (blk_hi + kF32BlockN - 1) / kF32BlockN;

  for (int e = tid; e < kF32BlockM * D; e += kF32Threads) {
    const int r = e / D, d = e % D;
    const int i = m0 + r;
    sQ[e] = i < p.q_len ? q_base[i * p.q_strides.seq + d] * p.scale : 0.f;
  }

  KeyRange rows[kF32RowsPerWarp];
  int64_t mask_row[kF32RowsPerWarp];
  float acc[kF32RowsPerWarp][kF32Cols];
  float row_max[kF32RowsPerWarp], row_sum[kF32RowsPerWarp];
#pragma unroll
  for (int k = 0; k < kF32RowsPerWarp; ++k) {
    const int i = m0 + warp * kF32RowsPerWarp + k;
    rows[k] = KeyRange{0, 0};
    mask_row[k] = 0;
    if (i < p.q_len) {
      rows[k] = VisibleKeys(p, i + off, kv_len);
      mask_row[k] = MaskRow(p, b, h, i);
    }
    row_max[k] = kNegInf;
    row_sum[k] = 0.f;
#pragma unroll
    for (int c = 0; c < kF32Cols; ++c) acc[k][c] = 0.f;
  }

  for (int n = n_first; n < n_end; ++n) {
    const int j0 = n * kF32BlockN;
    __syncthreads();  // the previous tile has been consumed (and sQ written, first time)
    for (int e = tid; e < kF32BlockN * D; e += kF32Threads) {
      const int r = e / D, d = e % D;
      sK[r * k_stride + d] = j0 + r < kv_len ? k_base[(j0 + r) * p.k_strides.seq + d] : 0.f;
    }
    for (int e = tid; e < kF32BlockN * Dv; e += kF32Threads) {
      const int r = e / Dv, d = e % Dv;
      sV[e] = j0 + r < kv_len ? v_base[(j0 + r) * p.v_strides.seq + d] : 0.f;
    }
    __syncthreads();

    // Scores: lane = key j0 + lane.
    float sc[kF32RowsPerWarp];
#pragma unroll
    for (int k = 0; k < kF32RowsPerWarp; ++k) sc[k] = 0.f;
    const float* kr = sK + lane * k_stride;
    const float* qr = sQ + warp * kF32RowsPerWarp * D;
    for (int d = 0; d < D; ++d) {
      const float kd = kr[d];
#pragma unroll
      for (int k = 0; k < kF32RowsPerWarp; ++k) sc[k] = fmaf(qr[k * D + d], kd, sc[k]);
    }
    const int j = j0 + lane;
    float prob[kF32RowsPerWarp];
#pragma unroll
    for (int k = 0; k < kF32RowsPerWarp; ++k) {
      const float s = KeyLogit<float>(p, a.logits, sc[k], rows[k], mask_row[k], j);
      float mx = s;
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      const float new_max = fmaxf(row_max[k], mx);  // warp-uniform
      if (new_max > row_max[k]) {
        const float corr = expf(row_max[k] - new_max);  // 0 on the first visible tile
        row_sum[k] *= corr;
#pragma unroll
        for (int c = 0; c < kF32Cols; ++c) acc[k][c] *= corr;
        row_max[k] = new_max;
      }
      prob[k] = expf(s - SoftmaxShift(row_max[k]));  // 0 for dropped keys, NaN stays NaN
      row_sum[k] += prob[k];  // per lane; reduced at the end
    }

    // O += P V: lane owns columns lane + 32 c.
    const int key_count = min(kF32BlockN, kv_len - j0);
    for (int jj = 0; jj < key_count; ++jj) {
      const float* vr = sV + jj * Dv;
      float pj[kF32RowsPerWarp];
#pragma unroll
      for (int k = 0; k < kF32RowsPerWarp; ++k) pj[k] = __shfl_sync(0xffffffffu, prob[k], jj);
#pragma unroll
      for (int c = 0; c < kF32Cols; ++c) {
        const int col = lane + 32 * c;
        if (col < Dv) {
          const float vv = vr[col];
#pragma unroll
          for (int k = 0; k < kF32RowsPerWarp; ++k) acc[k][c] = fmaf(pj[k], vv, acc[k][c]);
        }
      }
    }
  }

#pragma unroll
  for (int k = 0; k < kF32RowsPerWarp; ++k) {
    float sum = row_sum[k];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    const float inv = sum > 0.f ? 1.f / sum : 0.f;
    const int i = m0 + warp * kF32RowsPerWarp + k;
    if (lse != nullptr && lane == 0 && i < p.q_len) lse[i] = RowLogSumExp(row_max[k], sum);
    if (i < p.q_len) {
#pragma unroll
      for (int c = 0; c < kF32Cols; ++c) {
        const int col = lane + 32 * c;
        if (col < Dv) o_base[i * p.out_strides.seq + col] = acc[k][c] * inv;
      }
    }
  }
}

}  // namespace

cudaError_t LaunchAttentionForwardF32(const AttentionParams& p, cudaStream_t stream) {
  static DeviceFlags smem_set;
  // The limit is raised once to the largest size any head dims need.
  if (cudaError_t err = EnsureDynamicSmem(AttentionFwdF32Kernel,
                                          F32SmemBytes(kMaxHeadSize, kMaxHeadSize), smem_set);
      err != cudaSuccess) {
    return err;
  }
  F32Args a;
  a.grid = MakeFwdGrid(p, kF32BlockM);
  a.logits = MakeLogits(p, 1.f, /*q_scaled=*/true);
  const int64_t blocks = a.grid.blocks;
  if (blocks <= 0) return cudaSuccess;
  if (blocks > INT_MAX) return cudaErrorInvalidConfiguration;
  AttentionFwdF32Kernel<<<static_cast<unsigned>(blocks), kF32Threads,
                          F32SmemBytes(p.head_size, p.v_head_size), stream>>>(p, a);
  return cudaGetLastError();
}

}  // namespace jax_mea::cuda
