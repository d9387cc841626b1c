// Device helpers of the sm_90a kernels (Hopper): the warpgroup MMA (wgmma) and
// its shared-memory descriptors, register reallocation between warpgroups
// (setmaxnreg). Raw PTX, no CUTLASS, as the decode kernels' TMA: the build stays
// small enough for CI's 2-core machine. Include only from translation units
// compiled for sm_90a (-gencode=arch=compute_90a,code=sm_90a): wgmma and
// setmaxnreg do not exist elsewhere, not even on sm_90 without the `a`.
// The TMA and mbarrier helpers are in common.cuh (the decode kernels use them).
#pragma once

#include <cstdint>

#include "kernels/common.cuh"
#include "kernels/wgmma.cuh"

namespace jax_mea::cuda {

// A wgmma shared-memory matrix descriptor for 128-byte-swizzled tiles (the
// layout a TMA box of 64 16-bit columns x R rows writes with
// CU_TENSOR_MAP_SWIZZLE_128B: rows of 128 bytes, 16-byte chunk c of row r at
// c ^ (r % 8), boxes 1024-byte aligned). Fields (PTX ISA, "matrix descriptor"):
// bits 0-13 start address >> 4, 16-29 leading byte offset >> 4, 32-45 stride
// byte offset >> 4, 49-51 base offset (0: the 8-row swizzle atoms start at
// 1024-byte multiples), 62-63 swizzle mode (1: 128 bytes).
//   K-major operand (Q, K: the reduction dim contiguous): SBO 1024 (next 8 rows),
//     LBO unused; the k16 step ks of a box starts 32 ks bytes into the row.
//   MN-major operand (V as PV's B: the N dim contiguous): SBO 1024 (next 8 rows
//     of the reduction dim), LBO the byte distance to the next 64-column box;
//     the k16 step kk starts 16 rows (2048 bytes) further.
__device__ __forceinline__ uint64_t SmemDesc(uint32_t smem_addr, uint32_t lbo_bytes,
                                             uint32_t sbo_bytes) {
  return static_cast<uint64_t>((smem_addr & 0x3FFFF) >> 4) |
         static_cast<uint64_t>((lbo_bytes >> 4) & 0x3FFF) << 16 |
         static_cast<uint64_t>((sbo_bytes >> 4) & 0x3FFF) << 32 | uint64_t{1} << 62;
}

// Before the first wgmma of a batch whose accumulator or A registers other
// instructions wrote.
__device__ __forceinline__ void WgmmaFence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
// Closes the batch of wgmma issued since the last commit into one group.
__device__ __forceinline__ void WgmmaCommit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
// Waits until at most N committed groups of this warpgroup are pending.
template <int N>
__device__ __forceinline__ void WgmmaWait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// Register fences: the compiler sees each register read and written here, so
// it neither moves a read of an accumulator above the WgmmaWait that makes it
// valid nor reuses an A fragment's register before the wgmma reading it is
// waited for (call right after the WgmmaWait). Emits no instruction.
template <int M, int N>
__device__ __forceinline__ void FenceRegs(float (&r)[M][N]) {
#pragma unroll
  for (int i = 0; i < M; ++i)
#pragma unroll
    for (int j = 0; j < N; ++j) asm volatile("" : "+f"(r[i][j])::"memory");
}
template <int M, int N>
__device__ __forceinline__ void FenceRegs(uint32_t (&r)[M][N]) {
#pragma unroll
  for (int i = 0; i < M; ++i)
#pragma unroll
    for (int j = 0; j < N; ++j) asm volatile("" : "+r"(r[i][j])::"memory");
}

// Named barrier `id` (1 to 15; 0 is __syncthreads') of `threads` threads (a
// multiple of 32): Sync counts the calling warp in and waits for the rest;
// Arrive counts it in and goes on (the producer side of a handshake).
__device__ __forceinline__ void NamedBarrierSync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void NamedBarrierArrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// Per-thread register budget of the calling warpgroup, raised (consumers) or
// lowered (the producer), within what the kernel launched with
// (__launch_bounds__(threads, 1): 65536 / threads). All its warps call it.
template <int N>
__device__ __forceinline__ void RaiseRegisters() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N>
__device__ __forceinline__ void LowerRegisters() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}

}  // namespace jax_mea::cuda
