// The tensor-core split-KV decode kernel (float16 / bfloat16), see decode.h.
//
// CTA: NW warps, 16 query rows (the GQA group's heads x q_len positions, zero
// padded), one kv split. Key tiles of NW x 16 keys (16 per warp) of K and V
// stream through a kStages-deep pipeline sized to a shared-memory budget
// (BUDGET_KB: 112 gives two CTAs per SM on sm_90, 220 one CTA with a deeper
// pipeline): cp.async 16-byte copies, or with TMA whole tiles through the
// tensor maps in DecodeArgs on per-stage mbarriers. Rows past the split's end
// and columns past the head size are zero-filled, never read. Each warp keeps
// its own online-softmax state over its keys of every tile: S = Q K^T
// (ldmatrix of Q and K, m16n8k16), masking in registers, P (16-bit) as the A
// operand of P V (ldmatrix.trans of V). At the end the warps' states are
// merged in shared memory (Epilogue).
//
// Requirements (checked by the host): H, Hv multiples of 8, H <= HP, Hv <= HVP,
// k / v base pointers 16-byte aligned and their strides multiples of 8 elements.
#pragma once

#include <type_traits>

#include "kernels/decode_common.cuh"

namespace jax_mea::cuda::decode_impl {

constexpr int kMmaRows = 16;
constexpr int kKeysPerWarp = 16;

template <int HP, int HVP, int NW, int BUDGET_KB, bool TMA = false>
struct MmaConfig {
  static_assert(HP % 16 == 0 && HVP % 16 == 0, "padded head sizes are multiples of 16");
  static_assert(!TMA || (HP % 64 == 0 && HVP % 64 == 0), "TMA boxes are 64 columns wide");
  static constexpr int kNumThreads = NW * 32;
  static constexpr int kTileKeys = NW * kKeysPerWarp;
  static constexpr int kSmemBudget = BUDGET_KB * 1024;
  static constexpr int kQStride = HP + 8;  // elements; +16 bytes: conflict-free ldmatrix
  // K / V rows: padded by 16 bytes (cp.async), or boxes of 64 columns with
  // 128-byte rows, swizzled (TMA): see SmemOffset.
  static constexpr int kKStride = TMA ? 64 : HP + 8;
  static constexpr int kVStride = TMA ? 64 : HVP + 8;
  static constexpr int kQBytes = kMmaRows * kQStride * 2;
  static constexpr int kKElems = TMA ? kTileKeys * HP : kTileKeys * kKStride;
  static constexpr int kStageElems = kKElems + (TMA ? kTileKeys * HVP : kTileKeys * kVStride);
  static constexpr int kStageBytes = kStageElems * 2;
  static constexpr int kAlignPad = TMA ? 1024 : 0;  // swizzled boxes start at 1024-byte multiples
  static constexpr int kFit = (kSmemBudget - kQBytes - kAlignPad) / kStageBytes;
  static constexpr int kStages = kFit < 2 ? 2 : (kFit > 6 ? 6 : kFit);
  static constexpr int kPipeBytes = kStages * kStageBytes;
  static constexpr int kAccStride = HVP + 4;  // floats
  // The spread merge (DecodeArgs::spread_merge) in the 8-warp kernels only: with its
  // code the 4-warp ones kept a register on the stack and ran 1-1.5% slower
  // (configuration 0, B64 S1024, H200 2026-11-30), and config 0's many groups never
  // fit the GPU at once with more than one split.
  static constexpr bool kSpreadMerge = NW == 8;
  static constexpr int kEpiBytes = (NW * kMmaRows * kAccStride + 2 * NW * kMmaRows) * 4;
  static constexpr int kPipeRegion = kPipeBytes > kEpiBytes ? kPipeBytes : kEpiBytes;
  static constexpr int kSmemBytes = kQBytes + kPipeRegion + kAlignPad;
  // A cluster-merged launch's receive buffer (ClusterRecv) past the rest: peers push
  // into it while this CTA may still stream its keys. Only those launches take it
  // (configuration 0 would otherwise drop to one CTA per SM).
  static constexpr int kClusterSmemBytes = kSmemBytes + ClusterRecv::kFloats<kMmaRows>(HVP) * 4;
  static_assert(kClusterSmemBytes <= 227 * 1024, "an sm_90 CTA's shared memory");
  // CTAs per SM as shared memory allows on sm_90 (228 KB, 1 KB reserved per CTA): the
  // kernel's registers are bounded for as many (__launch_bounds__), and no further.
  // Left to itself, ptxas held the 4-warp H128 kernels to 168 registers and spilled
  // two to the stack: 2% slower at B64 S1024 (H200, session 27).
  static constexpr int kCtasPerSm = (228 * 1024) / (kSmemBytes + 1024) > 0
                                        ? (228 * 1024) / (kSmemBytes + 1024) : 1;
  // TMA: bytes one stage's copies deliver (whole boxes, zero-filled out of bounds).
  static constexpr unsigned kStageTxBytes = kStageBytes;

