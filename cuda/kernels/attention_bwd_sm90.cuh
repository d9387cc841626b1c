// The attention backward's main kernel on Hopper (sm_90a): BwdKernel's work
// (attention_bwd.cuh: the same launches around it, grid, walk, workspace and ordered
// dQ adds) in FlashAttention-3's structure (pending/hopper-backward-digest.md): TMA
// tiles, wgmma GEMMs chained so that the elementwise work overlaps them, and the dQ
// adds taken off the MMA warps by a writer warp and the copy engine.
//
// One CTA per (batch, head, block of kBlockN = 128 keys), BwdKernel's grid, 3
// warpgroups (384 threads):
//   warpgroup 0 (registers lowered to 24):
//     producer (warp 0): loads K and V of the block once (then zeroes K's rows in
//       [kv_length, kv_capacity): dQ's GEMM multiplies them by dS = 0, and 0 times a
//       NaN there would still be NaN), then Q, dO, lse2 and D of each tile of the
//       walk (kBlockM = 64 query rows) into a 2-stage ring (q_full / q_empty).
//     dQ writer (warp 1): per tile, waits for this key block's turn (WaitTurn, as
//       BwdKernel), then for each consumer warpgroup's dQ part in shared memory
//       (named barrier dq_full), adds it to the float32 accumulator by one bulk
//       reduction of the copy engine (DqAccOffset<true>'s order), frees the staging
//       (dq_empty) once read, and passes the turn once the adds are complete.
//   consumers (warpgroups 1 and 2, 240 registers): warpgroup c owns keys
//     64c .. 64c + 63 of the block. Per tile:
//       S^T = K_c Q^T, then dP^T = V_c dO^T (wgmma from shared memory, both
//         K-major: the accumulator's rows are keys, its columns queries);
//       P^T = exp2(logit - lse2) while dP^T is still computed (the plain tiles;
//         checked or softcapped tiles wait for both, BwdGrads), dS^T = P^T (dP^T - D);
//       dS^T into shared memory (128 keys x 64 queries, 128-byte swizzled rows);
//       dV_c += P^T dO (P^T from registers, dO as an MN-major B operand);
//       one 256-thread barrier (both halves of dS^T written), then dQ's columns
//         64c .. 64c + 63 = dS K over all 128 keys (dS^T as an MN-major A operand,
//         K's box c as MN-major B) and dK_c += dS^T Q (from registers);
//       dQ's part into the warpgroup's staging once dV and dQ are done (dK still
//         running), handed to the writer.
// dS^T takes two buffers: a warpgroup writes tile n + 2's only after the barrier of
// tile n + 1, which both passed after their dQ GEMM of tile n completed (at 64 x 64,
// where each reads only its own rows, after its own dQ GEMM of tile n).
// Head dims: a 128 x 128 instance (H, Hv multiples of 8 in (64, 128]) and a 64 x 64
// one (H, Hv multiples of 8 up to 64); columns past them are zero-filled by the copy
// engine and never stored. At 64 x 64 (kDqSplitKeys) each consumer warpgroup computes
// dQ over its own 64 keys instead (dS^T's own half, so no barrier across warpgroups
// before it): the first warpgroup leaves its part in the staging buffer, the second
// adds its own to it (always in that order: deterministic) and hands the sum to the
// writer, one bulk reduction per tile.
#pragma once

#include <cudaTypedefs.h>  // CUtensorMap

#include <cstdint>

#include "kernels/attention_bwd.cuh"
#include "kernels/fwd_softmax.cuh"  // PFragment
#include "kernels/sm90_common.cuh"
#include "kernels/wgmma.cuh"

