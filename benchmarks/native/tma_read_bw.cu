// TMA read bandwidth on sm_90: how fast one CTA per SM streams two [R, 128] bf16
// tensors (the decode kernel's K and V: B32 N4 S32768, 1 GB each) through the copy
// engine, by box shape, issue order and L2 promotion, against plain loads and a copy.
// It found the 256-byte L2 promotion the decode kernel's maps had costing 10% of the
// read rate (benchmarks/RESULTS.md, twenty-fourth session). Not part of the build:
//   nvcc -O3 -std=c++17 -arch=sm_90a -o tma_read_bw benchmarks/native/tma_read_bw.cu
//   ./tma_read_bw             # promo 0 / 2 / 3: none / 128 B / 256 B
//   ./tma_read_bw --one-wave  # 64-264 CTAs of 256 KB-4 MB: first-tile latency, CTA spread
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>
#include <cstdio>
#include <cstdint>
#include <vector>
#include <algorithm>
#include <string>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e)); exit(1);} } while (0)

__device__ __forceinline__ uint32_t sa(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }
__device__ __forceinline__ void bar_init(uint64_t* b, int n) { asm volatile("mbarrier.init.shared.b64 [%0], %1;" :: "r"(sa(b)), "r"(n)); }
__device__ __forceinline__ void bar_expect(uint64_t* b, uint32_t bytes) { asm volatile("mbarrier.arrive.expect_tx.shared.b64 _, [%0], %1;" :: "r"(sa(b)), "r"(bytes)); }
__device__ __forceinline__ void bar_wait(uint64_t* b, int phase) {
  asm volatile("{\n .reg .pred p;\n W: mbarrier.try_wait.parity.shared.b64 p, [%0], %1;\n @!p bra W;\n}" :: "r"(sa(b)), "r"(phase));
}
__device__ __forceinline__ void tma2(void* dst, const CUtensorMap* m, uint64_t* b, int c0, int c1) {
  asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];"
               :: "r"(sa(dst)), "l"(m), "r"(sa(b)), "r"(c0), "r"(c1) : "memory");
}
__device__ __forceinline__ void tma3(void* dst, const CUtensorMap* m, uint64_t* b, int c0, int c1, int c2) {
  asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5}], [%2];"
               :: "r"(sa(dst)), "l"(m), "r"(sa(b)), "r"(c0), "r"(c1), "r"(c2) : "memory");
}
__device__ __forceinline__ void tma4(void* dst, const CUtensorMap* m, uint64_t* b, int c0, int c1, int c2, int c3) {
  asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5, %6}], [%2];"
               :: "r"(sa(dst)), "l"(m), "r"(sa(b)), "r"(c0), "r"(c1), "r"(c2), "r"(c3) : "memory");
}
__device__ __forceinline__ void bulk1(void* dst, const void* src, uint32_t bytes, uint64_t* b) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
               :: "r"(sa(dst)), "l"(src), "r"(bytes), "r"(sa(b)) : "memory");
}

struct Maps { CUtensorMap k, v; };
constexpr int TILE = 128, STAGES = 3, STAGE_BYTES = 2 * TILE * 256;

// mode 0: 2-D boxes (64 x 128), two per tensor per tile (cols 0 then 64)
// mode 1: 3-D (64, 2, R) box (64, 2, 128): whole rows in row order
// mode 2: 4-D (64, 8, 2, R/8) box (64, 8, 2, 16): 8 rows of one half, then the other
// mode 3: 1-D bulk copies of 32 KB
// mode 4: 2-D, but K col0, V col0, K col64, V col64
__device__ __forceinline__ uint64_t gtime() { uint64_t t; asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); return t; }