  // Element offset of (row, col) in a K (kIsV false) or V tile of a stage.
  template <bool kIsV>
  static __device__ __forceinline__ int SmemOffset(int row, int col) {
    if constexpr (TMA) {
      // Box col / 64 holds [kTileKeys][64]; 16-byte chunk q of row r sits at q ^ (r % 8).
      const int box = col >> 6, chunk = (col >> 3) & 7;
      return box * kTileKeys * 64 + row * 64 + ((chunk ^ (row & 7)) << 3) + (col & 7);
    } else {
      return row * (kIsV ? kVStride : kKStride) + col;
    }
  }
};

// ------------------------------------------------------------------ the kernel

template <typename T, int HP, int HVP, int NW, int BUDGET_KB, bool TMA>
__global__ void __launch_bounds__(NW * 32, (MmaConfig<HP, HVP, NW, BUDGET_KB, TMA>::kCtasPerSm))
    DecodeMmaKernel(const AttentionParams p, const __grid_constant__ DecodeArgs a) {
  using Cfg = MmaConfig<HP, HVP, NW, BUDGET_KB, TMA>;
  constexpr int kNT = Cfg::kNumThreads;
  constexpr int kTK = Cfg::kTileKeys;
  extern __shared__ __align__(16) unsigned char smem[];
  // cp.async: [Q][pipeline]; TMA: [pipeline at a 1024-byte boundary][Q].
  unsigned char* const pipe_bytes =
      TMA ? smem + ((Cfg::kAlignPad - (SmemAddr(smem) & (Cfg::kAlignPad - 1))) &
                    (Cfg::kAlignPad - 1))
          : smem + Cfg::kQBytes;
  T* const pipe = reinterpret_cast<T*>(pipe_bytes);
  T* const q_s = reinterpret_cast<T*>(TMA ? pipe_bytes + Cfg::kPipeRegion : smem);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  JAX_MEA_TRACE(a, 0);
  // TMA: the ring's barriers, armed by thread 0 at once; it alone touches them
  // until the __syncthreads that publishes Q, after the pipeline start.
  __shared__ __align__(8) uint64_t s_bars[TMA ? Cfg::kStages : 1];
  if (TMA && tid == 0) {  // the maps' first use is a few microseconds away
    PrefetchTensorMap(&a.tmap_k);
    PrefetchTensorMap(&a.tmap_v);
#pragma unroll
    for (int st = 0; st < Cfg::kStages; ++st) MbarInit(&s_bars[st], 1);
    FenceMbarInit();
  }
  CtaCoord cta = ThisCta(p, a, kMmaRows);
  // The cluster merge: arrive now, so that the epilogue's wait before its first push
  // into a peer's shared memory proves every peer has started (ClusterMerge). The
  // condition is the epilogue's (in_cluster), and no CTA of a cluster-merged launch
  // returns early: the planner never clusters balanced splits, the one plan whose
  // CtaKeys can leave a CTA without keys and change its splits.
  if (a.cluster_merge && cta.splits > 1) ClusterArriveRelaxed();
  const int kv_head = cta.kv_head, row0 = cta.row0, b = cta.b, nrows = cta.nrows;
  const int H = p.head_size, Hv = p.v_head_size;
  const int append_start = AppendStart(a, b);
  StagedAppend<T, kNT> staged;  // a step's new tokens, loaded at once where they fit
  const bool staging = StagedAppend<T, kNT>::Fits(p, a);
  if (staging) staged.Load(p, a, b, kv_head, tid);

  // Q first: its loads (16 bytes, all in flight at once) overlap with the
  // kv_length read and the pipeline start below; stored to shared memory later.
  // Rows past nrows and columns past H are zero.
  constexpr int kQChunksPerRow = HP / 8;
  constexpr int kQLoads = (kMmaRows * kQChunksPerRow + kNT - 1) / kNT;
  const bool q_vec = Aligned16(p.q) && p.q_strides.batch % 8 == 0 && p.q_strides.head % 8 == 0 &&
                     p.q_strides.seq % 8 == 0;
  uint4 q_regs[kQLoads];
#pragma unroll
  for (int i = 0; i < kQLoads; ++i) {
    const int c = tid + i * kNT;
    const int r = c / kQChunksPerRow, d = (c - r * kQChunksPerRow) * 8;
    q_regs[i] = make_uint4(0u, 0u, 0u, 0u);
    if (r < nrows && d < H) {
      const RowCoord rc = RowOf(p, kv_head, row0 + r);
      const T* q = static_cast<const T*>(p.q) + b * p.q_strides.batch +
                   rc.head * p.q_strides.head + static_cast<int64_t>(rc.pos) * p.q_strides.seq + d;
      q_regs[i] = LoadChunk8(q, q_vec);
    }
  }

  const int kv_len = p.kv_length(b);
  const int offset = p.query_offset(b);
  int kb, ke;
  if (!CtaKeys(p, a, &cta, kv_len, offset, &kb, &ke)) return;
  MarkAppendOverflow(p, a, cta, append_start);  // after the length's wait, not before

  const T* k_base = static_cast<const T*>(p.k) + b * p.k_strides.batch + kv_head * p.k_strides.head;
  const T* v_base = static_cast<const T*>(p.v) + b * p.v_strides.batch + kv_head * p.v_strides.head;
  const int64_t kss = p.k_strides.seq, vss = p.v_strides.seq;
  const int ntiles = (ke - kb + kTK - 1) / kTK;

  // 16-byte chunks of one tile of rows [kTK][D] (D = HP or HVP, valid columns
  // [0, dim)) into shared memory (layout: Cfg::SmemOffset); rows at or past ke
  // and columns past dim are zero-filled without reading.
  auto load_rows = [&](T* dst, const T* base, int64_t ss, int dim, int j0, auto is_v_tag) {
    constexpr bool kIsV = decltype(is_v_tag)::value;
    constexpr int D = kIsV ? HVP : HP;
    constexpr int C = D / 8;  // chunks per row
    const T* dummy = base + static_cast<int64_t>(kb) * ss;
    if constexpr (kNT % C == 0) {
      constexpr int kRowsPerPass = kNT / C;
      const int col = (tid % C) * 8, r0 = tid / C;
      const bool col_ok = col < dim;
      const T* src = base + static_cast<int64_t>(j0 + r0) * ss + col;
      const int64_t step = static_cast<int64_t>(kRowsPerPass) * ss;
#pragma unroll
      for (int i = 0; i < kTK / kRowsPerPass; ++i) {
        const int row = r0 + i * kRowsPerPass;
        const bool ok = col_ok && j0 + row < ke;
        CpAsync16(SmemAddr(dst + Cfg::template SmemOffset<kIsV>(row, col)), ok ? src + i * step : dummy, ok ? 16 : 0);
      }
    } else {
#pragma unroll
      for (int i = 0; i < kTK * C / kNT; ++i) {
        const int c = tid + i * kNT;
        const int row = c / C, col = (c - row * C) * 8;
        const int j = j0 + row;
        const bool ok = j < ke && col < dim;
        CpAsync16(SmemAddr(dst + Cfg::template SmemOffset<kIsV>(row, col)), ok ? base + static_cast<int64_t>(j) * ss + col : dummy,
                  ok ? 16 : 0);
      }
    }
  };
  // TMA: whole tiles by the copy engine (thread 0 arms the stage's barrier and
  // issues a box per 64 columns of K and V); a tile that ends past ke (a
  // split's last) goes through cp.async, which zero-fills instead of reading.
  auto tile_by_tma = [&](int t) { return TMA && kb + (t + 1) * kTK <= ke; };
  auto load_tile = [&](int t, int stage) {
    const int j0 = kb + t * kTK;
    T* ks = pipe + stage * Cfg::kStageElems;
    T* vs = ks + Cfg::kKElems;
    if (tile_by_tma(t)) {
      if (tid == 0) {
        MbarArriveExpectTx(&s_bars[stage], Cfg::kStageTxBytes);
#pragma unroll
        for (int c = 0; c < HP / 64; ++c) {
          TmaLoad4d(ks + c * kTK * 64, &a.tmap_k, c * 64, j0, kv_head, b, &s_bars[stage]);
        }
#pragma unroll
        for (int c = 0; c < HVP / 64; ++c) {
          TmaLoad4d(vs + c * kTK * 64, &a.tmap_v, c * 64, j0, kv_head, b, &s_bars[stage]);
        }
      }
      return;
    }
    load_rows(ks, k_base, kss, H, j0, std::false_type{});
    load_rows(vs, v_base, vss, Hv, j0, std::true_type{});
  };

  // Start the pipeline. The TMA tiles that end before the appended rows load
  // first; the append and the other tiles follow (the copy engine must see the
  // appended rows, and only a CTA that appends waits for them).
  const KeyRange appended = AppendedKeys(p, a, kb, ke, append_start);
  auto loads_early = [&](int t) {
    return tile_by_tma(t) && (appended.empty() || kb + (t + 1) * kTK <= appended.lo);
  };
#pragma unroll
  for (int s = 0; s < Cfg::kStages - 1; ++s) {
    if (s < ntiles && loads_early(s)) load_tile(s, s);
  }
  if (!appended.empty()) {  // uniform: every thread takes the barrier
    if (staging) {
      staged.Store(p, b, kv_head, appended, append_start, tid);
    } else {
      AppendNewRows<T>(p, a, b, kv_head, appended, append_start);
    }
    if constexpr (TMA) FenceProxyAsyncGlobal();
    __syncthreads();
  }
  JAX_MEA_TRACE(a, 1);
#pragma unroll
  for (int s = 0; s < Cfg::kStages - 1; ++s) {
    if (s < ntiles && !loads_early(s)) load_tile(s, s);
    CpAsyncCommit();
  }

  // Q into shared memory (the first __syncthreads below publishes it).
#pragma unroll
  for (int i = 0; i < kQLoads; ++i) {
    const int c = tid + i * kNT;
    if (c < kMmaRows * kQChunksPerRow) {
      const int r = c / kQChunksPerRow, d = (c - r * kQChunksPerRow) * 8;
      *reinterpret_cast<uint4*>(q_s + r * Cfg::kQStride + d) = q_regs[i];
    }
  }

  // This thread's two rows of the MMA fragments: g and g + 8.
  const int g = lane >> 2, tig = lane & 3;
  KeyRange rows[2];  // inside the split's keys [kb, ke)
  int64_t row_mask[2];
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    const int r = g + 8 * rr;
    rows[rr] = {0, 0};
    row_mask[rr] = 0;
    if (r < nrows) {
      const RowCoord rc = RowOf(p, kv_head, row0 + r);
      const KeyRange keys = RowKeys(p, rc, kv_len, offset);
      rows[rr] = {max(keys.lo, kb), min(keys.hi, ke)};
      row_mask[rr] = MaskRow(p, b, rc.head, rc.pos);
    }
  }
  // Keys that both rows of this thread see. Where row g + 8 is padding only row g
  // counts (the padding row's results are discarded).
  const KeyRange seen_by_both =
      g + 8 >= nrows ? rows[0]
                     : KeyRange{max(rows[0].lo, rows[1].lo), min(rows[0].hi, rows[1].hi)};
  __syncthreads();  // Q in shared memory

