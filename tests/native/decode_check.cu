// Checks and times the split-KV decode kernel (cuda/kernels/decode.h).
//
//   decode_check            correctness grid: GPU vs cpu::AttentionForward (the
//                           CPU kernel is the semantic model), fresh random inputs,
//                           output poisoned with NaN, K/V past kv_length set to NaN
//   decode_check --small    a reduced case set (for compute-sanitizer)
//   decode_check --bench    times the decode grid (bf16) and the device-to-device
//                           copy bandwidth in the same run
//   --filter A,B      with --bench: only the shapes named (e.g. "B1 S32768 N32/8 H64/64"),
//                     each swept over configurations and splits, then a table
//   --trace           with --bench --filter, in a build with -DJAX_MEA_DECODE_TRACE:
//                     where each CTA's time goes (phase stamps, decode_common.cuh)
//   --append          with --bench: every call is a model's decode step, which
//                     appends one token per sequence (the fused append) at the
//                     last position before it attends causally
//   --pollute         with --bench: before every timed call a kernel of 192 KB of
//                     code that prefers L1 to shared memory runs on every SM, as a
//                     model's other kernels do between two attention calls (cold
//                     instruction caches, the shared-memory carve-out to change)
//   --seed N                fixes the random inputs (default: from the clock)
//
// Every case is also compared with the float64 reference (reference64.h).
// Built with -DJAX_MEA_NATIVE_TESTS=ON (tests/native/CMakeLists.txt). Exit status:
// 0 when every case passes.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_types.h"
#include "cpu/kernels.h"
#include "jax_mea/params.h"
#include "jax_mea/workspace.h"
#include "kernels/decode.h"
#include "check_common.h"
#include "reference64.h"

using namespace jax_mea;
using namespace jax_mea::check;