// times (where not null): per CTA, %globaltimer at entry, at its first tile's arrival, at its end.
template <int MODE>
__global__ void __launch_bounds__(128) tma_read(const __grid_constant__ Maps maps, const char* kp, const char* vp, int rows_per_cta,
                                                uint64_t* times = nullptr) {
  extern __shared__ __align__(1024) char smem_raw[];
  char* smem = (char*)(((uintptr_t)smem_raw + 1023) & ~(uintptr_t)1023);
  __shared__ __align__(8) uint64_t bars[STAGES];
  const uint64_t t0 = gtime();
  const int tiles = rows_per_cta / TILE;
  const int row0 = blockIdx.x * rows_per_cta;
  if (threadIdx.x != 0) return;
  for (int s = 0; s < STAGES; ++s) bar_init(&bars[s], 1);
  asm volatile("fence.mbarrier_init.release.cluster;");
  auto issue = [&](int t) {
    const int s = t % STAGES; char* d = smem + s * STAGE_BYTES; uint64_t* b = &bars[s];
    const int r = row0 + t * TILE;
    bar_expect(b, STAGE_BYTES);
    if (MODE == 0) {
      tma2(d, &maps.k, b, 0, r); tma2(d + 16384, &maps.k, b, 64, r);
      tma2(d + 32768, &maps.v, b, 0, r); tma2(d + 49152, &maps.v, b, 64, r);
    } else if (MODE == 4) {
      tma2(d, &maps.k, b, 0, r); tma2(d + 32768, &maps.v, b, 0, r);
      tma2(d + 16384, &maps.k, b, 64, r); tma2(d + 49152, &maps.v, b, 64, r);
    } else if (MODE == 1) {
      tma3(d, &maps.k, b, 0, 0, r); tma3(d + 32768, &maps.v, b, 0, 0, r);
    } else if (MODE == 2) {
      tma4(d, &maps.k, b, 0, 0, 0, r / 8); tma4(d + 32768, &maps.v, b, 0, 0, 0, r / 8);
    } else {
      bulk1(d, kp + (size_t)r * 256, 32768, b); bulk1(d + 32768, vp + (size_t)r * 256, 32768, b);
    }
  };
  for (int t = 0; t < STAGES && t < tiles; ++t) issue(t);
  uint64_t t1 = 0;
  for (int t = 0; t < tiles; ++t) {
    bar_wait(&bars[t % STAGES], (t / STAGES) & 1);
    if (t == 0) t1 = gtime();
    if (t + STAGES < tiles) issue(t + STAGES);
  }
  if (times) {
    times[3 * blockIdx.x] = t0; times[3 * blockIdx.x + 1] = t1; times[3 * blockIdx.x + 2] = gtime();
  }
}

__global__ void ldg_read(const int4* k, const int4* v, size_t n_per_tensor, int* sink) {
  int acc = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n_per_tensor; i += (size_t)gridDim.x * blockDim.x) {
    int4 a = __ldcs(k + i), b = __ldcs(v + i); acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w;
  }
  if (acc == 0x12345678) sink[0] = acc;
}
__global__ void copy_k(const int4* s, int4* d, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) d[i] = s[i];
}