  constexpr bool kQInRegs = HP <= 128;
  constexpr int kQTiles = HP / 16;
  uint32_t qf[kQInRegs ? kQTiles : 1][4];
  if constexpr (kQInRegs) {
#pragma unroll
    for (int kk = 0; kk < kQTiles; ++kk) {
      LdMatrixX4(qf[kk], SmemAddr(q_s + ((lane & 7) + ((lane >> 3) & 1) * 8) * Cfg::kQStride + kk * 16 +
                        (lane >> 4) * 8));
    }
  }

  float m[2] = {-INFINITY, -INFINITY};
  float l[2] = {0.f, 0.f};
  float acc[HVP / 8][4];
#pragma unroll
  for (int nd = 0; nd < HVP / 8; ++nd) {
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[nd][e] = 0.f;
  }
  const Logits logits = MakeLogits(p, kLog2e, /*q_scaled=*/false);

  for (int t = 0; t < ntiles; ++t) {
    CpAsyncWait<Cfg::kStages - 2>();
    __syncthreads();
    {
      const int tn = t + Cfg::kStages - 1;
      if (tn < ntiles) load_tile(tn, tn % Cfg::kStages);
      CpAsyncCommit();
    }
    // The n-th TMA tile of a stage completes its barrier's phase n (a split's
    // cp.async tile is its last, so it never shifts the count).
    if (tile_by_tma(t)) MbarWait(&s_bars[t % Cfg::kStages], (t / Cfg::kStages) & 1);
    if (t == 0) JAX_MEA_TRACE(a, 2);
    const int jw = kb + t * kTK + warp * kKeysPerWarp;  // this warp's first key
    if (jw < ke) {
      const T* ks = pipe + (t % Cfg::kStages) * Cfg::kStageElems;
      const T* vs = ks + Cfg::kKElems;
      const int row_k = warp * kKeysPerWarp + (lane & 7) + (lane >> 4) * 8;        // ldmatrix rows
      const int row_v = warp * kKeysPerWarp + (lane & 7) + ((lane >> 3) & 1) * 8;
      // S = Q K^T for 16 rows x 16 keys: s[nt][0..1] row g, s[nt][2..3] row g + 8,
      // keys nt * 8 + 2 * tig + {0, 1}. Two accumulator sets halve the MMA chain.
      float s[2][4], s2[2][4];
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) s[nt][e] = s2[nt][e] = 0.f;
      }
#pragma unroll
      for (int kk = 0; kk < kQTiles; ++kk) {
        uint32_t kf[4];
        LdMatrixX4(kf, SmemAddr(ks + Cfg::template SmemOffset<false>(
                                         row_k, kk * 16 + ((lane >> 3) & 1) * 8)));
        float (&sa)[2][4] = (kk & 1) ? s2 : s;
        if constexpr (kQInRegs) {
          Mma16816<T>(sa[0], qf[kk], kf[0], kf[1]);
          Mma16816<T>(sa[1], qf[kk], kf[2], kf[3]);
        } else {
          uint32_t qa[4];
          LdMatrixX4(qa, SmemAddr(q_s + ((lane & 7) + ((lane >> 3) & 1) * 8) * Cfg::kQStride + kk * 16 +
                        (lane >> 4) * 8));
          Mma16816<T>(sa[0], qa, kf[0], kf[1]);
          Mma16816<T>(sa[1], qa, kf[2], kf[3]);
        }
      }
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) s[nt][e] += s2[nt][e];
      }
      // Scale, softcap, range and mask (the score layer); log2 domain. Keys both
      // rows see, without softcap or mask: one multiply.
      float mx[2] = {-INFINITY, -INFINITY};
      if (!logits.capped() && KeysAllVisible(p, seen_by_both, jw, kKeysPerWarp)) {
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            s[nt][e] = logits.Plain(s[nt][e]);
            mx[e >> 1] = fmaxf(mx[e >> 1], s[nt][e]);
          }
        }
      } else {
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int rr = e >> 1;
            const int j = jw + nt * 8 + 2 * tig + (e & 1);
            s[nt][e] = KeyLogit<T>(p, logits, s[nt][e], rows[rr], row_mask[rr], j);
            mx[rr] = fmaxf(mx[rr], s[nt][e]);
          }
        }
      }
      float m_use[2], alpha[2];
