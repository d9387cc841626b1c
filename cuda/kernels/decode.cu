// Host side of the split-KV decode attention (decode.h): kernel choice, number
// of splits, workspace, launches, and the log-sum-exp combine kernel.
#include "kernels/decode.h"

#include <cudaTypedefs.h>  // PFN_cuTensorMapEncodeTiled

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>

#include "kernels/decode_common.cuh"
#include "kernels/decode_kernels.cuh"

namespace jax_mea::cuda {
namespace decode_impl {
namespace {

// 128: one 8-warp tile. Short caches with few (batch, kv head) groups run
// fastest split this fine (B1 S1024 N32/8 H128 on an H100: 4 splits 15.9 us,
// 8 splits 13.5 us); longer caches reach kMaxSplits first.
constexpr int kMinKeysPerSplit = 128;

constexpr size_t kMinWorkspaceBytes = size_t{16} << 20;

// Balanced splits (GroupSplits) pay for their empty CTAs and shorter splits only
// on long caches. H100, N32/8 H128, kernel alone, balanced vs by capacity:
// ragged B8 S32768 245 vs 259 us, B16 S32768 445 vs 480 us, but B16 S4096
// 77 vs 68 us; rows all full (per-row lengths given) B8 S32768 360 vs 357 us,
// B8 S4096 60 vs 56 us.
constexpr int kMinBalancedCapacity = 16384;

// ------------------------------------------------------------------ combine kernel

// One CTA per (batch, kv head, row block): its rows' partials merged (MergeGroup).
template <typename T>
__global__ void __launch_bounds__(kThreads) DecodeCombineKernel(const AttentionParams p,
                                                                const DecodeArgs a) {
  constexpr int R = 16;  // >= rows_per_block of either decode kernel
  __shared__ float2 table[R * kMaxSplits];
  CtaCoord cta = ThisCta(p, a, a.rows_per_block);
  int kb, ke;
  if (!CtaKeys(p, a, &cta, p.kv_length(cta.b), p.query_offset(cta.b), &kb, &ke) ||
      cta.splits <= 1) {
    return;  // one split wrote `out` itself
  }
  MergeGroup<T, R, kThreads>(p, a, cta, table);
}

// ------------------------------------------------------------------ device facts, cached

std::mutex g_mutex;

int CurrentDevice() {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) dev = 0;
  return dev;
}

// A device attribute, looked up once per (attribute, device); `fallback` where
// the query fails or gives no positive value.
int DeviceAttribute(cudaDeviceAttr attr, int dev, int fallback) {
  static std::map<std::pair<int, int>, int> cache;
  std::lock_guard<std::mutex> lock(g_mutex);
  const auto key = std::make_pair(static_cast<int>(attr), dev);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  int n = 0;
  if (cudaDeviceGetAttribute(&n, attr, dev) != cudaSuccess || n <= 0) {
    cudaGetLastError();
    n = fallback;
  }
  cache[key] = n;
  return n;
}

int MaxSmemOptin(int dev) {
  return DeviceAttribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, dev, 48 * 1024);
}
int SmCount(int dev) { return DeviceAttribute(cudaDevAttrMultiProcessorCount, dev, 1); }
int ComputeMajor(int dev) { return DeviceAttribute(cudaDevAttrComputeCapabilityMajor, dev, 0); }

// True when the kernel's machine code is sm_90 or newer (not sm_80 code JIT-run
// on a Hopper, where the TMA helpers trap).
bool CompiledForSm90(const void* func) {
  static std::map<const void*, bool> cache;
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = cache.find(func);
  if (it != cache.end()) return it->second;
  cudaFuncAttributes attr;
  bool ok = cudaFuncGetAttributes(&attr, func) == cudaSuccess && attr.binaryVersion >= 90;
  if (!ok) cudaGetLastError();
  cache[func] = ok;
  return ok;
}

// The launch attribute that makes the CTAs of each grid z column (a group's
// splits) one cluster of `size`.
cudaLaunchAttribute SplitCluster(int size) {
  cudaLaunchAttribute attr;
  attr.id = cudaLaunchAttributeClusterDimension;
  attr.val.clusterDim.x = 1;
  attr.val.clusterDim.y = 1;
  attr.val.clusterDim.z = size;
  return attr;
}

// CTAs of `h` that run at once in clusters of `size` (0 where the query fails),
// looked up once per (kernel, device, size). Clusters over 8 CTAs are allowed
// first (non-portable on sm_90).
int64_t ClusterSlots(const KernelHandle& h, int dev, int size) {
  static std::map<std::tuple<const void*, int, int>, int64_t> cache;
  std::lock_guard<std::mutex> lock(g_mutex);
  const auto key = std::make_tuple(h.func, dev, size);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  int clusters = 0;
  if (size > 8 && cudaFuncSetAttribute(h.func, cudaFuncAttributeNonPortableClusterSizeAllowed,
                                       1) != cudaSuccess) {
    cudaGetLastError();
  } else {
    cudaLaunchAttribute attr = SplitCluster(size);
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(1, 1, size);
    cfg.blockDim = dim3(h.threads);
    cfg.dynamicSmemBytes = h.smem_bytes;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    if (cudaOccupancyMaxActiveClusters(&clusters, h.func, &cfg) != cudaSuccess) {
      cudaGetLastError();
      clusters = 0;
    }
  }
  const int64_t slots = static_cast<int64_t>(clusters) * size;
  cache[key] = slots;
  return slots;
}

// The driver's cuTensorMapEncodeTiled (through the runtime: no libcuda link), or null.
PFN_cuTensorMapEncodeTiled_v12000 TensorMapEncoder() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult found;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault,
                                         &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess) {
      cudaGetLastError();
      f = nullptr;
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

// `x` ([batch, kv heads, kv positions, dim] through strides) as a 4-D tensor map
// with boxes of 64 x tile_keys elements, 128-byte swizzle, zero fill out of bounds.
bool EncodeKvMap(const AttentionParams& p, const void* x, const TensorStrides& st, int dim,
                 int tile_keys, CUtensorMap* map) {
  PFN_cuTensorMapEncodeTiled_v12000 encode = TensorMapEncoder();
  if (encode == nullptr || p.kv_capacity <= 0) return false;
  const cuuint64_t dims[4] = {static_cast<cuuint64_t>(dim), static_cast<cuuint64_t>(p.kv_capacity),
                              static_cast<cuuint64_t>(p.num_kv_heads),
                              static_cast<cuuint64_t>(p.batch)};
  const cuuint64_t strides[3] = {static_cast<cuuint64_t>(st.seq) * 2,
                                 static_cast<cuuint64_t>(st.head) * 2,
                                 static_cast<cuuint64_t>(st.batch) * 2};
  const cuuint32_t box[4] = {64, static_cast<cuuint32_t>(tile_keys), 1, 1};
  const cuuint32_t unit[4] = {1, 1, 1, 1};
  const CUtensorMapDataType type = p.dtype == DType::kBFloat16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
                                                                : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  return encode(map, type, 4, const_cast<void*>(x), dims, strides, box, unit,
                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// K's and V's tensor maps into `a`; false where either does not fit one (the
// caller then takes the cp.async configuration 2).
bool EncodeKvMaps(const AttentionParams& p, int tile_keys, DecodeArgs* a) {
  return EncodeKvMap(p, p.k, p.k_strides, p.head_size, tile_keys, &a->tmap_k) &&
         EncodeKvMap(p, p.v, p.v_strides, p.v_head_size, tile_keys, &a->tmap_v);
}

// Raises the kernel's dynamic shared-memory limit (once per device) and
// returns its CTAs per SM.
cudaError_t PrepareKernel(const KernelHandle& h, int dev, int* ctas_per_sm) {
  static std::map<std::pair<const void*, int>, int> cache;
  std::lock_guard<std::mutex> lock(g_mutex);
  auto key = std::make_pair(h.func, dev);
  auto it = cache.find(key);
  if (it != cache.end()) {
    *ctas_per_sm = it->second;
    return cudaSuccess;
  }
  cudaError_t err = cudaFuncSetAttribute(h.func, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         h.smem_bytes);
  if (err != cudaSuccess) return err;
  int n = 0;
  err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, h.func, h.threads, h.smem_bytes);
  if (err != cudaSuccess) return err;
  n = std::max(n, 1);
  cache[key] = n;
  *ctas_per_sm = n;
  return cudaSuccess;
}

// The cached workspace of (device, stream); grows with cudaMallocAsync on that
// stream, never while the stream is being captured. Returns its size (0: none).
size_t CachedWorkspace(int dev, cudaStream_t stream, size_t want, void** ptr) {
  static std::map<std::pair<int, uintptr_t>, std::pair<void*, size_t>> cache;
  std::lock_guard<std::mutex> lock(g_mutex);
  auto key = std::make_pair(dev, reinterpret_cast<uintptr_t>(stream));
  auto& slot = cache[key];
  if (slot.second >= want) {
    *ptr = slot.first;
    return slot.second;
  }
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &capture) != cudaSuccess ||
      capture != cudaStreamCaptureStatusNone) {
    cudaGetLastError();
    *ptr = slot.first;
    return slot.second;
  }
  const size_t bytes = std::max(want, kMinWorkspaceBytes);
  void* fresh = nullptr;
  if (cudaMallocAsync(&fresh, bytes, stream) != cudaSuccess) {
    cudaGetLastError();
    *ptr = slot.first;
    return slot.second;
  }
  // The old buffer is never freed: work already queued may still use it.
  slot = {fresh, bytes};
  *ptr = fresh;
  return bytes;
}

