// XLA FFI handlers for the "CUDA" platform: buffers -> params -> CUDA kernels on
// XLA's stream. Never synchronises; every launch is checked with
// cudaGetLastError, and a configuration the kernels do not take is an ffi::Error
// that says so.
#include <cuda_runtime.h>

#include <string>

#include "ffi/bindings.h"
#include "ffi/handlers.h"
#include "jax_mea/workspace.h"
#include "kernels/attention.h"

#if __has_include("kernels/decode.h")
#include "kernels/decode.h"
#define JAX_MEA_HAVE_DECODE_KERNEL 1
#endif

namespace jax_mea::cuda {
namespace {

ffi::Error CudaError(const char* what, cudaError_t err) {
  return ffi::Error::Internal(std::string("jax-mea ") + what + " (CUDA): " +
                              cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
}

ffi::Error Unsupported(const char* what, const std::string& why) {
  return ffi::Error(ffi::ErrorCode::kUnimplemented,
                    std::string("jax-mea ") + what + " (CUDA): unsupported configuration: " + why);
}

// The launch's own status, then whatever the runtime recorded since.
cudaError_t Checked(cudaError_t err) {
  cudaError_t last = cudaGetLastError();
  return err != cudaSuccess ? err : last;
}

ffi::Error RunKvCopy(const char* what, const KvCopyParams& p, cudaStream_t stream) {
  if (std::string why = KvCopyUnsupported(p); !why.empty()) return Unsupported(what, why);
  if (cudaError_t err = Checked(LaunchKvCopy(p, stream)); err != cudaSuccess) {
    return CudaError(what, err);
  }
  return ffi::Error::Success();
}

// The decode kernel where it applies (its split partials in `workspace`, from
// XLA; never for a call that asks for the lse), else the forward kernel.
// `append`: new tokens to store into the cache
// first, inside the decode kernel where it runs (one launch per decode step),
// else by the copy kernel.
ffi::Error RunAttention(const AttentionParams& p, ffi::AnyBuffer& workspace, cudaStream_t stream,
                        const KvCopyParams* append = nullptr) {
#ifdef JAX_MEA_HAVE_DECODE_KERNEL
  const bool fuse_append =
      append == nullptr || (p.num_heads > 0 && KvCopyUnsupported(*append).empty());
  if (DecodeKernelApplies(p) && fuse_append) {
    DecodeOptions options;
    options.append = append;
    options.workspace = workspace.untyped_data();
    options.workspace_bytes = workspace.size_bytes();
    if (options.workspace_bytes == 0) options.workspace = nullptr;  // the cached one
    if (cudaError_t err = Checked(LaunchDecodeAttention(p, stream, options));
        err != cudaSuccess) {
      return CudaError("decode attention", err);
    }
    return ffi::Error::Success();
  }
#endif
  if (append != nullptr) {
    if (ffi::Error err = RunKvCopy("KV append", *append, stream); err.failure()) return err;
  }
  if (std::string why = AttentionForwardUnsupported(p); !why.empty()) {
    return Unsupported("attention", why);
  }
  if (cudaError_t err = Checked(LaunchAttentionForward(p, stream)); err != cudaSuccess) {
    return CudaError("attention", err);
  }
  return ffi::Error::Success();
}

ffi::Error AttentionCudaImpl(cudaStream_t stream, ffi::AnyBuffer q, ffi::AnyBuffer k,
                             ffi::AnyBuffer v, ffi::AnyBuffer mask,
                             ffi::Buffer<ffi::S32> kv_lengths,
                             ffi::Buffer<ffi::S32> causal_offsets,
                             ffi::Result<ffi::AnyBuffer> out, ffi::Result<ffi::AnyBuffer> lse,
                             ffi::Result<ffi::AnyBuffer> workspace, AttentionAttrs attrs) {
  auto params =
      MakeAttentionParams(q, k, v, mask, kv_lengths, causal_offsets, out, attrs, &*lse);
  if (params.has_error()) return params.error();
  return RunAttention(*params, *workspace, stream);
}

// The tensor-core backward (registered unless JAX_MEA_CUDA_BACKWARD=0); D lives in
// the XLA-allocated workspace.
ffi::Error AttentionBackwardCudaImpl(
    cudaStream_t stream, ffi::AnyBuffer q, ffi::AnyBuffer k, ffi::AnyBuffer v,
    ffi::AnyBuffer mask, ffi::Buffer<ffi::S32> kv_lengths, ffi::Buffer<ffi::S32> causal_offsets,
    ffi::AnyBuffer out, ffi::AnyBuffer lse, ffi::AnyBuffer dout, ffi::Result<ffi::AnyBuffer> dq,
    ffi::Result<ffi::AnyBuffer> dk, ffi::Result<ffi::AnyBuffer> dv,
    ffi::Result<ffi::AnyBuffer> dmask, ffi::Result<ffi::AnyBuffer> workspace,
    AttentionAttrs attrs) {
  auto params = MakeAttentionBackwardParams(q, k, v, mask, kv_lengths, causal_offsets, out, lse,
                                            dout, *dq, *dk, *dv, *dmask, attrs);
  if (params.has_error()) return params.error();
  if (std::string why = AttentionBackwardUnsupported(*params); !why.empty()) {
    return Unsupported("attention backward", why);
  }
  const AttentionParams& f = params->fwd;
  const int64_t need = AttentionBackwardWorkspaceBytes(f.batch, f.num_heads, f.num_kv_heads,
                                                       f.q_len, f.kv_capacity, f.head_size,
                                                       f.v_head_size);
  if (static_cast<int64_t>(workspace->size_bytes()) < need) {
    return ffi::Error::InvalidArgument("jax-mea attention backward (CUDA): workspace of " +
                                       std::to_string(workspace->size_bytes()) +
                                       " bytes, needs " + std::to_string(need));
  }
  if (cudaError_t err =
          Checked(LaunchAttentionBackward(*params, workspace->untyped_data(), stream));
      err != cudaSuccess) {
    return CudaError("attention backward", err);
  }
  return ffi::Error::Success();
}

ffi::Error KvConcatCudaImpl(cudaStream_t stream, ffi::AnyBuffer past_k, ffi::AnyBuffer past_v,
                            ffi::AnyBuffer new_k, ffi::AnyBuffer new_v,
                            ffi::Result<ffi::AnyBuffer> present_k,
                            ffi::Result<ffi::AnyBuffer> present_v, KvCopyAttrs attrs) {
  auto params = MakeKvConcatParams(past_k, past_v, new_k, new_v, *present_k, *present_v, attrs);
  if (params.has_error()) return params.error();
  return RunKvCopy("KV concat", *params, stream);
}

// Append, then attention (the attention reads the appended tokens): one launch where
// the decode kernel runs, else the copy kernel then the forward kernel on the stream.
ffi::Error DecodeStepCudaImpl(cudaStream_t stream, ffi::AnyBuffer q, ffi::AnyBuffer new_k,
                              ffi::AnyBuffer new_v, ffi::AnyBuffer cache_k, ffi::AnyBuffer cache_v,
                              ffi::AnyBuffer mask, ffi::Buffer<ffi::S32> starts,
                              ffi::Buffer<ffi::PRED> overflowed,
                              ffi::Result<ffi::AnyBuffer> out, ffi::Result<ffi::AnyBuffer> out_k,
                              ffi::Result<ffi::AnyBuffer> out_v,
                              ffi::Result<ffi::Buffer<ffi::PRED>> out_overflowed,
                              ffi::Result<ffi::AnyBuffer> workspace, AttentionAttrs attrs) {
  auto params = MakeDecodeStepParams(q, new_k, new_v, cache_k, cache_v, mask, starts,
                                     overflowed, *out, *out_k, *out_v, *out_overflowed, attrs);
  if (params.has_error()) return params.error();
  return RunAttention(params->attention, *workspace, stream, &params->append);
}

}  // namespace
}  // namespace jax_mea::cuda

// Command-buffer compatible: XLA may record these calls into a CUDA graph with
// the work around them (stream capture on a stream of its own; replays skip the
// handler). They allocate nothing (the workspace is XLA's), never synchronise,
// and their launch parameters depend only on their buffers' addresses and
// shapes, which XLA re-records on.
#define JAX_MEA_CUDA_HANDLER(name, impl, signature)                                       \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(                                                         \
      name, impl, signature(xla::ffi::Ffi::Bind().Ctx<xla::ffi::PlatformStream<cudaStream_t>>()), \
      {xla::ffi::Traits::kCmdBufferCompatible})

JAX_MEA_CUDA_HANDLER(JaxMeaAttentionCuda, jax_mea::cuda::AttentionCudaImpl,
                     jax_mea::AttentionSignature);
JAX_MEA_CUDA_HANDLER(JaxMeaAttentionBackwardCuda, jax_mea::cuda::AttentionBackwardCudaImpl,
                     jax_mea::AttentionBackwardWorkspaceSignature);
JAX_MEA_CUDA_HANDLER(JaxMeaKvConcatCuda, jax_mea::cuda::KvConcatCudaImpl,
                     jax_mea::KvConcatSignature);
JAX_MEA_CUDA_HANDLER(JaxMeaDecodeStepCuda, jax_mea::cuda::DecodeStepCudaImpl,
                     jax_mea::DecodeStepSignature);