namespace {

// ------------------------------------------------------------------ host element helpers

void HostStore(DType t, void* base, int64_t i, float x) {
  switch (t) {
    case DType::kFloat32: static_cast<float*>(base)[i] = x; break;
    case DType::kFloat16: static_cast<cpu::Half*>(base)[i] = cpu::FromFloat<cpu::Half>(x); break;
    case DType::kBFloat16:
      static_cast<cpu::BFloat16*>(base)[i] = cpu::FromFloat<cpu::BFloat16>(x);
      break;
  }
}


// ------------------------------------------------------------------ a case

struct Case {
  std::string name;
  DType dtype = DType::kBFloat16;
  int B = 2, Nq = 32, Nkv = 8, T = 1, cap = 1037, H = 128, Hv = 128;
  std::vector<int> lens;  // empty: null (every batch full)
  bool q_bnsh = false, kv_bnsh = true, out_bnsh = false;
  bool causal = false;
  bool per_batch_offset = false;  // offset(b) = lens[b] - T + offset_delta
  int offset = 0;                 // scalar offset, or delta with per_batch_offset
  int left = kUnboundedWindow, right = kUnboundedWindow;
  float softcap = 0.f;
  MaskKind mask = MaskKind::kNone;
  bool mb = false, mh = false, mq = false;  // mask has full batch / head / q dims
  int mask_len = 0;
  double mask_false = 0.3;       // bool: P(False); additive: P(-inf)
  double mask_dead_rows = 0.0;   // fraction of mask rows entirely masked
  int splits = 0;                // 0: auto
  bool simt = false;
  int config = -1;               // MMA kernel configuration, -1: default
  int fused = -1;                // fused combine: -1 default, 0 separate kernel
  bool own_ws = false;           // pass a workspace of DecodeWorkspaceBytes (auto splits only)
  size_t xla_ws = 0;             // > 0: pass a workspace of this many bytes (the XLA path)
  bool balanced = false;         // the plan must balance splits by the rows' lengths
  int cluster = -1;              // cluster merge: -1 where it applies, 0 never
  bool must_cluster = false;     // the plan must merge in clusters (on sm_90)
  int spread = -1;               // spread merge: -1 where it applies, 0 never
  int want_spread = -1;          // the plan must spread the merge (1, on sm_90) or not (0)
  // A decode step (the fused append): the call writes the T new tokens of each row
  // at positions [lens[b] - T, lens[b]), which hold NaN before it, and attends
  // causally with the starts lens[b] - T as offsets. Needs lens and causal.
  bool append = false;
};

// The workspace the XLA path asks for (the bound of jax_mea/workspace.h).
size_t XlaWorkspaceBound(const Case& c) {
  return static_cast<size_t>(DecodeWorkspaceBound(c.B, c.Nq, c.Nkv, c.T, c.Hv));
}

Layout LayoutOf(bool bnsh) { return bnsh ? kBNSH : kBSNH; }

// The append of a decode step into p's cache (as MakeDecodeStepParams builds it):
// T new tokens per sequence, K and V each [B, T, Nkv, H | Hv] (BSNH). The caller
// sets the pointers and the starts.
KvCopyParams StepAppend(const AttentionParams& p, int T) {
  KvCopyParams a;
  a.dtype = p.dtype;
  a.batch = p.batch;
  a.num_kv_heads = p.num_kv_heads;
  a.head_size = p.head_size;
  a.v_head_size = p.v_head_size;
  a.num_new = T;
  a.dst_capacity = p.kv_capacity;
  a.new_k_strides = Strides(kBSNH, p.num_kv_heads, T, p.head_size);
  a.new_v_strides = Strides(kBSNH, p.num_kv_heads, T, p.v_head_size);
  a.dst_k_strides = p.k_strides;
  a.dst_v_strides = p.v_strides;
  return a;
}

struct Result {
  bool pass = false;
  double rel = 0, max_abs = 0;
  int splits = 0;
  std::string plan;  // the kernel that ran (DecodePlanString)
  std::string why;
};

Result RunCase(const Case& c, std::mt19937_64& rng) {
  Result res;
  const size_t eb = DTypeBytes(c.dtype);
  const int64_t nq = static_cast<int64_t>(c.B) * c.Nq * c.T * c.H;
  const int64_t nk = static_cast<int64_t>(c.B) * c.Nkv * c.cap * c.H;
  const int64_t nv = static_cast<int64_t>(c.B) * c.Nkv * c.cap * c.Hv;
  const int64_t no = static_cast<int64_t>(c.B) * c.Nq * c.T * c.Hv;
  std::vector<unsigned char> hq(nq * eb), hk(nk * eb), hv(nv * eb), ho(no * eb), hg(no * eb);
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  for (int64_t i = 0; i < nq; ++i) HostStore(c.dtype, hq.data(), i, 2.f * uni(rng));
  for (int64_t i = 0; i < nk; ++i) HostStore(c.dtype, hk.data(), i, uni(rng));
  for (int64_t i = 0; i < nv; ++i) HostStore(c.dtype, hv.data(), i, uni(rng));

  AttentionParams p = ShapeParams(c.dtype, c.B, c.Nq, c.Nkv, c.T, c.cap, c.H, c.Hv,
                                  LayoutOf(c.q_bnsh), LayoutOf(c.kv_bnsh), LayoutOf(c.out_bnsh));
  p.is_causal = c.causal;
  p.left_window = c.left;
  p.right_window = c.right;
  p.softcap = c.softcap;

  // K/V at positions >= kv_length: NaN (never to be read or used).
  std::vector<int32_t> lens(c.lens.begin(), c.lens.end());
  if (!lens.empty()) {
    for (int b = 0; b < c.B; ++b) {
      const int len = std::max(0, std::min(lens[b], c.cap));
      for (int h = 0; h < c.Nkv; ++h) {
        for (int j = len; j < c.cap; ++j) {
          for (int d = 0; d < c.H; ++d) {
            HostStore(c.dtype, hk.data(),
                      b * p.k_strides.batch + h * p.k_strides.head + j * p.k_strides.seq + d, NAN);
          }
          for (int d = 0; d < c.Hv; ++d) {
            HostStore(c.dtype, hv.data(),
                      b * p.v_strides.batch + h * p.v_strides.head + j * p.v_strides.seq + d, NAN);
          }
        }
      }
    }
  }
  std::vector<int32_t> offsets;
  if (c.per_batch_offset) {
    for (int b = 0; b < c.B; ++b) offsets.push_back((lens.empty() ? c.cap : lens[b]) - c.T + c.offset);
  }
  p.causal_offset = c.per_batch_offset ? 0 : c.offset;

  // A decode step: the new tokens [B, T, Nkv, H | Hv] (BSNH); the device cache keeps
  // the NaN above, the host's gets the tokens (the state the call must leave).
  // The lengths become the starts, with the bias T (as MakeDecodeStepParams).
  const int64_t nnk = static_cast<int64_t>(c.B) * c.T * c.Nkv * c.H;
  const int64_t nnv = static_cast<int64_t>(c.B) * c.T * c.Nkv * c.Hv;
  std::vector<unsigned char> hnk(c.append ? nnk * eb : 0), hnv(c.append ? nnv * eb : 0);
  std::vector<unsigned char> hk_dev = hk, hv_dev = hv;
  KvCopyParams step;
  if (c.append) {
    for (int64_t i = 0; i < nnk; ++i) HostStore(c.dtype, hnk.data(), i, uni(rng));
    for (int64_t i = 0; i < nnv; ++i) HostStore(c.dtype, hnv.data(), i, uni(rng));
    step = StepAppend(p, c.T);
    for (int b = 0; b < c.B; ++b) {
      lens[b] -= c.T;  // the start
      for (int h = 0; h < c.Nkv; ++h) {
        for (int t = 0; t < c.T && lens[b] + t < c.cap; ++t) {
          const int64_t j = lens[b] + t;
          const int64_t dk_at = b * p.k_strides.batch + h * p.k_strides.head + j * p.k_strides.seq;
          const int64_t dv_at = b * p.v_strides.batch + h * p.v_strides.head + j * p.v_strides.seq;
          for (int d = 0; d < c.H; ++d) HostStore(c.dtype, hk_dev.data(), dk_at + d, NAN);
          for (int d = 0; d < c.Hv; ++d) HostStore(c.dtype, hv_dev.data(), dv_at + d, NAN);
          const int64_t sk = b * step.new_k_strides.batch + h * step.new_k_strides.head + t * step.new_k_strides.seq;
          const int64_t sv = b * step.new_v_strides.batch + h * step.new_v_strides.head + t * step.new_v_strides.seq;
          std::memcpy(&hk[dk_at * eb], &hnk[sk * eb], c.H * eb);
          std::memcpy(&hv[dv_at * eb], &hnv[sv * eb], c.Hv * eb);
        }
      }
    }
    p.kv_length_bias = c.T;
  }

  // Mask [B|1, Nq|1, T|1, mask_len].
  std::vector<unsigned char> hm;
  if (c.mask != MaskKind::kNone) {
    const int mB = c.mb ? c.B : 1, mH = c.mh ? c.Nq : 1, mQ = c.mq ? c.T : 1;
    const int L = c.mask_len;
    const int64_t rows = static_cast<int64_t>(mB) * mH * mQ;
    const size_t mel = c.mask == MaskKind::kBool ? 1 : eb;
    hm.resize(rows * L * mel);
    std::uniform_real_distribution<double> u01(0.0, 1.0);
    for (int64_t r = 0; r < rows; ++r) {
      const bool dead = u01(rng) < c.mask_dead_rows;
      for (int j = 0; j < L; ++j) {
        const bool off = dead || u01(rng) < c.mask_false;
        if (c.mask == MaskKind::kBool) {
          hm[r * L + j] = off ? 0 : 1;
        } else {
          HostStore(c.dtype, hm.data(), r * L + j, off ? -INFINITY : -2.f * static_cast<float>(u01(rng)));
        }
      }
    }
    p.mask_kind = c.mask;
    p.mask_len = L;
    p.mask_q_stride = mQ == 1 ? 0 : L;
    p.mask_head_stride = mH == 1 ? 0 : static_cast<int64_t>(mQ) * L;
    p.mask_batch_stride = mB == 1 ? 0 : static_cast<int64_t>(mH) * mQ * L;
  }

  // Device copies (exact sizes: compute-sanitizer sees any overrun).
  DevBuf dq(hq.size()), dk(hk.size()), dv(hv.size()), dout(ho.size()), dm(hm.size()),
      dl(lens.size() * 4), doff(offsets.size() * 4), dnk(hnk.size()), dnv(hnv.size());
  CHECK_CUDA(cudaMemcpy(dq.ptr, hq.data(), hq.size(), cudaMemcpyHostToDevice));
  if (!hk.empty()) CHECK_CUDA(cudaMemcpy(dk.ptr, hk_dev.data(), hk.size(), cudaMemcpyHostToDevice));
  if (!hv.empty()) CHECK_CUDA(cudaMemcpy(dv.ptr, hv_dev.data(), hv.size(), cudaMemcpyHostToDevice));
  if (c.append) {
    CHECK_CUDA(cudaMemcpy(dnk.ptr, hnk.data(), hnk.size(), cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(dnv.ptr, hnv.data(), hnv.size(), cudaMemcpyHostToDevice));
  }
  if (!hm.empty()) CHECK_CUDA(cudaMemcpy(dm.ptr, hm.data(), hm.size(), cudaMemcpyHostToDevice));
  if (!lens.empty()) CHECK_CUDA(cudaMemcpy(dl.ptr, lens.data(), lens.size() * 4, cudaMemcpyHostToDevice));
  if (!offsets.empty()) {
    CHECK_CUDA(cudaMemcpy(doff.ptr, offsets.data(), offsets.size() * 4, cudaMemcpyHostToDevice));
  }
  CHECK_CUDA(cudaMemset(dout.ptr, 0xff, ho.size()));  // NaN in every dtype

  AttentionParams pd = p;
  pd.q = dq.ptr;
  pd.k = dk.ptr;
  pd.v = dv.ptr;
  pd.out = dout.ptr;
  pd.mask = c.mask == MaskKind::kNone ? nullptr : dm.ptr;
  pd.kv_lengths = lens.empty() ? nullptr : static_cast<const int32_t*>(dl.ptr);
  pd.causal_offsets = offsets.empty() ? nullptr : static_cast<const int32_t*>(doff.ptr);
  cuda::DecodeOptions opt;
  // The step's overflow flags: every third row set before (the call never clears
  // one), the others set where start + T runs past the capacity.
  std::vector<unsigned char> flags_before(c.B), flags_want(c.B), flags_got(c.B);
  DevBuf dflags(c.append ? c.B : 0);
  if (c.append) {
    for (int b = 0; b < c.B; ++b) {
      flags_before[b] = b % 3 == 2;
      flags_want[b] = flags_before[b] || static_cast<int64_t>(lens[b]) + c.T > c.cap;
    }
    CHECK_CUDA(cudaMemcpy(dflags.ptr, flags_before.data(), c.B, cudaMemcpyHostToDevice));
    step.overflowed = static_cast<bool*>(dflags.ptr);
    step.new_k = dnk.ptr;
    step.new_v = dnv.ptr;
    step.dst_k = dk.ptr;
    step.dst_v = dv.ptr;
    step.dst_starts = static_cast<const int32_t*>(dl.ptr);
    opt.append = &step;
  }
  opt.num_splits = c.splits;
  opt.force_simt = c.simt;
  opt.config = c.config;
  opt.fused_combine = c.fused;
  opt.cluster_merge = c.cluster;
  opt.spread_merge = c.spread;
  res.splits = cuda::DecodeNumSplits(pd, opt);
  res.plan = cuda::DecodePlanString(pd, opt);
  // A configuration-3 case must run the TMA kernel where the device has it (sm_90),
  // not pass on its cp.async fallback.
  int major = 0;
  CHECK_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0));
  const bool tma_fell_back = c.config == 3 && major >= 9 && !c.simt &&
                             res.plan.find("(no tensor map)") != std::string::npos;
  const bool not_balanced = c.balanced && res.plan.find("balanced") == std::string::npos;
  const bool in_cluster = res.plan.find(" cluster") != std::string::npos;
  const bool cluster_wrong = (c.must_cluster && major >= 9 && !in_cluster) ||
                             (c.cluster == 0 && in_cluster);
  const bool in_spread = res.plan.find(" spread") != std::string::npos;
  const bool spread_wrong = (c.want_spread == 1 && major >= 9 && !in_spread) ||
                            ((c.want_spread == 0 || c.spread == 0) && in_spread);
  DevBuf ws(c.own_ws ? cuda::DecodeWorkspaceBytes(pd) : c.xla_ws);
  if (c.own_ws || c.xla_ws > 0) {
    CHECK_CUDA(cudaMemset(ws.ptr, 0xff, ws.bytes));  // garbage, as from an allocator
    opt.workspace = ws.ptr;
    opt.workspace_bytes = ws.bytes;
  }
  cudaError_t err = cuda::LaunchDecodeAttention(pd, 0, opt);
  if (err == cudaSuccess) err = cudaDeviceSynchronize();
  if (err != cudaSuccess) {
    res.why = std::string("launch: ") + cudaGetErrorString(err);
    return res;
  }
  CHECK_CUDA(cudaMemcpy(hg.data(), dout.ptr, hg.size(), cudaMemcpyDeviceToHost));
  bool cache_wrong = false;  // a decode step leaves the cache with its tokens, nothing else changed
  if (c.append) {
    CHECK_CUDA(cudaMemcpy(hk_dev.data(), dk.ptr, hk.size(), cudaMemcpyDeviceToHost));
    CHECK_CUDA(cudaMemcpy(hv_dev.data(), dv.ptr, hv.size(), cudaMemcpyDeviceToHost));
    CHECK_CUDA(cudaMemcpy(flags_got.data(), dflags.ptr, c.B, cudaMemcpyDeviceToHost));
    cache_wrong = hk_dev != hk || hv_dev != hv;
  }
  const bool flags_wrong = flags_got != flags_want;

  AttentionParams ph = p;
  ph.q = hq.data();
  ph.k = hk.data();
  ph.v = hv.data();
  ph.out = ho.data();
  ph.mask = c.mask == MaskKind::kNone ? nullptr : hm.data();
  ph.kv_lengths = lens.empty() ? nullptr : lens.data();
  ph.causal_offsets = offsets.empty() ? nullptr : offsets.data();
  cpu::AttentionForward(ph);

