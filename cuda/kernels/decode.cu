// Host side of the split-KV decode attention (decode.h): the device facts
// (looked up once, cached), the kernel choice, the plan (decode_plan.h: splits,
// clusters, workspace; cached per shape), tensor maps, the launches, and the
// log-sum-exp combine kernel.
#include "kernels/decode.h"

#include <algorithm>
#include <array>
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
#include "kernels/decode_plan.h"
#include "kernels/launch_utils.h"
#include "kernels/tensor_map.h"

namespace jax_mea::cuda {
namespace decode_impl {
namespace {

// The cached workspace (no XLA workspace given) starts at this size.
constexpr size_t kMinWorkspaceBytes = size_t{16} << 20;

// ------------------------------------------------------------------ combine kernel

// One CTA per (batch, kv head, row block): its rows' partials merged (MergeGroup).
template <typename T>
__global__ void __launch_bounds__(kThreads) DecodeCombineKernel(const AttentionParams p,
                                                                const DecodeArgs a) {
  constexpr int R = 16;  // >= rows_per_block of either decode kernel
  constexpr int kScratchFloats = kMergeScratchFloats<R, kMaxHeadSize>;
  __shared__ __align__(16) float scratch[kScratchFloats];
  CtaCoord cta = ThisCta(p, a, a.rows_per_block);
  int kb, ke;
  if (!CtaKeys(p, a, &cta, p.kv_length(cta.b), p.query_offset(cta.b), &kb, &ke) ||
      cta.splits <= 1) {
    return;  // one split wrote `out` itself
  }
  MergeGroup<T, R, kThreads>(p, a, cta, scratch, kScratchFloats);
}

// ------------------------------------------------------------------ device facts, cached

std::mutex g_mutex;

int CurrentDevice() {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) dev = 0;
  return dev;
}

// The device facts the plan reads (DeviceAttribute, launch_utils.h), with the values
// assumed where a query fails.
int MaxSmemOptin(int dev) {
  const int bytes = DeviceAttribute<cudaDevAttrMaxSharedMemoryPerBlockOptin>(dev);
  return bytes > 0 ? bytes : 48 * 1024;
}
int SmCount(int dev) { return std::max(DeviceAttribute<cudaDevAttrMultiProcessorCount>(dev), 1); }
int ComputeMajor(int dev) { return DeviceAttribute<cudaDevAttrComputeCapabilityMajor>(dev); }

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
    cfg.dynamicSmemBytes = h.cluster_smem_bytes;
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

// `x` ([batch, kv heads, kv positions, dim] through strides) as a 4-D tensor map
// with boxes of 64 x tile_keys elements, 128-byte swizzle, zero fill out of bounds.
bool EncodeKvMap(const AttentionParams& p, const void* x, const TensorStrides& st, int dim,
                 int tile_keys, CUtensorMap* map) {
  return EncodeBoxMap(map, p.dtype, x, p.batch, p.num_kv_heads, p.kv_capacity, dim, st,
                      tile_keys);
}

// K's and V's tensor maps into `a`; false where either does not fit one (the
// caller then takes the cp.async configuration 2). Encoded once per (addresses,
// shapes, strides, tile): a decode loop passes the same cache buffers every step.
bool EncodeKvMaps(const AttentionParams& p, int tile_keys, DecodeArgs* a) {
  using Key = std::array<int64_t, 15>;
  struct Maps {
    bool ok;
    CUtensorMap k, v;
  };
  static std::map<Key, Maps> cache;
  static std::mutex mutex;
  const Key key = {reinterpret_cast<int64_t>(p.k), reinterpret_cast<int64_t>(p.v),
                   static_cast<int64_t>(p.dtype), p.batch, p.num_kv_heads, p.kv_capacity,
                   p.head_size, p.v_head_size, tile_keys, p.k_strides.batch, p.k_strides.head,
                   p.k_strides.seq, p.v_strides.batch, p.v_strides.head, p.v_strides.seq};
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it == cache.end()) {
    if (cache.size() >= 1024) cache.clear();  // bounded: buffers come and go
    Maps m;
    m.ok = EncodeKvMap(p, p.k, p.k_strides, p.head_size, tile_keys, &m.k) &&
           EncodeKvMap(p, p.v, p.v_strides, p.v_head_size, tile_keys, &m.v);
    it = cache.emplace(key, m).first;
  }
  a->tmap_k = it->second.k;
  a->tmap_v = it->second.v;
  return it->second.ok;
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
  // Room for a cluster-merged launch's receive buffer where the device has it, with the
  // kernel's static shared memory (H192/128 configuration 1 leaves 288 bytes); else
  // ClusterSlots finds no cluster slots and the plans merge through the workspace.
  cudaError_t err = cudaErrorInvalidValue;
  if (h.cluster_smem_bytes > h.smem_bytes) {
    err = cudaFuncSetAttribute(h.func, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               h.cluster_smem_bytes);
    if (err != cudaSuccess) cudaGetLastError();
  }
  if (err != cudaSuccess) {
    err = cudaFuncSetAttribute(h.func, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               h.smem_bytes);
  }
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

// The device's facts for the planner (decode_plan.h), from the cached lookups.
decode_plan::DeviceFacts DeviceFactsOf(int dev) { return {SmCount(dev), ComputeMajor(dev)}; }

bool PickKernel(const AttentionParams& p, const DecodeOptions& opt, int dev, KernelHandle* h) {
  if (!opt.force_simt && MmaAligned(p)) {
    auto pick = p.dtype == DType::kBFloat16 ? MmaKernel<__nv_bfloat16> : MmaKernel<__half>;
    const int smem_max = MaxSmemOptin(dev);
    // The preferred configuration, then the cp.async ones (config 3 needs sm_90 code).
    const int preferred =
        opt.config >= 0 ? opt.config : decode_plan::DefaultMmaConfig(p, DeviceFactsOf(dev));
    for (int config : {preferred, 2, 0}) {
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

// The kernel's and the device's facts for the planner (decode_plan.h).
decode_plan::KernelFacts FactsOf(const KernelHandle& h, const AttentionParams& p, int dev,
                                 int ctas_per_sm) {
  decode_plan::KernelFacts k;
  k.config = h.config;
  k.rows_per_block = h.rows_per_block;
  k.tile_keys = h.tile_keys;
  k.ctas_per_sm = ctas_per_sm;
  k.tma = h.tma;
  k.sm90_code = CompiledForSm90(h.func);
  k.key_bytes =
      (h.key_elems > 0 ? h.key_elems : p.head_size + p.v_head_size) * DTypeBytes(p.dtype);
  k.cluster_slots = [h, dev](int size) { return ClusterSlots(h, dev, size); };
  k.spread_merge = h.spread_merge;
  return k;
}

struct Plan {
  KernelHandle kernel;
  DecodeArgs args;
  int64_t groups = 0;   // CTAs per split: batch * num_kv_heads * row_blocks
  size_t ws_bytes = 0;  // for args.num_splits

  // Dynamic shared memory of a launch: the receive buffer's too where it merges in
  // clusters (MmaConfig::kClusterSmemBytes).
  int LaunchSmemBytes() const {
    return args.cluster_merge ? kernel.cluster_smem_bytes : kernel.smem_bytes;
  }
};

// What a plan depends on besides the options: the device and the call's shapes.
using PlanKey = std::tuple<int, int, int, int, int, int, int, int, int, bool, bool, int, int,
                           int, int, int, int, int64_t>;

PlanKey KeyOf(const AttentionParams& p, const DecodeOptions& o, int dev) {
  return {dev, static_cast<int>(p.dtype), p.batch, p.num_heads, p.num_kv_heads, p.q_len,
          p.kv_capacity, p.head_size, p.v_head_size, p.kv_lengths != nullptr, MmaAligned(p),
          o.num_splits, (o.force_simt ? 1 : 0) | (o.balance ? 2 : 0), o.config,
          o.fused_combine, o.cluster_merge, o.spread_merge, o.cta_overhead_bytes};
}

cudaError_t MakePlanUncached(const AttentionParams& p, const DecodeOptions& opt, int dev,
                             Plan* plan) {
  if (!PickKernel(p, opt, dev, &plan->kernel)) return cudaErrorInvalidValue;
  int ctas_per_sm = 1;
  cudaError_t err = PrepareKernel(plan->kernel, dev, &ctas_per_sm);
  if (err != cudaSuccess) return err;
  decode_plan::PlanOptions o;
  o.num_splits = opt.num_splits;
  o.balance = opt.balance;
  o.fused_combine = opt.fused_combine != 0;
  o.cluster_merge = opt.cluster_merge != 0;
  o.spread_merge = opt.spread_merge != 0;
  if (opt.cta_overhead_bytes >= 0) o.cta_overhead_bytes = opt.cta_overhead_bytes;
  const decode_plan::DecodePlan dp = decode_plan::PlanDecode(
      p, FactsOf(plan->kernel, p, dev, ctas_per_sm), DeviceFactsOf(dev), o);
  DecodeArgs& a = plan->args;
  a.num_splits = dp.num_splits;
  a.uniform_splits = dp.uniform_splits;
  a.balance_slots = dp.balance_slots;
  a.tile_keys = plan->kernel.tile_keys;
  a.rows_per_block = dp.rows_per_block;
  a.row_blocks = dp.row_blocks;
  a.num_rows = dp.num_rows;
  a.cluster_merge = dp.cluster_merge;
  a.spread_merge = dp.spread_merge;
  plan->groups = dp.groups;
  plan->ws_bytes = dp.ws_bytes;
  return cudaSuccess;
}

// The plan of a call, computed once per (device, shapes, options): a call then
// pays one lookup, not the kernel choice, the occupancy queries and the planner.
cudaError_t MakePlan(const AttentionParams& p, const DecodeOptions& opt, Plan* plan) {
  if (!HeadSizesOk(p)) return cudaErrorInvalidValue;
  const int dev = CurrentDevice();
  static std::map<PlanKey, Plan> cache;
  static std::mutex mutex;  // not g_mutex: the fact lookups below take that one
  const PlanKey key = KeyOf(p, opt, dev);
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = cache.find(key);
    if (it != cache.end()) {
      *plan = it->second;
      return cudaSuccess;
    }
  }
  cudaError_t err = MakePlanUncached(p, opt, dev, plan);
  if (err != cudaSuccess) return err;
  std::lock_guard<std::mutex> lock(mutex);
  if (cache.size() >= 4096) cache.clear();  // bounded: shapes of a long-running process
  cache.emplace(key, *plan);
  return cudaSuccess;
}

// The fused combine's counters: kCounterBanks banks of one counter per group,
// zero when the module loads; a group's last CTA wraps its counter back to 0
// (atomicInc), so every launch leaves its bank at zero. Each launch takes the
// next bank: launches that may run at once (other streams, graph nodes XLA runs
// concurrently) use different counters unless kCounterBanks launches overlap.
// The spread merge's launches take banks of their own, more of them: their CTAs
// wait on the counter (GroupBarrier), so a launch sharing the bank would hang
// them where the last-CTA merge would garble a merge; and one wave holds at most
// the GPU's CTA slots of groups, so their banks are short.
constexpr int kCounterBanks = 16;
constexpr int64_t kMaxCounterGroups = 16384;
__device__ unsigned g_counters[kCounterBanks][kMaxCounterGroups];
constexpr int kSpreadBanks = 64;
constexpr int64_t kMaxSpreadGroups = 1024;
__device__ unsigned g_spread_counters[kSpreadBanks][kMaxSpreadGroups];

// The next bank of this device (null where the symbol cannot be had), of the
// spread merge's banks or the others'.
unsigned* NextCounterBank(int dev, bool spread) {
  static std::map<std::pair<int, bool>, unsigned*> bases;
  static unsigned next[2] = {0, 0};
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = bases.find({dev, spread});
  if (it == bases.end()) {
    void* base = nullptr;
    const cudaError_t err = spread ? cudaGetSymbolAddress(&base, g_spread_counters)
                                   : cudaGetSymbolAddress(&base, g_counters);
    if (err != cudaSuccess) {
      cudaGetLastError();
      base = nullptr;
    }
    it = bases.emplace(std::make_pair(dev, spread), static_cast<unsigned*>(base)).first;
  }
  if (it->second == nullptr) return nullptr;
  const unsigned bank = next[spread]++ % (spread ? kSpreadBanks : kCounterBanks);
  return it->second + bank * (spread ? kMaxSpreadGroups : kMaxCounterGroups);
}

size_t WorkspaceBytes(const AttentionParams& p, int64_t num_rows, int splits,
                      size_t* o_offset = nullptr) {
  return decode_plan::WorkspaceBytes(num_rows, p.v_head_size, splits, o_offset);
}
}  // namespace
}  // namespace decode_impl

using namespace decode_impl;

bool DecodeKernelApplies(const AttentionParams& p) {
  if (p.lse != nullptr || !HeadSizesOk(p)) return false;
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
  } else if (plan.args.spread_merge) {
    std::snprintf(balanced, sizeof balanced, " spread");
  }
  char buf[240];
  std::snprintf(buf, sizeof buf,
                "%s cfg%d warps%d stages%d tile%d smem%dK %d/SM splits%d%s ctas%lld",
                kind, plan.kernel.config,
                plan.kernel.threads / 32, plan.kernel.stages, plan.kernel.tile_keys,
                plan.LaunchSmemBytes() >> 10,
                ctas_per_sm, plan.args.num_splits, balanced,
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
      a.spread_merge = a.spread_merge && plan.groups <= kMaxSpreadGroups;
      if (options.fused_combine != 0 && plan.groups <= kMaxCounterGroups) {
        // null: the combine kernel
        a.counters = NextCounterBank(CurrentDevice(), a.spread_merge);
      }
    }
  }
  a.spread_merge = a.spread_merge && a.counters != nullptr;

