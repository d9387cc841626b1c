// Attention forward for float16 / bfloat16 on Hopper (sm_90a): warp-specialized,
// TMA + wgmma, FlashAttention-3's structure (first version: intra-warpgroup
// overlap but no pingpong between warpgroups yet, one CTA per query block, O
// stored from registers).
//
// One CTA computes one (batch, query head, block of kBlockM = 128 query rows)
// with three warpgroups:
//   producer   (warpgroup 0, registers lowered to 24): one thread of warp 0 loads
//              Q once, then K and V tiles of kBlockN keys into a kStages ring of
//              shared-memory buffers by TMA (cp.async.bulk.tensor), each buffer
//              with a "full" mbarrier (TMA bytes landed) and an "empty" one (the
//              consumers are done with it).
//   consumers  (warpgroups 1 and 2, registers raised to 240): 64 query rows each.
//              S = Q K^T by wgmma from shared memory (both K-major), scale, mask
//              (only tiles some row does not see whole), online softmax in
//              registers (fwd_softmax.cuh, shared with the sm_80 kernel), then
//              O += P V by wgmma with P from registers (the accumulator fragment
//              relabelled) and V from shared memory as an MN-major B operand
//              (transpose bit: V is never transposed in memory).
//
// Shared-memory tiles are TMA boxes of 64 columns (128 bytes) x rows, 128-byte
// swizzled, 1024-byte aligned; a head dim of 128 is two boxes side by side
// (tensor_map.h, SmemDesc in sm90_common.cuh). Columns past H / Hv and rows past
// q_len / kv_capacity are zero-filled by the copy engine. Keys in
// [kv_length(b), kv_capacity) are loaded (a box cannot stop at a per-batch
// length) but never used: their scores are masked to -inf, and the V rows of the
// one tile that crosses kv_length are zeroed by the producer warp before the
// consumers read it (P = 0 times a NaN there would still be NaN).
//
// Semantics are the sm_80 kernel's (attention_fwd.cuh) through the score layer
// (jax_mea/score.h); Sm90ForwardUnsupported (attention_fwd_sm90.cu) lists what
// this kernel does not take yet (those calls run on the sm_80 kernel).
#pragma once

#include <cudaTypedefs.h>  // CUtensorMap

#include <cstdint>

#include "kernels/common.cuh"
#include "kernels/fwd_softmax.cuh"
#include "kernels/sm90_common.cuh"

