// The FFI signatures of jax-mea's custom calls, shared by the CPU and CUDA
// handlers: each platform prepends its context (e.g. the CUDA stream) and binds
// its own implementation, so the argument lists are written once.
#pragma once

#include "ffi/params_from_ffi.h"

namespace jax_mea {

// (q, k, v, mask, kv_lengths, causal_offsets) -> out, attributes AttentionAttrs.
template <typename Binding>
auto AttentionSignature(Binding binding) {
  return std::move(binding)
      .template Arg<ffi::AnyBuffer>()          // q
      .template Arg<ffi::AnyBuffer>()          // k
      .template Arg<ffi::AnyBuffer>()          // v
      .template Arg<ffi::AnyBuffer>()          // mask (placeholder when mask_kind = none)
      .template Arg<ffi::Buffer<ffi::S32>>()   // kv_lengths (placeholder unless has_kv_lengths)
      .template Arg<ffi::Buffer<ffi::S32>>()   // causal_offsets (placeholder unless has_...)
      .template Ret<ffi::AnyBuffer>()          // out
      .template Attrs<AttentionAttrs>();
}

// (past_k, past_v, new_k, new_v) -> (present_k, present_v).
template <typename Binding>
auto KvConcatSignature(Binding binding) {
  return std::move(binding)
      .template Arg<ffi::AnyBuffer>()
      .template Arg<ffi::AnyBuffer>()
      .template Arg<ffi::AnyBuffer>()
      .template Arg<ffi::AnyBuffer>()
      .template Ret<ffi::AnyBuffer>()
      .template Ret<ffi::AnyBuffer>()
      .template Attrs<KvCopyAttrs>();
}

// (cache_k, cache_v, new_k, new_v, starts) -> (cache_k, cache_v), outputs aliasing
// the first two inputs.
template <typename Binding>
auto KvAppendSignature(Binding binding) {
  return std::move(binding)
      .template Arg<ffi::AnyBuffer>()
      .template Arg<ffi::AnyBuffer>()
      .template Arg<ffi::AnyBuffer>()
      .template Arg<ffi::AnyBuffer>()
      .template Arg<ffi::Buffer<ffi::S32>>()
      .template Ret<ffi::AnyBuffer>()
      .template Ret<ffi::AnyBuffer>()
      .template Attrs<KvCopyAttrs>();
}

}  // namespace jax_mea
