// nanobind module jax_mea._ext: hands the FFI handlers to Python as capsules,
// and owns the facts both sides of the language boundary use (target names,
// enum values, limits, the decode workspace bound): jax_mea/_ffi.py reads them
// here instead of typing them again.
#include <nanobind/nanobind.h>

#include <map>

#include "ffi/handlers.h"
#include "kernels/bwd_walk.h"
#include "kernels/decode_plan.h"
#include "ffi/params_from_ffi.h"
#include "jax_mea/params.h"
#include "jax_mea/workspace.h"
#include "kernels/head_dims.h"

namespace nb = nanobind;

namespace {

template <typename Fn>
nb::capsule Capsule(Fn* fn) {
  return nb::capsule(reinterpret_cast<void*>(fn));
}

// The backward's walk over query tiles for key block nb (kernels/bwd_walk.h), for
// tests on machines without a GPU: [(hg, m, any_lo, any_hi, all_lo, all_hi)], heads
// [hg_first, hg_end) of the group.
nb::list BwdWalkTiles(int q_len, int kv_len, int64_t query_offset, int nb, int hg_first,
                      int hg_end, bool is_causal, int left_window, int right_window,
                      int mask_len, int block_m, int block_n) {
  jax_mea::AttentionParams p;
  p.q_len = q_len;
  p.kv_capacity = kv_len;
  p.is_causal = is_causal;
  p.left_window = left_window;
  p.right_window = right_window;
  if (mask_len >= 0) {
    p.mask_kind = jax_mea::MaskKind::kBool;
    p.mask_len = mask_len;
  }
  jax_mea::BwdWalk walk =
      jax_mea::BwdWalk::Make(p, block_m, block_n, kv_len, query_offset, nb * block_n, hg_end);
  nb::list tiles;
  for (jax_mea::BwdTile t = walk.First(hg_first); t.hg < hg_end; t = walk.Next(t.hg, t.m)) {
    tiles.append(nb::make_tuple(t.hg, t.m, t.bk.any.lo, t.bk.any.hi, t.bk.all.lo, t.bk.all.hi));
  }
  return tiles;
}

// The decode planner (kernels/decode_plan.h) over given shapes and facts, for
// tests on machines without a GPU. `cluster_slots`: {size: CTAs running at once in
// clusters of that size}; sizes not in it run none.
nb::dict DecodePlan(int batch, int num_heads, int num_kv_heads, int q_len, int kv_capacity,
                    int head_size, int v_head_size, bool has_kv_lengths, int sm_count,
                    int compute_major, int config, int rows_per_block, int tile_keys,
                    int ctas_per_sm, bool tma, bool sm90_code, int key_bytes,
                    nb::dict cluster_slots, int num_splits, bool balance, bool cluster_merge,
                    bool spread_merge) {
  namespace dp = jax_mea::decode_plan;
  static const int32_t kSomeLength = 0;
  jax_mea::AttentionParams p;
  p.batch = batch;
  p.num_heads = num_heads;
  p.num_kv_heads = num_kv_heads;
  p.q_len = q_len;
  p.kv_capacity = kv_capacity;
  p.head_size = head_size;
  p.v_head_size = v_head_size;
  p.kv_lengths = has_kv_lengths ? &kSomeLength : nullptr;  // only its presence is read
  const dp::DeviceFacts d{sm_count, compute_major};
  std::map<int, int64_t> slots;
  for (auto [size, n] : cluster_slots) slots[nb::cast<int>(size)] = nb::cast<int64_t>(n);
  dp::KernelFacts k{config, rows_per_block, tile_keys, ctas_per_sm, tma, sm90_code,
                    key_bytes, [slots](int size) {
                      auto it = slots.find(size);
                      return it == slots.end() ? int64_t{0} : it->second;
                    }};
  k.spread_merge = config >= 2;  // the 8-warp configurations (MmaConfig::kSpreadMerge)
  dp::PlanOptions o;
  o.num_splits = num_splits;
  o.balance = balance;
  o.cluster_merge = cluster_merge;
  o.spread_merge = spread_merge;
  const dp::DecodePlan plan = dp::PlanDecode(p, k, d, o);
  nb::dict r;
  r["default_config"] = dp::DefaultMmaConfig(p, d);
  r["num_splits"] = plan.num_splits;
  r["uniform_splits"] = plan.uniform_splits;
  r["balanced"] = plan.balance_slots > 0;
  r["cluster_merge"] = plan.cluster_merge;
  r["spread_merge"] = plan.spread_merge;
  r["row_blocks"] = plan.row_blocks;
  r["groups"] = plan.groups;
  r["workspace_bytes"] = plan.ws_bytes;
  return r;
}

template <typename E>
int64_t Value(E e) {
  return static_cast<int64_t>(e);
}

}  // namespace

