// kernel_check: the CUDA kernels against the CPU kernels and a float64 reference
// (reference64.h), without jax.
//
// Fills AttentionParams / KvCopyParams directly over a grid of cases (dtypes,
// head sizes, MHA/GQA/MQA, lengths, layouts, kv_lengths, causal offsets,
// windows, softcap, masks), draws fresh random inputs for each, poisons the
// GPU output with NaN, runs cuda::LaunchAttentionForward / cuda::LaunchKvCopy
// and the CPU kernels on the same inputs, and compares both with the float64
// reference (max abs, relative L2) and with each other. Keys past kv_length(b)
// are NaN in the inputs: a kernel that reads them shows NaN. One line per case,
// then PASS / FAIL; exit code 1 on any failure.
//
//   kernel_check            full grid
//   kernel_check --quick    a reduced grid (for compute-sanitizer)
//   kernel_check --bench    prefill timings (cudaEvents, median of 20)
//   kernel_check --filter S only cases whose name contains S
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_types.h"
#include "cpu/kernels.h"
#include "jax_mea/params.h"
#include "kernels/attention.h"
#include "kernel_check_variants.h"
#include "check_common.h"
#include "reference64.h"

using namespace jax_mea;
using namespace jax_mea::check;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// ------------------------------------------------------------------ attention cases

struct AttnCase {
  std::string name;
  DType dtype = DType::kBFloat16;
  int H = 64, Hv = 64;
  int B = 2, Nq = 4, Nkv = 4, Sq = 64, Skv = 129;
  Layout q_layout = kBSNH, kv_layout = kBSNH, out_layout = kBSNH;
  bool kv_lengths = false;  // random per batch, incl. 0, full and out-of-range values
  bool causal = false;
  bool per_batch_offsets = false;  // offsets[b] = kv_length(b) - Sq
  int causal_offset = 0;
  int left = kUnboundedWindow, right = kUnboundedWindow;
  float softcap = 0.f;
  float scale = 0.f;  // 0: 1/sqrt(H)
  MaskKind mask = MaskKind::kNone;
  bool mask_b = false, mask_n = false, mask_q = true;  // full (true) or broadcast axes
  int mask_len = -1;                                  // -1: Skv
};

struct Result {
  double rel = 0, max_abs = 0, ref_max = 0;
  Diff64 gpu64, cpu64;  // against the float64 reference
  size_t nan = 0, zero_mismatch = 0;
  size_t lse_bad = 0;  // log-sum-exp rows that differ from the CPU kernel's
  bool ok = false;
};

double Tolerance(DType t) {
  return t == DType::kFloat32 ? 1e-5 : (t == DType::kFloat16 ? 2e-3 : 1e-2);
}

