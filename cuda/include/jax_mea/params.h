// The one parameter struct of jax-mea.
//
// Every attention call, on the CPU and on CUDA, is described by AttentionParams;
// every KV-cache copy (concat into `present`, append into a fixed cache) by
// KvCopyParams. The FFI layer (cuda/ffi/params_from_ffi.h) is the only place that
// fills them; kernels only read them, and turn them into scores through
// jax_mea/score.h (visible keys, scale, softcap, mask). Plain C++ so nvcc and the
// host compiler both see the same layout.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define MEA_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define MEA_HOST_DEVICE inline
#endif

namespace jax_mea {

// A window size that bounds nothing (AttentionParams::left_window / right_window).
// Python passes it for jax.nn's None and ONNX's -1; every other value is read
// literally (jax.nn: right_window = -1 excludes the diagonal).
constexpr int kUnboundedWindow = 2147483647;

// Element type of q, k, v, out (and of an additive mask).
enum class DType : int32_t { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

// Bytes per element of a DType.
MEA_HOST_DEVICE int DTypeBytes(DType t) { return t == DType::kFloat32 ? 4 : 2; }

// How attn_mask is read. kBool: nonzero byte = attend. kAdditive: a value of
// the input dtype added to the (softcapped) score.
enum class MaskKind : int32_t { kNone = 0, kBool = 1, kAdditive = 2 };

// Strides are in elements. The last (head) dimension is always contiguous, so a
// 4D tensor in BSNH ([B, S, N, H], also what a 3D [B, S, N*H] input is) and one
// in BNSH ([B, N, S, H]) differ only in these three numbers: no transposes.
struct TensorStrides {
  int64_t batch = 0;
  int64_t head = 0;
  int64_t seq = 0;
};

struct AttentionParams {
  DType dtype = DType::kFloat32;

  const void* q = nullptr;  // [batch, num_heads, q_len, head_size] (logical)
  const void* k = nullptr;  // [batch, num_kv_heads, kv_capacity, head_size]
  const void* v = nullptr;  // [batch, num_kv_heads, kv_capacity, v_head_size]
  void* out = nullptr;      // [batch, num_heads, q_len, v_head_size]
  TensorStrides q_strides, k_strides, v_strides, out_strides;

  int batch = 0;
  int num_heads = 0;     // query heads
  int num_kv_heads = 0;  // num_heads % num_kv_heads == 0 (GQA / MQA)
  int q_len = 0;
  int kv_capacity = 0;   // length of k/v's sequence axis
  int head_size = 0;     // H of q and k
  int v_head_size = 0;   // Hv of v and out

  // Keys at positions >= kv_lengths[b] + kv_length_bias are masked and never
  // read (clamped to [0, kv_capacity]). Null: every batch uses kv_capacity. A
  // decode step passes its starts and T as the bias: it then needs no separate
  // lengths array (XLA would copy the cache's lengths for it every layer).
  const int32_t* kv_lengths = nullptr;
  int kv_length_bias = 0;

  // Query row i of batch b sits at absolute position i + offset(b), where
  // offset(b) = causal_offsets[b] if non-null, else causal_offset. Causal and
  // window masks are relative to that position (ONNX: bottom-right causal).
  const int32_t* causal_offsets = nullptr;
  int causal_offset = 0;
  bool is_causal = false;
  // Key j is visible to query position p iff p - left_window <= j <= p + right_window,
  // sizes read literally (negative ones too); kUnboundedWindow: that side unbounded
  // while positions stay in [kv_len - 2^31, 2^31 - 1] (it is read as a number:
  // primitives.bind_attention refuses a static offset that leaves the range).
  int left_window = kUnboundedWindow;
  int right_window = kUnboundedWindow;

  float scale = 1.0f;
  float softcap = 0.0f;  // > 0: score = softcap * tanh(score / softcap), before the mask;
                         // never negative (the FFI layer rejects it)

  // attn_mask as a broadcast view [batch|1, num_heads|1, q_len|1, mask_len]:
  // a broadcast axis has stride 0. Keys at j >= mask_len are masked (ONNX pads
  // a short last dimension with False / -inf).
  MaskKind mask_kind = MaskKind::kNone;
  const void* mask = nullptr;
  int64_t mask_batch_stride = 0;
  int64_t mask_head_stride = 0;
  int64_t mask_q_stride = 0;
  int mask_len = 0;