  if (const KvCopyParams* ap = options.append; ap != nullptr && ap->num_new > 0) {
    if (ap->dst_k != p.k || ap->dst_v != p.v || ap->dtype != p.dtype || ap->batch != p.batch ||
        ap->num_kv_heads != p.num_kv_heads || ap->dst_starts == nullptr) {
      return cudaErrorInvalidValue;  // not an append to this call's cache
    }
    a.append_k = ap->new_k;
    a.append_v = ap->new_v;
    a.append_k_strides = ap->new_k_strides;
    a.append_v_strides = ap->new_v_strides;
    a.append_starts = ap->dst_starts;
    a.append_num_new = ap->num_new;
    a.append_overflowed = ap->overflowed;
  }

#ifdef JAX_MEA_DECODE_TRACE
  a.trace = options.trace;
#endif
  // (groups, batch, splits): see CtaCoord in decode_common.cuh.
  const int64_t grid_x = static_cast<int64_t>(p.num_kv_heads) * a.row_blocks;
  if (grid_x > 0x7fffffff || p.batch > 65535) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(grid_x), p.batch, a.num_splits);
  AttentionParams params = p;
  void* kernel_args[] = {&params, &a};
  cudaLaunchConfig_t launch = {};
  launch.gridDim = grid;
  launch.blockDim = dim3(plan.kernel.threads);
  launch.dynamicSmemBytes = plan.LaunchSmemBytes();
  launch.stream = stream;
  cudaLaunchAttribute cluster = SplitCluster(a.num_splits);
  cudaLaunchAttribute cooperative;
  cooperative.id = cudaLaunchAttributeCooperative;
  cooperative.val.cooperative = 1;
  if (a.cluster_merge) {
    launch.attrs = &cluster;
    launch.numAttrs = 1;
  } else if (a.spread_merge) {  // the CTAs wait for each other: all must be resident
    launch.attrs = &cooperative;
    launch.numAttrs = 1;
  }
  err = cudaLaunchKernelExC(&launch, plan.kernel.func, kernel_args);
  if (err != cudaSuccess && a.spread_merge && err != cudaErrorStreamCaptureInvalidated) {
    // The grid does not fit at once after all (an MPS or green-context share of the
    // SMs: the plan counted them all): the last CTA of each group merges. Nothing ran,
    // so the counters are still at zero. (Under stream capture a failed launch may
    // invalidate the capture; the retry then returns that error.)
    cudaGetLastError();
    a.spread_merge = false;
    launch.numAttrs = 0;
    err = cudaLaunchKernelExC(&launch, plan.kernel.func, kernel_args);
  }
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