namespace jax_mea::cuda {

template <int kHeadDim>
struct BwdSm90Traits {
  static_assert(kHeadDim == 64 || kHeadDim == 128, "one or two 64-column boxes");
  static constexpr int kD = kHeadDim, kDv = kHeadDim;  // padded head dims
  static constexpr int kBoxes = kD / 64;
  static constexpr int kBlockN = static_cast<int>(kBwdBlockN);  // keys per CTA
  static constexpr int kBlockM = static_cast<int>(kBwdBlockM);  // query rows per tile
  static_assert(kBlockN == 128 && kBlockM == 64, "two consumer warpgroups of 64 keys");
  static constexpr int kThreads = 384;
  static constexpr int kRowBytes = 128;                   // one swizzled 64-column row
  static constexpr int kKBoxBytes = kBlockN * kRowBytes;  // a 64-column box of K or V
  static constexpr int kQBoxBytes = kBlockM * kRowBytes;  // of Q or dO
  static constexpr int kKBytes = kBoxes * kKBoxBytes, kVBytes = kBoxes * kKBoxBytes;
  static constexpr int kQBytes = kBoxes * kQBoxBytes, kDoBytes = kBoxes * kQBoxBytes;
  static constexpr int kDsBytes = kBlockN * kRowBytes;  // dS^T: 128 keys x 64 queries
  // dQ of a tile (64 rows x 64 columns per 16 KB part, float32): at 128 the two
  // consumer warpgroups' column halves; at 64 one part, over the keys of both (above).
  static constexpr bool kDqSplitKeys = kD == 64;
  static constexpr int kDqParts = kBoxes;
  static constexpr int kDqPartFloats = kBlockM * 64;
  static constexpr int kDqPartBytes = 4 * kDqPartFloats;
  static constexpr int kRowsBytes = 2 * kBlockM * 4;  // a stage's lse2 and D
  // K, V; Q and dO in 2 stages; dS^T in 2 buffers; the dQ staging; lse2 and D in 2
  // stages: 193 KB at 128, 113 KB at 64.
  static constexpr int kOffV = kKBytes;
  static constexpr int kOffQ = kOffV + kVBytes;
  static constexpr int kOffDo = kOffQ + 2 * kQBytes;
  static constexpr int kOffDs = kOffDo + 2 * kDoBytes;
  static constexpr int kOffDq = kOffDs + 2 * kDsBytes;
  static constexpr int kOffRows = kOffDq + kDqParts * kDqPartBytes;
  static constexpr int kAlign = 1024;
  static constexpr int kSmemBytes = kOffRows + 2 * kRowsBytes + kAlign;
  static_assert(kSmemBytes <= 227 * 1024, "Hopper's shared memory per CTA");
  static constexpr int kProducerRegs = 24, kConsumerRegs = 240;
  static_assert(128 * (kProducerRegs + 2 * kConsumerRegs) <= 65536, "register file");
  // Named barriers (0 is __syncthreads'): dS^T written (both warpgroups' halves at 128;
  // at 64 each warpgroup's own, kDsBarrier + c); the dQ staging free (writer ->
  // consumers) and full (consumers -> writer), per part; at 64, the first warpgroup's
  // dQ part in the staging (kDqHalfBarrier).
  static constexpr int kDsBarrier = 1, kDqEmptyBarrier = 3, kDqFullBarrier = 5,
                       kDqHalfBarrier = 7;
  static constexpr int kDqBarrierThreads = 128 + 32;
};

struct BwdSm90Maps {
  CUtensorMap q, dout, k, v;  // tensor_map.h's EncodeBoxMap: kBlockM / kBlockN rows
};

// A descriptor `bytes` further into its tile (the start address field, bits 0-13,
// in 16-byte units; the tiles lie below 256 KB, so it does not carry out).
__device__ __forceinline__ uint64_t DescPlus(uint64_t desc, uint32_t bytes) {
  return desc + (bytes >> 4);
}

template <typename T, int kHeadDim>
__global__ void __launch_bounds__(BwdSm90Traits<kHeadDim>::kThreads, 1)
    BwdSm90Kernel(const __grid_constant__ AttentionBackwardParams bp, const BwdArgs a,
                  const __grid_constant__ BwdSm90Maps maps) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Tr = BwdSm90Traits<kHeadDim>;
  constexpr int kBM = Tr::kBlockM, kBN = Tr::kBlockN;
  constexpr int kNT = kBM / 8;       // n8 tiles of S^T (queries)
  constexpr int kDT = Tr::kD / 8;    // n8 tiles of dK
  constexpr int kDvT = Tr::kDv / 8;  // n8 tiles of dV
  constexpr int kConsumerThreads = 256;
  const AttentionParams& p = bp.fwd;

