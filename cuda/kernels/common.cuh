// Device helpers shared by jax-mea's CUDA kernels: element types, cp.async,
// ldmatrix and the m16n8k16 tensor-core MMA (sm_80 and newer).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "jax_mea/params.h"
#include "jax_mea/score.h"

namespace jax_mea {  // the score layer's widening (jax_mea/score.h)
template <>
struct Widen<__half> {
  static MEA_HOST_DEVICE float Apply(__half x) { return __half2float(x); }
};
template <>
struct Widen<__nv_bfloat16> {
  static MEA_HOST_DEVICE float Apply(__nv_bfloat16 x) { return __bfloat162float(x); }
};
}  // namespace jax_mea

namespace jax_mea::cuda {

// ---------------------------------------------------------------- element types

template <typename T> __device__ __forceinline__ float ToF32(T x) { return Widen<T>::Apply(x); }

template <typename T> __device__ __forceinline__ T FromF32(float x);
template <> __device__ __forceinline__ float FromF32<float>(float x) { return x; }
template <> __device__ __forceinline__ __half FromF32<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 FromF32<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// Two floats as one 32-bit register of two 16-bit values, `lo` in the low half
// (the element with the lower column index, as the MMA fragments expect).
template <typename T> __device__ __forceinline__ uint32_t Pack2(float lo, float hi);
template <> __device__ __forceinline__ uint32_t Pack2<__half>(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}
template <> __device__ __forceinline__ uint32_t Pack2<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

// A probability as the P V product will weight it: float16 rounds it (P is the MMA's
// half operand), so that the row's normaliser sums the very weights the product uses
// and the output is a true weighted average of V. With float16's 10-bit mantissa the
// mismatch would otherwise dominate the output's error (2 ulps on ONNX's fp16 cases,
// which check rtol 1e-3, and which the decode kernel serves). Used by the decode
// kernel, which is bound by memory; the prefill kernels, bound by their softmax's
// arithmetic, keep the float sum (the two conversions cost 13% of fp16 prefill on
// the H200). bfloat16's own output rounding (8 bits) is coarser than P's.
template <typename T>
__device__ __forceinline__ float ProbAsWeighted(float p) {
  if constexpr (std::is_same_v<T, __half>) return __half2float(__float2half_rn(p));
  return p;
}

// ---------------------------------------------------------------- global loads

__device__ __forceinline__ bool Aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15) == 0;
}

// 8 consecutive 16-bit elements at `src` as 16 bytes: one vector load where
// `aligned` (src 16-byte aligned), else eight element loads.
template <typename T>
__device__ __forceinline__ uint4 LoadChunk8(const T* src, bool aligned) {
  static_assert(sizeof(T) == 2, "16-bit elements");
  if (aligned) return *reinterpret_cast<const uint4*>(src);
  uint4 v;
  uint16_t* e = reinterpret_cast<uint16_t*>(&v);
#pragma unroll
  for (int i = 0; i < 8; ++i) e[i] = reinterpret_cast<const uint16_t*>(src)[i];
  return v;
}

// ---------------------------------------------------------------- shared memory / async copies

