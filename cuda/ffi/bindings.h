// The FFI signatures of jax-mea's custom calls, shared by the CPU and CUDA
// handlers: each platform prepends its context (e.g. the CUDA stream) and binds
// its own implementation, so the argument lists are written once.
#pragma once

#include "ffi/params_from_ffi.h"

namespace jax_mea {

// Attention and the decode step return a workspace after their outputs: device
// memory for the decode kernel's split partials, handed out by XLA (never
// allocated in a handler) so that XLA can record the call into a command buffer
// (CUDA graph). Its size is the bound of jax_mea/workspace.h (read by
// jax_mea/primitives.py through the extension), 0 on the CPU.

// N >= 1 arguments of type B (a binding cannot be moved, only extended).
template <int N, typename B, typename Binding>
auto Args(Binding&& binding) {
  if constexpr (N == 1) {
    return std::move(binding).template Arg<B>();
  } else {
    return Args<N - 1, B>(std::move(binding).template Arg<B>());
  }
}

// (q, k, v, mask, kv_lengths, causal_offsets) -> (out, lse, workspace), attributes
// AttentionAttrs. The mask is a placeholder when mask_kind = none; lse (float32
// [B, Nq, Sq], the row log-sum-exp for the backward) is empty when not asked for.
template <typename Binding>
auto AttentionSignature(Binding binding) {
  return Args<4, ffi::AnyBuffer>(std::move(binding))  // q, k, v, mask
      .template Arg<ffi::Buffer<ffi::S32>>()   // kv_lengths (placeholder unless has_kv_lengths)
      .template Arg<ffi::Buffer<ffi::S32>>()   // causal_offsets (placeholder unless has_...)
      .template Ret<ffi::AnyBuffer>()          // out
      .template Ret<ffi::AnyBuffer>()          // lse (f32; empty: not asked for)
      .template Ret<ffi::AnyBuffer>()          // workspace (u8)
      .template Attrs<AttentionAttrs>();
}

// The backward: (q, k, v, mask, kv_lengths, causal_offsets, out, lse, dout) ->
// (dq, dk, dv, dmask), attributes AttentionAttrs (the forward call's).
template <typename Binding>
auto AttentionBackwardOperands(Binding&& binding) {  // (a Binding cannot be moved)
  return Args<4, ffi::AnyBuffer>(std::move(binding))  // q, k, v, mask
      .template Arg<ffi::Buffer<ffi::S32>>()         // kv_lengths
      .template Arg<ffi::Buffer<ffi::S32>>()         // causal_offsets
      .template Arg<ffi::AnyBuffer>()                // out
      .template Arg<ffi::AnyBuffer>()                // lse
      .template Arg<ffi::AnyBuffer>()                // dout
      .template Ret<ffi::AnyBuffer>()                // dq
      .template Ret<ffi::AnyBuffer>()                // dk
      .template Ret<ffi::AnyBuffer>()                // dv
      .template Ret<ffi::AnyBuffer>();               // dmask (empty without an additive mask)
}
template <typename Binding>
auto AttentionBackwardSignature(Binding binding) {
  return AttentionBackwardOperands(std::move(binding)).template Attrs<AttentionAttrs>();
}
// CUDA's (the backward kernel): a workspace after dmask,
// u8 of AttentionBackwardWorkspaceBytes (jax_mea/workspace.h), from XLA.
template <typename Binding>
auto AttentionBackwardWorkspaceSignature(Binding binding) {
  return AttentionBackwardOperands(std::move(binding))
      .template Ret<ffi::AnyBuffer>()  // workspace (u8)
      .template Attrs<AttentionAttrs>();
}

// (past_k, past_v, new_k, new_v) -> (present_k, present_v).
template <typename Binding>
auto KvConcatSignature(Binding binding) {
  return Args<4, ffi::AnyBuffer>(std::move(binding))
      .template Ret<ffi::AnyBuffer>()
      .template Ret<ffi::AnyBuffer>()
      .template Attrs<KvCopyAttrs>();
}

// A decode step in one call: (q, new_k, new_v, cache_k, cache_v, mask,
// starts, overflowed) -> (out, cache_k, cache_v, overflowed, workspace). The new
// tokens (in q_layout) go into the BNSH caches at starts[b] + t (outputs aliasing
// the cache inputs), then attention over the first starts[b] + T keys (clamped to
// the capacity) with the starts as causal offsets; the cache's overflow flags
// (aliased too) are set where starts[b] + T > capacity. Attributes AttentionAttrs.
// One custom call instead of an append and an attention: XLA's cost per custom
// call is paid once per step. With q_layout kPackedQkv, q holds the new keys and
// values too (PackedQkvViews) and new_k / new_v are placeholders.
template <typename Binding>
auto DecodeStepSignature(Binding binding) {
  // q, new_k, new_v, cache_k, cache_v, mask (placeholder: mask_kind = none)
  return Args<6, ffi::AnyBuffer>(std::move(binding))
      .template Arg<ffi::Buffer<ffi::S32>>()   // starts (= causal offsets; lengths - T)
      .template Arg<ffi::Buffer<ffi::PRED>>()  // overflowed [B]
      .template Ret<ffi::AnyBuffer>()          // out
      .template Ret<ffi::AnyBuffer>()          // cache_k, aliasing the input
      .template Ret<ffi::AnyBuffer>()          // cache_v, aliasing the input
      .template Ret<ffi::Buffer<ffi::PRED>>()  // overflowed, aliasing the input
      .template Ret<ffi::AnyBuffer>()          // workspace (u8)
      .template Attrs<AttentionAttrs>();
}

// The two parameter sets of a decode step (DecodeStepSignature).
struct DecodeStepParams {
  KvCopyParams append;
  AttentionParams attention;
};

// A packed step's q (Layout::kPackedQkv, [B, T, Nq + 2 Nkv, H]) as three BSNH
// buffers of their own: the query heads [0, Nq), the new keys [Nq, Nq + Nkv) and
// the new values after them, all with the packed buffer's strides (`strides`,
// which MakeDecodeStepParams puts in the params the views built). The kernels read
// through strides already, so a model's fused QKV projection reaches them with no
// slice copies. Not copyable: each view's dims point into `dims`.
struct PackedQkvViews {
  int64_t dims[3][4];
  XLA_FFI_Buffer bufs[3];
  TensorStrides strides;