  extern __shared__ unsigned char smem_raw[];
  // kv_full: K and V landed (TMA bytes); kv_ready: the producer zeroed K's rows past
  // kv_length (or had none to zero); q_full / q_empty: the ring of Q, dO, lse2, D.
  __shared__ uint64_t kv_full, kv_ready, q_full[2], q_empty[2];
  unsigned char* const smem = smem_raw + ((Tr::kAlign - (SmemAddr(smem_raw) & (Tr::kAlign - 1))) &
                                          (Tr::kAlign - 1));
  unsigned char* const sK = smem;
  unsigned char* const sV = smem + Tr::kOffV;
  unsigned char* const sQ = smem + Tr::kOffQ;    // [stage]
  unsigned char* const sDo = smem + Tr::kOffDo;  // [stage]
  unsigned char* const sDs = smem + Tr::kOffDs;  // [buffer]
  float* const sDq = reinterpret_cast<float*>(smem + Tr::kOffDq);      // [part]
  float* const sRows = reinterpret_cast<float*>(smem + Tr::kOffRows);  // [stage][lse2, D][kBM]

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const BwdPlace at(p, a, kBN, blockIdx.x);

  if (tid == 0) {
    MbarInit(&kv_full, 1);
    MbarInit(&kv_ready, 1);
#pragma unroll
    for (int st = 0; st < 2; ++st) {
      MbarInit(&q_full[st], 1);
      MbarInit(&q_empty[st], kConsumerThreads);
    }
    FenceMbarInit();
  }
  __syncthreads();

  // ---------------------------------------------------------------- producer, dQ writer
  if (warp < 4) {
    LowerRegisters<Tr::kProducerRegs>();
    if (warp >= 2) return;
    BwdWalk walk = at.Walk(p, kBM, kBN);
    BwdTile cur = walk.First(at.hg_first);
    if (cur.hg >= at.hg_end) return;
    if (warp == 1) {  // the dQ writer
      while (cur.hg < at.hg_end) {
        const BwdTile nxt = walk.Next(cur.hg, cur.m);
        const int64_t block = at.BlockIndex(a, cur);
        int* const sem = a.sem + block;
        float* const dst = a.dq_acc + block * kBM * Tr::kD;  // dq_stride = kD (RunBwd)
        if (lane == 0) {
          WaitTurn(sem, at.Turn(cur, kBN));
          FenceProxyAsyncGlobal();  // the adds before the turn, then the copy engine's
        }
#pragma unroll
        for (int c = 0; c < Tr::kDqParts; ++c) {
          __syncwarp();  // named barriers take whole warps
          NamedBarrierSync(Tr::kDqFullBarrier + c, Tr::kDqBarrierThreads);
          if (lane == 0) {
            BulkReduceAddF32(dst + c * Tr::kDqPartFloats, sDq + c * Tr::kDqPartFloats,
                             Tr::kDqPartBytes);
          }
        }
        if (lane == 0) {
          BulkCommit();
          BulkWaitRead();
        }
        __syncwarp();
        if (nxt.hg < at.hg_end) {  // as many arrivals as the consumers' waits
#pragma unroll
          for (int c = 0; c < Tr::kDqParts; ++c) {
            NamedBarrierArrive(Tr::kDqEmptyBarrier + c, Tr::kDqBarrierThreads);
          }
        }
        if (lane == 0) {
          BulkWait();               // the adds done in global memory,
          FenceProxyAsyncGlobal();  // ordered before the turn's release
          PassTurn(sem);
        }
        cur = nxt;
      }
      return;
    }
    // The producer.
    if (lane == 0) {
      PrefetchTensorMap(&maps.q);
      PrefetchTensorMap(&maps.dout);
      MbarArriveExpectTx(&kv_full, Tr::kKBytes + Tr::kVBytes);
#pragma unroll
      for (int c = 0; c < Tr::kBoxes; ++c) {
        TmaLoad4d(sK + c * Tr::kKBoxBytes, &maps.k, c * 64, at.j0, at.kvh, at.b, &kv_full);
        TmaLoad4d(sV + c * Tr::kKBoxBytes, &maps.v, c * 64, at.j0, at.kvh, at.b, &kv_full);
      }
    }
    if (at.kv_len < p.kv_capacity && at.j0 + kBN > at.kv_len) {
      // K's rows in [kv_len, kv_capacity) of the block: zeros (whole 128-byte rows: the
      // swizzle only permutes chunks within a row).
      __syncwarp();
      MbarWait(&kv_full, 0);
      const int row0 = at.kv_len - at.j0;
      const int chunks = (kBN - row0) * (Tr::kRowBytes / 16);
      for (int box = 0; box < Tr::kBoxes; ++box) {
        unsigned char* const base = sK + box * Tr::kKBoxBytes + row0 * Tr::kRowBytes;
        for (int c = lane; c < chunks; c += 32) {
          *reinterpret_cast<uint4*>(base + c * 16) = make_uint4(0u, 0u, 0u, 0u);
        }
      }
      FenceProxyAsyncShared();
      __syncwarp();
    }
    if (lane == 0) MbarArrive(&kv_ready);
    for (int n = 0; cur.hg < at.hg_end; ++n, cur = walk.Next(cur.hg, cur.m)) {
      const int st = n & 1;
      if (lane == 0) {
        if (n >= 2) MbarWait(&q_empty[st], ((n >> 1) - 1) & 1);
        MbarArriveExpectTx(&q_full[st], Tr::kQBytes + Tr::kDoBytes + Tr::kRowsBytes);
        const int h = at.Head(cur);
#pragma unroll
        for (int c = 0; c < Tr::kBoxes; ++c) {
          TmaLoad4d(sQ + st * Tr::kQBytes + c * Tr::kQBoxBytes, &maps.q, c * 64, cur.m * kBM, h,
                    at.b, &q_full[st]);
          TmaLoad4d(sDo + st * Tr::kDoBytes + c * Tr::kQBoxBytes, &maps.dout, c * 64,
                    cur.m * kBM, h, at.b, &q_full[st]);
        }
        const int64_t row0 = at.BlockIndex(a, cur) * kBM;
        float* const rows = sRows + st * 2 * kBM;
        BulkLoad(rows, a.lse2 + row0, kBM * 4, &q_full[st]);
        BulkLoad(rows + kBM, a.delta + row0, kBM * 4, &q_full[st]);
      }
    }
    return;
  }

