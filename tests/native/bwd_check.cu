// Native check of the CUDA attention backward (cuda/kernels/attention_bwd.cuh; on
// Hopper its main kernel is attention_bwd_sm90.cuh's where BwdTakesSm90, and
// BwdKernel with JAX_MEA_SM90_BACKWARD=0) against the CPU backward
// (cuda/cpu/attention_bwd_cpu.cc) on random data: GQA
// (ratios 2, 3, 4, 8), causal (with offsets), windows, softcap, bool masks with
// fully masked rows, kv lengths including 0 and full, BSNH / BNSH layouts, lengths
// on and off the kernel's 64-row / 128-key tiles. The forward's out and lse come from the CPU
// forward. Gradients are poisoned (NaN bytes) before the launch, so an element the
// kernel never writes fails; a NaN where the CPU has none fails. Each case runs
// twice and the two runs must agree bitwise (the backward is deterministic).
// Prints max-abs and rel-L2 per gradient; exits 1 on any failure.
//
//   bwd_check            every case
//   bwd_check --quick    the short ones (ctest, compute-sanitizer)
//   bwd_check --bench    timings (cudaEvents, median of 20) at B2 S4096 N32 H128 bf16 and more
//                        (a name filter may follow; "sm80 kernel" rows time BwdKernel)
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "check_common.h"
#include "jax_mea/workspace.h"
#include "cpu/kernels.h"
#include "kernels/attention.h"
#include "kernels/attention_bwd.cuh"  // RunBwd, to time its launches one by one

using namespace jax_mea;
using namespace jax_mea::check;

namespace {

struct Case {
  const char* name;
  DType dtype;
  int B, Nq, Nkv, Sq, Skv, H, Hv;
  bool causal = false;
  int causal_offset = 0;
  int left = kUnboundedWindow, right = kUnboundedWindow;
  float softcap = 0.f;
  bool lengths = false;  // kv_lengths {0, Skv / 2 + 3, ..., Skv (the last batch)}
  bool mask = false;     // random bool mask [B, 1, Sq, Skv], row 1 fully masked
  Layout q_layout = kBSNH, kv_layout = kBNSH;
};

uint16_t ToBits(float x, DType t) {
  uint16_t r;
  if (t == DType::kFloat16) {
    __half h = __float2half_rn(x);
    std::memcpy(&r, &h, 2);
  } else {
    __nv_bfloat16 h = __float2bfloat16_rn(x);
    std::memcpy(&r, &h, 2);
  }
  return r;
}
float FromBits(uint16_t b, DType t) {
  if (t == DType::kFloat16) {
    __half h;
    std::memcpy(&h, &b, 2);
    return __half2float(h);
  }
  __nv_bfloat16 h;
  std::memcpy(&h, &b, 2);
  return __bfloat162float(h);
}

std::vector<uint16_t> Random(size_t n, DType t, std::mt19937& rng) {
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = ToBits(d(rng), t);
  return v;
}

// Compares one gradient; prints its errors.
bool Compare(const char* what, const std::vector<uint16_t>& got, const std::vector<uint16_t>& ref,
             DType t, double rel_tol) {
  double err2 = 0, ref2 = 0, max_abs = 0, ref_max = 0;
  size_t nans = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = FromBits(got[i], t), r = FromBits(ref[i], t);
    if (std::isnan(g) != std::isnan(r)) ++nans;
    if (std::isnan(g) || std::isnan(r)) continue;
    err2 += (g - r) * (g - r);
    ref2 += r * r;
    max_abs = std::fmax(max_abs, std::fabs(g - r));
    ref_max = std::fmax(ref_max, std::fabs(r));
  }
  const double rel = ref2 > 0 ? std::sqrt(err2 / ref2) : std::sqrt(err2);
  const bool ok = nans == 0 && rel <= rel_tol && MaxAbsOk(max_abs, ref_max, rel_tol);
  std::printf("    %s: rel-L2 %.2e max-abs %.2e (ref max %.2e) NaN mismatches %zu %s\n", what, rel,
              max_abs, ref_max, nans, ok ? "" : "FAIL");
  return ok;
}