  double num = 0, den = 0, max_abs = 0, ref_max = 0;
  int64_t nan_count = 0, dead_bad = 0, ref_nan = 0;
  for (int b = 0; b < c.B; ++b) {
    for (int h = 0; h < c.Nq; ++h) {
      for (int i = 0; i < c.T; ++i) {
        const int64_t base = b * p.out_strides.batch + h * p.out_strides.head + i * p.out_strides.seq;
        bool ref_zero = true;
        for (int d = 0; d < c.Hv; ++d) ref_zero = ref_zero && HostValue(c.dtype, ho.data(), base + d) == 0.f;
        for (int d = 0; d < c.Hv; ++d) {
          const double r = HostValue(c.dtype, ho.data(), base + d);
          const double g = HostValue(c.dtype, hg.data(), base + d);
          if (std::isnan(r)) {
            ++ref_nan;
            continue;
          }
          if (std::isnan(g) || std::isinf(g)) {
            ++nan_count;
            continue;
          }
          if (ref_zero && g != 0.0) ++dead_bad;
          num += (g - r) * (g - r);
          den += r * r;
          max_abs = std::max(max_abs, std::fabs(g - r));
          ref_max = std::max(ref_max, std::fabs(r));
        }
      }
    }
  }
  res.rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  res.max_abs = max_abs;
  const double tol = c.dtype == DType::kFloat32 ? 2e-5 : c.dtype == DType::kFloat16 ? 3e-3 : 1.2e-2;
  const std::vector<double> ref64 = Reference64(ph);
  const Diff64 gpu64 = Compare64(ph, hg.data(), ref64), cpu64 = Compare64(ph, ho.data(), ref64);
  const bool far64 = gpu64.max_abs > MaxAbs64(c.dtype) || gpu64.rel > Rel64(c.dtype) ||
                     cpu64.max_abs > MaxAbs64(c.dtype) || cpu64.rel > Rel64(c.dtype);
  if (far64) {
    char buf[96];
    std::snprintf(buf, sizeof buf, " f64: gpu %.1e/%.1e cpu %.1e/%.1e", gpu64.rel, gpu64.max_abs,
                  cpu64.rel, cpu64.max_abs);
    res.why += buf;
  }
  const bool max_abs_ok = MaxAbsOk(max_abs, ref_max, tol);
  res.pass = !far64 && nan_count == 0 && dead_bad == 0 && ref_nan == 0 && res.rel <= tol &&
             max_abs_ok && !tma_fell_back && !not_balanced && !cluster_wrong && !spread_wrong &&
             !cache_wrong && !flags_wrong;
  if (cache_wrong) res.why += " cache-not-appended";
  if (flags_wrong) res.why += " overflow-flags";
  if (tma_fell_back) res.why += " tma-not-used";
  if (not_balanced) res.why += " not-balanced";
  if (cluster_wrong) res.why += c.cluster == 0 ? " cluster-not-off" : " cluster-not-used";
  if (spread_wrong) res.why += in_spread ? " spread-not-off" : " spread-not-used";
  if (ref_nan) res.why += " reference-nan=" + std::to_string(ref_nan);
  if (nan_count) res.why += " nan/inf=" + std::to_string(nan_count);
  if (dead_bad) res.why += " nonzero-in-masked-rows=" + std::to_string(dead_bad);
  if (res.rel > tol) res.why += " rel>" + std::to_string(tol);
  if (!max_abs_ok) res.why += " max_abs>" + std::to_string(kMaxAbsFactor * tol) + "*max|ref|";
  return res;
}

std::string Describe(const Case& c) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "%s %s B%d N%d/%d T%d cap%d H%d/%d q%s kv%s o%s%s%s%s%s%s%s%s sp%d%s cfg%d%s%s%s%s", c.name.c_str(),
                DTypeName(c.dtype), c.B, c.Nq, c.Nkv, c.T, c.cap, c.H, c.Hv, c.q_bnsh ? "BNSH" : "BSNH",
                c.kv_bnsh ? "BNSH" : "BSNH", c.out_bnsh ? "BNSH" : "BSNH", c.lens.empty() ? "" : " lens",
                c.causal ? (c.per_batch_offset ? " causal(offs)" : " causal") : "",
                c.left != kUnboundedWindow ? (" L" + std::to_string(c.left)).c_str() : "",
                c.right != kUnboundedWindow ? (" R" + std::to_string(c.right)).c_str() : "",
                c.softcap > 0 ? " softcap" : "",
                c.mask == MaskKind::kBool ? " boolmask" : c.mask == MaskKind::kAdditive ? " addmask" : "",
                c.mask != MaskKind::kNone ? (" mlen" + std::to_string(c.mask_len)).c_str() : "",
                c.splits, c.simt ? " simt" : "", c.config, c.fused == 0 ? " sepcombine" : "", c.own_ws ? " ownws" : "",
                c.cluster == 0 ? " nocluster" : "", c.spread == 0 ? " nospread" : "");
  return c.append ? std::string(buf) + " append" : std::string(buf);
}

// Applies feature set f (0..7) to a case.
void ApplyFeature(Case& c, int f) {
  const int cap = c.cap;
  switch (f) {
    case 0:
      break;
    case 1:  // causal, per-batch bottom-right offsets (kv length - q_len)
      c.causal = true;
      c.per_batch_offset = true;
      break;
    case 2:  // sliding window + causal
      c.causal = true;
      c.per_batch_offset = true;
      c.left = 100;
      break;
    case 3:  // softcap, scalar causal offset past the end
      c.softcap = 2.0f;
      c.causal = true;
      c.offset = cap;
      break;
    case 4:  // bool mask [B, 1, 1, L] with a short last dim
      c.mask = MaskKind::kBool;
      c.mb = true;
      c.mask_len = std::max(1, cap - 337);
      break;
    case 5:  // additive mask [1, Nq, T, L] with -inf and dead rows
      c.mask = MaskKind::kAdditive;
      c.mh = true;
      c.mq = true;
      c.mask_len = std::max(1, cap / 2 + 3);
      c.mask_false = 0.2;
      c.mask_dead_rows = 0.25;
      break;
    case 6:  // BSNH k/v, BNSH q/out, causal one key short of bottom-right, left window
      c.kv_bnsh = false;
      c.q_bnsh = true;
      c.out_bnsh = true;
      c.causal = true;
      c.per_batch_offset = true;
      c.offset = -1;
      c.left = 300;
      break;
    case 7:  // full bool mask with dead rows + causal, window both sides
      c.mask = MaskKind::kBool;
      c.mb = c.mh = c.mq = true;
      c.mask_len = cap;
      c.mask_dead_rows = 0.2;
      c.per_batch_offset = true;
      c.offset = -300;
      c.left = 400;
      c.right = 200;
      break;
  }
}

// Decode steps (Case::append) over the fused append's paths: new tokens staged in
// 16-byte chunks (T = 1, 2, 4; T = 2 across a 16-key slot and across a tile) or
// copied by AppendNewRows (T = 9 at H128: wider than the CTA's chunks; simt;
// float32), TMA and cp.async configurations, split or not. The appended rows
// hold NaN before the call, so a tile read before their store shows.
std::vector<Case> AppendCases(bool small) {
  std::vector<Case> cases;
  Case c;
  c.append = true;
  c.causal = c.per_batch_offset = true;
  c.B = 3;
  c.Nq = 8;
  c.Nkv = 2;
  c.cap = 1037;
  const int hs[4][2] = {{128, 128}, {64, 64}, {128, 64}, {64, 128}};
  int idx = 0;
  for (auto& hh : hs) {
    for (int T : {1, 2, 4}) {
      for (int config : {3, -1, 0}) {
        for (int splits : {0, 3}) {
          if (small && (idx++ % 5) != 0) continue;
          c.name = "append";
          c.H = hh[0];
          c.Hv = hh[1];
          c.T = T;
          // T = 1: the row's last key, a tile's first key, a slot's last key; T = 2
          // across a tile (127, 128) and across a slot (15, 16).
          c.lens = T == 2 ? std::vector<int>{1037, 129, 17} : std::vector<int>{1037, 129, 16};
          c.config = config;
          c.splits = splits;
          c.dtype = config == 0 ? DType::kFloat16 : DType::kBFloat16;
          cases.push_back(c);
        }
      }
    }
  }
  c.name = "append-wide";  // T x (H + Hv) past the CTA's 16-byte chunks: AppendNewRows
  c.H = c.Hv = 128;
  c.T = 9;
  c.lens = {1037, 129, 16};
  c.config = 3;
  c.splits = 0;
  cases.push_back(c);
  c.name = "append-overflow";  // row 0's last 3 tokens past the capacity: dropped, flagged
  c.T = 4;
  c.lens = {1040, 129, 1037};
  cases.push_back(c);
  c.name = "append-overflow-split";  // row 1 this time, its partials merged from the workspace
  c.lens = {129, 1039, 1037};
  c.splits = 3;
  c.cluster = 0;
  cases.push_back(c);
  c.splits = 0;
  c.cluster = -1;
  c.name = "append-simt";
  c.H = c.Hv = 64;
  c.T = 1;
  c.lens = {1037, 129, 16};
  c.config = -1;
  c.splits = 0;
  c.simt = true;
  cases.push_back(c);
  c.name = "append-f32";
  c.dtype = DType::kFloat32;
  c.simt = false;
  cases.push_back(c);
  c.name = "append-window-softcap";
  c.dtype = DType::kBFloat16;
  c.H = c.Hv = 128;
  c.left = 100;
  c.softcap = 2.f;
  cases.push_back(c);
  return cases;
}