namespace jax_mea::cuda {

template <int kD, int kDv>
struct Sm90FwdTraits {
  static_assert(kD % 64 == 0 && kDv % 64 == 0, "head dims are whole 64-column TMA boxes");
  static constexpr int kConsumers = 2;  // consumer warpgroups, 64 query rows each
  static constexpr int kThreads = 128 * (1 + kConsumers);
  static constexpr int kBlockM = 64 * kConsumers;
  // Keys per K/V tile: 128 while the registers (S, P and O: 64 + 32 + kDv / 2 per
  // thread) and shared memory (Q + 2 stages of K and V) allow, else 64:
  // 64x64 80 KB, 128x128 160 KB, 192x128 208 KB, 256x256 (64 keys) 192 KB.
  static constexpr int kBlockN = kD <= 192 && kDv <= 128 ? 128 : 64;
  static constexpr int kStages = 2;
  static constexpr int kBoxCols = 64;                    // 16-bit columns of a TMA box
  static constexpr int kRowBytes = kBoxCols * 2;         // 128: one swizzled row
  static constexpr int kQBoxBytes = kBlockM * kRowBytes;  // one 64-column box of Q
  static constexpr int kKVBoxBytes = kBlockN * kRowBytes;
  static constexpr int kQBytes = kD / kBoxCols * kQBoxBytes;
  static constexpr int kKBytes = kD / kBoxCols * kKVBoxBytes;
  static constexpr int kVBytes = kDv / kBoxCols * kKVBoxBytes;
  static constexpr int kAlign = 1024;  // swizzle atoms start at 1024-byte multiples
  static constexpr int kSmemBytes = kQBytes + kStages * (kKBytes + kVBytes) + kAlign;
  static_assert(kSmemBytes <= 227 * 1024, "shared memory of an sm_90 CTA");
  // 128 * (24 + 2 * 240) = 64512 <= 65536 registers; the kernel starts with
  // 65536 / 384 = 170 (168 usable) each.
  static constexpr int kProducerRegs = 24;
  static constexpr int kConsumerRegs = 240;
  static_assert(kQBoxBytes % kAlign == 0 && kKVBoxBytes % kAlign == 0, "aligned boxes");
};

// Per-launch constants computed on the host.
struct Sm90FwdArgs {
  CUtensorMap tmap_q, tmap_k, tmap_v;  // tensor_map.h's EncodeBoxMap: kBlockM / kBlockN rows
  int num_m_blocks;
  Logits logits;  // in log2 units
};

// The mbarriers of one CTA (shared memory), with the phase parity each wait uses.
// Buffer use u of a ring stage (tile t: stage t % kStages, use t / kStages)
// completes phase u of its full barrier (parity u & 1); the producer refills it
// after phase u - 1 of its empty barrier completed.
template <int kStages>
struct Sm90FwdBarriers {
  uint64_t q_full;
  uint64_t k_full[kStages], v_full[kStages];
  uint64_t k_empty[kStages], v_empty[kStages];  // one arrival per consumer warp
  uint64_t v_tail;  // the producer zeroed the V rows past kv_length (one use)
};

// kPipelined: FlashAttention-3's intra-warpgroup overlap of the softmax with the
// GEMMs (the default); false: one step at a time (the first version, kept to
// tell a pipelining bug from a layout bug).
template <typename T, int kD, int kDv, bool kPipelined>
__global__ void __launch_bounds__(Sm90FwdTraits<kD, kDv>::kThreads, 1)
    AttentionFwdSm90Kernel(const __grid_constant__ AttentionParams p,
                           const __grid_constant__ Sm90FwdArgs a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Tr = Sm90FwdTraits<kD, kDv>;
  constexpr int kBlockM = Tr::kBlockM;
  constexpr int kBlockN = Tr::kBlockN;
  constexpr int kStages = Tr::kStages;
  constexpr int kNT = kBlockN / 8;  // n8 tiles of S
  constexpr int kDT = kDv / 8;      // n8 tiles of O
  constexpr int kConsumerWarps = 4 * Tr::kConsumers;

  extern __shared__ unsigned char smem_raw[];
  __shared__ Sm90FwdBarriers<kStages> bars;
  unsigned char* const smem = smem_raw + ((Tr::kAlign - (SmemAddr(smem_raw) & (Tr::kAlign - 1))) &
                                          (Tr::kAlign - 1));
  T* const sQ = reinterpret_cast<T*>(smem);
  T* const sK = reinterpret_cast<T*>(smem + Tr::kQBytes);                          // kStages
  T* const sV = reinterpret_cast<T*>(smem + Tr::kQBytes + kStages * Tr::kKBytes);  // kStages

  const int tid = threadIdx.x;
  const int warp = tid >> 5, lane = tid & 31;

  const FwdBlock<T> w = ThisFwdBlock<T>(p, a.num_m_blocks, kBlockM);
  const int kv_head = w.h / p.group_size();

  // Keys any row of this block may see, and keys every row sees (as the sm_80 kernel).
  const KeyRange first_row = VisibleKeys(p, w.m0 + w.off, w.kv_len);
  const KeyRange last_row = VisibleKeys(p, w.q_end - 1 + w.off, w.kv_len);
  const int blk_lo = first_row.lo, blk_hi = last_row.hi;
  const KeyRange seen_by_all = {last_row.lo, first_row.hi};

  if (blk_hi <= blk_lo) {  // no row sees any key: zeros (lse -inf); uniform over the CTA
    for (int e = tid; e < (w.q_end - w.m0) * p.v_head_size; e += Tr::kThreads) {
      const int r = e / p.v_head_size, c = e % p.v_head_size;
      w.o[(w.m0 + r) * p.out_strides.seq + c] = FromF32<T>(0.f);
    }
    if (w.lse != nullptr) {
      for (int i = w.m0 + tid; i < w.q_end; i += Tr::kThreads) w.lse[i] = kNegInf;
    }
    return;
  }
  const int n_first = blk_lo / kBlockN;
  const int num_tiles = (blk_hi + kBlockN - 1) / kBlockN - n_first;
  // The last tile holds V rows past kv_length that are not zero-filled (they are
  // below kv_capacity): the producer zeroes them.
  const int tail_j0 = (n_first + num_tiles - 1) * kBlockN;
  const bool zero_tail = w.kv_len < p.kv_capacity && tail_j0 + kBlockN > w.kv_len;

  if (tid == 0) {
    MbarInit(&bars.q_full, 1);
#pragma unroll
    for (int st = 0; st < kStages; ++st) {
      MbarInit(&bars.k_full[st], 1);
      MbarInit(&bars.v_full[st], 1);
      MbarInit(&bars.k_empty[st], kConsumerWarps);
      MbarInit(&bars.v_empty[st], kConsumerWarps);
    }
    MbarInit(&bars.v_tail, 1);
    FenceMbarInit();
  }
  __syncthreads();

  // ---------------------------------------------------------------- producer
  if (warp < 4) {
    LowerRegisters<Tr::kProducerRegs>();
    if (warp != 0) return;
    if (lane == 0) {
      MbarArriveExpectTx(&bars.q_full, Tr::kQBytes);
#pragma unroll
      for (int c = 0; c < kD / 64; ++c) {
        TmaLoad4d(reinterpret_cast<unsigned char*>(sQ) + c * Tr::kQBoxBytes, &a.tmap_q, c * 64,
                  w.m0, w.h, w.b, &bars.q_full);
      }
    }
    for (int t = 0; t < num_tiles; ++t) {
      const int st = t % kStages;
      const unsigned use = t / kStages;
      const int j0 = (n_first + t) * kBlockN;
      unsigned char* const k_dst = reinterpret_cast<unsigned char*>(sK) + st * Tr::kKBytes;
      unsigned char* const v_dst = reinterpret_cast<unsigned char*>(sV) + st * Tr::kVBytes;
      if (lane == 0) {
        if (use > 0) MbarWait(&bars.k_empty[st], (use - 1) & 1);
        MbarArriveExpectTx(&bars.k_full[st], Tr::kKBytes);
#pragma unroll
        for (int c = 0; c < kD / 64; ++c) {
          TmaLoad4d(k_dst + c * Tr::kKVBoxBytes, &a.tmap_k, c * 64, j0, kv_head, w.b,
                    &bars.k_full[st]);
        }
        if (use > 0) MbarWait(&bars.v_empty[st], (use - 1) & 1);
        MbarArriveExpectTx(&bars.v_full[st], Tr::kVBytes);
#pragma unroll
        for (int c = 0; c < kDv / 64; ++c) {
          TmaLoad4d(v_dst + c * Tr::kKVBoxBytes, &a.tmap_v, c * 64, j0, kv_head, w.b,
                    &bars.v_full[st]);
        }
      }
      if (zero_tail && t == num_tiles - 1) {
        // Whole 128-byte rows: the swizzle only permutes chunks within a row.
        __syncwarp();
        MbarWait(&bars.v_full[st], use & 1);
        const int row0 = w.kv_len - j0;  // first row to zero, in [0, kBlockN)
        const int chunks = (kBlockN - row0) * (Tr::kRowBytes / 16);
        for (int box = 0; box < kDv / 64; ++box) {
          unsigned char* const base = v_dst + box * Tr::kKVBoxBytes + row0 * Tr::kRowBytes;
          for (int c = lane; c < chunks; c += 32) {
            *reinterpret_cast<uint4*>(base + c * 16) = make_uint4(0u, 0u, 0u, 0u);
          }
        }
        FenceProxyAsyncShared();  // the zeros, before wgmma (async proxy) reads them
        __syncwarp();
        if (lane == 0) MbarArrive(&bars.v_tail);
      }
    }
    return;
  }

  // ---------------------------------------------------------------- consumers
  RaiseRegisters<Tr::kConsumerRegs>();
  const int cw = warp / 4 - 1;  // consumer warpgroup: block rows 64 cw .. 64 cw + 63
  const int g = lane >> 2, tig = lane & 3;
  const int row_base = w.m0 + 64 * cw + 16 * (warp & 3) + g;  // this thread's rows: + 0, + 8

  KeyRange rows[2];
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    const int i = row_base + 8 * k;
    rows[k] = i < p.q_len ? VisibleKeys(p, i + w.off, w.kv_len) : KeyRange{0, 0};
  }
  const int64_t mask_bh = MaskRow(p, w.b, w.h, 0);