bool RunCase(const Case& c, std::mt19937& rng) {
  std::printf("%s (%s B%d Nq%d Nkv%d Sq%d Skv%d H%d Hv%d)\n", c.name, DTypeName(c.dtype), c.B,
              c.Nq, c.Nkv, c.Sq, c.Skv, c.H, c.Hv);
  AttentionParams p = ShapeParams(c.dtype, c.B, c.Nq, c.Nkv, c.Sq, c.Skv, c.H, c.Hv, c.q_layout,
                                  c.kv_layout, c.q_layout);
  p.is_causal = c.causal;
  p.causal_offset = c.causal_offset;
  p.left_window = c.left;
  p.right_window = c.right;
  p.softcap = c.softcap;
  const size_t nq = size_t(c.B) * c.Nq * c.Sq * c.H, nk = size_t(c.B) * c.Nkv * c.Skv * c.H;
  const size_t nv = size_t(c.B) * c.Nkv * c.Skv * c.Hv, no = size_t(c.B) * c.Nq * c.Sq * c.Hv;
  const size_t rows = size_t(c.B) * c.Nq * c.Sq;
  auto q = Random(nq, c.dtype, rng), k = Random(nk, c.dtype, rng), v = Random(nv, c.dtype, rng);
  auto dout = Random(no, c.dtype, rng);
  std::vector<int32_t> lengths(c.B);
  for (int b = 0; b < c.B; ++b) lengths[b] = b == 0 ? 0 : std::min(c.Skv, c.Skv / 2 + 3 * b);
  if (c.B > 2) lengths[c.B - 1] = c.Skv;
  std::vector<uint8_t> mask(size_t(c.B) * c.Sq * c.Skv);
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = (rng() % 4) != 0;
  for (int b = 0; b < c.B && c.Sq > 1; ++b)
    std::memset(&mask[(size_t(b) * c.Sq + 1) * c.Skv], 0, c.Skv);  // row 1 sees nothing
  if (c.lengths) p.kv_lengths = lengths.data();
  if (c.mask) {
    p.mask_kind = MaskKind::kBool;
    p.mask = mask.data();
    p.mask_batch_stride = int64_t(c.Sq) * c.Skv;
    p.mask_q_stride = c.Skv;
    p.mask_len = c.Skv;
  }

  // The forward on the CPU: out and lse.
  std::vector<uint16_t> out(no);
  std::vector<float> lse(rows);
  p.q = q.data();
  p.k = k.data();
  p.v = v.data();
  p.out = out.data();
  p.lse = lse.data();
  cpu::AttentionForward(p);
  p.lse = nullptr;

  // The CPU backward: the reference.
  std::vector<uint16_t> dq_ref(nq), dk_ref(nk), dv_ref(nv);
  AttentionBackwardParams bp;
  bp.fwd = p;
  bp.lse = lse.data();
  bp.dout = dout.data();
  bp.dout_strides = p.out_strides;
  bp.dq = dq_ref.data();
  bp.dk = dk_ref.data();
  bp.dv = dv_ref.data();
  bp.dq_strides = p.q_strides;
  bp.dk_strides = p.k_strides;
  bp.dv_strides = p.v_strides;
  cpu::AttentionBackward(bp);

  // The CUDA backward on device copies, gradients poisoned.
  DevBuf dq_d(nq * 2), dk_d(nk * 2), dv_d(nv * 2);
  DevBuf q_d(q.data(), nq * 2), k_d(k.data(), nk * 2), v_d(v.data(), nv * 2);
  DevBuf o_d(out.data(), no * 2), do_d(dout.data(), no * 2), lse_d(lse.data(), rows * 4);
  DevBuf len_d(lengths.data(), lengths.size() * 4), mask_d(mask.data(), mask.size());
  DevBuf ws(AttentionBackwardWorkspaceBytes(c.B, c.Nq, c.Nkv, c.Sq, c.Skv, c.H, c.Hv));
  // The workspace is poisoned too: the backward must initialise what it reads.
  CHECK_CUDA(cudaMemset(ws.ptr, 0xFF, ws.bytes));
  for (DevBuf* d : {&dq_d, &dk_d, &dv_d}) CHECK_CUDA(cudaMemset(d->ptr, 0xFF, d->bytes));
  AttentionBackwardParams dp = bp;
  dp.fwd.q = q_d.ptr;
  dp.fwd.k = k_d.ptr;
  dp.fwd.v = v_d.ptr;
  dp.fwd.out = o_d.ptr;
  if (c.lengths) dp.fwd.kv_lengths = static_cast<const int32_t*>(len_d.ptr);
  if (c.mask) dp.fwd.mask = mask_d.ptr;
  dp.lse = static_cast<const float*>(lse_d.ptr);
  dp.dout = do_d.ptr;
  dp.dq = dq_d.ptr;
  dp.dk = dk_d.ptr;
  dp.dv = dv_d.ptr;
  if (std::string why = cuda::AttentionBackwardUnsupported(dp); !why.empty()) {
    std::printf("    unsupported: %s FAIL\n", why.c_str());
    return false;
  }
  std::vector<uint16_t> dq(nq), dk(nk), dv(nv), again(std::max({nq, nk, nv}));
  bool same = true;
  for (int run = 0; run < 2; ++run) {
    CHECK_CUDA(cuda::LaunchAttentionBackward(dp, ws.ptr, nullptr));
    CHECK_CUDA(cudaDeviceSynchronize());
    for (auto [host, dev, n] : {std::tuple{&dq, &dq_d, nq}, {&dk, &dk_d, nk}, {&dv, &dv_d, nv}}) {
      uint16_t* dst = run == 0 ? host->data() : again.data();
      CHECK_CUDA(cudaMemcpy(dst, dev->ptr, n * 2, cudaMemcpyDeviceToHost));
      if (run == 1) same &= std::memcmp(dst, host->data(), n * 2) == 0;
    }
  }
  if (!same) std::printf("    second run differs bitwise FAIL\n");
  // Twice the forward's tolerance (kernel_check: 1e-2 bfloat16, 2e-3 float16), issue
  // 14's bound; P and dS are rounded to 16 bits for the MMAs. Session 20's 46 cases
  // peaked at rel-L2 2.7e-3 / 3.5e-4 and max-abs 7.1e-3 / 9.7e-4 of the largest value.
  const double tol = c.dtype == DType::kBFloat16 ? 2e-2 : 4e-3;
  bool ok = same;
  ok &= Compare("dq", dq, dq_ref, c.dtype, tol);
  ok &= Compare("dk", dk, dk_ref, c.dtype, tol);
  ok &= Compare("dv", dv, dv_ref, c.dtype, tol);
  return ok;
}