  // ---------------------------------------------------------------- consumers
  RaiseRegisters<Tr::kConsumerRegs>();
  const int cw = warp / 4 - 1;  // consumer warpgroup: keys 64 cw .. 64 cw + 63
  const int wq = warp & 3;      // warp of the warpgroup: its rows 16 wq + g, + 8
  const int g = lane >> 2, tig = lane & 3;
  const int key_row = 64 * cw + 16 * wq + g;  // this thread's keys in the block: + 0, + 8

  float dk[1][kDT][4], dv[1][kDvT][4];
  Zero(dk);
  Zero(dv);

  BwdWalk walk = at.Walk(p, kBM, kBN);
  BwdTile cur = walk.First(at.hg_first);
  if (cur.hg < at.hg_end) {  // K and V landed, and K's rows past kv_length zeroed
    MbarWait(&kv_full, 0);
    MbarWait(&kv_ready, 0);
  }
  const uint32_t k_addr = SmemAddr(sK), v_addr = SmemAddr(sV);
  // This warpgroup's 64 key rows of each K / V box start 64 rows (8 swizzle atoms) in.
  const uint64_t kc_desc = SmemDesc(k_addr + cw * 64 * Tr::kRowBytes, 0, 1024);
  const uint64_t vc_desc = SmemDesc(v_addr + cw * 64 * Tr::kRowBytes, 0, 1024);
  // dQ's MN-major B operand (k16 step kk: 16 keys, 2048 bytes further): K's box cw,
  // every key (128); at 64, K's one box from this warpgroup's keys on.
  const uint64_t kb_desc = Tr::kDqSplitKeys
                               ? SmemDesc(k_addr + cw * 64 * Tr::kRowBytes, Tr::kKBoxBytes, 1024)
                               : SmemDesc(k_addr + cw * Tr::kKBoxBytes, Tr::kKBoxBytes, 1024);
  // This thread's float4 of n8 tile j of a dQ part is at 512 j (DqAccOffset<true>).
  float* const dq_stage = sDq + (Tr::kDqSplitKeys ? 0 : cw * Tr::kDqPartFloats) +
                          4 * (tid - 128 * (cw + 1));
  for (int n = 0; cur.hg < at.hg_end; ++n, cur = walk.Next(cur.hg, cur.m)) {
    const int st = n & 1;
    const uint32_t q_addr = SmemAddr(sQ) + st * Tr::kQBytes;
    const uint32_t do_addr = SmemAddr(sDo) + st * Tr::kDoBytes;
    unsigned char* const ds = sDs + st * Tr::kDsBytes;
    const uint64_t q_desc = SmemDesc(q_addr, 0, 1024), do_desc = SmemDesc(do_addr, 0, 1024);
    // Q and dO as MN-major B operands (dK's, dV's): k16 step kk is 16 query rows
    // (2048 bytes) further; the 64-column boxes are kQBoxBytes apart.
    const uint64_t q_mn_desc = SmemDesc(q_addr, Tr::kQBoxBytes, 1024);
    const uint64_t do_mn_desc = SmemDesc(do_addr, Tr::kQBoxBytes, 1024);
    const uint64_t ds_desc = SmemDesc(SmemAddr(ds), Tr::kDsBytes, 1024);
    MbarWait(&q_full[st], (n >> 1) & 1);

    // S^T = K_c Q^T and dP^T = V_c dO^T, two groups: the warpgroup's 64 key rows of
    // K (V) against the tile's rows of Q (dO), both K-major; k16 step ks is 32 ks
    // bytes into a row, box ks / 4.
    float s[1][kNT][4], dp[1][kNT][4];
    auto issue_keys_by_rows = [&](float (&acc)[1][kNT][4], uint64_t keys, uint64_t rows) {
#pragma unroll
      for (int ks = 0; ks < Tr::kD / 16; ++ks) {
        const uint32_t col = (ks & 3) * 32;
        Wgmma<T, kBM>::template SS<0, 0>(acc[0], DescPlus(keys, (ks >> 2) * Tr::kKBoxBytes + col),
                                         DescPlus(rows, (ks >> 2) * Tr::kQBoxBytes + col), ks > 0);
      }
      WgmmaCommit();
    };
    static_assert(Tr::kD == Tr::kDv, "S^T and dP^T take the same k steps");
    WgmmaFence();
    issue_keys_by_rows(s, kc_desc, q_desc);
    issue_keys_by_rows(dp, vc_desc, do_desc);

    // P^T and dS^T in place: element (key row, query column 8 t + 2 tig + e), lse2 and
    // D of the query columns from this stage's rows.
    const float* const lse2s = sRows + st * 2 * kBM;
    const float* const deltas = lse2s + kBM;
    const bool checked = !KeysAllVisible(p, cur.bk.all, at.j0, kBN);
    if (!checked && !a.logits.capped()) {
      WgmmaWait<1>();  // S^T landed; dP^T is still computed
      FenceRegs(s[0]);
#pragma unroll
      for (int t = 0; t < kNT; ++t) {
        const float2 l2 = *reinterpret_cast<const float2*>(lse2s + 8 * t + 2 * tig);
#pragma unroll
        for (int k = 0; k < 2; ++k) {
          s[0][t][2 * k] = BwdPlainProb(a.logits, l2.x, s[0][t][2 * k]);
          s[0][t][2 * k + 1] = BwdPlainProb(a.logits, l2.y, s[0][t][2 * k + 1]);
        }
      }
      WgmmaWait<0>();
      FenceRegs(dp[0]);
#pragma unroll
      for (int t = 0; t < kNT; ++t) {
        const float2 d = *reinterpret_cast<const float2*>(deltas + 8 * t + 2 * tig);
#pragma unroll
        for (int k = 0; k < 2; ++k) {
          dp[0][t][2 * k] = BwdDs(s[0][t][2 * k], dp[0][t][2 * k], d.x);
          dp[0][t][2 * k + 1] = BwdDs(s[0][t][2 * k + 1], dp[0][t][2 * k + 1], d.y);
        }
      }
    } else {
      WgmmaWait<0>();
      FenceRegs(s[0]);
      FenceRegs(dp[0]);
#pragma unroll
      for (int t = 0; t < kNT; ++t) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int q = 8 * t + 2 * tig + e;
          const float lse2 = lse2s[q], delta = deltas[q];
          if (!checked) {  // softcapped
#pragma unroll
            for (int k = 0; k < 2; ++k) {
              BwdGrads<T, false, true>(p, a.logits, lse2, delta, {}, 0, 0, s[0][t][2 * k + e],
                                       dp[0][t][2 * k + e]);
            }
          } else {
            KeyRange keys;
            int64_t mrow;
            BwdCheckedRow(p, at, at.Head(cur), cur.m * kBM + q, lse2, keys, mrow);
#pragma unroll
            for (int k = 0; k < 2; ++k) {
              BwdGrads<T, true, true>(p, a.logits, lse2, delta, keys, mrow,
                                      at.j0 + key_row + 8 * k, s[0][t][2 * k + e],
                                      dp[0][t][2 * k + e]);
            }
          }
        }
      }
    }

    // P^T and dS^T as A fragments (m64 keys x k16 queries), and dS^T into shared
    // memory: key row r, query column c at r * 128 + ((c / 8) ^ (r % 8)) * 16 + (c % 8) * 2.
    uint32_t pa[kBM / 16][4], dsa[kBM / 16][4];