// ------------------------------------------------------------------ the plan

bool MmaAligned(const AttentionParams& p) {
  if (p.dtype == DType::kFloat32) return false;
  if (p.head_size % 8 != 0 || p.v_head_size % 8 != 0) return false;
  if (reinterpret_cast<uintptr_t>(p.k) % 16 != 0 || reinterpret_cast<uintptr_t>(p.v) % 16 != 0) {
    return false;
  }
  for (const TensorStrides* s : {&p.k_strides, &p.v_strides}) {
    if (s->batch % 8 != 0 || s->head % 8 != 0 || s->seq % 8 != 0) return false;
  }
  return true;
}

bool HeadSizesOk(const AttentionParams& p) {
  return p.head_size >= 1 && p.head_size <= kMaxHeadSize && p.v_head_size >= 1 &&
         p.v_head_size <= kMaxHeadSize;
}

// MMA configuration (decode_kernels.cuh): many short CTAs run best two per SM
// (config 0); otherwise one 8-warp CTA per SM with a deep pipeline: its K/V
// tiles by TMA on sm_90 (config 3), by cp.async before (config 2).
int DefaultMmaConfig(const AttentionParams& p, int dev) {
  const int64_t rows = static_cast<int64_t>(p.group_size()) * p.q_len;
  const int64_t base = static_cast<int64_t>(p.batch) * p.num_kv_heads * ((rows + 15) / 16);
  if (2 * base >= 3 * static_cast<int64_t>(SmCount(dev)) && p.kv_capacity <= 2048) return 0;
  // sm_90: K/V tiles by TMA (H100, 2026-11-25: 3-5% faster than cp.async on large
  // caches, 1.5x on one CTA per head); PickKernel falls back where it cannot be used.
  return ComputeMajor(dev) >= 9 ? 3 : 2;
}