__device__ __forceinline__ uint32_t SmemAddr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global -> shared copy; src_bytes = 0 writes 16 zero bytes and reads nothing.
__device__ __forceinline__ void CpAsync16(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void CpAsyncCommit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void LdMatrixX4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void LdMatrixX4Trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// ---------------------------------------------------------------- tensor copies (sm_90)
// The copy engine (TMA) moves a box of a tensor map into shared memory and
// completes an mbarrier's transaction count. One thread arms the barrier with
// the bytes to expect and issues the copies; every consumer waits on the
// barrier's phase parity. Compiled for sm_90 and newer only (elsewhere they
// trap: the host never picks a kernel that uses them there).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
#define JAX_MEA_SM90_ONLY(...) __trap()
#else
#define JAX_MEA_SM90_ONLY(...) __VA_ARGS__
#endif

__device__ __forceinline__ void MbarInit(uint64_t* bar, unsigned count) {
  JAX_MEA_SM90_ONLY(asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(SmemAddr(bar)),
                                 "r"(count)));
}
// Orders this thread's ordinary global writes before later copy-engine (TMA) reads
// of the same memory (then __syncthreads before the reads are issued).
__device__ __forceinline__ void FenceProxyAsyncGlobal() {
  JAX_MEA_SM90_ONLY(asm volatile("fence.proxy.async.global;\n" ::: "memory"));
}
// Makes initialised barriers visible to the copy engine (then __syncthreads).
__device__ __forceinline__ void FenceMbarInit() {
  JAX_MEA_SM90_ONLY(asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"));
}
__device__ __forceinline__ void MbarArriveExpectTx(uint64_t* bar, unsigned bytes) {
  JAX_MEA_SM90_ONLY(asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(
                                     SmemAddr(bar)),
                                 "r"(bytes)
                                 : "memory"));
}
// Waits until the barrier's phase with this parity has completed.
__device__ __forceinline__ void MbarWait(uint64_t* bar, unsigned parity) {
  JAX_MEA_SM90_ONLY(asm volatile("{\n"
                                 ".reg .pred done;\n"
                                 "WAIT_%=:\n"
                                 "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
                                 "@!done bra WAIT_%=;\n"
                                 "}\n" ::"r"(SmemAddr(bar)),
                                 "r"(parity)
                                 : "memory"));
}
// One arrival on the barrier (a consumer releasing a buffer to the producer).
__device__ __forceinline__ void MbarArrive(uint64_t* bar) {
  JAX_MEA_SM90_ONLY(asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(SmemAddr(bar))
                                 : "memory"));
}
// Orders this thread's ordinary shared-memory writes before later reads of the
// same memory by the async proxy (wgmma operands, TMA stores); then release
// them to the readers (an mbarrier arrival or a barrier).
__device__ __forceinline__ void FenceProxyAsyncShared() {
  JAX_MEA_SM90_ONLY(asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"));
}
// Fetches a tensor map (a __grid_constant__ kernel parameter) into the copy
// engine's descriptor cache ahead of its first use, so that the first TMA does not
// wait for it (CUTLASS's prefetch_tma_descriptor).
__device__ __forceinline__ void PrefetchTensorMap(const void* tmap) {
  JAX_MEA_SM90_ONLY(asm volatile("prefetch.tensormap [%0];\n" ::"l"(
                                     reinterpret_cast<uint64_t>(tmap))
                                 : "memory"));
}
// The box of `tmap` at element coordinates (c0 innermost .. c3) into `dst`
// (aligned as the map's swizzle requires), completing on `bar`.
__device__ __forceinline__ void TmaLoad4d(void* dst, const void* tmap, int c0, int c1, int c2,
                                          int c3, uint64_t* bar) {
  JAX_MEA_SM90_ONLY(asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3, %4, %5}], [%6];\n" ::"r"(SmemAddr(dst)),
      "l"(reinterpret_cast<uint64_t>(tmap)), "r"(c0), "r"(c1), "r"(c2), "r"(c3),
      "r"(SmemAddr(bar))
      : "memory"));
}