Result RunAttnCase(const AttnCase& c, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-2.f, 2.f), u01(0.f, 1.f);
  const DType dt = c.dtype;
  HostTensor q(dt, size_t(c.B) * c.Nq * c.Sq * c.H), k(dt, size_t(c.B) * c.Nkv * c.Skv * c.H),
      v(dt, size_t(c.B) * c.Nkv * c.Skv * c.Hv), out(dt, size_t(c.B) * c.Nq * c.Sq * c.Hv);
  for (size_t i = 0; i < q.size(); ++i) q.set(i, u(rng));
  for (size_t i = 0; i < k.size(); ++i) k.set(i, u(rng));
  for (size_t i = 0; i < v.size(); ++i) v.set(i, u(rng) * 0.5f);

  AttentionParams p = ShapeParams(dt, c.B, c.Nq, c.Nkv, c.Sq, c.Skv, c.H, c.Hv, c.q_layout,
                                  c.kv_layout, c.out_layout);
  p.is_causal = c.causal;
  p.causal_offset = c.causal_offset;
  p.left_window = c.left;
  p.right_window = c.right;
  p.softcap = c.softcap;
  if (c.scale > 0.f) p.scale = c.scale;

  std::vector<int32_t> kv_lengths(c.B, c.Skv), offsets(c.B, 0);
  if (c.kv_lengths) {
    // 0, full, random, past the capacity and negative (both clamped), 1.
    const int choices[] = {0, c.Skv, static_cast<int>(rng() % (c.Skv + 1)), c.Skv + 7, -3, 1};
    for (int b = 0; b < c.B; ++b) kv_lengths[b] = choices[b % 6];
  }
  // Clamped lengths as the kernels see them; keys past them are NaN.
  std::vector<int> eff(c.B);
  for (int b = 0; b < c.B; ++b) eff[b] = std::max(0, std::min(kv_lengths[b], c.Skv));
  if (c.kv_lengths) {
    for (int b = 0; b < c.B; ++b)
      for (int n = 0; n < c.Nkv; ++n)
        for (int j = eff[b]; j < c.Skv; ++j) {
          for (int d = 0; d < c.H; ++d)
            k.set(b * p.k_strides.batch + n * p.k_strides.head + j * p.k_strides.seq + d, kNaN);
          for (int d = 0; d < c.Hv; ++d)
            v.set(b * p.v_strides.batch + n * p.v_strides.head + j * p.v_strides.seq + d, kNaN);
        }
  }
  if (c.per_batch_offsets) {
    for (int b = 0; b < c.B; ++b) offsets[b] = eff[b] - c.Sq;
  }

  // Mask [mb, mn, mq, mask_len], some rows fully masked.
  HostTensor mask_t;
  std::vector<uint8_t> mask_bool;
  const int mb = c.mask_b ? c.B : 1, mn = c.mask_n ? c.Nq : 1, mq = c.mask_q ? c.Sq : 1;
  const int mlen = c.mask_len >= 0 ? c.mask_len : c.Skv;
  const size_t mcount = size_t(mb) * mn * mq * mlen;
  if (c.mask != MaskKind::kNone) {
    p.mask_kind = c.mask;
    p.mask_len = mlen;
    p.mask_q_stride = mq == 1 ? 0 : mlen;
    p.mask_head_stride = mn == 1 ? 0 : int64_t(mq) * mlen;
    p.mask_batch_stride = mb == 1 ? 0 : int64_t(mn) * mq * mlen;
    const size_t rows = mcount / std::max(1, mlen);
    if (c.mask == MaskKind::kBool) {
      mask_bool.resize(mcount);
      for (size_t r = 0; r < rows; ++r) {
        const bool dead = u01(rng) < 0.1f;
        for (int j = 0; j < mlen; ++j) mask_bool[r * mlen + j] = !dead && u01(rng) < 0.7f;
      }
    } else {
      mask_t = HostTensor(dt, mcount);
      for (size_t r = 0; r < rows; ++r) {
        const bool dead = u01(rng) < 0.1f;
        for (int j = 0; j < mlen; ++j) {
          float val = u01(rng) < 0.2f ? -kInf : u(rng);
          mask_t.set(r * mlen + j, dead ? -kInf : val);
        }
      }
    }
  }

  // CPU reference.
  AttentionParams hp = p;
  hp.q = q.bytes.data();
  hp.k = k.bytes.data();
  hp.v = v.bytes.data();
  std::vector<uint8_t> ref_bytes(out.bytes.size(), 0xff);
  hp.out = ref_bytes.data();
  const size_t rows = size_t(c.B) * c.Nq * c.Sq;  // the lse result, [B, Nq, Sq]
  std::vector<float> ref_lse(rows, kNaN), lse(rows);
  hp.lse = ref_lse.data();
  hp.kv_lengths = c.kv_lengths ? kv_lengths.data() : nullptr;
  hp.causal_offsets = c.per_batch_offsets ? offsets.data() : nullptr;
  if (c.mask == MaskKind::kBool) hp.mask = mask_bool.data();
  if (c.mask == MaskKind::kAdditive) hp.mask = mask_t.bytes.data();
  cpu::AttentionForward(hp);

  // GPU.
  DevBuf dq(q.bytes.data(), q.bytes.size()), dk(k.bytes.data(), k.bytes.size()),
      dv(v.bytes.data(), v.bytes.size()), dout(out.bytes.size());
  DevBuf dlen(kv_lengths.data(), c.kv_lengths ? kv_lengths.size() * 4 : 0);
  DevBuf doff(offsets.data(), c.per_batch_offsets ? offsets.size() * 4 : 0);
  DevBuf dmask(c.mask == MaskKind::kBool ? static_cast<const void*>(mask_bool.data())
                                         : static_cast<const void*>(mask_t.bytes.data()),
               c.mask == MaskKind::kBool ? mask_bool.size()
                                         : (c.mask == MaskKind::kAdditive ? mask_t.bytes.size() : 0));
  if (out.bytes.size()) CHECK_CUDA(cudaMemset(dout.ptr, 0xff, out.bytes.size()));  // NaN in every dtype
  DevBuf dlse(rows * sizeof(float));
  if (rows) CHECK_CUDA(cudaMemset(dlse.ptr, 0xff, rows * sizeof(float)));
  AttentionParams gp = p;
  gp.lse = static_cast<float*>(dlse.ptr);
  gp.q = dq.ptr;
  gp.k = dk.ptr;
  gp.v = dv.ptr;
  gp.out = dout.ptr;
  gp.kv_lengths = c.kv_lengths ? static_cast<const int32_t*>(dlen.ptr) : nullptr;
  gp.causal_offsets = c.per_batch_offsets ? static_cast<const int32_t*>(doff.ptr) : nullptr;
  gp.mask = dmask.ptr;

  Result r;
  const std::string why = cuda::AttentionForwardUnsupported(gp);
  if (!why.empty()) {
    std::printf("  unsupported: %s\n", why.c_str());
    return r;
  }
  CHECK_CUDA(cuda::LaunchAttentionForward(gp, 0));
  CHECK_CUDA(cudaDeviceSynchronize());
  if (out.bytes.size()) CHECK_CUDA(cudaMemcpy(out.bytes.data(), dout.ptr, out.bytes.size(), cudaMemcpyDeviceToHost));
  if (rows) CHECK_CUDA(cudaMemcpy(lse.data(), dlse.ptr, rows * sizeof(float), cudaMemcpyDeviceToHost));
  // The lse against the CPU kernel's: -inf (no key) exactly, else within float32
  // rounding of the same logits (exp2 / log2 approximations on the GPU).
  for (size_t i = 0; i < rows; ++i) {
    const float g = lse[i], e = ref_lse[i];
    const bool same = std::isinf(e) ? g == e
                                    : std::fabs(double(g) - e) <= 1e-4 * std::max(1.f, std::fabs(e));
    if (!same && r.lse_bad++ < 3) std::printf("  lse row %zu: gpu %g cpu %g\n", i, g, e);
  }

  HostTensor ref(dt, 0);
  ref.bytes = ref_bytes;
  double num = 0, den = 0;
  for (int b = 0; b < c.B; ++b) {
    for (int n = 0; n < c.Nq; ++n) {
      for (int i = 0; i < c.Sq; ++i) {
        const size_t row = b * p.out_strides.batch + n * p.out_strides.head + i * p.out_strides.seq;
        bool ref_zero_row = true;
        for (int d = 0; d < c.Hv; ++d) ref_zero_row &= ref.get(row + d) == 0.f;
        for (int d = 0; d < c.Hv; ++d) {
          const float g = out.get(row + d), e = ref.get(row + d);
          if (std::isnan(g) || std::isnan(e)) {
            ++r.nan;
            continue;
          }
          // A fully masked row (all zeros in the reference) must be exactly 0.
          if (ref_zero_row && g != 0.f) ++r.zero_mismatch;
          const double diff = double(g) - double(e);
          num += diff * diff;
          den += double(e) * e;
          r.max_abs = std::max(r.max_abs, std::fabs(diff));
          r.ref_max = std::max(r.ref_max, std::fabs(double(e)));
        }
      }
    }
  }
  r.rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  const std::vector<double> ref64 = Reference64(hp);
  r.gpu64 = Compare64(hp, out.bytes.data(), ref64);
  r.cpu64 = Compare64(hp, ref_bytes.data(), ref64);
  auto near64 = [dt](const Diff64& d) { return d.max_abs <= MaxAbs64(dt) && d.rel <= Rel64(dt); };
  r.ok = r.nan == 0 && r.zero_mismatch == 0 && r.lse_bad == 0 && r.rel <= Tolerance(dt) &&
         MaxAbsOk(r.max_abs, r.ref_max, Tolerance(dt)) && near64(r.gpu64) && near64(r.cpu64);
  return r;
}