// Feature set f on the three-row case of the feature grids (rows of 2111, 1500
// and 7 keys; q_len 4 for odd f).
Case FeatureCase(const std::string& name, int f) {
  Case c;
  c.name = name + std::to_string(f);
  c.B = 3;
  c.cap = 2111;
  c.lens = {2111, 1500, 7};
  c.T = f % 2 ? 4 : 1;
  ApplyFeature(c, f);
  return c;
}

std::vector<Case> BuildCases(bool small) {
  std::vector<Case> cases;
  const DType dtypes[] = {DType::kBFloat16, DType::kFloat16, DType::kFloat32};
  const int hs[][2] = {{64, 64}, {128, 128}, {256, 256}, {192, 128}, {80, 80}, {24, 8}};
  const int heads[][2] = {{32, 8}, {32, 32}, {64, 8}, {8, 1}};
  const int split_modes[] = {0, 1, 5};
  int idx = 0;
  if (!small) {
    for (DType dt : dtypes) {
      for (auto& hh : hs) {
        for (auto& nn : heads) {
          for (int T : {1, 4}) {
            Case c;
            c.name = "grid" + std::to_string(idx);
            c.dtype = dt;
            c.H = hh[0];
            c.Hv = hh[1];
            c.Nq = nn[0];
            c.Nkv = nn[1];
            c.T = T;
            c.B = 4;
            c.cap = 1037;
            const int lens_sets[4][4] = {
                {1037, 1000, 1, 0}, {0, 1037, 1000, 1}, {1, 0, 1037, 1000}, {1000, 1, 0, 1037}};
            if (idx % 5 != 4) c.lens.assign(lens_sets[idx % 4], lens_sets[idx % 4] + 4);
            ApplyFeature(c, (idx + idx / 2) % 8);
            c.splits = split_modes[(idx / 3) % 3];
            c.simt = dt != DType::kFloat32 && idx % 7 == 3;
            c.config = idx % 5 - 1;
            c.fused = (idx / 4) % 2 - 1;
            cases.push_back(c);
            ++idx;
          }
        }
      }
    }
    // Every feature on the headline shape, with several split counts.
    for (int f = 0; f < 8; ++f) {
      for (int sp : {0, 1, 3, 64}) {
        Case c = FeatureCase("feat", f);
        c.splits = sp;
        c.config = (f + sp) % 5 - 1;
        c.fused = (f + sp / 3) % 2 - 1;
        cases.push_back(c);
      }
    }
    // Window sizes read literally: right -1 drops the diagonal; a negative left
    // keeps only keys ahead of the query (its last row sees none).
    for (int sp : {0, 3}) {
      Case c = FeatureCase("win-neg", 0);
      c.name += "-sp" + std::to_string(sp);
      c.splits = sp;
      c.per_batch_offset = true;
      c.left = 500;
      c.right = -1;
      cases.push_back(c);
      c.name += "-ahead";
      c.T = 4;
      c.offset = -1000;
      c.left = -2;
      c.right = 900;
      cases.push_back(c);
    }
    // Special shapes.
    {
      Case c; c.name = "long-b1"; c.B = 1; c.cap = 32768; c.lens = {30001}; cases.push_back(c);
      c.name = "long-b1-causal"; c.causal = true; c.per_batch_offset = true; c.T = 4; cases.push_back(c);
      c.name = "long-b1-f16-mha"; c.dtype = DType::kFloat16; c.Nkv = 32; c.T = 1; cases.push_back(c);
      c.name = "long-b1-own-ws"; c.dtype = DType::kBFloat16; c.Nkv = 8; c.causal = false;
      c.per_batch_offset = false; c.own_ws = true; c.cluster = 0; cases.push_back(c);  // uses it
      c.name = "b3-own-ws-mask"; c.cluster = -1; c.B = 3; c.cap = 2111; c.lens = {2111, 1500, 7}; ApplyFeature(c, 5);
      cases.push_back(c);
    }
    // The TMA configuration (3) on its own: partial last tiles, BSNH k/v, columns
    // past H inside a 64-wide box (H 96), H 192/128, every feature, forced splits.
    for (int f = 0; f < 8; ++f) {
      for (auto hh : {std::array<int, 2>{128, 128}, {96, 96}, {192, 128}, {64, 64}}) {
        Case c = FeatureCase("tma-feat", f);
        c.name += "-h" + std::to_string(hh[0]);
        c.H = hh[0];
        c.Hv = hh[1];
        c.splits = f % 3 == 0 ? 0 : (f % 3 == 1 ? 1 : 5);
        c.config = 3;
        c.fused = f % 2 - 1;
        cases.push_back(c);
      }
    }
    {
      Case c; c.name = "tma-long-b1"; c.B = 1; c.cap = 32768; c.lens = {30001}; c.config = 3;
      cases.push_back(c);
      c.name = "tma-long-b1-f16-bsnh"; c.dtype = DType::kFloat16; c.kv_bnsh = false; cases.push_back(c);
    }
    // Balanced splits: rows of different lengths (empty, one key, full), of one
    // length, both combines, SIMT, q_len 4 causal, other head sizes, own workspace.
    {
      Case c; c.name = "bal-ragged"; c.B = 8; c.cap = 16500; c.balanced = true;
      c.lens = {16500, 100, 0, 16384, 3000, 1, 2048, 9000};
      cases.push_back(c);
      c.name = "bal-ragged-sepcombine"; c.fused = 0; cases.push_back(c);
      c.name = "bal-ragged-simt"; c.fused = -1; c.simt = true; cases.push_back(c);
      c.name = "bal-ragged-causal-t4"; c.simt = false; c.T = 4; c.causal = true;
      c.per_batch_offset = true; cases.push_back(c);
      c.name = "bal-ragged-f16-bsnh-h64"; c.T = 1; c.causal = false; c.per_batch_offset = false;
      c.dtype = DType::kFloat16; c.kv_bnsh = false; c.H = c.Hv = 64; cases.push_back(c);
      c.name = "bal-ragged-h192-own-ws"; c.dtype = DType::kBFloat16; c.kv_bnsh = true; c.H = 192;
      c.Hv = 128; c.own_ws = true; cases.push_back(c);
      c.name = "bal-ragged-cfg2"; c.H = c.Hv = 128; c.own_ws = false; c.config = 2; cases.push_back(c);
      c.name = "bal-uniform"; c.config = -1; c.lens.assign(8, 12000); cases.push_back(c);
      c.name = "bal-uniform-sepcombine"; c.fused = 0; cases.push_back(c);
      c.name = "bal-b16-ragged"; c.fused = -1; c.B = 16; c.cap = 32768;
      c.lens = {32768, 1024, 5000, 1100, 7000, 2000, 1500, 1024, 3000, 8000, 1200, 1300, 4000, 1024, 1, 25000};
      cases.push_back(c);
    }
    // Workspaces as XLA hands them to the FFI handler (garbage): jax_mea/primitives.py's
    // bound, and one too short for the plan (fewer splits).
    {
      Case c; c.name = "xla-ws-balanced"; c.B = 8; c.cap = 16500; c.balanced = true;
      c.lens = {16500, 100, 0, 16384, 3000, 1, 2048, 9000}; c.xla_ws = XlaWorkspaceBound(c);
      cases.push_back(c);
      // (The cluster merge off: it needs no workspace.)
      c.name = "xla-ws-b1-long"; c.B = 1; c.cap = 32768; c.lens = {30001}; c.balanced = false;
      c.cluster = 0; c.xla_ws = XlaWorkspaceBound(c); cases.push_back(c);
      c.name = "xla-ws-short"; c.xla_ws = 3 * 32 * 130 * 4 + 512; cases.push_back(c);
      // 8 groups x 16 splits do not fit the clusters the GPU runs: through the short
      // workspace, with fewer splits, even with the cluster merge allowed.
      c.name = "xla-ws-short-cluster-allowed"; c.cluster = -1; cases.push_back(c);
      c.name = "xla-ws-b1-h64-t4"; c.must_cluster = false; c.H = c.Hv = 64; c.T = 4; c.Nq = 8; c.Nkv = 2; c.causal = true;
      c.cap = 9000; c.lens = {8999}; c.xla_ws = XlaWorkspaceBound(c); cases.push_back(c);
    }
    // Cluster merge (sm_90): the splits of a group merge in shared memory. Six
    // groups of up to 16 splits (96 CTAs) fit the clusters an H100 runs at once
    // (1 CTA per SM: 7 of 16, 15 of 8, 22 of 5), so the plan must take it. Every
    // feature, both kernel configurations, head sizes, empty rows, and the same
    // cases with it turned off.
    for (int f = 0; f < 8; ++f) {
      for (int sp : {2, 5, 8, 16}) {
        for (int off = 0; off < 2; ++off) {
          Case c = FeatureCase(off ? "nocl-feat" : "cl-feat", f);
          c.Nq = 8;
          c.Nkv = 2;
          c.lens.back() = 0;
          c.splits = sp;
          c.config = (f + sp) % 2 ? 3 : 0;
          if (f == 3) c.H = c.Hv = 64;
          if (f == 6) { c.H = 192; c.Hv = 128; c.config = 3; }
          if (f == 7) c.dtype = DType::kFloat16;
          c.cluster = off ? 0 : -1;
          c.must_cluster = !off;
          cases.push_back(c);
        }
      }
    }
    {
      Case c; c.name = "cl-b1-s1024"; c.B = 1; c.cap = 1024; c.must_cluster = true; cases.push_back(c);
      c.name = "cl-b8-s1024"; c.B = 8; c.must_cluster = false; cases.push_back(c);  // 2 splits
      c.name = "cl-b1-s1024-rows32"; c.B = 1; c.must_cluster = true; c.Nq = 32; c.Nkv = 2; c.T = 2; cases.push_back(c);
      c.name = "cl-b1-long"; c.Nkv = 8; c.cap = 32768; c.lens = {30001}; c.must_cluster = false;
      cases.push_back(c);
      c.name = "cl-b1-long-h64-causal-t4"; c.H = c.Hv = 64; c.T = 4; c.causal = true;
      c.per_batch_offset = true; cases.push_back(c);
      c.name = "cl-all-empty"; c.T = 1; c.causal = false; c.per_batch_offset = false; c.cap = 1037;
      c.lens = {0, 0}; c.B = 2; c.splits = 4; c.must_cluster = true; cases.push_back(c);
    }
    {
      // The spread merge: 4 groups x 33 splits, every CTA resident at once (132 SMs).
      Case c; c.name = "spread-b1-long"; c.B = 1; c.Nq = 16; c.Nkv = 4; c.cap = 32768 + 32;
      c.lens = {30001}; c.want_spread = 1; cases.push_back(c);
      c.name = "spread-b1-long-append"; c.lens = {32768}; c.append = true; c.causal = true;
      c.per_batch_offset = true; cases.push_back(c);
      c.name = "nospread-b1-long"; c.append = false; c.causal = false; c.per_batch_offset = false;
      c.lens = {30001}; c.want_spread = 0; c.spread = 0; cases.push_back(c);
      c.name = "spread-h64-t4-causal"; c.spread = -1; c.cluster = 0; c.want_spread = 1;
      c.H = c.Hv = 64; c.T = 4; c.causal = true; c.per_batch_offset = true; c.splits = 12;
      cases.push_back(c);
      c.name = "spread-h40-hv48-f16"; c.dtype = DType::kFloat16; c.H = 40; c.Hv = 48; c.T = 2;
      c.cap = 3001; c.lens = {2999}; c.splits = 24; cases.push_back(c);  // partials 37 KB
      // The SIMT and 4-warp kernels have no spread merge: their last CTA merges.
      c.name = "nospread-simt"; c.simt = true; c.want_spread = 0; cases.push_back(c);
      c.name = "nospread-cfg0"; c.simt = false; c.config = 0; cases.push_back(c);
      c.config = -1; c.want_spread = 1;
      c.name = "spread-empty-splits"; c.simt = false; c.dtype = DType::kBFloat16; c.H = c.Hv = 128;
      c.T = 1; c.causal = false; c.per_batch_offset = false; c.B = 2; c.cap = 1037;
      c.lens = {0, 100}; c.splits = 16; cases.push_back(c);
      // Partials under kSpreadMergeMinBytes (16 x 4 x 64 floats): the last CTA merges.
      c.name = "nospread-small-partials"; c.H = c.Hv = 64; c.want_spread = 0; cases.push_back(c);
    }
    {
      Case c; c.name = "rows16"; c.Nq = 8; c.Nkv = 2; c.T = 4; c.lens = {900, 1037}; cases.push_back(c);
      c.name = "rows32-2blocks"; c.Nq = 32; c.Nkv = 4; c.T = 4; c.causal = true; c.per_batch_offset = true;
      cases.push_back(c);
      c.name = "rows32-simt"; c.simt = true; cases.push_back(c);
      c.name = "q16-mha"; c.Nq = c.Nkv = 4; c.T = 16; c.simt = false; cases.push_back(c);
    }
    {
      Case c; c.name = "all-empty"; c.lens = {0, 0}; cases.push_back(c);
      c.name = "cap0"; c.cap = 0; c.lens.clear(); cases.push_back(c);
      c.name = "odd-heads-simt"; c.cap = 333; c.H = 20; c.Hv = 12; c.Nq = 6; c.Nkv = 3; c.T = 2;
      cases.push_back(c);
      c.name = "odd-heads-f16"; c.dtype = DType::kFloat16; c.H = 36; c.Hv = 44; cases.push_back(c);
      c.name = "h256-16rows"; c.dtype = DType::kBFloat16; c.H = c.Hv = 256; c.Nq = 16; c.Nkv = 4;
      c.T = 4; c.lens = {333, 100}; cases.push_back(c);
      c.name = "h1-hv256"; c.H = 8; c.Hv = 256; c.T = 1; cases.push_back(c);
      c.name = "h256-hv16"; c.H = 256; c.Hv = 16; cases.push_back(c);
    }
  } else {
    // Reduced set for compute-sanitizer: every kernel family, masks, splits, both layouts.
    for (DType dt : dtypes) {
      for (auto& hh : hs) {
        Case c;
        c.name = "small" + std::to_string(idx);
        c.dtype = dt;
        c.H = hh[0];
        c.Hv = hh[1];
        c.B = 2;
        c.cap = 301;
        c.lens = {301, 77};
        c.Nq = 8;
        c.Nkv = 2;
        c.T = idx % 2 ? 4 : 1;
        ApplyFeature(c, (idx + idx / 2) % 8);
        c.splits = split_modes[idx % 3];
        c.simt = idx % 4 == 3;
        c.config = idx % 4;
        c.fused = idx % 2 - 1;
        cases.push_back(c);
        ++idx;
      }
    }
    Case c; c.name = "small-odd"; c.cap = 100; c.lens = {100, 3}; c.H = 20; c.Hv = 12; c.Nq = 4; c.Nkv = 2;
    c.splits = 3; cases.push_back(c);
    c.name = "small-rows32"; c.H = c.Hv = 128; c.Nq = 32; c.Nkv = 4; c.T = 4; cases.push_back(c);
    c.name = "small-bal"; c.B = 4; c.cap = 16384; c.lens = {16384, 0, 1, 600}; c.T = 1; c.splits = 0;
    c.balanced = true; cases.push_back(c);
    c.name = "small-bal-xla-ws"; c.xla_ws = XlaWorkspaceBound(c); cases.push_back(c);
    c.xla_ws = 0;
    c.name = "small-bal-uniform-sepcombine"; c.lens.assign(4, 900); c.fused = 0; cases.push_back(c);
    // Four groups (one row, four kv heads): clusters of 8 and of 16 fit.
    c.name = "small-cluster"; c.fused = -1; c.balanced = false; c.B = 1; c.lens = {900};
    c.cap = 900; c.splits = 8; c.must_cluster = true; cases.push_back(c);
    c.name = "small-cluster-mask-t4"; c.T = 4; c.Nq = 16; ApplyFeature(c, 5); cases.push_back(c);
    c.name = "small-cluster16"; c.splits = 16; cases.push_back(c);
    c.name = "small-spread"; c.cluster = 0; c.must_cluster = false; c.want_spread = 1;
    cases.push_back(c);
    c.name = "small-spread-lastcta"; c.spread = 0; c.want_spread = 0; cases.push_back(c);
  }
  return cases;
}

