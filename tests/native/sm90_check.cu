// sm90_check: the sm_90a attention forward (kernels/attention_fwd_sm90.cuh) against
// the float64 reference (reference64.h), called directly (LaunchAttentionForwardSm90,
// whatever JAX_MEA_SM90_FORWARD says), and timed beside the sm_80 kernel.
//
// Cases: lengths, causal (top-left, bottom-right, per-batch offsets), GQA, windows,
// softcap, bool and additive masks (short, broadcast, dead rows), layouts.
// Each case draws fresh inputs (keys past kv_length(b) are NaN: a kernel that
// lets them reach the output shows NaN), poisons out and lse with NaN, runs the
// kernel and checks: no NaN, rows that see no key exactly 0 (lse -inf), out
// within the float64 bounds kernel_check uses, lse within kLseTol.
//
//   sm90_check              every case (f16, bf16; the head-dim table's SM90 rows
//                           64, 128, 192/128, 256, and head dims padded up to them;
//                           H64 again with 2 consumer warpgroups, "wg2")
//   sm90_check --quick      fewer, shorter cases (for compute-sanitizer)
//   sm90_check --debug      one tiny case (B1 T128 S128 N1 H64 bf16), twice: random
//                           inputs, then q = 0 (uniform P: P V alone); prints the
//                           first mismatching elements and a map of the bad rows
//   sm90_check --bench      TFLOP/s of the sm_90a and the sm_80 kernel, side by side
//                           (H64 also with 2 consumer warpgroups: "wg2")
//   sm90_check --filter S   only cases whose name contains S
//   sm90_check --pingpong   checks (or --debug) the kernel with the ping-pong between its
//                           consumer warpgroups (JAX_MEA_SM90_PINGPONG=1); with
//                           --bench: times it too ("pingpong")
//   Cases whose rows all see every key run again with 3 persistent CTAs walking
//   the blocks ("persistent3"; by default, grids of more than one wave on the
//   128x128 row; not with --simple or --pingpong, whose kernels are not persistent).
//   The checks pack GQA calls with q_len <= 64 wherever the group allows
//   (JAX_MEA_SM90_PACK=1 unless set); --bench runs the default rule, and forced on
//   and off beside it ("pack always", "pack off").
//   sm90_check --simple     checks (or --debug) the kernel without its intra-warpgroup
//                           pipelining: a pass there and a failure without it is a
//                           pipelining bug, a failure in both a layout bug
// Exit status: 0 all passed, 1 a failure, 77 no compute capability 9.x GPU (ctest: skipped).
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "check_common.h"
#include "jax_mea/params.h"
#include "kernels/attention.h"
#include "reference64.h"

using namespace jax_mea;
using namespace jax_mea::check;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr double kLseTol = 2e-3;  // absolute, natural log units (fp32 accumulation of exact inputs)

// The sm_90a kernel in configurations other than the default: --bench's A/B, and
// the checks of the 2-consumer H64 ("wg2") and of the ping-pong (--pingpong).
enum class Config {
  kTwoConsumers, kPingPongOn, kPingPongOff, kPackAlways, kPackOff,
  kPersistentOff,
  kPersistent3,  // 3 persistent CTAs walk the blocks of any grid of more than 3
};
template <Config kConfig>
cudaError_t WithConfig(const AttentionParams& p, cudaStream_t s) {
  cuda::Sm90Config c = cuda::Sm90EnvConfig();
  if (kConfig == Config::kTwoConsumers) c.h64_consumers = 2;
  if (kConfig == Config::kPingPongOn) c.pingpong = cuda::Sm90Config::PingPong::kOn;
  if (kConfig == Config::kPingPongOff) c.pingpong = cuda::Sm90Config::PingPong::kOff;
  if (kConfig == Config::kPackAlways) c.pack_gqa = cuda::Sm90Config::Pack::kAlways;
  if (kConfig == Config::kPackOff) c.pack_gqa = cuda::Sm90Config::Pack::kOff;
  if (kConfig == Config::kPersistentOff) c.persistent = false;
  if (kConfig == Config::kPersistent3) c.persistent_ctas = 3;
  return cuda::LaunchAttentionForwardSm90With(p, s, c);
}
LaunchFn g_sm90 = cuda::LaunchAttentionForwardSm90;
bool g_pingpong = false;

struct Case {
  std::string name;
  DType dtype = DType::kBFloat16;
  int H = 64, Hv = 64;
  int B = 2, Nq = 4, Nkv = 4, Sq = 128, Skv = 128;
  Layout q_layout = kBSNH, kv_layout = kBSNH, out_layout = kBSNH;
  bool causal = false;
  int causal_offset = 0;
  bool bottom_right = false;       // causal_offset = Skv - Sq (ONNX's causal)
  bool per_batch_offsets = false;  // offsets[b] = kv_length(b) - Sq (bottom-right)
  bool kv_lengths = false;         // per batch: 0, full, random, past capacity, negative, 1
  bool lse = true;
  bool zero_q = false;  // all logits 0: uniform P, so out = mean of the visible V rows
  // Logits that rise along the keys, 3-9 log2 units per 128 (q[.][0] in [0.5, 1.5]
  // times a ramp in k[.][0]): each tile raises the row's max, by more or less than a
  // kernel's rescaling slack (FlashAttention-4's conditional rescaling).
  bool rising = false;
  int left = kUnboundedWindow, right = kUnboundedWindow;  // local window (score.h)
  float softcap = 0.f;
  // Mask tensor [B|1, Nq|1, Sq|1, mask_len] (false: a broadcast axis), about 10%
  // of its rows dead (all False / all -inf); mask_len -1: Skv.
  MaskKind mask = MaskKind::kNone;
  bool mask_b = false, mask_n = false, mask_q = true;
  int mask_len = -1;
};