std::vector<AttnCase> Scenarios() {
  std::vector<AttnCase> s;
  auto add = [&](const char* name, auto f) {
    AttnCase c;
    c.name = name;
    f(c);
    s.push_back(c);
  };
  add("mha_basic", [](AttnCase& c) {});
  add("gqa8_causal_bnsh", [](AttnCase& c) {
    c.B = 2; c.Nq = 16; c.Nkv = 2; c.Sq = 300; c.Skv = 1000;
    c.q_layout = c.kv_layout = c.out_layout = kBNSH;
    c.causal = true; c.causal_offset = 700;
  });
  add("mqa_kvlen_causal_q7", [](AttnCase& c) {
    c.B = 3; c.Nq = 4; c.Nkv = 1; c.Sq = 7; c.Skv = 1000; c.kv_layout = kBNSH;
    c.kv_lengths = true; c.causal = true; c.per_batch_offsets = true;
  });
  add("q1_kv1", [](AttnCase& c) { c.Sq = 1; c.Skv = 1; });
  add("kv0", [](AttnCase& c) { c.Nkv = 2; c.Sq = 300; c.Skv = 0; });
  add("decode_kvlen_q1", [](AttnCase& c) {
    c.B = 6; c.Nq = 8; c.Nkv = 8; c.Sq = 1; c.Skv = 1000; c.kv_layout = kBNSH;
    c.kv_lengths = true; c.causal = true; c.per_batch_offsets = true;
  });
  add("window_causal_left50", [](AttnCase& c) {
    c.Sq = 300; c.Skv = 300; c.causal = true; c.left = 50;
  });
  add("window_lr_noncausal", [](AttnCase& c) {
    c.B = 1; c.Nq = 4; c.Nkv = 2; c.causal_offset = 30; c.left = 10; c.right = 20;
  });
  add("softcap_causal", [](AttnCase& c) {
    c.softcap = 5.f; c.causal = true; c.causal_offset = 65;
  });
  add("bool_mask_short_len", [](AttnCase& c) {
    c.mask = MaskKind::kBool; c.mask_b = true; c.mask_len = 100;
  });
  add("add_mask_heads_causal_q7", [](AttnCase& c) {
    c.B = 1; c.Nq = 8; c.Nkv = 2; c.Sq = 7; c.mask = MaskKind::kAdditive; c.mask_n = true;
    c.causal = true; c.causal_offset = 122;
  });
  add("bool_mask_2d_kvlen_causal", [](AttnCase& c) {
    c.B = 3; c.Nq = 4; c.Nkv = 1; c.Sq = 300; c.Skv = 1000; c.mask = MaskKind::kBool;
    c.kv_lengths = true; c.causal = true; c.per_batch_offsets = true;
  });
  add("causal_q_gt_kv", [](AttnCase& c) {
    c.Sq = 300; c.Skv = 129; c.causal = true; c.causal_offset = 129 - 300;
  });
  add("causal_topleft_long", [](AttnCase& c) {
    c.B = 1; c.Sq = 300; c.Skv = 1000; c.causal = true; c.kv_layout = kBNSH;
  });
  add("mixed_layouts_softcap_addmask_window", [](AttnCase& c) {
    c.Nq = 8; c.Nkv = 8; c.Skv = 1000; c.q_layout = kBNSH; c.kv_layout = kBSNH;
    c.out_layout = kBNSH; c.softcap = 20.f; c.mask = MaskKind::kAdditive; c.mask_b = true;
    c.mask_q = false; c.mask_len = 777; c.left = 300; c.causal_offset = 500;
  });
  add("add_mask_len63_kvlen", [](AttnCase& c) {
    c.Nkv = 2; c.Sq = 129; c.Skv = 129; c.mask = MaskKind::kAdditive; c.mask_b = true;
    c.mask_n = true; c.mask_len = 63; c.kv_lengths = true; c.kv_layout = kBNSH;
  });
  add("scale_window_right0", [](AttnCase& c) {
    c.B = 1; c.Sq = 300; c.Skv = 300; c.scale = 0.3f; c.right = 0; c.left = 100;
  });
  // Negative sizes, read literally: the diagonal excluded; keys only ahead.
  add("window_right_minus1", [](AttnCase& c) {
    c.Sq = 130; c.Skv = 130; c.left = 40; c.right = -1;
  });
  add("window_left_minus3_mask", [](AttnCase& c) {
    c.Sq = 70; c.Skv = 200; c.left = -3; c.right = 60; c.mask = MaskKind::kBool;
  });
  add("gqa8_kv1_q64", [](AttnCase& c) {
    c.Nq = 8; c.Nkv = 1; c.Sq = 64; c.Skv = 1; c.causal = true;
  });
  return s;
}