bool PickKernel(const AttentionParams& p, const DecodeOptions& opt, int dev, KernelHandle* h) {
  if (!opt.force_simt && MmaAligned(p)) {
    auto pick = p.dtype == DType::kBFloat16 ? MmaKernel<__nv_bfloat16> : MmaKernel<__half>;
    const int smem_max = MaxSmemOptin(dev);
    // The preferred configuration, then the cp.async ones (config 3 needs sm_90 code).
    for (int config : {opt.config >= 0 ? opt.config : DefaultMmaConfig(p, dev), 2, 0}) {
      if (config == 3 && (ComputeMajor(dev) < 9 || p.kv_capacity <= 0)) continue;
      if (pick(p.head_size, p.v_head_size, config, h) && h->smem_bytes <= smem_max &&
          (!h->tma || CompiledForSm90(h->func))) {
        h->config = config;
        return true;
      }
    }
  }
  return SimtKernel(p.dtype, std::max(p.head_size, p.v_head_size), h);
}

// Number of kv splits. Each CTA streams `chunk` keys (rounded up to the
// kernel's tile); the slowest GPU slot runs ceil(CTAs / slots) of them one
// after the other, so the time goes as waves * chunk. Takes the fewest splits
// within 5% of the best such cost (each split costs a CTA start and partials),
// at most kMaxSplits, each at least kMinKeysPerSplit keys of the capacity.
// Returns the number of non-empty splits for that chunk.
int ChooseSplits(int64_t base, int64_t slots, int capacity, int tile) {
  if (base <= 0 || capacity <= 0 || slots <= 0) return 1;
  const int max_s = static_cast<int>(std::min<int64_t>(
      kMaxSplits, (static_cast<int64_t>(capacity) + kMinKeysPerSplit - 1) / kMinKeysPerSplit));
  if (max_s <= 1) return 1;
  auto plan = [&](int s, int* n_eff) {
    int64_t chunk = (capacity + s - 1) / s;
    chunk = (chunk + tile - 1) / tile * tile;
    *n_eff = static_cast<int>((capacity + chunk - 1) / chunk);
    const int64_t waves = (base * *n_eff + slots - 1) / slots;
    return static_cast<double>(waves * chunk);
  };
  double best = 0;
  for (int s = 1; s <= max_s; ++s) {
    int n;
    const double c = plan(s, &n);
    if (s == 1 || c < best) best = c;
  }
  for (int s = 1; s <= max_s; ++s) {
    int n;
    if (plan(s, &n) <= 1.05 * best) return n;
  }
  return 1;
}