int RunChecks(bool small, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  int fails = 0, n = 0;
  std::vector<Case> cases = BuildCases(small);
  for (const Case& c : AppendCases(small)) cases.push_back(c);
  for (const Case& c : cases) {
    Result r = RunCase(c, rng);
    ++n;
    if (!r.pass) ++fails;
    std::printf("%s %-100s splits=%-2d rel=%.3e maxabs=%.3e [%s]%s\n", r.pass ? "PASS" : "FAIL",
                Describe(c).c_str(), r.splits, r.rel, r.max_abs, r.plan.c_str(), r.why.c_str());
    std::fflush(stdout);
  }
  std::printf("%d / %d cases passed\n", n - fails, n);
  return fails == 0 ? 0 : 1;
}

// ------------------------------------------------------------------ benchmark

#ifdef JAX_MEA_DECODE_TRACE
constexpr int kTraceSlotsHost = 12;  // decode_impl::kTraceSlots (a device header)
#endif

__global__ void FillRandom(uint16_t* p, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    uint64_t x = (i + seed) * 0x9E3779B97F4A7C15ull;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    const float f = static_cast<float>(x >> 40) * (1.0f / 16777216.0f) * 2.f - 1.f;  // [-1, 1)
    p[i] = __bfloat16_as_ushort(__float2bfloat16(f));
  }
}

// Keeps the GPU busy for about `ns` nanoseconds so that the host can queue the
// timed launches behind it: the events then measure GPU time alone, not the
// host's launch overhead.
__global__ void Spin(long long ns) {
  const long long start = clock64();
  // clock64 counts SM cycles; ~2 GHz on an H100.
  while (clock64() - start < ns * 2) {
  }
}

// --pollute: 12000 distinct instructions (192 KB of code, past the SM's
// instruction caches), launched with the L1 carve-out preferred, on every SM.
#define JAX_MEA_P1(i) a = fmaf(a, b, 1e-6f * (i));
#define JAX_MEA_P10(i) JAX_MEA_P1(i) JAX_MEA_P1(i + 1) JAX_MEA_P1(i + 2) JAX_MEA_P1(i + 3) \
  JAX_MEA_P1(i + 4) JAX_MEA_P1(i + 5) JAX_MEA_P1(i + 6) JAX_MEA_P1(i + 7) JAX_MEA_P1(i + 8) JAX_MEA_P1(i + 9)
