// Planning of the split-KV decode: see decode_plan.h.
#include "kernels/decode_plan.h"

#include <algorithm>
#include <vector>

namespace jax_mea::decode_plan {

int DefaultMmaConfig(const AttentionParams& p, const DeviceFacts& d) {
  const int64_t rows = static_cast<int64_t>(p.group_size()) * p.q_len;
  const int64_t groups = static_cast<int64_t>(p.batch) * p.num_kv_heads * ((rows + 15) / 16);
  if (2 * groups >= 3 * static_cast<int64_t>(d.sm_count) && p.kv_capacity <= 2048) return 0;
  // sm_90: K/V tiles by TMA (H100, 2026-11-25: 3-5% faster than cp.async on large
  // caches, 1.5x on one CTA per head); PickKernel falls back where it cannot be used.
  return d.compute_major >= 9 ? 3 : 2;
}

int ChooseSplits(int64_t groups, int64_t slots, int capacity, int tile, const SplitCosts& costs,
                 const std::function<bool(int splits)>& in_cluster) {
  if (groups <= 0 || capacity <= 0 || slots <= 0) return 1;
  tile = std::max(tile, 1);
  const int max_s = static_cast<int>(std::min<int64_t>(
      kMaxSplits, (static_cast<int64_t>(capacity) + kMinKeysPerSplit - 1) / kMinKeysPerSplit));
  if (max_s <= 1) return 1;
  // Per split count s (index s - 1): its modelled time (in keys streamed by one CTA
  // slot) and the number of non-empty splits it gives.
  std::vector<double> cost(max_s);
  std::vector<int> nonempty(max_s);
  double best = 0;
  for (int s = 1; s <= max_s; ++s) {
    int64_t chunk = (capacity + s - 1) / s;
    chunk = (chunk + tile - 1) / tile * tile;
    const int n = static_cast<int>((capacity + chunk - 1) / chunk);
    const int64_t waves = (groups * n + slots - 1) / slots;
    const double merge =
        n < 2 ? 0.0
              : (in_cluster && in_cluster(n) ? costs.cluster_merge : costs.workspace_merge).Of(n);
    nonempty[s - 1] = n;
    cost[s - 1] = static_cast<double>(waves) * static_cast<double>(chunk + costs.cta_overhead) +
                  merge;
    if (s == 1 || cost[s - 1] < best) best = cost[s - 1];
  }
  for (int s = 1; s <= max_s; ++s) {
    if (cost[s - 1] <= kSplitTolerance * best) return nonempty[s - 1];
  }
  return 1;
}

size_t WorkspaceBytes(int64_t num_rows, int v_head_size, int splits, size_t* o_offset) {
  int64_t o_at = 0;
  const int64_t bytes = DecodeWorkspaceLayout(splits, num_rows, v_head_size, &o_at);
  if (o_offset) *o_offset = static_cast<size_t>(o_at);
  return static_cast<size_t>(bytes);
}

namespace {

// True where `splits` splits of every group can merge inside thread-block
// clusters: an MMA kernel with sm_90 machine code, 2 to kMaxClusterSplits splits
// of one size for every group (no balancing), the fused combine asked for, and
// clusters that keep as many CTAs running as plain launches would (up to the
// grid's size).
bool ClusterMergeFits(const DecodePlan& plan, int splits, const KernelFacts& k,
                      const DeviceFacts& d, const PlanOptions& o, int64_t slots) {
  if (!o.cluster_merge || !o.fused_combine || k.config < 0 || splits < 2 ||
      splits > kMaxClusterSplits || plan.balance_slots > 0 || d.compute_major < 9 ||
      !k.sm90_code || !k.cluster_slots) {
    return false;
  }
  const int64_t wanted = std::min(plan.groups * splits, slots - slots % splits);
  return k.cluster_slots(splits) >= wanted;
}

}  // namespace

DecodePlan PlanDecode(const AttentionParams& p, const KernelFacts& k, const DeviceFacts& d,
                      const PlanOptions& o) {
  DecodePlan plan;
  const int rows = p.group_size() * p.q_len;
  plan.rows_per_block = std::max(k.rows_per_block, 1);
  plan.row_blocks = (rows + plan.rows_per_block - 1) / plan.rows_per_block;
  plan.num_rows = static_cast<int64_t>(p.batch) * p.num_heads * p.q_len;
  plan.groups = static_cast<int64_t>(p.batch) * p.num_kv_heads * plan.row_blocks;
  const int64_t slots = static_cast<int64_t>(d.sm_count) * std::max(k.ctas_per_sm, 1);
  // The cost model's costs in keys (key_bytes 0: none, the model of keys alone).
  auto keys = [&](int64_t bytes) {
    return k.key_bytes > 0 ? static_cast<int>((bytes + k.key_bytes - 1) / k.key_bytes) : 0;
  };
  auto merge_keys = [&](MergeCost bytes) {
    return MergeCost{keys(bytes.fixed), keys(bytes.per_split)};
  };
  SplitCosts costs;
  costs.cta_overhead = keys(o.cta_overhead_bytes);
  costs.workspace_merge = merge_keys(kWorkspaceMergeBytes);
  costs.cluster_merge = merge_keys(kClusterMergeBytes);
  auto in_cluster = [&](int splits) { return ClusterMergeFits(plan, splits, k, d, o, slots); };
  if (o.num_splits > 0) {
    plan.num_splits = plan.uniform_splits = std::min(o.num_splits, kMaxSplits);
  } else {
    plan.num_splits = plan.uniform_splits =
        ChooseSplits(plan.groups, slots, p.kv_capacity, k.tile_keys, costs, in_cluster);
    // Rows of different lengths: split by capacity, the longest row's CTAs run on
    // alone at the end. With fewer groups than slots (the block scheduler cannot
    // even them out), launch up to the splits of one row alone, capped at about
    // four CTAs per slot, and let each group take its share (GroupSplits).
    if (o.balance && p.kv_lengths != nullptr && p.batch > 1 && plan.groups < slots &&
        p.kv_capacity >= kMinBalancedCapacity) {
      // (balanced splits merge through the workspace)
      const int one_row =
          ChooseSplits(plan.groups / p.batch, slots, p.kv_capacity, k.tile_keys, costs);
      const int most =
          static_cast<int>(std::min<int64_t>(one_row, (4 * slots + plan.groups - 1) / plan.groups));
      if (most > plan.num_splits) {
        plan.num_splits = most;
        plan.balance_slots = static_cast<int>(slots);
      }
    }
  }
  // Where the chosen splits do not fit the clusters the GPU runs at once (8 groups
  // x 16 splits: an H200 runs 7 clusters of 16), they merge through the workspace.
  // Taking half as many splits in clusters instead was 1.03x faster on the H100
  // (B1 S32768 N32/8) but 1.14-1.22x slower on the H200 (kernel alone, 2026-11-29:
  // B1 S32768 N32/8 8+cl 54.9 us vs 16 splits 45.0; B8 S4096 N16/4 2+cl 32.6 vs 4
  // splits 28.6): every CTA slot streaming beats a cheaper merge.
  plan.cluster_merge = ClusterMergeFits(plan, plan.num_splits, k, d, o, slots);
  // Through the workspace in one wave: every split waits for its group's others and
  // merges a slice (the last CTA merging all 33 splits of B1 S32768 N16/4 took 5 us,
  // a fifth of the call, 2026-11-30). Balanced plans may launch more CTAs than slots.
  const int64_t partial_bytes = static_cast<int64_t>(plan.num_splits) *
                                std::min(rows, plan.rows_per_block) * p.v_head_size * 4;
  plan.spread_merge = o.spread_merge && k.spread_merge && o.fused_combine && !plan.cluster_merge &&
                      plan.num_splits > 1 && plan.balance_slots == 0 &&
                      plan.groups * plan.num_splits <= slots &&
                      partial_bytes >= kSpreadMergeMinBytes;
  plan.ws_bytes =
      plan.cluster_merge ? 0 : WorkspaceBytes(plan.num_rows, p.v_head_size, plan.num_splits);
  return plan;
}

}  // namespace jax_mea::decode_plan
