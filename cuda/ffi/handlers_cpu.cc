// XLA FFI handlers for the "cpu" platform: buffers -> params -> CPU kernel.
#include "cpu/kernels.h"
#include "ffi/bindings.h"
#include "ffi/handlers.h"

namespace jax_mea {
namespace {

ffi::Error AttentionCpuImpl(ffi::AnyBuffer q, ffi::AnyBuffer k, ffi::AnyBuffer v,
                            ffi::AnyBuffer mask, ffi::Buffer<ffi::S32> kv_lengths,
                            ffi::Buffer<ffi::S32> causal_offsets, ffi::Result<ffi::AnyBuffer> out,
                            ffi::Result<ffi::AnyBuffer> lse,
                            ffi::Result<ffi::AnyBuffer> /*workspace: empty*/,
                            AttentionAttrs attrs) {
  auto params =
      MakeAttentionParams(q, k, v, mask, kv_lengths, causal_offsets, out, attrs, &*lse);
  if (params.has_error()) return params.error();
  cpu::AttentionForward(*params);
  return ffi::Error::Success();
}

ffi::Error AttentionBackwardCpuImpl(ffi::AnyBuffer q, ffi::AnyBuffer k, ffi::AnyBuffer v,
                                    ffi::AnyBuffer mask, ffi::Buffer<ffi::S32> kv_lengths,
                                    ffi::Buffer<ffi::S32> causal_offsets, ffi::AnyBuffer out,
                                    ffi::AnyBuffer lse, ffi::AnyBuffer dout,
                                    ffi::Result<ffi::AnyBuffer> dq,
                                    ffi::Result<ffi::AnyBuffer> dk,
                                    ffi::Result<ffi::AnyBuffer> dv,
                                    ffi::Result<ffi::AnyBuffer> dmask, AttentionAttrs attrs) {
  auto params = MakeAttentionBackwardParams(q, k, v, mask, kv_lengths, causal_offsets, out, lse,
                                            dout, *dq, *dk, *dv, *dmask, attrs);
  if (params.has_error()) return params.error();
  cpu::AttentionBackward(*params);
  return ffi::Error::Success();
}

ffi::Error KvConcatCpuImpl(ffi::AnyBuffer past_k, ffi::AnyBuffer past_v, ffi::AnyBuffer new_k,
                           ffi::AnyBuffer new_v, ffi::Result<ffi::AnyBuffer> present_k,
                           ffi::Result<ffi::AnyBuffer> present_v, KvCopyAttrs attrs) {
  auto params = MakeKvConcatParams(past_k, past_v, new_k, new_v, *present_k, *present_v, attrs);
  if (params.has_error()) return params.error();
  cpu::KvCopy(*params);
  return ffi::Error::Success();
}

ffi::Error DecodeStepCpuImpl(ffi::AnyBuffer q, ffi::AnyBuffer new_k, ffi::AnyBuffer new_v,
                             ffi::AnyBuffer cache_k, ffi::AnyBuffer cache_v, ffi::AnyBuffer mask,
                             ffi::Buffer<ffi::S32> starts, ffi::Buffer<ffi::PRED> overflowed,
                             ffi::Result<ffi::AnyBuffer> out,
                             ffi::Result<ffi::AnyBuffer> out_k,
                             ffi::Result<ffi::AnyBuffer> out_v,
                             ffi::Result<ffi::Buffer<ffi::PRED>> out_overflowed,
                             ffi::Result<ffi::AnyBuffer> /*workspace: empty*/,
                             AttentionAttrs attrs) {
  auto params = MakeDecodeStepParams(q, new_k, new_v, cache_k, cache_v, mask, starts,
                                     overflowed, *out, *out_k, *out_v, *out_overflowed, attrs);
  if (params.has_error()) return params.error();
  cpu::KvCopy(params->append);
  cpu::AttentionForward(params->attention);
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jax_mea

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxMeaAttentionCpu, jax_mea::AttentionCpuImpl,
                              jax_mea::AttentionSignature(xla::ffi::Ffi::Bind()));
XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxMeaAttentionBackwardCpu, jax_mea::AttentionBackwardCpuImpl,
                              jax_mea::AttentionBackwardSignature(xla::ffi::Ffi::Bind()));
XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxMeaKvConcatCpu, jax_mea::KvConcatCpuImpl,
                              jax_mea::KvConcatSignature(xla::ffi::Ffi::Bind()));
XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxMeaDecodeStepCpu, jax_mea::DecodeStepCpuImpl,
                              jax_mea::DecodeStepSignature(xla::ffi::Ffi::Bind()));