  // Optional (null: not asked for): the row log-sum-exp of the masked logits,
  // float32 [batch, num_heads, q_len] contiguous, natural log; -inf for a row
  // that sees no key. The backward recomputes the probabilities from it.
  float* lse = nullptr;

  MEA_HOST_DEVICE int group_size() const { return num_heads / num_kv_heads; }
  MEA_HOST_DEVICE int kv_length(int b) const {
    int len = kv_lengths ? kv_lengths[b] + kv_length_bias : kv_capacity;
    return len < 0 ? 0 : (len > kv_capacity ? kv_capacity : len);
  }
  MEA_HOST_DEVICE int query_offset(int b) const {
    return causal_offsets ? causal_offsets[b] : causal_offset;
  }
};

// The backward of one attention call (FlashAttention-2's: probabilities
// recomputed from the forward's log-sum-exp). `fwd` describes the forward call
// as AttentionParams does (q, k, v and its out, read here; fwd.lse unused).
struct AttentionBackwardParams {
  AttentionParams fwd;
  const float* lse = nullptr;  // the forward's, [batch, num_heads, q_len]
  const void* dout = nullptr;  // cotangent of out, in out's layout
  TensorStrides dout_strides;
  void* dq = nullptr;  // in q's layout and dtype
  void* dk = nullptr;  // in k's, summed over each GQA group
  void* dv = nullptr;  // in v's
  TensorStrides dq_strides, dk_strides, dv_strides;
  // With an additive mask: the gradient of each logit's additive value, float32,
  // dense [batch, num_heads, q_len, mask_len] (the caller sums it over the mask's
  // broadcast axes); null otherwise.
  float* dmask = nullptr;
};

// A decode step's overflow flag of batch row b (flags: bool [batch], null: none):
// set where its num_new > 0 tokens appended at `start` run past a cache of
// `capacity` positions, never cleared (KvCopyParams::overflowed). A step of no
// tokens leaves it (the CUDA path launches nothing for one).
MEA_HOST_DEVICE void MarkOverflow(bool* flags, int b, int start, int num_new, int capacity) {
  if (flags != nullptr && num_new > 0 && static_cast<int64_t>(start) + num_new > capacity) {
    flags[b] = true;
  }
}

// Copies `num_new` tokens of new K and V into a BNSH destination cache at
// per-batch positions: KV concat (present = concat(past, new), past copied
// too) and KV append (the destination aliases the cache, past stays put).
struct KvCopyParams {
  DType dtype = DType::kFloat32;
  int batch = 0;
  int num_kv_heads = 0;
  int head_size = 0;
  int v_head_size = 0;

  int num_new = 0;        // tokens of new K/V per batch
  int dst_capacity = 0;   // sequence length of the destination
  // New token t of batch b lands at dst position start(b) + t; positions
  // >= dst_capacity are dropped (never written).
  const int32_t* dst_starts = nullptr;  // null: start = past_len
  int past_len = 0;

  // Past to copy in front (concat); null for append.
  const void* past_k = nullptr;
  const void* past_v = nullptr;
  TensorStrides past_k_strides, past_v_strides;

  const void* new_k = nullptr;
  const void* new_v = nullptr;
  TensorStrides new_k_strides, new_v_strides;

  void* dst_k = nullptr;
  void* dst_v = nullptr;
  TensorStrides dst_k_strides, dst_v_strides;

  // A decode step's overflow flags, bool [batch] (null: none): the cache's own
  // buffer, aliased in and out, set by one thread per batch row (MarkOverflow).
  // Nothing else reads them, so the write needs no ordering against the reads of
  // the starts, and a model's step needs no XLA kernel for them (at batch 1, XLA
  // ran that update as a second small kernel a layer beside the lengths' min).
  bool* overflowed = nullptr;

  MEA_HOST_DEVICE int dst_start(int b) const { return dst_starts ? dst_starts[b] : past_len; }
};

}  // namespace jax_mea