#pragma unroll
    for (int kk = 0; kk < kBM / 16; ++kk) {
      PFragment<T>(pa[kk], s, 0, kk);
      PFragment<T>(dsa[kk], dp, 0, kk);
    }
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int r = key_row + 8 * k;
#pragma unroll
      for (int t = 0; t < kNT; ++t) {
        // PFragment's order: [kk][k + 2 (t % 2)] holds n8 tile t = 2 kk + t % 2, row + 8 k.
        *reinterpret_cast<uint32_t*>(ds + r * Tr::kRowBytes + ((t ^ (r & 7)) << 4) + 4 * tig) =
            dsa[t >> 1][k + 2 * (t & 1)];
      }
    }

    // dV_c += P^T dO.
    WgmmaFence();
#pragma unroll
    for (int kk = 0; kk < kBM / 16; ++kk) {
      Wgmma<T, Tr::kDv>::template RS<1>(dv[0], pa[kk],
                                        DescPlus(do_mn_desc, kk * 16 * Tr::kRowBytes), 1);
    }
    WgmmaCommit();
    FenceProxyAsyncShared();
    // dQ: at 128 its columns 64 cw .. 64 cw + 63 = dS K over all 128 keys (both
    // warpgroups' halves of dS^T); at 64 every column over this warpgroup's 64 keys.
    // A = dS^T (MN-major: queries contiguous), B = K (MN-major: columns contiguous);
    // k16 step kk is 16 keys. Then dK_c += dS^T Q.
    constexpr int kDqKeys = Tr::kDqSplitKeys ? 64 : kBN;
    const uint32_t ds_first = Tr::kDqSplitKeys ? cw * 64 * Tr::kRowBytes : 0;
    if constexpr (Tr::kDqSplitKeys) {
      NamedBarrierSync(Tr::kDsBarrier + cw, 128);  // this warpgroup's dS^T rows written
    } else {
      NamedBarrierSync(Tr::kDsBarrier, 256);  // both warpgroups' dS^T halves written
    }
    float dq[1][8][4];
    WgmmaFence();