// The box at `src` (this CTA's shared memory, laid out as the map's swizzle says)
// to `tmap`'s element coordinates (c0 innermost .. c3); the copy engine clips
// what lies outside the tensor. One bulk group: BulkCommit, then BulkWaitRead
// before the shared memory is reused or the CTA exits.
__device__ __forceinline__ void TmaStore4d(const void* tmap, const void* src, int c0, int c1,
                                           int c2, int c3) {
  JAX_MEA_SM90_ONLY(asm volatile(
      "cp.async.bulk.tensor.4d.global.shared::cta.bulk_group [%0, {%2, %3, %4, %5}], [%1];\n" ::"l"(
          reinterpret_cast<uint64_t>(tmap)),
      "r"(SmemAddr(src)), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
      : "memory"));
}
__device__ __forceinline__ void BulkCommit() {
  JAX_MEA_SM90_ONLY(asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"));
}
// Waits until the committed bulk stores have read their shared memory.
__device__ __forceinline__ void BulkWaitRead() {
  JAX_MEA_SM90_ONLY(asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory"));
}
// Waits until the committed bulk operations are complete: their global writes done.
__device__ __forceinline__ void BulkWait() {
  JAX_MEA_SM90_ONLY(asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory"));
}
// `bytes` (a multiple of 16; both addresses 16-byte aligned) of global memory into
// this CTA's shared memory, completing on `bar` (its transaction count).
__device__ __forceinline__ void BulkLoad(void* dst, const void* src, unsigned bytes,
                                         uint64_t* bar) {
  JAX_MEA_SM90_ONLY(asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::
          "r"(SmemAddr(dst)),
      "l"(reinterpret_cast<uint64_t>(src)), "r"(bytes), "r"(SmemAddr(bar))
      : "memory"));
}
// dst[i] += src[i] for `bytes` / 4 floats (a multiple of 16 bytes, 16-byte aligned),
// from this CTA's shared memory into global memory by the copy engine: one bulk
// group (BulkCommit, then BulkWaitRead before src is rewritten, BulkWait before the
// sums are read elsewhere). Each element is one add, so a fixed order of such
// calls gives the same sums on every run.
__device__ __forceinline__ void BulkReduceAddF32(float* dst, const float* src, unsigned bytes) {
  JAX_MEA_SM90_ONLY(asm volatile(
      "cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;\n" ::"l"(
          reinterpret_cast<uint64_t>(dst)),
      "r"(SmemAddr(src)), "r"(bytes)
      : "memory"));
}

// ---------------------------------------------------------------- thread-block clusters (sm_90)
// A kernel launched with a cluster dimension: its CTAs synchronise as one
// cluster and write into each other's shared memory (distributed shared memory).
// sm_90 and newer only, like the tensor copies above.

// Every thread of every CTA of the cluster arrives, then waits for all: the
// CTAs' earlier shared-memory writes are visible to the whole cluster after it.
// (Not .aligned: the warps need not be converged where it is called.)
__device__ __forceinline__ void ClusterSync() {
  JAX_MEA_SM90_ONLY(asm volatile("barrier.cluster.arrive.release;\n"
                                 "barrier.cluster.wait.acquire;\n" ::: "memory"));
}
// ClusterSync's halves, apart: an arrival long before its wait. Relaxed, it orders
// no memory; its wait proves that every CTA of the cluster has started, which a
// CTA must know before it writes into a peer's shared memory.
__device__ __forceinline__ void ClusterArriveRelaxed() {
  JAX_MEA_SM90_ONLY(asm volatile("barrier.cluster.arrive.relaxed;\n"));  // orders no memory
}
__device__ __forceinline__ void ClusterWait() {
  JAX_MEA_SM90_ONLY(asm volatile("barrier.cluster.wait;\n" ::: "memory"));
}
// The address of `p` (in this CTA's shared memory) in the shared memory of the
// cluster's CTA of rank `rank`.
__device__ __forceinline__ uint32_t PeerSharedAddr(const void* p, unsigned rank) {
  uint32_t remote = 0;
  JAX_MEA_SM90_ONLY(asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n"
                                 : "=r"(remote)
                                 : "r"(SmemAddr(p)), "r"(rank)));
  return remote;
}
// Stores v at `p`'s place in the shared memory of the cluster's CTA of rank `rank`.
__device__ __forceinline__ void StPeerShared(float* p, unsigned rank, float v) {
  JAX_MEA_SM90_ONLY(const uint32_t remote = PeerSharedAddr(p, rank);
                    asm volatile("st.shared::cluster.f32 [%0], %1;\n" ::"r"(remote), "f"(v)
                                 : "memory"));
}
__device__ __forceinline__ void StPeerShared(float2* p, unsigned rank, float2 v) {
  JAX_MEA_SM90_ONLY(const uint32_t remote = PeerSharedAddr(p, rank);
                    asm volatile("st.shared::cluster.v2.f32 [%0], {%1, %2};\n" ::"r"(remote),
                                 "f"(v.x), "f"(v.y)
                                 : "memory"));
}

// ---------------------------------------------------------------- tensor-core MMA

// D += A(16x16, row) * B(16x8, col), float32 accumulators; T: __half or __nv_bfloat16.
template <typename T>
__device__ __forceinline__ void Mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
#define JAX_MEA_MMA16816(AB)                                                                    \
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." AB "." AB                               \
               ".f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"        \
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])                                 \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1))
  if constexpr (std::is_same_v<T, __half>) {
    JAX_MEA_MMA16816("f16");
  } else {
    JAX_MEA_MMA16816("bf16");
  }
#undef JAX_MEA_MMA16816
}

// 2^x; ex2.approx(-inf) = +0.
__device__ __forceinline__ float Exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// ---------------------------------------------------------------- forward CTAs