struct Plan {
  KernelHandle kernel;
  DecodeArgs args;
  int num_kv_heads = 0;
  int64_t groups = 0;   // CTAs per split: batch * num_kv_heads * row_blocks
  size_t ws_bytes = 0;  // for args.num_splits
};

// The fused combine's counters: kCounterBanks banks of one counter per group,
// zero when the module loads; a group's last CTA wraps its counter back to 0
// (atomicInc), so every launch leaves its bank at zero. Each launch takes the
// next bank: launches that may run at once (other streams, graph nodes XLA runs
// concurrently) use different counters unless kCounterBanks launches overlap.
constexpr int kCounterBanks = 16;
constexpr int64_t kMaxCounterGroups = 16384;
__device__ unsigned g_counters[kCounterBanks][kMaxCounterGroups];

// The next bank of this device (null where the symbol cannot be had).
unsigned* NextCounterBank(int dev) {
  static std::map<int, unsigned*> banks;
  static unsigned next = 0;
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = banks.find(dev);
  if (it == banks.end()) {
    void* base = nullptr;
    if (cudaGetSymbolAddress(&base, g_counters) != cudaSuccess) {
      cudaGetLastError();
      base = nullptr;
    }
    it = banks.emplace(dev, static_cast<unsigned*>(base)).first;
  }
  if (it->second == nullptr) return nullptr;
  return it->second + (next++ % kCounterBanks) * kMaxCounterGroups;
}

// Workspace layout: ws_ml at 0, then ws_o at *o_offset (256-byte aligned).
size_t WorkspaceBytes(const AttentionParams& p, int64_t num_rows, int splits,
                      size_t* o_offset = nullptr) {
  if (splits <= 1) return 0;
  const size_t ml = static_cast<size_t>(splits) * num_rows * 2 * sizeof(float);
  const size_t o_at = (ml + 255) / 256 * 256;
  const size_t o = static_cast<size_t>(splits) * num_rows * p.v_head_size * sizeof(float);
  if (o_offset) *o_offset = o_at;
  return o_at + o;
}

// True where the plan's splits can merge inside thread-block clusters
// (DecodeArgs::cluster_merge): an MMA kernel with sm_90 machine code, 2 to
// kMaxClusterSplits splits of one size for every group (no balancing), the fused
// combine asked for, and clusters that keep as many CTAs running as plain
// launches would (up to the grid's size).
bool ClusterMergeFits(const Plan& plan, const DecodeOptions& opt, int dev, int64_t slots) {
  const DecodeArgs& a = plan.args;
  const int s = a.num_splits;
  if (opt.cluster_merge == 0 || opt.fused_combine == 0 || plan.kernel.config < 0 ||
      s < 2 || s > kMaxClusterSplits || a.balance_slots > 0 || ComputeMajor(dev) < 9 ||
      !CompiledForSm90(plan.kernel.func)) {
    return false;
  }
  const int64_t wanted = std::min(plan.groups * s, slots - slots % s);
  return ClusterSlots(plan.kernel, dev, s) >= wanted;
}

