// Host side of the copy engine (TMA): the driver's tensor-map encoder, reached
// through the runtime (no libcuda link), and the one map layout the kernels use.
// Shared by the decode kernels (decode.cu) and the sm_90a forward
// (attention_fwd_sm90.cu).
#pragma once

#include <cudaTypedefs.h>  // PFN_cuTensorMapEncodeTiled, CUtensorMap
#include <cuda_runtime.h>

#include <cstdint>

#include "jax_mea/params.h"

namespace jax_mea::cuda {

// The driver's cuTensorMapEncodeTiled, looked up once; null where the driver
// does not have it.
inline PFN_cuTensorMapEncodeTiled_v12000 TensorMapEncoder() {
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

// 16-byte aligned base and strides of 8 elements: what EncodeBoxMap needs of a 16-bit
// tensor (global strides in multiples of 16 bytes).
inline bool Aligned16Strided(const void* ptr, const TensorStrides& s) {
  return reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && s.batch % 8 == 0 && s.head % 8 == 0 &&
         s.seq % 8 == 0;
}

// A 16-bit tensor [batch, heads, seq, dim] at `x` (strides in elements, dim
// contiguous) as a 4-D tensor map (coordinates: column, position, head, batch)
// with boxes of 64 columns x box_rows positions, 128-byte swizzle (the layout
// sm90_common.cuh's SmemDesc reads), zero fill out of bounds: columns past dim
// and positions past seq land in shared memory as zeros. False where the driver
// rejects it (strides and address must be 16-byte multiples) or has no encoder.
inline bool EncodeBoxMap(CUtensorMap* map, DType dtype, const void* x, int batch, int heads,
                         int seq, int dim, const TensorStrides& st, int box_rows) {
  PFN_cuTensorMapEncodeTiled_v12000 encode = TensorMapEncoder();
  if (encode == nullptr || seq <= 0 || dim <= 0 || batch <= 0 || heads <= 0) return false;
  const cuuint64_t dims[4] = {static_cast<cuuint64_t>(dim), static_cast<cuuint64_t>(seq),
                              static_cast<cuuint64_t>(heads), static_cast<cuuint64_t>(batch)};
  const cuuint64_t strides[3] = {static_cast<cuuint64_t>(st.seq) * 2,
                                 static_cast<cuuint64_t>(st.head) * 2,
                                 static_cast<cuuint64_t>(st.batch) * 2};
  const cuuint32_t box[4] = {64, static_cast<cuuint32_t>(box_rows), 1, 1};
  const cuuint32_t unit[4] = {1, 1, 1, 1};
  const CUtensorMapDataType type = dtype == DType::kBFloat16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
                                                              : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  // L2 promotion to 128 bytes, the box's row. With 256 bytes the streams ran at
  // 4.2 TB/s against 4.65 with 128 bytes or none (H200, two 1 GB tensors read by
  // benchmarks/native/tma_read_bw.cu; benchmarks/RESULTS.md, twenty-fourth session):
  // the decode kernel 3.6-5% faster on long caches, the sm_90a forward level.
  return encode(map, type, 4, const_cast<void*>(x), dims, strides, box, unit,
                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

}  // namespace jax_mea::cuda