struct Outcome {
  bool ok = false;
  Diff64 out64;
  size_t nan = 0, zero_mismatch = 0, lse_bad = 0;
  double lse_max_err = 0;
  std::string why;  // set when the case could not run
};

// Prints up to `limit` elements of out (and lse) off the reference, and one
// character per query row of batch 0 / head 0: '.' good, 'N' NaN, 'x' off.
void PrintMismatches(const AttentionParams& p, const HostTensor& out,
                     const std::vector<double>& ref, const std::vector<float>& lse,
                     const std::vector<double>& lse_ref, int limit) {
  const double tol = MaxAbs64(p.dtype);
  int shown = 0;
  std::string rows;
  for (int b = 0; b < p.batch; ++b)
    for (int h = 0; h < p.num_heads; ++h)
      for (int i = 0; i < p.q_len; ++i) {
        const int64_t o = b * p.out_strides.batch + h * p.out_strides.head + i * p.out_strides.seq;
        const double* e = &ref[((size_t(b) * p.num_heads + h) * p.q_len + i) * p.v_head_size];
        char mark = '.';
        for (int d = 0; d < p.v_head_size; ++d) {
          const double g = out.get(o + d);
          const bool bad = std::isnan(g) || std::fabs(g - e[d]) > tol;
          if (!bad) continue;
          mark = std::isnan(g) ? 'N' : 'x';
          if (shown < limit) {
            std::printf("    out b%d h%d row %d col %d: got %.6f want %.6f\n", b, h, i, d, g, e[d]);
            ++shown;
          }
        }
        if (b == 0 && h == 0) rows += mark;
      }
  std::printf("    rows of b0 h0 ('.' good, 'N' NaN, 'x' off by > %.0e):\n", tol);
  for (size_t r = 0; r < rows.size(); r += 64) {
    std::printf("    %5zu %s\n", r, rows.substr(r, 64).c_str());
  }
  shown = 0;
  for (size_t r = 0; r < lse.size() && !lse_ref.empty() && shown < limit; ++r) {
    const double g = lse[r], e = lse_ref[r];
    const bool bad = std::isinf(e) ? g != e : !(std::fabs(g - e) <= kLseTol);
    if (bad) {
      std::printf("    lse row %zu (of [B, N, T]): got %.6f want %.6f\n", r, g, e);
      ++shown;
    }
  }
}