#pragma unroll
    for (int kk = 0; kk < kDqKeys / 16; ++kk) {
      Wgmma<T, 64>::template SS<1, 1>(dq[0],
                                      DescPlus(ds_desc, ds_first + kk * 16 * Tr::kRowBytes),
                                      DescPlus(kb_desc, kk * 16 * Tr::kRowBytes), kk > 0);
    }
    WgmmaCommit();
#pragma unroll
    for (int kk = 0; kk < kBM / 16; ++kk) {
      Wgmma<T, Tr::kD>::template RS<1>(dk[0], dsa[kk],
                                       DescPlus(q_mn_desc, kk * 16 * Tr::kRowBytes), 1);
    }
    WgmmaCommit();
    WgmmaWait<1>();  // dV and dQ done; dK still runs
    FenceRegs(dq[0]);
    FenceRegs(pa);
    // dQ's part into the staging (thread t's n8 tile j at 512 j + 4 t:
    // DqAccOffset<true>), once the writer has read the previous tile's.
    auto stage_dq = [&] {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        *reinterpret_cast<float4*>(dq_stage + 512 * j) =
            make_float4(dq[0][j][0], dq[0][j][1], dq[0][j][2], dq[0][j][3]);
      }
    };
    if constexpr (Tr::kDqSplitKeys) {
      if (cw == 0) {  // the first part, for the second warpgroup to add to
        if (n > 0) NamedBarrierSync(Tr::kDqEmptyBarrier, Tr::kDqBarrierThreads);
        stage_dq();
        NamedBarrierArrive(Tr::kDqHalfBarrier, 256);
      } else {  // first part + this one (the same order every run), to the writer
        NamedBarrierSync(Tr::kDqHalfBarrier, 256);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const float4 first = *reinterpret_cast<const float4*>(dq_stage + 512 * j);
          dq[0][j][0] = first.x + dq[0][j][0];
          dq[0][j][1] = first.y + dq[0][j][1];
          dq[0][j][2] = first.z + dq[0][j][2];
          dq[0][j][3] = first.w + dq[0][j][3];
        }
        stage_dq();
        FenceProxyAsyncShared();
        NamedBarrierArrive(Tr::kDqFullBarrier, Tr::kDqBarrierThreads);
      }
    } else {
      if (n > 0) NamedBarrierSync(Tr::kDqEmptyBarrier + cw, Tr::kDqBarrierThreads);
      stage_dq();
      FenceProxyAsyncShared();
      NamedBarrierArrive(Tr::kDqFullBarrier + cw, Tr::kDqBarrierThreads);
    }
    WgmmaWait<0>();
    FenceRegs(dk[0]);
    FenceRegs(dv[0]);
    FenceRegs(dsa);
    // Q, dO, lse2 and D of this stage are read: back to the producer. Every thread
    // arrives (not one per warp after __syncwarp): its own reads of lse2 and D then
    // come before the producer's next bulk copy into them by the barrier alone, which
    // is what compute-sanitizer's racecheck follows.
    MbarArrive(&q_empty[st]);
  }

  // dK (times the scale, kept out of dS) and dV; keys past kv_capacity are not
  // written, those in [kv_len, kv_capacity) get zeros (their P and dS were 0).
  const int krow = 64 * cw + 16 * wq;  // the warp's first key row in the block
  if (a.split_group) {  // the head's shares, unscaled, every key of the block
    const int64_t key0 =
        (static_cast<int64_t>(at.b) * p.num_heads + at.hx) * a.kv_pad + at.j0 + krow;
    StorePartFrag(dk, a.dk_part + key0 * a.dk_stride, a.dk_stride, 0, lane);
    StorePartFrag(dv, a.dv_part + key0 * a.dv_stride, a.dv_stride, 0, lane);
    return;
  }
  T* dk_base = static_cast<T*>(bp.dk) + at.b * bp.dk_strides.batch + at.kvh * bp.dk_strides.head;
  T* dv_base = static_cast<T*>(bp.dv) + at.b * bp.dv_strides.batch + at.kvh * bp.dv_strides.head;
  StoreFrag<T>(dk, a.scale, dk_base, bp.dk_strides.seq, at.j0 + krow, p.kv_capacity, 0,
               p.head_size, lane);
  StoreFrag<T>(dv, 1.f, dv_base, bp.dv_strides.seq, at.j0 + krow, p.kv_capacity, 0,
               p.v_head_size, lane);
#endif  // __CUDA_ARCH_FEAT_SM90_ALL
}

}  // namespace jax_mea::cuda