#pragma unroll
      for (int rr = 0; rr < 2; ++rr) {
        mx[rr] = fmaxf(mx[rr], __shfl_xor_sync(0xffffffffu, mx[rr], 1));
        mx[rr] = fmaxf(mx[rr], __shfl_xor_sync(0xffffffffu, mx[rr], 2));
        const float m_new = fmaxf(m[rr], mx[rr]);
        m_use[rr] = SoftmaxShift(m_new);
        alpha[rr] = exp2f(m[rr] - m_use[rr]);
        m[rr] = m_new;
        l[rr] *= alpha[rr];
      }
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int rr = e >> 1;
          s[nt][e] = ProbAsWeighted<T>(exp2f(s[nt][e] - m_use[rr]));
          l[rr] += s[nt][e];
        }
      }
#pragma unroll
      for (int nd = 0; nd < HVP / 8; ++nd) {
        acc[nd][0] *= alpha[0];
        acc[nd][1] *= alpha[0];
        acc[nd][2] *= alpha[1];
        acc[nd][3] *= alpha[1];
      }
      // O += P V: P as the A operand (rows x 16 keys).
      uint32_t pa[4];
      pa[0] = Pack2<T>(s[0][0], s[0][1]);
      pa[1] = Pack2<T>(s[0][2], s[0][3]);
      pa[2] = Pack2<T>(s[1][0], s[1][1]);
      pa[3] = Pack2<T>(s[1][2], s[1][3]);