#define JAX_MEA_P100(i) JAX_MEA_P10(i) JAX_MEA_P10(i + 10) JAX_MEA_P10(i + 20) JAX_MEA_P10(i + 30) \
  JAX_MEA_P10(i + 40) JAX_MEA_P10(i + 50) JAX_MEA_P10(i + 60) JAX_MEA_P10(i + 70) JAX_MEA_P10(i + 80) \
  JAX_MEA_P10(i + 90)
#define JAX_MEA_P1000(i) JAX_MEA_P100(i) JAX_MEA_P100(i + 100) JAX_MEA_P100(i + 200) JAX_MEA_P100(i + 300) \
  JAX_MEA_P100(i + 400) JAX_MEA_P100(i + 500) JAX_MEA_P100(i + 600) JAX_MEA_P100(i + 700) \
  JAX_MEA_P100(i + 800) JAX_MEA_P100(i + 900)
__global__ void __launch_bounds__(256) Pollute(float* out, float seed) {
  float a = seed + threadIdx.x;
  const float b = seed * 0.999f;  // a runtime value: the chain cannot fold
  JAX_MEA_P1000(0) JAX_MEA_P1000(1000) JAX_MEA_P1000(2000) JAX_MEA_P1000(3000) JAX_MEA_P1000(4000)
  JAX_MEA_P1000(5000) JAX_MEA_P1000(6000) JAX_MEA_P1000(7000) JAX_MEA_P1000(8000)
  JAX_MEA_P1000(9000) JAX_MEA_P1000(10000) JAX_MEA_P1000(11000)
  if (a == 123.456f) out[threadIdx.x] = a;  // never: keeps the chain
}
struct Polluter {
  explicit Polluter(bool on) : on(on), sink(on ? 256 * sizeof(float) : 0) {
    if (on) CHECK_CUDA(cudaFuncSetAttribute(Pollute, cudaFuncAttributePreferredSharedMemoryCarveout, 0));
  }
  void operator()() const {
    if (on) Pollute<<<264, 256>>>(static_cast<float*>(sink.ptr), 1.f);
  }
  bool on;
  DevBuf sink;
};

