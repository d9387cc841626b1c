// Split-KV decode attention: few query rows per kv head (q_len x GQA group
// small), read at memory bandwidth.
//
// One CTA handles (batch b, kv head, block of query rows, kv split); the grid
// is (kv heads x row blocks, batch, splits), splits slowest. The query
// heads of a GQA group times the q_len positions are packed into the M = 16
// rows of mma.sync m16n8k16 (float16 / bfloat16), so each K/V tile is read from
// memory once for the whole group. K/V tiles stream through a multi-stage
// shared-memory pipeline: on sm_90 whole tiles by the copy engine (TMA: 4-D
// tensor maps over [batch, kv head, position, dim] with 128-byte swizzle,
// per-stage mbarriers; a split's partial last tile by cp.async), before sm_90
// by cp.async (16-byte). The key range of each CTA is bounded per batch by
// kv_lengths, causal offset, window and mask_len, and divided on the device
// into the group's splits. With more than one split the CTAs write float32
// partials (unnormalised out, max, sum) to a workspace and a log-sum-exp
// combine writes `out`; with one split the kernel writes `out` directly.
// float32 inputs, head sizes that are not multiples of 8 or tensors not
// 16-byte aligned take a float32 SIMT kernel with the same structure (same
// semantics, slower).
//
// Splits: chosen on the host from the SM count, the capacity and the number of
// (batch, kv head, row block) groups (ChooseSplits). With per-row kv lengths on
// a long cache and fewer groups than CTA slots, the grid holds up to the splits
// of one row alone and each group takes splits by its share of the keys, read
// from the lengths on the device (balanced splits, GroupSplits); rows of one
// length keep the host's plan.
//
// Semantics are exactly cpu::AttentionForward's (see jax_mea/params.h): fully
// masked rows give 0, keys at or past kv_length are never read.
//
// Workspace (the split partials): the caller's (DecodeOptions::workspace; the
// XLA path passes a buffer XLA allocates, so that XLA can record the call into
// a CUDA graph), else a per-(device, stream) buffer allocated lazily with
// cudaMallocAsync on that stream, grown (never freed, never synchronising) when
// a call needs more; while the stream is being captured no allocation is made.
// A workspace short of the plan means fewer splits (down to 1, which needs
// none). The last CTA of each (batch, kv head, row block) merges the splits
// (fused combine), counting on per-group counters in a module-global bank that
// every launch leaves at zero (no allocation, no memset); successive launches
// take successive banks, so calls running at once do not share counters.
// DecodeOptions::fused_combine = 0 takes a second, small combine kernel (one CTA
// per group, the same MergeGroup) instead.
//
// Cluster merge (sm_90): where a group has at most 16 splits, they are one
// thread-block cluster; each CTA keeps its partials in shared memory and, after
// a cluster barrier, the CTAs merge them reading each other's shared memory
// (ClusterMerge): no workspace, no fence, counter or second L2 round trip at the
// end of every call. The plan takes it only where the GPU holds as many CTAs in
// clusters as it would plain (cudaOccupancyMaxActiveClusters: large clusters of
// big CTAs may not fill every SM); where the chosen splits do not fit, a TMA plan
// takes half as many, merged in clusters, which was faster than the full count
// through the workspace at every cache length measured.
//
// The measurements behind these choices (the kernel's speed, where a call's time
// goes, TMA against cp.async, the cluster merge) are in benchmarks/RESULTS.md.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "jax_mea/params.h"

namespace jax_mea::cuda {

// True when the decode kernel is the better choice for `p`: at most 16 query
// rows per kv head (q_len * group_size) for float16 / bfloat16 with head sizes
// that are multiples of 8 and 16-byte aligned k/v, at most 8 rows otherwise;
// head_size and v_head_size in [1, kMaxHeadSize] (kernels/head_dims.h); and no
// log-sum-exp asked for (the backward's residual, which only the forward kernels
// write: a training call takes them).
bool DecodeKernelApplies(const AttentionParams& p);

// Launches the decode attention on `stream` (no synchronisation) and returns the
// launch's error code. Correct for any AttentionParams with head sizes in
// [1, kMaxHeadSize] (more rows per kv head are processed in several row blocks, each of
// which reads the kv cache); other head sizes give cudaErrorInvalidValue.
cudaError_t LaunchDecodeAttention(const AttentionParams& p, cudaStream_t stream);

struct DecodeOptions {
  int num_splits = 0;        // 0: chosen from the SM count and the work; else forced (<= 64)
  bool force_simt = false;   // take the float32 SIMT kernel even where the MMA one applies
  int config = -1;           // MMA kernel configuration (tests, tuning); -1: the default
  bool balance = true;       // with per-row kv lengths and few groups: splits by each
                             // group's share of the keys (chosen splits only)
  int fused_combine = -1;    // 0: separate combine kernel; else (default) the last CTA of
                             // each group merges the splits
  int cluster_merge = -1;    // 0: never; else (default) a group's splits merge inside a
                             // thread-block cluster where that applies (sm_90 machine
                             // code, MMA kernel, 2..16 splits, fused combine, no
                             // balancing, the clusters fill the GPU as plain CTAs would)
  int spread_merge = -1;     // 0: never; else (default) with the fused combine, where
                             // the grid runs at once: every split merges a slice
  int64_t cta_overhead_bytes = -1;  // the split cost model's per-CTA cost (decode_plan.h);
                                    // -1: the default (tuning sweeps set it)
  // Non-null: append these new tokens to the cache (p.k / p.v, which must be the
  // copy's destination) inside the attention kernel itself (a decode step: one
  // launch instead of a copy kernel and the attention).
  const KvCopyParams* append = nullptr;
  void* workspace = nullptr; // caller's workspace for the split partials (device memory,
  size_t workspace_bytes = 0;  // any contents); null: the cached one. A short one means
                               // fewer splits. The XLA path passes XLA's buffer.
#ifdef JAX_MEA_DECODE_TRACE
  unsigned long long* trace = nullptr;  // diagnostics build: phase stamps (decode_common.cuh)
#endif
};

cudaError_t LaunchDecodeAttention(const AttentionParams& p, cudaStream_t stream,
                                  const DecodeOptions& options);

// Bytes of workspace the call would use with options.num_splits = 0 (0 when it
// runs unsplit). Reads the device's SM count (cached) but launches nothing.
size_t DecodeWorkspaceBytes(const AttentionParams& p);

// The number of kv splits the call would use (after the heuristic), for tests
// and benchmarks.
int DecodeNumSplits(const AttentionParams& p, const DecodeOptions& options = DecodeOptions{});

// One line describing the plan (kernel, configuration, pipeline, CTAs per SM,
// splits), for benchmarks and tuning.
std::string DecodePlanString(const AttentionParams& p,
                             const DecodeOptions& options = DecodeOptions{});

}  // namespace jax_mea::cuda