Outcome RunCase(const Case& c, std::mt19937& rng, bool verbose, LaunchFn launch = nullptr) {
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  const DType dt = c.dtype;
  AttentionParams p = ShapeParams(dt, c.B, c.Nq, c.Nkv, c.Sq, c.Skv, c.H, c.Hv, c.q_layout,
                                  c.kv_layout, c.out_layout);
  p.is_causal = c.causal;
  p.causal_offset = c.bottom_right ? c.Skv - c.Sq : c.causal_offset;
  p.left_window = c.left;
  p.right_window = c.right;
  p.softcap = c.softcap;
  HostTensor q(dt, size_t(c.B) * c.Nq * c.Sq * c.H), k(dt, size_t(c.B) * c.Nkv * c.Skv * c.H),
      v(dt, size_t(c.B) * c.Nkv * c.Skv * c.Hv), out(dt, size_t(c.B) * c.Nq * c.Sq * c.Hv);
  for (size_t i = 0; i < q.size(); ++i) q.set(i, c.zero_q ? 0.f : u(rng));
  for (size_t i = 0; i < k.size(); ++i) k.set(i, u(rng));
  for (size_t i = 0; i < v.size(); ++i) v.set(i, u(rng) * 0.5f);
  if (c.rising) {
    std::uniform_real_distribution<float> u01(0.f, 1.f);
    const float per_key = 6.f / 128.f / (p.scale * 1.44269504f);  // raw score per key
    for (int b = 0; b < c.B; ++b)
      for (int n = 0; n < c.Nq; ++n)
        for (int i = 0; i < c.Sq; ++i)
          q.set(b * p.q_strides.batch + n * p.q_strides.head + i * p.q_strides.seq,
                0.5f + u01(rng));
    for (int b = 0; b < c.B; ++b)
      for (int n = 0; n < c.Nkv; ++n)
        for (int j = 0; j < c.Skv; ++j)
          k.set(b * p.k_strides.batch + n * p.k_strides.head + j * p.k_strides.seq, per_key * j);
  }

  std::vector<int32_t> lengths(c.B, c.Skv), offsets(c.B, 0);
  if (c.kv_lengths) {
    const int choices[] = {0, c.Skv, static_cast<int>(rng() % (c.Skv + 1)), c.Skv + 7, -3, 1};
    for (int b = 0; b < c.B; ++b) lengths[b] = choices[b % 6];
    for (int b = 0; b < c.B; ++b) {
      const int len = std::max(0, std::min(lengths[b], c.Skv));
      for (int n = 0; n < c.Nkv; ++n)
        for (int j = len; j < c.Skv; ++j) {
          for (int d = 0; d < c.H; ++d)
            k.set(b * p.k_strides.batch + n * p.k_strides.head + j * p.k_strides.seq + d, kNaN);
          for (int d = 0; d < c.Hv; ++d)
            v.set(b * p.v_strides.batch + n * p.v_strides.head + j * p.v_strides.seq + d, kNaN);
        }
      if (c.per_batch_offsets) offsets[b] = len - c.Sq;
    }
  }

  // The mask (kernel_check's recipe): bool ~70% True, additive ~20% -inf, the rest
  // in [-2, 2].
  HostTensor mask_add;
  std::vector<uint8_t> mask_bool;
  if (c.mask != MaskKind::kNone) {
    std::uniform_real_distribution<float> u01(0.f, 1.f);
    const int mb = c.mask_b ? c.B : 1, mn = c.mask_n ? c.Nq : 1, mq = c.mask_q ? c.Sq : 1;
    const int mlen = c.mask_len >= 0 ? c.mask_len : c.Skv;
    const size_t rows = size_t(mb) * mn * mq;
    p.mask_kind = c.mask;
    p.mask_len = mlen;
    p.mask_q_stride = mq == 1 ? 0 : mlen;
    p.mask_head_stride = mn == 1 ? 0 : int64_t(mq) * mlen;
    p.mask_batch_stride = mb == 1 ? 0 : int64_t(mn) * mq * mlen;
    if (c.mask == MaskKind::kBool) {
      mask_bool.resize(rows * mlen);
      for (size_t r = 0; r < rows; ++r) {
        const bool dead = u01(rng) < 0.1f;
        for (int j = 0; j < mlen; ++j) mask_bool[r * mlen + j] = !dead && u01(rng) < 0.7f;
      }
    } else {
      mask_add = HostTensor(dt, rows * mlen);
      for (size_t r = 0; r < rows; ++r) {
        const bool dead = u01(rng) < 0.1f;
        for (int j = 0; j < mlen; ++j) {
          mask_add.set(r * mlen + j, dead || u01(rng) < 0.2f ? -INFINITY : u(rng));
        }
      }
    }
  }
  const void* mask_host = c.mask == MaskKind::kBool ? static_cast<const void*>(mask_bool.data())
                                                    : static_cast<const void*>(mask_add.bytes.data());
  const size_t mask_bytes = c.mask == MaskKind::kBool ? mask_bool.size() : mask_add.bytes.size();

  AttentionParams hp = p;  // host pointers, for the reference
  hp.q = q.bytes.data();
  hp.k = k.bytes.data();
  hp.v = v.bytes.data();
  hp.kv_lengths = c.kv_lengths ? lengths.data() : nullptr;
  hp.causal_offsets = c.per_batch_offsets ? offsets.data() : nullptr;
  hp.mask = c.mask != MaskKind::kNone ? mask_host : nullptr;

  const size_t lse_n = size_t(c.B) * c.Nq * c.Sq;
  DevBuf dq(q.bytes.data(), q.bytes.size()), dk(k.bytes.data(), k.bytes.size()),
      dv(v.bytes.data(), v.bytes.size()), dout(out.bytes.size()),
      dlse(c.lse ? lse_n * sizeof(float) : 0);
  DevBuf dlen(lengths.data(), c.kv_lengths ? lengths.size() * 4 : 0);
  DevBuf doff(offsets.data(), c.per_batch_offsets ? offsets.size() * 4 : 0);
  DevBuf dmask(mask_host, mask_bytes);
  CHECK_CUDA(cudaMemset(dout.ptr, 0xff, out.bytes.size()));  // NaN in both dtypes
  if (c.lse) CHECK_CUDA(cudaMemset(dlse.ptr, 0xff, lse_n * sizeof(float)));
  AttentionParams gp = p;
  gp.q = dq.ptr;
  gp.k = dk.ptr;
  gp.v = dv.ptr;
  gp.out = dout.ptr;
  gp.lse = c.lse ? static_cast<float*>(dlse.ptr) : nullptr;
  gp.kv_lengths = c.kv_lengths ? static_cast<const int32_t*>(dlen.ptr) : nullptr;
  gp.causal_offsets = c.per_batch_offsets ? static_cast<const int32_t*>(doff.ptr) : nullptr;
  gp.mask = dmask.ptr;

  Outcome r;
  r.why = cuda::Sm90ForwardUnsupported(gp);
  if (!r.why.empty()) return r;
  const cudaError_t err = (launch != nullptr ? launch : g_sm90)(gp, 0);
  if (err != cudaSuccess) {
    r.why = std::string("launch: ") + cudaGetErrorName(err);
    return r;
  }
  CHECK_CUDA(cudaDeviceSynchronize());
  CHECK_CUDA(cudaMemcpy(out.bytes.data(), dout.ptr, out.bytes.size(), cudaMemcpyDeviceToHost));
  std::vector<float> lse(c.lse ? lse_n : 0);
  if (c.lse) {
    CHECK_CUDA(cudaMemcpy(lse.data(), dlse.ptr, lse_n * sizeof(float), cudaMemcpyDeviceToHost));
  }

  std::vector<double> lse_ref;
  const std::vector<double> ref = Reference64(hp, c.lse ? &lse_ref : nullptr);
  r.out64 = Compare64(p, out.bytes.data(), ref);
  for (int b = 0; b < c.B; ++b)
    for (int h = 0; h < c.Nq; ++h)
      for (int i = 0; i < c.Sq; ++i) {
        const int64_t o = b * p.out_strides.batch + h * p.out_strides.head + i * p.out_strides.seq;
        const double* e = &ref[((size_t(b) * c.Nq + h) * c.Sq + i) * c.Hv];
        bool ref_zero = true;
        for (int d = 0; d < c.Hv; ++d) ref_zero &= e[d] == 0.0;
        for (int d = 0; d < c.Hv; ++d) {
          const float g = out.get(o + d);
          r.nan += std::isnan(g);
          r.zero_mismatch += ref_zero && g != 0.f;
        }
      }
  for (size_t i = 0; i < lse.size(); ++i) {
    if (std::isinf(lse_ref[i])) {
      r.lse_bad += lse[i] != lse_ref[i];  // -inf exactly
    } else {
      const double e = std::fabs(lse[i] - lse_ref[i]);
      r.lse_bad += !(e <= kLseTol);  // NaN counts
      if (e == e) r.lse_max_err = std::max(r.lse_max_err, e);
    }
  }
  r.ok = r.nan == 0 && r.zero_mismatch == 0 && r.lse_bad == 0 &&
         r.out64.max_abs <= MaxAbs64(dt) && r.out64.rel <= Rel64(dt);
  if (!r.ok && verbose) PrintMismatches(p, out, ref, lse, lse_ref, 12);
  return r;
}