double Median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int RunBench(const std::string& filter, bool trace, bool append, bool pollute, bool nospread) {
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs, L2 %d MB\n", prop.name, prop.multiProcessorCount,
              prop.l2CacheSize >> 20);
  cudaEvent_t e0, e1;
  CHECK_CUDA(cudaEventCreate(&e0));
  CHECK_CUDA(cudaEventCreate(&e1));

  // Copy bandwidth: 1 GB device to device, bytes read + written.
  double copy_tbs = 0;
  {
    const size_t n = size_t{1} << 30;
    DevBuf a(n), b(n);
    FillRandom<<<1024, 256>>>(static_cast<uint16_t*>(a.ptr), n / 2, 1);
    CHECK_CUDA(cudaGetLastError());
    std::vector<float> ts;
    for (int it = 0; it < 13; ++it) {
      CHECK_CUDA(cudaEventRecord(e0));
      CHECK_CUDA(cudaMemcpyAsync(b.ptr, a.ptr, n, cudaMemcpyDeviceToDevice));
      CHECK_CUDA(cudaEventRecord(e1));
      CHECK_CUDA(cudaEventSynchronize(e1));
      float ms;
      CHECK_CUDA(cudaEventElapsedTime(&ms, e0, e1));
      if (it >= 3) ts.push_back(ms);
    }
    copy_tbs = 2.0 * n / (Median(ts) * 1e-3) / 1e12;
    std::printf("copy bandwidth (D2D 1 GB, read + write): %.3f TB/s\n", copy_tbs);
  }

  // ragged: kv lengths drawn in [S/8, S]; full_lens: per-row lengths, all S (as a
  // decode step passes them); extra: the cache holds S keys in a capacity of S + extra
  // (a decode loop's cache is larger than its contents; per-row lengths S); more: the
  // lengths are S + more (<= extra), past a multiple of the splits' tiles as a decode
  // loop's lengths are (decode_model's ctx 4096 steps run lengths 4097-4128).
  struct Shape {
    int B, S, Nq, Nkv, H, Hv;
    bool ragged = false, full_lens = false;
    int extra = 0, more = 0;
    int capacity() const { return S + extra; }
    int length() const { return S + more; }
  };
  std::vector<Shape> shapes;
  const double kMaxBytes = 20e9;
  for (int B : {1, 8, 16, 64}) {
    for (int S : {1024, 4096, 8192, 32768}) {
      for (auto nn : {std::pair<int, int>{32, 8}, {32, 32}, {64, 8}}) {
        for (auto hh : {std::pair<int, int>{64, 64}, {128, 128}, {256, 256}, {192, 128}}) {
          Shape s{B, S, nn.first, nn.second, hh.first, hh.second};
          const double kv = 2.0 * B * s.Nkv * static_cast<double>(S) * (s.H + s.Hv);
          if (kv <= kMaxBytes) shapes.push_back(s);
        }
      }
    }
  }
  // Ragged: kv lengths drawn in [S/8, S] (as benchmarks/decode.py draws them).
  for (int B : {8, 16, 64}) {
    for (int S : {4096, 32768}) shapes.push_back(Shape{B, S, 32, 8, 128, 128, true});
  }
  for (int B : {8, 16}) {
    for (int S : {4096, 32768}) shapes.push_back(Shape{B, S, 32, 8, 128, 128, false, true});
  }
  // Capacity past the contents, by a little and by 2x, on the GQA shapes of
  // benchmarks/decode_model.py's large config (N16/4) and of the grid (N32/8).
  for (int extra_of : {64, 0}) {
    for (auto bs : {std::pair<int, int>{1, 32768}, {8, 4096}, {32, 2048}, {8, 1024}, {1, 4096},
                    {1, 1024}, {8, 32768}, {32, 32768}, {32, 4096}}) {
      for (auto nn : {std::pair<int, int>{16, 4}, {32, 8}}) {
        const int extra = extra_of ? extra_of : bs.second;  // 0: twice the length
        shapes.push_back(Shape{bs.first, bs.second, nn.first, nn.second, 128, 128, false, true,
                               extra});
        if (extra_of) {  // lengths 1 and 17 past S, as a decode loop's first and 17th step
          for (int more : {1, 17}) {
            shapes.push_back(Shape{bs.first, bs.second, nn.first, nn.second, 128, 128, false,
                                   true, extra, more});
          }
        }
      }
    }
  }
  auto name_of = [](const Shape& s) {
    char name[64];
    char cap[24] = "";
    if (s.extra && s.more) {
      std::snprintf(cap, sizeof cap, " cap+%d len+%d", s.extra, s.more);
    } else if (s.extra) {
      std::snprintf(cap, sizeof cap, " cap+%d", s.extra);
    }
    std::snprintf(name, sizeof name, "B%d S%d N%d/%d H%d/%d%s%s", s.B, s.S, s.Nq, s.Nkv, s.H,
                  s.Hv, s.ragged ? " ragged" : s.full_lens && !s.extra ? " lens" : "", cap);
    return std::string(name);
  };
  if (!filter.empty()) {  // exact names, comma separated
    std::vector<Shape> kept;
    for (const Shape& s : shapes) {
      const std::string n = name_of(s);
      size_t at = 0;
      while (at <= filter.size()) {
        size_t end = filter.find(',', at);
        if (end == std::string::npos) end = filter.size();
        if (filter.compare(at, end - at, n) == 0) {
          kept.push_back(s);
          break;
        }
        at = end + 1;
      }
    }
    shapes = kept;
    if (shapes.empty()) {
      std::fprintf(stderr, "--filter matched no shape\n");
      return 2;
    }
  }
  // Caches smaller than kRotateBelow rotate among copies (at least 3) so that L2 does
  // not serve them: a model reads each layer's cache once a step, with every other
  // layer's weights and caches in between. (Until session 21 only caches under 50 MB
  // rotated; a 67 MB cache then took a quarter of its bytes from the 60 MB L2.)
  const size_t kRotateBelow = 4ull * prop.l2CacheSize;
  auto k_bytes = [](const Shape& s) { return 2ull * s.B * s.Nkv * s.capacity() * s.H; };
  auto set_bytes = [&](const Shape& s) {  // one copy of K then V, 256-byte aligned
    return (k_bytes(s) + 2ull * s.B * s.Nkv * s.capacity() * s.Hv + 255) / 256 * 256;
  };
  size_t arena_bytes = 256u << 20;
  for (auto& s : shapes) {
    const size_t set = set_bytes(s);
    arena_bytes = std::max<size_t>(arena_bytes, set < kRotateBelow ? 3 * set : set);
  }
  DevBuf arena(arena_bytes);
  FillRandom<<<4096, 256>>>(static_cast<uint16_t*>(arena.ptr), arena_bytes / 2, 7);
  // Points p at copy `it` of the shape's cache (of as many as rotate: see kRotateBelow).
  auto rotate = [&](const Shape& s, int it, AttentionParams* p) {
    const size_t set = set_bytes(s);
    const int nrot = set < kRotateBelow ? static_cast<int>(std::min<size_t>(arena_bytes / set, 16)) : 1;
    p->k = static_cast<char*>(arena.ptr) + (it % nrot) * set;
    p->v = static_cast<char*>(arena.ptr) + (it % nrot) * set + k_bytes(s);
  };
  const Polluter pollute_caches(pollute);
  CHECK_CUDA(cudaGetLastError());
  // Ragged lengths of each batch row (the same draw for every ragged shape of a batch size).
  std::vector<int32_t> ragged_lens(64);
  DevBuf dlens(64 * sizeof(int32_t));
  auto ragged_lengths = [&](const Shape& s) {
    uint64_t x = 0x2545F4914F6CDD1Dull * (s.B * 7919 + s.S);
    for (int b = 0; b < s.B; ++b) {
      x ^= x << 13; x ^= x >> 7; x ^= x << 17;
      ragged_lens[b] = s.ragged ? s.S / 8 + static_cast<int>(x % static_cast<uint64_t>(s.S - s.S / 8 + 1))
                                : s.length();
    }
    CHECK_CUDA(cudaMemcpy(dlens.ptr, ragged_lens.data(), s.B * sizeof(int32_t), cudaMemcpyHostToDevice));
  };
  const size_t max_q = 64ull * 64 * 256;
  DevBuf dq(max_q * 2), dout(max_q * 2), dnew(max_q * 2);
  FillRandom<<<256, 256>>>(static_cast<uint16_t*>(dq.ptr), max_q, 3);
  FillRandom<<<256, 256>>>(static_cast<uint16_t*>(dnew.ptr), max_q, 5);
  // --append: the step's starts (each sequence's length - 1) and its new tokens
  // [B, 1, Nkv, H | Hv] (BSNH), K then V in dnew.
  DevBuf dstarts(64 * sizeof(int32_t));
  KvCopyParams step;
  CHECK_CUDA(cudaDeviceSynchronize());

  // Median time of 20 calls (after 3 warm-ups), each bracketed by its own pair
  // of events, launched back to back (no host synchronisation in between, so the
  // host's launch overhead hides behind the previous call). Caches under
  // kRotateBelow rotate among copies so that L2 does not serve them.
  const int kIters = 23, kWarm = 3;
  std::vector<cudaEvent_t> ev(2 * kIters);
  for (auto& e : ev) CHECK_CUDA(cudaEventCreate(&e));
  auto params_of = [&](const Shape& s) {
    AttentionParams p = ShapeParams(DType::kBFloat16, s.B, s.Nq, s.Nkv, 1, s.capacity(), s.H,
                                    s.Hv, kBSNH, kBNSH, kBSNH);
    p.q = dq.ptr;
    p.out = dout.ptr;
    rotate(s, 0, &p);  // the cache's first copy: K, then V
    if (s.ragged || s.full_lens) p.kv_lengths = static_cast<const int32_t*>(dlens.ptr);
    if (append) {  // as MakeDecodeStepParams: lengths and offsets from the starts
      std::vector<int32_t> starts(s.B);
      for (int b = 0; b < s.B; ++b) {
        starts[b] = (s.ragged || s.full_lens ? ragged_lens[b] : s.length()) - 1;
      }
      CHECK_CUDA(cudaMemcpy(dstarts.ptr, starts.data(), s.B * sizeof(int32_t), cudaMemcpyHostToDevice));
      p.kv_lengths = p.causal_offsets = static_cast<const int32_t*>(dstarts.ptr);
      p.kv_length_bias = 1;
      p.is_causal = true;
      step = StepAppend(p, 1);  // the cache pointers: with_append
      step.dst_starts = static_cast<const int32_t*>(dstarts.ptr);
      step.new_k = dnew.ptr;
      step.new_v = static_cast<char*>(dnew.ptr) + 2ull * s.B * s.Nkv * s.H;
    }
    return p;
  };
  // The decode step's append into the cache `p` reads (--append), else none.
  auto with_append = [&](const AttentionParams& p, cuda::DecodeOptions opt) {
    if (nospread) opt.spread_merge = 0;
    if (append) {
      step.dst_k = const_cast<void*>(p.k);
      step.dst_v = const_cast<void*>(p.v);
      opt.append = &step;
    }
    return opt;
  };
  auto time_shape = [&](const Shape& s, int splits, int config, int* used_splits, int fused = -1,
                        bool balance = true, int cluster = -1) {
    if (s.ragged || s.full_lens) ragged_lengths(s);
    AttentionParams p = params_of(s);
    cuda::DecodeOptions opt;
    opt.num_splits = splits;
    opt.config = config;
    opt.fused_combine = fused;
    opt.balance = balance;
    opt.cluster_merge = cluster;
    *used_splits = cuda::DecodeNumSplits(p, opt);
    CHECK_CUDA(cuda::LaunchDecodeAttention(p, 0, with_append(p, opt)));  // first call: workspace
    Spin<<<1, 32>>>(2000000);                             // 2 ms: the host queues ahead
    for (int it = 0; it < kIters; ++it) {
      rotate(s, it, &p);
      pollute_caches();
      CHECK_CUDA(cudaEventRecord(ev[2 * it]));
      CHECK_CUDA(cuda::LaunchDecodeAttention(p, 0, with_append(p, opt)));
      CHECK_CUDA(cudaEventRecord(ev[2 * it + 1]));
    }
    CHECK_CUDA(cudaDeviceSynchronize());
    std::vector<float> ts;
    for (int it = kWarm; it < kIters; ++it) {
      float ms;
      CHECK_CUDA(cudaEventElapsedTime(&ms, ev[2 * it], ev[2 * it + 1]));
      ts.push_back(ms);
    }
    return Median(ts) * 1e-3;
  };
  auto bytes_of = [&](const Shape& s) {  // q, valid k and v, out
    double keys = static_cast<double>(s.B) * s.length();
    if (s.ragged) {
      ragged_lengths(s);
      keys = 0;
      for (int b = 0; b < s.B; ++b) keys += ragged_lens[b];
    }
    return 2.0 * s.Nkv * keys * (s.H + s.Hv) + 2.0 * s.B * s.Nq * (s.H + s.Hv);
  };

  if (trace) {
#ifdef JAX_MEA_DECODE_TRACE
    // Phase stamps of each CTA of one launch (the last of 8 back to back), per split count.
    const size_t max_ctas = 1 << 16;
    DevBuf dtrace(max_ctas * kTraceSlotsHost * sizeof(unsigned long long));
    std::vector<unsigned long long> tr(max_ctas * kTraceSlotsHost);
    for (const Shape& s : shapes) {
      for (int sp : {0, 1, 2, 4, 8, 16}) {
        if (s.ragged || s.full_lens) ragged_lengths(s);
        AttentionParams p = params_of(s);
        cuda::DecodeOptions opt;
        opt.num_splits = sp;
        if (nospread) opt.spread_merge = 0;
        const std::string plan = cuda::DecodePlanString(p, opt);
        const int splits = cuda::DecodeNumSplits(p, opt);
        const size_t ctas = static_cast<size_t>(s.Nkv) * s.B * splits;  // one row block
        if (ctas > max_ctas) continue;
        CHECK_CUDA(cuda::LaunchDecodeAttention(p, 0, with_append(p, opt)));
        Spin<<<1, 32>>>(1000000);
        for (int it = 0; it < 8; ++it) {
          rotate(s, it, &p);  // L2 cold, as time_shape
          pollute_caches();
          if (it == 7) {
            CHECK_CUDA(cudaMemsetAsync(dtrace.ptr, 0, ctas * kTraceSlotsHost * 8));
            opt.trace = static_cast<unsigned long long*>(dtrace.ptr);
            CHECK_CUDA(cudaEventRecord(e0));
          }
          CHECK_CUDA(cuda::LaunchDecodeAttention(p, 0, with_append(p, opt)));
        }
        CHECK_CUDA(cudaEventRecord(e1));
        CHECK_CUDA(cudaDeviceSynchronize());
        float ms;
        CHECK_CUDA(cudaEventElapsedTime(&ms, e0, e1));
        CHECK_CUDA(cudaMemcpy(tr.data(), dtrace.ptr, ctas * kTraceSlotsHost * 8, cudaMemcpyDeviceToHost));
        unsigned long long t_min = ~0ull, t_max = 0;
        // entry offset, prologue, first tile, loop / tile, epilogue, total; the epilogue's
        // parts: states to shared memory, weights, out / partials written; the fused
        // combine's counter and merge; the cluster merge's first barrier, its slice, and
        // its last barrier to the exit.
        std::vector<double> d[14];
        size_t last = 0;
        for (size_t c = 0; c < ctas; ++c) {
          const unsigned long long* t = &tr[c * kTraceSlotsHost];
          if (t[0] == 0) continue;
          t_min = std::min(t_min, t[0]);
          if (t[4] > t_max) { t_max = t[4]; last = c; }
        }
        for (size_t c = 0; c < ctas; ++c) {
          const unsigned long long* t = &tr[c * kTraceSlotsHost];
          if (t[0] == 0 || t[4] == 0) continue;
          d[0].push_back((t[0] - t_min) * 1e-3);
          d[1].push_back((t[1] - t[0]) * 1e-3);
          if (t[2] != 0) {  // 0: a CTA without tiles (an empty split)
            d[2].push_back((t[2] - t[1]) * 1e-3);
            d[3].push_back(t[6] > 1 ? (t[3] - t[2]) * 1e-3 / (t[6] - 1) : 0.0);
          }
          d[4].push_back((t[4] - t[3]) * 1e-3);
          d[5].push_back((t[4] - t[0]) * 1e-3);
          d[6].push_back((t[7] - t[3]) * 1e-3);
          d[7].push_back((t[8] - t[7]) * 1e-3);
          d[8].push_back((t[9] - t[8]) * 1e-3);
          if (t[11] != 0) {  // cluster or spread merge
            d[11].push_back((t[10] - t[9]) * 1e-3);
            d[12].push_back((t[11] - t[10]) * 1e-3);
            d[13].push_back((t[4] - t[11]) * 1e-3);
          } else if (t[10] != 0) {  // fused combine
            d[9].push_back((t[10] - t[9]) * 1e-3);
            if (t[4] - t[10] > 200) d[10].push_back((t[4] - t[10]) * 1e-3);  // the merging CTA
          }
        }
        std::printf("%s splits %d {%s}: event %.1f us, first entry to last exit %.1f us, %zu CTAs\n",
                    name_of(s).c_str(), splits, plan.c_str(), ms * 1e3, (t_max - t_min) * 1e-3, d[0].size());
        const char* names[14] = {"entry offset", "keys+append", "first tile", "per later tile",
                                 "epilogue+merge", "CTA total", " ep: to smem", " ep: weights",
                                 " ep: write", " ep: fence+count", " ep: merge (last)",
                                 " ep: group bar", " ep: slice", " ep: to exit"};
        for (int k = 0; k < 14; ++k) {
          std::vector<double> v = d[k];
          if (v.empty()) continue;
          std::sort(v.begin(), v.end());
          std::printf("  %-16s us: min %6.2f p10 %6.2f med %6.2f p90 %6.2f max %6.2f\n", names[k], v[0],
                      v[v.size() / 10], v[v.size() / 2], v[v.size() * 9 / 10], v.back());
        }
        const unsigned long long* t = &tr[last * kTraceSlotsHost];
        std::printf("  last to exit: CTA %zu on SM %llu, %llu tiles: entry +%.2f, keys %.2f, first %.2f, "
                    "loop %.2f, epilogue %.2f us\n", last, t[5], t[6], (t[0] - t_min) * 1e-3,
                    (t[1] - t[0]) * 1e-3, (t[2] - t[1]) * 1e-3, (t[3] - t[2]) * 1e-3, (t[4] - t[3]) * 1e-3);
        std::fflush(stdout);
      }
    }
    return 0;
#else
    std::fprintf(stderr, "--trace needs a build with -DJAX_MEA_DECODE_TRACE\n");
    return 2;
#endif
  }

  if (!filter.empty()) {
    // Focused sweep: the plan of each configuration and its time over splits.
    std::printf("sweep (bf16, T=1): [splits] time_us TB/s per configuration (c-1: default; "
                "a: the plan's own splits, +cl: merged in clusters)\n");
    for (const Shape& s : shapes) {
      const AttentionParams p = params_of(s);
      for (int config : {-1, 0, 1, 2, 3}) {
        cuda::DecodeOptions o;
        o.config = config;
        std::printf("%s c%d {%s}:", name_of(s).c_str(), config, cuda::DecodePlanString(p, o).c_str());
        for (int sp : {0, 1, 4, 8, 12, 15, 16, 32, 64}) {
          cuda::DecodeOptions os = o;
          os.num_splits = sp;
          const bool cl = cuda::DecodePlanString(p, os).find(" cluster") != std::string::npos;
          int used;
          const double t = time_shape(s, sp, config, &used);
          std::printf(" [%s%d%s] %.1f %.2f", sp == 0 ? "a" : "", used, cl ? "+cl" : "", t * 1e6,
                      bytes_of(s) / t / 1e12);
        }
        std::printf("\n");
        std::fflush(stdout);
      }
      if (s.ragged || s.full_lens) {  // balanced splits against splits by capacity
        cuda::DecodeOptions o;
        o.balance = false;
        int used;
        const double t = time_shape(s, 0, -1, &used, -1, false);
        std::printf("%s c-1 unbalanced {%s}: [a%d] %.1f %.2f\n", name_of(s).c_str(),
                    cuda::DecodePlanString(p, o).c_str(), used, t * 1e6, bytes_of(s) / t / 1e12);
      }
    }
    std::printf("\n%-28s %-66s %10s %8s %8s %12s\n", "shape (bf16, T=1, BNSH)", "default plan",
                "time_us", "TB/s", "of_copy", "nocluster_us");
    for (const Shape& s : shapes) {
      int used;
      double best = 1e9, best_plain = 1e9;
      for (int rep = 0; rep < 3; ++rep) {  // interleaved: default, then the cluster merge off
        best = std::min(best, time_shape(s, 0, -1, &used));
        best_plain = std::min(best_plain, time_shape(s, 0, -1, &used, -1, true, 0));
      }
      const double tbs = bytes_of(s) / best / 1e12;
      std::printf("%-28s %-66s %10.2f %8.3f %7.1f%% %12.2f\n", name_of(s).c_str(),
                  cuda::DecodePlanString(params_of(s)).c_str(), best * 1e6, tbs, 100.0 * tbs / copy_tbs,
                  best_plain * 1e6);
    }
    return 0;
  }

  {
    // Host cost of one LaunchDecodeAttention (the GPU kept busy meanwhile).
    Shape s{1, 32768, 32, 8, 128, 128};
    int used;
    time_shape(s, 0, -1, &used);
    AttentionParams p = params_of(s);
    Spin<<<1, 32>>>(20000000);
    for (int fused : {-1, 0}) {
      cuda::DecodeOptions opt;
      opt.fused_combine = fused;
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 100; ++i) CHECK_CUDA(cuda::LaunchDecodeAttention(p, 0, with_append(p, opt)));
      const auto t1 = std::chrono::steady_clock::now();
      std::printf("host time per LaunchDecodeAttention (B1 S32768, %d splits, %s): %.2f us\n", used,
                  fused ? "fused combine" : "combine kernel",
                  std::chrono::duration<double, std::micro>(t1 - t0).count() / 100);
    }
    CHECK_CUDA(cudaDeviceSynchronize());
  }
  std::printf("sweep (bf16, T=1): [splits] time_us TB/s; c-1 = default config, f0 = separate combine "
              "kernel\n");
  for (const Shape& s : {Shape{16, 8192, 32, 8, 128, 128}, Shape{1, 32768, 32, 8, 128, 128},
                         Shape{8, 8192, 32, 8, 128, 128}, Shape{1, 32768, 32, 8, 192, 128},
                         Shape{1, 32768, 32, 8, 256, 256}, Shape{1, 8192, 32, 8, 128, 128},
                         Shape{16, 8192, 32, 8, 192, 128}, Shape{8, 32768, 32, 8, 128, 128, true}}) {
    for (int config : {-1, 0, 2, 3, 20}) {
      const int fused = config == 20 ? 0 : -1;
      const int cfg = config == 20 ? -1 : config;
      std::printf("%s c%d%s:", name_of(s).c_str(), cfg, fused == 0 ? "f0" : "");
      for (int sp : {0, 1, 2, 4, 8, 16, 17, 24, 32}) {
        int used;
        const double t = time_shape(s, sp, cfg, &used, fused);
        std::printf(" [%s%d] %.1f %.2f", sp == 0 ? "a" : "", used, t * 1e6, bytes_of(s) / t / 1e12);
      }
      std::printf("\n");
      std::fflush(stdout);
    }
  }

  for (int config : {-1}) {
    std::printf("cfg%d %-34s %6s %10s %8s %8s\n", config, "shape (bf16, T=1, BNSH cache)", "splits",
                "time_us", "TB/s", "of_copy");
    int below = 0, big_n = 0;
    double worst = 1e9;
    for (auto& s : shapes) {
      int used;
      const double t = time_shape(s, 0, config, &used);
      const double tbs = bytes_of(s) / t / 1e12;
      const bool big = 2.0 * s.B * s.Nkv * s.S * (s.H + s.Hv) >= (32u << 20);
      if (big) {
        ++big_n;
        worst = std::min(worst, tbs / copy_tbs);
        if (tbs < 0.85 * copy_tbs) ++below;
      }
      std::printf("cfg%d %-34s %6d %10.2f %8.3f %7.1f%%%s\n", config, name_of(s).c_str(), used, t * 1e6, tbs,
                  100.0 * tbs / copy_tbs, big && tbs < 0.85 * copy_tbs ? "  <85%" : "");
      std::fflush(stdout);
    }
    std::printf("cfg%d: %d of %d shapes with cache >= 32 MB under 85%% of copy bandwidth (worst %.1f%%)\n",
                config, below, big_n, 100.0 * worst);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool bench = false, small = false, trace = false, append = false, pollute = false;
  bool nospread = false;
  std::string filter;
  uint64_t seed = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--bench")) bench = true;
    else if (!std::strcmp(argv[i], "--small")) small = true;
    else if (!std::strcmp(argv[i], "--trace")) trace = true;
    else if (!std::strcmp(argv[i], "--append")) append = true;
    else if (!std::strcmp(argv[i], "--pollute")) pollute = true;
    else if (!std::strcmp(argv[i], "--nospread")) nospread = true;
    else if (!std::strcmp(argv[i], "--seed") && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--small] [--bench [--filter \"B1 S32768 N32/8 H64/64,...\"] [--trace] [--append] [--pollute] [--nospread]] [--seed N]\n", argv[0]);
      return 2;
    }
  }
  if (bench) return RunBench(filter, trace, append, pollute, nospread);
  return RunChecks(small, seed);
}