NB_MODULE(_ext, m) {
  using namespace jax_mea;
  m.doc() = "jax-mea native kernels (XLA FFI handlers)";
  m.def("cpu_targets", []() {
    nb::dict d;
    d[kAttentionTarget] = Capsule(JaxMeaAttentionCpu);
    d[kAttentionBackwardTarget] = Capsule(JaxMeaAttentionBackwardCpu);
    d[kKvConcatTarget] = Capsule(JaxMeaKvConcatCpu);
    d[kDecodeStepTarget] = Capsule(JaxMeaDecodeStepCpu);
    return d;
  });
  // backward: also the CUDA backward kernel (jax_mea/_ffi.py asks for it unless
  // JAX_MEA_CUDA_BACKWARD=0 at import; then XLA lowers every backward).
  m.def("cuda_targets", [](bool backward) {
    nb::dict d;
#ifdef JAX_MEA_WITH_CUDA
    d[kAttentionTarget] = Capsule(JaxMeaAttentionCuda);
    if (backward) d[kAttentionBackwardTarget] = Capsule(JaxMeaAttentionBackwardCuda);
    d[kKvConcatTarget] = Capsule(JaxMeaKvConcatCuda);
    d[kDecodeStepTarget] = Capsule(JaxMeaDecodeStepCuda);
#else
    (void)backward;
#endif
    return d;
  }, nb::arg("backward") = false);
  m.def("decode_plan", &DecodePlan, nb::arg("batch"), nb::arg("num_heads"),
        nb::arg("num_kv_heads"), nb::arg("q_len"), nb::arg("kv_capacity"),
        nb::arg("head_size"), nb::arg("v_head_size"), nb::arg("has_kv_lengths") = true,
        nb::arg("sm_count") = 132, nb::arg("compute_major") = 9, nb::arg("config") = 3,
        nb::arg("rows_per_block") = 16, nb::arg("tile_keys") = 128,
        nb::arg("ctas_per_sm") = 1, nb::arg("tma") = true, nb::arg("sm90_code") = true,
        nb::arg("key_bytes") = 512, nb::arg("cluster_slots") = nb::dict(),
        nb::arg("num_splits") = 0, nb::arg("balance") = true,
        nb::arg("cluster_merge") = true, nb::arg("spread_merge") = true,
        "The decode kernel's plan (kernels/decode_plan.h) for the given shapes and "
        "kernel / device facts (defaults: an H200 and the sm_90 TMA kernel at H128).");

  m.def("bwd_walk", &BwdWalkTiles, nb::arg("q_len"), nb::arg("kv_len"),
        nb::arg("query_offset"), nb::arg("nb"), nb::arg("hg_first") = 0, nb::arg("hg_end") = 1,
        nb::arg("is_causal") = false, nb::arg("left_window") = jax_mea::kUnboundedWindow,
        nb::arg("right_window") = jax_mea::kUnboundedWindow, nb::arg("mask_len") = -1,
        nb::arg("block_m") = 64, nb::arg("block_n") = 128,
        "The CUDA backward's query tiles for key block nb (kernels/bwd_walk.h): "
        "[(head of the group, query block, any.lo, any.hi, all.lo, all.hi)]; mask_len >= 0: "
        "a mask tensor of that many keys.");

  nb::dict targets;
  targets["attention"] = kAttentionTarget;
  targets["attention_bwd"] = kAttentionBackwardTarget;  // CUDA: only with the opt-in kernel
  targets["kv_concat"] = kKvConcatTarget;
  targets["decode_step"] = kDecodeStepTarget;
  m.attr("targets") = targets;

  nb::dict layouts;  // the layout attributes (params_from_ffi.h)
  layouts["BSNH"] = Value(Layout::kBSNH);
  layouts["BNSH"] = Value(Layout::kBNSH);
  layouts["PACKED_QKV"] = Value(Layout::kPackedQkv);  // a decode step's q only
  m.attr("layouts") = layouts;

  nb::dict mask_kinds;  // the mask_kind attribute (params.h)
  mask_kinds["NONE"] = Value(MaskKind::kNone);
  mask_kinds["BOOL"] = Value(MaskKind::kBool);
  mask_kinds["ADDITIVE"] = Value(MaskKind::kAdditive);
  m.attr("mask_kinds") = mask_kinds;

  nb::dict limits;  // workspace.h
  limits["decode_max_splits"] = kDecodeMaxSplits;
  limits["decode_max_rows_per_kv_head"] = kDecodeMaxRowsPerKvHead;
  limits["decode_workspace_cap"] = kDecodeWorkspaceCap;
  m.attr("limits") = limits;

  m.def("decode_workspace_bytes", &DecodeWorkspaceBound, nb::arg("batch"), nb::arg("num_heads"),
        nb::arg("num_kv_heads"), nb::arg("q_len"), nb::arg("v_head_size"),
        "Bytes of workspace a CUDA attention call asks XLA for: an upper bound from the\n"
        "shapes alone, 0 where the decode kernel never takes the call. A dimension < 0 is\n"
        "unknown (a symbolic batch): the cap, unless the known ones rule the kernel out.");

  // Python checks it when lowering for CUDA (the CPU kernel takes any head size).
  m.attr("cuda_max_head_size") = jax_mea::cuda::kMaxHeadSize;
  // The (HP, HVP) rows the CUDA backward kernel is compiled for.
  nb::list bwd_rows;
#define JAX_MEA_BWD_ROW(HP, HVP, FWD, DEC, DEC8, SIMT, BWD, SM90) \
  if (BWD) bwd_rows.append(nb::make_tuple(HP, HVP));
  JAX_MEA_HEAD_DIMS(JAX_MEA_BWD_ROW)
#undef JAX_MEA_BWD_ROW
  m.attr("cuda_backward_head_dims") = bwd_rows;
  m.def("attention_bwd_workspace_bytes", &AttentionBackwardWorkspaceBytes, nb::arg("batch"),
        nb::arg("num_heads"), nb::arg("num_kv_heads"), nb::arg("q_len"), nb::arg("kv_len"),
        nb::arg("head_size"), nb::arg("v_head_size"),
        "Bytes of workspace the CUDA backward kernel asks XLA for.");
#ifdef JAX_MEA_WITH_CUDA
  m.attr("built_with_cuda") = true;
#else
  m.attr("built_with_cuda") = false;
#endif
}