// How a forward grid's blockIdx.x maps to (query block, head, batch): the
// (batch, head) pairs go in sections of `section` pairs whose K and V fit in
// part of L2 together; a section runs its query blocks heaviest (latest) first,
// each over all of the section's pairs before the next lighter one. With bottom-
// right causal later query blocks see more keys, so the longest tiles start first
// and the short ones fill the tail (FlashAttention-3's LPT order); without a
// causal mask every block is equal and section = 1 keeps one head's query blocks
// together, on one head's K and V.
struct FwdGrid {
  int num_m_blocks = 0;
  int section = 1;  // (batch, head) pairs per L2 section
  int64_t blocks = 0;  // CTAs: num_m_blocks * num_heads * batch
};

// The grid of a forward launch with block_m query rows per CTA (host side).
inline FwdGrid MakeFwdGrid(const AttentionParams& p, int block_m) {
  // About 32 MiB of the 50 MiB L2 (H100/H200) for K and V, as FlashAttention-3.
  constexpr int64_t kL2Budget = int64_t{32} << 20;
  FwdGrid g;
  g.num_m_blocks = (p.q_len + block_m - 1) / block_m;
  const int64_t pairs = int64_t{p.num_heads} * p.batch;
  g.blocks = g.num_m_blocks * pairs;
  if (p.is_causal && g.num_m_blocks > 1) {
    const int64_t kv_head_bytes = std::max<int64_t>(
        1, int64_t{p.kv_capacity} * (p.head_size + p.v_head_size) * DTypeBytes(p.dtype));
    // Query heads of one kv head share its K and V: a section holds whole groups.
    const int64_t kv_heads = std::max<int64_t>(1, kL2Budget / kv_head_bytes);
    g.section = static_cast<int>(std::min(pairs, kv_heads * p.group_size()));
  }
  return g;
}

// The work of one forward CTA: query rows [m0, q_end) of (batch b, head h), in
// FwdGrid's order. q and o point at the (b, h) rows, k and v at the (b, kv head)
// rows, lse at the (b, h) row of the optional log-sum-exp result (null when not
// asked for).
template <typename T>
struct FwdBlock {
  int b, h, m0, q_end, kv_len;
  int64_t off;  // query_offset(b)
  const T *q, *k, *v;
  T* o;
  float* lse;
};
// Block `bid` of the grid's order (a persistent CTA walks several).
template <typename T>
__device__ __forceinline__ FwdBlock<T> FwdBlockAt(const AttentionParams& p, const FwdGrid& g,
                                                  int block_m, int64_t bid) {
  const int64_t pairs = int64_t{p.num_heads} * p.batch;
  const int64_t section_blocks = int64_t{g.section} * g.num_m_blocks;
  const int64_t first_pair = bid / section_blocks * g.section;
  const int64_t in_section = bid % section_blocks;
  const int64_t width = min(int64_t{g.section}, pairs - first_pair);  // the last may be short
  const int m_block = g.num_m_blocks - 1 - static_cast<int>(in_section / width);
  const int64_t bh = first_pair + in_section % width;
  FwdBlock<T> w;
  w.h = static_cast<int>(bh % p.num_heads);
  w.b = static_cast<int>(bh / p.num_heads);
  const int kvh = w.h / p.group_size();
  w.m0 = m_block * block_m;
  w.q_end = min(w.m0 + block_m, p.q_len);
  w.kv_len = p.kv_length(w.b);
  w.off = p.query_offset(w.b);
  w.q = static_cast<const T*>(p.q) + w.b * p.q_strides.batch + w.h * p.q_strides.head;
  w.k = static_cast<const T*>(p.k) + w.b * p.k_strides.batch + kvh * p.k_strides.head;
  w.v = static_cast<const T*>(p.v) + w.b * p.v_strides.batch + kvh * p.v_strides.head;
  w.o = static_cast<T*>(p.out) + w.b * p.out_strides.batch + w.h * p.out_strides.head;
  w.lse = p.lse == nullptr
              ? nullptr
              : p.lse + (static_cast<int64_t>(w.b) * p.num_heads + w.h) * p.q_len;
  return w;
}
template <typename T>
__device__ __forceinline__ FwdBlock<T> ThisFwdBlock(const AttentionParams& p, const FwdGrid& g,
                                                    int block_m) {
  return FwdBlockAt<T>(p, g, block_m, blockIdx.x);
}

}  // namespace jax_mea::cuda
