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
// float16 / bfloat16: the sm_90a or the sm_80 tensor-core kernel (below); float32:
// float32 SIMT.
cudaError_t LaunchAttentionForward(const AttentionParams& p, cudaStream_t stream);

// The two float16 / bfloat16 forward kernels LaunchAttentionForward picks from
// (the native checks call each directly):
//   Sm80: FlashAttention-2 style, mma.sync (attention_fwd.cuh); every GPU from sm_80.
//   Sm90: warp-specialized TMA + wgmma (attention_fwd_sm90.cuh); compute capability
//         9.x, built when the CUDA architectures include 90 (it then defines
//         JAX_MEA_HAVE_SM90_FORWARD); taken when Sm90ForwardEnabled() and
//         Sm90ForwardUnsupported(p) is empty. cudaErrorNotSupported: no tensor map
//         for these tensors (the caller falls back to Sm80).
cudaError_t LaunchAttentionForwardSm80(const AttentionParams& p, cudaStream_t stream);
std::string Sm90ForwardUnsupported(const AttentionParams& p);
cudaError_t LaunchAttentionForwardSm90(const AttentionParams& p, cudaStream_t stream);
// The sm_90a kernel without its intra-warpgroup pipelining (one step at a time):
// sm90_check --simple, to tell a pipelining bug from a layout bug.
cudaError_t LaunchAttentionForwardSm90Simple(const AttentionParams& p, cudaStream_t stream);
// The sm_90a kernel's configuration. The defaults are what calls run; the
// environment overrides them (Sm90EnvConfig); sm90_check --bench runs the others
// beside them (LaunchAttentionForwardSm90With).
struct Sm90Config {
  enum class PingPong { kOff, kOn, kByRow };
  int h64_consumers = 3;  // consumer warpgroups at H64 (2 or 3)
  // The ping-pong between the 2 consumer warpgroups: on, off, or on the rows where
  // it measured faster (H192/Hv128). Never with the 3 of H64.
  PingPong pingpong = PingPong::kByRow;
  // GQA with q_len <= 64: several query heads of a kv group per CTA (PackingOf in
  // attention_fwd_sm90.cu). kWhereFewerWaves: where the packed grid takes fewer
  // waves of CTAs than one head per CTA (with equal waves, the unpacked grid's
  // extra CTAs run on otherwise idle SMs: B4 T32 S8192 N32/4 H64 0.118 ms against
  // 0.128 packed); kAlways: wherever the group allows it (sm90_check); kOff.
  enum class Pack { kOff, kAlways, kWhereFewerWaves };
  Pack pack_gqa = Pack::kWhereFewerWaves;
  // One CTA per SM walking the blocks (kPersistent) where every block has the same
  // work and there is more than one wave (PersistentFits, attention_fwd_sm90.cu; the
  // 128x128 row, pipelined, without the ping-pong); false: one CTA per block.
  bool persistent = true;
  // > 0: that many persistent CTAs, and persistence from that many blocks on, not the
  // SM count's (sm90_check: a few CTAs walking many blocks).
  int persistent_ctas = 0;
};
Sm90Config Sm90EnvConfig();
cudaError_t LaunchAttentionForwardSm90With(const AttentionParams& p, cudaStream_t stream,
                                           const Sm90Config& c);
// The sm_90a kernel is on unless JAX_MEA_SM90_FORWARD=0 in the environment (read
// once): an escape hatch, and the A/B of the benchmarks.
bool Sm90ForwardEnabled();

// The backward's Hopper main kernel (attention_bwd_sm90.cuh) is on unless
// JAX_MEA_SM90_BACKWARD=0 in the environment (read once).
bool Sm90BackwardEnabled();

// Empty when LaunchAttentionBackward supports `p`; otherwise why not:
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
