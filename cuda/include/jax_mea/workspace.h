// The decode kernel's workspace: its layout for a plan, and the bound XLA is
// asked for. Host-only plain C++ (no CUDA types), so that the CPU build compiles
// it too: jax_mea/primitives.py reads the bound through the extension
// (module.cc), decode.cu lays a plan out with it, tools/decode_check.cu sizes the
// XLA path's workspace with it. One formula, one owner.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace jax_mea {

// The most kv splits a decode plan uses (decode_common.cuh's kMaxSplits must
// not exceed it: the bound below is sized for it).
inline constexpr int kDecodeMaxSplits = 64;
// The decode kernel takes a call only where a kv head's query rows
// (group size x q_len) are at most this many; others need no workspace.
inline constexpr int64_t kDecodeMaxRowsPerKvHead = 16;
// The bound is capped: a workspace short of the plan only means fewer splits,
// and plans that split much have few rows (fewer (batch, kv head) groups than
// the GPU has CTA slots).
inline constexpr int64_t kDecodeWorkspaceCap = int64_t{32} << 20;
// ws_o starts at this alignment after ws_ml.
inline constexpr int64_t kDecodeWorkspaceAlign = 256;

// Bytes of a plan's workspace for `splits` splits of `num_rows` query rows:
// ws_ml (per split and row: max, sum) at 0, then ws_o (per split and row:
// v_head_size floats) at *o_offset. 0 when the plan runs unsplit.
inline int64_t DecodeWorkspaceLayout(int splits, int64_t num_rows, int64_t v_head_size,
                                     int64_t* o_offset = nullptr) {
  if (splits <= 1) return 0;
  const int64_t ml = int64_t{splits} * num_rows * 2 * static_cast<int64_t>(sizeof(float));
  const int64_t o_at = (ml + kDecodeWorkspaceAlign - 1) / kDecodeWorkspaceAlign *
                       kDecodeWorkspaceAlign;
  const int64_t o = int64_t{splits} * num_rows * v_head_size * static_cast<int64_t>(sizeof(float));
  if (o_offset) *o_offset = o_at;
  return o_at + o;
}

// The workspace an attention call asks XLA for: an upper bound from shapes
// alone (no device query), so that it is known at lowering time, for export
// and on a machine without a GPU. 0 where the decode kernel never takes the
// call. A dimension given as < 0 is unknown (a symbolic batch in jax.export):
// then the cap, unless the known ones already rule the decode kernel out.
inline int64_t DecodeWorkspaceBound(int64_t batch, int64_t num_heads, int64_t num_kv_heads,
                                    int64_t q_len, int64_t v_head_size) {
  const bool known_rows = num_heads >= 0 && num_kv_heads > 0 && q_len >= 0;
  if (known_rows && num_heads / num_kv_heads * q_len > kDecodeMaxRowsPerKvHead) return 0;
  if (!known_rows || batch < 0 || v_head_size < 0) return kDecodeWorkspaceCap;
  const int64_t rows = batch * num_heads * q_len;
  return std::min(DecodeWorkspaceLayout(kDecodeMaxSplits, rows, v_head_size),
                  kDecodeWorkspaceCap);
}

// The CUDA backward kernel's workspace (kernels/attention_bwd.cuh), per (batch, query
// head) with q_len padded to whole kBwdBlockM-row query blocks (q_pad rows):
//   delta   float [B, Nq, q_pad]: D = rowsum(dO * O) (0 on padded rows);
//   lse2    float [B, Nq, q_pad]: lse * log2(e), +inf where lse = -inf or padded;
//   sem     int32 [B, Nq, q_pad / kBwdBlockM]: per query block, how many key blocks
//           have added their dQ part (the adds' order, so dQ is deterministic);
//   dq_acc  float [B, Nq, q_pad, dq_stride]: dQ accumulated over key blocks
//           (dq_stride = max(head_size, v_head_size) rounded up to 64: the head dim of
//           the kernel's row, 64x64 or 128x128, whose every column it adds at
//           constant offsets);
// and with GQA (num_heads > num_kv_heads), per query head's share of dK and dV, which
// a last launch sums over the group in head order (kv_len padded to whole
// kBwdBlockN-key blocks, kv_pad keys):
//   dk_part float [B, Nq, kv_pad, dk_stride] (head_size rounded up to 8), unscaled;
//   dv_part float [B, Nq, kv_pad, dv_stride] (v_head_size rounded up to 8).
// Sections start at kBwdWorkspaceAlign-byte offsets; all of it is (re)written by the
// backward's launches before it is read, so XLA's workspace needs no initialisation.
inline constexpr int64_t kBwdBlockM = 64;
inline constexpr int64_t kBwdBlockN = 128;
inline constexpr int64_t kBwdWorkspaceAlign = 256;

struct BwdWorkspaceLayout {
  int64_t q_pad, num_m_blocks, dq_stride;
  int64_t kv_pad, dk_stride, dv_stride;           // 0 without GQA
  int64_t delta, lse2, sem, dq_acc, dk_part, dv_part, bytes;  // byte offsets, total
  bool has_parts() const { return kv_pad > 0; }
};

inline BwdWorkspaceLayout AttentionBackwardWorkspace(int64_t batch, int64_t num_heads,
                                                     int64_t num_kv_heads, int64_t q_len,
                                                     int64_t kv_len, int64_t head_size,
                                                     int64_t v_head_size) {
  auto align = [](int64_t x) {
    return (x + kBwdWorkspaceAlign - 1) / kBwdWorkspaceAlign * kBwdWorkspaceAlign;
  };
  auto round8 = [](int64_t x) { return (x + 7) / 8 * 8; };
  auto round64 = [](int64_t x) { return (x + 63) / 64 * 64; };
  BwdWorkspaceLayout w;
  w.num_m_blocks = (q_len + kBwdBlockM - 1) / kBwdBlockM;
  w.q_pad = w.num_m_blocks * kBwdBlockM;
  w.dq_stride = round64(std::max({head_size, v_head_size, int64_t{1}}));
  const bool gqa = num_heads > num_kv_heads;
  w.kv_pad = gqa ? (kv_len + kBwdBlockN - 1) / kBwdBlockN * kBwdBlockN : 0;
  w.dk_stride = gqa ? round8(head_size) : 0;
  w.dv_stride = gqa ? round8(v_head_size) : 0;
  const int64_t rows = batch * num_heads * w.q_pad;
  const int64_t keys = batch * num_heads * w.kv_pad;
  const int64_t f = static_cast<int64_t>(sizeof(float));
  w.delta = 0;
  w.lse2 = align(w.delta + rows * f);
  w.sem = align(w.lse2 + rows * f);
  w.dq_acc = align(w.sem + batch * num_heads * w.num_m_blocks * 4);
  w.dk_part = align(w.dq_acc + rows * w.dq_stride * f);
  w.dv_part = align(w.dk_part + keys * w.dk_stride * f);
  w.bytes = w.dv_part + keys * w.dv_stride * f;
  return w;
}

inline int64_t AttentionBackwardWorkspaceBytes(int64_t batch, int64_t num_heads,
                                               int64_t num_kv_heads, int64_t q_len,
                                               int64_t kv_len, int64_t head_size,
                                               int64_t v_head_size) {
  return AttentionBackwardWorkspace(batch, num_heads, num_kv_heads, q_len, kv_len, head_size,
                                    v_head_size)
      .bytes;
}

}  // namespace jax_mea