PFN_cuTensorMapEncodeTiled_v12000 enc() {
  void* f = nullptr; cudaDriverEntryPointQueryResult q;
  CK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q));
  return (PFN_cuTensorMapEncodeTiled_v12000)f;
}
void make(CUtensorMap* m, void* p, int mode, size_t R, CUtensorMapL2promotion promo) {
  auto e = enc(); CUresult r;
  const cuuint32_t unit[5] = {1, 1, 1, 1, 1};
  if (mode == 0 || mode == 4) {
    cuuint64_t d[2] = {128, R}; cuuint64_t s[1] = {256}; cuuint32_t b[2] = {64, 128};
    r = e(m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, p, d, s, b, unit, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, promo, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  } else if (mode == 1) {
    cuuint64_t d[3] = {64, 2, R}; cuuint64_t s[2] = {128, 256}; cuuint32_t b[3] = {64, 2, 128};
    r = e(m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, p, d, s, b, unit, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, promo, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  } else if (mode == 2) {
    cuuint64_t d[4] = {64, 8, 2, R / 8}; cuuint64_t s[3] = {256, 128, 2048}; cuuint32_t b[4] = {64, 8, 2, 16};
    r = e(m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 4, p, d, s, b, unit, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, promo, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  } else return;
  if (r != CUDA_SUCCESS) { printf("encode mode %d failed %d\n", mode, (int)r); exit(1); }
}

template <typename F> float timeit(F f, int reps = 15) {
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b); std::vector<float> ts;
  f(); f(); CK(cudaDeviceSynchronize());
  for (int i = 0; i < reps; ++i) { cudaEventRecord(a); f(); cudaEventRecord(b); cudaEventSynchronize(b); float ms; cudaEventElapsedTime(&ms, a, b); ts.push_back(ms); }
  CK(cudaGetLastError()); std::sort(ts.begin(), ts.end()); return ts[reps / 2];
}

// --one-wave: the fixed costs of a stream of few tiles per CTA (the decode kernel's
// one-wave shapes: B8 ctx4096, B1 ctx32768). Each call reads a region L2 does not hold;
// per-CTA stamps give the first tile's latency and the spread of the CTAs' ends.
int OneWave(char* k, char* v, size_t R) {
  uint64_t* times;
  CK(cudaMalloc(&times, 8 * 3 * 4096));
  const int smem = STAGES * STAGE_BYTES + 1024;
  CK(cudaFuncSetAttribute(tma_read<0>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  auto pct = [](std::vector<double> x, double q) { std::sort(x.begin(), x.end()); return x[(size_t)(q * (x.size() - 1))]; };
  for (int ctas : {64, 128, 132, 264}) {
    for (int rows : {512, 1024, 2048, 8192}) {
      const size_t need = (size_t)ctas * rows;
      const int regions = (int)std::min<size_t>(R / need, 16);
      std::vector<float> ts;
      std::vector<uint64_t> h(3 * ctas);
      for (int i = 0; i < 13; ++i) {
        Maps m{};
        const size_t at = (size_t)(i % regions) * need * 256;
        make(&m.k, k + at, 0, need, CU_TENSOR_MAP_L2_PROMOTION_L2_128B);
        make(&m.v, v + at, 0, need, CU_TENSOR_MAP_L2_PROMOTION_L2_128B);
        cudaEventRecord(a);
        tma_read<0><<<ctas, 128, smem>>>(m, k, v, rows, times);
        cudaEventRecord(b);
        cudaEventSynchronize(b);
        float ms;
        cudaEventElapsedTime(&ms, a, b);
        if (i >= 3) ts.push_back(ms);
      }
      CK(cudaGetLastError());
      CK(cudaMemcpy(h.data(), times, 8 * 3 * ctas, cudaMemcpyDeviceToHost));
      uint64_t s0 = ~0ull;
      for (int c = 0; c < ctas; ++c) s0 = std::min(s0, h[3 * c]);
      std::vector<double> start, first, dur, end;
      for (int c = 0; c < ctas; ++c) {
        start.push_back((h[3 * c] - s0) * 1e-3);
        first.push_back((h[3 * c + 1] - h[3 * c]) * 1e-3);
        dur.push_back((h[3 * c + 2] - h[3 * c]) * 1e-3);
        end.push_back((h[3 * c + 2] - s0) * 1e-3);
      }
      std::sort(ts.begin(), ts.end());
      const double t = ts[ts.size() / 2];
      printf("ctas %3d x %4zu KB (%6.1f MB): event %7.2f us %.3f TB/s | last start %.2f | first tile min/med/max %.2f %.2f %.2f | "
             "CTA time min/med/max %.2f %.2f %.2f | last end %.2f us (the last call)\n",
             ctas, (size_t)rows * 512 / 1024, need * 512 / 1e6, t * 1e3, need * 512 / (t * 1e-3) / 1e12, pct(start, 1), pct(first, 0),
             pct(first, .5), pct(first, 1), pct(dur, 0), pct(dur, .5), pct(dur, 1), pct(end, 1));
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  const size_t R = (size_t)32 * 4 * 32768;  // B32 N4 S32768 rows of 256 B per tensor
  const size_t bytes = R * 256;
  char *k, *v, *c; int* sink;
  CK(cudaMalloc(&k, bytes)); CK(cudaMalloc(&v, bytes)); CK(cudaMalloc(&c, bytes)); CK(cudaMalloc(&sink, 4));
  CK(cudaMemset(k, 1, bytes)); CK(cudaMemset(v, 2, bytes));
  if (argc > 1 && std::string(argv[1]) == "--one-wave") return OneWave(k, v, R);
  int sms; cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  const int smem = STAGES * STAGE_BYTES + 1024;
  auto run_mode = [&](auto kern, int mode, int ctas, CUtensorMapL2promotion promo, const char* name) {
    CK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    Maps m{}; make(&m.k, k, mode, R, promo); make(&m.v, v, mode, R, promo);
    const int rows = (int)(R / ctas);
    if (rows % TILE) { printf("bad ctas\n"); return; }
    float ms = timeit([&] { kern<<<ctas, 128, smem>>>(m, k, v, rows, nullptr); });
    printf("%-34s ctas %4d promo %d: %8.1f us  %.3f TB/s\n", name, ctas, (int)promo, ms * 1e3, 2.0 * bytes / (ms * 1e-3) / 1e12);
  };
  for (int ctas : {128, 512, 1024}) {
    for (auto promo : {CU_TENSOR_MAP_L2_PROMOTION_NONE, CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B}) {
      run_mode(tma_read<0>, 0, ctas, promo, "2d two 64-col boxes (current)");
      run_mode(tma_read<4>, 4, ctas, promo, "2d, K0 V0 K64 V64");
      run_mode(tma_read<1>, 1, ctas, promo, "3d (64,2,128) row order");
      run_mode(tma_read<2>, 2, ctas, promo, "4d (64,8,2,16) 8-row groups");
    }
    run_mode(tma_read<3>, 3, ctas, CU_TENSOR_MAP_L2_PROMOTION_NONE, "1d bulk 32 KB");
  }
  const size_t n = bytes / 16;
  for (int g : {sms * 4, sms * 8, sms * 16}) {
    float ms = timeit([&] { ldg_read<<<g, 512>>>((int4*)k, (int4*)v, n, sink); });
    printf("ldg read grid %5d x 512: %8.1f us  %.3f TB/s\n", g, ms * 1e3, 2.0 * bytes / (ms * 1e-3) / 1e12);
  }
  float ms = timeit([&] { copy_k<<<sms * 8, 512>>>((int4*)k, (int4*)c, n); });
  printf("copy (read+write) : %8.1f us  %.3f TB/s (bytes moved)\n", ms * 1e3, 2.0 * bytes / (ms * 1e-3) / 1e12);
  return 0;
}
