// Host entry points of jax-mea's CUDA attention forward, backward and KV copy kernels.
// Each reads only its parameter struct (device pointers inside), launches on
// `stream` without synchronising, and returns the launch's error code.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "jax_mea/params.h"
#include "kernels/head_dims.h"  // kMaxHeadSize

namespace jax_mea::cuda {

// Empty when LaunchAttentionForward supports `p`; otherwise why not.
std::string AttentionForwardUnsupported(const AttentionParams& p);

// out = softmax(mask(softcap(scale * q k^T))) v, exactly as cpu::AttentionForward.
// float16 / bfloat16: tensor-core FlashAttention-2 style kernel; float32: float32 SIMT.
cudaError_t LaunchAttentionForward(const AttentionParams& p, cudaStream_t stream);

// Empty when LaunchAttentionBackward supports `p`; otherwise why not. EXPERIMENTAL:
// float16 / bfloat16, the BWD rows of the head-dim table, no additive mask (its
// gradient, dmask, is not computed); Python lowers every other call in XLA.
std::string AttentionBackwardUnsupported(const AttentionBackwardParams& p);

// dq, dk, dv exactly as cpu::AttentionBackward (FlashAttention-2's backward on
// tensor cores, deterministic); `workspace` holds AttentionBackwardWorkspaceBytes
// (jax_mea/workspace.h) bytes.
cudaError_t LaunchAttentionBackward(const AttentionBackwardParams& p, void* workspace,
                                    cudaStream_t stream);

// Empty when LaunchKvCopy supports `p`; otherwise why not.
std::string KvCopyUnsupported(const KvCopyParams& p);

// KV concat / append, exactly as cpu::KvCopy.
cudaError_t LaunchKvCopy(const KvCopyParams& p, cudaStream_t stream);

}  // namespace jax_mea::cuda