  PackedQkvViews() = default;
  PackedQkvViews(const PackedQkvViews&) = delete;
  PackedQkvViews& operator=(const PackedQkvViews&) = delete;
  ffi::AnyBuffer view(int i) const { return ffi::AnyBuffer(&bufs[i]); }
};

// Nkv and the value head size (which must equal H) come from the caches.
inline ffi::Error SplitPackedQkv(ffi::AnyBuffer packed, ffi::AnyBuffer cache_k,
                                 ffi::AnyBuffer cache_v, PackedQkvViews* views) {
  auto pt = DescribeTensor("packed qkv", packed.dimensions(), static_cast<int64_t>(Layout::kBSNH));
  if (pt.has_error()) return pt.error();
  auto kd = cache_k.dimensions(), vd = cache_v.dimensions();
  const int64_t nkv = kd.size() == 4 ? kd[1] : 0, nq = pt->heads - 2 * nkv;
  if (nkv <= 0 || nq <= 0 || vd.size() != 4 || kd[3] != pt->dim || vd[3] != pt->dim) {
    return Mismatch("packed qkv " + DimsToString(packed.dimensions()) +
                    " must be [B, T, Nq + 2 Nkv, H] with the caches' Nkv and H = Hv; caches " +
                    DimsToString(kd) + " / " + DimsToString(vd));
  }
  const int64_t heads[3] = {nq, nkv, nkv}, first_head[3] = {0, nq, nq + nkv};
  char* base = static_cast<char*>(packed.untyped_data());
  const size_t elem = ffi::ByteWidth(packed.element_type());
  for (int i = 0; i < 3; ++i) {
    int64_t* d = views->dims[i];
    d[0] = pt->batch, d[1] = pt->seq, d[2] = heads[i], d[3] = pt->dim;
    XLA_FFI_Buffer& view = views->bufs[i];
    view = XLA_FFI_Buffer{};
    view.struct_size = XLA_FFI_Buffer_STRUCT_SIZE;
    view.dtype = static_cast<XLA_FFI_DataType>(packed.element_type());
    view.data = base + first_head[i] * pt->dim * elem;
    view.rank = 4;
    view.dims = d;
  }
  views->strides = pt->strides;
  return ffi::Error::Success();
}

inline ffi::ErrorOr<DecodeStepParams> MakeDecodeStepParams(
    ffi::AnyBuffer q, ffi::AnyBuffer new_k, ffi::AnyBuffer new_v, ffi::AnyBuffer cache_k,
    ffi::AnyBuffer cache_v, ffi::AnyBuffer mask, ffi::Buffer<ffi::S32> starts,
    ffi::Buffer<ffi::PRED> overflowed, ffi::AnyBuffer& out, ffi::AnyBuffer& out_k,
    ffi::AnyBuffer& out_v, ffi::Buffer<ffi::PRED>& out_overflowed, const AttentionAttrs& attrs) {
  const bool packed = attrs.q_layout == static_cast<int64_t>(Layout::kPackedQkv);
  PackedQkvViews views;
  AttentionAttrs view_attrs = attrs;
  if (packed) {
    if (ffi::Error e = SplitPackedQkv(q, cache_k, cache_v, &views); e.failure()) {
      return ffi::Unexpected(std::move(e));
    }
    q = views.view(0), new_k = views.view(1), new_v = views.view(2);
    view_attrs.q_layout = static_cast<int64_t>(Layout::kBSNH);
  }
  auto append = MakeKvAppendParams(cache_k, cache_v, new_k, new_v, starts, out_k, out_v,
                                   KvCopyAttrs{view_attrs.q_layout});
  if (append.has_error()) return ffi::Unexpected(append.error());
  if (out_overflowed.untyped_data() != overflowed.untyped_data() ||
      overflowed.dimensions().size() != 1 || overflowed.dimensions()[0] != append->batch) {
    return ffi::Unexpected(Mismatch("overflowed " + DimsToString(overflowed.dimensions()) +
                                    " must be [B] with the caches' B = " +
                                    std::to_string(append->batch) + ", aliased in and out"));
  }
  append->overflowed = static_cast<bool*>(out_overflowed.untyped_data());
  // Lengths starts[b] + T: the kernels add the bias where they read the lengths.
  auto attention = MakeAttentionParams(q, out_k, out_v, mask, starts, starts, out, view_attrs);
  if (attention.has_error()) return ffi::Unexpected(attention.error());
  attention->kv_length_bias = attention->q_len;
  if (packed) {
    attention->q_strides = append->new_k_strides = append->new_v_strides = views.strides;
  }
  return DecodeStepParams{*append, *attention};
}

}  // namespace jax_mea