  float o[1][kDT][4];
#pragma unroll
  for (int d = 0; d < kDT; ++d) o[0][d][0] = o[0][d][1] = o[0][d][2] = o[0][d][3] = 0.f;
  float row_max[2] = {kNegInf, kNegInf}, row_sum[2] = {0.f, 0.f};
  float s[1][kNT][4];
  uint32_t pa[kBlockN / 16][4];

  // This warpgroup's 64 rows of each Q box start 64 rows (8 swizzle atoms) in.
  const uint32_t q_addr = SmemAddr(sQ) + cw * 64 * Tr::kRowBytes;

  // S = Q K_t^T, issued: k16 step ks is 32 ks bytes into a row, box ks / 4.
  auto issue_s = [&](int t) {
    const int st = t % kStages;
    const uint32_t k_addr = SmemAddr(sK) + st * Tr::kKBytes;
    MbarWait(&bars.k_full[st], (t / kStages) & 1);
    WgmmaFence();
#pragma unroll
    for (int ks = 0; ks < kD / 16; ++ks) {
      const uint32_t col_bytes = (ks & 3) * 32;
      const uint64_t qd = SmemDesc(q_addr + (ks >> 2) * Tr::kQBoxBytes + col_bytes, 0, 1024);
      const uint64_t kd = SmemDesc(k_addr + (ks >> 2) * Tr::kKVBoxBytes + col_bytes, 0, 1024);
      Wgmma<T, kBlockN>::template SS<0, 0>(s[0], qd, kd, ks > 0);
    }
    WgmmaCommit();
  };
  // O += P V_t, issued (P in pa): V's k16 step kk is 16 rows (2048 bytes) further;
  // its 64-column boxes are kKVBoxBytes apart (the MN-major leading byte offset).
  auto issue_pv = [&](int t) {
    const int st = t % kStages;
    const uint32_t v_addr = SmemAddr(sV) + st * Tr::kVBytes;
    MbarWait(&bars.v_full[st], (t / kStages) & 1);
    if (zero_tail && t == num_tiles - 1) MbarWait(&bars.v_tail, 0);
    WgmmaFence();
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      const uint64_t vd = SmemDesc(v_addr + kk * 16 * Tr::kRowBytes, Tr::kKVBoxBytes, 1024);
      Wgmma<T, kDv>::template RS<1>(o[0], pa[kk], vd, 1);
    }
    WgmmaCommit();
  };
  // A buffer back to the producer: one arrival per warp, after its wait.
  auto release = [&](uint64_t* bar) {
    __syncwarp();
    if (lane == 0) MbarArrive(bar);
  };
  // Logits, mask (tiles some row does not see whole), softmax of S_t: s becomes P.
  auto softmax = [&](int t, float (&corr)[2]) {
    const int j0 = (n_first + t) * kBlockN;
    ScoresToLogits(s, a.logits);
    if (!KeysAllVisible(p, seen_by_all, j0, kBlockN)) {
      // No mask tensor (Sm90ForwardUnsupported): its per-key loads would spill the
      // pipelined loop, where O, P and S are all live.
      MaskLogits<T, 1, kNT, /*kMaskTensor=*/false>(s, p, a.logits, rows, mask_bh, row_base,
                                                    tig, j0);
    }
    SoftmaxStep(s, row_max, row_sum, corr);
  };
  auto p_to_a = [&] {
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) PFragment<T>(pa[kk], s, 0, kk);
  };

  MbarWait(&bars.q_full, 0);
  float corr[2];
  if constexpr (kPipelined) {
    // FlashAttention-3's intra-warpgroup overlap: S_t is issued, then
    // P_{t-1} V_{t-1}; waiting for all but the newest group gives S_t, whose
    // softmax runs while the tensor cores still compute P_{t-1} V_{t-1}; O is
    // rescaled once those land, and P_t takes P_{t-1}'s registers.
    issue_s(0);
    WgmmaWait<0>();
    FenceRegs(s[0]);
    release(&bars.k_empty[0]);
    softmax(0, corr);  // O is 0: no rescale
    p_to_a();
    for (int t = 1; t < num_tiles; ++t) {
      issue_s(t);
      issue_pv(t - 1);
      WgmmaWait<1>();  // S_t landed; P_{t-1} V_{t-1} may still run
      FenceRegs(s[0]);
      release(&bars.k_empty[t % kStages]);
      softmax(t, corr);
      WgmmaWait<0>();
      FenceRegs(o[0]);
      FenceRegs(pa);
      release(&bars.v_empty[(t - 1) % kStages]);
      RescaleRows(o, corr);
      p_to_a();
    }
    issue_pv(num_tiles - 1);
    WgmmaWait<0>();
    FenceRegs(o[0]);
    FenceRegs(pa);
    release(&bars.v_empty[(num_tiles - 1) % kStages]);
  } else {
    // One tile at a time: S, softmax, P V, each waited for (the first version;
    // sm90_check --simple runs it).
    for (int t = 0; t < num_tiles; ++t) {
      issue_s(t);
      WgmmaWait<0>();
      FenceRegs(s[0]);
      release(&bars.k_empty[t % kStages]);
      softmax(t, corr);
      RescaleRows(o, corr);
      p_to_a();
      issue_pv(t);
      WgmmaWait<0>();
      FenceRegs(o[0]);
      FenceRegs(pa);
      release(&bars.v_empty[t % kStages]);
    }
  }

  // Normalise and store this thread's two rows (4-byte pairs: Hv and the output's
  // strides are multiples of 8, its address of 16 bytes), and their lse.
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    const int i = row_base + 8 * k;
    const float sum = QuadSum(row_sum[k]);
    if (i >= p.q_len) continue;
    const float inv = RowScale(sum);
    T* const orow = w.o + i * p.out_strides.seq;
#pragma unroll
    for (int d = 0; d < kDT; ++d) {
      const int col = d * 8 + tig * 2;
      if (col < p.v_head_size) {
        *reinterpret_cast<uint32_t*>(orow + col) =
            Pack2<T>(o[0][d][2 * k] * inv, o[0][d][2 * k + 1] * inv);
      }
    }
    if (w.lse != nullptr && tig == 0) {
      w.lse[i] = RowLogSumExp(row_max[k], sum, /*log2_units=*/true);
    }
  }
#endif  // __CUDA_ARCH_FEAT_SM90_ALL
}

}  // namespace jax_mea::cuda
