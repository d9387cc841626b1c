// Planning of the split-KV decode (decode.h): pure host functions over the call's
// shapes, the chosen kernel's facts and the device's facts. Nothing here calls
// CUDA: decode.cu looks the facts up (once, cached) and launches; the CPU build
// compiles this file too, so the plans are unit-tested without a GPU
// (jax_mea._ext.decode_plan, tests/test_decode_plan.py).
//
// The plan picks, per call: the MMA configuration, the number of kv splits (each
// (batch, kv head, row block) group's keys cut into that many CTAs), balanced
// splits for ragged rows on long caches, the cluster merge of a group's splits
// (sm_90), and the workspace the split partials need.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "jax_mea/params.h"
#include "jax_mea/workspace.h"

namespace jax_mea::decode_plan {

// XLA's workspace bound (jax_mea/workspace.h) is sized for this many splits.
constexpr int kMaxSplits = kDecodeMaxSplits;
// Most splits merged inside a thread-block cluster: 16 CTAs is the largest
// cluster an H100 / H200 runs (8 is the portable size).
constexpr int kMaxClusterSplits = 16;
// One 8-warp tile: the finest split worth a CTA.
constexpr int kMinKeysPerSplit = 128;
// Balanced splits pay for their empty CTAs and shorter splits only on long caches
// (measured on the H100: benchmarks/RESULTS.md, third session).
constexpr int kMinBalancedCapacity = 16384;
// What one CTA costs beyond streaming its keys (its start, the first tile's
// latency, the epilogue and its share of the merge), as bytes of K/V it could have
// streamed meanwhile: ~5 us at one SM's share of the bandwidth (4.2 TB/s / 132 SMs
// on an H200). Without it, a cache slightly larger than a multiple of the tile
// (capacity 4096 + 64) was cut into 33 one-tile splits and ran at half speed.
constexpr int64_t kCtaOverheadBytes = 160 << 10;
// What merging a group's splits costs its last CTA beyond one split's epilogue, in
// the same units. Measured on the H200 (decode_check --trace, per-CTA phase
// stamps, 2026-11-29): through the workspace ~2.9 us plus ~0.13 us per split (the
// fence, the counter, the partials from L2), in a cluster ~1.5 us plus ~0.1 us per
// split. Without it, B1 S4096 N16/4 took 33 one-tile splits through the workspace
// (16.5 us) where 12-16 merged in clusters took 14.4.
// A merge's cost: fixed, plus per split (bytes here, keys in SplitCosts).
struct MergeCost {
  int64_t fixed = 0, per_split = 0;
  double Of(int splits) const { return static_cast<double>(fixed + per_split * splits); }
};
constexpr MergeCost kWorkspaceMergeBytes{96 << 10, 4 << 10};
constexpr MergeCost kClusterMergeBytes{48 << 10, 3 << 10};

// The spread merge (DecodeArgs::spread_merge) where a group's partials are at least
// this many bytes (splits x rows x Hv floats); below it the last CTA merges them sooner
// than every split can meet. H200, kernel alone, against the last-CTA merge
// (2026-11-30): 33 x 4 x 128 (68 KB, B1 S32768 N16/4) 1.2-1.6 us faster, 16 x 4 x 128
// (33 KB, N32/8) 0.4-0.8 faster, 16 x 4 x 64 (16 KB, N32/8 H64) 0.4-0.5 slower.
constexpr int64_t kSpreadMergeMinBytes = 32 << 10;

// ChooseSplits takes the fewest splits within this factor of the best modelled
// time. 5% once: with the merge costs, B1 S32768+64 N32/8 then took 15 splits
// (120 CTAs) for 16 and ran 5% slower on the H200 (session 14).
constexpr double kSplitTolerance = 1.02;

// The split cost model's costs, in keys of one CTA's streaming (bytes / key bytes).
struct SplitCosts {
  int cta_overhead = 0;  // every CTA
  MergeCost workspace_merge;  // a split group merged through the workspace
  MergeCost cluster_merge;    // ... inside a cluster
};

struct DeviceFacts {
  int sm_count = 1;
  int compute_major = 0;
};

// Facts of the kernel PickKernel chose (decode.cu).
struct KernelFacts {
  int config = -1;           // MMA configuration, -1: the float32 SIMT kernel
  int rows_per_block = 16;   // query rows per CTA
  int tile_keys = 1;         // keys per pipeline step: splits are multiples of it
  int ctas_per_sm = 1;       // occupancy
  bool tma = false;          // K/V tiles by the copy engine (configuration 3)
  bool sm90_code = false;    // sm_90 machine code (clusters, TMA)
  int key_bytes = 0;         // bytes of K and V one key costs the kernel (padded dims)
  // CTAs of this kernel that run at once in clusters of `size` (0: unknown / none).
  std::function<int64_t(int size)> cluster_slots;
  bool spread_merge = false;  // the kernel has the spread merge (DecodeArgs::spread_merge)
};

struct PlanOptions {
  int num_splits = 0;           // 0: chosen; else forced (<= kMaxSplits)
  bool balance = true;          // balanced splits where they apply
  bool fused_combine = true;    // the last CTA of a group merges (else a combine kernel)
  bool cluster_merge = true;    // merge a group's splits in a cluster where that fits
  bool spread_merge = true;     // every split merges a slice of its group's out, where
                                // the grid fits the GPU at once (DecodeArgs::spread_merge)
  int64_t cta_overhead_bytes = kCtaOverheadBytes;  // the split cost model's (tuning)
};

struct DecodePlan {
  int num_splits = 1;       // grid z
  int uniform_splits = 1;   // splits of rows of one length (balanced plans)
  int balance_slots = 0;    // > 0: balanced splits over this many CTA slots
  int rows_per_block = 16;
  int row_blocks = 1;       // ceil(group * q_len / rows_per_block)
  int64_t num_rows = 0;     // batch * num_heads * q_len
  int64_t groups = 0;       // CTAs per split: batch * num_kv_heads * row_blocks
  bool cluster_merge = false;
  bool spread_merge = false;  // through the workspace, one slice a split (one wave)
  size_t ws_bytes = 0;      // workspace for num_splits (0 with one split or clusters)
};

// The MMA configuration (decode_kernels.cuh) for the call: many short CTAs run
// best two per SM (0); otherwise one 8-warp CTA per SM with a deep pipeline, its
// K/V tiles by TMA on sm_90 (3), by cp.async before (2).
int DefaultMmaConfig(const AttentionParams& p, const DeviceFacts& d);

// Number of non-empty kv splits of `capacity` keys for `groups` groups on `slots`
// CTA slots: the fewest splits within kSplitTolerance of the best modelled time, where the
// slowest slot runs ceil(CTAs / slots) CTAs one after the other, each costing
// its keys (rounded up to `tile`) plus costs.cta_overhead, and the group's last
// CTA then merges the splits (in a cluster where in_cluster(splits) says so,
// else through the workspace).
int ChooseSplits(int64_t groups, int64_t slots, int capacity, int tile, const SplitCosts& costs,
                 const std::function<bool(int splits)>& in_cluster = nullptr);

// Workspace of `splits` split partials (jax_mea/workspace.h's layout): (max, sum)
// per split and row at 0, then the unnormalised out at *o_offset. 0 for one split.
size_t WorkspaceBytes(int64_t num_rows, int v_head_size, int splits, size_t* o_offset = nullptr);

// The whole plan. `p` needs only its shapes and whether kv_lengths is given.
DecodePlan PlanDecode(const AttentionParams& p, const KernelFacts& k, const DeviceFacts& d,
                      const PlanOptions& o);

}  // namespace jax_mea::decode_plan