// The cases of one dtype and head-dim pair; `quick` shortens them; `few`: the
// six that cover the most (a padded head dim needs no more).
std::vector<Case> Cases(DType dt, int H, int Hv, bool quick, bool few) {
  std::vector<Case> s;
  auto add = [&](const char* name, auto f) {
    Case c;
    c.name = name;
    c.dtype = dt;
    c.H = H;
    c.Hv = Hv;
    f(c);
    if (quick) {
      c.Sq = std::min(c.Sq, 200);
      c.Skv = std::min(c.Skv, 300);
      c.mask_len = std::min(c.mask_len, c.Skv);
    }
    s.push_back(c);
  };
  add("basic_T128_S128", [](Case& c) { c.lse = false; });
  add("ragged_T200_S333_gqa2_layouts", [](Case& c) {
    c.Nq = 4; c.Nkv = 2; c.Sq = 200; c.Skv = 333;
    c.q_layout = kBNSH; c.out_layout = kBNSH;
  });
  add("q1_S1000", [](Case& c) { c.B = 3; c.Nq = 8; c.Nkv = 8; c.Sq = 1; c.Skv = 1000; });
  add("kv1_T300", [](Case& c) { c.Sq = 300; c.Skv = 1; c.lse = false; });
  add("gqa4_causal_topleft_T300_S517", [](Case& c) {
    c.Nq = 8; c.Nkv = 2; c.Sq = 300; c.Skv = 517; c.causal = true; c.kv_layout = kBNSH;
  });
  add("causal_bottomright_T100_S700", [](Case& c) {
    c.B = 1; c.Sq = 100; c.Skv = 700; c.causal = true; c.bottom_right = true;
  });
  add("causal_bottomright_T700_S100", [](Case& c) {  // the first T - S rows see no key
    c.B = 1; c.Sq = 700; c.Skv = 100; c.causal = true; c.bottom_right = true;
  });
  add("mqa_causal_T1100_S1100", [](Case& c) {
    c.B = 1; c.Nq = 2; c.Nkv = 1; c.Sq = 1100; c.Skv = 1100; c.causal = true; c.lse = false;
  });
  add("kvlen_T150_S400", [](Case& c) {
    c.B = 6; c.Nq = 4; c.Nkv = 2; c.Sq = 150; c.Skv = 400; c.kv_lengths = true;
    c.kv_layout = kBNSH;
  });
  add("kvlen_causal_per_batch_T150_S400", [](Case& c) {
    c.B = 6; c.Sq = 150; c.Skv = 400; c.kv_lengths = true; c.causal = true;
    c.per_batch_offsets = true;
  });
  add("long_T513_S2049", [](Case& c) { c.B = 1; c.Nq = 1; c.Nkv = 1; c.Sq = 513; c.Skv = 2049; });
  add("rising_scores_T256_S1300", [](Case& c) {
    c.B = 1; c.Nq = 2; c.Nkv = 1; c.Sq = 256; c.Skv = 1300; c.rising = true;
  });
  // GQA with q_len <= 64: a CTA takes several query heads of the group (packed
  // segments of 8 to 64 rows; a group that does not fill its last CTA repeats its
  // last head there, computed and not stored).
  add("gqa16_packed_T1_S1000", [](Case& c) { c.B = 3; c.Nq = 32; c.Nkv = 2; c.Sq = 1; c.Skv = 1000; });
  add("gqa4_packed_causal_T16_S517_layouts", [](Case& c) {
    c.B = 2; c.Nq = 8; c.Nkv = 2; c.Sq = 16; c.Skv = 517; c.causal = true;
    c.bottom_right = true; c.q_layout = kBNSH; c.out_layout = kBNSH;
  });
  add("gqa3_packed_kvlen_causal_T33_S300", [](Case& c) {
    c.B = 6; c.Nq = 6; c.Nkv = 2; c.Sq = 33; c.Skv = 300; c.kv_lengths = true; c.causal = true;
    c.per_batch_offsets = true;
  });
  add("gqa5_packed_window_softcap_T7_S400", [](Case& c) {
    c.B = 2; c.Nq = 10; c.Nkv = 2; c.Sq = 7; c.Skv = 400; c.causal = true; c.causal_offset = 300;
    c.left = 50; c.softcap = 5.f; c.kv_layout = kBNSH;
  });
  add("gqa2_packed_window_ahead_T64_S40", [](Case& c) {  // rows from 37 on see no key
    c.B = 2; c.Nq = 4; c.Nkv = 2; c.Sq = 64; c.Skv = 40; c.left = -3; c.right = 60;
  });
  // Windows: a block's rows see different key ranges; tiles in the middle of the
  // block's range are masked per element.
  add("window_causal_left50_T300_S300", [](Case& c) {
    c.Sq = 300; c.Skv = 300; c.causal = true; c.left = 50;
  });
  add("window_lr_T200_S700", [](Case& c) {  // both ends move, 5 tiles a block
    c.B = 1; c.Sq = 200; c.Skv = 700; c.causal_offset = 250; c.left = 100; c.right = 130;
  });
  // right = -1 excludes the diagonal: row 0 sees no key (nor does any row of a
  // batch of kv length 0 or 1).
  add("window_right_minus1_kvlen_T260_S260", [](Case& c) {
    c.B = 6; c.Sq = 260; c.Skv = 260; c.left = 40; c.right = -1; c.kv_lengths = true;
  });
  // Keys 3 to 60 ahead of the row only: rows from 197 on see none, the block of
  // rows 256.. as a whole sees none (the early exit).
  add("window_ahead_only_T300_S200", [](Case& c) {
    c.Sq = 300; c.Skv = 200; c.left = -3; c.right = 60;
  });
  add("softcap_causal_T300_S517", [](Case& c) {
    c.B = 1; c.Nq = 4; c.Nkv = 2; c.Sq = 300; c.Skv = 517; c.causal = true; c.causal_offset = 65;
    c.softcap = 5.f;
  });
  // Mask tensors, read in place: short masks (mask_len < S: keys past it
  // unseen), broadcast axes (stride 0), dead rows, with causal, kv lengths,
  // windows and softcap.
  add("bool_mask_short_len_T200_S333", [](Case& c) {
    c.Sq = 200; c.Skv = 333; c.mask = MaskKind::kBool; c.mask_b = true; c.mask_len = 100;
  });
  add("bool_mask_2d_kvlen_causal_T300_S700", [](Case& c) {  // [1, 1, Sq, S]
    c.B = 6; c.Nq = 2; c.Nkv = 1; c.Sq = 300; c.Skv = 700; c.mask = MaskKind::kBool;
    c.kv_lengths = true; c.causal = true; c.per_batch_offsets = true;
  });
  add("add_mask_heads_gqa_causal_T150_S517", [](Case& c) {  // [1, Nq, Sq, S]
    c.B = 1; c.Nq = 8; c.Nkv = 2; c.Sq = 150; c.Skv = 517; c.mask = MaskKind::kAdditive;
    c.mask_n = true; c.causal = true; c.bottom_right = true;
  });
  add("add_mask_rowless_len63_kvlen_T129_S129", [](Case& c) {  // [B, Nq, 1, 63]
    c.B = 6; c.Nkv = 2; c.Sq = 129; c.Skv = 129; c.mask = MaskKind::kAdditive; c.mask_b = true;
    c.mask_n = true; c.mask_q = false; c.mask_len = 63; c.kv_lengths = true;
  });
  add("add_mask_softcap_window_T300_S1000", [](Case& c) {  // [B, 1, 1, 777]
    c.B = 2; c.Nq = 2; c.Nkv = 2; c.Sq = 300; c.Skv = 1000; c.q_layout = kBNSH;
    c.out_layout = kBNSH; c.softcap = 20.f; c.mask = MaskKind::kAdditive; c.mask_b = true;
    c.mask_q = false; c.mask_len = 777; c.left = 300; c.causal_offset = 500; c.causal = true;
  });
  add("bool_mask_window_ahead_T70_S200", [](Case& c) {
    c.Sq = 70; c.Skv = 200; c.left = -3; c.right = 60; c.mask = MaskKind::kBool;
  });
  add("softcap20_window_kvlen_T150_S400", [](Case& c) {
    c.B = 6; c.Sq = 150; c.Skv = 400; c.softcap = 20.f; c.left = 120; c.causal = true;
    c.per_batch_offsets = true; c.kv_lengths = true;
  });
  if (few) {
    const char* keep[] = {"ragged_T200_S333_gqa2_layouts", "gqa4_causal_topleft_T300_S517",
                          "kvlen_causal_per_batch_T150_S400", "long_T513_S2049",
                          "softcap20_window_kvlen_T150_S400",
                          "add_mask_softcap_window_T300_S1000"};
    std::vector<Case> kept;
    for (const Case& c : s)
      for (const char* k : keep) if (c.name == k) kept.push_back(c);
    return kept;
  }
  return s;
}