#pragma unroll
      for (int nd2 = 0; nd2 < HVP / 16; ++nd2) {
        uint32_t vf[4];
        LdMatrixX4Trans(vf, SmemAddr(vs + Cfg::template SmemOffset<true>(
                                              row_v, nd2 * 16 + (lane >> 4) * 8)));
        Mma16816<T>(acc[2 * nd2], pa, vf[0], vf[1]);
        Mma16816<T>(acc[2 * nd2 + 1], pa, vf[2], vf[3]);
      }
    }
  }
  CpAsyncWait<0>();
  __syncthreads();  // the pipeline's shared memory is free for the epilogue
  JAX_MEA_TRACE(a, 3);
  JAX_MEA_TRACE(a, 5, SmId());
  JAX_MEA_TRACE(a, 6, ntiles);

#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    l[rr] += __shfl_xor_sync(0xffffffffu, l[rr], 1);
    l[rr] += __shfl_xor_sync(0xffffffffu, l[rr], 2);
  }
  float* ep_acc = reinterpret_cast<float*>(pipe);
  float* ep_m = ep_acc + NW * kMmaRows * Cfg::kAccStride;
  float* ep_l = ep_m + NW * kMmaRows;
  // Only the CTA's nrows real rows (a decode step's GQA group of 4 fills 4 of the 16):
  // the epilogue reads no other.
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    const int r = g + 8 * rr;
    if (r >= nrows) continue;
    float* dst = ep_acc + (warp * kMmaRows + r) * Cfg::kAccStride + 2 * tig;