// ------------------------------------------------------------------ KV copy cases

struct CopyCase {
  std::string name;
  DType dtype;
  int H, Hv;
  bool concat;
  Layout new_layout;
};

bool RunCopyCase(const CopyCase& c, std::mt19937& rng, std::string* detail) {
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  const int B = 3, N = 2, T = c.concat ? 5 : 3, past = c.concat ? 37 : 0;
  const int cap = c.concat ? past + T : 40;
  const DType dt = c.dtype;
  KvCopyParams p;
  p.dtype = dt;
  p.batch = B;
  p.num_kv_heads = N;
  p.head_size = c.H;
  p.v_head_size = c.Hv;
  p.num_new = T;
  p.dst_capacity = cap;
  p.past_len = past;
  p.new_k_strides = Strides(c.new_layout, N, T, c.H);
  p.new_v_strides = Strides(c.new_layout, N, T, c.Hv);
  p.dst_k_strides = Strides(kBNSH, N, cap, c.H);
  p.dst_v_strides = Strides(kBNSH, N, cap, c.Hv);
  p.past_k_strides = Strides(kBNSH, N, past, c.H);
  p.past_v_strides = Strides(kBNSH, N, past, c.Hv);
  HostTensor nk(dt, size_t(B) * N * T * c.H), nv(dt, size_t(B) * N * T * c.Hv);
  HostTensor pk(dt, size_t(B) * N * past * c.H), pv(dt, size_t(B) * N * past * c.Hv);
  HostTensor dk(dt, size_t(B) * N * cap * c.H), dv(dt, size_t(B) * N * cap * c.Hv);
  for (HostTensor* t : {&nk, &nv, &pk, &pv}) for (size_t i = 0; i < t->size(); ++i) t->set(i, u(rng));
  if (c.concat) {
    std::memset(dk.bytes.data(), 0xff, dk.bytes.size());
    std::memset(dv.bytes.data(), 0xff, dv.bytes.size());
  } else {
    for (HostTensor* t : {&dk, &dv}) for (size_t i = 0; i < t->size(); ++i) t->set(i, u(rng));
  }
  // Append: starts in range, at the end (partly dropped) and negative (partly dropped).
  std::vector<int32_t> starts = {5, cap - 2, -1};
  HostTensor rk = dk, rv = dv;

  KvCopyParams hp = p;
  hp.new_k = nk.bytes.data(); hp.new_v = nv.bytes.data();
  hp.dst_k = rk.bytes.data(); hp.dst_v = rv.bytes.data();
  if (c.concat) { hp.past_k = pk.bytes.data(); hp.past_v = pv.bytes.data(); }
  else hp.dst_starts = starts.data();
  cpu::KvCopy(hp);

  DevBuf gnk(nk.bytes.data(), nk.bytes.size()), gnv(nv.bytes.data(), nv.bytes.size());
  DevBuf gpk(pk.bytes.data(), pk.bytes.size()), gpv(pv.bytes.data(), pv.bytes.size());
  DevBuf gdk(dk.bytes.data(), dk.bytes.size()), gdv(dv.bytes.data(), dv.bytes.size());
  DevBuf gst(starts.data(), starts.size() * 4);
  KvCopyParams gp = p;
  gp.new_k = gnk.ptr; gp.new_v = gnv.ptr; gp.dst_k = gdk.ptr; gp.dst_v = gdv.ptr;
  if (c.concat) { gp.past_k = gpk.ptr; gp.past_v = gpv.ptr; }
  else gp.dst_starts = static_cast<const int32_t*>(gst.ptr);
  const std::string why = cuda::KvCopyUnsupported(gp);
  if (!why.empty()) { *detail = "unsupported: " + why; return false; }
  CHECK_CUDA(cuda::LaunchKvCopy(gp, 0));
  CHECK_CUDA(cudaDeviceSynchronize());
  std::vector<uint8_t> ok(dk.bytes.size()), ov(dv.bytes.size());
  CHECK_CUDA(cudaMemcpy(ok.data(), gdk.ptr, ok.size(), cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(ov.data(), gdv.ptr, ov.size(), cudaMemcpyDeviceToHost));
  size_t bad = 0;
  for (size_t i = 0; i < ok.size(); ++i) bad += ok[i] != rk.bytes[i];
  for (size_t i = 0; i < ov.size(); ++i) bad += ov[i] != rv.bytes[i];
  *detail = "differing bytes " + std::to_string(bad);
  return bad == 0;
}

// ------------------------------------------------------------------ bench

struct BenchCase {
  const char* name;
  int B, Nq, Nkv, S, H, Hv;
  bool causal;
  DType dt;
};

void Bench(const std::string& filter) {
  const BenchCase cases[] = {
      {"prefill B2 S4096 N32 H128 bf16", 2, 32, 32, 4096, 128, 128, false, DType::kBFloat16},
      {"prefill B2 S4096 N32 H128 bf16 causal", 2, 32, 32, 4096, 128, 128, true, DType::kBFloat16},
      {"prefill B2 S4096 N32/K8 H128 bf16 causal", 2, 32, 8, 4096, 128, 128, true, DType::kBFloat16},
      {"prefill B2 S4096 N32 H192/Hv128 bf16", 2, 32, 32, 4096, 192, 128, false, DType::kBFloat16},
      {"prefill B2 S4096 N32 H192/Hv128 bf16 causal", 2, 32, 32, 4096, 192, 128, true, DType::kBFloat16},
      {"prefill B2 S4096 N32 H128 f16", 2, 32, 32, 4096, 128, 128, false, DType::kFloat16},
      {"prefill B2 S4096 N16 H64 bf16", 2, 16, 16, 4096, 64, 64, false, DType::kBFloat16},
      {"prefill B2 S4096 N16 H64 bf16 causal", 2, 16, 16, 4096, 64, 64, true, DType::kBFloat16},
      {"prefill B2 S4096 N32 H96 bf16", 2, 32, 32, 4096, 96, 96, false, DType::kBFloat16},
      {"prefill B2 S4096 N16 H192/Hv192 bf16", 2, 16, 16, 4096, 192, 192, false, DType::kBFloat16},
      {"prefill B2 S4096 N16 H256 bf16", 2, 16, 16, 4096, 256, 256, false, DType::kBFloat16},
      {"prefill B2 S4096 N16 H256 bf16 causal", 2, 16, 16, 4096, 256, 256, true, DType::kBFloat16},
      {"prefill B1 S2048 N16 H128 f32", 1, 16, 16, 2048, 128, 128, false, DType::kFloat32},
  };
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("bench on %s (%d SMs); TFLOP/s counts 2*B*N*Sq*Skv*(H+Hv), halved for causal\n",
              prop.name, prop.multiProcessorCount);
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  for (const BenchCase& c : cases) {
    if (!filter.empty() && std::string(c.name).find(filter) == std::string::npos) continue;
    const DType dt = c.dt;
    HostTensor q(dt, size_t(c.B) * c.Nq * c.S * c.H), k(dt, size_t(c.B) * c.Nkv * c.S * c.H),
        v(dt, size_t(c.B) * c.Nkv * c.S * c.Hv);
    for (HostTensor* t : {&q, &k, &v}) for (size_t i = 0; i < t->size(); ++i) t->set(i, u(rng));
    const size_t n_out = size_t(c.B) * c.Nq * c.S * c.Hv;
    DevBuf dq(q.bytes.data(), q.bytes.size()), dk(k.bytes.data(), k.bytes.size()),
        dv(v.bytes.data(), v.bytes.size()), dout(n_out * DTypeBytes(dt)),
        dout2(n_out * DTypeBytes(dt));
    AttentionParams p =
        ShapeParams(dt, c.B, c.Nq, c.Nkv, c.S, c.S, c.H, c.Hv, kBSNH, kBSNH, kBSNH);
    p.q = dq.ptr; p.k = dk.ptr; p.v = dv.ptr; p.out = dout.ptr;
    p.is_causal = c.causal;
    double flops = 2.0 * c.B * c.Nq * double(c.S) * c.S * (c.H + c.Hv);
    if (c.causal) flops *= 0.5;
    double mn;
    const double med = TimeLaunch(p, cuda::LaunchAttentionForward, &mn);
    std::printf("%-46s %8.3f ms  %7.1f TFLOP/s  (min %.3f ms)\n", c.name, med,
                flops / (med * 1e-3) / 1e12, mn);
    std::fflush(stdout);
    if (dt != DType::kBFloat16) continue;
    for (const cuda::FwdVariant& var : cuda::FwdVariants()) {
      if (var.head_size != c.H || var.v_head_size != c.Hv) continue;
      AttentionParams pv = p;
      pv.out = dout2.ptr;
      const double t = TimeLaunch(pv, var.launch, &mn);
      std::printf("    variant %-38s %8.3f ms  %7.1f TFLOP/s  (diff vs shipped %.1e)\n",
                  var.name, t, flops / (t * 1e-3) / 1e12,
                  RelDiff(dout2.ptr, dout.ptr, n_out, dt));
      std::fflush(stdout);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, bench = false;
  std::string filter;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--bench") bench = true;
    else if (a == "--filter" && i + 1 < argc) filter = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--quick] [--bench] [--filter S]\n", argv[0]);
      return 2;
    }
  }
  int ndev = 0;
  CHECK_CUDA(cudaGetDeviceCount(&ndev));
  if (bench) {
    Bench(filter);
    return 0;
  }

  const DType all_dtypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};
  const DType quick_dtypes[] = {DType::kFloat32, DType::kBFloat16};
  const int heads_full[][2] = {{64, 64}, {128, 128}, {256, 256}, {192, 128}, {80, 80},
                               {24, 8},  {48, 96},   {20, 12},   {160, 100}};
  const int heads_quick[][2] = {{64, 64}, {128, 128}, {192, 128}, {80, 80}, {24, 8}, {20, 12}};
  std::vector<DType> dtypes(quick ? std::begin(quick_dtypes) : std::begin(all_dtypes),
                            quick ? std::end(quick_dtypes) : std::end(all_dtypes));
  std::vector<std::pair<int, int>> heads;
  if (quick) for (auto& h : heads_quick) heads.push_back({h[0], h[1]});
  else for (auto& h : heads_full) heads.push_back({h[0], h[1]});

  std::mt19937 rng(20261124);
  int total = 0, failed = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (DType dt : dtypes) {
    for (auto [H, Hv] : heads) {
      for (AttnCase c : Scenarios()) {
        c.dtype = dt;
        c.H = H;
        c.Hv = Hv;
        if (quick) {  // keep compute-sanitizer runs short
          c.Sq = std::min(c.Sq, 130);
          c.Skv = std::min(c.Skv, 300);
          c.causal_offset = std::min(c.causal_offset, c.Skv);
          if (c.mask_len > c.Skv) c.mask_len = c.Skv;
        }
        std::string label = std::string("attn ") + DTypeName(dt) + " H" + std::to_string(H) +
                            "/" + std::to_string(Hv) + " " + c.name;
        if (!filter.empty() && label.find(filter) == std::string::npos) continue;
        Result r = RunAttnCase(c, rng);
        ++total;
        failed += !r.ok;
        std::printf("%s %-62s B%d N%d/%d Sq%d Skv%d rel=%.2e max_abs=%.2e (max|ref| %.2e) nan=%zu "
                    "zero_mismatch=%zu lse_bad=%zu f64: gpu %.1e/%.1e cpu %.1e/%.1e\n",
                    r.ok ? "PASS" : "FAIL", label.c_str(), c.B, c.Nq, c.Nkv, c.Sq, c.Skv, r.rel,
                    r.max_abs, r.ref_max, r.nan, r.zero_mismatch, r.lse_bad, r.gpu64.rel, r.gpu64.max_abs,
                    r.cpu64.rel, r.cpu64.max_abs);
        std::fflush(stdout);
      }
    }
  }
  const int copy_heads[][2] = {{64, 64}, {128, 128}, {192, 128}, {24, 8}, {20, 12}, {3, 5}};
  for (DType dt : dtypes) {
    for (auto& h : copy_heads) {
      for (bool concat : {true, false}) {
        for (Layout l : {kBSNH, kBNSH}) {
          CopyCase c{concat ? "concat" : "append", dt, h[0], h[1], concat, l};
          std::string label = std::string("kv ") + c.name + " " + DTypeName(dt) + " H" +
                              std::to_string(h[0]) + "/" + std::to_string(h[1]) +
                              (l == kBSNH ? " new=BSNH" : " new=BNSH");
          if (!filter.empty() && label.find(filter) == std::string::npos) continue;
          std::string detail;
          const bool ok = RunCopyCase(c, rng, &detail);
          ++total;
          failed += !ok;
          std::printf("%s %-62s %s\n", ok ? "PASS" : "FAIL", label.c_str(), detail.c_str());
        }
      }
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s: %d of %d cases passed (%.1f s)\n", failed ? "FAIL" : "PASS", total - failed,
              total, secs);
  return failed ? 1 : 0;
}