int Check(bool quick, const std::string& filter) {
  const DType dtypes[] = {DType::kBFloat16, DType::kFloat16};
  // The SM90 rows of the head-dim table, then head dims padded up to one.
  const std::vector<std::pair<int, int>> rows = {{64, 64}, {128, 128}, {192, 128}, {256, 256}};
  const std::vector<std::pair<int, int>> padded = {{96, 96}, {32, 64}, {160, 120}, {200, 256}};
  std::vector<std::pair<int, int>> heads = rows;
  if (!quick) heads.insert(heads.end(), padded.begin(), padded.end());
  // H64 runs with 3 consumer warpgroups by default: its cases again with 2 ("wg2").
  heads.push_back({-64, -64});
  std::mt19937 rng(20261201);
  int total = 0, failed = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (DType dt : dtypes) {
    if (quick && dt == DType::kFloat16) continue;
    for (const auto& [h_entry, hv_entry] : heads) {
      const bool wg2 = h_entry < 0;
      const int H = wg2 ? -h_entry : h_entry, Hv = wg2 ? -hv_entry : hv_entry;
      const bool few = std::find(rows.begin(), rows.end(), std::make_pair(H, Hv)) == rows.end();
      for (const Case& c : Cases(dt, H, Hv, quick, few)) {
        const std::string label = std::string(DTypeName(dt)) + " H" + std::to_string(H) + "/" +
                                  std::to_string(Hv) + (wg2 ? " wg2 " : " ") + c.name;
        if (!filter.empty() && label.find(filter) == std::string::npos) continue;
        auto run = [&](const std::string& name, LaunchFn launch) {
          const Outcome r = RunCase(c, rng, /*verbose=*/true, launch);
          ++total;
          failed += !r.ok;
          if (!r.why.empty()) {
            std::printf("FAIL %-52s did not run: %s\n", name.c_str(), r.why.c_str());
          } else {
            std::printf("%s %-52s B%d N%d/%d T%d S%d f64 rel=%.1e max_abs=%.1e nan=%zu "
                        "zero_mismatch=%zu lse_bad=%zu lse_err=%.1e\n",
                        r.ok ? "PASS" : "FAIL", name.c_str(), c.B, c.Nq, c.Nkv, c.Sq, c.Skv,
                        r.out64.rel, r.out64.max_abs, r.nan, r.zero_mismatch, r.lse_bad,
                        r.lse_max_err);
          }
          std::fflush(stdout);
        };
        run(label, wg2 ? WithConfig<Config::kTwoConsumers> : nullptr);
        // Grids whose blocks all see every key again with 3 persistent CTAs walking
        // them (the kernel takes them on the 128x128 row: H, Hv in (64, 128]),
        // pipelined and without the ping-pong, so not under --simple or --pingpong.
        const bool packed = c.Nkv < c.Nq && c.Sq <= 64;
        const bool row128 = std::max(H, Hv) > 64 && H <= 128 && Hv <= 128;
        if (!wg2 && !g_pingpong && g_sm90 != cuda::LaunchAttentionForwardSm90Simple &&
            !c.causal && c.left == kUnboundedWindow && c.right == kUnboundedWindow &&
            !c.kv_lengths && c.mask == MaskKind::kNone && !packed && row128) {
          run(label + " persistent3", WithConfig<Config::kPersistent3>);
        }
      }
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s: %d of %d cases passed (%.1f s)\n", failed ? "FAIL" : "PASS", total - failed,
              total, secs);
  return failed ? 1 : 0;
}

int Debug() {
  std::mt19937 rng(7);
  int failed = 0;
  for (bool zero_q : {false, true}) {
    Case c;
    c.name = zero_q ? "debug q=0 (uniform P: P V alone)" : "debug random";
    c.B = 1; c.Nq = 1; c.Nkv = 1; c.Sq = 128; c.Skv = 128; c.H = 64; c.Hv = 64;
    c.zero_q = zero_q;
    const Outcome r = RunCase(c, rng, /*verbose=*/true);
    failed += !r.ok;
    std::printf("%s %s: %s f64 rel=%.2e max_abs=%.2e nan=%zu zero_mismatch=%zu lse_bad=%zu\n",
                r.ok ? "PASS" : "FAIL", c.name.c_str(), r.why.empty() ? "ran" : r.why.c_str(),
                r.out64.rel, r.out64.max_abs, r.nan, r.zero_mismatch, r.lse_bad);
  }
  return failed ? 1 : 0;
}

void Bench(const std::string& filter) {
  struct BenchCase {
    const char* name;
    int B, Nq, Nkv, S, H, Hv;
    bool causal;
    DType dt;
    int left = kUnboundedWindow;
    float softcap = 0.f;
    bool mask = false;  // a bool mask [1, 1, S, S], ~70% True
    int Sq = 0;          // query rows (0: S)
  };
  const BenchCase cases[] = {
      {"B2 S4096 N32 H128 bf16", 2, 32, 32, 4096, 128, 128, false, DType::kBFloat16},
      {"B2 S4096 N32 H128 bf16 causal", 2, 32, 32, 4096, 128, 128, true, DType::kBFloat16},
      {"B2 S4096 N32/8 H128 bf16 causal", 2, 32, 8, 4096, 128, 128, true, DType::kBFloat16},
      {"B4 S4096 N32 H64 bf16", 4, 32, 32, 4096, 64, 64, false, DType::kBFloat16},
      {"B4 S4096 N32 H64 bf16 causal", 4, 32, 32, 4096, 64, 64, true, DType::kBFloat16},
      {"B4 S4096 N32 H64 f16", 4, 32, 32, 4096, 64, 64, false, DType::kFloat16},
      {"B2 S4096 N32 H128 f16", 2, 32, 32, 4096, 128, 128, false, DType::kFloat16},
      {"B2 S4096 N32 H128 f16 causal", 2, 32, 32, 4096, 128, 128, true, DType::kFloat16},
      {"B2 S4096 N32 H192/Hv128 bf16", 2, 32, 32, 4096, 192, 128, false, DType::kBFloat16},
      {"B2 S4096 N32 H192/Hv128 bf16 causal", 2, 32, 32, 4096, 192, 128, true, DType::kBFloat16},
      {"B2 S4096 N16 H256 bf16", 2, 16, 16, 4096, 256, 256, false, DType::kBFloat16},
      {"B2 S4096 N16 H256 bf16 causal", 2, 16, 16, 4096, 256, 256, true, DType::kBFloat16},
      {"B2 S4096 N32 H128 bf16 causal left1024", 2, 32, 32, 4096, 128, 128, true,
       DType::kBFloat16, 1024},
      {"B2 S4096 N32 H128 bf16 softcap30", 2, 32, 32, 4096, 128, 128, false, DType::kBFloat16,
       kUnboundedWindow, 30.f},
      {"B2 S4096 N32 H128 bf16 bool mask", 2, 32, 32, 4096, 128, 128, false, DType::kBFloat16,
       kUnboundedWindow, 0.f, true},
      {"B4 S4096 N32 H64 bf16 bool mask", 4, 32, 32, 4096, 64, 64, false, DType::kBFloat16,
       kUnboundedWindow, 0.f, true},
      // Short sequences: a few key tiles per CTA (prefill.py's S = 512 row: 0.66x cuDNN)
      {"B2 S512 N32 H128 bf16", 2, 32, 32, 512, 128, 128, false, DType::kBFloat16},
      {"B2 S1024 N32 H128 bf16", 2, 32, 32, 1024, 128, 128, false, DType::kBFloat16},
      // One wave (at most 128 CTAs): a CTA's time for 4, 8, 16 and 32 key tiles, whose
      // differences split it into a cost per tile and a fixed cost per CTA
      {"B1 S512 N8 H128 bf16 (1 wave)", 1, 8, 8, 512, 128, 128, false, DType::kBFloat16},
      {"B1 S1024 N8 H128 bf16 (1 wave)", 1, 8, 8, 1024, 128, 128, false, DType::kBFloat16},
      {"B1 S2048 N8 H128 bf16 (1 wave)", 1, 8, 8, 2048, 128, 128, false, DType::kBFloat16},
      {"B1 S4096 N4 H128 bf16 (1 wave)", 1, 4, 4, 4096, 128, 128, false, DType::kBFloat16},
      // GQA with few query rows (chunked prefill, speculative decoding): packed
      {"B8 T64 S4096 N32/8 H128 bf16", 8, 32, 8, 4096, 128, 128, false, DType::kBFloat16,
       kUnboundedWindow, 0.f, false, 64},
      {"B8 T16 S4096 N32/8 H128 bf16 causal", 8, 32, 8, 4096, 128, 128, true, DType::kBFloat16,
       kUnboundedWindow, 0.f, false, 16},
      {"B4 T32 S8192 N32/4 H64 bf16", 4, 32, 4, 8192, 64, 64, false, DType::kBFloat16,
       kUnboundedWindow, 0.f, false, 32},
  };
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("bench on %s (%d SMs); median of 20 after 3 warm-ups (cudaEvents); TFLOP/s counts\n"
              "2*B*N*(H+Hv)*(visible query-key pairs: S*S, about half for causal, masks not\n"
              "counted); diff: relative L2 of sm90's out vs sm80's; 'wg2': H64 with 2 consumer\n"
              "warpgroups (the default there is 3; JAX_MEA_SM90_H64_CONSUMERS=2)\n",
              prop.name, prop.multiProcessorCount);
  std::printf("sm90: pipelined (the default); simple: without the intra-warpgroup overlap\n");
  std::printf("%-36s %8s %7s %8s %7s %8s %7s %6s %8s\n", "case", "sm90 ms", "TFLOP/s",
              "simple", "TFLOP/s", "sm80 ms", "TFLOP/s", "x sm80", "diff");
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  for (const BenchCase& c : cases) {
    if (!filter.empty() && std::string(c.name).find(filter) == std::string::npos) continue;
    const int Sq = c.Sq > 0 ? c.Sq : c.S;
    HostTensor q(c.dt, size_t(c.B) * c.Nq * Sq * c.H), k(c.dt, size_t(c.B) * c.Nkv * c.S * c.H),
        v(c.dt, size_t(c.B) * c.Nkv * c.S * c.Hv);
    for (HostTensor* t : {&q, &k, &v})
      for (size_t i = 0; i < t->size(); ++i) t->set(i, u(rng));
    const size_t n_out = size_t(c.B) * c.Nq * Sq * c.Hv;
    DevBuf dq(q.bytes.data(), q.bytes.size()), dk(k.bytes.data(), k.bytes.size()),
        dv(v.bytes.data(), v.bytes.size()), d90(n_out * DTypeBytes(c.dt)),
        d80(n_out * DTypeBytes(c.dt));
    AttentionParams p =
        ShapeParams(c.dt, c.B, c.Nq, c.Nkv, Sq, c.S, c.H, c.Hv, kBSNH, kBSNH, kBSNH);
    p.causal_offset = c.S - Sq;  // the query rows are the last ones (bottom-right)
    p.q = dq.ptr;
    p.k = dk.ptr;
    p.v = dv.ptr;
    p.is_causal = c.causal;
    p.left_window = c.left;
    p.softcap = c.softcap;
    std::vector<uint8_t> mask;
    if (c.mask) {
      mask.resize(size_t(c.S) * c.S);
      for (uint8_t& m : mask) m = (rng() % 10) < 7;
      p.mask_kind = MaskKind::kBool;
      p.mask_len = c.S;
      p.mask_q_stride = c.S;
    }
    DevBuf dmask(mask.data(), mask.size());
    p.mask = dmask.ptr;
    double pairs = 0;
    for (int i = 0; i < Sq; ++i) {
      const KeyRange r = VisibleKeys(p, i + p.causal_offset, c.S);
      pairs += r.empty() ? 0 : r.hi - r.lo;
    }
    const double flops = 2.0 * c.B * c.Nq * pairs * (c.H + c.Hv);
    const std::string why = cuda::Sm90ForwardUnsupported(p);
    if (!why.empty()) {
      std::printf("%-36s sm90 does not take it: %s\n", c.name, why.c_str());
      continue;
    }
    double mn;
    AttentionParams p90 = p, p80 = p;
    p90.out = d90.ptr;
    p80.out = d80.ptr;
    const double tsim = TimeLaunch(p90, cuda::LaunchAttentionForwardSm90Simple, &mn);
    const double t90 = TimeLaunch(p90, cuda::LaunchAttentionForwardSm90, &mn);
    const double t80 = TimeLaunch(p80, cuda::LaunchAttentionForwardSm80, &mn);
    auto tflops = [&](double ms) { return flops / (ms * 1e-3) / 1e12; };
    std::printf("%-36s %8.3f %7.1f %8.3f %7.1f %8.3f %7.1f %6.2f %8.1e\n", c.name, t90,
                tflops(t90), tsim, tflops(tsim), t80, tflops(t80), t80 / t90,
                RelDiff(d90.ptr, d80.ptr, n_out, c.dt));
    auto variant = [&](const char* label, LaunchFn fn) {
      const double t = TimeLaunch(p90, fn, &mn);
      std::printf("%-36s %8.3f %7.1f %8s %7s %8s %7s %6.2f %8.1e\n", label, t, tflops(t), "-",
                  "-", "-", "-", t80 / t, RelDiff(d90.ptr, d80.ptr, n_out, c.dt));
    };
    if (c.H == 64 && c.Hv == 64 && !c.mask) {  // the 2-consumer configuration beside it
      variant("  wg2", WithConfig<Config::kTwoConsumers>);
    }
    if (!c.causal && c.left == kUnboundedWindow && !c.mask && Sq == c.S && c.H == 128 &&
        c.Hv == 128) {  // one CTA per block, beside the persistent grid
      variant("  persistent off", WithConfig<Config::kPersistentOff>);
    }
    if (Sq < c.S && c.Nkv < c.Nq) {  // GQA packing forced on and off, beside the default
      variant("  pack always", WithConfig<Config::kPackAlways>);
      variant("  pack off", WithConfig<Config::kPackOff>);
    }
    if (g_pingpong) {  // the ping-pong on and off, beside the default (by row)
      variant("  pingpong on", WithConfig<Config::kPingPongOn>);
      variant("  pingpong off", WithConfig<Config::kPingPongOff>);
    }
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, bench = false, debug = false;
  std::string filter;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--bench") bench = true;
    else if (a == "--debug") debug = true;
    else if (a == "--simple") g_sm90 = cuda::LaunchAttentionForwardSm90Simple;
    else if (a == "--pingpong") {
      g_sm90 = WithConfig<Config::kPingPongOn>;
      g_pingpong = true;
    }
    else if (a == "--filter" && i + 1 < argc) filter = argv[++i];
    else {
      std::fprintf(stderr,
                   "usage: %s [--quick] [--debug] [--bench] [--simple] [--pingpong] "
                   "[--filter S]\n",
                   argv[0]);
      return 2;
    }
  }
  int ndev = 0;
  CHECK_CUDA(cudaGetDeviceCount(&ndev));
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  if (prop.major != 9) {
    std::printf("SKIP: %s is compute capability %d.%d; the sm_90a forward needs 9.x\n", prop.name,
                prop.major, prop.minor);
    return 77;
  }
  if (bench) {
    Bench(filter);
    return 0;
  }
  // The checks' every entry with the ping-pong (the "wg2" H64 cases too); read once.
  if (g_pingpong) setenv("JAX_MEA_SM90_PINGPONG", "1", 1);
  // GQA calls with q_len <= 64 packed wherever the group allows, not only where that
  // saves a wave of CTAs (the checks' grids are small): the packed instances run.
  setenv("JAX_MEA_SM90_PACK", "1", /*overwrite=*/0);
  if (debug) return Debug();
  return Check(quick, filter);
}