// ------------------------------------------------------------------ bench

// x[i] = a uniform value in [-1, 1) from a hash of (seed, i), as T.
template <typename T>
__global__ void FillUniform(T* x, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed * 0x9E3779B9u;
    h ^= h >> 15;
    h *= 0x2C1B3C6Du;
    h ^= h >> 12;
    x[i] = T(static_cast<float>(h >> 8) * (2.f / 16777216.f) - 1.f);
  }
}

// Median of 20 timed calls of fn (after 3 warm-ups), in ms.
template <typename Fn>
double MedianMs(Fn&& fn) {
  cudaEvent_t e0, e1;
  CHECK_CUDA(cudaEventCreate(&e0));
  CHECK_CUDA(cudaEventCreate(&e1));
  for (int i = 0; i < 3; ++i) CHECK_CUDA(fn());
  CHECK_CUDA(cudaDeviceSynchronize());
  std::vector<float> ms;
  for (int i = 0; i < 20; ++i) {
    CHECK_CUDA(cudaEventRecord(e0));
    CHECK_CUDA(fn());
    CHECK_CUDA(cudaEventRecord(e1));
    CHECK_CUDA(cudaEventSynchronize(e1));
    float t;
    CHECK_CUDA(cudaEventElapsedTime(&t, e0, e1));
    ms.push_back(t);
  }
  CHECK_CUDA(cudaEventDestroy(e0));
  CHECK_CUDA(cudaEventDestroy(e1));
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// Times the backward (and its first and last launches alone) on the GPU forward's out
// and lse, bfloat16, BSNH. TFLOP/s counts 2.5 x the forward's 4 B N S^2 H, halved for
// causal. filter: only the cases whose name contains it (empty: all).
void Bench(const std::string& filter) {
  // Variants, against the default kernel: kOtherDq (H128 with the dQ part where
  // BwdTraits::kEarlyDq does not put it), kUnsplit (GQA groups not split over
  // CTAs), kOneCta (H64 with registers budgeted for 1 CTA per SM; the default is 2),
  // kUnordered (the dQ adds without turns: not deterministic; what the order costs),
  // kHeadGroup1 (the grid's key blocks of a (batch, head) row consecutive).
  // kSm80: BwdKernel where the sm_90a kernel takes the call (BwdTakesSm90); the
  // other variants are BwdKernel's.
  enum Variant { kDefault, kOtherDq, kUnsplit, kOneCta, kUnordered, kHeadGroup1, kSm80 };
  struct BenchCase {
    const char* name;
    int B, Nq, Nkv, S, H;
    bool causal;
    Variant variant = kDefault;
  };
  const BenchCase cases[] = {
      {"B2 S4096 N32 H128 bf16", 2, 32, 32, 4096, 128, false},
      {"B2 S4096 N32 H128 bf16 causal", 2, 32, 32, 4096, 128, true},
      {"B2 S4096 N32/K8 H128 bf16 causal", 2, 32, 8, 4096, 128, true},
      {"B4 S4096 N32 H64 bf16", 4, 32, 32, 4096, 64, false},
      {"B4 S4096 N32 H64 bf16 causal", 4, 32, 32, 4096, 64, true},
      {"  sm80 kernel: B2 S4096 N32 H128", 2, 32, 32, 4096, 128, false, kSm80},
      {"  sm80 kernel: B2 S4096 N32 H128 causal", 2, 32, 32, 4096, 128, true, kSm80},
      {"  sm80 kernel: B4 S4096 N32 H64", 4, 32, 32, 4096, 64, false, kSm80},
      {"  sm80 kernel: B4 S4096 N32 H64 causal", 4, 32, 32, 4096, 64, true, kSm80},
      {"  other dQ: B2 S4096 N32 H128", 2, 32, 32, 4096, 128, false, kOtherDq},
      {"  other dQ: B2 S4096 N32 H128 causal", 2, 32, 32, 4096, 128, true, kOtherDq},
      {"  unsplit: B2 S4096 N32/K8 H128 causal", 2, 32, 8, 4096, 128, true, kUnsplit},
      {"  unsplit: B2 S4096 N32/K8 H128", 2, 32, 8, 4096, 128, false, kUnsplit},
      {"  split:   B2 S4096 N32/K8 H128", 2, 32, 8, 4096, 128, false},
      {"  1 CTA/SM: B4 S4096 N32 H64", 4, 32, 32, 4096, 64, false, kOneCta},
      {"  1 CTA/SM: B4 S4096 N32 H64 causal", 4, 32, 32, 4096, 64, true, kOneCta},
      {"  unordered dQ: B2 S4096 N32 H128", 2, 32, 32, 4096, 128, false, kUnordered},
      {"  unordered dQ: B2 S4096 N32 H128 causal", 2, 32, 32, 4096, 128, true, kUnordered},
      {"  unordered dQ: B4 S4096 N32 H64", 4, 32, 32, 4096, 64, false, kUnordered},
      {"  head group 1: B2 S4096 N32 H128", 2, 32, 32, 4096, 128, false, kHeadGroup1},
      {"  head group 1: B2 S4096 N32 H128 causal", 2, 32, 32, 4096, 128, true, kHeadGroup1},
      {"  head group 1: B4 S4096 N32 H64 causal", 4, 32, 32, 4096, 64, true, kHeadGroup1},
  };
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("backward bench on %s (%d SMs); TFLOP/s counts 2.5 x 4 B N S^2 H, halved "
              "for causal; prep and dq: the first and last launches alone\n",
              prop.name, prop.multiProcessorCount);
  using T = __nv_bfloat16;
  for (const BenchCase& c : cases) {
    if (!filter.empty() && std::string(c.name).find(filter) == std::string::npos) continue;
    const DType dt = DType::kBFloat16;
    const size_t nq = size_t(c.B) * c.Nq * c.S * c.H, nk = size_t(c.B) * c.Nkv * c.S * c.H;
    DevBuf q(nq * 2), k(nk * 2), v(nk * 2), o(nq * 2), dout(nq * 2), dq(nq * 2), dk(nk * 2),
        dv(nk * 2), lse(size_t(c.B) * c.Nq * c.S * 4);
    uint32_t seed = 1;
    for (auto [buf, n] : {std::pair{&q, nq}, {&k, nk}, {&v, nk}, {&dout, nq}}) {
      FillUniform<T><<<1024, 256>>>(static_cast<T*>(buf->ptr), n, seed++);
    }
    CHECK_CUDA(cudaGetLastError());
    AttentionParams p = ShapeParams(dt, c.B, c.Nq, c.Nkv, c.S, c.S, c.H, c.H, kBSNH, kBSNH, kBSNH);
    p.is_causal = c.causal;
    p.q = q.ptr;
    p.k = k.ptr;
    p.v = v.ptr;
    p.out = o.ptr;
    p.lse = static_cast<float*>(lse.ptr);
    CHECK_CUDA(cuda::LaunchAttentionForward(p, nullptr));
    p.lse = nullptr;
    AttentionBackwardParams bp;
    bp.fwd = p;
    bp.lse = static_cast<const float*>(lse.ptr);
    bp.dout = dout.ptr;
    bp.dout_strides = p.out_strides;
    bp.dq = dq.ptr;
    bp.dk = dk.ptr;
    bp.dv = dv.ptr;
    bp.dq_strides = p.q_strides;
    bp.dk_strides = p.k_strides;
    bp.dv_strides = p.v_strides;
    DevBuf ws(AttentionBackwardWorkspaceBytes(c.B, c.Nq, c.Nkv, c.S, c.S, c.H, c.H));
    auto run = [&](cuda::BwdLaunches which) {
      return [&, which] {
        const bool split = c.variant != kUnsplit;
        const int group = c.variant == kHeadGroup1 ? 1 : cuda::kBwdHeadGroup;
        const bool sm90 = c.variant != kSm80 && cuda::BwdTakesSm90(bp);  // where it applies
        if (c.H == 64) {
          using Tr = cuda::BwdTraits<64, 64>;
          if (c.variant == kUnordered) {
            return cuda::RunBwd<T, 64, 64, Tr::kEarlyDq, Tr::kMinBlocks, false>(bp, ws.ptr,
                                                                               nullptr, which);
          }
          if (c.variant == kOneCta) {
            return cuda::RunBwd<T, 64, 64, Tr::kEarlyDq, 1>(bp, ws.ptr, nullptr, which);
          }
          return cuda::RunBwd<T, 64, 64>(bp, ws.ptr, nullptr, which, true, group, sm90);
        }
        using Tr = cuda::BwdTraits<128, 128>;
        if (c.variant == kUnordered) {
          return cuda::RunBwd<T, 128, 128, Tr::kEarlyDq, Tr::kMinBlocks, false>(bp, ws.ptr,
                                                                               nullptr, which);
        }
        if (c.variant == kOtherDq) {
          return cuda::RunBwd<T, 128, 128, !Tr::kEarlyDq>(bp, ws.ptr, nullptr, which, split,
                                                          group);
        }
        return cuda::RunBwd<T, 128, 128>(bp, ws.ptr, nullptr, which, split, group, sm90);
      };
    };
    const double all = MedianMs(run(cuda::BwdLaunches::kAll));
    const double prep = MedianMs(run(cuda::BwdLaunches::kPrepOnly));
    const double dq_ms = MedianMs(run(cuda::BwdLaunches::kDqOnly));
    const double dkv_ms = c.Nkv < c.Nq ? MedianMs(run(cuda::BwdLaunches::kDkvOnly)) : 0.;
    const double flops = 2.5 * 4.0 * c.B * c.Nq * double(c.S) * c.S * c.H * (c.causal ? 0.5 : 1);
    std::printf("%-36s %8.3f ms  %6.1f TFLOP/s   (prep %.3f ms, dq %.3f ms, dkv %.3f ms, main "
                "%.3f ms)\n",
                c.name, all, flops / (all * 1e-3) / 1e12, prep, dq_ms, dkv_ms,
                all - prep - dq_ms - dkv_ms);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string arg = argc > 1 ? argv[1] : "";
  if (arg == "--bench") {  // --bench [name filter]
    Bench(argc > 2 ? argv[2] : "");
    return 0;
  }
  const bool quick = arg == "--quick";
  std::mt19937 rng(1234);
  std::vector<Case> cases;
  for (DType t : {DType::kFloat16, DType::kBFloat16}) {
    cases.push_back({"plain H64", t, 2, 4, 4, 77, 77, 64, 64});
    cases.push_back({"GQA 4:1 causal H128", t, 2, 8, 2, 100, 100, 128, 128, true});
    cases.push_back({"Hv != H (48, 64), causal offset", t, 1, 4, 2, 33, 90, 48, 64, true, 57});
    cases.push_back({"H 100 / Hv 128 window (16, 0) softcap 20", t, 2, 4, 1, 130, 130, 100, 128,
                     false, 0, 16, 0, 20.f});
    cases.push_back({"lengths incl. 0, GQA, BNSH q", t, 3, 6, 3, 40, 150, 64, 64, false, 0,
                     kUnboundedWindow, kUnboundedWindow, 0.f, true, false, kBNSH, kBSNH});
    cases.push_back({"bool mask, fully masked row, causal", t, 2, 4, 2, 65, 65, 128, 128, true, 0,
                     kUnboundedWindow, kUnboundedWindow, 0.f, false, true});
    cases.push_back({"everything: GQA causal offset window softcap lengths mask", t, 2, 6, 2, 50,
                     200, 128, 96, true, 120, 40, 3, 30.f, true, true});
    // On the tiles (64 query rows, 128 keys), one past them, and causal with Sq != Skv.
    cases.push_back({"tile-exact 128 x 256", t, 1, 2, 1, 128, 256, 64, 64});
    // Whole key blocks every row sees at H128: the elementwise passes without per-key
    // checks, plain and softcapped (the benchmark's path; the cases above are checked).
    cases.push_back({"plain H128 whole tiles 192 x 384", t, 2, 4, 4, 192, 384, 128, 128});
    // The sm_90a kernel's plain path off the tiles, and its split GQA with lengths.
    cases.push_back({"plain H128 77 x 200", t, 2, 4, 4, 77, 200, 128, 128});
    cases.push_back({"GQA 8:1 H128 lengths 0 / partial / full 130 x 300", t, 3, 16, 2, 130, 300,
                     128, 128, false, 0, kUnboundedWindow, kUnboundedWindow, 0.f, true});
    cases.push_back({"softcap 15 H128 whole tiles, GQA 2:1", t, 1, 4, 2, 128, 256, 128, 128,
                     false, 0, kUnboundedWindow, kUnboundedWindow, 15.f});
    cases.push_back({"tile + 1: 129 x 257 causal offset", t, 1, 2, 2, 129, 257, 128, 128, true,
                     128});
    cases.push_back({"causal Sq 200 > Skv 130 (top-left)", t, 1, 2, 2, 200, 130, 64, 64, true});
    // GQA groups split over CTAs (kBwdSplitGroup), summed by BwdDkvKernel: ratios 2 / 4 / 8.
    cases.push_back({"GQA 8:1 causal offset lengths 0 / partial / full, Sq 70 < Skv 300", t, 3,
                     8, 1, 70, 300, 64, 64, true, 230, kUnboundedWindow, kUnboundedWindow, 0.f,
                     true});
    cases.push_back({"GQA 2:1 window (50, 10) softcap 25 bool mask, H 80 / Hv 72", t, 2, 4, 2,
                     150, 260, 80, 72, false, 0, 50, 10, 25.f, false, true});
    cases.push_back({"GQA 4:1 causal Sq 190 > Skv 129, BNSH q", t, 2, 8, 2, 190, 129, 128, 128,
                     true, 0, kUnboundedWindow, kUnboundedWindow, 0.f, false, false, kBNSH,
                     kBSNH});
    if (!quick) {
      cases.push_back({"long causal GQA H128", t, 1, 8, 2, 1000, 1000, 128, 128, true});
      cases.push_back({"long GQA 8:1 causal H128 lengths", t, 3, 16, 2, 600, 700, 128, 128,
                       true, 100, kUnboundedWindow, kUnboundedWindow, 0.f, true});
      cases.push_back({"long H64 lengths 0 / half / full", t, 3, 4, 4, 700, 900, 64, 64, false,
                       0, kUnboundedWindow, kUnboundedWindow, 0.f, true});
      cases.push_back({"long window (300, 20) softcap 30 GQA", t, 1, 4, 1, 777, 1030, 128, 128,
                       false, 0, 300, 20, 30.f});
      cases.push_back({"long bool mask causal Sq 300 Skv 600 offset 300", t, 1, 2, 1, 300, 600,
                       128, 128, true, 300, kUnboundedWindow, kUnboundedWindow, 0.f, false,
                       true});
    }
  }
  // Last (a harness problem with empty buffers must not hide the cases above): no
  // keys at all under GQA, where nothing is split and dQ is the prep launch's zeros.
  for (DType t : {DType::kFloat16, DType::kBFloat16}) {
    cases.push_back({"GQA 4:1 no keys (Skv 0)", t, 1, 8, 2, 5, 0, 64, 64});
  }
  int failed = 0;
  for (const Case& c : cases) failed += !RunCase(c, rng);
  std::printf("%s: %d of %zu cases failed\n", failed ? "FAIL" : "OK", failed, cases.size());
  return failed ? 1 : 0;
}