cudaError_t MakePlan(const AttentionParams& p, const DecodeOptions& opt, Plan* plan) {
  if (!HeadSizesOk(p)) return cudaErrorInvalidValue;
  const int dev = CurrentDevice();
  if (!PickKernel(p, opt, dev, &plan->kernel)) return cudaErrorInvalidValue;
  int ctas_per_sm = 1;
  cudaError_t err = PrepareKernel(plan->kernel, dev, &ctas_per_sm);
  if (err != cudaSuccess) return err;
  DecodeArgs& a = plan->args;
  const int rows = p.group_size() * p.q_len;
  a.rows_per_block = plan->kernel.rows_per_block;
  a.row_blocks = (rows + a.rows_per_block - 1) / a.rows_per_block;
  a.num_rows = static_cast<int64_t>(p.batch) * p.num_heads * p.q_len;
  const int64_t base = static_cast<int64_t>(p.batch) * p.num_kv_heads * a.row_blocks;
  a.tile_keys = plan->kernel.tile_keys;
  const int64_t slots = static_cast<int64_t>(SmCount(dev)) * ctas_per_sm;
  if (opt.num_splits > 0) {
    a.num_splits = a.uniform_splits = std::min(opt.num_splits, kMaxSplits);
  } else {
    a.num_splits = ChooseSplits(base, slots, p.kv_capacity, a.tile_keys);
    a.uniform_splits = a.num_splits;
    // Rows of different lengths: split by capacity, the longest row's CTAs run on
    // alone at the end. With fewer groups than slots (the block scheduler cannot
    // even them out), launch up to the splits of one row alone, capped at about
    // four CTAs per slot, and let each group take its share (GroupSplits).
    if (opt.balance && p.kv_lengths != nullptr && p.batch > 1 && base < slots &&
        p.kv_capacity >= kMinBalancedCapacity) {
      const int one_row = ChooseSplits(base / p.batch, slots, p.kv_capacity, a.tile_keys);
      const int most = std::min<int64_t>(one_row, (4 * slots + base - 1) / base);
      if (most > a.num_splits) {
        a.num_splits = most;
        a.balance_slots = static_cast<int>(slots);
      }
    }
  }
  plan->num_kv_heads = p.num_kv_heads;
  plan->groups = base;
  plan->ws_bytes = WorkspaceBytes(p, a.num_rows, a.num_splits);
  a.cluster_merge = ClusterMergeFits(*plan, opt, dev, slots);
  // Too many split CTAs for the clusters the GPU runs at once (8 groups x 16
  // splits: an H100 runs 7 clusters of 16): half the splits, merged in clusters.
  // H100, TMA kernel, B1 N32/8 H128, kernel alone, 8 splits in clusters against
  // 16 through the workspace: S1024 12.4 vs 14.4 us, S4096 17.1 vs 18.5, S8192
  // 22.6 vs 23.6, S32768 55.2 vs 56.7 (64 TMA CTAs stream at 2.4 TB/s already).
  if (!a.cluster_merge && opt.num_splits == 0 && plan->kernel.tma && a.balance_slots == 0 &&
      a.num_splits > 2) {
    Plan half = *plan;
    half.args.num_splits = half.args.uniform_splits = (a.num_splits + 1) / 2;
    if (ClusterMergeFits(half, opt, dev, slots)) {
      a.num_splits = a.uniform_splits = half.args.num_splits;
      a.cluster_merge = true;
    }
  }
  return cudaSuccess;
}

}  // namespace
}  // namespace decode_impl

using namespace decode_impl;

bool DecodeKernelApplies(const AttentionParams& p) {
  if (!HeadSizesOk(p)) return false;
  const int64_t rows = static_cast<int64_t>(p.group_size()) * p.q_len;
  if (MmaAligned(p)) return rows <= 16;
  return rows <= 8;
}

size_t DecodeWorkspaceBytes(const AttentionParams& p) {
  Plan plan;
  if (MakePlan(p, DecodeOptions{}, &plan) != cudaSuccess) return 0;
  return plan.ws_bytes;
}

int DecodeNumSplits(const AttentionParams& p, const DecodeOptions& options) {
  Plan plan;
  if (MakePlan(p, options, &plan) != cudaSuccess) return 0;
  return plan.args.num_splits;
}

std::string DecodePlanString(const AttentionParams& p, const DecodeOptions& options) {
  Plan plan;
  if (MakePlan(p, options, &plan) != cudaSuccess) return "no plan";
  int ctas_per_sm = 0;
  PrepareKernel(plan.kernel, CurrentDevice(), &ctas_per_sm);
  const char* kind = plan.kernel.config < 0 ? "simt" : "mma";
  if (plan.kernel.tma) {  // as LaunchDecodeAttention does: no tensor map, config 2
    if (!EncodeKvMaps(p, plan.kernel.tile_keys, &plan.args)) {
      DecodeOptions cp_async = options;
      cp_async.config = 2;
      return "(no tensor map) " + DecodePlanString(p, cp_async);
    }
    kind = "mma-tma";
  }
  char balanced[48] = "";
  if (plan.args.balance_slots > 0) {
    std::snprintf(balanced, sizeof balanced, " balanced(uniform %d)", plan.args.uniform_splits);
  } else if (plan.args.cluster_merge) {
    std::snprintf(balanced, sizeof balanced, " cluster");
  }
  char buf[240];
  std::snprintf(buf, sizeof buf, "%s cfg%d warps%d stages%d tile%d smem%dK %d/SM splits%d%s ctas%lld",
                kind, plan.kernel.config,
                plan.kernel.threads / 32, plan.kernel.stages, plan.kernel.tile_keys,
                plan.kernel.smem_bytes >> 10, ctas_per_sm, plan.args.num_splits, balanced,
                static_cast<long long>(plan.groups * plan.args.num_splits));
  return buf;
}