#pragma unroll
    for (int nd = 0; nd < HVP / 8; ++nd) {
      *reinterpret_cast<float2*>(dst + nd * 8) = make_float2(acc[nd][2 * rr], acc[nd][2 * rr + 1]);
    }
    if (tig == 0) {
      ep_m[warp * kMmaRows + r] = m[rr];
      ep_l[warp * kMmaRows + r] = l[rr];
    }
  }
  __syncthreads();
  JAX_MEA_TRACE(a, 7);
  static_assert(Cfg::kPipeRegion / 4 >= kMergeScratchFloats<kMmaRows, HVP>,
                "the pipeline's shared memory holds MergeGroup's scratch");
  // The cluster merge's receive buffer, past everything else (kClusterSmemBytes).
  float* const cluster_recv =
      reinterpret_cast<float*>(pipe_bytes + Cfg::kPipeRegion + (TMA ? Cfg::kQBytes : 0));
  Epilogue<T, kMmaRows, NW, Cfg::kSpreadMerge>(p, a, ep_m, ep_l, ep_acc, Cfg::kAccStride, cta, ep_acc,
                            Cfg::kPipeRegion / 4, cluster_recv);
  JAX_MEA_TRACE(a, 4);
}

}  // namespace jax_mea::cuda::decode_impl