cudaError_t LaunchDecodeAttention(const AttentionParams& p, cudaStream_t stream) {
  return LaunchDecodeAttention(p, stream, DecodeOptions{});
}

cudaError_t LaunchDecodeAttention(const AttentionParams& p, cudaStream_t stream,
                                  const DecodeOptions& options) {
  if (p.batch <= 0 || p.num_heads <= 0 || p.q_len <= 0) return cudaSuccess;
  Plan plan;
  cudaError_t err = MakePlan(p, options, &plan);
  if (err != cudaSuccess) return err;
  DecodeArgs& a = plan.args;
  if (plan.kernel.tma && !EncodeKvMaps(p, plan.kernel.tile_keys, &a)) {
    DecodeOptions cp_async = options;  // the tensors do not fit a tensor map
    cp_async.config = 2;
    return LaunchDecodeAttention(p, stream, cp_async);
  }

  if (a.num_splits > 1 && !a.cluster_merge) {
    void* ws = options.workspace;
    size_t have = options.workspace_bytes;
    if (ws == nullptr) {
      have = CachedWorkspace(CurrentDevice(), stream,
                             WorkspaceBytes(p, a.num_rows, a.num_splits), &ws);
    }
    // Fewer splits where the workspace is short (graph capture, no memory).
    while (a.num_splits > 1 && WorkspaceBytes(p, a.num_rows, a.num_splits) > have) {
      --a.num_splits;
    }
    if (a.num_splits <= a.uniform_splits) {  // no room left to balance
      a.uniform_splits = a.num_splits;
      a.balance_slots = 0;
    }
    if (a.num_splits > 1) {
      size_t o_at = 0;
      WorkspaceBytes(p, a.num_rows, a.num_splits, &o_at);
      a.ws_ml = static_cast<float*>(ws);
      a.ws_o = reinterpret_cast<float*>(static_cast<char*>(ws) + o_at);
      if (options.fused_combine != 0 && plan.groups <= kMaxCounterGroups) {
        a.counters = NextCounterBank(CurrentDevice());  // null: the combine kernel
      }
    }
  }

  // (groups, batch, splits): see CtaCoord in decode_common.cuh.
  const int64_t grid_x = static_cast<int64_t>(p.num_kv_heads) * a.row_blocks;
  if (grid_x > 0x7fffffff || p.batch > 65535) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(grid_x), p.batch, a.num_splits);
  AttentionParams params = p;
  void* kernel_args[] = {&params, &a};
  cudaLaunchConfig_t launch = {};
  launch.gridDim = grid;
  launch.blockDim = dim3(plan.kernel.threads);
  launch.dynamicSmemBytes = plan.kernel.smem_bytes;
  launch.stream = stream;
  cudaLaunchAttribute cluster = SplitCluster(a.num_splits);
  if (a.cluster_merge) {
    launch.attrs = &cluster;
    launch.numAttrs = 1;
  }
  err = cudaLaunchKernelExC(&launch, plan.kernel.func, kernel_args);
  if (err != cudaSuccess) return err;
  if (a.num_splits > 1 && a.counters == nullptr && !a.cluster_merge) {
    // A programmatic dependent launch (sm_90) was tried here: on the legacy
    // default stream it made the host wait for the GPU, so it is a plain launch.
    const dim3 blocks(grid.x, grid.y);
    switch (p.dtype) {
      case DType::kFloat32:
        DecodeCombineKernel<float><<<blocks, kThreads, 0, stream>>>(p, a);
        break;
      case DType::kFloat16:
        DecodeCombineKernel<__half><<<blocks, kThreads, 0, stream>>>(p, a);
        break;
      case DType::kBFloat16:
        DecodeCombineKernel<__nv_bfloat16><<<blocks, kThreads, 0, stream>>>(p, a);
        break;
    }
  }
  return cudaGetLastError();
}

}  // namespace jax_mea::cuda
